#!/usr/bin/env bash
# receiver.sh [PORT]: the payment and shipping service that the order examples call (POST
# /charge, /refund, /ship), in bash. socat accepts the connections and runs this script once
# per request (receiver.sh --handle, with the connection on stdin and stdout).
#
# It does what every receiver of Keel's webhooks should do:
#   * with KEEL_WEBHOOK_SECRET set (the same value keeld has), it verifies the Standard
#     Webhooks signature and refuses (401) a request whose signature is missing or wrong, or
#     whose timestamp is more than 5 minutes off (a replayed request);
#   * it applies each Idempotency-Key once: a repeat (Keel retries after a timeout or a crash,
#     with the same key) gets the first answer again and changes nothing.
# Its effects are lines appended to a ledger, LEDGER (default ./ledger.jsonl): one JSON object
# {"key", "action", "input", "result"} per key applied.
#
# Needs socat, openssl, jq and flock (Debian 12: apt-get install socat openssl jq).
set -euo pipefail

export LEDGER=${LEDGER:-$PWD/ledger.jsonl}
TOLERANCE_S=300

# reply STATUS BODY: answers the request and ends this process.
reply() {
  printf 'HTTP/1.1 %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n' "$1" "${#2}"
  printf 'Connection: close\r\n\r\n%s' "$2"
  exit 0
}

# A line per request on the console.
log() { echo "$(date +%T) $method $path ${header[idempotency-key]:-} -> $*" >&2; }

# verify: true when the request is signed with one of the secrets, at a time within
# TOLERANCE_S of ours. The message signed is "{webhook-id}.{webhook-timestamp}.{body}", the key
# the base64-decoded secret after "whsec_". (openssl takes the key as an argument, so it can
# be seen in ps while it runs; a receiver on a shared machine should use a language's HMAC.)
verify() {
  local id=${header[webhook-id]:-} ts=${header[webhook-timestamp]:-} secret key expected sig
  local -a sigs
  [[ -n $id && $ts =~ ^[0-9]{1,12}$ ]] || return 1
  local now
  now=$(date +%s)
  ((ts >= now - TOLERANCE_S && ts <= now + TOLERANCE_S)) || return 1
  read -ra sigs <<<"${header[webhook-signature]:-}"
  for secret in $KEEL_WEBHOOK_SECRET; do
    key=$(base64 -d <<<"${secret#whsec_}" | od -An -v -tx1 | tr -d ' \n')
    expected=v1,$(printf '%s.%s.%s' "$id" "$ts" "$body" |
      openssl dgst -sha256 -mac HMAC -macopt "hexkey:$key" -binary | base64 -w0)
    for sig in "${sigs[@]}"; do
      [[ $sig == "$expected" ]] && return 0
    done
  done
  return 1
}

handle() {
  export LC_ALL=C # lengths and reads count bytes
  local line name value len
  IFS=' ' read -r method path _ || exit 0
  path=${path%%\?*}
  declare -gA header=()
  while IFS= read -r line; do
    line=${line%$'\r'}
    [[ -n $line ]] || break
    name=${line%%:*}
    value=${line#*:}
    header[${name,,}]=${value#"${value%%[! ]*}"}
  done
  len=${header[content-length]:-0}
  [[ $len =~ ^[0-9]{1,7}$ ]] || reply '413 Content Too Large' '{"type": "too_large"}'
  body=
  if ((len > 0)); then IFS= read -r -N "$len" body || true; fi

  [[ $method == POST ]] || reply '405 Method Not Allowed' '{"type": "method_not_allowed"}'
  case $path in
  /charge | /refund | /ship) ;;
  *) reply '404 Not Found' '{"type": "not_found"}' ;;
  esac
  if [[ -n ${KEEL_WEBHOOK_SECRET:-} ]] && ! verify; then
    log "401 bad signature"
    reply '401 Unauthorized' '{"type": "bad_signature", "title": "Invalid webhook signature"}'
  fi
  local key=${header[idempotency-key]:-}
  [[ $key =~ ^[A-Za-z0-9_:@/.-]{1,300}$ ]] || reply '400 Bad Request' '{"type": "no_idempotency_key"}'
  local input
  input=$(jq -c .input <<<"$body" 2>/dev/null) || input=
  [[ -n $input ]] || reply '400 Bad Request' '{"type": "not_json"}'

  # One request at a time looks up and applies: two deliveries of one key (a retry racing a
  # slow first attempt) cannot both apply it.
  exec 9>>"$LEDGER.lock"
  flock 9
  local first result id
  first=$(jq -nc --arg k "$key" 'first(inputs | select(.key == $k)) | .result' "$LEDGER")
  if [[ -n $first ]]; then
    log "200 already applied: $first"
    reply '200 OK' "$first"
  fi
  id=$(printf '%04x%04x' $RANDOM $RANDOM)
  case $path in
  /charge) result=$(jq -c --arg id "ch_$id" '{charge_id: $id, amount}' <<<"$input") ;;
  /refund) result=$(jq -c --arg id "re_$id" '{refund_id: $id, amount}' <<<"$input") ;;
  /ship) result=$(jq -nc --arg t "TRK-$id" '{tracking: $t}') ;;
  esac
  jq -nc --arg k "$key" --arg a "${path#/}" --argjson i "$input" --argjson r "$result" \
    '{key: $k, action: $a, input: $i, result: $r}' >>"$LEDGER"
  log "200 applied: $result"
  reply '200 OK' "$result"
}

if [[ ${1:-} == --handle ]]; then
  handle
fi

PORT=${1:-${RECEIVER_PORT:-18182}}
touch "$LEDGER"
RECEIVER_SCRIPT=$(readlink -f "${BASH_SOURCE[0]}")
export RECEIVER_SCRIPT
checked="signatures checked"
[[ -n ${KEEL_WEBHOOK_SECRET:-} ]] || checked="signatures NOT checked (no KEEL_WEBHOOK_SECRET)"
echo "receiver on http://127.0.0.1:$PORT, ledger $LEDGER, $checked" >&2
# The command goes through sh -c, which finds the script through the environment: no quoting
# of its path in socat's address syntax.
# shellcheck disable=SC2016 # expanded by that sh, not here
exec socat "TCP-LISTEN:$PORT,bind=127.0.0.1,reuseaddr,fork" 'SYSTEM:exec "$RECEIVER_SCRIPT" --handle'
