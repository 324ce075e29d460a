import { Catch, Logger, type ArgumentsHost, type ExceptionFilter } from '@nestjs/common';
import type { Request, Response } from 'express';
import {
  DUO_ERROR_STATUS,
  duoErrorStatus,
  duoPublicMessage,
  DuoError,
  DuoForbiddenError,
  DuoMfaPolicyError,
  DuoStepUpError,
  DuoRateLimitError,
  type DuoErrorCode,
} from './duo.errors.js';
import { duoErrorBody, DuoHttpException } from './duo-http.exception.js';
import {
  duoPageMessages,
  localizedErrorMessage,
  pageLanguage,
  type DuoLocaleSettings,
  type DuoPageMessages,
} from './duo-i18n.js';
import { messagePage, PAGE_CSP } from './duo-pages.js';

const STATUS = DUO_ERROR_STATUS;

/** id_token time checks that fail when this server's clock and Duo's disagree. */
const CLOCK_CODES = new Set<DuoErrorCode>(['id_token_expired', 'id_token_iat', 'id_token_nbf']);

/** Codes whose HTML answer is a redirect to the sign-on page rather than an error page. */
const TO_SIGN_ON = new Set<DuoErrorCode>(['mfa_required', 'session_expired', 'mfa_stale']);

/**
 * Refusals that a flood can repeat at will, already audited once per source and window: no log
 * line each (the callers that do not audit them log nothing either).
 */
const QUIET = new Set<DuoErrorCode>(['csrf_failed', 'mfa_step_up']);

/** What users read: short, generic per family, never Duo's body or a token. */
function title(code: DuoErrorCode, status: number, t: DuoPageMessages): string {
  if (status === 429) {
    return t.titleTooMany;
  }
  if (code === 'csrf_failed') {
    return t.titleRefused;
  }
  switch (STATUS[code]) {
    case 503:
      return t.titleUnavailable;
    case 403:
      return t.titleDenied;
    case 400:
      return t.titleAgain;
    default:
      return t.titleFailed;
  }
}

/** The one place where Duo errors become HTTP: an HTML page for browsers, JSON with a stable code otherwise. */
@Catch(DuoError, DuoHttpException)
export class DuoExceptionFilter implements ExceptionFilter {
  private readonly logger = new Logger('Duo');

  /**
   * @param signOnPath where HTML requests that need MFA are sent, and the pages' restart link
   * @param languages the pages' languages (DuoModule `locales` and `locale`); default English only
   */
  constructor(
    private readonly signOnPath = '/',
    private readonly languages: DuoLocaleSettings = { locales: ['en'] },
  ) {}

  catch(exception: DuoError | DuoHttpException, host: ArgumentsHost): void {
    const http = host.switchToHttp();
    this.respond(exception, http.getRequest<Request>(), http.getResponse<Response>());
  }

  /** Answers one Duo refusal (the module's own callback route calls this directly). */
  respond(exception: DuoError | DuoHttpException, req: Request, res: Response): void {
    const error = exception instanceof DuoHttpException ? exception.duoError : exception;
    const status = this.log(error);
    const message = duoPublicMessage(error);
    if (res.headersSent) {
      return;
    }
    res.setHeader('Cache-Control', 'no-store');
    if (error instanceof DuoRateLimitError) {
      res.setHeader('Retry-After', String(error.retryAfterSec));
    }
    const wantsHtml = req.accepts(['json', 'html']) === 'html';
    if (!wantsHtml) {
      res.status(status).json(duoErrorBody(error, status));
      return;
    }
    if (error instanceof DuoStepUpError && req.method === 'GET') {
      res.redirect(303, error.stepUpUrl);
      return;
    }
    if (TO_SIGN_ON.has(error.code) && req.method === 'GET') {
      const returnTo = encodeURIComponent(req.originalUrl.slice(0, 512));
      res.redirect(303, `${this.signOnPath}?returnTo=${returnTo}&reason=${error.code}`);
      return;
    }
    const language = pageLanguage(req, res, this.languages);
    const localized = localizedErrorMessage(
      language.lang,
      error.code,
      message,
      error instanceof DuoRateLimitError ? error.retryAfterSec : undefined,
      {
        ...(error instanceof DuoForbiddenError ? { groups: error.groups } : {}),
        ...(error instanceof DuoMfaPolicyError ? { reason: error.reason } : {}),
      },
    );
    res.setHeader('Content-Security-Policy', PAGE_CSP);
    res
      .status(status)
      .type('html')
      .send(
        messagePage(
          title(error.code, status, duoPageMessages(language.lang)),
          localized,
          // A policy refusal links to a fresh MFA that comes back here (returnTo).
          error instanceof DuoMfaPolicyError ? error.signOnUrl : this.signOnPath,
          language,
        ),
      );
  }

  /** Logs one refusal as the library does (never a token), and returns its HTTP status. */
  log(error: DuoError): number {
    const status = duoErrorStatus(error);
    const cause =
      error.cause instanceof Error
        ? ` (cause: ${error.cause.name}: ${error.cause.message.slice(0, 200)})`
        : '';
    if (error instanceof DuoRateLimitError) {
      // A cap's refusal: audited once per key and window, never a log line per request.
    } else if (status >= 500) {
      this.logger.error(`${error.code}: ${error.message}${cause}`);
    } else if (!TO_SIGN_ON.has(error.code) && !QUIET.has(error.code)) {
      const skew = CLOCK_CODES.has(error.code) ? ' clock_skew_suspected=true' : '';
      this.logger.warn(`${error.code}: ${error.message}${cause}${skew}`);
    }
    return status;
  }
}
