import {
  MEMORY_RECORDS,
  processLocalSealer,
  reportInvalid,
  requireSealer,
  type InvalidStoreRecordHandler,
  type SealPart,
  type StoreRecordSealer,
  type StoreSealOptions,
} from './record-seal.js';
import {
  assertClusterSafePrefix,
  connectionKeyPrefix,
  RedisScript,
  type RedisConnection,
} from './redis-script.js';
import { DuoStoreError, PendingLoginStoreFullError } from './store.errors.js';
import {
  effectivePrefix,
  isBase64Url,
  isCleanString,
  isEpoch,
  isPlainObject,
  parseJson,
  positiveIntOption,
  settle,
  utf8Length,
} from './store-validation.js';

/**
 * One sign-on in progress, between the redirect to Duo and the callback. Keyed by its `state`.
 *
 * The raw `state` is the key (in memory and in Redis): it is one-time, lives for minutes, and is
 * worthless without the browser-binding cookie (only its hash is stored) and Duo's code.
 */
export interface PendingLogin {
  /** The OIDC `state`: base64url, 22..1024 characters (we generate 43); the store key. */
  state: string;
  /** The OIDC `nonce` sent to Duo (16..1024 characters). */
  nonce: string;
  /** The user who started the sign-on (1..255 characters, no control characters). */
  username: string;
  /** Same-origin path to return to after MFA: starts with `/`, never `//` or `/\`. */
  returnTo: string;
  /** SHA-256 (base64url, 43 characters) of the browser-binding cookie value. */
  bindingHash: string;
  /** Creation time, ms since the epoch. */
  createdAt: number;
  /** End of the transaction, ms since the epoch (after createdAt). */
  expiresAt: number;
  /** At most 64 characters. */
  clientIp?: string;
  /** At most 1024 characters (`put` keeps the first 1024 of a longer one). */
  userAgent?: string;
  /** At most 128 characters, no control characters. */
  correlationId?: string;
}

export type TakeResult =
  | { status: 'ok'; login: PendingLogin }
  /** Existed but `now >= expiresAt`: consumed now, reported once. */
  | { status: 'expired'; login: PendingLogin }
  /** Unknown, already taken, already swept, or its stored record was unreadable. */
  | { status: 'missing' };

export interface PendingLoginStore {
  /**
   * Stores a new pending login. Throws `DuoStoreError` (`invalid_record`, `record_too_large`,
   * `duplicate`), or `PendingLoginStoreFullError` (memory) when the store is full after purging the
   * expired logins.
   */
  put(login: PendingLogin, now?: number): Promise<void>;
  /**
   * Atomic take-once: of any number of concurrent takes of one state (from any number of processes
   * with Redis) exactly one gets `ok` or `expired`; the others, and every later one, get `missing`.
   * A malformed `state` answers `missing` without touching the store.
   */
  take(state: string, now?: number): Promise<TakeResult>;
  /**
   * Removes and returns up to `limit` (default 1000) logins with `expiresAt <= now` that were never
   * taken, oldest expiry first. Each is returned exactly once across all instances and never also
   * by `take` (for the `abandoned` audit).
   */
  sweepExpired(now?: number, limit?: number): Promise<PendingLogin[]>;
  /** Pending logins held, expired ones not yet swept included. */
  count(): Promise<number>;
  close?(): Promise<void>;
}

/** Largest serialized pending login accepted (and read back). */
export const PENDING_LOGIN_MAX_RECORD_BYTES = 64 * 1024;
/** Default and largest `limit` of one `sweepExpired` call. */
export const PENDING_LOGIN_SWEEP_LIMIT = { default: 1_000, max: 10_000 } as const;

export const PENDING_LOGIN_BOUNDS = {
  state: { min: 22, max: 1024 },
  nonce: { min: 16, max: 1024 },
  username: { max: 255 },
  returnTo: { max: 2048 },
  bindingHash: 43,
  clientIp: { max: 64 },
  userAgent: { max: 1024 },
  correlationId: { max: 128 },
} as const;

/** True when `state` has the shape of a state this store could hold. */
export function isPendingLoginState(state: unknown): state is string {
  return isBase64Url(state, PENDING_LOGIN_BOUNDS.state.min, PENDING_LOGIN_BOUNDS.state.max);
}

