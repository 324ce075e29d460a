import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Request, Response } from 'express';
import { readStrictCookie } from '../duo/duo-strict-input.js';

/** The form field and the header that carry the CSRF token. */
export const CSRF_FIELD = '_csrf';
export const CSRF_HEADER = 'x-csrf-token';

const COOKIE_VALUE_RE = /^[A-Za-z0-9_-]{43}$/;

export type CsrfFailure = 'no_cookie' | 'no_token' | 'bad_token' | 'cross_origin';

/**
 * CSRF protection by a signed double-submit token: a random pre-session cookie (HttpOnly,
 * SameSite=Lax, `__Host-` when served over https) and a token = HMAC(SESSION_SECRET, cookie) that
 * forms carry in `_csrf` (or API clients in `X-CSRF-Token`). A cross-site page can neither read the
 * cookie nor compute the token, and a Lax cookie is not even sent with a cross-site POST.
 */
export class CsrfService {
  readonly cookieName: string;

  constructor(
    private readonly secret: string,
    private readonly secure: boolean,
    private readonly publicOrigin: string,
  ) {
    this.cookieName = secure ? '__Host-duo_csrf' : 'duo_csrf';
  }

  /** The token for this browser, issuing the cookie first when it has none (or a malformed one). */
  tokenFor(req: Request, res: Response): string {
    let value = this.cookieValue(req);
    if (!value) {
      value = randomBytes(32).toString('base64url');
      res.append(
        'Set-Cookie',
        `${this.cookieName}=${value}; Path=/; HttpOnly; SameSite=Lax${this.secure ? '; Secure' : ''}`,
      );
      // A second call in the same request must not issue another cookie.
      (req as Request & { csrfCookie?: string }).csrfCookie = value;
    }
    return this.mac(value);
  }

  /** Checks a state-changing request; removes the `_csrf` field so route parsers never see it. */
  verify(req: Request): CsrfFailure | undefined {
    const origin = req.headers.origin;
    // Origin "null" is what browsers send under Referrer-Policy no-referrer; the token decides then.
    if (typeof origin === 'string' && origin !== 'null' && origin !== this.publicOrigin) {
      return 'cross_origin';
    }
    if (req.headers['sec-fetch-site'] === 'cross-site') {
      return 'cross_origin';
    }
    const body = req.body as Record<string, unknown> | undefined;
    let fromBody: unknown;
    if (body && typeof body === 'object' && !Array.isArray(body) && CSRF_FIELD in body) {
      fromBody = body[CSRF_FIELD];
      delete body[CSRF_FIELD];
    }
    const cookie = this.cookieValue(req);
    if (!cookie) {
      return 'no_cookie';
    }
    const header = req.headers[CSRF_HEADER];
    const token = typeof header === 'string' ? header : fromBody;
    if (token === undefined) {
      return 'no_token';
    }
    if (typeof token !== 'string' || token.length > 128) {
      return 'bad_token';
    }
    const given = Buffer.from(token);
    const expected = Buffer.from(this.mac(cookie));
    return given.length === expected.length && timingSafeEqual(given, expected)
      ? undefined
      : 'bad_token';
  }

  private cookieValue(req: Request): string | undefined {
    const issued = (req as Request & { csrfCookie?: string }).csrfCookie;
    if (issued) {
      return issued;
    }
    // The one strict cookie reader: two cookies of one name (cookie tossing) or a value with escapes,
    // quotes or non-ASCII bytes is no cookie at all.
    const cookie = readStrictCookie(req.headers.cookie, this.cookieName);
    return cookie.status === 'ok' && COOKIE_VALUE_RE.test(cookie.value) ? cookie.value : undefined;
  }

  private mac(value: string): string {
    return createHmac('sha256', this.secret).update(`csrf:v1:${value}`).digest('base64url');
  }
}
