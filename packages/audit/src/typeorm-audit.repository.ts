/**
 * AuditRepository on TypeORM, for PostgreSQL and SQLite (better-sqlite3).
 *
 * Appends are serialized on the chain head so several app instances form one chain:
 * - PostgreSQL: `SELECT ... FROM audit_chain_head WHERE id = 1 FOR UPDATE` inside the append
 *   transaction; the insert and the head update then go in one statement (a data-modifying CTE).
 * - SQLite: one synchronous `BEGIN IMMEDIATE` transaction on better-sqlite3's handle: nothing else
 *   in this process runs in between, and other processes wait on SQLite's write lock (timeout 5 s).
 *   SQLite is the single-instance default; many instances should use PostgreSQL.
 * All TypeORM and driver types stay in this file.
 */
import { Inject, Injectable } from '@nestjs/common';
import { InjectRepository } from '@nestjs/typeorm';
import type { DataSource, QueryRunner, Repository } from 'typeorm';
import {
  GENESIS_HASH,
  anchorMac,
  appendCheckpoint,
  headMac,
  linkHash,
  normalizeChainKey,
  readCheckpoints,
  safeEqualHex,
  verifyChain,
  type ChainAnchor,
  type ChainHead,
  type ChainVerifyResult,
} from './audit-chain.js';
import { AuditEventEntity } from './audit-event.entity.js';
import {
  AUDIT_RECORD_COLUMNS,
  AUDIT_ROW_COLUMNS,
  rowToEvent,
  toAuditTimestamp,
  type AuditEvent,
  type AuditRecord,
  type AuditRow,
} from './audit-record.js';
import {
  AuditQueryError,
  AuditRepository,
  clampAuditLimit,
  decodeAuditCursor,
  encodeAuditCursor,
  type AuditFilter,
  type AuditPage,
  type AuditPurgeResult,
  type AuditStatsBucket,
  type AuditStatsRow,
  type AuditVerifyOptions,
} from './audit.repository.js';
import { AUDIT_MODULE_OPTIONS, type AuditModuleOptions } from './audit.options.js';

/** The part of better-sqlite3's API used here. */
interface SqliteStatement {
  run(...params: unknown[]): { changes: number };
  get(...params: unknown[]): unknown;
  all(...params: unknown[]): unknown[];
}
interface SqliteHandle {
  prepare(sql: string): SqliteStatement;
  transaction<A extends unknown[], R>(fn: (...args: A) => R): { immediate(...args: A): R };
}

const SELECT_COLUMNS = AUDIT_ROW_COLUMNS.join(', ');
const VERIFY_BATCH = 1000;

/** Positional placeholders: `$1, $2` on PostgreSQL, `?` on SQLite. */
class Params {
  readonly values: unknown[] = [];
  constructor(private readonly postgres: boolean) {}
  add(value: unknown): string {
    this.values.push(value);
    return this.postgres ? `$${this.values.length}` : '?';
  }
}

interface HeadRowRaw {
  seq: number | string;
  hash: string;
  updated_at: string;
  mac: string;
}

/** One-statement tries of a single append (cached head, then the head it was shown) before lock-first. */
const OPTIMISTIC_ATTEMPTS = 2;
/** After both tries lost (several instances appending hard), appends go lock-first for this long. */
const CONTENTION_BACKOFF_MS = 1_000;

