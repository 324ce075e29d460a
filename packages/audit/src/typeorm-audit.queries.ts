// The read side of the TypeORM audit trail: one event, filtered pages (keyset on occurred_at,
// seq) and bucketed counts, with the same SQL on PostgreSQL and SQLite.
import type { DataSource } from 'typeorm';
import { rowToEvent, toAuditTimestamp, type AuditEvent } from './audit-record.js';
import {
  AuditQueryError,
  clampAuditLimit,
  decodeAuditCursor,
  encodeAuditCursor,
  type AuditFilter,
  type AuditPage,
  type AuditStatsBucket,
  type AuditStatsRow,
} from './audit.repository.js';
import { findRowById, Params, queryRows, SELECT_COLUMNS } from './typeorm-audit-sql.js';

/** The queries of TypeOrmAuditRepository. */
export class TypeOrmAuditQueries {
  constructor(
    private readonly dataSource: DataSource,
    private readonly postgres: boolean,
  ) {}

  /** The event of an id, or null (an id longer than 36 characters is none). */
  async findById(id: string): Promise<AuditEvent | null> {
    if (typeof id !== 'string' || id.length > 36) {
      return null;
    }
    const row = await findRowById(this.dataSource, this.postgres, id);
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

  /** A page of events, newest first, after the cursor. */
  async findPage(filter: AuditFilter, cursor?: string | null, limit?: number): Promise<AuditPage> {
    const size = clampAuditLimit(limit);
    const p = new Params(this.postgres);
    const clauses = this.where(filter, p);
    if (cursor) {
      const key = decodeAuditCursor(cursor);
      clauses.push(`(occurred_at, seq) < (${p.add(key.occurredAt)}, ${p.add(key.seq)})`);
    }
    const whereSql = clauses.length ? `WHERE ${clauses.join(' AND ')}` : '';
    const rows = await queryRows(
      this.dataSource,
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

  /** Counts per hour or day bucket, by outcome and factor. */
  async stats(filter: AuditFilter, bucket: AuditStatsBucket): Promise<AuditStatsRow[]> {
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
}
