// The Admin API's authentication log endpoint, as Duo serves it: every request must carry a valid
// HMAC signature (its own implementation here, written from Duo's documentation: canonical
// parameters as Duo's Python client builds them, signature version 5); bad ones get Duo's 401
// envelope. See README.md "Admin API" for what is confirmed about Duo and what is not.
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { AUTH_LOG_DEFAULT_LIMIT, AUTH_LOG_MAX_LIMIT, type AuthLogQuery } from './auth-log.js';
import type { SimContext } from './context.js';
import { REASON_HEADER, sendJson, sendText } from './http.js';
import { readBody } from './params.js';

export const ADMIN_AUTH_LOG_PATH = '/admin/v2/logs/authentication';
/** Largest clock difference accepted on the Date header (Duo's own bound is unconfirmed). */
export const ADMIN_DATE_SKEW_MS = 300_000;

/** Duo's 401 codes for request credentials (Duo's API error reference). */
export const ADMIN_AUTH_ERRORS = {
  missing: { code: 40101, message: 'Missing request credentials' },
  ikey: { code: 40102, message: 'Invalid integration key in request credentials' },
  signature: { code: 40103, message: 'Invalid signature in request credentials' },
  date: { code: 40104, message: 'Invalid request timestamp' },
} as const;
type AuthRefusal = keyof typeof ADMIN_AUTH_ERRORS;

/** What the endpoint needs besides the store: the Admin API credentials. */
export interface AdminCredentials {
  integrationKey: string;
  secretKey: string;
}

