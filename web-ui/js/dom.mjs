// Tiny DOM helpers: element builders, SVG icons, copy to clipboard, toasts.
// The page runs under a strict CSP: never set a style attribute (element.style.x is fine).
import {statusLabel} from './model.mjs';

const SVG_NS = 'http://www.w3.org/2000/svg';

function append(el, child) {
  if (child == null || child === false) return;
  if (Array.isArray(child)) {
    for (const c of child) append(el, c);
    return;
  }
  el.append(child instanceof Node ? child : document.createTextNode(String(child)));
}

function setAttrs(el, attrs) {
  if (!attrs) return;
  for (const [k, v] of Object.entries(attrs)) {
    if (v == null || v === false) continue;
    if (k === 'class') el.setAttribute('class', Array.isArray(v) ? v.filter(Boolean).join(' ') : v);
    else if (k === 'text') el.textContent = v;
    else if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k === 'style') throw new Error('no style attributes under the CSP; use el.style');
    else if (k === 'hidden' || k === 'disabled' || k === 'open' || k === 'required' || k === 'checked')
      el[k] = !!v;
    else if (k === 'value') el.value = v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
}

/** h('div', {class: 'x', onclick: fn}, child, ...) */
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  if (attrs && (typeof attrs !== 'object' || attrs instanceof Node || Array.isArray(attrs))) {
    children.unshift(attrs);
    attrs = null;
  }
  setAttrs(el, attrs);
  append(el, children);
  return el;
}

/** An SVG element: s('rect', {x: 1, ...}, children...) */
export function s(tag, attrs, ...children) {
  const el = document.createElementNS(SVG_NS, tag);
  if (attrs)
    for (const [k, v] of Object.entries(attrs)) {
      if (v == null || v === false) continue;
      if (k === 'class') el.setAttribute('class', Array.isArray(v) ? v.filter(Boolean).join(' ') : v);
      else if (k === 'text') el.textContent = v;
      else if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
      else el.setAttribute(k, String(v));
    }
  for (const c of children.flat()) if (c != null && c !== false) el.append(c);
  return el;
}

