// One build: its runs grouped by trigger, a chained run under the run that
// chained it; cancel, rerun and rerun-failed.
import { api, idempotencyKey } from './api.js';
import { h, link, path, status, table, ago, duration, every, toast, fill, FINISHED } from './dom.js';
import { session, showError } from './session.js';

export function buildPage(main, project, number) {
  const base = `/projects/${encodeURIComponent(project)}/builds/${number}`;
  const title = h('h1', {}, `${project} #${number}`);
  const meta = h('div', { class: 'meta' });
  const actions = h('div', { class: 'actions' });
  const errors = h('div');
  const runs = h('div', {}, h('p', { class: 'muted' }, 'Loading…'));
  main.append(
    h('div', { class: 'crumbs' }, link('#/', 'Projects'), ' / ', link(path('p', project), project)),
    h('div', { class: 'head' }, h('div', {}, title, meta), actions),
    errors, h('h2', {}, 'Runs'), runs);

  let shown = '';
  const poll = every(2000, async () => {
    let b;
    try { b = await api(base); } catch (e) { return showError(errors, e); }
    fill(errors);
    const key = JSON.stringify(b);
    if (key === shown && FINISHED.has(b.status)) return;
    shown = key;
    fill(title, `${project} #${number}`, ' ', status(b.status));
    fill(meta, 
      h('span', {}, 'trigger ', h('b', {}, b.trigger)),
      b.reason ? h('span', {}, 'reason ', h('b', {}, b.reason)) : null,
      b.rerun_of ? h('span', {}, 'rerun of ', link(path('p', project, b.rerun_of), `#${b.rerun_of}`)) : null,
      b.ref || b.sha ? h('span', { class: 'mono' }, [b.ref, b.sha && b.sha.slice(0, 12)].filter(Boolean).join(' @ ')) : null,
      h('span', {}, 'started ', ago(b.created_ms)),
      h('span', {}, 'took ', h('b', {}, duration(b.created_ms, b.completed_ms))),
      ...Object.entries(b.params || {}).map(([k, v]) => h('span', { class: 'mono' }, `${k}=${v}`)),
      b.pinned ? h('span', {}, 'pinned', b.promoted_as ? ` as ${b.promoted_as}` : '') : null);
    fill(actions, ...buildActions(project, number, b));
    fill(runs, runTable(project, number, b));
  });
  return { stop: () => poll.stop() };
}

function buildActions(project, number, b) {
  if (!session.can('trigger', project)) return [];
  const base = `/projects/${encodeURIComponent(project)}/builds/${number}`;
  const act = (label, cls, fn) => h('button', {
    type: 'button', class: cls,
    onclick: async (e) => {
      e.currentTarget.disabled = true;
      try { await fn(); } catch (err) { toast(err.message, 'error'); e.target.disabled = false; }
    },
  }, label);
  const rerun = (failed) => async () => {
    const r = await api(`${base}/rerun${failed ? '?failed=1' : ''}`, {
      method: 'POST', headers: { 'Idempotency-Key': idempotencyKey() },
    });
    toast(`Build #${r.build} started`);
    location.hash = path('p', project, r.build);
  };
  const out = [];
  if (!FINISHED.has(b.status) && !b.cancelled)
    out.push(act('Cancel build', 'danger', async () => {
      await api(`${base}/cancel`, { method: 'POST' });
      toast('Cancel requested');
    }));
  if (FINISHED.has(b.status)) {
    out.push(act('Rerun', '', rerun(false)));
    if (b.runs.some((r) => r.status !== 'PASSED' && r.status !== 'SKIPPED'))
      out.push(act('Rerun failed', 'primary', rerun(true)));
  }
  return out;
}

function runRow(project, number, r, depth) {
  const row = h('tr', { class: depth ? 'child' : '', 'data-run': r.name },
    h('td', {}, link(path('p', project, number, r.name), h('b', {}, r.name))),
    h('td', {}, status(r.status), r.cancel_requested && !FINISHED.has(r.status) ? h('span', { class: 'muted' }, ' cancelling') : null),
    h('td', {}, r.worker || h('span', { class: 'muted' }, '—')),
    h('td', { class: 'hide-narrow' }, h('span', { class: 'tag' }, r.host_tag)),
    h('td', {}, r.started_ms ? duration(r.started_ms, r.finished_ms) : h('span', { class: 'muted' }, `queued ${duration(r.queued_ms, r.finished_ms || Date.now())}`)),
    h('td', {}, r.attempt > 1 ? h('b', {}, r.attempt) : r.attempt));
  if (depth > 1) row.firstChild.style.paddingLeft = `${1 + depth}rem`;
  return row;
}

function runTable(project, number, b) {
  const children = new Map();
  for (const r of b.runs) {
    if (!r.parent_run) continue;
    if (!children.has(r.parent_run)) children.set(r.parent_run, []);
    children.get(r.parent_run).push(r);
  }
  const rows = [];
  const add = (r, depth) => {
    rows.push(runRow(project, number, r, depth));
    for (const c of children.get(r.name) || []) add(c, depth + 1);
  };
  const known = new Set(b.runs.map((r) => r.name));
  const groups = new Map();
  for (const r of b.runs) {
    if (r.parent_run && known.has(r.parent_run)) continue;  // shown under its parent
    const g = r.trigger || b.trigger;
    if (!groups.has(g)) groups.set(g, []);
    groups.get(g).push(r);
  }
  for (const [trigger, list] of groups) {
    rows.push(h('tr', { class: 'group' }, h('td', { colspan: 6 },
      trigger === b.trigger ? `trigger ${trigger}` : `chained trigger ${trigger}`)));
    for (const r of list) add(r, 0);
  }
  return table(['Run', 'Status', 'Worker', h('th', { class: 'hide-narrow' }, 'Host tag'), 'Duration', 'Attempt'], rows,
    { empty: 'This build has no runs.' });
}
