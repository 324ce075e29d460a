import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { SimApplication } from './applications.js';
import { PATHS, type SimContext } from './context.js';
import { appendParams, remoteIp, sendHtml, sendRedirect, sleep } from './http.js';
import { audienceMatches, checkExp, JwtCheckError, verifySignature } from './jwt.js';
import { parseUrlEncoded, readParams } from './params.js';
import {
  isPromptFactor,
  PROMPT_FACTORS,
  type PromptFactor,
  renderDenied,
  renderError,
  renderPrompt,
} from './prompt-page.js';
import { TRANSACTION_TTL_MS, type Transaction } from './state.js';

class AuthorizeError extends Error {}

function reject(message: string): never {
  throw new AuthorizeError(message);
}

/** Length in Unicode code points, as Duo's (Python) validators count it. */
function codePoints(text: string): number {
  let n = 0;
  for (const _ of text) {
    n++;
  }
  return n;
}

function lengthBetween(field: string, value: unknown, min: number, max: number): string {
  if (typeof value !== 'string' || codePoints(value) < min || codePoints(value) > max) {
    reject(`${field}: ['Length must be between ${min} and ${max}.']`);
  }
  return value;
}

/** Claims and query values that must agree when both carry them (protocol §5.1). */
const DUPLICATED = ['response_type', 'client_id', 'redirect_uri', 'scope', 'state', 'duo_uname'];

type AuthorizeRequest = Omit<Transaction, 'user' | 'alias' | 'expiresAt'>;

/** Validates the authorize query and its request JWT per protocol §5.2 / §14.1. */
async function parseAuthorize(
  ctx: SimContext,
  req: IncomingMessage,
  url: URL,
): Promise<AuthorizeRequest> {
  const query = parseUrlEncoded(url.search.slice(1));
  const request = query.get('request');
  if (!request) {
    reject("request: ['Missing data for required field.']");
  }
  const app = ctx.store.app(query.get('client_id'));
  if (!app) {
    reject('client_id: unknown or missing client id');
  }
  let claims: Record<string, unknown>;
  try {
    // Signed with the secret of the application the query names.
    claims = await verifySignature(request, app.keys);
  } catch (err) {
    reject(
      `request: invalid request JWT (${err instanceof JwtCheckError ? err.message : 'unreadable'})`,
    );
  }
  const nowSec = Date.now() / 1000;
  if (claims.response_type !== 'code') {
    reject("response_type: must be 'code'");
  }
  if (claims.client_id !== app.clientId) {
    reject('client_id: the request JWT names another client');
  }
  if (claims.scope !== undefined && claims.scope !== 'openid') {
    reject("scope: must be 'openid'");
  }
  if (typeof claims.duo_uname !== 'string' || claims.duo_uname === '') {
    reject("duo_uname: ['Missing data for required field.']");
  }
  const state = lengthBetween('state', claims.state, 16, 1024);
  const redirectUri = lengthBetween('redirect_uri', claims.redirect_uri, 1, 256);
  if (!URL.canParse(redirectUri)) {
    reject('redirect_uri: not an absolute URL');
  }
  try {
    checkExp(claims, nowSec);
  } catch (err) {
    reject(`exp: ${err instanceof Error ? err.message : 'invalid'}`);
  }
  if (claims.iss !== undefined && claims.iss !== app.clientId) {
    reject('iss: must be the client id');
  }
  // The public host only, whatever Host header the browser sent.
  const origin = ctx.store.publicOrigin;
  if (
    claims.aud !== undefined &&
    !audienceMatches(claims.aud, [origin, origin + PATHS.authorize])
  ) {
    reject(`aud: must be ${origin} or ${origin}${PATHS.authorize}`);
  }
  for (const key of DUPLICATED) {
    const fromQuery = query.get(key);
    if (fromQuery !== undefined && claims[key] !== undefined && claims[key] !== fromQuery) {
      reject(`${key}: the query value does not match the request JWT`);
    }
  }
  // The query wins for nonce (Duo's documented precedence; Python and Java send it there).
  const nonce = query.get('nonce') ?? claims.nonce;
  if (nonce !== undefined) {
    lengthBetween('nonce', nonce, 16, 1024);
  }
  const flag = claims.use_duo_code_attribute;
  return {
    clientId: app.clientId,
    redirectUri,
    state,
    useDuoCode: flag === true || flag === 'true' || flag === 'True',
    nonce: nonce as string | undefined,
    duoUname: claims.duo_uname,
    accessIp: remoteIp(req),
    userAgent: req.headers['user-agent'] ?? '',
  };
}

