// The README's "Embed live progress in your own page" snippet, taken from README.md as it
// is, served from another origin (as your own site would serve it) against a server with
// API keys: with only the run's token it shows the run live — text, progress, status.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { Server, ROOT, launchBrowser, openPage, screenshot, waitFor } from '../lib/harness.js';

const KEY = 'readme-embed-key-7d21';
let server;
let site;
let browser;

/** The html block right after the `<!-- readme-embed -->` marker in README.md. */
function readmeSnippet() {
  const readme = readFileSync(path.join(ROOT, 'README.md'), 'utf8');
  const m = readme.match(/<!-- readme-embed -->\n```html\n([\s\S]*?)\n```\n/);
  assert.ok(m, 'README.md has an html block marked <!-- readme-embed -->');
  return m[1];
}

before(async () => {
  const snippet = readmeSnippet();
  site = http.createServer((req, res) => {
    if (req.url.startsWith('/progress.html')) {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
      res.end(site.html);
    } else {
      res.writeHead(404);
      res.end();
    }
  });
  await new Promise((r) => site.listen(0, '127.0.0.1', r));
  const origin = `http://127.0.0.1:${site.address().port}`;
  server = await Server.start('readme', { FLOWGATE_API_KEYS: KEY, FLOWGATE_CORS_ORIGINS: origin }, KEY);
  // The snippet names the server as the README's reader runs it; point it at this one.
  assert.equal(snippet.split("'http://127.0.0.1:8080'").length, 2, 'the snippet names the server once');
  site.html = snippet.replace("'http://127.0.0.1:8080'", `'${server.base}'`);
  site.origin = origin;
  browser = await launchBrowser();
});

after(async () => {
  if (browser) await browser.close();
  if (server) await server.close();
  if (site) site.close();
});

test("the README's embed snippet shows a run live from another origin with only its token", async () => {
  const { token } = await server.createRun('embed-1', 'external');
  assert.ok(token);
  const page = await openPage(browser);
  await page.goto(`${site.origin}/progress.html?run=embed-1&token=${encodeURIComponent(token)}`);
  await waitFor(page, () => document.getElementById('state').textContent === 'PENDING');
  // Each change shows while the run goes on.
  await server.append('embed-1', 'output', ['Hello ']);
  await waitFor(page, () => document.getElementById('output').textContent === 'Hello ');
  await server.setEvent('embed-1', 'progress', 50);
  await server.setEvent('embed-1', 'status', 'half way');
  await waitFor(page, () => document.getElementById('bar').value === 50);
  await waitFor(page, () => document.getElementById('note').textContent === 'half way');
  await screenshot(page, 'readme-embed-halfway');
  await server.append('embed-1', 'output', ['world']);
  await server.setEvent('embed-1', 'progress', 100);
  await server.request('POST', '/v1/workflows/embed-1/finish', { status: 'SUCCESS' });
  await waitFor(page, () => document.getElementById('state').textContent === 'SUCCESS');
  assert.equal(await page.textContent('#output'), 'Hello world');
  assert.equal(await page.$eval('#bar', (b) => b.value), 100);
  assert.deepEqual(page.problems, []);
  // It read the run with the token only: the page never had the key.
  assert.ok(page.liveRequests.length >= 1 && page.liveRequests.every((u) => u.includes('token=')));
  await screenshot(page, 'readme-embed');
  await page.close();
});
