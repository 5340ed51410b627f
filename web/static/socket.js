// The WebSocket channel of the contract: JSON text frames
// {type, id, data}, reconnection with backoff, request/ack matching and the
// close codes the server uses.

export const CLOSE = Object.freeze({
  NORMAL: 1000,
  GOING_AWAY: 1001,
  POLICY: 1008,
  TOO_LARGE: 1009,
  REVOKED: 4001,
  TOO_SLOW: 4002,
  IDLE: 4003,
  RESYNC: 4004, // the pod lost its broker: reconnect (default path) and catch up
});

const PING_EVERY = 25000;
const PONG_WITHIN = 10000;
const BACKOFF_MIN = 500;
const BACKOFF_MAX = 30000;

/**
 * Socket keeps one WebSocket to /ws open while started. Callbacks:
 * onState(state) with connecting, online or offline; onFrame(frame) for
 * every server frame other than ack, error-with-id and pong; onOpen(isReconnect);
 * onRevoked() for close code 4001; onRefused(code) when the server refuses
 * the socket and retrying as is would not help.
 */
export class Socket {
  constructor({ url, onState, onFrame, onOpen, onRevoked, onRefused, onClosedUnexpectedly }) {
    this.url = url;
    this.onState = onState || (() => {});
    this.onFrame = onFrame || (() => {});
    this.onOpen = onOpen || (() => {});
    this.onRevoked = onRevoked || (() => {});
    this.onRefused = onRefused || (() => {});
    this.onClosedUnexpectedly = onClosedUnexpectedly || (async () => true);
    this.ws = null;
    this.state = 'offline';
    this.started = false;
    this.attempt = 0;
    this.everOpened = false;
    this.retryTimer = null;
    this.pingTimer = null;
    this.pongTimer = null;
    this.seq = 0;
    this.pending = new Map();
  }

  /** start opens the socket and keeps it open until stop. */
  start() {
    if (this.started) return;
    this.started = true;
    this.connect();
  }

  /** stop closes the socket for good (code 1000) and rejects pending requests. */
  stop() {
    this.started = false;
    clearTimeout(this.retryTimer);
    this.stopHeartbeat();
    if (this.ws) {
      const ws = this.ws;
      this.ws = null;
      try { ws.close(CLOSE.NORMAL, 'bye'); } catch { /* already closed */ }
    }
    this.failPending('The connection was closed.');
    this.setState('offline');
  }

  /** reconnectNow skips the backoff wait (after the browser comes back online). */
  reconnectNow() {
    if (!this.started || this.ws) return;
    clearTimeout(this.retryTimer);
    this.connect();
  }

  get isOpen() {
    return !!this.ws && this.ws.readyState === WebSocket.OPEN;
  }

  setState(s) {
    if (this.state === s) return;
    this.state = s;
    this.onState(s);
  }

  connect() {
    if (!this.started) return;
    this.setState('connecting');
    let ws;
    try {
      ws = new WebSocket(this.url);
    } catch {
      this.scheduleRetry();
      return;
    }
    this.ws = ws;
    ws.addEventListener('open', () => {
      if (this.ws !== ws) return;
      const isReconnect = this.everOpened;
      this.everOpened = true;
      this.attempt = 0;
      this.setState('online');
      this.startHeartbeat();
      this.onOpen(isReconnect);
    });
    ws.addEventListener('message', (ev) => {
      if (this.ws !== ws) return;
      this.handle(ev.data);
    });
    ws.addEventListener('close', (ev) => {
      if (this.ws !== ws) return;
      this.ws = null;
      this.stopHeartbeat();
      this.failPending('The connection was lost.');
      this.closed(ev.code);
    });
  }

  async closed(code) {
    if (!this.started) return;
    this.setState('offline');
    switch (code) {
      case CLOSE.REVOKED:
        this.started = false;
        this.onRevoked();
        return;
      case CLOSE.POLICY:
        this.started = false;
        this.onRefused(code);
        return;
      case CLOSE.GOING_AWAY:
        this.attempt = 0;
        this.connect();
        return;
      default: {
        // 1006 (never opened, or cut) may hide a 401 before the upgrade:
        // the caller checks the session and says whether to go on.
        if (code === 1006 && !(await this.onClosedUnexpectedly())) {
          this.started = false;
          return;
        }
        this.scheduleRetry();
      }
    }
  }

  scheduleRetry() {
    if (!this.started) return;
    const base = Math.min(BACKOFF_MAX, BACKOFF_MIN * 2 ** this.attempt);
    this.attempt += 1;
    const delay = base / 2 + Math.random() * (base / 2);
    this.setState('offline');
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => this.connect(), delay);
  }

  startHeartbeat() {
    this.stopHeartbeat();
    this.pingTimer = setInterval(() => {
      if (!this.isOpen) return;
      this.send('ping', undefined);
      clearTimeout(this.pongTimer);
      this.pongTimer = setTimeout(() => {
        // No pong: the path is dead even if the socket looks open.
        if (this.ws) this.ws.close(CLOSE.NORMAL, 'no pong');
      }, PONG_WITHIN);
    }, PING_EVERY);
  }

  stopHeartbeat() {
    clearInterval(this.pingTimer);
    clearTimeout(this.pongTimer);
  }

  handle(text) {
    let frame;
    try {
      frame = JSON.parse(text);
    } catch {
      return;
    }
    if (!frame || typeof frame.type !== 'string') return;
    if (frame.type === 'pong') {
      clearTimeout(this.pongTimer);
      return;
    }
    if ((frame.type === 'ack' || frame.type === 'error') && frame.id && this.pending.has(frame.id)) {
      const p = this.pending.get(frame.id);
      this.pending.delete(frame.id);
      clearTimeout(p.timer);
      if (frame.type === 'ack') p.resolve(frame.data);
      else p.reject(new Error((frame.data && frame.data.message) || 'The server refused the request.'));
      return;
    }
    this.onFrame(frame);
  }

  /** send writes one frame and returns its id, or null when the socket is not open. */
  send(type, data) {
    if (!this.isOpen) return null;
    this.seq += 1;
    const id = `c${this.seq}`;
    const frame = { type, id };
    if (data !== undefined) frame.data = data;
    this.ws.send(JSON.stringify(frame));
    return id;
  }

  /** request sends a frame and resolves to the data of its ack, or rejects on an error frame, a timeout or a closed socket. */
  request(type, data, timeout = 10000) {
    return new Promise((resolve, reject) => {
      const id = this.send(type, data);
      if (!id) {
        reject(new Error('Not connected.'));
        return;
      }
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error('The server did not answer in time.'));
      }, timeout);
      this.pending.set(id, { resolve, reject, timer });
    });
  }

  failPending(text) {
    for (const p of this.pending.values()) {
      clearTimeout(p.timer);
      p.reject(new Error(text));
    }
    this.pending.clear();
  }
}
