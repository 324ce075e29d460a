import { randomBytes, webcrypto } from 'node:crypto';
import { CompactSign } from 'jose';
import { DUO_JWT_LIFETIME_SEC, DUO_RANDOM_BYTES, DUO_SIG_ALG } from './duo.constants.js';

type CryptoKey = webcrypto.CryptoKey;

const encoder = new TextEncoder();
const HEADER = { alg: DUO_SIG_ALG, typ: 'JWT' } as const;

export type { CryptoKey };

/** The HMAC key: the UTF-8 bytes of the client secret, imported once per client. */
export function importDuoKey(clientSecret: string): Promise<CryptoKey> {
  return webcrypto.subtle.importKey(
    'raw',
    encoder.encode(clientSecret),
    { name: 'HMAC', hash: 'SHA-512' },
    false,
    ['sign', 'verify'],
  );
}

/** 256 random bits from the CSPRNG as 43 base64url characters (never standard base64: Duo #28). */
export function randomToken(): string {
  return randomBytes(DUO_RANDOM_BYTES).toString('base64url');
}

/** Signs claims as a compact HS512 JWS with the header Duo's SDKs send; claim order is kept. */
export function signHs512(
  claims: Record<string, unknown>,
  key: CryptoKey | Uint8Array,
): Promise<string> {
  return new CompactSign(encoder.encode(JSON.stringify(claims)))
    .setProtectedHeader(HEADER)
    .sign(key);
}

/** Claims of a client assertion (OIDC client_secret_jwt): `aud` is the exact endpoint URL. */
export function clientAssertionClaims(
  clientId: string,
  audience: string,
  nowSec: number,
  jti: string,
) {
  return { iss: clientId, sub: clientId, aud: audience, exp: nowSec + DUO_JWT_LIFETIME_SEC, jti };
}

/** Claims of the authorize request JWT, in the order of the Python SDK (vector V1). */
export function requestJwtClaims(input: {
  clientId: string;
  apiOrigin: string;
  redirectUri: string;
  state: string;
  username: string;
  nowSec: number;
  nonce?: string;
}) {
  return {
    scope: 'openid',
    redirect_uri: input.redirectUri,
    client_id: input.clientId,
    iss: input.clientId,
    aud: input.apiOrigin,
    exp: input.nowSec + DUO_JWT_LIFETIME_SEC,
    state: input.state,
    response_type: 'code',
    duo_uname: input.username,
    use_duo_code_attribute: true,
    ...(input.nonce === undefined ? {} : { nonce: input.nonce }),
  };
}
