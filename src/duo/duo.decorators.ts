import { createParamDecorator, SetMetadata, type ExecutionContext } from '@nestjs/common';
import type { Request } from 'express';
import type { MfaSession } from './stores/session.store.js';

export const DUO_PUBLIC = 'duo:public';
export const DUO_REQUIRE_MFA = 'duo:require-mfa';
export const DUO_REQUIRE_GROUPS = 'duo:require-groups';
export const DUO_ALLOW_FAIL_OPEN = 'duo:allow-fail-open';

/** Opens a route (or a controller) to everyone: the only way past MfaGuard. */
export const Public = () => SetMetadata(DUO_PUBLIC, true);

export interface RequireMfaOptions {
  /** Asks for a fresh MFA: Duo's auth_time must be at most this old. */
  maxAgeMs?: number;
}

/**
 * Step-up: the route needs an MFA at most `maxAgeMs` old.
 * @example `@RequireMfa({ maxAgeMs: 5 * 60_000 })`
 */
export const RequireMfa = (options: RequireMfaOptions = {}) =>
  SetMetadata(DUO_REQUIRE_MFA, options);

/**
 * The user must be in at least one of these Duo groups (from auth_context.user.groups).
 * @example `@RequireDuoGroups('admins')`
 */
export const RequireDuoGroups = (...groups: string[]) => SetMetadata(DUO_REQUIRE_GROUPS, groups);

/** Lets a fail-open session (Duo was unreachable, failmode open: no MFA happened) use this route. */
export const AllowFailOpen = () => SetMetadata(DUO_ALLOW_FAIL_OPEN, true);

/** The request's MFA session, as MfaGuard found it. */
export const CurrentMfa = createParamDecorator(
  (_data: unknown, ctx: ExecutionContext): MfaSession | undefined => {
    return (ctx.switchToHttp().getRequest<Request>() as Request & { duoSession?: MfaSession })
      .duoSession;
  },
);
