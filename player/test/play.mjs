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
//
// --level NAME pins the player to the level named NAME once it plays (e.g. a
// transcoded rung). --hold S keeps watching for S more seconds after playback
// started (stderr gets one "PLAYING" line then, for a test to act on): the
// run fails if the video stalls (more than --max-stalls times, default 0),
// stops for --max-stuck-ms or more (default 1000), or does not advance
// meanwhile.
//
// --until-ended (a VOD) keeps playing until the media element ends, within
// --seconds: the run fails if it does not, or ends short of its duration.
//
// --seek-back S (a live stream with a DVR window) seeks S seconds behind
// the live edge once playback started, through the page's own
// window.livecdn.seekBack, and waits (bounded) until it plays there again;
// --hold then watches playback from that point.

import { errorList, launch, parseOrExit, sleep, withTimeout } from './driver.mjs';

const USAGE =
  'usage: node player/test/play.mjs URL [--seconds N] [--min-frames N] ' +
  '[--arg=--chromium-flag ...] [--ignore-cert-spki HASH] [--level NAME] [--hold S] [--max-stalls N] [--max-stuck-ms MS] [--until-ended] [--seek-back S]';

const opts = parseOrExit(process.argv.slice(2), { url: null, seconds: 20, minFrames: 30, extraArgs: [], level: null, hold: 0, maxStalls: 0, maxStuckMs: 1000, untilEnded: false, seekBack: 0 }, (key, value, number, o) => {
  switch (key) {
    case '--seek-back': o.seekBack = number(); return true;
    case '--until-ended': o.untilEnded = true; return true;
    case '--min-frames': o.minFrames = number(); return true;
    case '--level': o.level = value(); return true;
    case '--hold': o.hold = number(); return true;
    case '--max-stalls': o.maxStalls = number(); return true;
    case '--max-stuck-ms': o.maxStuckMs = number(); return true;
    default: return false;
  }
}, USAGE);

const { list: consoleErrors, note } = errorList();

let last = null;          // last stats() answer
let firstTime = null;     // first currentTime seen
let printed = false;

function result(ok, extra = {}) {
  return {
    ok,
    decodedFrames: last ? last.decodedFrames : 0,
    stalls: last ? last.stalls || 0 : 0,
    droppedFrames: last ? last.droppedFrames : 0,
    audioDecodedBytes: last ? last.audioDecodedBytes ?? null : null,
    currentTime: last ? last.currentTime : null,
    latency: last ? last.latency : null,
    pdtLatency: last ? last.pdtLatency : null,
    fatalError: last ? last.fatalError : null,
    protocol: last ? last.protocol : null,
    engine: last ? last.engine : null,
    playing: last ? last.playing : false,
    level: last ? last.level : null,
    ended: last ? last.ended : false,
    duration: last ? last.duration : null,
    seekable: last ? last.seekable : null,
    behindLive: last ? last.behindLive : null,
    webrtc: last ? last.webrtc || null : null,
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
  emit(result(false, { error: `global timeout after ${opts.seconds + opts.hold + 40} s` }));
  process.exit(1); // playwright kills the browser it launched on process exit
}, (opts.seconds + opts.hold + 40) * 1000);
watchdog.unref();


const stats = (page) => withTimeout(
  page.evaluate(() => (window.livecdn && window.livecdn.stats ? window.livecdn.stats() : null)),
  5000, 'stats()');

