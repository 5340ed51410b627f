// Test helpers: build the real server binary from this repository, run it on
// a free 127.0.0.1 port with a temp data directory, and a few REST calls.
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, openSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');

function freePort() {
  return new Promise((res, rej) => {
    const s = createServer();
    s.on('error', rej);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => res(port));
    });
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Server runs one aoba binary; restart keeps its port and data dir. */
export class Server {
  async start() {
    this.dir = mkdtempSync(join(tmpdir(), 'aoba-sdk-'));
    this.bin = join(this.dir, 'aoba');
    execFileSync('go', ['build', '-o', this.bin, './cmd/aoba'], {
      cwd: ROOT,
      stdio: ['ignore', 'inherit', 'inherit'],
      env: { ...process.env, GOTOOLCHAIN: process.env.GOTOOLCHAIN || 'go1.27.3' },
    });
    this.port = await freePort();
    this.url = `http://127.0.0.1:${this.port}`;
    await this.spawn();
  }

  async spawn() {
    const log = openSync(join(this.dir, 'server.log'), 'a');
    this.proc = spawn(this.bin, [], {
      env: {
        PATH: process.env.PATH,
        HOME: process.env.HOME || this.dir,
        AOBA_ADDR: `127.0.0.1:${this.port}`,
        AOBA_DATA_DIR: join(this.dir, 'data'),
        AOBA_ARGON2_MEMORY_KIB: '64',
        AOBA_ARGON2_ITERATIONS: '1',
        AOBA_RATE_STANDARD: '100000',
        AOBA_RATE_BATCH: '100000',
        AOBA_LOG_LEVEL: 'warn',
      },
      stdio: ['ignore', log, log],
    });
    const exited = new Promise((r) => this.proc.once('exit', r));
    this.exited = exited;
    for (let i = 0; i < 150; i++) {
      if (this.proc.exitCode !== null) throw new Error(`server exited (${this.proc.exitCode}); see ${this.dir}/server.log`);
      try {
        const r = await fetch(`${this.url}/health`);
        if (r.ok) return;
      } catch {
        /* not yet */
      }
      await sleep(100);
    }
    throw new Error('server not ready within 15 s');
  }

  /** kill9 SIGKILLs the server and waits for it to exit. */
  async kill9() {
    this.proc.kill('SIGKILL');
    await this.exited;
  }

  async stop() {
    if (this.proc && this.proc.exitCode === null && this.proc.signalCode === null) {
      this.proc.kill('SIGTERM');
      const t = setTimeout(() => this.proc.kill('SIGKILL'), 5000);
      await this.exited;
      clearTimeout(t);
    }
    if (this.dir) rmSync(this.dir, { recursive: true, force: true });
  }

  async api(method, path, { token, body } = {}) {
    const headers = { Accept: 'application/json' };
    if (token) headers.Authorization = `Bearer ${token}`;
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    const r = await fetch(this.url + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    const text = await r.text();
    const data = text ? JSON.parse(text) : null;
    if (!r.ok) throw new Error(`${method} ${path}: ${r.status} ${text}`);
    return data;
  }

  /** user registers and logs in a user, returning {username, token}. */
  async user(prefix) {
    const username = `${prefix}${Math.random().toString(36).slice(2, 8)}`;
    const password = 'a quite long password 42';
    await this.api('POST', '/api/auth/register', { body: { username, password } });
    const { token } = await this.api('POST', '/api/auth/login', { body: { username, password } });
    return { username, token };
  }
}

export { sleep };

/** waitFor polls cond every 20 ms until it is true or ms pass. */
export async function waitFor(cond, ms = 10000, what = 'condition') {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await cond()) return;
    await sleep(20);
  }
  throw new Error(`timed out waiting for ${what}`);
}
