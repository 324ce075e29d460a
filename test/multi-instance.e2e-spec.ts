import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { Redis } from 'ioredis';
import type { DataSource } from 'typeorm';
import { startSimulator, type RunningSimulator } from '@duo-nest/simulator';
import { createPgDatabase, openDataSource, type TestDatabase } from './support/audit-db.js';
import { Browser, freePort, location, simulatorEnv } from './support/app-harness.js';
import {
  JSON_ACCEPT,
  NO_RATE_LIMITS,
  postLikeBrowser,
  signOnToCallback,
} from './support/duo-flow.js';
import { BACKEND_HEADER, startLoadBalancer, type LoadBalancer } from './support/lb-proxy.js';

// Many instances (issue part 9): two app PROCESSES (dist/src/main.js) behind one origin (a test load
// balancer that lets the test pick the backend of each request), sharing Redis and one PostgreSQL
// audit database; then the same two without Redis (memory stores), which must fail cleanly.
const ROOT = resolve(import.meta.dirname, '..');
const MAIN = join(ROOT, 'dist', 'src', 'main.js');
const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
const A = { [BACKEND_HEADER]: 'a' };
const B = { [BACKEND_HEADER]: 'b' };

let sim: RunningSimulator;
let db: TestDatabase;
let ds: DataSource;
let lb: LoadBalancer;
let ports: { a: number; b: number };
let workDir: string;
const keyPrefix = `duo-multi-${randomBytes(6).toString('hex')}:`;
let instances: ChildProcess[] = [];

interface Instance {
  child: ChildProcess;
  output: () => string;
}

