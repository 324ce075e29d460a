// Appends to the audit chain on PostgreSQL. Appends are serialized on the chain head so several
// app instances form one chain: one statement (a data-modifying CTE) moves the head by
// compare-and-set and inserts a batch of rows with it, or a lock-first transaction takes
// `SELECT ... FROM audit_chain_head WHERE id = 1 FOR UPDATE` before writing.
import { createHash } from 'node:crypto';
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

/** The part of node-postgres' client used here (named statements are prepared per connection). */
interface PgClient {
  query<T>(config: { name: string; text: string; values: unknown[] }): Promise<{ rows: T[] }>;
}

interface BatchResult {
  head_seq: number | null;
  head_hash: string | null;
  inserted: string | number;
  updated: string | number;
}

/** One-statement tries of a batch (cached head, then the head it was shown) before lock-first. */
const OPTIMISTIC_ATTEMPTS = 2;
/** After both tries lost (several instances appending hard), batches go lock-first for this long. */
const CONTENTION_BACKOFF_MS = 1_000;
/** The most records written by one statement (one transaction). */
const BATCH_MAX = 500;
/** PostgreSQL's unique_violation: an id of the batch is stored already (a replayed event). */
const UNIQUE_VIOLATION = '23505';

/**
 * The batch append in one statement, the same text for any batch size (one prepared plan): the
 * rows come as one array per column, unnested in order. The head update is a compare-and-set:
 * it moves the head to the batch's last row only if the head is still the one the batch was
 * linked to, and the rows are inserted only if it did. A head that moved meanwhile changes
 * nothing, locks nothing and writes no WAL (so costs no fsync), and the head as the statement
 * saw it is returned. An id stored already aborts the whole statement, head update included (no
 * ON CONFLICT: a skipped row would leave a gap in the linked seqs).
 */
const BATCH_SQL = (() => {
  let n = 0;
  const next = () => `$${(n += 1)}`;
  const arrays = AUDIT_ROW_COLUMNS.map(
    (c) => `${next()}::${c === 'seq' ? 'integer' : 'text'}[]`,
  ).join(', ');
  const [expectSeq, expectHash, seq, hash, updatedAt, mac] = Array.from({ length: 6 }, next);
  return (
    `WITH upd AS (UPDATE audit_chain_head SET seq = ${seq}::integer, hash = ${hash}, updated_at = ${updatedAt}, mac = ${mac} ` +
    `WHERE id = 1 AND seq = ${expectSeq}::integer AND hash = ${expectHash} RETURNING seq), ` +
    `ins AS (INSERT INTO audit_events (${SELECT_COLUMNS}) SELECT r.* FROM upd, unnest(${arrays}) AS r(${SELECT_COLUMNS}) RETURNING seq) ` +
    `SELECT (SELECT seq FROM audit_chain_head WHERE id = 1) AS head_seq, (SELECT hash FROM audit_chain_head WHERE id = 1) AS head_hash, ` +
    `(SELECT COUNT(*) FROM ins) AS inserted, (SELECT COUNT(*) FROM upd) AS updated`
  );
})();

/**
 * BATCH_SQL's prepared-statement name, derived from its text: node-postgres refuses a name that a
 * connection already prepared with another text (as when two builds of this file share a pool).
 */
const BATCH_STATEMENT = `duo_nest_audit_batch_${createHash('sha256').update(BATCH_SQL).digest('hex').slice(0, 16)}`;

function isUniqueViolation(err: unknown): boolean {
  return (err as { code?: unknown } | null)?.code === UNIQUE_VIOLATION;
}

interface Head {
  seq: number;
  hash: string;
}

interface Pending {
  record: AuditRecord;
  resolve: (row: AuditRow) => void;
  reject: (err: unknown) => void;
}

/** The PostgreSQL appender of TypeOrmAuditRepository (the chain head row must exist). */
export class PostgresAuditAppender {
  /** The head as this instance last saw it; a guess, checked in SQL. */
  private cachedHead: Head | null = null;
  /** Until when batches skip the one-statement tries (they kept losing races). */
  private contendedUntil = 0;
  private readonly queue: Pending[] = [];
  private draining = false;

  constructor(
    private readonly dataSource: DataSource,
    private readonly key: Buffer,
  ) {}

