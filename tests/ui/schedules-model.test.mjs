// Unit tests of what the schedules pages derive from the API's data (web-ui/js/schedules-model.mjs):
// no browser, no keeld. Table-driven: each case is one row.
import assert from 'node:assert/strict';
import {test} from 'node:test';

import {
  cronReading,
  errorsByField,
  fmtInZone,
  knownZone,
  mergeNewer,
  offsetShift,
  offsetText,
  parseTags,
  scheduleEventParts,
  scheduleEventText,
  scheduleEventTone,
  scheduleExecutions,
  schedulePath,
  shiftText,
  zonedParts,
} from '../../web-ui/js/schedules-model.mjs';

test('cron, read aloud: the common shapes, and null wherever a reading could mislead', () => {
  const cases = [
    // [expression, reading]
    ['* * * * *', 'every minute'],
    ['*/5 * * * *', 'every 5 minutes'],
    ['*/15 * * * *', 'every 15 minutes'],
    ['*/7 * * * *', null], // :56 to :00 is 4 minutes: not "every 7 minutes"
    ['30 2 * * *', 'daily at 02:30'],
    ['  30   2 * * *  ', 'daily at 02:30'],
    ['0 9,17 * * *', 'daily at 09:00 and 17:00'],
    ['0 */6 * * *', 'daily at 00:00, 06:00, 12:00 and 18:00'],
    ['0 */2 * * *', 'every 2 hours at :00'],
    ['5 * * * *', 'every hour at :05'],
    ['0,30 * * * *', 'every hour at :00 and :30'],
    ['5/15 * * * *', 'every hour at :05, :20, :35 and :50'],
    ['*/15 9-17 * * 1-5', 'every 15 minutes from 09:00 to 17:45 on weekdays'],
    ['*/10 * * * 1', 'every 10 minutes on Mondays'],
    ['0 9 * * 1-5', 'weekdays at 09:00'],
    ['0 9 * * mon-fri', 'weekdays at 09:00'],
    ['0 9 * * MON-FRI', 'weekdays at 09:00'],
    ['0 10 * * 6,0', 'weekends at 10:00'],
    ['0 10 * * sat,sun', 'weekends at 10:00'],
    ['0 10 * * 6,7', 'weekends at 10:00'], // 7 is Sunday
    ['15 8 * * 1', 'every Monday at 08:15'],
    ['0 12 * * 0,7', 'every Sunday at 12:00'],
    ['0 9 * * 1,3,5', 'every Monday, Wednesday and Friday at 09:00'],
    ['0 9 * * 0-6', 'daily at 09:00'],
    ['0 0 1 * *', 'monthly on day 1 at 00:00'],
    ['0 0 1,15 * *', 'monthly on days 1 and 15 at 00:00'],
    ['0 0 31 * *', 'monthly on day 31 at 00:00 (in months that have it)'],
    ['0 0 1 1 *', 'yearly on January 1 at 00:00'],
    ['30 6 24 dec *', 'yearly on December 24 at 06:30'],
    ['0 0 29 2 *', 'yearly on February 29 at 00:00 (leap years)'],
    ['0 0 31 12 *', 'yearly on December 31 at 00:00'],
    ['0 0 30 2 *', null], // never fires (keeld refuses it)
    ['0 0 31 4 *', null],
    ['@hourly', 'every hour at :00'],
    ['@daily', 'daily at 00:00'],
    ['@DAILY', 'daily at 00:00'],
    ['@midnight', 'daily at 00:00'],
    ['@weekly', 'every Sunday at 00:00'],
    ['@monthly', 'monthly on day 1 at 00:00'],
    ['@yearly', 'yearly on January 1 at 00:00'],
    ['@annually', 'yearly on January 1 at 00:00'],
    // Not read: both day fields restricted (either matches), months alone, minutes of an hour,
    // steps in day fields, too many times, and anything keeld would refuse.
    ['0 0 1 * 1', null],
    ['0 0 1-7 * mon', null],
    ['0 0 * 1 *', null],
    ['* 9 * * *', null],
    ['0 0 */2 * *', null],
    ['0 9 * * */2', null],
    ['0,10,20,30,40 9,17 * * *', null],
    ['0 24 * * *', null],
    ['60 * * * *', null],
    ['0 0 0 * *', null],
    ['0 0 * 13 *', null],
    ['0 0 * * 8', null],
    ['0 0 * * foo', null],
    ['5-1 * * * *', null],
    ['1 2 3', null],
    ['0 0 * * * *', null],
    ['@reboot', null],
    ['', null],
    [null, null],
  ];
  for (const [expr, want] of cases) assert.equal(cronReading(expr), want, JSON.stringify(expr));
});

