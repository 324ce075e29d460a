/**
 * Stable codes of every failure the Duo library reports. Callers switch on `code`; messages are for
 * people and never carry a secret, an authorization code or a token (the cause may, for logs).
 */
export type DuoErrorCode =
  /** The options are invalid (DuoConfigError). */
  | 'config'
  /** An argument to a client call is invalid (state, nonce, username or code). */
  | 'invalid_argument'
  /** Duo could not be reached: network error, timeout, or a 5xx answer. */
  | 'unavailable'
  /**
   * Duo's TLS certificate did not verify (an unknown CA, a wrong name, expired): a configuration
   * fault or an interception, never an outage, so failmode open never lets it through.
   */
  | 'untrusted_certificate'
  /**
   * Duo answered 429 (HTTP 503), or a sign-on cap of this library refused the request
   * (DuoRateLimitError: HTTP 429 with Retry-After).
   */
  | 'rate_limited'
  /** The sign-on start failed the CSRF check (no or a wrong token, or another origin). */
  | 'csrf_failed'
  /** Duo refused our credentials or client assertion. */
  | 'invalid_client'
  /** Duo refused the authorization code (reused, expired, unknown, or another redirect URI). */
  | 'invalid_grant'
  /** Duo answered with another OAuth/REST error. */
  | 'duo_rejected'
  /** The health-check answer is not Duo's success envelope. */
  | 'health_response'
  /** The token answer is malformed, too large, or lacks a required field. */
  | 'token_response'
  /** The id_token is not a well-formed JWS/JWT. */
  | 'id_token_malformed'
  /** The id_token is signed with another algorithm than HS512. */
  | 'id_token_alg'
  /** The id_token's HMAC does not verify with the client secret. */
  | 'id_token_signature'
  /** The id_token's issuer is not https://<api host>/oauth/v1/token. */
  | 'id_token_iss'
  /** The id_token's audience is not exactly the client id. */
  | 'id_token_aud'
  /** The id_token is expired (beyond the clock tolerance). */
  | 'id_token_expired'
  /** The id_token was issued in the future (beyond the clock tolerance). */
  | 'id_token_iat'
  /** The id_token is not yet valid (nbf beyond the clock tolerance). */
  | 'id_token_nbf'
  /** The id_token lacks a required claim or a claim has the wrong type. */
  | 'id_token_claims'
  /** The id_token's nonce is missing or differs from the one sent. */
  | 'id_token_nonce'
  /** The id_token's preferred_username differs from the user who started the sign-on. */
  | 'id_token_username'
  /** The id_token does not report an allowed authentication. */
  | 'id_token_auth_result'
  // Flow errors of the strategy and guards (mapped to HTTP by DuoExceptionFilter):
  /** A sign-on or callback request has missing, duplicated or malformed parameters. */
  | 'invalid_request'
  /** The callback's state matches no pending login (unknown, already used, or another instance's memory). */
  | 'state_unknown'
  /** The pending login expired before Duo sent the browser back. */
  | 'state_expired'
  /** The callback came from another browser than the one that started the sign-on. */
  | 'binding_mismatch'
  /** Duo sent the browser back with an OAuth error (error=access_denied, ...). */
  | 'callback_error'
  /** The audit trail could not record the outcome and its policy is to deny. */
  | 'audit_unavailable'
  /** Too many sign-ons are pending; try again shortly. */
  | 'busy'
  /** The route needs a completed Duo MFA session. */
  | 'mfa_required'
  /** The session expired (idle or absolute timeout). */
  | 'session_expired'
  /** The route needs a fresher MFA (step-up). */
  | 'mfa_stale'
  /** The session is a fail-open one (no MFA happened) and the route does not accept it. */
  | 'mfa_not_performed'
  /**
   * The session's MFA does not meet the route's factor and bypass policy (DuoMfaPolicyError:
   * `reason` bypass_not_allowed, factor_not_allowed or factor_unknown).
   */
  | 'mfa_policy'
  /**
   * The route needs another Duo application than the session satisfied (DuoStepUpError: its
   * `application` and `stepUpUrl`, where a step-up bound to the session's user starts).
   */
  | 'mfa_step_up'
  /** The user is not in a Duo group the route requires (or is in no Duo group at all). */
  | 'forbidden';

export class DuoError extends Error {
  override name = this.constructor.name;

