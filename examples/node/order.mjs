#!/usr/bin/env node
// order.mjs ORDER_ID: one order, driven as a Keel code execution (Node 18 or later, no
// dependencies: the built-in fetch).
//
//   charge (refunded if the order fails) -> cooling-off sleep -> wait for approve or reject
//   -> ship -> complete
//
// Each call names its step with a key. Keel journals a key's first call, and every later call
// of that key answers from the journal. So this program can be killed at any point (kill -9,
// a reboot) and simply run again with the same ORDER_ID: the steps already done are not done
// again (no second charge, the sleep is not restarted), and it goes on from where it stopped.
//
// Exit status: 0 the order completed; 1 it failed (rejected, approval timed out, a step failed
// for good) and the charge was refunded; 2 a usage error; 3 Keel could not be reached.

const env = process.env;
const KEEL = env.KEEL ?? 'http://127.0.0.1:8080';
const RECEIVER = env.RECEIVER ?? 'http://127.0.0.1:18182';
const AMOUNT = Number(env.ORDER_AMOUNT ?? '42.5');
const COOLING_OFF = env.ORDER_SLEEP ?? '2s';
const APPROVAL_TIMEOUT = env.APPROVAL_TIMEOUT ?? '1h';

class OrderFailed extends Error {
  constructor(type, message) {
    super(message);
    this.type = type;
  }
}

const pause = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// One request to Keel: {status, headers, body}. While Keel cannot be reached or answers 503
// (restarting, busy, shutting down), it waits and asks again, for a few minutes.
async function call(method, path, body, prefer) {
  const headers = { 'Content-Type': 'application/json' };
  if (prefer) headers.Prefer = prefer;
  for (let i = 0; i < 300; i++) {
    let r;
    try {
      r = await fetch(KEEL + path, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(90_000),
      });
    } catch {
      await pause(1000); // refused, reset, timed out
      continue;
    }
    if (r.status !== 503) return { status: r.status, headers: r.headers, body: await r.json() };
    await r.body?.cancel();
    await pause(1000 * Number(r.headers.get('Retry-After') ?? 1));
  }
  console.error(`Keel at ${KEEL} cannot be reached; run me again`);
  process.exit(3);
}

// Calls the step until it has ended and returns its output. Keel refusing it (424: it failed
// for good; 409: the order is being cancelled) fails the order with type failsAs.
//
// "Prefer: wait=30" makes Keel hold the call until the step ends, for up to 30 s; a 202 means
// it is still pending, and the next call is held again: no polling.
async function step(exe, key, body, failsAs) {
  let earlier; // an earlier run called it: Keel-Replayed on this run's first call
  for (;;) {
    const r = await call('POST', `${exe}/steps/${key}`, body, 'wait=30');
    earlier ??= r.headers.get('Keel-Replayed') === 'true';
    if (r.status === 200) {
      const output = r.body.output;
      const note = earlier ? ' (journaled by an earlier run)' : '';
      console.log(`${key}: ${output === null ? 'done' : JSON.stringify(output)}${note}`);
      return output;
    }
    if (r.status === 409 || r.status === 424)
      throw new OrderFailed(failsAs, r.body.error?.message ?? r.body.detail);
    if (r.status !== 202) throw new Error(`step ${key}: ${r.status} ${JSON.stringify(r.body)}`);
  }
}

// Prints how the order ended once Keel says it has (a failed order ends only after its refund
// has run; the result's long poll waits for that). Returns the exit status.
async function finish(orderId, exe) {
  let execution;
  do {
    execution = (await call('GET', `${exe}/result?wait=30`)).body;
  } while (execution.status === 'running');
  const { status, output, error } = execution;
  console.log(`order ${orderId}: ${JSON.stringify({ status, output, error })}`);
  return status === 'completed' ? 0 : 1;
}

async function run(orderId) {
  const exe = `/v1/executions/${orderId}`;
  // The execution's id is the order's: the same start again (same id, name and input) answers
  // 200 with the execution as it is now, so a re-run finds its order again.
  const start = { id: orderId, name: 'order', input: { amount: AMOUNT } };
  const started = await call('POST', '/v1/executions', start);
  if (started.status !== 200 && started.status !== 201) {
    console.error(`order ${orderId}: Keel refused the start: ${started.body.detail}`);
    return 2;
  }
  console.log(`order ${orderId}: ${started.body.status} (amount ${AMOUNT})`);
  // An earlier run got as far as the end, but was stopped before it could say so.
  if (started.body.status !== 'running') return finish(orderId, exe);

  let charge, ship;
  try {
    // The refund is the charge's compensation: Keel calls it only if the order fails after the
    // charge went through. The receiver dedupes on the Idempotency-Key that Keel sends, the
    // same on every retry, so a retried charge is never applied twice.
    charge = await step(exe, 'charge', {
      activity: {
        url: `${RECEIVER}/charge`,
        input: { order: orderId, amount: AMOUNT },
        retry: { max_attempts: 5, initial_interval: '1s' },
      },
      compensate: { url: `${RECEIVER}/refund`, input: { order: orderId, amount: AMOUNT } },
    }, 'ChargeFailed');
    // A durable timer: its due time is journaled by the first call, so a run after a crash
    // waits only for what is left of it.
    await step(exe, 'cooling-off', { sleep: COOLING_OFF }, 'Stopped');
    console.log('approval: waiting for approve or reject, e.g.\n' +
      `  curl -X POST ${KEEL}${exe}/signals/approve -H 'Content-Type: application/json'` +
      ` -d '{"by": "ann"}'`);
    const approval = await step(exe, 'approval', {
      wait: { any: ['approve', 'reject'], timeout: APPROVAL_TIMEOUT },
    }, 'ApprovalTimedOut');
    if (approval.signal !== 'approve')
      throw new OrderFailed('Rejected', `rejected: ${JSON.stringify(approval.payload)}`);
    ship = await step(exe, 'ship', {
      activity: {
        url: `${RECEIVER}/ship`,
        input: { order: orderId },
        retry: { max_attempts: 5, initial_interval: '1s' },
      },
    }, 'ShipFailed');
  } catch (failure) {
    if (!(failure instanceof OrderFailed)) throw failure;
    // Keel first runs the compensations of the activity steps that completed (here the
    // charge's refund). If an earlier run already failed it, Keel refuses (409) and nothing
    // changes: finish reads how the order ended either way.
    console.log(`order ${orderId}: failing: ${failure.message}`);
    await call('POST', `${exe}/fail`, { error: { type: failure.type, message: failure.message } });
    return finish(orderId, exe);
  }
  // If an earlier run completed it already, Keel refuses this (409): finish reads the end.
  await call('POST', `${exe}/complete`,
    { output: { charge: charge.charge_id, tracking: ship.tracking } });
  return finish(orderId, exe);
}

const orderId = process.argv[2] ?? env.ORDER_ID;
if (!orderId) {
  console.error('usage: order.mjs ORDER_ID (or ORDER_ID=... order.mjs)');
  process.exit(2);
}
process.exitCode = await run(orderId);
