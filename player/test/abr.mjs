#!/usr/bin/env node
// Headless ABR check for the livecdn player page: down under a throttle, up after.
//
// Usage: node player/test/abr.mjs URL [--seconds N] [--throttle-kbps N]
//          [--latency-ms N] [--arg=--some-chromium-flag ...] [--ignore-cert-spki HASH]
//
// Opens URL (the player page on a multi-level stream) in Debian's chromium
// (CHROMIUM env var, default /usr/bin/chromium) and, polling
// window.livecdn.stats():
//   1. waits until playback runs on Auto on a level that has a cheaper one below it;
//   2. throttles the page's downloads to --throttle-kbps (DevTools
//      Network.emulateNetworkConditions) and waits until hls.js switches to a
//      level of lower bitrate;
//   3. lifts the throttle and waits until it switches to a level above the
//      throttled one.
// All of it within --seconds. Prints ONE JSON line to stdout:
//   {ok, before_level, throttled_level, after_level, levels, switches, stalls,
//    down_after_ms, up_after_ms, throttled_at_ms, lifted_at_ms, bw_kbps,
//    throttle_kbps, console_errors, error?}
// and exits 0 if it went down and back up with no stall, 1 if not, 2 on bad usage.
// Levels are indexes into `levels`; `switches[].at`, `throttled_at_ms` and
// `lifted_at_ms` are the page's performance.now(); `stalls` counts 'waiting'
// events from the throttle on; `bw_kbps` is hls.js's bandwidth estimate at
// the throttle, at the switch down and at the end.
// Extra chromium flags: --arg=FLAG (repeatable) and CHROMIUM_ARGS (space separated).

import { errorList, launch, parseOrExit, sleep, withTimeout } from './driver.mjs';

const USAGE =
  'usage: node player/test/abr.mjs URL [--seconds N] [--throttle-kbps N] [--latency-ms N] ' +
  '[--arg=--chromium-flag ...] [--ignore-cert-spki HASH]';

const opts = parseOrExit(process.argv.slice(2), { url: null, seconds: 60, throttleKbps: 900, latencyMs: 20, extraArgs: [] }, (key, value, number, o) => {
  switch (key) {
    case '--throttle-kbps': o.throttleKbps = number(); return true;
    case '--latency-ms': o.latencyMs = number(); return true;
    default: return false;
  }
}, USAGE);

const { list: consoleErrors, note } = errorList();

// What the run found so far; printed as is on success or on any failure.
const out = {
  ok: false,
  before_level: null,
  throttled_level: null,
  after_level: null,
  levels: [],
  switches: [],
  stalls: null,
  down_after_ms: null,
  up_after_ms: null,
  throttled_at_ms: null,
  lifted_at_ms: null,
  bw_kbps: [],
  throttle_kbps: opts.throttleKbps,
  console_errors: consoleErrors,
};
let last = null;          // last stats() answer
let stallsAtThrottle = null;
let printed = false;

function emit(error) {
  if (printed) return;
  printed = true;
  if (last) {
    out.levels = last.levels;
    out.switches = last.switches;
    if (stallsAtThrottle !== null) out.stalls = last.stalls - stallsAtThrottle;
  }
  process.stdout.write(`${JSON.stringify(error ? { ...out, error } : out)}\n`);
}

// Global watchdog: whatever hangs (launch, navigation, close), die after N+30 s.
const watchdog = setTimeout(() => {
  emit(`global timeout after ${opts.seconds + 30} s`);
  process.exit(1); // playwright kills the browser it launched on process exit
}, (opts.seconds + 30) * 1000);
watchdog.unref();


const bitrate = (s, i) => (s.levels[i] ? s.levels[i].bitrate : null);

let browser = null;
let page = null;
const deadline = Date.now() + opts.seconds * 1000;

// Poll stats() until pred(stats) is truthy; returns that value. Throws naming
// `what` when the --seconds budget runs out.
async function waitFor(what, pred) {
  while (Date.now() < deadline) {
    let s = null;
    try {
      s = await withTimeout(
        page.evaluate(() => (window.livecdn && window.livecdn.stats ? window.livecdn.stats() : null)),
        5000, 'stats()');
    } catch (e) {
      note(`driver: ${e.message}`);
    }
    if (s) {
      last = s;
      const v = pred(s); // may throw to end the run early
      if (v) return v;
    }
    await sleep(Math.min(250, Math.max(0, deadline - Date.now())));
  }
  throw new Error(`timed out waiting for ${what}`);
}

