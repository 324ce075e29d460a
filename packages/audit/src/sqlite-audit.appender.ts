// Appends to the audit chain on SQLite (better-sqlite3): one synchronous `BEGIN IMMEDIATE`
// transaction on the driver's handle, so nothing else in this process runs in between, and other
// processes wait on SQLite's write lock (timeout 5 s). SQLite is the single-instance default; many
// instances should use PostgreSQL.
import type { DataSource } from 'typeorm';
import { headMac } from './audit-chain.js';
import {
  AUDIT_ROW_COLUMNS,
  toAuditTimestamp,
  type AuditRecord,
  type AuditRow,
} from './audit-record.js';
import {
  linkRecord,
  SELECT_COLUMNS,
  sqliteHandle,
  type HeadRowRaw,
  type SqliteHandle,
  type SqliteStatement,
} from './typeorm-audit-sql.js';

const PLACEHOLDERS = AUDIT_ROW_COLUMNS.map(() => '?').join(', ');

interface AppendResult {
  stored: AuditRow[];
  found: AuditRow[];
}

/** The statements and the transaction of one better-sqlite3 handle, prepared once. */
interface Prepared {
  head: SqliteStatement;
  insert: SqliteStatement;
  updateHead: SqliteStatement;
  byId: SqliteStatement;
  append: { immediate(batch: readonly AuditRecord[], key: Buffer): AppendResult };
}

/**
 * Per handle, not per appender or process: a re-opened DataSource has a new handle and gets
 * statements of its own, and a closed handle's statements go with it. Preparing these on every
 * append was a measurable part of an append's CPU.
 */
const preparedByHandle = new WeakMap<SqliteHandle, Prepared>();

function prepared(db: SqliteHandle): Prepared {
  let p = preparedByHandle.get(db);
  if (!p) {
    // Prepared after ensureHead (the tables exist); a failure throws and caches nothing.
    const statements = {
      head: db.prepare('SELECT seq, hash FROM audit_chain_head WHERE id = 1'),
      insert: db.prepare(
        `INSERT INTO audit_events (${SELECT_COLUMNS}) VALUES (${PLACEHOLDERS}) ON CONFLICT (id) DO NOTHING`,
      ),
      updateHead: db.prepare(
        'UPDATE audit_chain_head SET seq = ?, hash = ?, updated_at = ?, mac = ? WHERE id = 1',
      ),
      byId: db.prepare(`SELECT ${SELECT_COLUMNS} FROM audit_events WHERE id = ?`),
    };
    p = {
      ...statements,
      append: db.transaction((batch: readonly AuditRecord[], key: Buffer) =>
        appendInTransaction(statements, batch, key),
      ),
    };
    preparedByHandle.set(db, p);
  }
  return p;
}

/** The body of the `BEGIN IMMEDIATE` transaction: link, insert, move the head, read replays. */
function appendInTransaction(
  s: Omit<Prepared, 'append'>,
  batch: readonly AuditRecord[],
  key: Buffer,
): AppendResult {
  const head = s.head.get() as HeadRowRaw | undefined;
  if (!head) {
    throw new Error('audit: chain head row is missing');
  }
  let prevSeq = Number(head.seq);
  let prevHash = head.hash;
  const stored: AuditRow[] = [];
  const existing: string[] = [];
  for (const record of batch) {
    const row = linkRecord(key, record, prevSeq, prevHash);
    if (s.insert.run(...AUDIT_ROW_COLUMNS.map((c) => row[c])).changes === 1) {
      stored.push(row);
      prevSeq = row.seq;
      prevHash = row.hash;
    } else {
      existing.push(record.id);
    }
  }
  if (stored.length > 0) {
    s.updateHead.run(
      prevSeq,
      prevHash,
      toAuditTimestamp(new Date()),
      headMac(key, prevSeq, prevHash),
    );
  }
  const found = existing.map((id) => s.byId.get(id) as AuditRow);
  return { stored, found };
}

/** The SQLite appender of TypeOrmAuditRepository (the chain head row must exist). */
export class SqliteAuditAppender {
  constructor(
    private readonly dataSource: DataSource,
    private readonly key: Buffer,
  ) {}

  /** Appends records in one `BEGIN IMMEDIATE` transaction, in order; ids already stored are returned as stored. */
  append(records: readonly AuditRecord[]): AuditRow[] {
    const { stored, found } = prepared(sqliteHandle(this.dataSource)).append.immediate(
      records,
      this.key,
    );
    const byId = new Map([...stored, ...found].map((r) => [r.id, r]));
    return records.map((r) => byId.get(r.id)).filter((r): r is AuditRow => r !== undefined);
  }
}