const RFC2822_DATE =
  /^(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d{2} (?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{4} \d{2}:\d{2}:\d{2} (?:GMT|[+-]\d{4})$/;

/** RFC 3986 unreserved characters stay, every other UTF-8 byte becomes %XX (upper case). */
function quote(text: string): string {
  let out = '';
  for (const byte of Buffer.from(text, 'utf8')) {
    const c = String.fromCharCode(byte);
    out += /[A-Za-z0-9_.~-]/.test(c) ? c : `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

/**
 * Canonical parameters as Duo's Python client builds them: names and values percent-encoded, pairs
 * sorted by encoded name, then by encoded value, joined by '&'.
 */
function canonParams(pairs: [string, string][]): string {
  return pairs
    .map(([k, v]) => [quote(k), quote(v)] as const)
    .sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0))
    .map(([k, v]) => `${k}=${v}`)
    .join('&');
}

function sha512(data: Buffer | string): string {
  return createHash('sha512').update(data).digest('hex');
}

/** X-Duo-* headers: lower-cased names, sorted, name and value joined by NUL (unconfirmed). */
function canonDuoHeaders(req: IncomingMessage): string {
  const names = Object.keys(req.headers)
    .filter((n) => n.startsWith('x-duo-'))
    .sort();
  return names.flatMap((n) => [n, String(req.headers[n])]).join('\0');
}

/** Query pairs decoded strictly (a malformed escape refuses the request). */
export function queryPairs(rawQuery: string): [string, string][] | undefined {
  if (rawQuery === '') {
    return [];
  }
  const pairs: [string, string][] = [];
  for (const part of rawQuery.split('&')) {
    const eq = part.indexOf('=');
    const [k, v] = eq < 0 ? [part, ''] : [part.slice(0, eq), part.slice(eq + 1)];
    try {
      pairs.push([
        decodeURIComponent(k.replace(/\+/g, ' ')),
        decodeURIComponent(v.replace(/\+/g, ' ')),
      ]);
    } catch {
      return undefined;
    }
  }
  return pairs;
}

/** Checks the Authorization and Date headers; returns why the request is refused, or null. */
export function verifyAdminRequest(
  creds: AdminCredentials,
  req: IncomingMessage,
  path: string,
  pairs: [string, string][],
  body: Buffer,
  nowMs: number,
): AuthRefusal | null {
  const header = req.headers.authorization;
  const match = typeof header === 'string' ? /^Basic ([A-Za-z0-9+/]+={0,2})$/.exec(header) : null;
  if (!match) {
    return 'missing';
  }
  const decoded = Buffer.from(match[1], 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon < 0) {
    return 'missing';
  }
  const ikey = decoded.slice(0, colon);
  const signature = decoded.slice(colon + 1);
  if (ikey !== creds.integrationKey) {
    return 'ikey';
  }
  const date = req.headers.date;
  const dateMs = typeof date === 'string' && RFC2822_DATE.test(date) ? Date.parse(date) : NaN;
  if (Number.isNaN(dateMs) || Math.abs(dateMs - nowMs) > ADMIN_DATE_SKEW_MS) {
    return 'date';
  }
  const canonical = [
    date,
    (req.method ?? 'GET').toUpperCase(),
    (req.headers.host ?? '').toLowerCase(),
    path,
    canonParams(pairs),
    sha512(body),
    sha512(canonDuoHeaders(req)),
  ].join('\n');
  const expected = Buffer.from(
    createHmac('sha512', creds.secretKey).update(canonical, 'utf8').digest('hex'),
  );
  const given = Buffer.from(signature);
  return given.length === expected.length && timingSafeEqual(given, expected) ? null : 'signature';
}

function invalidParams(res: ServerResponse, detail: string): void {
  sendJson(res, 400, {
    stat: 'FAIL',
    code: 40002,
    message: 'Invalid request parameters',
    message_detail: detail,
  });
}

const KNOWN_PARAMS = new Set([
  'mintime',
  'maxtime',
  'limit',
  'next_offset',
  'sort',
  'applications',
]);
const MS_RE = /^\d{13}$/;

/** Reads the query as Duo documents it; answers 40002 and returns undefined when it is invalid. */
function parseQuery(res: ServerResponse, pairs: [string, string][]): AuthLogQuery | undefined {
  const single = new Map<string, string>();
  const applications = new Set<string>();
  for (const [k, v] of pairs) {
    if (!KNOWN_PARAMS.has(k)) {
      // Duo has more filters; the simulator refuses what it does not implement rather than ignore it.
      invalidParams(res, `${k} (not implemented by the simulator)`);
      return undefined;
    }
    if (k === 'applications') {
      applications.add(v);
    } else if (single.has(k)) {
      invalidParams(res, k);
      return undefined;
    } else {
      single.set(k, v);
    }
  }
  const mintime = single.get('mintime');
  const maxtime = single.get('maxtime');
  if (mintime === undefined || !MS_RE.test(mintime)) {
    invalidParams(res, 'mintime');
    return undefined;
  }
  if (maxtime === undefined || !MS_RE.test(maxtime) || Number(maxtime) <= Number(mintime)) {
    invalidParams(res, 'maxtime');
    return undefined;
  }
  const limitText = single.get('limit') ?? String(AUTH_LOG_DEFAULT_LIMIT);
  const limit = Number(limitText);
  if (!/^\d{1,4}$/.test(limitText) || limit < 1 || limit > AUTH_LOG_MAX_LIMIT) {
    invalidParams(res, 'limit');
    return undefined;
  }
  const sort = single.get('sort') ?? 'ts:desc';
  if (sort !== 'ts:asc' && sort !== 'ts:desc') {
    invalidParams(res, 'sort');
    return undefined;
  }
  let offset: AuthLogQuery['offset'];
  const rawOffset = single.get('next_offset');
  if (rawOffset !== undefined) {
    const m = /^(\d{13}),([\x21-\x2b\x2d-\x7e]{1,128})$/.exec(rawOffset);
    if (!m) {
      invalidParams(res, 'next_offset');
      return undefined;
    }
    offset = { tsMs: Number(m[1]), txid: m[2] };
  }
  return {
    mintime: Number(mintime),
    maxtime: Number(maxtime),
    limit,
    sort,
    offset,
    applications: applications.size > 0 ? applications : undefined,
  };
}

/** GET /admin/v2/logs/authentication. */
export async function handleAuthLog(
  ctx: SimContext,
  creds: AdminCredentials,
  req: IncomingMessage,
  res: ServerResponse,
  rawUrl: string,
): Promise<void> {
  const store = ctx.store;
  store.counters.admin_log++;
  const fault = store.takeAdminFault();
  switch (fault?.fault) {
    case 'outage':
      sendText(res, 503, 'Service Unavailable');
      return;
    case '500':
      sendText(res, 500, 'Internal Server Error');
      return;
    case 'reset':
      req.socket.destroy();
      return;
    case 'timeout':
      return; // never answer; close() drops the connection
    case '429':
      sendJson(
        res,
        429,
        { stat: 'FAIL', code: 42901, message: 'Too Many Requests' },
        fault.retryAfterSec === null ? {} : { 'Retry-After': String(fault.retryAfterSec) },
      );
      return;
    case undefined:
      break;
  }
  const body = await readBody(req);
  const q = rawUrl.indexOf('?');
  const pairs = queryPairs(q < 0 ? '' : rawUrl.slice(q + 1));
  const refusal = pairs
    ? verifyAdminRequest(creds, req, ADMIN_AUTH_LOG_PATH, pairs, body, Date.now())
    : 'signature';
  if (refusal) {
    store.counters.admin_refused++;
    sendJson(
      res,
      401,
      { stat: 'FAIL', ...ADMIN_AUTH_ERRORS[refusal] },
      { [REASON_HEADER]: `admin ${refusal}` },
    );
    return;
  }
  const query = parseQuery(res, pairs ?? []);
  if (!query) {
    store.counters.admin_refused++;
    return;
  }
  sendJson(res, 200, { stat: 'OK', response: store.log.page(query) });
}
