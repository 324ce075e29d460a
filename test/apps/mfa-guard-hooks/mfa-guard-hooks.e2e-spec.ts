import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { startSimulator, type RunningSimulator } from '@duo-nest/simulator';
import { bootTestApp, simulatorOptions, type TestApp } from '../boot.js';
import { INTERNAL_KEY, MfaGuardHooksAppModule } from './app.module.js';
import { JSON_ACCEPT } from '../../support/duo-flow.js';

// MfaGuard's protected hooks: an app lets internal callers in by key and answers refusals its way.
let sim: RunningSimulator;
let app: TestApp;

beforeAll(async () => {
  sim = await startSimulator({ port: 0, auto: 'allow' });
  app = await bootTestApp((url, onEvent) =>
    MfaGuardHooksAppModule.register({ ...simulatorOptions(sim, url), onEvent }),
  );
});
afterAll(async () => {
  await app?.close();
  await sim?.close();
});

describe('a MfaGuard subclass with overridden hooks', () => {
  it('should let a caller with the service key in (shouldSkip)', async () => {
    const res = await fetch(`${app.url}/reports`, {
      headers: { ...JSON_ACCEPT, 'x-service-key': INTERNAL_KEY },
    });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ reports: 3 });
  });

  it("should refuse anyone else with the app's own exception (onDenied)", async () => {
    for (const headers of [JSON_ACCEPT, { ...JSON_ACCEPT, 'x-service-key': 'wrong' }]) {
      const res = await fetch(`${app.url}/reports`, { headers });
      expect(res.status).toBe(401);
      expect(await res.json()).toEqual({ reason: 'mfa_required', signOn: '/login' });
    }
  });
});
