import {
  duplicateError,
  isPendingLoginState,
  memoryKey,
  openSealed,
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
  MEMORY_RECORDS,
  processLocalSealer,
  type InvalidStoreRecordHandler,
  type StoreRecordSealer,
  type StoreSealOptions,
} from './record-seal.js';
import { PendingLoginStoreFullError } from './store.errors.js';
import { positiveIntOption, settle } from './store-validation.js';

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
