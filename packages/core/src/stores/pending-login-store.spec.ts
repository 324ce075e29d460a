import { createHash, randomBytes } from 'node:crypto';

import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { MEMORY_RECORDS, StoreRecordSealer, type InvalidStoreRecord } from './record-seal.js';

import { MemoryPendingLoginStore } from './memory-pending-login.store.js';
import { PENDING_LOGIN_BOUNDS } from './pending-login-record.js';
import type { PendingLogin, PendingLoginStore } from './pending-login-store.interface.js';
import {
  RedisPendingLoginStore,
  type RedisPendingLoginStoreOptions,
} from './redis-pending-login.store.js';
import { storeBackends, type IoRedisConnection } from '../../../../test/support/store-backends.js';
import { DuoStoreError, PendingLoginStoreFullError } from './store.errors.js';

const backends = storeBackends('duo-pending', { beforeAll, afterAll });
const sealer = new StoreRecordSealer('store-spec-secret-0123456789abcdefghijklmnop');
const T0 = 1_800_000_000_000;
const TTL = 300_000;

function b64(bytes: number): string {
  return randomBytes(bytes).toString('base64url');
}

function makeLogin(overrides: Partial<PendingLogin> = {}): PendingLogin {
  return {
    state: b64(32),
    nonce: b64(32),
    username: 'alice',
    returnTo: '/result',
    bindingHash: createHash('sha256').update(b64(32)).digest('base64url'),
    createdAt: T0,
    expiresAt: T0 + TTL,
    clientIp: '203.0.113.7',
    userAgent: 'Mozilla/5.0 (test)',
    correlationId: 'corr-1',
    ...overrides,
  };
}

const variants: [string, () => PendingLoginStore][] = [
  ['MemoryPendingLoginStore', () => new MemoryPendingLoginStore({ maxEntries: 1_000, sealer })],
  ...backends.map((b): [string, () => PendingLoginStore] => [
    `RedisPendingLoginStore on ${b.name}`,
    () => new RedisPendingLoginStore(b.redis, { prefix: b.freshPrefix(), sealer }),
  ]),
];