// 24x24 stroke icons (drawn for this UI, in the style of Feather).
const ICONS = {
  activity: [['path', {d: 'M13 2 4 14h7l-1 8 9-12h-7l1-8z'}]],
  sleep: [['circle', {cx: 12, cy: 12, r: 9}], ['path', {d: 'M12 7v5l3 2'}]],
  sleep_until: [['rect', {x: 3, y: 5, width: 18, height: 16, rx: 2}], ['path', {d: 'M16 3v4M8 3v4M3 10h18M12 14v3h3'}]],
  wait: [['path', {d: 'M4 5h16v11H9l-5 4z'}], ['path', {d: 'M8 9h8M8 12h5'}]],
  set: [['path', {d: 'M5 9h14M5 15h14'}], ['path', {d: 'M4 4h4M16 20h4'}]],
  output: [['path', {d: 'M12 3v12'}], ['path', {d: 'm7 10 5 5 5-5'}], ['path', {d: 'M5 20h14'}]],
  fail: [['circle', {cx: 12, cy: 12, r: 9}], ['path', {d: 'm9 9 6 6M15 9l-6 6'}]],
  compensate: [['path', {d: 'M3 4v6h6'}], ['path', {d: 'M3.5 10A9 9 0 1 1 6 17.5'}]],
  parallel: [['path', {d: 'M12 3v6'}], ['path', {d: 'M12 9 5 15v6M12 9l7 6v6'}]],
  for_each: [['path', {d: 'm17 2 4 4-4 4'}], ['path', {d: 'M3 11V9a3 3 0 0 1 3-3h15'}], ['path', {d: 'm7 22-4-4 4-4'}], ['path', {d: 'M21 13v2a3 3 0 0 1-3 3H3'}]],
  branch: [['path', {d: 'm15 10 5 5-5 5'}], ['path', {d: 'M4 4v7a4 4 0 0 0 4 4h12'}]],
  iteration: [['path', {d: 'M4 9h16M4 15h16M10 3 8 21M16 3l-2 18'}]],
  if: [['path', {d: 'M12 2 20 10 12 18 4 10z'}], ['path', {d: 'M12 18v4'}]],
  workflow: [['rect', {x: 3, y: 3, width: 18, height: 18, rx: 3}], ['rect', {x: 8, y: 8, width: 8, height: 8, rx: 1.5}]],
  unknown: [['circle', {cx: 12, cy: 12, r: 9}], ['path', {d: 'M9.5 9.5a2.5 2.5 0 1 1 3.5 2.3c-.6.3-1 .9-1 1.6V14M12 17.5v.01'}]],
  copy: [['rect', {x: 9, y: 9, width: 12, height: 12, rx: 2}], ['path', {d: 'M5 15H4a1 1 0 0 1-1-1V4a1 1 0 0 1 1-1h10a1 1 0 0 1 1 1v1'}]],
  check: [['path', {d: 'M20 6 9 17l-5-5'}]],
  x: [['path', {d: 'M18 6 6 18M6 6l12 12'}]],
  chevron: [['path', {d: 'm9 6 6 6-6 6'}]],
  refresh: [['path', {d: 'M21 4v6h-6M3 20v-6h6'}], ['path', {d: 'M20 10a8 8 0 0 0-14.5-3.5M4 14a8 8 0 0 0 14.5 3.5'}]],
  send: [['path', {d: 'M22 2 11 13M22 2l-7 20-4-9-9-4z'}]],
  cancel: [['circle', {cx: 12, cy: 12, r: 9}], ['path', {d: 'M5.6 5.6l12.8 12.8'}]],
  terminate: [['path', {d: 'M8 2h8l6 6v8l-6 6H8l-6-6V8z'}], ['path', {d: 'M9 9h6v6H9z'}]],
  retry: [['path', {d: 'M1 4v6h6'}], ['path', {d: 'M3.5 15a9 9 0 1 0 2.1-9.4L1 10'}]],
  play: [['path', {d: 'M6 4l14 8-14 8z'}]],
  key: [['circle', {cx: 7.5, cy: 15.5, r: 4.5}], ['path', {d: 'm10.7 12.3 9.8-9.8M16 7l3 3M19 4l2 2'}]],
  search: [['circle', {cx: 11, cy: 11, r: 7}], ['path', {d: 'm20 20-4-4'}]],
  clockSmall: [['circle', {cx: 12, cy: 12, r: 9}], ['path', {d: 'M12 7v5l3 2'}]],
  alert: [['path', {d: 'M12 3 2 20h20z'}], ['path', {d: 'M12 10v4M12 17v.01'}]],
  globe: [['circle', {cx: 12, cy: 12, r: 9}], ['path', {d: 'M3 12h18M12 3a14 14 0 0 1 0 18M12 3a14 14 0 0 0 0 18'}]],
};

export function iconParts(name) {
  return ICONS[name] || ICONS.unknown;
}

export function icon(name, cls) {
  return s(
    'svg',
    {
      class: ['icon', cls],
      viewBox: '0 0 24 24',
      width: 16,
      height: 16,
      fill: 'none',
      stroke: 'currentColor',
      'stroke-width': 2,
      'stroke-linecap': 'round',
      'stroke-linejoin': 'round',
      'aria-hidden': 'true',
      focusable: 'false',
    },
    iconParts(name).map(([tag, attrs]) => s(tag, attrs)),
  );
}

/** Copies text; resolves true on success. Falls back to execCommand when the API is refused. */
export async function copyText(text) {
  try {
    if (navigator.clipboard && window.isSecureContext) {
      await navigator.clipboard.writeText(text);
      return true;
    }
  } catch {
    /* fall through */
  }
  const ta = h('textarea', {class: 'offscreen', 'aria-hidden': 'true'});
  ta.value = text;
  document.body.append(ta);
  ta.select();
  let ok = false;
  try {
    ok = document.execCommand('copy');
  } catch {
    ok = false;
  }
  ta.remove();
  return ok;
}

