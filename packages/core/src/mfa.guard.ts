import { Injectable, type CanActivate, type ExecutionContext } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import type { Request } from 'express';
import {
  DUO_ALLOW_FAIL_OPEN,
  DUO_SKIP_MFA,
  DUO_REQUIRE_GROUPS,
  DUO_REQUIRE_MFA,
  type RequireMfaOptions,
} from './duo.decorators.js';
import { DuoError } from './duo.errors.js';
import { DuoHttpException } from './duo-http.exception.js';
import { DuoFlowService, requestContext } from './duo-flow.service.js';
import { DuoSessionService } from './duo-session.service.js';
import type { MfaSession, SessionLookup } from './stores/session-store.interface.js';

/** What a route's decorators ask of MfaGuard, read once per handler and class. */
interface RoutePolicy {
  skip: boolean;
  allowFailOpen: boolean;
  maxAgeMs?: number;
  groups?: readonly string[];
}

/** Why MfaGuard refuses a request: the stable code and the message users read. */
export interface MfaDenial {
  code: 'mfa_required' | 'session_expired' | 'mfa_not_performed' | 'mfa_stale' | 'forbidden';
  message: string;
  /** The session that was found, when there is one (absent for mfa_required). */
  session?: MfaSession;
}

/**
 * Global guard: every route needs a live session with a completed Duo MFA, unless it is @SkipMfa().
 * @RequireMfa({ maxAgeMs }) asks for a fresh one, @RequireDuoGroups() for Duo groups, and a fail-open
 * session passes only where @AllowFailOpen() says so.
 *
 * Register it as `{ provide: APP_GUARD, useExisting: MfaGuard }` (so `overrideGuard(MfaGuard)` works
 * in tests). Apps that decide access differently extend it and override the protected hooks
 * (`getRequest`, `shouldSkip`, `getSession`, `onDenied`), as with @nestjs/throttler's ThrottlerGuard;
 * the session checks themselves and the audit event of every refusal stay in `canActivate`.
 */
@Injectable()
export class MfaGuard implements CanActivate {
  /** Decorator metadata is fixed once classes are defined, so each route's policy is read once. */
  readonly #policies = new WeakMap<object, WeakMap<object, RoutePolicy>>();

  constructor(
    protected readonly reflector: Reflector,
    protected readonly sessions: DuoSessionService,
    protected readonly flow: DuoFlowService,
  ) {}

  async canActivate(context: ExecutionContext): Promise<boolean> {
    if (await this.shouldSkip(context)) {
      return true;
    }
    const policy = this.#policy(context.getHandler(), context.getClass());
    const req = this.getRequest(context);
    const lookup = await this.getSession(req, context);
    if (lookup.status === 'expired') {
      await this.flow.emit({
        type: 'session_expired',
        outcome: 'info',
        username: lookup.session.username,
        reason: lookup.reason,
        ...requestContext(req),
      });
      return this.#refuse(context, {
        code: 'session_expired',
        message: 'Your session expired; sign on again',
        session: lookup.session,
      });
    }
    if (lookup.status === 'missing') {
      return this.#refuse(context, { code: 'mfa_required', message: 'Sign on with Duo first' });
    }
    const session = lookup.session;
    if (!session.mfa && !policy.allowFailOpen) {
      return this.#deny(context, req, {
        code: 'mfa_not_performed',
        message: 'This page needs two-factor authentication, which could not be performed',
        session,
      });
    }
    if (
      policy.maxAgeMs !== undefined &&
      (!session.authTime || Date.now() - session.authTime * 1000 > policy.maxAgeMs)
    ) {
      return this.#deny(context, req, {
        code: 'mfa_stale',
        message: 'This page needs a fresh two-factor authentication',
        session,
      });
    }
    const groups = policy.groups;
    if (groups && groups.length > 0 && !groups.some((g) => session.groups.includes(g))) {
      return this.#deny(context, req, {
        code: 'forbidden',
        message: 'You are not allowed to open this page',
        session,
      });
    }
    req.duoSession = session;
    return true;
  }

  /** The HTTP request of this context (override for other transports). */
  protected getRequest(context: ExecutionContext): Request & { duoSession?: MfaSession } {
    return context.switchToHttp().getRequest<Request & { duoSession?: MfaSession }>();
  }

  /** True when the route needs no MFA at all. @default the route's or its controller's @SkipMfa() */
  protected shouldSkip(context: ExecutionContext): boolean | Promise<boolean> {
    return this.#policy(context.getHandler(), context.getClass()).skip;
  }

  /** The request's session. @default the signed session cookie, looked up in the session store */
  protected getSession(req: Request, _context: ExecutionContext): Promise<SessionLookup> {
    return this.sessions.lookup(req);
  }

  /**
   * Called once per refusal, after its audit event: throw the app's own exception here. Returning
   * does not let the request through: the guard then throws DuoHttpException (status + code).
   */
  protected onDenied(_context: ExecutionContext, _denial: MfaDenial): void | Promise<void> {
    return undefined;
  }

  async #refuse(context: ExecutionContext, denial: MfaDenial): Promise<never> {
    await this.onDenied(context, denial);
    throw new DuoHttpException(new DuoError(denial.code, denial.message));
  }

  #policy(handler: object, controller: object): RoutePolicy {
    let byController = this.#policies.get(handler);
    let policy = byController?.get(controller);
    if (policy) {
      return policy;
    }
    const targets = [handler, controller] as Parameters<Reflector['getAllAndOverride']>[1];
    const read = <T>(key: string) => this.reflector.getAllAndOverride<T | undefined>(key, targets);
    policy = {
      skip: read<boolean>(DUO_SKIP_MFA) === true,
      allowFailOpen: read<boolean>(DUO_ALLOW_FAIL_OPEN) === true,
      maxAgeMs: read<RequireMfaOptions>(DUO_REQUIRE_MFA)?.maxAgeMs,
      groups: read<string[]>(DUO_REQUIRE_GROUPS),
    };
    if (!byController) {
      byController = new WeakMap();
      this.#policies.set(handler, byController);
    }
    byController.set(controller, policy);
    return policy;
  }

  async #deny(
    context: ExecutionContext,
    req: Request,
    denial: MfaDenial & { session: MfaSession },
  ): Promise<never> {
    await this.flow.emit({
      type: 'access_denied',
      outcome: 'failure',
      username: denial.session.username,
      reason: denial.code,
      path: req.path,
      ...requestContext(req),
    });
    return this.#refuse(context, denial);
  }
}
