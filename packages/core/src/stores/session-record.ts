// A session record: its bounds and id, the checks of a session given to `create` or read back,
// its timeouts, and its codec (the identity JSON, the times field, what the MAC covers). Shared by
// the memory and the Redis session stores.
import { randomBytes } from 'node:crypto';
import { isIP } from 'node:net';

import type { VerifiedMemo } from '../verified-memo.js';
import { DuoStoreError } from './store.errors.js';
import {
  isBase64Url,
  isCleanString,
  isEpoch,
  isPlainObject,
  parseJson,
  positiveIntOption,
  sha256Base64Url,
  utf8Length,
} from './store-validation.js';
import type {
  MfaSession,
  NewMfaSession,
  SessionExpiryReason,
  SessionSummary,
  SessionTimeoutOptions,
} from './session-store.interface.js';

/** Largest serialized `data` accepted (and read back). */
export const SESSION_MAX_DATA_BYTES = 16 * 1024;
export const SESSION_ID_BYTES = 32;

export const SESSION_BOUNDS = {
  username: { max: 255 },
  txid: { max: 128 },
  factor: { max: 64 },
  groups: { maxItems: 256, maxLength: 256 },
  application: { max: 128 },
  duoResult: { max: 32 },
  duoReason: { max: 64 },
  /** An IPv6 address with a zone is at most 45 + a short zone; longer is never an address. */
  clientIp: { max: 64 },
  userAgent: { max: 256 },
  /** The named Duo applications a session satisfied (see MfaSession.applications). */
  applications: { maxItems: 32, nameMax: 64 },
} as const;

/** A Duo application's name in DuoModule options and in a session: letters, digits, `_.-`. */
export const APPLICATION_NAME_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;

/** True for `{ [application name]: auth time in seconds }` within the session's bounds. */
export function isApplicationTimes(value: unknown): value is Record<string, number> {
  if (!isPlainObject(value)) {
    return false;
  }
  const entries = Object.entries(value);
  return (
    entries.length <= SESSION_BOUNDS.applications.maxItems &&
    entries.every(([name, t]) => APPLICATION_NAME_RE.test(name) && isEpoch(t))
  );
}

/** Characters a stored User-Agent may not keep: C0/C1 controls, bidi and other format characters. */
const UA_STRIP = /[\u0000-\u001f\u007f-\u009f\u200b-\u200f\u2028-\u202e\u2060-\u206f\ufeff]/g;

/**
 * The User-Agent a session records: control and format characters removed, cut to
 * SESSION_BOUNDS.userAgent.max characters (a surrogate pair is never split); undefined when
 * nothing is left. The header is the client's free text: it is shown to admins, never trusted.
 */
export function sessionUserAgent(value: unknown): string | undefined {
  if (typeof value !== 'string') {
    return undefined;
  }
  let ua = value.replace(UA_STRIP, '').trim();
  if (ua.length > SESSION_BOUNDS.userAgent.max) {
    ua = ua.slice(0, SESSION_BOUNDS.userAgent.max);
    if (/[\ud800-\udbff]$/.test(ua)) {
      ua = ua.slice(0, -1);
    }
  }
  return ua.length > 0 ? ua : undefined;
}

/** True when `id` has the shape of an id `create` generates. */
export function isSessionId(id: unknown): id is string {
  return isBase64Url(id, 43, 43);
}

/** Generates a session id: 256 bits from the CSPRNG, base64url. */
export function generateSessionId(): string {
  return randomBytes(SESSION_ID_BYTES).toString('base64url');
}

/** The key a store files a session under: base64url SHA-256 of the raw id. */
export function hashSessionId(id: string): string {
  return sha256Base64Url(id);
}

/** True when `handle` has the shape of a session handle (hashSessionId's output). */
export function isSessionHandle(handle: unknown): handle is string {
  return isBase64Url(handle, 43, 43);
}

/** A session's identity and MFA facts: what `create` takes, without the app data. */
export type SessionCore = Omit<NewMfaSession, 'data'>;