/** A small icon button that copies getText() and says so. */
export function copyButton(getText, label = 'Copy', focusKey) {
  const btn = h('button', {type: 'button', class: 'btn btn-ghost btn-xs copy-btn', title: label, 'aria-label': label, 'data-fk': focusKey || null},
    icon('copy'), h('span', {class: 'copy-label'}, 'Copy'));
  btn.addEventListener('click', async (ev) => {
    ev.stopPropagation();
    const ok = await copyText(typeof getText === 'function' ? getText() : String(getText));
    const lab = btn.querySelector('.copy-label');
    lab.textContent = ok ? 'Copied' : 'Copy failed';
    btn.classList.toggle('copied', ok);
    setTimeout(() => {
      lab.textContent = 'Copy';
      btn.classList.remove('copied');
    }, 1500);
  });
  return btn;
}

export function toast(message, tone = 'ok') {
  const host = document.getElementById('toasts');
  if (!host) return;
  const t = h('div', {class: ['toast', `toast-${tone}`], role: tone === 'error' ? 'alert' : 'status'},
    icon(tone === 'error' ? 'alert' : 'check'), h('span', null, message));
  host.append(t);
  setTimeout(() => t.classList.add('toast-leave'), 3200);
  setTimeout(() => t.remove(), 3600);
}

export function badge(status, extraClass) {
  return h('span', {class: ['badge', `st-${status || 'unknown'}`, extraClass], 'data-status': status},
    h('span', {class: 'dot', 'aria-hidden': 'true'}), status ? statusLabel(status) : 'unknown');
}

export function spinner(label = 'Loading…') {
  return h('div', {class: 'loading', role: 'status'}, h('span', {class: 'spin', 'aria-hidden': 'true'}), label);
}

/**
 * Runs render(), which replaces content inside container, and gives the focus back to the
 * equivalent element afterwards (same id or same data-fk), so live updates do not steal the
 * keyboard focus.
 */
export function preserveFocus(container, render) {
  const a = document.activeElement;
  let sel = null;
  if (a && a !== document.body && container.contains(a)) {
    const keyed = a.closest('[data-fk]');
    if (a.id) sel = `#${CSS.escape(a.id)}`;
    else if (keyed && container.contains(keyed)) sel = `[data-fk="${CSS.escape(keyed.dataset.fk)}"]`;
  }
  render();
  if (sel) {
    const el = container.querySelector(sel);
    if (el && el !== document.activeElement) el.focus({preventScroll: true});
  }
}

/** Path helpers: ids may hold ':' and '@', names '.'; always encode. */
export const enc = encodeURIComponent;
export const paths = {
  execution: (id) => `/ui/executions/${enc(id)}`,
  workflow: (name) => `/ui/workflows/${enc(name)}`,
  version: (name, v) => `/ui/workflows/${enc(name)}/versions/${v}`,
  /** params: {name: value or [values]} or [[name, value]...] (listFilterQuery). */
  executions: (params) => '/ui/executions' + queryString(params),
  batches: () => '/ui/batches',
  batch: (id) => `/ui/batches/${enc(id)}`,
};

/**
 * "?a=1&tag=customer:42&tag=tier:gold" ('' for none). Commas and colons are fine in a query
 * and keep ?status=running,failed and ?tag=customer:42 readable.
 */
export function queryString(params) {
  const q = new URLSearchParams();
  const entries = Array.isArray(params) ? params : Object.entries(params || {});
  for (const [k, v] of entries) for (const x of Array.isArray(v) ? v : [v]) if (x !== '' && x != null && x !== false) q.append(k, String(x));
  const qs = q.toString().replace(/%2C/gi, ',').replace(/%3A/gi, ':');
  return qs ? '?' + qs : '';
}
