// The executions list: filters in the URL, keyset pages, live while anything shown runs. A child
// execution says which execution started it; ?parent= lists one execution's children.
import {Keel, isAbort} from './api.mjs';
import {problemView} from './dialogs.mjs';
import {badge, h, icon, paths, preserveFocus, spinner} from './dom.mjs';
import {dueTime, fmtAbs, fmtDuration, fromLocalInput, ms, timeCell, toLocalInput} from './format.mjs';
import {EXECUTION_STATUSES, isCodeExecution, parseStatusFilter, stepKind, statusFilterParam, stepNow} from './model.mjs';

const RANGES = [
  ['', 'Any time'],
  ['15m', 'Last 15 minutes'],
  ['1h', 'Last hour'],
  ['24h', 'Last 24 hours'],
  ['7d', 'Last 7 days'],
  ['custom', 'Custom range…'],
];
const RANGE_MS = {'15m': 900_000, '1h': 3_600_000, '24h': 86_400_000, '7d': 604_800_000};
const PAGE_SIZE = 50;
const PAGE_SIZES = [20, 50, 100, 200];
const LIVE_MS = 2000;

export function durationOf(x, now = Date.now()) {
  const a = ms(x.created_at);
  const b = x.completed_at ? ms(x.completed_at) : now;
  return a == null ? null : b - a;
}

function errLine(err) {
  return [err.type, err.message].filter(Boolean).join(': ');
}

/**
 * What a running execution does now, from the list item's current_step: the step, its status
 * badge, what it waits on (with the time, absolute and relative) and its last error. steps:
 * the top-level steps of the execution's definition version, when the caller has them (they
 * tell a workflow step waiting for its child, which then links to the children, from a wait).
 */
export function currentStepCell(x, steps = null) {
  const id = x.current_step && x.current_step.id;
  const def = Array.isArray(steps) ? steps.find((d) => d && d.id === id) || null : null;
  const now = x.status === 'running' ? stepNow(x.current_step, def) : null;
  if (!now) return h('span', {class: 'muted'}, x.status === 'running' ? 'starting' : '—');
  const child = now.status === 'waiting' && stepKind(def) === 'workflow';
  return h('div', {class: 'current-step', 'data-step': now.step || '', 'data-step-status': now.status},
    h('div', {class: 'cs-line'}, h('span', {class: 'mono cs-step'}, now.step), ' ', badge(now.status, 'badge-sm')),
    h('div', {class: 'cs-what small'}, child ? ['waiting for ', h('a', {href: paths.executions({parent: x.id}), class: 'cs-child', 'data-fk': `c:${x.id}`}, 'its child execution')] : now.text,
      now.due != null ? [' ', dueTime(new Date(now.due).toISOString())] : null),
    now.error ? h('div', {class: 'row-error cs-error', title: errLine(now.error)}, `last error: ${errLine(now.error)}`) : null);
}

/**
 * The table of executions (also used on the workflow page). stepsOf(x), optional: the
 * top-level steps of x's definition version when at hand, else null (see currentStepCell).
 */
