// (b) and (f): what a guarded route costs the app, in app CPU per request of one handler.
// - (f) what adopting duo-nest costs: a bare Nest 12 app on the same Express adapter with no
//   duo-nest (bench/adoption-app.mjs, BENCH_APP=bare) against the same app after adopting duo-nest
//   as the README shows (BENCH_APP=adopter): its public route (@SkipMfa) and its guarded route
//   (global MfaGuard), with memory sessions and with Redis sessions.
// - (b) the reference app (bench/app-server.mjs: helmet-style headers, access log, CSRF, metrics,
//   audit) with the same handler public and guarded, memory and Redis sessions.
// Every app runs in its own process pinned to CPU 1 (autocannon, here, on CPU 0), and all are up
// at once: the rounds rotate over every (app, route) pair, so a busy machine weighs on all alike.
// The session cookie comes from a real sign-on through the simulator in auto mode.
// Run: npm run build && node bench/guarded.mjs    (Redis at 127.0.0.1:6379)
import { writeFileSync } from 'node:fs';
import autocannon from 'autocannon';
import { startSimulator } from '@duo-nest/simulator';
import {
  appEnv,
  Browser,
  cpuSeconds,
  freePort,
  percentile,
  pinToCpu,
  REDIS_URL,
  round,
  signOn,
  startAppProcess,
} from './lib.mjs';

const ROUNDS = Number(process.env.BENCH_GUARDED_ROUNDS ?? 8);
const ROUND_S = Number(process.env.BENCH_GUARDED_S ?? 2);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 16);

function cannon(url, cookie, duration) {
  return new Promise((resolve, reject) => {
    autocannon(
      { url, connections: CONNECTIONS, duration, headers: { cookie, accept: 'application/json' } },
      (err, result) => (err ? reject(err) : resolve(result)),
    );
  });
}

const sim = await startSimulator({ port: 0, auto: 'allow' });
const redisEnv = (name) => ({
  REDIS_URL,
  REDIS_KEY_PREFIX: `bench-guarded-${process.pid}-${name}:`,
});

/** Starts one app, signs on when it has a guarded route, checks the cookie opens it. */
async function start(name, script, env, guarded) {
  const app = await startAppProcess(env, script);
  let cookie = '';
  if (guarded) {
    const browser = new Browser();
    await signOn(browser, app.url, 'alice');
    cookie = [...browser.cookies].map(([k, v]) => `${k}=${v}`).join('; ');
    const check = await browser.fetch('GET', `${app.url}/bench/guarded`, {
      headers: { accept: 'application/json' },
    });
    if (check.status !== 200) {
      throw new Error(
        `${name}: the guarded route answered ${check.status} with the session cookie`,
      );
    }
  }
  const pinned = pinToCpu(app.pid, 1);
  return { name, app, cookie, pinned };
}

/** The app env of one process: its own port, so its public URL is known before it starts. */
async function envFor(extra) {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  return { ...appEnv(sim, url, extra), PORT: String(port) };
}

/** [name, script, env, has a guarded route] of each app process. */
const APPS = [
  ['bare', './adoption-app.mjs', { BENCH_APP: 'bare' }, false],
  ['adopterMemory', './adoption-app.mjs', { BENCH_APP: 'adopter' }, true],
  ['adopterRedis', './adoption-app.mjs', { BENCH_APP: 'adopter', ...redisEnv('adopter') }, true],
  ['referenceMemory', './app-server.mjs', {}, true],
  ['referenceRedis', './app-server.mjs', redisEnv('reference'), true],
];
const apps = {};
pinToCpu(process.pid, 0);

/** [label, app, route] in rotation order. */
const PAIRS = [
  ['bare', 'bare', 'public'],
  ['adopter public (memory)', 'adopterMemory', 'public'],
  ['adopter guarded (memory)', 'adopterMemory', 'guarded'],
  ['adopter public (Redis)', 'adopterRedis', 'public'],
  ['adopter guarded (Redis)', 'adopterRedis', 'guarded'],
  ['reference public (memory)', 'referenceMemory', 'public'],
  ['reference guarded (memory)', 'referenceMemory', 'guarded'],
  ['reference public (Redis)', 'referenceRedis', 'public'],
  ['reference guarded (Redis)', 'referenceRedis', 'guarded'],
];

