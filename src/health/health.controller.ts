import {
  Controller,
  Get,
  Inject,
  Optional,
  Res,
  ServiceUnavailableException,
} from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import {
  HealthCheckService,
  HealthIndicatorService,
  type HealthCheckResult,
  type HealthIndicatorFunction,
} from '@nestjs/terminus';
import type { Response } from 'express';
import type { Cluster, Redis } from 'ioredis';
import { DataSource } from 'typeorm';
import { SkipMfa } from '@duo-nest/core';
import {
  DuoCircuitBreaker,
  DuoHealthService,
  InjectDuoOptions,
  type NormalizedDuoModuleOptions,
} from '@duo-nest/core/internal';
import { AUDIT_RECONCILE, type ReconcileStatusSource } from '@duo-nest/audit';
import { GracefulShutdownService } from '../lifecycle/graceful-shutdown.service.js';

/**
 * Driver messages can name hosts, databases or users: readiness shows only a short code
 * (ECONNREFUSED, a SQLSTATE such as 3D000) or a generic message.
 */
function rethrowSanitized(err: unknown): never {
  const code = (err as { code?: unknown } | null)?.code;
  throw new Error(
    typeof code === 'string' && /^[A-Z0-9_]{2,32}$/.test(code) ? `failed (${code})` : 'failed',
  );
}

/**
 * Health for load balancers and orchestrators (all public, never cached, no secrets):
 * - GET /health/live: the process answers (no dependency is checked);
 * - GET /health/ready: the database and Redis (when configured) answer a ping, and the instance is
 *   not shutting down; 503 otherwise. Duo is reported beside them as `state` up, down or unknown
 *   with the age of the answer (`ageMs`), read from DuoHealthService, whose background probe keeps
 *   it fresh (this path never calls Duo). Duo fails readiness only with HEALTH_DUO_REQUIRED=true
 *   (then `unknown` fails too); otherwise Duo down or unknown shows as status "degraded" with 200;
 * - GET /health: the same as /health/ready.
 */
@Controller('health')
export class HealthController {
  private readonly timeoutMs: number;
  private readonly duoRequired: boolean;

  constructor(
    private readonly health: HealthCheckService,
    private readonly indicator: HealthIndicatorService,
    private readonly dataSource: DataSource,
    private readonly duoHealth: DuoHealthService,
    private readonly breaker: DuoCircuitBreaker,
    private readonly shutdown: GracefulShutdownService,
    @InjectDuoOptions() private readonly duo: NormalizedDuoModuleOptions,
    @Inject(ConfigService) config: ConfigService,
    @Optional() @Inject(AUDIT_RECONCILE) private readonly reconcile?: ReconcileStatusSource,
  ) {
    this.timeoutMs = config.get<number>('HEALTH_TIMEOUT_MS') ?? 1_000;
    this.duoRequired = config.get<boolean>('HEALTH_DUO_REQUIRED') ?? false;
  }

  @SkipMfa()
  @Get('live')
  live(@Res({ passthrough: true }) res: Response): Promise<HealthCheckResult> {
    res.setHeader('Cache-Control', 'no-store');
    return this.health.check([
      () =>
        this.indicator
          .check('process')
          .up({ uptimeSeconds: Math.round(process.uptime()), pid: process.pid }),
    ]);
  }

  @SkipMfa()
  @Get('ready')
  ready(@Res({ passthrough: true }) res: Response): Promise<HealthCheckResult> {
    return this.readiness(res);
  }

  @SkipMfa()
  @Get()
  combined(@Res({ passthrough: true }) res: Response): Promise<HealthCheckResult> {
    return this.readiness(res);
  }

  private async readiness(res: Response): Promise<HealthCheckResult> {
    res.setHeader('Cache-Control', 'no-store');
    const checks: HealthIndicatorFunction[] = [
      () =>
        this.shutdown.draining
          ? this.indicator.check('lifecycle').down({ state: 'draining' })
          : this.indicator.check('lifecycle').up({ state: 'serving' }),
      () =>
        this.indicator
          .check('database')
          .attempt(async () => {
            await this.dataSource.query('SELECT 1').catch(rethrowSanitized);
            return { type: this.dataSource.options.type };
          })
          .withTimeout(this.timeoutMs),
    ];
    // The app's own ioredis client (app.module.ts), which core sees as a DuoRedisConnection.
    const redis = this.duo.redis as Redis | Cluster | undefined;
    if (redis) {
      checks.push(() =>
        this.indicator
          .check('redis')
          .attempt(async () => {
            if (redis.status === 'end' || redis.status === 'close') {
              throw new Error(`connection ${redis.status}`);
            }
            await redis.ping().catch(rethrowSanitized);
          })
          .withTimeout(this.timeoutMs),
      );
    }
    checks.push(() => this.duoIndicator());
    // Informational: the reconcile job against Duo's log never fails readiness.
    checks.push(() => this.indicator.check('reconcile').up(this.reconcileState()));
    try {
      return await this.health.check(checks);
    } catch (err) {
      if (err instanceof ServiceUnavailableException) {
        res.status(503);
        return err.getResponse() as HealthCheckResult;
      }
      throw err;
    }
  }

  private reconcileState(): Record<string, unknown> {
    const job = this.reconcile?.enabled ? this.reconcile.job : null;
    if (!job) {
      return { enabled: false };
    }
    const last = job.metrics.lastRun;
    const lag = job.metrics.lagMs();
    return {
      enabled: true,
      intervalMs: this.reconcile?.intervalMs,
      lastRun: last ? { at: last.startedAt, status: last.status, error: last.error } : null,
      lagSeconds: lag === null ? null : Math.round(lag / 1000),
    };
  }

  /**
   * Duo as DuoHealthService knows it (never a call): `state` up, down or unknown, `ageMs` of the
   * answer, whose it was (`source`: this instance, or the shared probe over Redis). Down or unknown
   * is "down" (503) with HEALTH_DUO_REQUIRED, else "degraded" (200).
   */
  private duoIndicator() {
    const session = this.indicator.check('duo');
    const known = this.duoHealth.report();
    const data = {
      state: known.status,
      required: this.duoRequired,
      circuit: this.breaker.state,
      probe: this.duoHealth.probeRunning,
      ...(known.ageMs === undefined
        ? {}
        : {
            ageMs: known.ageMs,
            checkedAt: new Date(known.checkedAt ?? 0).toISOString(),
            source: known.source,
          }),
      ...(known.code ? { error: known.code } : {}),
    };
    if (known.status === 'up') {
      return session.up(data);
    }
    return this.duoRequired ? session.down(data) : session.degraded(data);
  }
}
