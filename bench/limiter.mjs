// The rate limiter's cost per hit at 1,000, 100,000 and 1,000,000 live keys: the attack case of
// a flood of fresh keys into a memory store that is full of live windows (each hit evicts one),
// through RateLimiter.check (key hashing included) and the store alone; median µs of several
// rounds of CPU time. Redis (RedisRateLimitStore, one round trip per hit) at 1,000 and 100,000 keys for context.
// Writes bench/results-limiter.json (BENCH_LIMITER_OUT to write elsewhere).
//
// Runs over compiled code: packages/core/dist after `npm run build`, or any other build of the core
// package through BENCH_LIMITER_DIST, e.g. a private one that leaves packages/core/dist alone:
//   npx tsc -p packages/core --outDir /tmp/bench-core-dist --tsBuildInfoFile /tmp/bench-core.tsbuildinfo
//   BENCH_LIMITER_DIST=/tmp/bench-core-dist node bench/limiter.mjs
// (the directory holding src/duo/internal.js). BENCH_LIMITER_SIZES (comma-separated) and
// BENCH_LIMITER_REDIS=0 shorten a run. Needs Redis at 127.0.0.1:6379 unless BENCH_LIMITER_REDIS=0.
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath, pathToFileURL } from 'node:url';

const here = (f) => fileURLToPath(new URL(f, import.meta.url));
const dist = resolve(process.env.BENCH_LIMITER_DIST ?? here('../packages/core/dist'));
const { MemoryRateLimitStore, RedisRateLimitStore } = await import(
  pathToFileURL(`${dist}/index.js`).href
);
const { RateLimiter } = await import(pathToFileURL(`${dist}/internal.js`).href);

const SIZES = (process.env.BENCH_LIMITER_SIZES ?? '1000,100000,1000000').split(',').map(Number);
const ROUNDS = 7;
const ROUND_MS = 300; // each round: as many hits as fit (at least 5), after one warm-up round
const WINDOW_MS = 600_000; // every window stays live through the run
const rule = { name: 'login_ip', limit: 100, windowMs: WINDOW_MS };
// Keys in the limiter's own shape: rule name and 32 base64url characters.
const key = (prefix, i) => `login_ip:${prefix}${i.toString(36).padStart(32 - prefix.length, '0')}`;
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const round2 = (x) => Math.round(x * 100) / 100;

/** CPU µs of this process (user + system, every thread: GC included). */
const cpuUs = () => {
  const { user, system } = process.cpuUsage();
  return user + system;
};

/**
 * Median µs per call of `hit(i)` over ROUNDS rounds (after one warm-up round), each on fresh i:
 * CPU time of the process, so other load on a shared machine does not count (wall time is kept
 * too). Redis's own CPU is not in it: the Redis figures are wall time.
 */
async function perHitUs(hit, { wall = false } = {}) {
  let i = 0;
  const perRound = [];
  const wallRound = [];
  for (let r = 0; r <= ROUNDS; r++) {
    const t0 = performance.now();
    const c0 = cpuUs();
    let n = 0;
    while (n < 5 || performance.now() - t0 < ROUND_MS) {
      await hit(i++);
      n++;
    }
    if (r > 0) {
      perRound.push((cpuUs() - c0) / n);
      wallRound.push(((performance.now() - t0) * 1000) / n);
    }
  }
  const rounds = wall ? wallRound : perRound;
  return {
    us: round2(median(rounds)),
    wallUs: round2(median(wallRound)),
    rounds: rounds.map(round2),
    hits: i,
  };
}

/** A memory store holding `size` live windows at its cap of `size`. */
async function fullMemoryStore(size) {
  const store = new MemoryRateLimitStore(size);
  for (let i = 0; i < size; i++) {
    await store.hit(key('f', i), WINDOW_MS);
  }
  return store;
}

