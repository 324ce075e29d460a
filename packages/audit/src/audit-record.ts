/**
 * From an AuditEventInput to the row that is stored: derive the Duo columns from auth_context,
 * bound and encode every string, keep only allow-listed auth_context keys, and drop detail keys or
 * values that look like secrets. Nothing here knows about the database.
 *
 * occurred_at is stored as a fixed-width UTC ISO-8601 string, `YYYY-MM-DDTHH:mm:ss.sssZ` (24
 * characters), on SQLite and PostgreSQL alike: it sorts and compares as text exactly like the
 * instant it names, so range filters, ordering and keyset cursors behave the same on both engines.
 */
import { randomUUID } from 'node:crypto';
import type { DuoAuthContext } from '@duo-nest/core';
import {
  AUDIT_EVENT_TYPES,
  isAuditEventType,
  isAuditOutcome,
  type AuditDetail,
  type AuditEventInput,
  type AuditEventType,
  type AuditOutcome,
  type AuditRecordContext,
} from './audit-events.js';

/** Column bounds (characters). The migration uses the same numbers. */
export const AUDIT_BOUNDS = {
  id: 36,
  occurredAt: 24,
  type: 40,
  outcome: 10,
  username: 255,
  reason: 64,
  txid: 128,
  factor: 64,
  duoResult: 32,
  duoReason: 128,
  duoStatus: 128,
  ip: 64,
  name: 255,
  location: 255,
  application: 255,
  userAgent: 512,
  correlationId: 128,
  instanceId: 128,
  hash: 64,
  /** JSON text columns. */
  groups: 4096,
  authContext: 8192,
  detail: 4096,
} as const;

/** The stored data of one event, with the database's column names; seq and hashes come at append. */
export interface AuditRecord {
  id: string;
  occurred_at: string;
  type: AuditEventType;
  outcome: AuditOutcome;
  username: string | null;
  reason: string | null;
  txid: string | null;
  factor: string | null;
  duo_result: string | null;
  duo_reason: string | null;
  duo_status: string | null;
  auth_device_ip: string | null;
  auth_device_name: string | null;
  auth_device_location: string | null;
  access_device_ip: string | null;
  access_device_location: string | null;
  application: string | null;
  /** JSON array text. */
  groups: string | null;
  client_ip: string | null;
  user_agent: string | null;
  correlation_id: string | null;
  instance_id: string | null;
  /** JSON object text (allow-listed, bounded). */
  auth_context: string | null;
  /** JSON object text (secret-looking keys dropped, bounded). */
  detail: string | null;
}

/** One stored row: the record plus its chain position and links. */
export interface AuditRow extends AuditRecord {
  seq: number;
  prev_hash: string;
  hash: string;
}

/** Every column of audit_events, in table order. */
export const AUDIT_RECORD_COLUMNS = [
  'id',
  'occurred_at',
  'type',
  'outcome',
  'username',
  'reason',
  'txid',
  'factor',
  'duo_result',
  'duo_reason',
  'duo_status',
  'auth_device_ip',
  'auth_device_name',
  'auth_device_location',
  'access_device_ip',
  'access_device_location',
  'application',
  'groups',
  'client_ip',
  'user_agent',
  'correlation_id',
  'instance_id',
  'auth_context',
  'detail',
] as const satisfies readonly (keyof AuditRecord)[];
export const AUDIT_ROW_COLUMNS = [...AUDIT_RECORD_COLUMNS, 'seq', 'prev_hash', 'hash'] as const;

/** What readers get: camelCase, JSON columns parsed. */
export interface AuditEvent {
  id: string;
  seq: number;
  occurredAt: string;
  type: AuditEventType;
  outcome: AuditOutcome;
  username: string | null;
  reason: string | null;
  txid: string | null;
  factor: string | null;
  duoResult: string | null;
  duoReason: string | null;
  duoStatus: string | null;
  authDeviceIp: string | null;
  authDeviceName: string | null;
  authDeviceLocation: string | null;
  accessDeviceIp: string | null;
  accessDeviceLocation: string | null;
  application: string | null;
  groups: string[] | null;
  clientIp: string | null;
  userAgent: string | null;
  correlationId: string | null;
  instanceId: string | null;
  authContext: Record<string, unknown> | null;
  detail: AuditDetail | null;
  prevHash: string;
  hash: string;
}

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const ISO_RE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

