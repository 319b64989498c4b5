// The run view as a person sees it, at a desktop width (1440 px) and a phone width (390 px):
// outcomes (a rejected run is not a success), the timeline of steps with durations, cancel
// from the page, forms that leave empty fields to the workflow's defaults, and a page that
// never grows wider than the screen, share link included. With DOCS_SCREENSHOTS=1 the
// run view is also written to docs/ at both widths.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { Server, launchBrowser, openPage, screenshot, waitFor, pageErrors, sql, ROOT } from '../lib/harness.js';

const WIDE = { width: 1440, height: 900 };
const PHONE = { width: 390, height: 844 };
let server;
let browser;

before(async () => {
  server = await Server.start('runview');
  browser = await launchBrowser();
});

after(async () => {
  if (browser) await browser.close();
  if (server) await server.close();
});

async function overflow(page) {
  return page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
}

async function assertFits(page, what) {
  const o = await overflow(page);
  assert.ok(o <= 0, `${what}: the page is ${o}px wider than the ${page.viewportSize().width}px screen`);
}

/** Starts a demo from its form; returns the page and the new run's id. */
async function start(viewport, demo, inputs = {}) {
  const page = await openPage(browser, viewport);
  await page.goto(server.url('/'));
  await waitFor(page, (d) => [...document.querySelectorAll('form.demo button')]
    .some((b) => b.textContent === `Start ${d}` && !b.disabled), demo);
  for (const [key, value] of Object.entries(inputs)) await page.fill(`#in-${demo}-${key}`, String(value));
  const form = page.locator('form.demo', { has: page.locator(`#demo-${demo}`) });
  await form.getByRole('button', { name: `Start ${demo}` }).click();
  await waitFor(page, () => /^\/runs\/[^/]+$/.test(location.pathname));
  const id = decodeURIComponent(new URL(page.url()).pathname.split('/').pop());
  await waitFor(page, () => document.getElementById('conn').dataset.state === 'live');
  return { page, id };
}

async function docsShot(page, name) {
  if (process.env.DOCS_SCREENSHOTS !== '1') return;
  await page.screenshot({ path: path.join(ROOT, 'docs', `${name}.png`), fullPage: true });
}

test('home page: nothing claims to be disconnected, and typed input survives the types arriving', async () => {
  const page = await openPage(browser, PHONE);
  // Type before the workflow types arrive (they enable the buttons): nothing is redrawn.
  await page.goto(server.url('/'));
  await page.fill('#in-progress-steps', '7');
  await waitFor(page, () => !document.querySelector('form.demo button').disabled);
  assert.equal(await page.inputValue('#in-progress-steps'), '7');
  assert.equal(await page.textContent('#conn-text'), '');
  assert.equal(await page.evaluate(() => getComputedStyle(document.getElementById('conn')).visibility), 'hidden');
  // Empty number fields show the workflow's defaults rather than sending 0.
  assert.equal(await page.getAttribute('#in-progress-pause_ms', 'placeholder'), '1500');
  await assertFits(page, 'home at 390 px');
  await page.close();
});

for (const [label, viewport] of [['1440 px', WIDE], ['390 px', PHONE]]) {
  test(`progress at ${label}: the timeline lists every step with its duration; sharing fits`, async () => {
    const { page, id } = await start(viewport, 'progress', { steps: 3, fib: 5, pause_ms: 200 });
    // The run comes into view after the start (on a phone it is above the forms).
    const top = await page.evaluate(() => document.getElementById('run').getBoundingClientRect().top);
    assert.ok(top >= -1 && top < viewport.height / 2, `run section top at ${top}px`);
    await waitFor(page, () => document.getElementById('run-status').dataset.status === 'SUCCESS', undefined, 30000);
    await waitFor(page, () => document.querySelectorAll('#steps li').length === 6);
    const steps = await page.$$eval('#steps li', (lis) => lis.map((li) => ({
      name: li.dataset.name, dur: li.querySelector('.sdur').textContent })));
    assert.deepEqual(steps.map((s) => s.name), ['fib', 'pause', 'fib', 'pause', 'fib', 'pause']);
    for (const s of steps) assert.match(s.dur, /^\d+(\.\d)? m?s$/, JSON.stringify(s));
    // A pause of 200 ms reads as about that.
    assert.ok(steps.filter((s) => s.name === 'pause').every((s) => /^\d{3} ms$|^\d\.\d s$/.test(s.dur)), JSON.stringify(steps));
    assert.equal(await page.textContent('#run-status'), 'Succeeded');
    assert.equal(await page.getAttribute('#run-status', 'data-kind'), 'good');
    const times = await page.$$eval('#times dt', (dts) => dts.map((d) => d.textContent));
    assert.deepEqual(times, ['Started', 'Finished', 'Duration']);
    // Event history: values with the time they arrived.
  await waitFor(page, () => [...document.querySelectorAll('#events li')].some((li) => li.dataset.key === 'progress' && /\d\d:\d\d/.test(li.querySelector('.eat').textContent)));

    await page.getByRole('button', { name: 'Share read-only link' }).click();
    await waitFor(page, () => !document.getElementById('share-box').hidden);
    const link = await page.inputValue('#share-link');
    assert.equal(link, server.url(`/runs/${id}`), 'a keyless server shares the bare address');
    await assertFits(page, `progress run with the share link at ${label}`);
    assert.deepEqual(await pageErrors(page), []);
    await screenshot(page, `runview-progress-${viewport.width}`);
    await page.close();
  });
}

