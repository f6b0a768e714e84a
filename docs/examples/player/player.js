// vodlms demo: the player page.
//
//   GET  /api/videos/{id}/stream    -> 200 {videoId,title,duration,status,manifestUrl,expiresAt,resumeAt[,watermark]}
//                                      + CloudFront-* cookies scoped to the video's HLS tree
//                                      401 / 403 / 404 / 409 {status,progress} / 503 (Retry-After)
//   GET  manifestUrl and segments   -> the edge (CloudFront or nginx's vodlms_edge) checks the cookies
//   GET  /api/videos/{id}/stream-url -> the same JSON, no cookies: manifestUrl is a signed URL and
//                                      every playlist under it comes back with signed URIs
//                                      (vodlms_playback url + vodlms_hls_sign at the edge)
//   POST /api/videos/{id}/progress  <- {videoId,currentTime,duration,event: tick|pause|ended,playbackId}
//   GET  thumbs/storyboard.vtt, poster.jpg, audio/index.m3u8 beside manifestUrl (issue #23)
//
// Captions, previews, audio only (issue #23; README.md in this folder):
// the CC menu lists the master's subtitle tracks (EXT-X-MEDIA
// TYPE=SUBTITLES, through hls.js) and Off, the DEFAULT=YES one on at
// first, the viewer's choice kept for the next video; the timeline under
// the video (timeline.js) shows the storyboard's tiles; "Audio only" plays
// the master's audio-only variant, which hls.js leaves out of its levels,
// as a source of its own, from where the video was, the poster shown.
//
// Concurrent streams (vodlms_streams): the playback answer carries a
// playbackId, which this tab keeps (sessionStorage) and sends with every
// beacon and, as X-Vodlms-Playback, with every later playback request
// (renewals, the next video), and to every AES-128 key request of hls.js
// (URIs under /vodlms/keys/ only: a header on a CloudFront playlist or
// segment would cost a CORS preflight each).  409 too_many_streams: the
// account plays on as many devices as it may; 409 stream_displaced: another
// device took this one's place.  Either, from a beacon, a renewal or a key,
// stops playback here with a message.
//
// Which of the two: <video data-playback="auto|cookies|url">, or ?playback=
// in the page's URL.  "auto" (the default) uses cookies where they work,
// and the signed URL where they cannot: the manifest on another site (its
// cookies are third-party ones, which browsers block more and more), or
// HLS played natively by the browser (Safari, iOS), which sends no cookies
// to another site.
'use strict';

