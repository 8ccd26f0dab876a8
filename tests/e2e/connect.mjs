#!/usr/bin/env node
/*
 * End-to-end: a person connects an account in a real browser (Debian's headless chromium,
 * driven by playwright-core). tests/api/browser.rs starts the service and the test OAuth
 * provider (with its real login and consent pages) and runs this script.
 *
 * Environment:
 *   SERVICE_URL      the service, e.g. http://127.0.0.1:8000
 *   LOGIN_USER       a System Manager of the service
 *   LOGIN_PASSWORD   their password
 *   PROVIDER_URL     the OAuth provider (its issuer)
 *   CLIENT_ID        the client registered at the provider
 *   CLIENT_SECRET    its secret
 *   SCREENSHOT       optional: where to save a screenshot of the app page once connected
 *   CHROMIUM         optional: the browser (default /usr/bin/chromium)
 *
 * Prints one line per step; exits 0 when every step passed, 1 otherwise.
 */

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import process from 'node:process';

import { chromium } from 'playwright-core';

function env(name) {
  const v = process.env[name];
  if (!v) {
    process.stderr.write(`connect.mjs: ${name} is required\n`);
    process.exit(2);
  }
  return v;
}

const SERVICE = env('SERVICE_URL').replace(/\/$/, '');
const USER = env('LOGIN_USER');
const PASSWORD = env('LOGIN_PASSWORD');
const PROVIDER = env('PROVIDER_URL').replace(/\/$/, '');
const CLIENT_ID = env('CLIENT_ID');
const CLIENT_SECRET = env('CLIENT_SECRET');
const SCREENSHOT = process.env.SCREENSHOT || '';
const TIMEOUT = 15000;

function check(cond, what) {
  if (!cond) throw new Error(`check failed: ${what}`);
}

const step = (text) => process.stdout.write(`step: ${text}\n`);

const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'connected-apps-e2e-'));
// A fresh profile every run (playwright takes the user-data-dir here, not as an argument).
const context = await chromium.launchPersistentContext(profile, {
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  headless: true,
  viewport: { width: 1100, height: 900 },
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});

let failed = false;
const page = context.pages()[0] ?? await context.newPage();
page.setDefaultTimeout(TIMEOUT);
const pageErrors = [];
page.on('pageerror', (e) => pageErrors.push(String(e)));
page.on('dialog', (d) => d.accept());

