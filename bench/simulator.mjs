// Token exchanges per second the Duo simulator sustains in auto mode: N concurrent workers each
// loop authorize (302) + token exchange (hand-made HS512 client assertion) for BENCH_MS.
// Run with `node bench/simulator.mjs` after `npx nest build`. Load generator and simulator share
// this process (one event loop), so the figure is a floor for a simulator run on its own.
import { createHmac, randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { startSimulator } from '@duo-nest/simulator';

const DURATION_MS = Number(process.env.BENCH_MS ?? 5000);
const WORKERS = Number(process.env.BENCH_WORKERS ?? 32);
const REDIRECT = 'https://app.example.test/auth/duo/callback';
const ASSERTION_TYPE = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';

const sim = await startSimulator({ auto: 'allow', codeTtlMs: 60_000 });
const agent = new Agent({ keepAlive: true, maxSockets: WORKERS });
const { hostname, port } = new URL(sim.url);

const b64 = (obj) => Buffer.from(JSON.stringify(obj)).toString('base64url');
function hs512(claims) {
  const input = `${b64({ alg: 'HS512', typ: 'JWT' })}.${b64(claims)}`;
  return `${input}.${createHmac('sha512', sim.clientSecret).update(input).digest('base64url')}`;
}
const now = () => Math.floor(Date.now() / 1000);

function call(method, path, body) {
  return new Promise((resolve, reject) => {
    const headers = body ? { 'content-type': 'application/x-www-form-urlencoded', 'content-length': Buffer.byteLength(body) } : {};
    const req = request({ agent, hostname, port, method, path, headers }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, location: res.headers.location, body: Buffer.concat(chunks).toString() }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

// One request JWT per worker is enough: Duo does not make request objects single-use.
function authorizePath() {
  const request = hs512({
    response_type: 'code', scope: 'openid', exp: now() + 300, client_id: sim.clientId,
    redirect_uri: REDIRECT, state: randomBytes(18).toString('hex'), duo_uname: 'alice',
    iss: sim.clientId, aud: sim.url, use_duo_code_attribute: true,
  });
  const q = new URLSearchParams({ response_type: 'code', client_id: sim.clientId, request, redirect_uri: REDIRECT, scope: 'openid' });
  return `/oauth/v1/authorize?${q}`;
}

let exchanges = 0;
let failures = 0;
async function worker(deadline) {
  const path = authorizePath();
  while (performance.now() < deadline) {
    const auth = await call('GET', path);
    const code = auth.status === 302 ? new URL(auth.location).searchParams.get('duo_code') : null;
    if (!code) { failures++; continue; }
    const assertion = hs512({
      iss: sim.clientId, sub: sim.clientId, aud: `${sim.url}/oauth/v1/token`,
      exp: now() + 300, jti: randomBytes(18).toString('hex'), iat: now(),
    });
    const form = new URLSearchParams({ grant_type: 'authorization_code', code, redirect_uri: REDIRECT, client_id: sim.clientId, client_assertion_type: ASSERTION_TYPE, client_assertion: assertion });
    const token = await call('POST', '/oauth/v1/token', form.toString());
    if (token.status === 200 && JSON.parse(token.body).id_token) exchanges++;
    else failures++;
  }
}

await Promise.all(Array.from({ length: WORKERS }, () => worker(performance.now() + 500))); // warm-up
exchanges = 0;
failures = 0;
const start = performance.now();
await Promise.all(Array.from({ length: WORKERS }, () => worker(start + DURATION_MS)));
const seconds = (performance.now() - start) / 1000;
const stats = sim.control.stats();
await sim.close();
agent.destroy();

const perSecond = Math.round(exchanges / seconds);
const results = {
  node: process.version,
  durationMs: DURATION_MS,
  workers: WORKERS,
  tokenExchanges: exchanges,
  failures,
  tokenExchangesPerSecond: perSecond,
  httpRequestsPerSecond: Math.round((2 * exchanges) / seconds),
  note: 'authorize 302 + token exchange per login; load generator in the same process',
  simulatorStats: { authorize: stats.authorize, token: stats.token, token_success: stats.token_success },
};
console.log('simulator bench (auto mode, %d workers, %d ms)', WORKERS, DURATION_MS);
console.table({ 'logins (authorize + token) /s': { value: perSecond }, 'HTTP requests /s': { value: results.httpRequestsPerSecond }, failures: { value: failures } });
writeFileSync(new URL('./results-simulator.json', import.meta.url), JSON.stringify(results, null, 2) + '\n');
