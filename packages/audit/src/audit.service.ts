/**
 * Records audit events before the flow answers, with a pinned outage policy:
 * - 'spool' (default): a failed or slow (writeTimeoutMs) database write puts the event in the
 *   local fsync'd spool; a replayer (every replayIntervalMs, and on the next record while events
 *   wait) writes them back in order, deduplicated by event id. While events wait in the spool, new
 *   events are spooled behind them, so each instance's order is kept.
 * - 'deny': AuditUnavailableError, so the caller refuses the login.
 * If the spool cannot be written either (disk full), AuditUnavailableError too: never silent.
 */
import {
  Inject,
  Injectable,
  Logger,
  type OnModuleDestroy,
  type OnModuleInit,
} from '@nestjs/common';
import { buildAuditRecord, type AuditEvent, type AuditRecord } from './audit-record.js';
import type { AuditEventInput, AuditRecordContext } from './audit-events.js';
import { AuditSpool } from './audit-spool.js';
import { AuditUnavailableError } from './audit.errors.js';
import { AUDIT_MODULE_OPTIONS, type ResolvedAuditModuleOptions } from './audit.options.js';
import { AuditRepository, type AuditPurgeResult } from './audit.repository.js';

export interface AuditRecordResult {
  id: string;
  /** Where the event is now: the database, or the spool waiting for replay. */
  storedIn: 'database' | 'spool';
  /** The stored event (database only). */
  event?: AuditEvent;
}

export interface AuditServiceMetrics {
  recorded: number;
  spooled: number;
  replayed: number;
  databaseFailures: number;
  denied: number;
  spoolFailures: number;
}

const DAY_MS = 86_400_000;

class AuditTimeoutError extends Error {
  override name = 'AuditTimeoutError';
}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new AuditTimeoutError(`audit write took longer than ${ms} ms`)),
      ms,
    );
    timer.unref();
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

function describeError(err: unknown): string {
  const e = err as { name?: string; code?: string };
  return `${e?.name ?? 'Error'}${e?.code ? ` ${e.code}` : ''}`;
}

@Injectable()
export class AuditService implements OnModuleInit, OnModuleDestroy {
  private readonly logger = new Logger('AuditService');
  readonly spool: AuditSpool;
  private readonly timers: NodeJS.Timeout[] = [];
  private replayInFlight: Promise<number> | null = null;
  private lastReplayFailureAt = 0;
  readonly metrics: AuditServiceMetrics = {
    recorded: 0,
    spooled: 0,
    replayed: 0,
    databaseFailures: 0,
    denied: 0,
    spoolFailures: 0,
  };

  constructor(
    private readonly repository: AuditRepository,
    @Inject(AUDIT_MODULE_OPTIONS) private readonly options: ResolvedAuditModuleOptions,
  ) {
    this.spool = new AuditSpool(options.spoolDir, options.instanceId);
  }

  async onModuleInit(): Promise<void> {
    if (this.options.policy === 'spool') {
      await this.spool.init();
      this.every(this.options.replayIntervalMs, () => this.replayIfPending().then(() => undefined));
      // Events left by a crash are replayed at start, without delaying boot.
      void this.replayIfPending();
    }
    if (this.options.retentionDays !== undefined) {
      this.every(this.options.purgeIntervalMs, () => this.purgeExpired().then(() => undefined));
    }
    if (this.options.checkpointFile) {
      const file = this.options.checkpointFile;
      this.every(this.options.checkpointIntervalMs, () =>
        this.repository.writeCheckpoint(file).then(() => undefined),
      );
    }
  }

  onModuleDestroy(): void {
    this.timers.splice(0).forEach((t) => clearInterval(t));
  }

  private every(ms: number, task: () => Promise<void>): void {
    const timer = setInterval(() => {
      task().catch((err: unknown) =>
        this.logger.warn(`audit background task failed (${describeError(err)})`),
      );
    }, ms);
    timer.unref();
    this.timers.push(timer);
  }

