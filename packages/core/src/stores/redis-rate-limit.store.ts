import { createHash } from 'node:crypto';

import type { RateLimitHit, RateLimitStore } from './rate-limit-store.interface.js';
import type { DuoRedisConnection } from './redis-connection.js';

// KEYS[1] counter; ARGV[1] window ms. INCR and the first PEXPIRE in one step, so a crash between
// them cannot leave a counter without a TTL; returns {count, pttl}.
const HIT_LUA = `local n = redis.call('INCR', KEYS[1])
local ttl = redis.call('PTTL', KEYS[1])
if n == 1 or ttl < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  ttl = tonumber(ARGV[1])
end
return {n, ttl}`;
const HIT_SHA = createHash('sha1').update(HIT_LUA).digest('hex');

/**
 * Counters in Redis under `<prefix><key>`, shared by every instance. A single Redis or a Redis
 * Cluster: the script touches one key, so any prefix works in Cluster; DuoModule uses
 * `<redisKeyPrefix>rl:` on its `redis` connection, under the same hash tag as its stores.
 */
export class RedisRateLimitStore implements RateLimitStore {
  constructor(
    private readonly redis: DuoRedisConnection,
    private readonly prefix: string,
    private readonly ownsConnection = false,
  ) {}

  async hit(key: string, windowMs: number): Promise<RateLimitHit> {
    const k = this.prefix + key;
    let out: unknown;
    try {
      out = await this.redis.evalsha(HIT_SHA, 1, k, windowMs);
    } catch (err) {
      if (!(err instanceof Error) || !err.message.startsWith('NOSCRIPT')) {
        throw err;
      }
      out = await this.redis.eval(HIT_LUA, 1, k, windowMs);
    }
    const [count, ttl] = out as [number, number];
    return { count, resetInMs: Math.max(0, ttl) };
  }

  async close(): Promise<void> {
    if (this.ownsConnection) {
      await this.redis.quit().catch(() => this.redis.disconnect());
    }
  }
}
