import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import {
  Controller,
  Get,
  Header,
  Module,
  Post,
  UseGuards,
  type DynamicModule,
} from '@nestjs/common';
import { APP_GUARD } from '@nestjs/core';
import type { NestExpressApplication } from '@nestjs/platform-express';
import { Test } from '@nestjs/testing';
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import request from 'supertest';
import {
  CurrentMfa,
  DuoFormFields,
  DuoModule,
  DuoStartGuard,
  MfaGuard,
  RequireDuoGroups,
  RequireMfa,
  SkipMfa,
  type DuoFormFieldsValue,
  type DuoModuleOptions,
  type MfaSession,
} from '@duo-nest/core';
import {
  DuoSignInError,
  duoTestOptions,
  mfaSession,
  signInWithDuo,
  startDuoSimulator,
  type DuoTestSimulator,
} from '@duo-nest/testing';

// @duo-nest/testing against a small app of its own (the username form, DuoStartGuard, the module's
// callback, an MFA route, a step-up route and a Duo-group route) and the real simulator over HTTP.
const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

@Controller()
class KitController {
  @SkipMfa()
  @Get('login')
  @Header('content-type', 'text/html; charset=utf-8')
  form(@DuoFormFields() fields: DuoFormFieldsValue): string {
    return `<form method="post" action="/login">${fields.html}<input name="username"><button>Sign on</button></form>`;
  }

  @SkipMfa()
  @Post('login')
  @UseGuards(DuoStartGuard)
  login(): void {}

  @Get('me')
  me(@CurrentMfa() s: MfaSession) {
    return { username: s.username, mfa: s.mfa, groups: s.groups, factor: s.factor };
  }

  @Get('fresh')
  @RequireMfa({ maxAgeMs: 60_000 })
  fresh() {
    return { fresh: true };
  }

  @Get('admins')
  @RequireDuoGroups('admins')
  admins() {
    return { admin: true };
  }
}

@Module({})
class KitAppModule {
  static register(options: DuoModuleOptions): DynamicModule {
    return {
      module: KitAppModule,
      imports: [DuoModule.forRoot(options)],
      controllers: [KitController],
      providers: [{ provide: APP_GUARD, useExisting: MfaGuard }],
    };
  }
}

/** The supertest way: compiled and initialised, not listening. */
async function createApp(options: DuoModuleOptions): Promise<NestExpressApplication> {
  const moduleRef = await Test.createTestingModule({
    imports: [KitAppModule.register(options)],
  }).compile();
  const app = moduleRef.createNestApplication<NestExpressApplication>({ logger: false });
  await app.init();
  return app;
}

const json = { accept: 'application/json' };
let sim: DuoTestSimulator;
let app: NestExpressApplication;

beforeAll(async () => {
  sim = await startDuoSimulator({
    users: [
      { username: 'alice', groups: ['admins', 'staff'] },
      { username: 'carol', groups: ['staff'], factor: 'webauthn' },
      'dave',
      'erin',
      'frank',
      'gina',
    ],
    bypass: ['svc-backup'],
    locked: ['mallory'],
    newUserPolicy: 'deny',
  });
  app = await createApp(duoTestOptions(sim));
});
afterAll(async () => {
  await app?.close();
  await sim?.close();
});

