/** Types of Duo's answers: the MFA result follows shared/duo/mfa-output.schema.json. */

/** The token endpoint's JSON body. */
export interface DuoTokenResponse {
  id_token: string;
  access_token: string;
  expires_in: number;
  token_type: string;
  [extra: string]: unknown;
}

export interface DuoLocation {
  city?: string | null;
  state?: string | null;
  country?: string | null;
}

export interface DuoAuthContext {
  txid: string;
  timestamp: number;
  user: { name: string; key?: string; groups?: string[] };
  application: { name?: string; key?: string };
  auth_device?: {
    ip?: string | null;
    location?: DuoLocation;
    name?: string | null;
    [k: string]: unknown;
  } | null;
  access_device?: {
    ip?: string | null;
    location?: DuoLocation;
    hostname?: string | null;
    epkey?: string | null;
    [k: string]: unknown;
  } | null;
  factor: string;
  event_type: string;
  result: string;
  reason: string;
  alias?: string | null;
  isotimestamp?: string;
  email?: string | null;
  ood_software?: string | null;
  [extra: string]: unknown;
}

export interface DuoAuthResult {
  result: string;
  status: string;
  status_msg?: string;
}

/** The verified claims of Duo's id_token. */
export interface DuoIdTokenClaims {
  iss: string;
  sub: string;
  aud: string;
  exp: number;
  iat: number;
  auth_time?: number;
  auth_result: DuoAuthResult;
  auth_context: DuoAuthContext;
  preferred_username: string;
  nonce?: string;
  [extra: string]: unknown;
}

/** One completed Duo MFA transaction: what the DaVinci connector outputs. */
export interface DuoMfaResult {
  rawResponse: DuoTokenResponse;
  statusCode: number;
  headers: Record<string, string>;
  tokens: DuoTokenResponse & DuoIdTokenClaims;
}

export interface DuoHealthCheckResult {
  /** Duo's clock, in Unix seconds. */
  timestamp: number;
}

export interface DuoAuthUrlOptions {
  /** The nonce Duo must echo in the id_token; always send one (generateNonce()). */
  nonce: string;
}

export interface DuoExchangeOptions {
  /** The username that started the transaction, from server-side state only. */
  username: string;
  /** The nonce sent with the authorize request. */
  nonce: string;
}
