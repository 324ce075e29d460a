import { randomBytes } from 'node:crypto';
import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { Redis } from 'ioredis';
import { startSimulator, type RunningSimulator } from '@duo-nest/simulator';
import { DUO_OPTIONS, type NormalizedDuoModuleOptions } from '@duo-nest/core/internal';
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
  signOn,
  uniqueUser,
} from './support/duo-flow.js';

// Control over live sessions (issue 14 item 3): the audit admins list a user's sessions and end
// one or all of them, or mark the user compromised, through HTTP; each action is audited; with
// Redis a revocation made on one instance holds at once on another. Fail-open sessions go
// through Duo once it answers again.
const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
const ADMIN = `sessadmin-${process.pid}`;

let sim: RunningSimulator;

interface SessionRow {
  handle: string;
  createdAt: string;
  lastSeenAt: string;
  clientIp?: string;
  factor?: string;
  application?: string;
  failOpen: boolean;
  [key: string]: unknown;
}

async function signedIn(app: RunningApp, username: string): Promise<Browser> {
  const browser = new Browser();
  const done = await signOn(browser, app.url, username);
  expect(done.status).toBe(303);
  return browser;
}

async function me(browser: Browser, url: string): Promise<number> {
  const res = await browser.fetch(`${url}/me`, { headers: JSON_ACCEPT });
  await res.arrayBuffer();
  return res.status;
}

async function listSessions(admin: Browser, url: string, username: string) {
  const res = await admin.fetch(`${url}/audit/users/${encodeURIComponent(username)}/sessions`, {
    headers: JSON_ACCEPT,
  });
  const text = await res.text();
  return { status: res.status, text, body: JSON.parse(text) as { sessions: SessionRow[] } };
}

