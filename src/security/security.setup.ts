import { ConfigService } from '@nestjs/config';
import type { NestExpressApplication } from '@nestjs/platform-express';
import express, { type Request } from 'express';
import type { DestinationStream } from 'pino';
import { DuoApplications } from '@duo-nest/core';
import {
  clientIpOf,
  DUO_OPTIONS,
  DuoCsrfService,
  DuoFlowService,
  type NormalizedDuoModuleOptions,
} from '@duo-nest/core/internal';
import { accessLogMiddleware, AppLogger, type AppLogLevel } from './app-logger.js';
import {
  BODY_LIMIT,
  BODY_PARAMETER_LIMIT,
  bodyErrorHandler,
  callbackMethodGuard,
  csrfMiddleware,
  refusalAudit,
  securityHeaders,
  setRefusalLanguages,
  strictQueryMiddleware,
  strictQueryParser,
  strictUrlencodedParser,
  verifyJsonUtf8,
} from './http-security.js';
import { requestIdMiddleware } from './request-context.js';
import { appRedirectGuard } from './redirect-guard.js';
import { faviconMiddleware } from './favicon.js';
import { SIGN_ON_START_PATH } from '../auth/auth.paths.js';

export interface SecuritySetupOptions {
  /** Where the JSON log lines go (tests capture them). @default stdout */
  logDestination?: DestinationStream;
}

/**
 * Mounts the app's request defences, in this order: correlation id and access log, security
 * headers, body parsers with size limits (their errors become 4xx), callback method check, CSRF
 * check of the app's own state-changing requests. The sign-on's caps and the start's CSRF check
 * are the Duo library's (DuoModule `limits` and `csrf`). Must run before the app starts listening.
 */
export function applySecurity(
  app: NestExpressApplication,
  options: SecuritySetupOptions = {},
): AppLogger {
  const config = app.get(ConfigService);
  const duo = app.get<NormalizedDuoModuleOptions>(DUO_OPTIONS);
  // Only the exact registered paths match (RDR-12): /Auth/duo/callback and /login/ are 404.
  // (Express creates its router on first use, so set both on the router too: Nest adds the routes later.)
  app.set('case sensitive routing', true);
  app.set('strict routing', true);
  const router = (
    app.getHttpAdapter().getInstance() as unknown as { router?: Record<string, unknown> }
  ).router;
  if (router) {
    router.caseSensitive = true;
    router.strict = true;
  }

  const logger = new AppLogger({
    level: config.get<AppLogLevel>('LOG_LEVEL') ?? 'info',
    instanceId: config.get<string>('INSTANCE_ID') ?? 'app',
    destination: options.logDestination,
  });
  app.useLogger(logger);
  // A forwarded client address that is not an IP (a trusted proxy passes on whatever the client
  // sent) falls back to the socket's, for every reader of req.ip: audit, limits, stores.
  const request = (app.getHttpAdapter().getInstance() as { request: object }).request;
  Object.defineProperty(request, 'ip', {
    configurable: true,
    enumerable: true,
    get(this: Request) {
      return clientIpOf({
        ip: Reflect.get(Object.getPrototypeOf(request) as object, 'ip', this) as string | undefined,
        socket: this.socket,
      });
    },
  });
  const flow = app.get(DuoFlowService);
  const emit = (event: Parameters<DuoFlowService['emit']>[0]) => flow.emit(event);
  const audit = refusalAudit(emit);
  // One strict decoder for every parameter: the query (parser, and a check before any route), the
  // urlencoded bodies (strictUrlencodedParser) and our cookies (readStrictCookie in DuoCookies and
  // CsrfService).
  app.set('query parser', strictQueryParser);
  app.use(requestIdMiddleware);
  // The refusals made before any route answer in the pages' languages (DuoModule's locales).
  setRefusalLanguages(
    (app.getHttpAdapter().getInstance() as { locals: Record<string, unknown> }).locals,
    duo,
  );
  app.use(appRedirectGuard(config.getOrThrow<string>('PUBLIC_URL'), duo.apiOrigin, logger, duo));
  app.use(accessLogMiddleware(logger));
  app.use(...securityHeaders(config.getOrThrow<string>('PUBLIC_URL').startsWith('https://')));
  // Before the cookies, CSRF and the guards: the icon is public and the same for everyone.
  app.use(faviconMiddleware());
  app.use(strictQueryMiddleware(audit));
  // express.json's middleware is named jsonParser, so Nest adds no second one.
  app.use(express.json({ limit: BODY_LIMIT, strict: true, verify: verifyJsonUtf8 }));
  app.use(strictUrlencodedParser({ limit: BODY_LIMIT, parameterLimit: BODY_PARAMETER_LIMIT }));
  app.use(bodyErrorHandler(audit));
  app.use(callbackMethodGuard(duo.callbackPath, audit));

  // The sign-on start (POST /login, DuoStartGuard) is checked by the Duo library itself, after
  // its per-IP cap; the library also caps starts per username and callbacks per IP (DuoModule's
  // `limits`, from RATE_LIMIT_*). Every other state-changing route is checked here, with the
  // library's token service: one cookie and one token for every form. The step-up start (POST
  // /auth/duo/step-up) is the library's too: it checks the token after its per-IP cap, and a
  // token checked here first would be spent (verify removes it from the body).
  app.use(
    csrfMiddleware(app.get(DuoCsrfService), emit, [
      SIGN_ON_START_PATH,
      app.get(DuoApplications).config.stepUpPath,
    ]),
  );
  return logger;
}
