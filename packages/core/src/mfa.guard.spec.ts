import { describe, expect, it } from '@jest/globals';
import type { ExecutionContext } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import type { Request } from 'express';
import { RequireDuoGroups, RequireMfa } from './duo.decorators.js';
import type { DuoAuthEvent } from './duo-events.js';
import type { DuoFlowService } from './duo-flow.service.js';
import { DuoHttpException } from './duo-http.exception.js';
import type { NormalizedDuoModuleOptions } from './duo-module-options.js';
import type { DuoSessionService } from './duo-session.service.js';
import { MfaGuard } from './mfa.guard.js';
import type { MfaSession } from './stores/session-store.interface.js';

// MfaGuard's decisions on a session found in the store: the real guard, the real Reflector and
// decorators; the session lookup answers a given session and the flow records the audit events.

class Routes {
  plain() {}
  @RequireMfa()
  policy() {}
  @RequireMfa({ allowBypass: true })
  bypassOk() {}
  @RequireMfa({ factors: ['webauthn'] })
  webauthnOnly() {}
  @RequireMfa({ allowBypass: false })
  @RequireDuoGroups('admins')
  admin() {}
  @RequireDuoGroups('admins')
  groupsOnly() {}
}

const NOW_S = Math.floor(Date.now() / 1000);

function session(overrides: Partial<MfaSession> = {}): MfaSession {
  return {
    id: 'x'.repeat(43),
    username: 'alice',
    mfa: true,
    failOpen: false,
    factor: 'duo_push',
    authTime: NOW_S,
    groups: ['admins'],
    application: 'DIXXXXXXXXXXXXXXXXXX',
    duoResult: 'success',
    duoReason: 'user_approved',
    createdAt: Date.now(),
    lastSeenAt: Date.now(),
    idleExpiresAt: Date.now() + 60_000,
    absoluteExpiresAt: Date.now() + 60_000,
    data: {},
    ...overrides,
  };
}
const BYPASS = { factor: 'not_available', duoReason: 'bypass_user' } as const;

function guardFor(found: MfaSession, policy?: NormalizedDuoModuleOptions['policy']) {
  const events: DuoAuthEvent[] = [];
  const sessions = {
    lookup: () => Promise.resolve({ status: 'active', session: found }),
    // Item 3's check of fail-open sessions (none here is fail-open).
    endFailOpenIfDuoIsBack: () => Promise.resolve(false),
  } as unknown as DuoSessionService;
  const flow = {
    emit: (e: DuoAuthEvent) => {
      events.push(e);
      return Promise.resolve();
    },
  } as unknown as DuoFlowService;
  const guard = new MfaGuard(new Reflector(), sessions, flow);
  if (policy) {
    Object.defineProperty(guard, 'duoOptions', {
      value: { signOnPath: '/', policy },
    });
  }
  return { guard, events };
}

function contextFor(route: keyof Routes, req: Partial<Request> = {}): ExecutionContext {
  const request = { path: `/${route}`, originalUrl: `/${route}?x=1`, headers: {}, ...req };
  return {
    getHandler: () => Routes.prototype[route],
    getClass: () => Routes,
    switchToHttp: () => ({ getRequest: () => request }),
  } as unknown as ExecutionContext;
}

async function refusal(promise: Promise<boolean>) {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(DuoHttpException);
  return (err as DuoHttpException).getResponse();
}

