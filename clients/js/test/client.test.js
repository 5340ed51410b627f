// Tests of the client against the real server binary (built from this repo).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import WS from 'ws';
import { AobaClient } from '../aoba.js';
import { Server, waitFor, sleep } from './server.js';

const server = new Server();
before(async () => {
  await server.start();
}, { timeout: 120000 });
after(async () => {
  await server.stop();
});

/** TestSocket is ws's WebSocket, recorded, with a hook that may swallow a server frame. */
function socketClass() {
  const instances = [];
  class TestSocket extends WS {
    constructor(url, protocols) {
      super(url, protocols);
      this.url0 = url;
      this.onServerFrame = null; // (frame) => false to swallow it
      instances.push(this);
    }

    addEventListener(type, fn, opts) {
      if (type !== 'message') return super.addEventListener(type, fn, opts);
      return super.addEventListener(type, (ev) => {
        if (this.onServerFrame && this.onServerFrame(JSON.parse(ev.data)) === false) return;
        fn(ev);
      }, opts);
    }
  }
  return { TestSocket, instances };
}

const clients = [];
function client(opts) {
  const c = new AobaClient({ baseUrl: server.url, backoff: { min: 50, max: 400, stableAfter: 2000 }, ...opts });
  clients.push(c);
  const got = { messages: [], states: [], errors: [] };
  c.on('message', (m) => got.messages.push(m));
  c.on('state', (s) => got.states.push(s));
  c.on('error', (e) => got.errors.push(e));
  return { c, got };
}
after(() => {
  for (const c of clients) c.close();
});

const open = (c) => waitFor(() => c.state === 'open', 10000, 'state open');

test('connects with a token (ticket fetched by the client) and receives live messages', async () => {
  const alice = await server.user('alice');
  const bob = await server.user('bob');
  const { TestSocket, instances } = socketClass();
  const { c, got } = client({ token: alice.token, WebSocket: TestSocket });
  c.connect();
  await open(c);
  assert.match(instances[0].url0, /\/ws\?ticket=/);
  assert.doesNotMatch(instances[0].url0, /token=/);
  assert.ok(c.cursor, 'keeps the first hello cursor');
  const sent = await server.api('POST', '/api/messages', { token: bob.token, body: { to: alice.username, content: 'hi', type: 'chat' } });
  await waitFor(() => got.messages.length === 1, 5000, 'live message');
  assert.equal(got.messages[0].id, sent.id);
  assert.equal(got.messages[0].content, 'hi');
  c.close();
  assert.equal(c.state, 'stopped');
});

test('connects with ?token= and with a getTicket function', async () => {
  const alice = await server.user('alice');
  const bob = await server.user('bob');
  const q = socketClass();
  const { c: c1, got: g1 } = client({ token: alice.token, socketAuth: 'query', WebSocket: q.TestSocket });
  let tickets = 0;
  const t = socketClass();
  const { c: c2, got: g2 } = client({
    token: alice.token, // for the REST calls (sync); the socket uses getTicket
    WebSocket: t.TestSocket,
    getTicket: async () => {
      tickets++;
      return (await server.api('POST', '/api/auth/ws-ticket', { token: alice.token })).ticket;
    },
  });
  c1.connect();
  c2.connect();
  await open(c1);
  await open(c2);
  assert.match(q.instances[0].url0, /\?token=/);
  assert.match(t.instances[0].url0, /\?ticket=/);
  assert.equal(tickets, 1);
  await server.api('POST', '/api/messages', { token: bob.token, body: { to: alice.username, content: 'both', type: 'chat' } });
  await waitFor(() => g1.messages.length === 1 && g2.messages.length === 1, 5000, 'message on both');
  // A reconnection fetches a new ticket (they are single use).
  t.instances[0].terminate();
  await waitFor(() => t.instances.length === 2 && c2.state === 'open', 5000, 'reconnect').catch((e) => {
    throw new Error(`${e.message}: ${JSON.stringify(g2.states)} ${g2.errors} ${t.instances.length}`);
  });
  assert.equal(tickets, 2);
  c1.close();
  c2.close();
});

test('send() resolves with the stored message', async () => {
  const alice = await server.user('alice');
  const bob = await server.user('bob');
  const { c } = client({ token: alice.token, WebSocket: WS });
  const { c: cb, got: gb } = client({ token: bob.token, WebSocket: WS });
  c.connect();
  cb.connect();
  await open(c);
  await open(cb);
  const m = await c.send({ to: bob.username, content: 'hello bob' });
  assert.ok(m.id);
  assert.equal(m.content, 'hello bob');
  assert.equal(m.from, alice.username);
  assert.match(m.client_id, /^[0-9a-f-]{36}$/);
  await waitFor(() => gb.messages.some((x) => x.id === m.id), 5000, 'bob receives it');
  // Sends are kept in order.
  const ms = await Promise.all([1, 2, 3, 4, 5].map((i) => c.send({ to: bob.username, content: `n${i}` })));
  assert.deepEqual(ms.map((x) => x.content), ['n1', 'n2', 'n3', 'n4', 'n5']);
  const ids = ms.map((x) => x.id);
  assert.deepEqual([...ids].sort(), ids);
  await assert.rejects(c.send({ to: 'nobody-such-user', content: 'x' }), (e) => e.status === 404 || e.code === 'not_found' || /not/i.test(e.message));
  c.close();
  cb.close();
});

