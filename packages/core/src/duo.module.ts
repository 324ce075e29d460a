import {
  Inject,
  Logger,
  Module,
  type OnApplicationShutdown,
  type OnModuleInit,
} from '@nestjs/common';
import { PassportModule } from '@nestjs/passport';
import { DuoApplications } from './duo-applications.js';
import { DuoClient } from './duo.client.js';
import { DuoCallbackRoute } from './duo-callback.route.js';
import { DuoFlowService } from './duo-flow.service.js';
import { DuoCircuitBreaker } from './duo-circuit-breaker.js';
import { DuoHealthService } from './duo-health.service.js';
import {
  normalizeDuoModuleOptions,
  type NormalizedDuoModuleOptions,
} from './duo-module-options.js';
import type { DuoModuleOptions } from './duo-module-options.interface.js';
import { DuoCsrfService } from './duo-csrf.service.js';
import { DuoSessionService } from './duo-session.service.js';
import { DuoSessionControl } from './duo-session-control.service.js';
import { DuoSignOnProtection } from './duo-sign-on-protection.service.js';
import { DuoSignOn } from './duo-sign-on.service.js';
import { DuoCsrfGuard, DuoStartGuard } from './duo-start.guard.js';
import { DuoStepUpRoute } from './duo-step-up.route.js';
import { DuoConfigurableModuleClass, DUO_MODULE_OPTIONS } from './duo.module-definition.js';
import { DuoStrategy } from './duo.strategy.js';
import {
  DUO_OPTIONS,
  DUO_PENDING_LOGIN_STORE,
  DUO_RATE_LIMIT_STORE,
  DUO_SESSION_STORE,
} from './duo.tokens.js';
import { MfaGuard } from './mfa.guard.js';
import { MemoryPendingLoginStore } from './stores/memory-pending-login.store.js';
import type { PendingLoginStore } from './stores/pending-login-store.interface.js';
import { RedisPendingLoginStore } from './stores/redis-pending-login.store.js';
import { StoreRecordSealer, type InvalidStoreRecordHandler } from './stores/record-seal.js';
import { MemoryRateLimitStore } from './stores/memory-rate-limit.store.js';
import type { RateLimitStore } from './stores/rate-limit-store.interface.js';
import { RedisRateLimitStore } from './stores/redis-rate-limit.store.js';
import { MemorySessionStore } from './stores/memory-session.store.js';
import { RedisSessionStore } from './stores/redis-session.store.js';
import type { SessionStore } from './stores/session-store.interface.js';

/** Token of the built-in stores' shared record sealer and invalid-record report (internal). */
const STORE_SEAL = Symbol('DUO_STORE_SEAL');

interface StoreSeal {
  sealer: StoreRecordSealer;
  onInvalidRecord: InvalidStoreRecordHandler;
}

/**
 * One sealer for both built-in stores, keyed from the session secret (the previous one verifies
 * only), and the report of a record that failed its check: a warning (no key, no value) and one
 * `store_record_invalid` event, which the app audits and counts.
 */
function storeSealFrom(o: NormalizedDuoModuleOptions): StoreSeal {
  const logger = new Logger('Duo');
  return {
    sealer: new StoreRecordSealer(o.sessionSecret, o.sessionSecretPrevious),
    onInvalidRecord: async ({ store, reason }) => {
      logger.warn(`store_record_invalid store=${store} reason=${reason}: treated as absent`);
      await o.onEvent?.({
        type: 'store_record_invalid',
        outcome: 'failure',
        reason: `${store === 'session' ? 'session' : 'pending_login'}_${reason}`,
      });
    },
  };
}

/**
 * Duo Universal Prompt MFA for Nest: the client, the Passport strategy, DuoStartGuard (and
 * DuoCsrfGuard), the callback route at the path of `redirectUri` (or DuoSignOn with
 * `routes: false`), the sign-on's caps and CSRF check (`limits`, `csrf`: on by default),
 * pending-login and session stores and the caps' counters (memory, or Redis when `redis` is
 * given), MfaGuard, and, with `errorFilter: true`, the global error filter.
 *
 * @example
 * DuoModule.forRoot({ clientId, clientSecret, apiHost, redirectUri, sessionSecret })
 * DuoModule.forRootAsync({ errorFilter: true, inject: [ConfigService], useFactory: (c: ConfigService) => duoOptionsFrom(c) })
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
      provide: STORE_SEAL,
      inject: [DUO_OPTIONS],
      useFactory: storeSealFrom,
    },
    {
      provide: DUO_PENDING_LOGIN_STORE,
      inject: [DUO_OPTIONS, STORE_SEAL],
      useFactory: (o: NormalizedDuoModuleOptions, seal: StoreSeal): PendingLoginStore =>
        o.stores?.pendingLogins ??
        (o.redis
          ? new RedisPendingLoginStore(o.redis, { ...seal, prefix: `${o.redisKeyPrefix}pending:` })
          : new MemoryPendingLoginStore(seal)),
    },
    {
      provide: DUO_SESSION_STORE,
      inject: [DUO_OPTIONS, STORE_SEAL],
      useFactory: (o: NormalizedDuoModuleOptions, seal: StoreSeal): SessionStore => {
        const options = {
          ...seal,
          idleTimeoutMs: o.sessionIdleTimeoutMs,
          absoluteTimeoutMs: o.sessionAbsoluteTimeoutMs,
        };
        return (
          o.stores?.sessions ??
          (o.redis
            ? new RedisSessionStore(o.redis, { ...options, prefix: `${o.redisKeyPrefix}sess:` })
            : new MemorySessionStore(options))
        );
      },
    },
    {
      // The caps' counters share the pending-login store's backing: the module's Redis (Redis or
      // Cluster, under the same prefix and hash tag) across instances, else memory.
      provide: DUO_RATE_LIMIT_STORE,
      inject: [DUO_OPTIONS],
      useFactory: (o: NormalizedDuoModuleOptions): RateLimitStore =>
        (o.limits && o.limits.store) ||
        (o.redis
          ? new RedisRateLimitStore(o.redis, `${o.redisKeyPrefix}rl:`)
          : new MemoryRateLimitStore()),
    },
    {
      provide: DuoCsrfService,
      inject: [DUO_OPTIONS],
      useFactory: (o: NormalizedDuoModuleOptions) =>
        new DuoCsrfService(
          o.sessionSecret,
          o.secureCookies,
          o.csrf ? o.csrf.allowedOrigins : [],
          o.sessionSecretPrevious,
        ),
    },
    DuoSignOnProtection,
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
    DuoApplications,
    DuoSessionService,
    DuoSessionControl,
    DuoFlowService,
    DuoStrategy,
    DuoStartGuard,
    DuoCsrfGuard,
    DuoSignOn,
    DuoCallbackRoute,
    DuoStepUpRoute,
    MfaGuard,
  ],
  exports: [
    DuoClient,
    DuoCircuitBreaker,
    DuoStrategy,
    DuoHealthService,
    DuoApplications,
    DuoSessionService,
    DuoSessionControl,
    DuoFlowService,
    DuoStartGuard,
    DuoCsrfGuard,
    DuoSignOn,
    DuoCsrfService,
    DuoSignOnProtection,
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
    private readonly client: DuoClient,
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
    // The proxy or CA dispatcher, if any, holds sockets of its own.
    await this.client.close();
    // Stores built from a caller's Redis connection leave the connection to the caller.
    if (!this.options.redis && !this.options.stores) {
      await this.pending.close?.();
      await this.sessions.close?.();
    }
  }
}
