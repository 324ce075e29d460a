// (b) A guarded route vs the same route public, with memory and with Redis sessions (autocannon).
// The app runs in its own process (bench/app-server.mjs, from dist/); autocannon runs here with a
// session cookie obtained by a real sign-on through the simulator in auto mode.
// On 2+ cores, autocannon (this process) and the app are pinned to different CPUs, and the app's own
// CPU per request is read from /proc next to the throughput.
// Run: npx nest build && node bench/guarded.mjs    (Redis at 127.0.0.1:6379)
import { writeFileSync } from 'node:fs';
import autocannon from 'autocannon';
import { startSimulator } from '@duo-nest/simulator';
import {
  appEnv,
  Browser,
  cpuSeconds,
  freePort,
  pinToCpu,
  REDIS_URL,
  round,
  signOn,
  startAppProcess,
} from './lib.mjs';

const ROUNDS = Number(process.env.BENCH_GUARDED_ROUNDS ?? 6);
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
async function compare(app, cookie, label) {
  await cannon(`${app.url}/bench/public`, cookie, 1);
  await cannon(`${app.url}/bench/guarded`, cookie, 1);
  const sum = {
    public: { n: 0, s: 0, cpu: 0, p99: [] },
    guarded: { n: 0, s: 0, cpu: 0, p99: [] },
  };
  for (let r = 0; r < ROUNDS; r++) {
    for (const route of r % 2 === 0 ? ['public', 'guarded'] : ['guarded', 'public']) {
      const cpu0 = cpuSeconds(app.pid);
      const res = await cannon(`${app.url}/bench/${route}`, cookie, ROUND_S);
      sum[route].cpu += cpuSeconds(app.pid) - cpu0;
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
  const cpuUs = (route) => (sum[route].cpu * 1e6) / sum[route].n;
  return {
    publicRps: round(pub, 0),
    guardedRps: round(guarded, 0),
    ratio: round(guarded / pub, 3),
    publicP99Ms: Math.max(...sum.public.p99),
    guardedP99Ms: Math.max(...sum.guarded.p99),
    appCpuUsPerRequest: { public: round(cpuUs('public'), 0), guarded: round(cpuUs('guarded'), 0) },
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
  const pinned = pinToCpu(process.pid, 0) && pinToCpu(app.pid, 1);
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
    return { ...(await compare(app, cookie, label)), pinned };
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
  note: 'app in its own process, autocannon in this one (on different CPUs when pinned); same handler, same cookie; guarded = MfaGuard session lookup (memory or Redis); public and guarded rounds alternate; appCpuUsPerRequest from /proc',
};
console.log(
  'guarded vs public route (requests/s, %d connections, %d alternating rounds of %d s)',
  CONNECTIONS,
  ROUNDS,
  ROUND_S,
);
const row = ({ appCpuUsPerRequest: cpu, ...r }, target) => ({
  ...r,
  'app µs/req public': cpu.public,
  'app µs/req guarded': cpu.guarded,
  target,
});
console.table({ memory: row(results.memory, '>= 0.85x'), redis: row(results.redis, '>= 0.6x') });
writeFileSync(
  new URL('./results-guarded.json', import.meta.url),
  `${JSON.stringify(results, null, 2)}\n`,
);
