import { describe, expect, it } from '@jest/globals';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inspect } from 'node:util';
import { makeSelfSignedCertificate } from '../../../test/support/tls.js';
import { normalizeDuoClientOptions, validateDuoClientOptions } from './duo-client-options.js';
import { normalizeDuoModuleOptions } from './duo-module-options.js';
import { DuoConfigError } from './duo.errors.js';
import {
  buildDuoTransport,
  describeTransportFailure,
  noProxyMatches,
  parseCaBundle,
  parseNoProxy,
  parseProxyUrl,
  proxyFromEnvironment,
  readCaFile,
  redactUrlCredentials,
} from './duo-transport.js';

const CANARY = 'Canary-Unit-Pa55-44ab';
const BASE = {
  clientId: 'DIABCDEFGHIJ12345678',
  clientSecret: 'abcdefghijklmnopqrstuvwxyz0123456789ABCD',
  apiHost: 'api-1a2b3c4d.duosecurity.com',
  redirectUri: 'https://app.example/auth/duo/callback',
};

// A throw-away certificate and its key, as PEM text (the shared test helper makes it).
const PEM = (({ cert, key }) => ({ cert: cert.toString('utf8'), key: key.toString('utf8') }))(
  makeSelfSignedCertificate(),
);

describe('parseProxyUrl', () => {
  it('should split the origin from the credentials, which become a Basic token', () => {
    expect(
      parseProxyUrl(`http://svc%40corp:${encodeURIComponent(CANARY + ':x')}@proxy.corp:3128`),
    ).toEqual({
      origin: 'http://proxy.corp:3128',
      authorization: `Basic ${Buffer.from(`svc@corp:${CANARY}:x`).toString('base64')}`,
    });
    expect(parseProxyUrl('proxy.corp:3128')).toEqual({ origin: 'http://proxy.corp:3128' });
    expect(parseProxyUrl('https://proxy.corp')).toEqual({ origin: 'https://proxy.corp' });
    expect(parseProxyUrl('http://[::1]:3128/')).toEqual({ origin: 'http://[::1]:3128' });
  });

  it.each([
    '',
    `socks5://u:${CANARY}@p:1080`,
    `http://u:${CANARY}@p:3128/path`,
    `http://u:${CANARY}@p:3128?q`,
    `http://u:${CANARY}@p:3128#f`,
    `http://u:${CANARY}@p:3128 `,
    `http://u:${CANARY}%zz@p:3128`,
    'http://:3128',
    'http://p:99999',
  ])('should refuse %j without repeating it', (value) => {
    const parsed = parseProxyUrl(value);
    expect('error' in parsed).toBe(true);
    expect(JSON.stringify(parsed)).not.toContain(CANARY);
  });

  it('should redact user:password@ in any text', () => {
    expect(redactUrlCredentials(`via http://u:${CANARY}@p:1 and https://x@q`)).toBe(
      'via http://[redacted]@p:1 and https://[redacted]@q',
    );
  });
});

describe('NO_PROXY as curl reads it', () => {
  const duo = new URL('https://api-1a2b3c4d.duosecurity.com');
  it.each([
    ['*', true],
    ['duosecurity.com', true],
    ['.duosecurity.com', true],
    ['*.duosecurity.com', true],
    ['DUOSECURITY.COM.', true],
    ['api-1a2b3c4d.duosecurity.com', true],
    ['api-1a2b3c4d.duosecurity.com:443', true],
    ['api-1a2b3c4d.duosecurity.com:8443', false],
    ['security.com', false],
    ['xduosecurity.com', false],
    ['intranet.corp, localhost  duosecurity.com', true],
    ['', false],
    ['*x', false],
  ])('%j matches Duo: %s', (list, expected) => {
    expect(noProxyMatches(parseNoProxy(list), duo)).toBe(expected);
  });

  it('should match IP addresses, CIDR blocks and bracketed IPv6 with ports', () => {
    const v4 = new URL('https://10.1.2.3:8443');
    const v6 = new URL('https://[fd00::1]/');
    expect(noProxyMatches(parseNoProxy('10.1.2.3'), v4)).toBe(true);
    expect(noProxyMatches(parseNoProxy('10.1.2.3:8443'), v4)).toBe(true);
    expect(noProxyMatches(parseNoProxy('10.1.2.3:443'), v4)).toBe(false);
    expect(noProxyMatches(parseNoProxy('10.0.0.0/8'), v4)).toBe(true);
    expect(noProxyMatches(parseNoProxy('11.0.0.0/8'), v4)).toBe(false);
    expect(noProxyMatches(parseNoProxy('fd00::/8'), v6)).toBe(true);
    expect(noProxyMatches(parseNoProxy('fd00:0::1'), v6)).toBe(true);
    expect(noProxyMatches(parseNoProxy('[fd00::1]:443'), v6)).toBe(true);
    expect(noProxyMatches(parseNoProxy('[fd00::1]:8443'), v6)).toBe(false);
  });
});

