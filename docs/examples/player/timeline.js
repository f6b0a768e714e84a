// vodlms demo: the player's timeline, with preview thumbnails (issue #23).
//
// The <video>'s own controls stay (play, volume, its own seek bar), but
// where the pointer is over a browser's built-in seek bar is not something
// a page can know; so the page has a timeline of its own under the video:
// a slider (role="slider", keyboard: arrows 5 s, Page Up/Down 30 s,
// Home/End) that shows where the lecture is and what is buffered, seeks on
// a click or at the end of a drag, and, while the pointer hovers it (a
// finger drags on it, or the keyboard moves it), shows the frame of that
// moment from the version's storyboard.
//
// The storyboard (made by vodlms-helper beside master.m3u8, docs/helper.md
// "Audio only and preview thumbnails") is a WebVTT file whose cues name a
// tile of a sprite sheet: "sprite_000.jpg#xywh=160,0,160,90".  It is
// parsed here (a small, tolerant parser: a cue it cannot read is skipped;
// its text is never evaluated, nor put in the page as HTML; a sprite that
// is not a file beside the storyboard is skipped too: its URL would carry
// the playback's signature elsewhere) and the tile of
// the hovered moment is shown as a positioned background.  No storyboard
// (404, an older version, a video from elsewhere): no previews, and no
// error.
'use strict';

