// The Weft dashboard: plain ES modules, no build, no framework, no network beyond this node.
// Everything a peer or a producer wrote is put on the page as text (textContent), never as HTML.

const main = document.getElementById('main');
let session = { role: 'read', csrf: null, computer: '' };
let current = '';
let keys = () => undefined;
/** The open page's refresh timer (Mesh, Approvals): cleared when another page opens. */
let pageTimer;
/** Runs `fn` again in `ms` while `page` stays open (errors are shown by the banner, not here). */
function refreshEvery(page, ms, fn) {
  clearTimeout(pageTimer);
  pageTimer = setTimeout(() => {
    if (current === page && !loggedOut) void fn().catch(() => undefined);
  }, ms);
}

/** Builds an element: h('td', { class: 'x', onclick }, 'text', child). */
function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs ?? {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'class') el.className = v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat()) if (c !== undefined && c !== null && c !== false) el.append(c instanceof Node ? c : String(c));
  return el;
}

/**
 * Characters that change how the text around them reads without showing themselves: C0 and C1
 * controls (an ANSI escape starts with one), bidi embeddings, overrides and isolates (U+202E
 * turns `fdp.exe` into what reads as `exe.pdf`), zero-width spaces and joiners of words, the
 * BOM. ZWJ and ZWNJ are left alone: emoji sequences and scripts need them.
 */
// biome-ignore lint/suspicious/noControlCharactersInRegex: finding control characters is what it is for
const HIDDEN = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u200b\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff]/g;
const codePoint = (c) => `U+${c.codePointAt(0).toString(16).toUpperCase().padStart(4, '0')}`;

/**
 * Text a producer or a peer wrote, as an isolated run (`<bdi>`: whatever direction it has, it
 * cannot reorder the text around it) with each hidden character shown as a mark (U+202E), so
 * what is read is what was written.
 */
function txt(value) {
  const s = value === undefined || value === null ? '' : String(value);
  const el = document.createElement('bdi');
  let at = 0;
  for (const m of s.matchAll(HIDDEN)) {
    el.append(s.slice(at, m.index), h('span', { class: 'hidden-char', title: 'a character that does not show itself, as it is in the text' }, codePoint(m[0])));
    at = m.index + m[0].length;
  }
  el.append(s.slice(at));
  return el;
}

/** The same for a string that is not an element (a toast, a title): hidden characters as ⟨U+202E⟩. */
const plain = (value) => String(value ?? '').replace(HIDDEN, (c) => `⟨${codePoint(c)}⟩`);

/** JSON for a <pre>: JSON escapes controls itself; bidi and zero-width characters are escaped too. */
const json = (value) => (JSON.stringify(value, null, 2) ?? '').replace(HIDDEN, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);

function toast(text, bad = false) {
  const t = document.getElementById('toast');
  t.textContent = plain(text);
  t.className = `show${bad ? ' bad' : ''}`;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => (t.className = ''), 3000);
}

/**
 * A line under the header while something keeps the page from being current: the session has
 * ended (a daemon restart logs everyone out) or the daemon does not answer. Null clears it.
 */
function banner(text) {
  const b = document.getElementById('banner');
  b.textContent = text ?? '';
  b.hidden = !text;
}

let loggedOut = false;
/** The open live connection, if any. */
let socket;
/** Other tabs of this browser are told of a logout here (they share the cookie it cleared). */
const tabs = typeof BroadcastChannel === 'function' ? new BroadcastChannel('weft-session') : undefined;
/**
 * The session is over: the page says so and stops changing. Its live connection is closed:
 * the daemon keeps pushing on a connection opened before the session ended, and a page that
 * said it no longer changes kept adding what arrived.
 */
function endSession(why = 'the daemon restarted or this login ended') {
  if (loggedOut) return;
  loggedOut = true;
  document.body.dataset.live = 'no';
  socket?.close(1000, 'logged out');
  socket = undefined;
  clearTimeout(liveTimer);
  liveQueue.clear();
  document.getElementById('logout').hidden = true;
  banner(`Logged out: ${why}, so this page no longer changes and cannot act. Run \`weft dashboard\` for a new login link.`);
}
if (tabs) tabs.onmessage = (m) => m.data === 'logout' && endSession('this login was logged out in another tab');

async function logout() {
  try {
    await api('POST', '/api/session/logout');
  } catch (err) {
    toast(`log out failed: ${err.message}`, true);
    return;
  }
  tabs?.postMessage('logout');
  endSession('you logged out');
}

async function api(method, path, body) {
  const headers = {};
  if (body !== undefined) headers['content-type'] = 'application/json';
  if (method !== 'GET' && session.csrf) headers['x-weft-csrf'] = session.csrf;
  const res = await fetch(path, { method, headers, credentials: 'same-origin', body: body === undefined ? undefined : JSON.stringify(body) });
  if (res.status === 401 && path !== '/api/session') endSession();
  const text = await res.text();
  let json;
  try {
    json = text ? JSON.parse(text) : undefined;
  } catch {
    json = text;
  }
  if (!res.ok) {
    const err = new Error(json?.error?.message ?? `HTTP ${res.status}`);
    err.status = res.status;
    throw err;
  }
  return json;
}

/** Runs an action, telling the user how it went. */
async function act(what, fn) {
  try {
    await fn();
    toast(what);
  } catch (err) {
    toast(`${what} failed: ${err.message}`, true);
  }
}

const admin = () => session.role === 'admin';
const LEVELS = ['infra', 'oper', 'workflow', 'business'];
const when = (iso) => (iso ? new Date(iso).toLocaleString() : '');

