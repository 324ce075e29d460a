import 'reflect-metadata';
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { INestApplication } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import request from 'supertest';
import {
  DuoSignInError,
  duoTestOptions,
  mfaSession,
  signInWithDuo,
  startDuoSimulator,
  type DuoTestSimulator,
} from '@duo-nest/testing';
import { AppModule } from '../src/app.module.js';

// The consumer's own e2e tests: the app as built from the installed packages, the real simulator
// (in this process, over HTTP), sign-ons through the app's password form and Duo's prompt.
let sim: DuoTestSimulator;
let app: INestApplication;
const json = { accept: 'application/json' };

before(async () => {
  sim = await startDuoSimulator({
    users: [
      { username: 'alice', groups: ['admins', 'staff'] },
      { username: 'bob', groups: ['staff'], factor: 'duo_mobile_passcode' },
      'carol',
    ],
    locked: ['mallory'],
  });
  const moduleRef = await Test.createTestingModule({
    imports: [AppModule.register(duoTestOptions(sim))],
  }).compile();
  app = moduleRef.createNestApplication({ logger: false });
  await app.init();
});
after(async () => {
  await app.close();
  await sim.close();
});

/** Status and JSON body of a request with these cookies. */
async function call(
  method: 'get' | 'post',
  path: string,
  cookies: string[] = [],
): Promise<[number, unknown]> {
  const res = await request(app.getHttpServer())[method](path).set(json).set('Cookie', cookies);
  return [res.status, res.body as unknown];
}

describe('sign-on: password, then Duo', () => {
  it('refuses the protected routes without a session', async () => {
    for (const path of ['/profile', '/orders', '/admin']) {
      assert.equal((await call('get', path))[0], 401, path);
    }
  });

  it('signs alice on and opens every route to her', async () => {
    const { cookies, location } = await signInWithDuo(app, 'alice', {
      fields: { password: 'alice-password' },
      returnTo: '/profile',
    });
    assert.equal(location, '/profile');
    assert.deepEqual(await call('get', '/profile', cookies), [
      200,
      { username: 'alice', factor: 'duo_push' },
    ]);
    assert.equal((await call('get', '/orders', cookies))[0], 200);
    assert.deepEqual(await call('post', '/payments', cookies), [201, { paidBy: 'alice' }]);
    assert.deepEqual(await call('get', '/admin', cookies), [
      200,
      { admin: 'alice', groups: ['admins', 'staff'] },
    ]);
  });

  it('keeps bob (not in the admins Duo group) out of the admin route', async () => {
    const { cookies } = await signInWithDuo(app, 'bob', { fields: { password: 'bob-password' } });
    assert.deepEqual(await call('get', '/profile', cookies), [
      200,
      { username: 'bob', factor: 'duo_mobile_passcode' },
    ]);
    const [status, body] = await call('get', '/admin', cookies);
    assert.equal(status, 403);
    assert.equal((body as { error?: string }).error, 'forbidden');
  });

  it('stops a wrong password before Duo is asked', async () => {
    const before = sim.stats().authorize;
    const error = await signInWithDuo(app, 'carol', { fields: { password: 'wrong' } }).catch(
      (e: unknown) => e,
    );
    assert.ok(error instanceof DuoSignInError);
    assert.equal(error.stage, 'start');
    assert.equal(error.status, 401);
    assert.equal(sim.stats().authorize, before);
  });
});

describe('Duo says no', () => {
  it('opens no session when carol denies the push', async () => {
    sim.nextOutcome('deny', 'carol');
    const error = await signInWithDuo(app, 'carol', {
      fields: { password: 'carol-password' },
    }).catch((e: unknown) => e);
    assert.ok(error instanceof DuoSignInError);
    assert.deepEqual([error.stage, error.reason], ['duo', 'user_mistake']);
    assert.equal((await call('get', '/profile', error.cookies))[0], 401);
  });

  it('refuses a user Duo has locked out', async () => {
    const error = await signInWithDuo(app, 'mallory', {
      fields: { password: 'mallory-password' },
    }).catch((e: unknown) => e);
    assert.ok(error instanceof DuoSignInError);
    assert.deepEqual([error.stage, error.reason], ['duo', 'locked_out']);
  });

  it('refuses new sign-ons with 503 while Duo is down, then recovers', async () => {
    sim.duoDown();
    try {
      const error = await signInWithDuo(app, 'carol', {
        fields: { password: 'carol-password' },
      }).catch((e: unknown) => e);
      assert.ok(error instanceof DuoSignInError);
      assert.deepEqual([error.stage, error.status], ['start', 503]);
    } finally {
      sim.clearFaults();
    }
    const { cookies } = await signInWithDuo(app, 'carol', {
      fields: { password: 'carol-password' },
    });
    assert.equal((await call('get', '/orders', cookies))[0], 200);
  });
});

describe('controller tests with mfaSession (a real session in the app store)', () => {
  it('asks for a fresh MFA on the step-up route only', async () => {
    const { cookie } = await mfaSession(app, { username: 'alice', mfaAgeMs: 10 * 60_000 });
    assert.equal((await call('get', '/profile', [cookie]))[0], 200);
    const [status, body] = await call('post', '/payments', [cookie]);
    assert.equal(status, 401);
    assert.equal((body as { error?: string }).error, 'mfa_stale');
  });

  it('opens the Duo-group route by the session groups, and ends with the session', async () => {
    const admin = await mfaSession(app, { username: 'dave', groups: ['admins'] });
    assert.equal((await call('get', '/admin', [admin.cookie]))[0], 200);
    const staff = await mfaSession(app, { username: 'erin', groups: ['staff'] });
    assert.equal((await call('get', '/admin', [staff.cookie]))[0], 403);
    await admin.destroy();
    assert.equal((await call('get', '/admin', [admin.cookie]))[0], 401);
  });
});