  /**
   * Appends from one instance go through one queue: at most one append statement of this
   * instance is in flight, and records that arrive meanwhile are written together by the next
   * statement, one transaction (group commit). Instances still contend on the head row, fairly
   * and briefly. The promise resolves once the record's transaction has committed.
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
        await this.writeBatch(this.queue.splice(0, BATCH_MAX));
        // The callers just resolved run on first: those that append again at once join the next
        // batch instead of leaving it to the one record that came meanwhile (a batch of 1, then
        // one of all the others, and so on).
        await new Promise((resolve) => setImmediate(resolve));
      }
    } finally {
      this.draining = false;
    }
  }

  private async writeBatch(batch: Pending[]): Promise<void> {
    let rows: AuditRow[];
    try {
      rows = await this.appendBatch(batch.map((b) => b.record));
    } catch (err) {
      batch.forEach((b) => b.reject(err));
      return;
    }
    const byId = new Map(rows.map((r) => [r.id, r]));
    for (const b of batch) {
      const row = byId.get(b.record.id);
      if (row) {
        b.resolve(row);
      } else {
        b.reject(new Error('audit: append lost track of a record'));
      }
    }
  }

  /**
   * A batch in one statement (one round trip, its own transaction), linked to the cached head.
   * When another instance moved the head first, the statement inserts nothing and returns the
   * head it saw; the batch is re-linked to that head and tried again, which with a few instances at
   * ordinary rates nearly always succeeds at the second round trip. When that loses too,
   * instances are appending hard, and for a second batches take the lock-first transaction,
   * which cannot lose. An id stored already (a replay) aborts the statement, nothing written;
   * the lock-first transaction then returns the stored row and appends the others.
   */
  private async appendBatch(records: readonly AuditRecord[]): Promise<AuditRow[]> {
    if (Date.now() < this.contendedUntil) {
      return this.appendBatchLockFirst(records);
    }
    let head = this.cachedHead ?? (await this.readHeadForAppend());
    for (let attempt = 0; attempt < OPTIMISTIC_ATTEMPTS; attempt += 1) {
      const rows = this.link(records, head);
      const last = rows[rows.length - 1];
      let r: BatchResult;
      try {
        [r] = await this.pgPrepared<BatchResult>(
          BATCH_STATEMENT,
          BATCH_SQL,
          this.batchValues(rows, head),
        );
      } catch (err) {
        if (isUniqueViolation(err)) {
          return this.appendMany(records);
        }
        throw err;
      }
      const inserted = Number(r.inserted);
      if (inserted === rows.length) {
        if (Number(r.updated) !== 1) {
          throw new Error('audit: rows were appended but the chain head did not move');
        }
        this.cachedHead = { seq: last.seq, hash: last.hash };
        return rows;
      }
      if (inserted !== 0) {
        throw new Error('audit: a batch was appended in part');
      }
      if (r.head_seq === null || r.head_hash === null) {
        throw new Error('audit: chain head row is missing');
      }
      // Another instance appended first: link to the head it left and try again. The head the
      // statement saw is the expected one when it waited for that append to commit: read it anew.
      const seen = { seq: Number(r.head_seq), hash: r.head_hash };
      head =
        seen.seq === head.seq && seen.hash === head.hash ? await this.readHeadForAppend() : seen;
      this.cachedHead = head;
    }
    this.contendedUntil = Date.now() + CONTENTION_BACKOFF_MS;
    return this.appendBatchLockFirst(records);
  }

  /**
   * A batch in a lock-first transaction: lock the head, then the batch statement (which cannot
   * find another head now), then COMMIT. The head row stays locked for two round trips (and the
   * commit), where appendMany's look-up of existing ids takes a third; a replayed id aborts the
   * statement, and appendMany then handles the batch.
   */
  private async appendBatchLockFirst(records: readonly AuditRecord[]): Promise<AuditRow[]> {
    const qr = this.dataSource.createQueryRunner();
    try {
      const client = (await qr.connect()) as PgClient;
      await qr.startTransaction();
      try {
        const locked = (await qr.query(
          'SELECT seq, hash FROM audit_chain_head WHERE id = 1 FOR UPDATE',
        )) as HeadRowRaw[];
        if (locked.length !== 1) {
          throw new Error('audit: chain head row is missing');
        }
        const head = { seq: Number(locked[0].seq), hash: locked[0].hash };
        const rows = this.link(records, head);
        const [r] = (
          await client.query<BatchResult>({
            name: BATCH_STATEMENT,
            text: BATCH_SQL,
            values: this.batchValues(rows, head),
          })
        ).rows;
        if (Number(r.inserted) !== rows.length || Number(r.updated) !== 1) {
          throw new Error('audit: the chain head did not move with the appended rows');
        }
        await qr.commitTransaction();
        const last = rows[rows.length - 1];
        this.cachedHead = { seq: last.seq, hash: last.hash };
        return rows;
      } catch (err) {
        await qr.rollbackTransaction().catch(() => undefined);
        if (!isUniqueViolation(err)) {
          throw err;
        }
      }
    } finally {
      await qr.release();
    }
    // Only a replayed id gets here, with nothing written.
    return this.appendMany(records);
  }

  /** BATCH_SQL's parameters: one array per column, the expected head, the new head and its MAC. */
  private batchValues(rows: readonly AuditRow[], head: Head): unknown[] {
    const last = rows[rows.length - 1];
    return [
      ...AUDIT_ROW_COLUMNS.map((c) => rows.map((row) => row[c])),
      head.seq,
      head.hash,
      last.seq,
      last.hash,
      toAuditTimestamp(new Date()),
      headMac(this.key, last.seq, last.hash),
    ];
  }

  /** The rows the records become, in order, after `head`. */
  private link(records: readonly AuditRecord[], head: Head): AuditRow[] {
    let prev = head;
    return records.map((record) => {
      const row = linkRecord(this.key, record, prev.seq, prev.hash);
      prev = row;
      return row;
    });
  }

  /** Runs a named (per-connection prepared) statement on node-postgres: planned once, not per append. */
  private async pgPrepared<T>(name: string, text: string, values: unknown[]): Promise<T[]> {
    const qr = this.dataSource.createQueryRunner();
    try {
      const client = (await qr.connect()) as PgClient;
      return (await client.query<T>({ name, text, values })).rows;
    } finally {
      await qr.release();
    }
  }

  private async readHeadForAppend(): Promise<Head> {
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
