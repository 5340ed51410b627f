// Aoba reference browser client. Plain ES modules, no build step.
// Routes live in the location hash:
//   #/                    conversation list (and a welcome pane)
//   #/people              user search
//   #/user/<username>     a user's page: message, block or unblock
//   #/chat/d/<username>   1:1 conversation
//   #/chat/g/<groupId>    group conversation
//   #/group/<groupId>     group members and administration
//   #/groups/new          create a group
//   #/invitations         pending invitations
//   #/profile             account settings

import { api, ApiError, onUnauthorized } from './rest.js';
import { AobaClient } from './sdk/aoba.js';
import { h, $, announce, relativeTime, clockTime, showFormError, confirmDialog } from './dom.js';

const MAX_CONTENT = 10240;
const PAGE = 50;
const CONV_PAGE = 30;
const SIGNED_IN_HINT = 'aoba.signedIn';
const TYPING_PAUSE_AFTER = 3000;
const TYPING_SHOWN_FOR = 6000;

const state = {
  me: null,
  convs: new Map(), // key ("d:<peer id>" or "g:<group id>") -> conversation
  convPage: { before: '', more: false, olderLoaded: false }, // paging of GET /api/conversations
  groups: new Map(), // group id -> Group
  invitations: new Map(), // id -> Invitation (pending only)
  invitationEpoch: 0, // bumped by every invitation event
  blocks: new Map(), // user id -> User the signed-in user blocks
  blockEpoch: 0, // bumped by every block event
  presence: new Map(), // lower-case username -> {status, lastSeen, userId, username}
  watched: new Set(), // lower-case usernames subscribed on the socket
  view: null, // live handles of the current main view
  routeKey: '',
  renderSeq: 0, // bumped by every renderRoute: an older render that answers late is dropped
};

let socket = null; // the AobaClient of the session (clients/js, served at /sdk/aoba.js)
let presenceTicker = null;

// ---------------------------------------------------------------- helpers

const lower = (s) => String(s || '').toLowerCase();
const charCount = (s) => [...s].length;
const errText = (err) => (err && err.message) || 'Something went wrong.';

function newestId(conv) {
  let best = '';
  for (const id of conv.messages.keys()) if (id > best) best = id;
  return best;
}

function oldestId(conv) {
  let best = '';
  for (const id of conv.messages.keys()) if (!best || id < best) best = id;
  return best;
}

/** lastMessage returns the newest message known of conv: held, or the list's last_message. */
function lastMessage(conv) {
  let best = conv.lastMsg;
  for (const m of conv.messages.values()) if (!best || m.id >= best.id) best = m;
  return best;
}

/** countOthers counts the held messages of conv from others with lo < id <= hi (no upper bound for ''). */
function countOthers(conv, lo, hi) {
  let n = 0;
  for (const m of conv.messages.values()) if (m.id > lo && (!hi || m.id <= hi) && m.from_id !== state.me.id) n += 1;
  return n;
}

/**
 * unreadCount is the server's unread count of conv (the snapshot srv of
 * the latest list page or read acknowledgement), corrected by what came
 * since: messages from others newer than the snapshot are added, and a
 * marker moved further (a receipt of another device) takes back what it
 * covers.
 */
function unreadCount(conv) {
  const r = conv.readUpTo;
  const s = conv.srv;
  let n = 0;
  let floor = r;
  if (s) {
    if (r <= s.readUpTo) n = s.unread;
    else if (r < s.lastId) n = Math.min(s.unread, countOthers(conv, r, s.lastId));
    if (s.lastId > floor) floor = s.lastId;
  }
  return n + countOthers(conv, floor, '');
}

function supersedes(b, a) {
  if (a.deleted) return false;
  if (b.deleted) return true;
  return Date.parse(b.edited_at || 0) > Date.parse(a.edited_at || 0);
}

/**
 * mergeMessage returns the version of one message to keep of a (held, may
 * be null) and b (new): a deletion is final, then the latest edit wins; a
 * `read` status is kept.
 */
function mergeMessage(a, b) {
  if (!a) return b;
  const keep = supersedes(b, a) ? b : a;
  const read = a.status === 'read' || b.status === 'read';
  return read && keep.status !== 'read' ? { ...keep, status: 'read' } : keep;
}

function userHref(username) {
  return `#/user/${encodeURIComponent(username)}`;
}

function convHref(conv) {
  return conv.kind === 'chat' ? `#/chat/d/${encodeURIComponent(conv.name)}` : `#/chat/g/${encodeURIComponent(conv.target)}`;
}

/**
 * newConv makes a conversation: id is its id on the server (the peer's id
 * or the group id); srv the latest server snapshot {unread, lastId,
 * readUpTo}; readUpTo the user's read marker as far as known; lastMsg the
 * list's last message; peerReadUpTo the peer's marker (1:1); wantRead,
 * sentRead and marking the marker this device moves (see sendRead).
 */
function newConv(key, kind, id, target, name, extra = {}) {
  return {
    key, kind, id, target, name, messages: new Map(), loaded: false, hasMore: true, loadingOlder: false, typing: null,
    srv: null, readUpTo: '', lastMsg: null, peerReadUpTo: '', updatedAt: '',
    wantRead: '', sentRead: '', marking: false, ...extra,
  };
}

function directConv(peerId, peerName) {
  const key = `d:${peerId}`;
  let conv = state.convs.get(key);
  if (!conv) {
    conv = newConv(key, 'chat', peerId, peerName, peerName, { peerId });
    state.convs.set(key, conv);
    watch([peerName]);
  } else if (peerName && conv.name !== peerName) {
    conv.name = peerName;
    conv.target = peerName;
    watch([peerName]);
  }
  return conv;
}

function groupConv(groupId) {
  const key = `g:${groupId}`;
  let conv = state.convs.get(key);
  const g = state.groups.get(groupId);
  if (!conv) {
    conv = newConv(key, 'groupchat', groupId, groupId, g ? g.name : 'Group', { createdAt: g && g.created_at });
    state.convs.set(key, conv);
  } else if (g) {
    conv.name = g.name;
  }
  return conv;
}

function convOfMessage(m) {
  if (m.type === 'groupchat') return groupConv(m.to);
  const mine = m.from_id === state.me.id;
  return directConv(mine ? m.to_id : m.from_id, mine ? m.to : m.from);
}

/** heldConvOfMessage returns the conversation of m if one is held, without making one. */
function heldConvOfMessage(m) {
  if (m.type === 'groupchat') return state.convs.get(`g:${m.to}`);
  return state.convs.get(`d:${m.from_id === state.me.id ? m.to_id : m.from_id}`);
}

/** roleOf returns the signed-in user's role in group (members: its member list). */
function roleOf(group, members) {
  const me = lower(state.me.username);
  if (lower(group.owner_username) === me) return 'owner';
  const mine = (members || []).find((m) => lower(m.username) === me);
  return mine ? mine.role : 'member';
}

/** canModerate says whether the user may delete others' messages in conv (a group's owner or admin). */
function canModerate(conv) {
  const g = conv.kind === 'groupchat' && state.groups.get(conv.target);
  if (!g) return false;
  const role = roleOf(g, g.members);
  return role === 'owner' || role === 'admin';
}

/**
 * latestOnly wraps load (returning a promise) so that, of overlapping
 * calls, only the last one started applies its answer: an older call that
 * answers later is dropped and its caller waits for the newer one. With
 * epoch, an answer is also dropped (and the call made again) when a live
 * event changed the state while it was under way. A slow, stale answer
 * never overwrites newer state.
 */
function latestOnly(load, apply, epoch = () => 0) {
  let seq = 0;
  let last = null;
  const run = () => {
    const mine = ++seq;
    const e = epoch();
    const me = state.me;
    const p = load().then((res) => {
      if (state.me !== me) return undefined; // signed out meanwhile
      if (mine !== seq) return last;
      if (epoch() !== e) return run();
      return apply(res);
    });
    last = p;
    return p;
  };
  return run;
}

function findDirectByName(username) {
  for (const c of state.convs.values()) if (c.kind === 'chat' && lower(c.name) === lower(username)) return c;
  return null;
}

// --------------------------------------------------------------- presence

function presenceText(username) {
  const p = state.presence.get(lower(username));
  if (!p) return 'status unknown';
  if (p.status === 'online') return 'online';
  return p.lastSeen ? `last seen ${relativeTime(p.lastSeen)}` : 'offline, never seen';
}

function presenceEl(username, withText = false) {
  const p = state.presence.get(lower(username));
  return h('span', { class: 'presence', dataset: { presence: lower(username), status: p ? p.status : 'unknown' } },
    h('span', { class: 'dot', 'aria-hidden': 'true' }),
    h('span', { class: withText ? 'ptext' : 'ptext visually-hidden' }, presenceText(username)));
}

