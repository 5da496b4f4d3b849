// The waterfall: one row per step, one bar per attempt (red when it failed), hatched gaps for
// retry backoff, and bars for sleeps, signal waits and compensations, on one time axis.
import {badge, h, icon} from './dom.mjs';
import {absTime, fmtAbs, fmtDuration} from './format.mjs';
import {jsonPanel, jsonPreview} from './json-view.mjs';
import {niceTicks, stepDetail, stepNow, stepPolicy} from './model.mjs';

const KIND_LABEL = {activity: 'activity', sleep: 'sleep', sleep_until: 'sleep until', wait: 'signal wait', unknown: 'step'};

const SEG_LABEL = {
  attempt: 'attempt',
  backoff: 'retry backoff',
  timer: 'sleep',
  wait: 'signal wait',
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
          ? `waiting for "${seg.signal}" · ${d}`
          : seg.state === 'done'
            ? `got "${seg.signal}" after ${d}`
            : seg.state === 'timedout'
              ? `no "${seg.signal}" in ${d}: timed out`
              : `stopped after ${d} without "${seg.signal}"`);
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
 * renderTimeline(tl, exec, defSteps, {expanded: Set of step ids})
 * Returns the element; toggling a row updates `expanded`.
 */
export function renderTimeline(tl, exec, defSteps, {expanded}) {
  const span = tl.t1 - tl.t0;
  const ticks = niceTicks(span);
  const defs = new Map((defSteps || []).map((d) => [d.id, d]));
  const stepInfo = new Map(((exec && exec.steps) || []).map((s) => [s.id, s]));

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

  const rows = tl.rows.map((r) => {
    const def = defs.get(r.step);
    const kind = r.kind || 'unknown';
    const detailId = `tl-detail-${r.step.replace(/[^A-Za-z0-9_-]/g, '_')}`;
    const isOpen = expanded.has(r.step);
    const toggle = h('button', {type: 'button', class: 'tl-toggle', 'aria-expanded': String(isOpen), 'aria-controls': detailId, title: 'Show attempts, output and error', 'data-fk': `tl:${r.step}`},
      icon('chevron', 'chev'), h('span', {class: ['kind-icon', `kind-${kind}`]}, icon(kind)), h('span', {class: 'tl-name mono'}, r.step));
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
    if (!r.segments.length) track.append(h('span', {class: 'tl-empty'}, r.status === 'skipped' ? 'skipped' : r.status === 'pending' ? 'not started' : r.status));

    const info = stepInfo.get(r.step);
    const detail = h('div', {class: 'tl-detail', id: detailId, hidden: !isOpen});
    if (isOpen) fillDetail(detail, r, info, def, tl);
    toggle.addEventListener('click', () => {
      const now = toggle.getAttribute('aria-expanded') !== 'true';
      toggle.setAttribute('aria-expanded', String(now));
      detail.hidden = !now;
      if (now) {
        expanded.add(r.step);
        if (!detail.childElementCount) fillDetail(detail, r, info, def, tl);
      } else expanded.delete(r.step);
    });

    return h('div', {class: ['tl-row', 'tl-step', `row-${r.status}`], 'data-step': r.step, 'data-status': r.status, 'data-attempts': r.attempts.length, 'data-failed': r.failedAttempts, role: 'listitem'},
      h('div', {class: 'tl-label'}, toggle,
        h('div', {class: 'tl-sub'}, badge(r.status, 'badge-sm'), h('span', {class: 'muted small ellipsis', title: sub}, sub))),
      h('div', {class: 'tl-main'}, track,
        h('div', {class: 'tl-chips'}, summary.length ? h('span', {class: 'tl-sum'}, summary.join(' · ')) : null, withRuns),
        stepState(info)),
      detail);
  });

  const legend = h('div', {class: 'legend', 'aria-hidden': 'true'},
    [['seg-attempt st-ok', 'attempt'], ['seg-attempt st-failed', 'failed attempt'], ['seg-backoff', 'retry backoff'], ['seg-timer', 'sleep'], ['seg-wait', 'signal wait'], ['seg-comp', 'compensation'], ['seg-attempt st-running open', 'running']]
      .map(([cls, label]) => h('span', {class: 'legend-item'}, h('span', {class: `legend-swatch tl-seg ${cls}`}), label)));

  return h('div', {class: 'timeline'}, legend, h('div', {class: 'tl', role: 'list', 'aria-label': 'Steps on a time axis'}, axis, execRow, rows));
}

function fillDetail(detail, r, info, def, tl) {
  const policy = def ? stepPolicy(def) : '';
  const now = stepNow(info);
  const facts = h('dl', {class: 'facts facts-inline'},
    h('div', null, h('dt', null, 'Status'), h('dd', null, badge(r.status, 'badge-sm'))),
    h('div', null, h('dt', null, 'Attempts'), h('dd', null, String(info ? info.attempts : r.attempts.length))),
    h('div', null, h('dt', null, 'Started'), h('dd', null, info && info.started_at ? fmtAbs(Date.parse(info.started_at)) : '—')),
    h('div', null, h('dt', null, 'Completed'), h('dd', null, info && info.completed_at ? fmtAbs(Date.parse(info.completed_at)) : '—')),
    now && now.status === 'retrying' && now.due != null ? h('div', null, h('dt', null, 'Next attempt'), h('dd', null, absTime(iso(now.due)))) : null,
    now && now.status !== 'retrying' && now.due != null ? h('div', null, h('dt', null, now.status === 'waiting' ? 'Times out' : 'Due'), h('dd', null, absTime(iso(now.due)))) : null,
    now && now.heartbeat && now.heartbeat.at != null ? h('div', null, h('dt', null, 'Last heartbeat'), h('dd', null, absTime(iso(now.heartbeat.at)))) : null,
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
