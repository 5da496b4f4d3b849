// The waterfall: one row per step, one bar per attempt (red when it failed), hatched gaps for
// retry backoff, and bars for sleeps, signal waits and compensations, on one time axis.
// Steps that hold steps make it a tree: a parallel holds its branches, a for_each its
// iterations, an if its two branches (the one its condition did not choose drawn from the
// definition, marked "not taken"), each a sequence of steps; every container is collapsible and
// shows a count per status of what it holds. A for_each draws only a window of its iterations
// (failed first, then running, then the first ones; "Show more" adds to it), so a loop of
// thousands stays small. A workflow step links to its child execution, with its status.
import {badge, h, icon, paths} from './dom.mjs';
import {absTime, fmtAbs, fmtDuration} from './format.mjs';
import {jsonPanel, jsonPreview} from './json-view.mjs';
import {NOT_TAKEN, buildStepTree, countsText, defaultExpanded, ifOutcomeText, isContainerKind, iterationWindow, niceTicks, statusLabel, stepChild, stepDetail, stepNow, stepPolicy} from './model.mjs';

const KIND_LABEL = {activity: 'activity', sleep: 'sleep', sleep_until: 'sleep until', wait: 'signal wait', parallel: 'parallel', for_each: 'for each', if: 'if', workflow: 'child workflow', branch: 'branch', iteration: 'iteration', unknown: 'step'};

/** How many iterations a for_each shows at first, and how many more each "Show more" adds. */
export const ITERATION_WINDOW = 20;
export const ITERATION_STEP = 50;

/** An element id for a step path (paths hold '/', ids never hold '.'). */
const pathId = (prefix, path) => `${prefix}-${String(path).replace(/[^A-Za-z0-9_-]/g, (c) => `.${c.charCodeAt(0)}`)}`;

const SEG_LABEL = {
  attempt: 'attempt',
  backoff: 'retry backoff',
  timer: 'sleep',
  wait: 'signal wait',
  child: 'child execution',
  comp: 'compensation',
  compbackoff: 'compensation backoff',
};

function pct(x) {
  return `${Math.max(0, Math.min(100, x)).toFixed(3)}%`;
}

function errLine(err) {
  if (!err) return '';
  return [err.type, err.message].filter(Boolean).join(': ');
}

const iso = (t) => new Date(t).toISOString();
const DONE = new Set(['completed', 'compensated', 'skipped']);

/**
 * Under a step's bars: when it moves on by itself (next attempt, end of a sleep, a wait's
 * timeout), its last error and its last heartbeat, from the API's step fields.
 */
function stepState(info) {
  const now = stepNow(info);
  if (!now) return null;
  const parts = [];
  if (now.due != null && !DONE.has(now.status)) {
    const label = now.status === 'retrying' ? 'next attempt' : now.status === 'sleeping' ? 'due' : now.status === 'waiting' ? 'times out' : 'due';
    parts.push(h('div', {class: 'step-due small', 'data-due': iso(now.due)}, h('span', {class: 'muted'}, `${label} `), absTime(iso(now.due))));
  }
  if (now.capacity)
    parts.push(h('div', {class: 'step-capacity small', 'data-host': now.capacity.host}, `waiting for capacity of ${now.capacity.host}`,
      now.capacity.limit ? h('span', {class: 'muted'}, ` · limit ${now.capacity.limit}`) : null,
      now.capacity.since != null ? [h('span', {class: 'muted'}, ' · since '), absTime(iso(now.capacity.since))] : null));
  if (now.error && !DONE.has(now.status))
    parts.push(h('div', {class: 'step-error small err-text', title: errLine(now.error)}, `last error: ${errLine(now.error)}`));
  if (now.heartbeat && now.heartbeat.at != null)
    parts.push(h('div', {class: 'step-heartbeat small'}, h('span', {class: 'muted'}, 'last heartbeat '), absTime(iso(now.heartbeat.at)),
      now.heartbeat.details !== undefined && now.heartbeat.details !== null ? h('span', {class: 'mono muted hb-preview'}, ` ${jsonPreview(now.heartbeat.details, 80)}`) : null));
  return parts.length ? h('div', {class: 'step-state'}, parts) : null;
}

