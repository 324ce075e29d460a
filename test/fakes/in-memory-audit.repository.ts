/**
 * An in-memory AuditRepository for unit tests of code that records audit events. It keeps the
 * same contract as the TypeORM one: ids deduplicate, seq is contiguous, the chain verifies.
 * `failWith` makes every write fail (an outage); `delayMs` slows writes down.
 */
import {
  GENESIS_HASH,
  headMac,
  linkHash,
  normalizeChainKey,
  verifyChain,
  type ChainHead,
  type ChainVerifyResult,
} from '../../packages/audit/src/audit-chain.js';
import {
  rowToEvent,
  toAuditTimestamp,
  type AuditEvent,
  type AuditRecord,
  type AuditRow,
} from '../../packages/audit/src/audit-record.js';
import {
  AuditRepository,
  clampAuditLimit,
  decodeAuditCursor,
  encodeAuditCursor,
  type AuditFilter,
  type AuditPage,
  type AuditPurgeResult,
  type AuditStatsBucket,
  type AuditStatsRow,
} from '../../packages/audit/src/audit.repository.js';

export class InMemoryAuditRepository extends AuditRepository {
  readonly rows: AuditRow[] = [];
  private readonly key: Buffer;
  private headRow: ChainHead;
  failWith: Error | null = null;
  delayMs = 0;
  appendCalls = 0;

  constructor(chainKey = 'in-memory-audit-chain-key') {
    super();
    this.key = normalizeChainKey(chainKey);
    this.headRow = {
      seq: 0,
      hash: GENESIS_HASH,
      updatedAt: toAuditTimestamp(new Date()),
      mac: headMac(this.key, 0, GENESIS_HASH),
    };
  }

  private async gate(): Promise<void> {
    this.appendCalls += 1;
    const failure = this.failWith;
    if (this.delayMs > 0) {
      await new Promise((r) => setTimeout(r, this.delayMs));
    }
    if (failure) {
      throw failure;
    }
  }

  override async appendRecord(record: AuditRecord): Promise<AuditEvent> {
    return (await this.appendMany([record]))[0];
  }

  override async appendMany(records: readonly AuditRecord[]): Promise<AuditEvent[]> {
    await this.gate();
    return records.map((record) => {
      const existing = this.rows.find((r) => r.id === record.id);
      if (existing) {
        return rowToEvent(existing);
      }
      const base = { ...record, seq: this.headRow.seq + 1 };
      const row: AuditRow = {
        ...base,
        prev_hash: this.headRow.hash,
        hash: linkHash(this.key, this.headRow.hash, base),
      };
      this.rows.push(row);
      this.headRow = {
        seq: row.seq,
        hash: row.hash,
        updatedAt: toAuditTimestamp(new Date()),
        mac: headMac(this.key, row.seq, row.hash),
      };
      return rowToEvent(row);
    });
  }

  override findById(id: string): Promise<AuditEvent | null> {
    const row = this.rows.find((r) => r.id === id);
    return Promise.resolve(row ? rowToEvent(row) : null);
  }

  private matching(filter: AuditFilter): AuditRow[] {
    const from = filter.from !== undefined ? toAuditTimestamp(filter.from) : undefined;
    const to = filter.to !== undefined ? toAuditTimestamp(filter.to) : undefined;
    return this.rows
      .filter(
        (r) =>
          (!filter.username || r.username === filter.username) &&
          (!filter.type || r.type === filter.type) &&
          (!filter.outcome || r.outcome === filter.outcome) &&
          (!filter.factor || r.factor === filter.factor) &&
          (!filter.reason || r.reason === filter.reason) &&
          (!filter.txid || r.txid === filter.txid) &&
          (!filter.ip || r.client_ip === filter.ip || r.access_device_ip === filter.ip) &&
          (from === undefined || r.occurred_at >= from) &&
          (to === undefined || r.occurred_at < to),
      )
      .sort((a, b) =>
        a.occurred_at === b.occurred_at ? b.seq - a.seq : a.occurred_at < b.occurred_at ? 1 : -1,
      );
  }

  override findPage(
    filter: AuditFilter,
    cursor?: string | null,
    limit?: number,
  ): Promise<AuditPage> {
    const size = clampAuditLimit(limit);
    let rows = this.matching(filter);
    if (cursor) {
      const key = decodeAuditCursor(cursor);
      rows = rows.filter(
        (r) =>
          r.occurred_at < key.occurredAt || (r.occurred_at === key.occurredAt && r.seq < key.seq),
      );
    }
    const items = rows.slice(0, size).map(rowToEvent);
    const last = items.at(-1);
    return Promise.resolve({
      items,
      nextCursor:
        rows.length > size && last
          ? encodeAuditCursor({ occurredAt: last.occurredAt, seq: last.seq })
          : null,
    });
  }

  override stats(filter: AuditFilter, bucket: AuditStatsBucket): Promise<AuditStatsRow[]> {
    const out = new Map<string, AuditStatsRow>();
    for (const r of [...this.matching(filter)].reverse()) {
      const start =
        bucket === 'hour'
          ? `${r.occurred_at.slice(0, 13)}:00:00.000Z`
          : `${r.occurred_at.slice(0, 10)}T00:00:00.000Z`;
      const row = out.get(start) ?? { bucket: start, total: 0, byOutcome: {}, byFactor: {} };
      out.set(start, row);
      row.total += 1;
      row.byOutcome[r.outcome] = (row.byOutcome[r.outcome] ?? 0) + 1;
      const factor = r.factor ?? 'none';
      row.byFactor[factor] = (row.byFactor[factor] ?? 0) + 1;
    }
    return Promise.resolve([...out.values()].sort((a, b) => (a.bucket < b.bucket ? -1 : 1)));
  }

  override head(): Promise<ChainHead | null> {
    return Promise.resolve(this.headRow);
  }

  override verifyChain(): Promise<ChainVerifyResult> {
    const rows = [...this.rows].sort((a, b) => a.seq - b.seq);
    return verifyChain(this.key, {
      anchor: null,
      head: this.headRow,
      rows,
    });
  }

  override purgeBefore(_before: Date): Promise<AuditPurgeResult> {
    return Promise.reject(new Error('InMemoryAuditRepository: purge is not implemented'));
  }

  override writeCheckpoint(): Promise<ChainHead | null> {
    return Promise.resolve(this.headRow);
  }
}
