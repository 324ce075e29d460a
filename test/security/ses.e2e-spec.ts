/**
 * Catalogue 2.6 (SES): session security, through the REAL app over HTTP (and Chromium for the
 * cross-site SameSite case), against the in-process simulator; Redis and PostgreSQL are the real
 * services (fresh key prefix, fresh database).
 *
 * Referenced, not duplicated (their owners' tests prove them):
 * - SES-02 / SES-03 (route inventory, every non-public route refused without MFA):
 *   test/routes.e2e-spec.ts "should leave open only the reviewed public routes..." and "should
 *   refuse an anonymous request to every non-public route when MfaGuard is global".
 * - SES-09 / SES-10 (idle and absolute timeouts, session_expired audit): test/dead-end.e2e-spec.ts
 *   "should expire an idle session..." and "should expire an active session at the absolute timeout...".
 * - SES-12 (Redis down → 503, no fallback to memory): test/redis-down.e2e-spec.ts.
 * Adapted: SES-01 "new ID after password" — the seed has no pre-MFA session (the username form
 * opens none), so only the post-MFA renewal applies; session_created/renewed are recorded as the
 * mfa_succeeded row written with the new session (docs/security-cases-choices.md).
 * SES-07 is not in the catalogue.
 */
import { afterAll, beforeAll, describe, expect, it, jest } from '@jest/globals';
import { randomBytes } from 'node:crypto';
import type { Browser as Chromium } from 'playwright-core';
import { type SessionStore } from '@duo-nest/core';
import { DUO_SESSION_STORE } from '@duo-nest/core/internal';
import { startSimulator, type RunningSimulator } from '@duo-nest/simulator';
import { createPgDatabase, type TestDatabase } from '../support/audit-db.js';
import { startApp, type RunningApp, simulatorEnv, Browser } from '../support/app-harness.js';
import { launchChromium } from '../support/browser.js';
import {
  auditEvents,
  JSON_ACCEPT,
  postLikeBrowser,
  signOnToCallback,
  uniqueUser,
} from '../support/duo-flow.js';
import {
  me,
  REDIS_URL,
  sessionId,
  type Stack,
  startInstance,
  startStack,
} from '../support/security-stack.js';

jest.setTimeout(30_000);

let stack: Stack;
beforeAll(async () => {
  stack = await startStack();
});
afterAll(async () => {
  await stack?.close();
});

async function signedOn(
  username = uniqueUser('ses'),
  app: RunningApp = stack.app,
): Promise<Browser> {
  const browser = new Browser();
  const callback = await signOnToCallback(browser, app.url, username);
  expect((await browser.fetch(callback)).status).toBe(303);
  return browser;
}

/** The CSRF field of a page the user sees (the result page carries the sign-out form). */
async function csrfOf(browser: Browser, url: string): Promise<Record<string, string>> {
  const html = await (await browser.fetch(url)).text();
  const token = /name="_csrf" value="([^"]*)"/.exec(html)?.[1];
  return token ? { _csrf: token } : {};
}

