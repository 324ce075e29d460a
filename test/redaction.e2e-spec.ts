import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { DataSource } from 'typeorm';
import { buildTypeOrmOptions } from '../src/database/typeorm-options.js';
import { DuoFlowService } from '@duo-nest/core/internal';
import { startSimulator, type RunningSimulator } from '@duo-nest/simulator';
import { Browser, location, startApp, type RunningApp } from './support/app-harness.js';

// Case family RED (security-cases.md §2.11): the sign-on flows run with recognisable canary
// secrets; every log line, every response (headers and bodies), the audit tables and /metrics are
// then searched for the secrets and for every code, state, nonce, request JWT and session id seen.

const alnum = (n: number) =>
  randomBytes(n * 2)
    .toString('base64')
    .replace(/[^A-Za-z0-9]/g, '')
    .slice(0, n);
const CLIENT_SECRET = `CANARY${alnum(34)}`;
const SESSION_SECRET = `CANARY-session-secret-${alnum(24)}`;
const CHAIN_KEY = `CANARY-audit-chain-key-${alnum(24)}`;

interface Recorded {
  url: string;
  status: number;
  headers: [string, string][];
  body: string;
}

/** A Browser that keeps every response (headers and body) for the scan. */
class RecordingBrowser extends Browser {
  constructor(private readonly sink: Recorded[]) {
    super();
  }

  override async fetch(url: string, init: RequestInit = {}): Promise<Response> {
    const res = await super.fetch(url, init);
    const body = await res.clone().text();
    this.sink.push({ url, status: res.status, headers: [...res.headers], body });
    return res;
  }
}

let sim: RunningSimulator;
let app: RunningApp;
let openApp: RunningApp;
const logLines: string[] = [];
const printed: string[] = [];
const responses: Recorded[] = [];
/** Values seen during the flows that must never be stored or echoed. */
const seen = {
  codes: new Set<string>(),
  states: new Set<string>(),
  nonces: new Set<string>(),
  requestJwts: new Set<string>(),
  sessionIds: new Set<string>(),
};
const restore: (() => void)[] = [];

const logDestination = { write: (line: string) => void logLines.push(line) };

function captureProcessOutput(): void {
  for (const stream of [process.stdout, process.stderr]) {
    const original = stream.write.bind(stream);
    stream.write = (chunk: unknown, ...rest: unknown[]) => {
      printed.push(String(chunk));
      return (original as (...a: unknown[]) => boolean)(chunk, ...rest);
    };
    restore.push(() => {
      stream.write = original;
    });
  }
}

function noteAuthorizeUrl(url: string): void {
  const request = new URL(url).searchParams.get('request') ?? '';
  seen.requestJwts.add(request);
  const payload = JSON.parse(Buffer.from(request.split('.')[1] ?? '', 'base64url').toString()) as {
    state?: string;
    nonce?: string;
  };
  if (payload.state) {
    seen.states.add(payload.state);
  }
  if (payload.nonce) {
    seen.nonces.add(payload.nonce);
  }
}

function noteCallbackUrl(url: string): void {
  const q = new URL(url).searchParams;
  const code = q.get('duo_code');
  if (code) {
    seen.codes.add(code);
  }
}

function noteSession(browser: Browser): void {
  for (const [name, value] of browser.cookies) {
    if (/duo_session|duo_binding/.test(name)) {
      seen.sessionIds.add(value.split('.')[0]);
    }
  }
}

/** Sign-on up to the callback URL, noting state, nonce, request JWT and code. */
async function toCallback(target: RunningApp, browser: Browser, username: string): Promise<string> {
  const begin = await browser.postForm(`${target.url}/login`, { username });
  const authorize = location(begin);
  noteAuthorizeUrl(authorize);
  noteSession(browser);
  const duo = await browser.fetch(authorize);
  const callback = location(duo);
  noteCallbackUrl(callback);
  return callback;
}