function paintPresence(lowerName) {
  const p = state.presence.get(lowerName);
  for (const el of document.querySelectorAll(`.presence[data-presence="${CSS.escape(lowerName)}"]`)) {
    el.dataset.status = p ? p.status : 'unknown';
    const t = el.querySelector('.ptext');
    if (t) t.textContent = presenceText(lowerName);
  }
}

function watch(usernames) {
  const fresh = [];
  for (const u of usernames) {
    const l = lower(u);
    if (!l || l === lower(state.me && state.me.username) || state.watched.has(l)) continue;
    state.watched.add(l);
    fresh.push(u);
  }
  // The client renews its subscriptions on every reconnection.
  if (fresh.length && socket) socket.subscribePresence(fresh);
}

function onPresence(d) {
  if (!d || !d.username) return;
  const l = lower(d.username);
  const prev = state.presence.get(l);
  state.presence.set(l, { status: d.status, lastSeen: d.lastSeen, userId: d.userId, username: d.username });
  paintPresence(l);
  if (prev && prev.status !== d.status) announce(`${d.username} is now ${d.status}`);
}

// --------------------------------------------------------------- messages

/**
 * addMessages merges messages (any order) into their conversations, once
 * each by id; a later version of a held message (edited, deleted, read)
 * replaces it.
 */
function addMessages(msgs, { live = false } = {}) {
  const touched = new Set();
  for (const m of msgs) {
    if (!m || !m.id) continue;
    const conv = convOfMessage(m);
    const held = conv.messages.get(m.id);
    if (held) {
      if (updateMessage(conv, m)) touched.add(conv);
      continue;
    }
    conv.messages.set(m.id, m);
    touched.add(conv);
    noteMessage(conv, m);
    if (state.view && state.view.conv === conv) insertMessageEl(conv, m);
    if (live && m.from_id !== state.me.id) {
      if (conv.typing && lower(conv.typing.who) === lower(m.from)) clearTyping(conv);
      const where = conv.kind === 'groupchat' ? ` in ${conv.name}` : '';
      if (!(state.view && state.view.conv === conv)) announce(`New message from ${m.from}${where}`);
      // A conversation the list has not shown yet: the server knows its count.
      if (!conv.srv) scheduleConvReload();
    }
  }
  if (touched.size) {
    const open = state.view && state.view.conv;
    if (open && touched.has(open)) {
      markReadIfVisible(open);
      paintSeen(open);
    }
    renderConvList();
  }
}

/** noteMessage updates the read markers that a message implies. */
function noteMessage(conv, m) {
  if (m.from_id !== state.me.id) return;
  // Sending moves the sender's own marker (on the server too).
  if (m.id > conv.readUpTo) conv.readUpTo = m.id;
  if (m.type === 'chat' && m.status === 'read' && m.id > conv.peerReadUpTo) conv.peerReadUpTo = m.id;
}

/**
 * updateMessage applies a new version of a message held in conv (or shown
 * as its last message) and repaints it; it returns whether anything changed.
 */
function updateMessage(conv, m) {
  let changed = false;
  const held = conv.messages.get(m.id);
  if (held) {
    const next = mergeMessage(held, m);
    if (next !== held) {
      conv.messages.set(m.id, next);
      noteMessage(conv, next);
      if (state.view && state.view.conv === conv) replaceMessageEl(conv, next);
      changed = true;
    }
  }
  if (conv.lastMsg && conv.lastMsg.id === m.id) {
    const next = mergeMessage(conv.lastMsg, m);
    changed = changed || next !== conv.lastMsg;
    conv.lastMsg = next;
  }
  return changed;
}

/**
 * onMessageChanged applies a `message.updated` or `message.deleted` event.
 * A message not held is left alone: its history, when loaded, carries the
 * current version.
 */
function onMessageChanged(m) {
  if (!m || !m.id) return;
  const conv = heldConvOfMessage(m);
  if (!conv || !updateMessage(conv, m)) return;
  if (state.view && state.view.conv === conv) paintSeen(conv);
  renderConvList();
}

/**
 * mergeServerConv takes in a Conversation of the server (a list page or a
 * read acknowledgement). Its snapshot replaces the held one only when it is
 * as new in both respects (last message and marker): an answer that left
 * the server before a newer one never overwrites it; what it lacks comes
 * from live messages and receipts (see unreadCount).
 */
function mergeServerConv(c) {
  if (!c) return;
  let conv;
  if (c.type === 'groupchat') {
    // A group left since the request started stays gone.
    if (!c.group || !state.groups.has(c.group.group_id)) return;
    conv = groupConv(c.group.group_id);
  } else {
    if (!c.peer) return;
    conv = directConv(c.peer.id, c.peer.username);
  }
  const snap = { unread: c.unread || 0, lastId: (c.last_message && c.last_message.id) || '', readUpTo: c.read_up_to || '' };
  const cur = conv.srv;
  if (!cur || (snap.lastId >= cur.lastId && snap.readUpTo >= cur.readUpTo)) conv.srv = snap;
  if (snap.readUpTo > conv.readUpTo) conv.readUpTo = snap.readUpTo;
  if (c.updated_at && c.updated_at > conv.updatedAt) conv.updatedAt = c.updated_at;
  const last = c.last_message;
  if (last) {
    if (!conv.lastMsg || last.id > conv.lastMsg.id) conv.lastMsg = last;
    else if (last.id === conv.lastMsg.id) conv.lastMsg = mergeMessage(conv.lastMsg, last);
    if (conv.messages.has(last.id)) updateMessage(conv, last);
    noteMessage(conv, last);
  }
}

/**
 * loadConversations reads a page of GET /api/conversations: the first, or
 * with older the one after the oldest page read. The paging cursor only
 * moves back in time, so a reload of the first page keeps the older pages.
 */
async function loadConversations(older = false) {
  const page = state.convPage;
  if (older && !page.before) return;
  const me = state.me;
  const res = await api.conversations({ limit: CONV_PAGE, before: older ? page.before : undefined });
  if (state.me !== me || state.convPage !== page) return; // signed out meanwhile
  const list = (res && res.conversations) || [];
  for (const c of list) mergeServerConv(c);
  // The cursor is the last conversation's last message id, or its own id
  // when it has no message yet (a group nobody has written in).
  const tail = list[list.length - 1];
  const last = tail ? (tail.last_message ? tail.last_message.id : tail.id) : '';
  if (older || !page.olderLoaded) {
    if (last) page.before = last;
    page.more = Boolean(res && res.more && last);
  }
  if (older) page.olderLoaded = true;
  renderConvList();
}

let convReloadTimer = null;

/** scheduleConvReload reloads the first page of conversations soon, once for a burst of calls. */
function scheduleConvReload() {
  if (convReloadTimer) return;
  convReloadTimer = setTimeout(() => {
    convReloadTimer = null;
    if (state.me) loadConversations().catch(() => {});
  }, 300);
}

/**
 * markReadIfVisible moves the user's read marker to the newest message of
 * conv while it is open in a visible tab; the server tells the user's
 * other devices (a receipt), which clear their badge.
 */
function markReadIfVisible(conv) {
  if (document.visibilityState !== 'visible' || !(state.view && state.view.conv === conv) || !conv.loaded) return;
  const last = lastMessage(conv);
  if (!last || last.id <= conv.readUpTo) return;
  conv.readUpTo = last.id;
  conv.wantRead = last.id;
  renderConvList();
  sendRead(conv);
}

/**
 * sendRead sends the marker conv.wantRead (a `read` frame, or PUT over
 * REST while the socket is down): one at a time per conversation, the
 * newest once the one under way is answered.
 */
function sendRead(conv) {
  const upTo = conv.wantRead;
  if (!socket || conv.marking || !upTo || upTo <= conv.sentRead) return;
  conv.marking = true;
  conv.sentRead = upTo;
  const me = state.me;
  socket.markRead(conv.id, upTo).then((c) => {
    if (state.me !== me) return;
    mergeServerConv(c);
    renderConvList();
  }, () => {
    if (state.me === me) scheduleConvReload();
  }).finally(() => {
    conv.marking = false;
    if (state.me === me) sendRead(conv);
  });
}

/**
 * onReceipt applies a `receipt` event: the user's own marker moved on
 * another device (the badge follows), or the peer of a 1:1 conversation
 * read up to a message ("Seen").
 */
