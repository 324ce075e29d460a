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

/**
 * Global guard: every route needs a live session with a completed Duo MFA, unless it is @Public().
 * @RequireMfa({ maxAgeMs }) asks for a fresh one, @RequireDuoGroups() for Duo groups, and a fail-open
 * session passes only where @AllowFailOpen() says so.
 */
@Injectable()
export class MfaGuard implements CanActivate {
  constructor(
    private readonly reflector: Reflector,
    private readonly sessions: DuoSessionService,
    private readonly flow: DuoFlowService,
  ) {}

  async canActivate(context: ExecutionContext): Promise<boolean> {
    const targets = [context.getHandler(), context.getClass()];
    if (this.reflector.getAllAndOverride<boolean>(DUO_PUBLIC, targets)) {
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
    const deny = async (code: 'mfa_not_performed' | 'mfa_stale' | 'forbidden', message: string) => {
      await this.flow.emit({
        type: 'access_denied',
        outcome: 'failure',
        username: session.username,
        reason: code,
        path: req.path,
        ...requestContext(req),
      });
      return new DuoError(code, message);
    };
    if (!session.mfa && !this.reflector.getAllAndOverride<boolean>(DUO_ALLOW_FAIL_OPEN, targets)) {
      throw await deny(
        'mfa_not_performed',
        'This page needs two-factor authentication, which could not be performed',
      );
    }
    const fresh = this.reflector.getAllAndOverride<RequireMfaOptions | undefined>(
      DUO_REQUIRE_MFA,
      targets,
    );
    if (
      fresh?.maxAgeMs !== undefined &&
      (!session.authTime || Date.now() - session.authTime * 1000 > fresh.maxAgeMs)
    ) {
      throw await deny('mfa_stale', 'This page needs a fresh two-factor authentication');
    }
    const groups = this.reflector.getAllAndOverride<string[] | undefined>(
      DUO_REQUIRE_GROUPS,
      targets,
    );
    if (groups && groups.length > 0 && !groups.some((g) => session.groups.includes(g))) {
      throw await deny('forbidden', 'You are not allowed to open this page');
    }
    req.duoSession = session;
    return true;
  }
}
