// The selected run: one EventSource on /v1/workflows/{id}/live (status, events, steps and
// every stream of the run), rendered as an outcome badge, a progress bar, the approval
// request, each stream's text and the timeline (timeline.js); what the viewer may do is in
// actions.js. The browser resumes a dropped connection with Last-Event-ID; when it gives up
// (an HTTP error), this module reconnects with the last cursor as ?cursor=.
import { $, FINISHED, el, showError, setConn, apiPath, asText, withToken, setBadge, runState } from './ui.js';
import { resetActions, setFinished, setDecided, refreshApproval, actionsState } from './actions.js';
import { resetTimeline, timesFromStatus, onStep, historyAdd, showChildren } from './timeline.js';

/** Looks a run up in the live run list (set by page.js). */
let lookup = () => null;
export function setRunLookup(f) { lookup = f; }

/** State of the run on screen; replaced when another run is opened. */
let view = null;

export function openRun(id) {
  closeRun();
  view = { run: id, es: null, lastId: '', attempts: 0, timer: null, streams: new Map(), status: null };
  $('placeholder').hidden = true;
  $('run').hidden = false;
  $('run-id').textContent = id;
  $('run-workflow').textContent = '';
  setBadge($('run-status'), null);
  $('status-text').textContent = '';
  $('progress-wrap').hidden = true;
  delete $('progress').dataset.kind;
  setProgress(0);
  $('approval').hidden = true;
  $('approval-title').textContent = 'Approval needed';
  delete $('approval').dataset.decided;
  $('comment').value = '';
  setDecision('', '');
  $('streams').replaceChildren();
  $('result-wrap').hidden = true;
  resetTimeline();
  resetActions(id);
  document.title = `${id} · flowgate`;
  connect(view);
}

export function closeRun() {
  if (!view) return;
  clearTimeout(view.timer);
  if (view.es) view.es.close();
  view = null;
  setConn('idle');
}

export function showPlaceholder() {
  closeRun();
  $('run').hidden = true;
  $('placeholder').hidden = false;
  document.title = 'flowgate';
}

// ---- the live connection -------------------------------------------------------------

function connect(v) {
  const cursor = v.lastId ? `?cursor=${encodeURIComponent(v.lastId)}` : '';
  const es = new EventSource(withToken(apiPath(v.run, '/live') + cursor));
  v.es = es;
  setConn(v.lastId ? 'reconnecting' : 'connecting');
  es.onopen = () => {
    if (view !== v) return;
    v.attempts = 0;
    setConn('live');
  };
  es.onerror = () => {
    if (view !== v) return;
    // CONNECTING: the browser retries by itself, sending Last-Event-ID.
    if (es.readyState === EventSource.CONNECTING) { setConn('reconnecting'); return; }
    // CLOSED: it gave up (an HTTP error, or an answer that was not an event stream).
    es.close();
    diagnose(v);
  };
  const on = (name, handle) => es.addEventListener(name, (e) => {
    if (view !== v) return;
    if (e.lastEventId) v.lastId = e.lastEventId;
    let data;
    try { data = JSON.parse(e.data); } catch (err) {
      showError(`Unreadable ${name} message from the server.`);
      return;
    }
    handle(v, data);
  });
  on('status', onStatus);
  on('event', onEvent);
  on('step', (_, d) => onStep(d));
  on('record', onRecord);
  on('close', onClose);
  on('limit', (_, d) => showError(d.message));
}

/** After the browser gave up: find out why, then reconnect with backoff or stop. */
async function diagnose(v) {
  v.attempts += 1;
  setConn('reconnecting');
  let problem = null;
  try {
    const ctl = new AbortController();
    const cursor = v.lastId ? `?cursor=${encodeURIComponent(v.lastId)}` : '';
    const r = await fetch(withToken(apiPath(v.run, '/live') + cursor),
      { headers: { accept: 'text/event-stream' }, signal: ctl.signal });
    if (!r.ok) {
      const body = await r.json().catch(() => null);
      problem = { status: r.status, code: body && body.error && body.error.code,
        message: (body && body.error && body.error.message) || `HTTP ${r.status}` };
    }
    ctl.abort();
  } catch (e) {
    problem = null; // unreachable: keep trying
  }
  if (view !== v) return;
  if (problem && problem.code === 'run_not_found') {
    setConn('offline');
    $('run-status').textContent = 'NOT FOUND';
    showError(`There is no run "${v.run}".`);
    return;
  }
  if (problem && problem.code === 'invalid_cursor') {
    // The server no longer knows our position (its database was reset): start over.
    showError('The server lost this run\'s position; showing it from the start.');
    openRun(v.run);
    return;
  }
  if (problem && (problem.status === 401 || problem.status === 403)) {
    setConn('offline');
    showError(`Not allowed to watch this run: ${problem.message}. Open the link with its ?token=… (the address a run's starter was given).`);
    return;
  }
  if (problem && problem.status >= 400 && problem.status < 500) {
    setConn('offline');
    showError(`Live updates failed: ${problem.message}`);
    return;
  }
  const delay = Math.min(500 * 2 ** Math.min(v.attempts, 5), 10000);
  v.timer = setTimeout(() => { if (view === v) connect(v); }, delay);
}

