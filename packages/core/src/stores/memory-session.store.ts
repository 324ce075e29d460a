import {
  MEMORY_RECORDS,
  processLocalSealer,
  reportInvalid,
  type InvalidStoreRecordHandler,
  type SealVerdict,
  type StoreRecordSealer,
} from './record-seal.js';
import {
  assembleLazy,
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
  coreJson,
  sealParts,
  serializeData,
  summarize,
  type NormalizedTimeouts,
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
import { positiveIntOption, settle, sha256Base64Url } from './store-validation.js';

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
  readonly #identities = new WeakMap<
    SessionCore,
    { hash: string; createdAt: number; json: string; userIndex: string }
  >();

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
      freezeCore(core);
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
    const checked = this.#verified(hash);
    const found = checked instanceof Promise ? await checked : checked;
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

  async listForUser(username: string, now = this.#t.clock()): Promise<SessionSummary[]> {
    const out: SessionSummary[] = [];
    for (const hash of [...(this.#byUser.get(username) ?? [])]) {
      const entry = (await this.#verified(hash))?.entry;
      if (entry && entry.core.username === username && !expiryReason(entry.times, now)) {
        out.push(summarize(hash, entry.core, entry.times));
      }
    }
    return out.sort((a, b) => b.createdAt - a.createdAt);
  }

  destroyByHandle(username: string, handle: string): Promise<boolean> {
    return settle(
      () =>
        isSessionHandle(handle) &&
        this.#sessions.get(handle)?.core.username === username &&
        this.#delete(handle),
    );
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
  // (A promise only for a bad entry, whose report is awaited: the common case costs no tick.)
  #verified(
    hash: string,
  ): { entry: MemoryEntry; verdict: SealVerdict } | undefined | Promise<undefined> {
    const entry = this.#sessions.get(hash);
    if (!entry) {
      return undefined;
    }
    const verdict = this.#sealer.verify(this.#parts(hash, entry), entry.m);
    if (!verdict) {
      this.#delete(hash);
      return reportInvalid(this.#onInvalid, { store: 'session', reason: 'mac' }).then(
        () => undefined,
      );
    }
    return { entry, verdict };
  }

  #parts(hash: string, e: MemoryEntry): string[] {
    const identity = this.#identity(hash, e);
    return sealParts(
      `memory:sess:s:${hash}`,
      identity.json,
      formatTimes(e.times),
      e.dataJson,
      identity.userIndex,
    );
  }

  /**
   * The identity JSON and user index of an entry, computed once per identity object: the core is
   * frozen when stored, so the same object always gives the same text (a core replaced by another
   * object misses and is serialized again, and its MAC then decides).
   */
  #identity(hash: string, e: MemoryEntry): { json: string; userIndex: string } {
    const known = this.#identities.get(e.core);
    if (known && known.hash === hash && known.createdAt === e.times.createdAt) {
      return known;
    }
    const identity = {
      hash,
      createdAt: e.times.createdAt,
      json: coreJson(hash, e.core, e.times.createdAt),
      userIndex: sha256Base64Url(e.core.username),
    };
    this.#identities.set(e.core, identity);
    return identity;
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

/** Freezes a stored identity (its groups and applications too): it never changes in place. */
function freezeCore(core: SessionCore): void {
  Object.freeze(core.groups);
  if (core.applications) {
    Object.freeze(core.applications);
  }
  Object.freeze(core);
}
