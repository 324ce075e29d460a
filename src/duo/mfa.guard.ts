import { Injectable, type CanActivate, type ExecutionContext } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import type { Request } from 'express';
import {
  DUO_ALLOW_FAIL_OPEN,
  DUO_PUBLIC,
  DUO_REQUIRE_GROUPS,
  DUO_REQUIRE_MFA,
  type RequireMfaOptions,
} from './duo.decorators.js';
import { DuoError } from './duo.errors.js';
import { DuoFlowService, requestContext } from './duo-flow.service.js';
import { DuoSessionService } from './duo-session.service.js';
import type { MfaSession } from './stores/session.store.js';

/** What a route's decorators ask of MfaGuard, read once per handler and class. */
interface RoutePolicy {
  public: boolean;
  allowFailOpen: boolean;
  maxAgeMs?: number;
  groups?: readonly string[];
}

/**
 * Global guard: every route needs a live session with a completed Duo MFA, unless it is @Public().
 * @RequireMfa({ maxAgeMs }) asks for a fresh one, @RequireDuoGroups() for Duo groups, and a fail-open
 * session passes only where @AllowFailOpen() says so.
 */
@Injectable()
export class MfaGuard implements CanActivate {
  /** Decorator metadata is fixed once classes are defined, so each route's policy is read once. */
  readonly #policies = new WeakMap<object, WeakMap<object, RoutePolicy>>();

  constructor(
    private readonly reflector: Reflector,
    private readonly sessions: DuoSessionService,
    private readonly flow: DuoFlowService,
  ) {}

  async canActivate(context: ExecutionContext): Promise<boolean> {
    const policy = this.#policy(context.getHandler(), context.getClass());
    if (policy.public) {
      return true;
    }
    const req = context.switchToHttp().getRequest<Request & { duoSession?: MfaSession }>();
    const lookup = await this.sessions.lookup(req);
    if (lookup.status === 'expired') {
      await this.flow.emit({
        type: 'session_expired',
        outcome: 'info',
        username: lookup.session.username,
        reason: lookup.reason,
        ...requestContext(req),
      });
      throw new DuoError('session_expired', 'Your session expired; sign on again');
    }
    if (lookup.status === 'missing') {
      throw new DuoError('mfa_required', 'Sign on with Duo first');
    }
    const session = lookup.session;
    if (!session.mfa && !policy.allowFailOpen) {
      throw await this.#deny(
        req,
        session,
        'mfa_not_performed',
        'This page needs two-factor authentication, which could not be performed',
      );
    }
    if (
      policy.maxAgeMs !== undefined &&
      (!session.authTime || Date.now() - session.authTime * 1000 > policy.maxAgeMs)
    ) {
      throw await this.#deny(
        req,
        session,
        'mfa_stale',
        'This page needs a fresh two-factor authentication',
      );
    }
    const groups = policy.groups;
    if (groups && groups.length > 0 && !groups.some((g) => session.groups.includes(g))) {
      throw await this.#deny(req, session, 'forbidden', 'You are not allowed to open this page');
    }
    req.duoSession = session;
    return true;
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
      public: read<boolean>(DUO_PUBLIC) === true,
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
    req: Request,
    session: MfaSession,
    code: 'mfa_not_performed' | 'mfa_stale' | 'forbidden',
    message: string,
  ): Promise<DuoError> {
    await this.flow.emit({
      type: 'access_denied',
      outcome: 'failure',
      username: session.username,
      reason: code,
      path: req.path,
      ...requestContext(req),
    });
    return new DuoError(code, message);
  }
}
