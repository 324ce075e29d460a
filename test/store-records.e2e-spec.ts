import { createHash, randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { Redis } from 'ioredis';
import { DuoSessionService } from '@duo-nest/core/internal';
import { Browser, location, type RunningApp } from './support/app-harness.js';
import { startSimAndApp, type SimAndApp } from './support/sim-and-app.js';
import {
  auditEvents,
  JSON_ACCEPT,
  NO_RATE_LIMITS,
  signOn,
  signOnToCallback,
  uniqueUser,
} from './support/duo-flow.js';

// Issue 11 item 2 through HTTP against the real Redis: an attacker who can write Redis edits a
// session (username, groups), a pending login (expiresAt, returnTo), or copies a record under
// another key. Every such record fails its MAC: it counts as absent, is audited once as
// store_record_invalid, and is counted in /metrics.
const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
const PREFIX = `test:store-records:${randomBytes(6).toString('hex')}:`;

let app: RunningApp;
let booted: SimAndApp;
let redis: Redis;

beforeAll(async () => {
  booted = await startSimAndApp({
    env: { REDIS_URL, REDIS_KEY_PREFIX: PREFIX, ...NO_RATE_LIMITS },
  });
  ({ app } = booted);
  redis = new Redis(REDIS_URL);
});
afterAll(async () => {
  await booted?.close();
  const keys = await redis.keys(`${PREFIX}*`);
  if (keys.length > 0) {
    await redis.del(...keys);
  }
  await redis.quit();
});

/** The Redis key of the session behind this browser's cookie. */
function sessionKey(browser: Browser): string {
  const cookies = app.app.get(DuoSessionService).cookies;
  const raw = browser.cookies.get(cookies.session)!;
  const id = raw.slice(0, raw.lastIndexOf('.'));
  return `${PREFIX}sess:s:${createHash('sha256').update(id).digest('base64url')}`;
}

/** A signed-on browser of a fresh user (no Duo groups). */
async function signedOn(prefix: string): Promise<{ browser: Browser; username: string }> {
  const browser = new Browser();
  const username = uniqueUser(prefix);
  const res = await signOn(browser, app.url, username);
  expect(res.status).toBe(303);
  return { browser, username };
}

/** Starts a sign-on and answers the callback URL Duo sent back, and the pending login's key. */
async function pendingSignOn(username: string) {
  const browser = new Browser();
  const before = new Set(await redis.keys(`${PREFIX}pending:l:*`));
  const callback = await signOnToCallback(browser, app.url, username);
  const key = (await redis.keys(`${PREFIX}pending:l:*`)).find((k) => !before.has(k))!;
  expect(new URL(callback).searchParams.get('state')).toBe(key.slice(key.lastIndexOf(':') + 1));
  return { browser, callback, key };
}

async function invalidRows(): Promise<number> {
  return (await auditEvents(app, { type: 'store_record_invalid' })).length;
}

async function metricCount(): Promise<number> {
  const text = await (await fetch(`${app.url}/metrics`)).text();
  const m = /^duo_nest_auth_events_total\{type="store_record_invalid",[^}]*\} (\d+)$/m.exec(text);
  return m ? Number(m[1]) : 0;
}

