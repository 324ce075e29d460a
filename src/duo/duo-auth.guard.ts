import { Injectable, type ExecutionContext } from '@nestjs/common';
import { AuthGuard } from '@nestjs/passport';
import { DUO_STRATEGY } from './duo.tokens.js';
import { DuoError } from './duo.errors.js';

/** Runs the Duo strategy: on the sign-on start route and on the callback route only. */
@Injectable()
export class DuoAuthGuard extends AuthGuard(DUO_STRATEGY) {
  override getAuthenticateOptions(_context: ExecutionContext) {
    return { session: false };
  }

  override handleRequest<TUser>(err: unknown, user: TUser): TUser {
    if (err) {
      throw err instanceof DuoError
        ? err
        : new DuoError('unavailable', 'The sign-on failed', { cause: err });
    }
    if (!user) {
      throw new DuoError('invalid_request', 'The sign-on failed; start again');
    }
    return user;
  }
}
