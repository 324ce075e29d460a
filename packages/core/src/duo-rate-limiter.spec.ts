import { describe, expect, it } from '@jest/globals';
import {
  ipRateLimitSubject,
  normalizeUsernameForLimit,
  RateLimiter,
  type RateLimitRule,
} from './duo-rate-limiter.js';
import { MemoryRateLimitStore } from './stores/memory-rate-limit.store.js';

const rule: RateLimitRule = { name: 'login_user', limit: 2, windowMs: 1000 };

describe(RateLimiter.name, () => {
  it('should allow the limit, refuse beyond it and flag only the first refusal when hits repeat in one window', async () => {
    const limiter = new RateLimiter(new MemoryRateLimitStore());
    const out = [];
    for (let i = 0; i < 4; i++) {
      out.push(await limiter.check(rule, 'alice'));
    }
    expect(out.map((d) => d.allowed)).toEqual([true, true, false, false]);
    expect(out[2]).toMatchObject({ firstRefusal: true, retryAfterSec: 1 });
    expect(out[3]).toMatchObject({ firstRefusal: false });
  });

  it('should start a new window when the old one expires', async () => {
    let now = 0;
    const limiter = new RateLimiter(new MemoryRateLimitStore(100, () => now));
    await limiter.check(rule, 'a');
    await limiter.check(rule, 'a');
    expect((await limiter.check(rule, 'a')).allowed).toBe(false);
    now = 1000;
    expect((await limiter.check(rule, 'a')).allowed).toBe(true);
  });

  it('should allow everything when the limit is 0', async () => {
    const limiter = new RateLimiter(new MemoryRateLimitStore());
    for (let i = 0; i < 10; i++) {
      expect((await limiter.check({ ...rule, limit: 0 }, 'a')).allowed).toBe(true);
    }
  });

  it('should stay within its key bound when many subjects arrive', async () => {
    const store = new MemoryRateLimitStore(50);
    const limiter = new RateLimiter(store);
    for (let i = 0; i < 500; i++) {
      await limiter.check(rule, `user${i}`);
    }
    expect(store.size).toBeLessThanOrEqual(50);
  });

  it('should treat usernames that differ by case or Unicode form as one', () => {
    expect(normalizeUsernameForLimit(' Alice ')).toBe(normalizeUsernameForLimit('alice'));
    expect(normalizeUsernameForLimit('ＡＬＩＣＥ')).toBe('alice');
  });
});

describe(ipRateLimitSubject.name, () => {
  const sub = (ip: string, bits?: number) => ipRateLimitSubject(ip, bits);

  it('should give two addresses of one IPv6 /64 one counter, and another /64 its own', async () => {
    const a = sub('2001:db8:1:2::1');
    expect(a).toBe('2001:db8:1:2:0:0:0:0/64');
    expect(sub('2001:db8:1:2:ffff:ffff:ffff:fffe')).toBe(a);
    expect(sub('2001:DB8:1:2:0:0:0:abcd')).toBe(a);
    expect(sub('2001:0db8:0001:0002::')).toBe(a);
    expect(sub('2001:db8:1:3::1')).not.toBe(a);
    expect(sub('2001:db8:1:2::1%eth0')).toBe(a);

    // Through the limiter: rotating within the /64 is one subject; a neighbour /64 is not.
    const limiter = new RateLimiter(new MemoryRateLimitStore());
    const hit = (ip: string) => limiter.check(rule, sub(ip)!).then((d) => d.allowed);
    expect(await hit('2001:db8:1:2::a')).toBe(true);
    expect(await hit('2001:db8:1:2::b')).toBe(true);
    expect(await hit('2001:db8:1:2:dead:beef::c')).toBe(false);
    expect(await hit('2001:db8:1:3::a')).toBe(true);
  });

  it('should expand "::" wherever it stands and read a dotted IPv4 tail as the last 32 bits', () => {
    expect(sub('::', 128)).toBe('0:0:0:0:0:0:0:0/128');
    expect(sub('1::', 128)).toBe('1:0:0:0:0:0:0:0/128');
    expect(sub('::1', 128)).toBe('0:0:0:0:0:0:0:1/128');
    expect(sub('1:2:3:4:5:6:7::', 128)).toBe('1:2:3:4:5:6:7:0/128');
    expect(sub('1:2:3::6:7:8', 128)).toBe('1:2:3:0:0:6:7:8/128');
    expect(sub('64:ff9b::192.0.2.33', 128)).toBe('64:ff9b:0:0:0:0:c000:221/128');
  });

  it('should group by the configured prefix length, also inside a 16-bit group', () => {
    expect(sub('2001:db8:aaaa:1::1', 48)).toBe(sub('2001:db8:aaaa:ffff::1', 48));
    expect(sub('2001:db8:aaaa:1::1', 48)).not.toBe(sub('2001:db8:aaab:1::1', 48));
    expect(sub('2001:db8:1:2::1', 56)).toBe('2001:db8:1:0:0:0:0:0/56');
    expect(sub('2001:db8:1:2ff::1', 56)).toBe('2001:db8:1:200:0:0:0:0/56');
    expect(sub('2001:db8:1:2::1', 128)).not.toBe(sub('2001:db8:1:2::2', 128));
    expect(() => sub('::1', 0)).toThrow(RangeError);
    expect(() => sub('::1', 129)).toThrow(RangeError);
    expect(() => sub('::1', 64.5)).toThrow(RangeError);
  });

  it('should count an IPv4-mapped IPv6 address as its IPv4 address, and IPv4 by full address', () => {
    expect(sub('::ffff:198.51.100.7')).toBe('198.51.100.7');
    expect(sub('::FFFF:198.51.100.7')).toBe('198.51.100.7');
    expect(sub('::ffff:c633:6407')).toBe('198.51.100.7');
    expect(sub('0:0:0:0:0:ffff:198.51.100.7')).toBe('198.51.100.7');
    expect(sub('198.51.100.7')).toBe('198.51.100.7');
    expect(sub('198.51.100.8')).not.toBe(sub('198.51.100.7'));
    // Not mapped: the IPv4-compatible form and NAT64 stay IPv6.
    expect(sub('::198.51.100.7')).toBe('0:0:0:0:0:0:0:0/64');
  });

  it('should give undefined for anything that is not an IP address', () => {
    for (const bad of [
      '',
      'unknown',
      '1.2.3',
      '1.2.3.4.5',
      '01.2.3.4',
      '256.1.1.1',
      ' 1.2.3.4',
      '1.2.3.4\n',
      '1.2.3.4%eth0',
      '1::2::3',
      '[::1]',
      '::ffff:999.1.1.1',
      'fe80::1%',
      'fe80::1%a%b',
      '2001:db8::1/64',
      '1.2.3.4, 5.6.7.8',
      'x'.repeat(300),
    ]) {
      expect([bad, sub(bad)]).toEqual([bad, undefined]);
    }
    expect(ipRateLimitSubject(undefined)).toBeUndefined();
  });
});

