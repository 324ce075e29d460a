// The checks of Duo's id_token: its form, the HS512 signature with the client secret, and every
// claim (iss, aud, azp, exp, iat, nonce, preferred_username, auth_result, auth_context).
import { createHmac, timingSafeEqual } from 'node:crypto';
import { errors as joseErrors, UnsecuredJWT, type JWTPayload } from 'jose';
import { DUO_SIG_ALG } from './duo.constants.js';
import { DuoError, type DuoErrorCode } from './duo.errors.js';
import { isRecord, safeText } from './duo-remote-text.js';
import type { DuoExchangeOptions, DuoIdTokenClaims } from './duo.types.js';

/** Duo's id_tokens are about 1.5 KB; anything far larger is refused before it is parsed. */
export const DUO_ID_TOKEN_MAX_LENGTH = 16 * 1024;
/** Duo sets exp = auth_time + 3600 and iat (the exchange) after auth_time, so exp - iat <= 3600. */
export const DUO_ID_TOKEN_MAX_LIFETIME_SEC = 3600;
const ID_TOKEN_HEADER_KEYS = new Set(['alg', 'typ']);
const B64URL_RE = /^[A-Za-z0-9_-]+$/;
const STRICT_UTF8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
/** `{"alg":"none"}`: the header under which jose checks the claims of an already verified payload. */
const UNSECURED_HEADER = Buffer.from('{"alg":"none"}').toString('base64url');

/** What the checks take from the client: the key, who must have issued the token, for whom. */
export interface DuoIdTokenKey {
  secret: string;
  /** `https://<api host>/oauth/v1/token`. */
  issuer: string;
  clientId: string;
  clockToleranceMs: number;
}

/**
 * Verifies an id_token: HS512 only with the client secret, exact iss and aud, exp and iat required
 * (clock tolerance applied), iat not in the future, nonce and preferred_username exact, and an
 * allowed auth_result. Any failure is a DuoError with an id_token_* code.
 */
export function verifyDuoIdToken(
  idToken: string,
  expected: DuoExchangeOptions,
  key: DuoIdTokenKey,
  nowMs: number,
): DuoIdTokenClaims {
  const toleranceSec = key.clockToleranceMs / 1000;
  const protectedHeader = verifySignature(idToken, key.secret);
  let payload: JWTPayload;
  try {
    // The signature is verified: jose now checks the claims exactly as jwtVerify would
    // (validateClaimsSet), given the verified payload under a neutral header.
    ({ payload } = UnsecuredJWT.decode(`${UNSECURED_HEADER}.${idToken.split('.')[1]}.`, {
      issuer: key.issuer,
      audience: key.clientId,
      clockTolerance: toleranceSec,
      requiredClaims: ['iss', 'aud', 'sub', 'exp', 'iat'],
      currentDate: new Date(nowMs),
    }));
  } catch (err) {
    throw idTokenError(err);
  }
  // Only the members Duo sends: a jku/x5u/jwk/x5c/kid header is never used, and refused.
  if (
    Object.keys(protectedHeader).some((k) => !ID_TOKEN_HEADER_KEYS.has(k)) ||
    (protectedHeader.typ !== undefined && protectedHeader.typ !== 'JWT')
  ) {
    throw new DuoError('id_token_malformed', 'The id_token header carries unexpected members');
  }
  const aud = Array.isArray(payload.aud) && payload.aud.length === 1 ? payload.aud[0] : payload.aud;
  if (aud !== key.clientId) {
    throw new DuoError(
      'id_token_aud',
      'The id_token audience must be exactly the Client ID (no other audience)',
    );
  }
  if (payload.azp !== undefined && payload.azp !== key.clientId) {
    throw new DuoError('id_token_aud', 'The id_token azp (authorized party) is not this Client ID');
  }
  if (typeof payload.iat !== 'number' || payload.iat > nowMs / 1000 + toleranceSec) {
    throw new DuoError(
      'id_token_iat',
      "The id_token was issued in the future; check this server's clock (NTP)",
    );
  }
  if (
    typeof payload.exp === 'number' &&
    payload.exp - payload.iat > DUO_ID_TOKEN_MAX_LIFETIME_SEC
  ) {
    throw new DuoError(
      'id_token_claims',
      `The id_token lifetime (exp - iat) is longer than ${DUO_ID_TOKEN_MAX_LIFETIME_SEC} s`,
    );
  }
  if (typeof payload.sub !== 'string' || payload.sub.length === 0) {
    throw new DuoError('id_token_claims', 'The id_token has no subject');
  }
  if (
    expected.nonce === undefined ? payload.nonce !== undefined : payload.nonce !== expected.nonce
  ) {
    throw new DuoError(
      'id_token_nonce',
      'The id_token nonce does not match this sign-on; start again',
    );
  }
  if (payload.preferred_username !== expected.username) {
    throw new DuoError(
      'id_token_username',
      'The id_token is for another user than the one who started this sign-on',
    );
  }
  const authResult = payload.auth_result;
  if (
    !isRecord(authResult) ||
    typeof authResult.result !== 'string' ||
    typeof authResult.status !== 'string'
  ) {
    throw new DuoError('id_token_claims', 'The id_token has no auth_result');
  }
  if (authResult.result !== 'allow') {
    throw new DuoError(
      'id_token_auth_result',
      `Duo did not allow this authentication (${safeText(authResult.status)})`,
    );
  }
  const context = payload.auth_context;
  if (!isRecord(context) || typeof context.txid !== 'string') {
    throw new DuoError('id_token_claims', 'The id_token has no auth_context with a txid');
  }
  return payload as DuoIdTokenClaims;
}