async function runFlows(): Promise<void> {
  // Success, then /me, /result, /status, logout.
  const ok = new RecordingBrowser(responses);
  await ok.fetch(await toCallback(app, ok, 'alice'));
  noteSession(ok);
  for (const path of ['/me', '/result', '/status', '/step-up', '/admin']) {
    await ok.fetch(`${app.url}${path}`);
    await ok.fetch(`${app.url}${path}`, { headers: { accept: 'application/json' } });
  }
  await ok.postForm(`${app.url}/logout`, {});

  // Replay of a used callback, another browser's callback, a denied sign-on.
  const replay = new RecordingBrowser(responses);
  const cb = await toCallback(app, replay, 'bob');
  await replay.fetch(cb);
  noteSession(replay);
  await replay.fetch(cb);
  const victim = new RecordingBrowser(responses);
  const stolen = await toCallback(app, victim, 'carol');
  await new RecordingBrowser(responses).fetch(stolen);
  sim.control.nextOutcome({ username: 'dave', outcome: 'error_redirect' });
  const denied = new RecordingBrowser(responses);
  await denied.fetch(await toCallback(app, denied, 'dave'));

  // Token endpoint faults (RED-02): 500, bad signature, wrong nonce, 401 (the error objects get logged).
  for (const fault of ['500', 'bad_signature', 'wrong_nonce', '401', 'malformed_json'] as const) {
    const b = new RecordingBrowser(responses);
    const callback = await toCallback(app, b, 'erin');
    sim.control.setFaults({ token: fault, once: true });
    await b.fetch(callback);
    await b.fetch(callback, { headers: { accept: 'application/json' } });
  }
  sim.control.setFaults({ token: null });

  // Fail-open: Duo's health check down, failmode open.
  sim.control.setFaults({ health: 'down' });
  const open = new RecordingBrowser(responses);
  const fo = await open.postForm(`${openApp.url}/login`, { username: 'frank' });
  noteSession(open);
  await open.fetch(`${openApp.url}${location(fo)}`);
  await open.fetch(`${openApp.url}/status`, { headers: { accept: 'application/json' } });
  await open.postForm(`${openApp.url}/logout`, {});
  sim.control.setFaults({ health: null });

  // Malformed input, CSRF failure, /health and /metrics.
  const odd = new RecordingBrowser(responses);
  await odd.fetch(
    `${app.url}/auth/duo/callback?state=${[...seen.states][0]}&duo_code=${[...seen.codes][0]}&duo_code=x`,
  );
  await odd.fetch(`${app.url}/login`, {
    method: 'POST',
    body: 'username=x',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
  });
  for (const path of ['/health', '/health/ready', '/metrics']) {
    await odd.fetch(`${app.url}${path}`);
  }
}

beforeAll(async () => {
  captureProcessOutput();
  sim = await startSimulator({ port: 0, auto: 'allow', clientSecret: CLIENT_SECRET });
  const env = {
    DUO_CLIENT_ID: sim.clientId,
    DUO_CLIENT_SECRET: CLIENT_SECRET,
    DUO_API_HOST: sim.url,
    SESSION_SECRET,
    AUDIT_CHAIN_KEY: CHAIN_KEY,
    LOG_LEVEL: 'debug',
  };
  app = await startApp(env, { logDestination });
  openApp = await startApp({ ...env, DUO_FAILMODE: 'open' }, { logDestination });
  await runFlows();
});
afterAll(async () => {
  restore.forEach((r) => r());
  await app?.close();
  await openApp?.close();
  await sim?.close();
});

async function auditDump(target: RunningApp): Promise<string> {
  const rows: unknown = await target.app.get(DataSource).query('SELECT * FROM audit_events');
  return JSON.stringify(rows);
}

/** Every needle found in the haystack, by name (the value itself is never printed). */
function hits(haystack: string, needles: Record<string, Iterable<string>>): string[] {
  const found: string[] = [];
  for (const [name, values] of Object.entries(needles)) {
    for (const v of values) {
      if (v.length >= 8 && haystack.includes(v)) {
        found.push(name);
      }
    }
  }
  return found;
}

const JWT_SHAPE = /eyJ[A-Za-z0-9_-]{5,}\.eyJ/;
const secrets = () => ({
  clientSecret: [CLIENT_SECRET],
  sessionSecret: [SESSION_SECRET],
  chainKey: [CHAIN_KEY],
  canary: ['CANARY'],
});
const flowValues = () => ({
  code: seen.codes,
  state: seen.states,
  nonce: seen.nonces,
  requestJwt: seen.requestJwts,
  sessionId: seen.sessionIds,
});

