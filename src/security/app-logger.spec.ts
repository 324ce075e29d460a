import { describe, expect, it } from '@jest/globals';
import { EventEmitter } from 'node:events';
import type { Request, Response } from 'express';
import { accessLogMiddleware, AppLogger, safePath, safeText } from './app-logger.js';
import { requestScope } from './request-context.js';

function capture(level: 'debug' | 'info' | 'warn' | 'error' = 'debug') {
  const lines: string[] = [];
  const logger = new AppLogger({
    level,
    instanceId: 'i-1',
    destination: { write: (s: string) => void lines.push(s) },
  });
  return {
    logger,
    lines,
    parsed: () => lines.map((l) => JSON.parse(l) as Record<string, unknown>),
  };
}

describe(AppLogger.name, () => {
  it('should keep only allow-listed fields when a caller passes others', () => {
    const { logger, parsed } = capture();
    logger.write('info', 'x', {
      method: 'GET',
      status: 200,
      ...({ headers: { cookie: 'secret' }, body: 'code=abc' } as object),
    });
    const [line] = parsed();
    expect(line).toMatchObject({
      level: 'info',
      msg: 'x',
      method: 'GET',
      status: 200,
      instance: 'i-1',
    });
    expect(line).not.toHaveProperty('headers');
    expect(line).not.toHaveProperty('body');
  });

  it('should encode CR/LF and mask JWT shapes when messages carry them', () => {
    expect(safeText('a\r\nb')).toBe('a\\x0d\\x0ab');
    expect(safeText('token eyJhbGciOi.eyJzdWIiOi.sig here')).toBe('token [jwt] here');
  });

  it('should drop the query string when logging a path', () => {
    expect(safePath('/auth/duo/callback?state=S&duo_code=C')).toBe('/auth/duo/callback');
    expect(safePath('/x#frag')).toBe('/x');
  });

  it('should add the request correlation id and respect the level', () => {
    const { logger, parsed } = capture('warn');
    requestScope.run({ id: 'req-1' }, () => {
      logger.log('hidden', 'Ctx');
      logger.warn('shown', 'Ctx');
    });
    const lines = parsed();
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ msg: 'shown', context: 'Ctx', reqId: 'req-1', level: 'warn' });
  });

  it('should not log the stack Nest passes with an error', () => {
    const { logger, lines } = capture();
    logger.error('boom', 'Error: boom\n    at secret (/app/x.js:1:1)', 'ExceptionsHandler');
    expect(lines.join('')).not.toContain('/app/x.js');
    expect(lines.join('')).toContain('ExceptionsHandler');
  });

  it('should write the access line at its level only: 5xx at error, the rest at info', () => {
    const served = (level: 'info' | 'error', status: number) => {
      const { logger, parsed } = capture(level);
      const res = Object.assign(new EventEmitter(), { statusCode: status });
      const req = { method: 'GET', originalUrl: '/x?secret=1', id: 'req-9' };
      accessLogMiddleware(logger)(req as unknown as Request, res as unknown as Response, () => {});
      res.emit('finish');
      return parsed();
    };

    expect(served('info', 200)).toEqual([
      expect.objectContaining({ msg: 'request', path: '/x', status: 200, reqId: 'req-9' }),
    ]);
    expect(served('error', 200)).toEqual([]);
    expect(served('error', 503)).toEqual([
      expect.objectContaining({ level: 'error', status: 503, reqId: 'req-9' }),
    ]);
  });
});
