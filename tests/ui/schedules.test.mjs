// Browser tests of the schedules pages against a real keeld (a stack of their own: see
// harness.mjs). Run: node --test tests/ui/  (skipped without the environment harness.mjs names).
import assert from 'node:assert/strict';
import path from 'node:path';
import {after, before, describe, test} from 'node:test';

import {ARTIFACTS, Stack, client, contrastOf, missingPrerequisites, pgStartTime, until} from './harness.mjs';

const skip = missingPrerequisites();

// Every console error and page error; a test that provokes a refused request lists its message.
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

// The viewer's zone in the browser: not the schedules' zone, so that both times show.
const VIEWER_ZONE = 'America/New_York';

/** A cron expression due once a day, twelve hours from now in the zone: nothing fires during the test. */
function farDailyCron(zone) {
  const p = Object.fromEntries(new Intl.DateTimeFormat('en-US', {timeZone: zone, hourCycle: 'h23', hour: '2-digit', minute: '2-digit'})
    .formatToParts(new Date()).map((x) => [x.type, Number(x.value)]));
  const hour = (p.hour + 12) % 24;
  return {cron: `${p.minute} ${hour} * * *`, clock: `${String(hour).padStart(2, '0')}:${String(p.minute).padStart(2, '0')}`};
}

describe('web UI: schedules', {skip: skip || false, timeout: 180_000}, () => {
  const stack = new Stack({logPrefix: 'schedules-'});
  let api;
  let base;
  let ctx;
  let pgStarted;
  const ID = 'ui-nightly';
  const far = farDailyCron('Europe/Berlin');
  let triggered; // the execution id "Trigger now" started
  const shot = async (p, name) => {
    await p.evaluate(() => window.scrollTo(0, 0));
    await p.screenshot({path: path.join(ARTIFACTS, name), fullPage: true});
  };
  const status = async (p) => (await fetch(base + p)).status;
  const historyTypes = (p) => p.locator('#sched-history tr.sh-row').evaluateAll((rs) => rs.map((r) => r.dataset.type));

  before(async () => {
    pgStarted = pgStartTime();
    await stack.start();
    base = stack.base;
    api = client(base);
    // A long sleep: a triggered execution still runs when the second trigger comes.
    await api('POST', '/v1/workflows', {name: 'nap', description: 'Sleep an hour', steps: [{id: 'pause', sleep: '1h'}]});
    await api('POST', '/v1/workflows', {name: 'report', steps: [{id: 'pause', sleep: '10ms'}]});
    ctx = await stack.browser.newContext({viewport: {width: 1280, height: 900}, colorScheme: 'light', timezoneId: VIEWER_ZONE});
  });

  after(async () => {
    await stack.stop();
  });

  test('create through the form: a bad cron shows its field error, then the schedule with its next 5 due times', async () => {
    const p = watch(await ctx.newPage(), [/status of 422/]);
    await p.goto(`${base}/ui/schedules`);
    await p.locator('.empty-state', {hasText: 'No schedules yet'}).waitFor();
    assert.equal(await p.locator('.mainnav a[data-nav="schedules"]').getAttribute('aria-current'), 'page');
    await p.locator('#new-schedule').click();
    await p.waitForURL(/\/ui\/schedules\/new$/);
    await p.locator('#sched-workflow option[value="nap"]').waitFor({state: 'attached'});
    assert.equal(await p.locator('#sched-timezone').getAttribute('placeholder'), VIEWER_ZONE, 'the browser\'s zone as the placeholder');
    assert.ok(await p.locator('#sched-zones option[value="Europe/Berlin"]').count(), 'zones offered');

    await p.locator('#sched-id').fill(ID);
    await p.locator('#sched-workflow').selectOption('nap');
    await p.locator('#sched-timezone').fill('Europe/Berlin');
    await p.locator('#sched-input').fill('{"format": "pdf"}');
    await p.locator('#sched-tags').fill('team: reports\ntier: gold');
    await p.locator('#sched-cron').fill('30 24 * * *');
    assert.equal(await p.locator('#sched-cron-reading').innerText(), '', 'no reading of a bad expression');
    await p.locator('#sched-cron').press('Enter'); // the keyboard submits the form

    const cronError = p.locator('#sched-cron-error');
    await cronError.waitFor();
    assert.equal(await cronError.innerText(), 'field 2 (hour): 24 is out of range 0-23', 'the message verbatim, next to its field');
    assert.equal(await p.locator('#sched-cron').getAttribute('aria-invalid'), 'true');
    assert.match(await p.locator('#sched-cron').getAttribute('aria-describedby'), /sched-cron-error/);
    assert.equal(await p.evaluate(() => document.activeElement.id), 'sched-cron', 'the focus on the first bad field');
    assert.match(await p.locator('#sched-form-problem').innerText(), /Invalid request[\s\S]*422/);
    for (const f of ['id', 'workflow', 'timezone', 'input', 'tags', 'overlap']) assert.equal(await p.locator(`#sched-${f}-error`).isVisible(), false, `no error at ${f}`);
    await shot(p, 'schedules-form-422.png');

    // A bad zone is the zone's error (the cron is good now).
    await p.locator('#sched-cron').fill(far.cron);
    assert.equal(await p.locator('#sched-cron-reading').innerText(), `Reads: daily at ${far.clock}.`);
    await p.locator('#sched-timezone').fill('Mars/Olympus_Mons');
    await p.locator('#sched-create').click();
    await p.locator('#sched-timezone-error').waitFor();
    assert.match(await p.locator('#sched-timezone-error').innerText(), /Mars\/Olympus_Mons/);
    assert.equal(await cronError.isVisible(), false, 'the cron error is gone');

    await p.locator('#sched-timezone').fill('Europe/Berlin');
    await p.locator('#sched-create').click();
    await p.waitForURL(new RegExp(`/ui/schedules/${ID}$`));
    const s = (await api('GET', `/v1/schedules/${ID}`)).data;
    assert.deepEqual([s.workflow, s.cron, s.timezone, s.overlap, s.paused], ['nap', far.cron, 'Europe/Berlin', 'skip', false]);
    assert.deepEqual(s.input, {format: 'pdf'});
    assert.deepEqual(s.tags, {team: 'reports', tier: 'gold'});
    assert.equal(s.next_due.length, 5);

    // The page: its next 5 due times in its zone, UTC and the viewer's time.
    const rows = p.locator('#next-due tbody tr');
    await until(async () => (await rows.count()) === 5, {what: 'five due times'});
    assert.deepEqual(await rows.evaluateAll((rs) => rs.map((r) => r.dataset.due)), s.next_due);
    const first = await rows.first().innerText();
    assert.match(first, new RegExp(`\\d{4}-\\d{2}-\\d{2} ${far.clock} UTC\\+[12]`), 'in Europe/Berlin');
    assert.ok(first.includes(`${s.next_due[0].slice(0, 10)} ${s.next_due[0].slice(11, 16)} UTC`), 'in UTC');
    assert.match(first, /in (1[12]|\d) h|in \d+ min/, 'relative');
    assert.match(await p.locator('#next-due thead').innerText(), new RegExp(`Your time \\(${VIEWER_ZONE.replace('/', '\\/')}\\)`, 'i'));
    assert.match(await p.locator('#fact-cron').innerText(), new RegExp(`${far.cron.replace(/\*/g, '\\*')}\\s+daily at ${far.clock}`));
    assert.match(await p.locator('#fact-next').innerText(), /your time · in /);
    assert.deepEqual(await p.locator('#panel-tags .sched-tag').evaluateAll((t) => t.map((x) => `${x.firstChild.textContent}=${x.lastChild.textContent}`)), ['team=reports', 'tier=gold']);
    assert.match(await p.locator('#panel-input').innerText(), /"format": "pdf"/);
    assert.deepEqual(await historyTypes(p), ['created']);
    assert.match(await p.locator('#sched-executions').innerText(), /None yet/);
    await shot(p, 'schedule.png');

    // The list: its row with the same five times, the cron and its reading, the links.
    await p.locator('.crumbs a', {hasText: 'Schedules'}).click();
    const row = p.locator(`table.sched-table tr[data-id="${ID}"]`);
    await row.waitFor();
    assert.equal(await row.locator('.c-state .badge').innerText(), 'active');
    assert.match(await row.locator('.c-cron').innerText(), new RegExp(`daily at ${far.clock}`));
    assert.equal(await row.locator('.c-zone').innerText(), 'Europe/Berlin');
    assert.equal(await row.locator('.c-overlap').innerText(), 'skip');
    assert.equal(await row.locator('.c-swf a').getAttribute('href'), '/ui/executions?workflow=nap');
    assert.equal(await row.locator('.c-last').innerText(), 'none yet');
    assert.equal(await row.locator('.due-list li').count(), 5);
    await row.locator('.due-more summary').click();
    assert.match(await row.locator('.due-list li').first().innerText(), new RegExp(`${far.clock} UTC\\+[12]$`));
    assert.match(await row.locator('.c-next .due-sub').innerText(), /your time · in /);
    await shot(p, 'schedules.png');
    await p.close();
  });

  test('Pause and Resume from the schedule\'s page, with the keyboard', async () => {
    const p = watch(await ctx.newPage());
    await p.goto(`${base}/ui/schedules/${ID}`);
    await p.locator('#action-pause').focus();
    await p.keyboard.press('Enter');
    await until(async () => (await api('GET', `/v1/schedules/${ID}`)).data.paused === true, {what: 'paused (API)'});
    await until(async () => (await p.locator('#sched-state .badge').innerText()) === 'paused', {what: 'paused (UI)'});
    await until(async () => (await historyTypes(p))[0] === 'paused', {what: 'the paused event'});
    assert.match(await p.locator('#next-due .card-head').innerText(), /paused: nothing starts/);
    assert.equal(await p.evaluate(() => document.activeElement.id), 'action-resume', 'the focus on Resume, in Pause\'s place');
    await p.keyboard.press('Enter');
    await until(async () => (await api('GET', `/v1/schedules/${ID}`)).data.paused === false, {what: 'resumed (API)'});
    await until(async () => (await p.locator('#sched-state .badge').innerText()) === 'active', {what: 'active (UI)'});
    await until(async () => (await historyTypes(p))[0] === 'resumed', {what: 'the resumed event'});
    assert.deepEqual(await historyTypes(p), ['resumed', 'paused', 'created']);
    assert.match(await p.locator('#sched-history tr.sh-row[data-type="resumed"] .sh-text').innerText(), new RegExp(`resumed; next due \\d{4}-\\d{2}-\\d{2} ${far.clock} UTC\\+[12]`));
    await p.close();
  });

  test('Trigger now: confirmed, the execution in the history linking to its page; again while it runs: the 409\'s detail', async () => {
    const p = watch(await ctx.newPage(), [/status of 409/]);
    await p.goto(`${base}/ui/schedules/${ID}`);
    await p.locator('#sched-history tr.sh-row').first().waitFor();

    // Escape closes the confirmation and nothing starts.
    await p.locator('#action-trigger').click();
    const dlg = p.locator('dialog.dialog-confirm');
    await dlg.waitFor();
    assert.equal(await p.evaluate(() => document.activeElement && document.activeElement.dataset.action), 'confirm', 'the focus in the dialog');
    assert.match(await dlg.innerText(), /Start nap now\?[\s\S]*ui-nightly:<now>[\s\S]*Overlap skip/);
    await p.keyboard.press('Escape');
    await dlg.waitFor({state: 'detached'});
    assert.equal(await p.evaluate(() => document.activeElement && document.activeElement.id), 'action-trigger', 'the focus back on the button');
    assert.equal((await api('GET', '/v1/executions')).data.executions.length, 0);

    await p.locator('#action-trigger').click();
    await dlg.waitFor();
    await dlg.locator('[data-action="confirm"]').click();
    await dlg.waitFor({state: 'detached'});
    const ev = p.locator('#sched-history tr.sh-row[data-type="triggered"]');
    await ev.waitFor();
    const link = ev.locator('a.exec-link');
    triggered = await link.innerText();
    assert.match(triggered, /^ui-nightly:\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$/);
    assert.equal((await api('GET', `/v1/executions/${encodeURIComponent(triggered)}`)).data.status, 'running');
    assert.equal(await ev.locator('.sh-text').innerText(), `triggered by hand: started ${triggered}`);
    // Its executions: this one, running.
    const item = p.locator(`#sched-executions li[data-id="${triggered}"]`);
    await until(async () => (await item.getAttribute('data-status')) === 'running', {what: 'its status in the executions card'});
    assert.equal(await p.locator('#fact-last').innerText(), triggered);
    // "all of them": the executions list by the schedule's tag, which Keel sets on each.
    assert.equal(await p.locator('#sched-all-executions').getAttribute('href'), `/ui/executions?tag=keel.schedule:${ID}`);
    assert.deepEqual((await api('GET', `/v1/executions?tag=keel.schedule:${ID}`)).data.executions.map((x) => x.id), [triggered]);

    await link.click();
    await p.waitForURL((u) => decodeURIComponent(u.pathname) === `/ui/executions/${triggered}`);
    await until(async () => (await p.locator('h1.exec-id').innerText().catch(() => '')) === triggered, {what: 'the execution page'});
    await p.goBack();
    await p.locator('#action-trigger').waitFor();

    // The same second would be the same execution (200): the second trigger waits for the next one.
    const second = Date.parse(triggered.slice(ID.length + 1));
    await until(() => Date.now() >= second + 1000, {what: 'the next second'});
    await p.locator('#action-trigger').click();
    await dlg.waitFor();
    await dlg.locator('[data-action="confirm"]').click();
    const problem = dlg.locator('.problem');
    await problem.waitFor();
    const text = await problem.innerText();
    assert.match(text, /Previous execution still runs/);
    assert.match(text, /409/);
    assert.ok(text.includes(`schedule "${ID}" has overlap "skip" and its execution "${triggered}" still runs; nothing was started`), text);
    await shot(p, 'schedule-trigger-409.png');
    await p.keyboard.press('Escape');
    await dlg.waitFor({state: 'detached'});
    // The refused start is in the history too.
    const skipped = p.locator('#sched-history tr.sh-row[data-type="skipped"]');
    await skipped.waitFor();
    assert.match(await skipped.innerText(), new RegExp(`${triggered.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} still runs \\(overlap skip\\)`));
    assert.equal(await skipped.locator('a.exec-link').getAttribute('href'), `/ui/executions/${encodeURIComponent(triggered)}`);
    assert.equal((await api('GET', '/v1/executions')).data.executions.length, 1, 'nothing else started');
    await p.close();
  });

  test('Delete: confirmed, then gone from the list (the API answers 404); its execution stays', async () => {
    const p = watch(await ctx.newPage());
    await p.goto(`${base}/ui/schedules/${ID}`);
    await p.locator('#action-delete').click();
    const dlg = p.locator('dialog.dialog-confirm');
    await dlg.waitFor();
    assert.match(await dlg.innerText(), /Delete schedule ui-nightly\?[\s\S]*executions it started stay/);
    await dlg.locator('[data-action="confirm"]').click();
    await p.waitForURL((u) => u.pathname === '/ui/schedules');
    await p.locator('.empty-state', {hasText: 'No schedules yet'}).waitFor();
    assert.equal(await p.locator(`tr[data-id="${ID}"]`).count(), 0);
    assert.equal(await status(`/v1/schedules/${ID}`), 404);
    assert.equal(await status(`/v1/executions/${encodeURIComponent(triggered)}`), 200);
    await api('POST', `/v1/executions/${encodeURIComponent(triggered)}/terminate`, {reason: 'end of the test'});
    await p.close();
  });

  test('the list pages by next_cursor; a schedule named "new" has a page apart from the form\'s', async () => {
    // February 29th: none fires during the test.
    for (const id of ['alpha', 'beta', 'new']) await api('POST', '/v1/schedules', {id, workflow: 'report', cron: '0 0 29 2 *'});
    const p = watch(await ctx.newPage());
    await p.goto(`${base}/ui/schedules?limit=2`);
    const ids = () => p.locator('table.sched-table tbody tr').evaluateAll((rs) => rs.map((r) => r.dataset.id));
    await p.locator('table.sched-table tbody tr').first().waitFor();
    assert.deepEqual(await ids(), ['alpha', 'beta']);
    assert.match(await p.locator('tr[data-id="alpha"] .c-cron').innerText(), /yearly on February 29 at 00:00 \(leap years\)/);
    await p.locator('#page-next').click();
    await until(async () => JSON.stringify(await ids()) === '["new"]', {what: 'the second page'});
    assert.match(new URL(p.url()).search, /cursor=/, 'the page is in the URL');
    assert.equal(await p.locator('#page-next').isDisabled(), true);
    await p.locator('tr[data-id="new"] a.id-link').click();
    await p.waitForURL((u) => u.pathname === '/ui/schedules/%6Eew');
    await p.locator('h1.exec-id').waitFor();
    assert.equal(await p.locator('h1.exec-id').innerText(), 'new');
    await p.reload();
    await p.locator('h1.exec-id').waitFor();
    assert.equal(await p.locator('h1.exec-id').innerText(), 'new');
    await p.goto(`${base}/ui/schedules/new`);
    await p.locator('form.sched-form').waitFor();
    await p.close();
  });

  test('the next due times mark a daylight-saving shift day', async () => {
    // Sundays of March and October at 02:30 in Berlin: any five in a row hold the last Sunday
    // of one of those months, when the clocks change. Paused: nothing starts meanwhile.
    await api('POST', '/v1/schedules', {id: 'dst', workflow: 'report', cron: '30 2 * 3,10 0', timezone: 'Europe/Berlin'});
    await api('POST', '/v1/schedules/dst/pause');
    const p = watch(await ctx.newPage());
    await p.goto(`${base}/ui/schedules/dst`);
    await p.locator('#next-due tbody tr').first().waitFor();
    assert.equal(await p.locator('#next-due tbody tr').count(), 5);
    assert.ok(await p.locator('#next-due tr[data-shift="true"]').count() >= 1, 'a shift day among them');
    assert.match(await p.locator('#next-due .dst-mark').first().innerText(), /^clocks go (forward|back) this day: UTC\+[12] → UTC\+[12]$/);
    assert.equal(await p.locator('#fact-cron .cron-reading').count(), 0, 'no reading of months and weekdays together');
    await shot(p, 'schedule-dst.png');
    await p.close();
  });

  test('phone width in dark mode: no sideways scrolling, the nav fits, readable text', async () => {
    const dark = await stack.browser.newContext({viewport: {width: 375, height: 812}, deviceScaleFactor: 2, hasTouch: true, colorScheme: 'dark', timezoneId: VIEWER_ZONE});
    try {
      const p = watch(await dark.newPage(), [/status of 422/]);
      const wide = () => p.evaluate(() => [document.documentElement.scrollWidth - document.documentElement.clientWidth,
        (() => {
          const n = document.querySelector('.mainnav');
          return n.scrollWidth - n.clientWidth;
        })()]);
      for (const [url, ready, file] of [
        ['/ui/schedules', 'table.sched-table tbody tr', 'phone-schedules-dark.png'],
        ['/ui/schedules/dst', '#next-due .dst-mark', 'phone-schedule-dark.png'],
      ]) {
        await p.goto(base + url);
        await p.locator(ready).first().waitFor();
        const [overflow, nav] = await wide();
        assert.ok(overflow <= 0, `${url} scrolls sideways by ${overflow}px`);
        assert.ok(nav <= 0, `${url}: the nav is ${nav}px too wide`);
        await p.screenshot({path: path.join(ARTIFACTS, file), fullPage: true});
      }
      for (const [what, loc] of [['the paused badge', p.locator('#sched-state .badge')], ['the shift mark', p.locator('#next-due .dst-mark').first()],
        ['a paused event', p.locator('#sched-history .ev-type.tone-warn').first()], ['the viewer\'s time', p.locator('#fact-next .due-sub')]]) {
        const ratio = await contrastOf(loc);
        assert.ok(ratio >= 4.5, `${what}: contrast ${ratio.toFixed(2)} in dark mode`);
      }
      await p.goto(`${base}/ui/schedules`);
      await p.locator('tr[data-id="alpha"]').waitFor();
      for (const [what, loc] of [['the cron reading', p.locator('tr[data-id="alpha"] .cron-reading')], ['the due time\'s line', p.locator('tr[data-id="alpha"] .due-sub')]]) {
        const ratio = await contrastOf(loc);
        assert.ok(ratio >= 4.5, `${what}: contrast ${ratio.toFixed(2)} in dark mode`);
      }
      // The form and its field error.
      await p.goto(`${base}/ui/schedules/new`);
      await p.locator('#sched-workflow option[value="report"]').waitFor({state: 'attached'});
      await p.locator('#sched-id').fill('phone');
      await p.locator('#sched-workflow').selectOption('report');
      await p.locator('#sched-cron').fill('0 0 30 2 *');
      assert.equal(await p.locator('#sched-cron-reading').innerText(), '', 'no reading of a date that never comes');
      await p.locator('#sched-create').click();
      await p.locator('#sched-cron-error').waitFor();
      assert.match(await p.locator('#sched-cron-error').innerText(), /never fires/);
      const [overflow] = await wide();
      assert.ok(overflow <= 0, `the form scrolls sideways by ${overflow}px`);
      const ratio = await contrastOf(p.locator('#sched-cron-error li'));
      assert.ok(ratio >= 4.5, `the field error: contrast ${ratio.toFixed(2)} in dark mode`);
      await p.screenshot({path: path.join(ARTIFACTS, 'phone-schedule-form-dark.png'), fullPage: true});
    } finally {
      await dark.close();
    }
  });

  test('no console errors or page errors on any page', (t) => {
    let errors = consoleErrors;
    if (pgStartTime() !== pgStarted) {
      errors = errors.filter((e) => !/status of 503|ERR_CONNECTION_REFUSED/.test(e));
      t.diagnostic(`PostgreSQL was restarted during the run; ${consoleErrors.length - errors.length} 503 answers ignored`);
    }
    assert.deepEqual(errors, []);
  });
});
