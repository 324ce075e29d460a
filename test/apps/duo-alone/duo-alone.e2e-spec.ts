import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { CallHandler, DynamicModule, ExecutionContext, NestInterceptor } from '@nestjs/common';
import { map, type Observable } from 'rxjs';
import type { TestingModuleBuilder } from '@nestjs/testing';
import { MfaGuard, type MfaSession } from '@duo-nest/core';
import { startSimulator, type RunningSimulator } from '@duo-nest/simulator';
import { Browser, freePort, location } from '../../support/app-harness.js';
import {
  bootTestApp,
  formToken,
  postForm,
  postFormWithoutToken,
  simulatorOptions,
  throughDuo,
  type TestApp,
} from '../boot.js';
import { DuoAloneAppModule } from './app.module.js';

// Duo alone: DuoStartGuard on the app's login route, the module's own callback route, no error
// filter (refusals reach the app as DuoHttpException).
/** Wraps every handler result as `{ data }` (the Nest docs' TransformInterceptor). */
class WrapInterceptor implements NestInterceptor {
  intercept(_context: ExecutionContext, next: CallHandler): Observable<unknown> {
    return next.handle().pipe(map((data: unknown) => ({ data })));
  }
}

let sim: RunningSimulator;
let app: TestApp;
let buttonApp: TestApp;
let openApp: TestApp;
let deadDuoUrl: string;

beforeAll(async () => {
  sim = await startSimulator({ port: 0, auto: 'allow' });
  deadDuoUrl = `http://127.0.0.1:${await freePort()}`; // nothing listens there
  app = await bootTestApp((url, onEvent) =>
    DuoAloneAppModule.register({ ...simulatorOptions(sim, url), onEvent }),
  );
  // With the Nest docs' TransformInterceptor: were the empty route body still sent, it would write
  // `{ data }` over the guard's answer (headers already sent, a 500 in the logs).
  buttonApp = await bootTestApp(
    (url, onEvent) =>
      DuoAloneAppModule.register({
        ...simulatorOptions(sim, url),
        skipButtonPress: false,
        onEvent,
      }),
    undefined,
    (nest) => nest.useGlobalInterceptors(new WrapInterceptor()),
  );
  openApp = await bootTestApp((url, onEvent) =>
    DuoAloneAppModule.register({
      ...simulatorOptions({ ...sim, url: deadDuoUrl }, url),
      failmode: 'open',
      onEvent,
    }),
  );
});
afterAll(async () => {
  await Promise.all([app, buttonApp, openApp].map((a) => a?.close()));
  await sim?.close();
});

/** Error lines of the app: a second write of an answered response would show up here. */
function errors(a: TestApp): string[] {
  return a.problems.filter((p) => /^(error|fatal)|headers|ERR_/.test(p));
}

