import { isIP } from 'node:net';
import type { Request } from 'express';
import type { DuoAuthEvent } from './duo-events.js';

const CORRELATION_ID_RE = /^[A-Za-z0-9._-]{1,64}$/;

/**
 * The client's address: Express's `req.ip` (the app's trusted proxy hops applied) when it parses
 * as an IP address, else the socket's. A trusted proxy forwards whatever X-Forwarded-For the
 * client sent before it, so a hop that is not an address (300 characters of text, say) must
 * never become the client's identity in the audit trail, the rate limits or a store record.
 */
export function clientIpOf(req: Pick<Request, 'ip' | 'socket'>): string | undefined {
  const ip = req.ip;
  if (typeof ip === 'string' && isIP(ip) !== 0) {
    return ip;
  }
  const socket = req.socket?.remoteAddress;
  return typeof socket === 'string' && isIP(socket) !== 0 ? socket : undefined;
}

/**
 * What every event says about its request: client IP (see clientIpOf), user agent, and the
 * correlation id the app put on `req.id` (when it is safe).
 */
export function requestContext(
  req: Request,
): Pick<DuoAuthEvent, 'clientIp' | 'userAgent' | 'correlationId'> {
  const ua = req.headers['user-agent'];
  const id = (req as Request & { id?: unknown }).id;
  const clientIp = clientIpOf(req);
  return {
    ...(clientIp ? { clientIp } : {}),
    ...(typeof ua === 'string' ? { userAgent: ua.slice(0, 512) } : {}),
    ...(typeof id === 'string' && CORRELATION_ID_RE.test(id) ? { correlationId: id } : {}),
  };
}
