// Browser tests of the web UI against a real keeld, a real receiver and real executions.
// Run: node --test tests/ui/  (see harness.mjs for the environment it needs).
import assert from 'node:assert/strict';
import path from 'node:path';
import {after, before, describe, test} from 'node:test';

import {ARTIFACTS, Stack, client, missingPrerequisites, pgStartTime, until} from './harness.mjs';

const skip = missingPrerequisites();

// Every console error and page error of every page, with the page it came from. A test that
// provokes an error on purpose (a refused request) lists the messages it expects.
const consoleErrors = [];

function watch(page, allow = []) {
  page.on('console', (msg) => {
    if (msg.type() !== 'error') return;
    const text = msg.text();
    if (allow.some((re) => re.test(text))) return;
    consoleErrors.push(`${page.url()}: console.error: ${text}`);
  });
  page.on('pageerror', (err) => consoleErrors.push(`${page.url()}: page error: ${err.message}`));
  return page;
}

describe('web UI', {skip: skip || false, timeout: 110_000}, () => {
  const stack = new Stack();
  let api;
  let base;
  let ctx; // the desktop browser context
  let page;
  let pgStarted;
  let total; // executions created
  const shot = async (p, name) => {
    await p.evaluate(() => window.scrollTo(0, 0));
    await p.screenshot({path: path.join(ARTIFACTS, name), fullPage: true});
  };

  before(async () => {
    pgStarted = pgStartTime();
    await stack.start();
    base = stack.base;
    api = client(base);
    const R = stack.receiverUrl;
    const retry3 = {max_attempts: 3, initial_interval: '50ms'};

    await api('POST', '/v1/workflows', {
      name: 'hello',
      steps: [
        {id: 'greet', activity: {url: `${R}/ok`, input: {name: '${input.name}'}}},
        {id: 'pause', sleep: '100ms'},
        {id: 'bye', activity: {url: `${R}/ok`, input: {to: '${steps.greet.output.echo.name}'}}},
      ],
      output: {greeted: '${steps.greet.output.echo.name}'},
    });
    // A second version of hello, so the workflow page has versions to switch between.
    await api('POST', '/v1/workflows', {
      name: 'hello',
      description: 'Greet someone, pause, then say goodbye',
      steps: [
        {id: 'greet', activity: {url: `${R}/ok`, input: {name: '${input.name}'}}},
        {id: 'pause', sleep: '100ms'},
        {id: 'bye', activity: {url: `${R}/ok`, input: {to: '${steps.greet.output.echo.name}'}}},
      ],
      output: {greeted: '${steps.greet.output.echo.name}'},
    });
    await api('POST', '/v1/workflows', {
      name: 'payments',
      description: 'Reserve, charge (flaky), receipt',
      steps: [
        {id: 'reserve', activity: {url: `${R}/ok`, input: {order: '${input.order}'}}},
        {id: 'charge', activity: {url: `${R}/flaky/2`, input: {order: '${input.order}'}}, retry: retry3},
        {id: 'receipt', activity: {url: `${R}/ok`, input: {}}},
      ],
      output: {charge: '${steps.charge.output}'},
    });
    await api('POST', '/v1/workflows', {
      name: 'broken',
      steps: [
        {id: 'prepare', activity: {url: `${R}/ok`, input: {}}},
        {id: 'explode', activity: {url: `${R}/fail/500`, input: {}}, retry: retry3},
      ],
    });
    await api('POST', '/v1/workflows', {
      name: 'order-approval',
      description: 'Charge, wait for approval, ship',
      defaults: {timeout: '5s', retry: retry3},
      steps: [
        {id: 'charge', activity: {url: `${R}/ok`, input: {order: '${input.order}'}}, compensate: {url: `${R}/ok`, input: {refund: '${input.order}'}}},
        {id: 'approval', wait: {signal: 'approve', timeout: '1h'}, on_timeout: 'fail'},
        {id: 'ship', activity: {url: `${R}/ok`, input: {approved: '${steps.approval.output}'}}},
      ],
      output: {approved_by: '${steps.approval.output.approved_by}'},
    });

    // Seventy steps: a history longer than one page of the API (the UI reads 200 at a time).
    await api('POST', '/v1/workflows', {
      name: 'long',
      description: 'Many small steps',
      steps: Array.from({length: 70}, (_, i) => ({id: `s${String(i + 1).padStart(2, '0')}`, activity: {url: `${R}/ok`, input: {i}}})),
    });

    const start = (wf, id, input) => api('POST', `/v1/workflows/${wf}/executions`, {id, input});
    await start('hello', 'hello-1', {name: 'Ada'});
    await start('broken', 'broken-1', {});
    await start('payments', 'payments-1', {order: 'A-1'});
    await start('hello', 'hello-2', {name: 'Grace'});
    for (const id of ['approval-signal', 'approval-cancel', 'approval-refuse']) await start('order-approval', id, {order: id});
    await start('long', 'long-1', {});
    for (const id of ['hello-1', 'broken-1', 'payments-1', 'hello-2', 'long-1']) {
      const r = await api('GET', `/v1/executions/${id}/result?wait=20`);
      assert.equal(r.status, 200, `${id} should have ended`);
    }
    for (const id of ['approval-signal', 'approval-cancel', 'approval-refuse'])
      await until(async () => (await api('GET', `/v1/executions/${id}`)).data.steps[1].status === 'waiting', {what: `${id} waiting`});

    total = (await api('GET', '/v1/executions')).data.executions.length;
    ctx = await stack.browser.newContext({viewport: {width: 1280, height: 900}, colorScheme: 'light'});
    page = watch(await ctx.newPage());
  });

  after(async () => {
    await stack.stop();
  });

  const badgeOf = (p) => p.locator('.exec-head .title-row .badge').first();

  test('executions list: newest first, status badges, filters, find by id', async () => {
    await page.goto(`${base}/ui/`);
    assert.equal(new URL(page.url()).pathname, '/ui/');
    await page.locator('table.exec-table tbody tr').first().waitFor();
    const ids = await page.locator('table.exec-table tbody tr').evaluateAll((rows) => rows.map((r) => r.dataset.id));
    const fromApi = (await api('GET', '/v1/executions')).data.executions.map((x) => x.id);
    assert.deepEqual(ids, fromApi, 'same order as the API: newest first');
    assert.equal(ids.length, 8);
    assert.equal(await page.locator('tr[data-id="broken-1"] .badge').innerText(), 'failed');
    assert.equal(await page.locator('tr[data-id="payments-1"] .badge').innerText(), 'completed');
    assert.equal(await page.locator('tr[data-id="approval-signal"] .badge').innerText(), 'running');
    assert.match(await page.locator('tr[data-id="broken-1"] .row-error').innerText(), /explode/);
    // Running executions are shown, so the list refreshes itself.
    assert.ok(await page.locator('.page-head .live').isVisible(), 'live indicator while something runs');
    // Relative and absolute times, and a duration.
    assert.match(await page.locator('tr[data-id="hello-1"] .c-time .rel-time').first().innerText(), /ago|just now/);
    assert.match(await page.locator('tr[data-id="hello-1"] .c-time .abs-time').first().innerText(), /^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$/);
    assert.match(await page.locator('tr[data-id="hello-1"] .c-dur').innerText(), /\d+(\.\d+)? (ms|s)/);
    await shot(page, 'list.png');

    // Status filter: only the failed one.
    await page.locator('.segmented button[data-status="failed"]').click();
    await page.waitForURL(/status=failed/);
    await until(async () => (await page.locator('table.exec-table tbody tr').evaluateAll((r) => r.map((x) => x.dataset.id))).join() === 'broken-1', {what: 'only broken-1'});
    assert.equal(await page.locator('.segmented button[data-status="failed"]').getAttribute('aria-pressed'), 'true');
    // Workflow filter on top of it, then without the status.
    await page.locator('#filter-workflow').selectOption('payments');
    await page.waitForURL(/workflow=payments/);
    await page.locator('.empty-state').waitFor();
    await page.locator('.segmented button[data-status="all"]').click();
    await until(async () => (await page.locator('table.exec-table tbody tr').evaluateAll((r) => r.map((x) => x.dataset.id))).join() === 'payments-1', {what: 'only payments-1'});
    // Time range: the last 15 minutes has everything, a custom range in the past has nothing.
    await page.locator('#clear-filters').click();
    await page.locator('#filter-range').selectOption('15m');
    await page.waitForURL(/range=15m/);
    await until(async () => (await page.locator('table.exec-table tbody tr').count()) === total, {what: 'all rows in the last 15 minutes'});
    await page.locator('#filter-range').selectOption('custom');
    await page.locator('#filter-since').fill('2000-01-01T00:00');
    await page.waitForURL(/since=2000/);
    await page.locator('#filter-until').fill('2001-01-01T00:00');
    await page.waitForURL(/until=2001/);
    await page.locator('.empty-state').waitFor();
    await page.locator('#clear-filters').click();
    await page.waitForURL((u) => u.pathname === '/ui/executions' && u.search === '');
    await until(async () => (await page.locator('table.exec-table tbody tr').count()) === total, {what: 'all rows again'});
    assert.equal(await page.locator('#page-next').isDisabled(), true, 'one page of 50');

    // Find by id.
    await page.locator('#find-id').fill('payments-1');
    await page.locator('#find-id').press('Enter');
    await page.waitForURL(/\/ui\/executions\/payments-1$/);
    await page.locator('h1.exec-id').waitFor();
    assert.equal(await page.locator('h1.exec-id').innerText(), 'payments-1');
  });

  test('executions list: keyset pages (next_cursor), kept in the URL', async () => {
    const all = (await api('GET', '/v1/executions')).data.executions.map((x) => x.id);
    const shown = () => page.locator('table.exec-table tbody tr').evaluateAll((r) => r.map((x) => x.dataset.id).join());
    const expect = (from) => until(async () => (await shown()) === all.slice(from, from + 3).join(), {what: `rows ${from}..${from + 2}`});
    await page.goto(`${base}/ui/executions?limit=3`);
    await expect(0);
    assert.equal(await page.locator('#page-prev').isDisabled(), true);
    await page.locator('#page-next').click();
    await page.waitForURL(/cursor=/);
    await expect(3);
    await page.locator('#page-next').click();
    await expect(6);
    assert.equal(await page.locator('#page-next').isDisabled(), true, 'last page');
    await page.locator('#page-prev').click();
    await expect(3);
    // The cursor is in the URL: a reload shows the same page.
    await page.reload();
    await expect(3);
    assert.equal(await page.locator('#page-prev').innerText(), 'First page');
    await page.locator('#page-prev').click();
    await expect(0);
    assert.ok(!page.url().includes('cursor='));
    await page.locator('#page-size').selectOption('50');
    await until(async () => (await page.locator('table.exec-table tbody tr').count()) === total, {what: 'all rows on one page'});
  });

  test('execution page: timeline shows the retried step with 3 attempts, failures marked', async () => {
    await page.goto(`${base}/ui/executions/payments-1`);
    const row = page.locator('.tl-step[data-step="charge"]');
    await row.waitFor();
    assert.equal(await badgeOf(page).innerText(), 'completed');
    assert.equal(await row.getAttribute('data-attempts'), '3');
    assert.equal(await row.locator('.attempt-chip').count(), 3);
    assert.equal(await row.locator('.attempt-chip.st-failed').count(), 2, 'two failed attempts, marked');
    assert.equal(await row.locator('.attempt-chip.st-ok').count(), 1);
    assert.equal(await row.locator('.tl-seg.seg-attempt.st-failed').count(), 2, 'two red bars');
    assert.equal(await row.locator('.tl-seg.seg-backoff').count(), 2, 'the waits between attempts');
    assert.match(await row.locator('.tl-chips').innerText(), /3 attempts · 2 failed/);
    assert.equal(await page.locator('.tl-step[data-step="reserve"] .attempt-chip').count(), 1);
    // Step order as defined, each with its kind.
    assert.deepEqual(await page.locator('.tl-step').evaluateAll((r) => r.map((x) => x.dataset.step)), ['reserve', 'charge', 'receipt']);
    assert.match(await page.locator('.summary').innerText(), /2 retries/);
    // The step's detail: one line per attempt, the errors in them.
    await row.locator('.tl-toggle').click();
    await row.locator('.attempts-table tbody tr').nth(2).waitFor();
    assert.equal(await row.locator('.attempts-table tbody tr.st-failed').count(), 2);
    assert.match(await row.locator('.attempts-table').innerText(), /HTTP 503/);
    // Input and output as JSON with copy buttons.
    assert.match(await page.locator('#panel-input').innerText(), /"order": "A-1"/);
    assert.match(await page.locator('#panel-output').innerText(), /"charge"/);
    assert.equal(await page.locator('.json-panel-head .copy-btn').count() >= 2, true);
    await page.locator('#panel-output').locator('..').locator('.panel-toggle').click();
    assert.equal(await page.locator('#panel-output').isHidden(), true, 'output collapsed');
    await page.locator('#panel-output').locator('..').locator('.panel-toggle').click();
    await shot(page, 'execution-retried.png');
  });

  test('event history: every event, each expandable to its data', async () => {
    const events = (await api('GET', '/v1/executions/payments-1/history')).data.events;
    const rows = page.locator('.history-table tr.ev-row');
    assert.equal(await rows.count(), events.length);
    assert.deepEqual(await rows.evaluateAll((r) => r.map((x) => x.dataset.type)), events.map((e) => e.type));
    const failed = page.locator('.history-table tr.ev-row[data-type="attempt_failed"]').first();
    const seq = await failed.getAttribute('data-seq');
    await failed.locator('.ev-toggle').click();
    const detail = page.locator(`#ev-${seq}-data`);
    await detail.waitFor();
    assert.match(await detail.innerText(), /"next_attempt_at"/);
    assert.match(await detail.innerText(), /"http_5xx"/);
    assert.equal(await failed.locator('.ev-toggle').getAttribute('aria-expanded'), 'true');
    // Keyboard: the toggle is a button; Enter closes it again.
    await failed.locator('.ev-toggle').focus();
    await page.keyboard.press('Enter');
    await detail.waitFor({state: 'hidden'});
    // Filter and expand all.
    await page.locator('#history-filter').fill('charge');
    const visible = await rows.evaluateAll((r) => r.filter((x) => !x.hidden).map((x) => x.dataset.step));
    assert.ok(visible.length > 0 && visible.every((s) => s === 'charge'));
    await page.locator('#history-expand-all').click();
    assert.equal(await page.locator('.history-table tr.ev-detail:not([hidden])').count(), visible.length);
    await page.locator('#history-collapse-all').click();
    await page.locator('#history-filter').fill('');
  });

  test('a long history is read page by page through next_cursor', async () => {
    const events = [];
    for (let cursor = '', i = 0; i < 20; i++) {
      const r = (await api('GET', `/v1/executions/long-1/history?limit=100${cursor ? `&cursor=${cursor}` : ''}`)).data;
      events.push(...r.events);
      if (!r.next_cursor) break;
      cursor = r.next_cursor;
    }
    assert.ok(events.length > 200, `${events.length} events`);
    const requests = [];
    const onRequest = (r) => {
      if (r.url().includes('/v1/executions/long-1/history')) requests.push(r.url());
    };
    page.on('request', onRequest);
    try {
      await page.goto(`${base}/ui/executions/long-1`);
      await page.locator('.history-table tr.ev-row').nth(events.length - 1).waitFor();
      assert.equal(await page.locator('.history-table tr.ev-row').count(), events.length);
      assert.deepEqual(await page.locator('.history-table tr.ev-row').evaluateAll((r) => r.map((x) => Number(x.dataset.seq))), events.map((e) => e.seq));
      assert.ok(requests.length >= 2 && requests.some((u) => /[?&]cursor=/.test(u)), `followed next_cursor: ${requests.join(' ')}`);
      assert.equal(await page.locator('.tl-step').count(), 70);
    } finally {
      page.off('request', onRequest);
    }
  });

  test('a failed execution shows its error, and Retry resumes it after a confirmation', async () => {
    await page.goto(`${base}/ui/executions/broken-1`);
    await page.locator('.callout-bad').waitFor();
    assert.match(await page.locator('.callout-bad').innerText(), /Failed at step explode after 3 attempts/);
    assert.match(await page.locator('#panel-error').innerText(), /test_error/);
    const row = page.locator('.tl-step[data-step="explode"]');
    assert.equal(await row.locator('.attempt-chip.st-failed').count(), 3);
    assert.equal(await page.locator('#action-cancel').count(), 0, 'no cancel on a failed execution');
    await shot(page, 'execution-failed.png');
    await page.locator('#action-retry').click();
    const dlg = page.locator('dialog.dialog-confirm');
    await dlg.waitFor();
    assert.match(await dlg.innerText(), /Retry this execution\?/);
    await dlg.locator('[data-action="confirm"]').click();
    await dlg.waitFor({state: 'detached'});
    // It runs the failing step again (3 more attempts) and fails again; the timeline shows both runs.
    await until(async () => (await row.locator('.attempt-chip').count()) === 6, {what: '6 attempts in two runs', timeout: 15_000});
    await until(async () => (await badgeOf(page).innerText()) === 'failed', {what: 'failed again'});
    assert.equal(await row.locator('.run-chip').count(), 1);
    assert.equal(await page.locator('.history-table tr.ev-row[data-type="execution_retried"]').count(), 1);
  });

  test('sending a signal from the UI resumes the waiting execution', async () => {
    await page.goto(`${base}/ui/executions/approval-signal`);
    await page.locator('.pending-item[data-kind="wait"]').waitFor();
    assert.match(await page.locator('.pending-item[data-kind="wait"]').innerText(), /Waiting for signal "approve"/);
    assert.equal(await badgeOf(page).innerText(), 'running');
    assert.ok(await page.locator('.exec-head .live').isVisible());
    await page.locator('#action-signal').click();
    const dlg = page.locator('dialog.dialog-signal');
    await dlg.waitFor();
    assert.equal(await dlg.locator('#signal-name').inputValue(), 'approve');
    await dlg.locator('#signal-payload').fill('{"approved_by": "ui-test"}');
    await dlg.locator('[data-action="send-signal"]').click();
    await dlg.waitFor({state: 'detached'});
    await until(async () => (await badgeOf(page).innerText()) === 'completed', {what: 'completed in the UI', timeout: 15_000});
    await page.locator('#panel-output').waitFor();
    assert.match(await page.locator('#panel-output').innerText(), /"approved_by": "ui-test"/);
    assert.equal(await page.locator('.pending').isHidden(), true);
    assert.match(await page.locator('.tl-step[data-step="approval"] .wait-chip').innerText(), /got "approve"/);
    assert.equal((await api('GET', '/v1/executions/approval-signal')).data.status, 'completed');
  });

  test('cancel from the UI: a confirmation (Escape closes it), then cancelled with compensation', async () => {
    await page.goto(`${base}/ui/executions/approval-cancel`);
    await page.locator('#action-cancel').waitFor();
    await page.locator('#action-cancel').click();
    const dlg = page.locator('dialog.dialog-confirm');
    await dlg.waitFor();
    assert.match(await dlg.innerText(), /Cancel this execution\?/);
    await page.keyboard.press('Escape');
    await dlg.waitFor({state: 'detached'});
    assert.equal((await api('GET', '/v1/executions/approval-cancel')).data.status, 'running', 'Escape cancelled nothing');
    await page.locator('#action-cancel').click();
    await dlg.waitFor();
    await dlg.locator('#confirm-reason').fill('customer changed their mind');
    await dlg.locator('[data-action="confirm"]').click();
    await dlg.waitFor({state: 'detached'});
    await until(async () => (await badgeOf(page).innerText()) === 'cancelled', {what: 'cancelled in the UI', timeout: 15_000});
    await page.locator('.tl-step[data-step="charge"] .comp-chip').waitFor();
    assert.match(await page.locator('.callout-warn').innerText(), /compensated: charge/);
    assert.match(await page.locator('.callout-warn').innerText(), /Reason: \W?customer changed their mind/);
    assert.match(await page.locator('.history-table tr.ev-row[data-type="cancel_requested"]').innerText(), /customer changed their mind/);
    assert.equal(await page.locator('.tl-step[data-step="charge"]').getAttribute('data-status'), 'compensated');
    assert.equal(await page.locator('#action-cancel').count(), 0);
    await shot(page, 'execution-cancelled.png');
  });

  test('a refused request shows the problem (title, detail) in the dialog', async () => {
    const p = watch(await ctx.newPage(), [/status of 409/]);
    await p.goto(`${base}/ui/executions/approval-refuse`);
    await p.locator('#action-signal').click();
    const dlg = p.locator('dialog.dialog-signal');
    await dlg.waitFor();
    // Someone else terminates it while the dialog is open.
    await api('POST', '/v1/executions/approval-refuse/terminate', {reason: 'from the test'});
    await dlg.locator('[data-action="send-signal"]').click();
    const problem = dlg.locator('.problem');
    await problem.waitFor();
    assert.match(await problem.innerText(), /Execution has ended/);
    assert.match(await problem.innerText(), /is terminated and takes no more signals/);
    assert.match(await problem.innerText(), /409/);
    await p.screenshot({path: path.join(ARTIFACTS, 'problem-dialog.png')});
    await p.keyboard.press('Escape');
    await dlg.waitFor({state: 'detached'});
    await until(async () => (await badgeOf(p).innerText()) === 'terminated', {what: 'terminated in the UI'});
    assert.match(await p.locator('.callout-warn').innerText(), /Terminated at .* no compensation ran/);
    assert.match(await p.locator('.callout-warn').innerText(), /from the test/);
    await p.close();
  });

  test('workflows: the list, a definition with its SVG diagram, versions and recent executions', async () => {
    await page.goto(`${base}/ui/workflows`);
    await page.locator('table.wf-table tbody tr').first().waitFor();
    assert.deepEqual(await page.locator('table.wf-table tbody tr').evaluateAll((r) => r.map((x) => x.dataset.name)), ['broken', 'hello', 'long', 'order-approval', 'payments']);
    await page.locator('tr[data-name="order-approval"] a.strong-link').click();
    await page.waitForURL(/\/ui\/workflows\/order-approval$/);
    const svg = page.locator('svg.diagram');
    await svg.waitFor();
    assert.deepEqual(await svg.locator('g.d-step').evaluateAll((g) => g.map((x) => `${x.dataset.step}:${x.dataset.kind}`)), ['charge:activity', 'approval:wait', 'ship:activity']);
    assert.equal(await svg.locator('g.d-comp[data-compensates="charge"]').count(), 1, 'the compensation is drawn');
    assert.match(await svg.locator('g.d-step[data-step="approval"]').textContent(), /signal "approve"/);
    assert.match(await svg.locator('g.d-step[data-step="charge"]').textContent(), new RegExp(`127\\.0\\.0\\.1:${stack.receiverPort}/ok`));
    assert.match(await page.locator('#panel-definition').innerText(), /"signal": "approve"/);
    const recent = await page.locator('.exec-table tbody tr').evaluateAll((r) => r.map((x) => x.dataset.id).sort());
    assert.deepEqual(recent, ['approval-cancel', 'approval-refuse', 'approval-signal']);
    await shot(page, 'workflow.png');

    // Versions: hello has two; v1 is reachable and says which one is the latest.
    await page.goto(`${base}/ui/workflows/hello`);
    await page.locator('.versions .ver-pill').nth(1).waitFor();
    assert.deepEqual(await page.locator('.versions .ver-pill').evaluateAll((a) => a.map((x) => x.dataset.version)), ['2', '1']);
    await page.locator('.versions .ver-pill[data-version="1"]').click();
    await page.waitForURL(/\/ui\/workflows\/hello\/versions\/1$/);
    await page.locator('.ver-lg').waitFor();
    assert.equal(await page.locator('.ver-lg').innerText(), 'v1');
    assert.match(await page.locator('.page-head').innerText(), /latest is v2/);
    assert.equal(await page.locator('svg.diagram g.d-step').count(), 3);
  });

  test('starting an execution from the workflow page; a 422 shows the problem with its errors', async () => {
    const p = watch(await ctx.newPage(), [/status of 422/]);
    await p.goto(`${base}/ui/workflows/hello`);
    await p.locator('#start-execution').click();
    const dlg = p.locator('dialog.dialog-start');
    await dlg.waitFor();
    await dlg.locator('#start-id').fill('not a valid id!');
    await dlg.locator('#start-input').fill('{"name": "Linus"}');
    await dlg.locator('[data-action="start"]').click();
    const problem = dlg.locator('.problem');
    await problem.waitFor();
    const text = await problem.innerText();
    assert.match(text, /Invalid request/);
    assert.match(text, /422/);
    assert.match(text, /\/id/, 'the pointer of the bad field');
    await dlg.locator('#start-id').fill('hello-ui');
    await dlg.locator('[data-action="start"]').click();
    await p.waitForURL(/\/ui\/executions\/hello-ui$/);
    await until(async () => (await badgeOf(p).innerText().catch(() => '')) === 'completed', {what: 'hello-ui completed', timeout: 15_000});
    assert.match(await p.locator('#panel-output').innerText(), /"greeted": "Linus"/);
    assert.match(await p.locator('.exec-head').innerText(), /hello\s+v2/);
    await p.close();
  });

  test('deep links: a reload lands on the same view; back and forward work', async () => {
    const views = [
      ['/ui/executions/payments-1', async () => assert.equal(await page.locator('h1.exec-id').innerText(), 'payments-1')],
      ['/ui/workflows/hello/versions/1', async () => assert.equal(await page.locator('.ver-lg').innerText(), 'v1')],
      ['/ui/workflows/payments', async () => assert.equal(await page.locator('h1').innerText(), 'payments')],
      ['/ui/workflows', async () => assert.equal(await page.locator('h1').innerText(), 'Workflows')],
      ['/ui/executions?status=failed', async () => {
        await until(async () => (await page.locator('table.exec-table tbody tr').count()) === 1, {what: 'one failed row'});
        assert.equal(await page.locator('.segmented button[data-status="failed"]').getAttribute('aria-pressed'), 'true');
      }],
    ];
    for (const [p, check] of views) {
      await page.goto(base + p);
      await page.locator('main h1').first().waitFor();
      await check();
      await page.reload();
      await page.locator('main h1').first().waitFor();
      assert.equal(new URL(page.url()).pathname + new URL(page.url()).search, p);
      await check();
    }
    // GET / redirects to the UI.
    await page.goto(`${base}/`);
    assert.equal(new URL(page.url()).pathname, '/ui/');
    // Client-side navigation keeps history.
    await page.locator('tr[data-id="hello-1"] a.id-link').click();
    await page.waitForURL(/\/ui\/executions\/hello-1$/);
    await page.locator('h1.exec-id').waitFor();
    await page.goBack();
    await page.waitForURL((u) => u.pathname === '/ui/');
    await page.locator('tr[data-id="hello-1"]').waitFor();
    await page.goForward();
    await page.locator('h1.exec-id').waitFor();
    assert.equal(await page.locator('h1.exec-id').innerText(), 'hello-1');
    // An unknown execution gets a clear page, not a crash.
    const p = watch(await ctx.newPage(), [/status of 404/]);
    await p.goto(`${base}/ui/executions/does-not-exist`);
    await p.locator('h1', {hasText: 'Execution not found'}).waitFor();
    await p.close();
  });

  test('phone width (375 px): no sideways scrolling, everything reachable', async () => {
    const phone = await stack.browser.newContext({viewport: {width: 375, height: 812}, deviceScaleFactor: 2, hasTouch: true, colorScheme: 'light'});
    try {
      const p = watch(await phone.newPage());
      for (const [url, ready, file] of [
        ['/ui/', 'table.exec-table tbody tr', 'phone.png'],
        ['/ui/executions/payments-1', '.tl-step[data-step="charge"]', 'phone-execution.png'],
        ['/ui/workflows/order-approval', 'svg.diagram', 'phone-workflow.png'],
      ]) {
        await p.goto(base + url);
        await p.locator(ready).first().waitFor();
        const overflow = await p.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
        assert.ok(overflow <= 0, `${url} scrolls sideways by ${overflow}px`);
        await p.screenshot({path: path.join(ARTIFACTS, file), fullPage: file === 'phone.png'});
      }
      // The phone diagram keeps compensations inside the step box.
      assert.match(await p.locator('svg.diagram g.d-step[data-step="charge"]').textContent(), /compensate/);
    } finally {
      await phone.close();
    }
  });

  test('dark mode follows prefers-color-scheme', async () => {
    const dark = await stack.browser.newContext({viewport: {width: 1280, height: 900}, colorScheme: 'dark'});
    try {
      const p = watch(await dark.newPage());
      await p.goto(`${base}/ui/executions/payments-1`);
      await p.locator('.tl-step[data-step="charge"]').waitFor();
      const [bg, fg] = await p.evaluate(() => {
        const cs = getComputedStyle(document.body);
        return [cs.backgroundColor, cs.color];
      });
      const lum = (c) => {
        const [r, g, b] = c.match(/\d+/g).map(Number);
        return (0.2126 * r + 0.7152 * g + 0.0722 * b) / 255;
      };
      assert.ok(lum(bg) < 0.15, `dark background (${bg})`);
      assert.ok(lum(fg) > 0.8, `light text (${fg})`);
      await p.screenshot({path: path.join(ARTIFACTS, 'execution-dark.png'), fullPage: true});
    } finally {
      await dark.close();
    }
  });

  test('with KEEL_API_TOKENS set, the UI asks for a token and keeps it', async () => {
    const secured = await stack.startKeeld('keeld-auth', {KEEL_API_TOKENS: 'ui-test-token'});
    const c = await stack.browser.newContext({viewport: {width: 1280, height: 900}});
    try {
      const p = watch(await c.newPage(), [/status of 401/]);
      await p.goto(`${secured}/ui/executions`);
      const dlg = p.locator('dialog.dialog-token');
      await dlg.waitFor();
      await dlg.locator('#token-input').fill('ui-test-token');
      await dlg.locator('[data-action="use-token"]').click();
      await dlg.waitFor({state: 'detached'});
      const now = (await api('GET', '/v1/executions')).data.executions.length;
      await until(async () => (await p.locator('table.exec-table tbody tr').count()) === now, {what: 'the list with the token'});
      assert.equal(await p.evaluate(() => localStorage.getItem('keel.apiToken')), 'ui-test-token');
      await p.reload();
      await p.locator('table.exec-table tbody tr').first().waitFor();
      assert.equal(await p.locator('dialog.dialog-token').count(), 0, 'no prompt: the token was kept');
      await p.goto(`${secured}/ui/executions/payments-1`);
      await p.locator('.tl-step[data-step="charge"]').waitFor();
    } finally {
      await c.close();
    }
  });

  test('no console errors or page errors on any page', (t) => {
    let errors = consoleErrors;
    // The PostgreSQL server may be shared with other test suites that restart it (outage
    // tests). While it is down keeld answers 503 and the UI retries its reads; Chromium logs
    // each of those answers. They are not the UI's errors, so they are left out then.
    if (pgStartTime() !== pgStarted) {
      errors = errors.filter((e) => !/status of 503|ERR_CONNECTION_REFUSED/.test(e));
      t.diagnostic(`PostgreSQL was restarted during the run; ${consoleErrors.length - errors.length} 503 answers ignored`);
    }
    assert.deepEqual(errors, []);
  });
});
