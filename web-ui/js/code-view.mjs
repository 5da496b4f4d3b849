// The parts of the execution page that only a code execution has (it has no definition, so no
// diagram and no step tree): its keys in first-call order, read a page at a time from
// GET /v1/executions/{id}/steps (at most a window of pages is held and drawn; "Show more" and
// "Show earlier" move it, and a refresh reads again only the pages on the screen and the last
// one, so 10,000 keys cost what 500 do); how long its program has been idle; and its handler,
// with the calls Keel made to it.
import {Keel, isAbort} from './api.mjs';
import {badge, h, icon, preserveFocus, toast} from './dom.mjs';
import {absTime, dueTime, fmtAbs, fmtClock, fmtDuration, ms} from './format.mjs';
import {jsonPanel} from './json-view.mjs';
import {KeyPages, handlerCalls, handlerOf, handlerReasonText, programIdle, stepCallText, stepNow} from './model.mjs';

/** Keys per request, and how many pages are held (drawn) at most: 500 rows. */
export const KEY_PAGE = 50;
export const KEY_PAGES_HELD = 10;
const KEY_RE = /^[A-Za-z0-9_\-:@]{1,128}$/;
const HANDLER_CALLS_SHOWN = 20; // the newest handler calls listed; "Show more" adds to them
const HANDLER_CALLS_STEP = 50;

const KIND_LABEL = {output: 'output', activity: 'activity', sleep: 'sleep', sleep_until: 'sleep until', wait: 'signal wait'};
const DONE = new Set(['completed', 'compensated', 'skipped', 'failed']);
const iso = (t) => new Date(t).toISOString();
const errLine = (err) => (err ? [err.type, err.message].filter(Boolean).join(': ') : '');
const plural = (n, one, many = `${one}s`) => `${n.toLocaleString('en')} ${n === 1 ? one : many}`;
/** An element id for a key (keys hold ':' and '@'; ids here never hold '.'). */
const keyId = (prefix, key) => `${prefix}-${String(key).replace(/[^A-Za-z0-9_-]/g, (c) => `.${c.charCodeAt(0)}`)}`;

// ---- one key --------------------------------------------------------------------------------

/** What the key waits for or when it moves on: "due 12:00:00 (in 59 min)", "took 1.2 s". */
function whenCell(step, now) {
  const started = ms(step.started_at);
  const completed = ms(step.completed_at);
  if (now && now.due != null && !DONE.has(now.status)) {
    const label = now.status === 'retrying' ? 'next attempt' : now.status === 'waiting' ? 'times out' : 'due';
    return [h('span', {class: 'muted'}, `${label} `), dueTime(iso(now.due))];
  }
  if (started != null && completed != null) return [h('span', {class: 'muted'}, 'took '), fmtDuration(completed - started)];
  if (started != null && !DONE.has(step.status)) return [h('span', {class: 'muted'}, 'for '), h('span', {class: 'cs-since', 'data-since': started}, fmtDuration(Date.now() - started))];
  return h('span', {class: 'muted'}, '—');
}

function fact(label, value, cls) {
  return h('div', null, h('dt', null, label), h('dd', {class: cls || null}, value));
}

