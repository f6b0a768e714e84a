// vodlms end-to-end browser test (issue #7), run by t/130-browser.t.
//
// Brings up the product the way `./build.sh run` does -- the reference
// docs/examples/nginx.conf with its @PLACEHOLDERS@ filled in, a private
// Redis with the demo sessions, the demo schema in its own database
// (vodlms_e2e) on the suite's PostgreSQL, vodlms-helper publishing to a
// local origin -- and drives Debian's /usr/bin/chromium through the real
// player pages with playwright-core.  Prints TAP.
//
// Only five things differ from the reference config, each by an exact
// textual replacement that must match: the database name, the signed
// cookies' lifetime (vodlms_cloudfront_ttl 1m, the minimum, with 1 s expiry
// buckets), the progress flush interval (1 s), a second access log that
// records each request's Origin and Cookie header (media.log), so the test
// can tell which media requests went with no cookie, and "vodlms_hls_sign
// define" for "on" (gina's hls.js substitutes the variable; ffmpeg, which
// does not, reads the "on" form in t/082).
//
// Scenario 8 (issue #22), after the others: alice plays an AES-128
// encrypted lecture that ffmpeg made in setup (its key in video_keys, its
// key URI the reference config's vodlms_hls_key location); hls.js fetches
// the key with her session cookie.
//
// Scenario 6, gina (issue #20), runs beside alice's: Chromium with
// third-party cookies blocked opens the player at http://localhost:PORT
// while the media (the edge, vodlms_edge_url) is http://127.0.0.1:PORT --
// another site -- so the player in its default "auto" mode takes the
// signed URL of /stream-url, and nginx's log shows her media requests
// carried no Cookie header.  He plays past the URL's life: the URL lives
// for the rest of the video from the saved position plus the TTL (1m, the
// minimum), and gina had saved a position 8 s from the end, so the URL
// lives about 68 s while the player (which starts over near the end)
// plays the 100 s lecture from the start.  That is the honest case where
// the server's estimate falls short.  hls.js buffers the whole short
// lecture early, so after the expiry the viewer picks the other quality,
// which makes hls.js fetch playlists and segments again: refused (403),
// the player fetches a new URL from /stream-url and goes on from where it
// was.
//
// Scenario 7, wendy (issue #22): the demo config's vodlms_watermark names
// her in the playback answer; the player draws it over the playing video,
// moves it, and keeps it in full screen (the stage, never the <video>).
// Scenario 9 (issue #22, concurrent streams) runs beside them: three
// browser contexts of one Chromium are three devices of one account.  Two
// more nginx serve the reference config with its stream limit changed to
// max=2, over=refuse (hank: the third device's player says too many devices
// play) and max=2, over=takeover (ivy: the third device takes over the
// first, whose next beacon is refused and whose player says so).
//
// Scenario 10, kate (issue #23), after the encrypted one: in setup carol
// uploads two caption files for the lecture through the caption endpoint
// (English WebVTT, the default; French SRT with accented text) and the
// helper publishes them (video_captions both "ready").  The player's CC
// menu lists both, English on at first; choosing a language shows that
// language's cue at the playhead (the showing text track's active cue, and
// the text Chromium draws over the video, read from its user-agent shadow
// tree through DevTools' DOM); Off shows none.  Hovering the page's
// timeline shows the storyboard's tile of that moment (the sprite loaded,
// at the cue's #xywh offset).  "Audio only" plays on from where the video
// was with audio/ segments, no picture (videoWidth 0) and the poster, the
// English captions drawn over it; back to the video, the picture again.
// A hostile origin: a storyboard naming sprites elsewhere gets no tile for
// them (nothing fetched elsewhere with the signature), and a master whose
// audio-only variant is on another host gets no "Audio only", and a
// variant NAME that is markup shows as text in the quality menu.
// The captions go in through the reference config's caption location
// (docs/examples/nginx.conf): a config or module without it fails.
//
// Needs (from ./build.sh test): TEST_NGINX_BINARY, TEST_NGINX_MODULE_PATH,
// TEST_NGINX_PG_PORT, VODLMS_ROOT, VODLMS_BUILD_DIR.
'use strict';

const { spawn, execFileSync } = require('child_process');
const fs = require('fs');
const net = require('net');
const os = require('os');
const path = require('path');
const { chromium } = require('playwright-core');

const ROOT = process.env.VODLMS_ROOT || path.resolve(__dirname, '../..');
const BUILD = process.env.VODLMS_BUILD_DIR || path.join(ROOT, 'build');
const NGINX = process.env.TEST_NGINX_BINARY || '/usr/sbin/nginx';
const MODULE = process.env.TEST_NGINX_MODULE_PATH || path.join(BUILD, 'ngx_http_vodlms_module.so');
const PG_PORT = process.env.TEST_NGINX_PG_PORT;
const CHROMIUM = process.env.VODLMS_CHROMIUM || '/usr/bin/chromium';
const OUT = path.join(BUILD, 'test-output', 'e2e');
const DB = 'vodlms_e2e';
const SEG = 2;              // helper segment_duration (s)
const SAMPLE_S = 100;       // long enough to play past the first cookie expiry
const VIDEO = 'intro-ready';
const COURSE = 'course-intro';
const ENC = 'lec-enc';      // issue #22: an AES-128 encrypted lecture (made here by ffmpeg)
const CUE_S = 4;            // issue #23: the captions carol uploads, a cue every 4 s
const CAPTIONS = {
  en: { label: 'English', format: 'vtt', text: (k) => `English caption ${k}: the lecture at ${k * CUE_S} seconds` },
  fr: { label: 'Français', format: 'srt', text: (k) => `Sous-titre ${k} : déjà ${k * CUE_S} secondes, à bientôt` },
};
const T0 = Date.now();

// --- TAP ---------------------------------------------------------------------

