// Workers (enlist / delist for admins) and the queue with why each run waits.
import { api } from './api.js';
import { h, link, path, status, table, ago, every, toast, fill } from './dom.js';
import { session, showError } from './session.js';

function runLink(id) {
  const [project, build, ...rest] = id.split('/');
  return link(path('p', project, build, rest.join('/')), id);
}

export function workersPage(main) {
  const errors = h('div');
  const body = h('div', {}, h('p', { class: 'muted' }, 'Loading…'));
  main.append(h('div', { class: 'head' }, h('h1', {}, 'Workers')), errors, body);
  const poll = every(4000, async () => {
    let workers;
    try { workers = await api('/workers'); } catch (e) { return showError(errors, e); }
    fill(errors);
    const admin = session.can('admin');
    workers.sort((a, b) => (a.enlisted - b.enlisted) || (b.online - a.online) || a.name.localeCompare(b.name));
    fill(body, table(['Worker', 'State', 'Tags', 'Runs', 'Last check-in', admin ? '' : null].filter((x) => x !== null),
      workers.map((w) => h('tr', { 'data-worker': w.name },
        h('td', {}, h('b', {}, w.name), w.host?.local ? h('div', { class: 'muted' }, 'local') : null),
        h('td', {}, w.enlisted ? status(w.online ? 'online' : 'offline') : status('pending')),
        h('td', { class: 'wrap' }, w.tags.map((t) => h('span', { class: 'tag' }, t))),
        h('td', { class: 'wrap' }, `${w.runs.length} / ${w.concurrency}`,
          w.runs.length ? h('div', {}, w.runs.map((id) => h('div', {}, runLink(id)))) : null),
        h('td', {}, ago(w.last_checkin_ms)),
        admin ? h('td', {}, workerAction(w, poll)) : null)),
      { empty: 'No workers yet. Start one with kiln worker --server URL --name NAME; an admin then enlists it here.' }));
  });
  return { stop: () => poll.stop() };
}

function workerAction(w, poll) {
  const verb = w.enlisted ? 'delist' : 'enlist';
  return h('button', {
    type: 'button', class: w.enlisted ? '' : 'primary',
    onclick: async (e) => {
      e.currentTarget.disabled = true;
      try {
        await api(`/workers/${encodeURIComponent(w.name)}/${verb}`, { method: 'POST' });
        toast(`${w.name} ${verb}ed`);
      } catch (err) { toast(err.message, 'error'); }
      poll.now();
    },
  }, w.enlisted ? 'Delist' : 'Enlist');
}

const REASONS = {
  no_worker: 'No worker for it',
  workers_busy: 'All workers busy',
  synchronous_build: 'Waiting for an earlier build',
};

export function queuePage(main) {
  const errors = h('div');
  const body = h('div', {}, h('p', { class: 'muted' }, 'Loading…'));
  main.append(h('div', { class: 'head' }, h('h1', {}, 'Queue')), errors, body);
  const poll = every(3000, async () => {
    let queue;
    try { queue = await api('/queue'); } catch (e) { return showError(errors, e); }
    fill(errors);
    fill(body, table(['Run', 'Waits because', 'Detail'],
      queue.map((q) => h('tr', { 'data-run': q.run_id },
        h('td', {}, runLink(q.run_id)),
        h('td', {}, h('b', {}, REASONS[q.reason] || q.reason)),
        h('td', { class: 'wrap' }, q.detail))),
      { empty: 'Nothing is waiting: every queued run has a worker.' }));
  });
  return { stop: () => poll.stop() };
}
