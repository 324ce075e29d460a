import {
  Injectable,
  IntrinsicException,
  type CanActivate,
  type ExecutionContext,
} from '@nestjs/common';
import type { Request, Response } from 'express';
import { DuoHttpException } from './duo-http.exception.js';
import { DuoStrategy } from './duo.strategy.js';
import { ANSWERED, runDuoStrategy } from './duo-strategy.runner.js';

/**
 * Thrown by DuoStartGuard once the sign-on start has answered the request, so that Nest runs
 * neither the (empty) route handler nor its reply. Nest's own handler sees a sent response and
 * stays silent (no log, no second write). A catch-all exception filter of the app receives it too:
 * such a filter must leave a request alone once `res.headersSent` (or ignore this class).
 */
export class DuoRequestAnswered extends IntrinsicException {
  override name = 'DuoRequestAnswered';

  constructor() {
    super('The Duo sign-on answered this request');
  }
}

/**
 * Starts Duo MFA after the app's first factor, on any route:
 * `@SkipMfa() @Post('login') @UseGuards(LocalAuthGuard, DuoStartGuard) login() {}`.
 *
 * It runs the Duo strategy, which answers the request itself: the browser-binding cookie and a 303
 * to Duo (or the "Sign on with Duo" button page), or, when Duo is unreachable and failmode is open,
 * a session without MFA and a 303 to the return path. The route body never runs. The username is
 * `req.user.username` when an earlier guard set `req.user`, else the `username` form field (see
 * `usernameResolver`). A refusal is thrown as DuoHttpException (status and stable code).
 */
@Injectable()
export class DuoStartGuard implements CanActivate {
  constructor(private readonly strategy: DuoStrategy) {}

  async canActivate(context: ExecutionContext): Promise<boolean> {
    const http = context.switchToHttp();
    const req = http.getRequest<Request>();
    const res = http.getResponse<Response>();
    let outcome: unknown;
    try {
      outcome = await runDuoStrategy(this.strategy, req, res, { step: 'start' });
    } catch (err) {
      throw DuoHttpException.from(err);
    }
    if (outcome !== ANSWERED) {
      // Only the callback step yields a user; a start that did not answer is a broken strategy.
      throw DuoHttpException.from(new Error('The Duo sign-on start did not answer the request'));
    }
    throw new DuoRequestAnswered();
  }
}
