import {
  Inject,
  Injectable,
  Logger,
  type OnApplicationBootstrap,
  type OnApplicationShutdown,
} from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import { Redis } from 'ioredis';
import { Counter, Gauge } from 'prom-client';
import { DataSource } from 'typeorm';
import {
  AuditRepository,
  DuoAdminClient,
  DuoReconcileJob,
  InProcessReconcileLock,
  isDuoAdminApiConfigured,
  RECONCILE_ACTOR,
  RECONCILE_EVENT_KINDS,
  ReconcileScheduler,
  ReconcileStore,
  RedisReconcileLock,
  type DuoAdminErrorCode,
  type ReconcileEnvSettings,
  type ReconcileLock,
  type ReconcileStatusSource,
} from '@duo-nest/audit';
import { DuoSessionControl } from '@duo-nest/core';
import { MetricsService } from '../metrics/metrics.service.js';

/** DI token of the DUO_RECONCILE_* settings, read from the raw environment by AppModule.forRoot. */
export const RECONCILE_SETTINGS = Symbol('RECONCILE_SETTINGS');

/** How long a crashed holder keeps the lock; renewed after every page. */
const LOCK_TTL_MS = 120_000;

/**
 * The reference app's reconcile job (issue 16): on with the Admin API credentials and
 * DUO_RECONCILE_INTERVAL_MS > 0, off otherwise (and /health says so). One instance at a time
 * through a Redis lock when REDIS_URL is set; fraud reports end the user's sessions on every
 * instance through DuoSessionControl. Its figures go to /metrics, its status to the audit page.
 */
@Injectable()
export class ReconcileRunner
  implements ReconcileStatusSource, OnApplicationBootstrap, OnApplicationShutdown
{
  private readonly logger = new Logger('Reconcile');
  readonly scheduler: ReconcileScheduler;
  private readonly redis?: Redis;

  constructor(
    config: ConfigService,
    dataSource: DataSource,
    repository: AuditRepository,
    sessions: DuoSessionControl,
    metrics: MetricsService,
    @Inject(RECONCILE_SETTINGS) settings: ReconcileEnvSettings,
  ) {
    const env = {
      DUO_ADMIN_INTEGRATION_KEY: config.get<string>('DUO_ADMIN_INTEGRATION_KEY'),
      DUO_ADMIN_SECRET_KEY: config.get<string>('DUO_ADMIN_SECRET_KEY'),
      DUO_ADMIN_API_HOST: config.get<string>('DUO_ADMIN_API_HOST'),
    };
    let job: DuoReconcileJob | null = null;
    if (isDuoAdminApiConfigured(env) && settings.intervalMs > 0) {
      const onAdminCall = (result: 'success' | DuoAdminErrorCode) => {
        this.adminCalls?.inc({ result });
      };
      const client = new DuoAdminClient({
        integrationKey: env.DUO_ADMIN_INTEGRATION_KEY as string,
        secretKey: env.DUO_ADMIN_SECRET_KEY as string,
        apiHost: env.DUO_ADMIN_API_HOST as string,
        // The environment validation allows http:// only outside production (a local simulator).
        allowInsecureHttp: /^http:\/\//i.test(env.DUO_ADMIN_API_HOST as string),
        onAdminCall,
      });
      const redisUrl = config.get<string>('REDIS_URL');
      let lock: ReconcileLock;
      if (redisUrl) {
        this.redis = new Redis(redisUrl, {
          maxRetriesPerRequest: 1,
          commandTimeout: 2_000,
          lazyConnect: true,
        });
        this.redis.on('error', () => undefined);
        lock = new RedisReconcileLock(
          this.redis,
          `${config.get<string>('REDIS_KEY_PREFIX') ?? ''}reconcile:lock`,
          LOCK_TTL_MS,
        );
      } else {
        lock = new InProcessReconcileLock();
      }
      job = new DuoReconcileJob(
        {
          ...settings.options,
          clientId: config.get<string>('DUO_CLIENT_ID') as string,
          instanceId: config.get<string>('INSTANCE_ID'),
        },
        {
          client,
          repository,
          store: new ReconcileStore(dataSource),
          lock,
          revokeUser: (username) =>
            sessions.markCompromised(username, { username: RECONCILE_ACTOR }),
        },
      );
    }
    this.scheduler = new ReconcileScheduler(job, settings.intervalMs, (r) => {
      if (r.status === 'error') {
        // The code only: never a message that could carry a host or a key.
        this.logger.warn(`reconcile run failed (${r.error ?? 'other'}); the cursor did not move`);
      }
    });
    this.registerMetrics(metrics);
  }

  private adminCalls?: Counter;

  get enabled(): boolean {
    return this.scheduler.enabled;
  }

  get intervalMs(): number {
    return this.scheduler.intervalMs;
  }

  get job(): DuoReconcileJob | null {
    return this.scheduler.job;
  }

  onApplicationBootstrap(): void {
    this.scheduler.start();
  }

  async onApplicationShutdown(): Promise<void> {
    await this.scheduler.stop();
    this.redis?.disconnect();
  }

  /** /metrics: runs, entries read, events by kind, lag, errors by code, Admin API calls. */
  private registerMetrics(metrics: MetricsService): void {
    const registers = [metrics.registry];
    const job = this.scheduler.job;
    new Gauge({
      name: 'duo_reconcile_enabled',
      help: "1 when the reconcile job against Duo's authentication log runs",
      registers,
      collect() {
        this.set(job ? 1 : 0);
      },
    });
    if (!job) {
      return;
    }
    const m = job.metrics;
    new Counter({
      name: 'duo_reconcile_runs_total',
      help: 'Reconcile runs of this instance by status (ok, partial, idle, locked, error)',
      labelNames: ['status'],
      registers,
      collect() {
        this.reset();
        for (const [status, n] of Object.entries(m.runs)) {
          this.inc({ status }, n);
        }
      },
    });
    new Counter({
      name: 'duo_reconcile_entries_read_total',
      help: "Entries of Duo's authentication log read",
      registers,
      collect() {
        this.reset();
        this.inc(m.entriesRead);
      },
    });
    new Counter({
      name: 'duo_reconcile_events_total',
      help: 'Audit events written by the reconcile job, by kind',
      labelNames: ['kind'],
      registers,
      collect() {
        this.reset();
        for (const kind of RECONCILE_EVENT_KINDS) {
          this.inc({ kind }, m.events[kind]);
        }
      },
    });
    new Counter({
      name: 'duo_reconcile_errors_total',
      help: 'Failed reconcile runs, by code (admin_* of the Admin API, lock_lost, revoke_failed, database, other)',
      labelNames: ['code'],
      registers,
      collect() {
        this.reset();
        for (const [code, n] of Object.entries(m.errors)) {
          this.inc({ code }, n);
        }
      },
    });
    new Counter({
      name: 'duo_reconcile_sessions_revoked_total',
      help: 'Sessions ended after a fraud report',
      registers,
      collect() {
        this.reset();
        this.inc(m.revoked);
      },
    });
    new Gauge({
      name: 'duo_reconcile_lag_seconds',
      help: "How far behind now the fully reconciled part of Duo's log ends (-1 before a cursor)",
      registers,
      collect() {
        const lag = m.lagMs();
        this.set(lag === null ? -1 : lag / 1000);
      },
    });
    this.adminCalls = new Counter({
      name: 'duo_admin_api_calls_total',
      help: 'Admin API page calls by result (success or an admin_* code)',
      labelNames: ['result'],
      registers,
    });
  }
}
