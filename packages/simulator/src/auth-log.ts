// The simulator's authentication log: every decision it makes, in the shape of Duo's Admin API v2
// authentication log, paged as Duo pages it (limit, next_offset = [ms, txid], total_objects).
import { randomUUID } from 'node:crypto';
import { describeAgent, isoMicros } from './id-token.js';
import type { AuthLogInput, SimAuthLogEntry, SimAuthResult } from './types.js';
import { stableKey } from './users.js';

/** Bound on stored entries (the 100,000-entry reconcile bench fits ten times over). */
export const AUTH_LOG_MAX_ENTRIES = 1_000_000;
/** Duo's largest page and its default (Admin API docs). */
export const AUTH_LOG_MAX_LIMIT = 1000;
export const AUTH_LOG_DEFAULT_LIMIT = 100;

const RESULTS: readonly SimAuthResult[] = ['success', 'denied', 'failure', 'error', 'fraud'];
const NULL_LOCATION = { city: null, state: null, country: null };

interface Stored {
  tsMs: number;
  entry: SimAuthLogEntry;
}

export interface AuthLogQuery {
  mintime: number;
  maxtime: number;
  limit: number;
  sort: 'ts:asc' | 'ts:desc';
  offset?: { tsMs: number; txid: string };
  applications?: ReadonlySet<string>;
}

export interface AuthLogPage {
  authlogs: SimAuthLogEntry[];
  metadata: { next_offset: [string, string] | null; total_objects: number };
}

function compare(a: Stored, tsMs: number, txid: string): number {
  return a.tsMs !== tsMs ? a.tsMs - tsMs : a.entry.txid < txid ? -1 : a.entry.txid > txid ? 1 : 0;
}

/** Builds one entry of Duo's shape from a decision. */
export function buildEntry(
  input: AuthLogInput & { applicationKey: string; applicationName: string },
): {
  tsMs: number;
  entry: SimAuthLogEntry;
} {
  const tsMs = input.timestampMs ?? Date.now();
  const username = input.username;
  const agent = describeAgent(input.userAgent ?? '');
  const noDevice = (input.factor ?? 'not_available') === 'not_available';
  return {
    tsMs,
    entry: {
      txid: input.txid ?? randomUUID(),
      timestamp: Math.floor(tsMs / 1000),
      isotimestamp: isoMicros(tsMs, 0),
      event_type: 'authentication',
      result: input.result,
      reason: input.reason,
      factor: input.factor ?? 'not_available',
      alias: input.alias ?? '',
      email: input.email ?? '',
      user: {
        name: username,
        key: stableKey('DU', `user:${username.toLowerCase()}`),
        groups: input.groups ?? [],
      },
      application: { key: input.applicationKey, name: input.applicationName },
      access_device: {
        ip: input.accessIp ?? null,
        location: NULL_LOCATION,
        hostname: null,
        os: agent.os,
        browser: agent.browser,
        browser_version: agent.browserVersion,
      },
      auth_device: {
        ip: null,
        location: NULL_LOCATION,
        name: noDevice ? null : (input.deviceName ?? 'iOS (+1 555-0100)'),
      },
      trusted_endpoint_status: 'unknown',
      ood_software: null,
      adaptive_trust_assessments: {},
    },
  };
}

/** Checks an injected entry (POST /__sim/authlog); throws with a readable message. */
export function checkAuthLogInput(value: unknown): AuthLogInput {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new Error('each entry must be a JSON object');
  }
  const v = value as Record<string, unknown>;
  if (typeof v.username !== 'string' || v.username === '' || v.username.length > 255) {
    throw new Error('username must be a non-empty string');
  }
  if (!RESULTS.includes(v.result as SimAuthResult)) {
    throw new Error(`result must be one of ${RESULTS.join(', ')}`);
  }
  if (typeof v.reason !== 'string' || v.reason === '') {
    throw new Error('reason must be a non-empty string');
  }
  for (const field of ['txid', 'factor', 'applicationKey', 'accessIp'] as const) {
    if (v[field] !== undefined && (typeof v[field] !== 'string' || v[field] === '')) {
      throw new Error(`${field} must be a non-empty string`);
    }
  }
  if (typeof v.txid === 'string' && !/^[\x21-\x2b\x2d-\x7e]{1,128}$/.test(v.txid)) {
    throw new Error('txid must be 1 to 128 printable characters without a comma');
  }
  if (
    v.timestampMs !== undefined &&
    !(
      Number.isSafeInteger(v.timestampMs) &&
      (v.timestampMs as number) >= 1e12 &&
      (v.timestampMs as number) < 1e13
    )
  ) {
    throw new Error('timestampMs must be a 13-digit Unix time in milliseconds');
  }
  return v as unknown as AuthLogInput;
}

/** Entries kept in (time, txid) order; appends are in time order, injected ones are inserted. */
export class AuthLog {
  private entries: Stored[] = [];
  private readonly txids = new Set<string>();

  get size(): number {
    return this.entries.length;
  }

  clear(): void {
    this.entries = [];
    this.txids.clear();
  }

  all(): SimAuthLogEntry[] {
    return this.entries.map((s) => s.entry);
  }

  add(stored: { tsMs: number; entry: SimAuthLogEntry }): void {
    if (this.txids.has(stored.entry.txid)) {
      throw new Error(`txid ${stored.entry.txid} is already in the log`);
    }
    if (this.entries.length >= AUTH_LOG_MAX_ENTRIES) {
      this.txids.delete(this.entries[0].entry.txid);
      this.entries.shift();
    }
    const last = this.entries.at(-1);
    if (!last || compare(last, stored.tsMs, stored.entry.txid) < 0) {
      this.entries.push(stored);
    } else {
      const at = this.lowerBound(stored.tsMs, stored.entry.txid);
      this.entries.splice(at, 0, stored);
    }
    this.txids.add(stored.entry.txid);
  }

  /** First index whose (tsMs, txid) is >= the given pair. */
  private lowerBound(tsMs: number, txid: string): number {
    let lo = 0;
    let hi = this.entries.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (compare(this.entries[mid], tsMs, txid) < 0) {
        lo = mid + 1;
      } else {
        hi = mid;
      }
    }
    return lo;
  }

  /**
   * One page: the entries with mintime <= time <= maxtime (and of the given applications), in the
   * requested order, after the offset's (time, txid) position in that order. next_offset is the
   * last entry's [ms, txid] when more follow, null otherwise.
   */
  page(q: AuthLogQuery): AuthLogPage {
    const first = this.lowerBound(q.mintime, '');
    const matches: Stored[] = [];
    for (let i = first; i < this.entries.length && this.entries[i].tsMs <= q.maxtime; i++) {
      const s = this.entries[i];
      if (!q.applications || q.applications.has(s.entry.application.key)) {
        matches.push(s);
      }
    }
    if (q.sort === 'ts:desc') {
      matches.reverse();
    }
    let start = 0;
    if (q.offset) {
      const { tsMs, txid } = q.offset;
      const dir = q.sort === 'ts:desc' ? -1 : 1;
      start = matches.findIndex((s) => dir * compare(s, tsMs, txid) > 0);
      if (start < 0) {
        start = matches.length;
      }
    }
    const slice = matches.slice(start, start + q.limit);
    const last = slice.at(-1);
    const more = start + q.limit < matches.length;
    return {
      authlogs: slice.map((s) => s.entry),
      metadata: {
        next_offset: more && last ? [String(last.tsMs), last.entry.txid] : null,
        total_objects: matches.length,
      },
    };
  }
}
