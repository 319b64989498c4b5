// The selected run: one EventSource on /v1/workflows/{id}/live (status, events and every
// stream of the run), rendered as a status badge, a progress bar, the approval buttons and
// each stream's text. The browser resumes a dropped connection with Last-Event-ID; when it
// gives up (an HTTP error), this module reconnects with the last cursor as ?cursor=.
import { $, FINISHED, el, api, showError, setConn, runPath, apiPath, asText, withToken } from './ui.js';

/** State of the run on screen; replaced when another run is opened. */
let view = null;

export function openRun(id) {
  closeRun();
  view = { run: id, es: null, lastId: '', attempts: 0, timer: null, streams: new Map(),
    status: null, decided: false, sent: null, links: null };
  $('placeholder').hidden = true;
  $('run').hidden = false;
  $('run-id').textContent = id;
  $('run-workflow').textContent = '';
  const badge = $('run-status');
  badge.textContent = '…';
  badge.dataset.status = '';
  $('share').href = withToken(runPath(id));
  $('share').textContent = location.origin + withToken(runPath(id));
  $('status-text').textContent = '';
  $('progress-wrap').hidden = true;
  setProgress(0);
  $('approval').hidden = true;
  $('approval-title').textContent = 'Approval needed';
  delete $('approval').dataset.decided;
  $('approval-controls').hidden = false;
  $('comment').value = '';
  setDecisionButtons(true);
  setDecision('', '');
  $('streams').replaceChildren();
  $('result-wrap').hidden = true;
  $('events').replaceChildren();
  $('events-wrap').hidden = true;
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
  const badge = $('run-status');
  badge.textContent = d.status;
  badge.dataset.status = d.status;
  $('run-workflow').textContent = d.workflow ? `workflow ${d.workflow}` : '';
  document.title = `${d.workflow || 'run'} ${d.id} · ${d.status} · flowgate`;
  document.dispatchEvent(new CustomEvent('flowgate:status', { detail: d }));
  if (FINISHED.has(d.status)) {
    const shown = d.status === 'SUCCESS' ? d.output : d.error;
    if (shown != null) {
      $('result-title').textContent = d.status === 'SUCCESS' ? 'Result' : `Run ${d.status.toLowerCase()}`;
      $('result').textContent = JSON.stringify(shown, null, 2);
      $('result-wrap').hidden = false;
    }
    if (!$('approval').hidden && !v.decided) decisionFromStatus(v, d);
  }
}

function onEvent(v, d) {
  let row = [...$('events').children].find((e) => e.dataset.key === d.key);
  if (!row) {
    const dt = el('dt', { textContent: d.key });
    dt.dataset.key = d.key;
    row = dt;
    $('events').append(dt, el('dd'));
  }
  row.nextElementSibling.textContent = asText(d.value);
  $('events-wrap').hidden = false;
  switch (d.key) {
    case 'progress': showProgress(d.value); break;
    case 'status': $('status-text').textContent = asText(d.value); break;
    case 'request': showRequest(v, d.value); break;
    case 'decision': showDecision(v, d.value); break;
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
  const finished = v.status && FINISHED.has(v.status.status);
  $('approval-controls').hidden = v.decided || !!v.sent || finished;
  if (finished && !v.decided) decisionFromStatus(v, v.status);
}

/** A finished approval run: its output says what was decided (if anything). */
function decisionFromStatus(v, d) {
  const out = d.output;
  if (out && typeof out.approved === 'boolean') showDecision(v, out);
  else {
    $('approval-controls').hidden = true;
    setDecision(`The run ended (${d.status.toLowerCase()}) without a decision.`, '');
  }
}

function setDecisionButtons(enabled) {
  $('approve').disabled = !enabled;
  $('reject').disabled = !enabled;
  $('comment').disabled = !enabled;
}

function setDecision(text, kind) {
  const p = $('decision');
  p.textContent = text;
  p.dataset.kind = kind;
}

function showDecision(v, value) {
  const approved = value && typeof value === 'object' ? value.approved === true : value === true;
  const comment = value && typeof value === 'object' && value.comment ? ` — “${value.comment}”` : '';
  v.decided = true;
  $('approval').hidden = false;
  $('approval-title').textContent = 'Decision';
  $('approval').dataset.decided = approved ? 'approved' : 'rejected';
  $('approval-controls').hidden = true;
  setDecision(`${approved ? 'Approved' : 'Rejected'}${comment}`, approved ? 'approved' : 'rejected');
}

async function decide(approved) {
  const v = view;
  if (!v) return;
  const comment = $('comment').value.trim();
  setDecisionButtons(false);
  setDecision('Sending…', '');
  try {
    // A link pair for this run's approval topic, then the chosen link with the comment.
    // Kept for the view: a second try after an error reuses the same (single-use) pair.
    if (!v.links) {
      const minted = await api('POST', apiPath(v.run, '/approval-links'), { topic: 'approval' });
      if (view !== v) return;
      [v.links] = minted.links;
    }
    const link = v.links;
    const used = await api('POST', approved ? link.approve_url : link.reject_url, { comment });
    if (view !== v) return;
    if (used.status === 'already_decided') {
      $('approval-controls').hidden = true;
      setDecision(`Already decided: ${used.decision === 'approve' ? 'approved' : 'rejected'}`
        + `${used.comment ? ` — “${used.comment}”` : ''}`, used.decision === 'approve' ? 'approved' : 'rejected');
      return;
    }
    v.sent = { approved, comment };
    if (!v.decided) {
      $('approval-controls').hidden = true;
      setDecision(`You ${approved ? 'approved' : 'rejected'}; waiting for the run to continue…`,
        approved ? 'approved' : 'rejected');
    }
  } catch (e) {
    if (view !== v) return;
    setDecision('', '');
    setDecisionButtons(true);
    showError(`Could not send the decision: ${e.message}`);
  }
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

$('approve').addEventListener('click', () => decide(true));
$('reject').addEventListener('click', () => decide(false));
$('copy').addEventListener('click', async () => {
  const link = $('share').href;
  try {
    await navigator.clipboard.writeText(link);
    $('copy').textContent = 'Copied';
  } catch (e) {
    window.prompt('Copy this link:', link);
  }
  setTimeout(() => { $('copy').textContent = 'Copy link'; }, 1500);
});
