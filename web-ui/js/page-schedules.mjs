// Schedules: the list (by id, pages by next_cursor), one schedule (its next due times, input and
// tags, Pause / Resume / Trigger now / Delete, its history and the executions it started) and
// the create form (422 errors next to their fields). Times are shown in the schedule's zone,
// in the viewer's time and, where it helps, in UTC.
import {ApiError, Keel, api, isAbort} from './api.mjs';
import {confirmAction, problemView} from './dialogs.mjs';
import {badge, copyButton, h, icon, paths, preserveFocus, spinner, toast} from './dom.mjs';
import {fmtAbs, fmtRelative, isUtc, ms, timeFact} from './format.mjs';
import {jsonPanel} from './json-view.mjs';
import {
  cronReading, errorsByField, fmtInZone, knownZone, mergeNewer, offsetShift, overlapText, parseTags, scheduleEventParts,
  scheduleEventTone, scheduleExecutions, schedulePath, scheduleState, shiftText,
} from './schedules-model.mjs';

const e = encodeURIComponent;
const PAGE_SIZE = 50;
const HISTORY_PAGE = 50;
const POLL_MS = 3000;
const STATUS_READS = 4; // executions' statuses read at once

/** The schedules API (api.mjs's client underneath: token, problems, retries of reads). */
const Sched = {
  list: ({cursor = '', limit = PAGE_SIZE} = {}, signal) =>
    api(`/v1/schedules?limit=${limit}${cursor ? '&cursor=' + e(cursor) : ''}`, {signal}).then((r) => r.data),
  get: (id, signal) => api(`/v1/schedules/${e(id)}`, {signal}).then((r) => r.data),
  history: (id, cursor, signal) =>
    api(`/v1/schedules/${e(id)}/history?limit=${HISTORY_PAGE}${cursor != null ? '&cursor=' + e(cursor) : ''}`, {signal}).then((r) => r.data),
  create: (body) => api('/v1/schedules', {method: 'POST', body}),
  act: (id, verb) => api(`/v1/schedules/${e(id)}/${verb}`, {method: 'POST'}),
  remove: (id) => api(`/v1/schedules/${e(id)}`, {method: 'DELETE'}),
};

export const browserZone = () => {
  try {
    return Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC';
  } catch {
    return 'UTC';
  }
};

// ---- small parts --------------------------------------------------------------------------

function tooltip(t, zone) {
  return `${fmtInZone(t, zone)} (${zone})\n${fmtAbs(t, {millis: false, asUtc: false})} local\n${new Date(t).toISOString()}`;
}

/** The viewer's time (local, or UTC by the top bar's toggle). */
function viewerTime(t) {
  return isUtc() ? fmtAbs(t, {millis: false}) : `${fmtAbs(t, {millis: false})} your time`;
}

const DAY_MS = 86_400_000;

/**
 * "in 3 min", kept fresh by the app's timer; beyond 30 days (where fmtRelative gives the date,
 * which the cell shows already) "in 92 d", not refreshed.
 */
function relTime(t) {
  const far = Math.abs(t - Date.now()) >= 30 * DAY_MS;
  if (!far) return h('span', {class: 'rel-time', 'data-t': t}, fmtRelative(t));
  const d = Math.floor(Math.abs(t - Date.now()) / DAY_MS);
  return h('span', {class: 'rel-far'}, t > Date.now() ? `in ${d} d` : `${d} d ago`);
}

/** The raw expression, always, and a reading under it when it is sure. */
function cronCell(cron) {
  const reading = cronReading(cron);
  return h('div', {class: 'cron-cell'}, h('code', {class: 'cron-expr'}, cron),
    reading ? h('div', {class: 'cron-reading small'}, reading) : null);
}

function stateBadge(s, extra) {
  const st = scheduleState(s);
  return h('span', {class: ['badge', `st-${st}`, extra], 'data-status': st}, h('span', {class: 'dot', 'aria-hidden': 'true'}), st);
}

/** A due time: in the schedule's zone, then the viewer's time and "in 3 min" under it. */
function dueCell(iso, zone) {
  const t = ms(iso);
  if (t == null) return h('span', {class: 'muted'}, 'never');
  return h('div', {class: 'due-cell', 'data-t': t},
    h('time', {class: 'due-zone', datetime: iso, title: tooltip(t, zone)}, fmtInZone(t, zone)),
    h('div', {class: 'due-sub small'}, h('span', {class: 'due-local'}, viewerTime(t)), ' · ', relTime(t)));
}

function execLink(id, fk) {
  return h('a', {href: paths.execution(id), class: 'mono exec-link', 'data-fk': fk || null}, id);
}

function tagChips(tags) {
  const entries = Object.entries(tags || {});
  if (!entries.length) return h('span', {class: 'muted'}, 'none');
  return h('ul', {class: 'sched-tags', 'aria-label': 'Tags'},
    entries.map(([k, v]) => h('li', {class: 'sched-tag', 'data-key': k}, h('span', {class: 'sched-tag-k'}, k), h('span', {class: 'sched-tag-v'}, v))));
}