describe('SES: session security', () => {
  it('SES-01 should give a new session id after MFA and destroy a planted one (fixation)', async () => {
    const attacker = await signedOn(uniqueUser('ses01-mallory'));
    const planted = [...attacker.cookies].find(([k]) => k.endsWith('duo_session'));
    expect(planted).toBeDefined();
    const victim = new Browser();
    victim.cookies.set(planted![0], planted![1]);
    const username = uniqueUser('ses01-alice');
    const callback = await signOnToCallback(victim, stack.app.url, username);
    expect((await victim.fetch(callback)).status).toBe(303);
    expect(victim.cookies.get(planted![0])).not.toBe(planted![1]);
    expect((await me(victim, stack.app.url)).body).toMatchObject({ username });
    expect((await me(attacker, stack.app.url)).status).toBe(401);
    expect(
      await auditEvents(stack.app, { username, type: 'mfa_succeeded' }, { limit: 500 }),
    ).toHaveLength(1);
  });

  it('SES-04 should set __Host-, Secure, HttpOnly, Path=/, no Domain, SameSite=Lax, small signed 256-bit cookies', async () => {
    const sim = await startSimulator({ auto: 'allow' });
    const app = await startApp({
      ...simulatorEnv(sim),
      PUBLIC_URL: 'https://app.test',
      DUO_REDIRECT_URI: 'https://app.test/auth/duo/callback',
      DUO_PENDING_TTL_MS: '300000',
    });
    try {
      const browser = new Browser();
      const start = await postLikeBrowser(browser, app.url, '/login', {
        username: uniqueUser('ses04'),
      });
      const bindingLine = start.headers.getSetCookie().find((l) => l.includes('duo_binding'));
      const duo = await browser.fetch(start.headers.get('location') ?? '');
      const cb = new URL(duo.headers.get('location') ?? '');
      const done = await browser.fetch(`${app.url}${cb.pathname}${cb.search}`);
      expect(done.status).toBe(303);
      const sessionLine = done.headers.getSetCookie().find((l) => l.includes('duo_session'));
      for (const line of [bindingLine, sessionLine]) {
        expect(line).toBeDefined();
        const attrs = line!.split(';').map((a) => a.trim());
        expect(attrs[0]).toMatch(/^__Host-duo_(session|binding)=/);
        expect(attrs).toEqual(
          expect.arrayContaining(['Path=/', 'HttpOnly', 'Secure', 'SameSite=Lax']),
        );
        expect(attrs.some((a) => /^domain=/i.test(a))).toBe(false);
        expect(Buffer.byteLength(line!)).toBeLessThanOrEqual(4096);
        const value = attrs[0].slice(attrs[0].indexOf('=') + 1);
        expect(value.split('.')[0]).toMatch(/^[A-Za-z0-9_-]{43}$/); // 256 bits, then the MAC
      }
      expect(bindingLine).toContain('Max-Age=300');
    } finally {
      await app.close();
      await sim.close();
    }
  });

  describe('SES-05 in Chromium', () => {
    let chromium: Chromium;
    let sim: RunningSimulator;
    let app: RunningApp;
    beforeAll(async () => {
      // Duo on "localhost", the app on 127.0.0.1: two sites, so Duo's redirect back is cross-site.
      sim = await startSimulator({ auto: 'allow', host: 'localhost' });
      const port = new URL(sim.url).port;
      app = await startApp({
        DUO_CLIENT_ID: sim.clientId,
        DUO_CLIENT_SECRET: sim.clientSecret,
        DUO_API_HOST: `http://localhost:${port}`,
      });
      chromium = await launchChromium();
    }, 30_000);
    afterAll(async () => {
      await chromium?.close();
      await app?.close();
      await sim?.close();
    });

    it('SES-05 should receive the SameSite=Lax transaction cookie on the cross-site top-level callback and the session after it', async () => {
      const page = await chromium.newPage();
      await page.goto(`${app.url}/`);
      await page.fill('#username', uniqueUser('ses05'));
      await Promise.all([page.waitForURL((u) => u.pathname === '/result'), page.click('#submit')]);
      expect(await page.textContent('body')).toContain('Sign on complete');
      const me = await page.request.get(`${app.url}/me`, { headers: JSON_ACCEPT });
      expect(me.status()).toBe(200);
      await page.close();
    });
  });

  it('SES-06 should keep the session id out of URLs, bodies and the audit trail and mark pages no-store', async () => {
    const browser = new Browser();
    const username = uniqueUser('ses06');
    const { callback, authorize } = await signOnToCallback(
      browser,
      stack.app.url,
      username,
      {},
      { authorize: true },
    );
    const done = await browser.fetch(callback);
    const id = sessionId(browser) ?? '';
    expect(id).toMatch(/^[A-Za-z0-9_-]{43}$/);
    const pages = await Promise.all(
      ['/me', '/result'].map((p) =>
        browser.fetch(`${stack.app.url}${p}`, { headers: p === '/me' ? JSON_ACCEPT : {} }),
      ),
    );
    const seen = [authorize, callback, done.headers.get('location') ?? ''];
    for (const p of pages) {
      expect(p.status).toBe(200);
      expect(p.headers.get('cache-control')).toContain('no-store');
      seen.push(await p.text());
    }
    seen.push(JSON.stringify(await auditEvents(stack.app, { username }, { limit: 500 })));
    for (const text of seen) {
      expect(text).not.toContain(id);
    }
  });

  it('SES-08 should destroy the session on POST logout (CSRF token), refuse a cross-site GET and audit session_logout', async () => {
    const username = uniqueUser('ses08');
    const browser = await signedOn(username);
    const getLogout = await browser.fetch(`${stack.app.url}/logout`, {
      headers: { 'sec-fetch-site': 'cross-site' },
    });
    expect(getLogout.status).toBe(404);
    expect((await me(browser, stack.app.url)).status).toBe(200);
    const crossSitePost = await browser.postForm(
      `${stack.app.url}/logout`,
      {},
      {
        headers: { origin: 'https://evil.example', ...JSON_ACCEPT },
      },
    );
    expect(crossSitePost.status).toBe(403);
    expect((await me(browser, stack.app.url)).status).toBe(200);
    const stolen = new Browser();
    browser.cookies.forEach((v, k) => stolen.cookies.set(k, v));
    const out = await browser.postForm(
      `${stack.app.url}/logout`,
      await csrfOf(browser, `${stack.app.url}/result`),
    );
    expect(out.status).toBe(303);
    expect((await me(stolen, stack.app.url)).status).toBe(401);
    expect(
      await auditEvents(stack.app, { username, type: 'session_logout' }, { limit: 500 }),
    ).toHaveLength(1);
  });

  it("SES-11 should refuse a revoked user's sessions on every instance at once", async () => {
    const env = { REDIS_URL, REDIS_KEY_PREFIX: `sec-ses-${randomBytes(4).toString('hex')}:` };
    const a = await startInstance(stack, env);
    const b = await startInstance(stack, env);
    try {
      const username = uniqueUser('ses11');
      const one = await signedOn(username, a);
      const two = await signedOn(username, b);
      expect((await me(one, b.url)).status).toBe(200);
      const revoked = await a.app.get<SessionStore>(DUO_SESSION_STORE).destroyAllForUser(username);
      expect(revoked).toBe(2);
      for (const [browser, app] of [
        [one, a],
        [one, b],
        [two, a],
        [two, b],
      ] as const) {
        expect((await me(browser, app.url)).status).toBe(401);
      }
    } finally {
      await a.close();
      await b.close();
    }
  });

  it('SES-13 should leave no half-authenticated session when the outcome cannot be recorded', async () => {
    const db: TestDatabase = await createPgDatabase('sec_ses13');
    const app = await startInstance(stack, { DATABASE_URL: db.url, AUDIT_POLICY: 'deny' });
    try {
      const browser = new Browser();
      const callback = await signOnToCallback(browser, app.url, uniqueUser('ses13'));
      await db.drop(); // the database goes away between "token valid" and "session recorded"
      const res = await browser.fetch(callback, { headers: JSON_ACCEPT });
      expect(res.status).toBe(503);
      expect(sessionId(browser)).toBeUndefined();
      expect((await me(browser, app.url)).status).toBe(401);
    } finally {
      await app.close();
      await db.drop();
    }
  });

  it('SES-14 should carry mfa=true, the factor and Duo auth_time in the session', async () => {
    const browser = await signedOn();
    const { body } = await me(browser, stack.app.url);
    expect(body).toMatchObject({ mfa: true, factor: 'duo_push' });
    expect(typeof body?.authTime).toBe('number');
    expect(Math.abs(Number(body?.authTime) - Date.now() / 1000)).toBeLessThan(120);
  });

  it('SES-15 should keep parallel sessions of one user independent (pinned: no limit, per-session logout)', async () => {
    const username = uniqueUser('ses15');
    const first = await signedOn(username);
    const second = await signedOn(username);
    expect(sessionId(first)).not.toBe(sessionId(second));
    await second.postForm(
      `${stack.app.url}/logout`,
      await csrfOf(second, `${stack.app.url}/result`),
    );
    expect((await me(second, stack.app.url)).status).toBe(401);
    expect((await me(first, stack.app.url)).status).toBe(200);
  });
});