function segTitle(seg, tl) {
  const end = seg.end ?? tl.tEnd;
  const lines = [];
  const what = seg.type === 'attempt' ? `Attempt ${seg.n ?? ''}` : seg.type === 'comp' ? `Compensation attempt ${seg.n ?? ''}` : SEG_LABEL[seg.type];
  lines.push(`${what} · ${seg.end == null ? 'running for ' : ''}${fmtDuration(end - seg.start)} · ${seg.state}`);
  lines.push(`${fmtAbs(seg.start)} → ${seg.end == null ? 'now' : fmtAbs(seg.end)}`);
  if (seg.error) lines.push(errLine(seg.error));
  if (seg.signal) lines.push(`signal "${seg.signal}"`);
  if (seg.child) lines.push(`child ${seg.child}${seg.workflow ? ` (workflow ${seg.workflow})` : ''}`);
  if (seg.due) lines.push(`due ${fmtAbs(seg.due)}`);
  return lines.join('\n');
}

function chip(seg, tl) {
  const end = seg.end ?? tl.tEnd;
  const d = fmtDuration(end - seg.start);
  const title = segTitle(seg, tl);
  switch (seg.type) {
    case 'attempt': {
      const cls = ['chip', 'attempt-chip', `st-${seg.state}`];
      const ic = seg.state === 'ok' ? 'check' : seg.state === 'failed' ? 'x' : seg.state === 'running' ? 'clockSmall' : 'x';
      return h('span', {class: cls, title, 'data-attempt': seg.n ?? '', 'data-state': seg.state},
        icon(ic), `#${seg.n ?? '?'}`, h('span', {class: 'chip-dur'}, seg.end == null ? `${d}…` : d),
        seg.state === 'failed' && seg.error ? h('span', {class: 'chip-err'}, seg.error.type || 'error') : null);
    }
    case 'backoff':
    case 'compbackoff':
      return h('span', {class: ['chip', 'gap-chip'], title}, seg.end == null ? `retry in ${seg.due ? fmtDuration(seg.due - Date.now()) : '…'}` : `waited ${d}`);
    case 'timer':
      return h('span', {class: ['chip', 'timer-chip', `st-${seg.state}`], title}, icon('sleep'), seg.end == null ? `sleeping, ${fmtDuration((seg.due ?? end) - Date.now())} left` : `slept ${d}`);
    case 'wait':
      return h('span', {class: ['chip', 'wait-chip', `st-${seg.state}`], title}, icon('wait'),
        seg.end == null
          ? `waiting for ${seg.names ?? `"${seg.signal}"`} · ${d}`
          : seg.state === 'done'
            ? `got "${seg.got ?? seg.signal}" after ${d}`
            : seg.state === 'timedout'
              ? `no ${seg.names ?? `"${seg.signal}"`} in ${d}: timed out`
              : `stopped after ${d} without ${seg.names ?? `"${seg.signal}"`}`);
    case 'child':
      return h('span', {class: ['chip', 'child-chip', `st-${seg.state}`], title}, icon('workflow'),
        seg.end == null ? `waiting for the child · ${d}` : seg.state === 'done' ? `child completed in ${d}` : seg.state === 'failed' ? `child failed after ${d}` : `stopped after ${d}`);
    case 'comp':
      return h('span', {class: ['chip', 'comp-chip', `st-${seg.state}`], title}, icon('compensate'), `compensate #${seg.n ?? '?'} ${d}`);
    default:
      return null;
  }
}

