// What the pages show, derived from the API's data. Pure functions, no DOM: the UI tests run
// them in Node as well.

export const FINAL_STATUSES = ['completed', 'failed', 'cancelled', 'terminated'];
export const EXECUTION_STATUSES = ['running', ...FINAL_STATUSES];

export function isFinal(status) {
  return FINAL_STATUSES.includes(status);
}

function ms(iso) {
  if (!iso) return null;
  const t = Date.parse(iso);
  return Number.isFinite(t) ? t : null;
}

// ---- definitions -------------------------------------------------------------------------

/** The kinds a definition's step can have; parallel, for_each and if hold steps. */
export const STEP_KINDS = ['activity', 'sleep', 'sleep_until', 'wait', 'parallel', 'for_each', 'set', 'fail', 'if', 'workflow'];
/** Kinds of GET /v1/executions/{id} steps[] rows that hold other rows. */
export const CONTAINER_KINDS = ['parallel', 'for_each', 'if', 'branch', 'iteration'];

export function stepKind(def) {
  if (!def || typeof def !== 'object') return 'unknown';
  for (const k of STEP_KINDS) if (k in def) return k;
  return 'unknown';
}

export function isContainerKind(kind) {
  return CONTAINER_KINDS.includes(kind);
}

/** A parallel's branches as [{name, steps}], sorted by name (the engine's order). */
export function branchesOf(def) {
  const b = def && def.parallel && def.parallel.branches;
  if (!b || typeof b !== 'object' || Array.isArray(b)) return [];
  return Object.keys(b)
    .sort((x, y) => (x < y ? -1 : x > y ? 1 : 0))
    .map((name) => ({name, steps: Array.isArray(b[name]) ? b[name] : []}));
}

/** The steps a for_each runs for each item. */
export function bodyOf(def) {
  const f = def && def.for_each;
  return f && Array.isArray(f.steps) ? f.steps : [];
}

/** An if's branches as [{name: 'then'|'else', steps}]; 'else' only when it has one. */
export function ifBranchesOf(def) {
  if (stepKind(def) !== 'if') return [];
  const out = [{name: 'then', steps: Array.isArray(def.then) ? def.then : []}];
  if (Array.isArray(def.else)) out.push({name: 'else', steps: def.else});
  return out;
}

/**
 * Every list of steps a step holds, as [{name, steps}]: a parallel's branches (by name), an
 * if's then and else, a for_each's body (name null). [] for a step that holds none.
 */
export function nestedLists(def) {
  switch (stepKind(def)) {
    case 'parallel':
      return branchesOf(def);
    case 'if':
      return ifBranchesOf(def);
    case 'for_each':
      return [{name: null, steps: bodyOf(def)}];
    default:
      return [];
  }
}

/** The workflow a workflow step starts: {name, version (null: the latest)}, or null. */
export function childWorkflowOf(def) {
  const w = stepKind(def) === 'workflow' ? def.workflow : null;
  if (!w || typeof w !== 'object' || typeof w.name !== 'string') return null;
  return {name: w.name, version: Number.isInteger(w.version) ? w.version : null};
}

/**
 * Every step of a definition, nested ones included, by id (ids are unique across a definition):
 * Map id -> {def, kind, parent (the enclosing parallel, for_each or if's id, or null), branch
 * (the branch name inside a parallel, 'then' or 'else' inside an if, else null), depth}.
 */
export function indexDefinition(defSteps) {
  const out = new Map();
  const walk = (list, parent, branch, depth) => {
    for (const d of Array.isArray(list) ? list : []) {
      if (!d || typeof d !== 'object' || typeof d.id !== 'string') continue;
      const kind = stepKind(d);
      if (!out.has(d.id)) out.set(d.id, {def: d, kind, parent, branch, depth});
      for (const b of nestedLists(d)) walk(b.steps, d.id, b.name, depth + 1);
    }
  };
  walk(defSteps, null, null, 0);
  return out;
}

export function durationText(d) {
  if (d == null) return '';
  return typeof d === 'number' ? `${d}ms` : String(d);
}

/** "payments.internal/charge" from an activity URL (an expression stays as written). */
export function urlLabel(url) {
  if (typeof url !== 'string') return '';
  if (url.includes('${')) return url;
  try {
    const u = new URL(url);
    return u.host + (u.pathname === '/' ? '' : u.pathname) + u.search;
  } catch {
    return url;
  }
}

export function urlHost(url) {
  if (typeof url !== 'string') return '';
  try {
    return new URL(url).host;
  } catch {
    return url;
  }
}

/** The signals a wait step's definition or event waits for, quoted: "a", or "a" or "b". */
export function waitNamesText(w) {
  if (!w) return '""';
  if (typeof w.signal === 'string') return `"${w.signal}"`;
  const any = Array.isArray(w.any) ? w.any : [];
  return any.map((n) => `"${n}"`).join(any.length > 2 ? ', ' : ' or ').replace(/, ([^,]*)$/, ' or $1');
}

/** One line describing what a step does. */
export function stepDetail(def) {
  switch (stepKind(def)) {
    case 'activity':
      return `POST ${urlLabel(def.activity && def.activity.url)}`;
    case 'sleep':
      return `sleep ${durationText(def.sleep)}`;
    case 'sleep_until':
      return `sleep until ${typeof def.sleep_until === 'string' ? def.sleep_until : JSON.stringify(def.sleep_until)}`;
    case 'wait': {
      const w = def.wait || {};
      let t = `${w.any ? 'any signal of' : 'signal'} ${waitNamesText(w)}`;
      if (w.timeout) t += ` · ${durationText(w.timeout)} timeout${def.on_timeout ? ` → ${def.on_timeout}` : ''}`;
      else t += ' · no timeout';
      return t;
    }
    case 'parallel': {
      const b = branchesOf(def);
      return `${b.length} branch${b.length === 1 ? '' : 'es'}: ${b.map((x) => x.name).join(', ')}`;
    }
    case 'for_each': {
      const f = def.for_each || {};
      const items = typeof f.items === 'string' ? f.items : JSON.stringify(f.items);
      return `for each of ${items} · ${f.concurrency ?? 10} at once`;
    }
    case 'set': {
      const text = JSON.stringify(def.set);
      return `set ${text.length > 60 ? `${text.slice(0, 59)}…` : text}`;
    }
    case 'fail': {
      const f = def.fail || {};
      return `fail ${f.type}${f.message ? `: ${f.message}` : ''}`;
    }
    case 'if':
      return `if ${typeof def.if === 'string' ? def.if : JSON.stringify(def.if)}${Array.isArray(def.else) ? '' : ' · no else'}`;
    case 'workflow': {
      const w = childWorkflowOf(def);
      return w ? `workflow ${w.name} · ${w.version != null ? `v${w.version}` : 'latest version'}` : 'workflow ?';
    }
    default:
      return '';
  }
}

/** "3 attempts · 50ms ×2 · timeout 5s" for the options a step sets itself. */
export function stepPolicy(def) {
  const parts = [];
  const r = def && def.retry;
  if (r) {
    if (r.max_attempts != null) parts.push(r.max_attempts === 1 ? 'no retry' : `${r.max_attempts} attempts`);
    if (r.initial_interval != null) parts.push(`backoff ${durationText(r.initial_interval)}${r.backoff_coefficient ? ` ×${r.backoff_coefficient}` : ''}`);
  }
  if (def && def.timeout != null) parts.push(`timeout ${durationText(def.timeout)}`);
  if (def && def.schedule_to_close != null) parts.push(`total ${durationText(def.schedule_to_close)}`);
  return parts.join(' · ');
}

export function retrySummary(retry) {
  if (!retry) return 'default (5 attempts, 1s backoff ×2)';
  const parts = [];
  parts.push(`${retry.max_attempts ?? 5} attempts`);
  parts.push(`initial ${durationText(retry.initial_interval ?? '1s')}`);
  parts.push(`×${retry.backoff_coefficient ?? 2}`);
  if (retry.max_interval != null) parts.push(`max ${durationText(retry.max_interval)}`);
  if (Array.isArray(retry.non_retryable_errors) && retry.non_retryable_errors.length)
    parts.push(`non-retryable: ${retry.non_retryable_errors.join(', ')}`);
  return parts.join(' · ');
}

// ---- the step tree -------------------------------------------------------------------------

/** Step statuses of work not over yet (a for_each window shows these after the failed ones). */
export const ACTIVE_STATUSES = ['running', 'retrying', 'sleeping', 'waiting', 'scheduled', 'pending'];
const ENDED_STEP_STATUSES = ['completed', 'failed', 'skipped', 'compensated', 'cancelled', 'terminated'];
/** The order of per-status counts ("3 completed · 1 running · 1 failed"). */
export const COUNT_ORDER = ['completed', 'running', 'retrying', 'sleeping', 'waiting', 'scheduled', 'pending', 'failed', 'skipped', 'compensated', 'cancelled', 'not_taken'];

/**
 * A status of the step tree that no API row has: the branch of an if that its condition did
 * not choose, and every step in it (they never run, unlike `pending` ones, and were not
 * stopped, unlike `skipped` ones).
 */
export const NOT_TAKEN = 'not_taken';
const STATUS_LABEL = {[NOT_TAKEN]: 'not taken'};

/** A status as words: "not taken" for not_taken, others as they are. */
export function statusLabel(status) {
  return STATUS_LABEL[status] || status;
}

/** A steps[] row's path: `path`, or its id for rows of a keeld from before paths. */
export function stepPath(s) {
  if (!s || typeof s !== 'object') return null;
  return s.path != null ? String(s.path) : s.id != null ? String(s.id) : null;
}

/**
 * The value a `${input...}` expression (only a plain path into the input) or a literal array
 * has; undefined for anything else. Used to know how many items a for_each has before it ends.
 */
export function inputValue(expr, input) {
  if (Array.isArray(expr)) return expr;
  if (typeof expr !== 'string') return undefined;
  const m = /^\$\{\s*input((?:\.[A-Za-z0-9_-]+|\[\d+\])*)\s*\}$/.exec(expr);
  if (!m) return undefined;
  let v = input;
  for (const part of m[1].match(/\.[A-Za-z0-9_-]+|\[\d+\]/g) || []) {
    if (v == null || typeof v !== 'object') return undefined;
    v = part[0] === '.' ? v[part.slice(1)] : v[Number(part.slice(1, -1))];
  }
  return v;
}

