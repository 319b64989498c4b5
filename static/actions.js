// What the viewer may do with the run on screen: approve or reject (through an approval
// link minted for their name), cancel, and share a read-only link. The server says what the
// page's credential allows (GET …/access); buttons it would refuse are not shown.
//
// The decider's name: a token that may approve names its approvers (whoever started the run
// chose them), so the page offers exactly those. An API key or a keyless local server may
// mint a link for anyone, and flowgate has no user accounts, so the person types their name
// once; it is kept in localStorage for the next decision.
import { $, FINISHED, api, apiPath, showError, DBOS } from './ui.js';

const NAME_KEY = 'flowgate:approver';

let ctx = null;

/** A run was opened: forget the previous run's state and ask what this viewer may do. */
export function resetActions(run) {
  ctx = { run, access: null, links: new Map(), sent: null, decided: false, finished: false };
  $('cancel').hidden = true;
  $('cancel').disabled = false;
  $('share-box').hidden = true;
  $('share-link').value = '';
  $('share').hidden = DBOS;
  $('approval-note').hidden = true;
  $('approver').value = localStorage.getItem(NAME_KEY) || '';
  loadAccess(ctx);
  return ctx;
}

export function actionsState() { return ctx; }

async function loadAccess(c) {
  if (DBOS) {
    c.access = { read: true, approve: true, cancel: false, approvers: null };
  } else {
    try {
      c.access = await api('GET', apiPath(c.run, '/access'));
    } catch (e) {
      c.access = { read: true, approve: false, cancel: false, approvers: [] };
    }
  }
  if (ctx !== c) return;
  applyAccess();
}

/** Shows the controls the credential allows, given the run's state. */
export function applyAccess() {
  const c = ctx;
  if (!c || !c.access) return;
  $('cancel').hidden = !c.access.cancel || c.finished;
  const pick = $('approver-pick');
  const names = c.access.approvers;
  $('approver').hidden = Array.isArray(names);
  pick.hidden = !Array.isArray(names) || names.length < 2;
  if (Array.isArray(names) && pick.options.length !== names.length) {
    pick.replaceChildren(...names.map((n) => new Option(n, n)));
  }
  $('approver-row').hidden = Array.isArray(names) && names.length < 2;
  refreshApproval();
}

/** Hides or shows the decision controls (the approval section itself belongs to run.js). */
export function refreshApproval() {
  const c = ctx;
  if (!c) return;
  const may = !!(c.access && c.access.approve);
  const open = !c.decided && !c.sent && !c.finished;
  $('approval-controls').hidden = !open || !may;
  const note = $('approval-note');
  note.hidden = !open || may || !c.access;
  note.textContent = 'You are watching this run. Deciding needs an approval link or a token that may approve.';
}

export function setFinished(finished) {
  if (!ctx) return;
  ctx.finished = finished;
  applyAccess();
}

export function setDecided() {
  if (!ctx) return;
  ctx.decided = true;
  refreshApproval();
}

function deciderName() {
  const names = ctx.access && ctx.access.approvers;
  if (Array.isArray(names)) return names.length === 1 ? names[0] : $('approver-pick').value;
  return $('approver').value.trim();
}

function setDecision(text, kind) {
  const p = $('decision');
  p.textContent = text;
  p.dataset.kind = kind;
}

function setButtons(enabled) {
  for (const id of ['approve', 'reject', 'comment', 'approver', 'approver-pick']) $(id).disabled = !enabled;
}

async function decide(approved) {
  const c = ctx;
  if (!c) return;
  const name = deciderName();
  if (!name) {
    showError('Type your name before deciding: the decision is recorded with it.');
    $('approver').focus();
    return;
  }
  if (!Array.isArray(c.access && c.access.approvers)) localStorage.setItem(NAME_KEY, name);
  const comment = $('comment').value.trim();
  setButtons(false);
  setDecision('Sending…', '');
  try {
    // One link pair per name, kept for the view: a retry after an error reuses it.
    if (!c.links.has(name)) {
      const minted = await api('POST', apiPath(c.run, '/approval-links'),
        { topic: 'approval', approvers: [name] });
      if (ctx !== c) return;
      c.links.set(name, minted.links[0]);
    }
    const link = c.links.get(name);
    const used = await api('POST', approved ? link.approve_url : link.reject_url, { comment });
    if (ctx !== c) return;
    if (used.status === 'already_decided') {
      c.sent = { approved: used.decision === 'approve' };
      refreshApproval();
      setDecision(`Already decided: ${used.decision === 'approve' ? 'approved' : 'rejected'}`
        + `${used.comment ? ` — “${used.comment}”` : ''}`, used.decision === 'approve' ? 'approved' : 'rejected');
      return;
    }
    c.sent = { approved, comment };
    refreshApproval();
    if (!c.decided) {
      setDecision(`You (${name}) ${approved ? 'approved' : 'rejected'}; waiting for the run to continue…`,
        approved ? 'approved' : 'rejected');
    }
  } catch (e) {
    if (ctx !== c) return;
    setDecision('', '');
    showError(`Could not send the decision: ${e.message}`);
  } finally {
    setButtons(true);
  }
}

async function share() {
  const c = ctx;
  if (!c) return;
  try {
    const link = await api('POST', apiPath(c.run, '/share'));
    if (ctx !== c) return;
    $('share-link').value = location.origin + link.path;
    $('share-box').hidden = false;
    $('share-link').select();
  } catch (e) {
    showError(`Could not make a read-only link: ${e.message}`);
  }
}

async function cancel() {
  const c = ctx;
  if (!c) return;
  $('cancel').disabled = true;
  try {
    await api('POST', apiPath(c.run, '/cancel'));
  } catch (e) {
    if (ctx === c) showError(`Could not cancel: ${e.message}`);
  } finally {
    if (ctx === c) $('cancel').disabled = false;
  }
}

$('approve').addEventListener('click', () => decide(true));
$('reject').addEventListener('click', () => decide(false));
$('share').addEventListener('click', share);
$('cancel').addEventListener('click', cancel);
$('copy').addEventListener('click', async () => {
  const link = $('share-link').value;
  try {
    await navigator.clipboard.writeText(link);
    $('copy').textContent = 'Copied';
  } catch (e) {
    $('share-link').select();
    $('copy').textContent = 'Press Ctrl+C';
  }
  setTimeout(() => { $('copy').textContent = 'Copy'; }, 1500);
});

export { FINISHED };
