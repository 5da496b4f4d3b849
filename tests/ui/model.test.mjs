// Unit tests of what the UI derives from the API's data (web-ui/js/model.mjs): no browser, no
// keeld. The histories are shaped like real ones (see api/openapi.yaml's examples).
import assert from 'node:assert/strict';
import {test} from 'node:test';

import {
  KeyPages,
  NOT_TAKEN,
  buildStepTree,
  childWorkflowOf,
  isCodeExecution,
  countsText,
  defaultExpanded,
  deriveTimeline,
  diagramOverlay,
  eventMatches,
  eventSummary,
  eventTone,
  handlerCalls,
  handlerOf,
  handlerReasonText,
  historyWindow,
  idleText,
  ifDecisions,
  indexStepCalls,
  ifOutcomeText,
  indexDefinition,
  inputValue,
  iterationWindow,
  laneText,
  nestedLists,
  niceTicks,
  overlayParts,
  parentOf,
  pollInterval,
  programIdle,
  programLastCall,
  statusCounts,
  stepCounts,
  parseStatusFilter,
  pendingWork,
  retryable,
  signalOffer,
  startsChildren,
  statusFilterParam,
  statusLabel,
  stepCallText,
  stepChild,
  stepDetail,
  stepKind,
  stepNow,
  urlLabel,
  batchProgress,
  bulkConfirmText,
  bulkFilterOf,
  filterParts,
  hasListFilter,
  listApiQuery,
  listFilterFromQuery,
  listFilterOfBulk,
  listFilterQuery,
  selectionText,
  tagParts,
  tagText,
  tagsOf,
} from '../../web-ui/js/model.mjs';

const T = (ms) => new Date(Date.UTC(2026, 10, 22, 0, 15, 0) + ms).toISOString();
let seq = 0;
const ev = (type, at, step = null, attempt = null, data = {}) => ({seq: ++seq, type, step, attempt, at: T(at), data});

function failedHistory() {
  seq = 0;
  return [
    ev('execution_started', 0),
    ev('step_scheduled', 0, 'reserve', null, {kind: 'activity'}),
    ev('attempt_started', 0, 'reserve', 1),
    ev('attempt_failed', 4, 'reserve', 1, {error: {type: 'http_5xx', message: 'HTTP 503'}, next_attempt_at: T(204)}),
    ev('attempt_started', 205, 'reserve', 2),
    ev('step_completed', 206, 'reserve', 2, {output: {ok: true}}),
    ev('step_scheduled', 206, 'charge', null, {kind: 'activity'}),
    ev('attempt_started', 206, 'charge', 1),
    ev('attempt_failed', 207, 'charge', 1, {error: {type: 'card_declined', message: 'HTTP 422'}, next_attempt_at: null}),
    ev('step_failed', 207, 'charge', 1, {error: {step: 'charge', type: 'card_declined', message: 'HTTP 422', attempts: 1}}),
    ev('execution_failed', 207, null, null, {error: {step: 'charge', type: 'card_declined'}}),
  ];
}

const execOf = (status, steps, completedMs) => ({
  id: 'x',
  workflow: 'w',
  version: 1,
  status,
  created_at: T(0),
  completed_at: completedMs == null ? null : T(completedMs),
  steps: steps.map(([id, st]) => ({id, status: st, attempts: 0, error: null, output: null})),
});

test('attempts, failures and backoff gaps come from the history', () => {
  const tl = deriveTimeline(execOf('failed', [['reserve', 'completed'], ['charge', 'failed'], ['ship', 'skipped']], 207), failedHistory());
  const [reserve, charge, ship] = tl.rows;
  assert.deepEqual(reserve.attempts.map((a) => [a.n, a.state, a.end - a.start]), [[1, 'failed', 4], [2, 'ok', 1]]);
  assert.equal(reserve.segments.filter((s) => s.type === 'backoff').length, 1);
  assert.equal(reserve.segments.find((s) => s.type === 'backoff').end - reserve.segments.find((s) => s.type === 'backoff').start, 201);
  assert.equal(charge.failedAttempts, 1);
  assert.equal(charge.attempts[0].final, true);
  assert.equal(charge.error.type, 'card_declined');
  assert.equal(ship.segments.length, 0);
  assert.equal(ship.status, 'skipped');
  assert.equal(tl.attemptsTotal, 3);
  assert.equal(tl.retries, 1);
  assert.equal(tl.t1 - tl.t0, 207);
  assert.deepEqual(tl.spans.map((s) => [s.status, s.end - s.start]), [['failed', 207]]);
  assert.deepEqual(pendingWork(execOf('failed', []), tl), []);
});

test('a retried execution starts a second run; attempt numbers start again', () => {
  const events = failedHistory();
  events.push(
    ev('execution_retried', 5000, null, null, {step: 'charge'}),
    ev('step_scheduled', 5000, 'charge', null, {kind: 'activity'}),
    ev('attempt_started', 5000, 'charge', 1),
    ev('step_completed', 5003, 'charge', 1, {output: 1}),
    ev('execution_completed', 5004, null, null, {output: null}),
  );
  const tl = deriveTimeline(execOf('completed', [['reserve', 'completed'], ['charge', 'completed']], 5004), events);
  const charge = tl.rows[1];
  assert.deepEqual(charge.attempts.map((a) => [a.run, a.n, a.state]), [[0, 1, 'failed'], [1, 1, 'ok']]);
  assert.equal(charge.runs, 2);
  assert.equal(tl.retries, 1, 'only reserve was retried; the second run of charge is not a retry');
  assert.deepEqual(tl.spans.map((s) => s.status), ['failed', 'completed']);
  assert.ok(tl.markers.some((m) => m.kind === 'retry'));
});

test('a running execution: waiting for a signal, a retry due, a buffered signal', () => {
  seq = 0;
  const events = [
    ev('execution_started', 0),
    ev('step_scheduled', 0, 'charge', null, {kind: 'activity'}),
    ev('attempt_started', 0, 'charge', 1),
    ev('attempt_failed', 3, 'charge', 1, {error: {type: 'http_5xx', message: 'HTTP 503'}, next_attempt_at: T(20_003)}),
  ];
  const exec = execOf('running', [['charge', 'scheduled'], ['approval', 'pending']]);
  let tl = deriveTimeline(exec, events, Date.parse(T(1000)));
  let pending = pendingWork(exec, tl);
  assert.deepEqual(pending.map((p) => [p.kind, p.step, p.due && p.due - Date.parse(T(0))]), [['retry', 'charge', 20_003]]);
  assert.equal(pending[0].error.type, 'http_5xx');
  assert.equal(tl.tEnd, Date.parse(T(1000)), 'open segments run to now');
  assert.equal(tl.rows[0].open.backoff.due, Date.parse(T(20_003)));

  events.push(
    ev('attempt_started', 20_003, 'charge', 2),
    ev('step_completed', 20_005, 'charge', 2, {output: {}}),
    ev('step_scheduled', 20_005, 'approval', null, {kind: 'wait'}),
    ev('wait_started', 20_005, 'approval', null, {signal: 'approve', timeout_at: T(3_620_005)}),
    ev('signal_received', 20_100, null, null, {signal: 'other', payload: 1, signal_id: 1}),
  );
  tl = deriveTimeline({...exec, steps: [{id: 'charge', status: 'completed'}, {id: 'approval', status: 'waiting'}]}, events, Date.parse(T(30_000)));
  pending = pendingWork(exec, tl);
  assert.deepEqual(pending.map((p) => [p.kind, p.step, p.signal]), [['wait', 'approval', 'approve'], ['buffered', null, 'other']]);
  assert.equal(pending[0].due, Date.parse(T(3_620_005)));
});

test('an attempt waiting for the capacity of its host is pending work of its own', () => {
  seq = 0;
  const events = [
    ev('execution_started', 0),
    ev('step_scheduled', 0, 'charge', null, {kind: 'activity'}),
    ev('attempt_started', 0, 'charge', 1),
    ev('waiting_for_capacity', 1, 'charge', 1, {host: 'payments.internal', limit: 'payments.internal=2', concurrency: 2, rate: null}),
  ];
  const exec = execOf('running', [['charge', 'running']]);
  exec.steps[0].waiting_for_capacity = {host: 'payments.internal', limit: 'payments.internal=2', concurrency: 2, rate: null, attempt: 1, since: T(1)};
  const tl = deriveTimeline(exec, events, Date.parse(T(1000)));
  assert.deepEqual(pendingWork(exec, tl).map((p) => [p.kind, p.step, p.text, p.since]),
    [['capacity', 'charge', 'Attempt 1 waiting for capacity of payments.internal', Date.parse(T(1))]]);
  // Sent: in flight like any attempt.
  exec.steps[0].waiting_for_capacity = null;
  assert.deepEqual(pendingWork(exec, tl).map((p) => [p.kind, p.text]), [['attempt', 'Attempt 1 in flight']]);
});

test('a wait for any of several signals: every name offered, and which one ended it', () => {
  seq = 0;
  const events = [
    ev('execution_started', 0),
    ev('step_scheduled', 0, 'decide', null, {kind: 'wait'}),
    ev('wait_started', 0, 'decide', null, {any: ['approve', 'reject'], timeout_at: null}),
  ];
  const exec = execOf('running', [['decide', 'waiting']]);
  let tl = deriveTimeline(exec, events, Date.parse(T(1000)));
  const pending = pendingWork(exec, tl);
  assert.deepEqual(pending.map((p) => [p.kind, p.step, p.text]), [['wait', 'decide', 'Waiting for signal "approve" or "reject"']]);
  assert.deepEqual(signalOffer(exec, [{id: 'decide', wait: {any: ['approve', 'reject']}}], tl).waiting, ['approve', 'reject']);
  events.push(ev('signal_consumed', 2000, 'decide', null, {signal: 'reject', payload: {by: 'ann'}}));
  tl = deriveTimeline({...exec, status: 'completed', steps: [{id: 'decide', status: 'completed'}]}, events, Date.parse(T(3000)));
  const seg = tl.rows[0].segments.find((x) => x.type === 'wait');
  assert.equal(seg.state, 'done');
  assert.equal(seg.got, 'reject');
  assert.equal(eventSummary(events[2]), 'signal "approve" or "reject" · no timeout');
});

test('cancel: the wait ends at the request, compensations show on their step', () => {
  seq = 0;
  const events = [
    ev('execution_started', 0),
    ev('step_scheduled', 0, 'charge', null, {kind: 'activity'}),
    ev('attempt_started', 0, 'charge', 1),
    ev('step_completed', 10, 'charge', 1, {output: {}}),
    ev('step_scheduled', 10, 'approval', null, {kind: 'wait'}),
    ev('wait_started', 10, 'approval', null, {signal: 'approve', timeout_at: null}),
    ev('cancel_requested', 1000),
    ev('compensation_started', 1000, 'charge', 1),
    ev('compensation_completed', 1002, 'charge', 1, {output: {}}),
    ev('execution_cancelled', 1002, null, null, {error: null}),
  ];
  const tl = deriveTimeline(execOf('cancelled', [['charge', 'compensated'], ['approval', 'skipped']], 1002), events);
  const [charge, approval] = tl.rows;
  assert.deepEqual(charge.compensations.map((c) => [c.state, c.end - c.start]), [['ok', 2]]);
  assert.deepEqual(approval.segments.map((s) => [s.type, s.state, s.end - s.start]), [['wait', 'cancelled', 990]]);
  assert.equal(tl.cancelRequested, Date.parse(T(1000)));
  assert.deepEqual(tl.spans.map((s) => s.status), ['cancelled']);
});

test('definitions: kinds and one-line details', () => {
  assert.equal(stepKind({id: 'a', activity: {url: 'http://x/y'}}), 'activity');
  assert.equal(stepKind({id: 'a', sleep: '2s'}), 'sleep');
  assert.equal(stepKind({id: 'a', wait: {signal: 's'}}), 'wait');
  assert.equal(stepKind({id: 'a'}), 'unknown');
  assert.equal(urlLabel('http://payments.internal:8080/charge?x=1'), 'payments.internal:8080/charge?x=1');
  assert.equal(stepDetail({id: 'a', activity: {url: 'http://h/p'}}), 'POST h/p');
  assert.equal(stepDetail({id: 'a', sleep: 1500}), 'sleep 1500ms');
  assert.equal(stepDetail({id: 'a', wait: {signal: 'approve', timeout: '72h'}, on_timeout: 'fail'}), 'signal "approve" · 72h timeout → fail');
  assert.equal(stepKind({id: 't', set: {sum: '${steps.a.output.n}'}}), 'set');
  assert.equal(stepKind({id: 'r', fail: {type: 'Rejected'}}), 'fail');
  assert.equal(stepDetail({id: 't', set: {sum: '${steps.a.output.n}'}}), 'set {"sum":"${steps.a.output.n}"}');
  assert.equal(stepDetail({id: 't', set: {long: 'x'.repeat(80)}}).length, 64);
  assert.equal(stepDetail({id: 'r', fail: {type: 'Rejected', message: 'too big'}}), 'fail Rejected: too big');
  assert.equal(stepDetail({id: 'r', fail: {type: 'Rejected'}}), 'fail Rejected');
  assert.equal(stepDetail({id: 'w', wait: {any: ['approve', 'reject'], timeout: '72h'}}), 'any signal of "approve" or "reject" · 72h timeout');
  assert.equal(stepDetail({id: 'w', wait: {any: ['a', 'b', 'c']}}), 'any signal of "a", "b" or "c" · no timeout');
});

