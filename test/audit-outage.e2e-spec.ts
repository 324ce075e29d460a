import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DataSource } from 'typeorm';
import { resolveAuditOptions } from '../packages/audit/src/audit.options.js';
import { AuditService, type AuditRecordResult } from '../packages/audit/src/audit.service.js';
import { AuditUnavailableError } from '../packages/audit/src/audit.errors.js';
import { buildTypeOrmOptions } from '../src/database/typeorm-options.js';
import {
  TEST_CHAIN_KEY,
  adminQuery,
  auditRepository,
  createPgDatabase,
  type TestDatabase,
} from './support/audit-db.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Cuts the database off: no new connections, existing sessions killed. */
async function stopDatabase(name: string): Promise<void> {
  await adminQuery(`ALTER DATABASE ${name} ALLOW_CONNECTIONS false`);
  await adminQuery(
    `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '${name}' AND pid <> pg_backend_pid()`,
  );
}

async function startDatabase(name: string): Promise<void> {
  await adminQuery(`ALTER DATABASE ${name} ALLOW_CONNECTIONS true`);
}

describe('audit recording through a PostgreSQL outage', () => {
  let db: TestDatabase;
  let ds: DataSource;
  let dir: string;

  beforeAll(async () => {
    db = await createPgDatabase();
    ds = new DataSource({
      ...buildTypeOrmOptions({ databaseUrl: db.url, migrationsRun: true }),
      poolSize: 4,
      extra: { connectionTimeoutMillis: 1000 },
    } as ConstructorParameters<typeof DataSource>[0]);
    await ds.initialize();
    dir = mkdtempSync(join(tmpdir(), 'audit-outage-'));
  });

  afterAll(async () => {
    await startDatabase(db.name!).catch(() => undefined);
    await ds?.destroy();
    await db?.drop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('should lose and duplicate no event and keep their order when the database stops mid-stream', async () => {
    const service = new AuditService(
      auditRepository(ds),
      resolveAuditOptions({
        chainKey: TEST_CHAIN_KEY,
        spoolDir: dir,
        instanceId: 'outage-1',
        writeTimeoutMs: 1500,
        replayIntervalMs: 100,
      }),
    );
    await service.onModuleInit();
    const results: AuditRecordResult[] = [];
    try {
      for (let i = 0; i < 90; i += 1) {
        if (i === 30) {
          await stopDatabase(db.name!);
        }
        if (i === 60) {
          await startDatabase(db.name!);
        }
        results.push(
          await service.record({ type: 'mfa_succeeded', outcome: 'success', username: `user${i}` }),
        );
        await sleep(5);
      }
      for (
        let tries = 0;
        tries < 100 && (service.spool.pending || (await service.spool.depth()) > 0);
        tries += 1
      ) {
        await service.replayIfPending();
        await sleep(50);
      }
      // A replay started by the timer or by record() may still be writing its
      // audit_spool_replayed event: join it (single-flight) before looking.
      await service.replaySpool();
    } finally {
      service.onModuleDestroy();
    }
    expect(results.slice(0, 30).every((r) => r.storedIn === 'database')).toBe(true);
    expect(results.slice(30, 60).every((r) => r.storedIn === 'spool')).toBe(true);
    expect(await service.spool.depth()).toBe(0);

    const rows = await ds.query<{ id: string; username: string }[]>(
      `SELECT id, username FROM audit_events WHERE type = 'mfa_succeeded' ORDER BY seq`,
    );
    expect(rows).toHaveLength(90);
    expect(new Set(rows.map((r) => r.id)).size).toBe(90);
    expect(rows.map((r) => r.id)).toEqual(results.map((r) => r.id));
    const replayed = await ds.query<{ n: string }[]>(
      `SELECT COUNT(*) AS n FROM audit_events WHERE type = 'audit_spool_replayed'`,
    );
    expect(Number(replayed[0].n)).toBeGreaterThanOrEqual(1);
    expect((await auditRepository(ds).verifyChain()).ok).toBe(true);
  });

  it('should refuse with AuditUnavailableError when the policy is deny and the database is stopped', async () => {
    const service = new AuditService(
      auditRepository(ds),
      resolveAuditOptions({
        chainKey: TEST_CHAIN_KEY,
        spoolDir: dir,
        instanceId: 'deny-1',
        policy: 'deny',
        writeTimeoutMs: 1500,
      }),
    );
    await stopDatabase(db.name!);
    try {
      await expect(
        service.record({ type: 'mfa_succeeded', outcome: 'success', username: 'denied' }),
      ).rejects.toBeInstanceOf(AuditUnavailableError);
    } finally {
      await startDatabase(db.name!);
    }
    const ok = await service.record({
      type: 'mfa_succeeded',
      outcome: 'success',
      username: 'after',
    });
    expect(ok.storedIn).toBe('database');
    const rows = await ds.query<{ username: string }[]>(
      `SELECT username FROM audit_events WHERE username IN ('denied', 'after')`,
    );
    expect(rows.map((r) => r.username)).toEqual(['after']);
  });
});
