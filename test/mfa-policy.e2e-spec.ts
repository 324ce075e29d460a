import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { RunningSimulator } from '@duo-nest/simulator';
import type { DuoAuthEvent } from '@duo-nest/core';
import { Browser, location, type RunningApp } from './support/app-harness.js';
import { startSimAndApp, type SimAndApp } from './support/sim-and-app.js';
import { auditEvents, JSON_ACCEPT, signOn, uniqueUser } from './support/duo-flow.js';
import { bootTestApp, postForm, simulatorOptions, throughDuo, type TestApp } from './apps/boot.js';
import { MfaPolicyAppModule } from './apps/mfa-policy/app.module.js';

// Factor and bypass policy through HTTP: the reference app (/me, /admin) and a small app with
// DuoModule's module-wide policy, both against the simulator (its bypass user, scripted factors).
let sim: RunningSimulator;
let app: RunningApp;
let booted: SimAndApp;
let strict: TestApp;

/** The simulator's /__sim control API, as a test outside its process would use it. */
async function simControl(path: string, body: unknown): Promise<void> {
  const res = await fetch(`${sim.url}/__sim/${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  expect(res.status).toBeLessThan(300);
  await res.arrayBuffer();
}

beforeAll(async () => {
  booted = await startSimAndApp();
  ({ sim, app } = booted);
  strict = await bootTestApp((url, onEvent) =>
    MfaPolicyAppModule.register({
      ...simulatorOptions(sim, url),
      policy: { allowBypass: false },
      onEvent,
    }),
  );
});
afterAll(async () => {
  await strict?.close();
  await booted?.close();
});

async function signedOn(username: string): Promise<Browser> {
  const browser = new Browser();
  const done = await signOn(browser, app.url, username);
  expect(done.status).toBe(303);
  return browser;
}

describe('reference app: bypass', () => {
  it('should show a bypass on /me and refuse it at /admin with a page, JSON and an audit row', async () => {
    // A bypass user in the admins group: only the bypass rule can refuse /admin.
    const username = uniqueUser('bypass');
    await simControl('users', [{ username, status: 'bypass', groups: ['admins'] }]);
    const browser = await signedOn(username);

    const me = await browser.fetch(`${app.url}/me`, { headers: JSON_ACCEPT });
    expect(me.status).toBe(200);
    expect(await me.json()).toMatchObject({
      username,
      mfa: true,
      bypassed: true,
      factor: 'not_available',
      duoReason: 'bypass_user',
      duoResult: 'success',
      application: sim.clientId,
      authTime: expect.any(Number),
    });

    const json = await browser.fetch(`${app.url}/admin`, { headers: JSON_ACCEPT });
    expect(json.status).toBe(403);
    expect(await json.json()).toEqual({
      statusCode: 403,
      error: 'mfa_policy',
      reason: 'bypass_not_allowed',
      message: expect.stringContaining('bypass'),
      signOnUrl: '/?returnTo=%2Fadmin&reason=mfa_policy',
    });

    const page = await browser.fetch(`${app.url}/admin`, { headers: { accept: 'text/html' } });
    const html = await page.text();
    expect(page.status).toBe(403);
    expect(html).toContain('without one (bypass)');
    // The way to a fresh MFA: the sign-on page, coming back to /admin.
    expect(html).toContain('href="/?returnTo=%2Fadmin&#38;reason=mfa_policy"');
    const form = await browser.fetch(`${app.url}/?returnTo=%2Fadmin&reason=mfa_policy`, {
      headers: { accept: 'text/html' },
    });
    expect(await form.text()).toMatch(/name="returnTo" value="\/admin"/);

    const denied = await auditEvents(app, { username, type: 'access_denied' });
    expect(denied).toHaveLength(2);
    expect(denied[0]).toMatchObject({ reason: 'bypass_not_allowed', outcome: 'failure' });
  });

  it('should say bypassed false for a push approval and let an admin into /admin', async () => {
    const browser = await signedOn('alice');

    const me = await (await browser.fetch(`${app.url}/me`, { headers: JSON_ACCEPT })).json();
    const admin = await browser.fetch(`${app.url}/admin`, { headers: JSON_ACCEPT });

    expect(me).toMatchObject({
      bypassed: false,
      factor: 'duo_push',
      duoReason: 'user_approved',
      application: sim.clientId,
    });
    expect(admin.status).toBe(200);
  });
});

describe('reference app: Duo groups', () => {
  it.each([
    ['an empty group list', []],
    ['no group list', undefined],
  ])('should refuse /admin to a user with %s, with an access_denied row', async (_n, groups) => {
    const username = uniqueUser('nogroups');
    await simControl('users', [{ username, ...(groups ? { groups } : {}) }]);
    const browser = await signedOn(username);

    const me = await (await browser.fetch(`${app.url}/me`, { headers: JSON_ACCEPT })).json();
    const admin = await browser.fetch(`${app.url}/admin`, { headers: JSON_ACCEPT });

    expect(me).toMatchObject({ username, groups: [] });
    expect(admin.status).toBe(403);
    expect(await admin.json()).toMatchObject({ error: 'forbidden' });
    const denied = await auditEvents(app, { username, type: 'access_denied' });
    expect(denied).toEqual([expect.objectContaining({ reason: 'forbidden', outcome: 'failure' })]);
  });
});

describe('module-wide policy and a factor policy', () => {
  async function strictSignOn(username: string): Promise<Browser> {
    const browser = new Browser();
    const start = await postForm(browser, `${strict.url}/login`, { username });
    expect(start.status).toBe(303);
    const done = await browser.fetch(await throughDuo(browser, location(start)));
    expect(done.status).toBe(303);
    return browser;
  }
  const deniedEvents = (username: string): DuoAuthEvent[] =>
    strict.events.filter((e) => e.type === 'access_denied' && e.username === username);

  it('should refuse a push session at a webauthn-only route with JSON and a page', async () => {
    const username = uniqueUser('push');
    const browser = await strictSignOn(username);

    const json = await browser.fetch(`${strict.url}/webauthn`, { headers: JSON_ACCEPT });
    const page = await browser.fetch(`${strict.url}/webauthn`, {
      headers: { accept: 'text/html' },
    });
    const html = await page.text();

    expect(json.status).toBe(403);
    expect(await json.json()).toMatchObject({ error: 'mfa_policy', reason: 'factor_not_allowed' });
    expect(page.status).toBe(403);
    expect(html).toContain('another two-factor method');
    expect(html).toContain('href="/?returnTo=%2Fwebauthn&#38;reason=mfa_policy"');
    expect(deniedEvents(username).map((e) => e.reason)).toEqual([
      'factor_not_allowed',
      'factor_not_allowed',
    ]);
    // The plain route has no factor rule: the push session is fine there.
    expect((await browser.fetch(`${strict.url}/plain`, { headers: JSON_ACCEPT })).status).toBe(200);
  });

  it('should let a WebAuthn session into the webauthn-only route', async () => {
    const username = uniqueUser('key');
    await simControl('next-outcome', {
      username,
      outcome: 'allow',
      factor: 'WebAuthn Security Key',
    });
    const browser = await strictSignOn(username);

    const res = await browser.fetch(`${strict.url}/webauthn`, { headers: JSON_ACCEPT });

    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ username, factor: 'WebAuthn Security Key' });
  });

  it('should refuse a bypass on a plain route when the module default refuses bypass', async () => {
    const username = uniqueUser('bypass');
    await simControl('users', [{ username, status: 'bypass', groups: ['staff'] }]);
    const browser = await strictSignOn(username);

    const res = await browser.fetch(`${strict.url}/plain`, { headers: JSON_ACCEPT });

    expect(res.status).toBe(403);
    expect(await res.json()).toMatchObject({ error: 'mfa_policy', reason: 'bypass_not_allowed' });
    expect(deniedEvents(username)).toEqual([
      expect.objectContaining({ reason: 'bypass_not_allowed', path: '/plain' }),
    ]);
  });
});