/** Encodes control characters (CR/LF injection, terminal escapes) as \uXXXX, then truncates. */
export function boundText(value: unknown, max: number): string | null {
  if (value === undefined || value === null) {
    return null;
  }
  const text = typeof value === 'string' ? value : JSON.stringify(value);
  const encoded = text.replace(
    /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`,
  );
  // Cut on a code point boundary so a surrogate pair is never split.
  return Array.from(encoded).length > max ? Array.from(encoded).slice(0, max).join('') : encoded;
}

/** A machine code: lower case letters, digits, `_ . : -`; anything else becomes `_`. */
export function boundCode(value: unknown, max: number): string | null {
  if (typeof value !== 'string' || value.length === 0) {
    return null;
  }
  return value
    .toLowerCase()
    .replace(/[^a-z0-9_.:-]/g, '_')
    .slice(0, max);
}

/** Normalizes a Date or ISO string to the stored fixed-width UTC form. */
export function toAuditTimestamp(value: Date | string | number): string {
  const date = value instanceof Date ? value : new Date(value);
  if (Number.isNaN(date.getTime())) {
    throw new TypeError('audit: invalid timestamp');
  }
  const iso = date.toISOString();
  if (!ISO_RE.test(iso)) {
    throw new TypeError('audit: timestamp out of range');
  }
  return iso;
}

// ---------------------------------------------------------------------------------------------
// auth_context: an allow-list of Duo's documented fields; everything else is dropped.

type Shape = 'string' | 'number' | 'boolean' | 'strings' | { [key: string]: Shape };
const LOCATION: Shape = { city: 'string', state: 'string', country: 'string' };
const AUTH_CONTEXT_SHAPE: Shape = {
  txid: 'string',
  timestamp: 'number',
  isotimestamp: 'string',
  event_type: 'string',
  factor: 'string',
  result: 'string',
  reason: 'string',
  alias: 'string',
  email: 'string',
  ood_software: 'string',
  trusted_endpoint_status: 'string',
  user: { name: 'string', key: 'string', groups: 'strings' },
  application: { name: 'string', key: 'string' },
  auth_device: { ip: 'string', name: 'string', location: LOCATION },
  access_device: {
    ip: 'string',
    hostname: 'string',
    location: LOCATION,
    browser: 'string',
    browser_version: 'string',
    os: 'string',
    os_version: 'string',
    flash_version: 'string',
    java_version: 'string',
    is_encryption_enabled: 'string',
    is_firewall_enabled: 'string',
    is_password_set: 'string',
    security_agents: 'string',
  },
};
const MAX_LIST = 100;
const MAX_STRING = 255;

function pick(value: unknown, shape: Shape): unknown {
  if (value === null || value === undefined) {
    return undefined;
  }
  if (shape === 'string') {
    return typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean'
      ? boundText(String(value), MAX_STRING)
      : undefined;
  }
  if (shape === 'number') {
    return typeof value === 'number' && Number.isFinite(value) ? value : undefined;
  }
  if (shape === 'boolean') {
    return typeof value === 'boolean' ? value : undefined;
  }
  if (shape === 'strings') {
    return Array.isArray(value)
      ? value
          .filter((v): v is string => typeof v === 'string')
          .slice(0, MAX_LIST)
          .map((v) => boundText(v, MAX_STRING))
      : undefined;
  }
  if (typeof value !== 'object' || Array.isArray(value)) {
    return undefined;
  }
  const out: Record<string, unknown> = {};
  for (const [key, sub] of Object.entries(shape)) {
    const picked = pick((value as Record<string, unknown>)[key], sub);
    if (picked !== undefined) {
      out[key] = picked;
    }
  }
  return Object.keys(out).length > 0 ? out : undefined;
}

/** Keeps only allow-listed Duo auth_context fields (bounded); null when nothing is left. */
export function sanitizeAuthContext(context: unknown): Partial<DuoAuthContext> | null {
  const picked = pick(context, AUTH_CONTEXT_SHAPE) as Partial<DuoAuthContext> | undefined;
  return picked ?? null;
}

// ---------------------------------------------------------------------------------------------
// detail: free-form scalars, so a deny-list on keys plus a check of values.

const SECRET_KEY_RE =
  /token|secret|passw|assertion|session|cookie|nonce|jwt|authoriz|credential|api[-_]?key|private|^(state|code|duo_code|key)$/i;
const DETAIL_KEY_RE = /^[A-Za-z][A-Za-z0-9_.-]{0,63}$/;
/** A compact JWS/JWT (three base64url parts, header starting with `{"`) or a PEM block. */
const SECRET_VALUE_RE =
  /eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.|-----BEGIN [A-Z ]*PRIVATE KEY-----/;
const MAX_DETAIL_KEYS = 32;
const MAX_DETAIL_VALUE = 512;

export function sanitizeDetail(
  detail: AuditDetail | null | undefined,
  returnTo?: string | null,
): AuditDetail | null {
  const out: AuditDetail = {};
  let count = 0;
  for (const [key, value] of Object.entries(detail ?? {})) {
    if (count >= MAX_DETAIL_KEYS || !DETAIL_KEY_RE.test(key) || SECRET_KEY_RE.test(key)) {
      continue;
    }
    if (value === null || typeof value === 'boolean') {
      out[key] = value;
    } else if (typeof value === 'number') {
      out[key] = Number.isFinite(value) ? value : null;
    } else if (typeof value === 'string') {
      out[key] = SECRET_VALUE_RE.test(value) ? '[redacted]' : boundText(value, MAX_DETAIL_VALUE);
    } else {
      continue;
    }
    count += 1;
  }
  if (typeof returnTo === 'string' && returnTo.length > 0) {
    out.return_to = SECRET_VALUE_RE.test(returnTo)
      ? '[redacted]'
      : boundText(returnTo, MAX_DETAIL_VALUE);
  }
  return Object.keys(out).length > 0 ? out : null;
}

function boundedJson(value: unknown, max: number, fallback: () => unknown): string | null {
  if (value === null || value === undefined) {
    return null;
  }
  const json = JSON.stringify(value);
  if (json.length <= max) {
    return json;
  }
  const smaller = fallback();
  if (smaller === null || smaller === undefined) {
    return null;
  }
  const json2 = JSON.stringify(smaller);
  return json2.length <= max ? json2 : null;
}

function formatLocation(location: unknown): string | null {
  if (!location || typeof location !== 'object') {
    return null;
  }
  const l = location as { city?: unknown; state?: unknown; country?: unknown };
  const parts = [l.city, l.state, l.country].filter(
    (p): p is string => typeof p === 'string' && p.length > 0,
  );
  return parts.length > 0 ? boundText(parts.join(', '), AUDIT_BOUNDS.location) : null;
}

function str(value: unknown): string | null {
  return typeof value === 'string' && value.length > 0 ? value : null;
}

/**
 * Builds the storable record. Throws TypeError for an unknown type/outcome or a malformed id.
 * Only named fields are read: unknown keys on the input (a token passed by mistake) are ignored.
 */
export function buildAuditRecord(
  input: AuditEventInput,
  ctx: AuditRecordContext = {},
): AuditRecord {
  if (!isAuditEventType(input.type)) {
    throw new TypeError(
      `audit: unknown event type (expected one of ${AUDIT_EVENT_TYPES.join(', ')})`,
    );
  }
  if (!isAuditOutcome(input.outcome)) {
    throw new TypeError('audit: outcome must be success, failure or info');
  }
  const id = ctx.id ?? randomUUID();
  if (!UUID_RE.test(id)) {
    throw new TypeError('audit: event id must be a lower-case uuid');
  }
  const authContext = sanitizeAuthContext(input.authContext);
  const authResult = input.authResult ?? null;
  const user = authContext?.user;
  const authDevice = authContext?.auth_device ?? null;
  const accessDevice = authContext?.access_device ?? null;
  const groups = Array.isArray(user?.groups) ? user.groups : null;
  const detail = sanitizeDetail(input.detail, input.returnTo);

  return {
    id,
    occurred_at: toAuditTimestamp(ctx.occurredAt ?? new Date()),
    type: input.type,
    outcome: input.outcome,
    username: boundText(str(input.username) ?? str(user?.name), AUDIT_BOUNDS.username),
    reason: boundCode(input.reason, AUDIT_BOUNDS.reason),
    txid: boundText(str(authContext?.txid), AUDIT_BOUNDS.txid),
    factor: boundText(str(authContext?.factor), AUDIT_BOUNDS.factor),
    duo_result: boundText(
      str(authResult?.result) ?? str(authContext?.result),
      AUDIT_BOUNDS.duoResult,
    ),
    duo_reason: boundText(str(authContext?.reason), AUDIT_BOUNDS.duoReason),
    duo_status: boundText(str(authResult?.status), AUDIT_BOUNDS.duoStatus),
    auth_device_ip: boundText(str(authDevice?.ip), AUDIT_BOUNDS.ip),
    auth_device_name: boundText(str(authDevice?.name), AUDIT_BOUNDS.name),
    auth_device_location: formatLocation(authDevice?.location),
    access_device_ip: boundText(str(accessDevice?.ip), AUDIT_BOUNDS.ip),
    access_device_location: formatLocation(accessDevice?.location),
    application: boundText(str(authContext?.application?.name), AUDIT_BOUNDS.application),
    groups: boundedJson(groups, AUDIT_BOUNDS.groups, () => groups?.slice(0, 10)),
    client_ip: boundText(str(input.clientIp) ?? str(ctx.clientIp), AUDIT_BOUNDS.ip),
    user_agent: boundText(str(input.userAgent) ?? str(ctx.userAgent), AUDIT_BOUNDS.userAgent),
    correlation_id: boundText(
      str(input.correlationId) ?? str(ctx.correlationId),
      AUDIT_BOUNDS.correlationId,
    ),
    instance_id: boundText(str(ctx.instanceId), AUDIT_BOUNDS.instanceId),
    auth_context: boundedJson(authContext, AUDIT_BOUNDS.authContext, () => {
      // Too large (huge group lists): keep the core fields only.
      if (!authContext) {
        return null;
      }
      const { access_device: _a, auth_device: _d, user: u, ...core } = authContext;
      return { ...core, user: u ? { name: u.name } : undefined };
    }),
    detail: boundedJson(detail, AUDIT_BOUNDS.detail, () => null),
  };
}

/** Checks a record read back from the spool (it may be damaged): all columns, right types. */
export function isAuditRecord(value: unknown): value is AuditRecord {
  if (!value || typeof value !== 'object') {
    return false;
  }
  const r = value as Record<string, unknown>;
  if (typeof r.id !== 'string' || !UUID_RE.test(r.id)) {
    return false;
  }
  if (typeof r.occurred_at !== 'string' || !ISO_RE.test(r.occurred_at)) {
    return false;
  }
  if (!isAuditEventType(r.type) || !isAuditOutcome(r.outcome)) {
    return false;
  }
  return AUDIT_RECORD_COLUMNS.every((c) => r[c] === null || typeof r[c] === 'string');
}

function parseJson<T>(text: string | null): T | null {
  if (text === null) {
    return null;
  }
  try {
    return JSON.parse(text) as T;
  } catch {
    return null;
  }
}

/** A stored row as readers see it. */
export function rowToEvent(row: AuditRow): AuditEvent {
  return {
    id: row.id,
    seq: Number(row.seq),
    occurredAt: row.occurred_at,
    type: row.type,
    outcome: row.outcome,
    username: row.username,
    reason: row.reason,
    txid: row.txid,
    factor: row.factor,
    duoResult: row.duo_result,
    duoReason: row.duo_reason,
    duoStatus: row.duo_status,
    authDeviceIp: row.auth_device_ip,
    authDeviceName: row.auth_device_name,
    authDeviceLocation: row.auth_device_location,
    accessDeviceIp: row.access_device_ip,
    accessDeviceLocation: row.access_device_location,
    application: row.application,
    groups: parseJson<string[]>(row.groups),
    clientIp: row.client_ip,
    userAgent: row.user_agent,
    correlationId: row.correlation_id,
    instanceId: row.instance_id,
    authContext: parseJson<Record<string, unknown>>(row.auth_context),
    detail: parseJson<AuditDetail>(row.detail),
    prevHash: row.prev_hash,
    hash: row.hash,
  };
}
