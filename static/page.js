// The flowgate page: start demo workflows, list recent runs, and route /runs/{id} to the
// live view of that run (run.js).
import { $, el, api, showError, runPath, setToken, getToken, setBadge } from './ui.js';
import { createClient } from './flowgate.js';
import { openRun, showPlaceholder, currentRun, setRunLookup } from './run.js';
import { childChanged } from './timeline.js';

// Each field: [key, label, type]. An empty field is left out of the input, so the
// workflow's own default applies (shown as the placeholder once the schemas arrive); a
// field the schema requires says so instead of sending anything.
const DEMOS = [
  { name: 'progress', title: 'Progress', blurb: 'CPU-heavy steps and a progress bar.',
    fields: [['steps', 'Steps', 'integer'], ['fib', 'Fibonacci n', 'integer'], ['pause_ms', 'Pause (ms)', 'integer']] },
  { name: 'approval', title: 'Approval', blurb: 'Waits for someone to approve or reject.',
    fields: [['title', 'Title', 'string'], ['timeout_secs', 'Timeout (s)', 'integer']] },
  { name: 'tokens', title: 'Tokens', blurb: 'Streams words like a language model.',
    fields: [['words', 'Words', 'integer'], ['rate', 'Words per second', 'number'], ['seed', 'Seed', 'integer']] },
  { name: 'fanout', title: 'Fan-out', blurb: 'Starts child runs and waits for them.',
    fields: [['children', 'Children', 'integer'], ['pause_ms', 'Child pause (ms)', 'integer']] },
];
/** name → {properties, required} of its input schema, once known. */
const schemas = new Map();

// ---- demos ---------------------------------------------------------------------------

function typeList(body) {
  if (Array.isArray(body)) return body;
  if (body && typeof body === 'object') return Object.values(body).find(Array.isArray) || [];
  return [];
}

/** The schema of `name`'s input, resolving one `$ref` into its definitions. */
function inputSchema(t) {
  let s = t && t.input_schema;
  if (s && s.$ref) {
    const defs = s.definitions || s.$defs || {};
    s = defs[s.$ref.split('/').pop()] || s;
  }
  return { properties: (s && s.properties) || {}, required: new Set((s && s.required) || []) };
}

/** Draws the demo forms once; later updates change attributes, never what was typed. */
function renderDemos() {
  const box = $('demos');
  for (const d of DEMOS) {
    const form = el('form', { className: 'demo', noValidate: true });
    form.setAttribute('aria-labelledby', `demo-${d.name}`);
    const fields = el('div', { className: 'fields' });
    for (const [key, label, type] of d.fields) {
      const id = `in-${d.name}-${key}`;
      const input = el('input', { id, name: key });
      if (type === 'string') Object.assign(input, { type: 'text', maxLength: 200 });
      else Object.assign(input, { type: 'number', step: type === 'integer' ? 1 : 'any', inputMode: 'decimal' });
      fields.append(el('div', {}, el('label', { htmlFor: id, textContent: label }), input));
    }
    const button = el('button', { type: 'submit', textContent: `Start ${d.name}`, disabled: true });
    const blurb = el('p', { textContent: d.blurb });
    form.append(el('h3', { id: `demo-${d.name}`, textContent: d.title }), blurb, fields, button);
    form.addEventListener('submit', (e) => { e.preventDefault(); startDemo(d, form, button); });
    box.append(form);
  }
}

/** The workflow types arrived: enable the registered demos, show defaults and limits. */
function applyTypes(types) {
  for (const t of types) if (t && t.name) schemas.set(t.name, inputSchema(t));
  for (const d of DEMOS) {
    const form = $(`demo-${d.name}`).closest('form');
    const schema = schemas.get(d.name);
    form.querySelector('button[type="submit"]').disabled = !schema;
    form.querySelector('p').textContent = schema ? d.blurb : `${d.blurb} (not registered on this server)`;
    if (!schema) continue;
    for (const [key] of d.fields) {
      const input = form.elements[key];
      const p = schema.properties[key] || {};
      if (p.default !== undefined) input.placeholder = String(p.default);
      else if (schema.required.has(key)) { input.placeholder = 'required'; input.required = true; }
      if (input.type === 'number') {
        if (p.minimum !== undefined) input.min = p.minimum;
        if (p.maximum !== undefined) input.max = p.maximum;
      }
    }
  }
}

async function loadDemos() {
  try {
    applyTypes(typeList(await api('GET', '/v1/workflow-types')));
  } catch (e) {
    $('demos').hidden = true;
    const note = $('demos-note');
    note.hidden = false;
    note.textContent = e.status === 404
      ? 'This server runs no workflows, so the demos are off. Runs published through the producer API still show live at /runs/<id>.'
      : `Cannot load the workflow list: ${e.message}`;
  }
}

/** The form's input: typed fields only (empty ones take the workflow's default). */
function readInput(demo, form) {
  const input = {};
  for (const [key, label, type] of demo.fields) {
    const field = form.elements[key];
    const raw = field.value.trim();
    if (raw === '') {
      if (field.required) throw new Error(`${label} is required`);
      continue;
    }
    if (type === 'string') { input[key] = raw; continue; }
    const n = Number(raw);
    if (!Number.isFinite(n) || (type === 'integer' && !Number.isInteger(n))) {
      throw new Error(`${label} must be ${type === 'integer' ? 'a whole number' : 'a number'}`);
    }
    input[key] = n;
  }
  return input;
}

async function startDemo(demo, form, button) {
  let input;
  try {
    input = readInput(demo, form);
  } catch (e) {
    showError(`Could not start ${demo.name}: ${e.message}`);
    return;
  }
  button.disabled = true;
  try {
    const run = await api('POST', '/v1/workflows', { workflow: demo.name, input });
    // The starter's token (it reads the run; sharing makes a read-only link of its own).
    setToken(run.token);
    navigate(runPath(run.id, run.token));
    // On a phone the run is above the forms: bring it into view.
    $('run').scrollIntoView({ block: 'start' });
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
    const badge = el('span', { className: 'badge' });
    setBadge(badge, r);
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
    onRun: (r) => { childChanged(r); show(); },
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
    setBadge(a.querySelector('.badge'), d);
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

setRunLookup((id) => (runsWatch ? runsWatch.runs().find((r) => r.id === id) : null));
renderDemos();
loadDemos();
watchRunList();
route();
