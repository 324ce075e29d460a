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
import { linkRecord, SELECT_COLUMNS, sqliteHandle, type HeadRowRaw } from './typeorm-audit-sql.js';

/** The SQLite appender of TypeOrmAuditRepository (the chain head row must exist). */
export class SqliteAuditAppender {
  constructor(
    private readonly dataSource: DataSource,
    private readonly key: Buffer,
  ) {}

  /** Appends records in one `BEGIN IMMEDIATE` transaction, in order; ids already stored are returned as stored. */
  append(records: readonly AuditRecord[]): AuditRow[] {
    const db = sqliteHandle(this.dataSource);
    const placeholders = AUDIT_ROW_COLUMNS.map(() => '?').join(', ');
    const tx = db.transaction((batch: readonly AuditRecord[]) => {
      const head = db.prepare('SELECT seq, hash FROM audit_chain_head WHERE id = 1').get() as
        HeadRowRaw | undefined;
      if (!head) {
        throw new Error('audit: chain head row is missing');
      }
      let prevSeq = Number(head.seq);
      let prevHash = head.hash;
      const insert = db.prepare(
        `INSERT INTO audit_events (${SELECT_COLUMNS}) VALUES (${placeholders}) ON CONFLICT (id) DO NOTHING`,
      );
      const stored: AuditRow[] = [];
      const existing: string[] = [];
      for (const record of batch) {
        const row = linkRecord(this.key, record, prevSeq, prevHash);
        if (insert.run(...AUDIT_ROW_COLUMNS.map((c) => row[c])).changes === 1) {
          stored.push(row);
          prevSeq = row.seq;
          prevHash = row.hash;
        } else {
          existing.push(record.id);
        }
      }
      if (stored.length > 0) {
        db.prepare(
          'UPDATE audit_chain_head SET seq = ?, hash = ?, updated_at = ?, mac = ? WHERE id = 1',
        ).run(
          prevSeq,
          prevHash,
          toAuditTimestamp(new Date()),
          headMac(this.key, prevSeq, prevHash),
        );
      }
      const found = existing.length
        ? existing.map(
            (id) =>
              db
                .prepare(`SELECT ${SELECT_COLUMNS} FROM audit_events WHERE id = ?`)
                .get(id) as AuditRow,
          )
        : [];
      return { stored, found };
    });
    const { stored, found } = tx.immediate(records);
    const byId = new Map([...stored, ...found].map((r) => [r.id, r]));
    return records.map((r) => byId.get(r.id)).filter((r): r is AuditRow => r !== undefined);
  }
}
