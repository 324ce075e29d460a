import {
  createHash,
  createHmac,
  createSecretKey,
  hkdfSync,
  randomBytes,
  timingSafeEqual,
  type KeyObject,
} from 'node:crypto';
import { Injectable, Logger } from '@nestjs/common';
import type { Request, Response } from 'express';
import {
  DuoApplications,
  DUO_DEFAULT_APPLICATION,
  mergedApplications,
  stepUpOf,
  type DuoApplication,
} from './duo-applications.js';
import { DuoCircuitBreaker } from './duo-circuit-breaker.js';
import { DuoClient } from './duo.client.js';
import { DuoError } from './duo.errors.js';
import type { DuoAuthEvent } from './duo-events.js';
import { DuoHealthService } from './duo-health.service.js';
import {
  defaultUsernameResolver,
  sanitizeReturnTo,
  type NormalizedDuoModuleOptions,
} from './duo-module-options.js';
import { pageLanguage } from './duo-i18n.js';
import { buttonPage, PAGE_CSP } from './duo-pages.js';
import { requestContext } from './duo-request-context.js';
import { DuoSessionService } from './duo-session.service.js';
import { sessionOrigin, textField } from './duo-session-facts.js';
import { DuoSignOnProtection } from './duo-sign-on-protection.service.js';
import { storeCall } from './duo-store-call.js';
import { checkUsername, type UsernameRefusal } from './duo-text-policy.js';
import type { DuoMfaResult } from './duo.types.js';
import { InjectDuoOptions, InjectPendingLoginStore } from './duo.tokens.js';
import type { PendingLogin, PendingLoginStore } from './stores/pending-login-store.interface.js';
import { DuoStoreError, PendingLoginStoreFullError } from './stores/store.errors.js';

export { clientIpOf, requestContext } from './duo-request-context.js';

export type DuoStartOutcome =
  | { kind: 'redirect'; authorizeUrl: string; login: PendingLogin; binding: string }
  | { kind: 'failopen'; username: string; returnTo: string; error: DuoError };

export interface DuoCallbackOutcome {
  result: DuoMfaResult;
  login: PendingLogin;
  /** The application whose credentials exchanged the code. @default `default` */
  application?: { name: string; clientId: string };
}

/** HKDF info of the rejected-input hash key (a key of its own, never the cookie or MAC key). */
const INPUT_HASH_INFO = 'duo-nest/input-hash/v1';
const STATE_RE = /^[A-Za-z0-9_-]{22,1024}$/;
const CODE_RE = /^[\x21-\x7e]{1,1024}$/;
const CALLBACK_KEYS = new Set(['duo_code', 'code', 'state', 'error', 'error_description']);

/**
 * The Duo sign-on flow behind the Passport strategy: start (pending login, health check, fail mode,
 * authorize URL) and callback (strict parameters, take-once state, browser binding, code exchange,
 * id_token checks), then the session. Every outcome is reported through `onEvent`.
 */
@Injectable()
export class DuoFlowService {
  private readonly logger = new Logger('Duo');
  /** Key of the rejected-input hash, derived from the session secret for that purpose alone. */
  readonly #inputHashKey: KeyObject;

