// What the schedules pages show, derived from the API's data: a cron expression read aloud (only
// for shapes it is sure of), times in a schedule's zone with its offset and daylight-saving
// shift days, the history's sentences, the executions the history names, the form's tags and
// its 422 errors by field. Pure functions, no DOM: tests/ui/model.test.mjs runs them in Node.

// ---- paths -------------------------------------------------------------------------------

/**
 * The UI's path of a schedule. The create form lives at /ui/schedules/new, and "new" is also a
 * valid schedule id: that one schedule's path spells its first letter percent-encoded, which
 * the router still decodes to "new" (a URL keeps %6E as it is, so the paths differ).
 */
export function schedulePath(id) {
  return id === 'new' ? '/ui/schedules/%6Eew' : `/ui/schedules/${encodeURIComponent(id)}`;
}

// ---- cron, read aloud --------------------------------------------------------------------

const MONTHS = ['jan', 'feb', 'mar', 'apr', 'may', 'jun', 'jul', 'aug', 'sep', 'oct', 'nov', 'dec'];
const DAYS = ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'];
const MONTH_NAMES = ['January', 'February', 'March', 'April', 'May', 'June', 'July', 'August', 'September', 'October', 'November', 'December'];
const MONTH_DAYS = [31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
const DAY_NAMES = ['Sunday', 'Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday'];

// As keeld reads them (src/sched/cron.c): ranges, names, weekday 7 is Sunday.
const FIELDS = [
  {min: 0, max: 59},
  {min: 0, max: 23},
  {min: 1, max: 31},
  {min: 1, max: 12, names: MONTHS},
  {min: 0, max: 7, names: DAYS},
];

const SHORTHANDS = {
  '@yearly': '0 0 1 1 *',
  '@annually': '0 0 1 1 *',
  '@monthly': '0 0 1 * *',
  '@weekly': '0 0 * * 0',
  '@daily': '0 0 * * *',
  '@midnight': '0 0 * * *',
  '@hourly': '0 * * * *',
};

function value(text, f) {
  if (/^[0-9]+$/.test(text)) {
    const n = Number(text);
    return n >= f.min && n <= f.max ? n : null;
  }
  if (f.names) {
    const i = f.names.indexOf(text.toLowerCase());
    if (i >= 0) return i + f.min;
  }
  return null;
}

/**
 * One field: {star: written "*", every: n for "*\/n" (else 0), values: sorted numbers}, or null
 * when it is not one keeld would take.
 */
function parseField(text, f) {
  const out = new Set();
  for (const item of text.split(',')) {
    const m = item.match(/^([^/]+)(?:\/([0-9]+))?$/);
    if (!m) return null;
    const step = m[2] === undefined ? 1 : Number(m[2]);
    if (!(step >= 1 && step <= f.max)) return null;
    let lo;
    let hi;
    if (m[1] === '*') [lo, hi] = [f.min, f.max];
    else {
      const range = m[1].split('-');
      if (range.length > 2) return null;
      lo = value(range[0], f);
      hi = range.length === 2 ? value(range[1], f) : m[2] === undefined ? lo : f.max;
      if (lo == null || hi == null || hi < lo) return null;
    }
    for (let v = lo; v <= hi; v += step) out.add(v);
  }
  const every = text.match(/^\*\/([0-9]+)$/);
  return {star: text === '*', every: every ? Number(every[1]) : 0, values: [...out].sort((a, b) => a - b)};
}

const pad2 = (n) => String(n).padStart(2, '0');

/** "a", "a and b", "a, b and c" */
export function listText(items) {
  if (items.length <= 1) return items.join('');
  return `${items.slice(0, -1).join(', ')} and ${items[items.length - 1]}`;
}

const consecutive = (vs) => vs.every((v, i) => i === 0 || v === vs[i - 1] + 1);

/**
 * A short reading of a cron expression ("every 5 minutes", "daily at 02:30", "weekdays at
 * 09:00"), or null when the expression is not one of the shapes read here (or not valid): the
 * page always shows the expression itself, and a reading only where it cannot mislead. Both
 * day fields restricted (a day matches either, as in Vixie cron) is never read.
 */
export function cronReading(expr) {
  if (typeof expr !== 'string') return null;
  let text = expr.trim();
  if (text.startsWith('@')) {
    text = SHORTHANDS[text.toLowerCase()];
    if (!text) return null;
  }
  const parts = text.split(/[ \t]+/);
  if (parts.length !== 5) return null;
  const [min, hour, dom, mon, dow] = parts.map((p, i) => parseField(p, FIELDS[i]));
  if (!min || !hour || !dom || !mon || !dow) return null;
  // Weekday 7 is Sunday (0).
  const days = [...new Set(dow.values.map((d) => d % 7))].sort((a, b) => a - b);

  // The time of day: an interval ("every 5 minutes") or clock times ("09:00 and 17:00").
  let interval = null;
  let clock = null;
  if (min.star && hour.star) interval = 'every minute';
  else if (min.every > 1 && 60 % min.every === 0 && hour.star) interval = `every ${min.every} minutes`;
  else if (min.every > 1 && 60 % min.every === 0 && !hour.every && consecutive(hour.values))
    interval = `every ${min.every} minutes from ${pad2(hour.values[0])}:00 to ${pad2(hour.values[hour.values.length - 1])}:${pad2(60 - min.every)}`;
  else if (!min.star && !min.every && hour.star && min.values.length <= 4)
    interval = `every hour at ${listText(min.values.map((m) => `:${pad2(m)}`))}`;
  else if (!min.star && !min.every && !hour.star) {
    if (min.values.length * hour.values.length <= 6) {
      clock = [];
      for (const hh of hour.values) for (const mm of min.values) clock.push(`${pad2(hh)}:${pad2(mm)}`);
      clock = listText(clock);
    } else if (hour.every > 1 && 24 % hour.every === 0 && min.values.length === 1)
      interval = `every ${hour.every} hours at :${pad2(min.values[0])}`;
  }
  if (!interval && !clock) return null;

  // The days: every day, some weekdays, a day of the month, a day of the year.
  if (dom.star && mon.star && dow.star) return interval || `daily at ${clock}`;
  if (dom.star && mon.star && !dow.every && !dow.star) {
    if (days.length === 7) return interval || `daily at ${clock}`;
    const set = days.join(',');
    const named = set === '1,2,3,4,5' ? 'weekdays' : set === '0,6' ? 'weekends' : null;
    if (interval) return `${interval} on ${named || listText(days.map((d) => `${DAY_NAMES[d]}s`))}`;
    return named ? `${named} at ${clock}` : `every ${listText(days.map((d) => DAY_NAMES[d]))} at ${clock}`;
  }
  if (!dom.star && !dom.every && mon.star && dow.star && clock && dom.values.length <= 3) {
    const note = dom.values.some((d) => d > 28) ? ' (in months that have it)' : '';
    return `monthly on day${dom.values.length > 1 ? 's' : ''} ${listText(dom.values.map(String))} at ${clock}${note}`;
  }
  if (!dom.star && !dom.every && !mon.star && !mon.every && dow.star && clock && dom.values.length === 1 && mon.values.length === 1) {
    const [d] = dom.values;
    const [m] = mon.values;
    if (d > MONTH_DAYS[m - 1]) return null; // never fires: keeld refuses it
    if (m === 2 && d === 29) return `yearly on February 29 at ${clock} (leap years)`;
    return `yearly on ${MONTH_NAMES[m - 1]} ${d} at ${clock}`;
  }
  return null;
}

// ---- time in a zone ----------------------------------------------------------------------

const formatters = new Map();

function formatter(zone) {
  let f = formatters.get(zone);
  if (f === undefined) {
    try {
      f = new Intl.DateTimeFormat('en-US', {
        timeZone: zone, hourCycle: 'h23', year: 'numeric', month: '2-digit', day: '2-digit',
        hour: '2-digit', minute: '2-digit', second: '2-digit',
      });
    } catch {
      f = null; // a zone this browser does not know (keeld reads the system's tzdata)
    }
    formatters.set(zone, f);
  }
  return f;
}

/** Whether this browser knows the zone (Intl). */
export function knownZone(zone) {
  return !!zone && !!formatter(zone);
}

/**
 * The civil time of instant t (ms) in an IANA zone: {y, mo, d, hh, mm, ss, offset} with the
 * offset from UTC in minutes; null for a zone the browser does not know.
 */
export function zonedParts(t, zone) {
  const f = formatter(zone);
  if (!f || !Number.isFinite(t)) return null;
  const p = {};
  for (const {type, value: v} of f.formatToParts(new Date(t))) p[type] = Number(v);
  const whole = Math.floor(t / 1000) * 1000;
  const hh = p.hour === 24 ? 0 : p.hour;
  const offset = Math.round((Date.UTC(p.year, p.month - 1, p.day, hh, p.minute, p.second) - whole) / 60000);
  return {y: p.year, mo: p.month, d: p.day, hh, mm: p.minute, ss: p.second, offset};
}

/** An offset in minutes as "UTC", "UTC+1", "UTC-3:30", "UTC+5:45". */
export function offsetText(min) {
  if (!min) return 'UTC';
  const a = Math.abs(min);
  return `UTC${min < 0 ? '-' : '+'}${Math.floor(a / 60)}${a % 60 ? ':' + pad2(a % 60) : ''}`;
}

/**
 * Instant t in a zone: "2026-12-06 02:30 UTC+1" (seconds only when not zero; withOffset false
 * leaves the offset out). A zone the browser does not know gives the UTC time, marked so.
 */
export function fmtInZone(t, zone, {withOffset = true} = {}) {
  if (t == null || !Number.isFinite(t)) return '—';
  const p = zonedParts(t, zone);
  if (!p) return `${fmtInZone(t, 'UTC', {withOffset: false})} UTC (zone ${zone} unknown to this browser)`;
  const secs = p.ss ? `:${pad2(p.ss)}` : '';
  const text = `${p.y}-${pad2(p.mo)}-${pad2(p.d)} ${pad2(p.hh)}:${pad2(p.mm)}${secs}`;
  return withOffset ? `${text} ${offsetText(p.offset)}` : text;
}

/**
 * Whether the civil day of instant t in the zone is a daylight-saving (or other offset) shift
 * day: {from, to} offsets in minutes when the offset at its start differs from the one at its
 * end, else null. Told from the offsets alone, as Intl gives them.
 */
export function offsetShift(t, zone) {
  const p = zonedParts(t, zone);
  if (!p) return null;
  const at = (y, mo, d, hh, mm) => {
    // The instant of that civil time: the offset of a first guess, then of the instant found.
    const civil = Date.UTC(y, mo - 1, d, hh, mm);
    let guess = civil - p.offset * 60000;
    for (let i = 0; i < 2; i++) {
      const q = zonedParts(guess, zone);
      guess = civil - q.offset * 60000;
    }
    return guess;
  };
  const from = zonedParts(at(p.y, p.mo, p.d, 0, 0), zone).offset;
  const to = zonedParts(at(p.y, p.mo, p.d, 23, 59), zone).offset;
  return from === to ? null : {from, to};
}

/** "daylight-saving shift: UTC+1 → UTC+2" for offsetShift's answer. */
export function shiftText(shift) {
  if (!shift) return '';
  return `${shift.to > shift.from ? 'clocks go forward' : 'clocks go back'} this day: ${offsetText(shift.from)} → ${offsetText(shift.to)}`;
}

// ---- the schedule itself -----------------------------------------------------------------

export const OVERLAP_TEXT = {
  skip: 'skip: no start while the previous execution runs',
  allow: 'allow: start even while the previous one runs',
  cancel_previous: 'cancel_previous: cancel the previous one, then start',
};

export function overlapText(overlap) {
  return OVERLAP_TEXT[overlap] || String(overlap);
}

/** 'paused' or 'active'. */
export function scheduleState(s) {
  return s && s.paused ? 'paused' : 'active';
}

// ---- history -----------------------------------------------------------------------------

const plural = (n, one, many = one + 's') => `${n} ${n === 1 ? one : many}`;

/**
 * A schedule history event as a sentence: an array of strings and {execution: id} (a link to an
 * execution that exists) or {code: text} (shown as code, e.g. an id that never started).
 * fmtDue(iso) formats a due time (the page passes one in the schedule's zone).
 */
export function scheduleEventParts(e, fmtDue = (iso) => iso) {
  const data = (e && e.data) || {};
  const due = e.due_at ? fmtDue(e.due_at) : null;
  switch (e.type) {
    case 'created':
      return due ? ['created; first due ', due] : ['created; it never fires'];
    case 'started':
      return ['started ', {execution: e.execution_id}, due ? ` (due ${due})` : ''];
    case 'triggered':
      return ['triggered by hand: started ', {execution: e.execution_id}];
    case 'skipped':
      if (data.reason === 'overlap' && data.running)
        return [`skipped${due ? ` the start due ${due}` : ''}: `, {execution: data.running}, ' still runs (overlap skip)'];
      return [`skipped${due ? ` the start due ${due}` : ''}${data.reason ? ` (${data.reason})` : ''}`];
    case 'missed': {
      const n = Number(data.count) || 0;
      const first = data.first ? fmtDue(data.first) : due;
      const last = data.last ? fmtDue(data.last) : null;
      const when = n > 1 && first && last ? `: ${first} to ${last}` : first ? `: ${first}` : '';
      return [`missed ${plural(n, 'due time')}${when} (after downtime only the latest due time starts)`];
    }
    case 'start_failed':
      return ['could not start ', {code: e.execution_id || '?'}, data.message ? `: ${data.message}` : ''];
    case 'paused':
      return ['paused: nothing starts until it is resumed'];
    case 'resumed':
      return due ? ['resumed; next due ', due] : ['resumed'];
    default:
      return [`${e.type}${Object.keys(data).length ? ` ${JSON.stringify(data)}` : ''}`];
  }
}

/** The sentence as plain text (execution ids as they are). */
export function scheduleEventText(e, fmtDue) {
  return scheduleEventParts(e, fmtDue).map((p) => (typeof p === 'string' ? p : p.execution || p.code)).join('');
}

/** A colour for an event type: good, bad, warn, neutral. */
export function scheduleEventTone(type) {
  if (type === 'started' || type === 'triggered') return 'good';
  if (type === 'start_failed') return 'bad';
  if (type === 'skipped' || type === 'missed' || type === 'paused') return 'warn';
  return 'neutral';
}

/**
 * The executions a schedule's history names as started (by the scheduler or a trigger), in the
 * history's order (newest first), each once: [{id, type, at, due_at}]. Its executions are the
 * ones whose ids start with "<schedule id>:", and only the history says which those are.
 */
export function scheduleExecutions(events) {
  const seen = new Set();
  const out = [];
  for (const e of events || []) {
    if ((e.type !== 'started' && e.type !== 'triggered') || !e.execution_id || seen.has(e.execution_id)) continue;
    seen.add(e.execution_id);
    out.push({id: e.execution_id, type: e.type, at: e.at, due_at: e.due_at});
  }
  return out;
}

/**
 * A newer first page of history joined to the events held (newest first, by seq): the page's
 * events newer than the newest held go in front. When the page holds no event already held
 * and says there are more, events are missing between them: {events: the page alone, gap:
 * true} (the caller starts again from it).
 */
export function mergeNewer(held, page, nextCursor) {
  const top = held.length ? held[0].seq : 0;
  const fresh = page.filter((e) => e.seq > top);
  if (held.length && fresh.length === page.length && nextCursor != null && fresh.length)
    return {events: page.slice(), gap: true};
  return {events: [...fresh, ...held], gap: false};
}

// ---- the create form ---------------------------------------------------------------------

const TAG_KEY = /^[A-Za-z0-9_./-]{1,64}$/;

/**
 * The tags box: one "key: value" per line (as ?tag=key:value), blank lines ignored. {tags} or
 * {error} naming the line. Keeld checks the rest (value length, control characters, count).
 */
export function parseTags(text) {
  const tags = {};
  const lines = String(text || '').split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i].trim();
    if (!line) continue;
    const at = line.indexOf(':');
    if (at < 0) return {error: `line ${i + 1}: write key: value`};
    const key = line.slice(0, at).trim();
    const v = line.slice(at + 1).trim();
    if (!TAG_KEY.test(key)) return {error: `line ${i + 1}: a key is 1-64 characters of A-Z a-z 0-9 _ . - /`};
    if (!v) return {error: `line ${i + 1}: the tag "${key}" has no value`};
    if (key in tags) return {error: `line ${i + 1}: the tag "${key}" is there twice`};
    tags[key] = v;
  }
  return {tags};
}

/** The create form's fields, by the first segment of an error's JSON Pointer. */
export const SCHEDULE_FIELDS = ['id', 'workflow', 'cron', 'timezone', 'input', 'tags', 'overlap'];

/**
 * A problem's errors[] by form field: {fields: {cron: ['field 2 (hour): ...'], ...}, other:
 * [errors that name no field of the form]}. A pointer below a field (/tags/customer) belongs
 * to it, with the rest of the pointer in front of its message.
 */
export function errorsByField(problem, fields = SCHEDULE_FIELDS) {
  const out = {fields: {}, other: []};
  for (const e of (problem && Array.isArray(problem.errors) ? problem.errors : [])) {
    const m = typeof e.pointer === 'string' ? e.pointer.match(/^\/([^/]+)(\/.*)?$/) : null;
    if (m && fields.includes(m[1])) {
      const msg = m[2] ? `${m[2].slice(1)}: ${e.message}` : e.message;
      (out.fields[m[1]] ||= []).push(msg);
    } else out.other.push(e);
  }
  return out;
}