test('a time in a zone: its civil time and offset, seconds only when there are some', () => {
  const cases = [
    // [instant, zone, text]
    ['2026-12-06T01:30:00Z', 'Europe/Berlin', '2026-12-06 02:30 UTC+1'],
    ['2026-07-06T01:30:00Z', 'Europe/Berlin', '2026-07-06 03:30 UTC+2'],
    ['2026-12-06T01:30:00Z', 'UTC', '2026-12-06 01:30 UTC'],
    ['2026-12-06T01:30:07Z', 'UTC', '2026-12-06 01:30:07 UTC'],
    ['2026-12-06T01:30:00Z', 'America/New_York', '2026-12-05 20:30 UTC-5'],
    ['2026-12-06T01:30:00Z', 'Asia/Kolkata', '2026-12-06 07:00 UTC+5:30'],
    ['2026-12-06T01:30:00Z', 'Asia/Kathmandu', '2026-12-06 07:15 UTC+5:45'],
    ['2026-12-06T01:30:00Z', 'America/St_Johns', '2026-12-05 22:00 UTC-3:30'],
    ['2026-12-31T23:30:00Z', 'Pacific/Kiritimati', '2027-01-01 13:30 UTC+14'],
    ['2026-12-06T01:30:00Z', 'Mars/Olympus_Mons', '2026-12-06 01:30 UTC (zone Mars/Olympus_Mons unknown to this browser)'],
  ];
  for (const [iso, zone, want] of cases) assert.equal(fmtInZone(Date.parse(iso), zone), want, `${iso} in ${zone}`);
  assert.equal(fmtInZone(Date.parse('2026-12-06T01:30:00Z'), 'Europe/Berlin', {withOffset: false}), '2026-12-06 02:30');
  assert.equal(fmtInZone(null, 'UTC'), '—');
  assert.deepEqual(zonedParts(Date.parse('2026-03-29T00:59:59Z'), 'Europe/Berlin'), {y: 2026, mo: 3, d: 29, hh: 1, mm: 59, ss: 59, offset: 60});
  assert.deepEqual(zonedParts(Date.parse('2026-03-29T01:00:00Z'), 'Europe/Berlin'), {y: 2026, mo: 3, d: 29, hh: 3, mm: 0, ss: 0, offset: 120});
  assert.equal(zonedParts(0, 'Nowhere/Else'), null);
  assert.equal(knownZone('Europe/Berlin'), true);
  assert.equal(knownZone('Nowhere/Else'), false);
  assert.equal(knownZone(''), false);
  for (const [min, want] of [[0, 'UTC'], [60, 'UTC+1'], [-300, 'UTC-5'], [330, 'UTC+5:30'], [-210, 'UTC-3:30'], [840, 'UTC+14']])
    assert.equal(offsetText(min), want, String(min));
});

test('daylight-saving shift days, told from the change of offset within the civil day', () => {
  const cases = [
    // [instant, zone, text ('' when the day has one offset)]
    // Europe/Berlin springs forward on 2026-03-29 (02:00 -> 03:00) and falls back on 2026-10-25.
    ['2026-03-29T01:00:00Z', 'Europe/Berlin', 'clocks go forward this day: UTC+1 → UTC+2'],
    ['2026-03-28T22:00:00Z', 'Europe/Berlin', ''], // 23:00 local on the day before
    ['2026-03-29T21:59:00Z', 'Europe/Berlin', 'clocks go forward this day: UTC+1 → UTC+2'], // 23:59 local, the same day
    ['2026-03-30T01:00:00Z', 'Europe/Berlin', ''],
    ['2026-10-25T00:30:00Z', 'Europe/Berlin', 'clocks go back this day: UTC+2 → UTC+1'],
    ['2026-10-26T00:30:00Z', 'Europe/Berlin', ''],
    // America/New_York: 2026-03-08 and 2026-11-01.
    ['2026-03-08T15:00:00Z', 'America/New_York', 'clocks go forward this day: UTC-5 → UTC-4'],
    ['2026-11-01T15:00:00Z', 'America/New_York', 'clocks go back this day: UTC-4 → UTC-5'],
    // No daylight saving at all.
    ['2026-03-29T01:00:00Z', 'UTC', ''],
    ['2026-03-29T01:00:00Z', 'Asia/Tokyo', ''],
    ['2026-03-29T01:00:00Z', 'Nowhere/Else', ''],
  ];
  for (const [iso, zone, want] of cases) {
    assert.equal(shiftText(offsetShift(Date.parse(iso), zone)), want, `${iso} in ${zone}`);
  }
});

