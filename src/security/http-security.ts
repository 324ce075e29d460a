import express, {
  type ErrorRequestHandler,
  type Request,
  type RequestHandler,
  type Response,
} from 'express';
import helmet from 'helmet';
import { type DuoAuthEvent } from '@duo-nest/core';
import {
  describeStrictFailure,
  duoPageMessages,
  EventAggregator,
  messagePage,
  PAGE_CSP,
  pageLanguage,
  type DuoLocaleSettings,
  parseStrictForm,
  parseStrictParams,
  parseStrictQuery,
  requestContext,
  type DuoCsrfService,
  type StrictInputFailure,
} from '@duo-nest/core/internal';
import { refusalText, type RefusalText } from './refusal.i18n.js';

/** Largest request body accepted (JSON or form); larger answers 413. */
export const BODY_LIMIT = '16kb';
/** Most form fields accepted in one body; more answers 413. */
export const BODY_PARAMETER_LIMIT = 20;

type Emit = (event: DuoAuthEvent) => Promise<void>;

/** Where the app keeps its pages' languages (DuoModule's `locales` and `locale`): `app.locals`. */
export const PAGE_LANGUAGES = 'duoPageLanguages';

/** Records the pages' languages for the refusals made before any route (see refuse). */
export function setRefusalLanguages(
  locals: Record<string, unknown>,
  settings: DuoLocaleSettings,
): void {
  locals[PAGE_LANGUAGES] = { locales: settings.locales, locale: settings.locale };
}

function refusalLanguages(req: Request): DuoLocaleSettings {
  const stored = (req.app?.locals as Record<string, unknown> | undefined)?.[PAGE_LANGUAGES];
  return (stored as DuoLocaleSettings | undefined) ?? { locales: ['en'] };
}

/**
 * A refusal in the shape of the Duo library's: JSON {statusCode,error,message} (the English
 * `message`: the code is what clients read), or a small HTML page in the request's language
 * (Accept-Language among the app's locales, `lang`/`dir` set), `text` saying it in that language.
 */