  constructor(
    private readonly client: DuoClient,
    private readonly breaker: DuoCircuitBreaker,
    private readonly health: DuoHealthService,
    private readonly sessions: DuoSessionService,
    @InjectPendingLoginStore() private readonly pending: PendingLoginStore,
    @InjectDuoOptions() private readonly options: NormalizedDuoModuleOptions,
    private readonly protection: DuoSignOnProtection,
    private readonly applications: DuoApplications,
  ) {
    this.#inputHashKey = createSecretKey(
      Buffer.from(hkdfSync('sha256', options.sessionSecret, Buffer.alloc(0), INPUT_HASH_INFO, 32)),
    );
  }

  /**
   * A keyed hash of a rejected input (HMAC-SHA-256, 128 bits shown): the same value gives the same
   * hash, so repeats can be told apart, but without the key the value cannot be guessed from it.
   */
  inputHash(value: string): string {
    return createHmac('sha256', this.#inputHashKey)
      .update(value, 'utf8')
      .digest()
      .subarray(0, 16)
      .toString('base64url');
  }

  /** Starts a sign-on; `usernameResolver` names the first factor's user (default: the options'). */
  async start(
    req: Request,
    usernameResolver: (req: Request) => unknown = this.options.usernameResolver,
  ): Promise<DuoStartOutcome> {
    const ctx = requestContext(req);
    const params = checkLoginParams(req, usernameResolver);
    if (!params.ok) {
      // The rejected value is never stored: only its length and a keyed hash (to tell repeats apart).
      await this.emit({
        type: 'input_validation_failed',
        outcome: 'failure',
        reason: params.field === 'username' ? 'invalid_username' : 'invalid_request',
        detail: {
          field: params.field,
          why: params.why,
          ...(params.field === 'username' && params.value !== undefined
            ? { length: params.value.length, hmac: this.inputHash(params.value) }
            : {}),
        },
        ...ctx,
      });
      throw new DuoError(
        'invalid_request',
        params.field === 'username'
          ? 'Enter a username of 1 to 255 characters, without control, invisible or direction-changing characters'
          : 'The sign-on request is malformed',
      );
    }
    const { username } = params;
    // The push-bombing cap: on the valid, resolved username, before any store or Duo call.
    await this.protection.checkUser(req, username);
    // A front end's JSON start lands on its own route unless it named one.
    const returnTo =
      params.returnTo ??
      (this.options.frontEnd && this.wantsJson(req)
        ? this.options.frontEnd.successUrl
        : this.options.defaultReturnTo);
    if (params.returnToRejected) {
      // Not an error for the user (they land on the default page), but worth a trace: RDR-02.
      this.logger.warn('input_validation_failed field=returnTo reason=offsite_return_to');
      await this.emit({
        type: 'input_validation_failed',
        outcome: 'failure',
        username,
        reason: 'offsite_return_to',
        ...ctx,
      });
    }

    const app = await this.startApplication(req, username);
    const stepUp = stepUpOf(req) !== undefined;
    const health = await app.health.check();
    if (!health.ok) {
      // A step-up never fails open: it would replace an MFA session with one without MFA.
      if (this.options.failmode === 'open' && health.error.code === 'unavailable' && !stepUp) {
        this.logger.warn(
          `Duo is unreachable and failmode is open: ${username.length}-character username let in WITHOUT MFA`,
        );
        await this.emit(
          {
            type: 'mfa_failopen',
            outcome: 'info',
            username,
            reason: health.error.code,
            returnTo,
            ...ctx,
          },
          true,
        );
        return { kind: 'failopen', username, returnTo, error: health.error };
      }
      await this.emit({
        type: 'mfa_unavailable',
        outcome: 'failure',
        username,
        reason: health.error.code,
        ...ctx,
      });
      throw new DuoError('unavailable', 'Two-factor service unavailable', { cause: health.error });
    }

    const now = Date.now();
    const binding = randomBytes(32).toString('base64url');
    const login: PendingLogin = {
      state: app.client.generateState(),
      nonce: app.client.generateNonce(),
      username,
      returnTo,
      bindingHash: sha256(binding),
      createdAt: now,
      expiresAt: now + this.options.pendingTtlMs,
      ...(ctx.clientIp ? { clientIp: ctx.clientIp } : {}),
      ...(ctx.userAgent ? { userAgent: ctx.userAgent } : {}),
      ...(app.name !== DUO_DEFAULT_APPLICATION ? { application: app.name } : {}),
    };
    try {
      await storeCall('pending-login', () => this.pending.put(login, now));
    } catch (err) {
      if (err instanceof PendingLoginStoreFullError) {
        throw new DuoError('busy', 'Too many sign-ons are in progress; try again in a minute', {
          cause: err,
        });
      }
      if (isStoreValidationError(err)) {
        // The request made a record the store refuses: the client's fault, so a 400 and one event.
        await this.emit({
          type: 'input_validation_failed',
          outcome: 'failure',
          username,
          reason: 'store_validation',
          detail: { store: 'pending-login', store_code: err.code },
          ...ctx,
        });
        throw new DuoError('invalid_request', 'The sign-on request could not be stored', {
          cause: err,
        });
      }
      throw err;
    }
    const authorizeUrl = await app.client.createAuthUrl(username, login.state, {
      nonce: login.nonce,
    });
    try {
      await this.emit({ type: 'mfa_started', outcome: 'info', username, returnTo, ...ctx }, true);
    } catch (err) {
      await this.pending.take(login.state).catch(() => undefined);
      throw err;
    }
    return { kind: 'redirect', authorizeUrl, login, binding };
  }

  /**
   * Whether this start answers JSON: `jsonStart` on, and a JSON request (`Content-Type:
   * application/json`) that prefers application/json over text/html. A form post keeps the 303
   * whatever it accepts (API clients and the seed's form rely on it), and so does a browser
   * navigation or `Accept: *\/*`.
   */
  wantsJson(req: Request | undefined): boolean {
    return (
      this.options.jsonStart &&
      req !== undefined &&
      req.is('application/json') === 'application/json' &&
      req.accepts(['html', 'json']) === 'json'
    );
  }

  /**
   * Answers the start: binding cookie, then a 303 to Duo or the button page; for a front end that
   * asked for JSON, 200 `{ authorizeUrl }` (it sends the browser there itself).
   */
  respondStart(
    res: Response,
    outcome: Extract<DuoStartOutcome, { kind: 'redirect' }>,
    req?: Request,
  ): void {
    this.sessions.cookies.set(
      res,
      this.sessions.cookies.binding,
      outcome.binding,
      this.options.pendingTtlMs,
    );
    res.setHeader('Cache-Control', 'no-store');
    res.setHeader('Referrer-Policy', 'no-referrer');
    if (this.options.jsonStart) {
      res.vary('Accept');
    }
    if (this.wantsJson(req)) {
      res.status(200).json({ authorizeUrl: outcome.authorizeUrl });
      return;
    }
    if (this.options.skipButtonPress) {
      res.redirect(303, outcome.authorizeUrl);
      return;
    }
    res.setHeader('Content-Security-Policy', PAGE_CSP);
    res
      .status(200)
      .type('html')
      .send(
        buttonPage({
          authorizeUrl: outcome.authorizeUrl,
          username: outcome.login.username,
          displayName: this.options.displayName,
          css: this.options.css,
          showPoweredBy: this.options.showPoweredBy,
          ...(req ? { language: pageLanguage(req, res, this.options) } : {}),
        }),
      );
  }

  async callback(req: Request): Promise<DuoCallbackOutcome> {
    const ctx = requestContext(req);
    const params = parseCallbackQuery(req.query);
    if (!params) {
      await this.emit({
        type: 'mfa_failed',
        outcome: 'failure',
        reason: 'invalid_request',
        ...ctx,
      });
      throw new DuoError('invalid_request', 'The sign-on response is malformed; start again');
    }
    const taken = await storeCall('pending-login', () => this.pending.take(params.state));
    if (taken.status === 'missing') {
      await this.emit({ type: 'mfa_failed', outcome: 'failure', reason: 'state_unknown', ...ctx });
      throw new DuoError(
        'state_unknown',
        'This sign-on is unknown or was already used; start again',
      );
    }
    const { login } = taken;
    const who = { username: login.username, returnTo: login.returnTo, ...ctx };
    if (taken.status === 'expired') {
      await this.emit({ type: 'mfa_expired', outcome: 'failure', reason: 'state_expired', ...who });
      throw new DuoError('state_expired', 'This sign-on took too long and expired; start again');
    }
    const binding = this.sessions.cookies.read(req, this.sessions.cookies.binding);
    if (!binding || !safeEqual(sha256(binding), login.bindingHash)) {
      await this.emit({
        type: 'mfa_failed',
        outcome: 'failure',
        reason: 'binding_mismatch',
        ...who,
      });
      throw new DuoError(
        'binding_mismatch',
        'This sign-on was started in another browser; start again here',
      );
    }
    if (params.error !== undefined) {
      await this.emit({ type: 'mfa_denied', outcome: 'failure', reason: 'callback_error', ...who });
      throw new DuoError('callback_error', 'Duo did not approve this sign-on');
    }
    try {
      // The code is exchanged, and its id_token checked, with the credentials of the application
      // the sign-on was started for: a code of another application fails (invalid_grant).
      const app = await this.applications.get(login.application ?? DUO_DEFAULT_APPLICATION, req);
      const result = await app.breaker.run(() =>
        app.client.exchangeAuthorizationCode(params.code, {
          username: login.username,
          nonce: login.nonce,
        }),
      );
      return {
        result,
        login,
        application: { name: app.name, clientId: app.client.options.clientId },
      };
    } catch (err) {
      const reason = err instanceof DuoError ? err.code : 'unavailable';
      await this.emit({ type: 'mfa_failed', outcome: 'failure', reason, ...who });
      throw err instanceof DuoError
        ? err
        : new DuoError('unavailable', 'Duo could not complete the sign-on', { cause: err });
    }
  }

  /** Opens the MFA session, records success (before answering), and sends the browser on. */
  async completeCallback(req: Request, res: Response, outcome: DuoCallbackOutcome): Promise<void> {
    const { result, login } = outcome;
    const ctxt = result.tokens.auth_context;
    const authTime = result.tokens.auth_time ?? result.tokens.iat;
    // A step-up adds this application to what the browser's session of the same user satisfied.
    const previous = await this.sessions.lookup(req);
    const applications = mergedApplications(
      previous.status === 'active' ? previous.session : undefined,
      login.username,
      outcome.application?.name ?? DUO_DEFAULT_APPLICATION,
      authTime,
      this.options.sessionAbsoluteTimeoutMs,
    );
    const session = await this.openSession(req, res, login, {
      username: login.username,
      mfa: true,
      failOpen: false,
      txid: ctxt.txid,
      factor: ctxt.factor,
      authTime,
      applications,
      groups: Array.isArray(ctxt.user?.groups)
        ? ctxt.user.groups.filter((g) => typeof g === 'string')
        : [],
      // How MFA was satisfied, for the factor and bypass policy (the aud checked is this client id).
      application: outcome.application?.clientId ?? this.options.clientId,
      ...textField('duoResult', ctxt.result),
      ...textField('duoReason', ctxt.reason),
      ...sessionOrigin(req),
      data: { mfaResult: redactResult(result) },
    });
    try {
      await this.emit(
        {
          type: 'mfa_succeeded',
          outcome: 'success',
          username: login.username,
          result,
          returnTo: login.returnTo,
          ...requestContext(req),
        },
        true,
      );
    } catch (err) {
      await this.sessions.discard(res, session);
      throw err;
    }
    this.sessions.cookies.clear(res, this.sessions.cookies.binding);
    res.setHeader('Cache-Control', 'no-store');
    res.setHeader('Referrer-Policy', 'no-referrer');
    res.redirect(303, login.returnTo);
  }

  /** Opens the MFA session; a store failure after a verified exchange is recorded as mfa_failed. */
  private async openSession(
    req: Request,
    res: Response,
    login: PendingLogin,
    input: Parameters<DuoSessionService['open']>[2],
  ) {
    try {
      return await this.sessions.open(req, res, input);
    } catch (err) {
      const invalid = isStoreValidationError(err);
      await this.emit({
        type: 'mfa_failed',
        outcome: 'failure',
        username: login.username,
        reason: invalid ? 'store_validation' : err instanceof DuoError ? err.code : 'unavailable',
        ...(invalid ? { detail: { store: 'session', store_code: err.code } } : {}),
        returnTo: login.returnTo,
        ...requestContext(req),
      });
      throw invalid
        ? new DuoError('invalid_request', 'The session could not be stored; start again', {
            cause: err,
          })
        : err;
    }
  }

  /** Opens a session that is NOT MFA-verified (failmode open, Duo unreachable). */
  async completeFailOpen(
    req: Request,
    res: Response,
    outcome: Extract<DuoStartOutcome, { kind: 'failopen' }>,
  ): Promise<void> {
    try {
      await this.sessions.open(req, res, {
        username: outcome.username,
        mfa: false,
        failOpen: true,
        groups: [],
        application: this.options.clientId,
        ...sessionOrigin(req),
        data: {},
      });
    } catch (err) {
      if (!isStoreValidationError(err)) {
        throw err;
      }
      await this.emit({
        type: 'input_validation_failed',
        outcome: 'failure',
        username: outcome.username,
        reason: 'store_validation',
        detail: { store: 'session', store_code: err.code },
        ...requestContext(req),
      });
      throw new DuoError('invalid_request', 'The session could not be stored; start again', {
        cause: err,
      });
    }
    res.setHeader('Cache-Control', 'no-store');
    if (this.options.jsonStart) {
      res.vary('Accept');
    }
    if (this.wantsJson(req)) {
      // No redirect for a front end: it reads that no MFA happened, and where to go.
      res.status(200).json({
        signedIn: true,
        mfa: false,
        failOpen: true,
        username: outcome.username,
        returnTo: outcome.returnTo,
      });
      return;
    }
    res.redirect(303, outcome.returnTo);
  }

  /**
   * The application a start signs on with (the step-up's, the resolver's, or `default`). A name
   * nobody configured, or a tenant with invalid settings, refuses this start alone (audited).
   */
  private async startApplication(req: Request, username: string): Promise<DuoApplication> {
    let name: string | undefined;
    try {
      name = await this.applications.nameFor(req);
      return await this.applications.get(name, req);
    } catch (err) {
      const error =
        err instanceof DuoError
          ? err
          : new DuoError('unavailable', 'Two-factor settings could not be read', { cause: err });
      await this.emit({
        type: error.code === 'invalid_request' ? 'input_validation_failed' : 'mfa_unavailable',
        outcome: 'failure',
        username,
        reason: error.code === 'invalid_request' ? 'unknown_application' : error.code,
        ...(name ? { detail: { application: name } } : {}),
        ...requestContext(req),
      });
      throw error;
    }
  }

  /** Reports expired pending logins as abandoned (the user never came back from Duo). */
  async sweepAbandoned(now = Date.now()): Promise<number> {
    const expired = await storeCall('pending-login', () => this.pending.sweepExpired(now));
    for (const login of expired) {
      await this.emit({
        type: 'mfa_abandoned',
        outcome: 'failure',
        username: login.username,
        reason: 'state_expired',
        clientIp: login.clientIp,
        userAgent: login.userAgent,
      });
    }
    return expired.length;
  }

  /** Reports one event; `critical` events must be recorded or the flow fails closed. */
  async emit(event: DuoAuthEvent, critical = false): Promise<void> {
    if (!this.options.onEvent) {
      return;
    }
    try {
      await this.options.onEvent(event);
    } catch (err) {
      this.logger.error(
        `Could not record ${event.type}: ${err instanceof Error ? err.name : 'error'}`,
      );
      if (critical) {
        throw new DuoError(
          'audit_unavailable',
          'The sign-on could not be recorded; try again later',
          { cause: err },
        );
      }
    }
  }
}

