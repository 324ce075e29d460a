import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { Browser, Page } from 'playwright-core';
import {
  generateClientId,
  generateClientSecret,
  startSimulator,
  type RunningSimulator,
} from '@duo-nest/simulator';
import { simulatorEnv, startApp, type RunningApp } from './support/app-harness.js';
import { launchChromium, screenshotter } from './support/browser.js';

// The step-up page in Debian's Chromium (issue #14): a session signed on with the main Duo
// application opens /admin, which lives in its own Duo application (DUO_ADMIN_APP_CLIENT_ID /
// SECRET). The page's button leads to the simulator's prompt for that application (its stricter
// factor policy: Duo Push or a security key), and the approval lands back on /admin.
// Screenshots: test-output/screenshots/step-up/.
const ADMIN = { clientId: generateClientId(), clientSecret: generateClientSecret() };
const USER = 'stepup-admin';
let sim: RunningSimulator;
let app: RunningApp;
let browser: Browser;
const shot = screenshotter('step-up');

/** Clicks, then waits until the page has landed where `to` says (redirect chains included). */
async function clickTo(page: Page, selector: string, to: (u: URL) => boolean): Promise<void> {
  await Promise.all([page.waitForURL(to), page.click(selector)]);
}

beforeAll(async () => {
  // No `auto`: the simulator serves its prompt page, and the test clicks Approve.
  sim = await startSimulator({
    port: 0,
    clientId: generateClientId(),
    clientSecret: generateClientSecret(),
    users: [{ username: USER, groups: ['admins'] }],
    applications: [
      { ...ADMIN, name: 'Admin', policy: { allowedFactors: ['duo_push', 'webauthn'] } },
    ],
  });
  app = await startApp({
    ...simulatorEnv(sim),
    DUO_ADMIN_APP_CLIENT_ID: ADMIN.clientId,
    DUO_ADMIN_APP_CLIENT_SECRET: ADMIN.clientSecret,
  });
  browser = await launchChromium();
}, 30_000);

afterAll(async () => {
  await browser?.close();
  await app?.close();
  await sim?.close();
});

describe('the step-up page in Chromium', () => {
  it('should step a default session at /admin up into the admin application and land on /admin', async () => {
    const page = await browser.newPage();
    // Sign on with the main application through the form and the simulator's prompt.
    await page.goto(`${app.url}/`);
    await page.fill('#username', USER);
    await clickTo(page, '#submit', (u) => u.href.startsWith(`${sim.url}/oauth/v1/authorize`));
    expect(new URL(page.url()).searchParams.get('client_id')).toBe(sim.clientId);
    await expect(page.textContent('#application')).resolves.not.toBe('Admin');
    await clickTo(page, '#approve', (u) => u.href === `${app.url}/result`);
    await expect(page.textContent('#title')).resolves.toBe('Sign on complete');

    // /admin wants the admin application: the step-up page, not the admin answer.
    const stepUp = await page.goto(`${app.url}/admin`);
    expect(stepUp?.status()).toBe(200);
    // Its form's answer redirects to Duo, and Chromium holds that redirect to form-action.
    expect(stepUp?.headers()['content-security-policy']).toContain(`form-action 'self' ${sim.url}`);
    const at = new URL(page.url());
    expect(at.pathname).toBe('/auth/duo/step-up');
    expect(at.searchParams.get('application')).toBe('admin');
    expect(at.searchParams.get('returnTo')).toBe('/admin');
    await expect(page.title()).resolves.toBe('Two-factor sign-on');
    await expect(page.textContent('h1')).resolves.toBe('One more two-factor sign-on');
    await expect(page.textContent('#explain')).resolves.toBe(
      'This page needs a Duo sign-on with the admin application.',
    );
    await expect(page.textContent('#application')).resolves.toBe('admin');
    await expect(page.textContent('#step-up')).resolves.toBe('Continue with Duo');
    // The form carries its CSRF token (the library refuses the POST without it).
    expect(await page.inputValue('form input[name="_csrf"]')).toMatch(/^\S{16,}$/);
    expect(await page.inputValue('form input[name="returnTo"]')).toBe('/admin');
    await expect(page.content()).resolves.not.toContain(ADMIN.clientSecret);
    await shot(page, 'step-up-page');

    // The button: the simulator's prompt for the admin application, with its factors only.
    await clickTo(page, '#step-up', (u) => u.href.startsWith(`${sim.url}/oauth/v1/authorize`));
    expect(new URL(page.url()).searchParams.get('client_id')).toBe(ADMIN.clientId);
    await expect(page.textContent('#application')).resolves.toBe('Admin');
    await expect(page.textContent('#username')).resolves.toBe(USER);
    const options = await page.locator('select[name=factor] option').all();
    const factors = await Promise.all(options.map((o) => o.getAttribute('value')));
    expect(factors).toEqual(['duo_push', 'webauthn']);
    await page.selectOption('select[name=factor]', 'webauthn');
    await shot(page, 'admin-prompt');

    // Approve: back on /admin, now let in.
    const [admin] = await Promise.all([
      page.waitForResponse((r) => r.url() === `${app.url}/admin`),
      page.click('#approve'),
    ]);
    await page.waitForURL(`${app.url}/admin`);
    expect(admin.status()).toBe(200);
    expect(await admin.json()).toEqual({ username: USER, groups: ['admins'], admin: true });
    await expect(page.textContent('body')).resolves.toContain('"admin":true');
    await shot(page, 'admin-after-step-up');

    // The session now holds both applications, and Duo logged the admin approval with the key.
    const me = await page.goto(`${app.url}/me`);
    expect(await me?.json()).toMatchObject({
      username: USER,
      application: ADMIN.clientId,
      applications: { default: expect.any(Number), admin: expect.any(Number) },
    });
    const approvals = sim.control
      .authLog()
      .filter((e) => e.user.name === USER && e.result === 'success');
    expect(approvals.map((e) => [e.application.name, e.factor])).toEqual(
      expect.arrayContaining([['Admin', 'WebAuthn Security Key']]),
    );
    expect(approvals).toHaveLength(2);
    await page.close();
  }, 60_000); // two sign-ons in Chromium, under load
});
