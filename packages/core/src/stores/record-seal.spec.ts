import { createHmac, hkdfSync } from 'node:crypto';

import { describe, expect, it } from '@jest/globals';
import type { Cluster } from 'ioredis';

import { DuoConfigError } from '../duo.errors.js';
import { normalizeDuoModuleOptions } from '../duo-module-options.js';
import { deriveStoreRecordKey, STORE_RECORD_KEY_INFO, StoreRecordSealer } from './record-seal.js';
import { hashTagOf } from './redis-script.js';

const SECRET = 'record-seal-spec-secret-0123456789abcdefgh';
const PARTS = ['session/v1', 'duo:sess:s:abc', '{"username":"alice"}', '1,2,3', '{}', 'u'];

describe(StoreRecordSealer.name, () => {
  it('should key the MAC by HKDF-SHA256 of the secret with its own info, never the raw secret', () => {
    const tag = new StoreRecordSealer(SECRET).seal(PARTS);
    const expectedKey = Buffer.from(
      hkdfSync('sha256', Buffer.from(SECRET), Buffer.alloc(0), STORE_RECORD_KEY_INFO, 32),
    );
    const hmac = (key: Buffer | string) =>
      createHmac('sha256', key).update(JSON.stringify(PARTS)).digest('base64url');

    expect(STORE_RECORD_KEY_INFO).toBe('duo-nest/store-record/v1');
    expect(deriveStoreRecordKey(SECRET)).toEqual(expectedKey);
    expect(tag).toBe(hmac(expectedKey));
    expect(tag).not.toBe(hmac(SECRET));
  });

  it('should refuse a MAC when any part, the key name or the part order changes', () => {
    const sealer = new StoreRecordSealer(SECRET);
    const tag = sealer.seal(PARTS);

    expect(sealer.verify(PARTS, tag)).toBe('current');
    for (let i = 0; i < PARTS.length; i++) {
      const changed = [...PARTS];
      changed[i] = `${changed[i]}x`;
      expect(sealer.verify(changed, tag)).toBeUndefined();
    }
    expect(sealer.verify([PARTS[0], PARTS[2], PARTS[1], ...PARTS.slice(3)], tag)).toBeUndefined();
    expect(sealer.verify(['a', 1], new StoreRecordSealer(SECRET).seal(['a', '1']))).toBeUndefined();
    for (const bad of [undefined, '', 'x'.repeat(43), `${tag}=`, tag.slice(1), 42]) {
      expect(sealer.verify(PARTS, bad)).toBeUndefined();
    }
  });

  it('should accept the previous secret for verification only and refuse an unrelated one', () => {
    const previous = 'the-previous-secret-0123456789abcdefghijk';
    const rotated = new StoreRecordSealer(SECRET, previous);

    expect(rotated.verify(PARTS, new StoreRecordSealer(previous).seal(PARTS))).toBe('previous');
    expect(rotated.seal(PARTS)).toBe(new StoreRecordSealer(SECRET).seal(PARTS));
    expect(
      rotated.verify(
        PARTS,
        new StoreRecordSealer('an-unrelated-secret-0123456789abcdef').seal(PARTS),
      ),
    ).toBeUndefined();
    expect(() => new StoreRecordSealer('short')).toThrow(RangeError);
  });
});

describe('Redis Cluster prefix rule', () => {
  it('should read the hash tag as Redis Cluster does', () => {
    expect(hashTagOf('{duo}:')).toBe('duo');
    expect(hashTagOf('app:{duo}:x{y}')).toBe('duo');
    expect(hashTagOf('duo:')).toBeUndefined();
    expect(hashTagOf('{}duo:')).toBeUndefined();
    expect(hashTagOf('{duo:')).toBeUndefined();
  });

  it('should refuse DuoModule options with a Cluster and a prefix without a hash tag', () => {
    const cluster = { isCluster: true, options: {} } as unknown as Cluster;
    const base = {
      clientId: 'DIABCDEFGHIJ12345678',
      clientSecret: 'abcdefghijklmnopqrstuvwxyz0123456789ABCD',
      apiHost: 'api-1a2b3c4d.duosecurity.com',
      redirectUri: 'https://app.example.org/auth/duo/callback',
      sessionSecret: SECRET,
      redis: cluster,
    };

    let error: unknown;
    try {
      normalizeDuoModuleOptions({ ...base, redisKeyPrefix: 'duo:' });
    } catch (err) {
      error = err;
    }

    expect(error).toBeInstanceOf(DuoConfigError);
    expect((error as DuoConfigError).message).toMatch(/redisKeyPrefix.*hash tag/);
    expect(() => normalizeDuoModuleOptions({ ...base, redisKeyPrefix: '{duo}:' })).not.toThrow();
    const tagged = { isCluster: true, options: { keyPrefix: '{app}:' } } as unknown as Cluster;
    expect(() =>
      normalizeDuoModuleOptions({ ...base, redis: tagged, redisKeyPrefix: 'duo:' }),
    ).not.toThrow();
  });
});
