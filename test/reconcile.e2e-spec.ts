import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { Redis } from 'ioredis';
import { DataSource } from 'typeorm';
import {
  AuditRepository,
  DuoAdminClient,
  DuoReconcileJob,
  InProcessReconcileLock,
  RECONCILE_ACTOR,
  ReconcileScheduler,
  ReconcileStore,
  RedisReconcileLock,
  reconcileEventId,
  runAuditReconcile,
  type DuoReconcileOptions,
  type ReconcileRunResult,
} from '@duo-nest/audit';
import { DuoSessionControl } from '@duo-nest/core';
import { startSimulator, type AuthLogInput, type RunningSimulator } from '@duo-nest/simulator';
import { ReconcileRunner } from '../src/reconcile/reconcile.runner.js';
import { Browser, simulatorEnv, startApp, type RunningApp } from './support/app-harness.js';
import {
  auditEvents,
  JSON_ACCEPT,
  NO_RATE_LIMITS,
  signOn,
  uniqueUser,
} from './support/duo-flow.js';
import { createTestDatabase, ENGINES, type TestDatabase } from './support/audit-db.js';

// Issue 16 items 3-4: the reconcile job reads the simulator's authentication log over HTTP (signed,
// paged, with scripted 429s and outages) and holds it against the app's real audit trail.
const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
const MIN = 60_000;
let sim: RunningSimulator;

