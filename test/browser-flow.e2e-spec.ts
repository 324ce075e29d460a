import { afterAll, beforeAll, describe, expect, it, jest } from '@jest/globals';
import type { Browser, Page } from 'playwright-core';
import { DuoFlowService } from '@duo-nest/core/internal';
import type { RunningSimulator } from '@duo-nest/simulator';
import { startApp, type RunningApp, simulatorEnv } from './support/app-harness.js';
import { launchChromium, screenshotter } from './support/browser.js';
import { startSimAndApp, type SimAndApp } from './support/sim-and-app.js';

// The seed's flow in a real browser (Debian's Chromium): sign-on form, the simulator's Universal
// Prompt look-alike, and "Sign on complete". Screenshots: test-output/screenshots/browser-flow/.
let sim: RunningSimulator;
let app: RunningApp;
let booted: SimAndApp;
let buttonApp: RunningApp;
let browser: Browser;
const shot = screenshotter('browser-flow');
jest.setTimeout(30_000);

/** Clicks, then waits until the page has landed where `to` says (redirect chains included). */
async function clickTo(page: Page, selector: string, to: (u: URL) => boolean): Promise<void> {
  await Promise.all([page.waitForURL(to), page.click(selector)]);
}

beforeAll(async () => {
  // auto: undefined: the simulator serves its prompt page, which the browser clicks through.
  booted = await startSimAndApp({ sim: { auto: undefined } });
  ({ sim, app } = booted);
  buttonApp = await startApp({
    ...simulatorEnv(sim),
    DUO_SKIP_BUTTON_PRESS: 'false',
    DUO_BUTTON_DISPLAY_NAME: 'Continue with Duo',
    DUO_BUTTON_CSS: '.duo-button{background:rgb(10, 20, 30)}',
    DUO_SHOW_POWERED_BY: 'true',
  });
  browser = await launchChromium();
}, 30_000);

afterAll(async () => {
  await browser?.close();
  await buttonApp?.close();
  await booted?.close();
});

async function signOn(base: string, username: string) {
  const page = await browser.newPage();
  await page.goto(`${base}/`);
  await page.fill('#username', username);
  await clickTo(page, '#submit', (u) => u.href !== `${base}/`);
  return page;
}

describe('seed flow in Chromium', () => {
  it('should reach "Sign on complete" when the user approves at Duo (skipButtonPress on)', async () => {
    const page = await signOn(app.url, 'alice');
    expect(page.url().startsWith(`${sim.url}/oauth/v1/authorize`)).toBe(true);
    await expect(page.textContent('#username')).resolves.toContain('alice');
    await shot(page, 'duo-prompt');
    await page.selectOption('select[name=factor]', { index: 1 });
    await clickTo(page, '#approve', (u) => u.href === `${app.url}/result`);
    await expect(page.textContent('#title')).resolves.toBe('Sign on complete');
    await expect(page.textContent('#raw-response')).resolves.toContain('"token_type": "Bearer"');
    await shot(page, 'sign-on-complete');
    const me = await page.goto(`${app.url}/me`);
    expect(await me?.json()).toMatchObject({ username: 'alice', mfa: true });
    await page.close();
  });

  it('should show the button page with the configured text, CSS and "Powered by" (skipButtonPress off)', async () => {
    const page = await signOn(buttonApp.url, 'bob');
    expect(page.url()).toBe(`${buttonApp.url}/login`);
    await expect(page.textContent('#duo-button')).resolves.toBe('Continue with Duo');
    await expect(page.textContent('#explain')).resolves.toContain('no way back');
    await expect(page.isVisible('#powered-by')).resolves.toBe(true);
    const color = await page.evaluate(
      "getComputedStyle(document.querySelector('#duo-button')).backgroundColor",
    );
    expect(color).toBe('rgb(10, 20, 30)');
    await shot(page, 'button-page');
    await clickTo(page, '#duo-button', (u) => u.href.startsWith(sim.url));
    await clickTo(page, '#approve', (u) => u.href === `${buttonApp.url}/result`);
    await expect(page.textContent('#username')).resolves.toBe('bob');
    await page.close();
  });

  it('should leave a denied user on Duo, record the login as abandoned, and let a fresh sign-on work', async () => {
    const page = await signOn(app.url, 'bob');
    await page.click('#deny');
    await page.waitForSelector('#denied');
    expect(page.url().startsWith(sim.url)).toBe(true);
    await shot(page, 'denied-dead-end');
    const abandoned = await app.app.get(DuoFlowService).sweepAbandoned(Date.now() + 3_600_000);
    expect(abandoned).toBeGreaterThanOrEqual(1);
    await page.goto(`${app.url}/`);
    await page.fill('#username', 'bob');
    await clickTo(page, '#submit', (u) => u.href.startsWith(sim.url));
    await clickTo(page, '#approve', (u) => u.href === `${app.url}/result`);
    await expect(page.textContent('#title')).resolves.toBe('Sign on complete');
    await page.close();
  });

  it('should show a clear failure with a restart link when Duo sends an error redirect', async () => {
    sim.control.nextOutcome({ username: 'alice', outcome: 'error_redirect' });
    const page = await browser.newPage();
    await page.goto(`${app.url}/`);
    await page.fill('#username', 'alice');
    await clickTo(page, '#submit', (u) => u.href.startsWith(`${app.url}/auth/duo/callback`));
    await expect(page.textContent('#title')).resolves.toBe('Sign-on failed');
    await shot(page, 'error-redirect');
    await clickTo(page, '#restart', (u) => u.href === `${app.url}/`);
    await page.close();
  });

  it('should send a guarded page to sign-on before MFA, return there after, and refuse it after logout', async () => {
    const page = await browser.newPage();
    await page.goto(`${app.url}/result`);
    expect(new URL(page.url()).pathname).toBe('/');
    await expect(page.textContent('#notice')).resolves.toContain('Please sign on');
    await shot(page, 'guarded-before-mfa');
    await page.fill('#username', 'alice');
    await clickTo(page, '#submit', (u) => u.href.startsWith(sim.url));
    await clickTo(page, '#approve', (u) => u.href === `${app.url}/result`);
    await clickTo(page, '#logout', (u) => u.pathname === '/');
    await expect(page.textContent('#notice')).resolves.toContain('signed out');
    await page.goto(`${app.url}/result`);
    expect(new URL(page.url()).pathname).toBe('/');
    await shot(page, 'after-logout');
    await page.close();
  });
});
