import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { Browser } from 'playwright-core';
import type { RunningSimulator } from '@duo-nest/simulator';
import { type RunningApp } from './support/app-harness.js';
import { launchChromium, screenshotter } from './support/browser.js';
import { startSimAndApp, type SimAndApp } from './support/sim-and-app.js';

// The policy refusal page in Debian's Chromium: a bypass user at /admin reads why, and its link
// leads to the sign-on form that returns to /admin. Screenshots: test-output/screenshots/mfa-policy/.
let sim: RunningSimulator;
let app: RunningApp;
let booted: SimAndApp;
let browser: Browser;
const shot = screenshotter('mfa-policy');

beforeAll(async () => {
  booted = await startSimAndApp();
  ({ sim, app } = booted);
  sim.control.setUsers([{ username: 'bypass-admin', status: 'bypass', groups: ['admins'] }]);
  browser = await launchChromium();
}, 30_000);

afterAll(async () => {
  await browser?.close();
  await booted?.close();
});

describe('policy refusal page in Chromium', () => {
  it('should tell a bypass user why /admin is refused and link to a fresh MFA', async () => {
    const page = await browser.newPage();
    await page.goto(`${app.url}/`);
    await page.fill('#username', 'bypass-admin');
    await Promise.all([
      page.waitForURL((u) => u.href === `${app.url}/result`),
      page.click('#submit'),
    ]);

    const res = await page.goto(`${app.url}/admin`);
    await shot(page, 'admin-bypass-refused');

    expect(res?.status()).toBe(403);
    expect(await page.textContent('#title')).toBe('Access denied');
    expect(await page.textContent('#message')).toContain('(bypass)');
    await Promise.all([
      page.waitForURL((u) => u.pathname === '/' && u.searchParams.get('returnTo') === '/admin'),
      page.click('#restart'),
    ]);
    expect(await page.inputValue('input[name="returnTo"]')).toBe('/admin');
    await shot(page, 'fresh-mfa-sign-on');
    await page.close();
  }, 30_000); // a whole sign-on in Chromium takes more than Jest's 5 s under load
});
