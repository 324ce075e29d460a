/**
 * Catalogue 2.2 (STN): state, nonce, CSRF, replay and the JWTs we send, through the REAL app over
 * HTTP against the in-process simulator (behind the recording proxy of support.ts, which captures
 * the token request exactly as the app sent it).
 *
 * Not applicable / adapted here:
 * - STN-03 "pending login consumed": pending logins are keyed by their random state, so a forged
 *   state cannot even find (let alone consume) the browser's real one; the test asserts the
 *   rejection with zero token calls and that the real pending login still completes.
 * - STN-14: the seed has no separate password step: the username posted to /login IS the primary
 *   identity. The test pins what remains: a second username (query) next to the form's is refused
 *   before any Duo call, so no client value can override the one the request JWT carries.
 * - STN-11 is not in the catalogue.
 */
import { afterAll, beforeAll, describe, expect, it, jest } from '@jest/globals';
import { jwtVerify, decodeJwt } from 'jose';
import { DuoClient, type PendingLoginStore } from '@duo-nest/core';
import { DUO_PENDING_LOGIN_STORE } from '@duo-nest/core/internal';
import { Browser } from '../support/app-harness.js';
import {
  auditEvents,
  JSON_ACCEPT,
  postLikeBrowser,
  signOnToCallback,
  uniqueUser,
} from '../support/duo-flow.js';
import { me, requestClaims, sessionId, type Stack, startStack } from '../support/security-stack.js';

jest.setTimeout(30_000);

let stack: Stack;
beforeAll(async () => {
  stack = await startStack();
});
afterAll(async () => {
  await stack?.close();
});

const tokens = () => stack.sim.control.stats().token;

async function getJson(browser: Browser, url: string) {
  const res = await browser.fetch(url, { headers: JSON_ACCEPT });
  const body = (await res.json().catch(() => ({}))) as { error?: string; message?: string };
  return { status: res.status, error: body.error, body };
}

function withParam(url: string, edit: (q: URLSearchParams) => void): string {
  const u = new URL(url);
  edit(u.searchParams);
  return u.toString();
}

