/**
 * Catalogue 2.9 (MUL): several instances of the REAL app behind one public URL (each instance is
 * an in-process app; the test plays the round-robin balancer by choosing the instance per request),
 * the in-process simulator, and the real Redis under a fresh key prefix per run.
 *
 * Referenced, not duplicated (their owners' tests prove them):
 * - MUL-05 Redis down at login start, MUL-06 Redis down at callback: test/redis-down.e2e-spec.ts
 *   ("should answer 503 unavailable to a sign-on start...", "...to a callback whose pending login
 *   cannot be read").
 * - MUL-12 rate limits and the audit chain across instances: RL-05 in test/rate-limit.e2e-spec.ts
 *   and AUD-14 in test/security/aud.e2e-spec.ts.
 * MUL-09 is not in the catalogue.
 */
import { afterAll, beforeAll, describe, expect, it, jest } from '@jest/globals';
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { type RunningApp, Browser } from '../support/app-harness.js';
import { auditEvents, JSON_ACCEPT, postLikeBrowser, uniqueUser } from '../support/duo-flow.js';
import {
  me,
  onInstance,
  REDIS_URL,
  sessionId,
  type Stack,
  startInstance,
  startStack,
} from '../support/security-stack.js';

jest.setTimeout(30_000);

const PUBLIC = 'http://app.test';
const prefix = `sec-mul-${randomBytes(4).toString('hex')}:`;
const shared = {
  PUBLIC_URL: PUBLIC,
  DUO_REDIRECT_URI: `${PUBLIC}/auth/duo/callback`,
};
const withRedis = { ...shared, REDIS_URL, REDIS_KEY_PREFIX: prefix };

let stack: Stack; // instance A, memory stores
let memB: RunningApp;
let redisApps: RunningApp[] = [];
let redis: Redis;

beforeAll(async () => {
  stack = await startStack(shared);
  memB = await startInstance(stack, shared);
  redisApps = await Promise.all([0, 1, 2].map(() => startInstance(stack, withRedis)));
  redis = new Redis(REDIS_URL);
});

afterAll(async () => {
  await Promise.all(redisApps.map((a) => a.close()));
  await memB?.close();
  await stack?.close();
  if (redis) {
    const keys = await redis.keys(`${prefix}*`);
    if (keys.length > 0) {
      await redis.del(...keys);
    }
    redis.disconnect();
  }
});

/** Start on `a` (its own URL), Duo, and the callback URL Duo sent (on the public origin). */
async function startOn(a: RunningApp, username = uniqueUser('mul')) {
  const browser = new Browser();
  const start = await postLikeBrowser(browser, a.url, '/login', { username });
  expect(start.status).toBe(303);
  const duo = await browser.fetch(start.headers.get('location') ?? '');
  expect(duo.status).toBe(302);
  const callback = duo.headers.get('location') ?? '';
  expect(callback.startsWith(`${PUBLIC}/auth/duo/callback?`)).toBe(true);
  return { browser, callback, username, state: new URL(callback).searchParams.get('state') ?? '' };
}

async function pendingKey(state: string): Promise<string> {
  const keys = await redis.keys(`${prefix}pending:*${state}*`);
  expect(keys).toHaveLength(1);
  return keys[0];
}