test('axis ticks and event summaries', () => {
  assert.deepEqual(niceTicks(1000), [0, 200, 400, 600, 800, 1000]);
  assert.deepEqual(niceTicks(5200).slice(0, 3), [0, 1000, 2000]);
  assert.equal(niceTicks(0).length, 1);
  const e = {seq: 4, type: 'attempt_failed', step: 'x', attempt: 1, at: T(0), data: {error: {type: 'http_5xx', message: 'HTTP 503'}, next_attempt_at: T(50)}};
  assert.equal(eventSummary(e), 'http_5xx: HTTP 503 · next attempt in 50 ms');
  assert.equal(eventSummary({...e, data: {error: {type: 't', message: 'm'}, next_attempt_at: null}}), 't: m · no more attempts');
  assert.equal(eventSummary({seq: 1, type: 'something_new', step: null, attempt: null, at: T(0), data: {a: 1}}), '{"a":1}');
  const w = {seq: 5, type: 'waiting_for_capacity', step: 'x', attempt: 2, at: T(0), data: {host: 'payments.internal', limit: 'payments.internal=20', concurrency: 20, rate: null}};
  assert.equal(eventSummary(w), 'attempt 2 waiting for capacity of payments.internal (limit payments.internal=20)');
  assert.equal(eventSummary({...w, data: {...w.data, compensation: true}}), 'compensation attempt 2 waiting for capacity of payments.internal (limit payments.internal=20)');
});

// POST .../retry (src/api/control.c -> engine.c on_retry) accepts a failed execution only when
// it failed at a step and no compensation ran or was scheduled; the UI offers Retry exactly then.
test('Retry is offered only where the API accepts it', () => {
  const failedAt = (steps, extra = {}) => ({...execOf('failed', steps, 207), error: {step: 'charge', type: 'card_declined', message: 'HTTP 422'}, ...extra});
  const plain = failedHistory();
  assert.deepEqual(retryable(failedAt([['reserve', 'completed'], ['charge', 'failed'], ['ship', 'skipped']]), plain), {ok: true, reason: ''});

  // The saga undid reserve: 409 not-retryable, so no button.
  seq = 0;
  const saga = [
    ...plain.slice(0, -1),
    ev('compensation_started', 208, 'reserve', 1),
    ev('compensation_completed', 209, 'reserve', 1, {output: {}}),
    ev('execution_failed', 209, null, null, {error: {step: 'charge', type: 'card_declined'}}),
  ];
  const compensated = retryable(failedAt([['reserve', 'compensated'], ['charge', 'failed'], ['ship', 'skipped']]), saga);
  assert.equal(compensated.ok, false);
  assert.match(compensated.reason, /compensations ran/);
  // A compensation that failed leaves its step completed; the history and the error still tell.
  const compFailed = [...plain.slice(0, -1), ev('compensation_failed', 208, 'reserve', 1, {error: {type: 'expression', message: 'x'}})];
  assert.equal(retryable(failedAt([['reserve', 'completed'], ['charge', 'failed']]), compFailed).ok, false);
  assert.equal(retryable(failedAt([['reserve', 'completed'], ['charge', 'failed']], {error: {step: 'charge', type: 't', compensation_errors: [{}]}}), []).ok, false);

  // Failed in its output: no failed step to resume at.
  assert.equal(retryable(failedAt([['reserve', 'completed'], ['charge', 'completed']]), []).ok, false);
  // Not failed at all.
  for (const st of ['running', 'completed', 'cancelled', 'terminated']) assert.equal(retryable(execOf(st, [['charge', 'failed']]), []).ok, false, st);
});

test('Send signal is offered only while a wait is current or still ahead', () => {
  const defs = [
    {id: 'charge', activity: {url: 'http://h/charge'}},
    {id: 'approval', wait: {signal: 'approve', timeout: '1h'}},
    {id: 'ship', activity: {url: 'http://h/ship'}},
  ];
  const tlOf = (exec, events = []) => deriveTimeline(exec, events, Date.parse(T(1000)), defs);
  // Running, the wait not reached yet: a signal sent now is kept for it.
  let exec = execOf('running', [['charge', 'retrying'], ['approval', 'pending'], ['ship', 'pending']]);
  assert.deepEqual(signalOffer(exec, defs, tlOf(exec)), {offer: true, waiting: [], ahead: ['approve']});
  // Waiting now.
  exec = execOf('running', [['charge', 'completed'], ['approval', 'waiting'], ['ship', 'pending']]);
  assert.deepEqual(signalOffer(exec, defs, tlOf(exec)), {offer: true, waiting: ['approve'], ahead: []});
  // Past the wait: nothing will take a signal.
  exec = execOf('running', [['charge', 'completed'], ['approval', 'completed'], ['ship', 'running']]);
  assert.equal(signalOffer(exec, defs, tlOf(exec)).offer, false);
  // A definition without waits never gets the button.
  const noWait = [{id: 'a', activity: {url: 'http://h/a'}}, {id: 'b', sleep: '1h'}];
  exec = execOf('running', [['a', 'completed'], ['b', 'sleeping']]);
  assert.equal(signalOffer(exec, noWait, deriveTimeline(exec, [], Date.now(), noWait)).offer, false);
  // The wait was skipped by a failure's saga (the execution still runs its compensations).
  exec = execOf('running', [['charge', 'failed'], ['approval', 'skipped'], ['ship', 'skipped']]);
  assert.equal(signalOffer(exec, defs, tlOf(exec)).offer, false);
  // Ended, or a cancel requested: no.
  exec = execOf('completed', [['charge', 'completed'], ['approval', 'completed'], ['ship', 'completed']], 10);
  assert.equal(signalOffer(exec, defs, tlOf(exec)).offer, false);
  seq = 0;
  exec = execOf('running', [['charge', 'completed'], ['approval', 'waiting'], ['ship', 'pending']]);
  const cancelled = tlOf(exec, [ev('execution_started', 0), ev('cancel_requested', 500)]);
  assert.equal(signalOffer(exec, defs, cancelled).offer, false);
  // Without the definition, an open wait in the history still counts.
  seq = 0;
  const waitEvents = [ev('execution_started', 0), ev('wait_started', 10, 'approval', null, {signal: 'approve', timeout_at: null})];
  assert.deepEqual(signalOffer(exec, null, deriveTimeline(exec, waitEvents, Date.parse(T(1000)))), {offer: true, waiting: ['approve'], ahead: []});
});

test('what a current step waits on, from the API step fields', () => {
  const err = {type: 'http_5xx', message: 'HTTP 503'};
  assert.deepEqual(stepNow({id: 'charge', status: 'retrying', attempts: 2, last_error: err, next_attempt_at: T(5000), due_at: null, signal: null}),
    {step: 'charge', status: 'retrying', text: 'retrying, next attempt', due: Date.parse(T(5000)), signal: null, error: err, heartbeat: null, capacity: null});
  const sleeping = stepNow({id: 'pause', status: 'sleeping', attempts: 0, last_error: null, next_attempt_at: null, due_at: T(60_000), signal: null});
  assert.equal(sleeping.text, 'sleeping until');
  assert.equal(sleeping.due, Date.parse(T(60_000)));
  assert.equal(stepNow({id: 'a', status: 'waiting', signal: 'approve', due_at: T(9)}).text, 'waiting for signal "approve" until');
  assert.equal(stepNow({id: 'a', status: 'waiting', signal: 'approve', due_at: null}).text, 'waiting for signal "approve", no timeout');
  assert.equal(stepNow({id: 'a', status: 'running', attempts: 3}).text, 'running attempt 3');
  assert.equal(stepNow({id: 'a', status: 'scheduled', attempts: 0}).text, 'scheduled, due now');
  const hb = stepNow({id: 'a', status: 'running', attempts: 1, heartbeat: {at: T(7), details: {progress: 0.5}}});
  assert.deepEqual(hb.heartbeat, {at: Date.parse(T(7)), details: {progress: 0.5}});
  assert.equal(stepNow(null), null);
  // An attempt waiting for the capacity of its host (KEEL_HOST_LIMITS) is not running yet.
  const wait = {host: 'payments.internal', limit: 'payments.internal=20,50/s', concurrency: 20, rate: '50/s', attempt: 2, since: T(3)};
  const capped = stepNow({id: 'a', status: 'running', attempts: 2, waiting_for_capacity: wait});
  assert.equal(capped.text, 'waiting for capacity of payments.internal');
  assert.deepEqual(capped.capacity, {host: 'payments.internal', limit: 'payments.internal=20,50/s', since: Date.parse(T(3))});
  // Only while running; a malformed one is left out.
  assert.equal(stepNow({id: 'a', status: 'completed', attempts: 2, waiting_for_capacity: wait}).capacity, null);
  assert.equal(stepNow({id: 'a', status: 'running', attempts: 1, waiting_for_capacity: {host: 7}}).text, 'running attempt 1');
  assert.equal(stepNow({id: 'a', status: 'running', attempts: 1, waiting_for_capacity: null}).capacity, null);
});

test('the status filter: several statuses, canonical order, unknown ones dropped', () => {
  assert.deepEqual(parseStatusFilter('failed,running'), ['running', 'failed']);
  assert.deepEqual(parseStatusFilter('failed, bogus,,failed'), ['failed']);
  assert.deepEqual(parseStatusFilter(''), []);
  assert.deepEqual(parseStatusFilter(null), []);
  assert.equal(statusFilterParam(['failed', 'running']), 'running,failed');
  assert.equal(statusFilterParam([]), '');
});

// ---- flow steps: parallel and for_each as a tree ------------------------------------------------

const flowDef = [
  {id: 'prep', activity: {url: 'http://h/ok'}},
  {id: 'notify', parallel: {branches: {sms: [{id: 'send-sms', activity: {url: 'http://h/sms'}}, {id: 'nap', sleep: '1s'}], email: [{id: 'send-email', activity: {url: 'http://h/mail'}}]}}},
  {id: 'charge-all', for_each: {items: '${input.orders}', concurrency: 5, steps: [
    {id: 'charge', activity: {url: 'http://h/charge'}},
    {id: 'lines', for_each: {items: '${item.lines}', steps: [{id: 'approve-line', wait: {signal: 'line-ok'}}]}},
  ]}},
  {id: 'done', activity: {url: 'http://h/ok'}},
];

// A row as GET /v1/executions/{id} gives it.
const row = (path, kind, status, position, extra = {}) => {
  const parts = path.split('/');
  return {id: parts[parts.length - 1], path, parent: parts.length > 1 ? parts.slice(0, -1).join('/') : null, kind, position, status, attempts: 0, output: null, error: null, ...extra};
};

function runningFlow(orders = 4) {
  // The API's order: top-level by position, then grouped by parent path (here shuffled a bit).
  return {
    id: 'f', workflow: 'flow', version: 1, status: 'running', created_at: T(0), completed_at: null,
    input: {orders: Array.from({length: orders}, (_, i) => ({n: i, lines: []}))},
    steps: [
      row('prep', 'activity', 'completed', 0, {attempts: 1}),
      row('notify', 'parallel', 'completed', 1),
      row('charge-all', 'for_each', 'running', 2),
      row('done', 'activity', 'pending', 3),
      row('charge-all/1', 'iteration', 'failed', 1),
      row('charge-all/0', 'iteration', 'completed', 0),
      row('charge-all/2', 'iteration', 'running', 2),
      row('charge-all/0/charge', 'activity', 'completed', 0, {attempts: 1}),
      row('charge-all/0/lines', 'for_each', 'completed', 1, {output: []}),
      row('charge-all/1/charge', 'activity', 'failed', 0, {attempts: 1}),
      row('charge-all/2/charge', 'activity', 'running', 0, {attempts: 1}),
      row('notify/email', 'branch', 'completed', 0),
      row('notify/sms', 'branch', 'completed', 1),
      row('notify/email/send-email', 'activity', 'completed', 0, {attempts: 1}),
      row('notify/sms/nap', 'sleep', 'completed', 1),
      row('notify/sms/send-sms', 'activity', 'completed', 0, {attempts: 1}),
    ],
  };
}

test('definitions: parallel and for_each kinds, details, and every nested step by id', () => {
  assert.equal(stepKind(flowDef[1]), 'parallel');
  assert.equal(stepKind(flowDef[2]), 'for_each');
  assert.equal(stepDetail(flowDef[1]), '2 branches: email, sms', 'branches in name order, as the engine runs them');
  assert.equal(stepDetail(flowDef[2]), 'for each of ${input.orders} · 5 at once');
  assert.equal(stepDetail({id: 'x', for_each: {items: '${input.a}', steps: []}}), 'for each of ${input.a} · 10 at once', 'the default concurrency');
  const idx = indexDefinition(flowDef);
  assert.deepEqual([...idx.keys()], ['prep', 'notify', 'send-email', 'send-sms', 'nap', 'charge-all', 'charge', 'lines', 'approve-line', 'done']);
  assert.deepEqual(idx.get('nap'), {def: flowDef[1].parallel.branches.sms[1], kind: 'sleep', parent: 'notify', branch: 'sms', depth: 1});
  assert.equal(idx.get('approve-line').parent, 'lines');
  assert.equal(idx.get('approve-line').depth, 2);
  assert.deepEqual(inputValue('${input.orders[1].n}', {orders: [{n: 5}, {n: 7}]}), 7);
  assert.equal(inputValue('${steps.a.output}', {}), undefined, 'only plain input paths are read');
  assert.deepEqual(inputValue([1, 2], null), [1, 2]);
});