/** [{status, n}] over nodes (or steps[] rows), in COUNT_ORDER, other statuses after. */
export function statusCounts(nodes) {
  const m = new Map();
  for (const n of nodes || []) {
    const st = (n && n.status) || 'unknown';
    m.set(st, (m.get(st) || 0) + 1);
  }
  const known = COUNT_ORDER.filter((st) => m.has(st));
  const other = [...m.keys()].filter((st) => !COUNT_ORDER.includes(st)).sort();
  return [...known, ...other].map((status) => ({status, n: m.get(status)}));
}

/** "3 completed · 1 running · 1 failed" (and "· 25 not started" when that is known). */
export function countsText(counts, notStarted = 0) {
  const parts = (counts || []).map((c) => `${c.n} ${statusLabel(c.status)}`);
  if (notStarted > 0) parts.push(`${notStarted} not started`);
  return parts.join(' · ');
}

const byPosition = (a, b) => (a.position ?? Infinity) - (b.position ?? Infinity) || a.order - b.order;

/**
 * What the history says each if decided: Map path -> {branch ('then', 'else', or null for a
 * false condition without an else), condition (true, false, or undefined when the event does
 * not say, as on a retry that resumed the branch taken)}, from the step_scheduled events of
 * kind "if". Ifs whose condition could not be evaluated have no branch: they are left out.
 */
export function ifDecisions(events) {
  const out = new Map();
  for (const e of events || []) {
    const d = e && e.type === 'step_scheduled' && e.data;
    if (!d || d.kind !== 'if' || !('branch' in d)) continue;
    const path = e.path || e.step;
    if (path == null) continue;
    const before = out.get(path);
    const condition = typeof d.condition === 'boolean' ? d.condition : before && before.branch === d.branch ? before.condition : undefined;
    out.set(path, {branch: d.branch ?? null, condition});
  }
  return out;
}

/**
 * The steps of an execution as a tree, from the flat steps[] of GET /v1/executions/{id}:
 * parallel -> branches -> steps, for_each -> iterations -> steps, if -> then/else -> steps,
 * nested to any depth. `ifs` (ifDecisions of the history, optional) tells which branch an if
 * took when its rows do not say it yet.
 * Returns {roots, byPath}. A node: {path, id, kind, status, position, parent, depth, row (the
 * API's row, null for a placeholder), def (the definition's step; for a branch or an iteration,
 * null), body (the steps a branch or an iteration runs, from the definition), children (by
 * position), placeholder (true: a step of the definition that has not started, so the API has
 * no row for it yet: 'pending' while its parent runs, 'skipped' once the parent ended, and
 * 'not_taken' in the branch of an if that its condition did not choose), counts (statusCounts
 * of the children, for containers), items (a for_each's items when the input holds them),
 * total and notStarted (a for_each's item count and how many iterations have not started, when
 * known)}. An if's node also has taken ('then', 'else', null when its condition was false and
 * it has no else, undefined while that is not known) and condition (true, false or undefined).
 * Rows of an old keeld (no path, parent or kind) are top-level steps of the definition's kind.
 */
export function buildStepTree(exec, defSteps, ifs = null) {
  const idx = indexDefinition(defSteps);
  const rows = exec && Array.isArray(exec.steps) ? exec.steps : [];
  const byPath = new Map();
  let order = 0;
  const node = (f) => ({children: [], counts: null, total: null, notStarted: 0, body: null, placeholder: false, order: order++, ...f});
  for (const s of rows) {
    const path = stepPath(s);
    if (path == null || byPath.has(path)) continue;
    let kind = s.kind || null;
    // A branch's id is its name and an iteration's its index: never look those up as step ids.
    const info = kind === 'branch' || kind === 'iteration' ? null : idx.get(String(s.id));
    if (!kind) kind = info ? info.kind : 'unknown';
    byPath.set(path, node({path, id: String(s.id), kind, status: s.status || 'unknown', position: Number.isInteger(s.position) ? s.position : null,
      parent: s.parent != null ? String(s.parent) : null, row: s, def: info ? info.def : null}));
  }
  const roots = [];
  for (const n of byPath.values()) {
    const p = n.parent != null ? byPath.get(n.parent) : null;
    if (p) p.children.push(n);
    else roots.push(n);
  }
  const execEnded = !!(exec && isFinal(exec.status));
  const placeholder = (path, id, kind, def, parent, status, position) =>
    node({path, id, kind, status, position, parent, row: null, def, placeholder: true});
  const fill = (list, parentNode, defList, prefix, status) => {
    const have = new Set(list.map((n) => n.id));
    (Array.isArray(defList) ? defList : []).forEach((d, i) => {
      if (!d || typeof d.id !== 'string' || have.has(d.id)) return;
      const p = placeholder(prefix ? `${prefix}/${d.id}` : d.id, d.id, stepKind(d), d, parentNode ? parentNode.path : null, status, i);
      byPath.set(p.path, p);
      list.push(p);
    });
  };
  // What a step of the definition without a row is, from its parent: not taken inside a branch
  // not taken, pending while the parent may still run it, skipped once the parent ended.
  const childStatus = (n) => (n.status === NOT_TAKEN ? NOT_TAKEN : ENDED_STEP_STATUSES.includes(n.status) ? 'skipped' : 'pending');
  const addBranches = (n, branches, statusOf) => {
    const have = new Set(n.children.map((c) => c.id));
    branches.forEach((b, i) => {
      if (have.has(b.name)) return;
      const p = placeholder(`${n.path}/${b.name}`, b.name, 'branch', null, n.path, statusOf(b.name), i);
      byPath.set(p.path, p);
      n.children.push(p);
    });
  };
  if (Array.isArray(defSteps)) fill(roots, null, defSteps, '', execEnded ? 'skipped' : 'pending');
  const finish = (n, depth, parent) => {
    n.depth = depth;
    if (n.kind === 'branch' && parent && parent.def) {
      const b = nestedLists(parent.def).find((x) => x.name === n.id);
      n.body = b ? b.steps : null;
    } else if (n.kind === 'iteration' && parent && parent.def) n.body = bodyOf(parent.def);
    if (n.kind === 'parallel' && n.def) addBranches(n, branchesOf(n.def), () => childStatus(n));
    if (n.kind === 'if') decideIf(n, ifs, addBranches, childStatus);
    if (n.body) fill(n.children, n, n.body, n.path, childStatus(n));
    n.children.sort(byPosition);
    for (const c of n.children) finish(c, depth + 1, n);
    if (isContainerKind(n.kind) || n.children.length) n.counts = statusCounts(n.children);
    // A loop in a branch not taken starts no iteration: nothing to count as not started.
    if (n.kind === 'for_each' && n.status !== NOT_TAKEN) {
      const out = n.row && n.status === 'completed' ? n.row.output : undefined;
      const items = inputValue(n.def && n.def.for_each && n.def.for_each.items, exec && exec.input);
      if (Array.isArray(items)) n.items = items; // the item of each iteration, for its label
      const total = Array.isArray(out) ? out.length : Array.isArray(items) ? items.length : null;
      if (total != null) {
        n.total = total;
        n.notStarted = Math.max(0, total - n.children.length);
      }
    }
  };
  roots.sort(byPosition);
  for (const r of roots) finish(r, 0, null);
  return {roots, byPath};
}

/**
 * Which branch if node n took, and its branches without rows as placeholders. Only the branch
 * taken has rows (a branch row, then its steps): a branch row says which one; else the
 * history's step_scheduled does; else an if that completed without a branch row had a false
 * condition and no else. The other branch is not taken, with every step in it. While nothing
 * says (not reached yet, or the condition failed), both branches are as any step not started.
 */
function decideIf(n, ifs, addBranches, childStatus) {
  const row = n.children.find((c) => c.kind === 'branch' && !c.placeholder);
  const said = ifs && n.row ? ifs.get(n.path) : undefined;
  let taken;
  if (row) taken = row.id;
  else if (said) taken = said.branch;
  else if (n.row && n.status === 'completed') taken = null;
  n.taken = taken;
  n.condition = said && typeof said.condition === 'boolean' && said.branch === taken ? said.condition
    : taken === 'then' ? true : taken === 'else' || taken === null ? false : undefined;
  if (!n.def) return;
  addBranches(n, ifBranchesOf(n.def), (name) => (taken === undefined || name === taken ? childStatus(n) : NOT_TAKEN));
}

/**
 * One line on what an if decided, for its row: "took then (condition true)", "condition false,
 * no else: nothing ran", or null while it has not decided (or its condition failed).
 */
export function ifOutcomeText(node) {
  if (!node || node.kind !== 'if' || node.taken === undefined) return null;
  if (node.taken === null) return 'condition false, no else: nothing ran';
  return `took ${node.taken}${typeof node.condition === 'boolean' ? ` (condition ${node.condition})` : ''}`;
}

// ---- child workflows ---------------------------------------------------------------------------

/**
 * Whether an execution (or a list item) is a code execution: started with POST /v1/executions,
 * driven by its program's step calls, with a `name` and no workflow or definition.
 */
export function isCodeExecution(exec) {
  return !!exec && exec.kind === 'code';
}

/** The execution whose workflow step started this one, {id, step (that step's path)}, or null. */
export function parentOf(exec) {
  const p = exec && exec.parent;
  return p && typeof p === 'object' && typeof p.id === 'string' && p.id ? {id: p.id, step: typeof p.step === 'string' ? p.step : null} : null;
}

/**
 * The child execution of a workflow step, or null: its row's `child`, set once the child exists
 * (a child that could not start, as for child_not_found, never does, although step_scheduled
 * named its id); without a row, the id of tlRow (a row of deriveTimeline).
 */
export function stepChild(row, tlRow) {
  if (row) return typeof row.child === 'string' && row.child ? row.child : null;
  return tlRow && typeof tlRow.child === 'string' && tlRow.child ? tlRow.child : null;
}

/** Whether an execution starts children: a workflow step in its definition, or in its rows. */
export function startsChildren(exec, defSteps) {
  for (const info of indexDefinition(defSteps).values()) if (info.kind === 'workflow') return true;
  return ((exec && exec.steps) || []).some((s) => s && (s.kind === 'workflow' || (typeof s.child === 'string' && s.child)));
}