describe('store records edited in Redis', () => {
  it('should refuse a session whose username and groups were edited to an admin, audit it once and count it', async () => {
    const { browser } = await signedOn('mallory');
    expect((await browser.fetch(`${app.url}/admin`, { headers: JSON_ACCEPT })).status).toBe(403);
    const rows = await invalidRows();
    const counted = await metricCount();
    const key = sessionKey(browser);
    const c = (await redis.hget(key, 'c'))!;
    await redis.hset(
      key,
      'c',
      c
        .replace(/"username":"[^"]+"/, '"username":"admin"')
        .replace('"groups":[]', '"groups":["admins"]'),
    );

    const admin = await browser.fetch(`${app.url}/admin`, { headers: JSON_ACCEPT });
    const again = await browser.fetch(`${app.url}/me`, { headers: JSON_ACCEPT });

    expect(admin.status).not.toBe(200);
    expect(admin.status).toBe(401);
    expect(again.status).toBe(401);
    expect(await invalidRows()).toBe(rows + 1);
    const [row] = await auditEvents(app, { type: 'store_record_invalid' });
    expect(row).toMatchObject({ outcome: 'failure', reason: 'session_mac' });
    expect(await metricCount()).toBe(counted + 1);
    expect(await redis.exists(key)).toBe(0);
  });

  it('should refuse a session whose idle and absolute expiry were pushed out', async () => {
    const { browser } = await signedOn('pusher');
    const rows = await invalidRows();
    const key = sessionKey(browser);
    const t = (await redis.hget(key, 't'))!;
    const [last, idle, abs] = t.split(',').map(Number);
    const TEN_DAYS = 10 * 86_400_000;
    await redis.hset(key, 't', `${last},${idle + TEN_DAYS},${abs + TEN_DAYS}`);
    await redis.pexpire(key, TEN_DAYS);

    expect((await browser.fetch(`${app.url}/me`, { headers: JSON_ACCEPT })).status).toBe(401);
    expect(await invalidRows()).toBe(rows + 1);
  });

  it('should refuse a session copied under another session key, even with its id hash rewritten', async () => {
    const victim = await signedOn('victim');
    const attacker = await signedOn('attacker');
    const rows = await invalidRows();
    const from = sessionKey(victim.browser);
    const to = sessionKey(attacker.browser);
    const fields = await redis.hgetall(from);
    const hashOf = (k: string) => k.slice(k.lastIndexOf(':') + 1);
    await redis.del(to);
    await redis.hset(to, { ...fields, c: fields.c.replace(hashOf(from), hashOf(to)) });
    await redis.pexpire(to, 600_000);

    const me = await attacker.browser.fetch(`${app.url}/me`, { headers: JSON_ACCEPT });

    expect(me.status).toBe(401);
    expect(await invalidRows()).toBe(rows + 1);
    const victimMe = await victim.browser.fetch(`${app.url}/me`, { headers: JSON_ACCEPT });
    expect(await victimMe.json()).toMatchObject({ username: victim.username });
  });

  it('should refuse a pending login whose expiresAt was pushed ten days ahead', async () => {
    const { browser, callback, key } = await pendingSignOn(uniqueUser('late'));
    const rows = await invalidRows();
    const record = JSON.parse((await redis.get(key))!) as Record<string, number>;
    record.expiresAt += 10 * 86_400_000;
    await redis.set(key, JSON.stringify(record), 'KEEPTTL');

    const res = await browser.fetch(callback, { headers: JSON_ACCEPT });

    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({ error: 'state_unknown' });
    expect(await invalidRows()).toBe(rows + 1);
    expect((await auditEvents(app, { type: 'store_record_invalid' }))[0]).toMatchObject({
      reason: 'pending_login_mac',
    });
  });

  it('should refuse a pending login whose returnTo was changed', async () => {
    const { browser, callback, key } = await pendingSignOn(uniqueUser('steered'));
    const rows = await invalidRows();
    const record = JSON.parse((await redis.get(key))!) as Record<string, string>;
    record.returnTo = '/admin';
    await redis.set(key, JSON.stringify(record), 'KEEPTTL');

    const res = await browser.fetch(callback);

    expect(res.status).not.toBe(303);
    expect(res.headers.get('location')).toBeNull();
    expect(await invalidRows()).toBe(rows + 1);
  });

  it('should refuse a pending login copied under another state', async () => {
    const first = await pendingSignOn(uniqueUser('copied'));
    const second = await pendingSignOn(uniqueUser('copied'));
    const rows = await invalidRows();
    const stateOf = (k: string) => k.slice(k.lastIndexOf(':') + 1);
    // The second sign-on's record, moved under the first one's state (its own state rewritten).
    const raw = (await redis.get(second.key))!;
    await redis.set(first.key, raw.replace(stateOf(second.key), stateOf(first.key)), 'KEEPTTL');

    const res = await second.browser.fetch(
      first.callback.replace(
        /duo_code=[^&]+/,
        new URL(second.callback).search.match(/duo_code=[^&]+/)![0],
      ),
      { headers: JSON_ACCEPT },
    );

    expect(res.status).toBe(400);
    expect(await invalidRows()).toBe(rows + 1);
  });

  it('should still complete an untouched sign-on', async () => {
    const { browser, callback } = await pendingSignOn(uniqueUser('honest'));
    const res = await browser.fetch(callback);
    expect(res.status).toBe(303);
    expect(location(res)).toBe('/result');
  });
});
