import type { Request } from 'express';
import { Strategy } from 'passport-strategy';
import type { DuoCallbackOutcome, DuoFlowService, DuoStartOutcome } from './duo-flow.service.js';

export type DuoStrategyOutcome =
  { step: 'start'; start: DuoStartOutcome } | { step: 'callback'; callback: DuoCallbackOutcome };

export interface DuoAuthenticateOptions {
  step: 'start' | 'callback';
}

type Verify = (outcome: DuoStrategyOutcome, done: (err: unknown, user?: unknown) => void) => void;

/**
 * A Passport strategy for Duo's OIDC flow. Without a step it decides by the route: the callback
 * route (the path of the redirect URI) finishes a sign-on, any other route starts one.
 */
export class PassportDuoStrategy extends Strategy {
  name = 'duo';

  constructor(
    private readonly flow: DuoFlowService,
    private readonly callbackPath: string,
    private readonly verify: Verify,
  ) {
    super();
  }

  override authenticate(req: Request, options?: Partial<DuoAuthenticateOptions>): void {
    const step = options?.step ?? (req.path === this.callbackPath ? 'callback' : 'start');
    const run: Promise<DuoStrategyOutcome> =
      step === 'callback'
        ? this.flow.callback(req).then((callback) => ({ step, callback }))
        : this.flow.start(req).then((start) => ({ step, start }));
    run.then(
      (outcome) =>
        this.verify(outcome, (err, user) => {
          if (err) {
            this.error(err as Error);
          } else {
            this.success(user);
          }
        }),
      (err: unknown) => this.error(err as Error),
    );
  }
}
