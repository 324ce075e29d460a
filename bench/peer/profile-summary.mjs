// Where an app's CPU per sign-on goes, from a .cpuprofile (V8's sampling profiler, main thread):
// top functions by self time, top by inclusive time, and a split by area. Each sample counts for
// one area: the leaf-most frame of the app or of a library that a rule below names (so a
// node:crypto HMAC called from duo-cookies counts for sessions/cookies); a stack of Node internals
// only falls back to the first matching generic rule (TLS, then HTTP, crypto, sockets/streams).
// Samples without a JS frame are (program): native work entered from libuv, such as TLS record
// decryption and socket reads; (garbage collector) is the main thread's share of GC.
// Run: node bench/peer/profile-summary.mjs <file.cpuprofile> <sign-ons in the profiled window>
//      [top N] [regex: also list the inclusive time of every function whose label matches]
import { readFileSync } from 'node:fs';

const [file, signOnsArg, topArg, matchArg] = process.argv.slice(2);
if (!file) {
  console.error(
    'usage: node bench/peer/profile-summary.mjs <file.cpuprofile> [signOns] [top] [regex]',
  );
  process.exit(2);
}
const signOns = Number(signOnsArg ?? 0);
const TOP = Number(topArg ?? 30);

/** Library and app rules, tried on each frame from the leaf up; the first hit names the area. */
const SPECIFIC = [
  // Node's HTTP layers bind first, so that a socket write counts for the side that writes it. Ours
  // calls Duo with undici (no node:http frame); the peer with axios over node:https.
  [/node:_http_client|node:https/, 'HTTP client to Duo (node:https, TLS connect)'],
  [
    /node:_http_(server|outgoing|incoming|common)/,
    'Node HTTP server (inbound parse, headers, writes)',
  ],
  [/node:_tls|node:tls|node:internal\/tls/, 'TLS (Node)'],
  [/\/jose\//, 'jose (JWT sign/verify)'],
  [/duo-jwt|duo-id-token|duo\.client\.js/, 'jose (JWT sign/verify)'],
  [/\/undici\//, 'HTTP client to Duo (undici, TLS)'],
  [/\/axios\/|follow-redirects|form-data|proxy-from-env/, 'HTTP client to Duo (axios, TLS)'],
  [
    /duo-http-call|duo-transport|duo-health|duo-circuit-breaker/,
    'HTTP client to Duo (undici, TLS)',
  ],
  [/better-sqlite3|\/typeorm\/|packages\/audit\/|auth-audit|\/database\//, 'audit chain / SQLite'],
  [/\/pino|sonic-boom|thread-stream|on-exit-leak-free|quick-format/, 'pino logging'],
  [/\/helmet\//, 'helmet'],
  [/express-session|uid-safe|random-bytes|cookie-signature/, 'sessions / cookies / CSRF / HMAC'],
  [
    /duo-session|duo-cookies|duo-csrf|core\/dist\/stores\/|\/cookie\//,
    'sessions / cookies / CSRF / HMAC',
  ],
  [/duo-rate-limiter|duo-sign-on-protection/, 'caps (rate limits)'],
  [/duo-pages|duo-i18n|duo-text-policy|auth\.pages|auth\.i18n|duo-example-app/, 'page rendering'],
  [/prom-client|\/metrics\//, 'metrics (prom-client)'],
  [/\/@duosecurity\//, 'Duo SDK (own code)'],
  [/packages\/core\/dist\/|passport/, 'duo-nest flow (other core code)'],
  [/dist\/src\//, 'reference app (other)'],
  [/bench\/app-server/, 'bench harness (ALS timing)'],
  [/\/@nestjs\/|\/rxjs\/|reflect-metadata/, 'Nest routing / DI / pipeline'],
  [
    /\/express\/|\/router\/|body-parser|finalhandler|serve-static|\/send\/|\/qs\/|raw-body|iconv-lite|type-is|content-type|on-finished|path-to-regexp|parseurl|\/debug\//,
    'Express routing / body parsing',
  ],
];

/** Node internals, tried in this order over the whole stack when no rule above matched. */
const GENERIC = [
  [/node:internal\/crypto|node:crypto/, 'crypto (Node, no library frame)'],
  [/node:net|stream|node:internal\/stream_base/, 'sockets / streams'],
  [/^node:/, 'other Node internals (timers, events, async_hooks, ...)'],
];

const profile = JSON.parse(readFileSync(file, 'utf8'));
const nodes = new Map(profile.nodes.map((n) => [n.id, n]));
const parent = new Map();
for (const n of profile.nodes) {
  for (const c of n.children ?? []) {
    parent.set(c, n.id);
  }
}

const label = (cf) => {
  const url = cf.url.replace(/^file:\/\/\/work\/main\//, '').replace(/^.*node_modules\//, '');
  return `${cf.functionName || '(anonymous)'} ${url ? `${url}:${cf.lineNumber + 1}` : ''}`.trim();
};

function areaOf(id) {
  const special = nodes.get(id).callFrame.functionName;
  if (special === '(garbage collector)') {
    return 'GC (main thread share)';
  }
  if (special === '(program)') {
    return '(program): native without a JS frame (TLS records, libuv, sockets)';
  }
  const urls = [];
  for (let at = id; at !== undefined; at = parent.get(at)) {
    urls.push(nodes.get(at).callFrame.url);
  }
  for (const url of urls) {
    for (const [re, area] of SPECIFIC) {
      if (re.test(url)) {
        return area;
      }
    }
  }
  for (const [re, area] of GENERIC) {
    if (urls.some((u) => re.test(u))) {
      return area;
    }
  }
  return 'other JS (built-ins without a caller rule)';
}

/** The script of the leaf-most frame that has one (built-ins and native count for their caller). */
function fileOf(id) {
  for (let at = id; at !== undefined; at = parent.get(at)) {
    const url = nodes.get(at).callFrame.url;
    if (url) {
      return url.replace(/^file:\/\/\/work\/main\//, '').replace(/^.*node_modules\//, '');
    }
  }
  return nodes.get(id).callFrame.functionName;
}

const self = new Map();
const files = new Map();
const inclusive = new Map();
const areas = new Map();
let total = 0;
let idle = 0;
const add = (map, key, ms) => map.set(key, (map.get(key) ?? 0) + ms);
profile.samples.forEach((id, i) => {
  // timeDeltas[i] is the time before sample i; the time after it is the better estimate.
  const ms = (profile.timeDeltas[i + 1] ?? profile.timeDeltas[i]) / 1000;
  const cf = nodes.get(id).callFrame;
  if (cf.functionName === '(idle)') {
    idle += ms;
    return;
  }
  total += ms;
  add(self, label(cf), ms);
  add(areas, areaOf(id), ms);
  add(files, fileOf(id), ms);
  const seen = new Set();
  for (let at = id; at !== undefined; at = parent.get(at)) {
    const key = label(nodes.get(at).callFrame);
    if (!seen.has(key)) {
      seen.add(key);
      add(inclusive, key, ms);
    }
  }
});

const per = (ms) => (signOns > 0 ? `${((ms * 1000) / signOns).toFixed(0).padStart(6)} µs` : '');
const pct = (ms) => `${((100 * ms) / total).toFixed(1).padStart(5)}%`;
const print = (title, map, n) => {
  console.log(`\n${title}`);
  for (const [k, ms] of [...map].sort((a, b) => b[1] - a[1]).slice(0, n)) {
    console.log(`${per(ms)} ${pct(ms)}  ${k}`);
  }
};

const wall = (profile.endTime - profile.startTime) / 1e6;
console.log(
  `${file}: ${wall.toFixed(2)} s profiled, ${(total / 1000).toFixed(2)} s busy on the main thread, ` +
    `${(idle / 1000).toFixed(2)} s idle${signOns ? `, ${signOns} sign-ons: ${per(total).trim()} busy each` : ''}`,
);
print('By area (µs per sign-on, share of main-thread busy time)', areas, 100);
print(
  `Top ${TOP} scripts (self time, built-ins and native calls counted for their caller)`,
  files,
  TOP,
);
print(`Top ${TOP} by self time`, self, TOP);
print(`Top ${TOP} by inclusive time`, inclusive, TOP);
if (matchArg) {
  const re = new RegExp(matchArg);
  print(
    `Inclusive time of functions matching /${matchArg}/`,
    new Map([...inclusive].filter(([k]) => re.test(k))),
    Infinity,
  );
}