@Injectable()
export class TypeOrmAuditRepository extends AuditRepository {
  private readonly dataSource: DataSource;
  private readonly key: Buffer;
  private readonly postgres: boolean;
  private headReady: Promise<void> | null = null;
  /** The head as this instance last saw it (PostgreSQL single appends); a guess, checked in SQL. */
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
    @InjectRepository(AuditEventEntity) events: Repository<AuditEventEntity>,
    @Inject(AUDIT_MODULE_OPTIONS) options: Pick<AuditModuleOptions, 'chainKey'>,
  ) {
    super();
    this.dataSource = events.manager.connection;
    this.key = normalizeChainKey(options.chainKey);
    const type = this.dataSource.options.type;
    if (type !== 'postgres' && type !== 'better-sqlite3') {
      throw new TypeError(`audit: unsupported database type ${type}`);
    }
    this.postgres = type === 'postgres';
  }

  // -------------------------------------------------------------------------------------------
  // Appends

  override async appendRecord(record: AuditRecord): Promise<AuditEvent> {
    if (!this.postgres) {
      const [event] = await this.appendMany([record]);
      return event;
    }
    await this.ensureHead();
    return rowToEvent(await this.enqueue(record));
  }

  /**
   * Appends from one instance go through one queue: at most one append statement of this
   * instance is in flight, and records that arrive meanwhile are written together in the next
   * transaction (group commit). Instances still contend on the head row, fairly and briefly.
   */
  private enqueue(record: AuditRecord): Promise<AuditRow> {
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
              ? [await this.appendOnePostgres(batch[0].record)]
              : await this.appendPostgres(batch.map((b) => b.record));
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
  private async appendOnePostgres(record: AuditRecord): Promise<AuditRow> {
    if (Date.now() < this.contendedUntil) {
      return this.appendOneLockFirst(record);
    }
    let head = this.cachedHead ?? (await this.readHeadForAppend());
    for (let attempt = 0; attempt < OPTIMISTIC_ATTEMPTS; attempt += 1) {
      const row = this.link(record, head.seq, head.hash);
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
        const existing = await this.findRowById(record.id);
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
    const [row] = await this.appendPostgres([record]);
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

  override async appendMany(records: readonly AuditRecord[]): Promise<AuditEvent[]> {
    if (records.length === 0) {
      return [];
    }
    await this.ensureHead();
    const rows = this.postgres ? await this.appendPostgres(records) : this.appendSqlite(records);
    return rows.map(rowToEvent);
  }

  /** Creates the head row (seq 0, genesis hash, MAC'd) once; a no-op when it exists. */
  private ensureHead(): Promise<void> {
    this.headReady ??= (async () => {
      const p = new Params(this.postgres);
      const sql = `INSERT INTO audit_chain_head (id, seq, hash, updated_at, mac) VALUES (1, 0, ${p.add(GENESIS_HASH)}, ${p.add(
        toAuditTimestamp(new Date()),
      )}, ${p.add(headMac(this.key, 0, GENESIS_HASH))}) ON CONFLICT (id) DO NOTHING`;
      await this.dataSource.query(sql, p.values);
    })().catch((err: unknown) => {
      this.headReady = null;
      throw err;
    });
    return this.headReady;
  }

  private link(record: AuditRecord, prevSeq: number, prevHash: string): AuditRow {
    const seq = prevSeq + 1;
    const base = { ...pickRecord(record), seq };
    return { ...base, prev_hash: prevHash, hash: linkHash(this.key, prevHash, base) };
  }

  private async appendPostgres(records: readonly AuditRecord[]): Promise<AuditRow[]> {
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
          const row = this.link(record, prevSeq, prevHash);
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

  private sqliteHandle(): SqliteHandle {
    return (this.dataSource.driver as unknown as { databaseConnection: SqliteHandle })
      .databaseConnection;
  }

  private appendSqlite(records: readonly AuditRecord[]): AuditRow[] {
    const db = this.sqliteHandle();
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
        const row = this.link(record, prevSeq, prevHash);
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

  private async mergeExisting(
    records: readonly AuditRecord[],
    stored: AuditRow[],
    existing: string[],
  ): Promise<AuditRow[]> {
    const byId = new Map(stored.map((r) => [r.id, r]));
    for (const id of existing) {
      const row = await this.findRowById(id);
      if (row) {
        byId.set(id, row);
      }
    }
    return records.map((r) => byId.get(r.id)).filter((r): r is AuditRow => r !== undefined);
  }

  // -------------------------------------------------------------------------------------------
  // Reads

  private async rows(sql: string, params: unknown[], runner?: QueryRunner): Promise<AuditRow[]> {
    const raw = (await (runner ?? this.dataSource).query(sql, params)) as AuditRow[];
    return raw.map((r) => ({ ...r, seq: Number(r.seq) }));
  }

  private async findRowById(id: string): Promise<AuditRow | null> {
    const p = new Params(this.postgres);
    const [row] = await this.rows(
      `SELECT ${SELECT_COLUMNS} FROM audit_events WHERE id = ${p.add(id)}`,
      p.values,
    );
    return row ?? null;
  }

  override async findById(id: string): Promise<AuditEvent | null> {
    if (typeof id !== 'string' || id.length > 36) {
      return null;
    }
    const row = await this.findRowById(id);
    return row ? rowToEvent(row) : null;
  }

  private where(filter: AuditFilter, p: Params): string[] {
    const clauses: string[] = [];
    const eq = (column: string, value: string | undefined) => {
      if (value !== undefined && value !== '') {
        clauses.push(`${column} = ${p.add(value)}`);
      }
    };
    eq('username', filter.username);
    eq('type', filter.type);
    eq('outcome', filter.outcome);
    eq('factor', filter.factor);
    eq('reason', filter.reason);
    eq('txid', filter.txid);
    if (filter.ip !== undefined && filter.ip !== '') {
      clauses.push(`(client_ip = ${p.add(filter.ip)} OR access_device_ip = ${p.add(filter.ip)})`);
    }
    if (filter.from !== undefined) {
      clauses.push(`occurred_at >= ${p.add(this.time(filter.from, 'from'))}`);
    }
    if (filter.to !== undefined) {
      clauses.push(`occurred_at < ${p.add(this.time(filter.to, 'to'))}`);
    }
    return clauses;
  }

  private time(value: Date | string, field: string): string {
    try {
      return toAuditTimestamp(value);
    } catch {
      throw new AuditQueryError(`invalid ${field} time`);
    }
  }

  override async findPage(
    filter: AuditFilter,
    cursor?: string | null,
    limit?: number,
  ): Promise<AuditPage> {
    const size = clampAuditLimit(limit);
    const p = new Params(this.postgres);
    const clauses = this.where(filter, p);
    if (cursor) {
      const key = decodeAuditCursor(cursor);
      clauses.push(`(occurred_at, seq) < (${p.add(key.occurredAt)}, ${p.add(key.seq)})`);
    }
    const whereSql = clauses.length ? `WHERE ${clauses.join(' AND ')}` : '';
    const rows = await this.rows(
      `SELECT ${SELECT_COLUMNS} FROM audit_events ${whereSql} ORDER BY occurred_at DESC, seq DESC LIMIT ${size + 1}`,
      p.values,
    );
    const more = rows.length > size;
    const items = rows.slice(0, size).map(rowToEvent);
    const last = items.at(-1);
    return {
      items,
      nextCursor:
        more && last ? encodeAuditCursor({ occurredAt: last.occurredAt, seq: last.seq }) : null,
    };
  }

  override async stats(filter: AuditFilter, bucket: AuditStatsBucket): Promise<AuditStatsRow[]> {
    if (bucket !== 'hour' && bucket !== 'day') {
      throw new AuditQueryError('bucket must be hour or day');
    }
    const width = bucket === 'hour' ? 13 : 10;
    const p = new Params(this.postgres);
    const clauses = this.where(filter, p);
    const whereSql = clauses.length ? `WHERE ${clauses.join(' AND ')}` : '';
    const bucketSql = `substr(occurred_at, 1, ${width})`;
    const raw = await this.dataSource.query<
      { bucket: string; outcome: AuditEvent['outcome']; factor: string; n: number | string }[]
    >(
      `SELECT ${bucketSql} AS bucket, outcome, COALESCE(factor, 'none') AS factor, COUNT(*) AS n FROM audit_events ${whereSql} ` +
        `GROUP BY ${bucketSql}, outcome, COALESCE(factor, 'none') ORDER BY 1`,
      p.values,
    );
    const out = new Map<string, AuditStatsRow>();
    for (const r of raw) {
      const start = bucket === 'hour' ? `${r.bucket}:00:00.000Z` : `${r.bucket}T00:00:00.000Z`;
      let row = out.get(start);
      if (!row) {
        row = { bucket: start, total: 0, byOutcome: {}, byFactor: {} };
        out.set(start, row);
      }
      const n = Number(r.n);
      row.total += n;
      row.byOutcome[r.outcome] = (row.byOutcome[r.outcome] ?? 0) + n;
      row.byFactor[r.factor] = (row.byFactor[r.factor] ?? 0) + n;
    }
    return [...out.values()];
  }

  // -------------------------------------------------------------------------------------------
  // Chain

  override async head(): Promise<ChainHead | null> {
    const raw = await this.dataSource.query<HeadRowRaw[]>(
      'SELECT seq, hash, updated_at, mac FROM audit_chain_head WHERE id = 1',
    );
    const h = raw[0];
    return h ? { seq: Number(h.seq), hash: h.hash, updatedAt: h.updated_at, mac: h.mac } : null;
  }

  private async latestAnchor(): Promise<ChainAnchor | null> {
    const raw = await this.dataSource.query<
      { seq: number | string; hash: string; created_at: string; mac: string }[]
    >('SELECT seq, hash, created_at, mac FROM audit_chain_anchor ORDER BY seq DESC LIMIT 1');
    const a = raw[0];
    return a ? { seq: Number(a.seq), hash: a.hash, createdAt: a.created_at, mac: a.mac } : null;
  }

  override async verifyChain(options: AuditVerifyOptions = {}): Promise<ChainVerifyResult> {
    const anchor = await this.latestAnchor();
    const checkpoints = options.checkpointFile ? await readCheckpoints(options.checkpointFile) : [];
    let head: ChainHead | null = null;
    // Rows are read in batches while appends may go on: when the rows run out, the head is read,
    // and if it points further (a concurrent append), reading continues. An attacker's head that
    // points past the rows is then reported as a truncated tail.
    const rows = async function* (this: TypeOrmAuditRepository): AsyncGenerator<AuditRow> {
      let last = anchor?.seq ?? 0;
      let headReads = 0;
      for (;;) {
        const p = new Params(this.postgres);
        const batch = await this.rows(
          `SELECT ${SELECT_COLUMNS} FROM audit_events WHERE seq > ${p.add(last)} ORDER BY seq ASC LIMIT ${VERIFY_BATCH}`,
          p.values,
        );
        if (batch.length === 0) {
          head = await this.head();
          headReads += 1;
          if (!head || head.seq <= last || headReads > 3) {
            return;
          }
          const p2 = new Params(this.postgres);
          const more = await this.dataSource.query<{ n: number | string }[]>(
            `SELECT COUNT(*) AS n FROM audit_events WHERE seq > ${p2.add(last)}`,
            p2.values,
          );
          if (Number(more[0]?.n ?? 0) === 0) {
            return;
          }
          continue;
        }
        for (const row of batch) {
          yield row;
        }
        last = batch[batch.length - 1].seq;
      }
    };
    return verifyChain(this.key, {
      anchor,
      head: () => Promise.resolve(head),
      rows: rows.call(this),
      checkpoints,
    });
  }

  override async purgeBefore(before: Date): Promise<AuditPurgeResult> {
    const cutoff = toAuditTimestamp(before);
    const now = toAuditTimestamp(new Date());
    await this.ensureHead();
    if (!this.postgres) {
      const db = this.sqliteHandle();
      return db
        .transaction(() => {
          const firstKeep = db
            .prepare('SELECT MIN(seq) AS s FROM audit_events WHERE occurred_at >= ?')
            .get(cutoff) as {
            s: number | null;
          };
          const bounds = db
            .prepare('SELECT MIN(seq) AS lo, MAX(seq) AS hi FROM audit_events')
            .get() as {
            lo: number | null;
            hi: number | null;
          };
          const upTo = firstKeep.s !== null ? firstKeep.s - 1 : bounds.hi;
          if (upTo === null || bounds.lo === null || upTo < bounds.lo) {
            return { deleted: 0, anchorSeq: null };
          }
          const last = db.prepare('SELECT hash FROM audit_events WHERE seq = ?').get(upTo) as {
            hash: string;
          };
          const deleted = db.prepare('DELETE FROM audit_events WHERE seq <= ?').run(upTo).changes;
          db.prepare(
            'INSERT INTO audit_chain_anchor (seq, hash, created_at, mac) VALUES (?, ?, ?, ?)',
          ).run(upTo, last.hash, now, anchorMac(this.key, upTo, last.hash));
          return { deleted, anchorSeq: upTo };
        })
        .immediate();
    }
    const qr = this.dataSource.createQueryRunner();
    try {
      await qr.connect();
      await qr.startTransaction();
      try {
        // The head lock keeps appends out while the prefix is cut.
        await qr.query('SELECT seq FROM audit_chain_head WHERE id = 1 FOR UPDATE');
        const [firstKeep] = (await qr.query(
          'SELECT MIN(seq) AS s FROM audit_events WHERE occurred_at >= $1',
          [cutoff],
        )) as { s: number | null }[];
        const [bounds] = (await qr.query(
          'SELECT MIN(seq) AS lo, MAX(seq) AS hi FROM audit_events',
        )) as {
          lo: number | null;
          hi: number | null;
        }[];
        const upTo = firstKeep.s !== null ? Number(firstKeep.s) - 1 : bounds.hi;
        if (upTo === null || bounds.lo === null || upTo < Number(bounds.lo)) {
          await qr.commitTransaction();
          return { deleted: 0, anchorSeq: null };
        }
        const [last] = (await qr.query('SELECT hash FROM audit_events WHERE seq = $1', [upTo])) as {
          hash: string;
        }[];
        const del = await qr.query('DELETE FROM audit_events WHERE seq <= $1', [upTo], true);
        await qr.query(
          'INSERT INTO audit_chain_anchor (seq, hash, created_at, mac) VALUES ($1, $2, $3, $4)',
          [upTo, last.hash, now, anchorMac(this.key, upTo, last.hash)],
        );
        await qr.commitTransaction();
        return { deleted: del.affected ?? 0, anchorSeq: upTo };
      } catch (err) {
        await qr.rollbackTransaction().catch(() => undefined);
        throw err;
      }
    } finally {
      await qr.release();
    }
  }

  override async writeCheckpoint(file: string): Promise<ChainHead | null> {
    const head = await this.head();
    if (!head) {
      return null;
    }
    if (!safeEqualHex(head.mac, headMac(this.key, head.seq, head.hash))) {
      throw new Error('audit: the chain head MAC does not verify; not checkpointing it');
    }
    await appendCheckpoint(file, this.key, head.seq, head.hash);
    return head;
  }
}

function pickRecord(record: AuditRecord): AuditRecord {
  const out = {} as Record<string, unknown>;
  for (const column of AUDIT_RECORD_COLUMNS) {
    out[column] = record[column] ?? null;
  }
  return out as unknown as AuditRecord;
}