describe.each(variants)('PendingLoginStore contract: %s', (_name, makeStore) => {
  it('should return ok with the stored login when taken before expiry', async () => {
    const store = makeStore();
    const login = makeLogin();
    await store.put(login, T0);

    const result = await store.take(login.state, T0 + 1_000);

    expect(result).toEqual({ status: 'ok', login });
  });

  it('should keep only the known fields when the login carries extra ones', async () => {
    const store = makeStore();
    const login = makeLogin();
    await store.put({ ...login, extra: 'x' } as PendingLogin, T0);

    const result = await store.take(login.state, T0);

    expect(result).toEqual({ status: 'ok', login });
  });

  it('should return missing when the state is taken a second time', async () => {
    const store = makeStore();
    const login = makeLogin();
    await store.put(login, T0);
    await store.take(login.state, T0);

    expect(await store.take(login.state, T0)).toEqual({ status: 'missing' });
  });

  it('should return missing when the state is unknown or malformed', async () => {
    const store = makeStore();
    const login = makeLogin();
    await store.put(login, T0);

    const results = await Promise.all(
      [
        b64(32),
        '',
        'short',
        'x'.repeat(1025),
        `${login.state}*`,
        '../../etc',
        login.state + ' ',
      ].map((s) => store.take(s, T0)),
    );

    expect(results.every((r) => r.status === 'missing')).toBe(true);
    expect(await store.count()).toBe(1);
  });

  it('should give exactly one winner when 50 takes of one state run concurrently', async () => {
    const store = makeStore();
    const login = makeLogin();
    await store.put(login, T0);

    const results = await Promise.all(
      Array.from({ length: 50 }, () => store.take(login.state, T0 + 1)),
    );

    expect(results.filter((r) => r.status === 'ok')).toHaveLength(1);
    expect(results.filter((r) => r.status === 'missing')).toHaveLength(49);
  });

  it('should report expired once and then missing when taken after expiresAt', async () => {
    const store = makeStore();
    const login = makeLogin();
    await store.put(login, T0);

    const first = await store.take(login.state, login.expiresAt);
    const second = await store.take(login.state, login.expiresAt + 1);

    expect(first).toEqual({ status: 'expired', login });
    expect(second).toEqual({ status: 'missing' });
  });

  it('should return each expired login once, oldest first, when sweeping twice', async () => {
    const store = makeStore();
    const expired = [5, 1, 4, 2, 3].map((i) =>
      makeLogin({ createdAt: T0, expiresAt: T0 + i * 1_000 }),
    );
    const live = [makeLogin({ expiresAt: T0 + 60_000 }), makeLogin({ expiresAt: T0 + 90_000 })];
    for (const l of [...expired, ...live]) {
      await store.put(l, T0);
    }

    const first = await store.sweepExpired(T0 + 5_000);
    const second = await store.sweepExpired(T0 + 5_000);

    expect(first.map((l) => l.expiresAt)).toEqual([1, 2, 3, 4, 5].map((i) => T0 + i * 1_000));
    expect(new Set(first.map((l) => l.state))).toEqual(new Set(expired.map((l) => l.state)));
    expect(second).toEqual([]);
    expect(await store.count()).toBe(2);
    expect((await store.take(live[0].state, T0 + 5_000)).status).toBe('ok');
  });

  it('should return at most limit logins per sweep when more have expired', async () => {
    const store = makeStore();
    const expired = Array.from({ length: 7 }, (_, i) => makeLogin({ expiresAt: T0 + 1 + i }));
    for (const l of expired) {
      await store.put(l, T0);
    }
    const now = T0 + TTL;

    const batches = [
      await store.sweepExpired(now, 3),
      await store.sweepExpired(now, 3),
      await store.sweepExpired(now, 3),
      await store.sweepExpired(now, 3),
    ];

    expect(batches.map((b) => b.length)).toEqual([3, 3, 1, 0]);
    const states = batches.flat().map((l) => l.state);
    expect(new Set(states).size).toBe(7);
    expect(new Set(states)).toEqual(new Set(expired.map((l) => l.state)));
  });

  it('should not sweep a login when it has not expired yet', async () => {
    const store = makeStore();
    const login = makeLogin();
    await store.put(login, T0);

    expect(await store.sweepExpired(login.expiresAt - 1)).toEqual([]);
    expect(await store.sweepExpired(login.expiresAt)).toEqual([login]);
  });

  it('should never hand one login to both take and sweep when they race', async () => {
    const store = makeStore();
    const logins = Array.from({ length: 30 }, () => makeLogin());
    for (const l of logins) {
      await store.put(l, T0);
    }
    const now = T0 + TTL + 1;

    const outcomes = await Promise.all(
      logins.map(async (l) => {
        const [taken, swept] = await Promise.all([
          store.take(l.state, now),
          store.sweepExpired(now, 1),
        ]);
        return { l, taken, swept };
      }),
    );
    const allSwept = outcomes.flatMap((o) => o.swept.map((s) => s.state));
    const allTaken = outcomes.filter((o) => o.taken.status !== 'missing').map((o) => o.l.state);

    expect(new Set(allSwept).size).toBe(allSwept.length);
    expect(allTaken.filter((s) => allSwept.includes(s))).toEqual([]);
    expect(allTaken.length + allSwept.length).toBe(30);
  });

  it('should reject the login when it is malformed', async () => {
    const store = makeStore();
    const bad: Partial<PendingLogin>[] = [
      { returnTo: '//evil.example/x' },
      { returnTo: 'https://evil.example/' },
      { returnTo: '/\\evil.example' },
      { bindingHash: 'not-a-hash' },
      { state: 'short' },
      { nonce: 'tiny' },
      { username: '' },
      { username: 'a\nb' },
      { expiresAt: T0 },
      { createdAt: -1 },
      { clientIp: 'x'.repeat(PENDING_LOGIN_BOUNDS.clientIp.max + 1) },
    ];

    for (const b of bad) {
      await expect(store.put(makeLogin(b), T0)).rejects.toMatchObject({
        code: 'invalid_record',
      });
    }
    expect(await store.count()).toBe(0);
  });

  it('should keep the first 1024 characters when the user agent is longer', async () => {
    const store = makeStore();
    const login = makeLogin({ userAgent: 'U'.repeat(5_000) });
    await store.put(login, T0);

    const result = await store.take(login.state, T0);

    expect(result).toEqual({
      status: 'ok',
      login: { ...login, userAgent: 'U'.repeat(PENDING_LOGIN_BOUNDS.userAgent.max) },
    });
  });

  it('should reject the login when its state is already pending', async () => {
    const store = makeStore();
    const login = makeLogin();
    await store.put(login, T0);

    const err = await store.put({ ...login, username: 'mallory' }, T0).catch((e: unknown) => e);

    expect(err).toBeInstanceOf(DuoStoreError);
    expect(err).toMatchObject({ code: 'duplicate' });
    expect(await store.take(login.state, T0)).toEqual({ status: 'ok', login });
  });

  it('should count pending logins when some are put and taken', async () => {
    const store = makeStore();
    const logins = [makeLogin(), makeLogin(), makeLogin()];
    for (const l of logins) {
      await store.put(l, T0);
    }
    await store.take(logins[1].state, T0);

    expect(await store.count()).toBe(2);
  });
});

