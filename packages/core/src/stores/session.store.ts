import { randomBytes } from 'node:crypto';

import {
  MEMORY_RECORDS,
  processLocalSealer,
  reportInvalid,
  requireSealer,
  type InvalidStoreRecordHandler,
  type SealVerdict,
  type StoreRecordSealer,
  type StoreSealOptions,
} from './record-seal.js';
import {
  assertClusterSafePrefix,
  connectionKeyPrefix,
  RedisScript,
  scanKeys,
  type RedisConnection,
} from './redis-script.js';
import { DuoStoreError } from './store.errors.js';
import {
  effectivePrefix,
  escapeGlob,
  isBase64Url,
  isCleanString,
  isEpoch,
  isPlainObject,
  parseJson,
  positiveIntOption,
  settle,
  sha256Base64Url,
  utf8Length,
} from './store-validation.js';

/**
 * A signed-on user's server-side session. The raw `id` is the cookie value and is never stored:
 * stores key sessions (and per-user indexes) by `sha256(id)`.
 */
export interface MfaSession {
  /** The raw session id (cookie value): 256 bits from the CSPRNG, 43 base64url characters. */
  id: string;
  username: string;
  /** True only when Duo MFA really completed; false for a fail-open session. */
  mfa: boolean;
  /** True when the session was opened because Duo was unreachable and failmode is open. */
  failOpen: boolean;
  txid?: string;
  factor?: string;
  /** Duo's `auth_time`, in seconds. */
  authTime?: number;
  groups: string[];
  /** ms since the epoch. */
  createdAt: number;
  /** ms since the epoch; moves at most once per `touchIntervalMs`. */
  lastSeenAt: number;
  /** lastSeenAt + idleTimeoutMs. */
  idleExpiresAt: number;
  /** createdAt + absoluteTimeoutMs. */
  absoluteExpiresAt: number;
  /** Small app data (a CSRF token, the last MFA result summary): a JSON object of at most 16 KiB. */
  data: Record<string, unknown>;
}

/** What `create` takes: the store adds the id and the timestamps. */
export type NewMfaSession = Omit<
  MfaSession,
  'id' | 'createdAt' | 'lastSeenAt' | 'idleExpiresAt' | 'absoluteExpiresAt'
>;

export type SessionExpiryReason = 'idle' | 'absolute';

export type SessionLookup =
  | { status: 'active'; session: MfaSession }
  /** Deleted now, reported once (absolute wins when both apply). */
  | { status: 'expired'; session: MfaSession; reason: SessionExpiryReason }
  /** Unknown, destroyed, evicted, already reported expired, or unreadable. */
  | { status: 'missing' };

export interface SessionStore {
  /** Generates the id and stores the session. Throws DuoStoreError on a malformed input. */
  create(input: NewMfaSession, now?: number): Promise<MfaSession>;
  /**
   * Looks a session up; an expired one is deleted and reported once. An active one has its idle
   * expiry slid forward ("touch"), at most once per `touchIntervalMs`.
   */
  get(id: string, now?: number): Promise<SessionLookup>;
  /** Replaces the app data of a live session; false when it is missing or expired. */
  update(id: string, patch: Partial<Pick<MfaSession, 'data'>>, now?: number): Promise<boolean>;
  /** Logout: true when a session was deleted. Afterwards `get` answers missing on every instance. */
  destroy(id: string): Promise<boolean>;
  /** Deletes every session of `username` (admin revocation, ASVS 7.4.2); answers how many. */
  destroyAllForUser(username: string): Promise<number>;
  /** Sessions held (expired ones not yet reported or dropped included). */
  count(): Promise<number>;
  close?(): Promise<void>;
}

