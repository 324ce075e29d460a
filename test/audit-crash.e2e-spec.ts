import { afterAll, beforeAll, describe, expect, it, jest } from '@jest/globals';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { DataSource } from 'typeorm';
import { startSimulator, type RunningSimulator } from '@duo-nest/simulator';
import { Browser, freePort, location, simulatorEnv } from './support/app-harness.js';
import {
  adminQuery,
  auditRepository,
  createPgDatabase,
  openDataSource,
  type TestDatabase,
} from './support/audit-db.js';

// The real app as a child process (node dist/src/main.js) on a fresh PostgreSQL database, killed
// with SIGKILL the moment a sign-on's success response arrives: after a restart the event is in
// the database (written before the response), or, when the database was cut off, replayed from
// the spool exactly once.
jest.setTimeout(60_000);

const ROOT = process.cwd();
const MAIN = join(ROOT, 'dist/src/main.js');
const CHAIN_KEY = 'crash-test-audit-chain-key-0123456789abcdef';
const INSTANCE_ID = 'crash-test-1';

/** Newest modification time under a folder (ms). */
function newest(dir: string): number {
  let latest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    latest = Math.max(
      latest,
      entry.isDirectory() ? newest(path) : entry.name.endsWith('.ts') ? statSync(path).mtimeMs : 0,
    );
  }
  return latest;
}