/** Issues a code for a completed authentication and sends the browser back with it. */
function redirectWithCode(
  ctx: SimContext,
  res: ServerResponse,
  tx: Omit<Transaction, 'expiresAt'>,
  factor: string,
  reason: string,
): void {
  const now = Date.now();
  const txid = randomUUID();
  // The same txid goes to the id_token's auth_context and to the authentication log.
  ctx.store.recordDecision(tx, { result: 'success', reason, factor, txid, atMs: now });
  const code = ctx.store.issueCode({
    txid,
    clientId: tx.clientId,
    redirectUri: tx.redirectUri,
    duoUname: tx.duoUname,
    user: tx.user,
    alias: tx.alias,
    nonce: tx.nonce,
    factor,
    reason,
    authTimeMs: now,
    accessIp: tx.accessIp,
    userAgent: tx.userAgent,
    expiresAt: now + ctx.codeTtlMs,
  });
  const name = tx.useDuoCode ? 'duo_code' : 'code';
  sendRedirect(
    res,
    appendParams(tx.redirectUri, [
      [name, code],
      ['state', tx.state],
    ]),
  );
}

function errorRedirect(ctx: SimContext, res: ServerResponse, tx: Omit<Transaction, 'expiresAt'>) {
  ctx.store.counters.error_redirects++;
  sendRedirect(
    res,
    appendParams(tx.redirectUri, [
      ['error', 'access_denied'],
      ['error_description', 'The resource owner or authorization server denied the request.'],
      ['state', tx.state],
    ]),
  );
}

const DENIAL_MESSAGES: Record<string, string> = {
  user_marked_fraud: 'Login request reported as fraudulent. Your administrator has been notified.',
  no_response: 'Login request timed out. No response was received.',
  locked_out: 'Your account is locked out. Contact your administrator.',
  user_disabled: 'Your account is disabled. Contact your administrator.',
  deny_unenrolled_user: 'You are not enrolled in Duo and new users are not allowed to log in.',
  denied_by_policy: 'Your organization does not allow access to this application.',
  factor_restricted: 'This authentication method is not allowed for this application.',
};

/** Whether an application's policy allows a factor (a form value or the name Duo logs). */
function factorAllowed(app: SimApplication, factor: string): boolean {
  const allowed = app.policy.allowedFactors;
  return (
    allowed === null || allowed.some((id) => id === factor || PROMPT_FACTORS[id].factor === factor)
  );
}

/** The factor an approval without a choice uses: Duo Push when allowed, else the first allowed. */
function defaultFactor(app: SimApplication): PromptFactor {
  const allowed = app.policy.allowedFactors;
  return allowed === null || allowed.includes('duo_push') ? 'duo_push' : allowed[0];
}

/**
 * Denial: Duo's own page, no redirect; or the opt-in OAuth error redirect when allowed. Logged as
 * `fraud` for user_marked_fraud, `failure` for a timeout (no_response), `denied` otherwise.
 */
function deny(
  ctx: SimContext,
  res: ServerResponse,
  tx: Omit<Transaction, 'expiresAt'>,
  reason: string,
  mayRedirect: boolean,
  factor = 'not_available',
): void {
  ctx.store.counters.denied++;
  const result =
    reason === 'user_marked_fraud' ? 'fraud' : reason === 'no_response' ? 'failure' : 'denied';
  ctx.store.recordDecision(tx, { result, reason, factor });
  if (mayRedirect && ctx.errorRedirectOnDeny) {
    errorRedirect(ctx, res, tx);
    return;
  }
  const message = DENIAL_MESSAGES[reason] ?? 'Login request denied.';
  sendHtml(res, 200, renderDenied(tx.duoUname, reason, message));
}

