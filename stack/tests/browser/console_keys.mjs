// The console with API keys configured (stack/tests/console.rs): it asks for
// a key and shows no data, refuses a wrong one, and shows the services once
// the right one is given. Prints `REPORT {...}` (see lib.mjs).
import {
  WAIT, check, config, ensure, open, run, screenshot, waitInPage,
} from './lib.mjs';

const serviceRows = () => document.querySelectorAll('tr[data-testid="service-row"]').length;

await run(async (register) => {
  const { browser, page } = await open();
  register(browser);

  await check('asks-for-key', page, async () => {
    const refused = page.waitForResponse((r) => r.url().includes('/api/') && r.status() === 401, { timeout: WAIT });
    await page.goto(`${config.url}/#/overview`, { waitUntil: 'load', timeout: WAIT });
    await refused;
    await page.waitForSelector('#api-key-input', { state: 'visible', timeout: WAIT });
    const rows = await page.evaluate(serviceRows);
    ensure(rows === 0, `${rows} services shown without a key`);
    await screenshot(page, 'api-key');
    return { rows };
  });

  await check('wrong-key-refused', page, async () => {
    const refused = page.waitForResponse((r) => r.url().includes('/api/') && r.status() === 401, { timeout: WAIT });
    await page.fill('#api-key-input', config.wrongKey);
    await page.click('#api-key-submit');
    await refused;
    await page.waitForSelector('#api-key-input', { state: 'visible', timeout: WAIT });
    const message = await page.textContent('#api-key-message');
    const rows = await page.evaluate(serviceRows);
    ensure(rows === 0, `${rows} services shown with a wrong key`);
    return { message };
  });

  await check('shows-data', page, async () => {
    await page.fill('#api-key-input', config.apiKey);
    await page.click('#api-key-submit');
    const shown = await waitInPage(
      page,
      (names) => {
        const status = (n) => document.querySelector(
          `tr[data-testid="service-row"][data-service="${n}"] [data-testid="service-status"]`)?.textContent;
        return names.every((n) => status(n) === 'ready') ? names.map((n) => `${n}: ${status(n)}`) : null;
      },
      config.services,
      () => ({
        prompt: !document.querySelector('#api-key-prompt').hidden,
        message: document.querySelector('#api-key-message').textContent,
        rows: [...document.querySelectorAll('tr[data-testid="service-row"]')].map((r) => r.textContent),
      }),
      'the services, ready, once the key is given',
      90_000,
    );
    const promptHidden = await page.evaluate(() => document.querySelector('#api-key-prompt').hidden);
    ensure(promptHidden, 'the prompt is still shown');
    return { shown };
  });

  return browser;
});