/** `npm run build` unless dist is already newer than every source (npm test builds first). */
function ensureBuilt(): void {
  const sources = Math.max(
    newest(join(ROOT, 'src')),
    newest(join(ROOT, 'migrations')),
    ...['core', 'audit', 'simulator'].map((name) => newest(join(ROOT, 'packages', name, 'src'))),
  );
  if (!existsSync(MAIN) || statSync(MAIN).mtimeMs < sources) {
    execFileSync('npm', ['run', 'build', '--silent'], { cwd: ROOT, stdio: 'pipe' });
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until<T>(
  what: string,
  probe: () => Promise<T | undefined>,
  ms = 20_000,
): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await probe().catch(() => undefined);
    if (value !== undefined) {
      return value;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out waiting for ${what}`);
    }
    await sleep(100);
  }
}

async function cutDatabase(name: string): Promise<void> {
  await adminQuery(`ALTER DATABASE ${name} ALLOW_CONNECTIONS false`);
  await adminQuery(
    `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '${name}' AND pid <> pg_backend_pid()`,
  );
}

async function restoreDatabase(name: string): Promise<void> {
  await adminQuery(`ALTER DATABASE ${name} ALLOW_CONNECTIONS true`);
}

describe('audit event durability when the app process is killed (PostgreSQL)', () => {
  let sim: RunningSimulator;
  let db: TestDatabase;
  let ds: DataSource;
  let spoolDir: string;
  let cwd: string;
  let url: string;
  let env: Record<string, string>;
  let child: ChildProcess | null = null;
  let output = '';

  async function startChild(): Promise<void> {
    output = '';
    const proc = spawn(process.execPath, [MAIN], { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
    child = proc;
    proc.stdout?.on('data', (d: Buffer) => (output += d.toString()));
    proc.stderr?.on('data', (d: Buffer) => (output += d.toString()));
    await until('the app to listen', async () => {
      if (proc.exitCode !== null) {
        throw new Error(`app exited with ${proc.exitCode}: ${output.slice(-2000)}`);
      }
      const res = await fetch(`${url}/health/live`);
      return res.status === 200 ? true : undefined;
    }).catch((err: Error) => {
      throw new Error(`${err.message}\n${output.slice(-2000)}`);
    });
  }

  async function killChild(): Promise<void> {
    const proc = child;
    child = null;
    if (!proc || proc.exitCode !== null || proc.signalCode !== null) {
      return;
    }
    const exited = new Promise((r) => proc.once('exit', r));
    proc.kill('SIGKILL');
    await exited;
  }

  /** Sign-on up to Duo's redirect back: the callback URL. */
  async function toCallback(browser: Browser, username: string): Promise<string> {
    const form = await browser.fetch(`${url}/`);
    const csrf = form.headers.get('x-csrf-token');
    const start = await browser.postForm(`${url}/login`, {
      username,
      ...(csrf ? { _csrf: csrf } : {}),
    });
    expect(start.status).toBe(303);
    const duo = await browser.fetch(location(start));
    expect(duo.status).toBe(302);
    return location(duo);
  }

  async function succeeded(username: string): Promise<{ id: string; txid: string | null }[]> {
    return ds.query<{ id: string; txid: string | null }[]>(
      `SELECT id, txid FROM audit_events WHERE type = 'mfa_succeeded' AND username = $1`,
      [username],
    );
  }

  const spoolFile = () => join(spoolDir, `audit-spool-${INSTANCE_ID}.ndjson`);
  const spoolText = () => (existsSync(spoolFile()) ? readFileSync(spoolFile(), 'utf8') : '');

  beforeAll(async () => {
    ensureBuilt();
    sim = await startSimulator({ port: 0, auto: 'allow' });
    db = await createPgDatabase('audit_crash');
    spoolDir = mkdtempSync(join(tmpdir(), 'audit-crash-spool-'));
    // An empty working directory: main.ts reads ./.env, which must not leak into the test.
    cwd = mkdtempSync(join(tmpdir(), 'audit-crash-cwd-'));
    const port = await freePort();
    url = `http://127.0.0.1:${port}`;
    env = {
      PATH: process.env.PATH ?? '',
      NODE_ENV: 'test',
      HOST: '127.0.0.1',
      PORT: String(port),
      PUBLIC_URL: url,
      LOG_LEVEL: 'warn',
      INSTANCE_ID,
      ...simulatorEnv(sim),
      DATABASE_URL: db.url,
      SESSION_SECRET: 'crash-test-session-secret-0123456789abcdef',
      AUDIT_CHAIN_KEY: CHAIN_KEY,
      AUDIT_SPOOL_DIR: spoolDir,
    };
    await startChild();
    ds = await openDataSource(db.url, false);
  });

  afterAll(async () => {
    await killChild();
    await ds?.destroy();
    await restoreDatabase(db.name!).catch(() => undefined);
    await db?.drop();
    await sim?.close();
    rmSync(spoolDir, { recursive: true, force: true });
    rmSync(cwd, { recursive: true, force: true });
  });

  it('should find the mfa_succeeded event after a restart when the app is killed right after the success response', async () => {
    const username = 'crash-alice';
    const browser = new Browser();
    const callback = await toCallback(browser, username);
    const done = await browser.fetch(callback);
    expect(done.status).toBe(303);
    await killChild();
    expect(location(done)).toBe('/result');

    await startChild();
    const rows = await succeeded(username);
    expect(rows).toHaveLength(1);
    expect(rows[0].txid).toMatch(/^[0-9a-f-]{36}$/);
    expect(spoolText()).toBe('');
    const chain = await auditRepository(ds, CHAIN_KEY).verifyChain();
    expect(chain.ok).toBe(true);
  });

  it('should replay the spooled event exactly once when the database was cut off before the callback and the app killed after it', async () => {
    const username = 'crash-spooled';
    const browser = new Browser();
    const callback = await toCallback(browser, username);
    await cutDatabase(db.name!);
    let spooledLine: string;
    try {
      const done = await browser.fetch(callback);
      // The login still succeeds: the event waits in the fsync'd spool.
      expect(done.status).toBe(303);
      expect(location(done)).toBe('/result');
      await killChild();
      spooledLine = spoolText()
        .split('\n')
        .find((l) => l.includes(username) && l.includes('mfa_succeeded'))!;
      expect(spooledLine).toBeDefined();
    } finally {
      await restoreDatabase(db.name!);
    }
    const spooled = JSON.parse(spooledLine) as { id: string; type: string };
    expect(await succeeded(username)).toHaveLength(0);

    await startChild();
    const rows = await until('the spool replay', async () => {
      const r = await succeeded(username);
      return r.length > 0 ? r : undefined;
    });
    expect(rows).toHaveLength(1);
    expect(rows[0].id).toBe(spooled.id);
    await until('the spool to drain', () => Promise.resolve(spoolText() === '' ? true : undefined));
    // The replay reports itself in the trail.
    await until('the audit_spool_replayed event', async () => {
      const [replayed] = await ds.query<{ n: string }[]>(
        `SELECT COUNT(*) AS n FROM audit_events WHERE type = 'audit_spool_replayed'`,
      );
      return Number(replayed.n) >= 1 ? true : undefined;
    });

    // Kill and start once more: nothing is replayed twice.
    await killChild();
    await startChild();
    await sleep(500);
    expect(await succeeded(username)).toHaveLength(1);
    const [dupes] = await ds.query<{ n: string }[]>(
      `SELECT COUNT(*) - COUNT(DISTINCT id) AS n FROM audit_events`,
    );
    expect(Number(dupes.n)).toBe(0);
    const chain = await auditRepository(ds, CHAIN_KEY).verifyChain();
    expect(chain.ok).toBe(true);
  });
});