describe(MemoryPendingLoginStore.name, () => {
  it('should throw PendingLoginStoreFullError when full of live logins', async () => {
    const store = new MemoryPendingLoginStore({ maxEntries: 3 });
    for (let i = 0; i < 3; i++) {
      await store.put(makeLogin(), T0);
    }

    const err = await store.put(makeLogin(), T0 + 1).catch((e: unknown) => e);

    expect(err).toBeInstanceOf(PendingLoginStoreFullError);
    expect(err).toMatchObject({ code: 'store_full', maxEntries: 3 });
    expect(await store.count()).toBe(3);
  });

  it('should purge expired logins and keep them for the next sweep when full', async () => {
    const store = new MemoryPendingLoginStore({ maxEntries: 3 });
    const old = makeLogin({ expiresAt: T0 + 10 });
    const live = [makeLogin(), makeLogin()];
    for (const l of [old, ...live]) {
      await store.put(l, T0);
    }
    const fresh = makeLogin({ createdAt: T0 + 20, expiresAt: T0 + 20 + TTL });

    await store.put(fresh, T0 + 20);

    expect(await store.count()).toBe(3);
    expect(await store.take(old.state, T0 + 20)).toEqual({ status: 'missing' });
    expect(await store.sweepExpired(T0 + 20)).toEqual([old]);
    expect(await store.sweepExpired(T0 + 20)).toEqual([]);
    expect((await store.take(fresh.state, T0 + 20)).status).toBe('ok');
  });

  it('should count dropped expired logins when the purge queue overflows', async () => {
    const store = new MemoryPendingLoginStore({ maxEntries: 2 });
    for (let round = 0; round < 3; round++) {
      const base = T0 + round * 1_000;
      await store.put(makeLogin({ createdAt: base, expiresAt: base + 10 }), base);
      await store.put(makeLogin({ createdAt: base, expiresAt: base + 10 }), base);
    }

    const swept = await store.sweepExpired(T0 + 10_000);

    expect(swept.length + store.droppedExpiredCount).toBe(6);
    expect(store.droppedExpiredCount).toBeGreaterThan(0);
  });

  it('should return a copy when the caller mutates a taken login', async () => {
    const store = new MemoryPendingLoginStore();
    const login = makeLogin();
    await store.put(login, T0);
    login.username = 'mallory';

    const result = await store.take(login.state, T0);

    expect(result.status === 'ok' && result.login.username).toBe('alice');
  });
});

