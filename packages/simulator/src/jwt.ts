import { createHmac, webcrypto } from 'node:crypto';
import { compactVerify, decodeProtectedHeader } from 'jose';

type CryptoKey = webcrypto.CryptoKey;
type Claims = Record<string, unknown>;

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Inbound JWTs may be HS512 (every SDK) or HS256 (some third-party integrations). */
export const INBOUND_ALGS = ['HS512', 'HS256'] as const;

/** How far ahead an inbound `exp` may be: Java uses one hour, plus a minute of skew. */
export const MAX_INBOUND_LIFETIME_SEC = 3600 + 60;
export const MIN_JTI_LENGTH = 16;

/** HMAC keys of one application, imported once. */
export interface AppKeys {
  HS512: CryptoKey;
  HS256: CryptoKey;
  secret: string;
}

export async function importAppKeys(secret: string): Promise<AppKeys> {
  const raw = encoder.encode(secret);
  const importFor = (hash: string) =>
    webcrypto.subtle.importKey('raw', raw, { name: 'HMAC', hash }, false, ['sign', 'verify']);
  return { HS512: await importFor('SHA-512'), HS256: await importFor('SHA-256'), secret };
}

export class JwtCheckError extends Error {}

function fail(reason: string): never {
  throw new JwtCheckError(reason);
}

/** Claims of a JWT without checking anything: used only to find which client signed it. */
export function peekClaims(jwt: string): Claims | null {
  try {
    const payload = jwt.split('.')[1];
    if (payload === undefined) {
      return null;
    }
    const parsed: unknown = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8'));
    return parsed !== null && typeof parsed === 'object' && !Array.isArray(parsed)
      ? (parsed as Claims)
      : null;
  } catch {
    return null;
  }
}

/**
 * Verifies the signature only (claims are checked by hand afterwards, because SDKs send `exp` as
 * an integer, a float or a numeric string and jose's claim checks refuse the string form).
 */
export async function verifySignature(jwt: string, keys: AppKeys): Promise<Claims> {
  let alg: unknown;
  try {
    alg = decodeProtectedHeader(jwt).alg;
  } catch {
    fail('malformed JWT header');
  }
  if (alg !== 'HS512' && alg !== 'HS256') {
    fail('algorithm not allowed');
  }
  let payload: Uint8Array;
  try {
    ({ payload } = await compactVerify(jwt, keys[alg], {
      algorithms: [...INBOUND_ALGS],
    }));
  } catch {
    fail('signature verification failed');
  }
  let claims: unknown;
  try {
    claims = JSON.parse(decoder.decode(payload));
  } catch {
    fail('payload is not JSON');
  }
  if (claims === null || typeof claims !== 'object' || Array.isArray(claims)) {
    fail('payload is not a JSON object');
  }
  return claims as Claims;
}

/** A NumericDate as an integer, a float or a numeric string (C# serialises every claim as text). */
export function numericDate(value: unknown): number | null {
  if (typeof value === 'number' && Number.isFinite(value)) {
    return value;
  }
  if (typeof value === 'string' && /^\d+(\.\d+)?$/.test(value)) {
    return Number(value);
  }
  return null;
}

/** `exp` present, in the future and at most about an hour ahead. */
export function checkExp(claims: Claims, nowSec: number): number {
  const exp = numericDate(claims.exp);
  if (exp === null) {
    fail('exp missing or not numeric');
  }
  if (exp <= nowSec) {
    fail('exp in the past');
  }
  if (exp > nowSec + MAX_INBOUND_LIFETIME_SEC) {
    fail('exp too far in the future');
  }
  return exp;
}

/** `aud` as one string (or a one-element array, which RFC 7519 allows), compared exactly. */
export function audienceMatches(aud: unknown, accepted: readonly string[]): boolean {
  const single = Array.isArray(aud) && aud.length === 1 ? (aud[0] as unknown) : aud;
  return typeof single === 'string' && accepted.includes(single);
}

export interface AssertionCheck {
  clientId: string;
  audience: string;
  nowSec: number;
}

/** Claims checks of a client assertion (§4.2, §14.1); returns the jti and its expiry. */
export function checkAssertionClaims(
  claims: Claims,
  check: AssertionCheck,
): { jti: string; exp: number } {
  if (claims.iss !== check.clientId) {
    fail('iss is not the client id');
  }
  if (claims.sub !== undefined && claims.sub !== check.clientId) {
    fail('sub is not the client id');
  }
  if (!audienceMatches(claims.aud, [check.audience])) {
    fail('aud is not the endpoint URL');
  }
  const exp = checkExp(claims, check.nowSec);
  const jti = claims.jti;
  if (typeof jti !== 'string' || jti.length < MIN_JTI_LENGTH) {
    fail('jti missing or shorter than 16 characters');
  }
  return { jti, exp };
}

function b64url(data: string | Buffer): string {
  return Buffer.from(data).toString('base64url');
}

/**
 * Signs claims as a compact JWS with node:crypto (the id_token and the faulty variants). Plain
 * HMAC keeps the simulator fast and lets it build tokens jose would refuse to make (alg none).
 */
export function signJwt(claims: Claims, secret: string, alg: 'HS512' | 'HS256' | 'none'): string {
  const header = { alg, typ: 'JWT' };
  const input = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(claims))}`;
  if (alg === 'none') {
    return `${input}.`;
  }
  const hash = alg === 'HS512' ? 'sha512' : 'sha256';
  return `${input}.${createHmac(hash, secret).update(input).digest('base64url')}`;
}
