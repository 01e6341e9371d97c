// A run's console: text arrives in chunks of any size, is cut into lines and
// rendered a few milliseconds per frame, so a run printing thousands of lines
// a second never freezes the page. Lines sit in blocks of 250 that the
// browser skips laying out while they are off screen.
import { AnsiState, renderInto } from './ansi.js';

const BLOCK = 250;
const BUDGET_MS = 5;
const ERROR = /\b(error|errors?:|failed|failure|fatal|panic|traceback|exception)\b/i;

export class ConsoleView {
  // lineHref(n): the address of line n, for its number's link.
  constructor({ lineHref }) {
    this.lineHref = lineHref;
    this.el = document.createElement('div');
    this.el.className = 'console';
    this.el.setAttribute('role', 'log');
    this.el.setAttribute('aria-label', 'Console');
    this.el.tabIndex = 0;
    this.blocks = [];
    this.lines = 0;
    this.pending = '';
    this.open = null;      // the last line while it has no newline yet
    this.openText = '';
    this.ansi = new AnsiState();
    this.scheduled = false;
    this.stick = true;     // follows the end until the reader scrolls up
    this.firstError = 0;
    this.target = 0;       // a line asked for by the address, shown once it exists
    this.onChange = () => {};
    this.el.addEventListener('click', (e) => {
      const num = e.target.closest?.('.n');
      if (!num) return;
      const n = Number(num.dataset.n);
      history.replaceState(null, '', this.lineHref(n));
      this.show(n);
    });
    this.el.addEventListener('scroll', () => {
      this.stick = this.el.scrollTop + this.el.clientHeight >= this.el.scrollHeight - 24;
    }, { passive: true });
  }

  append(text) {
    if (!text) return;
    this.pending += text;
    this.schedule();
  }

  schedule() {
    if (this.scheduled) return;
    this.scheduled = true;
    requestAnimationFrame(() => { this.scheduled = false; this.flush(); });
  }

  flush() {
    const start = performance.now();
    let at = 0;
    const text = this.pending;
    let count = 0;
    for (;;) {
      const nl = text.indexOf('\n', at);
      if (nl < 0) break;
      this.finishLine(this.openText + text.slice(at, nl));
      this.openText = '';
      at = nl + 1;
      if (++count % 100 === 0 && performance.now() - start > BUDGET_MS) break;
    }
    this.pending = text.slice(at);
    const more = this.pending.indexOf('\n') >= 0;
    if (!more && this.pending) {
      // A line still being written shows as it is.
      this.openText += this.pending;
      this.pending = '';
      this.showOpen();
    }
    if (more) this.schedule();
    if (this.stick) this.el.scrollTop = this.el.scrollHeight;
    this.el.dataset.lines = String(this.lines);
    this.reveal();
    this.onChange();
  }

  // Called once the console has ended: a last line without a newline stays.
  end() {
    this.flushAll();
    if (this.openText) { const t = this.openText; this.openText = ''; this.finishLine(t); }
    this.el.dataset.lines = String(this.lines);
    this.el.dataset.ended = 'true';
    this.reveal();
    this.onChange();
  }

  flushAll() {
    while (this.pending.indexOf('\n') >= 0) {
      const before = this.pending.length;
      this.flush();
      if (this.pending.length === before) break;
    }
  }

  blockFor(n) {
    const i = Math.floor((n - 1) / BLOCK);
    while (this.blocks.length <= i) {
      const b = document.createElement('div');
      b.className = 'blk';
      this.el.append(b);
      this.blocks.push(b);
    }
    return this.blocks[i];
  }

  makeLine(n) {
    const row = document.createElement('div');
    row.className = 'ln';
    row.id = `L${n}`;
    // The number is drawn by CSS and linked by one listener for all lines:
    // 50,000 anchors would cost more than the text itself.
    const num = document.createElement('span');
    num.className = 'n';
    num.dataset.n = n;
    const t = document.createElement('span');
    t.className = 't';
    row.append(num, t);
    return row;
  }

  finishLine(line) {
    let row = this.open;
    this.open = null;
    const n = this.lines + 1;
    if (!row) {
      row = this.makeLine(n);
      this.blockFor(n).append(row);
    } else {
      row.lastChild.replaceChildren();
    }
    const plain = renderInto(row.lastChild, line, this.ansi);
    this.lines = n;
    if (plain.startsWith('== ')) row.classList.add('sys');  // kiln's own lines
    else if (ERROR.test(plain)) {
      row.classList.add('err');
      if (!this.firstError) this.firstError = n;
    }
  }

  showOpen() {
    const n = this.lines + 1;
    if (!this.open) {
      this.open = this.makeLine(n);
      this.blockFor(n).append(this.open);
    }
    const state = Object.assign(new AnsiState(), this.ansi);
    this.open.lastChild.replaceChildren();
    renderInto(this.open.lastChild, this.openText, state);
  }

  line(n) {
    const b = this.blocks[Math.floor((n - 1) / BLOCK)];
    return b ? b.children[(n - 1) % BLOCK] : null;
  }

  // Scrolls to line n and marks it (now, or once it has arrived).
  show(n) {
    this.target = n;
    this.reveal();
  }

  reveal() {
    if (!this.target || this.target > this.lines) return;
    const row = this.line(this.target);
    this.target = 0;
    if (!row) return;
    this.el.querySelector('.ln.hl')?.classList.remove('hl');
    row.classList.add('hl');
    this.stick = false;
    row.scrollIntoView({ block: 'center' });
  }

  toEnd() {
    this.stick = true;
    this.el.scrollTop = this.el.scrollHeight;
  }
}
