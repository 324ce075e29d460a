// (h) Scale-out as work, not time: 1, 2 and 3 app processes behind the round-robin proxy share one
// Redis and one PostgreSQL database, and a fixed number of sign-ons at a paced rate is counted in
// the shared work it causes, per sign-on: Redis commands by type (INFO commandstats of a private
// redis-server), Redis and PostgreSQL round trips and SQL statements by kind (counted inside each
// app process, bench/io-count.mjs, BENCH_COUNT_IO=1), transactions and rows (pg_stat_database of the
// bench's own fresh database). Two cores cannot show scale-out in time; the work per sign-on should
// be the same at every N, except the audit chain-head retries (one-statement appends that lost the
// head to another instance, and the lock-first fallbacks after them), reported with their rate.
// The timers' Redis work (the Duo health probe's lease and shared answer, the abandoned-login
// sweep: per interval and instance, not per sign-on) is told apart by key on the client side,
// taken off the per sign-on figures and reported per second, measured alone in an idle window too.
// Checks: no failed sign-on, audit rows = sign-ons x events per sign-on, none spooled, the server's
// rows and transactions = the clients' counts, and one build for all N (others rebuild dist/).
// Sign-ons per app CPU-second are information only (2 shared cores).
// Run: npm run build && node bench/shared-work.mjs     (PostgreSQL on 127.0.0.1; redis-server in PATH)
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import pg from 'pg';
import { startSimulator } from '@duo-nest/simulator';
import {
  appEnv,
  Browser,
  cpuSeconds,
  createPgDatabase,
  freePort,
  percentile,
  PG_ADMIN_URL,
  round,
  signOn,
  signOnLoad,
  sleep,
  startInstances,
} from './lib.mjs';

const SIGN_ONS = Number(process.env.BENCH_SHARED_SIGNONS ?? 600);
const RATE = Number(process.env.BENCH_SHARED_RATE ?? 40);
const CONCURRENCY = Number(process.env.BENCH_SHARED_CONCURRENCY ?? 8);
// Unpaced sign-ons this long per instance first (JIT, pools, script cache), as in signons.mjs (d).
const WARMUP_MS = Number(process.env.BENCH_SHARED_WARMUP_MS ?? 3000);
const INSTANCES = (process.env.BENCH_SHARED_INSTANCES ?? '1,2,3').split(',').map(Number);
const TOLERANCE = Number(process.env.BENCH_SHARED_TOLERANCE ?? 0.02);
const USERS = 200;
const MEASURED_PREFIX = 'm';
// An idle window as long as the measured run, at least 12 s: PostgreSQL 15 flushes an idle
// backend's pending statistics within 10 s (and pg-pool closes idle connections after 10 s).
const IDLE_MS = Math.max(12_000, (SIGN_ONS / RATE) * 1000);
const LIMIT = '1000000'; // the rate limiter stays on, its Redis work counted, but never refuses

const loadavg = () => readFileSync('/proc/loadavg', 'utf8').trim();

