import { createHmac, timingSafeEqual } from 'node:crypto';
import { errors as joseErrors, UnsecuredJWT, type JWTPayload } from 'jose';
import {
  normalizeDuoClientOptions,
  type DuoCallEndpoint,
  type DuoCallObserver,
  type DuoClientOptions,
  type NormalizedDuoClientOptions,
} from './duo-client-options.js';
import {
  DUO_AUTHORIZE_PATH,
  DUO_CLIENT_ASSERTION_TYPE,
  DUO_GRANT_TYPE,
  DUO_HEALTH_CHECK_PATH,
  DUO_MESSAGES,
  DUO_NONCE_MAX_LENGTH,
  DUO_NONCE_MIN_LENGTH,
  DUO_SIG_ALG,
  DUO_STATE_MAX_LENGTH,
  DUO_STATE_MIN_LENGTH,
  DUO_TOKEN_PATH,
  DUO_USERNAME_MAX_LENGTH,
} from './duo.constants.js';
import { DuoError, type DuoErrorCode } from './duo.errors.js';
import { clientAssertionClaims, randomToken, requestJwtClaims, signHs512 } from './duo-jwt.js';
import {
  describeTransportFailure,
  isCertificateFailure,
  redactUrlCredentials,
} from './duo-transport.js';
import type {
  DuoAuthUrlOptions,
  DuoExchangeOptions,
  DuoHealthCheckResult,
  DuoIdTokenClaims,
  DuoMfaResult,
  DuoTokenResponse,
} from './duo.types.js';

const USER_AGENT = `duo-nest/0.1.0 node/${process.versions.node}`;
const CONTROL_CHARS = /\p{Cc}/u;
const CODE_RE = /^[\x21-\x7e]{1,1024}$/;
/** Duo's id_tokens are about 1.5 KB; anything far larger is refused before it is parsed. */
export const DUO_ID_TOKEN_MAX_LENGTH = 16 * 1024;
/** Duo sets exp = auth_time + 3600 and iat (the exchange) after auth_time, so exp - iat <= 3600. */
export const DUO_ID_TOKEN_MAX_LIFETIME_SEC = 3600;
const ID_TOKEN_HEADER_KEYS = new Set(['alg', 'typ']);
const B64URL_RE = /^[A-Za-z0-9_-]+$/;
const STRICT_UTF8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
/** `{"alg":"none"}`: the header under which jose checks the claims of an already verified payload. */
const UNSECURED_HEADER = Buffer.from('{"alg":"none"}').toString('base64url');

/** Filled by `post` for the `onDuoCall` observer: the HTTP round trip alone. */
interface DuoCallTiming {
  httpMs?: number;
}

interface DuoHttpResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
}

/** Internal test hook: the clock, in ms since the epoch. */
export interface DuoClientInternals {
  now?: () => number;
}

/**
 * A client of Duo's Universal Prompt (OIDC Auth API): no Nest, no state of its own beyond the key.
 * Every call has a total timeout, a response size cap and no redirect following; the token call is
 * never retried (codes are single-use).
 */
export class DuoClient {
  readonly options: Readonly<Omit<NormalizedDuoClientOptions, 'clientSecret'>>;
  readonly issuer: string;
  private readonly secret: string;
  private readonly now: () => number;
  private readonly healthUrl: string;
  private readonly tokenUrl: string;
  private readonly authorizeUrl: string;
  private readonly onDuoCall?: DuoCallObserver;

  constructor(options: DuoClientOptions, internals: DuoClientInternals = {}) {
    const { clientSecret, ...rest } = normalizeDuoClientOptions(options);
    this.options = Object.freeze(rest);
    this.secret = clientSecret;
    this.now = internals.now ?? Date.now;
    this.healthUrl = rest.apiOrigin + DUO_HEALTH_CHECK_PATH;
    this.tokenUrl = rest.apiOrigin + DUO_TOKEN_PATH;
    this.authorizeUrl = rest.apiOrigin + DUO_AUTHORIZE_PATH;
    this.issuer = this.tokenUrl;
    this.onDuoCall = options.onDuoCall;
  }

