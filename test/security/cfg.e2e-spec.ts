/**
 * Catalogue 2.7 (CFG): configuration validation. The environment is checked by validateEnv (the
 * ConfigModule hook AppModule.forRoot uses), so most cases call it directly with a production
 * environment; CFG-01/02 also boot the REAL AppModule to show start-up fails, and CFG-09/11 run
 * the app against the in-process simulator.
 *
 * Referenced: CFG-09 readiness is also covered by test/operate.e2e-spec.ts ("readiness with
 * HEALTH_DUO_REQUIRED=true ... cached Duo health check failed").
 * Not applicable: CFG-08 "memory store with instance count > 1" and "Redis/DB URL missing in
 * multi-instance mode" — the app has no instance-count setting to compare with; multi-instance
 * mode is exactly "REDIS_URL is set" (documented: memory mode needs sticky sessions, MUL-01).
 */
import { afterAll, beforeAll, describe, expect, it, jest } from '@jest/globals';
import { Logger } from '@nestjs/common';
import { validateEnv } from '../../src/config/env.validation.js';
import { DuoClient } from '@duo-nest/core';
import { startSimulator } from '@duo-nest/simulator';
import { startApp, Browser } from '../support/app-harness.js';
import { JSON_ACCEPT, signOnToCallback, uniqueUser } from '../support/duo-flow.js';
import {
  rawJws,
  sessionId,
  type Stack,
  startStack,
  withIdToken,
} from '../support/security-stack.js';

jest.setTimeout(30_000);

const SECRET = 'Q7x'.repeat(13) + 'Z'; // 40 characters, letters and digits
const PROD: Record<string, string> = {
  NODE_ENV: 'production',
  PUBLIC_URL: 'https://app.example.com',
  DUO_CLIENT_ID: 'DIABCDEFGHIJ12345678',
  DUO_CLIENT_SECRET: SECRET,
  DUO_API_HOST: 'api-1a2b3c4d.duosecurity.com',
  DUO_REDIRECT_URI: 'https://app.example.com/auth/duo/callback',
  SESSION_SECRET: 'k'.repeat(20) + 'Jq93nVb0aLzP4tYw8sR2',
  AUDIT_CHAIN_KEY: 'm'.repeat(20) + 'Hx81cVn3QpLs7dKw0zT6',
  DATABASE_URL: 'postgres://app@db.internal:5432/duo',
  REDIS_URL: 'redis://redis.internal:6379',
};

/** The validation error for this environment (or undefined when it is valid). */
function problem(env: Record<string, string | undefined>): Error | undefined {
  try {
    validateEnv(env);
    return undefined;
  } catch (err) {
    return err as Error;
  }
}

function expectRefused(
  overrides: Record<string, string | undefined>,
  variable: string,
  secretValue?: string,
) {
  const err = problem({ ...PROD, ...overrides });
  expect(err?.message).toMatch(new RegExp(`\\b${variable}\\b`));
  if (secretValue) {
    expect(err?.message).not.toContain(secretValue);
  }
}

