// Shared by the console's browser scripts: Debian's Chromium started headless
// by playwright-core, named checks that each pass or fail on their own (a
// failed check gets a screenshot and the script goes on), and the report the
// Rust test reads: one line `REPORT {"checks":[{name,ok,detail}],"measures":{}}`.
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { chromium } from 'playwright-core';

/** The test's settings (JSON in CONSOLE_TEST_CONFIG). */
export const config = JSON.parse(process.env.CONSOLE_TEST_CONFIG || '{}');

/** Generous waits: the machine may be a loaded two-core one. */
export const WAIT = 60_000;

const checks = [];
const measures = {};
const screenshots = [];
const pageErrors = [];

export function measure(name, value) {
  measures[name] = value;
}

/** Starts Chromium and opens a page that records its errors. */
export async function open() {
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: ['--no-sandbox', '--headless=new', '--disable-gpu', '--disable-dev-shm-usage'],
    timeout: WAIT,
  });
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  context.setDefaultTimeout(WAIT);
  const page = await context.newPage();
  page.on('pageerror', (error) => pageErrors.push(String(error)));
  page.on('console', (message) => {
    if (message.type() === 'error') pageErrors.push(`console: ${message.text()}`);
  });
  page.on('dialog', (dialog) => dialog.accept());
  return { browser, context, page };
}

/** Writes `<screenshots>/<name>.png` (the whole page). */
export async function screenshot(page, name) {
  const dir = config.screenshots;
  mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  screenshots.push(file);
  return file;
}

export function screenshotsTaken() {
  return [...screenshots];
}

/**
 * Runs check `name`: `body()` returns its detail or throws. A failure is
 * recorded with a screenshot `failed-<name>.png` and the page's errors.
 */
export async function check(name, page, body) {
  const started = Date.now();
  try {
    const detail = await body();
    checks.push({ name, ok: true, detail: detail ?? null, ms: Date.now() - started });
  } catch (error) {
    let shot = null;
    try { shot = await screenshot(page, `failed-${name}`); } catch { /* the page is gone */ }
    checks.push({
      name,
      ok: false,
      detail: { error: String(error && error.message ? error.message : error), screenshot: shot, pageErrors: [...pageErrors] },
      ms: Date.now() - started,
    });
  }
}

/** Fails with `message` unless `condition`. */
export function ensure(condition, message) {
  if (!condition) throw new Error(typeof message === 'function' ? message() : message);
}

/**
 * Waits until `predicate(arg)` (run in the page) is truthy; on a timeout,
 * fails with what `describe(arg)` (run in the page) then says.
 */
export async function waitInPage(page, predicate, arg, describe, what, timeout = WAIT) {
  try {
    return await (await page.waitForFunction(predicate, arg, { timeout, polling: 250 })).jsonValue();
  } catch (error) {
    let state = null;
    try { state = await page.evaluate(describe, arg); } catch { /* the page is gone */ }
    throw new Error(`${what}: not within ${timeout} ms (${error.message.split('\n')[0]}); the page shows ${JSON.stringify(state)}`);
  }
}

/** Prints the report and exits 0 when every check passed, 1 otherwise. */
export async function finish(browser) {
  try { await browser.close(); } catch { /* already gone */ }
  measures.pageErrors = [...pageErrors];
  console.log(`REPORT ${JSON.stringify({ checks, measures })}`);
  process.exit(checks.every((c) => c.ok) ? 0 : 1);
}

/** Runs `main`, reporting a crash outside any check as a failed check. */
export async function run(main) {
  let browser = null;
  try {
    browser = await main((b) => { browser = b; });
  } catch (error) {
    checks.push({ name: 'script', ok: false, detail: { error: String(error && error.stack ? error.stack : error) } });
  }
  await finish(browser);
}