// After playback started: pin the level if asked, then watch for --hold
// seconds. Fails on any stall or if currentTime stops advancing.
async function hold(page) {
  let pinned = null;
  if (opts.level) {
    const levels = (last && last.levels) || [];
    pinned = levels.findIndex((l) => l.name === opts.level);
    if (pinned < 0) return { ok: false, error: `no level named ${opts.level}` };
    await page.evaluate((i) => window.livecdn.setLevel(i), pinned);
    // Wait (bounded) until the pinned level plays.
    for (let i = 0; i < 40 && (!last || last.level !== pinned); i++) {
      await sleep(250);
      try { last = await stats(page); } catch (e) { note(`driver: ${e.message}`); }
    }
    if (!last || last.level !== pinned) return { ok: false, error: `level ${opts.level} never played` };
  }
  process.stderr.write('PLAYING\n');
  const start = last;
  const end = Date.now() + opts.hold * 1000;
  let stuckSince = null;
  let worstStuckMs = 0;
  // Distance behind live (wall clock minus the playhead's time), sampled.
  const behind = [];
  while (Date.now() < end) {
    await sleep(250);
    let s;
    try { s = await stats(page); } catch (e) { note(`driver: ${e.message}`); continue; }
    if (!s) continue;
    if (s.currentTime > last.currentTime) {
      stuckSince = null;
    } else {
      stuckSince = stuckSince || Date.now();
      worstStuckMs = Math.max(worstStuckMs, Date.now() - stuckSince);
    }
    if (typeof s.pdtLatency === 'number') behind.push({ at: Date.now(), s: s.pdtLatency });
    last = s;
  }
  const median = (xs) => {
    const v = xs.map((x) => x.s).sort((a, b) => a - b);
    return v.length ? v[Math.floor(v.length / 2)] : null;
  };
  const stalls = (last.stalls || 0) - (start.stalls || 0);
  const advanced = last.currentTime - start.currentTime;
  const ok = stalls <= opts.maxStalls && worstStuckMs < opts.maxStuckMs && advanced >= opts.hold * 0.8;
  return {
    ok,
    pinned_level: pinned,
    hold_stalls: stalls,
    hold_advanced_s: advanced,
    hold_worst_stuck_ms: worstStuckMs,
    // Median distance behind live over the hold, and over its last 10 s.
    hold_behind_live_median_s: median(behind),
    hold_behind_live_end_median_s: median(behind.filter((x) => x.at >= end - 10000)),
    target_latency_s: last.targetLatency ?? null,
    switches: last.switches,
    ...(ok ? {} : { error: 'playback stalled or stopped during the hold' }),
  };
}

let browser = null;
let exitCode = 1;
try {
  browser = await launch(opts.extraArgs);
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
      const s = await stats(page);
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
  let extra = ok ? {} : { error: last ? 'playback did not reach the frame threshold in time' : 'window.livecdn.stats() never became available' };
  if (ok && opts.untilEnded) {
    // Play on to the end: the media element's own 'ended'.
    while (Date.now() < deadline && !(last && last.ended)) {
      await sleep(250);
      try { last = (await stats(page)) || last; } catch (e) { note(`driver: ${e.message}`); }
    }
    ok = !!(last && last.ended && last.currentTime >= last.duration - 0.5);
    if (!ok) extra = { error: 'the VOD did not play to its end in time' };
  }
  if (ok && opts.seekBack > 0) {
    const before = last;
    const sought = await page.evaluate((s) => window.livecdn.seekBack(s), opts.seekBack);
    // Playing again from there: the playhead moved back, then advances.
    let at = null;
    const until = Date.now() + 20000;
    while (Date.now() < until) {
      await sleep(250);
      try { last = (await stats(page)) || last; } catch (e) { note(`driver: ${e.message}`); continue; }
      if (last.currentTime < before.currentTime - opts.seekBack / 2) {
        if (at === null) at = last.currentTime;
        else if (last.currentTime > at + 1 && last.playing) break;
      }
    }
    ok = sought && at !== null && last.currentTime > at + 1;
    extra = ok ? { seeked_from: before.currentTime, seeked_to: at } : { error: `seeking ${opts.seekBack} s back did not play (seekable ${JSON.stringify(last.seekable)})` };
  }
  if (ok && (opts.hold > 0 || opts.level)) {
    const held = await hold(page);
    ok = held.ok;
    extra = { ...extra, ...held };
  }
  emit(result(ok, extra));
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
