// vodlms demo: helpers shared by the course page and the player.
// Plain browser JS, no build step. Everything hangs off window.Vod.
'use strict';

(function () {
  // Demo accounts, as written by `./build.sh run` (sessions) and
  // sql/seed/demo.sql (ids).  Only used to put a name on the user id that
  // nginx reports; nothing here grants anything.
  const DEMO_USERS = {
    '1001': { name: 'alice', label: 'Alice', role: 'enrolled student' },
    '1002': { name: 'bob', label: 'Bob', role: 'not enrolled' },
    '1003': { name: 'carol', label: 'Carol', role: 'instructor' },
  };

  const UPLOADS_KEY = 'vodlms.demo.uploads';

  // --- HTTP -----------------------------------------------------------------

  // fetch() that never throws: network failures come back as status 0, and
  // the JSON body (every vodlms answer, errors included, is JSON) is parsed
  // when there is one.  `credentials: 'include'` so that the session cookie
  // goes along, and so the CloudFront-* Set-Cookie headers of the playback
  // endpoint are stored even if the page is on another origin.
  async function api(method, url, body, headers = {}) {
    const init = { method, credentials: 'include', cache: 'no-store', headers: { ...headers } };
    if (body !== undefined) {
      init.body = typeof body === 'string' ? body : JSON.stringify(body);
      // text/plain keeps this a "simple" request (no CORS preflight); the
      // progress endpoint takes any Content-Type.
      init.headers['Content-Type'] = 'text/plain;charset=UTF-8';
      init.keepalive = true;
    }
    let res;
    try {
      res = await fetch(url, init);
    } catch (err) {
      return { status: 0, ok: false, data: null, error: err, headers: new Headers() };
    }
    let data = null;
    const type = res.headers.get('Content-Type') || '';
    if (type.includes('json')) {
      try { data = await res.json(); } catch (_) { data = null; }
    }
    // Every vodlms denial is JSON with an "error" code.  A 404 or 401 without
    // one came from something else (a static server, a proxy): not an answer
    // about the video.
    const fromVodlms = res.ok || !!(data && typeof data.error === 'string');
    return { status: res.status, ok: res.ok, data, headers: res.headers, fromVodlms };
  }

  const streamUrl = (id) => `/api/videos/${encodeURIComponent(id)}/stream`;
  // the same answer with no cookies: manifestUrl is a signed URL
  // (vodlms_playback url), for media on another site and native HLS
  const streamSignedUrl = (id) => `/api/videos/${encodeURIComponent(id)}/stream-url`;
  const progressUrl = (id) => `/api/videos/${encodeURIComponent(id)}/progress`;
  // a new lecture: the server draws its id; an existing one: its upload
  // is replaced
  const uploadUrl = (id, course) => (id
    ? `/api/videos/${encodeURIComponent(id)}/upload?course=${encodeURIComponent(course)}`
    : `/api/courses/${encodeURIComponent(course)}/videos`);

  // Seconds to wait after a 503, from Retry-After (vodlms always sends one).
  function retryAfter(res, fallback = 3) {
    const n = parseInt(res.headers && res.headers.get('Retry-After'), 10);
    return Number.isFinite(n) && n > 0 ? Math.min(n, 30) : fallback;
  }

  // --- who am I -------------------------------------------------------------

  // The session cookie is HttpOnly, so the page cannot read it.  It asks
  // nginx instead: /api/me goes through the ordinary `location /api/` gate
  // (401 without a session) to the demo app stand-in, which echoes the
  // X-User-Id / X-User-Roles nginx derived from the session.
  async function whoami() {
    const res = await api('GET', '/api/me');
    if (res.status === 200 && res.data && res.data.userId) {
      const demo = DEMO_USERS[res.data.userId] || {};
      const roles = String(res.data.roles || '').split(',').filter(Boolean);
      return {
        state: 'in',
        userId: res.data.userId,
        name: demo.label || `User ${res.data.userId}`,
        roles,
        isInstructor: roles.includes('instructor') || roles.includes('admin'),
      };
    }
    if (res.status === 401 && res.fromVodlms) return { state: 'out' };
    return { state: 'offline', status: res.status };
  }

  // --- the demo login bar ---------------------------------------------------

  // Renders the login bar into `el`.  `onChange(user)` runs after a login or
  // logout (and once at start) so each page can reload what depends on who
  // is watching.
  function loginBar(el, onChange) {
    el.innerHTML = `
      <span class="login-label">Demo login</span>
      <div class="seg" role="group" aria-label="Log in as">
        <button type="button" data-user="alice">alice <small>enrolled student</small></button>
        <button type="button" data-user="bob">bob <small>not enrolled</small></button>
        <button type="button" data-user="carol">carol <small>instructor</small></button>
      </div>
      <button type="button" class="btn-link" data-logout>Log out</button>
      <span class="whoami" aria-live="polite"></span>`;

    const who = el.querySelector('.whoami');
    let current = null;

    function paint(user) {
      current = user;
      el.querySelectorAll('[data-user]').forEach((b) => {
        const on = user.state === 'in' && DEMO_USERS[user.userId] &&
          DEMO_USERS[user.userId].name === b.dataset.user;
        b.classList.toggle('active', !!on);
        b.setAttribute('aria-pressed', on ? 'true' : 'false');
      });
      el.querySelector('[data-logout]').hidden = user.state !== 'in';
      if (user.state === 'in') {
        who.innerHTML = `Signed in as <b>${esc(user.name)}</b>` +
          (user.roles.length ? ` <span class="muted">(${esc(user.roles.join(', '))})</span>` : '');
        who.className = 'whoami';
      } else if (user.state === 'out') {
        who.textContent = 'Not signed in';
        who.className = 'whoami muted';
      } else {
        who.textContent = user.status
          ? `Server not answering (HTTP ${user.status})`
          : 'Server not reachable';
        who.className = 'whoami warn';
      }
    }

    async function refresh() {
      const user = await whoami();
      paint(user);
      onChange(user);
    }

    el.addEventListener('click', async (ev) => {
      const btn = ev.target.closest('button');
      if (!btn) return;
      const name = btn.dataset.user;
      const url = name ? `/demo/login?user=${encodeURIComponent(name)}` : '/demo/logout';
      if (!name && !btn.hasAttribute('data-logout')) return;
      btn.disabled = true;
      const res = await api('POST', url);
      btn.disabled = false;
      if (!res.ok) {
        toast(res.status
          ? `Demo ${name ? 'login' : 'logout'} failed (HTTP ${res.status}). Is this served by ./build.sh run?`
          : 'Cannot reach the server.', 'error');
      }
      refresh();
    });

    refresh();
    return { refresh, get user() { return current; } };
  }

  // --- uploads made from this browser ---------------------------------------

  // There is no "list videos" endpoint, so the course page shows the seeded
  // videos plus the ones uploaded from this browser (remembered here).
  function rememberedUploads() {
    try { return JSON.parse(localStorage.getItem(UPLOADS_KEY)) || []; } catch (_) { return []; }
  }
  function rememberUpload(v) {
    const list = rememberedUploads().filter((x) => x.id !== v.id);
    list.push(v);
    try { localStorage.setItem(UPLOADS_KEY, JSON.stringify(list)); } catch (_) { /* private mode */ }
  }

  async function loadCourse() {
    try {
      const res = await fetch('course.json', { cache: 'no-cache' });
      const c = await res.json();
      const extra = rememberedUploads().filter((u) => u.course === c.course.id &&
        !c.videos.some((v) => v.id === u.id));
      c.videos = c.videos.concat(extra);
      return c;
    } catch (_) {
      return { course: { id: 'course-intro', title: 'Course' }, videos: [] };
    }
  }

  // --- small UI helpers -----------------------------------------------------

  function esc(s) {
    return String(s).replace(/[&<>"']/g, (c) =>
      ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }[c]));
  }

  function fmtTime(sec) {
    if (!Number.isFinite(sec) || sec < 0) return '–:––';
    sec = Math.floor(sec);
    const h = Math.floor(sec / 3600), m = Math.floor((sec % 3600) / 60), s = sec % 60;
    const mm = h ? String(m).padStart(2, '0') : String(m);
    return (h ? `${h}:` : '') + `${mm}:${String(s).padStart(2, '0')}`;
  }

  function toast(text, kind = 'info', ms = 5000) {
    let box = document.querySelector('.toasts');
    if (!box) {
      box = document.createElement('div');
      box.className = 'toasts';
      box.setAttribute('role', 'status');
      document.body.appendChild(box);
    }
    const t = document.createElement('div');
    t.className = `toast ${kind}`;
    t.textContent = text;
    box.appendChild(t);
    setTimeout(() => t.remove(), ms);
  }

  // The playback endpoint's answer for one video, reduced to what a list
  // item needs.  Used by the course page and the player's sidebar.
  async function videoState(id) {
    // "none": a look-up, not a playback; it does not count against the
    // account's concurrent streams (vodlms_streams)
    const res = await api('GET', streamUrl(id), undefined, { 'X-Vodlms-Playback': 'none' });
    const d = res.data || {};
    if (!res.fromVodlms) return { kind: 'offline', status: res.status };
    switch (res.status) {
      case 200: return { kind: 'ready', duration: d.duration, resumeAt: d.resumeAt, title: d.title };
      case 409: return {
        kind: d.status === 'failed' ? 'failed' : (d.status || 'processing'),
        progress: Number(d.progress) || 0,
      };
      case 401: return { kind: 'login' };
      case 403: return { kind: 'locked' };
      case 404: return { kind: 'missing' };
      case 503: return { kind: 'unavailable' };
      default: return { kind: 'offline', status: res.status };
    }
  }

  function statusPill(st) {
    const pct = Math.round(st.progress || 0);
    switch (st.kind) {
      case 'ready': return `<span class="pill ok">Ready${st.duration ? ' · ' + fmtTime(st.duration) : ''}</span>`;
      case 'processing': return `<span class="pill busy">Processing ${pct}%</span>`;
      case 'queued': return '<span class="pill busy">Queued</span>';
      case 'failed': return '<span class="pill bad">Transcode failed</span>';
      case 'login': return '<span class="pill muted">Log in to watch</span>';
      case 'locked': return '<span class="pill muted">Not enrolled</span>';
      case 'missing': return '<span class="pill muted">Not found</span>';
      case 'unavailable': return '<span class="pill warn">Busy, retrying</span>';
      case 'loading': return '<span class="pill muted">Checking…</span>';
      default: return '<span class="pill muted">Unavailable</span>';
    }
  }

  window.Vod = {
    api, streamUrl, streamSignedUrl, progressUrl, uploadUrl, retryAfter,
    whoami, loginBar, loadCourse, rememberUpload,
    esc, fmtTime, toast, videoState, statusPill,
  };
})();