test('socket cut mid-stream: every acknowledged message exactly once, in order, after reconnect and sync', async () => {
  const alice = await server.user('alice');
  const bob = await server.user('bob');
  const { TestSocket, instances } = socketClass();
  const { c, got } = client({ token: alice.token, WebSocket: TestSocket });
  let synced = 0;
  c.on('synced', () => synced++);
  c.connect();
  await open(c);
  const acked = [];
  const cuts = [];
  for (let i = 0; i < 50; i++) {
    if (i === 15 || i === 35) {
      // The second cut waits for the first reconnection (the posts are faster than the backoff).
      await waitFor(() => c.state === 'open', 5000, 'open before the cut');
      const ws = instances[instances.length - 1];
      cuts.push([instances.length, ws.readyState, c.state]);
      ws.terminate(); // TCP connection cut (1006)
    }
    const m = await server.api('POST', '/api/messages', { token: bob.token, body: { to: alice.username, content: `m${i}`, type: 'chat' } });
    acked.push(m.id);
  }
  await waitFor(() => got.messages.length >= 50, 15000, '50 messages');
  await sleep(300); // any duplicate would show up now
  assert.ok(instances.length >= 3, `reconnected after each cut: ${instances.length} sockets, states ${JSON.stringify(got.states)}, cuts ${JSON.stringify(cuts)}`);
  assert.ok(synced >= 1, 'synced after reconnecting'); // a cut during a pass abandons it: the next one covers it
  assert.deepEqual(got.messages.map((m) => m.id), acked);
  assert.ok(got.states.some((s) => s.state === 'closed' && s.code === 1006));
  c.close();
});

test('send() in flight when the socket is cut resolves once with one stored message', async () => {
  const alice = await server.user('alice');
  const bob = await server.user('bob');
  const { TestSocket, instances } = socketClass();
  const { c } = client({ token: alice.token, WebSocket: TestSocket });
  c.connect();
  await open(c);
  // The server stores the message; its ack is lost with the connection.
  instances[0].onServerFrame = (f) => {
    if (f.type !== 'ack') return true;
    instances[0].terminate();
    return false;
  };
  let resolved = 0;
  const p = c.send({ to: bob.username, content: 'only once' }).then((m) => {
    resolved++;
    return m;
  });
  const m = await p;
  assert.ok(instances.length >= 2, 'acknowledged on a new socket');
  await sleep(200);
  assert.equal(resolved, 1);
  const hist = await server.api('GET', `/api/messages?with=${bob.username}&limit=100`, { token: alice.token });
  const list = hist.messages || hist.data || hist;
  const same = list.filter((x) => x.content === 'only once');
  assert.equal(same.length, 1, JSON.stringify(hist).slice(0, 500));
  assert.equal(same[0].id, m.id);
  c.close();
});

test('close code 4001 after logout stops reconnecting', async () => {
  const alice = await server.user('alice');
  const { TestSocket, instances } = socketClass();
  const { c, got } = client({ token: alice.token, WebSocket: TestSocket });
  c.connect();
  await open(c);
  const pending = c.send({ to: alice.username, content: 'never' }).catch((e) => e); // may be acked or rejected
  await pending;
  await server.api('POST', '/api/auth/logout', { token: alice.token });
  await waitFor(() => c.state === 'stopped', 5000, 'stopped');
  const stopped = got.states.find((s) => s.state === 'stopped');
  assert.equal(stopped.reason, 'revoked');
  assert.equal(stopped.code, 4001);
  await sleep(600);
  assert.equal(instances.length, 1, 'no reconnection');
  await assert.rejects(c.send({ to: alice.username, content: 'x' }));
});

test('server SIGKILLed and restarted on the same port and data dir: reconnect, sync, every message once', async () => {
  const alice = await server.user('alice');
  const bob = await server.user('bob');
  const { TestSocket, instances } = socketClass();
  const { c, got } = client({ token: alice.token, WebSocket: TestSocket, restFallbackAfter: 0 });
  c.connect();
  await open(c);
  const acked = [];
  const post = async (i) => {
    const m = await server.api('POST', '/api/messages', { token: bob.token, body: { to: alice.username, content: `k${i}`, type: 'chat' } });
    acked.push(m.id);
  };
  for (let i = 0; i < 10; i++) await post(i);
  await waitFor(() => got.messages.length === 10, 5000, 'first 10');
  await server.kill9();
  await waitFor(() => c.state !== 'open', 5000, 'drop noticed');
  // Sent while the client is away: reaches it only through sync.
  await server.spawn();
  for (let i = 10; i < 20; i++) await post(i);
  await waitFor(() => got.messages.length >= 20, 15000, '20 messages');
  await sleep(300);
  assert.ok(instances.length >= 2);
  assert.deepEqual(got.messages.map((m) => m.id), acked);
  // Sends work on the new server.
  const m = await c.send({ to: bob.username, content: 'after restart' });
  assert.equal(m.content, 'after restart');
  c.close();
});