export interface SessionTimeoutOptions extends StoreSealOptions {
  /** A session unused this long expires. @default 900_000 (15 min) */
  idleTimeoutMs?: number;
  /** A session expires this long after creation, used or not. @default 28_800_000 (8 h) */
  absoluteTimeoutMs?: number;
  /**
   * The idle expiry is slid at most once per this interval, to keep writes low; a session may thus
   * expire up to this much before `idleTimeoutMs` of real idleness. Must be below idleTimeoutMs.
   * @default 60_000, or half of idleTimeoutMs when that is shorter
   */
  touchIntervalMs?: number;
  /** Clock used when `now` is not passed. @default Date.now */
  clock?: () => number;
}

/** Largest serialized `data` accepted (and read back). */
export const SESSION_MAX_DATA_BYTES = 16 * 1024;
export const SESSION_ID_BYTES = 32;

export const SESSION_BOUNDS = {
  username: { max: 255 },
  txid: { max: 128 },
  factor: { max: 64 },
  groups: { maxItems: 256, maxLength: 256 },
} as const;

/** True when `id` has the shape of an id `create` generates. */
export function isSessionId(id: unknown): id is string {
  return isBase64Url(id, 43, 43);
}

/** Generates a session id: 256 bits from the CSPRNG, base64url. */
export function generateSessionId(): string {
  return randomBytes(SESSION_ID_BYTES).toString('base64url');
}

/** The key a store files a session under: base64url SHA-256 of the raw id. */
export function hashSessionId(id: string): string {
  return sha256Base64Url(id);
}

interface SessionCore {
  username: string;
  mfa: boolean;
  failOpen: boolean;
  txid?: string;
  factor?: string;
  authTime?: number;
  groups: string[];
}

interface SessionTimes {
  createdAt: number;
  lastSeenAt: number;
  idleExpiresAt: number;
  absoluteExpiresAt: number;
}

function optionalClean(value: unknown, max: number): boolean {
  return value === undefined || isCleanString(value, 1, max);
}

/** Checks the identity part of a session (input or read back) and copies the known fields. */
function parseCore(value: unknown): SessionCore | undefined {
  if (!isPlainObject(value)) {
    return undefined;
  }
  const v = value;
  const g = SESSION_BOUNDS.groups;
  if (
    !isCleanString(v.username, 1, SESSION_BOUNDS.username.max) ||
    typeof v.mfa !== 'boolean' ||
    typeof v.failOpen !== 'boolean' ||
    (v.mfa && v.failOpen) ||
    !optionalClean(v.txid, SESSION_BOUNDS.txid.max) ||
    !optionalClean(v.factor, SESSION_BOUNDS.factor.max) ||
    (v.authTime !== undefined && !isEpoch(v.authTime)) ||
    !Array.isArray(v.groups) ||
    v.groups.length > g.maxItems ||
    !v.groups.every((x) => isCleanString(x, 1, g.maxLength))
  ) {
    return undefined;
  }
  const core: SessionCore = {
    username: v.username,
    mfa: v.mfa,
    failOpen: v.failOpen,
    groups: [...v.groups],
  };
  if (v.txid !== undefined) {
    core.txid = v.txid as string;
  }
  if (v.factor !== undefined) {
    core.factor = v.factor as string;
  }
  if (v.authTime !== undefined) {
    core.authTime = v.authTime;
  }
  return core;
}

function invalidSession(): DuoStoreError {
  return new DuoStoreError(
    'invalid_record',
    'The session is malformed: check username, mfa/failOpen (never both true), txid, factor, ' +
      'authTime (seconds) and groups (strings)',
  );
}

/** Serializes app data; throws when it is not a small JSON object. */
function serializeData(data: unknown): string {
  if (!isPlainObject(data)) {
    throw new DuoStoreError('invalid_record', 'Session data must be a plain JSON object');
  }
  let json: string;
  try {
    json = JSON.stringify(data);
  } catch (err) {
    throw new DuoStoreError('invalid_record', 'Session data must be JSON-serializable', {
      cause: err,
    });
  }
  if (utf8Length(json) > SESSION_MAX_DATA_BYTES) {
    throw new DuoStoreError(
      'record_too_large',
      `Session data exceeds ${SESSION_MAX_DATA_BYTES} bytes once serialized`,
    );
  }
  return json;
}

