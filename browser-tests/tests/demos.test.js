// The page driving the demo workflows of the runtime: started from the page's own forms.
// Each test is skipped, saying why, when the server does not register the demo workflows.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Server, launchBrowser, openPage, screenshot, waitFor, pageErrors, sql } from '../lib/harness.js';

let server;
let browser;
let missing = null;

before(async () => {
  server = await Server.start('demos');
  const r = await fetch(server.url('/v1/workflow-types'));
  const body = r.ok ? await r.json() : null;
  const text = JSON.stringify(body);
  const absent = ['progress', 'approval', 'tokens'].filter((n) => !text || !text.includes(`"${n}"`));
  if (!r.ok || absent.length) {
    missing = `the server does not list the demo workflows (GET /v1/workflow-types: ${r.status}${absent.length ? `, missing ${absent.join(', ')}` : ''})`;
    return;
  }
  browser = await launchBrowser();
});

after(async () => {
  if (browser) await browser.close();
  if (server) await server.close();
});

/** Fills a demo form and starts it; returns the page and the new run's id. */
async function start(demo, inputs = {}) {
  const page = await openPage(browser);
  await page.goto(server.url('/'));
  // The buttons are enabled once the workflow types arrive.
  await waitFor(page, (d) => [...document.querySelectorAll('form.demo button')]
    .some((b) => b.textContent === `Start ${d}` && !b.disabled), demo);
  const form = page.locator('form.demo', { has: page.locator(`#demo-${demo}`) });
  for (const [key, value] of Object.entries(inputs)) {
    await page.fill(`#in-${demo}-${key}`, String(value));
  }
  await form.getByRole('button', { name: `Start ${demo}` }).click();
  await waitFor(page, () => /^\/runs\/[^/]+$/.test(location.pathname));
  const id = decodeURIComponent(new URL(page.url()).pathname.split('/').pop());
  await waitFor(page, () => document.getElementById('conn').dataset.state === 'live');
  return { page, id };
}

function status(page) {
  return page.getAttribute('#run-status', 'data-status');
}

/** Every record of a stream, read over the long-poll API (independent of the page). */
async function streamText(id, key) {
  let text = '';
  let count = 0;
  let from = 0;
  for (let i = 0; i < 100; i += 1) {
    const body = await server.request('GET', `/v1/workflows/${id}/streams/${key}/poll?from=${from}&timeout=0`);
    for (const r of body.records) {
      text += typeof r.value === 'string' ? r.value : JSON.stringify(r.value);
      count += 1;
    }
    from = body.next;
    if (body.closed && body.records.length === 0) break;
    if (body.closed && from === body.next) break;
  }
  return { text, count };
}

test('demo: a tokens run shows the full text once, in order', async (t) => {
  if (missing) { t.skip(missing); return; }
  const { page, id } = await start('tokens', { words: 60, rate: 40, seed: 7 });
  await waitFor(page, () => document.getElementById('run-status').dataset.status === 'SUCCESS', undefined, 60000);
  await waitFor(page, () => document.getElementById('stream-output')?.hasAttribute('data-closed'));
  const want = await streamText(id, 'output');
  assert.equal(want.count, 60);
  assert.equal(await page.textContent('#stream-output'), want.text);
  assert.deepEqual(await pageErrors(page), []);
  await screenshot(page, 'demo-tokens');
  await page.close();
});

test('demo: an approval run finishes approved after clicking Approve', async (t) => {
  if (missing) { t.skip(missing); return; }
  const { page, id } = await start('approval', { title: 'Release the demo?', timeout_secs: 120 });
  await page.waitForSelector('#approve:visible', { timeout: 30000 });
  assert.equal(await page.textContent('#approval-request'), 'Release the demo?');
  await page.getByLabel('Your name').fill('Dana');
  await page.getByLabel('Comment (optional)').fill('ship it');
  await screenshot(page, 'demo-approval-waiting');
  await page.getByRole('button', { name: 'Approve' }).click();
  await waitFor(page, () => document.getElementById('run-status').dataset.status === 'SUCCESS', undefined, 30000);
  await waitFor(page, () => document.getElementById('decision').textContent.startsWith('Approved'));
  const run = await server.request('GET', `/v1/workflows/${id}`);
  assert.equal(run.status, 'SUCCESS');
  assert.equal(run.output.approved, true);
  assert.equal(run.output.comment, 'ship it');
  assert.equal(run.output.decided_by, 'Dana');
  assert.equal(run.outcome, 'approved');
  // The page started the run with its token in the address and decided through a link.
  assert.match(new URL(page.url()).search, /^\?token=/);
  const uses = sql(server.db.url, `SELECT decision || '|' || comment FROM flowgate.approval_uses WHERE workflow_id = '${id}'`);
  assert.equal(uses, 'approve|ship it');
  assert.deepEqual(await pageErrors(page), []);
  await screenshot(page, 'demo-approval');
  await page.close();
});

test('demo: a progress run fills the bar to 100%', async (t) => {
  if (missing) { t.skip(missing); return; }
  const { page } = await start('progress', { steps: 5, fib: 22, pause_ms: 0 });
  await waitFor(page, () => document.getElementById('progress').getAttribute('aria-valuenow') === '100', undefined, 60000);
  await waitFor(page, () => document.getElementById('run-status').dataset.status === 'SUCCESS', undefined, 60000);
  assert.equal(await status(page), 'SUCCESS');
  // The recent-runs list shows it (runs.test.js checks the list with two runs, live).
  await waitFor(page, () => [...document.querySelectorAll('#runs a')]
    .some((a) => a.querySelector('.badge').dataset.status === 'SUCCESS'), undefined, 30000);
  assert.deepEqual(await pageErrors(page), []);
  await screenshot(page, 'demo-progress');
  await page.close();
});

test('demo: a server restart mid-run; the page resumes without duplicated or missing tokens', async (t) => {
  if (missing) { t.skip(missing); return; }
  const { page, id } = await start('tokens', { words: 80, rate: 10, seed: 3 });
  await waitFor(page, () => (document.getElementById('stream-output')?.textContent || '').split(' ').length > 10, undefined, 30000);
  await server.stop();
  await waitFor(page, () => document.getElementById('conn').dataset.state === 'reconnecting');
  await server.start();
  await waitFor(page, () => document.getElementById('run-status').dataset.status === 'SUCCESS', undefined, 90000);
  await waitFor(page, () => document.getElementById('stream-output')?.hasAttribute('data-closed'));
  const want = await streamText(id, 'output');
  assert.equal(want.count, 80);
  assert.equal(await page.textContent('#stream-output'), want.text);
  assert.deepEqual(await pageErrors(page), []);
  await screenshot(page, 'demo-restart');
  await page.close();
});
