import { describe, expect, it } from '@jest/globals';
import { DuoClient } from './duo.client.js';
import { clientAssertionClaims, signHs512 } from './duo-jwt.js';

// Deterministic vectors of docs/duo-universal-protocol.md §12.3.
const SECRET = 'deadbeefdeadbeefdeadbeefdeadbeefdeadbeef';
const CLIENT_ID = 'DIXXXXXXXXXXXXXXXXXX';
const HOST = 'api-XXXXXXX.test.duosecurity.com';
const V1_URL =
  'https://api-XXXXXXX.test.duosecurity.com/oauth/v1/authorize?response_type=code&client_id=DIXXXXXXXXXXXXXXXXXX&request=eyJhbGciOiJIUzUxMiIsInR5cCI6IkpXVCJ9.eyJzY29wZSI6Im9wZW5pZCIsInJlZGlyZWN0X3VyaSI6Imh0dHBzOi8vd3d3LmV4YW1wbGUuY29tIiwiY2xpZW50X2lkIjoiRElYWFhYWFhYWFhYWFhYWFhYWFgiLCJpc3MiOiJESVhYWFhYWFhYWFhYWFhYWFhYWCIsImF1ZCI6Imh0dHBzOi8vYXBpLVhYWFhYWFgudGVzdC5kdW9zZWN1cml0eS5jb20iLCJleHAiOjMwMiwic3RhdGUiOiJkZWFkYmVlZmRlYWRiZWVmZGVhZGJlZWZkZWFkYmVlZmRlYWQiLCJyZXNwb25zZV90eXBlIjoiY29kZSIsImR1b191bmFtZSI6InVzZXIxIiwidXNlX2R1b19jb2RlX2F0dHJpYnV0ZSI6dHJ1ZX0.soB-jk6P4pzmREKHs5BUlyqNWGTt8id2DIObFYtzXttHwcKuZfjojK9d8_AwzjWhhKPzHWnNfdQUYbkEhRcFag';
const V2 =
  'eyJhbGciOiJIUzUxMiIsInR5cCI6IkpXVCJ9.eyJpc3MiOiJESVhYWFhYWFhYWFhYWFhYWFhYWCIsInN1YiI6IkRJWFhYWFhYWFhYWFhYWFhYWFhYIiwiYXVkIjoiaHR0cHM6Ly9hcGktWFhYWFhYWC50ZXN0LmR1b3NlY3VyaXR5LmNvbS9vYXV0aC92MS90b2tlbiIsImV4cCI6MzEwLCJqdGkiOiJkZWFkYmVlZiJ9.1MWkvEgxKwg230AFiFamRZ_4YP4Zc-m2G6G7Zu28UDAqfvN7qF5SEbH5700v_37ZamYf20Y8seHOSSNHrGPCyQ';
const V3 =
  'eyJhbGciOiJIUzUxMiIsInR5cCI6IkpXVCJ9.eyJpc3MiOiJodHRwczovL2FwaS1YWFhYWFhYLnRlc3QuZHVvc2VjdXJpdHkuY29tL29hdXRoL3YxL3Rva2VuIiwic3ViIjoidXNlcjEiLCJhdWQiOiJESVhYWFhYWFhYWFhYWFhYWFhYWCIsImV4cCI6MTcwMDAwMzYwMCwiaWF0IjoxNzAwMDAwMDEyLCJhdXRoX3RpbWUiOjE3MDAwMDAwMDAsImF1dGhfcmVzdWx0Ijp7InJlc3VsdCI6ImFsbG93Iiwic3RhdHVzIjoiYWxsb3ciLCJzdGF0dXNfbXNnIjoiTG9naW4gU3VjY2Vzc2Z1bCJ9LCJhdXRoX2NvbnRleHQiOnsidHhpZCI6IjExMTExMTExLTIyMjItMzMzMy00NDQ0LTU1NTU1NTU1NTU1NSIsInRpbWVzdGFtcCI6MTcwMDAwMDAwMCwidXNlciI6eyJuYW1lIjoidXNlcjEiLCJrZXkiOiJEVVhYWFhYWFhYWFhYWFhYWFhYWCIsImdyb3VwcyI6W119LCJhcHBsaWNhdGlvbiI6eyJuYW1lIjoiV2ViIFNESyIsImtleSI6IkRJWFhYWFhYWFhYWFhYWFhYWFhYIn0sImZhY3RvciI6ImR1b19wdXNoIiwiZXZlbnRfdHlwZSI6ImF1dGhlbnRpY2F0aW9uIiwicmVzdWx0Ijoic3VjY2VzcyIsInJlYXNvbiI6InVzZXJfYXBwcm92ZWQifSwicHJlZmVycmVkX3VzZXJuYW1lIjoidXNlcjEiLCJub25jZSI6ImFiY2RlZmdoaWprbG1ub3BxcnN0dXZ3eHl6YWJjZGVmIn0.52y1MxzEyXf-rKsKjYtrUj3PDU5qfc36OIZtvhWpE36f7nbQTLd5Wvg00dzKT8YrfvApYlkCvq1Ttzhl38Q7JA';
