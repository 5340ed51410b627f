// Aoba JavaScript client: one WebSocket to /ws kept open with jittered
// exponential backoff, catch-up through GET /api/sync after every
// reconnection, de-duplication by id, and idempotent sends (client_id).
// Runs in browsers and in Node 20+ (pass a WebSocket implementation there).
// No dependencies.

/**
 * @typedef {Object} Message
 * @property {string} id
 * @property {string} from_id
 * @property {string} to_id
 * @property {string} from
 * @property {string} to
 * @property {string} content
 * @property {'chat'|'groupchat'} type
 * @property {string} timestamp
 * @property {string} status
 * @property {string} [client_id]
 * @property {string} [edited_at]
 * @property {boolean} [deleted]
 */

/**
 * @typedef {Object} BackoffOptions
 * @property {number} [min=500] first delay in ms
 * @property {number} [max=30000] largest delay in ms
 * @property {number} [factor=2] growth per failed attempt
 * @property {number} [jitter=0.5] fraction of each delay drawn at random (0: none, 1: full jitter)
 * @property {number} [stableAfter=10000] ms a socket must stay open for the attempt count to reset
 */

/**
 * @typedef {Object} AobaClientOptions
 * @property {string} [baseUrl] server origin (scheme, host and port); defaults to the page's origin in a browser
 * @property {string} [token] session token (from POST /api/auth/login): REST calls send it as a Bearer header, the socket opens with a ticket
 * @property {() => Promise<string>} [getTicket] returns a fresh ws-ticket; called before every (re)connect; throw an error with status 401 to stop
 * @property {'ticket'|'query'} [socketAuth='ticket'] with a token: fetch a ticket (POST /api/auth/ws-ticket) before each connect, or put the token in ?token=
 * @property {any} [WebSocket] WebSocket constructor (default globalThis.WebSocket; in Node 20 pass the `ws` package's)
 * @property {typeof fetch} [fetch] fetch implementation (default globalThis.fetch)
 * @property {BackoffOptions} [backoff]
 * @property {string} [since] sync cursor to resume from (e.g. `client.cursor` saved by an earlier run); without it the first hello's cursor is used
 * @property {number} [dedupeSize=5000] how many recent ids are remembered to drop duplicates
 * @property {number} [restFallbackAfter=10000] ms the socket may be down before pending sends go through POST /api/messages (same client_id); 0 disables
 * @property {number} [pongTimeout=10000] ms to wait for a pong before the socket is taken for dead and reopened
 * @property {number} [syncLimit=500] page size of GET /api/sync
 */

/**
 * @typedef {Object} StateEvent
 * @property {'connecting'|'open'|'closed'|'stopped'} state
 * @property {number} [code] close code that caused the change
 * @property {string} [reason] for stopped: 'closed' (close()), 'revoked' (4001), 'policy' (1008), 'replaced' (4005), 'unauthorized' (401)
 * @property {number} [delay] for closed: ms until the next attempt
 */

/** Close codes of the Aoba socket. */
export const CLOSE = Object.freeze({
  NORMAL: 1000,
  GOING_AWAY: 1001,
  ABNORMAL: 1006,
  INVALID_PAYLOAD: 1007,
  POLICY: 1008,
  TOO_LARGE: 1009,
  REVOKED: 4001,
  TOO_SLOW: 4002,
  IDLE: 4003,
  RESYNC: 4004,
  TOO_MANY_SOCKETS: 4005,
});

// Codes after which reconnecting as is cannot help.
const STOP_CODES = new Map([
  [CLOSE.REVOKED, 'revoked'],
  [CLOSE.POLICY, 'policy'],
  [CLOSE.TOO_MANY_SOCKETS, 'replaced'],
  [CLOSE.INVALID_PAYLOAD, 'policy'],
  [CLOSE.TOO_LARGE, 'policy'],
]);

const EVENT_MATCH_WINDOW = 30000; // ms a live event and its sync copy are matched by content
const LIVE_BUFFER_MAX = 10000;

