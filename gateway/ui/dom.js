// A few helpers for building pages from plain DOM: no framework, no build step.

// h('a', {href, class, onclick}, children…): text children are never parsed as HTML.
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'class') el.className = v;
    else if (k === 'text') el.textContent = v;
    else el.setAttribute(k, v === true ? '' : v);
  }
  append(el, children);
  return el;
}

// Replaces el's children (null, false and undefined are skipped).
export function fill(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : String(c));
  }
}

export const link = (href, ...children) => h('a', { href }, ...children);

// "#/p/app/12/unit": names go through encodeURIComponent.
export const path = (...parts) => `#/${parts.map((p) => encodeURIComponent(String(p))).join('/')}`;

// The statuses a build or run ends in.
export const FINISHED = new Set(['PASSED', 'FAILED', 'CANCELLED', 'TIMEOUT', 'SKIPPED']);

export function status(s) {
  return h('span', { class: `st st-${s}`, 'data-status': s }, s);
}

export function table(headers, rows, { empty = 'Nothing here yet.' } = {}) {
  if (!rows.length) return h('div', { class: 'panel empty' }, empty);
  return h('div', { class: 'table' },
    h('table', {},
      h('thead', {}, h('tr', {}, headers.map((x) => (x instanceof Node ? x : h('th', { scope: 'col' }, x))))),
      h('tbody', {}, rows)));
}

export function ago(ms) {
  if (!ms) return h('span', { class: 'muted' }, '—');
  const s = Math.max(0, Math.round((Date.now() - ms) / 1000));
  const text = s < 45 ? 'just now'
    : s < 5400 ? `${Math.max(1, Math.round(s / 60))} min ago`
    : s < 129600 ? `${Math.round(s / 3600)} h ago`
    : `${Math.round(s / 86400)} days ago`;
  return h('time', { datetime: new Date(ms).toISOString(), title: new Date(ms).toLocaleString() }, text);
}

export function duration(from, to) {
  if (!from) return '—';
  const s = Math.max(0, Math.round(((to || Date.now()) - from) / 1000));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h ${String(Math.floor(s / 60) % 60).padStart(2, '0')}m`;
}

export function bytes(n) {
  if (n < 1024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let u = -1;
  do { v /= 1024; u += 1; } while (v >= 1024 && u < units.length - 1);
  return `${v.toFixed(v < 10 ? 1 : 0)} ${units[u]}`;
}

export function banner(message, kind = 'error') {
  return h('div', { class: `banner ${kind}`, role: kind === 'error' ? 'alert' : 'status' }, message);
}

export function toast(message, kind = '') {
  const el = h('div', { class: `toast ${kind}`, role: 'status' }, message);
  document.body.append(el);
  setTimeout(() => el.remove(), 3500);
}

// Runs `fn` now and again `ms` after each run ends, while the page is
// visible, until stop().
export function every(ms, fn) {
  let timer = null;
  let stopped = false;
  const tick = async () => {
    timer = null;
    if (stopped) return;
    if (!document.hidden) {
      try { await fn(); } catch { /* the page shows its own errors */ }
    }
    if (!stopped) timer = setTimeout(tick, ms);
  };
  tick();
  return { stop() { stopped = true; clearTimeout(timer); }, now() { clearTimeout(timer); tick(); } };
}

// A text to copy, with a button (the Clipboard API needs a secure context;
// the selected field works everywhere).
export function copyField(value, label) {
  const input = h('input', { value, readonly: true, 'aria-label': label, onfocus: (e) => e.target.select() });
  const button = h('button', {
    type: 'button',
    onclick: async () => {
      input.select();
      try { await navigator.clipboard.writeText(value); toast('Copied'); } catch { document.execCommand?.('copy'); }
    },
  }, 'Copy');
  return h('div', { class: 'copy' }, input, button);
}
