// Keel web UI: a small router over history.pushState. Every view has its own URL under /ui/,
// and keeld answers any /ui/... path with index.html, so a reload lands on the same view.
import {hasToken, setSessionToken, setToken, setTokenPrompt} from './api.mjs';
import {openDialog} from './dialogs.mjs';
import {h, icon} from './dom.mjs';
import {isUtc, refreshRelativeTimes, setUtc} from './format.mjs';
import {renderBatch, renderBatches} from './page-batches.mjs';
import {renderExecution} from './page-execution.mjs';
import {renderExecutions} from './page-executions.mjs';
import {renderWorkflow, renderWorkflows} from './page-workflows.mjs';
import {renderNewSchedule, renderSchedule, renderSchedules} from './page-schedules.mjs';

const main = document.getElementById('main');

const routes = [
  {re: /^\/ui\/?$/, nav: 'executions', render: (ctx) => renderExecutions(ctx)},
  {re: /^\/ui\/executions\/?$/, nav: 'executions', render: (ctx) => renderExecutions(ctx)},
  {re: /^\/ui\/executions\/([^/]+)\/?$/, nav: 'executions', render: (ctx, id) => renderExecution(ctx, id)},
  {re: /^\/ui\/batches\/?$/, nav: 'batches', render: (ctx) => renderBatches(ctx)},
  {re: /^\/ui\/batches\/([^/]+)\/?$/, nav: 'batches', render: (ctx, id) => renderBatch(ctx, id)},
  {re: /^\/ui\/workflows\/?$/, nav: 'workflows', render: (ctx) => renderWorkflows(ctx)},
  {re: /^\/ui\/workflows\/([^/]+)\/?$/, nav: 'workflows', render: (ctx, name) => renderWorkflow(ctx, name, null)},
  {
    re: /^\/ui\/workflows\/([^/]+)\/versions\/([0-9]+)\/?$/,
    nav: 'workflows',
    render: (ctx, name, v) => renderWorkflow(ctx, name, Number(v)),
  },
  {re: /^\/ui\/schedules\/?$/, nav: 'schedules', render: (ctx) => renderSchedules(ctx)},
  {re: /^\/ui\/schedules\/new\/?$/, nav: 'schedules', render: (ctx) => renderNewSchedule(ctx)},
  {re: /^\/ui\/schedules\/([^/]+)\/?$/, nav: 'schedules', render: (ctx, id) => renderSchedule(ctx, id)},
];

let current = null; // {abort, disposers}

function dispose() {
  if (!current) return;
  current.abort.abort();
  for (const fn of current.disposers) {
    try {
      fn();
    } catch (err) {
      console.warn('dispose failed', err);
    }
  }
  current = null;
}

/** The context a view renders into; its timers and requests stop when the view is left. */
function makeContext(url) {
  const abort = new AbortController();
  const disposers = [];
  const ctx = {
    root: main,
    url,
    query: url.searchParams,
    signal: abort.signal,
    get alive() {
      return !abort.signal.aborted;
    },
    onDispose: (fn) => disposers.push(fn),
    /** setTimeout that is cleared when the view goes away. */
    later(fn, delay) {
      const id = setTimeout(() => {
        if (!abort.signal.aborted) fn();
      }, delay);
      disposers.push(() => clearTimeout(id));
      return id;
    },
    navigate,
    /** Change the URL of this view without rendering it again (filters, pages). */
    setUrl(href, {replace = false} = {}) {
      if (href === location.pathname + location.search) return;
      history[replace ? 'replaceState' : 'pushState']({}, '', href);
    },
    title(text) {
      document.title = text ? `${text} · Keel` : 'Keel';
    },
  };
  current = {abort, disposers};
  return ctx;
}

