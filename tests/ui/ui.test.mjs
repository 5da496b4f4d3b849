// Browser tests of the web UI against a real keeld, a real receiver and real executions.
// Run: node --test tests/ui/  (see harness.mjs for the environment it needs).
import assert from 'node:assert/strict';
import path from 'node:path';
import {after, before, describe, test} from 'node:test';

import {ARTIFACTS, Stack, client, contrastOf, missingPrerequisites, pgStartTime, until} from './harness.mjs';

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

describe('web UI', {skip: skip || false, timeout: 240_000}, () => {
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
  // The execution page's diagram: its boxes, labels and state texts in the drawing's units
  // (getBBox), and the scale it is shown at.
  const diagramLayout = (svg) => svg.evaluate((el) => {
    const bb = (n) => {
      const b = n.getBBox();
      return {x: b.x, y: b.y, w: b.width, h: b.height};
    };
    const name = (n) => {
      const g = n.closest('[data-step], [data-branch]');
      return `${n.getAttribute('class') || n.tagName} of ${g ? g.dataset.step || g.dataset.branch : '?'}`;
    };
    const vb = el.viewBox.baseVal;
    return {
      vb: {w: vb.width, h: vb.height},
      scale: el.getBoundingClientRect().width / vb.width,
      solid: [...el.querySelectorAll('g.d-step > rect.d-box, g.d-head > rect.d-box, g.d-branch-label > rect, text.d-lane-state, g.d-empty > text')].map((n) => ({id: name(n), ...bb(n)})),
      states: [...el.querySelectorAll('g.d-state')].map((n) => ({id: name(n.parentElement), box: bb(n.parentElement.querySelector(':scope > rect.d-box, :scope > rect.d-frame')), ...bb(n)})),
    };
  });
  // No two boxes, labels or lane texts overlap; each state line lies inside its own box; all
  // of it inside the drawing.
  const assertDiagramLayout = (d, what) => {
    assert.ok(d.solid.length > 0 && d.states.length > 0, `${what}: a diagram with states`);
    for (const b of d.solid) assert.ok(b.x >= 0 && b.y >= 0 && b.x + b.w <= d.vb.w + 0.5 && b.y + b.h <= d.vb.h + 0.5, `${what}: ${b.id} inside the drawing`);
    for (const a of d.solid)
      for (const b of d.solid)
        if (a !== b) assert.ok(a.x + a.w <= b.x || b.x + b.w <= a.x || a.y + a.h <= b.y || b.y + b.h <= a.y, `${what}: ${a.id} and ${b.id} overlap`);
    for (const t of d.states)
      assert.ok(t.x >= t.box.x && t.y >= t.box.y && t.x + t.w <= t.box.x + t.box.w + 0.5 && t.y + t.h <= t.box.y + t.box.h + 0.5, `${what}: the state line of ${t.id} inside its box`);
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

    // Executions that stay in one state for the whole run (an hour of backoff, an hour of
    // sleep, an asynchronous activity with a heartbeat), and a failure that was compensated.
    await api('POST', '/v1/workflows', {
      name: 'backoff',
      description: 'One activity that keeps failing, retried an hour later',
      steps: [{id: 'call', activity: {url: `${R}/fail/500`, input: {}}, retry: {max_attempts: 3, initial_interval: '1h'}}],
    });
    await api('POST', '/v1/workflows', {
      name: 'nap',
      description: 'Sleep an hour, then wait for approval',
      steps: [
        {id: 'pause', sleep: '1h'},
        {id: 'approval', wait: {signal: 'approve'}},
      ],
    });
    await api('POST', '/v1/workflows', {
      name: 'async-job',
      description: 'An asynchronous activity that reports progress by heartbeat',
      steps: [{id: 'job', activity: {url: `${R}/async`, input: {}}, timeout: '1h', heartbeat_timeout: '1h'}],
    });
    await api('POST', '/v1/workflows', {
      name: 'saga',
      description: 'Reserve (compensated), then a charge that fails for good',
      steps: [
        {id: 'reserve', activity: {url: `${R}/ok`, input: {}}, compensate: {url: `${R}/ok`, input: {undo: true}}},
        {id: 'charge', activity: {url: `${R}/fail/500`, input: {}}, retry: {max_attempts: 1}},
      ],
    });

    const start = (wf, id, input) => api('POST', `/v1/workflows/${wf}/executions`, {id, input});
    await start('hello', 'hello-1', {name: 'Ada'});
    await start('broken', 'broken-1', {});
    await start('payments', 'payments-1', {order: 'A-1'});
    await start('hello', 'hello-2', {name: 'Grace'});
    for (const id of ['approval-signal', 'approval-cancel', 'approval-refuse']) await start('order-approval', id, {order: id});
    await start('long', 'long-1', {});
    await start('saga', 'saga-1', {});
    await start('backoff', 'state-retrying', {});
    await start('nap', 'state-sleeping', {});
    await start('async-job', 'job-1', {});
    for (const id of ['hello-1', 'broken-1', 'payments-1', 'hello-2', 'long-1', 'saga-1']) {
      const r = await api('GET', `/v1/executions/${id}/result?wait=20`);
      assert.equal(r.status, 200, `${id} should have ended`);
    }
    for (const id of ['approval-signal', 'approval-cancel', 'approval-refuse'])
      await until(async () => (await api('GET', `/v1/executions/${id}`)).data.steps[1].status === 'waiting', {what: `${id} waiting`});
    // The retrying step has failed once and waits an hour; the sleep has started.
    await until(async () => (await api('GET', '/v1/executions/state-retrying/history')).data.events.some((e) => e.type === 'attempt_failed'), {what: 'state-retrying failed once'});
    await until(async () => (await api('GET', '/v1/executions/state-sleeping/history')).data.events.some((e) => e.type === 'timer_started'), {what: 'state-sleeping asleep'});
    // The asynchronous activity: the receiver keeps the task token; a heartbeat with details.
    const token = await until(async () => {
      const stats = await (await fetch(`${R}/_stats`)).json();
      return stats.keys && stats.keys['job-1/job'] && stats.keys['job-1/job'].task_token;
    }, {what: 'the task token of job-1'});
    await until(async () => (await api('GET', '/v1/executions/job-1/history')).data.events.some((e) => e.type === 'attempt_started'), {what: 'job-1 accepted'});
    await api('POST', `/v1/tasks/${encodeURIComponent(token)}/heartbeat`, {details: {progress: 0.5, note: 'halfway there'}});

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
    assert.equal(ids.length, 12);
    assert.equal(await page.locator('tr[data-id="broken-1"] .c-status .badge').innerText(), 'failed');
    assert.equal(await page.locator('tr[data-id="payments-1"] .c-status .badge').innerText(), 'completed');
    assert.equal(await page.locator('tr[data-id="approval-signal"] .c-status .badge').innerText(), 'running');
    assert.match(await page.locator('tr[data-id="broken-1"] .row-error').innerText(), /explode/);
    // Running executions are shown, so the list refreshes itself.
    assert.ok(await page.locator('.page-head .live').isVisible(), 'live indicator while something runs');
    // Relative and absolute times, and a duration.
    assert.match(await page.locator('tr[data-id="hello-1"] .c-time .rel-time').first().innerText(), /ago|just now/);
    assert.match(await page.locator('tr[data-id="hello-1"] .c-time .abs-time').first().innerText(), /^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$/);
    assert.match(await page.locator('tr[data-id="hello-1"] .c-dur').innerText(), /\d+(\.\d+)? (ms|s)/);
    await shot(page, 'list.png');

    // Status filter: only the failed ones.
    await page.locator('.segmented input[value="failed"]').check();
    await page.waitForURL(/status=failed/);
    await until(async () => (await page.locator('table.exec-table tbody tr').evaluateAll((r) => r.map((x) => x.dataset.id))).join() === 'saga-1,broken-1', {what: 'only the failed ones'});
    assert.equal(await page.locator('.segmented input[value="failed"]').isChecked(), true);
    assert.equal(await page.locator('.segmented button[data-status="all"]').getAttribute('aria-pressed'), 'false');
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

  test('executions list: a running execution shows its current step and what it waits on', async () => {
    await page.goto(`${base}/ui/executions`);
    const cell = (id) => page.locator(`tr[data-id="${id}"] .c-now`);
    await cell('state-retrying').locator('.current-step').waitFor();
    // Retrying: the step, its badge, the next attempt (absolute and relative) and the last error.
    const retrying = cell('state-retrying');
    assert.equal(await retrying.locator('.current-step').getAttribute('data-step'), 'call');
    assert.equal(await retrying.locator('.badge').innerText(), 'retrying');
    // Due times: the clock time (with the date when not today), then how far away it is.
    const due = '(\\d{4}-\\d{2}-\\d{2} )?\\d{2}:\\d{2}:\\d{2} \\(in (59|60) min\\)';
    assert.match(await retrying.innerText(), new RegExp(`retrying, next attempt ${due}`));
    assert.match(await retrying.locator('.cs-error').innerText(), /last error: test_error/);
    // Sleeping until a time; waiting for a named signal until its timeout; an attempt running.
    assert.equal(await cell('state-sleeping').locator('.badge').innerText(), 'sleeping');
    assert.match(await cell('state-sleeping').innerText(), new RegExp(`pause[\\s\\S]*sleeping until ${due}`));
    assert.match(await cell('approval-cancel').innerText(), new RegExp(`approval[\\s\\S]*waiting for signal "approve" until ${due}`));
    assert.equal(await cell('approval-cancel').locator('.badge').innerText(), 'waiting');
    assert.match(await cell('job-1').innerText(), /job[\s\S]*running attempt 1/);
    // Ended executions have no current step.
    assert.equal(await cell('hello-1').innerText(), '—');
    // The extra column fits at 1280 px: the table does not scroll sideways.
    const overflow = await page.locator('.results .table-wrap').evaluate((el) => el.scrollWidth - el.clientWidth);
    assert.ok(overflow <= 0, `the executions table scrolls sideways by ${overflow}px`);
    await shot(page, 'list-states.png');
    // The list items are summaries: the page needs no input or output from them.
    const items = (await api('GET', '/v1/executions')).data.executions;
    assert.ok(items.every((x) => !('input' in x) && !('output' in x)), 'list items without input/output');
  });

  test('executions list: several statuses at once (?status=running,failed)', async () => {
    const all = (await api('GET', '/v1/executions')).data.executions;
    const want = all.filter((x) => x.status === 'running' || x.status === 'failed').map((x) => x.id).join();
    const shown = () => page.locator('table.exec-table tbody tr').evaluateAll((r) => r.map((x) => x.dataset.id).join());
    await page.goto(`${base}/ui/executions`);
    await page.locator('table.exec-table tbody tr').first().waitFor();
    await page.locator('.segmented input[value="failed"]').check();
    await page.waitForURL(/status=failed$/);
    await page.locator('.segmented input[value="running"]').check();
    await page.waitForURL((u) => u.search === '?status=running,failed');
    await until(async () => (await shown()) === want, {what: `running and failed: ${want}`});
    // Kept in the URL: a reload shows the same filter and rows.
    await page.reload();
    await until(async () => (await shown()) === want, {what: 'the same rows after a reload'});
    assert.equal(await page.locator('.segmented input[value="running"]').isChecked(), true);
    assert.equal(await page.locator('.segmented input[value="failed"]').isChecked(), true);
    assert.equal(await page.locator('.segmented input[value="completed"]').isChecked(), false);
    // Unchecking one leaves the other; "All" clears the filter.
    await page.locator('.segmented input[value="running"]').uncheck();
    await page.waitForURL((u) => u.search === '?status=failed');
    await page.locator('.segmented button[data-status="all"]').click();
    await page.waitForURL((u) => u.search === '');
    await until(async () => (await page.locator('table.exec-table tbody tr').count()) === all.length, {what: 'every row again'});
    assert.equal(await page.locator('.segmented input:checked').count(), 0);
  });

  test('Send signal is offered only while a wait is current or still ahead', async () => {
    // No wait step in the workflow: nothing would ever take the signal.
    for (const id of ['state-retrying', 'job-1']) {
      await page.goto(`${base}/ui/executions/${id}`);
      await page.locator('.tl-step').first().waitFor();
      assert.equal(await badgeOf(page).innerText(), 'running');
      assert.equal(await page.locator('#action-terminate').count(), 1, `${id}: the head is rendered`);
      assert.equal(await page.locator('#action-signal').count(), 0, `${id}: no Send signal`);
    }
    // Sleeping, with a wait still ahead: offered (the signal is kept until the wait takes it).
    await page.goto(`${base}/ui/executions/state-sleeping`);
    await page.locator('#action-signal').waitFor();
    await page.locator('#action-signal').click();
    const dlg = page.locator('dialog.dialog-signal');
    await dlg.waitFor();
    assert.equal(await dlg.locator('#signal-name').inputValue(), 'approve');
    assert.match(await dlg.innerText(), /ahead: "approve"/);
    await page.keyboard.press('Escape');
    await dlg.waitFor({state: 'detached'});
  });

  test('execution page: retrying, sleeping and heartbeat states of steps', async () => {
    // Retrying: its own badge, the next attempt and the last error.
    await page.goto(`${base}/ui/executions/state-retrying`);
    const call = page.locator('.tl-step[data-step="call"]');
    await call.waitFor();
    await until(async () => (await call.getAttribute('data-status')) === 'retrying', {what: 'call retrying'});
    assert.equal(await call.locator('.tl-sub .badge').innerText(), 'retrying');
    assert.match(await call.locator('.step-due').innerText(), /next attempt \d{4}-.*\(in (59|60) min\)/);
    assert.match(await call.locator('.step-error').innerText(), /last error: test_error/);
    await call.locator('.tl-toggle').click();
    assert.match(await call.locator('.tl-detail .facts').innerText(), /Next attempt/i);
    await shot(page, 'execution-retrying.png');

    // Sleeping until a time.
    await page.goto(`${base}/ui/executions/state-sleeping`);
    const pause = page.locator('.tl-step[data-step="pause"]');
    await pause.waitFor();
    await until(async () => (await pause.getAttribute('data-status')) === 'sleeping', {what: 'pause sleeping'});
    assert.equal(await pause.locator('.tl-sub .badge').innerText(), 'sleeping');
    assert.match(await pause.locator('.step-due').innerText(), /due \d{4}-.*\(in (59|60) min\)/);
    await shot(page, 'execution-sleeping.png');

    // An asynchronous activity: running attempt 1 and its last heartbeat, details as JSON.
    await page.goto(`${base}/ui/executions/job-1`);
    const job = page.locator('.tl-step[data-step="job"]');
    await job.waitFor();
    await job.locator('.step-heartbeat').waitFor();
    assert.match(await job.locator('.step-heartbeat').innerText(), /last heartbeat \d{4}-.*\((\d+ s ago|just now)\).*halfway there/);
    await job.locator('.tl-toggle').click();
    const panel = job.locator('.json-panel[data-panel="heartbeat details"]');
    await panel.waitFor();
    assert.match(await panel.innerText(), /"note": "halfway there"/);
    // Collapsible.
    await panel.locator('.panel-toggle').click();
    assert.equal(await panel.locator('.json-body').isHidden(), true);
    await panel.locator('.panel-toggle').click();
    await shot(page, 'execution-heartbeat.png');
  });

  test('a compensated failure offers no Retry (the API refuses it)', async () => {
    await page.goto(`${base}/ui/executions/saga-1`);
    await page.locator('.callout-bad').waitFor();
    assert.equal(await page.locator('.tl-step[data-step="reserve"]').getAttribute('data-status'), 'compensated');
    assert.equal(await page.locator('#action-retry').count(), 0, 'no Retry button');
    assert.match(await page.locator('.callout-bad .no-retry').innerText(), /Retry is not possible: compensations ran/);
    await shot(page, 'execution-compensated.png');
    // The rule the page follows is the API's: POST .../retry is 409 here.
    const r = await fetch(`${base}/v1/executions/saga-1/retry`, {method: 'POST'});
    assert.equal(r.status, 409);
  });

  test('new step statuses have badges that stay readable in dark mode', async () => {
    const dark = await stack.browser.newContext({viewport: {width: 1280, height: 900}, colorScheme: 'dark'});
    try {
      const p = watch(await dark.newPage());
      await p.goto(`${base}/ui/executions`);
      await p.locator('tr[data-id="state-retrying"] .c-now .badge').waitFor();
      await p.locator('tr[data-id="state-sleeping"] .c-now .badge').waitFor();
      // WCAG contrast of each badge's text on its background (over the card it sits on).
      const ratios = await p.evaluate(() => {
        const rgba = (c) => {
          const m = c.match(/[\d.]+/g).map(Number);
          return {r: m[0], g: m[1], b: m[2], a: m.length > 3 ? m[3] : 1};
        };
        const over = (top, under) => ({r: top.r * top.a + under.r * (1 - top.a), g: top.g * top.a + under.g * (1 - top.a), b: top.b * top.a + under.b * (1 - top.a), a: 1});
        const lum = ({r, g, b}) => {
          const f = (v) => ((v /= 255) <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4);
          return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
        };
        const out = {};
        for (const st of ['retrying', 'sleeping', 'waiting', 'running']) {
          const el = document.querySelector(`.c-now .badge.st-${st}`);
          if (!el) continue;
          let under = {r: 0, g: 0, b: 0, a: 0};
          for (let n = el.parentElement; n; n = n.parentElement) {
            const c = rgba(getComputedStyle(n).backgroundColor);
            if (c.a > 0) {
              under = c;
              break;
            }
          }
          const bg = over(rgba(getComputedStyle(el).backgroundColor), under);
          const fg = rgba(getComputedStyle(el).color);
          const [a, b] = [lum(fg), lum(bg)].sort((x, y) => y - x);
          out[st] = {ratio: (a + 0.05) / (b + 0.05), bg: getComputedStyle(el).backgroundColor};
        }
        return out;
      });
      for (const st of ['retrying', 'sleeping']) {
        assert.ok(ratios[st], `a ${st} badge in the list`);
        assert.ok(ratios[st].ratio >= 4.5, `${st} badge contrast ${ratios[st].ratio.toFixed(2)} in dark mode`);
      }
      assert.notEqual(ratios.retrying.bg, ratios.waiting.bg, 'retrying and waiting look different');
      assert.notEqual(ratios.sleeping.bg, ratios.running.bg, 'sleeping and running look different');
      await p.screenshot({path: path.join(ARTIFACTS, 'list-states-dark.png'), fullPage: true});
      await p.goto(`${base}/ui/executions/state-retrying`);
      await p.locator('.tl-step[data-step="call"] .step-due').waitFor();
      await p.screenshot({path: path.join(ARTIFACTS, 'execution-retrying-dark.png'), fullPage: true});
    } finally {
      await dark.close();
    }
  });

  test('executions list: keyset pages (next_cursor), kept in the URL', async () => {
    const all = (await api('GET', '/v1/executions')).data.executions.map((x) => x.id);
    const shown = () => page.locator('table.exec-table tbody tr').evaluateAll((r) => r.map((x) => x.dataset.id).join());
    const expect = (from) => until(async () => (await shown()) === all.slice(from, from + 5).join(), {what: `rows ${from}..${from + 4}`});
    await page.goto(`${base}/ui/executions?limit=5`);
    await expect(0);
    assert.equal(await page.locator('#page-prev').isDisabled(), true);
    await page.locator('#page-next').click();
    await page.waitForURL(/cursor=/);
    await expect(5);
    await page.locator('#page-next').click();
    await expect(10);
    assert.equal(await page.locator('#page-next').isDisabled(), true, 'last page');
    await page.locator('#page-prev').click();
    await expect(5);
    // The cursor is in the URL: a reload shows the same page.
    await page.reload();
    await expect(5);
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
    assert.deepEqual(await page.locator('table.wf-table tbody tr').evaluateAll((r) => r.map((x) => x.dataset.name)), ['async-job', 'backoff', 'broken', 'hello', 'long', 'nap', 'order-approval', 'payments', 'saga']);
    await page.locator('tr[data-name="order-approval"] a.strong-link').click();
    await page.waitForURL(/\/ui\/workflows\/order-approval$/);
    const svg = page.locator('svg.diagram');
    await svg.waitFor();
    assert.deepEqual(await svg.locator('g.d-step').evaluateAll((g) => g.map((x) => `${x.dataset.step}:${x.dataset.kind}`)), ['charge:activity', 'approval:wait', 'ship:activity']);
    assert.equal(await svg.locator('g.d-comp[data-compensates="charge"]').count(), 1, 'the compensation is drawn');
    assert.match(await svg.locator('g.d-step[data-step="approval"]').textContent(), /signal "approve"/);
    assert.match(await svg.locator('g.d-step[data-step="charge"]').textContent(), new RegExp(`127\\.0\\.0\\.1:${stack.receiverPort}/ok`));
    assert.match(await page.locator('#panel-definition').innerText(), /"signal": "approve"/);
    // The recent executions come with a request of their own, after the diagram.
    await until(async () => (await page.locator('.exec-table tbody tr').count()) === 3, {what: 'the recent executions'});
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
        await until(async () => (await page.locator('table.exec-table tbody tr').count()) === 2, {what: 'two failed rows'});
        assert.equal(await page.locator('.segmented input[value="failed"]').isChecked(), true);
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

  // ---- flow steps: parallel and for_each (registered here, after the tests that count the
  // executions and workflows of the list pages)
  test('flow steps: a parallel and a for_each of 30 items as a collapsible tree with counts per status', async () => {
    const R = stack.receiverUrl;
    await api('POST', '/v1/workflows', {
      name: 'fanout',
      description: 'Notify by email and SMS at once, then charge 30 orders, 5 at a time',
      steps: [
        {id: 'prep', activity: {url: `${R}/ok`, input: {}}},
        {id: 'notify', parallel: {branches: {
          sms: [{id: 'send-sms', activity: {url: `${R}/ok`, input: {}}}, {id: 'nap', sleep: '50ms'}],
          email: [{id: 'send-email', activity: {url: `${R}/ok`, input: {}}}],
        }}},
        {id: 'charge-all', for_each: {items: '${input.orders}', concurrency: 5, steps: [
          {id: 'charge', activity: {url: `${R}/slow/5`, input: {order: '${item}'}}},
        ]}},
        {id: 'done', activity: {url: `${R}/ok`, input: {charged: '${steps.charge-all.output}'}}},
      ],
    });
    const orders = Array.from({length: 30}, (_, i) => `order-${i}`);
    await api('POST', '/v1/workflows/fanout/executions', {id: 'fanout-1', input: {orders}});
    const r = await api('GET', '/v1/executions/fanout-1/result?wait=30');
    assert.equal(r.status, 200);
    assert.equal(r.data.status, 'completed', JSON.stringify(r.data.error));

    await page.goto(`${base}/ui/executions/fanout-1`);
    const row = (p) => page.locator(`.tl-row[data-path="${p}"]`);
    const own = (p, sel) => page.locator(`.tl-row[data-path="${p}"] > ${sel}`);
    const loop = row('charge-all');
    await loop.waitFor();
    assert.equal(await badgeOf(page).innerText(), 'completed');
    // Top-level steps in order; containers have their kind.
    assert.deepEqual(await page.locator('.tl > .tl-step').evaluateAll((rs) => rs.map((x) => `${x.dataset.path}:${x.dataset.kind}`)),
      ['prep:activity', 'notify:parallel', 'charge-all:for_each', 'done:activity']);

    // The parallel: its branches (by name), each with its steps, and a count per status.
    const notify = row('notify');
    assert.equal(await notify.getAttribute('data-status'), 'completed');
    assert.equal(await own('notify', '.tl-main .tree-counts').innerText(), '2 completed');
    assert.deepEqual(await own('notify', '.tl-children > .tl-row').evaluateAll((rs) => rs.map((x) => `${x.dataset.step}:${x.dataset.kind}`)), ['email:branch', 'sms:branch']);
    assert.deepEqual(await own('notify/sms', '.tl-children > .tl-row').evaluateAll((rs) => rs.map((x) => x.dataset.path)), ['notify/sms/send-sms', 'notify/sms/nap']);
    assert.equal(await row('notify/sms/send-sms').locator('.attempt-chip.st-ok').count(), 1);
    assert.match(await row('notify/sms/nap').locator('.timer-chip').innerText(), /slept/);

    // The for_each: every iteration counted, 20 drawn, the rest behind "Show more".
    assert.equal(await loop.getAttribute('data-total'), '30');
    assert.equal(await own('charge-all', '.tl-main .tree-counts').innerText(), '30 completed');
    assert.match(await own('charge-all', '.tl-main .tl-sum').innerText(), /30 items/);
    const iterations = own('charge-all', '.tl-children > .tl-row[data-kind="iteration"]');
    assert.equal(await iterations.count(), 20);
    assert.deepEqual(await iterations.evaluateAll((rs) => rs.map((x) => x.dataset.step)), Array.from({length: 20}, (_, i) => String(i)));
    const more = own('charge-all', '.tl-children > .tree-more');
    assert.match(await more.innerText(), /10 more iterations not shown: 10 completed/);
    assert.match(await row('charge-all/4').locator('.tl-sub').innerText(), /item "order-4"/);
    // Completed iterations start collapsed; each one is a button with aria-expanded.
    const t4 = own('charge-all/4', '.tl-label .tree-toggle');
    assert.equal(await t4.evaluate((b) => b.tagName), 'BUTTON');
    assert.equal(await t4.getAttribute('aria-expanded'), 'false');
    const controls = await t4.getAttribute('aria-controls');
    assert.equal(await page.locator(`[id="${controls}"]`).isHidden(), true);
    await t4.click();
    assert.equal(await t4.getAttribute('aria-expanded'), 'true');
    await row('charge-all/4/charge').waitFor();
    assert.equal(await row('charge-all/4/charge').locator('.attempt-chip.st-ok').count(), 1);
    assert.equal(await page.locator(`[id="${controls}"]`).isVisible(), true);
    // Keyboard: the parallel collapses with Enter on its toggle, and opens again.
    const tn = own('notify', '.tl-label .tree-toggle');
    assert.equal(await tn.getAttribute('aria-expanded'), 'true');
    await tn.focus();
    await page.keyboard.press('Enter');
    assert.equal(await tn.getAttribute('aria-expanded'), 'false');
    assert.equal(await row('notify/email').isHidden(), true);
    await page.keyboard.press('Enter');
    await row('notify/email').waitFor();
    await shot(page, 'execution-flow.png');
    // Show more: the other 10; nothing left behind the button.
    await more.locator('button.tree-more-btn').click();
    await until(async () => (await iterations.count()) === 30, {what: '30 iterations drawn'});
    assert.equal(await own('charge-all', '.tl-children > .tree-more').count(), 0);
    assert.equal(await own('charge-all/4', '.tl-label .tree-toggle').getAttribute('aria-expanded'), 'true', 'an opened iteration stays open');
    assert.ok((await page.locator('.tl-row').count()) < 100, 'a bounded number of rows');

    // The execution's diagram: one box per step of the definition (not per iteration), the
    // loop's step with its count per status, the loop with its iterations.
    const dia = page.locator('#diagram svg.diagram');
    assert.deepEqual(await dia.locator('g.d-step').evaluateAll((g) => g.map((x) => `${x.dataset.step}:${x.dataset.status}`)),
      ['prep:completed', 'send-email:completed', 'send-sms:completed', 'nap:completed', 'charge:completed', 'done:completed']);
    const chargeBox = dia.locator('g.d-foreach[data-step="charge-all"] g.d-step[data-step="charge"]');
    assert.equal(await chargeBox.locator('.d-state-text').textContent(), '30 completed');
    assert.equal(await dia.locator('g.d-foreach[data-step="charge-all"] > .d-state').textContent(), 'completed · 30 iterations: 30 completed');
    assert.equal(await dia.locator('g.d-parallel[data-step="notify"]').getAttribute('data-status'), 'completed');
    await dia.screenshot({path: path.join(ARTIFACTS, 'execution-diagram-loop.png')});

    // History: the path beside the step id where they differ; the filter finds paths.
    const send = page.locator('.history-table tr.ev-row[data-type="attempt_started"][data-path="charge-all/7/charge"]');
    assert.equal(await send.count(), 1);
    assert.equal(await send.locator('.ev-path').innerText(), 'charge-all/7/charge');
    assert.equal(await page.locator('.history-table tr.ev-row[data-type="attempt_started"][data-path="prep"] .ev-path').count(), 0, 'no path where it is the id');
    await page.locator('#history-filter').fill('charge-all/7/');
    const visible = await page.locator('.history-table tr.ev-row').evaluateAll((rs) => rs.filter((x) => !x.hidden).map((x) => x.dataset.path));
    assert.ok(visible.length >= 3 && visible.every((p) => p === 'charge-all/7/charge'), visible.join());
    await page.locator('#history-filter').fill('');

    // The diagram: a fork into the branches and a join; the loop framed with its items and concurrency.
    await page.goto(`${base}/ui/workflows/fanout`);
    const svg = page.locator('svg.diagram');
    await svg.waitFor();
    const par = svg.locator('g.d-parallel[data-step="notify"]');
    assert.deepEqual(await par.locator('g.d-branch').evaluateAll((g) => g.map((x) => x.dataset.branch)), ['email', 'sms']);
    assert.deepEqual(await par.locator('g.d-branch[data-branch="sms"] g.d-step').evaluateAll((g) => g.map((x) => `${x.dataset.step}:${x.dataset.kind}`)), ['send-sms:activity', 'nap:sleep']);
    assert.equal(await par.locator('rect.d-bar').count(), 2, 'a fork bar and a join bar');
    const fe = svg.locator('g.d-foreach[data-step="charge-all"]');
    assert.match(await fe.textContent(), /each of \$\{input\.orders\} · 5 at once/);
    assert.deepEqual(await fe.locator('g.d-step').evaluateAll((g) => g.map((x) => x.dataset.step)), ['charge']);
    assert.deepEqual(await svg.locator('g.d-step').evaluateAll((g) => g.map((x) => x.dataset.step)), ['prep', 'send-email', 'send-sms', 'nap', 'charge', 'done']);
    await shot(page, 'workflow-flow.png');
  });

  test('flow steps: nesting to any depth in the diagram, boxes never overlapping', async () => {
    const R = stack.receiverUrl;
    const act = (id) => ({id, activity: {url: `${R}/ok`, input: {}}});
    await api('POST', '/v1/workflows', {
      name: 'nested-flow',
      steps: [
        act('start-here'),
        {id: 'regions', for_each: {items: '${input.regions}', concurrency: 2, steps: [
          {id: 'per-region', parallel: {branches: {
            stock: [act('count-stock'), {id: 'lines', for_each: {items: '${item.lines}', steps: [act('check-line')]}}],
            // An if in a branch of a parallel in a loop: an if without an else in its then, a
            // child workflow in its else.
            audit: [{id: 'check', if: '${item.audit}',
              then: [{id: 'hold', sleep: '1s'}, {id: 'deep', if: '${item.deep}', then: [act('deeper')]}],
              else: [{id: 'sub', workflow: {name: 'hello'}}]}],
            notify: [act('tell')],
          }}},
          act('report'),
        ]}},
        act('finish'),
      ],
    });
    for (const [ctxName, width] of [['desktop', 1280], ['phone', 375]]) {
      const c = await stack.browser.newContext({viewport: {width, height: 900}, colorScheme: 'light'});
      try {
        const p = watch(await c.newPage());
        await p.goto(`${base}/ui/workflows/nested-flow`);
        const svg = p.locator('svg.diagram');
        await svg.waitFor();
        assert.deepEqual(await svg.locator('g.d-foreach[data-step="regions"] g.d-parallel[data-step="per-region"] g.d-branch[data-branch="stock"] g.d-foreach[data-step="lines"] g.d-step')
          .evaluateAll((g) => g.map((x) => x.dataset.step)), ['check-line'], ctxName);
        assert.deepEqual(await svg.locator('g.d-parallel[data-step="per-region"] g.d-branch').evaluateAll((g) => g.map((x) => x.dataset.branch)), ['audit', 'notify', 'stock']);
        const check = svg.locator('g.d-branch[data-branch="audit"] g.d-if[data-step="check"]');
        assert.deepEqual(await check.locator('g.d-lane[data-if="check"]').evaluateAll((g) => g.map((x) => x.dataset.branch)), ['then', 'else'], ctxName);
        assert.deepEqual(await check.locator('g.d-lane[data-branch="then"] g.d-if[data-step="deep"] g.d-lane[data-branch="then"] g.d-step').evaluateAll((g) => g.map((x) => x.dataset.step)), ['deeper']);
        assert.equal(await check.locator('g.d-if[data-step="deep"] g.d-lane-none[data-branch="else"]').count(), 1, 'no else: an empty lane');
        assert.equal(await check.locator('g.d-lane[data-branch="else"] a.d-link[data-workflow="hello"] g.d-step[data-kind="workflow"]').getAttribute('data-step'), 'sub');
        assert.match(await svg.getAttribute('aria-label'), /Diagram of 14 steps/);
        // No two step boxes or branch labels overlap, and every one lies inside the drawing.
        const boxes = await svg.evaluate((el) => {
          const vb = el.viewBox.baseVal;
          return {vb: [vb.width, vb.height], boxes: [...el.querySelectorAll('g.d-step > rect.d-box, g.d-head > rect, g.d-foreach > rect.d-frame, g.d-branch-label > rect')].map((r) => {
            const b = r.getBBox();
            const label = r.parentElement.classList.contains('d-branch-label');
            const id = label ? `${r.parentElement.parentElement.dataset.branch} label` : r.parentElement.dataset.step || r.parentElement.parentElement.dataset.step;
            return {id, frame: r.classList.contains('d-frame'), x: b.x, y: b.y, w: b.width, h: b.height};
          })};
        });
        assert.equal(boxes.boxes.length, 21, '9 steps, 3 headers, 2 frames and 7 branch labels');
        for (const b of boxes.boxes) assert.ok(b.x >= 0 && b.y >= 0 && b.x + b.w <= boxes.vb[0] + 0.5 && b.y + b.h <= boxes.vb[1] + 0.5, `${b.id} inside the drawing`);
        const solid = boxes.boxes.filter((b) => !b.frame);
        for (const a of solid)
          for (const b of solid)
            if (a !== b) assert.ok(a.x + a.w <= b.x || b.x + b.w <= a.x || a.y + a.h <= b.y || b.y + b.h <= a.y, `${a.id} and ${b.id} overlap`);
        const overflow = await p.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
        assert.ok(overflow <= 0, `${ctxName}: the page scrolls sideways by ${overflow}px`);
        await p.screenshot({path: path.join(ARTIFACTS, `workflow-nested-${ctxName}.png`), fullPage: true});
      } finally {
        await c.close();
      }
    }
  });

  test('flow steps: a failing iteration shows first, with the failed count, also in dark mode', async () => {
    const R = stack.receiverUrl;
    await api('POST', '/v1/workflows', {
      name: 'fanout-fail',
      steps: [
        {id: 'charge-all', for_each: {items: '${input.urls}', concurrency: 5, steps: [
          {id: 'charge', activity: {url: '${item}', input: {}}, retry: {max_attempts: 1}},
        ]}},
        {id: 'after', activity: {url: `${R}/ok`, input: {}}},
      ],
    });
    const urls = Array.from({length: 30}, (_, i) => (i === 23 ? `${R}/fail/500` : `${R}/ok`));
    await api('POST', '/v1/workflows/fanout-fail/executions', {id: 'fanout-fail-1', input: {urls}});
    const r = await api('GET', '/v1/executions/fanout-fail-1/result?wait=30');
    assert.equal(r.data.status, 'failed');
    const steps = r.data.steps;
    const started = steps.filter((x) => x.kind === 'iteration').length;

    const dark = await stack.browser.newContext({viewport: {width: 1280, height: 900}, colorScheme: 'dark'});
    try {
      const p = watch(await dark.newPage());
      await p.goto(`${base}/ui/executions/fanout-fail-1`);
      const own = (pth, sel) => p.locator(`.tl-row[data-path="${pth}"] > ${sel}`);
      await own('charge-all', '.tl-main .tree-counts').waitFor();
      assert.equal(await p.locator('.tl-row[data-path="charge-all"]').getAttribute('data-status'), 'failed');
      const failedCount = own('charge-all', '.tl-main .tree-counts .count[data-status="failed"]');
      assert.equal(await failedCount.innerText(), '1 failed');
      assert.match(await own('charge-all', '.tl-main .tree-counts').innerText(), new RegExp(`${30 - started} not started$`));
      // The failed iteration is the first row, open, with its failed step inside.
      const first = own('charge-all', '.tl-children > .tl-row').first();
      assert.equal(await first.getAttribute('data-path'), 'charge-all/23');
      assert.equal(await first.getAttribute('data-status'), 'failed');
      assert.equal(await own('charge-all/23', '.tl-label .tree-toggle').getAttribute('aria-expanded'), 'true');
      assert.equal(await p.locator('.tl-row[data-path="charge-all/23/charge"]').getAttribute('data-status'), 'failed');
      assert.equal(await p.locator('.tl-row[data-path="charge-all/23/charge"] .attempt-chip.st-failed').count(), 1);
      assert.match(await p.locator('.callout-bad').innerText(), /Failed at step charge \(charge-all\/23\/charge\)/);
      assert.equal(await p.locator('.tl-row[data-path="after"]').getAttribute('data-status'), 'skipped');
      // The diagram: the loop's step is failed, with its counts (the failed one among them).
      const chargeBox = p.locator('#diagram svg.diagram g.d-step[data-step="charge"]');
      assert.equal(await chargeBox.getAttribute('data-status'), 'failed');
      assert.match(await chargeBox.locator('.d-state-text').textContent(), new RegExp(`^${started - 1} completed · 1 failed`));
      assert.equal((await chargeBox.locator('.d-state-text tspan.st-failed').textContent()).replace(/^[ ·]+/, ''), '1 failed', 'in the colour of failed');
      assert.equal(await p.locator('#diagram svg.diagram g.d-step[data-step="after"]').getAttribute('data-status'), 'skipped');
      await p.locator('#diagram svg.diagram').screenshot({path: path.join(ARTIFACTS, 'execution-diagram-loop-failed-dark.png')});
      // Readable in dark mode: the counts against the page.
      const ratio = await failedCount.evaluate((el) => {
        const rgb = (c) => c.match(/[\d.]+/g).map(Number);
        const lum = ([r, g, b]) => {
          const f = (v) => ((v /= 255) <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4);
          return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
        };
        let n = el;
        while (n && rgb(getComputedStyle(n).backgroundColor)[3] === 0) n = n.parentElement;
        const [a, b] = [lum(rgb(getComputedStyle(el).color)), lum(rgb(getComputedStyle(n || document.body).backgroundColor))].sort((x, y) => y - x);
        return (a + 0.05) / (b + 0.05);
      });
      assert.ok(ratio >= 4.5, `failed count contrast ${ratio.toFixed(2)} in dark mode`);
      await p.screenshot({path: path.join(ARTIFACTS, 'execution-flow-failed-dark.png'), fullPage: true});
    } finally {
      await dark.close();
    }
  });

  test('set and fail steps: drawn with their kind, and the fail step\'s error on the execution', async () => {
    const R = stack.receiverUrl;
    await api('POST', '/v1/workflows', {
      name: 'refuse-ui',
      steps: [
        {id: 'charge', activity: {url: `${R}/ok`, input: {}}, compensate: {url: `${R}/ok`, input: {}}},
        {id: 'totals', set: {total: '${input.total}'}},
        {id: 'no', fail: {type: 'Rejected', message: 'total ${steps.totals.output.total} is over the limit'}},
      ],
    });
    await api('POST', '/v1/workflows/refuse-ui/executions', {id: 'refuse-ui-1', input: {total: 1200}});
    const r = await api('GET', '/v1/executions/refuse-ui-1/result?wait=30');
    assert.equal(r.data.status, 'failed');

    await page.goto(`${base}/ui/workflows/refuse-ui`);
    const svg = page.locator('svg.diagram');
    await svg.waitFor();
    assert.deepEqual(await svg.locator('g.d-step').evaluateAll((g) => g.map((x) => `${x.dataset.step}:${x.dataset.kind}`)),
      ['charge:activity', 'totals:set', 'no:fail']);
    assert.match(await page.locator('.legend').innerText(), /set[\s\S]*fail/);

    await page.goto(`${base}/ui/executions/refuse-ui-1`);
    await page.locator('.callout-bad').waitFor();
    const error = await page.locator('#panel-error').innerText();
    assert.match(error, /Rejected/);
    assert.match(error, /total 1200 is over the limit/);
    assert.equal(await page.locator('.tl-row[data-path="totals"]').getAttribute('data-status'), 'completed');
    assert.equal(await page.locator('.tl-row[data-path="no"]').getAttribute('data-status'), 'failed');
    await shot(page, 'execution-fail-step.png');
  });

  test('a wait for any of several signals shows the names, then which one ended it', async () => {
    await api('POST', '/v1/workflows', {
      name: 'review-ui',
      steps: [
        {id: 'decide', wait: {any: ['approve', 'reject'], timeout: '1h'}},
        {id: 'route', if: "${steps.decide.output.signal == 'approve'}", then: [{id: 'go-on', set: {ok: true}}], else: [{id: 'stop', set: {ok: false}}]},
      ],
      output: '${steps.decide.output}',
    });
    await api('POST', '/v1/workflows/review-ui/executions', {id: 'review-ui-1'});
    await page.goto(`${base}/ui/executions/review-ui-1`);
    const chip = page.locator('.tl-row[data-path="decide"] .wait-chip');
    await until(async () => (await chip.count()) === 1 && /waiting for "approve" or "reject"/.test(await chip.innerText()),
      {what: 'the wait chip names both signals'});
    // The diagram while it waits: the if after it is not reached, so neither lane is taken.
    const dia = page.locator('#diagram svg.diagram');
    const decide = dia.locator('g.d-step[data-step="decide"]');
    const route = dia.locator('g.d-if[data-step="route"]');
    assert.equal(await decide.getAttribute('data-status'), 'waiting');
    assert.equal(await decide.locator('.d-state-text').textContent(), 'waiting');
    assert.equal(await route.getAttribute('data-status'), 'pending');
    assert.equal(await route.getAttribute('data-taken'), null);
    assert.deepEqual(await route.locator('g.d-lane').evaluateAll((g) => g.map((x) => `${x.dataset.branch}:${x.dataset.state ?? ''}`)), ['then:', 'else:']);
    assert.equal(await route.locator('text.d-lane-state').count(), 0, 'no lane says taken or not taken');
    assert.deepEqual(await route.locator('g.d-step').evaluateAll((g) => g.map((x) => `${x.dataset.step}:${x.dataset.status}`)), ['go-on:pending', 'stop:pending']);
    await api('POST', '/v1/executions/review-ui-1/signals/reject', {by: 'ann'});
    const r = await api('GET', '/v1/executions/review-ui-1/result?wait=30');
    assert.deepEqual(r.data.output, {signal: 'reject', payload: {by: 'ann'}});
    await page.goto(`${base}/ui/executions/review-ui-1`);
    await until(async () => /got "reject"/.test(await chip.innerText()), {what: 'the chip says which signal came'});
    // The diagram names the signal that ended the wait, and the lane it chose.
    await until(async () => (await decide.getAttribute('data-status')) === 'completed', {what: 'the diagram shows the wait completed'});
    assert.equal(await decide.getAttribute('data-signal'), 'reject');
    assert.equal(await decide.locator('.d-state-text').textContent(), 'completed · got "reject"');
    assert.equal(await route.getAttribute('data-taken'), 'else');
    assert.deepEqual(await route.locator('g.d-lane').evaluateAll((g) => g.map((x) => `${x.dataset.branch}:${x.dataset.state}:${x.querySelector('text.d-lane-state').textContent}`)),
      ['then:not_taken:not taken', 'else:taken:taken']);
    assert.deepEqual(await route.locator('g.d-step').evaluateAll((g) => g.map((x) => `${x.dataset.step}:${x.dataset.status}`)), ['go-on:not_taken', 'stop:completed']);
  });

  // ---- if steps and child workflows: an order workflow with two ifs and a workflow step that
  // starts a shipping workflow, run three ways.
  test('if and workflow steps in the diagram: both lanes, the condition, a link to the child workflow', async () => {
    const R = stack.receiverUrl;
    await api('POST', '/v1/workflows', {
      name: 'shipping',
      description: 'Print a label; hold the parcel until "go" when asked to',
      steps: [
        {id: 'label', activity: {url: `${R}/ok`, input: '${input.order}'}},
        {id: 'hold', if: '${input.hold}', then: [{id: 'wait-go', wait: {signal: 'go', timeout: '1h'}}]},
      ],
      output: {tracking: '${steps.label.output.key}'},
    });
    await api('POST', '/v1/workflows', {
      name: 'order',
      description: 'Review big orders, wrap gifts, ship through the shipping workflow, thank',
      steps: [
        {id: 'big', if: '${input.big}',
          then: [{id: 'review', activity: {url: `${R}/ok`, input: {}}}, {id: 'reviewed', set: {by: 'review'}}],
          else: [{id: 'auto', set: {by: 'policy'}}]},
        {id: 'gift', if: '${input.gift}', then: [{id: 'wrap', activity: {url: `${R}/ok`, input: {}}}]},
        {id: 'ship', workflow: {name: 'shipping', input: {order: '${input.order}', hold: '${input.hold}'}}},
        {id: 'thanks', activity: {url: `${R}/ok`, input: {}}},
      ],
      output: {ship: '${steps.ship.output}'},
    });

    await page.goto(`${base}/ui/workflows/order`);
    const svg = page.locator('svg.diagram');
    await svg.waitFor();
    assert.deepEqual(await svg.locator('g.d-flow, g.d-step').evaluateAll((g) => g.filter((x) => !x.parentElement.closest('g.d-flow')).map((x) => `${x.dataset.step}:${x.dataset.kind}`)),
      ['big:if', 'gift:if', 'ship:workflow', 'thanks:activity'], 'top-level steps in order');
    const big = svg.locator('g.d-if[data-step="big"]');
    assert.equal(await big.getAttribute('data-condition'), '${input.big}');
    assert.match(await big.locator('g.d-head.kind-if').textContent(), /IF[\s\S]*big[\s\S]*if \$\{input\.big\}/);
    assert.deepEqual(await big.locator('g.d-lane').evaluateAll((g) => g.map((x) => x.dataset.branch)), ['then', 'else']);
    assert.deepEqual(await big.locator('g.d-lane[data-branch="then"] g.d-step').evaluateAll((g) => g.map((x) => `${x.dataset.step}:${x.dataset.kind}`)), ['review:activity', 'reviewed:set']);
    assert.deepEqual(await big.locator('g.d-lane[data-branch="else"] g.d-step').evaluateAll((g) => g.map((x) => x.dataset.step)), ['auto']);
    assert.equal(await big.locator('path.d-diamond').count(), 1, 'the decision is drawn');
    assert.equal(await big.locator('rect.d-bar').count(), 0, 'no fork bars: those mean "all at once"');
    // gift has no else: an empty lane says so.
    const gift = svg.locator('g.d-if[data-step="gift"]');
    assert.match(await gift.locator('g.d-head').textContent(), /no else/);
    assert.deepEqual(await gift.locator('g.d-lane-none[data-branch="else"] text').allTextContents(), ['else', 'none']);
    // The workflow step names its workflow and links to its page.
    const ship = svg.locator('a.d-link[data-workflow="shipping"]');
    assert.equal(await ship.getAttribute('href'), '/ui/workflows/shipping');
    assert.match(await ship.locator('g.d-step[data-step="ship"][data-kind="workflow"]').textContent(), /WORKFLOW[\s\S]*workflow shipping · latest version/);
    // The legend has both kinds, and the aria-label counts nested steps.
    assert.equal(await page.locator('.card-head .legend .legend-item[data-kind="if"]').innerText(), 'if');
    assert.equal(await page.locator('.card-head .legend .legend-item[data-kind="workflow"]').innerText(), 'child workflow');
    assert.match(await svg.getAttribute('aria-label'), /^Diagram of 8 steps: big \(if \$\{input\.big\}: then: review \(activity\), reviewed \(set\); else: auto \(set\)\), gift \(if .*; no else\), ship \(starts workflow shipping\)/);
    await shot(page, 'workflow-if-child.png');
    // The link is followed inside the app (no reload), with the keyboard too.
    await page.evaluate(() => { window.__noReload = true; });
    await ship.focus();
    await page.keyboard.press('Enter');
    await page.waitForURL(/\/ui\/workflows\/shipping$/);
    await page.locator('h1', {hasText: 'shipping'}).waitFor();
    assert.equal(await page.evaluate(() => window.__noReload), true, 'navigated without reloading the page');
    assert.deepEqual(await page.locator('svg.diagram g.d-if[data-step="hold"] g.d-lane').evaluateAll((g) => g.map((x) => x.dataset.branch)), ['then', 'else']);
  });

  test('if and workflow steps on the execution: branches taken and not taken, child links both ways, the list by parent', async () => {
    const start = (id, input) => api('POST', '/v1/workflows/order/executions', {id, input});
    await start('order-ui-big', {big: true, gift: true, hold: false, order: 'A'});
    await start('order-ui-small', {big: false, gift: false, hold: false, order: 'B'});
    await start('order-ui-hold', {big: false, gift: true, hold: true, order: 'C'});
    for (const id of ['order-ui-big', 'order-ui-small']) {
      const r = await api('GET', `/v1/executions/${id}/result?wait=30`);
      assert.equal(r.data.status, 'completed', `${id}: ${JSON.stringify(r.data.error)}`);
    }
    await until(async () => {
      const x = await fetch(`${base}/v1/executions/order-ui-hold:ship`).then((r) => (r.ok ? r.json() : null));
      return x && x.steps.some((st) => st.path === 'hold/then/wait-go' && st.status === 'waiting');
    }, {what: 'the child of order-ui-hold waiting for "go"', timeout: 20_000});

    const row = (p, pth) => p.locator(`.tl-row[data-path="${pth}"]`);
    const own = (p, pth, sel) => p.locator(`.tl-row[data-path="${pth}"] > ${sel}`);
    const statusOf = (p, pth) => row(p, pth).getAttribute('data-status');

    // ---- the list while the child runs: the parent's current step waits for its child (a
    // link to its children), and the child says whose it is.
    await page.goto(`${base}/ui/executions`);
    const holdNow = page.locator('tr[data-id="order-ui-hold"] .c-now .cs-what');
    await holdNow.waitFor();
    assert.equal(await holdNow.innerText(), 'waiting for its child execution');
    assert.equal(await holdNow.locator('a.cs-child').getAttribute('href'), '/ui/executions?parent=order-ui-hold');
    assert.equal(await page.locator('tr[data-id="order-ui-hold:ship"] .row-parent').getAttribute('data-parent'), 'order-ui-hold');

    // ---- a parent whose child still runs: the step waits, linked to its running child; the
    // branch not taken is marked, and looks unlike a pending step.
    await page.goto(`${base}/ui/executions/order-ui-hold`);
    await own(page, 'ship', '.tl-main .child-ref .badge').waitFor();
    assert.equal(await statusOf(page, 'ship'), 'waiting');
    assert.equal(await own(page, 'ship', '.tl-main a.child-link').innerText(), 'order-ui-hold:ship');
    assert.equal(await own(page, 'ship', '.tl-main a.child-link').getAttribute('href'), '/ui/executions/order-ui-hold%3Aship');
    assert.equal(await own(page, 'ship', '.tl-main .child-ref .badge').innerText(), 'running');
    assert.match(await own(page, 'ship', '.tl-main .child-chip').innerText(), /waiting for the child/);
    const pendingChild = page.locator('.pending-item[data-kind="child"][data-step="ship"]');
    assert.match(await pendingChild.innerText(), /ship · Waiting for child execution order-ui-hold:ship\s+running/);
    assert.equal(await own(page, 'big', '.tl-main .if-outcome').innerText(), 'took else (condition false)');
    assert.equal(await statusOf(page, 'big/then'), 'not_taken');
    assert.equal(await statusOf(page, 'big/then/review'), 'not_taken');
    assert.equal(await statusOf(page, 'thanks'), 'pending');
    const notTaken = own(page, 'big/then/review', '.tl-label .badge');
    const pendingBadge = own(page, 'thanks', '.tl-label .badge');
    assert.equal(await notTaken.innerText(), 'not taken');
    assert.equal(await pendingBadge.innerText(), 'pending');
    assert.equal(await own(page, 'big/then/review', '.tl-main .tl-empty').innerText(), 'not taken');
    assert.equal(await own(page, 'thanks', '.tl-main .tl-empty').innerText(), 'not started');
    const looks = (loc) => loc.evaluate((el) => {
      const cs = getComputedStyle(el);
      return `${cs.outlineStyle} ${cs.fontStyle} ${cs.boxShadow !== 'none'}`;
    });
    assert.equal(await looks(notTaken), 'dashed italic false');
    assert.equal(await looks(pendingBadge), 'none normal true');
    assert.match(await page.locator('#children-link').getAttribute('href'), /^\/ui\/executions\?parent=order-ui-hold$/);
    assert.equal(await page.locator('#parent-line').count(), 0, 'a top-level execution has no parent');
    // The diagram: the workflow step's box links to its child execution (not only to the
    // workflow), the lane taken and the lane not taken say so in words, steps have their status.
    const dia = page.locator('#diagram svg.diagram');
    const shipLink = dia.locator('a.d-link[data-workflow="shipping"]');
    await until(async () => /\(running\)$/.test(await shipLink.locator('.d-state-text').textContent()), {what: 'the diagram names the running child'});
    assert.equal(await shipLink.getAttribute('data-child'), 'order-ui-hold:ship');
    assert.equal(await shipLink.getAttribute('href'), '/ui/executions/order-ui-hold%3Aship');
    assert.equal(await shipLink.locator('g.d-step[data-step="ship"]').getAttribute('data-status'), 'waiting');
    assert.equal(await shipLink.locator('.d-state-text').textContent(), 'waiting · child order-ui-hold:ship (running)');
    const bigD = dia.locator('g.d-if[data-step="big"]');
    assert.equal(await bigD.getAttribute('data-taken'), 'else');
    assert.deepEqual(await bigD.locator('g.d-lane').evaluateAll((g) => g.map((x) => `${x.dataset.branch}:${x.dataset.state}:${x.querySelector('text.d-lane-state').textContent}`)),
      ['then:not_taken:not taken', 'else:taken:taken']);
    assert.equal(await bigD.locator('g.d-lane.d-lane-not-taken[data-branch="then"] g.d-step[data-step="review"]').getAttribute('data-status'), 'not_taken');
    assert.equal(await dia.locator('g.d-step[data-step="review"] .d-state-text').textContent(), 'not taken');
    assert.equal(await dia.locator('g.d-step[data-step="thanks"]').getAttribute('data-status'), 'pending');
    await shot(page, 'execution-child-running.png');

    // ---- the child's page links back to its parent and the step that started it.
    await own(page, 'ship', '.tl-main a.child-link').click();
    await page.waitForURL(/\/ui\/executions\/order-ui-hold%3Aship$/);
    await page.locator('#parent-line').waitFor();
    assert.equal(await page.locator('h1.exec-id').innerText(), 'order-ui-hold:ship');
    assert.equal((await page.locator('#parent-line').innerText()).trim(), 'Started by order-ui-hold (step ship)');
    assert.equal(await statusOf(page, 'hold/then/wait-go'), 'waiting');
    assert.equal(await own(page, 'hold', '.tl-main .if-outcome').innerText(), 'took then (condition true)');
    assert.equal(await page.locator('#children-link').count(), 0, 'shipping starts no children');
    await api('POST', '/v1/executions/order-ui-hold:ship/signals/go', {by: 'test'});
    const held = await api('GET', '/v1/executions/order-ui-hold/result?wait=30');
    assert.equal(held.data.status, 'completed', JSON.stringify(held.data.error));
    await page.locator('#parent-link').click();
    await page.waitForURL(/\/ui\/executions\/order-ui-hold$/);
    await until(async () => (await statusOf(page, 'ship')) === 'completed' && (await own(page, 'ship', '.tl-main .child-ref .badge').innerText()) === 'completed',
      {what: 'the parent shows its child completed'});
    assert.equal(await page.locator('.pending-item[data-kind="child"]').count(), 0);
    await until(async () => (await page.locator('#diagram g.d-step[data-step="ship"] .d-state-text').textContent()) === 'completed · child order-ui-hold:ship (completed)',
      {what: 'the diagram shows the step and its child completed'});

    // ---- both branches taken the other way round, and a false condition without an else.
    await page.goto(`${base}/ui/executions/order-ui-big`);
    await own(page, 'big', '.tl-main .if-outcome').waitFor();
    assert.equal(await own(page, 'big', '.tl-main .if-outcome').innerText(), 'took then (condition true)');
    assert.equal(await own(page, 'big', '.tl-main .if-outcome').getAttribute('data-taken'), 'then');
    assert.deepEqual(await own(page, 'big', '.tl-children > .tl-row').evaluateAll((rs) => rs.map((x) => `${x.dataset.step}:${x.dataset.kind}:${x.dataset.status}`)),
      ['then:branch:completed', 'else:branch:not_taken']);
    assert.deepEqual(await own(page, 'big/then', '.tl-children > .tl-row').evaluateAll((rs) => rs.map((x) => `${x.dataset.path}:${x.dataset.status}`)),
      ['big/then/review:completed', 'big/then/reviewed:completed']);
    assert.deepEqual(await own(page, 'big/else', '.tl-children > .tl-row').evaluateAll((rs) => rs.map((x) => `${x.dataset.path}:${x.dataset.status}`)),
      ['big/else/auto:not_taken']);
    assert.equal(await own(page, 'big', '.tl-main .tree-counts').innerText(), '1 completed · 1 not taken');
    assert.equal(await own(page, 'big/else', '.tl-label .badge').innerText(), 'not taken');
    assert.match(await own(page, 'big/else', '.tl-label .tl-sub').innerText(), /when \$\{input\.big\} is false/);
    assert.equal(await row(page, 'big/then/review').locator('.attempt-chip.st-ok').count(), 1);
    assert.equal(await own(page, 'gift', '.tl-main .if-outcome').innerText(), 'took then (condition true)');
    // The diagram the other way round: then taken, else muted and not taken; a completed step's
    // box marked completed (attribute, class, text); the boxes apart at desktop width.
    const diaBig = page.locator('#diagram svg.diagram');
    const bigIf = diaBig.locator('g.d-if[data-step="big"]');
    assert.equal(await bigIf.getAttribute('data-taken'), 'then');
    assert.equal(await bigIf.locator('g.d-head .d-state-text').textContent(), 'completed · took then (condition true)');
    assert.deepEqual(await bigIf.locator('g.d-lane').evaluateAll((g) => g.map((x) => `${x.dataset.branch}:${x.dataset.state}:${x.querySelector('text.d-lane-state').textContent}`)),
      ['then:taken:taken', 'else:not_taken:not taken']);
    const reviewBox = bigIf.locator('g.d-lane-taken[data-branch="then"] g.d-step[data-step="review"]');
    assert.equal(await reviewBox.getAttribute('data-status'), 'completed');
    assert.match(await reviewBox.getAttribute('class'), /\bst-completed\b/);
    assert.equal(await reviewBox.locator('.d-state-text').textContent(), 'completed');
    assert.equal(await bigIf.locator('g.d-step[data-step="auto"]').getAttribute('data-status'), 'not_taken');
    assert.equal(await diaBig.locator('g.d-if[data-step="gift"]').getAttribute('data-taken'), 'then');
    assert.match(await diaBig.getAttribute('aria-label'), /^Diagram of this execution's 8 steps: big \(if .*review \(activity; completed\).*auto \(set; not taken\).*; completed · took then \(condition true\)\)/);
    assertDiagramLayout(await diagramLayout(diaBig), 'order-ui-big at 1280 px');
    await diaBig.screenshot({path: path.join(ARTIFACTS, 'execution-diagram.png')});
    // The history reads as what happened.
    const summary = (step, type = 'step_scheduled') => page.locator(`.history-table tr.ev-row[data-type="${type}"][data-path="${step}"] .ev-summary`);
    assert.equal(await summary('big').innerText(), 'if big: took then (condition true)');
    assert.equal(await summary('ship').innerText(), 'workflow step scheduled (shipping)');
    assert.equal(await summary('ship', 'child_started').innerText(), 'started child order-ui-big:ship (shipping v1)');
    assert.equal(await summary('big/then/review').innerText(), 'activity step scheduled');
    // The diagram's box of the workflow step opens the child execution, with the keyboard too,
    // inside the app; the child's diagram shows its own if.
    await page.evaluate(() => { window.__noReload = true; });
    const toChild = diaBig.locator('a.d-link[data-child="order-ui-big:ship"]');
    assert.equal(await toChild.getAttribute('href'), '/ui/executions/order-ui-big%3Aship');
    await toChild.focus();
    await page.keyboard.press('Enter');
    await page.waitForURL(/\/ui\/executions\/order-ui-big%3Aship$/);
    await page.locator('#parent-line').waitFor();
    assert.equal(await page.evaluate(() => window.__noReload), true, 'followed without reloading the page');
    const hold = page.locator('#diagram svg.diagram g.d-if[data-step="hold"]');
    await hold.waitFor();
    assert.equal(await hold.getAttribute('data-taken'), 'else', 'false without an else: the empty lane is the one taken');
    assert.equal(await hold.locator('g.d-lane-none[data-branch="else"] text.d-lane-state').textContent(), 'taken');
    assert.equal(await page.locator('#diagram svg.diagram g.d-step[data-step="label"]').getAttribute('data-status'), 'completed');

    await page.goto(`${base}/ui/executions/order-ui-small`);
    await own(page, 'gift', '.tl-main .if-outcome').waitFor();
    assert.equal(await own(page, 'big', '.tl-main .if-outcome').innerText(), 'took else (condition false)');
    assert.deepEqual(await own(page, 'big/then', '.tl-children > .tl-row').evaluateAll((rs) => rs.map((x) => `${x.dataset.path}:${x.dataset.status}`)),
      ['big/then/review:not_taken', 'big/then/reviewed:not_taken']);
    assert.equal(await statusOf(page, 'big/else/auto'), 'completed');
    const giftOutcome = own(page, 'gift', '.tl-main .if-outcome');
    assert.equal(await giftOutcome.innerText(), 'condition false, no else: nothing ran');
    assert.equal(await giftOutcome.getAttribute('data-taken'), '');
    assert.equal(await statusOf(page, 'gift'), 'completed');
    assert.deepEqual(await own(page, 'gift', '.tl-children > .tl-row').evaluateAll((rs) => rs.map((x) => `${x.dataset.path}:${x.dataset.status}`)), ['gift/then:not_taken']);
    assert.equal(await statusOf(page, 'gift/then/wrap'), 'not_taken');
    assert.equal(await summary('gift').innerText(), 'if gift: condition false, no else: nothing to run');
    const giftIf = page.locator('#diagram svg.diagram g.d-if[data-step="gift"]');
    assert.equal(await giftIf.getAttribute('data-taken'), 'else');
    assert.deepEqual(await giftIf.locator('g.d-lane').evaluateAll((g) => g.map((x) => `${x.dataset.branch}:${x.dataset.state}:${x.querySelector('text.d-lane-state').textContent}`)),
      ['then:not_taken:not taken', 'else:taken:taken']);
    assert.equal(await giftIf.locator('g.d-step[data-step="wrap"]').getAttribute('data-status'), 'not_taken');
    assert.equal(await giftIf.locator('g.d-head .d-state-text').textContent(), 'completed · condition false, no else: nothing ran');
    await shot(page, 'execution-if.png');
    // The diagram card folds away, and stays folded on the next page (a reload here), until opened.
    const fold = page.locator('#diagram-toggle');
    assert.equal(await fold.getAttribute('aria-expanded'), 'true');
    await fold.click();
    assert.equal(await fold.getAttribute('aria-expanded'), 'false');
    assert.equal(await page.locator('#exec-diagram-body').isHidden(), true);
    await page.reload();
    await own(page, 'gift', '.tl-main .if-outcome').waitFor();
    assert.equal(await page.locator('#diagram-toggle').getAttribute('aria-expanded'), 'false');
    assert.equal(await page.locator('#exec-diagram-body').isHidden(), true);
    await page.locator('#diagram-toggle').press('Enter');
    await page.locator('#diagram svg.diagram g.d-if[data-step="gift"][data-taken="else"]').waitFor();
    assert.equal(await page.locator('#diagram-toggle').innerText(), 'Hide');

    // ---- the list: children say whose they are; ?parent= lists one execution's children.
    await page.locator('#children-link').click();
    await page.waitForURL(/\/ui\/executions\?parent=order-ui-small$/);
    await until(async () => (await page.locator('table.exec-table tbody tr').evaluateAll((r) => r.map((x) => x.dataset.id))).join() === 'order-ui-small:ship',
      {what: 'only the child of order-ui-small'});
    assert.match(await page.locator('#filter-parent').innerText(), /Children of order-ui-small/);
    const marker = page.locator('tr[data-id="order-ui-small:ship"] .row-parent');
    assert.equal(await marker.innerText(), '↳ child of order-ui-small');
    assert.equal(await marker.locator('a').getAttribute('href'), '/ui/executions/order-ui-small');
    // A reload keeps the filter; removing it lists everything again, parents without a marker.
    await page.reload();
    await page.locator('tr[data-id="order-ui-small:ship"]').waitFor();
    assert.equal(await page.locator('table.exec-table tbody tr').count(), 1);
    await page.locator('#filter-parent-remove').click();
    await page.waitForURL((u) => u.pathname === '/ui/executions' && !u.search.includes('parent'));
    await page.locator('tr[data-id="order-ui-big"]').waitFor();
    assert.equal(await page.locator('#filter-parent').isHidden(), true);
    assert.equal(await page.locator('tr[data-id="order-ui-big"] .row-parent').count(), 0);
    assert.equal(await page.locator('tr[data-id="order-ui-big:ship"] .row-parent').getAttribute('data-parent'), 'order-ui-big');
    await page.locator('tr[data-id="order-ui-big:ship"] .row-parent a').click();
    await page.waitForURL(/\/ui\/executions\/order-ui-big$/);
    await page.locator('h1.exec-id', {hasText: 'order-ui-big'}).waitFor();

    // ---- dark mode at phone width: readable, no sideways scrolling.
    const dark = await stack.browser.newContext({viewport: {width: 375, height: 812}, deviceScaleFactor: 2, hasTouch: true, colorScheme: 'dark'});
    try {
      const p = watch(await dark.newPage());
      await p.goto(`${base}/ui/executions/order-ui-small`);
      await own(p, 'gift', '.tl-main .if-outcome').waitFor();
      const overflow = await p.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
      assert.ok(overflow <= 0, `the execution scrolls sideways by ${overflow}px`);
      for (const [what, loc] of [['not taken badge', own(p, 'big/then/review', '.tl-label .badge')], ['if outcome', own(p, 'gift', '.tl-main .if-outcome')], ['not taken step name', own(p, 'big/then/review', '.tl-label .tl-name')]]) {
        const ratio = await contrastOf(loc);
        assert.ok(ratio >= 4.5, `${what}: contrast ${ratio.toFixed(2)} in dark mode`);
      }
      // The diagram at 375 px in dark mode: no box over another, at a readable scale (wider than
      // the card, it scrolls inside it, and takes the keyboard's focus for that), and the "not
      // taken" texts readable: an SVG text's fill against the box it sits on, or the card.
      const dia = p.locator('#diagram svg.diagram');
      await dia.locator('g.d-if[data-step="gift"][data-taken="else"]').waitFor();
      const layout = await diagramLayout(dia);
      assertDiagramLayout(layout, 'order-ui-small at 375 px');
      assert.ok(layout.scale >= 0.79, `drawn at ${layout.scale.toFixed(2)} of its size`);
      const host = p.locator('#exec-diagram-body');
      const [scrollW, clientW] = await host.evaluate((el) => [el.scrollWidth, el.clientWidth]);
      if (scrollW > clientW + 1) assert.equal(await host.getAttribute('tabindex'), '0', 'a region that scrolls sideways is focusable');
      const svgContrast = (loc) => loc.evaluate((el) => {
        const rgba = (c) => {
          const v = (c.match(/[\d.]+/g) || [0, 0, 0, 0]).map(Number);
          return [v[0], v[1], v[2], v[3] ?? 1];
        };
        const lum = ([r, g, b]) => {
          const f = (v) => ((v /= 255) <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4);
          return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
        };
        const boxOf = el.closest('g.d-step, g.d-head');
        const fill = boxOf ? rgba(getComputedStyle(boxOf.querySelector(':scope > rect.d-box')).fill) : [0, 0, 0, 0];
        let bg = null;
        for (let n = el.closest('svg').parentElement; n && !bg; n = n.parentElement) {
          const c = rgba(getComputedStyle(n).backgroundColor);
          if (c[3] >= 1) bg = c;
        }
        const [r, g, b, a] = fill;
        const under = [r * a + bg[0] * (1 - a), g * a + bg[1] * (1 - a), b * a + bg[2] * (1 - a)];
        const [x, y] = [lum(rgba(getComputedStyle(el).fill)), lum(under)].sort((m, n) => n - m);
        return (x + 0.05) / (y + 0.05);
      });
      for (const [what, loc] of [['the lane not taken', dia.locator('g.d-if[data-step="big"] g.d-lane-not-taken text.d-lane-state')],
        ['the lane taken', dia.locator('g.d-if[data-step="big"] g.d-lane-taken text.d-lane-state')],
        ['a step not taken', dia.locator('g.d-step[data-step="wrap"] .d-state-text tspan')],
        ['a step not taken (its id)', dia.locator('g.d-step[data-step="wrap"] text.d-id')],
        ['a completed step', dia.locator('g.d-step[data-step="thanks"] .d-state-text tspan')]]) {
        const ratio = await svgContrast(loc);
        assert.ok(ratio >= 4.5, `diagram, ${what}: contrast ${ratio.toFixed(2)} in dark mode`);
      }
      await p.locator('#diagram').screenshot({path: path.join(ARTIFACTS, 'execution-diagram-phone-dark.png')});
      await p.screenshot({path: path.join(ARTIFACTS, 'execution-if-phone-dark.png'), fullPage: true});
      await p.goto(`${base}/ui/executions/order-ui-small:ship`);
      await p.locator('#parent-line').waitFor();
      const overflow2 = await p.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
      assert.ok(overflow2 <= 0, `the child's page scrolls sideways by ${overflow2}px`);
      assert.ok(await contrastOf(p.locator('#parent-link')) >= 4.5, 'the parent link is readable in dark mode');
    } finally {
      await dark.close();
    }
  });

  test('a code execution (no definition): its name and kind, on its page and in the list', async () => {
    await api('POST', '/v1/executions', {id: 'code-ui-1', name: 'checkout-ui', input: {cart: 2}});
    await api('POST', '/v1/executions/code-ui-1/complete', {output: {paid: true}});
    await api('POST', '/v1/executions', {id: 'code-ui-2', name: 'checkout-ui'});
    await page.goto(`${base}/ui/executions/code-ui-1`);
    await page.locator('#code-kind').waitFor();
    assert.equal(await page.locator('#code-kind').innerText(), 'code');
    assert.equal(await page.locator('#exec-name').innerText(), 'checkout-ui');
    assert.equal(await page.locator('.subtitle a[data-fk="wf"]').count(), 0, 'no workflow to link to');
    await page.locator('.badge', {hasText: 'completed'}).first().waitFor();
    await page.goto(`${base}/ui/executions/code-ui-2`);
    await page.locator('#code-kind').waitFor();
    await page.goto(`${base}/ui/executions`);
    const row = page.locator('tr[data-id="code-ui-2"]');
    await row.waitFor();
    assert.match(await row.locator('.c-wf').innerText(), /code/);
    assert.match(await row.locator('.c-wf').innerText(), /checkout-ui/);
    assert.equal(await row.locator('.c-wf a').count(), 0);
    await shot(page, 'executions-code.png');
  });

  // ---- code executions: the program's keys, its idle time, its handler -------------------------

  // A step call as a program makes it (curl -X POST .../steps/{key} -d BODY): status and headers.
  const callStep = async (id, key, body) => {
    const r = await fetch(`${base}/v1/executions/${encodeURIComponent(id)}/steps/${encodeURIComponent(key)}`, {method: 'POST', headers: {'Content-Type': 'application/json'}, body: JSON.stringify(body)});
    await r.text();
    assert.ok(r.status === 200 || r.status === 202, `step ${key}: ${r.status}`);
    return {status: r.status, replayed: r.headers.get('keel-replayed') === 'true', differs: r.headers.get('keel-request-differs') === 'true'};
  };
  const keyRows = (p) => p.locator('#steps .cs-list[aria-label="Steps in first-call order"] .cs-row[data-key]');
  const keysShown = (p) => keyRows(p).evaluateAll((rs) => rs.map((r) => r.dataset.key));

  test('a code execution\'s steps: first-call order, kinds, statuses, replays, the request differs mark, the idle line', async () => {
    const R = stack.receiverUrl;
    await api('POST', '/v1/executions', {id: 'code-steps', name: 'checkout-ui', input: {cart: 7}});
    await page.goto(`${base}/ui/executions/code-steps`);
    await page.locator('#steps .cs-empty').waitFor();
    assert.match(await page.locator('#steps .cs-empty').innerText(), /No step called yet/);
    assert.equal(await page.locator('#idle-line').innerText(), 'Program: no call yet');
    assert.equal(await page.locator('#idle-line').getAttribute('data-state'), 'none');
    assert.equal(await page.locator('#timeline').count(), 0, 'no timeline: the keys take its place');
    assert.equal(await page.locator('#diagram').count(), 0, 'no definition to draw');
    assert.equal(await page.locator('#handler').isHidden(), true, 'no handler');
    // The program may wait for a signal at any time: Send signal is there before any wait.
    assert.equal(await page.locator('#action-signal').count(), 1);

    // The program's calls, while the page is open: it shows them as they come.
    await callStep('code-steps', 'total', {output: {sum: 3}});
    await callStep('code-steps', 'nap', {sleep: '1h'});
    await callStep('code-steps', 'approval', {wait: {signal: 'approve', timeout: '1h'}});
    await callStep('code-steps', 'charge', {activity: {url: `${R}/flaky/1`, input: {cents: 500}, retry: {max_attempts: 3, initial_interval: '50ms'}}});
    // The program runs again from the top: the same calls are answered from the journal.
    assert.deepEqual(await callStep('code-steps', 'total', {output: {sum: 3}}), {status: 200, replayed: true, differs: false});
    assert.deepEqual(await callStep('code-steps', 'total', {output: {sum: 4}}), {status: 200, replayed: true, differs: true});
    await callStep('code-steps', 'nap', {sleep: '1h'});

    await until(async () => (await keysShown(page)).join() === 'total,nap,approval,charge', {what: 'the keys in first-call order', timeout: 15_000});
    const row = (key) => page.locator(`#steps .cs-row[data-key="${key}"]`).first();
    assert.deepEqual(await keyRows(page).evaluateAll((rs) => rs.map((r) => `${r.dataset.key}:${r.dataset.kind}`)), ['total:output', 'nap:sleep', 'approval:wait', 'charge:activity']);
    assert.deepEqual(await keyRows(page).evaluateAll((rs) => rs.map((r) => r.querySelector('.cs-pos').textContent)), ['#1', '#2', '#3', '#4']);
    assert.equal(await row('total').locator('.cs-kind').innerText(), 'output');
    assert.equal(await row('approval').locator('.cs-kind').innerText(), 'signal wait');
    assert.equal(await row('total').locator('.cs-status .badge').innerText(), 'completed');
    assert.equal(await row('nap').locator('.cs-status .badge').innerText(), 'sleeping');
    assert.match(await row('nap').locator('.cs-when').innerText(), /due (\d{4}-\d{2}-\d{2} )?\d{2}:\d{2}:\d{2} \(in (59|60) min\)/);
    assert.equal(await row('approval').locator('.cs-status .badge').innerText(), 'waiting');
    assert.equal(await row('approval').locator('.cs-call').innerText(), 'wait signal "approve" · 1h timeout');
    assert.equal(await row('nap').locator('.cs-call').innerText(), 'sleep 1h');
    // The activity failed once (HTTP 503), then completed on its second attempt.
    await until(async () => (await row('charge').getAttribute('data-status')) === 'completed', {what: 'charge completed', timeout: 15_000});
    assert.equal(await row('charge').getAttribute('data-attempts'), '2');
    assert.equal(await row('charge').locator('.cs-attempts .cs-n').innerText(), '2');
    assert.equal(await row('charge').locator('.cs-call').innerText(), `activity ${R}/flaky/1`);
    // Replays are counted in keeld and written about once a second: the page shows them when they are.
    await until(async () => (await row('total').getAttribute('data-replays')) === '2', {what: 'two replays of total', timeout: 15_000});
    assert.equal(await row('total').locator('.cs-replays .cs-n').innerText(), '2');
    await until(async () => (await row('nap').getAttribute('data-replays')) === '1', {what: 'one replay of nap', timeout: 15_000});
    assert.equal(await row('approval').getAttribute('data-replays'), '0');
    // The call that sent another body: marked, on its key only.
    assert.equal(await row('total').getAttribute('data-differs'), 'true');
    assert.equal(await row('total').locator('.differs-mark').innerText(), 'request differs');
    assert.equal(await page.locator('#steps .differs-mark').count(), 1);
    assert.match(await page.locator('#steps-range').innerText(), /in first-call order · 4 keys/);

    // Its detail: the output, the first call's request and the one that differed.
    await row('total').locator('.cs-toggle').click();
    const detail = row('total').locator('.cs-detail');
    await detail.waitFor();
    assert.equal(await row('total').locator('.cs-toggle').getAttribute('aria-expanded'), 'true');
    const panels = await detail.locator('.json-panel').evaluateAll((ps) => ps.map((p) => p.dataset.panel));
    assert.deepEqual(panels, ['step output', 'request (first call)', 'a later call\'s other request']);
    assert.match(await detail.locator('.json-panel[data-panel="request (first call)"]').innerText(), /"sum": 3/);
    assert.match(await detail.locator('.json-panel[data-panel="a later call\'s other request"]').innerText(), /"sum": 4/);
    assert.match(await detail.locator('.facts').innerText(), /Replays\s+2/i);
    // A refresh keeps it open (the page polls while the execution runs).
    await page.waitForTimeout(1500);
    assert.equal(await row('total').locator('.cs-detail').isVisible(), true);

    // The program's idle time counts up, live, from last_call_at.
    // (its parts are flex items: innerText puts each on a line of its own)
    const idleLine = async (p = page) => (await p.locator('#idle-line').innerText()).replace(/\s+/g, ' ').trim();
    await until(async () => /^Program idle for (\d+ s|\d+m \d{2}s) · last call \d{2}:\d{2}:\d{2}\.\d{3}$/.test(await idleLine()), {what: 'the idle line', timeout: 15_000});
    const idleSeconds = async () => {
      const [, m, sec] = (await page.locator('#idle-line .idle-text').innerText()).match(/for (?:(\d+)m )?(\d+) ?s$/);
      return Number(m || 0) * 60 + Number(sec);
    };
    const before = await idleSeconds();
    await page.waitForTimeout(2200);
    assert.ok((await idleSeconds()) >= before + 2, 'it counts up without a reload');

    // The history names what each call asked for, and the body that differed.
    const summary = (type, key) => page.locator(`.history-table tr.ev-row[data-type="${type}"][data-path="${key}"] .ev-summary`).first();
    assert.equal(await summary('step_scheduled', 'total').innerText(), 'called total: output {"sum":3}');
    assert.equal(await summary('step_scheduled', 'nap').innerText(), 'called nap: sleep 1h');
    assert.equal(await summary('step_scheduled', 'approval').innerText(), 'called approval: wait signal "approve" · 1h timeout');
    assert.equal(await summary('step_scheduled', 'charge').innerText(), `called charge: activity ${R}/flaky/1`);
    assert.match(await summary('request_differs', 'total').innerText(), /^total called again with another body .*\{"output":\{"sum":4\}\}$/);

    // The wait, as pending work with its own Send button; the signal from the UI ends it.
    const waitItem = page.locator('.pending-item[data-kind="wait"][data-step="approval"]');
    await waitItem.waitFor();
    await waitItem.locator('button[data-signal="approve"]').click();
    const dlg = page.locator('dialog.dialog-signal');
    await dlg.waitFor();
    assert.equal(await dlg.locator('#signal-name').inputValue(), 'approve');
    await dlg.locator('#signal-payload').fill('{"by": "ui"}');
    await dlg.locator('[data-action="send-signal"]').click();
    await dlg.waitFor({state: 'detached'});
    await until(async () => (await row('approval').getAttribute('data-status')) === 'completed', {what: 'approval completed', timeout: 15_000});
    // The program calls the wait again and gets the payload: a replay.
    assert.equal((await callStep('code-steps', 'approval', {wait: {signal: 'approve', timeout: '1h'}})).replayed, true);
    await until(async () => (await row('approval').getAttribute('data-replays')) === '1', {what: 'one replay of approval', timeout: 15_000});
    await shot(page, 'execution-code-steps.png');

    // Ended: when the program last called, instead of a count.
    await api('POST', '/v1/executions/code-steps/complete', {output: {done: true}});
    await until(async () => (await badgeOf(page).innerText()) === 'completed', {what: 'completed', timeout: 15_000});
    await until(async () => (await page.locator('#idle-line').getAttribute('data-state')) === 'ended', {what: 'the idle line once ended'});
    assert.match(await idleLine(), /^Program last called \d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\.\d{3} \(/);
    assert.equal(await page.locator('#action-signal').count(), 0, 'no signal once ended');
  });

  test('a code execution with more keys than a page: pages read on demand, at most ten held, a key found by name', async () => {
    await api('POST', '/v1/executions', {id: 'code-many', name: 'bulk-ui'});
    const keys = Array.from({length: 120}, (_, i) => `k${String(i).padStart(3, '0')}`);
    for (const k of keys) await callStep('code-many', k, {output: {n: Number(k.slice(1))}});
    const requests = [];
    const p = watch(await ctx.newPage(), [/status of 404/]);
    p.on('request', (r) => {
      if (/\/v1\/executions\/code-many\/steps/.test(r.url())) requests.push(new URL(r.url()));
    });
    try {
      // 50 keys a page (the default).
      await p.goto(`${base}/ui/executions/code-many`);
      await until(async () => (await keyRows(p).count()) === 50, {what: 'the first 50 keys'});
      assert.deepEqual(await keysShown(p), keys.slice(0, 50));
      assert.equal(await p.locator('#steps-range').innerText(), 'in first-call order · keys 1–50 of 120');
      assert.equal(await p.locator('#steps-more').innerText(), 'Show 50 more keys (70 not shown)');
      assert.equal(await p.locator('#steps-earlier').isVisible(), false);
      await p.locator('#steps-more').click();
      await until(async () => (await keyRows(p).count()) === 100, {what: '100 keys'});
      await p.locator('#steps-more').click();
      await until(async () => (await keyRows(p).count()) === 120, {what: 'all 120 keys'});
      assert.deepEqual(await keysShown(p), keys);
      assert.equal(await p.locator('#steps-more').isVisible(), false, 'nothing more');
      assert.equal(await p.locator('#steps-range').innerText(), 'in first-call order · 120 keys');
      // A new key: the last page is read again with each refresh, so it shows up by itself.
      await callStep('code-many', 'k120', {output: {n: 120}});
      await until(async () => (await keyRows(p).count()) === 121, {what: 'the new key k120', timeout: 15_000});
      assert.equal((await keysShown(p))[120], 'k120');
      // Every read was one page of 50, from the cursor the page before gave.
      assert.ok(requests.length >= 4, `${requests.length} reads`);
      assert.ok(requests.every((u) => u.searchParams.get('limit') === '50'), requests.map(String).join(' '));
      assert.ok(requests.some((u) => u.searchParams.has('cursor')), 'next pages by cursor');
      await p.screenshot({path: path.join(ARTIFACTS, 'execution-code-many.png')});

      // 10 keys a page (?steps_page=10): at most 10 pages (100 rows) drawn; going on drops the
      // first ones, which "Show earlier keys" reads again.
      await p.goto(`${base}/ui/executions/code-many?steps_page=10`);
      await until(async () => (await keysShown(p)).join() === keys.slice(0, 10).join(), {what: 'the first 10 keys'});
      for (let n = 20; n <= 120; n += 10) {
        await p.locator('#steps-more').click();
        await until(async () => (await keysShown(p)).at(-1) === (n < 121 ? keys[n - 1] : 'k120'), {what: `keys up to #${n}`});
        assert.ok((await keyRows(p).count()) <= 100, 'never more than 100 rows');
      }
      await p.locator('#steps-more').click();
      await until(async () => (await keysShown(p)).at(-1) === 'k120', {what: 'the last key'});
      assert.equal(await keyRows(p).count(), 91, 'pages 4 to 12: keys 31 to 121');
      assert.equal((await keysShown(p))[0], 'k030');
      assert.equal(await p.locator('#steps-range').innerText(), 'in first-call order · keys 31–121 of 121');
      assert.equal(await p.locator('#steps-earlier').innerText(), 'Show earlier keys (21–30)');
      await p.locator('#steps-earlier').click();
      await until(async () => (await keysShown(p))[0] === 'k020', {what: 'keys from #21 again'});
      assert.equal(await keyRows(p).count(), 100);
      assert.equal((await keysShown(p)).at(-1), 'k119', 'the last page dropped at the other end');
      assert.equal(await p.locator('#steps-more').isVisible(), true);
      assert.ok(await p.locator('#steps-earlier').isVisible());
      // No read ever asked for more than one page.
      assert.ok(requests.filter((u) => !u.pathname.endsWith('/steps')).every((u) => !u.searchParams.has('limit')), 'single keys only by name');
      assert.ok(requests.filter((u) => u.pathname.endsWith('/steps')).every((u) => Number(u.searchParams.get('limit')) <= 50));

      // Find a key by name, dropped or not: it opens with its detail.
      await p.locator('#step-find').fill('k005');
      await p.locator('#step-find').press('Enter');
      const found = p.locator('#step-found .cs-row[data-key="k005"]');
      await found.waitFor();
      assert.equal(await found.getAttribute('data-status'), 'completed');
      assert.match(await found.locator('.cs-detail .json-panel[data-panel="step output"]').innerText(), /"n": 5/);
      assert.match(await found.locator('.cs-detail .json-panel[data-panel="request (first call)"]').innerText(), /"output"/);
      await p.locator('#step-find').fill('nope');
      await p.locator('#step-find').press('Enter');
      await until(async () => /never called a key "nope"/.test(await p.locator('#step-found').innerText()), {what: 'no such key'});
      await p.locator('#step-found-close').click();
      assert.equal(await p.locator('#step-found').isHidden(), true);
    } finally {
      await p.close();
    }
  });

  test('a code execution with 10,000 keys: one page of keys and the newest 500 events drawn, the rest on demand', async () => {
    await api('POST', '/v1/executions', {id: 'code-10k', name: 'bulk-ui'});
    const n = 10_000;
    let next = 0;
    // Four programs' worth of calls at once (the first-call order is whatever keeld saw).
    await Promise.all(Array.from({length: 4}, async () => {
      while (next < n) {
        const i = next++;
        await callStep('code-10k', `key-${i}`, {output: i});
      }
    }));
    const reads = [];
    const p = watch(await ctx.newPage());
    p.on('request', (r) => {
      if (/\/v1\/executions\/code-10k\/steps/.test(r.url())) reads.push(new URL(r.url()));
    });
    try {
      await p.goto(`${base}/ui/executions/code-10k`);
      await until(async () => (await keyRows(p).count()) === 50, {what: 'the first page of keys', timeout: 30_000});
      await p.locator('.history-table tr.ev-row').first().waitFor();
      assert.equal(await p.locator('#steps-range').innerText(), 'in first-call order · keys 1–50 of 10,000');
      assert.equal(await p.locator('#steps-more').innerText(), 'Show 50 more keys (9,950 not shown)');
      // 20,001 events: the newest 500 are drawn.
      assert.equal(await p.locator('.history-table tr.ev-row').count(), 500);
      assert.equal(await p.locator('#history-earlier').innerText(), 'Show 1000 earlier events (19501 not shown)');
      assert.match(await p.locator('#history .card-head').innerText(), /20001 events/);
      await p.locator('#history-earlier').click();
      await until(async () => (await p.locator('.history-table tr.ev-row').count()) === 1500, {what: '1,500 events'});
      // The filter looks at every event, not only those drawn.
      await p.locator('#history-filter').fill('key-7');
      await until(async () => /^2222 of 20001 events$/.test(await p.locator('#history .card-head > .muted').innerText()), {what: 'the filter over all events'});
      assert.ok((await p.locator('.history-table tr.ev-row').evaluateAll((rs) => rs.every((r) => r.dataset.path.startsWith('key-7')))));
      await p.locator('#history-filter').fill('');
      // A few seconds of live refreshes read the keys a page at a time, never all of them.
      await p.waitForTimeout(3000);
      assert.ok(reads.every((u) => u.searchParams.get('limit') === '50'), reads.map(String).join(' '));
      assert.ok(reads.length <= 10, `${reads.length} reads of the keys`);
      assert.equal(await keyRows(p).count(), 50);
      await p.screenshot({path: path.join(ARTIFACTS, 'execution-code-10k.png')});
    } finally {
      await p.close();
    }
    await api('POST', '/v1/executions/code-10k/complete', {output: null});
  });

  test('a code execution its program failed: Retry is offered, and the program carries on from its journal', async () => {
    await api('POST', '/v1/executions', {id: 'code-fail', name: 'checkout-ui'});
    await callStep('code-fail', 'total', {output: 1});
    await api('POST', '/v1/executions/code-fail/fail', {error: {type: 'out_of_stock', message: 'no stock left'}});
    await page.goto(`${base}/ui/executions/code-fail`);
    await page.locator('#action-retry').waitFor();
    assert.match(await page.locator('.callout-bad').innerText(), /out_of_stock\s+no stock left/);
    assert.equal(await page.locator('.callout-bad .no-retry').count(), 0);
    await page.locator('#action-retry').click();
    const dlg = page.locator('dialog.dialog-confirm');
    await dlg.waitFor();
    await dlg.locator('[data-action="confirm"]').click();
    await dlg.waitFor({state: 'detached'});
    await until(async () => (await badgeOf(page).innerText()) === 'running', {what: 'running again', timeout: 15_000});
    assert.equal(await page.locator('.history-table tr.ev-row[data-type="execution_retried"]').count(), 1);
    // Its program runs again from the top: the key it called is answered from the journal.
    assert.equal((await callStep('code-fail', 'total', {output: 1})).replayed, true);
    await until(async () => (await page.locator('#steps .cs-row[data-key="total"]').getAttribute('data-replays')) === '1', {what: 'the replay', timeout: 15_000});
    await api('POST', '/v1/executions/code-fail/complete', {output: {ok: true}});
    await until(async () => (await badgeOf(page).innerText()) === 'completed', {what: 'completed', timeout: 15_000});
  });

  test('a code execution\'s handler, from keeld: called at start and when a step ended by itself', async () => {
    // The receiver takes the handler's calls (any 2xx does); keeld journals them.
    const R = stack.receiverUrl;
    await api('POST', '/v1/executions', {id: 'code-handler-real', name: 'checkout-ui', handler: {url: `${R}/ok`, inactivity_timeout: '1h'}});
    await callStep('code-handler-real', 'nap', {sleep: '10ms'});
    const p = watch(await ctx.newPage());
    try {
      await p.goto(`${base}/ui/executions/code-handler-real`);
      const card = p.locator('#handler');
      await card.locator('table.handler-calls').waitFor();
      assert.equal(await card.locator('#handler-url').innerText(), `${R}/ok`);
      assert.equal(await card.locator('#handler-timeout').innerText(), '1h');
      // Both calls show once journaled (the page reads the execution again while it runs).
      await p.waitForFunction(() => document.querySelectorAll('#handler tr.hc-row').length >= 2, null, {timeout: 30000});
      assert.equal(await card.locator('#handler-run').innerText(), '2');
      const rows = await card.locator('tr.hc-row').evaluateAll((rs) => rs.map((r) => [...r.cells].slice(0, 5).map((c) => c.innerText.trim())));
      assert.deepEqual(rows.map((r) => [r[0], r[1], r[2], r[4]]).sort(), [
        ['1', 'the execution started', '—', 'called'],
        ['2', 'a step ended', 'nap', 'called'],
      ]);
    } finally {
      await p.close();
      await api('POST', '/v1/executions/code-handler-real/complete', {output: null});
    }
  });

  test('a code execution\'s handler: its URL, timeout, runs and calls (a failed call, from rewritten answers)', async () => {
    // A handler that fails and is called again is hard to time against keeld: the page is given
    // one by rewriting the answers of GET /v1/executions/code-handler and its history.
    await api('POST', '/v1/executions', {id: 'code-handler', name: 'checkout-ui'});
    await callStep('code-handler', 'nap', {sleep: '10ms'});
    await api('POST', '/v1/executions/code-handler/complete', {output: null});
    const p = watch(await ctx.newPage());
    try {
      await p.route(/\/v1\/executions\/code-handler$/, async (route) => {
        const r = await route.fetch();
        const x = await r.json();
        await route.fulfill({response: r, json: {...x, handler: {url: 'http://app.internal/resume', inactivity_timeout: '30s'}, run: 3}});
      });
      await p.route(/\/v1\/executions\/code-handler\/history/, async (route) => {
        const r = await route.fetch();
        const body = await r.json();
        const at = body.events[0].at;
        const later = (s) => new Date(Date.parse(at) + s * 1000).toISOString();
        const ev = (seq, type, data, s) => ({seq, type, step: null, path: null, attempt: null, at: later(s), data});
        // Once, at the start of the history (not again with a later read's after_seq).
        if (new URL(route.request().url()).searchParams.get('after_seq') === '0')
          body.events.push(
            ev(1001, 'handler_called', {run: 1, reason: 'start', attempt: 1}, 1),
            ev(1002, 'handler_failed', {run: 2, reason: 'step_ended', key: 'nap', attempt: 1, error: {type: 'http_5xx', message: 'HTTP 503'}, next_attempt_at: later(3)}, 2),
            ev(1003, 'handler_called', {run: 2, reason: 'step_ended', key: 'nap', attempt: 2}, 3),
            ev(1004, 'handler_called', {run: 3, reason: 'inactivity', attempt: 1}, 40));
        await route.fulfill({response: r, json: body});
      });
      await p.goto(`${base}/ui/executions/code-handler`);
      const card = p.locator('#handler');
      await card.locator('table.handler-calls').waitFor();
      assert.equal(await card.locator('#handler-url').innerText(), 'http://app.internal/resume');
      assert.equal(await card.locator('#handler-timeout').innerText(), '30s');
      assert.equal(await card.locator('#handler-run').innerText(), '3');
      // Newest first: run, reason, key, attempt, result.
      const rows = await card.locator('tr.hc-row').evaluateAll((rs) => rs.map((r) => [...r.cells].slice(0, 5).map((c) => c.innerText.trim())));
      assert.deepEqual(rows.map((r) => r.slice(0, 4)), [
        ['3', 'no call within the inactivity timeout', '—', '1'],
        ['2', 'a step ended', 'nap', '2'],
        ['2', 'a step ended', 'nap', '1'],
        ['1', 'the execution started', '—', '1'],
      ]);
      assert.equal(rows[0][4], 'called');
      assert.match(rows[2][4], /^failed: http_5xx: HTTP 503 · next attempt \d{2}:\d{2}:\d{2}/);
      assert.equal(await card.locator('tr.hc-row[data-ok="false"]').count(), 1);
      // The history says the same.
      assert.equal(await p.locator('.history-table tr.ev-row[data-type="handler_called"] .ev-summary').first().innerText(), 'called the handler, run 1: the execution started');
      assert.match(await p.locator('.history-table tr.ev-row[data-type="handler_failed"] .ev-summary').innerText(), /^handler call failed, run 2 attempt 1 \(step nap ended\): http_5xx: HTTP 503 · next attempt in 1(\.0)? s$/);
      assert.equal(await p.locator('.history-table tr.ev-row[data-type="handler_failed"]').getAttribute('class'), 'ev-row tone-bad');
      await p.screenshot({path: path.join(ARTIFACTS, 'execution-code-handler.png'), fullPage: true});
    } finally {
      await p.close();
    }
  });

  test('a code execution at phone width in dark mode: no overlap, no sideways scrolling, readable marks', async () => {
    const dark = await stack.browser.newContext({viewport: {width: 375, height: 812}, deviceScaleFactor: 2, hasTouch: true, colorScheme: 'dark'});
    try {
      const p = watch(await dark.newPage());
      await p.goto(`${base}/ui/executions/code-steps`);
      await p.locator('#steps .cs-row[data-key="total"] .differs-mark').waitFor();
      const overflow = await p.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
      assert.ok(overflow <= 0, `the code execution scrolls sideways by ${overflow}px`);
      // Within each row: the key, the status, the call and each fact in their own space; rows
      // one under the other; all inside the card.
      const boxes = await p.locator('#steps .cs-row[data-key]').evaluateAll((rs) => rs.map((r) => {
        const b = (el) => {
          const x = el.getBoundingClientRect();
          return {x: x.left, y: x.top, w: x.width, h: x.height, what: `${r.dataset.key} ${el.className}`};
        };
        const parts = [r.querySelector('.cs-pos'), r.querySelector('.cs-toggle'), r.querySelector('.differs-mark'), r.querySelector('.cs-status .badge'), r.querySelector('.cs-call'),
          ...r.querySelectorAll('.cs-meta > span')].filter(Boolean).map(b);
        return {row: b(r), parts, card: b(r.closest('.card'))};
      }));
      const apart = (a, b) => a.x + a.w <= b.x + 0.5 || b.x + b.w <= a.x + 0.5 || a.y + a.h <= b.y + 0.5 || b.y + b.h <= a.y + 0.5;
      for (const {row, parts, card} of boxes) {
        for (const a of parts) {
          assert.ok(a.w > 0 && a.x >= card.x && a.x + a.w <= card.x + card.w + 0.5, `${a.what} inside the card`);
          for (const b of parts) if (a !== b) assert.ok(apart(a, b), `${a.what} and ${b.what} overlap`);
        }
        assert.ok(row.w <= card.w);
      }
      for (let i = 1; i < boxes.length; i++) assert.ok(boxes[i].row.y >= boxes[i - 1].row.y + boxes[i - 1].row.h - 0.5, 'rows one under the other');
      for (const [what, loc] of [['request differs mark', p.locator('#steps .differs-mark')], ['the call', p.locator('#steps .cs-row[data-key="total"] .cs-call')],
        ['replays', p.locator('#steps .cs-row[data-key="total"] .cs-replays')], ['idle line', p.locator('#idle-line .idle-text')]]) {
        const ratio = await contrastOf(loc);
        assert.ok(ratio >= 4.5, `${what}: contrast ${ratio.toFixed(2)} in dark mode`);
      }
      await p.screenshot({path: path.join(ARTIFACTS, 'phone-execution-code-dark.png'), fullPage: true});
    } finally {
      await dark.close();
    }
  });

  // ---- host limits (KEEL_HOST_LIMITS), on a keeld of their own so that no other test waits
  test('a step waiting for the capacity of its host says so while it waits: the list, the execution, the history', async () => {
    const R = stack.receiverUrl;
    const limit = `127.0.0.1:${stack.receiverPort}=1`;
    const limited = await stack.startKeeld('keeld-limits', {KEEL_HOST_LIMITS: limit});
    const lapi = client(limited);
    const release = () => fetch(`${R}/_release`, {method: 'POST'});
    const delivered = async (id) => {
      const r = await fetch(`${R}/_stats?key=${id}/call`);
      return ((await r.json()).keys[`${id}/call`] || {}).deliveries || 0;
    };
    try {
      // Held by the receiver until the test lets it go: the first holds the only slot, the
      // second waits for it.
      await lapi('POST', '/v1/workflows', {name: 'capped', steps: [{id: 'call', activity: {url: `${R}/hold/600000`}, timeout: '15m'}]});
      await lapi('POST', '/v1/workflows/capped/executions', {id: 'capped-1'});
      await until(() => delivered('capped-1'), {what: 'capped-1 at the receiver'});
      await lapi('POST', '/v1/workflows/capped/executions', {id: 'capped-2'});
      const waiting = await until(async () => (await api('GET', '/v1/executions/capped-2')).data.steps[0].waiting_for_capacity, {what: 'capped-2 waiting for capacity'});
      assert.equal(waiting.host, '127.0.0.1');
      assert.equal(waiting.limit, limit);

      // The list: its current step waits for capacity, not "running attempt 1".
      await page.goto(`${base}/ui/executions`);
      const cell = page.locator('tr[data-id="capped-2"] .c-now');
      await cell.locator('.current-step').waitFor();
      assert.match(await cell.innerText(), /call[\s\S]*waiting for capacity of 127\.0\.0\.1/);
      assert.match(await page.locator('tr[data-id="capped-1"] .c-now').innerText(), /call[\s\S]*running attempt 1/);

      // The execution page: the step's line under its bars, and in its detail.
      await page.goto(`${base}/ui/executions/capped-2`);
      const call = page.locator('.tl-step[data-step="call"]');
      await call.locator('.step-capacity').waitFor();
      assert.equal(await call.getAttribute('data-status'), 'running');
      const line = call.locator('.step-capacity');
      assert.equal(await line.getAttribute('data-host'), '127.0.0.1');
      assert.match(await line.innerText(), /^waiting for capacity of 127\.0\.0\.1 · limit 127\.0\.0\.1:\d+=1 · since (\d{4}-\d{2}-\d{2} )?\d{2}:\d{2}/);
      assert.match(await page.locator('.pending-item[data-kind="capacity"]').innerText(), /call · Attempt 1 waiting for capacity of 127\.0\.0\.1/);
      await call.locator('.tl-toggle').click();
      assert.match(await call.locator('.tl-detail .facts').innerText(), /Waiting for capacity\s+127\.0\.0\.1 \(limit 127\.0\.0\.1:\d+=1\)/i);
      // The history: the event, summarised.
      const ev = page.locator('.history-table tr.ev-row[data-type="waiting_for_capacity"]');
      await ev.waitFor();
      assert.equal(await ev.count(), 1);
      assert.match(await ev.locator('.ev-summary').innerText(), /attempt 1 waiting for capacity of 127\.0\.0\.1 \(limit 127\.0\.0\.1:\d+=1\)/);
      await shot(page, 'execution-waiting-for-capacity.png');

      // The first answers: the slot is free, the second is sent, and its line goes (the page
      // refreshes by itself).
      await release();
      await until(() => delivered('capped-2'), {timeout: 30_000, what: 'capped-2 at the receiver'});
      await page.locator('.tl-step[data-step="call"] .step-capacity').waitFor({state: 'detached', timeout: 30_000});
      assert.equal((await api('GET', '/v1/executions/capped-2')).data.steps[0].waiting_for_capacity, null);
      await release();
      for (const id of ['capped-1', 'capped-2'])
        await until(async () => (await api('GET', `/v1/executions/${id}`)).data.status === 'completed', {timeout: 30_000, what: `${id} completed`});
    } finally {
      await release();
      await stack.stopKeeld(limited);
    }
  });

  // ---- tags and bulk actions (last: they start executions of their own and end some) -----------

  describe('tags and bulk actions', () => {
    const shown = (p) => p.locator('table.exec-table tbody tr').evaluateAll((r) => r.map((x) => x.dataset.id));
    const sorted = async (p) => (await shown(p)).sort().join();
    const statusOf = async (id) => (await api('GET', `/v1/executions/${id}`)).data.status;
    const idsOf = async (qs) => (await api('GET', `/v1/executions?${qs}`)).data.executions.map((x) => x.id).sort().join();

    before(async () => {
      await api('POST', '/v1/workflows', {name: 'bulk-nap', description: 'Sleep an hour', steps: [{id: 'pause', sleep: '1h'}]});
      await api('POST', '/v1/workflows', {name: 'bulk-broken', steps: [{id: 'explode', activity: {url: `${stack.receiverUrl}/fail/500`, input: {}}, retry: {max_attempts: 1}}]});
      for (let i = 1; i <= 6; i++) {
        const tags = {team: 'ui', customer: i <= 3 ? '42' : '43', tier: i % 2 ? 'gold' : 'silver'};
        if (i === 6) Object.assign(tags, {region: 'eu-west-1', note: 'a long value that the list cuts short rather than letting it widen the row'});
        await api('POST', '/v1/workflows/bulk-nap/executions', {id: `bulk-${i}`, tags});
      }
      for (let i = 1; i <= 4; i++)
        await api('POST', '/v1/workflows/bulk-broken/executions', {id: `bulk-fail-${i}`, tags: i <= 3 ? {team: 'ui', retry: 'yes'} : {team: 'ui'}});
      for (let i = 1; i <= 4; i++) assert.equal((await api('GET', `/v1/executions/bulk-fail-${i}/result?wait=20`)).data.status, 'failed');
      for (let i = 1; i <= 6; i++)
        await until(async () => (await api('GET', `/v1/executions/bulk-${i}/history`)).data.events.some((e) => e.type === 'timer_started'), {what: `bulk-${i} asleep`});
    });

    test('tags on the execution page and in the list; a chip filters, two tags AND, a refused tag shows the API\'s message, a reload keeps the filter', async () => {
      const p = watch(await ctx.newPage(), [/status of 400/]);
      try {
        await p.goto(`${base}/ui/executions/bulk-1`);
        const chips = p.locator('#exec-tags a.tag-chip');
        await chips.first().waitFor();
        assert.deepEqual(await chips.evaluateAll((a) => a.map((x) => x.dataset.tag)), ['customer:42', 'team:ui', 'tier:gold'], 'every tag, by key');
        assert.equal(await chips.first().innerText(), 'customer: 42');
        // A chip is a link to the list filtered by it (followed with the keyboard).
        await chips.first().focus();
        await p.keyboard.press('Enter');
        await p.waitForURL((u) => u.pathname === '/ui/executions' && u.search === '?tag=customer:42');
        await until(async () => (await sorted(p)) === 'bulk-1,bulk-2,bulk-3', {what: 'the executions of customer 42'});
        assert.equal(await idsOf('tag=customer:42'), 'bulk-1,bulk-2,bulk-3');
        assert.deepEqual(await p.locator('#filter-tags li').evaluateAll((l) => l.map((x) => x.dataset.tag)), ['customer:42']);
        // In the list, each row's tags; a click on one adds it to the filter: both must match.
        const row = p.locator('tr[data-id="bulk-1"]');
        assert.deepEqual(await row.locator('.row-tags a.tag-chip').evaluateAll((a) => a.map((x) => x.dataset.tag)), ['customer:42', 'team:ui', 'tier:gold']);
        await row.locator('.row-tags a.tag-chip[data-tag="tier:gold"]').click();
        await p.waitForURL((u) => u.search === '?tag=customer:42&tag=tier:gold');
        await until(async () => (await sorted(p)) === 'bulk-1,bulk-3', {what: 'customer 42 and gold'});
        assert.equal(await idsOf('tag=customer:42&tag=tier:gold'), 'bulk-1,bulk-3');
        assert.deepEqual(await p.locator('#filter-tags li').evaluateAll((l) => l.map((x) => x.dataset.tag)), ['customer:42', 'tier:gold']);
        // A reload keeps the filter.
        await p.reload();
        await until(async () => (await sorted(p)) === 'bulk-1,bulk-3', {what: 'the same rows after a reload'});
        assert.deepEqual(await p.locator('#filter-tags li').evaluateAll((l) => l.map((x) => x.dataset.tag)), ['customer:42', 'tier:gold']);
        // Tags the API refuses (400): its message under the field; the filter, the URL and the rows stay.
        const url = p.url();
        for (const [bad, message] of [['nocolon', /query parameter "tag": "nocolon": must be key:value, e\.g\. customer:42/], ['customer:43', /"customer:43": two values for one tag key can never both match/]]) {
          await p.locator('#filter-tag').fill(bad);
          await p.locator('#filter-tag').press('Enter');
          await p.locator('#filter-tag-error').waitFor();
          assert.match(await p.locator('#filter-tag-error').innerText(), message);
          assert.equal(await p.locator('#filter-tag').getAttribute('aria-invalid'), 'true');
          assert.equal(await p.locator('#filter-tag').inputValue(), bad, 'kept to be corrected');
          assert.equal(p.url(), url);
          assert.equal(await sorted(p), 'bulk-1,bulk-3');
          if (bad === 'nocolon') await p.screenshot({path: path.join(ARTIFACTS, 'list-tag-error.png')});
          // Typing again clears the message.
          await p.locator('#filter-tag').fill('');
          await p.locator('#filter-tag-error').waitFor({state: 'hidden'});
        }
        // A chip comes off; a tag typed in goes on.
        await p.locator('#filter-tags li[data-tag="tier:gold"] button.tag-remove').click();
        await p.waitForURL((u) => u.search === '?tag=customer:42');
        await until(async () => (await sorted(p)) === 'bulk-1,bulk-2,bulk-3', {what: 'customer 42 again'});
        await p.locator('#filter-tag').fill('tier:silver');
        await p.locator('#filter-tag').press('Enter');
        await p.waitForURL((u) => u.search === '?tag=customer:42&tag=tier:silver');
        await until(async () => (await sorted(p)) === 'bulk-2', {what: 'customer 42 and silver'});
        assert.equal(await p.locator('#filter-tag').inputValue(), '');
        // With the other filters: a status, then all cleared.
        await p.locator('.segmented input[value="running"]').check();
        await p.waitForURL((u) => u.search === '?status=running&tag=customer:42&tag=tier:silver');
        await p.locator('#clear-filters').click();
        await p.waitForURL((u) => u.search === '');
        assert.equal(await p.locator('#filter-tags li').count(), 0);
        // Many tags in a row: the first three, cut short when long, then "+N more".
        const six = p.locator('tr[data-id="bulk-6"] .row-tags');
        await six.waitFor();
        assert.equal(await six.locator('a.tag-chip').count(), 3);
        assert.equal(await six.locator('.tag-more').innerText(), '+2 more');
        const note = six.locator('a.tag-chip[data-tag^="note:"]');
        assert.ok(await note.evaluate((el) => el.scrollWidth > el.clientWidth), 'a long tag is cut short');
        assert.match(await note.getAttribute('title'), /rather than letting it widen the row/);
        await p.goto(`${base}/ui/executions/bulk-6`);
        await p.locator('#exec-tags a.tag-chip').first().waitFor();
        assert.equal(await p.locator('#exec-tags a.tag-chip').count(), 5, 'the page shows them all');
      } finally {
        await p.close();
      }
    });

    test('bulk actions: none without a selection, "all matching" refused without a filter, Back and Escape create no batch', async () => {
      await page.goto(`${base}/ui/executions`);
      await page.locator('#bulk-bar #bulk-all').waitFor();
      assert.equal(await page.locator('#bulk-all').isDisabled(), true);
      assert.match(await page.locator('#bulk-all-why').innerText(), /no filter: acting on every execution needs at least one/);
      assert.equal(await page.locator('#bulk-all').getAttribute('aria-describedby'), 'bulk-all-why');
      for (const a of ['cancel', 'terminate', 'retry']) assert.equal(await page.locator(`#bulk-${a}`).isDisabled(), true, `${a} needs a selection`);
      assert.equal(await page.locator('#bulk-count').innerText(), 'No execution selected');
      // A list of a parent's children cannot be matched by a bulk filter either.
      await page.goto(`${base}/ui/executions?parent=order-ui-hold`);
      await page.locator('#bulk-all-why').waitFor();
      assert.equal(await page.locator('#bulk-all').isDisabled(), true);
      assert.match(await page.locator('#bulk-all-why').innerText(), /cannot filter by parent/);

      await page.goto(`${base}/ui/executions?workflow=bulk-nap`);
      await until(async () => (await sorted(page)) === 'bulk-1,bulk-2,bulk-3,bulk-4,bulk-5,bulk-6', {what: 'the six bulk-nap executions'});
      assert.equal(await page.locator('#bulk-all').isDisabled(), false, 'a filter: "all matching" offered');
      await page.locator('tr[data-id="bulk-5"] input.row-select').check();
      await page.locator('tr[data-id="bulk-6"] input.row-select').check();
      assert.equal(await page.locator('#bulk-count').innerText(), '2 selected');
      assert.equal(await page.locator('#select-page').evaluate((el) => el.indeterminate), true);
      const dlg = page.locator('dialog.dialog-bulk');
      await page.locator('#bulk-cancel').click();
      await dlg.waitFor();
      assert.equal(await dlg.locator('h2').innerText(), 'Cancel 2 executions?');
      assert.equal(await dlg.locator('#bulk-what').getAttribute('data-count'), '2');
      assert.equal(await page.evaluate(() => document.activeElement.id), 'bulk-reason', 'the focus in the dialog, on its reason');
      await dlg.locator('[data-action="dismiss"]').click();
      await dlg.waitFor({state: 'detached'});
      await until(async () => (await page.evaluate(() => document.activeElement.id)) === 'bulk-cancel', {what: 'the focus back on Cancel'});
      await page.locator('#bulk-terminate').click();
      await dlg.waitFor();
      assert.equal(await dlg.locator('h2').innerText(), 'Terminate 2 executions?');
      await page.keyboard.press('Escape');
      await dlg.waitFor({state: 'detached'});
      assert.equal(await page.locator('#bulk-count').innerText(), '2 selected', 'the selection stays');
      assert.deepEqual((await api('GET', '/v1/batches')).data.batches, [], 'no batch was created');
      for (const id of ['bulk-5', 'bulk-6']) assert.equal(await statusOf(id), 'running');
      // Unchecking the page clears the selection.
      await page.locator('#select-page').check();
      await page.locator('#select-page').uncheck();
      assert.equal(await page.locator('#bulk-count').innerText(), 'No execution selected');
    });

    test('bulk cancel of three selected rows with a reason: the confirmation says 3, the batch\'s progress to completed, those three cancelled and no other', async () => {
      await page.goto(`${base}/ui/executions?workflow=bulk-nap`);
      await until(async () => (await shown(page)).length === 6, {what: 'six rows'});
      // A row's checkbox with the keyboard, the others with the pointer.
      await page.locator('tr[data-id="bulk-1"] input.row-select').focus();
      await page.keyboard.press('Space');
      await page.locator('tr[data-id="bulk-2"] input.row-select').check();
      await page.locator('tr[data-id="bulk-3"] input.row-select').check();
      assert.equal(await page.locator('#bulk-count').innerText(), '3 selected');
      assert.equal(await page.locator('tr.is-selected').count(), 3);
      // The selection outlives the list's live refreshes (these executions run).
      const updated = await page.locator('.page-head .muted.small').innerText();
      await until(async () => (await page.locator('.page-head .muted.small').innerText()) !== updated, {what: 'a live refresh'});
      assert.equal(await page.locator('#bulk-count').innerText(), '3 selected');
      assert.deepEqual(await page.locator('tr:has(input.row-select:checked)').evaluateAll((r) => r.map((x) => x.dataset.id).sort()), ['bulk-1', 'bulk-2', 'bulk-3']);

      await page.locator('#bulk-cancel').click();
      const dlg = page.locator('dialog.dialog-bulk');
      await dlg.waitFor();
      assert.equal(await dlg.locator('h2').innerText(), 'Cancel 3 executions?');
      assert.equal(await dlg.locator('#bulk-what').getAttribute('data-count'), '3');
      assert.match(await dlg.locator('#bulk-what').innerText(), /^The 3 selected executions: (bulk-\d, ){2}bulk-\d\.$/);
      await dlg.locator('#bulk-reason').fill('bulk from the UI');
      assert.equal(await dlg.locator('[data-action="confirm"]').innerText(), 'Cancel 3 executions');
      await shot(page, 'bulk-confirm.png');
      await dlg.locator('[data-action="confirm"]').click();
      await dlg.waitFor({state: 'detached'});
      const progress = page.locator('#batch-progress');
      await progress.waitFor();
      await until(async () => (await page.evaluate(() => document.activeElement.id)) === 'batch-progress-h', {what: 'the focus on the batch\'s progress'});
      await page.locator('#batch-progress[data-status="completed"]').waitFor({timeout: 15_000});
      assert.equal(await progress.getAttribute('data-matched'), '3');
      assert.equal(await progress.getAttribute('data-acted'), '3');
      assert.equal(await progress.getAttribute('data-skipped'), '0');
      assert.equal(await progress.locator('#batch-progress-text').innerText(), '3 of 3 processed · 3 cancelled · 0 skipped');
      assert.equal(await progress.locator('[role="progressbar"]').getAttribute('aria-valuenow'), '100');
      const batches = (await api('GET', '/v1/batches')).data.batches;
      assert.equal(batches.length, 1);
      assert.deepEqual(Object.keys(batches[0].filter), ['ids'], 'the selected rows, as ids');
      assert.deepEqual([...batches[0].filter.ids].sort(), ['bulk-1', 'bulk-2', 'bulk-3']);
      assert.equal(batches[0].reason, 'bulk from the UI');
      assert.equal(await progress.getAttribute('data-batch'), batches[0].id);
      // Those three are cancelled (with the reason), the others not; the list shows it.
      for (const id of ['bulk-1', 'bulk-2', 'bulk-3']) await until(async () => (await statusOf(id)) === 'cancelled', {what: `${id} cancelled`});
      for (const id of ['bulk-4', 'bulk-5', 'bulk-6']) assert.equal(await statusOf(id), 'running', `${id} untouched`);
      assert.ok((await api('GET', '/v1/executions/bulk-2/history')).data.events.some((e) => e.type === 'cancel_requested' && JSON.stringify(e.data).includes('bulk from the UI')));
      await until(async () => (await page.locator('tr[data-status="cancelled"]').evaluateAll((r) => r.map((x) => x.dataset.id).sort().join())) === 'bulk-1,bulk-2,bulk-3', {what: 'the list refreshed'});
      assert.equal(await page.locator('#bulk-count').innerText(), 'No execution selected');
      await shot(page, 'bulk-progress.png');
      await page.locator('#batch-progress-close').click();
      assert.equal(await page.locator('#batch-progress').count(), 0);
    });

    test('"all matching" a tag filter beyond the page: the dry run\'s count, the filter spelled out, exactly those terminated', async () => {
      await page.goto(`${base}/ui/executions?tag=customer:43&limit=2`);
      await until(async () => (await shown(page)).join() === 'bulk-6,bulk-5', {what: 'a page of two of customer 43'});
      await page.locator('#select-page').check();
      // The whole page selected: the offer to go further names the dry run's count.
      await until(async () => (await page.locator('#bulk-all').getAttribute('data-count')) === '3', {what: 'the count of all matching'});
      assert.equal(await page.locator('#bulk-all').innerText(), 'Select all 3 matching this filter');
      const dry = (await api('POST', '/v1/executions/terminate', {tags: {customer: '43'}, dry_run: true})).data;
      assert.equal(dry.matched, 3);
      await page.locator('#bulk-all').click();
      await until(async () => (await page.locator('#bulk-count').innerText()) === 'All 3 executions matching this filter', {what: 'all matching selected'});
      assert.equal(await page.locator('#bulk-count').getAttribute('data-mode'), 'all');
      assert.equal(await page.locator('#bulk-all-filter').innerText(), 'Filter: tag customer: 43');
      assert.equal(await page.evaluate(() => document.activeElement.id), 'bulk-none', 'the focus on the way back');
      await page.locator('#bulk-terminate').click();
      const dlg = page.locator('dialog.dialog-bulk');
      await dlg.waitFor();
      assert.equal(await dlg.locator('h2').innerText(), 'Terminate 3 executions?');
      assert.equal(await dlg.locator('#bulk-what').getAttribute('data-count'), '3');
      assert.equal(await dlg.locator('#bulk-what').innerText(), 'All 3 executions matching tag customer: 43.');
      assert.deepEqual(await dlg.locator('#bulk-filter li').allInnerTexts(), ['tag customer: 43']);
      await dlg.locator('[data-action="confirm"]').click();
      await dlg.waitFor({state: 'detached'});
      await page.locator('#batch-progress[data-status="completed"]').waitFor({timeout: 15_000});
      assert.equal(await page.locator('#batch-progress').getAttribute('data-acted'), '3');
      const batch = (await api('GET', '/v1/batches')).data.batches[0];
      assert.deepEqual({action: batch.action, filter: batch.filter, reason: batch.reason, matched: batch.matched, acted: batch.acted}, {action: 'terminate', filter: {tags: {customer: '43'}}, reason: null, matched: 3, acted: 3});
      for (const id of ['bulk-4', 'bulk-5', 'bulk-6']) assert.equal(await statusOf(id), 'terminated', `${id} terminated`);
      for (const id of ['bulk-1', 'bulk-2', 'bulk-3']) assert.equal(await statusOf(id), 'cancelled', `${id} as it was`);
      assert.equal(await statusOf('state-sleeping'), 'running', 'an execution without the tag untouched');
    });

    test('retry all matching a tag and a status: only the failed executions with the tag are retried', async () => {
      await page.goto(`${base}/ui/executions?status=failed&tag=retry:yes`);
      await until(async () => (await sorted(page)) === 'bulk-fail-1,bulk-fail-2,bulk-fail-3', {what: 'the three to retry'});
      await page.locator('#bulk-all').click();
      await until(async () => (await page.locator('#bulk-count').getAttribute('data-count')) === '3', {what: 'all 3 matching'});
      await page.locator('#bulk-retry').click();
      const dlg = page.locator('dialog.dialog-bulk');
      await dlg.waitFor();
      assert.equal(await dlg.locator('h2').innerText(), 'Retry 3 executions?');
      assert.equal(await dlg.locator('#bulk-reason').count(), 0, 'a retry has no reason');
      assert.deepEqual(await dlg.locator('#bulk-filter li').allInnerTexts(), ['status failed', 'tag retry: yes']);
      assert.equal(await page.evaluate(() => document.activeElement.dataset.action), 'confirm');
      await page.keyboard.press('Enter');
      await dlg.waitFor({state: 'detached'});
      await page.locator('#batch-progress[data-status="completed"]').waitFor({timeout: 15_000});
      assert.equal(await page.locator('#batch-progress-text').innerText(), '3 of 3 processed · 3 retried · 0 skipped');
      const retried = async (id) => (await api('GET', `/v1/executions/${id}/history`)).data.events.some((e) => e.type === 'execution_retried');
      for (const id of ['bulk-fail-1', 'bulk-fail-2', 'bulk-fail-3']) assert.equal(await retried(id), true, `${id} retried`);
      assert.equal(await retried('bulk-fail-4'), false, 'bulk-fail-4 (without the tag) not retried');
      assert.equal(await retried('saga-1'), false, 'another failed execution not retried');
    });

    test('the Batches view: newest first with their numbers, pages, a batch\'s page; at phone width in dark mode', async () => {
      const fromApi = (await api('GET', '/v1/batches')).data.batches;
      assert.equal(fromApi.length, 3);
      await page.goto(`${base}/ui/executions`);
      await page.locator('a[data-nav="batches"]').click();
      await page.waitForURL((u) => u.pathname === '/ui/batches');
      const rows = page.locator('table.batch-table tbody tr');
      await rows.first().waitFor();
      const seen = await rows.evaluateAll((r) => r.map((x) => ({id: x.dataset.id, action: x.dataset.action, status: x.dataset.status, matched: x.dataset.matched, processed: x.dataset.processed, acted: x.dataset.acted, skipped: x.dataset.skipped})));
      assert.deepEqual(seen, fromApi.map((b) => ({id: b.id, action: b.action, status: b.status, matched: String(b.matched), processed: String(b.processed), acted: String(b.acted), skipped: String(b.skipped)})));
      assert.deepEqual(seen.map((b) => b.action), ['retry', 'terminate', 'cancel'], 'newest first');
      const cancel = rows.nth(2);
      assert.equal(await cancel.locator('.c-acted').innerText(), '3');
      assert.equal(await cancel.locator('.c-skipped').innerText(), '0');
      assert.equal(await cancel.locator('.progress-count').innerText(), '3 / 3');
      assert.match(await cancel.locator('.batch-filter').innerText(), /^3 ids: (bulk-[123], ){2}bulk-[123]$/);
      assert.match(await cancel.locator('.batch-reason').innerText(), /bulk from the UI/);
      assert.equal(await rows.nth(1).locator('.batch-filter').innerText(), 'tag customer: 43');
      assert.equal(await rows.nth(0).locator('.batch-filter').innerText(), 'status failed · tag retry: yes');
      await shot(page, 'batches.png');
      // Pages of two: the third batch on the second page.
      await page.goto(`${base}/ui/batches?limit=2`);
      await until(async () => (await rows.count()) === 2, {what: 'a page of two'});
      await page.locator('#page-next').click();
      await page.waitForURL(/cursor=/);
      await until(async () => (await rows.evaluateAll((r) => r.map((x) => x.dataset.action).join())) === 'cancel', {what: 'the oldest on page 2'});
      await page.locator('#page-prev').click();
      await until(async () => (await rows.count()) === 2, {what: 'page 1 again'});
      // A batch's page: its numbers, its filter, and the list of the executions it matched.
      await rows.nth(1).locator('a.batch-link').click();
      await page.waitForURL((u) => u.pathname === `/ui/batches/${fromApi[1].id}`);
      await page.locator('.batch-summary').waitFor();
      for (const [k, v] of [['matched', '3'], ['processed', '3'], ['acted', '3'], ['skipped', '0']])
        assert.equal(await page.locator(`.batch-summary [data-field="${k}"]`).innerText(), v, k);
      assert.equal(await page.locator('#batch-progress-text').innerText(), '3 of 3 processed · 3 terminated · 0 skipped');
      assert.deepEqual(await page.locator('#batch-filter li').allInnerTexts(), ['tag customer: 43']);
      await page.locator('#batch-list-link').click();
      await page.waitForURL((u) => u.pathname === '/ui/executions' && u.search === '?tag=customer:43');
      await until(async () => (await sorted(page)) === 'bulk-4,bulk-5,bulk-6', {what: 'the executions of the batch'});

      const dark = await stack.browser.newContext({viewport: {width: 375, height: 812}, deviceScaleFactor: 2, hasTouch: true, colorScheme: 'dark'});
      try {
        const p = watch(await dark.newPage());
        const noSideways = async (what) => {
          const overflow = await p.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
          assert.ok(overflow <= 0, `${what} scrolls sideways by ${overflow}px`);
        };
        await p.goto(`${base}/ui/batches`);
        await p.locator('table.batch-table tbody tr').first().waitFor();
        await noSideways('the batches');
        await p.screenshot({path: path.join(ARTIFACTS, 'phone-batches-dark.png'), fullPage: true});
        await p.goto(`${base}/ui/executions?tag=team:ui`);
        await p.locator('tr[data-id="bulk-6"] .row-tags').waitFor();
        // The page's checkbox stays (with its words) when the table's head goes.
        assert.ok(await p.locator('#select-page').isVisible(), 'select this page at phone width');
        await p.locator('#select-page').check();
        await until(async () => (await p.locator('#bulk-all').getAttribute('data-count')) === '10', {what: 'all 10 of team ui'});
        await noSideways('the list with its tags and selection');
        for (const [what, loc] of [['a tag chip\'s key', p.locator('tr[data-id="bulk-6"] .tag-chip .tag-k').first()], ['a tag chip\'s value', p.locator('tr[data-id="bulk-6"] .tag-chip').first()],
          ['a filter chip', p.locator('#filter-tags li').first()], ['the selection', p.locator('#bulk-count')], ['"+2 more"', p.locator('tr[data-id="bulk-6"] .tag-more')]]) {
          const ratio = await contrastOf(loc);
          assert.ok(ratio >= 4.5, `${what}: contrast ${ratio.toFixed(2)} in dark mode`);
        }
        await p.screenshot({path: path.join(ARTIFACTS, 'phone-bulk-dark.png'), fullPage: true});
        await p.goto(`${base}/ui/batches/${fromApi[2].id}`);
        await p.locator('.batch-summary').waitFor();
        await noSideways('a batch');
        for (const [what, loc] of [['the progress text', p.locator('#batch-progress-text')], ['the action', p.locator('.action-chip')], ['the filter', p.locator('#batch-filter li').first()]]) {
          const ratio = await contrastOf(loc);
          assert.ok(ratio >= 4.5, `${what}: contrast ${ratio.toFixed(2)} in dark mode`);
        }
      } finally {
        await dark.close();
      }
    });
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