export interface SessionTimes {
  createdAt: number;
  lastSeenAt: number;
  idleExpiresAt: number;
  absoluteExpiresAt: number;
}

function optionalClean(value: unknown, max: number): boolean {
  return value === undefined || isCleanString(value, 1, max);
}

/** Checks the identity part of a session (input or read back) and copies the known fields. */
export function parseCore(value: unknown): SessionCore | undefined {
  if (!isPlainObject(value)) {
    return undefined;
  }
  const v = value;
  const g = SESSION_BOUNDS.groups;
  if (
    !isCleanString(v.username, 1, SESSION_BOUNDS.username.max) ||
    typeof v.mfa !== 'boolean' ||
    typeof v.failOpen !== 'boolean' ||
    (v.mfa && v.failOpen) ||
    !optionalClean(v.txid, SESSION_BOUNDS.txid.max) ||
    !optionalClean(v.factor, SESSION_BOUNDS.factor.max) ||
    (v.authTime !== undefined && !isEpoch(v.authTime)) ||
    !Array.isArray(v.groups) ||
    v.groups.length > g.maxItems ||
    !v.groups.every((x) => isCleanString(x, 1, g.maxLength)) ||
    !isCleanString(v.application, 1, SESSION_BOUNDS.application.max) ||
    (v.applications !== undefined && !isApplicationTimes(v.applications)) ||
    // Only a session whose MFA happened has satisfied an application.
    (!v.mfa && v.applications !== undefined) ||
    !optionalClean(v.duoResult, SESSION_BOUNDS.duoResult.max) ||
    !optionalClean(v.duoReason, SESSION_BOUNDS.duoReason.max) ||
    // A fail-open session never met Duo: it has no Duo result or reason.
    (!v.mfa && (v.duoResult !== undefined || v.duoReason !== undefined)) ||
    (v.clientIp !== undefined &&
      (typeof v.clientIp !== 'string' ||
        v.clientIp.length > SESSION_BOUNDS.clientIp.max ||
        isIP(v.clientIp) === 0)) ||
    (v.userAgent !== undefined && sessionUserAgent(v.userAgent) !== v.userAgent)
  ) {
    return undefined;
  }
  const core: SessionCore = {
    username: v.username,
    mfa: v.mfa,
    failOpen: v.failOpen,
    groups: [...v.groups],
    application: v.application,
  };
  if (v.txid !== undefined) {
    core.txid = v.txid as string;
  }
  if (v.factor !== undefined) {
    core.factor = v.factor as string;
  }
  if (v.authTime !== undefined) {
    core.authTime = v.authTime;
  }
  core.application = v.application;
  if (v.applications !== undefined) {
    // Sorted, so the sealed identity JSON does not depend on the order the caller used.
    core.applications = Object.fromEntries(
      Object.entries(v.applications).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)),
    );
  }
  for (const key of ['duoResult', 'duoReason', 'clientIp', 'userAgent'] as const) {
    if (v[key] !== undefined) {
      core[key] = v[key] as string;
    }
  }
  return core;
}

export function invalidSession(): DuoStoreError {
  return new DuoStoreError(
    'invalid_record',
    'The session is malformed: check username, mfa/failOpen (never both true), txid, factor, ' +
      'authTime (seconds), groups (strings), application, applications (name: seconds; MFA ' +
      'sessions only), duoResult/duoReason (MFA sessions ' +
      'only), clientIp (an IP address) and userAgent (clean, at most 256 characters)',
  );
}

/** Serializes app data; throws when it is not a small JSON object. */
export function serializeData(data: unknown): string {
  if (!isPlainObject(data)) {
    throw new DuoStoreError('invalid_record', 'Session data must be a plain JSON object');
  }
  let json: string;
  try {
    json = JSON.stringify(data);
  } catch (err) {
    throw new DuoStoreError('invalid_record', 'Session data must be JSON-serializable', {
      cause: err,
    });
  }
  if (utf8Length(json) > SESSION_MAX_DATA_BYTES) {
    throw new DuoStoreError(
      'record_too_large',
      `Session data exceeds ${SESSION_MAX_DATA_BYTES} bytes once serialized`,
    );
  }
  return json;
}