test('history events as sentences, with links to the executions that exist', () => {
  const inBerlin = (iso) => fmtInZone(Date.parse(iso), 'Europe/Berlin');
  const ev = (type, extra = {}) => ({seq: 1, type, due_at: null, execution_id: null, data: {}, at: '2026-12-05T10:00:00.000Z', ...extra});
  const X = 'nightly:2026-12-06T01:30:00Z';
  const cases = [
    // [event, text, tone, the ids linked]
    [ev('created', {due_at: '2026-12-06T01:30:00.000Z'}), 'created; first due 2026-12-06 02:30 UTC+1', 'neutral', []],
    [ev('created'), 'created; it never fires', 'neutral', []],
    [ev('started', {due_at: '2026-12-06T01:30:00.000Z', execution_id: X}), `started ${X} (due 2026-12-06 02:30 UTC+1)`, 'good', [X]],
    [ev('triggered', {due_at: '2026-12-05T10:00:04.000Z', execution_id: 'nightly:2026-12-05T10:00:04Z'}), 'triggered by hand: started nightly:2026-12-05T10:00:04Z', 'good', ['nightly:2026-12-05T10:00:04Z']],
    [ev('skipped', {due_at: '2026-12-07T01:30:00.000Z', data: {reason: 'overlap', running: X}}), `skipped the start due 2026-12-07 02:30 UTC+1: ${X} still runs (overlap skip)`, 'warn', [X]],
    [ev('skipped', {data: {reason: 'overlap', running: X}}), `skipped: ${X} still runs (overlap skip)`, 'warn', [X]],
    [ev('skipped', {data: {reason: 'maintenance'}}), 'skipped (maintenance)', 'warn', []],
    [ev('missed', {due_at: '2026-12-01T01:30:00.000Z', data: {count: 4, first: '2026-12-01T01:30:00Z', last: '2026-12-04T01:30:00Z'}}),
      'missed 4 due times: 2026-12-01 02:30 UTC+1 to 2026-12-04 02:30 UTC+1 (after downtime only the latest due time starts)', 'warn', []],
    [ev('missed', {due_at: '2026-12-01T01:30:00.000Z', data: {count: 1, first: '2026-12-01T01:30:00Z', last: '2026-12-01T01:30:00Z'}}),
      'missed 1 due time: 2026-12-01 02:30 UTC+1 (after downtime only the latest due time starts)', 'warn', []],
    [ev('start_failed', {execution_id: X, data: {message: 'the workflow is not registered'}}), `could not start ${X}: the workflow is not registered`, 'bad', []],
    [ev('paused'), 'paused: nothing starts until it is resumed', 'warn', []],
    [ev('resumed', {due_at: '2026-12-06T01:30:00.000Z'}), 'resumed; next due 2026-12-06 02:30 UTC+1', 'neutral', []],
    [ev('resumed'), 'resumed', 'neutral', []],
    [ev('renamed', {data: {to: 'x'}}), 'renamed {"to":"x"}', 'neutral', []],
  ];
  for (const [e, text, tone, links] of cases) {
    assert.equal(scheduleEventText(e, inBerlin), text, e.type);
    assert.equal(scheduleEventTone(e.type), tone, e.type);
    assert.deepEqual(scheduleEventParts(e, inBerlin).filter((p) => p && p.execution).map((p) => p.execution), links, `${e.type}: links`);
  }
  // An id that never started is shown, not linked.
  assert.deepEqual(scheduleEventParts(ev('start_failed', {execution_id: X}))[1], {code: X});
  // Without a formatter, due times stay as the API wrote them.
  assert.equal(scheduleEventText(ev('resumed', {due_at: '2026-12-06T01:30:00.000Z'})), 'resumed; next due 2026-12-06T01:30:00.000Z');
});

test('the executions of a schedule: those its history says it started, newest first, each once', () => {
  const events = [
    {seq: 9, type: 'triggered', execution_id: 's:2026-12-05T10:00:09Z', due_at: '2026-12-05T10:00:09.000Z', at: 'a9', data: {}},
    {seq: 8, type: 'skipped', execution_id: null, due_at: '2026-12-05T10:00:00.000Z', at: 'a8', data: {reason: 'overlap', running: 's:2026-12-05T09:00:00Z'}},
    {seq: 7, type: 'start_failed', execution_id: 's:2026-12-05T09:30:00Z', due_at: null, at: 'a7', data: {}},
    {seq: 6, type: 'started', execution_id: 's:2026-12-05T09:00:00Z', due_at: '2026-12-05T09:00:00.000Z', at: 'a6', data: {}},
    {seq: 5, type: 'started', execution_id: 's:2026-12-05T09:00:00Z', due_at: '2026-12-05T09:00:00.000Z', at: 'a5', data: {}},
    {seq: 4, type: 'paused', execution_id: null, due_at: null, at: 'a4', data: {}},
    {seq: 1, type: 'created', execution_id: null, due_at: '2026-12-05T09:00:00.000Z', at: 'a1', data: {}},
  ];
  assert.deepEqual(scheduleExecutions(events), [
    {id: 's:2026-12-05T10:00:09Z', type: 'triggered', at: 'a9', due_at: '2026-12-05T10:00:09.000Z'},
    {id: 's:2026-12-05T09:00:00Z', type: 'started', at: 'a6', due_at: '2026-12-05T09:00:00.000Z'},
  ]);
  assert.deepEqual(scheduleExecutions([]), []);
  assert.deepEqual(scheduleExecutions(null), []);
});