describe('Duo alone: DuoStartGuard and the module callback route', () => {
  it('should sign on with an empty login route: 303 to Duo, callback 303 to the default page, /me 200', async () => {
    const browser = new Browser();
    const start = await postForm(browser, `${app.url}/login`, { username: 'alice' });
    expect(start.status).toBe(303);
    expect(location(start).startsWith(`${sim.url}/oauth/v1/authorize?`)).toBe(true);
    const callback = await throughDuo(browser, location(start));
    expect(new URL(callback).pathname).toBe('/auth/duo/callback');
    const done = await browser.fetch(callback);
    expect(done.status).toBe(303);
    expect(location(done)).toBe('/');
    const me = await browser.fetch(`${app.url}/me`, { headers: { accept: 'application/json' } });
    expect(me.status).toBe(200);
    expect(await me.json()).toEqual({ username: 'alice', mfa: true });
    // Each response was written once, with the status the client saw (no 201 from the empty body).
    expect(app.answered).toEqual(
      expect.arrayContaining(['POST /login 303', 'GET /auth/duo/callback 303', 'GET /me 200']),
    );
    expect(app.answered.filter((a) => a.startsWith('POST /login'))).toEqual(['POST /login 303']);
    expect(errors(app)).toEqual([]);
    expect(app.events.filter((e) => e.username === 'alice').map((e) => e.type)).toEqual([
      'mfa_started',
      'mfa_succeeded',
    ]);
  });

  it('should land on a same-origin returnTo after the callback', async () => {
    const browser = new Browser();
    const start = await postForm(browser, `${app.url}/login`, { username: 'bob', returnTo: '/me' });
    const done = await browser.fetch(await throughDuo(browser, location(start)));
    expect(done.status).toBe(303);
    expect(location(done)).toBe('/me');
  });

  it('should answer DuoHttpException JSON (status and code) without the error filter', async () => {
    const anonymous = await fetch(`${app.url}/me`, { headers: { accept: 'text/html' } });
    expect(anonymous.status).toBe(401);
    expect(await anonymous.json()).toEqual({
      statusCode: 401,
      error: 'mfa_required',
      message: 'Sign on with Duo first',
    });
    const before = sim.control.stats().authorize + sim.control.stats().health_check;
    const bad = await postForm(new Browser(), `${app.url}/login`, { username: '' });
    expect(bad.status).toBe(400);
    expect(await bad.json()).toMatchObject({ statusCode: 400, error: 'invalid_request' });
    expect(sim.control.stats().authorize + sim.control.stats().health_check).toBe(before);
  });

  it("should answer callback refusals with the library's mapping and one audit event each", async () => {
    const browser = new Browser();
    const state = 'A'.repeat(43);
    const count = app.events.length;
    const html = await browser.fetch(`${app.url}/auth/duo/callback?state=${state}&duo_code=abc`);
    expect(html.status).toBe(400);
    expect(html.headers.get('content-type')).toMatch(/text\/html/);
    expect(await html.text()).toContain('Please sign on again');
    const json = await browser.fetch(`${app.url}/auth/duo/callback?state=${state}&duo_code=abc`, {
      headers: { accept: 'application/json' },
    });
    expect(json.status).toBe(400);
    expect(await json.json()).toMatchObject({ statusCode: 400, error: 'state_unknown' });
    expect(app.events.slice(count).map((e) => [e.type, e.reason])).toEqual([
      ['mfa_failed', 'state_unknown'],
      ['mfa_failed', 'state_unknown'],
    ]);
    expect(errors(app)).toEqual([]);
  });

  it('should serve the callback on GET at the exact path only, and leave the sign-on usable', async () => {
    const browser = new Browser();
    const start = await postForm(browser, `${app.url}/login`, { username: 'carol' });
    const callback = await throughDuo(browser, location(start));
    const query = new URL(callback).search;
    for (const [method, path] of [
      ['HEAD', '/auth/duo/callback'],
      ['POST', '/auth/duo/callback'],
      ['GET', '/auth/duo/callback/'],
      ['GET', '/AUTH/duo/callback'],
    ]) {
      const res = await browser.fetch(`${app.url}${path}${query}`, { method });
      expect(`${method} ${path} ${res.status}`).toBe(`${method} ${path} 404`);
    }
    const done = await browser.fetch(callback); // the pending login was not consumed above
    expect(done.status).toBe(303);
  });

  it('should answer the "Sign on with Duo" button page from the guard, written once', async () => {
    const browser = new Browser();
    const page = await postForm(browser, `${buttonApp.url}/login`, { username: 'dave' });
    expect(page.status).toBe(200);
    const html = await page.text();
    expect(html).toContain('id="duo-button"');
    expect(html).toContain(`${sim.url}/oauth/v1/authorize?`);
    // The server's side of the request may still run after the client has the page.
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(buttonApp.answered.filter((a) => a.startsWith('POST /login'))).toEqual([
      'POST /login 200',
    ]);
    expect(errors(buttonApp)).toEqual([]);
  });

  it('should fail open inside the library: a non-MFA session and a 303 to returnTo', async () => {
    const browser = new Browser();
    const res = await postForm(browser, `${openApp.url}/login`, {
      username: 'erin',
      returnTo: '/me',
    });
    expect(res.status).toBe(303);
    expect(location(res)).toBe('/me');
    const me = await browser.fetch(`${openApp.url}/me`, {
      headers: { accept: 'application/json' },
    });
    expect(me.status).toBe(403);
    expect(await me.json()).toMatchObject({ error: 'mfa_not_performed' });
    expect(openApp.events.map((e) => e.type)).toEqual(
      expect.arrayContaining(['mfa_failopen', 'access_denied']),
    );
    expect(openApp.answered).toContain('POST /login 303');
  });
});

describe('replacing the global MfaGuard in a user test', () => {
  const fake: Partial<MfaSession> = { username: 'test-user', mfa: true };
  const passGuard = {
    canActivate(context: ExecutionContext) {
      context.switchToHttp().getRequest<{ duoSession?: unknown }>().duoSession = fake;
      return true;
    },
  };

  async function meWith(
    build: (url: string) => DynamicModule,
    customize: (builder: TestingModuleBuilder) => TestingModuleBuilder,
  ): Promise<[number, unknown]> {
    const overridden = await bootTestApp(build, customize);
    try {
      const me = await fetch(`${overridden.url}/me`, { headers: { accept: 'application/json' } });
      return [me.status, await me.json()];
    } finally {
      await overridden.close();
    }
  }

  it('should let overrideProvider(MfaGuard) replace it when the app registers it with useExisting', async () => {
    expect(
      await meWith(
        (url) => DuoAloneAppModule.register(simulatorOptions(sim, url)),
        (builder) => builder.overrideProvider(MfaGuard).useValue(passGuard),
      ),
    ).toEqual([200, { username: 'test-user', mfa: true }]);
  });

  it('should not reach a guard registered with useClass (why the app uses useExisting)', async () => {
    const [status] = await meWith(
      (url) => DuoAloneAppModule.register(simulatorOptions(sim, url), 'useClass'),
      (builder) => builder.overrideProvider(MfaGuard).useValue(passGuard),
    );
    expect(status).toBe(401);
  });

  it('should not reach the global guard through overrideGuard(), which replaces @UseGuards() guards only', async () => {
    const [status] = await meWith(
      (url) => DuoAloneAppModule.register(simulatorOptions(sim, url)),
      (builder) => builder.overrideGuard(MfaGuard).useValue(passGuard),
    );
    expect(status).toBe(401);
  });
});

