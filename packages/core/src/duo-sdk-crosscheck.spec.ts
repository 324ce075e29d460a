import { beforeAll, describe, expect, it } from '@jest/globals';
import { Client as OfficialClient } from '@duosecurity/duo_universal';
import { decodeJwt, decodeProtectedHeader, SignJWT, type JWTPayload } from 'jose';
import { DuoClient } from './duo.client.js';

// Cross-check with Duo's official Node SDK (3.0.0): same claims for the same inputs, and the same
// verdict on a shared table of id_tokens, except where ours is deliberately stricter (said per row).
const CLIENT_ID = 'DIABCDEFGHIJ12345678';
const SECRET = 'abcdefghijklmnopqrstuvwxyz0123456789ABCD';
const KEY = new TextEncoder().encode(SECRET);
const HOST = 'api-1a2b3c4d.duosecurity.com';
const REDIRECT = 'https://app.example.org/auth/duo/callback';
const USER = 'alice';
const NONCE = 'abcdefghijklmnopqrstuvwxyzabcdef';
const CODE = 'duo-code-0123456789abcdefghijklmnop';

interface Captured {
  url: string;
  form: URLSearchParams;
}

/** The official SDK with its axios adapter replaced: it answers `respond` and records requests. */
function officialClient(respond: () => unknown, captured: Captured[] = []): OfficialClient {
  const sdk = new OfficialClient({
    clientId: CLIENT_ID,
    clientSecret: SECRET,
    apiHost: HOST,
    redirectUrl: REDIRECT,
  });
  const axios = (sdk as unknown as { axios: { defaults: { adapter: unknown } } }).axios;
  axios.defaults.adapter = (config: { url: string; data: string }) => {
    captured.push({ url: config.url, form: new URLSearchParams(String(config.data)) });
    return Promise.resolve({
      data: respond(),
      status: 200,
      statusText: 'OK',
      headers: {},
      config,
      request: {},
    });
  };
  return sdk;
}

function ourClient(): DuoClient {
  return new DuoClient({
    clientId: CLIENT_ID,
    clientSecret: SECRET,
    apiHost: HOST,
    redirectUri: REDIRECT,
  });
}

function without<T extends object>(o: T, ...keys: string[]): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([k]) => !keys.includes(k))) as Partial<T>;
}