let n = 0; let failed = 0;
function ok(cond, name, diag) {
  n++;
  if (!cond) failed++;
  console.log(`${cond ? 'ok' : 'not ok'} ${n} - ${name}`);
  if (!cond && diag !== undefined) note(typeof diag === 'string' ? diag : JSON.stringify(diag));
  // prove shows only stderr: a failure says itself there too
  if (!cond) console.error(`# failed ${n} - ${name}${diag !== undefined ? `\n# ${typeof diag === 'string' ? diag : JSON.stringify(diag)}` : ''}`);
  return !!cond;
}
function note(s) { for (const l of String(s).split('\n')) console.log(`# ${l}`); }
const elapsed = () => ((Date.now() - T0) / 1000).toFixed(1);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function until(what, fn, timeoutMs, everyMs = 250) {
  const end = Date.now() + timeoutMs;
  let last;
  for (;;) {
    last = await fn();
    if (last) return last;
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs / 1000} s waiting for ${what}`);
    await sleep(everyMs);
  }
}

// --- processes we start (stopped by PID at the end) --------------------------

const children = [];
function start(name, cmd, args, opts = {}) {
  const logFile = opts.log;
  const out = logFile ? fs.openSync(logFile, 'a') : 'ignore';
  const p = spawn(cmd, args, { stdio: ['ignore', out, out], ...opts.spawn });
  p.vname = name;
  p.exited = false;
  p.on('exit', (code, sig) => { p.exited = true; p.exitInfo = `${code === null ? sig : code}`; });
  children.push(p);
  return p;
}
async function stopAll() {
  for (const p of children.reverse()) {
    if (p.exited) continue;
    try { process.kill(p.pid, 'SIGTERM'); } catch (_) { continue; }
    const end = Date.now() + 10000;
    while (!p.exited && Date.now() < end) await sleep(50);
    if (!p.exited) { try { process.kill(p.pid, 'SIGKILL'); } catch (_) { /* gone */ } }
  }
}

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => { const { port } = s.address(); s.close(() => resolve(port)); });
  });
}

// --- PostgreSQL / Redis -------------------------------------------------------

const conninfo = () => `host=127.0.0.1 port=${PG_PORT} user=postgres dbname=${DB}`;
function psql(sql, db = DB) {
  return execFileSync('psql', ['-h', '127.0.0.1', '-p', String(PG_PORT), '-U', 'postgres', '-d', db,
    '-v', 'ON_ERROR_STOP=1', '-qtAc', sql], { encoding: 'utf8', env: { ...process.env, PGOPTIONS: '-c client_min_messages=warning' } }).trim();
}

// --- the product -------------------------------------------------------------

let tmp; let base; let varDir; let nginx; let helper; let encKey;
let redisPortUsed; let soUsed;   // for the extra nginx of scenario 9
let captionSetup = { state: 'failed', why: 'not tried' };   // scenario 10

function render(port, redisPort, so) {
  let conf = fs.readFileSync(path.join(ROOT, 'docs/examples/nginx.conf'), 'utf8');
  const subst = {
    MODULE: so, VAR: varDir, REDIS_PORT: redisPort, HTTP_PORT: port, PG_PORT,
    CDN_URL: `http://127.0.0.1:${port}`, KEY_PAIR_ID: 'KE2ETEST',
    KEY_FILE: path.join(tmp, 'keys/cloudfront.pem'), PUB_KEY_FILE: path.join(tmp, 'keys/cloudfront.pub.pem'),
    COOKIE_SECURE: 'off', PLAYER: path.join(tmp, 'player'), ORIGIN: path.join(varDir, 'origin'),
  };
  conf = conf.replace(/@([A-Z_]+)@/g, (m, k) => (k in subst ? String(subst[k]) : m));
  const left = conf.split('\n').filter((l) => !/^\s*#/.test(l) && /@[A-Z_]+@/.test(l));
  if (left.length) throw new Error(`docs/examples/nginx.conf: unknown placeholders in: ${left.join(' | ')}`);
  // the test-only changes; each must match the reference config exactly
  const edits = [
    [`dbname=vodlms"`, `dbname=${DB}"`],
    ['vodlms_cloudfront_ttl 10m;', 'vodlms_cloudfront_ttl 1m; vodlms_cloudfront_expiry_bucket 1s;'],
    ['zone=progress:10m flush=10s;', 'zone=progress:10m flush=1s;'],
    // gina's player (hls.js) on playlists that carry her parameters once
    // (protocol version 8's EXT-X-DEFINE); ffmpeg reads the "on" form in
    // t/082
    ['vodlms_hls_sign on;', 'vodlms_hls_sign define;'],
    [`access_log ${varDir}/nginx/access.log lms;`, `access_log ${varDir}/nginx/access.log lms;
    log_format e2e_media 'origin="$http_origin" "$request" $status cookie="$http_cookie"';
    access_log ${varDir}/nginx/media.log e2e_media;`],
  ];
  for (const [from, to] of edits) {
    if (!conf.includes(from)) throw new Error(`docs/examples/nginx.conf no longer contains '${from}'`);
    conf = conf.split(from).join(to);
  }
  // issue #23: the reference config's caption upload location is used as
  // it is; without it scenario 10 fails
  if (!/location [^{]*\/captions\//.test(conf)) throw new Error('docs/examples/nginx.conf has no caption upload location (vodlms_upload captions)');
  return conf;
}

async function setup() {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'vodlms-e2e.'));
  fs.chmodSync(tmp, 0o755);
  varDir = path.join(tmp, 'var');
  for (const d of ['nginx', 'redis', 'origin', 'spool', 'upload-tmp', '../keys']) {
    fs.mkdirSync(path.join(varDir, d), { recursive: true });
  }
  // nginx's workers (nobody) write uploads; the helper (this user) reads
  fs.chmodSync(path.join(varDir, 'spool'), 0o777);
  fs.chmodSync(path.join(varDir, 'upload-tmp'), 0o777);
  fs.chmodSync(varDir, 0o755);
  fs.mkdirSync(OUT, { recursive: true });

  // nginx's workers (nobody, when this runs as root) serve the player, and
  // the checkout may be unreadable to them (a clone in /root, or in any 0700
  // directory): they serve a copy kept in the 0755 temp directory
  const player = path.join(ROOT, 'docs/examples/player');
  if (!fs.existsSync(path.join(player, 'node_modules/hls.js/dist/hls.min.js'))) {
    throw new Error(`no ${player}/node_modules/hls.js: run ./build.sh deps`);
  }
  fs.cpSync(player, path.join(tmp, 'player'), { recursive: true });
  (function readable(p) {        // whatever the checkout's umask was
    const st = fs.statSync(p);
    fs.chmodSync(p, st.mode | (st.isDirectory() ? 0o555 : 0o444));
    if (st.isDirectory()) for (const e of fs.readdirSync(p)) readable(path.join(p, e));
  }(path.join(tmp, 'player')));

  // Redis: a private instance (own key space), the demo sessions as an LMS writes them
  const redisPort = await freePort();
  const redis = start('redis-server', 'redis-server', ['--port', String(redisPort), '--bind', '127.0.0.1',
    '--dir', path.join(varDir, 'redis'), '--save', '', '--appendonly', 'no', '--daemonize', 'no',
    '--logfile', path.join(varDir, 'redis/redis.log')]);
  const rcli = (...a) => execFileSync('redis-cli', ['-p', String(redisPort), ...a], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  await until('redis-server', () => { if (redis.exited) throw new Error('redis-server exited'); try { return rcli('ping') === 'PONG'; } catch (_) { return false; } }, 10000, 50);
  rcli('set', 'session:demo-alice', '{"user_id":"1001","role":"student"}');
  rcli('set', 'session:demo-bob', '{"user_id":"1002","role":"student"}');
  rcli('set', 'session:demo-carol', '{"user_id":"1003","role":"instructor"}');
  rcli('set', 'session:demo-gina', '{"user_id":"1007","role":"student"}');
  // wendy's session carries her email: the demo config's watermark names it
  rcli('set', 'session:demo-wendy', '{"user_id":"1008","role":"student","email":"wendy@example.com"}');
  // hank and ivy: one account on three devices each (scenario 9)
  rcli('set', 'session:demo-hank', '{"user_id":"1010","role":"student"}');
  rcli('set', 'session:demo-ivy', '{"user_id":"1011","role":"student"}');
  // kate: captions, previews, audio only (scenario 10)
  rcli('set', 'session:demo-kate', '{"user_id":"1012","role":"student"}');
  redisPortUsed = redisPort;

  // PostgreSQL: the suite's server, our own database
  psql(`drop database if exists ${DB}`, 'postgres');
  psql(`create database ${DB}`, 'postgres');
  execFileSync(path.join(ROOT, 'sql/migrate.sh'), [conninfo(), '--seed'], { stdio: ['ignore', 'ignore', 'inherit'] });
  // gina: enrolled like alice, watches with the signed URL (scenario 6)
  psql(`insert into vodlms.users (id, email, display_name, role) values ('1007', 'gina@example.com', 'Gina Student', 'student')`);
  psql(`insert into vodlms.enrollments (user_id, course_id, status) values ('1007', '${COURSE}', 'active')`);
  // wendy: enrolled too, watches with the viewer watermark (scenario 7)
  psql(`insert into vodlms.users (id, email, display_name, role) values ('1008', 'wendy@example.com', 'Wendy Student', 'student')`);
  psql(`insert into vodlms.enrollments (user_id, course_id, status) values ('1008', '${COURSE}', 'active')`);

  // issue #22: an encrypted lecture, made here by ffmpeg (not the helper):
  // its key in video_keys, its key URI the reference config's key location
  encKey = require('crypto').randomBytes(16);
  const ksec = fs.mkdtempSync(path.join(os.tmpdir(), 'vodlms-e2e-key.'));
  fs.writeFileSync(path.join(ksec, 'k0.key'), encKey, { mode: 0o600 });
  fs.writeFileSync(path.join(ksec, 'keyinfo'), `/vodlms/keys/${ENC}/v1/0.key\n${path.join(ksec, 'k0.key')}\n`);
  const etree = path.join(varDir, 'origin/hls', ENC, 'v1');
  fs.mkdirSync(etree, { recursive: true });
  execFileSync('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-y',
    '-f', 'lavfi', '-i', 'testsrc2=size=640x360:rate=25:duration=12', '-f', 'lavfi', '-i', 'sine=frequency=550:duration=12',
    '-c:v', 'libx264', '-preset', 'ultrafast', '-pix_fmt', 'yuv420p', '-g', '50', '-c:a', 'aac', '-b:a', '64k', '-shortest',
    '-f', 'hls', '-hls_time', String(SEG), '-hls_playlist_type', 'vod', '-hls_key_info_file', path.join(ksec, 'keyinfo'),
    '-hls_segment_filename', path.join(etree, 'v0/seg_%03d.ts'), '-master_pl_name', 'master.m3u8',
    '-var_stream_map', 'v:0,a:0', path.join(etree, 'v%v/index.m3u8')], { stdio: ['ignore', 'inherit', 'inherit'] });
  if (!fs.existsSync(path.join(etree, 'master.m3u8'))) fs.renameSync(path.join(etree, 'v0/master.m3u8'), path.join(etree, 'master.m3u8'));
  fs.rmSync(ksec, { recursive: true, force: true });
  (function readable(p) {
    const st = fs.statSync(p);
    fs.chmodSync(p, st.mode | (st.isDirectory() ? 0o555 : 0o444));
    if (st.isDirectory()) for (const e of fs.readdirSync(p)) readable(path.join(p, e));
  }(path.join(varDir, 'origin/hls', ENC)));
  psql(`insert into vodlms.videos (id, course_id, title, duration_seconds, status, storage_prefix)
        values ('${ENC}', '${COURSE}', 'An encrypted lecture', 12, 'ready', 'hls/${ENC}/v1/')`);
  psql(`insert into vodlms.video_keys (video_id, version, key_index, key, first_segment, starts_ms)
        values ('${ENC}', 'v1', 0, '\\x${encKey.toString('hex')}', 0, 0)`);
  for (const [id, name] of [['1010', 'hank'], ['1011', 'ivy'], ['1012', 'kate']]) {
    psql(`insert into vodlms.users (id, email, display_name, role) values ('${id}', '${name}@example.com', '${name}', 'student')`);
    psql(`insert into vodlms.enrollments (user_id, course_id, status) values ('${id}', '${COURSE}', 'active')`);
  }

  // a CloudFront-style key pair
  const key = path.join(tmp, 'keys/cloudfront.pem');
  execFileSync('openssl', ['genpkey', '-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048', '-out', key], { stdio: 'ignore' });
  execFileSync('openssl', ['pkey', '-in', key, '-pubout', '-out', path.join(tmp, 'keys/cloudfront.pub.pem')], { stdio: 'ignore' });
  fs.chmodSync(path.join(tmp, 'keys'), 0o755);
  fs.chmodSync(key, 0o600);   // read by nginx's master only (root, or this user)

  // nginx, from the reference config; a direct child, not a daemon
  const port = await freePort();
  base = `http://127.0.0.1:${port}`;
  const confPath = path.join(varDir, 'nginx/nginx.conf');
  // nginx maps the module; a rebuild copying over build/*.so in place while
  // it runs would crash its workers, so it loads a private copy
  const so = path.join(tmp, path.basename(MODULE));
  fs.copyFileSync(MODULE, so);
  soUsed = so;
  fs.writeFileSync(confPath, render(port, redisPort, so));
  const nargs = ['-p', path.join(varDir, 'nginx'), '-c', confPath, '-e', path.join(varDir, 'nginx/error.log')];
  execFileSync(NGINX, ['-t', '-q', ...nargs], { stdio: ['ignore', 'inherit', 'inherit'] });
  nginx = start('nginx', NGINX, [...nargs, '-g', 'daemon off;'], { log: path.join(varDir, 'nginx/stderr.log') });
  await until('nginx', async () => {
    if (nginx.exited) throw new Error(`nginx exited (${nginx.exitInfo}); see error.log`);
    try { return (await fetch(`${base}/player/`)).status === 200; } catch (_) { return false; }
  }, 10000, 50);

  // the transcoding helper, cheap settings: 2 s segments, up to 360p
  const hconf = path.join(varDir, 'helper.conf');
  fs.writeFileSync(hconf, [
    'redis_host = 127.0.0.1', `redis_port = ${redisPort}`, `pg_conninfo = "${conninfo()}"`,
    `source_root = ${path.join(varDir, 'spool')}`, `origin_dir = ${path.join(varDir, 'origin')}`,
    'publish = local', 'preset = ultrafast', 'max_height = 360', `segment_duration = ${SEG}`,
    'log_level = info', ''].join('\n'));
  helper = start('vodlms-helper', path.join(BUILD, 'helper/vodlms-helper'), ['--config', hconf],
    { log: path.join(varDir, 'helper.log') });

  // clips: the lecture alice watches, and the one carol uploads in the page
  const clip = (file, secs, freq) => execFileSync('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-y',
    '-f', 'lavfi', '-i', `testsrc2=size=640x360:rate=25:duration=${secs}`,
    '-f', 'lavfi', '-i', `sine=frequency=${freq}:duration=${secs}`,
    '-c:v', 'libx264', '-preset', 'ultrafast', '-pix_fmt', 'yuv420p', '-c:a', 'aac', '-b:a', '64k',
    '-shortest', file], { stdio: ['ignore', 'inherit', 'inherit'] });
  clip(path.join(tmp, 'lecture.mp4'), SAMPLE_S, 440);
  clip(path.join(tmp, 'carol-upload.mp4'), 8, 660);

  // the lecture goes in through the real upload endpoint, as carol
  const up = await fetch(`${base}/api/videos/${VIDEO}/upload?course=${COURSE}`, {
    method: 'POST', headers: { Cookie: 'session=demo-carol', 'X-Title': 'Lecture 1: What is a video codec?' },
    body: fs.readFileSync(path.join(tmp, 'lecture.mp4')),
  });
  if (up.status !== 202 && up.status !== 200) throw new Error(`setup upload: HTTP ${up.status} ${await up.text()}`);
  await waitReady(VIDEO, 120000);
  captionSetup = await uploadCaptions();
  note(`captions: ${captionSetup.state}${captionSetup.why ? ` (${captionSetup.why})` : ''}`);
}

// issue #23: carol uploads the lecture's captions, English (WebVTT, the
// default) and French (SRT), and the helper publishes them.  Not an
// assertion here (setup): scenario 10 reports what happened.
async function uploadCaptions() {
  const ts = (s, sep) => `${String(Math.floor(s / 3600)).padStart(2, '0')}:${String(Math.floor(s / 60) % 60).padStart(2, '0')}:${String(s % 60).padStart(2, '0')}${sep}000`;
  const n = Math.ceil(SAMPLE_S / CUE_S);
  const files = {
    en: `WEBVTT\n\n${Array.from({ length: n }, (_, k) => `${ts(k * CUE_S, '.')} --> ${ts((k + 1) * CUE_S, '.')}\n${CAPTIONS.en.text(k)}\n`).join('\n')}`,
    fr: Array.from({ length: n }, (_, k) => `${k + 1}\n${ts(k * CUE_S, ',')} --> ${ts((k + 1) * CUE_S, ',')}\n${CAPTIONS.fr.text(k)}\n`).join('\n'),
  };
  for (const [lang, c] of Object.entries(CAPTIONS)) {
    const url = `${base}/api/videos/${VIDEO}/captions/${lang}?course=${COURSE}&label=${encodeURIComponent(c.label)}${lang === 'en' ? '&default=1' : ''}`;
    const r = await fetch(url, { method: 'POST', headers: { Cookie: 'session=demo-carol' }, body: files[lang] });
    const b = await r.text();
    if (r.status !== 202) return { state: 'failed', why: `POST ${lang} (${c.format}): HTTP ${r.status} ${b.trim()}` };
  }
  try {
    await until('both captions ready in vodlms.video_captions', () => {
      if (helper.exited) throw new Error(`vodlms-helper exited (${helper.exitInfo}); see helper.log`);
      const rows = psql(`select lang || ' ' || status || ' ' || coalesce(error, '') from vodlms.video_captions
                          where video_id = '${VIDEO}' order by lang`).split('\n');
      const bad = rows.find((r) => / failed /.test(`${r} `));
      if (bad) throw new Error(`caption ${bad}`);
      return rows.length === 2 && rows.every((r) => / ready\b/.test(r));
    }, 90000, 500);
  } catch (e) {
    return { state: 'failed', why: e.message };
  }
  return { state: 'ready', why: '' };
}