const memory = {};
for (const size of SIZES) {
  const t0 = performance.now();
  // Two stores, so the second measurement again starts from `size` live keys of the fill.
  let store = await fullMemoryStore(size);
  const fillSeconds = round2((performance.now() - t0) / 1000);
  const limiter = new RateLimiter(store);
  const check = await perHitUs((i) => limiter.check(rule, `subject-${size}-${i}`));
  const liveAfterCheck = store.size;
  store = await fullMemoryStore(size);
  const storeHit = await perHitUs((i) => store.hit(key('n', i), WINDOW_MS));
  const keysAfter = Math.max(liveAfterCheck, store.size);
  store = undefined;
  // The floor any map-based store pays at this size: a bare Map of `size` entries, one set and
  // one delete (of the oldest, known by index) per hit. What is above it is the store's own work.
  const bare = new Map();
  for (let i = 0; i < size; i++) {
    bare.set(key('f', i), { count: 1, resetAt: WINDOW_MS });
  }
  const bareMap = await perHitUs((i) => {
    bare.set(key('n', i), { count: 1, resetAt: WINDOW_MS });
    bare.delete(i < size ? key('f', i) : key('n', i - size));
  });
  bare.clear();
  memory[size] = {
    bareMapUs: bareMap.us,
    checkUs: check.us,
    storeHitUs: storeHit.us,
    checkWallUs: check.wallUs,
    storeHitWallUs: storeHit.wallUs,
    checkRoundsUs: check.rounds,
    storeHitRoundsUs: storeHit.rounds,
    keysAfter,
    fillSeconds,
  };
  console.log(
    `memory, ${size.toLocaleString('en')} live keys (full): check ${check.us} µs/hit, store.hit ${storeHit.us} µs/hit, bare Map set+delete ${bareMap.us} µs (${check.hits}, ${storeHit.hits} hits; fill ${fillSeconds} s)`,
  );
}

let redis = null;
if (process.env.BENCH_LIMITER_REDIS !== '0') {
  const { Redis } = await import('ioredis');
  const url = process.env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379';
  const client = new Redis(url);
  const prefix = `bench:limiter:${randomBytes(6).toString('hex')}:`;
  const store = new RedisRateLimitStore(client, prefix);
  const limiter = new RateLimiter(store);
  redis = {};
  let filled = 0;
  try {
    for (const size of SIZES.filter((s) => s <= 100_000)) {
      while (filled < size) {
        const pipe = client.pipeline();
        const upto = Math.min(size, filled + 10_000);
        for (; filled < upto; filled++) {
          pipe.set(`${prefix}${key('f', filled)}`, '1', 'PX', WINDOW_MS);
        }
        await pipe.exec();
      }
      const check = await perHitUs((i) => limiter.check(rule, `subject-${size}-${i}`), {
        wall: true,
      });
      redis[size] = { checkWallUs: check.us, checkRoundsUs: check.rounds };
      console.log(`redis, ${size.toLocaleString('en')} live keys: check ${check.us} µs/hit`);
    }
  } finally {
    let cursor = '0';
    do {
      const [next, keys] = await client.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 10_000);
      cursor = next;
      if (keys.length > 0) {
        await client.unlink(...keys);
      }
    } while (cursor !== '0');
    await client.quit();
  }
}

const lo = Math.min(...SIZES);
const hi = Math.max(...SIZES);
const results = {
  when: new Date().toISOString(),
  node: process.version,
  dist,
  case: 'memory store full of live windows (cap = live keys), every hit a fresh key',
  memory,
  redis,
  flat: {
    sizes: [lo, hi],
    checkRatio: round2(memory[hi].checkUs / memory[lo].checkUs),
    storeHitRatio: round2(memory[hi].storeHitUs / memory[lo].storeHitUs),
    bareMapRatio: round2(memory[hi].bareMapUs / memory[lo].bareMapUs),
    storeOverBareMap: Object.fromEntries(
      SIZES.map((n) => [n, round2(memory[n].storeHitUs / memory[n].bareMapUs)]),
    ),
  },
};
const out = process.env.BENCH_LIMITER_OUT ?? here('results-limiter.json');
writeFileSync(out, `${JSON.stringify(results, null, 2)}\n`);
console.log(
  `cost per hit ${hi.toLocaleString('en')} / ${lo.toLocaleString('en')} keys: check ${results.flat.checkRatio}x, store.hit ${results.flat.storeHitRatio}x, bare Map ${results.flat.bareMapRatio}x → ${out}`,
);