describe('signInWithDuo: the real flow through the simulator', () => {
  it("should sign on through the app's form, Duo's prompt and the callback, and give cookies for supertest", async () => {
    const prompts = sim.stats().prompt;
    const signIn = await signInWithDuo(app, 'alice', { returnTo: '/me' });
    expect(signIn.location).toBe('/me');
    expect(signIn.cookies.some((c) => c.startsWith('duo_session='))).toBe(true);
    expect(signIn.cookieHeader).toBe(signIn.cookies.join('; '));
    const me = await request(app.getHttpServer())
      .get('/me')
      .set(json)
      .set('Cookie', signIn.cookies);
    expect(me.status).toBe(200);
    expect(me.body).toEqual({
      username: 'alice',
      mfa: true,
      groups: ['admins', 'staff'],
      factor: 'duo_push',
    });
    // Duo's prompt was really answered, and Duo logged the approval.
    expect(sim.stats().prompt).toBe(prompts + 1);
    expect(sim.authLog().at(-1)).toMatchObject({
      result: 'success',
      reason: 'user_approved',
      user: { name: 'alice' },
    });
    // Without the cookies, the same route refuses.
    expect((await request(app.getHttpServer()).get('/me').set(json)).status).toBe(401);
  });

  it("should approve with the user's factor from the directory, or the one asked for", async () => {
    const carol = await signInWithDuo(app, 'carol');
    const me = await request(app.getHttpServer()).get('/me').set(json).set('Cookie', carol.cookies);
    expect(me.body).toMatchObject({ username: 'carol', factor: 'WebAuthn Security Key' });
    const dave = await signInWithDuo(app, 'dave', { factor: 'phone_call' });
    const meDave = await request(app.getHttpServer())
      .get('/me')
      .set(json)
      .set('Cookie', dave.cookies);
    expect(meDave.body).toMatchObject({ username: 'dave', factor: 'phone_call', groups: [] });
  });

  it('should let a bypass user through without the prompt, and stop a locked user at Duo', async () => {
    const prompts = sim.stats().prompt;
    const bypass = await signInWithDuo(app, 'svc-backup');
    expect(
      (await request(app.getHttpServer()).get('/me').set(json).set('Cookie', bypass.cookies))
        .status,
    ).toBe(200);
    expect(sim.authLog().at(-1)).toMatchObject({ result: 'success', reason: 'bypass_user' });
    const locked = await signInWithDuo(app, 'mallory').catch((e: unknown) => e);
    expect(locked).toBeInstanceOf(DuoSignInError);
    expect(locked).toMatchObject({ stage: 'duo', reason: 'locked_out' });
    // Not in the directory, and the policy is deny.
    await expect(signInWithDuo(app, 'nobody')).rejects.toMatchObject({
      stage: 'duo',
      reason: 'deny_unenrolled_user',
    });
    expect(sim.stats().prompt).toBe(prompts);
  });

  it('should work against a listening app, by its http.Server or its URL, with fetch', async () => {
    const listening = await createApp(duoTestOptions(sim));
    await listening.listen(0, '127.0.0.1');
    try {
      const url = await listening.getUrl();
      for (const [server, user] of [
        [listening.getHttpServer(), 'erin'],
        [url.replace('[::1]', '127.0.0.1'), 'frank'],
      ] as const) {
        const signIn = await signInWithDuo(server, user);
        const me = await fetch(`${url}/me`, { headers: { ...json, cookie: signIn.cookieHeader } });
        expect(me.status).toBe(200);
        expect(await me.json()).toMatchObject({ username: user, mfa: true });
      }
    } finally {
      await listening.close();
    }
  });

  it('should stop at the form when its page has no CSRF field (here: no such page)', async () => {
    await expect(signInWithDuo(app, 'gina', { formPath: '/no-such-form' })).rejects.toMatchObject({
      stage: 'form',
      status: 404,
    });
  });
});

describe('scripted Duo outcomes and faults', () => {
  it("should end at Duo on a scripted deny, fraud or timeout, with Duo's reason and no session", async () => {
    for (const [outcome, reason] of [
      ['deny', 'user_mistake'],
      ['fraud', 'user_marked_fraud'],
      ['timeout', 'no_response'],
    ] as const) {
      sim.nextOutcome(outcome, 'gina');
      const error = (await signInWithDuo(app, 'gina').catch((e: unknown) => e)) as DuoSignInError;
      expect(error).toBeInstanceOf(DuoSignInError);
      expect([error.stage, error.reason]).toEqual(['duo', reason]);
      expect(error.cookies.some((c) => c.startsWith('duo_session='))).toBe(false);
    }
    // One-shot: the next sign-on of the same user goes through.
    await expect(signInWithDuo(app, 'gina')).resolves.toMatchObject({ location: '/' });
  });

  it("should bring Duo's error redirect back to the callback, which refuses it", async () => {
    const other = await createApp(duoTestOptions(sim));
    try {
      sim.nextOutcome('error_redirect', 'alice');
      const error = (await signInWithDuo(other, 'alice').catch(
        (e: unknown) => e,
      )) as DuoSignInError;
      expect(error).toBeInstanceOf(DuoSignInError);
      expect(error.stage).toBe('callback');
      expect(error.status).toBeGreaterThanOrEqual(400);
      expect(error.status).toBeLessThan(500);
    } finally {
      await other.close();
    }
  });

  it('should refuse the start with 503 while Duo is down (failmode closed), and recover', async () => {
    const other = await createApp(duoTestOptions(sim));
    try {
      sim.duoDown();
      await expect(signInWithDuo(other, 'bob')).rejects.toMatchObject({
        stage: 'start',
        status: 503,
        reason: 'unavailable',
      });
      sim.healthFault('timeout', { once: true });
      await expect(signInWithDuo(other, 'bob')).rejects.toMatchObject({ stage: 'start' });
      sim.clearFaults();
      await expect(signInWithDuo(other, 'alice')).resolves.toMatchObject({ location: '/' });
    } finally {
      sim.clearFaults();
      await other.close();
    }
  });

  it('should open a session without MFA when Duo is down and failmode is open: the kit says so', async () => {
    const open = await createApp(duoTestOptions(sim, { failmode: 'open' }));
    try {
      sim.duoDown();
      const error = (await signInWithDuo(open, 'alice').catch((e: unknown) => e)) as DuoSignInError;
      expect(error).toMatchObject({ stage: 'start', reason: 'no_duo_redirect' });
      const me = await request(open.getHttpServer())
        .get('/me')
        .set(json)
        .set('Cookie', error.cookies);
      expect(me.status).toBe(403);
      expect(me.body).toMatchObject({ error: 'mfa_not_performed' });
    } finally {
      sim.clearFaults();
      await open.close();
    }
  });
});