/**
 * Checks the token's form and its HS512 signature with the client secret, before anything of the
 * payload is used; returns the protected header. HMAC runs synchronously here (node:crypto): no
 * key import, no thread-pool hop, which is what makes verification fast.
 */
function verifySignature(idToken: string, secret: string): Record<string, unknown> {
  const header = assertCompactJws(idToken);
  if (header.alg !== DUO_SIG_ALG) {
    throw new DuoError(
      typeof header.alg === 'string' ? 'id_token_alg' : 'id_token_malformed',
      'The id_token is not signed with HS512',
    );
  }
  const dot = idToken.lastIndexOf('.');
  const given = Buffer.from(idToken.slice(dot + 1), 'base64url');
  const expected = createHmac('sha512', secret).update(idToken.slice(0, dot)).digest();
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
    throw new DuoError(
      'id_token_signature',
      'The id_token signature does not verify; check DUO_CLIENT_SECRET',
    );
  }
  return header;
}

function idTokenError(err: unknown): DuoError {
  const [code, message] = classifyJoseError(err);
  return new DuoError(code, message, { cause: err });
}

function classifyJoseError(err: unknown): [DuoErrorCode, string] {
  if (err instanceof joseErrors.JOSEAlgNotAllowed) {
    return ['id_token_alg', 'The id_token is not signed with HS512'];
  }
  if (err instanceof joseErrors.JWSSignatureVerificationFailed) {
    return [
      'id_token_signature',
      'The id_token signature does not verify; check DUO_CLIENT_SECRET',
    ];
  }
  if (err instanceof joseErrors.JWTExpired) {
    return ['id_token_expired', "The id_token has expired; check this server's clock (NTP)"];
  }
  if (err instanceof joseErrors.JWTClaimValidationFailed) {
    if (err.reason === 'check_failed') {
      switch (err.claim) {
        case 'iss':
          return [
            'id_token_iss',
            'The id_token issuer is not https://<DUO_API_HOST>/oauth/v1/token; check DUO_API_HOST',
          ];
        case 'aud':
          return [
            'id_token_aud',
            'The id_token audience is not this Client ID; check DUO_CLIENT_ID',
          ];
        case 'nbf':
          return ['id_token_nbf', "The id_token is not valid yet; check this server's clock (NTP)"];
        default:
          break;
      }
    }
    return ['id_token_claims', `The id_token claim "${err.claim}" is missing or invalid`];
  }
  return ['id_token_malformed', 'The id_token is not a well-formed HS512 JWT'];
}

/**
 * A compact JWS of bounded size whose header and payload are strict UTF-8 JSON objects (no BOM, no
 * invalid bytes, which a lenient decoder would silently repair). Anything else is malformed.
 */
function assertCompactJws(token: unknown): Record<string, unknown> {
  const malformed = () =>
    new DuoError('id_token_malformed', 'The id_token is not a well-formed HS512 JWT');
  if (typeof token !== 'string' || token.length > DUO_ID_TOKEN_MAX_LENGTH) {
    throw malformed();
  }
  const parts = token.split('.');
  if (parts.length !== 3 || !/^[A-Za-z0-9_-]*$/.test(parts[2])) {
    throw malformed();
  }
  const [header] = parts.slice(0, 2).map((part) => {
    let value: unknown;
    try {
      if (!B64URL_RE.test(part)) {
        throw new Error('not base64url');
      }
      value = JSON.parse(STRICT_UTF8.decode(Buffer.from(part, 'base64url')));
    } catch {
      throw malformed();
    }
    if (!isRecord(value)) {
      throw malformed();
    }
    return value;
  });
  return header;
}
