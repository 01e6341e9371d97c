// Workers (enlist / delist for admins) and the queue with why each run waits.
import { api } from './api.js';
import { h, link, path, status, table, ago, toast } from './dom.js';
import { session } from './session.js';
import { listPage } from './list_page.js';

function runLink(id) {
  const [project, build, ...rest] = id.split('/');
  return link(path('p', project, build, rest.join('/')), id);
}

export function workersPage(main) {
  return listPage(main, 'Workers', 4000, async (reload) => {
    const workers = await api('/workers');
    const admin = session.can('admin');
    workers.sort((x, y) => (x.enlisted - y.enlisted) || (y.online - x.online) || x.name.localeCompare(y.name));
    return table(['Worker', 'State', 'Tags', 'Runs', 'Last check-in', admin ? '' : null].filter((x) => x !== null),
      workers.map((w) => h('tr', { 'data-worker': w.name },
        h('td', {}, h('b', {}, w.name), w.host?.local ? h('div', { class: 'muted' }, 'local') : null),
        h('td', {}, w.enlisted ? status(w.online ? 'online' : 'offline') : status('pending')),
        h('td', { class: 'wrap' }, w.tags.map((t) => h('span', { class: 'tag' }, t))),
        h('td', { class: 'wrap' }, `${w.runs.length} / ${w.concurrency}`,
          w.runs.length ? h('div', {}, w.runs.map((id) => h('div', {}, runLink(id)))) : null),
        h('td', {}, ago(w.last_checkin_ms)),
        admin ? h('td', {}, workerAction(w, reload)) : null)),
      { empty: 'No workers yet. Start one with kiln worker --server URL --name NAME; an admin then enlists it here.' });
  });
}

function workerAction(w, reload) {
  const verb = w.enlisted ? 'delist' : 'enlist';
  return h('button', {
    type: 'button', class: w.enlisted ? '' : 'primary',
    onclick: async (e) => {
      e.currentTarget.disabled = true;
      try {
        await api(`/workers/${encodeURIComponent(w.name)}/${verb}`, { method: 'POST' });
        toast(`${w.name} ${verb}ed`);
      } catch (err) { toast(err.message, 'error'); }
      reload();
    },
  }, w.enlisted ? 'Delist' : 'Enlist');
}

const REASONS = {
  no_worker: 'No worker for it',
  workers_busy: 'All workers busy',
  synchronous_build: 'Waiting for an earlier build',
};

export function queuePage(main) {
  return listPage(main, 'Queue', 3000, async () => {
    const queue = await api('/queue');
    return table(['Run', 'Waits because', 'Detail'],
      queue.map((q) => h('tr', { 'data-run': q.run_id },
        h('td', {}, runLink(q.run_id)),
        h('td', {}, h('b', {}, REASONS[q.reason] || q.reason)),
        h('td', { class: 'wrap' }, q.detail))),
      { empty: 'Nothing is waiting: every queued run has a worker.' });
  });
}