test('the step tree: built from the flat steps[], by parent and position, with counts per status', () => {
  const exec = runningFlow();
  const {roots, byPath} = buildStepTree(exec, flowDef);
  assert.deepEqual(roots.map((n) => `${n.path}:${n.kind}:${n.status}`), ['prep:activity:completed', 'notify:parallel:completed', 'charge-all:for_each:running', 'done:activity:pending']);
  const notify = byPath.get('notify');
  assert.deepEqual(notify.children.map((n) => n.id), ['email', 'sms']);
  assert.deepEqual(byPath.get('notify/sms').children.map((n) => n.path), ['notify/sms/send-sms', 'notify/sms/nap'], 'by position, not by the order of the rows');
  assert.deepEqual(notify.counts, [{status: 'completed', n: 2}]);
  const loop = byPath.get('charge-all');
  assert.deepEqual(loop.children.map((n) => n.id), ['0', '1', '2']);
  assert.equal(countsText(loop.counts, loop.notStarted), '1 completed · 1 running · 1 failed · 1 not started');
  assert.equal(loop.total, 4, 'the item count, from the input, before the loop ends');
  assert.equal(byPath.get('charge-all/1').def, null, 'an iteration is no step of the definition');
  assert.equal(byPath.get('charge-all/0/charge').def, flowDef[2].for_each.steps[0]);
  assert.equal(byPath.get('charge-all/0/charge').depth, 2);
  // Steps of the definition that have not started in a branch or iteration are placeholders:
  // pending while their parent runs, skipped once it ended.
  const running = byPath.get('charge-all/2/lines');
  assert.deepEqual([running.placeholder, running.status, running.kind], [true, 'pending', 'for_each']);
  const failed = byPath.get('charge-all/1/lines');
  assert.deepEqual([failed.placeholder, failed.status], [true, 'skipped']);
  assert.equal(countsText(byPath.get('charge-all/1').counts), '1 failed · 1 skipped');
  // Expanded at first: containers and branches, and iterations that failed or still run.
  assert.deepEqual(['notify', 'notify/email', 'charge-all', 'charge-all/0', 'charge-all/1', 'charge-all/2'].map((p) => defaultExpanded(byPath.get(p))), [true, true, true, false, true, true]);
  // A completed for_each's count comes from its output.
  const ended = buildStepTree({...exec, input: null, steps: [row('charge-all', 'for_each', 'completed', 0, {output: [1, 2, 3]})]}, flowDef);
  assert.equal(ended.byPath.get('charge-all').total, 3);
  // Branches and iterations are no steps in the summary's count.
  assert.deepEqual(stepCounts(exec), {total: 11, done: 7, attempts: 6});
});

test('the step tree: a parallel not started yet shows its branches; rows of an old keeld are top-level', () => {
  const exec = {id: 'x', status: 'running', input: {orders: []}, steps: [row('prep', 'activity', 'running', 0), row('notify', 'parallel', 'pending', 1), row('charge-all', 'for_each', 'pending', 2), row('done', 'activity', 'pending', 3)]};
  const {byPath} = buildStepTree(exec, flowDef);
  assert.deepEqual(byPath.get('notify').children.map((n) => `${n.path}:${n.status}:${n.placeholder}`), ['notify/email:pending:true', 'notify/sms:pending:true']);
  assert.deepEqual(byPath.get('notify/sms').children.map((n) => n.id), ['send-sms', 'nap']);
  assert.equal(byPath.get('charge-all').total, 0, 'an empty array: nothing will run');
  // An old keeld: no path, parent, kind or position.
  const old = buildStepTree({id: 'o', status: 'completed', steps: [{id: 'b', status: 'completed'}, {id: 'a', status: 'completed'}]},
    [{id: 'b', sleep: '1s'}, {id: 'a', wait: {signal: 's'}}]);
  assert.deepEqual(old.roots.map((n) => `${n.path}:${n.kind}:${n.parent}`), ['b:sleep:null', 'a:wait:null']);
  // No definition at hand: the rows still make the tree.
  assert.equal(buildStepTree(runningFlow(), null).byPath.get('charge-all/2/charge').kind, 'activity');
});

test('a loop of 10,000 iterations: failed first, then running, then the first ones; the rest counted', () => {
  const children = Array.from({length: 10_000}, (_, i) => ({path: `l/${i}`, id: String(i), position: i, order: i,
    status: i === 7 || i === 9_000 ? 'failed' : i >= 9_990 ? 'running' : i >= 9_995 ? 'pending' : 'completed'}));
  const win = iterationWindow(children, 20);
  assert.equal(win.shown.length, 20);
  assert.deepEqual(win.shown.slice(0, 12).map((n) => n.id), ['7', '9000', ...Array.from({length: 10}, (_, i) => String(9_990 + i))]);
  assert.deepEqual(win.shown.slice(12).map((n) => n.id), ['0', '1', '2', '3', '4', '5', '6', '8']);
  assert.equal(win.hidden, 9_980);
  assert.deepEqual(win.hiddenCounts, [{status: 'completed', n: 9_980}]);
  assert.equal(countsText(statusCounts(children)), '9988 completed · 10 running · 2 failed');
  assert.equal(iterationWindow(children, 70).shown.length, 70, '"Show more" widens the window');
  assert.deepEqual(iterationWindow([], 20), {shown: [], hidden: 0, hiddenCounts: []});
});

test('the timeline has one row per step instance (its path), and events carry paths', () => {
  seq = 0;
  const at = (type, ms, step, path, attempt = null, data = {}) => ({...ev(type, ms, step, attempt, data), path});
  const events = [
    ev('execution_started', 0),
    at('step_scheduled', 0, 'charge-all', 'charge-all', null, {kind: 'for_each'}),
    at('step_scheduled', 0, 'charge', 'charge-all/0/charge', null, {kind: 'activity'}),
    at('step_scheduled', 0, 'charge', 'charge-all/1/charge', null, {kind: 'activity'}),
    at('attempt_started', 1, 'charge', 'charge-all/0/charge', 1),
    at('attempt_started', 1, 'charge', 'charge-all/1/charge', 1),
    at('attempt_failed', 5, 'charge', 'charge-all/1/charge', 1, {error: {type: 'http_5xx'}, next_attempt_at: T(1005)}),
    at('step_completed', 9, 'charge', 'charge-all/0/charge', 1, {output: 1}),
  ];
  const exec = {id: 'x', status: 'running', created_at: T(0), steps: [
    row('charge-all', 'for_each', 'running', 0), row('charge-all/0', 'iteration', 'completed', 0), row('charge-all/1', 'iteration', 'running', 1),
    row('charge-all/0/charge', 'activity', 'completed', 0), row('charge-all/1/charge', 'activity', 'retrying', 0)]};
  const tl = deriveTimeline(exec, events, Date.parse(T(100)), flowDef);
  const byPath = new Map(tl.rows.map((r) => [r.step, r]));
  assert.deepEqual(byPath.get('charge-all/0/charge').attempts.map((a) => a.state), ['ok']);
  assert.deepEqual(byPath.get('charge-all/1/charge').attempts.map((a) => a.state), ['failed']);
  assert.equal(byPath.get('charge-all/1/charge').id, 'charge');
  assert.equal(byPath.get('charge-all/1').kind, 'iteration', 'an iteration named "1" is not confused with a step');
  assert.deepEqual(pendingWork(exec, tl).map((p) => [p.kind, p.step]), [['retry', 'charge-all/1/charge']]);
});

test('Retry and Send signal with nested steps: any waiting instance counts, and waits still ahead in a loop', () => {
  const defs = [
    {id: 'prep', activity: {url: 'http://h/a'}},
    {id: 'approvals', for_each: {items: '${input.people}', concurrency: 2, steps: [{id: 'ask', activity: {url: 'http://h/ask'}}, {id: 'approval', wait: {signal: 'approve'}}]}},
    {id: 'fan', parallel: {branches: {a: [{id: 'a1', activity: {url: 'http://h/a'}}], b: [{id: 'b-wait', wait: {any: ['go', 'stop']}}]}}},
  ];
  const exec = (steps, extra = {}) => ({id: 'x', workflow: 'w', version: 1, status: 'running', created_at: T(0), input: {people: ['ann', 'bob', 'cy']}, steps, ...extra});
  const tlOf = (x) => deriveTimeline(x, [], Date.parse(T(1000)), defs);
  // One iteration's wait is waiting; the loop will start more iterations; the parallel is ahead.
  let x = exec([row('prep', 'activity', 'completed', 0), row('approvals', 'for_each', 'running', 1), row('fan', 'parallel', 'pending', 2),
    row('approvals/0', 'iteration', 'running', 0), row('approvals/0/ask', 'activity', 'completed', 0), row('approvals/0/approval', 'wait', 'waiting', 1, {signal: 'approve'})]);
  assert.deepEqual(signalOffer(x, defs, tlOf(x)), {offer: true, waiting: ['approve'], ahead: ['go', 'stop']});
  // Every iteration past its wait, the loop done; the parallel runs and its wait is done too.
  const done = (p, k, pos) => row(p, k, 'completed', pos);
  x = exec([done('prep', 'activity', 0), done('approvals', 'for_each', 1), row('fan', 'parallel', 'running', 2),
    ...[0, 1, 2].flatMap((i) => [done(`approvals/${i}`, 'iteration', i), done(`approvals/${i}/ask`, 'activity', 0), done(`approvals/${i}/approval`, 'wait', 1)]),
    row('fan/a', 'branch', 'running', 0), row('fan/a/a1', 'activity', 'running', 0), done('fan/b', 'branch', 1), done('fan/b/b-wait', 'wait', 0)]);
  assert.equal(signalOffer(x, defs, tlOf(x)).offer, false);
  // A running loop whose iterations have not reached the wait yet: offered as ahead.
  x = exec([done('prep', 'activity', 0), row('approvals', 'for_each', 'running', 1), row('fan', 'parallel', 'pending', 2),
    row('approvals/0', 'iteration', 'running', 0), row('approvals/0/ask', 'activity', 'retrying', 0)]);
  assert.deepEqual(signalOffer(x, defs, tlOf(x)).ahead, ['approve', 'go', 'stop']);
  // Retry: resumes at the top-level step that failed (the loop), not at a nested row.
  const failed = {...x, status: 'failed', error: {step: 'ask', path: 'approvals/0/ask', type: 't'},
    steps: [done('prep', 'activity', 0), row('approvals', 'for_each', 'failed', 1), row('fan', 'parallel', 'skipped', 2),
      row('approvals/0', 'iteration', 'failed', 0), row('approvals/0/ask', 'activity', 'failed', 0)]};
  assert.deepEqual(retryable(failed, []), {ok: true, reason: ''});
  assert.equal(retryable({...failed, steps: failed.steps.map((s) => (s.parent == null && s.status === 'failed' ? {...s, status: 'completed'} : s))}, []).ok, false,
    'only a nested row failed: the execution failed outside a step');
});

// ---- if steps and child workflows ---------------------------------------------------------------

// Shaped like the backend's: the if row has kind "if"; only the branch taken has rows (a
// "branch" row with id then or else, then its steps at <if>/<branch>/<step>).
const ifDef = [
  {id: 'prep', activity: {url: 'http://h/ok'}},
  {id: 'big', if: '${input.big}',
    then: [{id: 'review', wait: {signal: 'approve'}}, {id: 'notify', parallel: {branches: {mail: [{id: 'mail-boss', activity: {url: 'http://h/m'}}]}}}],
    else: [{id: 'auto', set: {by: 'policy'}}]},
  {id: 'ship', workflow: {name: 'shipping', input: {order: '${input.order}'}}},
];
const ifExec = (status, steps, extra = {}) => ({id: 'o-1', workflow: 'order', version: 1, status, created_at: T(0), input: {big: true}, steps, ...extra});
const shape = (byPath, paths) => paths.map((p) => {
  const n = byPath.get(p);
  return n ? `${p}:${n.kind}:${n.status}${n.placeholder ? ':placeholder' : ''}` : `${p}:missing`;
});

test('definitions: if and workflow kinds, details, and the steps of both branches by id', () => {
  assert.equal(stepKind(ifDef[1]), 'if');
  assert.equal(stepKind(ifDef[2]), 'workflow');
  assert.equal(stepDetail(ifDef[1]), 'if ${input.big}');
  assert.equal(stepDetail({id: 'x', if: '${input.a}', then: [{id: 'y', sleep: '1s'}]}), 'if ${input.a} · no else');
  assert.equal(stepDetail(ifDef[2]), 'workflow shipping · latest version');
  assert.equal(stepDetail({id: 's', workflow: {name: 'shipping', version: 3}}), 'workflow shipping · v3');
  assert.deepEqual(childWorkflowOf(ifDef[2]), {name: 'shipping', version: null});
  assert.equal(childWorkflowOf(ifDef[0]), null);
  assert.deepEqual(nestedLists(ifDef[1]).map((b) => `${b.name}:${b.steps.length}`), ['then:2', 'else:1']);
  assert.deepEqual(nestedLists({id: 'x', if: '${a}', then: []}).map((b) => b.name), ['then'], 'no else: one list');
  const idx = indexDefinition(ifDef);
  assert.deepEqual([...idx.keys()], ['prep', 'big', 'review', 'notify', 'mail-boss', 'auto', 'ship']);
  assert.deepEqual([idx.get('auto').parent, idx.get('auto').branch, idx.get('auto').depth], ['big', 'else', 1]);
  assert.deepEqual([idx.get('mail-boss').parent, idx.get('mail-boss').depth], ['notify', 2]);
  assert.equal(statusLabel(NOT_TAKEN), 'not taken');
  assert.equal(statusLabel('pending'), 'pending');
});

