// Overview: service states, rates, consumer lag, dead letters and
// freshness, pushed by the server after every scrape (server-sent events).
import { stream, ApiError } from './api.js';
import { byId, el, num, replaceChildren } from './dom.js';

let controller = null;
let retry = null;

export function init() {}

export function show() {
  connect();
}

export function hide() {
  if (controller) controller.abort();
  controller = null;
  clearTimeout(retry);
  byId('connection').classList.remove('live');
}

function connect() {
  clearTimeout(retry);
  controller = new AbortController();
  const mine = controller;
  stream('/api/overview/stream', (name, data) => {
    if (name === 'overview' && mine === controller) render(JSON.parse(data));
  }, mine.signal).then(() => again(mine), (error) => {
    if (error instanceof ApiError && error.status === 401) return; // the prompt restarts us
    again(mine);
  });
}

function again(mine) {
  byId('connection').classList.remove('live');
  if (mine !== controller || mine.signal.aborted) return;
  retry = setTimeout(connect, 2000);
}

function rateCells(r) {
  return [el('td', { class: 'num', text: num(r.per_second) }), el('td', { class: 'num', text: num(r.total, 0) })];
}

/** `rows`, or one row saying there are none (no data-testid). */
function rowsOrNone(rows, columns, text) {
  return rows.length ? rows : [el('tr', { class: 'none' }, el('td', { colspan: columns, class: 'note', text }))];
}

function render(o) {
  byId('connection').classList.add('live');
  const root = byId('overview');
  const services = byId('services-table').tBodies[0];
  replaceChildren(services, o.services.map((s) => el('tr', { 'data-testid': 'service-row', 'data-service': s.name },
    el('td', { text: s.name }),
    el('td', {}, el('span', { 'data-testid': 'service-status', class: `status-${s.status}`, text: s.status })),
    el('td', { class: 'note', text: s.detail }))));
  if (!o.services.length) {
    services.append(el('tr', {}, el('td', { colspan: 3, class: 'note', text: 'No services are watched (--service NAME=METRICS_URL[,READY_URL]).' })));
  }
  root.querySelector('[data-testid="rate-received"]').textContent = num(o.ingest.received_per_second);
  root.querySelector('[data-testid="rate-acknowledged"]').textContent = num(o.ingest.acknowledged_per_second);
  root.querySelector('[data-testid="rate-refused"]').textContent = num(o.ingest.refused_per_second);
  replaceChildren(byId('acked-table').tBodies[0], rowsOrNone(o.ingest.acknowledged_by_event_type.map((r) =>
    el('tr', { 'data-testid': 'acked-row', 'data-event-type': r.label }, el('td', { text: r.label }), ...rateCells(r))),
  3, 'none yet'));
  replaceChildren(byId('refused-table').tBodies[0], rowsOrNone(o.ingest.refused_by_reason.map((r) =>
    el('tr', { 'data-testid': 'refused-row', 'data-reason': r.label }, el('td', { text: r.label }), ...rateCells(r))),
  3, 'none'));
  replaceChildren(byId('lag-table').tBodies[0], rowsOrNone(o.lag.map((l) =>
    el('tr', { 'data-testid': 'lag-row', 'data-consumer': l.consumer, 'data-topic': l.topic, 'data-partition': l.partition },
      el('td', { text: l.consumer }), el('td', { text: l.topic }), el('td', { class: 'num', text: l.partition }),
      el('td', { class: 'num', 'data-testid': 'lag', text: num(l.lag, 0) }))),
  4, 'no partitions assigned to a watched consumer yet'));
  replaceChildren(byId('dead-letter-reasons-table').tBodies[0], rowsOrNone(o.dead_letters.map((d) =>
    el('tr', { 'data-testid': 'dead-letter-reason-row', 'data-reason': d.label },
      el('td', { text: d.label }),
      el('td', { class: 'num', 'data-testid': 'dead-letter-total', text: num(d.total, 0) }),
      el('td', { class: 'num', 'data-testid': 'dead-letter-rate', text: num(d.per_second) }))),
  3, 'none since the services started'));
  const freshness = root.querySelector('[data-testid="freshness"]');
  const seconds = o.freshness.seconds;
  if (seconds === null || seconds === undefined) {
    freshness.textContent = '–';
    freshness.removeAttribute('data-seconds');
    freshness.title = 'No aggregate stored yet.';
  } else {
    freshness.textContent = `${num(seconds, 1)} s`;
    freshness.setAttribute('data-seconds', num(seconds, 3));
    freshness.title = `Now minus the newest stored event time (${o.freshness.newest_event_time}).`;
  }
  byId('overview-note').textContent =
    `Rates per second over the last ${num(o.rate_window_seconds, 1)} s; scraped every ${num(o.scrape_interval_ms / 1000, 1)} s; ` +
    'freshness: how old the newest event a query can see is.';
  root.setAttribute('data-updated-at', String(o.updated_at_ms));
}
