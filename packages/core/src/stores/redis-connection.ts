// What core uses of a Redis connection, named structurally: core's declarations then mention no
// ioredis type, so ioredis stays an optional peer even for a consumer with `skipLibCheck: false`.
// An ioredis `Redis` (single or Sentinel-managed) and `Cluster` are assignable as they are
// (checked in redis-connection.spec.ts).

/** The commands one Redis node answers that the built-in stores send to a single node. */
export interface DuoRedisNode {
  /** `SCAN cursor MATCH pattern COUNT count`: the next cursor and a page of key names. */
  scan(
    cursor: string,
    matchToken: 'MATCH',
    pattern: string,
    countToken: 'COUNT',
    count: number,
  ): Promise<[cursor: string, keys: string[]]>;
}

/**
 * A Redis connection as DuoModule's `redis` option and the Redis stores use it: one Redis (or a
 * Sentinel-managed one) or a Redis Cluster. An ioredis `Redis` or `Cluster` fits as it is; any
 * other client needs these commands with ioredis' argument order and answers.
 *
 * - the stores' Lua scripts: `evalsha`, then `eval` when Redis answers NOSCRIPT;
 * - reads: `get`, `hgetall`, `smembers`, `zcard`;
 * - the health probe's lease and shared answer: `set … PX ms [NX]`;
 * - `RedisRateLimitStore.close()`: `quit`, else `disconnect`;
 * - `options.keyPrefix`: the client's own key prefix, which it puts before every key;
 * - `isCluster` and, on a Cluster, `nodes('master')`: SCAN visits every master.
 */
export interface DuoRedisConnection extends DuoRedisNode {
  /** True on a Redis Cluster: prefixes must then hold a hash tag, and SCAN visits every master. */
  readonly isCluster: boolean;
  /** The client's options; only `keyPrefix` (prepended by the client to every key) is read. */
  readonly options: { readonly keyPrefix?: string | undefined };
  /** Cluster only: a connection to each master (SCAN sees only the node it is sent to). */
  nodes?(role: 'master'): DuoRedisNode[];
  /** `EVAL script numkeys key… arg…`. */
  eval(script: string, numkeys: number, ...keysAndArgs: (string | number)[]): Promise<unknown>;
  /** `EVALSHA sha1 numkeys key… arg…`; rejects with an error starting NOSCRIPT when not cached. */
  evalsha(sha1: string, numkeys: number, ...keysAndArgs: (string | number)[]): Promise<unknown>;
  /** `GET key`. */
  get(key: string): Promise<string | null>;
  /** `SET key value PX ms`. */
  set(key: string, value: string, pxToken: 'PX', ms: number): Promise<'OK'>;
  /** `SET key value PX ms NX`: 'OK' when set, null when the key exists. */
  set(key: string, value: string, pxToken: 'PX', ms: number, nxToken: 'NX'): Promise<'OK' | null>;
  /** `HGETALL key`: an empty object when the key does not exist. */
  hgetall(key: string): Promise<Record<string, string>>;
  /** `SMEMBERS key`. */
  smembers(key: string): Promise<string[]>;
  /** `ZCARD key`. */
  zcard(key: string): Promise<number>;
  /** Closes the connection after pending replies. */
  quit(): Promise<unknown>;
  /** Closes the connection at once. */
  disconnect(): void;
}
