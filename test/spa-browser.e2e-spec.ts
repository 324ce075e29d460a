import { readFileSync } from 'node:fs';
import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it, jest } from '@jest/globals';
import type { Browser, Page } from 'playwright-core';
import type { RunningSimulator } from '@duo-nest/simulator';
import { type RunningApp } from './support/app-harness.js';
import { startSimAndApp, type SimAndApp } from './support/sim-and-app.js';
import { launchChromium, screenshotter } from './support/browser.js';

// Item 1 of [reach] in Chromium: the README's front end (test/fixtures/spa: index.html + app.js)
// served on the app's origin by a front door that serves /app/ itself and passes everything else
// to the app, as a reverse proxy or CDN in front of a Nest API does.
const SPA = new URL('./fixtures/spa/', import.meta.url);
const FILES: Record<string, { type: string; body: Buffer }> = {
  '/app/': { type: 'text/html; charset=utf-8', body: readFileSync(new URL('index.html', SPA)) },
  '/app/app.js': { type: 'text/javascript', body: readFileSync(new URL('app.js', SPA)) },
};

let sim: RunningSimulator;
let app: RunningApp;
let booted: SimAndApp;
let frontDoor: Server;
let origin: string;
let backendPort = 0;
let browser: Browser;
const shot = screenshotter('spa');
jest.setTimeout(30_000);

beforeAll(async () => {
  frontDoor = createServer((req, res) => {
    const path = (req.url ?? '/').split('?', 1)[0];
    const file = FILES[path];
    if (req.method === 'GET' && file) {
      // The front end's own CSP: its script file only, API calls to this origin.
      res.writeHead(200, {
        'content-type': file.type,
        'content-security-policy': "default-src 'none'; script-src 'self'; connect-src 'self'",
        'cache-control': 'no-store',
      });
      res.end(file.body);
      return;
    }
    const upstream = request(
      {
        host: '127.0.0.1',
        port: backendPort,
        method: req.method,
        path: req.url,
        headers: req.headers,
      },
      (up) => {
        res.writeHead(up.statusCode ?? 502, up.headers);
        up.pipe(res);
      },
    );
    upstream.on('error', () => res.writeHead(502).end());
    req.pipe(upstream);
  });
  await new Promise<void>((resolve) => frontDoor.listen(0, '127.0.0.1', resolve));
  origin = `http://127.0.0.1:${(frontDoor.address() as AddressInfo).port}`;
  booted = await startSimAndApp({
    sim: { errorRedirectOnDeny: true, auto: undefined },
    env: {
      PUBLIC_URL: origin,
      DUO_REDIRECT_URI: `${origin}/auth/duo/callback`,
      DUO_FRONTEND_URL: `${origin}/app/`,
    },
  });
  ({ sim, app } = booted);
  backendPort = Number(new URL(app.url).port);
  browser = await launchChromium();
}, 30_000);

afterAll(async () => {
  await browser?.close();
  await booted?.close();
  frontDoor?.closeAllConnections();
  await new Promise<void>((resolve) => (frontDoor ? frontDoor.close(() => resolve()) : resolve()));
});

async function startFromFrontEnd(username: string): Promise<Page> {
  const page = await browser.newPage();
  await page.goto(`${origin}/app/`);
  await page.waitForSelector('body[data-ready="true"]');
  await expect(page.textContent('#session')).resolves.toBe('signed out (mfa_required)');
  await page.fill('#username', username);
  await Promise.all([page.waitForURL((u) => u.href.startsWith(sim.url)), page.click('#submit')]);
  return page;
}

describe('a single-page front end in Chromium', () => {
  it('should start with fetch, approve on Duo, land on /app/ and show the session', async () => {
    const page = await startFromFrontEnd('alice');
    expect(page.url().startsWith(`${sim.url}/oauth/v1/authorize`)).toBe(true);
    await page.selectOption('select[name=factor]', { index: 1 });
    await Promise.all([page.waitForURL(`${origin}/app/`), page.click('#approve')]);
    await page.waitForSelector('body[data-ready="true"]');
    await expect(page.textContent('#session')).resolves.toBe('alice (mfa: true)');
    await expect(page.textContent('#error')).resolves.toBe('');
    await shot(page, 'signed-in');
    await page.close();
  });

  it('should land on /app/?error=callback_error when the user denies, with nothing else in the URL', async () => {
    const page = await startFromFrontEnd('bob');
    await Promise.all([
      page.waitForURL((u) => u.href.startsWith(`${origin}/app/`)),
      page.click('#deny'),
    ]);
    expect(page.url()).toBe(`${origin}/app/?error=callback_error`);
    await page.waitForSelector('body[data-ready="true"]');
    await expect(page.textContent('#error')).resolves.toBe('callback_error');
    await expect(page.textContent('#session')).resolves.toBe('signed out (mfa_required)');
    await shot(page, 'denied');
    await page.close();
  });
});