  /** Closes the connections of the proxy or CA agent, if any (call it at shutdown). */
  close(): Promise<void> {
    return this.options.transport.close();
  }

  /** A fresh state: 256 bits from the CSPRNG, 43 base64url characters. */
  generateState(): string {
    return randomToken();
  }

  /** A fresh nonce: 256 bits from the CSPRNG, 43 base64url characters. */
  generateNonce(): string {
    return randomToken();
  }

  /** Asks Duo whether it can serve this application. Throws a DuoError when it cannot. */
  healthCheck(): Promise<DuoHealthCheckResult> {
    return this.observed('health_check', (timing) => this.checkHealth(timing));
  }

  private async checkHealth(timing: DuoCallTiming): Promise<DuoHealthCheckResult> {
    const assertion = this.clientAssertion(this.healthUrl);
    const res = await this.post(
      this.healthUrl,
      { client_id: this.options.clientId, client_assertion: assertion },
      'health_response',
      timing,
    );
    this.throwOnTransportStatus(res);
    const body = parseJson(res.body);
    if (res.status === 200 && isRecord(body) && body.stat === 'OK' && isRecord(body.response)) {
      const timestamp = body.response.timestamp;
      if (typeof timestamp === 'number' && Number.isFinite(timestamp)) {
        return { timestamp };
      }
    }
    if (isRecord(body) && body.stat === 'FAIL') {
      throw this.rejection(body, res.status, 'health check');
    }
    if (res.status >= 400 && isRecord(body) && typeof body.error === 'string') {
      throw this.rejection(body, res.status, 'health check');
    }
    throw new DuoError(
      'health_response',
      `Duo's health check answered ${res.status} without its OK envelope`,
    );
  }

  /** The URL of Duo's prompt for this user, carrying the signed request JWT. */
  // Async on purpose: the public API returns a Promise (as the official SDK 3.x does), and argument
  // errors become rejections.
  // eslint-disable-next-line @typescript-eslint/require-await
  async createAuthUrl(
    username: string,
    state: string,
    options: Partial<DuoAuthUrlOptions> = {},
  ): Promise<string> {
    assertUsername(username);
    assertState(state);
    if (options.nonce !== undefined) {
      assertNonce(options.nonce);
    }
    const claims = requestJwtClaims({
      clientId: this.options.clientId,
      apiOrigin: this.options.apiOrigin,
      redirectUri: this.options.redirectUri,
      state,
      username,
      nowSec: this.nowSec(),
      nonce: options.nonce,
    });
    const request = signHs512(claims, this.secret);
    const query = new URLSearchParams({
      response_type: 'code',
      client_id: this.options.clientId,
      request,
    });
    return `${this.authorizeUrl}?${query.toString()}`;
  }

  /**
   * Exchanges the authorization code from Duo's redirect for the MFA result, verifying the id_token.
   * `username` and `nonce` must come from server-side state, never from the callback.
   */
  exchangeAuthorizationCode(code: string, options: DuoExchangeOptions): Promise<DuoMfaResult> {
    return this.observed('token', (timing) => this.exchange(code, options, timing));
  }

