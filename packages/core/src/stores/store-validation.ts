import { hash } from 'node:crypto';

// Shared checks for what goes into a store and, above all, for what comes back out of Redis:
// a record read back is never trusted until it passes the same checks as one written.

const BASE64URL = /^[A-Za-z0-9_-]+$/;
// C0 controls, DEL and C1 controls: never allowed in the identifiers we store.

const CONTROL_CHARS = /[\u0000-\u001f\u007f-\u009f]/;

/** base64url (no padding) of the SHA-256 of `value`: 43 characters. */
export function sha256Base64Url(value: string): string {
  return hash('sha256', value, 'base64url');
}

export function isBase64Url(value: unknown, min: number, max: number): value is string {
  return (
    typeof value === 'string' && value.length >= min && value.length <= max && BASE64URL.test(value)
  );
}

/** A string of `min..max` UTF-16 units without control characters. */
export function isCleanString(value: unknown, min: number, max: number): value is string {
  return (
    typeof value === 'string' &&
    value.length >= min &&
    value.length <= max &&
    !CONTROL_CHARS.test(value)
  );
}

/** A non-negative integer millisecond (or second) timestamp. */
export function isEpoch(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
}

export function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return false;
  }
  const proto = Object.getPrototypeOf(value) as unknown;
  return proto === Object.prototype || proto === null;
}

/** `JSON.parse` that answers `undefined` instead of throwing. */
export function parseJson(text: unknown): unknown {
  if (typeof text !== 'string') {
    return undefined;
  }
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

export function utf8Length(text: string): number {
  return Buffer.byteLength(text, 'utf8');
}

/** A positive integer option, or the default when undefined; anything else is a caller bug. */
export function positiveIntOption(
  name: string,
  value: number | undefined,
  fallback: number,
): number {
  const v = value ?? fallback;
  if (!Number.isSafeInteger(v) || v <= 0) {
    throw new RangeError(`${name} must be a positive integer`);
  }
  return v;
}

/** The key prefix as Redis sees it: ioredis' own `keyPrefix` (if the caller set one) + ours. */
export function effectivePrefix(redisKeyPrefix: unknown, prefix: string): string {
  return (typeof redisKeyPrefix === 'string' ? redisKeyPrefix : '') + prefix;
}

/** Escapes glob metacharacters for SCAN MATCH. */
export function escapeGlob(text: string): string {
  return text.replace(/[*?[\]\\]/g, (c) => `\\${c}`);
}

/** Runs a synchronous store operation as a promise: a throw becomes a rejection. */
export function settle<T>(operation: () => T): Promise<T> {
  try {
    return Promise.resolve(operation());
  } catch (err) {
    return Promise.reject(err instanceof Error ? err : new Error(String(err)));
  }
}
