#!/usr/bin/env node
// Real-browser check of a tributary node's status page (statuspage/ui).
//
//   node statuspage.mjs [--min-nodes N] [--change-timeout-ms MS] URL SCREENSHOT
//
// URL is the page (http://HOST:PORT/), SCREENSHOT the PNG to write; both may
// also come from STATUSPAGE_URL and STATUSPAGE_SCREENSHOT. Chromium is
// /usr/bin/chromium (CHROMIUM_PATH overrides it); playwright-core only drives
// it, it never downloads a browser.
//
// The check: the page loads and renders without console errors, page errors
// or failed requests to its own origin; every member of /v1/status's .cluster
// and every pipeline with tasks is visible; at least --min-nodes members are
// listed; every pipeline shows its figures whatever node runs its tasks (the
// page polls v1/status?scope=cluster, in which the node asks the other
// members): a Kafka pipeline its lag and replicated records in its summary and
// in each task's row (for a Pub/Sub receiver, lag is the messages it holds),
// and its tasks running; at least one task with
// figures runs on another node than the page's, and no member is unreachable;
// a displayed lag, records or throughput figure changes within
// --change-timeout-ms (the demo's generator keeps writing). A full-page
// screenshot is saved, on failure too. On success a JSON summary goes to
// stdout; on failure the reasons go to stderr and the exit code is 1 (2 for
// bad usage).

