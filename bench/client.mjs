// Authorize-URL creation and id_token verification per second: ours vs the official SDK (3.0.0).
// Run with `npm run bench` (builds first) or `node bench/client.mjs` after `npx nest build`.
import { writeFileSync } from 'node:fs';
import { Client as OfficialClient } from '@duosecurity/duo_universal';
import { SignJWT } from 'jose';
import { DuoClient } from '../dist/src/duo/duo.client.js';

const CLIENT_ID = 'DIABCDEFGHIJ12345678';
const SECRET = 'abcdefghijklmnopqrstuvwxyz0123456789ABCD';
const HOST = 'api-1a2b3c4d.duosecurity.com';
const REDIRECT = 'https://app.example.org/auth/duo/callback';
const USER = 'alice';
const NONCE = 'abcdefghijklmnopqrstuvwxyzabcdef';
const STATE = 'deadbeefdeadbeefdeadbeefdeadbeefdead';
const DURATION_MS = Number(process.env.BENCH_MS ?? 2000);

const ours = new DuoClient({ clientId: CLIENT_ID, clientSecret: SECRET, apiHost: HOST, redirectUri: REDIRECT });
const theirs = new OfficialClient({ clientId: CLIENT_ID, clientSecret: SECRET, apiHost: HOST, redirectUrl: REDIRECT });
// The SDK's verifyToken is private; it is the same code path exchangeAuthorizationCodeFor2FAResult runs.
const sdkVerify = (t) => theirs.verifyToken(t);

const now = Math.floor(Date.now() / 1000);
const idToken = await new SignJWT({
  iss: `https://${HOST}/oauth/v1/token`,
  sub: USER,
  aud: CLIENT_ID,
  exp: now + 3600,
  iat: now,
  auth_time: now,
  auth_result: { result: 'allow', status: 'allow', status_msg: 'Login Successful' },
  auth_context: { txid: 'tx', factor: 'duo_push', result: 'success', reason: 'user_approved', user: { name: USER } },
  preferred_username: USER,
  nonce: NONCE,
})
  .setProtectedHeader({ alg: 'HS512', typ: 'JWT' })
  .sign(new TextEncoder().encode(SECRET));

async function rate(fn) {
  for (let i = 0; i < 500; i++) await fn(); // warm-up
  let n = 0;
  const start = performance.now();
  while (performance.now() - start < DURATION_MS) {
    for (let i = 0; i < 100; i++) await fn();
    n += 100;
  }
  return Math.round((n * 1000) / (performance.now() - start));
}

const results = {
  authUrl: { ours: await rate(() => ours.createAuthUrl(USER, STATE, { nonce: NONCE })), sdk: await rate(() => theirs.createAuthUrl(USER, STATE)) },
  verify: { ours: await rate(() => ours.verifyIdToken(idToken, { username: USER, nonce: NONCE })), sdk: await rate(() => sdkVerify(idToken)) },
};
for (const r of Object.values(results)) r.ratio = Number((r.ours / r.sdk).toFixed(2));

console.log('client bench (ops/s, one core, %d ms each)', DURATION_MS);
console.table(Object.fromEntries(Object.entries(results).map(([k, v]) => [k, { ours: v.ours, sdk: v.sdk, ratio: `${v.ratio}x`, target: '>= 1.5x' }])));
writeFileSync(new URL('./results-client.json', import.meta.url), JSON.stringify({ node: process.version, durationMs: DURATION_MS, ...results }, null, 2) + '\n');
