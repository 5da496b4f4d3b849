// An execution's tags as chips ("customer: 42"), each a link to the executions with that tag.
import {h, paths} from './dom.mjs';
import {tagParts, tagText, tagsOf} from './model.mjs';

const ROW_TAGS = 3; // chips in a list row; the others are counted ("+2 more")

/**
 * One tag as a chip linking to href (by default the list filtered by this tag alone). onPick,
 * optional: a plain click calls onPick(raw) instead of following the link (the list adds the
 * tag to its filter in place); a click with a modifier still opens the link.
 */
export function tagChip(raw, {href = paths.executions({tag: raw}), onPick = null, fk = null, compact = false} = {}) {
  const {key, value} = tagParts(raw);
  const text = tagText(raw);
  const a = h('a', {class: ['tag-chip', compact && 'tag-chip-sm'], href, 'data-tag': raw, 'data-fk': fk, title: `${text}: show the executions with this tag`},
    h('span', {class: 'tag-k'}, value == null ? key : `${key}:`), value == null ? null : [' ', h('span', {class: 'tag-v'}, value)]);
  if (onPick)
    a.addEventListener('click', (ev) => {
      if (ev.button !== 0 || ev.metaKey || ev.ctrlKey || ev.shiftKey || ev.altKey) return;
      ev.preventDefault();
      onPick(raw);
    });
  return a;
}

/** The tags of a list row: the first few as small chips, then "+N more" (a link to the execution, which shows them all). */
export function rowTags(x, {hrefOf, onPick} = {}) {
  const tags = tagsOf(x);
  if (!tags.length) return null;
  const shown = tags.slice(0, ROW_TAGS);
  const rest = tags.slice(ROW_TAGS);
  return h('div', {class: 'row-tags', 'data-tags': String(tags.length)},
    shown.map((t) => tagChip(t, {href: hrefOf ? hrefOf(t) : undefined, onPick, fk: `t:${x.id}:${t}`, compact: true})),
    rest.length
      ? h('a', {class: 'tag-more small', href: paths.execution(x.id), 'data-fk': `tm:${x.id}`, title: rest.map(tagText).join(', ')}, `+${rest.length} more`)
      : null);
}

/** All tags of an execution, for its page; null when it has none. */
export function tagList(x) {
  const tags = tagsOf(x);
  if (!tags.length) return null;
  return h('div', {class: 'exec-tags', id: 'exec-tags'},
    h('span', {class: 'muted small', id: 'exec-tags-label'}, 'Tags'),
    h('ul', {class: 'tag-list', 'aria-labelledby': 'exec-tags-label'}, tags.map((t) => h('li', null, tagChip(t, {fk: `tag:${t}`})))));
}
