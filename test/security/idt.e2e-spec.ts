/**
 * Catalogue 2.1 (IDT): ID-token and token-response validation, driven through the REAL app over
 * HTTP. Duo is the in-process simulator; where it has a fault switch for the malformation it is used
 * (bad_signature, alg_none, wrong_alg_hs256, wrong_aud, aud_array, wrong_nonce, missing_nonce,
 * just_inside_leeway, case_changed_username, missing_id_token, bad_token_type...). Every other token
 * is crafted by a transparent proxy between the app and the simulator (test/support/security-stack.ts):
 * it takes the simulator's genuine answer (so nonce, username and auth_context are the live ones)
 * and replaces the id_token with a hand-built JWS, signed with the client secret unless the case
 * says otherwise. Each failing case also asserts the "expect nothing" side (IDT-45).
 *
 * Not applicable here: none — IDT-05, 12, 18, 21, 29, 33, 40, 42 are not in the catalogue.
 */
import { afterAll, beforeAll, describe, expect, it, jest } from '@jest/globals';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Logger } from '@nestjs/common';
import { Browser } from '../support/app-harness.js';
import { auditEvents, JSON_ACCEPT, signOnToCallback, uniqueUser } from '../support/duo-flow.js';
import {
  b64u,
  me,
  nowSec,
  rawJws,
  sessionId,
  type Stack,
  startStack,
  type TokenAnswer,
  type TokenReply,
  withIdToken,
} from '../support/security-stack.js';
import type { TokenFault } from '@duo-nest/simulator';

jest.setTimeout(30_000);

let stack: Stack;
let secret: string;
let keyListener: Server;
let keyListenerHits = 0;
let keyListenerUrl: string;

beforeAll(async () => {
  stack = await startStack();
  secret = stack.sim.clientSecret;
  keyListener = createServer((_req, res) => {
    keyListenerHits += 1;
    res.end('{}');
  });
  await new Promise<void>((r) => keyListener.listen(0, '127.0.0.1', r));
  keyListenerUrl = `http://127.0.0.1:${(keyListener.address() as AddressInfo).port}`;
});

afterAll(async () => {
  await stack?.close();
  await new Promise<void>((r) => keyListener.close(() => r()));
});

type Claims = Record<string, unknown>;
type Craft = (a: TokenAnswer) => TokenReply;

const HEADER = { alg: 'HS512', typ: 'JWT' };
/** Re-signs the live claims, changed by `edit` (undefined values are dropped). */
const claims =
  (edit: (c: Claims) => Claims, header: object = HEADER): Craft =>
  (a) =>
    withIdToken(a, rawJws(header, dropUndefined(edit({ ...a.claims })), secret));
const token =
  (build: (c: Claims, original: string) => string): Craft =>
  (a) =>
    withIdToken(a, build({ ...a.claims }, String(a.json?.id_token)));

function dropUndefined(c: Claims): Claims {
  return Object.fromEntries(Object.entries(c).filter(([, v]) => v !== undefined));
}

interface Outcome {
  status: number;
  error?: string;
  username: string;
  browser: Browser;
  tokenCalls: number;
}

/** One sign-on whose token answer is crafted (or faulted in the simulator). */
async function run(
  how: { craft?: Craft; fault?: TokenFault },
  username = uniqueUser('idt'),
): Promise<Outcome> {
  const browser = new Browser();
  stack.proxy.onToken = how.craft;
  if (how.fault) {
    stack.sim.control.setFaults({ token: how.fault, once: true });
  }
  try {
    const callback = await signOnToCallback(browser, stack.app.url, username);
    const before = stack.sim.control.stats().token;
    const res = await browser.fetch(callback, { headers: JSON_ACCEPT });
    const body = (await res.json().catch(() => ({}))) as { error?: string };
    return {
      status: res.status,
      error: body.error,
      username,
      browser,
      tokenCalls: stack.sim.control.stats().token - before,
    };
  } finally {
    stack.proxy.onToken = undefined;
    stack.sim.control.setFaults({ token: null });
  }
}

