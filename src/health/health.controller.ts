import {
  Controller,
  Get,
  Inject,
  Res,
  ServiceUnavailableException,
  type OnModuleDestroy,
  type OnModuleInit,
} from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import {
  HealthCheckService,
  HealthIndicatorService,
  type HealthCheckResult,
  type HealthIndicatorFunction,
} from '@nestjs/terminus';
import type { Response } from 'express';
import { DataSource } from 'typeorm';
import { SkipMfa } from '@duo-nest/core';
import {
  DuoCircuitBreaker,
  DuoHealthService,
  InjectDuoOptions,
  type NormalizedDuoModuleOptions,
} from '@duo-nest/core/internal';
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

/** How often Duo's health is refreshed in the background when it gates readiness. */
const MIN_DUO_REFRESH_MS = 5_000;

/**
 * Health for load balancers and orchestrators (all public, never cached, no secrets):
 * - GET /health/live: the process answers (no dependency is checked);
 * - GET /health/ready: the database and Redis (when configured) answer a ping, and the instance is
 *   not shutting down; 503 otherwise. Duo's last known health is reported beside them, read from
 *   the cache (this path never calls Duo); it fails readiness only with HEALTH_DUO_REQUIRED=true,
 *   otherwise a Duo outage shows as status "degraded" with 200;
 * - GET /health: the same as /health/ready.
 */
@Controller('health')
export class HealthController implements OnModuleInit, OnModuleDestroy {
  private readonly timeoutMs: number;
  private readonly duoRequired: boolean;
  private readonly duoRefreshMs: number;
  private refresher?: NodeJS.Timeout;

  constructor(
    private readonly health: HealthCheckService,
    private readonly indicator: HealthIndicatorService,
    private readonly dataSource: DataSource,
    private readonly duoHealth: DuoHealthService,
    private readonly breaker: DuoCircuitBreaker,
    private readonly shutdown: GracefulShutdownService,
    @InjectDuoOptions() private readonly duo: NormalizedDuoModuleOptions,
    @Inject(ConfigService) config: ConfigService,
  ) {
    this.timeoutMs = config.get<number>('HEALTH_TIMEOUT_MS') ?? 1_000;
    this.duoRequired = config.get<boolean>('HEALTH_DUO_REQUIRED') ?? false;
    this.duoRefreshMs = Math.max(
      MIN_DUO_REFRESH_MS,
      config.get<number>('DUO_HEALTH_CACHE_MS') ?? 0,
    );
  }

  onModuleInit(): void {
    // When Duo gates readiness, its state must not wait for a sign-on (an instance pulled from the
    // load balancer gets none): refresh it in the background, never on the health path.
    if (this.duoRequired) {
      const refresh = () => void this.duoHealth.check().catch(() => undefined);
      refresh();
      this.refresher = setInterval(refresh, this.duoRefreshMs);
      this.refresher.unref();
    }
  }

  onModuleDestroy(): void {
    clearInterval(this.refresher);
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
    const redis = this.duo.redis;
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

  /** Duo from the cache only: unknown until the first check, degraded (or down) when it failed. */
  private duoIndicator() {
    const session = this.indicator.check('duo');
    const last = this.duoHealth.lastKnown;
    const base = { required: this.duoRequired, circuit: this.breaker.state };
    if (!last) {
      return session.up({ known: false, ...base });
    }
    const checkedAt = new Date(last.checkedAt).toISOString();
    if (last.ok) {
      return session.up({ known: true, ...base, checkedAt });
    }
    const data = { known: true, ...base, checkedAt, error: last.error.code };
    return this.duoRequired ? session.down(data) : session.degraded(data);
  }
}
