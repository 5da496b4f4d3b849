// Bulk actions' batches: the list (newest first, keyset pages) and one batch with its filter and
// progress. Both refresh themselves while a batch is running.
import {ApiError, Keel, isAbort} from './api.mjs';
import {problemView} from './dialogs.mjs';
import {badge, h, icon, paths, preserveFocus, spinner} from './dom.mjs';
import {fmtAbs, fmtDuration, ms, timeCell, timeFact} from './format.mjs';
import {batchProgress, bulkWords, filterParts, listFilterOfBulk, listFilterQuery} from './model.mjs';

const LIVE_MS = 1000;
const PAGE_SIZE = 50;

/** How a bulk filter's times are written: local or UTC by the toggle, without milliseconds. */
export const fmtFilterTime = (iso) => fmtAbs(ms(iso), {millis: false});

/** A progress bar (0-100), labelled for assistive technology. */
export function progressBar(pct, label, {large = false} = {}) {
  const fill = h('span', {class: 'progress-fill'});
  fill.style.width = `${Math.max(0, Math.min(100, pct))}%`;
  return h('span', {class: ['progress', large && 'progress-lg'], role: 'progressbar', 'aria-valuemin': '0', 'aria-valuemax': '100', 'aria-valuenow': String(pct), 'aria-label': label}, fill);
}

/** The action of a batch as a small chip: "Cancel", "Terminate", "Retry". */
export function actionChip(action) {
  return h('span', {class: ['tag', 'action-chip', `action-${action}`], 'data-action': action}, bulkWords(action).verb);
}

function batchesTable(list) {
  const rows = list.map((b) => {
    const p = batchProgress(b);
    return h('tr', {'data-id': b.id, 'data-status': b.status, 'data-action': b.action, 'data-matched': b.matched, 'data-processed': b.processed, 'data-acted': b.acted, 'data-skipped': b.skipped},
      h('td', {class: 'c-status', 'data-label': 'Status'}, badge(b.status)),
      h('td', {class: 'c-batch', 'data-label': 'Batch'},
        h('div', {class: 'batch-title'}, actionChip(b.action), ' ', h('a', {href: paths.batch(b.id), class: 'mono id-link batch-link', 'data-fk': `b:${b.id}`}, b.id)),
        h('div', {class: 'batch-filter small', title: filterParts(b.filter, fmtFilterTime).join(' · ')}, filterParts(b.filter, fmtFilterTime).join(' · ')),
        b.reason ? h('div', {class: 'batch-reason small muted'}, 'Reason: ', h('q', null, b.reason)) : null),
      h('td', {class: 'c-progress', 'data-label': 'Progress'},
        h('div', {class: 'progress-line'}, progressBar(p.pct, `${b.processed} of ${b.matched} processed`),
          h('span', {class: 'num small progress-count'}, `${b.processed} / ${b.matched}`))),
      h('td', {class: 'num c-acted', 'data-label': 'Acted'}, String(b.acted)),
      h('td', {class: 'num c-skipped', 'data-label': 'Skipped'}, String(b.skipped)),
      h('td', {class: 'c-time', 'data-label': 'Created'}, timeCell(b.created_at)),
      h('td', {class: 'c-time c-ended', 'data-label': 'Completed'}, b.completed_at ? timeCell(b.completed_at) : h('span', {class: 'muted'}, 'running')));
  });
  return h('div', {class: 'table-wrap'},
    h('table', {class: 'table batch-table'},
      h('caption', {class: 'sr-only'}, 'Batches, newest first'),
      h('thead', null, h('tr', null,
        h('th', {scope: 'col'}, 'Status'), h('th', {scope: 'col'}, 'Batch and filter'), h('th', {scope: 'col'}, 'Progress'),
        h('th', {scope: 'col', class: 'num'}, 'Acted'), h('th', {scope: 'col', class: 'num'}, 'Skipped'),
        h('th', {scope: 'col'}, 'Created'), h('th', {scope: 'col', class: 'c-ended'}, 'Completed'))),
      h('tbody', null, rows)));
}