export function refuse(
  req: Request,
  res: Response,
  status: number,
  error: string,
  message: string,
  text?: RefusalText,
): void {
  if (res.headersSent) {
    return;
  }
  res.setHeader('Cache-Control', 'no-store');
  if (req.accepts(['json', 'html']) === 'html') {
    const language = pageLanguage(req, res, refusalLanguages(req));
    const t = duoPageMessages(language.lang);
    const title = status === 429 ? t.titleTooMany : t.titleRefused;
    // English says the caller's own message; another language its catalogue's (English without one).
    const localized = language.lang !== 'en' && text ? refusalText(language.lang, text) : message;
    res.setHeader('Content-Security-Policy', PAGE_CSP);
    res
      .status(status)
      .type('html')
      .send(messagePage(title, localized, '/', language));
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

/**
 * Records a refusal made before any route runs as one `input_validation_failed` event, folded per
 * source and reason and minute (EventAggregator: a flood writes one row that counts the rest), so
 * no refusal escapes the trail and none can fill it.
 */
export type RefusalAudit = (
  req: Request,
  reason: string,
  detail?: Record<string, string | number | boolean>,
) => Promise<void>;

export function refusalAudit(emit: Emit, windowMs = 60_000): RefusalAudit {
  const aggregator = new EventAggregator(windowMs);
  return async (req, reason, detail) => {
    const ctx = requestContext(req);
    const { write, suppressed } = aggregator.hit(`${ctx.clientIp ?? '-'}:${reason}`);
    if (!write) {
      return;
    }
    await emit({
      type: 'input_validation_failed',
      outcome: 'failure',
      reason,
      path: req.path.slice(0, 256),
      ...(detail || suppressed > 0
        ? { detail: { ...detail, ...(suppressed > 0 ? { suppressed } : {}) } }
        : {}),
      ...ctx,
    });
  };
}

/** A strict-decoder refusal, handed to bodyErrorHandler like body-parser's own errors. */
class StrictInputError extends Error {
  readonly type = 'strict_input';
  readonly status: number;

  constructor(
    readonly failure: StrictInputFailure | 'unsupported_charset',
    status = 400,
    /** What the sender is told (never the offending value). */
    readonly publicMessage?: string,
    /** The same in the catalogue's terms, for pages in another language. */
    readonly text?: RefusalText,
  ) {
    super(`strict input: ${failure}`);
    this.status = status;
  }
}

/** Most query parameters any route reads (the audit routes take about a dozen). */
export const QUERY_PARAMETER_LIMIT = 64;

/**
 * The app's `query parser`: the one strict decoder (see strictQueryMiddleware, which refuses a bad
 * query before any route reads it; a query that still fails here reads as empty: fail closed).
 */
export function strictQueryParser(query: string | null | undefined): Record<string, string> {
  // Express hands over null when the URL has no query at all.
  const parsed = parseStrictParams(query ?? '', QUERY_PARAMETER_LIMIT);
  return parsed.ok ? parsed.params : (Object.create(null) as Record<string, string>);
}

/**
 * Refuses, on every route, a query string the strict decoder cannot read (a `%` without two hex
 * digits, invalid UTF-8, a raw non-ASCII byte, a name given twice or empty, too many parameters):
 * 400 and one audit event, before the body is read or any route runs.
 */
export function strictQueryMiddleware(audit: RefusalAudit): RequestHandler {
  return (req, res, next) => {
    const parsed = parseStrictQuery(req.originalUrl ?? req.url, QUERY_PARAMETER_LIMIT);
    if (parsed.ok) {
      next();
      return;
    }
    void audit(req, parsed.failure, { field: 'query' }).finally(() =>
      refuse(req, res, 400, 'invalid_request', describeStrictFailure(parsed), {
        key: 'strict',
        failure: parsed.failure,
        where: 'address',
        name: parsed.name,
        times: parsed.times,
      }),
    );
  };
}

const FORM_TYPE = 'application/x-www-form-urlencoded';
const CHARSET_RE = /;\s*charset\s*=\s*"?([^";\s]*)/i;

/**
 * The urlencoded body parser of every route: the raw body (size limit, inflation and errors from
 * body-parser) decoded by the one strict decoder. Invalid UTF-8, a bad escape, a duplicated or
 * empty name or a charset other than UTF-8 is refused through bodyErrorHandler. Named
 * `urlencodedParser` on purpose: Nest adds its own lenient parser unless one of that name is mounted.
 */
export function strictUrlencodedParser(options: {
  limit: string;
  parameterLimit: number;
}): RequestHandler {
  const raw = express.raw({ type: FORM_TYPE, limit: options.limit });
  return function urlencodedParser(req, res, next) {
    raw(req, res, (err?: unknown) => {
      if (err) {
        next(err);
        return;
      }
      const body: unknown = req.body;
      if (!Buffer.isBuffer(body)) {
        next();
        return;
      }
      const charset = CHARSET_RE.exec(req.headers['content-type'] ?? '')?.[1]?.toLowerCase();
      if (charset !== undefined && charset !== 'utf-8' && charset !== 'utf8') {
        req.body = undefined;
        next(
          new StrictInputError(
            'unsupported_charset',
            415,
            'Send the form in UTF-8 (charset=utf-8)',
            {
              key: 'unsupportedCharset',
            },
          ),
        );
        return;
      }
      const parsed = parseStrictForm(body, options.parameterLimit);
      if (!parsed.ok) {
        req.body = undefined;
        next(
          new StrictInputError(
            parsed.failure,
            parsed.failure === 'too_many_params' ? 413 : 400,
            describeStrictFailure(parsed, 'The form'),
            {
              key: 'strict',
              failure: parsed.failure,
              where: 'form',
              name: parsed.name,
              times: parsed.times,
            },
          ),
        );
        return;
      }
      req.body = parsed.params;
      next();
    });
  };
}

