#!/usr/bin/env node
/*
 * A new user's first hour, in a real browser (Debian's headless chromium, playwright-core), at
 * one window width. tests/api/browser.rs starts the service binary on a fresh directory and
 * the real test OpenID provider, then runs this script at 1280 px and at 360 px.
 *
 * The walk: log in with the password the first start printed, create an app from discovery
 * (a failed discovery saves nothing; every validation error at once), connect through the
 * provider's login and consent pages, read the connection panel, copy the "use from code"
 * snippets and RUN them (curl and python against the service: each must print a token),
 * delete the connection and the app through Frappe's "linked Token Caches" refusal, log out.
 *
 * Environment:
 *   SERVICE_URL, ADMIN_PASSWORD   the service and Administrator's printed password
 *   PROVIDER_URL, CLIENT_ID, CLIENT_SECRET   the OpenID provider and the client it knows
 *   CONNECTED_APPS_AUTH   `token key:secret` of Administrator, for the snippets
 *   PLAIN_USER, PLAIN_PASSWORD   a user without roles
 *   WIDTH                 the window width (1280 or 360)
 *   SCREENSHOTS           optional: a directory to save screenshots in
 *   CHROMIUM              optional: the browser (default /usr/bin/chromium)
 *
 * Prints one line per step; exits 0 when every step passed, 1 otherwise.
 */

import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import process from 'node:process';

import { chromium } from 'playwright-core';

function env(name) {
  const v = process.env[name];
  if (!v) {
    process.stderr.write(`first_hour.mjs: ${name} is required\n`);
    process.exit(2);
  }
  return v;
}

const SERVICE = env('SERVICE_URL').replace(/\/$/, '');
const PASSWORD = env('ADMIN_PASSWORD');
const PROVIDER = env('PROVIDER_URL').replace(/\/$/, '');
const CLIENT_ID = env('CLIENT_ID');
const CLIENT_SECRET = env('CLIENT_SECRET');
env('CONNECTED_APPS_AUTH');
const PLAIN_USER = env('PLAIN_USER');
const PLAIN_PASSWORD = env('PLAIN_PASSWORD');
const WIDTH = Number(env('WIDTH'));
const SCREENSHOTS = process.env.SCREENSHOTS || '';
const HEIGHT = WIDTH < 600 ? 760 : 860;
const PROVIDER_NAME = `Test Provider ${WIDTH}`;

function check(cond, what) {
  if (!cond) throw new Error(`check failed: ${what}`);
}

const step = (text) => process.stdout.write(`step: [${WIDTH}px] ${text}\n`);

const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'connected-apps-first-hour-'));
const context = await chromium.launchPersistentContext(profile, {
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  headless: true,
  viewport: { width: WIDTH, height: HEIGHT },
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: SERVICE });

let failed = false;
const page = context.pages()[0] ?? await context.newPage();
page.setDefaultTimeout(15000);
const pageErrors = [];
page.on('pageerror', (e) => pageErrors.push(String(e)));
// Dialogs are accepted unless a step asks to dismiss the next one; each is remembered.
const dialogs = [];
let dismissNext = false;
page.on('dialog', (d) => {
  dialogs.push(d.message());
  if (dismissNext) {
    dismissNext = false;
    d.dismiss();
  } else {
    d.accept();
  }
});

// The window as the person sees it (a full-page picture would draw the sticky Save bar
// half-way down the page).
async function shot(label) {
  if (!SCREENSHOTS) return;
  fs.mkdirSync(SCREENSHOTS, { recursive: true });
  const file = path.join(SCREENSHOTS, `first-hour-${WIDTH}-${label}.png`);
  await page.screenshot({ path: file });
  step(`screenshot ${file}`);
}

async function noSidewaysScrolling(where) {
  const ok = await page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth);
  check(ok, `no sideways scrolling on ${where}`);
}

async function visibleWithoutScrolling(locator, what) {
  const box = await locator.boundingBox();
  check(box && box.y >= 0 && box.y + box.height <= HEIGHT && box.x + box.width <= WIDTH,
    `${what} is in the window without scrolling: ${JSON.stringify(box)}`);
}

// The service's own API from inside the page (the session's cookie).
const apiGet = (p) => page.evaluate(async (u) => (await fetch(u, { headers: { Accept: 'application/json' } })).json(), p);

function run(cmd, args, input) {
  return execFileSync(cmd, args, { input, env: process.env, encoding: 'utf8', timeout: 20000 });
}

