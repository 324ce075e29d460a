import { createHash, randomBytes } from 'node:crypto';

import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { MEMORY_RECORDS, StoreRecordSealer, type InvalidStoreRecord } from './record-seal.js';
import { MemorySessionStore } from './memory-session.store.js';
import { RedisSessionStore, type RedisSessionStoreOptions } from './redis-session.store.js';
import { SESSION_MAX_DATA_BYTES } from './session-record.js';
import type {
  NewMfaSession,
  SessionStore,
  SessionTimeoutOptions,
} from './session-store.interface.js';
import {
  storeBackends,
  type IoRedisConnection,
  type StoreBackend,
} from '../../../../test/support/store-backends.js';

const backends = storeBackends('duo-sess', { beforeAll, afterAll });
const SEALER = new StoreRecordSealer('store-spec-secret-0123456789abcdefghijklmnop');
const T0 = 1_800_000_000_000;
const IDLE = 15 * 60_000;
const ABSOLUTE = 8 * 3_600_000;
const TOUCH = 60_000;
const hashOf = (id: string) => createHash('sha256').update(id).digest('base64url');

/** Every string Redis holds under a key: its name, and its fields, members and values. */
async function everythingUnder(b: StoreBackend, prefix: string): Promise<string[]> {
  const redis = b.redis;
  const out: string[] = [];
  for (const key of await b.keysUnder(prefix)) {
    out.push(key);
    const type = await redis.type(key);
    if (type === 'hash') {
      const h = await redis.hgetall(key);
      out.push(...Object.keys(h), ...Object.values(h));
    } else if (type === 'set') {
      out.push(...(await redis.smembers(key)));
    } else if (type === 'zset') {
      out.push(...(await redis.zrange(key, 0, -1)));
    } else if (type === 'string') {
      out.push((await redis.get(key)) ?? '');
    } else {
      out.push(`unexpected type ${type}`);
    }
  }
  return out;
}

function input(overrides: Partial<NewMfaSession> = {}): NewMfaSession {
  return {
    username: 'alice',
    mfa: true,
    failOpen: false,
    txid: 'b3a2c1d0-0000-4000-8000-000000000001',
    factor: 'duo_push',
    authTime: T0 / 1000,
    groups: ['admins', 'staff'],
    application: 'DIXXXXXXXXXXXXXXXXXX',
    duoResult: 'success',
    duoReason: 'user_approved',
    clientIp: '203.0.113.7',
    userAgent: 'Mozilla/5.0 (test)',
    data: { csrf: 'token-1', last: { result: 'allow' } },
    ...overrides,
  };
}

const timeouts = {
  idleTimeoutMs: IDLE,
  absoluteTimeoutMs: ABSOLUTE,
  touchIntervalMs: TOUCH,
  sealer: SEALER,
} satisfies SessionTimeoutOptions;
const variants: [string, () => SessionStore][] = [
  ['MemorySessionStore', () => new MemorySessionStore({ maxEntries: 1_000, ...timeouts })],
  ...backends.map((b): [string, () => SessionStore] => [
    `RedisSessionStore on ${b.name}`,
    () => new RedisSessionStore(b.redis, { prefix: b.freshPrefix(), ...timeouts }),
  ]),
];