  private async exchange(
    code: string,
    options: DuoExchangeOptions,
    timing: DuoCallTiming,
  ): Promise<DuoMfaResult> {
    if (typeof code !== 'string' || !CODE_RE.test(code)) {
      throw new DuoError('invalid_argument', DUO_MESSAGES.code);
    }
    assertUsername(options.username);
    if (options.nonce !== undefined) {
      assertNonce(options.nonce);
    }
    const assertion = this.clientAssertion(this.tokenUrl);
    const res = await this.post(
      this.tokenUrl,
      {
        grant_type: DUO_GRANT_TYPE,
        code,
        redirect_uri: this.options.redirectUri,
        client_id: this.options.clientId,
        client_assertion_type: DUO_CLIENT_ASSERTION_TYPE,
        client_assertion: assertion,
      },
      'token_response',
      timing,
    );
    this.throwOnTransportStatus(res);
    const body = parseJson(res.body);
    if (res.status !== 200) {
      if (isRecord(body) && (typeof body.error === 'string' || body.stat === 'FAIL')) {
        throw this.rejection(body, res.status, 'token exchange', [code, assertion]);
      }
      throw new DuoError(
        'token_response',
        `Duo's token endpoint answered ${res.status} without an error body`,
      );
    }
    if (!/^application\/json\s*(;|$)/i.test(res.headers['content-type'] ?? '')) {
      throw new DuoError('token_response', "Duo's token answer is not application/json");
    }
    const rawResponse = parseTokenResponse(body);
    const claims = await this.verifyIdToken(rawResponse.id_token, options);
    return {
      rawResponse,
      statusCode: res.status,
      headers: res.headers,
      tokens: { ...rawResponse, ...claims },
    };
  }

