import { describe, expect, it } from '@jest/globals';
import {
  MemoryRateLimitStore,
  normalizeUsernameForLimit,
  RateLimiter,
  type RateLimitRule,
} from './rate-limiter.js';

const rule: RateLimitRule = { name: 'login_user', limit: 2, windowMs: 1000 };

describe(RateLimiter.name, () => {
  it('should allow the limit, refuse beyond it and flag only the first refusal when hits repeat in one window', async () => {
    const limiter = new RateLimiter(new MemoryRateLimitStore());
    const out = [];
    for (let i = 0; i < 4; i++) {
      out.push(await limiter.check(rule, 'alice'));
    }
    expect(out.map((d) => d.allowed)).toEqual([true, true, false, false]);
    expect(out[2]).toMatchObject({ firstRefusal: true, retryAfterSec: 1 });
    expect(out[3]).toMatchObject({ firstRefusal: false });
  });

  it('should start a new window when the old one expires', async () => {
    let now = 0;
    const limiter = new RateLimiter(new MemoryRateLimitStore(100, () => now));
    await limiter.check(rule, 'a');
    await limiter.check(rule, 'a');
    expect((await limiter.check(rule, 'a')).allowed).toBe(false);
    now = 1000;
    expect((await limiter.check(rule, 'a')).allowed).toBe(true);
  });

  it('should allow everything when the limit is 0', async () => {
    const limiter = new RateLimiter(new MemoryRateLimitStore());
    for (let i = 0; i < 10; i++) {
      expect((await limiter.check({ ...rule, limit: 0 }, 'a')).allowed).toBe(true);
    }
  });

  it('should stay within its key bound when many subjects arrive', async () => {
    const store = new MemoryRateLimitStore(50);
    const limiter = new RateLimiter(store);
    for (let i = 0; i < 500; i++) {
      await limiter.check(rule, `user${i}`);
    }
    expect(store.size).toBeLessThanOrEqual(50);
  });

  it('should treat usernames that differ by case or Unicode form as one', () => {
    expect(normalizeUsernameForLimit(' Alice ')).toBe(normalizeUsernameForLimit('alice'));
    expect(normalizeUsernameForLimit('ＡＬＩＣＥ')).toBe('alice');
  });
});
