// Dead letters: newest first, filtered; one shown with its decoded payload
// and headers (all untrusted: set as text only); the checked ones replayed
// (each at most once, as `trib dlq replay`).
import { getJson, postJson } from './api.js';
import { byId, el, list, replaceChildren } from './dom.js';

const REFRESH_MS = 5000;

let timer = null;
let shown = false;
let sequence = 0;
let openId = null;
const checked = new Set();

export function init() {
  byId('dlq-form').addEventListener('submit', (event) => {
    event.preventDefault();
    refresh();
  });
  byId('dead-letter-replay').addEventListener('click', replay);
}

export function show() {
  shown = true;
  refresh();
}

export function hide() {
  shown = false;
  clearTimeout(timer);
}

function params() {
  const p = new URLSearchParams();
  for (const r of list(byId('dlq-reason').value)) p.append('reason', r);
  for (const s of list(byId('dlq-source').value)) p.append('source', s);
  const since = byId('dlq-since').value.trim();
  if (since) p.set('since', since);
  p.set('limit', '500');
  return p;
}

async function refresh() {
  clearTimeout(timer);
  if (!shown) return;
  const mine = ++sequence;
  byId('dlq-status').textContent = 'reading the dead-letter topic…';
  try {
    const answer = await getJson(`/api/dead-letters?${params()}`);
    if (mine !== sequence) return;
    byId('dlq-error').textContent = '';
    render(answer);
  } catch (error) {
    if (mine !== sequence) return;
    byId('dlq-status').textContent = '';
    byId('dlq-error').textContent = error.field ? `${error.field}: ${error.message}` : error.message;
  }
  if (mine === sequence && shown) timer = setTimeout(refresh, REFRESH_MS);
}

function render(answer) {
  const body = byId('dlq-table').tBodies[0];
  const ids = new Set(answer.dead_letters.map((d) => d.id));
  for (const id of [...checked]) if (!ids.has(id)) checked.delete(id);
  replaceChildren(body, answer.dead_letters.map((d) => {
    const box = el('input', { type: 'checkbox', 'data-testid': 'dead-letter-select', 'aria-label': `select ${d.id}` });
    box.checked = checked.has(d.id);
    box.addEventListener('click', (event) => event.stopPropagation());
    box.addEventListener('change', () => { if (box.checked) checked.add(d.id); else checked.delete(d.id); });
    const row = el('tr', { 'data-testid': 'dead-letter-row', 'data-id': d.id, 'data-reason': d.reason, class: d.id === openId ? 'selected' : '' },
      el('td', {}, box), el('td', { text: d.id }), el('td', { text: d.time || '' }), el('td', { text: d.reason }),
      el('td', { text: d.source || '' }), el('td', { text: shorten(d.detail, 140) }));
    row.addEventListener('click', () => open(d.id));
    return row;
  }));
  const counts = answer.counts.map((c) => `${c.reason} from ${c.source_topic || '?'}: ${c.count}`).join(' · ');
  byId('dlq-status').textContent = `${answer.topic}: ${answer.total} dead letters` +
    (answer.total > answer.dead_letters.length ? ` (newest ${answer.dead_letters.length} listed)` : '') +
    (counts ? ` — ${counts}` : '');
}

function shorten(text, n) {
  const chars = [...(text || '')];
  return chars.length > n ? `${chars.slice(0, n - 1).join('')}…` : chars.join('');
}

async function open(id) {
  openId = id;
  for (const row of byId('dlq-table').tBodies[0].rows) row.classList.toggle('selected', row.getAttribute('data-id') === id);
  const detail = byId('dead-letter-detail');
  detail.hidden = false;
  replaceChildren(detail, el('p', { class: 'note', text: `loading ${id}…` }));
  let d;
  try {
    d = await getJson(`/api/dead-letters/${id.split('/').map(encodeURIComponent).join('/')}`);
  } catch (error) {
    replaceChildren(detail, el('p', { class: 'error', text: error.message }));
    return;
  }
  if (openId !== id) return;
  const field = (name, value) => el('tr', {}, el('th', { text: name }), el('td', { text: value ?? '' }));
  let payloadText;
  let payloadNote;
  const p = d.payload;
  if (p.encoding === 'avro') {
    payloadText = JSON.stringify(p.value, null, 2);
    payloadNote = `Avro, schema id ${p.schema_id}`;
  } else if (p.encoding === 'raw') {
    payloadText = `${p.text}\n\nhex: ${p.hex}`;
    payloadNote = `${p.bytes} bytes, not decoded: ${p.why}`;
  } else {
    payloadText = '';
    payloadNote = 'no payload';
  }
  replaceChildren(detail,
    el('h2', { text: `dead letter ${d.id}` }),
    el('table', { class: 'data' }, el('tbody', {},
      field('time', d.time), field('reason', d.reason), field('detail', d.detail), field('source', d.source),
      d.replayed_from ? field('replayed from', d.replayed_from) : null, field('key', d.key ?? '(none)'))),
    el('h2', { text: 'payload' }),
    el('p', { class: 'note', text: payloadNote }),
    el('pre', { 'data-testid': 'dead-letter-payload', text: payloadText }),
    el('h2', { text: 'headers' }),
    el('table', { class: 'data', 'data-testid': 'dead-letter-headers' },
      el('thead', {}, el('tr', {}, el('th', { text: 'name' }), el('th', { text: 'value' }))),
      el('tbody', {}, d.headers.map((h) => el('tr', {}, el('td', { text: h.name }), el('td', { text: h.value ?? '(null)' }))))));
}

async function replay() {
  const result = byId('dead-letter-replay-result');
  const ids = [...checked];
  if (!ids.length) {
    result.textContent = 'select the dead letters to replay';
    return;
  }
  result.textContent = `replaying ${ids.length}…`;
  try {
    const report = await postJson('/api/dead-letters/replay', { ids });
    result.textContent = `replayed ${report.replayed}, skipped ${report.skipped}, failed ${report.failed}`;
    const failures = report.items.filter((i) => i.outcome === 'failed').map((i) => `${i.id}: ${i.detail}`);
    byId('dlq-error').textContent = failures.join('\n');
    checked.clear();
    refresh();
  } catch (error) {
    result.textContent = `replay failed: ${error.message}`;
  }
}