function onReceipt(d) {
  if (!d || !d.conversation || !d.read_up_to) return;
  const conv = state.convs.get(`d:${d.conversation}`) || state.convs.get(`g:${d.conversation}`);
  if (d.user_id === state.me.id) {
    if (!conv) {
      scheduleConvReload();
      return;
    }
    if (d.read_up_to <= conv.readUpTo) return;
    conv.readUpTo = d.read_up_to;
    // Read part of the way on a conversation not held in full: ask for the count.
    if (conv.srv && d.read_up_to < conv.srv.lastId && !conv.loaded) scheduleConvReload();
    renderConvList();
    return;
  }
  if (conv && conv.kind === 'chat' && d.read_up_to > conv.peerReadUpTo) {
    conv.peerReadUpTo = d.read_up_to;
    paintSeen(conv);
  }
}

async function loadHistoryPage(conv, params) {
  const res = await api.messages({ with: conv.target, limit: PAGE, ...params });
  const msgs = (res && res.messages) || [];
  addMessages(msgs);
  return msgs;
}

/** catchUpConv fetches, oldest first, everything newer than the newest message held. */
async function catchUpConv(conv) {
  for (let i = 0; i < 20; i += 1) {
    const after = newestId(conv);
    if (!after) return;
    const res = await api.messages({ with: conv.target, after, limit: 100 });
    const msgs = (res && res.messages) || [];
    addMessages(msgs, { live: true });
    if (msgs.length < 100) return;
  }
}

/** catchUpAll brings the list and the loaded conversations up to date (the first socket opened after the load). */
async function catchUpAll() {
  await loadConversations().catch(() => {});
  const tasks = [];
  for (const conv of state.convs.values()) if (conv.loaded) tasks.push(catchUpConv(conv).catch(() => {}));
  await Promise.all(tasks);
}

// ----------------------------------------------------------------- typing

function onTyping(d) {
  if (!d || lower(d.from) === lower(state.me.username)) return;
  const conv = d.type === 'groupchat' ? state.convs.get(`g:${d.to}`) : findDirectByName(d.from);
  if (!conv) return;
  if (d.state === 'composing') {
    clearTimeout(conv.typingTimer);
    conv.typing = { who: d.from };
    conv.typingTimer = setTimeout(() => clearTyping(conv), TYPING_SHOWN_FOR);
  } else {
    clearTyping(conv, true);
    return;
  }
  paintTyping(conv);
}

function clearTyping(conv, paint = true) {
  clearTimeout(conv.typingTimer);
  conv.typing = null;
  if (paint) paintTyping(conv);
}

function paintTyping(conv) {
  if (state.view && state.view.conv === conv && state.view.typingEl) {
    state.view.typingEl.textContent = conv.typing ? `${conv.typing.who} is typing…` : '';
  }
  renderConvList();
}

// ------------------------------------------------------------ data loading

/** refreshGroups reloads the user's groups; conversations of groups left go, new groups get their counts. */
const refreshGroups = latestOnly(() => api.groups(), (res) => {
  if (!state.me) return;
  const groups = (res && res.groups) || [];
  const ids = new Set(groups.map((g) => g.group_id));
  let joined = false;
  for (const g of groups) if (!state.groups.has(g.group_id)) joined = true;
  state.groups.clear();
  for (const g of groups) {
    state.groups.set(g.group_id, g);
    groupConv(g.group_id);
  }
  for (const [key, conv] of [...state.convs]) {
    if (conv.kind === 'groupchat' && !ids.has(conv.target)) {
      state.convs.delete(key);
      if (state.view && (state.view.conv === conv || state.view.groupId === conv.target)) {
        announce(`You are no longer in ${conv.name}`);
        location.hash = '#/';
      }
    }
  }
  if (joined && state.loaded) scheduleConvReload();
  renderConvList();
});

const refreshInvitations = latestOnly(() => api.invitations(), (res) => {
  if (!state.me) return;
  state.invitations.clear();
  for (const inv of (res && res.invitations) || []) state.invitations.set(inv.id, inv);
  paintInvitationCount();
  if (state.view && state.view.name === 'invitations') renderRoute(true);
}, () => state.invitationEpoch);

/** refreshBlocks reloads the users the user blocks. */
const refreshBlocks = latestOnly(() => api.blocks(), (res) => {
  if (!state.me) return;
  state.blocks = new Map(((res && res.blocks) || []).map((u) => [u.id, u]));
  paintBlocks();
}, () => state.blockEpoch);

function paintInvitationCount() {
  const el = $('#invitation-count');
  const n = state.invitations.size;
  el.textContent = n ? String(n) : '';
  el.hidden = !n;
  el.setAttribute('aria-label', `${n} pending`);
}

async function initialLoad() {
  await Promise.all([
    refreshGroups().catch(() => {}),
    refreshInvitations().catch(() => {}),
    refreshBlocks().catch(() => {}),
  ]);
  // After the groups: the list names only groups the user is in.
  await loadConversations().catch(() => {});
  state.loaded = true;
}

// ---------------------------------------------------------- socket frames

function onInvitation(inv) {
  if (!inv || !inv.id) return;
  state.invitationEpoch += 1;
  if (inv.status && inv.status !== 'pending') {
    state.invitations.delete(inv.id);
  } else {
    const isNew = !state.invitations.has(inv.id);
    state.invitations.set(inv.id, inv);
    if (isNew) announce(`${inv.inviter_username} invited you to ${inv.group_name}`);
  }
  paintInvitationCount();
  if (state.view && state.view.name === 'invitations') renderRoute(true);
}

async function onGroupEvent(ev) {
  await refreshGroups().catch(() => {});
  const v = state.view;
  if (!ev || !v) return;
  if (v.groupId === ev.group_id && state.groups.has(ev.group_id)) renderRoute(true);
  // A role change shows or hides the delete buttons on others' messages.
  else if (v.conv && v.conv.target === ev.group_id) repaintMessages(v.conv);
}

/** onBlock applies a `block` event: the user blocked or unblocked someone (on this device or another). */
function onBlock(d) {
  if (!d || !d.user_id) return;
  state.blockEpoch += 1;
  if (d.event === 'blocked') state.blocks.set(d.user_id, { id: d.user_id, username: d.username });
  else if (d.event === 'unblocked') state.blocks.delete(d.user_id);
  paintBlocks();
}

/** paintBlocks shows the block state in the open view. */
function paintBlocks() {
  if (state.view && state.view.paintBlocks) state.view.paintBlocks();
}

function paintConnState(s) {
  if (state.me) {
    // The signed-in user is online exactly while this socket is.
    const l = lower(state.me.username);
    state.presence.set(l, { status: s === 'online' ? 'online' : 'offline', lastSeen: null, username: state.me.username });
    paintPresence(l);
  }
  const el = $('#conn-state');
  el.dataset.state = s;
  el.textContent = { connecting: 'Connecting…', online: 'Online', offline: 'Offline, reconnecting…' }[s] || s;
}

/**
 * startSocket starts the session's AobaClient (cookie mode, same origin): it
 * reconnects with backoff, catches up through GET /api/sync after every
 * reconnection and delivers each message and event once, live or caught up.
 */
function startSocket() {
  const client = new AobaClient({ restFallbackAfter: 1000 });
  socket = client;
  client.on('message', (m) => addMessages([m], { live: true }));
  client.on('message.updated', onMessageChanged);
  client.on('message.deleted', onMessageChanged);
  client.on('receipt', onReceipt);
  client.on('block', onBlock);
  client.on('presence', onPresence);
  client.on('typing', onTyping);
  client.on('invitation', onInvitation);
  client.on('group', onGroupEvent);
  let opened = false;
  client.on('hello', () => {
    const isReconnect = opened;
    opened = true;
    // The first socket may open after the initial load: fetch what came
    // between the two. Later ones are caught up by the client's sync.
    if (!isReconnect && state.loaded) catchUpAll().catch(() => {});
    if (isReconnect) {
      refreshGroups().catch(() => {});
      refreshInvitations().catch(() => {});
      scheduleConvReload();
    }
  });
  client.on('state', ({ state: s, reason }) => {
    if (socket !== client) return;
    switch (s) {
      case 'connecting':
        paintConnState('connecting');
        break;
      case 'open':
        paintConnState('online');
        break;
      case 'stopped':
        if (reason === 'revoked') {
          endSession('Your session was ended. Please sign in again.');
        } else if (reason === 'unauthorized') {
          endSession('Your session has ended. Please sign in again.');
        } else if (reason === 'policy' || reason === 'replaced') {
          paintConnState('offline');
          const el = $('#conn-state');
          el.textContent = reason === 'replaced'
            ? 'Offline: too many open tabs or devices; reload to reconnect.'
            : 'Offline: the server refused the connection.';
        } else {
          paintConnState('offline');
        }
        break;
      default:
        paintConnState('offline');
    }
  });
  client.connect();
}

// ------------------------------------------------------------- sidebar

