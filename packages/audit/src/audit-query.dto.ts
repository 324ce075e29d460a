/**
 * Parsing of the audit routes' query strings, by hand: every parameter is checked (known name,
 * given once, plain text, within bounds, right format) and a bad one becomes an AuditQueryError
 * whose message names the parameter and says how to fix it (the controller answers 400).
 */
import { AUDIT_BOUNDS, toAuditTimestamp } from './audit-record.js';
import {
  AUDIT_EVENT_TYPES,
  AUDIT_OUTCOMES,
  isAuditEventType,
  isAuditOutcome,
} from './audit-events.js';
import {
  AUDIT_PAGE_DEFAULT,
  AUDIT_PAGE_MAX,
  AuditQueryError,
  decodeAuditCursor,
  type AuditFilter,
  type AuditStatsBucket,
} from './audit.repository.js';

/** The filter parameters every audit route accepts. */
export const AUDIT_FILTER_PARAMS = [
  'username',
  'type',
  'outcome',
  'factor',
  'reason',
  'txid',
  'ip',
  'from',
  'to',
] as const;
export type AuditFilterParam = (typeof AUDIT_FILTER_PARAMS)[number];

export const AUDIT_EXPORT_FORMATS = ['ndjson', 'csv'] as const;
export type AuditExportFormat = (typeof AUDIT_EXPORT_FORMATS)[number];
export const AUDIT_STATS_BUCKETS = ['hour', 'day'] as const;

/** Longest accepted value of a text filter (the stored column's bound). */
const TEXT_BOUNDS: Record<Exclude<AuditFilterParam, 'type' | 'outcome' | 'from' | 'to'>, number> = {
  username: AUDIT_BOUNDS.username,
  factor: AUDIT_BOUNDS.factor,
  reason: AUDIT_BOUNDS.reason,
  txid: AUDIT_BOUNDS.txid,
  ip: AUDIT_BOUNDS.ip,
};

export interface AuditListQuery {
  filter: AuditFilter;
  cursor: string | null;
  limit: number;
}

export interface AuditExportQuery {
  filter: AuditFilter;
  format: AuditExportFormat;
}

export interface AuditStatsQuery {
  filter: AuditFilter;
  bucket: AuditStatsBucket;
}

export interface AuditPageQuery extends AuditListQuery {
  bucket: AuditStatsBucket;
}

interface ParseOptions {
  /** Empty values count as absent (HTML forms send every field); the API refuses them. */
  emptyIsAbsent?: boolean;
  /** A date-time without a zone is read as UTC (datetime-local inputs); the API refuses it. */
  zonelessIsUtc?: boolean;
}

type RawQuery = Record<string, unknown>;

const DATE_ONLY = /^\d{4}-\d{2}-\d{2}$/;
const DATE_TIME =
  /^(\d{4}-\d{2}-\d{2})T(\d{2}):(\d{2})(?::(\d{2})(\.\d{1,9})?)?(Z|[+-]\d{2}:\d{2})?$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

function fail(message: string): never {
  throw new AuditQueryError(message);
}

/** One plain string per parameter, unknown parameters refused. */
function readParams(
  raw: RawQuery,
  allowed: readonly string[],
  options: ParseOptions,
): Map<string, string> {
  const out = new Map<string, string>();
  const names = Object.keys(raw ?? {});
  const unknown = names.filter((n) => !allowed.includes(n));
  if (unknown.length > 0) {
    const shown = unknown
      .slice(0, 3)
      .map((n) => JSON.stringify(n.slice(0, 40)))
      .join(', ');
    fail(`unknown parameter ${shown}; allowed parameters: ${allowed.join(', ')}`);
  }
  for (const name of names) {
    const value = raw[name];
    if (Array.isArray(value)) {
      fail(`parameter ${name} is given ${value.length} times; give it once`);
    }
    if (typeof value !== 'string') {
      fail(`parameter ${name} must be a plain value (name=value), not a nested structure`);
    }
    if (value === '') {
      if (options.emptyIsAbsent) {
        continue;
      }
      fail(`parameter ${name} is empty; give a value or leave the parameter out`);
    }
    if (/[\u0000-\u001f\u007f]/.test(value)) {
      fail(`parameter ${name} must not hold control characters`);
    }
    out.set(name, value);
  }
  return out;
}

function parseTime(name: 'from' | 'to', value: string, options: ParseOptions): string {
  const hint = 'use an ISO 8601 date (2026-01-31) or date-time with a zone (2026-01-31T12:00:00Z)';
  let iso = `${value}T00:00:00.000Z`;
  if (!DATE_ONLY.test(value)) {
    const m = DATE_TIME.exec(value);
    if (!m) {
      fail(`parameter ${name} is not a valid time; ${hint}`);
    }
    const [, , hh, mm, ss = '00', , zone] = m;
    const offsetOk =
      !zone || zone === 'Z' || (Number(zone.slice(1, 3)) <= 14 && Number(zone.slice(4)) < 60);
    if (Number(hh) > 23 || Number(mm) > 59 || Number(ss) > 59 || !offsetOk) {
      fail(`parameter ${name} is not a valid time; ${hint}`);
    }
    if (!zone && !options.zonelessIsUtc) {
      fail(`parameter ${name} has no time zone; add Z for UTC or an offset such as +02:00`);
    }
    iso = zone ? value : `${value}Z`;
  }
  const date = new Date(iso);
  // Date rolls 2026-02-30 over to March 2nd: check the calendar day itself.
  if (Number.isNaN(date.getTime()) || !isRealCalendarDay(value.slice(0, 10))) {
    fail(`parameter ${name} is not a valid time; ${hint}`);
  }
  try {
    return toAuditTimestamp(date);
  } catch {
    fail(`parameter ${name} is out of range; use a year from 0000 to 9999`);
  }
}

