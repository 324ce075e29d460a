import { afterAll, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import { createRequire } from 'node:module';
import { startSimulator } from './index.js';
import { authorizeForCode, authorizeUrl, decodePayload, exchange, get, post } from './spec-kit.js';
import type { AuthLogInput, RunningSimulator, SimAuthLogEntry } from './types.js';

// Requests are signed with Duo's official Admin API SDK (@duosecurity/duo_api, signV5), so the
// simulator's own verifier is checked against Duo's code, not against ours.
const require = createRequire(import.meta.url);
const duoSig = require('@duosecurity/duo_api/lib/duo_sig.js') as {
  signV5: (
    ...args: [string, string, string, string, string, Record<string, string>, string, string]
  ) => string;
};
const PATH = '/admin/v2/logs/authentication';

let sim: RunningSimulator;
const extra: RunningSimulator[] = [];
beforeAll(async () => {
  sim = await startSimulator({ applicationName: 'Log App' });
});
afterAll(async () => {
  await Promise.all([sim, ...extra].map((s) => s.close()));
});
beforeEach(() => sim.control.reset());

interface SignOpts {
  ikey?: string;
  skey?: string;
  date?: string | null;
  host?: string;
  path?: string;
  /** Replaces the query actually sent (after signing the params). */
  sentQuery?: string;
}

function qs(params: Record<string, string>): string {
  return Object.entries(params)
    .map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`)
    .join('&');
}

async function adminGet(s: RunningSimulator, params: Record<string, string>, o: SignOpts = {}) {
  const date = o.date === undefined ? new Date().toUTCString() : o.date;
  const host = s.apiHost;
  const auth = duoSig.signV5(
    o.ikey ?? s.adminIntegrationKey,
    o.skey ?? s.adminSecretKey,
    'GET',
    o.host ?? host,
    o.path ?? PATH,
    params,
    date ?? 'Thu, 01 Jan 1970 00:00:00 GMT',
    '',
  );
  const headers: Record<string, string> = { authorization: auth };
  if (date !== null) {
    headers.date = date;
  }
  const res = await fetch(`${s.url}${PATH}?${o.sentQuery ?? qs(params)}`, { headers });
  return { res, body: (await res.json()) as Record<string, unknown> };
}

const NOW = Date.now();
const window = (extraParams: Record<string, string> = {}) => ({
  mintime: String(NOW - 3_600_000),
  maxtime: String(NOW + 3_600_000),
  ...extraParams,
});

type Page = {
  authlogs: SimAuthLogEntry[];
  metadata: { next_offset: [string, string] | null; total_objects: number };
};

describe('authentication log: request signature', () => {
  it('accepts a request signed by the official SDK (v5) and answers Duo envelope with an empty log', async () => {
    const { res, body } = await adminGet(sim, window());
    expect(res.status).toBe(200);
    expect(body).toEqual({
      stat: 'OK',
      response: { authlogs: [], metadata: { next_offset: null, total_objects: 0 } },
    });
  });

  it.each([
    [
      'a wrong secret key',
      { skey: 'x'.repeat(40) },
      40103,
      'Invalid signature in request credentials',
    ],
    [
      'an unknown integration key',
      { ikey: 'DIXXXXXXXXXXXXXXXXXX' },
      40102,
      'Invalid integration key in request credentials',
    ],
    [
      'another path signed',
      { path: '/admin/v1/logs/authentication' },
      40103,
      'Invalid signature in request credentials',
    ],
    [
      'another host signed',
      { host: 'api-other.duosecurity.com' },
      40103,
      'Invalid signature in request credentials',
    ],
    [
      'a parameter changed after signing',
      { sentQuery: qs(window({ limit: '5' })) },
      40103,
      'Invalid signature in request credentials',
    ],
    [
      'a Date 10 minutes old',
      { date: new Date(Date.now() - 600_000).toUTCString() },
      40104,
      'Invalid request timestamp',
    ],
    ['no Date header', { date: null }, 40104, 'Invalid request timestamp'],
    [
      'a Date not in RFC 2822 form',
      { date: new Date().toISOString() },
      40104,
      'Invalid request timestamp',
    ],
  ] as const)(
    'refuses %s with 401 and Duo code %i, and returns no entry',
    async (_name, opts, code, message) => {
      sim.control.addAuthLogEntries([
        { username: 'alice', result: 'success', reason: 'user_approved' },
      ]);
      const { res, body } = await adminGet(sim, window({ limit: '10' }), opts);
      expect(res.status).toBe(401);
      expect(body).toEqual({ stat: 'FAIL', code, message });
      expect(sim.control.stats().admin_refused).toBe(1);
    },
  );

  it('refuses a missing or non-Basic Authorization header with 40101', async () => {
    for (const headers of <Record<string, string>[]>[
      {},
      { authorization: 'Bearer abc', date: new Date().toUTCString() },
    ]) {
      const res = await fetch(`${sim.url}${PATH}?${qs(window())}`, { headers });
      expect(res.status).toBe(401);
      expect(await res.json()).toEqual({
        stat: 'FAIL',
        code: 40101,
        message: 'Missing request credentials',
      });
    }
  });

  it('refuses bad parameters with 400 40002 after a valid signature', async () => {
    for (const [params, detail] of [
      [{ maxtime: String(NOW) }, 'mintime'],
      [{ mintime: String(NOW) }, 'maxtime'],
      [{ mintime: String(NOW), maxtime: String(NOW) }, 'maxtime'],
      [window({ limit: '1001' }), 'limit'],
      [window({ limit: '0' }), 'limit'],
      [window({ sort: 'name' }), 'sort'],
      [window({ next_offset: 'abc' }), 'next_offset'],
      [window({ users: 'x' }), 'users (not implemented by the simulator)'],
    ] as const) {
      const { res, body } = await adminGet(sim, params);
      expect(res.status).toBe(400);
      expect(body).toEqual({
        stat: 'FAIL',
        code: 40002,
        message: 'Invalid request parameters',
        message_detail: detail,
      });
    }
  });
});

describe('authentication log: paging', () => {
  function inject(n: number, start = NOW - 1_800_000): string[] {
    const entries: AuthLogInput[] = [];
    for (let i = 0; i < n; i++) {
      // Several entries share a millisecond: paging must order them by txid too.
      entries.push({
        username: `user${i % 7}`,
        result: 'success',
        reason: 'user_approved',
        timestampMs: start + Math.floor(i / 3),
      });
    }
    return sim.control.addAuthLogEntries(entries);
  }

  async function allPages(params: Record<string, string>) {
    const pages: Page[] = [];
    let offset: [string, string] | null = null;
    do {
      const { res, body } = await adminGet(
        sim,
        offset ? { ...params, next_offset: offset.join(',') } : params,
      );
      expect(res.status).toBe(200);
      const page = body.response as Page;
      pages.push(page);
      offset = page.metadata.next_offset;
    } while (offset);
    return pages;
  }

  it('pages 2,500 entries by 1,000 oldest first: every entry once, in order, total_objects on each page', async () => {
    const txids = inject(2500);
    const pages = await allPages(window({ limit: '1000', sort: 'ts:asc' }));
    expect(pages.map((p) => p.authlogs.length)).toEqual([1000, 1000, 500]);
    expect(pages.every((p) => p.metadata.total_objects === 2500)).toBe(true);
    const seen = pages.flatMap((p) => p.authlogs.map((e) => e.txid));
    expect(new Set(seen).size).toBe(2500);
    expect(new Set(seen)).toEqual(new Set(txids));
    const keys = pages.flatMap((p) =>
      p.authlogs.map((e) => [Date.parse(e.isotimestamp), e.txid] as const),
    );
    for (let i = 1; i < keys.length; i++) {
      const [a, b] = [keys[i - 1], keys[i]];
      expect(a[0] < b[0] || (a[0] === b[0] && a[1] < b[1])).toBe(true);
    }
    const first = pages[0];
    const last = first.authlogs.at(-1)!;
    expect(first.metadata.next_offset).toEqual([String(Date.parse(last.isotimestamp)), last.txid]);
    expect(pages[2].metadata.next_offset).toBeNull();
  });

  it('pages newest first by default (Duo: ts:desc, limit 100) and respects mintime/maxtime', async () => {
    inject(250, NOW - 1_000_000);
    const pages = await allPages(window());
    expect(pages.map((p) => p.authlogs.length)).toEqual([100, 100, 50]);
    const times = pages.flatMap((p) => p.authlogs.map((e) => e.timestamp));
    expect([...times].sort((a, b) => b - a)).toEqual(times);
    const { body } = await adminGet(sim, {
      mintime: String(NOW - 1_000_000),
      maxtime: String(NOW - 1_000_000 + 9),
    });
    expect((body.response as Page).metadata.total_objects).toBe(30); // 10 ms x 3 entries
  });

  it('filters by application (the integration key in each entry)', async () => {
    sim.control.addAuthLogEntries([
      { username: 'a', result: 'success', reason: 'user_approved' },
      {
        username: 'b',
        result: 'success',
        reason: 'user_approved',
        applicationKey: 'DIOTHERAPPLICATION00',
      },
    ]);
    const { body } = await adminGet(sim, window({ applications: sim.clientId }));
    const page = body.response as Page;
    expect(page.authlogs.map((e) => e.user.name)).toEqual(['a']);
    expect(page.authlogs[0].application).toEqual({ key: sim.clientId, name: 'Log App' });
  });
});

describe('authentication log: scripted 429 and outage', () => {
  it('answers 429 (with the Retry-After asked for) the scripted number of times, then serves the log', async () => {
    const set = await fetch(`${sim.url}/__sim/admin-faults`, {
      method: 'POST',
      body: JSON.stringify({ fault: '429', count: 2, retryAfterSec: 1 }),
    });
    expect(set.status).toBe(200);
    for (let i = 0; i < 2; i++) {
      const { res, body } = await adminGet(sim, window());
      expect(res.status).toBe(429);
      expect(res.headers.get('retry-after')).toBe('1');
      expect(body).toEqual({ stat: 'FAIL', code: 42901, message: 'Too Many Requests' });
    }
    expect((await adminGet(sim, window())).res.status).toBe(200);
  });

  it('an outage answers 503 until cleared; a bad fault setting is refused', async () => {
    sim.control.setAdminFault({ fault: 'outage' });
    for (let i = 0; i < 3; i++) {
      expect((await fetch(`${sim.url}${PATH}`)).status).toBe(503);
    }
    const bad = await fetch(`${sim.url}/__sim/admin-faults`, {
      method: 'POST',
      body: JSON.stringify({ fault: 'boom' }),
    });
    expect(bad.status).toBe(400);
    sim.control.setAdminFault({ fault: null });
    expect((await adminGet(sim, window())).res.status).toBe(200);
  });
});

describe('authentication log: decisions', () => {
  async function openPrompt(username: string) {
    const { url } = await authorizeUrl(sim, { username });
    const html = await (await get(url)).text();
    return { html, txn: /name="txn" value="([^"]+)"/.exec(html)?.[1] ?? '' };
  }

  it('an approval is logged as success with the txid of the id_token', async () => {
    const { html, txn } = await openPrompt('bob');
    expect(html).toContain('id="fraud"');
    const res = await post(`${sim.url}/frame/prompt`, {
      txn,
      action: 'approve',
      factor: 'duo_push',
    });
    const code = new URL(res.headers.get('location')!).searchParams.get('duo_code')!;
    const token = (await (await exchange(sim, code)).json()) as { id_token: string };
    const ctx = decodePayload(token.id_token).auth_context as { txid: string };
    const [entry] = sim.control.authLog();
    expect(entry).toMatchObject({
      txid: ctx.txid,
      result: 'success',
      reason: 'user_approved',
      factor: 'duo_push',
      event_type: 'authentication',
      user: { name: 'bob' },
      application: { key: sim.clientId, name: 'Log App' },
    });
  });

  it('"Report fraud" on the prompt denies, shows the denial page and logs result fraud, reason user_marked_fraud', async () => {
    const { txn } = await openPrompt('bob');
    const res = await post(`${sim.url}/frame/prompt`, { txn, action: 'fraud' });
    expect(res.status).toBe(200);
    expect(await res.text()).toContain('user_marked_fraud');
    expect(sim.control.authLog()).toMatchObject([
      { result: 'fraud', reason: 'user_marked_fraud', user: { name: 'bob' } },
    ]);
    const { body } = await adminGet(sim, window());
    expect((body.response as Page).authlogs).toMatchObject([
      { result: 'fraud', reason: 'user_marked_fraud' },
    ]);
  });

  it('deny, lockout, disabled, bypass and scripted fraud and timeout each append exactly one entry', async () => {
    sim.control.setUsers([
      { username: 'locked', status: 'locked_out' },
      { username: 'gone', status: 'disabled' },
      { username: 'by', status: 'bypass' },
    ]);
    const deny = await openPrompt('bob');
    await post(`${sim.url}/frame/prompt`, { txn: deny.txn, action: 'deny' });
    await get((await authorizeUrl(sim, { username: 'locked' })).url);
    await get((await authorizeUrl(sim, { username: 'gone' })).url);
    await authorizeForCode(sim, { username: 'by' });
    sim.control.nextOutcome({ username: 'carol', outcome: 'fraud' });
    await get((await authorizeUrl(sim, { username: 'carol' })).url);
    sim.control.nextOutcome({ username: 'dave', outcome: 'timeout' });
    await get((await authorizeUrl(sim, { username: 'dave' })).url);
    expect(sim.control.authLog().map((e) => [e.user.name, e.result, e.reason])).toEqual([
      ['bob', 'denied', 'user_mistake'],
      ['locked', 'denied', 'locked_out'],
      ['gone', 'denied', 'user_disabled'],
      ['by', 'success', 'bypass_user'],
      ['carol', 'fraud', 'user_marked_fraud'],
      ['dave', 'failure', 'no_response'],
    ]);
    expect(new Set(sim.control.authLog().map((e) => e.txid)).size).toBe(6);
  });

  it('auto mode fraud reports fraud for every authorize; a prompt left to expire is logged once as a timeout', async () => {
    const auto = await startSimulator({ auto: 'fraud' });
    extra.push(auto);
    const res = await get((await authorizeUrl(auto, { username: 'erin' })).url);
    expect(res.status).toBe(200);
    expect(auto.control.authLog()).toMatchObject([
      { result: 'fraud', reason: 'user_marked_fraud', user: { name: 'erin' } },
    ]);

    await openPrompt('frank');
    const sweepAt = Date.now() + 11 * 60_000;
    (sim.control as unknown as { sweep(now: number): void }).sweep(sweepAt);
    (sim.control as unknown as { sweep(now: number): void }).sweep(sweepAt + 1);
    expect(sim.control.authLog().map((e) => [e.user.name, e.result, e.reason])).toEqual([
      ['frank', 'failure', 'no_response'],
    ]);
  });
});
