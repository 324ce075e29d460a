import { afterAll, beforeAll, describe, expect, it, jest } from '@jest/globals';
import type { Browser, Page } from 'playwright-core';
import { AuditRepository, type AuditEventType } from '@duo-nest/audit';
import type { DuoAuthContext } from '@duo-nest/core';
import type { RunningSimulator } from '@duo-nest/simulator';
import { type RunningApp } from './support/app-harness.js';
import { startSimAndApp, type SimAndApp } from './support/sim-and-app.js';
import { launchChromium, screenshotter } from './support/browser.js';

// The audit page in a real browser (Debian's Chromium): alice signs on through the simulator's
// prompt page, then filters, pages, opens a detail view and sees the outcome chart.
// Screenshots: test-output/screenshots/audit-page/.
jest.setTimeout(30_000);

let sim: RunningSimulator;
let app: RunningApp;
let booted: SimAndApp;
let browser: Browser;
let page: Page;
const shot = screenshotter('audit-page');

const TYPES: AuditEventType[] = ['mfa_succeeded', 'mfa_denied', 'session_logout'];
const OUTCOMES = { mfa_succeeded: 'success', mfa_denied: 'failure', session_logout: 'info' };
const BASE = Date.parse('2025-06-01T08:00:00.000Z');
const SEEDS = Array.from({ length: 33 }, (_, i) => ({
  username: i % 3 === 0 ? 'pager' : `other${i % 2}`,
  type: TYPES[i % 3],
  occurredAt: new Date(BASE + i * 47 * 60_000).toISOString(),
  txid: `page-tx-${i}`,
}));
const HOSTILE = '<script>alert(1)</script>"\'&';

async function clickTo(p: Page, selector: string, to: (u: URL) => boolean): Promise<void> {
  await Promise.all([p.waitForURL(to), p.click(selector)]);
}

async function rowIds(p: Page): Promise<string[]> {
  const rows = await p.locator('#events tbody tr').all();
  return Promise.all(rows.map(async (r) => (await r.getAttribute('data-id')) ?? ''));
}

function cells(p: Page, column: number): Promise<string[]> {
  return p.locator(`#events tbody tr td:nth-child(${column})`).allTextContents();
}

/** The chart's bars: outcome class and count. */
async function bars(p: Page): Promise<{ count: number; cls: string | null }[]> {
  const rects = await p.locator('svg#chart rect.bar').all();
  return Promise.all(
    rects.map(async (r) => ({
      count: Number(await r.getAttribute('data-count')),
      cls: await r.getAttribute('class'),
    })),
  );
}

beforeAll(async () => {
  booted = await startSimAndApp({ sim: { auto: undefined }, env: { AUDIT_ADMIN_USERS: 'alice' } });
  ({ sim, app } = booted);
  const repo = app.app.get(AuditRepository);
  for (const s of SEEDS) {
    await repo.append(
      {
        type: s.type,
        outcome: OUTCOMES[s.type as keyof typeof OUTCOMES] as 'success',
        username: s.username,
        authContext: { txid: s.txid, factor: 'Duo Push' } as unknown as DuoAuthContext,
      },
      { occurredAt: s.occurredAt },
    );
  }
  await repo.append(
    {
      type: 'mfa_failed',
      outcome: 'failure',
      username: HOSTILE,
      reason: 'state_unknown',
      authContext: {
        txid: 'hostile-tx',
        factor: HOSTILE,
        access_device: { hostname: HOSTILE },
      } as unknown as DuoAuthContext,
    },
    { occurredAt: '2025-05-31T23:00:00.000Z' },
  );
  browser = await launchChromium();
  page = await browser.newPage();
  // Sign on as alice through the simulator's prompt page.
  await page.goto(`${app.url}/`);
  await page.fill('#username', 'alice');
  await clickTo(page, '#submit', (u) => u.href.startsWith(sim.url));
  await page.selectOption('select[name=factor]', { index: 1 });
  await clickTo(page, '#approve', (u) => u.href === `${app.url}/result`);
}, 30_000);

afterAll(async () => {
  await browser?.close();
  await booted?.close();
});

