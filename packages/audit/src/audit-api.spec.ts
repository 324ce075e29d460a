import { describe, expect, it } from '@jest/globals';
import type { ExecutionContext } from '@nestjs/common';
import { DuoError, type MfaSession } from '@duo-nest/core';
import { AuditAdminGuard, isAuditAdmin } from './audit-admin.guard.js';
import { csvCell } from './audit-export.js';
import type { AuditEventInput } from './audit-events.js';
import {
  auditFilterToParams,
  parseAuditListQuery,
  parseAuditPageQuery,
} from './audit-query.dto.js';
import { resolveAuditOptions } from './audit.options.js';
import { AuditQueryError } from './audit.repository.js';
import type { AuditService } from './audit.service.js';

function session(username: string, groups: string[], mfa = true): MfaSession {
  return { username, groups, mfa } as MfaSession;
}

function context(duoSession: MfaSession | undefined): ExecutionContext {
  const req = {
    duoSession,
    ip: '127.0.0.1',
    path: '/audit/events',
    get: (h: string) => (h === 'user-agent' ? 'jest' : undefined),
  };
  return { switchToHttp: () => ({ getRequest: () => req }) } as unknown as ExecutionContext;
}

function guard(adminUsers: string[], adminGroups: string[]) {
  const recorded: AuditEventInput[] = [];
  const audit = {
    record: (input: AuditEventInput) => {
      recorded.push(input);
      return Promise.resolve({ id: 'x', storedIn: 'database' as const });
    },
  } as unknown as AuditService;
  const options = resolveAuditOptions({ chainKey: 'k'.repeat(32), adminUsers, adminGroups });
  return { guard: new AuditAdminGuard(audit, options), recorded };
}

describe(AuditAdminGuard.name, () => {
  it('should let a listed user in when the username matches case-insensitively', async () => {
    const { guard: g, recorded } = guard([' Alice '], []);
    await expect(g.canActivate(context(session('alice', [])))).resolves.toBe(true);
    expect(recorded).toEqual([]);
  });

  it('should let a member of a listed Duo group in when the user is not listed', async () => {
    const { guard: g } = guard(['alice'], ['auditors']);
    await expect(g.canActivate(context(session('carol', ['staff', 'auditors'])))).resolves.toBe(
      true,
    );
  });

  it('should refuse with forbidden and record access_denied group_required when groups are configured', async () => {
    const { guard: g, recorded } = guard(['alice'], ['auditors']);
    const err = await g.canActivate(context(session('bob', ['Auditors']))).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DuoError);
    expect((err as DuoError).code).toBe('forbidden');
    expect(recorded).toEqual([
      expect.objectContaining({
        type: 'access_denied',
        outcome: 'failure',
        username: 'bob',
        reason: 'group_required',
        detail: { path: '/audit/events' },
      }),
    ]);
  });

  it('should refuse everyone with reason forbidden when no admin is configured', async () => {
    const { guard: g, recorded } = guard([], []);
    await expect(g.canActivate(context(session('alice', ['admins'])))).rejects.toThrow(DuoError);
    expect(recorded[0]?.reason).toBe('forbidden');
  });

  it('should refuse a fail-open session even for a listed admin', async () => {
    const { guard: g } = guard(['alice'], []);
    await expect(g.canActivate(context(session('alice', [], false)))).rejects.toThrow(DuoError);
  });

  it('should refuse with mfa_required when no MFA session is on the request', async () => {
    const { guard: g } = guard(['alice'], []);
    await expect(g.canActivate(context(undefined))).rejects.toMatchObject({
      code: 'mfa_required',
    });
  });

  it('should match admins by exact rules when isAuditAdmin is asked directly', () => {
    const opts = { adminUsers: ['alice'], adminGroups: ['ops'] };
    expect(isAuditAdmin({ username: 'ALICE', groups: [] }, opts)).toBe(true);
    expect(isAuditAdmin({ username: 'bob', groups: ['ops'] }, opts)).toBe(true);
    expect(isAuditAdmin({ username: 'bob', groups: ['OPS'] }, opts)).toBe(false);
  });
});

describe('audit query parsing', () => {
  it('should normalize times to UTC and keep defaults when the query is valid', () => {
    expect(
      parseAuditListQuery({ from: '2026-01-31T13:00:00+01:00', to: '2026-02-01', username: 'a' }),
    ).toEqual({
      filter: { from: '2026-01-31T12:00:00.000Z', to: '2026-02-01T00:00:00.000Z', username: 'a' },
      cursor: null,
      limit: 50,
    });
  });

  it.each([
    [{ from: '2026-02-29' }, /from is not a valid time/],
    [{ from: '2024-02-29T10:00:00+15:00' }, /from is not a valid time/],
    [{ to: '2026-01-01T10:00' }, /to has no time zone/],
    [{ limit: '1.5' }, /limit must be a whole number/],
    [{ type: ['mfa_started', 'mfa_failed'] }, /type is given 2 times/],
    [{ username: { a: '1' } }, /username must be a plain value/],
  ])('should throw AuditQueryError when given %j', (query, message) => {
    expect(() => parseAuditListQuery(query)).toThrow(AuditQueryError);
    expect(() => parseAuditListQuery(query)).toThrow(message);
  });

  it('should ignore empty fields and read zone-less times as UTC when parsing the page form', () => {
    const parsed = parseAuditPageQuery({ username: '', from: '2026-01-31T10:00', bucket: 'hour' });
    expect(parsed.filter).toEqual({ from: '2026-01-31T10:00:00.000Z' });
    expect(parsed.bucket).toBe('hour');
    expect(auditFilterToParams(parsed.filter).toString()).toBe('from=2026-01-31T10%3A00%3A00.000Z');
  });
});

describe(csvCell.name, () => {
  it.each([
    ['plain', 'plain'],
    ['a,b', '"a,b"'],
    ['say "hi"', '"say ""hi"""'],
    ['two\nlines', '"two\nlines"'],
    ['=1+1', "'=1+1"],
    ['+1', "'+1"],
    ['-1', "'-1"],
    ['@SUM(A1)', "'@SUM(A1)"],
    ['=HYPERLINK("x")', `"'=HYPERLINK(""x"")"`],
    [null, ''],
    [12, '12'],
    [['a', 'b'], '"[""a"",""b""]"'],
  ])('should write %j as %s', (value, cell) => {
    expect(csvCell(value)).toBe(cell);
  });
});
