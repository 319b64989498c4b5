// Test harness: a fresh database per test file, the real flowgate binary on a free port
// (stopped and started again on the same port and database for restart tests), Debian's
// headless Chromium through playwright-core, and small HTTP/SQL helpers for producers.
import { spawn, execFileSync } from 'node:child_process';
import { mkdirSync, openSync, closeSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { randomUUID } from 'node:crypto';
import { chromium } from 'playwright-core';

const here = path.dirname(fileURLToPath(import.meta.url));
export const ROOT = path.resolve(here, '..', '..');
export const SCREENSHOTS = path.join(ROOT, 'target', 'screenshots');
const LOGS = path.join(ROOT, 'target', 'browser-tests');
const BIN = process.env.FLOWGATE_BIN || path.join(ROOT, 'target', 'debug', 'flowgate');
const ADMIN_URL = process.env.TEST_DATABASE_URL || 'postgres://postgres@127.0.0.1:5432/postgres';
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Runs SQL with psql; returns its unaligned output. */
export function sql(url, query) {
  return execFileSync('psql', [url, '-v', 'ON_ERROR_STOP=1', '-Atqc', query], { encoding: 'utf8' }).trim();
}

/** Creates an empty database (named like the Rust tests', so CI cleans it up). */
export function freshDatabase() {
  const name = `fg_test_${randomUUID().replaceAll('-', '')}`;
  sql(ADMIN_URL, `CREATE DATABASE ${name}`);
  return { name, url: ADMIN_URL.replace(/\/[^/]*$/, `/${name}`) };
}

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

/** The flowgate binary on one database and one port. */
export class Server {
  /** `env` (e.g. FLOWGATE_API_KEYS) applies to every start; `key` authenticates `request`. */
  static async start(label, env = {}, key = null) {
    const s = new Server(label, freshDatabase(), await freePort());
    s.env = env;
    s.key = key;
    await s.start();
    return s;
  }

  constructor(label, db, port) {
    this.label = label;
    this.db = db;
    this.port = port;
    this.base = `http://127.0.0.1:${port}`;
    this.proc = null;
    this.starts = 0;
    this.env = {};
    this.key = null;
  }

  /** Starts the binary; `env` adds or overrides settings for this start only. */
  async start(env = {}) {
    mkdirSync(LOGS, { recursive: true });
    this.starts += 1;
    const log = openSync(path.join(LOGS, `${this.label}-${this.starts}.log`), 'w');
    this.proc = spawn(BIN, ['serve'], {
      env: { ...process.env, DATABASE_URL: this.db.url, FLOWGATE_ADDR: `127.0.0.1:${this.port}`,
        FLOWGATE_HEARTBEAT: '5', FLOWGATE_SHUTDOWN_DELAY: '0', FLOWGATE_DRAIN_TIMEOUT: '5', ...this.env, ...env },
      stdio: ['ignore', log, log],
    });
    closeSync(log);
    const proc = this.proc;
    for (let i = 0; i < 200; i += 1) {
      if (proc.exitCode !== null) throw new Error(`flowgate exited with ${proc.exitCode}; see ${LOGS}`);
      try {
        const r = await fetch(`${this.base}/readyz`);
        await r.arrayBuffer();
        if (r.status === 200) return;
      } catch (e) { /* not listening yet */ }
      await sleep(100);
    }
    throw new Error(`flowgate on ${this.base} never became ready`);
  }

  /** SIGTERM, then waits (bounded) for the process to exit. */
  async stop() {
    const proc = this.proc;
    if (!proc || proc.exitCode !== null) return;
    const exited = new Promise((r) => proc.once('exit', r));
    proc.kill('SIGTERM');
    let timer;
    const late = new Promise((r) => { timer = setTimeout(() => r(false), 15000); });
    const done = await Promise.race([exited.then(() => true), late]);
    clearTimeout(timer);
    if (!done) {
      proc.kill('SIGKILL');
      await exited;
    }
    this.proc = null;
  }

  /** Stops the server. The database stays (dropping forces a slow checkpoint); .ci/run
   * drops every `fg_test_*` database before the tests, as for the Rust tests. */
  async close() {
    await this.stop();
  }

  url(p) { return `${this.base}${p}`; }

  async request(method, p, body, want = [200, 201, 202]) {
    const init = { method, headers: {} };
    if (this.key) init.headers.authorization = `Bearer ${this.key}`;
    if (body !== undefined) {
      init.headers['content-type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    const r = await fetch(this.url(p), init);
    const text = await r.text();
    if (!want.includes(r.status)) throw new Error(`${method} ${p}: ${r.status} ${text}`);
    return text ? JSON.parse(text) : null;
  }

  createRun(id, workflow = 'external', extra = {}) { return this.request('PUT', `/v1/workflows/${id}`, { workflow, ...extra }); }
  append(id, key, values) { return this.request('POST', `/v1/workflows/${id}/streams/${key}`, values); }
  closeStream(id, key) { return this.request('POST', `/v1/workflows/${id}/streams/${key}/close`); }
  setEvent(id, key, value) { return this.request('PUT', `/v1/workflows/${id}/events/${key}`, value); }

  /** Finishes a run the way another process would: update the row, then notify. */
  finish(id, status, output) {
    const out = JSON.stringify(output).replaceAll("'", "''");
    sql(this.db.url, `UPDATE flowgate.workflows SET status = '${status}', output = '${out}'::jsonb WHERE id = '${id}'; SELECT flowgate.notify('w', '${id}', '', 0)`);
  }
}

/** Debian's Chromium, headless. */
export function launchBrowser() {
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
}

/** A page whose console errors and failed requests are collected for the assertions. */
export async function openPage(browser, viewport = { width: 1200, height: 900 }) {
  const context = await browser.newContext({ viewport, reducedMotion: 'reduce' });
  const page = await context.newPage();
  page.problems = [];
  page.on('pageerror', (e) => page.problems.push(`page error: ${e.message}`));
  // Every request the page makes to a /live endpoint (one per connection attempt).
  page.liveRequests = [];
  page.on('request', (r) => { if (/\/live(\?|$)/.test(r.url())) page.liveRequests.push(r.url()); });
  return page;
}

export async function screenshot(page, name) {
  mkdirSync(SCREENSHOTS, { recursive: true });
  await page.screenshot({ path: path.join(SCREENSHOTS, `${name}.png`), fullPage: true });
}

/** Waits (bounded) for `fn` in the page to return a truthy value. */
export function waitFor(page, fn, arg, timeout = 20000) {
  return page.waitForFunction(fn, arg, { timeout, polling: 50 });
}

/** The error messages the page shows. */
export function pageErrors(page) {
  return page.$$eval('#errors .error span', (els) => els.map((e) => e.textContent));
}

export { sleep };