// ---- the list -----------------------------------------------------------------------------

function schedulesTable(list) {
  const rows = list.map((s) => {
    const next = s.next_due || [];
    return h('tr', {'data-id': s.id, 'data-state': scheduleState(s)},
      h('td', {class: 'c-sid', 'data-label': 'Schedule'},
        h('a', {href: schedulePath(s.id), class: 'mono id-link', 'data-fk': `s:${s.id}`}, s.id)),
      h('td', {class: 'c-state', 'data-label': 'State'}, stateBadge(s, 'badge-sm')),
      h('td', {class: 'c-swf', 'data-label': 'Workflow'},
        h('a', {href: paths.executions({workflow: s.workflow}), title: `The executions of ${s.workflow}`, 'data-fk': `w:${s.id}`}, s.workflow)),
      h('td', {class: 'c-cron', 'data-label': 'Cron'}, cronCell(s.cron)),
      h('td', {class: 'c-zone', 'data-label': 'Time zone'}, h('span', {class: 'mono small'}, s.timezone)),
      h('td', {class: 'c-overlap', 'data-label': 'Overlap'}, h('span', {class: 'mono small', title: overlapText(s.overlap)}, s.overlap)),
      h('td', {class: 'c-next', 'data-label': 'Next due'}, s.paused
        ? h('div', null, h('span', {class: 'muted small'}, 'paused; would be '), dueCell(s.next_due_at, s.timezone))
        : dueCell(s.next_due_at, s.timezone),
      next.length
        ? h('details', {class: 'due-more'}, h('summary', {'data-fk': `d:${s.id}`}, `next ${next.length}`),
          h('ol', {class: 'due-list'}, next.map((iso) => h('li', null, h('time', {datetime: iso, title: tooltip(ms(iso), s.timezone)}, fmtInZone(ms(iso), s.timezone))))))
        : null),
      h('td', {class: 'c-last', 'data-label': 'Last execution'},
        s.last_execution_id ? execLink(s.last_execution_id, `l:${s.id}`) : h('span', {class: 'muted'}, 'none yet')));
  });
  return h('div', {class: 'table-wrap'},
    h('table', {class: 'table sched-table'},
      h('caption', {class: 'sr-only'}, 'Schedules'),
      h('thead', null, h('tr', null,
        ['Schedule', 'State', 'Workflow', 'Cron', 'Time zone', 'Overlap', 'Next due', 'Last execution'].map((t) => h('th', {scope: 'col'}, t)))),
      h('tbody', null, rows)));
}

export async function renderSchedules(ctx) {
  ctx.title('Schedules');
  const q = ctx.query;
  const f = {cursor: q.get('cursor') || '', limit: Math.min(500, Math.max(1, Number.parseInt(q.get('limit'), 10) || PAGE_SIZE))};
  const cursorStack = [];
  const refreshBtn = h('button', {type: 'button', class: 'btn btn-secondary btn-sm', id: 'refresh'}, icon('refresh'), h('span', null, 'Refresh'));
  const updatedEl = h('span', {class: 'muted small'});
  const results = h('div', {class: 'results', 'aria-live': 'polite', 'aria-busy': 'true'}, spinner());
  const pager = h('nav', {class: 'pager', 'aria-label': 'Pages', hidden: true});
  ctx.root.append(
    h('div', {class: 'page-head'},
      h('div', null, h('h1', null, 'Schedules'),
        h('p', {class: 'subtitle'}, 'By id. Each starts its workflow at the times of its cron expression, read in its time zone.')),
      h('div', {class: 'head-actions'}, updatedEl, refreshBtn,
        h('a', {href: '/ui/schedules/new', class: 'btn btn-primary', id: 'new-schedule'}, h('span', null, 'New schedule')))),
    results, pager);

  const href = () => {
    const p = new URLSearchParams();
    if (f.limit !== PAGE_SIZE) p.set('limit', String(f.limit));
    if (f.cursor) p.set('cursor', f.cursor);
    return `/ui/schedules${String(p) ? '?' + p : ''}`;
  };

  let seq = 0;
  let timer = null;
  async function load() {
    const my = ++seq;
    if (timer) clearTimeout(timer);
    timer = null;
    results.setAttribute('aria-busy', 'true');
    let page;
    try {
      page = await Sched.list(f, ctx.signal);
    } catch (err) {
      if (isAbort(err) || my !== seq || !ctx.alive) return;
      results.setAttribute('aria-busy', 'false');
      results.replaceChildren(problemView(err));
      return;
    }
    if (my !== seq || !ctx.alive) return;
    results.setAttribute('aria-busy', 'false');
    const list = page.schedules;
    if (!list.length)
      results.replaceChildren(h('div', {class: 'empty-state card'}, h('h2', null, f.cursor ? 'No more schedules' : 'No schedules yet'),
        h('p', null, h('a', {href: '/ui/schedules/new'}, 'Create one'), ' here, or with ', h('code', null, 'POST /v1/schedules'), '.')));
    else preserveFocus(results, () => results.replaceChildren(h('div', {class: 'card-flush'}, schedulesTable(list))));
    renderPager(list.length, page.next_cursor);
    updatedEl.textContent = `Updated ${fmtAbs(Date.now(), {millis: false}).slice(11)}`;
    // Read again once the earliest next due time has passed (its start moves it on).
    const soonest = Math.min(...list.filter((s) => !s.paused && s.next_due_at).map((s) => ms(s.next_due_at)));
    if (Number.isFinite(soonest)) timer = ctx.later(() => load(), Math.min(60_000, Math.max(2000, soonest - Date.now() + 1500)));
  }

  function renderPager(count, next) {
    const prev = h('button', {type: 'button', class: 'btn btn-secondary btn-sm', id: 'page-prev', disabled: !f.cursor}, cursorStack.length || !f.cursor ? '← Previous' : 'First page');
    prev.addEventListener('click', () => {
      f.cursor = cursorStack.length ? cursorStack.pop() : '';
      ctx.setUrl(href());
      load();
    });
    const nextBtn = h('button', {type: 'button', class: 'btn btn-secondary btn-sm', id: 'page-next', disabled: !next}, 'Next →');
    nextBtn.addEventListener('click', () => {
      cursorStack.push(f.cursor);
      f.cursor = next;
      ctx.setUrl(href());
      load();
    });
    pager.replaceChildren(h('span', {class: 'muted small'}, count ? `${count} schedule${count === 1 ? '' : 's'} on this page` : ''), h('span', {class: 'grow'}), prev, nextBtn);
    pager.hidden = !next && !f.cursor;
  }

  refreshBtn.addEventListener('click', () => load());
  await load();
}