function previewText(c, last) {
  if (c.typing) return `${c.typing.who} is typing…`;
  if (!last) return 'No messages yet';
  const who = last.from_id === state.me.id ? 'You: ' : c.kind === 'groupchat' ? `${last.from}: ` : '';
  return `${who}${last.deleted ? 'Message deleted' : last.content}`;
}

function renderConvList() {
  const ul = $('#conversation-list');
  if (!ul || !state.me) return;
  const convs = [...state.convs.values()].sort((a, b) => sortTime(b) - sortTime(a));
  const active = state.view && state.view.conv;
  let total = 0;
  ul.replaceChildren(...convs.map((c) => {
    const unread = unreadCount(c);
    total += unread;
    return h('li', {},
      h('a', { href: convHref(c), class: 'conv', 'aria-current': c === active ? 'page' : null, dataset: { conv: c.key } },
        h('span', { class: 'conv-name' },
          c.kind === 'chat' ? presenceEl(c.name) : h('span', { class: 'group-mark', 'aria-hidden': 'true' }, '#'),
          h('span', { class: 'name' }, c.name),
          c.kind === 'groupchat' ? h('span', { class: 'visually-hidden' }, ' (group)') : null),
        h('span', { class: c.typing ? 'preview typing' : 'preview' }, previewText(c, lastMessage(c)).slice(0, 120)),
        unread ? h('span', { class: 'badge unread', 'aria-label': `${unread} unread` }, String(unread)) : null));
  }));
  $('#conversation-empty').hidden = convs.length > 0;
  $('#conversations-more').hidden = !state.convPage.more;
  document.title = total ? `(${total}) Aoba` : 'Aoba';
}

function sortTime(c) {
  const last = lastMessage(c);
  const t = Date.parse((last && last.timestamp) || c.updatedAt || c.createdAt || '');
  return Number.isNaN(t) ? 0 : t;
}

async function loadOlderConversations() {
  const btn = $('#conversations-more');
  btn.disabled = true;
  try {
    await loadConversations(true);
  } catch (err) {
    announce(errText(err));
  } finally {
    btn.disabled = false;
  }
}

// --------------------------------------------------------------- routing

/**
 * setMain shows view in the main pane. When it re-renders the route on
 * screen (a refresh after a live event), what the user typed and the focus
 * stay.
 */
