import {
  Injectable,
  IntrinsicException,
  type CanActivate,
  type ExecutionContext,
} from '@nestjs/common';
import type { Request, Response } from 'express';
import { DuoHttpException } from './duo-http.exception.js';
import { DuoSignOnProtection } from './duo-sign-on-protection.service.js';
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
 * First the start's defences (unless DuoCsrfGuard ran them already): the per-IP cap and the CSRF
 * check (the `_csrf` field or `X-CSRF-Token` header that `@DuoFormFields()` gives the form). Then
 * it runs the Duo strategy: the username (`req.user.username` when an earlier guard set
 * `req.user`, else the `username` form field; see `usernameResolver`), the per-username cap, and
 * the answer: the browser-binding cookie and a 303 to Duo (or the "Sign on with Duo" button page),
 * or, when Duo is unreachable and failmode is open, a session without MFA and a 303 to the return
 * path. The route body never runs. A refusal is thrown as DuoHttpException (status and stable
 * code; a cap's 429 with Retry-After already on the response).
 *
 * Behind a password first factor, list DuoCsrfGuard first, so the CSRF check and the per-IP cap
 * run before the password is checked: `@UseGuards(DuoCsrfGuard, LocalAuthGuard, DuoStartGuard)`.
 */
@Injectable()
export class DuoStartGuard implements CanActivate {
  constructor(
    private readonly strategy: DuoStrategy,
    private readonly protection: DuoSignOnProtection,
  ) {}

  async canActivate(context: ExecutionContext): Promise<boolean> {
    const http = context.switchToHttp();
    const req = http.getRequest<Request>();
    const res = http.getResponse<Response>();
    let outcome: unknown;
    try {
      await this.protection.checkStart(req);
      outcome = await runDuoStrategy(this.strategy, req, res, { step: 'start' });
    } catch (err) {
      DuoSignOnProtection.answerHeaders(res, err);
      throw DuoHttpException.from(err);
    }
    if (outcome !== ANSWERED) {
      // Only the callback step yields a user; a start that did not answer is a broken strategy.
      throw DuoHttpException.from(new Error('The Duo sign-on start did not answer the request'));
    }
    throw new DuoRequestAnswered();
  }
}

/**
 * The sign-on start's defences that must run BEFORE the app's first factor: the per-IP cap on
 * starts (the brute-force brake on a password form) and the CSRF check (login CSRF: a password
 * checked for another site's form). List it first:
 * `@SkipMfa() @Post('login') @UseGuards(DuoCsrfGuard, LocalAuthGuard, DuoStartGuard) login() {}`.
 * DuoStartGuard then does not run them again. Without it, DuoStartGuard runs them itself, after
 * the first factor: Duo is still never started for a forged form, but wrong passwords are then
 * neither capped per IP nor refused for a missing token.
 */
@Injectable()
export class DuoCsrfGuard implements CanActivate {
  constructor(private readonly protection: DuoSignOnProtection) {}

  async canActivate(context: ExecutionContext): Promise<boolean> {
    const http = context.switchToHttp();
    const req = http.getRequest<Request>();
    try {
      await this.protection.checkStart(req);
    } catch (err) {
      DuoSignOnProtection.answerHeaders(http.getResponse<Response>(), err);
      throw DuoHttpException.from(err);
    }
    return true;
  }
}
