// Audit trail bench (PostgreSQL): query latency on 1,000,000 events and chained append throughput.
// Run: npx nest build && node bench/audit.mjs     (env BENCH_PG_ADMIN_URL, default postgres://postgres@127.0.0.1:5432/test)
// Quick append-only runs: BENCH_AUDIT_EVENTS=0 (or 10000) skips the query part (it needs more than
// two weeks of events) and then writes results only to BENCH_AUDIT_RESULTS, if set.
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { performance } from 'node:perf_hooks';
import { DataSource } from 'typeorm';
import { buildTypeOrmOptions } from '../dist/src/database/typeorm-options.js';
import { AuditEventEntity, encodeAuditCursor, TypeOrmAuditRepository } from '@duo-nest/audit';

const here = dirname(fileURLToPath(import.meta.url));
const ADMIN_URL = process.env.BENCH_PG_ADMIN_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const EVENTS = Number(process.env.BENCH_AUDIT_EVENTS ?? 1_000_000);
const USERS = 5000;
const STEP_S = 2; // one event every 2 s: 1M events span ~23 days
const START = Date.parse('2026-01-01T00:00:00.000Z');
const KEY = 'bench-audit-chain-key-0123456789abcdef';
const APPEND_SECONDS = Number(process.env.BENCH_AUDIT_APPEND_SECONDS ?? 3);
const WRITER_ROUNDS = Number(process.env.BENCH_AUDIT_ROUNDS ?? 3);
const WRITER_COUNTS = [1, 4, 16, 64];
// The filtered query looks at 7-day windows: the query part needs a longer span of events.
const QUERIES = EVENTS * STEP_S * 1000 > 14 * 86_400_000;
const RESULTS_FILE = process.env.BENCH_AUDIT_RESULTS ?? (QUERIES ? join(here, 'results-audit.json') : null);

const admin = async (sql) => {
  const ds = new DataSource({ type: 'postgres', url: ADMIN_URL, poolSize: 1 });
  await ds.initialize();
  try {
    return await ds.query(sql);
  } finally {
    await ds.destroy();
  }
};
const p95 = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil(0.95 * s.length) - 1)];
};
const p50 = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const round = (x, d = 2) => Math.round(x * 10 ** d) / 10 ** d;
const iso = (ms) => new Date(ms).toISOString();

const name = `audit_bench_${randomBytes(4).toString('hex')}`;
const url = new URL(ADMIN_URL);
url.pathname = `/${name}`;
const sources = [];
const results = { events: EVENTS, database: 'postgresql', node: process.version, when: new Date().toISOString() };

