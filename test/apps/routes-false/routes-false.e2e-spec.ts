import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { startSimulator, type RunningSimulator } from '@duo-nest/simulator';
import { Browser, location } from '../../support/app-harness.js';
import { bootTestApp, formToken, simulatorOptions, throughDuo, type TestApp } from '../boot.js';
import { RoutesFalseAppModule } from './app.module.js';

// routes: false: no module route; DuoSignOn.start and .finish answer from the app's own routes.
let sim: RunningSimulator;
let app: TestApp;

beforeAll(async () => {
  sim = await startSimulator({ port: 0, auto: 'allow' });
  app = await bootTestApp((url, onEvent) =>
    RoutesFalseAppModule.register({ ...simulatorOptions(sim, url, '/sso/back'), onEvent }),
  );
});
afterAll(async () => {
  await app?.close();
  await sim?.close();
});

async function start(browser: Browser, user: string, returnTo?: string): Promise<Response> {
  const query = returnTo ? `?returnTo=${encodeURIComponent(returnTo)}` : '';
  // An API client: the token from the form page's X-CSRF-Token header, sent back as that header.
  const token = await formToken(browser, `${app.url}/sso/start`);
  return browser.fetch(`${app.url}/sso/start${query}`, {
    method: 'POST',
    headers: { 'x-user': user, 'x-csrf-token': token, accept: 'application/json' },
  });
}

describe('routes: false with DuoSignOn', () => {
  it("should sign on through the app's own routes, one call each", async () => {
    const browser = new Browser();
    const before = RoutesFalseAppModule.controller.finished;
    const res = await start(browser, 'alice', '/sso/me');
    expect(res.status).toBe(303);
    const callback = await throughDuo(browser, location(res));
    expect(new URL(callback).pathname).toBe('/sso/back');
    const done = await browser.fetch(callback);
    expect(done.status).toBe(303);
    expect(location(done)).toBe('/sso/me');
    expect(RoutesFalseAppModule.controller.finished).toBe(before + 1);
    const me = await browser.fetch(`${app.url}/sso/me`, {
      headers: { accept: 'application/json' },
    });
    expect(await me.json()).toEqual({ username: 'alice' });
    expect(app.answered.filter((a) => a.startsWith('POST /sso/start'))).toEqual([
      'POST /sso/start 303',
    ]);
  });

  it("should throw the library's error from each call (status and code reach the app)", async () => {
    const bad = await start(new Browser(), '');
    expect(bad.status).toBe(400);
    expect(await bad.json()).toMatchObject({ statusCode: 400, error: 'invalid_request' });
    const unknown = await fetch(`${app.url}/sso/back?state=${'B'.repeat(43)}&duo_code=x`, {
      headers: { accept: 'application/json' },
    });
    expect(unknown.status).toBe(400);
    expect(await unknown.json()).toMatchObject({ error: 'state_unknown' });
  });

  it('should serve no route of its own: the module mounts nothing', async () => {
    const res = await fetch(`${app.url}/auth/duo/callback?state=${'C'.repeat(43)}&duo_code=x`, {
      headers: { accept: 'application/json' },
    });
    expect(res.status).toBe(404);
    const layers = (
      app.app.getHttpAdapter().getInstance() as {
        router: { stack: { route?: { path: string } }[] };
      }
    ).router.stack.filter((l) => l.route?.path === '/sso/back');
    expect(layers).toHaveLength(1); // the app's route only, no second one from the module
  });
});
