import { createHmac } from 'node:crypto';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import { decodeJwt, jwtVerify, SignJWT, type JWTPayload } from 'jose';
import { FakeDuoHttp, json } from '../../../test/fakes/fake-duo-http.js';
import { DuoClient } from './duo.client.js';
import { DuoConfigError, DuoError } from './duo.errors.js';
import type { DuoClientOptions } from './duo-client-options.js';

const CLIENT_ID = 'DIABCDEFGHIJ12345678';
const SECRET = 'abcdefghijklmnopqrstuvwxyz0123456789ABCD';
const KEY = new TextEncoder().encode(SECRET);
const USER = 'alice';
const NONCE = 'n'.repeat(16) + 'once-value-0123456789';
const CODE = 'duo-code-0123456789abcdefghijklmnop';

const duo = new FakeDuoHttp();

function client(extra: Partial<DuoClientOptions> = {}): DuoClient {
  return new DuoClient({
    clientId: CLIENT_ID,
    clientSecret: SECRET,
    apiHost: duo.apiHost,
    redirectUri: 'http://localhost:3000/auth/duo/callback',
    allowInsecureHttp: true,
    timeoutMs: 1000,
    ...extra,
  });
}

function issuer(): string {
  return `${duo.apiHost}/oauth/v1/token`;
}

function claims(overrides: Record<string, unknown> = {}): JWTPayload {
  const now = Math.floor(Date.now() / 1000);
  const base: Record<string, unknown> = {
    iss: issuer(),
    sub: USER,
    aud: CLIENT_ID,
    exp: now + 3600,
    iat: now,
    auth_time: now,
    auth_result: { result: 'allow', status: 'allow', status_msg: 'Login Successful' },
    auth_context: {
      txid: '4a1c2f4e-7d7c-4a4f-9f47-1d0a0b9c1e11',
      timestamp: now,
      user: { name: USER, key: 'DUABCDEFGHIJKLMNOPQR', groups: ['admins'] },
      application: { name: 'Web SDK', key: CLIENT_ID },
      factor: 'duo_push',
      event_type: 'authentication',
      result: 'success',
      reason: 'user_approved',
    },
    preferred_username: USER,
    nonce: NONCE,
  };
  for (const [k, v] of Object.entries(overrides)) {
    if (v === undefined) {
      delete base[k];
    } else {
      base[k] = v;
    }
  }
  return base;
}

async function idToken(
  overrides: Record<string, unknown> = {},
  opts: { key?: Uint8Array; alg?: string; header?: Record<string, unknown> } = {},
): Promise<string> {
  return new SignJWT(claims(overrides))
    .setProtectedHeader({ alg: opts.alg ?? 'HS512', typ: 'JWT', ...opts.header })
    .sign(opts.key ?? KEY);
}

/** Signs by hand, for headers jose refuses to produce. */
function rawSign(header: Record<string, unknown>, payload: JWTPayload): string {
  const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
  const input = `${b64(header)}.${b64(payload)}`;
  return `${input}.${createHmac('sha512', KEY).update(input).digest('base64url')}`;
}

function answerToken(body: unknown, status = 200): void {
  duo.handler = (_req, res) => json(res, status, body);
}

async function tokenBody(token: Promise<string> | string, extra: Record<string, unknown> = {}) {
  return {
    id_token: await token,
    access_token: 'opaque-access',
    expires_in: 3600,
    token_type: 'Bearer',
    ...extra,
  };
}

async function exchangeError(options = { username: USER, nonce: NONCE }): Promise<DuoError> {
  try {
    await client().exchangeAuthorizationCode(CODE, options);
  } catch (err) {
    expect(err).toBeInstanceOf(DuoError);
    return err as DuoError;
  }
  throw new Error('expected the exchange to fail');
}

beforeAll(() => duo.start());
afterAll(() => duo.stop());
beforeEach(() => {
  duo.requests.length = 0;
});

