import { createHmac, hkdfSync } from 'node:crypto';
import { afterAll, afterEach, beforeAll, describe, expect, it, jest } from '@jest/globals';
import { type PendingLoginStore } from '@duo-nest/core';
import { DUO_PENDING_LOGIN_STORE } from '@duo-nest/core/internal';
import { DuoStoreError } from '../packages/core/src/stores/store.errors.js';
import { Browser, type RunningApp } from './support/app-harness.js';
import { startSimAndApp, type SimAndApp } from './support/sim-and-app.js';
import {
  auditEvents,
  JSON_ACCEPT,
  postLikeBrowser,
  sessionCookies,
  signOn,
} from './support/duo-flow.js';

// Issue 11 item 5: every refusal is a 4xx (503 only for real outages) with one audit event; forged
// session cookies are recorded as session_invalid, folded per source and window; a rejected
// username is recorded by length and keyed hash, never raw; a forwarded address that is not an IP
// falls back to the socket's.
const SESSION_SECRET = 'test-session-secret-0123456789abcdefghij';
let app: RunningApp;
let booted: SimAndApp;
let nextIp = 1;

function freshIp(): string {
  nextIp += 1;
  return `192.0.2.${nextIp}`;
}

beforeAll(async () => {
  booted = await startSimAndApp({ env: { TRUST_PROXY: '1' } });
  ({ app } = booted);
});
afterEach(() => {
  jest.restoreAllMocks();
});
afterAll(async () => {
  await booted?.close();
});

describe('forwarded client addresses that are not IPs (TRUST_PROXY=1)', () => {
  it.each([
    ['300 characters', 'x'.repeat(300)],
    ['a host name', 'evil.example'],
    ['an address with a port', '203.0.113.9:443'],
    ['markup', '<script>alert(1)</script>'],
  ])(
    'should sign on with %s in X-Forwarded-For, recorded under the socket address',
    async (_w, xff) => {
      const browser = new Browser();
      const username = `xff-${nextIp++}`;
      const res = await signOn(browser, app.url, username, { 'x-forwarded-for': xff });
      expect(res.status).toBe(303);
      const events = await auditEvents(app, { username });
      expect(events.map((e) => e.type).sort()).toEqual(['mfa_started', 'mfa_succeeded']);
      for (const e of events) {
        expect(e.clientIp).toBe('127.0.0.1');
      }
    },
  );

  it('should keep a forwarded address that is an IP (v4 and v6)', async () => {
    for (const ip of ['198.51.100.77', '2001:db8::77']) {
      const username = `xff-ok-${nextIp++}`;
      const res = await signOn(new Browser(), app.url, username, { 'x-forwarded-for': ip });
      expect(res.status).toBe(303);
      const [started] = await auditEvents(app, { username, type: 'mfa_started' });
      expect(started.clientIp).toBe(ip);
    }
  });
});

describe('store validation errors caused by input', () => {
  it('should answer 400 with one audit event, not an unaudited 5xx', async () => {
    const store = app.app.get<PendingLoginStore>(DUO_PENDING_LOGIN_STORE);
    jest
      .spyOn(store, 'put')
      .mockRejectedValueOnce(new DuoStoreError('invalid_record', 'clientIp is too long'));
    const ip = freshIp();
    const browser = new Browser();
    const res = await postLikeBrowser(
      browser,
      app.url,
      '/login',
      { username: 'store-bad' },
      {
        'x-forwarded-for': ip,
        ...JSON_ACCEPT,
      },
    );
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({ error: 'invalid_request' });
    expect(sessionCookies(browser)).toEqual([]);
    const events = await auditEvents(app, { ip });
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({
      type: 'input_validation_failed',
      reason: 'store_validation',
      username: 'store-bad',
      detail: { store: 'pending-login', store_code: 'invalid_record' },
    });
  });
});

