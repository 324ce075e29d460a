import type { RateLimitHit, RateLimitStore } from './rate-limit-store.interface.js';

/** One fixed window of one key; stale once its key has started a newer window (see the store). */
interface Window {
  readonly key: string;
  count: number;
  readonly resetAt: number;
}

/** Default hard cap on the keys of a {@link MemoryRateLimitStore}. */
export const MEMORY_RATE_LIMIT_MAX_KEYS = 100_000;

/**
 * Counters of one instance, at a flat cost per hit however many keys are live, and within a hard
 * cap on keys.
 *
 * Windows sit in a map (the lookup) and in a FIFO queue in the order they started. Expiry pops
 * the queue's front while it is expired (at most two windows per hit), and at the cap the oldest
 * window is evicted from the front: no hit ever scans the keys. Iterating the map itself from
 * its front would not do: V8 leaves a hole per deleted entry until it rehashes, so "first key"
 * after many deletes costs O(holes) (measured on Node 20: ~48 µs at 100,000 keys vs ~1 µs at 1,000).
 *
 * Evicting a live window forgets its count. It is the oldest window, the one closest to its reset
 * anyway, so a flood of fresh keys gains the least it can; the alternatives are unbounded memory
 * (express-rate-limit's MemoryStore has no cap) or refusing new keys (one flood locks everyone
 * out). With one window length for every rule (the app's case), start order is reset order and
 * expiry is exact; with mixed lengths an expired window may wait behind a longer one until the
 * cap or its own next hit reclaims it, and is never counted meanwhile.
 */
export class MemoryRateLimitStore implements RateLimitStore {
  private readonly windows = new Map<string, Window>();
  private queue: Window[] = [];
  private head = 0;
  private evictedCount = 0;

  constructor(
    private readonly maxKeys = MEMORY_RATE_LIMIT_MAX_KEYS,
    private readonly now: () => number = Date.now,
  ) {
    if (!Number.isInteger(maxKeys) || maxKeys < 1) {
      throw new RangeError('maxKeys must be a positive integer');
    }
  }

  hit(key: string, windowMs: number): Promise<RateLimitHit> {
    const now = this.now();
    // Two per hit: the queue drains faster than one hit can add to it.
    this.dropExpired(now, 2);
    let w = this.windows.get(key);
    if (w === undefined || w.resetAt <= now) {
      if (w === undefined && this.windows.size >= this.maxKeys) {
        this.evictOldest(now);
      }
      w = { key, count: 0, resetAt: now + windowMs };
      this.windows.set(key, w);
      this.enqueue(w);
    }
    w.count++;
    return Promise.resolve({ count: w.count, resetInMs: w.resetAt - now });
  }

  /** Keys held (live, or expired and not yet reclaimed). */
  get size(): number {
    return this.windows.size;
  }

  /** Live windows forgotten at the cap since this store was made. */
  get evicted(): number {
    return this.evictedCount;
  }

  /** A queued window is current while its key still maps to it. */
  private current(w: Window): boolean {
    return this.windows.get(w.key) === w;
  }

  private dropExpired(now: number, budget: number): void {
    while (budget-- > 0 && this.head < this.queue.length) {
      const w = this.queue[this.head];
      const isCurrent = this.current(w);
      if (isCurrent && w.resetAt > now) {
        return;
      }
      if (isCurrent) {
        this.windows.delete(w.key);
      }
      this.dequeue();
    }
  }

  private evictOldest(now: number): void {
    while (this.head < this.queue.length) {
      const w = this.queue[this.head];
      this.dequeue();
      if (this.current(w)) {
        this.windows.delete(w.key);
        if (w.resetAt > now) {
          this.evictedCount++;
        }
        return;
      }
    }
  }

  private enqueue(w: Window): void {
    this.queue.push(w);
    // Stale windows (keys that restarted a window) can pile up behind a longer window; past twice
    // the cap, keep only current ones. O(queue) once per >= maxKeys pushes: O(1) amortised.
    if (this.queue.length - this.head > 2 * this.maxKeys) {
      this.queue = this.queue.slice(this.head).filter((q) => this.current(q));
      this.head = 0;
    }
  }

  private dequeue(): void {
    this.head++;
    // Drop the consumed front once it is half the array: each entry is copied at most once.
    if (this.head >= 1024 && this.head * 2 >= this.queue.length) {
      this.queue = this.queue.slice(this.head);
      this.head = 0;
    }
  }
}
