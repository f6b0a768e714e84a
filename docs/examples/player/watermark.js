// vodlms demo: the viewer watermark (issue #22, part 3).
//
// The playback answer may carry "watermark": a text naming the viewer
// (vodlms_watermark, e.g. their email and id).  It is drawn over the video,
// semi-transparent, and moves to a random place at random times (every 5
// to 20 s), so that a screen recording or a phone camera shows who
// watched, and it cannot be cropped away at one fixed spot.  It takes no
// clicks (pointer-events: none) and cannot be selected.
//
// Full screen: a <video> in full screen shows nothing of the page over it,
// so the player makes its container (.stage, which holds the video and the
// watermark) go full screen instead: its own button, a double-click on the
// video, and, where a browser still shows its own full-screen button (the
// controlsList hint is Chromium's), a swap to the container when the
// <video> itself went full screen.  iPhone Safari can only put the <video>
// itself in full screen (its native player): that is refused while a
// watermark is shown.
//
// What this stops and what it does not: docs/security.md#viewer-watermark.
'use strict';

window.VodWatermark = (function () {
  const MIN_MS = 5000;
  const MAX_MS = 20000;

  const $ = (sel) => document.querySelector(sel);
  const stage = $('.stage');
  const video = $('#video');
  const mark = $('#watermark');
  const fsButton = $('#fullscreen');

  let timer = 0;
  let at = null;              // [x, y] of the current place, as fractions

  // a new place in the stage, well away from the last one: a move is seen
  function place() {
    if (mark.hidden) return;
    const sw = stage.clientWidth; const sh = stage.clientHeight;
    const mw = mark.offsetWidth; const mh = mark.offsetHeight;
    // the room left, keeping clear of the bottom 15% (the video's controls)
    const rx = Math.max(0, sw - mw); const ry = Math.max(0, sh * 0.85 - mh);
    let x; let y;
    for (let i = 0; i < 20; i++) {
      x = Math.random(); y = Math.random();
      if (!at || Math.hypot((x - at[0]) * rx, (y - at[1]) * ry) > Math.min(sw, sh) / 4) break;
    }
    at = [x, y];
    mark.style.left = `${Math.round(x * rx)}px`;
    mark.style.top = `${Math.round(y * ry)}px`;
  }

  function schedule() {
    clearTimeout(timer);
    timer = setTimeout(() => { place(); schedule(); }, MIN_MS + Math.random() * (MAX_MS - MIN_MS));
  }

  // the text of a playback answer; nothing (or "") takes the watermark away
  function show(text) {
    if (!text) { hide(); return; }
    mark.textContent = text;         // text, never HTML: the LMS's data
    mark.hidden = false;
    at = null;
    place();
    schedule();
  }

  function hide() {
    clearTimeout(timer);
    timer = 0;
    mark.hidden = true;
    mark.textContent = '';
  }

  // --- full screen: the stage, never the <video> alone ----------------------

  const fsElement = () => document.fullscreenElement || document.webkitFullscreenElement || null;
  const enterStage = () => (stage.requestFullscreen ? stage.requestFullscreen()
    : stage.webkitRequestFullscreen ? Promise.resolve(stage.webkitRequestFullscreen())
      : Promise.reject(new Error('no fullscreen API')));
  const exitFs = () => (document.exitFullscreen ? document.exitFullscreen()
    : Promise.resolve(document.webkitExitFullscreen && document.webkitExitFullscreen()));

  function toggle() {
    (fsElement() ? exitFs() : enterStage()).catch(() => {});
  }

  function onChange() {
    const el = fsElement();
    if (el === video) {
      // the browser's own button put the <video> alone in full screen:
      // swap to the stage (which holds the watermark), its ancestor, at
      // once: asking needs the click's activation, which a detour through
      // leaving full screen first can outlast on a busy machine
      enterStage().catch(() => exitFs().then(enterStage)).catch(() => {});
      return;
    }
    stage.classList.toggle('is-fullscreen', el === stage);
    if (fsButton) fsButton.textContent = el === stage ? 'Exit full screen' : 'Full screen';
    place();                          // the stage changed size
  }

  if (fsButton) {
    fsButton.hidden = !(stage.requestFullscreen || stage.webkitRequestFullscreen);
    fsButton.addEventListener('click', toggle);
  }
  video.addEventListener('dblclick', (e) => { e.preventDefault(); toggle(); });
  document.addEventListener('fullscreenchange', onChange);
  document.addEventListener('webkitfullscreenchange', onChange);
  // iPhone: the native player covers the page; no watermark there, so no
  // full screen while there is one
  video.addEventListener('webkitbeginfullscreen', () => {
    if (!mark.hidden && video.webkitExitFullscreen) video.webkitExitFullscreen();
  });
  window.addEventListener('resize', place);

  return { show, hide };
})();