describe('DuoClient options', () => {
  const base: DuoClientOptions = {
    clientId: CLIENT_ID,
    clientSecret: SECRET,
    apiHost: 'api-1a2b3c4d.duosecurity.com',
    redirectUri: 'https://app.example.org/auth/duo/callback',
  };

  it.each<[string, Partial<DuoClientOptions>]>([
    ['clientId', { clientId: 'DI123' }],
    ['clientId', { clientId: undefined }],
    ['clientSecret', { clientSecret: SECRET.slice(1) }],
    ['apiHost', { apiHost: '' }],
    ['apiHost', { apiHost: 'https://api-1a2b3c4d.duosecurity.com/x' }],
    ['apiHost', { apiHost: 'http://127.0.0.1:4000' }],
    ['apiHost', { apiHost: 'api host with spaces' }],
    ['redirectUri', { redirectUri: '/relative' }],
    ['redirectUri', { redirectUri: 'http://app.example.org/cb' }],
    ['redirectUri', { redirectUri: `https://app.example.org/${'a'.repeat(240)}` }],
    ['redirectUri', { redirectUri: 'https://app.example.org/cb#x' }],
    ['timeoutMs', { timeoutMs: 0 }],
    ['clockToleranceMs', { clockToleranceMs: 301_000 }],
    ['maxResponseBytes', { maxResponseBytes: 10 }],
  ])('should refuse %s when it is invalid (%j)', (field, patch) => {
    let error: unknown;
    try {
      new DuoClient({ ...base, ...patch });
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(DuoConfigError);
    expect((error as DuoConfigError).code).toBe('config');
    expect((error as DuoConfigError).issues.map((i) => i.field)).toEqual([field]);
    expect((error as Error).message).not.toContain(SECRET.slice(1));
  });

  it('should list every bad option when several are wrong', () => {
    expect(
      () => new DuoClient({ clientId: 'x', clientSecret: 'y', apiHost: '', redirectUri: '' }),
    ).toThrow(/clientId[\s\S]*clientSecret[\s\S]*apiHost[\s\S]*redirectUri/);
  });

  it('should accept a loopback http redirect URI and the documented bounds', () => {
    const c = new DuoClient({
      ...base,
      redirectUri: 'http://127.0.0.1:3000/cb',
      clockToleranceMs: 300_000,
      timeoutMs: 100,
    });
    expect(c.issuer).toBe('https://api-1a2b3c4d.duosecurity.com/oauth/v1/token');
  });

  it('should generate unique base64url states and nonces of 43 characters', () => {
    const c = new DuoClient(base);
    const values = new Set(
      Array.from({ length: 500 }, () => [c.generateState(), c.generateNonce()]).flat(),
    );
    expect(values.size).toBe(1000);
    for (const v of values) {
      expect(v).toMatch(/^[A-Za-z0-9_-]{43}$/);
    }
  });
});

describe('DuoClient.createAuthUrl', () => {
  it('should sign a request JWT with every claim Duo reads when inputs are valid', async () => {
    const c = client();
    const state = c.generateState();
    const url = new URL(await c.createAuthUrl(USER, state, { nonce: NONCE }));
    expect(`${url.origin}${url.pathname}`).toBe(`${duo.apiHost}/oauth/v1/authorize`);
    expect([...url.searchParams.keys()]).toEqual(['response_type', 'client_id', 'request']);
    const { payload, protectedHeader } = await jwtVerify(url.searchParams.get('request')!, KEY, {
      algorithms: ['HS512'],
    });
    expect(protectedHeader).toEqual({ alg: 'HS512', typ: 'JWT' });
    expect(payload).toMatchObject({
      response_type: 'code',
      scope: 'openid',
      client_id: CLIENT_ID,
      iss: CLIENT_ID,
      aud: duo.apiHost,
      redirect_uri: 'http://localhost:3000/auth/duo/callback',
      state,
      duo_uname: USER,
      use_duo_code_attribute: true,
      nonce: NONCE,
    });
    expect(payload.exp! - Math.floor(Date.now() / 1000)).toBeGreaterThanOrEqual(299);
  });

  it.each([
    ['an empty username', '', 'x'.repeat(36), NONCE],
    ['a username with a newline', 'ali\nce', 'x'.repeat(36), NONCE],
    ['a username of 256 characters', 'u'.repeat(256), 'x'.repeat(36), NONCE],
    ['a state of 21 characters', USER, 'x'.repeat(21), NONCE],
    ['a state of 1025 characters', USER, 'x'.repeat(1025), NONCE],
    ['a nonce of 15 characters', USER, 'x'.repeat(36), 'n'.repeat(15)],
  ])('should refuse %s', async (_what, username, state, nonce) => {
    await expect(client().createAuthUrl(username, state, { nonce })).rejects.toMatchObject({
      code: 'invalid_argument',
    });
  });
});

describe('DuoClient.healthCheck', () => {
  it('should post client_id and an assertion for the health endpoint when Duo is healthy', async () => {
    duo.handler = (_req, res) =>
      json(res, 200, { stat: 'OK', response: { timestamp: 1700000000 } });
    await expect(client().healthCheck()).resolves.toEqual({ timestamp: 1700000000 });
    const [req] = duo.requests;
    expect(req.path).toBe('/oauth/v1/health_check');
    expect(req.form.get('client_id')).toBe(CLIENT_ID);
    const { payload } = await jwtVerify(req.form.get('client_assertion')!, KEY, {
      algorithms: ['HS512'],
    });
    expect(payload).toMatchObject({
      iss: CLIENT_ID,
      sub: CLIENT_ID,
      aud: `${duo.apiHost}/oauth/v1/health_check`,
    });
    expect(payload.jti).toMatch(/^[A-Za-z0-9_-]{43}$/);
  });

  it.each<[string, () => void, string]>([
    [
      'a 400 FAIL envelope',
      () =>
        (duo.handler = (_r, res) =>
          json(res, 400, {
            stat: 'FAIL',
            code: 40002,
            message: 'invalid_client',
            message_detail: 'The provided client_assertion was invalid.',
          })),
      'invalid_client',
    ],
    [
      'a 200 FAIL envelope',
      () =>
        (duo.handler = (_r, res) =>
          json(res, 200, {
            stat: 'FAIL',
            code: 40002,
            message: 'invalid_client',
            message_detail: 'Failed to verify signature.',
          })),
      'invalid_client',
    ],
    ['a 500', () => (duo.handler = (_r, res) => json(res, 500, 'oops')), 'unavailable'],
    ['a 429', () => (duo.handler = (_r, res) => json(res, 429, { stat: 'FAIL' })), 'rate_limited'],
    [
      'a 200 without the OK envelope',
      () => (duo.handler = (_r, res) => json(res, 200, '<html>')),
      'health_response',
    ],
    [
      'a body over the size cap',
      () => (duo.handler = (_r, res) => json(res, 200, 'x'.repeat(70_000))),
      'health_response',
    ],
    ['no answer within the timeout', () => (duo.handler = () => undefined), 'unavailable'],
  ])('should report %s as %s', async (_what, arrange, code) => {
    arrange();
    await expect(client({ timeoutMs: 300 }).healthCheck()).rejects.toMatchObject({ code });
  });

  it('should not follow a redirect when Duo answers 302', async () => {
    duo.handler = (_r, res) => {
      res.writeHead(302, { location: '/elsewhere' });
      res.end();
    };
    await expect(client().healthCheck()).rejects.toMatchObject({ code: 'unavailable' });
    expect(duo.requests.map((r) => r.path)).toEqual(['/oauth/v1/health_check']);
  });

  it('should report unavailable when nothing listens at the API host', async () => {
    const c = new DuoClient({
      clientId: CLIENT_ID,
      clientSecret: SECRET,
      apiHost: 'http://127.0.0.1:1',
      redirectUri: 'http://localhost/cb',
      allowInsecureHttp: true,
    });
    await expect(c.healthCheck()).rejects.toMatchObject({ code: 'unavailable' });
  });
});

describe('DuoClient.exchangeAuthorizationCode', () => {
  it('should return the MFA result with the verified claims when Duo answers a valid token', async () => {
    answerToken(await tokenBody(idToken()));
    const result = await client().exchangeAuthorizationCode(CODE, { username: USER, nonce: NONCE });
    expect(result.statusCode).toBe(200);
    expect(result.headers['content-type']).toBe('application/json');
    expect(result.rawResponse.token_type).toBe('Bearer');
    expect(result.tokens).toMatchObject({
      access_token: 'opaque-access',
      preferred_username: USER,
      nonce: NONCE,
    });
    expect(result.tokens.auth_context.factor).toBe('duo_push');
    const [req] = duo.requests;
    expect(req.path).toBe('/oauth/v1/token');
    expect(Object.fromEntries(req.form)).toMatchObject({
      grant_type: 'authorization_code',
      code: CODE,
      redirect_uri: 'http://localhost:3000/auth/duo/callback',
      client_id: CLIENT_ID,
      client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
    });
    expect(decodeJwt(req.form.get('client_assertion')!).aud).toBe(`${duo.apiHost}/oauth/v1/token`);
  });

  it('should accept an id_token expired by 30 s, inside the 60 s leeway', async () => {
    const now = Math.floor(Date.now() / 1000);
    answerToken(await tokenBody(idToken({ exp: now - 30, iat: now - 300 })));
    await expect(
      client().exchangeAuthorizationCode(CODE, { username: USER, nonce: NONCE }),
    ).resolves.toBeDefined();
  });

  it.each([
    ['an empty code', ''],
    ['a code with a space', 'abc def'],
    ['a code of 1025 characters', 'c'.repeat(1025)],
  ])('should refuse %s before calling Duo', async (_what, code) => {
    await expect(
      client().exchangeAuthorizationCode(code, { username: USER, nonce: NONCE }),
    ).rejects.toMatchObject({
      code: 'invalid_argument',
    });
    expect(duo.requests).toHaveLength(0);
  });

  it.each<[string, number, unknown, string]>([
    [
      'invalid_grant',
      400,
      {
        error: 'invalid_grant',
        error_description: `The provided authorization grant ${CODE} is invalid`,
      },
      'invalid_grant',
    ],
    [
      'invalid_client',
      400,
      { error: 'invalid_client', error_description: 'The provided client_assertion was invalid.' },
      'invalid_client',
    ],
    [
      'another OAuth error',
      400,
      { error: 'unauthorized_request', error_description: 'Unauthorized OIDC request' },
      'duo_rejected',
    ],
    ['a 400 without an error body', 400, 'Bad Request', 'token_response'],
    ['a 500', 500, { error: 'server_error' }, 'unavailable'],
    ['a 429', 429, { error: 'rate_limited' }, 'rate_limited'],
    ['malformed JSON', 200, '{"id_token":', 'token_response'],
    ['a huge body', 200, 'x'.repeat(70_000), 'token_response'],
  ])(
    'should map %s to %s without retrying or echoing the code',
    async (_what, status, body, code) => {
      duo.handler = (_r, res) => json(res, status, body);
      const err = await exchangeError();
      expect(err.code).toBe(code);
      expect(err.message).not.toContain(CODE);
      expect(duo.requests).toHaveLength(1);
    },
  );

  it('should report unavailable without retrying when the token call times out', async () => {
    duo.handler = () => undefined;
    await expect(
      client({ timeoutMs: 200 }).exchangeAuthorizationCode(CODE, { username: USER, nonce: NONCE }),
    ).rejects.toMatchObject({ code: 'unavailable' });
    expect(duo.requests).toHaveLength(1);
  });

  it.each<[string, Record<string, unknown>]>([
    ['no id_token', { id_token: undefined }],
    ['no access_token', { access_token: undefined }],
    ['a string expires_in', { expires_in: '3600' }],
    ['a zero expires_in', { expires_in: 0 }],
    ['token_type bearer in lower case', { token_type: 'bearer' }],
  ])('should refuse a token response with %s', async (_what, patch) => {
    const body: Record<string, unknown> = await tokenBody(idToken(), patch);
    for (const k of Object.keys(body)) {
      if (body[k] === undefined) {
        delete body[k];
      }
    }
    answerToken(body);
    expect((await exchangeError()).code).toBe('token_response');
  });

  const now = () => Math.floor(Date.now() / 1000);
  const WRONG_KEY = new TextEncoder().encode('wrongclientidwrongclientidwrongclientidw');
  it.each<[string, () => Promise<string>, string]>([
    ['a wrong secret', () => idToken({}, { key: WRONG_KEY }), 'id_token_signature'],
    ['HS256', () => idToken({}, { alg: 'HS256' }), 'id_token_alg'],
    [
      'alg none',
      async () => {
        const [, payload] = (await idToken()).split('.');
        return `${Buffer.from('{"alg":"none","typ":"JWT"}').toString('base64url')}.${payload}.`;
      },
      'id_token_alg',
    ],
    [
      'an unknown crit header',
      () =>
        Promise.resolve(
          rawSign({ alg: 'HS512', typ: 'JWT', crit: ['x-dummy'], 'x-dummy': 1 }, claims()),
        ),
      'id_token_malformed',
    ],
    ['garbage', () => Promise.resolve('not.a.jwt'), 'id_token_malformed'],
    ['an issuer without the path', () => idToken({ iss: duo.apiHost }), 'id_token_iss'],
    [
      'an issuer of another host',
      () => idToken({ iss: 'https://api-deadbeef.duosecurity.com/oauth/v1/token' }),
      'id_token_iss',
    ],
    ['no issuer', () => idToken({ iss: undefined }), 'id_token_claims'],
    ['another audience', () => idToken({ aud: 'DIZZZZZZZZZZZZZZZZZZ' }), 'id_token_aud'],
    [
      'an audience array with an extra value',
      () => idToken({ aud: [CLIENT_ID, 'someone-else'] }),
      'id_token_aud',
    ],
    [
      'an audience array of the client id and an azp of another client',
      () => idToken({ aud: [CLIENT_ID], azp: 'DIZZZZZZZZZZZZZZZZZZ' }),
      'id_token_aud',
    ],
    ['an exp 120 s ago', () => idToken({ exp: now() - 120, iat: now() - 400 }), 'id_token_expired'],
    [
      'an exp exactly at the leeway',
      () => idToken({ exp: now() - 60, iat: now() - 400 }),
      'id_token_expired',
    ],
    ['no exp', () => idToken({ exp: undefined }), 'id_token_claims'],
    ['no iat', () => idToken({ iat: undefined }), 'id_token_claims'],
    ['an iat 300 s in the future', () => idToken({ iat: now() + 300 }), 'id_token_iat'],
    ['an nbf 300 s in the future', () => idToken({ nbf: now() + 300 }), 'id_token_nbf'],
    ['no sub', () => idToken({ sub: undefined }), 'id_token_claims'],
    ['another nonce', () => idToken({ nonce: 'x'.repeat(43) }), 'id_token_nonce'],
    ['no nonce', () => idToken({ nonce: undefined }), 'id_token_nonce'],
    [
      'another preferred_username',
      () => idToken({ preferred_username: 'mallory' }),
      'id_token_username',
    ],
    [
      'a case-changed preferred_username (deliberately exact)',
      () => idToken({ preferred_username: 'Alice' }),
      'id_token_username',
    ],
    [
      'no preferred_username',
      () => idToken({ preferred_username: undefined }),
      'id_token_username',
    ],
    [
      'a denied auth_result',
      () => idToken({ auth_result: { result: 'deny', status: 'deny' } }),
      'id_token_auth_result',
    ],
    ['no auth_result', () => idToken({ auth_result: undefined }), 'id_token_claims'],
    ['no auth_context', () => idToken({ auth_context: undefined }), 'id_token_claims'],
  ])('should refuse an id_token with %s as %s', async (_what, token, code) => {
    answerToken(await tokenBody(token()));
    const err = await exchangeError();
    expect(err.code).toBe(code);
  });

  it('should refuse an id_token carrying a nonce when none was sent', async () => {
    answerToken(await tokenBody(idToken()));
    const err = await exchangeError({ username: USER, nonce: undefined as unknown as string });
    expect(err.code).toBe('id_token_nonce');
  });

  it('should honour a configured clock tolerance when it is smaller than 60 s', async () => {
    answerToken(await tokenBody(idToken({ exp: now() - 30, iat: now() - 400 })));
    await expect(
      client({ clockToleranceMs: 10_000 }).exchangeAuthorizationCode(CODE, {
        username: USER,
        nonce: NONCE,
      }),
    ).rejects.toMatchObject({ code: 'id_token_expired' });
  });
});
