/**
 * One strict decoder for every parameter the app reads from a request: query strings, urlencoded
 * bodies and cookies. Lenient decoders keep `%ZZ` as literal text and turn invalid UTF-8
 * (overlongs such as `%C0%AF`, surrogates such as `%ED%A0%80`, truncated sequences) into U+FFFD or
 * into text that differs from what other layers see; this one refuses the whole input instead.
 */

/** Why an input was refused (a stable machine code, stored as the audit reason). */
export type StrictInputFailure =
  | 'malformed_escape'
  | 'invalid_utf8'
  | 'invalid_char'
  | 'duplicate_key'
  | 'empty_key'
  | 'too_many_params'
  | 'invalid_cookie';

export type StrictParams = Record<string, string>;

export type StrictParseResult =
  | { ok: true; params: StrictParams }
  | { ok: false; failure: StrictInputFailure; name?: string; times?: number };

// fatal: invalid UTF-8 throws instead of becoming U+FFFD (overlongs, surrogates, truncation, > U+10FFFF).
const UTF8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

function hexValue(byte: number): number {
  if (byte >= 0x30 && byte <= 0x39) {
    return byte - 0x30;
  }
  const lower = byte | 0x20;
  return lower >= 0x61 && lower <= 0x66 ? lower - 0x61 + 10 : -1;
}

/**
 * Decodes one `application/x-www-form-urlencoded` component (`+` is a space, `%XX` a byte) into
 * well-formed UTF-8 text. `undefined` names the failure: a `%` not followed by two hex digits, or
 * bytes that are not valid UTF-8.
 */
export function strictDecodeComponent(
  component: string,
): { ok: true; value: string } | { ok: false; failure: StrictInputFailure } {
  // Fast path: nothing to decode (the raw text itself was checked by the caller).
  if (!component.includes('%') && !component.includes('+')) {
    return { ok: true, value: component };
  }
  const raw = Buffer.from(component, 'utf8');
  const out = Buffer.allocUnsafe(raw.length);
  let n = 0;
  for (let i = 0; i < raw.length; i += 1) {
    const b = raw[i];
    if (b === 0x25) {
      const hi = i + 2 < raw.length ? hexValue(raw[i + 1]) : -1;
      const lo = hi >= 0 ? hexValue(raw[i + 2]) : -1;
      if (lo < 0) {
        return { ok: false, failure: 'malformed_escape' };
      }
      out[n++] = (hi << 4) | lo;
      i += 2;
    } else {
      out[n++] = b === 0x2b ? 0x20 : b;
    }
  }
  try {
    return { ok: true, value: UTF8.decode(out.subarray(0, n)) };
  } catch {
    return { ok: false, failure: 'invalid_utf8' };
  }
}

/**
 * Parses a query string or an urlencoded body strictly: every name and value decoded by
 * strictDecodeComponent, every name given at most once and not empty, at most `maxParams` pairs.
 * The result has no prototype (`__proto__` is a plain key). Empty pieces (`a=1&&b=2`) are skipped,
 * as WHATWG URLSearchParams does.
 */
export function parseStrictParams(text: string, maxParams: number): StrictParseResult {
  const params = Object.create(null) as StrictParams;
  if (text === '') {
    return { ok: true, params };
  }
  let count = 0;
  for (const piece of text.split('&')) {
    if (piece === '') {
      continue;
    }
    count += 1;
    if (count > maxParams) {
      return { ok: false, failure: 'too_many_params' };
    }
    const eq = piece.indexOf('=');
    const name = strictDecodeComponent(eq < 0 ? piece : piece.slice(0, eq));
    if (!name.ok) {
      return name;
    }
    const value = strictDecodeComponent(eq < 0 ? '' : piece.slice(eq + 1));
    if (!value.ok) {
      return value;
    }
    if (name.value === '') {
      return { ok: false, failure: 'empty_key' };
    }
    if (Object.hasOwn(params, name.value)) {
      return {
        ok: false,
        failure: 'duplicate_key',
        name: name.value,
        times: timesGiven(text, name.value),
      };
    }
    params[name.value] = value.value;
  }
  return { ok: true, params };
}

