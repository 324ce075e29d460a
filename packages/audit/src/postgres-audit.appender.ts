// Appends to the audit chain on PostgreSQL. Appends are serialized on the chain head so several
// app instances form one chain: `SELECT ... FROM audit_chain_head WHERE id = 1 FOR UPDATE` inside
// the append transaction, or one statement (a data-modifying CTE) that locks the head, inserts the
// row and moves the head.
import type { DataSource } from 'typeorm';
import { headMac } from './audit-chain.js';
import {
  AUDIT_ROW_COLUMNS,
  toAuditTimestamp,
  type AuditRecord,
  type AuditRow,
} from './audit-record.js';
import {
  findRowById,
  linkRecord,
  Params,
  SELECT_COLUMNS,
  type HeadRowRaw,
} from './typeorm-audit-sql.js';

/** One-statement tries of a single append (cached head, then the head it was shown) before lock-first. */
const OPTIMISTIC_ATTEMPTS = 2;
/** After both tries lost (several instances appending hard), appends go lock-first for this long. */
const CONTENTION_BACKOFF_MS = 1_000;

/** The PostgreSQL appender of TypeOrmAuditRepository (the chain head row must exist). */
export class PostgresAuditAppender {
  /** The head as this instance last saw it (single appends); a guess, checked in SQL. */
  private cachedHead: { seq: number; hash: string } | null = null;
  /** Until when single appends skip the one-statement tries (they kept losing races). */
  private contendedUntil = 0;
  private readonly queue: {
    record: AuditRecord;
    resolve: (row: AuditRow) => void;
    reject: (err: unknown) => void;
  }[] = [];
  private draining = false;

  constructor(
    private readonly dataSource: DataSource,
    private readonly key: Buffer,
  ) {}

  /**
   * Appends from one instance go through one queue: at most one append statement of this
   * instance is in flight, and records that arrive meanwhile are written together in the next
   * transaction (group commit). Instances still contend on the head row, fairly and briefly.
   */
  enqueue(record: AuditRecord): Promise<AuditRow> {
    return new Promise<AuditRow>((resolve, reject) => {
      this.queue.push({ record, resolve, reject });
      void this.drain();
    });
  }

  private async drain(): Promise<void> {
    if (this.draining) {
      return;
    }
    this.draining = true;
    try {
      while (this.queue.length > 0) {
        const batch = this.queue.splice(0, 500);
        try {
          const rows =
            batch.length === 1
              ? [await this.appendOne(batch[0].record)]
              : await this.appendMany(batch.map((b) => b.record));
          const byId = new Map(rows.map((r) => [r.id, r]));
          for (const b of batch) {
            const row = byId.get(b.record.id);
            if (row) {
              b.resolve(row);
            } else {
              b.reject(new Error('audit: append lost track of a record'));
            }
          }
        } catch (err) {
          batch.forEach((b) => b.reject(err));
        }
      }
    } finally {
      this.draining = false;
    }
  }

  /**
   * One append in one statement (one round trip, its own transaction): the CTE locks the head row
   * (FOR UPDATE), inserts the row only if the head is still the one the hash was computed from,
   * and moves the head. When another instance moved the head first, the statement inserts nothing
   * and returns the current head; the row is re-linked to it and tried again, which with a few
   * instances at ordinary rates nearly always succeeds at the second round trip. When that loses
   * too, instances are appending hard, and for a second appends take the lock-first transaction,
   * which cannot lose (with four writers appending back to back it beats more retries).
   */
  private async appendOne(record: AuditRecord): Promise<AuditRow> {
    if (Date.now() < this.contendedUntil) {
      return this.appendOneLockFirst(record);
    }
    let head = this.cachedHead ?? (await this.readHeadForAppend());
    for (let attempt = 0; attempt < OPTIMISTIC_ATTEMPTS; attempt += 1) {
      const row = linkRecord(this.key, record, head.seq, head.hash);
      const p = new Params(true);
      const values = AUDIT_ROW_COLUMNS.map((c) =>
        c === 'seq' ? `${p.add(row.seq)}::integer` : p.add(row[c]),
      ).join(', ');
      const sql =
        `WITH h AS (SELECT seq, hash FROM audit_chain_head WHERE id = 1 FOR UPDATE), ` +
        `ins AS (INSERT INTO audit_events (${SELECT_COLUMNS}) SELECT ${values} FROM h WHERE h.seq = ${p.add(head.seq)}::integer AND h.hash = ${p.add(head.hash)} ` +
        `ON CONFLICT (id) DO NOTHING RETURNING seq), ` +
        `upd AS (UPDATE audit_chain_head SET seq = ${p.add(row.seq)}::integer, hash = ${p.add(row.hash)}, updated_at = ${p.add(
          toAuditTimestamp(new Date()),
        )}, mac = ${p.add(headMac(this.key, row.seq, row.hash))} WHERE id = 1 AND EXISTS (SELECT 1 FROM ins) RETURNING seq) ` +
        `SELECT (SELECT seq FROM h) AS head_seq, (SELECT hash FROM h) AS head_hash, ` +
        `(SELECT COUNT(*) FROM ins) AS inserted, (SELECT COUNT(*) FROM upd) AS updated`;
      const [r] = await this.pgPrepared<{
        head_seq: number | null;
        head_hash: string | null;
        inserted: string | number;
        updated: string | number;
      }>('duo_nest_audit_append', sql, p.values);
      if (Number(r.inserted) === 1) {
        if (Number(r.updated) !== 1) {
          throw new Error('audit: a row was appended but the chain head did not move');
        }
        this.cachedHead = { seq: row.seq, hash: row.hash };
        return row;
      }
      if (r.head_seq === null || r.head_hash === null) {
        throw new Error('audit: chain head row is missing');
      }
      const fresh = { seq: Number(r.head_seq), hash: r.head_hash };
      if (fresh.seq === head.seq && fresh.hash === head.hash) {
        // The head matched, so the id exists already: a replayed event.
        const existing = await findRowById(this.dataSource, true, record.id);
        if (existing) {
          return existing;
        }
      }
      // Another instance appended first: link to the head it left and try again.
      head = fresh;
      this.cachedHead = fresh;
    }
    this.contendedUntil = Date.now() + CONTENTION_BACKOFF_MS;
    return this.appendOneLockFirst(record);
  }

