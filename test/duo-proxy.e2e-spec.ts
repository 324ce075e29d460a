import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inspect } from 'node:util';
import { Agent, fetch as undiciFetch } from 'undici';
import { validateEnv } from '../src/config/env.validation.js';
import { DuoClient, DuoConfigError, DuoError } from '@duo-nest/core';
import { startSimulator, type RunningSimulator } from '@duo-nest/simulator';
import { Browser, freePort, location, startApp, type RunningApp } from './support/app-harness.js';
import { startConnectProxy, type ConnectProxy } from './support/connect-proxy.js';
import {
  auditEvents,
  JSON_ACCEPT,
  NO_RATE_LIMITS,
  postLikeBrowser,
  sessionCookies,
  uniqueUser,
} from './support/duo-flow.js';
import { makeTestCa } from './support/test-ca.js';

// Issue 15 item 2: Duo calls through a corporate CONNECT proxy, with a TLS-inspection CA, and the
// proxy's password (a canary) never surfacing anywhere.
const CANARY = 'Canary-Pr0xy-Pa55-7f3c9e';
const PROXY_USER = 'duo-svc';
const BASIC = `Basic ${Buffer.from(`${PROXY_USER}:${CANARY}`).toString('base64')}`;
const METRICS_TOKEN = 'metrics-token-0123456789abcdefghijklmnop';
/** Every form the secret could take in a leak. */
const SECRET_FORMS = [CANARY, BASIC.slice(6), encodeURIComponent(CANARY)];

let sim: RunningSimulator;
let proxy: ConnectProxy;
let caFile: string;
let browserAgent: Agent;
const apps: RunningApp[] = [];
const logLines: string[] = [];
/** Every body and header the tests received, searched for the canary at the end. */
const seen: string[] = [];
const logDestination = { write: (line: string) => void logLines.push(line) };

function proxyUrl(password = CANARY): string {
  return `http://${PROXY_USER}:${encodeURIComponent(password)}@127.0.0.1:${proxy.port}`;
}

async function boot(env: Record<string, string>): Promise<RunningApp> {
  const app = await startApp(
    {
      DUO_CLIENT_ID: sim.clientId,
      DUO_CLIENT_SECRET: sim.clientSecret,
      // A bare host:port: https, as with the real Duo.
      DUO_API_HOST: sim.apiHost,
      ...NO_RATE_LIMITS,
      DUO_HEALTH_CACHE_MS: '0',
      DUO_TIMEOUT_MS: '1500',
      METRICS_TOKEN,
      LOG_LEVEL: 'debug',
      ...env,
    },
    { logDestination },
  );
  apps.push(app);
  return app;
}

/** The browser's side: it trusts the test CA (the company's machines do) and goes direct. */
async function followToCallback(browser: Browser, app: RunningApp, username: string) {
  const start = await postLikeBrowser(browser, app.url, '/login', { username });
  seen.push(await start.text());
  expect(start.status).toBe(303);
  const duo = await undiciFetch(location(start), {
    redirect: 'manual',
    dispatcher: browserAgent,
  });
  await duo.arrayBuffer();
  expect(duo.status).toBe(302);
  return browser.fetch(duo.headers.get('location')!);
}

async function startLogin(app: RunningApp, username: string) {
  const browser = new Browser();
  const res = await postLikeBrowser(browser, app.url, '/login', { username }, JSON_ACCEPT);
  const body = await res.text();
  seen.push(body, JSON.stringify([...res.headers]));
  return { res, body, browser };
}

async function observe(app: RunningApp) {
  const health = await fetch(`${app.url}/health`);
  const metrics = await fetch(`${app.url}/metrics`, {
    headers: { authorization: `Bearer ${METRICS_TOKEN}` },
  });
  const out = { health: await health.text(), metrics: await metrics.text() };
  seen.push(out.health, out.metrics);
  return out;
}

beforeAll(async () => {
  const ca = makeTestCa();
  caFile = join(mkdtempSync(join(tmpdir(), 'duo-nest-cafile-')), 'company-ca.pem');
  writeFileSync(caFile, ca.caCert);
  browserAgent = new Agent({ connect: { ca: ca.caCert } });
  [sim, proxy] = await Promise.all([
    startSimulator({ tls: { cert: ca.cert, key: ca.key }, auto: 'allow' }),
    startConnectProxy(),
  ]);
});

afterAll(async () => {
  await Promise.all(apps.map((a) => a.close()));
  await Promise.all([sim?.close(), proxy?.close(), browserAgent?.close()]);
});