function isRealCalendarDay(day: string): boolean {
  const [y, m, d] = day.split('-').map(Number);
  const probe = new Date(0);
  probe.setUTCFullYear(y, m - 1, d);
  return probe.getUTCFullYear() === y && probe.getUTCMonth() === m - 1 && probe.getUTCDate() === d;
}

function parseFilter(params: Map<string, string>, options: ParseOptions): AuditFilter {
  const filter: AuditFilter = {};
  for (const name of ['username', 'factor', 'reason', 'txid', 'ip'] as const) {
    const value = params.get(name);
    if (value !== undefined) {
      if (value.length > TEXT_BOUNDS[name]) {
        fail(`parameter ${name} is longer than ${TEXT_BOUNDS[name]} characters`);
      }
      filter[name] = value;
    }
  }
  const type = params.get('type');
  if (type !== undefined) {
    if (!isAuditEventType(type)) {
      fail(`parameter type must be one of ${AUDIT_EVENT_TYPES.join(', ')}`);
    }
    filter.type = type;
  }
  const outcome = params.get('outcome');
  if (outcome !== undefined) {
    if (!isAuditOutcome(outcome)) {
      fail(`parameter outcome must be one of ${AUDIT_OUTCOMES.join(', ')}`);
    }
    filter.outcome = outcome;
  }
  const from = params.get('from');
  const to = params.get('to');
  if (from !== undefined) {
    filter.from = parseTime('from', from, options);
  }
  if (to !== undefined) {
    filter.to = parseTime('to', to, options);
  }
  if (filter.from !== undefined && filter.to !== undefined && filter.from >= filter.to) {
    fail('parameter from must be earlier than to (from is inclusive, to is exclusive)');
  }
  return filter;
}

function parseLimit(value: string | undefined): number {
  if (value === undefined) {
    return AUDIT_PAGE_DEFAULT;
  }
  if (!/^\d{1,9}$/.test(value) || Number(value) < 1) {
    fail(`parameter limit must be a whole number from 1 to ${AUDIT_PAGE_MAX}`);
  }
  return Math.min(AUDIT_PAGE_MAX, Number(value));
}

function parseCursor(value: string | undefined): string | null {
  if (value === undefined) {
    return null;
  }
  try {
    decodeAuditCursor(value);
  } catch {
    fail('parameter cursor is not a cursor this API issued; pass nextCursor from a previous page');
  }
  return value;
}

function parseEnum<T extends string>(
  name: string,
  value: string | undefined,
  values: readonly T[],
  fallback: T,
): T {
  if (value === undefined) {
    return fallback;
  }
  if (!(values as readonly string[]).includes(value)) {
    fail(`parameter ${name} must be one of ${values.join(', ')}`);
  }
  return value as T;
}

/** GET /audit/events: filters, cursor, limit (default 50, capped at 500). */
export function parseAuditListQuery(raw: RawQuery): AuditListQuery {
  const params = readParams(raw, [...AUDIT_FILTER_PARAMS, 'cursor', 'limit'], {});
  return {
    filter: parseFilter(params, {}),
    cursor: parseCursor(params.get('cursor')),
    limit: parseLimit(params.get('limit')),
  };
}

/** GET /audit/export: filters and format (ndjson by default). */
export function parseAuditExportQuery(raw: RawQuery): AuditExportQuery {
  const params = readParams(raw, [...AUDIT_FILTER_PARAMS, 'format'], {});
  return {
    filter: parseFilter(params, {}),
    format: parseEnum('format', params.get('format'), AUDIT_EXPORT_FORMATS, 'ndjson'),
  };
}

/** GET /audit/stats: filters and bucket (day by default). */
export function parseAuditStatsQuery(raw: RawQuery): AuditStatsQuery {
  const params = readParams(raw, [...AUDIT_FILTER_PARAMS, 'bucket'], {});
  return {
    filter: parseFilter(params, {}),
    bucket: parseEnum('bucket', params.get('bucket'), AUDIT_STATS_BUCKETS, 'day'),
  };
}

/** GET /audit (the HTML page): like the list, plus the chart's bucket; empty form fields are ignored. */
export function parseAuditPageQuery(raw: RawQuery): AuditPageQuery {
  const options = { emptyIsAbsent: true, zonelessIsUtc: true };
  const params = readParams(raw, [...AUDIT_FILTER_PARAMS, 'cursor', 'limit', 'bucket'], options);
  return {
    filter: parseFilter(params, options),
    cursor: parseCursor(params.get('cursor')),
    limit: parseLimit(params.get('limit')),
    bucket: parseEnum('bucket', params.get('bucket'), AUDIT_STATS_BUCKETS, 'day'),
  };
}

/** Routes without parameters refuse any. */
export function parseNoQuery(raw: RawQuery): void {
  readParams(raw, [], {});
}

/** An event id path parameter: a UUID. */
export function parseAuditEventId(value: unknown): string {
  if (typeof value !== 'string' || !UUID.test(value)) {
    fail('path parameter id must be an event id (a UUID such as 0b7c...-...)');
  }
  return value.toLowerCase();
}

/** The filter as query parameters (for links that keep it, and the export/stats URLs). */
export function auditFilterToParams(filter: AuditFilter): URLSearchParams {
  const params = new URLSearchParams();
  for (const name of AUDIT_FILTER_PARAMS) {
    const value = filter[name];
    if (value !== undefined && value !== '') {
      params.set(name, value instanceof Date ? value.toISOString() : value);
    }
  }
  return params;
}
