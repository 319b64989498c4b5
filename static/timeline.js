// The run's timeline: when it started and finished and how long it took, each recorded
// step with its duration and error as it happens (`step` frames of /live), every event
// value with the time it arrived, and the run's parent and children linked both ways.
import { $, FINISHED, el, runPath, asText, duration, clock, setBadge } from './ui.js';

let ticker = null;
let times = null;
/** Child run id → its list item (the badge is updated from the live run list). */
const children = new Map();

export function resetTimeline() {
  clearInterval(ticker);
  ticker = null;
  times = null;
  children.clear();
  $('times').replaceChildren();
  $('steps').replaceChildren();
  $('events').replaceChildren();
  $('events-wrap').hidden = true;
  $('children').replaceChildren();
  $('children-wrap').hidden = true;
  $('run-parent').replaceChildren();
}

function row(label, value, key) {
  const dd = el('dd', { textContent: value });
  dd.dataset.key = key;
  return [el('dt', { textContent: label }), dd];
}

function drawTimes() {
  if (!times) return;
  const { started, finished, created, status } = times;
  const items = [];
  if (created && !started) items.push(...row('Queued', clock(created), 'queued'));
  if (started) items.push(...row('Started', clock(started), 'started'));
  if (finished) items.push(...row('Finished', clock(finished), 'finished'));
  if (started) {
    const end = finished ? new Date(finished) : new Date();
    const label = finished ? 'Duration' : 'Running for';
    items.push(...row(label, duration(end - new Date(started)), 'duration'));
  }
  $('times').replaceChildren(...items);
  const running = started && !finished && !FINISHED.has(status);
  if (running && !ticker) ticker = setInterval(drawTimes, 1000);
  if (!running && ticker) { clearInterval(ticker); ticker = null; }
}

/** The run's times and its parent, from a status frame. */
export function timesFromStatus(d) {
  times = { started: d.started_at, finished: d.finished_at, created: d.created_at, status: d.status };
  drawTimes();
  const parent = $('run-parent');
  if (d.parent_id && !parent.firstChild) {
    const a = el('a', { href: runPath(d.parent_id), textContent: d.parent_id });
    a.dataset.nav = '';
    parent.append('child of ', a);
  }
}

/** Steps a person recognises: `recv:approval` reads "wait for approval", and so on. */
function stepLabel(name) {
  const [kind, rest] = name.includes(':') ? name.split(/:(.*)/s) : [name, ''];
  switch (kind) {
    case 'recv': return `wait for ${rest}`;
    case 'start_child': return `start child ${rest}`;
    case 'child_result': return `wait for child ${rest}`;
    default: return name;
  }
}

/** One `step` frame: a finished step, in order. */
export function onStep(d) {
  const list = $('steps');
  if (list.querySelector(`li[data-step="${d.step}"]`)) return;
  const li = el('li', { className: 'step' },
    el('span', { className: 'sname', textContent: stepLabel(d.name) }),
    el('span', { className: 'sdur', textContent: duration(d.duration_ms) }),
    el('span', { className: 'sat', textContent: clock(d.finished_at) }));
  li.dataset.step = String(d.step);
  li.dataset.name = d.name;
  li.title = `step ${d.step}: ${d.name}`;
  if (d.error) {
    li.dataset.failed = '';
    const msg = d.error && typeof d.error === 'object' && d.error.message ? d.error.message : asText(d.error);
    li.append(el('span', { className: 'serr', textContent: msg }));
  }
  list.append(li);
}

/** One event value, kept in the history with the time it arrived. */
export function historyAdd(d) {
  const list = $('events');
  const item = el('li', {},
    el('span', { className: 'ekey', textContent: d.key }),
    el('span', { className: 'eval', textContent: asText(d.value) }),
    el('time', { className: 'eat', textContent: clock(new Date()) }));
  item.dataset.key = d.key;
  list.append(item);
  while (list.children.length > 500) list.firstElementChild.remove();
  $('events-wrap').hidden = false;
}

/** The `children` event: links to each child, with its status kept live. */
export function showChildren(ids, known) {
  if (!Array.isArray(ids)) return;
  const list = $('children');
  for (const id of ids) {
    if (typeof id !== 'string' || children.has(id)) continue;
    const badge = el('span', { className: 'badge', textContent: '…' });
    const a = el('a', { href: runPath(id), textContent: id });
    a.dataset.nav = '';
    const li = el('li', {}, a, badge);
    li.dataset.run = id;
    children.set(id, badge);
    list.append(li);
    const r = known && known(id);
    if (r) setBadge(badge, r);
  }
  $('children-wrap').hidden = children.size === 0;
}

/** A run changed (from the live run list): update it if it is one of our children. */
export function childChanged(r) {
  const badge = r && children.get(r.id);
  if (badge) setBadge(badge, r);
}