await admin(`CREATE DATABASE ${name}`);
try {
  const open = async (migrationsRun = false) => {
    const ds = new DataSource({ ...buildTypeOrmOptions({ databaseUrl: url.toString(), migrationsRun }), poolSize: 4 });
    await ds.initialize();
    sources.push(ds);
    return ds;
  };
  const ds = await open(true);
  const repo = new TypeOrmAuditRepository(ds.getRepository(AuditEventEntity), { chainKey: KEY });

  // 1. Bulk load with one INSERT ... SELECT generate_series (no valid chain: not needed for queries).
  if (EVENTS > 0) {
    let t0 = performance.now();
    await ds.query(`
      INSERT INTO audit_events (id, seq, occurred_at, type, outcome, username, reason, txid, factor, duo_result,
        client_ip, access_device_ip, instance_id, user_agent, prev_hash, hash)
      SELECT md5(g::text)::uuid::text, g,
        to_char((timestamp '2026-01-01 00:00:00' + (g * ${STEP_S}) * interval '1 second'), 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
        (ARRAY['mfa_started','mfa_succeeded','mfa_failed','session_created'])[1 + g % 4],
        (ARRAY['info','success','failure','success'])[1 + g % 4],
        'user' || (g % ${USERS}),
        CASE WHEN g % 4 = 2 THEN 'state_mismatch' END,
        'tx-' || g,
        CASE WHEN g % 4 = 1 THEN (ARRAY['duo_push','passcode','webauthn'])[1 + g % 3] END,
        CASE WHEN g % 4 = 1 THEN 'allow' END,
        '198.51.100.' || (g % 250), '203.0.113.' || (g % 250), 'bench-' || (g % 4), 'Mozilla/5.0 (bench)',
        md5((g - 1)::text) || md5((g - 1)::text), md5(g::text) || md5(g::text)
      FROM generate_series(1, ${EVENTS}) AS g`);
    await ds.query(`ANALYZE audit_events`);
    const [last] = await ds.query(`SELECT seq, hash FROM audit_events ORDER BY seq DESC LIMIT 1`);
    await ds.query(`INSERT INTO audit_chain_head (id, seq, hash, updated_at, mac) VALUES (1, $1, $2, $3, 'bench')`, [
      last.seq,
      last.hash,
      new Date().toISOString(),
    ]);
    results.loadSeconds = round((performance.now() - t0) / 1000, 1);
    console.log(`loaded ${EVENTS} events in ${results.loadSeconds} s`);
  }

  if (QUERIES) {
    const spanMs = EVENTS * STEP_S * 1000;
    const time = async (fn, n) => {
      const xs = [];
      for (let i = 0; i < 5; i += 1) await fn(i); // warm-up
      for (let i = 0; i < n; i += 1) {
        const t = performance.now();
        await fn(i);
        xs.push(performance.now() - t);
      }
      return xs;
    };

    // 2. Filtered query: username + 7-day range, first page of 50.
    const filtered = await time(async (i) => {
      const user = `user${(i * 7919) % USERS}`;
      const from = START + ((i * 104729) % (spanMs - 7 * 86_400_000));
      const page = await repo.findPage({ username: user, from: iso(from), to: iso(from + 7 * 86_400_000) }, null, 50);
      if (page.items.length === 0) throw new Error('bench: empty filtered page');
    }, 300);

    // 3. First page vs a deep keyset page (about 90% back in time), unfiltered, 50 rows. The two are
    // interleaved so that noise from other processes on the machine hits both alike.
    const first = [];
    const deep = [];
    const deepPage = async (i) => {
      const seq = Math.floor(EVENTS * 0.1) + ((i * 997) % 1000);
      const cursor = encodeAuditCursor({ occurredAt: iso(START + seq * STEP_S * 1000), seq });
      const page = await repo.findPage({}, cursor, 50);
      if (page.items.length !== 50) throw new Error('bench: short deep page');
    };
    for (let i = -5; i < 300; i += 1) {
      let t = performance.now();
      await repo.findPage({}, null, 50);
      if (i >= 0) first.push(performance.now() - t);
      t = performance.now();
      await deepPage(i + 5);
      if (i >= 0) deep.push(performance.now() - t);
    }
    if (process.env.BENCH_EXPLAIN) {
      const deepAt = Math.floor(EVENTS * 0.1);
      for (const [label, sql, params] of [
        ['first', 'SELECT id FROM audit_events ORDER BY occurred_at DESC, seq DESC LIMIT 51', []],
        [
          'deep',
          'SELECT id FROM audit_events WHERE (occurred_at, seq) < ($1, $2) ORDER BY occurred_at DESC, seq DESC LIMIT 51',
          [iso(START + deepAt * STEP_S * 1000), deepAt],
        ],
      ]) {
        const plan = await ds.query(`EXPLAIN (ANALYZE, BUFFERS) ${sql}`, params);
        console.log(label, plan.map((r) => r['QUERY PLAN']).join('\n'));
      }
    }
    results.query = {
      filteredP50Ms: round(p50(filtered)),
      filteredP95Ms: round(p95(filtered)),
      firstPageP95Ms: round(p95(first)),
      deepPageP95Ms: round(p95(deep)),
      deepOverFirst: round(p95(deep) / p95(first)),
    };
  }

  // 4. Append throughput through the repository, with the chain, 1 and 4 writers (one DataSource each).
  const writers = [repo];
  for (let i = 1; i < 4; i += 1) {
    writers.push(new TypeOrmAuditRepository((await open()).getRepository(AuditEventEntity), { chainKey: KEY }));
  }
  // A writer is one app instance (its own DataSource and repository); `inFlight` is how many
  // requests of that instance record an event at the same time (1 = strictly one after another).
  const appendRun = async (n, inFlight) => {
    const deadline = performance.now() + APPEND_SECONDS * 1000;
    const counts = await Promise.all(
      writers.slice(0, n).flatMap((w, k) =>
        Array.from({ length: inFlight }, async () => {
          let c = 0;
          while (performance.now() < deadline) {
            await w.append(
              { type: 'mfa_succeeded', outcome: 'success', username: `bench${c % 100}`, clientIp: '192.0.2.1' },
              { instanceId: `writer-${k}` },
            );
            c += 1;
          }
          return c;
        }),
      ),
    );
    return round(counts.reduce((a, b) => a + b, 0) / APPEND_SECONDS, 0);
  };
  await Promise.all(writers.map((w) => w.append({ type: 'mfa_started', outcome: 'info' }))); // warm-up
  const seqBefore = Number((await ds.query('SELECT seq FROM audit_chain_head'))[0].seq);
  results.append = {
    seconds: APPEND_SECONDS,
    oneWriterPerSec: await appendRun(1, 1),
    fourWritersPerSec: await appendRun(4, 1),
    oneWriter16InFlightPerSec: await appendRun(1, 16),
    fourWriters16InFlightPerSec: await appendRun(4, 16),
  };
  const [{ n, lo, hi }] = await ds.query(
    'SELECT COUNT(*)::int AS n, MIN(seq) AS lo, MAX(seq) AS hi FROM audit_events WHERE seq > $1',
    [seqBefore],
  );
  results.append.contiguous = n === hi - lo + 1 && lo === seqBefore + 1;

  // 5. Issue #17 (i): appends/s at 1, 4, 16 and 64 concurrent writers on ONE app instance (one
  // repository: where the instance's group commit can batch them); a writer is one request that
  // appends, awaits, appends again. For information, the same 16 writers spread over 4 instances.
  // Rounds go through every configuration in turn, so that noise from other processes on the
  // machine hits them alike; ratios are taken within a round (paired), medians reported.
  const headSeq = async () => Number((await ds.query('SELECT seq FROM audit_chain_head'))[0].seq);
  // Rows written by one transaction share its xmin: one xmin is one committed batch. Cheap, and
  // it measures what reached the database, whatever the appender does inside.
  const batchSizes = async (lo, hi) =>
    (
      await ds.query(
        'SELECT COUNT(*)::int AS n FROM audit_events WHERE seq > $1 AND seq <= $2 GROUP BY xmin::text',
        [lo, hi],
      )
    ).map((r) => r.n);
  const writersRun = async (instances, perInstance) => {
    const lo = await headSeq();
    const started = performance.now();
    const deadline = started + APPEND_SECONDS * 1000;
    const counts = await Promise.all(
      instances.flatMap((w, k) =>
        Array.from({ length: perInstance }, async (_, j) => {
          let c = 0;
          while (performance.now() < deadline) {
            await w.append(
              { type: 'mfa_succeeded', outcome: 'success', username: `w${j}-${c}`, clientIp: '192.0.2.1' },
              { instanceId: `writers-${k}` },
            );
            c += 1;
          }
          return c;
        }),
      ),
    );
    // The last appends finish after the deadline: divide by the time they actually took.
    const seconds = (performance.now() - started) / 1000;
    const hi = await headSeq();
    const appends = counts.reduce((a, b) => a + b, 0);
    if (hi - lo !== appends) throw new Error(`bench: ${appends} appends moved the head by ${hi - lo}`);
    return { perSec: appends / seconds, sizes: await batchSizes(lo, hi), seconds };
  };
  const configs = [
    ...WRITER_COUNTS.map((n) => [String(n), [repo], n]),
    ['spread16over4Instances', writers, 4],
  ];
  const runs = Object.fromEntries(configs.map(([key]) => [key, []]));
  const load = [loadavg()[0]];
  const writersSeqBefore = await headSeq();
  for (let r = 0; r < WRITER_ROUNDS; r += 1) {
    for (const [key, instances, perInstance] of configs) {
      runs[key].push(await writersRun(instances, perInstance));
    }
  }
  load.push(loadavg()[0]);
  const summary = (xs) => {
    const sizes = xs.flatMap((x) => x.sizes).sort((a, b) => a - b);
    const appends = sizes.reduce((a, b) => a + b, 0);
    const seconds = xs.reduce((a, x) => a + x.seconds, 0);
    return {
      perSec: round(p50(xs.map((x) => x.perSec)), 0),
      runs: xs.map((x) => round(x.perSec, 0)),
      batch: { mean: round(appends / sizes.length, 1), p50: p50(sizes), max: sizes.at(-1) },
      transactionsPerSec: round(sizes.length / seconds, 0),
    };
  };
  const ratios = runs['16'].map((x, i) => x.perSec / runs['1'][i].perSec);
  results.writers = {
    seconds: APPEND_SECONDS,
    rounds: WRITER_ROUNDS,
    ...Object.fromEntries(WRITER_COUNTS.map((n) => [String(n), summary(runs[String(n)])])),
    ratio16over1: round(p50(ratios)),
    ratios16over1: ratios.map((r) => round(r)),
    spread16over4Instances: summary(runs.spread16over4Instances),
    loadavg1m: load,
  };

  // The whole appended chain: contiguous from the first append on, and verified (hashes, links,
  // head MAC). The bulk-loaded rows carry no valid chain: purging them anchors the chain after them.
  const seqEnd = await headSeq();
  const [span] = await ds.query(
    'SELECT COUNT(*)::int AS n, MIN(seq) AS lo, MAX(seq) AS hi FROM audit_events WHERE seq > $1',
    [EVENTS],
  );
  results.writers.contiguous =
    span.n === seqEnd - EVENTS && span.lo === EVENTS + 1 && span.hi === seqEnd && writersSeqBefore < seqEnd;
  if (EVENTS > 0) await repo.purgeBefore(new Date(START + (EVENTS + 1) * STEP_S * 1000));
  const verified = await repo.verifyChain();
  results.writers.chain = { ok: verified.ok, checked: verified.checked, lastSeq: verified.lastSeq };

  results.targets = {
    ...(QUERIES && {
      filteredP95Under20Ms: results.query.filteredP95Ms < 20,
      deepPageWithin2x: results.query.deepOverFirst <= 2,
    }),
    appendsAtLeast2000PerSecOneByOne: results.append.oneWriterPerSec >= 2000,
    appendsAtLeast2000PerSecFourWritersOneByOne: results.append.fourWritersPerSec >= 2000,
    appendsAtLeast2000PerSecUnderConcurrentRequests: results.append.fourWriters16InFlightPerSec >= 2000,
    sixteenWritersAtLeast3xOne: results.writers.ratio16over1 >= 3,
    chainVerified: results.writers.contiguous && results.writers.chain.ok,
  };

  const w = results.writers;
  const writerLine = (x) =>
    `${x.perSec} (runs ${x.runs.join(', ')}; batch mean ${x.batch.mean}, max ${x.batch.max}; ${x.transactionsPerSec} tx/s)`;
  console.table({
    ...(QUERIES && {
      'filtered query p95 (username + 7 days, 50 rows)': `${results.query.filteredP95Ms} ms (target < 20)`,
      'first page p95 (50 rows)': `${results.query.firstPageP95Ms} ms`,
      'deep keyset page p95 (~900k rows back)': `${results.query.deepPageP95Ms} ms (${results.query.deepOverFirst}x first; target <= 2x)`,
    }),
    'appends/s, 1 writer, one at a time': `${results.append.oneWriterPerSec} (target >= 2000)`,
    'appends/s, 4 writers (4 DataSources), one at a time each': `${results.append.fourWritersPerSec}`,
    'appends/s, 1 writer, 16 requests in flight': `${results.append.oneWriter16InFlightPerSec}`,
    'appends/s, 4 writers, 16 requests in flight each': `${results.append.fourWriters16InFlightPerSec} (seq contiguous: ${results.append.contiguous})`,
    ...Object.fromEntries(
      WRITER_COUNTS.map((n) => [`appends/s, ${n} writer(s) on one instance`, writerLine(w[String(n)])]),
    ),
    'appends/s, 16 writers over 4 instances': writerLine(w.spread16over4Instances),
    '16 writers / 1 writer (paired, median)': `${w.ratio16over1} (${w.ratios16over1.join(', ')}; target >= 3)`,
    'chain after the writers': `contiguous ${w.contiguous}, verified ${w.chain.ok} (${w.chain.checked} rows)`,
    'load average (1 min) before, after': w.loadavg1m.join(', '),
  });
  if (RESULTS_FILE) {
    writeFileSync(RESULTS_FILE, `${JSON.stringify(results, null, 2)}\n`);
    console.log(`wrote ${RESULTS_FILE}`);
  }
} finally {
  await Promise.all(sources.map((s) => s.destroy().catch(() => undefined)));
  await admin(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
}
