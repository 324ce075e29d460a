import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { HEALTH_FAULTS, startSimulator, type RunningSimulator } from '@duo-nest/simulator';
import {
  Browser,
  location,
  startApp,
  type RunningApp,
  simulatorEnv,
} from './support/app-harness.js';
import {
  auditEvents,
  JSON_ACCEPT,
  NO_RATE_LIMITS,
  postLikeBrowser,
  sessionCookies,
  signOnToCallback,
  uniqueUser,
} from './support/duo-flow.js';

// Fail mode (issue part 5): what the health check before the redirect decides, in both modes, and
// that nothing after the redirect ever fails open.
let sim: RunningSimulator;
let closed: RunningApp;
let open: RunningApp;

beforeAll(async () => {
  sim = await startSimulator({ port: 0, auto: 'allow' });
  const duo = {
    ...simulatorEnv(sim),
    ...NO_RATE_LIMITS,
    DUO_TIMEOUT_MS: '300',
    DUO_HEALTH_CACHE_MS: '0',
    // Every fault must reach the health check itself, not a circuit opened by the previous ones.
    DUO_BREAKER_THRESHOLD: '1000',
  };
  [closed, open] = await Promise.all([startApp(duo), startApp({ ...duo, DUO_FAILMODE: 'open' })]);
});
afterEach(() => {
  sim.control.setFaults({ health: null, token: null });
});
afterAll(async () => {
  await closed?.close();
  await open?.close();
  await sim?.close();
});

type HealthFault = (typeof HEALTH_FAULTS)[number];
const ALL_HEALTH_FAULTS: HealthFault[] = [...HEALTH_FAULTS];
const NETWORK_OR_5XX: HealthFault[] = ['down', '500', 'timeout', 'reset'];
/** Health answers from a Duo that is up and answering: never a reason to fail open. */
const DUO_ANSWERED: [HealthFault, string][] = [
  ['429', 'rate_limited'],
  ['400', 'duo_rejected'],
  ['403', 'health_response'],
  ['404', 'health_response'],
  ['fail_envelope', 'invalid_client'],
];

describe('failmode closed (the default)', () => {
  it.each(ALL_HEALTH_FAULTS)(
    'should answer 503 unavailable without a session when the health check fails with %s',
    async (fault) => {
      sim.control.setFaults({ health: fault });
      const username = uniqueUser('closed');
      const browser = new Browser();
      const json = await postLikeBrowser(browser, closed.url, '/login', { username }, JSON_ACCEPT);
      expect(json.status).toBe(503);
      expect(await json.json()).toMatchObject({ statusCode: 503, error: 'unavailable' });

      const html = await postLikeBrowser(browser, closed.url, '/login', { username });
      expect(html.status).toBe(503);
      expect(html.headers.get('content-type')).toMatch(/text\/html/);
      const page = await html.text();
      expect(page).toContain('Two-factor service unavailable');
      expect(page).toContain('id="restart"');
      expect(sessionCookies(browser)).toEqual([]);

      const events = await auditEvents(closed, { username });
      expect(events.filter((e) => e.type === 'mfa_unavailable')).toHaveLength(2);
      expect(events.some((e) => e.type === 'mfa_started' || e.type === 'mfa_failopen')).toBe(false);
    },
  );
});