// ---------- Inbox ----------
// The selection is a notification id, never a row position: rows arriving or leaving live must
// not move what the detail panel (and its Claim and Resolve) act on.
// `shown` is how many the user asked to see (a page, and a page more for each Show older);
// `more` says whether older ones exist below the last row.
const inbox = { items: [], selId: null, filter: { level: '', domain: '', status: 'open' }, envelope: null, shown: 100, more: false };
/** Rows a page of the inbox loads (Show older loads one more). */
const PAGE = 100;
const selected = () => inbox.items.find((n) => n.id === inbox.selId);
const selIndex = () => inbox.items.findIndex((n) => n.id === inbox.selId);

function inboxQuery() {
  const q = new URLSearchParams({ limit: String(PAGE) });
  const f = inbox.filter;
  if (f.level) q.set('level', f.level);
  if (f.domain) q.set('domain', f.domain);
  if (f.status === 'unseen') q.set('humanStatus', 'unseen');
  if (['claimed', 'in_progress', 'resolved'].includes(f.status)) q.set('agentStatus', f.status);
  return q;
}

function matchesFilter(n) {
  const f = inbox.filter;
  if (f.level && n.level < Number(f.level)) return false;
  if (f.domain && n.domain !== f.domain) return false;
  if (f.status === 'open' && n.agentStatus === 'resolved') return false;
  if (f.status === 'unseen' && n.humanStatus !== 'unseen') return false;
  if (['claimed', 'in_progress', 'resolved'].includes(f.status) && n.agentStatus !== f.status) return false;
  return true;
}

/** Loads the list; if the selected notification left it (this page resolved it), the one now at its place is selected. */
/** Counts list loads: an answer to one that a later load (another filter) overtook is dropped. */
let inboxLoads = 0;

/** Loads the list; false when a later load started meanwhile (its answer is the one to show). */
async function loadInbox() {
  const at = selIndex();
  const mine = ++inboxLoads;
  const page = await fetchInbox(Math.min(Math.max(inbox.shown, PAGE), 1000));
  // Status open → claimed → resolved with the arrow keys asks three times: the answers may
  // come in another order, and the late claimed answer emptied the list under 'resolved'.
  if (mine !== inboxLoads) return false;
  inbox.items = page.items;
  inbox.more = page.more;
  if (!selected()) inbox.selId = inbox.items[Math.min(Math.max(at, 0), inbox.items.length - 1)]?.id ?? null;
  return true;
}

/**
 * Up to `limit` notifications of the view, newest first, below the id `cursor` if given. The
 * API filters one agent status at a time, so the open view (the default) is the three open
 * statuses asked for and merged: asking for all and dropping the resolved ones showed an empty
 * inbox once the newest 100 were resolved, however many older ones were open.
 */
async function fetchInbox(limit, cursor) {
  const q = inboxQuery();
  q.set('limit', String(limit));
  if (cursor) q.set('cursor', String(cursor));
  const statuses = inbox.filter.status === 'open' ? ['none', 'claimed', 'in_progress'] : [null];
  const pages = await Promise.all(
    statuses.map((st) => {
      const one = new URLSearchParams(q);
      if (st) one.set('agentStatus', st);
      return api('GET', `/api/notifications?${one}`);
    }),
  );
  // One that changed status between the queries is in two of them: the later state wins.
  const byId = new Map();
  for (const n of pages.flatMap((p) => p.items)) if (!byId.has(n.id) || byId.get(n.id).updatedAt < n.updatedAt) byId.set(n.id, n);
  const all = [...byId.values()].filter(matchesFilter).sort((a, b) => b.id - a.id);
  return { items: all.slice(0, limit), more: all.length > limit || pages.some((p) => p.nextCursor !== null) };
}

/** Show older: the next page below the last row, added under it. */
async function loadOlder() {
  const last = inbox.items[inbox.items.length - 1];
  const mine = inboxLoads;
  const page = await fetchInbox(PAGE, last?.id);
  if (mine !== inboxLoads) return;
  const have = new Set(inbox.items.map((n) => n.id));
  inbox.items.push(...page.items.filter((n) => !have.has(n.id)));
  inbox.more = page.more;
  inbox.shown = inbox.items.length;
  if (current === 'inbox') renderList();
}

function renderInbox() {
  const f = inbox.filter;
  const filters = h(
    'div',
    { class: 'filters' },
    h('label', {}, 'level ≥ ', h('select', { id: 'f-level', onchange: (e) => setFilter('level', e.target.value) }, ...['', '0', '1', '2', '3'].map((v) => h('option', { value: v, selected: f.level === v }, v === '' ? 'any' : LEVELS[Number(v)])))),
    h('label', {}, 'domain ', h('input', { id: 'f-domain', value: f.domain, placeholder: 'any', size: 18, onchange: (e) => setFilter('domain', e.target.value.trim()) })),
    h('label', {}, 'status ', h('select', { id: 'f-status', onchange: (e) => setFilter('status', e.target.value) }, ...['open', 'unseen', 'claimed', 'in_progress', 'resolved', 'all'].map((v) => h('option', { value: v, selected: f.status === v }, v)))),
    h('span', { class: 'muted' }, 'keys: j/k move · s seen · c claim · r resolve · / filter'),
  );
  main.replaceChildren(h('h2', {}, 'Inbox'), filters, h('div', { class: 'split' }, h('div', { id: 'inbox-left' }, ...list()), detail()));
}

