import { createHash } from 'node:crypto';

import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { Redis } from 'ioredis';
import { MEMORY_RECORDS, StoreRecordSealer, type InvalidStoreRecord } from './record-seal.js';
import { MemorySessionStore } from './memory-session.store.js';
import { RedisSessionStore } from './redis-session.store.js';
import { coreJson, sealParts, sessionUserAgent, type SessionCore } from './session-record.js';
import type { NewMfaSession, SessionStore } from './session-store.interface.js';
import { RedisScratch } from '../../../../test/support/redis-scratch.js';

// The facts a session records about how MFA was satisfied (application, Duo's result and reason)
// and where it was opened (clientIp, userAgent): checked on create and on read back, covered by
// the record MAC, in memory and in Redis alike.
const scratch = new RedisScratch('duo-sess-facts');
let redis: Redis;
beforeAll(() => {
  redis = scratch.connect();
});
afterAll(async () => {
  await scratch.close();
});

const SEALER = new StoreRecordSealer('facts-spec-secret-0123456789abcdefghijklmnop');
const T0 = 1_800_000_000_000;
const hashOf = (id: string) => createHash('sha256').update(id).digest('base64url');

function input(overrides: Partial<NewMfaSession> = {}): NewMfaSession {
  return {
    username: 'alice',
    mfa: true,
    failOpen: false,
    txid: 'b3a2c1d0-0000-4000-8000-000000000001',
    factor: 'duo_push',
    authTime: T0 / 1000,
    groups: ['admins'],
    application: 'DIXXXXXXXXXXXXXXXXXX',
    duoResult: 'success',
    duoReason: 'user_approved',
    clientIp: '2001:db8::7',
    userAgent: 'Mozilla/5.0 (X11; Linux x86_64) Chrome/140',
    data: {},
    ...overrides,
  };
}

type Made = { store: SessionStore; prefix?: string; reports: InvalidStoreRecord[] };
const variants: [string, () => Made][] = [
  [
    'MemorySessionStore',
    () => {
      const reports: InvalidStoreRecord[] = [];
      const store = new MemorySessionStore({
        sealer: SEALER,
        onInvalidRecord: (r) => void reports.push(r),
      });
      return { store, reports };
    },
  ],
  [
    'RedisSessionStore',
    () => {
      const reports: InvalidStoreRecord[] = [];
      const prefix = scratch.freshPrefix();
      const store = new RedisSessionStore(redis, {
        prefix,
        sealer: SEALER,
        onInvalidRecord: (r) => void reports.push(r),
      });
      return { store, prefix, reports };
    },
  ],
];