test('a newer first page of history joined to the events held', () => {
  const e = (seq) => ({seq, type: 'started'});
  const cases = [
    // [held seqs, page seqs, next_cursor, result seqs, gap]
    [[], [5, 4, 3], '3', [5, 4, 3], false],
    [[5, 4, 3], [5, 4, 3], '3', [5, 4, 3], false],
    [[5, 4, 3], [7, 6, 5], '5', [7, 6, 5, 4, 3], false],
    [[5, 4, 3], [7, 6], null, [7, 6, 5, 4, 3], false],
    // The whole page is newer and there is more: events in between are missing.
    [[5, 4, 3], [30, 29, 28], '28', [30, 29, 28], true],
  ];
  for (const [held, page, cursor, want, gap] of cases) {
    const r = mergeNewer(held.map(e), page.map(e), cursor);
    assert.deepEqual(r.events.map((x) => x.seq), want, JSON.stringify([held, page]));
    assert.equal(r.gap, gap, JSON.stringify([held, page]));
  }
});

test('the form: tags one "key: value" a line, and the API\'s 422 errors by field', () => {
  const cases = [
    // [text, tags or error]
    ['', {tags: {}}],
    ['team: reports', {tags: {team: 'reports'}}],
    ['team: reports\n\n  tier:gold  \n', {tags: {team: 'reports', tier: 'gold'}}],
    ['url: http://example.com:8080/x', {tags: {url: 'http://example.com:8080/x'}}],
    ['a.b/c-d_e: 1', {tags: {'a.b/c-d_e': '1'}}],
    ['team reports', {error: 'line 1: write key: value'}],
    ['ok: 1\nbad key: 2', {error: 'line 2: a key is 1-64 characters of A-Z a-z 0-9 _ . - /'}],
    ['team:', {error: 'line 1: the tag "team" has no value'}],
    ['team: a\nteam: b', {error: 'line 2: the tag "team" is there twice'}],
  ];
  for (const [text, want] of cases) assert.deepEqual(parseTags(text), want, JSON.stringify(text));

  const problem = {
    type: 'urn:keel:problem:validation', title: 'Invalid request', status: 422, detail: 'the request body has errors',
    errors: [
      {pointer: '/cron', message: 'field 2 (hour): 24 is out of range 0-23'},
      {pointer: '/timezone', message: 'unknown time zone "Mars/Base"'},
      {pointer: '/tags/customer', message: 'must be a string of 1-256 bytes'},
      {pointer: '/color', message: 'is not a member'},
      {pointer: '', message: 'must be an object'},
      {parameter: 'limit', message: 'must be an integer'},
    ],
  };
  assert.deepEqual(errorsByField(problem), {
    fields: {
      cron: ['field 2 (hour): 24 is out of range 0-23'],
      timezone: ['unknown time zone "Mars/Base"'],
      tags: ['customer: must be a string of 1-256 bytes'],
    },
    other: [problem.errors[3], problem.errors[4], problem.errors[5]],
  });
  assert.deepEqual(errorsByField({title: 'x'}), {fields: {}, other: []});
  assert.deepEqual(errorsByField(undefined), {fields: {}, other: []});
});

test('a schedule\'s path: encoded, and "new" apart from the create form\'s', () => {
  const create = /^\/ui\/schedules\/new\/?$/; // app.mjs's route of the form
  for (const [id, want] of [['nightly', '/ui/schedules/nightly'], ['a_b-C9', '/ui/schedules/a_b-C9'], ['new', '/ui/schedules/%6Eew'], ['New', '/ui/schedules/New']]) {
    const p = schedulePath(id);
    assert.equal(p, want);
    const u = new URL(p, 'http://keel.test');
    assert.equal(create.test(u.pathname), false, `${id} is not the form`);
    assert.equal(decodeURIComponent(u.pathname.split('/').pop()), id);
  }
});
