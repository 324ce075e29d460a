import type { Request } from 'express';
import { Strategy } from 'passport-strategy';
import { DuoError } from './duo.errors.js';
import type { DuoCallbackOutcome, DuoFlowService } from './duo-flow.service.js';
import { defaultUsernameResolver } from './duo-module-options.js';

export interface DuoAuthenticateOptions {
  /** Which half of the sign-on; without it the route decides (the callback path finishes one). */
  step?: 'start' | 'callback';
  /** The first factor's user, when the app names it itself (`DuoSignOn.start`). */
  username?: string;
}

type Verify = (outcome: DuoCallbackOutcome, done: (err: unknown, user?: unknown) => void) => void;
type UsernameResolver = (req: Request) => unknown;

/**
 * A Passport strategy for Duo's OIDC flow. Starting, it answers the request itself, as a
 * strategy that redirects does: the binding cookie and a 303 to Duo (or the "Sign on with Duo"
 * button page), or, with failmode open and Duo unreachable, a session without MFA and a 303 to the
 * return path. Finishing (the callback), it checks the state, exchanges the code, verifies the
 * id_token and hands the result to `verify`, then `success()`; failures go to `error()`.
 */
export class PassportDuoStrategy extends Strategy {
  name = 'duo';

  constructor(
    private readonly flow: DuoFlowService,
    private readonly callbackPath: string,
    private readonly usernameResolver: UsernameResolver,
    private readonly verify: Verify,
  ) {
    super();
  }

  override authenticate(req: Request, options?: DuoAuthenticateOptions): void {
    const step = options?.step ?? (req.path === this.callbackPath ? 'callback' : 'start');
    if (step === 'callback') {
      this.flow.callback(req).then(
        (outcome) =>
          this.verify(outcome, (err, user) =>
            err ? this.error(err as Error) : this.success(user),
          ),
        (err: unknown) => this.error(err as Error),
      );
      return;
    }
    const res = req.res;
    if (!res) {
      this.error(new DuoError('config', 'The Duo strategy needs an Express request'));
      return;
    }
    this.flow
      .start(req, this.resolverFor(req, options?.username))
      .then((outcome) =>
        outcome.kind === 'failopen'
          ? this.flow.completeFailOpen(req, res, outcome)
          : this.flow.respondStart(res, outcome, req),
      )
      .catch((err: unknown) => this.error(err as Error));
  }

  /**
   * Who signs on: the username the app named; else, with the default resolver, the user an
   * earlier guard authenticated (`req.user.username`; a `req.user` without a string username is
   * refused rather than read from the form, so the two factors can never name different people);
   * else the configured resolver (by default the strictly parsed `username` form field).
   */
  private resolverFor(req: Request, username: string | undefined): UsernameResolver {
    if (username !== undefined) {
      return () => username;
    }
    const user = (req as Request & { user?: unknown }).user;
    if (this.usernameResolver === defaultUsernameResolver && user) {
      return () => firstFactorUsername(user);
    }
    return this.usernameResolver;
  }
}

/** `user.username` when it is a string, else undefined (refused as an invalid username). */
function firstFactorUsername(user: unknown): string | undefined {
  const name = typeof user === 'object' ? (user as { username?: unknown }).username : undefined;
  return typeof name === 'string' ? name : undefined;
}

/**
 * @deprecated The strategy now answers the start itself; a callback's result is DuoCallbackOutcome.
 * Kept one release for code that typed `req.user` with it.
 */
export type DuoStrategyOutcome = DuoCallbackOutcome;
