// The page against a server with API keys: opened with a run token (?token=) it follows the
// run through EventSource and decides through an approval link; opened without one it says
// plainly that it may not watch the run.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Server, launchBrowser, openPage, screenshot, waitFor, pageErrors, sql } from '../lib/harness.js';

const KEY = 'browser-test-key-4f1c9a';
let server;
let browser;

before(async () => {
  server = await Server.start('security',
    { FLOWGATE_API_KEYS: KEY, FLOWGATE_SECRET: 'browser-test-secret-83b2e7d0' }, KEY);
  browser = await launchBrowser();
});

after(async () => {
  if (browser) await browser.close();
  if (server) await server.close();
});

test('keyed server: the page opened with a run token follows the run and approves through a link', async () => {
  const id = 'sec-approval';
  // Whoever creates the run names who may approve it; the token handed out may mint links
  // for exactly them.
  const { token } = await server.createRun(id, 'approval', { approval: { approvers: ['page-user'] } });
  assert.ok(token, 'creating a run hands out a token');
  await server.append(id, 'output', ['hello ', 'world ']);
  await server.setEvent(id, 'request', { title: 'Open the gates?' });

  // Without the key the API refuses; the token is what the page has.
  const anon = await fetch(server.url(`/v1/workflows/${id}`));
  assert.equal(anon.status, 401);

  const page = await openPage(browser);
  await page.goto(server.url(`/runs/${id}?token=${encodeURIComponent(token)}`));
  await waitFor(page, () => document.getElementById('conn').dataset.state === 'live');
  await waitFor(page, () => document.getElementById('stream-output')?.textContent === 'hello world ');
  assert.ok(page.liveRequests.every((u) => u.includes('token=')), JSON.stringify(page.liveRequests));
  await page.waitForSelector('#approve:visible', { timeout: 20000 });
  assert.equal(await page.textContent('#approval-request'), 'Open the gates?');
  await page.getByLabel('Comment (optional)').fill('through a link');
  await page.getByRole('button', { name: 'Approve' }).click();
  await waitFor(page, () => /approved; waiting/.test(document.getElementById('decision').textContent));
  const uses = sql(server.db.url, `SELECT decision || '|' || comment FROM flowgate.approval_uses WHERE workflow_id = '${id}'`);
  assert.equal(uses, 'approve|through a link');
  const body = sql(server.db.url, `SELECT body->>'approved' FROM flowgate.messages WHERE workflow_id = '${id}'`);
  assert.equal(body, 'true');

  // Live updates keep flowing after the decision.
  await server.append(id, 'output', ['again ']);
  await waitFor(page, () => document.getElementById('stream-output')?.textContent === 'hello world again ');
  assert.deepEqual(await pageErrors(page), []);
  await screenshot(page, 'security-token');
  await page.close();
});

test('keyed server: the page opened without a token shows a clear error', async () => {
  const id = 'sec-anon';
  await server.createRun(id);
  await server.append(id, 'output', ['secret ']);
  const page = await openPage(browser);
  await page.goto(server.url(`/runs/${id}`));
  await waitFor(page, () => document.getElementById('conn').dataset.state === 'offline');
  const errors = await pageErrors(page);
  assert.equal(errors.length, 1, JSON.stringify(errors));
  assert.match(errors[0], /^Not allowed to watch this run: .*token/);
  assert.equal(await page.$('#stream-output'), null);
  await screenshot(page, 'security-no-token');
  await page.close();
});

test('keyed server: a token for another run is refused', async () => {
  const { token } = await server.createRun('sec-a');
  await server.createRun('sec-b');
  const page = await openPage(browser);
  await page.goto(server.url(`/runs/sec-b?token=${encodeURIComponent(token)}`));
  await waitFor(page, () => document.getElementById('conn').dataset.state === 'offline');
  const errors = await pageErrors(page);
  assert.match(errors.join('\n'), /Not allowed to watch this run: this token is for another run/);
  await page.close();
});

test('keyed server: a shared read-only link watches but cannot approve; the link fits the screen', async () => {
  const id = 'sec-share';
  const { token } = await server.createRun(id, 'approval', { approval: { approvers: ['page-user'] } });
  await server.setEvent(id, 'request', { title: 'Share this?' });
  let link = null;
  for (const viewport of [{ width: 1440, height: 900 }, { width: 390, height: 844 }]) {
    const page = await openPage(browser, viewport);
    await page.goto(server.url(`/runs/${id}?token=${encodeURIComponent(token)}`));
    await page.waitForSelector('#approve:visible', { timeout: 20000 });
    await page.getByRole('button', { name: 'Share read-only link' }).click();
    await waitFor(page, () => !document.getElementById('share-box').hidden);
    link = await page.inputValue('#share-link');
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    assert.ok(overflow <= 0, `with the share link shown the page is ${overflow}px wider than ${viewport.width}px`);
    await screenshot(page, `security-share-${viewport.width}`);
    await page.close();
  }
  const shared = new URL(link).searchParams.get('token');
  assert.ok(shared && shared !== token, 'the link carries a token of its own');

  const viewer = await openPage(browser, { width: 390, height: 844 });
  await viewer.goto(link);
  await waitFor(viewer, () => document.getElementById('conn').dataset.state === 'live');
  await waitFor(viewer, () => !document.getElementById('approval-note').hidden);
  assert.equal(await viewer.textContent('#approval-request'), 'Share this?');
  assert.equal(await viewer.isVisible('#approve'), false);
  assert.equal(await viewer.isVisible('#reject'), false);
  assert.equal(await viewer.isVisible('#cancel'), false);
  // The API refuses the decision to whoever holds the link, whatever the page shows.
  const r = await fetch(server.url(`/v1/workflows/${id}/approval-links`), {
    method: 'POST',
    headers: { authorization: `Bearer ${shared}`, 'content-type': 'application/json' },
    body: JSON.stringify({ topic: 'approval', approvers: ['page-user'] }),
  });
  assert.equal(r.status, 403);
  const c = await fetch(server.url(`/v1/workflows/${id}/cancel`), { method: 'POST', headers: { authorization: `Bearer ${shared}` } });
  assert.equal(c.status, 403);
  assert.deepEqual(await pageErrors(viewer), []);
  await screenshot(viewer, 'security-share-viewer');
  await viewer.close();
});
