#!/usr/bin/env node
// Headless playback check for the livecdn player page.
//
// Usage: node player/test/play.mjs URL [--seconds N] [--min-frames N]
//          [--arg=--some-chromium-flag ...] [--ignore-cert-spki HASH]
//
// Opens URL in Debian's chromium (CHROMIUM env var, default /usr/bin/chromium),
// polls window.livecdn.stats() every 500 ms until at least --min-frames frames
// were decoded and currentTime advanced, or --seconds ran out, then prints ONE
// JSON line to stdout and exits 0 if playback worked, 1 if not, 2 on bad usage.
// Extra chromium flags: --arg=FLAG (repeatable) and CHROMIUM_ARGS (space separated).

import { chromium } from 'playwright-core';

const USAGE =
  'usage: node player/test/play.mjs URL [--seconds N] [--min-frames N] ' +
  '[--arg=--chromium-flag ...] [--ignore-cert-spki HASH]';

function parseArgs(argv) {
  const opts = { url: null, seconds: 20, minFrames: 30, extraArgs: [] };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const eq = a.indexOf('=');
    const key = a.startsWith('--') && eq > 0 ? a.slice(0, eq) : a;
    const inline = a.startsWith('--') && eq > 0 ? a.slice(eq + 1) : undefined;
    const value = () => {
      if (inline !== undefined) return inline;
      if (i + 1 >= argv.length) throw new Error(`${key} needs a value`);
      return argv[++i];
    };
    const number = () => {
      const v = Number(value());
      if (!Number.isFinite(v) || v < 0) throw new Error(`${key} needs a non-negative number`);
      return v;
    };
    switch (key) {
      case '--seconds': opts.seconds = number(); break;
      case '--min-frames': opts.minFrames = number(); break;
      case '--arg': opts.extraArgs.push(value()); break;
      case '--ignore-cert-spki':
        opts.extraArgs.push(`--ignore-certificate-errors-spki-list=${value()}`);
        break;
      case '-h': case '--help': throw new Error('help');
      default:
        if (a.startsWith('-') || opts.url) throw new Error(`unexpected argument: ${a}`);
        opts.url = a;
    }
  }
  if (!opts.url) throw new Error('missing URL');
  return opts;
}

let opts;
try {
  opts = parseArgs(process.argv.slice(2));
} catch (e) {
  if (e.message !== 'help') process.stderr.write(`${e.message}\n`);
  process.stderr.write(`${USAGE}\n`);
  process.exit(e.message === 'help' ? 0 : 2);
}

const envArgs = (process.env.CHROMIUM_ARGS || '').split(/\s+/).filter(Boolean);
const MAX_LIST = 50;
const consoleErrors = [];
const note = (msg) => { if (consoleErrors.length < MAX_LIST) consoleErrors.push(String(msg).slice(0, 500)); };

let last = null;          // last stats() answer
let firstTime = null;     // first currentTime seen
let printed = false;

function result(ok, extra = {}) {
  return {
    ok,
    decodedFrames: last ? last.decodedFrames : 0,
    droppedFrames: last ? last.droppedFrames : 0,
    currentTime: last ? last.currentTime : null,
    latency: last ? last.latency : null,
    fatalError: last ? last.fatalError : null,
    protocol: last ? last.protocol : null,
    playing: last ? last.playing : false,
    level: last ? last.level : null,
    consoleErrors,
    ...extra,
  };
}

function emit(obj) {
  if (printed) return;
  printed = true;
  process.stdout.write(`${JSON.stringify(obj)}\n`);
}

// Global watchdog: whatever hangs (launch, navigation, close), die after N+30 s.
const watchdog = setTimeout(() => {
  emit(result(false, { error: `global timeout after ${opts.seconds + 30} s` }));
  process.exit(1); // playwright kills the browser it launched on process exit
}, (opts.seconds + 30) * 1000);
watchdog.unref();

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
function withTimeout(promise, ms, what) {
  let t;
  return Promise.race([
    promise,
    new Promise((_, reject) => { t = setTimeout(() => reject(new Error(`${what} timed out after ${ms} ms`)), ms); }),
  ]).finally(() => clearTimeout(t));
}

let browser = null;
let exitCode = 1;
try {
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    timeout: 20000,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--no-first-run',
      '--autoplay-policy=no-user-gesture-required',
      ...envArgs,
      ...opts.extraArgs,
    ],
  });
  const page = await browser.newPage();
  page.setDefaultTimeout(10000);
  page.on('console', (m) => { if (m.type() === 'error') note(`console: ${m.text()}`); });
  page.on('pageerror', (e) => note(`pageerror: ${e.message}`));
  page.on('requestfailed', (r) => note(`requestfailed: ${r.method()} ${r.url()} ${r.failure()?.errorText ?? ''}`));
  page.on('response', (r) => { if (r.status() >= 400) note(`http ${r.status()}: ${r.url()}`); });

  const deadline = Date.now() + opts.seconds * 1000;
  await page.goto(opts.url, { waitUntil: 'domcontentloaded', timeout: Math.max(1000, opts.seconds * 1000) });

  let ok = false;
  while (Date.now() < deadline) {
    try {
      const s = await withTimeout(
        page.evaluate(() => (window.livecdn && window.livecdn.stats ? window.livecdn.stats() : null)),
        5000, 'stats()');
      if (s) {
        last = s;
        if (firstTime === null) firstTime = s.currentTime;
        if (s.decodedFrames >= opts.minFrames && s.currentTime > firstTime) { ok = true; break; }
      }
    } catch (e) {
      note(`driver: ${e.message}`);
    }
    await sleep(Math.min(500, Math.max(0, deadline - Date.now())));
  }
  emit(result(ok, ok ? {} : { error: last ? 'playback did not reach the frame threshold in time' : 'window.livecdn.stats() never became available' }));
  exitCode = ok ? 0 : 1;
} catch (e) {
  emit(result(false, { error: e.message.split('\n')[0] }));
  exitCode = 1;
} finally {
  if (browser) {
    try { await withTimeout(browser.close(), 10000, 'browser.close()'); } catch { /* watchdog covers it */ }
  }
}
// Exit explicitly: a browser that would not close must not keep us alive.
process.exit(exitCode);