/** Whether a tree node starts expanded: containers and branches yes, iterations when they failed or still run. */
export function defaultExpanded(node) {
  if (!node) return false;
  if (node.kind === 'iteration') return node.status === 'failed' || ACTIVE_STATUSES.includes(node.status);
  return node.kind === 'parallel' || node.kind === 'for_each' || node.kind === 'if' || node.kind === 'branch';
}

/**
 * Which of a for_each's iterations to draw: the failed ones first, then those still running,
 * then the rest, each group by item index; at most `limit` of them. A loop of 10,000 items
 * draws `limit` rows, and says what it left out: {shown, hidden, hiddenCounts}.
 */
export function iterationWindow(children, limit = 20) {
  const rank = (n) => (n.status === 'failed' ? 0 : ACTIVE_STATUSES.includes(n.status) ? 1 : 2);
  const sorted = [...(children || [])].sort((a, b) => rank(a) - rank(b) || byPosition(a, b));
  const n = Math.max(0, limit);
  const rest = sorted.slice(n);
  return {shown: sorted.slice(0, n), hidden: rest.length, hiddenCounts: statusCounts(rest)};
}

// ---- the diagram's overlay -------------------------------------------------------------------

/**
 * The status a box of the diagram shows when the step has several instances (inside a
 * for_each): a failure first, then work in progress, then work still ahead (pending, or
 * iterations not started), and only when nothing is left, completed.
 */
const OVERLAY_RANK = ['failed', 'running', 'retrying', 'waiting', 'sleeping', 'scheduled', 'pending', 'compensated', 'cancelled', 'terminated', 'completed', 'skipped', NOT_TAKEN];

function overlayStatus(counts, notStarted) {
  const have = new Set(counts.map((c) => c.status));
  if (notStarted > 0) have.add('pending');
  return OVERLAY_RANK.find((st) => have.has(st)) || (counts[0] ? counts[0].status : 'pending');
}

/** [{signal, n}] by count, then by name. */
function signalCounts(names) {
  const m = new Map();
  for (const s of names) m.set(s, (m.get(s) || 0) + 1);
  return [...m].map(([signal, n]) => ({signal, n})).sort((a, b) => b.n - a.n || (a.signal < b.signal ? -1 : a.signal > b.signal ? 1 : 0));
}

/** The signal that ended an instance of a wait for any of several: its output, else the history's. */
function waitGot(node, tlRow) {
  if (node.status !== 'completed') return null;
  const out = node.row && node.row.output;
  if (out && typeof out === 'object' && typeof out.signal === 'string') return out.signal;
  const seg = tlRow ? [...tlRow.segments].reverse().find((x) => x.type === 'wait' && x.state === 'done' && x.got) : null;
  return seg ? seg.got : null;
}

/**
 * What the diagram draws over each box of a definition for one execution, from its step tree
 * (buildStepTree) and timeline (deriveTimeline, optional): Map step id -> state, in definition
 * order (a container before its steps). Every step of the definition has one, reached or not.
 * A state: {id, kind, status (a step status, or not_taken), instances (how many instances the
 * tree has), inLoop (inside a for_each: counts per status rather than one status), counts
 * ([{status, n}] of the instances; inLoop only), notStarted (iterations of the loop around it
 * not started, each of which will run it once; inLoop only)}, plus by kind:
 *   if:       lanes {then, else: {state ('taken', 'not_taken' or null while no instance has
 *             decided), n (instances that took it)}}; "else" is the empty lane of an if
 *             without an else, taken when its condition was false; outcome (ifOutcomeText,
 *             one instance only);
 *   workflow: child (the child execution's id, one instance only, once it exists) and
 *             childStatus (from `children`, a Map id -> list item, when known), or children
 *             (how many instances have a child, inLoop);
 *   wait with `any`: signal (the one that ended it), or signals ([{signal, n}], inLoop);
 *   for_each: iterations {counts, notStarted, total} (one instance only).
 * Cost: one pass over the tree's nodes, so a loop of 10,000 iterations stays cheap, and the
 * result has one entry per step of the definition whatever the number of iterations.
 */
export function diagramOverlay(tree, defSteps, {tl = null, children = null} = {}) {
  const out = new Map();
  // Each step of the definition, with the for_each nearest around it.
  const steps = new Map();
  const walk = (list, loop) => {
    for (const d of Array.isArray(list) ? list : []) {
      if (!d || typeof d !== 'object' || typeof d.id !== 'string' || steps.has(d.id)) continue;
      const kind = stepKind(d);
      steps.set(d.id, {def: d, kind, loop});
      for (const b of nestedLists(d)) walk(b.steps, kind === 'for_each' ? d.id : loop);
    }
  };
  walk(defSteps, null);
  const inst = new Map();
  for (const n of tree ? tree.byPath.values() : []) {
    // Branches and iterations group steps; the diagram has no box for them.
    if (n.kind === 'branch' || n.kind === 'iteration' || !steps.has(n.id)) continue;
    if (!inst.has(n.id)) inst.set(n.id, []);
    inst.get(n.id).push(n);
  }
  const tlRows = new Map(tl ? tl.rows.map((r) => [r.step, r]) : []);
  const loopNodes = new Map(); // a for_each's id -> its instances
  for (const [id, info] of steps) {
    const nodes = inst.get(id) || [];
    const inLoop = info.loop != null;
    const one = !inLoop && nodes.length === 1 ? nodes[0] : null;
    const st = {id, kind: info.kind, status: 'pending', instances: nodes.length, inLoop};
    if (inLoop) {
      st.counts = statusCounts(nodes);
      // Each iteration not started yet will run this step once (none in a loop not taken).
      st.notStarted = (loopNodes.get(info.loop) || []).reduce((n, l) => n + (l.notStarted || 0), 0);
      if (nodes.length) st.status = overlayStatus(st.counts, st.notStarted);
      else {
        // No iteration has started: as its loop says.
        const loop = out.get(info.loop);
        st.status = loop.status === NOT_TAKEN ? NOT_TAKEN : ENDED_STEP_STATUSES.includes(loop.status) && !st.notStarted ? 'skipped' : 'pending';
      }
    } else if (one) st.status = one.status;
    else if (nodes.length) st.status = overlayStatus(statusCounts(nodes), 0);
    if (info.kind === 'for_each') loopNodes.set(id, nodes);

    if (info.kind === 'if') {
      const count = (name) => nodes.filter((n) => (name === 'then' ? n.taken === 'then' : n.taken === 'else' || n.taken === null)).length;
      const decided = nodes.some((n) => n.taken !== undefined);
      const lane = (name) => {
        const n = count(name);
        return {state: decided ? (n ? 'taken' : NOT_TAKEN) : null, n};
      };
      st.lanes = {then: lane('then'), else: lane('else')};
      if (one) st.outcome = ifOutcomeText(one);
    } else if (info.kind === 'workflow') {
      const kids = nodes.map((n) => stepChild(n.row, tlRows.get(n.path))).filter(Boolean);
      if (inLoop) st.children = kids.length;
      else if (one) {
        st.child = kids[0] || null;
        const item = st.child && children ? children.get(st.child) : null;
        st.childStatus = item && item.status ? item.status : null;
      }
    } else if (info.kind === 'wait' && info.def.wait && Array.isArray(info.def.wait.any)) {
      const got = nodes.map((n) => waitGot(n, tlRows.get(n.path))).filter(Boolean);
      if (inLoop) st.signals = signalCounts(got);
      else if (one) st.signal = got[0] || null;
    } else if (info.kind === 'for_each' && one) {
      st.iterations = {counts: one.counts || [], notStarted: one.notStarted || 0, total: one.total};
    }
    out.set(id, st);
  }
  return out;
}

/**
 * The line a box of the diagram shows for its state, as parts [{text, status (for its colour,
 * optional), sep (the text before it)}]:
 *   "completed", "not taken", "waiting · child order-1:ship (running)", "completed · got "reject"",
 *   "completed · took then (condition true)", "failed · 30 iterations: 28 completed, 1 failed,
 *   1 skipped"; inside a loop its counts, "28 completed · 1 failed · 1 skipped · 3 not started"
 *   (with "got "approve" ×3, "reject" ×2" for a wait for any, "5 child executions" for a
 *   workflow step), or, while no iteration has started, "not started" ("not taken", "none ran").
 */
export function overlayParts(st) {
  if (!st) return [];
  const parts = [];
  const add = (text, status = null, sep = ' · ') => parts.push({text, status, sep: parts.length ? sep : ''});
  if (st.inLoop) {
    if (!st.instances) {
      add(st.status === NOT_TAKEN ? 'not taken' : st.status === 'skipped' ? 'none ran' : 'not started', st.status);
      return parts;
    }
    for (const c of st.counts) add(`${c.n} ${statusLabel(c.status)}`, c.status);
    if (st.notStarted > 0) add(`${st.notStarted} not started`, 'pending');
    if (st.signals && st.signals.length) add(`got ${st.signals.map((s) => `"${s.signal}" ×${s.n}`).join(', ')}`);
    if (st.children) add(`${st.children} child execution${st.children === 1 ? '' : 's'}`);
    return parts;
  }
  add(statusLabel(st.status), st.status);
  if (st.outcome) add(st.outcome);
  if (st.child) add(`child ${st.child}${st.childStatus ? ` (${st.childStatus})` : ''}`);
  if (st.signal) add(`got "${st.signal}"`);
  const it = st.iterations;
  if (it && (it.counts.length || it.notStarted > 0)) {
    const n = it.total != null ? it.total : it.counts.reduce((s, c) => s + c.n, 0) + it.notStarted;
    add(`${n} iteration${n === 1 ? '' : 's'}:`);
    it.counts.forEach((c, i) => add(`${c.n} ${statusLabel(c.status)}`, c.status, i ? ', ' : ' '));
    if (it.notStarted > 0) add(`${it.notStarted} not started`, 'pending', it.counts.length ? ', ' : ' ');
  }
  return parts;
}

/** What the label of an if's lane says: "taken" (×n inside a loop), "not taken", or ''. */
export function laneText(lane, inLoop = false) {
  if (!lane || !lane.state) return '';
  if (lane.state === NOT_TAKEN) return 'not taken';
  return inLoop ? `taken ×${lane.n}` : 'taken';
}