describe.each(variants)('session facts: %s', (_name, make) => {
  it('should keep every fact of how MFA was satisfied and where the session came from', async () => {
    const { store } = make();

    const created = await store.create(input(), T0);
    const found = await store.get(created.id, T0 + 1);

    expect(found).toMatchObject({
      status: 'active',
      session: {
        application: 'DIXXXXXXXXXXXXXXXXXX',
        duoResult: 'success',
        duoReason: 'user_approved',
        factor: 'duo_push',
        clientIp: '2001:db8::7',
        userAgent: 'Mozilla/5.0 (X11; Linux x86_64) Chrome/140',
        createdAt: T0,
        lastSeenAt: T0,
      },
    });
  });

  it('should refuse a session whose facts are malformed, and store nothing', async () => {
    const { store } = make();
    const bad: Partial<NewMfaSession>[] = [
      { application: undefined },
      { application: '' },
      { application: 'x'.repeat(129) },
      { duoReason: 'user\u0000approved' },
      { duoResult: 'x'.repeat(33) },
      { clientIp: 'not-an-ip' },
      { clientIp: '203.0.113.7, 10.0.0.1' },
      { userAgent: 'evil\u202eexe' },
      { userAgent: 'line\nbreak' },
      { userAgent: 'x'.repeat(257) },
      // A fail-open session never met Duo: it cannot carry Duo's result or reason.
      { mfa: false, failOpen: true, duoResult: 'success' },
    ];

    for (const b of bad) {
      await expect(store.create(input(b), T0)).rejects.toMatchObject({ code: 'invalid_record' });
    }
    expect(await store.count()).toBe(0);
  });

  it('should refuse a record whose application or factor was edited after it was sealed', async () => {
    const { store, prefix, reports } = make();
    const created = await store.create(
      input({ factor: 'not_available', duoReason: 'bypass_user' }),
      T0,
    );

    // The attacker who can write the store turns a bypass into a push approval.
    if (prefix) {
      const key = `${prefix}s:${hashOf(created.id)}`;
      const c = (await redis.hget(key, 'c'))!;
      await redis.hset(
        key,
        'c',
        c.replace('"not_available"', '"duo_push"').replace('"bypass_user"', '"user_approved"'),
      );
    } else {
      // The stored identity is frozen: it cannot be edited in place, only replaced.
      const entry = (store as MemorySessionStore)[MEMORY_RECORDS].get(hashOf(created.id))!;
      expect(() => {
        entry.core.factor = 'duo_push';
      }).toThrow(TypeError);
      entry.core = { ...entry.core, factor: 'duo_push', duoReason: 'user_approved' };
    }

    expect(await store.get(created.id, T0 + 1)).toEqual({ status: 'missing' });
    expect(reports).toEqual([{ store: 'session', reason: 'mac' }]);
  });
});

describe('session records written before the facts existed (version 1)', () => {
  it('should refuse an old record as invalid even though its MAC verifies', async () => {
    const reports: InvalidStoreRecord[] = [];
    const prefix = scratch.freshPrefix();
    const store = new RedisSessionStore(redis, {
      prefix,
      sealer: SEALER,
      onInvalidRecord: (r) => void reports.push(r),
    });
    const created = await store.create(input(), T0);
    const key = `${prefix}s:${hashOf(created.id)}`;
    const fields = await redis.hgetall(key);
    // Rewrite it as the previous release did: version 1, no facts, sealed with the same key.
    const old = JSON.parse(fields.c) as Record<string, unknown>;
    for (const k of ['application', 'duoResult', 'duoReason', 'clientIp', 'userAgent']) {
      delete old[k];
    }
    old.v = 1;
    const c = JSON.stringify(old);
    const m = SEALER.seal(sealParts(key, c, fields.t, fields.d, fields.u));
    await redis.hset(key, 'c', c, 'm', m);

    expect(await store.get(created.id, T0 + 1)).toEqual({ status: 'missing' });
    expect(reports).toEqual([{ store: 'session', reason: 'shape' }]);
    expect(await redis.exists(key)).toBe(0);
  });

  it('should put every fact in the sealed identity text', () => {
    const core: SessionCore = { ...input(), groups: ['admins'] };
    const c = JSON.parse(coreJson('h', core, T0)) as Record<string, unknown>;

    expect(c).toMatchObject({
      v: 2,
      application: core.application,
      duoResult: 'success',
      duoReason: 'user_approved',
      clientIp: core.clientIp,
      userAgent: core.userAgent,
    });
  });
});

describe('sessionUserAgent', () => {
  it('should remove control and format characters and cut to 256 characters', () => {
    expect(sessionUserAgent('a\u0000b\u202ec\u2066d\te')).toBe('abcde');
    expect(sessionUserAgent('x'.repeat(300))).toHaveLength(256);
    // A surrogate pair is never split at the cut.
    expect(sessionUserAgent(`${'x'.repeat(255)}😀`)).toBe('x'.repeat(255));
    expect(sessionUserAgent('\u0000\u0001')).toBeUndefined();
    expect(sessionUserAgent(undefined)).toBeUndefined();
    expect(sessionUserAgent(['a'])).toBeUndefined();
  });
});