export function executionsTable(list, {showWorkflow = true, caption, stepsOf = () => null} = {}) {
  const now = Date.now();
  const rows = list.map((x) => {
    const d = durationOf(x, now);
    const running = x.status === 'running';
    return h('tr', {'data-id': x.id, 'data-status': x.status},
      h('td', {class: 'c-status', 'data-label': 'Status'}, badge(x.status)),
      h('td', {class: 'c-id', 'data-label': 'Execution'},
        h('a', {href: paths.execution(x.id), class: 'mono id-link', 'data-fk': `x:${x.id}`}, x.id),
        x.parent && x.parent.id
          ? h('div', {class: 'row-parent small', 'data-parent': x.parent.id}, h('span', {class: 'muted'}, '↳ child of '),
            h('a', {href: paths.execution(x.parent.id), class: 'mono', 'data-fk': `p:${x.id}`, title: x.parent.step ? `Started by step ${x.parent.step} of ${x.parent.id}` : null}, x.parent.id))
          : null,
        x.error ? h('div', {class: 'row-error', title: x.error.message || ''}, x.error.step ? h('span', {class: 'mono'}, `${x.error.step}: `) : null, x.error.message || x.error.type) : null),
      isCodeExecution(x)
        ? h('td', {class: 'c-wf', 'data-label': showWorkflow ? 'Workflow' : 'Version'},
            h('span', {class: 'tag tag-code', title: 'A code execution: driven by its program\'s step calls'}, 'code'), ' ',
            showWorkflow ? h('span', {class: 'code-name', 'data-name': x.name}, x.name) : null)
        : showWorkflow
        ? h('td', {class: 'c-wf', 'data-label': 'Workflow'},
            h('a', {href: paths.workflow(x.workflow), 'data-fk': `w:${x.id}`}, x.workflow), ' ',
            h('a', {href: paths.version(x.workflow, x.version), class: 'ver', title: `Version ${x.version}`, 'data-fk': `v:${x.id}`}, `v${x.version}`))
        : h('td', {class: 'c-wf', 'data-label': 'Version'}, h('a', {href: paths.version(x.workflow, x.version), class: 'ver', 'data-fk': `v:${x.id}`}, `v${x.version}`)),
      h('td', {class: 'c-now', 'data-label': 'Current step'}, currentStepCell(x, stepsOf(x))),
      h('td', {class: 'c-time', 'data-label': 'Started'}, timeCell(x.created_at)),
      h('td', {class: ['c-dur', 'num', running && 'is-running'], 'data-label': 'Duration', title: running ? 'running so far' : null}, fmtDuration(d)),
      h('td', {class: 'c-time c-ended', 'data-label': 'Ended'}, x.completed_at ? timeCell(x.completed_at) : h('span', {class: 'muted'}, running ? 'running' : '—')));
  });
  return h('div', {class: 'table-wrap'},
    h('table', {class: 'table exec-table'},
      caption ? h('caption', {class: 'sr-only'}, caption) : null,
      h('thead', null, h('tr', null,
        h('th', {scope: 'col'}, 'Status'), h('th', {scope: 'col'}, 'Execution'), h('th', {scope: 'col'}, showWorkflow ? 'Workflow' : 'Version'),
        h('th', {scope: 'col'}, 'Current step'), h('th', {scope: 'col'}, 'Started'), h('th', {scope: 'col', class: 'num'}, 'Duration'), h('th', {scope: 'col', class: 'c-ended'}, 'Ended'))),
      h('tbody', null, rows)));
}

