import { createHash } from 'node:crypto';
import type { DuoAuthContext } from '@duo-nest/core';
import { DuoAdminError } from '../admin-api/admin-api.errors.js';
import { DUO_AUTH_LOG_LAG_MS, DUO_AUTH_LOG_MAX_LIMIT } from '../admin-api/admin-api.client.js';
import type {
  DuoAuthLogEntry,
  DuoAuthLogPage,
  DuoAuthLogQuery,
} from '../admin-api/admin-api.types.js';
import type { AuditEventInput } from '../audit-events.js';
import { buildAuditRecord, type AuditRecord } from '../audit-record.js';
import type { AuditRepository } from '../audit.repository.js';
import type { ReconcileLock } from './reconcile-lock.js';
import { entryMs, type ReconcileState, type ReconcileStore } from './reconcile-store.js';

/** The audit events the job writes. */
export const RECONCILE_EVENT_KINDS = [
  'reconcile_missing_at_duo',
  'reconcile_unclaimed_at_duo',
  'mfa_abandoned_reason',
  'mfa_fraud_reported',
] as const;
export type ReconcileEventKind = (typeof RECONCILE_EVENT_KINDS)[number];

/** Options of the reconcile job. */
export interface DuoReconcileOptions {
  /** Our Universal Prompt client id: Duo's application key of our entries (others are ignored). */
  clientId: string;
  /**
   * How long after an event the job waits before judging it: Duo's log delay (about 2 minutes)
   * plus the time between Duo's decision and our callback. Each window of Duo's log ends this far
   * before now. Lower it only in tests: below Duo's delay it reports false mismatches.
   * @default 600000 (10 minutes)
   */
  graceMs?: number;
  /** Clock difference allowed between Duo's timestamps and ours. @default 60000 */
  clockSkewMs?: number;
  /** How long before our `mfa_abandoned` row Duo's answer may be (pending TTL plus sweep). @default 1800000 */
  abandonWindowMs?: number;
  /** The first window starts this far back when there is no cursor yet. @default 3600000 */
  lookbackMs?: number;
  /** Entries per page of Duo's log, 1..1000. @default 1000 */
  pageSize?: number;
  /** Pages read per run at most (the rest waits for the next run). @default unlimited */
  maxPagesPerRun?: number;
  /** End every session of a user who reported fraud (every instance, through the session store). @default true */
  revokeOnFraud?: boolean;
  /** Cursor name in audit_reconcile_state (a one-off run uses its own). @default 'default' */
  stateName?: string;
  /** Written as instance_id on the events. */
  instanceId?: string;
}

/** What the job needs from outside, passed in so it runs without Nest (CLI, bench, tests). */
export interface DuoReconcileDeps {
  /** The Admin API client (or anything that reads one page of Duo's authentication log). */
  client: { getAuthenticationLogPage(query: DuoAuthLogQuery): Promise<DuoAuthLogPage> };
  repository: AuditRepository;
  store: ReconcileStore;
  lock: ReconcileLock;
  /** Ends every session of a user; answers how many (DuoSessionControl.markCompromised). */
  revokeUser?: (username: string) => Promise<number>;
  now?: () => number;
}

export type ReconcileRunStatus = 'ok' | 'partial' | 'idle' | 'locked' | 'error';

/** One run's outcome. */
export interface ReconcileRunResult {
  status: ReconcileRunStatus;
  startedAt: string;
  durationMs: number;
  pages: number;
  entries: number;
  /** New events written by this run (a replayed page writes none again). */
  events: Record<ReconcileEventKind, number>;
  revoked: number;
  /** The error code when status is error (a DuoAdminError code, lock_lost, revoke_failed, database). */
  error?: string;
  cursor: ReconcileCursorView | null;
}

/** The cursor as the audit page and the metrics show it. */
export interface ReconcileCursorView {
  windowMin: string;
  windowMax: string;
  phase: string;
  nextOffset: readonly [string, string] | null;
  updatedAt: string;
}

/** Cumulative figures of this process, for /metrics. */
export interface ReconcileMetrics {
  runs: Record<ReconcileRunStatus, number>;
  entriesRead: number;
  pagesRead: number;
  events: Record<ReconcileEventKind, number>;
  errors: Record<string, number>;
  revoked: number;
  /** ms between now and the newest instant of Duo's log fully reconciled (null before a cursor). */
  lagMs: () => number | null;
  lastRun: ReconcileRunResult | null;
}

