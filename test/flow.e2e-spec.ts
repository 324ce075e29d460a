import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { AuditRepository } from '@duo-nest/audit';
import type { RunningSimulator } from '@duo-nest/simulator';
import { Browser, location, type RunningApp } from './support/app-harness.js';
import { startSimAndApp, type SimAndApp } from './support/sim-and-app.js';

// The seed's sign-on flow over real HTTP: the app and the simulator, each on its own port.
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

/** Sign-on up to Duo's redirect back: returns the callback URL Duo sent the browser to. */
async function signOnToCallback(
  browser: Browser,
  username = 'alice',
  extra: Record<string, string> = {},
): Promise<string> {
  const start = await browser.postForm(`${app.url}/login`, { username, ...extra });
  expect(start.status).toBe(303);
  const authorize = location(start);
  expect(authorize.startsWith(`${sim.url}/oauth/v1/authorize?`)).toBe(true);
  const duo = await browser.fetch(authorize);
  expect(duo.status).toBe(302);
  return location(duo);
}

describe('sign-on flow against the simulator', () => {
  it('should open an MFA session and show the result when Duo approves', async () => {
    const browser = new Browser();
    const callback = await signOnToCallback(browser);
    expect(callback.startsWith(`${app.url}/auth/duo/callback?`)).toBe(true);
    const done = await browser.fetch(callback);
    expect(done.status).toBe(303);
    expect(location(done)).toBe('/result');
    expect(done.headers.get('cache-control')).toBe('no-store');
    expect(done.headers.get('referrer-policy')).toBe('no-referrer');

    const me = await browser.fetch(`${app.url}/me`, { headers: { accept: 'application/json' } });
    expect(me.status).toBe(200);
    expect(await me.json()).toMatchObject({
      username: 'alice',
      mfa: true,
      factor: expect.any(String),
      groups: expect.arrayContaining(['admins']),
    });

    const result = await browser.fetch(`${app.url}/result`);
    const html = await result.text();
    expect(result.status).toBe(200);
    expect(html).toContain('Sign on complete');
    expect(html).toContain('Bearer');
    expect(html).toMatch(/redacted: \d+ characters/);
    expect(html).not.toMatch(/eyJ[A-Za-z0-9_-]{10,}\.eyJ/);

    const audit = app.app.get(AuditRepository);
    const { items } = await audit.findPage({ username: 'alice' }, undefined, 50);
    const succeeded = items.find((e) => e.type === 'mfa_succeeded');
    expect(succeeded).toMatchObject({
      outcome: 'success',
      username: 'alice',
      factor: expect.any(String),
    });
    expect(succeeded?.txid).toMatch(/^[0-9a-f-]{36}$/);
    expect(items.some((e) => e.type === 'mfa_started')).toBe(true);
    expect(JSON.stringify(items)).not.toMatch(/eyJ[A-Za-z0-9_-]{10,}/);
  });

  it('should refuse a replayed callback once the first one succeeded', async () => {
    const browser = new Browser();
    const callback = await signOnToCallback(browser, 'bob');
    expect((await browser.fetch(callback)).status).toBe(303);
    const replay = await browser.fetch(callback, { headers: { accept: 'application/json' } });
    expect(replay.status).toBe(400);
    expect(await replay.json()).toMatchObject({ error: 'state_unknown' });
  });

  it('should refuse a callback from another browser than the one that started the sign-on', async () => {
    const victim = new Browser();
    const callback = await signOnToCallback(victim, 'alice');
    const attacker = new Browser();
    const res = await attacker.fetch(callback, { headers: { accept: 'application/json' } });
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({ error: 'binding_mismatch' });
    expect(attacker.cookies.size).toBe(0);
  });

  it('should refuse guarded routes before MFA: JSON gets 401, HTML is sent to sign-on', async () => {
    const browser = new Browser();
    const json = await browser.fetch(`${app.url}/me`, { headers: { accept: 'application/json' } });
    expect(json.status).toBe(401);
    expect(await json.json()).toMatchObject({ error: 'mfa_required' });
    const html = await browser.fetch(`${app.url}/result`);
    expect(html.status).toBe(303);
    expect(location(html)).toBe('/?returnTo=%2Fresult&reason=mfa_required');
  });

  it('should destroy the session server-side when the user logs out', async () => {
    const browser = new Browser();
    await browser.fetch(await signOnToCallback(browser));
    const stolen = new Map(browser.cookies);
    const out = await browser.postForm(`${app.url}/logout`, {});
    expect(out.status).toBe(303);
    const replayer = new Browser();
    stolen.forEach((v, k) => replayer.cookies.set(k, v));
    const me = await replayer.fetch(`${app.url}/me`, { headers: { accept: 'application/json' } });
    expect(me.status).toBe(401);
  });

  it('should return to a same-origin path and ignore an off-site returnTo', async () => {
    const a = new Browser();
    const done = await a.fetch(await signOnToCallback(a, 'alice', { returnTo: '/me' }));
    expect(location(done)).toBe('/me');
    const b = new Browser();
    const off = await b.fetch(await signOnToCallback(b, 'alice', { returnTo: '//evil.example/x' }));
    expect(location(off)).toBe('/result');
  });

  it.each([
    ['no username', {}],
    ['an empty username', { username: '' }],
    ['a username with a newline', { username: 'a\nb' }],
  ])('should answer 400 without calling Duo when the sign-on has %s', async (_what, form) => {
    const before = sim.control.stats().health_check + sim.control.stats().authorize;
    const res = await new Browser().postForm(`${app.url}/login`, form, {
      headers: { accept: 'application/json' },
    });
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({ error: 'invalid_request' });
    expect(sim.control.stats().health_check + sim.control.stats().authorize).toBe(before);
  });

  it.each([
    ['no state', '?duo_code=abc'],
    ['a duplicated state', '?duo_code=abc&state=' + 'a'.repeat(43) + '&state=' + 'b'.repeat(43)],
    ['an unknown parameter', '?duo_code=abc&state=' + 'a'.repeat(43) + '&extra=1'],
    ['an unknown state', '?duo_code=abc&state=' + 'a'.repeat(43)],
  ])('should refuse a callback with %s without calling Duo', async (_what, query) => {
    const before = sim.control.stats().token;
    const res = await new Browser().fetch(`${app.url}/auth/duo/callback${query}`, {
      headers: { accept: 'application/json' },
    });
    expect(res.status).toBe(400);
    expect(sim.control.stats().token).toBe(before);
  });
});