const [V3_HEADER, V3_PAYLOAD] = V3.split('.');
const V3_WRONG_SECRET_SIG =
  'OVLl8vHuORBiuYodiApn30GmBbRVpZjC5WXKkRB9wPqhklaEBgYgflYZdlys4EwbrlMlQOakQjOcPlEh2YVvVA';
const V3_HS256 = `eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.${V3_PAYLOAD}.ekRqDKfrqcCkDp6XTe1kWJArN3JZCxPjdwGQyZFp8_g`;
const NONCE = 'abcdefghijklmnopqrstuvwxyzabcdef';

function clientAt(nowSec: number, redirectUri = 'https://www.example.com'): DuoClient {
  return new DuoClient(
    { clientId: CLIENT_ID, clientSecret: SECRET, apiHost: HOST, redirectUri },
    { now: () => nowSec * 1000 },
  );
}

describe('Duo protocol vectors (§12.3)', () => {
  it('should build the exact V1 authorize URL when the clock reads 2 s', async () => {
    const url = await clientAt(2).createAuthUrl('user1', 'deadbeefdeadbeefdeadbeefdeadbeefdead');
    expect(url).toBe(V1_URL);
  });

  it('should sign the exact V2 client assertion for the token endpoint', () => {
    const claims = clientAssertionClaims(
      CLIENT_ID,
      `https://${HOST}/oauth/v1/token`,
      10,
      'deadbeef',
    );
    expect(signHs512(claims, SECRET)).toBe(V2);
  });

  it.each([
    [1700000100, 'valid'],
    [1700003659, 'valid'],
  ])('should accept V3 when now is %i (%s)', async (now) => {
    const claims = await clientAt(now).verifyIdToken(V3, { username: 'user1', nonce: NONCE });
    expect(claims.auth_context.txid).toBe('11111111-2222-3333-4444-555555555555');
  });

  it('should reject V3 as expired when now reaches exp + 60 s', async () => {
    await expect(
      clientAt(1700003660).verifyIdToken(V3, { username: 'user1', nonce: NONCE }),
    ).rejects.toMatchObject({
      code: 'id_token_expired',
    });
  });

  it('should reject V3 as issued in the future where jose alone would accept it (stricter, like Python/Go/Java/PHP)', async () => {
    await expect(
      clientAt(1600000000).verifyIdToken(V3, { username: 'user1', nonce: NONCE }),
    ).rejects.toMatchObject({
      code: 'id_token_iat',
    });
  });

  it('should reject V3 signed with the wrong secret', async () => {
    const forged = `${V3_HEADER}.${V3_PAYLOAD}.${V3_WRONG_SECRET_SIG}`;
    await expect(
      clientAt(1700000100).verifyIdToken(forged, { username: 'user1', nonce: NONCE }),
    ).rejects.toMatchObject({
      code: 'id_token_signature',
    });
  });

  it('should reject V3 signed with HS256', async () => {
    await expect(
      clientAt(1700000100).verifyIdToken(V3_HS256, { username: 'user1', nonce: NONCE }),
    ).rejects.toMatchObject({
      code: 'id_token_alg',
    });
  });
});