function parseData(json: unknown): Record<string, unknown> | undefined {
  if (typeof json !== 'string' || utf8Length(json) > SESSION_MAX_DATA_BYTES) {
    return undefined;
  }
  const data = parseJson(json);
  return isPlainObject(data) ? data : undefined;
}

function validTimes(t: SessionTimes): boolean {
  return (
    isEpoch(t.createdAt) &&
    isEpoch(t.lastSeenAt) &&
    isEpoch(t.idleExpiresAt) &&
    isEpoch(t.absoluteExpiresAt) &&
    t.lastSeenAt >= t.createdAt &&
    t.idleExpiresAt > t.lastSeenAt &&
    t.absoluteExpiresAt > t.createdAt
  );
}

function expiryReason(t: SessionTimes, now: number): SessionExpiryReason | undefined {
  if (now >= t.absoluteExpiresAt) {
    return 'absolute';
  }
  return now >= t.idleExpiresAt ? 'idle' : undefined;
}

interface NormalizedTimeouts {
  idleTimeoutMs: number;
  absoluteTimeoutMs: number;
  touchIntervalMs: number;
  clock: () => number;
}

function normalizeTimeouts(options: SessionTimeoutOptions): NormalizedTimeouts {
  const idleTimeoutMs = positiveIntOption('idleTimeoutMs', options.idleTimeoutMs, 15 * 60_000);
  const absoluteTimeoutMs = positiveIntOption(
    'absoluteTimeoutMs',
    options.absoluteTimeoutMs,
    8 * 3_600_000,
  );
  // A minute, or half the idle timeout when that is shorter (an idle timeout of 60 s must still boot).
  const touchIntervalMs =
    options.touchIntervalMs ?? Math.min(60_000, Math.floor(idleTimeoutMs / 2));
  if (!Number.isSafeInteger(touchIntervalMs) || touchIntervalMs < 0) {
    throw new RangeError('touchIntervalMs must be a non-negative integer');
  }
  if (touchIntervalMs >= idleTimeoutMs) {
    throw new RangeError('touchIntervalMs must be below idleTimeoutMs');
  }
  return { idleTimeoutMs, absoluteTimeoutMs, touchIntervalMs, clock: options.clock ?? Date.now };
}

function newTimes(now: number, t: NormalizedTimeouts): SessionTimes {
  return {
    createdAt: now,
    lastSeenAt: now,
    idleExpiresAt: now + t.idleTimeoutMs,
    absoluteExpiresAt: now + t.absoluteTimeoutMs,
  };
}

function assemble(
  id: string,
  core: SessionCore,
  times: SessionTimes,
  data: Record<string, unknown>,
): MfaSession {
  return { id, ...core, groups: [...core.groups], ...times, data };
}

/**
 * The identity JSON of a session (field `c` in Redis): its id hash, every identity field in a fixed
 * order, and its creation time. The MAC covers this exact text.
 */
function coreJson(hash: string, core: SessionCore, createdAt: number): string {
  return JSON.stringify({
    v: 1,
    h: hash,
    username: core.username,
    mfa: core.mfa,
    failOpen: core.failOpen,
    txid: core.txid,
    factor: core.factor,
    authTime: core.authTime,
    groups: core.groups,
    createdAt,
  });
}

/** What a session's MAC covers, in a fixed order: kind, key name, identity, times, data, user index. */
function sealParts(keyName: string, c: string, t: string, d: string, u: string): string[] {
  return ['session/v1', keyName, c, t, d, u];
}

/**
 * A session whose `data` is parsed from JSON on first read: guards that only check identity and
 * timestamps never pay for it, and every caller still gets its own copy. (An accessor in the
 * literal keeps the object's shape fast; redefining the property per session did not.)
 */
