// Shared helpers of the app benches: an HTTP client with a cookie jar, app processes started from
// dist/ (bench/app-server.mjs), a round-robin proxy, CPU time from /proc, percentiles, PostgreSQL.
import { execFileSync, fork } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { Agent, createServer, request } from 'node:http';
import { createServer as netServer } from 'node:net';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import pg from 'pg';

export const PG_ADMIN_URL =
  process.env.BENCH_PG_ADMIN_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
export const REDIS_URL = process.env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379';
const CLK_TCK = 100; // getconf CLK_TCK on Linux

export const agent = new Agent({ keepAlive: true, maxSockets: 256 });

export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = netServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

/** One HTTP request without redirects: { status, headers, body }. */
export function http(method, url, { headers = {}, body } = {}) {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const h = { ...headers };
    if (body !== undefined) {
      h['content-type'] ??= 'application/x-www-form-urlencoded';
      h['content-length'] = Buffer.byteLength(body);
    }
    const req = request(
      {
        agent,
        hostname: u.hostname,
        port: u.port,
        method,
        path: u.pathname + u.search,
        headers: h,
      },
      (res) => {
        const chunks = [];
        res.on('data', (c) => chunks.push(c));
        res.on('end', () =>
          resolve({
            status: res.statusCode,
            headers: res.headers,
            body: Buffer.concat(chunks).toString(),
          }),
        );
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

/** A browser: cookies per origin-less jar (one app origin per browser), manual redirects. */
export class Browser {
  cookies = new Map();
  csrf = undefined;

  async fetch(method, url, options = {}) {
    const headers = { accept: 'text/html', ...(options.headers ?? {}) };
    if (this.cookies.size > 0) {
      headers.cookie = [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; ');
    }
    const res = await http(method, url, { headers, body: options.body });
    for (const line of [res.headers['set-cookie'] ?? []].flat()) {
      const [pair, ...attrs] = line.split(';');
      const eq = pair.indexOf('=');
      const name = pair.slice(0, eq).trim();
      const value = pair.slice(eq + 1).trim();
      if (value === '' || attrs.some((a) => /max-age=0\b/i.test(a.trim()))) {
        this.cookies.delete(name);
      } else {
        this.cookies.set(name, value);
      }
    }
    return res;
  }

  /** The CSRF token of the app's forms (GET / names it), refetched when the cookie changed. */
  async csrfToken(appUrl) {
    const cookie = this.cookies.get('duo_csrf');
    if (this.csrf && this.csrf.cookie === cookie) {
      return this.csrf.token;
    }
    const res = await this.fetch('GET', `${appUrl}/`);
    this.csrf = { cookie: this.cookies.get('duo_csrf'), token: res.headers['x-csrf-token'] ?? '' };
    return this.csrf.token;
  }
}

/**
 * One full sign-on: POST /login (303 to Duo) → the simulator in auto mode (302 back) → callback
 * (303, session). Returns the timings in ms: total and the callback request alone.
 */
export async function signOn(browser, appUrl, username) {
  const token = await browser.csrfToken(appUrl);
  const t0 = performance.now();
  const start = await browser.fetch('POST', `${appUrl}/login`, {
    body: new URLSearchParams({ username, _csrf: token }).toString(),
  });
  if (start.status !== 303) {
    throw new Error(`POST /login answered ${start.status}: ${start.body.slice(0, 200)}`);
  }
  const duo = await browser.fetch('GET', start.headers.location);
  if (duo.status !== 302) {
    throw new Error(`the simulator answered ${duo.status}`);
  }
  const t1 = performance.now();
  const done = await browser.fetch('GET', duo.headers.location);
  const t2 = performance.now();
  if (done.status !== 303) {
    throw new Error(`the callback answered ${done.status}: ${done.body.slice(0, 200)}`);
  }
  return { totalMs: t2 - t0, callbackMs: t2 - t1 };
}

/** N virtual users loop sign-ons for durationMs; returns rates and latency percentiles. */
export async function signOnLoad(
  appUrl,
  {
    concurrency,
    durationMs,
    warmupMs = 1000,
    prefix = 'u',
    ratePerSecond = 0,
    onStart = () => {},
    onStop = () => {},
  },
) {
  // With ratePerSecond, the workers together offer that many sign-ons per second (paced), instead
  // of as many as the machine can take.
  const interval = ratePerSecond > 0 ? (concurrency * 1000) / ratePerSecond : 0;
  const totals = [];
  const callbacks = [];
  let failures = 0;
  let measuring = false;
  let stop = false;
  const worker = async (w) => {
    const browser = new Browser();
    let i = 0;
    let next = performance.now() + (interval * w) / concurrency;
    while (!stop) {
      if (interval > 0) {
        const wait = next - performance.now();
        if (wait > 0) {
          await sleep(wait);
        }
        next = Math.max(next + interval, performance.now());
      }
      try {
        const t = await signOn(browser, appUrl, `${prefix}${w}x${i++ % 50}`);
        if (measuring) {
          totals.push(t.totalMs);
          callbacks.push(t.callbackMs);
        }
      } catch (err) {
        if (measuring) {
          failures++;
        }
        if (failures === 1 && measuring) {
          console.error(`  first failure: ${err.message}`);
        }
        browser.cookies.clear();
        browser.csrf = undefined;
      }
    }
  };
  const workers = Array.from({ length: concurrency }, (_, w) => worker(w));
  await sleep(warmupMs);
  onStart();
  measuring = true;
  const t0 = performance.now();
  await sleep(durationMs);
  measuring = false;
  const seconds = (performance.now() - t0) / 1000;
  onStop();
  stop = true;
  await Promise.all(workers);
  return {
    concurrency,
    seconds: round(seconds, 2),
    signOns: totals.length,
    failures,
    perSecond: round(totals.length / seconds, 1),
    signOnMs: { p50: round(percentile(totals, 50), 2), p99: round(percentile(totals, 99), 2) },
    callbackMs: {
      p50: round(percentile(callbacks, 50), 2),
      p99: round(percentile(callbacks, 99), 2),
    },
  };
}

export function percentile(values, p) {
  if (values.length === 0) {
    return NaN;
  }
  const sorted = Float64Array.from(values).sort();
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}

export function round(n, digits = 1) {
  return Number.isFinite(n) ? Number(n.toFixed(digits)) : null;
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** utime + stime of a process, in seconds. */
export function cpuSeconds(pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / CLK_TCK;
}

/**
 * Pins a process (all its threads) to one CPU with taskset, so a load generator and the app it
 * measures do not take turns on the same core. False when there is one core or no taskset.
 */
export function pinToCpu(pid, cpu) {
  // cpus(), not availableParallelism(): the latter shrinks to 1 once this process is pinned.
  if (cpus().length < 2) {
    return false;
  }
  try {
    execFileSync('taskset', ['-a', '-p', '-c', String(cpu), String(pid)], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** The base environment of a bench app: the simulator, rate limits off, quiet logs. */
export function appEnv(sim, publicUrl, extra = {}) {
  return {
    NODE_ENV: 'test',
    HOST: '127.0.0.1',
    PUBLIC_URL: publicUrl,
    DUO_REDIRECT_URI: `${publicUrl}/auth/duo/callback`,
    DUO_CLIENT_ID: sim.clientId,
    DUO_CLIENT_SECRET: sim.clientSecret,
    DUO_API_HOST: sim.url,
    DUO_MAX_CONCURRENCY: '1000',
    SESSION_SECRET: 'bench-session-secret-0123456789abcdefghijkl',
    AUDIT_CHAIN_KEY: 'bench-audit-chain-key-0123456789abcdefghijk',
    LOG_LEVEL: 'error',
    RATE_LIMIT_LOGIN_PER_IP: '0',
    RATE_LIMIT_LOGIN_PER_USER: '0',
    RATE_LIMIT_CALLBACK_PER_IP: '0',
    ...extra,
  };
}

/**
 * Starts bench/app-server.mjs (the built app plus /bench/public and /bench/guarded), or another
 * bench app script that speaks the same IPC, as its own process; resolves once it listens. `stats()` returns the server-side callback timings.
 */
export async function startAppProcess(env, script = './app-server.mjs') {
  const port = env.PORT ? Number(env.PORT) : await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'duo-nest-bench-'));
  const child = fork(fileURLToPath(new URL(script, import.meta.url)), [], {
    cwd: dir,
    env: {
      PATH: process.env.PATH,
      ...(process.env.BENCH_PROFILE_DIR
        ? { BENCH_PROFILE_DIR: process.env.BENCH_PROFILE_DIR }
        : {}),
      PORT: String(port),
      AUDIT_SPOOL_DIR: join(dir, 'spool'),
      DATABASE_URL: `sqlite:${join(dir, 'audit.sqlite')}`,
      ...env,
      PORT: String(port),
    },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    // e.g. BENCH_APP_EXEC_ARGV='--cpu-prof --cpu-prof-dir=/tmp/prof' to profile the app processes
    execArgv: process.env.BENCH_APP_EXEC_ARGV ? process.env.BENCH_APP_EXEC_ARGV.split(' ') : [],
  });
  const pending = new Map();
  let seq = 0;
  child.on('message', (m) => {
    pending.get(m.id)?.(m);
    pending.delete(m.id);
  });
  const ask = (cmd) =>
    new Promise((resolve) => {
      const id = ++seq;
      pending.set(id, resolve);
      child.send({ id, cmd });
    });
  await new Promise((resolve, reject) => {
    child.once('exit', (code) =>
      reject(new Error(`app process exited (${code}) before listening`)),
    );
    child.once('message', (m) => (m.ready ? resolve() : reject(new Error('app did not start'))));
  });
  child.removeAllListeners('exit');
  return {
    pid: child.pid,
    url: `http://127.0.0.1:${port}`,
    port,
    stats: () => ask('stats'),
    profile: (what) => ask(`profile-${what}`),
    reset: () => ask('reset'),
    async stop() {
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await Promise.race([exited, sleep(15_000)]);
      if (child.exitCode === null) {
        child.kill('SIGKILL');
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A round-robin HTTP proxy (node:http) in front of several app processes. */
export async function startRoundRobin(targets, port = 0) {
  let next = 0;
  const server = createServer((req, res) => {
    const target = new URL(targets[next++ % targets.length]);
    const upstream = request(
      {
        agent,
        hostname: target.hostname,
        port: target.port,
        method: req.method,
        path: req.url,
        headers: { ...req.headers, 'x-forwarded-for': req.socket.remoteAddress },
      },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      },
    );
    upstream.on('error', () => {
      res.writeHead(502);
      res.end();
    });
    req.pipe(upstream);
  });
  server.keepAliveTimeout = 65_000;
  await new Promise((r) => server.listen(port, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${server.address().port}`,
    close: () => {
      server.closeAllConnections();
      return new Promise((r) => server.close(r));
    },
  };
}

/**
 * N app processes (bench-1 .. bench-N) with the same env behind the round-robin proxy on
 * `proxyPort`: the first runs the migrations, the others start after it.
 */
export async function startInstances(n, shared, proxyPort) {
  const apps = [await startAppProcess({ ...shared, INSTANCE_ID: 'bench-1' })];
  apps.push(
    ...(await Promise.all(
      Array.from({ length: n - 1 }, (_, i) =>
        startAppProcess({
          ...shared,
          INSTANCE_ID: `bench-${i + 2}`,
          DATABASE_MIGRATIONS_RUN: 'false',
        }),
      ),
    )),
  );
  const proxy = await startRoundRobin(
    apps.map((a) => a.url),
    proxyPort,
  );
  return { apps, proxy };
}

/** A fresh PostgreSQL database with the audit schema (migrations run by the first app). */
export async function createPgDatabase(prefix) {
  const name = `${prefix}_${randomBytes(5).toString('hex')}`;
  const admin = new pg.Client({ connectionString: PG_ADMIN_URL });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  const url = new URL(PG_ADMIN_URL);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    async drop() {
      const c = new pg.Client({ connectionString: PG_ADMIN_URL });
      await c.connect();
      await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await c.end();
    },
  };
}

/**
 * A throw-away self-signed certificate for 127.0.0.1 and localhost (P-256, one day), made with the
 * openssl CLI in `dir` (as test/support/tls.ts makes it for the tests): its path, the PEM and key.
 */
export function selfSignedCertificate(dir) {
  const keyPath = join(dir, 'key.pem');
  const certPath = join(dir, 'cert.pem');
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-keyout',
      keyPath,
      '-out',
      certPath,
      '-days',
      '1',
      '-subj',
      '/CN=127.0.0.1',
      '-addext',
      'subjectAltName=IP:127.0.0.1,DNS:localhost',
    ],
    { stdio: 'ignore' },
  );
  return { certPath, cert: readFileSync(certPath), key: readFileSync(keyPath) };
}