function setMain(view, ...children) {
  const main = $('#main');
  const prev = state.view;
  const kept = prev && prev.route === state.routeKey ? keepFields(main) : null;
  leaveView();
  view.route = state.routeKey;
  state.view = view;
  main.replaceChildren(...children.flat(Infinity).filter((c) => c !== null && c !== undefined && c !== false));
  if (kept) restoreFields(main, kept);
  document.body.classList.toggle('in-detail', view.name !== 'home');
  for (const a of document.querySelectorAll('.nav a')) {
    if (view.navKey !== undefined && a.getAttribute('href') === `#/${view.navKey}`) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  renderConvList();
}

function keepFields(root) {
  const values = new Map();
  for (const el of root.querySelectorAll('input[id], textarea[id], select[id]')) {
    if (el.type !== 'password') values.set(el.id, el.value);
  }
  const a = document.activeElement;
  return { values, active: a && a !== root && root.contains(a) && a.id ? a.id : '' };
}

function restoreFields(root, { values, active }) {
  for (const [id, v] of values) {
    const el = root.querySelector(`#${CSS.escape(id)}`);
    if (el && el.value !== v) el.value = v;
  }
  const el = active && root.querySelector(`#${CSS.escape(active)}`);
  if (el) el.focus();
}

function leaveView() {
  const v = state.view;
  if (v && v.stopTyping) v.stopTyping();
}

function focusHeading(refresh) {
  if (refresh) return;
  const target = $('#main [data-autofocus]') || $('#main h2');
  if (target) target.focus();
}

/**
 * renderRoute shows the view of the location hash. Views that fetch before
 * they show get stale(): true once a newer render started, so that an older
 * render answering late never replaces a newer one.
 */
async function renderRoute(refresh = false) {
  if (!state.me) return;
  const hash = location.hash || '#/';
  const parts = hash.replace(/^#\/?/, '').split('/').map((p) => decodeURIComponent(p));
  refresh = refresh && hash === state.routeKey;
  state.routeKey = hash;
  const seq = ++state.renderSeq;
  const stale = () => seq !== state.renderSeq || !state.me;
  try {
    if (parts[0] === 'people') await viewPeople(refresh);
    else if (parts[0] === 'user' && parts[1]) await viewUser(parts[1], refresh, stale);
    else if (parts[0] === 'chat' && parts[1] === 'd' && parts[2]) await viewDirect(parts[2], refresh, stale);
    else if (parts[0] === 'chat' && parts[1] === 'g' && parts[2]) await viewConversation(groupConv(parts[2]), refresh, stale);
    else if (parts[0] === 'group' && parts[1]) await viewGroup(parts[1], refresh, stale);
    else if (parts[0] === 'groups' && parts[1] === 'new') viewNewGroup(refresh);
    else if (parts[0] === 'invitations') viewInvitations(refresh);
    else if (parts[0] === 'profile') viewProfile(refresh);
    else viewHome();
  } catch (err) {
    if (stale()) return;
    setMain({ name: 'error' }, h('h2', { tabindex: '-1' }, 'Cannot show this page'), h('p', { role: 'alert' }, errText(err)),
      h('p', {}, h('a', { href: '#/' }, 'Back to conversations')));
    focusHeading(false);
  }
}

function heading(text) {
  return h('h2', { tabindex: '-1', class: 'view-title' }, text);
}

function viewHome() {
  setMain({ name: 'home', navKey: '' }, heading('Conversations'),
    h('p', { class: 'empty' }, 'Pick a conversation, find someone under People, or create a group.'));
}

// ---------------------------------------------------------------- people

async function viewPeople(refresh) {
  const input = h('input', { id: 'people-q', type: 'search', name: 'q', minlength: '2', maxlength: '100', autocomplete: 'off', 'data-autofocus': true });
  const results = h('ul', { class: 'people', id: 'people-results', 'aria-describedby': 'people-status' });
  const status = h('p', { class: 'hint', id: 'people-status', role: 'status' });
  const pager = h('div', { class: 'pager' });
  const form = h('form', { role: 'search', class: 'row' },
    h('label', { for: 'people-q' }, 'Search people'), input, h('button', { type: 'submit', class: 'primary' }, 'Search'));
  let timer = null;
  let page = 1;

  async function search(p) {
    const q = input.value.trim();
    if (charCount(q) < 2) {
      status.textContent = 'Type at least 2 characters.';
      results.replaceChildren();
      pager.replaceChildren();
      return;
    }
    page = p;
    status.textContent = 'Searching…';
    try {
      const res = await api.searchUsers(q, page, 20, state.me.id);
      const users = (res && res.users) || [];
      watch(users.map((u) => u.username));
      status.textContent = res.total ? `${res.total} found. Page ${res.page} of ${res.total_pages}.` : 'Nobody found.';
      results.replaceChildren(...users.map((u) => h('li', { class: 'person', dataset: { username: u.username } },
        presenceEl(u.username, true),
        h('span', { class: 'name' }, h('a', { href: userHref(u.username) }, u.username),
          state.blocks.has(u.id) ? h('span', { class: 'tag blocked-tag' }, 'Blocked') : null),
        h('a', { class: 'button', href: `#/chat/d/${encodeURIComponent(u.username)}`, 'aria-label': `Message ${u.username}` }, 'Message'))));
      pager.replaceChildren(
        h('button', { type: 'button', class: 'secondary', disabled: res.page <= 1, onclick: () => search(page - 1) }, 'Previous page'),
        h('button', { type: 'button', class: 'secondary', disabled: res.page >= res.total_pages, onclick: () => search(page + 1) }, 'Next page'));
    } catch (err) {
      status.textContent = errText(err);
    }
  }

  form.addEventListener('submit', (e) => {
    e.preventDefault();
    clearTimeout(timer);
    search(1);
  });
  input.addEventListener('input', () => {
    clearTimeout(timer);
    timer = setTimeout(() => search(1), 400);
  });
  setMain({ name: 'people', navKey: 'people' }, heading('People'), form, status, results, pager);
  focusHeading(refresh);
}

/**
 * viewUser is a user's page: presence, a link to the conversation, and
 * Block or Unblock. The block state follows live (block events of the
 * user's other devices included).
 */
async function viewUser(username, refresh, stale) {
  const u = await api.user(username);
  if (stale()) return;
  const isMe = u.id === state.me.id;
  watch([u.username]);
  const note = h('p', { class: 'notice', role: 'status', id: 'user-notice' });
  const error = h('p', { class: 'form-error', role: 'alert', hidden: true });
  const stateText = h('p', { id: 'block-state' });
  const blockBtn = h('button', { type: 'button', id: 'block-toggle' });
  const card = h('div', { class: 'card', id: 'user-card' },
    h('p', {}, presenceEl(u.username, true)),
    h('p', {}, `Member since ${new Date(u.created_at).toLocaleDateString()}.`),
    isMe ? h('p', {}, 'This is you. ', h('a', { href: '#/profile' }, 'Account settings')) : [
      h('p', {}, h('a', { class: 'button primary', href: `#/chat/d/${encodeURIComponent(u.username)}`, id: 'user-message' }, `Message ${u.username}`)),
      stateText, blockBtn, error,
    ]);

  const paintBlockState = () => {
    if (isMe) return;
    const blocked = state.blocks.has(u.id);
    stateText.textContent = blocked
      ? `You blocked ${u.username}. Neither of you can send the other direct messages until you unblock them; they see you as offline. They are not told.`
      : `Blocking ${u.username} stops their direct messages, typing notices and group invitations to you, and shows you to them as offline. They are not told.`;
    stateText.className = blocked ? 'blocked-note' : 'hint';
    blockBtn.textContent = blocked ? `Unblock ${u.username}` : `Block ${u.username}`;
    blockBtn.className = blocked ? 'secondary' : 'danger';
    blockBtn.setAttribute('aria-pressed', blocked ? 'true' : 'false');
  };
  blockBtn.addEventListener('click', async () => {
    const blocked = state.blocks.has(u.id);
    if (!blocked && !(await confirmDialog(`Block ${u.username}? They will not be able to message you or invite you to groups, and will not be told.`, 'Block'))) return;
    showFormError(card, '');
    blockBtn.disabled = true;
    try {
      if (blocked) await api.unblock(u.username);
      else await api.block(u.username);
      onBlock({ event: blocked ? 'unblocked' : 'blocked', user_id: u.id, username: u.username });
      const text = blocked ? `You unblocked ${u.username}.` : `You blocked ${u.username}.`;
      note.textContent = text;
      announce(text);
    } catch (err) {
      showFormError(card, errText(err));
    } finally {
      blockBtn.disabled = false;
    }
  });
  paintBlockState();
  setMain({ name: 'user', navKey: 'people', paintBlocks: paintBlockState }, heading(u.username), note, card);
  focusHeading(refresh);
}

// ---------------------------------------------------------- conversations

async function viewDirect(username, refresh, stale) {
  let conv = findDirectByName(username);
  if (!conv) {
    const u = await api.user(username);
    if (stale()) return;
    if (u.id === state.me.id) throw new Error('You cannot start a conversation with yourself.');
    conv = directConv(u.id, u.username);
  }
  await viewConversation(conv, refresh, stale);
}

async function viewConversation(conv, refresh, stale) {
  if (conv.kind === 'groupchat' && !state.groups.has(conv.target)) {
    await refreshGroups();
    if (stale()) return;
    if (!state.groups.has(conv.target)) throw new Error('This group does not exist or you are not a member.');
  }
  const list = h('ol', { class: 'messages', id: 'message-list', role: 'log', 'aria-live': 'polite', 'aria-label': `Messages with ${conv.name}`, tabindex: '0' });
  const older = h('p', { class: 'hint older', role: 'status' });
  const typingEl = h('p', { class: 'typing', id: 'typing-indicator', 'aria-live': 'polite' }, conv.typing ? `${conv.typing.who} is typing…` : '');
  const textarea = h('textarea', { id: 'composer', name: 'content', rows: '2', 'aria-describedby': 'composer-counter composer-help', 'data-autofocus': true });
  const counter = h('span', { id: 'composer-counter', class: 'counter' }, `0 / ${MAX_CONTENT}`);
  const sendBtn = h('button', { type: 'submit', class: 'primary', id: 'send', disabled: true }, 'Send');
  const sendError = h('p', { class: 'form-error', role: 'alert', hidden: true });
  const actionError = h('p', { class: 'form-error', role: 'alert', id: 'message-error', hidden: true });
  const blockNote = h('p', { class: 'notice blocked-note', id: 'block-note', role: 'status' });
  const form = h('form', { class: 'composer', id: 'composer-form' },
    h('label', { for: 'composer' }, `Message ${conv.name}`),
    textarea,
    h('div', { class: 'composer-bar' },
      h('span', { id: 'composer-help', class: 'hint' }, 'Enter sends, Shift+Enter starts a new line.'),
      counter, sendBtn),
    sendError);

  const header = h('div', { class: 'conv-header' },
    h('a', { href: '#/', class: 'back' }, '← Chats'),
    heading(conv.name),
    conv.kind === 'chat' ? [presenceEl(conv.name, true),
      h('a', { href: userHref(conv.name), class: 'button secondary', id: 'user-info-link' }, 'Details and blocking')]
      : h('a', { href: `#/group/${encodeURIComponent(conv.target)}`, class: 'button secondary', id: 'group-info-link' }, 'Members and settings'));
  const paintBlockNote = () => {
    const blocked = conv.kind === 'chat' && state.blocks.has(conv.peerId);
    blockNote.replaceChildren(...(blocked
      ? [`You blocked ${conv.name}. Neither of you can message the other until you `, h('a', { href: userHref(conv.name) }, 'unblock them'), '.']
      : []));
  };
  paintBlockNote();

  let composing = false;
  let pauseTimer = null;
  const typingFrame = (s) => {
    if (socket) socket.typing(conv.target, conv.kind, s);
  };
  const stopTyping = () => {
    clearTimeout(pauseTimer);
    if (composing) {
      composing = false;
      typingFrame('paused');
    }
  };

  const update = () => {
    const n = charCount(textarea.value);
    const over = n > MAX_CONTENT;
    counter.textContent = over ? `${n} / ${MAX_CONTENT}: ${n - MAX_CONTENT} too many` : `${n} / ${MAX_CONTENT}`;
    counter.classList.toggle('over', over);
    sendBtn.disabled = over || textarea.value.trim() === '';
    return { n, over };
  };

  textarea.addEventListener('input', () => {
    update();
    if (textarea.value.trim() === '') {
      stopTyping();
      return;
    }
    if (!composing) {
      composing = true;
      typingFrame('composing');
    }
    clearTimeout(pauseTimer);
    pauseTimer = setTimeout(stopTyping, TYPING_PAUSE_AFTER);
  });
  textarea.addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      form.requestSubmit();
    }
  });
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const { over } = update();
    const content = textarea.value;
    if (over || content.trim() === '') return;
    stopTyping();
    showFormError(form, '');
    textarea.value = '';
    update();
    try {
      let msg;
      // The client sends with a client_id: retried after a reconnection
      // (or through REST when the socket stays down), stored once.
      if (socket && socket.state !== 'stopped') msg = await socket.send({ to: conv.target, content, type: conv.kind });
      else msg = await api.sendMessage(conv.target, content, conv.kind);
      addMessages([msg]);
      scrollToBottom(list);
    } catch (err) {
      if (!textarea.value) textarea.value = content;
      update();
      showFormError(form, `Not sent: ${errText(err)}`);
    }
  });

  list.addEventListener('scroll', () => {
    if (list.scrollTop < 40) loadOlder(conv, older);
  });

  const view = { name: 'conversation', conv, list, typingEl, stopTyping, actionError, paintBlocks: paintBlockNote, editing: null };
  setMain(view, header, blockNote, older, list, typingEl, actionError, form);
  for (const m of [...conv.messages.values()].sort((a, b) => (a.id < b.id ? -1 : 1))) insertMessageEl(conv, m);
  paintSeen(conv);
  scrollToBottom(list);
  focusHeading(refresh);

  if (!conv.loaded) {
    const msgs = await loadHistoryPage(conv, {});
    conv.loaded = true;
    conv.hasMore = msgs.length === PAGE;
    // A conversation that was cached only in part: fetch what came after it.
    scrollToBottom(list);
  }
  if (conv.kind === 'groupchat') {
    const res = await api.members(conv.target).catch(() => null);
    if (res && res.members) watch(res.members.map((m) => m.username));
  }
  markReadIfVisible(conv);
  if (conv.hasMore && list.scrollHeight <= list.clientHeight) loadOlder(conv, older);
}

async function loadOlder(conv, statusEl) {
  if (!conv.hasMore || conv.loadingOlder || !conv.messages.size) return;
  conv.loadingOlder = true;
  statusEl.textContent = 'Loading older messages…';
  try {
    const msgs = await loadHistoryPage(conv, { before: oldestId(conv) });
    conv.hasMore = msgs.length === PAGE;
    statusEl.textContent = conv.hasMore ? '' : 'This is the beginning of the conversation.';
  } catch (err) {
    statusEl.textContent = errText(err);
  } finally {
    conv.loadingOlder = false;
  }
}