/** The table (and the empty note) for the items as they are now. */
function list() {
  const rows = inbox.items.map((n) =>
    h(
      'tr',
      { class: `${n.id === inbox.selId ? 'sel' : ''} ${n.humanStatus === 'unseen' ? 'unseen' : ''}`, 'data-id': n.id, onclick: () => select(n.id) },
      h('td', {}, String(n.id)),
      h('td', {}, h('span', { class: `chip lvl${n.level}` }, LEVELS[n.level] ?? n.level)),
      h('td', {}, n.eventType),
      h('td', {}, h('div', { class: 'clamp' }, txt(n.description))),
      h('td', {}, n.humanStatus),
      h('td', {}, n.agentStatus, n.agentId ? [' (', txt(n.agentId), ')'] : null),
      h('td', { class: 'muted' }, when(n.createdAt)),
    ),
  );
  const table = h('table', { id: 'inbox-list' }, h('thead', {}, h('tr', {}, ...['#', 'level', 'type', 'description', 'human', 'agent', 'created'].map((c) => h('th', {}, c)))), h('tbody', {}, ...rows));
  const empty = inbox.items.length === 0 ? h('p', { class: 'muted' }, 'Nothing here. New notifications appear without a reload.') : null;
  const older = inbox.more
    ? h('p', {}, h('button', { class: 'secondary', id: 'btn-older', onclick: () => act('older notifications shown', loadOlder) }, 'Show older'), h('span', { class: 'muted' }, ` ${inbox.items.length} shown, newest first`))
    : null;
  return [table, empty, older].filter(Boolean);
}

/** Redraws the list only: the filters and the detail panel (what is typed in it) stay as they are. */
function renderList() {
  document.getElementById('inbox-left')?.replaceChildren(...list());
}

/**
 * Redraws the detail panel; what was typed in its form is kept when it still shows the same
 * notification, and so is the focus.
 */
function renderDetail() {
  const old = document.getElementById('detail');
  if (!old) return;
  const typed = new Map();
  if (old.dataset.id === String(inbox.selId)) {
    for (const el of old.querySelectorAll('#resolve-form [name]')) typed.set(el.name, el.type === 'checkbox' ? el.checked : el.value);
  }
  const focused = old.contains(document.activeElement) ? document.activeElement.name : undefined;
  const fresh = detail();
  for (const el of fresh.querySelectorAll('#resolve-form [name]')) {
    if (!typed.has(el.name)) continue;
    if (el.type === 'checkbox') el.checked = typed.get(el.name);
    else el.value = typed.get(el.name);
  }
  old.replaceWith(fresh);
  if (focused && typed.size > 0) fresh.querySelector(`[name="${CSS.escape(focused)}"]`)?.focus();
}

async function setFilter(k, v) {
  inbox.filter[k] = v;
  inbox.selId = null;
  inbox.shown = PAGE;
  if (!(await loadInbox())) return;
  await loadEnvelope();
  renderInbox();
}

async function select(id) {
  inbox.selId = id;
  await loadEnvelope();
  // Another row was selected meanwhile (j held down): that one draws itself.
  if (inbox.selId !== id) return;
  renderList();
  renderDetail();
  // One column (a phone): the detail is below the list, so bring it into view.
  if (window.matchMedia('(max-width: 760px)').matches) document.getElementById('detail')?.scrollIntoView({ block: 'start' });
}

/** Event types whose notifications must be claimed before they are resolved (from the catalog, read once). */
let claimFirst;
async function loadEnvelope() {
  const n = selected();
  inbox.envelope = null;
  if (!n) return;
  claimFirst ??= await api('GET', '/api/schemas').then(
    (types) => new Set(types.filter((t) => t.lifecycle?.requiresClaim).map((t) => t.type)),
    () => undefined,
  );
  let env = null;
  try {
    env = await api('GET', `/api/events/${encodeURIComponent(n.eventId)}`);
  } catch {
    env = null;
  }
  // An answer that comes after another row was selected is that row's no longer: taken, it put
  // the previous row's resolution form and actions in the panel of the one now shown.
  if (inbox.selId === n.id) inbox.envelope = env;
}

function detail() {
  const n = selected();
  if (!n) return h('div', { class: 'panel muted', id: 'detail', 'data-id': '' }, 'Select a notification.');
  const env = inbox.envelope;
  const shape = env?.resolutionShape ?? {};
  const agent = `dashboard@${session.computer || 'node'}`;
  const resolved = n.agentStatus === 'resolved';
  // Only the agent holding a claim may resolve it: the node would answer 409.
  const heldBy = (n.agentStatus === 'claimed' || n.agentStatus === 'in_progress') && n.agentId && n.agentId !== agent ? n.agentId : null;
  // Its type wants a claim first: Resolve claims it for this login, then resolves.
  const mustClaim = n.agentStatus === 'none' && claimFirst?.has(n.eventType) === true;
  const form = h(
    'form',
    {
      class: 'resolve',
      id: 'resolve-form',
      onsubmit: (e) => {
        e.preventDefault();
        const resolution = {};
        for (const [field, type] of Object.entries(shape)) {
          const el = e.target.elements[field];
          if (type === 'boolean') resolution[field] = el.checked;
          else if (type === 'number') resolution[field] = Number(el.value);
          else if (type === 'object' || type === 'array') resolution[field] = JSON.parse(el.value || (type === 'array' ? '[]' : '{}'));
          else resolution[field] = el.value;
        }
        void act(`notification ${n.id} resolved`, async () => {
          if (mustClaim) await api('POST', `/api/notifications/${n.id}/claim`, { agentId: agent });
          await api('POST', `/api/notifications/${n.id}/resolve`, { agentId: agent, ...(Object.keys(shape).length ? { resolution } : {}) });
          await refreshInbox();
        });
      },
    },
    ...Object.entries(shape).map(([field, type]) =>
      h('label', {}, `${field} (${type})`, type === 'boolean' ? h('input', { type: 'checkbox', name: field }) : type === 'object' || type === 'array' ? h('textarea', { name: field, rows: 3 }) : h('input', { name: field, type: type === 'number' ? 'number' : 'text', required: true })),
    ),
    h('button', { type: 'submit', id: 'btn-resolve', disabled: !admin() || resolved || heldBy !== null }, mustClaim ? 'Claim and resolve' : 'Resolve'),
    heldBy ? h('span', { class: 'muted' }, ' claimed by ', txt(heldBy), ': only that agent can resolve it ') : null,
    heldBy
      ? h('button', { type: 'button', class: 'secondary', id: 'btn-release', title: `take the claim away from ${plain(heldBy)} (an agent that stopped working on it)`, onclick: () => act(`notification ${n.id} released`, async () => { await api('POST', `/api/notifications/${n.id}/release`, { force: true }); await refreshInbox(); }) }, 'Free the claim')
      : null,
  );
  const actions = env?.actions
    ? h('div', {}, h('h3', {}, 'Actions this event offers'), h('ul', {}, ...Object.entries(env.actions).map(([name, a]) => h('li', {}, h('b', {}, txt(name)), ' — ', txt(a.description), ' (emits ', txt(a.produces), ')'))))
    : null;
  return h(
    'div',
    { class: 'panel', id: 'detail', 'data-id': n.id },
    h('h3', {}, `#${n.id} ${n.eventType}`),
    h('p', { class: 'description' }, txt(n.description)),
    h('p', { class: 'muted meta' }, 'from ', txt(n.source), n.sourceComputer ? [' on ', txt(n.sourceComputer)] : null, ' · ', txt(n.domain), ' · ', txt(n.visibility), ' · ', when(n.createdAt)),
    h(
      'div',
      { class: 'actions' },
      h('button', { class: 'secondary', id: 'btn-seen', disabled: !admin() || n.humanStatus === 'seen', onclick: () => act(`notification ${n.id} seen`, async () => { await api('POST', `/api/notifications/${n.id}/seen`); await refreshInbox(); }) }, 'Mark seen'),
      h('button', { class: 'secondary', id: 'btn-claim', disabled: !admin() || n.agentStatus !== 'none', onclick: () => act(`notification ${n.id} claimed`, async () => { await api('POST', `/api/notifications/${n.id}/claim`, { agentId: agent }); await refreshInbox(); }) }, 'Claim'),
    ),
    admin() ? form : h('p', { class: 'muted' }, 'Read-only login: resolving needs an admin login.'),
    actions,
    h('h3', {}, 'Payload'),
    h('pre', {}, json(n.payload)),
    n.resolution ? h('div', {}, h('h3', {}, 'Resolution'), h('pre', {}, json(n.resolution))) : null,
  );
}

