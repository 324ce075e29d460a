import { Injectable, Logger } from '@nestjs/common';
import type { Request, Response } from 'express';
import { DuoCookies } from './duo-cookies.js';
import { EventAggregator } from './duo-event-aggregator.js';
import { DuoHealthService } from './duo-health.service.js';
import { requestContext } from './duo-request-context.js';
import { storeCall } from './duo-store-call.js';
import { InjectDuoOptions, InjectSessionStore } from './duo.tokens.js';
import type { NormalizedDuoModuleOptions } from './duo-module-options.js';
import type {
  MfaSession,
  NewMfaSession,
  SessionLookup,
  SessionStore,
} from './stores/session-store.interface.js';

const MISSING: SessionLookup = Object.freeze({ status: 'missing' });

/** Reads, opens and ends MFA sessions: the store plus the signed, HttpOnly session cookie. */
@Injectable()
export class DuoSessionService {
  readonly cookies: DuoCookies;
  private readonly logger = new Logger('Duo');
  /** session_invalid: one row per source and minute, so a flood of forged cookies cannot fill the trail. */
  private readonly invalidCookies = new EventAggregator(60_000);

  constructor(
    @InjectSessionStore() private readonly store: SessionStore,
    @InjectDuoOptions() private readonly options: NormalizedDuoModuleOptions,
    private readonly health: DuoHealthService,
  ) {
    this.cookies = new DuoCookies(
      options.sessionSecret,
      options.secureCookies,
      options.sessionSecretPrevious,
    );
  }

  /**
   * The session of this request: the cookie must be present once, correctly signed, and live. A
   * cookie that is there but invalid (forged, tampered, malformed or duplicated) is reported as
   * `session_invalid`, one event per source and window (later ones are counted on the next).
   */
  lookup(req: Request): Promise<SessionLookup> {
    // Not an async function: the store's promise is handed on as it is (no extra ticks on the
    // path every guarded request takes).
    const cookie = this.cookies.inspect(req, this.cookies.session);
    if (cookie.status === 'ok') {
      return storeCall('session', () => this.store.get(cookie.value));
    }
    if (cookie.status === 'invalid') {
      return this.reportInvalid(req, cookie.why).then(() => MISSING);
    }
    return Promise.resolve(MISSING);
  }

  /** Not critical: the request is refused (no session) whether or not the event is written. */
  private async reportInvalid(req: Request, why: string): Promise<void> {
    const ctx = requestContext(req);
    const { write, suppressed } = this.invalidCookies.hit(ctx.clientIp ?? '-');
    if (!write || !this.options.onEvent) {
      return;
    }
    try {
      await this.options.onEvent({
        type: 'session_invalid',
        outcome: 'failure',
        reason: `cookie_${why}`,
        path: req.path,
        ...(suppressed > 0 ? { detail: { suppressed } } : {}),
        ...ctx,
      });
    } catch (err) {
      this.logger.error(
        `Could not record session_invalid: ${err instanceof Error ? err.name : 'error'}`,
      );
    }
  }

  /**
   * Opens a new session (a new id: the old one, if any, is destroyed first, so a fixated id never
   * gains privilege) and sets its cookie.
   */
  async open(req: Request, res: Response, input: NewMfaSession): Promise<MfaSession> {
    await this.destroyCurrent(req);
    const session = await storeCall('session', () => this.store.create(input));
    this.cookies.set(res, this.cookies.session, session.id, this.options.sessionAbsoluteTimeoutMs);
    return session;
  }

  /** Undo of `open` when the outcome could not be recorded. */
  async discard(res: Response, session: MfaSession): Promise<void> {
    await storeCall('session', () => this.store.destroy(session.id));
    this.cookies.clear(res, this.cookies.session);
  }

  /** Logout: destroys the session server-side and clears the cookie. */
  async close(req: Request, res: Response): Promise<MfaSession | undefined> {
    const lookup = await this.lookup(req);
    await this.destroyCurrent(req);
    this.cookies.clear(res, this.cookies.session);
    return lookup.status === 'active' ? lookup.session : undefined;
  }

  /**
   * Ends a fail-open session once Duo answers again (`failOpen.reverifyWhenDuoIsBack`, on by
   * default): true when `session` is fail-open, the option is on, and Duo's health check (cached
   * and single-flight, so an outage costs one call per window, not one per request) is up; the
   * session is then destroyed. False for every other session, and while Duo is still down.
   */
  async endFailOpenIfDuoIsBack(session: MfaSession): Promise<boolean> {
    if (!session.failOpen || this.options.failOpen.reverifyWhenDuoIsBack === false) {
      return false;
    }
    if (!(await this.health.check()).ok) {
      return false;
    }
    await storeCall('session', () => this.store.destroy(session.id));
    return true;
  }

  count(): Promise<number> {
    return storeCall('session', () => this.store.count());
  }

  private async destroyCurrent(req: Request): Promise<void> {
    const id = this.cookies.read(req, this.cookies.session);
    if (id) {
      await storeCall('session', () => this.store.destroy(id));
    }
  }
}
