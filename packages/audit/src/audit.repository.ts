/**
 * The audit store's contract, and its DI token: bind an implementation with
 * `{ provide: AuditRepository, useClass: TypeOrmAuditRepository }`.
 */
import type {
  AuditEventInput,
  AuditEventType,
  AuditOutcome,
  AuditRecordContext,
} from './audit-events.js';
import type { ChainHead, ChainVerifyResult } from './audit-chain.js';
import { buildAuditRecord, type AuditEvent, type AuditRecord } from './audit-record.js';

export const AUDIT_PAGE_MAX = 500;
export const AUDIT_PAGE_DEFAULT = 50;

export interface AuditFilter {
  username?: string;
  type?: AuditEventType;
  outcome?: AuditOutcome;
  factor?: string;
  reason?: string;
  txid?: string;
  /** Matches the client ip or Duo's access device ip. */
  ip?: string;
  /** Inclusive. */
  from?: Date | string;
  /** Exclusive. */
  to?: Date | string;
}

export interface AuditPage {
  items: AuditEvent[];
  /** Opaque; pass it back for the next (older) page. Null on the last page. */
  nextCursor: string | null;
}

export type AuditStatsBucket = 'hour' | 'day';

export interface AuditStatsRow {
  /** Start of the bucket, UTC ISO string. */
  bucket: string;
  total: number;
  byOutcome: Partial<Record<AuditOutcome, number>>;
  /** Key `none` counts events without a factor. */
  byFactor: Record<string, number>;
}

export interface AuditVerifyOptions {
  /** An external checkpoint file (lines of seq, hash, MAC) to check the chain against. */
  checkpointFile?: string;
}

export interface AuditPurgeResult {
  deleted: number;
  /** The anchor written (seq and hash of the last deleted row), or null when nothing was deleted. */
  anchorSeq: number | null;
}

/** Thrown for a malformed cursor or filter: a client error (HTTP 400), never a server fault. */
export class AuditQueryError extends Error {
  override name = 'AuditQueryError';
}

interface CursorKey {
  occurredAt: string;
  seq: number;
}

export function encodeAuditCursor(key: CursorKey): string {
  return Buffer.from(JSON.stringify([key.occurredAt, key.seq]), 'utf8').toString('base64url');
}

export function decodeAuditCursor(cursor: string): CursorKey {
  try {
    if (cursor.length > 200) {
      throw new Error('too long');
    }
    const parsed: unknown = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
    if (
      Array.isArray(parsed) &&
      parsed.length === 2 &&
      typeof parsed[0] === 'string' &&
      /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/.test(parsed[0]) &&
      Number.isSafeInteger(parsed[1]) &&
      (parsed[1] as number) >= 0
    ) {
      return { occurredAt: parsed[0], seq: parsed[1] as number };
    }
  } catch {
    // fall through
  }
  throw new AuditQueryError('invalid cursor');
}

export function clampAuditLimit(limit: number | undefined): number {
  if (limit === undefined || !Number.isFinite(limit)) {
    return AUDIT_PAGE_DEFAULT;
  }
  return Math.min(AUDIT_PAGE_MAX, Math.max(1, Math.trunc(limit)));
}

export abstract class AuditRepository {
  /** Builds the record from an input (sanitized) and appends it. */
  append(input: AuditEventInput, ctx: AuditRecordContext = {}): Promise<AuditEvent> {
    return this.appendRecord(buildAuditRecord(input, ctx));
  }

  /**
   * Appends a prepared record at the chain's end in one transaction (seq, prev_hash, hash, head).
   * Idempotent by record id: appending an id that exists returns the stored event, adds nothing.
   */
  abstract appendRecord(record: AuditRecord): Promise<AuditEvent>;

  /** Appends several records in order in one transaction (ids already stored are skipped). */
  abstract appendMany(records: readonly AuditRecord[]): Promise<AuditEvent[]>;

  abstract findById(id: string): Promise<AuditEvent | null>;

  /** Newest first, keyset-paginated on (occurred_at, seq); limit capped at AUDIT_PAGE_MAX. */
  abstract findPage(
    filter: AuditFilter,
    cursor?: string | null,
    limit?: number,
  ): Promise<AuditPage>;

  abstract stats(filter: AuditFilter, bucket: AuditStatsBucket): Promise<AuditStatsRow[]>;

  /** Every matching event, newest first, fetched page by page (for exports). */
  async *stream(filter: AuditFilter, pageSize = AUDIT_PAGE_MAX): AsyncGenerator<AuditEvent> {
    let cursor: string | null = null;
    do {
      const page: AuditPage = await this.findPage(filter, cursor, pageSize);
      yield* page.items;
      cursor = page.nextCursor;
    } while (cursor !== null);
  }

  abstract head(): Promise<ChainHead | null>;

  abstract verifyChain(options?: AuditVerifyOptions): Promise<ChainVerifyResult>;

  /**
   * Deletes the oldest events, up to (not including) the first one at or after `before`, and
   * records a MAC'd anchor so the remaining chain still verifies. Deletes a prefix of the chain
   * only: a row older than `before` that follows a newer one (clock skew) waits for the next purge.
   */
  abstract purgeBefore(before: Date): Promise<AuditPurgeResult>;

  /** Appends the current head to an external checkpoint file (seq, hash, MAC). */
  abstract writeCheckpoint(file: string): Promise<ChainHead | null>;
}
