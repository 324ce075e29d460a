import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { startSimulator, type RunningSimulator } from '@duo-nest/simulator';
import { DuoHealthService } from '@duo-nest/core/internal';
import { createPgDatabase, type TestDatabase } from './support/audit-db.js';
import {
  Browser,
  freePort,
  location,
  startApp,
  type RunningApp,
  simulatorEnv,
} from './support/app-harness.js';

// Health, readiness and metrics of the real app against the simulator, SQLite, PostgreSQL and Redis.
const METRICS_TOKEN = 'metrics-token-0123456789abcdefghijklmnop';
const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

let sim: RunningSimulator;
const apps: RunningApp[] = [];

async function boot(env: Record<string, string> = {}): Promise<RunningApp> {
  const app = await startApp({
    ...simulatorEnv(sim),
    REDIS_KEY_PREFIX: `operate-${process.pid}-${apps.length}:`,
    ...env,
  });
  apps.push(app);
  return app;
}

type Indicator = { status: string } & Record<string, unknown>;
interface HealthBody {
  status: string;
  error: Record<string, Indicator>;
  details: Record<string, Indicator>;
}

async function json(res: Response): Promise<HealthBody> {
  return (await res.json()) as HealthBody;
}

/** One full sign-on through the simulator in auto-allow mode; returns the signed-on browser. */
async function signOn(app: RunningApp, username = 'alice'): Promise<Browser> {
  const browser = new Browser();
  const start = await browser.postForm(`${app.url}/login`, { username });
  expect(start.status).toBe(303);
  const duo = await browser.fetch(location(start));
  const done = await browser.fetch(location(duo));
  expect(done.status).toBe(303);
  return browser;
}

beforeAll(async () => {
  sim = await startSimulator({ port: 0, auto: 'allow' });
});
afterAll(async () => {
  for (const app of apps) {
    await app.close();
  }
  await sim?.close();
});

describe('health endpoints', () => {
  let app: RunningApp;
  beforeAll(async () => {
    app = await boot();
  });

  it('should answer liveness with 200 and no-store when the process is up', async () => {
    const res = await fetch(`${app.url}/health/live`);
    expect(res.status).toBe(200);
    expect(res.headers.get('cache-control')).toBe('no-store');
    const body = await json(res);
    expect(body.status).toBe('ok');
    expect(body.details.process.status).toBe('up');
  });

  it('should be ready with the database up and Duo unknown (degraded, not up) when nothing has checked Duo yet', async () => {
    const res = await fetch(`${app.url}/health/ready`);
    expect(res.status).toBe(200);
    expect(res.headers.get('cache-control')).toBe('no-store');
    const body = await json(res);
    expect(body.status).toBe('degraded');
    expect(body.details.database).toMatchObject({ status: 'up', type: 'better-sqlite3' });
    expect(body.details.duo).toEqual({
      status: 'degraded',
      state: 'unknown',
      required: false,
      circuit: 'closed',
      probe: false,
    });
    expect(body.details.redis).toBeUndefined();
  });

  it('should serve /health as the readiness view when called without a suffix', async () => {
    const [plain, ready] = await Promise.all([
      fetch(`${app.url}/health`).then(json),
      fetch(`${app.url}/health/ready`).then(json),
    ]);
    expect(Object.keys(plain.details).sort()).toEqual(Object.keys(ready.details).sort());
    expect(plain.status).toBe(ready.status);
  });

  it('should never call Duo when readiness is asked', async () => {
    const before = sim.control.stats().health_check;
    for (let i = 0; i < 3; i++) {
      await fetch(`${app.url}/health/ready`);
    }
    expect(sim.control.stats().health_check).toBe(before);
  });

  it('should report Duo degraded but stay ready when the cached Duo check failed and Duo is not required', async () => {
    sim.control.setFaults({ health: '500' });
    try {
      const health = await app.app.get(DuoHealthService).check(Date.now() + 3_600_000);
      expect(health.ok).toBe(false);
    } finally {
      sim.control.setFaults({ health: null });
    }
    const res = await fetch(`${app.url}/health/ready`);
    expect(res.status).toBe(200);
    const body = await json(res);
    expect(body.status).toBe('degraded');
    expect(body.details.duo).toMatchObject({
      status: 'degraded',
      state: 'down',
      source: 'local',
      error: 'unavailable',
    });
    expect(body.details.duo.ageMs).toEqual(expect.any(Number));
  });
});

describe('readiness with HEALTH_DUO_REQUIRED=true', () => {
  it('should answer 503 when the cached Duo health check failed', async () => {
    const app = await boot({ HEALTH_DUO_REQUIRED: 'true' });
    sim.control.setFaults({ health: 'fail_envelope' });
    try {
      await app.app.get(DuoHealthService).check(Date.now() + 3_600_000);
    } finally {
      sim.control.setFaults({ health: null });
    }
    const res = await fetch(`${app.url}/health/ready`);
    expect(res.status).toBe(503);
    expect(res.headers.get('cache-control')).toBe('no-store');
    const body = await json(res);
    expect(body.status).toBe('error');
    expect(body.error.duo).toMatchObject({ status: 'down', required: true });
    expect(body.details.database.status).toBe('up');
  });
});

