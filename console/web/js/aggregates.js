// Aggregates: GetAggregates through the console, as a line chart (one
// series per key) and a table, refreshed every 2 s while shown; CSV download.
import { apiKey, download, getJson } from './api.js';
import { byId, el, list, num, replaceChildren } from './dom.js';
import { lineChart } from './charts.js';

const REFRESH_MS = 2000;
const TABLE_ROWS = 2000;

let timer = null;
let shown = false;
let active = null; // the query last submitted
let sequence = 0;
let chart = null;

export function init() {
  byId('agg-form').addEventListener('submit', (event) => {
    event.preventDefault();
    submit();
  });
  byId('agg-metric').addEventListener('change', () => { if (active) submit(); });
  byId('agg-csv').addEventListener('click', (event) => {
    if (!apiKey()) return; // a plain link works without a key
    event.preventDefault();
    const type = (active && active.get('event_type')) || 'aggregates';
    download(byId('agg-csv').getAttribute('href'), `aggregates-${type}.csv`)
      .catch((error) => { byId('agg-error').textContent = error.message; });
  });
}

export function show() {
  shown = true;
  if (!active && byId('agg-event-type').value.trim()) submit();
  else refresh();
}

export function hide() {
  shown = false;
  clearTimeout(timer);
}

function params() {
  const p = new URLSearchParams();
  p.set('event_type', byId('agg-event-type').value.trim());
  for (const key of list(byId('agg-keys').value)) p.append('key', key);
  const from = byId('agg-from').value.trim();
  const to = byId('agg-to').value.trim();
  if (from) p.set('from', from);
  if (to) p.set('to', to);
  p.set('granularity', byId('agg-granularity').value);
  return p;
}

function submit() {
  active = params();
  byId('agg-csv').setAttribute('href', `/api/aggregates.csv?${active}`);
  refresh();
}

async function refresh() {
  clearTimeout(timer);
  if (!shown || !active) return;
  const mine = ++sequence;
  const query = active;
  try {
    const answer = await getJson(`/api/aggregates?${query}`);
    if (mine !== sequence) return; // a newer request is on its way
    byId('agg-error').textContent = '';
    render(answer);
  } catch (error) {
    if (mine !== sequence) return;
    byId('agg-error').textContent = error.field ? `${error.field}: ${error.message}` : error.message;
  }
  if (mine === sequence && shown) timer = setTimeout(refresh, REFRESH_MS);
}

function render(answer) {
  const metric = byId('agg-metric').value;
  const rows = answer.rows;
  const keys = [...new Set(rows.map((r) => r.key))].sort();
  const xs = [...new Set(rows.map((r) => r.t))].sort((a, b) => a - b);
  const index = new Map(xs.map((t, i) => [t, i]));
  const series = keys.map((key) => ({ label: key, values: xs.map(() => null) }));
  const byKey = new Map(keys.map((k, i) => [k, series[i]]));
  for (const r of rows) {
    const v = r[metric];
    if (v !== undefined && v !== null) byKey.get(r.key).values[index.get(r.t)] = v;
  }
  chart = lineChart(byId('agg-chart'), chart, xs, series, { yLabel: metric });
  const body = byId('agg-table').tBodies[0];
  replaceChildren(body, rows.slice(0, TABLE_ROWS).map((r) => el('tr', { 'data-key': r.key, 'data-window-start': r.window_start },
    el('td', { text: r.key }), el('td', { text: r.window_start }), el('td', { text: r.window_end }),
    el('td', { class: 'num', text: r.count }), el('td', { class: 'num', text: r.distinct_count ?? '' }),
    el('td', { class: 'num', text: num(r.min, 6) }), el('td', { class: 'num', text: num(r.max, 6) }),
    el('td', { class: 'num', text: num(r.avg, 6) }), el('td', { class: 'num', text: num(r.last, 6) }),
    el('td', { class: 'num', text: r.revisions }))));
  const shownRows = Math.min(rows.length, TABLE_ROWS);
  byId('agg-note').textContent = `${rows.length} rows, ${keys.length} keys` +
    (shownRows < rows.length ? `; the table shows the first ${shownRows} (the CSV has all)` : '') +
    (answer.truncated ? '; more matched than the console returns: narrow the range' : '') +
    `; refreshed ${new Date().toISOString().slice(11, 19)} UTC`;
  byId('aggregates').setAttribute('data-updated-at', String(Date.now()));
}