function assembleLazy(
  id: string,
  core: SessionCore,
  times: SessionTimes,
  dataJson: string,
): MfaSession {
  let data: Record<string, unknown> | undefined;
  return {
    id,
    ...core,
    groups: [...core.groups],
    ...times,
    get data(): Record<string, unknown> {
      return (data ??= JSON.parse(dataJson) as Record<string, unknown>);
    },
    set data(value: Record<string, unknown>) {
      data = value;
    },
  };
}

interface MemoryEntry {
  core: SessionCore;
  times: SessionTimes;
  dataJson: string;
  /** MAC over the whole entry and its key (see sealParts), renewed on every write. */
  m: string;
}

export interface MemorySessionStoreOptions extends SessionTimeoutOptions {
  /**
   * Most sessions held. When full, `create` drops every expired session, or, when none has
   * expired, evicts the one closest to its expiry (an O(n) scan, only when full).
   * @default 100_000
   */
  maxEntries?: number;
}

/**
 * Sessions in this process's memory: for one instance (or sticky sessions). Each entry is sealed
 * like a Redis one and checked on every read.
 */
export class MemorySessionStore implements SessionStore {
  readonly maxEntries: number;
  readonly #t: NormalizedTimeouts;
  readonly #sealer: StoreRecordSealer;
  readonly #onInvalid: InvalidStoreRecordHandler | undefined;
  readonly #sessions = new Map<string, MemoryEntry>();
  readonly #byUser = new Map<string, Set<string>>();

  constructor(options: MemorySessionStoreOptions = {}) {
    this.maxEntries = positiveIntOption('maxEntries', options.maxEntries, 100_000);
    this.#t = normalizeTimeouts(options);
    this.#sealer = processLocalSealer(options);
    this.#onInvalid = options.onInvalidRecord;
  }

  /** The raw entries, keyed by id hash: for tests that play an attacker who edits the store. */
  get [MEMORY_RECORDS](): Map<string, MemoryEntry> {
    return this.#sessions;
  }

