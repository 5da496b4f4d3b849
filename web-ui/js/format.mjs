// Times and durations. Absolute times are shown in local time or UTC (a toggle in the top bar,
// kept in localStorage); the other one is always in the tooltip.
import {h} from './dom.mjs';

const TZ_KEY = 'keel.timezone';
let utc = false;
try {
  utc = localStorage.getItem(TZ_KEY) === 'utc';
} catch {
  utc = false;
}

export function isUtc() {
  return utc;
}

export function setUtc(on) {
  utc = !!on;
  try {
    localStorage.setItem(TZ_KEY, utc ? 'utc' : 'local');
  } catch {
    /* private mode */
  }
}

export function ms(iso) {
  if (!iso) return null;
  const t = Date.parse(iso);
  return Number.isFinite(t) ? t : null;
}

const pad = (n, w = 2) => String(n).padStart(w, '0');

function parts(t, asUtc) {
  const d = new Date(t);
  return asUtc
    ? [d.getUTCFullYear(), d.getUTCMonth() + 1, d.getUTCDate(), d.getUTCHours(), d.getUTCMinutes(), d.getUTCSeconds(), d.getUTCMilliseconds()]
    : [d.getFullYear(), d.getMonth() + 1, d.getDate(), d.getHours(), d.getMinutes(), d.getSeconds(), d.getMilliseconds()];
}

/** 2026-11-22 00:15:19.018 (local or UTC by the toggle). */
export function fmtAbs(t, {millis = true, asUtc = utc} = {}) {
  if (t == null) return '—';
  const [y, mo, d, hh, mm, ss, mss] = parts(t, asUtc);
  return `${y}-${pad(mo)}-${pad(d)} ${pad(hh)}:${pad(mm)}:${pad(ss)}${millis ? '.' + pad(mss, 3) : ''}${asUtc ? ' UTC' : ''}`;
}

/** 00:15:19.018 */
export function fmtClock(t, {asUtc = utc} = {}) {
  if (t == null) return '—';
  const [, , , hh, mm, ss, mss] = parts(t, asUtc);
  return `${pad(hh)}:${pad(mm)}:${pad(ss)}.${pad(mss, 3)}`;
}

export function fmtDuration(d) {
  if (d == null || !Number.isFinite(d)) return '—';
  if (d < 0) d = 0;
  if (d < 1000) return `${Math.round(d)} ms`;
  if (d < 10_000) return `${(d / 1000).toFixed(2).replace(/0$/, '')} s`;
  if (d < 60_000) return `${(d / 1000).toFixed(1).replace(/\.0$/, '')} s`;
  const sec = Math.floor(d / 1000);
  if (sec < 3600) return `${Math.floor(sec / 60)}m ${pad(sec % 60)}s`;
  if (sec < 86400) return `${Math.floor(sec / 3600)}h ${pad(Math.floor((sec % 3600) / 60))}m`;
  return `${Math.floor(sec / 86400)}d ${Math.floor((sec % 86400) / 3600)}h`;
}

export function fmtRelative(t, now = Date.now()) {
  if (t == null) return '—';
  const diff = t - now;
  const a = Math.abs(diff);
  let text;
  if (a < 1000) return diff > 0 ? 'in <1 s' : 'just now';
  if (a < 60_000) text = `${Math.floor(a / 1000)} s`;
  else if (a < 3_600_000) text = `${Math.floor(a / 60_000)} min`;
  else if (a < 86_400_000) text = `${Math.floor(a / 3_600_000)} h`;
  else if (a < 30 * 86_400_000) text = `${Math.floor(a / 86_400_000)} d`;
  else return fmtAbs(t, {millis: false});
  return diff > 0 ? `in ${text}` : `${text} ago`;
}

function tooltip(t) {
  return `${fmtAbs(t, {asUtc: false})} local\n${new Date(t).toISOString()}`;
}

/**
 * A <time> that shows "3 min ago" (kept fresh by refreshRelativeTimes) and, unless compact,
 * the absolute time under it.
 */
export function timeCell(iso, {compact = false} = {}) {
  const t = ms(iso);
  if (t == null) return h('span', {class: 'muted'}, '—');
  const rel = h('time', {class: 'rel-time', datetime: iso, 'data-t': t, title: tooltip(t)}, fmtRelative(t));
  if (compact) return rel;
  return h('span', {class: 'time-stack'}, rel, h('span', {class: 'abs-time'}, fmtAbs(t, {millis: false})));
}

/** For fact boxes: the absolute time, and the relative one under it. */
export function timeFact(iso) {
  const t = ms(iso);
  if (t == null) return h('span', {class: 'muted'}, '—');
  return h('span', {class: 'time-fact'},
    h('time', {datetime: iso, title: tooltip(t)}, fmtAbs(t)),
    h('span', {class: 'rel-time muted small', 'data-t': t}, fmtRelative(t)));
}

/** An absolute time with the relative one after it: "2026-11-22 00:15:19.018 (3 min ago)". */
export function absTime(iso) {
  const t = ms(iso);
  if (t == null) return h('span', {class: 'muted'}, '—');
  return h('span', {class: 'abs-rel'},
    h('time', {datetime: iso, title: tooltip(t)}, fmtAbs(t)), ' ',
    h('span', {class: 'muted'}, '(', h('span', {class: 'rel-time', 'data-t': t}, fmtRelative(t)), ')'));
}

/**
 * A time something is due, compact for tables: "21:32:50 (in 59 min)", with the date when it
 * is not today; the full time is in the tooltip.
 */
export function dueTime(iso) {
  const t = ms(iso);
  if (t == null) return h('span', {class: 'muted'}, '—');
  const abs = fmtAbs(t, {millis: false});
  const today = abs.slice(0, 10) === fmtAbs(Date.now(), {millis: false}).slice(0, 10);
  return h('span', {class: 'due-time'},
    h('time', {datetime: iso, title: tooltip(t)}, today ? abs.slice(11) : abs), ' ',
    h('span', {class: 'muted'}, '(', h('span', {class: 'rel-time', 'data-t': t}, fmtRelative(t)), ')'));
}

/** Re-renders every relative time on the page (called on a timer by the app). */
export function refreshRelativeTimes(root = document) {
  const now = Date.now();
  for (const el of root.querySelectorAll('.rel-time[data-t]')) {
    const text = fmtRelative(Number(el.dataset.t), now);
    if (el.textContent !== text) el.textContent = text;
  }
}

/** "YYYY-MM-DDTHH:MM:SS" for <input type=datetime-local> from ISO (local time). */
export function toLocalInput(iso) {
  const t = ms(iso);
  if (t == null) return '';
  const [y, mo, d, hh, mm, ss] = parts(t, false);
  return `${y}-${pad(mo)}-${pad(d)}T${pad(hh)}:${pad(mm)}:${pad(ss)}`;
}

export function fromLocalInput(value) {
  if (!value) return '';
  const t = new Date(value).getTime();
  return Number.isFinite(t) ? new Date(t).toISOString() : '';
}

export function plural(n, one, many = one + 's') {
  return `${n} ${n === 1 ? one : many}`;
}
