#!/usr/bin/env node
// Real-browser check of the status page of a node that asks for a token
// (security.tokens_file).
//
//   STATUSPAGE_TOKEN=<a read token> node tokenform.mjs URL NODE_ID
//
// The check: the page shows the token form and no data; a wrong token is
// refused and the form asks again; the right one shows the node's status;
// a reload keeps the token (sessionStorage), a new tab asks again; the token
// never appears in the page. On failure the reasons go to stderr and the exit
// code is 1 (2 for bad usage).

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

const TIMEOUT_MS = 15000;
const CHROMIUM_ARGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync'];

const [url, nodeID] = process.argv.slice(2);
const token = process.env.STATUSPAGE_TOKEN;
if (!url || !nodeID || !token) {
  console.error('usage: STATUSPAGE_TOKEN=<token> node tokenform.mjs URL NODE_ID');
  process.exit(2);
}

const problems = [];
function check(ok, what) {
  if (!ok) problems.push(what);
}

async function formShown(page) {
  await page.waitForSelector('#token-form:not([hidden])', { timeout: TIMEOUT_MS });
}

async function statusShown(page) {
  await page.waitForFunction((id) => document.getElementById('node-id').textContent === id, nodeID, { timeout: TIMEOUT_MS });
  check(await page.locator('#token-form').isHidden(), 'the token form is still shown with the status');
}

const userDataDir = mkdtempSync(join(tmpdir(), 'tributary-chromium-'));
let context;
try {
  context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: process.env.CHROMIUM_PATH || '/usr/bin/chromium',
    headless: true,
    args: CHROMIUM_ARGS,
    timeout: 30000,
  });
  const page = context.pages()[0] || (await context.newPage());
  page.on('pageerror', (err) => problems.push(`page error: ${err.message}`));

  await page.goto(url, { waitUntil: 'load' });
  await formShown(page);
  check((await page.locator('#node-id').textContent()) === '…', 'the page shows node data before any token');

  await page.fill('#token-input', 'not-the-token');
  await page.click('#token-form button[type=submit]');
  await page.waitForSelector('#token-error:not([hidden])', { timeout: TIMEOUT_MS });
  await formShown(page);
  check(/did not accept/.test(await page.locator('#token-error').textContent()), 'no message for a wrong token');

  await page.fill('#token-input', token);
  await page.click('#token-form button[type=submit]');
  await statusShown(page);
  check(!(await page.content()).includes(token), 'the token is in the page');

  await page.reload({ waitUntil: 'load' });
  await statusShown(page);

  const other = await context.newPage();
  await other.goto(url, { waitUntil: 'load' });
  await formShown(other);
  check((await other.locator('#node-id').textContent()) === '…', 'a new tab shows node data without a token');
} catch (err) {
  problems.push(err.stack || String(err));
} finally {
  if (context) await context.close();
  rmSync(userDataDir, { recursive: true, force: true });
}
if (problems.length > 0) {
  console.error(problems.join('\n'));
  process.exit(1);
}
console.log(JSON.stringify({ ok: true, url }));
