import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { Redis } from 'ioredis';
import { startSimulator, type RunningSimulator } from '@duo-nest/simulator';
import { Browser, location } from '../../support/app-harness.js';
import {
  bootTestApp,
  formToken,
  postForm,
  simulatorOptions,
  throughDuo,
  type TestApp,
} from '../boot.js';
import { DuoAloneAppModule } from '../duo-alone/app.module.js';
import { JSON_ACCEPT } from '../../support/duo-flow.js';

// Rotating the session secret (sessionSecretPrevious): the session and binding cookies, the CSRF
// token and the store records signed with the old secret still verify under the new one, which
// alone signs. Two app instances share Redis: "before" runs the old secret, "after" the new one.
const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
const OLD = 'the-old-session-secret-0123456789abcdefghij';
const NEW = 'the-new-session-secret-0123456789abcdefghij';

let sim: RunningSimulator;
let redis: Redis;
const prefix = `test-rotation-${randomBytes(6).toString('hex')}:`;
const apps: TestApp[] = [];

async function boot(
  sessionSecret: string,
  sessionSecretPrevious?: string,
  callbackAt?: TestApp,
): Promise<TestApp> {
  const app = await bootTestApp((url, onEvent) =>
    DuoAloneAppModule.register({
      // callbackAt: Duo sends the browser back to that instance (one redirect URI for both).
      ...simulatorOptions(sim, callbackAt?.url ?? url),
      sessionSecret,
      ...(sessionSecretPrevious ? { sessionSecretPrevious } : {}),
      redis,
      redisKeyPrefix: prefix,
      onEvent,
    }),
  );
  apps.push(app);
  return app;
}

beforeAll(async () => {
  sim = await startSimulator({ port: 0, auto: 'allow' });
  redis = new Redis(REDIS_URL);
});
afterAll(async () => {
  await Promise.all(apps.map((a) => a.close()));
  const keys = await redis.keys(`${prefix}*`);
  if (keys.length > 0) {
    await redis.del(...keys);
  }
  redis.disconnect();
  await sim?.close();
});

describe('sessionSecretPrevious: a rotation signs nobody out', () => {
  it('should keep the session cookie, the binding cookie and the CSRF token of the old secret valid', async () => {
    const before = await boot(OLD);
    const after = await boot(NEW, OLD);
    const without = await boot(NEW);
    const beforeToAfter = await boot(OLD, undefined, after);

    // Signed on under the old secret: a session cookie signed with it.
    const browser = new Browser();
    const start = await postForm(browser, `${before.url}/login`, { username: 'alice' });
    expect(start.status).toBe(303);
    expect((await browser.fetch(await throughDuo(browser, location(start)))).status).toBe(303);
    expect((await browser.fetch(`${after.url}/me`, { headers: JSON_ACCEPT })).status).toBe(200);
    // Without the previous secret the same cookie is forged: the rotation would sign alice out.
    expect((await browser.fetch(`${without.url}/me`, { headers: JSON_ACCEPT })).status).toBe(401);

    // A sign-on started before the rotation (binding cookie, pending login) ends after it.
    const midway = new Browser();
    const begun = await postForm(midway, `${beforeToAfter.url}/login`, { username: 'bob' });
    const callback = await throughDuo(midway, location(begun));
    expect(new URL(callback).origin).toBe(after.url);
    const done = await midway.fetch(callback);
    expect(done.status).toBe(303);
    expect((await midway.fetch(`${after.url}/me`, { headers: JSON_ACCEPT })).status).toBe(200);

    // A form opened before the rotation (its token made with the old secret) still posts.
    const form = new Browser();
    const oldToken = await formToken(form, `${before.url}/login`);
    const post = (app: TestApp) =>
      form.fetch(`${app.url}/login`, {
        method: 'POST',
        body: new URLSearchParams({ username: 'carol', _csrf: oldToken }),
        headers: { 'content-type': 'application/x-www-form-urlencoded', ...JSON_ACCEPT },
      });
    expect((await post(without)).status).toBe(403);
    expect((await post(after)).status).toBe(303);
  });
});