function scrollToBottom(list) {
  list.scrollTop = list.scrollHeight;
}

/** messageEl renders one message, with Edit and Delete for those allowed to. */
function messageEl(conv, m) {
  const mine = m.from_id === state.me.id;
  const contentId = `msg-${m.id}`;
  const actions = [];
  if (!m.deleted) {
    if (mine) {
      actions.push(h('button', { type: 'button', class: 'link', 'aria-describedby': contentId, onclick: () => startEdit(conv, m.id) }, 'Edit'));
    }
    if (mine || canModerate(conv)) {
      actions.push(h('button', { type: 'button', class: 'link danger-link', 'aria-describedby': contentId, onclick: () => deleteMessage(conv, m.id) }, 'Delete'));
    }
  }
  const cls = ['msg'];
  if (mine) cls.push('mine');
  if (m.deleted) cls.push('deleted');
  return h('li', { class: cls.join(' '), dataset: { id: m.id, from: m.from } },
    h('div', { class: 'msg-head' },
      h('span', { class: 'meta' }, h('span', { class: 'from' }, mine ? 'You' : m.from), ' ',
        h('time', { datetime: m.timestamp }, clockTime(m.timestamp)),
        m.edited_at && !m.deleted ? h('span', { class: 'edited', title: `Edited ${new Date(m.edited_at).toLocaleString()}` }, ' (edited)') : null),
      actions.length ? h('span', { class: 'msg-actions', role: 'group', 'aria-label': `Actions on ${mine ? 'your' : `${m.from}'s`} message` }, actions) : null),
    h('p', { class: 'content', id: contentId }, m.deleted ? 'Message deleted' : m.content));
}

function insertMessageEl(conv, m) {
  const list = state.view && state.view.list;
  if (!list || list.querySelector(`li[data-id="${CSS.escape(m.id)}"]`)) return;
  const mine = m.from_id === state.me.id;
  const li = messageEl(conv, m);
  const nearBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 80;
  let before = null;
  for (const el of list.children) {
    if (el.dataset.id > m.id) {
      before = el;
      break;
    }
  }
  if (before) {
    const fromBottom = list.scrollHeight - list.scrollTop;
    list.insertBefore(li, before);
    // Keep the reader's place when older history is prepended.
    list.scrollTop = list.scrollHeight - fromBottom;
  } else {
    list.append(li);
    if (nearBottom || mine) scrollToBottom(list);
  }
}

/**
 * replaceMessageEl shows a new version of a message in place. A message
 * being edited keeps its editor, unless it was deleted meanwhile.
 */
function replaceMessageEl(conv, m) {
  const v = state.view;
  const old = v && v.list && v.list.querySelector(`li[data-id="${CSS.escape(m.id)}"]`);
  if (!old) return;
  if (v.editing === m.id) {
    if (!m.deleted) return;
    v.editing = null;
  }
  const hadFocus = old.contains(document.activeElement);
  const li = messageEl(conv, m);
  const seen = old.querySelector('.seen');
  if (seen) li.append(seen);
  old.replaceWith(li);
  if (hadFocus) (li.querySelector('button') || v.list).focus();
}

/** repaintMessages renders every message of the open conversation again (the user's role changed). */
function repaintMessages(conv) {
  for (const m of conv.messages.values()) replaceMessageEl(conv, m);
}

/** paintSeen puts "Seen" under the newest of the user's 1:1 messages that the peer has read. */
function paintSeen(conv) {
  const v = state.view;
  if (!v || v.conv !== conv || !v.list || conv.kind !== 'chat') return;
  let target = null;
  for (const m of conv.messages.values()) {
    if (m.from_id === state.me.id && !m.deleted && m.id <= conv.peerReadUpTo && (!target || m.id > target.id)) target = m;
  }
  const cur = v.list.querySelector('.seen');
  const li = target && v.list.querySelector(`li[data-id="${CSS.escape(target.id)}"]`);
  if (cur && li && cur.parentElement === li) return;
  if (cur) cur.remove();
  if (li) li.append(h('span', { class: 'seen', id: 'seen-marker' }, 'Seen'));
}

function showActionError(text) {
  const v = state.view;
  if (!v || !v.actionError) return;
  v.actionError.textContent = text || '';
  v.actionError.hidden = !text;
}

/** startEdit turns the user's message into an inline editor: Save (or Enter), Cancel (or Escape). */
function startEdit(conv, id) {
  const v = state.view;
  const m = conv.messages.get(id);
  const li = v && v.list && v.list.querySelector(`li[data-id="${CSS.escape(id)}"]`);
  if (!m || m.deleted || !li) return;
  if (v.editing && v.editing !== id) endEdit(conv, v.editing);
  v.editing = id;
  showActionError('');
  const textarea = h('textarea', { id: 'edit-text', name: 'content', rows: '2', 'aria-describedby': 'edit-help' });
  textarea.value = m.content;
  const form = h('form', { class: 'edit-form' },
    h('label', { for: 'edit-text', class: 'visually-hidden' }, 'Edit message'),
    textarea,
    h('p', { id: 'edit-help', class: 'hint' }, 'Enter saves, Escape cancels.'),
    h('p', { class: 'form-error', role: 'alert', hidden: true }),
    h('span', { class: 'actions' },
      h('button', { type: 'submit', class: 'primary' }, 'Save'),
      h('button', { type: 'button', class: 'secondary', onclick: () => endEdit(conv, id) }, 'Cancel')));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const content = textarea.value;
    const n = charCount(content);
    if (content.trim() === '') {
      showFormError(form, 'A message cannot be empty; delete it instead.');
      return;
    }
    if (n > MAX_CONTENT) {
      showFormError(form, `A message is at most ${MAX_CONTENT} characters; this one has ${n}.`);
      return;
    }
    const cur = conv.messages.get(id);
    if (cur && content === cur.content) {
      endEdit(conv, id);
      return;
    }
    showFormError(form, '');
    try {
      const saved = await api.editMessage(id, content);
      endEdit(conv, id);
      onMessageChanged(saved);
      announce('Message edited');
    } catch (err) {
      showFormError(form, `Not saved: ${errText(err)}`);
    }
  });
  textarea.addEventListener('keydown', (e) => {
    if (e.key === 'Escape') {
      e.preventDefault();
      endEdit(conv, id);
    } else if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      form.requestSubmit();
    }
  });
  li.querySelector('.content').replaceWith(form);
  const actions = li.querySelector('.msg-actions');
  if (actions) actions.hidden = true;
  textarea.focus();
}

/** endEdit closes the editor of message id and shows the message as held. */
function endEdit(conv, id) {
  const v = state.view;
  if (!v || v.editing !== id) return;
  v.editing = null;
  const m = conv.messages.get(id);
  if (m) replaceMessageEl(conv, m);
  const li = v.list.querySelector(`li[data-id="${CSS.escape(id)}"]`);
  const btn = li && li.querySelector('.msg-actions button');
  if (btn) btn.focus();
}

/** deleteMessage deletes a message for everyone, after a confirmation; it stays as "Message deleted". */
async function deleteMessage(conv, id) {
  const m = conv.messages.get(id);
  if (!m) return;
  const whose = m.from_id === state.me.id ? 'your message' : `${m.from}'s message`;
  if (!(await confirmDialog(`Delete ${whose} for everyone?`, 'Delete message'))) return;
  showActionError('');
  try {
    await api.deleteMessage(id);
    onMessageChanged({ ...m, content: '', deleted: true });
    announce('Message deleted');
  } catch (err) {
    showActionError(`Not deleted: ${errText(err)}`);
  }
}

// ---------------------------------------------------------------- groups

function viewNewGroup(refresh) {
  const form = h('form', { class: 'card', id: 'new-group-form' },
    h('label', { for: 'group-name' }, 'Group name'),
    h('input', { id: 'group-name', name: 'name', required: true, maxlength: '100', 'data-autofocus': true }),
    h('label', { for: 'group-invitees' }, 'Invite people (usernames, separated by commas)'),
    h('input', { id: 'group-invitees', name: 'invitees', autocomplete: 'off', 'aria-describedby': 'group-invitees-hint' }),
    h('p', { id: 'group-invitees-hint', class: 'hint' }, 'They receive an invitation and join when they accept it.'),
    h('p', { class: 'form-error', role: 'alert', hidden: true }),
    h('button', { type: 'submit', class: 'primary' }, 'Create group'));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const name = form.elements.name.value.trim();
    const invitees = form.elements.invitees.value.split(/[\s,]+/).map((s) => s.trim()).filter(Boolean);
    if (!name) {
      showFormError(form, 'A group needs a name.');
      return;
    }
    try {
      const res = await api.createGroup(name, invitees);
      state.groups.set(res.group.group_id, res.group);
      groupConv(res.group.group_id);
      const sent = (res.invitations_sent || []).length;
      announce(`Group ${res.group.name} created, ${sent} invitation${sent === 1 ? '' : 's'} sent`);
      location.hash = `#/chat/g/${encodeURIComponent(res.group.group_id)}`;
    } catch (err) {
      showFormError(form, errText(err));
    }
  });
  setMain({ name: 'new-group', navKey: 'groups/new' }, heading('New group'), form);
  focusHeading(refresh);
}

