#!/usr/bin/env python3
"""receiver.py [PORT]: the payment and shipping service that the order examples call (POST
/charge, /refund, /ship), in Python 3 with the standard library only.

It does what every receiver of Keel's webhooks should do:
  * with KEEL_WEBHOOK_SECRET set (the same value keeld has), it verifies the Standard Webhooks
    signature and refuses (401) a request whose signature is missing or wrong, or whose
    timestamp is more than 5 minutes off (a replayed request);
  * it applies each Idempotency-Key once: a repeat (Keel retries after a timeout or a crash,
    with the same key) gets the first answer again and changes nothing.
Its effects are lines appended to a ledger, LEDGER (default ./ledger.jsonl): one JSON object
{"key", "action", "input", "result"} per key applied. The ledger is also what it dedupes
against, so a restarted receiver still knows what it applied.
"""
import base64
import hashlib
import hmac
import json
import os
import secrets
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LEDGER = os.environ.get("LEDGER", "ledger.jsonl")
TOLERANCE_S = 300
# Several secrets (separated by spaces) while one is being rotated out, as keeld allows.
KEYS = [base64.b64decode(s.removeprefix("whsec_"))
        for s in os.environ.get("KEEL_WEBHOOK_SECRET", "").split()]

ACTIONS = {
    "/charge": lambda i: {"charge_id": "ch_" + secrets.token_hex(4), "amount": i.get("amount")},
    "/refund": lambda i: {"refund_id": "re_" + secrets.token_hex(4), "amount": i.get("amount")},
    "/ship": lambda i: {"tracking": "TRK-" + secrets.token_hex(4)},
}

lock = threading.Lock()  # one request at a time looks a key up and applies it
applied = {}  # Idempotency-Key -> its first result
if os.path.exists(LEDGER):
    with open(LEDGER) as f:
        for line in f:
            entry = json.loads(line)
            applied.setdefault(entry["key"], entry["result"])


def verified(headers, body):
    """The body is signed with one of the keys, at a time within TOLERANCE_S of ours: HMAC-SHA256
    of "{webhook-id}.{webhook-timestamp}.{body}", in base64 after "v1,"."""
    msg_id, ts = headers.get("webhook-id"), headers.get("webhook-timestamp", "")
    if not msg_id or not (ts.isascii() and ts.isdigit()):
        return False
    if abs(time.time() - int(ts)) > TOLERANCE_S:
        return False
    signed = f"{msg_id}.{ts}.".encode() + body
    given = headers.get("webhook-signature", "").split()
    for key in KEYS:
        mac = hmac.new(key, signed, hashlib.sha256).digest()
        expected = "v1," + base64.b64encode(mac).decode()
        if any(hmac.compare_digest(expected, sig) for sig in given):
            return True
    return False


class Receiver(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        key = self.headers.get("Idempotency-Key")
        action = ACTIONS.get(self.path)
        if action is None:
            return self.reply(404, {"type": "not_found"})
        if KEYS and not verified(self.headers, body):
            self.log(key, "401 bad signature")
            return self.reply(401, {"type": "bad_signature", "title": "Invalid webhook signature"})
        try:
            work = json.loads(body)["input"]
        except (ValueError, KeyError, TypeError):
            return self.reply(400, {"type": "not_json"})
        if not key:
            return self.reply(400, {"type": "no_idempotency_key"})
        with lock:
            result = applied.get(key)
            if result is not None:
                self.log(key, f"200 already applied: {json.dumps(result)}")
                return self.reply(200, result)
            result = action(work)
            entry = {"key": key, "action": self.path[1:], "input": work, "result": result}
            with open(LEDGER, "a") as f:
                f.write(json.dumps(entry, separators=(",", ":")) + "\n")
            applied[key] = result
        self.log(key, f"200 applied: {json.dumps(result)}")
        self.reply(200, result)

    def reply(self, status, doc):
        data = json.dumps(doc).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log(self, key, what):
        print(f"{time.strftime('%H:%M:%S')} POST {self.path} {key or ''} -> {what}", flush=True)

    def log_message(self, *args):  # the lines above say it all
        pass


if __name__ == "__main__":
    port = int(sys.argv[1] if len(sys.argv) > 1 else os.environ.get("RECEIVER_PORT", "18182"))
    checked = "signatures checked" if KEYS else "signatures NOT checked (no KEEL_WEBHOOK_SECRET)"
    print(f"receiver on http://127.0.0.1:{port}, ledger {os.path.abspath(LEDGER)}, {checked}",
          flush=True)
    ThreadingHTTPServer(("127.0.0.1", port), Receiver).serve_forever()