describe('RED: secrets redaction', () => {
  it('RED-01 should have run the flows and seen codes, states, nonces and session ids to look for', () => {
    expect(seen.codes.size).toBeGreaterThanOrEqual(8);
    expect(seen.states.size).toBeGreaterThanOrEqual(8);
    expect(seen.nonces.size).toBeGreaterThanOrEqual(8);
    expect(seen.sessionIds.size).toBeGreaterThanOrEqual(3);
    expect(logLines.length).toBeGreaterThan(50);
    expect(responses.length).toBeGreaterThan(40);
  });

  it('RED-01 should find no canary, code, state, nonce, request JWT, session id or token in any log line', () => {
    const logs = logLines.join('') + printed.join('');
    const found = hits(logs, { ...secrets(), ...flowValues() });
    console.log(
      `canary scan: ${logLines.length} log lines, ${responses.length} responses; hits: ${found.length}`,
    );
    expect(found).toEqual([]);
    expect(logs).not.toMatch(JWT_SHAPE);
    // The simulator's access_token shape: 43 base64url characters on their own.
    expect(logs).not.toMatch(/(?<![A-Za-z0-9_-])[A-Za-z0-9_-]{43}(?![A-Za-z0-9_-])/);
  });

  it('RED-01 should find no canary, code, state, nonce or token in any response header or body', () => {
    const ours = responses.filter(
      (r) => r.url.startsWith(app.url) || r.url.startsWith(openApp.url),
    );
    expect(ours.length).toBeGreaterThan(30);
    for (const r of ours) {
      const toDuo = r.status === 303 && /\/oauth\/v1\/authorize\?/.test(r.body);
      const headers = r.headers
        // The legitimate places: the session/binding cookies and the redirect to Duo (request JWT).
        .filter(
          ([name]) =>
            name !== 'set-cookie' &&
            !(
              name === 'location' &&
              r.status === 303 &&
              /\/oauth\/v1\/authorize\?/.test(r.headers.find(([n]) => n === 'location')?.[1] ?? '')
            ),
        )
        .map(([n, v]) => `${n}: ${v}`)
        .join('\n');
      // Express's 303 body repeats the Location (the redirect to Duo carries the request JWT).
      const text = `${headers}\n${toDuo ? '' : r.body}`;
      expect(
        hits(text, {
          ...secrets(),
          code: seen.codes,
          state: seen.states,
          nonce: seen.nonces,
          sessionId: seen.sessionIds,
        }),
      ).toEqual([]);
      expect(text.match(JWT_SHAPE)?.[0]).toBeUndefined();
    }
  });

  it('RED-01 should find no canary, code, state, nonce, request JWT, session id or token in the audit tables', async () => {
    for (const target of [app, openApp]) {
      const dump = await auditDump(target);
      expect(dump.length).toBeGreaterThan(100);
      expect(hits(dump, { ...secrets(), ...flowValues() })).toEqual([]);
      expect(JWT_SHAPE.test(dump)).toBe(false);
    }
  });

  it('RED-01 should find no canary or flow value in /metrics', async () => {
    const res = await fetch(`${app.url}/metrics`);
    const text = await res.text();
    expect(hits(text, { ...secrets(), ...flowValues() })).toEqual([]);
    expect(text).not.toMatch(JWT_SHAPE);
  });

  it('RED-02 should log token-endpoint failures as codes and names only: no request body, headers or config', () => {
    const logs = logLines.join('');
    expect(logs).toMatch(/token_response|unavailable|id_token_signature|invalid_client/);
    expect(
      // Duo's own error text may name a parameter; a body or header dump would carry its value.
      logs.match(
        /client_assertion=|grant_type=|"client_assertion"|authorization:|"headers"|clientSecret/i,
      )?.[0],
    ).toBeUndefined();
  });

  it('RED-03 should keep ORM query logging off and name no password when the database is unreachable', async () => {
    const password = `CANARYpw${alnum(12)}`;
    const options = buildTypeOrmOptions({
      databaseUrl: `postgres://duo:${password}@127.0.0.1:1/nowhere`,
      migrationsRun: false,
    });
    expect(options.logging).toBe(false);
    const ds = new DataSource(options);
    const err = await ds.initialize().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(typeof (err as Error).message).toBe('string');
    const text = `${String(err)} ${(err as Error).stack ?? ''} ${JSON.stringify(err)}`;
    expect(text).not.toContain(password);
  });

  it('RED-04 should answer an unhandled callback error with a generic body and a correlation id, no stack', async () => {
    const flow = app.app.get(DuoFlowService);
    const original = flow.completeCallback.bind(flow);
    flow.completeCallback = () =>
      Promise.reject(new TypeError('unexpected failure in the callback'));
    try {
      const b = new Browser();
      const callback = await toCallback(app, b, 'grace');
      const res = await b.fetch(callback, { headers: { accept: 'application/json' } });
      const body = await res.text();
      const id = res.headers.get('x-request-id');
      expect(res.status).toBe(500);
      expect(id).toMatch(/^[A-Za-z0-9._-]{1,64}$/);
      expect(body).not.toMatch(/\bat .*\.(ts|js):\d+|TypeError|unexpected failure/);
      expect(
        logLines.some((l) => l.includes(`"reqId":"${id}"`) && l.includes('"status":500')),
      ).toBe(true);
    } finally {
      flow.completeCallback = original;
    }
  });

  it('RED-05 should redact at level debug too (the allow-list is in the serializer, not the level)', () => {
    expect(
      logLines.some((l) => l.includes('"level":"debug"') || l.includes('"level":"info"')),
    ).toBe(true);
    expect(hits(logLines.join(''), { ...secrets(), ...flowValues() })).toEqual([]);
  });

  it('RED-06 should log the callback path without its query string (duo_code and state masked)', () => {
    const callbackLines = logLines.filter((l) => l.includes('/auth/duo/callback'));
    expect(callbackLines.length).toBeGreaterThan(5);
    for (const line of callbackLines) {
      expect(line).not.toMatch(/duo_code|state=|\?/);
    }
  });

  it('RED-07 should keep only allow-listed claims of the id_token in the audit trail, never the token', async () => {
    const dump = await auditDump(app);
    expect(dump).toContain('mfa_succeeded');
    // Reason codes such as id_token_nonce are fine; a field holding a token is not.
    expect(/"(id_token|access_token)"\s*:/.test(dump)).toBe(false);
    expect(JWT_SHAPE.test(dump)).toBe(false);
  });
});
