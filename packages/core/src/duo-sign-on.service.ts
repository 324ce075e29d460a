import { Injectable } from '@nestjs/common';
import type { Request, Response } from 'express';
import { DuoError } from './duo.errors.js';
import { DuoFlowService, type DuoCallbackOutcome } from './duo-flow.service.js';
import type { DuoFormFieldsValue } from './duo-csrf.service.js';
import { DuoCsrfService } from './duo-csrf.service.js';
import { DuoHttpException } from './duo-http.exception.js';
import type { NormalizedDuoModuleOptions } from './duo-module-options.js';
import { DuoSessionService } from './duo-session.service.js';
import { DuoSignOnProtection } from './duo-sign-on-protection.service.js';
import type { MfaSession } from './stores/session-store.interface.js';
import { InjectDuoOptions } from './duo.tokens.js';
import { DuoStrategy } from './duo.strategy.js';
import { ANSWERED, runDuoStrategy } from './duo-strategy.runner.js';

/**
 * The sign-on as two calls, for apps that serve the routes themselves (`routes: false`): one call
 * per route, each answers the request itself or throws DuoHttpException (status and stable code).
 *
 * @example
 * \@SkipMfa() \@Post('login') \@UseGuards(LocalAuthGuard)
 * login(@Req() req: Request, @Res() res: Response) { return this.signOn.start(req, res, req.user.name); }
 * \@SkipMfa() \@Get('duo/callback')
 * callback(@Req() req: Request, @Res() res: Response) { return this.signOn.finish(req, res); }
 */
@Injectable()
export class DuoSignOn {
  constructor(
    private readonly strategy: DuoStrategy,
    private readonly flow: DuoFlowService,
    private readonly protection: DuoSignOnProtection,
    private readonly csrf: DuoCsrfService,
    private readonly sessions: DuoSessionService,
    @InjectDuoOptions() private readonly options: NormalizedDuoModuleOptions,
  ) {}

  /**
   * Signs the browser out: destroys its MFA session, clears the cookie and reports
   * `session_logout`. The session that was closed, or undefined when there was none. The route
   * that calls it is state-changing: check its CSRF token (`DuoCsrfService.verify`) first.
   */
  async signOut(req: Request, res: Response): Promise<MfaSession | undefined> {
    const session = await this.sessions.close(req, res);
    if (session) {
      await this.flow.emit({ type: 'session_logout', outcome: 'info', username: session.username });
    }
    return session;
  }

  /**
   * The hidden field (and the X-CSRF-Token response header) the sign-on form must carry: what
   * `@DuoFormFields()` gives a route, for code that has the request and response at hand.
   */
  formFields(req: Request, res: Response): DuoFormFieldsValue {
    return this.options.csrf === false
      ? { csrfToken: '', html: '' }
      : this.csrf.formFields(req, res);
  }

  /**
   * Starts Duo MFA for `username` (the user the app's first factor authenticated): the per-IP cap
   * and the CSRF check (unless DuoCsrfGuard ran them), the per-username cap, then a 303 to Duo
   * (or the button page), or, failmode open and Duo unreachable, a session without MFA and a 303
   * to the return path (`returnTo` of the body or query when same-origin, else the default page).
   */
  async start(req: Request, res: Response, username: string): Promise<void> {
    let outcome: unknown;
    try {
      await this.protection.checkStart(req);
      outcome = await runDuoStrategy(this.strategy, req, res, { step: 'start', username });
    } catch (err) {
      DuoSignOnProtection.answerHeaders(res, err);
      throw DuoHttpException.from(err);
    }
    if (outcome !== ANSWERED) {
      throw DuoHttpException.from(new Error('The Duo sign-on start did not answer the request'));
    }
  }

  /**
   * Finishes the sign-on on Duo's redirect back (GET, with `duo_code` and `state`): the per-IP
   * callback cap, then checks and consumes the pending login, exchanges the code, verifies the
   * id_token, opens the MFA session and answers 303 to the pending login's return path.
   */
  async finish(req: Request, res: Response): Promise<void> {
    let outcome: unknown;
    try {
      await this.protection.checkCallback(req);
      outcome = await runDuoStrategy(this.strategy, req, res, { step: 'callback' });
    } catch (err) {
      DuoSignOnProtection.answerHeaders(res, err);
      throw DuoHttpException.from(err);
    }
    if (outcome === ANSWERED) {
      return;
    }
    try {
      await this.flow.completeCallback(req, res, outcome as DuoCallbackOutcome);
    } catch (err) {
      // A Duo refusal keeps its code; anything else is a bug, left to the app's error handling (500).
      throw err instanceof DuoError ? new DuoHttpException(err) : err;
    }
  }
}
