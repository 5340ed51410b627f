// End-to-end test of the client's recovery paths against a running server
// (AOBA_URL): a socket closed with 4002 after frames were lost is reopened
// and the conversation caught up from history without duplicates; a
// password change ends the user's other session with 4001 and its page
// returns to the sign-in form.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BASE, PASSWORD, launch, messageIn, openUser, register, send, shot, signIn, stepper, suffix } from './browser.mjs';

const NEW_PASSWORD = 'staple-battery-horse';

test('the client recovers lost frames and obeys close codes', { timeout: 170000 }, async (t) => {
  const browser = await launch();
  const carol = `carol_${suffix}`;
  const dave = `dave_${suffix}`;
  let C;
  let D;
  let D2;
  const step = stepper(t, () => [C, D, D2]);

  // Dave's socket goes through a proxy that can swallow server frames and
  // close the page's side with a chosen code, as a slow-consumer cut would.
  const proxy = { dropping: false, pageSide: null, opened: 0 };
  try {
    C = await openUser(browser, 'carol', { width: 1024, height: 720 });
    D = await openUser(browser, 'dave', { width: 375, height: 700 });
    await D.page.routeWebSocket(/\/ws$/, (ws) => {
      proxy.opened += 1;
      proxy.pageSide = ws;
      const server = ws.connectToServer();
      ws.onMessage((m) => server.send(m));
      server.onMessage((m) => {
        if (!proxy.dropping) ws.send(m);
      });
      ws.onClose((code, reason) => server.close({ code, reason }));
      server.onClose((code, reason) => ws.close({ code, reason }));
    });

    await step('both users register', async () => {
      await register(C.page, carol);
      await register(D.page, dave);
      assert.equal(proxy.opened, 1);
    });

    await step('a conversation opens straight from its address', async () => {
      await C.page.goto(`/#/chat/d/${dave}`);
      await C.page.getByRole('heading', { name: dave }).waitFor();
      await send(C.page, 'message one');
      await D.page.locator(`#conversation-list a.conv:has-text("${carol}")`).click();
      await messageIn(D.page, 'message one');
    });

    await step('frames lost before a 4002 close are caught up once after the reconnect', async () => {
      proxy.dropping = true;
      await send(C.page, 'message two');
      await send(C.page, 'message three');
      // The frames were swallowed: Dave has not seen them.
      assert.equal(await D.page.locator('#message-list li.msg .content', { hasText: 'message two' }).count(), 0);
      proxy.dropping = false;
      proxy.pageSide.close({ code: 4002, reason: 'too slow' });
      await D.page.locator('#conn-state[data-state="offline"], #conn-state[data-state="connecting"]').first().waitFor();
      await D.page.locator('#conn-state[data-state="online"]').waitFor({ timeout: 20000 });
      assert.equal(proxy.opened, 2);
      await messageIn(D.page, 'message two');
      await messageIn(D.page, 'message three');
      await send(C.page, 'message four');
      await messageIn(D.page, 'message four');
      const texts = await D.page.locator('#message-list li.msg .content').allTextContents();
      assert.deepEqual(texts, ['message one', 'message two', 'message three', 'message four']);
      await shot(D.page, '08-caught-up-phone');
    });

    await step('a password change ends the other session with 4001', async () => {
      D2 = await openUser(browser, 'dave-2', { width: 1024, height: 720 });
      await signIn(D2.page, dave);
      await D.page.getByRole('link', { name: 'Profile' }).click();
      await D.page.getByLabel('Current password').fill(PASSWORD);
      await D.page.getByLabel('New password (8 to 128 characters)').fill(NEW_PASSWORD);
      await D.page.getByLabel('Repeat the new password').fill(NEW_PASSWORD);
      await D.page.getByRole('button', { name: 'Change password' }).click();
      await D.page.locator('#password-form .notice', { hasText: 'Password updated' }).waitFor();
      await D2.page.locator('#signin-form').waitFor({ state: 'visible' });
      await D2.page.locator('#auth-notice', { hasText: 'sign in again' }).waitFor();
      await shot(D2.page, '09-session-ended');
      // The new password works.
      await D2.page.locator('#signin-username').fill(dave);
      await D2.page.locator('#signin-password').fill(NEW_PASSWORD);
      await D2.page.getByRole('button', { name: 'Sign in', exact: true }).click();
      await D2.page.locator('#conn-state[data-state="online"]').waitFor();
    });

    await step('older history loads when scrolling back', async () => {
      const login = await fetch(`${BASE}/api/auth/login`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ username: carol, password: PASSWORD }),
        signal: AbortSignal.timeout(10000),
      });
      assert.equal(login.status, 200);
      const { token } = await login.json();
      for (let i = 1; i <= 60; i += 1) {
        const res = await fetch(`${BASE}/api/messages`, {
          method: 'POST',
          headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${token}` },
          body: JSON.stringify({ to: dave, content: `bulk ${i}`, type: 'chat' }),
          signal: AbortSignal.timeout(10000),
        });
        assert.equal(res.status, 201);
      }
      // A fresh page holds only the newest page of the conversation.
      await D2.page.reload();
      await D2.page.locator('#conn-state[data-state="online"]').waitFor();
      const item = D2.page.locator(`#conversation-list a.conv:has-text("${carol}")`);
      await item.waitFor();
      await item.click();
      await messageIn(D2.page, 'bulk 60');
      const list = D2.page.locator('#message-list li.msg');
      assert.equal(await list.count(), 50);
      await D2.page.locator('#message-list').evaluate((el) => { el.scrollTop = 0; });
      await D2.page.waitForFunction(() => document.querySelectorAll('#message-list li.msg').length === 64, null, { timeout: 15000 });
      const texts = await D2.page.locator('#message-list li.msg .content').allTextContents();
      assert.deepEqual(texts.slice(0, 5), ['message one', 'message two', 'message three', 'message four', 'bulk 1']);
      assert.equal(texts[63], 'bulk 60');
      await D2.page.locator('.older', { hasText: 'beginning of the conversation' }).waitFor();
    });

    await step('signing out returns to the sign-in form', async () => {
      await C.page.getByRole('button', { name: 'Sign out' }).click();
      await C.page.locator('#signin-form').waitFor({ state: 'visible' });
      await C.page.reload();
      await C.page.locator('#signin-form').waitFor({ state: 'visible' });
    });

    await step('no console or page errors in any context', async () => {
      assert.deepEqual([...C.errors, ...D.errors, ...(D2 ? D2.errors : [])], []);
    });
  } finally {
    await browser.close().catch(() => {});
  }
});
