import { Table, TableIndex, type MigrationInterface, type QueryRunner } from 'typeorm';

/**
 * The reconcile job's tables (issue 16): its cursor in Duo's authentication log
 * (audit_reconcile_state), and the Duo transactions of our application it has read
 * (audit_reconcile_duo_tx), which the checks of our own trail look up. Times are 13-digit Unix ms
 * as fixed-width text, so they compare as text on SQLite and PostgreSQL alike. Written with
 * TypeORM's schema API only, like the first migration. A new migration: the shipped one never changes.
 */
export class CreateAuditReconcile1796500000000 implements MigrationInterface {
  name = 'CreateAuditReconcile1796500000000';

  public async up(queryRunner: QueryRunner): Promise<void> {
    const text = (name: string, length: number, nullable = true) => ({
      name,
      type: 'varchar',
      length: String(length),
      isNullable: nullable,
    });
    await queryRunner.createTable(
      new Table({
        name: 'audit_reconcile_state',
        columns: [
          {
            ...text('name', 64, false),
            isPrimary: true,
            primaryKeyConstraintName: 'PK_audit_reconcile_state',
          },
          text('window_min', 13, false),
          text('window_max', 13, false),
          text('phase', 8, false),
          text('next_offset_ts', 13),
          text('next_offset_txid', 128),
          text('updated_at', 24, false),
          { name: 'last_run', type: 'text', isNullable: true },
        ],
      }),
    );
    await queryRunner.createTable(
      new Table({
        name: 'audit_reconcile_duo_tx',
        columns: [
          {
            ...text('txid', 128, false),
            isPrimary: true,
            primaryKeyConstraintName: 'PK_audit_reconcile_duo_tx',
          },
          text('ts_ms', 13, false),
          text('username', 255),
          text('result', 32, false),
          text('reason', 128),
          text('factor', 64),
        ],
      }),
    );
    await queryRunner.createIndex(
      'audit_reconcile_duo_tx',
      new TableIndex({
        name: 'IDX_audit_reconcile_duo_tx_username_ts',
        columnNames: ['username', 'ts_ms'],
      }),
    );
    await queryRunner.createIndex(
      'audit_reconcile_duo_tx',
      new TableIndex({ name: 'IDX_audit_reconcile_duo_tx_ts', columnNames: ['ts_ms'] }),
    );
  }

  public async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.dropTable('audit_reconcile_duo_tx', true, true, true);
    await queryRunner.dropTable('audit_reconcile_state', true);
  }
}
