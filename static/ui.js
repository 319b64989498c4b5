// Shared helpers of the page: DOM building, JSON requests with the server's error
// messages, the error list and the connection indicator.

export const $ = (id) => document.getElementById(id);
export const FINISHED = new Set(['SUCCESS', 'ERROR', 'CANCELLED']);

export function el(tag, props, ...children) {
  const e = document.createElement(tag);
  Object.assign(e, props || {});
  for (const c of children) if (c != null) e.append(c);
  return e;
}

export function randomId() {
  if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
  return Date.now().toString(36) + Math.random().toString(36).slice(2);
}

/** The run token this page was opened with (`/runs/{id}?token=…`), if any. */
let token = new URLSearchParams(location.search).get('token') || '';

/** The token the page holds, if any. */
export function getToken() { return token; }

/** Remembers the token handed out when the page starts a run. */
export function setToken(t) { token = t || ''; }

/** `path` with the page's token as `?token=` (for EventSource, which sends no headers). */
export function withToken(path) {
  if (!token) return path;
  return `${path}${path.includes('?') ? '&' : '?'}token=${encodeURIComponent(token)}`;
}

/** JSON request; throws an Error carrying the server's message on a non-2xx answer. */
export async function api(method, path, body) {
  const init = { method, headers: { accept: 'application/json' } };
  if (token) init.headers.authorization = `Bearer ${token}`;
  if (body !== undefined) {
    init.headers['content-type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let r;
  try {
    r = await fetch(path, init);
  } catch (e) {
    const err = new Error('cannot reach the server');
    err.status = 0;
    throw err;
  }
  const text = await r.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch (e) { data = null; }
  if (!r.ok) {
    const msg = (data && data.error && data.error.message) || `${r.status} ${r.statusText}`;
    const err = new Error(msg);
    err.status = r.status;
    err.code = data && data.error && data.error.code;
    throw err;
  }
  return data;
}

export function showError(message) {
  const box = $('errors');
  for (const old of box.children) if (old.dataset.msg === message) return;
  const close = el('button', { type: 'button', className: 'small', textContent: 'Dismiss' });
  const item = el('div', { className: 'error' }, el('span', { textContent: message }), close);
  item.dataset.msg = message;
  close.addEventListener('click', () => item.remove());
  box.append(item);
}

/** How a run's state reads to a person: its outcome once finished, else its status. */
const OUTCOMES = {
  succeeded: ['Succeeded', 'good'], approved: ['Approved', 'good'],
  failed: ['Failed', 'bad'], rejected: ['Rejected', 'bad'],
  timed_out: ['Timed out', 'warn'], cancelled: ['Cancelled', 'muted'],
};
const STATUSES = { PENDING: ['Running', 'active'], ENQUEUED: ['Queued', 'active'],
  SUCCESS: ['Succeeded', 'good'], ERROR: ['Failed', 'bad'], CANCELLED: ['Cancelled', 'muted'] };

/** `[label, kind]` of a run: kind is good, bad, warn, muted, active or other. */
export function runState(r) {
  if (r && r.outcome && FINISHED.has(r.status)) {
    if (OUTCOMES[r.outcome]) return OUTCOMES[r.outcome];
    const words = r.outcome.replaceAll('_', ' ');
    return [words.charAt(0).toUpperCase() + words.slice(1), r.status === 'ERROR' ? 'bad' : 'other'];
  }
  return (r && STATUSES[r.status]) || [r && r.status ? r.status : '…', 'other'];
}

/** Sets a badge element to a run's state (`data-status` keeps the raw status). */
export function setBadge(badge, r) {
  const [label, kind] = runState(r);
  badge.textContent = label;
  badge.dataset.status = (r && r.status) || '';
  badge.dataset.kind = kind;
}

/** A duration in ms as people read it: 850 ms, 12.3 s, 4 min 05 s. */
export function duration(ms) {
  if (!Number.isFinite(ms) || ms < 0) return '';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60000) return `${(ms / 1000).toFixed(1)} s`;
  const s = Math.round(ms / 1000);
  return `${Math.floor(s / 60)} min ${String(s % 60).padStart(2, '0')} s`;
}

/** A time of day, with seconds. */
export function clock(t) {
  const d = t instanceof Date ? t : new Date(t);
  return Number.isNaN(d.getTime()) ? '' : d.toLocaleTimeString([], { hour12: false });
}

export function setConn(state, text) {
  const labels = { idle: '', connecting: 'connecting…', live: 'live',
    reconnecting: 'reconnecting…', offline: 'disconnected' };
  $('conn').dataset.state = state;
  $('conn-text').textContent = text || labels[state];
  const notes = {
    reconnecting: 'Connection lost. Reconnecting; the view continues where it stopped.',
    offline: 'Not receiving live updates.',
  };
  const note = $('conn-note');
  note.hidden = !notes[state];
  note.textContent = notes[state] || '';
  note.dataset.state = state;
}

/** True on `/dbos/runs/{id}`: the run is a DBOS workflow, read under `/v1/dbos`. */
export const DBOS = location.pathname.startsWith('/dbos/');

export function runPath(id, tok) {
  const p = `${DBOS ? '/dbos' : ''}/runs/${encodeURIComponent(id)}`;
  return tok ? `${p}?token=${encodeURIComponent(tok)}` : p;
}
export function apiPath(id, rest) {
  return `${DBOS ? '/v1/dbos' : '/v1'}/workflows/${encodeURIComponent(id)}${rest || ''}`;
}
export function asText(v) { return typeof v === 'string' ? v : JSON.stringify(v); }
