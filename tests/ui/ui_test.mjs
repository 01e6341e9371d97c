// kiln's web UI in a real browser: Debian's chromium, driven by
// playwright-core, against a real `kiln up` with a local worker.
//   KILN_BIN             the kiln binary (required)
//   KILN_UI_SCREENSHOTS  where each page's screenshot goes (./ui-screenshots)
//   CHROMIUM             the browser (/usr/bin/chromium)
// Waits poll until a deadline; figures (frame times, bytes) are printed, and
// only sizes and counts are asserted.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, mkdirSync, rmSync } from 'node:fs';
import { createServer, connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { chromium } from 'playwright-core';

const KILN = process.env.KILN_BIN;
const SHOTS = resolve(process.env.KILN_UI_SCREENSHOTS || 'ui-screenshots');
const FLOOD_LINES = 50000;

const PROJECT = `
timeout: 5
triggers:
  - name: ci
    type: simple
    params:
      GREETING: hello
    runs:
      - name: greet
        host-tag: "*"
        script: greet
        triggers:
          - name: smoke
            run-names: "{name}-after-greet"
      - name: broken
        host-tag: "*"
        script: broken
  - name: smoke
    type: simple
    runs:
      - name: smoke
        host-tag: "*"
        script: smoke
  - name: gpu
    type: simple
    runs:
      - name: train
        host-tag: gpu
        script: greet
  - name: flood
    type: simple
    runs:
      - name: flood
        host-tag: "*"
        script: flood
scripts:
  greet: |
    #!/bin/sh -e
    i=1
    while [ $i -le 60 ]; do
      printf '\\033[32mline %d of 60\\033[0m: %s\\n' $i "$GREETING"
      i=$((i + 1))
      sleep 0.1
    done
    echo "done: $GREETING"
    echo "greeted: $GREETING" > "$ARCHIVE/greeting.txt"
  broken: |
    #!/bin/sh
    echo "compiling widget"
    echo "running widget tests"
    echo "test widget_spins ... ok"
    echo "error: widget_stops failed: expected 0, got 3"
    echo "1 of 2 tests failed"
    exit 1
  smoke: |
    #!/bin/sh -e
    echo "smoke test passed"
  flood: |
    #!/bin/sh -e
    # ${FLOOD_LINES} lines in 10 s: 10 bursts a second apart, with colours.
    b=0
    while [ $b -lt 10 ]; do
      seq $((b * 5000 + 1)) $((b * 5000 + 5000)) | sed 's/.*/\\x1b[36mflood\\x1b[0m line & of ${FLOOD_LINES} ............................................/'
      b=$((b + 1))
      sleep 1
    done
`;

let server;
let base;   // kiln, for the test's own API calls
let ui;     // the browser's way to kiln: a TCP proxy that can drop connections
let proxy;
let admin;
let browser;
let page;
let dataDir;

function freePort() {
  return new Promise((ok, fail) => {
    const s = createServer();
    s.once('error', fail);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => ok(port));
    });
  });
}

// Passes bytes both ways; dropAll() cuts every open connection, as a flaky
// network would. Remembers each request's first line and Last-Event-ID.
function startProxy(port) {
  const open = new Set();
  const requests = [];
  const srv = createServer((client) => {
    const upstream = connect(port, '127.0.0.1');
    open.add(client);
    client.once('data', (head) => {
      const text = head.toString('latin1');
      requests.push({ line: text.split('\r\n')[0], lastEventId: (text.match(/\r\nlast-event-id: *(\d+)/i) || [])[1] });
    });
    client.pipe(upstream).pipe(client);
    const close = () => { open.delete(client); client.destroy(); upstream.destroy(); };
    client.on('error', close).on('close', close);
    upstream.on('error', close).on('close', close);
  });
  return new Promise((ok) => srv.listen(0, '127.0.0.1', () => ok({
    url: `http://127.0.0.1:${srv.address().port}`,
    requests,
    dropAll() { for (const c of [...open]) c.destroy(); },
    close() { this.dropAll(); srv.close(); },
  })));
}