async function copiedSnippet(kind, app) {
  await page.getByRole('button', { name: `Copy the ${kind} snippet for ${PROVIDER_NAME}` }).click();
  const text = await page.evaluate(() => navigator.clipboard.readText());
  check(text.includes(`connected_app=${app}`), `the ${kind} snippet names the app: ${text}`);
  const shown = await page.locator(`#${kind === 'curl' ? 'curl' : 'python'}-${app}`).innerText();
  check(shown.trim() === text.trim(), 'the copied text is the one shown');
  return text;
}

async function logIn(usr, pwd) {
  await page.getByLabel('Email or user name').fill(usr);
  await page.getByLabel('Password').fill(pwd);
  await page.getByLabel('Password').press('Enter');
  await page.waitForURL(`${SERVICE}/app/connected-app`);
}

async function logOut() {
  await page.getByRole('button', { name: 'Log out' }).click();
  await page.waitForURL(/\/login\?logged-out=1$/);
  await page.locator('#messages .msg.info', { hasText: 'You have logged out' }).waitFor();
}

// The provider's login page (unless its session from an earlier step is still on), then consent.
async function connectThroughProvider(login) {
  await page.waitForURL((u) => u.href.startsWith(`${PROVIDER}/`));
  const loginField = page.locator('input[name="login"]');
  const consent = page.getByRole('button', { name: 'Continue' });
  await loginField.or(consent).first().waitFor();
  if (await loginField.count()) {
    await loginField.fill(login);
    await page.locator('input[name="password"]').fill('any');
    await page.locator('button[type="submit"]').click();
  }
  await consent.click();
}