(function () {
  const { api, streamUrl, streamSignedUrl, progressUrl, esc, fmtTime, toast } = Vod;
  const $ = (sel) => document.querySelector(sel);

  const TICK_MS = 15000;        // progress beacon while playing
  const BEACON_GAP_MS = 1000;   // "seeked" then "playing" are one moment: one beacon
  const FIRST_STEP_MS = 5000;   // a second beacon this soon after a run's first
  const REFRESH_BEFORE_S = 60;  // re-sign this long before the cookies expire
  const PROCESSING_RETRY_MS = 5000;
  const MAX_503_RETRIES = 5;

  const video = $('#video');
  const videoId = new URLSearchParams(location.search).get('v') || 'intro-ready';
  const MODES = ['auto', 'cookies', 'url'];
  const asked = new URLSearchParams(location.search).get('playback') || video.dataset.playback || 'auto';
  const MODE = MODES.includes(asked) ? asked : 'auto';

  let course = null;
  let user = null;
  let info = null;            // the last 200 answer of the playback endpoint
  let hls = null;
  let clockSkewMs = 0;        // server clock minus ours, from the Date header
  let refreshTimer = 0;       // cookie refresh before expiresAt
  let retryTimer = 0;         // 409 / 503 auto-retry
  let tickTimer = 0;          // progress beacons while playing
  let firstStepTimer = 0;     // the one beacon FIRST_STEP_MS after a start or seek
  let lastBeaconAt = 0;       // Date.now() of the latest beacon sent
  let retries503 = 0;
  let edgeRetried = false;    // one cookie re-fetch per edge failure, then a message
  let mediaRecovered = false;
  let mode = null;            // 'cookies' or 'url', decided by the first 200
  let renewing = false;       // a signed URL is being fetched after a refusal
  let streamsStop = false;    // vodlms_streams stopped playback: nothing resumes it
  let master = null;          // what the master offers beside its levels (readMaster)
  let audioOnly = false;      // the viewer chose "Audio only"
  let switching = null;       // {at, timer}: the source changes, no beacons until it plays there
  let sourceBlob = '';        // the object URL of the audio-only master (audioSource)

  // --- this tab's playback (vodlms_streams) --------------------------------

  const PLAYBACK_KEY = 'vodlms.playback';
  // the playbackId this tab holds for the signed-in user, or null
  function heldPlayback() {
    try {
      const p = JSON.parse(sessionStorage.getItem(PLAYBACK_KEY));
      return p && user && p.user === user.userId ? p.id : null;
    } catch (_) { return null; }
  }
  function holdPlayback(id) {
    try {
      if (id && user) sessionStorage.setItem(PLAYBACK_KEY, JSON.stringify({ user: user.userId, id }));
      else sessionStorage.removeItem(PLAYBACK_KEY);
    } catch (_) { /* storage off: every load is a new playback */ }
  }
  const playbackHeader = () => { const id = heldPlayback(); return id ? { 'X-Vodlms-Playback': id } : {}; };

  // the key URIs of encrypted HLS (vodlms_hls_key): /vodlms/keys/<video>/<version>/<index>.key,
  // on this origin or, absolute, on the LMS's own host
  const KEY_PATH = /^\/vodlms\/keys\/[^/]+\/[^/]+\/[0-9]+\.key$/;
  function isKeyUrl(url) {
    try { return KEY_PATH.test(new URL(url, location.href).pathname); } catch (_) { return false; }
  }

  // the JSON refusal of a key request hls.js made (its XHR, arraybuffer)
  function keyRefusal(xhr) {
    try { return JSON.parse(new TextDecoder().decode(xhr.response)) || {}; } catch (_) { return {}; }
  }

  // --- messages -------------------------------------------------------------

  // inline SVG (emoji fonts are not everywhere)
  const svg = (body) => `<svg viewBox="0 0 24 24" width="40" height="40" fill="none" stroke="currentColor"
    stroke-width="1.8" stroke-linecap="round" stroke-linejoin="round">${body}</svg>`;
  const ICONS = {
    lock: svg('<rect x="4.5" y="10.5" width="15" height="10" rx="2"/><path d="M8 10.5V7.5a4 4 0 0 1 8 0v3"/>'),
    clock: svg('<circle cx="12" cy="12" r="8.5"/><path d="M12 7.5V12l3 2"/>'),
    warn: svg('<path d="M12 3.5 21.5 20h-19z"/><path d="M12 10v4.5M12 17.5v.01"/>'),
    error: svg('<circle cx="12" cy="12" r="8.5"/><path d="M9 9l6 6M15 9l-6 6"/>'),
    load: '',
  };

  // A message over the video area.  `actions` are [label, handler, primary?].
  function overlay({ icon = 'warn', title, text = '', progress = null, actions = [] }) {
    const box = $('#overlay');
    box.hidden = false;
    box.classList.toggle('loading', icon === 'load');
    $('#ov-icon').innerHTML = ICONS[icon] || '';
    $('#ov-title').textContent = title;
    $('#ov-text').innerHTML = text;
    const bar = $('#ov-bar');
    bar.hidden = progress === null;
    if (progress !== null) bar.firstElementChild.style.width = `${Math.max(2, progress)}%`;
    const act = $('#ov-actions');
    act.innerHTML = '';
    for (const [label, fn, primary] of actions) {
      const el = typeof fn === 'string' ? document.createElement('a') : document.createElement('button');
      el.textContent = label;
      el.className = primary ? 'btn-primary' : 'btn-ghost light';
      if (typeof fn === 'string') el.href = fn; else { el.type = 'button'; el.onclick = fn; }
      act.appendChild(el);
    }
  }
  const hideOverlay = () => { $('#overlay').hidden = true; };

  // A message under the video that does not stop playback.
  function notice(html, kind = 'info', actions = []) {
    const n = $('#notice');
    if (!html) { n.hidden = true; return; }
    n.hidden = false;
    n.className = `notice ${kind}`;
    n.innerHTML = `<span>${html}</span>`;
    for (const [label, fn] of actions) {
      const b = document.createElement('button');
      b.type = 'button';
      b.className = 'btn-link';
      b.textContent = label;
      b.onclick = fn;
      n.appendChild(b);
    }
  }
  const statusLine = (t) => { $('#status-line').textContent = t; };

  const loginAs = (name) => () => {
    const b = document.querySelector(`#loginbar [data-user="${name}"]`);
    if (b) b.click();
  };

  // --- the playback endpoint ------------------------------------------------

  function noteClock(res) {
    const d = Date.parse(res.headers.get('Date') || '');
    if (Number.isFinite(d)) clockSkewMs = d - Date.now();
  }
  const serverNow = () => Date.now() + clockSkewMs;

  // hls.js needs Media Source Extensions; without them a browser that says
  // it plays HLS plays it itself (Safari, iOS), and sends no cookies to a
  // media host on another site
  const nativeOnly = () => !(window.Hls && Hls.isSupported())
    && !!video.canPlayType('application/vnd.apple.mpegurl');

  // The registrable domain, without the Public Suffix List: the last two
  // labels, or three under a two-letter country code with a short second
  // level (example.co.uk, example.com.au).  Where it guesses wrong it says
  // "another site", and the signed URL works there too.
  function siteOf(host) {
    const l = host.toLowerCase().replace(/\.$/, '').split('.');
    if (/^[\d.]+$|:/.test(host) || l.length <= 2) return l.join('.');
    const n = l[l.length - 1].length === 2 && l[l.length - 2].length <= 3 ? 3 : 2;
    return l.slice(-n).join('.');
  }
  // Is the manifest on another site than this page?  Another scheme counts
  // (browsers compare sites with their scheme); another port does not.
  function crossSite(url) {
    let u;
    try { u = new URL(url, location.href); } catch (_) { return true; }
    if (u.protocol !== location.protocol) return true;
    const a = u.hostname.toLowerCase(); const b = location.hostname.toLowerCase();
    if (a === b || a.endsWith(`.${b}`) || b.endsWith(`.${a}`)) return false;
    return siteOf(a) !== siteOf(b);
  }

  const endpoint = (m) => (m === 'url' ? streamSignedUrl(videoId) : streamUrl(videoId));

  // Asks for metadata + signed cookies (or a signed URL), and shows what
  // the answer means.
  async function load() {
    clearTimeout(retryTimer);
    streamsStop = false;
    overlay({ icon: 'load', title: 'Loading…' });
    // "auto" asks for cookies first unless the browser plays HLS natively:
    // only the answer says where the manifest is
    const m = mode || (MODE === 'auto' ? (nativeOnly() ? 'url' : 'cookies') : MODE);
    const held = heldPlayback();
    const res = await api('GET', endpoint(m), undefined, playbackHeader());
    const d = res.data || {};
    noteClock(res);
    if (res.status !== 503) retries503 = 0;
    if (res.status === 200 && d.playbackId) holdPlayback(d.playbackId);
    // this tab's playback lapsed and another took its slot: opening the
    // page is pressing play, so it starts anew (which, with over=takeover,
    // takes over the oldest)
    if (res.status === 409 && d.error === 'too_many_streams' && held) {
      holdPlayback(null);
      load();
      return;
    }
    if (res.status === 409 && streamsRefused(d)) return;

    // an answer that is not from vodlms (a static server's 404, a proxy) is
    // reported as such, not as "video not found"
    switch (res.fromVodlms ? res.status : -res.status) {
      case 200:
        if (!mode && MODE === 'auto' && m === 'cookies' && crossSite(d.manifestUrl)) {
          // the cookies would be third-party ones at the manifest's host
          mode = 'url';
          load();
          return;
        }
        mode = m;
        info = d;
        showTitle(d.title);
        if (mode === 'cookies') scheduleRefresh(); else showUrlExpiry();
        hideOverlay();
        startPlayback();
        return;

      case 401:
        overlay({
          icon: 'lock', title: 'Log in to watch',
          text: 'This lecture is for students of the course. Use one of the demo accounts above.',
          actions: [['Log in as alice', loginAs('alice'), true]],
        });
        return;

      case 403:
        overlay({
          icon: 'lock', title: 'You are not enrolled in this course',
          text: `${user && user.name ? esc(user.name) + '’s' : 'Your'} account has no active enrollment in
                 <b>${esc(course ? course.course.title : 'this course')}</b>, so its lectures stay locked.`,
          actions: [['Back to the course', './'], ['Log in as alice', loginAs('alice'), true]],
        });
        return;

      case 404:
        overlay({
          icon: 'warn', title: 'Video not found',
          text: `There is no video <code>${esc(videoId)}</code>.`,
          actions: [['Back to the course', './', true]],
        });
        return;

      case 400:
        overlay({ icon: 'warn', title: 'Not a valid video id', text: `<code>${esc(videoId)}</code>`,
          actions: [['Back to the course', './', true]] });
        return;

      case 409: {
        const pct = Number(d.progress) || 0;
        if (d.status === 'failed') {
          overlay({
            icon: 'error', title: 'This video could not be processed',
            text: 'Transcoding failed. The instructor needs to upload the file again.',
            actions: [['Back to the course', './', true]],
          });
          return;
        }
        overlay({
          icon: 'clock',
          title: d.status === 'queued' ? 'Waiting to be processed' : 'Still processing',
          text: d.status === 'queued'
            ? 'The video is queued for transcoding. Playback starts here by itself once it is ready.'
            : `Transcoding is <b>${pct.toFixed(0)}%</b> done. Playback starts here by itself once it is ready.`,
          progress: pct,
        });
        retryTimer = setTimeout(load, PROCESSING_RETRY_MS);
        return;
      }

      case 503: {
        const wait = Vod.retryAfter(res);
        const auto = ++retries503 <= MAX_503_RETRIES;
        overlay({
          icon: 'warn', title: 'Temporarily unavailable',
          text: auto ? `The video service is busy. Trying again in ${wait} s…`
            : 'The video service is still busy. Please try again in a moment.',
          actions: [['Try again', () => { retries503 = 0; load(); }, true]],
        });
        if (auto) retryTimer = setTimeout(load, wait * 1000);
        return;
      }

      default:
        overlay({
          icon: 'warn',
          title: !res.status ? 'Cannot reach the video service'
            : res.fromVodlms ? 'Something went wrong' : 'The video service is not answering',
          text: (res.status ? `The server answered HTTP ${res.status}. ` : 'Check your connection. ') +
            'If you run the demo, is <code>./build.sh run</code> up, and is this page opened from it?',
          actions: [['Try again', load, true]],
        });
    }
  }

  // 409 from vodlms_streams (true), or another 409 (false: not ours).
  // Playback stops here: no more beacons, no renewals, a message.
  function streamsRefused(d) {
    if (d.error !== 'too_many_streams' && d.error !== 'stream_displaced') return false;
    streamsStop = true;
    clearTimeout(refreshTimer);
    clearTimeout(retryTimer);
    teardownPlayer();
    info = null;
    statusLine('');
    notice('');
    if (d.error === 'stream_displaced') {
      overlay({
        icon: 'warn', title: 'Playback moved to another device',
        text: 'Your account started playing on another device or tab, so playback here has stopped.',
        actions: [['Watch here instead', () => { holdPlayback(null); load(); }, true]],
      });
    } else {
      const n = Number(d.limit) || 0;
      overlay({
        icon: 'warn', title: 'Too many devices are playing',
        text: `Your account is already playing on ${n === 1 ? 'another device' : `${n} devices`}, as many as it may use at once.
               Stop playback there, or wait a minute and try again.`,
        actions: [['Try again', () => load(), true]],
      });
    }
    return true;
  }

  function showTitle(title) {
    const t = title || videoId;
    $('#v-title').textContent = t;
    $('#crumb-video').textContent = t;
    document.title = `${t} · vodlms demo`;
  }

  // --- keeping the signed cookies fresh -------------------------------------

  // The cookies expire at expiresAt; the player keeps fetching segments for
  // as long as someone watches.  Calling the playback endpoint again renews
  // them (the browser replaces the cookies); hls.js is not touched, so
  // playback never stalls.
  function scheduleRefresh() {
    clearTimeout(refreshTimer);
    if (!info || !info.expiresAt) return;
    // REFRESH_BEFORE_S ahead, or half-way when the cookies live less than
    // twice that (short vodlms_cloudfront_ttl): a fixed 60 s lead would
    // re-sign every 5 s with a 1 min TTL
    const left = info.expiresAt * 1000 - serverNow();
    const ms = left - Math.min(REFRESH_BEFORE_S * 1000, left / 2);
    refreshTimer = setTimeout(refreshCookies, Math.max(ms, 5000));
    const at = new Date(Date.now() + Math.max(ms, 5000));
    statusLine(`Access renews automatically at ${at.toLocaleTimeString()}.`);
  }

  // In url mode there is nothing to renew ahead of time: the URL lives for
  // the rest of the video plus vodlms_cloudfront_ttl, and hls.js cannot
  // swap URLs it has loaded.  When the edge refuses one (a long pause, a
  // seek back), restartSigned() fetches a new URL and resumes there.
  function showUrlExpiry() {
    clearTimeout(refreshTimer);
    if (!info || !info.expiresAt) return;
    const at = new Date(info.expiresAt * 1000 - clockSkewMs);
    statusLine(`Playing from a signed link (no cookies), valid until ${at.toLocaleTimeString()}; renewed if it runs out.`);
  }

  // Returns true when fresh cookies (or, in url mode, a fresh signed URL in
  // info.manifestUrl) are in place.
  async function refreshCookies() {
    clearTimeout(refreshTimer);
    const res = await api('GET', endpoint(mode || 'cookies'), undefined, playbackHeader());
    noteClock(res);
    if (res.status === 409 && streamsRefused(res.data || {})) return false;
    if (res.status === 200 && res.data) {
      if (res.data.playbackId) holdPlayback(res.data.playbackId);
      info = Object.assign({}, info, res.data);
      if (mode === 'url') showUrlExpiry(); else scheduleRefresh();
      notice('');
      return true;
    }
    if (res.status === 401) {
      notice('Your session has ended. Log in again to keep watching.', 'warn',
        [['Log in as alice', loginAs('alice')]]);
    } else if (res.status === 403) {
      notice('Your access to this course has ended.', 'warn');
    } else if (mode === 'url') {
      // the caller says what failed; a new URL is asked for at the next refusal
      statusLine(`Could not get a new playback link (HTTP ${res.status || 'offline'}).`);
    } else {
      // 503 or network: try again soon, well before the cookies run out
      const wait = res.status === 503 ? Vod.retryAfter(res) : 10;
      statusLine(`Could not renew access (HTTP ${res.status || 'offline'}); retrying in ${wait} s.`);
      refreshTimer = setTimeout(refreshCookies, wait * 1000);
    }
    return false;
  }

  // Background tabs throttle timers; catch up when the tab comes back.
  document.addEventListener('visibilitychange', () => {
    if (!document.hidden && mode === 'cookies' && info && info.expiresAt * 1000 - serverNow() < (REFRESH_BEFORE_S + 30) * 1000) {
      refreshCookies();
    }
  });

  // --- playback -------------------------------------------------------------

  function resumePoint() {
    const at = Number(info.resumeAt) || 0;
    const dur = Number(info.duration) || Infinity;
    // near the end (or finished): start over instead of resuming on the credits
    return at > 5 && at < dur - 10 ? at : 0;
  }

  // `renewed`: a restart on a new signed URL, where the position is the
  // viewer's own, and the refusal that led here is not forgotten until a
  // segment loads.  `quiet`: a switch of source (audio only and back), no
  // message about resuming.
  function startPlayback(from, renewed = false, quiet = false) {
    const start = from !== undefined ? from : resumePoint();
    teardownPlayer();
    VodWatermark.show(info.watermark);   // the viewer's name over the video, if configured
    if (!renewed) edgeRetried = false;
    mediaRecovered = false;
    // audio only: the version this choice was made for (a new upload
    // published meanwhile plays as video, and says whether it has audio)
    if (audioOnly && !(master && master.audio && master.path === pathOf(info.manifestUrl))) audioOnly = false;
    showAudioOnly();
    VodTimeline.storyboard(sibling('thumbs/storyboard.vtt'), (u) => resign(u),
      mode === 'cookies' ? 'include' : 'omit');

    if (window.Hls && Hls.isSupported()) {
      const config = { startPosition: start > 0 ? start : -1, capLevelToPlayerSize: true };
      // the CloudFront-* cookies must go with every playlist and segment
      // request, also when the edge is on another origin (a CDN host); a
      // signed URL needs none, and the edge may then answer with
      // Access-Control-Allow-Origin: *, which a credentialed request refuses
      //
      // A key request names this tab's playback (vodlms_streams in the key
      // location): a displaced player gets no more keys.  A header needs
      // the request opened first; hls.js then sends it as it is.
      config.xhrSetup = (xhr, url) => {
        const id = isKeyUrl(url) ? heldPlayback() : null;
        if (id) {
          xhr.open('GET', url, true);
          xhr.setRequestHeader('X-Vodlms-Playback', id);
        }
        if (mode === 'cookies') xhr.withCredentials = true;
      };
      hls = new Hls(config);
      const source = audioOnly ? audioSource() : info.manifestUrl;
      // (the audio-only source is not the version's master: nothing to read there)
      hls.on(Hls.Events.MANIFEST_LOADED, (_, data) => { if (!audioOnly) readMaster(data); });
      hls.on(Hls.Events.MANIFEST_PARSED, (_, data) => buildQualityMenu(data.levels));
      hls.on(Hls.Events.SUBTITLE_TRACKS_UPDATED, (_, data) => ccTracks(data.subtitleTracks));
      hls.on(Hls.Events.SUBTITLE_TRACK_SWITCH, paintCc);
      hls.on(Hls.Events.LEVEL_SWITCHED, updateQualityLabel);
      hls.on(Hls.Events.FRAG_LOADED, () => { edgeRetried = false; });
      hls.on(Hls.Events.ERROR, onHlsError);
      hls.loadSource(source);
      hls.attachMedia(video);
    } else if (video.canPlayType('application/vnd.apple.mpegurl')) {
      // Safari / iOS: native HLS sends cookies by itself (same site only:
      // "auto" gives it the signed URL), and picks the quality itself, so
      // the menu only says Auto.
      setQualityNative();
      video.src = info.manifestUrl;
      video.addEventListener('loadedmetadata', () => { if (start > 0) video.currentTime = start; }, { once: true });
      ccNative();
    } else {
      overlay({ icon: 'error', title: 'This browser cannot play HLS video',
        text: 'Try a current version of Firefox, Chrome, Edge or Safari.' });
      return;
    }

    if (renewed || quiet) {
      if (!quiet) notice('');
    } else if (start > 0) {
      notice(`Resuming where you left off, at <b>${fmtTime(start)}</b>.`, 'info',
        [['Start from the beginning', () => { video.currentTime = 0; notice(''); }]]);
    } else {
      notice('');
    }
    $('#v-meta').textContent = info.duration ? `Duration ${fmtTime(info.duration)}` : '';
  }

  function teardownPlayer() {
    stopTicks();
    VodWatermark.hide();
    if (hls) { hls.destroy(); hls = null; }
    video.removeAttribute('src');
    video.load();
    if (sourceBlob) { URL.revokeObjectURL(sourceBlob); sourceBlob = ''; }
    ccClear();
    $('#audio-only').hidden = true;
    const q = $('#quality');
    q.innerHTML = '<option value="-1">Auto</option>';
    q.disabled = true;
  }

  // hls.js reports fatal errors once its own retries are used up.  A fatal
  // network error is most often the edge refusing expired or missing cookies
  // (403): fetch new cookies once and resume loading; if it happens again
  // before any segment loaded, say so.
  //
  // A signed URL cannot be renewed under hls.js: any 403 (hls.js does not
  // retry those, it tries other levels first), and a fatal network error,
  // restart playback on a new URL where the viewer is.
  async function onHlsError(_, data) {
    const code = data.response && data.response.code;
    // a key refused by vodlms_streams: the same message as a beacon's
    if (data.details === Hls.ErrorDetails.KEY_LOAD_ERROR && code === 409
        && streamsRefused(keyRefusal(data.networkDetails))) {
      return;
    }
    if (mode === 'url' && (code === 403 || (data.fatal && data.type === Hls.ErrorTypes.NETWORK_ERROR))) {
      restartSigned(code);
      return;
    }
    if (!data.fatal) return;
    if (data.type === Hls.ErrorTypes.NETWORK_ERROR) {
      if (!edgeRetried) {
        edgeRetried = true;
        statusLine('The video server refused a request; renewing access…');
        if (await refreshCookies() && hls) {
          const manifestFailed = /manifest/i.test(data.details || '');
          if (manifestFailed) hls.loadSource(audioOnly ? audioSource() : info.manifestUrl); else hls.startLoad();
          return;
        }
        if (streamsStop) return;     // its own message is up
      }
      const position = video.currentTime;
      overlay({
        icon: 'error',
        title: code === 403 ? 'The video server refused access' : 'The video could not be loaded',
        text: code === 403
          ? 'Your viewing access could not be renewed. Reload, or log in again.'
          : code ? `The video server answered HTTP ${code}.` : 'The connection to the video server was lost.',
        actions: [['Try again', () => { hideOverlay(); reloadAt(position); }, true]],
      });
      return;
    }
    if (data.type === Hls.ErrorTypes.MEDIA_ERROR && !mediaRecovered) {
      mediaRecovered = true;
      hls.recoverMediaError();
      return;
    }
    overlay({ icon: 'error', title: 'Playback stopped', text: esc(data.details || 'The video could not be decoded.'),
      actions: [['Try again', () => { hideOverlay(); reloadAt(video.currentTime); }, true]] });
  }

  // url mode: a new signed URL, and playback again from where it was.  A
  // new URL refused before any segment loaded is not retried: it says so.
  async function restartSigned(code) {
    if (renewing) return;
    const position = video.currentTime;
    const playing = !video.paused;
    if (edgeRetried) {
      if (hls) hls.stopLoad();
      overlay({
        icon: 'error', title: code === 403 ? 'The video server refused access' : 'The video could not be loaded',
        text: code === 403 ? 'A new playback link was refused too. Reload, or log in again.'
          : code ? `The video server answered HTTP ${code}.` : 'The connection to the video server was lost.',
        actions: [['Try again', () => { hideOverlay(); edgeRetried = false; reloadAt(position); }, true]],
      });
      return;
    }
    edgeRetried = true;
    renewing = true;
    statusLine('The playback link ran out; getting a new one…');
    const fresh = await refreshCookies();
    renewing = false;
    if (streamsStop) return;
    if (!fresh) {
      if (hls) hls.stopLoad();
      overlay({ icon: 'lock', title: 'Your viewing access has ended',
        text: 'A new playback link could not be had. Log in again, or reload.',
        actions: [['Try again', () => { hideOverlay(); edgeRetried = false; reloadAt(position); }, true]] });
      return;
    }
    startPlayback(position, true);     // native: it seeks there at loadedmetadata
    if (playing) video.play().catch(() => {});
  }

  // Native HLS (Safari): errors surface on the <video> element.
  video.addEventListener('error', async () => {
    if (hls || !info || !video.currentSrc) return;
    if (mode === 'url') { restartSigned(); return; }
    const position = video.currentTime;
    if (!edgeRetried) {
      edgeRetried = true;
      if (await refreshCookies()) {
        video.src = info.manifestUrl;
        video.addEventListener('loadedmetadata', () => { video.currentTime = position; }, { once: true });
        return;
      }
      if (streamsStop) return;
    }
    overlay({ icon: 'error', title: 'The video could not be loaded',
      text: 'Your viewing access may have ended. Try again, or log in again.',
      actions: [['Try again', () => { hideOverlay(); reloadAt(position); }, true]] });
  });
  video.addEventListener('playing', () => { if (!hls) edgeRetried = false; });

  async function reloadAt(position) {
    if (await refreshCookies()) startPlayback(position); else if (!streamsStop) load();
  }

  // --- beside the manifest: storyboard, poster, audio only (issue #23) --------

  const pathOf = (url) => { try { return new URL(url, location.href).pathname; } catch (_) { return ''; } };

  // A file of the version beside master.m3u8, with the playback's query
  // (on signed URLs the policy is a wildcard over the video's tree, so the
  // manifest's signature is good for its siblings; with cookies there is
  // no query)
  function sibling(rel) {
    const m = new URL(info.manifestUrl, location.href);
    const u = new URL(rel, m);
    u.search = m.search;
    return u.href;
  }
  // a URL of the version with the current signature (a renewed signed URL
  // makes the old ones useless)
  function resign(url) {
    if (!info) return url;
    const u = new URL(url, location.href);
    u.search = new URL(info.manifestUrl, location.href).search;
    return u.href;
  }

  // A URL of the version: on the manifest's origin, under its directory
  // (where the helper writes everything).  Only those get the playback's
  // signature (resign): a master naming a playlist elsewhere (another
  // host, another video) must not carry it there.
  function inVersion(url) {
    try {
      const m = new URL(info.manifestUrl, location.href);
      const u = new URL(url, m);
      return u.origin === m.origin && u.pathname.startsWith(m.pathname.slice(0, m.pathname.lastIndexOf('/') + 1));
    } catch (_) { return false; }
  }

  // What the master has that hls.js does not keep as levels: its
  // audio-only variant (CODECS of audio only, no RESOLUTION), which hls.js
  // 1.7 drops when there are video variants, and its subtitle tracks (for
  // the audio-only source, which has no master of its own); only those in
  // the version (inVersion).
  function readMaster(data) {
    const levels = data.levels || [];
    const audio = levels.find((l) => l.audioCodec && !l.videoCodec && !(l.width && l.height) && inVersion(l.url));
    master = {
      path: pathOf(info.manifestUrl),
      audio: audio ? { url: audio.url, bitrate: audio.bitrate || 64000 } : null,
      subtitles: (data.subtitles || []).filter((t) => inVersion(t.url)).map((t) => ({
        name: t.name, lang: t.lang || '', default: !!t.default, autoselect: !!t.autoselect, url: t.url,
      })),
    };
    showAudioOnly();
  }

  // The audio-only source for hls.js: the variant playlist itself, or,
  // when the master has subtitles, a master of our own (an object URL)
  // with that one variant and the same subtitle tracks, so the captions
  // go on.  Absolute URLs with the current signature; names and languages
  // quoted, a quote or line break in them dropped.
  function audioSource() {
    const audio = resign(master.audio.url);
    if (!master.subtitles.length) return audio;
    const q = (v) => `"${String(v).replace(/["\r\n]/g, '')}"`;
    const lines = ['#EXTM3U'];
    for (const t of master.subtitles) {
      lines.push(`#EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID="subs",NAME=${q(t.name)}${t.lang ? `,LANGUAGE=${q(t.lang)}` : ''}` +
        `,DEFAULT=${t.default ? 'YES' : 'NO'},AUTOSELECT=${t.autoselect ? 'YES' : 'NO'},URI=${q(resign(t.url))}`);
    }
    lines.push(`#EXT-X-STREAM-INF:BANDWIDTH=${Math.round(master.audio.bitrate)},CODECS="mp4a.40.2",SUBTITLES="subs"`, audio, '');
    if (sourceBlob) URL.revokeObjectURL(sourceBlob);
    sourceBlob = URL.createObjectURL(new Blob([lines.join('\n')], { type: 'application/vnd.apple.mpegurl' }));
    return sourceBlob;
  }

  // the button, the poster and the badge as the choice is
  function showAudioOnly() {
    const b = $('#audio-only');
    // hls.js only: a browser playing HLS itself shows no levels to us
    b.hidden = !(info && window.Hls && Hls.isSupported() && master && master.audio
      && master.path === pathOf(info.manifestUrl));
    b.setAttribute('aria-pressed', audioOnly ? 'true' : 'false');
    b.textContent = 'Audio only';
    $('#audio-badge').hidden = !audioOnly;
    drawCaptions();
    if (audioOnly) video.poster = sibling('poster.jpg'); else video.removeAttribute('poster');
  }

  // Audio only, or back to the video: a new source in hls.js, from where
  // the viewer was, playing if it played.  Beacons: one here (what was
  // played is proven up to here), none while the source changes (its
  // currentTime passes through 0), then the usual one where it plays
  // again: the server sees no seek.
  function switchSource(toAudio) {
    if (!info || !hls || toAudio === audioOnly) return;
    const at = video.currentTime;
    const wasPlaying = !video.paused && !video.ended;
    if (wasPlaying) sendProgress('tick');
    beginSwitch(at, wasPlaying);
    audioOnly = toAudio;
    startPlayback(at, false, true);
    statusLine(toAudio ? 'Audio only: the picture is not loaded.' : '');
    if (wasPlaying) video.addEventListener('canplay', () => video.play().catch(() => {}), { once: true });
  }

  function beginSwitch(at, playing) {
    clearTimeout(switching && switching.timer);
    // a source that never gets there (an error says so itself) does not
    // keep the beacons off for good
    switching = { at, playing, timer: setTimeout(() => { switching = null; }, 30000) };
  }
  // true while the source changes; false once it is where it was (beacons again)
  function stillSwitching() {
    if (!switching) return false;
    if (Math.abs(video.currentTime - switching.at) > 1.5 || video.seeking || video.readyState < 2
        || (switching.playing && video.paused)) return true;     // not yet playing again: no "pause"
    clearTimeout(switching.timer);
    switching = null;
    return false;
  }

  $('#audio-only').addEventListener('click', () => switchSource(!audioOnly));

  // Audio only: the <video> has no picture, and Chromium then draws no text
  // track over the poster, so the page draws the showing track's active
  // cues itself (the browser's WebVTT parse of them: getCueAsHTML gives
  // only WebVTT's own elements, never markup of the file's)
  const capBox = $('#captions-box');
  function drawCaptions() {
    const t = audioOnly ? Array.from(video.textTracks).find((x) => x.mode === 'showing') : null;
    const cues = t && t.activeCues ? Array.from(t.activeCues) : [];
    const text = cues.map((c) => c.text).join('\n');
    if (capBox.dataset.text === text && capBox.hidden === !cues.length) return;
    capBox.dataset.text = text;
    capBox.textContent = '';
    for (const c of cues) {
      const p = document.createElement('p');
      p.append(typeof c.getCueAsHTML === 'function' ? c.getCueAsHTML() : c.text);
      capBox.append(p);
    }
    capBox.hidden = cues.length === 0;
  }
  video.addEventListener('timeupdate', drawCaptions);
  video.textTracks.addEventListener('change', drawCaptions);
  video.textTracks.addEventListener('addtrack', (e) => e.track.addEventListener('cuechange', drawCaptions));

  // --- captions: the CC menu ------------------------------------------------

  // The tracks are hls.js's subtitle tracks (the master's EXT-X-MEDIA
  // TYPE=SUBTITLES of the playing variant's group), or, where the browser
  // plays HLS itself, the <video>'s text tracks.  hls.js shows the chosen
  // one as a native text track (the browser draws it, with the viewer's
  // caption settings).  The choice ("off" or a language) is kept for the
  // next video and the next source; the first time, the master's
  // DEFAULT=YES track is on.
  const CC_KEY = 'vodlms.captions';
  let cc = [];                // [{label, lang}], in the player's order
  let ccNativeList = null;    // native: the TextTrack objects, in cc's order

  function ccPref() { try { return localStorage.getItem(CC_KEY); } catch (_) { return null; } }
  function ccRemember(v) { try { localStorage.setItem(CC_KEY, v); } catch (_) { /* storage off */ } }

  // the index the viewer wants among tracks `t` ({lang, default}), -1 off
  function ccWanted(t) {
    const pref = ccPref();
    if (pref === 'off') return -1;
    if (pref) {
      const i = t.findIndex((x) => x.lang === pref || (!x.lang && x.label === pref));
      if (i >= 0) return i;
      const j = t.findIndex((x) => x.lang && x.lang.split('-')[0] === pref.split('-')[0]);
      if (j >= 0) return j;
    }
    return t.findIndex((x) => x.default);
  }

  function ccTracks(tracks) {
    cc = (tracks || []).map((t) => ({ label: t.name || t.lang || 'Subtitles', lang: t.lang || '', default: !!t.default }));
    ccNativeList = null;
    buildCcMenu();
    // hls.js selects its own choice (DEFAULT=YES) right after this event:
    // ours goes after that
    const h = hls;
    queueMicrotask(() => { if (h && h === hls) ccSelect(ccWanted(cc), false); });
  }

  // native HLS (Safari): the text tracks the browser made from the master
  function ccNative() {
    const list = video.textTracks;
    const read = () => {
      const tt = Array.from(list).filter((t) => t.kind === 'subtitles' || t.kind === 'captions');
      if (ccNativeList && tt.length === ccNativeList.length) return;
      ccNativeList = tt;
      cc = tt.map((t) => ({ label: t.label || t.language || 'Subtitles', lang: t.language || '', default: false }));
      buildCcMenu();
      const showing = tt.findIndex((t) => t.mode === 'showing');
      const i = ccPref() !== null ? ccWanted(cc) : showing;
      ccSelect(i, false);
    };
    list.onaddtrack = read;
    list.onchange = paintCc;
    read();
  }

  function ccCurrent() {
    if (hls) return hls.subtitleDisplay ? hls.subtitleTrack : -1;
    if (ccNativeList) return ccNativeList.findIndex((t) => t.mode === 'showing');
    return -1;
  }

  function ccSelect(i, remember = true) {
    if (remember) ccRemember(i < 0 ? 'off' : (cc[i].lang || cc[i].label));
    if (hls) {
      hls.subtitleDisplay = i >= 0;
      hls.subtitleTrack = i;
    } else if (ccNativeList) {
      ccNativeList.forEach((t, k) => { t.mode = k === i ? 'showing' : 'disabled'; });
    }
    paintCc();
  }

  const ccBtn = $('#cc-btn');
  const ccMenu = $('#cc-menu');

  function buildCcMenu() {
    ccMenu.textContent = '';
    const items = [{ label: 'Off', lang: '', i: -1 }].concat(cc.map((t, i) => ({ ...t, i })));
    for (const t of items) {
      const li = document.createElement('li');
      li.setAttribute('role', 'none');
      const b = document.createElement('button');
      b.type = 'button';
      b.setAttribute('role', 'menuitemradio');
      b.tabIndex = -1;
      b.dataset.track = String(t.i);
      b.append(t.label);             // the master's NAME: text, never HTML
      if (t.lang) {
        b.lang = t.lang;
        const l = document.createElement('span');
        l.className = 'lang';
        l.textContent = t.lang;
        b.append(l);
      }
      li.append(b);
      ccMenu.append(li);
    }
    ccBtn.disabled = cc.length === 0;
    ccBtn.title = cc.length ? '' : 'This lecture has no captions';
    paintCc();
  }

  function paintCc() {
    const i = ccCurrent();
    for (const b of ccMenu.querySelectorAll('[role="menuitemradio"]')) {
      b.setAttribute('aria-checked', Number(b.dataset.track) === i ? 'true' : 'false');
    }
    $('#cc-state').textContent = i >= 0 && cc[i] ? cc[i].label : 'Off';
    ccBtn.classList.toggle('on', i >= 0);
  }

  function ccClear() {
    cc = [];
    ccNativeList = null;
    closeCc(false);
    buildCcMenu();
  }

  const ccItems = () => Array.from(ccMenu.querySelectorAll('[role="menuitemradio"]'));
  function openCc(focusLast = false) {
    if (ccBtn.disabled) return;
    ccMenu.hidden = false;
    ccBtn.setAttribute('aria-expanded', 'true');
    const items = ccItems();
    const on = items.find((b) => b.getAttribute('aria-checked') === 'true');
    (focusLast ? items[items.length - 1] : on || items[0]).focus();
  }
  function closeCc(refocus = true) {
    if (ccMenu.hidden) return;
    ccMenu.hidden = true;
    ccBtn.setAttribute('aria-expanded', 'false');
    if (refocus) ccBtn.focus();
  }

  ccBtn.addEventListener('click', () => (ccMenu.hidden ? openCc() : closeCc()));
  ccBtn.addEventListener('keydown', (e) => {
    if (e.key === 'ArrowDown' || e.key === 'ArrowUp') { e.preventDefault(); openCc(e.key === 'ArrowUp'); }
  });
  ccMenu.addEventListener('click', (e) => {
    const b = e.target.closest('[role="menuitemradio"]');
    if (!b) return;
    ccSelect(Number(b.dataset.track));
    closeCc();
  });
  ccMenu.addEventListener('keydown', (e) => {
    const items = ccItems();
    const k = items.indexOf(document.activeElement);
    const go = (j) => { e.preventDefault(); items[(j + items.length) % items.length].focus(); };
    switch (e.key) {
      case 'ArrowDown': go(k + 1); break;
      case 'ArrowUp': go(k - 1); break;
      case 'Home': go(0); break;
      case 'End': go(items.length - 1); break;
      case 'Escape': e.preventDefault(); closeCc(); break;
      case 'Tab': closeCc(false); break;
      default:
        // a letter: the next item that starts with it
        if (e.key.length === 1 && /\S/.test(e.key)) {
          const n = items.length;
          for (let s = 1; s <= n; s++) {
            const b = items[(k + s) % n];
            if (b.textContent.trim().toLowerCase().startsWith(e.key.toLowerCase())) { go((k + s) % n); break; }
          }
        }
    }
  });
  // a click elsewhere, or the focus leaving the menu, closes it
  document.addEventListener('pointerdown', (e) => { if (!$('#cc').contains(e.target)) closeCc(false); });
  $('#cc').addEventListener('focusout', (e) => { if (!$('#cc').contains(e.relatedTarget)) closeCc(false); });

  // --- quality menu ---------------------------------------------------------

  const levelLabel = (l) => (l.height ? `${l.height}p` : l.name || `${Math.round(l.bitrate / 1000)} kbps`);

  function buildQualityMenu(levels) {
    const q = $('#quality');
    if (audioOnly) {
      q.innerHTML = '<option value="-1">Audio only</option>';
      q.disabled = true;
      q.title = 'No picture: "Audio only" is on';
      return;
    }
    // highest first; option values are hls.js level indexes; a level's
    // label may be the master's NAME: text, never HTML
    const order = levels.map((l, i) => ({ l, i })).sort((a, b) => (b.l.height - a.l.height) || (b.l.bitrate - a.l.bitrate));
    q.textContent = '';
    q.append(new Option('Auto', '-1'));
    for (const { l, i } of order) q.append(new Option(`${levelLabel(l)} · ${(l.bitrate / 1e6).toFixed(1)} Mbps`, String(i)));
    q.value = '-1';
    q.disabled = levels.length < 2;
    q.title = '';
  }

  function updateQualityLabel() {
    if (!hls) return;
    const auto = $('#quality').options[0];
    if (audioOnly) return;
    const l = hls.levels[hls.currentLevel];
    auto.textContent = hls.autoLevelEnabled && l ? `Auto (${levelLabel(l)})` : 'Auto';
  }

  function setQualityNative() {
    const q = $('#quality');
    q.innerHTML = '<option value="-1">Auto</option>';
    q.disabled = true;
    q.title = 'This browser chooses the quality itself';
  }

  $('#quality').addEventListener('change', (e) => {
    if (!hls) return;
    // currentLevel switches now (flushing the buffer), which is what someone
    // picking a quality by hand expects; -1 hands control back to ABR.
    hls.currentLevel = Number(e.target.value);
    updateQualityLabel();
  });

  // --- progress beacons -----------------------------------------------------

  function beaconBody(event) {
    if (!info || !Number.isFinite(video.duration) || video.duration <= 0) return null;
    if (stillSwitching()) return null;     // audio only and back: not a seek to 0

    return JSON.stringify({
      videoId,
      currentTime: Math.round(video.currentTime * 10) / 10,
      duration: Math.round(video.duration * 10) / 10,
      event,
      ...(info.playbackId ? { playbackId: info.playbackId } : {}),
    });
  }

  async function sendProgress(event) {
    const body = beaconBody(event);
    if (!body) return;
    lastBeaconAt = Date.now();
    const res = await api('POST', progressUrl(videoId), body);
    if (res.status === 409 && streamsRefused(res.data || {})) return;
    if (res.status === 401) {
      notice('Your session has ended, so progress is no longer saved. Log in again.', 'warn');
    } else if (res.status === 400 && res.data) {
      console.warn('progress beacon refused:', res.data.reason || res.data.error);
    }
    // 204 is the normal answer; 429 and 503 only lose this one beacon
  }

  function startTicks() {
    if (!tickTimer) tickTimer = setInterval(() => sendProgress('tick'), TICK_MS);
  }
  function stopTicks() {
    clearInterval(tickTimer); tickTimer = 0;
    clearTimeout(firstStepTimer); firstStepTimer = 0;
  }

  // A beacon where playback starts or lands after a seek: the server credits
  // what was played between two beacons, so without one here the first
  // 10-15 s of each start are not proven, and a seek would be seen only at
  // the next tick.  The ticks then count from this beacon, so none follows
  // it at once; a seek while playing fires "seeked" then "playing", and the
  // second finds a beacon under BEACON_GAP_MS old and sends nothing.
  // One more beacon FIRST_STEP_MS later: the server proves a step by the
  // wall time between two beacons, with little to spare at 2x, so a first
  // beacon that arrived late would otherwise lose the whole first 15 s
  // step; with a short step it loses at most that one.
  function beaconHere() {
    if (stillSwitching()) return;
    if (Date.now() - lastBeaconAt >= BEACON_GAP_MS) sendProgress(video.paused ? 'pause' : 'tick');
    if (!video.paused) {
      stopTicks();
      startTicks();
      firstStepTimer = setTimeout(() => { firstStepTimer = 0; sendProgress('tick'); }, FIRST_STEP_MS);
    }
  }

  video.addEventListener('playing', beaconHere);
  video.addEventListener('seeked', beaconHere);
  // the file's own duration is the truth (the database's may be an estimate)
  video.addEventListener('durationchange', () => {
    if (Number.isFinite(video.duration) && video.duration > 0) $('#v-meta').textContent = `Duration ${fmtTime(video.duration)}`;
  });
  video.addEventListener('pause', () => {
    stopTicks();
    // browsers fire "pause" right before "ended"; that one is reported as ended
    if (!video.ended) sendProgress('pause');
  });
  video.addEventListener('ended', () => { stopTicks(); sendProgress('ended'); });

  // Leaving the page: fetch() may be cancelled, sendBeacon is not.  A Blob
  // of type text/plain keeps it a simple request the endpoint accepts.
  window.addEventListener('pagehide', () => {
    const body = beaconBody(video.ended ? 'ended' : 'pause');
    if (!body || video.currentTime <= 0) return;
    const blob = new Blob([body], { type: 'text/plain' });
    if (!(navigator.sendBeacon && navigator.sendBeacon(progressUrl(videoId), blob))) {
      fetch(progressUrl(videoId), { method: 'POST', body, keepalive: true, credentials: 'include' });
    }
  });

  // --- the course sidebar ---------------------------------------------------

  async function renderPlaylist() {
    const list = $('#playlist');
    const vids = course.videos;
    const paint = (states) => {
      list.innerHTML = vids.map((v, i) => {
        const st = states[v.id] || { kind: 'loading' };
        const cur = v.id === videoId ? ' current' : '';
        const inner = `<span class="num">${i + 1}</span><span class="v-main"><span class="v-title">${esc(v.title)}</span>${Vod.statusPill(st)}</span>`;
        return st.kind === 'ready' && !cur
          ? `<li><a class="v ready${cur}" href="player.html?v=${encodeURIComponent(v.id)}">${inner}</a></li>`
          : `<li><div class="v${cur}"${cur ? ' aria-current="page"' : ''}>${inner}</div></li>`;
      }).join('');
    };
    const states = {};
    paint(states);
    await Promise.all(vids.filter((v) => v.id !== videoId).map(async (v) => { states[v.id] = await Vod.videoState(v.id); }));
    states[videoId] = { kind: 'playing' };
    paint(states);
    list.querySelectorAll('.current .pill').forEach((p) => { p.className = 'pill now'; p.textContent = 'Current'; });
  }

  // --- start ----------------------------------------------------------------

  (async function main() {
    course = await Vod.loadCourse();
    $('#crumb-course').textContent = course.course.title;
    const known = course.videos.find((v) => v.id === videoId);
    showTitle(known ? known.title : videoId);

    Vod.loginBar($('#loginbar'), (u) => {
      const changed = !user || user.userId !== u.userId || user.state !== u.state;
      user = u;
      if (!changed) return;
      // a new viewer: forget the old one's player before anything else, so
      // no beacon goes out under the new session for the old viewing
      info = null;
      mode = null;
      audioOnly = false;
      clearTimeout(refreshTimer);
      teardownPlayer();
      notice('');
      statusLine('');
      load();
      renderPlaylist();
    });
  })();
})();
