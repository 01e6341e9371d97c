// Who is signed in, as the server says (GET /v1/whoami), and what they may do.
import { api, token, ApiError } from './api.js';
import { banner, fill } from './dom.js';

const RANK = { read: 1, trigger: 2, admin: 3 };

export const session = {
  who: null,  // {anonymous, scope, project, …} once known
  async load() {
    try {
      this.who = await api('/whoami');
    } catch (e) {
      this.who = null;
      if (!(e instanceof ApiError) || e.status !== 401) throw e;
    }
    return this.who;
  },
  // True when the token's scope reaches `scope` (for project-limited
  // tokens, only on that project).
  can(scope, project) {
    const w = this.who;
    if (!w || w.anonymous) return false;
    if (w.project && project !== undefined && w.project !== project) return false;
    if (w.project && project === undefined && scope !== 'read') return false;
    return (RANK[w.scope] || 0) >= RANK[scope];
  },
  signOut() { token.clear(); this.who = null; },
};

// A page that finds it needs a token sends the reader here, and back after.
export function needSignIn() {
  if (location.hash !== '#/signin') sessionStorage.setItem('kiln.after-signin', location.hash || '#/');
  location.hash = '#/signin';
}

// Shows a failed request in `box` (a 401 goes to sign-in instead).
export function showError(box, e) {
  if (e instanceof ApiError && e.status === 401) return needSignIn();
  fill(box, banner(e.message || String(e)));
}