describe('mfaSession: a real session through the configured store', () => {
  /** Status and body of GET path with these cookies. */
  async function get(target: NestExpressApplication, path: string, cookie: string) {
    const res = await request(target.getHttpServer()).get(path).set(json).set('Cookie', [cookie]);
    return [res.status, res.body as Record<string, unknown>] as const;
  }

  it('should open a session in the memory store that the guard accepts, with groups and age', async () => {
    const admin = await mfaSession(app, { username: 'alice', groups: ['admins'] });
    expect(await get(app, '/me', admin.cookie)).toEqual([
      200,
      { username: 'alice', mfa: true, groups: ['admins'], factor: 'duo_push' },
    ]);
    expect((await get(app, '/admins', admin.cookie))[0]).toBe(200);
    expect((await get(app, '/fresh', admin.cookie))[0]).toBe(200);

    const staff = await mfaSession(app, { username: 'bob', groups: ['staff'] });
    expect(await get(app, '/admins', staff.cookie)).toEqual([
      403,
      expect.objectContaining({ error: 'forbidden' }),
    ]);
    const old = await mfaSession(app, { username: 'bob', mfaAgeMs: 10 * 60_000 });
    expect((await get(app, '/me', old.cookie))[0]).toBe(200);
    // A step-up route wants a fresh sign-on: 401, as for no session, with its own code.
    expect(await get(app, '/fresh', old.cookie)).toEqual([
      401,
      expect.objectContaining({ error: 'mfa_stale' }),
    ]);
    // A fail-open session while Duo is still down: refused where MFA is needed. Once Duo answers
    // again, the next request ends it and sends the user through MFA (reverifyWhenDuoIsBack).
    const failOpen = await mfaSession(app, { username: 'bob', failOpen: true });
    sim.duoDown();
    try {
      expect(await get(app, '/me', failOpen.cookie)).toEqual([
        403,
        expect.objectContaining({ error: 'mfa_not_performed' }),
      ]);
    } finally {
      sim.clearFaults();
    }
    expect(await get(app, '/me', failOpen.cookie)).toEqual([
      401,
      expect.objectContaining({ error: 'session_expired' }),
    ]);
  });

  it('should forge nothing: a changed cookie, another secret or a destroyed session is refused', async () => {
    const { cookie, destroy, session } = await mfaSession(app, { username: 'alice' });
    // Another id with the same signature, and the right id with a changed signature.
    const [name, value] = cookie.split('=');
    const mac = value.slice(value.lastIndexOf('.'));
    const otherId = `${session.id.slice(0, -1)}${session.id.endsWith('A') ? 'B' : 'A'}`;
    expect((await get(app, '/me', `${name}=${otherId}${mac}`))[0]).toBe(401);
    expect(
      (await get(app, '/me', `${cookie.slice(0, -1)}${cookie.endsWith('A') ? 'B' : 'A'}`))[0],
    ).toBe(401);
    // Another app (its own store and secret) does not know the session.
    const other = await createApp(
      duoTestOptions(sim, { sessionSecret: randomUUID() + randomUUID() }),
    );
    try {
      expect((await get(other, '/me', cookie))[0]).toBe(401);
    } finally {
      await other.close();
    }
    expect((await get(app, '/me', cookie))[0]).toBe(200);
    await destroy();
    expect((await get(app, '/me', cookie))[0]).toBe(401);
  });

  it('should write through a Redis store: sealed record in Redis, accepted by a second instance', async () => {
    const redis = new Redis(REDIS_URL, { maxRetriesPerRequest: 1 });
    const prefix = `duo-kit-test:${randomUUID()}:`;
    const options = duoTestOptions(sim, { redis, redisKeyPrefix: prefix });
    const [one, two] = [await createApp(options), await createApp(options)];
    try {
      const { cookie, session, destroy } = await mfaSession(one, {
        username: 'alice',
        groups: ['admins'],
      });
      expect(await redis.keys(`${prefix}sess:*`)).toEqual(
        expect.arrayContaining([expect.stringContaining(`${prefix}sess:`)]),
      );
      // The same session on the other instance, through Redis.
      expect(await get(two, '/admins', cookie)).toEqual([200, { admin: true }]);
      expect(session.username).toBe('alice');
      // A record edited in Redis (the username in its core field) fails its seal: absent.
      const records: string[] = [];
      for (const key of await redis.keys(`${prefix}sess:*`)) {
        const core = (await redis.type(key)) === 'hash' ? await redis.hget(key, 'c') : null;
        if (core?.includes('alice')) {
          await redis.hset(key, 'c', core.replace('alice', 'alicf'));
          records.push(key);
        }
      }
      expect(records).toHaveLength(1);
      expect((await get(two, '/me', cookie))[0]).toBe(401);
      await destroy();
    } finally {
      await Promise.all([one.close(), two.close()]);
      const left = await redis.keys(`${prefix}*`);
      if (left.length > 0) {
        await redis.del(...left);
      }
      await redis.quit();
    }
  });

  it('should say so when the app has no DuoModule', async () => {
    const moduleRef = await Test.createTestingModule({}).compile();
    await expect(mfaSession(moduleRef, { username: 'alice' })).rejects.toThrow(/DuoModule/);
  });
});
