// Upkeep of the audit chain on TypeORM: the head row (created once, MAC'd), verification from the
// latest anchor, purging a prefix behind an anchor, and checkpoints.
import type { DataSource } from 'typeorm';
import {
  GENESIS_HASH,
  anchorMac,
  appendCheckpoint,
  headMac,
  readCheckpoints,
  safeEqualHex,
  verifyChain,
  type ChainAnchor,
  type ChainHead,
  type ChainVerifyResult,
} from './audit-chain.js';
import { toAuditTimestamp, type AuditRow } from './audit-record.js';
import type { AuditPurgeResult, AuditVerifyOptions } from './audit.repository.js';
import {
  Params,
  queryRows,
  SELECT_COLUMNS,
  sqliteHandle,
  type HeadRowRaw,
} from './typeorm-audit-sql.js';

const VERIFY_BATCH = 1000;

/** The chain upkeep of TypeOrmAuditRepository. */
export class TypeOrmAuditChain {
  private headReady: Promise<void> | null = null;

  constructor(
    private readonly dataSource: DataSource,
    private readonly key: Buffer,
    private readonly postgres: boolean,
  ) {}

  /** Creates the head row (seq 0, genesis hash, MAC'd) once; a no-op when it exists. */
  ensureHead(): Promise<void> {
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

  /** The chain head row, or null before the first append. */
  async head(): Promise<ChainHead | null> {
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

  /** Verifies the chain from the latest anchor (and against the checkpoint file, if any). */
  async verifyChain(options: AuditVerifyOptions = {}): Promise<ChainVerifyResult> {
    const anchor = await this.latestAnchor();
    const checkpoints = options.checkpointFile ? await readCheckpoints(options.checkpointFile) : [];
    let head: ChainHead | null = null;
    // Rows are read in batches while appends may go on: when the rows run out, the head is read,
    // and if it points further (a concurrent append), reading continues. An attacker's head that
    // points past the rows is then reported as a truncated tail.
    const rows = async function* (this: TypeOrmAuditChain): AsyncGenerator<AuditRow> {
      let last = anchor?.seq ?? 0;
      let headReads = 0;
      for (;;) {
        const p = new Params(this.postgres);
        const batch = await queryRows(
          this.dataSource,
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

  /** Deletes the events before a time and anchors the chain at the last one deleted. */
  async purgeBefore(before: Date): Promise<AuditPurgeResult> {
    const cutoff = toAuditTimestamp(before);
    const now = toAuditTimestamp(new Date());
    await this.ensureHead();
    if (!this.postgres) {
      const db = sqliteHandle(this.dataSource);
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

  /** Appends the verified head to a checkpoint file. */
  async writeCheckpoint(file: string): Promise<ChainHead | null> {
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
