import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { startSimulator, type RunningSimulator } from '@duo-nest/simulator';
import { Browser, freePort, location, startApp, simulatorEnv } from './support/app-harness.js';

// The first run as a new user meets it (issue 17, item 2): the favicon, and the demo run twice in
// a fresh folder whose audit trail then verifies with the verify command and no env at all.
const ROOT = resolve(import.meta.dirname, '..');
const DEMO = join(ROOT, 'dist', 'src', 'demo.js');
const VERIFY = join(ROOT, 'packages', 'audit', 'dist', 'audit-verify.cli.js');

describe('/favicon.ico', () => {
  let sim: RunningSimulator;
  beforeAll(async () => {
    sim = await startSimulator({ port: 0, auto: 'allow' });
  });
  afterAll(async () => {
    await sim.close();
  });

  it('should answer a small public, cacheable icon (not 404) without a cookie', async () => {
    const app = await startApp(simulatorEnv(sim));
    try {
      const res = await fetch(`${app.url}/favicon.ico`);
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toBe('image/x-icon');
      expect(res.headers.get('cache-control')).toMatch(/^public, max-age=\d+/);
      expect(res.headers.get('set-cookie')).toBeNull();
      const body = Buffer.from(await res.arrayBuffer());
      // ICONDIR: reserved 0, type 1 (icon), one image of 16 × 16.
      expect([...body.subarray(0, 8)]).toEqual([0, 0, 1, 0, 1, 0, 16, 16]);
      expect(body.length).toBeLessThan(2_000);
      const head = await fetch(`${app.url}/favicon.ico`, { method: 'HEAD' });
      expect(head.status).toBe(200);
      const post = await fetch(`${app.url}/favicon.ico`, { method: 'POST' });
      expect(post.status).not.toBe(200);
    } finally {
      await app.close();
    }
  });
});

/** Runs the compiled demo in `cwd` until it prints its URL; returns the child and its output. */
async function startDemo(
  cwd: string,
  port: number,
): Promise<{ child: ChildProcess; out: () => string }> {
  let out = '';
  const child = spawn(process.execPath, [DEMO], {
    cwd,
    env: {
      PATH: process.env.PATH ?? '',
      PORT: String(port),
      DEMO_SIMULATOR_AUTO: 'allow',
      LOG_LEVEL: 'warn',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const started = Date.now();
  while (!out.includes('duo-nest demo is running')) {
    if (child.exitCode !== null || Date.now() - started > 30_000) {
      child.kill('SIGTERM');
      throw new Error(`the demo did not start:\n${out}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return { child, out: () => out };
}

async function stopDemo(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) {
    return;
  }
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  await exited;
}

/** One sign-on as alice through the demo's simulator (auto-allow): ends on the result page. */
async function signOn(url: string): Promise<void> {
  const browser = new Browser();
  const start = await browser.postForm(`${url}/login`, { username: 'alice' });
  expect(start.status).toBe(303);
  const duo = await browser.fetch(location(start));
  expect(duo.status).toBe(302);
  const done = await browser.fetch(location(duo));
  expect(done.status).toBe(303);
  const result = await browser.fetch(new URL(location(done), url).href);
  expect(result.status).toBe(200);
}

describe('the demo, run twice', () => {
  let work: string;
  beforeAll(() => {
    work = mkdtempSync(join(tmpdir(), 'duo-nest-demo-'));
  });
  afterAll(() => {
    rmSync(work, { recursive: true, force: true });
  });

  it('should keep one audit key under ./data (0600) and leave a trail `audit:verify` verifies with no env', async () => {
    if (!existsSync(DEMO) || !existsSync(VERIFY)) {
      throw new Error('build first (npm run build): this spec runs the compiled demo');
    }
    let first = '';
    const outputs: string[] = [];
    for (let run = 0; run < 2; run++) {
      const port = await freePort();
      const demo = await startDemo(work, port);
      try {
        await signOn(`http://localhost:${port}`);
      } finally {
        await stopDemo(demo.child);
      }
      const out = demo.out();
      outputs.push(out);
      expect(out).toContain(run === 0 ? 'made now' : 'reused');
      expect(out).toContain('up to 100 MFA starts per user in 10 minutes');
      if (run === 0) {
        first = readFileSync(join(work, 'data', 'audit-chain.key'), 'utf8');
      }
    }
    const keyFile = join(work, 'data', 'audit-chain.key');
    expect(statSync(keyFile).mode & 0o777).toBe(0o600);
    expect(readFileSync(keyFile, 'utf8')).toBe(first);
    // The printed output never shows the key itself.
    expect(outputs.join('\n')).not.toContain(first.trim());

    const verify = spawnSync(process.execPath, [VERIFY], {
      cwd: work,
      env: { PATH: process.env.PATH ?? '' },
      encoding: 'utf8',
    });
    expect(verify.stderr).toBe('');
    expect(verify.status).toBe(0);
    expect(verify.stdout).toContain(
      'audit:verify: database ./data/duo-nest.sqlite (the default), key from the key file ./data/audit-chain.key',
    );
    const verified = /audit chain OK: (\d+) events verified/.exec(verify.stdout);
    expect(verified).not.toBeNull();
    // Two sign-ons, each with at least a start and a success.
    expect(Number(verified![1])).toBeGreaterThanOrEqual(4);
    expect(verify.stdout).not.toContain(first.trim());
  }, 120_000);
});