function bar(seg, tl) {
  const span = tl.t1 - tl.t0;
  const end = seg.end ?? tl.tEnd;
  const el = h('div', {class: ['tl-seg', `seg-${seg.type}`, `st-${seg.state}`, seg.end == null && 'open'], title: segTitle(seg, tl)});
  el.style.left = pct(((seg.start - tl.t0) / span) * 100);
  el.style.width = pct(((end - seg.start) / span) * 100);
  return el;
}

function gridLines(tl, ticks) {
  const span = tl.t1 - tl.t0;
  const out = ticks.slice(1).map((t) => {
    const g = h('div', {class: 'tl-grid', 'aria-hidden': 'true'});
    g.style.left = pct((t / span) * 100);
    return g;
  });
  for (const m of tl.markers) {
    if (m.kind === 'end' || m.kind === 'signal') continue;
    const g = h('div', {class: ['tl-marker', `mk-${m.kind}`], 'aria-hidden': 'true'});
    g.style.left = pct(((m.at - tl.t0) / span) * 100);
    out.push(g);
  }
  return out;
}

function attemptTable(r, tl) {
  const rows = r.segments
    .filter((x) => x.type === 'attempt' || x.type === 'comp')
    .map((x) =>
      h('tr', {class: `st-${x.state}`},
        h('td', {class: 'num'}, x.type === 'comp' ? `↺ ${x.n ?? ''}` : `${x.run ? `run ${x.run + 1} · ` : ''}#${x.n ?? ''}`),
        h('td', null, fmtAbs(x.start)),
        h('td', {class: 'num'}, fmtDuration((x.end ?? tl.tEnd) - x.start)),
        h('td', null, h('span', {class: ['result', `st-${x.state}`]}, x.end == null ? 'running' : x.state)),
        h('td', {class: 'err-cell'}, x.error ? errLine(x.error) : '')));
  if (!rows.length) return null;
  return h('div', {class: 'table-wrap'},
    h('table', {class: 'table table-tight attempts-table'},
      h('thead', null, h('tr', null, h('th', {class: 'num'}, 'Attempt'), h('th', null, 'Started'), h('th', {class: 'num'}, 'Took'), h('th', null, 'Result'), h('th', null, 'Error'))),
      h('tbody', null, rows)));
}

/**
 * renderTimeline(tl, exec, defSteps, {expanded: Set of step paths, tree: {open: Map path ->
 * bool, limits: Map path -> number}, children: Map child execution id -> its list item (for
 * its status), optional, stepTree: buildStepTree(exec, defSteps, tl.ifs) when the caller has
 * it already, optional})
 * Returns the element; toggling a row updates `expanded`, a container `tree.open`, and "Show
 * more" `tree.limits`, so the page keeps them across live updates.
 */