async function waitFor(what, fn, timeoutMs = 60000) {
  const deadline = Date.now() + timeoutMs;
  let last;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (e) { last = e; }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last ? `: ${last.message}` : ''}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function call(method, path, body, headers = {}) {
  const h = { Authorization: `Bearer ${admin}`, ...headers };
  if (body !== undefined && typeof body !== 'string') h['Content-Type'] = 'application/json';
  const res = await fetch(`${base}/v1${path}`, { method, headers: h, body: typeof body === 'string' ? body : JSON.stringify(body) });
  const text = await res.text();
  if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${text}`);
  return text ? JSON.parse(text) : null;
}

// The console's lines as shown, without kiln's own "== " lines.
async function scriptLines(p) {
  return p.evaluate(() => [...document.querySelectorAll('.console .ln .t')]
    .map((e) => e.textContent).filter((t) => !t.startsWith('== ')));
}

async function shot(name, p = page) {
  await p.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true });
}

before(async () => {
  assert.ok(KILN, 'KILN_BIN names the kiln binary');
  mkdirSync(SHOTS, { recursive: true });
  dataDir = mkdtempSync(join(tmpdir(), 'kiln-ui-'));
  const port = await freePort();
  base = `http://127.0.0.1:${port}`;
  server = spawn(KILN, ['up', '--listen', `127.0.0.1:${port}`, '--data', join(dataDir, 'data'), '--workers', '1'],
    { stdio: ['ignore', 'inherit', 'inherit'] });
  await waitFor('kiln up to be ready', async () => (await fetch(`${base}/readyz`)).ok, 60000);
  admin = readFileSync(join(dataDir, 'data', 'admin.token'), 'utf8').trim();
  proxy = await startProxy(port);
  ui = proxy.url;
  await call('PUT', '/projects/demo', PROJECT, { 'Content-Type': 'application/yaml' });
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-quic'],
  });
  page = await browser.newPage({ viewport: { width: 1280, height: 860 } });
  page.on('pageerror', (e) => console.error(`page error: ${e.message}`));
});

after(async () => {
  await browser?.close();
  proxy?.close();
  if (server && server.exitCode === null) {
    server.kill('SIGTERM');
    await new Promise((r) => server.once('exit', r));
  }
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
});

