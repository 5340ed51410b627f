// End-to-end test of conversations kept by the server against a running
// server (AOBA_URL): unread badges that two devices of one user agree on,
// read receipts ("Seen"), editing and deleting messages (a group admin
// deleting a member's), and blocking from a user's page.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PASSWORD, confirm, launch, messageIn, openUser, register, registerREST, rest, send, shot, signIn, stepper, suffix } from './browser.mjs';

// The SPA lists conversations 30 at a time (CONV_PAGE in web/static/app.js).
const CONV_PAGE = 30;

/** conv is the sidebar entry of the conversation named exactly name. */
function conv(page, name) {
  return page.locator('#conversation-list a.conv').filter({ has: page.locator(`.name:text-is("${name}")`) });
}

/** badge is the unread badge of the conversation named name, with exactly the count n when given. */
function badge(page, name, n) {
  const b = conv(page, name).locator('.unread');
  return n === undefined ? b : b.filter({ hasText: new RegExp(`^${n}$`) });
}

/** msg is the message of the open conversation whose content contains text. */
function msg(page, text) {
  return page.locator('#message-list li.msg').filter({ has: page.locator('.content', { hasText: text }) });
}

test('server-kept unread counts on two devices, receipts, edits, deletions and blocks', { timeout: 170000 }, async (t) => {
  const browser = await launch();
  const ann = `ann_${suffix}`;
  const ben = `ben_${suffix}`;
  const group = `Crew ${suffix}`;
  let A1;
  let A2;
  let B;
  const step = stepper(t, () => [A1, A2, B]);

  try {
    A1 = await openUser(browser, 'ann', { width: 1024, height: 760 });
    A2 = await openUser(browser, 'ann-2', { width: 900, height: 700 });
    B = await openUser(browser, 'ben', { width: 1024, height: 760 });

    await step('two users register and one signs in on a second device', async () => {
      await register(A1.page, ann);
      await register(B.page, ben);
      await signIn(A2.page, ann);
    });

    await step('unread badges come from the server and agree on both devices', async () => {
      await B.page.goto(`/#/chat/d/${ann}`);
      await B.page.getByRole('heading', { name: ann }).waitFor();
      await send(B.page, 'first from ben');
      await send(B.page, 'second from ben');
      await badge(A1.page, ben, 2).waitFor();
      await badge(A2.page, ben, 2).waitFor();
      // A fresh page asks the server: the count is not this browser's.
      await A2.page.reload();
      await A2.page.locator('#conn-state[data-state="online"]').waitFor();
      await badge(A2.page, ben, 2).waitFor();
      assert.equal(await A2.page.title(), '(2) Aoba');
    });

    await step('reading on one device clears the badge on the other live, and the sender sees "Seen"', async () => {
      await conv(A1.page, ben).click();
      await messageIn(A1.page, 'second from ben');
      await badge(A1.page, ben).waitFor({ state: 'detached' });
      await badge(A2.page, ben).waitFor({ state: 'detached' });
      await msg(B.page, 'second from ben').locator('.seen').waitFor();
      assert.equal(await B.page.locator('#message-list .seen').count(), 1);
      await shot(B.page, '12-seen');
    });

    await step('a new message counts on both devices; reading it on the second clears the first', async () => {
      await A1.page.getByRole('link', { name: 'Chats' }).click();
      await A1.page.locator('#main').getByRole('heading', { name: 'Conversations' }).waitFor();
      await send(B.page, 'third from ben');
      await badge(A1.page, ben, 1).waitFor();
      await badge(A2.page, ben, 1).waitFor();
      await conv(A2.page, ben).click();
      await messageIn(A2.page, 'third from ben');
      await badge(A1.page, ben).waitFor({ state: 'detached' });
      await msg(B.page, 'third from ben').locator('.seen').waitFor();
      assert.equal(await B.page.locator('#message-list .seen').count(), 1, '"Seen" moved to the newest message read');
      // A message that arrives while the conversation is open (and visible) is read at once.
      await send(B.page, 'fourth from ben');
      await messageIn(A2.page, 'fourth from ben');
      await msg(B.page, 'fourth from ben').locator('.seen').waitFor();
      await conv(A1.page, ben).locator('.preview', { hasText: 'fourth from ben' }).waitFor();
      await badge(A1.page, ben).waitFor({ state: 'detached' });
    });

    await step('the author edits and deletes messages; the peer and the other device see it live', async () => {
      await conv(A1.page, ben).click();
      await send(A1.page, 'helo wrold');
      await send(A1.page, 'delete me');
      await messageIn(B.page, 'delete me');
      // Ben may act on his own messages only.
      assert.equal(await msg(B.page, 'helo wrold').locator('button').count(), 0);
      assert.deepEqual(await msg(B.page, 'fourth from ben').locator('.msg-actions button').allTextContents(), ['Edit', 'Delete']);

      await msg(A1.page, 'helo wrold').getByRole('button', { name: 'Edit' }).click();
      await A1.page.getByLabel('Edit message').fill('hello, world');
      await A1.page.getByLabel('Edit message').press('Escape');
      await A1.page.locator('#edit-text').waitFor({ state: 'detached' });
      await msg(A1.page, 'helo wrold').waitFor();

      await msg(A1.page, 'helo wrold').getByRole('button', { name: 'Edit' }).click();
      await A1.page.getByLabel('Edit message').fill('hello, world');
      await shot(A1.page, '13-editing');
      await A1.page.getByRole('button', { name: 'Save' }).click();
      await msg(A1.page, 'hello, world').locator('.edited').waitFor();
      await msg(B.page, 'hello, world').locator('.edited').waitFor();
      await msg(A2.page, 'hello, world').locator('.edited').waitFor();
      assert.equal(await B.page.locator('#message-list .content', { hasText: 'helo wrold' }).count(), 0);

      const id = await msg(B.page, 'delete me').getAttribute('data-id');
      await msg(A1.page, 'delete me').getByRole('button', { name: 'Delete' }).click();
      await confirm(A1.page, 'Delete message');
      for (const u of [A1, A2, B]) {
        await u.page.locator(`#message-list li.msg.deleted[data-id="${id}"] .content`, { hasText: 'Message deleted' }).waitFor();
      }
      assert.equal(await B.page.locator(`#message-list li[data-id="${id}"] button`).count(), 0);
      await shot(B.page, '13-edited-and-deleted');
    });

    await step('a group admin deletes a member\'s message; a member cannot', async () => {
      await A1.page.getByRole('link', { name: 'New group' }).click();
      await A1.page.getByLabel('Group name').fill(group);
      await A1.page.getByRole('button', { name: 'Create group' }).click();
      await A1.page.getByRole('heading', { name: group }).waitFor();
      await A1.page.locator('#group-info-link').click();
      await A1.page.getByLabel('Add member directly').fill(ben);
      await A1.page.getByRole('button', { name: 'Add member' }).click();
      await A1.page.locator(`#member-list li.member[data-username="${ben}"]`).waitFor();
      await conv(B.page, group).click();
      await B.page.getByRole('heading', { name: group }).waitFor();
      await send(B.page, 'ben in the group');
      await A1.page.locator('#open-group-chat').click();
      await messageIn(A1.page, 'ben in the group');
      assert.deepEqual(await msg(A1.page, 'ben in the group').locator('.msg-actions button').allTextContents(), ['Delete']);
      await send(A1.page, 'the owner speaks');
      await messageIn(B.page, 'the owner speaks');
      assert.equal(await msg(B.page, 'the owner speaks').locator('button').count(), 0);
      const id = await msg(A1.page, 'ben in the group').getAttribute('data-id');
      await msg(A1.page, 'ben in the group').getByRole('button', { name: 'Delete' }).click();
      await confirm(A1.page, 'Delete message');
      await A1.page.locator(`#message-list li.msg.deleted[data-id="${id}"]`).waitFor();
      await B.page.locator(`#message-list li.msg.deleted[data-id="${id}"] .content`, { hasText: 'Message deleted' }).waitFor();
      await conv(A2.page, group).locator('.preview', { hasText: 'the owner speaks' }).waitFor();
    });

    await step('a slow answer of an older render never replaces a newer one', async () => {
      // The members list of the first render after a role change answers
      // 2 s late, with what the server had then; the render of a member
      // added meanwhile must stay.
      const zed = `zed_${suffix}`;
      await registerREST(zed);
      await A1.page.locator('#group-info-link').click();
      const row = (name) => A1.page.locator(`#member-list li.member[data-username="${name}"]`);
      await row(ben).waitFor();
      let held = null;
      await A1.page.route('**/api/groups/*/members', async (route) => {
        if (held || route.request().method() !== 'GET') return route.continue();
        held = route.fetch();
        const res = await held;
        await new Promise((r) => setTimeout(r, 2000));
        return route.fulfill({ response: res });
      });
      await row(ben).getByRole('button', { name: 'Make admin' }).click();
      await A1.page.getByLabel('Add member directly').fill(zed);
      await A1.page.getByRole('button', { name: 'Add member' }).click();
      await row(zed).waitFor();
      await row(ben).and(A1.page.locator('[data-role="admin"]')).waitFor();
      assert.ok(held, 'a members request was held');
      await held;
      await new Promise((r) => setTimeout(r, 2500)); // the held answer has landed
      await A1.page.unroute('**/api/groups/*/members');
      assert.equal(await row(zed).count(), 1, 'the member added last is still listed');
      assert.equal(await row(ben).getAttribute('data-role'), 'admin');
      await A1.page.locator('#open-group-chat').click();
    });

    await step('a block from the user page refuses the blocked user\'s messages; unblocking restores them', async () => {
      await conv(B.page, ann).click();
      await B.page.getByRole('heading', { name: ann }).waitFor();
      await conv(A1.page, ben).click();
      await A1.page.locator('#user-info-link').click();
      await A1.page.getByRole('heading', { name: ben }).waitFor();
      await A1.page.getByRole('button', { name: `Block ${ben}`, exact: true }).click();
      await confirm(A1.page, 'Block');
      await A1.page.locator('#block-state', { hasText: `You blocked ${ben}` }).waitFor();
      await A1.page.getByRole('button', { name: `Unblock ${ben}`, exact: true }).waitFor();
      // The other device, in the conversation, follows live; its profile lists the block.
      await A2.page.locator('#block-note', { hasText: `You blocked ${ben}` }).waitFor();
      await A2.page.getByRole('link', { name: 'Profile', exact: true }).click();
      await A2.page.locator(`#block-list li[data-username="${ben}"]`).waitFor();
      await conv(A2.page, ben).click();
      await A2.page.locator('#block-note', { hasText: `You blocked ${ben}` }).waitFor();
      await shot(A1.page, '14-user-blocked');

      await B.page.locator('#composer').fill('are you there?');
      await B.page.locator('#composer').press('Enter');
      const error = B.page.locator('#composer-form .form-error[role="alert"]');
      await error.filter({ hasText: 'You cannot message this user.' }).waitFor();
      assert.equal(await B.page.locator('#composer').inputValue(), 'are you there?', 'the refused text stays');
      await shot(B.page, '15-blocked-send-refused');

      await A1.page.getByRole('button', { name: `Unblock ${ben}`, exact: true }).click();
      await A1.page.getByRole('button', { name: `Block ${ben}`, exact: true }).waitFor();
      await A2.page.locator('#block-note', { hasText: 'You blocked' }).waitFor({ state: 'detached' });
      await B.page.locator('#composer').press('Enter');
      await messageIn(B.page, 'are you there?');
      await error.waitFor({ state: 'hidden' });
      await messageIn(A2.page, 'are you there?');
    });

    await step('older conversations load page by page', async () => {
      // Ann writes to CONV_PAGE new users: Ben's conversation falls to the second page.
      const { token } = await rest('POST', '/api/auth/login', { body: { username: ann, password: PASSWORD } });
      const names = Array.from({ length: CONV_PAGE }, (_, i) => `cp${suffix}_${String(i).padStart(2, '0')}`);
      for (let i = 0; i < names.length; i += 5) await Promise.all(names.slice(i, i + 5).map(registerREST));
      for (const to of names) await rest('POST', '/api/messages', { token, body: { to, content: `hi ${to}`, type: 'chat' }, want: 201 });
      await A2.page.goto('/'); // a fresh page on the list, not in Ben's conversation
      await A2.page.locator('#conn-state[data-state="online"]').waitFor();
      const more = A2.page.getByRole('button', { name: 'Show older conversations' });
      await more.waitFor();
      await conv(A2.page, names[0]).waitFor();
      assert.equal(await conv(A2.page, ben).count(), 0, 'not on the first page');
      await more.click();
      await conv(A2.page, ben).waitFor();
      await more.waitFor({ state: 'hidden' });
      assert.equal(await badge(A2.page, ben).count(), 0);
      // Groups are listed whatever their page: CONV_PAGE 1:1 conversations, Ben's and the group.
      assert.equal(await A2.page.locator('#conversation-list a.conv').count(), CONV_PAGE + 2);
    });

    await step('no console or page errors in any context', async () => {
      assert.deepEqual([...A1.errors, ...A2.errors, ...B.errors], []);
    });
  } finally {
    await browser.close().catch(() => {});
  }
});
