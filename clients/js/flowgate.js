// flowgate browser client: watch runs, follow streams and decide approvals over
// Server-Sent Events, resuming after any dropped connection with nothing lost or repeated.
// One dependency-free ES module; works in browsers and in Node 18+ (global fetch).
//
//   import { createClient } from '/static/flowgate.js';
//   const fg = createClient({ token, refreshToken: async () => (await fetch('/my-token')).text() });
//   const w = fg.watchRun(runId, { onStatus, onEvent, onRecord, onEnd });
//   w.close();

/** Statuses of a finished run. */
export const FINISHED = ['SUCCESS', 'ERROR', 'CANCELLED'];

/**
 * An error answered by the server (`status` is the HTTP status, `code` the error code).
 */
export class FlowgateError extends Error {
  /** @param {number} status @param {string} code @param {string} message */
  constructor(status, code, message) {
    super(message);
    this.name = 'FlowgateError';
    this.status = status;
    this.code = code;
  }
}

/**
 * @typedef {object} ClientOptions
 * @property {string} [baseUrl] Server address; '' (the default) means this page's origin.
 * @property {string} [token] A run token, tag token or API key, sent as a bearer token.
 * @property {() => Promise<string>} [refreshToken] Called when the server answers 401
 *   `token_expired`; the new token is used from then on and the watch resumes where it was.
 * @property {(state: 'connecting'|'live'|'reconnecting'|'closed') => void} [onState]
 * @property {number} [maxBackoffMs] Longest pause between reconnects (default 10000).
 */

/**
 * @typedef {object} Watch
 * @property {() => void} close Stops the watch; no callback fires after it.
 * @property {() => string|null} position The resume position (the last event id seen).
 */

