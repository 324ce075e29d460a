import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { RunningSimulator } from '@duo-nest/simulator';
import { Browser, type RunningApp } from './support/app-harness.js';
import { startSimAndApp, type SimAndApp } from './support/sim-and-app.js';
import { auditEvents, JSON_ACCEPT, sessionCookies } from './support/duo-flow.js';

// Issue 11 item 3: one strict decoder for every parameter of every route (query, urlencoded body,
// cookies). A refusal is a 400 (413/415 for size and charset) with one input_validation_failed
// event, and never a pending login, a Duo call or a session.
let sim: RunningSimulator;
let app: RunningApp;
let booted: SimAndApp;
let nextIp = 1;

/** Each case comes from its own (forwarded) address, so the per-source folding keeps one row each. */
function freshIp(): string {
  nextIp += 1;
  return `198.51.100.${nextIp}`;
}

beforeAll(async () => {
  booted = await startSimAndApp({ env: { TRUST_PROXY: '1' } });
  ({ sim, app } = booted);
});
afterAll(async () => {
  await booted?.close();
});

function duoCalls(): number {
  const s = sim.control.stats();
  return s.health_check + s.authorize + s.token;
}

async function pendingLogins(): Promise<number> {
  const metrics = await fetch(`${app.url}/metrics`).then((r) => r.text());
  const line = /^duo_nest_pending_logins(?:\{[^}]*\})? (\d+)/m.exec(metrics);
  return line ? Number(line[1]) : -1;
}

/** POSTs a raw urlencoded body (as bytes: no client re-encoding) with this browser's CSRF token. */
async function postRaw(
  browser: Browser,
  ip: string,
  body: string | Buffer,
  contentType = 'application/x-www-form-urlencoded',
): Promise<Response> {
  const token = await browser.csrfToken(app.url);
  const prefix = Buffer.from(`_csrf=${token}&`);
  return browser.fetch(`${app.url}/login`, {
    method: 'POST',
    body: Buffer.concat([prefix, Buffer.isBuffer(body) ? body : Buffer.from(body, 'latin1')]),
    headers: { 'content-type': contentType, 'x-forwarded-for': ip, ...JSON_ACCEPT },
  });
}

async function expectOneRefusal(ip: string, reason: string): Promise<void> {
  const events = await auditEvents(app, { type: 'input_validation_failed', ip });
  expect(events).toHaveLength(1);
  expect(events[0]).toMatchObject({ reason, outcome: 'failure', clientIp: ip });
}

describe('strict urlencoded bodies (POST /login)', () => {
  it.each([
    ['a % without two hex digits', 'username=%ZZ', 'malformed_escape'],
    ['a % at the end', 'username=alice%', 'malformed_escape'],
    ['a % with one hex digit', 'username=alice%4', 'malformed_escape'],
    ['a malformed escape in a name', 'user%GGname=alice', 'malformed_escape'],
    ['an overlong slash (C0 AF)', 'username=%C0%AF', 'invalid_utf8'],
    ['an overlong 3-byte NUL (E0 80 80)', 'username=a%E0%80%80', 'invalid_utf8'],
    ['an overlong 4-byte euro (F0 82 82 AC)', 'username=%F0%82%82%AC', 'invalid_utf8'],
    ['a UTF-16 surrogate (ED A0 80)', 'username=%ED%A0%80', 'invalid_utf8'],
    ['a truncated sequence (E2 82)', 'username=alice%E2%82', 'invalid_utf8'],
    ['a lone continuation byte (80)', 'username=alice%80', 'invalid_utf8'],
    ['a code point above U+10FFFF (F4 90 80 80)', 'username=%F4%90%80%80', 'invalid_utf8'],
    ['a byte never in UTF-8 (FF)', 'username=%FF', 'invalid_utf8'],
    ['a duplicated name', 'username=alice&username=mallory', 'duplicate_key'],
    ['a duplicated name, once escaped', 'username=alice&user%6Eame=mallory', 'duplicate_key'],
    ['an empty name', 'username=alice&=x', 'empty_key'],
  ])(
    'should refuse %s with 400 and one audit event, before any Duo call',
    async (_w, body, reason) => {
      const ip = freshIp();
      const browser = new Browser();
      const before = duoCalls();
      const pending = await pendingLogins();
      const res = await postRaw(browser, ip, body);
      expect(res.status).toBe(400);
      expect(await res.json()).toMatchObject({ statusCode: 400, error: 'invalid_request' });
      expect(duoCalls()).toBe(before);
      expect(await pendingLogins()).toBe(pending);
      expect(sessionCookies(browser)).toEqual([]);
      await expectOneRefusal(ip, reason);
    },
  );

  it.each([
    ['username=alice&username=mallory&user%6Eame=eve', /username is given 3 times/],
    ['username=alice%ZZ', /% that is not followed by two hex digits/],
    ['username=%ED%A0%80', /not valid UTF-8/],
  ])('should tell the sender what is wrong with %s, never the value', async (body, message) => {
    const res = await postRaw(new Browser(), freshIp(), body);
    expect(res.status).toBe(400);
    const answer = (await res.json()) as { message: string };
    expect(answer.message).toMatch(message);
    expect(answer.message).not.toMatch(/alice|mallory|eve/);
  });

  it('should refuse raw bytes that are not UTF-8 (C0 AF unescaped)', async () => {
    const ip = freshIp();
    const before = duoCalls();
    const res = await postRaw(
      new Browser(),
      ip,
      Buffer.from([0x75, 0x73, 0x65, 0x72, 0x6e, 0x61, 0x6d, 0x65, 0x3d, 0xc0, 0xaf]),
    );
    expect(res.status).toBe(400);
    expect(duoCalls()).toBe(before);
    await expectOneRefusal(ip, 'invalid_utf8');
  });

  it('should refuse a charset other than UTF-8 with 415', async () => {
    const ip = freshIp();
    const res = await postRaw(
      new Browser(),
      ip,
      'username=alice',
      'application/x-www-form-urlencoded; charset=iso-8859-1',
    );
    expect(res.status).toBe(415);
    await expectOneRefusal(ip, 'unsupported_charset');
  });

  it('should decode well-formed escapes exactly once (%25ZZ is the text "%ZZ", é as C3 A9)', async () => {
    const browser = new Browser();
    const res = await postRaw(browser, freshIp(), 'username=Jos%C3%A9+%25ZZ');
    expect(res.status).toBe(303);
    const started = await auditEvents(app, { type: 'mfa_started', username: 'José %ZZ' });
    expect(started).toHaveLength(1);
  });

  it('should not let Nest mount its own lenient urlencoded parser (nested keys stay refused)', async () => {
    const ip = freshIp();
    const res = await postRaw(new Browser(), ip, 'username[a]=alice');
    expect(res.status).toBe(400);
    const events = await auditEvents(app, { type: 'input_validation_failed', ip });
    expect(events).toHaveLength(1);
    expect(events[0].reason).toBe('invalid_request');
  });
});

