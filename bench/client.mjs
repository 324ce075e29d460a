// Authorize-URL creation and id_token verification per second: ours vs the official SDK (3.0.0).
// Each measurement runs in a fresh child process (both clients run jose; in one process whichever
// runs second inherits JIT state shaped by the first), alternating sides, and the medians count.
// Run with `npm run bench` (builds first) or `node bench/client.mjs` after `npx nest build`.
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const CLIENT_ID = 'DIABCDEFGHIJ12345678';
const SECRET = 'abcdefghijklmnopqrstuvwxyz0123456789ABCD';
const HOST = 'api-1a2b3c4d.duosecurity.com';
const REDIRECT = 'https://app.example.org/auth/duo/callback';
const USER = 'alice';
const NONCE = 'abcdefghijklmnopqrstuvwxyzabcdef';
const STATE = 'deadbeefdeadbeefdeadbeefdeadbeefdead';
const DURATION_MS = Number(process.env.BENCH_MS ?? 1500);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);

async function child(side, op) {
  const { SignJWT } = await import('jose');
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
  let fn;
  if (side === 'ours') {
    const { DuoClient } = await import('@duo-nest/core');
    const c = new DuoClient({ clientId: CLIENT_ID, clientSecret: SECRET, apiHost: HOST, redirectUri: REDIRECT });
    fn = op === 'authUrl' ? () => c.createAuthUrl(USER, STATE, { nonce: NONCE }) : () => c.verifyIdToken(idToken, { username: USER, nonce: NONCE });
  } else {
    const { Client } = await import('@duosecurity/duo_universal');
    const c = new Client({ clientId: CLIENT_ID, clientSecret: SECRET, apiHost: HOST, redirectUrl: REDIRECT });
    // verifyToken is the SDK's private step of exchangeAuthorizationCodeFor2FAResult.
    fn = op === 'authUrl' ? () => c.createAuthUrl(USER, STATE) : () => c.verifyToken(idToken);
  }
  for (let i = 0; i < 2000; i++) await fn(); // warm-up
  let n = 0;
  const start = performance.now();
  while (performance.now() - start < DURATION_MS) {
    for (let i = 0; i < 100; i++) await fn();
    n += 100;
  }
  process.stdout.write(String((n * 1000) / (performance.now() - start)));
}

if (process.argv[2] === '--child') {
  await child(process.argv[3], process.argv[4]);
} else {
  const self = fileURLToPath(import.meta.url);
  const run = (side, op) => Number(execFileSync(process.execPath, [self, '--child', side, op], { encoding: 'utf8' }));
  const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  const results = {};
  for (const op of ['authUrl', 'verify']) {
    const rounds = { ours: [], sdk: [] };
    for (let r = 0; r < ROUNDS; r++) {
      rounds.ours.push(run('ours', op));
      rounds.sdk.push(run('sdk', op));
    }
    const ours = Math.round(median(rounds.ours));
    const sdk = Math.round(median(rounds.sdk));
    results[op] = { ours, sdk, ratio: Number((ours / sdk).toFixed(2)) };
  }
  console.log('client bench (ops/s; median of %d alternating child processes, %d ms each)', ROUNDS, DURATION_MS);
  console.table(Object.fromEntries(Object.entries(results).map(([k, v]) => [k, { ours: v.ours, sdk: v.sdk, ratio: `${v.ratio}x`, target: '>= 1.5x' }])));
  writeFileSync(new URL('./results-client.json', import.meta.url), JSON.stringify({ node: process.version, durationMs: DURATION_MS, rounds: ROUNDS, ...results }, null, 2) + '\n');
}
