// Client CPU of one call to Duo: our DuoClient doing N health checks (a form POST, like the token
// exchange) to the simulator over TLS with keep-alive. The simulator runs in this process; each
// client runs in a child process measured with process.cpuUsage, so its CPU is the client's alone.
// Two modes: `default` (no proxy, no CA option: trusts the certificate via NODE_EXTRA_CA_CERTS)
// and `ca` (the certificate given as the `ca` option: the transport's own undici Agent).
// Variants: CORE_DISTS=a,b (built copies of packages/core/dist, default that one) are run in
// alternating pairs, each client pinned to CPU 1 and the simulator to CPU 0.
// Usage: node bench/duo-call-cpu.mjs [calls=2000] [rounds=3]   (against the BUILT packages)
import { fork } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir, loadavg } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { pinToCpu, selfSignedCertificate } from './lib.mjs';

const [role, ...rest] = process.argv.slice(2);

if (role === 'client') {
  await client(...rest);
} else {
  await main(Number(role ?? 2000), Number(rest[0] ?? 3));
}

async function client(mode, url, clientId, clientSecret, calls, caPath, dist) {
  pinToCpu(process.pid, 1);
  const { DuoClient } = await import(pathToFileURL(join(dist, 'index.js')).href);
  const duo = new DuoClient({
    clientId,
    clientSecret,
    apiHost: new URL(url).host,
    redirectUri: 'https://app.example/duo/callback',
    proxy: false,
    timeoutMs: 5000,
    ...(mode === 'ca' ? { ca: readFileSync(caPath, 'utf8') } : {}),
  });
  const n = Number(calls);
  for (let i = 0; i < 200; i++) {
    await duo.healthCheck();
  }
  const before = process.cpuUsage();
  const t0 = performance.now();
  for (let i = 0; i < n; i++) {
    await duo.healthCheck();
  }
  const cpu = process.cpuUsage(before);
  const wall = performance.now() - t0;
  await duo.close?.();
  process.send({ usPerCall: (cpu.user + cpu.system) / n, wallMsPerCall: wall / n });
}

function runClient(mode, sim, calls, certPath, dist) {
  return new Promise((resolve, reject) => {
    const child = fork(
      new URL(import.meta.url).pathname,
      ['client', mode, sim.url, sim.clientId, sim.clientSecret, String(calls), certPath, dist],
      { env: { ...process.env, ...(mode === 'default' ? { NODE_EXTRA_CA_CERTS: certPath } : {}) } },
    );
    child.once('message', resolve);
    child.once('error', reject);
    child.once('exit', (code) => code && reject(new Error(`client exited ${code}`)));
  });
}

async function main(calls, rounds) {
  const dir = mkdtempSync(join(tmpdir(), 'duo-call-cpu-'));
  try {
    const { certPath, cert, key } = selfSignedCertificate(dir);
    const { startSimulator } = await import('../packages/simulator/dist/index.js');
    const sim = await startSimulator({ tls: { cert, key } });
    pinToCpu(process.pid, 0);
    const dists = (process.env.CORE_DISTS ?? 'packages/core/dist')
      .split(',')
      .map((d) => resolve(d));
    const results = {};
    console.log(
      `loadavg before: ${loadavg()
        .map((v) => v.toFixed(2))
        .join(' ')}`,
    );
    for (let r = 0; r < rounds; r++) {
      for (const mode of ['default', 'ca']) {
        for (const dist of r % 2 ? [...dists].reverse() : dists) {
          const res = await runClient(mode, sim, calls, certPath, dist);
          (results[`${mode} ${dist}`] ??= []).push(res.usPerCall);
          console.log(
            `round ${r} ${mode} ${dist}: ${res.usPerCall.toFixed(0)} us CPU/call, ${res.wallMsPerCall.toFixed(2)} ms wall/call`,
          );
        }
      }
    }
    const median = (a) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];
    const summary = { loadavg: loadavg() };
    for (const [key, values] of Object.entries(results)) {
      summary[key] = Math.round(median(values));
    }
    console.log(JSON.stringify(summary));
    if (process.env.OUT) writeFileSync(process.env.OUT, JSON.stringify({ results, summary }));
    await sim.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
