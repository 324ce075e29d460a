import { randomBytes } from 'node:crypto';

import type { Cluster, Redis } from 'ioredis';

import { scanKeys } from '../../packages/core/src/stores/redis-script.js';
import { startRedisCluster, type RedisClusterFixture } from './redis-cluster.js';
import { RedisScratch } from './redis-scratch.js';

/** An ioredis client as the specs hold it: its whole API, not only what core uses of it. */
export type IoRedisConnection = Redis | Cluster;

/**
 * Where a Redis store spec runs: the local single Redis (under a RedisScratch root) or a local
 * three-master Redis Cluster (keys under the `{duo}:` hash tag, as the stores require there).
 */
export interface StoreBackend {
  readonly name: 'Redis' | 'Redis Cluster';
  /** Two connections, as two app instances would have. */
  readonly redis: IoRedisConnection;
  readonly redis2: IoRedisConnection;
  /** A fresh key prefix for one test. */
  freshPrefix(): string;
  /** Every key under `prefix` (every master of a Cluster). */
  keysUnder(prefix: string): Promise<string[]>;
  /** One more connection whose ioredis `keyPrefix` is `keyPrefix` (closed with the backend). */
  connectWithKeyPrefix(keyPrefix: string): IoRedisConnection;
}

/**
 * Registers beforeAll/afterAll that start both backends, and answers them for `describe.each`
 * (the objects are filled in beforeAll, so read their fields inside tests only).
 */
export function storeBackends(
  name: string,
  hooks: {
    beforeAll: (fn: () => Promise<void>, timeout?: number) => void;
    afterAll: (fn: () => Promise<void>) => void;
  },
): StoreBackend[] {
  const scratch = new RedisScratch(name);
  let cluster: RedisClusterFixture | undefined;
  let seq = 0;
  const root = `{duo}:test:${name}:${randomBytes(6).toString('hex')}:`;
  const single = {
    name: 'Redis',
    redis: undefined as unknown as Redis,
    redis2: undefined as unknown as Redis,
    freshPrefix: () => scratch.freshPrefix(),
    keysUnder: (prefix: string) => scratch.keysUnder(prefix),
    connectWithKeyPrefix: (keyPrefix: string) => scratch.connect({ keyPrefix }),
  } satisfies StoreBackend;
  const clustered = {
    name: 'Redis Cluster',
    redis: undefined as unknown as Cluster,
    redis2: undefined as unknown as Cluster,
    freshPrefix: () => `${root}${++seq}:`,
    keysUnder: (prefix: string): Promise<string[]> =>
      scanKeys(clustered.redis, `${prefix.replace(/[*?[\]\\]/g, (c) => `\\${c}`)}*`),
    connectWithKeyPrefix: (keyPrefix: string) => cluster!.connect({ keyPrefix }),
  } satisfies StoreBackend;

  hooks.beforeAll(async () => {
    single.redis = scratch.connect();
    single.redis2 = scratch.connect();
    cluster = await startRedisCluster();
    clustered.redis = cluster.connect();
    clustered.redis2 = cluster.connect();
    await Promise.all([clustered.redis, clustered.redis2].map(waitReady));
  }, 60_000);
  hooks.afterAll(async () => {
    await scratch.close();
    await cluster?.stop();
  });
  return [single, clustered];
}

function waitReady(c: Cluster): Promise<void> {
  return c.status === 'ready'
    ? Promise.resolve()
    : new Promise((resolve, reject) => {
        c.once('ready', () => resolve());
        c.once('error', reject);
      });
}
