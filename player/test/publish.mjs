#!/usr/bin/env node
// Headless WHIP publish through the livecdn page: Chromium's fake camera
// and microphone, published with the page's #publish=KEY mode.
//
// Usage: node player/test/publish.mjs URL#publish=KEY [--seconds N]
//          [--min-frames N] [--arg=--some-chromium-flag ...]
//
// Waits until --min-frames frames were sent (stderr gets one "PUBLISHING"
// line then, for a test to act on), keeps publishing until --seconds have
// passed since launch, then prints ONE JSON line (the page's publish stats)
// and exits 0 if the frames were sent, 1 if not, 2 on bad usage.

import { errorList, launch, parseOrExit, sleep, withTimeout } from './driver.mjs';

const USAGE = 'usage: node player/test/publish.mjs URL#publish=KEY [--seconds N] [--min-frames N] [--arg=--chromium-flag ...]';

const opts = parseOrExit(process.argv.slice(2), { url: null, seconds: 60, minFrames: 30, extraArgs: [] }, (key, value, number, o) => {
  if (key === '--min-frames') { o.minFrames = number(); return true; }
  return false;
}, USAGE);

const { list: consoleErrors, note } = errorList();
let last = null;

const watchdog = setTimeout(() => {
  process.stdout.write(`${JSON.stringify({ ok: false, error: 'global timeout', publish: last, consoleErrors })}\n`);
  process.exit(1);
}, (opts.seconds + 30) * 1000);
watchdog.unref();

let browser = null;
let ok = false;
let error = null;
try {
  browser = await launch([
    '--use-fake-device-for-media-stream',
    '--use-fake-ui-for-media-stream',
    '--allow-loopback-in-peer-connection',
    ...opts.extraArgs,
  ]);
  const page = await browser.newPage();
  page.on('console', (m) => { if (m.type() === 'error') note(`console: ${m.text()}`); });
  page.on('pageerror', (e) => note(`pageerror: ${e.message}`));
  page.on('response', (r) => { if (r.status() >= 400) note(`http ${r.status()}: ${r.url()}`); });
  const end = Date.now() + opts.seconds * 1000;
  await page.goto(opts.url, { waitUntil: 'domcontentloaded' });
  let said = false;
  while (Date.now() < end) {
    try {
      const s = await withTimeout(page.evaluate(() => window.livecdn && window.livecdn.stats().publish), 5000, 'stats()');
      if (s) last = s;
    } catch (e) { note(`driver: ${e.message}`); }
    if (last && last.state === 'failed') { error = 'the publish failed'; break; }
    if (!said && last && last.framesSent >= opts.minFrames) {
      said = true;
      ok = true;
      process.stderr.write('PUBLISHING\n');
    }
    await sleep(500);
  }
  if (!ok && !error) error = 'too few frames sent';
} catch (e) {
  error = e.message.split('\n')[0];
} finally {
  process.stdout.write(`${JSON.stringify({ ok, error, publish: last, consoleErrors })}\n`);
  if (browser) {
    try { await withTimeout(browser.close(), 10000, 'browser.close()'); } catch { /* exiting anyway */ }
  }
}
process.exit(ok ? 0 : 1);