try {
  step('a Guest opening the app list is sent to the login page');
  await page.goto(`${SERVICE}/app/connected-app`);
  await page.waitForURL(/\/login\?redirect-to=%2Fapp%2Fconnected-app$/);

  step('wrong password: the page says so in plain words');
  await page.getByLabel('Email or user name').fill(USER);
  await page.getByLabel('Password').fill('not-the-password');
  await page.getByRole('button', { name: 'Log in' }).click();
  await page.locator('#messages .msg.error', { hasText: 'Invalid login credentials' }).waitFor();

  step('log in and land on the list');
  await page.getByLabel('Password').fill(PASSWORD);
  await page.getByLabel('Password').press('Enter');
  await page.waitForURL(`${SERVICE}/app/connected-app`);

  step('New: saving without a provider name is refused in the page');
  await page.getByRole('link', { name: 'New' }).click();
  await page.waitForURL(`${SERVICE}/app/connected-app/new`);
  await page.getByRole('button', { name: 'Save' }).click();
  await page.locator('#messages .msg.error', { hasText: 'Provider Name is required.' }).waitFor();

  step('fill the form and use "Get OpenID Configuration"');
  await page.getByLabel('Provider Name').fill('Test Provider');
  await page.getByLabel('OpenID Configuration').fill(`${PROVIDER}/.well-known/openid-configuration`);
  await page.getByLabel('Client Id').fill(CLIENT_ID);
  await page.getByLabel('Client Secret').fill(CLIENT_SECRET);
  for (const scope of ['openid', 'email']) {
    await page.getByRole('button', { name: 'Add scope' }).click();
    await page.locator('#app-form input[aria-label^="Scope "]').last().fill(scope);
  }
  await page.getByRole('button', { name: 'Get OpenID Configuration' }).click();
  await page.locator('#messages .msg.info', { hasText: 'filled from the OpenID configuration' }).waitFor();
  await page.waitForURL(/\/app\/connected-app\/[^/]+$/);
  const name = decodeURIComponent(new URL(page.url()).pathname.split('/').pop());
  check(name !== 'new', 'the page moved to the saved app');
  check(await page.getByLabel('Token URI').inputValue() === `${PROVIDER}/token`, 'Token URI filled');
  check(await page.getByLabel('Authorization URI').inputValue() === `${PROVIDER}/auth`, 'Authorization URI filled');
  check(await page.getByLabel('Revocation URI').inputValue() === `${PROVIDER}/token/revocation`, 'Revocation URI filled');
  const redirect = await page.getByLabel('Redirect URI', { exact: true }).inputValue();
  check(redirect.startsWith(`${SERVICE}/api/method/`) && redirect.endsWith(`/${name}`), `Redirect URI ${redirect}`);
  check(await page.getByLabel('Redirect URI', { exact: true }).getAttribute('readonly') !== null, 'Redirect URI is read-only');
  await page.locator('#connection-state', { hasText: 'Not connected' }).waitFor();

  step('the list shows the app with its client id and name');
  await page.getByRole('link', { name: 'Connected Apps' }).first().click();
  await page.getByRole('link', { name: 'Test Provider' }).waitFor();
  check(await page.getByText(CLIENT_ID, { exact: true }).count() === 1, 'client id in the list');
  check(await page.locator('td[data-label="Name"] code', { hasText: name }).count() === 1, 'the app\'s name in the list');
  await page.setViewportSize({ width: 360, height: 800 });
  check(await page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth),
    'no sideways scrolling on the list at 360px');
  await page.setViewportSize({ width: 1100, height: 900 });
  await page.getByLabel('Filter by provider').fill('no such provider');
  await page.getByText('No Connected App has a provider matching').waitFor();
  await page.getByLabel('Filter by provider').fill('test');
  await page.getByRole('link', { name: 'Test Provider' }).click();
  await page.waitForURL(`${SERVICE}/app/connected-app/${encodeURIComponent(name)}`);

  step('"Connect" opens the provider: its login page, then its consent page');
  await page.getByRole('button', { name: 'Connect to Test Provider' }).click();
  await page.waitForURL((u) => u.href.startsWith(`${PROVIDER}/`));
  await page.locator('input[name="login"]').fill('browser-person');
  await page.locator('input[name="password"]').fill('any');
  await page.locator('button[type="submit"]').click();
  await page.getByRole('button', { name: 'Continue' }).click();

  step('back on the app page, which shows "Connected"');
  await page.waitForURL(`${SERVICE}/app/connected-app/${encodeURIComponent(name)}`);
  await page.locator('#connection-state', { hasText: /^Connected$/ }).waitFor();
  const facts = await page.locator('#connection-body').innerText();
  check(/openid/.test(facts) && /email/.test(facts), `granted scopes shown: ${facts}`);
  check(/Token expires\s+\d{4}-\d\d-\d\d \d\d:\d\d/.test(facts), `expiry shown: ${facts}`);
  check(await page.getByRole('button', { name: 'Reconnect' }).count() === 1, 'Reconnect offered');
  if (SCREENSHOT) {
    fs.mkdirSync(path.dirname(SCREENSHOT), { recursive: true });
    await page.screenshot({ path: SCREENSHOT, fullPage: true });
    step(`screenshot saved to ${SCREENSHOT}`);
  }

  step('the app page works on a narrow screen, and Disconnect is reachable from the keyboard');
  await page.setViewportSize({ width: 360, height: 800 });
  check(await page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth),
    'no sideways scrolling at 360px');
  await page.getByRole('button', { name: 'Reconnect' }).focus();
  await page.keyboard.press('Tab');
  check(await page.evaluate(() => document.activeElement?.textContent) === 'Disconnect', 'Tab reaches Disconnect');
  await page.setViewportSize({ width: 1100, height: 900 });

  step('the Token Cache page lists the connection');
  await page.getByRole('link', { name: 'Token Cache' }).click();
  await page.waitForURL(`${SERVICE}/app/token-cache`);
  await page.getByRole('cell', { name: USER, exact: true }).waitFor();
  await page.getByRole('cell', { name: 'Connected', exact: true }).waitFor();
  await page.goBack();

  step('Disconnect');
  await page.getByRole('button', { name: 'Disconnect' }).click();
  await page.locator('#connection-state', { hasText: 'Not connected' }).waitFor();
  await page.locator('#messages .msg.info', { hasText: 'Disconnected from Test Provider.' }).waitFor();
  check(await page.getByRole('button', { name: 'Connect to Test Provider' }).count() === 1, 'Connect offered again');

  step('refusing at the provider: the page says why in plain words');
  await page.getByRole('button', { name: 'Connect to Test Provider' }).click();
  await page.waitForURL((u) => u.href.startsWith(`${PROVIDER}/`));
  await page.getByRole('link', { name: '[ Cancel ]' }).click();
  await page.waitForURL((u) => u.href.startsWith(`${SERVICE}/api/method/`));
  await page.getByRole('heading', { name: 'Could not connect' }).waitFor();
  const why = await page.locator('#messages').innerText();
  check(/refused the authorization/.test(why) && /access_denied/.test(why), `the reason is shown: ${why}`);
  check(!/[{}]/.test(await page.locator('main').innerText()), 'no JSON in the page');
  await page.getByRole('link', { name: 'Back to the app page' }).click();
  await page.locator('#connection-state', { hasText: 'Not connected' }).waitFor();

  step('log out');
  await page.getByRole('button', { name: 'Log out' }).click();
  await page.waitForURL(`${SERVICE}/login?logged-out=1`);
  await page.goto(`${SERVICE}/app/token-cache`);
  await page.waitForURL(/\/login\?redirect-to=%2Fapp%2Ftoken-cache$/);

  check(pageErrors.length === 0, `no script errors in the pages: ${pageErrors.join('; ')}`);
  step('all passed');
} catch (e) {
  failed = true;
  process.stderr.write(`connect.mjs: FAILED at ${page.url()}\n${e.stack || e}\n`);
  try {
    process.stderr.write(`page text:\n${(await page.locator('body').innerText()).slice(0, 3000)}\n`);
  } catch { /* the page may be gone */ }
  if (pageErrors.length) process.stderr.write(`script errors: ${pageErrors.join('; ')}\n`);
} finally {
  await context.close();
  fs.rmSync(profile, { recursive: true, force: true });
}
process.exit(failed ? 1 : 0);
