import { HttpException } from '@nestjs/common';
import {
  duoErrorStatus,
  duoPublicMessage,
  DuoError,
  DuoForbiddenError,
  DuoMfaPolicyError,
  DuoStepUpError,
  type DuoErrorCode,
  type DuoMfaPolicyErrorReason,
} from './duo.errors.js';

/** The JSON body of every Duo refusal: `error` is the stable DuoError code. */
export interface DuoHttpExceptionBody {
  statusCode: number;
  error: DuoErrorCode;
  message: string;
  /** `mfa_policy` only: why the factor and bypass policy refused the session. */
  reason?: DuoMfaPolicyErrorReason;
  /** `mfa_policy` only: the sign-on page with returnTo, for a fresh MFA. */
  signOnUrl?: string;
  /** `mfa_step_up` only: the application the route needs. */
  application?: string;
  /** `mfa_step_up` only: the step-up page (GET) and start (POST with its CSRF token). */
  stepUpUrl?: string;
  /** `forbidden` from @RequireDuoGroups only: the Duo groups the route needs (any one of them). */
  groups?: string[];
}

/** The JSON body of a refusal (the error filter and DuoHttpException answer the same). */
export function duoErrorBody(error: DuoError, statusCode: number): DuoHttpExceptionBody {
  const body: DuoHttpExceptionBody = {
    statusCode,
    error: error.code,
    message: duoPublicMessage(error),
  };
  if (error instanceof DuoMfaPolicyError) {
    body.reason = error.reason;
    body.signOnUrl = error.signOnUrl;
  }
  if (error instanceof DuoStepUpError) {
    body.application = error.application;
    body.stepUpUrl = error.stepUpUrl;
  }
  if (error instanceof DuoForbiddenError && error.groups.length > 0) {
    body.groups = [...error.groups];
  }
  return body;
}

/**
 * A Duo refusal as Nest's HTTP error: the guards, `DuoStartGuard` and `DuoSignOn` throw it, so an app
 * without the library's error filter still answers the right status with `{ statusCode, error:
 * code, message }`. `code` is the stable DuoError code; `cause` is the DuoError (for logs only).
 */
export class DuoHttpException extends HttpException {
  override name = 'DuoHttpException';
  readonly code: DuoErrorCode;

  constructor(readonly duoError: DuoError) {
    const statusCode = duoErrorStatus(duoError);
    super(duoErrorBody(duoError, statusCode), statusCode, { cause: duoError });
    this.code = duoError.code;
  }

  /** The HTTP face of any sign-on failure: a DuoError keeps its code, anything else is 'unavailable'. */
  static from(err: unknown): DuoHttpException {
    if (err instanceof DuoHttpException) {
      return err;
    }
    return new DuoHttpException(
      err instanceof DuoError
        ? err
        : new DuoError('unavailable', 'The sign-on failed; try again later', { cause: err }),
    );
  }
}