/** A JSON POST with this browser's CSRF token in the header, as an API client sends it. */
async function adminPost(admin: Browser, url: string, path: string, csrf = true) {
  const headers: Record<string, string> = { ...JSON_ACCEPT };
  if (csrf) {
    headers['x-csrf-token'] = await admin.csrfToken(url);
  }
  const res = await admin.fetch(`${url}${path}`, { method: 'POST', headers });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

function sessionCookie(browser: Browser): string {
  const entry = [...browser.cookies].find(([k]) => /duo_session$/.test(k));
  return entry ? decodeURIComponent(entry[1]) : '';
}

beforeAll(async () => {
  sim = await startSimulator({ port: 0, auto: 'allow' });
});
afterAll(async () => {
  await sim?.close();
});

describe('session control on one instance (memory stores)', () => {
  let app: RunningApp;
  beforeAll(async () => {
    app = await startApp({ ...simulatorEnv(sim), ...NO_RATE_LIMITS, AUDIT_ADMIN_USERS: ADMIN });
  });
  afterAll(async () => {
    await app?.close();
  });

  it('should list a user two sessions without their ids and revoke one while the other keeps working', async () => {
    const user = uniqueUser('victim');
    const [first, second] = [await signedIn(app, user), await signedIn(app, user)];
    const admin = await signedIn(app, ADMIN);

    const listed = await listSessions(admin, app.url, user);
    expect(listed.status).toBe(200);
    expect(listed.body.sessions).toHaveLength(2);
    for (const s of listed.body.sessions) {
      expect(s.handle).toMatch(/^[A-Za-z0-9_-]{43}$/);
      expect(s).toMatchObject({ failOpen: false, clientIp: '127.0.0.1' });
      expect(typeof s.factor).toBe('string');
      expect(s.application).toBe(sim.clientId);
      expect(Date.parse(s.createdAt)).toBeGreaterThan(Date.now() - 60_000);
      expect(Date.parse(s.lastSeenAt)).toBeGreaterThanOrEqual(Date.parse(s.createdAt));
      expect(s).not.toHaveProperty('id');
      expect(s).not.toHaveProperty('data');
    }
    // Neither raw session id (nor the signed cookie around it) is in the answer.
    for (const b of [first, second]) {
      const raw = sessionCookie(b);
      expect(raw.length).toBeGreaterThan(40);
      expect(listed.text).not.toContain(raw.replace(/^s:/, '').split('.')[0]);
    }
    // Newest first: the second sign-on is listed first; revoke the first sign-on's session.
    const target = listed.body.sessions[1].handle;

    const revoked = await adminPost(
      admin,
      app.url,
      `/audit/users/${encodeURIComponent(user)}/sessions/${target}/revoke`,
    );

    expect(revoked).toEqual({ status: 200, body: { revoked: 1 } });
    expect(await me(first, app.url)).toBe(401);
    expect(await me(second, app.url)).toBe(200);
    const rows = (await auditEvents(app, { username: user, type: 'session_revoked' })).filter(
      (e) => e.detail?.scope === 'one',
    );
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ outcome: 'success', reason: 'admin_revoked' });
    expect(rows[0].detail).toMatchObject({ actor: ADMIN, revoked: 1 });
    // The same handle again: 404, and nothing more recorded.
    const again = await adminPost(
      admin,
      app.url,
      `/audit/users/${encodeURIComponent(user)}/sessions/${target}/revoke`,
    );
    expect(again.status).toBe(404);
    expect(await auditEvents(app, { username: user, type: 'session_revoked' })).toHaveLength(1);
  });

  it('should revoke every session of the user and only theirs when revoke-all is posted', async () => {
    const user = uniqueUser('all');
    const other = uniqueUser('bystander');
    const sessions = [await signedIn(app, user), await signedIn(app, user)];
    const bystander = await signedIn(app, other);
    const admin = await signedIn(app, ADMIN);

    const res = await adminPost(admin, app.url, `/audit/users/${user}/sessions/revoke-all`);

    expect(res).toEqual({ status: 200, body: { revoked: 2 } });
    for (const b of sessions) {
      expect(await me(b, app.url)).toBe(401);
    }
    expect(await me(bystander, app.url)).toBe(200);
    expect(await me(admin, app.url)).toBe(200);
    expect((await listSessions(admin, app.url, user)).body.sessions).toEqual([]);
    const [row] = await auditEvents(app, { username: user, type: 'session_revoked' });
    expect(row.detail).toMatchObject({ actor: ADMIN, scope: 'all', revoked: 2 });
  });

  it('should revoke every session and record user_marked_compromised when the user is marked compromised', async () => {
    const user = uniqueUser('stolen');
    const victim = await signedIn(app, user);
    const admin = await signedIn(app, ADMIN);

    const res = await adminPost(admin, app.url, `/audit/users/${user}/compromised`);

    expect(res).toEqual({ status: 200, body: { compromised: true, revoked: 1 } });
    expect(await me(victim, app.url)).toBe(401);
    const rows = await auditEvents(app, { username: user, type: 'user_marked_compromised' });
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ outcome: 'success', reason: 'compromised' });
    expect(rows[0].detail).toMatchObject({ actor: ADMIN, revoked: 1 });
  });

  it('should refuse a user who is not an audit admin with 403 and an access_denied row, ending nothing', async () => {
    const user = uniqueUser('nosy');
    const target = uniqueUser('target');
    const victim = await signedIn(app, target);
    const nosy = await signedIn(app, user);

    const list = await nosy.fetch(`${app.url}/audit/users/${target}/sessions`, {
      headers: JSON_ACCEPT,
    });
    const revokeAll = await adminPost(nosy, app.url, `/audit/users/${target}/sessions/revoke-all`);
    const compromised = await adminPost(nosy, app.url, `/audit/users/${target}/compromised`);

    expect(list.status).toBe(403);
    expect(revokeAll.status).toBe(403);
    expect(compromised.status).toBe(403);
    expect(await me(victim, app.url)).toBe(200);
    const denied = await auditEvents(app, { username: user, type: 'access_denied' });
    expect(denied.map((e) => e.detail?.path).sort()).toEqual(
      [
        `/audit/users/${target}/sessions`,
        `/audit/users/${target}/sessions/revoke-all`,
        `/audit/users/${target}/compromised`,
      ].sort(),
    );
    expect(await auditEvents(app, { username: target, type: 'session_revoked' })).toEqual([]);
  });

  it('should refuse a revocation without the CSRF token with 403 and end nothing', async () => {
    const user = uniqueUser('csrf');
    const victim = await signedIn(app, user);
    const admin = await signedIn(app, ADMIN);
    const [one] = (await listSessions(admin, app.url, user)).body.sessions;

    const results = await Promise.all([
      adminPost(admin, app.url, `/audit/users/${user}/sessions/revoke-all`, false),
      adminPost(admin, app.url, `/audit/users/${user}/compromised`, false),
      adminPost(admin, app.url, `/audit/users/${user}/sessions/${one.handle}/revoke`, false),
      admin.postForm(`${app.url}/audit/users/${user}/compromised`, { _csrf: 'forged' }),
    ]);

    expect(results.map((r) => r.status)).toEqual([403, 403, 403, 403]);
    expect(await me(victim, app.url)).toBe(200);
    expect(await auditEvents(app, { username: user, type: 'session_revoked' })).toEqual([]);
    expect(await auditEvents(app, { username: user, type: 'user_marked_compromised' })).toEqual([]);
  });

  it('should answer 400 and change nothing when the username or the handle is malformed', async () => {
    const user = uniqueUser('bad');
    const victim = await signedIn(app, user);
    const admin = await signedIn(app, ADMIN);
    const bad = [
      `/audit/users/${user}/sessions/not-a-handle/revoke`,
      `/audit/users/${user}/sessions/${'A'.repeat(44)}/revoke`,
      `/audit/users/%E2%80%AEevil/sessions/revoke-all`,
      `/audit/users/${'x'.repeat(300)}/compromised`,
    ];

    const results = await Promise.all(bad.map((p) => adminPost(admin, app.url, p)));

    expect(results.map((r) => r.status)).toEqual([400, 400, 400, 400]);
    expect(results.every((r) => r.body.error === 'invalid_request')).toBe(true);
    expect(await me(victim, app.url)).toBe(200);
    const list = await admin.fetch(`${app.url}/audit/users/${user}/sessions?x=1`, {
      headers: JSON_ACCEPT,
    });
    expect(list.status).toBe(400);
  });

  it('should revoke through the page forms and come back to the page with a notice', async () => {
    const user = uniqueUser('page');
    const [a, b] = [await signedIn(app, user), await signedIn(app, user)];
    const admin = await signedIn(app, ADMIN);

    const pageRes = await admin.fetch(`${app.url}/audit/sessions?username=${user}`);
    const html = await pageRes.text();
    expect(pageRes.status).toBe(200);
    const forms = [
      ...html.matchAll(/<form class="inline revoke" method="post" action="([^"]+)">/g),
    ];
    expect(forms).toHaveLength(2);
    expect(html).toContain('name="_csrf"');
    const csrf = /name="_csrf" value="([^"]+)"/.exec(html)![1];

    const posted = await admin.postForm(`${app.url}${forms[0][1].replace(/&amp;/g, '&')}`, {
      _csrf: csrf,
    });
    expect(posted.status).toBe(303);
    expect(location(posted)).toBe(`/audit/sessions?username=${user}&done=revoked`);
    expect([await me(a, app.url), await me(b, app.url)].sort()).toEqual([200, 401]);
    const after = await (await admin.fetch(`${app.url}${location(posted)}`)).text();
    expect(after).toContain('id="notice"');
    expect([...after.matchAll(/class="inline revoke"/g)]).toHaveLength(1);
  });
});

