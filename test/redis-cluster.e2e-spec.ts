import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { Cluster } from 'ioredis';
import { RedisRateLimitStore } from '@duo-nest/core';
import { RateLimiter, type RateLimitRule } from '@duo-nest/core/internal';
import { startRedisCluster, type RedisClusterFixture } from './support/redis-cluster.js';

// Issue hardening-2 item 7: the Redis stores and the rate limiter on a local three-master Redis
// Cluster (started here, stopped after), under the `{duo}:` hash-tag prefix (docs/production.md).
let cluster: RedisClusterFixture;
beforeAll(async () => {
  cluster = await startRedisCluster();
}, 60_000);
afterAll(() => cluster?.stop());

/** Every key matching `pattern` on each master, by node port. */
async function keysByNode(redis: Cluster, pattern: string): Promise<Map<number, string[]>> {
  const out = new Map<number, string[]>();
  for (const node of redis.nodes('master')) {
    const keys = await node.keys(pattern);
    if (keys.length > 0) {
      out.set(node.options.port!, keys);
    }
  }
  return out;
}

describe('Redis Cluster fixture (three masters, free ports)', () => {
  it('serves keys of every slot through an ioredis Cluster client', async () => {
    const redis = cluster.connect();
    expect(cluster.ports).toHaveLength(3);
    await Promise.all(Array.from({ length: 30 }, (_, i) => redis.set(`fx${i}`, String(i))));
    expect(await redis.get('fx17')).toBe('17');
    expect(redis.nodes('master')).toHaveLength(3);
    expect((await keysByNode(redis, 'fx*')).size).toBe(3);
  });
});

describe('RL on Redis Cluster: RedisRateLimitStore', () => {
  const rule: RateLimitRule = { name: 'login_user', limit: 3, windowMs: 60_000 };

  it('should count, refuse over the limit and set a TTL with the {duo}: prefix, every key in the one slot of "duo"', async () => {
    const redis = cluster.connect();
    // The app's limiter prefix is `<REDIS_KEY_PREFIX>rl:`; with REDIS_KEY_PREFIX={duo}: it is this.
    const prefix = `{duo}:rl:${randomBytes(4).toString('hex')}:`;
    const limiter = new RateLimiter(new RedisRateLimitStore(redis, prefix));
    const subjects = Array.from({ length: 12 }, (_, i) => `user${i}`);
    for (const subject of subjects) {
      const answers = [];
      for (let i = 0; i < 5; i++) {
        answers.push(await limiter.check(rule, subject));
      }
      expect(answers.map((a) => a.allowed)).toEqual([true, true, true, false, false]);
      expect(answers[3]).toMatchObject({ firstRefusal: true });
      expect(answers[4]).toMatchObject({ firstRefusal: false });
    }
    const byNode = await keysByNode(redis, `${prefix}*`);
    expect(byNode.size).toBe(1);
    const keys = [...byNode.values()][0];
    expect(keys).toHaveLength(subjects.length);
    const slot = await redis.cluster('KEYSLOT', 'duo');
    for (const key of keys) {
      expect(await redis.cluster('KEYSLOT', key)).toBe(slot);
      const ttl = await redis.pttl(key);
      expect(ttl).toBeGreaterThan(0);
      expect(ttl).toBeLessThanOrEqual(60_000);
    }
  });

  it('should work on every master (one key per script) and reload its script after SCRIPT FLUSH', async () => {
    const redis = cluster.connect();
    const prefix = `rl-untagged-${randomBytes(4).toString('hex')}:`;
    const limiter = new RateLimiter(new RedisRateLimitStore(redis, prefix));
    for (let i = 0; i < 30; i++) {
      expect((await limiter.check(rule, `spread${i}`)).allowed).toBe(true);
    }
    // Without a hash tag the counters spread over the masters: the script still runs on each.
    expect((await keysByNode(redis, `${prefix}*`)).size).toBe(3);
    await Promise.all(redis.nodes('master').map((n) => n.script('FLUSH')));
    for (let i = 0; i < 30; i++) {
      expect(await limiter.check(rule, `spread${i}`)).toEqual({ allowed: true });
      expect(await limiter.check(rule, `spread${i}`)).toEqual({ allowed: true });
      expect(await limiter.check(rule, `spread${i}`)).toMatchObject({
        allowed: false,
        firstRefusal: true,
      });
    }
  });

  it('should share one count between two clients of the cluster (two instances)', async () => {
    const prefix = `{duo}:rl:${randomBytes(4).toString('hex')}:`;
    const a = new RateLimiter(new RedisRateLimitStore(cluster.connect(), prefix));
    const b = new RateLimiter(new RedisRateLimitStore(cluster.connect(), prefix));
    const allowed = [];
    for (let i = 0; i < 8; i++) {
      allowed.push((await (i % 2 === 0 ? a : b).check(rule, 'shared')).allowed);
    }
    expect(allowed).toEqual([true, true, true, false, false, false, false, false]);
  });

  it('should close its own cluster connection on close() and leave a borrowed one open', async () => {
    const owned = cluster.connect();
    const borrowed = cluster.connect();
    await new RedisRateLimitStore(borrowed, '{duo}:rl:').hit('x', 1000);
    await new RedisRateLimitStore(owned, '{duo}:rl:', true).hit('y', 1000);
    await new RedisRateLimitStore(borrowed, '{duo}:rl:').close();
    await new RedisRateLimitStore(owned, '{duo}:rl:', true).close();
    expect(borrowed.status).toBe('ready');
    await new Promise((resolve) =>
      owned.status === 'end' ? resolve(undefined) : owned.once('end', resolve),
    );
    expect(owned.status).toBe('end');
  });
});
