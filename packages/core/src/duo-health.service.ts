import { randomBytes } from 'node:crypto';
import {
  Injectable,
  Logger,
  type OnApplicationBootstrap,
  type OnModuleDestroy,
} from '@nestjs/common';
import { DuoCircuitBreaker } from './duo-circuit-breaker.js';
import { DuoClient } from './duo.client.js';
import { InjectDuoOptions } from './duo.tokens.js';
import { DuoError } from './duo.errors.js';
import type { NormalizedDuoModuleOptions } from './duo-module-options.js';
import { StoreRecordSealer } from './stores/record-seal.js';

export type DuoHealth =
  { ok: true; checkedAt: number } | { ok: false; checkedAt: number; error: DuoError };

/** What is known of Duo: it answered (up), it failed (down), or nothing recent is known. */
export type DuoHealthStatus = 'up' | 'down' | 'unknown';

/** Duo's health as /health reports it: never a guess. */
export interface DuoHealthReport {
  status: DuoHealthStatus;
  /** Age of the answer in ms (absent when no answer was ever had). */
  ageMs?: number;
  /** When the answer was had (epoch ms). */
  checkedAt?: number;
  /** The error code of a failed check (`unavailable`, `rate_limited`, ...). */
  code?: string;
  /** Whose answer: this instance's own call or probe, or the probe of another instance (Redis). */
  source?: 'local' | 'shared';
}

/** A short failure cache, so an outage does not turn every sign-on into a slow Duo call. */
const FAILURE_CACHE_MS = 2_000;
/** Jitter of the background probe: each wait is the interval times 0.85 to 1.15. */
const JITTER = 0.15;
/** With the probe on, an answer stays usable for the interval plus its jitter. */
const PROBE_SLACK = 1 + JITTER + 0.05;
/** Clock skew tolerated between instances for a shared answer's checkedAt. */
const MAX_SKEW_MS = 5_000;
const CODE_RE = /^[a-z_]{1,40}$/;

interface SharedAnswer {
  ok: boolean;
  checkedAt: number;
  code: string | null;
}

/**
 * Duo's health check, cached and single-flight: many sign-ons at once cost one call.
 *
 * With `healthProbe` (default) and `healthCacheMs > 0`, a background probe calls it every
 * `healthCacheMs` (±15 % jitter, one call in flight, unref'd timer, stopped at module destroy).
 * With the module's `redis`, a lease key (`SET NX PX healthCacheMs`) lets one instance per interval
 * probe; it writes `{status, checkedAt, code}` sealed with an HMAC keyed from the session secret,
 * and the others read it back and check the seal, the fields and the age.
 *
 * What the shared answer may decide: what /health reports, and that a sign-on may go to Duo
 * without its own health call ("up"; if Duo is in fact down, the sign-on fails closed at Duo).
 * What it may not: a fail-open sign-on. `check()` returns a failure only from this instance's own
 * call or probe, so someone who can write Redis cannot make the app let users in without MFA;
 * without the session secret they cannot forge an answer either, only replay a sealed one that is
 * still young (under three intervals).
 */
@Injectable()
export class DuoHealthService implements OnApplicationBootstrap, OnModuleDestroy {
  private readonly logger = new Logger('Duo');
  private readonly sealer: StoreRecordSealer;
  private readonly token = randomBytes(12).toString('base64url');
  private last?: DuoHealth;
  private shared?: SharedAnswer;
  private inflight?: Promise<DuoHealth>;
  private timer?: NodeJS.Timeout;
  private probing?: Promise<void>;
  private running = false;
  private stopped = false;
  private warnedInvalid = false;
  private probes = 0;

  constructor(
    private readonly client: DuoClient,
    private readonly breaker: DuoCircuitBreaker,
    @InjectDuoOptions() private readonly options: NormalizedDuoModuleOptions,
  ) {
    this.sealer = new StoreRecordSealer(options.sessionSecret, options.sessionSecretPrevious);
  }

  /** The last answer of this instance's own call or probe, without calling Duo. */
  get lastKnown(): DuoHealth | undefined {
    return this.last;
  }

  /** Probes this instance started since boot (each one a lease try, a Duo call, or a read). */
  get probeCount(): number {
    return this.probes;
  }

  /** True while the background probe runs (from bootstrap to module destroy). */
  get probeRunning(): boolean {
    return this.running;
  }

  private get interval(): number {
    return this.options.healthCacheMs;
  }

  private get leaseKey(): string {
    return `${this.options.redisKeyPrefix}health:lease`;
  }

  private get answerKey(): string {
    return `${this.options.redisKeyPrefix}health:answer`;
  }

  /** An answer older than this reads `unknown` while the probe runs (it should have refreshed). */
  private get staleAfterMs(): number {
    return 3 * this.interval + this.options.timeoutMs;
  }

  onApplicationBootstrap(): void {
    if (!this.options.healthProbe || this.interval <= 0 || this.stopped) {
      return;
    }
    this.running = true;
    // The first probe at once: /health should not wait an interval to learn about Duo.
    this.schedule(0);
  }

  async onModuleDestroy(): Promise<void> {
    this.stopped = true;
    this.running = false;
    clearTimeout(this.timer);
    this.timer = undefined;
    // A probe in flight ends (bounded by the Duo timeout) before Redis and the client close.
    await this.probing;
  }