  /**
   * Verifies an id_token: HS512 only with the client secret, exact iss and aud, exp and iat required
   * (clock tolerance applied), iat not in the future, nonce and preferred_username exact, and an
   * allowed auth_result. Any failure is a DuoError with an id_token_* code.
   */
  // eslint-disable-next-line @typescript-eslint/require-await -- a Promise API; throws become rejections
  async verifyIdToken(idToken: string, expected: DuoExchangeOptions): Promise<DuoIdTokenClaims> {
    const toleranceSec = this.options.clockToleranceMs / 1000;
    const nowMs = this.now();
    const protectedHeader = this.verifySignature(idToken);
    let payload: JWTPayload;
    try {
      // The signature is verified: jose now checks the claims exactly as jwtVerify would
      // (validateClaimsSet), given the verified payload under a neutral header.
      ({ payload } = UnsecuredJWT.decode(`${UNSECURED_HEADER}.${idToken.split('.')[1]}.`, {
        issuer: this.issuer,
        audience: this.options.clientId,
        clockTolerance: toleranceSec,
        requiredClaims: ['iss', 'aud', 'sub', 'exp', 'iat'],
        currentDate: new Date(nowMs),
      }));
    } catch (err) {
      throw this.idTokenError(err);
    }
    // Only the members Duo sends: a jku/x5u/jwk/x5c/kid header is never used, and refused.
    if (
      Object.keys(protectedHeader).some((k) => !ID_TOKEN_HEADER_KEYS.has(k)) ||
      (protectedHeader.typ !== undefined && protectedHeader.typ !== 'JWT')
    ) {
      throw new DuoError('id_token_malformed', 'The id_token header carries unexpected members');
    }
    const aud =
      Array.isArray(payload.aud) && payload.aud.length === 1 ? payload.aud[0] : payload.aud;
    if (aud !== this.options.clientId) {
      throw new DuoError(
        'id_token_aud',
        'The id_token audience must be exactly the Client ID (no other audience)',
      );
    }
    if (payload.azp !== undefined && payload.azp !== this.options.clientId) {
      throw new DuoError(
        'id_token_aud',
        'The id_token azp (authorized party) is not this Client ID',
      );
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
  private verifySignature(idToken: string): Record<string, unknown> {
    const header = assertCompactJws(idToken);
    if (header.alg !== DUO_SIG_ALG) {
      throw new DuoError(
        typeof header.alg === 'string' ? 'id_token_alg' : 'id_token_malformed',
        'The id_token is not signed with HS512',
      );
    }
    const dot = idToken.lastIndexOf('.');
    const given = Buffer.from(idToken.slice(dot + 1), 'base64url');
    const expected = createHmac('sha512', this.secret).update(idToken.slice(0, dot)).digest();
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
      throw new DuoError(
        'id_token_signature',
        'The id_token signature does not verify; check DUO_CLIENT_SECRET',
      );
    }
    return header;
  }

  /** Runs one Duo call and reports it to `onDuoCall` (never lets the observer break the call). */
  private async observed<T>(
    endpoint: DuoCallEndpoint,
    call: (timing: DuoCallTiming) => Promise<T>,
  ): Promise<T> {
    const observer = this.onDuoCall;
    const timing: DuoCallTiming = {};
    if (!observer) {
      return call(timing);
    }
    const started = performance.now();
    const report = (result: 'success' | DuoErrorCode) => {
      try {
        observer(endpoint, result, timing.httpMs ?? performance.now() - started);
      } catch {
        // An observer's failure must never change the outcome of a sign-on.
      }
    };
    try {
      const value = await call(timing);
      report('success');
      return value;
    } catch (err) {
      report(err instanceof DuoError ? err.code : 'unavailable');
      throw err;
    }
  }

  private nowSec(): number {
    return Math.floor(this.now() / 1000);
  }

  private clientAssertion(audience: string): string {
    return signHs512(
      clientAssertionClaims(this.options.clientId, audience, this.nowSec(), randomToken()),
      this.secret,
    );
  }

  private async post(
    url: string,
    form: Record<string, string>,
    badResponse: DuoErrorCode,
    timing: DuoCallTiming = {},
  ): Promise<DuoHttpResponse> {
    const { timeoutMs, maxResponseBytes } = this.options;
    const signal = AbortSignal.timeout(timeoutMs);
    const started = performance.now();
    try {
      // Through the configured transport: the proxy (CONNECT tunnel) and extra CA, if any.
      const response = await this.options.transport.fetch(url, {
        method: 'POST',
        body: new URLSearchParams(form),
        headers: {
          accept: 'application/json',
          'content-type': 'application/x-www-form-urlencoded',
          'user-agent': USER_AGENT,
        },
        redirect: 'manual',
        signal,
      });
      const headers: Record<string, string> = {};
      response.headers.forEach((value, name) => {
        if (name !== 'set-cookie') {
          headers[name] = value;
        }
      });
      const body = await readCapped(response, maxResponseBytes, badResponse);
      return { status: response.status, headers, body };
    } catch (err) {
      if (err instanceof DuoError) {
        throw err;
      }
      const proxy = this.options.transport.proxy;
      const why = signal.aborted ? undefined : describeTransportFailure(err);
      const what = signal.aborted
        ? `did not answer within ${timeoutMs} ms`
        : `could not be reached${why ? `: ${why}` : ''}`;
      // The proxy's origin only: its credentials are never in the options or the transport's text.
      const via = proxy ? ` through the proxy ${redactUrlCredentials(proxy)}` : '';
      // A certificate that does not verify is never an outage: failmode open must not let it in.
      const code =
        !signal.aborted && isCertificateFailure(err) ? 'untrusted_certificate' : 'unavailable';
      throw new DuoError(
        code,
        `Duo ${what} (${new URL(url).pathname}${via}); check DUO_API_HOST${proxy ? ', the proxy' : ''} and the network`,
        {
          cause: err,
        },
      );
    } finally {
      timing.httpMs = performance.now() - started;
    }
  }

  private throwOnTransportStatus(res: DuoHttpResponse): void {
    if (res.status === 429) {
      throw new DuoError(
        'rate_limited',
        'Duo is rate-limiting this application (429); try again later',
      );
    }
    if (res.status >= 500) {
      throw new DuoError(
        'unavailable',
        `Duo answered ${res.status}; it is having trouble, try again later`,
      );
    }
    if (res.status >= 300 && res.status < 400) {
      throw new DuoError(
        'unavailable',
        `Duo answered with a redirect (${res.status}), which is never followed`,
      );
    }
  }

  private rejection(
    body: Record<string, unknown>,
    status: number,
    call: string,
    sensitive: string[] = [],
  ): DuoError {
    const error = textField(body.error) ?? textField(body.message) ?? 'error';
    const description = textField(body.error_description) ?? textField(body.message_detail) ?? '';
    const text = redact(`${safeText(error)}: ${safeText(description)}`, [
      this.secret,
      ...sensitive,
    ]);
    const code: DuoErrorCode =
      error === 'invalid_client' || body.code === 40002
        ? 'invalid_client'
        : error === 'invalid_grant'
          ? 'invalid_grant'
          : 'duo_rejected';
    const hint =
      code === 'invalid_client'
        ? 'check DUO_CLIENT_ID, DUO_CLIENT_SECRET and DUO_API_HOST'
        : code === 'invalid_grant'
          ? 'the code was used, expired, or the redirect URI differs; start the sign-on again'
          : "see Duo's message";
    return new DuoError(code, `Duo refused the ${call} (${status} ${text}); ${hint}`);
  }

  private idTokenError(err: unknown): DuoError {
    const [code, message] = classifyJoseError(err);
    return new DuoError(code, message, { cause: err });
  }
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

function parseTokenResponse(body: unknown): DuoTokenResponse {
  if (!isRecord(body)) {
    throw new DuoError('token_response', "Duo's token answer is not a JSON object");
  }
  const missing: string[] = [];
  if (typeof body.id_token !== 'string' || body.id_token.length === 0) {
    missing.push('id_token');
  }
  if (typeof body.access_token !== 'string' || body.access_token.length === 0) {
    missing.push('access_token');
  }
  if (
    typeof body.expires_in !== 'number' ||
    !Number.isInteger(body.expires_in) ||
    body.expires_in <= 0
  ) {
    missing.push('expires_in (a positive integer)');
  }
  if (body.token_type !== 'Bearer') {
    missing.push('token_type "Bearer"');
  }
  if (missing.length > 0) {
    throw new DuoError('token_response', `Duo's token answer lacks ${missing.join(', ')}`);
  }
  return body as DuoTokenResponse;
}

async function readCapped(
  response: Response,
  maxBytes: number,
  code: DuoErrorCode,
): Promise<string> {
  const declared = Number(response.headers.get('content-length') ?? '0');
  if (declared > maxBytes) {
    await response.body?.cancel();
    throw new DuoError(code, `Duo's answer is larger than ${maxBytes} bytes`);
  }
  if (!response.body) {
    return '';
  }
  const reader = (response.body as ReadableStream<Uint8Array>).getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) {
      break;
    }
    total += value.byteLength;
    if (total > maxBytes) {
      await reader.cancel();
      throw new DuoError(code, `Duo's answer is larger than ${maxBytes} bytes`);
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks, total).toString('utf8');
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

function textField(value: unknown): string | undefined {
  return typeof value === 'string' || typeof value === 'number' ? String(value) : undefined;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Printable, bounded text from a remote answer (no CR/LF injection into logs). */
function safeText(value: unknown): string {
  return String(value)
    .replace(/[^\x20-\x7e]/g, '?')
    .slice(0, 200);
}

function redact(text: string, values: string[]): string {
  return values.reduce((acc, v) => (v ? acc.split(v).join('[redacted]') : acc), text);
}

function assertUsername(username: unknown): asserts username is string {
  if (
    typeof username !== 'string' ||
    username.length === 0 ||
    username.length > DUO_USERNAME_MAX_LENGTH ||
    CONTROL_CHARS.test(username)
  ) {
    throw new DuoError('invalid_argument', `The username ${DUO_MESSAGES.username}`);
  }
}

function assertState(state: unknown): asserts state is string {
  if (
    typeof state !== 'string' ||
    state.length < DUO_STATE_MIN_LENGTH ||
    state.length > DUO_STATE_MAX_LENGTH
  ) {
    throw new DuoError('invalid_argument', `The state ${DUO_MESSAGES.state}`);
  }
}

function assertNonce(nonce: unknown): asserts nonce is string {
  if (
    typeof nonce !== 'string' ||
    nonce.length < DUO_NONCE_MIN_LENGTH ||
    nonce.length > DUO_NONCE_MAX_LENGTH
  ) {
    throw new DuoError('invalid_argument', `The nonce ${DUO_MESSAGES.nonce}`);
  }
}
