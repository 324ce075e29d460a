import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer, request, type Server } from 'node:http';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { startSimulator, type RunningSimulator } from '@duo-nest/simulator';
import { Browser, freePort, location } from './support/app-harness.js';

// Graceful shutdown of the built app (dist/src/main.js, built by `npm test` before Jest runs): a
// callback whose token call is slow is in flight when SIGTERM arrives.
const MAIN = resolve('dist/src/main.js');
const TOKEN_DELAY_MS = 1_500;

let sim: RunningSimulator;
let proxy: Server;
let proxyUrl: string;
let tokenRequested: () => void = () => undefined;
let child: ChildProcess | undefined;
let dir: string;

/** Forwards to the simulator, keeping the Host header (the simulator builds iss from it), and holds token calls. */
function startSlowDuo(target: URL): Promise<Server> {
  const server = createServer((req, res) => {
    const forward = () => {
      const upstream = request(
        {
          host: target.hostname,
          port: target.port,
          method: req.method,
          path: req.url,
          headers: req.headers,
        },
        (answer) => {
          res.writeHead(answer.statusCode ?? 502, answer.headers);
          answer.pipe(res);
        },
      );
      upstream.on('error', () => res.destroy());
      req.pipe(upstream);
    };
    if (req.url?.startsWith('/oauth/v1/token')) {
      tokenRequested();
      setTimeout(forward, TOKEN_DELAY_MS);
    } else {
      forward();
    }
  });
  return new Promise((done) => server.listen(0, '127.0.0.1', () => done(server)));
}

function connectionRefused(port: number): Promise<boolean> {
  return new Promise((done) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      done(false);
    });
    socket.once('error', (err: NodeJS.ErrnoException) => done(err.code === 'ECONNREFUSED'));
  });
}

async function waitFor(check: () => Promise<boolean>, what: string, ms = 15_000): Promise<void> {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    if (await check().catch(() => false)) {
      return;
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out waiting for ${what}`);
}

beforeAll(async () => {
  if (!existsSync(MAIN)) {
    throw new Error(`${MAIN} is missing: run \`npx nest build\` first (npm test builds it)`);
  }
  sim = await startSimulator({ port: 0, auto: 'allow' });
  proxy = await startSlowDuo(new URL(sim.url));
  const { port } = proxy.address() as { port: number };
  proxyUrl = `http://127.0.0.1:${port}`;
  sim.control.setPublicHost(`127.0.0.1:${port}`); // the app names Duo by the proxy
  dir = mkdtempSync(join(tmpdir(), 'duo-nest-shutdown-'));
});
afterAll(async () => {
  if (child && child.exitCode === null && child.signalCode === null) {
    child.kill('SIGKILL');
  }
  proxy?.closeAllConnections();
  await new Promise((r) => proxy?.close(r));
  await sim?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('graceful shutdown on SIGTERM', () => {
  it('should finish the callback in flight, refuse new connections and exit 0 when SIGTERM arrives', async () => {
    const port = await freePort();
    const url = `http://127.0.0.1:${port}`;
    child = spawn(process.execPath, [MAIN], {
      cwd: dir,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: {
        PATH: process.env.PATH,
        NODE_ENV: 'test',
        HOST: '127.0.0.1',
        PORT: String(port),
        PUBLIC_URL: url,
        DUO_CLIENT_ID: sim.clientId,
        DUO_CLIENT_SECRET: sim.clientSecret,
        DUO_API_HOST: proxyUrl,
        DUO_TIMEOUT_MS: '10000',
        DATABASE_URL: `sqlite:${join(dir, 'app.sqlite')}`,
        AUDIT_SPOOL_DIR: join(dir, 'spool'),
        SESSION_SECRET: 'shutdown-test-session-secret-0123456789abcdef',
        AUDIT_CHAIN_KEY: 'shutdown-test-audit-chain-key-0123456789abcdef',
        SHUTDOWN_GRACE_MS: '10000',
        LOG_LEVEL: 'warn',
      },
    });
    let output = '';
    child.stdout?.on('data', (c: Buffer) => (output += c.toString()));
    child.stderr?.on('data', (c: Buffer) => (output += c.toString()));
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((done) =>
      child?.once('exit', (code, signal) => done({ code, signal })),
    );

    await waitFor(
      async () => (await fetch(`${url}/health/live`)).status === 200,
      `the app to listen (output: ${output})`,
    );
    const browser = new Browser();
    const start = await browser.postForm(`${url}/login`, { username: 'alice' });
    expect(start.status).toBe(303);
    const duo = await browser.fetch(location(start));
    const callbackUrl = location(duo);

    const tokenCall = new Promise<void>((done) => (tokenRequested = done));
    const callback = browser.fetch(callbackUrl);
    await tokenCall;
    expect(child.kill('SIGTERM')).toBe(true);

    await waitFor(() => connectionRefused(port), 'the listening socket to close', 5_000);
    const done = await callback;
    expect(done.status).toBe(303);
    expect(location(done)).toBe('/result');
    expect(browser.cookies.size).toBeGreaterThan(0);

    const { code, signal } = await exited;
    expect({ code, signal }).toEqual({ code: 0, signal: null });
    expect(output).not.toContain(sim.clientSecret);
  }, 30_000); // a whole app process boots, signs on and drains: over Jest's 5 s under load
});
