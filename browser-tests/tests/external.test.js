// The page against runs driven over HTTP by an external producer (no workflow runtime
// needed): token text exactly once and in order, the progress bar, the approval buttons,
// a server restart in the middle of a stream, an unknown run, a narrow screen, and a decision
// whose answer was lost (the retry reuses the single-use link).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Server, launchBrowser, openPage, screenshot, waitFor, pageErrors, sql, sleep } from '../lib/harness.js';

let server;
let browser;

before(async () => {
  server = await Server.start('external');
  browser = await launchBrowser();
});

after(async () => {
  if (browser) await browser.close();
  if (server) await server.close();
});

const words = (n, from = 0) => Array.from({ length: n }, (_, i) => `word${from + i} `);

async function openRun(id, viewport) {
  const page = await openPage(browser, viewport);
  await page.goto(server.url(`/runs/${id}`));
  await waitFor(page, () => document.getElementById('conn').dataset.state === 'live');
  return page;
}

function outputText(page) {
  return page.$eval('#stream-output', (e) => e.textContent).catch(() => '');
}

test('tokens from an external producer appear word by word, once, in order', async () => {
  await server.createRun('ext-tokens', 'tokens');
  const page = await openRun('ext-tokens');
  const all = words(60);
  for (let i = 0; i < all.length; i += 1) {
    await server.append('ext-tokens', 'output', [all[i]]);
    if (i % 6 === 5) await server.setEvent('ext-tokens', 'progress', Math.round(((i + 1) * 100) / all.length));
    if (i === 29) {
      // Half-way, the page already shows exactly the first half.
      await waitFor(page, (want) => document.getElementById('stream-output')?.textContent === want,
        all.slice(0, 30).join(''));
      await screenshot(page, 'external-tokens-halfway');
    }
  }
  await server.closeStream('ext-tokens', 'output');
  await waitFor(page, () => document.getElementById('stream-output')?.hasAttribute('data-closed'));
  assert.equal(await outputText(page), all.join(''));
  assert.equal(await page.getAttribute('#progress', 'aria-valuenow'), '100');
  // Status, events and the stream all came over one connection.
  assert.deepEqual(page.liveRequests, [server.url('/v1/workflows/ext-tokens/live')]);
  assert.deepEqual(await pageErrors(page), []);
  assert.deepEqual(page.problems, []);
  await screenshot(page, 'external-tokens');
  await page.close();
});

test('the progress bar follows progress events to 100% and the status to SUCCESS', async () => {
  await server.createRun('ext-progress', 'progress');
  const page = await openRun('ext-progress');
  for (let p = 0; p <= 100; p += 20) {
    await server.setEvent('ext-progress', 'status', `step ${p / 20} of 5`);
    await server.setEvent('ext-progress', 'progress', p);
    await waitFor(page, (want) => document.getElementById('progress').getAttribute('aria-valuenow') === want, String(p));
    if (p === 60) await screenshot(page, 'external-progress-60');
  }
  server.finish('ext-progress', 'SUCCESS', { fib: 196418, steps: 5 });
  await waitFor(page, () => document.getElementById('run-status').dataset.status === 'SUCCESS');
  assert.equal(await page.textContent('#status-text'), 'step 5 of 5');
  assert.equal(await page.textContent('#progress-label'), '100%');
  assert.match(await page.textContent('#result'), /196418/);
  assert.deepEqual(await pageErrors(page), []);
  await screenshot(page, 'external-progress');
  await page.close();
});

