import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { DuoConfigError, DuoModule } from '@duo-nest/core';
import { normalizeDuoModuleOptions } from '@duo-nest/core/internal';
import type { RunningSimulator } from '@duo-nest/simulator';
import { validateEnv } from '../src/config/env.validation.js';
import {
  Browser,
  freePort,
  location,
  simulatorEnv,
  startApp,
  type RunningApp,
} from './support/app-harness.js';
import { startSimAndApp, type SimAndApp } from './support/sim-and-app.js';
import { auditEvents, uniqueUser } from './support/duo-flow.js';

// Item 1 of [reach]: a single-page front end starts the sign-on with fetch (JSON), sends the
// browser to Duo itself, lands on its own route after the callback (success, or ?error=<code>)
// and reads the session from GET /api/session. Real app, real simulator over HTTP.
let sim: RunningSimulator;
let app: RunningApp; // DUO_FRONTEND_URL=/app/
let booted: SimAndApp;
let plain: RunningApp; // no front end configured
const JSON_HEADERS = { accept: 'application/json', 'content-type': 'application/json' };

beforeAll(async () => {
  booted = await startSimAndApp({ env: { DUO_FRONTEND_URL: '/app/' } });
  ({ sim, app } = booted);
  plain = await startApp(simulatorEnv(sim));
}, 30_000);

afterAll(async () => {
  await plain?.close();
  await booted?.close();
});

/** What a front end does first: GET /api/csrf (sets the CSRF cookie, gives the token). */
async function csrfOf(browser: Browser, base: string): Promise<string> {
  const res = await browser.fetch(`${base}/api/csrf`, { headers: { accept: 'application/json' } });
  expect(res.status).toBe(200);
  const { csrfToken } = (await res.json()) as { csrfToken: string };
  expect(csrfToken).toMatch(/^[A-Za-z0-9_-]{43}$/);
  return csrfToken;
}

/** The front end's start: fetch POST /login with JSON, CSRF in the header. */
async function jsonStart(
  browser: Browser,
  base: string,
  body: Record<string, unknown>,
  headers: Record<string, string> = {},
): Promise<Response> {
  const token = await csrfOf(browser, base);
  return browser.fetch(`${base}/login`, {
    method: 'POST',
    headers: { ...JSON_HEADERS, 'x-csrf-token': token, origin: base, ...headers },
    body: JSON.stringify(body),
  });
}

