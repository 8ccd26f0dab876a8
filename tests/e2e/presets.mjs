#!/usr/bin/env node
/*
 * End-to-end: "New Connected App" offers the provider presets. tests/api/presets.rs starts the
 * service and runs this script as a System Manager: a preset that needs a tenant asks for it,
 * then Google's preset fills the form, and the app is saved as a normal Connected App (the
 * test then reads it through the REST API).
 *
 * Environment:
 *   SERVICE_URL      the service, e.g. http://127.0.0.1:8000
 *   LOGIN_USER       a System Manager of the service
 *   LOGIN_PASSWORD   their password
 *   CHROMIUM         optional: the browser (default /usr/bin/chromium)
 *
 * Prints one line per step (the saved app's name as `saved: <name>`); exits 0 when every step
 * passed, 1 otherwise.
 */

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import process from 'node:process';

import { chromium } from 'playwright-core';

function env(name) {
  const v = process.env[name];
  if (!v) {
    process.stderr.write(`presets.mjs: ${name} is required\n`);
    process.exit(2);
  }
  return v;
}

const SERVICE = env('SERVICE_URL').replace(/\/$/, '');
const USER = env('LOGIN_USER');
const PASSWORD = env('LOGIN_PASSWORD');

function check(cond, what) {
  if (!cond) throw new Error(`check failed: ${what}`);
}

const step = (text) => process.stdout.write(`step: ${text}\n`);

const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'connected-apps-e2e-'));
const context = await chromium.launchPersistentContext(profile, {
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  headless: true,
  viewport: { width: 1100, height: 900 },
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});

let failed = false;
const page = context.pages()[0] ?? await context.newPage();
page.setDefaultTimeout(15000);
const pageErrors = [];
page.on('pageerror', (e) => pageErrors.push(String(e)));
const value = (label) => page.getByLabel(label, { exact: true }).inputValue();

try {
  step('log in and open New');
  await page.goto(`${SERVICE}/login`);
  await page.getByLabel('Email or user name').fill(USER);
  await page.getByLabel('Password').fill(PASSWORD);
  await page.getByLabel('Password').press('Enter');
  await page.waitForURL(`${SERVICE}/app/connected-app`);
  await page.getByRole('link', { name: 'New' }).click();
  await page.waitForURL(`${SERVICE}/app/connected-app/new`);

  step('a preset that needs a tenant asks for it before filling the form');
  const choice = page.getByLabel('Provider preset', { exact: true });
  await choice.locator('option[value="microsoft-tenant"]').waitFor({ state: 'attached' });
  await choice.selectOption('microsoft-tenant');
  await page.getByRole('button', { name: 'Fill the form' }).click();
  await page.locator('#messages .msg.error', { hasText: 'Enter the Directory (tenant) ID first.' }).waitFor();
  await page.getByLabel('Directory (tenant) ID').fill('contoso.onmicrosoft.com');
  await page.getByRole('button', { name: 'Fill the form' }).click();
  await page.locator('#messages .msg.info', { hasText: 'Microsoft Entra ID (single tenant) preset' }).waitFor();
  check(await value('Token URI') === 'https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/token',
    `tenant in the Token URI: ${await value('Token URI')}`);
  check(await value('Scope 4') === 'offline_access', 'the preset scopes are rows of the form');

  step('Google: its endpoints, scopes, parameters and client authentication');
  await page.getByLabel('Provider preset', { exact: true }).selectOption('google');
  await page.locator('#preset-details', { hasText: 'client_secret_post' }).waitFor();
  await page.getByRole('button', { name: 'Fill the form' }).click();
  await page.locator('#messages .msg.info', { hasText: 'Google preset' }).waitFor();
  check(await value('Provider Name') === 'Google', 'provider name');
  check(await value('Authorization URI') === 'https://accounts.google.com/o/oauth2/v2/auth', 'authorization URI');
  check(await value('Introspection URI') === '', 'an endpoint Google does not have is emptied');
  check(await value('Key 1') === 'access_type' && await value('Value 1') === 'offline', 'access_type=offline');
  check(await value('Key 2') === 'prompt' && await value('Value 2') === 'consent', 'prompt=consent');
  check(await page.getByLabel('Scope 4', { exact: true }).count() === 0, 'only Google\'s three scopes');

  step('add the client and save: a normal Connected App');
  await page.getByLabel('Client Id').fill('preset-client.apps.googleusercontent.com');
  await page.getByLabel('Client Secret').fill('preset-secret');
  await page.getByRole('button', { name: 'Save' }).click();
  await page.waitForURL(/\/app\/connected-app\/[0-9a-v]{10}$/);
  const name = decodeURIComponent(new URL(page.url()).pathname.split('/').pop());
  check(await page.locator('#preset').count() === 0, 'a saved app offers no presets');
  process.stdout.write(`saved: ${name}\n`);

  check(pageErrors.length === 0, `no script errors in the pages: ${pageErrors.join('; ')}`);
  step('all passed');
} catch (e) {
  failed = true;
  process.stderr.write(`presets.mjs: FAILED at ${page.url()}\n${e.stack || e}\n`);
  try {
    process.stderr.write(`page text:\n${(await page.locator('body').innerText()).slice(0, 3000)}\n`);
  } catch { /* the page may be gone */ }
  if (pageErrors.length) process.stderr.write(`script errors: ${pageErrors.join('; ')}\n`);
} finally {
  await context.close();
  fs.rmSync(profile, { recursive: true, force: true });
}
process.exit(failed ? 1 : 0);
