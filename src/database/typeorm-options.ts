/**
 * One place that turns DATABASE_URL into TypeORM options, shared by the app
 * (TypeOrmModule.forRootAsync) and the CLI data source (data-source.ts).
 *
 *   unset / empty          → SQLite file ./data/duo-nest.sqlite (the folder is created)
 *   sqlite:<path>          → that SQLite file;  sqlite::memory: → an in-memory database
 *   postgres://, postgresql:// → PostgreSQL
 *
 * Entities and migrations are imported as classes (no globs), so src, dist and Jest agree.
 * `synchronize` is always false: the schema comes from migrations only.
 */
import { mkdirSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import type { DataSourceOptions } from 'typeorm';
import { AUDIT_ENTITIES } from '../audit/audit-event.entity.js';
import { CreateAuditEvents1795912253399 } from '../../migrations/1795912253399-CreateAuditEvents.js';

export const DEFAULT_SQLITE_PATH = './data/duo-nest.sqlite';

export const DATABASE_ENTITIES = [...AUDIT_ENTITIES];
export const DATABASE_MIGRATIONS = [CreateAuditEvents1795912253399];

export interface BuildTypeOrmOptionsInput {
  databaseUrl?: string;
  /** Apply pending migrations when the DataSource initializes (the app's default is true). */
  migrationsRun?: boolean;
  /** TypeORM query logging; keep it off in production (queries may carry personal data). */
  logging?: boolean;
}

export type DatabaseKind = 'sqlite' | 'postgres';

export function databaseKind(databaseUrl: string | undefined): DatabaseKind {
  const url = (databaseUrl ?? '').trim();
  if (url === '' || url.startsWith('sqlite:')) {
    return 'sqlite';
  }
  if (/^postgres(ql)?:\/\//i.test(url)) {
    return 'postgres';
  }
  throw new TypeError('DATABASE_URL must start with sqlite:, postgres:// or postgresql://');
}

export function buildTypeOrmOptions(input: BuildTypeOrmOptionsInput = {}): DataSourceOptions {
  const url = (input.databaseUrl ?? '').trim();
  const common = {
    entities: DATABASE_ENTITIES,
    migrations: DATABASE_MIGRATIONS,
    migrationsRun: input.migrationsRun ?? false,
    migrationsTableName: 'typeorm_migrations',
    synchronize: false as const,
    logging: input.logging ?? false,
  };
  if (databaseKind(url) === 'postgres') {
    return { ...common, type: 'postgres', url, applicationName: 'duo-nest' };
  }
  const path = url === '' ? DEFAULT_SQLITE_PATH : url.slice('sqlite:'.length);
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
