/** Protocol constants of Duo's Universal Prompt (OIDC Auth API); see docs/duo-universal-protocol.md. */
export const DUO_CLIENT_ID_LENGTH = 20;
export const DUO_CLIENT_SECRET_LENGTH = 40;
export const DUO_SIG_ALG = 'HS512';
/** Lifetime of the JWTs we sign (request JWT, client assertions), as in every official SDK but Java. */
export const DUO_JWT_LIFETIME_SEC = 300;
/** Duo accepts 16..1024; the official SDKs enforce 22..1024, and so do we (the stricter bound). */
export const DUO_STATE_MIN_LENGTH = 22;
export const DUO_STATE_MAX_LENGTH = 1024;
export const DUO_NONCE_MIN_LENGTH = 16;
export const DUO_NONCE_MAX_LENGTH = 1024;
/** Random bytes behind a generated state, nonce or jti: 256 bits, 43 base64url characters. */
export const DUO_RANDOM_BYTES = 32;
export const DUO_USERNAME_MAX_LENGTH = 255;
export const DUO_REDIRECT_URI_MAX_LENGTH = 256;
export const DUO_GRANT_TYPE = 'authorization_code';
export const DUO_CLIENT_ASSERTION_TYPE = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';
export const DUO_HEALTH_CHECK_PATH = '/oauth/v1/health_check';
export const DUO_AUTHORIZE_PATH = '/oauth/v1/authorize';
export const DUO_TOKEN_PATH = '/oauth/v1/token';

export const DUO_DEFAULTS = {
  timeoutMs: 5_000,
  clockToleranceMs: 60_000,
  maxResponseBytes: 64 * 1024,
} as const;

export const DUO_BOUNDS = {
  timeoutMs: { min: 100, max: 60_000 },
  clockToleranceMs: { min: 0, max: 300_000 },
  maxResponseBytes: { min: 4 * 1024, max: 1024 * 1024 },
} as const;

/** Messages that say what to fix. They never carry a secret, code or token. */
export const DUO_MESSAGES = {
  clientId: `must be the ${DUO_CLIENT_ID_LENGTH}-character Client ID of the Duo application (letters A-Z and digits, such as DIXXXXXXXXXXXXXXXXXX)`,
  clientSecret: `must be the ${DUO_CLIENT_SECRET_LENGTH}-character Client secret of the Duo application (letters and digits)`,
  apiHost:
    'must be the API hostname of the Duo application, such as api-xxxxxxxx.duosecurity.com (no scheme, no path)',
  apiHostInsecure:
    'is a plain http:// URL; that is only allowed for a local simulator with allowInsecureHttp: true (never in production)',
  redirectUri: `must be an absolute https:// URL of at most ${DUO_REDIRECT_URI_MAX_LENGTH} characters without a fragment (http:// only for localhost or with allowInsecureHttp)`,
  range: (min: number, max: number) => `must be an integer from ${min} to ${max}`,
  state: `must be a string of ${DUO_STATE_MIN_LENGTH} to ${DUO_STATE_MAX_LENGTH} characters (use generateState())`,
  nonce: `must be a string of ${DUO_NONCE_MIN_LENGTH} to ${DUO_NONCE_MAX_LENGTH} characters (use generateNonce())`,
  username: `must be a non-empty string of at most ${DUO_USERNAME_MAX_LENGTH} characters without control characters`,
  code: 'The authorization code is missing or malformed; start the sign-on again',
} as const;
