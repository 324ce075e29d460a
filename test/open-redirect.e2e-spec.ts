import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { startSimulator, type RunningSimulator } from '@duo-nest/simulator';
import {
  Browser,
  freePort,
  location,
  startApp,
  type RunningApp,
  simulatorEnv,
} from './support/app-harness.js';
import { NO_RATE_LIMITS, uniqueUser } from './support/duo-flow.js';

// Issue 11 item 1: whatever return path a sign-on names, the Location the app finally sends
// resolves (as a browser resolves it, against the app's URL) to the app's own origin. Property
// based: fast-check builds return paths from the pieces open redirects are made of.
let sim: RunningSimulator;
let closed: RunningApp;
let open: RunningApp;

beforeAll(async () => {
  sim = await startSimulator({ port: 0, auto: 'allow' });
  const unreachable = `http://127.0.0.1:${await freePort()}`; // nothing listens there
  [closed, open] = await Promise.all([
    startApp({ ...simulatorEnv(sim), ...NO_RATE_LIMITS }),
    startApp({
      ...simulatorEnv(sim),
      ...NO_RATE_LIMITS,
      DUO_API_HOST: unreachable,
      DUO_FAILMODE: 'open',
      DUO_TIMEOUT_MS: '300',
    }),
  ]);
});
afterAll(async () => {
  await closed?.close();
  await open?.close();
  await sim?.close();
});

/** Every UTF-8 byte as %XX (encodeURIComponent leaves "." and others alone). */
function percentAll(text: string, lower: boolean): string {
  const hex = [...Buffer.from(text, 'utf8')].map((b) => '%' + b.toString(16).padStart(2, '0'));
  return (lower ? hex : hex.map((h) => h.toUpperCase())).join('');
}

const PIECES = [
  '/',
  '//',
  '\\',
  '/\\',
  '.',
  '..',
  '/./',
  '/../',
  '/x/..',
  '%2e',
  '%2E%2e',
  '%2f',
  '%5c',
  '\t',
  '\n',
  '\r',
  ' ',
  '@',
  ':',
  '?',
  '#',
  '%',
  '%25',
  'https:',
  'http://',
  'javascript:',
  'evil.example',
  'xn--80ak6aa92e.com',
  'ex\u0430mple.com',
  'b\u00fccher.example',
  '\u4f8b\u3048.jp',
  '\u2215',
  '\uff0f',
  '\u2024',
  '\uff0e',
  '\uff3c',
  '\u3002',
  'a',
  'dashboard',
];
const PREFIXES = [
  '',
  '/',
  '//',
  '///',
  '/\\',
  '\\\\',
  '/./',
  '/../',
  '/x/../',
  '/%2e%2e/',
  '/.%2e/',
  '/\t/',
  ' /',
  'https://',
  '//evil.example@',
  '/\uff0f',
  '/\u2215',
];

/** A piece written plainly, percent-encoded once (upper or lower case) or twice. */
const encodedPiece = fc
  .tuple(fc.constantFrom(...PIECES), fc.constantFrom(0, 0, 0, 1, 2, 3))
  .map(([piece, mode]) =>
    mode === 0
      ? piece
      : mode === 3
        ? percentAll(percentAll(piece, false), false)
        : percentAll(piece, mode === 2),
  );

export const returnPath = fc
  .tuple(fc.constantFrom(...PREFIXES), fc.array(encodedPiece, { minLength: 1, maxLength: 8 }))
  .map(([prefix, parts]) => prefix + parts.join(''));

/** Where a browser goes with this Location from a page of `appUrl`. */
function originOf(loc: string, appUrl: string): string {
  return new URL(loc, appUrl).origin;
}

async function startSignOn(app: RunningApp, returnTo: string) {
  const browser = new Browser();
  const res = await browser.postForm(`${app.url}/login`, { username: uniqueUser('rdr'), returnTo });
  return { browser, res };
}

describe('open redirect: the final Location is same-origin for any return path', () => {
  it('should keep the path examples of the finding on-site', async () => {
    for (const returnTo of ['/.//evil.example', '/..//evil.example', '/x/..//evil.example']) {
      const { res } = await startSignOn(open, returnTo);
      expect(res.status).toBe(303);
      expect(location(res)).toBe('/result');
    }
  });

  it('failmode open, Duo unreachable: POST /login answers 303 to the app itself (300 runs)', async () => {
    await fc.assert(
      fc.asyncProperty(returnPath, async (returnTo) => {
        const { res } = await startSignOn(open, returnTo);
        await res.arrayBuffer();
        expect(res.status).toBe(303);
        expect(originOf(location(res), open.url)).toBe(new URL(open.url).origin);
      }),
      { numRuns: 300 },
    );
  }, 60_000);

  it('failmode closed: POST /login goes to Duo (300 runs)', async () => {
    await fc.assert(
      fc.asyncProperty(returnPath, async (returnTo) => {
        const { res } = await startSignOn(closed, returnTo);
        await res.arrayBuffer();
        expect(res.status).toBe(303);
        expect(originOf(location(res), closed.url)).toBe(sim.url);
      }),
      { numRuns: 300 },
    );
  }, 60_000);

  it('failmode closed: after a completed sign-on through the simulator, the callback lands on-site (25 runs)', async () => {
    await fc.assert(
      fc.asyncProperty(returnPath, async (returnTo) => {
        const { browser, res } = await startSignOn(closed, returnTo);
        expect(res.status).toBe(303);
        const duo = await browser.fetch(location(res));
        expect(duo.status).toBe(302);
        const done = await browser.fetch(location(duo));
        await done.arrayBuffer();
        expect(done.status).toBe(303);
        expect(originOf(location(done), closed.url)).toBe(new URL(closed.url).origin);
        expect(browser.cookies.has('duo_session')).toBe(true);
      }),
      { numRuns: 25 },
    );
  }, 60_000);
});
