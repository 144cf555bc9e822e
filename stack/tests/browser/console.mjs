// The console's pages in headless Chromium against a running pipeline
// (stack/tests/console.rs starts it and passes what it sent in
// CONSOLE_TEST_CONFIG): first paint, overview, aggregates, price accuracy,
// a dead letter shown escaped and replayed, a schema diff; a screenshot of
// every page. Prints `REPORT {...}` (see lib.mjs).
import {
  WAIT, check, config, ensure, measure, open, run, screenshot, screenshotsTaken, waitInPage,
} from './lib.mjs';

const PAGES = ['overview', 'aggregates', 'accuracy', 'dead-letters', 'schemas'];

async function go(page, view) {
  await page.click(`a[data-testid="nav-${view}"]`);
  await page.waitForSelector(`#${view}:not([hidden])`, { timeout: WAIT });
}

await run(async (register) => {
  const { browser, page } = await open();
  register(browser);

  // First paint of the overview: a fresh page's first contentful paint,
  // and its first data: the time from navigation start until the overview
  // carries `data-updated-at` and a row for every service (recorded in the
  // page, by a mutation observer installed before the page's own scripts).
  await page.addInitScript((names) => {
    const shown = () => document.querySelector('#overview[data-updated-at]')
      && names.every((n) => document.querySelector(`tr[data-testid="service-row"][data-service="${n}"]`));
    const observer = new MutationObserver(() => {
      if (window.__firstDataMs === undefined && shown()) {
        window.__firstDataMs = performance.now();
        observer.disconnect();
      }
    });
    observer.observe(document, { subtree: true, childList: true, attributes: true });
  }, config.services);
  await check('first-paint', page, async () => {
    await page.goto(`${config.url}/#/overview`, { waitUntil: 'load', timeout: WAIT });
    const paint = await waitInPage(
      page,
      () => {
        const [entry] = performance.getEntriesByName('first-contentful-paint');
        return entry ? { fcp: entry.startTime, fp: performance.getEntriesByName('first-paint')[0]?.startTime ?? null } : null;
      },
      null,
      () => performance.getEntriesByType('paint').map((e) => e.name),
      'a first-contentful-paint entry',
    );
    const firstData = await waitInPage(
      page,
      () => window.__firstDataMs ?? null,
      null,
      (names) => ({
        updatedAt: document.querySelector('#overview')?.getAttribute('data-updated-at'),
        rows: [...document.querySelectorAll('tr[data-testid="service-row"]')].map((r) => r.getAttribute('data-service')),
        want: names,
        now: performance.now(),
      }),
      'the overview\'s first data (data-updated-at and every service\'s row)',
    );
    const nav = await page.evaluate(() => {
      const [n] = performance.getEntriesByType('navigation');
      return n ? { domContentLoaded: n.domContentLoadedEventEnd, load: n.loadEventEnd } : null;
    });
    const firstPaintMs = Math.round(paint.fcp);
    const firstDataMs = Math.round(firstData);
    measure('firstPaintMs', firstPaintMs);
    measure('firstDataMs', firstDataMs);
    measure('firstPaint', { ...paint, firstData, ...nav });
    ensure(firstPaintMs < config.firstPaintLimitMs,
      `first contentful paint ${firstPaintMs} ms, over ${config.firstPaintLimitMs} ms`);
    ensure(firstDataMs < config.firstDataLimitMs,
      `first data ${firstDataMs} ms after navigation start, over ${config.firstDataLimitMs} ms`);
    return { firstPaintMs, firstDataMs, ...nav };
  });

  // Overview: every service ready, events received per second while the
  // test sends them, and live updates without a reload.
  await check('overview', page, async () => {
    const started = Date.now();
    await page.evaluate(() => { window.__sameDocument = true; });
    const seen = await waitInPage(
      page,
      (names) => {
        const status = (n) => document.querySelector(
          `tr[data-testid="service-row"][data-service="${n}"] [data-testid="service-status"]`)?.textContent;
        const received = Number(document.querySelector('[data-testid="rate-received"]')?.textContent);
        return names.every((n) => status(n) === 'ready') && received > 0
          ? { received, updatedAt: document.querySelector('#overview').getAttribute('data-updated-at') }
          : null;
      },
      config.services,
      (names) => ({
        services: Object.fromEntries([...document.querySelectorAll('tr[data-testid="service-row"]')].map((r) => [
          r.getAttribute('data-service'),
          `${r.querySelector('[data-testid="service-status"]')?.textContent} (${r.cells[2]?.textContent})`,
        ])),
        missing: names.filter((n) => !document.querySelector(`tr[data-testid="service-row"][data-service="${n}"]`)),
        received: document.querySelector('[data-testid="rate-received"]')?.textContent,
      }),
      'every service ready and a non-zero received rate',
      90_000,
    );
    measure('overviewReadyMs', Date.now() - started);
    // The next push changes it, in the same document.
    await waitInPage(
      page,
      (before) => document.querySelector('#overview').getAttribute('data-updated-at') !== before && window.__sameDocument === true,
      seen.updatedAt,
      () => ({ updatedAt: document.querySelector('#overview').getAttribute('data-updated-at') }),
      'a live update of the overview',
    );
    const lag = await page.locator('tr[data-testid="lag-row"]').count();
    await screenshot(page, 'overview');
    return { receivedPerSecond: seen.received, lagRows: lag };
  });

  // Aggregates: the chart and the table of the events the test sent.
  const agg = config.aggregates;
  let aggregatesShown = null;
  await check('aggregates-chart', page, async () => {
    await go(page, 'aggregates');
    await page.fill('#agg-event-type', agg.eventType);
    await page.fill('#agg-keys', agg.keys.join(','));
    await page.fill('#agg-from', new Date(agg.startMs).toISOString());
    await page.fill('#agg-to', new Date(agg.endMs).toISOString());
    await page.selectOption('#agg-granularity', 'window');
    await page.selectOption('#agg-metric', 'count');
    await page.click('#agg-submit');
    aggregatesShown = await waitInPage(
      page,
      ({ points, series }) => {
        const chart = document.querySelector('#agg-chart');
        const rows = document.querySelectorAll('#agg-table tbody tr').length;
        return chart.getAttribute('data-points') === String(points)
          && chart.getAttribute('data-series') === String(series)
          && chart.querySelector('canvas') && rows === points
          ? { points, series, rows } : null;
      },
      { points: agg.points, series: agg.keys.length },
      () => ({
        points: document.querySelector('#agg-chart').getAttribute('data-points'),
        series: document.querySelector('#agg-chart').getAttribute('data-series'),
        canvas: !!document.querySelector('#agg-chart canvas'),
        rows: document.querySelectorAll('#agg-table tbody tr').length,
        error: document.querySelector('#agg-error').textContent,
        note: document.querySelector('#agg-note').textContent,
      }),
      `the chart with ${agg.points} points in ${agg.keys.length} series`,
    );
    await screenshot(page, 'aggregates');
    return aggregatesShown;
  });
  await check('aggregates-table', page, async () => {
    ensure(aggregatesShown, 'the aggregates were not shown');
    const table = await page.$$eval('#agg-table tbody tr', (rows) => rows.map((r) => ({
      key: r.getAttribute('data-key'),
      window_start: r.getAttribute('data-window-start'),
      count: Number(r.cells[3].textContent),
    })));
    const id = (r) => `${r.key}@${r.window_start}`;
    const want = new Map(agg.rows.map((r) => [id(r), r.count]));
    const have = new Map(table.map((r) => [id(r), r.count]));
    const wrong = [...want].filter(([k, count]) => have.get(k) !== count).map(([k, count]) => `${k}: want ${count}, shown ${have.get(k)}`);
    const extra = [...have.keys()].filter((k) => !want.has(k));
    ensure(!wrong.length && !extra.length, () => `table differs: ${JSON.stringify({ wrong, extra, table })}`);
    return { rows: table.length };
  });
  // The chart follows the window's width: narrower, then back.
  await check('aggregates-chart-resizes', page, async () => {
    ensure(aggregatesShown, 'the aggregates were not shown');
    const widths = () => {
      const chart = document.querySelector('#agg-chart');
      const plot = chart.querySelector('.uplot');
      return { container: chart.clientWidth, plot: plot ? Math.round(plot.getBoundingClientRect().width) : null };
    };
    const before = await page.evaluate(widths);
    await page.setViewportSize({ width: 760, height: 900 });
    const narrow = await waitInPage(
      page,
      (was) => {
        const chart = document.querySelector('#agg-chart');
        const plot = chart.querySelector('.uplot');
        const width = plot ? Math.round(plot.getBoundingClientRect().width) : null;
        return width !== null && width < was && width <= chart.clientWidth ? { container: chart.clientWidth, plot: width } : null;
      },
      before.plot,
      widths,
      `the chart narrower than ${before.plot} px and within its container`,
    );
    await page.setViewportSize({ width: 1280, height: 900 });
    const wide = await waitInPage(
      page,
      (was) => {
        const chart = document.querySelector('#agg-chart');
        const plot = chart.querySelector('.uplot');
        const width = plot ? Math.round(plot.getBoundingClientRect().width) : null;
        return width !== null && width > was && width <= chart.clientWidth ? { container: chart.clientWidth, plot: width } : null;
      },
      narrow.plot,
      widths,
      `the chart wider than ${narrow.plot} px again and within its container`,
    );
    return { before, narrow, wide };
  });

  // Price accuracy: a chart per pair, a series per source.
  await check('accuracy', page, async () => {
    await go(page, 'accuracy');
    await page.fill('#acc-from', config.accuracy.from);
    await page.fill('#acc-to', config.accuracy.to);
    await page.click('#acc-submit');
    const shown = await waitInPage(
      page,
      ({ pairs, sources }) => {
        const charts = pairs.map((p) => document.querySelector(
          `section[data-testid="accuracy-pair"][data-pair="${p}"] [data-testid="accuracy-chart"]`));
        return charts.every((c) => c && Number(c.getAttribute('data-points')) > 0
          && c.getAttribute('data-series') === String(sources) && c.querySelector('canvas'))
          ? Object.fromEntries(pairs.map((p, i) => [p, Number(charts[i].getAttribute('data-points'))])) : null;
      },
      { pairs: config.pairs, sources: config.sources },
      () => ({
        pairs: [...document.querySelectorAll('section[data-testid="accuracy-pair"]')].map((s) => ({
          pair: s.getAttribute('data-pair'),
          points: s.querySelector('[data-testid="accuracy-chart"]')?.getAttribute('data-points'),
          series: s.querySelector('[data-testid="accuracy-chart"]')?.getAttribute('data-series'),
        })),
        error: document.querySelector('#acc-error').textContent,
      }),
      `a chart for each of ${config.pairs.join(', ')} with ${config.sources} sources`,
    );
    await screenshot(page, 'accuracy');
    return { points: shown };
  });

  // Dead letters: the one with markup in its payload (a <script>, and an
  // <img> whose onerror would run if it ever became an element), its key
  // and its idempotency-key header, all shown as text. A <script> set as
  // innerHTML never runs, so the <img> is what would tell: its error fires
  // within a request's time, and the check waits a second past the render.
  const dl = config.deadLetter;
  const MARKUP = 'img, script, iframe, object, embed, svg, [onerror], [onload]';
  let row = null;
  await check('dead-letter-escaped', page, async () => {
    await go(page, 'dead-letters');
    await page.fill('#dlq-reason', dl.reason);
    await page.click('#dlq-apply');
    row = page.locator(`tr[data-testid="dead-letter-row"][data-reason="${dl.reason}"]`).first();
    await row.waitFor({ timeout: WAIT });
    const id = await row.getAttribute('data-id');
    await row.locator('td').nth(1).click();
    await waitInPage(
      page,
      (text) => document.querySelector('#dead-letter-detail [data-testid="dead-letter-payload"]')?.textContent.includes(text),
      dl.text,
      () => document.querySelector('#dead-letter-detail')?.textContent.slice(0, 2000),
      'the payload with the markup, as text',
    );
    // Past the render, long enough for an <img src=x>'s request to fail.
    await page.waitForTimeout(1000);
    const shown = await page.evaluate(({ markup, header }) => {
      const detail = document.querySelector('#dead-letter-detail');
      const payload = detail.querySelector('[data-testid="dead-letter-payload"]');
      const headers = detail.querySelector('[data-testid="dead-letter-headers"]');
      const listed = [...document.querySelectorAll('#dlq-table tbody tr[data-testid="dead-letter-row"]')];
      const headerValue = [...headers.querySelectorAll('tbody tr')]
        .find((r) => r.cells[0]?.textContent === header)?.cells[1]?.textContent ?? null;
      const keyValue = [...detail.querySelectorAll('table.data:not([data-testid]) tr')]
        .find((r) => r.cells[0]?.textContent === 'key')?.cells[1]?.textContent ?? null;
      return {
        payloadText: payload.textContent,
        payloadHtml: payload.innerHTML,
        headerValue,
        keyValue,
        // Every cell of every listed row: no element but the row's checkbox.
        rowElements: listed.flatMap((r) => [...r.cells].flatMap((c, i) => [...c.querySelectorAll('*')]
          .filter((e) => !(i === 0 && e.matches('input[type="checkbox"][data-testid="dead-letter-select"]')))
          .map((e) => `${r.getAttribute('data-id')} cell ${i}: <${e.tagName.toLowerCase()}>`))),
        rowCells: listed.length ? [...listed[0].cells].map((c) => c.textContent) : [],
        markupInDetail: [...detail.querySelectorAll(markup)].map((e) => e.outerHTML.slice(0, 200)),
        markupInPayload: payload.querySelectorAll(markup).length,
        markupInHeaders: headers.querySelectorAll(markup).length,
        markupInList: document.querySelectorAll(`#dlq-table tbody :is(${markup})`).length,
        xss: typeof window.__xss,
        xssValue: window.__xss ?? null,
        headers: headers.querySelectorAll('tbody tr').length,
      };
    }, { markup: MARKUP, header: dl.header });
    // Every finding at once: which field let markup through says where.
    const problems = [];
    if (shown.xss !== 'undefined') problems.push(`the dead letter's markup ran (window.__xss is ${shown.xssValue})`);
    if (!shown.payloadText.includes(dl.text)) problems.push(`the payload does not show ${dl.text} as text: ${shown.payloadText.slice(0, 500)}`);
    if (!shown.payloadHtml.includes('&lt;script&gt;') || !shown.payloadHtml.includes('&lt;img src=x onerror=')) {
      problems.push(`the payload's markup is not escaped: ${shown.payloadHtml.slice(0, 500)}`);
    }
    if (shown.headerValue !== dl.idempotencyKey) {
      problems.push(`header ${dl.header} shows ${JSON.stringify(shown.headerValue)}, not ${JSON.stringify(dl.idempotencyKey)} as text`);
    }
    if (shown.keyValue !== dl.key) problems.push(`the key shows ${JSON.stringify(shown.keyValue)}, not ${JSON.stringify(dl.key)} as text`);
    if (shown.rowElements.length) problems.push(`elements in the dead-letter list's cells: ${shown.rowElements.join(', ')}`);
    if (shown.markupInDetail.length || shown.markupInPayload || shown.markupInHeaders || shown.markupInList) {
      problems.push(`markup elements: detail ${JSON.stringify(shown.markupInDetail)} (payload ${shown.markupInPayload}, headers ${shown.markupInHeaders}), list ${shown.markupInList}`);
    }
    if (!shown.headers) problems.push('no headers shown');
    ensure(!problems.length, () => problems.join('; '));
    await screenshot(page, 'dead-letters');
    return { id, headers: shown.headers, xss: shown.xss, rowCells: shown.rowCells };
  });
  await check('dead-letter-replayed', page, async () => {
    ensure(row, 'no dead letter row');
    await row.locator('input[data-testid="dead-letter-select"]').check();
    await page.click('#dead-letter-replay');
    const result = await waitInPage(
      page,
      () => {
        const text = document.querySelector('#dead-letter-replay-result').textContent;
        return /^replayed \d+, skipped \d+, failed \d+$/.test(text) ? text : null;
      },
      null,
      () => ({ result: document.querySelector('#dead-letter-replay-result').textContent, error: document.querySelector('#dlq-error').textContent }),
      'the replay\'s result',
    );
    ensure(result === 'replayed 1, skipped 0, failed 0', `the replay says "${result}"`);
    ensure(await page.evaluate(() => typeof window.__xss) === 'undefined', 'the dead letter\'s markup ran');
    return { result };
  });

  // Schemas: the diff of two versions shows the added field.
  const schema = config.schema;
  await check('schema-diff', page, async () => {
    await go(page, 'schemas');
    await page.click(`li[data-testid="subject"][data-subject="${schema.subject}"]`);
    await page.waitForSelector('#schema-diff-to option', { state: 'attached', timeout: WAIT });
    await page.selectOption('#schema-diff-from', String(schema.from));
    await page.selectOption('#schema-diff-to', String(schema.to));
    const added = await waitInPage(
      page,
      (field) => {
        const lines = [...document.querySelectorAll('#schema-diff .diff-added')].map((e) => e.textContent);
        return lines.some((l) => l.includes(`"${field}"`)) ? lines : null;
      },
      schema.added,
      () => [...document.querySelectorAll('#schema-diff > *')].map((e) => `${e.className}: ${e.textContent}`),
      `the added field ${schema.added} as .diff-added`,
    );
    const removed = await page.$$eval('#schema-diff .diff-removed', (els) => els.map((e) => e.textContent));
    ensure(!removed.some((l) => l.includes(`"${schema.added}"`)), 'the added field is also shown removed');
    // The diff scrolls in its box: show the added field in the screenshot.
    // Found and scrolled in one step in the page: the console re-renders
    // the diff when it refreshes, and a located element can be detached
    // between Playwright's finding it and scrolling to it.
    await page.evaluate((field) => {
      const line = [...document.querySelectorAll('#schema-diff .diff-added')].find((e) =>
        e.textContent.includes(`"${field}"`),
      );
      line?.scrollIntoView({ block: 'nearest' });
    }, schema.added);
    await screenshot(page, 'schemas');
    return { added, removed };
  });

  await check('screenshots', page, async () => {
    const taken = screenshotsTaken();
    const missing = PAGES.filter((p) => !taken.some((f) => f.endsWith(`/${p}.png`)));
    ensure(!missing.length, `no screenshot of ${missing.join(', ')}`);
    return taken.filter((f) => !f.includes('/failed-'));
  });

  return browser;
});
