// An API host written with an explicit :443 against a simulator whose one public host is
// 127.0.0.1 (port 443, so never written), over TLS. Listening on 443 needs privileges, so the
// client's connections are mapped to the simulator's real port below the URL, as a load balancer
// in front of Duo would: the URL, Host header, aud and iss all say 127.0.0.1 without a port.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { DuoClient, DuoError } from '@duo-nest/core';
import { startSimulator, type RunningSimulator } from '@duo-nest/simulator';
import { Agent, buildConnector, fetch as undiciFetch } from 'undici';
import { makeSelfSignedCertificate } from './support/tls.js';

const REDIRECT_URI = 'https://app.example.test/auth/duo/callback';
const USER = 'alice';

let sim: RunningSimulator;
let agent: Agent;
let viaPort443: typeof fetch;

beforeAll(async () => {
  const { cert, key } = makeSelfSignedCertificate();
  sim = await startSimulator({ tls: { cert, key }, auto: 'allow', publicHost: '127.0.0.1:443' });
  const port = Number(new URL(sim.url).port);
  const connect = buildConnector({ ca: cert, rejectUnauthorized: true });
  // Every connection for port 443 goes to the simulator's port; TLS still checks the name.
  agent = new Agent({
    connect: (opts, callback) =>
      connect({ ...opts, hostname: '127.0.0.1', port: String(port) }, callback),
  });
  viaPort443 = ((input: string | URL, init?: RequestInit) =>
    undiciFetch(input, { ...(init as object), dispatcher: agent })) as unknown as typeof fetch;
});
afterAll(async () => {
  await agent?.close();
  await sim?.close();
});

function client(apiHost: string): DuoClient {
  return new DuoClient({
    clientId: sim.clientId,
    clientSecret: sim.clientSecret,
    apiHost,
    redirectUri: REDIRECT_URI,
    proxy: false,
    timeoutMs: 3000,
    fetch: viaPort443,
  });
}

/** Runs authorize through the same mapped connection and returns the code from the 302. */
async function codeFor(duo: DuoClient, nonce: string): Promise<string> {
  const state = duo.generateState();
  const res = await viaPort443(await duo.createAuthUrl(USER, state, { nonce }), {
    redirect: 'manual',
  });
  expect(res.status).toBe(302);
  const back = new URL(res.headers.get('location')!);
  expect(back.searchParams.get('state')).toBe(state);
  return back.searchParams.get('duo_code')!;
}

describe('API host 127.0.0.1:443 against Duo at 127.0.0.1 (TLS)', () => {
  it('should normalise the public host to the portless name', () => {
    expect(sim.apiHost).toBe('127.0.0.1');
    expect(sim.publicOrigin).toBe('https://127.0.0.1');
    expect(sim.control.state().publicHost).toBe('127.0.0.1');
  });

  it('should pass the health check when the API host carries :443', async () => {
    await expect(client('127.0.0.1:443').healthCheck()).resolves.toHaveProperty('timestamp');
  });

  it('should complete authorize and the token exchange with the portless issuer', async () => {
    const duo = client('127.0.0.1:443');
    const nonce = duo.generateNonce();
    const code = await codeFor(duo, nonce);
    const result = await duo.exchangeAuthorizationCode(code, { username: USER, nonce });
    expect(result.tokens.iss).toBe('https://127.0.0.1/oauth/v1/token');
    expect(result.tokens.preferred_username).toBe(USER);
    expect(sim.control.stats()).toMatchObject({ token_success: 1 });
  });

  it('should refuse a client that names localhost, as Duo refuses another name', async () => {
    const other = client('localhost:443');
    const health = await other.healthCheck().catch((err: unknown) => err);
    expect(health).toBeInstanceOf(DuoError);
    expect((health as DuoError).code).toBe('invalid_client');

    const good = client('127.0.0.1:443');
    const nonce = good.generateNonce();
    const code = await codeFor(good, nonce);
    const token = await other
      .exchangeAuthorizationCode(code, { username: USER, nonce })
      .catch((err: unknown) => err);
    expect((token as DuoError).code).toBe('invalid_client');
  });
});
