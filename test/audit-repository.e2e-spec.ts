import { afterAll, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import { randomUUID } from 'node:crypto';
import type { DataSource } from 'typeorm';
import type { DuoAuthContext } from '@duo-nest/core';
import type { AuditEventInput } from '../packages/audit/src/audit-events.js';
import { buildAuditRecord } from '../packages/audit/src/audit-record.js';
import { AuditQueryError } from '../packages/audit/src/audit.repository.js';
import type { TypeOrmAuditRepository } from '../packages/audit/src/typeorm-audit.repository.js';
import {
  ENGINES,
  auditRepository,
  createTestDatabase,
  openDataSource,
  type TestDatabase,
} from './support/audit-db.js';

const BASE = Date.parse('2026-11-20T10:00:00.000Z');
const HOUR = 3_600_000;

function authContext(user: string, factor: string, ip: string): DuoAuthContext {
  return {
    txid: `tx-${randomUUID()}`,
    timestamp: 1_790_000_000,
    user: { name: user, key: 'DUKEY', groups: ['admins', 'staff'] },
    application: { name: 'duo-nest', key: 'DIKEY' },
    auth_device: {
      ip: '10.0.0.9',
      name: 'My iPhone',
      location: { city: 'Ann Arbor', state: 'Michigan', country: 'United States' },
    },
    access_device: { ip, location: { city: 'Berlin', country: 'Germany' }, hostname: null },
    factor,
    event_type: 'authentication',
    result: 'success',
    reason: 'user_approved',
  };
}

/** 30 events over 30 hours: users alice/bob/carol in turn, factors push/passcode, outcomes vary. */
function fixture(i: number): { input: AuditEventInput; occurredAt: Date } {
  const users = ['alice', 'bob', 'carol'];
  const user = users[i % 3];
  const success = i % 4 !== 0;
  return {
    occurredAt: new Date(BASE + i * HOUR),
    input: success
      ? {
          type: 'mfa_succeeded',
          outcome: 'success',
          authContext: authContext(user, i % 2 === 0 ? 'duo_push' : 'passcode', `203.0.113.${i}`),
          authResult: { result: 'allow', status: 'allow', status_msg: 'Login Successful' },
          clientIp: `198.51.100.${i % 5}`,
          userAgent: 'Mozilla/5.0',
          correlationId: `corr-${i}`,
        }
      : {
          type: 'mfa_failed',
          outcome: 'failure',
          username: user,
          reason: 'state_mismatch',
          clientIp: `198.51.100.${i % 5}`,
        },
  };
}

describe.each(ENGINES)('TypeOrmAuditRepository on %s', (engine) => {
  let db: TestDatabase;
  let ds: DataSource;
  let repo: TypeOrmAuditRepository;

  beforeAll(async () => {
    db = await createTestDatabase(engine);
    ds = await openDataSource(db.url);
  });

  afterAll(async () => {
    await ds?.destroy();
    await db?.drop();
  });

  async function reset(): Promise<void> {
    await ds.query('DELETE FROM audit_events');
    await ds.query('DELETE FROM audit_chain_head');
    await ds.query('DELETE FROM audit_chain_anchor');
    repo = auditRepository(ds);
  }

  async function seed(n = 30): Promise<void> {
    for (let i = 0; i < n; i += 1) {
      const { input, occurredAt } = fixture(i);
      await repo.append(input, { occurredAt, instanceId: 'test-1' });
    }
  }

  describe('appends and reads', () => {
    beforeAll(async () => {
      await reset();
      await seed();
    });

    it('should assign contiguous sequence numbers and derive Duo columns when events are appended', async () => {
      const page = await repo.findPage({}, null, 500);
      expect(page.items.map((e) => e.seq)).toEqual(Array.from({ length: 30 }, (_, i) => 30 - i));
      const e = page.items.find((x) => x.seq === 2)!;
      expect(e).toMatchObject({
        type: 'mfa_succeeded',
        outcome: 'success',
        username: 'bob',
        factor: 'passcode',
        duoResult: 'allow',
        duoStatus: 'allow',
        duoReason: 'user_approved',
        authDeviceIp: '10.0.0.9',
        authDeviceName: 'My iPhone',
        authDeviceLocation: 'Ann Arbor, Michigan, United States',
        accessDeviceIp: '203.0.113.1',
        accessDeviceLocation: 'Berlin, Germany',
        application: 'duo-nest',
        groups: ['admins', 'staff'],
        clientIp: '198.51.100.1',
        correlationId: 'corr-1',
        instanceId: 'test-1',
        occurredAt: '2026-11-20T11:00:00.000Z',
      });
      expect(e.txid).toMatch(/^tx-/);
      expect(e.authContext).toMatchObject({ factor: 'passcode', user: { name: 'bob' } });
    });

    it('should return the event when found by id and null when the id is unknown', async () => {
      const [first] = (await repo.findPage({}, null, 1)).items;
      expect(await repo.findById(first.id)).toEqual(first);
      expect(await repo.findById(randomUUID())).toBeNull();
    });

    it('should walk every event newest first without overlap when paging with the cursor', async () => {
      const seen: number[] = [];
      let cursor: string | null = null;
      let pages = 0;
      do {
        const page = await repo.findPage({}, cursor, 7);
        expect(page.items.length).toBeLessThanOrEqual(7);
        seen.push(...page.items.map((e) => e.seq));
        cursor = page.nextCursor;
        pages += 1;
      } while (cursor);
      expect(pages).toBe(5);
      expect(seen).toEqual(Array.from({ length: 30 }, (_, i) => 30 - i));
    });

    it('should apply every filter when filtering by username, type, outcome, factor, reason, txid, ip and time', async () => {
      const all = (await repo.findPage({}, null, 500)).items;
      const check = async (
        filter: Parameters<typeof repo.findPage>[0],
        predicate: (e: (typeof all)[number]) => boolean,
      ) => {
        const got = (await repo.findPage(filter, null, 500)).items.map((e) => e.seq);
        const want = all.filter(predicate).map((e) => e.seq);
        expect(want.length).toBeGreaterThan(0);
        expect(got).toEqual(want);
      };
      await check({ username: 'alice' }, (e) => e.username === 'alice');
      await check({ type: 'mfa_failed' }, (e) => e.type === 'mfa_failed');
      await check({ outcome: 'success' }, (e) => e.outcome === 'success');
      await check({ factor: 'duo_push' }, (e) => e.factor === 'duo_push');
      await check({ reason: 'state_mismatch' }, (e) => e.reason === 'state_mismatch');
      await check({ txid: all[3].txid ?? '' }, (e) => e.txid === all[3].txid);
      await check({ ip: '198.51.100.2' }, (e) => e.clientIp === '198.51.100.2');
      await check({ ip: '203.0.113.5' }, (e) => e.accessDeviceIp === '203.0.113.5');
      const from = new Date(BASE + 5 * HOUR);
      const to = new Date(BASE + 12 * HOUR);
      await check(
        { from, to, username: 'bob' },
        (e) =>
          e.username === 'bob' &&
          e.occurredAt >= from.toISOString() &&
          e.occurredAt < to.toISOString(),
      );
    });

    it('should cap the page size at 500 and reject a forged cursor when asked for more', async () => {
      await expect(repo.findPage({}, 'not-a-cursor')).rejects.toBeInstanceOf(AuditQueryError);
      await expect(repo.findPage({ from: 'yesterday' })).rejects.toBeInstanceOf(AuditQueryError);
      const page = await repo.findPage({}, null, 10_000);
      expect(page.items.length).toBe(30);
    });

    it('should count by outcome and factor per bucket when stats are asked by hour and by day', async () => {
      const hourly = await repo.stats({ username: 'alice' }, 'hour');
      const alice = (await repo.findPage({ username: 'alice' }, null, 500)).items;
      expect(hourly.reduce((n, r) => n + r.total, 0)).toBe(alice.length);
      expect(hourly[0].bucket).toBe('2026-11-20T10:00:00.000Z');
      const daily = await repo.stats({}, 'day');
      expect(daily.map((r) => r.bucket)).toEqual([
        '2026-11-20T00:00:00.000Z',
        '2026-11-21T00:00:00.000Z',
      ]);
      const total = await repo.findPage({}, null, 500);
      expect(daily.reduce((n, r) => n + r.total, 0)).toBe(total.items.length);
      const failures = total.items.filter((e) => e.outcome === 'failure').length;
      expect(daily.reduce((n, r) => n + (r.byOutcome.failure ?? 0), 0)).toBe(failures);
      const pushes = total.items.filter((e) => e.factor === 'duo_push').length;
      expect(daily.reduce((n, r) => n + (r.byFactor.duo_push ?? 0), 0)).toBe(pushes);
      expect(daily.reduce((n, r) => n + (r.byFactor.none ?? 0), 0)).toBe(failures);
    });

    it('should yield every matching event once when streamed in small pages', async () => {
      const ids: string[] = [];
      for await (const e of repo.stream({ outcome: 'success' }, 4)) {
        ids.push(e.id);
      }
      const want = (await repo.findPage({ outcome: 'success' }, null, 500)).items.map((e) => e.id);
      expect(ids).toEqual(want);
      expect(new Set(ids).size).toBe(ids.length);
    });
    it('should order by occurred_at then seq when clocks disagree between instances', async () => {
      const skewed = await repo.append(
        { type: 'session_logout', outcome: 'info', username: 'skew' },
        { occurredAt: new Date(BASE - HOUR) },
      );
      const page = await repo.findPage({ username: 'skew' });
      expect(page.items.map((e) => e.id)).toEqual([skewed.id]);
      const all = await repo.findPage({}, null, 500);
      expect(all.items.at(-1)?.id).toBe(skewed.id);
      expect(all.items.at(-1)?.seq).toBe(31);
      expect((await repo.verifyChain()).ok).toBe(true);
    });
  });

  describe('idempotence and redaction', () => {
    beforeEach(reset);

    it('should store one row when the same event id is appended twice', async () => {
      const record = buildAuditRecord({ type: 'mfa_started', outcome: 'info', username: 'dave' });
      const a = await repo.appendRecord(record);
      const b = await repo.appendRecord(record);
      const many = await repo.appendMany([
        record,
        buildAuditRecord({ type: 'mfa_abandoned', outcome: 'failure', username: 'dave' }),
      ]);
      expect(b).toEqual(a);
      expect(many.map((e) => e.seq)).toEqual([1, 2]);
      expect((await repo.findPage({}, null, 50)).items).toHaveLength(2);
      expect((await repo.verifyChain()).ok).toBe(true);
    });

    it('should keep no canary secret in any column when the input carries tokens by mistake', async () => {
      const canary = 'CANARY-7f3a9c';
      const ctx = {
        ...authContext('erin', 'duo_push', '203.0.113.7'),
        access_token: canary,
        id_token: `eyJ${canary}.x.y`,
        duo_code: canary,
        user: { name: 'erin', groups: ['g'], password: canary },
        access_device: { ip: '203.0.113.7', session_id: canary },
      } as unknown as DuoAuthContext;
      const input = {
        type: 'mfa_succeeded',
        outcome: 'success',
        authContext: ctx,
        detail: {
          session_id: canary,
          code: canary,
          client_assertion: canary,
          note: `eyJhbGciOiJIUzUxMiJ9.eyJzdWIiOiJ4In0.${canary}`,
          attempt: 2,
        },
        token: canary,
        sessionId: canary,
      } as unknown as AuditEventInput;
      const stored = await repo.append(input);
      const rows = await ds.query<Record<string, unknown>[]>('SELECT * FROM audit_events');
      expect(rows).toHaveLength(1);
      expect(JSON.stringify(rows)).not.toContain(canary);
      expect(stored.detail).toEqual({ note: '[redacted]', attempt: 2 });
      expect(stored.username).toBe('erin');
    });
  });
});