describe('Duo through a CONNECT proxy with DUO_CA_FILE', () => {
  it('should complete a whole sign-on with every Duo call tunnelled and authenticated', async () => {
    proxy.reset();
    proxy.requireAuthorization = BASIC;
    const app = await boot({ DUO_HTTPS_PROXY: proxyUrl(), DUO_CA_FILE: caFile });
    const username = uniqueUser('proxied');
    const browser = new Browser();
    const done = await followToCallback(browser, app, username);
    expect(done.status).toBe(303);
    expect(location(done)).toBe('/result');
    expect(sessionCookies(browser)).toContain('duo_session');
    const events = await auditEvents(app, { username });
    expect(events.some((e) => e.type === 'mfa_succeeded')).toBe(true);
    // The health check and the token call: both through the proxy, to Duo's host only.
    expect(proxy.tunnels).toBeGreaterThanOrEqual(1);
    expect(new Set(proxy.targets)).toEqual(new Set([sim.apiHost]));
    expect(proxy.authorizations.every((a) => a === BASIC)).toBe(true);
  });

  it.each(['closed', 'open'])(
    'should fail closed (503, reason untrusted_certificate) in failmode %s when Duo is re-signed by a CA the app does not trust',
    async (failmode) => {
      proxy.reset();
      const app = await boot({ DUO_HTTPS_PROXY: proxyUrl(), DUO_FAILMODE: failmode });
      const username = uniqueUser('noca');
      const { res, body, browser } = await startLogin(app, username);
      expect(res.status).toBe(503);
      expect(JSON.parse(body)).toMatchObject({ error: 'unavailable' });
      expect(sessionCookies(browser)).toEqual([]);
      expect(proxy.tunnels).toBeGreaterThanOrEqual(1); // the tunnel worked; TLS inside it did not
      const events = await auditEvents(app, { username });
      expect(events.filter((e) => e.type === 'mfa_unavailable').map((e) => e.reason)).toEqual([
        'untrusted_certificate',
      ]);
      expect(events.some((e) => e.type === 'mfa_started' || e.type === 'mfa_failopen')).toBe(false);
    },
  );

  it('should name the untrusted certificate, and the proxy only by its origin, in the error', async () => {
    proxy.reset();
    const client = new DuoClient({
      clientId: sim.clientId,
      clientSecret: sim.clientSecret,
      apiHost: sim.apiHost,
      redirectUri: 'https://app.example/auth/duo/callback',
      proxy: proxyUrl(),
      noProxy: '',
    });
    const err = (await client.healthCheck().catch((e: unknown) => e)) as DuoError;
    expect(err).toBeInstanceOf(DuoError);
    expect(err.code).toBe('untrusted_certificate');
    expect(err.message).toContain("Duo's certificate is not trusted");
    expect(err.message).toContain(`through the proxy http://127.0.0.1:${proxy.port}`);
    seen.push(err.message, inspect(err, { depth: 10 }), inspect(client, { depth: 10 }));
    seen.push(JSON.stringify(client.options));
    await client.close();
  });
});

describe('NO_PROXY and the standard variables', () => {
  it('should use lower-case https_proxy and reach Duo directly when NO_PROXY names its host and port', async () => {
    proxy.reset();
    const app = await boot({
      https_proxy: proxyUrl(),
      NO_PROXY: `intranet.example, 127.0.0.1:${sim.apiHost.split(':')[1]}`,
      DUO_CA_FILE: caFile,
    });
    const done = await followToCallback(new Browser(), app, uniqueUser('noproxy'));
    expect(done.status).toBe(303);
    expect(proxy.connects).toBe(0);
  });

  it('should go through HTTPS_PROXY when NO_PROXY names another port of the host', async () => {
    proxy.reset();
    const app = await boot({
      HTTPS_PROXY: proxyUrl(),
      NO_PROXY: '127.0.0.1:1',
      DUO_CA_FILE: caFile,
    });
    const done = await followToCallback(new Browser(), app, uniqueUser('stdproxy'));
    expect(done.status).toBe(303);
    expect(proxy.tunnels).toBeGreaterThanOrEqual(1);
  });

  it('should ignore HTTPS_PROXY when DUO_HTTPS_PROXY=off', async () => {
    proxy.reset();
    const app = await boot({
      HTTPS_PROXY: proxyUrl(),
      DUO_HTTPS_PROXY: 'off',
      DUO_CA_FILE: caFile,
    });
    const done = await followToCallback(new Browser(), app, uniqueUser('off'));
    expect(done.status).toBe(303);
    expect(proxy.connects).toBe(0);
  });
});

