import { Injectable } from '@nestjs/common';
import { DuoCircuitBreaker } from './duo-circuit-breaker.js';
import { DuoClient } from './duo.client.js';
import { InjectDuoOptions } from './duo.tokens.js';
import { DuoError } from './duo.errors.js';
import type { NormalizedDuoModuleOptions } from './duo-module-options.js';

export type DuoHealth =
  { ok: true; checkedAt: number } | { ok: false; checkedAt: number; error: DuoError };

/** A short failure cache, so an outage does not turn every sign-on into a slow Duo call. */
const FAILURE_CACHE_MS = 2_000;

/** Duo's health check, cached and single-flight: many sign-ons at once cost one call. */
@Injectable()
export class DuoHealthService {
  private last?: DuoHealth;
  private inflight?: Promise<DuoHealth>;

  constructor(
    private readonly client: DuoClient,
    private readonly breaker: DuoCircuitBreaker,
    @InjectDuoOptions() private readonly options: NormalizedDuoModuleOptions,
  ) {}

  /** The last known state without calling Duo (for /health). */
  get lastKnown(): DuoHealth | undefined {
    return this.last;
  }

  async check(now = Date.now()): Promise<DuoHealth> {
    const last = this.last;
    if (
      last &&
      now - last.checkedAt <
        (last.ok
          ? this.options.healthCacheMs
          : Math.min(FAILURE_CACHE_MS, this.options.healthCacheMs))
    ) {
      return last;
    }
    this.inflight ??= this.breaker
      .run(() => this.client.healthCheck())
      .then(
        (): DuoHealth => ({ ok: true, checkedAt: Date.now() }),
        (err: unknown): DuoHealth => ({
          ok: false,
          checkedAt: Date.now(),
          error:
            err instanceof DuoError
              ? err
              : new DuoError('unavailable', 'Duo health check failed', { cause: err }),
        }),
      )
      .then((health) => {
        this.last = health;
        this.inflight = undefined;
        return health;
      });
    return this.inflight;
  }
}