async function refreshInbox() {
  if (!(await loadInbox())) return;
  await loadEnvelope();
  if (current === 'inbox') {
    renderList();
    renderDetail();
  }
}

async function pageInbox() {
  await loadInbox();
  await loadEnvelope();
  renderInbox();
  keys = (e) => {
    const n = selected();
    const i = selIndex();
    if (e.key === 'j' && i < inbox.items.length - 1) void select(inbox.items[i + 1].id);
    else if (e.key === 'k' && i > 0) void select(inbox.items[i - 1].id);
    else if (e.key === 's' && n) document.getElementById('btn-seen')?.click();
    else if (e.key === 'c' && n) document.getElementById('btn-claim')?.click();
    else if (e.key === 'r' && n) {
      // The key only moves the focus: it must not be typed into the field it lands in.
      e.preventDefault();
      (document.querySelector('#resolve-form input, #resolve-form textarea') ?? document.getElementById('btn-resolve'))?.focus();
    } else if (e.key === '/') {
      e.preventDefault();
      document.getElementById('f-domain')?.focus();
    } else return;
  };
}

// ---------- Approvals ----------
function highlight(code) {
  const pre = h('pre', { class: 'code' });
  const re = /(\/\/[^\n]*|\/\*[\s\S]*?\*\/)|("(?:\\.|[^"\\])*"|'(?:\\.|[^'\\])*'|`(?:\\.|[^`\\])*`)|\b(const|let|var|function|return|if|else|for|while|of|in|new|class|export|import|from|async|await|try|catch|throw|null|undefined|true|false|this)\b|\b(\d+(?:\.\d+)?)\b/g;
  let at = 0;
  for (const m of code.matchAll(re)) {
    pre.append(code.slice(at, m.index));
    pre.append(h('span', { class: m[1] ? 'com' : m[2] ? 'str' : m[3] ? 'kw' : 'num' }, m[0]));
    at = m.index + m[0].length;
  }
  pre.append(code.slice(at));
  return pre;
}

function decode64(b64) {
  try {
    return new TextDecoder().decode(Uint8Array.from(atob(b64), (c) => c.charCodeAt(0)));
  } catch {
    return '(source not readable)';
  }
}

