import { Table, TableIndex, type MigrationInterface, type QueryRunner } from 'typeorm';

/**
 * The audit trail: audit_events, audit_chain_head, audit_chain_anchor.
 * Written with TypeORM's schema API only, so the same migration runs on SQLite and PostgreSQL.
 * Column bounds and index names match src/audit/audit-event.entity.ts.
 */
export class CreateAuditEvents1795912253399 implements MigrationInterface {
  name = 'CreateAuditEvents1795912253399';

  public async up(queryRunner: QueryRunner): Promise<void> {
    const text = (name: string, length: number, nullable = true) => ({
      name,
      type: 'varchar',
      length: String(length),
      isNullable: nullable,
    });
    await queryRunner.createTable(
      new Table({
        name: 'audit_events',
        columns: [
          {
            ...text('id', 36, false),
            isPrimary: true,
            primaryKeyConstraintName: 'PK_audit_events',
          },
          { name: 'seq', type: 'integer', isNullable: false },
          text('occurred_at', 24, false),
          text('type', 40, false),
          text('outcome', 10, false),
          text('username', 255),
          text('reason', 64),
          text('txid', 128),
          text('factor', 64),
          text('duo_result', 32),
          text('duo_reason', 128),
          text('duo_status', 128),
          text('auth_device_ip', 64),
          text('auth_device_name', 255),
          text('auth_device_location', 255),
          text('access_device_ip', 64),
          text('access_device_location', 255),
          text('application', 255),
          { name: 'groups', type: 'text', isNullable: true },
          text('client_ip', 64),
          text('user_agent', 512),
          text('correlation_id', 128),
          text('instance_id', 128),
          { name: 'auth_context', type: 'text', isNullable: true },
          { name: 'detail', type: 'text', isNullable: true },
          text('prev_hash', 64, false),
          text('hash', 64, false),
        ],
      }),
    );
    const indices: [string, string[], boolean][] = [
      ['UQ_audit_events_seq', ['seq'], true],
      ['IDX_audit_events_username_occurred_at', ['username', 'occurred_at', 'seq'], false],
      ['IDX_audit_events_type_occurred_at', ['type', 'occurred_at', 'seq'], false],
      ['IDX_audit_events_occurred_at_seq', ['occurred_at', 'seq'], false],
      ['IDX_audit_events_txid', ['txid'], false],
      ['IDX_audit_events_outcome_occurred_at', ['outcome', 'occurred_at', 'seq'], false],
    ];
    for (const [name, columnNames, isUnique] of indices) {
      await queryRunner.createIndex(
        'audit_events',
        new TableIndex({ name, columnNames, isUnique }),
      );
    }

    await queryRunner.createTable(
      new Table({
        name: 'audit_chain_head',
        columns: [
          {
            name: 'id',
            type: 'integer',
            isPrimary: true,
            primaryKeyConstraintName: 'PK_audit_chain_head',
          },
          { name: 'seq', type: 'integer', isNullable: false },
          text('hash', 64, false),
          text('updated_at', 24, false),
          text('mac', 64, false),
        ],
      }),
    );
    await queryRunner.createTable(
      new Table({
        name: 'audit_chain_anchor',
        columns: [
          {
            name: 'seq',
            type: 'integer',
            isPrimary: true,
            primaryKeyConstraintName: 'PK_audit_chain_anchor',
          },
          text('hash', 64, false),
          text('created_at', 24, false),
          text('mac', 64, false),
        ],
      }),
    );
  }

  public async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.dropTable('audit_chain_anchor', true);
    await queryRunner.dropTable('audit_chain_head', true);
    await queryRunner.dropTable('audit_events', true, true, true);
  }
}
