import type { ErrorRequestHandler, NextFunction, Request, RequestHandler, Response } from 'express';
import helmet from 'helmet';
import {
  messagePage,
  PAGE_CSP,
  parseLoginParams,
  requestContext,
  type DuoAuthEvent,
} from '../duo/index.js';
import type { CsrfService } from './csrf.service.js';
import {
  ipRateLimitSubject,
  normalizeUsernameForLimit,
  type RateLimitDecision,
  type RateLimiter,
  type RateLimitRule,
} from './rate-limiter.js';

/** Largest request body accepted (JSON or form); larger answers 413. */
export const BODY_LIMIT = '16kb';
/** Most form fields accepted in one body; more answers 413. */
export const BODY_PARAMETER_LIMIT = 20;

type Emit = (event: DuoAuthEvent) => Promise<void>;

/** A refusal in the shape of the Duo library's: JSON {statusCode,error,message}, or a small HTML page. */
export function refuse(
  req: Request,
  res: Response,
  status: number,
  error: string,
  message: string,
): void {
  if (res.headersSent) {
    return;
  }
  res.setHeader('Cache-Control', 'no-store');
  if (req.accepts(['json', 'html']) === 'html') {
    const title = status === 429 ? 'Too many attempts' : 'Request refused';
    res.setHeader('Content-Security-Policy', PAGE_CSP);
    res
      .status(status)
      .type('html')
      .send(messagePage(title, message, '/'));
    return;
  }
  res.status(status).json({ statusCode: status, error, message });
}

/**
 * Security headers on every response (helmet): the pages' strict CSP by default (a handler that
 * sets its own Content-Security-Policy later wins), HSTS when served over https, no framing,
 * nosniff, Referrer-Policy no-referrer, and Cache-Control no-store (nothing here is cacheable).
 */
export function securityHeaders(https: boolean): RequestHandler[] {
  const strict = helmet({
    contentSecurityPolicy: {
      useDefaults: false,
      directives: {
        'default-src': ["'none'"],
        'style-src': ["'unsafe-inline'"],
        'img-src': ["'self'"],
        'form-action': ["'self'"],
        'frame-ancestors': ["'none'"],
        'base-uri': ["'none'"],
      },
    },
    strictTransportSecurity: https ? { maxAge: 31_536_000, includeSubDomains: true } : false,
    frameguard: { action: 'deny' },
    referrerPolicy: { policy: 'no-referrer' },
    xContentTypeOptions: true,
  });
  const noStore: RequestHandler = (_req, res, next) => {
    res.setHeader('Cache-Control', 'no-store');
    next();
  };
  return [strict, noStore];
}

/** Body-parser failures (too large, malformed, bad charset) become 4xx, never a 500 with a stack. */
export const bodyErrorHandler: ErrorRequestHandler = (err: unknown, req, res, next) => {
  const e = err as { type?: unknown; status?: unknown; statusCode?: unknown };
  if (typeof e?.type !== 'string') {
    next(err);
    return;
  }
  const raw = typeof e.status === 'number' ? e.status : Number(e.statusCode);
  const status = raw >= 400 && raw < 500 ? raw : 400;
  refuse(
    req,
    res,
    status,
    status === 413 ? 'payload_too_large' : 'invalid_request',
    status === 413 ? 'The request is too large' : 'The request body could not be read',
  );
};

/** Only GET reaches the callback route (HEAD, POST, PUT, ... answer 405 before anything else). */
export function callbackMethodGuard(callbackPath: string): RequestHandler {
  return (req, res, next) => {
    if (req.path === callbackPath && req.method !== 'GET') {
      res.setHeader('Allow', 'GET');
      refuse(req, res, 405, 'method_not_allowed', 'Only GET is allowed here');
      return;
    }
    next();
  };
}

/** Remembers which sources were already audited recently, so floods write one row per source. */
class AuditDebounce {
  private readonly seen = new Map<string, number>();

  constructor(private readonly windowMs = 60_000) {}

  first(key: string, now = Date.now()): boolean {
    const until = this.seen.get(key);
    if (until !== undefined && until > now) {
      return false;
    }
    if (this.seen.size >= 10_000) {
      this.seen.clear();
    }
    this.seen.set(key, now + this.windowMs);
    return true;
  }
}