describe('a proxy that refuses or hangs', () => {
  let refusedUrl: string;
  beforeAll(async () => {
    refusedUrl = `http://${PROXY_USER}:${CANARY}@127.0.0.1:${await freePort()}`;
  });

  it.each([
    ['407 (wrong password)', '407'],
    ['connection refused', 'refused'],
    ['no answer to CONNECT', 'hang'],
  ])('failmode closed: %s gives 503 unavailable within the timeout', async (_label, kind) => {
    proxy.reset();
    proxy.mode = kind === 'hang' ? 'hang' : 'tunnel';
    proxy.requireAuthorization = BASIC;
    const app = await boot({
      DUO_HTTPS_PROXY:
        kind === 'refused' ? refusedUrl : proxyUrl(kind === '407' ? `${CANARY}-wrong` : CANARY),
      DUO_CA_FILE: caFile,
      DUO_TIMEOUT_MS: '700',
    });
    const username = uniqueUser(`refuse-${kind}`);
    const started = performance.now();
    const { res, body } = await startLogin(app, username);
    const elapsed = performance.now() - started;
    expect(res.status).toBe(503);
    expect(JSON.parse(body)).toMatchObject({ error: 'unavailable' });
    expect(elapsed).toBeLessThan(3000);
    if (kind !== 'refused') {
      expect(proxy.connects).toBeGreaterThanOrEqual(1);
    }
    const events = await auditEvents(app, { username });
    expect(events.map((e) => e.type)).toContain('mfa_unavailable');
    const { health } = await observe(app);
    // The failed sign-on's own call is the last answer: Duo is down, and /health says why.
    expect((JSON.parse(health) as { details: { duo: unknown } }).details.duo).toMatchObject({
      state: 'down',
      error: 'unavailable',
    });
  });

  it('failmode open: a proxy that refuses the tunnel is a network failure, and fails open', async () => {
    proxy.reset();
    proxy.mode = '407';
    const app = await boot({
      DUO_HTTPS_PROXY: proxyUrl(),
      DUO_CA_FILE: caFile,
      DUO_FAILMODE: 'open',
    });
    const username = uniqueUser('open407');
    const browser = new Browser();
    const start = await postLikeBrowser(browser, app.url, '/login', { username });
    expect(start.status).toBe(303);
    expect(location(start)).toBe('/result');
    const events = await auditEvents(app, { username });
    expect(events.filter((e) => e.type === 'mfa_failopen').map((e) => e.reason)).toEqual([
      'unavailable',
    ]);
  });

  it('should open the circuit breaker after repeated proxy refusals and then spare the proxy', async () => {
    proxy.reset();
    proxy.mode = '407';
    const app = await boot({
      DUO_HTTPS_PROXY: proxyUrl(),
      DUO_CA_FILE: caFile,
      DUO_BREAKER_THRESHOLD: '2',
      DUO_BREAKER_COOLDOWN_MS: '60000',
    });
    for (let i = 0; i < 2; i++) {
      expect((await startLogin(app, uniqueUser('breaker'))).res.status).toBe(503);
    }
    const before = proxy.connects;
    expect(before).toBe(2);
    const { res } = await startLogin(app, uniqueUser('breaker'));
    expect(res.status).toBe(503);
    expect(proxy.connects).toBe(before); // failed fast: the open circuit never called out
    const { health, metrics } = await observe(app);
    expect(health).toContain('"circuit":"open"');
    expect(metrics).toContain('duo_nest_duo_circuit_state{state="open"} 1');
  });
});

describe('the proxy password never surfaces', () => {
  it('should keep a bad proxy URL out of the environment error', () => {
    let message = '';
    try {
      validateEnv({
        DUO_CLIENT_ID: sim.clientId,
        DUO_CLIENT_SECRET: sim.clientSecret,
        DUO_API_HOST: sim.apiHost,
        DUO_HTTPS_PROXY: `socks5://${PROXY_USER}:${CANARY}@127.0.0.1:1080`,
        HTTPS_PROXY: `http://${PROXY_USER}:${CANARY}@proxy.example:3128/path`,
        DUO_CA_FILE: join(tmpdir(), 'no-such-ca-file.pem'),
      });
    } catch (err) {
      message = String(err) + inspect(err, { depth: 10 });
    }
    expect(message).toContain('DUO_HTTPS_PROXY must be an http:// or https:// proxy URL');
    expect(message).toContain('DUO_CA_FILE cannot be read (ENOENT)');
    seen.push(message);
  });

  it('should keep a bad proxy option out of the DuoConfigError', () => {
    const err = (() => {
      try {
        return new DuoClient({
          clientId: sim.clientId,
          clientSecret: sim.clientSecret,
          apiHost: sim.apiHost,
          redirectUri: 'https://app.example/auth/duo/callback',
          proxy: `http://${PROXY_USER}:${CANARY}@proxy.example:3128/?q=${CANARY}`,
        });
      } catch (e) {
        return e;
      }
    })();
    expect(err).toBeInstanceOf(DuoConfigError);
    seen.push(String(err), inspect(err, { depth: 10 }));
  });

  it('should find the canary in no log line, response, message, /health or /metrics', async () => {
    const app = apps[0];
    await observe(app);
    const haystacks = [...seen, ...logLines];
    expect(haystacks.length).toBeGreaterThan(20);
    // The logs did see the failures (the search is not vacuous).
    expect(logLines.join('\n')).toMatch(/unavailable|unreachable|Duo/);
    for (const text of haystacks) {
      for (const secret of SECRET_FORMS) {
        expect(text).not.toContain(secret);
      }
    }
  });
});
