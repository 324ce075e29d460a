// Group commit on PostgreSQL (postgres-audit.appender.ts), on a real database: appends that come
// together are written as one batch by one statement; order, chain, commit-before-resolve and
// several instances on one chain must hold as they do one append at a time.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { DataSource } from 'typeorm';
import {
  auditRepository,
  createPgDatabase,
  openDataSource,
  type TestDatabase,
} from '../../../test/support/audit-db.js';
import { buildAuditRecord, type AuditRecord } from './audit-record.js';
import type { TypeOrmAuditRepository } from './typeorm-audit.repository.js';

const TIMEOUT_MS = 30_000; // hundreds of fsync'd commits on a loaded machine

function record(username: string, instanceId = 'spec'): AuditRecord {
  return buildAuditRecord({ type: 'mfa_started', outcome: 'info', username }, { instanceId });
}

describe('PostgreSQL group commit', () => {
  let db: TestDatabase;
  let a: DataSource;
  let b: DataSource;
  let repoA: TypeOrmAuditRepository;
  let repoB: TypeOrmAuditRepository;

  beforeAll(async () => {
    db = await createPgDatabase('audit_group');
    a = await openDataSource(db.url);
    b = await openDataSource(db.url, false);
    repoA = auditRepository(a);
    repoB = auditRepository(b);
  });

  afterAll(async () => {
    await Promise.all([a?.destroy(), b?.destroy()]);
    await db?.drop();
  });

  const rows = async (afterSeq = 0) =>
    (
      await a.query<{ seq: number; id: string; username: string; instance_id: string }[]>(
        'SELECT seq, id, username, instance_id FROM audit_events WHERE seq > $1 ORDER BY seq',
        [afterSeq],
      )
    ).map((r) => ({ ...r, seq: Number(r.seq) }));
  const headSeq = async () => (await repoA.head())?.seq ?? 0;
  /** Transactions that wrote the rows after a seq (rows of one transaction share its xmin). */
  const transactions = async (afterSeq: number) =>
    Number(
      (
        await a.query<{ n: string }[]>(
          'SELECT COUNT(DISTINCT xmin::text) AS n FROM audit_events WHERE seq > $1',
          [afterSeq],
        )
      )[0].n,
    );
  const expectChainVerified = async () => {
    const seq = await headSeq();
    expect(await repoB.verifyChain()).toEqual({ ok: true, checked: seq, lastSeq: seq });
  };

  it(
    'should write 64 appends made at once in enqueue order, in batches, as a verified chain, each visible to another connection when it resolves',
    async () => {
      await repoA.append({ type: 'mfa_started', outcome: 'info', username: 'first' });
      const before = await headSeq();
      const names = Array.from({ length: 64 }, (_, i) => `one-${i}`);
      const seenByOther = await Promise.all(
        names.map(async (username) => {
          const event = await repoA.append({ type: 'mfa_started', outcome: 'info', username });
          // Resolved only once committed: another instance's connection sees the row already.
          const found = await b.query<unknown[]>('SELECT 1 FROM audit_events WHERE id = $1', [
            event.id,
          ]);
          return found.length;
        }),
      );
      expect(seenByOther).toEqual(names.map(() => 1));
      const written = await rows(before);
      expect(written.map((r) => r.seq)).toEqual(names.map((_, i) => before + 1 + i));
      expect(written.map((r) => r.username)).toEqual(names);
      // Group commit did happen: fewer transactions than appends (the first goes alone).
      expect(await transactions(before)).toBeLessThan(names.length / 4);
      await expectChainVerified();
    },
    TIMEOUT_MS,
  );

  it(
    'should form one contiguous verified chain, each instance in its own enqueue order, when two instances append in batches at once',
    async () => {
      const before = await headSeq();
      const wave = (repo: TypeOrmAuditRepository, tag: string, round: number) =>
        Promise.all(
          Array.from({ length: 32 }, (_, i) =>
            repo.append(
              { type: 'mfa_started', outcome: 'info', username: `${tag}-${round}-${i}` },
              { instanceId: tag },
            ),
          ),
        );
      // Waves back to back on both instances: batches of one race the other's for the head.
      await Promise.all(
        (['a', 'b'] as const).map(async (tag) => {
          for (let round = 0; round < 5; round += 1) {
            await wave(tag === 'a' ? repoA : repoB, tag, round);
          }
        }),
      );
      const written = await rows(before);
      expect(written.map((r) => r.seq)).toEqual(
        Array.from({ length: 320 }, (_, i) => before + 1 + i),
      );
      for (const tag of ['a', 'b']) {
        const expected = Array.from(
          { length: 160 },
          (_, k) => `${tag}-${Math.floor(k / 32)}-${k % 32}`,
        );
        expect(written.filter((r) => r.instance_id === tag).map((r) => r.username)).toEqual(
          expected,
        );
      }
      await expectChainVerified();
    },
    TIMEOUT_MS,
  );

  it(
    'should return the stored row for an id already stored and append the rest of its batch around it, chain intact',
    async () => {
      const replayed = record('replayed');
      const stored = await repoA.appendRecord(replayed);
      const before = await headSeq();
      // The first append goes alone; the three made while it is in flight form one batch.
      const alone = repoA.appendRecord(record('alone'));
      const batch = [record('before-replay'), replayed, record('after-replay')];
      const results = await Promise.all([alone, ...batch.map((r) => repoA.appendRecord(r))]);
      expect(results[2]).toEqual(stored);
      expect(results.map((e) => e.username)).toEqual([
        'alone',
        'before-replay',
        'replayed',
        'after-replay',
      ]);
      const written = await rows(before);
      expect(written.map((r) => [r.seq, r.username])).toEqual([
        [before + 1, 'alone'],
        [before + 2, 'before-replay'],
        [before + 3, 'after-replay'],
      ]);
      expect(results.map((e) => e.seq)).toEqual([before + 1, before + 2, stored.seq, before + 3]);
      await expectChainVerified();
      // And the next batch links on from there.
      const next = await Promise.all([
        repoA.appendRecord(record('n1')),
        repoA.appendRecord(record('n2')),
      ]);
      expect(next.map((e) => e.seq)).toEqual([before + 4, before + 5]);
      await expectChainVerified();
    },
    TIMEOUT_MS,
  );

  it(
    'should reject every append of a batch whose statement fails and write none of it, then append on',
    async () => {
      const before = await headSeq();
      const alone = repoA.appendRecord(record('alone-2'));
      // 200 characters in a varchar(128) column: PostgreSQL refuses the row, so the statement.
      const bad = { ...record('bad'), instance_id: 'x'.repeat(200) };
      const batch = [record('good-1'), bad, record('good-2')].map((r) =>
        repoA.appendRecord(r).then(
          () => 'stored',
          (err: Error) => err.message,
        ),
      );
      expect((await alone).seq).toBe(before + 1);
      const outcomes = await Promise.all(batch);
      expect(outcomes).toEqual(outcomes.map(() => expect.stringMatching(/too long/)));
      expect((await rows(before)).map((r) => r.username)).toEqual(['alone-2']);
      expect(await headSeq()).toBe(before + 1);
      await expectChainVerified();
      const after = await Promise.all([
        repoA.appendRecord(record('later-1')),
        repoA.appendRecord(record('later-2')),
      ]);
      expect(after.map((e) => e.seq)).toEqual([before + 2, before + 3]);
      await expectChainVerified();
    },
    TIMEOUT_MS,
  );
});
