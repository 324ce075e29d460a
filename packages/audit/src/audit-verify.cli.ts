#!/usr/bin/env node
/**
 * `duo-audit-verify` (the package's bin; `npm run audit:verify` in the reference app): checks the
 * audit hash chain.
 * Env: DATABASE_URL (unset → ./data/duo-nest.sqlite), AUDIT_CHAIN_KEY (required),
 * AUDIT_CHECKPOINT_FILE (optional external checkpoint file).
 * Exit 0 when the chain verifies, 1 with the first broken sequence number otherwise, 2 on a usage
 * or connection error. Never prints the key or the database URL.
 */
import { realpathSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { DataSource } from 'typeorm';
import { auditDataSourceOptions } from './audit-data-source.js';
import { AuditEventEntity } from './audit-event.entity.js';
import { TypeOrmAuditRepository } from './typeorm-audit.repository.js';

export interface VerifyOutput {
  log(line: string): void;
  error(line: string): void;
}

export async function runAuditVerify(
  env: NodeJS.ProcessEnv = process.env,
  out: VerifyOutput = console,
): Promise<number> {
  const key = env.AUDIT_CHAIN_KEY;
  if (!key) {
    out.error('audit:verify: AUDIT_CHAIN_KEY is not set');
    return 2;
  }
  let dataSource: DataSource | undefined;
  try {
    dataSource = new DataSource(
      auditDataSourceOptions({ databaseUrl: env.DATABASE_URL, migrationsRun: false }),
    );
    await dataSource.initialize();
    const repository = new TypeOrmAuditRepository(dataSource.getRepository(AuditEventEntity), {
      chainKey: key,
    });
    const result = await repository.verifyChain({
      checkpointFile: env.AUDIT_CHECKPOINT_FILE || undefined,
    });
    if (result.ok) {
      out.log(`audit chain OK: ${result.checked} events verified, last seq ${result.lastSeq}`);
      return 0;
    }
    out.log(
      `audit chain BROKEN at seq ${result.firstBrokenSeq}: ${result.problem} (${result.checked} events verified before it)`,
    );
    return 1;
  } catch (err) {
    // The message of a driver error may hold the URL: print only its class and code.
    const e = err as { name?: string; code?: string };
    out.error(
      `audit:verify: cannot check the chain (${e.name ?? 'Error'}${e.code ? ` ${e.code}` : ''})`,
    );
    return 2;
  } finally {
    await dataSource?.destroy().catch(() => undefined);
  }
}

// Run as a program (also through the `duo-audit-verify` bin link, hence the real path).
if (process.argv[1] && import.meta.url === pathToFileURL(realpathSync(process.argv[1])).href) {
  runAuditVerify().then(
    (code) => process.exit(code),
    () => process.exit(2),
  );
}