test('Approve sends the approval message, then the page shows the decision', async () => {
  const id = 'ext-approval';
  await server.createRun(id, 'approval');
  await server.setEvent(id, 'request', { title: 'Deploy build 1.4.2 to production?' });
  await server.setEvent(id, 'status', 'waiting for approval');
  const page = await openRun(id);
  await page.waitForSelector('#approve:visible', { timeout: 20000 });
  assert.equal(await page.textContent('#approval-request'), 'Deploy build 1.4.2 to production?');
  await page.getByLabel('Your name').fill('Dana');
  await page.getByLabel('Comment (optional)').fill('Checked the canary');
  await screenshot(page, 'external-approval-waiting');
  await page.getByRole('button', { name: 'Approve' }).click();
  await waitFor(page, () => /waiting for the run/.test(document.getElementById('decision').textContent));

  // Stored once, through a single-use approval link (its use is recorded with the message).
  const rows = sql(server.db.url, `SELECT topic || '|' || body::text || '|' || (idempotency_key IS NOT NULL) FROM flowgate.messages WHERE workflow_id = '${id}'`);
  assert.equal(rows, 'approval|{"comment": "Checked the canary", "approved": true, "approver": "Dana"}|true');
  const uses = sql(server.db.url, `SELECT topic || '|' || decision || '|' || comment || '|' || (message_id IS NOT NULL) FROM flowgate.approval_uses WHERE workflow_id = '${id}'`);
  assert.equal(uses, 'approval|approve|Checked the canary|true');

  // The workflow (here: a producer) consumes it and records the decision.
  await server.setEvent(id, 'decision', { approved: true, comment: 'Checked the canary' });
  server.finish(id, 'SUCCESS', { approved: true, comment: 'Checked the canary' });
  await waitFor(page, () => document.getElementById('run-status').dataset.status === 'SUCCESS');
  await waitFor(page, () => document.getElementById('decision').textContent.startsWith('Approved'));
  assert.equal(await page.textContent('#decision'), 'Approved — “Checked the canary”');
  assert.equal(await page.isVisible('#approve'), false);
  assert.equal(await page.textContent('#approval-title'), 'Decision');
  assert.deepEqual(await pageErrors(page), []);
  await screenshot(page, 'external-approval-decided');
  await page.close();

  // Someone opening the shared address later sees the decision, not the buttons.
  const later = await openRun(id);
  await waitFor(later, () => document.getElementById('decision').textContent.startsWith('Approved'));
  assert.equal(await later.isVisible('#approve'), false);
  assert.equal(await later.isVisible('#approval-request'), true);
  await later.close();
});

test('Reject on a narrow screen sends approved=false; the layout fits the screen', async () => {
  const id = 'ext-reject';
  await server.createRun(id, 'approval');
  await server.setEvent(id, 'request', { title: 'Delete the staging database?' });
  const page = await openRun(id, { width: 390, height: 844 });
  await page.waitForSelector('#reject:visible', { timeout: 20000 });
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert.ok(overflow <= 0, `page is ${overflow}px wider than a 390px screen`);
  await screenshot(page, 'external-narrow');
  await page.getByLabel('Your name').fill('Sam');
  await page.getByRole('button', { name: 'Reject' }).click();
  await waitFor(page, () => /rejected; waiting/.test(document.getElementById('decision').textContent));
  const body = sql(server.db.url, `SELECT body::text FROM flowgate.messages WHERE workflow_id = '${id}'`);
  assert.equal(body, '{"comment": "", "approved": false, "approver": "Sam"}');
  const uses = sql(server.db.url, `SELECT decision FROM flowgate.approval_uses WHERE workflow_id = '${id}'`);
  assert.equal(uses, 'reject');
  await page.close();
});

test('a server restart mid-stream: the page reconnects and shows every token exactly once', async () => {
  const id = 'ext-restart';
  await server.createRun(id, 'tokens');
  const page = await openRun(id);
  const all = words(60);
  for (const w of all.slice(0, 30)) await server.append(id, 'output', [w]);
  await waitFor(page, (want) => document.getElementById('stream-output')?.textContent === want, all.slice(0, 30).join(''));

  await server.stop();
  await waitFor(page, () => document.getElementById('conn').dataset.state === 'reconnecting');
  assert.equal(await page.textContent('#conn-text'), 'reconnecting…');
  await screenshot(page, 'external-restart-reconnecting');
  // Committed while no server runs (a SQL producer): must show up after the restart.
  const batch = all.slice(30, 40).map((w) => `'${JSON.stringify(w)}'::jsonb`).join(', ');
  sql(server.db.url, `SELECT flowgate.write_stream('${id}', 'output', ARRAY[${batch}])`);
  await sleep(500);
  await server.start();

  await waitFor(page, () => document.getElementById('conn').dataset.state === 'live', undefined, 30000);
  for (const w of all.slice(40)) await server.append(id, 'output', [w]);
  await server.closeStream(id, 'output');
  await waitFor(page, () => document.getElementById('stream-output')?.hasAttribute('data-closed'));
  assert.equal(await outputText(page), all.join(''));
  assert.equal(await page.$$eval('#stream-output .tok', (t) => t.length), 60);
  assert.deepEqual(await pageErrors(page), []);
  assert.deepEqual(page.problems, []);
  await screenshot(page, 'external-restart');
  await page.close();
});