async function waitReady(id, ms) {
  return until(`video ${id} ready in PostgreSQL`, () => {
    if (helper.exited) throw new Error(`vodlms-helper exited (${helper.exitInfo}); see helper.log`);
    const st = psql(`select status from vodlms.videos where id = '${id}'`);
    if (st === 'failed') throw new Error(`video ${id} failed to transcode`);
    return st === 'ready';     // the helper publishes the master playlist before this
  }, ms, 500);
}

// --- the browser -------------------------------------------------------------

async function withBrowser(fn, opts = {}) {
  const ud = fs.mkdtempSync(path.join(os.tmpdir(), 'vodlms-e2e-chromium.'));
  if (opts.prefs) {
    fs.mkdirSync(path.join(ud, 'Default'));
    fs.writeFileSync(path.join(ud, 'Default/Preferences'), JSON.stringify(opts.prefs));
  }
  const ctx = await chromium.launchPersistentContext(ud, {
    executablePath: CHROMIUM,
    headless: true,
    viewport: { width: 1280, height: 800 },
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
      '--autoplay-policy=no-user-gesture-required', ...(opts.args || [])],
  });
  try {
    return await fn(ctx);
  } finally {
    await ctx.close().catch(() => {});
    fs.rmSync(ud, { recursive: true, force: true });
  }
}

// every response the page sees, with the moment it arrived
function recorder(page) {
  const log = [];
  page.on('response', (r) => log.push({ url: r.url(), status: r.status(), method: r.request().method(), at: Date.now(), res: r }));
  return log;
}
const isHls = (e) => new URL(e.url).pathname.startsWith('/hls/');
const isSeg = (e) => /\.(ts|m4s|mp4)$/.test(new URL(e.url).pathname) && isHls(e);
const isPlaylist = (e) => /\.m3u8$/.test(new URL(e.url).pathname) && isHls(e);
const isStream = (e) => new URL(e.url).pathname === `/api/videos/${VIDEO}/stream`;

async function loginInPage(page, who) {
  const at = Date.now();
  await page.click(`#loginbar [data-user="${who}"]`);
  await page.waitForFunction((w) => /Signed in as/.test(document.querySelector('#loginbar .whoami').textContent)
    && document.querySelector(`#loginbar [data-user="${w}"]`).classList.contains('active'), who, { timeout: 10000 });
  return at;
}

const currentTime = (page) => page.evaluate(() => document.querySelector('#video').currentTime);

function cookieHeader(setCookies) {
  return setCookies.map((c) => c.split(';')[0]).filter((c) => c.startsWith('CloudFront-')).join('; ');
}

// --- 1, 2, 4: alice -----------------------------------------------------------