describe('MUL: multi-instance behaviour', () => {
  it('MUL-01 should answer state_unknown (sign in again), not 500, when a memory-store callback lands on another instance', async () => {
    const { browser, callback } = await startOn(stack.app);
    const res = await browser.fetch(onInstance(callback, memB), { headers: JSON_ACCEPT });
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({
      error: 'state_unknown',
      message: expect.stringMatching(/start again/),
    });
  });

  it('MUL-02 should complete on B a sign-on started on A with the Redis store and delete the pending record', async () => {
    const [a, b] = redisApps;
    const { browser, callback, state } = await startOn(a);
    await pendingKey(state);
    const done = await browser.fetch(onInstance(callback, b));
    expect(done.status).toBe(303);
    expect(await redis.keys(`${prefix}pending:*${state}*`)).toHaveLength(0);
    const replay = await browser.fetch(onInstance(callback, a), { headers: JSON_ACCEPT });
    expect(replay.status).toBe(400);
  });

  it('MUL-03 should complete every concurrent sign-on when requests round-robin over 3 instances', async () => {
    const users = Array.from({ length: 30 }, (_, i) => i);
    const results = await Promise.all(
      users.map(async (i) => {
        const { browser, callback } = await startOn(redisApps[i % 3]);
        const done = await browser.fetch(onInstance(callback, redisApps[(i + 1) % 3]), {
          headers: JSON_ACCEPT,
        });
        const who = await me(browser, redisApps[(i + 2) % 3].url);
        return { status: done.status, me: who.status };
      }),
    );
    expect(results.filter((r) => r.status === 303 && r.me === 200)).toHaveLength(users.length);
  });

  it('MUL-04 should let exactly one of the same callback hitting A and B at once succeed', async () => {
    const [a, b] = redisApps;
    const { browser, callback } = await startOn(a);
    const cookie = [...browser.cookies].map(([k, v]) => `${k}=${v}`).join('; ');
    const before = stack.sim.control.stats().token;
    const answers = await Promise.all(
      [a, b].map((x) =>
        fetch(onInstance(callback, x), { headers: { cookie, ...JSON_ACCEPT }, redirect: 'manual' }),
      ),
    );
    expect(answers.map((r) => r.status).sort()).toEqual([303, 400]);
    expect(stack.sim.control.stats().token - before).toBe(1);
  });

  it('MUL-07 should answer state_unknown cleanly when Redis lost the pending record (flush, eviction, failover)', async () => {
    const [a, b] = redisApps;
    const { browser, callback, state } = await startOn(a);
    await redis.del(await pendingKey(state));
    const before = stack.sim.control.stats().token;
    const res = await browser.fetch(onInstance(callback, b), { headers: JSON_ACCEPT });
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({ error: 'state_unknown' });
    expect(stack.sim.control.stats().token).toBe(before);
  });

  it('MUL-08 should bound every pending record with a Redis PX TTL (pinned: TTL + 1 h report grace)', async () => {
    const { state } = await startOn(redisApps[0]);
    const key = await pendingKey(state);
    const pttl = await redis.pttl(key);
    // Redis drops the record on its own, whatever the instance clocks say; the deadline itself
    // (expiresAt) is compared by the taking instance (see docs/security-cases-choices.md).
    expect(pttl).toBeGreaterThan(0);
    expect(pttl).toBeLessThanOrEqual(600_000 + 3_600_000);
    const record = JSON.parse((await redis.get(key)) ?? '{}') as Record<string, number>;
    expect(record.expiresAt - record.createdAt).toBe(600_000);
  });

  it('MUL-10 should honour on B a session made on A, and a logout on A at once on B', async () => {
    const [a, b] = redisApps;
    const { browser, callback } = await startOn(a);
    expect((await browser.fetch(onInstance(callback, a))).status).toBe(303);
    expect((await me(browser, b.url)).status).toBe(200);
    const stolen = new Browser();
    browser.cookies.forEach((v, k) => stolen.cookies.set(k, v));
    const fields: Record<string, string> = await (async () => {
      const page = await (await browser.fetch(`${a.url}/result`)).text();
      const csrf = /name="_csrf" value="([^"]*)"/.exec(page)?.[1];
      const out: Record<string, string> = {};
      if (csrf) {
        out._csrf = csrf;
      }
      return out;
    })();
    expect((await browser.postForm(`${a.url}/logout`, fields)).status).toBe(303);
    expect((await me(stolen, b.url)).status).toBe(401);
  });

  it('MUL-11 should fail cleanly (400, not 500) when the pending record was written in another format', async () => {
    const [a, b] = redisApps;
    const { browser, callback, state } = await startOn(a);
    const key = await pendingKey(state);
    const type = await redis.type(key);
    if (type === 'string') {
      const record = JSON.parse((await redis.get(key)) ?? '{}') as Record<string, unknown>;
      delete record.bindingHash;
      await redis.set(key, JSON.stringify({ ...record, v: 99 }), 'KEEPTTL');
    } else {
      await redis.hdel(key, ...(await redis.hkeys(key)).slice(0, 1));
    }
    const res = await browser.fetch(onInstance(callback, b), { headers: JSON_ACCEPT });
    expect(res.status).toBeGreaterThanOrEqual(400);
    expect(res.status).toBeLessThan(500);
    expect(sessionId(browser)).toBeUndefined();
  });

  it.each([
    ['ignore a client X-Forwarded-For when no proxy hop is trusted', '0', false],
    ['use X-Forwarded-For from the one configured proxy hop', '1', true],
  ])('MUL-13 should %s', async (_w, hops, used) => {
    const app =
      hops === '0' ? stack.app : await startInstance(stack, { ...shared, TRUST_PROXY: hops });
    try {
      const username = uniqueUser('mul13');
      await postLikeBrowser(
        new Browser(),
        app.url,
        '/login',
        { username },
        { 'x-forwarded-for': '203.0.113.9' },
      );
      const started = (await auditEvents(app, { username }, { limit: 500 })).find(
        (e) => e.type === 'mfa_started',
      );
      expect(started).toBeDefined();
      expect(JSON.stringify(started).includes('203.0.113.9')).toBe(used);
    } finally {
      if (app !== stack.app) {
        await app.close();
      }
    }
  });
});
