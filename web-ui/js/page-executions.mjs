// The executions list: filters in the URL (tags among them), keyset pages, live while anything
// shown runs. A child execution says which execution started it; ?parent= lists one execution's
// children. Rows can be selected, or all that match the filter, and cancelled, terminated or
// retried in one batch whose progress the page follows.
import {ApiError, Keel, isAbort} from './api.mjs';
import {openDialog, problemView} from './dialogs.mjs';
import {badge, h, icon, paths, preserveFocus, spinner, toast} from './dom.mjs';
import {dueTime, fmtAbs, fmtDuration, fromLocalInput, ms, timeCell, toLocalInput} from './format.mjs';
import {BULK_ACTIONS, EXECUTION_STATUSES, LIST_PAGE_SIZE, batchProgress, bulkConfirmText, bulkFilterOf, bulkWords, filterParts, hasListFilter, isCodeExecution, listApiQuery, listFilterFromQuery, listFilterQuery, parseStatusFilter, selectionText, stepKind, stepNow, tagText} from './model.mjs';
import {fmtFilterTime, progressBar} from './page-batches.mjs';
import {rowTags} from './tags-view.mjs';

const RANGES = [
  ['', 'Any time'],
  ['15m', 'Last 15 minutes'],
  ['1h', 'Last hour'],
  ['24h', 'Last 24 hours'],
  ['7d', 'Last 7 days'],
  ['custom', 'Custom range…'],
];
const PAGE_SIZE = LIST_PAGE_SIZE;
const PAGE_SIZES = [20, 50, 100, 200];
const LIVE_MS = 2000;
const BATCH_POLL_MS = 500;
const BULK_ICON = {cancel: 'cancel', terminate: 'terminate', retry: 'retry'};

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
 * tagHref(raw) and onTag(raw), optional: where a row's tag chip links to, and what a plain click
 * on it does instead (the list adds the tag to its filter). select, optional: a checkbox per
 * row and one for the page, {has(id), onRow(id, on), onPage(on)}.
 */
