// DuoRedisConnection is what core's declarations name instead of ioredis' types. The assignments
// below are the real test: tsc --noEmit (which covers specs) fails if an ioredis Redis or Cluster
// stops fitting it, or if it loosens into something that accepts anything.
import { afterAll, describe, expect, it } from '@jest/globals';
import { Cluster, Redis } from 'ioredis';

import type { DuoModuleOptions } from '../duo-module-options.interface.js';
import type { DuoRedisConnection, DuoRedisNode } from '../index.js';
import { connectionKeyPrefix, scanKeys } from './redis-script.js';

// lazyConnect: built for their types only, they never open a socket.
const redis = new Redis({ lazyConnect: true, keyPrefix: 'app:' });
const cluster = new Cluster([{ host: '127.0.0.1', port: 1 }], {
  lazyConnect: true,
  keyPrefix: '{app}:',
});

afterAll(() => {
  redis.disconnect();
  cluster.disconnect();
});

describe('DuoRedisConnection', () => {
  it('an ioredis Redis and Cluster are assignable to it as they are, and to the redis option', () => {
    const single: DuoRedisConnection = redis;
    const clustered: DuoRedisConnection = cluster;
    const node: DuoRedisNode = cluster.nodes('master')[0] ?? redis;
    const option: DuoModuleOptions['redis'] = cluster;
    expect([single, clustered, node, option]).toEqual([redis, cluster, redis, cluster]);
  });

  it('is not a shape anything fits: a client without the script commands is refused', () => {
    const partial = { isCluster: false, options: {}, get: () => Promise.resolve(null) };
    // @ts-expect-error evalsha, eval, set, hgetall, smembers, zcard, scan, quit, disconnect missing
    const refused: DuoRedisConnection = partial;
    // @ts-expect-error only the SET forms the stores send (PX, PX NX) are required, with 'PX'
    const wrongSet: DuoRedisConnection['set'] = (_k: string, _v: string, _ex: 'EX') =>
      Promise.resolve('OK' as const);
    expect([refused, wrongSet]).toHaveLength(2);
  });

  it("reads the client's own keyPrefix from a Redis and a Cluster", () => {
    expect(connectionKeyPrefix(redis)).toBe('app:');
    expect(connectionKeyPrefix(cluster)).toBe('{app}:');
  });

  it("refuses to SCAN a Cluster-like connection without nodes('master') rather than miss keys", async () => {
    const scanned: string[] = [];
    const lone = {
      ...({} as DuoRedisConnection),
      isCluster: true,
      options: {},
      scan: (cursor: string) => {
        scanned.push(cursor);
        return Promise.resolve(['0', ['k']] as [string, string[]]);
      },
    } as DuoRedisConnection;
    await expect(scanKeys(lone, '*')).rejects.toThrow(/nodes\('master'\)/);
    expect(scanned).toEqual([]);
  });
});
