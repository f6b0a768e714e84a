#!/usr/bin/env node
// A local S3 for t/092-s3.t: s3rver (on an ephemeral port, 127.0.0.1) behind
// a proxy that VERIFIES every request's AWS Signature V4 and its
// x-amz-content-sha256 against the body received - s3rver itself checks
// neither - and can inject faults.  One line per request goes to --log:
//   <seq> <method> <host> <path?query> <status> <sig ok|BAD: why>
//
//   node server.js --port P [--backend-port P2] --dir D --bucket B --log L \
//        [--access-key K --secret-key S] [--service-endpoint localhost]
//
// POST /__control (JSON) sets faults: {"fail_put": N} answers the next N
// PUTs with 503 SlowDown; {"reject_part": "text"} answers UploadPart of a
// key containing text with 400 InvalidPart (a permanent error);
// {"hold_put": "text", "hold_gate": "/path/g"} holds the next PUT of a key
// containing text: it writes /path/g.waiting, and goes on once /path/g.go exists.
// AbortMultipartUpload (DELETE ?uploadId=), which s3rver 3.7 lacks, is
// verified and answered 204 by the proxy itself.
'use strict';

const crypto = require('crypto');
const fs = require('fs');
const http = require('http');
const S3rver = require('s3rver');

const args = {};
for (let i = 2; i < process.argv.length; i += 2) {
  args[process.argv[i].replace(/^--/, '')] = process.argv[i + 1];
}
const PORT = Number(args.port);
const ACCESS = args['access-key'] || 'S3RVER';
const SECRET = args['secret-key'] || 'S3RVER';
const log = fs.openSync(args.log, 'a');
let seq = 0;
const faults = { fail_put: 0, reject_part: null };

const sha256 = (d) => crypto.createHash('sha256').update(d).digest('hex');
const hmac = (k, d) => crypto.createHmac('sha256', k).update(d).digest();
const enc = (s) =>
  encodeURIComponent(s).replace(/[!'()*]/g, (c) => '%' + c.charCodeAt(0).toString(16).toUpperCase());

// returns null when the request is correctly signed, else why not
function verify(req, body) {
  const auth = req.headers.authorization || '';
  const m = /^AWS4-HMAC-SHA256 Credential=([^/]+)\/(\d{8})\/([^/]+)\/s3\/aws4_request, ?SignedHeaders=([^,]+), ?Signature=([0-9a-f]{64})$/.exec(auth);
  if (!m) return 'no or malformed AWS4-HMAC-SHA256 Authorization';
  const [, ak, date, region, signed, sig] = m;
  if (ak !== ACCESS) return 'unknown access key ' + ak;
  const amzDate = req.headers['x-amz-date'] || '';
  if (amzDate.slice(0, 8) !== date) return 'x-amz-date does not match the credential date';
  const skew = Math.abs(Date.now() - Date.parse(amzDate.replace(
    /^(\d{4})(\d\d)(\d\d)T(\d\d)(\d\d)(\d\d)Z$/, '$1-$2-$3T$4:$5:$6Z')));
  if (!(skew < 15 * 60 * 1000)) return 'x-amz-date too far from now';
  const ph = req.headers['x-amz-content-sha256'];
  if (!ph) return 'no x-amz-content-sha256';
  if (ph !== sha256(body)) return 'x-amz-content-sha256 is not the SHA-256 of the body';
  const names = signed.split(';');
  for (const need of ['host', 'x-amz-content-sha256', 'x-amz-date']) {
    if (!names.includes(need)) return need + ' not signed';
  }
  // as AWS: "'expect' is named as a SignedHeader, but it does not exist in the HTTP request"
  for (const n of names) {
    if (req.headers[n] === undefined) return n + ' is signed but was not sent';
  }
  if (req.headers['content-type'] && !names.includes('content-type')) return 'content-type not signed';
  if (req.headers['cache-control'] && !names.includes('cache-control')) return 'cache-control not signed';
  const q = req.url.indexOf('?');
  const path = q < 0 ? req.url : req.url.slice(0, q);
  const query = q < 0 ? '' : req.url.slice(q + 1);
  const cq = query === '' ? '' : query.split('&').map((p) => {
    const e = p.indexOf('=');
    const k = decodeURIComponent(e < 0 ? p : p.slice(0, e));
    const v = e < 0 ? '' : decodeURIComponent(p.slice(e + 1));
    return [enc(k), enc(v)];
  }).sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0))
    .map(([k, v]) => k + '=' + v).join('&');
  // S3: the path exactly as sent (already encoded once), no normalisation
  const ch = names.map((n) => n + ':' + String(req.headers[n] ?? '').trim().replace(/\s+/g, ' ') + '\n').join('');
  const creq = [req.method, path, cq, ch, signed, ph].join('\n');
  const scope = `${date}/${region}/s3/aws4_request`;
  const sts = ['AWS4-HMAC-SHA256', amzDate, scope, sha256(creq)].join('\n');
  const key = hmac(hmac(hmac(hmac('AWS4' + SECRET, date), region), 's3'), 'aws4_request');
  const want = crypto.createHmac('sha256', key).update(sts).digest('hex');
  return want === sig ? null : 'signature mismatch; canonical request:\n' + creq;
}

