import { createHash } from 'node:crypto';

import type { Redis } from 'ioredis';

/**
 * A Lua script run with EVALSHA, falling back to EVAL once when Redis answers NOSCRIPT (after a
 * restart or SCRIPT FLUSH). Unlike `defineCommand` it leaves the caller's Redis instance untouched.
 * Keys go through KEYS, so ioredis applies its own `keyPrefix` to them.
 */
export class RedisScript {
  readonly sha: string;

  constructor(readonly lua: string) {
    this.sha = createHash('sha1').update(lua, 'utf8').digest('hex');
  }

  async run(
    redis: Redis,
    keys: readonly string[],
    args: readonly (string | number)[],
  ): Promise<unknown> {
    try {
      return await redis.evalsha(this.sha, keys.length, ...keys, ...args);
    } catch (err) {
      if (err instanceof Error && err.message.startsWith('NOSCRIPT')) {
        return await redis.eval(this.lua, keys.length, ...keys, ...args);
      }
      throw err;
    }
  }
}
