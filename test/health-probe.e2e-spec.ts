import { randomBytes } from 'node:crypto';
import { createServer, type Server, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { Redis } from 'ioredis';
import { startSimulator, type RunningSimulator } from '@duo-nest/simulator';
import { StoreRecordSealer } from '@duo-nest/core';
import { DuoHealthService } from '@duo-nest/core/internal';
import {
  Browser,
  location,
  startApp,
  simulatorEnv,
  type RunningApp,
} from './support/app-harness.js';

// Health that does not guess (issue 17, item 1): DuoHealthService's background probe, what /health
// and /health/ready say about Duo (up, down or unknown, with the answer's age), and one probe per
// interval across instances that share Redis.
const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
const SECRET = 'health-probe-session-secret-0123456789abcdef';

type Indicator = { status: string } & Record<string, unknown>;
interface HealthBody {
  status: string;
  details: Record<string, Indicator>;
}

let sim: RunningSimulator;
const sims: RunningSimulator[] = [];
let redis: Redis;
const apps: RunningApp[] = [];
const prefixes: string[] = [];

function prefix(): string {
  const p = `health-probe-${randomBytes(6).toString('hex')}:`;
  prefixes.push(p);
  return p;
}

async function boot(env: Record<string, string>): Promise<RunningApp> {
  const app = await startApp({
    ...simulatorEnv(sim),
    SESSION_SECRET: SECRET,
    DUO_HEALTH_PROBE: 'true',
    DUO_BREAKER_THRESHOLD: '1000',
    ...env,
  });
  apps.push(app);
  return app;
}

async function health(
  app: RunningApp,
  path = '/health',
): Promise<{ code: number; body: HealthBody }> {
  const res = await fetch(`${app.url}${path}`);
  return { code: res.status, body: (await res.json()) as HealthBody };
}

async function duoState(app: RunningApp): Promise<Indicator> {
  return (await health(app)).body.details.duo;
}

/** Polls until `pred` holds; returns the ms it took. */
async function waitFor(
  pred: () => Promise<boolean>,
  timeoutMs: number,
  what: string,
): Promise<number> {
  const started = Date.now();
  while (!(await pred())) {
    if (Date.now() - started > timeoutMs) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    }
    await new Promise((r) => setTimeout(r, 25));
  }
  return Date.now() - started;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

beforeAll(async () => {
  sim = await startSimulator({ port: 0, auto: 'allow' });
  redis = new Redis(REDIS_URL);
});

afterAll(async () => {
  for (const app of apps) {
    await app.close().catch(() => undefined);
  }
  for (const p of prefixes) {
    const keys = await redis.keys(`${p}*`);
    if (keys.length > 0) {
      await redis.del(...keys);
    }
  }
  await redis.quit();
  await sim?.close();
  for (const s of sims) {
    await s.close();
  }
});

describe('Duo unreachable from the start', () => {
  let blackhole: Server;
  const held = new Set<Socket>();
  let url: string;

  beforeAll(async () => {
    // Accepts every connection and never answers: the first probe hangs until the Duo timeout.
    blackhole = createServer((socket) => {
      held.add(socket);
      socket.on('error', () => undefined);
    });
    await new Promise<void>((resolve) => blackhole.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(blackhole.address() as { port: number }).port}`;
  });
  afterAll(async () => {
    for (const s of held) {
      s.destroy();
    }
    await new Promise((r) => blackhole.close(r));
  });

  it.each([
    [200, 'not required', 'false'],
    [503, 'required', 'true'],
  ] as const)(
    'should say unknown, then down after the first probe (readiness %i when Duo is %s)',
    async (readyCode, _what, required) => {
      const app = await boot({
        DUO_API_HOST: url,
        DUO_TIMEOUT_MS: '1500',
        DUO_HEALTH_CACHE_MS: '1000',
        HEALTH_DUO_REQUIRED: required,
      });
      const first = await health(app, '/health/ready');
      expect(first.body.details.duo).toMatchObject({ state: 'unknown', probe: true });
      expect(first.body.details.duo.ageMs).toBeUndefined();
      expect(first.code).toBe(readyCode);

      await waitFor(async () => (await duoState(app)).state === 'down', 4_000, 'Duo down');
      const after = await health(app, '/health/ready');
      expect(after.code).toBe(readyCode);
      expect(after.body.details.duo).toMatchObject({
        state: 'down',
        status: required === 'true' ? 'down' : 'degraded',
        error: 'unavailable',
        source: 'local',
      });
      expect(after.body.details.duo.ageMs).toEqual(expect.any(Number));
      expect(after.body.details.duo.ageMs as number).toBeLessThan(2_000);
      expect((await health(app, '/health/live')).code).toBe(200);
    },
    15_000,
  );
});

describe('Duo going down and coming back', () => {
  it('should flip /health to down and back to up within about two intervals each way', async () => {
    const interval = 400;
    const app = await boot({ DUO_HEALTH_CACHE_MS: String(interval), DUO_TIMEOUT_MS: '300' });
    await waitFor(async () => (await duoState(app)).state === 'up', 2_000, 'Duo up');
    try {
      sim.control.setFaults({ health: 'down' });
      const toDown = await waitFor(
        async () => (await duoState(app)).state === 'down',
        5 * interval,
        'Duo down',
      );
      expect(toDown).toBeLessThanOrEqual(2 * interval * 1.2 + 100);
      expect(await duoState(app)).toMatchObject({ status: 'degraded', error: 'unavailable' });
    } finally {
      sim.control.setFaults({ health: null });
    }
    const toUp = await waitFor(
      async () => (await duoState(app)).state === 'up',
      5 * interval,
      'Duo up again',
    );
    expect(toUp).toBeLessThanOrEqual(2 * interval * 1.2 + 100);
    expect((await health(app)).code).toBe(200);
  }, 15_000);
});

describe('two instances sharing Redis', () => {
  it('should probe Duo once per interval between them, and both report the answer', async () => {
    const interval = 500;
    const keyPrefix = prefix();
    // A simulator of its own: the other apps of this file probe theirs.
    const own = await startSimulator({ port: 0, auto: 'allow' });
    sims.push(own);
    const env = {
      ...simulatorEnv(own),
      REDIS_URL,
      REDIS_KEY_PREFIX: keyPrefix,
      DUO_HEALTH_CACHE_MS: String(interval),
    };
    const [a, b] = await Promise.all([boot(env), boot(env)]);
    await waitFor(
      async () => (await duoState(a)).state === 'up' && (await duoState(b)).state === 'up',
      3_000,
      'both up',
    );
    const window = 5_000;
    const before = own.control.stats().health_check;
    const probesBefore =
      a.app.get(DuoHealthService).probeCount + b.app.get(DuoHealthService).probeCount;
    await sleep(window);
    const calls = own.control.stats().health_check - before;
    const probes =
      a.app.get(DuoHealthService).probeCount +
      b.app.get(DuoHealthService).probeCount -
      probesBefore;
    // Two instances on their own would call about 2 × window / interval = 20 times; the lease
    // allows at most one per interval (plus the one at the window's edge).
    expect(probes).toBeGreaterThanOrEqual(14);
    expect(calls).toBeLessThanOrEqual(window / interval + 1);
    expect(calls).toBeGreaterThanOrEqual(Math.floor(window / (interval * 2.4)));
    const states = [await duoState(a), await duoState(b)];
    expect(states.map((s) => s.state)).toEqual(['up', 'up']);
    // Someone read the other's answer from Redis.
    expect(states.map((s) => s.ageMs as number).every((age) => age < 3 * interval)).toBe(true);
    const sources = new Set(states.map((s) => s.source));
    expect(sources.has('shared') || sources.size === 1).toBe(true);
  }, 20_000);

  it('should ignore a forged shared answer, and never fail open on a sealed "down" it did not see itself', async () => {
    const interval = 400;
    const keyPrefix = prefix();
    // The test holds the lease: the app never probes Duo itself and reads only the shared answer.
    await redis.set(`${keyPrefix}health:lease`, 'test', 'PX', 60_000);
    const answerKey = `${keyPrefix}health:answer`;
    await redis.set(
      answerKey,
      JSON.stringify({
        status: 'down',
        checkedAt: Date.now(),
        code: 'unavailable',
        mac: 'x'.repeat(43),
      }),
      'PX',
      60_000,
    );
    const app = await boot({
      REDIS_URL,
      REDIS_KEY_PREFIX: keyPrefix,
      DUO_HEALTH_CACHE_MS: String(interval),
      DUO_FAILMODE: 'open',
    });
    await sleep(3 * interval);
    // Unsealed: ignored, so nothing is known.
    expect(await duoState(app)).toMatchObject({ state: 'unknown' });

    // A correctly sealed "down" (written here with the secret) is reported...
    const sealer = new StoreRecordSealer(SECRET);
    const checkedAt = Date.now();
    const mac = sealer.seal(['duo_health', answerKey, 'down', checkedAt, 'unavailable']);
    await redis.set(
      answerKey,
      JSON.stringify({ status: 'down', checkedAt, code: 'unavailable', mac }),
      'PX',
      60_000,
    );
    await waitFor(async () => (await duoState(app)).state === 'down', 3_000, 'shared down');
    expect(await duoState(app)).toMatchObject({ source: 'shared', error: 'unavailable' });
    // ...yet a sign-on in failmode open asks Duo itself (it is up) and goes to the prompt.
    const before = sim.control.stats().health_check;
    const browser = new Browser();
    const start = await browser.postForm(`${app.url}/login`, { username: 'alice' });
    expect(start.status).toBe(303);
    expect(location(start)).toContain('/oauth/v1/authorize');
    // At least its own call (other apps of this file may probe the same simulator meanwhile).
    expect(sim.control.stats().health_check - before).toBeGreaterThanOrEqual(1);
  }, 15_000);
});

describe('shutdown', () => {
  it('should stop probing when the app closes', async () => {
    const interval = 200;
    // A simulator of its own: the other apps of this file still probe theirs.
    const own = await startSimulator({ port: 0, auto: 'allow' });
    try {
      const app = await boot({ ...simulatorEnv(own), DUO_HEALTH_CACHE_MS: String(interval) });
      const service = app.app.get(DuoHealthService);
      await waitFor(
        () => Promise.resolve(own.control.stats().health_check >= 2),
        3_000,
        'two probes',
      );
      await app.close();
      expect(service.probeRunning).toBe(false);
      const calls = own.control.stats().health_check;
      const probes = service.probeCount;
      await sleep(5 * interval);
      expect(service.probeCount).toBe(probes);
      expect(own.control.stats().health_check).toBe(calls);
    } finally {
      await own.close();
    }
  }, 10_000);
});
