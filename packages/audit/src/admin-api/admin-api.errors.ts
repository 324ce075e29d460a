/**
 * Stable codes of every failure of the Admin API client. Callers switch on `code`; messages are for
 * people and never carry the secret key, the integration key or a signature.
 */
export type DuoAdminErrorCode =
  /** The Admin API options are invalid (see `issues`). */
  | 'admin_config'
  /** An argument to a call is invalid (times, limit, cursor). Nothing was sent. */
  | 'admin_invalid_argument'
  /** Duo refused the credentials (401: missing, unknown integration key, bad signature, date skew). */
  | 'admin_unauthorized'
  /** Duo refused the call for this integration (403: the Admin API application lacks "Grant read log"). */
  | 'admin_forbidden'
  /** Duo kept answering 429 after every allowed retry. */
  | 'admin_rate_limited'
  /** Duo could not be reached: network error, timeout, a 5xx answer, or a redirect (never followed). */
  | 'admin_unavailable'
  /** Duo refused the request with another 4xx FAIL envelope (such as 40002, invalid parameters). */
  | 'admin_rejected'
  /** The answer is not Duo's envelope: not JSON, too large, or missing a required field. */
  | 'admin_response';

export class DuoAdminError extends Error {
  override name = 'DuoAdminError';

  constructor(
    readonly code: DuoAdminErrorCode,
    message: string,
    /** HTTP status and Duo's numeric error code, when Duo answered. */
    readonly details: { status?: number; duoCode?: number } = {},
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

export interface DuoAdminConfigIssue {
  /** The option (or environment variable) that is wrong. */
  field: string;
  /** What is wrong and how to fix it; never the value. */
  message: string;
}

/** Thrown at construction when options are invalid: lists every bad field. */
export class DuoAdminConfigError extends DuoAdminError {
  override name = 'DuoAdminConfigError';

  constructor(readonly issues: readonly DuoAdminConfigIssue[]) {
    super(
      'admin_config',
      `Invalid Duo Admin API configuration:\n${issues.map((i) => `  - ${i.field} ${i.message}`).join('\n')}`,
    );
  }
}
