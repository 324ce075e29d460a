/** Test databases for the audit e2e tests: a fresh PostgreSQL database or SQLite file per test file. */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DataSource } from 'typeorm';
import { buildTypeOrmOptions } from '../../src/database/typeorm-options.js';
import { AuditEventEntity } from '../../packages/audit/src/audit-event.entity.js';
import { TypeOrmAuditRepository } from '../../packages/audit/src/typeorm-audit.repository.js';

export const PG_ADMIN_URL =
  process.env.TEST_PG_ADMIN_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
export const TEST_CHAIN_KEY = 'test-chain-key-0123456789abcdef';

export type Engine = 'sqlite' | 'postgres';
export const ENGINES: Engine[] = ['sqlite', 'postgres'];

export interface TestDatabase {
  engine: Engine;
  url: string;
  /** PostgreSQL only: the database name. */
  name?: string;
  drop(): Promise<void>;
}

export async function adminQuery(sql: string): Promise<void> {
  const admin = new DataSource({ type: 'postgres', url: PG_ADMIN_URL, poolSize: 1 });
  await admin.initialize();
  try {
    await admin.query(sql);
  } finally {
    await admin.destroy();
  }
}

export async function createPgDatabase(prefix = 'audit'): Promise<TestDatabase> {
  const name = `${prefix}_${randomBytes(6).toString('hex')}`;
  await adminQuery(`CREATE DATABASE ${name}`);
  const url = new URL(PG_ADMIN_URL);
  url.pathname = `/${name}`;
  return {
    engine: 'postgres',
    url: url.toString(),
    name,
    drop: () => adminQuery(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`),
  };
}

export function createSqliteDatabase(): TestDatabase {
  const dir = mkdtempSync(join(tmpdir(), 'audit-sqlite-'));
  return {
    engine: 'sqlite',
    url: `sqlite:${join(dir, 'audit.sqlite')}`,
    drop: () => {
      rmSync(dir, { recursive: true, force: true });
      return Promise.resolve();
    },
  };
}

export function createTestDatabase(engine: Engine): Promise<TestDatabase> {
  return engine === 'postgres' ? createPgDatabase() : Promise.resolve(createSqliteDatabase());
}

export async function openDataSource(url: string, migrationsRun = true): Promise<DataSource> {
  const ds = new DataSource(buildTypeOrmOptions({ databaseUrl: url, migrationsRun }));
  await ds.initialize();
  return ds;
}

export function auditRepository(
  ds: DataSource,
  chainKey: string = TEST_CHAIN_KEY,
): TypeOrmAuditRepository {
  return new TypeOrmAuditRepository(ds.getRepository(AuditEventEntity), { chainKey });
}
