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
  DUO_STATE_MAX_LENGTH,
  DUO_STATE_MIN_LENGTH,
  DUO_TOKEN_PATH,
  DUO_USERNAME_MAX_LENGTH,
} from './duo.constants.js';
import { DuoError, type DuoErrorCode } from './duo.errors.js';
import { clientAssertionClaims, randomToken, requestJwtClaims, signHs512 } from './duo-jwt.js';
import {
  postForm,
  throwOnTransportStatus,
  type DuoCallTiming,
  type DuoHttpResponse,
} from './duo-http-call.js';
import { verifyDuoIdToken } from './duo-id-token.js';
import { isRecord, parseJson, redact, safeText, textField } from './duo-remote-text.js';
import type {
  DuoAuthUrlOptions,
  DuoExchangeOptions,
  DuoHealthCheckResult,
  DuoIdTokenClaims,
  DuoMfaResult,
  DuoTokenResponse,
} from './duo.types.js';

const CONTROL_CHARS = /\p{Cc}/u;
const CODE_RE = /^[\x21-\x7e]{1,1024}$/;
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
    throwOnTransportStatus(res);
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
    throwOnTransportStatus(res);
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
    const key = {
      secret: this.secret,
      issuer: this.issuer,
      clientId: this.options.clientId,
      clockToleranceMs: this.options.clockToleranceMs,
    };
    return verifyDuoIdToken(idToken, expected, key, this.now());
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

  private post(
    url: string,
    form: Record<string, string>,
    badResponse: DuoErrorCode,
    timing: DuoCallTiming = {},
  ): Promise<DuoHttpResponse> {
    return postForm(this.options, url, form, badResponse, timing);
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
