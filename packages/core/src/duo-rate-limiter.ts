import { createHash } from 'node:crypto';
import { isIP } from 'node:net';
import type { RateLimitStore } from './stores/rate-limit-store.interface.js';

/** A limit: at most `limit` hits per `windowMs` per key; 0 turns it off. */
export interface RateLimitRule {
  /** Also the `reason` of the `rate_limited` audit event. */
  name: 'login_ip' | 'login_user' | 'callback_ip';
  limit: number;
  windowMs: number;
}

export type RateLimitDecision =
  { allowed: true } | { allowed: false; retryAfterSec: number; firstRefusal: boolean };

/**
 * Checks hits against rules; keys are hashed, so Redis holds no raw IP or username.
 *
 * Why our own limiter and not express-rate-limit 8 with rate-limit-redis (the style rule prefers
 * a well-kept library unless it is laxer than we must be or does not fit):
 * - It does not fit the library: the caps live in the Duo library, whose only runtime
 *   dependencies are to be jose and passport-strategy; express-rate-limit brings express as a
 *   peer plus debug and ip-address, and rate-limit-redis a third package.
 * - The caps share the pending-login store's Redis connection (a Redis or a Cluster) and its
 *   hash-tagged prefix, and run inside the sign-on start where the username is known (the
 *   per-username MFA-start cap keys on the normalised username after the per-IP check), not as a
 *   separate Express middleware with its own store and window per instance.
 * - Its MemoryStore is laxer than we must be: two maps swapped each window with no bound on the
 *   number of keys, so a flood of distinct keys grows memory for a whole window. Ours has a hard
 *   cap with O(1) eviction ({@link MemoryRateLimitStore}).
 * What we keep from it: IPv6 grouped by subnet ({@link ipRateLimitSubject}), a flat-cost memory
 * store, and pass-on-store-error (in DuoSignOnGuards).
 */
export class RateLimiter {
  constructor(readonly store: RateLimitStore) {}

  async check(rule: RateLimitRule, subject: string): Promise<RateLimitDecision> {
    if (rule.limit <= 0) {
      return { allowed: true };
    }
    const key = `${rule.name}:${createHash('sha256').update(subject).digest('base64url').slice(0, 32)}`;
    const { count, resetInMs } = await this.store.hit(key, rule.windowMs);
    if (count <= rule.limit) {
      return { allowed: true };
    }
    return {
      allowed: false,
      retryAfterSec: Math.max(1, Math.ceil(resetInMs / 1000)),
      // Only the first refusal of a window is audited: a flood writes one row, not thousands.
      firstRefusal: count === rule.limit + 1,
    };
  }
}

/** Usernames that differ only by case or Unicode form share one per-user limit. */
export function normalizeUsernameForLimit(username: string): string {
  return username.normalize('NFKC').trim().toLowerCase();
}

/** Default prefix length grouping IPv6 clients for per-IP limits (option `limits.ipv6Subnet`; the app's RATE_LIMIT_IPV6_SUBNET). */
export const DEFAULT_IPV6_SUBNET = 64;

/**
 * What a per-IP limit counts for a client address: an IPv4 address itself; an IPv6 address as its
 * network at `ipv6Subnet` bits (a host is usually given a whole /64 or more, so counting single
 * addresses lets it rotate freely), written `<8 groups>/<bits>`; an IPv4-mapped IPv6 address
 * (`::ffff:a.b.c.d`, as a dual-stack socket reports IPv4 clients) as its IPv4 address. A zone
 * (`%eth0`) is ignored. Anything that is not an IP address gives `undefined`.
 */
export function ipRateLimitSubject(
  address: string | undefined,
  ipv6Subnet = DEFAULT_IPV6_SUBNET,
): string | undefined {
  if (!Number.isInteger(ipv6Subnet) || ipv6Subnet < 1 || ipv6Subnet > 128) {
    throw new RangeError('ipv6Subnet must be an integer from 1 to 128');
  }
  if (typeof address !== 'string') {
    return undefined;
  }
  const [ip, zone, ...rest] = address.split('%');
  const family = rest.length === 0 ? isIP(ip) : 0;
  if (family === 4 && zone === undefined) {
    return ip;
  }
  if (family !== 6 || zone === '') {
    return undefined;
  }
  const groups = ipv6Groups(ip);
  if (groups.slice(0, 5).every((g) => g === 0) && groups[5] === 0xffff) {
    return [groups[6] >> 8, groups[6] & 0xff, groups[7] >> 8, groups[7] & 0xff].join('.');
  }
  const masked = groups.map((g, i) => {
    const keep = Math.min(16, Math.max(0, ipv6Subnet - i * 16));
    return keep === 0 ? 0 : g & (0xffff << (16 - keep)) & 0xffff;
  });
  return `${masked.map((g) => g.toString(16)).join(':')}/${ipv6Subnet}`;
}

/** The eight 16-bit groups of an address that isIP() accepted as IPv6 (`::` and a dotted tail). */
function ipv6Groups(ip: string): number[] {
  const parse = (part: string): number[] => {
    if (part === '') {
      return [];
    }
    const out: number[] = [];
    for (const field of part.split(':')) {
      if (field.includes('.')) {
        const [a, b, c, d] = field.split('.').map(Number);
        out.push((a << 8) | b, (c << 8) | d);
      } else {
        out.push(parseInt(field, 16));
      }
    }
    return out;
  };
  const [head, tail] = ip.split('::');
  const left = parse(head);
  const right = tail === undefined ? [] : parse(tail);
  return [...left, ...new Array<number>(8 - left.length - right.length).fill(0), ...right];
}