function render({focus = false} = {}) {
  dispose();
  const url = new URL(location.href);
  const path = url.pathname;
  let match = null;
  let route = null;
  for (const r of routes) {
    match = path.match(r.re);
    if (match) {
      route = r;
      break;
    }
  }
  for (const a of document.querySelectorAll('[data-nav]')) {
    const on = route && a.dataset.nav === route.nav;
    a.classList.toggle('active', !!on);
    if (on) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  const ctx = makeContext(url);
  main.replaceChildren();
  if (!route) {
    ctx.title('Not found');
    main.append(
      h('div', {class: 'empty-state'}, h('h1', {tabindex: '-1'}, 'Page not found'),
        h('p', null, 'Nothing in the UI lives at ', h('code', null, path), '.'),
        h('p', null, h('a', {href: '/ui/'}, 'Go to the executions'))));
    return;
  }
  let params;
  try {
    params = match.slice(1).map((p) => decodeURIComponent(p));
  } catch {
    params = match.slice(1);
  }
  Promise.resolve(route.render(ctx, ...params))
    .then(() => {
      if (focus && ctx.alive) {
        const h1 = main.querySelector('h1');
        if (h1) {
          h1.setAttribute('tabindex', '-1');
          h1.focus({preventScroll: true});
        }
      }
    })
    .catch((err) => {
      if (!ctx.alive) return;
      console.warn(err);
      main.replaceChildren(h('div', {class: 'empty-state'}, h('h1', null, 'Something went wrong'), h('pre', {class: 'mono'}, String(err && err.stack || err))));
    });
}

export function navigate(href, {replace = false} = {}) {
  const target = new URL(href, location.href);
  if (target.origin !== location.origin) {
    location.href = target.href;
    return;
  }
  history[replace ? 'replaceState' : 'pushState']({}, '', target.pathname + target.search + target.hash);
  window.scrollTo(0, 0);
  render({focus: true});
}

// Same-origin links to /ui/ are handled here (unless opened in a new tab or window).
document.addEventListener('click', (ev) => {
  if (ev.defaultPrevented || ev.button !== 0 || ev.metaKey || ev.ctrlKey || ev.shiftKey || ev.altKey) return;
  // Attributes rather than a.href and a.target: an SVG link (the diagram's) has objects there.
  const a = ev.target.closest && ev.target.closest('a[href]');
  if (!a || a.getAttribute('target') || a.hasAttribute('download')) return;
  const url = new URL(a.getAttribute('href'), location.href);
  if (url.origin !== location.origin || !url.pathname.startsWith('/ui')) return;
  if (url.pathname === location.pathname && url.search === location.search && url.hash) return;
  ev.preventDefault();
  navigate(url.pathname + url.search);
});

window.addEventListener('popstate', () => render({focus: true}));

// ---- top bar: time zone toggle and token ---------------------------------------------------

function topbarEnd() {
  const host = document.getElementById('topbar-end');
  const tz = h('button', {type: 'button', class: 'btn btn-ghost btn-sm', id: 'tz-toggle', 'aria-pressed': String(isUtc()), title: 'Show times in UTC or in local time'},
    icon('globe'), h('span', null, isUtc() ? 'UTC' : 'Local time'));
  tz.addEventListener('click', () => {
    setUtc(!isUtc());
    topbarEnd();
    render();
  });
  const parts = [tz];
  if (hasToken()) {
    const out = h('button', {type: 'button', class: 'btn btn-ghost btn-sm', title: 'Forget the API token kept in this browser'}, icon('key'), h('span', null, 'Forget token'));
    out.addEventListener('click', () => {
      setToken('');
      setSessionToken('');
      topbarEnd();
      render();
    });
    parts.push(out);
  }
  host.replaceChildren(...parts);
}

function promptToken(problem, hadToken) {
  return new Promise((resolve) => {
    let ok = false;
    const input = h('input', {type: 'password', class: 'input', id: 'token-input', autocomplete: 'off', spellcheck: 'false', required: true, placeholder: 'one of KEEL_API_TOKENS'});
    const remember = h('input', {type: 'checkbox', id: 'token-remember', checked: true});
    openDialog({
      title: 'API token required',
      description: hadToken
        ? 'keeld refused the token kept in this browser. Enter another one.'
        : 'This keeld requires a bearer token (KEEL_API_TOKENS is set). Enter one to continue.',
      className: 'dialog-token',
      body: h('div', {class: 'stack'},
        h('div', {class: 'field'}, h('label', {for: 'token-input'}, 'Token'), input),
        h('label', {class: 'check'}, remember, ' Keep it in this browser (localStorage)'),
        problem && problem.detail ? h('p', {class: 'muted small'}, problem.detail) : null),
      onClose: () => {
        topbarEnd();
        resolve(ok);
      },
      actions: [
        {label: 'Not now', kind: 'secondary', id: 'dismiss'},
        {
          label: 'Use token',
          kind: 'primary',
          icon: 'key',
          id: 'use-token',
          submit: true,
          onClick: async () => {
            const t = input.value.trim();
            if (!t) throw {problem: {title: 'Enter a token'}};
            if (remember.checked) setToken(t);
            else {
              setToken('');
              setSessionToken(t);
            }
            ok = true;
          },
        },
      ],
    });
  });
}

setTokenPrompt(promptToken);
topbarEnd();
setInterval(() => refreshRelativeTimes(), 5000);
render();