describe('proxyFromEnvironment', () => {
  it('should read https_proxy before HTTPS_PROXY, and only http_proxy (never HTTP_PROXY) for http://', () => {
    const env = {
      https_proxy: 'http://lower:1',
      HTTPS_PROXY: 'http://upper:1',
      HTTP_PROXY: 'http://cgi:1',
      NO_PROXY: 'a',
      no_proxy: 'b',
    };
    expect(proxyFromEnvironment('https://duo', env)).toEqual({
      proxy: 'http://lower:1',
      source: 'https_proxy',
      noProxy: 'b',
    });
    expect(proxyFromEnvironment('https://duo', { HTTPS_PROXY: 'http://upper:1' })).toMatchObject({
      proxy: 'http://upper:1',
      source: 'HTTPS_PROXY',
    });
    expect(proxyFromEnvironment('http://sim', env).proxy).toBeUndefined();
  });
});

describe('CA bundles', () => {
  it('should accept certificates and refuse no certificate, a broken one, or a private key', () => {
    expect(parseCaBundle(`${PEM.cert}\n${PEM.cert}`)).toMatchObject({
      certs: [expect.any(String), expect.any(String)],
    });
    expect(parseCaBundle(Buffer.from(PEM.cert))).toMatchObject({ certs: [expect.any(String)] });
    expect(parseCaBundle('')).toEqual({ error: expect.stringMatching(/no PEM certificate/) });
    expect(parseCaBundle('-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n')).toEqual(
      { error: 'holds a certificate that does not parse' },
    );
    expect(parseCaBundle(PEM.cert + PEM.key)).toEqual({
      error: expect.stringMatching(/private key/),
    });
  });

  it('should read a CA file, and refuse a missing, empty or huge one', () => {
    const dir = mkdtempSync(join(tmpdir(), 'duo-nest-unit-cafile-'));
    try {
      writeFileSync(join(dir, 'ok.pem'), PEM.cert);
      writeFileSync(join(dir, 'empty.pem'), '');
      writeFileSync(join(dir, 'huge.pem'), Buffer.alloc(1024 * 1024 + 1, 0x41));
      expect(readCaFile(join(dir, 'ok.pem'))).toMatchObject({ certs: [expect.any(String)] });
      expect(readCaFile(join(dir, 'missing.pem'))).toEqual({ error: 'cannot be read (ENOENT)' });
      expect(readCaFile(join(dir, 'empty.pem'))).toEqual({
        error: expect.stringMatching(/no PEM/),
      });
      expect(readCaFile(join(dir, 'huge.pem'))).toEqual({ error: expect.stringMatching(/larger/) });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('the transport', () => {
  it('should print, inspect and serialise only the proxy origin', () => {
    const { transport, issues } = buildDuoTransport(
      { proxy: `http://svc:${CANARY}@proxy.corp:3128`, noProxy: '', ca: PEM.cert },
      { apiOrigin: 'https://api-1.duosecurity.com', timeoutMs: 5000 },
      {},
    );
    expect(issues).toEqual([]);
    expect(transport!.proxy).toBe('http://proxy.corp:3128');
    const shown = [
      String(transport),
      JSON.stringify(transport),
      inspect(transport, { depth: 20, showHidden: true }),
    ];
    expect(shown.join('\n')).toContain('http://proxy.corp:3128');
    for (const text of shown) {
      expect(text).not.toContain(CANARY);
      expect(text).not.toContain(Buffer.from(`svc:${CANARY}`).toString('base64'));
    }
  });

  it('should read the environment only when proxy is undefined, and skip it for a NO_PROXY host', () => {
    const env = { HTTPS_PROXY: 'http://env-proxy:3128' };
    const settings = { apiOrigin: 'https://api-1.duosecurity.com', timeoutMs: 5000 };
    expect(buildDuoTransport({}, settings, env).transport!.proxy).toBe('http://env-proxy:3128');
    expect(buildDuoTransport({ proxy: false }, settings, env).transport!.proxy).toBe(false);
    expect(
      buildDuoTransport({}, settings, { ...env, NO_PROXY: '.duosecurity.com' }).transport!.proxy,
    ).toBe(false);
    expect(
      buildDuoTransport({ noProxy: '' }, settings, { ...env, NO_PROXY: '*' }).transport!.proxy,
    ).toBe('http://env-proxy:3128');
  });

  it('should describe a 407 and an untrusted certificate for the operator', () => {
    const tunnel = new TypeError('fetch failed', {
      cause: new Error('Proxy response (407) !== 200 when HTTP Tunneling'),
    });
    expect(describeTransportFailure(tunnel)).toMatch(/407 Proxy Authentication Required/);
    const cert = Object.assign(new Error('unable to verify the first certificate'), {
      code: 'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
    });
    expect(describeTransportFailure(new TypeError('fetch failed', { cause: cert }))).toMatch(
      /not trusted .*DUO_CA_FILE/,
    );
    expect(describeTransportFailure(new Error('ECONNREFUSED'))).toBeUndefined();
  });
});

describe('options validation', () => {
  it('should list every bad transport option in one DuoConfigError, without the password', () => {
    let err: unknown;
    try {
      normalizeDuoClientOptions({
        ...BASE,
        proxy: `ftp://u:${CANARY}@p:21`,
        noProxy: 7 as unknown as string,
        ca: 'no certificate here',
        caFile: '/nonexistent/duo-ca.pem',
      });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(DuoConfigError);
    expect((err as DuoConfigError).issues.map((i) => i.field)).toEqual([
      'noProxy',
      'proxy',
      'ca',
      'caFile',
    ]);
    expect(String(err) + inspect(err)).not.toContain(CANARY);
  });

  it('should name the environment variable a bad environment proxy came from', () => {
    const { issues } = validateDuoClientOptions(BASE, { https_proxy: `http://u:${CANARY}@p:1/x` });
    expect(issues).toEqual([{ field: 'proxy (from https_proxy)', message: expect.any(String) }]);
    expect(JSON.stringify(issues)).not.toContain(CANARY);
  });

  it('should keep the credentials out of the normalized module options and reuse one transport', () => {
    const o = normalizeDuoModuleOptions({
      ...BASE,
      sessionSecret: 's'.repeat(40),
      proxy: `http://svc:${CANARY}@proxy.corp:3128`,
      caFile: undefined,
      ca: PEM.cert,
    });
    expect(o.proxy).toBe('http://proxy.corp:3128');
    expect(o.ca).toContain('BEGIN CERTIFICATE');
    expect(inspect(o, { depth: 20 })).not.toContain(CANARY);
    expect(JSON.stringify({ ...o, usernameResolver: undefined })).not.toContain(CANARY);
    // DuoModule hands these options to the client: the transport is reused, not rebuilt.
    const again = normalizeDuoClientOptions(o);
    expect(again.transport).toBe((o as unknown as { transport: unknown }).transport);
  });
});
