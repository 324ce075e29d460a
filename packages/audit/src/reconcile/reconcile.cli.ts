#!/usr/bin/env node
/**
 * `duo-audit-reconcile` (the package's bin; `npm run audit:reconcile -- --since <time>` in the
 * reference app): one reconcile run from `--since` up to now minus the grace window, on a cursor of
 * its own ('manual'), so the app's timer cursor is left alone. Event ids come from Duo's txids, so
 * a range the timer already reconciled writes nothing twice. The CLI has no session store: a fraud
 * report is recorded, and the app's timer (or an admin) ends the sessions.
 * Env: DATABASE_URL, AUDIT_CHAIN_KEY, DUO_CLIENT_ID, DUO_ADMIN_INTEGRATION_KEY,
 * DUO_ADMIN_SECRET_KEY, DUO_ADMIN_API_HOST, DUO_RECONCILE_GRACE_MS, DUO_RECONCILE_PAGE_SIZE.
 * `--since`: an ISO time, Unix ms, or a duration back from now (`90m`, `12h`, `7d`).
 * Exit 0 when the run finished, 1 when it failed (the code is printed), 2 on a usage error.
 * Never prints a key, a secret or the database URL.
 */
import { realpathSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { DataSource } from 'typeorm';
import { DuoAdminClient } from '../admin-api/admin-api.client.js';
import { isDuoAdminApiConfigured } from '../admin-api/admin-api-options.js';
import { auditDataSourceOptions } from '../audit-data-source.js';
import { AuditEventEntity } from '../audit-event.entity.js';
import { TypeOrmAuditRepository } from '../typeorm-audit.repository.js';
import { InProcessReconcileLock } from './reconcile-lock.js';
import { reconcileSettingsFromEnv } from './reconcile-options.js';
import { ReconcileStore } from './reconcile-store.js';
import { DuoReconcileJob } from './reconcile.job.js';

export interface ReconcileCliOutput {
  log(line: string): void;
  error(line: string): void;
}

/** Parses `--since`: ISO time, 13-digit ms, or `<n>m|h|d` back from now. */
export function parseSince(value: string | undefined, now = Date.now()): number | null {
  if (!value) {
    return null;
  }
  const rel = /^(\d{1,6})([mhd])$/.exec(value.trim());
  if (rel) {
    const unit = { m: 60_000, h: 3_600_000, d: 86_400_000 }[rel[2] as 'm' | 'h' | 'd'];
    return now - Number(rel[1]) * unit;
  }
  if (/^\d{13}$/.test(value.trim())) {
    return Number(value.trim());
  }
  const t = /^\d{4}-\d{2}-\d{2}/.test(value) ? Date.parse(value) : NaN;
  return Number.isFinite(t) && t < now ? t : null;
}

export async function runAuditReconcile(
  argv: string[] = process.argv.slice(2),
  env: NodeJS.ProcessEnv = process.env,
  out: ReconcileCliOutput = console,
): Promise<number> {
  const i = argv.indexOf('--since');
  const since = parseSince(i >= 0 ? argv[i + 1] : undefined);
  if (since === null) {
    out.error('audit:reconcile: --since <ISO time | Unix ms | 90m | 12h | 7d> is required');
    return 2;
  }
  if (!env.AUDIT_CHAIN_KEY || !env.DUO_CLIENT_ID || !isDuoAdminApiConfigured(env)) {
    out.error(
      'audit:reconcile: AUDIT_CHAIN_KEY, DUO_CLIENT_ID and DUO_ADMIN_INTEGRATION_KEY, DUO_ADMIN_SECRET_KEY, DUO_ADMIN_API_HOST must be set',
    );
    return 2;
  }
  let dataSource: DataSource | undefined;
  try {
    const settings = reconcileSettingsFromEnv(env);
    const client = new DuoAdminClient({
      integrationKey: env.DUO_ADMIN_INTEGRATION_KEY as string,
      secretKey: env.DUO_ADMIN_SECRET_KEY as string,
      apiHost: env.DUO_ADMIN_API_HOST as string,
      allowInsecureHttp:
        env.NODE_ENV !== 'production' && /^http:\/\//i.test(env.DUO_ADMIN_API_HOST as string),
    });
    dataSource = new DataSource(
      auditDataSourceOptions({ databaseUrl: env.DATABASE_URL, migrationsRun: true }),
    );
    await dataSource.initialize();
    const store = new ReconcileStore(dataSource);
    const job = new DuoReconcileJob(
      {
        ...settings.options,
        maxPagesPerRun: undefined,
        revokeOnFraud: false,
        clientId: env.DUO_CLIENT_ID,
        stateName: 'manual',
        instanceId: 'audit:reconcile',
      },
      {
        client,
        repository: new TypeOrmAuditRepository(dataSource.getRepository(AuditEventEntity), {
          chainKey: env.AUDIT_CHAIN_KEY,
        }),
        store,
        lock: new InProcessReconcileLock(),
      },
    );
    await store.deleteState('manual');
    const r = await job.runOnce({ since });
    out.log(
      `audit:reconcile ${r.status}${r.error ? ` (${r.error})` : ''}: ${r.pages} pages, ${r.entries} entries in ${r.durationMs} ms; new events ${Object.entries(
        r.events,
      )
        .map(([k, v]) => `${k}=${v}`)
        .join(' ')}`,
    );
    return r.status === 'error' ? 1 : 0;
  } catch (err) {
    const e = err as { name?: string; code?: string };
    out.error(`audit:reconcile: cannot run (${e.name ?? 'Error'}${e.code ? ` ${e.code}` : ''})`);
    return 2;
  } finally {
    await dataSource?.destroy().catch(() => undefined);
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(realpathSync(process.argv[1])).href) {
  runAuditReconcile().then(
    (code) => process.exit(code),
    () => process.exit(2),
  );
}
