import {
  Inject,
  Injectable,
  Optional,
  type CanActivate,
  type ExecutionContext,
} from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import type { Request } from 'express';
import {
  DUO_ALLOW_FAIL_OPEN,
  DUO_SKIP_MFA,
  DUO_REQUIRE_GROUPS,
  DUO_REQUIRE_MFA,
  type RequireMfaOptions,
} from './duo.decorators.js';
import { DuoApplications, satisfiedApplications } from './duo-applications.js';
import {
  DuoError,
  DuoForbiddenError,
  DuoMfaPolicyError,
  DuoStepUpError,
  groupList,
} from './duo.errors.js';
import { mfaPolicyRefusal, type DuoMfaPolicyReason } from './duo-mfa-policy.js';
import type { NormalizedDuoModuleOptions } from './duo-module-options.js';
import { InjectDuoOptions } from './duo.tokens.js';
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
  /** The route (or its controller) carries @RequireMfa: bypass is refused unless it allows it. */
  requireMfa: boolean;
  factors?: readonly string[];
  allowBypass?: boolean;
  application?: string;
}

/** Module-wide policy when the guard was built without DuoModule's options (a hand-made guard). */
const NO_MODULE_POLICY: NormalizedDuoModuleOptions['policy'] = { allowBypass: true };

/** Why MfaGuard refuses a request: the stable code and the message users read. */
export interface MfaDenial {
  code:
    | 'mfa_required'
    | 'session_expired'
    | 'mfa_not_performed'
    | 'mfa_stale'
    | 'mfa_policy'
    | 'mfa_step_up'
    | 'forbidden';
  message: string;
  /** mfa_policy only: why the factor and bypass policy refused the session. */
  reason?: DuoMfaPolicyReason;
  /** mfa_step_up only: the application the route needs. */
  application?: string;
  /** forbidden only: the Duo groups the route needs (from its @RequireDuoGroups). */
  groups?: readonly string[];
  /** The session that was found, when there is one (absent for mfa_required). */
  session?: MfaSession;
}