import { mkdtempSync, mkdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { chromium } from 'playwright-core';

// DEFAULT_MIN_NODES is the number of cluster members the page must list unless
// --min-nodes says otherwise (test/browser_test.go passes 3, the demo's nodes).
const DEFAULT_MIN_NODES = 1;
const DEFAULT_CHANGE_TIMEOUT_MS = 20000;
// The page polls v1/status every 2 s; the first render must come well within this.
const RENDER_TIMEOUT_MS = 15000;
// A hard limit on the whole run, so that a hung browser never hangs the test.
const OVERALL_TIMEOUT_MS = 120000;

// Without the networking flags Chromium's own background connections are
// refused on the test machines and show up as noise (or hang the start).
const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

// Labels of the figures that must move while the generator writes.
const FIGURE_LABELS = /^(Lag|Replicated|Throughput)/;

function usage(msg) {
  process.stderr.write(`statuspage: ${msg}\n` +
    'usage: node statuspage.mjs [--min-nodes N] [--change-timeout-ms MS] URL SCREENSHOT\n' +
    '       (or STATUSPAGE_URL, STATUSPAGE_SCREENSHOT, STATUSPAGE_MIN_NODES)\n');
  process.exit(2);
}

function options() {
  let parsed;
  try {
    parsed = parseArgs({
      allowPositionals: true,
      options: {
        'min-nodes': { type: 'string' },
        'change-timeout-ms': { type: 'string' },
      },
    });
  } catch (err) {
    usage(err.message);
  }
  const { values, positionals } = parsed;
  if (positionals.length > 2) usage('too many arguments: ' + positionals.join(' '));
  const url = positionals[0] || process.env.STATUSPAGE_URL;
  const screenshot = positionals[1] || process.env.STATUSPAGE_SCREENSHOT;
  if (!url) usage('no page URL');
  if (!screenshot) usage('no screenshot path');
  let page;
  try {
    page = new URL(url);
  } catch {
    usage('not a URL: ' + url);
  }
  const int = (name, v, def) => {
    if (v === undefined || v === '') return def;
    const n = Number(v);
    if (!Number.isInteger(n) || n < 0) usage(`--${name} must be a non-negative integer, got ${v}`);
    return n;
  };
  return {
    url: page.href,
    origin: page.origin,
    screenshot: resolve(screenshot),
    minNodes: int('min-nodes', values['min-nodes'] ?? process.env.STATUSPAGE_MIN_NODES, DEFAULT_MIN_NODES),
    changeTimeoutMs: int('change-timeout-ms', values['change-timeout-ms'], DEFAULT_CHANGE_TIMEOUT_MS),
    chromium: process.env.CHROMIUM_PATH || '/usr/bin/chromium',
  };
}

class CheckError extends Error {}

function check(cond, msg) {
  if (!cond) throw new CheckError(msg);
}

function escapeRegExp(s) {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// expected reads v1/status?scope=cluster itself: the member ids, the names of
// the pipelines that have tasks (the page shows only those) with the kind of
// their source, and the members that did not answer.
async function expected(page, opts) {
  const url = new URL('v1/status?scope=cluster', opts.url).href;
  let st;
  try {
    const resp = await page.request.get(url, { headers: { Accept: 'application/json' } });
    check(resp.ok(), `GET ${url} answered ${resp.status()} ${resp.statusText()}`);
    st = await resp.json();
  } catch (err) {
    if (err instanceof CheckError) throw err;
    throw new CheckError(`GET ${url}: ${String(err.message || err).split('\n')[0]}`);
  }
  const cluster = st.cluster || {};
  const members = (cluster.members || []).map((m) => m.id).filter(Boolean).sort();
  const pipelines = new Set();
  for (const t of [...(st.tasks || []), ...(cluster.tasks || []), ...(st.local_tasks || [])]) {
    if (t.pipeline) pipelines.add(t.pipeline);
  }
  const sources = {};
  for (const t of st.tasks || []) {
    if (t.pipeline && t.source) sources[t.pipeline] = t.source;
  }
  return {
    node: (st.node || {}).id || cluster.node || '',
    members,
    pipelines: [...pipelines].sort(),
    sources,
    scope: st.scope || '',
    unreachable: (st.unreachable || []).map((u) => `${u.id} (${u.error})`),
  };
}

// pipelineRows reads each pipeline article of the page: its summary facts and,
// per task row, the node, the state and the figure cells by column heading
// (a row without figures has one cell spanning them, under "note").
function pipelineRows(page) {
  return page.evaluate(() => {
    const out = {};
    for (const art of document.querySelectorAll('#pipeline-list article')) {
      const name = (art.querySelector('h3')?.textContent || '').trim();
      const summary = {};
      for (const div of art.querySelectorAll('dl.summary > div')) {
        summary[(div.querySelector('dt')?.textContent || '').trim()] = (div.querySelector('dd')?.textContent || '').trim();
      }
      const heads = [...art.querySelectorAll('thead th')].map((th) => th.textContent.trim());
      const rows = [];
      for (const tr of art.querySelectorAll('tbody tr')) {
        const cells = [...tr.children];
        const row = { task: (cells[0]?.textContent || '').trim(), cells: {}, note: '' };
        let col = 0;
        for (const c of cells) {
          const text = c.textContent.trim();
          if (c.hasAttribute('colspan')) row.note = text;
          else row.cells[heads[col]] = text;
          col += Number(c.getAttribute('colspan') || 1);
        }
        row.node = (row.cells.Node || '').split(/\s/)[0];
        row.state = row.cells.State || '';
        rows.push(row);
      }
      out[name] = { summary, rows };
    }
    return out;
  });
}

// clusterFigureProblems lists what the page lacks to show every pipeline's
// figures, and counts the task rows with figures measured on another node.
function clusterFigureProblems(shown, want) {
  const problems = [];
  const number = (s) => /\d/.test(s || '');
  let remote = 0;
  for (const name of want.pipelines) {
    const p = shown[name];
    if (!p) {
      problems.push(`${name}: not on the page`);
      continue;
    }
    if (p.rows.length === 0) problems.push(`${name}: no task rows`);
    if (want.sources[name] === 'pubsub') {
      for (const r of p.rows) {
        if (!/^(running|starting)$/.test(r.state)) problems.push(`${r.task} (Pub/Sub, on ${r.node}): state "${r.state}", want its node's running state (${r.note})`);
      }
    }
    for (const label of ['Lag', 'Replicated']) {
      if (!number(p.summary[label])) problems.push(`${name}: summary ${label} is "${p.summary[label] ?? ''}"`);
    }
    for (const r of p.rows) {
      const missing = ['Lag (records)', 'Replicated'].filter((h) => !number(r.cells[h]));
      if (missing.length) {
        problems.push(`${r.task} (on ${r.node}): no ${missing.join(', ')}` + (r.note ? ` ("${r.note}")` : ''));
      } else if (r.node !== want.node) {
        remote++;
      }
    }
  }
  return { problems, remote };
}

// figures returns the lag, records and throughput figures the page shows, by
// "pipeline / label" (pipeline summaries) and "task / column" (task rows).
function figures(page) {
  return page.evaluate((labelSrc) => {
    const labels = new RegExp(labelSrc);
    const out = {};
    for (const art of document.querySelectorAll('#pipeline-list article')) {
      const name = (art.querySelector('h3')?.textContent || '').trim();
      for (const div of art.querySelectorAll('dl.summary > div')) {
        const dt = (div.querySelector('dt')?.textContent || '').trim();
        if (labels.test(dt)) out[name + ' / ' + dt] = (div.querySelector('dd')?.textContent || '').trim();
      }
      const heads = [...art.querySelectorAll('thead th')].map((th) => th.textContent.trim());
      for (const tr of art.querySelectorAll('tbody tr')) {
        const cells = [...tr.children];
        const task = (cells[0]?.textContent || '').trim();
        cells.forEach((c, i) => {
          if (i > 0 && c.tagName === 'TD' && !c.hasAttribute('colspan') && labels.test(heads[i] || '')) {
            out[task + ' / ' + heads[i]] = c.textContent.trim();
          }
        });
      }
    }
    return out;
  }, FIGURE_LABELS.source);
}

// changedFigure returns the first figure that went from one number to
// another; a first throughput sample replacing "—" does not count.
function changedFigure(before, after) {
  const number = (s) => /\d/.test(s || '');
  for (const [k, v] of Object.entries(after)) {
    if (number(before[k]) && number(v) && before[k] !== v) return { figure: k, before: before[k], after: v };
  }
  return null;
}

async function run(opts) {
  const started = Date.now();
  const problems = []; // console errors, page errors, failed requests
  let collecting = true;
  const userDataDir = mkdtempSync(join(tmpdir(), 'tributary-chromium-'));
  let context;
  let page;
  let shot = false;
  try {
    context = await chromium.launchPersistentContext(userDataDir, {
      executablePath: opts.chromium,
      headless: true,
      args: CHROMIUM_ARGS,
      viewport: { width: 1280, height: 900 },
      timeout: 30000,
    });
    page = context.pages()[0] || (await context.newPage());
    page.setDefaultTimeout(RENDER_TIMEOUT_MS);
    const own = (u) => {
      try {
        return new URL(u).origin === opts.origin;
      } catch {
        return false;
      }
    };
    page.on('console', (msg) => {
      if (collecting && msg.type() === 'error') {
        const loc = msg.location();
        problems.push(`console error: ${msg.text()}` + (loc && loc.url ? ` (${loc.url}:${loc.lineNumber})` : ''));
      }
    });
    page.on('pageerror', (err) => {
      if (collecting) problems.push(`page error: ${err.stack || err.message || String(err)}`);
    });
    page.on('requestfailed', (req) => {
      if (collecting && own(req.url())) problems.push(`request failed: ${req.method()} ${req.url()}: ${req.failure()?.errorText || 'unknown error'}`);
    });
    page.on('response', (resp) => {
      if (collecting && own(resp.url()) && resp.status() >= 400) problems.push(`request failed: ${resp.request().method()} ${resp.url()}: HTTP ${resp.status()}`);
    });

    const want = await expected(page, opts);
    const resp = await page.goto(opts.url, { waitUntil: 'load', timeout: RENDER_TIMEOUT_MS });
    check(resp && resp.ok(), `GET ${opts.url} answered ${resp ? resp.status() : 'nothing'}`);
    check(want.members.length >= 1, 'v1/status lists no cluster members (.cluster.members is empty)');
    check(want.members.length >= opts.minNodes,
      `v1/status lists ${want.members.length} cluster members (${want.members.join(', ')}), want at least --min-nodes=${opts.minNodes}`);
    check(want.pipelines.length >= 1, 'v1/status lists no tasks, so there is no pipeline to look for on the page');

    // The first successful poll replaces "Loading…" with "Updated HH:MM:SS".
    try {
      await page.waitForFunction(() => /^(Updated|Stale)/.test(document.getElementById('updated')?.textContent || ''),
        null, { timeout: RENDER_TIMEOUT_MS });
    } catch {
      const text = await page.locator('#updated').textContent().catch(() => '?');
      throw new CheckError(`the page did not render a status within ${RENDER_TIMEOUT_MS / 1000} s (it says "${text}")`);
    }

    const missing = [];
    const members = page.locator('#cluster').getByRole('rowheader');
    for (const id of want.members) {
      const row = members.filter({ hasText: new RegExp('^\\s*' + escapeRegExp(id) + '(\\s|$)') }).first();
      try {
        await row.waitFor({ state: 'visible', timeout: RENDER_TIMEOUT_MS });
      } catch {
        missing.push(`member ${id}`);
      }
    }
    const headings = page.locator('#pipeline-list').getByRole('heading', { level: 3 });
    for (const name of want.pipelines) {
      const h = headings.filter({ hasText: new RegExp('^\\s*' + escapeRegExp(name) + '\\s*$') }).first();
      try {
        await h.waitFor({ state: 'visible', timeout: RENDER_TIMEOUT_MS });
      } catch {
        missing.push(`pipeline ${name}`);
      }
    }
    check(missing.length === 0, 'not visible on the page: ' + missing.join(', '));
    const shownMembers = await members.count();
    check(shownMembers >= opts.minNodes, `the page lists ${shownMembers} cluster members, want at least --min-nodes=${opts.minNodes}`);

    // Every pipeline's figures, whatever node runs its tasks. Tasks may still
    // be starting when the demo reports ready: wait for them.
    check(want.scope === 'cluster', `v1/status?scope=cluster answered scope "${want.scope}", want "cluster"`);
    check(want.unreachable.length === 0, 'members did not answer the cluster status: ' + want.unreachable.join(', '));
    let cluster = clusterFigureProblems(await pipelineRows(page), want);
    const figuresDeadline = Date.now() + RENDER_TIMEOUT_MS;
    while ((cluster.problems.length || cluster.remote === 0) && Date.now() < figuresDeadline) {
      await sleep(500);
      cluster = clusterFigureProblems(await pipelineRows(page), want);
    }
    check(cluster.problems.length === 0, `not every pipeline's figures are on the page of ${want.node} within ${RENDER_TIMEOUT_MS / 1000} s:\n  ` +
      cluster.problems.join('\n  '));
    check(cluster.remote > 0, `no task with figures runs on another node than ${want.node}: the page shows no remote figures`);
    const noAnswer = await page.locator('#alerts').getByText(/^No answer from/).count();
    check(noAnswer === 0, `the page reports ${noAnswer} member(s) that did not answer`);

    // The figures move while the generator writes: wait for one to change.
    const first = await figures(page);
    check(Object.keys(first).length > 0,
      'the page shows no lag, records or throughput figures (does no task run on node ' + (want.node || '?') + '?)');
    let change = null;
    const deadline = Date.now() + opts.changeTimeoutMs;
    while (!change && Date.now() < deadline) {
      await sleep(500);
      change = changedFigure(first, await figures(page));
    }
    check(change, `no lag, records or throughput figure changed within ${opts.changeTimeoutMs / 1000} s; ` +
      'shown: ' + JSON.stringify(first));

    // One more poll, so that errors of a later refresh are caught too.
    await sleep(2500);
    collecting = false;
    mkdirSync(dirname(opts.screenshot), { recursive: true });
    await page.screenshot({ path: opts.screenshot, fullPage: true });
    shot = true;
    check(problems.length === 0, `${problems.length} browser problem(s):\n  ` + problems.join('\n  '));

    const alerts = (await page.locator('#alerts').innerText()).trim();
    return {
      ok: true,
      url: opts.url,
      node: want.node,
      members: want.members,
      pipelines: want.pipelines,
      figures: Object.keys(first).length,
      remoteTasksWithFigures: cluster.remote,
      changed: change,
      alerts: alerts ? alerts.split('\n') : [],
      screenshot: opts.screenshot,
      seconds: Math.round((Date.now() - started) / 100) / 10,
    };
  } catch (err) {
    collecting = false;
    if (page && !shot && page.url() !== 'about:blank') {
      try {
        mkdirSync(dirname(opts.screenshot), { recursive: true });
        await page.screenshot({ path: opts.screenshot, fullPage: true });
        err.screenshot = opts.screenshot;
      } catch {
        // The browser is gone; the error says why.
      }
    } else if (shot) {
      err.screenshot = opts.screenshot;
    }
    if (problems.length && !(err instanceof CheckError && err.message.includes('browser problem'))) {
      err.problems = problems;
    }
    throw err;
  } finally {
    collecting = false;
    if (context) await context.close().catch(() => {});
    rmSync(userDataDir, { recursive: true, force: true });
  }
}

const opts = options();
setTimeout(() => {
  process.stderr.write(`statuspage: FAIL: gave up after ${OVERALL_TIMEOUT_MS / 1000} s\n`);
  process.exit(1);
}, OVERALL_TIMEOUT_MS).unref();

try {
  const summary = await run(opts);
  process.stdout.write(JSON.stringify(summary) + '\n');
} catch (err) {
  const msg = err instanceof CheckError ? err.message : err.stack || String(err);
  let out = `statuspage: FAIL: ${msg}\n`;
  if (err.problems) out += '  browser problems meanwhile:\n    ' + err.problems.join('\n    ') + '\n';
  if (err.screenshot) out += `  screenshot: ${err.screenshot}\n`;
  process.stderr.write(out);
  process.exitCode = 1;
}
