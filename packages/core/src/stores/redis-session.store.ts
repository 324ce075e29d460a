import {
  reportInvalid,
  requireSealer,
  type InvalidStoreRecordHandler,
  type SealVerdict,
  type StoreRecordSealer,
} from './record-seal.js';
import {
  assertClusterSafePrefix,
  connectionKeyPrefix,
  RedisScript,
  scanKeys,
} from './redis-script.js';
import { VerifiedMemo } from '../verified-memo.js';
import type { DuoRedisConnection } from './redis-connection.js';
import {
  assemble,
  assembleLazy,
  coreJson,
  expiryReason,
  formatTimes,
  generateSessionId,
  hashSessionId,
  invalidSession,
  isSessionHandle,
  isSessionId,
  newTimes,
  normalizeTimeouts,
  parseCore,
  readBack,
  type IdentityMemo,
  sealParts,
  serializeData,
  summarize,
  type NormalizedTimeouts,
  type SessionRecordParts,
  type SessionCore,
  type SessionTimes,
} from './session-record.js';
import type {
  MfaSession,
  NewMfaSession,
  SessionLookup,
  SessionStore,
  SessionSummary,
  SessionTimeoutOptions,
} from './session-store.interface.js';
import { effectivePrefix, escapeGlob, sha256Base64Url } from './store-validation.js';

// Session hash fields: c = identity JSON (with the id hash h), t = "lastSeenAt,idleExpiresAt,
// absoluteExpiresAt", d = data JSON, u = the per-user index suffix, m = MAC over the key name and
// c, t, d, u (computed in Node: Redis never holds the key). Every write replaces m, and only if m
// is still the one the writer read (compare-and-set), so concurrent writers never leave a record
// whose MAC does not match, and a stale writer never overwrites a newer record.
// KEYS[1] session, KEYS[2] user index; ARGV c, t, d, ttl, id hash, index ttl, session-key prefix,
// user suffix, m.
const CREATE_LUA = `
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], 'c', ARGV[1], 't', ARGV[2], 'd', ARGV[3], 'u', ARGV[8], 'm', ARGV[9])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
if redis.call('SCARD', KEYS[2]) >= 64 then
  for _, m in ipairs(redis.call('SMEMBERS', KEYS[2])) do
    if not string.match(m, '^[A-Za-z0-9_-]+$') or redis.call('EXISTS', ARGV[7] .. m) == 0 then
      redis.call('SREM', KEYS[2], m)
    end
  end
end
redis.call('SADD', KEYS[2], ARGV[5])
if redis.call('PTTL', KEYS[2]) < tonumber(ARGV[6]) then redis.call('PEXPIRE', KEYS[2], ARGV[6]) end
return 1
`;
// KEYS[1] session; ARGV m as read, new t, new m, ttl. -1: gone; 0: changed meanwhile; 1: touched.
const TOUCH_LUA = `
local cur = redis.call('HGET', KEYS[1], 'm')
if not cur then return -1 end
if cur ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 't', ARGV[2], 'm', ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return 1
`;
// Deletes a session only if nobody wrote it since it was read (expired, or failing its MAC).
// KEYS[1]; ARGV m as read ('' when it had none), user-index prefix, id hash. 1: deleted by us;
// 0: already gone; -1: changed meanwhile.
const EXPIRE_LUA = `
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local cur = redis.call('HGET', KEYS[1], 'm') or ''
if cur ~= ARGV[1] then return -1 end
local u = redis.call('HGET', KEYS[1], 'u')
redis.call('DEL', KEYS[1])
if u and string.match(u, '^[A-Za-z0-9_-]+$') then redis.call('SREM', ARGV[2] .. u, ARGV[3]) end
return 1
`;
// KEYS[1] session; ARGV m as read, data JSON, new m. -1: gone; 0: changed meanwhile; 1: written.
const UPDATE_LUA = `
local cur = redis.call('HGET', KEYS[1], 'm')
if not cur then return -1 end
if cur ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'd', ARGV[2], 'm', ARGV[3])
return 1
`;
// KEYS[1] session; ARGV user-index prefix, id hash.
const DESTROY_LUA = `
local u = redis.call('HGET', KEYS[1], 'u')
local n = redis.call('DEL', KEYS[1])
if u and string.match(u, '^[A-Za-z0-9_-]+$') then redis.call('SREM', ARGV[1] .. u, ARGV[2]) end
return n
`;
// KEYS[1] user index; ARGV session-key prefix.
const DESTROY_USER_LUA = `
local n = 0
for _, m in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  if string.match(m, '^[A-Za-z0-9_-]+$') then n = n + redis.call('DEL', ARGV[1] .. m) end
end
redis.call('DEL', KEYS[1])
return n
`;
// Deletes one session only if it belongs to the user (its u field), and drops it from the index.
// KEYS[1] session, KEYS[2] user index; ARGV user suffix, id hash. 1: deleted; 0: absent or not theirs.
const DESTROY_HANDLE_LUA = `
if redis.call('HGET', KEYS[1], 'u') ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1])
redis.call('SREM', KEYS[2], ARGV[2])
return 1
`;
const CREATE_SCRIPT = new RedisScript(CREATE_LUA);
const DESTROY_HANDLE_SCRIPT = new RedisScript(DESTROY_HANDLE_LUA);
const TOUCH_SCRIPT = new RedisScript(TOUCH_LUA);
const EXPIRE_SCRIPT = new RedisScript(EXPIRE_LUA);
const UPDATE_SCRIPT = new RedisScript(UPDATE_LUA);
const DESTROY_SCRIPT = new RedisScript(DESTROY_LUA);
const DESTROY_USER_SCRIPT = new RedisScript(DESTROY_USER_LUA);

