import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { startSimulator, type RunningSimulator } from '@duo-nest/simulator';
import { Browser, location } from '../../support/app-harness.js';
import { bootTestApp, postForm, simulatorOptions, throughDuo, type TestApp } from '../boot.js';
import { DuoAloneAppModule } from '../duo-alone/app.module.js';

// Two DuoModules in one process: two apps, each with its own simulator (its own Duo application,
// client id and secret). Neither may use the other's strategy, state, session or client.
let simA: RunningSimulator;
let simB: RunningSimulator;
let appA: TestApp;
let appB: TestApp;

beforeAll(async () => {
  [simA, simB] = await Promise.all([
    startSimulator({ port: 0, auto: 'allow' }),
    startSimulator({ port: 0, auto: 'allow' }),
  ]);
  appA = await bootTestApp((url, onEvent) =>
    DuoAloneAppModule.register({ ...simulatorOptions(simA, url), onEvent }),
  );
  appB = await bootTestApp((url, onEvent) =>
    DuoAloneAppModule.register({
      ...simulatorOptions(simB, url, '/duo/return'),
      sessionSecret: 'the-other-apps-session-secret-0123456789',
      onEvent,
    }),
  );
});
afterAll(async () => {
  await Promise.all([appA?.close(), appB?.close()]);
  await Promise.all([simA?.close(), simB?.close()]);
});

async function signOn(app: TestApp, browser: Browser, user: string): Promise<string> {
  const start = await postForm(browser, `${app.url}/login`, { username: user });
  expect(start.status).toBe(303);
  return location(start);
}

describe('two DuoModules in one process', () => {
  it('should send each app to its own Duo and back to its own callback path', async () => {
    const [a, b] = [new Browser(), new Browser()];
    const [toA, toB] = await Promise.all([signOn(appA, a, 'alice'), signOn(appB, b, 'bob')]);
    expect(new URL(toA).origin).toBe(simA.url);
    expect(new URL(toB).origin).toBe(simB.url);
    expect(new URL(toA).searchParams.get('client_id')).toBe(simA.clientId);
    expect(new URL(toB).searchParams.get('client_id')).toBe(simB.clientId);
    const [backA, backB] = await Promise.all([throughDuo(a, toA), throughDuo(b, toB)]);
    expect(new URL(backA).pathname).toBe('/auth/duo/callback');
    expect(new URL(backB).pathname).toBe('/duo/return');
    const [doneA, doneB] = await Promise.all([a.fetch(backA), b.fetch(backB)]);
    expect([doneA.status, doneB.status]).toEqual([303, 303]);
    const meA = await a.fetch(`${appA.url}/me`, { headers: { accept: 'application/json' } });
    const meB = await b.fetch(`${appB.url}/me`, { headers: { accept: 'application/json' } });
    expect([await meA.json(), await meB.json()]).toEqual([
      { username: 'alice', mfa: true },
      { username: 'bob', mfa: true },
    ]);
    // Each app has only its own callback route: A does not serve B's path, nor B A's.
    expect((await fetch(`${appA.url}/duo/return`)).status).toBe(404);
    expect((await fetch(`${appB.url}/auth/duo/callback`)).status).toBe(404);
  });

  it("should refuse one app's callback and session at the other", async () => {
    const browser = new Browser();
    const toA = await signOn(appA, browser, 'carol');
    const backA = new URL(await throughDuo(browser, toA));
    // A's state and code, delivered to B's callback: B knows no such sign-on.
    const crossed = await browser.fetch(`${appB.url}/duo/return${backA.search}`, {
      headers: { accept: 'application/json' },
    });
    expect(crossed.status).toBe(400);
    expect(await crossed.json()).toMatchObject({ error: 'state_unknown' });
    expect(simB.control.stats().token).toBe(simB.control.stats().token_success);
    // The sign-on still completes at A, and A's session cookie means nothing to B.
    expect((await browser.fetch(backA.href)).status).toBe(303);
    const atB = await browser.fetch(`${appB.url}/me`, { headers: { accept: 'application/json' } });
    expect(atB.status).toBe(401);
    expect(await atB.json()).toMatchObject({ error: 'mfa_required' });
  });
});