describe('STN: state, nonce, CSRF, replay and outbound JWTs', () => {
  it('STN-01 should draw unique 256-bit base64url states and nonces and keep them out of the audit trail', async () => {
    const client = stack.app.app.get(DuoClient);
    const seen = new Set<string>();
    const draws = 100_000;
    for (let i = 0; i < draws; i++) {
      seen.add(client.generateState());
      seen.add(client.generateNonce());
    }
    expect(seen.size).toBe(2 * draws);
    for (const v of [client.generateState(), client.generateNonce()]) {
      expect(v).toMatch(/^[A-Za-z0-9_-]{43}$/); // 32 CSPRNG bytes; inside 22..1024 and 16..1024
    }
    const browser = new Browser();
    const username = uniqueUser('stn01');
    const { callback, authorize } = await signOnToCallback(
      browser,
      stack.app.url,
      username,
      {},
      { authorize: true },
    );
    await browser.fetch(callback);
    const { state, nonce } = requestClaims(authorize) as { state: string; nonce: string };
    const rows = JSON.stringify(await auditEvents(stack.app, { username }, { limit: 500 }));
    expect(rows).not.toContain(state);
    expect(rows).not.toContain(nonce);
  });

  it('STN-02 should reject a callback without state and call no token endpoint', async () => {
    const browser = new Browser();
    const callback = await signOnToCallback(browser, stack.app.url, uniqueUser('stn02'));
    const before = tokens();
    const r = await getJson(
      browser,
      withParam(callback, (q) => q.delete('state')),
    );
    expect(r).toMatchObject({ status: 400, error: 'invalid_request' });
    expect(tokens()).toBe(before);
  });

  it('STN-03 should reject a random state with zero token calls and leave the real sign-on usable', async () => {
    const browser = new Browser();
    const callback = await signOnToCallback(browser, stack.app.url, uniqueUser('stn03'));
    const before = tokens();
    const forged = withParam(callback, (q) => q.set('state', 'R'.repeat(43)));
    expect(await getJson(browser, forged)).toMatchObject({ status: 400, error: 'state_unknown' });
    expect(tokens()).toBe(before);
    expect((await browser.fetch(callback)).status).toBe(303);
  });

  it('STN-04 should reject the right state and code from a browser without the transaction cookie', async () => {
    const browser = new Browser();
    const callback = await signOnToCallback(browser, stack.app.url, uniqueUser('stn04'));
    const stripped = new Browser();
    const before = tokens();
    expect(await getJson(stripped, callback)).toMatchObject({
      status: 400,
      error: 'binding_mismatch',
    });
    expect(tokens()).toBe(before);
    expect(sessionId(stripped)).toBeUndefined();
  });

  it("STN-05 should not log a victim in as the attacker (login CSRF) nor touch the victim's session", async () => {
    const victim = new Browser();
    const victimName = uniqueUser('stn05-victim');
    const own = await signOnToCallback(victim, stack.app.url, victimName);
    expect((await victim.fetch(own)).status).toBe(303);
    const victimSession = sessionId(victim);

    const attacker = new Browser();
    const callback = await signOnToCallback(attacker, stack.app.url, uniqueUser('stn05-mallory'));
    const before = tokens();
    expect(await getJson(victim, callback)).toMatchObject({
      status: 400,
      error: 'binding_mismatch',
    });
    expect(tokens()).toBe(before);
    expect(sessionId(victim)).toBe(victimSession);
    expect((await me(victim, stack.app.url)).body).toMatchObject({ username: victimName });
  });

  it("STN-06 should exchange an injected code but reject the attacker's id_token for the victim's transaction", async () => {
    const victim = new Browser();
    const victimCb = await signOnToCallback(victim, stack.app.url, uniqueUser('stn06-alice'));
    const attacker = new Browser();
    const attackerCb = await signOnToCallback(attacker, stack.app.url, uniqueUser('stn06-mallory'));
    const injected = withParam(victimCb, (q) =>
      q.set('duo_code', new URL(attackerCb).searchParams.get('duo_code') ?? ''),
    );
    const before = tokens();
    const r = await getJson(victim, injected);
    expect(tokens()).toBe(before + 1);
    expect(r.status).toBe(401);
    expect(['id_token_nonce', 'id_token_username']).toContain(r.error);
    expect(sessionId(victim)).toBeUndefined();
  });

  it('STN-07 should refuse the exact callback URL replayed after success without a token call', async () => {
    const browser = new Browser();
    const callback = await signOnToCallback(browser, stack.app.url, uniqueUser('stn07'));
    expect((await browser.fetch(callback)).status).toBe(303);
    const first = sessionId(browser);
    const before = tokens();
    expect(await getJson(browser, callback)).toMatchObject({ status: 400, error: 'state_unknown' });
    expect(tokens()).toBe(before);
    expect(sessionId(browser)).toBe(first);
  });

  it('STN-08 should refuse a replay after a failed attempt (the state was deleted before comparing)', async () => {
    const browser = new Browser();
    const callback = await signOnToCallback(browser, stack.app.url, uniqueUser('stn08'));
    stack.sim.control.setFaults({ token: 'wrong_nonce', once: true });
    expect((await getJson(browser, callback)).status).toBe(401);
    const before = tokens();
    expect(await getJson(browser, callback)).toMatchObject({ status: 400, error: 'state_unknown' });
    expect(tokens()).toBe(before);
  });

  it('STN-09 should let exactly one of two simultaneous identical callbacks reach the token endpoint', async () => {
    const browser = new Browser();
    const callback = await signOnToCallback(browser, stack.app.url, uniqueUser('stn09'));
    const cookie = [...browser.cookies].map(([k, v]) => `${k}=${v}`).join('; ');
    const before = tokens();
    const answers = await Promise.all(
      [0, 1].map(() => fetch(callback, { headers: { cookie, ...JSON_ACCEPT }, redirect: 'manual' })),
    );
    expect(answers.map((a) => a.status).sort()).toEqual([303, 400]);
    expect(tokens()).toBe(before + 1);
  });

  it('STN-10 should reject a callback after the transaction TTL with state_expired', async () => {
    const browser = new Browser();
    const callback = await signOnToCallback(browser, stack.app.url, uniqueUser('stn10'));
    const state = new URL(callback).searchParams.get('state') ?? '';
    // Age the pending record past its TTL (the store's clock, not the test's, decides).
    const store = stack.app.app.get<PendingLoginStore>(DUO_PENDING_LOGIN_STORE);
    const taken = await store.take(state);
    expect(taken.status).toBe('ok');
    if (taken.status !== 'ok') {
      return;
    }
    const now = Date.now();
    await store.put({ ...taken.login, createdAt: now - 700_000, expiresAt: now - 1_000 }, now);
    const before = tokens();
    const r = await getJson(browser, callback);
    expect(r).toMatchObject({ status: 400, error: 'state_expired' });
    expect(r.body.message).toMatch(/start again/);
    expect(tokens()).toBe(before);
  });

  it('STN-12 should answer an error callback with "not completed", encode the description and consume the transaction', async () => {
    const browser = new Browser();
    const username = uniqueUser('stn12');
    const callback = await signOnToCallback(browser, stack.app.url, username);
    const state = new URL(callback).searchParams.get('state') ?? '';
    const script = '<script>alert(1)</script>';
    const errorUrl = `${stack.app.url}/auth/duo/callback?error=access_denied&error_description=${encodeURIComponent(script)}&state=${state}`;
    const before = tokens();
    const page = await browser.fetch(errorUrl);
    const html = await page.text();
    expect(page.status).toBe(401);
    expect(html).not.toContain(script);
    expect(page.headers.get('content-security-policy')).toBeTruthy();
    expect(tokens()).toBe(before);
    const rows = await auditEvents(stack.app, { username }, { limit: 500 });
    expect(rows.find((r) => r.type === 'mfa_denied')?.reason).toBe('callback_error');
    expect(JSON.stringify(rows)).not.toContain('<script>');
    expect(await getJson(browser, callback)).toMatchObject({ status: 400, error: 'state_unknown' });
  });

  it.each([
    ['both duo_code and code', (q: URLSearchParams) => q.set('code', q.get('duo_code') ?? '')],
    [
      'only code (use_duo_code_attribute is true)',
      (q: URLSearchParams) => {
        q.set('code', q.get('duo_code') ?? '');
        q.delete('duo_code');
      },
    ],
  ])('STN-13 should refuse a callback with %s before any token call', async (_w, edit) => {
    const browser = new Browser();
    const callback = await signOnToCallback(browser, stack.app.url, uniqueUser('stn13'));
    const before = tokens();
    expect(await getJson(browser, withParam(callback, edit))).toMatchObject({
      status: 400,
      error: 'invalid_request',
    });
    expect(tokens()).toBe(before);
  });

  it('STN-14 should refuse a second, client-supplied username before any Duo call', async () => {
    const stats = stack.sim.control.stats();
    const res = await postLikeBrowser(
      new Browser(),
      stack.app.url,
      '/login?username=alice',
      { username: 'mallory' },
      JSON_ACCEPT,
    );
    expect(res.status).toBe(400);
    const after = stack.sim.control.stats();
    expect(after.authorize + after.health_check).toBe(stats.authorize + stats.health_check);
  });

  it('STN-15 should send a request JWT that verifies as HS512 and carries exactly the expected claims', async () => {
    const browser = new Browser();
    const username = uniqueUser('stn15&x=1');
    const start = await postLikeBrowser(browser, stack.app.url, '/login', { username });
    const authorize = start.headers.get('location') ?? '';
    const url = new URL(authorize);
    expect([...url.searchParams.keys()].sort()).toEqual(['client_id', 'request', 'response_type']);
    const secret = new TextEncoder().encode(stack.sim.clientSecret);
    const { payload, protectedHeader } = await jwtVerify(
      url.searchParams.get('request') ?? '',
      secret,
      {
        algorithms: ['HS512'],
      },
    );
    expect(protectedHeader).toEqual({ alg: 'HS512', typ: 'JWT' });
    const now = Date.now() / 1000;
    expect(payload).toMatchObject({
      iss: stack.sim.clientId,
      client_id: stack.sim.clientId,
      aud: stack.proxy.url,
      redirect_uri: `${stack.app.url}/auth/duo/callback`,
      response_type: 'code',
      scope: 'openid',
      duo_uname: username,
      use_duo_code_attribute: true,
    });
    expect((payload.exp ?? 0) - now).toBeLessThanOrEqual(300);
    expect(Object.keys(payload).sort()).toEqual(
      [
        'aud',
        'client_id',
        'duo_uname',
        'exp',
        'iss',
        'nonce',
        'redirect_uri',
        'response_type',
        'scope',
        'state',
        'use_duo_code_attribute',
      ].sort(),
    );
    // State and nonce are the stored ones: the callback with this state completes the sign-on.
    const duo = await browser.fetch(authorize);
    const callback = new URL(duo.headers.get('location') ?? '');
    expect(callback.searchParams.get('state')).toBe(payload.state);
    expect(callback.searchParams.has('x')).toBe(false);
    expect((await browser.fetch(callback.toString())).status).toBe(303);
  });

  it('STN-16 should POST the token request as a form with an HS512 client_assertion and a fresh jti', async () => {
    const seenJti = new Set<string>();
    const from = stack.proxy.tokenRequests.length;
    for (let i = 0; i < 3; i++) {
      const browser = new Browser();
      const callback = await signOnToCallback(browser, stack.app.url, uniqueUser('stn16'));
      expect((await browser.fetch(callback)).status).toBe(303);
    }
    const requests = stack.proxy.tokenRequests.slice(from);
    expect(requests).toHaveLength(3);
    const secret = new TextEncoder().encode(stack.sim.clientSecret);
    for (const r of requests) {
      expect(r.method).toBe('POST');
      expect(r.url).toBe('/oauth/v1/token');
      expect(r.form.get('grant_type')).toBe('authorization_code');
      expect(r.form.get('redirect_uri')).toBe(`${stack.app.url}/auth/duo/callback`);
      expect(r.form.get('client_assertion_type')).toBe(
        'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
      );
      const assertion = r.form.get('client_assertion') ?? '';
      const { payload, protectedHeader } = await jwtVerify(assertion, secret, {
        algorithms: ['HS512'],
      });
      expect(protectedHeader.alg).toBe('HS512');
      expect(payload).toMatchObject({
        iss: stack.sim.clientId,
        sub: stack.sim.clientId,
        aud: `${stack.proxy.url}/oauth/v1/token`,
      });
      expect((payload.exp ?? 0) - Date.now() / 1000).toBeLessThanOrEqual(300);
      // Pinned: no iat (optional in OIDC Core 9; the protocol vector V2 has none); exp bounds the life.
      expect(payload.iat).toBeUndefined();
      seenJti.add(String(decodeJwt(assertion).jti));
    }
    expect(seenJti.size).toBe(3);
  });

  it('STN-17 should keep state opaque (data server-side) and refuse a state with one character changed', async () => {
    const browser = new Browser();
    const { callback, authorize } = await signOnToCallback(
      browser,
      stack.app.url,
      uniqueUser('stn17'),
      {},
      {
        form: {
          returnTo: '/me',
        },
        authorize: true,
      },
    );
    const state = String(requestClaims(authorize).state);
    expect(state).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(Buffer.from(state, 'base64url').toString('latin1')).not.toContain('/me');
    const flipped = state.slice(0, -1) + (state.endsWith('A') ? 'B' : 'A');
    const before = tokens();
    expect(
      await getJson(
        browser,
        withParam(callback, (q) => q.set('state', flipped)),
      ),
    ).toMatchObject({ status: 400, error: 'state_unknown' });
    expect(tokens()).toBe(before);
  });
});