/** How often a compare-and-set write that lost to another writer is tried again. */
const CAS_TRIES = 5;

export interface RedisSessionStoreOptions extends SessionTimeoutOptions {
  /**
   * Prefix of every key. On Redis Cluster it must hold a hash tag (`{duo}:sess:`): scripts touch
   * several keys, which Cluster allows only within one slot. Checked at construction.
   * @default 'duo:sess:'
   */
  prefix?: string;
  /** Seals and checks every session; build it from the secret all instances share. Required. */
  sealer: StoreRecordSealer;
}

/** A session hash read back and checked: its raw fields, the parsed record, and the key that sealed it. */
/** A session read back and checked; its data stays JSON (`fields.d`) until someone reads it. */
interface ReadSession extends Omit<SessionRecordParts, 'data'> {
  fields: Record<string, string>;
  verdict: SealVerdict;
}

/** A record that passed every check, remembered by its MAC with the exact text it had. */
interface CheckedRecord {
  c: string;
  t: string;
  d: string;
  u: string;
  core: SessionCore;
  times: SessionTimes;
  verdict: SealVerdict;
}

/**
 * Sessions in Redis (one node, or a Cluster), shared by all instances. Layout: a hash at
 * `<prefix>s:<sha256(id)>` (fields c, t, d, u, m; PX TTL = the nearer of idle and absolute expiry)
 * and a set `<prefix>u:<sha256(username)>` of id hashes for `listForUser`, `destroyByHandle` and
 * `destroyAllForUser` (TTL pushed out to
 * the longest absolute expiry; stale members pruned). `m` is a MAC over the key name and every
 * other field (StoreRecordSealer): a session whose MAC fails is deleted, reported once through
 * `onInvalidRecord`, and answers missing. Touch and update rewrite `m` with a compare-and-set on
 * the `m` they read, so no write is lost or left unsealed, and none can bring a destroyed session
 * back. `count` SCANs the session keys (on every master of a Cluster; O(n), for metrics and tests).
 * The connection belongs to the caller; its `keyPrefix` is honoured.
 */
export class RedisSessionStore implements SessionStore {
  readonly prefix: string;
  readonly #t: NormalizedTimeouts;
  readonly #sealer: StoreRecordSealer;
  /** Identities of the sessions in active use, parsed and checked once (see readBack). */
  readonly #identities: IdentityMemo = new VerifiedMemo(4096);
  /**
   * Records read back unchanged since their last full check (the same MAC, key name and text)
   * skip the MAC, the parse and the shape check: a session read on every request is checked once
   * per version (every write, a touch included, makes a new version).
   */
  readonly #records = new VerifiedMemo<CheckedRecord>(4096);
  readonly #onInvalid: InvalidStoreRecordHandler | undefined;
  readonly #luaSessionPrefix: string;
  readonly #luaUserPrefix: string;

