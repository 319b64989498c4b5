// The live run list on the page and the browser client (/static/flowgate.js) in Chromium:
// two runs started elsewhere appear without a reload, a status change arrives live, the
// page polls nothing, and the client resumes across a server restart with nothing lost or
// repeated.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Server, launchBrowser, openPage, screenshot, waitFor, pageErrors, sleep } from '../lib/harness.js';

let server;
let browser;

before(async () => {
  server = await Server.start('runs');
  browser = await launchBrowser();
});

after(async () => {
  if (browser) await browser.close();
  if (server) await server.close();
});

const listed = (page) => page.$$eval('#runs a', (as) => as.map((a) => ({
  id: a.dataset.run,
  status: a.querySelector('.badge').dataset.status,
  tags: [...a.querySelectorAll('.tag')].map((t) => t.textContent),
})));

test('the page lists runs started elsewhere, live, and polls nothing', async () => {
  const page = await openPage(browser);
  const listRequests = [];
  page.on('request', (r) => { if (new URL(r.url()).pathname === '/v1/workflows') listRequests.push(r.url()); });
  await page.goto(server.url('/'));
  await waitFor(page, () => document.querySelector('#runs .note')?.textContent === 'No runs yet.');

  await server.request('PUT', '/v1/workflows/list-a', { workflow: 'external', tags: ['team:red'] });
  await server.request('PUT', '/v1/workflows/list-b', { workflow: 'external' });
  await waitFor(page, () => document.querySelectorAll('#runs a').length === 2);
  const runs = await listed(page);
  assert.deepEqual(runs.map((r) => r.id).sort(), ['list-a', 'list-b']);
  assert.deepEqual(runs.find((r) => r.id === 'list-a').tags, ['team:red']);
  assert.ok(runs.every((r) => r.status === 'PENDING'));

  server.finish('list-a', 'SUCCESS', { ok: true });
  await waitFor(page, () => [...document.querySelectorAll('#runs a')]
    .some((a) => a.dataset.run === 'list-a' && a.querySelector('.badge').dataset.status === 'SUCCESS'));
  await sleep(3500);
  assert.equal(listRequests.length, 1, `one live list request, no polling: ${listRequests.join(', ')}`);
  assert.deepEqual(await pageErrors(page), []);
  await screenshot(page, 'runs-live-list');
  await page.close();
});

test('the browser client follows a stream and a run across a server restart', async () => {
  await server.request('PUT', '/v1/workflows/client-1', { workflow: 'external', tags: ['watched'] });
  await server.request('PUT', '/v1/workflows/client-2', { workflow: 'external' });
  await server.append('client-1', 'out', [0, 1, 2, 3, 4]);
  const page = await openPage(browser);
  await page.goto(server.url('/'));
  await page.evaluate(async () => {
    const { createClient } = await import('/static/flowgate.js');
    const fg = createClient();
    const seen = { records: [], live: [], runs: [], statuses: [], ended: null, states: [] };
    window.seen = seen;
    fg.followStream('client-1', 'out', {
      onRecord: (v, offset) => seen.records.push([offset, v]),
      onEnd: () => { seen.ended = true; },
    });
    fg.watchRun('client-1', {
      onRecord: (r) => seen.live.push([r.key, r.offset, r.value]),
      onStatus: (s) => seen.statuses.push(s.status),
      onEnd: (s) => { seen.final = s.status; },
    });
    window.runsWatch = fg.watchRuns({ tag: 'watched', onRun: (r) => seen.runs.push(`${r.id}:${r.status}`) });
  });
  await waitFor(page, () => window.seen.records.length === 5 && window.seen.live.length === 5);

  await server.stop();
  await server.start();
  await server.append('client-1', 'out', [5, 6, 7, 8, 9]);
  await server.closeStream('client-1', 'out');
  server.finish('client-2', 'ERROR', null);
  server.finish('client-1', 'SUCCESS', { done: true });

  await waitFor(page, () => window.seen.ended === true, undefined, 30000);
  await waitFor(page, () => window.seen.final === 'SUCCESS', undefined, 30000);
  await waitFor(page, () => window.seen.runs.includes('client-1:SUCCESS'), undefined, 30000);
  await sleep(300);
  const seen = await page.evaluate(() => window.seen);
  assert.deepEqual(seen.records, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9].map((i) => [i, i]));
  assert.deepEqual(seen.live, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9].map((i) => ['out', i, i]));
  assert.deepEqual(seen.runs, ['client-1:SUCCESS'], 'the tag filter keeps client-2 out');
  const merged = await page.evaluate(() => window.runsWatch.runs().map((r) => `${r.id}:${r.status}`));
  assert.deepEqual(merged, ['client-1:SUCCESS']);
  await page.close();
});