test('an if that took then: else and its steps are not taken, the rest of then is pending', () => {
  seq = 0;
  const events = [ev('execution_started', 0), {...ev('step_scheduled', 5, 'big', null, {kind: 'if', condition: true, branch: 'then'}), path: 'big'}];
  const exec = ifExec('running', [row('prep', 'activity', 'completed', 0), row('big', 'if', 'running', 1), row('ship', 'workflow', 'pending', 2),
    row('big/then', 'branch', 'running', 0), row('big/then/review', 'wait', 'waiting', 0)]);
  const {byPath} = buildStepTree(exec, ifDef, ifDecisions(events));
  const big = byPath.get('big');
  assert.equal(big.taken, 'then');
  assert.equal(big.condition, true);
  assert.equal(ifOutcomeText(big), 'took then (condition true)');
  assert.deepEqual(shape(byPath, ['big/then', 'big/else', 'big/then/review', 'big/then/notify', 'big/then/notify/mail', 'big/else/auto']),
    ['big/then:branch:running', 'big/else:branch:not_taken:placeholder', 'big/then/review:wait:waiting', 'big/then/notify:parallel:pending:placeholder',
      'big/then/notify/mail:branch:pending:placeholder', 'big/else/auto:set:not_taken:placeholder']);
  assert.deepEqual(big.children.map((n) => n.id), ['then', 'else']);
  assert.equal(countsText(big.counts), '1 running · 1 not taken');
  assert.equal(byPath.get('big/else').body, ifDef[1].else);
  // A wait in the branch taken is offered; a wait of the branch not taken would never come.
  const defs = [{id: 'big', if: '${input.big}', then: [{id: 'review', wait: {signal: 'approve'}}], else: [{id: 'hold', wait: {signal: 'release'}}]}];
  const x = ifExec('running', [row('big', 'if', 'running', 0), row('big/then', 'branch', 'running', 0), row('big/then/review', 'wait', 'pending', 0)]);
  assert.deepEqual(signalOffer(x, defs, deriveTimeline(x, events, Date.parse(T(100)), defs)), {offer: true, waiting: [], ahead: ['approve']});
  // Before the if decides, both branches' waits are ahead.
  const before = ifExec('running', [row('big', 'if', 'pending', 0)]);
  assert.deepEqual(signalOffer(before, defs, deriveTimeline(before, [], Date.parse(T(100)), defs)).ahead, ['approve', 'release']);
  assert.deepEqual(shape(buildStepTree(before, defs).byPath, ['big/then', 'big/else', 'big/else/hold']),
    ['big/then:branch:pending:placeholder', 'big/else:branch:pending:placeholder', 'big/else/hold:wait:pending:placeholder']);
});

test('an if that took else, known from its rows alone; a nested container of then is not taken to the bottom', () => {
  const exec = ifExec('completed', [row('prep', 'activity', 'completed', 0), row('big', 'if', 'completed', 1), row('ship', 'workflow', 'completed', 2, {child: 'o-1:ship'}),
    row('big/else', 'branch', 'completed', 1), row('big/else/auto', 'set', 'completed', 0)], {input: {big: false}});
  const {byPath} = buildStepTree(exec, ifDef);
  const big = byPath.get('big');
  assert.deepEqual([big.taken, big.condition], ['else', false]);
  assert.equal(ifOutcomeText(big), 'took else (condition false)');
  assert.deepEqual(shape(byPath, ['big/then', 'big/then/review', 'big/then/notify', 'big/then/notify/mail', 'big/then/notify/mail/mail-boss', 'big/else', 'big/else/auto']),
    ['big/then:branch:not_taken:placeholder', 'big/then/review:wait:not_taken:placeholder', 'big/then/notify:parallel:not_taken:placeholder',
      'big/then/notify/mail:branch:not_taken:placeholder', 'big/then/notify/mail/mail-boss:activity:not_taken:placeholder',
      'big/else:branch:completed', 'big/else/auto:set:completed']);
  assert.deepEqual(big.children.map((n) => `${n.id}:${n.position}`), ['then:0', 'else:1'], 'then before else');
  assert.equal(countsText(byPath.get('big/then').counts), '2 not taken');
  // Not taken is not skipped: the execution completed, and nothing was stopped.
  assert.equal(countsText(big.counts), '1 completed · 1 not taken');
});

test('an if whose condition was false without an else, one not decided yet, one whose condition failed', () => {
  const noElse = [{id: 'big', if: '${input.big}', then: [{id: 'review', wait: {signal: 'approve'}}]}, {id: 'after', sleep: '1s'}];
  // Completed without a branch row: its condition was false and it had nothing to run.
  let exec = ifExec('running', [row('big', 'if', 'completed', 0), row('after', 'sleep', 'sleeping', 1)]);
  let tree = buildStepTree(exec, noElse);
  assert.equal(tree.byPath.get('big').taken, null);
  assert.equal(ifOutcomeText(tree.byPath.get('big')), 'condition false, no else: nothing ran');
  assert.deepEqual(shape(tree.byPath, ['big/then', 'big/then/review', 'big/else']), ['big/then:branch:not_taken:placeholder', 'big/then/review:wait:not_taken:placeholder', 'big/else:missing']);
  // The same from the history, while the rows are older (the if still running).
  seq = 0;
  const said = ifDecisions([{...ev('step_scheduled', 1, 'big', null, {kind: 'if', condition: false, branch: null}), path: 'big'}]);
  tree = buildStepTree(ifExec('running', [row('big', 'if', 'running', 0)]), noElse, said);
  assert.deepEqual([tree.byPath.get('big').taken, tree.byPath.get('big/then').status], [null, NOT_TAKEN]);
  // Pending: nothing decided, both branches are as any step not started.
  tree = buildStepTree(ifExec('running', [row('big', 'if', 'pending', 0), row('after', 'sleep', 'pending', 1)]), noElse);
  assert.deepEqual([tree.byPath.get('big').taken, ifOutcomeText(tree.byPath.get('big')), tree.byPath.get('big/then').status], [undefined, null, 'pending']);
  // The condition failed (invalid_condition): no branch was taken, and none will run: skipped.
  const failed = {...ifExec('failed', [row('big', 'if', 'failed', 0, {error: {type: 'invalid_condition'}}), row('after', 'sleep', 'skipped', 1)])};
  tree = buildStepTree(failed, ifDef.slice(1, 2), ifDecisions([{...ev('step_scheduled', 1, 'big', null, {kind: 'if'}), path: 'big'}]));
  assert.deepEqual([tree.byPath.get('big').taken, ifOutcomeText(tree.byPath.get('big'))], [undefined, null]);
  assert.deepEqual(shape(tree.byPath, ['big/then', 'big/else', 'big/else/auto']), ['big/then:branch:skipped:placeholder', 'big/else:branch:skipped:placeholder', 'big/else/auto:set:skipped:placeholder']);
  // A retry that resumed the branch taken says so without a condition; the first one's stays.
  const again = ifDecisions([
    {...ev('step_scheduled', 1, 'big', null, {kind: 'if', condition: true, branch: 'then'}), path: 'big'},
    {...ev('step_scheduled', 9, 'big', null, {kind: 'if', resumed: true, branch: 'then'}), path: 'big'},
  ]);
  assert.deepEqual(again.get('big'), {branch: 'then', condition: true});
});

test('an if inside a loop: each iteration decides on its own', () => {
  const defs = [{id: 'all', for_each: {items: '${input.orders}', steps: [{id: 'big', if: '${item.big}', then: [{id: 'review', wait: {signal: 'ok'}}], else: [{id: 'auto', set: 1}]}]}}];
  const exec = {id: 'l', status: 'running', created_at: T(0), input: {orders: [{big: true}, {big: false}, {big: true}]}, steps: [
    row('all', 'for_each', 'running', 0), row('all/0', 'iteration', 'running', 0), row('all/1', 'iteration', 'completed', 1),
    row('all/0/big', 'if', 'running', 0), row('all/0/big/then', 'branch', 'running', 0), row('all/0/big/then/review', 'wait', 'waiting', 0),
    row('all/1/big', 'if', 'completed', 0), row('all/1/big/else', 'branch', 'completed', 1), row('all/1/big/else/auto', 'set', 'completed', 0)]};
  const {byPath} = buildStepTree(exec, defs);
  assert.deepEqual(shape(byPath, ['all/0/big/else/auto', 'all/1/big/then/review', 'all/1/big/else/auto']),
    ['all/0/big/else/auto:set:not_taken:placeholder', 'all/1/big/then/review:wait:not_taken:placeholder', 'all/1/big/else/auto:set:completed']);
  assert.deepEqual([byPath.get('all/0/big').taken, byPath.get('all/1/big').taken], ['then', 'else']);
  // A loop in a branch not taken: no item counts as not started, since none will be.
  const loopIn = [{id: 'big', if: '${input.big}', then: [{id: 'each', for_each: {items: '${input.orders}', steps: [{id: 'x', set: 1}]}}], else: [{id: 'auto', set: 1}]}];
  const t = buildStepTree({id: 'e', status: 'completed', input: {big: false, orders: [1, 2, 3]}, steps: [row('big', 'if', 'completed', 0), row('big/else', 'branch', 'completed', 1), row('big/else/auto', 'set', 'completed', 0)]}, loopIn);
  assert.deepEqual([t.byPath.get('big/then/each').status, t.byPath.get('big/then/each').total, t.byPath.get('big/then/each').notStarted], [NOT_TAKEN, null, 0]);
});

test('a workflow step: its child from the row or the history, the wait as a segment, and the pending work', () => {
  seq = 0;
  const events = [
    ev('execution_started', 0),
    {...ev('step_scheduled', 10, 'ship', null, {kind: 'workflow', workflow: 'shipping', version: null}), path: 'ship'},
    {...ev('child_started', 10, 'ship', null, {child: 'o-1:ship', workflow: 'shipping', version: 1, again: false}), path: 'ship'},
  ];
  const running = ifExec('running', [row('ship', 'workflow', 'waiting', 0, {child: 'o-1:ship'})]);
  let tl = deriveTimeline(running, events, Date.parse(T(500)), ifDef);
  const r = tl.rows.find((x) => x.step === 'ship');
  assert.equal(r.kind, 'workflow');
  assert.deepEqual(r.segments.map((x) => [x.type, x.state, x.end, x.child]), [['child', 'running', null, 'o-1:ship']]);
  assert.equal(stepChild(running.steps[0], r), 'o-1:ship');
  assert.deepEqual(pendingWork(running, tl).map((p) => [p.kind, p.step, p.child, p.text]), [['child', 'ship', 'o-1:ship', 'Waiting for child execution']]);
  // The row says whether the child exists: one that could not start (child_not_found) never
  // does, although step_scheduled named its id. Without a row, the history's id.
  const notYet = ifExec('running', [row('ship', 'workflow', 'waiting', 0, {child: null})]);
  tl = deriveTimeline(notYet, events, Date.parse(T(500)), ifDef);
  assert.equal(stepChild(notYet.steps[0], tl.rows[0]), null);
  assert.deepEqual(pendingWork(notYet, tl).map((p) => [p.child, p.text]), [[null, 'Starting its child execution']]);
  tl = deriveTimeline(ifExec('running', []), events, Date.parse(T(500)), ifDef);
  assert.equal(stepChild(null, tl.rows.find((x) => x.step === 'ship')), 'o-1:ship');
  assert.equal(stepChild(null, null), null);
  assert.equal(stepNow({id: 'ship', kind: 'workflow', status: 'waiting', child: 'o-1:ship', due_at: null}).text, 'waiting for child o-1:ship');
  // A list item's current_step has no kind: the definition's step tells a workflow step from a
  // wait; without it, "waiting" claims nothing.
  const current = {id: 'ship', status: 'waiting', attempts: 0, signal: null, due_at: null};
  assert.equal(stepNow(current, ifDef[2]).text, 'waiting for its child execution');
  assert.equal(stepNow(current).text, 'waiting, no timeout');
  assert.equal(stepNow({...current, kind: 'wait'}).text, 'waiting for a signal, no timeout', 'a row of steps[] has its kind');
  assert.equal(stepNow({...current, id: 'decide', due_at: T(9)}, {id: 'decide', wait: {any: ['approve', 'reject']}}).text, 'waiting for any signal of "approve" or "reject" until');
  assert.equal(stepNow({...current, id: 'a', signal: 'go'}, {id: 'a', wait: {signal: 'go'}}).text, 'waiting for signal "go", no timeout');
  // The child ended: the segment closes with the step; it failed: in red.
  const done = [...events, {...ev('step_completed', 900, 'ship', null, {output: {tracking: 'T1'}}), path: 'ship'}];
  tl = deriveTimeline({...running, steps: [row('ship', 'workflow', 'completed', 0, {child: 'o-1:ship'})]}, done, Date.parse(T(1000)), ifDef);
  assert.deepEqual(tl.rows.find((x) => x.step === 'ship').segments.map((x) => [x.state, x.end - x.start]), [['done', 890]]);
  assert.deepEqual(pendingWork({...running}, tl), []);
  const failed = [...events, {...ev('step_failed', 700, 'ship', null, {error: {type: 'child_failed', child: {id: 'o-1:ship', status: 'failed'}}}), path: 'ship'}];
  tl = deriveTimeline({...running, status: 'failed'}, failed, Date.parse(T(1000)), ifDef);
  assert.deepEqual(tl.rows.find((x) => x.step === 'ship').segments.map((x) => [x.state, x.error.type]), [['failed', 'child_failed']]);
  // Which executions start children, and which have a parent.
  assert.equal(startsChildren({steps: []}, ifDef), true, 'a workflow step in the definition');
  assert.equal(startsChildren({steps: [row('a', 'workflow', 'pending', 0)]}, null), true, 'or in the rows');
  assert.equal(startsChildren({steps: [row('a', 'activity', 'completed', 0)]}, ifDef.slice(0, 2)), false);
  assert.deepEqual(parentOf({parent: {id: 'o-1', step: 'ship'}}), {id: 'o-1', step: 'ship'});
  assert.equal(parentOf({parent: null}), null);
  assert.equal(parentOf({}), null, 'a keeld from before child workflows');
  assert.equal(isCodeExecution({kind: 'code', name: 'checkout', workflow: null}), true);
  assert.equal(isCodeExecution({kind: 'workflow', workflow: 'order'}), false);
  assert.equal(isCodeExecution({workflow: 'order'}), false, 'a keeld from before code executions');
  assert.equal(isCodeExecution(null), false);
  // A retry of the parent that replaced a cancelled child: the step now waits for the new one.
  const again = [...events, {...ev('step_failed', 300, 'ship', null, {error: {type: 'child_failed'}}), path: 'ship'},
    {...ev('step_scheduled', 400, 'ship', null, {kind: 'workflow', workflow: 'shipping', version: null}), path: 'ship'},
    {...ev('child_started', 400, 'ship', null, {child: 'o-1:ship:2', workflow: 'shipping', version: 1, again: false}), path: 'ship'}];
  tl = deriveTimeline(ifExec('running', []), again, Date.parse(T(500)), ifDef);
  const rs = tl.rows.find((x) => x.step === 'ship');
  assert.equal(rs.child, 'o-1:ship:2');
  assert.deepEqual(rs.segments.map((x) => [x.state, x.child]), [['failed', 'o-1:ship'], ['running', 'o-1:ship:2']]);
  assert.equal(eventSummary(again[4]), 'workflow step scheduled (shipping)');
  assert.equal(eventSummary(again[5]), 'started child o-1:ship:2 (shipping v1)');
  assert.equal(eventSummary({type: 'child_started', data: {child: 'o-1:ship', workflow: 'shipping', version: 2, again: true}}), 'asked child o-1:ship (shipping v2) again');
});

