import { Logger, Module, type DynamicModule } from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import { APP_GUARD } from '@nestjs/core';
import { Redis } from 'ioredis';
import { AuthController } from './auth/auth.controller.js';
import { duoOptionsFromEnv } from './config/duo.config.js';
import { AppConfigModule } from './config/app-config.module.js';
import { ENV_VARIABLES, type AppEnv } from './config/env.validation.js';
import { DuoModule, MfaGuard, type DuoAuthEvent } from './duo/index.js';
import { HealthController } from './health.controller.js';

/** Reads the validated environment as one typed object. */
export function appEnv(config: ConfigService): AppEnv {
  return Object.fromEntries(ENV_VARIABLES.map((k) => [k, config.get(k)])) as unknown as AppEnv;
}

const events = new Logger('AuthEvents');

/** Until the audit trail is wired: a structured log line per event, never the tokens. */
function logEvent(e: DuoAuthEvent): void {
  const txid = e.result?.tokens.auth_context.txid;
  events.log(
    JSON.stringify({ type: e.type, outcome: e.outcome, reason: e.reason, txid, ip: e.clientIp }),
  );
}

/**
 * The reference app. `forRoot(env)` validates the environment once (one error lists every bad
 * variable) and wires DuoModule from it; tests pass their own env object.
 */
@Module({})
export class AppModule {
  static forRoot(rawEnv: Record<string, string | undefined> = process.env): DynamicModule {
    return {
      module: AppModule,
      imports: [
        AppConfigModule.forRoot(rawEnv),
        DuoModule.forRootAsync({
          inject: [ConfigService],
          useFactory: (config: ConfigService) => {
            const env = appEnv(config);
            return {
              ...duoOptionsFromEnv(env),
              redis: env.REDIS_URL
                ? new Redis(env.REDIS_URL, { maxRetriesPerRequest: 2 })
                : undefined,
              onEvent: logEvent,
            };
          },
        }),
      ],
      controllers: [AuthController, HealthController],
      providers: [{ provide: APP_GUARD, useClass: MfaGuard }],
    };
  }
}