window.VodTimeline = (function () {
  const { fmtTime } = Vod;
  const $ = (sel) => document.querySelector(sel);

  const STEP_S = 5;
  const PAGE_S = 30;
  const MAX_CUES = 100000;          // 10 s tiles: 277 hours
  const MAX_BYTES = 8 * 1024 * 1024;

  const video = $('#video');
  const root = $('#timeline');
  const bar = $('#tl-bar');
  const played = root.querySelector('.tl-played');
  const buffered = root.querySelector('.tl-buffered');
  const cur = $('#tl-cur');
  const dur = $('#tl-dur');
  const preview = $('#tl-preview');
  const thumb = $('#tl-thumb');
  const ptime = $('#tl-ptime');

  let cues = [];             // [{start, end, path, x, y, w, h}], by start
  let sbKey = null;          // the storyboard loaded (its URL without query)
  let sign = (u) => u;       // adds the playback's signature to a media URL
  let dragging = false;
  let keyTimer = 0;

  // --- the storyboard ------------------------------------------------------

  // "hh:mm:ss.mmm" or "mm:ss.mmm" -> seconds, or NaN
  function vttTime(s) {
    const m = /^(?:(\d+):)?([0-5]\d):([0-5]\d)\.(\d{3})$/.exec(s.trim());
    if (!m) return NaN;
    return (Number(m[1] || 0) * 3600) + Number(m[2]) * 60 + Number(m[3]) + Number(m[4]) / 1000;
  }

  // the cues of a storyboard: each a time span and a tile
  function parse(text) {
    const out = [];
    const lines = String(text).replace(/^\uFEFF/, '').split(/\r\n|\r|\n/);
    if (!/^WEBVTT(?:[ \t]|$)/.test(lines[0] || '')) return out;
    for (let i = 1; i < lines.length && out.length < MAX_CUES; i++) {
      const arrow = lines[i].indexOf('-->');
      if (arrow < 0) continue;
      const start = vttTime(lines[i].slice(0, arrow));
      const end = vttTime(lines[i].slice(arrow + 3).trim().split(/[ \t]/)[0]);
      const payload = (lines[i + 1] || '').trim();
      i++;
      // "sprite_000.jpg#xywh=0,0,160,90": a relative path, then the tile
      const m = /^([^#\s]+)#xywh=(\d+),(\d+),(\d+),(\d+)$/.exec(payload);
      if (!m || !(end > start)) continue;
      const [x, y, w, h] = m.slice(2).map(Number);
      if (!w || !h || w > 4096 || h > 4096) continue;
      out.push({ start, end, path: m[1], x, y, w, h });
    }
    out.sort((a, b) => a.start - b.start);
    return out;
  }

  // A sprite's URL: a file beside the storyboard (the helper names them
  // "sprite_NNN.jpg"), on its origin, without a query of its own; null for
  // anything else ("https://elsewhere/x.jpg", "//host/x", "../../x.jpg",
  // "data:..."): sign() gives the URL the playback's signature, which must
  // never go to another host nor out of the version
  function tileUrl(path, sb) {
    if (!/^[A-Za-z0-9_-][A-Za-z0-9._-]*$/.test(path)) return null;
    const img = new URL(path, sb);
    const dir = sb.pathname.slice(0, sb.pathname.lastIndexOf('/') + 1);
    if (img.origin !== sb.origin || !img.pathname.startsWith(dir)
        || img.pathname.slice(dir.length).includes('/')) return null;
    img.search = '';
    return img.href;
  }

  // the cue at t seconds (the last one starting at or before it), or null
  function cueAt(t) {
    let lo = 0; let hi = cues.length - 1; let found = null;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (cues[mid].start <= t) { found = cues[mid]; lo = mid + 1; } else hi = mid - 1;
    }
    // the last tile goes on to the end (its cue may end a little before the media)
    return found && (t < found.end || found === cues[cues.length - 1]) ? found : null;
  }

  // Loads the storyboard at `url` (the version's thumbs/storyboard.vtt,
  // with the playback's query when it plays on signed URLs).  `signer`
  // gives a sprite's URL the playback's current signature (a renewed URL
  // in url mode); `credentials` as the playlists are fetched.
  async function storyboard(url, signer, credentials) {
    sign = signer || ((u) => u);
    const u = new URL(url, location.href);
    const key = u.origin + u.pathname;
    if (key === sbKey) return;
    sbKey = key;
    cues = [];
    root.classList.remove('has-previews');
    let text = null;
    try {
      const res = await fetch(u.href, { credentials, cache: 'default' });
      const size = Number(res.headers.get('Content-Length')) || 0;
      if (res.ok && size <= MAX_BYTES) text = await res.text();
    } catch (_) { /* no storyboard: no previews */ }
    if (sbKey !== key || !text || text.length > MAX_BYTES) return;
    cues = parse(text).map((c) => ({ ...c, url: tileUrl(c.path, u) })).filter((c) => c.url);
    root.classList.toggle('has-previews', cues.length > 0);
  }

  function clearStoryboard() {
    sbKey = null;
    cues = [];
    root.classList.remove('has-previews');
    hidePreview();
  }

  // --- the preview ----------------------------------------------------------

  const loaded = new Set();  // sprite URLs the browser has (preloaded once)

  function showPreview(t) {
    const d = video.duration;
    if (!Number.isFinite(d) || d <= 0) return;
    t = Math.max(0, Math.min(t, d));
    ptime.textContent = fmtTime(t);
    const c = cueAt(t);
    if (c) {
      const src = sign(c.url);
      thumb.hidden = false;
      thumb.style.width = `${c.w}px`;
      thumb.style.height = `${c.h}px`;
      // a URL from new URL(): percent-encoded, no quote can end the string
      thumb.style.backgroundImage = `url("${src}")`;
      thumb.style.backgroundPosition = `-${c.x}px -${c.y}px`;
      thumb.dataset.src = c.path;
      thumb.dataset.xywh = `${c.x},${c.y},${c.w},${c.h}`;
      thumb.dataset.loaded = loaded.has(c.url) ? 'yes' : 'no';
      if (!loaded.has(c.url)) {
        const img = new Image();
        img.onload = () => {
          loaded.add(c.url);
          if (thumb.dataset.src === c.path) thumb.dataset.loaded = 'yes';
        };
        img.src = src;
      }
    } else {
      thumb.hidden = true;
      for (const k of ['src', 'xywh', 'loaded']) delete thumb.dataset[k];
    }
    preview.hidden = false;
    // centred over the moment, kept inside the bar
    const bw = bar.clientWidth;
    const pw = preview.offsetWidth;
    const x = (t / d) * bw;
    preview.style.left = `${Math.round(Math.max(0, Math.min(bw - pw, x - pw / 2)))}px`;
  }

  function hidePreview() { preview.hidden = true; }

  // --- the slider -----------------------------------------------------------

  function paint() {
    const d = video.duration;
    const ok = Number.isFinite(d) && d > 0;
    const t = video.currentTime;
    const at = dragging ? Number(bar.dataset.drag) : t;
    played.style.width = ok ? `${Math.min(100, (at / d) * 100)}%` : '0';
    let end = 0;
    for (let i = 0; i < video.buffered.length; i++) {
      if (video.buffered.start(i) <= t + 0.5) end = Math.max(end, video.buffered.end(i));
    }
    buffered.style.width = ok ? `${Math.min(100, (end / d) * 100)}%` : '0';
    cur.textContent = fmtTime(ok ? at : 0);
    dur.textContent = ok ? fmtTime(d) : '–:––';
    bar.setAttribute('aria-valuemax', ok ? String(Math.round(d)) : '0');
    bar.setAttribute('aria-valuenow', String(Math.round(at)));
    bar.setAttribute('aria-valuetext', ok ? `${fmtTime(at)} of ${fmtTime(d)}` : 'not loaded');
    bar.setAttribute('aria-disabled', ok ? 'false' : 'true');
    root.hidden = !ok && !video.currentSrc;
  }

  const timeAtX = (clientX) => {
    const r = bar.getBoundingClientRect();
    const d = video.duration;
    return r.width > 0 && Number.isFinite(d) ? Math.max(0, Math.min(1, (clientX - r.left) / r.width)) * d : 0;
  };
  const seekTo = (t) => {
    const d = video.duration;
    if (!Number.isFinite(d) || d <= 0) return;
    video.currentTime = Math.max(0, Math.min(t, d - 0.1));
  };

  bar.addEventListener('pointermove', (e) => {
    const t = timeAtX(e.clientX);
    if (dragging) { bar.dataset.drag = String(t); paint(); }
    showPreview(t);
  });
  bar.addEventListener('pointerleave', () => { if (!dragging) hidePreview(); });
  bar.addEventListener('pointerdown', (e) => {
    if (e.button !== 0 || !Number.isFinite(video.duration)) return;
    dragging = true;
    bar.setPointerCapture(e.pointerId);
    bar.dataset.drag = String(timeAtX(e.clientX));
    showPreview(Number(bar.dataset.drag));
    paint();
  });
  const endDrag = (e, commit) => {
    if (!dragging) return;
    dragging = false;
    if (commit) seekTo(timeAtX(e.clientX));
    if (e.pointerType !== 'mouse') hidePreview();
    paint();
  };
  bar.addEventListener('pointerup', (e) => endDrag(e, true));
  bar.addEventListener('pointercancel', (e) => endDrag(e, false));

  bar.addEventListener('keydown', (e) => {
    const d = video.duration;
    if (!Number.isFinite(d)) return;
    const t = video.currentTime;
    const to = { ArrowRight: t + STEP_S, ArrowUp: t + STEP_S, ArrowLeft: t - STEP_S, ArrowDown: t - STEP_S,
      PageUp: t + PAGE_S, PageDown: t - PAGE_S, Home: 0, End: d }[e.key];
    if (to === undefined) return;
    e.preventDefault();
    seekTo(to);
    // the frame it moved to, a moment long
    showPreview(to);
    clearTimeout(keyTimer);
    keyTimer = setTimeout(() => { if (!bar.matches(':hover')) hidePreview(); }, 1500);
  });
  bar.addEventListener('blur', () => { clearTimeout(keyTimer); if (!bar.matches(':hover')) hidePreview(); });

  for (const ev of ['timeupdate', 'durationchange', 'progress', 'seeking', 'emptied', 'loadedmetadata']) {
    video.addEventListener(ev, paint);
  }
  paint();

  return { storyboard, clearStoryboard, parse, cueAt: (t) => cueAt(t) };
})();
