/**
 * DATABASE_URL → TypeORM options for the audit trail, used by the verify CLI and by apps that keep
 * their audit trail in its own database.
 *
 *   unset / empty          → SQLite file ./data/duo-nest.sqlite (the folder is created)
 *   sqlite:<path>          → that SQLite file;  sqlite::memory: → an in-memory database
 *   postgres://, postgresql:// → PostgreSQL
 *
 * Entities and migrations are classes (no globs), so sources, dist and Jest agree.
 * `synchronize` is always false: the schema comes from migrations only.
 */
import { mkdirSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import type { DataSourceOptions } from 'typeorm';
import { AUDIT_ENTITIES } from './audit-event.entity.js';
import { AUDIT_MIGRATIONS } from './migrations/index.js';

/** The SQLite file used when DATABASE_URL is unset. */
export const DEFAULT_AUDIT_SQLITE_PATH = './data/duo-nest.sqlite';

export interface AuditDataSourceOptionsInput {
  databaseUrl?: string;
  /** Apply pending migrations when the DataSource initializes (default false). */
  migrationsRun?: boolean;
  /** TypeORM query logging; keep it off in production (queries may carry personal data). */
  logging?: boolean;
}

export type AuditDatabaseKind = 'sqlite' | 'postgres';

/** Which driver a DATABASE_URL selects; throws a TypeError for any other scheme. */
export function auditDatabaseKind(databaseUrl: string | undefined): AuditDatabaseKind {
  const url = (databaseUrl ?? '').trim();
  if (url === '' || url.startsWith('sqlite:')) {
    return 'sqlite';
  }
  if (/^postgres(ql)?:\/\//i.test(url)) {
    return 'postgres';
  }
  throw new TypeError('DATABASE_URL must start with sqlite:, postgres:// or postgresql://');
}

/** TypeORM DataSource options for a DATABASE_URL, with the audit entities and migrations. */
export function auditDataSourceOptions(input: AuditDataSourceOptionsInput = {}): DataSourceOptions {
  const url = (input.databaseUrl ?? '').trim();
  const common = {
    entities: [...AUDIT_ENTITIES],
    migrations: [...AUDIT_MIGRATIONS],
    migrationsRun: input.migrationsRun ?? false,
    migrationsTableName: 'typeorm_migrations',
    synchronize: false as const,
    logging: input.logging ?? false,
  };
  if (auditDatabaseKind(url) === 'postgres') {
    return { ...common, type: 'postgres', url, applicationName: 'duo-nest' };
  }
  const path = url === '' ? DEFAULT_AUDIT_SQLITE_PATH : url.slice('sqlite:'.length);
  if (path === '') {
    throw new TypeError('DATABASE_URL sqlite: needs a file path or :memory:');
  }
  if (path !== ':memory:') {
    mkdirSync(dirname(resolve(path)), { recursive: true });
  }
  return {
    ...common,
    type: 'better-sqlite3',
    database: path,
    // Other processes writing the same file wait up to 5 s instead of failing with SQLITE_BUSY.
    timeout: 5000,
    enableWAL: path !== ':memory:',
  };
}