/** CSRF check of every state-changing request (not GET, HEAD or OPTIONS): 403 and an audit event. */
export function csrfMiddleware(csrf: CsrfService, emit: Emit): RequestHandler {
  const debounce = new AuditDebounce();
  return (req, res, next) => {
    if (req.method === 'GET' || req.method === 'HEAD' || req.method === 'OPTIONS') {
      next();
      return;
    }
    const failure = csrf.verify(req);
    if (!failure) {
      next();
      return;
    }
    const ctx = requestContext(req);
    const audit = debounce.first(`${ctx.clientIp ?? '-'}:${failure}`)
      ? emit({
          type: 'input_validation_failed',
          outcome: 'failure',
          reason: `csrf_${failure}`,
          path: req.path,
          ...ctx,
        })
      : Promise.resolve();
    void audit.finally(() =>
      refuse(
        req,
        res,
        403,
        'csrf_failed',
        'This form expired or came from another site; reload the page and try again',
      ),
    );
  };
}

export interface RateLimitSettings {
  loginPath: string;
  callbackPath: string;
  windowMs: number;
  loginPerIp: number;
  loginPerUser: number;
  callbackPerIp: number;
  /** Prefix length grouping IPv6 clients (RATE_LIMIT_IPV6_SUBNET); 64 when absent. */
  ipv6Subnet?: number;
}

/**
 * Rate limits on sign-on start (per IP, then per username: the MFA-start cap against push
 * bombing) and on the callback (per IP). Over a limit: 429 with Retry-After and one
 * `rate_limited` audit event per key and window. A limiter outage lets requests through (logged):
 * sign-on then depends on the same Redis anyway. Per-IP limits count an IPv6 client by its
 * network (`ipv6Subnet`, default /64) and an IPv4-mapped address as its IPv4 address; a client
 * address that is not an IP counts as the socket's (see {@link ipRateLimitSubject}).
 */
export function rateLimitMiddleware(
  limiter: RateLimiter,
  settings: RateLimitSettings,
  emit: Emit,
  onStoreError: (err: unknown) => void,
): RequestHandler {
  const rule = (name: RateLimitRule['name'], limit: number): RateLimitRule => ({
    name,
    limit,
    windowMs: settings.windowMs,
  });
  const loginIp = rule('login_ip', settings.loginPerIp);
  const loginUser = rule('login_user', settings.loginPerUser);
  const callbackIp = rule('callback_ip', settings.callbackPerIp);

  const check = async (r: RateLimitRule, subject: string): Promise<RateLimitDecision> => {
    try {
      return await limiter.check(r, subject);
    } catch (err) {
      onStoreError(err);
      return { allowed: true };
    }
  };

  const run = async (req: Request, res: Response, next: NextFunction): Promise<void> => {
    const isLogin = req.method === 'POST' && req.path === settings.loginPath;
    const isCallback = req.method === 'GET' && req.path === settings.callbackPath;
    if (!isLogin && !isCallback) {
      next();
      return;
    }
    const ctx = requestContext(req);
    const ip =
      ipRateLimitSubject(ctx.clientIp, settings.ipv6Subnet) ??
      ipRateLimitSubject(req.socket.remoteAddress, settings.ipv6Subnet) ??
      'unknown';
    let decision = await check(isLogin ? loginIp : callbackIp, ip);
    let ruleName = isLogin ? loginIp.name : callbackIp.name;
    let username: string | undefined;
    if (decision.allowed && isLogin) {
      // Malformed input is left to the flow's strict parser (400, no store or Duo call).
      username = parseLoginParams(req)?.username;
      if (username !== undefined) {
        decision = await check(loginUser, normalizeUsernameForLimit(username));
        ruleName = loginUser.name;
      }
    }
    if (decision.allowed) {
      next();
      return;
    }
    if (decision.firstRefusal) {
      await emit({
        type: 'rate_limited',
        outcome: 'failure',
        reason: ruleName,
        ...(ruleName === 'login_user' && username ? { username } : {}),
        path: req.path,
        ...ctx,
      });
    }
    res.setHeader('Retry-After', String(decision.retryAfterSec));
    refuse(
      req,
      res,
      429,
      'rate_limited',
      `Too many sign-on attempts; try again in ${decision.retryAfterSec} seconds`,
    );
  };
  return (req, res, next) => {
    run(req, res, next).catch(next);
  };
}
