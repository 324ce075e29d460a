import type { LoggerService } from '@nestjs/common';
import type { NextFunction, Request, Response } from 'express';
import { pino, type DestinationStream, type Logger as PinoLogger } from 'pino';
import { requestIdOf, requestScope } from './request-context.js';

export type AppLogLevel = 'debug' | 'info' | 'warn' | 'error';

export interface AppLoggerOptions {
  level: AppLogLevel;
  instanceId: string;
  /** Where JSON lines go. @default stdout */
  destination?: DestinationStream;
}

/**
 * The only fields a log line may carry. Everything else a caller passes is dropped, so headers,
 * cookies, query strings, bodies, tokens, codes, states, session ids and secrets cannot reach the
 * log by accident (redaction by allow-list, not by level).
 */
export const LOG_FIELDS = [
  'context',
  'method',
  'path',
  'status',
  'durationMs',
  'event',
  'reason',
] as const;

type LogField = (typeof LOG_FIELDS)[number];
export type LogFields = Partial<Record<LogField, string | number>>;

const MAX_TEXT = 1000;
const JWT_LIKE = /eyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*(\.[A-Za-z0-9_-]*)?/g;

/** Free text made safe for one log field: CR/LF and other controls encoded, JWT shapes masked, capped. */
export function safeText(value: unknown, max = MAX_TEXT): string {
  const text =
    typeof value === 'string' ? value : value instanceof Error ? value.name : String(value);
  return text
    .slice(0, max)
    .replace(JWT_LIKE, '[jwt]')
    .replace(/[\p{Cc}]/gu, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}

/** A path for the log: no query string, no fragment, controls encoded, capped. */
export function safePath(url: string): string {
  const q = url.search(/[?#]/);
  return safeText(q === -1 ? url : url.slice(0, q), 256);
}

/** Nest's LoggerService over pino: one JSON line per call with the allow-listed fields only. */
export class AppLogger implements LoggerService {
  readonly pino: PinoLogger;

  constructor(options: AppLoggerOptions) {
    this.pino = pino(
      {
        level: options.level,
        base: { instance: options.instanceId },
        messageKey: 'msg',
        timestamp: pino.stdTimeFunctions.isoTime,
        formatters: { level: (label) => ({ level: label }) },
        // Nothing but our own fields is ever serialized; there is no req/res/err serializer to leak.
        serializers: {},
      },
      options.destination ?? pino.destination({ dest: 1, sync: false }),
    );
  }

  /** Whether lines of this level are written at all (the configured LOG_LEVEL or lower). */
  enabled(level: AppLogLevel): boolean {
    return this.pino.isLevelEnabled(level);
  }

  /** Writes one line with allow-listed fields (others are dropped). */
  write(level: AppLogLevel, msg: string, fields: LogFields = {}): void {
    const out: Record<string, string | number> = {};
    for (const key of LOG_FIELDS) {
      const v = fields[key];
      if (typeof v === 'number') {
        out[key] = v;
      } else if (typeof v === 'string') {
        out[key] = safeText(v, 256);
      }
    }
    const reqId = requestScope.getStore()?.id;
    if (reqId) {
      out.reqId = reqId;
    }
    this.pino[level](out, safeText(msg));
  }

  log(message: unknown, ...rest: unknown[]): void {
    this.nest('info', message, rest);
  }

  error(message: unknown, ...rest: unknown[]): void {
    this.nest('error', message, rest);
  }

  warn(message: unknown, ...rest: unknown[]): void {
    this.nest('warn', message, rest);
  }

  debug(message: unknown, ...rest: unknown[]): void {
    this.nest('debug', message, rest);
  }

  verbose(message: unknown, ...rest: unknown[]): void {
    this.nest('debug', message, rest);
  }

  fatal(message: unknown, ...rest: unknown[]): void {
    this.nest('error', message, rest);
  }

  /** Nest passes the context last; a stack (error) or other objects are not logged. */
  private nest(level: AppLogLevel, message: unknown, rest: unknown[]): void {
    const context = typeof rest.at(-1) === 'string' ? (rest.at(-1) as string) : undefined;
    const msg =
      typeof message === 'string'
        ? message
        : message instanceof Error
          ? `${message.name}: ${message.message}`
          : safeText(JSON.stringify(message) ?? String(message));
    this.write(level, msg, context ? { context } : {});
  }
}

/** One access line per request when the response is finished: method, path, status, duration. */
export function accessLogMiddleware(logger: AppLogger) {
  return (req: Request, res: Response, next: NextFunction): void => {
    const started = process.hrtime.bigint();
    res.on('finish', () => {
      const level = res.statusCode >= 500 ? 'error' : 'info';
      // At LOG_LEVEL=error and above an ordinary request writes nothing: build nothing for it.
      if (!logger.enabled(level)) {
        return;
      }
      const line = () =>
        logger.write(level, 'request', {
          context: 'http',
          method: safeText(req.method, 16),
          path: safePath(req.originalUrl),
          status: res.statusCode,
          durationMs: Number((process.hrtime.bigint() - started) / 1000n) / 1000,
        });
      const id = requestIdOf(req);
      if (id) {
        requestScope.run({ id }, line);
      } else {
        line();
      }
    });
    next();
  };
}