async function viewGroup(groupId, refresh, stale) {
  const [group, mres] = await Promise.all([api.group(groupId), api.members(groupId)]);
  if (stale()) return;
  state.groups.set(groupId, { ...(state.groups.get(groupId) || {}), ...group });
  groupConv(groupId);
  const members = (mres && mres.members) || group.members || [];
  watch(members.map((m) => m.username));
  const meLower = lower(state.me.username);
  const myRole = roleOf(group, members);
  const note = h('p', { class: 'notice', role: 'status', id: 'group-notice' });

  const act = (fn, done) => async () => {
    try {
      const text = await fn();
      if (text === false) return;
      await refreshGroups().catch(() => {});
      if (done) done();
      else await renderRoute(true);
      if (text) {
        const n = $('#group-notice');
        if (n) n.textContent = text;
        announce(text);
      }
    } catch (err) {
      note.textContent = errText(err);
    }
  };

  const memberRows = members.map((m) => {
    const isMe = lower(m.username) === meLower;
    const role = lower(m.username) === lower(group.owner_username) ? 'owner' : m.role;
    const actions = [];
    if (!isMe && myRole === 'owner' && role !== 'owner') {
      const next = role === 'admin' ? 'member' : 'admin';
      actions.push(h('button', { type: 'button', class: 'secondary', onclick: act(async () => { await api.setRole(groupId, m.username, next); return `${m.username} is now ${next}.`; }) },
        next === 'admin' ? 'Make admin' : 'Make member'));
      actions.push(h('button', { type: 'button', class: 'secondary', onclick: act(async () => {
        if (!(await confirmDialog(`Make ${m.username} the owner of ${group.name}? You will become an admin.`, 'Transfer ownership'))) return false;
        await api.transferGroup(groupId, m.username);
        return `${m.username} now owns the group.`;
      }) }, 'Make owner'));
    }
    if (!isMe && role !== 'owner' && (myRole === 'owner' || (myRole === 'admin' && role === 'member'))) {
      actions.push(h('button', { type: 'button', class: 'danger', onclick: act(async () => {
        if (!(await confirmDialog(`Remove ${m.username} from ${group.name}?`, 'Remove'))) return false;
        await api.removeMember(groupId, m.username);
        return `${m.username} was removed.`;
      }) }, 'Remove'));
    }
    return h('li', { class: 'member', dataset: { username: m.username, role } },
      presenceEl(m.username, true),
      h('span', { class: 'name' }, isMe ? `${m.username} (you)` : h('a', { href: userHref(m.username) }, m.username)),
      h('span', { class: `role role-${role}` }, role),
      actions.length ? h('span', { class: 'actions', role: 'group', 'aria-label': `Actions for ${m.username}` }, actions) : null);
  });

  const sections = [];
  const inviteForm = h('form', { class: 'row', id: 'invite-form' },
    h('label', { for: 'invite-username' }, 'Invite by username'),
    h('input', { id: 'invite-username', name: 'username', required: true, autocomplete: 'off' }),
    h('button', { type: 'submit', class: 'primary' }, 'Send invitation'));
  inviteForm.addEventListener('submit', (e) => {
    e.preventDefault();
    const u = inviteForm.elements.username.value.trim();
    if (u) {
      act(async () => {
        await api.invite(groupId, u);
        inviteForm.reset();
        return `Invitation sent to ${u}.`;
      })();
    }
  });
  sections.push(inviteForm);

  if (myRole === 'owner' || myRole === 'admin') {
    const roleSelect = myRole === 'owner'
      ? [h('label', { for: 'add-role' }, 'Role'), h('select', { id: 'add-role', name: 'role' }, h('option', { value: 'member' }, 'member'), h('option', { value: 'admin' }, 'admin'))]
      : [];
    const addForm = h('form', { class: 'row', id: 'add-member-form' },
      h('label', { for: 'add-username' }, 'Add member directly'),
      h('input', { id: 'add-username', name: 'username', required: true, autocomplete: 'off' }),
      roleSelect,
      h('button', { type: 'submit', class: 'primary' }, 'Add member'));
    addForm.addEventListener('submit', (e) => {
      e.preventDefault();
      const u = addForm.elements.username.value.trim();
      const role = addForm.elements.role ? addForm.elements.role.value : 'member';
      if (u) {
        act(async () => {
          await api.addMember(groupId, u, role);
          addForm.reset();
          return `${u} was added as ${role}.`;
        })();
      }
    });
    sections.push(addForm);
  }

  const danger = [];
  if (myRole !== 'owner') {
    danger.push(h('button', { type: 'button', class: 'danger', id: 'leave-group', onclick: act(async () => {
      if (!(await confirmDialog(`Leave ${group.name}?`, 'Leave'))) return false;
      await api.leaveGroup(groupId);
      return `You left ${group.name}.`;
    }, () => { location.hash = '#/'; }) }, 'Leave group'));
  } else {
    danger.push(h('p', { class: 'hint' }, 'To leave, first make another member the owner.'));
    danger.push(h('button', { type: 'button', class: 'danger', id: 'delete-group', onclick: act(async () => {
      if (!(await confirmDialog(`Delete ${group.name} for everyone? This cannot be undone.`, 'Delete group'))) return false;
      await api.deleteGroup(groupId);
      return `${group.name} was deleted.`;
    }, () => { location.hash = '#/'; }) }, 'Delete group'));
  }

  setMain({ name: 'group', groupId },
    h('div', { class: 'conv-header' }, h('a', { href: convHref(groupConv(groupId)), class: 'back' }, '← Chat'), heading(group.name)),
    h('p', {}, h('a', { href: convHref(groupConv(groupId)), id: 'open-group-chat' }, 'Open the group chat'), ` · Your role: ${myRole}`),
    note,
    h('h3', {}, `Members (${members.length})`),
    h('ul', { class: 'members', id: 'member-list' }, memberRows),
    h('h3', {}, 'Invite and add'),
    sections,
    h('h3', {}, myRole === 'owner' ? 'Owner actions' : 'Membership'),
    danger);
  focusHeading(refresh);
}

// ----------------------------------------------------------- invitations

function viewInvitations(refresh) {
  const invs = [...state.invitations.values()].sort((a, b) => (a.created_at < b.created_at ? 1 : -1));
  const note = h('p', { class: 'notice', role: 'status' });
  const items = invs.map((inv) => h('li', { class: 'invitation', dataset: { id: inv.id, group: inv.group_name } },
    h('span', {}, h('strong', {}, inv.group_name), ` from ${inv.inviter_username}, ${relativeTime(inv.created_at)}`),
    h('span', { class: 'actions' },
      h('button', { type: 'button', class: 'primary', 'aria-label': `Accept invitation to ${inv.group_name}`, onclick: async () => {
        try {
          const res = await api.acceptInvitation(inv.id);
          state.invitations.delete(inv.id);
          paintInvitationCount();
          await refreshGroups().catch(() => {});
          const gid = (res && res.group && res.group.group_id) || inv.group_id;
          announce(`You joined ${inv.group_name}`);
          location.hash = `#/chat/g/${encodeURIComponent(gid)}`;
        } catch (err) {
          note.textContent = errText(err);
        }
      } }, 'Accept'),
      h('button', { type: 'button', class: 'secondary', 'aria-label': `Decline invitation to ${inv.group_name}`, onclick: async () => {
        try {
          await api.denyInvitation(inv.id);
          state.invitations.delete(inv.id);
          paintInvitationCount();
          renderRoute(true);
          announce(`Invitation to ${inv.group_name} declined`);
        } catch (err) {
          note.textContent = errText(err);
        }
      } }, 'Decline'))));
  setMain({ name: 'invitations', navKey: 'invitations' }, heading('Invitations'), note,
    items.length ? h('ul', { class: 'invitations', id: 'invitation-list' }, items) : h('p', { class: 'empty' }, 'No pending invitations.'));
  focusHeading(refresh);
}

// --------------------------------------------------------------- profile

