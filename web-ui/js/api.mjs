// The Keel API client: JSON in and out, problem+json errors, bearer token from localStorage.
// A 401 asks the app (once, however many requests got it) for a token, then retries.

const TOKEN_KEY = 'keel.apiToken';

export function getToken() {
  try {
    return localStorage.getItem(TOKEN_KEY) || '';
  } catch {
    return '';
  }
}

export function setToken(token) {
  try {
    if (token) localStorage.setItem(TOKEN_KEY, token);
    else localStorage.removeItem(TOKEN_KEY);
  } catch {
    /* storage refused: the token lives as long as the page */
  }
  memoryToken = token || '';
}

let memoryToken = '';

/** A token for this page only (not kept in localStorage). */
export function setSessionToken(token) {
  memoryToken = token || '';
}

export function hasToken() {
  return !!(getToken() || memoryToken);
}

let tokenPrompt = null;
let pendingPrompt = null;

/** fn(problem, hadToken) -> Promise<boolean> (true: a token was entered, retry). */
export function setTokenPrompt(fn) {
  tokenPrompt = fn;
}

/** An answer that is not 2xx. `problem` is the RFC 9457 body (or one made up for it). */
export class ApiError extends Error {
  constructor(status, problem) {
    const p = problem && typeof problem === 'object' ? problem : {};
    super(p.title || `HTTP ${status}`);
    this.name = 'ApiError';
    this.status = status;
    this.problem = {title: p.title || `HTTP ${status}`, status, ...p};
  }
}

export function isAbort(err) {
  return err && (err.name === 'AbortError' || err.name === 'TimeoutError');
}

/**
 * api(path, {method, body, rawBody, headers, signal}) -> {status, data}
 * body is JSON-encoded; rawBody is sent as it is (already JSON text).
 */
const sleep = (ms, signal) =>
  new Promise((resolve, reject) => {
    const t = setTimeout(resolve, ms);
    if (signal)
      signal.addEventListener('abort', () => {
        clearTimeout(t);
        reject(new DOMException('aborted', 'AbortError'));
      }, {once: true});
  });

export async function api(path, opts = {}) {
  const method = opts.method || 'GET';
  // A read that finds the database away (503, Retry-After) or keeld restarting is tried again
  // for a while: keeld keeps no state between requests, so the page simply carries on.
  let transient = 0;
  let prompts = 0;
  for (;;) {
    const headers = {Accept: 'application/json, application/problem+json'};
    const token = getToken() || memoryToken;
    if (token) headers.Authorization = `Bearer ${token}`;
    let body;
    if (opts.rawBody !== undefined && opts.rawBody !== '') {
      body = opts.rawBody;
      headers['Content-Type'] = 'application/json';
    } else if (opts.body !== undefined) {
      body = JSON.stringify(opts.body);
      headers['Content-Type'] = 'application/json';
    }
    Object.assign(headers, opts.headers || {});
    let res;
    try {
      res = await fetch(path, {method, headers, body, signal: opts.signal, cache: 'no-store'});
    } catch (err) {
      if (isAbort(err)) throw err;
      if (method === 'GET' && transient++ < 8) {
        await sleep(500 * transient, opts.signal);
        continue;
      }
      throw new ApiError(0, {
        title: 'Cannot reach keeld',
        detail: `The request to ${path} did not get an answer (${err.message}). Is keeld running?`,
      });
    }
    if (res.status === 503 && method === 'GET' && transient++ < 15) {
      const after = Number(res.headers.get('Retry-After'));
      await sleep(Number.isFinite(after) && after > 0 ? Math.min(after, 5) * 1000 : 1000, opts.signal);
      continue;
    }
    const text = await res.text();
    let data = null;
    if (text) {
      try {
        data = JSON.parse(text);
      } catch {
        data = res.ok ? text : {title: `HTTP ${res.status}`, detail: text.slice(0, 500)};
      }
    }
    if (res.status === 401 && tokenPrompt && prompts++ < 5) {
      if (!pendingPrompt)
        pendingPrompt = Promise.resolve(tokenPrompt(data, !!token)).finally(() => {
          pendingPrompt = null;
        });
      if (await pendingPrompt) continue;
    }
    if (!res.ok) throw new ApiError(res.status, data);
    return {status: res.status, data};
  }
}