export function renderTimeline(tl, exec, defSteps, {expanded, tree: treeState = {open: new Map(), limits: new Map()}, children = new Map(), stepTree = null}) {
  const span = tl.t1 - tl.t0;
  const ticks = niceTicks(span);

  const axis = h('div', {class: 'tl-row tl-axis', 'aria-hidden': 'true'},
    h('div', {class: 'tl-label'}, h('span', {class: 'muted small'}, `${fmtAbs(tl.t0).slice(11)} start`)),
    h('div', {class: 'tl-main'}, h('div', {class: 'tl-ticks'}, ticks.map((t, i) => {
      const el = h('span', {class: ['tl-tick', i === 0 && 'first']}, i === 0 ? '0' : `+${fmtDuration(t)}`);
      el.style.left = pct((t / span) * 100);
      if ((t / span) > 0.93 && i > 0) el.classList.add('last');
      return el;
    }))));

  // The whole execution.
  const execBars = tl.spans.map((sp, i) => {
    const end = sp.end ?? tl.tEnd;
    const el = h('div', {class: ['tl-seg', 'seg-exec', `st-${sp.status}`, sp.end == null && 'open'],
      title: `${tl.spans.length > 1 ? `run ${i + 1}: ` : ''}${sp.status} · ${fmtDuration(end - sp.start)}\n${fmtAbs(sp.start)} → ${sp.end == null ? 'now' : fmtAbs(sp.end)}`});
    el.style.left = pct(((sp.start - tl.t0) / span) * 100);
    el.style.width = pct(((end - sp.start) / span) * 100);
    return el;
  });
  const markerDots = tl.markers
    .filter((m) => m.kind !== 'end')
    .map((m) => {
      const el = h('span', {class: ['tl-flag', `mk-${m.kind}`], title: `${m.label} · ${fmtAbs(m.at)}`}, m.kind === 'signal' ? icon('wait') : m.kind === 'retry' ? icon('retry') : icon('cancel'));
      el.style.left = pct(((m.at - tl.t0) / span) * 100);
      return el;
    });
  const execRow = h('div', {class: 'tl-row tl-exec'},
    h('div', {class: 'tl-label'}, h('span', {class: 'tl-name'}, 'Execution'), badge(exec.status)),
    h('div', {class: 'tl-main'},
      h('div', {class: 'tl-track'}, gridLines(tl, ticks), execBars, markerDots),
      h('div', {class: 'tl-chips'}, h('span', {class: 'tl-sum'}, `${tl.ended ? '' : 'running for '}${fmtDuration(tl.tEnd - tl.t0)}`),
        tl.markers.filter((m) => m.kind === 'retry' || m.kind === 'cancel').map((m) => h('span', {class: ['chip', `mk-chip-${m.kind}`]}, m.kind === 'retry' ? icon('retry') : icon('cancel'), `${m.label} at +${fmtDuration(m.at - tl.t0)}`)))));

  const tree = stepTree || buildStepTree(exec, defSteps, tl.ifs);
  const tlRows = new Map(tl.rows.map((r) => [r.step, r]));
  // A top-level step the history knows but steps[] does not (a step of an old row): its own row.
  // A nested one appears with the next refresh (the history can be a little newer than steps[]).
  for (const r of tl.rows)
    if (!tree.byPath.has(r.step) && !r.step.includes('/'))
      tree.roots.push({path: r.step, id: r.id ?? r.step, kind: r.kind, status: r.status, children: [], counts: null, depth: 0, row: null, def: null});

  const c = {tl, ticks, exec, expanded, treeState, tlRows, children};
  const rows = tree.roots.map((n) => nodeRow(n, c, null));

  const legend = h('div', {class: 'legend', 'aria-hidden': 'true'},
    [['seg-attempt st-ok', 'attempt'], ['seg-attempt st-failed', 'failed attempt'], ['seg-backoff', 'retry backoff'], ['seg-timer', 'sleep'], ['seg-wait', 'signal wait'], ['seg-child', 'child execution'], ['seg-comp', 'compensation'], ['seg-attempt st-running open', 'running']]
      .map(([cls, label]) => h('span', {class: 'legend-item'}, h('span', {class: `legend-swatch tl-seg ${cls}`}), label)));

  return h('div', {class: 'timeline'}, legend, h('div', {class: 'tl', role: 'list', 'aria-label': 'Steps on a time axis'}, axis, execRow, rows));
}

function nodeRow(node, c, parent) {
  return isContainerKind(node.kind) || (node.children && node.children.length) ? containerRow(node, c, parent) : stepRow(node, c);
}

function emptyRow(node) {
  return {step: node.path, id: node.id, kind: node.kind, status: node.status, segments: [], attempts: [], compensations: [], failedAttempts: 0, runs: 0, start: null, end: null, duration: null, open: {}, error: null, child: null};
}

/** What a row's empty track says: why nothing is drawn there. */
function emptyText(status) {
  return status === 'skipped' ? 'skipped' : status === 'pending' ? 'not started' : statusLabel(status);
}