let approvalsShown = '';
/** The Approvals page; while open it looks again every 5 s and redraws only when something changed (a source being read keeps its place). */
async function pageApprovals(force = true) {
  const [pending, carts, quarantine] = await Promise.all([
    api('GET', '/api/notifications?type=cartridge.install_pending&limit=100'),
    api('GET', '/api/cartridges').catch(() => ({ items: [] })),
    api('GET', '/api/quarantine?status=held&limit=100'),
  ]);
  refreshEvery('approvals', 5000, () => pageApprovals(false));
  const open = pending.items.filter((n) => n.agentStatus !== 'resolved');
  const shown = JSON.stringify([open.map((n) => n.id), carts.items.map((c) => [c.name, c.version, c.status, c.invocationCount]), quarantine.items.map((x) => x.id), session.role]);
  if (current !== 'approvals' || (!force && shown === approvalsShown)) return;
  approvalsShown = shown;
  const cards = await Promise.all(
    open.map(async (n) => {
      let published = null;
      if (n.payload.publishedEventId) published = await api('GET', `/api/events/${encodeURIComponent(n.payload.publishedEventId)}`).catch(() => null);
      const p = published?.payload ?? {};
      const manifest = { name: n.payload.name, version: n.payload.version, author: n.payload.author, event_type: p.event_type, entry_point: p.entry_point, consumes: p.consumes, emits: p.emits, dependencies: p.dependencies };
      const decide = (approve) =>
        act(`${n.payload.name} ${approve ? 'approved' : 'rejected'}`, async () => {
          await api('POST', `/api/notifications/${n.id}/resolve`, { agentId: `dashboard@${session.computer}`, approve });
          await pageApprovals();
        });
      return h(
        'div',
        { class: 'panel approval', 'data-cartridge': n.payload.name },
        h('h3', {}, txt(n.payload.name), ' ', txt(n.payload.version), ' by ', txt(n.payload.author)),
        h('p', { class: 'muted' }, 'from ', txt(n.payload.sourceComputer ?? n.payload.origin), ` · ${when(n.createdAt)}`, n.payload.sha256 ? [' · sha256 ', txt(String(n.payload.sha256).slice(0, 16)), '…'] : null),
        h('p', {}, 'Guardian: ', txt(n.payload.reason ?? 'a human decides (L1)')),
        h('h3', {}, 'Manifest'),
        h('pre', {}, json(manifest)),
        h('h3', {}, 'Source (read only)'),
        p.code ? highlight(decode64(p.code)) : h('p', { class: 'muted' }, 'source not in the log'),
        h('div', { class: 'actions' }, h('button', { class: 'approve', disabled: !admin(), onclick: () => decide(true) }, 'Approve'), h('button', { class: 'danger', disabled: !admin(), onclick: () => decide(false) }, 'Reject')),
      );
    }),
  );
  const installed = h(
    'table',
    { id: 'cartridges' },
    h('thead', {}, h('tr', {}, ...['name', 'version', 'status', 'origin', 'invocations', ''].map((c) => h('th', {}, c)))),
    h(
      'tbody',
      {},
      ...carts.items.map((c) =>
        h(
          'tr',
          { 'data-cartridge': c.name },
          h('td', {}, txt(c.name)),
          h('td', {}, txt(c.version)),
          h('td', {}, h('span', { class: 'chip status' }, c.status)),
          h('td', {}, txt(c.origin)),
          h('td', {}, String(c.invocationCount)),
          h('td', {}, c.status === 'pending_activation' ? h('button', { class: 'secondary', disabled: !admin(), onclick: () => act(`${c.name} activated`, async () => { await api('POST', `/api/cartridges/${encodeURIComponent(c.name)}/activate`); await pageApprovals(); }) }, 'Activate') : ''),
        ),
      ),
    ),
  );
  const q = h(
    'table',
    {},
    h('thead', {}, h('tr', {}, ...['#', 'type', 'source', 'reason', ''].map((c) => h('th', {}, c)))),
    h(
      'tbody',
      {},
      ...quarantine.items.map((x) =>
        h(
          'tr',
          {},
          h('td', {}, String(x.id)),
          h('td', {}, txt(x.eventType)),
          h('td', {}, txt(x.source)),
          h('td', {}, txt(x.reason)),
          h(
            'td',
            {},
            h('button', { class: 'secondary', disabled: !admin(), onclick: () => act(`quarantined event ${x.id} released`, async () => { await api('POST', `/api/quarantine/${x.id}/release`); await pageApprovals(); }) }, 'Release'),
            ' ',
            h('button', { class: 'danger', disabled: !admin(), onclick: () => act(`quarantined event ${x.id} dropped`, async () => { await api('POST', `/api/quarantine/${x.id}/drop`); await pageApprovals(); }) }, 'Drop'),
          ),
        ),
      ),
    ),
  );
  main.replaceChildren(
    h('h2', {}, 'Approvals'),
    open.length ? h('div', {}, ...cards) : h('p', { class: 'muted', id: 'no-pending' }, 'No cartridge waits for approval.'),
    h('h3', {}, 'Installed cartridges'),
    installed,
    // The count is the daemon's, not the length of the page of them shown (100 at most).
    h('h3', { id: 'quarantine-title' }, `Quarantine (${quarantine.held ?? quarantine.items.length} held${(quarantine.held ?? 0) > quarantine.items.length ? `, the newest ${quarantine.items.length} shown` : ''})`),
    q,
  );
}

// ---------- Mesh ----------
function spark(values, label) {
  const w = 300;
  const ht = 60;
  const top = Math.max(0, ...values);
  const max = Math.max(1, top); // the drawing's scale; the label says the real highest value
  const pts = values.map((v, i) => `${values.length < 2 ? 0 : (i / (values.length - 1)) * w},${ht - (v / max) * (ht - 4) - 2}`).join(' ');
  const svg = document.createElementNS('http://www.w3.org/2000/svg', 'svg');
  svg.setAttribute('viewBox', `0 0 ${w} ${ht}`);
  svg.setAttribute('preserveAspectRatio', 'none');
  const line = document.createElementNS('http://www.w3.org/2000/svg', 'polyline');
  line.setAttribute('points', pts);
  svg.append(line);
  const last = values.length ? values[values.length - 1] : 0;
  if (values.length < 2) return h('div', { class: 'panel chart' }, h('div', {}, h('b', {}, label)), h('p', { class: 'muted' }, 'collecting: one sample every 10 s, the last hour is kept'));
  return h('div', { class: 'panel chart' }, h('div', {}, h('b', {}, label), ` now ${Math.round(last * 10) / 10}, max ${Math.round(top * 10) / 10}`), svg);
}