const e = encodeURIComponent;
const HISTORY_PAGE = 200; // events per request; longer histories follow next_cursor
const HISTORY_NEXT_PAGE = 500; // the pages after the first: the API's largest, fewer requests

export const Keel = {
  listWorkflows: (cursor, signal) =>
    api(`/v1/workflows?limit=500${cursor ? '&cursor=' + e(cursor) : ''}`, {signal}).then((r) => r.data),
  async allWorkflows(signal) {
    const out = [];
    let cursor = '';
    for (let i = 0; i < 20; i++) {
      const page = await Keel.listWorkflows(cursor, signal);
      out.push(...page.workflows);
      if (!page.next_cursor) break;
      cursor = page.next_cursor;
    }
    return out;
  },
  workflow: (name, signal) => api(`/v1/workflows/${e(name)}`, {signal}).then((r) => r.data),
  version: (name, v, signal) => api(`/v1/workflows/${e(name)}/versions/${v}`, {signal}).then((r) => r.data),
  startExecution: (name, body) =>
    api(`/v1/workflows/${e(name)}/executions`, {method: 'POST', body}).then((r) => r.data),
  /** params: {name: value or [values]} or [[name, value]...]; ?tag= repeats. */
  listExecutions(params, signal) {
    const q = new URLSearchParams();
    const entries = Array.isArray(params) ? params : Object.entries(params);
    for (const [k, v] of entries) for (const x of Array.isArray(v) ? v : [v]) if (x !== '' && x != null) q.append(k, x);
    return api(`/v1/executions?${String(q).replace(/%2C/gi, ',').replace(/%3A/gi, ':')}`, {signal}).then((r) => r.data);
  },
  execution: (id, signal) => api(`/v1/executions/${e(id)}`, {signal}).then((r) => r.data),
  history: (id, afterSeq, signal, limit = HISTORY_PAGE) =>
    api(`/v1/executions/${e(id)}/history?limit=${limit}&after_seq=${afterSeq || 0}`, {signal}).then((r) => r.data),
  /** Every event after afterSeq, following next_cursor to the end. */
  async historyAll(id, afterSeq, signal, limit = HISTORY_PAGE) {
    const events = [];
    let page = await Keel.history(id, afterSeq, signal, limit);
    events.push(...page.events);
    for (let i = 0; page.next_cursor && i < 1000; i++) {
      page = await api(`/v1/executions/${e(id)}/history?limit=${Math.max(limit, HISTORY_NEXT_PAGE)}&cursor=${e(page.next_cursor)}`, {signal}).then((r) => r.data);
      events.push(...page.events);
    }
    return events;
  },
  /** A page of a code execution's keys in first-call order: {steps, next_cursor}. */
  steps: (id, {limit = 50, cursor = null} = {}, signal) =>
    api(`/v1/executions/${e(id)}/steps?limit=${limit}${cursor ? '&cursor=' + e(cursor) : ''}`, {signal}).then((r) => r.data),
  /** One key of a code execution (404 when the program never called it). */
  step: (id, key, signal) => api(`/v1/executions/${e(id)}/steps/${e(key)}`, {signal}).then((r) => r.data),
  result: (id, wait, signal) => api(`/v1/executions/${e(id)}/result?wait=${wait}`, {signal}),
  signal: (id, name, rawPayload, idempotencyKey) =>
    api(`/v1/executions/${e(id)}/signals/${e(name)}`, {
      method: 'POST',
      rawBody: rawPayload,
      headers: idempotencyKey ? {'Idempotency-Key': idempotencyKey} : undefined,
    }).then((r) => r.data),
  /**
   * A bulk action (cancel, terminate, retry) on a filter: {matched} for a dry run, else the
   * batch (202). body: the filter's members, `reason`, `dry_run`.
   */
  bulk: (action, body) => api(`/v1/executions/${e(action)}`, {method: 'POST', body}).then((r) => r.data),
  batches: ({limit = 50, cursor = ''} = {}, signal) =>
    api(`/v1/batches?limit=${limit}${cursor ? '&cursor=' + e(cursor) : ''}`, {signal}).then((r) => r.data),
  batch: (id, signal) => api(`/v1/batches/${e(id)}`, {signal}).then((r) => r.data),
  control: (id, verb, reason) =>
    api(`/v1/executions/${e(id)}/${verb}`, {method: 'POST', body: reason ? {reason} : undefined}).then((r) => r.data),
};
