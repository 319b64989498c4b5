// The flowgate page: start demo workflows, list recent runs, and route /runs/{id} to the
// live view of that run (run.js).
import { $, el, api, showError, runPath, setToken, getToken } from './ui.js';
import { createClient } from './flowgate.js';
import { openRun, showPlaceholder, currentRun } from './run.js';

const DEMOS = [
  { name: 'progress', title: 'Progress', blurb: 'CPU-heavy steps and a progress bar.',
    fields: [['steps', 'Steps', 10, 1, 100], ['fib', 'Fibonacci n', 27, 1, 35]] },
  { name: 'approval', title: 'Approval', blurb: 'Waits for someone to approve or reject.',
    fields: [['title', 'Title', 'Ship the release?'], ['timeout_secs', 'Timeout (s)', 300, 1, 86400]] },
  { name: 'tokens', title: 'Tokens', blurb: 'Streams words like a language model.',
    fields: [['words', 'Words', 60, 1, 5000], ['rate', 'Words per second', 20, 1, 1000],
      ['seed', 'Seed', 1, 0, 1000000]] },
  { name: 'fanout', title: 'Fan-out', blurb: 'Starts child runs and waits for them.',
    fields: [['children', 'Children', 4, 1, 50]] },
];

// ---- demos ---------------------------------------------------------------------------

function typeNames(body) {
  let list = [];
  if (Array.isArray(body)) list = body;
  else if (body && typeof body === 'object') {
    list = Object.values(body).find(Array.isArray) || Object.keys(body);
  }
  return new Set(list.map((t) => (typeof t === 'string' ? t : t && (t.name || t.workflow)))
    .filter(Boolean));
}

function renderDemos(available) {
  const box = $('demos');
  box.replaceChildren();
  for (const d of DEMOS) {
    const form = el('form', { className: 'demo' });
    form.setAttribute('aria-labelledby', `demo-${d.name}`);
    const fields = el('div', { className: 'fields' });
    for (const [key, label, value, min, max] of d.fields) {
      const id = `in-${d.name}-${key}`;
      const input = el('input', { id, name: key, value: String(value) });
      if (typeof value === 'number') Object.assign(input, { type: 'number', min, max, step: 1 });
      else Object.assign(input, { type: 'text', maxLength: 200 });
      fields.append(el('div', {}, el('label', { htmlFor: id, textContent: label }), input));
    }
    const ok = available === null || available.has(d.name);
    const button = el('button', { type: 'submit', textContent: `Start ${d.name}`, disabled: !ok });
    form.append(el('h3', { id: `demo-${d.name}`, textContent: d.title }),
      el('p', { textContent: ok ? d.blurb : `${d.blurb} (not registered on this server)` }),
      fields, button);
    form.addEventListener('submit', (e) => { e.preventDefault(); startDemo(d, form, button); });
    box.append(form);
  }
}

async function loadDemos() {
  try {
    const names = typeNames(await api('GET', '/v1/workflow-types'));
    renderDemos(names);
  } catch (e) {
    $('demos').hidden = true;
    const note = $('demos-note');
    note.hidden = false;
    note.textContent = e.status === 404
      ? 'This server runs no workflows, so the demos are off. Runs published through the producer API still show live at /runs/<id>.'
      : `Cannot load the workflow list: ${e.message}`;
  }
}

async function startDemo(demo, form, button) {
  const input = {};
  for (const [key, , value] of demo.fields) {
    const raw = form.elements[key].value;
    input[key] = typeof value === 'number' ? Number(raw) : raw;
  }
  button.disabled = true;
  try {
    const run = await api('POST', '/v1/workflows', { workflow: demo.name, input });
    // The run's token goes into the address, so the link works for whoever it is shared with.
    setToken(run.token);
    navigate(runPath(run.id, run.token));
  } catch (e) {
    showError(`Could not start ${demo.name}: ${e.message}`);
  } finally {
    button.disabled = false;
  }
}

// ---- recent runs ---------------------------------------------------------------------
// Live from the server's run list (GET /v1/workflows as SSE through flowgate.js): the
// current runs once, then every start and status change. No timer.

const SHOWN = 20;
let runsAvailable = true;
let runsWatch = null;

function renderRuns(runs) {
  const list = $('runs');
  list.replaceChildren();
  const view = currentRun();
  if (view && view.status && !runs.some((r) => r.id === view.id)) runs.unshift(view.status);
  for (const r of runs) {
    const badge = el('span', { className: 'badge', textContent: r.status });
    badge.dataset.status = r.status;
    const tags = el('span', { className: 'rtags' });
    for (const t of r.tags || []) tags.append(el('span', { className: 'tag', textContent: t }));
    const a = el('a', { href: runPath(r.id) },
      el('span', { className: 'rid', textContent: r.id }), badge,
      el('span', { className: 'rwf', textContent: r.workflow }), tags);
    a.dataset.nav = '';
    a.dataset.run = r.id;
    if (view && view.id === r.id) a.setAttribute('aria-current', 'page');
    list.append(el('li', {}, a));
  }
  if (!runs.length && runsAvailable) {
    list.append(el('li', { className: 'note', textContent: 'No runs yet.' }));
  }
}

function watchRunList() {
  if (runsWatch) runsWatch.close();
  const fg = createClient({ token: getToken() });
  const show = () => {
    runsAvailable = true;
    $('runs-note').hidden = true;
    renderRuns(runsWatch.runs().slice(0, SHOWN));
  };
  runsWatch = fg.watchRuns({
    limit: SHOWN,
    onRuns: show,
    onRun: show,
    onError: (e) => {
      runsAvailable = false;
      const note = $('runs-note');
      note.hidden = false;
      note.textContent = e.status === 404
        ? 'This server keeps no run list; open a run by its address, /runs/<id>.'
        : e.status === 401 || e.status === 403
          ? 'The run list needs an API key or a tag token; this run is live below.'
          : `Cannot load runs: ${e.message}`;
      renderRuns([]);
    },
  });
}

// ---- navigation ----------------------------------------------------------------------

function route() {
  const m = location.pathname.match(/^(?:\/dbos)?\/runs\/([^/]+)\/?$/);
  if (!m) { showPlaceholder(); return; }
  let id;
  try { id = decodeURIComponent(m[1]); } catch (e) { id = m[1]; }
  const view = currentRun();
  if (!view || view.id !== id) openRun(id);
  markCurrent(id);
}

function markCurrent(id) {
  for (const a of document.querySelectorAll('#runs a')) {
    if (a.dataset.run === id) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
}

// The selected run's status, live: update its row (or show it when there is no list).
document.addEventListener('flowgate:status', (e) => {
  const d = e.detail;
  if (!runsAvailable && !document.querySelector('#runs a')) renderRuns([]);
  for (const a of document.querySelectorAll('#runs a')) {
    if (a.dataset.run !== d.id) continue;
    const b = a.querySelector('.badge');
    b.textContent = d.status;
    b.dataset.status = d.status;
  }
});

function navigate(path) {
  if (location.pathname + location.search !== path) history.pushState(null, '', path);
  route();
}

document.addEventListener('click', (e) => {
  const a = e.target.closest && e.target.closest('a[data-nav]');
  if (!a || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
  e.preventDefault();
  navigate(new URL(a.href).pathname);
});
window.addEventListener('popstate', route);

renderDemos(null);
loadDemos();
watchRunList();
route();
