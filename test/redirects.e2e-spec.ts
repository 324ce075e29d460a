import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { AuditRepository } from '@duo-nest/audit';
import type { RunningSimulator } from '@duo-nest/simulator';
import { Browser, location, type RunningApp } from './support/app-harness.js';
import { startSimAndApp, type SimAndApp } from './support/sim-and-app.js';
import { JSON_ACCEPT } from './support/duo-flow.js';

// Case family RDR (security-cases.md §2.3): redirect handling and callback parameters, over HTTP
// against the real app and the simulator. The default page after sign-on is /result.
let sim: RunningSimulator;
let app: RunningApp;
let booted: SimAndApp;

beforeAll(async () => {
  booted = await startSimAndApp();
  ({ sim, app } = booted);
});
afterAll(async () => {
  await booted?.close();
});

/** Start → Duo (auto allow) → the callback URL Duo sends the browser to. */
async function toCallback(browser: Browser, form: Record<string, string>): Promise<string> {
  const start = await browser.postForm(`${app.url}/login`, { username: 'alice', ...form });
  expect(start.status).toBe(303);
  const duo = await browser.fetch(location(start));
  expect(duo.status).toBe(302);
  return location(duo);
}

/** The whole flow with this returnTo: where the callback finally sends the browser. */
async function finalLocation(returnTo: string): Promise<{ res: Response; to: string }> {
  const browser = new Browser();
  const res = await browser.fetch(await toCallback(browser, { returnTo }));
  expect(res.status).toBe(303);
  return { res, to: location(res) };
}

function stateOf(callbackUrl: string): string {
  return new URL(callbackUrl).searchParams.get('state') ?? '';
}

