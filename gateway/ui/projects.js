// The projects list and one project: its builds and the trigger form.
import { api, idempotencyKey } from './api.js';
import { h, link, path, status, table, ago, duration, every, copyField, toast, fill } from './dom.js';
import { session, showError } from './session.js';
import { listPage } from './list_page.js';

export function projectsPage(main) {
  return listPage(main, 'Projects', 5000, async () => table(['Project', 'Last build', 'Status', 'When', 'Duration', ''],
    (await api('/projects')).map((p) => projectRow(p)),
    { empty: 'No projects yet. PUT a definition to /v1/projects/NAME to add one (docs/api.md).' }));
}

// Projects whose badge Markdown is shown: the list is redrawn every few
// seconds, and an open field must stay open.
const openBadges = new Set();

function projectRow(p) {
  const badge = `${location.origin}/v1/projects/${encodeURIComponent(p.name)}/badge.svg`;
  const cell = h('td', { class: 'hide-narrow' });
  const field = () => copyField(`![build](${badge})`, `Badge Markdown for ${p.name}`);
  const show = h('button', {
    type: 'button', 'aria-expanded': String(openBadges.has(p.name)),
    onclick: () => {
      const open = !openBadges.has(p.name);
      if (open) openBadges.add(p.name); else openBadges.delete(p.name);
      show.setAttribute('aria-expanded', String(open));
      cell.querySelector('.copy')?.remove();
      if (open) cell.append(field());
    },
  }, 'Badge');
  cell.append(show);
  if (openBadges.has(p.name)) cell.append(field());
  const last = p.last_build;
  return h('tr', { 'data-project': p.name },
    h('td', {}, link(path('p', p.name), h('b', {}, p.name)),
      p.description ? h('div', { class: 'muted' }, p.description) : null),
    h('td', {}, last ? link(path('p', p.name, last), `#${last}`) : h('span', { class: 'muted' }, 'none')),
    h('td', {}, p.last_build_status ? status(p.last_build_status) : ''),
    h('td', {}, ago(p.last_build_created_ms)),
    h('td', {}, last ? duration(p.last_build_created_ms, p.last_build_completed_ms) : ''),
    cell);
}

export function projectPage(main, name) {
  const errors = h('div');
  const form = h('div');
  const builds = h('div', {}, h('p', { class: 'muted' }, 'Loading…'));
  const more = h('div', { class: 'actions' });
  const desc = h('div', { class: 'meta' });
  main.append(
    h('div', { class: 'crumbs' }, link('#/', 'Projects')),
    h('div', { class: 'head' }, h('div', {}, h('h1', {}, name), desc)),
    errors, form, h('h2', {}, 'Builds'), builds, more);

  let older = [];  // pages loaded with "older builds"
  api(`/projects/${encodeURIComponent(name)}`).then((p) => {
    fill(desc, 
      p.description ? h('span', {}, p.description) : null,
      h('span', {}, 'definition v', h('b', {}, p.definition_version)),
      p.synchronous_builds ? h('span', {}, 'synchronous builds') : null);
    if (session.can('trigger', name) && p.triggers.length) form.append(triggerForm(name, p.triggers));
  }).catch((e) => showError(errors, e));

  const poll = every(3000, async () => {
    try {
      const list = await api(`/projects/${encodeURIComponent(name)}/builds?limit=25`);
      const all = list.concat(older.filter((b) => !list.some((x) => x.build === b.build)));
      fill(builds, buildTable(name, all));
      const lowest = all.length ? all[all.length - 1].build : 0;
      fill(more, lowest > 1 && all.length >= 25 ? h('button', {
        type: 'button',
        onclick: async () => {
          older = older.concat(await api(`/projects/${encodeURIComponent(name)}/builds?limit=25&before=${lowest}`));
          poll.now();
        },
      }, 'Older builds') : '');
      fill(errors);
    } catch (e) { showError(errors, e); }
  });
  return { stop: () => poll.stop() };
}

function buildTable(project, list) {
  return table(['Build', 'Status', 'Trigger', h('th', { class: 'hide-narrow' }, 'Reason'), h('th', { class: 'hide-narrow' }, 'Ref / sha'), 'Started', 'Duration'],
    list.map((b) => h('tr', { 'data-build': b.build },
      h('td', {}, link(path('p', project, b.build), h('b', {}, `#${b.build}`))),
      h('td', {}, status(b.status)),
      h('td', {}, b.trigger),
      h('td', { class: 'wrap hide-narrow' }, b.reason || (b.rerun_of ? `rerun of #${b.rerun_of}` : '')),
      h('td', { class: 'mono hide-narrow' }, [b.ref, b.sha ? b.sha.slice(0, 10) : ''].filter(Boolean).join(' @ ')),
      h('td', {}, ago(b.created_ms)),
      h('td', {}, duration(b.created_ms, b.completed_ms)))),
    { empty: 'No builds yet.' });
}

// The trigger's params as fields (their defaults filled in), then ref, sha and reason.
function triggerForm(project, triggers) {
  const manual = triggers.filter((t) => !['cron', 'git_poller'].includes(t.type));
  const list = manual.length ? manual : triggers;
  const select = h('select', { name: 'trigger' }, list.map((t) => h('option', { value: t.name }, `${t.name} (${t.type})`)));
  const params = h('div', { class: 'grid-params' });
  const out = h('div', { 'aria-live': 'polite' });
  const fields = () => {
    const t = list.find((x) => x.name === select.value);
    fill(params, ...Object.entries(t?.params || {}).map(([k, v]) =>
      h('label', {}, k, h('input', { name: `param:${k}`, value: v }))));
  };
  select.addEventListener('change', fields);
  fields();
  const ref = h('input', { name: 'ref', placeholder: 'refs/heads/main' });
  const sha = h('input', { name: 'sha', placeholder: 'commit' });
  const reason = h('input', { name: 'reason', placeholder: 'why' });
  const form = h('form', {
    class: 'grid', 'aria-label': 'Trigger a build',
    onsubmit: async (e) => {
      e.preventDefault();
      const body = { trigger: select.value, params: {}, reason: reason.value || 'from the web UI' };
      for (const input of params.querySelectorAll('input')) body.params[input.name.slice(6)] = input.value;
      if (ref.value) body.ref = ref.value;
      if (sha.value) body.sha = sha.value;
      const button = form.querySelector('button');
      button.disabled = true;
      try {
        const r = await api(`/projects/${encodeURIComponent(project)}/builds`, {
          method: 'POST', body, headers: { 'Idempotency-Key': idempotencyKey() },
        });
        toast(`Build #${r.build} started`);
        location.hash = path('p', project, r.build);
      } catch (err) {
        showError(out, err);
        button.disabled = false;
      }
    },
  },
  h('label', {}, 'Trigger', select), params,
  h('label', {}, 'Ref', ref), h('label', {}, 'Sha', sha), h('label', {}, 'Reason', reason),
  h('div', { class: 'actions' }, h('button', { class: 'primary', type: 'submit' }, 'Trigger build')));
  return h('details', { class: 'panel box', open: true },
    h('summary', {}, 'Trigger a build'), h('div', { class: 'pad' }, form, out));
}
