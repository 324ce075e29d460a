import { Injectable, Logger, type OnModuleInit } from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import type { NextFunction, Request, Response } from 'express';
import { DuoConfigError, DuoError } from './duo.errors.js';
import { DuoExceptionFilter } from './duo-exception.filter.js';
import { DuoHttpException } from './duo-http.exception.js';
import type { NormalizedDuoModuleOptions } from './duo-module-options.js';
import { DuoSignOn } from './duo-sign-on.service.js';
import { InjectDuoOptions } from './duo.tokens.js';

/**
 * The module's own callback route: GET at exactly the path of `redirectUri` (case and trailing
 * slash included), unless `routes: false`. It finishes the sign-on (DuoSignOn.finish: one audit
 * event per outcome, a 303 to the pending login's return path) and answers a refusal with the
 * library's error mapping (HTML page for browsers, JSON `{ statusCode, error, message }`
 * otherwise), whether or not the app turned the global error filter on. Any other error goes to
 * the app's error handling (Nest's exception filters: a 500).
 *
 * Mounted on the HTTP adapter when the module initialises: after the app's own middleware (body
 * limits, method checks, rate limits keyed on the callback path run first) and before Nest's 404
 * handler, at the URL's real path (a global prefix does not move it). An Express route, not a
 * Nest one, so no guard or interceptor of the app runs on it: this route is the sign-on itself.
 *
 * With `frontEnd` set, a failure never answers with a page or JSON: the browser is sent (303) to
 * `frontEnd.errorUrl` with the stable code alone in the query, `?error=<DuoErrorCode>`; an
 * unexpected error is logged and reported there as `unavailable`.
 */
@Injectable()
export class DuoCallbackRoute implements OnModuleInit {
  constructor(
    private readonly adapterHost: HttpAdapterHost,
    private readonly signOn: DuoSignOn,
    @InjectDuoOptions() private readonly options: NormalizedDuoModuleOptions,
  ) {}

  onModuleInit(): void {
    const adapter = this.adapterHost.httpAdapter;
    // routes: false, or an application context without HTTP (a CLI, a worker): nothing to serve.
    if (!this.options.routes || !adapter) {
      return;
    }
    if (adapter.getType() !== 'express') {
      throw new DuoConfigError([
        {
          field: 'routes',
          message:
            'the callback route needs @nestjs/platform-express; set routes: false and call DuoSignOn from your own routes',
        },
      ]);
    }
    const path = this.options.callbackPath;
    const errors = new DuoExceptionFilter(this.options.signOnPath, this.options);
    const frontEnd = this.options.frontEnd;
    const logger = new Logger('Duo');
    const toFrontEnd = (res: Response, err: unknown): void => {
      let code: DuoError['code'];
      if (err instanceof DuoHttpException) {
        errors.log(err.duoError);
        code = err.code;
      } else {
        logger.error(`Duo callback failed: ${err instanceof Error ? err.name : 'error'}`);
        code = 'unavailable';
      }
      if (res.headersSent || !frontEnd) {
        return;
      }
      // The code is one of the library's fixed [a-z_] names: nothing of the request is echoed.
      const target = frontEnd.errorUrl;
      res.setHeader('Cache-Control', 'no-store');
      res.setHeader('Referrer-Policy', 'no-referrer');
      res.redirect(303, `${target}${target.includes('?') ? '&' : '?'}error=${code}`);
    };
    // An Express route (HEAD included, hence the method check), and the exact path again: an
    // app without strict, case-sensitive routing would also match `/Auth/duo/callback/`.
    adapter.get(path, (req: Request, res: Response, next?: unknown) => {
      const pass = typeof next === 'function' ? (next as NextFunction) : () => undefined;
      if (req.method !== 'GET' || req.path !== path) {
        pass();
        return;
      }
      this.signOn
        .finish(req, res)
        .catch((err: unknown) => {
          if (frontEnd) {
            toFrontEnd(res, err);
            return;
          }
          if (!(err instanceof DuoHttpException)) {
            throw err;
          }
          errors.respond(err, req, res);
        })
        .catch(pass);
    });
  }
}
