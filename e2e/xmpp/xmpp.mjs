// Shared helpers of the XMPP tests: Aoba users made over REST, XMPP clients
// from npm @xmpp/client (TCP with STARTTLS, or RFC 7395 WebSocket) that keep
// every stanza they receive and a transcript of the stream, and JSON-socket
// users (GET /ws).
import { client, xml } from '@xmpp/client';
import { WebSocket as WSPolyfill } from 'ws';
import { BASE, PASSWORD, rest, suffix, WAIT } from '../browser.mjs';

// @xmpp/websocket and the JSON socket use the WHATWG WebSocket, global from
// Node 22 on; older Nodes get the one of the ws package.
globalThis.WebSocket ??= WSPolyfill;

export { xml, rest, suffix, WAIT, PASSWORD, BASE };

/** XMPP_ADDR is the C2S listener (host:port) that run.sh started the server with. */
export const XMPP_ADDR = process.env.AOBA_XMPP_ADDR || '127.0.0.1:5222';
export const DOMAIN = process.env.AOBA_DOMAIN || 'localhost';
export const MUC = `conference.${DOMAIN}`;
export const WS_XMPP = `${BASE.replace(/^http/, 'ws')}/xmpp-websocket`;
export const TRANSPORTS = ['tcp', 'websocket'];

export const NS = {
  roster: 'jabber:iq:roster',
  muc: 'http://jabber.org/protocol/muc',
  mucUser: 'http://jabber.org/protocol/muc#user',
  discoItems: 'http://jabber.org/protocol/disco#items',
  mam: 'urn:xmpp:mam:2',
  rsm: 'http://jabber.org/protocol/rsm',
  data: 'jabber:x:data',
  forward: 'urn:xmpp:forward:0',
  delay: 'urn:xmpp:delay',
  carbons: 'urn:xmpp:carbons:2',
  sid: 'urn:xmpp:sid:0',
  stanzas: 'urn:ietf:params:xml:ns:xmpp-stanzas',
  sasl: 'urn:ietf:params:xml:ns:xmpp-sasl',
  tls: 'urn:ietf:params:xml:ns:xmpp-tls',
};

let seq = 0;

/** registerUser signs a fresh account up over REST and logs it in: {id, name, token, jid}. */
export async function registerUser(prefix) {
  const name = `${prefix}_${suffix}_${++seq}`;
  const u = await rest('POST', '/api/auth/register', { body: { username: name, password: PASSWORD }, want: 201 });
  const { token } = await rest('POST', '/api/auth/login', { body: { username: name, password: PASSWORD } });
  return { id: u.id, name, token, jid: `${u.id}@${DOMAIN}` };
}

/** sendREST sends content from user to `to` (a username or a group id) and returns the stored message. */
export function sendREST(user, to, content, type = 'chat') {
  return rest('POST', '/api/messages', { token: user.token, body: { to, content, type }, want: 201 });
}

/** history returns user's history with `with` (username or group id), newest first. */
export async function history(user, withWhom) {
  const h = await rest('GET', `/api/messages?limit=100&with=${encodeURIComponent(withWhom)}`, { token: user.token });
  return h.messages;
}

// SASL mechanisms @xmpp/client lacks, registered into its saslmechanisms
// factory. The "password" credential carries the Aoba session token.

/** OAUTHBEARER (RFC 7628): the GS2 header then auth=Bearer; after an error challenge, the dummy \x01. */
class OAuthBearer {
  name = 'OAUTHBEARER';
  clientFirst = true;
  failed = false;
  response(cred) {
    return this.failed ? '\x01' : `n,,\x01auth=Bearer ${cred.password}\x01\x01`;
  }
  challenge() {
    this.failed = true;
    return this;
  }
}

/** X-OAUTH2 (Google's): like PLAIN, \0<username>\0<token>. */
class XOAuth2 {
  name = 'X-OAUTH2';
  clientFirst = true;
  response(cred) {
    return `\0${cred.username}\0${cred.password}`;
  }
  challenge() {
    return this;
  }
}

/** bare returns the bare JID of a full or bare JID string. */
export function bare(j) {
  return (j || '').split('/')[0];
}

/** Session bundles what one test opens, closes it all, and reports the transcripts of a failing test. */
export class Session {
  clients = [];
  sockets = [];

  /**
   * xmpp connects an XMPP client for user over transport and waits until it is online.
   * opts: mechanism (PLAIN, OAUTHBEARER or X-OAUTH2), authcid (default the username),
   * secret (default the password; the token for the token mechanisms), resource.
   */
  async xmpp(user, transport, opts = {}) {
    const c = new XMPPClient(user, transport, opts);
    this.clients.push(c);
    await c.start();
    return c;
  }

