// The SQLite appender keeps its prepared statements per better-sqlite3 handle: a DataSource that is
// closed and opened again (a new handle) must get statements of its own, and a replayed id must
// still come back as stored once the statements are cached.
import { afterEach, describe, expect, it } from '@jest/globals';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DataSource } from 'typeorm';
import { auditDataSourceOptions } from './audit-data-source.js';
import { AuditEventEntity } from './audit-event.entity.js';
import { buildAuditRecord } from './audit-record.js';
import { TypeOrmAuditRepository } from './typeorm-audit.repository.js';

const KEY = 'sqlite-appender-spec-key-0123456789';

describe('SqliteAuditAppender', () => {
  const dirs: string[] = [];
  const sources: DataSource[] = [];

  afterEach(async () => {
    for (const source of sources.splice(0)) {
      if (source.isInitialized) {
        await source.destroy();
      }
    }
    for (const dir of dirs.splice(0)) {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  async function open(): Promise<{ ds: DataSource; repo: TypeOrmAuditRepository }> {
    const dir = mkdtempSync(join(tmpdir(), 'audit-sqlite-appender-'));
    dirs.push(dir);
    const ds = new DataSource(
      auditDataSourceOptions({
        databaseUrl: `sqlite:${join(dir, 'a.sqlite')}`,
        migrationsRun: true,
      }),
    );
    sources.push(ds);
    await ds.initialize();
    const repo = new TypeOrmAuditRepository(ds.getRepository(AuditEventEntity), { chainKey: KEY });
    return { ds, repo };
  }

  const record = (username: string) =>
    buildAuditRecord({ type: 'mfa_started', outcome: 'info', username });

  it('should keep appending to one verified chain after its DataSource is closed and opened again', async () => {
    const { ds, repo } = await open();
    await repo.appendRecord(record('a'));
    await repo.appendMany([record('b'), record('c')]);
    await ds.destroy();
    await ds.initialize();
    const after = await repo.appendRecord(record('d'));
    expect(after.seq).toBe(4);
    expect(await repo.verifyChain()).toMatchObject({ ok: true, checked: 4, lastSeq: 4 });
  });

  it('should return a replayed id as stored and append the rest around it', async () => {
    const { repo } = await open();
    const first = await repo.appendRecord(record('a'));
    const again = { ...record('ignored'), id: first.id };
    const events = await repo.appendMany([record('b'), again, record('c')]);
    expect(events.map((e) => [e.seq, e.username])).toEqual([
      [2, 'b'],
      [1, 'a'],
      [3, 'c'],
    ]);
    expect(await repo.verifyChain()).toMatchObject({ ok: true, checked: 3 });
  });
});