describe('audit page in Chromium', () => {
  it('should show the events table, the outcome chart and a strict CSP when alice opens /audit', async () => {
    const res = await page.goto(`${app.url}/audit`);
    expect(res?.status()).toBe(200);
    const csp = res?.headers()['content-security-policy'] ?? '';
    expect(csp).toContain("default-src 'none'");
    expect(csp).not.toContain('script-src');
    await expect(page.textContent('#title')).resolves.toBe('Audit trail');
    expect(await page.$$('script')).toHaveLength(0);
    // alice's own sign-on is on the first page, newest first.
    const users = await cells(page, 4);
    expect(users).toContain('alice');
    expect(await page.isVisible('svg#chart')).toBe(true);
    const drawn = await bars(page);
    const stats = await app.app.get(AuditRepository).stats({}, 'day');
    expect(drawn.reduce((n, b) => n + b.count, 0)).toBe(stats.reduce((n, s) => n + s.total, 0));
    await shot(page, 'audit-page');
  });

  it('should show only matching rows when the filters form is applied', async () => {
    await page.goto(`${app.url}/audit`);
    await page.fill('#f-username', 'pager');
    await page.selectOption('#f-type', 'mfa_succeeded');
    await page.fill('#f-from', '2025-06-01T00:00:00');
    await page.fill('#f-to', '2025-06-03T00:00:00');
    await page.selectOption('#f-bucket', 'hour');
    await clickTo(page, '#apply', (u) => u.searchParams.get('username') === 'pager');
    const expected = SEEDS.filter((s) => s.username === 'pager' && s.type === 'mfa_succeeded');
    expect(await cells(page, 4)).toEqual(expected.map(() => 'pager'));
    expect(await cells(page, 7)).toEqual(expected.map((s) => s.txid).reverse());
    await expect(page.inputValue('#f-username')).resolves.toBe('pager');
    const drawn = await bars(page);
    expect(drawn.reduce((n, b) => n + b.count, 0)).toBe(expected.length);
    expect(drawn.every((b) => b.cls === 'bar bar-success')).toBe(true);
    await shot(page, 'filtered');
  });

  it('should page through every matching event without duplicates when following "Older events"', async () => {
    await page.goto(`${app.url}/audit?limit=5&from=2025-06-01&to=2025-06-05`);
    const seen: string[] = [];
    let pages = 1;
    seen.push(...(await rowIds(page)));
    while (await page.$('#next')) {
      const before = page.url();
      await clickTo(page, '#next', (u) => u.searchParams.has('cursor') && u.href !== before);
      expect(new URL(page.url()).searchParams.get('from')).toBe('2025-06-01T00:00:00.000Z');
      seen.push(...(await rowIds(page)));
      pages += 1;
      if (pages === 2) {
        await shot(page, 'second-page');
      }
    }
    expect(await page.isVisible('#end')).toBe(true);
    expect(pages).toBe(Math.ceil(SEEDS.length / 5));
    expect(seen).toHaveLength(SEEDS.length);
    expect(new Set(seen).size).toBe(SEEDS.length);
    await clickTo(page, '#first', (u) => !u.searchParams.has('cursor'));
    expect((await rowIds(page))[0]).toBe(seen[0]);
  });

  it("should show one event's auth_context pretty-printed and escaped when a detail link is opened", async () => {
    await page.goto(`${app.url}/audit?txid=hostile-tx`);
    expect(await cells(page, 4)).toEqual([HOSTILE]);
    await clickTo(page, '#events a.view', (u) => u.pathname.startsWith('/audit/view/'));
    await expect(page.textContent('#d-username')).resolves.toBe(HOSTILE);
    const pre = (await page.textContent('#auth-context')) ?? '';
    expect(JSON.parse(pre)).toMatchObject({ txid: 'hostile-tx', factor: HOSTILE });
    expect(pre).toContain('\n  "txid": "hostile-tx"');
    expect(await page.$$('script')).toHaveLength(0);
    await shot(page, 'detail');
    await clickTo(page, '#back', (u) => u.pathname === '/audit');
  });

  it('should show the problem on the page when a filter is malformed', async () => {
    const res = await page.goto(`${app.url}/audit?type=nope`);
    expect(res?.status()).toBe(400);
    await expect(page.textContent('#error')).resolves.toContain('type must be one of');
    const missing = await page.goto(`${app.url}/audit/view/6f1c1d9e-9b7a-4c1e-8d55-0123456789ab`);
    expect(missing?.status()).toBe(404);
  });

  it('should refuse the page with "Access denied" when the user is not an audit admin', async () => {
    const context = await browser.newContext();
    const bob = await context.newPage();
    await bob.goto(`${app.url}/`);
    await bob.fill('#username', 'bob');
    await clickTo(bob, '#submit', (u) => u.href.startsWith(sim.url));
    await clickTo(bob, '#approve', (u) => u.href === `${app.url}/result`);
    const res = await bob.goto(`${app.url}/audit`);
    expect(res?.status()).toBe(403);
    await expect(bob.textContent('#title')).resolves.toBe('Access denied');
    await shot(bob, 'forbidden');
    await context.close();
  });
});
