import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { AuditRepository } from '@duo-nest/audit';
import { DuoCircuitBreaker } from '@duo-nest/core/internal';
import { startSimulator, type RunningSimulator } from '@duo-nest/simulator';
import {
  Browser,
  location,
  startApp,
  type RunningApp,
  simulatorEnv,
} from './support/app-harness.js';
import { JSON_ACCEPT } from './support/duo-flow.js';

// The defences of issue 6 part 2-4 that the case families lean on: CSRF, security headers,
// correlation ids, the strict login parser, the circuit breaker, bounded outbound concurrency and
// a /health that stays fast while Duo hangs.
const FORM = { 'content-type': 'application/x-www-form-urlencoded' };

let sim: RunningSimulator;
const apps: RunningApp[] = [];

beforeAll(async () => {
  sim = await startSimulator({ port: 0, auto: 'allow' });
});
afterEach(async () => {
  sim.control.setFaults({ health: null, token: null });
  await Promise.all(apps.splice(0).map((a) => a.close()));
});
afterAll(async () => {
  await sim?.close();
});

async function boot(env: Record<string, string> = {}): Promise<RunningApp> {
  const app = await startApp({
    ...simulatorEnv(sim),
    ...env,
  });
  apps.push(app);
  return app;
}

async function callbackUrl(app: RunningApp, browser: Browser, username = 'alice') {
  const begin = await browser.postForm(`${app.url}/login`, { username });
  return location(await browser.fetch(location(begin)));
}

describe('CSRF protection of state-changing requests', () => {
  it('should refuse a sign-on POST without a token with 403 and audit it, before any Duo call', async () => {
    const app = await boot();
    const browser = new Browser();
    await browser.csrfToken(app.url); // has the cookie, sends no token
    const before = sim.control.stats().health_check + sim.control.stats().authorize;
    const res = await browser.fetch(`${app.url}/login`, {
      method: 'POST',
      body: 'username=alice',
      headers: { ...FORM, ...JSON_ACCEPT },
    });
    expect(res.status).toBe(403);
    expect(await res.json()).toMatchObject({ statusCode: 403, error: 'csrf_failed' });
    expect(sim.control.stats().health_check + sim.control.stats().authorize).toBe(before);
    const { items } = await app.app
      .get(AuditRepository)
      .findPage({ type: 'input_validation_failed' }, undefined, 10);
    expect(items[0]).toMatchObject({ reason: 'csrf_no_token', outcome: 'failure' });
  });

  it.each([
    ['no cookie at all', (_t: string) => ({ body: `username=alice&_csrf=x`, cookie: false })],
    [
      'a token of another browser',
      (t: string) => ({ body: `username=alice&_csrf=${t}`, cookie: true }),
    ],
  ])('should refuse a sign-on POST with %s', async (_what, build) => {
    const app = await boot();
    const other = new Browser();
    const otherToken = await other.csrfToken(app.url);
    const browser = new Browser();
    await browser.csrfToken(app.url);
    const { body, cookie } = build(otherToken);
    const res = await (cookie ? browser : new Browser()).fetch(`${app.url}/login`, {
      method: 'POST',
      body,
      headers: { ...FORM, ...JSON_ACCEPT },
    });
    expect(res.status).toBe(403);
  });

  it('should refuse a cross-site POST even with a valid token (Origin and Sec-Fetch-Site checked)', async () => {
    const app = await boot();
    const browser = new Browser();
    const token = await browser.csrfToken(app.url);
    const crossSite: Record<string, string>[] = [
      { origin: 'https://evil.example' },
      { 'sec-fetch-site': 'cross-site' },
    ];
    for (const headers of crossSite) {
      const res = await browser.fetch(`${app.url}/login`, {
        method: 'POST',
        body: `username=alice&_csrf=${token}`,
        headers: { ...FORM, ...JSON_ACCEPT, ...headers },
      });
      expect(res.status).toBe(403);
    }
    const same = await browser.fetch(`${app.url}/login`, {
      method: 'POST',
      body: `username=alice&_csrf=${token}`,
      headers: { ...FORM, origin: app.url, 'sec-fetch-site': 'same-origin' },
    });
    expect(same.status).toBe(303);
  });

  it('should keep the session when a logout POST has no token, and end it when it has one', async () => {
    const app = await boot();
    const browser = new Browser();
    await browser.fetch(await callbackUrl(app, browser));
    const forged = await browser.fetch(`${app.url}/logout`, {
      method: 'POST',
      headers: JSON_ACCEPT,
    });
    expect(forged.status).toBe(403);
    expect((await browser.fetch(`${app.url}/me`, { headers: JSON_ACCEPT })).status).toBe(200);
    const result = await (await browser.fetch(`${app.url}/result`)).text();
    const token = /name="_csrf" value="([^"]+)"/.exec(result)?.[1] ?? '';
    expect(token).not.toBe('');
    const out = await browser.fetch(`${app.url}/logout`, {
      method: 'POST',
      body: `_csrf=${token}`,
      headers: FORM,
    });
    expect(out.status).toBe(303);
    expect((await browser.fetch(`${app.url}/me`, { headers: JSON_ACCEPT })).status).toBe(401);
  });

  it('should accept the X-CSRF-Token header from an API client that read it from GET /', async () => {
    const app = await boot();
    const browser = new Browser();
    const home = await browser.fetch(`${app.url}/`);
    const token = home.headers.get('x-csrf-token') ?? '';
    const res = await browser.fetch(`${app.url}/login`, {
      method: 'POST',
      body: JSON.stringify({ username: 'alice' }),
      headers: { 'content-type': 'application/json', 'x-csrf-token': token },
    });
    expect(res.status).toBe(303);
  });
});

