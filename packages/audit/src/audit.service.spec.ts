import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, appendFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { InMemoryAuditRepository } from '../../../test/fakes/in-memory-audit.repository.js';
import { buildAuditRecord } from './audit-record.js';
import { AuditSpool } from './audit-spool.js';
import { AuditUnavailableError } from './audit.errors.js';
import { resolveAuditOptions, type AuditModuleOptions } from './audit.options.js';
import { AuditService } from './audit.service.js';

describe('AuditService', () => {
  let dir: string;
  let repo: InMemoryAuditRepository;

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'audit-svc-'));
    repo = new InMemoryAuditRepository();
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  const service = (options: Partial<AuditModuleOptions> = {}) =>
    new AuditService(
      repo,
      resolveAuditOptions({
        chainKey: 'unused-here-0123456789',
        spoolDir: dir,
        instanceId: 'unit-1',
        writeTimeoutMs: 200,
        ...options,
      }),
    );

  const user = (i: number) => ({
    type: 'mfa_started' as const,
    outcome: 'info' as const,
    username: `user${i}`,
  });

  it('should write to the database and stamp the instance id when the database is up', async () => {
    const s = service();
    const result = await s.record(user(1), { clientIp: '192.0.2.1' });
    expect(result.storedIn).toBe('database');
    expect(result.event).toMatchObject({
      seq: 1,
      username: 'user1',
      instanceId: 'unit-1',
      clientIp: '192.0.2.1',
    });
  });

  it('should spool during an outage and replay in order with nothing lost or doubled when the database is back', async () => {
    const s = service();
    await s.onModuleInit();
    try {
      await s.record(user(0));
      repo.failWith = new Error('connection refused');
      const spooled = [];
      for (let i = 1; i <= 5; i += 1) {
        spooled.push(await s.record(user(i)));
      }
      expect(spooled.every((r) => r.storedIn === 'spool')).toBe(true);
      expect(await s.spool.depth()).toBe(5);
      repo.failWith = null;
      // While the spool is pending, a new event queues behind the spooled ones (order kept).
      const behind = await s.record(user(6));
      expect(behind.storedIn).toBe('spool');
      await s.replaySpool();
      await s.replaySpool(); // a second replay adds nothing
      const names = repo.rows.map((r) => r.username ?? r.type);
      expect(names).toEqual([
        'user0',
        'user1',
        'user2',
        'user3',
        'user4',
        'user5',
        'user6',
        'audit_spool_replayed',
      ]);
      expect(new Set(repo.rows.map((r) => r.id)).size).toBe(repo.rows.length);
      expect(await s.spool.depth()).toBe(0);
      expect((await s.record(user(7))).storedIn).toBe('database');
      expect((await repo.verifyChain()).ok).toBe(true);
    } finally {
      s.onModuleDestroy();
    }
  });

  it('should spool a slow write and keep one row when the slow write lands later', async () => {
    const s = service({ writeTimeoutMs: 20 });
    repo.delayMs = 100;
    const result = await s.record(user(1));
    expect(result.storedIn).toBe('spool');
    await new Promise((r) => setTimeout(r, 150));
    repo.delayMs = 0;
    await s.replaySpool();
    expect(repo.rows.filter((r) => r.id === result.id)).toHaveLength(1);
  });

  it('should throw AuditUnavailableError and spool nothing when the policy is deny', async () => {
    const s = service({ policy: 'deny' });
    repo.failWith = new Error('down');
    await expect(s.record(user(1))).rejects.toBeInstanceOf(AuditUnavailableError);
    expect(await s.spool.depth()).toBe(0);
    expect(s.metrics.denied).toBe(1);
  });

  it('should throw AuditUnavailableError when neither the database nor the spool can be written', async () => {
    const file = join(dir, 'not-a-dir');
    writeFileSync(file, 'x');
    const s = service({ spoolDir: file });
    repo.failWith = new Error('down');
    await expect(s.record(user(1))).rejects.toBeInstanceOf(AuditUnavailableError);
    expect(s.metrics.spoolFailures).toBe(1);
  });

  it('should replay the records left by a crashed process and set aside a torn line', async () => {
    // What a process killed during an outage leaves behind: two spooled events and a torn line.
    const leftBehind = new AuditSpool(dir, 'unit-1');
    const a = buildAuditRecord(user(1));
    const b = buildAuditRecord(user(2));
    await leftBehind.append(a);
    await leftBehind.append(b);
    appendFileSync(leftBehind.file, '{"id":"torn');
    const restarted = service();
    await restarted.spool.init(); // what onModuleInit does first (without the timers)
    try {
      const c = await restarted.record(user(3)); // goes behind the spooled events
      expect(c.storedIn).toBe('spool');
      expect(await restarted.replaySpool()).toBe(3);
      expect(repo.rows.slice(0, 3).map((r) => r.id)).toEqual([a.id, b.id, c.id]);
      expect(readFileSync(restarted.spool.rejectedFile, 'utf8')).toContain('"torn');
      expect(repo.rows.at(-1)).toMatchObject({ type: 'audit_spool_replayed', outcome: 'failure' });
    } finally {
      restarted.onModuleDestroy();
    }
  });

  it('should keep the spool file when the replay fails halfway', async () => {
    const s = service();
    repo.failWith = new Error('down');
    await s.record(user(1));
    await expect(s.replaySpool()).rejects.toThrow('down');
    expect(await s.spool.depth()).toBe(1);
    expect(await s.replayIfPending()).toBe(0);
    repo.failWith = null;
    expect(await s.replayIfPending()).toBe(1);
  });

  it('should purge with the retention cutoff when retentionDays is set', async () => {
    const calls: Date[] = [];
    repo.purgeBefore = (d: Date) => {
      calls.push(d);
      return Promise.resolve({ deleted: 0, anchorSeq: null });
    };
    expect(await service().purgeExpired()).toBeNull();
    await service({ retentionDays: 30 }).purgeExpired(new Date('2026-03-31T00:00:00.000Z'));
    expect(calls.map((d) => d.toISOString())).toEqual(['2026-03-01T00:00:00.000Z']);
  });

  it('should reject an event outside the catalogue before touching the database', async () => {
    await expect(
      service().record({ type: 'nope', outcome: 'info' } as never),
    ).rejects.toBeInstanceOf(TypeError);
    expect(repo.appendCalls).toBe(0);
    expect(() => buildAuditRecord({ type: 'mfa_started', outcome: 'info' })).not.toThrow();
  });
});
