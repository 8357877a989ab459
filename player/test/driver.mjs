// What the headless player checks (play.mjs, abr.mjs) share: argument
// parsing, launching Debian's chromium, and bounded waits.

import { chromium } from 'playwright-core';

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export function withTimeout(promise, ms, what) {
  let t;
  return Promise.race([
    promise,
    new Promise((_, reject) => { t = setTimeout(() => reject(new Error(`${what} timed out after ${ms} ms`)), ms); }),
  ]).finally(() => clearTimeout(t));
}

// Parses `argv` into `opts` (which holds the defaults): the URL, the common
// flags (--seconds, --arg=FLAG, --ignore-cert-spki HASH, --help), and the
// script's own via `own(key, value, number, opts)`, which returns false for a key
// it does not know. Throws on bad usage ('help' for --help).
export function parseArgs(argv, opts, own = () => false) {
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
      case '--arg': opts.extraArgs.push(value()); break;
      case '--ignore-cert-spki':
        opts.extraArgs.push(`--ignore-certificate-errors-spki-list=${value()}`);
        break;
      case '-h': case '--help': throw new Error('help');
      default:
        if (own(key, value, number, opts)) break;
        if (a.startsWith('-') || opts.url) throw new Error(`unexpected argument: ${a}`);
        opts.url = a;
    }
  }
  if (!opts.url) throw new Error('missing URL');
  return opts;
}

// Debian's chromium (CHROMIUM env var), headless, autoplay allowed; extra
// flags from CHROMIUM_ARGS (space separated) and `extraArgs`.
export function launch(extraArgs) {
  const envArgs = (process.env.CHROMIUM_ARGS || '').split(/\s+/).filter(Boolean);
  return chromium.launch({
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
      ...extraArgs,
    ],
  });
}

// parseArgs, or the usage on stderr and exit 2 (0 for --help).
export function parseOrExit(argv, opts, own, usage) {
  try {
    return parseArgs(argv, opts, own);
  } catch (e) {
    if (e.message !== 'help') process.stderr.write(`${e.message}\n`);
    process.stderr.write(`${usage}\n`);
    process.exit(e.message === 'help' ? 0 : 2);
  }
}

// A bounded list of what went wrong in the page (console errors, failed
// requests), for the report.
export function errorList(max = 50) {
  const list = [];
  return { list, note: (msg) => { if (list.length < max) list.push(String(msg).slice(0, 500)); } };
}