describe.each(variants)('SessionStore contract: %s', (_name, makeStore) => {
  it('should generate a distinct 256-bit id and the timestamps when creating', async () => {
    const store = makeStore();

    const a = await store.create(input(), T0);
    const b = await store.create(input(), T0);

    expect(a.id).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(b.id).not.toBe(a.id);
    expect(a).toMatchObject({
      ...input(),
      createdAt: T0,
      lastSeenAt: T0,
      idleExpiresAt: T0 + IDLE,
      absoluteExpiresAt: T0 + ABSOLUTE,
    });
  });

  it('should return the active session when got before any expiry', async () => {
    const store = makeStore();
    const created = await store.create(input(), T0);

    const found = await store.get(created.id, T0 + 1_000);

    expect(found).toEqual({ status: 'active', session: created });
  });

  it('should return missing when the id is unknown or malformed', async () => {
    const store = makeStore();
    const created = await store.create(input(), T0);
    const unknown = randomBytes(32).toString('base64url');

    const results = await Promise.all(
      [unknown, '', 'short', `${created.id}x`, created.id.slice(1) + '*'].map((id) =>
        store.get(id, T0),
      ),
    );

    expect(results.every((r) => r.status === 'missing')).toBe(true);
  });

  it('should report idle expiry once and then missing when unused for the idle timeout', async () => {
    const store = makeStore();
    const created = await store.create(input(), T0);

    const first = await store.get(created.id, T0 + IDLE);
    const second = await store.get(created.id, T0 + IDLE + 1);

    expect(first).toEqual({ status: 'expired', reason: 'idle', session: created });
    expect(second).toEqual({ status: 'missing' });
  });

  it('should report absolute expiry when the session was kept active past its lifetime', async () => {
    const store = makeStore();
    const created = await store.create(input(), T0);
    for (let t = T0 + IDLE / 2; t < T0 + ABSOLUTE; t += IDLE / 2) {
      expect((await store.get(created.id, t)).status).toBe('active');
    }

    const late = await store.get(created.id, T0 + ABSOLUTE);

    expect(late).toMatchObject({ status: 'expired', reason: 'absolute' });
    expect(await store.get(created.id, T0 + ABSOLUTE)).toEqual({ status: 'missing' });
  });

  it('should slide the idle expiry when got after the touch interval', async () => {
    const store = makeStore();
    const created = await store.create(input(), T0);

    const touched = await store.get(created.id, T0 + TOUCH);
    const later = await store.get(created.id, T0 + IDLE + 1);

    expect(touched).toMatchObject({
      status: 'active',
      session: { lastSeenAt: T0 + TOUCH, idleExpiresAt: T0 + TOUCH + IDLE },
    });
    expect(later).toMatchObject({ status: 'active', session: { lastSeenAt: T0 + IDLE + 1 } });
  });

  it('should not touch the session when got again within the touch interval', async () => {
    const store = makeStore();
    const created = await store.create(input(), T0);

    await store.get(created.id, T0 + TOUCH - 1);
    const expired = await store.get(created.id, T0 + IDLE);

    expect(expired).toMatchObject({
      status: 'expired',
      reason: 'idle',
      session: { lastSeenAt: T0, idleExpiresAt: T0 + IDLE },
    });
  });

  it('should replace the app data when updated', async () => {
    const store = makeStore();
    const created = await store.create(input(), T0);

    const updated = await store.update(created.id, { data: { csrf: 'token-2', n: 3 } }, T0 + 1);
    const found = await store.get(created.id, T0 + 2);

    expect(updated).toBe(true);
    expect(found).toMatchObject({ status: 'active', session: { data: { csrf: 'token-2', n: 3 } } });
  });

  it('should refuse to update when the session is missing or expired', async () => {
    const store = makeStore();
    const created = await store.create(input(), T0);

    const unknown = await store.update(randomBytes(32).toString('base64url'), { data: {} }, T0);
    const expired = await store.update(created.id, { data: { x: 1 } }, T0 + IDLE);

    expect(unknown).toBe(false);
    expect(expired).toBe(false);
    expect(await store.get(created.id, T0 + IDLE)).toMatchObject({
      status: 'expired',
      session: { data: input().data },
    });
  });

  it('should reject app data when it is too large or not a JSON object', async () => {
    const store = makeStore();
    const created = await store.create(input(), T0);

    await expect(
      store.update(created.id, { data: { big: 'x'.repeat(SESSION_MAX_DATA_BYTES) } }, T0),
    ).rejects.toMatchObject({ code: 'record_too_large' });
    await expect(
      store.update(created.id, { data: [1, 2] as unknown as Record<string, unknown> }, T0),
    ).rejects.toMatchObject({ code: 'invalid_record' });
    await expect(
      store.create(input({ data: { n: 10n } as unknown as Record<string, unknown> }), T0),
    ).rejects.toMatchObject({ code: 'invalid_record' });
    expect(await store.get(created.id, T0)).toMatchObject({ session: { data: input().data } });
  });

  it('should reject the session when its identity is malformed', async () => {
    const store = makeStore();
    const bad: Partial<NewMfaSession>[] = [
      { mfa: true, failOpen: true },
      { username: '' },
      { username: 'a\u0000b' },
      { groups: ['ok', 7 as unknown as string] },
      { authTime: -5 },
      { txid: 'x'.repeat(500) },
    ];

    for (const b of bad) {
      await expect(store.create(input(b), T0)).rejects.toMatchObject({ code: 'invalid_record' });
    }
    expect(await store.count()).toBe(0);
  });

  it('should return missing on every later get when the session is destroyed', async () => {
    const store = makeStore();
    const created = await store.create(input(), T0);

    const first = await store.destroy(created.id);
    const second = await store.destroy(created.id);

    expect(first).toBe(true);
    expect(second).toBe(false);
    expect(await store.get(created.id, T0 + 1)).toEqual({ status: 'missing' });
    expect(await store.update(created.id, { data: {} }, T0 + 1)).toBe(false);
  });

  it('should destroy only that user sessions when destroying all for a user', async () => {
    const store = makeStore();
    const alice = [await store.create(input(), T0), await store.create(input(), T0)];
    const bob = await store.create(input({ username: 'bob' }), T0);
    await store.destroy(alice[1].id);

    const n = await store.destroyAllForUser('alice');

    expect(n).toBe(1);
    expect(await store.get(alice[0].id, T0)).toEqual({ status: 'missing' });
    expect((await store.get(bob.id, T0)).status).toBe('active');
    expect(await store.destroyAllForUser('alice')).toBe(0);
    expect(await store.destroyAllForUser('nobody')).toBe(0);
  });

  it('should list only the live sessions of that user by handle when listing for a user', async () => {
    const store = makeStore();
    const older = await store.create(input(), T0);
    const newer = await store.create(input({ factor: 'phone_call' }), T0 + 1_000);
    const stale = await store.create(input(), T0 - IDLE);
    await store.create(input({ username: 'bob' }), T0);

    const listed = await store.listForUser('alice', T0 + TOUCH + 1);

    expect(listed.map((s) => s.handle)).toEqual([hashOf(newer.id), hashOf(older.id)]);
    expect(listed[0]).toMatchObject({
      username: 'alice',
      mfa: true,
      factor: 'phone_call',
      application: input().application,
      clientIp: input().clientIp,
      createdAt: T0 + 1_000,
      lastSeenAt: T0 + 1_000,
    });
    expect(JSON.stringify(listed)).not.toContain(newer.id);
    expect(listed.every((s) => !('id' in s) && !('data' in s))).toBe(true);
    // Listing is not activity, and an expired session is left for get to report once.
    expect(await store.get(stale.id, T0 + TOUCH + 1)).toMatchObject({ status: 'expired' });
    expect(await store.get(older.id, T0 + IDLE)).toMatchObject({ status: 'expired' });
    expect(await store.listForUser('nobody', T0)).toEqual([]);
  });

  it('should destroy one session of that user when destroyed by its handle', async () => {
    const store = makeStore();
    const [a, b] = [await store.create(input(), T0), await store.create(input(), T0)];
    const bob = await store.create(input({ username: 'bob' }), T0);

    const wrongUser = await store.destroyByHandle('alice', hashOf(bob.id));
    const malformed = await Promise.all(
      ['', 'short', a.id, `${hashOf(a.id)}x`, '../s/x'].map((h) =>
        store.destroyByHandle('alice', h),
      ),
    );
    const done = await store.destroyByHandle('alice', hashOf(a.id));
    const again = await store.destroyByHandle('alice', hashOf(a.id));

    expect(wrongUser).toBe(false);
    expect(malformed.every((r) => r === false)).toBe(true);
    expect([done, again]).toEqual([true, false]);
    expect(await store.get(a.id, T0)).toEqual({ status: 'missing' });
    expect((await store.get(b.id, T0)).status).toBe('active');
    expect((await store.get(bob.id, T0)).status).toBe('active');
    expect((await store.listForUser('alice', T0)).map((s) => s.handle)).toEqual([hashOf(b.id)]);
  });

  it('should hand out copies when the caller mutates a returned session', async () => {
    const store = makeStore();
    const created = await store.create(input(), T0);
    created.groups.push('root');
    created.data.csrf = 'forged';

    const found = await store.get(created.id, T0);

    expect(found).toMatchObject({ session: { groups: ['admins', 'staff'], data: input().data } });
  });

  it('should count held sessions when some are created and destroyed', async () => {
    const store = makeStore();
    const s = [await store.create(input(), T0), await store.create(input(), T0)];
    await store.create(input({ username: 'bob' }), T0);
    await store.destroy(s[0].id);

    expect(await store.count()).toBe(2);
  });

  it('should keep a fail-open session marked without MFA when stored', async () => {
    const store = makeStore();
    const created = await store.create(
      input({
        mfa: false,
        failOpen: true,
        txid: undefined,
        factor: undefined,
        authTime: undefined,
        duoResult: undefined,
        duoReason: undefined,
      }),
      T0,
    );

    const found = await store.get(created.id, T0);

    expect(found).toMatchObject({ status: 'active', session: { mfa: false, failOpen: true } });
    expect(found.status === 'active' && 'txid' in found.session).toBe(false);
  });
});