describe('forged, tampered and duplicated session cookies', () => {
  async function validSessionCookie(): Promise<string> {
    const browser = new Browser();
    expect((await signOn(browser, app.url, `victim-${nextIp++}`)).status).toBe(303);
    return browser.cookies.get('duo_session')!;
  }

  it.each([
    [
      'a forged MAC',
      () => Promise.resolve(`duo_session=${'A'.repeat(43)}.${'B'.repeat(43)}`),
      'cookie_forged',
    ],
    [
      'a tampered id',
      async () => {
        const v = await validSessionCookie();
        return `duo_session=x${v.slice(1)}`;
      },
      'cookie_forged',
    ],
    ['no MAC at all', () => Promise.resolve('duo_session=justanid'), 'cookie_malformed'],
    ['a percent-escaped value', () => Promise.resolve('duo_session=a%2Eb'), 'cookie_malformed'],
    [
      'two session cookies',
      async () => {
        const v = await validSessionCookie();
        return `duo_session=${v}; duo_session=${v}`;
      },
      'cookie_duplicate',
    ],
  ])('should refuse %s and record one session_invalid', async (_w, cookie, reason) => {
    const ip = freshIp();
    const header = await cookie();
    const res = await fetch(`${app.url}/me`, {
      headers: { cookie: header, 'x-forwarded-for': ip, ...JSON_ACCEPT },
    });
    expect(res.status).toBe(401);
    const events = await auditEvents(app, { ip });
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({
      type: 'session_invalid',
      outcome: 'failure',
      reason,
      clientIp: ip,
      detail: { path: '/me' },
    });
    // Never the cookie itself.
    expect(JSON.stringify(events[0])).not.toContain(header.split('=')[1].slice(0, 20));
  });

  it('should fold a flood of forged cookies from one source into one row per window', async () => {
    const ip = freshIp();
    for (let i = 0; i < 40; i += 1) {
      const res = await fetch(`${app.url}/me`, {
        headers: {
          cookie: `duo_session=${String(i).padStart(43, 'A')}.${'B'.repeat(43)}`,
          'x-forwarded-for': ip,
          ...JSON_ACCEPT,
        },
      });
      expect(res.status).toBe(401);
    }
    expect(await auditEvents(app, { ip, type: 'session_invalid' })).toHaveLength(1);
  });

  it('should record nothing for a request without a session cookie', async () => {
    const ip = freshIp();
    const res = await fetch(`${app.url}/me`, {
      headers: { 'x-forwarded-for': ip, ...JSON_ACCEPT },
    });
    expect(res.status).toBe(401);
    expect(await auditEvents(app, { ip })).toEqual([]);
  });
});

describe('rejected usernames', () => {
  it('should record the length and a keyed hash (HKDF of SESSION_SECRET), never the value', async () => {
    const ip = freshIp();
    const username = 'alice\u202egnp.exe';
    const res = await postLikeBrowser(
      new Browser(),
      app.url,
      '/login',
      { username },
      {
        'x-forwarded-for': ip,
        ...JSON_ACCEPT,
      },
    );
    expect(res.status).toBe(400);
    const [event] = await auditEvents(app, { ip });
    const key = Buffer.from(
      hkdfSync('sha256', SESSION_SECRET, Buffer.alloc(0), 'duo-nest/input-hash/v1', 32),
    );
    const expected = createHmac('sha256', key)
      .update(username)
      .digest()
      .subarray(0, 16)
      .toString('base64url');
    expect(event).toMatchObject({
      type: 'input_validation_failed',
      reason: 'invalid_username',
      username: null,
      detail: { field: 'username', why: 'format', length: 13, hmac: expected },
    });
    const row = JSON.stringify(event);
    expect(row).not.toContain('gnp');
    expect(row).not.toContain('alice');
  });

  it('should give the same hash for the same value and another for another', async () => {
    const hashes: unknown[] = [];
    for (const username of ['x\u200by', 'x\u200by', 'x\u200bz']) {
      const ip = freshIp();
      await postLikeBrowser(
        new Browser(),
        app.url,
        '/login',
        { username },
        {
          'x-forwarded-for': ip,
          ...JSON_ACCEPT,
        },
      );
      hashes.push((await auditEvents(app, { ip }))[0].detail?.hmac);
    }
    expect(hashes[0]).toBe(hashes[1]);
    expect(hashes[2]).not.toBe(hashes[0]);
  });
});

describe('other refusals before any route', () => {
  it('should audit a body over the size limit (413)', async () => {
    const ip = freshIp();
    const browser = new Browser();
    const token = await browser.csrfToken(app.url);
    const res = await browser.fetch(`${app.url}/login`, {
      method: 'POST',
      body: `_csrf=${token}&username=${'a'.repeat(20_000)}`,
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        'x-forwarded-for': ip,
        ...JSON_ACCEPT,
      },
    });
    expect(res.status).toBe(413);
    const events = await auditEvents(app, { ip });
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({ type: 'input_validation_failed', reason: 'body_too_large' });
  });

  it('should audit malformed JSON (400)', async () => {
    const ip = freshIp();
    const res = await fetch(`${app.url}/login`, {
      method: 'POST',
      body: '{"username":',
      headers: { 'content-type': 'application/json', 'x-forwarded-for': ip, ...JSON_ACCEPT },
    });
    expect(res.status).toBe(400);
    expect(await auditEvents(app, { ip })).toMatchObject([{ reason: 'body_malformed' }]);
  });

  it('should audit a callback reached by another method than GET (405)', async () => {
    const ip = freshIp();
    const res = await fetch(`${app.url}/auth/duo/callback`, {
      method: 'DELETE',
      headers: { 'x-forwarded-for': ip, ...JSON_ACCEPT },
    });
    expect(res.status).toBe(405);
    expect(await auditEvents(app, { ip })).toMatchObject([{ reason: 'method_not_allowed' }]);
  });
});
