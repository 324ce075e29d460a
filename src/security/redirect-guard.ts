import type { OutgoingHttpHeaders, ServerResponse } from 'node:http';
import type { NextFunction, Request, Response } from 'express';
import {
  duoPageMessages,
  escapeHtml,
  resolveLocale,
  type DuoLocaleSettings,
} from '@duo-nest/core/internal';
import { refusalMessages } from './refusal.i18n.js';

/** What a refused redirect is reported with: never the Location itself. */
export interface RefusedRedirect {
  status: number;
  method: string;
  /** The request's path (no query string). */
  path: string;
}

export interface RedirectGuardOptions {
  /** The app's public URL (PUBLIC_URL): relative Locations resolve against it. */
  publicUrl: string;
  /** Other origins a redirect may go to (Duo's API origin for the authorize redirect). */
  allowedOrigins?: readonly string[];
  /** Called once per refused redirect. */
  onRefused?: (info: RefusedRedirect) => void;
  /** The pages' languages (DuoModule's locales and locale): the refusal page's language. @default English */
  languages?: DuoLocaleSettings;
}

/** The status and page sent instead of a refused redirect (no Location header). */
export const REDIRECT_REFUSED_STATUS = 400;
const REFUSED_PAGES = new Map<string, Buffer>();

/** The refusal page in `lang` (built once per language; no value of the request is in it). */
export function redirectRefusedPage(lang: string): Buffer {
  let body = REFUSED_PAGES.get(lang);
  if (!body) {
    const t = refusalMessages(lang);
    // As the other pages: a language without refusal texts (ar) keeps its lang and dir, English text.
    const dir = duoPageMessages(lang).dir === 'rtl' ? ' dir="rtl"' : '';
    body = Buffer.from(
      `<!doctype html><html lang="${escapeHtml(lang)}"${dir}><head><meta charset="utf-8"><title>${escapeHtml(t.redirectTitle)}</title>` +
        `</head><body><h1>${escapeHtml(t.redirectTitle)}</h1><p>${escapeHtml(t.redirectMessage)} ` +
        `<a href="/">${escapeHtml(t.startAgain)}</a>.</p></body></html>`,
    );
    REFUSED_PAGES.set(lang, body);
  }
  return body;
}

/** The exact origins a redirect may reach: the app's own, plus the listed ones. */
export function allowedRedirectOrigins(
  publicUrl: string,
  extra: readonly string[] = [],
): Set<string> {
  const origins = new Set([new URL(publicUrl).origin]);
  for (const origin of extra) {
    const parsed = new URL(origin).origin;
    if (parsed === 'null') {
      throw new Error('an allowed redirect origin must be an http(s) origin');
    }
    origins.add(parsed);
  }
  return origins;
}

/**
 * Whether a Location header value, resolved as a browser does (WHATWG URL against PUBLIC_URL, so
 * `//host`, `/\host`, tabs and dot segments are read the browser's way), stays on an allowed
 * origin. Anything that does not parse, or has an opaque origin (javascript:, data:), is refused.
 */
export function isAllowedLocation(
  location: unknown,
  publicUrl: string,
  allowed: ReadonlySet<string>,
): boolean {
  const value: unknown =
    Array.isArray(location) && location.length === 1 ? (location[0] as unknown) : location;
  if (typeof value !== 'string' || value.length === 0) {
    return false;
  }
  try {
    return allowed.has(new URL(value, publicUrl).origin);
  } catch {
    return false;
  }
}

type Headers = OutgoingHttpHeaders | (string | string[] | number)[] | undefined;

/** The Location in the headers argument of writeHead (object or flat [name, value, ...] list). */
function locationIn(headers: Headers): { found: boolean; value?: unknown } {
  if (Array.isArray(headers)) {
    for (let i = 0; i + 1 < headers.length; i += 2) {
      if (String(headers[i]).toLowerCase() === 'location') {
        return { found: true, value: headers[i + 1] };
      }
    }
  } else if (headers) {
    for (const [name, value] of Object.entries(headers)) {
      if (name.toLowerCase() === 'location') {
        return { found: true, value };
      }
    }
  }
  return { found: false };
}

/** writeHead's header argument as name/value pairs. */
function headerPairs(headers: Headers): [string, unknown][] {
  if (Array.isArray(headers)) {
    const pairs: [string, unknown][] = [];
    for (let i = 0; i + 1 < headers.length; i += 2) {
      pairs.push([String(headers[i]), headers[i + 1]]);
    }
    return pairs;
  }
  return Object.entries(headers ?? {});
}

const DROPPED_ON_REFUSAL = new Set(['location', 'content-length', 'content-type', 'refresh']);

/**
 * The one choke point for every 3xx the app sends. Wraps the response's writeHead, write and end
 * (so res.redirect, res.location + status, and a raw setHeader('Location') + writeHead are all
 * seen) and, when a 3xx carries a Location whose origin is not allowed, sends a 400 page without
 * the Location instead; the redirect's own body (which repeats the URL) is dropped. Install it
 * first, before anything that can answer.
 */