function isSameOriginPath(value: unknown): value is string {
  return (
    isCleanString(value, 1, PENDING_LOGIN_BOUNDS.returnTo.max) &&
    value.startsWith('/') &&
    !value.startsWith('//') &&
    !value.startsWith('/\\')
  );
}

function optionalString(value: unknown, max: number, clean: boolean): boolean {
  if (value === undefined) {
    return true;
  }
  return clean ? isCleanString(value, 0, max) : typeof value === 'string' && value.length <= max;
}

/**
 * Checks a pending login (one handed to `put`, or one read back from Redis) and returns a copy
 * holding only the known fields, or `undefined` when anything is off.
 */
export function parsePendingLogin(value: unknown): PendingLogin | undefined {
  if (!isPlainObject(value)) {
    return undefined;
  }
  const v = value;
  const b = PENDING_LOGIN_BOUNDS;
  if (
    !isPendingLoginState(v.state) ||
    !isCleanString(v.nonce, b.nonce.min, b.nonce.max) ||
    !isCleanString(v.username, 1, b.username.max) ||
    !isSameOriginPath(v.returnTo) ||
    !isBase64Url(v.bindingHash, b.bindingHash, b.bindingHash) ||
    !isEpoch(v.createdAt) ||
    !isEpoch(v.expiresAt) ||
    v.expiresAt <= v.createdAt ||
    !optionalString(v.clientIp, b.clientIp.max, true) ||
    !optionalString(v.userAgent, b.userAgent.max, false) ||
    !optionalString(v.correlationId, b.correlationId.max, true)
  ) {
    return undefined;
  }
  const login: PendingLogin = {
    state: v.state,
    nonce: v.nonce,
    username: v.username,
    returnTo: v.returnTo,
    bindingHash: v.bindingHash,
    createdAt: v.createdAt,
    expiresAt: v.expiresAt,
  };
  if (v.clientIp !== undefined) {
    login.clientIp = v.clientIp as string;
  }
  if (v.userAgent !== undefined) {
    login.userAgent = v.userAgent as string;
  }
  if (v.correlationId !== undefined) {
    login.correlationId = v.correlationId as string;
  }
  return login;
}

/** Validates and serializes a login for storage; throws DuoStoreError when it is unfit. */
function serializeForPut(login: PendingLogin): { login: PendingLogin; json: string } {
  // A browser's User-Agent is not ours to refuse a sign-on over: keep its first 1024 characters.
  const max = PENDING_LOGIN_BOUNDS.userAgent.max;
  const ua = (login as Partial<PendingLogin> | null)?.userAgent;
  const parsed = parsePendingLogin(
    typeof ua === 'string' && ua.length > max ? { ...login, userAgent: ua.slice(0, max) } : login,
  );
  if (!parsed) {
    throw new DuoStoreError(
      'invalid_record',
      'The pending login is malformed: check state, nonce, username, returnTo (a same-origin path), ' +
        'bindingHash (base64url SHA-256), createdAt < expiresAt and the optional fields',
    );
  }
  const json = JSON.stringify(parsed);
  if (utf8Length(json) > PENDING_LOGIN_MAX_RECORD_BYTES) {
    throw new DuoStoreError(
      'record_too_large',
      `The pending login exceeds ${PENDING_LOGIN_MAX_RECORD_BYTES} bytes once serialized`,
    );
  }
  return { login: parsed, json };
}

const LOGIN_KEYS: ReadonlySet<string> = new Set([
  'state',
  'nonce',
  'username',
  'returnTo',
  'bindingHash',
  'createdAt',
  'expiresAt',
  'clientIp',
  'userAgent',
  'correlationId',
]);

/** Every field of a pending login, in a fixed order, after its kind and key name: what its MAC covers. */
function sealParts(keyName: string, l: PendingLogin): SealPart[] {
  return [
    'pending-login/v1',
    keyName,
    l.state,
    l.nonce,
    l.username,
    l.returnTo,
    l.bindingHash,
    l.createdAt,
    l.expiresAt,
    l.clientIp ?? null,
    l.userAgent ?? null,
    l.correlationId ?? null,
  ];
}

