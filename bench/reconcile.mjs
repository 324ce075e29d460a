// Reconcile bench (issue 16): 100,000 entries in the simulator's authentication log, reconciled
// against an audit trail that holds the matching successes and abandoned rows, over HTTP (signed
// Admin API calls, pages of 1000) into SQLite (a file) or PostgreSQL.
// Run: npm run build:packages && node bench/reconcile.mjs   (env BENCH_RECONCILE_ENTRIES, BENCH_RECONCILE_DB=sqlite|postgres)
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { performance } from 'node:perf_hooks';
import { DataSource } from 'typeorm';
import {
  auditDataSourceOptions,
  AuditEventEntity,
  buildAuditRecord,
  DuoAdminClient,
  DuoReconcileJob,
  InProcessReconcileLock,
  ReconcileStore,
  TypeOrmAuditRepository,
} from '@duo-nest/audit';
import { startSimulator } from '@duo-nest/simulator';

const here = dirname(fileURLToPath(import.meta.url));
const N = Number(process.env.BENCH_RECONCILE_ENTRIES ?? 100_000);
const ENGINE = process.env.BENCH_RECONCILE_DB ?? 'sqlite';
const PG_ADMIN_URL = process.env.BENCH_PG_ADMIN_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
/** Target: 100,000 entries reconciled within 60 s on this 2-core machine (≥ 1,667 entries/s). */
const TARGET_ENTRIES_PER_SEC = 1_667;
const KEY = 'bench-reconcile-chain-key-0123456789abcdef';

const sim = await startSimulator({ port: 0, auto: 'allow' });
let dbUrl;
let cleanup;
if (ENGINE === 'postgres') {
  const name = `reconcile_bench_${randomBytes(4).toString('hex')}`;
  const admin = new DataSource({ type: 'postgres', url: PG_ADMIN_URL, poolSize: 1 });
  await admin.initialize();
  await admin.query(`CREATE DATABASE ${name}`);
  const u = new URL(PG_ADMIN_URL);
  u.pathname = `/${name}`;
  dbUrl = u.toString();
  cleanup = async () => {
    await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    await admin.destroy();
  };
} else {
  const dir = mkdtempSync(join(tmpdir(), 'reconcile-bench-'));
  dbUrl = `sqlite:${join(dir, 'audit.sqlite')}`;
  cleanup = async () => rmSync(dir, { recursive: true, force: true });
}
const ds = new DataSource(auditDataSourceOptions({ databaseUrl: dbUrl, migrationsRun: true }));
await ds.initialize();
const repository = new TypeOrmAuditRepository(ds.getRepository(AuditEventEntity), {
  chainKey: KEY,
});

// The log: 97% successes that reached our callback, 1% successes that did not (unclaimed),
// 1% denials whose user we recorded as abandoned, 1% fraud reports; spread over 50 minutes.
const start = Date.now() - 60 * 60_000;
const step = (50 * 60_000) / N;
const entries = [];
const ours = [];
for (let i = 0; i < N; i++) {
  const username = `user${i % 5000}`;
  const ts = Math.floor(start + i * step);
  const txid = randomUUID();
  const kind = i % 100;
  if (kind === 97) {
    entries.push({ username, txid, result: 'success', reason: 'user_approved', timestampMs: ts });
  } else if (kind === 98) {
    entries.push({ username, txid, result: 'denied', reason: 'user_denied', timestampMs: ts });
    ours.push({ type: 'mfa_abandoned', username, at: ts + 5_000, txid: null });
  } else if (kind === 99) {
    entries.push({ username, txid, result: 'fraud', reason: 'user_marked_fraud', timestampMs: ts });
  } else {
    entries.push({ username, txid, result: 'success', reason: 'user_approved', timestampMs: ts });
    ours.push({ type: 'mfa_succeeded', username, at: ts + 800, txid });
  }
}
// 100 forged successes of ours that Duo never saw.
for (let i = 0; i < 100; i++) {
  ours.push({
    type: 'mfa_succeeded',
    username: `forged${i}`,
    at: start + i * 1000,
    txid: randomUUID(),
  });
}
ours.sort((a, b) => a.at - b.at);

const t0 = performance.now();
for (let i = 0; i < entries.length; i += 250) {
  const res = await fetch(`${sim.url}/__sim/authlog`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ entries: entries.slice(i, i + 250) }),
  });
  if (res.status !== 200) throw new Error(`inject: ${res.status} ${await res.text()}`);
}
for (let i = 0; i < ours.length; i += 1000) {
  await repository.appendMany(
    ours.slice(i, i + 1000).map((o) =>
      buildAuditRecord(
        {
          type: o.type,
          outcome: o.type === 'mfa_succeeded' ? 'success' : 'failure',
          username: o.username,
          authContext: o.txid ? { txid: o.txid } : null,
        },
        { occurredAt: new Date(o.at) },
      ),
    ),
  );
}
const seedSeconds = (performance.now() - t0) / 1000;

const client = new DuoAdminClient({
  integrationKey: sim.adminIntegrationKey,
  secretKey: sim.adminSecretKey,
  apiHost: sim.url,
  allowInsecureHttp: true,
});
const job = new DuoReconcileJob(
  { clientId: sim.clientId, lookbackMs: 2 * 3_600_000, graceMs: 5 * 60_000 },
  { client, repository, store: new ReconcileStore(ds), lock: new InProcessReconcileLock() },
);
const t1 = performance.now();
const run = await job.runOnce({ since: start - 60_000 });
const seconds = (performance.now() - t1) / 1000;
const perSec = Math.round(run.entries / seconds);
const expected = {
  reconcile_unclaimed_at_duo: Math.floor(N / 100),
  mfa_abandoned_reason: Math.floor(N / 100),
  mfa_fraud_reported: Math.floor(N / 100),
  reconcile_missing_at_duo: 100,
};
const correct =
  run.status === 'ok' &&
  run.entries === N &&
  Object.entries(expected).every(([k, v]) => run.events[k] === v);
const results = {
  when: new Date().toISOString(),
  node: process.version,
  engine: ENGINE,
  entries: run.entries,
  pages: run.pages,
  seconds: Math.round(seconds * 100) / 100,
  entriesPerSecond: perSec,
  events: run.events,
  expectedEvents: expected,
  correct,
  seedSeconds: Math.round(seedSeconds * 10) / 10,
  target: {
    entriesPerSecond: `>= ${TARGET_ENTRIES_PER_SEC}`,
    met: perSec >= TARGET_ENTRIES_PER_SEC,
  },
};
console.log(
  `reconcile (${ENGINE}): ${run.entries} entries in ${results.seconds} s = ${perSec} entries/s (target >= ${TARGET_ENTRIES_PER_SEC}: ${results.target.met ? 'met' : 'MISSED'}); events ${JSON.stringify(run.events)}; ${correct ? 'correct' : 'WRONG COUNTS'}`,
);
writeFileSync(join(here, 'results-reconcile.json'), `${JSON.stringify(results, null, 2)}\n`);
await ds.destroy();
await cleanup();
await sim.close();
process.exit(correct ? 0 : 1);
