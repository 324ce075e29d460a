// Duo's request signing for the Admin API (and every other "ikey/skey" Duo API): the canonical
// string of signature version 5, HMAC-SHA512 keyed with the secret key, sent as HTTP Basic
// `ikey:hex(signature)`. Written from Duo's API documentation; cross-checked byte for byte against
// @duosecurity/duo_api 1.5.0 (admin-api-signing.spec.ts). Version 5 is the newest that SDK implements.
import { createHash, createHmac } from 'node:crypto';

/** Request parameters: one value, or several for a repeated key. */
export type DuoSignedParams = Readonly<Record<string, string | readonly string[]>>;

export interface DuoSigningInput {
  /** The `Date` header, RFC 2822 (see `formatDuoDate`). */
  date: string;
  method: string;
  /** The API host as sent in the Host header (`api-xxxx.duosecurity.com`, or `host:port`). */
  host: string;
  /** The path alone, without the query string. */
  path: string;
  /** For GET and DELETE the query parameters; empty for a JSON body. */
  params: DuoSignedParams;
  /** The request body (JSON text for POST/PUT/PATCH), '' without one. */
  body?: string;
  /**
   * `X-Duo-*` headers that are part of the request. None are sent by our client; the rule for them
   * (lower-cased names, sorted, name and value joined by NUL) follows Duo's Python client (unconfirmed).
   */
  duoHeaders?: Readonly<Record<string, string>>;
}

/** Thrown for input that cannot be signed (a lone UTF-16 surrogate has no UTF-8 encoding). */
export class DuoSigningInputError extends Error {
  override name = 'DuoSigningInputError';
}

/**
 * Percent-encoding of Duo's canonical form: every byte of the UTF-8 form except A-Z a-z 0-9 - _ . ~
 * becomes %XX (upper-case hex), so a space is %20, never '+'.
 */
export function duoEncode(text: string): string {
  let encoded: string;
  try {
    encoded = encodeURIComponent(text);
  } catch {
    throw new DuoSigningInputError('a parameter holds a lone UTF-16 surrogate');
  }
  return encoded.replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

/** Compares by UTF-16 code units, as the official Node SDK sorts parameter names. */
function byCodeUnits(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * The canonical parameter string: names sorted (UTF-16 code units, as the Node SDK does; for the
 * ASCII names this client sends, the same order as Duo's Python client's sort of encoded names),
 * each `name=value` percent-encoded, a repeated name once per value in the order given, joined by &.
 */
export function canonicalParams(params: DuoSignedParams): string {
  return Object.keys(params)
    .sort(byCodeUnits)
    .flatMap((name) => {
      const value = params[name];
      const values: readonly string[] = typeof value === 'string' ? [value] : value;
      return values.map((v) => `${duoEncode(name)}=${duoEncode(v)}`);
    })
    .join('&');
}

function sha512Hex(text: string): string {
  return createHash('sha512').update(text, 'utf8').digest('hex');
}

/** The canonical form of the X-Duo-* headers (empty: the hash of ''). */
export function canonicalDuoHeaders(headers: Readonly<Record<string, string>> = {}): string {
  const lowered = new Map<string, string>();
  for (const [name, value] of Object.entries(headers)) {
    const key = name.toLowerCase();
    if (!key.startsWith('x-duo-') || lowered.has(key)) {
      throw new DuoSigningInputError('only distinct X-Duo-* headers can be signed');
    }
    lowered.set(key, value);
  }
  return [...lowered.keys()]
    .sort(byCodeUnits)
    .flatMap((key) => [key, lowered.get(key) as string])
    .join('\0');
}

/**
 * The string signed in version 5: date, METHOD, lower-case host, path, canonical parameters, the
 * SHA-512 (hex) of the body and the SHA-512 (hex) of the canonical X-Duo-* headers, joined by LF.
 */
export function canonicalRequestV5(input: DuoSigningInput): string {
  return [
    input.date,
    input.method.toUpperCase(),
    input.host.toLowerCase(),
    input.path,
    canonicalParams(input.params),
    sha512Hex(input.body ?? ''),
    sha512Hex(canonicalDuoHeaders(input.duoHeaders)),
  ].join('\n');
}

/** The Authorization header value: `Basic base64(ikey:hex(HMAC-SHA512(skey, canonical)))`. */
export function signRequestV5(
  integrationKey: string,
  secretKey: string,
  input: DuoSigningInput,
): { canonical: string; authorization: string } {
  const canonical = canonicalRequestV5(input);
  const signature = createHmac('sha512', secretKey).update(canonical, 'utf8').digest('hex');
  const authorization = `Basic ${Buffer.from(`${integrationKey}:${signature}`, 'utf8').toString('base64')}`;
  return { canonical, authorization };
}

/** RFC 2822 date in GMT, as the official Node SDK sends it (`Tue, 21 Aug 2012 17:29:18 GMT`). */
export function formatDuoDate(ms: number): string {
  return new Date(ms).toUTCString();
}