const LOGIN_BODY_KEYS = new Set(['username', 'returnTo']);
const LOGIN_QUERY_KEYS = new Set(['returnTo']);
/** Longest login value read at all (the body limit caps it too); a longer returnTo than 512 is dropped. */
const MAX_LOGIN_VALUE = 16_384;

/** True for a plain object whose every key is allowed and every value a string of at most `max`. */
function onlyStrings(
  value: unknown,
  allowed: ReadonlySet<string> | undefined,
  max: number,
): boolean {
  if (value === undefined || value === null) {
    return true;
  }
  if (typeof value !== 'object' || Array.isArray(value)) {
    return false;
  }
  return Object.entries(value as Record<string, unknown>).every(
    ([key, v]) => (!allowed || allowed.has(key)) && typeof v === 'string' && v.length <= max,
  );
}

/** Why the sign-on start's parameters were refused, and which field (for the audit event). */
export type LoginParamsRefusal =
  | { field: 'query' | 'body'; why: 'unexpected_shape' }
  | { field: 'username'; why: UsernameRefusal; value?: string };

export type LoginParamsCheck =
  | { ok: true; username: string; returnTo?: string; returnToRejected?: true }
  | ({ ok: false } & LoginParamsRefusal);

/**
 * The sign-on start's parameters, strictly: with the default username resolver the body holds
 * only `username` and `returnTo` (single strings: duplicates arrive as arrays, nested keys as
 * objects or as `a[b]` names, and all are refused); the query holds at most `returnTo`. The
 * username must pass the username policy (checkUsername: NFC, 1 to 255 code units, no control,
 * format, bidi, separator, private-use, unassigned or invisible character, no edge spaces) and is
 * returned in NFC; returnTo must be a same-origin path or it is dropped (the default page is used).
 * A refusal names the field and why; the rejected value is only handed back to be hashed.
 */
