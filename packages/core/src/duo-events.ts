import type { DuoErrorCode } from './duo.errors.js';
import type { DuoMfaResult } from './duo.types.js';

/**
 * The auth events the library reports through `onEvent`; the audit trail stores them.
 * `input_validation_failed`: a request refused as malformed or forged (bad parameters, CSRF);
 * `rate_limited`: a request refused by a rate limit (the reason names the limit);
 * `session_invalid`: a forged, tampered or duplicated session cookie (one row per source and window);
 * `session_revoked`: an admin ended a user's session, or all of them (`username` is the user,
 * `detail.actor` the admin); `user_marked_compromised`: an admin marked a user compromised, which
 * ends all their sessions (`detail.revoked` counts them). A fail-open session ended because Duo
 * answers again is `session_expired` with reason `failopen_reverify`.
 */
export const DUO_AUTH_EVENT_TYPES = [
  'mfa_started',
  'mfa_succeeded',
  'mfa_failed',
  'mfa_denied',
  'mfa_unavailable',
  'mfa_failopen',
  'mfa_abandoned',
  'mfa_expired',
  'session_created',
  'session_logout',
  'session_expired',
  'access_denied',
  'input_validation_failed',
  'rate_limited',
  'session_invalid',
  'store_record_invalid',
  'session_revoked',
  'user_marked_compromised',
  // Written by the audit package's reconcile job against Duo's authentication log (issue 16).
  'reconcile_missing_at_duo',
  'reconcile_unclaimed_at_duo',
  'mfa_abandoned_reason',
  'mfa_fraud_reported',
] as const;

export type DuoAuthEventType = (typeof DUO_AUTH_EVENT_TYPES)[number];

export interface DuoAuthEvent {
  type: DuoAuthEventType;
  outcome: 'success' | 'failure' | 'info';
  username?: string;
  /** A DuoErrorCode, or a short reason of the app's (such as 'idle'). */
  reason?: DuoErrorCode | (string & {});
  /** The verified MFA result (succeeded events only); never logged whole: it carries tokens. */
  result?: DuoMfaResult;
  clientIp?: string;
  userAgent?: string;
  correlationId?: string;
  returnTo?: string;
  /** The route that refused access (access_denied). */
  path?: string;
  /** Small facts about a refusal (length and keyed hash of a rejected value, folded count): never a raw value. */
  detail?: Readonly<Record<string, string | number | boolean>>;
}
