import { Inject, Module, type OnApplicationShutdown } from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import { Redis } from 'ioredis';
import { CsrfService } from './csrf.service.js';
import {
  MemoryRateLimitStore,
  RateLimiter,
  RedisRateLimitStore,
  type RateLimitStore,
} from './rate-limiter.js';

/**
 * The app's request defences that need state: the CSRF token service and the rate limiter (in
 * memory, or in Redis under `<REDIS_KEY_PREFIX>rl:` when REDIS_URL is set). setupApp() mounts them.
 */
@Module({
  providers: [
    {
      provide: CsrfService,
      inject: [ConfigService],
      useFactory: (config: ConfigService) => {
        const publicUrl = config.getOrThrow<string>('PUBLIC_URL');
        return new CsrfService(
          config.getOrThrow<string>('SESSION_SECRET'),
          publicUrl.startsWith('https://'),
          new URL(publicUrl).origin,
        );
      },
    },
    {
      provide: RateLimiter,
      inject: [ConfigService],
      useFactory: (config: ConfigService) => {
        const url = config.get<string>('REDIS_URL');
        const store: RateLimitStore = url
          ? new RedisRateLimitStore(
              new Redis(url, { maxRetriesPerRequest: 1, commandTimeout: 1000 }),
              `${config.get<string>('REDIS_KEY_PREFIX') ?? 'duo:'}rl:`,
              true,
            )
          : new MemoryRateLimitStore();
        return new RateLimiter(store);
      },
    },
  ],
  exports: [CsrfService, RateLimiter],
})
export class SecurityModule implements OnApplicationShutdown {
  constructor(@Inject(RateLimiter) private readonly limiter: RateLimiter) {}

  async onApplicationShutdown(): Promise<void> {
    await this.limiter.store.close?.();
  }
}
