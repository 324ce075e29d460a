import { DuoError, type DuoErrorCode } from './duo.errors.js';

/** Where the breaker stands: calls pass (closed), fail fast (open), or one probe is let through. */
export type DuoCircuitState = 'closed' | 'open' | 'half_open';

export interface DuoCircuitBreakerOptions {
  /** Consecutive unavailable/rate-limited failures that open the circuit. @default 5 */
  failureThreshold?: number;
  /** How long the circuit stays open before one probe is allowed. @default 10000 */
  cooldownMs?: number;
  /** Calls to Duo in flight at once; one more fails at once with DuoError('busy'). @default 32 */
  maxConcurrent?: number;
  /** Clock (tests). @default Date.now */
  now?: () => number;
}

/** Failures that say "Duo is not serving us" (network, timeout, 5xx, 429); the rest are answers. */
const TRIPPING: ReadonlySet<DuoErrorCode> = new Set(['unavailable', 'rate_limited']);

/**
 * Outbound safety for every Duo call: a circuit breaker (opens after N consecutive failures of Duo
 * itself, fails fast while open, lets a single probe through after the cool-down) and a bound on
 * concurrent calls (over the bound: DuoError('busy') at once, no queue). Nothing is ever retried.
 */
export class DuoCircuitBreaker {
  readonly failureThreshold: number;
  readonly cooldownMs: number;
  readonly maxConcurrent: number;
  private readonly now: () => number;
  private failures = 0;
  private openedAt = 0;
  private current: DuoCircuitState = 'closed';
  private probing = false;
  private active = 0;
  private transitions = 0;
  /** A 429 is among the failures since the last answer: Duo is up and refusing us, not down. */
  private rateLimited = false;

  constructor(options: DuoCircuitBreakerOptions = {}) {
    this.failureThreshold = options.failureThreshold ?? 5;
    this.cooldownMs = options.cooldownMs ?? 10_000;
    this.maxConcurrent = options.maxConcurrent ?? 32;
    this.now = options.now ?? Date.now;
  }

  /** The state for metrics and health (an open circuit past its cool-down reads half_open). */
  get state(): DuoCircuitState {
    if (this.current === 'open' && this.now() - this.openedAt >= this.cooldownMs) {
      return 'half_open';
    }
    return this.current;
  }

  /** Calls to Duo in flight now. */
  get inFlight(): number {
    return this.active;
  }

  /** How many times the state changed since start (metrics). */
  get transitionCount(): number {
    return this.transitions;
  }

  async run<T>(call: () => Promise<T>): Promise<T> {
    const probe = this.admit();
    if (this.active >= this.maxConcurrent) {
      if (probe) {
        this.probing = false;
      }
      throw new DuoError('busy', 'Too many calls to Duo are in flight; try again shortly');
    }
    this.active++;
    try {
      const result = await call();
      this.onSuccess();
      return result;
    } catch (err) {
      this.onFailure(err, probe);
      throw err;
    } finally {
      this.active--;
      if (probe) {
        this.probing = false;
      }
    }
  }

  /** Throws while open; returns true when this call is the half-open probe. */
  private admit(): boolean {
    if (this.current === 'closed') {
      return false;
    }
    const waited = this.now() - this.openedAt;
    if (this.current === 'open' && waited >= this.cooldownMs) {
      this.move('half_open');
    }
    if (this.current === 'half_open' && !this.probing) {
      this.probing = true;
      return true;
    }
    const retryInS = Math.max(1, Math.ceil((this.cooldownMs - waited) / 1000));
    // Opened by 429s, the circuit keeps that code: failmode open must never treat it as an outage.
    throw new DuoError(
      this.rateLimited ? 'rate_limited' : 'unavailable',
      `Duo is failing; calls to it are paused (circuit open, next try in about ${retryInS} s)`,
    );
  }

  private onSuccess(): void {
    this.failures = 0;
    this.rateLimited = false;
    if (this.current !== 'closed') {
      this.move('closed');
    }
  }

  private onFailure(err: unknown, probe: boolean): void {
    if (!(err instanceof DuoError)) {
      return;
    }
    if (!TRIPPING.has(err.code)) {
      // Duo answered (a refused code, a bad token): it is up.
      this.onSuccess();
      return;
    }
    this.failures++;
    this.rateLimited ||= err.code === 'rate_limited';
    if (probe || (this.current === 'closed' && this.failures >= this.failureThreshold)) {
      this.openedAt = this.now();
      this.move('open');
    }
  }

  private move(to: DuoCircuitState): void {
    this.current = to;
    this.transitions++;
  }
}