/** A workflow step's child execution: a link to its page, with its status when known. */
function childRef(childId, node, c) {
  const item = c.children.get(childId);
  return h('span', {class: 'child-ref', 'data-child': childId},
    h('span', {class: 'muted'}, 'child '),
    h('a', {href: paths.execution(childId), class: 'child-link mono', 'data-fk': `child:${node.path}`, title: `Open the child execution ${childId}`}, childId),
    item && item.status ? badge(item.status, 'badge-sm child-status') : null);
}

function nodeName(node) {
  return node.kind === 'iteration' ? `#${node.id}` : node.id;
}

function indent(label, depth) {
  if (depth) label.style.setProperty('--depth', String(depth));
  return label;
}

/** One step that calls out, sleeps or waits: its bars on the time axis, and its detail. */
function stepRow(node, c) {
  const {tl, ticks, expanded, tlRows} = c;
  const r = tlRows.get(node.path) || emptyRow(node);
  const def = node.def;
  const status = node.placeholder ? node.status : r.status;
  const kind = r.kind && r.kind !== 'unknown' ? r.kind : node.kind || 'unknown';
  const detailId = pathId('tl-detail', node.path);
  const isOpen = expanded.has(node.path);
  const toggle = h('button', {type: 'button', class: 'tl-toggle', 'aria-expanded': String(isOpen), 'aria-controls': detailId, title: node.path.includes('/') ? `${node.path}: show attempts, output and error` : 'Show attempts, output and error', 'data-fk': `tl:${node.path}`},
    icon('chevron', 'chev'), h('span', {class: ['kind-icon', `kind-${kind}`]}, icon(kind)), h('span', {class: 'tl-name mono'}, node.id));
  const sub = def ? stepDetail(def) : KIND_LABEL[kind] || kind;
  const chips = r.segments.map((seg) => chip(seg, tl)).filter(Boolean);
  // A separator chip where the execution was retried (attempt numbers start again).
  const withRuns = [];
  let lastRun = 0;
  r.segments.forEach((seg, i) => {
    if (seg.run !== lastRun && (seg.type === 'attempt' || seg.type === 'comp')) {
      withRuns.push(h('span', {class: 'chip run-chip'}, icon('retry'), `retry run ${seg.run + 1}`));
      lastRun = seg.run;
    }
    if (chips[i]) withRuns.push(chips[i]);
  });
  const summary = [];
  if (r.attempts.length) summary.push(`${r.attempts.length} attempt${r.attempts.length === 1 ? '' : 's'}`);
  if (r.failedAttempts) summary.push(`${r.failedAttempts} failed`);
  if (r.duration != null) summary.push(fmtDuration(r.duration));
  const track = h('div', {class: 'tl-track'}, gridLines(tl, ticks), r.segments.map((seg) => bar(seg, tl)));
  if (!r.segments.length) track.append(h('span', {class: 'tl-empty'}, emptyText(status)));
  const childId = kind === 'workflow' && !node.placeholder ? stepChild(node.row, r) : null;

  const info = node.row;
  const detail = h('div', {class: 'tl-detail', id: detailId, hidden: !isOpen});
  if (isOpen) fillDetail(detail, r, info, def, tl, status);
  toggle.addEventListener('click', () => {
    const now = toggle.getAttribute('aria-expanded') !== 'true';
    toggle.setAttribute('aria-expanded', String(now));
    detail.hidden = !now;
    if (now) {
      expanded.add(node.path);
      if (!detail.childElementCount) fillDetail(detail, r, info, def, tl, status);
    } else expanded.delete(node.path);
  });

  return h('div', {class: ['tl-row', 'tl-step', `row-${status}`, node.depth && 'tl-nested'], 'data-step': node.id, 'data-path': node.path, 'data-kind': kind, 'data-status': status, 'data-attempts': r.attempts.length, 'data-failed': r.failedAttempts, role: 'listitem'},
    indent(h('div', {class: 'tl-label'}, toggle,
      h('div', {class: 'tl-sub'}, badge(status, 'badge-sm'), h('span', {class: 'muted small ellipsis', title: sub}, sub))), node.depth),
    h('div', {class: 'tl-main'}, track,
      h('div', {class: 'tl-chips'}, summary.length ? h('span', {class: 'tl-sum'}, summary.join(' · ')) : null, childId ? childRef(childId, node, c) : null, withRuns),
      stepState(info)),
    detail);
}