let auditShown = '';
/** The Mesh page; while open it is drawn again every 5 s (peer states, outboxes, charts). */
async function pageMesh() {
  const [status, peers, series] = await Promise.all([api('GET', '/api/mesh/status'), api('GET', '/api/peers'), api('GET', '/api/dashboard/series')]);
  refreshEvery('mesh', 5000, pageMesh);
  if (current !== 'mesh') return;
  const score = new Map(peers.map((p) => [p.computer, p.trustScore]));
  const s = series.samples;
  const rate = s.slice(1).map((x, i) => Math.max(0, (x.processed - s[i].processed) / ((x.at - s[i].at) / 1000 || 1)));
  const rows = (status.peers ?? []).map((p) =>
    h(
      'tr',
      { 'data-peer': p.computer },
      h('td', {}, txt(p.computer)),
      h('td', {}, h('span', { class: `chip state state-${p.state}` }, p.state)),
      h('td', {}, txt(p.cluster)),
      h('td', {}, p.trustLevel),
      h('td', {}, score.get(p.computer) == null ? '—' : String(Math.round(score.get(p.computer) * 100) / 100)),
      h('td', {}, Array.isArray(p.negotiatedCaps) ? p.negotiatedCaps.join(' ') : p.negotiatedCaps),
      h('td', {}, p.rttMs == null ? '' : `${p.rttMs} ms`),
      h('td', {}, String(p.outbox)),
      h('td', {}, `${p.telemetry?.framesReceived ?? 0} / ${p.sent.frames}`),
      h('td', {}, String(p.sent.resends)),
    ),
  );
  const rejected = Object.entries(status.counters?.rejected ?? {}).map(([k, v]) => `${k} ${v}`).join(', ') || 'none';
  const audit = h('span', { id: 'audit-result', class: 'muted' }, auditShown);
  main.replaceChildren(
    h('h2', {}, status.enabled === false ? 'Mesh (off on this node: set mesh.provider)' : `Mesh — ${status.provider} · ${status.self?.computer} ${status.self?.fingerprint}`),
    h('table', { id: 'peers' }, h('thead', {}, h('tr', {}, ...['peer', 'state', 'cluster', 'trust', 'score', 'caps', 'rtt', 'outbox', 'frames in/out', 'resends'].map((c) => h('th', {}, c)))), h('tbody', {}, ...rows)),
    h('p', { class: 'muted' }, `rejected since start: ${rejected}`),
    h('div', { class: 'charts' }, spark(rate, 'events/s'), spark(s.map((x) => x.rttMs ?? 0), 'mean RTT ms'), spark(s.map((x) => x.outbox ?? 0), 'outbox depth')),
    h('h3', {}, 'Audit chain'),
    h(
      'div',
      { class: 'actions' },
      h('button', { class: 'secondary', id: 'btn-verify', onclick: async () => { const v = await api('GET', '/api/audit/verify'); auditShown = v.ok ? `intact: ${v.entries} entries, head ${v.headHash.slice(0, 16)}…` : `BROKEN at ${v.firstBadSeq}: ${v.message}`; audit.textContent = auditShown; } }, 'Verify'),
      h('button', { class: 'secondary', onclick: async () => { const r = await fetch('/api/audit/export', { credentials: 'same-origin' }); const url = URL.createObjectURL(new Blob([await r.text()], { type: 'application/x-ndjson' })); h('a', { href: url, download: `weft-audit-${session.computer}.ndjson` }).click(); } }, 'Export'),
      audit,
    ),
  );
}

// ---------- Privacy ----------
async function pagePrivacy() {
  const preview = await api('GET', '/api/privacy/summaries/preview?period=day');
  const s = preview.summary;
  const max = Math.max(1, ...s.hourly_activity);
  const mine = h(
    'div',
    { class: 'panel' },
    h('h3', {}, `My day (${s.total_commands} commands, ${s.unique_patterns} command shapes)`),
    h('table', {}, h('thead', {}, h('tr', {}, ...['category', 'commands', 'avg ms', 'failure rate'].map((c) => h('th', {}, c)))), h('tbody', {}, ...s.category_stats.map((c) => h('tr', {}, h('td', {}, c.category), h('td', {}, String(c.count)), h('td', {}, String(c.avg_duration_ms)), h('td', {}, `${Math.round(c.failure_rate * 1000) / 10}%`))))),
    h('h3', {}, 'Hours (UTC)'),
    h(
      'div',
      { class: 'bars' },
      ...s.hourly_activity.map((n, i) => {
        // Through the CSSOM: the page's policy allows no inline style attributes.
        const bar = h('div', { title: `${i}:00 — ${n}` });
        bar.style.height = `${Math.round((n / max) * 100)}%`;
        return bar;
      }),
    ),
    h('h3', {}, 'Risk'),
    h('p', {}, Object.entries(s.safety_stats.by_risk).map(([k, v]) => `${k} ${v}`).join(' · ')),
  );
  const shares = h('div', { class: 'panel' }, h('h3', {}, 'What this node shares'), h('p', {}, preview.note), preview.withheld.length ? h('p', { class: 'muted' }, `withheld categories: ${preview.withheld.join(', ')}`) : null, h('p', { class: 'muted' }, `signed by ${preview.signer}`));
  const team = h('div', { class: 'panel', id: 'team' }, h('h3', {}, 'Team and security views'));
  main.replaceChildren(h('h2', {}, 'Privacy'), h('div', { class: 'split' }, mine, h('div', {}, shares, team)));
  if (!admin()) {
    team.append(h('p', { class: 'muted' }, 'Aggregate queries over the mesh are for admin logins.'));
    return;
  }
  for (const type of ['tool-usage', 'safety-posture']) {
    const r = await api('POST', '/api/privacy/query', { type, range: '7d' }).catch((e) => ({ error: e.message }));
    if (r.error) {
      team.append(h('p', { class: 'muted' }, `${type}: ${r.error}`));
      continue;
    }
    team.append(h('h3', {}, `${type}, 7 days: ${r.answered} of ${r.asked} nodes (coverage ${r.coverage}%)`));
    if (r.data === null) team.append(h('p', { class: 'muted' }, `suppressed: ${r.with_data ?? r.contributors.length} of the nodes that answered had counts, fewer than min_contributors ${r.min_contributors}`));
    else if (type === 'tool-usage') team.append(h('table', {}, h('tbody', {}, ...Object.entries(r.data.by_category).map(([c, a]) => h('tr', {}, h('td', {}, c), h('td', {}, `${a.count} commands on ${a.node_count} nodes`))))));
    else team.append(h('p', {}, Object.entries(r.data.risk_distribution).map(([k, v]) => `${k} ${v}%`).join(' · ')));
    if (r.suppressed.length) team.append(h('p', { class: 'muted' }, `suppressed: ${r.suppressed.join('; ')}`));
    if (r.missing.length) team.append(h('p', { class: 'muted' }, `missing: ${r.missing.map((m) => m.computer).join(', ')}`));
    if (r.failed?.length) team.append(h('p', { class: 'muted' }, `failed: ${r.failed.map((f) => `${f.computer} (${f.status}: ${f.reason})`).join('; ')}`));
  }
}

