// Syntax-coloured, collapsible JSON. Containers deeper than `depth` start collapsed; every
// toggle is a real button (keyboard and screen readers).
import {copyButton, h, icon} from './dom.mjs';

function primitive(v) {
  if (v === null) return h('span', {class: 'j-null'}, 'null');
  switch (typeof v) {
    case 'string':
      return h('span', {class: 'j-str'}, JSON.stringify(v));
    case 'number':
      return h('span', {class: 'j-num'}, String(v));
    case 'boolean':
      return h('span', {class: 'j-bool'}, String(v));
    default:
      return h('span', {class: 'j-null'}, String(v));
  }
}

function node(value, level, depth, comma) {
  const isArr = Array.isArray(value);
  if (value === null || typeof value !== 'object') return [primitive(value), comma ? h('span', {class: 'j-punc'}, ',') : null];
  const entries = isArr ? value.map((v, i) => [i, v]) : Object.entries(value);
  const [open, close] = isArr ? ['[', ']'] : ['{', '}'];
  if (entries.length === 0) return [h('span', {class: 'j-punc'}, open + close), comma ? h('span', {class: 'j-punc'}, ',') : null];

  const children = h('div', {class: 'j-children'});
  entries.forEach(([k, v], i) => {
    const row = h('div', {class: 'j-row'});
    if (!isArr) row.append(h('span', {class: 'j-key'}, JSON.stringify(k)), h('span', {class: 'j-punc'}, ': '));
    for (const part of node(v, level + 1, depth, i < entries.length - 1)) if (part) row.append(part);
    children.append(row);
  });
  const count = isArr ? `${entries.length} item${entries.length === 1 ? '' : 's'}` : `${entries.length} key${entries.length === 1 ? '' : 's'}`;
  const summary = h('span', {class: 'j-summary'}, `${open} … ${close}`, h('span', {class: 'j-count'}, ` ${count}`));
  const toggle = h('button', {type: 'button', class: 'j-toggle', 'aria-label': `Collapse ${count}`}, icon('chevron'));
  const wrap = h('span', {class: 'j-node'});
  const closeEl = h('span', {class: 'j-punc j-close'}, close);
  function set(expanded) {
    wrap.classList.toggle('collapsed', !expanded);
    toggle.setAttribute('aria-expanded', String(expanded));
    toggle.setAttribute('aria-label', `${expanded ? 'Collapse' : 'Expand'} ${count}`);
  }
  toggle.addEventListener('click', () => set(wrap.classList.contains('collapsed')));
  summary.addEventListener('click', () => set(true));
  set(level < depth);
  wrap.append(toggle, h('span', {class: 'j-punc j-open'}, open), summary, children, closeEl);
  return [wrap, comma ? h('span', {class: 'j-punc'}, ',') : null];
}

/** The JSON of `value` as a coloured tree (<div class="json">). */
export function jsonView(value, {depth = 3} = {}) {
  const root = h('div', {class: 'json', tabindex: '-1'});
  if (value === undefined) {
    root.append(h('span', {class: 'j-null'}, '—'));
    return root;
  }
  for (const part of node(value, 0, depth, false)) if (part) root.append(part);
  return root;
}

function byteSize(value) {
  const n = new Blob([JSON.stringify(value) ?? '']).size;
  return n < 1024 ? `${n} B` : `${(n / 1024).toFixed(1)} KiB`;
}

/**
 * A card with a title, a collapse button, a copy button and the JSON.
 * tone: '' | 'error'.
 */
export function jsonPanel(title, value, {open = true, tone = '', depth = 3, empty = 'null', id} = {}) {
  const body = h('div', {class: 'json-body'});
  const isEmpty = value === null || value === undefined;
  body.append(isEmpty ? h('div', {class: 'json json-empty'}, empty) : jsonView(value, {depth}));
  const panelId = id || `jp-${Math.random().toString(36).slice(2, 9)}`;
  body.id = panelId;
  const toggle = h('button', {type: 'button', class: 'panel-toggle', 'aria-expanded': String(open), 'aria-controls': panelId},
    icon('chevron', 'chev'), h('span', {class: 'panel-title'}, title),
    isEmpty ? null : h('span', {class: 'panel-meta'}, byteSize(value)));
  const panel = h('section', {class: ['json-panel', tone && `tone-${tone}`, open ? 'open' : null], 'data-panel': title.toLowerCase()},
    h('div', {class: 'json-panel-head'}, toggle, isEmpty ? null : copyButton(() => JSON.stringify(value, null, 2), `Copy ${title}`)),
    body);
  body.hidden = !open;
  toggle.addEventListener('click', () => {
    const now = toggle.getAttribute('aria-expanded') !== 'true';
    toggle.setAttribute('aria-expanded', String(now));
    panel.classList.toggle('open', now);
    body.hidden = !now;
  });
  return panel;
}

/** One line of JSON, cut to max characters (for tables). */
export function jsonPreview(value, max = 120) {
  let text;
  try {
    text = JSON.stringify(value);
  } catch {
    text = String(value);
  }
  if (text === undefined) text = '';
  return text.length > max ? text.slice(0, max - 1) + '…' : text;
}