function viewProfile(refresh) {
  const nameForm = h('form', { class: 'card', id: 'username-form' },
    h('h3', {}, 'Username'),
    h('label', { for: 'new-username' }, 'New username'),
    h('input', { id: 'new-username', name: 'username', required: true, minlength: '3', maxlength: '255', pattern: '[a-zA-Z0-9_\\-]{3,255}', value: state.me.username }),
    h('p', { class: 'form-error', role: 'alert', hidden: true }),
    h('p', { class: 'notice', role: 'status' }),
    h('button', { type: 'submit', class: 'primary' }, 'Change username'));
  nameForm.addEventListener('submit', async (e) => {
    e.preventDefault();
    showFormError(nameForm, '');
    try {
      state.me = await api.changeUsername(nameForm.elements.username.value.trim());
      $('#me-name').textContent = state.me.username;
      nameForm.querySelector('.notice').textContent = `Your username is now ${state.me.username}.`;
    } catch (err) {
      showFormError(nameForm, errText(err));
    }
  });

  const pwForm = h('form', { class: 'card', id: 'password-form' },
    h('h3', {}, 'Password'),
    h('label', { for: 'current-password' }, 'Current password'),
    h('input', { id: 'current-password', name: 'current', type: 'password', required: true, autocomplete: 'current-password' }),
    h('label', { for: 'new-password' }, 'New password (8 to 128 characters)'),
    h('input', { id: 'new-password', name: 'next', type: 'password', required: true, minlength: '8', maxlength: '128', autocomplete: 'new-password' }),
    h('label', { for: 'repeat-password' }, 'Repeat the new password'),
    h('input', { id: 'repeat-password', name: 'repeat', type: 'password', required: true, autocomplete: 'new-password' }),
    h('p', { class: 'form-error', role: 'alert', hidden: true }),
    h('p', { class: 'notice', role: 'status' }),
    h('button', { type: 'submit', class: 'primary' }, 'Change password'));
  pwForm.addEventListener('submit', async (e) => {
    e.preventDefault();
    showFormError(pwForm, '');
    const { current, next, repeat } = pwForm.elements;
    if (next.value !== repeat.value) {
      showFormError(pwForm, 'The new passwords do not match.');
      return;
    }
    const n = charCount(next.value);
    if (n < 8 || n > 128) {
      showFormError(pwForm, 'The new password must be 8 to 128 characters long.');
      return;
    }
    try {
      await api.changePassword(current.value, next.value);
      pwForm.reset();
      pwForm.querySelector('.notice').textContent = 'Password updated. Your other sessions were signed out.';
    } catch (err) {
      showFormError(pwForm, errText(err));
    }
  });

  const del = h('div', { class: 'card danger-zone' },
    h('h3', {}, 'Delete account'),
    h('p', {}, 'Deleting your account signs you out everywhere and frees your username.'),
    h('p', { class: 'form-error', role: 'alert', hidden: true }),
    h('button', { type: 'button', class: 'danger', id: 'delete-account', onclick: async () => {
      if (!(await confirmDialog(`Delete the account ${state.me.username} for good?`, 'Delete my account'))) return;
      try {
        if (socket) socket.close();
        await api.deleteMe();
        endSession('Your account was deleted.');
      } catch (err) {
        showFormError(del, errText(err));
        if (socket) socket.connect();
      }
    } }, 'Delete my account'));

  const blockList = h('ul', { class: 'people', id: 'block-list' });
  const paintBlockList = () => {
    const users = [...state.blocks.values()].sort((a, b) => (lower(a.username) < lower(b.username) ? -1 : 1));
    blockList.replaceChildren(...(users.length
      ? users.map((u) => h('li', { class: 'person', dataset: { username: u.username } },
        h('span', { class: 'name' }, h('a', { href: userHref(u.username) }, u.username))))
      : [h('li', { class: 'hint' }, 'Nobody. Block someone from their page (People, then their name).')]));
  };
  paintBlockList();
  const blocks = h('div', { class: 'card', id: 'blocks' }, h('h3', {}, 'Blocked users'), blockList);

  setMain({ name: 'profile', navKey: 'profile', paintBlocks: paintBlockList }, heading('Profile'),
    h('p', {}, `Signed in as ${state.me.username} since ${new Date(state.me.created_at).toLocaleDateString()}.`),
    nameForm, pwForm, blocks, del);
  focusHeading(refresh);
}

// ------------------------------------------------------------ auth pages

function showAuth(notice) {
  $('#app-view').hidden = true;
  $('#auth-view').hidden = false;
  const n = $('#auth-notice');
  n.textContent = notice || '';
  n.hidden = !notice;
  showSignin();
}

function showSignin() {
  $('#signup-form').hidden = true;
  $('#signin-form').hidden = false;
  $('#signin-username').focus();
}

function showSignup() {
  $('#signin-form').hidden = true;
  $('#signup-form').hidden = false;
  $('#signup-username').focus();
}

async function signIn(username, password) {
  const res = await api.login(username, password);
  localStorage.setItem(SIGNED_IN_HINT, '1');
  startSession(res.user || (await api.me()));
}

function bindAuthForms() {
  $('#show-signup').addEventListener('click', showSignup);
  $('#show-signin').addEventListener('click', showSignin);
  const signin = $('#signin-form');
  signin.addEventListener('submit', async (e) => {
    e.preventDefault();
    showFormError(signin, '');
    const { username, password } = signin.elements;
    if (!username.value.trim() || !password.value) {
      showFormError(signin, 'Enter your username and password.');
      return;
    }
    try {
      await signIn(username.value.trim(), password.value);
      signin.reset();
    } catch (err) {
      showFormError(signin, errText(err));
    }
  });
  const signup = $('#signup-form');
  signup.addEventListener('submit', async (e) => {
    e.preventDefault();
    showFormError(signup, '');
    const { username, password } = signup.elements;
    const u = username.value.trim();
    if (!/^[a-zA-Z0-9_-]{3,255}$/.test(u)) {
      showFormError(signup, 'Usernames are 3 to 255 letters, digits, "_" or "-".');
      return;
    }
    const n = charCount(password.value);
    if (n < 8 || n > 128) {
      showFormError(signup, 'Passwords are 8 to 128 characters long.');
      return;
    }
    try {
      await api.register(u, password.value);
      await signIn(u, password.value);
      signup.reset();
    } catch (err) {
      showFormError(signup, errText(err));
    }
  });
  $('#signout').addEventListener('click', async () => {
    if (socket) socket.close();
    try {
      await api.logout();
    } catch {
      /* the session is gone either way */
    }
    endSession('You are signed out.');
  });
}

// -------------------------------------------------------------- session

function resetState() {
  for (const c of state.convs.values()) clearTimeout(c.typingTimer);
  state.convs.clear();
  state.convPage = { before: '', more: false, olderLoaded: false };
  clearTimeout(convReloadTimer);
  convReloadTimer = null;
  state.groups.clear();
  state.invitations.clear();
  state.blocks.clear();
  state.presence.clear();
  state.watched.clear();
  state.view = null;
  state.loaded = false;
  state.routeKey = '';
}

function startSession(me) {
  resetState();
  state.me = me;
  $('#auth-view').hidden = true;
  $('#app-view').hidden = false;
  $('#me-name').textContent = me.username;
  paintInvitationCount();
  startSocket();
  presenceTicker = setInterval(() => {
    for (const l of state.presence.keys()) paintPresence(l);
  }, 30000);
  setMain({ name: 'home' }, heading('Loading…'));
  initialLoad().finally(() => renderRoute());
}

function endSession(notice) {
  if (socket) {
    const client = socket;
    socket = null;
    client.close();
  }
  clearInterval(presenceTicker);
  localStorage.removeItem(SIGNED_IN_HINT);
  resetState();
  state.me = null;
  $('#conversation-list').replaceChildren();
  $('#main').replaceChildren();
  history.replaceState(null, '', '#/');
  showAuth(notice);
}

async function boot() {
  bindAuthForms();
  onUnauthorized(() => {
    if (state.me) endSession('Your session has ended. Please sign in again.');
  });
  window.addEventListener('hashchange', () => renderRoute());
  $('#conversations-more').addEventListener('click', loadOlderConversations);
  document.addEventListener('visibilitychange', () => {
    if (state.view && state.view.conv) markReadIfVisible(state.view.conv);
    if (document.visibilityState === 'visible' && socket) socket.reconnectNow();
  });
  window.addEventListener('online', () => socket && socket.reconnectNow());
  // Without the hint there is no session worth asking about, and asking
  // would only log a 401.
  if (!localStorage.getItem(SIGNED_IN_HINT)) {
    showAuth();
    return;
  }
  try {
    startSession(await api.me());
  } catch (err) {
    localStorage.removeItem(SIGNED_IN_HINT);
    showAuth(err instanceof ApiError && err.status !== 401 ? errText(err) : '');
  }
}

boot();