export function redirectGuard(options: RedirectGuardOptions) {
  const allowed = allowedRedirectOrigins(options.publicUrl, options.allowedOrigins);
  return (req: Request, res: Response, next: NextFunction): void => {
    guardResponse(res, req, options.publicUrl, allowed, options.onRefused, options.languages);
    next();
  };
}

function guardResponse(
  res: Response,
  req: Request,
  publicUrl: string,
  allowed: ReadonlySet<string>,
  onRefused: RedirectGuardOptions['onRefused'],
  languages: DuoLocaleSettings = { locales: ['en'] },
): void {
  const raw = res as unknown as ServerResponse;
  const writeHead = raw.writeHead.bind(raw) as (...args: unknown[]) => ServerResponse;
  const write = raw.write.bind(raw) as (...args: unknown[]) => boolean;
  const end = raw.end.bind(raw) as (...args: unknown[]) => ServerResponse;
  let refused = false;
  let refusedPage = redirectRefusedPage('en');

  /** Checks the answer about to be sent; on an off-site redirect switches it to the refusal. */
  const inspect = (status: number, headers?: Headers): boolean => {
    if (refused) {
      return true;
    }
    if (status < 300 || status > 399) {
      return false;
    }
    const inArgs = locationIn(headers);
    const location = inArgs.found ? inArgs.value : raw.getHeader('location');
    if (location === undefined || isAllowedLocation(location, publicUrl, allowed)) {
      return false;
    }
    refused = true;
    for (const [name, value] of headerPairs(headers)) {
      if (!DROPPED_ON_REFUSAL.has(name.toLowerCase()) && value !== undefined) {
        raw.setHeader(name, value as string | string[] | number);
      }
    }
    for (const name of DROPPED_ON_REFUSAL) {
      raw.removeHeader(name);
    }
    raw.statusCode = REDIRECT_REFUSED_STATUS;
    // In the request's language, among the app's (only those with a built-in page are offered).
    const lang = resolveLocale(req, languages);
    refusedPage = redirectRefusedPage(lang);
    raw.setHeader('Content-Language', lang);
    if (typeof languages.locale !== 'string') {
      const vary = raw.getHeader('vary');
      raw.setHeader('Vary', vary ? `${String(vary)}, Accept-Language` : 'Accept-Language');
    }
    raw.setHeader('Content-Type', 'text/html; charset=utf-8');
    raw.setHeader('Content-Length', refusedPage.length);
    raw.setHeader('Cache-Control', 'no-store');
    raw.setHeader('Content-Security-Policy', "default-src 'none'");
    onRefused?.({
      status,
      method: req.method,
      path: (req.originalUrl ?? req.url ?? '').split(/[?#]/, 1)[0],
    });
    return true;
  };

  raw.writeHead = function guardedWriteHead(this: ServerResponse, ...args: unknown[]) {
    const status = Number(args[0]);
    const headers = (typeof args[1] === 'string' ? args[2] : args[1]) as Headers;
    if (!raw.headersSent && inspect(status, headers)) {
      return writeHead(REDIRECT_REFUSED_STATUS);
    }
    return writeHead(...args);
  };

  raw.write = function guardedWrite(this: ServerResponse, ...args: unknown[]) {
    if ((!raw.headersSent && inspect(raw.statusCode)) || refused) {
      const callback = args.find((a) => typeof a === 'function') as (() => void) | undefined;
      callback?.();
      return true; // the redirect's body is dropped; end() sends the refusal page
    }
    return write(...args);
  } as ServerResponse['write'];

  raw.end = function guardedEnd(this: ServerResponse, ...args: unknown[]) {
    if ((!raw.headersSent && inspect(raw.statusCode)) || refused) {
      const callback = args.find((a) => typeof a === 'function');
      return callback ? end(refusedPage, callback) : end(refusedPage);
    }
    return end(...args);
  } as ServerResponse['end'];
}

/**
 * The app's guard: its own origin (PUBLIC_URL) and Duo's API origin are the only targets; each
 * refusal is one warn line with the method, path and status, never the Location.
 */
export function appRedirectGuard(
  publicUrl: string,
  duoApiOrigin: string,
  logger: { write(level: 'warn', msg: string, fields: Record<string, string | number>): void },
  languages?: DuoLocaleSettings,
) {
  return redirectGuard({
    publicUrl,
    allowedOrigins: [duoApiOrigin],
    languages,
    onRefused: ({ status, method, path }) =>
      logger.write('warn', 'off-site redirect refused', {
        context: 'RedirectGuard',
        reason: 'offsite_location',
        status,
        method: method.slice(0, 16),
        path: path.slice(0, 256),
      }),
  });
}
