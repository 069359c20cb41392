// Express 4 upstream of the differential test (tests/differential/run.sh).
// Default settings: case-insensitive, non-strict routing; method-override honours
// X-HTTP-Method-Override, `_method` in a urlencoded body and `_method` in the query (POST only,
// the middleware's default). Each handler appends what Express resolved to a JSON-lines file.
'use strict';
const fs = require('fs');
const express = require('express');
const methodOverride = require('method-override');

const [port, recordFile] = process.argv.slice(2);
const app = express();
app.disable('x-powered-by');
app.disable('etag');

// Every answer of this application (handlers and Express's own 404/400) says it came from here.
app.use((req, res, next) => { res.set('X-Diff-Stack', 'express'); next(); });
app.use(express.urlencoded({ extended: false }));
app.use(methodOverride('X-HTTP-Method-Override'));
app.use(methodOverride((req) => {
  if (req.body && typeof req.body === 'object' && typeof req.body._method === 'string') {
    return req.body._method;
  }
  return undefined;
}));
app.use(methodOverride('_method'));

function pairs(raw) {
  const out = [];
  for (let i = 0; i + 1 < raw.length; i += 2) out.push([raw[i], raw[i + 1]]);
  return out;
}

function record(handler) {
  return (req, res) => {
    const rec = {
      stack: 'express',
      handler,
      method: req.method,
      wire_method: req.originalMethod,
      path: req.path,
      route: req.route ? String(req.route.path) : null,
      uri: req.originalUrl,
      diff_id: req.get('x-diff-id') || null,
      identity: { user: req.get('user_id') ?? null, group: req.get('group_id') ?? null },
      headers: pairs(req.rawHeaders),
      vars: Object.fromEntries(Object.entries(req.headers).map(([k, v]) => [k, String(v)])),
    };
    fs.appendFileSync(recordFile, JSON.stringify(rec) + '\n');
    res.json({ stack: 'express', handler });
  };
}

app.all(['/pub/secret', '/pub/secret/*'], record('protected'));
app.all('/pub/*', record('public'));

const server = app.listen(Number(port), '127.0.0.1', () => {
  console.log(`express listening on 127.0.0.1:${port}`);
});
// The gateway keeps idle upstream connections; keep ours open longer than its affinity timeout.
server.keepAliveTimeout = 65000;
