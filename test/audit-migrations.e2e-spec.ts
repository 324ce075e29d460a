import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { DataSource } from 'typeorm';
import {
  ENGINES,
  createTestDatabase,
  openDataSource,
  type TestDatabase,
} from './support/audit-db.js';

const INDEXES = [
  'IDX_audit_events_username_occurred_at',
  'IDX_audit_events_type_occurred_at',
  'IDX_audit_events_occurred_at_seq',
  'IDX_audit_events_txid',
  'IDX_audit_events_outcome_occurred_at',
  'UQ_audit_events_seq',
];

describe.each(ENGINES)('audit migrations on %s', (engine) => {
  let db: TestDatabase;
  let ds: DataSource;

  beforeAll(async () => {
    db = await createTestDatabase(engine);
    ds = await openDataSource(db.url, false);
  });

  afterAll(async () => {
    await ds?.destroy();
    await db?.drop();
  });

  it('should report a pending migration when the database is new', async () => {
    expect(await ds.showMigrations()).toBe(true);
  });

  it('should create the audit tables and named indexes when migrations run', async () => {
    const applied = await ds.runMigrations();
    expect(applied.map((m) => m.name)).toEqual([
      expect.stringMatching(/^CreateAuditEvents\d{13}$/),
      expect.stringMatching(/^CreateAuditReconcile\d{13}$/),
    ]);
    const qr = ds.createQueryRunner();
    try {
      const events = await qr.getTable('audit_events');
      expect(events?.indices.map((i) => i.name).sort()).toEqual([...INDEXES].sort());
      expect(events?.indices.find((i) => i.name === 'UQ_audit_events_seq')?.isUnique).toBe(true);
      expect(await qr.hasTable('audit_chain_head')).toBe(true);
      expect(await qr.hasTable('audit_chain_anchor')).toBe(true);
      // The reconcile job's cursor and Duo transactions (a later migration).
      expect(await qr.hasTable('audit_reconcile_state')).toBe(true);
      expect(await qr.hasTable('audit_reconcile_duo_tx')).toBe(true);
    } finally {
      await qr.release();
    }
  });

  it('should have no pending migration and no entity drift when the migrations have run', async () => {
    expect(await ds.showMigrations()).toBe(false);
    // What `migration:generate` would write: nothing, so entities and migration agree.
    const sql = await ds.driver.createSchemaBuilder().log();
    expect(sql.upQueries.map((q) => q.query)).toEqual([]);
  });

  it('should drop every audit table when the migration is reverted, and re-create them after', async () => {
    await ds.undoLastMigration();
    const qr = ds.createQueryRunner();
    try {
      // The last migration (reconcile) goes first and leaves the trail's tables in place.
      expect(await qr.hasTable('audit_reconcile_state')).toBe(false);
      expect(await qr.hasTable('audit_reconcile_duo_tx')).toBe(false);
      expect(await qr.hasTable('audit_events')).toBe(true);
      await ds.undoLastMigration();
      expect(await qr.hasTable('audit_events')).toBe(false);
      expect(await qr.hasTable('audit_chain_head')).toBe(false);
      expect(await qr.hasTable('audit_chain_anchor')).toBe(false);
    } finally {
      await qr.release();
    }
    expect(await ds.showMigrations()).toBe(true);
    await ds.runMigrations();
    expect(await ds.showMigrations()).toBe(false);
  });
});
