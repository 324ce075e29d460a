import { createHash } from 'node:crypto';
import type { Redis } from 'ioredis';

/** One counted hit: the count in the current window and the time until it resets. */
export interface RateLimitHit {
  count: number;
  resetInMs: number;
}

/** Fixed-window counters. Redis makes the count shared by every instance (N instances allow the limit, not N times it). */
export interface RateLimitStore {
  hit(key: string, windowMs: number): Promise<RateLimitHit>;
  close?(): Promise<void>;
}

/** Counters of one instance; expired windows are dropped as the map grows. */
export class MemoryRateLimitStore implements RateLimitStore {
  private readonly windows = new Map<string, { count: number; resetAt: number }>();

  constructor(
    private readonly maxKeys = 100_000,
    private readonly now: () => number = Date.now,
  ) {}

  hit(key: string, windowMs: number): Promise<RateLimitHit> {
    const now = this.now();
    let w = this.windows.get(key);
    if (!w || w.resetAt <= now) {
      if (this.windows.size >= this.maxKeys) {
        this.prune(now);
      }
      w = { count: 0, resetAt: now + windowMs };
      this.windows.set(key, w);
    }
    w.count++;
    return Promise.resolve({ count: w.count, resetInMs: w.resetAt - now });
  }

  get size(): number {
    return this.windows.size;
  }

  private prune(now: number): void {
    for (const [k, w] of this.windows) {
      if (w.resetAt <= now) {
        this.windows.delete(k);
      }
    }
    // Still full of live windows: forget the oldest ones rather than grow without bound.
    for (const k of this.windows.keys()) {
      if (this.windows.size < this.maxKeys) {
        break;
      }
      this.windows.delete(k);
    }
  }
}

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

/** Counters in Redis under `<prefix><key>`, shared by every instance. */
export class RedisRateLimitStore implements RateLimitStore {
  constructor(
    private readonly redis: Redis,
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

/** A limit: at most `limit` hits per `windowMs` per key; 0 turns it off. */
export interface RateLimitRule {
  name: 'login_ip' | 'login_user' | 'callback_ip';
  limit: number;
  windowMs: number;
}

export type RateLimitDecision =
  { allowed: true } | { allowed: false; retryAfterSec: number; firstRefusal: boolean };

/** Checks hits against rules; keys are hashed, so Redis holds no raw IP or username. */
export class RateLimiter {
  constructor(readonly store: RateLimitStore) {}

  async check(rule: RateLimitRule, subject: string): Promise<RateLimitDecision> {
    if (rule.limit <= 0) {
      return { allowed: true };
    }
    const key = `${rule.name}:${createHash('sha256').update(subject).digest('base64url').slice(0, 32)}`;
    const { count, resetInMs } = await this.store.hit(key, rule.windowMs);
    if (count <= rule.limit) {
      return { allowed: true };
    }
    return {
      allowed: false,
      retryAfterSec: Math.max(1, Math.ceil(resetInMs / 1000)),
      // Only the first refusal of a window is audited: a flood writes one row, not thousands.
      firstRefusal: count === rule.limit + 1,
    };
  }
}

/** Usernames that differ only by case or Unicode form share one per-user limit. */
export function normalizeUsernameForLimit(username: string): string {
  return username.normalize('NFKC').trim().toLowerCase();
}