describe('MfaGuard: factor and bypass policy', () => {
  it('should let a bypassed session through a plain MFA route by default (as before)', async () => {
    const { guard } = guardFor(session(BYPASS));

    expect(await guard.canActivate(contextFor('plain'))).toBe(true);
  });

  it('should refuse a bypassed session on a route with @RequireMfa(), audited with the reason', async () => {
    const { guard, events } = guardFor(session(BYPASS));

    const body = await refusal(guard.canActivate(contextFor('policy')));

    expect(body).toEqual({
      statusCode: 403,
      error: 'mfa_policy',
      reason: 'bypass_not_allowed',
      message: expect.stringContaining('bypass'),
      signOnUrl: '/?returnTo=%2Fpolicy%3Fx%3D1&reason=mfa_policy',
    });
    expect(events).toEqual([
      expect.objectContaining({
        type: 'access_denied',
        username: 'alice',
        reason: 'bypass_not_allowed',
        detail: { error: 'mfa_policy' },
        path: '/policy',
      }),
    ]);
  });

  it.each([
    ['reason bypass_user', { duoReason: 'bypass_user' }],
    ['factor not_available', { factor: 'not_available' }],
    ['reason allow_unenrolled_user', { duoReason: 'allow_unenrolled_user' }],
    ['reason allowed_by_policy', { duoReason: 'allowed_by_policy' }],
    ['no factor', { factor: undefined }],
    ['no Duo result', { duoResult: undefined }],
    ['a result other than success', { duoResult: 'denied' }],
  ])('should treat %s as a bypass', async (_name, overrides) => {
    const { guard } = guardFor(session(overrides));

    expect(await refusal(guard.canActivate(contextFor('policy')))).toMatchObject({
      reason: 'bypass_not_allowed',
    });
  });

  it('should let a bypassed session through where the route allows bypass', async () => {
    const { guard } = guardFor(session(BYPASS), { allowBypass: false });

    expect(await guard.canActivate(contextFor('bypassOk'))).toBe(true);
  });

  it('should refuse bypass on plain routes when the module default says so', async () => {
    const { guard, events } = guardFor(session(BYPASS), { allowBypass: false });

    expect(await refusal(guard.canActivate(contextFor('plain')))).toMatchObject({
      reason: 'bypass_not_allowed',
    });
    expect(events[0]).toMatchObject({ type: 'access_denied', reason: 'bypass_not_allowed' });
  });

  it('should refuse a factor the route does not list, and accept every WebAuthn spelling', async () => {
    const push = guardFor(session());
    expect(await refusal(push.guard.canActivate(contextFor('webauthnOnly')))).toMatchObject({
      error: 'mfa_policy',
      reason: 'factor_not_allowed',
    });
    expect(push.events[0]).toMatchObject({ reason: 'factor_not_allowed' });

    for (const factor of [
      'WebAuthn Chrome Touch ID',
      'WebAuthn Security Key',
      'webauthn_roaming',
    ]) {
      const { guard } = guardFor(session({ factor }));
      expect(await guard.canActivate(contextFor('webauthnOnly'))).toBe(true);
    }
  });

  it('should refuse a factor name Duo sent that is not a known one', async () => {
    for (const factor of ['Duo Push', 'webauthn', 'WebAuthn', 'WebAuthn <script>', 'sms']) {
      const { guard } = guardFor(session({ factor: factor === 'webauthn' ? 'WEBAUTHN' : factor }));
      expect(await refusal(guard.canActivate(contextFor('webauthnOnly')))).toMatchObject({
        reason: 'factor_unknown',
      });
    }
  });

  it('should apply the module default factors to plain routes, and let a route replace them', async () => {
    const { guard } = guardFor(session({ factor: 'phone_call' }), {
      factors: ['duo_push'],
      allowBypass: true,
    });

    expect(await refusal(guard.canActivate(contextFor('plain')))).toMatchObject({
      reason: 'factor_not_allowed',
    });
    const webauthn = guardFor(session({ factor: 'WebAuthn Security Key' }), {
      factors: ['duo_push'],
      allowBypass: true,
    });
    expect(await webauthn.guard.canActivate(contextFor('webauthnOnly'))).toBe(true);
  });

  it('should check bypass before groups on /admin-like routes', async () => {
    const { guard } = guardFor(session({ ...BYPASS, groups: ['admins'] }));

    expect(await refusal(guard.canActivate(contextFor('admin')))).toMatchObject({
      reason: 'bypass_not_allowed',
    });
  });

  it('should refuse unknown factor names and empty group lists when the decorators are applied', () => {
    expect(() => RequireMfa({ factors: ['webauth'] })).toThrow(TypeError);
    expect(() => RequireMfa({ factors: [] })).toThrow(TypeError);
    expect(() => RequireMfa({ allowBypass: 'no' as unknown as boolean })).toThrow(TypeError);
    expect(() => RequireDuoGroups()).toThrow(TypeError);
    expect(() => RequireDuoGroups('')).toThrow(TypeError);
  });
});

describe('MfaGuard: @RequireDuoGroups', () => {
  it.each([
    ['an empty group list', { groups: [] }],
    ['no group list at all (a custom store)', { groups: undefined as unknown as string[] }],
    ['only other groups', { groups: ['staff'] }],
  ])('should refuse a user with %s, audited as access_denied', async (_name, overrides) => {
    const { guard, events } = guardFor(session(overrides));

    expect(await refusal(guard.canActivate(contextFor('groupsOnly')))).toMatchObject({
      statusCode: 403,
      error: 'forbidden',
      // The refusal names the group the route's decorator asks for.
      message: 'This page needs membership in the Duo group admins',
      groups: ['admins'],
    });
    expect(events).toEqual([
      expect.objectContaining({
        type: 'access_denied',
        reason: 'forbidden',
        path: '/groupsOnly',
        detail: { requiredGroups: 'admins' },
      }),
    ]);
  });

  it('should let a member of a required group through', async () => {
    const { guard, events } = guardFor(session({ groups: ['staff', 'admins'] }));

    expect(await guard.canActivate(contextFor('groupsOnly'))).toBe(true);
    expect(events).toEqual([]);
  });
});
