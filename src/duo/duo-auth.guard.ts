import { Injectable, type CanActivate, type ExecutionContext } from '@nestjs/common';
import type { Request, Response } from 'express';
import { DuoError } from './duo.errors.js';
import { DuoStrategy } from './duo.strategy.js';
import { DUO_STRATEGY } from './duo.tokens.js';

/**
 * Runs the Duo strategy, on the sign-on start route and on the callback route only; `req.user`
 * becomes the strategy's outcome. (Like @nestjs/passport's AuthGuard, but through the strategy's own
 * Passport instance, so several DuoModules never share one registry.)
 */
@Injectable()
export class DuoAuthGuard implements CanActivate {
  constructor(private readonly strategy: DuoStrategy) {}

  async canActivate(context: ExecutionContext): Promise<boolean> {
    const http = context.switchToHttp();
    const req = http.getRequest<Request & { user?: unknown }>();
    const res = http.getResponse<Response>();
    req.user = await new Promise((resolve, reject) => {
      const authenticate = this.strategy
        .getPassportInstance()
        .authenticate(DUO_STRATEGY, { session: false }, (err: unknown, user: unknown) => {
          if (err) {
            reject(
              err instanceof DuoError
                ? err
                : new DuoError('unavailable', 'The sign-on failed', { cause: err }),
            );
          } else if (!user) {
            reject(new DuoError('invalid_request', 'The sign-on failed; start again'));
          } else {
            resolve(user);
          }
        }) as (req: Request, res: Response, next: (err?: unknown) => void) => void;
      authenticate(req, res, (err) =>
        reject(err instanceof Error ? err : new DuoError('invalid_request', 'The sign-on failed')),
      );
    });
    return true;
  }
}