test('event summaries of ifs and workflow steps', () => {
  const sched = (step, data) => eventSummary({seq: 1, type: 'step_scheduled', step, path: step, attempt: null, at: T(0), data});
  assert.equal(sched('big', {kind: 'if', condition: true, branch: 'then'}), 'if big: took then (condition true)');
  assert.equal(sched('big', {kind: 'if', condition: false, branch: 'else'}), 'if big: took else (condition false)');
  assert.equal(sched('big', {kind: 'if', condition: false, branch: null}), 'if big: condition false, no else: nothing to run');
  assert.equal(sched('big', {kind: 'if', resumed: true, branch: 'then'}), 'if big: resumed then (condition not evaluated again)');
  assert.equal(sched('big', {kind: 'if'}), 'if big scheduled', 'its condition failed: the step_failed after it says why');
  assert.equal(sched('ship', {kind: 'workflow', child: 'order-1:ship', workflow: 'shipping', version: null}), 'started child order-1:ship (shipping)');
  assert.equal(sched('ship', {kind: 'workflow', child: 'order-1:ship', workflow: 'shipping', version: 2}), 'started child order-1:ship (shipping v2)');
  assert.equal(sched('a', {kind: 'activity'}), 'activity step scheduled');
});

// ---- the diagram's overlay: the step tree mapped onto the boxes of the definition -------------

const lineOf = (st) => overlayParts(st).map((p) => p.sep + p.text).join('');
const overlayOf = (exec, defs, events = []) => {
  const tl = deriveTimeline(exec, events, Date.parse(T(1000)), defs);
  return diagramOverlay(buildStepTree(exec, defs, tl.ifs), defs, {tl});
};

test('the diagram\'s overlay: one state per box, the if\'s lane taken and not taken, a pending if neither', () => {
  seq = 0;
  const events = [ev('execution_started', 0), {...ev('step_scheduled', 5, 'big', null, {kind: 'if', condition: true, branch: 'then'}), path: 'big'}];
  const exec = ifExec('running', [row('prep', 'activity', 'completed', 0), row('big', 'if', 'running', 1), row('ship', 'workflow', 'pending', 2),
    row('big/then', 'branch', 'running', 0), row('big/then/review', 'wait', 'waiting', 0)]);
  const ov = overlayOf(exec, ifDef, events);
  // Every step of the definition, nested ones too, in definition order; no box for branches.
  assert.deepEqual([...ov.keys()], ['prep', 'big', 'review', 'notify', 'mail-boss', 'auto', 'ship']);
  assert.deepEqual([...ov.values()].map((st) => `${st.id}:${st.status}`),
    ['prep:completed', 'big:running', 'review:waiting', 'notify:pending', 'mail-boss:pending', 'auto:not_taken', 'ship:pending']);
  const big = ov.get('big');
  assert.deepEqual(big.lanes, {then: {state: 'taken', n: 1}, else: {state: 'not_taken', n: 0}});
  assert.deepEqual([laneText(big.lanes.then), laneText(big.lanes.else)], ['taken', 'not taken']);
  assert.equal(lineOf(big), 'running · took then (condition true)');
  assert.equal(lineOf(ov.get('auto')), 'not taken', 'in words, not only a colour');
  assert.equal(lineOf(ov.get('notify')), 'pending');
  assert.equal(ov.get('review').inLoop, false);
  assert.equal(ov.get('review').counts, undefined, 'one status outside a loop, no counts');
  // Each part carries its status for its colour; the first has no separator.
  assert.deepEqual(overlayParts(big), [{text: 'running', status: 'running', sep: ''}, {text: 'took then (condition true)', status: null, sep: ' · '}]);

  // Not reached yet: neither lane is taken, and the line says nothing about a branch.
  const before = overlayOf(ifExec('running', [row('prep', 'activity', 'running', 0), row('big', 'if', 'pending', 1), row('ship', 'workflow', 'pending', 2)]), ifDef);
  assert.deepEqual(before.get('big').lanes, {then: {state: null, n: 0}, else: {state: null, n: 0}});
  assert.deepEqual([laneText(before.get('big').lanes.then), laneText(before.get('big').lanes.else)], ['', '']);
  assert.equal(lineOf(before.get('big')), 'pending');
  assert.deepEqual(['review', 'auto'].map((id) => before.get(id).status), ['pending', 'pending'], 'both branches as any step not started');
  // Its condition failed: nothing decided either.
  const failed = overlayOf(ifExec('failed', [row('prep', 'activity', 'completed', 0), row('big', 'if', 'failed', 1, {error: {type: 'invalid_condition'}}), row('ship', 'workflow', 'skipped', 2)]), ifDef);
  assert.deepEqual([failed.get('big').lanes.then.state, failed.get('big').lanes.else.state, failed.get('auto').status], [null, null, 'skipped']);

  // Else taken, from the rows alone; and false without an else: the empty lane is the one taken.
  const elseTaken = overlayOf(ifExec('completed', [row('prep', 'activity', 'completed', 0), row('big', 'if', 'completed', 1), row('ship', 'workflow', 'completed', 2, {child: 'o-1:ship'}),
    row('big/else', 'branch', 'completed', 1), row('big/else/auto', 'set', 'completed', 0)]), ifDef);
  assert.deepEqual(elseTaken.get('big').lanes, {then: {state: 'not_taken', n: 0}, else: {state: 'taken', n: 1}});
  assert.deepEqual(['review', 'notify', 'mail-boss', 'auto'].map((id) => elseTaken.get(id).status), ['not_taken', 'not_taken', 'not_taken', 'completed']);
  const noElse = [{id: 'gift', if: '${input.gift}', then: [{id: 'wrap', sleep: '1s'}]}];
  const none = overlayOf(ifExec('completed', [row('gift', 'if', 'completed', 0)]), noElse).get('gift');
  assert.deepEqual(none.lanes, {then: {state: 'not_taken', n: 0}, else: {state: 'taken', n: 1}});
  assert.equal(lineOf(none), 'completed · condition false, no else: nothing ran');
});

test('the diagram\'s overlay: a workflow step\'s child execution, a wait for any signal and which one ended it', () => {
  seq = 0;
  const events = [
    ev('execution_started', 0),
    {...ev('step_scheduled', 10, 'ship', null, {kind: 'workflow', workflow: 'shipping', version: null}), path: 'ship'},
    {...ev('child_started', 10, 'ship', null, {child: 'o-1:ship', workflow: 'shipping', version: 1, again: false}), path: 'ship'},
  ];
  const defs = [{id: 'ship', workflow: {name: 'shipping'}}, {id: 'decide', wait: {any: ['approve', 'reject']}}];
  const exec = ifExec('running', [row('ship', 'workflow', 'waiting', 0, {child: 'o-1:ship'}), row('decide', 'wait', 'pending', 1)]);
  const tl = deriveTimeline(exec, events, Date.parse(T(100)), defs);
  const children = new Map([['o-1:ship', {id: 'o-1:ship', status: 'running'}]]);
  let ov = diagramOverlay(buildStepTree(exec, defs, tl.ifs), defs, {tl, children});
  assert.deepEqual([ov.get('ship').child, ov.get('ship').childStatus], ['o-1:ship', 'running']);
  assert.equal(lineOf(ov.get('ship')), 'waiting · child o-1:ship (running)');
  assert.equal(ov.get('decide').signal, null, 'not ended yet');
  assert.equal(lineOf(ov.get('decide')), 'pending');
  // The row says whether the child exists: none yet, although the history named its id.
  ov = diagramOverlay(buildStepTree({...exec, steps: [row('ship', 'workflow', 'waiting', 0, {child: null})]}, defs), defs, {tl});
  assert.equal(ov.get('ship').child, null);
  assert.equal(lineOf(ov.get('ship')), 'waiting');
  // Without the statuses of the children, the id alone.
  ov = overlayOf(ifExec('completed', [row('ship', 'workflow', 'completed', 0, {child: 'o-1:ship'}), row('decide', 'wait', 'completed', 1, {output: {signal: 'reject', payload: {by: 'ann'}}})]), defs);
  assert.equal(lineOf(ov.get('ship')), 'completed · child o-1:ship');
  // The wait's output names the signal that ended it...
  assert.equal(ov.get('decide').signal, 'reject');
  assert.equal(lineOf(ov.get('decide')), 'completed · got "reject"');
  // ...and without an output at hand, the history's signal_consumed does.
  const waitEvents = [ev('execution_started', 0), {...ev('wait_started', 1, 'decide', null, {any: ['approve', 'reject']}), path: 'decide'},
    {...ev('signal_consumed', 5, 'decide', null, {signal: 'approve', payload: 1}), path: 'decide'}];
  ov = overlayOf(ifExec('completed', [row('ship', 'workflow', 'completed', 0), row('decide', 'wait', 'completed', 1)]), defs, waitEvents);
  assert.equal(ov.get('decide').signal, 'approve');
  // A wait for one signal needs no name: it is the one.
  const one = overlayOf(ifExec('completed', [row('w', 'wait', 'completed', 0, {output: {x: 1}})]), [{id: 'w', wait: {signal: 'go'}}]).get('w');
  assert.equal(lineOf(one), 'completed');
});

