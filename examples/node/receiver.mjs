#!/usr/bin/env node
// receiver.mjs [PORT]: the payment and shipping service that the order examples call (POST
// /charge, /refund, /ship), in Node with no dependencies (node:http, node:crypto).
//
// It does what every receiver of Keel's webhooks should do:
//   * with KEEL_WEBHOOK_SECRET set (the same value keeld has), it verifies the Standard
//     Webhooks signature and refuses (401) a request whose signature is missing or wrong, or
//     whose timestamp is more than 5 minutes off (a replayed request);
//   * it applies each Idempotency-Key once: a repeat (Keel retries after a timeout or a crash,
//     with the same key) gets the first answer again and changes nothing.
// Its effects are lines appended to a ledger, LEDGER (default ./ledger.jsonl): one JSON object
// {"key", "action", "input", "result"} per key applied. The ledger is also what it dedupes
// against, so a restarted receiver still knows what it applied.
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { appendFileSync, existsSync, readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { resolve } from 'node:path';

const LEDGER = process.env.LEDGER ?? 'ledger.jsonl';
const TOLERANCE_S = 300;
// Several secrets (separated by spaces) while one is being rotated out, as keeld allows.
const KEYS = (process.env.KEEL_WEBHOOK_SECRET ?? '').split(/\s+/).filter(Boolean)
  .map((s) => Buffer.from(s.replace(/^whsec_/, ''), 'base64'));

const id = () => randomBytes(4).toString('hex');
const ACTIONS = {
  '/charge': (input) => ({ charge_id: `ch_${id()}`, amount: input.amount }),
  '/refund': (input) => ({ refund_id: `re_${id()}`, amount: input.amount }),
  '/ship': () => ({ tracking: `TRK-${id()}` }),
};

// Idempotency-Key -> its first result. Node runs one handler at a time, and the lookup and the
// append below do not wait in between, so two deliveries of a key cannot both apply it.
const applied = new Map();
if (existsSync(LEDGER)) {
  for (const line of readFileSync(LEDGER, 'utf8').split('\n').filter(Boolean)) {
    const entry = JSON.parse(line);
    if (!applied.has(entry.key)) applied.set(entry.key, entry.result);
  }
}

// The body is signed with one of the keys, at a time within TOLERANCE_S of ours: HMAC-SHA256 of
// "{webhook-id}.{webhook-timestamp}.{body}", in base64 after "v1,".
function verified(headers, body) {
  const msgId = headers['webhook-id'];
  const ts = headers['webhook-timestamp'] ?? '';
  if (!msgId || !/^[0-9]{1,12}$/.test(ts)) return false;
  if (Math.abs(Date.now() / 1000 - Number(ts)) > TOLERANCE_S) return false;
  const given = (headers['webhook-signature'] ?? '').split(' ').map((s) => Buffer.from(s));
  return KEYS.some((key) => {
    const mac = createHmac('sha256', key).update(`${msgId}.${ts}.`).update(body).digest('base64');
    const expected = Buffer.from(`v1,${mac}`);
    return given.some((sig) => sig.length === expected.length && timingSafeEqual(sig, expected));
  });
}

function reply(res, status, doc) {
  const data = JSON.stringify(doc);
  res.writeHead(status, {
    'Content-Type': 'application/json',
    'Content-Length': Buffer.byteLength(data),
  });
  res.end(data);
}

const log = (req, key, what) =>
  console.log(`${new Date().toTimeString().slice(0, 8)} POST ${req.url} ${key ?? ''} -> ${what}`);

function handle(req, res, body) {
  const key = req.headers['idempotency-key'];
  const action = req.method === 'POST' ? ACTIONS[req.url] : undefined;
  if (!action) return reply(res, 404, { type: 'not_found' });
  if (KEYS.length > 0 && !verified(req.headers, body)) {
    log(req, key, '401 bad signature');
    return reply(res, 401, { type: 'bad_signature', title: 'Invalid webhook signature' });
  }
  let input;
  try {
    input = JSON.parse(body.toString('utf8')).input;
  } catch {
    return reply(res, 400, { type: 'not_json' });
  }
  if (!key) return reply(res, 400, { type: 'no_idempotency_key' });
  let result = applied.get(key);
  if (result !== undefined) {
    log(req, key, `200 already applied: ${JSON.stringify(result)}`);
    return reply(res, 200, result);
  }
  result = action(input ?? {});
  const entry = { key, action: req.url.slice(1), input, result };
  appendFileSync(LEDGER, `${JSON.stringify(entry)}\n`);
  applied.set(key, result);
  log(req, key, `200 applied: ${JSON.stringify(result)}`);
  reply(res, 200, result);
}

const port = Number(process.argv[2] ?? process.env.RECEIVER_PORT ?? 18182);
createServer((req, res) => {
  const chunks = [];
  req.on('data', (chunk) => chunks.push(chunk));
  req.on('end', () => handle(req, res, Buffer.concat(chunks)));
}).listen(port, '127.0.0.1', () => {
  const checked = KEYS.length > 0 ? 'signatures checked'
    : 'signatures NOT checked (no KEEL_WEBHOOK_SECRET)';
  console.log(`receiver on http://127.0.0.1:${port}, ledger ${resolve(LEDGER)}, ${checked}`);
});