describe('CFG: configuration validation', () => {
  it('CFG-00 should accept the baseline production environment the other cases change', () => {
    expect(problem(PROD)).toBeUndefined();
  });

  it.each([
    ['19 characters', 'DIABCDEFGHIJ1234567'],
    ['21 characters', 'DIABCDEFGHIJ123456789'],
    ['empty', ''],
    ['padded with spaces', ' DIABCDEFGHIJ12345678 '],
  ])(
    'CFG-01 should refuse a client id that is %s, naming the field and never the value',
    (_w, id) => {
      expectRefused({ DUO_CLIENT_ID: id }, 'DUO_CLIENT_ID', id.trim() || undefined);
    },
  );

  it('CFG-01 should fail the start-up of the real app for a bad client id', async () => {
    await expect(
      startApp({
        DUO_CLIENT_ID: 'DISHORT',
        DUO_CLIENT_SECRET: SECRET,
        DUO_API_HOST: 'http://127.0.0.1:9',
      }),
    ).rejects.toThrow(/DUO_CLIENT_ID/);
  });

  it.each([
    ['39 characters', SECRET.slice(1)],
    ['empty', ''],
    ['"undefined"', 'undefined'],
    ['"changeme"', 'changeme'],
    ['padded with spaces', ` ${SECRET} `],
  ])('CFG-02 should refuse a client secret that is %s', (_w, secret) => {
    expectRefused({ DUO_CLIENT_SECRET: secret }, 'DUO_CLIENT_SECRET', secret.trim() || undefined);
  });

  it('CFG-02 should never let an empty secret reach the id_token verifier', () => {
    expect(
      () =>
        new DuoClient({
          clientId: 'DIABCDEFGHIJ12345678',
          clientSecret: '',
          apiHost: 'api-1a2b3c4d.duosecurity.com',
          redirectUri: 'https://app.example.com/auth/duo/callback',
        }),
    ).toThrow(/clientSecret/);
  });

  it.each([
    ['empty', ''],
    ['with https://', 'https://api-1a2b3c4d.duosecurity.com'],
    ['with a path', 'api-1a2b3c4d.duosecurity.com/oauth'],
    ['with a port', 'api-1a2b3c4d.duosecurity.com:8443'],
    ['with a query', 'api-1a2b3c4d.duosecurity.com?x=1'],
    ['with a trailing dot', 'api-1a2b3c4d.duosecurity.com.'],
    ['an IP literal', '203.0.113.7'],
    ['localhost', 'localhost'],
    ['not a Duo host', 'api-1a2b3c4d.evil.example'],
    ['a look-alike suffix', 'api-1a2b3c4d.duosecurity.com.evil.example'],
    ['http:// (the simulator setting)', 'http://127.0.0.1:4000'],
  ])('CFG-03 should refuse in production an API host %s', (_w, host) => {
    expectRefused({ DUO_API_HOST: host }, 'DUO_API_HOST');
  });

  it.each([
    ['a commercial Duo host', 'api-1a2b3c4d.duosecurity.com'],
    ['a federal Duo host', 'api-1a2b3c4d.duofederal.com'],
  ])('CFG-03 should accept in production %s', (_w, host) => {
    expect(problem({ ...PROD, DUO_API_HOST: host })).toBeUndefined();
  });

  it('CFG-03 should accept the local simulator over http:// outside production only', () => {
    expect(
      problem({
        ...PROD,
        NODE_ENV: 'development',
        PUBLIC_URL: 'http://localhost:3000',
        DUO_REDIRECT_URI: 'http://localhost:3000/auth/duo/callback',
        DUO_API_HOST: 'http://127.0.0.1:4000',
      }),
    ).toBeUndefined();
  });

  it.each([
    ['relative', '/auth/duo/callback'],
    ['http:// in production', 'http://app.example.com/auth/duo/callback'],
    ['with a fragment', 'https://app.example.com/auth/duo/callback#x'],
    ['not the mounted callback route', 'https://app.example.com/auth/other'],
  ])('CFG-04 should refuse a redirect URI that is %s', (_w, uri) => {
    expectRefused({ DUO_REDIRECT_URI: uri }, 'DUO_REDIRECT_URI');
  });

  it('CFG-05 should refuse an invalid failmode and default an absent one to closed (pinned)', () => {
    expectRefused({ DUO_FAILMODE: 'sometimes' }, 'DUO_FAILMODE');
    expect(validateEnv({ ...PROD, DUO_FAILMODE: undefined }).DUO_FAILMODE).toBe('closed');
  });

  it.each([
    ['a leeway over 300 s', { DUO_CLOCK_TOLERANCE_MS: '300001' }, 'DUO_CLOCK_TOLERANCE_MS'],
    ['a negative leeway', { DUO_CLOCK_TOLERANCE_MS: '-1' }, 'DUO_CLOCK_TOLERANCE_MS'],
    ['a timeout of 0 (infinite)', { DUO_TIMEOUT_MS: '0' }, 'DUO_TIMEOUT_MS'],
    ['a pending TTL over 1 h', { DUO_PENDING_TTL_MS: '3600001' }, 'DUO_PENDING_TTL_MS'],
  ])('CFG-06 should refuse %s', (_w, env, variable) => {
    expectRefused(env, variable);
  });

  it('CFG-07 should refuse production when TLS verification is switched off for the process', () => {
    expectRefused({ NODE_TLS_REJECT_UNAUTHORIZED: '0' }, 'NODE_TLS_REJECT_UNAUTHORIZED');
  });

  it.each([
    ['a missing session secret', { SESSION_SECRET: undefined }, 'SESSION_SECRET'],
    ['a short session secret', { SESSION_SECRET: 'short-secret' }, 'SESSION_SECRET'],
    ['SQLite in production', { DATABASE_URL: 'sqlite:./data/audit.sqlite' }, 'DATABASE_URL'],
    ['no database in production (SQLite default)', { DATABASE_URL: undefined }, 'DATABASE_URL'],
  ])('CFG-08 should refuse %s', (_w, env, variable) => {
    expectRefused(env, variable);
  });

  it('CFG-09 should deny (never fail open) and log invalid_client when the secret is well-formed but wrong', async () => {
    const sim = await startSimulator({ auto: 'allow' });
    const app = await startApp({
      DUO_CLIENT_ID: sim.clientId,
      DUO_CLIENT_SECRET: 'W'.repeat(40),
      DUO_API_HOST: sim.url,
      DUO_FAILMODE: 'open',
    });
    const error = jest.spyOn(Logger.prototype, 'error');
    try {
      const browser = new Browser();
      const res = await browser.postForm(
        `${app.url}/login`,
        { username: uniqueUser('cfg09') },
        { headers: JSON_ACCEPT },
      );
      // The start's health check fails closed: 503 for the user, invalid_client in the log and /health.
      expect(res.status).toBe(503);
      expect(await res.json()).toMatchObject({ error: 'unavailable' });
      expect(sessionId(browser)).toBeUndefined();
      expect(error.mock.calls.some((c) => String(c[0]).includes('invalid_client'))).toBe(true);
      const health = (await (await fetch(`${app.url}/health`)).json()) as {
        duo?: { ok?: boolean; error?: string };
      };
      expect(JSON.stringify(health)).toContain('invalid_client');
    } finally {
      error.mockRestore();
      await app.close();
      await sim.close();
    }
  });

  it('CFG-10 should mask the secret, the DB password and the Redis password in validation errors', () => {
    const err = problem({
      ...PROD,
      DUO_CLIENT_SECRET: 'Sup3rSecretValue',
      DATABASE_URL: 'mysql://app:DbPassw0rd@db/duo',
      REDIS_URL: 'http://:RedisPassw0rd@redis:6379',
    });
    expect(err?.message).toMatch(/DUO_CLIENT_SECRET/);
    expect(err?.message).toMatch(/DATABASE_URL/);
    expect(err?.message).toMatch(/REDIS_URL/);
    for (const secret of ['Sup3rSecretValue', 'DbPassw0rd', 'RedisPassw0rd']) {
      expect(err?.message).not.toContain(secret);
    }
  });

  describe('CFG-11 secret rotation', () => {
    let stack: Stack;
    beforeAll(async () => {
      stack = await startStack();
    });
    afterAll(async () => {
      await stack?.close();
    });

    it('CFG-11 should fail an in-flight sign-on cleanly when Duo signs with the rotated secret', async () => {
      const browser = new Browser();
      const callback = await signOnToCallback(browser, stack.app.url, uniqueUser('cfg11'));
      const rotated = 'R'.repeat(40);
      stack.proxy.onToken = (a) =>
        withIdToken(a, rawJws({ alg: 'HS512', typ: 'JWT' }, a.claims ?? {}, rotated));
      try {
        const res = await browser.fetch(callback, { headers: JSON_ACCEPT });
        expect(res.status).toBe(401);
        expect(await res.json()).toMatchObject({ error: 'id_token_signature' });
        expect(sessionId(browser)).toBeUndefined();
      } finally {
        stack.proxy.onToken = undefined;
      }
    });

    it('CFG-11 should sign new sign-ons on with the new secret once the app is restarted with it', async () => {
      const sim = await startSimulator({
        auto: 'allow',
        clientId: stack.sim.clientId,
        clientSecret: 'N'.repeat(40),
      });
      const app = await startApp({
        DUO_CLIENT_ID: sim.clientId,
        DUO_CLIENT_SECRET: 'N'.repeat(40),
        DUO_API_HOST: sim.url,
      });
      try {
        const browser = new Browser();
        const callback = await signOnToCallback(browser, app.url, uniqueUser('cfg11'));
        expect((await browser.fetch(callback)).status).toBe(303);
      } finally {
        await app.close();
        await sim.close();
      }
    });
  });
});