// ---- one schedule -------------------------------------------------------------------------

export async function renderSchedule(ctx, id) {
  ctx.title(id);
  const crumbs = h('nav', {class: 'crumbs', 'aria-label': 'Breadcrumb'}, h('a', {href: '/ui/schedules'}, 'Schedules'),
    h('span', {'aria-hidden': 'true'}, '/'), h('span', {class: 'mono', 'aria-current': 'page'}, id));
  ctx.root.append(crumbs, spinner('Loading the schedule…'));

  const state = {s: null, events: [], older: null, statuses: new Map()};
  try {
    state.s = await Sched.get(id, ctx.signal);
    const page = await Sched.history(id, null, ctx.signal);
    state.events = page.events;
    state.older = page.next_cursor;
  } catch (err) {
    if (isAbort(err) || !ctx.alive) return;
    ctx.root.replaceChildren(crumbs, h('div', {class: 'empty-state card'},
      h('h1', null, err instanceof ApiError && err.status === 404 ? 'Schedule not found' : 'Could not load the schedule'),
      problemView(err), h('p', null, h('a', {href: '/ui/schedules'}, '← All schedules'))));
    return;
  }
  if (!ctx.alive) return;

  const head = h('div', {class: 'page-head sched-head'});
  const alertBox = h('div', {'aria-live': 'polite'});
  const facts = h('section', {class: 'card summary', 'aria-label': 'Schedule'});
  const dueCard = h('section', {class: 'card', id: 'next-due', 'aria-labelledby': 'next-due-h'});
  const io = h('section', {class: 'io-grid', 'aria-label': 'Input and tags'});
  const execCard = h('section', {class: 'card', id: 'sched-executions', 'aria-labelledby': 'sched-executions-h'});
  const historyCard = h('section', {class: 'card', id: 'sched-history', 'aria-labelledby': 'sched-history-h'});
  ctx.root.replaceChildren(crumbs, head, alertBox, facts, dueCard, io, execCard, historyCard);

  // The due times and history sentences in the schedule's zone.
  const inZone = (iso) => fmtInZone(ms(iso), state.s.timezone);

  // ---- actions
  let busy = false;
  async function pauseOrResume(verb) {
    if (busy) return;
    busy = true;
    // The button gives way to its counterpart (Pause to Resume), which then takes the focus.
    const focused = document.activeElement && document.activeElement.id === `action-${verb}`;
    alertBox.replaceChildren();
    try {
      const r = await Sched.act(id, verb);
      state.s = r.data;
      toast(verb === 'pause' ? 'Schedule paused' : 'Schedule resumed');
    } catch (err) {
      if (!ctx.alive) return;
      alertBox.replaceChildren(problemView(err));
    } finally {
      busy = false;
    }
    if (!ctx.alive) return;
    renderAll();
    if (focused) head.querySelector(state.s.paused ? '#action-resume' : '#action-pause')?.focus();
    poll(true);
  }

  function trigger() {
    const s = state.s;
    confirmAction({
      title: `Start ${s.workflow} now?`,
      message: `Starts the execution "${s.id}:<now>" with the schedule's input${s.paused ? ', although the schedule is paused' : ''}. ` +
        `Overlap ${overlapText(s.overlap)}. The next due time stays as it is.`,
      confirmLabel: 'Trigger now',
      iconName: 'play',
      run: async () => {
        const r = await Sched.act(id, 'trigger');
        toast(r.status === 201 ? `Started ${r.data.execution_id}` : `${r.data.execution_id} was started already this second`);
        poll(true);
      },
    });
  }

  function remove() {
    confirmAction({
      title: `Delete schedule ${id}?`,
      message: 'Nothing starts from it any more, and its history is deleted with it. The executions it started stay.',
      confirmLabel: 'Delete schedule',
      danger: true,
      iconName: 'x',
      run: async () => {
        await Sched.remove(id);
        toast(`Schedule ${id} deleted`);
        ctx.navigate('/ui/schedules');
      },
    });
  }

  // ---- rendering
  let headKey = '';
  function renderHead() {
    const s = state.s;
    const key = JSON.stringify([s.paused, s.workflow]);
    if (key === headKey) return;
    headKey = key;
    const buttons = [
      s.paused
        ? h('button', {type: 'button', class: 'btn btn-primary', id: 'action-resume', onclick: () => pauseOrResume('resume')}, icon('play'), h('span', null, 'Resume'))
        : h('button', {type: 'button', class: 'btn btn-secondary', id: 'action-pause', onclick: () => pauseOrResume('pause')}, icon('clockSmall'), h('span', null, 'Pause')),
      h('button', {type: 'button', class: 'btn btn-secondary', id: 'action-trigger', onclick: trigger}, icon('send'), h('span', null, 'Trigger now')),
      h('button', {type: 'button', class: 'btn btn-danger-outline', id: 'action-delete', onclick: remove}, icon('x'), h('span', null, 'Delete')),
    ];
    preserveFocus(head, () => head.replaceChildren(
      h('div', {class: 'head-main'},
        h('div', {class: 'title-row'}, h('h1', {class: 'mono exec-id'}, s.id), copyButton(() => s.id, 'Copy schedule id', 'copy-id'),
          h('span', {id: 'sched-state'}, stateBadge(s, 'badge-lg'))),
        h('p', {class: 'subtitle'}, 'Starts the latest version of workflow ', h('a', {href: paths.workflow(s.workflow), 'data-fk': 'wf'}, s.workflow),
          ' · ', h('a', {href: paths.executions({workflow: s.workflow}), 'data-fk': 'wf-x'}, `all executions of ${s.workflow}`))),
      h('div', {class: 'head-actions'}, buttons)));
  }

  // The facts and the due times are drawn again only when the schedule changed (its relative
  // times count on by themselves), so that a refresh does not disturb a reader selecting text.
  let factsKey = '';
  function renderFacts() {
    const s = state.s;
    const key = JSON.stringify(s);
    if (key === factsKey) return;
    factsKey = key;
    facts.replaceChildren(h('dl', {class: 'facts'},
      h('div', {class: 'wide'}, h('dt', null, 'Cron'), h('dd', {id: 'fact-cron'}, cronCell(s.cron))),
      h('div', null, h('dt', null, 'Time zone'), h('dd', {id: 'fact-zone'}, h('span', {class: 'mono'}, s.timezone),
        knownZone(s.timezone) ? null : h('div', {class: 'muted small'}, 'unknown to this browser: times below in UTC'))),
      h('div', null, h('dt', null, 'Overlap'), h('dd', {id: 'fact-overlap'}, h('span', {class: 'mono'}, s.overlap),
        h('div', {class: 'muted small'}, overlapText(s.overlap).replace(/^[a-z_]+: /, '')))),
      h('div', null, h('dt', null, 'State'), h('dd', null, stateBadge(s),
        s.paused ? h('div', {class: 'muted small'}, 'Resume makes it due again from then on') : null)),
      h('div', {class: 'wide'}, h('dt', null, 'Next due'), h('dd', {id: 'fact-next'}, dueCell(s.next_due_at, s.timezone))),
      h('div', null, h('dt', null, 'Last due'), h('dd', null, s.last_due_at ? dueCell(s.last_due_at, s.timezone) : h('span', {class: 'muted'}, 'none yet'))),
      h('div', null, h('dt', null, 'Last execution'), h('dd', {id: 'fact-last'}, s.last_execution_id ? execLink(s.last_execution_id, 'last') : h('span', {class: 'muted'}, 'none yet'))),
      h('div', null, h('dt', null, 'Created'), h('dd', null, timeFact(s.created_at))),
      h('div', null, h('dt', null, 'Updated'), h('dd', null, timeFact(s.updated_at)))));
  }

  let dueKey = '';
  function renderDue() {
    const s = state.s;
    const key = JSON.stringify([s.next_due, s.paused, s.timezone]);
    if (key === dueKey) return;
    dueKey = key;
    const times = (s.next_due || []).map((iso) => ({iso, t: ms(iso)}));
    const utcZone = /^(Etc\/)?(UTC|UCT|Zulu|Universal|GMT)$/.test(s.timezone);
    const body = times.length
      ? h('div', {class: 'table-wrap'}, h('table', {class: 'table due-table'},
        h('caption', {class: 'sr-only'}, `The next ${times.length} due times`),
        h('thead', null, h('tr', null, h('th', {scope: 'col', class: 'num'}, '#'), h('th', {scope: 'col'}, `In ${s.timezone}`), utcZone ? null : h('th', {scope: 'col'}, 'UTC'),
          h('th', {scope: 'col'}, isUtc() ? 'UTC (your setting)' : `Your time (${browserZone()})`), h('th', {scope: 'col'}, 'When'))),
        h('tbody', null, times.map(({iso, t}, i) => {
          const shift = offsetShift(t, s.timezone);
          return h('tr', {'data-t': t, 'data-due': iso, 'data-shift': shift ? 'true' : null},
            h('td', {class: 'num muted', 'data-label': '#'}, String(i + 1)),
            h('td', {class: 'c-zone-time', 'data-label': s.timezone},
              h('time', {datetime: iso, class: 'mono'}, fmtInZone(t, s.timezone)),
              shift ? h('div', {class: 'dst-mark small', title: 'The zone changes its offset from UTC on this day (daylight saving)'}, icon('alert'), shiftText(shift)) : null),
            utcZone ? null : h('td', {class: 'mono c-utc', 'data-label': 'UTC'}, iso.replace('T', ' ').replace(/:00Z$|Z$/, '').concat(' UTC')),
            h('td', {class: 'mono c-local', 'data-label': isUtc() ? '' : 'your time'}, fmtAbs(t, {millis: false})),
            h('td', {class: 'c-rel', 'data-label': 'When'}, relTime(t)));
        }))))
      : h('p', {class: 'muted pad'}, 'It never fires again.');
    preserveFocus(dueCard, () => dueCard.replaceChildren(
      h('div', {class: 'card-head'}, h('h2', {id: 'next-due-h'}, `Next ${times.length || ''} due times`.replace('  ', ' ')),
        h('span', {class: 'muted small'}, s.paused ? 'paused: nothing starts at these until it is resumed, and resuming makes it due again from then on' : 'from the API\'s next_due')),
      body));
  }

  let ioKey = '';
  function renderIO() {
    const s = state.s;
    const key = JSON.stringify([s.input, s.tags]);
    if (key === ioKey) return;
    ioKey = key;
    io.replaceChildren(jsonPanel('Input', s.input, {id: 'panel-input'}),
      h('section', {class: 'json-panel placeholder', 'data-panel': 'tags', id: 'panel-tags'},
        h('div', {class: 'json-panel-head'}, h('span', {class: 'panel-title'}, 'Tags'), h('span', {class: 'muted small'}, 'given to each execution it starts')),
        h('div', {class: 'pad'}, tagChips(s.tags))));
  }

  // History, newest first; "Show older events" follows next_cursor.
  const historyBody = h('tbody');
  const historyCount = h('span', {class: 'muted small'});
  const olderBtn = h('button', {type: 'button', class: 'btn btn-secondary btn-sm', id: 'history-older'}, 'Show older events');
  const olderRow = h('div', {class: 'history-earlier'}, olderBtn);
  historyCard.append(
    h('div', {class: 'card-head'}, h('h2', {id: 'sched-history-h'}, 'History'), historyCount, h('span', {class: 'grow'}), h('span', {class: 'muted small'}, 'newest first')),
    h('div', {class: 'table-wrap'}, h('table', {class: 'table sched-history-table'},
      h('thead', null, h('tr', null, h('th', {scope: 'col'}, 'Time'), h('th', {scope: 'col'}, 'Event'), h('th', {scope: 'col'}, 'What happened'))),
      historyBody)),
    olderRow);
  olderBtn.addEventListener('click', async () => {
    olderBtn.disabled = true;
    try {
      const page = await Sched.history(id, state.older, ctx.signal);
      const known = new Set(state.events.map((x) => x.seq));
      state.events.push(...page.events.filter((x) => !known.has(x.seq)));
      state.older = page.next_cursor;
    } catch (err) {
      if (isAbort(err) || !ctx.alive) return;
      toast(`Could not read older events: ${err.problem ? err.problem.title : err.message}`, 'error');
    } finally {
      olderBtn.disabled = false;
    }
    renderHistory();
    renderExecutions();
  });

  function eventRow(ev) {
    const t = ms(ev.at);
    const tone = scheduleEventTone(ev.type);
    return h('tr', {class: ['sh-row', `tone-${tone}`], 'data-seq': ev.seq, 'data-type': ev.type, 'data-execution': ev.execution_id || null},
      h('td', {class: 'c-evtime', 'data-label': 'Time'}, h('time', {datetime: ev.at, title: tooltip(t, state.s.timezone)}, fmtAbs(t, {millis: false})),
        h('span', {class: 'offset rel-time', 'data-t': t}, fmtRelative(t))),
      h('td', {'data-label': 'Event'}, h('span', {class: ['ev-type', `tone-${tone}`]}, ev.type)),
      h('td', {class: 'sh-text', 'data-label': 'What'}, scheduleEventParts(ev, inZone).map((p) =>
        typeof p === 'string' ? p : p.execution ? execLink(p.execution, `h:${ev.seq}`) : h('code', null, p.code))));
  }

  let historyKey = '';
  function renderHistory() {
    const key = JSON.stringify([state.events.length && state.events[0].seq, state.events.length, state.older, state.s.timezone]);
    if (key !== historyKey) {
      historyKey = key;
      preserveFocus(historyBody, () => historyBody.replaceChildren(...state.events.map(eventRow)));
    }
    historyCount.textContent = `${state.events.length} event${state.events.length === 1 ? '' : 's'}${state.older ? ' shown' : ''}`;
    olderRow.hidden = !state.older;
  }

  // Its executions: the ids its history names (its ids start with "<id>:"), each with its status.
  const execBody = h('div');
  // Every one of them, whatever the history still holds, is in the list by its schedule's tag.
  execCard.append(h('div', {class: 'card-head'}, h('h2', {id: 'sched-executions-h'}, 'Executions'),
    h('span', {class: 'muted small'}, 'the ones its history (as far as shown) says it started · ',
      h('a', {href: paths.executions({tag: `keel.schedule:${id}`}), id: 'sched-all-executions', 'data-fk': 'all-x'}, 'all of them'))), execBody);

  function renderExecutions() {
    const list = scheduleExecutions(state.events);
    if (!list.length) {
      execBody.replaceChildren(h('p', {class: 'muted pad'}, state.older ? 'None among the events shown.' : 'None yet.'));
      return;
    }
    preserveFocus(execBody, () => execBody.replaceChildren(h('ul', {class: 'sched-exec-list'}, list.map((x) => {
      const st = state.statuses.get(x.id);
      return h('li', {class: 'sched-exec', 'data-id': x.id, 'data-status': st || ''},
        st === 'removed' ? h('span', {class: 'badge badge-sm st-skipped', title: 'It is not there any more (deleted or purged by retention)'}, 'removed') : st ? badge(st, 'badge-sm') : h('span', {class: 'badge badge-sm st-pending'}, '…'),
        execLink(x.id, `x:${x.id}`),
        h('span', {class: 'muted small'}, x.type === 'triggered' ? 'triggered' : `due ${inZone(x.due_at || x.at)}`));
    }))));
  }

  /** Statuses of the executions listed that are unknown or still running (a few at a time). */
  async function loadStatuses() {
    const want = scheduleExecutions(state.events).map((x) => x.id).filter((x) => {
      const st = state.statuses.get(x);
      return !st || st === 'running';
    });
    for (let i = 0; i < want.length; i += STATUS_READS) {
      await Promise.all(want.slice(i, i + STATUS_READS).map(async (xid) => {
        try {
          const x = await Keel.execution(xid, ctx.signal);
          state.statuses.set(xid, x.status);
        } catch (err) {
          if (isAbort(err)) throw err;
          if (err instanceof ApiError && err.status === 404) state.statuses.set(xid, 'removed');
        }
      }));
    }
  }

  function renderAll() {
    ctx.title(`${state.s.id} (${scheduleState(state.s)})`);
    renderHead();
    renderFacts();
    renderDue();
    renderIO();
    renderHistory();
    renderExecutions();
  }

  // ---- live updates: the schedule, the newest page of its history, running executions
  let timer = null;
  let polling = false;
  async function poll(now = false) {
    if (!ctx.alive) return;
    if (timer) clearTimeout(timer);
    timer = null;
    if (polling) {
      if (now) timer = ctx.later(() => poll(true), 150);
      return;
    }
    polling = true;
    try {
      const s = await Sched.get(id, ctx.signal);
      const page = await Sched.history(id, null, ctx.signal);
      if (!ctx.alive) return;
      state.s = s;
      const merged = mergeNewer(state.events, page.events, page.next_cursor);
      state.events = merged.events;
      if (merged.gap) state.older = page.next_cursor;
      renderAll();
      await loadStatuses();
      if (ctx.alive) renderExecutions();
    } catch (err) {
      if (isAbort(err) || !ctx.alive) return;
      if (err instanceof ApiError && err.status === 404) {
        alertBox.replaceChildren(h('div', {class: 'callout callout-warn', role: 'status'}, icon('alert'),
          h('div', null, h('strong', null, 'This schedule was deleted. '), h('a', {href: '/ui/schedules'}, 'All schedules'))));
        return;
      }
    } finally {
      polling = false;
    }
    timer = ctx.later(function again() {
      if (document.hidden) timer = ctx.later(again, POLL_MS);
      else poll();
    }, POLL_MS);
  }

  renderAll();
  try {
    await loadStatuses();
  } catch (err) {
    if (isAbort(err) || !ctx.alive) return;
  }
  if (!ctx.alive) return;
  renderExecutions();
  timer = ctx.later(() => poll(), POLL_MS);
}

