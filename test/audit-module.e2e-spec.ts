import { afterEach, describe, expect, it } from '@jest/globals';
import { Test, type TestingModule } from '@nestjs/testing';
import { TypeOrmModule } from '@nestjs/typeorm';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AuditModule } from '../packages/audit/src/audit.module.js';
import { AuditRepository } from '../packages/audit/src/audit.repository.js';
import { AuditService } from '../packages/audit/src/audit.service.js';
import { buildTypeOrmOptions } from '../src/database/typeorm-options.js';
import { TEST_CHAIN_KEY } from './support/audit-db.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('AuditModule', () => {
  let dir: string;
  let moduleRef: TestingModule | undefined;

  afterEach(async () => {
    await moduleRef?.close();
    moduleRef = undefined;
    rmSync(dir, { recursive: true, force: true });
  });

  it('should record through the TypeORM repository when registered with options', async () => {
    dir = mkdtempSync(join(tmpdir(), 'audit-mod-'));
    moduleRef = await Test.createTestingModule({
      imports: [
        TypeOrmModule.forRoot(
          buildTypeOrmOptions({
            databaseUrl: `sqlite:${join(dir, 'a.sqlite')}`,
            migrationsRun: true,
          }),
        ),
        AuditModule.register({
          chainKey: TEST_CHAIN_KEY,
          spoolDir: join(dir, 'spool'),
          instanceId: 'mod-1',
        }),
      ],
    }).compile();
    await moduleRef.init();
    const result = await moduleRef
      .get(AuditService)
      .record({ type: 'session_created', outcome: 'success', username: 'ann' });
    expect(result.storedIn).toBe('database');
    const stored = await moduleRef.get(AuditRepository).findById(result.id);
    expect(stored).toMatchObject({ username: 'ann', instanceId: 'mod-1', seq: 1 });
  });

  it('should purge expired events on its timer when retentionDays is set through registerAsync', async () => {
    dir = mkdtempSync(join(tmpdir(), 'audit-mod-'));
    moduleRef = await Test.createTestingModule({
      imports: [
        TypeOrmModule.forRoot(
          buildTypeOrmOptions({
            databaseUrl: `sqlite:${join(dir, 'a.sqlite')}`,
            migrationsRun: true,
          }),
        ),
        AuditModule.registerAsync({
          useFactory: () => ({
            chainKey: TEST_CHAIN_KEY,
            spoolDir: join(dir, 'spool'),
            instanceId: 'mod-2',
            retentionDays: 30,
            purgeIntervalMs: 20,
          }),
        }),
      ],
    }).compile();
    const repository = moduleRef.get(AuditRepository);
    await repository.append(
      { type: 'mfa_started', outcome: 'info', username: 'old' },
      { occurredAt: new Date(Date.now() - 40 * 86_400_000) },
    );
    await repository.append({ type: 'mfa_started', outcome: 'info', username: 'new' });
    await moduleRef.init();
    for (let i = 0; i < 50 && (await repository.findPage({})).items.length > 1; i += 1) {
      await sleep(20);
    }
    expect((await repository.findPage({})).items.map((e) => e.username)).toEqual(['new']);
    expect(await repository.verifyChain()).toEqual({ ok: true, checked: 1, lastSeq: 2 });
  });
});