/** AobaError is a failed request or send: status is the HTTP status (0: unreachable), code the API's error code. */
export class AobaError extends Error {
  /**
   * @param {string} message
   * @param {{status?: number, code?: string, body?: any}} [info]
   */
  constructor(message, info = {}) {
    super(message);
    this.name = 'AobaError';
    /** @type {number} */
    this.status = info.status || 0;
    /** @type {string|undefined} */
    this.code = info.code;
    this.body = info.body;
  }
}

function uuid() {
  const c = globalThis.crypto;
  if (c && typeof c.randomUUID === 'function') return c.randomUUID();
  // Insecure contexts (plain http on a LAN host) lack randomUUID.
  const b = new Uint8Array(16);
  c.getRandomValues(b);
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const h = [...b].map((x) => x.toString(16).padStart(2, '0')).join('');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/** A set that forgets its oldest entries past max. */
class RecentSet {
  constructor(max) {
    this.max = max;
    this.set = new Set();
  }

  has(k) {
    return this.set.has(k);
  }

  add(k) {
    this.set.delete(k);
    this.set.add(k);
    while (this.set.size > this.max) this.set.delete(this.set.values().next().value);
  }
}

function messageKey(m) {
  return `m:${m.id}:${m.edited_at || ''}:${m.deleted ? 1 : 0}`;
}

/**
 * AobaClient keeps one socket open until close(), delivers every message and
 * event once, in order, whether it came live or through GET /api/sync, and
 * sends messages idempotently.
 *
 * Events (subscribe with on): 'message' (Message), 'message.updated'
 * (Message), 'message.deleted' (Message), 'receipt' ({conversation, user_id,
 * username, read_up_to}), 'block' ({event, user_id, username}), 'invitation'
 * (Invitation), 'group' ({event, group_id, ...}), 'presence', 'typing',
 * 'state' (StateEvent), 'hello' (hello data), 'error' (Error), 'synced'
 * ({cursor}).
 */
export class AobaClient {
  /** @param {AobaClientOptions} [opts] */
  constructor(opts = {}) {
    const loc = globalThis.location;
    this.baseUrl = (opts.baseUrl || (loc && loc.origin) || '').replace(/\/+$/, '');
    this.token = opts.token || null;
    this.getTicket = opts.getTicket || null;
    this.socketAuth = opts.socketAuth || 'ticket';
    this.WebSocket = opts.WebSocket || globalThis.WebSocket;
    this.fetch = opts.fetch || (globalThis.fetch && globalThis.fetch.bind(globalThis));
    if (!this.WebSocket) throw new TypeError('AobaClient: no WebSocket implementation; pass the `WebSocket` option');
    if (!this.fetch) throw new TypeError('AobaClient: no fetch implementation; pass the `fetch` option');
    const b = opts.backoff || {};
    this.backoff = {
      min: b.min ?? 500,
      max: b.max ?? 30000,
      factor: b.factor ?? 2,
      jitter: b.jitter ?? 0.5,
      stableAfter: b.stableAfter ?? 10000,
    };
    this.restFallbackAfter = opts.restFallbackAfter ?? 10000;
    this.pongTimeout = opts.pongTimeout ?? 10000;
    this.syncLimit = opts.syncLimit ?? 500;
    this.dedupeSize = opts.dedupeSize ?? 5000;

    /** @type {string|null} the sync cursor: everything up to it has been delivered */
    this.cursor = opts.since || null;
    /** @type {StateEvent['state']} */
    this.state = 'closed';
    /** @type {string|null} session id of the current socket's hello */
    this.sessionId = null;

    this._listeners = new Map();
    this._seen = new RecentSet(this.dedupeSize);
    this._eventKeys = []; // {key, at, src} of events delivered recently, matched live against sync by content
    this._ws = null;
    this._started = false;
    this._attempt = 0;
    this._timers = new Set();
    this._retryTimer = null;
    this._stableTimer = null;
    this._pingTimer = null;
    this._pongTimer = null;
    this._fallbackTimer = null;
    this._seq = 0;
    this._queue = []; // pending sends, in order
    this._inflight = new Map(); // frame id -> pending send
    this._calls = new Map(); // frame id -> pending call (markRead) awaiting its ack
    this._watched = new Set();
    this._syncWs = null; // the socket whose sync pass runs
    this._retrySyncWs = null; // a socket whose failed pass waits for a retry
    this._syncAgain = false;
    this._liveBuffer = [];
    this._liveSinceSync = 0;
    this._hadHello = false;
  }

  // ------------------------------------------------------------- events

  /**
   * on registers fn for events of type and returns a function that removes it.
   * @param {'message'|'message.updated'|'message.deleted'|'receipt'|'block'|'invitation'|'group'|'presence'|'typing'|'state'|'hello'|'error'|'synced'} type
   * @param {(data: any) => void} fn
   * @returns {() => void}
   */
  on(type, fn) {
    if (!this._listeners.has(type)) this._listeners.set(type, new Set());
    this._listeners.get(type).add(fn);
    return () => this.off(type, fn);
  }

  /** off removes a listener added with on. */
  off(type, fn) {
    const s = this._listeners.get(type);
    if (s) s.delete(fn);
  }

  _emit(type, data) {
    const s = this._listeners.get(type);
    if (!s) return;
    for (const fn of [...s]) {
      try {
        fn(data);
      } catch (err) {
        if (type !== 'error') this._emit('error', err);
      }
    }
  }

  _setState(state, extra = {}) {
    const changed = this.state !== state;
    this.state = state;
    if (changed || extra.code !== undefined) this._emit('state', { state, ...extra });
  }

  // ---------------------------------------------------------- lifecycle

  /** connect starts the client; it keeps a socket open until close() or a stop code. Idempotent. */
  connect() {
    if (this._started) return;
    this._started = true;
    this._attempt = 0;
    this._open();
  }

  /** close closes the socket for good and rejects pending sends. */
  close() {
    this._stop('closed', CLOSE.NORMAL);
  }

  /** setToken replaces the token (after POST /api/auth/refresh); the open socket stays. */
  setToken(token) {
    this.token = token || null;
  }

  /** reconnectNow skips the current backoff wait (e.g. when the browser comes back online). */
  reconnectNow() {
    if (!this._started || this._ws || !this._retryTimer) return;
    clearTimeout(this._retryTimer);
    this._retryTimer = null;
    this._open();
  }

  _stop(reason, code) {
    const wasStarted = this._started;
    this._started = false;
    this._clearTimers();
    const ws = this._ws;
    this._ws = null;
    if (ws) {
      try {
        ws.close(CLOSE.NORMAL, 'bye');
      } catch {
        /* already closed */
      }
    }
    const err = new AobaError(`The client stopped (${reason}).`, { code: reason });
    for (const p of this._queue) p.reject(err);
    this._queue = [];
    this._inflight.clear();
    for (const c of this._calls.values()) c.reject(err);
    this._calls.clear();
    this._liveBuffer = [];
    if (wasStarted || this.state !== 'stopped') this._setState('stopped', { reason, code });
  }

  _clearTimers() {
    for (const t of [this._retryTimer, this._stableTimer, this._pongTimer, this._fallbackTimer]) clearTimeout(t);
    clearInterval(this._pingTimer);
    for (const t of this._timers) clearTimeout(t);
    this._timers.clear();
    this._retryTimer = this._stableTimer = this._pongTimer = this._fallbackTimer = this._pingTimer = null;
  }

  _later(fn, ms) {
    const t = setTimeout(() => {
      this._timers.delete(t);
      fn();
    }, ms);
    this._timers.add(t);
    return t;
  }

  async _socketUrl() {
    const base = this.baseUrl.replace(/^http/i, 'ws');
    if (this.getTicket) return `${base}/ws?ticket=${encodeURIComponent(await this.getTicket())}`;
    if (this.token && this.socketAuth === 'query') return `${base}/ws?token=${encodeURIComponent(this.token)}`;
    if (this.token) {
      const t = await this.request('POST', '/api/auth/ws-ticket');
      return `${base}/ws?ticket=${encodeURIComponent(t.ticket)}`;
    }
    return `${base}/ws`; // cookie mode: the browser sends auth_token
  }

  async _open() {
    if (!this._started) return;
    this._setState('connecting');
    this._armFallback();
    let url;
    try {
      url = await this._socketUrl();
    } catch (err) {
      if (!this._started) return;
      if (err && err.status === 401) {
        this._stop('unauthorized');
        return;
      }
      this._emit('error', err);
      this._retry(undefined);
      return;
    }
    if (!this._started) return;
    let ws;
    try {
      ws = new this.WebSocket(url);
    } catch (err) {
      this._emit('error', err);
      this._retry(undefined);
      return;
    }
    this._ws = ws;
    this._hadHello = false;
    ws.addEventListener('message', (ev) => {
      if (this._ws === ws) this._onFrame(ws, ev.data);
    });
    ws.addEventListener('close', (ev) => {
      if (this._ws === ws) this._onClose(ws, ev.code);
    });
    ws.addEventListener('error', () => {
      /* a close event follows */
    });
  }

  async _onClose(ws, code) {
    this._ws = null;
    clearTimeout(this._stableTimer);
    clearTimeout(this._pongTimer);
    clearInterval(this._pingTimer);
    this._liveBuffer = [];
    // Sends without an ack go back to the front of the queue, in order,
    // with their client_id: the retry returns the message first stored.
    const back = [...this._inflight.values()].filter((p) => p.via === 'ws');
    this._inflight.clear();
    for (const p of back) p.via = null;
    // Calls without a reply go through REST (they are idempotent).
    const calls = [...this._calls.values()];
    this._calls.clear();
    for (const c of calls) c.rest().then(c.resolve, c.reject);
    if (!this._started) return;
    const stop = STOP_CODES.get(code);
    if (stop) {
      this._stop(stop, code);
      return;
    }
    // A socket refused before the upgrade (401) shows up as 1006 without a
    // hello; with a cookie or a plain token, ask the API whether the session
    // is still valid. (A ticket fetch answers 401 by itself.)
    if (!this._hadHello && code === CLOSE.ABNORMAL && !this.getTicket && (!this.token || this.socketAuth === 'query')) {
      try {
        await this.request('GET', '/api/users/me');
      } catch (err) {
        if (err && err.status === 401) {
          if (this._started) this._stop('unauthorized', code);
          return;
        }
      }
      if (!this._started || this._ws) return;
    }
    this._armFallback();
    if (code === CLOSE.GOING_AWAY) this._attempt = 0; // another pod answers at once
    this._retry(code);
  }

  _retry(code) {
    if (!this._started) return;
    const { min, max, factor, jitter } = this.backoff;
    const base = Math.min(max, min * factor ** this._attempt);
    this._attempt += 1;
    const delay = Math.round(base * (1 - jitter) + Math.random() * base * jitter);
    this._setState('closed', { code, delay });
    clearTimeout(this._retryTimer);
    this._retryTimer = setTimeout(() => {
      this._retryTimer = null;
      this._open();
    }, delay);
  }

  _onHello(ws, hello) {
    this._hadHello = true;
    this.sessionId = hello.session_id;
    const first = this.cursor === null;
    if (first) this.cursor = hello.sync;
    clearTimeout(this._fallbackTimer);
    this._fallbackTimer = null;
    this._setState('open');
    this._emit('hello', hello);
    this._stableTimer = setTimeout(() => {
      this._attempt = 0;
    }, this.backoff.stableAfter);
    const every = Math.max(1, Math.min(hello.heartbeat || 25, 25)) * 1000;
    this._pingTimer = setInterval(() => this._ping(ws), every);
    if (this._watched.size) this._sendPresence('presence.subscribe', [...this._watched]);
    this._flush();
    if (!first) this._sync(ws);
  }

  _ping(ws) {
    if (this._ws !== ws) return;
    this._raw(ws, { type: 'ping', id: `p${++this._seq}` });
    if (this._pongTimer) return;
    this._pongTimer = setTimeout(() => {
      this._pongTimer = null;
      // No pong: the path is dead even if the socket looks open.
      if (this._ws === ws) {
        try {
          ws.close(CLOSE.NORMAL, 'no pong');
        } catch {
          /* closed */
        }
        this._onClose(ws, CLOSE.ABNORMAL);
      }
    }, this.pongTimeout);
  }

  _raw(ws, frame) {
    try {
      ws.send(JSON.stringify(frame));
      return true;
    } catch {
      return false;
    }
  }

  // -------------------------------------------------------------- frames

  _onFrame(ws, raw) {
    let f;
    try {
      f = JSON.parse(typeof raw === 'string' ? raw : new TextDecoder().decode(raw));
    } catch {
      return;
    }
    if (!f || typeof f.type !== 'string') return;
    switch (f.type) {
      case 'hello':
        this._onHello(ws, f.data || {});
        return;
      case 'pong':
        clearTimeout(this._pongTimer);
        this._pongTimer = null;
        return;
      case 'ack':
      case 'error': {
        const call = f.id && this._calls.get(f.id);
        if (call) {
          this._calls.delete(f.id);
          const d = f.data || {};
          if (f.type === 'ack') call.resolve(d);
          else call.reject(new AobaError(d.message || 'The server refused the request.', { code: d.code, body: d }));
          return;
        }
        const p = f.id && this._inflight.get(f.id);
        if (p) {
          this._inflight.delete(f.id);
          if (f.type === 'ack') this._sent(p, f.data);
          else this._sendFailed(p, f.data || {}, 0);
        } else if (f.type === 'error') {
          const d = f.data || {};
          this._emit('error', new AobaError(d.message || 'The server refused a frame.', { code: d.code, body: d }));
        }
        return;
      }
      case 'message':
      case 'invitation':
      case 'group':
      case 'message.updated':
      case 'message.deleted':
      case 'receipt':
      case 'block':
        // Stored for GET /api/sync as well: held during a pass, delivered once.
        if (this._syncWs === ws || this._retrySyncWs === ws) {
          if (this._liveBuffer.length < LIVE_BUFFER_MAX) this._liveBuffer.push(f);
          else this._syncAgain = true; // dropped: the next pass reads it
          return;
        }
        this._deliver(f.type, f.data, 'live');
        if (++this._liveSinceSync >= this.dedupeSize / 4) this._sync(ws); // keep the cursor close
        return;
      case 'presence':
      case 'typing':
        this._emit(f.type, f.data);
        return;
      default:
        this._emit(f.type, f.data);
    }
  }

  /** _deliver emits an item unless it was delivered already; src is 'live' or 'sync', id the sync event id. */
  _deliver(type, data, src, id) {
    if (!data) return;
    if (type === 'message') {
      const k = messageKey(data);
      if (this._seen.has(k)) return;
      this._seen.add(k);
      this._emit('message', data);
      return;
    }
    // Live event frames carry no event id: a live event and its stored
    // copy from sync are matched by type and data (the same bytes).
    if (id) {
      if (this._seen.has(`e:${id}`)) return;
      this._seen.add(`e:${id}`);
    }
    const key = `${type}:${JSON.stringify(data)}`;
    const now = Date.now();
    this._eventKeys = this._eventKeys.filter((e) => e.src === 'live' || now - e.at < EVENT_MATCH_WINDOW);
    const other = src === 'live' ? 'sync' : 'live';
    const i = this._eventKeys.findIndex((e) => e.src === other && e.key === key);
    if (i >= 0) {
      this._eventKeys.splice(i, 1);
      return;
    }
    this._eventKeys.push({ key, at: now, src });
    if (this._eventKeys.length > this.dedupeSize) this._eventKeys.shift();
    this._emit(type, data);
  }

  /**
   * _sync pages GET /api/sync from the kept cursor until more is false,
   * delivering every item, then the live frames that came meanwhile.
   */
  async _sync(ws) {
    if (this._syncWs === ws) {
      this._syncAgain = true;
      return;
    }
    // A pass of an older socket stops by itself at its next page.
    this._syncWs = ws;
    if (this._retrySyncWs === ws) this._retrySyncWs = null;
    this._syncAgain = false;
    const started = Date.now();
    try {
      do {
        this._syncAgain = false;
        for (;;) {
          const q = `since=${encodeURIComponent(this.cursor)}&limit=${this.syncLimit}`;
          const page = await this.request('GET', `/api/sync?${q}`);
          if (this._ws !== ws) return; // the next socket syncs again from the cursor
          const items = [
            ...(page.messages || []).map((m) => ({ id: m.id, type: 'message', data: m })),
            ...(page.events || []).map((e) => ({ id: e.id, type: e.type, data: e.data, ev: true })),
          ].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
          for (const it of items) this._deliver(it.type, it.data, 'sync', it.ev ? it.id : undefined);
          this.cursor = page.next;
          if (!page.more) break;
        }
        const live = this._liveBuffer;
        this._liveBuffer = [];
        for (const f of live) this._deliver(f.type, f.data, 'live');
      } while (this._syncAgain && this._ws === ws);
      this._liveSinceSync = 0;
      // Live events older than the pass cannot come again from sync.
      this._eventKeys = this._eventKeys.filter((e) => e.src === 'sync' || e.at > started - EVENT_MATCH_WINDOW);
      this._emit('synced', { cursor: this.cursor });
    } catch (err) {
      if (this._ws !== ws) return;
      this._emit('error', err);
      if (err && err.status === 401) {
        this._stop('unauthorized');
        return;
      }
      // Try again while this socket stays open; live frames stay buffered.
      this._later(() => {
        if (this._ws === ws) this._sync(ws);
      }, Math.min(this.backoff.max, 1000));
      this._syncWs = null;
      this._retrySyncWs = ws;
    } finally {
      if (this._syncWs === ws) this._syncWs = null;
    }
  }

  // --------------------------------------------------------------- sends

  /**
   * send sends a message and resolves to the stored Message. It is retried
   * after a reconnection with the same client_id until acknowledged, so it
   * is stored once; sends are written in the order they were made.
   * @param {{to: string, content: string, type?: 'chat'|'groupchat', client_id?: string}} msg
   * @returns {Promise<Message>}
   */
  send({ to, content, type = 'chat', client_id }) {
    return new Promise((resolve, reject) => {
      if (!this._started) {
        reject(new AobaError('The client is not connected: call connect() first.', { code: 'closed' }));
        return;
      }
      const p = { data: { to, content, type, client_id: client_id || uuid() }, resolve, reject, via: null, done: false };
      this._queue.push(p);
      this._flush();
      this._armFallback();
    });
  }

  _flush() {
    const ws = this._ws;
    if (!ws || this.state !== 'open') return;
    for (const p of this._queue) {
      if (p.via) continue;
      const id = `s${++this._seq}`;
      p.via = 'ws';
      this._inflight.set(id, p);
      if (!this._raw(ws, { type: 'message.send', id, data: p.data })) {
        this._inflight.delete(id);
        p.via = null;
        return;
      }
    }
  }

  _sent(p, m) {
    if (p.done) return;
    p.done = true;
    this._queue = this._queue.filter((q) => q !== p);
    if (m && m.id) this._seen.add(messageKey(m)); // not emitted again by a later sync
    p.resolve(m);
  }

  _sendFailed(p, d, status) {
    if (p.done) return;
    if (d.code === 'unavailable' || status === 503) {
      p.via = null; // retried with the next flush
      this._later(() => this._flush(), 1000);
      return;
    }
    p.done = true;
    this._queue = this._queue.filter((q) => q !== p);
    p.reject(new AobaError(d.message || 'The message was refused.', { status, code: d.code, body: d }));
  }

  /**
   * _armFallback: once the socket has been down for restFallbackAfter ms,
   * pending sends go through POST /api/messages with their client_id, one
   * at a time in order; whichever of REST and a later socket retry answers
   * first resolves the send, both with the same stored message.
   */
  _armFallback() {
    if (!this.restFallbackAfter || this._fallbackTimer || this.state === 'open' || !this._queue.length) return;
    this._fallbackTimer = setTimeout(async () => {
      this._fallbackTimer = null;
      while (this._started && this.state !== 'open') {
        const p = this._queue.find((q) => !q.via);
        if (!p) return;
        p.via = 'rest';
        try {
          this._sent(p, await this.request('POST', '/api/messages', p.data));
        } catch (err) {
          if (err.status >= 400 && err.status < 500 && err.status !== 429 && err.status !== 401) {
            this._sendFailed(p, { ...(err.body || {}), message: err.message }, err.status);
            continue;
          }
          p.via = null;
          this._armFallback();
          return;
        }
      }
    }, this.restFallbackAfter);
  }

  // --------------------------------------------------------- other frames

  /**
   * typing relays a typing state; it is dropped when the socket is not open.
   * @param {string} to username or group id
   * @param {'chat'|'groupchat'} type
   * @param {'composing'|'paused'} state
   * @returns {boolean} whether it was written
   */
  typing(to, type, state) {
    if (!this._ws || this.state !== 'open') return false;
    return this._raw(this._ws, { type: 'typing', data: { to, type, state } });
  }

  /**
   * subscribePresence watches users: a 'presence' event for each at once,
   * then one per change; the subscription is renewed on every reconnection.
   * @param {string[]} usernames
   */
  subscribePresence(usernames) {
    const fresh = usernames.filter((u) => !this._watched.has(u));
    for (const u of fresh) this._watched.add(u);
    if (fresh.length) this._sendPresence('presence.subscribe', fresh);
  }

  /** @param {string[]} usernames */
  unsubscribePresence(usernames) {
    const gone = usernames.filter((u) => this._watched.delete(u));
    if (gone.length) this._sendPresence('presence.unsubscribe', gone);
  }

  _sendPresence(type, names) {
    if (!this._ws || this.state !== 'open') return;
    for (let i = 0; i < names.length; i += 100) {
      this._raw(this._ws, { type, data: { usernames: names.slice(i, i + 100) } });
    }
  }

  /**
   * markRead moves the user's read marker in a conversation (a group id, or
   * the other user's id for a 1:1 conversation) to the message upTo and
   * resolves to the Conversation `{id, type, peer or group, last_message,
   * unread, read_up_to, updated_at}`. It goes as a `read` frame while the
   * socket is open, else (and when the socket drops before the reply)
   * through PUT /api/conversations/{id}/read: the marker never moves
   * backwards, so a repeated call changes nothing. The other participants
   * and the user's other devices get a `receipt` event when it moves.
   * @param {string} conversation
   * @param {string} upTo message id
   * @returns {Promise<any>}
   */
  markRead(conversation, upTo) {
    const rest = () => this.request('PUT', `/api/conversations/${encodeURIComponent(conversation)}/read`, { up_to: upTo });
    const ws = this._ws;
    if (!ws || this.state !== 'open') return rest();
    return new Promise((resolve, reject) => {
      const id = `r${++this._seq}`;
      this._calls.set(id, { resolve, reject, rest });
      if (!this._raw(ws, { type: 'read', id, data: { conversation, up_to: upTo } })) {
        this._calls.delete(id);
        rest().then(resolve, reject);
      }
    });
  }

  // ---------------------------------------------------------------- REST

  /**
   * request calls the REST API: JSON in and out, the token as a Bearer
   * header (else the browser's cookie). Rejects with an AobaError.
   * @param {string} method
   * @param {string} path e.g. "/api/messages?with=bob"
   * @param {any} [body]
   * @returns {Promise<any>}
   */
  async request(method, path, body) {
    const headers = { Accept: 'application/json' };
    if (this.token) headers.Authorization = `Bearer ${this.token}`;
    const init = { method, headers, credentials: 'same-origin' };
    if (body !== undefined) {
      headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    let res;
    try {
      res = await this.fetch(this.baseUrl + path, init);
    } catch (err) {
      throw new AobaError('The server cannot be reached.', { status: 0, body: err });
    }
    if (res.status === 204) return null;
    let data = null;
    try {
      data = await res.json();
    } catch {
      data = null;
    }
    if (!res.ok) {
      throw new AobaError((data && data.message) || `Request failed (${res.status}).`, {
        status: res.status,
        code: data && data.code,
        body: data,
      });
    }
    return data;
  }
}

export default AobaClient;