describe('JSON sign-on start', () => {
  it('should answer 200 { authorizeUrl } with the binding cookie, then land on the front end and show the session', async () => {
    const browser = new Browser();
    const username = uniqueUser('spa');
    const start = await jsonStart(browser, app.url, { username });
    expect(start.status).toBe(200);
    expect(start.headers.get('location')).toBeNull();
    expect(start.headers.get('cache-control')).toBe('no-store');
    expect(start.headers.get('vary')).toMatch(/Accept/);
    const body = (await start.json()) as { authorizeUrl: string };
    expect(Object.keys(body)).toEqual(['authorizeUrl']);
    expect(body.authorizeUrl.startsWith(`${sim.url}/oauth/v1/authorize?`)).toBe(true);
    expect([...browser.cookies.keys()].some((k) => /duo_binding$/.test(k))).toBe(true);

    // location.assign(authorizeUrl): Duo approves (auto) and sends the browser back.
    const duo = await browser.fetch(body.authorizeUrl);
    expect(duo.status).toBe(302);
    const callback = await browser.fetch(location(duo));
    expect(callback.status).toBe(303);
    expect(location(callback)).toBe('/app/');

    const session = await browser.fetch(`${app.url}/api/session`, {
      headers: { accept: 'application/json' },
    });
    expect(session.status).toBe(200);
    const facts = (await session.json()) as Record<string, unknown>;
    expect(facts).toMatchObject({ signedIn: true, username, mfa: true, failOpen: false });
    expect(typeof facts.txid).toBe('string');
    // The same facts as /me.
    const me = await browser.fetch(`${app.url}/me`, { headers: { accept: 'application/json' } });
    const { signedIn: _s, failOpen: _f, ...rest } = facts;
    expect(await me.json()).toEqual(rest);
    expect(JSON.stringify(facts)).not.toMatch(/token|duo_code|state/i);
  });

  it('should keep a same-origin returnTo of the JSON start as the landing route', async () => {
    const browser = new Browser();
    const start = await jsonStart(browser, app.url, {
      username: uniqueUser('spa'),
      returnTo: '/app/orders?id=7',
    });
    const { authorizeUrl } = (await start.json()) as { authorizeUrl: string };
    const callback = await browser.fetch(location(await browser.fetch(authorizeUrl)));
    expect(location(callback)).toBe('/app/orders?id=7');
  });

  it('should keep the 303 for an HTML form, a navigation, or Accept */*', async () => {
    for (const accept of ['text/html', 'text/html,application/xhtml+xml,*/*;q=0.8', '*/*']) {
      const browser = new Browser();
      const start = await jsonStart(browser, app.url, { username: uniqueUser('html') }, { accept });
      expect(start.status).toBe(303);
      expect(location(start).startsWith(`${sim.url}/oauth/v1/authorize?`)).toBe(true);
    }
  });

  it('should answer JSON without a front end too, landing on the default page', async () => {
    const browser = new Browser();
    const start = await jsonStart(browser, plain.url, { username: uniqueUser('spa') });
    expect(start.status).toBe(200);
    const { authorizeUrl } = (await start.json()) as { authorizeUrl: string };
    const callback = await browser.fetch(location(await browser.fetch(authorizeUrl)));
    expect(location(callback)).toBe('/result');
  });

  it.each([
    ['no X-CSRF-Token header', { 'x-csrf-token': '' }],
    ['a wrong X-CSRF-Token', { 'x-csrf-token': 'A'.repeat(43) }],
    ['another origin', { origin: 'https://evil.example' }],
  ])(
    'should refuse a JSON start with %s: 403 JSON csrf_failed, no binding cookie, no Duo URL',
    async (_name, headers) => {
      const browser = new Browser();
      const start = await jsonStart(browser, app.url, { username: uniqueUser('csrf') }, headers);
      expect(start.status).toBe(403);
      expect(start.headers.get('content-type')).toMatch(/application\/json/);
      expect(await start.json()).toEqual({
        statusCode: 403,
        error: 'csrf_failed',
        message: expect.any(String),
      });
      expect([...browser.cookies.keys()].some((k) => /duo_binding$/.test(k))).toBe(false);
    },
  );

  it('should refuse a malformed JSON start with the library JSON (400 invalid_request)', async () => {
    const browser = new Browser();
    const start = await jsonStart(browser, app.url, { username: ['a', 'b'] });
    expect(start.status).toBe(400);
    expect(await start.json()).toMatchObject({ error: 'invalid_request' });
  });

  it('should answer 401 JSON mfa_required from /api/session without a session', async () => {
    const browser = new Browser();
    for (const accept of ['application/json', '*/*']) {
      const res = await browser.fetch(`${app.url}/api/session`, { headers: { accept } });
      expect(res.status).toBe(401);
      expect(await res.json()).toMatchObject({ statusCode: 401, error: 'mfa_required' });
    }
  });
});

describe('callback failures land on the front end with ?error=<code> only', () => {
  /** Asserts a landing on /app/?error=<code> that carries nothing else. */
  function expectErrorLanding(res: Response, code: string): void {
    expect(res.status).toBe(303);
    const target = location(res);
    expect(target).toBe(`/app/?error=${code}`);
    expect(res.headers.get('cache-control')).toBe('no-store');
  }

  it('should send an unknown state to ?error=state_unknown', async () => {
    const browser = new Browser();
    const res = await browser.fetch(
      `${app.url}/auth/duo/callback?state=${'s'.repeat(36)}&duo_code=${'c'.repeat(30)}`,
    );
    expectErrorLanding(res, 'state_unknown');
    expect(location(res)).not.toMatch(/sss|ccc/);
  });

  it('should send a malformed callback to ?error=invalid_request', async () => {
    const res = await new Browser().fetch(`${app.url}/auth/duo/callback?state=x&evil=1`);
    expectErrorLanding(res, 'invalid_request');
  });

  it('should send a denial (Duo error redirect) to ?error=callback_error and record it', async () => {
    const browser = new Browser();
    const username = uniqueUser('deny');
    sim.control.nextOutcome({ username, outcome: 'error_redirect' });
    const start = await jsonStart(browser, app.url, { username });
    const { authorizeUrl } = (await start.json()) as { authorizeUrl: string };
    const duo = await browser.fetch(authorizeUrl);
    const back = location(duo);
    const state = new URL(back).searchParams.get('state')!;
    const res = await browser.fetch(back);
    expectErrorLanding(res, 'callback_error');
    expect(location(res)).not.toContain(state);
    const events = await auditEvents(app, { username });
    expect(events.map((e) => e.type)).toContain('mfa_denied');
    const session = await browser.fetch(`${app.url}/api/session`, {
      headers: { accept: 'application/json' },
    });
    expect(session.status).toBe(401);
  });

  it('should send a callback from another browser to ?error=binding_mismatch, with no token or code in the URL', async () => {
    const starter = new Browser();
    const start = await jsonStart(starter, app.url, { username: uniqueUser('bind') });
    const { authorizeUrl } = (await start.json()) as { authorizeUrl: string };
    const back = location(await starter.fetch(authorizeUrl));
    const code = new URL(back).searchParams.get('duo_code')!;
    const res = await new Browser().fetch(back);
    expectErrorLanding(res, 'binding_mismatch');
    expect(location(res)).not.toContain(code);
    expect(await res.text()).not.toContain(code);
  });

  it('should keep the HTML error page when no front end is configured', async () => {
    const res = await new Browser().fetch(
      `${plain.url}/auth/duo/callback?state=${'s'.repeat(36)}&duo_code=abc`,
    );
    expect(res.status).toBe(400);
    expect(res.headers.get('location')).toBeNull();
  });
});