  /**
   * Duo's health as it is known now, for reports: the freshest of this instance's answer and the
   * shared one; `unknown` before any answer, and (with the probe on) when the freshest is older
   * than three intervals.
   */
  report(now = Date.now()): DuoHealthReport {
    const local = this.last;
    const shared = this.shared;
    let pick: { ok: boolean; checkedAt: number; code?: string; source: 'local' | 'shared' };
    if (local && (!shared || local.checkedAt >= shared.checkedAt)) {
      pick = {
        ok: local.ok,
        checkedAt: local.checkedAt,
        ...(local.ok ? {} : { code: local.error.code }),
        source: 'local',
      };
    } else if (shared) {
      pick = {
        ok: shared.ok,
        checkedAt: shared.checkedAt,
        ...(shared.code ? { code: shared.code } : {}),
        source: 'shared',
      };
    } else {
      return { status: 'unknown' };
    }
    const ageMs = Math.max(0, now - pick.checkedAt);
    const stale = this.running && ageMs > this.staleAfterMs;
    return {
      status: stale ? 'unknown' : pick.ok ? 'up' : 'down',
      ageMs,
      checkedAt: pick.checkedAt,
      ...(pick.code ? { code: pick.code } : {}),
      source: pick.source,
    };
  }

  /**
   * The answer a sign-on acts on: this instance's recent answer, or a recent shared "up", else a
   * real call (single-flight). A failure always comes from this instance's own call or probe.
   */
  async check(now = Date.now()): Promise<DuoHealth> {
    const okWindow = this.running ? this.interval * PROBE_SLACK : this.interval;
    const last = this.last;
    const shared = this.shared;
    if (
      shared?.ok &&
      now - shared.checkedAt < okWindow &&
      (!last || shared.checkedAt > last.checkedAt || !last.ok)
    ) {
      return { ok: true, checkedAt: shared.checkedAt };
    }
    if (
      last &&
      now - last.checkedAt < (last.ok ? okWindow : Math.min(FAILURE_CACHE_MS, this.interval))
    ) {
      return last;
    }
    return this.call();
  }

  private call(): Promise<DuoHealth> {
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

  private schedule(delayMs: number): void {
    if (this.stopped) {
      return;
    }
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.probing = this.probeOnce()
        .catch((err: unknown) => this.logger.warn(`Duo health probe failed: ${String(err)}`))
        .finally(() => {
          this.probing = undefined;
          this.schedule(this.interval * (1 - JITTER + Math.random() * 2 * JITTER));
        });
    }, delayMs);
    this.timer.unref();
  }

  private async probeOnce(): Promise<void> {
    if (this.stopped) {
      return;
    }
    this.probes++;
    const redis = this.options.redis;
    if (!redis) {
      await this.call();
      return;
    }
    let leader: boolean;
    try {
      leader = (await redis.set(this.leaseKey, this.token, 'PX', this.interval, 'NX')) === 'OK';
    } catch {
      // Redis is down: every instance probes for itself rather than go blind.
      leader = true;
    }
    if (!leader) {
      await this.readShared();
      return;
    }
    const health = await this.call();
    if (this.stopped) {
      return;
    }
    const code = health.ok ? null : health.error.code;
    const status = health.ok ? 'up' : 'down';
    const mac = this.sealer.seal(['duo_health', this.answerKey, status, health.checkedAt, code]);
    await redis
      .set(
        this.answerKey,
        JSON.stringify({ status, checkedAt: health.checkedAt, code, mac }),
        'PX',
        this.staleAfterMs,
      )
      .catch(() => undefined);
  }

  /** Reads the shared answer; anything unsealed, malformed, from the future or too old is ignored. */
  private async readShared(): Promise<void> {
    let raw: string | null;
    try {
      raw = await this.options.redis!.get(this.answerKey);
    } catch {
      return;
    }
    if (raw === null) {
      return;
    }
    const answer = this.parseShared(raw, Date.now());
    if (!answer) {
      if (!this.warnedInvalid) {
        this.warnedInvalid = true;
        this.logger.warn('duo_health_shared_invalid: the shared Duo health answer is ignored');
      }
      return;
    }
    if (!this.shared || answer.checkedAt >= this.shared.checkedAt) {
      this.shared = answer;
    }
  }

  private parseShared(raw: string, now: number): SharedAnswer | undefined {
    let v: unknown;
    try {
      v = JSON.parse(raw);
    } catch {
      return undefined;
    }
    if (typeof v !== 'object' || v === null || Array.isArray(v)) {
      return undefined;
    }
    const { status, checkedAt, code, mac } = v as Record<string, unknown>;
    if (status !== 'up' && status !== 'down') {
      return undefined;
    }
    if (typeof checkedAt !== 'number' || !Number.isSafeInteger(checkedAt)) {
      return undefined;
    }
    if (checkedAt > now + MAX_SKEW_MS || now - checkedAt > this.staleAfterMs) {
      return undefined;
    }
    const error =
      status === 'up' ? null : typeof code === 'string' && CODE_RE.test(code) ? code : undefined;
    if (error === undefined || (status === 'up' && code !== null)) {
      return undefined;
    }
    if (!this.sealer.verify(['duo_health', this.answerKey, status, checkedAt, error], mac)) {
      return undefined;
    }
    return { ok: status === 'up', checkedAt, code: error };
  }
}