function parseData(json: unknown): Record<string, unknown> | undefined {
  if (typeof json !== 'string' || utf8Length(json) > SESSION_MAX_DATA_BYTES) {
    return undefined;
  }
  const data = parseJson(json);
  return isPlainObject(data) ? data : undefined;
}

function validTimes(t: SessionTimes): boolean {
  return (
    isEpoch(t.createdAt) &&
    isEpoch(t.lastSeenAt) &&
    isEpoch(t.idleExpiresAt) &&
    isEpoch(t.absoluteExpiresAt) &&
    t.lastSeenAt >= t.createdAt &&
    t.idleExpiresAt > t.lastSeenAt &&
    t.absoluteExpiresAt > t.createdAt
  );
}

export function expiryReason(t: SessionTimes, now: number): SessionExpiryReason | undefined {
  if (now >= t.absoluteExpiresAt) {
    return 'absolute';
  }
  return now >= t.idleExpiresAt ? 'idle' : undefined;
}

export interface NormalizedTimeouts {
  idleTimeoutMs: number;
  absoluteTimeoutMs: number;
  touchIntervalMs: number;
  clock: () => number;
}

export function normalizeTimeouts(options: SessionTimeoutOptions): NormalizedTimeouts {
  const idleTimeoutMs = positiveIntOption('idleTimeoutMs', options.idleTimeoutMs, 15 * 60_000);
  const absoluteTimeoutMs = positiveIntOption(
    'absoluteTimeoutMs',
    options.absoluteTimeoutMs,
    8 * 3_600_000,
  );
  // A minute, or half the idle timeout when that is shorter (an idle timeout of 60 s must still boot).
  const touchIntervalMs =
    options.touchIntervalMs ?? Math.min(60_000, Math.floor(idleTimeoutMs / 2));
  if (!Number.isSafeInteger(touchIntervalMs) || touchIntervalMs < 0) {
    throw new RangeError('touchIntervalMs must be a non-negative integer');
  }
  if (touchIntervalMs >= idleTimeoutMs) {
    throw new RangeError('touchIntervalMs must be below idleTimeoutMs');
  }
  return { idleTimeoutMs, absoluteTimeoutMs, touchIntervalMs, clock: options.clock ?? Date.now };
}

export function newTimes(now: number, t: NormalizedTimeouts): SessionTimes {
  return {
    createdAt: now,
    lastSeenAt: now,
    idleExpiresAt: now + t.idleTimeoutMs,
    absoluteExpiresAt: now + t.absoluteTimeoutMs,
  };
}

/** What session control shows of a session: its handle, identity and times (no id, no data). */
export function summarize(handle: string, core: SessionCore, times: SessionTimes): SessionSummary {
  return {
    handle,
    ...core,
    groups: [...core.groups],
    ...(core.applications ? { applications: { ...core.applications } } : {}),
    ...times,
  };
}

export function assemble(
  id: string,
  core: SessionCore,
  times: SessionTimes,
  data: Record<string, unknown>,
): MfaSession {
  return {
    id,
    ...core,
    groups: [...core.groups],
    ...(core.applications ? { applications: { ...core.applications } } : {}),
    ...times,
    data,
  };
}

/**
 * Version of the identity JSON. 2 added how MFA was satisfied (application, duoResult, duoReason)
 * and where the session came from (clientIp, userAgent): a record of version 1 (written before)
 * is refused as invalid when read back (dropped and reported as `store_record_invalid`, reason
 * `shape`), so its user signs on again once after the upgrade.
 */
export const SESSION_RECORD_VERSION = 2;

/**
 * The identity JSON of a session (field `c` in Redis): its id hash, every identity field in a fixed
 * order, and its creation time. The MAC covers this exact text.
 */
