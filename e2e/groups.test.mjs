// End-to-end test of group administration, people search paging and the
// account settings against a running server (AOBA_URL). Each action is
// offered only to those allowed to take it, and the other member's view
// follows live through group events.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PASSWORD, confirm, launch, openUser, register, registerREST, shot, stepper, suffix } from './browser.mjs';


function member(page, username) {
  return page.locator(`#member-list li.member[data-username="${username}"]`);
}

test('group roles, live group events, search paging and account settings', { timeout: 170000 }, async (t) => {
  const browser = await launch();
  const olga = `olga_${suffix}`;
  const pete = `pete_${suffix}`;
  const mona = `mona_${suffix}`;
  const group = `Ops ${suffix}`;
  let O;
  let P;
  const step = stepper(t, () => [O, P]);

  try {
    O = await openUser(browser, 'olga', { width: 1024, height: 760 });
    P = await openUser(browser, 'pete', { width: 375, height: 740 });

    await step('users register', async () => {
      await register(O.page, olga);
      await register(P.page, pete);
      await registerREST(mona);
    });

    await step('people search pages through results', async () => {
      const prefix = `pg${suffix}`;
      for (let i = 0; i < 21; i += 1) await registerREST(`${prefix}_${String(i).padStart(2, '0')}`);
      await O.page.getByRole('link', { name: 'People' }).click();
      await O.page.getByLabel('Search people').fill(prefix);
      await O.page.getByRole('button', { name: 'Search', exact: true }).click();
      await O.page.locator('#people-status', { hasText: 'Page 1 of 2' }).waitFor();
      assert.equal(await O.page.locator('#people-results li').count(), 20);
      await O.page.getByRole('button', { name: 'Next page' }).click();
      await O.page.locator('#people-status', { hasText: 'Page 2 of 2' }).waitFor();
      assert.equal(await O.page.locator('#people-results li').count(), 1);
      assert.ok(await O.page.getByRole('button', { name: 'Next page' }).isDisabled());
    });

    await step('the owner creates a group and adds an admin and a member directly', async () => {
      await O.page.getByRole('link', { name: 'New group' }).click();
      await O.page.getByLabel('Group name').fill(group);
      await O.page.getByRole('button', { name: 'Create group' }).click();
      await O.page.getByRole('heading', { name: group }).waitFor();
      await O.page.locator('#group-info-link').click();
      await member(O.page, olga).waitFor();
      await O.page.getByLabel('Add member directly').fill(pete);
      await O.page.getByLabel('Role').selectOption('admin');
      await O.page.getByRole('button', { name: 'Add member' }).click();
      await member(O.page, pete).and(O.page.locator('[data-role="admin"]')).waitFor();
      await O.page.getByLabel('Add member directly').fill(mona);
      await O.page.getByRole('button', { name: 'Add member' }).click();
      await member(O.page, mona).and(O.page.locator('[data-role="member"]')).waitFor();
      // Pete was added without an invitation: the group shows up for him live.
      await P.page.locator(`#conversation-list a.conv:has-text("${group}")`).waitFor();
    });

    await step('an admin may remove plain members only and cannot delete the group', async () => {
      await P.page.locator(`#conversation-list a.conv:has-text("${group}")`).click();
      await P.page.locator('#group-info-link').click();
      await member(P.page, mona).waitFor();
      assert.equal(await member(P.page, olga).locator('button').count(), 0);
      assert.deepEqual(await member(P.page, mona).locator('button').allTextContents(), ['Remove']);
      assert.equal(await P.page.locator('#add-role').count(), 0, 'only the owner picks a role when adding');
      assert.equal(await P.page.locator('#delete-group').count(), 0);
      await P.page.locator('#add-member-form').waitFor();
      await P.page.locator('#leave-group').waitFor();
      await member(P.page, mona).getByRole('button', { name: 'Remove' }).click();
      await confirm(P.page, 'Remove');
      await member(P.page, mona).waitFor({ state: 'detached' });
      // The owner's open group view follows the removal live.
      await member(O.page, mona).waitFor({ state: 'detached' });
      await shot(P.page, '10-admin-view-phone');
    });

    await step('the owner changes a role and transfers ownership', async () => {
      await member(O.page, pete).getByRole('button', { name: 'Make member' }).click();
      await member(O.page, pete).and(O.page.locator('[data-role="member"]')).waitFor();
      await member(P.page, pete).and(P.page.locator('[data-role="member"]')).waitFor();
      await member(O.page, pete).getByRole('button', { name: 'Make owner' }).click();
      await confirm(O.page, 'Transfer ownership');
      await member(O.page, pete).and(O.page.locator('[data-role="owner"]')).waitFor();
      await member(O.page, olga).and(O.page.locator('[data-role="admin"]')).waitFor();
      assert.equal(await O.page.locator('#delete-group').count(), 0);
      await P.page.locator('#delete-group').waitFor();
    });

    await step('an admin leaves and the new owner deletes the group', async () => {
      await O.page.locator('#leave-group').click();
      await confirm(O.page, 'Leave');
      await O.page.locator(`#conversation-list a.conv:has-text("${group}")`).waitFor({ state: 'detached' });
      await member(P.page, olga).waitFor({ state: 'detached' });
      await P.page.locator('#delete-group').click();
      await confirm(P.page, 'Delete group');
      await P.page.locator(`#conversation-list a.conv:has-text("${group}")`).waitFor({ state: 'detached' });
    });

    await step('an invitation can be declined', async () => {
      const other = `Other ${suffix}`;
      await O.page.getByRole('link', { name: 'New group' }).click();
      await O.page.getByLabel('Group name').fill(other);
      await O.page.getByLabel(/Invite people/).fill(pete);
      await O.page.getByRole('button', { name: 'Create group' }).click();
      await P.page.locator('#invitation-count', { hasText: '1' }).waitFor();
      await P.page.getByRole('link', { name: /Invitations/ }).click();
      await P.page.getByRole('button', { name: `Decline invitation to ${other}` }).click();
      await P.page.getByText('No pending invitations.').waitFor();
      await P.page.locator('#invitation-count').waitFor({ state: 'hidden' });
    });

    await step('a user renames themself and deletes the account', async () => {
      const renamed = `${pete}_x`;
      await P.page.getByRole('link', { name: 'Profile' }).click();
      await P.page.getByLabel('New username').fill(renamed);
      await P.page.getByRole('button', { name: 'Change username' }).click();
      await P.page.locator('#me-name', { hasText: renamed }).waitFor();
      await shot(P.page, '11-profile-phone');
      await P.page.getByRole('button', { name: 'Delete my account' }).click();
      await confirm(P.page, 'Delete my account');
      await P.page.locator('#auth-notice', { hasText: 'account was deleted' }).waitFor();
      await P.page.locator('#signin-username').fill(renamed);
      await P.page.locator('#signin-password').fill(PASSWORD);
      await P.page.getByRole('button', { name: 'Sign in', exact: true }).click();
      await P.page.locator('#signin-form .form-error').waitFor({ state: 'visible' });
      // Chromium logs the refused login that this step provokes on purpose; nothing else may be logged.
      const expected = P.errors.filter((e) => /status of 401/.test(e) && e.includes('/api/auth/login'));
      assert.equal(expected.length, 1);
      P.errors.splice(P.errors.indexOf(expected[0]), 1);
    });

    await step('no console or page errors in any context', async () => {
      assert.deepEqual([...O.errors, ...P.errors], []);
    });
  } finally {
    await browser.close().catch(() => {});
  }
});