function onStatus(v, d) {
  v.status = d;
  setBadge($('run-status'), d);
  $('run-workflow').textContent = d.workflow ? `workflow ${d.workflow}` : '';
  const [label, kind] = runState(d);
  document.title = `${d.workflow || 'run'} ${d.id} · ${label} · flowgate`;
  document.dispatchEvent(new CustomEvent('flowgate:status', { detail: d }));
  timesFromStatus(d);
  const finished = FINISHED.has(d.status);
  setFinished(finished);
  if (finished) {
    $('progress').dataset.kind = kind;
    // The last status line of a run that did not finish on its own no longer holds.
    if (d.status !== 'SUCCESS') $('status-text').textContent = label;
    const shown = d.status === 'SUCCESS' ? d.output : d.error;
    if (shown != null) {
      $('result-title').textContent = d.status === 'SUCCESS' ? 'Result' : `Run ${label.toLowerCase()}`;
      $('result').textContent = JSON.stringify(shown, null, 2);
      $('result-wrap').hidden = false;
    }
    if (!$('approval').hidden && !actionsState().decided) decisionFromStatus(d);
  }
}

function onEvent(v, d) {
  historyAdd(d);
  switch (d.key) {
    case 'progress': showProgress(d.value); break;
    case 'status':
      if (!(v.status && FINISHED.has(v.status.status) && v.status.status !== 'SUCCESS')) {
        $('status-text').textContent = asText(d.value);
      }
      break;
    case 'request': showRequest(v, d.value); break;
    case 'decision': showDecision(d.value); break;
    case 'children': showChildren(d.value, lookup); break;
    default: break;
  }
}

function showProgress(value) {
  let n = typeof value === 'number' ? value
    : value && typeof value === 'object' ? Number(value.percent ?? value.progress ?? value.value) : Number(value);
  if (!Number.isFinite(n)) return;
  $('progress-wrap').hidden = false;
  setProgress(n);
}

function setProgress(n) {
  const pct = Math.max(0, Math.min(100, Math.round(n)));
  $('progress').setAttribute('aria-valuenow', String(pct));
  $('progress-fill').style.width = `${pct}%`;
  $('progress-label').textContent = `${pct}%`;
}

// ---- approval ------------------------------------------------------------------------

function showRequest(v, value) {
  const title = value && typeof value === 'object' ? value.title : value;
  $('approval-request').textContent = title ? asText(title) : 'This run is waiting for a decision.';
  $('approval').hidden = false;
  refreshApproval();
  if (v.status && FINISHED.has(v.status.status) && !actionsState().decided) decisionFromStatus(v.status);
}

/** A finished approval run: its output says what was decided (if anything). */
function decisionFromStatus(d) {
  const out = d.output;
  if (out && typeof out.approved === 'boolean') showDecision(out);
  else {
    setDecided();
    setDecision(`The run ended (${runState(d)[0].toLowerCase()}) without a decision.`, '');
  }
}

function setDecision(text, kind) {
  const p = $('decision');
  p.textContent = text;
  p.dataset.kind = kind;
}

/** The decision: approved, rejected (by whom) or timed out (nobody decided), and when. */
function showDecision(value) {
  const o = value && typeof value === 'object' ? value : { approved: value === true };
  const outcome = o.outcome || (o.approved ? 'approved' : o.comment === 'timed out' ? 'timed_out' : 'rejected');
  const by = o.decided_by || (outcome === 'rejected' ? o.rejected_by : null);
  const at = o.decided_at ? new Date(o.decided_at) : null;
  const when = at && !Number.isNaN(at.getTime()) ? ` at ${at.toLocaleTimeString([], { hour12: false })}` : '';
  let text;
  if (outcome === 'timed_out') text = `Timed out — nobody decided in time${when ? ` (gave up${when})` : ''}`;
  else {
    text = `${outcome === 'approved' ? 'Approved' : 'Rejected'}${by ? ` by ${by}` : ''}${when}`;
    if (o.comment) text += ` — “${o.comment}”`;
  }
  setDecided();
  $('approval').hidden = false;
  $('approval-title').textContent = 'Decision';
  $('approval').dataset.decided = outcome;
  setDecision(text, outcome === 'approved' ? 'approved' : outcome === 'timed_out' ? 'timed_out' : 'rejected');
}

// ---- streams -------------------------------------------------------------------------

function streamBox(key) {
  let s = view.streams.get(key);
  if (s) return s;
  const id = `stream-${key}`;
  const out = el('div', { id, className: 'stream' });
  out.setAttribute('role', 'log');
  out.setAttribute('aria-label', `Stream ${key}`);
  out.dataset.key = key;
  const count = el('span', { textContent: '0 records' });
  const section = el('section', { className: 'stream-wrap' },
    el('div', { className: 'stream-head' }, el('span', { textContent: key }), count),
    out, el('p', { className: 'stream-end', textContent: 'end of stream' }));
  // The `output` stream (the demo's tokens) goes first.
  if (key === 'output') $('streams').prepend(section); else $('streams').append(section);
  s = { next: 0, out, count };
  view.streams.set(key, s);
  return s;
}

function onRecord(v, d) {
  const s = streamBox(d.key);
  if (d.offset !== s.next) {
    showError(`Stream "${d.key}": expected record ${s.next} but got ${d.offset}.`);
  }
  s.next = d.offset + 1;
  const atBottom = s.out.scrollHeight - s.out.scrollTop - s.out.clientHeight < 24;
  const text = typeof d.value === 'string' ? d.value : `${JSON.stringify(d.value)}\n`;
  s.out.append(el('span', { className: 'tok', textContent: text }));
  s.count.textContent = `${s.next} record${s.next === 1 ? '' : 's'}`;
  if (atBottom) s.out.scrollTop = s.out.scrollHeight;
}

function onClose(v, d) {
  const s = streamBox(d.key);
  s.out.dataset.closed = '';
}

/** The run on screen and its last status, if any. */
export function currentRun() {
  return view && { id: view.run, status: view.status };
}