// ---------- Events ----------
const events = { type: '', text: '', cursor: null };

async function pageEvents() {
  const q = new URLSearchParams({ limit: '100' });
  if (events.type) q.set('type', events.type);
  const page = await api('GET', `/api/events?${q}`);
  const items = page.items.filter((e) => !events.text || JSON.stringify(e.envelope).toLowerCase().includes(events.text.toLowerCase()));
  const tree = h('div', { class: 'panel', id: 'trace' }, h('p', { class: 'muted' }, 'Select an event to see its causation tree.'));
  const rows = items.map((e) =>
    h(
      'tr',
      { onclick: () => showTrace(e.envelope.id, tree) },
      h('td', {}, String(e.seq)),
      h('td', {}, e.envelope.event),
      h('td', {}, h('span', { class: `chip lvl${e.envelope.level}` }, LEVELS[e.envelope.level] ?? e.envelope.level)),
      h('td', {}, txt(e.envelope.source)),
      h('td', { class: 'muted' }, when(e.envelope.timestamp)),
    ),
  );
  main.replaceChildren(
    h('h2', {}, 'Events'),
    h(
      'div',
      { class: 'filters' },
      h('label', {}, 'type ', h('input', { value: events.type, placeholder: 'a whole type: mesh.test.ping', onchange: (e) => { events.type = e.target.value.trim(); void pageEvents(); } })),
      h('label', {}, 'search ', h('input', { id: 'f-search', value: events.text, placeholder: 'text in the event', onchange: (e) => { events.text = e.target.value; void pageEvents(); } })),
    ),
    h(
      'div',
      { class: 'split' },
      h(
        'div',
        {},
        h('table', { id: 'events' }, h('thead', {}, h('tr', {}, ...['seq', 'type', 'level', 'source', 'time'].map((c) => h('th', {}, c)))), h('tbody', {}, ...rows)),
        items.length === 0
          ? h('p', { class: 'muted', id: 'events-empty' }, events.type ? `No event of type ${events.type} in the log (the type is matched whole: system.worker.crashed, not system.worker).` : events.text ? 'No event among the latest 100 has that text.' : 'The log is empty.')
          : events.text
            ? h('p', { class: 'muted' }, `search looks in the latest 100 events${events.type ? ' of that type' : ''}`)
            : null,
      ),
      tree,
    ),
  );
}

async function showTrace(id, panel) {
  const t = await api('GET', `/api/events/${encodeURIComponent(id)}/trace`);
  const node = (n) => h('li', {}, h('b', {}, txt(n.event)), ' ', txt(n.source), ` · ${when(n.timestamp)}`, n.children?.length ? h('ul', { class: 'tree' }, ...n.children.map(node)) : null);
  panel.replaceChildren(
    ...[
      h('h3', {}, 'Causation tree'),
      t.ancestors.length ? h('p', { class: 'muted' }, `caused by: ${t.ancestors.map((a) => plain(a.event)).join(' → ')}`) : null,
      h('ul', { class: 'tree' }, node(t.root)),
    ].filter(Boolean),
  );
}

// ---------- Shell ----------
const PAGES = { inbox: pageInbox, approvals: pageApprovals, mesh: pageMesh, privacy: pagePrivacy, events: pageEvents };

