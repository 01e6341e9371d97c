// ANSI colours (SGR) to spans; other escape sequences are dropped. The state
// carries across lines, as a terminal's does.
export class AnsiState {
  constructor() { this.reset(); }
  reset() { this.fg = null; this.bg = null; this.bold = false; this.dim = false; this.italic = false; this.underline = false; }
  plain() { return this.fg === null && this.bg === null && !this.bold && !this.dim && !this.italic && !this.underline; }
}

const ESCAPES = /\x1b\[([0-9;?]*)([@-~])|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[@-_]/g;

function xterm256(n) {
  if (n < 16) return null;
  if (n >= 232) { const v = 8 + (n - 232) * 10; return `rgb(${v},${v},${v})`; }
  const i = n - 16;
  const c = (x) => (x ? 55 + x * 40 : 0);
  return `rgb(${c(Math.floor(i / 36))},${c(Math.floor(i / 6) % 6)},${c(i % 6)})`;
}

function applySgr(st, params) {
  const p = params === '' ? [0] : params.split(';').map((x) => Number(x) || 0);
  for (let i = 0; i < p.length; i++) {
    const n = p[i];
    if (n === 0) st.reset();
    else if (n === 1) st.bold = true;
    else if (n === 2) st.dim = true;
    else if (n === 3) st.italic = true;
    else if (n === 4) st.underline = true;
    else if (n === 22) { st.bold = false; st.dim = false; }
    else if (n === 23) st.italic = false;
    else if (n === 24) st.underline = false;
    else if (n >= 30 && n <= 37) st.fg = n - 30;
    else if (n >= 90 && n <= 97) st.fg = n - 90 + 8;
    else if (n === 39) st.fg = null;
    else if (n >= 40 && n <= 47) st.bg = n - 40;
    else if (n >= 100 && n <= 107) st.bg = n - 100;
    else if (n === 49) st.bg = null;
    else if ((n === 38 || n === 48) && p[i + 1] === 5) {
      const v = p[i + 2] ?? 0;
      const colour = v < 16 ? v % 8 + (v >= 8 ? 8 : 0) : xterm256(v);
      if (n === 38) st.fg = colour; else st.bg = typeof colour === 'number' ? colour % 8 : colour;
      i += 2;
    } else if ((n === 38 || n === 48) && p[i + 1] === 2) {
      const colour = `rgb(${p[i + 2] ?? 0},${p[i + 3] ?? 0},${p[i + 4] ?? 0})`;
      if (n === 38) st.fg = colour; else st.bg = colour;
      i += 4;
    }
  }
}

function span(text, st) {
  if (st.plain()) return document.createTextNode(text);
  const el = document.createElement('span');
  let cls = '';
  if (typeof st.fg === 'number') cls += ` f${st.fg}`;
  else if (st.fg) el.style.color = st.fg;
  if (typeof st.bg === 'number') cls += ` b${st.bg}`;
  else if (st.bg) el.style.background = st.bg;
  if (st.bold) cls += ' a-b';
  if (st.dim) cls += ' a-d';
  if (st.italic) cls += ' a-i';
  if (st.underline) cls += ' a-u';
  if (cls) el.className = cls.slice(1);
  el.textContent = text;
  return el;
}

// What a terminal would show of one line: the text after its last carriage
// return (a progress bar's final state), without control characters.
export function visible(line) {
  let text = line.endsWith('\r') ? line.slice(0, -1) : line;
  const cr = text.lastIndexOf('\r');
  if (cr >= 0) text = text.slice(cr + 1);
  return text;
}

// Appends one line's text to `el`, as spans; returns the text without escapes.
export function renderInto(el, line, st) {
  const text = visible(line);
  if (text.indexOf('\x1b') < 0) {
    if (text) el.append(st.plain() ? text : span(text, st));
    return text;
  }
  let plain = '';
  let at = 0;
  ESCAPES.lastIndex = 0;
  for (let m; (m = ESCAPES.exec(text));) {
    if (m.index > at) {
      const part = text.slice(at, m.index);
      el.append(span(part, st));
      plain += part;
    }
    if (m[2] === 'm') applySgr(st, m[1]);
    at = ESCAPES.lastIndex;
  }
  if (at < text.length) {
    const part = text.slice(at);
    el.append(span(part, st));
    plain += part;
  }
  return plain;
}