// ---- timeline ------------------------------------------------------------------------------

/**
 * Rebuilds, from the history, what each step did and when:
 *   segments: {type: 'attempt'|'backoff'|'timer'|'wait'|'child'|'comp'|'compbackoff', start,
 *              end, state, n (attempt), run (0, then +1 after each execution_retried), error,
 *              child (of a 'child' segment: the child execution's id), ...}
 * `end` is null while a segment is still open (running execution). Each row also has `child`
 * (a workflow step's child execution id: its row's, or without a row the one its
 * step_scheduled event named), and the result has `ifs` (ifDecisions of the history).
 */
export function deriveTimeline(exec, events, now = Date.now(), defSteps = null) {
  // One row per step instance, keyed by its path ("charge-all/3/charge"; the id at the top).
  const rows = new Map();
  const kindFromDef = new Map();
  for (const [id, info] of indexDefinition(defSteps)) kindFromDef.set(id, info.kind);
  const row = (path, id = path, kind = null) => {
    if (!rows.has(path)) {
      const nested = kind === 'branch' || kind === 'iteration';
      rows.set(path, {step: path, id, kind: kind || (nested ? null : kindFromDef.get(id)) || null, segments: [], open: {}, error: null});
    }
    return rows.get(path);
  };
  for (const st of (exec && exec.steps) || []) {
    const path = stepPath(st);
    if (path != null) row(path, st.id != null ? String(st.id) : path, st.kind || null);
  }

  let run = 0;
  const markers = [];
  const signals = [];
  let t0 = ms(exec && exec.created_at);
  let endAt = null;
  let cancelRequested = null;
  let reason = null; // of a cancel or terminate
  const spans = []; // when the execution was live: one span per run (a retry opens another)
  let span = null;

  const open = (r, type, at, extra) => {
    const seg = {type, start: at, end: null, state: 'running', run, ...extra};
    r.segments.push(seg);
    r.open[type] = seg;
    return seg;
  };
  const close = (r, type, at, state, extra) => {
    const seg = r.open[type];
    if (!seg) return null;
    seg.end = Math.max(at, seg.start);
    seg.state = state;
    if (extra) Object.assign(seg, extra);
    delete r.open[type];
    return seg;
  };
  const closeAll = (at, states) => {
    for (const r of rows.values())
      for (const type of Object.keys(r.open)) if (states[type]) close(r, type, at, states[type]);
  };

  const sorted = [...(events || [])].sort((a, b) => a.seq - b.seq);
  for (const e of sorted) {
    const at = ms(e.at);
    if (at == null) continue;
    if (t0 == null) t0 = at;
    if (!span && (e.type === 'execution_started' || e.type === 'execution_retried' || spans.length === 0)) {
      span = {start: e.type === 'execution_started' ? at : at, end: null, status: 'running'};
      spans.push(span);
    }
    const r = e.step ? row(e.path || e.step, e.step) : null;
    const d = e.data || {};
    switch (e.type) {
      case 'step_scheduled':
        if (r && d.kind) r.kind = r.kind && r.kind !== 'unknown' ? r.kind : d.kind;
        // A workflow step waits for its child from here until the step ends.
        if (r && d.kind === 'workflow') {
          close(r, 'child', at, 'abandoned');
          open(r, 'child', at, {child: d.child ?? null, workflow: d.workflow ?? null, version: d.version ?? null});
          if (d.child) r.child = d.child;
        }
        break;
      case 'child_started': {
        // Which execution the step waits for: its first child, one run again, or a new one
        // replacing a child that was cancelled (a retry of the parent).
        if (!r || !d.child) break;
        r.child = d.child;
        const seg = [...r.segments].reverse().find((x) => x.type === 'child' && x.end == null);
        if (seg) {
          seg.child = d.child;
          if (d.version != null) seg.version = d.version;
        }
        break;
      }
      case 'attempt_started':
        if (!r) break;
        close(r, 'backoff', at, 'done');
        close(r, 'attempt', at, 'abandoned');
        open(r, 'attempt', at, {n: e.attempt});
        break;
      case 'attempt_failed': {
        if (!r) break;
        let seg = close(r, 'attempt', at, 'failed', {error: d.error});
        if (!seg) {
          seg = open(r, 'attempt', at, {n: e.attempt});
          close(r, 'attempt', at, 'failed', {error: d.error});
        }
        if (d.next_attempt_at) open(r, 'backoff', at, {due: ms(d.next_attempt_at), n: (e.attempt || 0) + 1});
        else seg.final = true;
        break;
      }
      case 'step_completed':
        if (!r) break;
        close(r, 'attempt', at, 'ok');
        close(r, 'backoff', at, 'done');
        close(r, 'timer', at, 'done');
        close(r, 'wait', at, 'done');
        close(r, 'child', at, 'done');
        r.completedAt = at;
        break;
      case 'step_failed':
        if (!r) break;
        close(r, 'attempt', at, 'failed', {error: d.error});
        close(r, 'backoff', at, 'done');
        close(r, 'timer', at, 'failed');
        close(r, 'wait', at, 'failed');
        close(r, 'child', at, 'failed', {error: d.error || null});
        r.error = d.error || null;
        break;
      case 'timer_started':
        if (r) open(r, 'timer', at, {due: ms(d.due_at)});
        break;
      case 'timer_fired':
        if (r) close(r, 'timer', at, 'done');
        break;
      case 'wait_started':
        if (r) {
          const signals = typeof d.signal === 'string' ? [d.signal] : Array.isArray(d.any) ? d.any : [];
          open(r, 'wait', at, {signal: signals[0], signals, names: waitNamesText(d), timeoutAt: ms(d.timeout_at)});
        }
        break;
      case 'signal_consumed':
        if (r) close(r, 'wait', at, 'done', {payload: d.payload, got: d.signal});
        signals.push({type: 'consumed', signal: d.signal, at});
        break;
      case 'wait_timed_out':
        if (r) close(r, 'wait', at, 'timedout');
        break;
      case 'signal_received':
        signals.push({type: 'received', signal: d.signal, at, payload: d.payload});
        markers.push({at, kind: 'signal', label: `signal ${d.signal}`});
        break;
      case 'compensation_started':
        if (!r) break;
        close(r, 'compbackoff', at, 'done');
        close(r, 'comp', at, 'abandoned');
        open(r, 'comp', at, {n: e.attempt});
        break;
      case 'compensation_completed':
        if (r) close(r, 'comp', at, 'ok');
        break;
      case 'compensation_failed': {
        if (!r) break;
        let seg = close(r, 'comp', at, 'failed', {error: d.error});
        if (!seg) {
          open(r, 'comp', at, {n: e.attempt});
          seg = close(r, 'comp', at, 'failed', {error: d.error});
        }
        if (d.next_attempt_at) open(r, 'compbackoff', at, {due: ms(d.next_attempt_at), n: (e.attempt || 0) + 1});
        break;
      }
      case 'cancel_requested':
        cancelRequested = at;
        if (d.reason) reason = d.reason;
        markers.push({at, kind: 'cancel', label: 'cancel requested'});
        closeAll(at, {wait: 'cancelled', timer: 'cancelled', backoff: 'cancelled', child: 'cancelled'});
        break;
      case 'execution_retried':
        run++;
        markers.push({at, kind: 'retry', label: d.step ? `retried from ${d.step}` : 'retried'});
        break;
      case 'execution_completed':
      case 'execution_failed':
      case 'execution_cancelled':
      case 'execution_terminated':
        endAt = at;
        if (d.reason) reason = d.reason;
        if (span) {
          span.end = at;
          span.status = e.type.slice('execution_'.length);
          span = null;
        }
        markers.push({at, kind: 'end', label: e.type.slice('execution_'.length)});
        closeAll(at, {attempt: 'abandoned', comp: 'abandoned', backoff: 'cancelled', compbackoff: 'cancelled', timer: 'cancelled', wait: 'cancelled', child: 'cancelled'});
        break;
      default:
        break;
    }
  }

  const ended = exec && isFinal(exec.status);
  if (ended && exec.completed_at) endAt = Math.max(endAt ?? 0, ms(exec.completed_at));
  const tEnd = ended ? endAt ?? now : now;
  let t1 = tEnd;
  const stepStatus = new Map(((exec && exec.steps) || []).map((s) => [stepPath(s), s]));
  const out = [];
  for (const r of rows.values()) {
    for (const seg of r.segments) if (seg.end != null) t1 = Math.max(t1, seg.end);
    const attempts = r.segments.filter((x) => x.type === 'attempt');
    const comps = r.segments.filter((x) => x.type === 'comp');
    const all = r.segments;
    // The step's own time: its attempts, sleeps and waits (a compensation comes much later).
    const own = all.filter((x) => x.type !== 'comp' && x.type !== 'compbackoff');
    const first = own.length ? Math.min(...own.map((x) => x.start)) : null;
    const last = own.length ? Math.max(...own.map((x) => x.end ?? tEnd)) : null;
    const st = stepStatus.get(r.step);
    out.push({
      step: r.step,
      id: r.id,
      kind: r.kind || 'unknown',
      status: st ? st.status : r.completedAt ? 'completed' : 'pending',
      segments: all,
      attempts,
      compensations: comps,
      failedAttempts: attempts.filter((x) => x.state === 'failed').length,
      runs: new Set(attempts.map((x) => x.run)).size,
      start: first,
      end: last,
      duration: first != null ? last - first : null,
      open: {...r.open},
      error: r.error || (st && st.error) || null,
      // The row says whether the child exists (it may never: child_not_found); without a row,
      // the id the history named.
      child: st ? st.child || null : r.child || null,
    });
  }
  if (t0 == null) t0 = now;
  if (!spans.length) spans.push({start: t0, end: ended ? tEnd : null, status: exec ? exec.status : 'running'});
  const attemptsTotal = out.reduce((n, r) => n + r.attempts.length, 0);
  const retries = out.reduce((n, r) => n + Math.max(0, r.attempts.length - r.runs), 0);
  return {t0, t1: Math.max(t1, t0 + 1), tEnd, ended: !!ended, rows: out, markers, signals, cancelRequested, reason, run, spans, attemptsTotal, retries, ifs: ifDecisions(sorted)};
}

