import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import {
  generateClientId,
  generateClientSecret,
  startSimulator,
  type RunningSimulator,
} from '@duo-nest/simulator';
import {
  Browser,
  location,
  simulatorEnv,
  startApp,
  type RunningApp,
} from './support/app-harness.js';
import { auditEvents, JSON_ACCEPT, signOn, uniqueUser } from './support/duo-flow.js';

// [ops-2] and [policy] on the reference app, through HTTP against the simulator: the result page
// (claims apart from the token response, links to the demo pages), /admin's refusal naming the Duo
// group, /admin in its own Duo application (DUO_ADMIN_APP_*), and the app's remaining English pages
// (refusals before any route, the step-up page, mfa_policy) in German.
const ADMIN = { clientId: generateClientId(), clientSecret: generateClientSecret() };
let sim: RunningSimulator;
let app: RunningApp; // no admin application: /admin uses the main one
let twoApps: RunningApp; // DUO_ADMIN_APP_CLIENT_ID / SECRET set

const DE = { 'accept-language': 'de-DE,de;q=0.9,en;q=0.5' } as const;
const EN = { 'accept-language': 'en-US,en;q=0.9' } as const;
const HTML = { accept: 'text/html' } as const;

/** The simulator's /__sim control API, as a test outside its process would use it. */
async function simControl(path: string, body: unknown): Promise<void> {
  const res = await fetch(`${sim.url}/__sim/${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  expect(res.status).toBeLessThan(300);
  await res.arrayBuffer();
}

beforeAll(async () => {
  sim = await startSimulator({
    port: 0,
    auto: 'allow',
    clientId: generateClientId(),
    clientSecret: generateClientSecret(),
    applications: [{ ...ADMIN, name: 'Admin' }],
  });
  app = await startApp({ ...simulatorEnv(sim) });
  twoApps = await startApp({
    ...simulatorEnv(sim),
    DUO_ADMIN_APP_CLIENT_ID: ADMIN.clientId,
    DUO_ADMIN_APP_CLIENT_SECRET: ADMIN.clientSecret,
  });
}, 30_000);
afterAll(async () => {
  await twoApps?.close();
  await app?.close();
  await sim?.close();
});

async function signedOn(target: RunningApp, username: string): Promise<Browser> {
  const browser = new Browser();
  const done = await signOn(browser, target.url, username);
  expect(done.status).toBe(303);
  return browser;
}

function preText(html: string, id: string): string {
  const m = new RegExp(`<pre id="${id}" dir="ltr">([\\s\\S]*?)</pre>`).exec(html);
  expect(m).not.toBeNull();
  return m![1].replace(/&#34;/g, '"').replace(/&#38;/g, '&');
}

function htmlTag(html: string): string {
  return /<html[^>]*>/.exec(html)![0];
}

describe('the result page', () => {
  it.each([
    [
      'en',
      EN,
      'Verified id_token claims',
      'Duo&#39;s token response (tokens redacted)',
      'Your session',
    ],
    [
      'de',
      DE,
      'Geprüfte Angaben (Claims) des id_token',
      'Duos Token-Antwort (Token geschwärzt)',
      'Ihre Sitzung',
    ],
  ] as const)(
    'should show the claims and the token response apart, and link the demo pages (%s)',
    async (lang, headers, claimsHeading, tokenHeading, meText) => {
      const browser = await signedOn(app, 'alice');
      const res = await browser.fetch(`${app.url}/result`, { headers: { ...HTML, ...headers } });
      const html = await res.text();
      expect(res.status).toBe(200);
      expect(htmlTag(html)).toContain(`lang="${lang}"`);
      expect(html).toContain(`<h2 id="claims-heading">${claimsHeading}</h2>`);
      expect(html).toContain(`<h2 id="token-response-heading">${tokenHeading}</h2>`);

      const claims = JSON.parse(preText(html, 'claims')) as Record<string, unknown>;
      const response = JSON.parse(preText(html, 'raw-response')) as Record<string, unknown>;
      // Claims only: none of the token endpoint's fields.
      expect(claims).toMatchObject({ preferred_username: 'alice', aud: sim.clientId });
      for (const field of ['expires_in', 'token_type', 'access_token', 'id_token']) {
        expect(claims).not.toHaveProperty(field);
      }
      expect(response).toMatchObject({
        statusCode: 200,
        headers: expect.objectContaining({ 'content-type': expect.any(String) }),
        expires_in: expect.any(Number),
        token_type: 'Bearer',
        access_token: expect.stringMatching(/^\[redacted: \d+ characters\]$/),
        id_token: expect.stringMatching(/^\[redacted: \d+ characters\]$/),
      });
      expect(response).not.toHaveProperty('preferred_username');

      // The demo's other pages, and the sign-out form.
      for (const href of ['/me', '/status', '/step-up', '/admin', '/audit']) {
        expect(html).toContain(`href="${href}"`);
      }
      expect(html).toContain(meText);
      expect(html).toMatch(/<form method="post" action="\/logout">[\s\S]*id="logout"/);
      // No token, nonce or JWT anywhere on the page.
      expect(html).not.toMatch(/eyJ[A-Za-z0-9_-]{4,}\./);
      expect(claims.nonce).toMatch(/^\[redacted: \d+ characters\]$/);
    },
  );
});

describe("/admin's refusal names the Duo group", () => {
  it('should say which group is missing in JSON, HTML (en, de) and the audit row', async () => {
    const username = uniqueUser('staff');
    await simControl('users', [{ username, groups: ['staff'] }]);
    const browser = await signedOn(app, username);

    const json = await browser.fetch(`${app.url}/admin`, { headers: JSON_ACCEPT });
    expect(json.status).toBe(403);
    expect(await json.json()).toEqual({
      statusCode: 403,
      error: 'forbidden',
      message: 'This page needs membership in the Duo group admins',
      groups: ['admins'],
    });
    const en = await browser.fetch(`${app.url}/admin`, { headers: { ...HTML, ...EN } });
    expect(en.status).toBe(403);
    expect(await en.text()).toContain('This page needs membership in the Duo group admins');
    const de = await browser.fetch(`${app.url}/admin`, { headers: { ...HTML, ...DE } });
    const deHtml = await de.text();
    expect(de.status).toBe(403);
    expect(htmlTag(deHtml)).toContain('lang="de"');
    expect(deHtml).toContain('Diese Seite verlangt die Mitgliedschaft in der Duo-Gruppe admins');

    const denied = await auditEvents(app, { username, type: 'access_denied' });
    expect(denied).toHaveLength(3);
    expect(denied[0]).toMatchObject({
      reason: 'forbidden',
      detail: { requiredGroups: 'admins' },
    });
  });
});

describe('/admin in its own Duo application (DUO_ADMIN_APP_CLIENT_ID / SECRET)', () => {
  it('should step a default session up into the admin application, then let it in', async () => {
    const browser = await signedOn(twoApps, 'alice');
    const before = (await (
      await browser.fetch(`${twoApps.url}/me`, { headers: JSON_ACCEPT })
    ).json()) as { applications: Record<string, number> };
    expect(Object.keys(before.applications)).toEqual(['default']);

    const json = await browser.fetch(`${twoApps.url}/admin`, { headers: JSON_ACCEPT });
    expect(json.status).toBe(401);
    expect(await json.json()).toEqual({
      statusCode: 401,
      error: 'mfa_step_up',
      message: expect.any(String),
      application: 'admin',
      stepUpUrl: '/auth/duo/step-up?application=admin&returnTo=%2Fadmin',
    });

    const html = await browser.fetch(`${twoApps.url}/admin`, { headers: HTML });
    expect(html.status).toBe(303);
    // The step-up page, in German here.
    const page = await browser.fetch(`${twoApps.url}${location(html)}`, {
      headers: { ...HTML, ...DE },
    });
    const pageHtml = await page.text();
    expect(page.status).toBe(200);
    expect(page.headers.get('content-language')).toBe('de');
    expect(htmlTag(pageHtml)).toContain('lang="de"');
    expect(pageHtml).toContain('Noch eine Zwei-Faktor-Anmeldung');
    expect(pageHtml).toContain('<strong id="application">admin</strong>');
    expect(pageHtml).toContain('Weiter mit Duo');
    const csrf = /name="_csrf" value="([^"]*)"/.exec(pageHtml)?.[1] ?? '';

    // The library checks the step-up start's CSRF token (the app leaves that route to it).
    const noToken = await browser.fetch(`${twoApps.url}/auth/duo/step-up`, {
      method: 'POST',
      body: new URLSearchParams({ application: 'admin', returnTo: '/admin' }),
      headers: { ...JSON_ACCEPT, 'content-type': 'application/x-www-form-urlencoded' },
    });
    expect(noToken.status).toBe(403);
    expect(await noToken.json()).toMatchObject({ error: 'csrf_failed' });
    const start = await browser.fetch(`${twoApps.url}/auth/duo/step-up`, {
      method: 'POST',
      body: new URLSearchParams({ _csrf: csrf, application: 'admin', returnTo: '/admin' }),
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
    });
    expect(start.status).toBe(303);
    const authorize = new URL(location(start));
    expect(authorize.searchParams.get('client_id')).toBe(ADMIN.clientId);
    const duo = await browser.fetch(authorize.href);
    expect(duo.status).toBe(302);
    const callback = await browser.fetch(location(duo));
    expect(callback.status).toBe(303);
    expect(location(callback)).toBe('/admin');

    const admin = await browser.fetch(`${twoApps.url}/admin`, { headers: JSON_ACCEPT });
    expect(admin.status).toBe(200);
    expect(await admin.json()).toMatchObject({ username: 'alice', admin: true });
    const me = (await (
      await browser.fetch(`${twoApps.url}/me`, { headers: JSON_ACCEPT })
    ).json()) as { application: string; applications: Record<string, number> };
    expect(me.application).toBe(ADMIN.clientId);
    expect(me.applications).toEqual({
      default: before.applications.default,
      admin: expect.any(Number),
    });
    // The secret never reaches a page or an answer.
    expect(pageHtml).not.toContain(ADMIN.clientSecret);
  });

  it('should leave /admin as before without the variables (no step-up)', async () => {
    const browser = await signedOn(app, 'alice');
    const admin = await browser.fetch(`${app.url}/admin`, { headers: JSON_ACCEPT });
    expect(admin.status).toBe(200);
    const me = (await (await browser.fetch(`${app.url}/me`, { headers: JSON_ACCEPT })).json()) as {
      applications: Record<string, number>;
    };
    expect(Object.keys(me.applications)).toEqual(['default']);
  });
});

describe('the remaining English pages, in German', () => {
  async function page(res: Response, status: number, text: string): Promise<string> {
    const html = await res.text();
    expect(res.status).toBe(status);
    expect(res.headers.get('content-language')).toBe('de');
    expect(res.headers.get('vary') ?? '').toMatch(/Accept-Language/i);
    expect(htmlTag(html)).toContain('lang="de"');
    expect(html).toContain(text);
    expect(html).not.toMatch(/<script/i);
    return html;
  }

  it('should refuse a malformed query (400) before any route in German, JSON staying English', async () => {
    const res = await fetch(`${app.url}/?x=%zz`, { headers: { ...HTML, ...DE } });
    const html = await page(res, 400, 'Die Adresse enthält ein %, auf das keine zwei');
    expect(html).toContain('Anfrage abgelehnt');
    const json = await fetch(`${app.url}/?x=%zz`, { headers: { ...JSON_ACCEPT, ...DE } });
    expect(await json.json()).toMatchObject({
      error: 'invalid_request',
      message: expect.stringMatching(/^The address has a %/),
    });
  });

  it('should refuse a form without its CSRF token (403) in German', async () => {
    const res = await fetch(`${app.url}/logout`, {
      method: 'POST',
      headers: { ...HTML, ...DE, 'content-type': 'application/x-www-form-urlencoded' },
      body: 'a=1',
    });
    await page(res, 403, 'Dieses Formular ist abgelaufen oder kam von einer anderen Website');
  });

  it('should refuse another method at the callback (405) in German', async () => {
    const res = await fetch(`${app.url}/auth/duo/callback`, {
      method: 'POST',
      headers: { ...HTML, ...DE },
    });
    expect(res.headers.get('allow')).toBe('GET');
    await page(res, 405, 'Hier ist nur GET erlaubt');
  });

  it('should refuse a body too large (413) and a repeated form field (400) in German', async () => {
    const big = await fetch(`${app.url}/login`, {
      method: 'POST',
      headers: { ...HTML, ...DE, 'content-type': 'application/x-www-form-urlencoded' },
      body: `username=${'a'.repeat(20_000)}`,
    });
    await page(big, 413, 'Die Anfrage ist zu groß');
    const twice = await fetch(`${app.url}/login`, {
      method: 'POST',
      headers: { ...HTML, ...DE, 'content-type': 'application/x-www-form-urlencoded' },
      body: 'username=a&username=b',
    });
    await page(twice, 400, 'username wird 2-mal angegeben; geben Sie es einmal an');
  });

  it("should explain a policy refusal (mfa_policy) in German, and the sign-on page's notice", async () => {
    const username = uniqueUser('bypass');
    await simControl('users', [{ username, status: 'bypass', groups: ['admins'] }]);
    const browser = await signedOn(app, username);
    const res = await browser.fetch(`${app.url}/admin`, { headers: { ...HTML, ...DE } });
    const html = await page(res, 403, 'Duo hat diese Anmeldung ohne eine durchgelassen (Bypass)');
    expect(html).toContain('href="/?returnTo=%2Fadmin&#38;reason=mfa_policy"');
    const form = await browser.fetch(`${app.url}/?returnTo=%2Fadmin&reason=mfa_policy`, {
      headers: { ...HTML, ...DE },
    });
    await page(form, 200, 'Diese Seite akzeptiert die Zwei-Faktor-Methode Ihrer letzten Anmeldung');
  });
});