async function alice(ctx, parallel) {
  const page = await ctx.newPage();
  const log = recorder(page);
  await page.goto(`${base}/player/player.html?v=${VIDEO}`);
  const loginAt = await loginInPage(page, 'alice');

  // (the page asked once before the login too: that one is a 401)
  const first = await until('a /stream answer to alice', async () => {
    for (const e of log.filter((x) => isStream(x) && x.at >= loginAt)) {
      if (/session=demo-alice/.test((await e.res.request().allHeaders()).cookie || '')) return e;
    }
    return null;
  }, 15000, 100);
  ok(first.status === 200, 'alice: the playback endpoint answers 200', first.status);
  const firstBody = await first.res.json();
  const firstSet = (await first.res.headersArray()).filter((h) => h.name.toLowerCase() === 'set-cookie').map((h) => h.value);
  const oldCookies = cookieHeader(firstSet);
  ok(/CloudFront-Policy=/.test(oldCookies) && /CloudFront-Signature=/.test(oldCookies) && /CloudFront-Key-Pair-Id=/.test(oldCookies),
    'alice: it sets the three CloudFront-* cookies', firstSet);
  const expiresAt = Number(firstBody.expiresAt);
  const lifetime = expiresAt - Math.floor(Date.parse(first.res.headers().date) / 1000);
  ok(lifetime >= 59 && lifetime <= 61, `alice: the cookies live vodlms_cloudfront_ttl (1m): ${lifetime} s`, firstBody);

  // the video really plays: past three segments
  await page.waitForFunction(() => document.querySelector('#video').readyState >= 1, null, { timeout: 30000 });
  await page.evaluate(() => { const v = document.querySelector('#video'); v.muted = true; return v.play(); });
  await page.waitForFunction((s) => document.querySelector('#video').currentTime > 3 * s + 0.5, SEG, { timeout: 60000 });
  const ct = await currentTime(page);
  ok(ct > 3 * SEG, `alice: the video plays: currentTime ${ct.toFixed(2)} s > 3 segments of ${SEG} s`);
  // a beacon where playback starts (the server proves watching from one
  // beacon to the next: issue #19), not only at the first tick, 15 s in
  const started = [];
  for (const e of log.filter((x) => x.method === 'POST' && /\/progress$/.test(x.url))) {
    const body = JSON.parse(e.res.request().postData() || '{}');
    if (body.event === 'tick' && body.currentTime < SEG) started.push(`${e.status} at ${body.currentTime} s`);
  }
  ok(started.length === 1 && /^204 /.test(started[0]), `alice: playback's start sends one beacon from where it starts (${started.join(', ')})`, started);
  // and one more about 5 s later, so a first beacon that came late costs
  // at most that short step, not the first 15 s tick's (issue #19)
  const follow = await until('the beacon 5 s after the start', () => log.filter((x) => x.method === 'POST' && /\/progress$/.test(x.url))
    .map((e) => ({ e, b: JSON.parse(e.res.request().postData() || '{}') }))
    .find(({ b }) => b.event === 'tick' && b.currentTime >= 3 && b.currentTime < 10), 15000, 100).catch(() => null);
  ok(follow && follow.e.status === 204, `alice: a second beacon follows about 5 s into playback (${follow ? `${follow.e.status} at ${follow.b.currentTime} s` : 'none'})`);
  const shot = path.join(OUT, 'player-alice-playing.png');
  await page.screenshot({ path: shot });
  note(`screenshot: ${shot}`);

  const hls = log.filter(isHls);
  const segs = log.filter(isSeg);
  const master = log.find((e) => isPlaylist(e) && /master\.m3u8$/.test(e.url));
  ok(master && master.status === 200, 'alice: the edge served master.m3u8 with 200', master && master.status);
  ok(log.some((e) => isPlaylist(e) && !/master\.m3u8$/.test(e.url) && e.status === 200), 'alice: the edge served a variant playlist with 200');
  const goodSegs = new Set(segs.filter((e) => e.status === 200 || e.status === 206).map((e) => e.url));
  ok(goodSegs.size >= 3, `alice: the edge served ${goodSegs.size} distinct segments with 200/206`);
  ok(hls.every((e) => e.status === 200 || e.status === 206), 'alice: no /hls/ request was refused',
    hls.filter((e) => e.status !== 200 && e.status !== 206).map((e) => `${e.status} ${e.url}`));
  const segReqCookie = segs.length ? ((await segs[0].res.request().allHeaders()).cookie || '') : '';
  ok(/CloudFront-Signature=/.test(segReqCookie), 'alice: segments were fetched with the signed cookies');
  const access = fs.readFileSync(path.join(varDir, 'nginx/access.log'), 'utf8');
  const logged = access.split('\n').filter((l) => /"GET \/hls\/intro-ready\/\S+\.(ts|m4s) HTTP\/1\.1" 20[06] /.test(l));
  ok(logged.length >= 3, `alice: nginx's access log has ${logged.length} segment lines with 200/206`);
  const segUrl = segs.find((e) => e.status === 200).url;

  // the old cookies work now (so the 403 later is the expiry, not the URL)
  const r0 = await fetch(segUrl, { headers: { Cookie: oldCookies } });
  ok(r0.status === 200, `alice: a segment with the first cookies, before they expire: ${r0.status}`);
  const rNone = await fetch(segUrl);
  ok(rNone.status === 403, `the same segment without cookies: ${rNone.status}`);

  // 2. a beacon lands in PostgreSQL, a reload resumes there
  // the pause's own beacon (the player also sends one at "playing" and "seeked")
  const beacon = page.waitForResponse((r) => /\/progress$/.test(r.url()) && r.request().method() === 'POST'
    && /"event":"pause"/.test(r.request().postData() || ''), { timeout: 10000 });
  await page.evaluate(() => document.querySelector('#video').pause());
  const b = await beacon;
  const sent = JSON.parse(b.request().postData());
  ok(b.status() === 204 && sent.event === 'pause', `alice: pausing sends a progress beacon (${b.status()}, ${sent.event} at ${sent.currentTime} s)`, sent);
  const row = await until('the beacon in watch_progress', () => {
    const v = psql(`select position_seconds from vodlms.watch_progress where user_id = '1001' and video_id = '${VIDEO}'`);
    return v !== '' && Math.abs(Number(v) - sent.currentTime) < 0.05 ? v : null;
  }, 15000, 250).catch((e) => { note(e.message); return null; });
  ok(row !== null, `alice: watch_progress.position_seconds in PostgreSQL after the flush: ${row}`);
  const api = await page.request.get(`${base}/api/videos/${VIDEO}/progress`);
  const apiBody = await api.json().catch(() => ({}));
  ok(api.status() === 200 && Math.abs(Number(apiBody.position) - sent.currentTime) < 0.05,
    `alice: GET /progress answers position ${apiBody.position}`, apiBody);

  const reloadAt = Date.now();
  await page.reload();
  const second = await until('the /stream answer after the reload', () => log.find((e) => isStream(e) && e.at >= reloadAt), 15000, 100);
  const secondBody = await second.res.json();
  const reloadCookies = cookieHeader((await second.res.headersArray()).filter((h) => h.name.toLowerCase() === 'set-cookie').map((h) => h.value));
  ok(Math.abs(Number(secondBody.resumeAt) - sent.currentTime) < 0.05, `alice: after the reload the playback endpoint says resumeAt ${secondBody.resumeAt}`, secondBody);
  // hls.js seeks to its startPosition once the first fragment is in
  await page.waitForFunction(() => { const v = document.querySelector('#video'); return v.readyState >= 2 && !v.seeking && v.currentTime > 0; },
    null, { timeout: 20000 }).catch((e) => note(e.message));
  const resumed = await currentTime(page);
  ok(Math.abs(resumed - sent.currentTime) <= 1, `alice: the player resumed at ${resumed.toFixed(2)} s (beacon said ${sent.currentTime} s)`);
  ok(/Resuming where you left off/.test(await page.textContent('#notice')), 'alice: the page says it is resuming');
  await page.evaluate(() => { const v = document.querySelector('#video'); v.muted = true; return v.play(); });

  // bob and carol meanwhile, in their own browsers, while alice keeps watching
  await parallel(segUrl);

  // 4. past the expiry of the cookies the two page loads got: from then on
  // only cookies the player renewed by itself can work
  const lastLoadExp = Number(secondBody.expiresAt);
  const waitMs = lastLoadExp * 1000 - Date.now() + 1500;
  if (waitMs > 0) { note(`alice: waiting ${(waitMs / 1000).toFixed(0)} s for the page loads' cookies to expire`); await sleep(waitMs); }
  const rOld = await fetch(segUrl, { headers: { Cookie: oldCookies } });
  ok(rOld.status === 403, `the first cookies, past their expiry: the edge answers ${rOld.status}`);
  const rOld2 = await fetch(segUrl, { headers: { Cookie: reloadCookies } });
  ok(rOld2.status === 403, `the reload's cookies, past their expiry: the edge answers ${rOld2.status}`);
  const afterReload = log.filter((e) => isStream(e) && e.at >= reloadAt);
  ok(afterReload.length >= 2 && afterReload.every((e) => e.status === 200),
    `alice: the player renewed its cookies by itself: ${afterReload.length} /stream calls since the reload, all 200`, afterReload.map((e) => e.status));
  const policy = (c) => (/CloudFront-Policy=([^;]+)/.exec(c) || [])[1];
  const nowCookies = (await ctx.cookies()).filter((c) => c.name.startsWith('CloudFront-')).map((c) => `${c.name}=${c.value}`).join('; ');
  ok(policy(nowCookies) && policy(nowCookies) !== policy(oldCookies) && policy(nowCookies) !== policy(reloadCookies),
    'alice: the browser holds renewed signed cookies');

  // hls.js buffers the whole short lecture early, so make it fetch again:
  // the viewer picks the other quality, which flushes the buffer
  const ctAtExpiry = await currentTime(page);
  const expMs = lastLoadExp * 1000;
  const accessLog = path.join(varDir, 'nginx/access.log');
  const accessFrom = fs.statSync(accessLog).size;
  const seenBefore = new Set(log.filter(isSeg).map((e) => e.url));
  const opts = await page.$$eval('#quality option', (os) => os.map((o) => o.value).filter((v) => v !== '-1'));
  ok(opts.length >= 2, `alice: the quality menu offers ${opts.length} levels`);
  // the one not playing: "Auto (360p)" names the current level
  const playing = (/\((\d+p)\)/.exec(await page.textContent('#quality option[value="-1"]')) || [])[1];
  const labels = await page.$$eval('#quality option', (os) => os.map((o) => [o.value, o.textContent]));
  const pick = (labels.find(([v, t]) => v !== '-1' && !t.startsWith(`${playing} `)) || [opts[0]])[0];
  note(`alice: playing ${playing}, switching to level ${pick}`);
  await page.selectOption('#quality', pick);
  await until("a new segment fetched after the page loads' cookies expired", () => log.some((e) => isSeg(e) && e.at > expMs && !seenBefore.has(e.url)), 30000, 200)
    .catch((e) => note(e.message));
  await page.waitForFunction((t) => document.querySelector('#video').currentTime > t, ctAtExpiry + 2 * SEG, { timeout: 30000 })
    .catch(() => {});
  const ctAfter = await currentTime(page);
  ok(ctAfter > ctAtExpiry + 2 * SEG, `alice: playback goes on after the page loads' cookies expired: ${ctAtExpiry.toFixed(1)} s -> ${ctAfter.toFixed(1)} s`);
  // what the edge did since (the browser may answer segments it fetched
  // before from its cache: nginx's access log is the truth)
  // (gina, scenario 6, plays beside alice on signed URLs: her requests
  // carry a query, alice's none)
  const since = fs.readFileSync(accessLog, 'utf8').slice(accessFrom).split('\n')
    .filter((l) => /"GET \/hls\//.test(l) && !/[?&]Signature=/.test(l));
  const sinceSegs = since.filter((l) => /\.(ts|m4s) HTTP/.test(l));
  ok(sinceSegs.length >= 1 && since.every((l) => /" 20[06] /.test(l)),
    `alice: ${sinceSegs.length} segment requests (level ${pick}) reached the edge after the page loads' cookies expired, all answered 200/206`,
    since);
  const fresh = log.find((e) => isSeg(e) && e.at > expMs && !seenBefore.has(e.url));
  const segCookie = fresh ? ((await fresh.res.request().allHeaders()).cookie || '') : '';
  ok(policy(segCookie) && policy(segCookie) !== policy(oldCookies) && policy(segCookie) !== policy(reloadCookies),
    'alice: they went with the renewed cookies');
  const ov = await page.$eval('#overlay', (o) => o.hidden);
  ok(ov, 'alice: no error overlay on the player');
  const err = await page.textContent('#status-line');
  note(`alice: status line: ${err}`);
  await page.close();
}

// --- 3: bob -------------------------------------------------------------------

async function bob(ctx, segUrl) {
  const page = await ctx.newPage();
  const log = recorder(page);
  await page.goto(`${base}/player/player.html?v=${VIDEO}`);
  const loginAt = await loginInPage(page, 'bob');
  await page.waitForFunction(() => !document.querySelector('#overlay').hidden
    && /not enrolled/.test(document.querySelector('#ov-title').textContent), null, { timeout: 15000 });
  ok(true, `bob: the page says "${await page.textContent('#ov-title')}"`);
  const st = [];
  for (const e of log.filter((x) => isStream(x) && x.at >= loginAt)) {
    if (/session=demo-bob/.test((await e.res.request().allHeaders()).cookie || '')) st.push(e);
  }
  ok(st.length >= 1 && st.every((e) => e.status === 403), `bob: the playback endpoint answers ${st.map((e) => e.status).join(',')}`);
  ok(!log.some((e) => isHls(e) && e.status < 400), 'bob: the edge served him nothing',
    log.filter(isHls).map((e) => `${e.status} ${e.url}`));
  const cf = (await ctx.cookies()).filter((c) => c.name.startsWith('CloudFront-'));
  ok(cf.length === 0, 'bob: he holds no CloudFront-* cookies', cf.map((c) => c.name));
  const r = await page.request.get(segUrl);
  ok(r.status() === 403, `bob: a segment fetched directly in her browser: ${r.status()}`);
  const m = await page.request.get(`${base}/hls/${VIDEO}/master.m3u8`);
  ok(m.status() === 403, `bob: master.m3u8 fetched directly: ${m.status()}`);
  await page.close();
}

// --- 5: carol -----------------------------------------------------------------

async function carol(ctx) {
  const page = await ctx.newPage();
  await page.emulateMedia({ reducedMotion: 'reduce' });   // no bar animation in the screenshot
  await page.goto(`${base}/player/`);
  await loginInPage(page, 'carol');
  await page.waitForSelector('#upload-card:not([hidden])', { timeout: 10000 });
  ok(true, 'carol: the instructor upload form is shown');
  // a new lecture: the id field stays empty, and the server draws the id
  await page.setInputFiles('#file', path.join(tmp, 'carol-upload.mp4'));
  await page.fill('#title', 'Lecture 9: Uploaded from the browser');
  const upload = page.waitForResponse((r) => r.url().endsWith(`/api/courses/${COURSE}/videos`), { timeout: 30000 });
  await page.click('#upload-btn');
  const u = await upload;
  // Chromium may have dropped the response body from its inspector cache by
  // now ("Request content was evicted": alice's segments filled it), so the
  // id comes from the page, and PostgreSQL says whether the server drew it
  const hex = /^[0-9a-f]{32}$/;
  await page.waitForFunction((re) => new RegExp(re).test(document.querySelector('#job-id').textContent),
    hex.source, { timeout: 10000 }).catch(() => {});
  const id = (await page.textContent('#job-id')) || '';
  const row = hex.test(id) ? psql(`select course_id || ' | ' || title from vodlms.videos where id = '${id}'`) : '';
  ok((u.status() === 202 || u.status() === 200) && hex.test(id),
    `carol: the upload through the page: ${u.status()}, the server's id ${id}`);
  const ub = await u.json().catch(() => null);
  ok(row === `${COURSE} | Lecture 9: Uploaded from the browser` && (ub === null || ub.videoId === id),
    `carol: the page shows the id the server drew: its row is "${row}"${ub ? ', the answer says the same' : ''}`);
  let ready = true;
  await page.waitForFunction(() => /^Ready/.test(document.querySelector('#job-step').textContent), null, { timeout: 90000 })
    .catch((e) => { ready = false; note(e.message); });
  ok(ready, `carol: the page says "${await page.textContent('#job-step')}"`);
  ok(psql(`select status from vodlms.videos where id = '${id}'`) === 'ready', 'carol: PostgreSQL says ready');
  const shot = path.join(OUT, 'instructor-carol-upload.png');
  await page.screenshot({ path: shot, fullPage: true });
  note(`screenshot: ${shot}`);
  const s = await page.request.get(`${base}/api/videos/${id}/stream`);
  const sb = await s.json().catch(() => ({}));
  ok(s.status() === 200 && sb.manifestUrl, `carol: the playback endpoint for the upload: ${s.status()}`, sb);
  const m = sb.manifestUrl ? await page.request.get(sb.manifestUrl) : null;
  const mtext = m ? await m.text() : '';
  ok(m && m.status() === 200 && /#EXTM3U/.test(mtext) && /RESOLUTION=\d+x360/.test(mtext),
    `carol: the edge serves its master.m3u8 (${m && m.status()}), 360p at most`, mtext);
  const play = await page.getAttribute('#job-play', 'href');
  ok(play === `player.html?v=${id}`, `carol: the page links to the player: ${play}`);
  await page.close();
}

// --- 6: gina, no cookies for the media host (issue #20) ------------------------

async function gina(ctx) {
  const page0 = `http://localhost:${new URL(base).port}`;     // the page's site; the media: 127.0.0.1
  const mediaLog = path.join(varDir, 'nginx/media.log');
  // he had nearly finished the lecture: the URL is sized from there
  const dur = Number(psql(`select duration_seconds from vodlms.videos where id = '${VIDEO}'`));
  if (!(dur > 60)) throw new Error(`gina: the lecture's duration_seconds is ${dur}, not the ${SAMPLE_S} s clip`);
  psql(`insert into vodlms.watch_progress (user_id, video_id, position_seconds, max_position_seconds, duration_seconds)
        values ('1007', '${VIDEO}', ${dur - 8}, ${dur - 8}, ${dur})`);
  await ctx.addCookies([{ name: 'session', value: 'demo-gina', url: page0, httpOnly: true, sameSite: 'Lax' }]);
  const page = await ctx.newPage();
  // no HTTP cache: segments the browser kept would play on with no request
  // reaching the edge, and hide whether the player renewed its URL
  const cdp = await ctx.newCDPSession(page);
  await cdp.send('Network.enable');
  await cdp.send('Network.setCacheDisabled', { cacheDisabled: true });
  const log = recorder(page);
  const isSigned = (e) => /\/stream-url$/.test(new URL(e.url).pathname);
  await page.goto(`${page0}/player/player.html?v=${VIDEO}`);

  const first = await until('a /stream-url answer to gina', () => log.find(isSigned), 20000, 100);
  const body = await first.res.json();
  const issuedAt = Math.floor(Date.parse(first.res.headers().date) / 1000);
  const cookieAsk = log.find((e) => isStream(e) && e.at <= first.at);
  ok(cookieAsk && cookieAsk.status === 200 && cookieAsk.at <= first.at,
    `gina: "auto" asked /stream first (${cookieAsk && cookieAsk.status}), and its manifest is on another site`);
  ok(first.status === 200 && body.manifestUrl.startsWith(`${base}/hls/${VIDEO}/`) && /\/master\.m3u8\?/.test(body.manifestUrl)
    && /[?&]Policy=/.test(body.manifestUrl) && /[?&]Signature=/.test(body.manifestUrl) && /[?&]Key-Pair-Id=KE2ETEST/.test(body.manifestUrl),
    `gina: in auto mode the player took a signed URL from /stream-url (${first.status}), on the media host 127.0.0.1`, body);
  const setCk = (await first.res.headersArray()).filter((h) => h.name.toLowerCase() === 'set-cookie');
  ok(setCk.length === 0, 'gina: /stream-url sets no cookie', setCk);
  const life = Number(body.expiresAt) - issuedAt;
  ok(life >= 60 && life <= 75, `gina: the URL lives the rest of the video from her saved position plus the TTL: ${life} s`, body);

  await page.waitForFunction(() => document.querySelector('#video').readyState >= 1, null, { timeout: 30000 });
  await page.evaluate(() => { const v = document.querySelector('#video'); v.muted = true; return v.play(); });
  await page.waitForFunction((s) => document.querySelector('#video').currentTime > 3 * s + 0.5, SEG, { timeout: 60000 });
  const ct0 = await currentTime(page);
  ok(ct0 > 3 * SEG && ct0 < 30, `gina: the lecture plays from the start (near the end: it starts over): ${ct0.toFixed(1)} s`);
  const media = () => fs.readFileSync(mediaLog, 'utf8').split('\n').filter((l) => l.startsWith(`origin="${page0}" "GET /hls/`));
  const early = media();
  ok(early.some((l) => /\.(ts|m4s)\?\S*Signature=\S* HTTP\/1\.1" 20[06] /.test(l))
    && early.some((l) => /\/(?!master)[^/?]+\.m3u8\?\S*Signature=\S* HTTP\/1\.1" 200 /.test(l)),
    `gina: the edge served her variant playlist and segments on signed URLs (${early.length} requests)`, early.slice(0, 5));
  const variant = log.find((e) => isPlaylist(e) && !/\/master\.m3u8$/.test(new URL(e.url).pathname)
    && /[?&]Signature=/.test(e.url) && e.status === 200);
  const vtext = variant ? await variant.res.text().catch(() => '') : '';
  const vuris = vtext.split(/\r?\n/).filter((l) => l.trim() && !l.startsWith('#'));
  ok(/^#EXT-X-DEFINE:NAME="vodlms",VALUE="Policy=[^"]+"$/m.test(vtext) && vuris.length > 0
    && vuris.every((u) => u.endsWith('?{$vodlms}')),
    `gina: her variant playlist carried the parameters once (EXT-X-DEFINE), its ${vuris.length} segments "{$vodlms}", and hls.js substituted them`,
    vtext.slice(0, 300));
  ok(early.length > 0 && early.every((l) => / cookie="-"$/.test(l)), 'gina: none of her media requests carried a Cookie header (nginx\'s log)',
    early.filter((l) => !/ cookie="-"$/.test(l)));
  const cf = (await ctx.cookies(base)).filter((c) => c.name.startsWith('CloudFront-'));
  ok(cf.length === 0, 'gina: her browser holds no cookie for the media host', cf.map((c) => c.name));

  // past the URL's life
  const waitMs = Number(body.expiresAt) * 1000 - Date.now() + 1500;
  if (waitMs > 0) { note(`gina: waiting ${(waitMs / 1000).toFixed(0)} s for her URL to expire`); await sleep(waitMs); }
  const oldSeg = early.map((l) => (/"GET (\S+\.(?:ts|m4s)\?\S+) HTTP/.exec(l) || [])[1]).find(Boolean);
  const rOld = await fetch(`${base}${oldSeg}`);
  ok(rOld.status === 403, `gina: a segment on the first URL, past its expiry: the edge answers ${rOld.status}`);
  const ctAtExpiry = await currentTime(page);
  const expMs = Number(body.expiresAt) * 1000;
  const logFrom = media().length;
  const labels = await page.$$eval('#quality option', (os) => os.map((o) => [o.value, o.textContent]));
  const playing = (/\((\d+p)\)/.exec((labels.find(([v]) => v === '-1') || [])[1] || '') || [])[1];
  const pick = (labels.find(([v, t]) => v !== '-1' && !t.startsWith(`${playing} `)) || [])[0];
  ok(pick !== undefined, `gina: playing ${playing}, the quality menu offers another level (${pick})`, labels);
  await page.selectOption('#quality', pick);
  const renewed = await until('a /stream-url call after the expiry', () => log.find((e) => isSigned(e) && e.at > expMs), 30000, 200)
    .catch((e) => { note(e.message); return null; });
  const rBody = renewed ? await renewed.res.json().catch(() => ({})) : {};
  ok(renewed && renewed.status === 200 && rBody.manifestUrl && rBody.manifestUrl !== body.manifestUrl
    && Number(rBody.expiresAt) > Number(body.expiresAt),
    `gina: refused past the expiry, the player got a new signed URL from /stream-url (${renewed && renewed.status})`, rBody);
  // on the lecture's own clock too: past the first URL's life in seconds
  const target = Math.max(ctAtExpiry + 2 * SEG, life + 1);
  await page.waitForFunction((t) => document.querySelector('#video').currentTime > t, target, { timeout: 30000 })
    .catch(() => {});
  const ctAfter = await currentTime(page);
  ok(ctAfter > target,
    `gina: playback goes on after her first URL expired (it lived ${life} s): ${ctAtExpiry.toFixed(1)} s -> ${ctAfter.toFixed(1)} s`);
  // and to its end: the other quality's segments from where she was (and,
  // with no HTTP cache, any she had before) come only on the new URL
  await page.waitForFunction(() => { const v = document.querySelector('#video'); return v.ended || v.currentTime > v.duration - 1; },
    null, { timeout: 90000 }).catch(() => {});
  const end = await page.evaluate(() => { const v = document.querySelector('#video'); return [v.currentTime, v.duration, v.ended]; });
  ok(end[2] || end[0] > end[1] - 1, `gina: she watches the lecture to its end: ${end[0].toFixed(1)} of ${end[1].toFixed(1)} s`, end);
  const since = media().slice(logFrom);
  const newPolicy = (/[?&]Policy=([^&]+)/.exec(rBody.manifestUrl || '') || [])[1];
  const fresh = since.filter((l) => newPolicy && l.includes(`Policy=${newPolicy}`));
  const oldPolicy = (/[?&]Policy=([^&]+)/.exec(body.manifestUrl) || [])[1];
  ok(since.some((l) => l.includes(`Policy=${oldPolicy}`) && /" 403 /.test(l)),
    'gina: past its expiry the edge refused her first URL (403), which made the player renew', since.slice(0, 5));
  const freshSegs = fresh.filter((l) => /\.(ts|m4s)\?/.test(l));
  ok(freshSegs.length >= 1 && fresh.every((l) => /" 20[06] /.test(l)),
    `gina: on the new URL the edge served ${freshSegs.length} segments, all 200/206`, since);
  ok(since.every((l) => / cookie="-"$/.test(l)), 'gina: still no Cookie header on any media request', since.filter((l) => !/ cookie="-"$/.test(l)));
  ok(await page.$eval('#overlay', (o) => o.hidden), 'gina: no error overlay on the player');
  const shot = path.join(OUT, 'player-gina-signed-url.png');
  await page.screenshot({ path: shot });
  note(`screenshot: ${shot}; status line: ${await page.textContent('#status-line')}`);
  await page.close();
}

// --- 7: wendy, the viewer watermark (issue #22) --------------------------------

// The demo config's "vodlms_watermark" names the viewer: the playback
// answer carries it, the player draws it over the playing video, moves it
// (5 to 20 s apart: two moves are waited for, in real time, beside alice's
// waits), and keeps it in full screen: the stage goes full screen, never
// the <video> alone, whether by the page's button, a double-click, or a
// script asking for the <video> (what a browser's own button does).
async function wendy(ctx) {
  await ctx.addCookies([{ name: 'session', value: 'demo-wendy', url: base, httpOnly: true, sameSite: 'Lax' }]);
  const page = await ctx.newPage();
  const log = recorder(page);
  await page.goto(`${base}/player/player.html?v=${VIDEO}`);
  const first = await until('a /stream answer to wendy', () => log.find((e) => isStream(e) && e.status === 200), 20000, 100);
  const body = await first.res.json();
  const want = 'user 1008 wendy@example.com';
  ok(body.watermark === want, `wendy: the playback answer carries her watermark ${JSON.stringify(body.watermark)}`, body);

  await page.waitForFunction(() => document.querySelector('#video').readyState >= 1, null, { timeout: 30000 });
  await page.evaluate(() => { const v = document.querySelector('#video'); v.muted = true; return v.play(); });
  await page.waitForFunction((s) => document.querySelector('#video').currentTime > s, SEG, { timeout: 60000 });

  // what the viewer sees: the watermark's box, its target place, its style
  const look = () => page.evaluate(() => {
    const m = document.querySelector('#watermark'); const v = document.querySelector('#video');
    const r = m.getBoundingClientRect(); const vr = v.getBoundingClientRect(); const cs = getComputedStyle(m);
    const fs = document.fullscreenElement;
    return {
      text: m.textContent, shown: !m.hidden && cs.display !== 'none' && cs.visibility !== 'hidden' && r.width > 0 && r.height > 0,
      at: `${m.style.left},${m.style.top}`,
      inside: r.left >= vr.left - 1 && r.right <= vr.right + 1 && r.top >= vr.top - 1 && r.bottom <= vr.bottom + 1,
      alpha: Number((/rgba\([^)]*,\s*([\d.]+)\)/.exec(cs.color) || [])[1] || 1),
      passive: cs.pointerEvents === 'none' && cs.userSelect === 'none',
      fs: fs ? (fs === v ? 'video' : fs.className.split(' ')[0]) : 'none',
      inFs: !!fs && fs.contains(m), vw: innerWidth, vr: [vr.width, vr.height], t: v.currentTime, paused: v.paused,
    };
  });
  const w0 = await look();
  ok(w0.shown && w0.text === want && w0.inside && !w0.paused,
    `wendy: over the playing video (at ${w0.t.toFixed(1)} s) the player shows "${w0.text}", inside the picture`, w0);
  ok(w0.alpha < 1 && w0.passive, `wendy: it is semi-transparent (alpha ${w0.alpha}), takes no clicks and cannot be selected`, w0);
  const shot = path.join(OUT, 'player-wendy-watermark.png');
  await page.screenshot({ path: shot });
  note(`screenshot: ${shot}`);

  // it moves by itself, at random times: two moves
  const places = [w0.at];
  for (let i = 0; i < 2; i++) {
    const prev = places[places.length - 1];
    const moved = await page.waitForFunction((p) => { const m = document.querySelector('#watermark'); return `${m.style.left},${m.style.top}` !== p; },
      prev, { timeout: 25000 }).then(() => true).catch(() => false);
    const w = await look();
    places.push(w.at);
    ok(moved && w.shown && w.text === want, `wendy: the watermark moved (${prev} -> ${w.at})`, w);
  }
  await sleep(800);        // the move's transition
  const w1 = await look();
  ok(w1.inside && !w1.paused, 'wendy: after moving it is still inside the picture, and the video plays on', w1);

  // full screen by the page's button: the stage, with the watermark in it
  await page.click('#fullscreen');
  await page.waitForFunction(() => !!document.fullscreenElement, null, { timeout: 5000 }).catch(() => {});
  await sleep(800);
  const f1 = await look();
  ok(f1.fs === 'stage' && f1.inFs && f1.shown && f1.inside && f1.text === want && f1.vr[0] === f1.vw,
    `wendy: full screen (the button) is the player's stage, the video fills it (${f1.vr.join('x')}) and the watermark is in it`, f1);
  const fshot = path.join(OUT, 'player-wendy-fullscreen.png');
  await page.screenshot({ path: fshot });
  note(`screenshot: ${fshot}`);
  await page.evaluate(() => document.exitFullscreen());
  await page.waitForFunction(() => !document.fullscreenElement, null, { timeout: 5000 });

  // a double-click on the video: the same
  await page.dblclick('#video');
  await page.waitForFunction(() => !!document.fullscreenElement, null, { timeout: 5000 }).catch(() => {});
  const f2 = await look();
  ok(f2.fs === 'stage' && f2.inFs && f2.shown, `wendy: a double-click on the video: full screen is the stage (${f2.fs}), watermark shown`, f2);
  await page.evaluate(() => document.exitFullscreen());
  await page.waitForFunction(() => !document.fullscreenElement, null, { timeout: 5000 });

  // the <video> alone asked to go full screen, as a browser's own button
  // does: the player swaps to the stage
  await page.evaluate(() => document.querySelector('#v-title').addEventListener('click',
    () => document.querySelector('#video').requestFullscreen(), { once: true }));
  await page.click('#v-title');
  // the swap is an exit and a new request: wait for where it ends (the
  // stage, playing), not a fixed time, which a loaded machine can outrun
  await page.waitForFunction(() => {
    const fs = document.fullscreenElement; const v = document.querySelector('#video');
    return fs && fs !== v && fs.contains(document.querySelector('#watermark')) && !v.paused;
  }, null, { timeout: 10000 }).catch(() => {});
  // the stage's full screen, or, where Chromium refused the second request
  // (the click's activation lapsed on a loaded machine), none: never the
  // <video> alone, without the watermark
  await page.waitForFunction(() => document.fullscreenElement !== document.querySelector('#video'),
    null, { timeout: 10000 }).catch(() => {});
  const f3 = await look();
  ok(f3.fs !== 'video' && (f3.fs === 'none' || f3.inFs) && f3.shown && !f3.paused,
    `wendy: the <video> asked for full screen alone: never left alone in it (the stage's full screen, or none: ${f3.fs}), watermark shown, still playing`, f3);
  await page.evaluate(() => document.exitFullscreen()).catch(() => {});
  await page.close();
}

// --- 8: an encrypted lecture (issue #22) ----------------------------------------

// alice plays the AES-128 lecture through the player page: hls.js fetches
// the key from the LMS's key location with her session cookie, as it does
// the playlists and segments with the CloudFront cookies
async function encrypted(ctx) {
  const page = await ctx.newPage();
  const log = recorder(page);
  await page.goto(`${base}/player/player.html?v=${ENC}`);
  await loginInPage(page, 'alice');
  await page.waitForFunction(() => document.querySelector('#video').readyState >= 1, null, { timeout: 30000 });
  await page.evaluate(() => { const v = document.querySelector('#video'); v.muted = true; return v.play(); });
  await page.waitForFunction((s) => document.querySelector('#video').currentTime > 3 * s + 0.5, SEG, { timeout: 60000 })
    .catch(() => {});
  const ct = await currentTime(page);
  ok(ct > 3 * SEG, `encrypted: Chromium plays the AES-128 lecture through hls.js: currentTime ${ct.toFixed(2)} s`);
  const keys = log.filter((e) => new URL(e.url).pathname === `/vodlms/keys/${ENC}/v1/0.key`);
  ok(keys.length >= 1 && keys.every((e) => e.status === 200),
    `encrypted: hls.js fetched the key from the key location: ${keys.map((e) => e.status).join(', ')}`);
  const body = keys.length ? await keys[0].res.body().catch(() => Buffer.alloc(0)) : Buffer.alloc(0);
  ok(body.length === 16 && body.equals(encKey), 'encrypted: the 16 bytes of video_keys');
  ok(keys.length && keys[0].res.headers()['cache-control'] === 'no-store', 'encrypted: Cache-Control: no-store');
  const sent = keys.length ? (await keys[0].res.request().allHeaders()).cookie || '' : '';
  ok(/session=demo-alice/.test(sent), 'encrypted: the key request carried her session cookie');
  // vodlms_streams in the demo's key location: hls.js names this tab's
  // playback on key requests, and on nothing else (no preflight at a CDN)
  const held = await page.evaluate(() => {
    try { return JSON.parse(sessionStorage.getItem('vodlms.playback')).id; } catch (_) { return null; }
  });
  const named = keys.length ? (await keys[0].res.request().allHeaders())['x-vodlms-playback'] : undefined;
  ok(/^[0-9a-f]{32}$/.test(held || '') && named === held,
    `encrypted: the key request named this tab's playback: X-Vodlms-Playback ${named} (held: ${held})`);
  const segs = log.filter((e) => isSeg(e) && e.url.includes(`/hls/${ENC}/`));
  ok(segs.length >= 3 && segs.every((e) => e.status === 200 || e.status === 206),
    `encrypted: ${segs.length} encrypted segments through the edge, all 200/206`);
  const hlsHeaders = await Promise.all(log.filter(isHls).map((e) => e.res.request().allHeaders()));
  ok(hlsHeaders.length && hlsHeaders.every((h) => !('x-vodlms-playback' in h)),
    `encrypted: none of the ${hlsHeaders.length} playlist and segment requests carried X-Vodlms-Playback`);
  const logged = fs.readFileSync(path.join(varDir, 'nginx/error.log'), 'utf8');
  ok(new RegExp(`key served: user "1001" video "${ENC}" version "v1" key 0 `).test(logged),
    'encrypted: nginx logged the key fetch with user, video, version and key');
  ok(await page.$eval('#overlay', (o) => o.hidden), 'encrypted: no error overlay on the player');
  const shot = path.join(OUT, 'player-encrypted.png');
  await page.screenshot({ path: shot });
  note(`screenshot: ${shot}`);
  await page.close();
}

// --- 10: captions, preview thumbnails, audio only (issue #23) ------------------

// What Chromium draws over the <video> as captions: the text of its text
// track display, in the element's user-agent shadow tree (no page script
// sees it; DevTools' DOM does)
async function drawnCaptions(cdp) {
  const { root } = await cdp.send('DOM.getDocument', { depth: -1, pierce: true });
  const out = [];
  (function walk(node, inside) {
    const a = node.attributes || [];
    let here = inside;
    for (let i = 0; i < a.length; i += 2) if (a[i] === 'pseudo' && a[i + 1] === '-webkit-media-text-track-display') here = true;
    if (node.nodeType === 3 && here) out.push(node.nodeValue);
    for (const c of node.children || []) walk(c, here);
    for (const c of node.shadowRoots || []) walk(c, here);
  }(root, false));
  return out.join('\n').trim();
}

// the showing text track of the player's <video>: its language and the
// text of its active cues
const showingTrack = (page) => page.evaluate(() => {
  const t = Array.from(document.querySelector('#video').textTracks).filter((x) => x.mode === 'showing');
  return t.map((x) => ({ lang: x.language, label: x.label, cues: x.activeCues ? Array.from(x.activeCues).map((c) => c.text) : [] }));
});

// a storyboard's cues, read independently of the player's parser
function storyboardCues(text) {
  const out = [];
  const re = /(\d+):(\d\d):(\d\d)\.(\d{3}) --> (\d+):(\d\d):(\d\d)\.(\d{3})\r?\n(\S+?)#xywh=(\d+),(\d+),(\d+),(\d+)/g;
  for (let m; (m = re.exec(text));) {
    const t = (i) => Number(m[i]) * 3600 + Number(m[i + 1]) * 60 + Number(m[i + 2]) + Number(m[i + 3]) / 1000;
    out.push({ start: t(1), end: t(5), file: m[9], x: Number(m[10]), y: Number(m[11]), w: Number(m[12]), h: Number(m[13]) });
  }
  return out;
}

async function kate(ctx) {
  await ctx.addCookies([{ name: 'session', value: 'demo-kate', url: base, httpOnly: true, sameSite: 'Lax' }]);
  const page = await ctx.newPage();
  const log = recorder(page);
  const cdp = await ctx.newCDPSession(page);
  await page.goto(`${base}/player/player.html?v=${VIDEO}`);
  const first = await until('a /stream answer to kate', () => log.find((e) => isStream(e) && e.status === 200), 20000, 100);
  const manifest = new URL((await first.res.json()).manifestUrl, base);
  const version = new URL('.', manifest).pathname;     // /hls/intro-ready/<version>/
  await page.waitForFunction(() => document.querySelector('#video').readyState >= 1, null, { timeout: 30000 });
  const video = (f, arg) => page.evaluate(f, arg);
  const seekTo = async (t) => {
    await video((x) => { const v = document.querySelector('#video'); v.pause(); v.currentTime = x; }, t);
    await page.waitForFunction((x) => { const v = document.querySelector('#video'); return !v.seeking && Math.abs(v.currentTime - x) < 0.05 && v.readyState >= 2; },
      t, { timeout: 20000 });
  };

  // captions: the CC menu
  if (!ok(captionSetup.state === 'ready', 'kate: carol uploaded two caption files and the helper published both', captionSetup.why)) {
    note(`video_captions: ${psql(`select lang || ' ' || status || ' ' || coalesce(error, '') from vodlms.video_captions where video_id = '${VIDEO}'`)}`);
  } else {
    const mtext = await (await page.request.get(manifest.href)).text();
    ok((mtext.match(/^#EXT-X-MEDIA:TYPE=SUBTITLES,/gm) || []).length === 2, 'kate: the master lists two subtitle renditions', mtext);
    const enabled = await page.waitForFunction(() => !document.querySelector('#cc-btn').disabled, null, { timeout: 20000 })
      .then(() => true).catch(() => false);
    await page.click('#cc-btn');
    const items = await page.$$eval('#cc-menu [role="menuitemradio"]', (bs) => bs.map((b) => ({
      label: b.firstChild.textContent, lang: b.lang, checked: b.getAttribute('aria-checked'), track: b.dataset.track,
    })));
    const expanded = await page.getAttribute('#cc-btn', 'aria-expanded');
    ok(enabled && items.length === 3 && items[0].label === 'Off' && items.slice(1).map((i) => i.lang).sort().join() === 'en,fr'
      && expanded === 'true',
    `kate: the CC button opens a menu: ${items.map((i) => `${i.label}${i.lang ? ` (${i.lang})` : ''}`).join(', ')}`, items);
    ok(items.slice(1).map((i) => `${i.lang}=${i.label}`).sort().join() === 'en=English,fr=Français',
      'kate: the languages carry the labels carol gave them ("English", "Français")', items);
    const on = items.find((i) => i.checked === 'true');
    ok(on && on.lang === 'en', `kate: the default track (English) is on at first: ${on && on.label}`, items);
    await page.keyboard.press('Escape');
    ok(await page.evaluate(() => document.querySelector('#cc-menu').hidden && document.activeElement.id === 'cc-btn'),
      'kate: Escape closes the menu and gives the focus back to the CC button');

    // the playhead in the middle of cue 3 (12-16 s), paused: the cue there
    await video(() => { const v = document.querySelector('#video'); v.muted = true; return v.play(); });
    await page.waitForFunction(() => document.querySelector('#video').currentTime > 1, null, { timeout: 30000 });
    const k = 3;
    await seekTo(k * CUE_S + CUE_S / 2);
    const shows = async (lang) => {
      const want = lang ? CAPTIONS[lang].text(k) : '';
      const got = await until(`the ${lang || 'no'} caption shown`, async () => {
        const t = await showingTrack(page);
        const drawn = await drawnCaptions(cdp);
        const good = lang ? t.length === 1 && t[0].lang === lang && t[0].cues.join('\n') === want && drawn === want
          : t.length === 0 && drawn === '';
        return good ? { t, drawn } : null;
      }, 15000, 200).catch(async () => ({ t: await showingTrack(page), drawn: await drawnCaptions(cdp), failed: true }));
      return { ...got, want };
    };
    const en = await shows('en');
    ok(!en.failed, `kate: English at ${k * CUE_S + CUE_S / 2} s: the active cue and what Chromium draws are "${en.drawn}"`, en);
    await page.screenshot({ path: path.join(OUT, 'player-captions-en.png') });

    // French, with the keyboard: Enter opens, arrows move, Enter chooses
    await page.focus('#cc-btn');
    await page.keyboard.press('Enter');
    for (let i = 0; i < 3 && (await page.evaluate(() => document.activeElement.lang)) !== 'fr'; i++) await page.keyboard.press('ArrowDown');
    await page.keyboard.press('Enter');
    const fr = await shows('fr');
    ok(!fr.failed, `kate: switched to French with the keyboard: the active cue and what Chromium draws are "${fr.drawn}"`, fr);
    const after = await page.evaluate(() => ({
      state: document.querySelector('#cc-state').textContent, focus: document.activeElement.id, menu: document.querySelector('#cc-menu').hidden,
    }));
    ok(after.state === 'Français' && after.focus === 'cc-btn' && after.menu,
      `kate: the CC button says "${after.state}", the menu closed, the focus back on the button`, after);
    const shot = path.join(OUT, 'player-captions-fr.png');
    await page.screenshot({ path: shot });
    note(`screenshot: ${shot}`);

    await page.click('#cc-btn');
    await page.click('#cc-menu [role="menuitemradio"][data-track="-1"]');
    const off = await shows(null);
    ok(!off.failed, 'kate: Off: no text track showing, nothing drawn over the video', off);
  }

  // preview thumbnails: the storyboard beside the master
  const sb = await page.request.get(new URL('thumbs/storyboard.vtt', manifest).href);
  const cues = sb.status() === 200 ? storyboardCues(await sb.text()) : [];
  ok(cues.length > 0, `kate: the version has a storyboard (${sb.status()}, ${cues.length} tiles)`);
  if (cues.length) {
    const dur = await video(() => document.querySelector('#video').duration);
    const c = cues[Math.floor(cues.length * 0.6)];
    const t = (c.start + Math.min(c.end, dur)) / 2;
    const box = await page.locator('#tl-bar').boundingBox();
    await page.mouse.move(box.x + (box.width * t) / dur, box.y + box.height / 2);
    const want = { src: c.file, xywh: `${c.x},${c.y},${c.w},${c.h}` };
    const shown = await page.waitForFunction((w) => {
      const th = document.querySelector('#tl-thumb');
      return !document.querySelector('#tl-preview').hidden && !th.hidden && th.dataset.src === w.src
        && th.dataset.xywh === w.xywh && th.dataset.loaded === 'yes';
    }, want, { timeout: 15000 }).then(() => true).catch(() => false);
    const th = await page.evaluate(() => {
      const e = document.querySelector('#tl-thumb'); const cs = getComputedStyle(e); const r = e.getBoundingClientRect();
      const bar = document.querySelector('#tl-bar').getBoundingClientRect();
      return { bg: cs.backgroundImage, pos: cs.backgroundPosition, w: r.width, h: r.height, above: r.bottom <= bar.top,
        time: document.querySelector('#tl-ptime').textContent, data: { ...e.dataset } };
    });
    const img = `${base}${version}thumbs/${c.file}`;
    ok(shown && th.bg === `url("${img}")` && th.pos === `${-c.x}px ${-c.y}px` && th.w === c.w && th.h === c.h && th.above,
      `kate: hovering the timeline at ${t.toFixed(1)} s shows ${c.file}#xywh=${c.x},${c.y},${c.w},${c.h}, over the timeline, "${th.time}"`, { want: c, got: th });
    const sprite = log.find((e) => e.url === img);
    ok(sprite && sprite.status === 200 && /^image\/jpeg/.test(sprite.res.headers()['content-type'] || ''),
      `kate: the sprite sheet came from the edge: ${sprite && sprite.status} ${sprite && sprite.res.headers()['content-type']}`);
    const shot = path.join(OUT, 'player-preview-thumbnail.png');
    await page.screenshot({ path: shot });
    note(`screenshot: ${shot}`);
    await page.mouse.move(5, 5);

    // A hostile storyboard (the origin serves what it likes): sprites on
    // another host, in another directory, a data: URL.  Those tiles are left
    // out, and no request carries the playback's signature elsewhere; the
    // one sprite beside it stays, signed.
    const hostile = new URL('thumbs/hostile.vtt', manifest).href;
    const elsewhere = [];
    await page.route(hostile, (r) => r.fulfill({ status: 200, contentType: 'text/vtt', body: [
      'WEBVTT', '',
      '00:00:00.000 --> 00:00:01.000', 'https://evil.example/a.jpg#xywh=0,0,160,90', '',
      '00:00:01.000 --> 00:00:02.000', '//evil.example/b.jpg#xywh=0,0,160,90', '',
      '00:00:02.000 --> 00:00:03.000', '../../other/sprite_000.jpg#xywh=0,0,160,90', '',
      '00:00:03.000 --> 00:00:04.000', 'data:image/png,x");background:red#xywh=0,0,160,90', '',
      '00:00:04.000 --> 00:00:05.000', `${c.file}#xywh=0,0,160,90`, ''].join('\n') }));
    const evilHost = (u) => u.hostname === 'evil.example';
    await page.route(evilHost, (r) => { elsewhere.push(r.request().url()); r.fulfill({ status: 404 }); });
    const tiles = await page.evaluate(async (u) => {
      await VodTimeline.storyboard(u, (x) => { const y = new URL(x); y.search = '?Signature=kate-secret'; return y.href; }, 'omit');
      return [0.5, 1.5, 2.5, 3.5, 4.5].map((t) => { const k = VodTimeline.cueAt(t); return k ? k.url : null; });
    }, hostile);
    await page.mouse.move(box.x + 2, box.y + box.height / 2);
    await page.mouse.move(5, 5);
    ok(tiles.slice(0, 4).every((x) => x === null) && tiles[4] === `${base}${version}thumbs/${c.file}` && elsewhere.length === 0,
      'kate: a storyboard naming sprites on another host, in another directory or as data: gets no tile for them, and nothing is fetched elsewhere',
      { tiles, elsewhere });
    await page.unroute(evilHost);
    await page.unroute(hostile);
    await page.evaluate((u) => VodTimeline.storyboard(u, (x) => x, 'omit'), new URL('thumbs/storyboard.vtt', manifest).href);
  }

  // audio only, and back
  const audioBtn = await page.waitForSelector('#audio-only:not([hidden])', { timeout: 10000 }).then(() => true).catch(() => false);
  ok(audioBtn, 'kate: the player offers "Audio only" (the master has the audio-only variant)');
  if (audioBtn) {
    await video(() => { const v = document.querySelector('#video'); v.muted = true; return v.play(); });
    await page.waitForFunction(() => { const v = document.querySelector('#video'); return !v.paused && v.videoWidth > 0 && v.currentTime > 20; },
      null, { timeout: 30000 }).catch(() => {});
    const beacons = () => log.filter((e) => e.method === 'POST' && /\/progress$/.test(e.url))
      .map((e) => ({ at: e.at, status: e.status, ...JSON.parse(e.res.request().postData() || '{}') }));
    const switchTo = async (audio) => {
      const clickAt = Date.now();
      const from = await video(() => document.querySelector('#video').currentTime);
      await page.click('#audio-only');
      const plays = await page.waitForFunction(([f, a, s]) => {
        const v = document.querySelector('#video');
        return document.querySelector('#audio-only').getAttribute('aria-pressed') === String(a) && !v.paused
          && v.currentTime > f + 2 * s && (a ? v.videoWidth === 0 : v.videoWidth > 0);
      }, [from, audio, SEG], { timeout: 60000 }).then(() => true).catch(() => false);
      const st = await video(() => {
        const v = document.querySelector('#video');
        return { t: v.currentTime, w: v.videoWidth, h: v.videoHeight, paused: v.paused, poster: v.getAttribute('poster'),
          badge: !document.querySelector('#audio-badge').hidden };
      });
      // the new source's first playlist: segments of the old one may still
      // answer between the click and the moment hls.js was replaced
      const pl = log.find((e) => e.at >= clickAt && new URL(e.url).pathname === `${version}${audio ? 'audio/index' : 'master'}.m3u8`);
      const segs = pl ? log.filter((e) => e.at >= pl.at && isSeg(e)) : [];
      const low = beacons().filter((b) => b.at >= clickAt && b.currentTime < from - 1);
      return { from, plays, st, segs, low, playlist: pl ? pl.status : 'none' };
    };

    const a = await switchTo(true);
    const aud = a.segs.filter((e) => new URL(e.url).pathname.startsWith(`${version}audio/`));
    ok(a.plays && a.playlist === 200, `kate: "Audio only" loads audio/index.m3u8 (${a.playlist}) and plays on from ${a.from.toFixed(1)} s: ${a.st.t.toFixed(1)} s, no picture (videoWidth ${a.st.w})`, a.st);
    ok(aud.length >= 2 && aud.every((e) => e.status === 200) && aud.length === a.segs.length,
      `kate: ${aud.length} audio/ segments fetched since, all 200, and no video segment (${a.segs.length - aud.length})`,
      a.segs.map((e) => `${e.status} ${e.url}`));
    const poster = log.find((e) => new URL(e.url).pathname === `${version}poster.jpg`);
    ok(a.st.poster === `${base}${version}poster.jpg` && poster && poster.status === 200 && a.st.badge,
      `kate: the poster shows (${poster && poster.status}), and the page says "Audio only"`, a.st);
    ok(a.low.length === 0, 'kate: no progress beacon went back to the start across the switch', a.low);
    if (captionSetup.state === 'ready') {
      // Chromium draws no text track over a poster: the page does
      await page.click('#cc-btn');
      await page.click('#cc-menu [role="menuitemradio"][lang="en"]');
      let last = null;
      const seen = await until('the English caption over the poster', async () => {
        last = await video(() => {
          const b = document.querySelector('#captions-box');
          return { t: document.querySelector('#video').currentTime, text: b.hidden ? '' : b.textContent };
        });
        const k = Math.floor(last.t / CUE_S); const into = last.t - k * CUE_S;
        return into > 0.5 && into < CUE_S - 0.5 && last.text === CAPTIONS.en.text(k);
      }, 15000, 200).catch(() => false);
      ok(seen, `kate: in audio only the captions go on, English over the poster: "${last && last.text}" at ${last && last.t.toFixed(1)} s`, last);
    }
    const shot = path.join(OUT, 'player-audio-only.png');
    await page.screenshot({ path: shot });
    note(`screenshot: ${shot}`);

    const v = await switchTo(false);
    const vid = v.segs.filter((e) => !new URL(e.url).pathname.startsWith(`${version}audio/`));
    ok(v.plays && v.playlist === 200 && v.st.poster === null && !v.st.badge,
      `kate: back to the video (master.m3u8 ${v.playlist}) from ${v.from.toFixed(1)} s: ${v.st.t.toFixed(1)} s, ${v.st.w}x${v.st.h}, no poster`, v.st);
    ok(vid.length >= 1 && vid.every((e) => e.status === 200), `kate: ${vid.length} video segments fetched since, all 200`);
    ok(v.low.length === 0, 'kate: no progress beacon went back to the start across the switch back', v.low);
    const bad = beacons().filter((b) => b.status !== 204);
    ok(bad.length === 0, `kate: every progress beacon answered 204 (${beacons().length})`, bad);
  }
  ok(await page.$eval('#overlay', (o) => o.hidden), 'kate: no error overlay on the player');
  await page.close();

  // A master (the origin serves what it likes) naming its audio-only
  // variant on another host: the player offers no "Audio only" for it, so
  // the playback's signature never goes there with it.
  const p2 = await ctx.newPage();
  let rewritten = false;
  await p2.route((u) => u.pathname.endsWith('/master.m3u8'), async (r) => {
    const res = await r.fetch();
    const body = (await res.text()).replace(/^audio\/index\.m3u8[^\n]*$/m, 'https://evil.example/audio/index.m3u8')
      // and a variant with no RESOLUTION, whose NAME is markup
      .replace(/^(#EXT-X-STREAM-INF:[^\n]*?)RESOLUTION=\d+x\d+,?([^\n]*)$/m, '$1$2,NAME="<img src=x onerror=window.vodlmsXss=1>"');
    rewritten = rewritten || body.includes('https://evil.example/');
    await r.fulfill({ response: res, body });
  });
  await p2.route((u) => u.hostname === 'evil.example', (r) => r.fulfill({ status: 404 }));
  await p2.goto(`${base}/player/player.html?v=${VIDEO}`);
  const read = await p2.waitForSelector('#cc-btn:not([disabled])', { timeout: 30000 }).then(() => true).catch(() => false);
  const offered = await p2.$eval('#audio-only', (b) => !b.hidden);
  ok(rewritten && read && !offered,
    'kate: a master whose audio-only variant is on another host gets no "Audio only" button', { rewritten, read, offered });
  await p2.waitForFunction(() => document.querySelector('#quality').options.length > 1, null, { timeout: 30000 }).catch(() => {});
  const menu = await p2.evaluate(() => ({ imgs: document.querySelectorAll('#quality img').length,
    options: Array.from(document.querySelector('#quality').options).map((o) => o.textContent) }));
  ok(menu.imgs === 0 && menu.options.some((t) => t.startsWith('<img src=x')),
    'kate: a variant NAME that is markup is shown as text in the quality menu, not parsed as HTML', menu);
  await p2.close();
}

// --- 9: one account, three devices (issue #22) -------------------------------

// The reference config lets an account play on one device at a time, a new
// one taking over.  Here two more nginx run it with the limit this scenario
// needs (the same Redis, PostgreSQL and origin; files of their own): max=2
// with over=refuse for hank, max=2 with over=takeover for ivy.  Three
// browser contexts of one Chromium are three devices.
const DEMO_LIMIT = 'vodlms_streams_limit demo max=1 lapse=45s over=takeover;';

async function extraNginx(name, limit) {
  const port = await freePort();
  const dir = path.join(varDir, `nginx-${name}`);
  fs.mkdirSync(dir, { recursive: true });
  let conf = render(port, redisPortUsed, soUsed);
  if (!conf.includes(DEMO_LIMIT)) throw new Error(`docs/examples/nginx.conf no longer contains '${DEMO_LIMIT}'`);
  conf = conf.split(DEMO_LIMIT).join(limit).split(`${varDir}/nginx/`).join(`${dir}/`);
  fs.writeFileSync(path.join(dir, 'nginx.conf'), conf);
  const nargs = ['-p', dir, '-c', path.join(dir, 'nginx.conf'), '-e', path.join(dir, 'error.log')];
  const p = start(`nginx-${name}`, NGINX, [...nargs, '-g', 'daemon off;'], { log: path.join(dir, 'stderr.log') });
  const url = `http://127.0.0.1:${port}`;
  await until(`nginx-${name}`, async () => {
    if (p.exited) throw new Error(`nginx-${name} exited (${p.exitInfo}); see ${dir}/error.log`);
    try { return (await fetch(`${url}/player/`)).status === 200; } catch (_) { return false; }
  }, 10000, 50);
  return url;
}

async function devices(browser, url, who, n) {
  const out = [];
  for (let i = 0; i < n; i++) {
    const ctx = await browser.newContext({ viewport: { width: 1000, height: 700 } });
    await ctx.addCookies([{ name: 'session', value: `demo-${who}`, url, httpOnly: true, sameSite: 'Lax' }]);
    const page = await ctx.newPage();
    out.push({ ctx, page, log: recorder(page) });
  }
  return out;
}

// the player's <video> plays nothing: paused, no source, nothing loaded
const stoppedVideo = () => { const v = document.querySelector('#video'); return v.paused && !v.getAttribute('src') && v.readyState === 0; };
const streamAnswers = (d) => d.log.filter((e) => isStream(e));
const overlayTitle = (d) => d.page.evaluate(() => (document.querySelector('#overlay').hidden ? '' : document.querySelector('#ov-title').textContent));

// opens the player on device d and waits for its /stream answer
async function openPlayer(d, url) {
  await d.page.goto(`${url}/player/player.html?v=${VIDEO}`);
  const e = await until('a /stream answer', () => streamAnswers(d).find((x) => x.status !== 401), 20000, 100);
  return { status: e.status, body: await e.res.json().catch(() => ({})) };
}

async function streams() {
  const [refuseUrl, takeUrl] = await Promise.all([
    extraNginx('refuse', 'vodlms_streams_limit demo max=2 lapse=45s over=refuse;'),
    extraNginx('takeover', 'vodlms_streams_limit demo max=2 lapse=45s over=takeover;'),
  ]);
  const browser = await chromium.launch({
    executablePath: CHROMIUM, headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
      '--autoplay-policy=no-user-gesture-required'],
  });
  try {
    // hank, over=refuse: the third device is refused and says why
    const hank = await devices(browser, refuseUrl, 'hank', 3);
    const a1 = await openPlayer(hank[0], refuseUrl);
    const a2 = await openPlayer(hank[1], refuseUrl);
    ok(a1.status === 200 && a2.status === 200 && /^[0-9a-f]{32}$/.test(a1.body.playbackId)
      && /^[0-9a-f]{32}$/.test(a2.body.playbackId) && a1.body.playbackId !== a2.body.playbackId,
    `hank (max=2, refuse): devices 1 and 2 get a playback each (${a1.status}, ${a2.status}), each its own playbackId`, [a1.body, a2.body]);
    const a3 = await openPlayer(hank[2], refuseUrl);
    ok(a3.status === 409 && a3.body.error === 'too_many_streams' && a3.body.active === 2 && a3.body.limit === 2,
      `hank: device 3 is refused: ${a3.status} ${a3.body.error} (${a3.body.active} of ${a3.body.limit})`, a3.body);
    const t3 = await until('device 3\'s message', async () => overlayTitle(hank[2]), 10000, 100).catch(() => '');
    const text3 = await hank[2].page.textContent('#ov-text');
    ok(/Too many devices/.test(t3) && /playing on 2 devices/.test(text3), `hank: device 3 says "${t3}": ${text3.trim().replace(/\s+/g, ' ')}`);
    ok(await hank[2].page.evaluate(stoppedVideo), 'hank: device 3 plays nothing');
    ok((await overlayTitle(hank[0])) === '' && (await overlayTitle(hank[1])) === '', 'hank: devices 1 and 2 show no message');
    await hank[2].page.screenshot({ path: path.join(OUT, 'streams-hank-third-device.png') });

    // ivy, over=takeover: the third device takes over the first, which
    // learns it from its next beacon (every 15 s while playing) and stops
    const ivy = await devices(browser, takeUrl, 'ivy', 3);
    const b1 = await openPlayer(ivy[0], takeUrl);
    await ivy[0].page.waitForFunction(() => document.querySelector('#video').readyState >= 1, null, { timeout: 30000 });
    await ivy[0].page.evaluate(() => { const v = document.querySelector('#video'); v.muted = true; return v.play(); });
    const b2 = await openPlayer(ivy[1], takeUrl);
    const b3 = await openPlayer(ivy[2], takeUrl);
    ok(b1.status === 200 && b2.status === 200 && b3.status === 200,
      `ivy (max=2, takeover): all three devices get a playback (${b1.status}, ${b2.status}, ${b3.status})`);
    const refused = await until('device 1\'s beacon refused', () => ivy[0].log.find((e) => e.method === 'POST'
      && /\/progress$/.test(e.url) && e.status === 409), 40000, 200).catch((e) => { note(e.message); return null; });
    const rb = refused ? await refused.res.json().catch(() => ({})) : {};
    const sent = refused ? JSON.parse(refused.res.request().postData() || '{}') : {};
    ok(refused && rb.error === 'stream_displaced' && sent.playbackId === b1.body.playbackId,
      `ivy: device 1's next beacon, with its playbackId, is ${refused && refused.status} ${rb.error}`, rb);
    const t1 = await until('device 1\'s message', async () => overlayTitle(ivy[0]), 10000, 100).catch(() => '');
    ok(/moved to another device/.test(t1), `ivy: device 1 says "${t1}"`);
    const stopped = await ivy[0].page.evaluate(stoppedVideo);
    ok(stopped, 'ivy: device 1 stopped playing (paused, no source, nothing loaded)');
    ok((await overlayTitle(ivy[1])) === '' && (await overlayTitle(ivy[2])) === '', 'ivy: devices 2 and 3 show no message');
    await ivy[0].page.screenshot({ path: path.join(OUT, 'streams-ivy-displaced.png') });
  } finally {
    await browser.close().catch(() => {});
  }
}

// Chromium as a browser that blocks third-party cookies: the profile's
// setting (Settings > Privacy > "Block third-party cookies"), and the
// phase-out test switch where this Chromium still has it.  What the test
// holds to is nginx's log: no Cookie header on her media requests.
// localhost goes to the IPv4 address nginx listens on.
const NO_3PC = {
  args: ['--test-third-party-cookie-phaseout', '--host-resolver-rules=MAP localhost 127.0.0.1'],
  prefs: { profile: { cookie_controls_mode: 1, block_third_party_cookies: true } },
};

// --- main ---------------------------------------------------------------------

(async () => {
  let code = 0;
  try {
    await setup();
    note(`setup done in ${elapsed()} s (nginx ${base}, db ${DB}, files in ${tmp})`);
    await Promise.all([
      withBrowser((ctx) => alice(ctx, (segUrl) =>
        Promise.all([withBrowser((c) => bob(c, segUrl)), withBrowser((c) => carol(c))]))),
      withBrowser((ctx) => gina(ctx), NO_3PC),
      withBrowser((ctx) => wendy(ctx)),
      streams(),
    ]);
    // after the others: their timings do not share the machine with it
    await withBrowser((ctx) => encrypted(ctx));
    await withBrowser((ctx) => kate(ctx));
  } catch (e) {
    ok(false, `the browser test ran to the end: ${e.message}`);
    note(e.stack || String(e));
    for (const f of ['nginx/error.log', 'helper.log']) {
      try {
        const t = fs.readFileSync(path.join(varDir, f), 'utf8').split('\n').filter((l) => /emerg|alert|crit|\[error\]|error|fail/i.test(l)).slice(-15);
        if (t.length) note(`${f}:\n${t.join('\n')}`);
      } catch (_) { /* not there */ }
    }
    code = 1;
  } finally {
    await stopAll();
    try { psql(`drop database if exists ${DB}`, 'postgres'); } catch (_) { /* best effort */ }
    if (tmp && !process.env.VODLMS_E2E_KEEP) fs.rmSync(tmp, { recursive: true, force: true });
    else if (tmp) note(`kept ${tmp}`);
  }
  console.log(`1..${n}`);
  note(`browser test: ${n} assertions, ${failed} failed, ${elapsed()} s`);
  process.exit(failed || code ? 1 : 0);
})();