describe('cross-check with @duosecurity/duo_universal', () => {
  it('should put the same claims in the request JWT for the same inputs', async () => {
    const state = 'deadbeefdeadbeefdeadbeefdeadbeefdead';
    const theirs = new URL(await officialClient(() => ({})).createAuthUrl(USER, state));
    const ours = new URL(await ourClient().createAuthUrl(USER, state));
    const theirClaims = decodeJwt(theirs.searchParams.get('request')!);
    const ourClaims = decodeJwt(ours.searchParams.get('request')!);
    expect(without(ourClaims, 'exp')).toEqual(without(theirClaims, 'exp'));
    expect(Math.abs(ourClaims.exp! - theirClaims.exp!)).toBeLessThanOrEqual(2);
    expect(ours.origin + ours.pathname).toBe(theirs.origin + theirs.pathname);
    // Differences by design: the SDK also repeats redirect_uri and scope in the query (Duo reads the
    // signed JWT), and its header lacks typ.
    expect([...ours.searchParams.keys()]).toEqual(['response_type', 'client_id', 'request']);
    expect(decodeProtectedHeader(ours.searchParams.get('request')!)).toEqual({
      alg: 'HS512',
      typ: 'JWT',
    });
  });

  it('should put the same claims in the client assertion, except iat which the SDK adds', async () => {
    const captured: Captured[] = [];
    const sdk = officialClient(() => ({ stat: 'OK', response: { timestamp: 1 } }), captured);
    await sdk.healthCheck();
    const theirs = decodeJwt(captured[0].form.get('client_assertion')!);

    let ourForm = new URLSearchParams();
    const ours = new DuoClient({
      clientId: CLIENT_ID,
      clientSecret: SECRET,
      apiHost: HOST,
      redirectUri: REDIRECT,
      fetch: (_url, init) => {
        ourForm = init?.body as URLSearchParams;
        return Promise.resolve(
          new Response(JSON.stringify({ stat: 'OK', response: { timestamp: 1 } })),
        );
      },
    });
    await ours.healthCheck();
    const mine = decodeJwt(ourForm.get('client_assertion')!);
    expect(without(mine, 'exp', 'jti')).toEqual(without(theirs, 'exp', 'jti', 'iat'));
    expect(Math.abs(mine.exp! - theirs.exp!)).toBeLessThanOrEqual(2);
    expect(mine.jti).not.toBe(theirs.jti);
    expect([...ourForm.keys()].sort()).toEqual([...captured[0].form.keys()].sort());
  });

  const now = () => Math.floor(Date.now() / 1000);
  const base = (): JWTPayload => ({
    iss: `https://${HOST}/oauth/v1/token`,
    sub: USER,
    aud: CLIENT_ID,
    exp: now() + 300,
    iat: now(),
    auth_time: now(),
    auth_result: { result: 'allow', status: 'allow', status_msg: 'Login Successful' },
    auth_context: { txid: 'tx-1', factor: 'duo_push', result: 'success', reason: 'user_approved' },
    preferred_username: USER,
    nonce: NONCE,
  });
  const sign = (claims: JWTPayload, alg = 'HS512', key = KEY) =>
    new SignJWT(claims).setProtectedHeader({ alg, typ: 'JWT' }).sign(key);
  const patch = (p: Record<string, unknown>) => () => {
    const c: Record<string, unknown> = { ...base() };
    for (const [k, v] of Object.entries(p)) {
      if (v === undefined) {
        delete c[k];
      } else {
        c[k] = v;
      }
    }
    return sign(c);
  };

  // [case, token, SDK accepts?, ours accepts?, nonce we expect, why ours differs]
  const table: [string, () => Promise<string>, boolean, boolean, string | undefined, string?][] = [
    ['a valid token', patch({}), true, true, NONCE],
    [
      'exp 30 s ago (inside leeway)',
      patch({ exp: now() - 30, iat: now() - 300 }),
      true,
      true,
      NONCE,
    ],
    ['exp 120 s ago', patch({ exp: now() - 120, iat: now() - 400 }), false, false, NONCE],
    [
      'a wrong secret',
      () => sign(base(), 'HS512', new TextEncoder().encode('x'.repeat(40))),
      false,
      false,
      NONCE,
    ],
    ['HS256', () => sign(base(), 'HS256'), false, false, NONCE],
    ['a wrong issuer', patch({ iss: `https://${HOST}` }), false, false, NONCE],
    ['a wrong audience', patch({ aud: 'DIZZZZZZZZZZZZZZZZZZ' }), false, false, NONCE],
    ['no exp', patch({ exp: undefined }), false, false, NONCE],
    ['no iat', patch({ iat: undefined }), false, false, NONCE],
    ['nbf in the future', patch({ nbf: now() + 300 }), false, false, NONCE],
    ['a wrong username', patch({ preferred_username: 'mallory' }), false, false, NONCE],
    ['a wrong nonce', patch({ nonce: 'z'.repeat(32) }), false, false, NONCE],
    ['no nonce when one was sent', patch({ nonce: undefined }), false, false, NONCE],
    [
      'iat 300 s in the future',
      patch({ iat: now() + 300 }),
      true,
      false,
      NONCE,
      'jose does not check a future iat; Python/Go/Java/PHP do',
    ],
    [
      'an audience array with an extra value',
      patch({ aud: [CLIENT_ID, 'other'] }),
      true,
      false,
      NONCE,
      'OIDC: reject untrusted audiences',
    ],
    [
      'a nonce when none was sent',
      patch({}),
      true,
      false,
      undefined,
      'an unexpected nonce means a token of another transaction',
    ],
    [
      'auth_result deny',
      patch({ auth_result: { result: 'deny', status: 'deny' } }),
      true,
      false,
      NONCE,
      'defence in depth (protocol §8.3.6)',
    ],
    [
      'no auth_context',
      patch({ auth_context: undefined }),
      true,
      false,
      NONCE,
      'the MFA result schema requires it',
    ],
    ['no sub', patch({ sub: undefined }), true, false, NONCE, 'the MFA result schema requires it'],
  ];

  let verdicts: Map<string, { sdk: boolean; ours: boolean }>;
  beforeAll(async () => {
    verdicts = new Map();
    for (const [name, token, , , nonce] of table) {
      const idToken = await token();
      const body = { id_token: idToken, access_token: 'a', expires_in: 3600, token_type: 'Bearer' };
      const sdk = await officialClient(() => body)
        .exchangeAuthorizationCodeFor2FAResult(CODE, USER, nonce ?? null)
        .then(
          () => true,
          () => false,
        );
      const ours = await ourClient()
        .verifyIdToken(idToken, { username: USER, nonce: nonce as string })
        .then(
          () => true,
          () => false,
        );
      verdicts.set(name, { sdk, ours });
    }
  });

  it.each(table)('should judge %s as the table says', (name, _t, sdkAccepts, oursAccepts) => {
    expect(verdicts.get(name)).toEqual({ sdk: sdkAccepts, ours: oursAccepts });
  });
});
