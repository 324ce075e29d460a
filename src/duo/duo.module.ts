import {
  Inject,
  Logger,
  Module,
  type OnApplicationShutdown,
  type OnModuleInit,
} from '@nestjs/common';
import { APP_FILTER } from '@nestjs/core';
import { PassportModule } from '@nestjs/passport';
import { DuoClient } from './duo.client.js';
import { DuoAuthGuard } from './duo-auth.guard.js';
import { DuoExceptionFilter } from './duo-exception.filter.js';
import { DuoFlowService } from './duo-flow.service.js';
import { DuoCircuitBreaker } from './duo-circuit-breaker.js';
import { DuoHealthService } from './duo-health.service.js';
import {
  normalizeDuoModuleOptions,
  type NormalizedDuoModuleOptions,
} from './duo-module-options.js';
import type { DuoModuleOptions } from './duo-module-options.interface.js';
import { DuoSessionService } from './duo-session.service.js';
import { DuoConfigurableModuleClass, DUO_MODULE_OPTIONS } from './duo.module-definition.js';
import { DuoStrategy } from './duo.strategy.js';
import { DUO_OPTIONS, DUO_PENDING_LOGIN_STORE, DUO_SESSION_STORE } from './duo.tokens.js';
import { MfaGuard } from './mfa.guard.js';
import {
  MemoryPendingLoginStore,
  RedisPendingLoginStore,
  type PendingLoginStore,
} from './stores/pending-login.store.js';
import {
  MemorySessionStore,
  RedisSessionStore,
  type SessionStore,
} from './stores/session.store.js';

/**
 * Duo Universal Prompt MFA for Nest: the client, the Passport strategy, pending-login and session
 * stores (memory, or Redis when `redis` is given), MfaGuard and the error filter.
 *
 * @example
 * DuoModule.forRootAsync({ useFactory: (c: ConfigService) => ({ ...duoOptionsFrom(c) }), inject: [ConfigService] })
 */
@Module({
  imports: [PassportModule],
  providers: [
    {
      provide: DUO_OPTIONS,
      inject: [DUO_MODULE_OPTIONS],
      useFactory: (options: DuoModuleOptions) => normalizeDuoModuleOptions(options),
    },
    {
      provide: DuoClient,
      inject: [DUO_OPTIONS],
      useFactory: (o: NormalizedDuoModuleOptions) => new DuoClient(o),
    },
    {
      provide: DUO_PENDING_LOGIN_STORE,
      inject: [DUO_OPTIONS],
      useFactory: (o: NormalizedDuoModuleOptions): PendingLoginStore =>
        o.stores?.pendingLogins ??
        (o.redis
          ? new RedisPendingLoginStore(o.redis, { prefix: `${o.redisKeyPrefix}pending:` })
          : new MemoryPendingLoginStore()),
    },
    {
      provide: DUO_SESSION_STORE,
      inject: [DUO_OPTIONS],
      useFactory: (o: NormalizedDuoModuleOptions): SessionStore => {
        const timeouts = {
          idleTimeoutMs: o.sessionIdleTimeoutMs,
          absoluteTimeoutMs: o.sessionAbsoluteTimeoutMs,
        };
        return (
          o.stores?.sessions ??
          (o.redis
            ? new RedisSessionStore(o.redis, { ...timeouts, prefix: `${o.redisKeyPrefix}sess:` })
            : new MemorySessionStore(timeouts))
        );
      },
    },
    {
      provide: APP_FILTER,
      inject: [DUO_OPTIONS],
      useFactory: (o: NormalizedDuoModuleOptions) => new DuoExceptionFilter(o.signOnPath),
    },
    {
      provide: DuoCircuitBreaker,
      inject: [DUO_OPTIONS],
      useFactory: (o: NormalizedDuoModuleOptions) =>
        new DuoCircuitBreaker({
          failureThreshold: o.breakerFailureThreshold,
          cooldownMs: o.breakerCooldownMs,
          maxConcurrent: o.maxConcurrentDuoCalls,
        }),
    },
    DuoHealthService,
    DuoSessionService,
    DuoFlowService,
    DuoStrategy,
    DuoAuthGuard,
    MfaGuard,
  ],
  exports: [
    DuoClient,
    DuoCircuitBreaker,
    DuoStrategy,
    DuoHealthService,
    DuoSessionService,
    DuoFlowService,
    DuoAuthGuard,
    MfaGuard,
    DUO_OPTIONS,
    DUO_PENDING_LOGIN_STORE,
    DUO_SESSION_STORE,
  ],
})
export class DuoModule
  extends DuoConfigurableModuleClass
  implements OnModuleInit, OnApplicationShutdown
{
  private readonly logger = new Logger('Duo');
  private sweeper?: NodeJS.Timeout;

  constructor(
    private readonly flow: DuoFlowService,
    @Inject(DUO_OPTIONS) private readonly options: NormalizedDuoModuleOptions,
    @Inject(DUO_PENDING_LOGIN_STORE) private readonly pending: PendingLoginStore,
    @Inject(DUO_SESSION_STORE) private readonly sessions: SessionStore,
  ) {
    super();
  }

  onModuleInit(): void {
    this.sweeper = setInterval(() => {
      this.flow
        .sweepAbandoned()
        .catch((err: unknown) =>
          this.logger.warn(`Sweeping abandoned sign-ons failed: ${String(err)}`),
        );
    }, this.options.sweepIntervalMs);
    this.sweeper.unref();
  }

  async onApplicationShutdown(): Promise<void> {
    clearInterval(this.sweeper);
    // Stores built from a caller's Redis connection leave the connection to the caller.
    if (!this.options.redis && !this.options.stores) {
      await this.pending.close?.();
      await this.sessions.close?.();
    }
  }
}