describe('security headers and correlation ids', () => {
  it('should send the strict headers on every response and keep the page-specific CSP', async () => {
    const app = await boot();
    const home = await fetch(`${app.url}/`);
    expect(home.headers.get('content-security-policy')).toContain(`form-action 'self' ${sim.url}`);
    for (const path of ['/', '/health', '/me', '/nope']) {
      const res = await fetch(`${app.url}${path}`, { headers: JSON_ACCEPT });
      expect(res.headers.get('x-frame-options')).toBe('DENY');
      expect(res.headers.get('x-content-type-options')).toBe('nosniff');
      expect(res.headers.get('referrer-policy')).toBe('no-referrer');
      expect(res.headers.get('cache-control')).toBe('no-store');
      expect(res.headers.get('content-security-policy')).toContain("frame-ancestors 'none'");
      expect(res.headers.get('strict-transport-security')).toBeNull();
      expect(res.headers.get('x-powered-by')).toBeNull();
    }
  });

  it('should send HSTS when the public URL is https', async () => {
    const app = await boot({ PUBLIC_URL: 'https://app.example.test' });
    const res = await fetch(`${app.url}/health`);
    expect(res.headers.get('strict-transport-security')).toMatch(/max-age=31536000/);
  });

  it('should echo a safe X-Request-Id, replace an unsafe one, and store it as the audit correlation id', async () => {
    const app = await boot();
    const safe = await fetch(`${app.url}/health`, { headers: { 'x-request-id': 'trace-1.a_b' } });
    expect(safe.headers.get('x-request-id')).toBe('trace-1.a_b');
    const unsafe = await fetch(`${app.url}/health`, { headers: { 'x-request-id': 'a b<script>' } });
    expect(unsafe.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
    const browser = new Browser();
    const begin = await browser.postForm(
      `${app.url}/login`,
      { username: 'alice' },
      { headers: { 'x-request-id': 'corr-42' } },
    );
    expect(begin.headers.get('x-request-id')).toBe('corr-42');
    const { items } = await app.app
      .get(AuditRepository)
      .findPage({ type: 'mfa_started' }, undefined, 10);
    expect(items[0]?.correlationId).toBe('corr-42');
  });
});

describe('strict login parameters', () => {
  it.each([
    ['a nested key', 'username[a]=x'],
    ['a duplicated username', 'username=alice&username=bob'],
    ['an unknown key', 'username=alice&admin=1'],
    ['a duplicated returnTo in the query', 'username=alice', '?returnTo=%2F&returnTo=%2Fx'],
  ])('should refuse %s with 400 before any Duo call', async (_what, body, query = '') => {
    const app = await boot();
    const browser = new Browser();
    const token = await browser.csrfToken(app.url);
    const before = sim.control.stats().health_check;
    const res = await browser.fetch(`${app.url}/login${query}`, {
      method: 'POST',
      body: `${body}&_csrf=${token}`,
      headers: { ...FORM, ...JSON_ACCEPT },
    });
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({ error: 'invalid_request' });
    expect(sim.control.stats().health_check).toBe(before);
  });

  it.each([
    { username: { $ne: null } },
    { username: ['alice'] },
    { username: 42 },
    { username: 'alice', extra: true },
  ])('should refuse the JSON body %j with 400', async (json) => {
    const app = await boot();
    const browser = new Browser();
    const token = await browser.csrfToken(app.url);
    const res = await browser.fetch(`${app.url}/login`, {
      method: 'POST',
      body: JSON.stringify(json),
      headers: { 'content-type': 'application/json', 'x-csrf-token': token, ...JSON_ACCEPT },
    });
    expect(res.status).toBe(400);
  });

  it('should answer 413, not 500, when the body is over 16 KB', async () => {
    const app = await boot();
    const browser = new Browser();
    const res = await browser.postForm(
      `${app.url}/login`,
      { username: 'a'.repeat(20_000) },
      { headers: JSON_ACCEPT },
    );
    expect(res.status).toBe(413);
  });
});

describe('outbound safety', () => {
  it('should answer /health while sign-ons are still waiting on a hanging Duo', async () => {
    const app = await boot({ DUO_TIMEOUT_MS: '3000' });
    sim.control.setFaults({ health: 'timeout' });
    let settled = 0;
    const pending = Array.from({ length: 10 }, (_, i) =>
      new Browser()
        .postForm(`${app.url}/login`, { username: `hang${i}` }, { headers: JSON_ACCEPT })
        .then((r) => {
          settled++;
          return r.status;
        }),
    );
    while (sim.control.stats().health_check === 0) {
      await new Promise((r) => setTimeout(r, 20));
    }
    const health = await fetch(`${app.url}/health`, { headers: JSON_ACCEPT });
    expect(health.status).toBeLessThan(500);
    expect(settled).toBe(0);
    expect(await Promise.all(pending)).toEqual(Array.from({ length: 10 }, () => 503));
  }, 15_000);

  it('should open the circuit after repeated Duo outages and fail fast without calling Duo', async () => {
    const app = await boot({ DUO_BREAKER_THRESHOLD: '2', DUO_BREAKER_COOLDOWN_MS: '60000' });
    const breaker = app.app.get(DuoCircuitBreaker);
    sim.control.setFaults({ token: '500' });
    for (let i = 0; i < 2; i++) {
      const b = new Browser();
      const res = await b.fetch(await callbackUrl(app, b), { headers: JSON_ACCEPT });
      expect(res.status).toBe(503);
    }
    expect(breaker.state).toBe('open');
    sim.control.setFaults({ token: null });
    const b = new Browser();
    const cb = await callbackUrl(app, b);
    const before = sim.control.stats().token;
    const res = await b.fetch(cb, { headers: JSON_ACCEPT });
    expect(res.status).toBe(503);
    expect(await res.json()).toMatchObject({ error: 'unavailable' });
    expect(sim.control.stats().token).toBe(before);
  });

  it('should refuse with busy at once when the outbound concurrency bound is reached', async () => {
    const app = await boot({ DUO_MAX_CONCURRENCY: '1', DUO_TIMEOUT_MS: '2000' });
    const a = new Browser();
    const b = new Browser();
    const cbA = await callbackUrl(app, a, 'alice');
    const cbB = await callbackUrl(app, b, 'bob');
    sim.control.setFaults({ token: 'timeout' });
    const first = a.fetch(cbA, { headers: JSON_ACCEPT });
    while (app.app.get(DuoCircuitBreaker).inFlight === 0) {
      await new Promise((r) => setTimeout(r, 10));
    }
    const second = await b.fetch(cbB, { headers: JSON_ACCEPT });
    expect(second.status).toBe(503);
    expect(await second.json()).toMatchObject({ error: 'busy' });
    expect((await first).status).toBe(503);
  }, 10_000);
});
