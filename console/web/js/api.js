// Calls to the console's /api. With API keys configured the server answers
// 401 until a key is given: the prompt asks for one, keeps it in
// sessionStorage and sends it as `authorization: Bearer <key>`.
import { byId } from './dom.js';

const STORAGE = 'tributary.console.apiKey';

export class ApiError extends Error {
  constructor(message, status, field) {
    super(message);
    this.status = status;
    this.field = field || '';
  }
}

export function apiKey() {
  try { return sessionStorage.getItem(STORAGE) || ''; } catch { return ''; }
}

function authHeaders(headers = {}) {
  const h = new Headers(headers);
  const key = apiKey();
  if (key) h.set('authorization', `Bearer ${key}`);
  return h;
}

let promptShown = false;

export function showKeyPrompt(message) {
  const prompt = byId('api-key-prompt');
  byId('api-key-message').textContent = message || '';
  prompt.hidden = false;
  if (!promptShown) byId('api-key-input').focus();
  promptShown = true;
}

export function setupKeyPrompt(onKey) {
  byId('api-key-form').addEventListener('submit', (event) => {
    event.preventDefault();
    const key = byId('api-key-input').value.trim();
    if (!key) return;
    try { sessionStorage.setItem(STORAGE, key); } catch { /* private mode */ }
    byId('api-key-prompt').hidden = true;
    promptShown = false;
    onKey();
  });
}

/** fetch `path` with the key; throws ApiError (after showing the prompt on 401). */
export async function call(path, options = {}) {
  const response = await fetch(path, { ...options, headers: authHeaders(options.headers) });
  if (response.status === 401) {
    showKeyPrompt(apiKey() ? 'That key was not accepted.' : '');
    throw new ApiError('an API key is needed', 401);
  }
  if (!response.ok) {
    let body = null;
    try { body = await response.json(); } catch { /* not JSON */ }
    const message = body && body.message ? body.message : `${response.status} ${response.statusText}`;
    throw new ApiError(message, response.status, body && body.field);
  }
  return response;
}

export async function getJson(path) {
  return (await call(path)).json();
}

export async function postJson(path, body) {
  const response = await call(path, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  return response.json();
}

/**
 * Server-sent events over fetch (so the key header goes along): calls
 * `onEvent(name, data)` per event until `signal` aborts; resolves when the
 * stream ends.
 */
export async function stream(path, onEvent, signal) {
  const response = await call(path, { signal, headers: { accept: 'text/event-stream' } });
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value;
    let end;
    while ((end = buffer.indexOf('\n\n')) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      let name = 'message';
      const data = [];
      for (const line of block.split('\n')) {
        if (line.startsWith('event:')) name = line.slice(6).trim();
        else if (line.startsWith('data:')) data.push(line.slice(5).replace(/^ /, ''));
      }
      if (data.length) onEvent(name, data.join('\n'));
    }
  }
}

/** Downloads `path` through fetch (with the key) as `filename`. */
export async function download(path, filename) {
  const blob = await (await call(path)).blob();
  const url = URL.createObjectURL(blob);
  const a = document.createElement('a');
  a.href = url;
  a.download = filename;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}