describe.each(backends.map((b) => [b.name, b] as const))(
  'RedisPendingLoginStore on %s',
  (_n, b) => {
    let redis: IoRedisConnection;
    let redis2: IoRedisConnection;
    const freshPrefix = () => b.freshPrefix();
    const keysUnder = (prefix: string) => b.keysUnder(prefix);
    beforeAll(() => {
      redis = b.redis;
      redis2 = b.redis2;
    });

    it('should treat a corrupted record as missing when taking or sweeping', async () => {
      const prefix = freshPrefix();
      const store = new RedisPendingLoginStore(redis, { prefix, sealer });
      const good = makeLogin({ expiresAt: T0 + 5 });
      await store.put(good, T0);
      const bad = [b64(32), b64(32), b64(32)];
      await redis.set(`${prefix}l:${bad[0]}`, '{"state": not json');
      await redis.set(
        `${prefix}l:${bad[1]}`,
        JSON.stringify({ ...makeLogin(), state: bad[1], returnTo: '//evil' }),
      );
      await redis.set(
        `${prefix}l:${bad[2]}`,
        JSON.stringify({ ...makeLogin(), expiresAt: T0 + 5 }),
      );
      for (const s of bad) {
        await redis.zadd(`${prefix}exp`, T0 + 5, s);
      }

      const taken = await store.take(bad[0], T0);
      const mismatched = await store.take(bad[2], T0);
      const swept = await store.sweepExpired(T0 + 10);

      expect(taken).toEqual({ status: 'missing' });
      expect(mismatched).toEqual({ status: 'missing' });
      expect(swept).toEqual([good]);
      expect(await store.count()).toBe(0);
    });

    it('should give exactly one winner when two app instances on two connections race', async () => {
      const prefix = freshPrefix();
      const a = new RedisPendingLoginStore(redis, { prefix, sealer });
      const b = new RedisPendingLoginStore(redis2, { prefix, sealer });
      const logins = Array.from({ length: 10 }, () => makeLogin());
      for (const l of logins) {
        await a.put(l, T0);
      }

      const perLogin = await Promise.all(
        logins.map((l) =>
          Promise.all(
            Array.from({ length: 20 }, (_, i) => (i % 2 === 0 ? a : b).take(l.state, T0 + 1)),
          ),
        ),
      );

      for (const results of perLogin) {
        expect(results.filter((r) => r.status === 'ok')).toHaveLength(1);
      }
    });

    it('should let another instance take a login when one instance put it', async () => {
      const prefix = freshPrefix();
      const a = new RedisPendingLoginStore(redis, { prefix, sealer });
      const b = new RedisPendingLoginStore(redis2, { prefix, sealer });
      const login = makeLogin();
      await a.put(login, T0);

      expect(await b.take(login.state, T0)).toEqual({ status: 'ok', login });
      expect(await a.take(login.state, T0)).toEqual({ status: 'missing' });
    });

    it('should set a Redis TTL of expiry plus grace when putting', async () => {
      const prefix = freshPrefix();
      const graceMs = 60_000;
      const store = new RedisPendingLoginStore(redis, { prefix, graceMs, sealer });
      const now = Date.now();
      const login = makeLogin({ createdAt: now, expiresAt: now + TTL });

      await store.put(login, now);
      const pttl = await redis.pttl(`${prefix}l:${login.state}`);
      const indexTtl = await redis.pttl(`${prefix}exp`);

      expect(pttl).toBeLessThanOrEqual(TTL + graceMs);
      expect(pttl).toBeGreaterThan(TTL + graceMs - 10_000);
      expect(indexTtl).toBeGreaterThanOrEqual(pttl - 10_000);
    });

    it('should leave no key behind when every login was taken or swept', async () => {
      const prefix = freshPrefix();
      const store = new RedisPendingLoginStore(redis, { prefix, sealer });
      const a = makeLogin();
      const b = makeLogin({ expiresAt: T0 + 1 });
      await store.put(a, T0);
      await store.put(b, T0);

      await store.take(a.state, T0);
      await store.sweepExpired(T0 + 2);

      expect(await keysUnder(prefix)).toEqual([]);
    });

    it('should honour the connection keyPrefix when sweeping', async () => {
      const outer = freshPrefix();
      const prefixed = b.connectWithKeyPrefix(outer);
      try {
        const store = new RedisPendingLoginStore(prefixed, { prefix: 'p:', sealer });
        const login = makeLogin({ expiresAt: T0 + 1 });
        await store.put(login, T0);

        expect(await keysUnder(`${outer}p:l:`)).toHaveLength(1);
        expect(await store.sweepExpired(T0 + 1)).toEqual([login]);
        expect(await keysUnder(outer)).toEqual([]);
      } finally {
        await prefixed.quit();
      }
    });
  },
);