try {
  step('a Guest is sent to the login page');
  await page.goto(`${SERVICE}/app/connected-app`);
  await page.waitForURL(/\/login\?redirect-to=%2Fapp%2Fconnected-app$/);
  const icon = await page.locator('link[rel="icon"]').getAttribute('href');
  check((await page.request.get(`${SERVICE}${icon}`)).ok(), 'the favicon is served');
  await shot('1-login');

  step('log in as Administrator with the printed password');
  await logIn('Administrator', PASSWORD);

  step('New: every validation error at once, with labels, the first field focused');
  await page.getByRole('link', { name: 'New' }).click();
  await page.waitForURL(`${SERVICE}/app/connected-app/new`);
  await page.getByLabel('Token URI').fill('not an address');
  await page.getByRole('button', { name: 'Save' }).click();
  const problems = page.locator('#messages .msg.error ul.problems li');
  await problems.first().waitFor();
  const texts = await problems.allInnerTexts();
  check(texts.length === 2, `two problems listed: ${texts}`);
  check(texts[0].startsWith('Provider Name') && texts[1].startsWith('Token URI'), `with field labels: ${texts}`);
  check(!texts.join(' ').includes('token_uri'), 'no field names in the messages');
  check(await page.evaluate(() => document.activeElement?.id) === 'field-provider_name', 'the first field is focused');
  check(await page.getByLabel('Token URI').getAttribute('aria-invalid') === 'true', 'Token URI is highlighted');
  await shot('2-validation');
  await page.getByLabel('Token URI').fill('');

  step('a failed "Get OpenID Configuration" saves nothing');
  await page.getByLabel('Provider Name').fill(PROVIDER_NAME);
  await page.getByLabel('OpenID Configuration').fill(`${PROVIDER}/no-such-issuer/.well-known/openid-configuration`);
  await page.getByRole('button', { name: 'Get OpenID Configuration' }).click();
  await page.locator('#messages .msg.error', { hasText: 'Get OpenID Configuration failed' }).waitFor();
  check(page.url() === `${SERVICE}/app/connected-app/new`, `still a new app: ${page.url()}`);
  const none = await apiGet(`/api/resource/Connected%20App?filters=${encodeURIComponent(JSON.stringify([['provider_name', '=', PROVIDER_NAME]]))}`);
  check(Array.isArray(none.data) && none.data.length === 0, `no app was saved: ${JSON.stringify(none)}`);
  check(await page.getByLabel('Provider Name').inputValue() === PROVIDER_NAME, 'what was typed is kept');

  step('the OpenID Configuration input and the Extra Parameters are usable at this width');
  const oidc = await page.getByLabel('OpenID Configuration').boundingBox();
  check(oidc.width >= Math.min(240, WIDTH - 120), `OpenID Configuration input is ${oidc.width}px wide`);
  await page.getByRole('button', { name: 'Add parameter' }).click();
  const key = page.getByLabel('Key 1');
  const value = page.getByLabel('Value 1');
  check((await key.boundingBox()).width >= 150 && (await value.boundingBox()).width >= 150, 'Key and Value inputs are wide enough to type in');
  await key.fill('prompt');
  await value.fill('consent');
  await noSidewaysScrolling('the new app form');

  step('create the app from discovery');
  await page.getByLabel('OpenID Configuration').fill(`${PROVIDER}/.well-known/openid-configuration`);
  await page.getByLabel('Client Id').fill(CLIENT_ID);
  await page.getByLabel('Client Secret').fill(CLIENT_SECRET);
  for (const scope of ['openid', 'email', 'offline_access']) {
    await page.getByRole('button', { name: 'Add scope' }).click();
    await page.locator('#app-form input[aria-label^="Scope "]').last().fill(scope);
  }
  await page.getByRole('button', { name: 'Get OpenID Configuration' }).click();
  await page.locator('#messages .msg.info', { hasText: 'filled from the OpenID configuration' }).waitFor();
  await page.waitForURL(/\/app\/connected-app\/[^/]+$/);
  const name = decodeURIComponent(new URL(page.url()).pathname.split('/').pop());
  check(name !== 'new', 'the page moved to the saved app');
  check(await page.getByLabel('Token URI').inputValue() === `${PROVIDER}/token`, 'Token URI filled');

  step('"Connect" is disabled while the app cannot connect; unsaved changes are not lost silently');
  await page.getByLabel('Token URI').fill('');
  check(await page.locator('#connect').isDisabled(), 'Connect is disabled without a Token URI');
  check(/Token URI/.test(await page.locator('#connect-why').innerText()), 'and the page says why');
  await page.getByLabel('Token URI').fill(`${PROVIDER}/token`);
  check(await page.locator('#connect').isEnabled(), 'Connect is enabled again');
  await page.getByLabel('Client Id').fill(`${CLIENT_ID} `);
  dismissNext = true;
  await page.getByRole('link', { name: 'Connected Apps' }).first().click();
  check(dialogs.at(-1)?.includes('unsaved changes'), `leaving asked first: ${dialogs}`);
  check(new URL(page.url()).pathname === `/app/connected-app/${encodeURIComponent(name)}`, 'and stayed when told so');
  await page.getByLabel('Client Id').fill(CLIENT_ID);
  await page.evaluate(() => window.scrollTo(0, 0));
  await visibleWithoutScrolling(page.getByRole('button', { name: 'Save' }), 'Save');
  await page.keyboard.press('Control+s');
  await page.locator('#messages .msg.info', { hasText: 'Saved.' }).waitFor();

  step('connect through the provider\'s login and consent pages');
  await page.getByRole('button', { name: `Connect to ${PROVIDER_NAME}` }).click();
  await connectThroughProvider('first-hour-person');
  await page.waitForURL(`${SERVICE}/app/connected-app/${encodeURIComponent(name)}`);

  step('the panel: state, granted vs requested scopes, refresh token, expiry with its time zone');
  await page.locator('#connection-state', { hasText: /^Connected$/ }).waitFor();
  const facts = await page.locator('#connection-body dl.facts').innerText();
  check(/Scopes granted\s+openid, email/.test(facts), `granted scopes: ${facts}`);
  check(/Scopes requested\s+openid, email, offline_access/.test(facts), `requested scopes: ${facts}`);
  const status = (await apiGet(`/api/method/connected_apps.connection_status?connected_app=${encodeURIComponent(name)}`)).message;
  check(status.state === 'connected', `connection_status agrees: ${JSON.stringify(status)}`);
  const dropped = status.requested_scopes.filter((s) => !status.granted_scopes.includes(s));
  if (dropped.length) {
    check(facts.includes(`The provider did not grant ${dropped.join(', ')}.`), `the dropped scopes are named: ${facts}`);
  } else {
    check(!facts.includes('did not grant'), `nothing said to be dropped: ${facts}`);
  }
  check(/Refresh token\s+(Yes|No)/.test(facts) && facts.includes(status.has_refresh_token ? 'Yes' : 'No —'), `refresh token: ${facts}`);
  check(facts.includes(`(${status.time_zone})`), `the time zone of the expiry: ${facts}`);
  await noSidewaysScrolling('the app page');
  await page.evaluate(() => window.scrollTo(0, 0));
  await shot('3-connected');

  step('the list shows the app\'s name and state; copy the snippets and run them');
  await page.getByRole('link', { name: 'Connected Apps' }).first().click();
  await page.waitForURL(`${SERVICE}/app/connected-app`);
  const row = page.locator('tbody.app-row', { hasText: PROVIDER_NAME });
  check(await row.locator('td[data-label="Name"] code').innerText() === name, 'the list shows the app\'s name');
  await row.locator('.badge', { hasText: /^Connected$/ }).waitFor();
  await row.getByText('Use from code').click();
  await noSidewaysScrolling('the list with a snippet open');
  await shot('4-snippet');
  const curl = await copiedSnippet('curl', name);
  const curlOut = JSON.parse(run('bash', ['-e'], curl));
  const token = curlOut?.message?.access_token;
  check(typeof token === 'string' && token.length > 10, `curl printed a token: ${JSON.stringify(curlOut).slice(0, 200)}`);
  const python = await copiedSnippet('Python', name);
  const pyOut = run(process.env.PYTHON || 'python3', ['-'], python).trim();
  check(pyOut === token, `python printed the same token: ${pyOut.slice(0, 20)}…`);

  step('a plain user: a read-only form without edit hints, their own connection, their own list');
  await logOut();
  await logIn(PLAIN_USER, PLAIN_PASSWORD);
  await page.getByRole('link', { name: PROVIDER_NAME }).click();
  await page.locator('#connection-state', { hasText: 'Not connected' }).waitFor();
  check(await page.locator('#app-form .hint').count() === 0, 'no edit hints on a read-only form');
  check(await page.locator('#app-form button').count() === 1, 'no Save, Add or Remove, only Copy');
  check(await page.getByLabel('Client Id').getAttribute('readonly') !== null, 'fields are read-only');
  await page.getByRole('button', { name: `Connect to ${PROVIDER_NAME}` }).click();
  await connectThroughProvider('plain-person');
  await page.locator('#connection-state', { hasText: /^Connected$/ }).waitFor();
  await page.getByRole('link', { name: 'My connections' }).click();
  await page.waitForURL(`${SERVICE}/app/token-cache`);
  const mine = page.locator('table.list tbody tr');
  await mine.first().waitFor();
  check(await mine.count() === 1, 'only their own connection is listed');
  check((await mine.first().innerText()).includes(PLAIN_USER), 'it is theirs');
  await mine.first().locator('.badge', { hasText: /^Connected$/ }).waitFor();
  await noSidewaysScrolling('the list of one\'s own connections');
  await logOut();
  await logIn('Administrator', PASSWORD);

  step('delete the app: Frappe\'s "linked Token Caches" refusal, its link, and the way through');
  await page.getByRole('link', { name: PROVIDER_NAME }).click();
  await page.getByRole('button', { name: 'Delete', exact: true }).click();
  const refusal = page.locator('#messages .msg.error');
  await refusal.getByText('is linked with Token Cache').waitFor();
  const link = refusal.locator('a[href^="/app/Form/Token Cache/"]');
  check(await link.count() === 1, 'Frappe\'s link to the Token Cache is a link');
  await link.click();
  await page.waitForURL(/\/app\/token-cache\/[^/]+$/);
  await page.locator('#connection-state', { hasText: /^Connected$/ }).waitFor();
  check(!/[{}]/.test(await page.locator('main').innerText()), 'a page, not JSON');
  await page.goBack();
  await page.getByRole('button', { name: 'Delete', exact: true }).click();
  await page.getByRole('button', { name: 'Delete these 2 connections and the app' }).click();
  await page.waitForURL(/\/app\/connected-app\?deleted=/);
  await page.locator('#messages .msg.info', { hasText: 'was deleted' }).waitFor();
  check(await page.getByRole('link', { name: PROVIDER_NAME }).count() === 0, 'the app is gone from the list');
  const left = await apiGet(`/api/resource/Token%20Cache?filters=${encodeURIComponent(JSON.stringify([['connected_app', '=', name]]))}`);
  check(left.data.length === 0, 'its connection is gone too');

  step('log out');
  await logOut();
  await shot('5-logged-out');

  check(pageErrors.length === 0, `no script errors in the pages: ${pageErrors.join('; ')}`);
  step('all passed');
} catch (e) {
  failed = true;
  process.stderr.write(`first_hour.mjs: FAILED at ${page.url()}\n${e.stack || e}\n`);
  try {
    process.stderr.write(`page text:\n${(await page.locator('body').innerText()).slice(0, 3000)}\n`);
  } catch { /* the page may be gone */ }
  if (pageErrors.length) process.stderr.write(`script errors: ${pageErrors.join('; ')}\n`);
} finally {
  await context.close();
  fs.rmSync(profile, { recursive: true, force: true });
}
process.exit(failed ? 1 : 0);