/** A private redis-server, so that INFO commandstats counts this bench alone. */
async function startRedis() {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'duo-nest-redis-'));
  const proc = spawn(
    'redis-server',
    [
      '--port',
      String(port),
      '--bind',
      '127.0.0.1',
      '--save',
      '',
      '--appendonly',
      'no',
      '--dir',
      dir,
    ],
    { stdio: ['ignore', 'ignore', 'inherit'] },
  );
  const url = `redis://127.0.0.1:${port}`;
  const admin = new Redis(url, {
    enableReadyCheck: false,
    lazyConnect: true,
    retryStrategy: () => 100,
  });
  admin.on('error', () => undefined); // refused while redis-server starts: retried below
  for (let i = 0; ; i++) {
    try {
      await admin.connect();
      await admin.ping();
      break;
    } catch (err) {
      if (i > 50) {
        throw err;
      }
      admin.disconnect();
      await sleep(100);
    }
  }
  return {
    url,
    pid: proc.pid,
    resetStats: () => admin.config('RESETSTAT'),
    /** commandstats: { name: { calls, usec } }, without this bench's own INFO and CONFIG. */
    async commandStats() {
      const out = {};
      for (const line of (await admin.info('commandstats')).split('\n')) {
        const m = /^cmdstat_([^:]+):calls=(\d+),usec=(\d+)/.exec(line.trim());
        if (m && m[1] !== 'info' && !m[1].startsWith('config')) {
          out[m[1]] = { calls: Number(m[2]), usec: Number(m[3]) };
        }
      }
      return out;
    },
    async stop() {
      admin.disconnect();
      const exited = new Promise((r) => proc.once('exit', r));
      proc.kill('SIGTERM');
      await Promise.race([exited, sleep(5000)]);
      if (proc.exitCode === null) {
        proc.kill('SIGKILL');
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A fixed number of sign-ons, paced at `rate` per second in all, by `concurrency` browsers. */
async function signOnsFixed(url, { count, rate, concurrency, prefix }) {
  let next = 0;
  let failures = 0;
  const totals = [];
  const t0 = performance.now();
  const worker = async () => {
    const browser = new Browser();
    for (;;) {
      const i = next++;
      if (i >= count) {
        return;
      }
      const wait = t0 + (i * 1000) / rate - performance.now();
      if (wait > 0) {
        await sleep(wait);
      }
      try {
        totals.push((await signOn(browser, url, `${prefix}${i % USERS}`)).totalMs);
      } catch (err) {
        if (++failures === 1) {
          console.error(`  first failure: ${err.message}`);
        }
        browser.cookies.clear();
        browser.csrf = undefined;
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  const seconds = (performance.now() - t0) / 1000;
  return {
    attempted: count,
    signOns: totals.length,
    failures,
    seconds: round(seconds, 2),
    perSecond: round(totals.length / seconds, 1),
    signOnMs: { p50: round(percentile(totals, 50), 2), p99: round(percentile(totals, 99), 2) },
  };
}

const PG_COUNTERS = [
  'xact_commit',
  'xact_rollback',
  'tup_inserted',
  'tup_updated',
  'tup_deleted',
  'tup_fetched',
  'tup_returned',
  'blks_hit',
  'blks_read',
  'sessions',
  'deadlocks',
];

/** pg_stat_database of one database, read from the admin database (so the read is not counted). */
async function pgStats(admin, name) {
  const { rows } = await admin.query(
    `SELECT ${PG_COUNTERS.join(', ')} FROM pg_stat_database WHERE datname = $1`,
    [name],
  );
  return Object.fromEntries(PG_COUNTERS.map((k) => [k, Number(rows[0][k])]));
}

/**
 * Waits until every backend of the database has flushed its statistics: gone (pg-pool closes idle
 * connections after 10 s, and a backend flushes at exit) or idle for over 11 s (PostgreSQL 15
 * flushes an idle backend's pending statistics within 10 s).
 */
async function pgQuiesce(admin, name, maxMs = 30_000) {
  const until = Date.now() + maxMs;
  for (;;) {
    const { rows } = await admin.query(
      `SELECT count(*)::int AS busy FROM pg_stat_activity
        WHERE datname = $1 AND backend_type = 'client backend'
          AND (state <> 'idle' OR state_change > now() - interval '11 seconds')`,
      [name],
    );
    if (rows[0].busy === 0) {
      return true;
    }
    if (Date.now() > until) {
      return false;
    }
    await sleep(500);
  }
}

function diff(after, before) {
  return Object.fromEntries(Object.keys(after).map((k) => [k, after[k] - (before[k] ?? 0)]));
}

/** Sums the client-side counts of the app processes (bench/io-count.mjs). */
function sumIo(list) {
  const add = (into, from) => {
    for (const [k, v] of Object.entries(from)) {
      if (typeof v === 'number') {
        into[k] = (into[k] ?? 0) + v;
      } else {
        add((into[k] ??= {}), v);
      }
    }
    return into;
  };
  return list.reduce((acc, io) => add(acc, io), {});
}

/**
 * Redis commands of the timers (health probe, abandoned-login sweep), by command and in all, as
 * the clients send them and as INFO commandstats counts them: there each sweep (one EVALSHA, or a
 * NOSCRIPT EVALSHA and an EVAL) also runs a ZRANGEBYSCORE inside (nothing expires in this bench).
 */
function background(io) {
  const byName = {};
  let total = 0;
  for (const job of Object.values(io.redis.background)) {
    for (const [name, v] of Object.entries(job)) {
      byName[name] = (byName[name] ?? 0) + v;
      total += v;
    }
  }
  const sweeps = io.redis.background.pendingSweep.evalsha ?? 0;
  const serverByName = { ...byName, zrangebyscore: (byName.zrangebyscore ?? 0) + sweeps };
  return { total, byName, serverTotal: total + sweeps, serverByName };
}

const sum = (o) => Object.values(o ?? {}).reduce((a, b) => a + b, 0);

/** The newest file under a folder of the build (its mtime): tells whether someone rebuilt. */
function newest(dir) {
  let best = { file: '', mtime: 0 };
  for (const entry of readdirSync(dir, { recursive: true, withFileTypes: true })) {
    if (entry.isFile() && entry.name.endsWith('.js')) {
      const file = join(entry.parentPath ?? entry.path, entry.name);
      const mtime = statSync(file).mtimeMs;
      if (mtime > best.mtime) {
        best = { file, mtime };
      }
    }
  }
  return new Date(best.mtime).toISOString();
}

/** Where the build under test came from: the commit, the sources not committed, the build times. */
function buildInfo() {
  const git = (...args) => execFileSync('git', args, { encoding: 'utf8' }).trim();
  const root = fileURLToPath(new URL('..', import.meta.url));
  return {
    commit: git('rev-parse', '--short', 'HEAD'),
    uncommittedSources: git('status', '--porcelain', '--', 'packages', 'src')
      .split('\n')
      .filter((l) => /\/src\//.test(l) || / src\//.test(l)),
    builtAt: Object.fromEntries(BUILD_DIRS.map((d) => [d, newest(join(root, d))])),
  };
}
const BUILD_DIRS = ['dist', 'packages/core/dist', 'packages/audit/dist'];

async function measure(n, sim, redis, admin) {
  const build = buildInfo();
  const db = await createPgDatabase(`bench_shared${n}`);
  const dbName = new URL(db.url).pathname.slice(1);
  const proxyPort = await freePort();
  const publicUrl = `http://127.0.0.1:${proxyPort}`;
  const prefix = `bench-shared-${process.pid}-${n}:`;
  const shared = {
    ...appEnv(sim, publicUrl, {
      DATABASE_URL: db.url,
      REDIS_URL: redis.url,
      REDIS_KEY_PREFIX: prefix,
      TRUST_PROXY: '1',
      RATE_LIMIT_LOGIN_PER_IP: LIMIT,
      RATE_LIMIT_LOGIN_PER_USER: LIMIT,
      RATE_LIMIT_CALLBACK_PER_IP: LIMIT,
    }),
    BENCH_COUNT_IO: '1',
  };
  const { apps, proxy } = await startInstances(n, shared, proxyPort);
  const ioOf = async () => sumIo((await Promise.all(apps.map((a) => a.stats()))).map((s) => s.io));
  const resetAll = async () => {
    await redis.resetStats();
    await Promise.all(apps.map((a) => a.reset()));
  };
  try {
    const warm = await signOnLoad(proxy.url, {
      concurrency: 16,
      durationMs: WARMUP_MS * n,
      warmupMs: 0,
      prefix: 'w',
    });
    // The idle window: only the timers run (health probe, abandoned-login sweep).
    await resetAll();
    const idleT0 = performance.now();
    await sleep(IDLE_MS);
    const idleSeconds = (performance.now() - idleT0) / 1000;
    const idleRedis = await redis.commandStats();
    const idleIo = await ioOf();
    const flushedBefore = await pgQuiesce(admin, dbName);
    const pgBefore = await pgStats(admin, dbName);

    await resetAll();
    const load0 = loadavg();
    const cpu0 = apps.map((a) => cpuSeconds(a.pid));
    const redisCpu0 = cpuSeconds(redis.pid);
    const t0 = performance.now();
    const run = await signOnsFixed(proxy.url, {
      count: SIGN_ONS,
      rate: RATE,
      concurrency: CONCURRENCY,
      prefix: MEASURED_PREFIX,
    });
    // Appends still queued answer before the response goes out, so nothing is pending here.
    const windowSeconds = (performance.now() - t0) / 1000;
    const appCpu = apps.reduce((s, a, i) => s + cpuSeconds(a.pid) - cpu0[i], 0);
    const redisCpu = cpuSeconds(redis.pid) - redisCpu0;
    const io = await ioOf();
    const redisStats = await redis.commandStats();
    const load1 = loadavg();
    const flushedAfter = await pgQuiesce(admin, dbName);
    const pgDelta = diff(await pgStats(admin, dbName), pgBefore);

    const check = new pg.Client({ connectionString: db.url });
    await check.connect();
    const byType = (
      await check.query(
        `SELECT type, count(*)::int AS n FROM audit_events WHERE username LIKE $1 GROUP BY type ORDER BY type`,
        [`${MEASURED_PREFIX}%`],
      )
    ).rows;
    const chain = (
      await check.query(
        'SELECT count(*)::int AS rows, max(seq)::int AS max_seq, (SELECT seq FROM audit_chain_head WHERE id = 1)::int AS head FROM audit_events',
      )
    ).rows[0];
    await check.end();
    build.changedDuringRun = JSON.stringify(buildInfo().builtAt) !== JSON.stringify(build.builtAt);
    return {
      instances: n,
      database: dbName,
      build,
      warmup: { signOns: warm.signOns, failures: warm.failures, seconds: warm.seconds },
      idle: { seconds: round(idleSeconds, 2), redis: idleRedis, io: idleIo },
      run: { ...run, windowSeconds: round(windowSeconds, 2) },
      loadavg: { before: load0, after: load1 },
      appCpuSeconds: round(appCpu, 2),
      redisServerCpuSeconds: round(redisCpu, 2),
      redis: redisStats,
      io,
      pg: pgDelta,
      pgStatsFlushed: flushedBefore && flushedAfter,
      audit: { measuredByType: byType, chain },
    };
  } finally {
    await proxy.close();
    await Promise.all(apps.map((a) => a.stop()));
    await db.drop();
  }
}

/** Per sign-on figures of one N (the timers' Redis commands taken off, reported per second). */
function perSignOn(r) {
  const s = r.run.signOns;
  const per = (v) => v / s;
  const { redis: c, pg: p } = r.io;
  const bg = background(r.io);
  const redisCalls = Object.fromEntries(Object.entries(r.redis).map(([k, v]) => [k, v.calls]));
  const o = p.oneStatement;
  const l = p.lockFirst;
  const rowsAppended = o.rows + l.rows;
  // As if every row were appended alone by one successful one-statement append (1 round trip,
  // 1 transaction, 1 head update): without the retries, the lock-first fallbacks, the head
  // re-reads and the group commits, whose rates depend on N. A lost try or a head read costs 1
  // round trip and 1 transaction; a lock-first transaction its counted round trips (BEGIN,
  // SELECT ... FOR UPDATE, the insert, maybe an id look-up, COMMIT) and 1 transaction.
  const headReads = p.byKind.auditHeadRead ?? 0;
  const unbatched = (value, perLockFirst, perHeadRead = headReads) =>
    value - o.lost - o.commits - perLockFirst - perHeadRead + rowsAppended;
  const f = {
    // Redis: the server's count (INFO commandstats) also counts the commands run inside scripts
    'redis calls (server, incl. inside scripts)': per(sum(redisCalls) - bg.serverTotal),
    ...Object.fromEntries(
      Object.entries(redisCalls).map(([k, v]) => [
        `redis ${k} (server)`,
        per(v - (bg.serverByName[k] ?? 0)),
      ]),
    ),
    'redis commands (client, top-level)': per(c.commands - bg.total),
    'redis round trips (client)': per(c.roundTrips - bg.total),
    ...Object.fromEntries(
      Object.entries(c.byKeyspaceCommand)
        .filter(([k]) => !k.startsWith('health '))
        .map(([k, v]) => [
          `redis ${k} (client)`,
          // the sweep's scripts are on the pending keyspace too
          per(v - (k.startsWith('pending ') ? (c.background.pendingSweep[k.slice(8)] ?? 0) : 0)),
        ]),
    ),
    // PostgreSQL: statements and round trips counted by the clients; transactions and rows by the
    // server (pg_stat_database of the bench's database)
    'pg round trips (client)': per(p.roundTrips),
    ...Object.fromEntries(Object.entries(p.byKind).map(([k, v]) => [`pg ${k}`, per(v)])),
    'pg transactions (client)': per(
      p.implicitTransactions + (p.byKind.commit ?? 0) + (p.byKind.rollback ?? 0),
    ),
    'pg xact_commit (server)': per(r.pg.xact_commit),
    'pg xact_rollback (server)': per(r.pg.xact_rollback),
    'pg tup_inserted (server)': per(r.pg.tup_inserted),
    'pg tup_updated (server)': per(r.pg.tup_updated),
    'pg tup_deleted (server)': per(r.pg.tup_deleted),
    'pg tup_fetched (server)': per(r.pg.tup_fetched),
    'pg connections opened (client)': per(p.connects),
    'pg round trips, unbatched without retries': per(unbatched(p.roundTrips, l.roundTrips)),
    // each new connection's start-up commits a transaction too (pg-pool reopens idle-closed ones)
    'pg transactions, unbatched without retries': per(
      unbatched(r.pg.xact_commit + r.pg.xact_rollback - p.connects, l.transactions),
    ),
    'pg tup_updated, unbatched': per(unbatched(r.pg.tup_updated + o.lost, l.transactions, 0)),
    'audit rows appended (client)': per(rowsAppended),
    // the chain-head retries, and the group commits
    'audit one-statement tries lost (retried)': per(o.lost),
    'audit lock-first after two lost tries': per(l.afterLost),
    'audit lock-first in the 1 s backoff': per(l.transactions - l.afterLost),
    'audit group commits (>1 row)': per(o.batches + l.batches),
    // information
    'sign-ons per app CPU-second': s / r.appCpuSeconds,
    'redis-server CPU ms': per(r.redisServerCpuSeconds * 1000),
    'redis usec (commandstats)': per(Object.values(r.redis).reduce((a, v) => a + v.usec, 0)),
  };
  return Object.fromEntries(Object.entries(f).map(([k, v]) => [k, round(v, 4)]));
}

// Counters allowed to differ by N: the chain-head retries and group commits and every raw figure
// they move (checked unbatched instead), the per-instance pools, and the information.
const MAY_DIFFER = [
  /^audit (one-statement|lock-first|group)/,
  /^pg (auditAppendStatement|auditLockFirst\w*|auditHeadRead|begin|commit|rollback)$/,
  /^pg round trips \(client\)$/,
  /^pg transactions \(client\)$/,
  /^pg xact_(commit|rollback) \(server\)$/,
  /^pg tup_(updated|fetched) \(server\)$/,
  /^pg connections opened/,
  /^sign-ons per app CPU/,
  /^redis-server CPU/,
  /^redis usec/,
];
// The timers' script calls that INFO commandstats cannot tell apart (the sweep's ZRANGEBYSCORE, a
// first EVAL after NOSCRIPT on the fresh redis-server): up to this much per sign-on is not work.
const BACKGROUND_SLACK = 0.005;

const RESULTS_FILE = new URL('./results-shared-work.json', import.meta.url);
// `node bench/shared-work.mjs report`: the figures again from the last results file, no run.
const reportOnly = process.argv[2] === 'report';
const results = reportOnly
  ? { ...JSON.parse(readFileSync(RESULTS_FILE, 'utf8')), runs: undefined }
  : {
      node: process.version,
      signOns: SIGN_ONS,
      ratePerSecond: RATE,
      concurrency: CONCURRENCY,
      tolerance: TOLERANCE,
      idleWindowMs: IDLE_MS,
    };
results.runs = reportOnly ? JSON.parse(readFileSync(RESULTS_FILE, 'utf8')).runs : [];
if (!reportOnly) {
  const sim = await startSimulator({ port: 0, auto: 'allow', codeTtlMs: 120_000 });
  const redis = await startRedis();
  const admin = new pg.Client({ connectionString: PG_ADMIN_URL });
  await admin.connect();
  try {
    for (const n of INSTANCES) {
      console.log(`N=${n}: warm-up, ${IDLE_MS / 1000} s idle, ${SIGN_ONS} sign-ons at ${RATE}/s`);
      results.runs.push(await measure(n, sim, redis, admin));
    }
  } finally {
    await admin.end();
    await redis.stop();
    await sim.close();
  }
}

const perN = results.runs.map(perSignOn);
const keys = [...new Set(perN.flatMap((f) => Object.keys(f)))];
const base = perN[0];
const table = {};
const differing = [];
for (const k of keys) {
  const row = {};
  results.runs.forEach((r, i) => (row[`N=${r.instances}`] = perN[i][k] ?? 0));
  results.runs.slice(1).forEach((r, i) => {
    const b = base[k] ?? 0;
    const v = perN[i + 1][k] ?? 0;
    row[`${r.instances}/1`] = b === 0 ? (v === 0 ? 1 : null) : round(v / b, 3);
    const same =
      Math.abs(v - b) <= BACKGROUND_SLACK || (b !== 0 && Math.abs(v / b - 1) <= TOLERANCE);
    if (!same && !MAY_DIFFER.some((re) => re.test(k))) {
      differing.push({ counter: k, instances: r.instances, base: b, value: v });
    }
  });
  table[k] = row;
}
const retries = results.runs.map((r, i) => {
  const { oneStatement: o, lockFirst: l } = r.io.pg;
  return {
    instances: r.instances,
    'lost tries / sign-on': perN[i]['audit one-statement tries lost (retried)'],
    'lost tries / one-statement try': round(o.lost / o.tries, 4),
    'lock-first after 2 lost / sign-on': perN[i]['audit lock-first after two lost tries'],
    'lock-first in backoff / sign-on': perN[i]['audit lock-first in the 1 s backoff'],
    'rows via lock-first': round(l.rows / (o.rows + l.rows), 4),
    'group commits / sign-on': perN[i]['audit group commits (>1 row)'],
  };
});
const timers = results.runs.map((r) => ({
  instances: r.instances,
  'health probe cmds/s (idle)': round(
    sum(r.idle.io.redis.background.healthProbe) / r.idle.seconds,
    3,
  ),
  'health probe cmds/s (run)': round(
    sum(r.io.redis.background.healthProbe) / r.run.windowSeconds,
    3,
  ),
  'sweep cmds/s (idle)': round(sum(r.idle.io.redis.background.pendingSweep) / r.idle.seconds, 3),
  'sweep cmds/s (run)': round(sum(r.io.redis.background.pendingSweep) / r.run.windowSeconds, 3),
  'all server calls/s (idle)': round(
    Object.values(r.idle.redis).reduce((a, v) => a + v.calls, 0) / r.idle.seconds,
    3,
  ),
  'idle pg statements': r.idle.io.pg.roundTrips,
}));
const checks = results.runs.map((r) => {
  const byType = r.audit.measuredByType;
  const rows = byType.reduce((a, t) => a + t.n, 0);
  const p = r.io.pg;
  return {
    instances: r.instances,
    failures: r.run.failures,
    signOns: r.run.signOns,
    eventsPerSignOn: byType.length,
    auditRowsEqualSignOnsTimesEvents:
      rows === r.run.signOns * byType.length && byType.every((t) => t.n === r.run.signOns),
    serverInsertsEqualClientRows: r.pg.tup_inserted === p.oneStatement.rows + p.lockFirst.rows,
    // the server also commits one transaction per new connection (its start-up)
    serverTransactionsEqualClient:
      r.pg.xact_commit + r.pg.xact_rollback ===
      p.implicitTransactions + (p.byKind.commit ?? 0) + (p.byKind.rollback ?? 0) + p.connects,
    chainWithoutGaps:
      r.audit.chain.rows === r.audit.chain.max_seq && r.audit.chain.head === r.audit.chain.max_seq,
    evalshaServerEqualsClient:
      (r.redis.evalsha?.calls ?? 0) === (r.io.redis.byCommand.evalsha ?? 0),
    // an event that the database did not take in time is spooled (and replayed later) instead
    noAuditSpooled: (r.io.audit?.spooled ?? 0) === 0 && (r.io.audit?.databaseFailures ?? 0) === 0,
    noPgErrors: sum(r.io.pg.errors) === 0,
    pgStatsFlushed: r.pgStatsFlushed,
    sameBuild:
      !r.build.changedDuringRun &&
      JSON.stringify(r.build.builtAt) === JSON.stringify(results.runs[0].build.builtAt),
  };
});
results.perSignOn = table;
results.retries = retries;
results.timers = timers;
results.checks = checks;
results.sameWorkAtEveryN =
  differing.length === 0 &&
  checks.every((c) => Object.entries(c).every(([k, v]) => k === 'instances' || v !== false)) &&
  checks.every((c) => c.failures === 0);
results.differing = differing;

console.log(`shared work per sign-on (${SIGN_ONS} sign-ons at ${RATE}/s; timers taken off)`);
console.table(table);
console.log('audit chain-head retries and group commits');
console.table(retries);
console.log('timers (Redis commands per second, all instances)');
console.table(timers);
console.log('checks');
console.table(checks);
console.log(
  `sameWorkAtEveryN (±${TOLERANCE * 100} %, chain-head retries excluded): ${results.sameWorkAtEveryN}`,
);
if (differing.length > 0) {
  console.table(differing);
}
for (const r of results.runs) {
  console.log(`N=${r.instances} loadavg ${r.loadavg.before} → ${r.loadavg.after}`);
}
writeFileSync(RESULTS_FILE, `${JSON.stringify(results, null, 2)}\n`);
process.exit(0);
