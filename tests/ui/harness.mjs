// What the UI tests need, started by the tests themselves: a fresh database, the test receiver,
// keeld, and headless Chromium (Debian's, through playwright-core; never a downloaded browser).
// stop() ends all of it, and an exit hook kills whatever is left if the run is interrupted.
import {execFileSync, spawn} from 'node:child_process';
import {once} from 'node:events';
import fs from 'node:fs';
import {createRequire} from 'node:module';
import net from 'node:net';
import path from 'node:path';
import readline from 'node:readline';
import {fileURLToPath} from 'node:url';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const ARTIFACTS = path.join(ROOT, 'test-artifacts', 'ui');

const REQUIRED = ['KEEL_TEST_DATABASE_URL', 'KEELD_BIN', 'KEEL_RECEIVER_BIN'];

/** Why the UI tests cannot run here, or null. */
export function missingPrerequisites() {
  const missing = REQUIRED.filter((k) => !process.env[k]);
  if (missing.length) return `set ${missing.join(', ')}`;
  for (const k of ['KEELD_BIN', 'KEEL_RECEIVER_BIN'])
    if (!fs.existsSync(process.env[k])) return `${k}=${process.env[k]} does not exist`;
  const chromium = process.env.CHROMIUM || '/usr/bin/chromium';
  if (!fs.existsSync(chromium)) return `no Chromium at ${chromium}`;
  return null;
}

function loadPlaywright() {
  const dirs = [process.env.KEEL_TEST_NODE_MODULES, path.join(ROOT, 'tests/node/node_modules'), ...(process.env.NODE_PATH || '').split(path.delimiter)].filter(Boolean);
  for (const dir of dirs) {
    try {
      return createRequire(path.join(dir, '/'))('playwright-core');
    } catch {
      /* try the next one */
    }
  }
  throw new Error(`playwright-core not found (looked in ${dirs.join(', ')}); run npm ci in tests/node`);
}

const children = new Set();
function killAll() {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
}
process.on('exit', killAll);
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'])
  process.once(sig, () => {
    killAll();
    process.exit(128 + ({SIGINT: 2, SIGTERM: 15, SIGHUP: 1})[sig]);
  });

function alive(pid) {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return e.code === 'EPERM';
  }
}

