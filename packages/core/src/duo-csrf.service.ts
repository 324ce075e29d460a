import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Request, Response } from 'express';
import { readStrictCookie } from './duo-strict-input.js';
import { escapeHtml } from './duo-pages.js';

/** The form field and the header that carry the CSRF token. */
export const CSRF_FIELD = '_csrf';
export const CSRF_HEADER = 'x-csrf-token';

const COOKIE_VALUE_RE = /^[A-Za-z0-9_-]{43}$/;

/** Why a state-changing request failed the CSRF check (the audit reason is `csrf_<failure>`). */
export type CsrfFailure = 'no_cookie' | 'no_token' | 'bad_token' | 'cross_origin';

/** What a form needs to pass the CSRF check: the token, and a hidden field that carries it. */
export interface DuoFormFieldsValue {
  /** The token: the value of the hidden `_csrf` field, or of the `X-CSRF-Token` header. */
  csrfToken: string;
  /** `<input type="hidden" name="_csrf" value="...">`, escaped, ready for a template. Empty with `csrf: false`. */
  html: string;
}

/** The CSRF cookie issued in this request (a second call must not issue another one). */
const ISSUED = new WeakMap<object, string>();

/**
 * CSRF protection by a signed double-submit token: a random pre-session cookie (HttpOnly,
 * SameSite=Lax, `__Host-` when cookies are Secure) and a token = HMAC(sessionSecret, cookie) that
 * forms carry in `_csrf` (or API clients in `X-CSRF-Token`). A cross-site page can neither read
 * the cookie nor compute the token, and a Lax cookie is not even sent with a cross-site POST. On
 * top of the token, an `Origin` other than the app's own and `Sec-Fetch-Site: cross-site` are
 * refused. One cookie and one token serve every form of the app: the sign-on start (checked by
 * the library) and the app's own state-changing routes (checked by the app with {@link verify}).
 *
 * Tokens are made with `sessionSecret` only; a token made with `sessionSecretPrevious` still
 * verifies, so rotating the secret does not break the forms already open.
 */
export class DuoCsrfService {
  readonly cookieName: string;
  private readonly origins: ReadonlySet<string>;

  constructor(
    private readonly secret: string,
    private readonly secure: boolean,
    origins: readonly string[],
    private readonly previousSecret?: string,
  ) {
    this.cookieName = secure ? '__Host-duo_csrf' : 'duo_csrf';
    this.origins = new Set(origins);
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
      ISSUED.set(req, value);
    }
    return this.mac(this.secret, value);
  }

  /**
   * The hidden field for a form, and the same token in the `X-CSRF-Token` response header (API
   * clients read it there and send it back in the request header).
   */
  formFields(req: Request, res: Response): DuoFormFieldsValue {
    const csrfToken = this.tokenFor(req, res);
    if (!res.headersSent) {
      res.setHeader('X-CSRF-Token', csrfToken);
    }
    return {
      csrfToken,
      html: `<input type="hidden" name="${CSRF_FIELD}" value="${escapeHtml(csrfToken)}">`,
    };
  }

  /** Checks a state-changing request; removes the `_csrf` field so route parsers never see it. */
  verify(req: Request): CsrfFailure | undefined {
    const origin = req.headers.origin;
    // Origin "null" is what browsers send under Referrer-Policy no-referrer; the token decides then.
    if (typeof origin === 'string' && origin !== 'null' && !this.origins.has(origin)) {
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
    for (const secret of this.previousSecret ? [this.secret, this.previousSecret] : [this.secret]) {
      const expected = Buffer.from(this.mac(secret, cookie));
      if (given.length === expected.length && timingSafeEqual(given, expected)) {
        return undefined;
      }
    }
    return 'bad_token';
  }

  private cookieValue(req: Request): string | undefined {
    const issued = ISSUED.get(req);
    if (issued) {
      return issued;
    }
    // The one strict cookie reader: two cookies of one name (cookie tossing) or a value with escapes,
    // quotes or non-ASCII bytes is no cookie at all.
    const cookie = readStrictCookie(req.headers.cookie, this.cookieName);
    return cookie.status === 'ok' && COOKIE_VALUE_RE.test(cookie.value) ? cookie.value : undefined;
  }

  private mac(secret: string, value: string): string {
    return createHmac('sha256', secret).update(`csrf:v1:${value}`).digest('base64url');
  }
}
