import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import {
  generateClientId,
  generateClientSecret,
  startSimulator,
  type RunningSimulator,
} from '@duo-nest/simulator';
import { MemoryDuoTenantStore } from '@duo-nest/core';
import { Browser, location } from './support/app-harness.js';
import { JSON_ACCEPT } from './support/duo-flow.js';
import { bootTestApp, postForm, simulatorOptions, throughDuo, type TestApp } from './apps/boot.js';
import { MultiAppModule } from './apps/multi-app/app.module.js';

// Several Duo applications in one DuoModule, against ONE simulator serving several applications:
// a step-up from `default` into a stricter `admin` (WebAuthn only on Duo's side), codes bound to
// their application, and tenants (one with broken settings) picked per request by a header.
const ADMIN = { clientId: generateClientId(), clientSecret: generateClientSecret() };
const TENANT = { clientId: generateClientId(), clientSecret: generateClientSecret() };
let sim: RunningSimulator;
let app: TestApp;
let tenants: TestApp;

beforeAll(async () => {
  sim = await startSimulator({
    port: 0,
    auto: 'allow',
    clientId: generateClientId(),
    clientSecret: generateClientSecret(),
    applications: [
      { ...ADMIN, name: 'Admin', policy: { allowedFactors: ['webauthn'], allowBypass: false } },
      { ...TENANT, name: 'Tenant A' },
    ],
  });
  app = await bootTestApp((url, onEvent) =>
    MultiAppModule.register({
      ...simulatorOptions(sim, url),
      applications: { admin: ADMIN },
      onEvent,
    }),
  );
  tenants = await bootTestApp((url, onEvent) => {
    const base = simulatorOptions(sim, url);
    const { clientId: _id, clientSecret: _secret, ...shared } = base;
    return MultiAppModule.register({
      ...shared,
      applications: { default: { clientId: _id!, clientSecret: _secret! }, admin: 'default' },
      applicationResolver: (req) => String(req.headers['x-tenant'] ?? 'default'),
      tenants: new MemoryDuoTenantStore({
        good: TENANT,
        // Malformed settings (a secret of 12 characters): refused when loaded.
        broken: { clientId: TENANT.clientId, clientSecret: 'tooshort1234' },
        // Well-formed, but not this application's secret: Duo refuses it.
        wrongsecret: { clientId: TENANT.clientId, clientSecret: generateClientSecret() },
      }),
      tenantCache: { max: 2 },
      onEvent,
    });
  });
});
afterAll(async () => {
  await tenants?.close();
  await app?.close();
  await sim?.close();
});

async function signOn(
  target: TestApp,
  username: string,
  headers: Record<string, string> = {},
): Promise<Browser> {
  const browser = new Browser();
  const start = await postForm(browser, `${target.url}/login`, { username }, headers);
  expect(start.status).toBe(303);
  const done = await browser.fetch(await throughDuo(browser, location(start)));
  expect(done.status).toBe(303);
  return browser;
}

