// (b) A guarded route vs the same route public, with memory and with Redis sessions (autocannon).
// The app runs in its own process (bench/app-server.mjs, from dist/); autocannon runs here with a
// session cookie obtained by a real sign-on through the simulator in auto mode.
// Run: npx nest build && node bench/guarded.mjs    (Redis at 127.0.0.1:6379)
import { writeFileSync } from 'node:fs';
import autocannon from 'autocannon';
import { startSimulator } from '../dist/src/simulator/index.js';
import { appEnv, Browser, freePort, REDIS_URL, round, signOn, startAppProcess } from './lib.mjs';

const ROUNDS = Number(process.env.BENCH_GUARDED_ROUNDS ?? 3);
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

/** Alternates public and guarded rounds (a busy machine then weighs on both alike). */
async function compare(appUrl, cookie, label) {
  await cannon(`${appUrl}/bench/public`, cookie, 1);
  await cannon(`${appUrl}/bench/guarded`, cookie, 1);
  const sum = { public: { n: 0, s: 0, p99: [] }, guarded: { n: 0, s: 0, p99: [] } };
  for (let r = 0; r < ROUNDS; r++) {
    for (const route of r % 2 === 0 ? ['public', 'guarded'] : ['guarded', 'public']) {
      const res = await cannon(`${appUrl}/bench/${route}`, cookie, ROUND_S);
      if (res.non2xx > 0 || res.errors > 0) {
        throw new Error(`${label} ${route}: ${res.non2xx} non-2xx answers, ${res.errors} errors`);
      }
      sum[route].n += res.requests.total;
      sum[route].s += res.duration;
      sum[route].p99.push(res.latency.p99);
    }
  }
  const pub = sum.public.n / sum.public.s;
  const guarded = sum.guarded.n / sum.guarded.s;
  return {
    publicRps: round(pub, 0),
    guardedRps: round(guarded, 0),
    ratio: round(guarded / pub, 3),
    publicP99Ms: Math.max(...sum.public.p99),
    guardedP99Ms: Math.max(...sum.guarded.p99),
  };
}

async function measure(label, extraEnv) {
  const sim = await startSimulator({ port: 0, auto: 'allow' });
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const app = await startAppProcess({
    ...appEnv(sim, url, { PORT: String(port), ...extraEnv }),
    PORT: String(port),
  });
  try {
    const browser = new Browser();
    await signOn(browser, app.url, 'alice');
    const cookie = [...browser.cookies].map(([k, v]) => `${k}=${v}`).join('; ');
    const check = await browser.fetch('GET', `${app.url}/bench/guarded`, {
      headers: { accept: 'application/json' },
    });
    if (check.status !== 200) {
      throw new Error(`the guarded route answered ${check.status} with the session cookie`);
    }
    return await compare(app.url, cookie, label);
  } finally {
    await app.stop();
    await sim.close();
  }
}

const results = {
  node: process.version,
  connections: CONNECTIONS,
  rounds: ROUNDS,
  roundS: ROUND_S,
  memory: await measure('memory', {}),
  redis: await measure('redis', { REDIS_URL, REDIS_KEY_PREFIX: `bench-guarded-${process.pid}:` }),
  note: 'app in its own process, autocannon in this one; same handler, same cookie; guarded = MfaGuard session lookup (memory or Redis); public and guarded rounds alternate',
};
console.log(
  'guarded vs public route (requests/s, %d connections, %d alternating rounds of %d s)',
  CONNECTIONS,
  ROUNDS,
  ROUND_S,
);
console.table({
  memory: { ...results.memory, target: '>= 0.85x' },
  redis: { ...results.redis, target: '>= 0.6x' },
});
writeFileSync(
  new URL('./results-guarded.json', import.meta.url),
  `${JSON.stringify(results, null, 2)}\n`,
);
