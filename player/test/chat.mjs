#!/usr/bin/env node
// Two player pages chat through their edges: page A (URL_A, which plays the
// video) and page B (URL_B, another edge). Each URL carries its own chat
// token (?chat=TOKEN). A types a message into its chat box and sends it; B
// must show it; B answers; A must show that.
//
// Usage: node player/test/chat.mjs URL_A --peer URL_B [--seconds N]
//          [--min-frames N] [--min-viewers N] [--arg=--chromium-flag ...]
//
// --min-viewers N: then wait until both pages' chat shows at least N
// viewers (the stream's viewers summed across the edges).
//
// Prints ONE JSON line: ok, the frames page A decoded, what each page's
// chat holds (texts and users), who each page chats as, the viewer counts
// they show, and console errors. Exit 0 if it worked, 1 if not, 2 on bad
// usage.

import { errorList, launch, parseOrExit, sleep, withTimeout } from './driver.mjs';

const USAGE = 'usage: node player/test/chat.mjs URL_A --peer URL_B [--seconds N] [--min-frames N] [--min-viewers N] [--arg=--chromium-flag ...]';

const opts = parseOrExit(process.argv.slice(2), { url: null, peer: null, seconds: 40, minFrames: 30, minViewers: 0, extraArgs: [] }, (key, value, number, o) => {
  switch (key) {
    case '--peer': o.peer = value(); return true;
    case '--min-frames': o.minFrames = number(); return true;
    case '--min-viewers': o.minViewers = number(); return true;
    default: return false;
  }
}, USAGE);
if (!opts.peer) { process.stderr.write(`${USAGE}\n`); process.exit(2); }

const { list: consoleErrors, note } = errorList();
const report = { ok: false, decodedFrames: 0, a: null, b: null, consoleErrors };
let printed = false;
function emit(extra) {
  if (printed) return;
  printed = true;
  process.stdout.write(`${JSON.stringify({ ...report, ...extra })}\n`);
}
const watchdog = setTimeout(() => { emit({ error: `global timeout after ${opts.seconds + 30} s` }); process.exit(1); }, (opts.seconds + 30) * 1000);
watchdog.unref();

const chat = (page) => withTimeout(page.evaluate(() => (window.livecdnChat ? window.livecdnChat.state() : null)), 5000, 'chat state');
const frames = (page) => withTimeout(page.evaluate(() => (window.livecdn ? window.livecdn.stats().decodedFrames || 0 : 0)), 5000, 'stats()');

// Polls `probe` every 250 ms until it returns something truthy, before the deadline.
async function until(deadline, what, probe) {
  while (Date.now() < deadline) {
    try {
      const v = await probe();
      if (v) return v;
    } catch (e) { note(`driver: ${e.message}`); }
    await sleep(250);
  }
  throw new Error(`${what}: not within ${opts.seconds} s`);
}

// Types `text` into the page's chat box and presses Send, as a viewer would.
async function say(page, text) {
  await page.fill('#chat-text', text);
  await page.click('#chat-form button[type=submit]');
}

const shown = (page) => page.$$eval('#chat-log li', (lis) => lis.map((li) => li.textContent));

let browser;
try {
  browser = await launch(opts.extraArgs);
  const pages = [];
  for (const url of [opts.url, opts.peer]) {
    const context = await browser.newContext();
    const page = await context.newPage();
    page.on('console', (m) => { if (m.type() === 'error') note(m.text()); });
    page.on('pageerror', (e) => note(e.message));
    await page.goto(url, { timeout: 15000 });
    pages.push(page);
  }
  const [a, b] = pages;
  const deadline = Date.now() + opts.seconds * 1000;
  report.decodedFrames = await until(deadline, 'video on page A', async () => {
    const n = await frames(a);
    report.decodedFrames = n;
    return n >= opts.minFrames ? n : 0;
  });
  for (const p of pages) await until(deadline, 'chat joined', async () => (await chat(p) || {}).joined);
  await say(a, 'hello from A');
  await until(deadline, 'page B shows A\'s message', async () => (await shown(b)).some((t) => t.includes('hello from A')));
  await say(b, 'hello back from B');
  await until(deadline, 'page A shows B\'s answer', async () => (await shown(a)).some((t) => t.includes('hello back from B')));
  if (opts.minViewers > 0) {
    for (const p of pages) await until(deadline, `${opts.minViewers} viewers shown`, async () => ((await chat(p)) || {}).viewers >= opts.minViewers);
  }
  report.a = { ...(await chat(a)), shown: await shown(a) };
  report.b = { ...(await chat(b)), shown: await shown(b) };
  report.ok = true;
  emit({});
} catch (e) {
  emit({ error: String(e.message || e) });
} finally {
  if (browser) await browser.close().catch(() => {});
}
process.exit(report.ok ? 0 : 1);