/** IDT-45 "expect nothing": no session, no mfa_succeeded row, the failure recorded, one Duo call only. */
async function expectRejected(o: Outcome, code: string, status = 401): Promise<void> {
  expect({ status: o.status, error: o.error }).toEqual({ status, error: code });
  expect(sessionId(o.browser)).toBeUndefined();
  expect((await me(o.browser, stack.app.url)).status).toBe(401);
  const rows = await auditEvents(stack.app, { username: o.username }, { limit: 500 });
  expect(rows.some((r) => r.type === 'mfa_succeeded')).toBe(false);
  expect(rows.find((r) => r.type === 'mfa_failed')?.reason).toBe(code);
  expect(o.tokenCalls).toBe(1);
}

async function expectAccepted(o: Outcome): Promise<void> {
  expect(o.status).toBe(303);
  expect(sessionId(o.browser)).toBeDefined();
  const who = await me(o.browser, stack.app.url);
  expect(who.status).toBe(200);
  expect(who.body).toMatchObject({ username: o.username, mfa: true });
  const rows = await auditEvents(
    stack.app,
    { username: o.username, type: 'mfa_succeeded' },
    { limit: 500 },
  );
  expect(rows).toHaveLength(1);
}

describe('IDT: id_token validation through the app', () => {
  it('IDT-01 should open a session when a valid HS512 token is crafted with every expected claim', async () => {
    await expectAccepted(
      await run({ craft: claims((c) => ({ ...c, iat: nowSec(), exp: nowSec() + 300 })) }),
    );
  });

  it('IDT-02 should reject a payload changed after signing (preferred_username alice -> bob)', async () => {
    const o = await run({
      craft: token((c, original) => {
        const [h, , s] = original.split('.');
        return `${h}.${b64u(JSON.stringify({ ...c, preferred_username: 'bob' }))}.${s}`;
      }),
    });
    await expectRejected(o, 'id_token_signature');
  });

  it('IDT-03 should reject a header changed after signing (extra member)', async () => {
    const o = await run({
      craft: token((_c, original) => {
        const [, p, s] = original.split('.');
        return `${b64u(JSON.stringify({ ...HEADER, x: 1 }))}.${p}.${s}`;
      }),
    });
    await expectRejected(o, 'id_token_signature');
  });

  it.each([
    ['the simulator signing with another secret', { fault: 'bad_signature' as const }],
    [
      'a crafted token signed with another 40-character secret',
      { craft: token((c) => rawJws(HEADER, c, 'B'.repeat(40))) },
    ],
  ])('IDT-04 should reject a token signed with a different secret: %s', async (_w, how) => {
    await expectRejected(await run(how), 'id_token_signature');
  });

  it.each([
    ['two segments', (t: string) => t.split('.').slice(0, 2).join('.'), 'id_token_malformed'],
    [
      'an empty third segment',
      (t: string) => t.slice(0, t.lastIndexOf('.') + 1),
      'id_token_signature',
    ],
    [
      'a signature one byte short',
      (t: string) => {
        const [h, p, s] = t.split('.');
        return `${h}.${p}.${Buffer.from(s, 'base64url').subarray(1).toString('base64url')}`;
      },
      'id_token_signature',
    ],
  ])('IDT-06 should reject a token with %s', async (_w, cut, code) => {
    await expectRejected(await run({ craft: token((c) => cut(rawJws(HEADER, c, secret))) }), code);
  });

  it.each(['none', 'None', 'NONE', 'nOnE'])(
    'IDT-07 should reject alg %s with an empty signature',
    async (alg) => {
      const o = await run({
        craft: token(
          (c) => `${b64u(JSON.stringify({ alg, typ: 'JWT' }))}.${b64u(JSON.stringify(c))}.`,
        ),
      });
      await expectRejected(o, 'id_token_alg');
    },
  );

  it('IDT-07 should reject the simulator alg_none token', async () => {
    await expectRejected(await run({ fault: 'alg_none' }), 'id_token_alg');
  });

  it.each([
    ['HS256 (simulator)', { fault: 'wrong_alg_hs256' as const }],
    [
      'HS256 (crafted)',
      { craft: token((c) => rawJws({ alg: 'HS256', typ: 'JWT' }, c, secret, 'sha256')) },
    ],
    [
      'HS384 (crafted)',
      { craft: token((c) => rawJws({ alg: 'HS384', typ: 'JWT' }, c, secret, 'sha384')) },
    ],
  ])('IDT-08 should reject %s computed with the correct secret', async (_w, how) => {
    await expectRejected(await run(how), 'id_token_alg');
  });

  it.each(['RS256', 'ES256', 'PS256', 'EdDSA'])(
    'IDT-09 should reject alg %s without any key lookup',
    async (alg) => {
      const o = await run({
        craft: token(
          (c) =>
            `${b64u(JSON.stringify({ alg, typ: 'JWT' }))}.${b64u(JSON.stringify(c))}.${b64u('x'.repeat(64))}`,
        ),
      });
      await expectRejected(o, 'id_token_alg');
    },
  );

  it.each([
    ['jku', () => ({ jku: `${keyListenerUrl}/jwks.json` })],
    ['x5u', () => ({ x5u: `${keyListenerUrl}/cert.pem` })],
    ['jwk', () => ({ jwk: { kty: 'oct', k: b64u('attacker-key') } })],
    ['x5c', () => ({ x5c: ['MIIBIjANBgkq'] })],
  ])(
    'IDT-10 should reject a correctly signed token whose header carries %s and never contact its URL',
    async (_w, extra) => {
      const o = await run({ craft: token((c) => rawJws({ ...HEADER, ...extra() }, c, secret)) });
      await expectRejected(o, 'id_token_malformed');
      expect(keyListenerHits).toBe(0);
    },
  );

  it.each([
    ['a path traversal', '../../x'],
    ['SQL', "' OR 1=1--"],
    ['a 10 KB string', 'k'.repeat(10 * 1024)],
  ])('IDT-11 should reject (pinned) a kid of %s and never use it for a lookup', async (_w, kid) => {
    const o = await run({ craft: token((c) => rawJws({ ...HEADER, kid }, c, secret)) });
    await expectRejected(o, 'id_token_malformed');
    expect(keyListenerHits).toBe(0);
  });

  it.each([
    [
      'a JWE (5 segments)',
      (c: Claims) =>
        `${b64u('{"alg":"dir","enc":"A256GCM"}')}..${b64u('iv')}.${b64u(JSON.stringify(c))}.${b64u('tag')}`,
    ],
    [
      'a JWS JSON serialization',
      (c: Claims) => {
        const [h, p, s] = rawJws(HEADER, c, secret).split('.');
        return JSON.stringify({ payload: p, protected: h, signature: s });
      },
    ],
  ])('IDT-13 should reject %s', async (_w, build) => {
    await expectRejected(await run({ craft: token(build) }), 'id_token_malformed');
  });

  it.each([
    [
      'another tenant host',
      () => 'https://api-deadbeef.duosecurity.com/oauth/v1/token',
      'id_token_iss',
    ],
    ['the authorize path', () => `${stack.proxy.url}/oauth/v1/authorize`, 'id_token_iss'],
    ['a trailing slash', () => `${stack.proxy.url}/oauth/v1/token/`, 'id_token_iss'],
    [
      'another scheme',
      () => `${stack.proxy.url.replace('http:', 'https:')}/oauth/v1/token`,
      'id_token_iss',
    ],
    [
      'an upper-case scheme and path',
      () => `${stack.proxy.url.replace('http:', 'HTTP:')}/OAUTH/v1/token`,
      'id_token_iss',
    ],
    ['an array', () => [`${stack.proxy.url}/oauth/v1/token`], 'id_token_iss'],
  ])('IDT-14 should reject an iss of %s (exact string match)', async (_w, iss, code) => {
    await expectRejected(await run({ craft: claims((c) => ({ ...c, iss: iss() })) }), code);
  });

  it('IDT-15 should reject a token without iss', async () => {
    await expectRejected(
      await run({ craft: claims((c) => ({ ...c, iss: undefined })) }),
      'id_token_claims',
    );
  });

  it.each([
    ['another client id (simulator)', { fault: 'wrong_aud' as const }],
    ['[ours, another] (simulator, secondary audience)', { fault: 'aud_array' as const }],
    [
      'another client id (crafted)',
      { craft: claims((c) => ({ ...c, aud: 'DIZZZZZZZZZZZZZZZZZZ' })) },
    ],
  ])('IDT-16 should reject an aud of %s', async (_w, how) => {
    await expectRejected(await run(how), 'id_token_aud');
  });

  it('IDT-17 should reject a token without aud', async () => {
    await expectRejected(
      await run({ craft: claims((c) => ({ ...c, aud: undefined })) }),
      'id_token_claims',
    );
  });

  it('IDT-19 should accept an aud that is a one-element array of our client id', async () => {
    await expectAccepted(await run({ craft: claims((c) => ({ ...c, aud: [c.aud] })) }));
  });

  it('IDT-20 should reject an azp that is not our client id', async () => {
    await expectRejected(
      await run({ craft: claims((c) => ({ ...c, azp: 'DIZZZZZZZZZZZZZZZZZZ' })) }),
      'id_token_aud',
    );
  });

  it('IDT-22 should reject a token expired 61 s ago (leeway 60 s)', async () => {
    await expectRejected(
      await run({ craft: claims((c) => ({ ...c, iat: nowSec() - 400, exp: nowSec() - 61 })) }),
      'id_token_expired',
    );
  });

  it.each([
    [
      'crafted exp = now - 30',
      { craft: claims((c) => ({ ...c, iat: nowSec() - 300, exp: nowSec() - 30 })) },
    ],
    ['simulator just_inside_leeway', { fault: 'just_inside_leeway' as const }],
  ])('IDT-23 should accept a token inside the leeway: %s', async (_w, how) => {
    await expectAccepted(await run(how));
  });

  it('IDT-24 should reject a token whose exp is exactly now minus the leeway', async () => {
    await expectRejected(
      await run({ craft: claims((c) => ({ ...c, iat: nowSec() - 400, exp: nowSec() - 60 })) }),
      'id_token_expired',
    );
  });

  it('IDT-25 should reject a token without exp', async () => {
    await expectRejected(
      await run({ craft: claims((c) => ({ ...c, exp: undefined })) }),
      'id_token_claims',
    );
  });

  it.each([
    ['exp - iat = 3601 s', () => ({ iat: nowSec(), exp: nowSec() + 3601 })],
    ['exp in the year 2100', () => ({ iat: nowSec(), exp: 4102444800 })],
  ])('IDT-26 should reject a token living longer than Duo issues them: %s', async (_w, times) => {
    await expectRejected(
      await run({ craft: claims((c) => ({ ...c, ...times() })) }),
      'id_token_claims',
    );
  });

  it('IDT-27 should reject a token without iat', async () => {
    await expectRejected(
      await run({ craft: claims((c) => ({ ...c, iat: undefined })) }),
      'id_token_claims',
    );
  });

  it('IDT-28 should reject a token issued 120 s in the future', async () => {
    await expectRejected(
      await run({ craft: claims((c) => ({ ...c, iat: nowSec() + 120 })) }),
      'id_token_iat',
    );
  });

  it('IDT-30 should reject a token whose nbf is 120 s in the future', async () => {
    await expectRejected(
      await run({ craft: claims((c) => ({ ...c, nbf: nowSec() + 120 })) }),
      'id_token_nbf',
    );
  });

  it.each([
    ['simulator wrong_nonce', { fault: 'wrong_nonce' as const }],
    ['crafted nonce', { craft: claims((c) => ({ ...c, nonce: 'n'.repeat(43) })) }],
  ])('IDT-31 should reject a different nonce: %s', async (_w, how) => {
    await expectRejected(await run(how), 'id_token_nonce');
  });

  it.each([
    ['simulator missing_nonce', { fault: 'missing_nonce' as const }],
    ['crafted without nonce', { craft: claims((c) => ({ ...c, nonce: undefined })) }],
  ])('IDT-32 should reject a token without the nonce that was sent: %s', async (_w, how) => {
    await expectRejected(await run(how), 'id_token_nonce');
  });

  it("IDT-34 should reject bob's preferred_username on alice's transaction", async () => {
    await expectRejected(
      await run({ craft: claims((c) => ({ ...c, preferred_username: 'bob' })) }),
      'id_token_username',
    );
  });

  it('IDT-35 should reject a token without preferred_username', async () => {
    await expectRejected(
      await run({ craft: claims((c) => ({ ...c, preferred_username: undefined })) }),
      'id_token_username',
    );
  });

  it.each([
    ['upper-cased (simulator)', (u: string) => u, { fault: 'case_changed_username' as const }],
    ['upper-cased', (u: string) => u[0].toUpperCase() + u.slice(1), undefined],
    ['with a trailing space', (u: string) => `${u} `, undefined],
    ['with a Cyrillic a', (u: string) => `\u0430${u.slice(1)}`, undefined],
    ['in NFD form', (u: string) => u.normalize('NFD'), undefined],
  ])(
    'IDT-36 should reject a preferred_username %s (byte-exact, no normalization)',
    async (_w, mangle, fault) => {
      const name = `a\u00e9-${uniqueUser('idt')}`; // starts with "a", holds an NFC "é"
      const o = await run(
        fault ?? {
          craft: claims((c) => ({
            ...c,
            preferred_username: mangle(String(c.preferred_username)),
          })),
        },
        name,
      );
      await expectRejected(o, 'id_token_username');
    },
  );

  it('IDT-37 should accept sub = Duo primary name with preferred_username = the alias that signed on', async () => {
    const o = await run({}, 'alice.alias');
    expect(o.status).toBe(303);
    const who = await me(o.browser, stack.app.url);
    // The identity is the primary-login user (the name this app sent), confirmed by preferred_username.
    expect(who.body).toMatchObject({ username: 'alice.alias', mfa: true });
  });

  it('IDT-38 should reject a token without sub (pinned: enforced)', async () => {
    await expectRejected(
      await run({ craft: claims((c) => ({ ...c, sub: undefined })) }),
      'id_token_claims',
    );
  });

  it.each([
    [
      'result deny',
      (c: Claims) => ({
        ...c,
        auth_result: { result: 'deny', status: 'deny', status_msg: 'Login denied' },
      }),
      'id_token_auth_result',
    ],
    ['no auth_result', (c: Claims) => ({ ...c, auth_result: undefined }), 'id_token_claims'],
  ])('IDT-39 should reject a token with %s', async (_w, edit, code) => {
    await expectRejected(await run({ craft: claims(edit) }), code);
  });

  it.each([
    ['a JSON array', () => '[1,2]'],
    ['a JSON string', () => '"alice"'],
    ['a JSON number', () => '42'],
    [
      'invalid UTF-8',
      (c: Claims) =>
        Buffer.concat([
          Buffer.from(JSON.stringify(c).slice(0, -1)),
          Buffer.from(',"x":"\xff"}', 'latin1'),
        ]),
    ],
    ['a leading BOM', (c: Claims) => `\ufeff${JSON.stringify(c)}`],
  ])('IDT-41 should reject a payload that is %s', async (_w, payload) => {
    const o = await run({ craft: token((c) => rawJws(HEADER, payload(c), secret)) });
    await expectRejected(o, 'id_token_malformed');
  });

  it.each([
    [
      'a 1 MB token (response size cap)',
      (c: Claims) => ({ ...c, pad: 'p'.repeat(1024 * 1024) }),
      502,
      'token_response',
    ],
    [
      '10 000 claims (response size cap)',
      (c: Claims) => ({ ...c, ...manyClaims(10_000) }),
      502,
      'token_response',
    ],
    [
      '3 000 claims in 40 KB (token size cap)',
      (c: Claims) => ({ ...c, ...manyClaims(3_000) }),
      401,
      'id_token_malformed',
    ],
  ])('IDT-43 should reject %s', async (_w, edit, status, code) => {
    const o = await run({ craft: claims(edit) });
    await expectRejected(o, code, status);
  });

  it.each([
    ['no id_token (simulator)', { fault: 'missing_id_token' as const }],
    ['token_type bearer (simulator; pinned exact "Bearer")', { fault: 'bad_token_type' as const }],
    ['expires_in as a string (simulator)', { fault: 'string_expires_in' as const }],
    ['an id_token that is a number', { craft: (a: TokenAnswer) => withIdToken(a, 12345) }],
    [
      'no access_token',
      { craft: (a: TokenAnswer) => ({ body: { ...a.json, access_token: undefined } }) },
    ],
    [
      'no expires_in',
      { craft: (a: TokenAnswer) => ({ body: { ...a.json, expires_in: undefined } }) },
    ],
  ])('IDT-44 should reject a token response with %s', async (_w, how) => {
    await expectRejected(await run(how), 'token_response', 502);
  });

  it('IDT-45 should keep an existing session, store no access token and make no further Duo call after a rejected token', async () => {
    const browser = new Browser();
    const username = uniqueUser('idt45');
    const first = await signOnToCallback(browser, stack.app.url, username);
    expect((await browser.fetch(first)).status).toBe(303);
    const before = sessionId(browser);
    const accessTokens: string[] = [];
    stack.proxy.onToken = (a) => {
      accessTokens.push(String(a.json?.access_token));
      return withIdToken(a, rawJws(HEADER, { ...a.claims, nonce: 'x'.repeat(43) }, secret));
    };
    const calls = stack.sim.control.stats();
    const second = await signOnToCallback(browser, stack.app.url, username);
    const res = await browser.fetch(second, { headers: JSON_ACCEPT });
    stack.proxy.onToken = undefined;
    expect(res.status).toBe(401);
    // The failed attempt changed nothing: the earlier session still works, no new cookie.
    expect(sessionId(browser)).toBe(before);
    expect((await me(browser, stack.app.url)).status).toBe(200);
    const after = stack.sim.control.stats();
    expect(after.token - calls.token).toBe(1);
    expect(
      after.health_check + after.authorize - calls.health_check - calls.authorize,
    ).toBeLessThanOrEqual(2);
    const rows = JSON.stringify(await auditEvents(stack.app, { username }, { limit: 500 }));
    expect(rows).not.toContain(accessTokens[0]);
    expect(
      (await auditEvents(stack.app, { username, type: 'mfa_succeeded' }, { limit: 500 })).length,
    ).toBe(1);
  });

  it.each([
    [
      '90 s behind Duo (iat in the future)',
      () => ({ iat: nowSec() + 90, exp: nowSec() + 390 }),
      'id_token_iat',
    ],
    [
      '90 s ahead of Duo (exp passed)',
      () => ({ iat: nowSec() - 390, exp: nowSec() - 90 }),
      'id_token_expired',
    ],
  ])(
    'IDT-46 should reject and log clock_skew_suspected when the app clock is %s',
    async (_w, times, code) => {
      const warn = jest.spyOn(Logger.prototype, 'warn');
      try {
        const o = await run({ craft: claims((c) => ({ ...c, ...times() })) });
        await expectRejected(o, code);
        const lines = warn.mock.calls.map((args) => String(args[0]));
        expect(lines.some((l) => l.includes(code) && l.includes('clock_skew_suspected'))).toBe(
          true,
        );
      } finally {
        warn.mockRestore();
      }
    },
  );
});

function manyClaims(n: number): Claims {
  return Object.fromEntries(Array.from({ length: n }, (_, i) => [`c${i}`, i]));
}
