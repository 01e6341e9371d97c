// The live event stream, filtered by subject pattern, resuming from the last
// id seen (kept for this tab).
import { follow } from './api.js';
import { h, fill } from './dom.js';

const LAST = 'kiln.events.last';
const KEEP = 500;

export function eventsPage(main) {
  const filter = h('input', { name: 'filter', placeholder: 'app.> or *.*.*.RunCompleted', value: sessionStorage.getItem('kiln.events.filter') || '' });
  const state = h('span', { class: 'muted', 'aria-live': 'polite' });
  const list = h('ul', { class: 'events panel', 'aria-label': 'Events' });
  let stream = null;
  let shown = 0;

  const start = (fromLast) => {
    stream?.close();
    fill(list);
    shown = 0;
    const f = filter.value.trim();
    sessionStorage.setItem('kiln.events.filter', f);
    const last = sessionStorage.getItem(LAST);
    const query = new URLSearchParams();
    if (f) query.set('filter', f);
    if (!(fromLast && last)) query.set('tail', '100');
    stream = follow(`/events?${query}`, {
      lastId: fromLast && last ? last : null,
      onEvent: (type, data, id) => {
        if (type !== 'commit') return;
        sessionStorage.setItem(LAST, id);
        list.prepend(eventItem(data));
        if (++shown > KEEP) list.lastChild.remove();
      },
      onState: (s, err) => { state.textContent = s === 'error' ? err.message : s === 'live' ? '● live' : s; },
    });
  };

  const form = h('form', { class: 'toolbar', onsubmit: (e) => { e.preventDefault(); start(false); } },
    h('label', {}, 'Filter (subject pattern)', filter),
    h('button', { class: 'primary', type: 'submit' }, 'Follow'),
    h('button', { type: 'button', onclick: () => start(true) }, 'Resume from last seen'),
    state);
  main.append(h('div', { class: 'head' }, h('h1', {}, 'Events')), form, list);
  start(true);
  return { stop() { stream?.close(); } };
}

function eventItem(c) {
  const types = (c.events || []).map((e) => e.type).join(', ');
  return h('li', { 'data-seq': c.seq },
    h('details', {},
      h('summary', {}, h('b', { class: 'mono' }, `#${c.seq}`), h('span', {}, types),
        h('span', { class: 'mono' }, c.stream), h('span', { class: 'muted' }, c.principal),
        h('time', { class: 'muted' }, c.time)),
      h('pre', { class: 'block' }, JSON.stringify(c.events, null, 2))));
}
