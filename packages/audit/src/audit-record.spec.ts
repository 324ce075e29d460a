import { describe, expect, it } from '@jest/globals';
import type { DuoAuthContext } from '@duo-nest/core';
import type { AuditEventInput } from './audit-events.js';
import {
  boundText,
  buildAuditRecord,
  isAuditRecord,
  sanitizeDetail,
  toAuditTimestamp,
} from './audit-record.js';

const context = (extra: Record<string, unknown> = {}): DuoAuthContext => ({
  txid: 'tx-1',
  timestamp: 1,
  user: { name: 'alice', groups: ['admins'] },
  application: { name: 'app' },
  factor: 'duo_push',
  event_type: 'authentication',
  result: 'success',
  reason: 'user_approved',
  auth_device: { ip: '10.0.0.1', name: 'phone', location: { city: 'Oslo', country: 'Norway' } },
  access_device: { ip: '203.0.113.4', hostname: 'laptop' },
  ...extra,
});

describe('buildAuditRecord', () => {
  it('should derive the Duo columns from auth_context when one is given', () => {
    const r = buildAuditRecord(
      {
        type: 'mfa_succeeded',
        outcome: 'success',
        authContext: context(),
        authResult: { result: 'allow', status: 'allow' },
      },
      { instanceId: 'a-1', occurredAt: new Date(Date.UTC(2026, 0, 2, 3, 4, 5, 6)) },
    );
    expect(r).toMatchObject({
      username: 'alice',
      txid: 'tx-1',
      factor: 'duo_push',
      duo_result: 'allow',
      duo_status: 'allow',
      duo_reason: 'user_approved',
      auth_device_ip: '10.0.0.1',
      auth_device_name: 'phone',
      auth_device_location: 'Oslo, Norway',
      access_device_ip: '203.0.113.4',
      application: 'app',
      groups: '["admins"]',
      instance_id: 'a-1',
      occurred_at: '2026-01-02T03:04:05.006Z',
    });
    expect(r.id).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('should prefer the explicit username over the one in auth_context when both are given', () => {
    expect(
      buildAuditRecord({
        type: 'mfa_succeeded',
        outcome: 'success',
        username: 'bob',
        authContext: context(),
      }).username,
    ).toBe('bob');
  });

  it('should drop auth_context keys that are not allow-listed when the context carries extras', () => {
    const r = buildAuditRecord({
      type: 'mfa_succeeded',
      outcome: 'success',
      authContext: context({
        id_token: 'SECRET',
        access_device: { ip: '1.2.3.4', session: 'SECRET', os: 'Linux' },
      }),
    });
    const stored = JSON.parse(r.auth_context ?? '{}') as Record<string, unknown>;
    expect(JSON.stringify(stored)).not.toContain('SECRET');
    expect(stored.access_device).toEqual({ ip: '1.2.3.4', os: 'Linux' });
    expect(Object.keys(stored).sort()).toEqual(
      [
        'application',
        'auth_device',
        'access_device',
        'event_type',
        'factor',
        'reason',
        'result',
        'timestamp',
        'txid',
        'user',
      ].sort(),
    );
  });

  it('should ignore unknown top-level input keys when a caller passes a token by mistake', () => {
    const input = {
      type: 'mfa_failed',
      outcome: 'failure',
      reason: 'invalid_grant',
      duo_code: 'SECRET',
      access_token: 'SECRET',
    };
    const r = buildAuditRecord(input as unknown as AuditEventInput);
    expect(JSON.stringify(r)).not.toContain('SECRET');
    expect(r.reason).toBe('invalid_grant');
  });

  it('should encode control characters and bound the user agent when the header is hostile', () => {
    const r = buildAuditRecord({
      type: 'mfa_started',
      outcome: 'info',
      userAgent: `evil\r\nX-Injected: 1${'a'.repeat(2000)}`,
      username: 'al\u0000ice\u001b[31m',
    });
    expect(r.user_agent).toHaveLength(512);
    expect(r.user_agent).not.toMatch(/[\r\n]/);
    expect(r.user_agent?.startsWith('evil\\u000d\\u000aX-Injected')).toBe(true);
    expect(r.username).toBe('al\\u0000ice\\u001b[31m');
  });

  it('should turn a free-text reason into a bounded code when the reason is not a code', () => {
    expect(
      buildAuditRecord({ type: 'mfa_failed', outcome: 'failure', reason: 'Bad <b>thing</b>' })
        .reason,
    ).toBe('bad__b_thing__b_');
  });

  it('should throw when the type or outcome is not in the catalogue', () => {
    expect(() =>
      buildAuditRecord({ type: 'mfa_whatever', outcome: 'success' } as unknown as AuditEventInput),
    ).toThrow(TypeError);
    expect(() =>
      buildAuditRecord({ type: 'mfa_started', outcome: 'ok' } as unknown as AuditEventInput),
    ).toThrow(TypeError);
    expect(() =>
      buildAuditRecord({ type: 'mfa_started', outcome: 'info' }, { id: 'not-a-uuid' }),
    ).toThrow(TypeError);
  });

  it('should keep the given id and produce a record the spool accepts back', () => {
    const id = '6f1c2a7e-1d2b-4c3d-8e9f-0a1b2c3d4e5f';
    const r = buildAuditRecord(
      { type: 'session_created', outcome: 'success', username: 'z' },
      { id },
    );
    expect(r.id).toBe(id);
    expect(isAuditRecord(JSON.parse(JSON.stringify(r)))).toBe(true);
    expect(isAuditRecord({ ...r, type: 'nope' })).toBe(false);
    expect(isAuditRecord({ ...r, username: 5 })).toBe(false);
  });
});

describe('sanitizeDetail', () => {
  it('should drop secret-looking keys and redact token-looking values when details are recorded', () => {
    const d = sanitizeDetail(
      {
        state: 'S',
        nonce: 'N',
        duo_code: 'C',
        client_secret: 'x',
        sessionId: 'x',
        field: 'returnTo',
        len: 42,
        jwt_like: 'x',
        value: 'eyJhbGciOiJIUzUxMiJ9.eyJzdWIiOiJ4In0.sig',
        'bad key': 'x',
      },
      '/result\n',
    );
    expect(d).toEqual({
      field: 'returnTo',
      len: 42,
      value: '[redacted]',
      return_to: '/result\\u000a',
    });
  });

  it('should return null when nothing is left', () => {
    expect(sanitizeDetail({ token: 'x' })).toBeNull();
  });
});

describe('timestamps and text bounds', () => {
  it('should store fixed-width UTC ISO strings that sort like the instants when dates differ', () => {
    const dates = [
      new Date('2026-03-01T00:00:00+02:00'),
      new Date(Date.UTC(2025, 11, 31, 23, 59, 59, 999)),
      new Date(0),
    ];
    const stored = dates.map(toAuditTimestamp);
    expect(stored.every((s) => s.length === 24 && s.endsWith('Z'))).toBe(true);
    expect([...stored].sort()).toEqual(
      [...dates].sort((a, b) => a.getTime() - b.getTime()).map(toAuditTimestamp),
    );
    expect(() => toAuditTimestamp('garbage')).toThrow(TypeError);
  });

  it('should not split a surrogate pair when truncating', () => {
    expect(boundText('😀😀😀', 2)).toBe('😀😀');
  });
});
