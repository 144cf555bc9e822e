// Price accuracy: per pair, each source's percent difference from the mean
// of the other sources (GetPriceAccuracy), one chart per pair.
import { getJson } from './api.js';
import { byId, el } from './dom.js';
import { destroyChart, lineChart, unionOfTimes } from './charts.js';

const REFRESH_MS = 5000;

let timer = null;
let shown = false;
let sequence = 0;
const charts = new Map(); // pair -> {section, chartDiv, chart}

export function init() {
  byId('acc-form').addEventListener('submit', (event) => {
    event.preventDefault();
    refresh();
  });
}

export function show() {
  shown = true;
  refresh();
}

export function hide() {
  shown = false;
  clearTimeout(timer);
}

async function refresh() {
  clearTimeout(timer);
  if (!shown) return;
  const mine = ++sequence;
  const p = new URLSearchParams();
  const from = byId('acc-from').value.trim();
  const to = byId('acc-to').value.trim();
  if (from) p.set('from', from);
  if (to) p.set('to', to);
  try {
    const answer = await getJson(`/api/price-accuracy?${p}`);
    if (mine !== sequence) return;
    byId('acc-error').textContent = '';
    render(answer);
  } catch (error) {
    if (mine !== sequence) return;
    byId('acc-error').textContent = error.field ? `${error.field}: ${error.message}` : error.message;
  }
  if (mine === sequence && shown) timer = setTimeout(refresh, REFRESH_MS);
}

function render(answer) {
  const container = byId('acc-pairs');
  const seen = new Set();
  for (const pair of answer.pairs) {
    seen.add(pair.pair);
    let entry = charts.get(pair.pair);
    if (!entry) {
      const chartDiv = el('div', { class: 'chart', 'data-testid': 'accuracy-chart', 'data-points': 0, 'data-series': 0 });
      const section = el('section', { 'data-testid': 'accuracy-pair', 'data-pair': pair.pair },
        el('h2', { text: pair.pair }), chartDiv);
      entry = { section, chartDiv, chart: null };
      charts.set(pair.pair, entry);
    }
    container.append(entry.section); // keeps pairs in the answer's order
    const xs = unionOfTimes(pair.sources.map((s) => s.points));
    const index = new Map(xs.map((t, i) => [t, i]));
    const series = pair.sources.map((s) => {
      const values = xs.map(() => null);
      for (const p of s.points) values[index.get(p.t)] = p.percent_difference;
      return { label: s.source, values };
    });
    entry.chart = lineChart(entry.chartDiv, entry.chart, xs, series, { yLabel: '% vs others', height: 240 });
  }
  for (const [pair, entry] of charts) {
    if (!seen.has(pair)) {
      destroyChart(entry.chart);
      entry.section.remove();
      charts.delete(pair);
    }
  }
  if (!answer.pairs.length) {
    container.replaceChildren(el('p', { class: 'note', text: 'No pair has two sources in this range yet.' }));
  } else {
    for (const node of [...container.children]) if (node.tagName === 'P') node.remove();
  }
}
