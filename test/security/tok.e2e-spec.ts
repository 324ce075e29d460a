/**
 * Catalogue 2.4 (TOK): token-endpoint and health-check faults, through the REAL app over HTTP.
 * The simulator's fault switches give 400/401/429/500/timeout/malformed_json/huge_body; the proxy of
 * support.ts answers what the simulator cannot (502-504, a redirect, HTML, empty, null, [], an error
 * body echoing the request). The app runs with DUO_FAILMODE=open on purpose: every failure after
 * the redirect must still fail closed.
 *
 * Owned elsewhere (not duplicated here): TOK-18 (circuit breaker) and TOK-19 (bounded outbound
 * concurrency, /health latency) are the defences work's tests — see docs/security-cases-choices.md.
 */
import { afterAll, beforeAll, describe, expect, it, jest } from '@jest/globals';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Logger } from '@nestjs/common';
import { validateEnv } from '../../src/config/env.validation.js';
import { startSimulator, type RunningSimulator, type TokenFault } from '@duo-nest/simulator';
import { startApp, type RunningApp, Browser } from '../support/app-harness.js';
import { makeSelfSignedCertificate } from '../support/tls.js';
import {
  auditEvents,
  JSON_ACCEPT,
  postLikeBrowser,
  signOnToCallback,
  uniqueUser,
} from '../support/duo-flow.js';
import { sessionId, type Stack, startStack, type TokenReply } from '../support/security-stack.js';

jest.setTimeout(30_000);

let stack: Stack;
beforeAll(async () => {
  // One fault per test: the circuit breaker (its own tests) must not open between them.
  stack = await startStack({
    DUO_FAILMODE: 'open',
    DUO_TIMEOUT_MS: '800',
    DUO_BREAKER_THRESHOLD: '1000',
  });
});
afterAll(async () => {
  await stack?.close();
});

interface Result {
  status: number;
  error?: string;
  message?: string;
  text: string;
  username: string;
  browser: Browser;
  tokenCalls: number;
  callback: string;
}

async function exchange(how: { fault?: TokenFault; reply?: TokenReply }): Promise<Result> {
  const browser = new Browser();
  const username = uniqueUser('tok');
  const callback = await signOnToCallback(browser, stack.app.url, username);
  const before = stack.sim.control.stats().token;
  if (how.fault) {
    stack.sim.control.setFaults({ token: how.fault, once: true });
  }
  if (how.reply) {
    const reply = how.reply;
    stack.proxy.onToken = () => reply;
  }
  try {
    const res = await browser.fetch(callback, { headers: JSON_ACCEPT });
    const text = await res.text();
    const body = (() => {
      try {
        return JSON.parse(text) as { error?: string; message?: string };
      } catch {
        return {};
      }
    })();
    return {
      status: res.status,
      error: body.error,
      message: body.message,
      text,
      username,
      browser,
      tokenCalls: stack.sim.control.stats().token - before,
      callback,
    };
  } finally {
    stack.proxy.onToken = undefined;
    stack.sim.control.setFaults({ token: null });
  }
}

/** Fail closed: no session, no mfa_succeeded, and the failure in the audit trail. */
async function expectClosed(r: Result, status: number, error: string): Promise<void> {
  expect({ status: r.status, error: r.error }).toEqual({ status, error });
  expect(sessionId(r.browser)).toBeUndefined();
  const rows = await auditEvents(stack.app, { username: r.username }, { limit: 500 });
  expect(rows.some((e) => e.type === 'mfa_succeeded' || e.type === 'mfa_failopen')).toBe(false);
  expect(rows.find((e) => e.type === 'mfa_failed')?.reason).toBe(error);
}

/** An app whose Duo is somewhere else (a black hole, a bad certificate, a name that does not resolve). */
async function appAgainst(
  apiHost: string,
  extra: Record<string, string> = {},
): Promise<RunningApp> {
  return startApp({
    DUO_CLIENT_ID: 'DIABCDEFGHIJ12345678',
    DUO_CLIENT_SECRET: 'S'.repeat(40),
    DUO_API_HOST: apiHost,
    DUO_TIMEOUT_MS: '500',
    ...extra,
  });
}

