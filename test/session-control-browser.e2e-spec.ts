import { afterAll, beforeAll, expect, it } from '@jest/globals';
import type { Browser as Chromium, Page } from 'playwright-core';
import { Browser, type RunningApp } from './support/app-harness.js';
import { startSimAndApp, type SimAndApp } from './support/sim-and-app.js';
import { launchChromium, screenshotter } from './support/browser.js';
import {
  auditEvents,
  JSON_ACCEPT,
  NO_RATE_LIMITS,
  signOn,
  uniqueUser,
} from './support/duo-flow.js';

// The audit page's session buttons (issue 14 item 3) in Debian's Chromium: an admin finds a
// user's sessions from the audit page, revokes one, then marks the user compromised.
const ADMIN = `pageadmin-${process.pid}`;
let app: RunningApp;
let booted: SimAndApp;
let chromium: Chromium;
let page: Page;
const shot = screenshotter('session-control');

async function me(browser: Browser): Promise<number> {
  const res = await browser.fetch(`${app.url}/me`, { headers: JSON_ACCEPT });
  await res.arrayBuffer();
  return res.status;
}

async function clickTo(p: Page, selector: string, to: (u: URL) => boolean): Promise<void> {
  await Promise.all([p.waitForURL(to), p.click(selector)]);
}

beforeAll(async () => {
  booted = await startSimAndApp({ env: { ...NO_RATE_LIMITS, AUDIT_ADMIN_USERS: ADMIN } });
  ({ app } = booted);
  chromium = await launchChromium();
  page = await chromium.newPage();
  await page.goto(`${app.url}/`);
  await page.fill('#username', ADMIN);
  await clickTo(page, '#submit', (u) => u.href === `${app.url}/result`);
}, 30_000);

afterAll(async () => {
  await chromium?.close();
  await booted?.close();
});

it('should revoke one session and then every session from the page buttons', async () => {
  const user = uniqueUser('page-victim');
  const sessions = [new Browser(), new Browser()];
  for (const b of sessions) {
    expect((await signOn(b, app.url, user)).status).toBe(303);
  }

  await page.goto(`${app.url}/audit`);
  await clickTo(page, '#sessions-link', (u) => u.pathname === '/audit/sessions');
  await page.fill('#f-username', user);
  await clickTo(page, '#show', (u) => u.searchParams.get('username') === user);
  expect(await page.locator('#sessions tbody tr').count()).toBe(2);
  expect(await page.locator('#sessions tbody tr td:nth-child(3)').allTextContents()).toEqual([
    '127.0.0.1',
    '127.0.0.1',
  ]);
  await shot(page, 'two-sessions');

  await clickTo(page, '#sessions tbody tr:nth-child(2) form.revoke button', (u) =>
    u.search.includes('done=revoked'),
  );
  expect(await page.locator('#notice').textContent()).toContain('revoked');
  expect(await page.locator('#sessions tbody tr').count()).toBe(1);
  expect([await me(sessions[0]), await me(sessions[1])]).toEqual([401, 200]);
  await shot(page, 'one-revoked');

  await clickTo(page, '#compromised button', (u) => u.search.includes('done=compromised'));
  expect(await page.locator('#no-sessions').isVisible()).toBe(true);
  expect(await me(sessions[1])).toBe(401);
  await shot(page, 'compromised');

  const revoked = await auditEvents(app, { username: user, type: 'session_revoked' });
  const marked = await auditEvents(app, { username: user, type: 'user_marked_compromised' });
  expect(revoked.map((e) => e.detail?.actor)).toEqual([ADMIN]);
  expect(marked.map((e) => e.detail?.revoked)).toEqual([1]);
}, 30_000);
