import { finished } from 'node:stream';
import type { Request, Response } from 'express';
import { DuoError } from './duo.errors.js';
import type { DuoStrategy } from './duo.strategy.js';
import { DUO_STRATEGY } from './duo.tokens.js';
import type { DuoAuthenticateOptions } from './passport-duo.strategy.js';

/** The strategy answered the request itself (the response is finished, or its client is gone). */
export const ANSWERED = Symbol('duo:answered');

/**
 * Runs the Duo strategy through its own Passport instance (several DuoModules never share one
 * registry) and settles exactly once: with the verified user (the callback), with ANSWERED when
 * the strategy wrote the response itself (the start: a 303 or the button page, as a strategy that
 * redirects does, without calling back), or with the error. Nothing dangles: the response ending
 * settles the promise and the listener is removed as soon as it settles.
 */
export function runDuoStrategy(
  strategy: DuoStrategy,
  req: Request,
  res: Response,
  options: DuoAuthenticateOptions,
): Promise<unknown> {
  return new Promise((resolve, reject) => {
    let settled = false;
    const settle = (finish: () => void) => {
      if (!settled) {
        settled = true;
        stopWatching();
        finish();
      }
    };
    const authenticate = strategy
      .getPassportInstance()
      .authenticate(DUO_STRATEGY, { session: false, ...options }, (err: unknown, user: unknown) =>
        settle(() => {
          if (err) {
            reject(asError(err));
          } else if (user) {
            resolve(user);
          } else {
            reject(new DuoError('invalid_request', 'The sign-on failed; start again'));
          }
        }),
      ) as (req: Request, res: Response, next: (err?: unknown) => void) => void;
    // Never fires synchronously, so `settle` cannot run before this constant exists.
    const stopWatching = finished(res, () => settle(() => resolve(ANSWERED)));
    authenticate(req, res, (err?: unknown) =>
      settle(() =>
        reject(
          err ? asError(err) : new DuoError('invalid_request', 'The sign-on failed; start again'),
        ),
      ),
    );
  });
}

function asError(err: unknown): Error {
  return err instanceof Error
    ? err
    : new DuoError('unavailable', 'The sign-on failed', { cause: err });
}
