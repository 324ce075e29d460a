import { createHmac, randomBytes } from 'node:crypto';
import { DUO_JWT_LIFETIME_SEC, DUO_RANDOM_BYTES, DUO_SIG_ALG } from './duo.constants.js';

const HEADER = { alg: DUO_SIG_ALG, typ: 'JWT' } as const;
const HEADER_B64 = Buffer.from(JSON.stringify(HEADER)).toString('base64url');

/** 256 random bits from the CSPRNG as 43 base64url characters (never standard base64: Duo #28). */
export function randomToken(): string {
  return randomBytes(DUO_RANDOM_BYTES).toString('base64url');
}

/**
 * Signs claims as a compact HS512 JWS with the header Duo's SDKs send; claim order is kept. The key
 * is the UTF-8 bytes of the client secret. HMAC runs synchronously in node:crypto (WebCrypto would
 * add a key import and a thread-pool hop per token).
 */
export function signHs512(claims: Record<string, unknown>, key: string | Uint8Array): string {
  const input = `${HEADER_B64}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}`;
  return `${input}.${createHmac('sha512', key).update(input).digest('base64url')}`;
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
