// Shared helpers of the browser tests: Debian's chromium driven by
// playwright-core, one context per user, console and page errors collected.
import { chromium } from 'playwright-core';
import { mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export const BASE = process.env.AOBA_URL || 'http://127.0.0.1:8080';
export const ARTIFACTS = fileURLToPath(new URL('./artifacts/', import.meta.url));
mkdirSync(ARTIFACTS, { recursive: true });

/** WAIT bounds every single wait of the tests, in milliseconds. */
export const WAIT = 15000;

/** launch starts headless chromium from /usr/bin/chromium. */
export function launch() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    timeout: 30000,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-quic',
      '--no-first-run', '--disable-component-update', '--disable-sync'],
  });
}

/**
 * openUser opens a new context and page for one user and records every
 * console error and uncaught page error into the returned errors array.
 */
export async function openUser(browser, name, viewport) {
  const context = await browser.newContext({ viewport, baseURL: BASE });
  context.setDefaultTimeout(WAIT);
  context.setDefaultNavigationTimeout(WAIT);
  const page = await context.newPage();
  const errors = [];
  page.on('console', (msg) => {
    if (msg.type() === 'error') errors.push(`${name} console: ${msg.text()} (${JSON.stringify(msg.location())})`);
  });
  page.on('pageerror', (err) => errors.push(`${name} page error: ${err.message}`));
  return { name, context, page, errors };
}

/** shot saves a full-page screenshot into e2e/artifacts/. */
export async function shot(page, file) {
  await page.screenshot({ path: `${ARTIFACTS}${file}.png`, fullPage: true, timeout: WAIT });
}

// A run-unique suffix for usernames and group names, and the password every
// test user signs up with.
export const suffix = `${Date.now().toString(36)}${Math.floor(Math.random() * 1e4)}`;
export const PASSWORD = 'correct-horse-battery';

/**
 * rest calls the API directly, outside any browser: JSON in and out, with
 * the token as a Bearer header when given. It throws unless the answer has
 * the status want, and returns the decoded body (null when empty).
 */
export async function rest(method, path, { token, body, want = 200 } = {}) {
  const headers = { Accept: 'application/json' };
  if (token) headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const res = await fetch(`${BASE}${path}`, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(10000),
  });
  const text = await res.text();
  if (res.status !== want) throw new Error(`${method} ${path}: ${res.status} ${text}`);
  return text ? JSON.parse(text) : null;
}

/** registerREST registers username through the API (no browser). */
export async function registerREST(username) {
  await rest('POST', '/api/auth/register', { body: { username, password: PASSWORD }, want: 201 });
}

/** register signs a new user up through the sign-up form and waits until the app is online. */
export async function register(page, username) {
  await page.goto('/');
  await page.locator('#signin-form').waitFor({ state: 'visible' });
  await page.getByRole('button', { name: 'Create an account' }).click();
  await page.locator('#signup-username').fill(username);
  await page.locator('#signup-password').fill(PASSWORD);
  await page.getByRole('button', { name: 'Create account' }).click();
  await page.locator('#app-view').waitFor({ state: 'visible' });
  await page.locator('#conn-state[data-state="online"]').waitFor();
  if ((await page.locator('#me-name').textContent()) !== username) {
    throw new Error(`signed up as ${username}, but the app shows ${await page.locator('#me-name').textContent()}`);
  }
}

/** signIn signs an existing user in through the sign-in form (another device) and waits until the app is online. */
export async function signIn(page, username, password = PASSWORD) {
  await page.goto('/');
  await page.locator('#signin-form').waitFor({ state: 'visible' });
  await page.locator('#signin-username').fill(username);
  await page.locator('#signin-password').fill(password);
  await page.getByRole('button', { name: 'Sign in', exact: true }).click();
  await page.locator('#conn-state[data-state="online"]').waitFor();
}

/** confirm answers the page's confirmation dialog with the button labelled label. */
export async function confirm(page, label) {
  const dlg = page.locator('#confirm-dialog');
  await dlg.waitFor({ state: 'visible' });
  await dlg.getByRole('button', { name: label }).click();
  await dlg.waitFor({ state: 'hidden' });
}

/** send types text into the open conversation, sends it with Enter and waits until it is listed. */
export async function send(page, text) {
  await page.locator('#composer').fill(text);
  await page.locator('#composer').press('Enter');
  await messageIn(page, text);
}

/** messageIn waits until the open conversation lists a message containing text. */
export function messageIn(page, text) {
  return page.locator('#message-list li.msg .content', { hasText: text }).first().waitFor();
}

/**
 * stepper returns step(name, fn): a subtest of t that is skipped once an
 * earlier step failed; a failing step saves a screenshot of every open
 * user of users() and adds their browser errors to the failure.
 */
export function stepper(t, users) {
  let failed = false;
  return (name, fn) => t.test(name, { skip: failed && 'an earlier step failed' }, async () => {
    try {
      await fn();
    } catch (err) {
      failed = true;
      const open = users().filter(Boolean);
      for (const u of open) {
        if (!u.page.isClosed()) await shot(u.page, `failed-${u.name}`).catch(() => {});
      }
      if (open.length) err.message += `\nbrowser errors so far: ${JSON.stringify(open.flatMap((u) => u.errors))}`;
      throw err;
    }
  });
}
