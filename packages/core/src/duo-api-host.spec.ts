// The API host is normalised once: an explicit default port (:443, or :80 for the plain-HTTP test
// mode) never reaches a URL, an aud or the expected iss, because fetch drops it from the Host.
import { describe, expect, it } from '@jest/globals';
import { decodeJwt, SignJWT } from 'jose';
import { DuoClient } from './duo.client.js';
import { parseApiHost } from './duo-client-options.js';

const CLIENT_ID = 'DIABCDEFGHIJ12345678';
const SECRET = 'abcdefghijklmnopqrstuvwxyz0123456789ABCD';
const USER = 'alice';
const CODE = 'duo-code-0123456789abcdefghijklmnop';
const NONCE = 'n'.repeat(16) + 'once-value-0123456789';
const BARE = 'https://api-12345678.duosecurity.com';

interface Seen {
  url: string;
  form: URLSearchParams;
}

/** A fetch that records each call and answers as Duo would for an origin without a port. */
function fakeDuo(seen: Seen[]): typeof fetch {
  const fake = async (url: string, init: RequestInit): Promise<Response> => {
    // The client posts a URLSearchParams body to a string URL.
    const form = new URLSearchParams(init.body as URLSearchParams);
    seen.push({ url, form });
    if (url.endsWith('/oauth/v1/health_check')) {
      return Response.json({ stat: 'OK', response: { timestamp: Math.floor(Date.now() / 1000) } });
    }
    const now = Math.floor(Date.now() / 1000);
    const idToken = await new SignJWT({
      preferred_username: USER,
      nonce: NONCE,
      auth_time: now,
      auth_result: { result: 'allow', status: 'allow', status_msg: 'Login Successful' },
      auth_context: {
        txid: '4a1c2f4e-7d7c-4a4f-9f47-1d0a0b9c1e11',
        timestamp: now,
        user: { name: USER, key: 'DUABCDEFGHIJKLMNOPQR', groups: [] },
        application: { name: 'Web SDK', key: CLIENT_ID },
        factor: 'duo_push',
        event_type: 'authentication',
        result: 'success',
        reason: 'user_approved',
      },
    })
      .setProtectedHeader({ alg: 'HS512', typ: 'JWT' })
      .setIssuer(`${BARE}/oauth/v1/token`) // Duo's name carries no port
      .setAudience(CLIENT_ID)
      .setSubject(USER)
      .setIssuedAt(now)
      .setExpirationTime(now + 300)
      .sign(new TextEncoder().encode(SECRET));
    return Response.json({
      id_token: idToken,
      access_token: 'x',
      expires_in: 3600,
      token_type: 'Bearer',
    });
  };
  return fake as unknown as typeof fetch;
}

function client(apiHost: string, seen: Seen[], allowInsecureHttp = false): DuoClient {
  return new DuoClient({
    clientId: CLIENT_ID,
    clientSecret: SECRET,
    apiHost,
    redirectUri: 'https://app.example.com/auth/duo/callback',
    allowInsecureHttp,
    proxy: false,
    fetch: fakeDuo(seen),
  });
}

describe(parseApiHost.name, () => {
  it.each([
    ['api-12345678.duosecurity.com:443', false, BARE],
    ['api-12345678.duosecurity.com', false, BARE],
    // Verbatim but for the default port: the SDKs' vectors keep the name's case in aud.
    ['API-12345678.DuoSecurity.com:443', false, 'https://API-12345678.DuoSecurity.com'],
    ['api-12345678.duosecurity.com:8443', false, `${BARE}:8443`],
    ['http://127.0.0.1:80', true, 'http://127.0.0.1'],
    ['http://127.0.0.1:4000', true, 'http://127.0.0.1:4000'],
    ['https://localhost:443', true, 'https://localhost'],
  ])('should turn %s into one canonical origin', (value, insecure, origin) => {
    expect(parseApiHost(value, insecure)).toEqual({ origin });
  });

  it('should still refuse a port above 65535 when it is written explicitly', () => {
    expect(parseApiHost('api-12345678.duosecurity.com:65536', false)).toHaveProperty('error');
  });
});

describe('DuoClient with an API host written with :443', () => {
  it('should build the authorize URL and the request aud without the port', async () => {
    const duo = client('api-12345678.duosecurity.com:443', []);
    const url = new URL(await duo.createAuthUrl(USER, 's'.repeat(43), { nonce: NONCE }));
    expect(url.origin + url.pathname).toBe(`${BARE}/oauth/v1/authorize`);
    expect(decodeJwt(url.searchParams.get('request')!).aud).toBe(BARE);
    expect(duo.issuer).toBe(`${BARE}/oauth/v1/token`);
    expect(duo.options.apiOrigin).toBe(BARE);
  });

  it('should call both endpoints with assertions whose aud carries no port', async () => {
    const seen: Seen[] = [];
    const duo = client('api-12345678.duosecurity.com:443', seen);
    await duo.healthCheck();
    const result = await duo.exchangeAuthorizationCode(CODE, { username: USER, nonce: NONCE });
    expect(result.tokens.iss).toBe(`${BARE}/oauth/v1/token`);
    expect(seen.map((s) => s.url)).toEqual([
      `${BARE}/oauth/v1/health_check`,
      `${BARE}/oauth/v1/token`,
    ]);
    for (const call of seen) {
      expect(decodeJwt(call.form.get('client_assertion')!).aud).toBe(call.url);
    }
  });

  it('should accept the id_token Duo signs with the portless issuer', async () => {
    const duo = client('api-12345678.duosecurity.com:443', []);
    await expect(
      duo.exchangeAuthorizationCode(CODE, { username: USER, nonce: NONCE }),
    ).resolves.toMatchObject({ tokens: { preferred_username: USER } });
  });

  it('should drop :80 too when the plain-HTTP test mode names it', async () => {
    const seen: Seen[] = [];
    const duo = client('http://127.0.0.1:80', seen, true);
    await duo.healthCheck();
    expect(seen[0].url).toBe('http://127.0.0.1/oauth/v1/health_check');
    expect(decodeJwt(seen[0].form.get('client_assertion')!).aud).toBe(
      'http://127.0.0.1/oauth/v1/health_check',
    );
    expect(duo.issuer).toBe('http://127.0.0.1/oauth/v1/token');
  });
});
