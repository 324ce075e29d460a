import type { DataSource, EntityManager } from 'typeorm';
import type { DuoAuthLogCursor, DuoAuthLogEntry } from '../admin-api/admin-api.types.js';

/** Where the job stands in one window of Duo's log. */
export type ReconcilePhase =
  /** Reading Duo's log page by page (next_offset is the cursor). */
  | 'duo'
  /** Duo's side of the window is read; our side (successes, abandoned) is being checked. */
  | 'ours'
  /** The window is finished; the next run opens the following one. */
  | 'done';

/** The cursor, committed after every page (see reconcile.job.ts for why that cannot gap or double). */
export interface ReconcileState {
  name: string;
  /** Inclusive window of Duo's log, Unix ms. */
  windowMin: number;
  windowMax: number;
  phase: ReconcilePhase;
  nextOffset: DuoAuthLogCursor | null;
  updatedAt: string;
  /** The last run's summary, JSON (for the audit page after a restart). */
  lastRun: string | null;
}

/** A Duo transaction of our application, as the job keeps it for the checks of our own trail. */
export interface DuoTxRow {
  txid: string;
  tsMs: number;
  username: string | null;
  result: string;
  reason: string | null;
  factor: string | null;
}

/** A row of our trail the checks read. */
export interface OurRow {
  id: string;
  seq: number;
  occurredAt: string;
  username: string | null;
  txid: string | null;
}

const ms13 = (n: number) => String(Math.trunc(n)).padStart(13, '0');
const cut = (v: unknown, n: number): string | null =>
  typeof v === 'string' && v.length > 0 ? v.slice(0, n) : null;

/**
 * The reconcile job's SQL, on the audit DataSource (SQLite or PostgreSQL). Plain SQL, because the
 * statements are few and must behave the same on both engines; parameters are always bound.
 */
export class ReconcileStore {
  private readonly pg: boolean;

  constructor(private readonly dataSource: DataSource) {
    this.pg = dataSource.options.type === 'postgres';
  }

  /** `$1` on PostgreSQL, `?` on SQLite. */
  private p(i: number): string {
    return this.pg ? `$${i}` : '?';
  }

  private list(from: number, n: number): string {
    return Array.from({ length: n }, (_, i) => this.p(from + i)).join(', ');
  }

  async loadState(name: string): Promise<ReconcileState | null> {
    const rows: Record<string, string | null>[] = await this.dataSource.query(
      `SELECT name, window_min, window_max, phase, next_offset_ts, next_offset_txid, updated_at, last_run
       FROM audit_reconcile_state WHERE name = ${this.p(1)}`,
      [name],
    );
    const r = rows[0];
    if (!r) {
      return null;
    }
    return {
      name,
      windowMin: Number(r.window_min),
      windowMax: Number(r.window_max),
      phase: r.phase as ReconcilePhase,
      nextOffset:
        r.next_offset_ts && r.next_offset_txid ? [r.next_offset_ts, r.next_offset_txid] : null,
      updatedAt: r.updated_at ?? '',
      lastRun: r.last_run ?? null,
    };
  }

  /** Writes the whole state row (insert or update), in `manager`'s transaction when given. */
  async saveState(state: ReconcileState, manager?: EntityManager): Promise<void> {
    const run = manager ?? this.dataSource.manager;
    const values = [
      state.name,
      ms13(state.windowMin),
      ms13(state.windowMax),
      state.phase,
      state.nextOffset ? state.nextOffset[0] : null,
      state.nextOffset ? state.nextOffset[1] : null,
      state.updatedAt,
      state.lastRun,
    ];
    await run.query(
      `INSERT INTO audit_reconcile_state
         (name, window_min, window_max, phase, next_offset_ts, next_offset_txid, updated_at, last_run)
       VALUES (${this.list(1, 8)})
       ON CONFLICT (name) DO UPDATE SET window_min = excluded.window_min,
         window_max = excluded.window_max, phase = excluded.phase,
         next_offset_ts = excluded.next_offset_ts, next_offset_txid = excluded.next_offset_txid,
         updated_at = excluded.updated_at, last_run = excluded.last_run`,
      values,
    );
  }

  async deleteState(name: string): Promise<void> {
    await this.dataSource.query(`DELETE FROM audit_reconcile_state WHERE name = ${this.p(1)}`, [
      name,
    ]);
  }

  /** Keeps Duo's transactions of a page; one already kept is left as it is (a replayed page). */
  async keepDuoTransactions(entries: readonly DuoAuthLogEntry[], manager?: EntityManager) {
    const run = manager ?? this.dataSource.manager;
    const seen = new Set<string>();
    const rows: (string | null)[][] = [];
    for (const e of entries) {
      if (seen.has(e.txid)) {
        continue;
      }
      seen.add(e.txid);
      rows.push([
        e.txid,
        ms13(entryMs(e)),
        cut(e.user?.name, 255),
        cut(e.result, 32) ?? 'unknown',
        cut(e.reason, 128),
        cut(e.factor, 64),
      ]);
    }
    for (let i = 0; i < rows.length; i += 400) {
      const chunk = rows.slice(i, i + 400);
      const tuples = chunk.map((_, k) => `(${this.list(k * 6 + 1, 6)})`).join(', ');
      await run.query(
        `INSERT INTO audit_reconcile_duo_tx (txid, ts_ms, username, result, reason, factor)
         VALUES ${tuples} ON CONFLICT (txid) DO NOTHING`,
        chunk.flat(),
      );
    }
  }