/** "3 completed · 1 running · 1 failed", each count in its status's colour. */
function countsEl(node) {
  const parts = [];
  for (const x of node.counts || []) {
    if (parts.length) parts.push(' · ');
    parts.push(h('span', {class: ['count', `st-${x.status}`], 'data-status': x.status, 'data-n': x.n}, `${x.n} ${statusLabel(x.status)}`));
  }
  if (node.notStarted > 0) {
    if (parts.length) parts.push(' · ');
    parts.push(h('span', {class: 'count st-not-started', 'data-status': 'not started', 'data-n': node.notStarted}, `${node.notStarted} not started`));
  }
  if (!parts.length)
    parts.push(h('span', {class: 'muted'}, node.status === NOT_TAKEN ? 'not taken' : node.kind === 'for_each' ? 'no iterations yet' : 'nothing started yet'));
  return h('span', {class: 'tree-counts', title: countsText(node.counts, node.notStarted)}, parts);
}

function containerSub(node, parent) {
  if (node.def) return stepDetail(node.def);
  if (node.kind === 'iteration') {
    const items = parent && parent.items;
    const n = Number(node.id);
    return Array.isArray(items) && n >= 0 && n < items.length ? `item ${jsonPreview(items[n], 60)}` : `item ${node.id}`;
  }
  if (node.kind === 'branch' && parent && parent.kind === 'if') {
    const cond = parent.def && typeof parent.def.if === 'string' ? parent.def.if : 'the condition';
    return `when ${cond} is ${node.id === 'then' ? 'true' : 'false'}`;
  }
  if (node.kind === 'branch') return `branch of ${parent ? parent.id : 'a parallel'}`;
  return KIND_LABEL[node.kind] || node.kind;
}

/**
 * A parallel, a for_each, a branch or an iteration: a button that shows or hides what it holds
 * (aria-expanded), the counts per status, its span on the time axis, and its children.
 */