/** What the execution waits for now: [{kind, step, text, due?, since?, signal?}]. */
export function pendingWork(exec, tl) {
  if (!exec || isFinal(exec.status)) return [];
  const items = [];
  // Attempts held back by their host's limit (KEEL_HOST_LIMITS), from the step rows: the
  // history says when one began to wait, not when it was sent.
  const capacity = new Map();
  for (const s of exec.steps || []) if (s && s.status === 'running' && capacityOf(s)) capacity.set(stepPath(s), capacityOf(s));
  if (tl.cancelRequested != null)
    items.push({kind: 'cancelling', step: null, text: 'Cancel requested: compensating completed steps', since: tl.cancelRequested});
  for (const r of tl.rows) {
    const o = r.open;
    const cap = o.attempt ? capacity.get(r.step) : null;
    if (cap) items.push({kind: 'capacity', step: r.step, text: `Attempt ${o.attempt.n ?? ''} waiting for capacity of ${cap.host}`.replace('  ', ' '), since: cap.since ?? o.attempt.start});
    else if (o.attempt) items.push({kind: 'attempt', step: r.step, text: `Attempt ${o.attempt.n ?? ''} in flight`.trim(), since: o.attempt.start});
    if (o.backoff) items.push({kind: 'retry', step: r.step, text: `Attempt ${o.backoff.n} due`, due: o.backoff.due, since: o.backoff.start, error: lastError(r)});
    if (o.timer) items.push({kind: 'timer', step: r.step, text: 'Sleeping until', due: o.timer.due, since: o.timer.start});
    if (o.wait)
      items.push({kind: 'wait', step: r.step, text: `Waiting for signal ${o.wait.names}`, signal: o.wait.signal, due: o.wait.timeoutAt, since: o.wait.start});
    if (o.child)
      items.push({kind: 'child', step: r.step, text: r.child ? 'Waiting for child execution' : 'Starting its child execution', child: r.child, since: o.child.start});
    if (o.comp) items.push({kind: 'compensation', step: r.step, text: `Compensation attempt ${o.comp.n ?? ''} in flight`.trim(), since: o.comp.start});
    if (o.compbackoff) items.push({kind: 'retry', step: r.step, text: `Compensation attempt ${o.compbackoff.n} due`, due: o.compbackoff.due, since: o.compbackoff.start});
    if (!Object.keys(o).length && r.status === 'scheduled')
      items.push({kind: 'scheduled', step: r.step, text: 'Scheduled, waiting for a worker'});
  }
  const counts = new Map();
  for (const s of tl.signals) counts.set(s.signal, (counts.get(s.signal) || 0) + (s.type === 'received' ? 1 : -1));
  for (const [signal, n] of counts)
    if (n > 0) items.push({kind: 'buffered', step: null, signal, text: `${n} "${signal}" signal${n > 1 ? 's' : ''} received, kept until a wait takes ${n > 1 ? 'them' : 'it'}`});
  return items;
}

function lastError(r) {
  for (let i = r.attempts.length - 1; i >= 0; i--) if (r.attempts[i].error) return r.attempts[i].error;
  return null;
}

/** Evenly spaced "nice" ticks (1, 2, 5 × 10^k ms) across [0, span]. */
export function niceTicks(span, max = 6) {
  if (!(span > 0)) return [0];
  const raw = span / max;
  const pow = 10 ** Math.floor(Math.log10(raw));
  let step = pow;
  for (const m of [1, 2, 5, 10]) {
    step = m * pow;
    if (step >= raw) break;
  }
  // Round to human units above a second.
  const units = [1000, 2000, 5000, 10_000, 15_000, 30_000, 60_000, 120_000, 300_000, 600_000, 900_000, 1_800_000, 3_600_000, 7_200_000, 21_600_000, 43_200_000, 86_400_000];
  if (step >= 1000) step = units.find((u) => u >= raw) || step;
  const ticks = [];
  for (let t = 0; t <= span + 1e-9 && ticks.length < 50; t += step) ticks.push(t);
  return ticks;
}

// ---- events --------------------------------------------------------------------------------

export function eventTone(type) {
  if (/failed|timed_out/.test(type)) return 'bad';
  if (type === 'request_differs') return 'warn';
  if (type === 'execution_completed' || type === 'step_completed' || type === 'compensation_completed') return 'good';
  if (/^signal_/.test(type)) return 'signal';
  if (/^timer_|^wait_/.test(type)) return 'wait';
  if (/cancel|terminat|retried|result_ignored/.test(type)) return 'warn';
  if (/^compensation_/.test(type)) return 'comp';
  return 'plain';
}

function preview(v, max = 90) {
  let t;
  try {
    t = JSON.stringify(v);
  } catch {
    t = String(v);
  }
  if (t === undefined) t = '';
  return t.length > max ? t.slice(0, max - 1) + '…' : t;
}

function errText(err) {
  if (!err) return '';
  if (typeof err !== 'object') return String(err);
  return [err.type, err.message].filter(Boolean).join(': ');
}

function after(iso, fromIso, fmt) {
  const a = ms(iso);
  const b = ms(fromIso);
  return a != null && b != null ? fmt(a - b) : '';
}

function ifEventSummary(id, d) {
  if (!('branch' in d)) return `if ${id} scheduled`; // its condition failed: step_failed says why
  if (d.resumed) return `if ${id}: resumed ${d.branch} (condition not evaluated again)`;
  if (d.branch == null) return `if ${id}: condition false, no else: nothing to run`;
  return `if ${id}: took ${d.branch}${typeof d.condition === 'boolean' ? ` (condition ${d.condition})` : ''}`;
}

/** One line about an event, for the history table. fmt formats a duration in ms. */
export function eventSummary(e, fmt = (d) => `${Math.round(d)} ms`) {
  const d = e.data || {};
  switch (e.type) {
    case 'execution_started':
      return 'Execution started';
    case 'step_scheduled':
      // A code execution's step call: its key and what the call asked for.
      if (d.request !== undefined) return `called ${e.path || e.step || '?'}: ${stepCallText(d.kind, d.request)}`;
      if (d.kind === 'if') return ifEventSummary(e.step || 'step', d);
      if (d.kind === 'workflow')
        return d.child
          ? `started child ${d.child} (${d.workflow ?? '?'}${d.version != null ? ` v${d.version}` : ''})`
          : `workflow step scheduled${d.workflow ? ` (${d.workflow}${d.version != null ? ` v${d.version}` : ''})` : ''}`;
      return d.kind ? `${d.kind} step scheduled` : 'scheduled';
    case 'child_started':
      return `${d.again ? 'asked child' : 'started child'} ${d.child ?? '?'} (${d.workflow ?? '?'}${d.version != null ? ` v${d.version}` : ''})${d.again ? ' again' : ''}`;
    case 'attempt_started':
      return `Attempt ${e.attempt ?? ''} sent`.replace('  ', ' ');
    case 'waiting_for_capacity':
      return `${d.compensation ? 'compensation ' : ''}attempt ${e.attempt ?? '?'} waiting for capacity of ${d.host ?? '?'}${d.limit ? ` (limit ${d.limit})` : ''}`;
    case 'attempt_failed':
      return `${errText(d.error)}${d.next_attempt_at ? ` · next attempt in ${after(d.next_attempt_at, e.at, fmt)}` : ' · no more attempts'}`;
    case 'step_completed':
      return `output ${preview(d.output)}`;
    case 'step_failed':
    case 'execution_failed':
      return errText(d.error);
    case 'timer_started':
      return `due in ${after(d.due_at, e.at, fmt)} (${d.due_at})`;
    case 'timer_fired':
      return 'Timer fired';
    case 'wait_started':
      return `signal ${waitNamesText(d)}${d.timeout_at ? ` · times out in ${after(d.timeout_at, e.at, fmt)}` : ' · no timeout'}`;
    case 'wait_timed_out':
      return `no ${waitNamesText(d)} signal in time`;
    case 'signal_received':
      return `"${d.signal}" ${preview(d.payload, 70)}${d.idempotency_key ? ` · key ${d.idempotency_key}` : ''}`;
    case 'signal_consumed':
      return `"${d.signal}" ${preview(d.payload, 70)}`;
    case 'compensation_started':
      return `Compensation attempt ${e.attempt ?? ''} sent`;
    case 'compensation_completed':
      return `output ${preview(d.output)}`;
    case 'compensation_failed':
      return errText(d.error) + (d.next_attempt_at ? ` · next attempt in ${after(d.next_attempt_at, e.at, fmt)}` : '');
    case 'cancel_requested':
      return d.reason ? `reason: ${d.reason}` : 'Cancel requested';
    case 'complete_requested':
      return 'The program completed it';
    case 'fail_requested':
      return `The program failed it: ${errText(d.error)}`;
    case 'cancel_deadline_passed':
      return 'The program did not end it within 5 minutes of the cancel';
    case 'execution_completed':
      return `output ${preview(d.output)}`;
    case 'execution_cancelled':
      return d.reason ? `reason: ${d.reason}` : 'Cancelled';
    case 'execution_terminated':
      return d.reason ? `reason: ${d.reason}` : 'Terminated';
    case 'execution_retried':
      return d.step ? `resumed at step ${d.step}` : 'Retried';
    case 'result_ignored':
      return `late result ignored ${preview(d, 70)}`;
    case 'request_differs':
      return `${e.path || e.step || '?'} called again with another body (the first call's result stands): ${preview(d.request, 70)}`;
    case 'handler_called':
      return `called the handler, run ${d.run ?? '?'}: ${handlerReasonText(d.reason, d.key)}${d.attempt > 1 ? ` (attempt ${d.attempt})` : ''}`;
    case 'handler_failed':
      return `handler call failed, run ${d.run ?? '?'}${d.attempt != null ? ` attempt ${d.attempt}` : ''} (${handlerReasonText(d.reason, d.key)}): ${errText(d.error)}${d.next_attempt_at ? ` · next attempt in ${after(d.next_attempt_at, e.at, fmt)}` : ' · no next attempt'}`;
    default:
      return Object.keys(d).length ? preview(d) : '';
  }
}