/** Starts `node dist/src/main.js` with its own env (and a cwd without a .env file). */
async function startInstance(name: 'a' | 'b', extra: Record<string, string>): Promise<Instance> {
  const port = ports[name];
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? '',
    NODE_ENV: 'test',
    HOST: '127.0.0.1',
    PORT: String(port),
    PUBLIC_URL: lb.url,
    DUO_REDIRECT_URI: `${lb.url}/auth/duo/callback`,
    INSTANCE_ID: `inst-${name}`,
    ...simulatorEnv(sim),
    SESSION_SECRET: 'multi-instance-session-secret-0123456789ab',
    AUDIT_CHAIN_KEY: 'multi-instance-audit-chain-key-0123456789ab',
    AUDIT_SPOOL_DIR: join(workDir, `spool-${name}`),
    DATABASE_URL: db.url,
    DATABASE_MIGRATIONS_RUN: 'false',
    LOG_LEVEL: 'error',
    ...NO_RATE_LIMITS,
    ...extra,
  };
  let output = '';
  const child = spawn(process.execPath, [MAIN], { cwd: workDir, env, stdio: 'pipe' });
  child.stdout?.on('data', (d: Buffer) => (output = (output + d.toString()).slice(-4000)));
  child.stderr?.on('data', (d: Buffer) => (output = (output + d.toString()).slice(-4000)));
  instances.push(child);
  const deadline = Date.now() + 20_000;
  for (;;) {
    if (child.exitCode !== null) {
      throw new Error(`instance ${name} exited (${child.exitCode}):\n${output}`);
    }
    const ok = await fetch(`http://127.0.0.1:${port}/`)
      .then((r) => r.status === 200)
      .catch(() => false);
    if (ok) {
      return { child, output: () => output };
    }
    if (Date.now() > deadline) {
      throw new Error(`instance ${name} did not start:\n${output}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function stopInstances(): Promise<void> {
  await Promise.all(
    instances.map(
      (child) =>
        new Promise<void>((done) => {
          if (child.exitCode !== null || child.signalCode !== null) {
            done();
            return;
          }
          const kill = setTimeout(() => child.kill('SIGKILL'), 5_000);
          child.once('exit', () => {
            clearTimeout(kill);
            done();
          });
          child.kill('SIGTERM');
        }),
    ),
  );
  instances = [];
}

async function startBoth(extra: Record<string, string>): Promise<void> {
  await Promise.all([startInstance('a', extra), startInstance('b', extra)]);
}

/** Audit rows (PostgreSQL, shared by both instances) of one type. */
async function auditRows(where: {
  type: string;
  username?: string;
  txid?: string;
  reason?: string;
}): Promise<{ instance_id: string; txid: string | null; reason: string | null }[]> {
  const params: string[] = [where.type];
  let sql = 'SELECT instance_id, txid, reason FROM audit_events WHERE type = $1';
  for (const key of ['username', 'txid', 'reason'] as const) {
    const value = where[key];
    if (value !== undefined) {
      params.push(value);
      sql += ` AND ${key} = $${params.length}`;
    }
  }
  return ds.query(sql, params);
}

beforeAll(async () => {
  if (!existsSync(MAIN)) {
    const build = spawnSync('npm', ['run', 'build', '--silent'], { cwd: ROOT, stdio: 'pipe' });
    if (build.status !== 0) {
      throw new Error(
        `npm run build failed:\n${build.stdout.toString()}${build.stderr.toString()}`,
      );
    }
  }
  workDir = mkdtempSync(join(tmpdir(), 'duo-multi-'));
  ports = { a: await freePort(), b: await freePort() };
  [sim, db, lb] = await Promise.all([
    startSimulator({ port: 0, auto: 'allow' }),
    createPgDatabase('multi'),
    startLoadBalancer(ports),
  ]);
  ds = await openDataSource(db.url, true); // migrations once, before both instances start
}, 60_000);

afterAll(async () => {
  await stopInstances();
  await lb?.close();
  await sim?.close();
  await ds?.destroy();
  await db?.drop();
  const redis = new Redis(REDIS_URL, { maxRetriesPerRequest: 1 });
  const keys = await redis.keys(`${keyPrefix}*`);
  if (keys.length > 0) {
    await redis.del(...keys);
  }
  redis.disconnect();
  if (workDir) {
    rmSync(workDir, { recursive: true, force: true });
  }
}, 30_000);

describe('two instances sharing Redis and PostgreSQL', () => {
  beforeAll(async () => {
    await startBoth({ REDIS_URL, REDIS_KEY_PREFIX: keyPrefix });
  }, 30_000);

  it('should finish on B a sign-on started on A, share the session, and end it everywhere on logout', async () => {
    const browser = new Browser();
    const callback = await signOnToCallback(browser, lb.url, 'alice', A);
    expect(callback.startsWith(`${lb.url}/auth/duo/callback?`)).toBe(true);
    const done = await browser.fetch(callback, { headers: B });
    expect(done.status).toBe(303);
    expect(location(done)).toBe('/result');

    const onA = await browser.fetch(`${lb.url}/me`, { headers: { ...A, ...JSON_ACCEPT } });
    const onB = await browser.fetch(`${lb.url}/me`, { headers: { ...B, ...JSON_ACCEPT } });
    expect(onA.status).toBe(200);
    expect(onB.status).toBe(200);
    const me = (await onA.json()) as { username: string; txid: string; mfa: boolean };
    expect(me).toMatchObject({ username: 'alice', mfa: true });
    expect(await onB.json()).toMatchObject({ txid: me.txid });

    // The audit trail shows where each step ran.
    const succeeded = await auditRows({ type: 'mfa_succeeded', txid: me.txid });
    expect(succeeded.map((r) => r.instance_id)).toEqual(['inst-b']);
    const started = await auditRows({ type: 'mfa_started', username: 'alice' });
    expect(started.map((r) => r.instance_id)).toContain('inst-a');

    const stolen = new Map(browser.cookies);
    const out = await postLikeBrowser(browser, lb.url, '/logout', {}, A);
    expect(out.status).toBe(303);
    const replayer = new Browser();
    stolen.forEach((v, k) => replayer.cookies.set(k, v));
    const after = await replayer.fetch(`${lb.url}/me`, { headers: { ...B, ...JSON_ACCEPT } });
    expect(after.status).toBe(401);
    expect(await after.json()).toMatchObject({ error: 'mfa_required' });
  });

  it('should accept the same callback sent to A and B at the same moment exactly once', async () => {
    for (let round = 0; round < 3; round++) {
      const browser = new Browser();
      const callback = await signOnToCallback(browser, lb.url, 'bob', A);
      const answers = await Promise.all([
        browser.fetch(callback, { headers: A }),
        browser.fetch(callback, { headers: B }),
      ]);
      const statuses = answers.map((r) => r.status).sort();
      expect(statuses).toEqual([303, 400]);
      const winner = answers.find((r) => r.status === 303);
      const loser = answers.find((r) => r.status === 400);
      expect(winner && location(winner)).toBe('/result');
      const page = (await loser?.text()) ?? '';
      expect(page).toContain('Please sign on again');
      expect(page).toContain('unknown or was already used');
      expect(page).toContain('id="restart"');

      const me = await browser.fetch(`${lb.url}/me`, { headers: JSON_ACCEPT });
      expect(me.status).toBe(200);
      const { txid } = (await me.json()) as { txid: string };
      expect(await auditRows({ type: 'mfa_succeeded', txid })).toHaveLength(1);
    }
    const refused = await auditRows({ type: 'mfa_failed', reason: 'state_unknown' });
    expect(refused.length).toBeGreaterThanOrEqual(3);
    expect(await auditRows({ type: 'mfa_succeeded', username: 'bob' })).toHaveLength(3);
  });

  afterAll(async () => {
    await stopInstances();
  }, 15_000);
});

describe('two instances with memory stores (no Redis)', () => {
  beforeAll(async () => {
    await startBoth({});
  }, 30_000);

  it('should refuse cleanly on B a sign-on started on A with a sign-on-again page', async () => {
    const browser = new Browser();
    const callback = await signOnToCallback(browser, lb.url, 'alice', A);
    const res = await browser.fetch(callback, { headers: B });
    expect(res.status).toBe(400);
    expect(res.headers.get('content-type')).toMatch(/text\/html/);
    const page = await res.text();
    expect(page).toContain('Please sign on again');
    expect(page).toMatch(/<a class="restart" id="restart" href="\/">/);
    expect([...browser.cookies.keys()].some((k) => k.endsWith('duo_session'))).toBe(false);
    const refused = await auditRows({ type: 'mfa_failed', reason: 'state_unknown' });
    expect(refused.map((r) => r.instance_id)).toContain('inst-b');

    // The restart works: a sign-on that stays on one instance succeeds.
    const again = await signOnToCallback(browser, lb.url, 'alice', A);
    const ok = await browser.fetch(again, { headers: A });
    expect(ok.status).toBe(303);
    expect(location(ok)).toBe('/result');
    // ...and that session is unknown to the other instance.
    const onB = await browser.fetch(`${lb.url}/me`, { headers: { ...B, ...JSON_ACCEPT } });
    expect(onB.status).toBe(401);
  });
});