export async function renderBatches(ctx) {
  ctx.title('Batches');
  const q = ctx.query;
  const f = {cursor: q.get('cursor') || '', limit: Math.min(500, Math.max(1, Number.parseInt(q.get('limit'), 10) || PAGE_SIZE))};
  const cursorStack = [];
  const liveEl = h('span', {class: 'live', hidden: true}, h('span', {class: 'live-dot', 'aria-hidden': 'true'}), 'Live');
  const refreshBtn = h('button', {type: 'button', class: 'btn btn-secondary btn-sm', id: 'refresh'}, icon('refresh'), h('span', null, 'Refresh'));
  const results = h('div', {class: 'results', 'aria-live': 'polite', 'aria-busy': 'true'}, spinner());
  const pager = h('nav', {class: 'pager', 'aria-label': 'Pages'});
  ctx.root.append(
    h('div', {class: 'page-head'},
      h('div', null, h('h1', null, 'Batches'),
        h('p', {class: 'subtitle'}, 'Bulk actions, newest first. Each works through the executions its filter matches, in the background. Start one from the ', h('a', {href: paths.executions()}, 'executions list'), '.')),
      h('div', {class: 'head-actions'}, liveEl, refreshBtn)),
    results, pager);
  refreshBtn.addEventListener('click', () => load());

  let seq = 0;
  let timer = null;
  const href = () => '/ui/batches' + (f.cursor || f.limit !== PAGE_SIZE ? `?${new URLSearchParams([...(f.limit !== PAGE_SIZE ? [['limit', String(f.limit)]] : []), ...(f.cursor ? [['cursor', f.cursor]] : [])])}` : '');
  const go = () => {
    ctx.setUrl(href());
    load();
  };

  async function load() {
    const my = ++seq;
    if (timer) clearTimeout(timer);
    timer = null;
    results.setAttribute('aria-busy', 'true');
    let page;
    try {
      page = await Keel.batches({limit: f.limit, cursor: f.cursor}, ctx.signal);
    } catch (err) {
      if (isAbort(err) || my !== seq || !ctx.alive) return;
      results.setAttribute('aria-busy', 'false');
      results.replaceChildren(problemView(err));
      return;
    }
    if (my !== seq || !ctx.alive) return;
    results.setAttribute('aria-busy', 'false');
    const list = page.batches;
    if (!list.length)
      results.replaceChildren(h('div', {class: 'empty-state card'}, h('h2', null, f.cursor ? 'No more batches' : 'No batches yet'),
        h('p', null, 'Select executions in the ', h('a', {href: paths.executions()}, 'executions list'), ' (or all that match a filter) and cancel, terminate or retry them; ', h('code', null, 'POST /v1/executions/{action}'), ' does the same.')));
    else preserveFocus(results, () => results.replaceChildren(batchesTable(list)));
    const prev = h('button', {type: 'button', class: 'btn btn-secondary btn-sm', id: 'page-prev', disabled: !f.cursor}, f.cursor && !cursorStack.length ? 'First page' : '← Newer');
    prev.addEventListener('click', () => {
      f.cursor = cursorStack.length ? cursorStack.pop() : '';
      go();
    });
    const next = h('button', {type: 'button', class: 'btn btn-secondary btn-sm', id: 'page-next', disabled: !page.next_cursor}, 'Older →');
    next.addEventListener('click', () => {
      cursorStack.push(f.cursor);
      f.cursor = page.next_cursor;
      go();
    });
    preserveFocus(pager, () => pager.replaceChildren(h('span', {class: 'muted small'}, list.length ? `${list.length} batch${list.length === 1 ? '' : 'es'}` : ''), h('span', {class: 'grow'}), prev, next));
    pager.hidden = !list.length && !f.cursor;
    const running = list.some((b) => b.status === 'running');
    liveEl.hidden = !running;
    if (running) timer = ctx.later(load, LIVE_MS);
  }
  await load();
}

