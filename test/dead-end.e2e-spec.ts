import { afterAll, afterEach, beforeAll, describe, expect, it, jest } from '@jest/globals';
import { type PendingLoginStore, type SessionStore } from '@duo-nest/core';
import {
  DUO_PENDING_LOGIN_STORE,
  DUO_SESSION_STORE,
  DuoFlowService,
} from '@duo-nest/core/internal';
import type { RunningSimulator } from '@duo-nest/simulator';
import { Browser, location, type RunningApp } from './support/app-harness.js';
import { startSimAndApp, type SimAndApp } from './support/sim-and-app.js';
import {
  auditEvents,
  JSON_ACCEPT,
  NO_RATE_LIMITS,
  postLikeBrowser,
  signOn,
  signOnToCallback,
  uniqueUser,
} from './support/duo-flow.js';

// The seed's dead end (issue part 6) and session timeouts: Duo's prompt has no Cancel, so pending
// logins expire and are recorded; late callbacks and expired sessions always lead back to sign-on.
const PENDING_TTL_MS = 60_000;
const IDLE_MS = 60_000; // the smallest idle timeout the environment accepts
const ABSOLUTE_MS = 180_000;

let sim: RunningSimulator;
let app: RunningApp;
let booted: SimAndApp;

beforeAll(async () => {
  booted = await startSimAndApp({
    env: {
      ...NO_RATE_LIMITS,
      DUO_PENDING_TTL_MS: String(PENDING_TTL_MS),
      SESSION_IDLE_TIMEOUT_MS: String(IDLE_MS),
      SESSION_ABSOLUTE_TIMEOUT_MS: String(ABSOLUTE_MS),
    },
  });
  ({ sim, app } = booted);
});
afterEach(() => {
  jest.restoreAllMocks();
});
afterAll(async () => {
  await booted?.close();
});

/** Runs the app's session lookups `offset()` ms in the future (the store's own clock argument). */
function sessionClockAhead(offset: () => number): void {
  const store = app.app.get<SessionStore>(DUO_SESSION_STORE);
  const get = store.get.bind(store);
  jest.spyOn(store, 'get').mockImplementation((id, now) => get(id, now ?? Date.now() + offset()));
}

const sweepAfterTtl = () =>
  app.app.get(DuoFlowService).sweepAbandoned(Date.now() + PENDING_TTL_MS + 1);

/** From now on the app takes pending logins as if their TTL had passed (no sleeping). */
function takeAfterTtl(): void {
  const pending = app.app.get<PendingLoginStore>(DUO_PENDING_LOGIN_STORE);
  const take = pending.take.bind(pending);
  jest
    .spyOn(pending, 'take')
    .mockImplementation((state, now) => take(state, now ?? Date.now() + PENDING_TTL_MS + 1));
}