test('the diagram\'s overlay: steps in a loop show counts per status, never one status per iteration', () => {
  const ov = overlayOf(runningFlow(), flowDef);
  assert.deepEqual([...ov.keys()], ['prep', 'notify', 'send-email', 'send-sms', 'nap', 'charge-all', 'charge', 'lines', 'approve-line', 'done']);
  // The loop itself is one instance: its status and its iterations.
  const loop = ov.get('charge-all');
  assert.equal(loop.inLoop, false);
  assert.deepEqual(loop.iterations, {counts: [{status: 'completed', n: 1}, {status: 'running', n: 1}, {status: 'failed', n: 1}], notStarted: 1, total: 4});
  assert.equal(lineOf(loop), 'running · 4 iterations: 1 completed, 1 running, 1 failed, 1 not started');
  // A step of its body: counts over its instances, and the iteration not started yet; the box's
  // colour is the failure's.
  const charge = ov.get('charge');
  assert.deepEqual([charge.inLoop, charge.instances, charge.status, charge.notStarted], [true, 3, 'failed', 1]);
  assert.equal(lineOf(charge), '1 completed · 1 running · 1 failed · 1 not started');
  assert.deepEqual(overlayParts(charge).map((p) => p.status), ['completed', 'running', 'failed', 'pending']);
  // A loop inside the loop (completed, skipped, pending in the three iterations), and a step of
  // it that no iteration has reached.
  assert.equal(lineOf(ov.get('lines')), '1 completed · 1 pending · 1 skipped · 1 not started');
  assert.deepEqual([ov.get('approve-line').instances, ov.get('approve-line').status, lineOf(ov.get('approve-line'))], [0, 'pending', 'not started']);
  assert.deepEqual(['prep', 'notify', 'send-sms', 'done'].map((id) => ov.get(id).status), ['completed', 'completed', 'completed', 'pending']);

  // All done: completed; while iterations are still ahead, not yet (pending ranks before completed).
  const done = {...runningFlow(2), status: 'completed', steps: [row('charge-all', 'for_each', 'completed', 0, {output: [1, 2]}),
    row('charge-all/0', 'iteration', 'completed', 0), row('charge-all/1', 'iteration', 'completed', 1),
    row('charge-all/0/charge', 'activity', 'completed', 0), row('charge-all/1/charge', 'activity', 'completed', 0),
    row('charge-all/0/lines', 'for_each', 'completed', 1, {output: []}), row('charge-all/1/lines', 'for_each', 'completed', 1, {output: []})]};
  const d = overlayOf(done, flowDef);
  assert.deepEqual([d.get('charge').status, lineOf(d.get('charge'))], ['completed', '2 completed']);
  assert.deepEqual([d.get('approve-line').status, lineOf(d.get('approve-line'))], ['skipped', 'none ran'], 'loops of no items: it never ran');
  const ahead = overlayOf({...done, status: 'running', input: {orders: [{}, {}, {}]}, steps: done.steps.map((r) => (r.path === 'charge-all' ? {...r, status: 'running', output: null} : r))}, flowDef);
  assert.deepEqual([ahead.get('charge').status, lineOf(ahead.get('charge'))], ['pending', '2 completed · 1 not started']);
});

test('the diagram\'s overlay: an if, a wait for any signal and a workflow step inside a loop', () => {
  const defs = [{id: 'all', for_each: {items: '${input.orders}', steps: [
    {id: 'big', if: '${item.big}', then: [{id: 'review', wait: {any: ['approve', 'reject']}}], else: [{id: 'auto', set: 1}]},
    {id: 'ship', workflow: {name: 'shipping'}}]}}];
  const exec = {id: 'l', status: 'running', created_at: T(0), input: {orders: [{big: true}, {big: false}, {big: true}, {big: true}, {}]}, steps: [
    row('all', 'for_each', 'running', 0),
    ...[0, 1, 2, 3].map((i) => row(`all/${i}`, 'iteration', i === 3 ? 'running' : 'completed', i)),
    row('all/0/big', 'if', 'completed', 0), row('all/0/big/then', 'branch', 'completed', 0), row('all/0/big/then/review', 'wait', 'completed', 0, {output: {signal: 'approve', payload: null}}),
    row('all/1/big', 'if', 'completed', 0), row('all/1/big/else', 'branch', 'completed', 1), row('all/1/big/else/auto', 'set', 'completed', 0),
    row('all/2/big', 'if', 'completed', 0), row('all/2/big/then', 'branch', 'completed', 0), row('all/2/big/then/review', 'wait', 'completed', 0, {output: {signal: 'approve', payload: null}}),
    row('all/3/big', 'if', 'pending', 0),
    ...[0, 1, 2].map((i) => row(`all/${i}/ship`, 'workflow', 'completed', 1, {child: `l:all:${i}:ship`})),
  ]};
  const ov = overlayOf(exec, defs);
  const big = ov.get('big');
  // Two iterations took then, one else, one has not decided: both lanes were taken somewhere.
  assert.deepEqual(big.lanes, {then: {state: 'taken', n: 2}, else: {state: 'taken', n: 1}});
  assert.deepEqual([laneText(big.lanes.then, true), laneText(big.lanes.else, true)], ['taken ×2', 'taken ×1']);
  assert.equal(lineOf(big), '3 completed · 1 pending · 1 not started');
  assert.equal(big.outcome, undefined, 'no single outcome for many iterations');
  // The wait: how many times each signal ended it.
  assert.deepEqual(ov.get('review').signals, [{signal: 'approve', n: 2}]);
  assert.equal(lineOf(ov.get('review')), '2 completed · 1 pending · 1 not taken · 1 not started · got "approve" ×2');
  assert.equal(lineOf(ov.get('auto')), '1 completed · 1 pending · 2 not taken · 1 not started');
  // The workflow step: how many children; the page links to their list.
  assert.deepEqual([ov.get('ship').children, ov.get('ship').child], [3, undefined]);
  assert.equal(lineOf(ov.get('ship')), '3 completed · 1 pending · 1 not started · 3 child executions');
  // A loop in a branch not taken: its steps are not taken, not "not started".
  const loopIn = [{id: 'big', if: '${input.big}', then: [{id: 'each', for_each: {items: '${input.orders}', steps: [{id: 'x', set: 1}]}}], else: [{id: 'auto', set: 1}]}];
  const nt = overlayOf({id: 'e', status: 'completed', input: {big: false, orders: [1, 2, 3]}, steps: [row('big', 'if', 'completed', 0), row('big/else', 'branch', 'completed', 1), row('big/else/auto', 'set', 'completed', 0)]}, loopIn);
  assert.deepEqual([nt.get('each').status, nt.get('x').status, lineOf(nt.get('x'))], ['not_taken', 'not_taken', 'not taken']);
});

test('the diagram\'s overlay of a loop of 10,000 iterations: one entry per box, its counts from the tree', () => {
  const defs = [{id: 'all', for_each: {items: '${input.orders}', steps: [{id: 'charge', activity: {url: 'http://h/c'}}]}}, {id: 'after', sleep: '1s'}];
  const steps = [row('all', 'for_each', 'failed', 0), row('after', 'sleep', 'skipped', 1)];
  for (let i = 0; i < 10_000; i++) {
    const st = i === 4_321 ? 'failed' : i >= 9_990 ? 'skipped' : 'completed';
    steps.push(row(`all/${i}`, 'iteration', st, i), row(`all/${i}/charge`, 'activity', st, 0));
  }
  const exec = {id: 'big', status: 'failed', created_at: T(0), input: {orders: Array.from({length: 10_000}, (_, i) => i)}, steps};
  const ov = diagramOverlay(buildStepTree(exec, defs), defs);
  assert.equal(ov.size, 3, 'the drawing does not grow with the iterations');
  assert.equal(lineOf(ov.get('charge')), '9989 completed · 1 failed · 10 skipped');
  assert.equal(ov.get('charge').status, 'failed');
  assert.equal(lineOf(ov.get('all')), 'failed · 10000 iterations: 9989 completed, 1 failed, 10 skipped');
  assert.equal(lineOf(ov.get('after')), 'skipped');
});

// ---- code executions (no definition: the program calls steps by key) ---------------------------

// A code execution as GET /v1/executions/{id} shows it: its keys in steps[] (parent "").
const codeExec = (status, keys = [], extra = {}) => ({
  id: 'c-1',
  kind: 'code',
  name: 'checkout',
  workflow: null,
  version: null,
  status,
  input: null,
  output: null,
  error: null,
  created_at: T(0),
  updated_at: T(0),
  completed_at: isFinalStatus(status) ? T(900) : null,
  last_call_at: null,
  parent: null,
  steps: keys.map(([key, kind, st], i) => ({id: key, path: key, parent: '', kind, position: i, status: st, attempts: 0, replays: 0, request_differs: false, output: null, error: null})),
  ...extra,
});
const isFinalStatus = (st) => ['completed', 'failed', 'cancelled', 'terminated'].includes(st);
// A history event of a key: step and path are the key.
const kev = (type, at, key, data = {}, attempt = null) => ({...ev(type, at, key, attempt, data), path: key});

function codeHistory() {
  seq = 0;
  return [
    ev('execution_started', 0),
    kev('step_scheduled', 10, 'total', {kind: 'output', request: {output: {sum: 3}}}),
    kev('step_completed', 10, 'total', {output: {sum: 3}}),
    kev('request_differs', 40, 'total', {request: {output: {sum: 4}}}),
    kev('step_scheduled', 50, 'nap', {kind: 'sleep', request: {sleep: '10s'}}),
    kev('timer_started', 50, 'nap', {due_at: T(10_050)}),
    kev('step_scheduled', 60, 'approve', {kind: 'wait', request: {wait: {signal: 'ok', timeout: '1h'}}}),
    kev('wait_started', 60, 'approve', {signal: 'ok', timeout_at: T(3_600_060)}),
    kev('step_scheduled', 70, 'charge', {kind: 'activity', request: {activity: {url: 'http://pay.internal/charge', input: {cents: 500}}, compensate: {url: 'http://pay.internal/refund'}}}),
    kev('attempt_started', 70, 'charge', {}, 1),
  ];
}

test('step calls: one line per call kind, and the history\'s summaries of a code execution', () => {
  assert.equal(stepCallText('activity', {activity: {url: 'http://pay.internal/charge', input: {}}}), 'activity http://pay.internal/charge');
  assert.equal(stepCallText('activity', {activity: {url: 'http://h/x'}, compensate: {url: 'http://h/undo'}}), 'activity http://h/x · compensated');
  assert.equal(stepCallText('sleep', {sleep: '10s'}), 'sleep 10s');
  assert.equal(stepCallText('sleep_until', {sleep_until: '2026-11-22T10:00:00Z'}), 'sleep until 2026-11-22T10:00:00Z');
  assert.equal(stepCallText('wait', {wait: {signal: 'approve', timeout: '1h'}, on_timeout: 'fail'}), 'wait signal "approve" · 1h timeout');
  assert.equal(stepCallText('wait', {wait: {any: ['a', 'b']}}), 'wait any signal of "a" or "b"');
  assert.equal(stepCallText('output', {output: {sum: 3}}), 'output {"sum":3}');
  assert.equal(stepCallText(null, {sleep: '5m'}), 'sleep 5m', 'the kind from the body');
  assert.equal(stepCallText('sleep_until', undefined), 'sleep until', 'no body at hand: the kind');
  assert.match(stepCallText('output', {output: 'x'.repeat(200)}), /…$/, 'a long value is cut');

  const h = codeHistory();
  const summaries = h.map((e) => eventSummary(e));
  assert.equal(summaries[1], 'called total: output {"sum":3}');
  assert.equal(summaries[3], 'total called again with another body (the first call\'s result stands): {"output":{"sum":4}}');
  assert.equal(summaries[4], 'called nap: sleep 10s');
  assert.equal(summaries[6], 'called approve: wait signal "ok" · 1h timeout');
  assert.equal(summaries[8], 'called charge: activity http://pay.internal/charge · compensated');
  assert.equal(eventTone('request_differs'), 'warn');
  // A definition's step_scheduled is as before.
  assert.equal(eventSummary({type: 'step_scheduled', step: 'a', data: {kind: 'activity'}}), 'activity step scheduled');
});

test('step calls: what the history says per key (first request, the body that differed), folded batch by batch', () => {
  const h = codeHistory();
  // Two batches, as a page reads them (the first load, then a poll).
  const index = indexStepCalls(h.slice(0, 3));
  assert.deepEqual(index.get('total'), {kind: 'output', request: {output: {sum: 3}}, at: Date.parse(T(10))});
  indexStepCalls(h.slice(3), index);
  assert.deepEqual(index.get('total').differs, {output: {sum: 4}});
  assert.equal(index.get('total').differsAt, Date.parse(T(40)));
  assert.deepEqual(index.get('nap').request, {sleep: '10s'});
  assert.equal(index.get('charge').kind, 'activity');
  assert.equal(index.size, 4);
  // A retry schedules a failed key again with its first request: the first call's time stays.
  indexStepCalls([kev('step_scheduled', 800, 'charge', {kind: 'activity', request: {activity: {url: 'http://pay.internal/charge', input: {cents: 500}}}})], index);
  assert.equal(index.get('charge').at, Date.parse(T(70)));
});

test('step calls: the timeline, pending work, Send signal and Retry of a code execution', () => {
  const h = codeHistory();
  const exec = codeExec('running', [['total', 'output', 'completed'], ['nap', 'sleep', 'sleeping'], ['approve', 'wait', 'waiting'], ['charge', 'activity', 'running']]);
  const tl = deriveTimeline(exec, h, Date.parse(T(1000)));
  assert.deepEqual(tl.rows.map((r) => [r.step, r.kind]), [['total', 'output'], ['nap', 'sleep'], ['approve', 'wait'], ['charge', 'activity']]);
  assert.deepEqual(pendingWork(exec, tl).map((p) => [p.kind, p.step]), [['timer', 'nap'], ['wait', 'approve'], ['attempt', 'charge']]);
  // The program may call a wait at any time: the signal is offered while it runs, whatever waits.
  assert.deepEqual(signalOffer(exec, null, tl), {offer: true, waiting: ['ok'], ahead: [], anytime: true});
  const idle = codeExec('running', [['total', 'output', 'completed']]);
  assert.deepEqual(signalOffer(idle, null, deriveTimeline(idle, h.slice(0, 3))), {offer: true, waiting: [], ahead: [], anytime: true});
  assert.equal(signalOffer(codeExec('completed', []), null, null).offer, false);
  seq = 100;
  const cancelling = deriveTimeline(idle, [...h.slice(0, 3), ev('cancel_requested', 500)]);
  assert.equal(signalOffer(idle, null, cancelling).offer, false, 'no new wait starts after a cancel');
  // Failed by its program's fail (the root is not in steps[]): the API resumes it...
  seq = 200;
  const failed = codeExec('failed', [['total', 'output', 'completed']], {error: {type: 'out_of_stock', message: 'no stock'}});
  assert.deepEqual(retryable(failed, [...h.slice(0, 3), ev('execution_failed', 900, null, null, {error: failed.error})]), {ok: true, reason: ''});
  // ...unless the fail ran compensations of completed keys.
  const saga = codeExec('failed', [['charge', 'activity', 'compensated']], {error: {type: 'x', message: 'y'}});
  assert.equal(retryable(saga, [kev('compensation_started', 900, 'charge', {}, 1)]).ok, false);
});

