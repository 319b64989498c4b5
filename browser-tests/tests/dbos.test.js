// The page showing a DBOS workflow (a real DBOS app: tests/dbos/app.py with the pinned
// `dbos` package in .venv-dbos) at /dbos/runs/{id}: tokens and progress arrive live, and its
// Approve button sends the decision into DBOS.recv, after which the run finishes.
// Skipped, saying why, without the venv; with CI=true a missing venv fails.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import readline from 'node:readline';
import { ROOT, Server, freshDatabase, launchBrowser, openPage, screenshot, waitFor, pageErrors } from '../lib/harness.js';

const PYTHON = process.env.FLOWGATE_DBOS_PYTHON || path.join(ROOT, '.venv-dbos', 'bin', 'python');
let missing = null;
let app;
let lines;
let server;
let browser;

/** The next stdout line of the DBOS app starting with `word` (bounded). */
function expectLine(word, timeout = 90000) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => { lines.off('line', on); reject(new Error(`DBOS app: no ${word}`)); }, timeout);
    function on(line) {
      if (!line.startsWith(word)) return;
      clearTimeout(timer);
      lines.off('line', on);
      resolve(line.slice(word.length).trim());
    }
    lines.on('line', on);
  });
}

before(async () => {
  if (!existsSync(PYTHON)) {
    missing = `no DBOS venv at ${PYTHON} (python3 -m venv .venv-dbos && .venv-dbos/bin/pip install -r tests/dbos/requirements.txt)`;
    if (process.env.CI === 'true') throw new Error(missing);
    return;
  }
  const db = freshDatabase();
  app = spawn(PYTHON, [path.join(ROOT, 'tests', 'dbos', 'app.py')], {
    env: { ...process.env, DBOS_SYSTEM_DATABASE_URL: db.url },
    stdio: ['pipe', 'pipe', 'ignore'],
  });
  lines = readline.createInterface({ input: app.stdout });
  await expectLine('launched');
  server = await Server.start('dbos', { FLOWGATE_DBOS_URL: db.url });
  browser = await launchBrowser();
});

after(async () => {
  if (browser) await browser.close();
  if (server) await server.close();
  if (app) {
    app.stdin.end('quit\n');
    const exited = new Promise((r) => app.once('exit', r));
    const timer = setTimeout(() => app.kill('SIGKILL'), 10000);
    await exited;
    clearTimeout(timer);
  }
});

test('dbos: the page shows a DBOS run live and its Approve button completes it', async (t) => {
  if (missing) { t.skip(missing); return; }
  const id = 'dbos::page-1';
  app.stdin.write(`start ${id} 25 120\n`);
  await expectLine('started');
  const page = await openPage(browser);
  await page.goto(server.url(`/dbos/runs/${encodeURIComponent(id)}`));
  await waitFor(page, () => document.getElementById('conn').dataset.state === 'live');
  // Tokens arrive while the workflow writes them.
  await waitFor(page, () => (document.getElementById('stream-output')?.textContent || '').includes('tok3 '), undefined, 30000);
  await waitFor(page, () => document.getElementById('progress').getAttribute('aria-valuenow') === '100', undefined, 30000);
  await page.waitForSelector('#approve:visible', { timeout: 30000 });
  assert.equal(await page.textContent('#approval-request'), 'Ship it?');
  const want = Array.from({ length: 25 }, (_, i) => `tok${i} `).join('');
  await waitFor(page, () => document.getElementById('stream-output')?.hasAttribute('data-closed'));
  assert.equal(await page.textContent('#stream-output'), want);
  await page.getByLabel('Your name').fill('Dana');
  await page.getByLabel('Comment (optional)').fill('from the page');
  await page.getByRole('button', { name: 'Approve' }).click();
  await waitFor(page, () => document.getElementById('run-status').dataset.status === 'SUCCESS', undefined, 30000);
  await waitFor(page, () => document.getElementById('decision').textContent.startsWith('Approved'));
  const run = await server.request('GET', `/v1/dbos/workflows/${encodeURIComponent(id)}`);
  assert.equal(run.status, 'SUCCESS');
  assert.equal(run.output.approval.approved, true);
  assert.equal(run.output.approval.comment, 'from the page');
  assert.equal(run.output.again, null, 'DBOS.recv got the decision once');
  assert.deepEqual(await pageErrors(page), []);
  await screenshot(page, 'dbos-approval');
  await page.close();
});