test('approval rejected at 390 px: a red Rejected badge with the decider, never a success', async () => {
  const { page, id } = await start(PHONE, 'approval', { title: 'Ship it?', timeout_secs: 120 });
  await page.waitForSelector('#reject:visible', { timeout: 30000 });
  await page.getByLabel('Your name').fill('Robin');
  await page.getByLabel('Comment (optional)').fill('not today');
  await page.getByRole('button', { name: 'Reject' }).click();
  await waitFor(page, () => document.getElementById('run-status').dataset.status === 'SUCCESS', undefined, 30000);
  assert.equal(await page.textContent('#run-status'), 'Rejected');
  assert.equal(await page.getAttribute('#run-status', 'data-kind'), 'bad');
  assert.equal(await page.getAttribute('#progress', 'data-kind'), 'bad');
  await waitFor(page, () => document.getElementById('decision').textContent.startsWith('Rejected by Robin'));
  assert.match(await page.textContent('#decision'), /^Rejected by Robin at \d\d:\d\d:\d\d — “not today”$/);
  const run = await server.request('GET', `/v1/workflows/${id}`);
  assert.equal(run.outcome, 'rejected');
  assert.equal(run.output.decided_by, 'Robin');
  // The recent-runs list says so too.
  await waitFor(page, (rid) => document.querySelector(`#runs a[data-run="${rid}"] .badge`)?.textContent === 'Rejected', id);
  // The wait for the decision is on the timeline.
  await waitFor(page, () => [...document.querySelectorAll('#steps li')].some((li) => li.dataset.name === 'recv:approval'));
  await page.reload();
  await waitFor(page, () => document.getElementById('run-status').textContent === 'Rejected');
  await waitFor(page, () => document.getElementById('decision').textContent.startsWith('Rejected by Robin'));
  await assertFits(page, 'rejected run at 390 px');
  await docsShot(page, 'run-view-390');
  await page.close();
});

test('cancel from the page; empty fields take the workflow defaults', async () => {
  const { page, id } = await start(WIDE, 'approval');
  const input = JSON.parse(sql(server.db.url, `SELECT input::text FROM flowgate.workflows WHERE id = '${id}'`));
  assert.deepEqual(input, {}, 'nothing typed, nothing sent: not 0, not ""');
  await page.waitForSelector('#approve:visible', { timeout: 30000 });
  assert.equal(await page.textContent('#approval-request'), 'Deploy to production');
  await waitFor(page, () => document.getElementById('status-text').textContent === 'waiting for approval');
  await page.getByRole('button', { name: 'Cancel run' }).click();
  await waitFor(page, () => document.getElementById('run-status').dataset.status === 'CANCELLED', undefined, 30000);
  assert.equal(await page.textContent('#run-status'), 'Cancelled');
  assert.equal(await page.textContent('#status-text'), 'Cancelled');
  assert.equal(await page.isVisible('#approve'), false);
  assert.equal(await page.isVisible('#cancel'), false);
  const run = await server.request('GET', `/v1/workflows/${id}`);
  assert.equal(run.status, 'CANCELLED');
  assert.equal(run.outcome, 'cancelled');
  assert.deepEqual(await pageErrors(page), []);
  await page.close();
});

test('timed out at 1440 px: amber, and it says nobody decided', async () => {
  const { page, id } = await start(WIDE, 'approval', { title: 'Anyone?', timeout_secs: 1 });
  await waitFor(page, () => document.getElementById('run-status').dataset.status === 'SUCCESS', undefined, 30000);
  assert.equal(await page.textContent('#run-status'), 'Timed out');
  assert.equal(await page.getAttribute('#run-status', 'data-kind'), 'warn');
  await waitFor(page, () => document.getElementById('decision').textContent.startsWith('Timed out'));
  assert.doesNotMatch(await page.textContent('#decision'), /Rejected/);
  const run = await server.request('GET', `/v1/workflows/${id}`);
  assert.equal(run.outcome, 'timed_out');
  await page.close();
});

test('fan-out: children are linked with live statuses, and each child links back', async () => {
  const { page, id } = await start(WIDE, 'fanout', { children: 2, pause_ms: 0 });
  await waitFor(page, () => document.querySelectorAll('#children li').length === 2, undefined, 30000);
  await waitFor(page, () => [...document.querySelectorAll('#children .badge')].every((b) => b.textContent === 'Succeeded'), undefined, 60000);
  await page.locator('#children a').first().click();
  await waitFor(page, (p) => document.querySelector('#run-parent a')?.textContent === p, id);
  await page.click('#run-parent a');
  await waitFor(page, (p) => document.getElementById('run-id').textContent === p, id);
  await docsShot(page, 'run-view-1440');
  await page.close();
});