describe('strict query strings (every route)', () => {
  it.each([
    ['/', 'returnTo=%ZZ', 'malformed_escape'],
    ['/', 'returnTo=%2F%C0%AF', 'invalid_utf8'],
    ['/', 'returnTo=/a&returnTo=/b', 'duplicate_key'],
    ['/auth/duo/callback', 'state=aaaaaaaaaaaaaaaaaaaaaaaaaa&duo_code=x%ED%A0%80', 'invalid_utf8'],
    ['/auth/duo/callback', 'state=a&state=b&duo_code=c', 'duplicate_key'],
    ['/me', 'x=%E2%82', 'invalid_utf8'],
    ['/audit', 'type=mfa_started&type=mfa_failed', 'duplicate_key'],
    ['/health', 'x=%', 'malformed_escape'],
    ['/no-such-route', 'x=%G1', 'malformed_escape'],
  ])('should refuse GET %s?%s with 400 and one audit event', async (path, query, reason) => {
    const ip = freshIp();
    const before = duoCalls();
    const res = await fetch(`${app.url}${path}?${query}`, {
      headers: { 'x-forwarded-for': ip, ...JSON_ACCEPT },
    });
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({ error: 'invalid_request' });
    expect(duoCalls()).toBe(before);
    await expectOneRefusal(ip, reason);
  });

  // Node's HTTP parser refuses it before the app (no request reaches Express, so no audit row
  // either); parseStrictQuery would refuse it as invalid_char behind a more lenient front.
  it('should refuse a raw non-ASCII byte in the query', async () => {
    const ip = freshIp();
    // fetch would percent-encode it: write the request line by hand.
    const { request } = await import('node:http');
    const status = await new Promise<number>((resolve, reject) => {
      const url = new URL(app.url);
      const req = request(
        {
          host: url.hostname,
          port: url.port,
          path: '/?returnTo=/caf\xe9',
          headers: { 'x-forwarded-for': ip, accept: 'application/json' },
        },
        (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        },
      );
      req.on('error', reject);
      req.end();
    });
    expect(status).toBe(400);
    expect(await auditEvents(app, { ip })).toEqual([]);
  });

  it('should fold a flood from one source into one row per minute', async () => {
    const ip = freshIp();
    for (let i = 0; i < 25; i += 1) {
      const res = await fetch(`${app.url}/?returnTo=%ZZ`, {
        headers: { 'x-forwarded-for': ip, ...JSON_ACCEPT },
      });
      expect(res.status).toBe(400);
    }
    await expectOneRefusal(ip, 'malformed_escape');
  });

  it('should still serve a well-formed query', async () => {
    const res = await fetch(`${app.url}/?returnTo=%2Fme&reason=signed_out`);
    expect(res.status).toBe(200);
  });
});

describe('strict cookies', () => {
  it.each([
    ['a percent-escaped CSRF cookie', (v: string) => `duo_csrf=${v.slice(0, 40)}%41%42%43`],
    ['a duplicated CSRF cookie', (v: string) => `duo_csrf=${v}; duo_csrf=${v}`],
    ['a quoted CSRF cookie', (v: string) => `duo_csrf="${v}"`],
  ])('should treat %s as no cookie (403, audited)', async (_what, cookie) => {
    const ip = freshIp();
    const browser = new Browser();
    const token = await browser.csrfToken(app.url);
    const value = browser.cookies.get('duo_csrf') ?? '';
    const before = duoCalls();
    const res = await fetch(`${app.url}/login`, {
      method: 'POST',
      body: `_csrf=${token}&username=alice`,
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        cookie: cookie(value),
        'x-forwarded-for': ip,
        ...JSON_ACCEPT,
      },
    });
    expect(res.status).toBe(403);
    expect(duoCalls()).toBe(before);
    await expectOneRefusal(ip, 'csrf_no_cookie');
  });
});