export async function handleAuthorize(
  ctx: SimContext,
  req: IncomingMessage,
  res: ServerResponse,
  url: URL,
): Promise<void> {
  ctx.store.counters.authorize++;
  let request: AuthorizeRequest;
  try {
    request = await parseAuthorize(ctx, req, url);
  } catch (err) {
    if (err instanceof AuthorizeError) {
      sendHtml(res, 400, renderError(err.message));
      return;
    }
    throw err;
  }
  const app = ctx.store.app(request.clientId)!;
  const policy = app.policy;
  const resolved = ctx.store.users.resolve(request.duoUname, policy.newUserPolicy);
  const tx = { ...request, user: resolved.user, alias: resolved.alias };
  const scripted = ctx.store.takeOutcome(request.duoUname, resolved.user.username);
  const fallback = PROMPT_FACTORS[defaultFactor(app)];
  if (scripted) {
    if (scripted.delayMs) {
      await sleep(scripted.delayMs);
    }
    switch (scripted.outcome) {
      case 'allow': {
        const factor = scripted.factor ?? fallback.factor;
        // The application's factor policy holds even for a scripted approval.
        if (factor !== 'not_available' && !factorAllowed(app, factor)) {
          deny(ctx, res, tx, 'factor_restricted', true, factor);
          return;
        }
        redirectWithCode(ctx, res, tx, factor, scripted.reason ?? fallback.reason);
        return;
      }
      case 'deny':
        deny(ctx, res, tx, scripted.reason ?? 'user_mistake', true, scripted.factor ?? 'duo_push');
        return;
      case 'fraud':
        deny(ctx, res, tx, 'user_marked_fraud', true, scripted.factor ?? 'duo_push');
        return;
      case 'timeout':
        deny(ctx, res, tx, 'no_response', true, scripted.factor ?? 'duo_push');
        return;
      case 'error_redirect':
        ctx.store.counters.denied++;
        ctx.store.recordDecision(tx, {
          result: 'denied',
          reason: scripted.reason ?? 'user_cancelled',
          factor: scripted.factor ?? 'not_available',
        });
        errorRedirect(ctx, res, tx);
        return;
    }
  }
  const status = resolved.user.status ?? 'active';
  if (status === 'locked_out' || status === 'disabled') {
    deny(ctx, res, tx, status === 'locked_out' ? 'locked_out' : 'user_disabled', false);
    return;
  }
  // The application's authentication policy, before the new-user policy (order unconfirmed).
  if (policy.authenticationPolicy === 'deny') {
    deny(ctx, res, tx, 'denied_by_policy', false);
    return;
  }
  if (policy.authenticationPolicy === 'bypass') {
    redirectWithCode(ctx, res, tx, 'not_available', 'allowed_by_policy');
    return;
  }
  if (resolved.unenrolled) {
    if (policy.newUserPolicy === 'deny') {
      deny(ctx, res, tx, 'deny_unenrolled_user', false);
    } else {
      redirectWithCode(ctx, res, tx, 'not_available', 'allow_unenrolled_user');
    }
    return;
  }
  // A bypass user skips the prompt only where the application allows it; else it is prompted.
  if (status === 'bypass' && policy.allowBypass) {
    redirectWithCode(ctx, res, tx, 'not_available', 'bypass_user');
    return;
  }
  if (ctx.auto === 'allow') {
    redirectWithCode(ctx, res, tx, fallback.factor, fallback.reason);
    return;
  }
  if (ctx.auto === 'deny') {
    deny(ctx, res, tx, 'user_mistake', true, fallback.factor);
    return;
  }
  if (ctx.auto === 'fraud') {
    deny(ctx, res, tx, 'user_marked_fraud', true, fallback.factor);
    return;
  }
  if (ctx.auto === 'timeout') {
    deny(ctx, res, tx, 'no_response', true, fallback.factor);
    return;
  }
  const id = ctx.store.addTransaction({ ...tx, expiresAt: Date.now() + TRANSACTION_TTL_MS });
  const view = {
    applicationName: app.name,
    username: tx.duoUname,
    transactionId: id,
    factors: policy.allowedFactors ?? undefined,
  };
  sendHtml(res, 200, renderPrompt(view), [new URL(tx.redirectUri).origin]);
}

/**
 * The prompt form's POST: Approve issues a code and redirects; Deny and Report fraud show the
 * denial page (or the opt-in error redirect) and log `denied` / `fraud`.
 */
export async function handlePrompt(
  ctx: SimContext,
  req: IncomingMessage,
  res: ServerResponse,
  url: URL,
): Promise<void> {
  ctx.store.counters.prompt++;
  const params = await readParams(req, url);
  const tx = ctx.store.takeTransaction(params.get('txn') ?? '', Date.now());
  if (!tx) {
    sendHtml(res, 400, renderError('This login request has expired or was already completed.'));
    return;
  }
  const app = ctx.store.app(tx.clientId);
  if (!app) {
    sendHtml(res, 400, renderError('This application is no longer served.'));
    return;
  }
  const action = params.get('action');
  const choice = params.get('factor');
  const factor = PROMPT_FACTORS[isPromptFactor(choice) ? choice : defaultFactor(app)];
  if (action === 'approve' && !factorAllowed(app, factor.factor)) {
    // A factor the page did not offer (a forged form): refused by the application's policy.
    deny(ctx, res, tx, 'factor_restricted', true, factor.factor);
  } else if (action === 'approve') {
    redirectWithCode(ctx, res, tx, factor.factor, factor.reason);
  } else if (action === 'deny') {
    deny(ctx, res, tx, 'user_mistake', true, factor.factor);
  } else if (action === 'fraud') {
    deny(ctx, res, tx, 'user_marked_fraud', true, factor.factor);
  } else {
    // The transaction was taken: an unknown action ends it, and Duo would log an error (unconfirmed).
    ctx.store.recordDecision(tx, { result: 'error', reason: 'error', factor: factor.factor });
    sendHtml(res, 400, renderError('Unknown action.'));
  }
}
