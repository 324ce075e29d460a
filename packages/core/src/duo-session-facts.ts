// What a new session records about the request that opened it and about Duo's answer.
import type { Request } from 'express';
import { clientIpOf } from './duo-request-context.js';
import { SESSION_BOUNDS, sessionUserAgent } from './stores/session-record.js';
import { isCleanString } from './stores/store-validation.js';

/** Where a session is opened from: the client's address and its User-Agent (cut and cleaned). */
export function sessionOrigin(req: Request): { clientIp?: string; userAgent?: string } {
  const clientIp = clientIpOf(req);
  const userAgent = sessionUserAgent(req.headers['user-agent']);
  return {
    ...(clientIp && clientIp.length <= SESSION_BOUNDS.clientIp.max ? { clientIp } : {}),
    ...(userAgent ? { userAgent } : {}),
  };
}

/**
 * `{ [key]: value }` when Duo's value is a clean string within the session's bounds, else `{}`:
 * an absent or odd result or reason is not recorded, and the bypass check then treats the
 * session as a bypass (strict).
 */
export function textField<K extends 'duoResult' | 'duoReason'>(
  key: K,
  value: unknown,
): Partial<Record<K, string>> {
  return isCleanString(value, 1, SESSION_BOUNDS[key].max)
    ? ({ [key]: value } as Partial<Record<K, string>>)
    : {};
}