test('the program\'s idle time: live while it runs, its last call once ended, "no call yet" before the first', () => {
  assert.equal(idleText(0), '0 s');
  assert.equal(idleText(12_900), '12 s');
  assert.equal(idleText(192_000), '3m 12s');
  assert.equal(idleText(2 * 3_600_000 + 5 * 60_000), '2h 05m');
  assert.equal(idleText(3 * 86_400_000 + 4 * 3_600_000), '3d 4h');
  const now = Date.parse(T(200_000));
  assert.deepEqual(programIdle(codeExec('running', []), now), {state: 'none', last: null, idle: null, text: 'Program: no call yet'});
  const running = codeExec('running', [], {last_call_at: T(8000)});
  assert.deepEqual(programIdle(running, now), {state: 'idle', last: Date.parse(T(8000)), idle: 192_000, text: 'Program idle for 3m 12s'});
  // Live: a second later, a second more.
  assert.equal(programIdle(running, now + 1000).text, 'Program idle for 3m 13s');
  // A clock a little behind keeld's: never negative.
  assert.equal(programIdle(running, Date.parse(T(7000))).idle, 0);
  const ended = programIdle(codeExec('completed', [], {last_call_at: T(850)}), now);
  assert.deepEqual(ended, {state: 'ended', last: Date.parse(T(850)), idle: null, text: 'Program last called'});
  assert.equal(programIdle(codeExec('terminated', []), now).text, 'The program never called');
  assert.equal(programIdle(execOf('running', [])), null, 'a workflow\'s execution has no program');

  // last_call_at is written about once a second: the history may know of a later call (a key's
  // first call, a differing body, complete or fail); the later of the two counts.
  const h = codeHistory(); // calls at 10, 40 (differs), 50, 60 and 70 ms; attempt_started last
  assert.equal(programLastCall(h), Date.parse(T(70)));
  assert.equal(programLastCall(h.slice(0, 5)), Date.parse(T(50)), 'request_differs and step_scheduled of a call');
  assert.equal(programLastCall(h.slice(0, 1)), null, 'execution_started is not the program');
  assert.equal(programLastCall([...h, ev('timer_fired', 900, 'nap'), ev('signal_received', 950, null, null, {signal: 'ok'})]), Date.parse(T(70)), 'keeld\'s and others\' events are not calls');
  assert.equal(programLastCall([...h, ev('execution_completed', 990, null, null, {output: null})]), Date.parse(T(990)), 'complete is a call');
  assert.equal(programLastCall([...h, ev('execution_terminated', 990, null, null, {})]), Date.parse(T(70)), 'terminate is not');
  const lagging = codeExec('running', [], {last_call_at: null});
  assert.deepEqual(programIdle(lagging, Date.parse(T(5070)), h), {state: 'idle', last: Date.parse(T(70)), idle: 5000, text: 'Program idle for 5 s'});
  const written = codeExec('running', [], {last_call_at: T(3000)}); // a replay, not in the history
  assert.equal(programIdle(written, Date.parse(T(5000)), h).idle, 2000);
  const endedEarly = programIdle(codeExec('completed', [], {last_call_at: null}), now, [...h, ev('execution_completed', 990, null, null, {output: null})]);
  assert.deepEqual(endedEarly, {state: 'ended', last: Date.parse(T(990)), idle: null, text: 'Program last called'}, 'ended before last_call_at was written');
});

test('the execution page reads a code execution with thousands of keys less often', () => {
  const many = (n) => codeExec('running', Array.from({length: n}, (_, i) => [`k${i}`, 'output', 'completed']));
  assert.equal(pollInterval(many(3), 1000), 1000);
  assert.equal(pollInterval(many(2000), 1000), 1000);
  assert.equal(pollInterval(many(2001), 1000), 2000);
  assert.equal(pollInterval(many(10_000), 1000), 5000);
  assert.equal(pollInterval(many(50_000), 1000), 5000, 'at most 5 times');
  assert.equal(pollInterval({...execOf('running', []), steps: new Array(10_000).fill({status: 'completed'})}, 1000), 1000, 'a workflow\'s steps are drawn anyway');
});

test('the handler: its settings and its calls from the history (handler_called, handler_failed)', () => {
  assert.equal(handlerOf(codeExec('running', [])), null, 'no handler');
  assert.equal(handlerOf(codeExec('running', [], {handler: null, run: 0})), null);
  assert.deepEqual(handlerOf(codeExec('running', [], {handler: {url: 'http://app.internal/resume', inactivity_timeout: '5m'}, run: 3})),
    {url: 'http://app.internal/resume', inactivityTimeout: '5m', run: 3});
  assert.deepEqual(handlerOf(codeExec('running', [], {handler: {url: 'http://a/r', inactivity_timeout: null}})), {url: 'http://a/r', inactivityTimeout: null, run: null});

  seq = 0;
  const events = [
    ev('execution_started', 0),
    ev('handler_called', 5, null, null, {run: 1, reason: 'start', attempt: 1}),
    kev('step_scheduled', 10, 'nap', {kind: 'sleep', request: {sleep: '10s'}}),
    kev('step_completed', 10_010, 'nap', {output: null}),
    ev('handler_failed', 10_020, null, null, {run: 2, reason: 'step_ended', key: 'nap', attempt: 1, error: {type: 'http_5xx', message: 'HTTP 503'}, next_attempt_at: T(11_020)}),
    ev('handler_called', 11_030, null, null, {run: 2, reason: 'step_ended', key: 'nap', attempt: 2}),
    ev('handler_called', 400_000, null, null, {run: 3, reason: 'inactivity', attempt: 1}),
    ev('handler_failed', 500_000, null, null, {run: 4, reason: 'cancel', attempt: 5, error: {type: 'connection_refused', message: 'refused'}, next_attempt_at: null}),
  ];
  const calls = handlerCalls(events);
  assert.deepEqual(calls.map((c) => [c.ok, c.run, c.reason, c.key, c.attempt]), [
    [true, 1, 'start', null, 1],
    [false, 2, 'step_ended', 'nap', 1],
    [true, 2, 'step_ended', 'nap', 2],
    [true, 3, 'inactivity', null, 1],
    [false, 4, 'cancel', null, 5],
  ]);
  assert.deepEqual(calls[1].error, {type: 'http_5xx', message: 'HTTP 503'});
  assert.equal(calls[1].nextAttemptAt, Date.parse(T(11_020)));
  assert.equal(calls[1].at, Date.parse(T(10_020)));
  assert.equal(calls[4].nextAttemptAt, null);
  assert.equal(handlerReasonText('step_ended', 'nap'), 'step nap ended');
  assert.equal(handlerReasonText('inactivity'), 'no call within the inactivity timeout');
  assert.equal(handlerReasonText('retry'), 'the execution was retried');
  assert.equal(handlerReasonText('something_new'), 'something_new');
  // The history's summaries.
  assert.equal(eventSummary(events[1]), 'called the handler, run 1: the execution started');
  assert.equal(eventSummary(events[4], (d) => `${d} ms`), 'handler call failed, run 2 attempt 1 (step nap ended): http_5xx: HTTP 503 · next attempt in 1000 ms');
  assert.equal(eventSummary(events[5]), 'called the handler, run 2: step nap ended (attempt 2)');
  assert.equal(eventSummary(events[6]), 'called the handler, run 3: no call within the inactivity timeout');
  assert.equal(eventSummary(events[7]), 'handler call failed, run 4 attempt 5 (a cancel was requested): connection_refused: refused · no next attempt');
  assert.equal(eventTone('handler_failed'), 'bad');
  // The timeline ignores them (no step).
  assert.equal(deriveTimeline(codeExec('running', [['nap', 'sleep', 'completed']]), events).rows.length, 1);
});

// A stand-in for GET /v1/executions/{id}/steps over n keys: pages in first-call order, the
// cursor being opaque to the UI (here: the last position, base64url as keeld makes it).
function fakeSteps(n) {
  const all = Array.from({length: n}, (_, i) => ({execution_id: 'c-1', key: `k${String(i).padStart(3, '0')}`, kind: 'output', position: i, status: 'completed', attempts: 0, replays: 0, request_differs: false}));
  const calls = [];
  const get = ({cursor}, limit) => {
    calls.push(cursor);
    const after = cursor == null ? -1 : Number(Buffer.from(cursor, 'base64url').toString());
    const rest = all.filter((s) => s.position > after);
    const steps = rest.slice(0, limit);
    return {steps, next_cursor: rest.length > limit ? Buffer.from(String(steps[steps.length - 1].position)).toString('base64url') : null};
  };
  return {all, calls, get};
}