/** A Map that counts the entries any iteration over it yields (the old store scanned on insert). */
class CountingMap<K, V> extends Map<K, V> {
  yielded = 0;
  override *[Symbol.iterator](): MapIterator<[K, V]> {
    for (const e of super.entries()) {
      this.yielded++;
      yield e;
    }
  }
  override entries(): MapIterator<[K, V]> {
    return this[Symbol.iterator]();
  }
  override *keys(): MapIterator<K> {
    for (const [k] of this) {
      yield k;
    }
  }
}

function withCountingMap(store: MemoryRateLimitStore): CountingMap<string, unknown> {
  const map = new CountingMap<string, unknown>();
  // The store's lookup map (a private field): swapped before first use to count scans.
  (store as unknown as { windows: Map<string, unknown> }).windows = map;
  return map;
}

describe(`${MemoryRateLimitStore.name} at its cap`, () => {
  it('should hold a hard cap and evict the oldest live window, one per new key, without scanning', async () => {
    let now = 0;
    const store = new MemoryRateLimitStore(1000, () => now);
    const map = withCountingMap(store);
    for (let i = 0; i < 1000; i++) {
      await store.hit(`old${i}`, 60_000);
      now++;
    }
    for (let i = 0; i < 5000; i++) {
      await store.hit(`new${i}`, 60_000);
      now++;
    }
    expect(map.yielded).toBe(0);
    expect(store.size).toBe(1000);
    expect(store.evicted).toBe(5000);
    // The newest 1000 windows survive with their counts; the oldest were forgotten.
    expect((await store.hit('new4999', 60_000)).count).toBe(2);
    expect((await store.hit('new4001', 60_000)).count).toBe(2);
    expect((await store.hit('new3999', 60_000)).count).toBe(1);
  });

  it('should evict by window start, so a key that restarted its window is not the first to go', async () => {
    let now = 0;
    const store = new MemoryRateLimitStore(4, () => now);
    await store.hit('a', 100);
    now = 50;
    await store.hit('b', 1000);
    await store.hit('c', 1000);
    now = 150; // a's window expired: its next hit starts a new one, the newest so far
    await store.hit('a', 1000);
    await store.hit('a', 1000);
    now = 160;
    await store.hit('d', 1000);
    await store.hit('e', 1000); // at the cap: evicts b (the oldest window), not a
    expect((await store.hit('a', 1000)).count).toBe(3);
    expect((await store.hit('c', 1000)).count).toBe(2);
    expect((await store.hit('b', 1000)).count).toBe(1);
  });

  it('should reclaim expired windows as hits arrive, without scanning', async () => {
    let now = 0;
    const store = new MemoryRateLimitStore(100_000, () => now);
    const map = withCountingMap(store);
    for (let i = 0; i < 10_000; i++) {
      await store.hit(`k${i}`, 1000);
    }
    now = 1000;
    for (let i = 0; i < 6000; i++) {
      await store.hit(`fresh${i}`, 1000);
    }
    // Two expired windows reclaimed per hit: all 10,000 gone after 5,000 hits.
    expect(store.size).toBe(6000);
    expect(store.evicted).toBe(0);
    expect(map.yielded).toBe(0);
  });

  it('should stay within its cap and count right when short windows restart behind a long one', async () => {
    let now = 0;
    const store = new MemoryRateLimitStore(4, () => now);
    await store.hit('long', 1_000_000);
    for (let round = 0; round < 50; round++) {
      now += 10;
      for (const k of ['s1', 's2', 's3']) {
        expect((await store.hit(k, 10)).count).toBe(1);
        expect((await store.hit(k, 10)).count).toBe(2);
      }
      expect(store.size).toBeLessThanOrEqual(4);
    }
    expect((await store.hit('long', 1_000_000)).count).toBe(2);
    expect(store.evicted).toBe(0);
  });

  it('should refuse a cap that is not a positive integer', () => {
    expect(() => new MemoryRateLimitStore(0)).toThrow(RangeError);
    expect(() => new MemoryRateLimitStore(1.5)).toThrow(RangeError);
  });
});