function fillKeyDetail(detail, step, info) {
  const now = stepNow({...step, id: step.key});
  const started = ms(step.started_at);
  const completed = ms(step.completed_at);
  const facts = h('dl', {class: 'facts facts-inline'},
    fact('Key', step.key, 'mono small'),
    fact('First call', `#${(step.position ?? 0) + 1}${info && info.at != null ? ` at ${fmtAbs(info.at)}` : ''}`),
    fact('Kind', KIND_LABEL[step.kind] || step.kind || '?'),
    fact('Status', badge(step.status, 'badge-sm')),
    fact('Attempts', String(step.attempts ?? 0)),
    fact('Replays', String(step.replays ?? 0)),
    fact('Started', started != null ? fmtAbs(started) : '—'),
    fact('Completed', completed != null ? fmtAbs(completed) : '—'),
    now && now.due != null && !DONE.has(now.status)
      ? fact(now.status === 'retrying' ? 'Next attempt' : now.status === 'waiting' ? 'Times out' : 'Due', absTime(iso(now.due)))
      : null,
    step.request_differs
      ? fact('Request differs', info && info.differsAt != null ? `yes, first at ${fmtAbs(info.differsAt)}` : 'yes', 'warn-text')
      : null);
  const panels = h('div', {class: 'io-grid'});
  if (step.output !== null && step.output !== undefined) panels.append(jsonPanel('Step output', step.output, {depth: 2}));
  if (step.error) panels.append(jsonPanel('Step error', step.error, {tone: 'error', depth: 2}));
  else if (step.last_error) panels.append(jsonPanel('Last error', step.last_error, {tone: 'error', depth: 2}));
  if (info && info.request !== undefined) panels.append(jsonPanel('Request (first call)', info.request, {depth: 2}));
  if (info && info.differs !== undefined) panels.append(jsonPanel('A later call\'s other request', info.differs, {depth: 2}));
  detail.replaceChildren(facts, panels.childElementCount ? panels : h('p', {class: 'muted small'}, 'No output yet.'));
}

/**
 * One key's row: its position, key and call, kind, status, attempts, replays (and the "request
 * differs" mark), when it started and how long it took or when it moves on; a button opens its
 * detail (output, error, the first call's request and the other one that differed).
 */
function keyRow(step, info, {expanded, prefix = 'cs'}) {
  const key = String(step.key);
  const kind = step.kind || 'unknown';
  const status = step.status || 'unknown';
  // A wait's signal is in the call's body (the row does not name it).
  const wait = info && info.request && typeof info.request === 'object' ? info.request.wait : null;
  const now = stepNow({...step, id: key, signal: wait && typeof wait.signal === 'string' ? wait.signal : null});
  const detailId = keyId(`${prefix}-detail`, key);
  const open = expanded.has(key);
  const call = info && info.request !== undefined ? stepCallText(kind, info.request) : KIND_LABEL[kind] || kind;
  const toggle = h('button', {type: 'button', class: 'tl-toggle cs-toggle', 'aria-expanded': String(open), 'aria-controls': detailId, 'data-fk': `${prefix}:${key}`, title: `${key}: show its output, error and request`},
    icon('chevron', 'chev'), h('span', {class: ['kind-icon', `kind-${kind}`]}, icon(kind)), h('span', {class: 'tl-name mono cs-key'}, key));
  const differs = step.request_differs
    ? h('span', {class: 'differs-mark', title: 'A later call of this key sent another body than its first; the first call\'s result stands (see the request_differs event)'}, icon('alert'), 'request differs')
    : null;
  const started = ms(step.started_at);
  const state = [];
  if (now && now.capacity) state.push(h('div', {class: 'small step-capacity', 'data-host': now.capacity.host}, `waiting for capacity of ${now.capacity.host}`));
  if (step.last_error && !DONE.has(status)) state.push(h('div', {class: 'small err-text', title: errLine(step.last_error)}, `last error: ${errLine(step.last_error)}`));
  if (step.error && status === 'failed') state.push(h('div', {class: 'small err-text', title: errLine(step.error)}, `error: ${errLine(step.error)}`));
  const detail = h('div', {class: 'tl-detail cs-detail', id: detailId, hidden: !open});
  if (open) fillKeyDetail(detail, step, info);
  toggle.addEventListener('click', () => {
    const show = toggle.getAttribute('aria-expanded') !== 'true';
    toggle.setAttribute('aria-expanded', String(show));
    detail.hidden = !show;
    if (show) {
      expanded.add(key);
      fillKeyDetail(detail, step, info);
    } else expanded.delete(key);
  });
  return h('div', {class: ['cs-row', `row-${status}`], role: 'listitem', 'data-key': key, 'data-kind': kind, 'data-status': status, 'data-position': step.position ?? '',
    'data-attempts': step.attempts ?? 0, 'data-replays': step.replays ?? 0, 'data-differs': String(!!step.request_differs)},
    h('span', {class: 'cs-pos', title: 'Its place in first-call order'}, `#${(step.position ?? 0) + 1}`),
    h('div', {class: 'cs-keycell'},
      h('div', {class: 'cs-keyline'}, toggle, differs),
      h('div', {class: 'cs-call muted small ellipsis mono', title: call}, call)),
    h('div', {class: 'cs-status'}, badge(status, 'badge-sm')),
    h('div', {class: 'cs-meta'},
      h('span', {class: 'cs-kind small'}, KIND_LABEL[kind] || kind),
      h('span', {class: 'cs-attempts num'}, h('span', {class: 'cs-n'}, String(step.attempts ?? 0)), h('span', {class: 'cs-label'}, step.attempts === 1 ? ' attempt' : ' attempts')),
      h('span', {class: 'cs-replays num'}, h('span', {class: 'cs-n'}, String(step.replays ?? 0)), h('span', {class: 'cs-label'}, step.replays === 1 ? ' replay' : ' replays')),
      h('span', {class: 'cs-started small'}, h('span', {class: 'cs-label'}, 'started '),
        started != null ? h('time', {datetime: step.started_at, title: fmtAbs(started)}, fmtClock(started)) : h('span', {class: 'muted'}, '—')),
      h('span', {class: 'cs-when small'}, whenCell(step, now))),
    state.length ? h('div', {class: 'cs-state'}, state) : null,
    detail);
}

