// One run: its console live (resumable), artifacts, test results, rundef
// and how to recreate it locally.
import { api, follow, download } from './api.js';
import { h, link, path, status, table, ago, duration, bytes, every, toast, copyField, fill, FINISHED } from './dom.js';
import { session, showError } from './session.js';
import { ConsoleView } from './console.js';

export function runPage(main, project, number, name, line) {
  const base = `/projects/${encodeURIComponent(project)}/builds/${number}/runs/${encodeURIComponent(name)}`;
  const title = h('h1', {}, name);
  const meta = h('div', { class: 'meta' });
  const actions = h('div', { class: 'actions' });
  const errors = h('div');
  const extras = h('div');
  const view = new ConsoleView({ lineHref: (n) => `${path('p', project, number, name)}/L${n}` });
  const live = h('span', { class: 'live', 'aria-live': 'polite' }, 'connecting…');
  const count = h('span', { class: 'muted' });
  const firstError = h('button', { type: 'button', disabled: true, onclick: () => { location.hash = `${path('p', project, number, name)}/L${view.firstError}`; view.show(view.firstError); } }, 'First error');
  const toEnd = h('button', { type: 'button', onclick: () => view.toEnd() }, 'Jump to end');
  const raw = h('button', { type: 'button', onclick: () => download(`${base}/console`, `${project}-${number}-${name}.log`).catch((e) => toast(e.message, 'error')) }, 'Raw');
  view.onChange = () => {
    count.textContent = `${view.lines.toLocaleString()} lines`;
    firstError.disabled = !view.firstError;
  };
  main.append(
    h('div', { class: 'crumbs' }, link('#/', 'Projects'), ' / ', link(path('p', project), project), ' / ',
      link(path('p', project, number), `#${number}`)),
    h('div', { class: 'head' }, h('div', {}, title, meta), actions),
    errors,
    h('section', { 'aria-label': 'Console' },
      h('div', { class: 'console-bar' }, live, count, firstError, toEnd, raw), view.el),
    extras);
  if (line) view.show(Number(line));

  let run = null;
  const stream = follow(`${base}/console?follow=1`, {
    lastId: 0,
    onEvent: (type, data) => {
      if (type === 'console') view.append(data.text);
      else if (type === 'end') { view.end(); refresh.now(); }
    },
    onState: (state, err) => {
      live.textContent = { live: '● live', reconnecting: 'reconnecting…', ended: 'ended', error: `console unavailable: ${err?.message}` }[state] || state;
      live.dataset.state = state;
      if (state === 'error') showError(errors, err);
    },
  });

  let shown = '';
  const refresh = every(3000, async () => {
    if (run && FINISHED.has(run.status) && shown) return;
    try { run = await api(base); } catch (e) { return showError(errors, e); }
    fill(errors);
    fill(title, name, ' ', status(run.status));
    fill(meta, 
      h('span', {}, 'worker ', h('b', {}, run.worker || '—')),
      h('span', {}, 'attempt ', h('b', {}, run.attempt)),
      FINISHED.has(run.status) ? h('span', {}, 'exit code ', h('b', { class: 'mono' }, run.exit_code)) : null,
      h('span', {}, 'queued ', ago(run.queued_ms)),
      run.started_ms ? h('span', {}, 'took ', h('b', {}, duration(run.started_ms, run.finished_ms))) : null,
      h('span', {}, 'host tag ', h('span', { class: 'tag' }, run.host_tag)),
      run.message ? h('span', {}, run.message) : null);
    fill(actions, ...(!FINISHED.has(run.status) && session.can('trigger', project) ? [h('button', {
      type: 'button', class: 'danger',
      onclick: async (e) => {
        e.currentTarget.disabled = true;
        try { await api(`${base}/cancel`, { method: 'POST' }); toast('Cancel requested'); } catch (err) { toast(err.message, 'error'); }
      },
    }, 'Cancel run')] : []));
    const key = JSON.stringify([run.status, run.artifacts, run.tests]);
    if (key !== shown) {
      shown = key;
      fill(extras, ...details(base, project, number, name, run));
    }
  });

  return {
    stop() { stream.close(); refresh.stop(); },
    update(_p, _n, _r, l) { if (l) view.show(Number(l)); },
  };
}

function details(base, project, number, name, run) {
  const out = [];
  const tests = [...(run.tests || [])].sort((a, b) => (a.status === 'PASSED') - (b.status === 'PASSED'));
  if (tests.length) {
    const failed = tests.filter((t) => t.status !== 'PASSED' && t.status !== 'SKIPPED').length;
    out.push(h('h2', {}, `Tests (${tests.length}${failed ? `, ${failed} failed` : ''})`),
      table(['Suite', 'Test', 'Status', 'Time', 'Message'], tests.map((t) => h('tr', {},
        h('td', {}, t.suite), h('td', { class: 'wrap' }, t.name), h('td', {}, status(t.status)),
        h('td', {}, `${t.duration_ms} ms`), h('td', { class: 'wrap mono' }, t.message || '')))));
  }
  const artifacts = run.artifacts || [];
  out.push(h('h2', {}, `Artifacts (${artifacts.length})`),
    table(['Path', 'Size', ''], artifacts.map((a) => h('tr', {},
      h('td', { class: 'mono wrap' }, a.path),
      h('td', {}, bytes(a.size)),
      h('td', {}, a.expired ? h('span', { class: 'muted' }, 'expired') : h('button', {
        type: 'button',
        onclick: () => download(`${base}/artifacts/${a.path.split('/').map(encodeURIComponent).join('/')}`,
          a.path.split('/').pop()).catch((e) => toast(e.message, 'error')),
      }, 'Download')))), { empty: 'This run stored no artifacts.' }));
  const url = `${location.origin}/v1${base}/rundef`;
  out.push(h('details', { class: 'panel box' }, h('summary', {}, 'Recreate locally'),
    h('div', { class: 'pad' },
      h('p', { class: 'muted' }, 'Runs this run on your machine, in the same sandbox a worker uses (secrets are not included):'),
      copyField(`curl -fsS -H "Authorization: Bearer $TOKEN" -o rundef.json ${url} && kiln simulate rundef.json -w /tmp/${name}`, 'Recreate command'))));
  out.push(h('details', { class: 'panel box' }, h('summary', {}, 'Run definition'),
    h('pre', { class: 'block' }, JSON.stringify(run.rundef, null, 2))));
  return out;
}
