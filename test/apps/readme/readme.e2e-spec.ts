import { afterAll, beforeAll, expect, it } from '@jest/globals';
import { Controller, Get, Module, type DynamicModule } from '@nestjs/common';
import { CurrentMfa, type MfaSession } from '@duo-nest/core';
import { startSimulator, type RunningSimulator } from '@duo-nest/simulator';
import { Browser, location } from '../../support/app-harness.js';
import { bootTestApp, postForm, throughDuo, type TestApp } from '../boot.js';
import { AppModule } from './app.module.js';

// The README snippet boots and signs on: password, Duo, then a route that needs MFA.
let sim: RunningSimulator;
let app: TestApp;
const saved = { ...process.env };

@Controller()
class ProbeController {
  @Get('me')
  me(@CurrentMfa() session: MfaSession) {
    return { username: session.username };
  }
}

@Module({ imports: [AppModule], controllers: [ProbeController] })
class ReadmeProbeModule {}

beforeAll(async () => {
  sim = await startSimulator({ port: 0, auto: 'allow' });
  app = await bootTestApp((url): DynamicModule => {
    Object.assign(process.env, {
      DUO_CLIENT_ID: sim.clientId,
      DUO_CLIENT_SECRET: sim.clientSecret,
      DUO_API_HOST: sim.url,
      DUO_REDIRECT_URI: `${url}/auth/duo/callback`,
      SESSION_SECRET: 'readme-session-secret-0123456789abcdefghij',
    });
    return { module: ReadmeProbeModule };
  });
});
afterAll(async () => {
  process.env = saved;
  await app?.close();
  await sim?.close();
});

it('should sign on through the README snippet: password, Duo, then an MFA-only route', async () => {
  const browser = new Browser();
  expect(
    (await browser.fetch(`${app.url}/me`, { headers: { accept: 'application/json' } })).status,
  ).toBe(401);
  const start = await postForm(browser, `${app.url}/login`, {
    username: 'alice',
    password: 'correct horse battery',
  });
  expect(start.status).toBe(303);
  const done = await browser.fetch(await throughDuo(browser, location(start)));
  expect(done.status).toBe(303);
  const me = await browser.fetch(`${app.url}/me`, { headers: { accept: 'application/json' } });
  expect(me.status).toBe(200);
  expect(await me.json()).toEqual({ username: 'alice' });
});