describe('fail-open in JSON', () => {
  let open: RunningApp;
  beforeAll(async () => {
    // Duo unreachable (a closed port), failmode open.
    const port = await freePort();
    open = await startApp({
      ...simulatorEnv(sim),
      DUO_API_HOST: `http://127.0.0.1:${port}`,
      DUO_FAILMODE: 'open',
      DUO_TIMEOUT_MS: '1000',
      DUO_FRONTEND_URL: '/app/',
    });
  }, 30_000);
  afterAll(async () => {
    await open?.close();
  });

  it('should answer 200 { signedIn: true, mfa: false, failOpen: true }, never a redirect', async () => {
    const browser = new Browser();
    const username = uniqueUser('open');
    const start = await jsonStart(browser, open.url, { username });
    expect(start.status).toBe(200);
    expect(start.headers.get('location')).toBeNull();
    expect(await start.json()).toEqual({
      signedIn: true,
      mfa: false,
      failOpen: true,
      username,
      returnTo: '/app/',
    });
    const session = await browser.fetch(`${open.url}/api/session`, {
      headers: { accept: 'application/json' },
    });
    expect(await session.json()).toMatchObject({ username, mfa: false, failOpen: true });
    // /me still refuses a session without MFA.
    const me = await browser.fetch(`${open.url}/me`, { headers: { accept: 'application/json' } });
    expect(me.status).toBe(403);
  });
});

describe('front-end route configuration', () => {
  const base = {
    clientId: 'DIXXXXXXXXXXXXXXXXXX',
    clientSecret: 'X'.repeat(40),
    apiHost: 'api-12345678.duosecurity.com',
    redirectUri: 'https://app.example/auth/duo/callback',
    sessionSecret: 's'.repeat(40),
  };

  it.each([
    'https://evil.example/app',
    '//evil.example/app',
    '/\\evil.example',
    '/app/#/x',
    '/app/../admin',
    'app/',
    '/%2f%2fevil.example',
  ])('should refuse frontEnd.successUrl %j at boot', (successUrl) => {
    expect(() => normalizeDuoModuleOptions({ ...base, frontEnd: { successUrl } })).toThrow(
      DuoConfigError,
    );
  });

  it('should accept same-origin paths and default errorUrl to successUrl', () => {
    const o = normalizeDuoModuleOptions({ ...base, frontEnd: { successUrl: '/app/' } });
    expect(o.frontEnd).toEqual({ successUrl: '/app/', errorUrl: '/app/' });
    expect(DuoModule).toBeDefined();
  });

  it('should refuse DUO_FRONTEND_URL on another origin than PUBLIC_URL', () => {
    const env = {
      DUO_CLIENT_ID: 'DIXXXXXXXXXXXXXXXXXX',
      DUO_CLIENT_SECRET: 'X'.repeat(40),
      DUO_API_HOST: 'api-12345678.duosecurity.com',
      PUBLIC_URL: 'http://localhost:3000',
    };
    expect(() => validateEnv({ ...env, DUO_FRONTEND_URL: 'https://evil.example/app/' })).toThrow(
      /DUO_FRONTEND_URL/,
    );
    expect(validateEnv({ ...env, DUO_FRONTEND_URL: 'http://localhost:3000/app/' })).toMatchObject({
      DUO_FRONTEND_URL: '/app/',
    });
  });
});
