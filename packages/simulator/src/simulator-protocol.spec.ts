import { afterAll, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import { jwtVerify } from 'jose';
import { startSimulator } from './index.js';
import {
  ASSERTION_TYPE,
  assertion,
  authorizeForCode,
  authorizeUrl,
  exchange,
  get,
  nowSec,
  post,
  randomHex,
  REDIRECT_URI,
} from './spec-kit.js';
import type { RunningSimulator } from './types.js';

const INVALID_ASSERTION = 'The provided client_assertion was invalid.';
const INVALID_GRANT =
  'The provided authorization grant (e.g., authorization code) or refresh token is invalid, expired, revoked, does not match the redirection URI used in the authorization request, or was issued to another client.';

let sim: RunningSimulator;

beforeAll(async () => {
  sim = await startSimulator({ auto: 'allow' });
});
afterAll(() => sim.close());
beforeEach(() => sim.control.reset());

describe('health check', () => {
  const health = (params: Record<string, string | undefined>, as?: 'multipart' | 'query') =>
    post(`${sim.url}/oauth/v1/health_check`, params, as);

  it('should answer stat OK with a timestamp when the assertion is valid', async () => {
    const res = await health({
      client_id: sim.clientId,
      client_assertion: await assertion(sim, '/oauth/v1/health_check'),
    });
    const body = (await res.json()) as { stat: string; response: { timestamp: number } };
    expect(res.status).toBe(200);
    expect(body.stat).toBe('OK');
    expect(Math.abs(body.response.timestamp - nowSec())).toBeLessThanOrEqual(2);
  });

  it.each(['multipart', 'query'] as const)(
    'should accept the fields when they are sent as %s',
    async (as) => {
      const res = await health(
        {
          client_id: sim.clientId,
          client_assertion: await assertion(sim, '/oauth/v1/health_check'),
        },
        as,
      );
      expect(res.status).toBe(200);
    },
  );

  it.each([
    ['exp as a float', { exp: Date.now() / 1000 + 300 }, {}],
    ['exp as a numeric string', { exp: String(nowSec() + 300) }, {}],
    ['HS256', {}, { alg: 'HS256' as const }],
    ['no typ header', {}, { typ: false }],
    ['no sub and no iat', { sub: undefined, iat: undefined }, {}],
    ['an exp one hour ahead (Java)', { exp: nowSec() + 3600 }, {}],
    ['a 16-character jti', { jti: 'a'.repeat(16) + randomHex(0) }, {}],
  ])('should accept an assertion with %s', async (_name, overrides, opts) => {
    const res = await health({
      client_id: sim.clientId,
      client_assertion: await assertion(sim, '/oauth/v1/health_check', overrides, opts),
    });
    expect(res.status).toBe(200);
  });

  it.each([
    ['a wrong secret', {}, { secret: 'x'.repeat(40) }],
    ['iss of another client', { iss: 'DIAAAAAAAAAAAAAAAAAA' }, {}],
    ['sub of another client', { sub: 'DIAAAAAAAAAAAAAAAAAA' }, {}],
    ['aud of the token endpoint', { aud: 'TOKEN' }, {}],
    ['aud without the path', { aud: 'ORIGIN' }, {}],
    ['an expired exp', { exp: nowSec() - 5 }, {}],
    ['exp too far ahead', { exp: nowSec() + 7200 }, {}],
    ['exp missing', { exp: undefined }, {}],
    ['exp not numeric', { exp: 'soon' }, {}],
    ['jti missing', { jti: undefined }, {}],
    ['a 15-character jti', { jti: 'b'.repeat(15) }, {}],
  ])(
    'should answer the FAIL envelope when the assertion has %s',
    async (_name, overrides, opts) => {
      const aud = { TOKEN: `${sim.url}/oauth/v1/token`, ORIGIN: sim.url } as Record<string, string>;
      const claims = { ...overrides } as Record<string, unknown>;
      if (typeof claims.aud === 'string') {
        claims.aud = aud[claims.aud];
      }
      const res = await health({
        client_id: sim.clientId,
        client_assertion: await assertion(sim, '/oauth/v1/health_check', claims, opts),
      });
      const body = (await res.json()) as Record<string, unknown>;
      expect(res.status).toBe(400);
      expect(body).toMatchObject({
        stat: 'FAIL',
        code: 40002,
        message: 'invalid_client',
        message_detail: INVALID_ASSERTION,
      });
      expect(typeof body.timestamp).toBe('number');
    },
  );

  it('should reject the call when client_id is missing or different', async () => {
    const missing = await health({
      client_assertion: await assertion(sim, '/oauth/v1/health_check'),
    });
    const other = await health({
      client_id: 'DIAAAAAAAAAAAAAAAAAA',
      client_assertion: await assertion(sim, '/oauth/v1/health_check'),
    });
    expect([missing.status, other.status]).toEqual([400, 400]);
  });

  it('should reject the assertion when its jti is replayed', async () => {
    const jwt = await assertion(sim, '/oauth/v1/health_check');
    const first = await health({ client_id: sim.clientId, client_assertion: jwt });
    const second = await health({ client_id: sim.clientId, client_assertion: jwt });
    expect(first.status).toBe(200);
    expect(second.status).toBe(400);
    expect(second.headers.get('x-simulator-reason')).toMatch(/jti/);
  });
});

describe('authorize', () => {
  it('should redirect with duo_code and the state when the request is valid in auto mode', async () => {
    const { location, state } = await authorizeForCode(sim);
    expect(`${location.origin}${location.pathname}`).toBe(REDIRECT_URI);
    expect(location.searchParams.get('state')).toBe(state);
    expect(location.searchParams.get('duo_code')!.length).toBeGreaterThanOrEqual(32);
    expect(location.searchParams.has('code')).toBe(false);
  });

  it.each([
    [false, 'code'],
    [undefined, 'code'],
    ['true', 'duo_code'],
    ['True', 'duo_code'],
  ])('should name the parameter %p → %s when use_duo_code_attribute is so', async (flag, name) => {
    const { location } = await authorizeForCode(sim, {
      claims: { use_duo_code_attribute: flag },
    });
    expect([...location.searchParams.keys()]).toEqual([name, 'state']);
  });

  it('should echo a non-ASCII state unchanged and keep existing query parameters', async () => {
    const state = 'ªµºÀÿ-état-状態-🙂-' + randomHex(8);
    const redirect = 'https://app.example.test/cb?operation=verify&StateId=a%2Bb';
    const { location } = await authorizeForCode(sim, {
      state,
      claims: { redirect_uri: redirect },
    });
    expect(location.searchParams.get('state')).toBe(state);
    expect(location.searchParams.get('operation')).toBe('verify');
    expect(location.searchParams.get('StateId')).toBe('a+b');
    expect(location.href.startsWith(`${redirect}&duo_code=`)).toBe(true);
  });

  it.each([
    ['no iss and no aud (Java)', { iss: undefined, aud: undefined }, {}],
    ['the C# audience', { aud: 'AUTHORIZE' }, {}],
    ['a float exp', { exp: Date.now() / 1000 + 300 }, {}],
    ['a string exp', { exp: String(nowSec() + 300) }, {}],
    ['extra claims', { dest_app_name: 'x', jti: randomHex() }, {}],
    ['HS256', {}, { alg: 'HS256' as const }],
    ['a 16-character state', { state: 's'.repeat(16) }, {}],
    ['a 256-character redirect_uri', { redirect_uri: `https://a.test/${'r'.repeat(241)}` }, {}],
  ])('should accept a request JWT with %s', async (_name, claims, signOptions) => {
    const c = { ...claims } as Record<string, unknown>;
    if (c.aud === 'AUTHORIZE') {
      c.aud = `${sim.url}/oauth/v1/authorize`;
    }
    const state = typeof c.state === 'string' ? c.state : undefined;
    const { location } = await authorizeForCode(sim, { claims: c, signOptions, state });
    expect(location.searchParams.get('duo_code')).toBeTruthy();
  });

  it.each([
    ['a wrong signature', {}, {}, { secret: 'y'.repeat(40) }],
    ['response_type token', { response_type: 'token' }, {}, {}],
    ['another client_id in the JWT', { client_id: 'DIAAAAAAAAAAAAAAAAAA' }, {}, {}],
    ['another client_id in the query', {}, { client_id: 'DIAAAAAAAAAAAAAAAAAA' }, {}],
    ['an empty duo_uname', { duo_uname: '' }, {}, {}],
    ['a 15-character state', { state: 's'.repeat(15) }, {}, {}],
    ['a 1025-character state', { state: 's'.repeat(1025) }, {}, {}],
    ['a 257-character redirect_uri', { redirect_uri: `https://a.test/${'r'.repeat(242)}` }, {}, {}],
    ['an expired exp', { exp: nowSec() - 1 }, {}, {}],
    ['an exp two hours ahead', { exp: nowSec() + 7200 }, {}, {}],
    ['iss of another client', { iss: 'DIAAAAAAAAAAAAAAAAAA' }, {}, {}],
    ['a wrong aud', { aud: 'https://api-other.duosecurity.com' }, {}, {}],
    ['a query redirect_uri that differs', {}, { redirect_uri: 'https://evil.test/cb' }, {}],
    ['a query state that differs', {}, { state: 'q'.repeat(20) }, {}],
    ['no request parameter', {}, { request: undefined }, {}],
    ['a 15-character nonce', { nonce: 'n'.repeat(15) }, {}, {}],
  ])(
    'should show a 400 error page when the request has %s',
    async (_name, claims, query, signOptions) => {
      const { url } = await authorizeUrl(sim, {
        state: (claims as { state?: string }).state,
        claims,
        query,
        signOptions,
      });
      const res = await get(url);
      const html = await res.text();
      expect(res.status).toBe(400);
      expect(res.headers.get('content-type')).toMatch(/text\/html/);
      expect(html).toContain('id="error"');
      expect(res.headers.get('location')).toBeNull();
    },
  );
});

describe('token', () => {
  async function okTokens(res: Response) {
    expect(res.status).toBe(200);
    return (await res.json()) as Record<string, unknown>;
  }

  it('should return the token set with Duo headers and a full id_token when the code is valid', async () => {
    const nonce = `nonce-${randomHex()}`;
    const { code } = await authorizeForCode(sim, { username: 'alice', claims: { nonce } });
    const res = await exchange(sim, code);
    const body = await okTokens(res);
    expect(res.headers.get('content-type')).toBe('application/json');
    expect(res.headers.get('cache-control')).toBe('no-store');
    expect(res.headers.get('pragma')).toBe('no-cache');
    for (const h of ['strict-transport-security', 'content-security-policy', 'server', 'date']) {
      expect(res.headers.get(h)).toBeTruthy();
    }
    expect(body).toMatchObject({ expires_in: 3600, token_type: 'Bearer' });
    expect(typeof body.access_token).toBe('string');
    const { payload, protectedHeader } = await jwtVerify(
      body.id_token as string,
      new TextEncoder().encode(sim.clientSecret),
      { algorithms: ['HS512'], issuer: `${sim.url}/oauth/v1/token`, audience: sim.clientId },
    );
    expect(protectedHeader).toEqual({ alg: 'HS512', typ: 'JWT' });
    expect(payload).toMatchObject({
      sub: 'alice',
      preferred_username: 'alice',
      nonce,
      auth_result: { result: 'allow', status: 'allow', status_msg: 'Login Successful' },
      auth_context: {
        user: { name: 'alice', groups: ['admins', 'staff'] },
        application: { name: 'duo-nest demo', key: sim.clientId },
        factor: 'duo_push',
        event_type: 'authentication',
        result: 'success',
        reason: 'user_approved',
        alias: '',
        email: 'alice@example.com',
        ood_software: null,
        trusted_endpoint_status: 'unknown',
        access_device: { ip: '127.0.0.1', hostname: null },
      },
    });
    const ctx = payload.auth_context as Record<string, unknown>;
    expect(payload.exp).toBe((payload.auth_time as number) + 3600);
    expect(ctx.timestamp).toBe(payload.auth_time);
    expect(ctx.txid).toMatch(
      /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/,
    );
    expect(ctx.isotimestamp).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}\+00:00$/);
    expect((ctx.user as { key: string }).key).toMatch(/^DU[A-Z0-9]{18}$/);
  });

  it('should leave nonce out of the id_token when none was sent', async () => {
    const { code } = await authorizeForCode(sim);
    const body = await okTokens(await exchange(sim, code));
    const payload = JSON.parse(
      Buffer.from((body.id_token as string).split('.')[1], 'base64url').toString(),
    ) as Record<string, unknown>;
    expect('nonce' in payload).toBe(false);
  });

  it('should take the nonce from the query when both query and JWT carry one', async () => {
    const { code } = await authorizeForCode(sim, {
      claims: { nonce: 'jwt-nonce-0123456789' },
      query: { nonce: 'query-nonce-0123456789' },
    });
    const body = await okTokens(await exchange(sim, code));
    const payload = JSON.parse(
      Buffer.from((body.id_token as string).split('.')[1], 'base64url').toString(),
    ) as Record<string, unknown>;
    expect(payload.nonce).toBe('query-nonce-0123456789');
  });

  it.each(['multipart', 'query'] as const)(
    'should accept the exchange when the fields are sent as %s',
    async (as) => {
      const { code } = await authorizeForCode(sim);
      await okTokens(await exchange(sim, code, {}, as));
    },
  );

  it('should accept the exchange when client_id is absent (Java)', async () => {
    const { code } = await authorizeForCode(sim);
    await okTokens(await exchange(sim, code, { client_id: undefined }));
  });

  it('should accept a C#-style assertion with string exp when exchanging', async () => {
    const { code } = await authorizeForCode(sim);
    const jwt = await assertion(sim, '/oauth/v1/token', { exp: String(nowSec() + 300) });
    await okTokens(await exchange(sim, code, { client_assertion: jwt }));
  });

  it('should answer invalid_grant when a code is used twice', async () => {
    const { code } = await authorizeForCode(sim);
    await okTokens(await exchange(sim, code));
    const again = await exchange(sim, code);
    expect(again.status).toBe(400);
    expect(await again.json()).toEqual({
      error: 'invalid_grant',
      error_description: INVALID_GRANT,
    });
  });

  it('should answer invalid_grant when the code has expired', async () => {
    const short = await startSimulator({ auto: 'allow', codeTtlMs: 200 });
    try {
      const { code } = await authorizeForCode(short);
      await new Promise((r) => setTimeout(r, 300));
      const res = await exchange(short, code);
      expect(res.status).toBe(400);
      expect(await res.json()).toEqual({
        error: 'invalid_grant',
        error_description: INVALID_GRANT,
      });
    } finally {
      await short.close();
    }
  });

  it('should answer invalid_grant when the code is unknown', async () => {
    const res = await exchange(sim, randomHex(32));
    expect(res.status).toBe(400);
    expect(await res.json()).toEqual({ error: 'invalid_grant', error_description: INVALID_GRANT });
  });

  it('should answer Invalid redirect URI and burn the code when redirect_uri differs', async () => {
    const { code } = await authorizeForCode(sim);
    const other = 'https://app.example.test/other';
    const res = await exchange(sim, code, { redirect_uri: other });
    expect(res.status).toBe(400);
    expect(await res.json()).toEqual({
      error: 'invalid_grant',
      error_description: `Invalid redirect URI ${other}`,
    });
    expect((await exchange(sim, code)).status).toBe(400);
  });

  it('should answer the iss-must-match error when client_id differs from the assertion iss', async () => {
    const { code } = await authorizeForCode(sim);
    const res = await exchange(sim, code, { client_id: 'DIAAAAAAAAAAAAAAAAAA' });
    expect(res.status).toBe(400);
    expect(await res.json()).toEqual({
      error: 'invalid_client',
      error_description:
        'Invalid Client assertion: The `iss` claim must match the supplied client_id',
    });
  });

  it.each([
    ['a wrong secret', {}, { secret: 'z'.repeat(40) }],
    ['the health-check audience', { aud: 'HEALTH' }, {}],
    ['an expired exp', { exp: nowSec() - 1 }, {}],
    ['a short jti', { jti: 'short' }, {}],
    ['sub of another client', { sub: 'DIAAAAAAAAAAAAAAAAAA' }, {}],
  ])('should answer invalid_client when the assertion has %s', async (_name, overrides, opts) => {
    const { code } = await authorizeForCode(sim);
    const claims = { ...overrides } as Record<string, unknown>;
    if (claims.aud === 'HEALTH') {
      claims.aud = `${sim.url}/oauth/v1/health_check`;
    }
    const jwt = await assertion(sim, '/oauth/v1/token', claims, opts);
    const res = await exchange(sim, code, { client_assertion: jwt });
    expect(res.status).toBe(400);
    expect(await res.json()).toEqual({
      error: 'invalid_client',
      error_description: INVALID_ASSERTION,
    });
  });

  it('should answer invalid_client when the assertion jti is replayed', async () => {
    const first = await authorizeForCode(sim);
    const second = await authorizeForCode(sim);
    const jwt = await assertion(sim, '/oauth/v1/token');
    await okTokens(await exchange(sim, first.code, { client_assertion: jwt }));
    const res = await exchange(sim, second.code, { client_assertion: jwt });
    expect(res.status).toBe(400);
    expect(((await res.json()) as { error: string }).error).toBe('invalid_client');
  });

  it('should reject the exchange when client_assertion_type or grant_type is wrong', async () => {
    const { code } = await authorizeForCode(sim);
    const badType = await exchange(sim, code, { client_assertion_type: 'jwt-bearer' });
    const badGrant = await exchange(sim, code, { grant_type: 'refresh_token' });
    expect(((await badType.json()) as { error: string }).error).toBe('invalid_client');
    expect(((await badGrant.json()) as { error: string }).error).toBe('unsupported_grant_type');
    expect(ASSERTION_TYPE).toContain('jwt-bearer');
  });
});
