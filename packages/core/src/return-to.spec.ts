import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { sanitizeReturnTo } from './duo-module-options.js';

/** What a browser does with a Location: resolve it against the page's URL. */
function resolvesOnSite(location: string): boolean {
  const here = 'https://app.example/some/page?x=1';
  return new URL(location, here).origin === 'https://app.example';
}

describe('sanitizeReturnTo', () => {
  it.each([
    ['/dashboard?tab=1', '/dashboard?tab=1'],
    ['/', '/'],
    ['/a/./b/../c', '/a/c'],
    ['/x#frag', '/x'],
    ['/caf\u00e9', '/caf%C3%A9'],
    ['/a\u2215b', '/a%E2%88%95b'], // a look-alike slash inside the path stays inside it
    ['/a\uff0eb', '/a%EF%BC%8Eb'],
    ['/@evil.example', '/@evil.example'],
    ['/x:y', '/x:y'],
    ['/search?next=//evil.example', '/search?next=//evil.example'],
  ])('should keep %j as %j', (input, output) => {
    expect(sanitizeReturnTo(input)).toBe(output);
  });

  it.each([
    // dot segments that normalise to "//host" (the finding of issue 11 item 1)
    '/.//evil.example',
    '/..//evil.example',
    '/x/..//evil.example',
    '/x/../..//evil.example',
    '/%2e%2e//evil.example',
    '/x/%2E%2e//evil.example',
    '/x/.%2e//evil.example',
    '/./%2F/evil.example',
    // encoded slashes and backslashes, once and twice
    '/%2F%2Fevil.example',
    '/%252F%252Fevil.example',
    '/%25252F%25252Fevil.example',
    '/%5Cevil.example',
    '/%255Cevil.example',
    '/a%5Cb',
    // raw backslashes, tabs, newlines, controls, white space, format characters
    '/\\evil.example',
    '\\\\evil.example',
    '/\t/evil.example',
    '/\n/evil.example',
    '/%09/evil.example',
    '/%0d%0aSet-Cookie:x=y',
    '/x%00',
    '/a b',
    '/a\u00a0b',
    '/a\u200bb',
    '/a\u202eb',
    '/a\u2028b',
    ' /evil.example',
    // Unicode look-alikes that would become "//" once folded
    '/\uff0f\uff0fevil.example',
    '/\uff0fevil.example',
    '/\u2215evil.example',
    '/\u2215\u2215evil.example',
    '/%EF%BC%8F%EF%BC%8Fevil.example',
    '/\uff3cevil.example',
    '/\u2024\u2024//evil.example',
    '/x/\uff0e\uff0e//evil.example',
    '/x/\u2024\u2024/\u2215evil.example',
    // schemes, hosts and scheme-relative forms
    '//evil.example',
    '///evil.example',
    'https://evil.example/',
    'https:evil.example',
    'http:/evil.example',
    'javascript:alert(1)',
    '//ex\u0430mple.com',
    '//xn--exmple-cua.com',
    'evil.example',
    // malformed or endless encodings
    '/%',
    '/%E0%A4%A',
    '/%ED%A0%80',
    '/%2525252F',
    '',
    '/' + 'a'.repeat(600),
  ])('should refuse %j', (input) => {
    expect(sanitizeReturnTo(input)).toBeUndefined();
  });

  it('should refuse non-strings', () => {
    for (const v of [undefined, null, 1, ['/x'], { a: '/x' }]) {
      expect(sanitizeReturnTo(v)).toBeUndefined();
    }
  });

  it('should only ever return a single-slash absolute ASCII path that resolves on-site and to itself', () => {
    const piece = fc.constantFrom(
      '/',
      '//',
      '\\',
      '.',
      '..',
      '%2e',
      '%2E%2e',
      '%2f',
      '%2F',
      '%252f',
      '%5c',
      '%255C',
      '%09',
      '\t',
      '\n',
      '\r',
      '@',
      ':',
      '?',
      '#',
      'evil.example',
      'ex\u0430mple',
      'xn--80ak6aa92e.com',
      '\u2215',
      '\uff0f',
      '\u2024',
      '\uff0e',
      '\uff3c',
      'https:',
      'a',
      '%',
      '%25',
    );
    fc.assert(
      fc.property(fc.array(piece, { maxLength: 10 }), (parts) => {
        const out = sanitizeReturnTo(parts.join(''));
        if (out !== undefined) {
          expect(out).toMatch(/^\/(?![/\\])[\x21-\x5b\x5d-\x7e]*$/);
          expect(resolvesOnSite(out)).toBe(true);
          expect(sanitizeReturnTo(out)).toBe(out); // idempotent
        }
      }),
      { numRuns: 2000 },
    );
  });
});