  /**
   * Records one event. Resolves once the event is durable (database row or fsync'd spool line).
   * Throws AuditUnavailableError when it cannot be made durable under the policy; throws
   * TypeError for an input that is not in the catalogue (a programming error).
   */
  async record(input: AuditEventInput, ctx: AuditRecordContext = {}): Promise<AuditRecordResult> {
    const record = buildAuditRecord(input, {
      ...ctx,
      instanceId: ctx.instanceId ?? this.options.instanceId,
    });
    if (this.options.policy === 'spool' && this.spool.pending) {
      await this.toSpool(record, null);
      // The database may be back: try now, unless a replay failed a moment ago.
      if (Date.now() - this.lastReplayFailureAt >= this.options.replayIntervalMs) {
        void this.replayIfPending();
      }
      return { id: record.id, storedIn: 'spool' };
    }
    try {
      const event = await withTimeout(
        this.repository.appendRecord(record),
        this.options.writeTimeoutMs,
      );
      this.metrics.recorded += 1;
      return { id: record.id, storedIn: 'database', event };
    } catch (err) {
      this.metrics.databaseFailures += 1;
      if (this.options.policy === 'deny') {
        this.metrics.denied += 1;
        this.logger.error(`audit write failed (${describeError(err)}); policy deny: refusing`);
        throw new AuditUnavailableError(undefined, { cause: err });
      }
      await this.toSpool(record, err);
      return { id: record.id, storedIn: 'spool' };
    }
  }

  private async toSpool(record: AuditRecord, cause: unknown): Promise<void> {
    try {
      await this.spool.append(record);
      this.metrics.spooled += 1;
      if (cause) {
        this.logger.warn(
          `audit write failed (${describeError(cause)}); event ${record.id} spooled`,
        );
      }
    } catch (err) {
      this.metrics.spoolFailures += 1;
      this.logger.error(
        `audit spool write failed (${describeError(err)}); event ${record.id} NOT recorded`,
      );
      throw new AuditUnavailableError('The audit trail and its spool are unavailable', {
        cause: err,
      });
    }
  }

  /** Replays the spool when events wait; resolves with the number replayed (0 on failure). */
  async replayIfPending(): Promise<number> {
    if (!this.spool.pending) {
      return 0;
    }
    try {
      const n = await this.replaySpool();
      this.lastReplayFailureAt = 0;
      return n;
    } catch (err) {
      if (this.lastReplayFailureAt === 0) {
        this.logger.warn(
          `audit spool replay failed (${describeError(err)}); retrying every ${this.options.replayIntervalMs} ms`,
        );
      }
      this.lastReplayFailureAt = Date.now();
      return 0;
    }
  }

  /** Replays the spool now (throws when the database is still down). Single-flight. */
  replaySpool(): Promise<number> {
    this.replayInFlight ??= this.replayOnce().finally(() => {
      this.replayInFlight = null;
    });
    return this.replayInFlight;
  }

  private async replayOnce(): Promise<number> {
    const result = await this.spool.replay(async (records) => {
      await withTimeout(
        this.repository.appendMany(records),
        Math.max(this.options.writeTimeoutMs, 10_000),
      );
    });
    this.metrics.replayed += result.replayed;
    if (result.replayed > 0 || result.rejected > 0) {
      this.logger.log(
        `audit spool replayed: ${result.replayed} events, ${result.rejected} unreadable lines`,
      );
      await this.record({
        type: 'audit_spool_replayed',
        outcome: result.rejected > 0 ? 'failure' : 'info',
        detail: { replayed: result.replayed, rejected: result.rejected },
      }).catch(() => undefined);
    }
    return result.replayed;
  }

  /** Deletes events older than retentionDays (no-op without it). */
  async purgeExpired(now = new Date()): Promise<AuditPurgeResult | null> {
    if (this.options.retentionDays === undefined) {
      return null;
    }
    const result = await this.repository.purgeBefore(
      new Date(now.getTime() - this.options.retentionDays * DAY_MS),
    );
    if (result.deleted > 0) {
      this.logger.log(
        `audit retention: purged ${result.deleted} events up to seq ${result.anchorSeq}`,
      );
      if (this.options.checkpointFile) {
        await this.repository.writeCheckpoint(this.options.checkpointFile);
      }
    }
    return result;
  }
}