/**
 * A record read back: a pending login whose every field and key name its MAC `m` covers, filed
 * under `state`. Anything else is reported (once: the caller has removed it) and counts as absent.
 */
async function openSealed(
  sealer: StoreRecordSealer,
  onInvalid: InvalidStoreRecordHandler | undefined,
  keyName: string,
  state: string,
  record: unknown,
): Promise<PendingLogin | undefined> {
  const login = isPlainObject(record) ? parseStrict(record) : undefined;
  if (!login || login.state !== state) {
    await reportInvalid(onInvalid, { store: 'pending-login', reason: 'shape' });
    return undefined;
  }
  if (!sealer.verify(sealParts(keyName, login), (record as Record<string, unknown>).m)) {
    await reportInvalid(onInvalid, { store: 'pending-login', reason: 'mac' });
    return undefined;
  }
  return login;
}

/** parsePendingLogin that also refuses unknown fields (besides the MAC `m`). */
function parseStrict(record: Record<string, unknown>): PendingLogin | undefined {
  for (const key of Object.keys(record)) {
    if (key !== 'm' && !LOGIN_KEYS.has(key)) {
      return undefined;
    }
  }
  return parsePendingLogin(record);
}

function sweepLimit(limit: number | undefined): number {
  const l = limit ?? PENDING_LOGIN_SWEEP_LIMIT.default;
  if (!Number.isSafeInteger(l) || l <= 0) {
    throw new RangeError('limit must be a positive integer');
  }
  return Math.min(l, PENDING_LOGIN_SWEEP_LIMIT.max);
}

function duplicateError(): DuoStoreError {
  return new DuoStoreError('duplicate', 'A pending login with this state already exists');
}

/** The key name a memory record's MAC covers. */
function memoryKey(state: string): string {
  return `memory:pending:l:${state}`;
}

function takeResult(login: PendingLogin, now: number): TakeResult {
  return now >= login.expiresAt ? { status: 'expired', login } : { status: 'ok', login };
}

export interface MemoryPendingLoginStoreOptions extends StoreSealOptions {
  /**
   * Most pending logins held at once (expired ones not yet swept included).
   * @default 10_000
   */
  maxEntries?: number;
  /** Clock used when `now` is not passed. @default Date.now */
  clock?: () => number;
}

/** A memory record: the login as stored and its MAC. */
interface SealedLogin {
  login: PendingLogin;
  m: string;
}

/**
 * Pending logins in this process's memory: for one instance (or sticky sessions). Each record is
 * sealed like a Redis one and checked when taken or swept (see StoreRecordSealer). Bounded: when
 * full, `put` first purges the logins that have expired (they stay queued, without their index
 * entry, for the next `sweepExpired`, at most `maxEntries` of them; beyond that the oldest are
 * dropped and counted in `droppedExpiredCount`), then throws `PendingLoginStoreFullError`.
 * Costs: `put`, `take` O(log n); `sweepExpired` O(k log n).
 */
export class MemoryPendingLoginStore implements PendingLoginStore {
  readonly maxEntries: number;
  readonly #clock: () => number;
  readonly #sealer: StoreRecordSealer;
  readonly #onInvalid: InvalidStoreRecordHandler | undefined;
  readonly #logins = new Map<string, SealedLogin>();
  // Min-heap on expiresAt with lazy deletion: an entry is live only while #logins maps its state to
  // that very object.
  #heap: SealedLogin[] = [];
  // Expired logins purged by a full put, waiting for sweepExpired.
  #purged: SealedLogin[] = [];
  #droppedExpired = 0;

  constructor(options: MemoryPendingLoginStoreOptions = {}) {
    this.maxEntries = positiveIntOption('maxEntries', options.maxEntries, 10_000);
    this.#clock = options.clock ?? Date.now;
    this.#sealer = processLocalSealer(options);
    this.#onInvalid = options.onInvalidRecord;
  }

  /** The raw records, keyed by state: for tests that play an attacker who edits the store. */
  get [MEMORY_RECORDS](): Map<string, { login: PendingLogin; m: string }> {
    return this.#logins;
  }

  /** Expired logins dropped without ever being swept, because the purge queue was full. */
  get droppedExpiredCount(): number {
    return this.#droppedExpired;
  }

