#!/usr/bin/env node
/*
 * End-to-end: the app page shows a person their own connection only. tests/api/token_identity.rs
 * starts the service with app `<a>` and app `<a>-mary`, connects mary-jane@… to `<a>` (Token
 * Cache `<a>-mary-jane@…`, the very name jane@…'s connection to `<a>-mary` would have) and runs
 * this script as jane, a System Manager (who may read every Token Cache).
 *
 * Environment:
 *   SERVICE_URL      the service, e.g. http://127.0.0.1:8000
 *   LOGIN_USER       jane
 *   LOGIN_PASSWORD   her password
 *   APP              the app whose page is opened (`<a>-mary`)
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
    process.stderr.write(`identity.mjs: ${name} is required\n`);
    process.exit(2);
  }
  return v;
}

const SERVICE = env('SERVICE_URL').replace(/\/$/, '');
const USER = env('LOGIN_USER');
const PASSWORD = env('LOGIN_PASSWORD');
const APP = env('APP');

function check(cond, what) {
  if (!cond) throw new Error(`check failed: ${what}`);
}

const step = (text) => process.stdout.write(`step: ${text}\n`);

const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'connected-apps-e2e-'));
const context = await chromium.launchPersistentContext(profile, {
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  headless: true,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});

let failed = false;
const page = context.pages()[0] ?? await context.newPage();
page.setDefaultTimeout(15000);
const pageErrors = [];
page.on('pageerror', (e) => pageErrors.push(String(e)));

try {
  step('log in');
  await page.goto(`${SERVICE}/login`);
  await page.getByLabel('Email or user name').fill(USER);
  await page.getByLabel('Password').fill(PASSWORD);
  await page.getByLabel('Password').press('Enter');
  await page.waitForURL(`${SERVICE}/app/connected-app`);

  step(`open ${APP}: not connected, and no Disconnect for someone else's Token Cache`);
  const tokenCacheRequests = [];
  page.on('request', (r) => {
    if (r.url().includes('/api/resource/Token%20Cache')) tokenCacheRequests.push(r.url());
  });
  await page.goto(`${SERVICE}/app/connected-app/${encodeURIComponent(APP)}`);
  const state = page.locator('#connection-state');
  await state.waitFor();
  await page.getByRole('button', { name: /^(Connect to|Reconnect)/ }).waitFor();
  const text = (await state.innerText()).trim();
  check(text === 'Not connected', `the state is "${text}"`);
  check(await page.locator('#disconnect').count() === 0, 'there is no Disconnect button');
  check(await page.getByRole('button', { name: /^Connect to / }).count() === 1, 'the button says Connect');
  check(!tokenCacheRequests.some((u) => decodeURIComponent(u).includes(`${APP}-${USER}`)),
    `the page never asked for the Token Cache named ${APP}-${USER}: ${tokenCacheRequests.join(' ')}`);

  check(pageErrors.length === 0, `no script errors in the pages: ${pageErrors.join('; ')}`);
  step('all passed');
} catch (e) {
  failed = true;
  process.stderr.write(`identity.mjs: FAILED at ${page.url()}\n${e.stack || e}\n`);
  try {
    process.stderr.write(`page text:\n${(await page.locator('body').innerText()).slice(0, 3000)}\n`);
  } catch { /* the page may be gone */ }
  if (pageErrors.length) process.stderr.write(`script errors: ${pageErrors.join('; ')}\n`);
} finally {
  await context.close();
  fs.rmSync(profile, { recursive: true, force: true });
}
process.exit(failed ? 1 : 0);