const DEFAULTS = {
  graceMs: 600_000,
  clockSkewMs: 60_000,
  abandonWindowMs: 1_800_000,
  lookbackMs: 3_600_000,
  pageSize: DUO_AUTH_LOG_MAX_LIMIT,
};
/** Kept Duo transactions older than this behind the window are forgotten. */
const KEEP_BEHIND_MS = 24 * 3_600_000;
const OUR_BATCH = 1000;
/** The actor of a revocation the job makes (detail.actor of user_marked_compromised). */
export const RECONCILE_ACTOR = 'duo-reconcile';

const iso = (ms: number) => new Date(ms).toISOString();
const zeroEvents = (): Record<ReconcileEventKind, number> => ({
  reconcile_missing_at_duo: 0,
  reconcile_unclaimed_at_duo: 0,
  mfa_abandoned_reason: 0,
  mfa_fraud_reported: 0,
});

/**
 * The id of a reconcile event, derived from what it is about (Duo's txid, or our event's id), so
 * the same finding always has the same id and the repository's idempotent append stores it once.
 */
export function reconcileEventId(kind: ReconcileEventKind, key: string): string {
  const h = createHash('sha256').update(`duo-nest:reconcile:${kind}:${key}`).digest('hex');
  // A UUID-shaped name (version 8, RFC 9562 custom; variant 10) of the hash.
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-8${h.slice(13, 16)}-${((parseInt(h[16], 16) & 3) | 8).toString(16)}${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

class LockLostError extends Error {
  override name = 'LockLostError';
}

/**
 * Holds Duo's authentication log against our audit trail, one window of Duo's log at a time.
 *
 * Why no gap and no double count across crashes and restarts: the cursor (window, phase and Duo's
 * next_offset) lives in audit_reconcile_state and moves only after everything a page produced is
 * stored; every event the job writes has an id derived from Duo's txid (or from our event's id),
 * and the audit repository appends an existing id as a no-op. A crash after the events and before
 * the cursor replays that page on the next run, which writes nothing twice; a failure (429 after
 * the retries, outage, bad signature, database) leaves the cursor where it was.
 */
export class DuoReconcileJob {
  readonly options: Required<Omit<DuoReconcileOptions, 'instanceId' | 'maxPagesPerRun'>> & {
    instanceId?: string;
    maxPagesPerRun: number;
  };
  readonly metrics: ReconcileMetrics;
  private readonly now: () => number;
  private cursor: ReconcileState | null = null;

  constructor(
    options: DuoReconcileOptions,
    private readonly deps: DuoReconcileDeps,
  ) {
    if (!/^[A-Za-z0-9]{20}$/.test(options.clientId ?? '')) {
      throw new TypeError(
        'reconcile: clientId must be the 20-character client id of the Duo application',
      );
    }
    const pageSize = options.pageSize ?? DEFAULTS.pageSize;
    if (!Number.isInteger(pageSize) || pageSize < 1 || pageSize > DUO_AUTH_LOG_MAX_LIMIT) {
      throw new TypeError(
        `reconcile: pageSize must be an integer from 1 to ${DUO_AUTH_LOG_MAX_LIMIT}`,
      );
    }
    this.options = {
      clientId: options.clientId,
      graceMs: options.graceMs ?? DEFAULTS.graceMs,
      clockSkewMs: options.clockSkewMs ?? DEFAULTS.clockSkewMs,
      abandonWindowMs: options.abandonWindowMs ?? DEFAULTS.abandonWindowMs,
      lookbackMs: options.lookbackMs ?? DEFAULTS.lookbackMs,
      pageSize,
      maxPagesPerRun: options.maxPagesPerRun ?? Number.POSITIVE_INFINITY,
      revokeOnFraud: options.revokeOnFraud ?? true,
      stateName: options.stateName ?? 'default',
      instanceId: options.instanceId,
    };
    this.now = deps.now ?? Date.now;
    this.metrics = {
      runs: { ok: 0, partial: 0, idle: 0, locked: 0, error: 0 },
      entriesRead: 0,
      pagesRead: 0,
      events: zeroEvents(),
      errors: {},
      revoked: 0,
      lagMs: () => this.lagMs(),
      lastRun: null,
    };
  }

  /** The stored cursor (read from the database; null before the first run). */
  async cursorView(): Promise<ReconcileCursorView | null> {
    this.cursor = await this.deps.store.loadState(this.options.stateName);
    return this.view(this.cursor);
  }

  /** The last run recorded in the database (any instance's), for the audit page. */
  async lastRecordedRun(): Promise<ReconcileRunResult | null> {
    const state = await this.deps.store.loadState(this.options.stateName);
    this.cursor = state;
    try {
      return state?.lastRun ? (JSON.parse(state.lastRun) as ReconcileRunResult) : null;
    } catch {
      return null;
    }
  }

  /**
   * One run: takes the lock (or answers `locked`), then reads Duo's log from the cursor up to
   * now − grace window by window, page by page, committing the cursor after each page. `since`
   * (ms) restarts the cursor there (the one-off CLI).
   */
  async runOnce(opts: { since?: number } = {}): Promise<ReconcileRunResult> {
    const started = this.now();
    const result: ReconcileRunResult = {
      status: 'idle',
      startedAt: iso(started),
      durationMs: 0,
      pages: 0,
      entries: 0,
      events: zeroEvents(),
      revoked: 0,
      cursor: null,
    };
    const token = await this.deps.lock.acquire().catch(() => null);
    if (token === null) {
      result.status = 'locked';
      this.metrics.runs.locked++;
      return result;
    }
    try {
      await this.work(token, result, opts.since);
    } catch (err) {
      result.status = 'error';
      result.error = errorCode(err);
      this.metrics.errors[result.error] = (this.metrics.errors[result.error] ?? 0) + 1;
    } finally {
      await this.deps.lock.release(token).catch(() => undefined);
    }
    this.metrics.runs[result.status]++;
    result.durationMs = this.now() - started;
    result.cursor = this.view(this.cursor);
    this.metrics.lastRun = result;
    if (this.cursor) {
      // The summary survives restarts (the audit page of any instance shows it); best effort.
      await this.deps.store
        .saveState({ ...this.cursor, lastRun: JSON.stringify(result) })
        .catch(() => undefined);
    }
    return result;
  }

  private async work(token: string, result: ReconcileRunResult, since?: number) {
    const { store } = this.deps;
    const name = this.options.stateName;
    let state = since === undefined ? await store.loadState(name) : null;
    const horizon = this.now() - Math.max(this.options.graceMs, 0);
    let pagesLeft = this.options.maxPagesPerRun;
    for (;;) {
      if (!state || state.phase === 'done') {
        const min = state ? state.windowMax + 1 : (since ?? this.now() - this.options.lookbackMs);
        if (horizon <= min) {
          // Nothing old enough to judge yet.
          this.cursor = state;
          if (result.status === 'idle' && result.pages > 0) {
            result.status = 'ok';
          }
          return;
        }
        state = this.newState(min, horizon, state?.lastRun ?? null);
        await store.saveState(state);
      }
      this.cursor = state;
      if (state.phase === 'duo') {
        if (pagesLeft <= 0) {
          result.status = 'partial';
          return;
        }
        const page = await this.deps.client.getAuthenticationLogPage({
          mintime: state.windowMin,
          maxtime: state.windowMax,
          limit: this.options.pageSize,
          sort: 'ts:asc',
          applications: [this.options.clientId],
          ...(state.nextOffset ? { nextOffset: state.nextOffset } : {}),
        });
        pagesLeft--;
        result.pages++;
        result.entries += page.entries.length;
        this.metrics.pagesRead++;
        this.metrics.entriesRead += page.entries.length;
        await this.processPage(page.entries, result);
        await this.keepLock(token);
        const last = page.nextOffset === null || page.entries.length === 0;
        state = {
          ...state,
          phase: last ? 'ours' : 'duo',
          nextOffset: last ? null : page.nextOffset,
          updatedAt: iso(this.now()),
        };
        await store.saveState(state);
        this.cursor = state;
        continue;
      }
      if (state.phase === 'ours') {
        await this.checkOurSide(state, result);
        await store.pruneDuoTransactions(state.windowMin - KEEP_BEHIND_MS);
        state = { ...state, phase: 'done', updatedAt: iso(this.now()) };
        await store.saveState(state);
        this.cursor = state;
        result.status = 'ok';
      }
    }
  }

  private newState(min: number, max: number, lastRun: string | null): ReconcileState {
    return {
      name: this.options.stateName,
      windowMin: min,
      windowMax: max,
      phase: 'duo',
      nextOffset: null,
      updatedAt: iso(this.now()),
      lastRun,
    };
  }

  private async keepLock(token: string) {
    if (!(await this.deps.lock.renew(token))) {
      throw new LockLostError('the reconcile lock was lost');
    }
  }

  /** Duo's side of one page: unclaimed successes and reported fraud. */
  private async processPage(all: readonly DuoAuthLogEntry[], result: ReconcileRunResult) {
    const { store } = this.deps;
    const entries = all.filter((e) => e.application?.key === this.options.clientId);
    await store.keepDuoTransactions(entries);
    const successes = entries.filter((e) => e.result === 'success');
    const ours = await store.ourRowsByTxid(
      'mfa_succeeded',
      successes.map((e) => e.txid),
    );
    const records: AuditRecord[] = [];
    const fraudUsers = new Set<string>();
    for (const e of entries) {
      const tsMs = entryMs(e);
      const username = e.user?.name ?? null;
      const base = { duo_ts: iso(tsMs), duo_result: e.result, duo_reason: e.reason ?? null };
      if (e.result === 'success') {
        const mine = ours.get(e.txid);
        const why = !mine
          ? 'no_callback'
          : !sameUser(mine.username, username)
            ? 'username_mismatch'
            : !within(
                  Date.parse(mine.occurredAt),
                  tsMs - this.options.clockSkewMs,
                  tsMs + this.options.graceMs,
                )
              ? 'time_mismatch'
              : null;
        if (why) {
          records.push(
            this.record('reconcile_unclaimed_at_duo', e.txid, {
              type: 'reconcile_unclaimed_at_duo',
              outcome: 'failure',
              username,
              reason: why,
              authContext: e as unknown as DuoAuthContext,
              detail: { ...base, ...(mine ? { event_id: mine.id } : {}) },
            }),
          );
        }
      } else if (e.result === 'fraud') {
        records.push(
          this.record('mfa_fraud_reported', e.txid, {
            type: 'mfa_fraud_reported',
            outcome: 'failure',
            username,
            reason: e.reason ?? 'user_marked_fraud',
            authContext: e as unknown as DuoAuthContext,
            detail: { ...base, revoke: this.options.revokeOnFraud && !!this.deps.revokeUser },
          }),
        );
        if (username) {
          fraudUsers.add(username);
        }
      }
    }
    await this.append(records, result);
    if (this.options.revokeOnFraud && this.deps.revokeUser) {
      for (const user of fraudUsers) {
        try {
          const n = await this.deps.revokeUser(user);
          result.revoked += n;
          this.metrics.revoked += n;
        } catch (err) {
          throw Object.assign(new Error('revoking the sessions of a fraud report failed'), {
            code: 'revoke_failed',
            cause: err,
          });
        }
      }
    }
  }

  /**
   * Our side of a finished window: every `mfa_succeeded` needs a successful Duo transaction with its
   * txid; every `mfa_abandoned` gets Duo's reason when Duo logged a failure of that user before it.
   * Our rows are taken with the clock skew subtracted, so Duo's entry of each is already read.
   */
  private async checkOurSide(state: ReconcileState, result: ReconcileRunResult) {
    const from = iso(state.windowMin - this.options.clockSkewMs);
    const to = iso(state.windowMax - this.options.clockSkewMs);
    const { store } = this.deps;
    for (let after = 0; ;) {
      const rows = await store.ourRowsBetween('mfa_succeeded', from, to, after, OUR_BATCH);
      if (rows.length === 0) {
        break;
      }
      after = rows[rows.length - 1].seq;
      const duo = await store.duoTransactions(rows.flatMap((r) => (r.txid ? [r.txid] : [])));
      const records: AuditRecord[] = [];
      for (const r of rows) {
        const tx = r.txid ? duo.get(r.txid) : undefined;
        if (tx && tx.result === 'success') {
          continue;
        }
        records.push(
          this.record('reconcile_missing_at_duo', r.id, {
            type: 'reconcile_missing_at_duo',
            outcome: 'failure',
            username: r.username,
            reason: tx ? 'duo_not_success' : 'no_duo_transaction',
            authContext: r.txid ? ({ txid: r.txid } as DuoAuthContext) : null,
            detail: { event_id: r.id, duo_result: tx?.result ?? null, our_at: r.occurredAt },
          }),
        );
      }
      await this.append(records, result);
    }
    for (let after = 0; ;) {
      const rows = await store.ourRowsBetween('mfa_abandoned', from, to, after, OUR_BATCH);
      if (rows.length === 0) {
        break;
      }
      after = rows[rows.length - 1].seq;
      const records: AuditRecord[] = [];
      for (const r of rows) {
        if (!r.username) {
          continue;
        }
        const at = Date.parse(r.occurredAt);
        const tx = await store.lastFailureOf(
          r.username,
          at - this.options.abandonWindowMs,
          at + this.options.clockSkewMs,
        );
        if (!tx) {
          continue;
        }
        records.push(
          this.record('mfa_abandoned_reason', r.id, {
            type: 'mfa_abandoned_reason',
            outcome: 'info',
            username: r.username,
            reason: tx.reason ?? tx.result,
            authContext: {
              txid: tx.txid,
              result: tx.result,
              reason: tx.reason,
              factor: tx.factor,
            } as unknown as DuoAuthContext,
            detail: {
              abandoned_event_id: r.id,
              duo_result: tx.result,
              duo_reason: tx.reason,
              duo_ts: iso(tx.tsMs),
            },
          }),
        );
      }
      await this.append(records, result);
    }
  }

  private record(kind: ReconcileEventKind, key: string, input: AuditEventInput): AuditRecord {
    return buildAuditRecord(
      { ...input, detail: input.detail },
      {
        id: reconcileEventId(kind, key),
        occurredAt: new Date(this.now()),
        instanceId: this.options.instanceId ?? null,
      },
    );
  }

  /** Appends (idempotent by id) and counts only the events that are new. */
  private async append(records: AuditRecord[], result: ReconcileRunResult) {
    if (records.length === 0) {
      return;
    }
    const before = (await this.deps.repository.head())?.seq ?? 0;
    const stored = await this.deps.repository.appendMany(records);
    for (const e of stored) {
      if (e.seq > before && (RECONCILE_EVENT_KINDS as readonly string[]).includes(e.type)) {
        const kind = e.type as ReconcileEventKind;
        result.events[kind]++;
        this.metrics.events[kind]++;
      }
    }
  }

  private lagMs(): number | null {
    const s = this.cursor;
    if (!s) {
      return null;
    }
    const reached =
      s.phase === 'done' ? s.windowMax : s.nextOffset ? Number(s.nextOffset[0]) : s.windowMin - 1;
    return Math.max(0, this.now() - reached);
  }

  private view(s: ReconcileState | null): ReconcileCursorView | null {
    return s
      ? {
          windowMin: iso(s.windowMin),
          windowMax: iso(s.windowMax),
          phase: s.phase,
          nextOffset: s.nextOffset,
          updatedAt: s.updatedAt,
        }
      : null;
  }
}

/** Duo's log delay: the grace window must be at least this in production. */
export const RECONCILE_MIN_PRODUCTION_GRACE_MS = DUO_AUTH_LOG_LAG_MS;

function sameUser(a: string | null, b: string | null): boolean {
  return (a ?? '').toLowerCase() === (b ?? '').toLowerCase();
}

function within(t: number, from: number, to: number): boolean {
  return Number.isFinite(t) && t >= from && t <= to;
}

/** A stable, bounded code for a failed run (metrics label, audit page). */
export function errorCode(err: unknown): string {
  if (err instanceof DuoAdminError) {
    return err.code;
  }
  if (err instanceof LockLostError) {
    return 'lock_lost';
  }
  if ((err as { code?: unknown })?.code === 'revoke_failed') {
    return 'revoke_failed';
  }
  const name = (err as { name?: unknown })?.name;
  return typeof name === 'string' && /QueryFailed|Driver|Sqlite|Typeorm/i.test(name)
    ? 'database'
    : 'other';
}
