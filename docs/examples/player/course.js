// vodlms demo: the course page (lecture list + instructor upload).
'use strict';

(function () {
  const { api, streamUrl, uploadUrl, esc, fmtTime, toast, videoState, statusPill } = Vod;
  const $ = (sel) => document.querySelector(sel);

  let course = null;
  let user = { state: 'out' };
  let pollTimer = 0;

  // --- the lecture list -----------------------------------------------------

  function renderList(states) {
    const items = course.videos.map((v, i) => {
      const st = states[v.id] || { kind: 'loading' };
      const title = esc(st.title || v.title || v.id);
      const ready = st.kind === 'ready';
      let meta = '';
      if (ready && st.resumeAt > 0 && st.duration) {
        const pct = Math.min(100, (st.resumeAt / st.duration) * 100);
        meta = `<div class="watch"><div class="bar thin"><span style="width:${pct.toFixed(1)}%"></span></div>
                <span class="muted">Watched to ${fmtTime(st.resumeAt)}</span></div>`;
      } else if (st.kind === 'processing' || st.kind === 'queued') {
        meta = `<div class="watch"><div class="bar thin busy"><span style="width:${Math.max(2, st.progress || 0)}%"></span></div>
                <span class="muted">${st.kind === 'queued' ? 'Waiting for a transcoder' : 'Transcoding'}</span></div>`;
      }
      const inner = `
        <span class="num">${i + 1}</span>
        <span class="v-main"><span class="v-title">${title}</span>${meta}</span>
        ${statusPill(st)}`;
      return ready
        ? `<li><a class="v ready" href="player.html?v=${encodeURIComponent(v.id)}">${inner}<span class="play" aria-hidden="true"></span></a></li>`
        : `<li><div class="v">${inner}</div></li>`;
    });
    $('#videos').innerHTML = items.join('') ||
      '<li class="empty muted">No lectures listed.</li>';
  }

  function lede(states) {
    const kinds = Object.values(states).map((s) => s.kind);
    if (user.state === 'offline' || kinds.every((k) => k === 'offline')) {
      return 'The vodlms API is not answering. Start it with <code>./build.sh run</code> and open ' +
        '<code>http://127.0.0.1:8080/player/</code>.';
    }
    if (user.state === 'out') return 'Log in with one of the demo accounts above to see what you can watch.';
    if (kinds.includes('locked')) return `${esc(user.name)} is not enrolled in this course, so the lectures stay locked.`;
    if (user.isInstructor) return `You teach this course, ${esc(user.name)}. Upload a lecture on the right.`;
    const ready = kinds.filter((k) => k === 'ready').length;
    return `Welcome back, ${esc(user.name)}. ${ready} of ${kinds.length} lectures are ready to watch.`;
  }

  // Asks the playback endpoint about every listed video.  This is the
  // honest source of truth (status, percent, access) with the existing API;
  // the ready ones also get fresh signed cookies as a side effect, which is
  // harmless.  Videos still transcoding are asked again every 5 s.
  async function refreshList() {
    clearTimeout(pollTimer);
    const states = {};
    renderList(states);
    await Promise.all(course.videos.map(async (v) => { states[v.id] = await videoState(v.id); }));
    renderList(states);
    $('#course-lede').innerHTML = lede(states);
    const busy = Object.values(states).some((s) =>
      ['processing', 'queued', 'unavailable'].includes(s.kind));
    if (busy && !document.hidden) pollTimer = setTimeout(refreshList, 5000);
  }

  // --- instructor upload ----------------------------------------------------

  let xhr = null;
  let jobPoll = 0;

  // A new lecture's id is drawn by the server (vodlms_upload new), never
  // chosen here: an id typed in the form replaces the upload of a lecture
  // that exists already (vodlms_upload on).
  $('#file').addEventListener('change', () => {
    const f = $('#file').files[0];
    $('#file-name').textContent = f ? `${f.name} · ${(f.size / 1048576).toFixed(1)} MB` : '';
    if (f && !$('#title').value) {
      $('#title').value = f.name.replace(/\.[^.]+$/, '').replace(/[_-]+/g, ' ');
    }
  });
  const drop = $('#drop');
  ['dragenter', 'dragover'].forEach((e) => drop.addEventListener(e, () => drop.classList.add('over')));
  ['dragleave', 'drop'].forEach((e) => drop.addEventListener(e, () => drop.classList.remove('over')));

  // The title travels in the X-Title header, and header values are bytes:
  // browsers disagree on non-ASCII ones (Chrome sends UTF-8, Firefox Latin-1
  // or throws), so the stored title would depend on the browser.  Send plain
  // ASCII instead, and tell the instructor when the title was simplified.
  function asciiTitle(s) {
    return s.normalize('NFKD').replace(/[\u0300-\u036f]/g, '')
      .replace(/[\u2018\u2019]/g, "'").replace(/[\u201c\u201d]/g, '"')
      .replace(/[\u2013\u2014]/g, '-').replace(/\u2026/g, '...')
      .replace(/[^\x20-\x7e]/g, '?');
  }

  function jobUI({ step, pct, busy, done, failed }) {
    $('#job-step').innerHTML = step;
    const bar = $('#job-bar');
    bar.style.width = `${Math.max(0, Math.min(100, pct || 0))}%`;
    bar.parentElement.classList.toggle('busy', !!busy);
    bar.parentElement.classList.toggle('bad', !!failed);
    $('#job-cancel').hidden = !!(done || failed);
    $('#job-again').hidden = !(done || failed);
  }

  function startUpload(file, title, courseId, id) {
    $('#upload-form').hidden = true;
    $('#job').hidden = false;
    $('#job-play').hidden = true;
    $('#job-title').textContent = title;
    $('#job-id').textContent = id || 'new lecture';
    jobUI({ step: 'Uploading…', pct: 0 });
    $('#job-cancel').textContent = 'Cancel';

    xhr = new XMLHttpRequest();
    xhr.open('POST', uploadUrl(id, courseId));
    xhr.withCredentials = true;
    const sent = asciiTitle(title);
    if (sent !== title) toast(`Saved as “${sent}”: titles are sent as plain ASCII.`, 'info', 8000);
    xhr.setRequestHeader('X-Title', sent);
    xhr.upload.onprogress = (e) => {
      if (!e.lengthComputable) return;
      const pct = (e.loaded / e.total) * 100;
      jobUI({ step: `Uploading… ${pct.toFixed(0)}% <span class="muted">(${(e.loaded / 1048576).toFixed(1)} of ${(e.total / 1048576).toFixed(1)} MB)</span>`, pct });
    };
    xhr.upload.onload = () => jobUI({ step: 'Upload complete, queueing the transcode…', pct: 100, busy: true });
    xhr.onerror = () => jobUI({ step: 'The upload failed: the connection was lost.', failed: true, pct: 100 });
    xhr.onabort = () => jobUI({ step: 'Upload cancelled.', failed: true, pct: 0 });
    xhr.onload = () => {
      let body = {};
      try { body = JSON.parse(xhr.responseText); } catch (_) { /* not JSON */ }
      if (xhr.status === 202 || xhr.status === 200) {
        id = body.videoId || id;   // the server's id for a new lecture
        $('#job-id').textContent = id;
        title = sent;
        $('#job-title').textContent = title;
        Vod.rememberUpload({ id, title, course: courseId });
        jobUI({ step: 'Queued for transcoding…', pct: 0, busy: true });
        $('#job-cancel').textContent = 'Hide';   // the transcode goes on regardless
        pollJob(id);
        if (courseId === course.course.id && !course.videos.some((v) => v.id === id)) {
          course.videos.push({ id, title });
          refreshList();
        }
        return;
      }
      const why = {
        400: body.error === 'empty_upload' ? 'The file is empty.' : 'The course or video id is not valid (A–Z, a–z, 0–9, - and _).',
        404: 'There is no lecture with that id: leave the id empty to upload a new one.',
        401: 'Your session has ended. Log in again and retry.',
        403: body.error === 'forbidden_role' ? 'Only instructors can upload.'
          : 'You do not teach this course, or that video id belongs to another course.',
        413: 'The file is larger than the server accepts.',
        503: 'The server is busy. Try again in a moment.',
      }[xhr.status] || `The upload failed (HTTP ${xhr.status}).`;
      jobUI({ step: why, failed: true, pct: 100 });
    };
    xhr.send(file);
  }

  // After the upload: the playback endpoint's 409 carries the transcode's
  // status and percent; 200 means the HLS tree is ready.
  async function pollJob(id) {
    clearTimeout(jobPoll);
    // a look-up, not a playback (vodlms_streams does not count it)
    const res = await api('GET', streamUrl(id), undefined, { 'X-Vodlms-Playback': 'none' });
    const d = res.data || {};
    let again = 3000;
    if (res.status === 200) {
      jobUI({ step: `Ready${d.duration ? ` · ${fmtTime(d.duration)}` : ''}.`, pct: 100, done: true });
      const play = $('#job-play');
      play.href = `player.html?v=${encodeURIComponent(id)}`;
      play.hidden = false;
      refreshList();
      return;
    } else if (res.status === 409 && d.status === 'failed') {
      jobUI({ step: 'Transcoding failed. Check the file and upload it again.', pct: 100, failed: true });
      refreshList();
      return;
    } else if (res.status === 409) {
      const pct = Number(d.progress) || 0;
      jobUI({
        step: d.status === 'queued' ? 'Queued: waiting for a transcoder…' : `Transcoding… ${pct.toFixed(0)}%`,
        pct, busy: true,
      });
    } else if (res.status === 503 || res.status === 0) {
      jobUI({ step: 'Checking transcode status… (server busy, retrying)', busy: true, pct: 0 });
      again = Vod.retryAfter(res) * 1000;
    } else {
      jobUI({ step: `Could not check the transcode (HTTP ${res.status}).`, failed: true, pct: 100 });
      return;
    }
    jobPoll = setTimeout(() => pollJob(id), again);
  }

  $('#upload-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const file = $('#file').files[0];
    const title = $('#title').value.trim();
    const courseId = $('#course').value.trim();
    const id = $('#video-id').value.trim();
    if (!file) return toast('Choose a video file first.', 'error');
    if (!title) return toast('Give the lecture a title.', 'error');
    if (!/^[A-Za-z0-9_-]{1,64}$/.test(courseId)) return toast('The course id may use A–Z, a–z, 0–9, - and _.', 'error');
    if (id && !/^[A-Za-z0-9_-]{1,64}$/.test(id)) return toast('The video id may use A–Z, a–z, 0–9, - and _.', 'error');
    startUpload(file, title, courseId, id);
  });

  $('#job-cancel').addEventListener('click', () => {
    if (xhr && xhr.readyState !== XMLHttpRequest.DONE) xhr.abort();
    clearTimeout(jobPoll);
    resetForm();
  });
  $('#job-again').addEventListener('click', resetForm);

  function resetForm() {
    clearTimeout(jobPoll);
    $('#job').hidden = true;
    $('#upload-form').hidden = false;
    $('#upload-form').reset();
    $('#course').value = course.course.id;
    $('#file-name').textContent = '';
  }

  // --- start ----------------------------------------------------------------

  $('#refresh').addEventListener('click', refreshList);
  document.addEventListener('visibilitychange', () => { if (!document.hidden && course) refreshList(); });

  (async function main() {
    course = await Vod.loadCourse();
    $('#course-title').textContent = course.course.title;
    $('#course-id').textContent = course.course.id;
    $('#course').value = course.course.id;
    document.title = `${course.course.title} · vodlms demo`;
    Vod.loginBar($('#loginbar'), (u) => {
      user = u;
      $('#upload-card').hidden = !u.isInstructor;
      refreshList();
    });
  })();
})();