export function executionsTable(list, {showWorkflow = true, caption, stepsOf = () => null, tagHref, onTag, select = null} = {}) {
  const now = Date.now();
  const rows = list.map((x) => {
    const d = durationOf(x, now);
    const running = x.status === 'running';
    const picked = !!(select && select.has(x.id));
    return h('tr', {'data-id': x.id, 'data-status': x.status, class: picked ? 'is-selected' : null},
      select
        ? h('td', {class: 'c-sel', 'data-label': 'Select'},
          h('input', {type: 'checkbox', class: 'row-select', checked: picked, 'aria-label': `Select ${x.id}`, 'data-fk': `s:${x.id}`,
            onchange: (ev) => select.onRow(x.id, ev.target.checked)}))
        : null,
      h('td', {class: 'c-status', 'data-label': 'Status'}, badge(x.status)),
      h('td', {class: 'c-id', 'data-label': 'Execution'},
        h('a', {href: paths.execution(x.id), class: 'mono id-link', 'data-fk': `x:${x.id}`}, x.id),
        x.parent && x.parent.id
          ? h('div', {class: 'row-parent small', 'data-parent': x.parent.id}, h('span', {class: 'muted'}, '↳ child of '),
            h('a', {href: paths.execution(x.parent.id), class: 'mono', 'data-fk': `p:${x.id}`, title: x.parent.step ? `Started by step ${x.parent.step} of ${x.parent.id}` : null}, x.parent.id))
          : null,
        x.error ? h('div', {class: 'row-error', title: x.error.message || ''}, x.error.step ? h('span', {class: 'mono'}, `${x.error.step}: `) : null, x.error.message || x.error.type) : null,
        rowTags(x, {hrefOf: tagHref, onPick: onTag})),
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
  let pageBox = null;
  if (select) {
    const n = list.filter((x) => select.has(x.id)).length;
    pageBox = h('input', {type: 'checkbox', id: 'select-page', checked: n > 0 && n === list.length, 'aria-label': 'Select every execution on this page',
      onchange: (ev) => select.onPage(ev.target.checked)});
    pageBox.indeterminate = n > 0 && n < list.length;
  }
  return h('div', {class: 'table-wrap'},
    h('table', {class: ['table', 'exec-table', select && 'selectable']},
      caption ? h('caption', {class: 'sr-only'}, caption) : null,
      h('thead', null, h('tr', null,
        select ? h('th', {scope: 'col', class: 'c-sel'}, h('label', {class: 'sel-page'}, pageBox, h('span', {class: 'sel-page-text'}, 'Select this page'))) : null,
        h('th', {scope: 'col'}, 'Status'), h('th', {scope: 'col'}, 'Execution'), h('th', {scope: 'col'}, showWorkflow ? 'Workflow' : 'Version'),
        h('th', {scope: 'col'}, 'Current step'), h('th', {scope: 'col'}, 'Started'), h('th', {scope: 'col', class: 'num'}, 'Duration'), h('th', {scope: 'col', class: 'c-ended'}, 'Ended'))),
      h('tbody', null, rows)));
}

export async function renderExecutions(ctx) {
  ctx.title('Executions');
  // The filter state: workflow, name, parent, statuses, range, since, until, tags, cursor, limit.
  const f = listFilterFromQuery(ctx.query);
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
  // ?parent= (only the children of one execution, a link from its page) and ?name= (a workflow's
  // or a code execution's name) are shown as chips that can be removed.
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
  const nameChip = h('span', {class: 'filter-chip', id: 'filter-name', hidden: !f.name});
  const syncNameChip = () => {
    nameChip.hidden = !f.name;
    nameChip.replaceChildren(...(f.name ? [
      h('span', null, 'Name ', h('span', {class: 'mono'}, f.name)),
      h('button', {type: 'button', class: 'btn btn-ghost btn-xs', id: 'filter-name-remove', 'aria-label': `Remove the filter by name ${f.name}`, title: 'Remove this filter',
        onclick: () => {
          f.name = '';
          syncNameChip();
          apply();
        }}, icon('x'))] : []));
  };
  syncNameChip();

  // Tags (?tag=key:value, repeated; all must match): a chip each, and a field to add one. The
  // API checks a tag; when it refuses one (400), its message shows under the field and the list
  // stays as it was.
  const tagInput = h('input', {type: 'text', class: 'input mono', id: 'filter-tag', placeholder: 'key:value', autocomplete: 'off', spellcheck: 'false', enterkeyhint: 'done',
    'aria-describedby': 'filter-tag-hint filter-tag-error'});
  const tagError = h('p', {class: 'field-error', id: 'filter-tag-error', role: 'alert', hidden: true});
  const tagChips = h('ul', {class: 'filter-tags', id: 'filter-tags', 'aria-label': 'Tag filters (all must match)'});
  const tagForm = h('form', {class: 'tag-form', novalidate: true},
    h('label', {class: 'inline-field', for: 'filter-tag'}, h('span', null, 'Tag')), tagInput,
    h('button', {type: 'submit', class: 'btn btn-secondary', id: 'filter-tag-add'}, 'Add'));
  const tagHint = h('span', {class: 'muted small', id: 'filter-tag-hint'}, 'e.g. customer:42; every tag must match');
  const showTagError = (problem) => {
    tagError.hidden = !problem;
    tagError.replaceChildren(...(problem ? [icon('alert'), h('span', null, problem.detail || problem.title || 'The API refused this tag filter')] : []));
    if (problem) tagInput.setAttribute('aria-invalid', 'true');
    else tagInput.removeAttribute('aria-invalid');
  };
  const syncTagChips = () => {
    preserveFocus(tagChips, () => tagChips.replaceChildren(...f.tags.map((t) =>
      h('li', {class: 'filter-chip tag-filter', 'data-tag': t},
        h('span', {class: 'mono'}, tagText(t)),
        h('button', {type: 'button', class: 'btn btn-ghost btn-xs tag-remove', 'data-fk': `rm:${t}`, 'aria-label': `Remove the tag filter ${tagText(t)}`, title: 'Remove this tag filter',
          onclick: () => removeTag(t)}, icon('x'))))));
    tagChips.hidden = !f.tags.length;
  };
  syncTagChips();
  tagForm.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const raw = tagInput.value.trim();
    if (raw) addTag(raw);
  });
  tagInput.addEventListener('input', () => {
    if (!tagError.hidden) showTagError(null);
  });

  // ---- selection and bulk actions
  // ids: the rows checked (kept across live refreshes; a new filter or page clears them). all:
  // {matched, filter} once "all matching this filter" is chosen (its filter frozen then, so that
  // the dry run and the action count the same). count: the dry run's count for the label.
  const sel = {ids: new Set(), all: null, count: null};
  let rows = []; // the executions on the page
  const bulkBar = h('section', {class: 'bulk-bar card', id: 'bulk-bar', 'aria-label': 'Bulk actions', hidden: true});
  const progressHost = h('div', {class: 'batch-progress-host'});

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
      h('div', {class: 'toolbar-row'}, statusGroup, parentChip, nameChip, clearBtn),
      h('div', {class: 'toolbar-row tag-row'}, tagForm, tagChips, tagHint),
      tagError),
    progressHost,
    bulkBar,
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

  const href = (fx = f) => paths.executions(listFilterQuery(fx));
  // Where a row's tag chip leads: this list with the tag added to its filter.
  const tagHref = (raw) => href({...f, cursor: '', tags: f.tags.includes(raw) ? f.tags : [...f.tags, raw]});

  function clearSelection() {
    sel.ids.clear();
    sel.all = null;
    sel.count = null;
  }

  function apply({resetPage = true} = {}) {
    if (resetPage) {
      f.cursor = '';
      cursorStack.length = 0;
    }
    clearSelection();
    showTagError(null);
    ctx.setUrl(href());
    load();
  }

  function addTag(raw) {
    if (f.tags.includes(raw)) {
      tagInput.value = '';
      return;
    }
    // Tried with the API first: the filter (and the URL) take it only if the list loads.
    load({next: {...f, cursor: '', tags: [...f.tags, raw]}});
  }

  function removeTag(raw) {
    f.tags = f.tags.filter((t) => t !== raw);
    syncTagChips();
    apply();
    if (!tagChips.contains(document.activeElement)) tagInput.focus();
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
    Object.assign(f, {workflow: '', name: '', parent: '', statuses: [], range: '', since: '', until: '', tags: [], cursor: ''});
    syncParentChip();
    syncNameChip();
    syncTagChips();
    wfSelect.value = '';
    rangeSelect.value = '';
    custom.hidden = true;
    sinceInput.value = untilInput.value = '';
    syncStatusControls();
    apply();
  });
  refreshBtn.addEventListener('click', () => load());

  // ---- the bulk bar: what is selected, "all matching", and the three actions
  const select = {
    has: (id) => !!sel.all || sel.ids.has(id),
    onRow(id, on) {
      if (sel.all) {
        // Leaving "all matching": the rows of this page stay selected but this one.
        sel.all = null;
        for (const x of rows) sel.ids.add(x.id);
      }
      if (on) sel.ids.add(id);
      else sel.ids.delete(id);
      syncSelection();
    },
    onPage(on) {
      sel.all = null;
      for (const x of rows) {
        if (on) sel.ids.add(x.id);
        else sel.ids.delete(x.id);
      }
      syncSelection();
      if (on) countMatching();
    },
  };

  // The checkboxes and the bar after a change of selection (without drawing the table again).
  function syncSelection() {
    for (const box of results.querySelectorAll('tr[data-id] input.row-select')) {
      const tr = box.closest('tr');
      box.checked = select.has(tr.dataset.id);
      tr.classList.toggle('is-selected', box.checked);
    }
    const pageBox = results.querySelector('#select-page');
    if (pageBox) {
      const n = rows.filter((x) => select.has(x.id)).length;
      pageBox.checked = n > 0 && n === rows.length;
      pageBox.indeterminate = n > 0 && n < rows.length;
    }
    renderBulk();
  }

  const filterKey = () => JSON.stringify(listFilterQuery({...f, cursor: '', limit: PAGE_SIZE}));
  let bulkProblem = null;

  // The count of "all matching" for the label, from a dry run (done when the whole page is
  // selected, as the offer to go further then matters).
  async function countMatching() {
    const {filter, refused} = bulkFilterOf(f);
    if (refused || (sel.count && sel.count.key === filterKey())) return;
    const key = filterKey();
    try {
      const r = await Keel.bulk('cancel', {...filter, dry_run: true});
      if (!ctx.alive || key !== filterKey()) return;
      sel.count = {key, matched: r.matched};
      renderBulk();
    } catch (err) {
      if (!ctx.alive) return;
      setProblem(err);
      renderBulk();
    }
  }

  async function selectAllMatching(btn) {
    const {filter, refused} = bulkFilterOf(f);
    if (refused) return;
    btn.disabled = true;
    const key = filterKey();
    try {
      const r = await Keel.bulk('cancel', {...filter, dry_run: true});
      if (!ctx.alive || key !== filterKey()) return;
      setProblem(null);
      sel.count = {key, matched: r.matched};
      sel.all = {matched: r.matched, filter};
      sel.ids.clear();
    } catch (err) {
      if (!ctx.alive) return;
      setProblem(err);
    }
    syncSelection();
    if (sel.all) noneBtn.focus();
  }

  // The bar is built once and updated in place, so that its live count is announced and the
  // focus stays where it is across the list's refreshes.
  const countEl = h('span', {class: 'bulk-count', id: 'bulk-count', 'aria-live': 'polite'});
  const allBtn = h('button', {type: 'button', class: 'btn btn-ghost btn-sm', id: 'bulk-all'});
  const noneBtn = h('button', {type: 'button', class: 'btn btn-ghost btn-sm', id: 'bulk-none', hidden: true}, icon('x'), h('span', null, 'Clear selection'));
  const actionBtns = Object.fromEntries(BULK_ACTIONS.map((a) => [a,
    h('button', {type: 'button', class: ['btn', 'btn-sm', a === 'terminate' ? 'btn-danger-outline' : 'btn-secondary'], id: `bulk-${a}`, onclick: () => openBulk(a)},
      icon(BULK_ICON[a]), h('span', null, bulkWords(a).verb))]));
  const whyEl = h('p', {class: 'bulk-why small', id: 'bulk-all-why', hidden: true});
  const allFilterEl = h('p', {class: 'bulk-why small', id: 'bulk-all-filter', hidden: true});
  const problemEl = h('div', {class: 'bulk-problem'});
  bulkBar.append(
    h('div', {class: 'bulk-row'}, countEl, allBtn, noneBtn, h('span', {class: 'grow'}),
      h('div', {class: 'bulk-actions', role: 'group', 'aria-label': 'Act on the selected executions'}, Object.values(actionBtns))),
    whyEl, allFilterEl, problemEl);
  allBtn.addEventListener('click', () => selectAllMatching(allBtn));
  noneBtn.addEventListener('click', () => {
    clearSelection();
    syncSelection();
    allBtn.focus();
  });
  const setText = (el, text) => {
    if (el.textContent !== text) el.textContent = text;
  };

  function renderBulk() {
    bulkBar.hidden = !rows.length && !sel.all;
    const {refused} = bulkFilterOf(f);
    const n = sel.all ? sel.all.matched : sel.ids.size;
    const pageFull = rows.length > 0 && rows.every((x) => sel.ids.has(x.id));
    const count = sel.count && sel.count.key === filterKey() ? sel.count.matched : null;
    setText(countEl, selectionText({all: sel.all, selected: sel.ids.size}));
    countEl.classList.toggle('on', n > 0);
    countEl.dataset.count = String(n);
    countEl.dataset.mode = sel.all ? 'all' : 'ids';
    allBtn.hidden = !!sel.all;
    noneBtn.hidden = !sel.all;
    allBtn.disabled = !!refused;
    allBtn.classList.toggle('btn-secondary', pageFull && !refused);
    allBtn.classList.toggle('btn-ghost', !(pageFull && !refused));
    setText(allBtn, count == null ? 'Select all matching this filter' : `Select all ${count} matching this filter`);
    if (count == null) delete allBtn.dataset.count;
    else allBtn.dataset.count = String(count);
    if (refused) allBtn.setAttribute('aria-describedby', 'bulk-all-why');
    else allBtn.removeAttribute('aria-describedby');
    whyEl.hidden = !refused || !!sel.all;
    setText(whyEl, refused || '');
    allFilterEl.hidden = !sel.all;
    setText(allFilterEl, sel.all ? `Filter: ${filterParts(sel.all.filter, fmtFilterTime).join(' · ')}` : '');
    for (const btn of Object.values(actionBtns)) {
      btn.disabled = !n;
      btn.title = n ? '' : 'Select executions first';
    }
    const view = bulkProblem ? bulkProblem.view : null;
    if (problemEl.firstElementChild !== view) problemEl.replaceChildren(...(view ? [view] : []));
  }
  const setProblem = (err) => {
    bulkProblem = err ? {err, view: problemView(err, {compact: true})} : null;
  };

  // The confirmation: the count (the selected rows', or a fresh dry run's for "all matching",
  // with the filter spelled out) and, for cancel and terminate, an optional reason.
  async function openBulk(action) {
    let text;
    let body;
    const btn = actionBtns[action];
    if (sel.all) {
      const filter = sel.all.filter;
      btn.disabled = true;
      let r;
      try {
        r = await Keel.bulk(action, {...filter, dry_run: true});
      } catch (err) {
        if (!ctx.alive) return;
        setProblem(err);
        renderBulk();
        return;
      }
      if (!ctx.alive || !sel.all) return;
      setProblem(null);
      sel.all.matched = r.matched;
      renderBulk();
      text = bulkConfirmText(action, {matched: r.matched, filter}, fmtFilterTime);
      body = {...filter};
    } else {
      const ids = rows.map((x) => x.id).filter((id) => sel.ids.has(id));
      for (const id of sel.ids) if (!ids.includes(id)) ids.push(id);
      text = bulkConfirmText(action, {ids});
      body = {ids};
    }
    const reason = action === 'retry' ? null
      : h('input', {type: 'text', class: 'input', id: 'bulk-reason', maxlength: '1024', placeholder: 'Journaled with each execution', autocomplete: 'off'});
    let started = null; // the batch, once confirmed
    const dlg = openDialog({
      title: text.title,
      className: 'dialog-bulk',
      body: h('div', {class: 'stack'},
        h('p', {class: 'bulk-what', id: 'bulk-what', 'data-count': String(text.count)}, text.what),
        sel.all ? h('ul', {class: 'filter-parts', id: 'bulk-filter'}, filterParts(body, fmtFilterTime).map((t) => h('li', null, t))) : null,
        h('p', {class: 'muted small'}, text.note),
        reason ? h('div', {class: 'field'}, h('label', {for: 'bulk-reason'}, 'Reason ', h('span', {class: 'muted'}, '(optional)')), reason) : null),
      initialFocus: reason || undefined,
      // The focus goes back to the action's button, or to the batch's progress once started.
      onClose: () => setTimeout(() => {
        if (!ctx.alive) return;
        if (started) followBatch(started);
        else if (!btn.disabled) btn.focus();
        else bulkBar.querySelector('button:not([disabled]):not([hidden])')?.focus();
      }),
      actions: [
        {label: 'Back', kind: 'secondary', id: 'dismiss'},
        {
          label: text.confirm,
          kind: action === 'terminate' ? 'danger' : 'primary',
          icon: BULK_ICON[action],
          id: 'confirm',
          submit: true,
          onClick: async () => {
            const why = reason ? reason.value.trim() : '';
            started = await Keel.bulk(action, why ? {...body, reason: why} : body);
            clearSelection();
            setProblem(null);
            syncSelection();
          },
        },
      ],
    });
    if (!text.count) {
      const ok = dlg.dialog.querySelector('[data-action="confirm"]');
      ok.disabled = true;
      ok.title = 'Nothing matches';
    }
    if (!reason) dlg.dialog.querySelector(text.count ? '[data-action="confirm"]' : '[data-action="dismiss"]').focus();
  }

  // A batch's progress, read until it completes; then the list is read again. The panel is
  // built once and updated in place (its text is a status region).
  let following = 0;
  function followBatch(batch) {
    const me = ++following;
    const w = bulkWords(batch.action);
    const heading = h('h2', {id: 'batch-progress-h', tabindex: '-1'});
    const stateEl = h('span');
    const bar = progressBar(0, 'Processed');
    const textEl = h('p', {class: 'bp-text small', id: 'batch-progress-text', role: 'status'});
    const closeBtn = h('button', {type: 'button', class: 'btn btn-ghost btn-sm btn-icon', id: 'batch-progress-close', 'aria-label': 'Close the batch\'s progress', hidden: true}, icon('x'));
    const panel = h('section', {class: 'card batch-progress', id: 'batch-progress', 'aria-labelledby': 'batch-progress-h'},
      h('div', {class: 'bp-head'}, heading, stateEl, h('span', {class: 'grow'}),
        h('a', {href: paths.batch(batch.id), class: 'btn btn-ghost btn-sm', id: 'batch-progress-link'}, 'Batch details'), closeBtn),
      bar, textEl);
    closeBtn.addEventListener('click', () => {
      following++;
      progressHost.replaceChildren();
      refreshBtn.focus();
    });
    progressHost.replaceChildren(panel);
    const draw = (b) => {
      const p = batchProgress(b);
      const done = b.status === 'completed';
      Object.assign(panel.dataset, {batch: b.id, status: b.status, matched: b.matched, processed: b.processed, acted: b.acted, skipped: b.skipped});
      setText(heading, done ? `${w.verb}: done` : `${w.ing} ${b.matched} execution${b.matched === 1 ? '' : 's'}…`);
      if (stateEl.dataset.status !== b.status) {
        stateEl.dataset.status = b.status;
        stateEl.replaceChildren(badge(b.status));
      }
      bar.setAttribute('aria-valuenow', String(p.pct));
      bar.setAttribute('aria-label', `${b.processed} of ${b.matched} processed`);
      bar.firstChild.style.width = `${p.pct}%`;
      setText(textEl, p.text);
      closeBtn.hidden = !done;
    };
    draw(batch);
    heading.focus();
    const poll = async () => {
      if (me !== following || !ctx.alive) return;
      let b;
      try {
        b = await Keel.batch(batch.id, ctx.signal);
      } catch (err) {
        if (isAbort(err) || !ctx.alive) return;
        ctx.later(poll, BATCH_POLL_MS * 4);
        return;
      }
      if (me !== following || !ctx.alive) return;
      draw(b);
      if (b.status === 'completed') {
        toast(`${w.verb}: ${b.acted} ${w.done}, ${b.skipped} skipped`);
        load();
      } else ctx.later(poll, BATCH_POLL_MS);
    };
    ctx.later(poll, batch.status === 'completed' ? 0 : BATCH_POLL_MS);
  }

  // ---- loading
  let seq = 0;
  let timer = null;
  let inflight = null;

  /** Reads the page; next: a filter state to try (a tag being added), taken only if it loads. */
  async function load({next = null} = {}) {
    const my = ++seq;
    const wasLive = !liveEl.hidden;
    if (timer) clearTimeout(timer);
    timer = null;
    if (inflight) inflight.abort();
    const ac = new AbortController();
    inflight = ac;
    const onLeave = () => ac.abort();
    ctx.signal.addEventListener('abort', onLeave, {once: true});
    results.setAttribute('aria-busy', 'true');
    const fx = next || f;
    let page;
    try {
      [page] = await Promise.all([Keel.listExecutions(listApiQuery(fx), ac.signal), workflowsLoaded]);
    } catch (err) {
      if (isAbort(err) || my !== seq || !ctx.alive) return;
      results.setAttribute('aria-busy', 'false');
      const tagProblem = err instanceof ApiError && err.status === 400 && (err.problem.errors || []).some((e) => e.parameter === 'tag');
      if (tagProblem) showTagError(err.problem);
      if (next && tagProblem) {
        // The tag is refused: the filter and the rows stay as they were.
        tagInput.focus();
        if (wasLive) reschedule();
        return;
      }
      results.replaceChildren(problemView(err));
      liveEl.hidden = true;
      rows = [];
      renderBulk();
      pager.replaceChildren(f.cursor ? firstPageButton() : '');
      return;
    } finally {
      ctx.signal.removeEventListener('abort', onLeave);
      if (inflight === ac) inflight = null;
    }
    if (my !== seq || !ctx.alive) return;
    if (next) {
      Object.assign(f, next);
      cursorStack.length = 0;
      clearSelection();
      showTagError(null);
      tagInput.value = '';
      syncTagChips();
      ctx.setUrl(href());
    }
    results.setAttribute('aria-busy', 'false');
    const list = page.executions;
    rows = list;
    if (!list.length) {
      const filtered = hasListFilter(f) || f.cursor;
      results.replaceChildren(h('div', {class: 'empty-state card'},
        h('h2', null, filtered ? 'No executions match these filters' : 'No executions yet'),
        filtered
          ? h('p', null, 'Try another status, time range or tag, or ', h('button', {type: 'button', class: 'link-btn', onclick: () => clearBtn.click()}, 'clear the filters'), '.')
          : h('p', null, 'Start one with ', h('code', null, 'POST /v1/workflows/{name}/executions'), ' or from a ', h('a', {href: '/ui/workflows'}, 'workflow page'), '.')));
    } else {
      preserveFocus(results, () => results.replaceChildren(executionsTable(list, {caption: 'Executions', stepsOf, tagHref, onTag: addTag, select})));
    }
    renderBulk();
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
