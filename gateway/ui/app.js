// The router: an address after '#' names a page; each page builds itself
// into <main> and returns what to stop when the reader leaves it.
import { token, ApiError } from './api.js';
import { h, banner, fill } from './dom.js';
import { session, needSignIn } from './session.js';
import { projectsPage, projectPage } from './projects.js';
import { buildPage } from './build.js';
import { runPage } from './run.js';
import { workersPage, queuePage } from './fleet.js';
import { eventsPage } from './events.js';

const routes = [
  [/^\/$/, 'projects', projectsPage],
  [/^\/p\/([^/]+)$/, 'projects', projectPage],
  [/^\/p\/([^/]+)\/(\d+)$/, 'projects', buildPage],
  [/^\/p\/([^/]+)\/(\d+)\/([^/]+)(?:\/L(\d+))?$/, 'projects', runPage],
  [/^\/workers$/, 'workers', workersPage],
  [/^\/queue$/, 'queue', queuePage],
  [/^\/events$/, 'events', eventsPage],
  [/^\/signin$/, '', signinPage],
];

let current = null;
let currentKey = '';
const view = document.getElementById('view');

function route() {
  const path = location.hash.replace(/^#/, '') || '/';
  for (const [re, nav, page] of routes) {
    const m = path.match(re);
    if (!m) continue;
    const args = m.slice(1).map((x) => (x === undefined ? undefined : decodeURIComponent(x)));
    // A run page asked for another line stays where it is and scrolls.
    const key = `${page.name}:${args.slice(0, 3).join('/')}`;
    if (current && key === currentKey && current.update) return current.update(...args);
    current?.stop?.();
    currentKey = key;
    for (const a of document.querySelectorAll('[data-nav]')) {
      if (a.dataset.nav === nav) a.setAttribute('aria-current', 'page');
      else a.removeAttribute('aria-current');
    }
    fill(view);
    current = page(view, ...args) || null;
    document.title = `${view.querySelector('h1')?.textContent || 'kiln'} · kiln`;
    return;
  }
  current?.stop?.();
  current = null;
  currentKey = '';
  fill(view, banner(`No page at ${path}.`), h('p', {}, h('a', { href: '#/' }, 'Back to projects')));
}

function renderWho() {
  const box = document.getElementById('who');
  const w = session.who;
  if (w && !w.anonymous) {
    fill(box, 
      h('span', { 'data-who': w.scope }, `${w.scope}${w.project ? ` · ${w.project}` : ''} token`),
      h('button', { type: 'button', onclick: () => { session.signOut(); renderWho(); location.hash = '#/signin'; } }, 'Sign out'));
  } else {
    fill(box, w ? h('span', {}, 'public read') : '', h('a', { href: '#/signin' }, 'Sign in'));
  }
}

function signinPage(main) {
  const input = h('input', { type: 'password', name: 'token', autocomplete: 'off', required: true,
    placeholder: 'kt.… or the admin token', 'aria-describedby': 'token-help' });
  const out = h('div', { 'aria-live': 'polite' });
  const form = h('form', {
    onsubmit: async (e) => {
      e.preventDefault();
      token.set(input.value);
      try {
        const who = await session.load();
        if (!who || who.anonymous) throw new ApiError(401, 'unauthorized', 'the server does not know this token');
        renderWho();
        location.hash = sessionStorage.getItem('kiln.after-signin') || '#/';
      } catch (err) {
        token.clear();
        fill(out, banner(`Sign-in failed: ${err.message}`));
      }
    },
  },
  h('label', {}, 'API token', input),
  h('p', { id: 'token-help', class: 'muted' },
    'Paste a token from ', h('code', {}, 'kiln token create'), ' (or the admin token in ',
    h('code', {}, '<data>/admin.token'), '). It is kept in this tab only and sent to this server only.'),
  h('div', { class: 'actions' }, h('button', { class: 'primary', type: 'submit' }, 'Sign in')),
  out);
  main.append(h('section', { class: 'signin panel pad' }, h('h1', {}, 'Sign in to kiln'), form));
  input.focus();
}

async function start() {
  try {
    await session.load();
  } catch (e) {
    fill(view, banner(`The server cannot be reached: ${e.message}`));
  }
  renderWho();
  if (!session.who && location.hash !== '#/signin') return needSignIn();
  route();
}

window.addEventListener('hashchange', route);
start();
