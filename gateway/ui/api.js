// The UI speaks only the public /v1 API, so any gateway of a cluster serves it.
const TOKEN_KEY = 'kiln.token';

export const token = {
  get: () => sessionStorage.getItem(TOKEN_KEY) || '',
  set: (t) => sessionStorage.setItem(TOKEN_KEY, t.trim()),
  clear: () => sessionStorage.removeItem(TOKEN_KEY),
};

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

// A POST sent again after a lost answer (same key) is done once.
export function idempotencyKey() {
  return crypto.randomUUID?.() || `${Date.now()}-${Math.random().toString(36).slice(2)}`;
}

function authHeaders(extra = {}) {
  const h = { ...extra };
  const t = token.get();
  if (t) h.Authorization = `Bearer ${t}`;
  return h;
}

export async function api(path, { method = 'GET', body, headers = {}, signal } = {}) {
  const h = authHeaders(headers);
  let payload = body;
  if (body !== undefined && typeof body !== 'string') {
    h['Content-Type'] = 'application/json';
    payload = JSON.stringify(body);
  }
  let res;
  try {
    res = await fetch(`/v1${path}`, { method, headers: h, body: payload, signal });
  } catch (e) {
    if (e.name === 'AbortError') throw e;
    throw new ApiError(0, 'network', 'the server cannot be reached');
  }
  const text = await res.text();
  let json = null;
  try { json = text ? JSON.parse(text) : null; } catch { /* not JSON: kept as text */ }
  if (!res.ok)
    throw new ApiError(res.status, json?.error || `http_${res.status}`, json?.message || text || res.statusText);
  return json;
}

// A file behind the API, saved through the browser: a plain link cannot
// carry the Authorization header.
export async function download(path, name) {
  const res = await fetch(`/v1${path}`, { headers: authHeaders() });
  if (!res.ok) throw new ApiError(res.status, `http_${res.status}`, `download failed (${res.status})`);
  const url = URL.createObjectURL(await res.blob());
  const a = Object.assign(document.createElement('a'), { href: url, download: name });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60000);
}

// Server-sent events over fetch (EventSource cannot send a token). Resumes
// with Last-Event-ID after a dropped connection or a `reconnect` event, with
// a growing pause between tries; stops after an `end` event or close().
export function follow(path, { lastId = null, onEvent, onState = () => {} }) {
  let stopped = false;
  let controller = null;
  let failures = 0;

  async function once() {
    controller = new AbortController();
    const headers = authHeaders({ Accept: 'text/event-stream' });
    if (lastId !== null) headers['Last-Event-ID'] = String(lastId);
    const res = await fetch(`/v1${path}`, { headers, signal: controller.signal });
    if (!res.ok) {
      let body = null;
      try { body = await res.json(); } catch { /* no body */ }
      const err = new ApiError(res.status, body?.error || `http_${res.status}`, body?.message || res.statusText);
      err.retry = res.status === 429 || res.status >= 500;
      throw err;
    }
    onState('live');
    const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
    let buf = '';
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return 'dropped';
      buf += value;
      let cut;
      while ((cut = buf.search(/\r?\n\r?\n/)) >= 0) {
        const block = buf.slice(0, cut);
        buf = buf.slice(cut + (buf[cut] === '\r' ? 4 : 2));
        const ev = parse(block);
        if (!ev) continue;
        if (ev.id !== null) lastId = ev.id;
        failures = 0;
        if (ev.type === 'reconnect') return 'reconnect';
        onEvent(ev.type, ev.data, lastId);
        if (ev.type === 'end') return 'end';
        if (stopped) return 'end';
      }
    }
  }

  async function loop() {
    while (!stopped) {
      let how;
      try {
        how = await once();
      } catch (e) {
        if (stopped || e.name === 'AbortError') return;
        if (e instanceof ApiError && !e.retry) { onState('error', e); return; }
        how = 'dropped';
      }
      if (how === 'end' || stopped) { onState('ended'); return; }
      if (how === 'reconnect') continue;
      failures += 1;
      onState('reconnecting');
      await new Promise((r) => setTimeout(r, Math.min(10000, 500 * 2 ** Math.min(failures, 5))));
    }
  }

  loop();
  return {
    close() { stopped = true; controller?.abort(); },
    get lastId() { return lastId; },
  };
}

function parse(block) {
  let type = 'message';
  let id = null;
  const data = [];
  for (const line of block.split(/\r?\n/)) {
    if (!line || line.startsWith(':')) continue;
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'event') type = value;
    else if (field === 'data') data.push(value);
    else if (field === 'id') id = value;
  }
  if (!data.length && type === 'message') return null;
  let parsed = data.join('\n');
  try { parsed = JSON.parse(parsed); } catch { /* plain text data */ }
  return { type, id, data: parsed };
}
