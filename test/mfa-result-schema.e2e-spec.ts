import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { DuoClient, type DuoMfaResult } from '@duo-nest/core';
import { startSimulator, type RunningSimulator } from '@duo-nest/simulator';

// Real MFA results (our client against the simulator over HTTP) validated against the seed's output
// schema, shared/duo/mfa-output.schema.json (a copy lives in test/fixtures so the suite runs alone).
const schema = JSON.parse(
  readFileSync(new URL('./fixtures/mfa-output.schema.json', import.meta.url), 'utf8'),
) as object;
const validate = new Ajv2020({ allErrors: true, strict: false }).compile(schema);

let sim: RunningSimulator;
let client: DuoClient;

beforeAll(async () => {
  sim = await startSimulator({ port: 0, auto: 'allow' });
  client = new DuoClient({
    clientId: sim.clientId,
    clientSecret: sim.clientSecret,
    apiHost: sim.url,
    redirectUri: 'http://localhost:3000/auth/duo/callback',
    allowInsecureHttp: true,
  });
});
afterAll(() => sim?.close());

async function signOn(username: string): Promise<DuoMfaResult> {
  const state = client.generateState();
  const nonce = client.generateNonce();
  const res = await fetch(await client.createAuthUrl(username, state, { nonce }), {
    redirect: 'manual',
  });
  expect(res.status).toBe(302);
  const back = new URL(res.headers.get('location')!);
  expect(back.searchParams.get('state')).toBe(state);
  return client.exchangeAuthorizationCode(back.searchParams.get('duo_code')!, { username, nonce });
}

describe('MFA result shape (shared/duo/mfa-output.schema.json)', () => {
  it('should keep the test copy of the schema identical to shared/ when shared/ is beside the repo', () => {
    let shared: string | undefined;
    try {
      shared = readFileSync(
        new URL('../../shared/duo/mfa-output.schema.json', import.meta.url),
        'utf8',
      );
    } catch {
      return; // the suite runs without shared/ too
    }
    expect(JSON.parse(shared)).toEqual(schema);
  });

  it.each(['alice', 'bob', 'alice.alias', 'bypass', 'newcomer'])(
    'should produce a schema-valid result when %s signs on',
    async (username) => {
      const result = await signOn(username);
      const ok = validate(result);
      expect(validate.errors ?? []).toEqual([]);
      expect(ok).toBe(true);
      expect(result.statusCode).toBe(200);
      expect(result.tokens.preferred_username).toBe(username);
      expect(result.tokens.nonce).toBeDefined();
      expect(result.headers['content-type']).toMatch(/^application\/json/);
    },
  );

  it('should reject a result without auth_context (the schema check can fail)', async () => {
    const result = await signOn('alice');
    const { auth_context: _dropped, ...tokens } = result.tokens;
    expect(validate({ ...result, tokens })).toBe(false);
    expect(validate({ ...result, statusCode: '200' })).toBe(false);
  });
});
