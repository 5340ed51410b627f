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
