/** One counted hit: the count in the current window and the time until it resets. */
export interface RateLimitHit {
  count: number;
  resetInMs: number;
}

/** Fixed-window counters. Redis makes the count shared by every instance (N instances allow the limit, not N times it). */
export interface RateLimitStore {
  hit(key: string, windowMs: number): Promise<RateLimitHit>;
  close?(): Promise<void>;
}
