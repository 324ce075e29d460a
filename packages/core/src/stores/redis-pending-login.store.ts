import {
  duplicateError,
  isPendingLoginState,
  openSealed,
  PENDING_LOGIN_MAX_RECORD_BYTES,
  sealParts,
  serializeForPut,
  sweepLimit,
  takeResult,
} from './pending-login-record.js';
import type {
  PendingLogin,
  PendingLoginStore,
  TakeResult,
} from './pending-login-store.interface.js';
import {
  requireSealer,
  type InvalidStoreRecordHandler,
  type StoreRecordSealer,
  type StoreSealOptions,
} from './record-seal.js';
import { assertClusterSafePrefix, connectionKeyPrefix, RedisScript } from './redis-script.js';
import type { DuoRedisConnection } from './redis-connection.js';
import { effectivePrefix, parseJson, positiveIntOption } from './store-validation.js';

// KEYS[1] expiry index, KEYS[2] record; ARGV json, ttl ms, expiresAt, state.
const PUT_LUA = `
if not redis.call('SET', KEYS[2], ARGV[1], 'NX', 'PX', ARGV[2]) then return 0 end
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[4])
if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[2]) then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 1
`;
// Whoever removes the index entry owns the record: take and sweep both claim with ZREM, so at most
// one of all concurrent takes and sweeps ever gets it. KEYS[1] index, KEYS[2] record; ARGV state.
const TAKE_LUA = `
if redis.call('ZREM', KEYS[1], ARGV[1]) == 0 then return false end
local v = redis.call('GET', KEYS[2])
redis.call('DEL', KEYS[2])
return v
`;
// KEYS[1] index; ARGV now, limit, record-key prefix (ioredis keyPrefix included). Answers
// state, record, state, record...: the state is the key the record was read from, which its MAC
// must name.
const SWEEP_LUA = `
local members = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
local out = {}
for _, m in ipairs(members) do
  if redis.call('ZREM', KEYS[1], m) == 1 and string.match(m, '^[A-Za-z0-9_-]+$') then
    local k = ARGV[3] .. m
    local v = redis.call('GET', k)
    if v then
      redis.call('DEL', k)
      out[#out + 1] = m
      out[#out + 1] = v
    end
  end
end
return out
`;
const PUT_SCRIPT = new RedisScript(PUT_LUA);
const TAKE_SCRIPT = new RedisScript(TAKE_LUA);
const SWEEP_SCRIPT = new RedisScript(SWEEP_LUA);

export interface RedisPendingLoginStoreOptions extends StoreSealOptions {
  /**
   * Prefix of every key. On Redis Cluster it must hold a hash tag (`{duo}:pending:`): the scripts
   * touch the index and a record (the sweep builds record keys itself), which Cluster allows only
   * within one slot. Checked at construction.
   * @default 'duo:pending:'
   */
  prefix?: string;
  /** Seals and checks every record; build it from the secret all instances share. Required. */
  sealer: StoreRecordSealer;
  /**
   * How long Redis keeps a record after its `expiresAt` (its key TTL is `expiresAt - now + graceMs`),
   * so a sweep can still report it as abandoned; after that Redis drops it on its own.
   * @default 3_600_000
   */
  graceMs?: number;
  /** Clock used when `now` is not passed. @default Date.now */
  clock?: () => number;
}

/**
 * Pending logins in Redis, shared by all instances. Layout: the record JSON at `<prefix>l:<state>`
 * with a PX TTL, and a sorted set `<prefix>exp` of states scored by `expiresAt` (its own TTL is
 * pushed out to the longest record TTL). `take` and `sweepExpired` claim a login by removing it
 * from the sorted set inside one Lua script, which makes take-once and sweep-once exclusive.
 * Records read back are validated; an unreadable one counts as missing. The Redis connection
 * belongs to the caller (this store never closes it); its `keyPrefix`, if any, is honoured.
 */
export class RedisPendingLoginStore implements PendingLoginStore {
  readonly prefix: string;
  readonly graceMs: number;
  readonly #clock: () => number;
  readonly #sealer: StoreRecordSealer;
  readonly #onInvalid: InvalidStoreRecordHandler | undefined;
  readonly #indexKey: string;
  readonly #recordPrefixForLua: string;

  constructor(
    private readonly redis: DuoRedisConnection,
    options: RedisPendingLoginStoreOptions,
  ) {
    this.prefix = options.prefix ?? 'duo:pending:';
    this.graceMs = positiveIntOption('graceMs', options.graceMs, 3_600_000);
    this.#clock = options.clock ?? Date.now;
    this.#sealer = requireSealer(options, 'RedisPendingLoginStore');
    this.#onInvalid = options.onInvalidRecord;
    this.#indexKey = `${this.prefix}exp`;
    const full = effectivePrefix(connectionKeyPrefix(redis), this.prefix);
    assertClusterSafePrefix(redis, full, 'RedisPendingLoginStore');
    this.#recordPrefixForLua = `${full}l:`;
  }

  async put(login: PendingLogin, now = this.#clock()): Promise<void> {
    const { login: stored, json } = serializeForPut(login);
    const key = this.#recordKey(stored.state);
    const m = this.#sealer.seal(sealParts(key, stored));
    const ttlMs = Math.max(1, stored.expiresAt - now + this.graceMs);
    const created = await PUT_SCRIPT.run(
      this.redis,
      [this.#indexKey, key],
      [`${json.slice(0, -1)},"m":"${m}"}`, ttlMs, stored.expiresAt, stored.state],
    );
    if (created !== 1) {
      throw duplicateError();
    }
  }

  async take(state: string, now = this.#clock()): Promise<TakeResult> {
    if (!isPendingLoginState(state)) {
      return { status: 'missing' };
    }
    const raw = await TAKE_SCRIPT.run(
      this.redis,
      [this.#indexKey, this.#recordKey(state)],
      [state],
    );
    if (raw === null || raw === undefined) {
      return { status: 'missing' };
    }
    const login = await this.#readBack(state, raw);
    return login ? takeResult(login, now) : { status: 'missing' };
  }

  async sweepExpired(now = this.#clock(), limit?: number): Promise<PendingLogin[]> {
    const max = sweepLimit(limit);
    const raw = await SWEEP_SCRIPT.run(
      this.redis,
      [this.#indexKey],
      [now, max, this.#recordPrefixForLua],
    );
    if (!Array.isArray(raw)) {
      return [];
    }
    const out: PendingLogin[] = [];
    for (let i = 0; i + 1 < raw.length; i += 2) {
      const state: unknown = raw[i];
      const login = typeof state === 'string' ? await this.#readBack(state, raw[i + 1]) : undefined;
      if (login) {
        out.push(login);
      }
    }
    return out;
  }

  count(): Promise<number> {
    return this.redis.zcard(this.#indexKey);
  }

  #recordKey(state: string): string {
    return `${this.prefix}l:${state}`;
  }

  // The record has already been removed from Redis: a bad one is reported exactly once.
  #readBack(state: string, raw: unknown): Promise<PendingLogin | undefined> {
    const record =
      typeof raw === 'string' && raw.length <= PENDING_LOGIN_MAX_RECORD_BYTES + 64
        ? parseJson(raw)
        : undefined;
    return openSealed(this.#sealer, this.#onInvalid, this.#recordKey(state), state, record);
  }
}