test('a send while the socket stays down goes through POST /api/messages with its client_id', async () => {
  const alice = await server.user('alice');
  const bob = await server.user('bob');
  // A socket that never opens (a network that blocks WebSockets).
  class DeadSocket {
    addEventListener() {}
    close() {}
  }
  const { c } = client({ token: alice.token, WebSocket: DeadSocket, restFallbackAfter: 100 });
  c.connect();
  const m = await c.send({ to: bob.username, content: 'over rest', client_id: 'fixed-client-id-1' });
  assert.equal(m.content, 'over rest');
  assert.equal(m.client_id, 'fixed-client-id-1');
  // The same client_id again returns the same stored message.
  const again = await c.send({ to: bob.username, content: 'over rest', client_id: 'fixed-client-id-1' });
  assert.equal(again.id, m.id);
  const hist = await server.api('GET', `/api/messages?with=${bob.username}&limit=100`, { token: alice.token });
  assert.equal(hist.messages.filter((x) => x.content === 'over rest').length, 1);
  c.close();
});

test('markRead acks with the conversation; the sender and the reader\'s other client get the receipt; edits and deletions arrive once', async () => {
  const alice = await server.user('alice');
  const bob = await server.user('bob');
  const a = client({ token: alice.token, WebSocket: WS });
  const a2 = client({ token: alice.token, WebSocket: WS });
  const b = client({ token: bob.token, WebSocket: WS });
  const events = (c) => {
    const got = [];
    for (const type of ['receipt', 'message.updated', 'message.deleted']) c.on(type, (d) => got.push({ type, d }));
    return got;
  };
  const gotA2 = events(a2.c);
  const gotB = events(b.c);
  for (const x of [a, a2, b]) x.c.connect();
  for (const x of [a, a2, b]) await open(x.c);
  const m = await b.c.send({ to: alice.username, content: 'read me' });
  await waitFor(() => a.got.messages.some((x) => x.id === m.id), 5000, 'message to alice');
  const me = await server.api('GET', '/api/users/me', { token: alice.token });
  const bobID = m.from_id;

  const conv = await a.c.markRead(bobID, m.id);
  assert.equal(conv.id, bobID);
  assert.equal(conv.unread, 0);
  assert.equal(conv.read_up_to, m.id);
  await waitFor(() => gotB.some((e) => e.type === 'receipt') && gotA2.some((e) => e.type === 'receipt'), 5000, 'receipts');
  assert.deepEqual(gotB.find((e) => e.type === 'receipt').d, { conversation: me.id, user_id: me.id, username: alice.username, read_up_to: m.id });
  assert.deepEqual(gotA2.find((e) => e.type === 'receipt').d, { conversation: bobID, user_id: me.id, username: alice.username, read_up_to: m.id });
  // A marker that would move backwards is refused as a no-op: same conversation, no receipt.
  const again = await a.c.markRead(bobID, m.id);
  assert.equal(again.read_up_to, m.id);
  await assert.rejects(a.c.markRead(bobID, '00000000-0000-7000-8000-000000000000'), (e) => e.code === 'not_found');

  await server.api('PATCH', `/api/messages/${m.id}`, { token: bob.token, body: { content: 'read me, edited' } });
  await server.api('DELETE', `/api/messages/${m.id}`, { token: bob.token });
  await waitFor(() => gotA2.some((e) => e.type === 'message.deleted'), 5000, 'message.deleted');
  // After a reconnection GET /api/sync returns the same events: they are not delivered twice.
  const synced = new Promise((r) => a2.c.on('synced', r));
  a2.c._ws.close(4004, 'resync');
  await synced;
  const updated = gotA2.filter((e) => e.type === 'message.updated');
  assert.equal(updated.length, 1);
  assert.equal(updated[0].d.content, 'read me, edited');
  assert.ok(updated[0].d.edited_at);
  const deleted = gotA2.filter((e) => e.type === 'message.deleted');
  assert.equal(deleted.length, 1);
  assert.equal(deleted[0].d.deleted, true);
  assert.equal(deleted[0].d.content, '');
  assert.equal(gotA2.filter((e) => e.type === 'receipt').length, 1);
  for (const x of [a, a2, b]) x.c.close();
});

test('markRead goes through PUT /api/conversations/{id}/read while the socket is down', async () => {
  const alice = await server.user('alice');
  const bob = await server.user('bob');
  class DeadSocket {
    addEventListener() {}
    close() {}
  }
  const { c } = client({ token: alice.token, WebSocket: DeadSocket });
  c.connect();
  const m = await server.api('POST', '/api/messages', { token: bob.token, body: { to: alice.username, content: 'over rest', type: 'chat' } });
  const conv = await c.markRead(m.from_id, m.id);
  assert.equal(conv.read_up_to, m.id);
  assert.equal(conv.unread, 0);
  const list = await server.api('GET', '/api/conversations', { token: alice.token });
  assert.equal(list.conversations[0].unread, 0);
  c.close();
});