describe('failmode open', () => {
  it.each(NETWORK_OR_5XX)(
    'should open a session marked not MFA-verified that MfaGuard refuses when the health check fails with %s',
    async (fault) => {
      sim.control.setFaults({ health: fault });
      const username = uniqueUser('open');
      const browser = new Browser();
      const start = await postLikeBrowser(browser, open.url, '/login', { username });
      expect(start.status).toBe(303);
      expect(location(start)).toBe('/result');
      expect(browser.cookies.has('duo_session')).toBe(true);

      const me = await browser.fetch(`${open.url}/me`, { headers: JSON_ACCEPT });
      expect(me.status).toBe(403);
      expect(await me.json()).toMatchObject({ error: 'mfa_not_performed' });
      const result = await browser.fetch(`${open.url}/result`);
      expect(result.status).toBe(403);
      expect(await result.text()).toContain('Access denied');

      const events = await auditEvents(open, { username });
      const failopen = events.filter((e) => e.type === 'mfa_failopen');
      expect(failopen).toHaveLength(1);
      expect(failopen[0].reason).toBe('unavailable');
      const denied = events.filter((e) => e.type === 'access_denied');
      expect(denied.map((e) => e.reason)).toEqual(['mfa_not_performed', 'mfa_not_performed']);
      expect(events.some((e) => e.type === 'mfa_succeeded')).toBe(false);
    },
  );

  it('should let a fail-open session into an @AllowFailOpen() route with mfa false', async () => {
    sim.control.setFaults({ health: 'down' });
    const username = uniqueUser('status');
    const browser = new Browser();
    expect((await postLikeBrowser(browser, open.url, '/login', { username })).status).toBe(303);
    const status = await browser.fetch(`${open.url}/status`, { headers: JSON_ACCEPT });
    expect(status.status).toBe(200);
    expect(await status.json()).toEqual({ username, mfa: false, failOpen: true });
    // The opt-in does not open the route to everyone.
    const anonymous = await new Browser().fetch(`${open.url}/status`, { headers: JSON_ACCEPT });
    expect(anonymous.status).toBe(401);
  });

  it('should report mfa true on the @AllowFailOpen() route after a real MFA', async () => {
    const username = uniqueUser('status-mfa');
    const browser = new Browser();
    const done = await browser.fetch(await signOnToCallback(browser, open.url, username));
    expect(done.status).toBe(303);
    const status = await browser.fetch(`${open.url}/status`, { headers: JSON_ACCEPT });
    expect(await status.json()).toEqual({ username, mfa: true, failOpen: false });
  });

  it.each(DUO_ANSWERED)(
    'should refuse to fail open (503, no session, mfa_unavailable) when the health check answers %s',
    async (fault, reason) => {
      sim.control.setFaults({ health: fault });
      const username = uniqueUser('answered');
      const browser = new Browser();
      const json = await postLikeBrowser(browser, open.url, '/login', { username }, JSON_ACCEPT);
      expect(json.status).toBe(503);
      expect(await json.json()).toMatchObject({ error: 'unavailable' });
      const html = await postLikeBrowser(browser, open.url, '/login', { username });
      expect(html.status).toBe(503);
      expect(html.headers.get('location')).toBeNull();
      await html.arrayBuffer();
      expect(sessionCookies(browser)).toEqual([]);
      const me = await browser.fetch(`${open.url}/status`, { headers: JSON_ACCEPT });
      expect(me.status).toBe(401);
      const events = await auditEvents(open, { username });
      expect(events.map((e) => [e.type, e.reason])).toEqual([
        ['mfa_unavailable', reason],
        ['mfa_unavailable', reason],
      ]);
    },
  );

  it('should refuse to fail open when repeated 429 answers have opened the circuit breaker', async () => {
    const tight = await startApp({
      ...simulatorEnv(sim),
      ...NO_RATE_LIMITS,
      DUO_TIMEOUT_MS: '300',
      DUO_HEALTH_CACHE_MS: '0',
      DUO_BREAKER_THRESHOLD: '2',
      DUO_BREAKER_COOLDOWN_MS: '60000',
      DUO_FAILMODE: 'open',
    });
    try {
      sim.control.setFaults({ health: '429' });
      const before = sim.control.stats().health_check;
      for (let i = 0; i < 4; i++) {
        const username = uniqueUser('limited');
        const browser = new Browser();
        const res = await postLikeBrowser(browser, tight.url, '/login', { username }, JSON_ACCEPT);
        expect(res.status).toBe(503);
        expect(sessionCookies(browser)).toEqual([]);
        const events = await auditEvents(tight, { username });
        expect(events.map((e) => e.type)).toEqual(['mfa_unavailable']);
      }
      // The circuit really opened: only the first two sign-ons reached Duo.
      expect(sim.control.stats().health_check - before).toBe(2);
      const all = await auditEvents(tight, { type: 'mfa_failopen' });
      expect(all).toEqual([]);
    } finally {
      await tight.close();
    }
  });

  it('should still fail closed when Duo answers the health check with a FAIL envelope', async () => {
    sim.control.setFaults({ health: 'fail_envelope' });
    const username = uniqueUser('envelope');
    const browser = new Browser();
    const res = await postLikeBrowser(browser, open.url, '/login', { username }, JSON_ACCEPT);
    expect(res.status).toBe(503);
    expect(await res.json()).toMatchObject({ error: 'unavailable' });
    expect(sessionCookies(browser)).toEqual([]);
    const events = await auditEvents(open, { username });
    expect(events.map((e) => e.type)).toEqual(['mfa_unavailable']);
    expect(events[0].reason).not.toBe('unavailable');
  });
});

describe('after the redirect (always closed, in both modes)', () => {
  it.each([
    ['500', 503, 'unavailable'],
    ['timeout', 503, 'unavailable'],
    ['401', 502, 'invalid_client'],
    ['400', 401, 'invalid_grant'],
    ['malformed_json', 502, 'token_response'],
    ['bad_signature', 401, 'id_token_signature'],
    ['wrong_nonce', 401, 'id_token_nonce'],
    ['wrong_aud', 401, 'id_token_aud'],
    ['expired', 401, 'id_token_expired'],
    ['wrong_username', 401, 'id_token_username'],
  ] as const)(
    'should refuse the sign-on with %s from the token endpoint (failmode open)',
    async (fault, status, code) => {
      const username = uniqueUser('token');
      const browser = new Browser();
      const callback = await signOnToCallback(browser, open.url, username);
      sim.control.setFaults({ token: fault });
      const res = await browser.fetch(callback, { headers: JSON_ACCEPT });
      expect(res.status).toBe(status);
      expect(await res.json()).toMatchObject({ error: code });
      expect(browser.cookies.has('duo_session')).toBe(false);
      const me = await browser.fetch(`${open.url}/me`, { headers: JSON_ACCEPT });
      expect(me.status).toBe(401);

      const events = await auditEvents(open, { username });
      const failed = events.filter((e) => e.type === 'mfa_failed');
      expect(failed).toHaveLength(1);
      expect(failed[0].reason).toBe(code);
      expect(events.some((e) => e.type === 'mfa_succeeded' || e.type === 'mfa_failopen')).toBe(
        false,
      );
    },
  );

  it('should show a sign-on-again page, not a session, when the token endpoint fails (failmode closed, HTML)', async () => {
    const username = uniqueUser('token-html');
    const browser = new Browser();
    const callback = await signOnToCallback(browser, closed.url, username);
    sim.control.setFaults({ token: 'bad_signature' });
    const res = await browser.fetch(callback);
    expect(res.status).toBe(401);
    const page = await res.text();
    expect(page).toContain('Sign-on failed');
    expect(page).toContain('href="/"');
    expect(browser.cookies.has('duo_session')).toBe(false);
  });
});
