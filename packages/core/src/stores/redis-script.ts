import { createHash } from 'node:crypto';

import type { DuoRedisConnection, DuoRedisNode } from './redis-connection.js';

/**
 * A Lua script run with EVALSHA, falling back to EVAL once when Redis answers NOSCRIPT (after a
 * restart or SCRIPT FLUSH, or on a Cluster node that never saw it). Unlike `defineCommand` it
 * leaves the caller's Redis instance untouched. Keys go through KEYS, so ioredis applies its own
 * `keyPrefix` to them, and on a Cluster the call goes to the node that owns their slot.
 */
export class RedisScript {
  readonly sha: string;

  constructor(readonly lua: string) {
    this.sha = createHash('sha1').update(lua, 'utf8').digest('hex');
  }

  async run(
    redis: DuoRedisConnection,
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

/** The connection's own `keyPrefix` (Redis or Cluster), or undefined; unchecked (plain JS callers). */
export function connectionKeyPrefix(redis: DuoRedisConnection): unknown {
  return (redis.options as { keyPrefix?: unknown } | undefined)?.keyPrefix;
}

/**
 * The hash tag of a key prefix as Redis Cluster reads it: the text between the first `{` and the
 * next `}`, when not empty. Every key that starts with such a prefix lands in the tag's slot.
 */
export function hashTagOf(prefix: string): string | undefined {
  const open = prefix.indexOf('{');
  if (open < 0) {
    return undefined;
  }
  const close = prefix.indexOf('}', open + 1);
  return close > open + 1 ? prefix.slice(open + 1, close) : undefined;
}

/**
 * On a Cluster, refuses a prefix without a hash tag: the stores' scripts touch several keys (and
 * build some names themselves), which Cluster allows only within one slot.
 */
export function assertClusterSafePrefix(
  redis: DuoRedisConnection,
  fullPrefix: string,
  store: string,
): void {
  if (redis.isCluster && hashTagOf(fullPrefix) === undefined) {
    throw new RangeError(
      `${store}: on Redis Cluster the key prefix must hold a hash tag so that all keys share one ` +
        `slot, such as '{duo}:' (got '${fullPrefix}')`,
    );
  }
}

/**
 * Every key matching `match` (a SCAN glob over full key names): on a Cluster, SCANs every master
 * (SCAN only sees the node it is sent to). Returned names include any connection keyPrefix.
 */
export async function scanKeys(redis: DuoRedisConnection, match: string): Promise<string[]> {
  let nodes: DuoRedisNode[] = [redis];
  if (redis.isCluster) {
    if (typeof redis.nodes !== 'function') {
      // SCAN on the Cluster object would see one random node and miss keys: refuse instead.
      throw new TypeError("a Redis Cluster connection must offer nodes('master') (ioredis does)");
    }
    nodes = redis.nodes('master');
  }
  const out: string[] = [];
  for (const node of nodes) {
    let cursor = '0';
    do {
      const [next, keys] = await node.scan(cursor, 'MATCH', match, 'COUNT', 1000);
      cursor = next;
      out.push(...keys);
    } while (cursor !== '0');
  }
  return out;
}