  constructor(
    private readonly redis: DuoRedisConnection,
    options: RedisSessionStoreOptions,
  ) {
    this.prefix = options.prefix ?? 'duo:sess:';
    this.#t = normalizeTimeouts(options);
    this.#sealer = requireSealer(options, 'RedisSessionStore');
    this.#onInvalid = options.onInvalidRecord;
    const full = effectivePrefix(connectionKeyPrefix(redis), this.prefix);
    assertClusterSafePrefix(redis, full, 'RedisSessionStore');
    this.#luaSessionPrefix = `${full}s:`;
    this.#luaUserPrefix = `${full}u:`;
  }

  async create(input: NewMfaSession, now = this.#t.clock()): Promise<MfaSession> {
    const core = parseCore(input);
    if (!core) {
      throw invalidSession();
    }
    const dataJson = serializeData(input.data);
    const times = newTimes(now, this.#t);
    const t = formatTimes(times);
    const userSuffix = sha256Base64Url(core.username);
    for (;;) {
      const id = generateSessionId();
      const hash = hashSessionId(id);
      const key = this.#sessionKey(hash);
      const c = coreJson(hash, core, times.createdAt);
      const created = await CREATE_SCRIPT.run(
        this.redis,
        [key, `${this.prefix}u:${userSuffix}`],
        [
          c,
          t,
          dataJson,
          this.#ttl(times, now),
          hash,
          Math.max(1, times.absoluteExpiresAt - now),
          this.#luaSessionPrefix,
          userSuffix,
          this.#sealer.seal(sealParts(key, c, t, dataJson, userSuffix)),
        ],
      );
      if (created === 1) {
        return assemble(id, core, times, JSON.parse(dataJson) as Record<string, unknown>);
      }
    }
  }

  async get(id: string, now = this.#t.clock()): Promise<SessionLookup> {
    if (!isSessionId(id)) {
      return { status: 'missing' };
    }
    const hash = hashSessionId(id);
    const key = this.#sessionKey(hash);
    for (let attempt = 0; attempt < CAS_TRIES; attempt++) {
      const read = await this.#read(hash);
      if (!read) {
        return { status: 'missing' };
      }
      const { fields, core, times, verdict } = read;
      const reason = expiryReason(times, now);
      if (reason) {
        const r = await EXPIRE_SCRIPT.run(this.redis, [key], [fields.m, this.#luaUserPrefix, hash]);
        if (r === 1) {
          return { status: 'expired', reason, session: assembleLazy(id, core, times, fields.d) };
        }
        if (r === 0) {
          return { status: 'missing' };
        }
        continue; // -1: another instance wrote it after our read; look again.
      }
      const due = now - times.lastSeenAt >= this.#t.touchIntervalMs && now > times.lastSeenAt;
      // Every write seals again; a record sealed with the previous secret is sealed anew now.
      if (!due && verdict === 'current') {
        return { status: 'active', session: assembleLazy(id, core, times, fields.d) };
      }
      const touched: SessionTimes = due
        ? { ...times, lastSeenAt: now, idleExpiresAt: now + this.#t.idleTimeoutMs }
        : times;
      const t = formatTimes(touched);
      const r = await TOUCH_SCRIPT.run(
        this.redis,
        [key],
        [
          fields.m,
          t,
          this.#sealer.seal(sealParts(key, fields.c, t, fields.d, fields.u)),
          this.#ttl(touched, now),
        ],
      );
      if (r === -1) {
        return { status: 'missing' };
      }
      if (r === 1) {
        return { status: 'active', session: assembleLazy(id, core, touched, fields.d) };
      }
      // 0: another instance wrote it after our read (a touch or a data update): read it again.
    }
    return { status: 'missing' };
  }

  async update(
    id: string,
    patch: Partial<Pick<MfaSession, 'data'>>,
    now = this.#t.clock(),
  ): Promise<boolean> {
    const newData = patch.data === undefined ? undefined : serializeData(patch.data);
    if (!isSessionId(id)) {
      return false;
    }
    const hash = hashSessionId(id);
    const key = this.#sessionKey(hash);
    for (let attempt = 0; attempt < CAS_TRIES; attempt++) {
      const read = await this.#read(hash);
      if (!read || expiryReason(read.times, now)) {
        return false;
      }
      const { fields } = read;
      const d = newData ?? fields.d;
      const r = await UPDATE_SCRIPT.run(
        this.redis,
        [key],
        [fields.m, d, this.#sealer.seal(sealParts(key, fields.c, fields.t, d, fields.u))],
      );
      if (r !== 0) {
        return r === 1;
      }
    }
    return false;
  }

  async destroy(id: string): Promise<boolean> {
    if (!isSessionId(id)) {
      return false;
    }
    const hash = hashSessionId(id);
    const n = await DESTROY_SCRIPT.run(
      this.redis,
      [this.#sessionKey(hash)],
      [this.#luaUserPrefix, hash],
    );
    return n === 1;
  }

  async destroyAllForUser(username: string): Promise<number> {
    if (typeof username !== 'string' || username.length === 0) {
      return 0;
    }
    const n = await DESTROY_USER_SCRIPT.run(
      this.redis,
      [this.#userKey(username)],
      [this.#luaSessionPrefix],
    );
    return typeof n === 'number' ? n : 0;
  }

  async listForUser(username: string, now = this.#t.clock()): Promise<SessionSummary[]> {
    if (typeof username !== 'string' || username.length === 0) {
      return [];
    }
    const members = await this.redis.smembers(this.#userKey(username));
    // Each record is read and checked as `get` reads it (MAC first); nothing is touched.
    const reads = await Promise.all(
      members.filter(isSessionHandle).map(async (hash) => ({ hash, read: await this.#read(hash) })),
    );
    const out: SessionSummary[] = [];
    for (const { hash, read } of reads) {
      if (read && read.core.username === username && !expiryReason(read.times, now)) {
        out.push(summarize(hash, read.core, read.times));
      }
    }
    return out.sort((a, b) => b.createdAt - a.createdAt);
  }

  async destroyByHandle(username: string, handle: string): Promise<boolean> {
    if (typeof username !== 'string' || username.length === 0 || !isSessionHandle(handle)) {
      return false;
    }
    const n = await DESTROY_HANDLE_SCRIPT.run(
      this.redis,
      [this.#sessionKey(handle), this.#userKey(username)],
      [sha256Base64Url(username), handle],
    );
    return n === 1;
  }

  async count(): Promise<number> {
    return (await scanKeys(this.redis, `${escapeGlob(this.#luaSessionPrefix)}*`)).length;
  }

  /**
   * The session hash, checked: MAC first (over the exact stored text), then shape. A session that
   * fails is deleted, unless someone rewrote it meanwhile, and reported by whoever deleted it: once.
   */
  async #read(hash: string): Promise<ReadSession | undefined> {
    const key = this.#sessionKey(hash);
    const fields = await this.redis.hgetall(key);
    if (Object.keys(fields).length === 0) {
      return undefined;
    }
    const { c, t, d, u, m } = fields;
    // The same record as last time (same MAC, key and text, field by field): checked already.
    const known = typeof m === 'string' ? this.#records.get(m, key) : undefined;
    if (known && known.c === c && known.t === t && known.d === d && known.u === u) {
      return { fields, core: known.core, times: known.times, verdict: known.verdict };
    }
    const verdict =
      typeof c === 'string' &&
      typeof t === 'string' &&
      typeof d === 'string' &&
      typeof u === 'string'
        ? this.#sealer.verify(sealParts(key, c, t, d, u), m)
        : undefined;
    const parsed = verdict ? readBack(hash, fields, this.#identities) : undefined;
    if (verdict && parsed) {
      const core = parsed.core;
      const times = Object.freeze({ ...parsed.times });
      this.#records.remember(m, key, { c, t, d, u, core, times, verdict });
      return { fields, core, times, verdict };
    }
    const r = await EXPIRE_SCRIPT.run(this.redis, [key], [m ?? '', this.#luaUserPrefix, hash]);
    if (r === 1) {
      await reportInvalid(this.#onInvalid, { store: 'session', reason: verdict ? 'shape' : 'mac' });
    }
    return undefined;
  }

  /** The per-user index: same prefix (and so, on a Cluster, same hash-tag slot) as the sessions. */
  #userKey(username: string): string {
    return `${this.prefix}u:${sha256Base64Url(username)}`;
  }

  #sessionKey(hash: string): string {
    return `${this.prefix}s:${hash}`;
  }

  #ttl(t: SessionTimes, now: number): number {
    return Math.max(1, Math.min(t.idleExpiresAt, t.absoluteExpiresAt) - now);
  }
}