describe('readiness with Redis', () => {
  it('should report Redis up when REDIS_URL answers PING', async () => {
    const app = await boot({ REDIS_URL });
    const res = await fetch(`${app.url}/health/ready`);
    expect(res.status).toBe(200);
    expect((await json(res)).details.redis.status).toBe('up');
  });

  it('should answer 503 with Redis down when REDIS_URL does not answer', async () => {
    const port = await freePort();
    const app = await boot({ REDIS_URL: `redis://127.0.0.1:${port}`, HEALTH_TIMEOUT_MS: '300' });
    const res = await fetch(`${app.url}/health/ready`);
    expect(res.status).toBe(503);
    const body = await json(res);
    expect(body.error.redis.status).toBe('down');
    expect(body.details.database.status).toBe('up');
    expect(JSON.stringify(body)).not.toContain('SESSION_SECRET');
  });
});

describe('readiness with PostgreSQL', () => {
  let db: TestDatabase;
  afterAll(async () => {
    await db?.drop();
  });

  it('should turn not ready when the database goes away', async () => {
    db = await createPgDatabase('operate');
    const app = await boot({ DATABASE_URL: db.url, HEALTH_TIMEOUT_MS: '500' });
    const up = await fetch(`${app.url}/health/ready`);
    expect(up.status).toBe(200);
    expect((await json(up)).details.database).toMatchObject({ status: 'up', type: 'postgres' });
    await db.drop();
    const down = await fetch(`${app.url}/health/ready`);
    expect(down.status).toBe(503);
    const body = await json(down);
    expect(body.error.database.status).toBe('down');
    expect(JSON.stringify(body)).not.toContain(db.name ?? 'no-name');
    const live = await fetch(`${app.url}/health/live`);
    expect(live.status).toBe(200);
  });
});

describe('metrics', () => {
  it('should count a sign-on, its Duo calls and the session without any username in the text', async () => {
    const app = await boot({ REDIS_URL });
    await signOn(app, 'alice');
    const res = await fetch(`${app.url}/metrics`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/plain/);
    expect(res.headers.get('cache-control')).toBe('no-store');
    const text = await res.text();
    expect(text).toMatch(/^duo_nest_signons_started_total 1$/m);
    expect(text).toMatch(
      /^duo_nest_signons_finished_total\{outcome="succeeded",reason="none",factor="[a-z_]+"\} 1$/m,
    );
    expect(text).toMatch(
      /^duo_nest_duo_call_duration_seconds_count\{endpoint="token",result="success"\} 1$/m,
    );
    expect(text).toMatch(
      /^duo_nest_duo_call_duration_seconds_count\{endpoint="health_check",result="success"\} 1$/m,
    );
    expect(text).toMatch(/^duo_nest_pending_logins 0$/m);
    expect(text).toMatch(/^duo_nest_sessions 1$/m);
    expect(text).toMatch(/^duo_nest_audit_events\{result="recorded"\} [1-9]\d*$/m);
    expect(text).toMatch(/^duo_nest_audit_spool_depth 0$/m);
    expect(text).toMatch(/^duo_nest_duo_circuit_state\{state="closed"\} 1$/m);
    expect(text).toMatch(/^duo_nest_duo_circuit_state\{state="open"\} 0$/m);
    expect(text).toMatch(/^process_cpu_user_seconds_total /m);
    expect(text).not.toContain('alice');
  });

  it('should count a refused callback by reason', async () => {
    const app = await boot();
    const res = await fetch(`${app.url}/auth/duo/callback?state=${'s'.repeat(43)}&duo_code=abc`, {
      headers: { accept: 'application/json' },
    });
    expect(res.status).toBe(400);
    const text = await (await fetch(`${app.url}/metrics`)).text();
    expect(text).toMatch(
      /^duo_nest_signons_finished_total\{outcome="failed",reason="state_unknown",factor="none"\} 1$/m,
    );
  });

  it('should count rate-limit refusals by route when the login limit is exceeded', async () => {
    const app = await boot({ RATE_LIMIT_LOGIN_PER_IP: '1' });
    const browser = new Browser();
    const first = await browser.postForm(`${app.url}/login`, { username: 'alice' });
    expect(first.status).toBe(303);
    const second = await browser.postForm(`${app.url}/login`, { username: 'alice' });
    expect(second.status).toBe(429);
    const text = await (await fetch(`${app.url}/metrics`)).text();
    expect(text).toMatch(/^duo_nest_rate_limited_total\{route="login"\} 1$/m);
  });

  it('should require the bearer token when METRICS_TOKEN is set', async () => {
    const app = await boot({ METRICS_TOKEN });
    const none = await fetch(`${app.url}/metrics`);
    expect(none.status).toBe(401);
    expect(none.headers.get('www-authenticate')).toMatch(/^Bearer/);
    const wrong = await fetch(`${app.url}/metrics`, {
      headers: { authorization: `Bearer ${METRICS_TOKEN}x` },
    });
    expect(wrong.status).toBe(401);
    const right = await fetch(`${app.url}/metrics`, {
      headers: { authorization: `Bearer ${METRICS_TOKEN}` },
    });
    expect(right.status).toBe(200);
    expect(await right.text()).toContain('duo_nest_signons_started_total');
  });

  it('should answer 404 when METRICS_ENABLED is false', async () => {
    const app = await boot({ METRICS_ENABLED: 'false' });
    const res = await fetch(`${app.url}/metrics`);
    expect(res.status).toBe(404);
    expect(await res.text()).not.toContain('duo_nest_');
  });
});