// Page clock and hls.js's bandwidth estimate, read right after a network change.
const pageNow = () => page.evaluate(() => Math.round(performance.now()));
async function sampleBandwidth() {
  const bw = await page.evaluate(() => (window.livecdn.hls ? window.livecdn.hls.bandwidthEstimate : null));
  out.bw_kbps.push(bw == null ? null : Math.round(bw / 1000));
}

let exitCode = 1;
try {
  browser = await launch(opts.extraArgs);
  page = await browser.newPage();
  page.setDefaultTimeout(10000);
  page.on('console', (m) => { if (m.type() === 'error') note(`console: ${m.text()}`); });
  page.on('pageerror', (e) => note(`pageerror: ${e.message}`));
  page.on('requestfailed', (r) => note(`requestfailed: ${r.method()} ${r.url()} ${r.failure()?.errorText ?? ''}`));
  page.on('response', (r) => { if (r.status() >= 400) note(`http ${r.status()}: ${r.url()}`); });
  const cdp = await page.context().newCDPSession(page);
  await cdp.send('Network.enable');

  await page.goto(opts.url, { waitUntil: 'domcontentloaded', timeout: Math.max(1000, opts.seconds * 1000) });

  // 1. Steady playback on Auto, a few seconds in (past the start-up level
  // choice), on a level with a cheaper one to fall back to.
  let firstTime = null;
  await waitFor('playback on Auto above the lowest level', (s) => {
    if (!s.playing || s.level == null) return false;
    if (s.levels.length < 2) throw new Error('the stream has a single level: nothing to switch to');
    if (firstTime === null) firstTime = s.currentTime;
    if (!s.autoLevel || s.currentTime - firstTime < 3) return false;
    const b = bitrate(s, s.level);
    return s.levels.some((l) => l.bitrate < b);
  });
  out.before_level = last.level;
  const beforeBitrate = bitrate(last, last.level);

  // 2. Throttle. Latency stays small: the point is throughput.
  await cdp.send('Network.emulateNetworkConditions', {
    offline: false,
    latency: opts.latencyMs,
    downloadThroughput: (opts.throttleKbps * 1000) / 8, // bytes/s
    uploadThroughput: -1,
  });
  out.throttled_at_ms = await pageNow();
  await sampleBandwidth();
  stallsAtThrottle = last.stalls;
  const down = await waitFor(`a switch below level ${out.before_level} under ${opts.throttleKbps} kbit/s`, (s) => {
    if (s.stalls > stallsAtThrottle) throw new Error('stalled before switching down');
    return s.switches.find((w) => w.at >= out.throttled_at_ms && bitrate(s, w.to) < beforeBitrate);
  });
  out.throttled_level = down.to;
  out.down_after_ms = down.at - out.throttled_at_ms;
  await sampleBandwidth();

  // 3. Lift the throttle; wait for a switch above the throttled level.
  await cdp.send('Network.emulateNetworkConditions', {
    offline: false, latency: 0, downloadThroughput: -1, uploadThroughput: -1,
  });
  out.lifted_at_ms = await pageNow();
  const throttledBitrate = bitrate(last, down.to);
  const up = await waitFor(`a switch above level ${down.to} after lifting the throttle`, (s) =>
    s.switches.find((w) => w.at >= out.lifted_at_ms && bitrate(s, w.to) > throttledBitrate));
  out.after_level = up.to;
  out.up_after_ms = up.at - out.lifted_at_ms;
  await sampleBandwidth();

  if (last.stalls > stallsAtThrottle) {
    emit('stalled during the test');
  } else {
    out.ok = true;
    emit();
    exitCode = 0;
  }
} catch (e) {
  emit(e.message.split('\n')[0]);
  exitCode = 1;
} finally {
  if (browser) {
    try { await withTimeout(browser.close(), 10000, 'browser.close()'); } catch { /* watchdog covers it */ }
  }
}
// Exit explicitly: a browser that would not close must not keep us alive.
process.exit(exitCode);