async function route() {
  const name = (location.hash.replace(/^#\//, '') || 'inbox').split('?')[0];
  // Its own pages only: '#/constructor' or '#/toString' named Object's, which drew nothing (Loading… for ever).
  current = Object.hasOwn(PAGES, name) ? name : 'inbox';
  keys = () => undefined;
  clearTimeout(pageTimer);
  for (const a of document.querySelectorAll('nav a')) a.classList.toggle('active', a.dataset.page === current);
  try {
    await PAGES[current]();
    document.body.dataset.page = current;
  } catch (err) {
    main.replaceChildren(h('p', {}, `Could not load ${current}: ${err.message}`));
  }
}

/** Live changes not drawn yet, by notification id (the latest of each, in arrival order). */
const liveQueue = new Map();
/** More than this many waiting (a tab in the background under a flood): the list is loaded again instead. */
const LIVE_QUEUE_MAX = 2000;
let liveOverflow = false;
let liveCreated = { count: 0, type: '' };
let liveTimer;

/**
 * A notification changed (live). Changes are drawn together, at most every 100 ms: a thousand
 * a second redrawn one by one (500 rows each) kept the page busy for seconds behind them.
 */
function queueLive(n, created) {
  liveQueue.delete(n.id);
  liveQueue.set(n.id, n);
  if (liveQueue.size > LIVE_QUEUE_MAX) {
    liveQueue.clear();
    liveOverflow = true;
  }
  if (created) liveCreated = { count: liveCreated.count + 1, type: n.eventType };
  liveTimer ??= setTimeout(flushLive, 100);
}

function flushLive() {
  liveTimer = undefined;
  const batch = [...liveQueue.values()];
  const overflow = liveOverflow;
  const created = liveCreated;
  liveQueue.clear();
  liveOverflow = false;
  liveCreated = { count: 0, type: '' };
  if (created.count === 1) toast(`new: ${created.type}`);
  else if (created.count > 1) toast(`${created.count} new notifications`);
  if (current === 'inbox') {
    if (overflow) void refreshInbox().catch(() => undefined);
    else liveNotifications(batch);
  } else if (current === 'approvals' && batch.some((n) => /^cartridge\./.test(n.eventType))) void pageApprovals();
}

/** Live changes: the list follows; the detail panel only if it shows one of them. */
function liveNotifications(batch) {
  const at = new Map(inbox.items.map((x, i) => [x.id, i]));
  const fresh = [];
  let changed = false;
  let mineChanged = false;
  for (const n of batch) {
    const i = at.get(n.id);
    if (i !== undefined) {
      // What the list already shows (loaded after an action, or newer) is not drawn again: a
      // redraw under the pointer swallows the click that was landing on it.
      const was = inbox.items[i];
      if (was.updatedAt > n.updatedAt || JSON.stringify(was) === JSON.stringify(n)) continue;
      inbox.items[i] = n;
      changed = true;
      if (n.id === inbox.selId) mineChanged = true;
    } else if (matchesFilter(n)) {
      fresh.push(n);
      changed = true;
    }
  }
  if (!changed) return;
  // Bounded: a page left open for days shows the newest 500, not every notification since.
  const items = [...fresh.reverse(), ...inbox.items].filter(matchesFilter);
  const keep = Math.max(500, inbox.shown);
  if (items.length > keep) inbox.more = true;
  inbox.items = items.slice(0, keep);
  const mine = batch.find((n) => n.id === inbox.selId);
  if (mine && (mineChanged || !selected())) {
    if (!selected()) {
      // Resolved (or changed) elsewhere so it left this view: say so rather than show another one in its place.
      toast(`notification ${mine.id} left this view: ${mine.agentStatus}${mine.agentId ? ` by ${mine.agentId}` : ''}`);
      inbox.selId = null;
      inbox.envelope = null;
    }
    renderDetail();
  }
  renderList();
}

let reconnectMs = 1000;
/** Live updates over the WebSocket; after a gap the current page is loaded again (what changed meanwhile). */
function live(gap = false) {
  if (loggedOut) return;
  const ws = new WebSocket(`ws://${location.host}/ws`);
  socket = ws;
  ws.onopen = () => ws.send(JSON.stringify({ type: 'subscribe', filter: {} }));
  ws.onmessage = (m) => {
    if (loggedOut) return;
    const msg = JSON.parse(m.data);
    // Live once the daemon confirms the subscription: it opens a connection it then refuses
    // (too many subscribers), and that must not clear the line or reload the page each time.
    if (msg.type === 'subscribed') {
      document.body.dataset.live = 'yes';
      reconnectMs = 1000;
      banner(null);
      if (gap) void catchUp();
    }
    if (msg.type !== 'notification') return;
    queueLive(msg.notification, msg.change.kind === 'created');
  };
  ws.onclose = async (ev) => {
    document.body.dataset.live = 'no';
    if (loggedOut) return;
    // Why: a session that ended (401) is final; a daemon that does not answer is retried, and so
    // is one that answers but closed or refused the connection (too many subscribers, a slow
    // page): its reason is shown, not "does not answer".
    const answer = await fetch('/api/session', { credentials: 'same-origin' }).then((r) => r.status, () => 0);
    if (answer === 401) return endSession();
    if (answer === 200) banner(`Live updates are paused: the daemon closed this page's connection${ev.reason ? ` (${plain(ev.reason)})` : ` (code ${ev.code})`}, so this page may be out of date. Trying again every few seconds…`);
    else banner(`The daemon does not answer${answer ? ` (HTTP ${answer})` : ''}: live updates are paused and this page may be out of date. Trying again every few seconds…`);
    setTimeout(() => live(true), reconnectMs);
    reconnectMs = Math.min(reconnectMs * 2, 10_000);
  };
}

/** After live updates were paused: the inbox reloads its list (what is typed stays), another page reloads. */
async function catchUp() {
  if (current === 'inbox') await refreshInbox().catch(() => undefined);
  else await route();
}

document.addEventListener('keydown', (e) => {
  if (e.target instanceof HTMLInputElement || e.target instanceof HTMLTextAreaElement || e.target instanceof HTMLSelectElement) return;
  if (e.ctrlKey || e.metaKey || e.altKey) return;
  const page = { 1: 'inbox', 2: 'approvals', 3: 'mesh', 4: 'privacy', 5: 'events' }[e.key];
  // The open page's own key loads it again.
  if (page === current) void route();
  else if (page) location.hash = `#/${page}`;
  else keys(e);
});

async function boot() {
  try {
    session = await api('GET', '/api/session');
  } catch (err) {
    main.replaceChildren(h('h2', {}, 'Not logged in'), h('p', {}, 'Open the dashboard with '), h('pre', {}, 'weft dashboard'), h('p', { class: 'muted' }, `(${err.message}) The command prints a one-time login link and opens it; the API token never reaches the browser.`));
    return;
  }
  document.getElementById('who').textContent = `${session.computer} · ${session.role === 'admin' ? 'admin' : 'read-only'}`;
  // The login ends at its expiry even while nothing asks the daemon: the live connection, opened
  // before, would otherwise keep the page changing. Looked at every 30 s (a timer set for 12 h
  // would not count the time a laptop sleeps).
  const ends = Date.parse(session.expiresAt ?? '');
  if (Number.isFinite(ends)) {
    const check = setInterval(() => {
      if (loggedOut) clearInterval(check);
      else if (Date.now() >= ends) endSession('this login expired (a login lasts 12 hours)');
    }, 30_000);
  }
  // Any login may log out (a read-only one too: the daemon lets it end itself).
  const out = document.getElementById('logout');
  out.hidden = session.via !== 'session';
  out.onclick = () => void logout();
  window.addEventListener('hashchange', route);
  await route();
  live();
}

void boot();