// ---- the keys ---------------------------------------------------------------------------------

/**
 * The card of a code execution's keys. keysCard({id, pageSize}) -> {el, load(), render(exec,
 * index)}: load() reads what a refresh needs (the first page, then the pages on the screen and
 * the last held, and the key found by "Find"); render() draws them, with `index` (indexStepCalls
 * of the history) for each key's request. Rows whose page did not change are kept as they are.
 */
export function keysCard({id, pageSize = KEY_PAGE, maxPages = KEY_PAGES_HELD, signal}) {
  const pager = new KeyPages(pageSize, maxPages);
  const expanded = new Set(); // keys whose detail is open
  const visible = new Set(); // pages on the screen
  const drawn = new Map(); // page -> {key, el}
  let exec = null;
  let index = new Map();
  let found = null; // {key, step} or {key, missing: true}, or {key, invalid: true}
  const foundOpen = new Set(); // the key found starts open: that is what it was looked for
  let foundSig = '';
  let loaded = false;
  let queue = Promise.resolve();
  // One request at a time: a refresh and a click on "Show more" must not interleave.
  const serial = (fn) => {
    const run = queue.then(fn);
    queue = run.catch(() => {});
    return run;
  };

  const io = typeof IntersectionObserver === 'function'
    ? new IntersectionObserver((entries) => {
      for (const e of entries) {
        const k = Number(e.target.dataset.page);
        if (e.isIntersecting) visible.add(k);
        else visible.delete(k);
      }
    })
    : null;

  const range = h('span', {class: 'muted small', id: 'steps-range'});
  const findInput = h('input', {type: 'search', class: 'input input-sm mono', id: 'step-find', placeholder: 'Find a key', 'aria-label': 'Find a key', autocomplete: 'off', spellcheck: 'false'});
  const findForm = h('form', {class: 'cs-find', role: 'search', id: 'step-find-form'}, findInput,
    h('button', {type: 'submit', class: 'btn btn-secondary btn-sm', id: 'step-find-go'}, icon('search'), h('span', null, 'Find')));
  const foundBox = h('div', {class: 'cs-found', id: 'step-found', hidden: true, 'aria-live': 'polite'});
  const earlierBtn = h('button', {type: 'button', class: 'btn btn-secondary btn-sm', id: 'steps-earlier'});
  const moreBtn = h('button', {type: 'button', class: 'btn btn-secondary btn-sm', id: 'steps-more'});
  const earlierRow = h('div', {class: 'cs-more cs-earlier', hidden: true}, earlierBtn);
  const moreRow = h('div', {class: 'cs-more', hidden: true}, moreBtn);
  const pagesEl = h('div', {class: 'cs-list', role: 'list', 'aria-label': 'Steps in first-call order'});
  const empty = h('p', {class: 'muted small pad cs-empty', hidden: true});
  const colHead = h('div', {class: 'cs-row cs-head', 'aria-hidden': 'true'},
    h('span', {class: 'cs-pos'}, '#'), h('span', null, 'Key'), h('span', null, 'Status'),
    h('div', {class: 'cs-meta'}, h('span', {class: 'cs-kind'}, 'Kind'), h('span', {class: 'num'}, 'Attempts'), h('span', {class: 'num'}, 'Replays'), h('span', null, 'Started'), h('span', null, 'Took / due')));
  const body = h('div', {class: 'cs-body'}, colHead, earlierRow, pagesEl, moreRow, empty);
  const el = h('section', {class: 'card steps-card', id: 'steps', 'aria-labelledby': 'steps-h'},
    h('div', {class: 'card-head'}, h('h2', {id: 'steps-h'}, 'Steps'), range, h('span', {class: 'grow'}), findForm),
    foundBox, body);

  async function fetchPage(k) {
    const req = pager.request(k);
    if (!req) return;
    const answer = await Keel.steps(id, {limit: pager.limit, cursor: req.cursor}, signal);
    pager.apply(k, answer);
  }

  async function fetchFound() {
    if (!found) return;
    try {
      found = {key: found.key, step: await Keel.step(id, found.key, signal)};
    } catch (err) {
      if (isAbort(err) || !(err && err.status === 404)) throw err;
      found = {key: found.key, missing: true};
    }
  }

  /** Reads what a refresh needs. Rejects as the API client does (the page counts failures). */
  function load() {
    return serial(async () => {
      for (const k of pager.refreshPages(visible)) await fetchPage(k);
      loaded = true;
      if (found && !found.missing) await fetchFound();
    });
  }

  function move(k, what) {
    if (k == null) return;
    serial(async () => {
      await fetchPage(k);
      draw();
    }).catch((err) => {
      if (!isAbort(err)) toast(`Could not load ${what}: ${err.problem ? err.problem.title : err.message}`, 'error');
    });
  }
  moreBtn.addEventListener('click', () => move(pager.nextPage(), 'more keys'));
  earlierBtn.addEventListener('click', () => move(pager.prevPage(), 'earlier keys'));

  findForm.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const key = findInput.value.trim();
    if (!key) {
      found = null;
      drawFound();
      return;
    }
    if (!KEY_RE.test(key)) {
      found = {key, invalid: true};
      drawFound();
      return;
    }
    found = {key};
    foundOpen.clear();
    foundOpen.add(key);
    serial(fetchFound).then(drawFound, (err) => {
      if (!isAbort(err)) toast(`Could not read the key: ${err.problem ? err.problem.title : err.message}`, 'error');
    });
  });

  function drawFound() {
    // Drawn again only when it changed: it is a live region, read out when it does.
    const sig = JSON.stringify([found, found && found.step ? index.get(found.step.key) || null : null]);
    if (sig === foundSig) return;
    foundSig = sig;
    if (!found) {
      foundBox.hidden = true;
      foundBox.replaceChildren();
      return;
    }
    foundBox.hidden = false;
    const close = h('button', {type: 'button', class: 'btn btn-ghost btn-xs', id: 'step-found-close', 'aria-label': 'Close the key found'}, icon('x'));
    close.addEventListener('click', () => {
      found = null;
      findInput.value = '';
      drawFound();
      findInput.focus();
    });
    let content;
    if (found.invalid) content = h('p', {class: 'small err-text'}, `"${found.key}" is not a key: 1-128 characters of A-Z a-z 0-9 _ - : @`);
    else if (found.missing) content = h('p', {class: 'small muted'}, `The program never called a key "${found.key}".`);
    else if (!found.step) content = h('p', {class: 'small muted'}, 'Reading…');
    else {
      content = h('div', {class: 'cs-list', role: 'list', 'aria-label': 'The key found'}, keyRow(found.step, index.get(found.step.key), {expanded: foundOpen, prefix: 'csf'}));
    }
    preserveFocus(foundBox, () => foundBox.replaceChildren(h('div', {class: 'cs-found-head'}, h('span', {class: 'small strong'}, 'Key found'), close), content));
  }

  function draw() {
    const held = pager.held();
    const keep = new Set(held.map((p) => p.page));
    for (const [k, d] of drawn)
      if (!keep.has(k)) {
        if (io) io.unobserve(d.el);
        visible.delete(k);
        drawn.delete(k);
      }
    const els = held.map((p) => {
      // A page is drawn again only when its keys (or what the history says of them) changed.
      const sig = JSON.stringify([p.steps, p.steps.map((s) => index.get(s.key) || null)]);
      const had = drawn.get(p.page);
      if (had && had.sig === sig) return had.el;
      const pageEl = h('div', {class: 'cs-page', 'data-page': p.page}, p.steps.map((s) => keyRow(s, index.get(s.key), {expanded})));
      if (had) {
        if (io) io.unobserve(had.el);
        preserveFocus(pagesEl, () => had.el.replaceWith(pageEl));
      }
      drawn.set(p.page, {sig, el: pageEl});
      if (io) io.observe(pageEl);
      return pageEl;
    });
    // Put the pages in order without touching the ones already in place (focus, selection).
    let prev = null;
    for (const pe of els) {
      const want = prev ? prev.nextSibling : pagesEl.firstChild;
      if (pe !== want) pagesEl.insertBefore(pe, want);
      prev = pe;
    }
    while (prev && prev.nextSibling) prev.nextSibling.remove();
    if (!prev) pagesEl.replaceChildren();

    const shown = held.reduce((n, p) => n + p.steps.length, 0);
    const from = pager.offset();
    const all = exec && Array.isArray(exec.steps) && exec.steps.length >= from + shown ? exec.steps.length : null;
    range.textContent = shown
      ? `in first-call order · ${shown === all ? plural(all, 'key') : `keys ${(from + 1).toLocaleString('en')}–${(from + shown).toLocaleString('en')}${all != null ? ` of ${all.toLocaleString('en')}` : ''}`}`
      : '';
    colHead.hidden = !shown;
    empty.hidden = !!shown || !loaded;
    empty.textContent = exec && exec.status === 'running' ? 'No step called yet: the program calls its steps by key.' : 'The program called no step.';
    earlierRow.hidden = !pager.hasEarlier();
    earlierBtn.textContent = `Show earlier keys (${(Math.max(0, from - pager.limit) + 1).toLocaleString('en')}–${from.toLocaleString('en')})`;
    moreRow.hidden = !pager.hasMore();
    const left = all != null ? all - from - shown : null;
    moreBtn.textContent = `Show ${Math.min(pager.limit, left ?? pager.limit)} more keys${left != null ? ` (${left.toLocaleString('en')} not shown)` : ''}`;
  }

  function render(x, idx) {
    exec = x;
    index = idx || index;
    draw();
    if (found && found.step) drawFound();
    // The time a running key has been running for, without drawing it again.
    const now = Date.now();
    for (const s of el.querySelectorAll('.cs-since[data-since]')) s.textContent = fmtDuration(now - Number(s.dataset.since));
  }

  return {el, load, render, dispose: () => io && io.disconnect()};
}