describe(MemorySessionStore.name, () => {
  it('should evict the session closest to expiry when full of live sessions', async () => {
    const store = new MemorySessionStore({ maxEntries: 3, ...timeouts });
    const a = await store.create(input(), T0);
    const b = await store.create(input(), T0 + 1_000);
    const c = await store.create(input(), T0 + 2_000);
    await store.get(a.id, T0 + TOUCH * 2);

    const d = await store.create(input(), T0 + TOUCH * 2);

    expect(await store.count()).toBe(3);
    expect(await store.get(b.id, T0 + TOUCH * 2)).toEqual({ status: 'missing' });
    for (const s of [a, c, d]) {
      expect((await store.get(s.id, T0 + TOUCH * 2)).status).toBe('active');
    }
  });

  it('should drop expired sessions first when full', async () => {
    const store = new MemorySessionStore({ maxEntries: 2, ...timeouts });
    const old = await store.create(input(), T0);
    const live = await store.create(input(), T0 + IDLE);

    await store.create(input(), T0 + IDLE + 1);

    expect(await store.get(old.id, T0 + IDLE + 1)).toEqual({ status: 'missing' });
    expect((await store.get(live.id, T0 + IDLE + 1)).status).toBe('active');
  });

  it('should refuse timeouts when the touch interval is not below the idle timeout', () => {
    expect(() => new MemorySessionStore({ idleTimeoutMs: 1_000, touchIntervalMs: 1_000 })).toThrow(
      RangeError,
    );
  });

  it('should touch at half the idle timeout when the idle timeout is a minute or less', async () => {
    const store = new MemorySessionStore({ idleTimeoutMs: 60_000, absoluteTimeoutMs: 600_000 });
    const s = await store.create(input(), T0);
    // Touched at T0 + 30 s (half of 60 s), so still live at T0 + 80 s.
    expect((await store.get(s.id, T0 + 30_000)).status).toBe('active');
    expect((await store.get(s.id, T0 + 80_000)).status).toBe('active');
    expect(await store.get(s.id, T0 + 150_000)).toMatchObject({
      status: 'expired',
      reason: 'idle',
    });
  });
});

