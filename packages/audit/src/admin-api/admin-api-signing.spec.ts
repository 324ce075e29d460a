import { afterEach, describe, expect, it } from '@jest/globals';
import { createHash, type createHmac } from 'node:crypto';
import { createRequire } from 'node:module';
import fc from 'fast-check';
import {
  canonicalRequestV5,
  DuoSigningInputError,
  formatDuoDate,
  signRequestV5,
  type DuoSigningInput,
} from './admin-api-signing.js';

// Cross-check with Duo's official Node SDK (@duosecurity/duo_api 1.5.0, lib/duo_sig.js). Its
// newest signature is version 5 (signV5); it does not export the v5 canonical string, so the
// string it feeds to HMAC is captured by wrapping crypto.createHmac for the duration of one call.
const require = createRequire(import.meta.url);
type Params = Record<string, string | string[]>;
const duoSig = require('@duosecurity/duo_api/lib/duo_sig.js') as {
  signV5: (
    ikey: string,
    skey: string,
    method: string,
    host: string,
    path: string,
    params: Params,
    date: string,
    body: string,
  ) => string;
};
const sdkMain = require('@duosecurity/duo_api') as { SIGNATURE_VERSION_5: number };
const nodeCrypto = require('crypto') as { createHmac: typeof createHmac };
const originalCreateHmac = nodeCrypto.createHmac;

const IKEY = 'DIWJ8X6AEYOR5OMC8OBN';
const SKEY = 'Zh5eGmUq9zpfQnyUIu5OL9iWoMMv5ZNmk3zLJ4Ep';
const DATE = 'Tue, 21 Aug 2012 17:29:18 -0000';

/** The SDK's Authorization header and the canonical string it signed. */
function sdkSign(input: DuoSigningInput & { params: Params }): {
  authorization: string;
  canonical: string;
} {
  const fed: string[] = [];
  nodeCrypto.createHmac = ((alg: string, key: string) => {
    const hmac = originalCreateHmac(alg, key);
    const update = hmac.update.bind(hmac);
    hmac.update = (data: string) => {
      fed.push(String(data));
      return update(data);
    };
    return hmac;
  }) as typeof createHmac;
  try {
    const authorization = duoSig.signV5(
      IKEY,
      SKEY,
      input.method,
      input.host,
      input.path,
      input.params,
      input.date,
      input.body ?? '',
    );
    expect(fed).toHaveLength(1);
    return { authorization, canonical: fed[0] };
  } finally {
    nodeCrypto.createHmac = originalCreateHmac;
  }
}

afterEach(() => {
  nodeCrypto.createHmac = originalCreateHmac;
});

const GET = {
  date: DATE,
  method: 'GET',
  host: 'api-1a2b3c4d.duosecurity.com',
  path: '/admin/v2/logs/authentication',
};

const SHARED: [string, DuoSigningInput & { params: Params }][] = [
  [
    'the authentication log query of our client',
    {
      ...GET,
      params: {
        mintime: '1700000000000',
        maxtime: '1700000600000',
        limit: '1000',
        sort: 'ts:asc',
        next_offset: '1700000300000,5bea5c1e-682c-4f1d-b3f0-75fd31385bd5',
      },
    },
  ],
  ['no parameter, empty body', { ...GET, path: '/admin/v1/info/summary', params: {} }],
  [
    'unicode, spaces, + & = and an empty value',
    { ...GET, params: { realname: 'Jösé Müller 名前 😀', note: 'a b+c&d=e%', empty: '' } },
  ],
  [
    "~ * ! ' ( ) and the unreserved - _ .",
    { ...GET, params: { 'k~*': "~*!'()-_.", 'a.b': 'x*y~z', '-_': '(1)' } },
  ],
  [
    'repeated keys (values in the order given) and mixed-case names',
    {
      ...GET,
      params: {
        applications: ['DIBBBBBBBBBBBBBBBBBB', 'DIAAAAAAAAAAAAAAAAAA'],
        users: ['b', 'a', 'a'],
        B: '1',
        a: '2',
        A_: '3',
        a_b: '4',
      },
    },
  ],
  [
    'a JSON body (POST: parameters in the body, none in the canonical parameters)',
    {
      date: DATE,
      method: 'POST',
      host: 'api-1a2b3c4d.duosecurity.com',
      path: '/admin/v1/users',
      params: {},
      body: JSON.stringify({ username: 'jösé', realname: 'a b', groups: ['x', 'y'] }),
    },
  ],
  [
    'a lower-case method, an upper-case host with a port and a GMT date',
    {
      date: 'Wed, 15 Nov 2023 08:00:00 GMT',
      method: 'get',
      host: 'API-1A2B3C4D.DuoSecurity.com:8443',
      path: '/admin/v2/logs/authentication',
      params: { mintime: '1700000000000', maxtime: '1700000000001' },
    },
  ],
];

