// Line charts with uPlot (vendored, global `uPlot`). A chart container gets
// `data-points` (points plotted, all series together) and `data-series`.
// Times are drawn in UTC (axis and legend), as the console's tables show
// them and as the server reads a time typed without an offset, not in the
// browser's zone.
const COLORS = ['#2563eb', '#dc2626', '#16a34a', '#9333ea', '#ea580c', '#0891b2', '#ca8a04', '#db2777', '#4b5563', '#65a30d'];

/**
 * Draws (or redraws) a line chart in `container`: `xs` in Unix ms,
 * `series` = [{label, values}] aligned with xs (null where absent).
 * Returns the chart handle to pass back next time. The chart follows its
 * container's width (a ResizeObserver); `destroyChart` releases it.
 */
export function lineChart(container, previous, xs, series, { yLabel = '', height = 300 } = {}) {
  const points = series.reduce((n, s) => n + s.values.filter((v) => v !== null && v !== undefined).length, 0);
  container.setAttribute('data-points', String(points));
  container.setAttribute('data-series', String(series.length));
  const data = [xs.map((t) => t / 1000), ...series.map((s) => s.values)];
  const labels = series.map((s) => s.label).join('\u0000');
  if (typeof window.uPlot !== 'function') return null;
  if (previous && previous.labels === labels && previous.plot.root.isConnected) {
    previous.plot.setData(data);
    return previous;
  }
  destroyChart(previous);
  container.replaceChildren();
  const widthOf = () => Math.max(320, container.clientWidth || container.parentElement.clientWidth || 800);
  const width = widthOf();
  const plot = new window.uPlot({
    width,
    height,
    tzDate: (ts) => window.uPlot.tzDate(new Date(ts * 1e3), 'Etc/UTC'),
    scales: { x: { time: true } },
    axes: [{ label: 'time (UTC)' }, { label: yLabel, size: 70 }],
    series: [{ label: 'time (UTC)', value: '{YYYY}-{MM}-{DD} {HH}:{mm}:{ss}' }, ...series.map((s, i) => ({
      label: s.label,
      stroke: COLORS[i % COLORS.length],
      width: 2,
      spanGaps: true,
      points: { show: true, size: 5 },
    }))],
  }, data, container);
  const resized = new ResizeObserver(() => {
    const next = widthOf();
    if (next !== plot.width) plot.setSize({ width: next, height });
  });
  resized.observe(container);
  return { plot, labels, resized };
}

/** Removes a chart `lineChart` drew (a no-op for none). */
export function destroyChart(chart) {
  if (!chart) return;
  chart.resized.disconnect();
  chart.plot.destroy();
}

/** The sorted distinct xs of every series' points ({t}). */
export function unionOfTimes(groups) {
  const xs = new Set();
  for (const points of groups) for (const p of points) xs.add(p.t);
  return [...xs].sort((a, b) => a - b);
}
