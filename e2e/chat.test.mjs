// End-to-end test of the reference client against a running server
// (AOBA_URL): two users in two browser contexts, one of them on a 375 px
// wide phone screen.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { launch, messageIn, openUser, register, send, shot, stepper, suffix } from './browser.mjs';


test('two users chat, type, share a group and see each other go offline', { timeout: 170000 }, async (t) => {
  const browser = await launch();
  const alice = `alice_${suffix}`;
  const bob = `bob_${suffix}`;
  const group = `Team ${suffix}`;
  let A;
  let B;
  const step = stepper(t, () => [A, B]);

  try {
    A = await openUser(browser, 'alice', { width: 1280, height: 800 });
    B = await openUser(browser, 'bob', { width: 375, height: 740 });

    await step('sign-in page', async () => {
      await A.page.goto('/');
      await A.page.locator('#signin-form').waitFor({ state: 'visible' });
      assert.ok(await A.page.getByLabel('Username').first().isVisible());
      assert.ok(await A.page.getByLabel('Password').first().isVisible());
      await shot(A.page, '01-sign-in');
      await B.page.goto('/');
      await shot(B.page, '01-sign-in-phone');
    });

    await step('both users register and come online', async () => {
      await register(A.page, alice);
      await register(B.page, bob);
    });

    await step('alice finds bob through search and opens a conversation', async () => {
      await A.page.getByRole('link', { name: 'People' }).click();
      await A.page.getByLabel('Search people').fill(bob.slice(0, 12));
      await A.page.getByRole('button', { name: 'Search', exact: true }).click();
      const row = A.page.locator(`#people-results li[data-username="${bob}"]`);
      await row.waitFor();
      await row.locator('.presence[data-status="online"]').waitFor();
      await row.getByRole('link', { name: `Message ${bob}` }).click();
      await A.page.getByRole('heading', { name: bob }).waitFor();
      await A.page.locator('.conv-header .presence[data-status="online"]').waitFor();
    });

    await step('alice sends a message and bob receives it live', async () => {
      await send(A.page, 'Hello Bob, this is Alice');
      const item = B.page.locator(`#conversation-list a.conv:has-text("${alice}")`);
      await item.waitFor();
      await item.locator('.unread').waitFor();
      assert.equal((await item.locator('.unread').textContent()).trim(), '1');
      await item.click();
      await messageIn(B.page, 'Hello Bob, this is Alice');
      await B.page.locator('.conv-header .presence[data-status="online"]').waitFor();
    });

    await step('alice sees bob typing', async () => {
      await B.page.locator('#composer').pressSequentially('Hi Alice', { delay: 20 });
      await A.page.locator('#typing-indicator', { hasText: `${bob} is typing` }).waitFor();
      await shot(A.page, '02-conversation-typing');
      await shot(B.page, '02-conversation-phone');
      assert.ok(await B.page.evaluate(() => document.documentElement.scrollWidth <= 375), 'no sideways scrolling at 375 px');
    });

    await step('bob replies and alice receives it live', async () => {
      await B.page.locator('#composer').press('Enter');
      await messageIn(B.page, 'Hi Alice');
      await messageIn(A.page, 'Hi Alice');
      await A.page.locator('#typing-indicator').filter({ hasText: /^$/ }).waitFor();
      assert.equal(await A.page.locator('#message-list li.msg').count(), 2);
      await shot(A.page, '03-conversation');
    });

    await step('the counter disables sending over 10240 characters', async () => {
      await A.page.locator('#composer').fill('x'.repeat(10241));
      assert.ok(await A.page.locator('#send').isDisabled());
      await A.page.locator('#composer-counter.over').waitFor();
      await A.page.locator('#composer').fill('');
    });

    let groupURL = '';
    await step('alice creates a group inviting bob, who sees the invitation live', async () => {
      await A.page.getByRole('link', { name: 'New group' }).click();
      await A.page.getByLabel('Group name').fill(group);
      await A.page.getByLabel(/Invite people/).fill(bob);
      await A.page.getByRole('button', { name: 'Create group' }).click();
      await A.page.getByRole('heading', { name: group }).waitFor();
      groupURL = A.page.url();
      await B.page.locator('#invitation-count', { hasText: '1' }).waitFor();
      await B.page.getByRole('link', { name: /Invitations/ }).click();
      const inv = B.page.locator('#invitation-list li.invitation', { hasText: group });
      await inv.waitFor();
      assert.match(await inv.textContent(), new RegExp(alice));
      await shot(B.page, '04-invitations-phone');
    });

    await step('bob accepts and both exchange group messages', async () => {
      await B.page.getByRole('button', { name: `Accept invitation to ${group}` }).click();
      await B.page.getByRole('heading', { name: group }).waitFor();
      assert.equal(B.page.url(), groupURL);
      await B.page.locator('#invitation-count').waitFor({ state: 'hidden' });
      await send(A.page, 'Welcome to the group');
      await messageIn(B.page, 'Welcome to the group');
      await send(B.page, 'Glad to be here');
      await messageIn(A.page, 'Glad to be here');
      await shot(A.page, '05-group-chat');
    });

    await step('the group view lists both members with roles and presence', async () => {
      await A.page.locator('#group-info-link').click();
      const bobRow = A.page.locator(`#member-list li.member[data-username="${bob}"]`);
      await bobRow.waitFor();
      assert.equal(await bobRow.getAttribute('data-role'), 'member');
      await bobRow.locator('.presence[data-status="online"]').waitFor();
      assert.equal(await A.page.locator(`#member-list li.member[data-username="${alice}"]`).getAttribute('data-role'), 'owner');
      // The owner sees every action on a plain member.
      for (const name of ['Make admin', 'Make owner', 'Remove']) {
        assert.ok(await bobRow.getByRole('button', { name }).isVisible(), `owner sees "${name}"`);
      }
      await A.page.locator('#delete-group').waitFor();
      await shot(A.page, '06-group-view');
      // A plain member sees neither member actions nor the add form, only invite and leave.
      await B.page.goto(groupURL.replace('#/chat/g/', '#/group/'));
      await B.page.locator(`#member-list li.member[data-username="${alice}"]`).waitFor();
      assert.equal(await B.page.locator('#member-list .actions button').count(), 0);
      assert.equal(await B.page.locator('#add-member-form').count(), 0);
      await B.page.locator('#invite-form').waitFor();
      await B.page.locator('#leave-group').waitFor();
      await shot(B.page, '06-group-view-phone');
      assert.ok(await B.page.evaluate(() => document.documentElement.scrollWidth <= 375), 'no sideways scrolling at 375 px');
    });

    await step('bob closes his page and alice sees him go offline', async () => {
      await B.page.close();
      await A.page.locator(`#member-list li.member[data-username="${bob}"] .presence[data-status="offline"]`)
        .waitFor({ timeout: 20000 });
      await shot(A.page, '07-presence-offline');
    });

    await step('no console or page errors in any context', async () => {
      assert.deepEqual([...A.errors, ...B.errors], []);
    });
  } finally {
    await browser.close().catch(() => {});
  }
});
