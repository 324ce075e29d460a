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
import type { DataSourceOptions } from 'typeorm';
import {
  AUDIT_ENTITIES,
  auditDatabaseKind,
  auditDataSourceOptions,
  DEFAULT_AUDIT_SQLITE_PATH,
} from '@duo-nest/audit';
import { APP_MIGRATIONS } from '../../migrations/index.js';

export const DEFAULT_SQLITE_PATH = DEFAULT_AUDIT_SQLITE_PATH;

export const DATABASE_ENTITIES = [...AUDIT_ENTITIES];
export const DATABASE_MIGRATIONS = [...APP_MIGRATIONS];

export interface BuildTypeOrmOptionsInput {
  databaseUrl?: string;
  /** Apply pending migrations when the DataSource initializes (the app's default is true). */
  migrationsRun?: boolean;
  /** TypeORM query logging; keep it off in production (queries may carry personal data). */
  logging?: boolean;
}

export type DatabaseKind = 'sqlite' | 'postgres';

export function databaseKind(databaseUrl: string | undefined): DatabaseKind {
  return auditDatabaseKind(databaseUrl);
}

/** The audit package's DATABASE_URL parsing, with the app's entities and migrations. */
export function buildTypeOrmOptions(input: BuildTypeOrmOptionsInput = {}): DataSourceOptions {
  return {
    ...auditDataSourceOptions(input),
    entities: DATABASE_ENTITIES,
    migrations: DATABASE_MIGRATIONS,
  };
}
