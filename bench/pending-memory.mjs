// Memory of 100,000 pending logins (and sessions) in the in-memory stores, and put+take ops/s of
// the memory and Redis pending-login stores. Run with `node bench/pending-memory.mjs` after
// `npx nest build` (it re-runs itself with --expose-gc). Needs Redis at 127.0.0.1:6379.
import { spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

if (typeof globalThis.gc !== 'function') {
  const r = spawnSync(process.execPath, ['--expose-gc', fileURLToPath(import.meta.url)], {
    stdio: 'inherit',
  });
  process.exit(r.status ?? 1);
}

const { Redis } = await import('ioredis');
const {
  MemoryPendingLoginStore,
  MemorySessionStore,
  RedisPendingLoginStore,
  RedisSessionStore,
  StoreRecordSealer,
} = await import('@duo-nest/core');
// The Redis stores seal every record with a key shared by all instances (the session secret's).
const sealer = new StoreRecordSealer('bench-session-secret-0123456789abcdefghijkl');

const N = 100_000;
const DURATION_MS = Number(process.env.BENCH_MS ?? 2000);
const MB = 1024 * 1024;
const b64 = (n) => randomBytes(n).toString('base64url');

// Every field a fresh string, as when parsed from a request (shared literals would flatter us).
function login(i, now) {
  return {
    state: b64(32),
    nonce: b64(32),
    username: `user${i}@example.org`,
    returnTo: `/result?item=${i}`,
    bindingHash: createHash('sha256').update(b64(32)).digest('base64url'),
    createdAt: now,
    expiresAt: now + 300_000,
    clientIp: `203.0.${(i >> 8) & 255}.${i & 255}`,
    userAgent: `Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 #${i}`,
    correlationId: b64(16),
  };
}

function heapUsed() {
  globalThis.gc();
  globalThis.gc();
  return process.memoryUsage().heapUsed;
}

async function measureHeap(fill) {
  const before = heapUsed();
  const keep = await fill();
  const after = heapUsed();
  const bytes = after - before;
  keep.length; // the store stays reachable until measured
  return { mb: Number((bytes / MB).toFixed(1)), bytesPerEntry: Math.round(bytes / N) };
}

const now = Date.now();
const pendingHeap = await measureHeap(async () => {
  const store = new MemoryPendingLoginStore({ maxEntries: 200_000 });
  for (let i = 0; i < N; i++) await store.put(login(i, now), now);
  if ((await store.count()) !== N) throw new Error('pending count mismatch');
  return [store];
});
const sessionHeap = await measureHeap(async () => {
  const store = new MemorySessionStore({ maxEntries: 200_000 });
  for (let i = 0; i < N; i++) {
    await store.create(
      {
        username: `user${i}@example.org`,
        mfa: true,
        failOpen: false,
        txid: b64(18),
        factor: 'duo_push',
        authTime: Math.floor(now / 1000),
        groups: ['staff'],
        application: 'DIABCDEFGHIJ12345678',
        applications: { default: Math.floor(now / 1000) },
        duoResult: 'allow',
        duoReason: 'user_approved',
        clientIp: '198.51.100.7',
        userAgent: 'Mozilla/5.0 (X11; Linux x86_64) bench',
        data: { csrf: b64(32) },
      },
      now,
    );
  }
  return [store];
});

async function rate(fn, concurrency = 1) {
  for (let i = 0; i < 200; i++) await fn(); // warm-up
  let n = 0;
  const start = performance.now();
  while (performance.now() - start < DURATION_MS) {
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        for (let i = 0; i < 50; i++) await fn();
      }),
    );
    n += 50 * concurrency;
  }
  return Math.round((n * 1000) / (performance.now() - start));
}

function putTake(store) {
  let i = 0;
  return async () => {
    const l = login(i++, now);
    await store.put(l, now);
    const r = await store.take(l.state, now);
    if (r.status !== 'ok') throw new Error(`take answered ${r.status}`);
  };
}

const prefix = `bench:duo:${b64(6)}:`;
const redis = new Redis({ host: '127.0.0.1', port: 6379, lazyConnect: false });
let ops;
try {
  const memStore = new MemoryPendingLoginStore({ maxEntries: 200_000 });
  const redisStore = new RedisPendingLoginStore(redis, { prefix: `${prefix}p:`, sealer });
  const sessions = new RedisSessionStore(redis, { prefix: `${prefix}s:`, sealer });
  const memSessions = new MemorySessionStore();
  const make = (s) => () =>
    s.create(
      {
        username: 'alice',
        mfa: true,
        failOpen: false,
        groups: [],
        application: 'DIABCDEFGHIJ12345678',
        data: {},
      },
      now,
    );
  const redisSession = await make(sessions)();
  const memSession = await make(memSessions)();
  ops = {
    memoryPutTake: await rate(putTake(memStore)),
    redisPutTakeSerial: await rate(putTake(redisStore)),
    redisPutTake32Concurrent: await rate(putTake(redisStore), 32),
    memorySessionGet: await rate(() => memSessions.get(memSession.id, now)),
    redisSessionGetSerial: await rate(() => sessions.get(redisSession.id, now)),
    redisSessionGet32Concurrent: await rate(() => sessions.get(redisSession.id, now), 32),
  };
} finally {
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
    cursor = next;
    if (keys.length > 0) await redis.del(...keys);
  } while (cursor !== '0');
  await redis.quit();
}

console.log(
  'stores bench: heap of %d entries (node --expose-gc), ops/s over %d ms each',
  N,
  DURATION_MS,
);
console.table({
  'pending logins (memory)': {
    heapMB: pendingHeap.mb,
    bytesPerEntry: pendingHeap.bytesPerEntry,
    target: '< 100 MB',
  },
  'sessions (memory)': {
    heapMB: sessionHeap.mb,
    bytesPerEntry: sessionHeap.bytesPerEntry,
    target: '-',
  },
});
console.table(Object.fromEntries(Object.entries(ops).map(([k, v]) => [k, { 'ops/s': v }])));
writeFileSync(
  new URL('./results-stores.json', import.meta.url),
  JSON.stringify(
    {
      node: process.version,
      entries: N,
      durationMs: DURATION_MS,
      heap: { pendingLoginsMemory: pendingHeap, sessionsMemory: sessionHeap, targetPendingMB: 100 },
      opsPerSec: ops,
      notes:
        'put+take = one put and one take per op (the memory figure is dominated by generating each login: 4 randomBytes + 1 sha256); Redis on 127.0.0.1, one connection; session get includes the touch check',
    },
    null,
    2,
  ) + '\n',
);