/**
 * Global guard: every route needs a live session with a completed Duo MFA, unless it is @SkipMfa().
 * @RequireMfa({ maxAgeMs, factors, allowBypass }) asks for a fresh one, certain factors, and (by
 * default) no bypass; DuoModule's `policy` sets the factors and bypass rule of every other route.
 * @RequireDuoGroups() asks for Duo groups (a user with none is refused), and a fail-open session
 * passes only where @AllowFailOpen() says so. Checks run in this order: session, fail-open,
 * bypass, factor, freshness, groups; the first that fails answers.
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

  /** DuoModule's options (property injection, so subclasses keep their constructors). */
  @Optional()
  @InjectDuoOptions()
  protected readonly duoOptions?: NormalizedDuoModuleOptions;

  /** DuoModule's applications (named, tenants): which one a route needs. */
  @Optional()
  @Inject(DuoApplications)
  protected readonly duoApplications?: DuoApplications;

  constructor(
    protected readonly reflector: Reflector,
    protected readonly sessions: DuoSessionService,
    protected readonly flow: DuoFlowService,
  ) {}

  async canActivate(context: ExecutionContext): Promise<boolean> {
    // Plain values are not awaited: each await of a guard that runs on every request costs a tick.
    const skip = this.shouldSkip(context);
    if (skip === true || (skip !== false && (await skip))) {
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
    if (session.failOpen && (await this.sessions.endFailOpenIfDuoIsBack(session))) {
      // Fail-open stood in for MFA only while Duo was down: now the user goes through Duo.
      await this.flow.emit({
        type: 'session_expired',
        outcome: 'info',
        username: session.username,
        reason: 'failopen_reverify',
        ...requestContext(req),
      });
      return this.#refuse(context, {
        code: 'session_expired',
        message: 'Two-factor authentication is available again; sign on with Duo',
        session,
      });
    }
    if (!session.mfa && !policy.allowFailOpen) {
      return this.#deny(context, req, {
        code: 'mfa_not_performed',
        message: 'This page needs two-factor authentication, which could not be performed',
        session,
      });
    }
    // The route's Duo application (its @RequireMfa, else the resolver's): not satisfied, step up.
    const required = this.#requiredApplication(req, policy);
    const application = typeof required === 'object' ? await required : required;
    const satisfied = satisfiedApplications(session);
    if (application !== undefined && satisfied[application] === undefined) {
      const error = new DuoStepUpError(application, this.#stepUpUrl(req, application));
      return this.#deny(
        context,
        req,
        { code: 'mfa_step_up', message: error.message, session, application },
        error,
      );
    }
    const modulePolicy = this.duoOptions?.policy ?? NO_MODULE_POLICY;
    const refusal = mfaPolicyRefusal(session, {
      factors: policy.factors ?? modulePolicy.factors,
      // Asking for a policy (@RequireMfa) closes bypass unless the route reopens it.
      allowBypass: policy.requireMfa ? policy.allowBypass === true : modulePolicy.allowBypass,
    });
    if (refusal) {
      const error = new DuoMfaPolicyError(refusal, this.#signOnUrl(req));
      return this.#deny(
        context,
        req,
        { code: 'mfa_policy', reason: refusal, message: error.message, session },
        error,
      );
    }
    // Freshness of the route's application's MFA when it names one, else of the last MFA.
    const authTime = application !== undefined ? satisfied[application] : session.authTime;
    if (
      policy.maxAgeMs !== undefined &&
      (!authTime || Date.now() - authTime * 1000 > policy.maxAgeMs)
    ) {
      return this.#deny(context, req, {
        code: 'mfa_stale',
        message: 'This page needs a fresh two-factor authentication',
        session,
      });
    }
    const groups = policy.groups;
    // No group named, or a user in no Duo group (empty, or absent from a custom store): refused.
    if (
      groups &&
      (groups.length === 0 ||
        !Array.isArray(session.groups) ||
        !groups.some((g) => session.groups.includes(g)))
    ) {
      const error = new DuoForbiddenError(groups);
      return this.#deny(
        context,
        req,
        { code: 'forbidden', message: error.message, session, groups },
        error,
      );
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

  async #refuse(context: ExecutionContext, denial: MfaDenial, error?: DuoError): Promise<never> {
    await this.onDenied(context, denial);
    throw new DuoHttpException(error ?? new DuoError(denial.code, denial.message));
  }

  /** The sign-on page with this request's path as returnTo: where a fresh MFA starts. */
  #signOnUrl(req: Request): string {
    const signOnPath = this.duoOptions?.signOnPath ?? '/';
    const returnTo = encodeURIComponent(req.originalUrl.slice(0, 512));
    return `${signOnPath}?returnTo=${returnTo}&reason=mfa_policy`;
  }

  /** The application a route needs: a promise only when a resolver has to be asked. */
  #requiredApplication(
    req: Request,
    policy: RoutePolicy,
  ): string | undefined | Promise<string | undefined> {
    const apps = this.duoApplications;
    if (policy.application !== undefined) {
      return apps ? apps.canonical(policy.application) : policy.application;
    }
    return apps?.config.resolver ? apps.nameFor(req) : undefined;
  }

  /** The step-up page for `application`, coming back to this request's path. */
  #stepUpUrl(req: Request, application: string): string {
    const path = this.duoApplications?.config.stepUpPath ?? '/auth/duo/step-up';
    const returnTo = encodeURIComponent(req.originalUrl.slice(0, 512));
    return `${path}?application=${encodeURIComponent(application)}&returnTo=${returnTo}`;
  }

  #policy(handler: object, controller: object): RoutePolicy {
    let byController = this.#policies.get(handler);
    let policy = byController?.get(controller);
    if (policy) {
      return policy;
    }
    const targets = [handler, controller] as Parameters<Reflector['getAllAndOverride']>[1];
    const read = <T>(key: string) => this.reflector.getAllAndOverride<T | undefined>(key, targets);
    const requireMfa = read<RequireMfaOptions>(DUO_REQUIRE_MFA);
    policy = {
      skip: read<boolean>(DUO_SKIP_MFA) === true,
      allowFailOpen: read<boolean>(DUO_ALLOW_FAIL_OPEN) === true,
      maxAgeMs: requireMfa?.maxAgeMs,
      groups: read<string[]>(DUO_REQUIRE_GROUPS),
      requireMfa: requireMfa !== undefined,
      factors: requireMfa?.factors,
      allowBypass: requireMfa?.allowBypass,
      application: requireMfa?.application,
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
    error?: DuoError,
  ): Promise<never> {
    await this.flow.emit({
      type: 'access_denied',
      outcome: 'failure',
      username: denial.session.username,
      // A policy refusal records its reason (bypass_not_allowed, ...); detail names the code.
      reason: denial.reason ?? denial.code,
      ...denialDetail(denial),
      path: req.path,
      ...requestContext(req),
    });
    return this.#refuse(context, denial, error);
  }
}

/** The access_denied row's detail: the code of a policy refusal, the application, the groups. */
function denialDetail(denial: MfaDenial): { detail?: Record<string, string> } {
  const detail: Record<string, string> = {
    ...(denial.reason ? { error: denial.code } : {}),
    ...(denial.application ? { application: denial.application } : {}),
    ...(denial.groups && denial.groups.length > 0
      ? { requiredGroups: groupList(denial.groups) }
      : {}),
  };
  return Object.keys(detail).length > 0 ? { detail } : {};
}
