/**
 * The audit trail cannot take the event: the database failed or was too slow and the policy is
 * 'deny', or the spool could not be written either (disk full). The caller refuses the login with
 * the "service unavailable" page; never swallow it.
 */
export class AuditUnavailableError extends Error {
  override name = 'AuditUnavailableError';
  readonly code = 'audit_unavailable';

  constructor(message = 'The audit trail is unavailable', options?: { cause?: unknown }) {
    super(message, options);
  }
}