describe('session control across two instances sharing Redis', () => {
  const prefix = `duo-sessctl-${randomBytes(6).toString('hex')}:`;
  let a: RunningApp;
  let b: RunningApp;
  beforeAll(async () => {
    const env = {
      ...simulatorEnv(sim),
      ...NO_RATE_LIMITS,
      AUDIT_ADMIN_USERS: ADMIN,
      REDIS_URL,
      REDIS_KEY_PREFIX: prefix,
    };
    [a, b] = await Promise.all([startApp(env), startApp(env)]);
  });
  afterAll(async () => {
    await a?.close();
    await b?.close();
    const redis = new Redis(REDIS_URL, { maxRetriesPerRequest: 1 });
    const keys = await redis.keys(`${prefix}*`);
    if (keys.length > 0) {
      await redis.del(...keys);
    }
    redis.disconnect();
  });

  it('should make a revocation on A hold at once on B', async () => {
    const user = uniqueUser('shared');
    const [first, second] = [await signedIn(a, user), await signedIn(b, user)];
    const admin = await signedIn(a, ADMIN);
    // Both sessions work on both instances.
    for (const app of [a, b]) {
      expect([await me(first, app.url), await me(second, app.url)]).toEqual([200, 200]);
    }

    const listed = await listSessions(admin, a.url, user);
    expect(listed.body.sessions).toHaveLength(2);
    // The older one (first, opened on A) is listed last.
    const res = await adminPost(
      admin,
      a.url,
      `/audit/users/${user}/sessions/${listed.body.sessions[1].handle}/revoke`,
    );

    expect(res.status).toBe(200);
    expect(await me(first, b.url)).toBe(401);
    expect(await me(second, b.url)).toBe(200);
    expect((await listSessions(admin, b.url, user)).body.sessions).toHaveLength(1);
  });

  it('should end on B every session of a user marked compromised on A', async () => {
    const user = uniqueUser('shared-stolen');
    const sessions = [await signedIn(a, user), await signedIn(b, user), await signedIn(b, user)];
    const admin = await signedIn(b, ADMIN);

    const res = await adminPost(admin, a.url, `/audit/users/${user}/compromised`);

    expect(res).toEqual({ status: 200, body: { compromised: true, revoked: 3 } });
    for (const s of sessions) {
      expect(await me(s, b.url)).toBe(401);
      expect(await me(s, a.url)).toBe(401);
    }
    expect(await auditEvents(a, { username: user, type: 'user_marked_compromised' })).toHaveLength(
      1,
    );
  });
});

