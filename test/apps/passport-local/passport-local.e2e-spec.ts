import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { startSimulator, type RunningSimulator } from '@duo-nest/simulator';
import { Browser, location } from '../../support/app-harness.js';
import {
  bootTestApp,
  postForm,
  postFormWithoutToken,
  simulatorOptions,
  throughDuo,
  type TestApp,
} from '../boot.js';
import { PassportLocalAppModule } from './app.module.js';

// Duo after passport-local: usernameResolver's default reads req.user.username when an earlier
// guard set req.user, so the password form's fields never reach Duo.
let sim: RunningSimulator;
let app: TestApp;

beforeAll(async () => {
  sim = await startSimulator({ port: 0, auto: 'allow' });
  app = await bootTestApp((url, onEvent) =>
    PassportLocalAppModule.register({ ...simulatorOptions(sim, url), onEvent }),
  );
});
afterAll(async () => {
  await app?.close();
  await sim?.close();
});

function duoCalls(): number {
  const stats = sim.control.stats();
  return stats.health_check + stats.authorize + stats.token;
}

describe('Duo after a passport-local password', () => {
  it('should sign on as req.user.username: password, Duo, session for alice', async () => {
    const browser = new Browser();
    const start = await postForm(browser, `${app.url}/login`, {
      email: 'alice@example.com',
      password: 'correct horse battery',
    });
    expect(start.status).toBe(303);
    const authorize = new URL(location(start));
    expect(authorize.origin).toBe(sim.url);
    const done = await browser.fetch(await throughDuo(browser, authorize.href));
    expect(done.status).toBe(303);
    const me = await browser.fetch(`${app.url}/me`, { headers: { accept: 'application/json' } });
    expect(await me.json()).toEqual({ username: 'alice', mfa: true });
    expect(app.events.filter((e) => e.type === 'mfa_succeeded').map((e) => e.username)).toEqual([
      'alice',
    ]);
  });

  it('should stop at the password: a wrong one is 401 with no Duo call and no event', async () => {
    const before = duoCalls();
    const events = app.events.length;
    const res = await postForm(new Browser(), `${app.url}/login`, {
      email: 'alice@example.com',
      password: 'wrong',
    });
    expect(res.status).toBe(401);
    expect(duoCalls()).toBe(before);
    expect(app.events.length).toBe(events);
  });

  it('should ignore a username form field: the first factor names the user', async () => {
    const browser = new Browser();
    const start = await postForm(browser, `${app.url}/login`, {
      email: 'alice@example.com',
      password: 'correct horse battery',
      username: 'mallory',
    });
    expect(start.status).toBe(303);
    await browser.fetch(await throughDuo(browser, location(start)));
    const me = await browser.fetch(`${app.url}/me`, { headers: { accept: 'application/json' } });
    expect(await me.json()).toMatchObject({ username: 'alice' });
  });

  it('should refuse (400) a req.user without a string username rather than read the form', async () => {
    const before = duoCalls();
    const res = await postForm(
      new Browser(),
      `${app.url}/login`,
      { email: 'robot@example.com', password: 'beep boop beep boop', username: 'alice' },
      { accept: 'application/json' },
    );
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({ error: 'invalid_request' });
    expect(duoCalls()).toBe(before);
  });

  it('should refuse a forged form (no CSRF token) before the password is checked: DuoCsrfGuard first', async () => {
    const checks = PassportLocalAppModule.controller.passwordChecks;
    const before = duoCalls();
    const res = await postFormWithoutToken(
      new Browser(),
      `${app.url}/login`,
      { email: 'alice@example.com', password: 'correct horse battery' },
      { accept: 'application/json' },
    );
    expect(res.status).toBe(403);
    expect(await res.json()).toMatchObject({ error: 'csrf_failed' });
    // The right password, yet passport-local never ran and Duo was never called.
    expect(PassportLocalAppModule.controller.passwordChecks).toBe(checks);
    expect(duoCalls()).toBe(before);
    expect(app.events.filter((e) => e.reason === 'csrf_no_cookie')).toHaveLength(1);
  });
});
