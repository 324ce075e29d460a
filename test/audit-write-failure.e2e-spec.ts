import { afterAll, afterEach, beforeAll, describe, expect, it, jest } from '@jest/globals';
import { AuditRepository, AuditService } from '@duo-nest/audit';
import { DuoSessionService } from '@duo-nest/core/internal';
import type { AuditRecord } from '../packages/audit/src/audit-record.js';
import { startSimulator, type RunningSimulator } from '@duo-nest/simulator';
import {
  Browser,
  location,
  startApp,
  type RunningApp,
  simulatorEnv,
} from './support/app-harness.js';
import {
  auditEvents,
  JSON_ACCEPT,
  NO_RATE_LIMITS,
  signOnToCallback,
  uniqueUser,
} from './support/duo-flow.js';

// Issue 11 item 8: a verified Duo success whose audit write fails must give neither the 303 nor a
// session. Deterministic: the write of `mfa_succeeded` is made to fail (not slowed), so an
// implementation that answers before the write, or ignores its failure, is caught on every run.
let sim: RunningSimulator;
let deny: RunningApp;
let spool: RunningApp;

beforeAll(async () => {
  sim = await startSimulator({ port: 0, auto: 'allow' });
  const env = { ...simulatorEnv(sim), ...NO_RATE_LIMITS };
  [deny, spool] = await Promise.all([
    startApp({ ...env, AUDIT_POLICY: 'deny' }),
    startApp({ ...env, AUDIT_POLICY: 'spool' }),
  ]);
});
afterEach(() => {
  jest.restoreAllMocks();
});
afterAll(async () => {
  await deny?.close();
  await spool?.close();
  await sim?.close();
});

/** Makes the database write of `mfa_succeeded` fail; every other event is written as usual. */
function failSuccessWrites(app: RunningApp): void {
  const repo = app.app.get(AuditRepository);
  const original = repo.appendRecord.bind(repo);
  jest.spyOn(repo, 'appendRecord').mockImplementation((record: AuditRecord) => {
    if (record.type === 'mfa_succeeded') {
      return Promise.reject(new Error('injected: audit database write failed'));
    }
    return original(record);
  });
}

/** The spool cannot take `mfa_succeeded` either (disk full). */
function failSuccessSpool(app: RunningApp): void {
  const audit = app.app.get(AuditService);
  const original = audit.spool.append.bind(audit.spool);
  jest.spyOn(audit.spool, 'append').mockImplementation((record: AuditRecord) => {
    if (record.type === 'mfa_succeeded') {
      return Promise.reject(new Error('injected: spool write failed'));
    }
    return original(record);
  });
}

function sessionCookieSet(res: Response): boolean {
  return res.headers
    .getSetCookie()
    .some((c) => /^(__Host-)?duo_session=[^;]+/.test(c) && !/max-age=0\b/i.test(c));
}

const CASES = [
  ['policy deny, database write fails', () => deny, (app: RunningApp) => failSuccessWrites(app)],
  [
    'policy spool, database and spool writes fail',
    () => spool,
    (app: RunningApp) => {
      failSuccessWrites(app);
      failSuccessSpool(app);
    },
  ],
] as const;

describe('a success whose audit write fails', () => {
  it.each(CASES)(
    '%s: no 303, no session cookie, no usable session (HTML and JSON)',
    async (_, appOf, breakAudit) => {
      const app = appOf();
      for (const headers of [{ accept: 'text/html' }, JSON_ACCEPT]) {
        const username = uniqueUser('auditfail');
        const browser = new Browser();
        const callback = await signOnToCallback(browser, app.url, username);
        const tokenCalls = sim.control.stats().token_success;
        const sessions = await app.app.get(DuoSessionService).count();
        breakAudit(app);
        const res = await browser.fetch(callback, { headers });
        await res.arrayBuffer();
        jest.restoreAllMocks();

        // The exchange really succeeded at Duo: only the audit write stood in the way.
        expect(sim.control.stats().token_success).toBe(tokenCalls + 1);
        expect(res.status).toBe(503);
        expect(res.headers.get('location')).toBeNull();
        expect(sessionCookieSet(res)).toBe(false);
        expect(browser.cookies.has('duo_session')).toBe(false);
        expect(await app.app.get(DuoSessionService).count()).toBe(sessions);
        const me = await browser.fetch(`${app.url}/me`, { headers: JSON_ACCEPT });
        expect(me.status).toBe(401);
        // Replaying the callback cannot turn it into a session either.
        const again = await browser.fetch(callback, { headers: JSON_ACCEPT });
        await again.arrayBuffer();
        expect(again.status).not.toBe(303);
        expect(browser.cookies.has('duo_session')).toBe(false);

        const events = await auditEvents(app, { username });
        expect(events.some((e) => e.type === 'mfa_succeeded')).toBe(false);
      }
    },
  );

  it.each(CASES)(
    '%s: the same sign-on works once the audit trail writes again',
    async (_, appOf, _breakAudit) => {
      const app = appOf();
      const username = uniqueUser('auditok');
      const browser = new Browser();
      const res = await browser.fetch(await signOnToCallback(browser, app.url, username));
      expect(res.status).toBe(303);
      expect(location(res)).toBe('/result');
      expect(sessionCookieSet(res)).toBe(true);
      const me = await browser.fetch(`${app.url}/me`, { headers: JSON_ACCEPT });
      expect(me.status).toBe(200);
    },
  );
});