describe('fail-open sessions once Duo answers again', () => {
  let app: RunningApp;
  beforeAll(async () => {
    app = await startApp({
      ...simulatorEnv(sim),
      ...NO_RATE_LIMITS,
      DUO_FAILMODE: 'open',
      DUO_TIMEOUT_MS: '300',
      DUO_HEALTH_CACHE_MS: '0',
      DUO_BREAKER_THRESHOLD: '1000',
    });
  });
  afterEach(() => {
    sim.control.setFaults({ health: null });
    reverify(true);
  });
  afterAll(async () => {
    await app?.close();
  });

  /** Turns the option on or off in the running app (it is read on every request). */
  function reverify(on: boolean): void {
    const options = app.app.get<NormalizedDuoModuleOptions>(DUO_OPTIONS);
    if (options.failOpen) {
      options.failOpen.reverifyWhenDuoIsBack = on;
    }
  }

  async function failOpenSession(username: string): Promise<Browser> {
    sim.control.setFaults({ health: 'down' });
    const browser = new Browser();
    const res = await postLikeBrowser(browser, app.url, '/login', { username });
    expect(res.status).toBe(303);
    const status = await browser.fetch(`${app.url}/status`, { headers: JSON_ACCEPT });
    expect(await status.json()).toMatchObject({ failOpen: true, mfa: false });
    return browser;
  }

  it('should keep the fail-open session while Duo is down and send it to sign on once Duo is back', async () => {
    const user = uniqueUser('failopen');
    const browser = await failOpenSession(user);
    await new Promise((r) => setTimeout(r, 2_100)); // past the health check's failure cache
    const stillDown = await browser.fetch(`${app.url}/status`, { headers: JSON_ACCEPT });
    expect(stillDown.status).toBe(200);

    sim.control.setFaults({ health: null });
    await new Promise((r) => setTimeout(r, 2_100));
    const back = await browser.fetch(`${app.url}/status`);

    expect(back.status).toBe(303);
    expect(location(back)).toMatch(/^\/(\?|$)/);
    const after = await browser.fetch(`${app.url}/status`, { headers: JSON_ACCEPT });
    expect(after.status).toBe(401);
    const rows = await auditEvents(app, { username: user, type: 'session_expired' });
    expect(rows.map((e) => e.reason)).toEqual(['failopen_reverify']);
  }, 15_000);

  it('should leave the fail-open session alone when re-verification is turned off', async () => {
    const user = uniqueUser('failopen-off');
    const browser = await failOpenSession(user);
    reverify(false);

    sim.control.setFaults({ health: null });
    await new Promise((r) => setTimeout(r, 2_100));
    const res = await browser.fetch(`${app.url}/status`, { headers: JSON_ACCEPT });

    expect(res.status).toBe(200);
    expect(await auditEvents(app, { username: user, type: 'session_expired' })).toEqual([]);
  }, 15_000);

  it('should never end an MFA session when Duo is back', async () => {
    const user = uniqueUser('mfa');
    const browser = await signedIn(app, user);

    const res = await browser.fetch(`${app.url}/status`, { headers: JSON_ACCEPT });

    expect(res.status).toBe(200);
    expect(await auditEvents(app, { username: user, type: 'session_expired' })).toEqual([]);
  });
});
