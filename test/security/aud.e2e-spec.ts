/**
 * Catalogue 2.8 (AUD): audit-log guarantees. Flow cases drive the REAL app over HTTP with its audit
 * trail in a fresh PostgreSQL database; chain cases use the TypeORM repository on fresh PostgreSQL
 * databases and tamper with SQL, as an attacker with database access would.
 *
 * Referenced, not duplicated:
 * - AUD-05 (PostgreSQL unreachable: durable spool, 0 lost, order kept): test/audit-outage.e2e-spec.ts
 *   "should lose and duplicate no event and keep their order when the database stops mid-stream".
 * - AUD-18 (flood of invalid callbacks aggregated): RL-03 in test/rate-limit.e2e-spec.ts "should
 *   answer 429 after the threshold, call Duo 0 times and audit once for a flood of random callbacks".
 * Not applicable (why, in docs/security-cases-choices.md):
 * - AUD-04 (inserts delayed 2 s / 10 s): by the pinned policy the event is durable BEFORE the
 *   response (no success without its record); a slow write spools after writeTimeoutMs instead of
 *   waiting, so there is no unbounded queue to export; latency figures live in bench/audit.mjs.
 * - AUD-06 (kill -9 between answer and insert): cannot happen by construction — the answer is sent
 *   only after the row or the fsync'd spool line exists; spool replay and dedupe are AUD-05/AUD-07.
 * - AUD-20 (external SIEM sink down): the app ships no SIEM sink; PostgreSQL is the sink (AUD-05).
 * AUD-16 is not in the catalogue.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it, jest } from '@jest/globals';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { DataSource } from 'typeorm';
import { buildAuditRecord } from '../../packages/audit/src/audit-record.js';
import type { TypeOrmAuditRepository } from '@duo-nest/audit';
import {
  adminQuery,
  auditRepository,
  createPgDatabase,
  openDataSource,
  type TestDatabase,
} from '../support/audit-db.js';
import { Browser } from '../support/app-harness.js';
import {
  auditEvents,
  JSON_ACCEPT,
  postLikeBrowser,
  signOnToCallback,
  uniqueUser,
} from '../support/duo-flow.js';
import { requestClaims, sessionId, type Stack, startStack } from '../support/security-stack.js';

jest.setTimeout(30_000);

describe('AUD: the audit trail of the running app (PostgreSQL)', () => {
  let db: TestDatabase;
  let stack: Stack;
  beforeAll(async () => {
    db = await createPgDatabase('sec_aud');
    stack = await startStack({ DATABASE_URL: db.url, INSTANCE_ID: 'sec-aud-1' });
  });
  afterAll(async () => {
    await stack?.close();
    await db?.drop();
  });

  const types = async (username: string) =>
    (await auditEvents(stack.app, { username }, { limit: 500 })).map((e) => e.type).sort();

  it('AUD-01 should record exactly the documented events for each flow', async () => {
    const ok = uniqueUser('aud01-ok');
    const b1 = new Browser();
    const c1 = await signOnToCallback(
      b1,
      stack.app.url,
      ok,
      {},
      { form: { returnTo: 'https://evil.example/' } },
    );
    await b1.fetch(c1);
    const page = await (await b1.fetch(`${stack.app.url}/result`)).text();
    const csrf = /name="_csrf" value="([^"]*)"/.exec(page)?.[1];
    await b1.postForm(`${stack.app.url}/logout`, csrf ? { _csrf: csrf } : {});
    expect(await types(ok)).toEqual(
      ['input_validation_failed', 'mfa_started', 'mfa_succeeded', 'session_logout'].sort(),
    );

    const denied = uniqueUser('aud01-denied');
    const b2 = new Browser();
    const c2 = await signOnToCallback(b2, stack.app.url, denied);
    const state = new URL(c2).searchParams.get('state');
    await b2.fetch(`${stack.app.url}/auth/duo/callback?error=access_denied&state=${state}`);
    expect(await types(denied)).toEqual(['mfa_denied', 'mfa_started']);

    const failed = uniqueUser('aud01-failed');
    const b3 = new Browser();
    const c3 = await signOnToCallback(b3, stack.app.url, failed);
    stack.sim.control.setFaults({ token: 'wrong_nonce', once: true });
    await b3.fetch(c3);
    expect(await types(failed)).toEqual(['mfa_failed', 'mfa_started']);

    const unavailable = uniqueUser('aud01-down');
    stack.sim.control.setFaults({ health: 'down' });
    try {
      await new Promise((r) => setTimeout(r, 50));
      const res = await postLikeBrowser(
        new Browser(),
        stack.app.url,
        '/login',
        { username: unavailable },
        JSON_ACCEPT,
      );
      if (res.status === 503) {
        expect(await types(unavailable)).toEqual(['mfa_unavailable']);
      } else {
        // The health answer was still cached "up"; the sign-on went to Duo as usual.
        expect(res.status).toBe(303);
      }
    } finally {
      stack.sim.control.setFaults({ health: null });
    }
  });

  it('AUD-02 should hold when, where, who and what in every row (UTC, ids, sequence, encoded UA)', async () => {
    const username = uniqueUser('aud02');
    const browser = new Browser();
    const callback = await signOnToCallback(browser, stack.app.url, username);
    const ua = `evil\r\nX-Injected: 1 ${'u'.repeat(2000)}`;
    await browser.fetch(callback, { headers: { 'user-agent': ua.replace(/[\r\n]/g, ' ') } });
    const rows = await auditEvents(stack.app, { username }, { limit: 500 });
    const success = rows.find((r) => r.type === 'mfa_succeeded');
    expect(success).toMatchObject({
      id: expect.stringMatching(/^[0-9a-f-]{36}$/),
      occurredAt: expect.stringMatching(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/),
      outcome: 'success',
      username,
      clientIp: expect.stringMatching(/127\.0\.0\.1/),
      instanceId: 'sec-aud-1',
      correlationId: expect.any(String),
      seq: expect.any(Number),
    });
    expect(success?.userAgent?.length).toBeLessThanOrEqual(512);
    expect(new Set(rows.map((r) => r.id)).size).toBe(rows.length);
    const seqs = rows.map((r) => r.seq);
    expect(seqs).toEqual([...seqs].sort((a, b) => b - a));
  });

  it('AUD-03 should keep every canary (secret, code, state, nonce, tokens, assertion, session id) out of every column', async () => {
    const username = uniqueUser('aud03');
    const browser = new Browser();
    const seen: string[] = [];
    stack.proxy.onToken = (a) => {
      seen.push(String(a.json?.id_token), String(a.json?.access_token));
      return undefined;
    };
    const { callback, authorize } = await signOnToCallback(
      browser,
      stack.app.url,
      username,
      {},
      { authorize: true },
    );
    await browser.fetch(callback);
    stack.proxy.onToken = undefined;
    const cb = new URL(callback).searchParams;
    const last = stack.proxy.tokenRequests[stack.proxy.tokenRequests.length - 1];
    const canaries = [
      stack.sim.clientSecret,
      cb.get('duo_code') ?? '',
      cb.get('state') ?? '',
      String(requestClaims(authorize).nonce),
      new URL(authorize).searchParams.get('request') ?? '',
      last.form.get('client_assertion') ?? '',
      sessionId(browser) ?? '',
      ...seen,
    ];
    expect(canaries.every((c) => c.length >= 16)).toBe(true);
    const ds = await openDataSource(db.url, false);
    try {
      const dump = JSON.stringify(await ds.query('SELECT * FROM audit_events'));
      for (const canary of canaries) {
        expect(dump).not.toContain(canary);
      }
    } finally {
      await ds.destroy();
    }
  });

  it('AUD-08 should deny sign-on loudly, never silently, when neither the database nor the spool can take the event', async () => {
    const dead = await createPgDatabase('sec_aud08');
    const dir = mkdtempSync(join(tmpdir(), 'sec-aud08-'));
    writeFileSync(join(dir, 'not-a-dir'), '');
    let app: Stack | undefined;
    try {
      app = await startStack({
        DATABASE_URL: dead.url,
        AUDIT_SPOOL_DIR: join(dir, 'not-a-dir', 'spool'),
      }).catch(() => undefined);
      if (!app) {
        return; // refusing to start without a writable spool is the loudest outcome of all
      }
      await dead.drop();
      const res = await postLikeBrowser(
        new Browser(),
        app.app.url,
        '/login',
        { username: uniqueUser('aud08') },
        JSON_ACCEPT,
      );
      expect(res.status).toBe(503);
    } finally {
      await app?.close();
      await dead.drop();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('AUD: tamper evidence and concurrency of the chain (PostgreSQL)', () => {
  let db: TestDatabase;
  let ds: DataSource;
  let repo: TypeOrmAuditRepository;
  const dbs: TestDatabase[] = [];

  /** One database for the file; each test starts from an empty chain of `n` events. */
  async function freshChain(n = 10): Promise<void> {
    if (!db) {
      db = await createPgDatabase('sec_chain');
      dbs.push(db);
    }
    ds = await openDataSource(db.url);
    await ds.query('TRUNCATE audit_events, audit_chain_head, audit_chain_anchor');
    repo = auditRepository(ds);
    for (let i = 1; i <= n; i++) {
      await repo.append({ type: 'mfa_started', outcome: 'info', username: `user${i}` });
    }
  }

  afterEach(async () => {
    await ds?.destroy();
  });
  afterAll(async () => {
    for (const d of dbs) {
      await d.drop();
    }
  });

  it('AUD-07 should keep one row and one chain when the spool is replayed twice', async () => {
    await freshChain(3);
    const record = buildAuditRecord(
      { type: 'mfa_succeeded', outcome: 'success', username: 'replayed' },
      { id: randomUUID() },
    );
    await repo.appendMany([record]);
    await repo.appendMany([record]);
    expect(
      await ds.query(`SELECT count(*)::int AS n FROM audit_events WHERE id = '${record.id}'`),
    ).toEqual([{ n: 1 }]);
    expect(await repo.verifyChain()).toMatchObject({ ok: true, checked: 4 });
  });

  it('AUD-09 should name row k when one field of it is edited with SQL', async () => {
    await freshChain();
    await ds.query(`UPDATE audit_events SET outcome = 'success' WHERE seq = 6`);
    expect(await repo.verifyChain()).toMatchObject({ ok: false, firstBrokenSeq: 6 });
  });

  it('AUD-10 should detect a deleted row', async () => {
    await freshChain();
    await ds.query('DELETE FROM audit_events WHERE seq = 4');
    expect(await repo.verifyChain()).toMatchObject({ ok: false, firstBrokenSeq: 4 });
  });

  it('AUD-11 should detect two swapped rows', async () => {
    await freshChain();
    await ds.query('UPDATE audit_events SET seq = -7 WHERE seq = 7');
    await ds.query('UPDATE audit_events SET seq = 7 WHERE seq = 8');
    await ds.query('UPDATE audit_events SET seq = 8 WHERE seq = -7');
    expect(await repo.verifyChain()).toMatchObject({ ok: false, firstBrokenSeq: 7 });
  });

  it('AUD-12 should detect tail truncation against an external checkpoint even when the head is rolled back', async () => {
    await freshChain();
    const dir = mkdtempSync(join(tmpdir(), 'sec-ckpt-'));
    const file = join(dir, 'checkpoints');
    try {
      const [oldHead] = await ds.query<Record<string, unknown>[]>('SELECT * FROM audit_chain_head');
      await repo.append({ type: 'mfa_started', outcome: 'info', username: 'later1' });
      await repo.append({ type: 'mfa_started', outcome: 'info', username: 'later2' });
      await repo.writeCheckpoint(file);
      // The attacker deletes the newest rows and puts back the head row they copied earlier.
      await ds.query('DELETE FROM audit_events WHERE seq > 10');
      const cols = Object.keys(oldHead);
      await ds.query(
        `UPDATE audit_chain_head SET ${cols.map((c, i) => `"${c}" = $${i + 1}`).join(', ')}`,
        cols.map((c) => oldHead[c]),
      );
      expect(await repo.verifyChain()).toMatchObject({ ok: true }); // without the checkpoint: looks fine
      expect(await repo.verifyChain({ checkpointFile: file })).toMatchObject({ ok: false });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('AUD-13 should detect an edit whose links were recomputed as a plain SHA-256 chain', async () => {
    await freshChain();
    const { createHash } = await import('node:crypto');
    const rows = await ds.query<{ seq: number; prev_hash: string }[]>(
      'SELECT seq, prev_hash FROM audit_events WHERE seq >= 5 ORDER BY seq',
    );
    let prev = rows[0].prev_hash;
    await ds.query(`UPDATE audit_events SET username = 'mallory' WHERE seq = 5`);
    for (const r of rows) {
      const hash = createHash('sha256').update(`${prev}|${r.seq}|forged`).digest('hex');
      await ds.query('UPDATE audit_events SET prev_hash = $1, hash = $2 WHERE seq = $3', [
        prev,
        hash,
        r.seq,
      ]);
      prev = hash;
    }
    expect(await repo.verifyChain()).toMatchObject({ ok: false, firstBrokenSeq: 5 });
  });

  it('AUD-14 should form one linear chain when 4 instances append concurrently', async () => {
    await freshChain(0);
    const writers = await Promise.all([0, 1, 2, 3].map(() => openDataSource(db.url, false)));
    try {
      await Promise.all(
        writers.map(async (w, i) => {
          const r = auditRepository(w);
          for (let k = 0; k < 50; k++) {
            await r.append(
              { type: 'mfa_started', outcome: 'info', username: `w${i}-${k}` },
              { instanceId: `i${i}` },
            );
          }
        }),
      );
    } finally {
      await Promise.all(writers.map((w) => w.destroy()));
    }
    expect(await repo.verifyChain()).toEqual({ ok: true, checked: 200, lastSeq: 200 });
  });

  it('AUD-15 should deny UPDATE, DELETE and TRUNCATE to an append-only app role while appends still work', async () => {
    await freshChain(2);
    const role = `sec_app_${randomUUID().slice(0, 8)}`;
    await ds.query(`CREATE ROLE ${role} LOGIN`);
    try {
      await ds.query(`GRANT SELECT, INSERT ON audit_events TO ${role}`);
      await ds.query(`GRANT SELECT, INSERT, UPDATE ON audit_chain_head TO ${role}`);
      await ds.query(`GRANT SELECT ON audit_chain_anchor TO ${role}`);
      const url = new URL(db.url);
      url.username = role;
      const appDs = await openDataSource(url.toString(), false);
      try {
        await auditRepository(appDs).append({
          type: 'mfa_started',
          outcome: 'info',
          username: 'ok',
        });
        for (const sql of [
          "UPDATE audit_events SET username = 'x'",
          'DELETE FROM audit_events',
          'TRUNCATE audit_events',
        ]) {
          await expect(appDs.query(sql)).rejects.toThrow(/permission denied/);
        }
      } finally {
        await appDs.destroy();
      }
      expect(await repo.verifyChain()).toMatchObject({ ok: true, checked: 3 });
    } finally {
      await ds.query(`REASSIGN OWNED BY ${role} TO postgres`).catch(() => undefined);
      await ds.query(`DROP OWNED BY ${role}`).catch(() => undefined);
      await adminQuery(`DROP ROLE IF EXISTS ${role}`).catch(() => undefined);
    }
  });

  it('AUD-17 should keep verifying after a retention purge, which leaves an anchor', async () => {
    await freshChain();
    const cut = await ds.query<{ occurred_at: string }[]>(
      'SELECT occurred_at FROM audit_events WHERE seq = 5',
    );
    const result = await repo.purgeBefore(new Date(cut[0].occurred_at));
    expect(result.deleted).toBeGreaterThan(0);
    expect(result.anchorSeq).toBe(result.deleted);
    expect(await repo.verifyChain()).toMatchObject({ ok: true });
  });

  it('AUD-19 should order by sequence and still verify when instance clocks are skewed by 5 minutes', async () => {
    await freshChain(0);
    const now = Date.now();
    for (const [i, skew] of [0, 300_000, -300_000, 120_000, -60_000].entries()) {
      await repo.append(
        { type: 'mfa_started', outcome: 'info', username: `skew${i}` },
        { occurredAt: new Date(now + skew) },
      );
    }
    expect(await repo.verifyChain()).toEqual({ ok: true, checked: 5, lastSeq: 5 });
    const bySeq = await ds.query<{ username: string }[]>(
      'SELECT username FROM audit_events ORDER BY seq',
    );
    expect(bySeq.map((r) => r.username)).toEqual(['skew0', 'skew1', 'skew2', 'skew3', 'skew4']);
  });
});