/** Whether an event matches the history's filter (q, lower case): its type, step or path. */
export function eventMatches(e, q) {
  if (!q) return true;
  const has = (v) => typeof v === 'string' && v.toLowerCase().includes(q);
  return has(e.type) || has(e.step) || has(e.path);
}

/**
 * Which events the history table draws: the newest `limit` of those matching the filter q, in
 * order: {shown, matching (how many match), hidden (matching ones left out, the oldest)}. A
 * code execution with 10,000 keys has 20,000 events and more; a table of them all would take
 * seconds to draw.
 */
export function historyWindow(events, q, limit) {
  const all = events || [];
  const matching = q ? all.filter((e) => eventMatches(e, q)) : all;
  const from = Math.max(0, matching.length - Math.max(0, limit));
  return {shown: matching.slice(from), matching: matching.length, hidden: from};
}

/** Counts over the steps of an execution, for the summary. */
export function stepCounts(exec) {
  // Branches and iterations group steps; they are not steps themselves.
  const steps = ((exec && exec.steps) || []).filter((s) => s.kind !== 'branch' && s.kind !== 'iteration');
  const done = steps.filter((s) => s.status === 'completed').length;
  const attempts = steps.reduce((n, s) => n + (s.attempts || 0), 0);
  return {total: steps.length, done, attempts};
}

// ---- statuses, filters and what a step waits on -----------------------------------------------

/** Step statuses of GET /v1/executions/{id}; `retrying` and `sleeping` tell backoff and timers apart. */
export const STEP_STATUSES = ['pending', 'scheduled', 'running', 'retrying', 'sleeping', 'waiting', 'completed', 'failed', 'skipped', 'compensated'];

/** The statuses of a ?status= value (comma-separated), known ones only, in canonical order. */
export function parseStatusFilter(value) {
  const want = new Set(String(value || '').split(',').map((s) => s.trim()).filter(Boolean));
  return EXECUTION_STATUSES.filter((s) => want.has(s));
}

/** The ?status= value for a set of statuses ('' for none, which means any). */
export function statusFilterParam(statuses) {
  const want = new Set(statuses || []);
  return EXECUTION_STATUSES.filter((s) => want.has(s)).join(',');
}

/**
 * What a running step's attempt waits for when its host is at its limit (KEEL_HOST_LIMITS),
 * from the API's waiting_for_capacity: {host, limit, since (ms or null)}, or null.
 */
export function capacityOf(step) {
  const w = step && step.waiting_for_capacity;
  if (!w || typeof w !== 'object' || typeof w.host !== 'string') return null;
  return {host: w.host, limit: typeof w.limit === 'string' ? w.limit : null, since: ms(w.since)};
}

/**
 * What a step does now, from the step fields of the API (a list item's current_step or an
 * entry of steps[]): {step, status, text, due, signal, error, heartbeat, capacity}. `due` (ms or null) is
 * when the step moves on by itself: the next attempt of a retrying step, the end of a sleep, a
 * wait's timeout. Null for no step. `def`, the step's definition when the caller has it, tells
 * what a waiting step waits for when the fields do not: a list item's current_step from a
 * keeld before its `kind` has none, and a workflow step (waiting for its child) or a wait for
 * any of several signals has no `signal` there.
 */
export function stepNow(step, def = null) {
  if (!step || typeof step !== 'object') return null;
  const status = step.status || 'unknown';
  let due = null;
  let text;
  switch (status) {
    case 'running':
      // An attempt over its host's limit is not on the wire yet: it waits its turn.
      if (capacityOf(step)) text = `waiting for capacity of ${capacityOf(step).host}`;
      else text = step.attempts > 0 ? `running attempt ${step.attempts}` : 'running';
      break;
    case 'retrying':
      due = ms(step.next_attempt_at);
      text = due != null ? 'retrying, next attempt' : 'retrying';
      break;
    case 'sleeping':
      due = ms(step.due_at);
      text = due != null ? 'sleeping until' : 'sleeping';
      break;
    case 'waiting': {
      due = ms(step.due_at);
      const kind = step.kind || (def ? stepKind(def) : null);
      if (kind === 'workflow' || step.child) {
        // A workflow step waits for its child execution to end (no timeout of its own).
        text = step.child ? `waiting for child ${step.child}` : 'waiting for its child execution';
        break;
      }
      if (step.signal) text = `waiting for signal "${step.signal}"`;
      else if (kind === 'wait' && def && def.wait) text = `waiting for ${def.wait.any ? 'any signal of' : 'signal'} ${waitNamesText(def.wait)}`;
      // Neither the fields nor a definition say what it waits for.
      else text = kind === 'wait' ? 'waiting for a signal' : 'waiting';
      text += due == null ? ', no timeout' : ' until';
      break;
    }
    case 'scheduled':
      text = 'scheduled, due now';
      break;
    default:
      text = status;
  }
  return {
    step: step.id ?? null,
    status,
    text,
    due,
    signal: step.signal ?? null,
    error: step.last_error && typeof step.last_error === 'object' ? step.last_error : null,
    heartbeat: step.heartbeat && typeof step.heartbeat === 'object' ? {at: ms(step.heartbeat.at), details: step.heartbeat.details} : null,
    capacity: status === 'running' ? capacityOf(step) : null,
  };
}

/**
 * Whether POST .../retry will accept this execution, mirroring the engine (engine.h, on_retry):
 * it must be `failed`, at a step that failed (not in its output), and no compensation may have
 * run or been scheduled (a step `compensated`, any compensation_* event, or compensation_errors
 * in the execution's error). Returns {ok, reason}.
 */
export function retryable(exec, events = []) {
  if (!exec) return {ok: false, reason: 'no execution'};
  if (exec.status !== 'failed') return {ok: false, reason: `the execution is ${exec.status}; only a failed execution can be retried`};
  const steps = Array.isArray(exec.steps) ? exec.steps : [];
  // A code execution fails by its program's fail (its root, which steps[] does not list):
  // a retry resumes it unless compensations ran.
  const code = isCodeExecution(exec);
  // The engine resumes at the top-level step that failed (a parallel or for_each when a step
  // inside it failed); rows of an old keeld have no parent and are all top-level.
  if (!code && !steps.some((s) => s.status === 'failed' && s.parent == null))
    return {ok: false, reason: 'it failed outside a step (in its output), so there is no step to resume at'};
  const compensated =
    steps.some((s) => s.status === 'compensated') ||
    (events || []).some((e) => e && /^compensation_/.test(e.type)) ||
    !!(exec.error && exec.error.compensation_errors);
  if (compensated) return {ok: false, reason: 'compensations ran after it failed; resuming would redo work on top of their undo'};
  return {ok: true, reason: ''};
}

function waitSignals(def) {
  const w = def && def.wait;
  if (!w || typeof w !== 'object') return [];
  if (typeof w.signal === 'string') return [w.signal];
  if (Array.isArray(w.any)) return w.any.filter((s) => typeof s === 'string');
  return [];
}

/**
 * Whether "Send signal" makes sense, and for which names: {offer, waiting, ahead}. `waiting`:
 * the signals steps wait for now; `ahead`: those of wait steps not reached yet (a signal sent
 * early is kept and consumed when the wait starts). Wait steps may sit inside parallels and
 * for_each loops: a step waits when any instance of it does, and is ahead while an instance of
 * it has not started in a branch or iteration that still runs, or while a for_each around it
 * may still start iterations. Nothing is offered when the execution has ended, when a cancel
 * was requested (no wait will run again), or when no wait is left.
 */
export function signalOffer(exec, defSteps, tl) {
  const none = {offer: false, waiting: [], ahead: []};
  if (!exec || exec.status !== 'running') return none;
  if (tl && tl.cancelRequested != null) return none;
  const waiting = [];
  const ahead = [];
  if (tl) for (const r of tl.rows) if (r.open && r.open.wait) waiting.push(...(r.open.wait.signals || []));
  // A code execution's program may call a wait at any time: a signal is kept until one takes
  // it, so it is always offered while the execution runs (`anytime`).
  if (isCodeExecution(exec)) return {offer: true, waiting: [...new Set(waiting)], ahead: [], anytime: true};
  const tree = buildStepTree(exec, defSteps, tl ? tl.ifs : null);
  const hasWait = (steps) => (Array.isArray(steps) ? steps : []).some((d) => waitSignals(d).length ||
    nestedLists(d).some((b) => hasWait(b.steps)));
  const waitsIn = (steps, out = []) => {
    for (const d of Array.isArray(steps) ? steps : []) {
      out.push(...waitSignals(d));
      for (const b of nestedLists(d)) waitsIn(b.steps, out);
    }
    return out;
  };
  const visit = (n) => {
    const names = n.def ? waitSignals(n.def) : [];
    if (names.length) {
      if (n.status === 'waiting') waiting.push(...names);
      else if (n.status === 'pending' || n.status === 'scheduled') ahead.push(...names);
    }
    // A for_each that runs (or has not started) may still start iterations, each with its waits.
    if (n.kind === 'for_each' && n.def && ACTIVE_STATUSES.includes(n.status) && (n.total == null || n.notStarted > 0) && hasWait(bodyOf(n.def)))
      ahead.push(...waitsIn(bodyOf(n.def)));
    for (const c of n.children) visit(c);
  };
  for (const r of tree.roots) visit(r);
  for (const s of (exec && exec.steps) || []) if (s.status === 'waiting' && s.signal) waiting.push(s.signal);
  const w = [...new Set(waiting)];
  const a = [...new Set(ahead)].filter((n) => !w.includes(n));
  return {offer: w.length + a.length > 0, waiting: w, ahead: a};
}

// ---- code executions: step calls, the program's last call, the handler ------------------------

/** The kinds of a code execution's step call (its body's one key). */
export const STEP_CALL_KINDS = ['output', 'activity', 'sleep', 'sleep_until', 'wait'];

/**
 * One line about what a step call asked for, from its kind and body (the `request` of its
 * step_scheduled event): "activity http://pay.internal/charge", "sleep 10s", "sleep until
 * 2026-11-22T10:00:00Z", "wait signal "approve" · 1h timeout", "output {"sum":3}". With only the
 * kind (no body at hand), the kind alone.
 */
