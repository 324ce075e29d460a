import { ConfigService } from '@nestjs/config';
import type { NestExpressApplication } from '@nestjs/platform-express';
import express, { type Request } from 'express';
import type { DestinationStream } from 'pino';
import { clientIpOf } from '../duo/duo-request-context.js';
import { DUO_OPTIONS, DuoFlowService, type NormalizedDuoModuleOptions } from '../duo/index.js';
import { accessLogMiddleware, AppLogger, type AppLogLevel } from './app-logger.js';
import { CsrfService } from './csrf.service.js';
import {
  BODY_LIMIT,
  BODY_PARAMETER_LIMIT,
  bodyErrorHandler,
  callbackMethodGuard,
  csrfMiddleware,
  rateLimitMiddleware,
  refusalAudit,
  securityHeaders,
  strictQueryMiddleware,
  strictQueryParser,
  strictUrlencodedParser,
  verifyJsonUtf8,
} from './http-security.js';
import { RateLimiter } from './rate-limiter.js';
import { requestIdMiddleware } from './request-context.js';
import { appRedirectGuard } from './redirect-guard.js';

export interface SecuritySetupOptions {
  /** Where the JSON log lines go (tests capture them). @default stdout */
  logDestination?: DestinationStream;
}

/**
 * Mounts the request defences, in this order: correlation id and access log, security headers,
 * body parsers with size limits (their errors become 4xx), callback method check, CSRF check of
 * state-changing requests, rate limits. Must run before the app starts listening.
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
  app.use(appRedirectGuard(config.getOrThrow<string>('PUBLIC_URL'), duo.apiOrigin, logger));
  app.use(accessLogMiddleware(logger));
  app.use(...securityHeaders(config.getOrThrow<string>('PUBLIC_URL').startsWith('https://')));
  app.use(strictQueryMiddleware(audit));
  // express.json's middleware is named jsonParser, so Nest adds no second one.
  app.use(express.json({ limit: BODY_LIMIT, strict: true, verify: verifyJsonUtf8 }));
  app.use(strictUrlencodedParser({ limit: BODY_LIMIT, parameterLimit: BODY_PARAMETER_LIMIT }));
  app.use(bodyErrorHandler(audit));
  app.use(callbackMethodGuard(duo.callbackPath, audit));

  app.use(csrfMiddleware(app.get(CsrfService), emit));
  let lastStoreWarning = 0;
  app.use(
    rateLimitMiddleware(
      app.get(RateLimiter),
      {
        loginPath: '/login',
        callbackPath: duo.callbackPath,
        windowMs: config.getOrThrow<number>('RATE_LIMIT_WINDOW_MS'),
        loginPerIp: config.getOrThrow<number>('RATE_LIMIT_LOGIN_PER_IP'),
        loginPerUser: config.getOrThrow<number>('RATE_LIMIT_LOGIN_PER_USER'),
        callbackPerIp: config.getOrThrow<number>('RATE_LIMIT_CALLBACK_PER_IP'),
        ipv6Subnet: config.getOrThrow<number>('RATE_LIMIT_IPV6_SUBNET'),
      },
      emit,
      (err) => {
        if (Date.now() - lastStoreWarning > 10_000) {
          lastStoreWarning = Date.now();
          logger.write('warn', 'rate-limit store unavailable; requests let through', {
            context: 'RateLimit',
            reason: err instanceof Error ? err.name : 'error',
          });
        }
      },
    ),
  );
  return logger;
}