function s3error(res, status, code, message) {
  res.writeHead(status, { 'Content-Type': 'application/xml' });
  res.end(`<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${code}</Code><Message>${message}</Message></Error>`);
}

async function main() {
  const s3 = new S3rver({
    address: '127.0.0.1', port: Number(args['backend-port'] || 0), silent: true, directory: args.dir,
    serviceEndpoint: args['service-endpoint'] || 'localhost',
    configureBuckets: [{ name: args.bucket, configs: [] }],
  });
  const { port: backend } = await s3.run();

  const proxy = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      if (req.url === '/__control' && req.method === 'POST') {
        Object.assign(faults, JSON.parse(body.toString() || '{}'));
        res.end('ok\n');
        return;
      }
      const n = ++seq;
      const line = (status, why) => fs.writeSync(log,
        `${n} ${req.method} ${req.headers.host} ${req.url} ${status} sig ${why === null ? 'ok' : 'BAD: ' + why.replace(/\n/g, '\\n')}\n`);
      const why = verify(req, body);
      if (why !== null) {
        line(403, why);
        s3error(res, 403, 'SignatureDoesNotMatch', 'verifying proxy: ' + why.split('\n')[0]);
        return;
      }
      if (req.method === 'PUT' && faults.fail_put > 0) {
        faults.fail_put--;
        line(503, null);
        s3error(res, 503, 'SlowDown', 'injected by the test');
        return;
      }
      if (req.method === 'PUT' && faults.reject_part && /[?&]partNumber=/.test(req.url)
          && req.url.includes(faults.reject_part)) {
        line(400, null);
        s3error(res, 400, 'InvalidPart', 'injected by the test');
        return;
      }
      // s3rver 3.7 has no AbortMultipartUpload (405): answer it here, as S3 does
      if (req.method === 'DELETE' && /[?&]uploadId=/.test(req.url)) {
        line(204, null);
        res.writeHead(204);
        res.end();
        return;
      }
      const forward = () => {
        const headers = { ...req.headers, 'content-length': String(body.length) };
        delete headers['transfer-encoding'];
        const up = http.request({ host: '127.0.0.1', port: backend, method: req.method,
          path: req.url, headers }, (ur) => {
          line(ur.statusCode, null);
          res.writeHead(ur.statusCode, ur.headers);
          ur.pipe(res);
        });
        up.on('error', (e) => { line(502, null); s3error(res, 502, 'BadGateway', e.message); });
        up.end(body);
      };
      // the first PUT of a key containing hold_put waits for the file <hold_gate>.go
      if (req.method === 'PUT' && faults.hold_put && faults.hold_gate
          && req.url.includes(faults.hold_put)) {
        const gate = faults.hold_gate;
        faults.hold_put = null;
        fs.writeFileSync(gate + '.waiting', req.url + '\n');
        const wait = () => (fs.existsSync(gate + '.go') ? forward() : setTimeout(wait, 50));
        wait();
        return;
      }
      forward();
    });
  });
  proxy.listen(PORT, '127.0.0.1', () => {
    process.stdout.write(`ready ${PORT} backend ${backend}\n`);
  });
  const stop = () => { proxy.close(); s3.close(); process.exit(0); };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

main().catch((e) => { console.error(e); process.exit(1); });
