import { Catch, type ArgumentsHost, type ExceptionFilter } from '@nestjs/common';
import type { Response } from 'express';
import { AuditQueryError } from './audit.repository.js';

/** No event has this id. */
export class AuditNotFoundError extends Error {
  override name = 'AuditNotFoundError';
}

/**
 * The audit API's client errors as JSON: a bad parameter is 400 `invalid_request` with a message
 * that names it; an unknown event id is 404 `not_found`.
 */
@Catch(AuditQueryError, AuditNotFoundError)
export class AuditApiExceptionFilter implements ExceptionFilter {
  catch(error: AuditQueryError | AuditNotFoundError, host: ArgumentsHost): void {
    const res = host.switchToHttp().getResponse<Response>();
    if (res.headersSent) {
      return;
    }
    const notFound = error instanceof AuditNotFoundError;
    const status = notFound ? 404 : 400;
    res.setHeader('Cache-Control', 'no-store');
    res.status(status).json({
      statusCode: status,
      error: notFound ? 'not_found' : 'invalid_request',
      message: error.message,
    });
  }
}
