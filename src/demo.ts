// `npm run demo`: the seed's flow on embedded defaults. Starts the local Duo simulator and the app as
// two processes (the app never imports the simulator) with freshly generated Duo credentials, a
// SQLite file under ./data and in-memory stores, then prints the URL to open.
// The audit chain key and the session secret are made once under ./data (mode 0600) and reused,
// so the trail of every run verifies with `npm run audit:verify` (which finds the same files).
// Env for the demo itself: PORT (3000), DEMO_DATA_DIR (./data), DEMO_SIMULATOR_AUTO (allow or deny:
// the simulator answers at once, without its prompt page; for scripted runs and tests).
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes, randomInt } from 'node:crypto';
import { chmodSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { connect, createServer } from 'node:net';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));

/**
 * The `duo-simulator` bin of the installed @duo-nest/simulator, found through its package.json
 * (the app starts it as a program and never imports it).
 */
function simulatorBinPath(): string {
  const pkgJson = createRequire(import.meta.url).resolve('@duo-nest/simulator/package.json');
  const pkg = JSON.parse(readFileSync(pkgJson, 'utf8')) as { bin: Record<string, string> };
  return join(dirname(pkgJson), pkg.bin['duo-simulator']);
}
const ALNUM = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
const UPPER = ALNUM.slice(0, 26) + ALNUM.slice(52);

function random(alphabet: string, length: number): string {
  return Array.from({ length }, () => alphabet[randomInt(alphabet.length)]).join('');
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer().once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}

async function waitForPort(port: number, child: ChildProcess, what: string): Promise<void> {
  for (let i = 0; i < 100; i++) {
    if (child.exitCode !== null) {
      throw new Error(`${what} exited with code ${child.exitCode}`);
    }
    const open = await new Promise<boolean>((resolve) => {
      const socket = connect(port, '127.0.0.1', () => {
        socket.destroy();
        resolve(true);
      }).once('error', () => resolve(false));
    });
    if (open) {
      return;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${what} did not start listening on port ${port}`);
}

/** The demo's cap of MFA starts per user per 10 minutes (production keeps the default, 5). */
const DEMO_STARTS_PER_USER = 100;

/**
 * A secret kept in `file` (mode 0600): read when it exists, else made once. A file others can read
 * is tightened to 0600 first.
 */
function persistentSecret(file: string): { value: string; created: boolean } {
  try {
    if ((statSync(file).mode & 0o077) !== 0) {
      chmodSync(file, 0o600);
    }
    const value = readFileSync(file, 'utf8').trim();
    if (value.length >= 32) {
      return { value, created: false };
    }
    throw new Error(`${file} holds no usable secret (delete it to make a new one)`);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
      throw err;
    }
  }
  const value = randomBytes(32).toString('base64url');
  // 'wx': never overwrite a key another run made in the meantime.
  writeFileSync(file, `${value}\n`, { mode: 0o600, flag: 'wx' });
  return { value, created: true };
}

async function main(): Promise<void> {
  const appPort = Number(process.env.PORT ?? 3000);
  const dataDir = resolve(process.env.DEMO_DATA_DIR ?? 'data');
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const keyFile = join(dataDir, 'audit-chain.key');
  const chainKey = process.env.AUDIT_CHAIN_KEY
    ? { value: process.env.AUDIT_CHAIN_KEY, created: false }
    : persistentSecret(keyFile);
  const sessionSecret = process.env.SESSION_SECRET
    ? { value: process.env.SESSION_SECRET, created: false }
    : persistentSecret(join(dataDir, 'session-secret'));
  const startsPerUser = process.env.RATE_LIMIT_LOGIN_PER_USER ?? String(DEMO_STARTS_PER_USER);
  const auto = process.env.DEMO_SIMULATOR_AUTO;
  if (auto !== undefined && auto !== 'allow' && auto !== 'deny') {
    throw new Error('DEMO_SIMULATOR_AUTO must be allow or deny');
  }
  const simPort = await freePort();
  const clientId = 'DI' + random(UPPER, 18);
  const clientSecret = random(ALNUM, 40);
  const children: ChildProcess[] = [];
  const stop = () => {
    for (const c of children) {
      c.kill('SIGTERM');
    }
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);

  const sim = spawn(
    process.execPath,
    [
      simulatorBinPath(),
      '--port',
      String(simPort),
      '--client-id',
      clientId,
      '--client-secret',
      clientSecret,
      ...(auto ? ['--auto', auto] : []),
    ],
    { stdio: ['ignore', 'ignore', 'inherit'] },
  );
  children.push(sim);
  await waitForPort(simPort, sim, 'The Duo simulator');

  const publicUrl = `http://localhost:${appPort}`;
  const app = spawn(process.execPath, [join(here, 'main.js')], {
    stdio: ['ignore', 'inherit', 'inherit'],
    env: {
      ...process.env,
      NODE_ENV: 'development',
      PORT: String(appPort),
      PUBLIC_URL: publicUrl,
      DUO_CLIENT_ID: clientId,
      DUO_CLIENT_SECRET: clientSecret,
      DUO_API_HOST: `http://127.0.0.1:${simPort}`,
      DUO_REDIRECT_URI: `${publicUrl}/auth/duo/callback`,
      SESSION_SECRET: sessionSecret.value,
      AUDIT_CHAIN_KEY: chainKey.value,
      DATABASE_URL: process.env.DATABASE_URL ?? `sqlite:${join(dataDir, 'duo-nest.sqlite')}`,
      AUDIT_SPOOL_DIR: process.env.AUDIT_SPOOL_DIR ?? join(dataDir, 'audit-spool'),
      RATE_LIMIT_LOGIN_PER_USER: startsPerUser,
      AUDIT_ADMIN_USERS: process.env.AUDIT_ADMIN_USERS ?? 'alice',
    },
  });
  children.push(app);
  await waitForPort(appPort, app, 'The app');
  console.log(`
  duo-nest demo is running.
    Open ${publicUrl}/ and sign on as alice (or bob; 'locked' is locked out, 'bypass' skips the prompt).
    Duo simulator: http://127.0.0.1:${simPort} (client id ${clientId})${auto ? `, answering ${auto} at once` : ''}
    Audit chain key: ${process.env.AUDIT_CHAIN_KEY ? 'AUDIT_CHAIN_KEY from the environment' : `${keyFile} (${chainKey.created ? 'made now' : 'reused'}; mode 0600)`}
      check the trail with: npm run audit:verify
    Demo setting: up to ${startsPerUser} MFA starts per user in 10 minutes (production default: 5).
  Press Ctrl+C to stop.
`);
  for (const child of children) {
    child.once('exit', (code) => {
      stop();
      process.exitCode = code ?? 0;
    });
  }
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