export function coreJson(hash: string, core: SessionCore, createdAt: number): string {
  return JSON.stringify({
    v: SESSION_RECORD_VERSION,
    h: hash,
    username: core.username,
    mfa: core.mfa,
    failOpen: core.failOpen,
    txid: core.txid,
    factor: core.factor,
    authTime: core.authTime,
    groups: core.groups,
    application: core.application,
    applications: core.applications,
    duoResult: core.duoResult,
    duoReason: core.duoReason,
    clientIp: core.clientIp,
    userAgent: core.userAgent,
    createdAt,
  });
}

/** What a session's MAC covers, in a fixed order: kind, key name, identity, times, data, user index. */
export function sealParts(keyName: string, c: string, t: string, d: string, u: string): string[] {
  return ['session/v1', keyName, c, t, d, u];
}

/**
 * A session whose `data` is parsed from JSON on first read: guards that only check identity and
 * timestamps never pay for it, and every caller still gets its own copy. (An accessor in the
 * literal keeps the object's shape fast; redefining the property per session did not.)
 */
export function assembleLazy(
  id: string,
  core: SessionCore,
  times: SessionTimes,
  dataJson: string,
): MfaSession {
  let data: Record<string, unknown> | undefined;
  return {
    id,
    ...core,
    groups: [...core.groups],
    ...(core.applications ? { applications: { ...core.applications } } : {}),
    ...times,
    get data(): Record<string, unknown> {
      return (data ??= JSON.parse(dataJson) as Record<string, unknown>);
    },
    set data(value: Record<string, unknown>) {
      data = value;
    },
  };
}

const TIMES = /^(\d{1,16}),(\d{1,16}),(\d{1,16})$/;

export function formatTimes(t: SessionTimes): string {
  return `${t.lastSeenAt},${t.idleExpiresAt},${t.absoluteExpiresAt}`;
}

/** A session record's parsed parts: identity, times and app data. */
export interface SessionRecordParts {
  core: SessionCore;
  times: SessionTimes;
  data: Record<string, unknown>;
}

/** The identity field `c` of a session, parsed and checked: what readBack can remember of it. */
export interface ParsedIdentity {
  core: SessionCore;
  hash: string;
  createdAt: number;
  /** The user-index field it must come with: sha256 of the username. */
  userIndex: string;
}

/**
 * Parsed identities by their exact JSON (it is fixed for a session's life, and includes the id
 * hash): a session read on every request parses and checks its identity once. Only identities
 * that passed every check are remembered; the cached core is shared, and assemble copies it.
 */
export type IdentityMemo = VerifiedMemo<ParsedIdentity>;

function parseIdentity(text: unknown): ParsedIdentity | undefined {
  const c = parseJson(text);
  if (!isPlainObject(c) || c.v !== SESSION_RECORD_VERSION || !isEpoch(c.createdAt)) {
    return undefined;
  }
  const core = parseCore(c);
  return core && typeof c.h === 'string'
    ? { core, hash: c.h, createdAt: c.createdAt, userIndex: sha256Base64Url(core.username) }
    : undefined;
}

/** Parses a session hash whose MAC has passed (the shape is still checked: defence in depth). */
export function readBack(
  hash: string,
  fields: Record<string, string>,
  memo?: IdentityMemo,
): SessionRecordParts | undefined {
  const text = fields.c;
  let identity = typeof text === 'string' ? memo?.get(text, '') : undefined;
  if (identity === undefined) {
    identity = parseIdentity(text);
    if (identity !== undefined && typeof text === 'string') {
      memo?.remember(text, '', identity);
    }
  }
  if (identity === undefined || identity.hash !== hash || fields.u !== identity.userIndex) {
    return undefined;
  }
  const { core } = identity;
  const m = typeof fields.t === 'string' ? TIMES.exec(fields.t) : null;
  const data = parseData(fields.d);
  if (!m || !data) {
    return undefined;
  }
  const times: SessionTimes = {
    createdAt: identity.createdAt,
    lastSeenAt: Number(m[1]),
    idleExpiresAt: Number(m[2]),
    absoluteExpiresAt: Number(m[3]),
  };
  return validTimes(times) ? { core, times, data } : undefined;
}
