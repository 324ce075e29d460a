/**
 * Export formats of the audit trail: NDJSON (one event as JSON per line, every field) and CSV
 * (RFC 4180: CRLF rows, quoted cells where needed, a header row; JSON columns as JSON text).
 * CSV cells that a spreadsheet would run as a formula (starting with = + - @, tab or CR) get a
 * leading apostrophe, per OWASP's CSV injection advice. Characters that display as something they
 * are not (bidi controls, zero-width and other format characters, separators, lone surrogates; see
 * showUnsafe) are written as `\u{XXXX}`, also in rows stored before the username policy existed.
 */
import { showUnsafe } from '@duo-nest/core/internal';
import type { AuditEvent } from './audit-record.js';

/** CSV columns, in order (the AuditEvent field names). */
export const AUDIT_CSV_COLUMNS = [
  'id',
  'seq',
  'occurredAt',
  'type',
  'outcome',
  'username',
  'reason',
  'txid',
  'factor',
  'duoResult',
  'duoReason',
  'duoStatus',
  'authDeviceIp',
  'authDeviceName',
  'authDeviceLocation',
  'accessDeviceIp',
  'accessDeviceLocation',
  'application',
  'groups',
  'clientIp',
  'userAgent',
  'correlationId',
  'instanceId',
  'authContext',
  'detail',
  'prevHash',
  'hash',
] as const satisfies readonly (keyof AuditEvent)[];

const FORMULA_START = /^[=+\-@\t\r]/;

/** One CSV cell: unsafe characters escaped (tab, CR and LF are left to quoting), formula guard, then RFC 4180 quoting. */
export function csvCell(value: unknown): string {
  if (value === null || value === undefined) {
    return '';
  }
  let text = showUnsafe(typeof value === 'string' ? value : JSON.stringify(value), '\t\r\n');
  if (typeof value === 'string' && FORMULA_START.test(text)) {
    text = `'${text}`;
  }
  return /[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

export function csvHeaderLine(): string {
  return `${AUDIT_CSV_COLUMNS.join(',')}\r\n`;
}

export function csvLine(event: AuditEvent): string {
  return `${AUDIT_CSV_COLUMNS.map((c) => csvCell(event[c])).join(',')}\r\n`;
}

export function ndjsonLine(event: AuditEvent): string {
  // JSON.stringify escapes U+2028/2029 since ES2019, so a line is always one line.
  return `${JSON.stringify(event)}\n`;
}

export const AUDIT_EXPORT_CONTENT_TYPES = {
  ndjson: 'application/x-ndjson; charset=utf-8',
  csv: 'text/csv; charset=utf-8; header=present',
} as const;