  /** json opens user's JSON socket (GET /ws?token=) and waits for its hello. */
  async json(user) {
    const s = new JSONSocket(user);
    this.sockets.push(s);
    await s.open();
    return s;
  }

  transcripts() {
    return [...this.clients.map((c) => c.transcript()), ...this.sockets.map((s) => s.transcript())].join('\n');
  }

  async close() {
    await Promise.all(this.clients.map((c) => c.stop()));
    await Promise.all(this.sockets.map((s) => s.close()));
  }
}

/**
 * scenario returns test bodies that get a fresh Session, close it at the end,
 * and add every client's transcript to the failure.
 */
export function scenario(fn) {
  return async (t) => {
    const s = new Session();
    try {
      await fn(s, t);
    } catch (err) {
      err.message += `\n--- transcripts ---\n${s.transcripts()}`;
      throw err;
    } finally {
      await s.close();
    }
  };
}

/** waiter implements "wait until one of the received items matches" over an inbox. */
class Inbox {
  items = [];
  seen = [];
  waiters = [];

  push(item) {
    this.seen.push(item);
    for (const w of this.waiters) {
      if (w.pred(item)) {
        this.waiters.splice(this.waiters.indexOf(w), 1);
        w.resolve(item);
        return;
      }
    }
    this.items.push(item);
  }

  /** take resolves with the first unconsumed item matching pred, waiting at most ms. */
  take(pred, what, ms, describe) {
    const i = this.items.findIndex(pred);
    if (i >= 0) return Promise.resolve(this.items.splice(i, 1)[0]);
    return new Promise((resolve, reject) => {
      const w = { pred, resolve: (x) => { clearTimeout(w.timer); resolve(x); } };
      w.timer = setTimeout(() => {
        this.waiters.splice(this.waiters.indexOf(w), 1);
        reject(new Error(`${describe()}: nothing matching ${what} within ${ms} ms`));
      }, ms);
      this.waiters.push(w);
    });
  }

  /** takeAll removes and returns every unconsumed item matching pred. */
  takeAll(pred) {
    const out = this.items.filter(pred);
    this.items = this.items.filter((x) => !pred(x));
    return out;
  }
}

export class XMPPClient {
  constructor(user, transport, { mechanism = 'PLAIN', authcid, secret, resource } = {}) {
    this.user = user;
    this.transport = transport;
    this.mechanism = mechanism;
    this.label = `${user.name}/${resource || '(server-chosen)'} over ${transport} (${mechanism})`;
    this.log = [];
    this.features = [];
    this.inbox = new Inbox();
    this.errors = [];
    const service = transport === 'tcp' ? `xmpp://${XMPP_ADDR}` : WS_XMPP;
    const username = authcid ?? user.name;
    const password = secret ?? PASSWORD;
    const x = client({
      service,
      domain: DOMAIN,
      resource,
      // Pick the mechanism under test ourselves: @xmpp/client would refuse
      // PLAIN on a stream it does not consider secure and prefers SCRAM.
      credentials: async (authenticate) => authenticate({ username, password }, mechanism),
    });
    x.reconnect.stop(); // a dropped stream must fail the test, not be hidden
    x.saslFactory.use('OAUTHBEARER', OAuthBearer);
    x.saslFactory.use('X-OAUTH2', XOAuth2);
    // Acknowledge roster pushes (RFC 6121 2.1.6); they also land in the inbox.
    x.iqCallee.set(NS.roster, 'query', () => ({}));
    x.on('send', (el) => this.log.push(`C: ${el}`));
    x.on('element', (el) => {
      this.log.push(`S: ${el}`);
      if (el.is('features', 'http://etherx.jabber.org/streams')) this.features.push(el);
    });
    x.on('stanza', (el) => this.inbox.push(el));
    x.on('error', (err) => {
      this.errors.push(err);
      this.log.push(`error: ${err.condition || ''} ${err.message}`);
    });
    this.x = x;
  }

  async start() {
    this.log.push(`-- connecting ${this.label}`);
    const address = await this.x.start();
    this.jid = address.toString();
    this.label = `${this.user.name} as ${this.jid} over ${this.transport} (${this.mechanism})`;
    return address;
  }

  async stop() {
    if (this.x.status === 'offline') return;
    try {
      await Promise.race([this.x.stop().catch(() => {}), new Promise((r) => setTimeout(r, 3000))]);
    } catch {
      // already gone
    }
  }