export function stepCallText(kind, request) {
  const r = request && typeof request === 'object' ? request : null;
  const k = kind || (r ? STEP_CALL_KINDS.find((x) => x in r) : null) || 'step';
  if (!r) return k === 'sleep_until' ? 'sleep until' : k;
  switch (k) {
    case 'activity': {
      const a = r.activity && typeof r.activity === 'object' ? r.activity : {};
      return `activity ${typeof a.url === 'string' ? a.url : '?'}${r.compensate ? ' · compensated' : ''}`;
    }
    case 'sleep':
      return `sleep ${durationText(r.sleep)}`;
    case 'sleep_until':
      return `sleep until ${typeof r.sleep_until === 'string' ? r.sleep_until : preview(r.sleep_until, 40)}`;
    case 'wait': {
      const w = r.wait && typeof r.wait === 'object' ? r.wait : {};
      return `wait ${w.any ? 'any signal of' : 'signal'} ${waitNamesText(w)}${w.timeout ? ` · ${durationText(w.timeout)} timeout` : ''}`;
    }
    case 'output':
      return `output ${preview(r.output, 70)}`;
    default:
      return k;
  }
}

/**
 * What the history says about each key of a code execution, folded into `index` (a Map key ->
 * {kind, request (the first call's body), at (ms of that call), differs (the body of the later
 * call that differed, or undefined), differsAt}) and returned. Pass the events in seq order; a
 * page keeps its index and folds each batch of new events into it.
 */
export function indexStepCalls(events, index = new Map()) {
  for (const e of events || []) {
    const key = e && (e.path || e.step);
    if (!key) continue;
    const d = e.data || {};
    if (e.type === 'step_scheduled' && d.request !== undefined) {
      const had = index.get(key);
      // A retry schedules a failed key again with its first request: keep the first call's time.
      index.set(key, {...had, kind: d.kind || (had && had.kind) || null, request: had && had.request !== undefined ? had.request : d.request, at: had && had.at != null ? had.at : ms(e.at)});
    } else if (e.type === 'request_differs') {
      const had = index.get(key) || {kind: null, request: undefined, at: null};
      index.set(key, {...had, differs: d.request, differsAt: ms(e.at)});
    }
  }
  return index;
}