async function loginStatus(app: RunningApp): Promise<{ status: number; error?: string }> {
  const res = await postLikeBrowser(
    new Browser(),
    app.url,
    '/login',
    { username: uniqueUser('tok') },
    JSON_ACCEPT,
  );
  const body = (await res.json().catch(() => ({}))) as { error?: string };
  return { status: res.status, error: body.error };
}

describe('TOK: token endpoint and health-check faults', () => {
  it('TOK-01 should deny with 503 when Duo cannot be connected to (black-holed address)', async () => {
    const app = await appAgainst('http://10.255.255.1:9');
    try {
      expect(await loginStatus(app)).toEqual({ status: 503, error: 'unavailable' });
    } finally {
      await app.close();
    }
  });

  it('TOK-02 should deny with 503 when the token endpoint accepts the connection and never answers', async () => {
    await expectClosed(await exchange({ fault: 'timeout' }), 503, 'unavailable');
  });

  it('TOK-04 should not retry the token POST after a timeout', async () => {
    const r = await exchange({ fault: 'timeout' });
    expect(r.status).toBe(503);
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    expect(r.tokenCalls).toBe(1);
    expect(
      stack.proxy.tokenRequests.filter(
        (t) => t.form.get('code') === new URL(r.callback).searchParams.get('duo_code'),
      ),
    ).toHaveLength(1);
  });

  it('TOK-05 should answer invalid_grant with "start again" and no session', async () => {
    const r = await exchange({ fault: '400' });
    await expectClosed(r, 401, 'invalid_grant');
    expect(r.message).toMatch(/start again/);
  });

  it('TOK-06 should deny invalid_client, log it as an error and never fail open', async () => {
    const error = jest.spyOn(Logger.prototype, 'error');
    try {
      const r = await exchange({ fault: '401' });
      await expectClosed(r, 502, 'invalid_client');
      expect(error.mock.calls.some((c) => String(c[0]).includes('invalid_client'))).toBe(true);
    } finally {
      error.mockRestore();
    }
  });

  it('TOK-07 should deny a 429 without retrying', async () => {
    const r = await exchange({ fault: '429' });
    await expectClosed(r, 503, 'rate_limited');
    expect(r.tokenCalls).toBe(1);
  });

  it.each([
    ['500 (simulator)', { fault: '500' as const }],
    [
      '502',
      { reply: { status: 502, body: 'Bad Gateway', headers: { 'content-type': 'text/plain' } } },
    ],
    ['503', { reply: { status: 503, body: '' } }],
    [
      '504',
      {
        reply: {
          status: 504,
          body: '<html>timeout</html>',
          headers: { 'content-type': 'text/html' },
        },
      },
    ],
  ])('TOK-08 should fail closed on %s although failmode is open', async (_w, how) => {
    await expectClosed(await exchange(how), 503, 'unavailable');
  });

  it('TOK-09 should not follow a redirect from the token endpoint (the assertion goes nowhere else)', async () => {
    let hits = 0;
    const other: Server = createServer((_q, s) => {
      hits += 1;
      s.end('{}');
    });
    await new Promise<void>((r) => other.listen(0, '127.0.0.1', r));
    try {
      const target = `http://127.0.0.1:${(other.address() as AddressInfo).port}/oauth/v1/token`;
      const r = await exchange({ reply: { status: 302, headers: { location: target }, body: '' } });
      await expectClosed(r, 503, 'unavailable');
      expect(hits).toBe(0);
    } finally {
      await new Promise<void>((r) => other.close(() => r()));
    }
  });

  it.each([
    ['HTML', { reply: { body: '<html>hi</html>', headers: { 'content-type': 'text/html' } } }],
    ['an empty body', { reply: { body: '' } }],
    ['null', { reply: { body: 'null' } }],
    ['[]', { reply: { body: '[]' } }],
    ['truncated JSON (simulator)', { fault: 'malformed_json' as const }],
    [
      'a JSON body labelled text/plain',
      { reply: { body: '{}', headers: { 'content-type': 'text/plain' } } },
    ],
  ])('TOK-10 should reject a 200 with %s as token_response', async (_w, how) => {
    await expectClosed(await exchange(how), 502, 'token_response');
  });

  it('TOK-10 should reject a genuine answer relabelled text/plain as token_response', async () => {
    stack.proxy.onToken = undefined;
    const browser = new Browser();
    const username = uniqueUser('tok');
    const callback = await signOnToCallback(browser, stack.app.url, username);
    stack.proxy.onToken = (a) => ({ body: a.text, headers: { 'content-type': 'text/plain' } });
    const res = await browser.fetch(callback, { headers: JSON_ACCEPT });
    stack.proxy.onToken = undefined;
    expect(res.status).toBe(502);
    expect(sessionId(browser)).toBeUndefined();
  });

  it.each([
    ['error fields', { reply: { body: { error: 'invalid_grant', error_description: 'nope' } } }],
    [
      'an id_token that is an object',
      {
        reply: {
          body: { id_token: {}, access_token: 'a', expires_in: 3600, token_type: 'Bearer' },
        },
      },
    ],
  ])('TOK-11 should reject a 200 JSON with %s as token_response', async (_w, how) => {
    await expectClosed(await exchange(how), 502, 'token_response');
  });

  it('TOK-12 should abort a 5 MiB answer at the 64 KiB cap', async () => {
    await expectClosed(await exchange({ fault: 'huge_body' }), 502, 'token_response');
  });

  it('TOK-14 should deny with 503 when Duo presents a self-signed certificate', async () => {
    let sim: RunningSimulator | undefined;
    let app: RunningApp | undefined;
    try {
      sim = await startSimulator({
        auto: 'allow',
        tls: makeSelfSignedCertificate(),
      });
      app = await startApp({
        DUO_CLIENT_ID: sim.clientId,
        DUO_CLIENT_SECRET: sim.clientSecret,
        DUO_API_HOST: sim.apiHost,
      });
      const error = jest.spyOn(Logger.prototype, 'error');
      try {
        expect(await loginStatus(app)).toEqual({ status: 503, error: 'unavailable' });
        expect(error).toHaveBeenCalled();
      } finally {
        error.mockRestore();
      }
      expect(sim.control.stats().health_check).toBe(0);
    } finally {
      await app?.close();
      await sim?.close();
    }
  });

  it('TOK-15 should refuse an http:// Duo endpoint when the configuration loads in production', () => {
    expect(() =>
      validateEnv({
        NODE_ENV: 'production',
        PUBLIC_URL: 'https://app.example.com',
        DUO_CLIENT_ID: 'DIABCDEFGHIJ12345678',
        DUO_CLIENT_SECRET: 'Q7'.repeat(20),
        DUO_API_HOST: 'http://api-1a2b3c4d.duosecurity.com',
      }),
    ).toThrow(/DUO_API_HOST/);
  });

  it('TOK-16 should deny with 503 when the Duo host name does not resolve', async () => {
    const app = await appAgainst('api-doesnotexist.invalid');
    try {
      expect(await loginStatus(app)).toEqual({ status: 503, error: 'unavailable' });
    } finally {
      await app.close();
    }
  });

  it('TOK-17 should show the user none of an error body that echoes the request', async () => {
    let code = '';
    let assertion = '';
    stack.proxy.onToken = () => {
      const last = stack.proxy.tokenRequests[stack.proxy.tokenRequests.length - 1];
      code = last.form.get('code') ?? '';
      assertion = last.form.get('client_assertion') ?? '';
      return {
        status: 400,
        body: {
          error: 'invalid_grant',
          error_description: `ECHO-MARKER code=${code} assertion=${assertion}`,
        },
      };
    };
    const warn = jest.spyOn(Logger.prototype, 'warn');
    try {
      const r = await exchange({});
      expect(r.status).toBe(401);
      expect(r.text).not.toContain('ECHO-MARKER');
      expect(r.text).not.toContain(code);
      expect(r.text).not.toContain(assertion);
      const logged = warn.mock.calls.map((c) => String(c[0])).join('\n');
      expect(logged).not.toContain(code);
      expect(logged).not.toContain(assertion);
    } finally {
      warn.mockRestore();
    }
  });
});