test('an unknown token is refused, the admin token signs in', async () => {
  await page.goto(ui);
  await page.waitForURL(/#\/signin$/);
  await page.fill('input[name=token]', 'kt.not-a-token');
  await page.click('button[type=submit]');
  await page.getByRole('alert').filter({ hasText: 'Sign-in failed' }).waitFor();
  await shot('signin');
  await page.fill('input[name=token]', admin);
  await page.click('button[type=submit]');
  await page.locator('tr[data-project=demo]').waitFor();
  assert.equal(await page.locator('[data-who]').textContent(), 'admin token');
  await shot('projects');
});

test('a build triggered from the form runs with the params given there', async () => {
  await page.click('tr[data-project=demo] td:first-child a');
  await page.waitForURL(/#\/p\/demo$/);
  const form = page.getByRole('form', { name: 'Trigger a build' });
  await form.locator('select[name=trigger]').selectOption('ci');
  assert.equal(await form.locator('input[name="param:GREETING"]').inputValue(), 'hello');
  await form.locator('input[name="param:GREETING"]').fill('from-the-ui');
  await form.locator('input[name=reason]').fill('checking the UI');
  await shot('project');
  await form.locator('button[type=submit]').click();
  await page.waitForURL(/#\/p\/demo\/1$/);
  await page.locator('tr[data-run=greet]').waitFor();
  await page.locator('tr[data-run=broken]').waitFor();
  const build = await call('GET', '/projects/demo/builds/1');
  assert.deepEqual(build.params, { GREETING: 'from-the-ui' });
  assert.equal(build.reason, 'checking the UI');
  await shot('build-running');
});

test("a run's console grows live to its last line", async () => {
  await page.click('tr[data-run=greet] a');
  await page.waitForURL(/#\/p\/demo\/1\/greet$/);
  const consoleEl = page.locator('.console');
  // Seen part-way: some lines, not all, while the run is RUNNING.
  const partial = await waitFor('a console part-way', async () => {
    const n = Number(await consoleEl.getAttribute('data-lines'));
    const running = await page.locator('h1 .st-RUNNING').count();
    return n > 0 && n < 61 && running ? n : 0;
  });
  assert.ok(partial > 0 && partial < 61);
  // The connection drops mid-run: the console resumes where it was.
  proxy.dropAll();
  const resumed = await waitFor('the console to resume', async () => proxy.requests.find((r) =>
    r.line.includes('/runs/greet/console') && Number(r.lastEventId) > 0));
  assert.ok(Number(resumed.lastEventId) > 0);
  await page.locator('.console .ln:has-text("done: from-the-ui")').waitFor({ timeout: 60000 });
  await waitFor('the run to show PASSED', async () => page.locator('h1 .st-PASSED').count());
  // Every line once, in order; ANSI colours became spans, without escape bytes.
  const expected = Array.from({ length: 60 }, (_, i) => `line ${i + 1} of 60: from-the-ui`).concat('done: from-the-ui');
  assert.deepEqual(await scriptLines(page), expected);
  assert.equal(await page.locator('.ln:has-text("line 1 of 60") .t .f2').textContent(), 'line 1 of 60');
  // Its artifact, with its size, downloads through the API with the token.
  const artifact = page.locator('tr:has(td:text-is("greeting.txt"))');
  await artifact.waitFor();
  assert.equal(await artifact.locator('td').nth(1).textContent(), '21 B');
  const [download] = await Promise.all([page.waitForEvent('download'), artifact.locator('button').click()]);
  assert.equal(download.suggestedFilename(), 'greeting.txt');
  assert.equal(readFileSync(await download.path(), 'utf8'), 'greeted: from-the-ui\n');
  await shot('run');
});

test('a failing run shows FAILED and its first error is one click away', async () => {
  await page.click('.crumbs a:text-is("#1")');
  await page.waitForURL(/#\/p\/demo\/1$/);
  await waitFor('broken to show FAILED', async () => page.locator('tr[data-run=broken] .st-FAILED').count());
  await waitFor('the build to show FAILED', async () => page.locator('h1 .st-FAILED').count());
  // The run greet's chained trigger added sits right under greet.
  const rows = await page.locator('tr[data-run]').evaluateAll((trs) => trs.map((t) => `${t.dataset.run}${t.classList.contains('child') ? ' (child)' : ''}`));
  assert.deepEqual(rows, ['greet', 'smoke-after-greet (child)', 'broken']);
  await shot('build-failed');
  await page.click('tr[data-run=broken] a');
  await page.waitForURL(/#\/p\/demo\/1\/broken$/);
  await waitFor('the console to end', async () => (await page.locator('.console').getAttribute('data-ended')) === 'true');
  await page.click('button:text-is("First error")');
  await page.waitForURL(/#\/p\/demo\/1\/broken\/L\d+$/);
  assert.equal(await page.locator('.ln.hl .t').textContent(), 'error: widget_stops failed: expected 0, got 3');
  await shot('run-first-error');
  // The line's address opens the page at that line.
  const at = Number(page.url().match(/L(\d+)$/)[1]);
  await page.goto(`${ui}/#/p/demo/1/broken/L${at - 2}`);
  await page.reload();
  await waitFor('the line to be marked', async () => (await page.locator('.ln.hl .t').textContent()) === 'running widget tests');
});

test('rerun failed starts a build with only the failed run', async () => {
  await page.goto(`${ui}/#/p/demo/1`);
  await page.click('button:text-is("Rerun failed")');
  await page.waitForURL(/#\/p\/demo\/2$/);
  await page.locator('tr[data-run=broken]').waitFor();
  assert.equal(await page.locator('tr[data-run]').count(), 1);
  const build = await call('GET', '/projects/demo/builds/2');
  assert.deepEqual(build.runs.map((r) => r.name), ['broken']);
  assert.equal(build.rerun_of, 1);
});

test('the queue says why a run waits for a tag no worker has', async () => {
  const { build } = await call('POST', '/projects/demo/builds', { trigger: 'gpu' });
  await page.click('nav a:text-is("Queue")');
  const row = page.locator(`tr[data-run="demo/${build}/train"]`);
  await row.waitFor();
  assert.equal(await row.locator('td').nth(1).textContent(), 'No worker for it');
  assert.match(await row.locator('td').nth(2).textContent(), /tag 'gpu'/);
  await shot('queue');
});

test('an admin enlists a pending worker', async () => {
  const res = await fetch(`${base}/v1/workers`, {
    method: 'POST', headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ name: 'gpu-box', tags: ['gpu', 'linux'], concurrency: 2 }),
  });
  assert.equal(res.status, 201);
  await page.click('nav a:text-is("Workers")');
  const row = page.locator('tr[data-worker=gpu-box]');
  await row.locator('.st-pending').waitFor();
  await shot('workers-pending');
  await row.locator('button:text-is("Enlist")').click();
  await row.locator('.st-offline').waitFor();
  const workers = await call('GET', '/workers');
  assert.equal(workers.find((w) => w.name === 'gpu-box').enlisted, true);
  await row.locator('button:text-is("Delist")').waitFor();
  await shot('workers');
});

test('the event page follows commits live and filters them', async () => {
  await page.click('nav a:text-is("Events")');
  await page.fill('input[name=filter]', 'demo.>');
  await page.click('button:text-is("Follow")');
  await page.locator('.events li').first().waitFor();
  const before = await page.locator('.events li').count();
  await call('POST', '/projects/demo/builds/1/pin', { name: 'ui-check' });
  await waitFor('the pin to arrive', async () => (await page.locator('.events li').first().textContent()).includes('BuildPinned'));
  assert.ok(await page.locator('.events li').count() > before);
  for (const s of await page.locator('.events li summary .mono').allTextContents())
    if (s.includes('/')) assert.match(s, /\/demo(\/|$)/);
  await shot('events');
});

test('the badge shows the last build', async () => {
  // The last build is the gpu one, still waiting for its worker.
  const res = await fetch(`${base}/v1/projects/demo/badge.svg`, { headers: { Authorization: `Bearer ${admin}` } });
  assert.equal(res.headers.get('content-type'), 'image/svg+xml');
  assert.match(await res.text(), /^<svg [^>]*aria-label="build: running"/);
  await page.click('nav a:text-is("Projects")');
  const row = page.locator('tr[data-project=demo]');
  await row.locator('.st-RUNNING').waitFor();
  await row.locator('button:text-is("Badge")').click();
  assert.equal(await row.locator('.copy input').inputValue(), `![build](${ui}/v1/projects/demo/badge.svg)`);
  // The list is redrawn every few seconds; the open field stays open.
  const drawn = await row.elementHandle();
  await page.waitForFunction((el) => !el.isConnected, drawn, { timeout: 30000 });
  assert.equal(await row.locator('.copy input').inputValue(), `![build](${ui}/v1/projects/demo/badge.svg)`);
});

test('on a phone the pages still fit', async () => {
  const phone = await browser.newPage({ viewport: { width: 390, height: 844 }, isMobile: true });
  await phone.addInitScript((t) => sessionStorage.setItem('kiln.token', t), admin);
  await phone.goto(`${ui}/#/p/demo/1`);
  await phone.locator('tr[data-run=broken]').waitFor();
  const overflow = await phone.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert.ok(overflow <= 0, `the page is ${overflow}px wider than the phone`);
  await shot('phone-build', phone);
  // Keyboard: the first Tab reaches the skip link, the next ones the menu.
  await phone.keyboard.press('Tab');
  assert.equal(await phone.evaluate(() => document.activeElement.className), 'skip');
  await phone.close();
});

test('a first load transfers under 100 KB', async () => {
  const fresh = await browser.newPage();
  await fresh.addInitScript((t) => sessionStorage.setItem('kiln.token', t), admin);
  let total = 0;
  const seen = [];
  const cdp = await fresh.context().newCDPSession(fresh);
  await cdp.send('Network.enable');
  cdp.on('Network.loadingFinished', (e) => { total += e.encodedDataLength; seen.push(e.encodedDataLength); });
  await fresh.goto(`${ui}/#/p/demo/1`, { waitUntil: 'networkidle' });
  await fresh.locator('tr[data-run=broken]').waitFor();
  console.log(`ui-first-load: {"bytes":${total},"requests":${seen.length}}`);
  assert.ok(total < 100 * 1024, `first load transferred ${total} bytes`);
  await fresh.close();
});

test('the run page keeps up while a run prints 50,000 lines in 10 s', async () => {
  const perf = await browser.newPage({ viewport: { width: 1280, height: 860 } });
  await perf.addInitScript((t) => {
    sessionStorage.setItem('kiln.token', t);
    // Long tasks (>50 ms on the main thread) and the gaps between frames.
    window.__perf = { long: [], frames: [] };
    new PerformanceObserver((l) => { for (const e of l.getEntries()) window.__perf.long.push(e.duration); })
      .observe({ type: 'longtask', buffered: true });
    let last = performance.now();
    const frame = (now) => { window.__perf.frames.push(now - last); last = now; requestAnimationFrame(frame); };
    requestAnimationFrame(frame);
  }, admin);
  const { build } = await call('POST', '/projects/demo/builds', { trigger: 'flood' });
  await perf.goto(`${ui}/#/p/demo/${build}/flood`);
  const started = Date.now();
  // Polled in the page: a Playwright locator walks the whole DOM each time.
  await perf.waitForFunction(() => document.querySelector('.console')?.dataset.ended === 'true', null,
    { timeout: 180000, polling: 250 });
  const seconds = (Date.now() - started) / 1000;
  // Responsive: a click on the page is handled while it renders.
  const figures = await perf.evaluate(() => {
    const f = window.__perf.frames.slice(5).sort((a, b) => a - b);
    const pct = (p) => f[Math.min(f.length - 1, Math.floor(f.length * p))] || 0;
    const long = window.__perf.long;
    return {
      frames: f.length,
      frame_p50_ms: +pct(0.5).toFixed(1),
      frame_p99_ms: +pct(0.99).toFixed(1),
      frame_max_ms: +(f[f.length - 1] || 0).toFixed(1),
      long_tasks: long.length,
      long_task_total_ms: Math.round(long.reduce((a, b) => a + b, 0)),
      long_task_max_ms: Math.round(Math.max(0, ...long)),
    };
  });
  const lines = await scriptLines(perf);
  assert.equal(lines.length, FLOOD_LINES);
  assert.equal(lines[FLOOD_LINES - 1], `flood line ${FLOOD_LINES} of ${FLOOD_LINES} ............................................`);
  console.log(`ui-console-50k: ${JSON.stringify({ lines: FLOOD_LINES, seconds_to_last_line: +seconds.toFixed(1), ...figures })}`);
  await perf.click('button:text-is("Jump to end")');
  await shot('run-50k-lines', perf);
  await perf.close();
});