/** The step-up page's form: its CSRF token and hidden fields. */
async function stepUpForm(browser: Browser, url: string) {
  const page = await browser.fetch(url, { headers: { accept: 'text/html' } });
  const html = await page.text();
  expect(page.status).toBe(200);
  const field = (name: string) => new RegExp(`name="${name}" value="([^"]*)"`).exec(html)?.[1];
  return {
    html,
    _csrf: field('_csrf') ?? '',
    application: field('application') ?? '',
    returnTo: (field('returnTo') ?? '').replace(/&#38;|&amp;/g, '&'),
  };
}

function postStepUp(browser: Browser, form: Record<string, string>): Promise<Response> {
  return browser.fetch(`${app.url}/auth/duo/step-up`, {
    method: 'POST',
    body: new URLSearchParams(form),
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
  });
}

describe('two applications: a step-up from default into admin', () => {
  it('should step a default session up into admin and record both applications', async () => {
    const browser = await signOn(app, 'alice');
    const plain = (await (
      await browser.fetch(`${app.url}/plain`, { headers: JSON_ACCEPT })
    ).json()) as { applications: Record<string, number> };
    expect(plain).toMatchObject({
      application: sim.clientId,
      applications: { default: expect.any(Number) },
    });
    expect(Object.keys((plain as { applications: object }).applications)).toEqual(['default']);

    // JSON: 401 mfa_step_up and where to go.
    const json = await browser.fetch(`${app.url}/admin`, { headers: JSON_ACCEPT });
    expect(json.status).toBe(401);
    expect(await json.json()).toEqual({
      statusCode: 401,
      error: 'mfa_step_up',
      message: expect.any(String),
      application: 'admin',
      stepUpUrl: '/auth/duo/step-up?application=admin&returnTo=%2Fadmin',
    });
    // HTML: 303 to the step-up page, whose form posts (with its CSRF token) to the step-up start.
    const html = await browser.fetch(`${app.url}/admin`, { headers: { accept: 'text/html' } });
    expect(html.status).toBe(303);
    const stepUpUrl = location(html);
    expect(stepUpUrl).toBe('/auth/duo/step-up?application=admin&returnTo=%2Fadmin');
    const form = await stepUpForm(browser, `${app.url}${stepUpUrl}`);
    expect(form).toMatchObject({ application: 'admin', returnTo: '/admin' });
    expect(form.html).not.toContain('name="username"');

    const start = await postStepUp(browser, {
      _csrf: form._csrf,
      application: form.application,
      returnTo: form.returnTo,
    });
    expect(start.status).toBe(303);
    const authorize = new URL(location(start));
    // Duo's prompt of the ADMIN application, for the session's user.
    expect(authorize.searchParams.get('client_id')).toBe(ADMIN.clientId);
    const callback = await browser.fetch(await throughDuo(browser, authorize.href));
    expect(callback.status).toBe(303);
    expect(location(callback)).toBe('/admin');

    const admin = await browser.fetch(`${app.url}/admin`, { headers: JSON_ACCEPT });
    expect(admin.status).toBe(200);
    const body = (await admin.json()) as {
      factor: string;
      application: string;
      applications: Record<string, number>;
    };
    expect(body.application).toBe(ADMIN.clientId);
    // The admin application allows WebAuthn only (the simulator's policy): its factor.
    expect(body.factor).toMatch(/webauthn/i);
    expect(body.applications).toEqual({
      default: plain.applications.default,
      admin: expect.any(Number),
    });
    expect(app.events.filter((e) => e.type === 'access_denied')).toContainEqual(
      expect.objectContaining({ reason: 'mfa_step_up', username: 'alice' }),
    );
  });

  it('should refuse a step-up without a session, without the CSRF token, or naming a user', async () => {
    const none = new Browser();
    const page = await none.fetch(`${app.url}/auth/duo/step-up?application=admin`, {
      headers: JSON_ACCEPT,
    });
    expect([page.status, ((await page.json()) as { error: string }).error]).toEqual([
      401,
      'mfa_required',
    ]);

    const browser = await signOn(app, 'bob');
    const form = await stepUpForm(browser, `${app.url}/auth/duo/step-up?application=admin`);
    const noToken = await postStepUp(browser, { application: 'admin' });
    expect(noToken.status).toBe(403);
    // The user is the session's: a username in the form is refused, never used.
    const named = await postStepUp(browser, {
      _csrf: form._csrf,
      application: 'admin',
      username: 'mallory',
    });
    expect(named.status).toBe(400);
    const unknown = await postStepUp(browser, { _csrf: form._csrf, application: 'nosuchapp' });
    expect(unknown.status).toBe(400);
    // Still a default-only session.
    expect((await browser.fetch(`${app.url}/admin`, { headers: JSON_ACCEPT })).status).toBe(401);
  });

  it("should refuse a code of the default application presented to admin's exchange", async () => {
    const browser = await signOn(app, 'carol');
    // A default sign-on's code (its callback not followed)...
    const other = await postForm(browser, `${app.url}/login`, { username: 'carol' });
    const defaultCallback = new URL(await throughDuo(browser, location(other)));
    // ...then a step-up into admin, whose callback gets the default code instead of its own.
    const form = await stepUpForm(browser, `${app.url}/auth/duo/step-up?application=admin`);
    const start = await postStepUp(browser, { _csrf: form._csrf, application: 'admin' });
    const adminCallback = new URL(await throughDuo(browser, location(start)));
    const mixed = new URL(adminCallback.href);
    mixed.searchParams.set('duo_code', defaultCallback.searchParams.get('duo_code') ?? '');

    const res = await browser.fetch(mixed.href, { headers: JSON_ACCEPT });
    expect(res.status).toBe(401);
    expect(await res.json()).toMatchObject({ error: 'invalid_grant' });
    expect(app.events).toContainEqual(
      expect.objectContaining({ type: 'mfa_failed', reason: 'invalid_grant', username: 'carol' }),
    );
    expect((await browser.fetch(`${app.url}/admin`, { headers: JSON_ACCEPT })).status).toBe(401);
  });
});

describe('tenants picked per request', () => {
  const as = (tenant: string) => ({ 'x-tenant': tenant });

  it('should sign on a working tenant beside a broken one, and refuse only the broken one', async () => {
    const broken = new Browser();
    const refused = await postForm(
      broken,
      `${tenants.url}/login`,
      { username: 'alice' },
      { ...as('broken'), ...JSON_ACCEPT },
    );
    expect(refused.status).toBe(500);
    expect(await refused.json()).toMatchObject({ error: 'config' });
    expect(tenants.events).toContainEqual(
      expect.objectContaining({
        type: 'mfa_unavailable',
        reason: 'application_invalid',
        detail: { application: 'broken', fields: 'clientSecret' },
      }),
    );
    const wrong = await postForm(
      new Browser(),
      `${tenants.url}/login`,
      { username: 'alice' },
      { ...as('wrongsecret'), ...JSON_ACCEPT },
    );
    expect(wrong.status).toBe(503);
    expect(tenants.events).toContainEqual(
      expect.objectContaining({ type: 'mfa_unavailable', reason: 'invalid_client' }),
    );

    // The good tenant, after the broken ones (and the default application) still signs on.
    const good = await signOn(tenants, 'alice', as('good'));
    const me = await good.fetch(`${tenants.url}/plain`, {
      headers: { ...JSON_ACCEPT, ...as('good') },
    });
    expect(me.status).toBe(200);
    expect(await me.json()).toMatchObject({
      application: TENANT.clientId,
      applications: { good: expect.any(Number) },
    });
    // The session satisfied tenant `good`, not the default application: step up there.
    const elsewhere = await good.fetch(`${tenants.url}/plain`, { headers: JSON_ACCEPT });
    expect(elsewhere.status).toBe(401);
    expect(await elsewhere.json()).toMatchObject({ error: 'mfa_step_up', application: 'default' });

    const plain = await signOn(tenants, 'dave');
    expect((await plain.fetch(`${tenants.url}/admin`, { headers: JSON_ACCEPT })).status).toBe(200);
    // An unknown tenant: 400, audited.
    const unknown = await postForm(
      new Browser(),
      `${tenants.url}/login`,
      { username: 'alice' },
      { ...as('nobody'), ...JSON_ACCEPT },
    );
    expect(unknown.status).toBe(400);
    expect(tenants.events).toContainEqual(
      expect.objectContaining({ type: 'input_validation_failed', reason: 'unknown_application' }),
    );
  });
});