/** Drops the databases of earlier runs that were killed before they could clean up. */
function dropStaleDatabases(adminUrl) {
  let names = [];
  try {
    names = execFileSync('psql', [adminUrl, '-X', '-A', '-t', '-c', "SELECT datname FROM pg_database WHERE datname LIKE 'keel\\_ui\\_test\\_%'"], {stdio: ['ignore', 'pipe', 'pipe'], timeout: 10_000})
      .toString().split('\n').map((x) => x.trim()).filter(Boolean);
  } catch {
    return;
  }
  for (const name of names) {
    const pid = Number(name.slice('keel_ui_test_'.length));
    if (Number.isInteger(pid) && pid !== process.pid && !alive(pid)) {
      try {
        psql(adminUrl, `DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      } catch {
        /* someone else's, or gone already */
      }
    }
  }
}

function psql(adminUrl, sql) {
  execFileSync('psql', [adminUrl, '-v', 'ON_ERROR_STOP=1', '-q', '-X', '-c', sql], {stdio: ['ignore', 'pipe', 'pipe'], timeout: 30_000});
}

/** When the PostgreSQL server last started (changes if someone restarts it under us). */
export function pgStartTime(adminUrl = process.env.KEEL_TEST_DATABASE_URL) {
  try {
    return execFileSync('psql', [adminUrl, '-X', '-A', '-t', '-c', 'SELECT pg_postmaster_start_time()'], {stdio: ['ignore', 'pipe', 'pipe'], timeout: 10_000}).toString().trim();
  } catch {
    return 'unknown';
  }
}

function dbUrl(adminUrl, db) {
  const u = new URL(adminUrl);
  u.pathname = `/${db}`;
  return u.toString();
}

export async function freePort() {
  const srv = net.createServer();
  srv.listen(0, '127.0.0.1');
  await once(srv, 'listening');
  const {port} = srv.address();
  srv.close();
  await once(srv, 'close');
  return port;
}

function firstLine(stream, timeoutMs) {
  return new Promise((resolve, reject) => {
    const rl = readline.createInterface({input: stream});
    const t = setTimeout(() => {
      rl.close();
      reject(new Error('no first line in time'));
    }, timeoutMs);
    rl.once('line', (line) => {
      clearTimeout(t);
      rl.close();
      resolve(line);
    });
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function stopChild(child, graceMs = 5000) {
  if (!child || child.exitCode !== null || child.signalCode !== null) {
    children.delete(child);
    return;
  }
  const exited = once(child, 'exit');
  child.kill('SIGTERM');
  const timer = sleep(graceMs).then(() => 'timeout');
  if ((await Promise.race([exited, timer])) === 'timeout') {
    child.kill('SIGKILL');
    await exited;
  }
  children.delete(child);
}

export class Stack {
  /** logPrefix: put in front of the log files' names, for a second test file's stack. */
  constructor({logPrefix = ''} = {}) {
    this.logPrefix = logPrefix;
    this.adminUrl = process.env.KEEL_TEST_DATABASE_URL;
    this.db = `keel_ui_test_${process.pid}`;
    this.url = dbUrl(this.adminUrl, this.db);
    this.keelds = [];
    this.receiver = null;
    this.browser = null;
  }

  async start() {
    fs.mkdirSync(ARTIFACTS, {recursive: true});
    dropStaleDatabases(this.adminUrl);
    psql(this.adminUrl, `DROP DATABASE IF EXISTS ${this.db} WITH (FORCE)`);
    psql(this.adminUrl, `CREATE DATABASE ${this.db}`);
    this.dbCreated = true;
    await this.startReceiver();
    this.base = await this.startKeeld('keeld');
    const {chromium} = loadPlaywright();
    this.browser = await chromium.launch({
      executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
      args: ['--no-sandbox', '--headless=new', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
    return this;
  }

  async startReceiver() {
    const log = fs.openSync(path.join(ARTIFACTS, `${this.logPrefix}receiver.log`), 'w');
    const child = spawn(process.env.KEEL_RECEIVER_BIN, ['--port', '0'], {stdio: ['ignore', 'pipe', log]});
    children.add(child);
    this.receiver = child;
    const line = await firstLine(child.stdout, 10_000);
    child.stdout.resume(); // keep draining
    this.receiverPort = JSON.parse(line).port;
    this.receiverUrl = `http://127.0.0.1:${this.receiverPort}`;
  }

  /** Starts a keeld on a free port; resolves its base URL once /readyz answers. */
  async startKeeld(name, extraEnv = {}) {
    for (let attempt = 1; ; attempt++) {
      const port = await freePort();
      const logPath = path.join(ARTIFACTS, `${this.logPrefix}${name}.log`);
      const log = fs.openSync(logPath, 'w');
      const env = {
        ...process.env,
        KEEL_DATABASE_URL: this.url,
        KEEL_LISTEN: `127.0.0.1:${port}`,
        KEEL_LEASE_GRACE_MS: '300',
        KEEL_LOG_LEVEL: 'warn',
        ...extraEnv,
      };
      // The embedded UI, unless KEEL_TEST_UI_DIR names a folder to serve instead (to run these
      // tests against another copy of web-ui/, e.g. an older one, without rebuilding keeld).
      delete env.KEEL_UI_DIR;
      if (process.env.KEEL_TEST_UI_DIR) env.KEEL_UI_DIR = process.env.KEEL_TEST_UI_DIR;
      if (!('KEEL_API_TOKENS' in extraEnv)) delete env.KEEL_API_TOKENS;
      const child = spawn(process.env.KEELD_BIN, [], {env, stdio: ['ignore', log, log]});
      children.add(child);
      const base = `http://127.0.0.1:${port}`;
      const deadline = Date.now() + 20_000;
      while (Date.now() < deadline && child.exitCode === null) {
        try {
          const r = await fetch(`${base}/readyz`);
          if (r.ok) {
            this.keelds.push(child);
            child.keelBase = base;
            return base;
          }
        } catch {
          /* not listening yet */
        }
        await sleep(100);
      }
      await stopChild(child);
      if (attempt >= 3) throw new Error(`keeld did not become ready; see ${logPath}`);
    }
  }

  /** Stops (SIGTERM) the keeld startKeeld answered base for. */
  async stopKeeld(base) {
    const child = this.keelds.find((k) => k.keelBase === base);
    if (!child) throw new Error(`no keeld at ${base}`);
    await stopChild(child);
    this.keelds = this.keelds.filter((k) => k !== child);
  }

  async stop() {
    const errors = [];
    if (this.browser) await this.browser.close().catch((e) => errors.push(e));
    for (const k of this.keelds) await stopChild(k).catch((e) => errors.push(e));
    if (this.receiver) await stopChild(this.receiver).catch((e) => errors.push(e));
    if (this.dbCreated) {
      try {
        psql(this.adminUrl, `DROP DATABASE IF EXISTS ${this.db} WITH (FORCE)`);
      } catch (e) {
        errors.push(e);
      }
    }
    if (errors.length) console.error('cleanup problems:', errors.map(String).join('; '));
  }
}

/** A tiny client for setting up data through the real API. */
export function client(base, token) {
  return async function api(method, p, body) {
    const headers = {};
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    if (token) headers.Authorization = `Bearer ${token}`;
    const r = await fetch(base + p, {method, headers, body: body === undefined ? undefined : JSON.stringify(body)});
    const text = await r.text();
    const data = text ? JSON.parse(text) : null;
    if (r.status >= 400) throw new Error(`${method} ${p}: ${r.status} ${text}`);
    return {status: r.status, data};
  };
}

/** Polls fn until it returns a truthy value. */
export async function until(fn, {timeout = 10_000, interval = 50, what = 'condition'} = {}) {
  const deadline = Date.now() + timeout;
  let last;
  while (Date.now() < deadline) {
    last = await fn();
    if (last) return last;
    await sleep(interval);
  }
  throw new Error(`timed out waiting for ${what} (last: ${JSON.stringify(last)})`);
}

/** The contrast ratio (WCAG) of an element's text against what is behind it: the backgrounds
 * from the element up to the first opaque one, translucent ones laid over it. */
export function contrastOf(loc) {
  return loc.evaluate((el) => {
    const rgba = (c) => {
      const v = c.match(/[\d.]+/g).map(Number);
      return [v[0], v[1], v[2], v[3] ?? 1];
    };
    const lum = ([r, g, b]) => {
      const f = (v) => ((v /= 255) <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4);
      return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
    };
    const layers = [];
    for (let n = el; n; n = n.parentElement) {
      const c = rgba(getComputedStyle(n).backgroundColor);
      if (c[3] > 0) layers.push(c);
      if (c[3] >= 1) break;
    }
    let bg = [0, 0, 0];
    for (const [r, g, b, a] of layers.reverse()) bg = [r * a + bg[0] * (1 - a), g * a + bg[1] * (1 - a), b * a + bg[2] * (1 - a)];
    const [x, y] = [lum(rgba(getComputedStyle(el).color)), lum(bg)].sort((p, q) => q - p);
    return (x + 0.05) / (y + 0.05);
  });
}