  send(el) {
    return this.x.send(el);
  }

  /** iq sends an iq and resolves with the result, or rejects with a StanzaError. */
  iq(type, to, ...children) {
    const attrs = { type };
    if (to) attrs.to = to;
    return this.x.iqCaller.request(xml('iq', attrs, ...children), WAIT);
  }

  /** wait resolves with the first received stanza matching pred that no earlier wait took. */
  wait(pred, what, ms = WAIT) {
    return this.inbox.take(pred, what, ms, () => `${this.label}`);
  }

  /** waitMessage waits for a <message> whose body is body (and matching more, if given). */
  waitMessage(body, more = () => true, ms = WAIT) {
    return this.wait((el) => el.is('message') && el.getChildText('body') === body && more(el), `<message> with body "${body}"`, ms);
  }

  /** waitPresence waits for a <presence> from the bare or full JID `from` with the given type (undefined = available). */
  waitPresence(from, type, ms = WAIT) {
    return this.wait(
      (el) => el.is('presence') && (el.attrs.from === from || bare(el.attrs.from) === from) && el.attrs.type === type,
      `<presence from='${from}'${type ? ` type='${type}'` : ''}>`, ms);
  }

  transcript(lines = 60) {
    const tail = this.log.slice(-lines);
    const cut = this.log.length - tail.length;
    return `[${this.label}]${cut ? ` (${cut} earlier lines cut)` : ''}\n  ${tail.join('\n  ')}`;
  }
}

/** JSONSocket is an Aoba JSON WebSocket (docs/protocol.md) of one user. */
export class JSONSocket {
  constructor(user) {
    this.user = user;
    this.inbox = new Inbox();
    this.log = [];
    this.nextID = 0;
  }

  open() {
    const url = `${BASE.replace(/^http/, 'ws')}/ws?token=${encodeURIComponent(this.user.token)}`;
    this.ws = new WebSocket(url);
    this.closed = new Promise((resolve) => this.ws.addEventListener('close', resolve));
    this.ws.addEventListener('message', (ev) => {
      this.log.push(`S: ${ev.data}`);
      this.inbox.push(JSON.parse(ev.data));
    });
    this.ws.addEventListener('error', (ev) => this.log.push(`error: ${ev.message || ev.type}`));
    return this.frame((f) => f.type === 'hello', 'hello');
  }

  /** request sends a frame with a fresh id and resolves with its ack data; it throws on an error reply. */
  async request(type, data) {
    const id = `r${++this.nextID}`;
    const text = JSON.stringify({ type, id, data });
    this.log.push(`C: ${text}`);
    this.ws.send(text);
    const reply = await this.frame((f) => f.id === id, `reply to ${type} ${id}`);
    if (reply.type === 'error') throw new Error(`${type}: ${JSON.stringify(reply.data)}`);
    return reply.data;
  }

  /** frame waits for a received frame matching pred. */
  frame(pred, what, ms = WAIT) {
    return this.inbox.take(pred, what, ms, () => `JSON socket of ${this.user.name}`);
  }

  /** message waits for a `message` frame with the given content. */
  message(content, ms = WAIT) {
    return this.frame((f) => f.type === 'message' && f.data.content === content, `message frame "${content}"`, ms)
      .then((f) => f.data);
  }

  /** presence waits for a `presence` frame about userId with status. */
  presence(userId, status, ms = WAIT) {
    return this.frame((f) => f.type === 'presence' && f.data.userId === userId && f.data.status === status,
      `presence frame ${userId} ${status}`, ms).then((f) => f.data);
  }

  close() {
    if (this.ws && this.ws.readyState <= 1) this.ws.close();
    return Promise.race([this.closed, new Promise((r) => setTimeout(r, 3000))]);
  }

  transcript(lines = 40) {
    return `[JSON socket of ${this.user.name}]\n  ${this.log.slice(-lines).join('\n  ')}`;
  }
}

/** chat builds a <message type='chat'> to `to` with body (and an id). */
export function chat(to, body, id) {
  return xml('message', { type: 'chat', to, ...(id && { id }) }, xml('body', {}, body));
}

/** poll calls fn until it returns a truthy value, at most ms; it returns that value or throws what (a string, or a function giving it). */
export async function poll(fn, what, ms = WAIT) {
  const end = Date.now() + ms;
  let last;
  for (;;) {
    last = await fn();
    if (last) return last;
    if (Date.now() > end) throw new Error(`${typeof what === 'function' ? what() : what}: not true within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 200));
  }
}
