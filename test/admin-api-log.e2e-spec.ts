import { afterAll, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import {
  DuoAdminClient,
  DuoAdminConfigError,
  DuoAdminError,
  type DuoAdminClientOptions,
  type DuoAuthLogEntry,
} from '../packages/audit/src/admin-api/index.js';
import { startSimulator, type AuthLogInput, type RunningSimulator } from '@duo-nest/simulator';

// Our Admin API client reads the simulator's authentication log over HTTP: the simulator verifies
// the signature with its own implementation and pages as Duo does.
let sim: RunningSimulator;
const NOW = Date.now();
const WINDOW = { mintime: NOW - 3_600_000, maxtime: NOW + 3_600_000 };

function client(over: Partial<DuoAdminClientOptions> = {}, sleeps: number[] = []) {
  return new DuoAdminClient(
    {
      integrationKey: sim.adminIntegrationKey,
      secretKey: sim.adminSecretKey,
      apiHost: sim.url,
      allowInsecureHttp: true,
      backoffBaseMs: 20,
      ...over,
    },
    {
      sleep: (ms) => {
        sleeps.push(ms);
        return new Promise((r) => setTimeout(r, Math.min(ms, 50)));
      },
    },
  );
}

async function caught(p: Promise<unknown>): Promise<DuoAdminError> {
  try {
    await p;
  } catch (err) {
    if (err instanceof DuoAdminError) {
      return err;
    }
    throw err;
  }
  throw new Error('expected a DuoAdminError');
}

beforeAll(async () => {
  sim = await startSimulator();
});
afterAll(() => sim.close());
beforeEach(() => sim.control.reset());

function inject(n: number): string[] {
  const entries: AuthLogInput[] = Array.from({ length: n }, (_, i) => ({
    username: `u${i % 5}`,
    result: i % 10 === 0 ? 'fraud' : 'success',
    reason: i % 10 === 0 ? 'user_marked_fraud' : 'user_approved',
    timestampMs: NOW - 1_000_000 + Math.floor(i / 2),
  }));
  return sim.control.addAuthLogEntries(entries);
}

describe('DuoAdminClient against the simulator', () => {
  it('pages 2,345 entries over 3 pages of 1,000 (then 345): each entry once, oldest first, cursor per page', async () => {
    const txids = inject(2345);
    const pages = [];
    for await (const page of client().authenticationLogPages({ ...WINDOW, limit: 1000 })) {
      pages.push(page);
    }
    expect(pages.map((p) => p.entries.length)).toEqual([1000, 1000, 345]);
    expect(pages.map((p) => p.totalObjects)).toEqual([2345, 2345, 2345]);
    const seen = pages.flatMap((p) => p.entries.map((e: DuoAuthLogEntry) => e.txid));
    expect(seen).toHaveLength(2345);
    expect(new Set(seen)).toEqual(new Set(txids));
    expect(pages[0].nextOffset?.[1]).toBe(pages[0].entries[999].txid);
    expect(pages[2].nextOffset).toBeNull();
    const fraud = pages.flatMap((p) => p.entries).filter((e) => e.result === 'fraud');
    expect(fraud).toHaveLength(235);
    expect(fraud[0]).toMatchObject({
      reason: 'user_marked_fraud',
      application: { key: sim.clientId },
    });
  });

  it('resumes from a saved cursor without gaps or repeats (what a restart does)', async () => {
    inject(1500);
    const c = client();
    const first = await c.getAuthenticationLogPage({ ...WINDOW, limit: 600 });
    const rest = [];
    for await (const page of client().authenticationLogPages({
      ...WINDOW,
      limit: 600,
      nextOffset: first.nextOffset!,
    })) {
      rest.push(...page.entries);
    }
    const all = [...first.entries, ...rest].map((e) => e.txid);
    expect(all).toHaveLength(1500);
    expect(new Set(all).size).toBe(1500);
  });

  it('a 429 is retried after a backoff and then succeeds; Retry-After is honoured', async () => {
    inject(3);
    sim.control.setAdminFault({ fault: '429', count: 2 });
    const sleeps: number[] = [];
    const page = await client({}, sleeps).getAuthenticationLogPage(WINDOW);
    expect(page.entries).toHaveLength(3);
    expect(page.attempts).toBe(3);
    expect(sleeps).toHaveLength(2);
    expect(sleeps[0]).toBeGreaterThanOrEqual(20);
    expect(sleeps[1]).toBeGreaterThanOrEqual(40); // doubled

    sim.control.setAdminFault({ fault: '429', count: 1, retryAfterSec: 1 });
    const honoured: number[] = [];
    await client({}, honoured).getAuthenticationLogPage(WINDOW);
    expect(honoured).toEqual([1000]);
  });

  it('429 on every try: admin_rate_limited after maxAttempts, bounded', async () => {
    sim.control.setAdminFault({ fault: '429' });
    const sleeps: number[] = [];
    const err = await caught(client({ maxAttempts: 3 }, sleeps).getAuthenticationLogPage(WINDOW));
    expect(err.code).toBe('admin_rate_limited');
    expect(err.details).toEqual({ status: 429, duoCode: 42901 });
    expect(sleeps).toHaveLength(2);
    expect(sim.control.stats().admin_log).toBe(3);
  });

  it('an outage is a typed admin_unavailable, not retried; a hung Duo times out', async () => {
    sim.control.setAdminFault({ fault: 'outage' });
    const err = await caught(client().getAuthenticationLogPage(WINDOW));
    expect(err.code).toBe('admin_unavailable');
    expect(err.details.status).toBe(503);
    expect(sim.control.stats().admin_log).toBe(1);

    sim.control.setAdminFault({ fault: 'timeout', count: 1 });
    const started = Date.now();
    const slow = await caught(client({ timeoutMs: 300 }).getAuthenticationLogPage(WINDOW));
    expect(slow.code).toBe('admin_unavailable');
    expect(slow.message).toContain('did not answer within 300 ms');
    expect(Date.now() - started).toBeLessThan(3000);
  });

  it('a bad secret is admin_unauthorized with Duo code 40103, and no message carries a key', async () => {
    const badSecret = 'Q'.repeat(40);
    const err = await caught(client({ secretKey: badSecret }).getAuthenticationLogPage(WINDOW));
    expect(err.code).toBe('admin_unauthorized');
    expect(err.details).toEqual({ status: 401, duoCode: 40103 });
    const text = `${err.message} ${JSON.stringify(err)} ${String(err.stack)}`;
    for (const secret of [badSecret, sim.adminSecretKey, sim.adminIntegrationKey]) {
      expect(text).not.toContain(secret);
    }
    const unknown = await caught(
      client({ integrationKey: 'DIUNKNOWNKEY00000000' }).getAuthenticationLogPage(WINDOW),
    );
    expect(unknown.details.duoCode).toBe(40102);
  });

  it('an answer over the size cap is admin_response; a bad query is refused before sending', async () => {
    inject(1000);
    const err = await caught(
      client({ maxResponseBytes: 64 * 1024 }).getAuthenticationLogPage({ ...WINDOW, limit: 1000 }),
    );
    expect(err.code).toBe('admin_response');
    const before = sim.control.stats().admin_log;
    for (const q of [
      { ...WINDOW, limit: 1001 },
      { mintime: WINDOW.maxtime, maxtime: WINDOW.mintime },
      { mintime: 5, maxtime: 10 },
      { ...WINDOW, nextOffset: ['1', 'x'] as const },
    ]) {
      expect((await caught(client().getAuthenticationLogPage(q))).code).toBe(
        'admin_invalid_argument',
      );
    }
    expect(sim.control.stats().admin_log).toBe(before);
  });

  it('filters by application: only the Universal Prompt client id entries', async () => {
    sim.control.addAuthLogEntries([
      { username: 'a', result: 'success', reason: 'user_approved' },
      {
        username: 'b',
        result: 'success',
        reason: 'user_approved',
        applicationKey: 'DIOTHER0000000000000',
      },
    ]);
    const page = await client().getAuthenticationLogPage({
      ...WINDOW,
      applications: [sim.clientId],
    });
    expect(page.entries.map((e) => e.user.name)).toEqual(['a']);
  });

  it('bad options are one DuoAdminConfigError naming the fields, never the values', () => {
    const secret = 'short-secret-value';
    let err: unknown;
    try {
      new DuoAdminClient({ integrationKey: 'nope', secretKey: secret, apiHost: 'http://x:1' });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(DuoAdminConfigError);
    const issues = (err as DuoAdminConfigError).issues.map((i) => i.field);
    expect(issues).toEqual(['integrationKey', 'secretKey', 'apiHost']);
    expect((err as Error).message).not.toContain(secret);
  });
});
