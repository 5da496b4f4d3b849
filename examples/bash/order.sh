#!/usr/bin/env bash
# order.sh ORDER_ID: one order, driven as a Keel code execution with curl and jq.
#
#   charge (refunded if the order fails) -> cooling-off sleep -> wait for approve or reject
#   -> ship -> complete
#
# Each call names its step with a key. Keel journals a key's first call, and every later call
# of that key answers from the journal. So this script can be killed at any point (kill -9,
# a reboot) and simply run again with the same ORDER_ID: the steps already done are not done
# again (no second charge, the sleep is not restarted), and it goes on from where it stopped.
#
# Exit status: 0 the order completed; 1 it failed (rejected, approval timed out, a step failed
# for good) and the charge was refunded; 2 a usage error; 3 Keel could not be reached.
set -euo pipefail

ORDER_ID=${1:-${ORDER_ID:-}}
if [[ -z $ORDER_ID ]]; then
  echo "usage: order.sh ORDER_ID (or ORDER_ID=... order.sh)" >&2
  exit 2
fi
KEEL=${KEEL:-http://127.0.0.1:8080}
RECEIVER=${RECEIVER:-http://127.0.0.1:18182}
AMOUNT=${ORDER_AMOUNT:-42.5}
COOLING_OFF=${ORDER_SLEEP:-2s}
APPROVAL_TIMEOUT=${APPROVAL_TIMEOUT:-1h}
exe=$KEEL/v1/executions/$ORDER_ID

# Every call retries what is not Keel's answer (keeld restarting, a 503 while it is busy or
# shutting down) and gives up only after a few minutes; -f turns Keel's 4xx answers into
# curl's exit status 22. Quiet (-s): the script says what went wrong itself.
call() {
  curl -sf --retry 300 --retry-connrefused --retry-delay 1 --max-time 60 \
    -H 'Content-Type: application/json' "$@"
}

unreachable() {
  echo "order $ORDER_ID: Keel at $KEEL cannot be reached (curl exit $1); run me again" >&2
  exit 3
}

# step KEY BODY: calls the step until it has ended and leaves its JSON in $reply, and in
# $replayed "true" when an earlier run had already called it (Keel-Replayed on this run's
# first call). Returns 1 when Keel refuses it: 424, the step failed for good, or 409, the order
# is being cancelled.
#
# "Prefer: wait=30" makes Keel hold the call until the step ends, for up to 30 s; a 202 means
# it is still pending, and the next call is held again: no polling. (curl --retry with
# ?pending=503 also blocks, but it sleeps for Retry-After between calls, which for a wait is
# up to a minute, so the approval would be seen late.)
step() {
  local rc out calls=0
  while :; do
    rc=0
    out=$(call -H 'Prefer: wait=30' -w '\n%{http_code} %header{keel-replayed}' \
      -d "$2" "$exe/steps/$1") || rc=$?
    ((rc != 22)) || return 1
    ((rc == 0)) || unreachable "$rc"
    ((calls++)) || replayed=${out##*' '}
    [[ ${out##*$'\n'} == 202* ]] || break
  done
  reply=${out%$'\n'*}
}

# said KEY: a line saying what the step gave, and whether this run only read it back.
said() {
  echo "$1: $(jq -r 'if .output == null then "done" else (.output | tojson) end' <<<"$reply")${replayed:+ (journaled by an earlier run)}"
}

# The error of a step that failed for good, as Keel journaled it.
step_error() {
  jq -r '.error.message // .error.type' <<<"$(call "$exe/steps/$1")"
}

# end_order complete|fail BODY: asks Keel to end the order. If an earlier run already did, Keel
# refuses (409) and nothing changes: finish reads how the order ended either way.
end_order() {
  local rc=0
  call -o /dev/null -d "$2" "$exe/$1" || rc=$?
  ((rc == 0 || rc == 22)) || unreachable "$rc"
}

# finish: prints how the order ended, once Keel says it has ended (a failed order ends only
# after its refund has run; the result's long poll waits for that), and exits 0 if it completed.
finish() {
  local result=
  until [[ -n $result && $(jq -r .status <<<"$result") != running ]]; do
    result=$(call "$exe/result?wait=30") || unreachable $?
  done
  echo "order $ORDER_ID: $(jq -c '{status, output, error}' <<<"$result")"
  [[ $(jq -r .status <<<"$result") == completed ]] || exit 1
  exit 0
}

# fail_order TYPE MESSAGE: ends the order failed. Keel first runs the compensations of the
# activity steps that completed (here the charge's refund).
fail_order() {
  echo "order $ORDER_ID: failing: $2"
  end_order fail "$(jq -nc --arg t "$1" --arg m "$2" '{error: {type: $t, message: $m}}')"
  finish
}

# The execution's id is the order's: the same start again (same id, name and input) answers
# 200 with the execution as it is now, so a re-run finds its order again.
rc=0
started=$(call "$KEEL/v1/executions" -d "$(jq -nc --arg id "$ORDER_ID" --argjson a "$AMOUNT" \
  '{id: $id, name: "order", input: {amount: $a}}')") || rc=$?
if ((rc == 22)); then
  echo "order $ORDER_ID: Keel refused the start (an execution $ORDER_ID with other input?)" >&2
  exit 2
fi
((rc == 0)) || unreachable "$rc"
status=$(jq -r .status <<<"$started")
echo "order $ORDER_ID: $status (amount $AMOUNT)"
# An earlier run got as far as the end, but was stopped before it could say so.
[[ $status == running ]] || finish

# The refund is the charge's compensation: Keel calls it only if the order fails after the
# charge went through. The receiver dedupes on the Idempotency-Key that Keel sends, the same on
# every retry, so a retried charge is never applied twice.
step charge "$(jq -nc --arg r "$RECEIVER" --arg id "$ORDER_ID" --argjson a "$AMOUNT" '{
  activity: {url: "\($r)/charge", input: {order: $id, amount: $a},
             retry: {max_attempts: 5, initial_interval: "1s"}},
  compensate: {url: "\($r)/refund", input: {order: $id, amount: $a}}}')" ||
  fail_order ChargeFailed "the charge failed: $(step_error charge)"
said charge
charge_id=$(jq -r .output.charge_id <<<"$reply")

# A durable timer: its due time is journaled by the first call, so a run after a crash waits
# only for what is left of it.
step cooling-off "$(jq -nc --arg d "$COOLING_OFF" '{sleep: $d}')" ||
  fail_order Stopped "the cooling-off was stopped: $(step_error cooling-off)"
said cooling-off

echo "approval: waiting for approve or reject, e.g."
echo "  curl -X POST $exe/signals/approve -H 'Content-Type: application/json' -d '{\"by\": \"ann\"}'"
step approval "$(jq -nc --arg t "$APPROVAL_TIMEOUT" \
  '{wait: {any: ["approve", "reject"], timeout: $t}}')" ||
  fail_order ApprovalTimedOut "$(step_error approval)"
said approval
if [[ $(jq -r .output.signal <<<"$reply") != approve ]]; then
  fail_order Rejected "rejected: $(jq -c .output.payload <<<"$reply")"
fi

step ship "$(jq -nc --arg r "$RECEIVER" --arg id "$ORDER_ID" '{
  activity: {url: "\($r)/ship", input: {order: $id},
             retry: {max_attempts: 5, initial_interval: "1s"}}}')" ||
  fail_order ShipFailed "shipping failed: $(step_error ship)"
said ship
tracking=$(jq -r .output.tracking <<<"$reply")

end_order complete "$(jq -nc --arg c "$charge_id" --arg t "$tracking" \
  '{output: {charge: $c, tracking: $t}}')"
finish
