#!/usr/bin/env python3
"""order.py ORDER_ID: one order, driven as a Keel code execution (Python 3, standard library).

    charge (refunded if the order fails) -> cooling-off sleep -> wait for approve or reject
    -> ship -> complete

Each call names its step with a key. Keel journals a key's first call, and every later call of
that key answers from the journal. So this program can be killed at any point (kill -9, a
reboot) and simply run again with the same ORDER_ID: the steps already done are not done again
(no second charge, the sleep is not restarted), and it goes on from where it stopped.

Exit status: 0 the order completed; 1 it failed (rejected, approval timed out, a step failed for
good) and the charge was refunded; 2 a usage error; 3 Keel could not be reached.
"""
import json
import os
import sys
import time
import urllib.error
import urllib.request

KEEL = os.environ.get("KEEL", "http://127.0.0.1:8080")
RECEIVER = os.environ.get("RECEIVER", "http://127.0.0.1:18182")
AMOUNT = float(os.environ.get("ORDER_AMOUNT", "42.5"))
COOLING_OFF = os.environ.get("ORDER_SLEEP", "2s")
APPROVAL_TIMEOUT = os.environ.get("APPROVAL_TIMEOUT", "1h")


class OrderFailed(Exception):
    def __init__(self, type_, message):
        super().__init__(message)
        self.type = type_


def call(method, path, body=None, prefer=None):
    """One request to Keel: (status, headers, JSON body). While Keel cannot be reached or
    answers 503 (restarting, busy, shutting down), it waits and asks again, for a few minutes."""
    data = None if body is None else json.dumps(body).encode()
    headers = {"Content-Type": "application/json"}
    if prefer:
        headers["Prefer"] = prefer
    for _ in range(300):
        request = urllib.request.Request(KEEL + path, data, headers, method=method)
        try:
            with urllib.request.urlopen(request, timeout=90) as r:
                return r.status, r.headers, json.load(r)
        except urllib.error.HTTPError as e:  # Keel's 4xx and 5xx answers
            if e.code != 503:
                return e.code, e.headers, json.load(e)
            time.sleep(int(e.headers.get("Retry-After", "1")))
        except OSError:  # refused, reset, timed out
            time.sleep(1)
    print(f"Keel at {KEEL} cannot be reached; run me again", file=sys.stderr)
    sys.exit(3)


def step(exe, key, body, fails_as):
    """Calls the step until it has ended and returns its output. Keel refusing it (424: it
    failed for good; 409: the order is being cancelled) fails the order with type fails_as.

    "Prefer: wait=30" makes Keel hold the call until the step ends, for up to 30 s; a 202 means
    it is still pending, and the next call is held again: no polling."""
    earlier = None  # an earlier run called it: Keel-Replayed on this run's first call
    while True:
        status, headers, reply = call("POST", f"{exe}/steps/{key}", body, prefer="wait=30")
        if earlier is None:
            earlier = headers.get("Keel-Replayed") == "true"
        if status == 200:
            output = reply["output"]
            note = " (journaled by an earlier run)" if earlier else ""
            print(f"{key}: {'done' if output is None else json.dumps(output)}{note}")
            return output
        if status in (409, 424):
            error = reply.get("error") or {}
            raise OrderFailed(fails_as, error.get("message") or reply.get("detail"))
        if status != 202:
            raise RuntimeError(f"step {key}: {status} {reply}")


def finish(order_id, exe):
    """Prints how the order ended once Keel says it has (a failed order ends only after its
    refund has run; the result's long poll waits for that). Returns the exit status."""
    while True:
        _, _, execution = call("GET", f"{exe}/result?wait=30")
        if execution["status"] != "running":
            break
    end = {k: execution[k] for k in ("status", "output", "error")}
    print(f"order {order_id}: {json.dumps(end)}")
    return 0 if execution["status"] == "completed" else 1


def run(order_id):
    exe = f"/v1/executions/{order_id}"
    # The execution's id is the order's: the same start again (same id, name and input)
    # answers 200 with the execution as it is now, so a re-run finds its order again.
    start = {"id": order_id, "name": "order", "input": {"amount": AMOUNT}}
    status, _, execution = call("POST", "/v1/executions", start)
    if status not in (200, 201):
        print(f"order {order_id}: Keel refused the start: {execution.get('detail')}",
              file=sys.stderr)
        return 2
    print(f"order {order_id}: {execution['status']} (amount {AMOUNT})")
    if execution["status"] != "running":
        # An earlier run got as far as the end, but was stopped before it could say so.
        return finish(order_id, exe)

    try:
        # The refund is the charge's compensation: Keel calls it only if the order fails after
        # the charge went through. The receiver dedupes on the Idempotency-Key that Keel sends,
        # the same on every retry, so a retried charge is never applied twice.
        charge = step(exe, "charge", {
            "activity": {"url": f"{RECEIVER}/charge",
                         "input": {"order": order_id, "amount": AMOUNT},
                         "retry": {"max_attempts": 5, "initial_interval": "1s"}},
            "compensate": {"url": f"{RECEIVER}/refund",
                           "input": {"order": order_id, "amount": AMOUNT}},
        }, "ChargeFailed")
        # A durable timer: its due time is journaled by the first call, so a run after a crash
        # waits only for what is left of it.
        step(exe, "cooling-off", {"sleep": COOLING_OFF}, "Stopped")
        print("approval: waiting for approve or reject, e.g.\n"
              f"  curl -X POST {KEEL}{exe}/signals/approve"
              " -H 'Content-Type: application/json' -d '{\"by\": \"ann\"}'", flush=True)
        approval = step(exe, "approval", {
            "wait": {"any": ["approve", "reject"], "timeout": APPROVAL_TIMEOUT},
        }, "ApprovalTimedOut")
        if approval["signal"] != "approve":
            raise OrderFailed("Rejected", f"rejected: {json.dumps(approval['payload'])}")
        ship = step(exe, "ship", {
            "activity": {"url": f"{RECEIVER}/ship", "input": {"order": order_id},
                         "retry": {"max_attempts": 5, "initial_interval": "1s"}},
        }, "ShipFailed")
    except OrderFailed as failure:
        # Keel first runs the compensations of the activity steps that completed (here the
        # charge's refund). If an earlier run already failed it, Keel refuses (409) and nothing
        # changes: finish reads how the order ended either way.
        print(f"order {order_id}: failing: {failure}")
        call("POST", f"{exe}/fail", {"error": {"type": failure.type, "message": str(failure)}})
        return finish(order_id, exe)

    # If an earlier run completed it already, Keel refuses this (409): finish reads the end.
    call("POST", f"{exe}/complete",
         {"output": {"charge": charge["charge_id"], "tracking": ship["tracking"]}})
    return finish(order_id, exe)


if __name__ == "__main__":
    order = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("ORDER_ID")
    if not order:
        print("usage: order.py ORDER_ID (or ORDER_ID=... order.py)", file=sys.stderr)
        sys.exit(2)
    sys.stdout.reconfigure(line_buffering=True)  # lines appear as the steps end
    try:
        sys.exit(run(order))
    except KeyboardInterrupt:  # Ctrl-C: nothing to clean up, Keel has the journal
        sys.exit(130)
