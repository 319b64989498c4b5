// Renders the README's picture of the page (docs/page.png): a run published over the
// producer API with a status line, progress, an approval request and token output.
// Run with `npm run screenshot` after `cargo build`.
import path from 'node:path';
import { Server, launchBrowser, openPage, waitFor, ROOT } from './lib/harness.js';

const TEXT = 'Revenue grew 12% over the quarter, led by the new self-serve plan. Churn fell for the '
  + 'third month in a row, and the support backlog is down to two days. The main risk is the '
  + 'data-centre move in March; ';

const server = await Server.start('docs');
const browser = await launchBrowser();
try {
  const id = 'report-2026-q4';
  await server.createRun(id, 'report');
  await server.setEvent(id, 'status', 'writing the summary');
  await server.setEvent(id, 'progress', 65);
  await server.setEvent(id, 'request', { title: 'Publish the Q4 report to the board?' });
  const page = await openPage(browser, { width: 1100, height: 760 });
  await page.goto(server.url(`/runs/${id}`));
  await waitFor(page, () => document.getElementById('conn').dataset.state === 'live');
  for (const w of TEXT.split(/(?<= )/)) await server.append(id, 'output', [w]);
  await waitFor(page, (n) => document.querySelectorAll('#stream-output .tok').length === n,
    TEXT.split(/(?<= )/).length);
  await page.fill('#comment', 'Numbers checked with finance');
  await page.locator('#comment').blur();
  await page.screenshot({ path: path.join(ROOT, 'docs', 'page.png') });
} finally {
  await browser.close();
  await server.close();
}
