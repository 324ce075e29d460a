/**
 * The audit event catalogue: every event the flows may record, its outcome, and the reason codes.
 * Recording an event is type-checked against this file (see AuditEventInput).
 */
import {
  DUO_AUTH_EVENT_TYPES,
  type DuoAuthContext,
  type DuoAuthResult,
  type DuoErrorCode,
} from '@duo-nest/core';

/** Every auth event of the Duo library, plus the audit trail's own. */
export const AUDIT_EVENT_TYPES = [...DUO_AUTH_EVENT_TYPES, 'audit_spool_replayed'] as const;

export type AuditEventType = (typeof AUDIT_EVENT_TYPES)[number];

export const AUDIT_OUTCOMES = ['success', 'failure', 'info'] as const;
export type AuditOutcome = (typeof AUDIT_OUTCOMES)[number];

/** Reason codes the app adds to the Duo library's error codes. */
export const AUDIT_APP_REASONS = [
  'state_mismatch',
  'state_not_found',
  'binding_mismatch',
  'callback_error',
  'invalid_request',
  'mfa_required',
  'mfa_stale',
  'group_required',
  'idle',
  'absolute',
  'state_store',
  'audit_unavailable',
  'offsite_return_to',
  'admin_revoked',
  'compromised',
  'failopen_reverify',
  // reconcile (Duo's authentication log against our trail)
  'no_duo_transaction',
  'duo_not_success',
  'no_callback',
  'username_mismatch',
  'time_mismatch',
  'other',
] as const;
export type AuditAppReason = (typeof AUDIT_APP_REASONS)[number];

/** A reason code: a Duo library error code, an app code, or another short machine code. */

export type AuditReason = DuoErrorCode | AuditAppReason | (string & {});

/** The outcome each event type records by default (the caller may still say otherwise). */
export const AUDIT_DEFAULT_OUTCOME: Readonly<Record<AuditEventType, AuditOutcome>> = {
  mfa_started: 'info',
  mfa_succeeded: 'success',
  mfa_denied: 'failure',
  mfa_failed: 'failure',
  mfa_unavailable: 'failure',
  mfa_failopen: 'success',
  mfa_abandoned: 'failure',
  mfa_expired: 'failure',
  session_created: 'success',
  session_logout: 'info',
  session_expired: 'info',
  access_denied: 'failure',
  rate_limited: 'failure',
  input_validation_failed: 'failure',
  session_invalid: 'failure',
  store_record_invalid: 'failure',
  session_revoked: 'success',
  user_marked_compromised: 'success',
  reconcile_missing_at_duo: 'failure',
  reconcile_unclaimed_at_duo: 'failure',
  mfa_abandoned_reason: 'info',
  mfa_fraud_reported: 'failure',
  audit_spool_replayed: 'info',
};

/** Small scalar details; keys that look like secrets are dropped before storage. */
export type AuditDetail = Record<string, string | number | boolean | null>;

/** What a flow hands to AuditService.record(): the service derives the Duo columns from authContext. */
export interface AuditEventInput {
  type: AuditEventType;
  outcome: AuditOutcome;
  username?: string | null;
  /** Required in spirit for mfa_failed / mfa_denied / access_denied: a machine code, never free text. */
  reason?: AuditReason | null;
  authContext?: DuoAuthContext | null;
  authResult?: DuoAuthResult | null;
  clientIp?: string | null;
  userAgent?: string | null;
  correlationId?: string | null;
  /** Stored (bounded and encoded) as detail.return_to. */
  returnTo?: string | null;
  detail?: AuditDetail | null;
}

/** Request/instance facts that complete an input; fields of the input win over these. */
export interface AuditRecordContext {
  /** The event id (uuid); generated when absent. Given by the spool replayer to deduplicate. */
  id?: string;
  /** When it happened; now when absent. */
  occurredAt?: Date | string;
  instanceId?: string | null;
  clientIp?: string | null;
  userAgent?: string | null;
  correlationId?: string | null;
}

export function isAuditEventType(value: unknown): value is AuditEventType {
  return typeof value === 'string' && (AUDIT_EVENT_TYPES as readonly string[]).includes(value);
}

export function isAuditOutcome(value: unknown): value is AuditOutcome {
  return typeof value === 'string' && (AUDIT_OUTCOMES as readonly string[]).includes(value);
}