  constructor(
    readonly code: DuoErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/**
 * A sign-on cap (per IP, per username, per IP on the callback) refused the request: HTTP 429,
 * and `Retry-After: retryAfterSec`. Its code is 'rate_limited', as for Duo's own 429.
 */
export class DuoRateLimitError extends DuoError {
  constructor(
    /** Seconds until the window that refused the request resets (at least 1). */
    readonly retryAfterSec: number,
  ) {
    super('rate_limited', `Too many sign-on attempts; try again in ${retryAfterSec} seconds`);
  }
}

/** Why a factor and bypass policy refused a session (see DuoMfaPolicyError). */
export type DuoMfaPolicyErrorReason =
  'bypass_not_allowed' | 'factor_not_allowed' | 'factor_unknown';

const POLICY_MESSAGES: Readonly<Record<DuoMfaPolicyErrorReason, string>> = {
  bypass_not_allowed:
    'This page needs a two-factor authentication; Duo let this sign-on through without one (bypass)',
  factor_not_allowed:
    'This page needs another two-factor method than the one used; sign on again with an allowed one',
  factor_unknown:
    'This page needs a known two-factor method; Duo reported one this application does not know',
};

/**
 * MfaGuard's refusal of a session whose MFA does not meet the route's factor and bypass policy:
 * HTTP 403, code `mfa_policy`, with the `reason` and where to get a fresh MFA (`signOnUrl`: the
 * sign-on page with the refused path as returnTo).
 */
export class DuoMfaPolicyError extends DuoError {
  constructor(
    readonly reason: DuoMfaPolicyErrorReason,
    /** The sign-on page with `returnTo` (and `reason=mfa_policy`): a fresh MFA, then back. */
    readonly signOnUrl: string,
  ) {
    super('mfa_policy', POLICY_MESSAGES[reason]);
  }
}

/**
 * MfaGuard's refusal of a session that has not satisfied the route's Duo application: HTTP 401,
 * code `mfa_step_up`. HTML GETs are sent (303) to `stepUpUrl`, a page whose form starts Duo for
 * that application as the session's user; JSON gets `{ error: 'mfa_step_up', application,
 * stepUpUrl }` (POST there with the CSRF token of the page, or open it in the browser).
 */
export class DuoStepUpError extends DuoError {
  constructor(
    readonly application: string,
    readonly stepUpUrl: string,
  ) {
    super('mfa_step_up', 'This page needs a two-factor sign-on with another Duo application');
  }
}

/** The Duo groups a refusal names, joined for a sentence ("admins", "admins, auditors"). */
export function groupList(groups: readonly string[]): string {
  return groups.join(', ');
}

/**
 * MfaGuard's refusal of a session outside the route's Duo groups (`@RequireDuoGroups`): HTTP 403,
 * code `forbidden`, naming the groups the route needs. The names come from the route's decorator
 * (the app's code), never from the request; pages escape them like any other text.
 */
export class DuoForbiddenError extends DuoError {
  constructor(
    /** The Duo groups the route accepts (any one of them lets the user in). */
    readonly groups: readonly string[],
  ) {
    super(
      'forbidden',
      groups.length === 0
        ? 'You are not allowed to open this page'
        : groups.length === 1
          ? `This page needs membership in the Duo group ${groups[0]}`
          : `This page needs membership in one of the Duo groups ${groupList(groups)}`,
    );
  }
}

export interface DuoConfigIssue {
  /** The option (or environment variable) that is wrong. */
  field: string;
  /** What is wrong and how to fix it; never the value of a secret. */
  message: string;
}

/** Thrown at construction or module boot when options are invalid: lists every bad field. */
export class DuoConfigError extends DuoError {
  constructor(readonly issues: readonly DuoConfigIssue[]) {
    super(
      'config',
      `Invalid Duo configuration:\n${issues.map((i) => `  - ${i.field} ${i.message}`).join('\n')}`,
    );
  }
}

/** The HTTP status of each code: the one table the error filter and DuoHttpException share. */
export const DUO_ERROR_STATUS: Readonly<Record<DuoErrorCode, number>> = {
  config: 500,
  invalid_argument: 400,
  invalid_request: 400,
  unavailable: 503,
  untrusted_certificate: 502,
  rate_limited: 503,
  csrf_failed: 403,
  busy: 503,
  audit_unavailable: 503,
  invalid_client: 502,
  duo_rejected: 502,
  health_response: 502,
  token_response: 502,
  invalid_grant: 401,
  state_unknown: 400,
  state_expired: 400,
  binding_mismatch: 400,
  callback_error: 401,
  id_token_malformed: 401,
  id_token_alg: 401,
  id_token_signature: 401,
  id_token_iss: 401,
  id_token_aud: 401,
  id_token_expired: 401,
  id_token_iat: 401,
  id_token_nbf: 401,
  id_token_claims: 401,
  id_token_nonce: 401,
  id_token_username: 401,
  id_token_auth_result: 401,
  mfa_required: 401,
  session_expired: 401,
  mfa_stale: 401,
  mfa_not_performed: 403,
  mfa_policy: 403,
  mfa_step_up: 401,
  forbidden: 403,
};

/** The HTTP status of an error: its code's, except a sign-on cap's own refusal (429). */
export function duoErrorStatus(error: DuoError): number {
  return error instanceof DuoRateLimitError ? 429 : (DUO_ERROR_STATUS[error.code] ?? 500);
}

/**
 * Codes whose message quotes Duo's answer (its error text may echo request data): logged, but
 * users get a fixed text instead.
 */
const UPSTREAM_TEXT: Partial<Record<DuoErrorCode, string>> = {
  invalid_grant: 'This sign-on could not be completed; start again',
  invalid_client: 'Two-factor authentication is misconfigured; contact your administrator',
  untrusted_certificate:
    'Two-factor authentication cannot reach Duo securely; contact your administrator',
  duo_rejected: 'Duo refused this sign-on; start again later',
};

/** What a user may read about an error: its message, or a fixed text when it quotes Duo. */
export function duoPublicMessage(error: Pick<DuoError, 'code' | 'message'>): string {
  return UPSTREAM_TEXT[error.code] ?? error.message;
}
