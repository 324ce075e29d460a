import { afterAll, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import { Client } from '@duosecurity/duo_universal';
import { Agent, request } from 'node:https';
import { startSimulator } from '@duo-nest/simulator';
import { makeSelfSignedCertificate } from './support/tls.js';
import type { HealthFault, RunningSimulator, TokenFault } from '../packages/simulator/src/types.js';

// Duo's official Node SDK (3.0.0) against the simulator over HTTPS. The SDK pins Duo's CAs: its
// constructor builds `this.axios = axios.create({ httpsAgent: new https.Agent({ ca: DUO_PINNED_CERT }) })`
// (dist/index.mjs). The test replaces that agent on the instance with one that trusts only the
// throw-away self-signed certificate made below, so TLS verification stays on, just with our CA.
// The SDK sets no timeout at all; the test gives its axios instance one so a never-answering
// simulator fails the call instead of hanging the suite.

const REDIRECT = 'https://app.example.test/auth/duo/callback';
const NONCE = 'sdk-nonce-0123456789abcdef';
/** Short client timeout for the never-answering faults; a generous one elsewhere (busy CI). */
const FAULT_TIMEOUT_MS = 500;
const SDK_TIMEOUT_MS = 10_000;

let cert: Buffer;
let sim: RunningSimulator;
let pageSim: RunningSimulator;

function sdkFor(s: RunningSimulator, secret = s.clientSecret, timeoutMs = SDK_TIMEOUT_MS): Client {
  const client = new Client({
    clientId: s.clientId,
    clientSecret: secret,
    apiHost: s.apiHost,
    redirectUrl: REDIRECT,
  });
  const axios = (
    client as unknown as {
      axios: { defaults: { httpsAgent: unknown; timeout: number } };
    }
  ).axios;
  axios.defaults.httpsAgent = new Agent({ ca: cert });
  axios.defaults.timeout = timeoutMs;
  return client;
}

/** A browser-ish HTTPS request that trusts the test certificate and follows nothing. */
function browser(
  url: string,
  form?: Record<string, string>,
): Promise<{ status: number; location: string | undefined; body: string }> {
  return new Promise((resolve, reject) => {
    const body = form ? new URLSearchParams(form).toString() : undefined;
    const req = request(
      url,
      {
        method: form ? 'POST' : 'GET',
        ca: cert,
        headers: {
          'user-agent': 'Mozilla/5.0 (X11; Linux x86_64) Chrome/131.0.0.0',
          ...(body ? { 'content-type': 'application/x-www-form-urlencoded' } : {}),
        },
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (text += chunk));
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, location: res.headers.location, body: text }),
        );
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

/** SDK auth URL (nonce added in the query, as Duo's Python SDK does) → authorize → code. */
async function signIn(s: RunningSimulator, client: Client, username = 'alice') {
  const state = client.generateState();
  const url = `${await client.createAuthUrl(username, state)}&nonce=${NONCE}`;
  const res = await browser(url);
  expect(res.status).toBe(302);
  const back = new URL(res.location!);
  expect(back.searchParams.get('state')).toBe(state);
  return back.searchParams.get('duo_code')!;
}

beforeAll(async () => {
  const tls = makeSelfSignedCertificate();
  cert = tls.cert;
  sim = await startSimulator({ tls, auto: 'allow' });
  pageSim = await startSimulator({ tls });
});
afterAll(async () => {
  await Promise.all([sim?.close(), pageSim?.close()]);
});
beforeEach(() => sim.control.reset());

describe('official SDK against the simulator', () => {
  it('should pass the health check when the credentials are right', async () => {
    const result = await sdkFor(sim).healthCheck();
    expect(result).toMatchObject({ stat: 'OK', response: { timestamp: expect.any(Number) } });
  });

  it("should fail the health check with Duo's message when the secret is wrong", async () => {
    await expect(sdkFor(sim, 'w'.repeat(40)).healthCheck()).rejects.toThrow(
      'invalid_client: The provided client_assertion was invalid.',
    );
  });

  it('should complete the whole flow with the full claim set when the user approves in auto mode', async () => {
    const client = sdkFor(sim);
    await client.healthCheck();
    const code = await signIn(sim, client);
    const token = (await client.exchangeAuthorizationCodeFor2FAResult(
      code,
      'alice',
      NONCE,
    )) as unknown as Record<string, unknown>;
    expect(token).toMatchObject({
      iss: `https://${sim.apiHost}/oauth/v1/token`,
      sub: 'alice',
      aud: sim.clientId,
      preferred_username: 'alice',
      nonce: NONCE,
      auth_result: { result: 'allow', status: 'allow', status_msg: 'Login Successful' },
      auth_context: {
        txid: expect.any(String),
        timestamp: token.auth_time,
        isotimestamp: expect.stringMatching(/\.\d{6}\+00:00$/),
        user: {
          name: 'alice',
          key: expect.stringMatching(/^DU[A-Z0-9]{18}$/),
          groups: ['admins', 'staff'],
        },
        application: { name: 'duo-nest demo', key: sim.clientId },
        auth_device: {
          ip: null,
          location: { city: null, state: null, country: null },
          name: expect.any(String),
        },
        access_device: {
          ip: '127.0.0.1',
          hostname: null,
          epkey: expect.stringMatching(/^EP/),
          browser: 'Chrome',
          os: 'Linux',
        },
        factor: 'duo_push',
        event_type: 'authentication',
        result: 'success',
        reason: 'user_approved',
        alias: '',
        email: 'alice@example.com',
        ood_software: null,
        trusted_endpoint_status: 'unknown',
      },
    });
    expect(token.exp).toBe((token.auth_time as number) + 3600);
    expect(Number.isInteger(token.iat)).toBe(true);
  });

  it('should complete the flow when the approve form of the prompt page is posted', async () => {
    const client = sdkFor(pageSim);
    const state = client.generateState();
    const page = await browser(await client.createAuthUrl('bob', state));
    expect(page.status).toBe(200);
    expect(page.body).toContain('id="username">bob<');
    const txn = /name="txn" value="([^"]+)"/.exec(page.body)![1];
    const approved = await browser(`${pageSim.url}/frame/prompt`, {
      txn,
      action: 'approve',
      factor: 'duo_push',
    });
    const back = new URL(approved.location!);
    expect(back.searchParams.get('state')).toBe(state);
    const token = await client.exchangeAuthorizationCodeFor2FAResult(
      back.searchParams.get('duo_code')!,
      'bob',
    );
    expect(token.preferred_username).toBe('bob');
  });

  it('should reject the second exchange when a code is reused', async () => {
    const client = sdkFor(sim);
    const code = await signIn(sim, client);
    await client.exchangeAuthorizationCodeFor2FAResult(code, 'alice', NONCE);
    await expect(
      client.exchangeAuthorizationCodeFor2FAResult(code, 'alice', NONCE),
    ).rejects.toThrow(/^invalid_grant: The provided authorization grant/);
  });

  // How the SDK fails for each injected fault, i.e. what it would say if Duo answered that way.
  // `null` = the SDK accepts it (it checks less than a careful client should).
  const tokenCases: [TokenFault, RegExp | null][] = [
    ['400', /^invalid_grant: The provided authorization grant/],
    ['401', /^invalid_client: The provided client_assertion was invalid\.$/],
    ['429', /^Too Many Requests: Rate limit exceeded$/],
    ['500', /^Result missing expected data$/],
    ['timeout', /timeout of 500ms exceeded/],
    ['malformed_json', /^Result missing expected data$/],
    ['huge_body', null],
    ['bad_signature', /^Error decoding JWT$/],
    ['wrong_alg_hs256', /^Error decoding JWT$/],
    ['alg_none', /^Error decoding JWT$/],
    ['wrong_iss', /^Error decoding JWT$/],
    ['wrong_aud', /^Error decoding JWT$/],
    ['aud_array', null],
    ['wrong_nonce', /^The nonce is invalid$/],
    ['missing_nonce', /^The nonce is invalid$/],
    ['expired', /^Error decoding JWT$/],
    ['just_inside_leeway', null],
    ['future_iat', null],
    ['wrong_username', /^The username is invalid$/],
    ['case_changed_username', /^The username is invalid$/],
    ['missing_id_token', /^Result missing expected data$/],
    ['bad_token_type', /^Result missing expected data$/],
    ['string_expires_in', null],
  ];

  it.each(tokenCases)(
    'should see the %s token fault the way it would see it from Duo',
    async (fault, expected) => {
      const timeout = fault === 'timeout' ? FAULT_TIMEOUT_MS : SDK_TIMEOUT_MS;
      const client = sdkFor(sim, sim.clientSecret, timeout);
      const code = await signIn(sim, client);
      sim.control.setFaults({ token: fault, once: true });
      const exchange = client.exchangeAuthorizationCodeFor2FAResult(code, 'alice', NONCE);
      if (expected) {
        await expect(exchange).rejects.toThrow(expected);
      } else {
        await expect(exchange).resolves.toMatchObject({ preferred_username: 'alice' });
      }
    },
  );

  const healthCases: [HealthFault, RegExp][] = [
    ['down', /^Result missing expected data$/],
    ['500', /^Result missing expected data$/],
    ['fail_envelope', /^invalid_client: The provided client_assertion was invalid\.$/],
    ['timeout', /timeout of 500ms exceeded/],
    ['reset', /socket hang up|ECONNRESET/],
  ];

  it.each(healthCases)(
    'should fail the health check when the %s health fault is set',
    async (fault, expected) => {
      sim.control.setFaults({ health: fault, once: true });
      const timeout = fault === 'timeout' ? FAULT_TIMEOUT_MS : SDK_TIMEOUT_MS;
      await expect(sdkFor(sim, sim.clientSecret, timeout).healthCheck()).rejects.toThrow(expected);
    },
  );
});
