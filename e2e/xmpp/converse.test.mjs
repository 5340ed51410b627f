// converse.js, a browser XMPP client that is not ours, in Debian's chromium
// against the XMPP WebSocket endpoint (/xmpp-websocket, RFC 7395) of the
// server e2e/run.sh started: it logs in with a password, chats with a user of
// the Aoba SPA (served by the same server at /) and both see each other's
// messages live. converse.js comes from its npm package; a static server of
// this test serves its dist files and the page that configures it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { readFile } from 'node:fs/promises';
import { extname, join, normalize, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { launch, messageIn, openUser, register, rest, send, shot, stepper, suffix, WAIT } from '../browser.mjs';
import { DOMAIN, PASSWORD, poll, registerUser, WS_XMPP } from './xmpp.mjs';

// The dist directory of the converse.js package of e2e/package.json (its exports hide package.json).
const DIST = fileURLToPath(new URL('../node_modules/converse.js/dist', import.meta.url));
const TYPES = {
  '.html': 'text/html; charset=utf-8', '.js': 'text/javascript', '.css': 'text/css', '.json': 'application/json',
  '.map': 'application/json', '.wasm': 'application/wasm', '.svg': 'image/svg+xml', '.png': 'image/png',
  '.woff': 'font/woff', '.woff2': 'font/woff2', '.ttf': 'font/ttf', '.mp3': 'audio/mpeg', '.ogg': 'audio/ogg',
};

/**
 * page is the converse.js page for jid (converse.min.js is an ES module that sets window.converse; module
 * scripts run in order): a test plugin exposes the API as window.capi.
 */
function page(jid) {
  const settings = {
    websocket_url: WS_XMPP,
    jid,
    password: PASSWORD,
    auto_login: true,
    auto_reconnect: false,
    discover_connection_methods: false,
    view_mode: 'fullscreen',
    assets_path: '/dist/',
    play_sounds: false,
    show_desktop_notifications: false,
    whitelisted_plugins: ['aoba-test'],
    loglevel: process.env.CONVERSE_LOGLEVEL || 'info',
  };
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>converse.js against Aoba</title>
<link rel="stylesheet" href="/dist/converse.min.css">
<script type="module" src="/dist/converse.min.js"></script></head>
<body class="converse-fullscreen">
<script type="module">
converse.plugins.add('aoba-test', { initialize() { window.capi = this._converse.api; } });
converse.initialize(${JSON.stringify(settings)});
</script></body></html>`;
}

/** serve starts the static server of the converse page and dist files on 127.0.0.1. */
function serve(jid) {
  const server = createServer(async (req, res) => {
    const path = decodeURIComponent(new URL(req.url, 'http://x').pathname);
    try {
      if (path === '/favicon.ico') {
        res.writeHead(204).end();
        return;
      }
      if (path === '/' || path === '/index.html') {
        res.writeHead(200, { 'Content-Type': TYPES['.html'] }).end(page(jid));
        return;
      }
      const file = normalize(join(DIST, path.replace(/^\/dist\//, '/')));
      if (!path.startsWith('/dist/') || !file.startsWith(DIST + sep)) throw Object.assign(new Error('outside'), { code: 'ENOENT' });
      const body = await readFile(file);
      res.writeHead(200, { 'Content-Type': TYPES[extname(file)] || 'application/octet-stream' }).end(body);
    } catch (err) {
      res.writeHead(err.code === 'ENOENT' || err.code === 'EISDIR' ? 404 : 500).end();
    }
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

test('converse.js in chromium chats over /xmpp-websocket with a user of the Aoba SPA', { timeout: 150000 }, async (t) => {
  const alice = await registerUser('cvalice'); // converse.js user, signed up over REST
  const bob = `cvbob_${suffix}`; // SPA user
  const static_ = await serve(alice.jid);
  const browser = await launch();
  let A;
  let B;
  const step = stepper(t, () => [A, B]);
  try {
    A = await openUser(browser, 'converse', { width: 1280, height: 800 });
    B = await openUser(browser, 'spa', { width: 1280, height: 800 });
    // converse.js logs what the server refuses (unimplemented XEPs) as console errors: kept for a failure's
    // report, not asserted on. The SPA must stay clean.
    const converseLog = [];
    A.page.on('console', (msg) => converseLog.push(`${msg.type()}: ${msg.text()}`));
    // The tests talk to 127.0.0.1 only: whatever converse.js would fetch from elsewhere is refused and noted.
    await A.context.route((url) => url.hostname !== '127.0.0.1', (route) => {
      converseLog.push(`refused request to ${route.request().url()}`);
      return route.abort('blockedbyclient');
    });

    await step('the SPA user signs up', async () => {
      await register(B.page, bob);
    });

    const { id: bobID } = await rest('GET', `/api/users/${bob}`, { token: alice.token });
    const bobJID = `${bobID}@${DOMAIN}`;

    // converseStep is a step whose failure reports the end of converse.js's console (CONVERSE_LOGLEVEL=debug
    // adds every stanza).
    const converseStep = (name, fn) => step(name, async () => {
      try {
        await fn();
      } catch (err) {
        err.message += `\nconverse.js console:\n${converseLog.slice(-60).join('\n')}`;
        throw err;
      }
    });
    // inPage evaluates fn in the converse.js page, bounded by WAIT (page.evaluate itself waits forever).
    const inPage = (what, fn, arg) => Promise.race([
      A.page.evaluate(fn, arg),
      new Promise((_, reject) => setTimeout(() => reject(new Error(`${what}: no answer within ${WAIT} ms`)), WAIT)),
    ]);

    await converseStep('converse.js logs in over the XMPP WebSocket with a password', async () => {
      await A.page.goto(`http://127.0.0.1:${static_.address().port}/`);
      await A.page.waitForFunction(() => window.capi?.connection.connected() && window.capi.connection.authenticated(),
        null, { timeout: WAIT });
      const bound = await inPage('the bound JID', () => window.capi.connection.get().jid);
      assert.equal(bound.split('/')[0], alice.jid);
      await shot(A.page, 'xmpp-converse-01-logged-in');
    });

    await converseStep('converse.js sends bob a message, which the SPA shows live', async () => {
      // bob is outside alice's roster: converse.js 14 opens such a chat only once the XEP-0191 blocklist is loaded.
      await inPage('opening the chat with bob', async (jid) => { await window.capi.chats.open(jid, {}, true); }, bobJID);
      const textarea = A.page.locator(`converse-chat[jid="${bobJID}"] textarea.chat-textarea`);
      await textarea.waitFor();
      await textarea.fill('Hello Bob, from converse.js');
      await textarea.press('Enter');
      await A.page.locator('.chat-msg__text', { hasText: 'Hello Bob, from converse.js' }).waitFor();

      const item = B.page.locator(`#conversation-list a.conv:has-text("${alice.name}")`);
      await item.waitFor();
      await item.click();
      await messageIn(B.page, 'Hello Bob, from converse.js');
      await shot(B.page, 'xmpp-converse-02-spa-received');
    });

    await converseStep('the SPA user replies and converse.js shows it', async () => {
      await send(B.page, 'Hi Alice, from the Aoba SPA');
      await A.page.locator(`converse-chat[jid="${bobJID}"] .chat-msg__text`, { hasText: 'Hi Alice, from the Aoba SPA' }).waitFor();
      await shot(A.page, 'xmpp-converse-03-reply');
    });

    await converseStep('converse.js adds bob to its roster (roster set, presence subscription)', async () => {
      await inPage('adding bob to the roster', async (attrs) => { await window.capi.contacts.add(attrs); },
        { jid: bobJID, name: bob });
      // The roster push and the <presence type='subscribed'/> arrive after the roster set's result.
      let sub;
      await poll(async () => {
        sub = await inPage('bob in the roster', async (jid) => (await window.capi.contacts.get(jid))?.get('subscription'), bobJID);
        return ['both', 'to'].includes(sub);
      }, () => `bob's subscription in converse.js's roster becomes both or to (last: ${sub})`);
    });

    await step('no console or page errors in the SPA', async () => {
      assert.deepEqual(B.errors, []);
    });
  } finally {
    await browser.close().catch(() => {});
    static_.close();
  }
});