function containerRow(node, c, parent) {
  const {tl, ticks, treeState} = c;
  const info = node.row;
  const status = node.status;
  const kind = node.kind || 'unknown';
  const childrenId = pathId('tl-children', node.path);
  const open = treeState.open.has(node.path) ? treeState.open.get(node.path) : defaultExpanded(node);
  const name = nodeName(node);
  const what = {parallel: 'branches', for_each: 'iterations', if: 'branches', branch: 'steps', iteration: 'steps'}[kind] || 'steps';
  const toggle = h('button', {type: 'button', class: 'tl-toggle tree-toggle', 'aria-expanded': String(open), 'aria-controls': childrenId,
    title: `${open ? 'Hide' : 'Show'} the ${what} of ${node.path}`, 'data-fk': `tree:${node.path}`},
    icon('chevron', 'chev'), h('span', {class: ['kind-icon', `kind-${kind}`]}, icon(kind)), h('span', {class: ['tl-name', kind !== 'iteration' && 'mono']}, name),
    h('span', {class: 'sr-only'}, ` (${KIND_LABEL[kind] || kind}, ${statusLabel(status)})`));
  const sub = containerSub(node, parent);

  // Its span: from when it started to when it ended (or now).
  const track = h('div', {class: 'tl-track'}, gridLines(tl, ticks));
  const start = info && info.started_at ? Date.parse(info.started_at) : null;
  if (start != null && Number.isFinite(start)) {
    // Still running: up to now. Stopped without an end time (skipped after a failure elsewhere): up to the execution's end.
    const endAt = info.completed_at ? Date.parse(info.completed_at) : tl.tEnd;
    const running = !info.completed_at && !tl.ended && (status === 'running' || status === 'pending' || status === 'scheduled');
    const el = h('div', {class: ['tl-seg', 'seg-span', `st-${status}`, running && 'open'],
      title: `${KIND_LABEL[kind] || kind} ${node.path} · ${status} · ${fmtDuration(endAt - start)}\n${fmtAbs(start)} → ${info.completed_at || !running ? fmtAbs(endAt) : 'now'}`});
    el.style.left = pct(((start - tl.t0) / (tl.t1 - tl.t0)) * 100);
    el.style.width = pct(((endAt - start) / (tl.t1 - tl.t0)) * 100);
    track.append(el);
  } else track.append(h('span', {class: 'tl-empty'}, emptyText(status)));

  const facts = [];
  if (kind === 'for_each') facts.push(node.total != null ? `${node.total} item${node.total === 1 ? '' : 's'}` : `${node.children.length} started`);
  if (kind === 'parallel') facts.push(`${node.children.length} branch${node.children.length === 1 ? '' : 'es'}`);
  if (start != null && info && info.completed_at) facts.push(fmtDuration(Date.parse(info.completed_at) - start));
  const err = info && info.error;
  // What an if decided: which branch it took, or that it had nothing to run.
  const outcome = kind === 'if' ? ifOutcomeText(node) : null;
  const outcomeEl = outcome ? h('span', {class: ['if-outcome', node.taken === null && 'if-none'], 'data-taken': node.taken ?? ''}, outcome) : null;

  const children = h('div', {class: 'tl-children', id: childrenId, role: 'list', 'aria-label': `${what} of ${node.path}`, hidden: !open});
  const fill = () => children.replaceChildren(...childRows(node, c, () => fill()));
  if (open) fill();
  toggle.addEventListener('click', () => {
    const now = toggle.getAttribute('aria-expanded') !== 'true';
    toggle.setAttribute('aria-expanded', String(now));
    toggle.title = `${now ? 'Hide' : 'Show'} the ${what} of ${node.path}`;
    treeState.open.set(node.path, now);
    children.hidden = !now;
    if (now && !children.childElementCount) fill();
  });

  return h('div', {class: ['tl-row', 'tl-step', 'tl-container', `row-${status}`, node.depth && 'tl-nested'], 'data-step': node.id, 'data-path': node.path, 'data-kind': kind, 'data-status': status,
    'data-total': node.total ?? '', role: 'listitem'},
    indent(h('div', {class: 'tl-label'}, toggle,
      h('div', {class: 'tl-sub'}, badge(status, 'badge-sm'), h('span', {class: 'muted small ellipsis', title: sub}, sub))), node.depth),
    h('div', {class: 'tl-main'}, track,
      h('div', {class: 'tl-chips'}, facts.length ? h('span', {class: 'tl-sum'}, facts.join(' · ')) : null, outcomeEl, countsEl(node)),
      err ? h('div', {class: 'step-state'}, h('div', {class: 'step-error small err-text', title: errLine(err)}, `error: ${errLine(err)}${err.path && err.path !== node.path ? ` (at ${err.path})` : ''}`)) : null),
    children);
}