async function simPost(path: string, body: unknown): Promise<Record<string, unknown>> {
  const res = await fetch(`${sim.url}/__sim/${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  expect(res.status).toBe(200);
  return (await res.json()) as Record<string, unknown>;
}

/** Duo-only entries (decisions whose callback never reached us), injected into Duo's log. */
async function inject(entries: AuthLogInput[]): Promise<string[]> {
  const out: string[] = [];
  for (let i = 0; i < entries.length; i += 250) {
    out.push(
      ...((await simPost('authlog', { entries: entries.slice(i, i + 250) })).txids as string[]),
    );
  }
  return out;
}

function adminClient(over: { secretKey?: string; maxAttempts?: number } = {}) {
  return new DuoAdminClient(
    {
      integrationKey: sim.adminIntegrationKey,
      secretKey: over.secretKey ?? sim.adminSecretKey,
      apiHost: sim.url,
      allowInsecureHttp: true,
      backoffBaseMs: 5,
      backoffMaxMs: 50,
      maxAttempts: over.maxAttempts ?? 5,
    },
    { sleep: (ms) => new Promise((r) => setTimeout(r, Math.min(ms, 50))) },
  );
}

/**
 * A job on the app's own database, audit repository and session control, with its clock moved
 * `aheadMs` forward: the grace window has then passed for what the test just did.
 */
function jobFor(
  app: RunningApp,
  over: Partial<DuoReconcileOptions> = {},
  deps: { client?: DuoAdminClient; aheadMs?: number; store?: ReconcileStore } = {},
) {
  const ahead = deps.aheadMs ?? 15 * MIN;
  const sessions = app.app.get(DuoSessionControl);
  return new DuoReconcileJob(
    { clientId: sim.clientId, instanceId: 'test', ...over },
    {
      client: deps.client ?? adminClient(),
      repository: app.app.get(AuditRepository),
      store: deps.store ?? new ReconcileStore(app.app.get(DataSource)),
      lock: new InProcessReconcileLock(),
      revokeUser: (u) => sessions.markCompromised(u, { username: RECONCILE_ACTOR }),
      now: () => Date.now() + ahead,
    },
  );
}

async function countType(app: RunningApp, type: string): Promise<number> {
  const rows: { n: string | number }[] = await app.app
    .get(DataSource)
    .query(`SELECT COUNT(*) AS n FROM audit_events WHERE type = '${type}'`);
  return Number(rows[0].n);
}

async function me(browser: Browser, url: string): Promise<number> {
  const res = await browser.fetch(`${url}/me`, { headers: JSON_ACCEPT });
  await res.arrayBuffer();
  return res.status;
}

const adminEnv = () => ({
  DUO_ADMIN_INTEGRATION_KEY: sim.adminIntegrationKey,
  DUO_ADMIN_SECRET_KEY: sim.adminSecretKey,
  DUO_ADMIN_API_HOST: sim.url,
});

beforeAll(async () => {
  sim = await startSimulator({ port: 0, auto: 'allow' });
});
afterAll(async () => {
  await sim?.close();
});

describe.each(ENGINES)('reconcile on %s', (engine) => {
  let db: TestDatabase;
  let app: RunningApp;
  beforeAll(async () => {
    db = await createTestDatabase(engine);
    sim.control.reset(); // only this engine's entries in Duo's log
    app = await startApp({ ...simulatorEnv(sim), ...NO_RATE_LIMITS, DATABASE_URL: db.url });
  });
  afterAll(async () => {
    await app?.close();
    await db?.drop();
  });

  it('should detect every mismatch kind once and write nothing more when run again', async () => {
    const now = Date.now();
    const repo = app.app.get(AuditRepository);
    // Matched: a real sign-on through the simulator (Duo logged it, our callback recorded it).
    const matched = uniqueUser('matched');
    expect((await signOn(new Browser(), app.url, matched)).status).toBe(303);
    // Missing at Duo: a success in our trail whose txid Duo never logged (a forged success).
    const forged = await repo.append(
      {
        type: 'mfa_succeeded',
        outcome: 'success',
        username: uniqueUser('forged'),
        authContext: { txid: `forged-${randomBytes(6).toString('hex')}` } as never,
      },
      { occurredAt: new Date(now - 2 * MIN) },
    );
    // Unclaimed at Duo: Duo approved bob for our application; no callback ever came.
    const bob = uniqueUser('bob');
    const [unclaimedTx] = await inject([
      { username: bob, result: 'success', reason: 'user_approved', timestampMs: now - 3 * MIN },
    ]);
    // Another application's success is not ours: ignored.
    await inject([
      {
        username: bob,
        result: 'success',
        reason: 'user_approved',
        timestampMs: now - 3 * MIN,
        applicationKey: 'DIOTHERAPPLICATION01',
        applicationName: 'other',
      },
    ]);
    // Abandoned: we recorded carol as abandoned; Duo says she denied the push before that.
    const carol = uniqueUser('carol');
    await inject([
      {
        username: carol,
        result: 'denied',
        reason: 'user_denied',
        timestampMs: now - 4 * MIN,
        factor: 'duo_push',
      },
    ]);
    const abandoned = await repo.append(
      { type: 'mfa_abandoned', outcome: 'failure', username: carol, reason: 'state_expired' },
      { occurredAt: new Date(now - 1 * MIN) },
    );
    // Fraud: dave reported the push as fraud.
    const dave = uniqueUser('dave');
    const [fraudTx] = await inject([
      { username: dave, result: 'fraud', reason: 'user_marked_fraud', timestampMs: now - 2 * MIN },
    ]);

    const job = jobFor(app);
    const first = await job.runOnce();

    expect(first).toMatchObject({ status: 'ok' });
    expect(first.events).toEqual({
      reconcile_missing_at_duo: 1,
      reconcile_unclaimed_at_duo: 1,
      mfa_abandoned_reason: 1,
      mfa_fraud_reported: 1,
    });
    const [missing] = await auditEvents(app, { type: 'reconcile_missing_at_duo' });
    expect(missing).toMatchObject({
      id: reconcileEventId('reconcile_missing_at_duo', forged.id),
      reason: 'no_duo_transaction',
      txid: forged.txid,
    });
    expect(missing.detail).toMatchObject({ event_id: forged.id });
    const [unclaimed] = await auditEvents(app, { type: 'reconcile_unclaimed_at_duo' });
    expect(unclaimed).toMatchObject({ username: bob, txid: unclaimedTx, reason: 'no_callback' });
    const [reason] = await auditEvents(app, { type: 'mfa_abandoned_reason' });
    expect(reason).toMatchObject({ username: carol, reason: 'user_denied', duoResult: 'denied' });
    expect(reason.detail).toMatchObject({ abandoned_event_id: abandoned.id, duo_result: 'denied' });
    const [fraud] = await auditEvents(app, { type: 'mfa_fraud_reported' });
    expect(fraud).toMatchObject({ username: dave, txid: fraudTx, outcome: 'failure' });
    // The matched sign-on gave nothing; the original abandoned row is unchanged (append-only).
    expect(await auditEvents(app, { username: matched, type: 'reconcile_missing_at_duo' })).toEqual(
      [],
    );
    expect(await repo.findById(abandoned.id)).toEqual(abandoned);
    expect((await repo.verifyChain()).ok).toBe(true);

    // Run again over the same range (a new cursor from the same start): nothing is written twice.
    const again = await jobFor(app, { stateName: 'again' }).runOnce({
      since: Date.now() - 60 * MIN,
    });
    expect(again.status).toBe('ok');
    expect(Object.values(again.events)).toEqual([0, 0, 0, 0]);
    for (const type of [
      'reconcile_missing_at_duo',
      'reconcile_unclaimed_at_duo',
      'mfa_abandoned_reason',
      'mfa_fraud_reported',
    ]) {
      expect(await countType(app, type)).toBe(1);
    }
  });
});

describe('reconcile across pages, restarts and Duo failures (SQLite file shared by restarts)', () => {
  let db: TestDatabase;
  let app: RunningApp;
  beforeAll(async () => {
    db = await createTestDatabase('sqlite');
    sim.control.reset(); // only this describe's entries in Duo's log
    app = await startApp({ ...simulatorEnv(sim), ...NO_RATE_LIMITS, DATABASE_URL: db.url });
  });
  afterAll(async () => {
    await app?.close();
    await db?.drop();
  });

  it('should page through many pages, stop after page k, and continue in a new app with no gap and no double event', async () => {
    const now = Date.now() - 30 * MIN;
    const users = Array.from({ length: 250 }, (_, i) => ({
      username: `paged-${process.pid}-${i}`,
      result: 'success' as const,
      reason: 'user_approved',
      timestampMs: now + i * 100,
    }));
    const txids = await inject(users);
    const first = await jobFor(app, { pageSize: 20, maxPagesPerRun: 4 }).runOnce();
    expect(first).toMatchObject({ status: 'partial', pages: 4, entries: 80 });
    expect(first.events.reconcile_unclaimed_at_duo).toBe(80);
    expect(first.cursor?.phase).toBe('duo');
    expect(first.cursor?.nextOffset?.[1]).toBe(txids[79]);

    // A crash after a page's events were stored and before its cursor was: the store refuses the
    // cursor of the next page once. The run fails; the cursor stays at page 4.
    const store = new ReconcileStore(app.app.get(DataSource));
    const realSave = store.saveState.bind(store);
    let fail = true;
    store.saveState = async (state, manager) => {
      if (fail && state.phase === 'duo' && state.nextOffset) {
        fail = false;
        throw Object.assign(new Error('crash'), { name: 'QueryFailedError' });
      }
      return realSave(state, manager);
    };
    const crashed = await jobFor(app, { pageSize: 20 }, { store }).runOnce();
    expect(crashed).toMatchObject({ status: 'error', error: 'database', pages: 1 });
    expect(await countType(app, 'reconcile_unclaimed_at_duo')).toBe(100);

    // Restart: a new app on the same database picks up the stored cursor.
    await app.close();
    app = await startApp({ ...simulatorEnv(sim), ...NO_RATE_LIMITS, DATABASE_URL: db.url });
    const resumed = await jobFor(app, { pageSize: 20 }).runOnce();
    expect(resumed.status).toBe('ok');
    // Pages 5 (replayed: its 20 events exist) to 13 (the last holds 10 entries).
    expect(resumed.entries).toBe(170);
    expect(resumed.events.reconcile_unclaimed_at_duo).toBe(150);
    const rows: { txid: string }[] = await app.app
      .get(DataSource)
      .query(`SELECT txid FROM audit_events WHERE type = 'reconcile_unclaimed_at_duo'`);
    expect(rows).toHaveLength(250);
    expect(new Set(rows.map((r) => r.txid))).toEqual(new Set(txids));
  });

  it('should back off on 429, keep the cursor on an outage and a bad signature, and count each error', async () => {
    const job = jobFor(app, { pageSize: 50 });
    await job.runOnce(); // catch up
    const [tx] = await inject([
      {
        username: uniqueUser('late'),
        result: 'success',
        reason: 'user_approved',
        // After the window the catch-up run closed (its clock was 15 minutes ahead).
        timestampMs: Date.now() + 5.5 * MIN,
      },
    ]);
    // Two 429s, then Duo answers: the client backs off and the run succeeds.
    await simPost('admin-faults', { fault: '429', count: 2, retryAfterSec: null });
    const later = jobFor(app, { pageSize: 50 }, { aheadMs: 16 * MIN });
    const ok = await later.runOnce();
    expect(ok.status).toBe('ok');
    expect((await auditEvents(app, { txid: tx, type: 'reconcile_unclaimed_at_duo' })).length).toBe(
      1,
    );

    // An outage: the run fails with admin_unavailable and the cursor does not move.
    const before = await later.cursorView();
    await inject([
      {
        username: uniqueUser('x'),
        result: 'fraud',
        reason: 'user_marked_fraud',
        timestampMs: Date.now() + 6.5 * MIN,
      },
    ]);
    await simPost('admin-faults', { fault: 'outage' });
    const down = jobFor(app, {}, { aheadMs: 17 * MIN });
    const failed = await down.runOnce();
    expect(failed).toMatchObject({ status: 'error', error: 'admin_unavailable' });
    expect(down.metrics.errors).toEqual({ admin_unavailable: 1 });
    const afterOutage = await down.cursorView();
    expect(afterOutage?.windowMax).not.toBe(before?.windowMax); // a new window was opened ...
    expect(afterOutage).toMatchObject({ phase: 'duo', nextOffset: null }); // ... and not advanced
    // 429 after every retry: admin_rate_limited, the cursor still where it was.
    await simPost('admin-faults', { fault: '429', retryAfterSec: null });
    const limited = jobFor(app, {}, { aheadMs: 17 * MIN, client: adminClient({ maxAttempts: 2 }) });
    expect(await limited.runOnce()).toMatchObject({ status: 'error', error: 'admin_rate_limited' });
    expect(limited.metrics.errors).toEqual({ admin_rate_limited: 1 });
    expect(await limited.cursorView()).toEqual(afterOutage);
    expect(await countType(app, 'mfa_fraud_reported')).toBe(0);
    await simPost('admin-faults', { fault: null });

    // A bad signature (a wrong secret key): admin_unauthorized, counted, cursor kept; the timer
    // keeps running, and the first run with the right key goes on from the same cursor.
    let client = adminClient({ secretKey: 'A'.repeat(40) });
    const swapping = {
      getAuthenticationLogPage: (q: Parameters<DuoAdminClient['getAuthenticationLogPage']>[0]) =>
        client.getAuthenticationLogPage(q),
    };
    const job2 = new DuoReconcileJob(
      { clientId: sim.clientId },
      {
        client: swapping,
        repository: app.app.get(AuditRepository),
        store: new ReconcileStore(app.app.get(DataSource)),
        lock: new InProcessReconcileLock(),
        now: () => Date.now() + 17 * MIN,
      },
    );
    const results: ReconcileRunResult[] = [];
    const scheduler = new ReconcileScheduler(job2, 50, (r) => results.push(r));
    scheduler.start(0);
    try {
      await waitFor(() => results.length >= 2);
      expect(results[0]).toMatchObject({ status: 'error', error: 'admin_unauthorized' });
      expect(await job2.cursorView()).toEqual(afterOutage);
      client = adminClient();
      await waitFor(() => results.some((r) => r.status === 'ok'));
    } finally {
      await scheduler.stop();
    }
    expect(job2.metrics.errors.admin_unauthorized).toBeGreaterThanOrEqual(2);
    expect(await countType(app, 'mfa_fraud_reported')).toBe(1);
  });
});

describe('npm run audit:reconcile (the one-off CLI)', () => {
  it('should refuse a run without --since, and re-run a range the timer did without writing twice', async () => {
    const db = await createTestDatabase('sqlite');
    sim.control.reset();
    const app = await startApp({ ...simulatorEnv(sim), ...NO_RATE_LIMITS, DATABASE_URL: db.url });
    const lines: string[] = [];
    const out = { log: (l: string) => lines.push(l), error: (l: string) => lines.push(l) };
    const env = {
      DATABASE_URL: db.url,
      AUDIT_CHAIN_KEY: 'test-audit-chain-key-0123456789abcdefghij',
      DUO_CLIENT_ID: sim.clientId,
      ...adminEnv(),
      DUO_RECONCILE_GRACE_MS: '0',
    };
    try {
      expect(await runAuditReconcile([], env, out)).toBe(2);
      expect(lines.pop()).toContain('--since');
      await inject([
        {
          username: uniqueUser('cli'),
          result: 'fraud',
          reason: 'user_marked_fraud',
          timestampMs: Date.now() - MIN,
        },
      ]);
      expect(await runAuditReconcile(['--since', '10m'], env, out)).toBe(0);
      expect(lines.pop()).toMatch(/^audit:reconcile ok: 1 pages, 1 entries .*mfa_fraud_reported=1/);
      expect(await runAuditReconcile(['--since', '10m'], env, out)).toBe(0);
      expect(lines.pop()).toMatch(/mfa_fraud_reported=0/);
      expect(await countType(app, 'mfa_fraud_reported')).toBe(1);
      expect(lines.join('\n')).not.toContain(sim.adminSecretKey);
    } finally {
      await app.close();
      await db.drop();
    }
  });
});

async function waitFor(cond: () => boolean, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) {
      throw new Error('timed out');
    }
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('the reference app wiring', () => {
  it('should say reconcile is off in /health and on the audit page without Admin API credentials', async () => {
    const admin = `recadmin-${process.pid}`;
    const app = await startApp({
      ...simulatorEnv(sim),
      ...NO_RATE_LIMITS,
      AUDIT_ADMIN_USERS: admin,
    });
    try {
      const health = (await (await fetch(`${app.url}/health`)).json()) as {
        info: Record<string, unknown>;
      };
      expect(health.info.reconcile).toEqual({ status: 'up', enabled: false });
      const browser = new Browser();
      await signOn(browser, app.url, admin);
      const page = await (await browser.fetch(`${app.url}/audit`)).text();
      expect(page).toContain('id="reconcile-off"');
    } finally {
      await app.close();
    }
  });

  it('should revoke a fraud reporter sessions on two instances sharing Redis, one run at a time', async () => {
    const prefix = `{rec${randomBytes(4).toString('hex')}}:`;
    const env = {
      ...simulatorEnv(sim),
      ...NO_RATE_LIMITS,
      ...adminEnv(),
      REDIS_URL,
      REDIS_KEY_PREFIX: prefix,
      DUO_RECONCILE_INTERVAL_MS: '3600000',
      DUO_RECONCILE_GRACE_MS: '0',
      AUDIT_ADMIN_USERS: `recadmin-${process.pid}`,
    };
    sim.control.reset(); // only this test's entries in Duo's log
    const a = await startApp(env);
    const b = await startApp(env);
    const redis = new Redis(REDIS_URL);
    try {
      const victim = uniqueUser('victim');
      const [onA, onB] = [new Browser(), new Browser()];
      expect((await signOn(onA, a.url, victim)).status).toBe(303);
      expect((await signOn(onB, b.url, victim)).status).toBe(303);
      expect([await me(onA, a.url), await me(onB, b.url)]).toEqual([200, 200]);
      await inject([
        {
          username: victim,
          result: 'fraud',
          reason: 'user_marked_fraud',
          timestampMs: Date.now() - 5_000,
        },
      ]);

      // While B holds the lock, A's run waits its turn (locked) and changes nothing.
      const lock = new RedisReconcileLock(redis, `${prefix}reconcile:lock`, 10_000);
      const token = await lock.acquire();
      expect(token).not.toBeNull();
      const runnerA = a.app.get(ReconcileRunner);
      expect(await runnerA.scheduler.runNow()).toMatchObject({ status: 'locked' });
      expect([await me(onA, a.url), await me(onB, b.url)]).toEqual([200, 200]);
      await lock.release(token as string);

      const run = await runnerA.scheduler.runNow();
      expect(run).toMatchObject({ status: 'ok', revoked: 2 });
      expect(run.events.mfa_fraud_reported).toBe(1);
      expect([await me(onA, a.url), await me(onB, b.url)]).toEqual([401, 401]);
      const marked = await auditEvents(a, { username: victim, type: 'user_marked_compromised' });
      expect(marked[0].detail).toMatchObject({ actor: RECONCILE_ACTOR, revoked: 2 });
      expect(await redis.exists(`${prefix}reconcile:lock`)).toBe(0);

      const health = (await (await fetch(`${a.url}/health`)).json()) as {
        info: { reconcile: Record<string, unknown> };
      };
      expect(health.info.reconcile).toMatchObject({ enabled: true, lastRun: { status: 'ok' } });
      const metrics = await (await fetch(`${a.url}/metrics`)).text();
      expect(metrics).toMatch(/duo_reconcile_events_total\{kind="mfa_fraud_reported"\} 1/);
      expect(metrics).toMatch(/duo_reconcile_runs_total\{status="locked"\} 1/);
      expect(metrics).toMatch(/duo_reconcile_sessions_revoked_total 2/);
      expect(metrics).toMatch(/duo_reconcile_lag_seconds \d/);
    } finally {
      await redis.quit();
      await a.close();
      await b.close();
    }
  });

  it('should count a bad signature from the app runner by code and keep answering', async () => {
    const app = await startApp({
      ...simulatorEnv(sim),
      ...NO_RATE_LIMITS,
      ...adminEnv(),
      DUO_ADMIN_SECRET_KEY: 'B'.repeat(40),
      DUO_RECONCILE_INTERVAL_MS: '3600000',
    });
    try {
      const runner = app.app.get(ReconcileRunner);
      expect(await runner.scheduler.runNow()).toMatchObject({
        status: 'error',
        error: 'admin_unauthorized',
      });
      expect(await runner.scheduler.runNow()).toMatchObject({
        status: 'error',
        error: 'admin_unauthorized',
      });
      const metrics = await (await fetch(`${app.url}/metrics`)).text();
      expect(metrics).toMatch(/duo_reconcile_errors_total\{code="admin_unauthorized"\} 2/);
      expect(metrics).not.toContain('B'.repeat(40));
      expect((await fetch(`${app.url}/health`)).status).toBe(200);
    } finally {
      await app.close();
    }
  });
});