test('a code execution\'s keys page by page: "more", at most maxPages held, "earlier" reads dropped pages again', () => {
  const api = fakeSteps(120);
  const kp = new KeyPages(10, 5);
  assert.deepEqual(kp.refreshPages(), [0], 'the first page before anything');
  assert.deepEqual(kp.request(0), {page: 0, cursor: null});
  assert.equal(kp.request(1), null, 'no cursor for page 1 yet');
  assert.equal(kp.apply(0, api.get(kp.request(0), kp.limit)), true);
  assert.deepEqual(kp.steps().map((s) => s.position), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  assert.equal(kp.hasMore(), true);
  assert.equal(kp.hasEarlier(), false);
  // "More" four times: 50 keys in 5 pages.
  for (let i = 0; i < 4; i++) kp.apply(kp.nextPage(), api.get(kp.request(kp.nextPage()), kp.limit));
  assert.equal(kp.steps().length, 50);
  assert.deepEqual(kp.held().map((p) => p.page), [0, 1, 2, 3, 4]);
  // Once more: page 5 in, page 0 out (at most 5 pages = 50 rows drawn).
  kp.apply(5, api.get(kp.request(5), kp.limit));
  assert.deepEqual(kp.held().map((p) => p.page), [1, 2, 3, 4, 5]);
  assert.equal(kp.offset(), 10);
  assert.equal(kp.steps()[0].key, 'k010');
  assert.equal(kp.hasEarlier(), true);
  assert.equal(kp.prevPage(), 0);
  // To the end: 12 pages, the last with none after it.
  while (kp.hasMore()) kp.apply(kp.nextPage(), api.get(kp.request(kp.nextPage()), kp.limit));
  assert.equal(kp.last, 11);
  assert.deepEqual(kp.steps().map((s) => s.position), Array.from({length: 50}, (_, i) => 70 + i), 'the last 50 keys, in order');
  assert.equal(kp.nextPage(), null);
  // Earlier: page 6 again from its kept cursor, page 11 dropped at the other end.
  const before = api.calls.length;
  kp.apply(kp.prevPage(), api.get(kp.request(kp.prevPage()), kp.limit));
  assert.equal(api.calls.length, before + 1, 'one request');
  assert.deepEqual(kp.held().map((p) => p.page), [6, 7, 8, 9, 10]);
  assert.equal(kp.steps()[0].key, 'k060');
  assert.equal(kp.hasMore(), true, 'page 11 can be read again');
  // Every page was read once, each from the cursor the previous one gave, plus the one again.
  assert.equal(api.calls.length, 13);
  // A page neither held nor next to them is not taken.
  assert.equal(kp.apply(2, api.get(kp.request(2), kp.limit)), false);
  assert.deepEqual(kp.held().map((p) => p.page), [6, 7, 8, 9, 10]);
});

test('a code execution\'s keys: a refresh reads the pages on screen and the last one, and learns of new keys', () => {
  const api = fakeSteps(25);
  const kp = new KeyPages(10, 10);
  kp.apply(0, api.get(kp.request(0), 10));
  kp.apply(1, api.get(kp.request(1), 10));
  kp.apply(2, api.get(kp.request(2), 10));
  assert.equal(kp.hasMore(), false, '25 keys: the third page is the last');
  assert.deepEqual(kp.refreshPages(new Set([0])), [0, 2], 'on screen, and the last');
  assert.deepEqual(kp.refreshPages(new Set([1, 2, 7])), [1, 2], 'pages not held are left out');
  // The program calls 10 more keys; the key k003 completes a replay meanwhile.
  for (let i = 25; i < 35; i++) api.all.push({...api.all[0], key: `k${i}`, position: i});
  api.all[3] = {...api.all[3], replays: 2, request_differs: true};
  for (const k of kp.refreshPages(new Set([0]))) kp.apply(k, api.get(kp.request(k), 10));
  assert.equal(kp.steps()[3].replays, 2);
  assert.equal(kp.steps()[3].request_differs, true);
  assert.equal(kp.steps().length, 30, 'page 2 filled up');
  assert.equal(kp.hasMore(), true, 'and the next page is known');
  kp.apply(kp.nextPage(), api.get(kp.request(kp.nextPage()), 10));
  assert.deepEqual(kp.steps().slice(-5).map((s) => s.position), [30, 31, 32, 33, 34]);
  // Limits are the API's: 1 to 500.
  assert.equal(new KeyPages(0).limit, 50);
  assert.equal(new KeyPages(5000).limit, 500);
  assert.equal(new KeyPages(7).limit, 7);
});

test('10,000 keys: the pages held stay within maxPages however far one goes', () => {
  const api = fakeSteps(10_000);
  const kp = new KeyPages(50, 10);
  kp.apply(0, api.get(kp.request(0), 50));
  let reads = 1;
  while (kp.hasMore()) {
    kp.apply(kp.nextPage(), api.get(kp.request(kp.nextPage()), 50));
    reads++;
    assert.ok(kp.steps().length <= 500);
  }
  assert.equal(reads, 200, 'each page read once');
  assert.equal(kp.steps().length, 500);
  assert.equal(kp.steps()[499].position, 9999);
  assert.equal(kp.cursors.length, 200, 'a cursor per page, to go back');
});

test('the history table draws the newest events that match its filter, 20,000 events as cheaply as 500', () => {
  seq = 0;
  const events = [ev('execution_started', 0)];
  for (let i = 0; i < 10_000; i++) {
    const key = `k${i}`;
    events.push(kev('step_scheduled', i, key, {kind: 'output', request: {output: i}}), kev('step_completed', i, key, {output: i}));
  }
  events.push(ev('execution_completed', 20_000, null, null, {output: null}));
  const win = historyWindow(events, '', 500);
  assert.equal(win.shown.length, 500);
  assert.equal(win.matching, 20_002);
  assert.equal(win.hidden, 19_502);
  assert.equal(win.shown[499].type, 'execution_completed', 'the newest last');
  assert.deepEqual(win.shown.map((e) => e.seq), events.slice(-500).map((e) => e.seq), 'in order');
  // The filter: by type, step or path (the caller lower-cases it).
  const k7 = historyWindow(events, 'k7', 500);
  assert.equal(k7.matching, 2 * 1111, 'k7, k70-k79, k700-k799, k7000-k7999');
  assert.equal(k7.shown.length, 500);
  assert.ok(k7.shown.every((e) => e.path.startsWith('k7')));
  assert.equal(historyWindow(events, 'execution_', 500).matching, 2);
  assert.equal(historyWindow(events, 'k9999', 10).shown.length, 2);
  assert.equal(historyWindow(events.slice(0, 30), '', 500).hidden, 0);
  assert.equal(eventMatches({type: 'attempt_started', step: 'charge', path: 'charge-all/7/charge'}, 'all/7/'), true);
  assert.equal(eventMatches({type: 'attempt_started', step: 'Charge', path: null}, 'charge'), true, 'any case');
  assert.equal(eventMatches({type: 'signal_received', step: null, path: null}, 'charge'), false);
  assert.equal(eventMatches({type: 'x'}, ''), true);
});

test('a code execution\'s own end and the cancel deadline have their summaries', () => {
  assert.equal(eventSummary({type: 'complete_requested', data: {}}), 'The program completed it');
  assert.equal(eventSummary({type: 'fail_requested', data: {error: {type: 'OutOfStock', message: 'none left'}}}),
    'The program failed it: OutOfStock: none left');
  assert.equal(eventSummary({type: 'cancel_deadline_passed', data: {}}),
    'The program did not end it within 5 minutes of the cancel');
});

// ---- the list's filters, tags and bulk actions ------------------------------------------------

const NOW = Date.UTC(2026, 11, 5, 12, 0, 0);
const query = (qs) => new URLSearchParams(qs);

test('tags: key and value split at the first colon; chips say "key: value"; an execution\'s tags by key', () => {
  assert.deepEqual(tagParts('customer:42'), {key: 'customer', value: '42'});
  assert.deepEqual(tagParts('url:http://x:8080/a'), {key: 'url', value: 'http://x:8080/a'}, 'the first colon separates');
  assert.deepEqual(tagParts('customer:'), {key: 'customer', value: ''});
  assert.deepEqual(tagParts('nocolon'), {key: 'nocolon', value: null}, 'no colon: the API refuses it and says why');
  assert.equal(tagText('customer:42'), 'customer: 42');
  assert.equal(tagText('nocolon'), 'nocolon');
  assert.deepEqual(tagsOf({tags: {tier: 'gold', customer: '42'}}), ['customer:42', 'tier:gold'], 'by key');
  assert.deepEqual(tagsOf({tags: {}}), []);
  assert.deepEqual(tagsOf({}), [], 'an execution from a keeld before tags');
});

test('the list\'s filter state from its URL and back: tags repeated, the same order, defaults left out', () => {
  const f = listFilterFromQuery(query('?workflow=checkout&status=failed,running&tag=customer:42&tag=tier%3Agold&tag=customer:42&range=1h&limit=20&cursor=abc'));
  assert.deepEqual(f, {workflow: 'checkout', name: '', parent: '', statuses: ['running', 'failed'], range: '1h', since: '', until: '', tags: ['customer:42', 'tier:gold'], cursor: 'abc', limit: 20});
  assert.deepEqual(listFilterQuery(f), [['workflow', 'checkout'], ['status', 'running,failed'], ['range', '1h'], ['tag', 'customer:42'], ['tag', 'tier:gold'], ['limit', '20'], ['cursor', 'abc']]);
  // A round trip through the URL gives the same state.
  const back = listFilterFromQuery(new URLSearchParams(listFilterQuery(f)));
  assert.deepEqual(back, f);
  // since/until: a custom range, with or without ?range=custom; a relative range ignores them.
  assert.deepEqual(listFilterFromQuery(query('since=2026-12-01T00:00:00Z')), {...listFilterFromQuery(query('')), range: 'custom', since: '2026-12-01T00:00:00Z'});
  assert.equal(listFilterFromQuery(query('range=1h&since=2026-12-01T00:00:00Z')).since, '');
  assert.equal(listFilterFromQuery(query('range=nonsense')).range, '');
  assert.equal(listFilterFromQuery(query('limit=9999')).limit, 500);
  assert.deepEqual(listFilterQuery(listFilterFromQuery(query(''))), [], 'nothing for no filter (50 a page is the default)');
  assert.deepEqual(listFilterQuery({...listFilterFromQuery(query('')), name: 'checkout-ui', parent: 'order-1'}), [['name', 'checkout-ui'], ['parent', 'order-1']]);
  // The API's query: ?range= becomes since, computed from now; tags repeat.
  assert.deepEqual(listApiQuery(f, NOW), [['limit', '20'], ['workflow', 'checkout'], ['status', 'running,failed'], ['since', '2026-12-05T11:00:00.000Z'], ['tag', 'customer:42'], ['tag', 'tier:gold'], ['cursor', 'abc']]);
  assert.equal(hasListFilter(listFilterFromQuery(query('limit=20&cursor=x'))), false, 'a page is not a filter');
  for (const qs of ['workflow=a', 'name=a', 'parent=a', 'status=failed', 'range=15m', 'until=2026-12-01T00:00:00Z', 'tag=a:b'])
    assert.equal(hasListFilter(listFilterFromQuery(query(qs))), true, qs);
});

test('bulk filter: the list\'s filters mapped to the API\'s members; refused without a filter or with a parent', () => {
  const f = listFilterFromQuery(query('workflow=checkout&name=checkout&status=running,failed&tag=customer:42&tag=tier:gold&range=24h'));
  assert.deepEqual(bulkFilterOf(f, NOW), {
    filter: {workflow: 'checkout', name: 'checkout', status: ['running', 'failed'], since: '2026-12-04T12:00:00.000Z', tags: {customer: '42', tier: 'gold'}},
    refused: null,
  });
  const custom = listFilterFromQuery(query('since=2026-12-01T00:00:00Z&until=2026-12-02T00:00:00Z'));
  assert.deepEqual(bulkFilterOf(custom, NOW).filter, {since: '2026-12-01T00:00:00Z', until: '2026-12-02T00:00:00Z'});
  // No filter at all: the API requires one member; the UI refuses and says why.
  const none = bulkFilterOf(listFilterFromQuery(query('limit=20')), NOW);
  assert.equal(none.filter, null);
  assert.match(none.refused, /no filter/);
  // ?parent= has no bulk member: refused rather than acting on more than the list shows.
  const parent = bulkFilterOf(listFilterFromQuery(query('parent=order-1&status=running')), NOW);
  assert.equal(parent.filter, null);
  assert.match(parent.refused, /parent/);
  // A tag the API would refuse (no colon; two values for one key) is not sent.
  assert.match(bulkFilterOf(listFilterFromQuery(query('tag=nocolon')), NOW).refused, /nocolon/);
  assert.match(bulkFilterOf(listFilterFromQuery(query('tag=a:1&tag=a:2')), NOW).refused, /a:2/);
  // And back: a batch's filter as the list's state, for a link to those executions.
  const lf = listFilterOfBulk({workflow: 'checkout', status: ['failed'], since: '2026-12-01T00:00:00Z', tags: {customer: '42'}});
  assert.deepEqual(listFilterQuery(lf), [['workflow', 'checkout'], ['status', 'failed'], ['since', '2026-12-01T00:00:00Z'], ['tag', 'customer:42']]);
  assert.equal(listFilterOfBulk({ids: ['a', 'b']}), null, 'ids: the list has no such filter');
  assert.deepEqual(listFilterOfBulk({status: 'running,failed'}).statuses, ['running', 'failed']);
});

test('bulk texts: the filter spelled out, the selection, the confirmation\'s count, a batch\'s progress', () => {
  assert.deepEqual(filterParts({workflow: 'checkout', status: ['running', 'failed', 'cancelled'], since: 'S', until: 'U', tags: {customer: '42'}}, (t) => `<${t}>`),
    ['workflow checkout', 'status running, failed or cancelled', 'created since <S>', 'created before <U>', 'tag customer: 42']);
  assert.deepEqual(filterParts({status: 'failed', name: 'n'}), ['name n', 'status failed']);
  assert.deepEqual(filterParts({ids: ['a']}), ['id: a']);
  assert.deepEqual(filterParts({ids: ['a', 'b', 'c', 'd']}), ['4 ids: a, b, c, …']);
  assert.deepEqual(filterParts(null), []);

  assert.equal(selectionText({selected: 0}), 'No execution selected');
  assert.equal(selectionText({selected: 3}), '3 selected');
  assert.equal(selectionText({all: {matched: 412}, selected: 0}), 'All 412 executions matching this filter');
  assert.equal(selectionText({all: {matched: 1}}), 'All 1 execution matching this filter');

  const three = bulkConfirmText('cancel', {ids: ['a', 'b', 'c']});
  assert.equal(three.title, 'Cancel 3 executions?');
  assert.equal(three.count, 3);
  assert.equal(three.what, 'The 3 selected executions: a, b, c.');
  assert.equal(three.confirm, 'Cancel 3 executions');
  assert.match(three.note, /compensations run/);
  assert.equal(bulkConfirmText('terminate', {ids: ['x']}).title, 'Terminate 1 execution?');
  assert.equal(bulkConfirmText('terminate', {ids: ['x']}).what, 'The selected execution: x.');
  assert.match(bulkConfirmText('terminate', {ids: ['x']}).note, /without compensations/);
  assert.equal(bulkConfirmText('cancel', {ids: ['1', '2', '3', '4', '5', '6', '7']}).what, 'The 7 selected executions: 1, 2, 3, 4, 5 and 2 more.');
  const all = bulkConfirmText('retry', {matched: 412, filter: {workflow: 'checkout', tags: {customer: '42'}}});
  assert.equal(all.title, 'Retry 412 executions?');
  assert.equal(all.count, 412);
  assert.equal(all.what, 'All 412 executions matching workflow checkout · tag customer: 42.');
  assert.match(all.note, /Failed executions resume.*the others are skipped/);
  assert.match(bulkConfirmText('retry', {matched: 0, filter: {status: ['failed']}}).what, /none match now/);

  assert.deepEqual(batchProgress({action: 'cancel', status: 'running', matched: 4, processed: 1, acted: 1, skipped: 0}), {pct: 25, text: '1 of 4 processed · 1 cancelled · 0 skipped'});
  assert.deepEqual(batchProgress({action: 'retry', status: 'completed', matched: 3, processed: 3, acted: 2, skipped: 1}), {pct: 100, text: '3 of 3 processed · 2 retried · 1 skipped'});
  assert.equal(batchProgress({action: 'terminate', status: 'running', matched: 0, processed: 0, acted: 0, skipped: 0}).pct, 0);
  assert.equal(batchProgress({action: 'terminate', status: 'completed', matched: 0, processed: 0, acted: 0, skipped: 0}).pct, 100, 'nothing matched: done');
  assert.equal(batchProgress({action: 'cancel', status: 'running', matched: 2, processed: 3, acted: 3, skipped: 0}).pct, 100, 'more reached than counted at the start: never past the end');
});
