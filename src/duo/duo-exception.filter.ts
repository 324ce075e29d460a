import { Catch, Logger, type ArgumentsHost, type ExceptionFilter } from '@nestjs/common';
import type { Request, Response } from 'express';
import { DuoError, type DuoErrorCode } from './duo.errors.js';
import { messagePage, PAGE_CSP } from './duo-pages.js';

const STATUS: Record<DuoErrorCode, number> = {
  config: 500,
  invalid_argument: 400,
  invalid_request: 400,
  unavailable: 503,
  rate_limited: 503,
  busy: 503,
  audit_unavailable: 503,
  invalid_client: 502,
  duo_rejected: 502,
  health_response: 502,
  token_response: 502,
  invalid_grant: 401,
  state_unknown: 400,
  state_expired: 400,
  binding_mismatch: 400,
  callback_error: 401,
  id_token_malformed: 401,
  id_token_alg: 401,
  id_token_signature: 401,
  id_token_iss: 401,
  id_token_aud: 401,
  id_token_expired: 401,
  id_token_iat: 401,
  id_token_nbf: 401,
  id_token_claims: 401,
  id_token_nonce: 401,
  id_token_username: 401,
  id_token_auth_result: 401,
  mfa_required: 401,
  session_expired: 401,
  mfa_stale: 401,
  mfa_not_performed: 403,
  forbidden: 403,
};

/** id_token time checks that fail when this server's clock and Duo's disagree. */
const CLOCK_CODES = new Set<DuoErrorCode>(['id_token_expired', 'id_token_iat', 'id_token_nbf']);

/**
 * Codes whose message quotes Duo's answer (its error text may echo request data): logged, but
 * users get a fixed text instead.
 */
const UPSTREAM_TEXT: Partial<Record<DuoErrorCode, string>> = {
  invalid_grant: 'This sign-on could not be completed; start again',
  invalid_client: 'Two-factor authentication is misconfigured; contact your administrator',
  duo_rejected: 'Duo refused this sign-on; start again later',
};

/** Codes whose HTML answer is a redirect to the sign-on page rather than an error page. */
const TO_SIGN_ON = new Set<DuoErrorCode>(['mfa_required', 'session_expired', 'mfa_stale']);

/** What users read: short, generic per family, never Duo's body or a token. */
function title(code: DuoErrorCode): string {
  switch (STATUS[code]) {
    case 503:
      return 'Two-factor service unavailable';
    case 403:
      return 'Access denied';
    case 400:
      return 'Please sign on again';
    default:
      return 'Sign-on failed';
  }
}

/** The one place where Duo errors become HTTP: an HTML page for browsers, JSON with a stable code otherwise. */
@Catch(DuoError)
export class DuoExceptionFilter implements ExceptionFilter {
  private readonly logger = new Logger('Duo');

  constructor(private readonly signOnPath = '/') {}

  catch(error: DuoError, host: ArgumentsHost): void {
    const http = host.switchToHttp();
    const req = http.getRequest<Request>();
    const res = http.getResponse<Response>();
    const status = STATUS[error.code] ?? 500;
    const cause =
      error.cause instanceof Error
        ? ` (cause: ${error.cause.name}: ${error.cause.message.slice(0, 200)})`
        : '';
    if (status >= 500) {
      this.logger.error(`${error.code}: ${error.message}${cause}`);
    } else if (!TO_SIGN_ON.has(error.code)) {
      const skew = CLOCK_CODES.has(error.code) ? ' clock_skew_suspected=true' : '';
      this.logger.warn(`${error.code}: ${error.message}${cause}${skew}`);
    }
    const message = UPSTREAM_TEXT[error.code] ?? error.message;
    if (res.headersSent) {
      return;
    }
    res.setHeader('Cache-Control', 'no-store');
    const wantsHtml = req.accepts(['json', 'html']) === 'html';
    if (!wantsHtml) {
      res.status(status).json({ statusCode: status, error: error.code, message });
      return;
    }
    if (TO_SIGN_ON.has(error.code) && req.method === 'GET') {
      const returnTo = encodeURIComponent(req.originalUrl.slice(0, 512));
      res.redirect(303, `${this.signOnPath}?returnTo=${returnTo}&reason=${error.code}`);
      return;
    }
    res.setHeader('Content-Security-Policy', PAGE_CSP);
    res
      .status(status)
      .type('html')
      .send(messagePage(title(error.code), message, this.signOnPath));
  }
}