describe('Admin API signing v5 against @duosecurity/duo_api 1.5.0', () => {
  it('the SDK implements signature versions 2 and 5; 5 is the newest, the one we use', () => {
    expect(sdkMain.SIGNATURE_VERSION_5).toBe(5);
    expect(Object.keys(duoSig)).toEqual(expect.arrayContaining(['sign', 'signV5']));
    expect(Object.keys(duoSig).filter((k) => /^sign/.test(k))).toEqual(['sign', 'signV5']);
  });

  it.each(SHARED)(
    '%s: the same canonical string and Authorization header, byte for byte',
    (_name, input) => {
      const sdk = sdkSign(input);
      const ours = signRequestV5(IKEY, SKEY, input);
      expect(Buffer.from(ours.canonical, 'utf8').equals(Buffer.from(sdk.canonical, 'utf8'))).toBe(
        true,
      );
      expect(ours.canonical).toBe(sdk.canonical);
      expect(ours.authorization).toBe(sdk.authorization);
      expect(canonicalRequestV5(input)).toBe(sdk.canonical);
    },
  );

  it('the canonical string has the seven documented lines (date, METHOD, host, path, params, body hash, header hash)', () => {
    const [, input] = SHARED[4];
    const lines = canonicalRequestV5(input).split('\n');
    expect(lines).toHaveLength(7);
    expect(lines.slice(0, 5)).toEqual([
      DATE,
      'GET',
      'api-1a2b3c4d.duosecurity.com',
      '/admin/v2/logs/authentication',
      'A_=3&B=1&a=2&a_b=4&applications=DIBBBBBBBBBBBBBBBBBB&applications=DIAAAAAAAAAAAAAAAAAA&users=b&users=a&users=a',
    ]);
    const sha512Empty = createHash('sha512').update('').digest('hex');
    expect(lines[5]).toBe(sha512Empty); // a GET has no body
    expect(lines[6]).toBe(sha512Empty); // and our client sends no X-Duo-* header
  });

  it('spaces are %20 and the reserved characters are percent-encoded in upper-case hex', () => {
    const canonical = canonicalRequestV5({ ...GET, params: { q: "a b*!'()~@/" } });
    expect(canonical.split('\n')[4]).toBe('q=a%20b%2A%21%27%28%29~%40%2F');
  });

  it('random parameters (any code point, repeated keys) sign the same as the SDK', () => {
    const text = fc.string({ unit: 'binary', maxLength: 12 });
    fc.assert(
      fc.property(
        fc.dictionary(text, fc.oneof(text, fc.array(text, { minLength: 1, maxLength: 3 })), {
          maxKeys: 5,
        }),
        fc.constantFrom('', '{"a":"ü b"}'),
        (params, body) => {
          const input = { ...GET, params, body };
          let sdk: { authorization: string; canonical: string } | Error;
          try {
            sdk = sdkSign(input);
          } catch (err) {
            sdk = err as Error;
          }
          if (sdk instanceof Error) {
            // Only a lone surrogate makes the SDK throw (URIError); ours refuses it too.
            expect(() => signRequestV5(IKEY, SKEY, input)).toThrow(DuoSigningInputError);
            return;
          }
          const ours = signRequestV5(IKEY, SKEY, input);
          expect(ours.canonical).toBe(sdk.canonical);
          expect(ours.authorization).toBe(sdk.authorization);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('a lone surrogate is refused by both, never signed half-encoded', () => {
    const input = { ...GET, params: { q: 'a\uD800b' } };
    expect(() => sdkSign(input)).toThrow(URIError);
    expect(() => signRequestV5(IKEY, SKEY, input)).toThrow(DuoSigningInputError);
  });

  it('formatDuoDate gives the RFC 2822 GMT form the SDK sends', () => {
    expect(formatDuoDate(Date.UTC(2012, 7, 21, 17, 29, 18))).toBe('Tue, 21 Aug 2012 17:29:18 GMT');
  });
});