const sums = Object.fromEntries(
  PAIRS.map(([label]) => [label, { n: 0, s: 0, cpu: 0, p99: [], usPerRound: [] }]),
);
try {
  for (const [name, script, extra, guarded] of APPS) {
    apps[name] = await start(name, script, await envFor(extra), guarded);
  }
  for (const [, name, route] of PAIRS) {
    await cannon(`${apps[name].app.url}/bench/${route}`, apps[name].cookie, 1); // warm-up
  }
  for (let r = 0; r < ROUNDS; r++) {
    const order = PAIRS.map((_, i) => PAIRS[(i + r) % PAIRS.length]);
    for (const [label, name, route] of r % 2 === 0 ? order : order.reverse()) {
      const { app, cookie } = apps[name];
      const cpu0 = cpuSeconds(app.pid);
      const res = await cannon(`${app.url}/bench/${route}`, cookie, ROUND_S);
      const cpu = cpuSeconds(app.pid) - cpu0;
      sums[label].cpu += cpu;
      if (res.non2xx > 0 || res.errors > 0) {
        throw new Error(`${label}: ${res.non2xx} non-2xx answers, ${res.errors} errors`);
      }
      sums[label].n += res.requests.total;
      sums[label].usPerRound.push((cpu * 1e6) / res.requests.total);
      sums[label].s += res.duration;
      sums[label].p99.push(res.latency.p99);
    }
  }
} finally {
  await Promise.all(Object.values(apps).map((a) => a.app.stop()));
  await sim.close();
}

const fig = (label) => {
  const s = sums[label];
  return {
    rps: round(s.n / s.s, 0),
    appCpuUsPerRequest: round((s.cpu * 1e6) / s.n, 1),
    p99Ms: Math.max(...s.p99),
    usPerRound: s.usPerRound.map((v) => round(v, 1)),
  };
};
const figures = Object.fromEntries(PAIRS.map(([label]) => [label, fig(label)]));
const us = (label) => figures[label].appCpuUsPerRequest;
// Over the bare app: the median of the per-round ratios (each round measures every pair within a
// minute or so), which a machine whose speed drifts between rounds moves far less than the sums.
const overBare = (label) =>
  round(
    percentile(
      sums[label].usPerRound.map((v, r) => v / sums.bare.usPerRound[r]),
      50,
    ),
    3,
  );
const bareUs = us('bare');
const reference = (kind) => {
  const pub = figures[`reference public (${kind})`];
  const guarded = figures[`reference guarded (${kind})`];
  return {
    publicRps: pub.rps,
    guardedRps: guarded.rps,
    ratio: round(guarded.rps / pub.rps, 3),
    publicP99Ms: pub.p99Ms,
    guardedP99Ms: guarded.p99Ms,
    appCpuUsPerRequest: { public: pub.appCpuUsPerRequest, guarded: guarded.appCpuUsPerRequest },
    cpuOverBare: {
      public: overBare(`reference public (${kind})`),
      guarded: overBare(`reference guarded (${kind})`),
    },
  };
};
const results = {
  node: process.version,
  connections: CONNECTIONS,
  rounds: ROUNDS,
  roundS: ROUND_S,
  pinned: Object.values(apps).every((a) => a.pinned),
  // (f): app CPU µs per request of the same handler, and each over the bare app's.
  adoption: {
    bareUs,
    memory: {
      publicUs: us('adopter public (memory)'),
      guardedUs: us('adopter guarded (memory)'),
      publicOverBare: overBare('adopter public (memory)'),
      guardedOverBare: overBare('adopter guarded (memory)'),
    },
    redis: {
      publicUs: us('adopter public (Redis)'),
      guardedUs: us('adopter guarded (Redis)'),
      publicOverBare: overBare('adopter public (Redis)'),
      guardedOverBare: overBare('adopter guarded (Redis)'),
    },
  },
  // (b): the reference app, guarded over public in requests/s (and each route's CPU over bare).
  memory: reference('memory'),
  redis: reference('Redis'),
  figures,
  note: 'each app in its own process pinned to CPU 1, autocannon on CPU 0; the same handler everywhere; rounds rotate over every (app, route) pair; app CPU from /proc',
};
console.log(
  'app CPU per request of one handler (%d connections, %d rotating rounds of %d s per route)',
  CONNECTIONS,
  ROUNDS,
  ROUND_S,
);
console.table(
  Object.fromEntries(
    PAIRS.map(([label]) => [
      label,
      {
        'req/s': figures[label].rps,
        'app µs/req': figures[label].appCpuUsPerRequest,
        'x bare': overBare(label),
        'p99 ms': figures[label].p99Ms,
      },
    ]),
  ),
);
writeFileSync(
  new URL('./results-guarded.json', import.meta.url),
  `${JSON.stringify(results, null, 2)}\n`,
);
process.exit(0);