/** Creates a client. @param {ClientOptions} [opts] */
export function createClient(opts = {}) {
  const base = (opts.baseUrl || '').replace(/\/$/, '');
  let token = opts.token || null;
  const maxBackoff = opts.maxBackoffMs || 10000;

  const headers = (extra = {}) => {
    const h = { ...extra };
    if (token) h.Authorization = `Bearer ${token}`;
    return h;
  };

  async function failure(resp) {
    let code = 'http_' + resp.status;
    let message = resp.statusText || 'request failed';
    try {
      const body = await resp.json();
      if (body && body.error) { code = body.error.code || code; message = body.error.message || message; }
    } catch (_) { /* not JSON */ }
    return new FlowgateError(resp.status, code, message);
  }

  // True if the token was refreshed and the request should be retried.
  async function refreshed(err) {
    if (err.status !== 401 || !opts.refreshToken) return false;
    token = await opts.refreshToken();
    return !!token;
  }

  async function request(method, path, body) {
    for (let attempt = 0; attempt < 2; attempt++) {
      const init = { method, headers: headers(body === undefined ? {} : { 'Content-Type': 'application/json' }) };
      if (body !== undefined) init.body = JSON.stringify(body);
      const resp = await fetch(path.startsWith('http') ? path : base + path, init);
      if (resp.ok) return resp.status === 204 ? null : resp.json();
      const err = await failure(resp);
      if (attempt === 0 && await refreshed(err)) continue;
      throw err;
    }
    return null;
  }

  // One resumable SSE subscription: reconnects with Last-Event-ID after a drop, refreshes
  // the token on 401, backs off on 5xx and network errors, stops on other 4xx or `end`.
  function subscribe(path, handlers, start, stopOn) {
    let position = start || null;
    let closed = false;
    const ctrl = { abort: null };
    const state = (s) => { if (!closed && opts.onState) opts.onState(s); };

    async function once() {
      const abort = new AbortController();
      ctrl.abort = abort;
      const h = headers({ Accept: 'text/event-stream' });
      if (position) h['Last-Event-ID'] = position;
      const resp = await fetch(base + path, { headers: h, signal: abort.signal, cache: 'no-store' });
      if (!resp.ok) throw await failure(resp);
      state('live');
      const reader = resp.body.getReader();
      const decoder = new TextDecoder();
      let buf = '';
      let ev = { event: '', data: [], id: null };
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return false;
        buf += decoder.decode(value, { stream: true });
        let nl;
        while ((nl = buf.search(/\r\n|\r|\n/)) >= 0) {
          if (buf[nl] === '\r' && nl === buf.length - 1) break; // a CR that may precede LF
          const line = buf.slice(0, nl);
          buf = buf.slice(nl + (buf.startsWith('\r\n', nl) ? 2 : 1));
          if (line === '') {
            if (ev.id !== null) position = ev.id;
            if (ev.data.length) {
              const name = ev.event || 'message';
              const data = ev.data.join('\n');
              if (!closed) handlers(name, data, ev.id);
              if (stopOn(name)) return true;
            }
            ev = { event: '', data: [], id: null };
            continue;
          }
          if (line.startsWith(':')) continue;
          const c = line.indexOf(':');
          const field = c < 0 ? line : line.slice(0, c);
          let val = c < 0 ? '' : line.slice(c + 1);
          if (val.startsWith(' ')) val = val.slice(1);
          if (field === 'event') ev.event = val;
          else if (field === 'data') ev.data.push(val);
          else if (field === 'id' && !val.includes('\0')) ev.id = val;
        }
      }
    }

    (async () => {
      let backoff = 250;
      state('connecting');
      while (!closed) {
        try {
          if (await once()) break;
          backoff = 250;
        } catch (err) {
          if (closed) break;
          if (err instanceof FlowgateError) {
            if (await refreshed(err).catch(() => false)) continue;
            if (err.status >= 400 && err.status < 500 && err.status !== 429) {
              if (handlers.onError) handlers.onError(err);
              break;
            }
          }
        }
        if (closed) break;
        state('reconnecting');
        await new Promise((r) => setTimeout(r, backoff));
        backoff = Math.min(backoff * 2, maxBackoff);
      }
      state('closed');
      closed = true;
    })();

    return {
      close() { closed = true; if (ctrl.abort) ctrl.abort.abort(); },
      position() { return position; },
    };
  }

  const parse = (data) => { try { return JSON.parse(data); } catch (_) { return data; } };
  const enc = encodeURIComponent;

  return {
    /** The token in use (after any refresh). */
    get token() { return token; },

    /**
     * Watches one run: `onStatus(run)`, `onEvent({key, value, version})`,
     * `onRecord({key, offset, value})`, `onClose({key, next})` when a stream closes, and
     * `onEnd(run)` once, the first time the run is seen finished. The watch stays open
     * (a finished run's streams may still be closed); call `close()` when done.
     * @param {string} id
     * @param {{onStatus?: Function, onEvent?: Function, onRecord?: Function, onClose?: Function,
     *   onEnd?: Function, onError?: Function, from?: string}} h
     * @returns {Watch}
     */
    watchRun(id, h = {}) {
      let ended = false;
      const fire = (name, data) => {
        const v = parse(data);
        if (name === 'status') {
          if (h.onStatus) h.onStatus(v);
          if (!ended && FINISHED.includes(v.status)) {
            ended = true;
            if (h.onEnd) h.onEnd(v);
          }
        } else if (name === 'event' && h.onEvent) h.onEvent(v);
        else if (name === 'record' && h.onRecord) h.onRecord(v);
        else if (name === 'close' && h.onClose) h.onClose(v);
      };
      fire.onError = h.onError;
      return subscribe(`/v1/workflows/${enc(id)}/live`, fire, h.from, () => false);
    },

    /**
     * Watches every run matching the filter: `onRuns(list)` once with the current runs
     * (newest first), then `onRun(run)` for each start and status change. `runs()` is the
     * merged list.
     * @param {{tag?: string, workflow?: string, status?: string, limit?: number,
     *   onRuns?: Function, onRun?: Function, onError?: Function, from?: string}} f
     */
    watchRuns(f = {}) {
      const q = new URLSearchParams();
      for (const k of ['tag', 'workflow', 'status', 'limit']) if (f[k] != null) q.set(k, String(f[k]));
      const byId = new Map();
      const fire = (name, data) => {
        const v = parse(data);
        if (name === 'runs') {
          byId.clear();
          for (const r of v.runs) byId.set(r.id, r);
          if (f.onRuns) f.onRuns(v.runs);
        } else if (name === 'run') {
          byId.set(v.id, v);
          if (f.onRun) f.onRun(v);
        }
      };
      fire.onError = f.onError;
      const w = subscribe(`/v1/workflows?${q}`, fire, f.from, () => false);
      w.runs = () => [...byId.values()].sort((a, b) =>
        a.created_at < b.created_at ? 1 : a.created_at > b.created_at ? -1 : (a.id < b.id ? 1 : -1));
      return w;
    },

    /**
     * Follows one stream from `from` (default 0): `onRecord(value, offset)` for each record
     * in order, `onEnd(next)` at the close marker.
     * @param {string} id @param {string} key
     * @param {{from?: number, onRecord?: Function, onEnd?: Function, onError?: Function}} h
     */
    followStream(id, key, h = {}) {
      const fire = (name, data, evId) => {
        if (name === 'end') { if (h.onEnd) h.onEnd(parse(data)); return; }
        if (h.onRecord) h.onRecord(parse(data), Number(evId));
      };
      fire.onError = h.onError;
      const start = h.from ? String(h.from - 1) : null;
      return subscribe(`/v1/workflows/${enc(id)}/streams/${enc(key)}`, fire, start, (n) => n === 'end');
    },

    /**
     * Uses an approval link (its approve or its reject address) once; a second use answers
     * the first decision (`status: 'already_decided'`).
     * @param {string} link @param {string} [comment]
     */
    approve(link, comment) {
      return request('POST', link, comment ? { comment } : {});
    },

    /** Sends a message to a run. */
    send(id, topic, body, idempotencyKey) {
      const m = { topic, body };
      if (idempotencyKey) m.idempotency_key = idempotencyKey;
      return request('POST', `/v1/workflows/${enc(id)}/messages`, m);
    },

    /** Any JSON request, with the client's token and refresh. */
    request,
  };
}