describe('abandoned and expired sign-ons', () => {
  it('should record mfa_abandoned when the user denied at Duo and never came back', async () => {
    const username = uniqueUser('deny');
    sim.control.nextOutcome({ username, outcome: 'deny' });
    const browser = new Browser();
    const start = await postLikeBrowser(browser, app.url, '/login', { username });
    expect(start.status).toBe(303);
    const duo = await browser.fetch(location(start));
    expect(duo.status).not.toBe(302); // stuck on Duo's page: no way back to the app
    await duo.body?.cancel();

    expect(await sweepAfterTtl()).toBeGreaterThanOrEqual(1);
    const abandoned = await auditEvents(app, { username, type: 'mfa_abandoned' });
    expect(abandoned).toHaveLength(1);
    expect(abandoned[0].reason).toBe('state_expired');
    // Swept once: a second sweep does not report it again.
    await sweepAfterTtl();
    expect(await auditEvents(app, { username, type: 'mfa_abandoned' })).toHaveLength(1);

    // A fresh sign-on from the same browser works.
    const again = await signOn(browser, app.url, username);
    expect(again.status).toBe(303);
    expect(location(again)).toBe('/result');
  });

  it('should record mfa_abandoned for a sign-on that never reached Duo and refuse its late callback', async () => {
    const username = uniqueUser('never');
    const browser = new Browser();
    const callback = await signOnToCallback(browser, app.url, username);
    await sweepAfterTtl();
    expect(await auditEvents(app, { username, type: 'mfa_abandoned' })).toHaveLength(1);

    const late = await browser.fetch(callback);
    expect(late.status).toBe(400);
    const page = await late.text();
    expect(page).toContain('Please sign on again');
    expect(page).toMatch(/<a class="restart" id="restart" href="\/">/);
    expect(browser.cookies.has('duo_session')).toBe(false);
  });

  it('should answer state_expired and record mfa_expired when the callback arrives after the TTL', async () => {
    const username = uniqueUser('late');
    const browser = new Browser();
    const callback = await signOnToCallback(browser, app.url, username);
    takeAfterTtl();
    const tokenCalls = sim.control.stats().token;

    const json = await browser.fetch(callback, { headers: JSON_ACCEPT });
    expect(json.status).toBe(400);
    expect(await json.json()).toMatchObject({ error: 'state_expired' });
    expect(sim.control.stats().token).toBe(tokenCalls); // the code is never exchanged

    const events = await auditEvents(app, { username });
    expect(events.filter((e) => e.type === 'mfa_expired').map((e) => e.reason)).toEqual([
      'state_expired',
    ]);
    // Taken once: it is not reported as abandoned later.
    jest.restoreAllMocks();
    await sweepAfterTtl();
    expect(await auditEvents(app, { username, type: 'mfa_abandoned' })).toHaveLength(0);
  });

  it('should show the restart page for an expired callback and a working sign-on form behind it', async () => {
    const username = uniqueUser('late-html');
    const browser = new Browser();
    const callback = await signOnToCallback(browser, app.url, username);
    takeAfterTtl();
    const res = await browser.fetch(callback);
    expect(res.status).toBe(400);
    const page = await res.text();
    expect(page).toContain('took too long and expired');
    expect(page).toContain('id="restart" href="/"');
    jest.restoreAllMocks();

    const form = await browser.fetch(`${app.url}/`);
    expect(form.status).toBe(200);
    expect(await form.text()).toContain('name="username"');
    expect((await signOn(browser, app.url, username)).status).toBe(303);
  });
});

describe('session timeouts', () => {
  it('should expire an idle session with 401 session_expired and record session_expired', async () => {
    const username = uniqueUser('idle');
    const browser = new Browser();
    expect((await signOn(browser, app.url, username)).status).toBe(303);
    expect((await browser.fetch(`${app.url}/me`, { headers: JSON_ACCEPT })).status).toBe(200);

    sessionClockAhead(() => IDLE_MS + 1);
    const json = await browser.fetch(`${app.url}/me`, { headers: JSON_ACCEPT });
    expect(json.status).toBe(401);
    expect(await json.json()).toMatchObject({ error: 'session_expired' });
    const expired = await auditEvents(app, { username, type: 'session_expired' });
    expect(expired.map((e) => e.reason)).toEqual(['idle']);

    // Reported once and deleted: the next request is simply signed out.
    const html = await browser.fetch(`${app.url}/me`);
    expect(html.status).toBe(303);
    expect(location(html)).toBe('/?returnTo=%2Fme&reason=mfa_required');
  });

  it('should send an HTML request of an expired session to sign-on with the reason shown', async () => {
    const username = uniqueUser('idle-html');
    const browser = new Browser();
    expect((await signOn(browser, app.url, username)).status).toBe(303);
    sessionClockAhead(() => IDLE_MS + 1);
    const html = await browser.fetch(`${app.url}/result`);
    expect(html.status).toBe(303);
    expect(location(html)).toBe('/?returnTo=%2Fresult&reason=session_expired');
    jest.restoreAllMocks();
    const signOnPage = await browser.fetch(`${app.url}${location(html)}`);
    expect(await signOnPage.text()).toContain('Your session expired');
  });

  it('should expire an active session at the absolute timeout even when it was never idle', async () => {
    const username = uniqueUser('absolute');
    const browser = new Browser();
    expect((await signOn(browser, app.url, username)).status).toBe(303);
    let ahead = 0;
    sessionClockAhead(() => ahead);
    // Active every 50 s: each request slides the idle expiry, so only the absolute limit remains.
    for (ahead = 50_000; ahead < ABSOLUTE_MS; ahead += 50_000) {
      expect((await browser.fetch(`${app.url}/me`, { headers: JSON_ACCEPT })).status).toBe(200);
    }
    ahead = ABSOLUTE_MS + 1;
    const res = await browser.fetch(`${app.url}/me`, { headers: JSON_ACCEPT });
    expect(res.status).toBe(401);
    expect(await res.json()).toMatchObject({ error: 'session_expired' });
    const expired = await auditEvents(app, { username, type: 'session_expired' });
    expect(expired.map((e) => e.reason)).toEqual(['absolute']);
  });
});