test('when the browser gives up (503 from a full server), the page reconnects with its cursor', async () => {
  const id = 'ext-fallback';
  await server.createRun(id, 'tokens');
  const page = await openRun(id);
  const all = words(60);
  await server.append(id, 'output', all.slice(0, 20));
  await waitFor(page, (want) => document.getElementById('stream-output')?.textContent === want, all.slice(0, 20).join(''));

  // A server that refuses every SSE connection: EventSource closes for good on the 503.
  await server.stop();
  await server.start({ FLOWGATE_MAX_SSE: '0' });
  await server.append(id, 'output', all.slice(20, 40));
  await waitFor(page, () => performance.getEntriesByType('resource')
    .some((e) => e.name.includes('/live?cursor=')), undefined, 30000);
  assert.equal(await page.getAttribute('#conn', 'data-state'), 'reconnecting');

  await server.stop();
  await server.start();
  await waitFor(page, () => document.getElementById('conn').dataset.state === 'live', undefined, 30000);
  await server.append(id, 'output', all.slice(40));
  await server.closeStream(id, 'output');
  await waitFor(page, () => document.getElementById('stream-output')?.hasAttribute('data-closed'));
  assert.equal(await outputText(page), all.join(''));
  assert.ok(page.liveRequests.some((u) => u.includes('?cursor=')), JSON.stringify(page.liveRequests));
  assert.deepEqual(await pageErrors(page), []);
  await screenshot(page, 'external-fallback');
  await page.close();
});

test('an unknown run is reported plainly', async () => {
  const page = await openPage(browser);
  await page.goto(server.url('/runs/no-such-run'));
  await waitFor(page, () => document.getElementById('conn').dataset.state === 'offline');
  assert.deepEqual(await pageErrors(page), ['There is no run "no-such-run".']);
  await screenshot(page, 'external-unknown-run');
  await page.close();
});

test('a decision whose answer was lost: the retry reuses the link and shows "already decided"', async () => {
  const id = 'ext-lost-answer';
  await server.createRun(id, 'approval');
  await server.setEvent(id, 'request', { title: 'Rotate the keys?' });
  const page = await openRun(id);
  await page.waitForSelector('#approve:visible', { timeout: 20000 });
  // The first use reaches the server, but its answer never reaches the page.
  await page.route('**/v1/approvals/**', async (route) => {
    await route.fetch();
    await route.abort();
  }, { times: 1 });
  await page.getByLabel('Your name').fill('Dana');
  await page.getByRole('button', { name: 'Approve' }).click();
  await waitFor(page, () => !document.getElementById('reject').disabled
    && [...document.querySelectorAll('#errors .error span')].some((e) => /Could not send the decision/.test(e.textContent)));
  // Pressing Reject now uses the same (already used) link pair: the first decision stands.
  await page.getByRole('button', { name: 'Reject' }).click();
  await waitFor(page, () => /^Already decided: approved/.test(document.getElementById('decision').textContent));
  assert.equal(sql(server.db.url, `SELECT count(*) FROM flowgate.messages WHERE workflow_id = '${id}'`), '1');
  assert.equal(sql(server.db.url, `SELECT decision FROM flowgate.approval_uses WHERE workflow_id = '${id}'`), 'approve');
  await screenshot(page, 'external-already-decided');
  await page.close();
});
