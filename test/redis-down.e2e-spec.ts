import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { DuoSessionService } from '@duo-nest/core/internal';
import type { RunningSimulator } from '@duo-nest/simulator';
import { Browser, type RunningApp } from './support/app-harness.js';
import { startSimAndApp, type SimAndApp } from './support/sim-and-app.js';
import {
  auditEvents,
  JSON_ACCEPT,
  NO_RATE_LIMITS,
  postLikeBrowser,
  sessionCookies,
  uniqueUser,
} from './support/duo-flow.js';

// Redis unreachable (nothing listens on port 1): the sign-on flow and MfaGuard answer 503
// 'unavailable', never a 500, and never let anyone in.
let sim: RunningSimulator;
let app: RunningApp;
let booted: SimAndApp;

beforeAll(async () => {
  booted = await startSimAndApp({ env: { REDIS_URL: 'redis://127.0.0.1:1', ...NO_RATE_LIMITS } });
  ({ sim, app } = booted);
});
afterAll(async () => {
  // The fixture also stops the reconnect loop of the Redis connection app.module created.
  await booted?.close();
});

/** A browser holding a correctly signed session cookie (the store is the only thing missing). */
function browserWithSession(): Browser {
  const cookies = app.app.get(DuoSessionService).cookies;
  const browser = new Browser();
  browser.cookies.set(cookies.session, cookies.sign(randomBytes(32).toString('base64url')));
  return browser;
}

describe('Redis unreachable', () => {
  it('should answer 503 unavailable to a sign-on start, as JSON and as a page', async () => {
    const username = uniqueUser('redis-down');
    const browser = new Browser();
    const json = await postLikeBrowser(browser, app.url, '/login', { username }, JSON_ACCEPT);
    expect(json.status).toBe(503);
    expect(await json.json()).toMatchObject({ statusCode: 503, error: 'unavailable' });
    const html = await postLikeBrowser(browser, app.url, '/login', { username });
    expect(html.status).toBe(503);
    const page = await html.text();
    expect(page).toContain('Two-factor service unavailable');
    expect(page).toContain('id="restart"');
    expect(sessionCookies(browser)).toEqual([]);
    // Nothing was started, so nothing is pretended.
    const events = await auditEvents(app, { username });
    expect(events.some((e) => e.type === 'mfa_started' || e.type === 'mfa_succeeded')).toBe(false);
  });

  it('should answer 503 unavailable from MfaGuard when a session cookie cannot be checked', async () => {
    const browser = browserWithSession();
    const json = await browser.fetch(`${app.url}/me`, { headers: JSON_ACCEPT });
    expect(json.status).toBe(503);
    expect(await json.json()).toMatchObject({ error: 'unavailable' });
    const html = await browser.fetch(`${app.url}/result`);
    expect(html.status).toBe(503);
    expect(await html.text()).toContain('Two-factor service unavailable');
  });

  it('should answer 503 unavailable to a callback whose pending login cannot be read', async () => {
    const tokenCalls = sim.control.stats().token;
    const state = randomBytes(32).toString('base64url');
    const res = await new Browser().fetch(
      `${app.url}/auth/duo/callback?state=${state}&duo_code=abc`,
      { headers: JSON_ACCEPT },
    );
    expect(res.status).toBe(503);
    expect(await res.json()).toMatchObject({ error: 'unavailable' });
    expect(sim.control.stats().token).toBe(tokenCalls);
  });

  it('should answer 503, not 500, to a logout whose session cannot be destroyed', async () => {
    const browser = browserWithSession();
    const res = await postLikeBrowser(browser, app.url, '/logout', {}, JSON_ACCEPT);
    expect(res.status).toBe(503);
    expect(await res.json()).toMatchObject({ error: 'unavailable' });
  });

  it('should keep public routes that need no store working', async () => {
    expect((await fetch(`${app.url}/health/live`)).status).toBe(200);
    expect((await fetch(`${app.url}/`)).status).toBe(200);
  });
});