  put(login: PendingLogin, now = this.#clock()): Promise<void> {
    return settle(() => {
      const { login: stored } = serializeForPut(login);
      if (this.#logins.has(stored.state)) {
        throw duplicateError();
      }
      if (this.#logins.size >= this.maxEntries) {
        this.#purgeExpired(now);
        if (this.#logins.size >= this.maxEntries) {
          throw new PendingLoginStoreFullError(this.maxEntries);
        }
      }
      const sealed = {
        login: stored,
        m: this.#sealer.seal(sealParts(memoryKey(stored.state), stored)),
      };
      this.#logins.set(stored.state, sealed);
      this.#heapPush(sealed);
    });
  }

  async take(state: string, now = this.#clock()): Promise<TakeResult> {
    if (!isPendingLoginState(state)) {
      return { status: 'missing' };
    }
    const entry = this.#logins.get(state);
    if (!entry) {
      return { status: 'missing' };
    }
    this.#logins.delete(state);
    this.#compactHeapIfStale();
    const login = await this.#open(state, entry);
    return login ? takeResult(login, now) : { status: 'missing' };
  }

  async sweepExpired(now = this.#clock(), limit?: number): Promise<PendingLogin[]> {
    const max = sweepLimit(limit);
    const claimed = this.#purged.splice(0, max);
    while (claimed.length < max) {
      const top = this.#heap[0];
      if (!top || top.login.expiresAt > now) {
        break;
      }
      this.#heapPop();
      if (this.#logins.get(top.login.state) === top) {
        this.#logins.delete(top.login.state);
        claimed.push(top);
      }
    }
    const out: PendingLogin[] = [];
    for (const entry of claimed) {
      const login = await this.#open(entry.login.state, entry);
      if (login) {
        out.push(login);
      }
    }
    return out;
  }

  count(): Promise<number> {
    return Promise.resolve(this.#logins.size);
  }

  close(): Promise<void> {
    this.#logins.clear();
    this.#heap = [];
    this.#purged = [];
    return Promise.resolve();
  }

  // A copy of the record, once its MAC is checked (it has already been removed).
  #open(state: string, entry: SealedLogin): Promise<PendingLogin | undefined> {
    return openSealed(this.#sealer, this.#onInvalid, memoryKey(state), state, {
      ...entry.login,
      m: entry.m,
    });
  }

  #purgeExpired(now: number): void {
    for (let top = this.#heap[0]; top && top.login.expiresAt <= now; top = this.#heap[0]) {
      this.#heapPop();
      if (this.#logins.get(top.login.state) === top) {
        this.#logins.delete(top.login.state);
        this.#purged.push(top);
      }
    }
    const excess = this.#purged.length - this.maxEntries;
    if (excess > 0) {
      this.#purged.splice(0, excess);
      this.#droppedExpired += excess;
    }
  }

  #compactHeapIfStale(): void {
    if (this.#heap.length > 2 * this.#logins.size + 64) {
      this.#heap = [...this.#logins.values()];
      for (let i = (this.#heap.length >> 1) - 1; i >= 0; i--) {
        this.#siftDown(i);
      }
    }
  }

  #heapPush(login: SealedLogin): void {
    const heap = this.#heap;
    heap.push(login);
    let i = heap.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (heap[parent].login.expiresAt <= heap[i].login.expiresAt) {
        break;
      }
      [heap[parent], heap[i]] = [heap[i], heap[parent]];
      i = parent;
    }
  }

  #heapPop(): void {
    const heap = this.#heap;
    const last = heap.pop();
    if (last && heap.length > 0) {
      heap[0] = last;
      this.#siftDown(0);
    }
  }

  #siftDown(start: number): void {
    const heap = this.#heap;
    let i = start;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let min = i;
      if (l < heap.length && heap[l].login.expiresAt < heap[min].login.expiresAt) {
        min = l;
      }
      if (r < heap.length && heap[r].login.expiresAt < heap[min].login.expiresAt) {
        min = r;
      }
      if (min === i) {
        return;
      }
      [heap[min], heap[i]] = [heap[i], heap[min]];
      i = min;
    }
  }
}

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
    private readonly redis: RedisConnection,
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
