import type { DynamicModule, LoggerService } from '@nestjs/common';
import type { NestExpressApplication } from '@nestjs/platform-express';
import { Test, type TestingModuleBuilder } from '@nestjs/testing';
import type { DuoAuthEvent, DuoModuleOptions } from '@duo-nest/core';
import type { RunningSimulator } from '@duo-nest/simulator';
import { Browser, freePort } from '../support/app-harness.js';

/** One of the minimal test apps, listening on 127.0.0.1. */
export interface TestApp {
  url: string;
  app: NestExpressApplication;
  /** Every auth event DuoModule reported (its `onEvent`). */
  events: DuoAuthEvent[];
  /** Every line Nest logged at error or warn level (none is expected in a clean flow). */
  problems: string[];
  /** Method, path and status of each response as it was finished (one entry per response). */
  answered: string[];
  close(): Promise<void>;
}

/** DuoModule options that point at a running simulator (http on loopback, cookies without Secure). */
export function simulatorOptions(
  sim: Pick<RunningSimulator, 'clientId' | 'clientSecret' | 'url'>,
  appUrl: string,
  callbackPath = '/auth/duo/callback',
): DuoModuleOptions {
  return {
    clientId: sim.clientId,
    clientSecret: sim.clientSecret,
    apiHost: sim.url,
    redirectUri: `${appUrl}${callbackPath}`,
    allowInsecureHttp: true,
    secureCookies: false,
    sessionSecret: 'test-apps-session-secret-0123456789abcdefghij',
    // The specs count Duo calls exactly: no background health probe between their readings.
    healthProbe: false,
  };
}

/**
 * Boots a test app: `build(url, onEvent)` returns the app's root module for its own URL (the redirect
 * URI names the port). `customize` may override providers or guards, as a user's test would;
 * `prepare` sees the app before it listens (global interceptors, say).
 */
export async function bootTestApp(
  build: (url: string, onEvent: (event: DuoAuthEvent) => void) => DynamicModule,
  customize: (builder: TestingModuleBuilder) => TestingModuleBuilder = (b) => b,
  prepare: (app: NestExpressApplication) => void = () => undefined,
): Promise<TestApp> {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const events: DuoAuthEvent[] = [];
  const problems: string[] = [];
  const answered: string[] = [];
  const moduleRef = await customize(
    Test.createTestingModule({ imports: [build(url, (e) => void events.push(e))] }),
  ).compile();
  const app = moduleRef.createNestApplication<NestExpressApplication>();
  const record =
    (level: string) =>
    (message: unknown, ...rest: unknown[]) =>
      void problems.push(`${level}: ${String(message)} ${rest.map(String).join(' ')}`);
  const logger: LoggerService = {
    log: () => undefined,
    error: record('error'),
    warn: record('warn'),
    fatal: record('fatal'),
  };
  app.useLogger(logger);
  app.use(
    (
      req: { method: string; path: string },
      res: NodeJS.EventEmitter & { statusCode: number },
      next: () => void,
    ) => {
      res.on('finish', () => answered.push(`${req.method} ${req.path} ${res.statusCode}`));
      next();
    },
  );
  prepare(app);
  await app.listen(port, '127.0.0.1');
  return { url, app, events, problems, answered, close: () => app.close() };
}

/**
 * The form fields of the page at `url` (a GET of the same path as the form's POST, as each test
 * app serves it with `@DuoFormFields()`): its CSRF token, read from the X-CSRF-Token header that
 * the decorator sets (the browser keeps the cookie).
 */
export async function formToken(browser: Browser, url: string): Promise<string> {
  const page = await browser.fetch(url, { headers: { accept: 'text/html' } });
  await page.arrayBuffer();
  const token = page.headers.get('x-csrf-token');
  if (!token) {
    throw new Error(`GET ${url} answered ${page.status} without an X-CSRF-Token header`);
  }
  return token;
}

/** POSTs a form as a browser does: with the `_csrf` field of the form page at the same URL. */
export async function postForm(
  browser: Browser,
  url: string,
  form: Record<string, string>,
  headers: Record<string, string> = {},
): Promise<Response> {
  const _csrf = await formToken(browser, url);
  return browser.fetch(url, {
    method: 'POST',
    body: new URLSearchParams({ ...form, _csrf }),
    headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers },
  });
}

/** POSTs a form without any CSRF token (what a cross-site page, or a bare client, sends). */
export function postFormWithoutToken(
  browser: Browser,
  url: string,
  form: Record<string, string>,
  headers: Record<string, string> = {},
): Promise<Response> {
  return browser.fetch(url, {
    method: 'POST',
    body: new URLSearchParams(form),
    headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers },
  });
}

/** Follows Duo's authorize URL (the simulator in auto mode answers at once): the callback URL. */
export async function throughDuo(browser: Browser, authorizeUrl: string): Promise<string> {
  const duo = await browser.fetch(authorizeUrl);
  if (duo.status !== 302) {
    throw new Error(`Duo's authorize answered ${duo.status}`);
  }
  return duo.headers.get('location') ?? '';
}