/** How often `name` is given in `text` (pieces that do not decode are not counted). */
function timesGiven(text: string, name: string): number {
  let times = 0;
  for (const piece of text.split('&')) {
    const eq = piece.indexOf('=');
    const decoded = strictDecodeComponent(eq < 0 ? piece : piece.slice(0, eq));
    if (decoded.ok && decoded.value === name) {
      times += 1;
    }
  }
  return times;
}

/** Parameter names short and plain enough to be quoted back in an error message. */
const QUOTABLE_NAME_RE = /^[A-Za-z0-9_.-]{1,40}$/;

/**
 * What a refused query or form says to its sender: the problem, and the parameter's name when it
 * is plain enough to quote (never its value).
 */
export function describeStrictFailure(
  result: Extract<StrictParseResult, { ok: false }>,
  where = 'The address',
): string {
  switch (result.failure) {
    case 'duplicate_key':
      return result.name !== undefined && QUOTABLE_NAME_RE.test(result.name)
        ? `${result.name} is given ${result.times ?? 2} times; give it once`
        : `${where} gives one parameter more than once`;
    case 'empty_key':
      return `${where} has a parameter without a name`;
    case 'too_many_params':
      return `${where} has too many parameters`;
    case 'malformed_escape':
      return `${where} has a % that is not followed by two hex digits`;
    case 'invalid_utf8':
      return `${where} has percent-escapes that are not valid UTF-8`;
    case 'invalid_char':
      return `${where} has a character that must be percent-encoded`;
    case 'invalid_cookie':
      return `${where} has a malformed cookie`;
  }
}

/** A raw query string holds printable ASCII only: anything else must arrive percent-encoded. */
const RAW_QUERY_RE = /^[\x21-\x7e]*$/;

/** Parses the raw query string of a request target strictly (see parseStrictParams). */
export function parseStrictQuery(url: string, maxParams: number): StrictParseResult {
  const raw = rawQueryOf(url);
  if (!RAW_QUERY_RE.test(raw)) {
    return { ok: false, failure: 'invalid_char' };
  }
  return parseStrictParams(raw, maxParams);
}

/** Parses an urlencoded body strictly: its bytes must be UTF-8 before any escape is decoded. */
export function parseStrictForm(body: Uint8Array, maxParams: number): StrictParseResult {
  let text: string;
  try {
    text = UTF8.decode(body);
  } catch {
    return { ok: false, failure: 'invalid_utf8' };
  }
  return parseStrictParams(text, maxParams);
}

/** The raw query string of a request target (`/path?a=b#x` gives `a=b`), or '' without one. */
export function rawQueryOf(url: string): string {
  const q = url.indexOf('?');
  if (q < 0) {
    return '';
  }
  const hash = url.indexOf('#', q + 1);
  return url.slice(q + 1, hash < 0 ? undefined : hash);
}

/** Printable ASCII without space, `"`, `,`, `;`, `\` and `%` (RFC 6265 cookie-octet minus `%`). */
const COOKIE_VALUE_RE = /^[\x21\x23-\x24\x26-\x2b\x2d-\x3a\x3c-\x5b\x5d-\x7e]{1,4096}$/;

/** One cookie of ours, read strictly: absent, present once with a clean value, or invalid. */
export type StrictCookie =
  | { status: 'absent' }
  | { status: 'ok'; value: string }
  | { status: 'invalid'; why: 'duplicate' | 'malformed' };

/**
 * Reads the cookie `name` from a Cookie header. Our cookie values are never percent-encoded, so
 * they are not decoded: a value with `%`, a quote, a space, a control or a non-ASCII byte (Node
 * hands header bytes over as Latin-1) is `invalid`, and so are two cookies of that name (cookie
 * tossing). Other cookies on the header are not ours to judge and are ignored.
 */
export function readStrictCookie(header: string | undefined, name: string): StrictCookie {
  if (!header) {
    return { status: 'absent' };
  }
  let found: string | undefined;
  let seen = 0;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) {
      seen += 1;
      found = part.slice(eq + 1).trim();
    }
  }
  if (seen === 0 || found === undefined) {
    return { status: 'absent' };
  }
  if (seen > 1) {
    return { status: 'invalid', why: 'duplicate' };
  }
  return COOKIE_VALUE_RE.test(found)
    ? { status: 'ok', value: found }
    : { status: 'invalid', why: 'malformed' };
}
