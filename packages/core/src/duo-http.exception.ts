import { HttpException } from '@nestjs/common';
import { duoErrorStatus, duoPublicMessage, DuoError, type DuoErrorCode } from './duo.errors.js';

/** The JSON body of every Duo refusal: `error` is the stable DuoError code. */
export interface DuoHttpExceptionBody {
  statusCode: number;
  error: DuoErrorCode;
  message: string;
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
    const body: DuoHttpExceptionBody = {
      statusCode,
      error: duoError.code,
      message: duoPublicMessage(duoError),
    };
    super(body, statusCode, { cause: duoError });
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
