import type { IncomingMessage, ServerResponse } from 'node:http';
import { PATHS, publicUrl, type SimContext } from './context.js';
import type { SimApplication } from './applications.js';
import { REASON_HEADER, sendJson, sendRaw, sendText } from './http.js';
import { ID_TOKEN_LIFETIME_SEC, idTokenClaims, signIdToken } from './id-token.js';
import { checkAssertionClaims, JwtCheckError, peekClaims, verifySignature } from './jwt.js';
import { randomId } from './state.js';
import type { Params } from './params.js';
import type { TokenFault } from './types.js';

export const CLIENT_ASSERTION_TYPE = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';
export const ERRORS = {
  assertion: 'The provided client_assertion was invalid.',
  issMismatch: 'Invalid Client assertion: The `iss` claim must match the supplied client_id',
  grant:
    'The provided authorization grant (e.g., authorization code) or refresh token is invalid, expired, revoked, does not match the redirection URI used in the authorization request, or was issued to another client.',
  grantType: 'The authorization grant type is not supported by the authorization server.',
} as const;

/**
 * Checks a client assertion of one application (HS512/HS256 with its secret, iss/sub = its client
 * id, aud = the endpoint URL on the public host, exp, jti ≥ 16 and not replayed). Returns null when
 * valid, else the reason (for the reason header).
 */
export async function checkClientAssertion(
  ctx: SimContext,
  app: SimApplication,
  assertion: string | undefined,
  audience: string,
): Promise<string | null> {
  if (!assertion) {
    return 'client_assertion missing';
  }
  try {
    const claims = await verifySignature(assertion, app.keys);
    const nowMs = Date.now();
    const { jti, exp } = checkAssertionClaims(claims, {
      clientId: app.clientId,
      audience,
      nowSec: nowMs / 1000,
    });
    return ctx.store.useJti(jti, exp, nowMs) ? null : 'jti already used';
  } catch (err) {
    if (err instanceof JwtCheckError) {
      return err.message;
    }
    throw err;
  }
}

/** Faults that replace the answer whatever the request was (the code is still consumed). */
const TRANSPORT_FAULTS = new Set<TokenFault>(['400', '401', '500', '429', 'timeout']);
const HUGE_BODY_BYTES = 5 * 1024 * 1024;

function sendTransportFault(res: ServerResponse, fault: TokenFault): void {
  if (fault === '400') {
    sendJson(res, 400, { error: 'invalid_grant', error_description: ERRORS.grant });
  } else if (fault === '401') {
    sendJson(res, 401, { error: 'invalid_client', error_description: ERRORS.assertion });
  } else if (fault === '429') {
    const body = {
      stat: 'FAIL',
      code: 42901,
      message: 'Too Many Requests',
      message_detail: 'Rate limit exceeded',
    };
    sendJson(res, 429, body, { 'Retry-After': '1' });
  } else if (fault === '500') {
    sendText(res, 500, 'Internal Server Error');
  }
  // 'timeout': never answer; close() drops the connection.
}

/** Faults that change the shape of an otherwise valid success body. */
const BODY_FAULTS: Partial<Record<TokenFault, (body: Record<string, unknown>) => string>> = {
  missing_id_token: ({ id_token: _dropped, ...rest }) => JSON.stringify(rest),
  bad_token_type: (body) => JSON.stringify({ ...body, token_type: 'bearer' }),
  string_expires_in: (body) => JSON.stringify({ ...body, expires_in: String(body.expires_in) }),
  malformed_json: (body) => JSON.stringify(body).slice(0, 40),
  huge_body: (body) => JSON.stringify({ ...body, padding: 'x'.repeat(HUGE_BODY_BYTES) }),
};

function tokenError(
  ctx: SimContext,
  res: ServerResponse,
  error: string,
  description: string,
  why: string,
) {
  ctx.store.counters.token_error++;
  sendJson(res, 400, { error, error_description: description }, { [REASON_HEADER]: why });
}

export async function handleToken(
  ctx: SimContext,
  _req: IncomingMessage,
  res: ServerResponse,
  params: Params,
): Promise<void> {
  ctx.store.counters.token++;
  const fault = ctx.store.peekTokenFault();
  if (fault && TRANSPORT_FAULTS.has(fault)) {
    ctx.store.takeCode(params.get('code') ?? '');
    ctx.store.consumeTokenFault();
    ctx.store.counters.token_error++;
    sendTransportFault(res, fault);
    return;
  }
  if (params.get('grant_type') !== 'authorization_code') {
    tokenError(ctx, res, 'unsupported_grant_type', ERRORS.grantType, 'grant_type');
    return;
  }
  if (params.get('client_assertion_type') !== CLIENT_ASSERTION_TYPE) {
    tokenError(ctx, res, 'invalid_client', ERRORS.assertion, 'client_assertion_type');
    return;
  }
  const assertion = params.get('client_assertion');
  const clientId = params.get('client_id');
  const iss = assertion ? peekClaims(assertion)?.iss : undefined;
  if (clientId !== undefined && iss !== undefined && iss !== clientId) {
    tokenError(ctx, res, 'invalid_client', ERRORS.issMismatch, 'client_id differs from iss');
    return;
  }
  // The application is the one named by client_id, or by the assertion's iss (Java omits
  // client_id); its own secret checks the assertion.
  const app = ctx.store.app(clientId ?? (typeof iss === 'string' ? iss : undefined));
  const issuer = publicUrl(ctx, PATHS.token);
  const why = app ? await checkClientAssertion(ctx, app, assertion, issuer) : 'client unknown';
  if (!app || why) {
    tokenError(ctx, res, 'invalid_client', ERRORS.assertion, why ?? 'client unknown');
    return;
  }
  // Any presentation spends the code, even by another application (a code seen elsewhere is burnt).
  const grant = ctx.store.takeCode(params.get('code') ?? '');
  const now = Date.now();
  if (!grant || grant.expiresAt <= now) {
    tokenError(ctx, res, 'invalid_grant', ERRORS.grant, 'code unknown, used or expired');
    return;
  }
  if (grant.clientId !== app.clientId) {
    tokenError(ctx, res, 'invalid_grant', ERRORS.grant, 'code issued to another application');
    return;
  }
  const redirectUri = params.get('redirect_uri') ?? '';
  if (redirectUri !== grant.redirectUri) {
    tokenError(ctx, res, 'invalid_grant', `Invalid redirect URI ${redirectUri}`, 'redirect_uri');
    return;
  }
  const nowSec = Math.floor(now / 1000);
  const claims = idTokenClaims(grant, { issuer, applicationName: app.name, nowSec });
  if (fault) {
    ctx.store.consumeTokenFault();
  }
  const body: Record<string, unknown> = {
    id_token: signIdToken(claims, app.keys.secret, fault, nowSec),
    access_token: randomId(32),
    expires_in: ID_TOKEN_LIFETIME_SEC,
    token_type: 'Bearer',
  };
  ctx.store.counters.token_success++;
  const shape = fault ? BODY_FAULTS[fault] : undefined;
  sendRaw(res, 200, shape ? shape(body) : JSON.stringify(body));
}