/** "12 s", "3m 12s", "2h 05m", "3d 4h": how long the program has been idle, to the second. */
export function idleText(d) {
  if (d == null || !Number.isFinite(d)) return '';
  const s = Math.max(0, Math.floor(d / 1000));
  const pad = (n) => String(n).padStart(2, '0');
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${pad(s % 60)}s`;
  if (s < 86400) return `${Math.floor(s / 3600)}h ${pad(Math.floor((s % 3600) / 60))}m`;
  return `${Math.floor(s / 86400)}d ${Math.floor((s % 86400) / 3600)}h`;
}

/**
 * When the history last shows the program calling (ms, or null): a key's first call
 * (step_scheduled with its request), a later call with another body (request_differs), or its
 * complete or fail (execution_completed, execution_failed: a code execution ends so only by its
 * program). Replays are not journaled: last_call_at counts them, but is written about once a
 * second, so the two together say the most.
 */
export function programLastCall(events) {
  for (let i = (events || []).length - 1; i >= 0; i--) {
    const e = events[i];
    if (!e) continue;
    const call = (e.type === 'step_scheduled' && e.data && e.data.request !== undefined) || e.type === 'request_differs' ||
      e.type === 'execution_completed' || e.type === 'execution_failed';
    if (call) return ms(e.at);
  }
  return null;
}

/**
 * The program of a code execution and its last call: {state, last (ms or null), idle (ms, while
 * it runs), text}. state: 'none' (no call yet), 'idle' (it runs; idle for `idle`), 'ended' (it
 * ended; `last` is when the program last called, null if it never did). The last call is the
 * later of `last_call_at` and what `events` (the history, optional) show (programLastCall).
 * Null for a workflow's execution.
 */
export function programIdle(exec, now = Date.now(), events = null) {
  if (!isCodeExecution(exec)) return null;
  const written = ms(exec.last_call_at);
  const seen = events ? programLastCall(events) : null;
  const last = written == null ? seen : seen == null ? written : Math.max(written, seen);
  if (isFinal(exec.status)) {
    return {state: 'ended', last, idle: null, text: last == null ? 'The program never called' : 'Program last called'};
  }
  if (last == null) return {state: 'none', last: null, idle: null, text: 'Program: no call yet'};
  const idle = Math.max(0, now - last);
  return {state: 'idle', last, idle, text: `Program idle for ${idleText(idle)}`};
}

/**
 * How often the execution page reads the execution again: `base` ms, longer for a code
 * execution with thousands of keys, whose JSON lists every key (3.5 MB for 10,000): one second
 * more per 2,000 keys, at most 5 times `base`.
 */
export function pollInterval(exec, base = 1000) {
  const n = exec && Array.isArray(exec.steps) ? exec.steps.length : 0;
  if (!isCodeExecution(exec) || n <= 2000) return base;
  return Math.min(5 * base, base * Math.ceil(n / 2000));
}

const HANDLER_REASONS = {
  start: 'the execution started',
  step_ended: 'a step ended',
  inactivity: 'no call within the inactivity timeout',
  cancel: 'a cancel was requested',
  retry: 'the execution was retried',
};

/** Why Keel called the handler, in words: "step charge ended", "the execution started". */
export function handlerReasonText(reason, key) {
  if (reason === 'step_ended' && key) return `step ${key} ended`;
  return HANDLER_REASONS[reason] || String(reason || 'unknown');
}

/**
 * A code execution's handler, or null: {url, inactivityTimeout (as sent, or null: the default
 * 5m), run (the handler calls so far)}.
 */
export function handlerOf(exec) {
  const hd = exec && exec.handler;
  if (!hd || typeof hd !== 'object' || typeof hd.url !== 'string') return null;
  return {url: hd.url, inactivityTimeout: hd.inactivity_timeout ?? null, run: Number.isInteger(exec.run) ? exec.run : null};
}

/**
 * The handler's calls from the history, in order: [{seq, at (ms), ok (true: handler_called,
 * false: handler_failed), run, reason, key, attempt, error, nextAttemptAt (ms or null)}].
 */
export function handlerCalls(events) {
  const out = [];
  for (const e of events || []) {
    if (!e || (e.type !== 'handler_called' && e.type !== 'handler_failed')) continue;
    const d = e.data || {};
    out.push({
      seq: e.seq,
      at: ms(e.at),
      ok: e.type === 'handler_called',
      run: Number.isInteger(d.run) ? d.run : null,
      reason: d.reason ?? null,
      key: typeof d.key === 'string' ? d.key : null,
      attempt: Number.isInteger(d.attempt) ? d.attempt : e.attempt ?? null,
      error: d.error && typeof d.error === 'object' ? d.error : null,
      nextAttemptAt: ms(d.next_attempt_at),
    });
  }
  return out;
}

/**
 * A code execution's keys, a page at a time from GET /v1/executions/{id}/steps (first-call
 * order), of which at most `maxPages` pages are held (and drawn) at once: loading further
 * pages past that drops the first ones held, which "earlier" loads again. The pages' cursors
 * are kept (a key's position never changes, so page k always starts at the same cursor).
 *
 * Nothing here fetches: request() names what to fetch ({page, cursor}) and apply() takes the
 * answer. Pages are numbered from 0.
 */
export class KeyPages {
  constructor(limit = 50, maxPages = 10) {
    this.limit = Math.max(1, Math.min(500, Math.floor(limit) || 50));
    this.maxPages = Math.max(1, maxPages);
    this.cursors = [null]; // cursors[k]: the cursor of page k (null for page 0)
    this.pages = new Map(); // k -> {steps, next}
    this.first = 0; // the first page held
    this.last = -1; // the last page held; -1 before the first answer
  }

  /** What GET .../steps page k needs: {page, cursor}, or null while its cursor is unknown. */
  request(k) {
    if (k < 0 || k >= this.cursors.length) return null;
    return {page: k, cursor: this.cursors[k]};
  }

  /**
   * Stores the answer ({steps, next_cursor}) of page k. It becomes held when it is the page
   * after the last held or before the first (dropping pages at the other end beyond maxPages);
   * a page already held is replaced (a refresh). Returns whether page k is held.
   */
  apply(k, answer) {
    const steps = Array.isArray(answer && answer.steps) ? answer.steps : [];
    const next = (answer && answer.next_cursor) || null;
    if (next) this.cursors[k + 1] = next;
    if (this.last < 0) {
      this.first = this.last = k;
    } else if (k === this.last + 1) {
      this.last = k;
      while (this.last - this.first + 1 > this.maxPages) this.pages.delete(this.first++);
    } else if (k === this.first - 1) {
      this.first = k;
      while (this.last - this.first + 1 > this.maxPages) this.pages.delete(this.last--);
    } else if (k < this.first || k > this.last) return false;
    this.pages.set(k, {steps, next});
    return true;
  }

  /** Whether a page after the last held is known to exist, and its number. */
  hasMore() {
    const p = this.pages.get(this.last);
    return !!(p && p.next);
  }

  nextPage() {
    return this.hasMore() ? this.last + 1 : null;
  }

  /** Whether pages before the first held exist (dropped to stay within maxPages). */
  hasEarlier() {
    return this.last >= 0 && this.first > 0;
  }

  prevPage() {
    return this.hasEarlier() ? this.first - 1 : null;
  }

  /** The pages held, in order: [{page, steps}]. */
  held() {
    const out = [];
    for (let k = this.first; k <= this.last; k++) if (this.pages.has(k)) out.push({page: k, steps: this.pages.get(k).steps});
    return out;
  }

  /** The keys held, in first-call order. */
  steps() {
    return this.held().flatMap((p) => p.steps);
  }

  /** The index (0-based, in first-call order) of the first key held. */
  offset() {
    return this.first * this.limit;
  }

  /**
   * The pages to read again on a refresh: those `visible` (a Set of page numbers, e.g. those
   * on the screen) among the held ones, and always the last held (new keys come after it, and
   * its next_cursor says when they do). In page order.
   */
  refreshPages(visible = new Set()) {
    if (this.last < 0) return [0];
    const out = new Set([...visible].filter((k) => k >= this.first && k <= this.last));
    out.add(this.last);
    return [...out].sort((a, b) => a - b);
  }
}

// ---- the list's filters, tags and bulk actions ---------------------------------------------
// The executions list keeps its filters in the URL (?workflow=, ?name=, ?status=, ?range= or
// ?since=/?until=, ?tag= repeated, ?parent=); a bulk action's filter is made from the same
// state, so that "all matching" acts on what the list shows.

/** The relative time ranges of the list (?range=), in milliseconds back from now. */
export const RANGE_MS = {'15m': 900_000, '1h': 3_600_000, '24h': 86_400_000, '7d': 604_800_000};
export const LIST_PAGE_SIZE = 50;

/**
 * A tag filter as the API reads it: `key:value`, the first `:` separating them. {key, value};
 * value is null when there is no `:` (the API refuses it, and names the problem).
 */
export function tagParts(raw) {
  const s = String(raw ?? '');
  const i = s.indexOf(':');
  return i < 0 ? {key: s, value: null} : {key: s.slice(0, i), value: s.slice(i + 1)};
}

/** "customer: 42" for a chip; a tag filter without `:` as it was typed. */
export function tagText(raw) {
  const {key, value} = tagParts(raw);
  return value == null ? key : `${key}: ${value}`;
}

/** An execution's tags ({key: value}) as tag filters, by key (the API's order is its storage's). */
export function tagsOf(exec) {
  const t = exec && exec.tags && typeof exec.tags === 'object' ? exec.tags : {};
  return Object.keys(t).sort().map((k) => `${k}:${t[k]}`);
}

/** The list's filter state from its URL's query (URLSearchParams). */
export function listFilterFromQuery(q) {
  const get = (k) => q.get(k) || '';
  const since = get('since');
  const until = get('until');
  const range = RANGE_MS[get('range')] || get('range') === 'custom' ? get('range') : since || until ? 'custom' : '';
  const tags = [];
  for (const t of q.getAll('tag')) if (t && !tags.includes(t)) tags.push(t);
  return {
    workflow: get('workflow'),
    name: get('name'),
    parent: get('parent'),
    statuses: parseStatusFilter(q.get('status')),
    range,
    since: range === 'custom' ? since : '',
    until: range === 'custom' ? until : '',
    tags,
    cursor: get('cursor'),
    limit: Math.min(500, Math.max(1, Number.parseInt(q.get('limit'), 10) || LIST_PAGE_SIZE)),
  };
}

/** The list's URL query for a filter state: [[name, value]...] in a fixed order, empty ones left out. */
export function listFilterQuery(f) {
  const out = [];
  const add = (k, v) => {
    if (v) out.push([k, String(v)]);
  };
  add('workflow', f.workflow);
  add('name', f.name);
  add('parent', f.parent);
  add('status', statusFilterParam(f.statuses));
  if (f.range === 'custom') {
    add('since', f.since);
    add('until', f.until);
  } else add('range', f.range);
  for (const t of f.tags || []) add('tag', t);
  if (f.limit && f.limit !== LIST_PAGE_SIZE) add('limit', f.limit);
  add('cursor', f.cursor);
  return out;
}

/** The query of GET /v1/executions for a filter state ([[name, value]...]); now: for ?range=. */
export function listApiQuery(f, now = Date.now()) {
  const out = [['limit', String(f.limit || LIST_PAGE_SIZE)]];
  const add = (k, v) => {
    if (v) out.push([k, String(v)]);
  };
  add('workflow', f.workflow);
  add('name', f.name);
  add('parent', f.parent);
  add('status', statusFilterParam(f.statuses));
  if (f.range === 'custom') {
    add('since', f.since);
    add('until', f.until);
  } else if (RANGE_MS[f.range]) add('since', new Date(now - RANGE_MS[f.range]).toISOString());
  for (const t of f.tags || []) add('tag', t);
  add('cursor', f.cursor);
  return out;
}

/** Whether the list is filtered at all (the page and its size are not filters). */
export function hasListFilter(f) {
  return !!(f.workflow || f.name || f.parent || (f.statuses && f.statuses.length) || f.range || f.since || f.until || (f.tags && f.tags.length));
}

/**
 * The filter of a bulk action (POST /v1/executions/{action}) that matches what the list shows:
 * {filter, refused}. `refused` says why "all matching" cannot be offered (the API requires at
 * least one member, and has no `parent`), with filter null then. A relative range becomes a
 * fixed `since`, computed from `now`: the dry run and the action must count the same.
 */
export function bulkFilterOf(f, now = Date.now()) {
  if (f.parent)
    return {filter: null, refused: 'A bulk action cannot filter by parent execution. Select the rows instead.'};
  const filter = {};
  if (f.workflow) filter.workflow = f.workflow;
  if (f.name) filter.name = f.name;
  if (f.statuses && f.statuses.length) filter.status = EXECUTION_STATUSES.filter((s) => f.statuses.includes(s));
  if (f.range === 'custom') {
    if (f.since) filter.since = f.since;
    if (f.until) filter.until = f.until;
  } else if (RANGE_MS[f.range]) filter.since = new Date(now - RANGE_MS[f.range]).toISOString();
  if (f.tags && f.tags.length) {
    const tags = {};
    for (const raw of f.tags) {
      const {key, value} = tagParts(raw);
      if (value == null || (key in tags && tags[key] !== value))
        return {filter: null, refused: `The tag filter "${raw}" is not one the API takes; remove it first.`};
      tags[key] = value;
    }
    filter.tags = tags;
  }
  if (!Object.keys(filter).length)
    return {filter: null, refused: 'The list has no filter: acting on every execution needs at least one (a workflow, a status, a time range or a tag). Filter the list first, or select rows.'};
  return {filter, refused: null};
}

/** The list's filter state that shows what a bulk filter matches (null for one with `ids`). */
export function listFilterOfBulk(filter) {
  if (!filter || filter.ids) return null;
  const statuses = Array.isArray(filter.status) ? filter.status : parseStatusFilter(filter.status);
  return {
    workflow: filter.workflow || '',
    name: filter.name || '',
    parent: '',
    statuses: parseStatusFilter(statuses.join(',')),
    range: filter.since || filter.until ? 'custom' : '',
    since: filter.since || '',
    until: filter.until || '',
    tags: Object.entries(filter.tags || {}).map(([k, v]) => `${k}:${v}`),
    cursor: '',
    limit: LIST_PAGE_SIZE,
  };
}

/**
 * A bulk filter spelled out, one part per member: ["workflow checkout", "status running or
 * failed", "created since 2026-12-05 00:00:00", "tag customer: 42", "3 ids: a, b, c"]. fmt(iso):
 * how a time is written.
 */
export function filterParts(filter, fmt = (iso) => iso) {
  if (!filter) return [];
  const out = [];
  if (filter.workflow) out.push(`workflow ${filter.workflow}`);
  if (filter.name) out.push(`name ${filter.name}`);
  const statuses = Array.isArray(filter.status) ? filter.status : filter.status ? String(filter.status).split(',') : [];
  if (statuses.length) out.push(`status ${statuses.length > 1 ? `${statuses.slice(0, -1).join(', ')} or ${statuses[statuses.length - 1]}` : statuses[0]}`);
  if (filter.since) out.push(`created since ${fmt(filter.since)}`);
  if (filter.until) out.push(`created before ${fmt(filter.until)}`);
  for (const [k, v] of Object.entries(filter.tags || {})) out.push(`tag ${k}: ${v}`);
  if (Array.isArray(filter.ids)) {
    const n = filter.ids.length;
    out.push(n <= 3 ? `${n === 1 ? 'id' : `${n} ids`}: ${filter.ids.join(', ')}` : `${n} ids: ${filter.ids.slice(0, 3).join(', ')}, …`);
  }
  return out;
}

export const BULK_ACTIONS = ['cancel', 'terminate', 'retry'];
const BULK_WORDS = {
  cancel: {verb: 'Cancel', ing: 'Cancelling', done: 'cancelled', note: 'Each one stops gracefully: the attempt in flight ends and compensations run. Executions that have ended are skipped.'},
  terminate: {verb: 'Terminate', ing: 'Terminating', done: 'terminated', note: 'Each one stops at once, without compensations. Executions that have ended are skipped.'},
  retry: {verb: 'Retry', ing: 'Retrying', done: 'retried', note: 'Failed executions resume at the step that failed; the others are skipped.'},
};

export function bulkWords(action) {
  return BULK_WORDS[action] || {verb: action, ing: action, done: action, note: ''};
}

const nExec = (n) => `${n} execution${n === 1 ? '' : 's'}`;

/** What the selection is: "No execution selected", "3 selected", "All 412 executions matching this filter". */
export function selectionText({all = null, selected = 0} = {}) {
  if (all) return `All ${nExec(all.matched)} matching this filter`;
  return selected ? `${selected} selected` : 'No execution selected';
}

/**
 * The confirmation of a bulk action: {title, count, what, note, confirm}. For selected rows
 * (`ids`) the count is theirs; for "all matching", the dry run's `matched`, with the filter
 * spelled out (filterParts).
 */
export function bulkConfirmText(action, {ids = null, matched = 0, filter = null} = {}, fmt) {
  const w = bulkWords(action);
  const n = ids ? ids.length : matched;
  const what = ids
    ? `The ${n === 1 ? 'selected execution' : `${n} selected executions`}: ${ids.length <= 5 ? ids.join(', ') : `${ids.slice(0, 5).join(', ')} and ${ids.length - 5} more`}.`
    : `All ${nExec(n)} matching ${filterParts(filter, fmt).join(' · ')}${n ? '' : ' (none match now)'}.`;
  return {title: `${w.verb} ${nExec(n)}?`, count: n, what, note: w.note, confirm: `${w.verb} ${nExec(n)}`};
}

/**
 * A batch's progress (GET /v1/batches/{id}): {pct (0-100, of the bar), text}. `matched` is the
 * count when it was created; an execution that came to match later may make `processed` larger.
 */
export function batchProgress(b) {
  const matched = Math.max(0, b.matched || 0);
  const processed = Math.max(0, b.processed || 0);
  const done = b.status === 'completed';
  const pct = done ? 100 : matched ? Math.min(100, Math.round((processed * 100) / matched)) : 0;
  return {pct, text: `${processed} of ${matched} processed · ${b.acted || 0} ${bulkWords(b.action).done} · ${b.skipped || 0} skipped`};
}