describe("the library's own sign-on defences, with no app code but the ~10 lines", () => {
  let fresh: TestApp;
  beforeAll(async () => {
    // Default options: nothing about caps or CSRF is configured.
    fresh = await bootTestApp((url, onEvent) =>
      DuoAloneAppModule.register({ ...simulatorOptions(sim, url), onEvent }),
    );
  });
  afterAll(() => fresh?.close());

  const duoCalls = () => sim.control.stats().authorize + sim.control.stats().health_check;
  const eventsOf = (type: string, reason: string) =>
    fresh.events.filter((e) => e.type === type && e.reason === reason);

  it('should refuse a start without a CSRF token: 403 csrf_failed, one audit event, no Duo call', async () => {
    const before = duoCalls();
    const browser = new Browser();
    for (let i = 0; i < 3; i++) {
      const res = await postFormWithoutToken(
        browser,
        `${fresh.url}/login`,
        { username: 'mallory' },
        { accept: 'application/json' },
      );
      expect(res.status).toBe(403);
      expect(await res.json()).toMatchObject({ statusCode: 403, error: 'csrf_failed' });
    }
    // A token of another browser (with this browser's cookie) and a foreign Origin fail too.
    const other = await formToken(new Browser(), `${fresh.url}/login`);
    await formToken(browser, `${fresh.url}/login`);
    const foreign = await postFormWithoutToken(
      browser,
      `${fresh.url}/login`,
      { username: 'mallory', _csrf: other },
      { accept: 'application/json' },
    );
    expect(foreign.status).toBe(403);
    const crossSite = await postForm(
      browser,
      `${fresh.url}/login`,
      { username: 'mallory' },
      { accept: 'application/json', origin: 'https://evil.example' },
    );
    expect(crossSite.status).toBe(403);
    expect(duoCalls()).toBe(before);
    // Three refusals without a token from one source: one row (the rest folded into the next).
    expect(eventsOf('input_validation_failed', 'csrf_no_cookie')).toHaveLength(1);
    expect(eventsOf('input_validation_failed', 'csrf_bad_token')).toHaveLength(1);
    expect(eventsOf('input_validation_failed', 'csrf_cross_origin')).toHaveLength(1);
    expect(fresh.events.filter((e) => e.type === 'mfa_started')).toHaveLength(0);
  });

  it('should answer the 6th start for one username in a window with 429, Retry-After and one rate_limited event', async () => {
    const statuses: number[] = [];
    let last: Response | undefined;
    for (let i = 0; i < 8; i++) {
      // A new browser each time, and the username in another case: still one user.
      last = await postForm(
        new Browser(),
        `${fresh.url}/login`,
        { username: i % 2 === 0 ? 'victim' : 'VICTIM' },
        { accept: 'application/json' },
      );
      statuses.push(last.status);
    }
    expect(statuses).toEqual([303, 303, 303, 303, 303, 429, 429, 429]);
    expect(Number(last?.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(await last?.json()).toMatchObject({ statusCode: 429, error: 'rate_limited' });
    const limited = eventsOf('rate_limited', 'login_user');
    expect(limited).toHaveLength(1);
    // The 6th start (the first refused) was written VICTIM: the event names it as sent.
    expect(limited[0]).toMatchObject({ outcome: 'failure', username: 'VICTIM' });
    expect(fresh.events.filter((e) => e.type === 'mfa_started')).toHaveLength(5);
    // Another user from the same address is not locked out.
    expect(
      (await postForm(new Browser(), `${fresh.url}/login`, { username: 'other' })).status,
    ).toBe(303);
  });

  it('should cap callbacks per IP (100 per window by default): 429 after, no Duo call, one event', async () => {
    const tokenCalls = sim.control.stats().token;
    const statuses: number[] = [];
    for (let i = 0; i < 103; i++) {
      const res = await fetch(
        `${fresh.url}/auth/duo/callback?state=${'B'.repeat(43)}&duo_code=c${i}`,
        { headers: { accept: 'application/json' } },
      );
      await res.arrayBuffer();
      statuses.push(res.status);
    }
    expect(statuses.slice(0, 100).every((s) => s === 400)).toBe(true);
    expect(statuses.slice(100)).toEqual([429, 429, 429]);
    expect(sim.control.stats().token).toBe(tokenCalls);
    expect(eventsOf('rate_limited', 'callback_ip')).toHaveLength(1);
  });
});
