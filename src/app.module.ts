import { Module, type DynamicModule } from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import { APP_GUARD } from '@nestjs/core';
import { TerminusModule } from '@nestjs/terminus';
import { TypeOrmModule } from '@nestjs/typeorm';
import { Redis } from 'ioredis';
import {
  AuditController,
  AuditModule,
  AuditPageController,
  AuditService,
  AuditSessionsController,
  AUDIT_RECONCILE,
  reconcileSettingsFromEnv,
} from '@duo-nest/audit';
import { auditEventSink } from './auth/auth-audit.js';
import { buildTypeOrmOptions } from './database/typeorm-options.js';
import { AuthController } from './auth/auth.controller.js';
import { duoOptionsFromEnv } from './config/duo.config.js';
import { AppConfigModule } from './config/app-config.module.js';
import { ENV_VARIABLES, type AppEnv } from './config/env.validation.js';
import { DuoModule, MfaGuard } from '@duo-nest/core';
import { HealthController } from './health/health.controller.js';
import { GracefulShutdownService } from './lifecycle/graceful-shutdown.service.js';
import { MetricsController } from './metrics/metrics.controller.js';
import { MetricsModule } from './metrics/metrics.module.js';
import { MetricsService } from './metrics/metrics.service.js';
import { RECONCILE_SETTINGS, ReconcileRunner } from './reconcile/reconcile.runner.js';

/** Reads the validated environment as one typed object. */
export function appEnv(config: ConfigService): AppEnv {
  return Object.fromEntries(ENV_VARIABLES.map((k) => [k, config.get(k)])) as unknown as AppEnv;
}

/**
 * The reference app. `forRoot(env)` validates the environment once (one error lists every bad
 * variable) and wires DuoModule from it; tests pass their own env object.
 */
@Module({})
export class AppModule {
  static forRoot(rawEnv: Record<string, string | undefined> = process.env): DynamicModule {
    // One AuditModule instance, imported by the app and by DuoModule's factory (the event sink).
    const audit = AuditModule.registerAsync({
      inject: [ConfigService],
      useFactory: (config: ConfigService) => {
        const env = appEnv(config);
        return {
          chainKey: env.AUDIT_CHAIN_KEY,
          policy: env.AUDIT_POLICY,
          spoolDir: env.AUDIT_SPOOL_DIR,
          instanceId: env.INSTANCE_ID,
          retentionDays: env.AUDIT_RETENTION_DAYS,
          adminUsers: env.AUDIT_ADMIN_USERS,
          adminGroups: env.AUDIT_ADMIN_GROUPS,
        };
      },
    });
    return {
      module: AppModule,
      imports: [
        AppConfigModule.forRoot(rawEnv),
        TypeOrmModule.forRootAsync({
          inject: [ConfigService],
          useFactory: (config: ConfigService) => {
            const env = appEnv(config);
            return buildTypeOrmOptions({
              databaseUrl: env.DATABASE_URL,
              migrationsRun: env.DATABASE_MIGRATIONS_RUN,
            });
          },
        }),
        audit,
        TerminusModule.forRoot({ errorLogStyle: 'json' }),
        MetricsModule,
        DuoModule.forRootAsync({
          // The seed's pages: refusals become HTML pages (or a 303 to sign-on) for browsers.
          errorFilter: true,
          imports: [audit, MetricsModule],
          inject: [ConfigService, AuditService, MetricsService],
          useFactory: (
            config: ConfigService,
            auditService: AuditService,
            metrics: MetricsService,
          ) => {
            const env = appEnv(config);
            return {
              ...duoOptionsFromEnv(env),
              redis: env.REDIS_URL
                ? // Fail fast while Redis is down: a store call gives up within ~1 s (503), never hangs.
                  new Redis(env.REDIS_URL, {
                    maxRetriesPerRequest: 1,
                    commandTimeout: 1_000,
                    retryStrategy: (times) => Math.min(times * 100, 1_000),
                  })
                : undefined,
              redisKeyPrefix: env.REDIS_KEY_PREFIX,
              onEvent: metrics.countingSink(auditEventSink(auditService)),
              onDuoCall: metrics.duoCallObserver,
            };
          },
        }),
      ],
      controllers: [
        AuthController,
        HealthController,
        MetricsController,
        AuditController,
        AuditPageController,
        AuditSessionsController,
      ],
      // useExisting: the one MfaGuard of DuoModule, so tests can replace it with overrideGuard().
      providers: [
        { provide: APP_GUARD, useExisting: MfaGuard },
        GracefulShutdownService,
        // The reconcile job against Duo's authentication log (issue 16); bad DUO_RECONCILE_* fail the boot.
        { provide: RECONCILE_SETTINGS, useValue: reconcileSettingsFromEnv(rawEnv) },
        ReconcileRunner,
        { provide: AUDIT_RECONCILE, useExisting: ReconcileRunner },
      ],
    };
  }
}
