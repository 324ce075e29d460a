/**
 * AuditRepository on TypeORM, for PostgreSQL and SQLite (better-sqlite3).
 *
 * Appends are serialized on the chain head so several app instances form one chain:
 * - PostgreSQL (postgres-audit.appender.ts): `SELECT ... FROM audit_chain_head WHERE id = 1 FOR
 *   UPDATE` inside the append transaction; the insert and the head update then go in one
 *   statement (a data-modifying CTE).
 * - SQLite (sqlite-audit.appender.ts): one synchronous `BEGIN IMMEDIATE` transaction on
 *   better-sqlite3's handle: nothing else in this process runs in between, and other processes
 *   wait on SQLite's write lock (timeout 5 s). SQLite is the single-instance default; many
 *   instances should use PostgreSQL.
 * Reads are in typeorm-audit.queries.ts, the head, verification, purge and checkpoints in
 * typeorm-audit-chain.ts. All TypeORM and driver types stay in these typeorm-audit files.
 */
import { Inject, Injectable } from '@nestjs/common';
import { InjectRepository } from '@nestjs/typeorm';
import type { Repository } from 'typeorm';
import { normalizeChainKey, type ChainHead, type ChainVerifyResult } from './audit-chain.js';
import { AuditEventEntity } from './audit-event.entity.js';
import { rowToEvent, type AuditEvent, type AuditRecord } from './audit-record.js';
import {
  AuditRepository,
  type AuditFilter,
  type AuditPage,
  type AuditPurgeResult,
  type AuditStatsBucket,
  type AuditStatsRow,
  type AuditVerifyOptions,
} from './audit.repository.js';
import { AUDIT_MODULE_OPTIONS, type AuditModuleOptions } from './audit.options.js';
import { PostgresAuditAppender } from './postgres-audit.appender.js';
import { SqliteAuditAppender } from './sqlite-audit.appender.js';
import { TypeOrmAuditChain } from './typeorm-audit-chain.js';
import { TypeOrmAuditQueries } from './typeorm-audit.queries.js';

@Injectable()
export class TypeOrmAuditRepository extends AuditRepository {
  private readonly postgres: boolean;
  private readonly pg: PostgresAuditAppender;
  private readonly sqlite: SqliteAuditAppender;
  private readonly queries: TypeOrmAuditQueries;
  private readonly chain: TypeOrmAuditChain;

  constructor(
    @InjectRepository(AuditEventEntity) events: Repository<AuditEventEntity>,
    @Inject(AUDIT_MODULE_OPTIONS) options: Pick<AuditModuleOptions, 'chainKey'>,
  ) {
    super();
    const dataSource = events.manager.connection;
    const key = normalizeChainKey(options.chainKey);
    const type = dataSource.options.type;
    if (type !== 'postgres' && type !== 'better-sqlite3') {
      throw new TypeError(`audit: unsupported database type ${type}`);
    }
    this.postgres = type === 'postgres';
    this.pg = new PostgresAuditAppender(dataSource, key);
    this.sqlite = new SqliteAuditAppender(dataSource, key);
    this.queries = new TypeOrmAuditQueries(dataSource, this.postgres);
    this.chain = new TypeOrmAuditChain(dataSource, key, this.postgres);
  }

  // Appends

  override async appendRecord(record: AuditRecord): Promise<AuditEvent> {
    if (!this.postgres) {
      const [event] = await this.appendMany([record]);
      return event;
    }
    await this.chain.ensureHead();
    return rowToEvent(await this.pg.enqueue(record));
  }

  override async appendMany(records: readonly AuditRecord[]): Promise<AuditEvent[]> {
    if (records.length === 0) {
      return [];
    }
    await this.chain.ensureHead();
    const rows = this.postgres ? await this.pg.appendMany(records) : this.sqlite.append(records);
    return rows.map(rowToEvent);
  }

  // Reads

  override findById(id: string): Promise<AuditEvent | null> {
    return this.queries.findById(id);
  }

  override findPage(
    filter: AuditFilter,
    cursor?: string | null,
    limit?: number,
  ): Promise<AuditPage> {
    return this.queries.findPage(filter, cursor, limit);
  }

  override stats(filter: AuditFilter, bucket: AuditStatsBucket): Promise<AuditStatsRow[]> {
    return this.queries.stats(filter, bucket);
  }

  // Chain

  override head(): Promise<ChainHead | null> {
    return this.chain.head();
  }

  override verifyChain(options: AuditVerifyOptions = {}): Promise<ChainVerifyResult> {
    return this.chain.verifyChain(options);
  }

  override purgeBefore(before: Date): Promise<AuditPurgeResult> {
    return this.chain.purgeBefore(before);
  }

  override writeCheckpoint(file: string): Promise<ChainHead | null> {
    return this.chain.writeCheckpoint(file);
  }
}