describe('RDR: redirect handling and callback parameters', () => {
  it('RDR-01 should return to a same-origin path with its query when the sign-on names one', async () => {
    const { to } = await finalLocation('/dashboard?tab=1');
    expect(to).toBe('/dashboard?tab=1');
  });

  it('RDR-02 should sign on but land on the default page and audit it when returnTo is off-site', async () => {
    const { to } = await finalLocation('https://evil.example/');
    expect(to).toBe('/result');
    const { items } = await app.app
      .get(AuditRepository)
      .findPage({ type: 'input_validation_failed' }, undefined, 50);
    expect(items.some((e) => e.reason === 'offsite_return_to')).toBe(true);
  });

  it.each([
    '//evil.example',
    '/\\evil.example',
    '\\\\evil.example',
    '/%2F%2Fevil.example',
    '/%5Cevil.example',
    '/\t/evil.example',
    ' /evil.example',
    'https:evil.example',
    'http:/evil.example',
    '///evil.example',
  ])('RDR-03 should land on the default page when returnTo is %j', async (returnTo) => {
    const { to } = await finalLocation(returnTo);
    expect(to).toBe('/result');
  });

  it.each([
    'javascript:alert(1)',
    'JaVaScRiPt:alert(1)',
    'data:text/html,<script>alert(1)</script>',
    'vbscript:msgbox(1)',
    'file:///etc/passwd',
  ])('RDR-04 should land on the default page when returnTo is the scheme %j', async (returnTo) => {
    const { to } = await finalLocation(returnTo);
    expect(to).toBe('/result');
  });

  it('RDR-06 should never redirect off-site from any GET route when given URL-ish parameters', async () => {
    const router = (
      app.app.getHttpAdapter().getInstance() as unknown as {
        router: { stack: { route?: { path: string; methods: Record<string, boolean> } }[] };
      }
    ).router;
    const getPaths = router.stack
      .filter((l) => l.route?.methods.get && !l.route.path.includes(':'))
      .map((l) => l.route?.path ?? '');
    expect(getPaths).toEqual(expect.arrayContaining(['/', '/auth/duo/callback', '/result']));
    const evil = encodeURIComponent('https://evil.example/x');
    const browser = new Browser();
    await browser.fetch(await toCallback(browser, {})); // signed on: guarded routes answer too
    for (const path of getPaths) {
      const res = await browser.fetch(
        `${app.url}${path}?next=${evil}&returnTo=${evil}&redirect=${evil}&url=${evil}`,
      );
      const loc = res.headers.get('location');
      if (loc !== null) {
        expect(loc.startsWith('/') && !loc.startsWith('//')).toBe(true);
        expect(loc).not.toMatch(/^\/[^?]*evil\.example/);
      }
      expect(res.status).toBeLessThan(500);
    }
    const out = await browser.postForm(`${app.url}/logout?next=${evil}`, {});
    expect(out.status).toBe(303);
    expect(location(out)).toBe('/?reason=signed_out');
  });

  it('RDR-07 should land on the default page with small headers when returnTo is 10 KB, and refuse 1 MB', async () => {
    const { res, to } = await finalLocation('/' + 'a'.repeat(10 * 1024));
    expect(to).toBe('/result');
    for (const cookie of res.headers.getSetCookie()) {
      expect(cookie.length).toBeLessThanOrEqual(4096);
    }
    const big = await new Browser().postForm(
      `${app.url}/login`,
      { username: 'alice', returnTo: '/' + 'a'.repeat(1024 * 1024) },
      { headers: JSON_ACCEPT },
    );
    expect(big.status).toBe(413);
  });

  it('RDR-08 should refuse a returnTo on the callback: the return path comes only from the sign-on start', async () => {
    const browser = new Browser();
    const callback = await toCallback(browser, { returnTo: '/me' });
    const before = sim.control.stats().token;
    const tampered = await browser.fetch(
      `${callback}&returnTo=${encodeURIComponent('https://evil.example')}`,
      { headers: JSON_ACCEPT },
    );
    expect(tampered.status).toBe(400);
    expect(sim.control.stats().token).toBe(before);
    const genuine = await browser.fetch(callback);
    expect(location(genuine)).toBe('/me');
  });

  it('RDR-09 should not inject headers when returnTo carries an encoded CR/LF', async () => {
    const { res, to } = await finalLocation('/%0d%0aSet-Cookie:x=y');
    expect(to).toBe('/result');
    expect(res.headers.getSetCookie().some((c) => c.startsWith('x='))).toBe(false);
  });

  it('RDR-11 should answer the callback with 303, no-referrer and no-store, and error pages without third-party resources', async () => {
    const browser = new Browser();
    const done = await browser.fetch(await toCallback(browser, {}));
    expect(done.status).toBe(303);
    expect(done.headers.get('referrer-policy')).toBe('no-referrer');
    expect(done.headers.get('cache-control')).toBe('no-store');
    const failed = await new Browser().fetch(
      `${app.url}/auth/duo/callback?state=${'s'.repeat(43)}&duo_code=x`,
    );
    const html = await failed.text();
    expect(failed.status).toBe(400);
    expect(failed.headers.get('content-security-policy')).toContain("default-src 'none'");
    expect(failed.headers.get('referrer-policy')).toBe('no-referrer');
    expect(failed.headers.get('cache-control')).toBe('no-store');
    expect(html).not.toMatch(/(src|href)=["']?(https?:)?\/\//i);
  });

  it.each([
    ['GET', '/auth/duo/callback/'],
    ['GET', '/AUTH/duo/callback'],
    ['GET', '/auth/Duo/Callback'],
    ['POST', '/auth/duo/callback'],
    ['PUT', '/auth/duo/callback'],
    ['HEAD', '/auth/duo/callback'],
    ['DELETE', '/auth/duo/callback'],
  ])('RDR-12 should answer 404 or 405 without a token call for %s %s', async (method, path) => {
    const browser = new Browser();
    const callback = new URL(await toCallback(browser, {}));
    const before = sim.control.stats().token;
    const res = await browser.fetch(`${app.url}${path}${callback.search}`, {
      method,
      headers: JSON_ACCEPT,
    });
    expect([404, 405]).toContain(res.status);
    expect(sim.control.stats().token).toBe(before);
    // The pending login was not touched: the exact route still completes the sign-on.
    expect((await browser.fetch(callback.href)).status).toBe(303);
  });

  it.each([
    ['state twice', (s: string, c: string) => `state=${s}&state=${s}&duo_code=${c}`],
    ['duo_code twice', (s: string, c: string) => `state=${s}&duo_code=${c}&duo_code=${c}`],
    ['both code and duo_code', (s: string, c: string) => `state=${s}&duo_code=${c}&code=${c}`],
  ])(
    'RDR-13 should refuse %s with 400 before the pending login is looked up',
    async (_what, build) => {
      const browser = new Browser();
      const callback = new URL(await toCallback(browser, {}));
      const state = stateOf(callback.href);
      const code = callback.searchParams.get('duo_code') ?? '';
      const before = sim.control.stats().token;
      const res = await browser.fetch(`${app.url}/auth/duo/callback?${build(state, code)}`, {
        headers: JSON_ACCEPT,
      });
      expect(res.status).toBe(400);
      expect(await res.json()).toMatchObject({ error: 'invalid_request' });
      expect(sim.control.stats().token).toBe(before);
      // Not consumed: a take-once store would answer state_unknown had it been looked up.
      expect((await browser.fetch(callback.href)).status).toBe(303);
    },
  );

  it.each([
    ['a 64 KB duo_code', () => `state=${'a'.repeat(43)}&duo_code=${'c'.repeat(64 * 1024)}`],
    ['a 2 KB state', () => `state=${'a'.repeat(2048)}&duo_code=abc`],
    ['a 16 KB URL', () => `state=${'a'.repeat(43)}&duo_code=abc&x=${'y'.repeat(16 * 1024)}`],
  ])('RDR-15 should refuse %s with a 4xx and no Duo call', async (_what, query) => {
    const before = sim.control.stats().token;
    const res = await fetch(`${app.url}/auth/duo/callback?${query()}`, { headers: JSON_ACCEPT });
    expect([400, 414, 431]).toContain(res.status);
    expect(sim.control.stats().token).toBe(before);
  });

  it.each(['id_token', 'access_token'])(
    'RDR-17 should refuse a front-channel %s on the callback',
    async (param) => {
      const browser = new Browser();
      const callback = await toCallback(browser, {});
      const before = sim.control.stats().token;
      const res = await browser.fetch(`${callback}&${param}=eyJhbGciOiJub25lIn0.e30.`, {
        headers: JSON_ACCEPT,
      });
      expect(res.status).toBe(400);
      expect(sim.control.stats().token).toBe(before);
    },
  );

  it('RDR-18 should never render reflected markup from error_description or state', async () => {
    const browser = new Browser();
    const callback = new URL(await toCallback(browser, {}));
    const state = stateOf(callback.href);
    const markup = encodeURIComponent('<script>alert(1)</script><img src=x onerror=alert(1)>');
    const res = await browser.fetch(
      `${app.url}/auth/duo/callback?state=${state}&error=access_denied&error_description=${markup}`,
    );
    const html = await res.text();
    expect(res.status).toBe(401);
    expect(res.headers.get('content-security-policy')).toContain("default-src 'none'");
    expect(html).not.toContain('<script>');
    expect(html).not.toContain('<img');
    const bad = await browser.fetch(`${app.url}/auth/duo/callback?state=${markup}&duo_code=x`);
    expect(bad.status).toBe(400);
    expect(await bad.text()).not.toContain('<script>');
  });
});