// ---- the create form ----------------------------------------------------------------------

export async function renderNewSchedule(ctx) {
  ctx.title('New schedule');
  const crumbs = h('nav', {class: 'crumbs', 'aria-label': 'Breadcrumb'}, h('a', {href: '/ui/schedules'}, 'Schedules'),
    h('span', {'aria-hidden': 'true'}, '/'), h('span', {'aria-current': 'page'}, 'New'));
  const zone = browserZone();
  const errs = {};
  const control = {};
  // A field: its label, the control, a hint, and a place for its errors (aria-describedby).
  const field = (name, label, input, hint, {optional = false} = {}) => {
    const hintEl = hint ? h('p', {class: 'hint', id: `sched-${name}-hint`}, hint) : null;
    errs[name] = h('ul', {class: 'field-error', id: `sched-${name}-error`, hidden: true});
    control[name] = input;
    if (input.setAttribute) input.setAttribute('aria-describedby', [hintEl && hintEl.id, errs[name].id].filter(Boolean).join(' '));
    return h('div', {class: 'field', 'data-field': name},
      h('label', {for: input.id}, label, optional ? h('span', {class: 'muted'}, ' (optional)') : null),
      input, hintEl, errs[name]);
  };

  const idInput = h('input', {type: 'text', class: 'input mono', id: 'sched-id', name: 'id', autocomplete: 'off', spellcheck: 'false', required: true, maxlength: '64', placeholder: 'nightly-report'});
  const wfSelect = h('select', {class: 'input', id: 'sched-workflow', name: 'workflow', required: true}, h('option', {value: ''}, 'Loading workflows…'));
  const cronInput = h('input', {type: 'text', class: 'input mono', id: 'sched-cron', name: 'cron', autocomplete: 'off', spellcheck: 'false', required: true, placeholder: '30 2 * * *'});
  const cronReadingEl = h('span', {class: 'cron-live', id: 'sched-cron-reading', 'aria-live': 'polite'});
  const zones = (() => {
    try {
      return Intl.supportedValuesOf('timeZone');
    } catch {
      return [];
    }
  })();
  const tzInput = h('input', {type: 'text', class: 'input mono', id: 'sched-timezone', name: 'timezone', autocomplete: 'off', spellcheck: 'false', list: 'sched-zones', placeholder: zone});
  const tzList = h('datalist', {id: 'sched-zones'}, ['UTC', ...zones.filter((z) => z !== 'UTC')].map((z) => h('option', {value: z})));
  const inputArea = h('textarea', {class: 'input mono', id: 'sched-input', name: 'input', rows: '4', spellcheck: 'false', placeholder: '{"format": "pdf"}'});
  const tagsArea = h('textarea', {class: 'input mono', id: 'sched-tags', name: 'tags', rows: '4', spellcheck: 'false', placeholder: 'team: reports'});
  const overlapOpts = [
    ['skip', 'skip', 'no start while its previous execution still runs (the default)'],
    ['allow', 'allow', 'start anyway, the previous one keeps running'],
    ['cancel_previous', 'cancel_previous', 'cancel the previous one (with its compensations), then start'],
  ];
  const overlapSet = h('fieldset', {class: 'field radio-set', id: 'sched-overlap', 'data-field': 'overlap', 'aria-describedby': 'sched-overlap-error'},
    h('legend', null, 'Overlap'),
    overlapOpts.map(([v, l, d]) => h('label', {class: 'radio'},
      h('input', {type: 'radio', name: 'overlap', value: v, id: `sched-overlap-${v}`, checked: v === 'skip'}),
      h('span', null, h('code', null, l), h('span', {class: 'muted'}, ` ${d}`)))));
  errs.overlap = h('ul', {class: 'field-error', id: 'sched-overlap-error', hidden: true});
  control.overlap = overlapSet.querySelector('input');
  overlapSet.append(errs.overlap);

  const problemBox = h('div', {id: 'sched-form-problem', 'aria-live': 'assertive'});
  const submit = h('button', {type: 'submit', class: 'btn btn-primary', id: 'sched-create'}, icon('check'), h('span', null, 'Create schedule'));
  const form = h('form', {class: 'card sched-form', novalidate: true, 'aria-labelledby': 'new-h'},
    h('div', {class: 'stack pad'},
      problemBox,
      h('div', {class: 'form-grid'},
        field('id', 'Id', idInput, '1-64 characters of A-Z a-z 0-9 _ -. Its executions are "<id>:<due time>".'),
        field('workflow', 'Workflow', wfSelect, 'Each start runs its latest version.')),
      field('cron', 'Cron', cronInput, h('span', null, 'minute hour day-of-month month day-of-week, or @hourly, @daily, @weekly, @monthly, @yearly. ', cronReadingEl)),
      field('timezone', 'Time zone', tzInput, `An IANA name; empty is UTC. Yours is ${zone}.`, {optional: true}),
      tzList,
      h('div', {class: 'form-grid'},
        field('input', 'Input (JSON)', inputArea, 'The input of each execution; empty is null.', {optional: true}),
        field('tags', 'Tags', tagsArea, 'One "key: value" per line; each execution gets them.', {optional: true})),
      overlapSet,
      h('div', {class: 'form-actions'}, submit, h('a', {href: '/ui/schedules', class: 'btn btn-ghost'}, 'Cancel'))));
  ctx.root.append(crumbs,
    h('div', {class: 'page-head'}, h('div', null, h('h1', {id: 'new-h'}, 'New schedule'),
      h('p', {class: 'subtitle'}, 'It starts its workflow at each time of the cron expression in its time zone.'))),
    form);

  const showReading = () => {
    const r = cronReading(cronInput.value);
    cronReadingEl.textContent = r ? `Reads: ${r}.` : '';
  };
  cronInput.addEventListener('input', showReading);

  function setErrors(name, messages) {
    const el = errs[name];
    el.replaceChildren(...(messages || []).map((m) => h('li', null, icon('alert'), h('span', null, m))));
    el.hidden = !messages || !messages.length;
    const target = name === 'overlap' ? overlapSet : control[name];
    if (el.hidden) target.removeAttribute('aria-invalid');
    else target.setAttribute('aria-invalid', 'true');
    target.classList.toggle('invalid', !el.hidden);
  }
  const clearErrors = () => {
    for (const name of Object.keys(errs)) setErrors(name, null);
    problemBox.replaceChildren();
  };
  const focusFirstError = () => {
    const first = Object.keys(errs).find((n) => !errs[n].hidden);
    if (first) (first === 'overlap' ? overlapSet.querySelector('input:checked') : control[first]).focus();
  };

  // The workflows to choose from (?workflow= preselects one).
  try {
    const wfs = await Keel.allWorkflows(ctx.signal);
    if (!ctx.alive) return;
    wfSelect.replaceChildren(h('option', {value: ''}, wfs.length ? 'Choose a workflow' : 'No workflow registered yet'),
      ...wfs.map((w) => h('option', {value: w.name}, w.name)));
    const want = ctx.query.get('workflow');
    if (want && wfs.some((w) => w.name === want)) wfSelect.value = want;
  } catch (err) {
    if (isAbort(err) || !ctx.alive) return;
    wfSelect.replaceChildren(h('option', {value: ''}, 'Could not read the workflows'));
    problemBox.replaceChildren(problemView(err));
  }

  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    if (submit.disabled) return;
    clearErrors();
    const body = {id: idInput.value.trim(), workflow: wfSelect.value, cron: cronInput.value.trim()};
    const tz = tzInput.value.trim();
    if (tz) body.timezone = tz;
    let local = false;
    const text = inputArea.value.trim();
    if (text) {
      try {
        body.input = JSON.parse(text);
      } catch (err) {
        setErrors('input', [`not valid JSON: ${err.message}`]);
        local = true;
      }
    }
    const tags = parseTags(tagsArea.value);
    if (tags.error) {
      setErrors('tags', [tags.error]);
      local = true;
    } else if (Object.keys(tags.tags).length) body.tags = tags.tags;
    body.overlap = (form.querySelector('input[name="overlap"]:checked') || {}).value || 'skip';
    if (local) {
      focusFirstError();
      return;
    }
    submit.disabled = true;
    try {
      const r = await Sched.create(body);
      if (!ctx.alive) return;
      toast(r.status === 201 ? `Schedule ${r.data.id} created` : `Schedule ${r.data.id} exists already with this content`);
      ctx.navigate(schedulePath(r.data.id));
    } catch (err) {
      if (!ctx.alive) return;
      const byField = errorsByField(err.problem);
      for (const [name, messages] of Object.entries(byField.fields)) setErrors(name, messages);
      const p = err.problem || {title: err.message};
      problemBox.replaceChildren(problemView({problem: {...p, errors: byField.other}}));
      if (Object.keys(byField.fields).length) focusFirstError();
    } finally {
      submit.disabled = false;
    }
  });
}
