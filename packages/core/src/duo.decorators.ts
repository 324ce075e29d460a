import { createParamDecorator, SetMetadata, type ExecutionContext } from '@nestjs/common';
import type { Request } from 'express';
import type { MfaSession } from './stores/session-store.interface.js';

/** Metadata key of @SkipMfa() (the value stays 'duo:public' so @Public() routes keep working). */
export const DUO_SKIP_MFA = 'duo:public';
/** @deprecated Use DUO_SKIP_MFA; removed in the next major release. */
export const DUO_PUBLIC = DUO_SKIP_MFA;
export const DUO_REQUIRE_MFA = 'duo:require-mfa';
export const DUO_REQUIRE_GROUPS = 'duo:require-groups';
export const DUO_ALLOW_FAIL_OPEN = 'duo:allow-fail-open';

/**
 * The route (or every route of a controller) needs no MFA: the only way past MfaGuard. Put it on
 * the sign-on page, the first-factor route that carries DuoStartGuard, logout and health checks.
 * @example `@SkipMfa() @Post('login') @UseGuards(LocalAuthGuard, DuoStartGuard) login() {}`
 */
export const SkipMfa = () => SetMetadata(DUO_SKIP_MFA, true);

/**
 * @deprecated Use `@SkipMfa()`: `@Public()` collides with the Nest docs' JWT recipe of that name.
 * Kept for one release as an alias (same metadata).
 */
export const Public = SkipMfa;

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
