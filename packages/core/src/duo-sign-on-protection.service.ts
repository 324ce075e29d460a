import { Inject, Injectable, Logger } from '@nestjs/common';
import type { Request, Response } from 'express';
import { DuoCsrfService } from './duo-csrf.service.js';
import { DuoError, DuoRateLimitError } from './duo.errors.js';
import { EventAggregator } from './duo-event-aggregator.js';
import type { DuoAuthEvent } from './duo-events.js';
import type { NormalizedDuoModuleOptions } from './duo-module-options.js';
import {
  ipRateLimitSubject,
  normalizeUsernameForLimit,
  RateLimiter,
  type RateLimitDecision,
  type RateLimitRule,
} from './duo-rate-limiter.js';
import { requestContext } from './duo-request-context.js';
import { DUO_RATE_LIMIT_STORE, InjectDuoOptions } from './duo.tokens.js';
import type { RateLimitStore } from './stores/rate-limit-store.interface.js';

/** Requests whose start checks (per-IP cap, CSRF) already ran: DuoCsrfGuard, then DuoStartGuard. */
const START_CHECKED = new WeakSet<object>();

/** How often a failing counter store is logged (it lets every request through meanwhile). */
const STORE_WARNING_EVERY_MS = 10_000;

/**
 * The sign-on's own defences, applied by DuoCsrfGuard, DuoStartGuard, DuoSignOn and the callback
 * route wherever the app mounts them. The start, in this order: the per-IP cap, the CSRF check
 * ({@link checkStart}), then (in the flow, once the username is resolved and valid) the
 * per-username cap ({@link checkUser}); the callback: the per-IP cap ({@link checkCallback}).
 *
 * A cap's refusal is a DuoRateLimitError (429, Retry-After) and one `rate_limited` event per key
 * and window; a CSRF refusal a DuoError `csrf_failed` (403) and one `input_validation_failed`
 * event (reason `csrf_<why>`) per source and reason and minute. A counter store that fails lets
 * the request through (a warning at most every 10 s): sign-on then depends on the same store.
 */
@Injectable()
export class DuoSignOnProtection {
  private readonly logger = new Logger('Duo');
  private readonly limiter: RateLimiter | undefined;
  private readonly csrfRefusals = new EventAggregator();
  private lastStoreWarning = 0;

  constructor(
    @InjectDuoOptions() private readonly options: NormalizedDuoModuleOptions,
    @Inject(DUO_RATE_LIMIT_STORE) store: RateLimitStore,
    private readonly csrf: DuoCsrfService,
  ) {
    this.limiter = options.limits ? new RateLimiter(store) : undefined;
  }

  /**
   * The checks before anything else of the start: the per-IP cap, then the CSRF token and origin.
   * Runs once per request (DuoCsrfGuard before the first factor, then DuoStartGuard, count once).
   */
  async checkStart(req: Request): Promise<void> {
    if (START_CHECKED.has(req)) {
      return;
    }
    START_CHECKED.add(req);
    await this.cap(req, 'login_ip', this.ipSubject(req));
    if (this.options.csrf === false) {
      return;
    }
    const failure = this.csrf.verify(req);
    if (failure === undefined) {
      return;
    }
    const ctx = requestContext(req);
    const { write, suppressed } = this.csrfRefusals.hit(`${ctx.clientIp ?? '-'}:${failure}`);
    if (write) {
      await this.emit({
        type: 'input_validation_failed',
        outcome: 'failure',
        reason: `csrf_${failure}`,
        path: req.path.slice(0, 256),
        ...(suppressed > 0 ? { detail: { suppressed } } : {}),
        ...ctx,
      });
    }
    throw new DuoError(
      'csrf_failed',
      'This form expired or came from another site; reload the page and try again',
    );
  }

  /** The per-username cap on MFA starts (each start may send the user a push). */
  async checkUser(req: Request, username: string): Promise<void> {
    await this.cap(req, 'login_user', normalizeUsernameForLimit(username), username);
  }

  /** The per-IP cap on Duo's redirects back. */
  async checkCallback(req: Request): Promise<void> {
    await this.cap(req, 'callback_ip', this.ipSubject(req));
  }

  /** Sets Retry-After on the response of a cap's refusal (callers that hold the response). */
  static answerHeaders(res: Response, err: unknown): void {
    if (err instanceof DuoRateLimitError && !res.headersSent) {
      res.setHeader('Retry-After', String(err.retryAfterSec));
    }
  }

  private async cap(
    req: Request,
    name: RateLimitRule['name'],
    subject: string,
    username?: string,
  ): Promise<void> {
    const limits = this.options.limits;
    if (!this.limiter || limits === false) {
      return;
    }
    const limit =
      name === 'login_ip'
        ? limits.startsPerIp
        : name === 'login_user'
          ? limits.startsPerUser
          : limits.callbacksPerIp;
    let decision: RateLimitDecision;
    try {
      decision = await this.limiter.check({ name, limit, windowMs: limits.windowMs }, subject);
    } catch (err) {
      this.storeFailed(err);
      return;
    }
    if (decision.allowed) {
      return;
    }
    if (decision.firstRefusal) {
      await this.emit({
        type: 'rate_limited',
        outcome: 'failure',
        reason: name,
        ...(username !== undefined ? { username } : {}),
        path: req.path.slice(0, 256),
        ...requestContext(req),
      });
    }
    throw new DuoRateLimitError(decision.retryAfterSec);
  }

  /** An IPv6 client by its network, IPv4-mapped as IPv4; a non-IP address as the socket's. */
  private ipSubject(req: Request): string {
    const subnet = this.options.limits === false ? 64 : this.options.limits.ipv6Subnet;
    return (
      ipRateLimitSubject(requestContext(req).clientIp, subnet) ??
      ipRateLimitSubject(req.socket?.remoteAddress, subnet) ??
      'unknown'
    );
  }

  private storeFailed(err: unknown): void {
    const now = Date.now();
    if (now - this.lastStoreWarning > STORE_WARNING_EVERY_MS) {
      this.lastStoreWarning = now;
      this.logger.warn(
        `rate-limit store unavailable; requests let through (${err instanceof Error ? err.name : 'error'})`,
      );
    }
  }

  /** Not critical: the refusal stands whether or not its event is written. */
  private async emit(event: DuoAuthEvent): Promise<void> {
    try {
      await this.options.onEvent?.(event);
    } catch (err) {
      this.logger.error(
        `Could not record ${event.type}: ${err instanceof Error ? err.name : 'error'}`,
      );
    }
  }
}