  /** Kept Duo transactions by txid. */
  async duoTransactions(txids: readonly string[]): Promise<Map<string, DuoTxRow>> {
    const out = new Map<string, DuoTxRow>();
    for (let i = 0; i < txids.length; i += 500) {
      const chunk = txids.slice(i, i + 500);
      const rows: Record<string, string | null>[] = await this.dataSource.query(
        `SELECT txid, ts_ms, username, result, reason, factor FROM audit_reconcile_duo_tx
         WHERE txid IN (${this.list(1, chunk.length)})`,
        chunk,
      );
      for (const r of rows) {
        out.set(r.txid as string, toDuoTx(r));
      }
    }
    return out;
  }

  /** The latest kept Duo transaction of `username` that did not succeed, within [fromMs, toMs]. */
  async lastFailureOf(username: string, fromMs: number, toMs: number): Promise<DuoTxRow | null> {
    const rows: Record<string, string | null>[] = await this.dataSource.query(
      `SELECT txid, ts_ms, username, result, reason, factor FROM audit_reconcile_duo_tx
       WHERE username = ${this.p(1)} AND ts_ms >= ${this.p(2)} AND ts_ms <= ${this.p(3)}
         AND result <> 'success'
       ORDER BY ts_ms DESC LIMIT 1`,
      [username, ms13(fromMs), ms13(toMs)],
    );
    return rows[0] ? toDuoTx(rows[0]) : null;
  }

  /** Forgets kept Duo transactions older than `beforeMs` (no check looks that far back). */
  async pruneDuoTransactions(beforeMs: number): Promise<void> {
    await this.dataSource.query(`DELETE FROM audit_reconcile_duo_tx WHERE ts_ms < ${this.p(1)}`, [
      ms13(beforeMs),
    ]);
  }

  /** Our rows of one type that carry a txid, by txid (mfa_succeeded: what reached our callback). */
  async ourRowsByTxid(type: string, txids: readonly string[]): Promise<Map<string, OurRow>> {
    const out = new Map<string, OurRow>();
    for (let i = 0; i < txids.length; i += 500) {
      const chunk = txids.slice(i, i + 500);
      const rows: Record<string, unknown>[] = await this.dataSource.query(
        `SELECT id, seq, occurred_at, username, txid FROM audit_events
         WHERE type = ${this.p(1)} AND txid IN (${this.list(2, chunk.length)})`,
        [type, ...chunk],
      );
      for (const r of rows) {
        out.set(r.txid as string, toOurRow(r));
      }
    }
    return out;
  }

  /** Our rows of one type with occurred_at in [from, to] (ISO), after `afterSeq`, oldest first. */
  async ourRowsBetween(
    type: string,
    fromIso: string,
    toIso: string,
    afterSeq: number,
    limit: number,
  ): Promise<OurRow[]> {
    const rows: Record<string, unknown>[] = await this.dataSource.query(
      `SELECT id, seq, occurred_at, username, txid FROM audit_events
       WHERE type = ${this.p(1)} AND occurred_at >= ${this.p(2)} AND occurred_at <= ${this.p(3)}
         AND seq > ${this.p(4)}
       ORDER BY seq ASC LIMIT ${Math.trunc(limit)}`,
      [type, fromIso, toIso, afterSeq],
    );
    return rows.map(toOurRow);
  }

  /** Runs `work` in one database transaction. */
  transaction<T>(work: (manager: EntityManager) => Promise<T>): Promise<T> {
    return this.dataSource.transaction(work);
  }
}

/** The entry's time in ms: the cursor's precision when Duo gives isotimestamp, else seconds. */
export function entryMs(e: DuoAuthLogEntry): number {
  const iso = typeof e.isotimestamp === 'string' ? Date.parse(e.isotimestamp) : NaN;
  return Number.isFinite(iso) ? iso : e.timestamp * 1000;
}

function toDuoTx(r: Record<string, string | null>): DuoTxRow {
  return {
    txid: r.txid as string,
    tsMs: Number(r.ts_ms),
    username: r.username,
    result: r.result as string,
    reason: r.reason,
    factor: r.factor,
  };
}

function toOurRow(r: Record<string, unknown>): OurRow {
  return {
    id: r.id as string,
    seq: Number(r.seq),
    occurredAt: r.occurred_at as string,
    username: (r.username as string | null) ?? null,
    txid: (r.txid as string | null) ?? null,
  };
}