export async function renderBatch(ctx, id) {
  ctx.title(`Batch ${id}`);
  const root = ctx.root;
  const crumbs = h('nav', {class: 'crumbs', 'aria-label': 'Breadcrumb'}, h('a', {href: paths.batches()}, 'Batches'), h('span', {'aria-hidden': 'true'}, '/'), h('span', {class: 'mono', 'aria-current': 'page'}, id));
  root.append(crumbs, spinner('Loading the batch…'));
  const body = h('div');
  let first = true;

  async function load() {
    let b;
    try {
      b = await Keel.batch(id, ctx.signal);
    } catch (err) {
      if (isAbort(err) || !ctx.alive) return;
      if (first)
        root.replaceChildren(crumbs, h('div', {class: 'empty-state card'},
          h('h1', null, err instanceof ApiError && err.status === 404 ? 'Batch not found' : 'Could not load the batch'), problemView(err),
          h('p', null, h('a', {href: paths.batches()}, '← All batches'))));
      else ctx.later(load, LIVE_MS * 2);
      return;
    }
    if (!ctx.alive) return;
    if (first) root.replaceChildren(crumbs, body);
    first = false;
    const w = bulkWords(b.action);
    const p = batchProgress(b);
    const lf = listFilterOfBulk(b.filter);
    const parts = filterParts(b.filter, fmtFilterTime);
    const dur = (b.completed_at ? ms(b.completed_at) : Date.now()) - ms(b.created_at);
    preserveFocus(body, () => body.replaceChildren(
      h('div', {class: 'page-head exec-head'},
        h('div', {class: 'head-main'},
          h('div', {class: 'title-row'}, h('h1', {class: 'mono exec-id'}, id), badge(b.status, 'badge-lg')),
          h('p', {class: 'subtitle'}, actionChip(b.action), ' ', `${w.verb} the executions this filter matched`)),
        h('div', {class: 'head-actions'}, b.status === 'running' ? h('span', {class: 'live'}, h('span', {class: 'live-dot', 'aria-hidden': 'true'}), 'Live') : null)),
      h('section', {class: 'card batch-summary', 'aria-label': 'Progress', 'data-status': b.status},
        h('div', {class: 'progress-line'}, progressBar(p.pct, `${b.processed} of ${b.matched} processed`, {large: true}), h('span', {class: 'num progress-count'}, `${p.pct}%`)),
        h('p', {class: 'batch-progress-text', id: 'batch-progress-text'}, p.text),
        h('dl', {class: 'facts'},
          ...[['Matched', 'matched'], ['Processed', 'processed'], ['Acted', 'acted'], ['Skipped', 'skipped']].map(([label, k]) =>
            h('div', null, h('dt', null, label), h('dd', {class: 'fact-big', 'data-field': k}, String(b[k])))),
          h('div', null, h('dt', null, 'Created'), h('dd', null, timeFact(b.created_at))),
          h('div', null, h('dt', null, 'Completed'), h('dd', null, b.completed_at ? timeFact(b.completed_at) : h('span', {class: 'muted'}, 'still running'))),
          h('div', null, h('dt', null, 'Duration'), h('dd', {class: 'fact-big'}, fmtDuration(dur))),
          b.reason ? h('div', {class: 'wide'}, h('dt', null, 'Reason'), h('dd', null, h('q', null, b.reason))) : null)),
      h('section', {class: 'card', 'aria-labelledby': 'batch-filter-h'},
        h('div', {class: 'card-head'}, h('h2', {id: 'batch-filter-h'}, 'Filter'),
          lf ? h('a', {href: paths.executions(listFilterQuery(lf)), class: 'btn btn-ghost btn-sm', id: 'batch-list-link'}, 'These executions in the list →') : null),
        h('ul', {class: 'filter-parts', id: 'batch-filter'}, parts.map((t) => h('li', null, t))),
        Array.isArray(b.filter && b.filter.ids)
          ? h('ul', {class: 'id-list', 'aria-label': 'Executions chosen'}, b.filter.ids.map((x) => h('li', null, h('a', {href: paths.execution(x), class: 'mono'}, x))))
          : null,
        h('p', {class: 'muted small'}, w.note))));
    if (b.status === 'running') ctx.later(load, LIVE_MS);
  }
  await load();
}
