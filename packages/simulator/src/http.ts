import type { IncomingMessage, ServerResponse } from 'node:http';
import { pageCsp } from './prompt-page.js';

/**
 * Headers of Duo's JSON responses. The DaVinci connector's output lists server, date,
 * content-type, content-length, connection, cache-control, pragma, strict-transport-security and
 * content-security-policy; the exact values Duo sends are unconfirmed, these are RFC 6749 §5.1's.
 */
export const API_HEADERS = {
  'Cache-Control': 'no-store',
  Pragma: 'no-cache',
  'Strict-Transport-Security': 'max-age=31536000; includeSubDomains',
  'Content-Security-Policy': "default-src 'none'; frame-ancestors 'none'",
  'X-Content-Type-Options': 'nosniff',
  Server: 'duo-simulator',
} as const;

/** Sent on error answers so tests can see which check failed (never carries secrets). */
export const REASON_HEADER = 'x-simulator-reason';

export function sendJson(
  res: ServerResponse,
  status: number,
  body: unknown,
  extra: Record<string, string> = {},
): void {
  sendRaw(res, status, JSON.stringify(body), extra);
}

/** A JSON-typed body sent as is (the malformed and oversized token faults use it). */
export function sendRaw(
  res: ServerResponse,
  status: number,
  text: string,
  extra: Record<string, string> = {},
): void {
  const body = Buffer.from(text, 'utf8');
  res.writeHead(status, {
    ...API_HEADERS,
    'Content-Type': 'application/json',
    'Content-Length': String(body.length),
    ...extra,
  });
  res.end(body);
}

export function sendHtml(
  res: ServerResponse,
  status: number,
  html: string,
  formTargets: readonly string[] = [],
  extra: Record<string, string> = {},
): void {
  const body = Buffer.from(html, 'utf8');
  res.writeHead(status, {
    'Content-Type': 'text/html; charset=utf-8',
    'Content-Length': String(body.length),
    'Content-Security-Policy': pageCsp(formTargets),
    'Cache-Control': 'no-store',
    'X-Frame-Options': 'DENY',
    'Referrer-Policy': 'no-referrer',
    'X-Content-Type-Options': 'nosniff',
    Server: 'duo-simulator',
    ...extra,
  });
  res.end(body);
}

export function sendRedirect(res: ServerResponse, location: string): void {
  res.writeHead(302, {
    Location: location,
    'Cache-Control': 'no-store',
    'Referrer-Policy': 'no-referrer',
    'Content-Length': '0',
    Server: 'duo-simulator',
  });
  res.end();
}

export function sendText(res: ServerResponse, status: number, text: string): void {
  res.writeHead(status, {
    'Content-Type': 'text/plain; charset=utf-8',
    'Content-Length': String(Buffer.byteLength(text)),
    Server: 'duo-simulator',
  });
  res.end(text);
}

/** The browser's address as Duo would log it (IPv4-mapped IPv6 unwrapped). */
export function remoteIp(req: IncomingMessage): string | null {
  const address = req.socket.remoteAddress;
  if (!address) {
    return null;
  }
  return address.startsWith('::ffff:') ? address.slice(7) : address;
}

/**
 * Appends parameters to a redirect URI, keeping its own query (joined with `&`) and fragment.
 * Values are UTF-8 percent-encoded, so any Unicode state comes back unchanged after decoding.
 */
export function appendParams(uri: string, params: [string, string][]): string {
  const hashAt = uri.indexOf('#');
  const base = hashAt === -1 ? uri : uri.slice(0, hashAt);
  const fragment = hashAt === -1 ? '' : uri.slice(hashAt);
  const query = params.map(([k, v]) => `${k}=${encodeURIComponent(v)}`).join('&');
  const joiner = !base.includes('?') ? '?' : base.endsWith('?') || base.endsWith('&') ? '' : '&';
  return `${base}${joiner}${query}${fragment}`;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