export function checkLoginParams(
  req: Pick<Request, 'body' | 'query'>,
  usernameResolver?: (req: Request) => unknown,
): LoginParamsCheck {
  const body: unknown = req.body;
  const query: unknown = req.query;
  const strictBody = !usernameResolver || usernameResolver === defaultUsernameResolver;
  if (!onlyStrings(query, LOGIN_QUERY_KEYS, MAX_LOGIN_VALUE)) {
    return { ok: false, field: 'query', why: 'unexpected_shape' };
  }
  if (strictBody ? !onlyStrings(body, LOGIN_BODY_KEYS, MAX_LOGIN_VALUE) : !bodyReturnToOk(body)) {
    return { ok: false, field: 'body', why: 'unexpected_shape' };
  }
  const rawUsername = strictBody
    ? (body as Record<string, unknown> | undefined)?.username
    : usernameResolver(req as Request);
  const checked = checkUsername(rawUsername);
  if (!checked.ok) {
    return {
      ok: false,
      field: 'username',
      why: checked.why,
      ...(typeof rawUsername === 'string' ? { value: rawUsername } : {}),
    };
  }
  const { username } = checked;
  const b = (body ?? {}) as Record<string, unknown>;
  const q = (query ?? {}) as Record<string, unknown>;
  const rawReturnTo = b.returnTo ?? q.returnTo;
  const returnTo = sanitizeReturnTo(rawReturnTo);
  if (returnTo) {
    return { ok: true, username, returnTo };
  }
  return rawReturnTo === undefined || rawReturnTo === ''
    ? { ok: true, username }
    : { ok: true, username, returnToRejected: true };
}

