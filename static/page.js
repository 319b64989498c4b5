// The flowgate page: start demo workflows, list recent runs, and watch one run live over a
// single EventSource on /v1/workflows/{id}/live (status, events and every stream, resumed by
// the browser with Last-Event-ID after a dropped connection or a server restart).
'use strict';

(() => {
  const $ = (id) => document.getElementById(id);
  const FINISHED = new Set(['SUCCESS', 'ERROR', 'CANCELLED']);
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

  // ---- small helpers -------------------------------------------------------------------

  function el(tag, props, ...children) {
    const e = document.createElement(tag);
    Object.assign(e, props || {});
    for (const c of children) if (c != null) e.append(c);
    return e;
  }

  function randomId() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    return Date.now().toString(36) + Math.random().toString(36).slice(2);
  }

  /** JSON request; throws an Error carrying the server's message on a non-2xx answer. */
  async function api(method, path, body) {
    const init = { method, headers: { accept: 'application/json' } };
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
      throw err;
    }
    return data;
  }

  function showError(message) {
    const box = $('errors');
    for (const old of box.children) if (old.dataset.msg === message) return;
    const close = el('button', { type: 'button', className: 'small', textContent: 'Dismiss' });
    const item = el('div', { className: 'error' }, el('span', { textContent: message }), close);
    item.dataset.msg = message;
    close.addEventListener('click', () => item.remove());
    box.append(item);
  }

  function setConn(state, text) {
    const labels = { idle: 'not connected', connecting: 'connecting…', live: 'live',
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

  function runPath(id) { return `/runs/${encodeURIComponent(id)}`; }
  function apiPath(id, rest) { return `/v1/workflows/${encodeURIComponent(id)}${rest || ''}`; }
  function asText(v) { return typeof v === 'string' ? v : JSON.stringify(v); }

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
      navigate(runPath(run.id));
      loadRuns();
    } catch (e) {
      showError(`Could not start ${demo.name}: ${e.message}`);
    } finally {
      button.disabled = false;
    }
  }

  // ---- recent runs ---------------------------------------------------------------------

  let runsTimer = null;
  let runsAvailable = true;

  function renderRuns(runs) {
    const list = $('runs');
    list.replaceChildren();
    if (view && !runs.some((r) => r.id === view.run) && view.status) runs.unshift(view.status);
    for (const r of runs) {
      const badge = el('span', { className: 'badge', textContent: r.status });
      badge.dataset.status = r.status;
      const a = el('a', { href: runPath(r.id) },
        el('span', { className: 'rid', textContent: r.id }), badge,
        el('span', { className: 'rwf', textContent: r.workflow }));
      a.dataset.nav = '';
      a.dataset.run = r.id;
      if (view && view.run === r.id) a.setAttribute('aria-current', 'page');
      list.append(el('li', {}, a));
    }
    if (!runs.length && runsAvailable) {
      list.append(el('li', { className: 'note', textContent: 'No runs yet.' }));
    }
  }

  async function loadRuns() {
    clearTimeout(runsTimer);
    try {
      const body = await api('GET', '/v1/workflows?limit=20');
      runsAvailable = true;
      $('runs-note').hidden = true;
      renderRuns(Array.isArray(body) ? body : (body && body.runs) || []);
    } catch (e) {
      runsAvailable = false;
      const note = $('runs-note');
      note.hidden = false;
      note.textContent = e.status === 404
        ? 'This server keeps no run list; open a run by its address, /runs/<id>.'
        : `Cannot load runs: ${e.message}`;
      renderRuns([]);
    }
    // Statuses in the list refresh every few seconds while the page is visible; the
    // selected run is live.
    const delay = runsAvailable ? 3000 : 30000;
    runsTimer = setTimeout(() => { if (!document.hidden) loadRuns(); else loadRunsLater(); }, delay);
  }

  function loadRunsLater() {
    document.addEventListener('visibilitychange', function once() {
      if (!document.hidden) {
        document.removeEventListener('visibilitychange', once);
        loadRuns();
      }
    });
  }

  // ---- the selected run ----------------------------------------------------------------

  /** State of the run on screen; replaced when another run is opened. */
  let view = null;

  function openRun(id) {
    closeRun();
    view = { run: id, es: null, lastId: '', attempts: 0, timer: null, streams: new Map(),
      status: null, decided: false, sent: null };
    $('placeholder').hidden = true;
    $('run').hidden = false;
    $('run-id').textContent = id;
    $('run-workflow').textContent = '';
    const badge = $('run-status');
    badge.textContent = '…';
    badge.dataset.status = '';
    $('share').href = runPath(id);
    $('share').textContent = location.origin + runPath(id);
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
    for (const a of document.querySelectorAll('#runs a')) {
      if (a.dataset.run === id) a.setAttribute('aria-current', 'page');
      else a.removeAttribute('aria-current');
    }
    connect(view);
  }

  function closeRun() {
    if (!view) return;
    clearTimeout(view.timer);
    if (view.es) view.es.close();
    view = null;
    setConn('idle');
  }

  function showPlaceholder() {
    closeRun();
    $('run').hidden = true;
    $('placeholder').hidden = false;
    document.title = 'flowgate';
  }

  // ---- the live connection -------------------------------------------------------------

  function connect(v) {
    const cursor = v.lastId ? `?cursor=${encodeURIComponent(v.lastId)}` : '';
    const es = new EventSource(apiPath(v.run, '/live') + cursor);
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
      const r = await fetch(apiPath(v.run, '/live') + cursor,
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
    if (!runsAvailable && !document.querySelector('#runs a')) renderRuns([]);
    for (const a of document.querySelectorAll('#runs a')) {
      if (a.dataset.run !== d.id) continue;
      const b = a.querySelector('.badge');
      b.textContent = d.status;
      b.dataset.status = d.status;
    }
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
      await api('POST', apiPath(v.run, '/messages'), {
        topic: 'approval',
        body: { approved, comment },
        idempotency_key: `page-${randomId()}`,
      });
      if (view !== v) return;
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

  // ---- navigation ----------------------------------------------------------------------

  function route() {
    const m = location.pathname.match(/^\/runs\/([^/]+)\/?$/);
    if (!m) { showPlaceholder(); return; }
    let id;
    try { id = decodeURIComponent(m[1]); } catch (e) { id = m[1]; }
    if (!view || view.run !== id) openRun(id);
  }

  function navigate(path) {
    if (location.pathname !== path) history.pushState(null, '', path);
    route();
  }

  document.addEventListener('click', (e) => {
    const a = e.target.closest && e.target.closest('a[data-nav]');
    if (!a || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
    e.preventDefault();
    navigate(new URL(a.href).pathname);
  });
  window.addEventListener('popstate', route);
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

  renderDemos(null);
  loadDemos();
  loadRuns();
  route();
})();