describe('sealed pending logins', () => {
  const OLD = 'the-previous-session-secret-0123456789abcdef';
  const NEW = 'the-current-session-secret-0123456789abcdefg';
  const TEN_DAYS = 10 * 86_400_000;

  describe('MemoryPendingLoginStore', () => {
    function make(reports: InvalidStoreRecord[], s = sealer) {
      const store = new MemoryPendingLoginStore({
        sealer: s,
        onInvalidRecord: (r) => {
          reports.push(r);
        },
      });
      return { store, records: store[MEMORY_RECORDS] };
    }

    it('should refuse and report once a login whose expiresAt or returnTo was edited', async () => {
      const reports: InvalidStoreRecord[] = [];
      const { store, records } = make(reports);
      const pushed = makeLogin();
      const redirected = makeLogin();
      await store.put(pushed, T0);
      await store.put(redirected, T0);
      const p = records.get(pushed.state)!;
      p.login = { ...p.login, expiresAt: p.login.expiresAt + TEN_DAYS };
      const r = records.get(redirected.state)!;
      r.login = { ...r.login, returnTo: '/admin' };

      expect(await store.take(pushed.state, T0 + TTL + 1)).toEqual({ status: 'missing' });
      expect(await store.take(redirected.state, T0 + 1)).toEqual({ status: 'missing' });
      expect(await store.take(redirected.state, T0 + 2)).toEqual({ status: 'missing' });
      expect(reports).toEqual([
        { store: 'pending-login', reason: 'mac' },
        { store: 'pending-login', reason: 'mac' },
      ]);
    });

    it('should leave an edited login out of a sweep and report it', async () => {
      const reports: InvalidStoreRecord[] = [];
      const { store, records } = make(reports);
      const good = makeLogin({ expiresAt: T0 + 5 });
      const bad = makeLogin({ expiresAt: T0 + 5 });
      await store.put(good, T0);
      await store.put(bad, T0);
      records.get(bad.state)!.login.username = 'admin';

      expect(await store.sweepExpired(T0 + 10)).toEqual([good]);
      expect(reports).toEqual([{ store: 'pending-login', reason: 'mac' }]);
    });

    it('should refuse a login sealed under an unrelated secret', async () => {
      const reports: InvalidStoreRecord[] = [];
      const other = make([], new StoreRecordSealer(OLD));
      const { store, records } = make(reports, new StoreRecordSealer(NEW));
      const login = makeLogin();
      await other.store.put(login, T0);
      records.set(login.state, other.records.get(login.state)!);

      expect(await store.take(login.state, T0)).toEqual({ status: 'missing' });
      expect(reports).toHaveLength(1);
    });
  });

  describe.each(backends.map((b) => [b.name, b] as const))(
    'RedisPendingLoginStore on %s',
    (_n, b) => {
      function make(reports: InvalidStoreRecord[], prefix: string, s = sealer) {
        return new RedisPendingLoginStore(b.redis, {
          prefix,
          sealer: s,
          onInvalidRecord: (r) => {
            reports.push(r);
          },
        });
      }
      async function edit(key: string, change: (record: Record<string, unknown>) => void) {
        const record = JSON.parse((await b.redis.get(key))!) as Record<string, unknown>;
        change(record);
        await b.redis.set(key, JSON.stringify(record), 'KEEPTTL');
      }

      it('should refuse and report once a login whose expiresAt was pushed ten days ahead', async () => {
        const prefix = b.freshPrefix();
        const reports: InvalidStoreRecord[] = [];
        const store = make(reports, prefix);
        const login = makeLogin();
        await store.put(login, T0);
        await edit(`${prefix}l:${login.state}`, (r) => {
          r.expiresAt = (r.expiresAt as number) + TEN_DAYS;
        });

        const results = await Promise.all(
          [1, 2, 3].map(() => store.take(login.state, T0 + TTL + 1)),
        );

        expect(results).toEqual([1, 2, 3].map(() => ({ status: 'missing' })));
        expect(reports).toEqual([{ store: 'pending-login', reason: 'mac' }]);
      });

      it('should refuse a login whose returnTo, username, binding or nonce was edited', async () => {
        const prefix = b.freshPrefix();
        const reports: InvalidStoreRecord[] = [];
        const store = make(reports, prefix);
        const edits: ((r: Record<string, unknown>) => void)[] = [
          (r) => (r.returnTo = '/admin'),
          (r) => (r.username = 'admin'),
          (r) => (r.bindingHash = createHash('sha256').update('attacker').digest('base64url')),
          (r) => (r.nonce = b64(32)),
          (r) => delete r.clientIp,
          (r) => delete r.m,
        ];
        const logins = edits.map(() => makeLogin());
        for (const [i, change] of edits.entries()) {
          await store.put(logins[i], T0);
          await edit(`${prefix}l:${logins[i].state}`, change);
        }

        const results = await Promise.all(logins.map((l) => store.take(l.state, T0 + 1)));

        expect(results).toEqual(logins.map(() => ({ status: 'missing' })));
        expect(reports).toHaveLength(edits.length);
      });

      it('should refuse a login copied under another state', async () => {
        const prefix = b.freshPrefix();
        const reports: InvalidStoreRecord[] = [];
        const store = make(reports, prefix);
        const victim = makeLogin({ returnTo: '/admin' });
        const attacker = makeLogin();
        await store.put(victim, T0);
        await store.put(attacker, T0);
        // The copy names the new state too, so only the MAC's key name can tell.
        const raw = (await b.redis.get(`${prefix}l:${victim.state}`))!;
        await b.redis.set(
          `${prefix}l:${attacker.state}`,
          raw.replace(victim.state, attacker.state),
          'KEEPTTL',
        );

        expect(await store.take(attacker.state, T0 + 1)).toEqual({ status: 'missing' });
        expect(await store.take(victim.state, T0 + 1)).toEqual({ status: 'ok', login: victim });
        expect(reports).toEqual([{ store: 'pending-login', reason: 'mac' }]);
      });

      it('should leave an edited login out of a sweep and report it', async () => {
        const prefix = b.freshPrefix();
        const reports: InvalidStoreRecord[] = [];
        const store = make(reports, prefix);
        const good = makeLogin({ expiresAt: T0 + 5 });
        const bad = makeLogin({ expiresAt: T0 + 5 });
        await store.put(good, T0);
        await store.put(bad, T0);
        await edit(`${prefix}l:${bad.state}`, (r) => (r.username = 'admin'));

        expect(await store.sweepExpired(T0 + 10)).toEqual([good]);
        expect(await store.sweepExpired(T0 + 10)).toEqual([]);
        expect(reports).toEqual([{ store: 'pending-login', reason: 'mac' }]);
      });

      it('should accept a login sealed under the previous secret and refuse an unrelated one', async () => {
        const prefix = b.freshPrefix();
        const reports: InvalidStoreRecord[] = [];
        const before = make(reports, prefix, new StoreRecordSealer(OLD));
        const rotated = make(reports, prefix, new StoreRecordSealer(NEW, OLD));
        const stranger = make(
          reports,
          prefix,
          new StoreRecordSealer('an-unrelated-secret-0123456789abcdefghijk'),
        );
        const a = makeLogin();
        const c = makeLogin();
        await before.put(a, T0);
        await stranger.put(c, T0);

        expect(await rotated.take(a.state, T0 + 1)).toEqual({ status: 'ok', login: a });
        expect(await rotated.take(c.state, T0 + 1)).toEqual({ status: 'missing' });
        expect(reports).toEqual([{ store: 'pending-login', reason: 'mac' }]);
      });

      it('should refuse to be built without a sealer', () => {
        expect(
          () =>
            new RedisPendingLoginStore(b.redis, {
              prefix: b.freshPrefix(),
            } as RedisPendingLoginStoreOptions),
        ).toThrow(/sealer/);
      });
    },
  );

  it('should refuse a prefix without a hash tag on a Redis Cluster', () => {
    expect(
      () => new RedisPendingLoginStore(backends[1].redis, { prefix: 'duo:pending:', sealer }),
    ).toThrow(/hash tag/);
    expect(
      () => new RedisPendingLoginStore(backends[1].redis, { prefix: '{duo}:pending:', sealer }),
    ).not.toThrow();
  });
});
