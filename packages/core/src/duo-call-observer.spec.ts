import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { FakeDuoHttp, json } from '../../../test/fakes/fake-duo-http.js';
import { DuoClient } from './duo.client.js';
import type { DuoCallEndpoint, DuoCallObserver } from './duo-client-options.js';

const duo = new FakeDuoHttp();
const NONCE = 'nonce-0123456789abcdefghijklmnopqrstu';

beforeAll(async () => {
  await duo.start();
});
afterAll(async () => {
  await duo.stop();
});

function client(onDuoCall?: DuoCallObserver): DuoClient {
  return new DuoClient({
    clientId: 'DIABCDEFGHIJ12345678',
    clientSecret: 'abcdefghijklmnopqrstuvwxyz0123456789ABCD',
    apiHost: duo.apiHost,
    redirectUri: 'http://localhost:3000/auth/duo/callback',
    allowInsecureHttp: true,
    timeoutMs: 1000,
    onDuoCall,
  });
}

type Call = [DuoCallEndpoint, string, number];

describe('DuoClient onDuoCall observer', () => {
  it('should report a successful health check with its duration when Duo answers OK', async () => {
    duo.handler = (_req, res) => json(res, 200, { stat: 'OK', response: { timestamp: 1 } });
    const calls: Call[] = [];
    await client((...c) => calls.push(c)).healthCheck();
    expect(calls).toHaveLength(1);
    expect(calls[0][0]).toBe('health_check');
    expect(calls[0][1]).toBe('success');
    expect(calls[0][2]).toBeGreaterThanOrEqual(0);
  });

  it('should report the error code of a failed token call when Duo answers 500', async () => {
    duo.handler = (_req, res) => json(res, 500, { error: 'server_error' });
    const calls: Call[] = [];
    await expect(
      client((...c) => calls.push(c)).exchangeAuthorizationCode('code-0123456789', {
        username: 'alice',
        nonce: NONCE,
      }),
    ).rejects.toMatchObject({ code: 'unavailable' });
    expect(calls.map((c) => [c[0], c[1]])).toEqual([['token', 'unavailable']]);
  });

  it('should report the id_token code when the token answer does not verify', async () => {
    duo.handler = (_req, res) =>
      json(res, 200, {
        id_token: 'not.a.jwt',
        access_token: 'a',
        expires_in: 3600,
        token_type: 'Bearer',
      });
    const calls: Call[] = [];
    await expect(
      client((...c) => calls.push(c)).exchangeAuthorizationCode('code-0123456789', {
        username: 'alice',
        nonce: NONCE,
      }),
    ).rejects.toMatchObject({ code: 'id_token_malformed' });
    expect(calls.map((c) => [c[0], c[1]])).toEqual([['token', 'id_token_malformed']]);
  });

  it('should keep the call outcome when the observer throws', async () => {
    duo.handler = (_req, res) => json(res, 200, { stat: 'OK', response: { timestamp: 7 } });
    const result = await client(() => {
      throw new Error('observer bug');
    }).healthCheck();
    expect(result).toEqual({ timestamp: 7 });
  });
});
