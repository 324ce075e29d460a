import { Injectable } from '@nestjs/common';
import type { Request, Response } from 'express';
import { DuoError } from './duo.errors.js';
import { DuoFlowService, type DuoCallbackOutcome } from './duo-flow.service.js';
import { DuoHttpException } from './duo-http.exception.js';
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
  ) {}

  /**
   * Starts Duo MFA for `username` (the user the app's first factor authenticated): 303 to Duo
   * (or the button page), or, failmode open and Duo unreachable, a session without MFA and a 303
   * to the return path (`returnTo` of the body or query when same-origin, else the default page).
   */
  async start(req: Request, res: Response, username: string): Promise<void> {
    let outcome: unknown;
    try {
      outcome = await runDuoStrategy(this.strategy, req, res, { step: 'start', username });
    } catch (err) {
      throw DuoHttpException.from(err);
    }
    if (outcome !== ANSWERED) {
      throw DuoHttpException.from(new Error('The Duo sign-on start did not answer the request'));
    }
  }

  /**
   * Finishes the sign-on on Duo's redirect back (GET, with `duo_code` and `state`): checks and
   * consumes the pending login, exchanges the code, verifies the id_token, opens the MFA session
   * and answers 303 to the pending login's return path.
   */
  async finish(req: Request, res: Response): Promise<void> {
    let outcome: unknown;
    try {
      outcome = await runDuoStrategy(this.strategy, req, res, { step: 'callback' });
    } catch (err) {
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