  create(input: NewMfaSession, now = this.#t.clock()): Promise<MfaSession> {
    return settle(() => {
      const core = parseCore(input);
      if (!core) {
        throw invalidSession();
      }
      const dataJson = serializeData(input.data);
      if (this.#sessions.size >= this.maxEntries) {
        this.#makeRoom(now);
      }
      let id = generateSessionId();
      while (this.#sessions.has(hashSessionId(id))) {
        id = generateSessionId();
      }
      const hash = hashSessionId(id);
      const times = newTimes(now, this.#t);
      const entry: MemoryEntry = { core, times, dataJson, m: '' };
      entry.m = this.#seal(hash, entry);
      this.#sessions.set(hash, entry);
      let set = this.#byUser.get(core.username);
      if (!set) {
        set = new Set();
        this.#byUser.set(core.username, set);
      }
      set.add(hash);
      return assembleLazy(id, core, { ...times }, dataJson);
    });
  }

  async get(id: string, now = this.#t.clock()): Promise<SessionLookup> {
    if (!isSessionId(id)) {
      return { status: 'missing' };
    }
    const hash = hashSessionId(id);
    const found = await this.#verified(hash);
    if (!found) {
      return { status: 'missing' };
    }
    const { entry, verdict } = found;
    const reason = expiryReason(entry.times, now);
    if (reason) {
      this.#delete(hash);
      return { status: 'expired', reason, session: this.#toSession(id, entry) };
    }
    const due =
      now - entry.times.lastSeenAt >= this.#t.touchIntervalMs && now > entry.times.lastSeenAt;
    if (due) {
      entry.times.lastSeenAt = now;
      entry.times.idleExpiresAt = now + this.#t.idleTimeoutMs;
    }
    // Every write seals again; a record sealed with the previous secret is sealed anew now.
    if (due || verdict === 'previous') {
      entry.m = this.#seal(hash, entry);
    }
    return { status: 'active', session: this.#toSession(id, entry) };
  }

  async update(
    id: string,
    patch: Partial<Pick<MfaSession, 'data'>>,
    now = this.#t.clock(),
  ): Promise<boolean> {
    const dataJson = patch.data === undefined ? undefined : serializeData(patch.data);
    const hash = isSessionId(id) ? hashSessionId(id) : undefined;
    const entry = hash === undefined ? undefined : (await this.#verified(hash))?.entry;
    if (!entry || hash === undefined || expiryReason(entry.times, now)) {
      return false;
    }
    if (dataJson !== undefined) {
      entry.dataJson = dataJson;
    }
    entry.m = this.#seal(hash, entry);
    return true;
  }

  destroy(id: string): Promise<boolean> {
    return settle(() => isSessionId(id) && this.#delete(hashSessionId(id)));
  }

  destroyAllForUser(username: string): Promise<number> {
    return settle(() => {
      const set = this.#byUser.get(username);
      if (!set) {
        return 0;
      }
      let n = 0;
      for (const hash of [...set]) {
        n += this.#delete(hash) ? 1 : 0;
      }
      return n;
    });
  }

  count(): Promise<number> {
    return Promise.resolve(this.#sessions.size);
  }

  close(): Promise<void> {
    this.#sessions.clear();
    this.#byUser.clear();
    return Promise.resolve();
  }

  // The entry once its MAC is checked; a bad one is deleted (so reported once) and counts as absent.
  async #verified(hash: string): Promise<{ entry: MemoryEntry; verdict: SealVerdict } | undefined> {
    const entry = this.#sessions.get(hash);
    if (!entry) {
      return undefined;
    }
    const verdict = this.#sealer.verify(this.#parts(hash, entry), entry.m);
    if (!verdict) {
      this.#delete(hash);
      await reportInvalid(this.#onInvalid, { store: 'session', reason: 'mac' });
      return undefined;
    }
    return { entry, verdict };
  }

  #parts(hash: string, e: MemoryEntry): string[] {
    return sealParts(
      `memory:sess:s:${hash}`,
      coreJson(hash, e.core, e.times.createdAt),
      formatTimes(e.times),
      e.dataJson,
      sha256Base64Url(e.core.username),
    );
  }

  #seal(hash: string, entry: MemoryEntry): string {
    return this.#sealer.seal(this.#parts(hash, entry));
  }

  #toSession(id: string, entry: MemoryEntry): MfaSession {
    return assembleLazy(id, entry.core, { ...entry.times }, entry.dataJson);
  }

  #delete(hash: string): boolean {
    const entry = this.#sessions.get(hash);
    if (!entry) {
      return false;
    }
    this.#sessions.delete(hash);
    const set = this.#byUser.get(entry.core.username);
    set?.delete(hash);
    if (set?.size === 0) {
      this.#byUser.delete(entry.core.username);
    }
    return true;
  }

  #makeRoom(now: number): void {
    const expired: string[] = [];
    let victim: string | undefined;
    let victimEnd = Infinity;
    for (const [hash, { times }] of this.#sessions) {
      if (expiryReason(times, now)) {
        expired.push(hash);
        continue;
      }
      const end = Math.min(times.idleExpiresAt, times.absoluteExpiresAt);
      if (end < victimEnd) {
        victimEnd = end;
        victim = hash;
      }
    }
    if (expired.length > 0) {
      expired.forEach((hash) => this.#delete(hash));
    } else if (victim !== undefined) {
      this.#delete(victim);
    }
  }
}

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
const CREATE_SCRIPT = new RedisScript(CREATE_LUA);
const TOUCH_SCRIPT = new RedisScript(TOUCH_LUA);
const EXPIRE_SCRIPT = new RedisScript(EXPIRE_LUA);
const UPDATE_SCRIPT = new RedisScript(UPDATE_LUA);
const DESTROY_SCRIPT = new RedisScript(DESTROY_LUA);
const DESTROY_USER_SCRIPT = new RedisScript(DESTROY_USER_LUA);

const TIMES = /^(\d{1,16}),(\d{1,16}),(\d{1,16})$/;

function formatTimes(t: SessionTimes): string {
  return `${t.lastSeenAt},${t.idleExpiresAt},${t.absoluteExpiresAt}`;
}

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
interface ReadSession {
  fields: Record<string, string>;
  core: SessionCore;
  times: SessionTimes;
  data: Record<string, unknown>;
  verdict: SealVerdict;
}

/**
 * Sessions in Redis (one node, or a Cluster), shared by all instances. Layout: a hash at
 * `<prefix>s:<sha256(id)>` (fields c, t, d, u, m; PX TTL = the nearer of idle and absolute expiry)
 * and a set `<prefix>u:<sha256(username)>` of id hashes for `destroyAllForUser` (TTL pushed out to
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
  readonly #onInvalid: InvalidStoreRecordHandler | undefined;
  readonly #luaSessionPrefix: string;
  readonly #luaUserPrefix: string;

  constructor(
    private readonly redis: RedisConnection,
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
      const { fields, core, times, data, verdict } = read;
      const reason = expiryReason(times, now);
      if (reason) {
        const r = await EXPIRE_SCRIPT.run(this.redis, [key], [fields.m, this.#luaUserPrefix, hash]);
        if (r === 1) {
          return { status: 'expired', reason, session: assemble(id, core, times, data) };
        }
        if (r === 0) {
          return { status: 'missing' };
        }
        continue; // -1: another instance wrote it after our read; look again.
      }
      const due = now - times.lastSeenAt >= this.#t.touchIntervalMs && now > times.lastSeenAt;
      // Every write seals again; a record sealed with the previous secret is sealed anew now.
      if (!due && verdict === 'current') {
        return { status: 'active', session: assemble(id, core, times, data) };
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
        return { status: 'active', session: assemble(id, core, touched, data) };
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
      [`${this.prefix}u:${sha256Base64Url(username)}`],
      [this.#luaSessionPrefix],
    );
    return typeof n === 'number' ? n : 0;
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
    const verdict =
      typeof c === 'string' &&
      typeof t === 'string' &&
      typeof d === 'string' &&
      typeof u === 'string'
        ? this.#sealer.verify(sealParts(key, c, t, d, u), m)
        : undefined;
    const parsed = verdict ? readBack(hash, fields) : undefined;
    if (verdict && parsed) {
      return { fields, ...parsed, verdict };
    }
    const r = await EXPIRE_SCRIPT.run(this.redis, [key], [m ?? '', this.#luaUserPrefix, hash]);
    if (r === 1) {
      await reportInvalid(this.#onInvalid, { store: 'session', reason: verdict ? 'shape' : 'mac' });
    }
    return undefined;
  }

  #sessionKey(hash: string): string {
    return `${this.prefix}s:${hash}`;
  }

  #ttl(t: SessionTimes, now: number): number {
    return Math.max(1, Math.min(t.idleExpiresAt, t.absoluteExpiresAt) - now);
  }
}

/** Parses a session hash whose MAC has passed (the shape is still checked: defence in depth). */
function readBack(
  hash: string,
  fields: Record<string, string>,
): Omit<ReadSession, 'fields' | 'verdict'> | undefined {
  const c = parseJson(fields.c);
  if (!isPlainObject(c) || c.v !== 1 || c.h !== hash || !isEpoch(c.createdAt)) {
    return undefined;
  }
  const core = parseCore(c);
  const m = typeof fields.t === 'string' ? TIMES.exec(fields.t) : null;
  const data = parseData(fields.d);
  if (!core || !m || !data || fields.u !== sha256Base64Url(core.username)) {
    return undefined;
  }
  const times: SessionTimes = {
    createdAt: c.createdAt,
    lastSeenAt: Number(m[1]),
    idleExpiresAt: Number(m[2]),
    absoluteExpiresAt: Number(m[3]),
  };
  return validTimes(times) ? { core, times, data } : undefined;
}
