import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { RunningSimulator } from '@duo-nest/simulator';
import { Browser, type RunningApp } from './support/app-harness.js';
import { startSimAndApp, type SimAndApp } from './support/sim-and-app.js';
import {
  auditEvents,
  JSON_ACCEPT,
  postLikeBrowser,
  sessionCookies,
  signOn,
} from './support/duo-flow.js';

// Issue 11 item 4: the username policy (docs/security.md, "Username policy"), through HTTP. A
// refused name is a 400 with one input_validation_failed event that names why, never a Duo call,
// a pending login or a session, and never stores the name itself.
let sim: RunningSimulator;
let app: RunningApp;
let booted: SimAndApp;
let nextIp = 1;

function freshIp(): string {
  nextIp += 1;
  return `203.0.113.${nextIp}`;
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

const REFUSED: [string, string, string][] = [
  ['RLO spoof from the issue', 'alice\u202egnp.exe', 'format'],
  ...['\u202a', '\u202b', '\u202c', '\u202d', '\u202e'].map((c): [string, string, string] => [
    `bidi embedding/override U+${hex(c)}`,
    `al${c}ice`,
    'format',
  ]),
  ...['\u2066', '\u2067', '\u2068', '\u2069'].map((c): [string, string, string] => [
    `bidi isolate U+${hex(c)}`,
    `al${c}ice`,
    'format',
  ]),
  ['LRM', 'alice\u200e', 'format'],
  ['Arabic letter mark', 'alice\u061c', 'format'],
  ['zero-width space', 'ali\u200bce', 'format'],
  ['zero-width joiner', 'ali\u200dce', 'format'],
  ['BOM', '\ufeffalice', 'format'],
  ['soft hyphen', 'ali\u00adce', 'format'],
  ['tag character', 'alice\u{e0041}', 'format'],
  ['line separator U+2028', 'alice\u2028admin', 'separator'],
  ['paragraph separator U+2029', 'alice\u2029admin', 'separator'],
  ['NUL', 'alice\u0000', 'control'],
  ['newline', 'alice\nadmin', 'control'],
  ['DEL', 'alice\u007f', 'control'],
  ['C1 control NEL', 'alice\u0085', 'control'],
  ['private use', 'alice\ue000', 'private_use'],
  ['unassigned U+0378', 'alice\u0378', 'unassigned'],
  ['noncharacter U+FDD0', 'alice\ufdd0', 'unassigned'],
  ['noncharacter U+10FFFF', 'alice\u{10ffff}', 'unassigned'],
  ['no-break space', 'al\u00a0ice', 'space'],
  ['ideographic space', 'al\u3000ice', 'space'],
  ['en quad', 'al\u2000ice', 'space'],
  ['Hangul filler', 'alice\u3164', 'invisible'],
  ['combining grapheme joiner', 'ali\u034fce', 'invisible'],
  ['variation selector', 'alice\ufe0f', 'invisible'],
  ['braille blank', 'alice\u2800', 'invisible'],
  ['only a space', ' ', 'whitespace_edge'],
  ['only spaces', '     ', 'whitespace_edge'],
  ['a leading space', ' alice', 'whitespace_edge'],
  ['a trailing space', 'alice ', 'whitespace_edge'],
  ['only a tab', '\t', 'control'],
  ['a leading combining mark', '\u0301alice', 'combining'],
  ['a run of combining marks', `a${'\u0301\u0302\u0303'.repeat(2)}lice`, 'combining'],
  ['an empty name', '', 'empty'],
  ['256 characters', 'a'.repeat(256), 'too_long'],
  ['256 UTF-16 code units of astral letters', '\u{1d49c}'.repeat(128), 'too_long'],
];

function hex(c: string): string {
  return c.codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0');
}

describe('username policy through POST /login', () => {
  it.each(REFUSED)('should refuse %s', async (_what, username, why) => {
    const ip = freshIp();
    const browser = new Browser();
    const before = duoCalls();
    const res = await postLikeBrowser(
      browser,
      app.url,
      '/login',
      { username },
      {
        'x-forwarded-for': ip,
        ...JSON_ACCEPT,
      },
    );
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({ statusCode: 400, error: 'invalid_request' });
    expect(duoCalls()).toBe(before);
    expect(sessionCookies(browser)).toEqual([]);
    const events = await auditEvents(app, { ip });
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({
      type: 'input_validation_failed',
      reason: 'invalid_username',
      username: null,
      detail: { field: 'username', why, length: username.length },
    });
    expect(events[0].detail?.hmac).toMatch(/^[A-Za-z0-9_-]{22}$/);
  });

  it('should refuse a lone surrogate sent as JSON (a form cannot carry one: see strict-input)', async () => {
    const ip = freshIp();
    const browser = new Browser();
    const token = await browser.csrfToken(app.url);
    const res = await browser.fetch(`${app.url}/login`, {
      method: 'POST',
      body: '{"username":"alice\\ud800"}',
      headers: {
        'content-type': 'application/json',
        'x-csrf-token': token,
        'x-forwarded-for': ip,
        ...JSON_ACCEPT,
      },
    });
    expect(res.status).toBe(400);
    const events = await auditEvents(app, { ip });
    expect(events).toHaveLength(1);
    expect(events[0].detail).toMatchObject({ field: 'username', why: 'surrogate', length: 6 });
  });

  it.each([
    ['plain ASCII', 'alice.smith@example.com'],
    ['a domain account', 'EXAMPLE\\alice'],
    ['inner spaces', 'Alice Smith'],
    ['accented (NFC)', 'José'],
    ['non-Latin scripts', 'Ελένη-田中-محمد'],
    ['combining marks within the limit', 'e\u0301\u0302'],
    ['255 characters', 'b'.repeat(255)],
  ])('should accept %s and sign on', async (_what, username) => {
    const browser = new Browser();
    const res = await signOn(browser, app.url, username);
    expect(res.status).toBe(303);
    const me = await browser.fetch(`${app.url}/me`, { headers: JSON_ACCEPT });
    expect(me.status).toBe(200);
    expect(((await me.json()) as { username: string }).username).toBe(username.normalize('NFC'));
  });

  it('should put a decomposed name in NFC before Duo, the session and the audit trail', async () => {
    const browser = new Browser();
    const nfd = 'Rene\u0301e Dupont';
    const res = await signOn(browser, app.url, nfd);
    expect(res.status).toBe(303);
    const me = await browser.fetch(`${app.url}/me`, { headers: JSON_ACCEPT });
    expect(((await me.json()) as { username: string }).username).toBe('Ren\u00e9e Dupont');
    const started = await auditEvents(app, {
      type: 'mfa_succeeded',
      username: 'Ren\u00e9e Dupont',
    });
    expect(started).toHaveLength(1);
  });
});
