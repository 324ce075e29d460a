import { createParamDecorator, SetMetadata, type ExecutionContext } from '@nestjs/common';
import type { Request } from 'express';
import { checkPolicyFactors } from './duo-mfa-policy.js';
import { APPLICATION_NAME_RE } from './stores/session-record.js';
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
  /** Asks for a fresh MFA: Duo's auth_time must be at most this old (else `mfa_stale`). */
  maxAgeMs?: number;
  /**
   * The factors that may have satisfied MFA (DUO_FACTORS names; `webauthn` stands for every
   * WebAuthn spelling). Others are refused with `mfa_policy` / `factor_not_allowed`, and a factor
   * Duo sent that is no known name with `factor_unknown`. A name outside DUO_FACTORS throws when
   * the decorator is applied. @default DuoModule `policy.factors` (absent: any factor)
   */
  factors?: readonly string[];
  /**
   * Accept a session Duo let through without a second factor (a bypass user, see isDuoBypass).
   * A route that carries @RequireMfa refuses bypass unless this is true, whatever DuoModule's
   * `policy.allowBypass` says (`mfa_policy` / `bypass_not_allowed`). @default false
   */
  allowBypass?: boolean;
  /**
   * The DuoModule application (by name) whose MFA the session must have satisfied. A session that
   * satisfied only another is stepped up: `mfa_step_up` (401; an HTML GET is sent to the step-up
   * page, which starts Duo for this application as the session's user), and afterwards records
   * both. `maxAgeMs` then counts from this application's MFA. @default the `applicationResolver`'s
   * answer when DuoModule has one, else any application of the module
   */
  application?: string;
}

/**
 * A stricter MFA for this route (or controller): a fresh one (`maxAgeMs`, step-up), certain
 * factors only (`factors`), and no bypass unless `allowBypass: true`. Even `@RequireMfa()` with no
 * options refuses a bypassed session.
 * @example `@RequireMfa({ maxAgeMs: 5 * 60_000, factors: ['webauthn'] })`
 */
export const RequireMfa = (options: RequireMfaOptions = {}) => {
  const checked: RequireMfaOptions = { ...options };
  if (options.factors !== undefined) {
    checked.factors = checkPolicyFactors(options.factors, '@RequireMfa');
  }
  if (
    options.application !== undefined &&
    (typeof options.application !== 'string' || !APPLICATION_NAME_RE.test(options.application))
  ) {
    throw new TypeError('@RequireMfa: application must be a name of A-Z a-z 0-9 _ . - (1 to 64)');
  }
  if (options.allowBypass !== undefined && typeof options.allowBypass !== 'boolean') {
    throw new TypeError('@RequireMfa: allowBypass must be true or false');
  }
  if (
    options.maxAgeMs !== undefined &&
    (!Number.isSafeInteger(options.maxAgeMs) || options.maxAgeMs < 0)
  ) {
    throw new TypeError('@RequireMfa: maxAgeMs must be a non-negative integer');
  }
  return SetMetadata(DUO_REQUIRE_MFA, Object.freeze(checked));
};

/**
 * The user must be in at least one of these Duo groups (from auth_context.user.groups): a user with
 * no Duo group is refused (`forbidden`). At least one group must be named (an empty list would let
 * everyone in, so it throws).
 * @example `@RequireDuoGroups('admins')`
 */
export const RequireDuoGroups = (...groups: string[]) => {
  if (groups.length === 0 || !groups.every((g) => typeof g === 'string' && g.length > 0)) {
    throw new TypeError('@RequireDuoGroups needs at least one non-empty group name');
  }
  return SetMetadata(DUO_REQUIRE_GROUPS, Object.freeze([...groups]));
};

/** Lets a fail-open session (Duo was unreachable, failmode open: no MFA happened) use this route. */
export const AllowFailOpen = () => SetMetadata(DUO_ALLOW_FAIL_OPEN, true);

/** The request's MFA session, as MfaGuard found it. */
export const CurrentMfa = createParamDecorator(
  (_data: unknown, ctx: ExecutionContext): MfaSession | undefined => {
    return (ctx.switchToHttp().getRequest<Request>() as Request & { duoSession?: MfaSession })
      .duoSession;
  },
);