describe.each(backends.map((b) => [b.name, b] as const))('RedisSessionStore on %s', (_n, b) => {
  let redis: IoRedisConnection;
  let redis2: IoRedisConnection;
  const freshPrefix = () => b.freshPrefix();
  const keysUnder = (prefix: string) => b.keysUnder(prefix);
  beforeAll(() => {
    redis = b.redis;
    redis2 = b.redis2;
  });

  it('should never store the raw id in a key or a value when sessions are used', async () => {
    const prefix = freshPrefix();
    const store = new RedisSessionStore(redis, { prefix, ...timeouts });
    const sessions = [await store.create(input(), T0), await store.create(input(), T0)];
    await store.get(sessions[0].id, T0 + TOUCH);
    await store.update(sessions[1].id, { data: { note: 'hello' } }, T0 + 1);

    const everything = (await everythingUnder(b, prefix)).join('\n');

    for (const s of sessions) {
      expect(everything).not.toContain(s.id);
      expect(everything).toContain(createHash('sha256').update(s.id).digest('base64url'));
    }
    expect(everything).toContain('hello');
  });

  it('should treat a corrupted record as missing when got', async () => {
    const prefix = freshPrefix();
    const store = new RedisSessionStore(redis, { prefix, ...timeouts });
    const sessions = await Promise.all([1, 2, 3, 4].map(() => store.create(input(), T0)));
    const keyOf = (id: string) =>
      `${prefix}s:${createHash('sha256').update(id).digest('base64url')}`;
    await redis.hset(keyOf(sessions[0].id), 'c', '{"username": broken');
    await redis.hset(keyOf(sessions[1].id), 't', 'not,times');
    await redis.hset(keyOf(sessions[2].id), 'd', '[1,2,3]');
    const other = await redis.hget(keyOf(sessions[3].id), 'c');
    await redis.hset(keyOf(sessions[3].id), 'c', other!.replace('"mfa":true', '"mfa":"yes"'));

    const results = await Promise.all(sessions.map((s) => store.get(s.id, T0)));

    expect(results).toEqual(sessions.map(() => ({ status: 'missing' })));
  });

  it('should not accept a record when it was filed under another id', async () => {
    const prefix = freshPrefix();
    const store = new RedisSessionStore(redis, { prefix, ...timeouts });
    const victim = await store.create(input({ username: 'admin' }), T0);
    const attacker = await store.create(input({ username: 'mallory' }), T0);
    const hash = (id: string) => createHash('sha256').update(id).digest('base64url');
    await redis.copy(`${prefix}s:${hash(victim.id)}`, `${prefix}s:${hash(attacker.id)}`, 'REPLACE');

    expect(await store.get(attacker.id, T0)).toEqual({ status: 'missing' });
  });

  it('should make logout effective on another instance when destroyed on one', async () => {
    const prefix = freshPrefix();
    const a = new RedisSessionStore(redis, { prefix, ...timeouts });
    const b = new RedisSessionStore(redis2, { prefix, ...timeouts });
    const created = await a.create(input(), T0);
    expect((await b.get(created.id, T0)).status).toBe('active');

    await a.destroy(created.id);

    expect(await b.get(created.id, T0 + 1)).toEqual({ status: 'missing' });
  });

  it('should revoke sessions made on any instance when destroying all for a user', async () => {
    const prefix = freshPrefix();
    const a = new RedisSessionStore(redis, { prefix, ...timeouts });
    const b = new RedisSessionStore(redis2, { prefix, ...timeouts });
    const sessions = [await a.create(input(), T0), await b.create(input(), T0)];

    const n = await b.destroyAllForUser('alice');

    expect(n).toBe(2);
    for (const s of sessions) {
      expect(await a.get(s.id, T0)).toEqual({ status: 'missing' });
    }
    expect(await keysUnder(prefix)).toEqual([]);
  });

  it('should list and revoke on one instance the sessions created on another', async () => {
    const prefix = freshPrefix();
    const a = new RedisSessionStore(redis, { prefix, ...timeouts });
    const b = new RedisSessionStore(redis2, { prefix, ...timeouts });
    const [s1, s2] = [await a.create(input(), T0), await a.create(input(), T0 + 1)];

    const listed = await b.listForUser('alice', T0 + 2);
    const revoked = await b.destroyByHandle('alice', listed[1].handle);

    expect(listed.map((s) => s.handle)).toEqual([hashOf(s2.id), hashOf(s1.id)]);
    expect(revoked).toBe(true);
    expect(await a.get(s1.id, T0 + 3)).toEqual({ status: 'missing' });
    expect((await a.get(s2.id, T0 + 3)).status).toBe('active');
    // The index no longer names the revoked session.
    const index = (await keysUnder(prefix)).find((k) => k.startsWith(`${prefix}u:`))!;
    expect(await redis.smembers(index)).toEqual([hashOf(s2.id)]);
  });

  it('should not list a session whose record was edited, and report it', async () => {
    const prefix = freshPrefix();
    const reports: InvalidStoreRecord[] = [];
    const store = new RedisSessionStore(redis, {
      prefix,
      ...timeouts,
      onInvalidRecord: (r) => {
        reports.push(r);
      },
    });
    const [good, bad] = [await store.create(input(), T0), await store.create(input(), T0)];
    await redis.hset(`${prefix}s:${hashOf(bad.id)}`, 'd', '{"csrf":"attacker"}');

    const listed = await store.listForUser('alice', T0);

    expect(listed.map((s) => s.handle)).toEqual([hashOf(good.id)]);
    expect(reports).toEqual([{ store: 'session', reason: 'mac' }]);
  });

  it('should report an expiry only once when two instances see it at the same time', async () => {
    const prefix = freshPrefix();
    const a = new RedisSessionStore(redis, { prefix, ...timeouts });
    const b = new RedisSessionStore(redis2, { prefix, ...timeouts });
    const created = await a.create(input(), T0);

    const results = await Promise.all(
      Array.from({ length: 10 }, (_, i) => (i % 2 ? a : b).get(created.id, T0 + IDLE)),
    );

    expect(results.filter((r) => r.status === 'expired')).toHaveLength(1);
    expect(results.filter((r) => r.status === 'missing')).toHaveLength(9);
  });

  it('should keep both writes when a touch and a data update race', async () => {
    const prefix = freshPrefix();
    const a = new RedisSessionStore(redis, { prefix, ...timeouts });
    const b = new RedisSessionStore(redis2, { prefix, ...timeouts });
    const created = await a.create(input(), T0);

    await Promise.all([
      a.get(created.id, T0 + TOUCH),
      b.update(created.id, { data: { csrf: 'new' } }, T0 + TOUCH),
    ]);
    const found = await a.get(created.id, T0 + TOUCH + 1);

    expect(found).toMatchObject({
      status: 'active',
      session: { lastSeenAt: T0 + TOUCH, data: { csrf: 'new' } },
    });
  });

  it('should give the session key a TTL of the nearer expiry when created and touched', async () => {
    const prefix = freshPrefix();
    const store = new RedisSessionStore(redis, { prefix, ...timeouts });
    const now = Date.now();
    const created = await store.create(input(), now);
    const key = `${prefix}s:${createHash('sha256').update(created.id).digest('base64url')}`;

    const afterCreate = await redis.pttl(key);
    await redis.pexpire(key, 60_000);
    await store.get(created.id, now + TOUCH);
    const afterTouch = await redis.pttl(key);

    expect(afterCreate).toBeLessThanOrEqual(IDLE);
    expect(afterCreate).toBeGreaterThan(IDLE - 10_000);
    expect(afterTouch).toBeLessThanOrEqual(IDLE);
    expect(afterTouch).toBeGreaterThan(IDLE - 10_000);
  });
});