// ---- the program's idle time ---------------------------------------------------------------------

/**
 * The line under the head: "Program idle for 3m 12s · last call 12:00:01.123" (redrawn every
 * second by the page), "Program: no call yet", or once ended "Program last called <when>";
 * `events` (the history) tells of calls last_call_at does not have yet (programIdle).
 */
export function renderIdleLine(el, exec, events) {
  const p = programIdle(exec, Date.now(), events);
  el.hidden = !p;
  if (!p) return;
  el.dataset.state = p.state;
  const parts = [icon('clockSmall')];
  if (p.state === 'idle')
    parts.push(h('span', {class: 'idle-text'}, p.text), h('span', {class: 'muted'}, ' · last call ', h('time', {datetime: iso(p.last), title: fmtAbs(p.last)}, fmtClock(p.last))));
  else if (p.state === 'ended' && p.last != null) parts.push(h('span', {class: 'idle-text'}, p.text), ' ', absTime(iso(p.last)));
  else parts.push(h('span', {class: 'idle-text'}, p.text));
  el.replaceChildren(...parts);
}

// ---- the handler ----------------------------------------------------------------------------------

/**
 * The handler card: its URL, inactivity timeout and runs, and Keel's calls of it from the
 * history (handler_called, handler_failed), newest first. handlerCard() -> {el, render(exec,
 * events)}; hidden while the execution has no handler.
 */