/** The rows inside a container; a for_each's iterations through a window with "Show more". */
function childRows(node, c, refill) {
  if (node.kind !== 'for_each') return node.children.map((ch) => nodeRow(ch, c, node));
  const limit = c.treeState.limits.get(node.path) ?? ITERATION_WINDOW;
  const win = iterationWindow(node.children, limit);
  const out = win.shown.map((ch) => nodeRow(ch, c, node));
  if (win.hidden > 0) {
    const more = Math.min(ITERATION_STEP, win.hidden);
    out.push(h('div', {class: 'tl-row tree-more', role: 'listitem', 'data-hidden': win.hidden},
      indent(h('div', {class: 'tl-label'},
        h('button', {type: 'button', class: 'btn btn-secondary btn-sm tree-more-btn', 'data-fk': `more:${node.path}`,
          onclick: () => {
            c.treeState.limits.set(node.path, limit + ITERATION_STEP);
            refill();
            const again = document.querySelector(`[data-fk="${CSS.escape(`more:${node.path}`)}"]`);
            if (again) again.focus({preventScroll: true});
          }}, `Show ${more} more`)), node.depth + 1),
      h('div', {class: 'tl-main'}, h('span', {class: 'muted small'},
        `${win.hidden} more iteration${win.hidden === 1 ? '' : 's'} not shown: ${countsText(win.hiddenCounts)}`))));
  }
  return out;
}

function fillDetail(detail, r, info, def, tl, status = r.status) {
  const policy = def ? stepPolicy(def) : '';
  const now = stepNow(info);
  const facts = h('dl', {class: 'facts facts-inline'},
    info && info.path && info.path !== info.id ? h('div', null, h('dt', null, 'Path'), h('dd', {class: 'mono small'}, info.path)) : null,
    info && typeof info.child === 'string' && info.child ? h('div', null, h('dt', null, 'Child execution'), h('dd', null, h('a', {href: paths.execution(info.child), class: 'mono small'}, info.child))) : null,
    h('div', null, h('dt', null, 'Status'), h('dd', null, badge(status, 'badge-sm'))),
    h('div', null, h('dt', null, 'Attempts'), h('dd', null, String(info ? info.attempts : r.attempts.length))),
    h('div', null, h('dt', null, 'Started'), h('dd', null, info && info.started_at ? fmtAbs(Date.parse(info.started_at)) : '—')),
    h('div', null, h('dt', null, 'Completed'), h('dd', null, info && info.completed_at ? fmtAbs(Date.parse(info.completed_at)) : '—')),
    now && now.status === 'retrying' && now.due != null ? h('div', null, h('dt', null, 'Next attempt'), h('dd', null, absTime(iso(now.due)))) : null,
    now && now.status !== 'retrying' && now.due != null ? h('div', null, h('dt', null, now.status === 'waiting' ? 'Times out' : 'Due'), h('dd', null, absTime(iso(now.due)))) : null,
    now && now.heartbeat && now.heartbeat.at != null ? h('div', null, h('dt', null, 'Last heartbeat'), h('dd', null, absTime(iso(now.heartbeat.at)))) : null,
    now && now.capacity ? h('div', null, h('dt', null, 'Waiting for capacity'), h('dd', null, now.capacity.host, now.capacity.limit ? h('span', {class: 'muted'}, ` (limit ${now.capacity.limit})`) : null)) : null,
    policy ? h('div', null, h('dt', null, 'Policy'), h('dd', null, policy)) : null,
    def && def.compensate ? h('div', null, h('dt', null, 'Compensation'), h('dd', {class: 'mono small'}, def.compensate.url || '')) : null);
  const panels = h('div', {class: 'io-grid'});
  if (info && info.output !== null && info.output !== undefined) panels.append(jsonPanel('Step output', info.output, {depth: 2}));
  const err = (info && info.error) || r.error;
  if (err) panels.append(jsonPanel('Step error', err, {tone: 'error', depth: 2}));
  else if (now && now.error) panels.append(jsonPanel('Last error', now.error, {tone: 'error', depth: 2}));
  if (now && now.heartbeat && now.heartbeat.details !== undefined)
    panels.append(jsonPanel('Heartbeat details', now.heartbeat.details, {depth: 1, open: true}));
  detail.replaceChildren(facts, attemptTable(r, tl) || h('p', {class: 'muted small'}, 'No attempts (this kind of step does not call out).'), panels.childElementCount ? panels : '');
}
