// Schemas: subjects with versions and compatibility level, the diff of two
// versions, and the registry's verdict on a candidate.
import { getJson, postJson } from './api.js';
import { byId, el, replaceChildren } from './dom.js';

let subjects = [];
let selected = null;
let sequence = 0;

export function init() {
  byId('schema-diff-from').addEventListener('change', drawDiff);
  byId('schema-diff-to').addEventListener('change', drawDiff);
  byId('schema-check').addEventListener('click', check);
}

export function show() {
  load();
}

export function hide() {}

const path = (subject) => `/api/schemas/${encodeURIComponent(subject)}`;

async function load() {
  try {
    const answer = await getJson('/api/schemas');
    subjects = answer.subjects;
    byId('schema-error').textContent = '';
  } catch (error) {
    byId('schema-error').textContent = error.message;
    return;
  }
  replaceChildren(byId('subjects'), subjects.map((s) => {
    const item = el('li', { 'data-testid': 'subject', 'data-subject': s.subject, class: s.subject === selected ? 'active' : '' }, s.subject);
    item.addEventListener('click', () => select(s.subject));
    return item;
  }));
  if (!subjects.length) byId('subjects').append(el('li', { class: 'note', text: 'no subjects' }));
  const again = subjects.find((s) => s.subject === selected);
  if (again) fill(again, false);
}

function versionOptions(select, versions, chosen) {
  replaceChildren(select, versions.map((v) => {
    const option = el('option', { value: v, text: `v${v}` });
    option.selected = v === chosen;
    return option;
  }));
}

async function select(subject) {
  selected = subject;
  for (const li of byId('subjects').children) li.classList.toggle('active', li.getAttribute('data-subject') === subject);
  const s = subjects.find((x) => x.subject === subject);
  if (s) await fill(s, true);
}

async function fill(s, fresh) {
  byId('schema-subject').textContent = s.subject;
  byId('schema-compatibility').textContent = s.compatibility;
  byId('schema-compatibility').title = s.compatibility_source === 'global' ? "the registry's global level" : "the subject's own level";
  byId('schema-versions').textContent = s.versions.map((v) => `v${v}`).join(', ');
  if (!fresh) return;
  const versions = s.versions;
  const to = versions[versions.length - 1];
  const from = versions.length > 1 ? versions[versions.length - 2] : to;
  versionOptions(byId('schema-diff-from'), versions, from);
  versionOptions(byId('schema-diff-to'), versions, to);
  byId('schema-check-result').textContent = '';
  await drawDiff();
  try {
    const newest = await getJson(`${path(s.subject)}/versions/${to}`);
    if (selected === s.subject) byId('schema-candidate').value = newest.pretty;
  } catch (error) {
    byId('schema-error').textContent = error.message;
  }
}

async function drawDiff() {
  if (!selected) return;
  const mine = ++sequence;
  const from = byId('schema-diff-from').value;
  const to = byId('schema-diff-to').value;
  try {
    const diff = await getJson(`${path(selected)}/diff?from=${encodeURIComponent(from)}&to=${encodeURIComponent(to)}`);
    if (mine !== sequence) return;
    replaceChildren(byId('schema-diff'), diff.lines.map((l) => el('div', { class: `diff-${l.tag}`, text: l.text })));
  } catch (error) {
    if (mine === sequence) byId('schema-error').textContent = error.message;
  }
}

async function check() {
  const result = byId('schema-check-result');
  if (!selected) {
    result.textContent = 'select a subject first';
    return;
  }
  result.textContent = 'checking…';
  try {
    const verdict = await postJson(`${path(selected)}/check`, byId('schema-candidate').value);
    const against = verdict.checked_against ? `, checked against version ${verdict.checked_against}` : '';
    result.textContent = verdict.compatible
      ? `compatible (${verdict.compatibility}${against}): ${selected} accepts this schema` +
        (verdict.reasons.length ? `\n${verdict.reasons.join('\n')}` : '')
      : `incompatible (${verdict.compatibility}${against}): ${verdict.reasons.join('; ')}`;
  } catch (error) {
    result.textContent = error.status === 400
      ? `incompatible (invalid schema): ${error.message}`
      : `check failed: ${error.message}`;
  }
}
