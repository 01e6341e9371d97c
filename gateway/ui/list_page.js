// A page that is one list, read from the API every `ms` while visible.
import { h, fill, every } from './dom.js';
import { showError } from './session.js';

export function listPage(main, title, ms, load) {
  const errors = h('div');
  const body = h('div', {}, h('p', { class: 'muted' }, 'Loading…'));
  main.append(h('div', { class: 'head' }, h('h1', {}, title)), errors, body);
  const poll = every(ms, async () => {
    let content;
    try { content = await load(() => poll.now()); } catch (e) { return showError(errors, e); }
    fill(errors);
    fill(body, content);
  });
  return { stop: () => poll.stop() };
}