/** body-parser's error types, as audit reasons. */
function bodyFailure(type: string, status: number): string {
  if (status === 413) {
    return 'body_too_large';
  }
  if (status === 415) {
    return 'body_unsupported';
  }
  return type === 'entity.parse.failed' ? 'body_malformed' : 'body_unreadable';
}

/**
 * Body-parser and strict-decoder failures (too large, malformed, bad charset, bad escape, invalid
 * UTF-8, duplicate names) become a 4xx and one audit event, never a 500 with a stack.
 */
export function bodyErrorHandler(audit: RefusalAudit): ErrorRequestHandler {
  return (err: unknown, req, res, next) => {
    const e = err as { type?: unknown; status?: unknown; statusCode?: unknown };
    if (typeof e?.type !== 'string') {
      next(err);
      return;
    }
    const raw = typeof e.status === 'number' ? e.status : Number(e.statusCode);
    const status = raw >= 400 && raw < 500 ? raw : 400;
    const reason = err instanceof StrictInputError ? err.failure : bodyFailure(e.type, status);
    void audit(req, reason, { field: 'body' }).finally(() =>
      refuse(
        req,
        res,
        status,
        status === 413 ? 'payload_too_large' : 'invalid_request',
        (err instanceof StrictInputError ? err.publicMessage : undefined) ??
          (status === 413 ? 'The request is too large' : 'The request body could not be read'),
        (err instanceof StrictInputError ? err.text : undefined) ??
          (status === 413 ? { key: 'tooLarge' } : { key: 'unreadable' }),
      ),
    );
  };
}

/**
 * JSON bodies: their bytes must be UTF-8 (body-parser would turn bad bytes into U+FFFD). Throws a
 * StrictInputError that bodyErrorHandler turns into a 400.
 */
export function verifyJsonUtf8(_req: unknown, _res: unknown, buf: Buffer): void {
  try {
    STRICT_UTF8.decode(buf);
  } catch {
    throw new StrictInputError('invalid_utf8');
  }
}
const STRICT_UTF8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** Only GET reaches the callback route (HEAD, POST, PUT, ... answer 405 before anything else). */
export function callbackMethodGuard(callbackPath: string, audit?: RefusalAudit): RequestHandler {
  return (req, res, next) => {
    if (req.path === callbackPath && req.method !== 'GET') {
      res.setHeader('Allow', 'GET');
      void (audit ? audit(req, 'method_not_allowed') : Promise.resolve()).finally(() =>
        refuse(req, res, 405, 'method_not_allowed', 'Only GET is allowed here', {
          key: 'methodNotAllowed',
        }),
      );
      return;
    }
    next();
  };
}

/**
 * CSRF check of every state-changing request (not GET, HEAD or OPTIONS) with the Duo library's
 * token service (one cookie, one token for every form): 403 and an audit event. The sign-on start
 * routes (`libraryChecked`, where DuoStartGuard runs) are left to the library, which checks them
 * itself after its per-IP cap; every other route, including ones added later, is checked here.
 */
export function csrfMiddleware(
  csrf: DuoCsrfService,
  emit: Emit,
  libraryChecked: readonly string[] = [],
): RequestHandler {
  const aggregator = new EventAggregator();
  const skip = new Set(libraryChecked);
  return (req, res, next) => {
    if (req.method === 'GET' || req.method === 'HEAD' || req.method === 'OPTIONS') {
      next();
      return;
    }
    if (req.method === 'POST' && skip.has(req.path)) {
      next();
      return;
    }
    const failure = csrf.verify(req);
    if (!failure) {
      next();
      return;
    }
    const ctx = requestContext(req);
    const { write, suppressed } = aggregator.hit(`${ctx.clientIp ?? '-'}:${failure}`);
    const audit = write
      ? emit({
          type: 'input_validation_failed',
          outcome: 'failure',
          reason: `csrf_${failure}`,
          path: req.path,
          ...(suppressed > 0 ? { detail: { suppressed } } : {}),
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
        { key: 'csrf' },
      ),
    );
  };
}
