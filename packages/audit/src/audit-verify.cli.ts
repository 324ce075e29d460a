#!/usr/bin/env node
/**
 * `duo-audit-verify` (the package's bin; `npm run audit:verify` in the reference app): checks the
 * audit hash chain.
 * Env: DATABASE_URL (unset → ./data/duo-nest.sqlite), AUDIT_CHAIN_KEY, else the key in the file
 * AUDIT_CHAIN_KEY_FILE, else (with DATABASE_URL unset) ./data/audit-chain.key, the file the demo
 * makes: with no env at all it checks the demo's trail. AUDIT_CHECKPOINT_FILE (optional external
 * checkpoint file). It says which database and which key source it used.
 * Exit 0 when the chain verifies, 1 with the first broken sequence number otherwise, 2 on a usage
 * or connection error. Never prints the key or the database URL.
 */
import { readFileSync, realpathSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { DataSource } from 'typeorm';
import {
  auditDatabaseKind,
  auditDataSourceOptions,
  DEFAULT_AUDIT_SQLITE_PATH,
} from './audit-data-source.js';
import { AuditEventEntity } from './audit-event.entity.js';
import { TypeOrmAuditRepository } from './typeorm-audit.repository.js';

/** The key file the demo makes (`npm run demo`), read when neither env names a key. */
export const DEMO_KEY_FILE = './data/audit-chain.key';

export interface VerifyOutput {
  log(line: string): void;
  error(line: string): void;
}

export async function runAuditVerify(
  env: NodeJS.ProcessEnv = process.env,
  out: VerifyOutput = console,
): Promise<number> {
  const databaseUrl = env.DATABASE_URL?.trim() || undefined;
  let key = env.AUDIT_CHAIN_KEY;
  let keySource = 'AUDIT_CHAIN_KEY';
  if (!key) {
    const file = env.AUDIT_CHAIN_KEY_FILE || (databaseUrl ? undefined : DEMO_KEY_FILE);
    if (!file) {
      out.error('audit:verify: AUDIT_CHAIN_KEY (or AUDIT_CHAIN_KEY_FILE) is not set');
      return 2;
    }
    try {
      key = readFileSync(file, 'utf8').trim();
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? 'error';
      out.error(
        `audit:verify: AUDIT_CHAIN_KEY is not set and the key file ${file} cannot be read (${code})`,
      );
      return 2;
    }
    if (!key) {
      out.error(`audit:verify: the key file ${file} is empty`);
      return 2;
    }
    keySource = `the key file ${file}`;
  }
  const kind = auditDatabaseKind(databaseUrl);
  out.log(
    `audit:verify: database ${
      databaseUrl === undefined
        ? `${DEFAULT_AUDIT_SQLITE_PATH} (the default)`
        : `from DATABASE_URL (${kind})`
    }, key from ${keySource}`,
  );
  let dataSource: DataSource | undefined;
  try {
    dataSource = new DataSource(auditDataSourceOptions({ databaseUrl, migrationsRun: false }));
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
