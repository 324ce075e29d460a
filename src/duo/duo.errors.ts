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
  /** Duo answered 429. */
  | 'rate_limited'
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
  /** The user is not in a Duo group the route requires. */
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
