// What the TypeORM audit parts share: placeholders, the row columns, the head row's raw shape,
// better-sqlite3's handle, row reads and the link of a record to the chain. All TypeORM and driver
// types of the audit trail stay in the typeorm-audit files.
import type { DataSource, QueryRunner } from 'typeorm';
import { linkHash } from './audit-chain.js';
import {
  AUDIT_RECORD_COLUMNS,
  AUDIT_ROW_COLUMNS,
  type AuditRecord,
  type AuditRow,
} from './audit-record.js';

/** The part of better-sqlite3's API used here. */
export interface SqliteStatement {
  run(...params: unknown[]): { changes: number };
  get(...params: unknown[]): unknown;
  all(...params: unknown[]): unknown[];
}
export interface SqliteHandle {
  prepare(sql: string): SqliteStatement;
  transaction<A extends unknown[], R>(fn: (...args: A) => R): { immediate(...args: A): R };
}

export const SELECT_COLUMNS = AUDIT_ROW_COLUMNS.join(', ');

/** Positional placeholders: `$1, $2` on PostgreSQL, `?` on SQLite. */
export class Params {
  readonly values: unknown[] = [];
  constructor(private readonly postgres: boolean) {}
  add(value: unknown): string {
    this.values.push(value);
    return this.postgres ? `$${this.values.length}` : '?';
  }
}

export interface HeadRowRaw {
  seq: number | string;
  hash: string;
  updated_at: string;
  mac: string;
}

/** better-sqlite3's own handle behind a TypeORM DataSource. */
export function sqliteHandle(dataSource: DataSource): SqliteHandle {
  return (dataSource.driver as unknown as { databaseConnection: SqliteHandle }).databaseConnection;
}

/** Audit rows of a query, `seq` as a number (PostgreSQL answers integers as strings in places). */
export async function queryRows(
  db: DataSource | QueryRunner,
  sql: string,
  params: unknown[],
): Promise<AuditRow[]> {
  const raw = (await db.query(sql, params)) as AuditRow[];
  return raw.map((r) => ({ ...r, seq: Number(r.seq) }));
}

/** The stored row of an event id, or null. */
export async function findRowById(
  dataSource: DataSource,
  postgres: boolean,
  id: string,
): Promise<AuditRow | null> {
  const p = new Params(postgres);
  const [row] = await queryRows(
    dataSource,
    `SELECT ${SELECT_COLUMNS} FROM audit_events WHERE id = ${p.add(id)}`,
    p.values,
  );
  return row ?? null;
}

/** The row a record becomes when it follows (prevSeq, prevHash) in the chain. */
export function linkRecord(
  key: Buffer,
  record: AuditRecord,
  prevSeq: number,
  prevHash: string,
): AuditRow {
  const seq = prevSeq + 1;
  const base = { ...pickRecord(record), seq };
  return { ...base, prev_hash: prevHash, hash: linkHash(key, prevHash, base) };
}

function pickRecord(record: AuditRecord): AuditRecord {
  const out = {} as Record<string, unknown>;
  for (const column of AUDIT_RECORD_COLUMNS) {
    out[column] = record[column] ?? null;
  }
  return out as unknown as AuditRecord;
}