describe('sealed session records', () => {
  const hashOf = (id: string) => createHash('sha256').update(id).digest('base64url');
  const OLD = 'the-previous-session-secret-0123456789abcdef';
  const NEW = 'the-current-session-secret-0123456789abcdefg';

  describe('MemorySessionStore', () => {
    function make(reports: InvalidStoreRecord[], sealer = SEALER) {
      const store = new MemorySessionStore({
        ...timeouts,
        sealer,
        onInvalidRecord: (r) => {
          reports.push(r);
        },
      });
      return { store, entries: store[MEMORY_RECORDS] };
    }

    it('should refuse and report once a session whose username and groups were edited', async () => {
      const reports: InvalidStoreRecord[] = [];
      const { store, entries } = make(reports);
      const s = await store.create(input({ username: 'mallory', groups: [] }), T0);
      const entry = entries.get(hashOf(s.id))!;
      entry.core = { ...entry.core, username: 'admin', groups: ['admins'] };

      const first = await store.get(s.id, T0 + 1);
      const second = await store.get(s.id, T0 + 2);

      expect(first).toEqual({ status: 'missing' });
      expect(second).toEqual({ status: 'missing' });
      expect(reports).toEqual([{ store: 'session', reason: 'mac' }]);
      expect(await store.count()).toBe(0);
    });

    it('should refuse a session whose idle or absolute expiry was pushed out', async () => {
      const reports: InvalidStoreRecord[] = [];
      const { store, entries } = make(reports);
      const a = await store.create(input(), T0);
      const b = await store.create(input(), T0);
      entries.get(hashOf(a.id))!.times.idleExpiresAt += 10 * 86_400_000;
      entries.get(hashOf(b.id))!.times.absoluteExpiresAt += 10 * 86_400_000;

      expect(await store.get(a.id, T0 + IDLE + 1)).toEqual({ status: 'missing' });
      expect(await store.get(b.id, T0 + 1)).toEqual({ status: 'missing' });
      expect(reports).toHaveLength(2);
    });

    it('should keep a touched and an updated session valid when they are re-sealed', async () => {
      const reports: InvalidStoreRecord[] = [];
      const { store } = make(reports);
      const s = await store.create(input(), T0);

      await store.get(s.id, T0 + TOUCH);
      await store.update(s.id, { data: { csrf: 'x' } }, T0 + TOUCH + 1);
      const found = await store.get(s.id, T0 + 2 * TOUCH);

      expect(found).toMatchObject({ status: 'active', session: { lastSeenAt: T0 + 2 * TOUCH } });
      expect(reports).toEqual([]);
    });

    it('should refuse a session sealed under an unrelated secret', async () => {
      const reports: InvalidStoreRecord[] = [];
      const other = make([], new StoreRecordSealer(OLD));
      const { store, entries } = make(reports, new StoreRecordSealer(NEW));
      const s = await other.store.create(input(), T0);
      entries.set(hashOf(s.id), other.entries.get(hashOf(s.id))!);

      expect(await store.get(s.id, T0 + 1)).toEqual({ status: 'missing' });
      expect(reports).toEqual([{ store: 'session', reason: 'mac' }]);
    });
  });

  describe.each(backends.map((b) => [b.name, b] as const))('RedisSessionStore on %s', (_n, b) => {
    function make(reports: InvalidStoreRecord[], prefix: string, sealer = SEALER) {
      return new RedisSessionStore(b.redis, {
        ...timeouts,
        prefix,
        sealer,
        onInvalidRecord: (r) => {
          reports.push(r);
        },
      });
    }

    it('should refuse and report once a session whose username and groups were edited', async () => {
      const prefix = b.freshPrefix();
      const reports: InvalidStoreRecord[] = [];
      const store = make(reports, prefix);
      const s = await store.create(input({ username: 'mallory', groups: [] }), T0);
      // Read once first: a check remembered from that read must not vouch for the edited record.
      expect(await store.get(s.id, T0)).toMatchObject({ status: 'active' });
      const key = `${prefix}s:${hashOf(s.id)}`;
      const c = (await b.redis.hget(key, 'c'))!;
      await b.redis.hset(
        key,
        'c',
        c.replace('"mallory"', '"admin"').replace('"groups":[]', '"groups":["admins"]'),
      );

      const results = await Promise.all([1, 2, 3].map((i) => store.get(s.id, T0 + i)));

      expect(results).toEqual([1, 2, 3].map(() => ({ status: 'missing' })));
      expect(reports).toEqual([{ store: 'session', reason: 'mac' }]);
      expect(await b.redis.exists(key)).toBe(0);
    });

    it('should refuse a session whose times, data, user index or MAC were edited', async () => {
      const prefix = b.freshPrefix();
      const reports: InvalidStoreRecord[] = [];
      const store = make(reports, prefix);
      const edits: [string, (v: string) => string][] = [
        ['t', (t) => t.replace(/,(\d+)$/, (_m, abs: string) => `,${Number(abs) + 864_000_000}`)],
        [
          't',
          (t) =>
            t.replace(
              /^(\d+),(\d+)/,
              (_m, l: string, i: string) => `${l},${Number(i) + 864_000_000}`,
            ),
        ],
        ['d', () => '{"csrf":"attacker"}'],
        ['u', () => hashOf('someone-else')],
        ['m', (m) => (m.startsWith('A') ? 'B' : 'A') + m.slice(1)],
      ];
      const sessions = await Promise.all(edits.map(() => store.create(input(), T0)));
      // Each read once before its edit, so a remembered check exists for every one of them.
      for (const s of sessions) {
        expect(await store.get(s.id, T0)).toMatchObject({ status: 'active' });
      }
      for (const [i, [field, edit]] of edits.entries()) {
        const key = `${prefix}s:${hashOf(sessions[i].id)}`;
        await b.redis.hset(key, field, edit((await b.redis.hget(key, field))!));
      }

      const results = await Promise.all(sessions.map((s) => store.get(s.id, T0 + 1)));

      expect(results).toEqual(sessions.map(() => ({ status: 'missing' })));
      expect(reports).toHaveLength(edits.length);
    });

    it('should refuse and report a session copied under another id', async () => {
      const prefix = b.freshPrefix();
      const reports: InvalidStoreRecord[] = [];
      const store = make(reports, prefix);
      const victim = await store.create(input({ username: 'admin' }), T0);
      const attacker = await store.create(input({ username: 'mallory' }), T0);
      expect(await store.get(victim.id, T0)).toMatchObject({ status: 'active' });
      await b.redis.copy(
        `${prefix}s:${hashOf(victim.id)}`,
        `${prefix}s:${hashOf(attacker.id)}`,
        'REPLACE',
      );

      expect(await store.get(attacker.id, T0)).toEqual({ status: 'missing' });
      expect(await store.get(victim.id, T0)).toMatchObject({ status: 'active' });
      expect(reports).toEqual([{ store: 'session', reason: 'mac' }]);
    });

    it('should re-seal the MAC in the touch so that the touched record stays valid', async () => {
      const prefix = b.freshPrefix();
      const reports: InvalidStoreRecord[] = [];
      const store = make(reports, prefix);
      const s = await store.create(input(), T0);
      const key = `${prefix}s:${hashOf(s.id)}`;
      const before = await b.redis.hgetall(key);

      await store.get(s.id, T0 + TOUCH);
      const after = await b.redis.hgetall(key);
      await store.update(s.id, { data: { csrf: 'y' } }, T0 + TOUCH + 1);

      expect(after.m).not.toBe(before.m);
      expect(after.t).not.toBe(before.t);
      expect(await store.get(s.id, T0 + TOUCH + 2)).toMatchObject({
        status: 'active',
        session: { lastSeenAt: T0 + TOUCH, data: { csrf: 'y' } },
      });
      expect(reports).toEqual([]);
    });

    it('should accept a session sealed under the previous secret and re-seal it on the next write', async () => {
      const prefix = b.freshPrefix();
      const reports: InvalidStoreRecord[] = [];
      const before = make(reports, prefix, new StoreRecordSealer(OLD));
      const rotated = make(reports, prefix, new StoreRecordSealer(NEW, OLD));
      const onlyNew = make(reports, prefix, new StoreRecordSealer(NEW));
      const s = await before.create(input(), T0);

      const found = await rotated.get(s.id, T0 + 1);
      const afterwards = await onlyNew.get(s.id, T0 + 2);

      expect(found).toMatchObject({ status: 'active', session: { username: 'alice' } });
      expect(afterwards).toMatchObject({ status: 'active', session: { username: 'alice' } });
      expect(reports).toEqual([]);
    });

    it('should refuse a session sealed under an unrelated secret', async () => {
      const prefix = b.freshPrefix();
      const reports: InvalidStoreRecord[] = [];
      const other = make([], prefix, new StoreRecordSealer(OLD));
      const store = make(
        reports,
        prefix,
        new StoreRecordSealer(NEW, 'an-unrelated-secret-0123456789abcdefghijk'),
      );
      const s = await other.create(input(), T0);

      expect(await store.get(s.id, T0 + 1)).toEqual({ status: 'missing' });
      expect(reports).toEqual([{ store: 'session', reason: 'mac' }]);
    });

    it('should refuse to be built without a sealer', () => {
      expect(
        () =>
          new RedisSessionStore(b.redis, { prefix: b.freshPrefix() } as RedisSessionStoreOptions),
      ).toThrow(/sealer/);
    });
  });
});

describe('RedisSessionStore on Redis Cluster prefixes', () => {
  it('should refuse a prefix without a hash tag when the connection is a Cluster', () => {
    const cluster = backends[1].redis;

    expect(() => new RedisSessionStore(cluster, { sealer: SEALER, prefix: 'duo:sess:' })).toThrow(
      /hash tag.*\{duo\}:/,
    );
    expect(() => new RedisSessionStore(cluster, { sealer: SEALER, prefix: '{}duo:' })).toThrow(
      /hash tag/,
    );
    expect(
      () => new RedisSessionStore(cluster, { sealer: SEALER, prefix: '{duo}:sess:' }),
    ).not.toThrow();
    expect(
      () => new RedisSessionStore(backends[0].redis, { sealer: SEALER, prefix: 'duo:sess:' }),
    ).not.toThrow();
  });
});