export function handlerCard() {
  const el = h('section', {class: 'card handler-card', id: 'handler', 'aria-labelledby': 'handler-h', hidden: true});
  let shown = HANDLER_CALLS_SHOWN;
  let drawnKey = '';
  let last = null;

  function render(exec, events) {
    const hd = handlerOf(exec);
    el.hidden = !hd;
    if (!hd) return;
    const calls = handlerCalls(events);
    const key = JSON.stringify([hd, calls.length, shown]);
    if (key === drawnKey) return;
    drawnKey = key;
    last = {exec, events};
    const newest = calls.slice().reverse();
    const rows = newest.slice(0, shown).map((c) =>
      h('tr', {class: ['hc-row', c.ok ? 'st-ok' : 'st-failed'], 'data-run': c.run ?? '', 'data-reason': c.reason ?? '', 'data-ok': String(c.ok), 'data-key': c.key ?? ''},
        h('td', {class: 'num'}, c.run != null ? String(c.run) : '—'),
        h('td', null, handlerReasonText(c.reason, null)),
        h('td', {class: 'mono small'}, c.key || h('span', {class: 'muted'}, '—')),
        h('td', {class: 'num'}, c.attempt != null ? String(c.attempt) : '—'),
        h('td', {class: 'hc-result'}, c.ok
          ? h('span', {class: 'result st-ok'}, 'called')
          : [h('span', {class: 'err-text'}, `failed: ${errLine(c.error) || 'unknown error'}`),
            h('span', {class: 'muted small'}, c.nextAttemptAt != null ? [' · next attempt ', dueTime(iso(c.nextAttemptAt))] : ' · no next attempt')]),
        h('td', {class: 'small'}, c.at != null ? [h('time', {datetime: iso(c.at), title: fmtAbs(c.at)}, fmtClock(c.at))] : '—')));
    const more = calls.length > shown
      ? h('div', {class: 'cs-more'}, h('button', {type: 'button', class: 'btn btn-secondary btn-sm', id: 'handler-more', onclick: () => {
        shown += HANDLER_CALLS_STEP;
        render(last.exec, last.events);
      }}, `Show ${Math.min(HANDLER_CALLS_STEP, calls.length - shown)} more (${calls.length - shown} earlier calls)`))
      : null;
    const timeout = hd.inactivityTimeout == null ? '5m (default)' : typeof hd.inactivityTimeout === 'number' ? fmtDuration(hd.inactivityTimeout) : String(hd.inactivityTimeout);
    const runs = hd.run ?? new Set(calls.filter((c) => c.ok).map((c) => c.run)).size;
    preserveFocus(el, () => el.replaceChildren(
      h('div', {class: 'card-head'}, h('h2', {id: 'handler-h'}, 'Handler'), h('span', {class: 'muted small'}, 'Keel calls it to run the program again from the top')),
      h('dl', {class: 'facts handler-facts'},
        h('div', {class: 'wide'}, h('dt', null, 'URL'), h('dd', {class: 'mono small', id: 'handler-url'}, hd.url)),
        h('div', null, h('dt', null, 'Inactivity timeout'), h('dd', {id: 'handler-timeout'}, timeout)),
        h('div', null, h('dt', null, 'Runs'), h('dd', {class: 'fact-big', id: 'handler-run'}, String(runs)))),
      calls.length
        ? h('div', {class: 'table-wrap'}, h('table', {class: 'table table-tight handler-calls'},
          h('caption', {class: 'sr-only'}, 'Calls of the handler, newest first'),
          h('thead', null, h('tr', null, h('th', {class: 'num'}, 'Run'), h('th', null, 'Reason'), h('th', null, 'Key'), h('th', {class: 'num'}, 'Attempt'), h('th', null, 'Result'), h('th', null, 'When'))),
          h('tbody', null, rows)))
        : h('p', {class: 'muted small pad'}, 'Keel has not called the handler yet.'),
      more || '')); // ('' adds nothing: null would be the text "null")
  }

  return {el, render};
}