export async function renderExecutions(ctx) {
  ctx.title('Executions');
  const q = ctx.query;
  const f = {
    workflow: q.get('workflow') || '',
    parent: q.get('parent') || '',
    statuses: parseStatusFilter(q.get('status')),
    range: q.get('range') || (q.get('since') || q.get('until') ? 'custom' : ''),
    since: q.get('since') || '',
    until: q.get('until') || '',
    cursor: q.get('cursor') || '',
    limit: Math.min(500, Math.max(1, Number.parseInt(q.get('limit'), 10) || PAGE_SIZE)),
  };
  const cursorStack = []; // cursors of the pages before this one (in memory only)

  // ---- header and filters
  const liveEl = h('span', {class: 'live', hidden: true}, h('span', {class: 'live-dot', 'aria-hidden': 'true'}), 'Live');
  const refreshBtn = h('button', {type: 'button', class: 'btn btn-secondary btn-sm', id: 'refresh'}, icon('refresh'), h('span', null, 'Refresh'));
  const updatedEl = h('span', {class: 'muted small', 'aria-live': 'off'});

  const idInput = h('input', {type: 'search', class: 'input mono', id: 'find-id', name: 'id', placeholder: 'Execution id', autocomplete: 'off', spellcheck: 'false', 'aria-label': 'Find an execution by id'});
  const findForm = h('form', {class: 'find', role: 'search'},
    h('span', {class: 'input-icon'}, icon('search')), idInput,
    h('button', {type: 'submit', class: 'btn btn-secondary'}, 'Open'));
  findForm.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const id = idInput.value.trim();
    if (id) ctx.navigate(paths.execution(id));
  });

  const wfSelect = h('select', {class: 'input', id: 'filter-workflow', 'aria-label': 'Workflow'}, h('option', {value: ''}, 'All workflows'));
  if (f.workflow) wfSelect.append(h('option', {value: f.workflow}, f.workflow));
  wfSelect.value = f.workflow;

  // Several statuses at once (?status=running,failed): one checkbox each; "All" clears them.
  const allButton = h('button', {type: 'button', class: 'seg', 'data-status': 'all', 'aria-pressed': String(!f.statuses.length)}, 'All');
  const statusBoxes = EXECUTION_STATUSES.map((st) => h('input', {type: 'checkbox', class: 'seg-box', name: 'status', value: st, checked: f.statuses.includes(st)}));
  const statusLabels = EXECUTION_STATUSES.map((st, i) =>
    h('label', {class: ['seg', 'seg-check', `seg-${st}`], 'data-status': st}, statusBoxes[i],
      h('span', {class: `dot st-dot-${st}`, 'aria-hidden': 'true'}), st[0].toUpperCase() + st.slice(1)));
  const statusGroup = h('div', {class: 'segmented', role: 'group', 'aria-label': 'Status (any of the checked ones)'}, allButton, statusLabels);
  const syncStatusControls = () => {
    for (const b of statusBoxes) b.checked = f.statuses.includes(b.value);
    allButton.setAttribute('aria-pressed', String(!f.statuses.length));
  };

  const rangeSelect = h('select', {class: 'input', id: 'filter-range', 'aria-label': 'Created'}, RANGES.map(([v, l]) => h('option', {value: v}, l)));
  rangeSelect.value = f.range;
  const sinceInput = h('input', {type: 'datetime-local', step: '1', class: 'input', id: 'filter-since', value: toLocalInput(f.since)});
  const untilInput = h('input', {type: 'datetime-local', step: '1', class: 'input', id: 'filter-until', value: toLocalInput(f.until)});
  const custom = h('div', {class: 'custom-range', hidden: f.range !== 'custom'},
    h('label', {class: 'inline-field'}, h('span', null, 'From'), sinceInput),
    h('label', {class: 'inline-field'}, h('span', null, 'to'), untilInput));
  const clearBtn = h('button', {type: 'button', class: 'btn btn-ghost btn-sm', id: 'clear-filters'}, icon('x'), h('span', null, 'Clear filters'));
  // ?parent=: only the children of one execution (a link from its page); shown as a chip.
  const parentChip = h('span', {class: 'filter-chip', id: 'filter-parent', hidden: !f.parent});
  const syncParentChip = () => {
    parentChip.hidden = !f.parent;
    parentChip.replaceChildren(...(f.parent ? [
      h('span', null, 'Children of ', h('a', {href: paths.execution(f.parent), class: 'mono'}, f.parent)),
      h('button', {type: 'button', class: 'btn btn-ghost btn-xs', id: 'filter-parent-remove', 'aria-label': `Show all executions, not only the children of ${f.parent}`, title: 'Remove this filter',
        onclick: () => {
          f.parent = '';
          syncParentChip();
          apply();
        }}, icon('x'))] : []));
  };
  syncParentChip();

  const results = h('div', {class: 'results', 'aria-live': 'polite', 'aria-busy': 'true'}, spinner());
  const pager = h('nav', {class: 'pager', 'aria-label': 'Pages'});

  ctx.root.append(
    h('div', {class: 'page-head'},
      h('div', null, h('h1', null, 'Executions'), h('p', {class: 'subtitle'}, 'Newest first. Filters and pages are part of the URL.')),
      h('div', {class: 'head-actions'}, liveEl, updatedEl, refreshBtn)),
    h('div', {class: 'toolbar card'},
      h('div', {class: 'toolbar-row'}, findForm, h('div', {class: 'toolbar-sep', 'aria-hidden': 'true'}),
        h('label', {class: 'inline-field'}, h('span', null, 'Workflow'), wfSelect),
        h('label', {class: 'inline-field'}, h('span', null, 'Created'), rangeSelect), custom),
      h('div', {class: 'toolbar-row'}, statusGroup, parentChip, clearBtn)),
    results,
    pager);

  // Workflow names for the select, and their latest definitions: a running execution of the
  // latest version shows what its current step waits for from them (loaded with the first page).
  const latest = new Map(); // name -> {version, steps}
  const workflowsLoaded = Keel.allWorkflows(ctx.signal)
    .then((wfs) => {
      for (const w of wfs) {
        latest.set(w.name, {version: w.version, steps: (w.definition && w.definition.steps) || []});
        if (w.name !== f.workflow) wfSelect.append(h('option', {value: w.name}, w.name));
      }
      wfSelect.value = f.workflow;
    })
    .catch(() => {});
  const stepsOf = (x) => {
    const w = latest.get(x.workflow);
    return w && w.version === x.version ? w.steps : null;
  };

  function href() {
    const p = {workflow: f.workflow, parent: f.parent, status: statusFilterParam(f.statuses)};
    if (f.range === 'custom') Object.assign(p, {since: f.since, until: f.until});
    else if (f.range) p.range = f.range;
    if (f.limit !== PAGE_SIZE) p.limit = String(f.limit);
    if (f.cursor) p.cursor = f.cursor;
    return paths.executions(p);
  }

  function apply({resetPage = true} = {}) {
    if (resetPage) {
      f.cursor = '';
      cursorStack.length = 0;
    }
    ctx.setUrl(href());
    load();
  }

  wfSelect.addEventListener('change', () => {
    f.workflow = wfSelect.value;
    apply();
  });
  allButton.addEventListener('click', () => {
    f.statuses = [];
    syncStatusControls();
    apply();
  });
  for (const b of statusBoxes)
    b.addEventListener('change', () => {
      f.statuses = parseStatusFilter(statusBoxes.filter((x) => x.checked).map((x) => x.value).join(','));
      syncStatusControls();
      apply();
    });
  rangeSelect.addEventListener('change', () => {
    f.range = rangeSelect.value;
    custom.hidden = f.range !== 'custom';
    if (f.range === 'custom') {
      if (!f.since) {
        f.since = new Date(Date.now() - 3_600_000).toISOString();
        sinceInput.value = toLocalInput(f.since);
      }
      sinceInput.focus();
    }
    apply();
  });
  for (const [input, key] of [[sinceInput, 'since'], [untilInput, 'until']])
    input.addEventListener('change', () => {
      f[key] = fromLocalInput(input.value);
      apply();
    });
  clearBtn.addEventListener('click', () => {
    Object.assign(f, {workflow: '', parent: '', statuses: [], range: '', since: '', until: '', cursor: ''});
    syncParentChip();
    wfSelect.value = '';
    rangeSelect.value = '';
    custom.hidden = true;
    sinceInput.value = untilInput.value = '';
    syncStatusControls();
    apply();
  });
  refreshBtn.addEventListener('click', () => load());

  let seq = 0;
  let timer = null;
  let inflight = null;

  async function load() {
    const my = ++seq;
    if (timer) clearTimeout(timer);
    timer = null;
    if (inflight) inflight.abort();
    const ac = new AbortController();
    inflight = ac;
    const onLeave = () => ac.abort();
    ctx.signal.addEventListener('abort', onLeave, {once: true});
    results.setAttribute('aria-busy', 'true');
    const params = {limit: f.limit, workflow: f.workflow, parent: f.parent, status: statusFilterParam(f.statuses), cursor: f.cursor};
    if (f.range === 'custom') Object.assign(params, {since: f.since, until: f.until});
    else if (RANGE_MS[f.range]) params.since = new Date(Date.now() - RANGE_MS[f.range]).toISOString();
    let page;
    try {
      [page] = await Promise.all([Keel.listExecutions(params, ac.signal), workflowsLoaded]);
    } catch (err) {
      if (isAbort(err) || my !== seq || !ctx.alive) return;
      results.setAttribute('aria-busy', 'false');
      results.replaceChildren(problemView(err));
      liveEl.hidden = true;
      pager.replaceChildren(f.cursor ? firstPageButton() : '');
      return;
    } finally {
      ctx.signal.removeEventListener('abort', onLeave);
      if (inflight === ac) inflight = null;
    }
    if (my !== seq || !ctx.alive) return;
    results.setAttribute('aria-busy', 'false');
    const list = page.executions;
    if (!list.length) {
      const filtered = f.workflow || f.parent || f.statuses.length || f.range || f.cursor;
      results.replaceChildren(h('div', {class: 'empty-state card'},
        h('h2', null, filtered ? 'No executions match these filters' : 'No executions yet'),
        filtered
          ? h('p', null, 'Try another status or time range, or ', h('button', {type: 'button', class: 'link-btn', onclick: () => clearBtn.click()}, 'clear the filters'), '.')
          : h('p', null, 'Start one with ', h('code', null, 'POST /v1/workflows/{name}/executions'), ' or from a ', h('a', {href: '/ui/workflows'}, 'workflow page'), '.')));
    } else {
      preserveFocus(results, () => results.replaceChildren(executionsTable(list, {caption: 'Executions', stepsOf})));
    }
    renderPager(list.length, page.next_cursor);
    const running = list.some((x) => x.status === 'running');
    liveEl.hidden = !running;
    updatedEl.textContent = `Updated ${fmtAbs(Date.now(), {millis: false}).slice(11)}`;
    if (running) timer = ctx.later(() => (document.hidden ? reschedule() : load()), LIVE_MS);
  }

  function reschedule() {
    timer = ctx.later(() => (document.hidden ? reschedule() : load()), LIVE_MS);
  }

  function firstPageButton() {
    return h('button', {type: 'button', class: 'btn btn-secondary btn-sm', id: 'page-first', onclick: () => {
      cursorStack.length = 0;
      f.cursor = '';
      apply({resetPage: false});
    }}, 'First page');
  }

  function renderPager(count, next) {
    const pageNo = cursorStack.length + 1;
    const prev = h('button', {type: 'button', class: 'btn btn-secondary btn-sm', id: 'page-prev', disabled: !f.cursor},
      f.cursor && !cursorStack.length ? 'First page' : '← Newer');
    prev.addEventListener('click', () => {
      if (cursorStack.length) f.cursor = cursorStack.pop();
      else f.cursor = '';
      apply({resetPage: false});
    });
    const nextBtn = h('button', {type: 'button', class: 'btn btn-secondary btn-sm', id: 'page-next', disabled: !next}, 'Older →');
    nextBtn.addEventListener('click', () => {
      cursorStack.push(f.cursor);
      f.cursor = next;
      apply({resetPage: false});
    });
    const info = h('span', {class: 'muted small'},
      count ? `${f.cursor && !cursorStack.length ? 'A later page' : `Page ${pageNo}`} · ${count} execution${count === 1 ? '' : 's'}` : '');
    const sizes = PAGE_SIZES.includes(f.limit) ? PAGE_SIZES : [...PAGE_SIZES, f.limit].sort((a, b) => a - b);
    const size = h('select', {class: 'input input-sm', id: 'page-size', 'aria-label': 'Executions per page'}, sizes.map((n) => h('option', {value: String(n)}, `${n} per page`)));
    size.value = String(f.limit);
    size.addEventListener('change', () => {
      f.limit = Number(size.value);
      apply();
    });
    pager.replaceChildren(info, h('span', {class: 'grow'}), size, prev, nextBtn);
    pager.hidden = !count && !f.cursor;
  }

  await load();
}