  private async appendOneLockFirst(record: AuditRecord): Promise<AuditRow> {
    const [row] = await this.appendMany([record]);
    if (!row) {
      throw new Error('audit: append lost track of a record');
    }
    return row;
  }

  /** Runs a named (per-connection prepared) statement on node-postgres: planned once, not per append. */
  private async pgPrepared<T>(name: string, text: string, values: unknown[]): Promise<T[]> {
    const qr = this.dataSource.createQueryRunner();
    try {
      const client = (await qr.connect()) as {
        query(config: { name: string; text: string; values: unknown[] }): Promise<{ rows: T[] }>;
      };
      return (await client.query({ name, text, values })).rows;
    } finally {
      await qr.release();
    }
  }

  private async readHeadForAppend(): Promise<{ seq: number; hash: string }> {
    const [h] = await this.dataSource.query<HeadRowRaw[]>(
      'SELECT seq, hash FROM audit_chain_head WHERE id = 1',
    );
    if (!h) {
      throw new Error('audit: chain head row is missing');
    }
    return { seq: Number(h.seq), hash: h.hash };
  }

  /** Appends records in one lock-first transaction, in order; ids already stored are returned as stored. */
  async appendMany(records: readonly AuditRecord[]): Promise<AuditRow[]> {
    const qr = this.dataSource.createQueryRunner();
    const stored: AuditRow[] = [];
    const existing: string[] = [];
    try {
      await qr.connect();
      await qr.startTransaction();
      try {
        const locked = (await qr.query(
          'SELECT seq, hash FROM audit_chain_head WHERE id = 1 FOR UPDATE',
        )) as HeadRowRaw[];
        if (locked.length !== 1) {
          throw new Error('audit: chain head row is missing');
        }
        let prevSeq = Number(locked[0].seq);
        let prevHash = locked[0].hash;
        // Under the head lock every insert is serialized, so one look-up settles which ids exist.
        const ids = [...new Set(records.map((r) => r.id))];
        const found = (await qr.query('SELECT id FROM audit_events WHERE id = ANY($1)', [ids])) as {
          id: string;
        }[];
        const seen = new Set(found.map((r) => r.id));
        for (const record of records) {
          if (seen.has(record.id)) {
            existing.push(record.id);
            continue;
          }
          seen.add(record.id);
          const row = linkRecord(this.key, record, prevSeq, prevHash);
          stored.push(row);
          prevSeq = row.seq;
          prevHash = row.hash;
        }
        if (stored.length > 0) {
          const p = new Params(true);
          const tuples = stored
            .map((row) => `(${AUDIT_ROW_COLUMNS.map((c) => p.add(row[c])).join(', ')})`)
            .join(', ');
          const sql =
            `WITH ins AS (INSERT INTO audit_events (${SELECT_COLUMNS}) VALUES ${tuples} RETURNING seq) ` +
            `UPDATE audit_chain_head SET seq = ${p.add(prevSeq)}, hash = ${p.add(prevHash)}, updated_at = ${p.add(
              toAuditTimestamp(new Date()),
            )}, mac = ${p.add(headMac(this.key, prevSeq, prevHash))} WHERE id = 1 AND (SELECT COUNT(*) FROM ins) = ${p.add(
              stored.length,
            )} RETURNING seq`;
          const result = await qr.query(sql, p.values, true);
          if ((result.records as unknown[]).length !== 1) {
            throw new Error('audit: the chain head did not move with the appended rows');
          }
        }
        await qr.commitTransaction();
        this.cachedHead = { seq: prevSeq, hash: prevHash };
      } catch (err) {
        await qr.rollbackTransaction().catch(() => undefined);
        throw err;
      }
    } finally {
      await qr.release();
    }
    return this.mergeExisting(records, stored, existing);
  }

  private async mergeExisting(
    records: readonly AuditRecord[],
    stored: AuditRow[],
    existing: string[],
  ): Promise<AuditRow[]> {
    const byId = new Map(stored.map((r) => [r.id, r]));
    for (const id of existing) {
      const row = await findRowById(this.dataSource, true, id);
      if (row) {
        byId.set(id, row);
      }
    }
    return records.map((r) => byId.get(r.id)).filter((r): r is AuditRow => r !== undefined);
  }
}