/** checkLoginParams without the reasons: undefined means refuse with 400 before any store or Duo call. */
export function parseLoginParams(
  req: Pick<Request, 'body' | 'query'>,
  usernameResolver?: (req: Request) => unknown,
): { username: string; returnTo?: string; returnToRejected?: true } | undefined {
  const checked = checkLoginParams(req, usernameResolver);
  if (!checked.ok) {
    return undefined;
  }
  const { ok: _ok, ...params } = checked;
  return params;
}

function bodyReturnToOk(body: unknown): boolean {
  if (body === undefined || body === null || typeof body !== 'object') {
    return true;
  }
  const r = (body as Record<string, unknown>).returnTo;
  return r === undefined || (typeof r === 'string' && r.length <= MAX_LOGIN_VALUE);
}

/** The callback's query: each allowed key at most once, strings only; state and a code (or error) required. */
function parseCallbackQuery(
  query: Request['query'],
): { state: string; code: string; error?: string } | undefined {
  const q = query as Record<string, unknown>;
  for (const [key, value] of Object.entries(q)) {
    if (!CALLBACK_KEYS.has(key) || typeof value !== 'string' || value.length > 1024) {
      return undefined;
    }
  }
  const state = q.state;
  if (typeof state !== 'string' || !STATE_RE.test(state)) {
    return undefined;
  }
  if (typeof q.error === 'string') {
    return { state, code: '', error: q.error };
  }
  // The request JWT always sets use_duo_code_attribute: Duo answers with duo_code, never code.
  const code = q.duo_code;
  if (typeof code !== 'string' || !CODE_RE.test(code) || q.code !== undefined) {
    return undefined;
  }
  return { state, code };
}

/** A store refused the record it was handed (bad or oversized input), as opposed to an outage. */
function isStoreValidationError(err: unknown): err is DuoStoreError {
  return (
    err instanceof DuoStoreError &&
    (err.code === 'invalid_record' || err.code === 'record_too_large')
  );
}

function sha256(value: string): string {
  return createHash('sha256').update(value).digest('base64url');
}

function safeEqual(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/** The MFA result as the result page shows it: the token strings never leave the server. */
export function redactResult(result: DuoMfaResult): Record<string, unknown> {
  const hide = (t: unknown) => (typeof t === 'string' ? `[redacted: ${t.length} characters]` : t);
  const { id_token, access_token, ...claims } = result.tokens;
  return {
    rawResponse: {
      ...result.rawResponse,
      id_token: hide(result.rawResponse.id_token),
      access_token: hide(result.rawResponse.access_token),
    },
    statusCode: result.statusCode,
    headers: result.headers,
    tokens: {
      ...claims,
      // The nonce is single-use and spent, but it is the flow's secret: never shown (RED-01).
      ...(claims.nonce !== undefined ? { nonce: hide(claims.nonce) } : {}),
      id_token: hide(id_token),
      access_token: hide(access_token),
    },
  };
}
