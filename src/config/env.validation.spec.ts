import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from '@jest/globals';
import { duoOptionsFromEnv } from './duo.config.js';
import { ENV_VARIABLES, EnvValidationError, validateEnv } from './env.validation.js';

function readEnvExample(): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of readFileSync(new URL('../../.env.example', import.meta.url), 'utf8').split(
    '\n',
  )) {
    const m = /^([A-Z0-9_]+)=(.*)$/.exec(line);
    if (m) {
      out[m[1]] = m[2];
    }
  }
  return out;
}

const SECRET = 'Zq3Lr8Tb1Wc5Yd7Ae2Gf4Hj6Kk9Mn0Pp1Qs3Rt5U';
const VALID = {
  DUO_CLIENT_ID: 'DIABCDEFGHIJ12345678',
  DUO_CLIENT_SECRET: 'abcdefghijklmnopqrstuvwxyz0123456789ABCD',
  DUO_API_HOST: 'api-1a2b3c4d.duosecurity.com',
};
const PRODUCTION = {
  ...VALID,
  NODE_ENV: 'production',
  PUBLIC_URL: 'https://app.example.org',
  DUO_REDIRECT_URI: 'https://app.example.org/auth/duo/callback',
  SESSION_SECRET: SECRET,
  AUDIT_CHAIN_KEY: SECRET.split('').reverse().join(''),
  DATABASE_URL: 'postgres://app@db.example.org:5432/duo',
};

function problemsOf(env: Record<string, string | undefined>): Record<string, string> {
  try {
    validateEnv(env);
  } catch (err) {
    expect(err).toBeInstanceOf(EnvValidationError);
    return Object.fromEntries(
      (err as EnvValidationError).problems.map((p) => [p.variable, p.message]),
    );
  }
  return {};
}

describe(validateEnv.name, () => {
  it('should accept .env.example when NODE_ENV is development', () => {
    const env = validateEnv(readEnvExample());
    expect(env.DUO_FAILMODE).toBe('closed');
    expect(env.DATABASE_URL).toBeUndefined();
  });

  it('should refuse .env.example placeholders when NODE_ENV is production', () => {
    const problems = problemsOf({ ...readEnvExample(), NODE_ENV: 'production' });
    expect(Object.keys(problems).sort()).toEqual(
      [
        'AUDIT_CHAIN_KEY',
        'DATABASE_URL',
        'DUO_CLIENT_SECRET',
        'DUO_REDIRECT_URI',
        'PUBLIC_URL',
        'SESSION_SECRET',
      ].sort(),
    );
  });

  it('should apply documented defaults when optional variables are unset', () => {
    const env = validateEnv(VALID);
    expect(env).toMatchObject({
      NODE_ENV: 'development',
      PORT: 3000,
      DUO_FAILMODE: 'closed',
      DUO_TIMEOUT_MS: 5000,
      DUO_CLOCK_TOLERANCE_MS: 60000,
      DUO_SKIP_BUTTON_PRESS: true,
      DUO_REDIRECT_URI: 'http://localhost:3000/auth/duo/callback',
      AUDIT_POLICY: 'spool',
    });
    expect(env.SESSION_SECRET.length).toBeGreaterThanOrEqual(32);
  });

  it('should accept a production environment with real values', () => {
    expect(validateEnv(PRODUCTION).NODE_ENV).toBe('production');
  });

  it('should list every bad variable at once when several are wrong', () => {
    const problems = problemsOf({ PORT: 'eighty', DUO_FAILMODE: 'maybe' });
    expect(Object.keys(problems).sort()).toEqual(
      ['DUO_API_HOST', 'DUO_CLIENT_ID', 'DUO_CLIENT_SECRET', 'DUO_FAILMODE', 'PORT'].sort(),
    );
    expect(problems.DUO_CLIENT_ID).toMatch(/required/);
  });

  it.each([
    ['DUO_CLIENT_ID', 'DIABCDEFGHIJ1234567', /20-character Client ID/],
    ['DUO_CLIENT_ID', 'diabcdefghij12345678', /20-character Client ID/],
    ['DUO_CLIENT_SECRET', 'abcdefghijklmnopqrstuvwxyz0123456789ABC', /40-character Client secret/],
    ['DUO_CLIENT_SECRET', 'abcdefghijklmnopqrstuvwxyz0123456789AB!D', /40-character Client secret/],
    ['DUO_API_HOST', 'https://api-1a2b3c4d.duosecurity.com/path', /API hostname/],
    ['DUO_API_HOST', 'api-1a2b3c4d.duosecurity.com/oauth', /API hostname/],
    ['DUO_REDIRECT_URI', 'https://app.example.org/' + 'a'.repeat(240), /at most 256/],
    ['DUO_REDIRECT_URI', '/auth/duo/callback', /absolute/],
    ['DUO_REDIRECT_URI', 'https://app.example.org/cb#frag', /fragment/],
    ['DUO_FAILMODE', 'sometimes', /closed, open/],
    ['DUO_TIMEOUT_MS', '50', /from 100 to 60000/],
    ['DUO_CLOCK_TOLERANCE_MS', '600000', /from 0 to 300000/],
    ['PORT', '70000', /from 0 to 65535/],
    ['DATABASE_URL', 'mysql://x@y/z', /postgres:\/\//],
    ['REDIS_URL', 'localhost:6379', /redis:\/\//],
    ['SESSION_SECRET', 'short-secret', /at least 32/],
    ['AUDIT_CHAIN_KEY', 'short', /at least 32/],
    ['AUDIT_POLICY', 'drop', /spool, deny/],
    ['DUO_SKIP_BUTTON_PRESS', 'perhaps', /true or false/],
    ['DUO_BUTTON_DISPLAY_NAME', 'x'.repeat(65), /at most 64/],
  ])('should refuse %s when it is %p', (name, value, message) => {
    const problems = problemsOf({ ...VALID, [name]: value });
    expect(problems[name]).toMatch(message);
  });

  it('should accept an http:// simulator URL as DUO_API_HOST outside production only', () => {
    expect(validateEnv({ ...VALID, DUO_API_HOST: 'http://127.0.0.1:4000' }).DUO_API_HOST).toBe(
      'http://127.0.0.1:4000',
    );
    expect(
      problemsOf({ ...PRODUCTION, DUO_API_HOST: 'http://127.0.0.1:4000' }).DUO_API_HOST,
    ).toMatch(/production/);
  });

  it('should require https redirect URI and public URL when NODE_ENV is production', () => {
    const problems = problemsOf({
      ...PRODUCTION,
      DUO_REDIRECT_URI: 'http://localhost:3000/auth/duo/callback',
      PUBLIC_URL: 'http://app.example.org',
    });
    expect(problems.DUO_REDIRECT_URI).toMatch(/https/);
    expect(problems.PUBLIC_URL).toMatch(/https/);
  });

  it('should require SESSION_SECRET and AUDIT_CHAIN_KEY when NODE_ENV is production', () => {
    const problems = problemsOf({ ...PRODUCTION, SESSION_SECRET: undefined, AUDIT_CHAIN_KEY: '' });
    expect(problems.SESSION_SECRET).toMatch(/required in production/);
    expect(problems.AUDIT_CHAIN_KEY).toMatch(/required in production/);
  });

  it('should refuse a placeholder or repeated-character secret when NODE_ENV is production', () => {
    const problems = problemsOf({
      ...PRODUCTION,
      SESSION_SECRET: 'a'.repeat(40),
      AUDIT_CHAIN_KEY: 'replace-this-with-a-long-random-value!!',
    });
    expect(problems.SESSION_SECRET).toMatch(/placeholder/);
    expect(problems.AUDIT_CHAIN_KEY).toMatch(/placeholder/);
  });

  it('should never print a secret value when a secret is invalid', () => {
    const leaked = 'abcdefghijklmnopqrstuvwxyz0123456789AB!D';
    let message = '';
    try {
      validateEnv({ ...VALID, DUO_CLIENT_SECRET: leaked, SESSION_SECRET: 'tooshort-but-secret' });
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message).toContain('DUO_CLIENT_SECRET');
    expect(message).not.toContain(leaked);
    expect(message).not.toContain('tooshort-but-secret');
  });

  it('should parse admin lists and database URLs when they are set', () => {
    const env = validateEnv({
      ...VALID,
      AUDIT_ADMIN_USERS: 'alice, bob ,,',
      AUDIT_ADMIN_GROUPS: 'admins',
      DATABASE_URL: 'postgres://postgres@127.0.0.1:5432/test',
      REDIS_URL: 'redis://127.0.0.1:6379',
    });
    expect(env.AUDIT_ADMIN_USERS).toEqual(['alice', 'bob']);
    expect(env.AUDIT_ADMIN_GROUPS).toEqual(['admins']);
    expect(env.DATABASE_URL).toBe('postgres://postgres@127.0.0.1:5432/test');
  });
});

describe('SESSION_SECRET_PREVIOUS', () => {
  it('should be unset by default and pass through to the DuoModule options when set', async () => {
    const { duoOptionsFromEnv } = await import('./duo.config.js');
    const previous = SECRET.replace('Zq3', 'Xy9');

    const unset = validateEnv(PRODUCTION);
    const set = validateEnv({ ...PRODUCTION, SESSION_SECRET_PREVIOUS: previous });

    expect(unset.SESSION_SECRET_PREVIOUS).toBeUndefined();
    expect(duoOptionsFromEnv(unset).sessionSecretPrevious).toBeUndefined();
    expect(set.SESSION_SECRET_PREVIOUS).toBe(previous);
    expect(duoOptionsFromEnv(set).sessionSecretPrevious).toBe(previous);
  });

  it('should refuse a short one, a placeholder in production, or one equal to SESSION_SECRET', () => {
    expect(problemsOf({ ...PRODUCTION, SESSION_SECRET_PREVIOUS: 'short' })).toMatchObject({
      SESSION_SECRET_PREVIOUS: expect.stringMatching(/at least 32/),
    });
    expect(
      problemsOf({
        ...PRODUCTION,
        SESSION_SECRET_PREVIOUS: 'change-me-to-at-least-32-random-characters',
      }),
    ).toMatchObject({ SESSION_SECRET_PREVIOUS: expect.stringMatching(/placeholder/) });
    expect(problemsOf({ ...PRODUCTION, SESSION_SECRET_PREVIOUS: SECRET })).toMatchObject({
      SESSION_SECRET_PREVIOUS: expect.stringMatching(/must differ/),
    });
  });
});

describe('outbound proxy and CA for Duo (issue 15 item 2)', () => {
  const canary = 'Canary-Env-Pa55-91d2';

  it('should map DUO_HTTPS_PROXY, else https_proxy before HTTPS_PROXY, and NO_PROXY, to the Duo options', () => {
    const duo = validateEnv({ ...VALID, DUO_HTTPS_PROXY: 'http://u:p@duo-proxy.corp:3128' });
    expect(duoOptionsFromEnv(duo).proxy).toBe('http://u:p@duo-proxy.corp:3128');
    const std = validateEnv({
      ...VALID,
      HTTPS_PROXY: 'http://upper.corp:3128',
      https_proxy: 'http://lower.corp:3128',
      no_proxy: '.corp.example',
    });
    expect(duoOptionsFromEnv(std)).toMatchObject({
      proxy: 'http://lower.corp:3128',
      noProxy: '.corp.example',
    });
    expect(duoOptionsFromEnv(validateEnv(VALID))).toMatchObject({ proxy: false, noProxy: '' });
    const off = validateEnv({ ...VALID, DUO_HTTPS_PROXY: 'off', HTTPS_PROXY: 'http://p:3128' });
    expect(duoOptionsFromEnv(off).proxy).toBe(false);
  });

  it('should refuse a bad proxy URL without repeating it', () => {
    for (const bad of [
      `socks5://user:${canary}@proxy:1080`,
      `http://user:${canary}@proxy:3128/path`,
      `http://user:${canary}@proxy:3128?x=1`,
      `http://user:${canary} @proxy:3128`,
    ]) {
      const problems = problemsOf({ ...VALID, DUO_HTTPS_PROXY: bad, HTTPS_PROXY: bad });
      expect(Object.keys(problems)).toEqual(['DUO_HTTPS_PROXY']);
      expect(JSON.stringify(problems)).not.toContain(canary);
    }
    // HTTPS_PROXY is checked when it is the one Duo uses.
    expect(problemsOf({ ...VALID, https_proxy: `ftp://u:${canary}@p:21` })).toMatchObject({
      HTTPS_PROXY: expect.stringMatching(/http:\/\/ or https:\/\//),
    });
  });

  it('should refuse at boot a DUO_CA_FILE that cannot be read or holds no certificate', () => {
    const dir = mkdtempSync(join(tmpdir(), 'duo-nest-env-ca-'));
    const empty = join(dir, 'empty.pem');
    writeFileSync(empty, 'not a certificate\n');
    expect(problemsOf({ ...VALID, DUO_CA_FILE: join(dir, 'missing.pem') })).toMatchObject({
      DUO_CA_FILE: 'cannot be read (ENOENT)',
    });
    expect(problemsOf({ ...VALID, DUO_CA_FILE: dir })).toMatchObject({
      DUO_CA_FILE: expect.stringMatching(/cannot be read \(EISDIR\)/),
    });
    expect(problemsOf({ ...VALID, DUO_CA_FILE: empty })).toMatchObject({
      DUO_CA_FILE: expect.stringMatching(/no PEM certificate/),
    });
  });

  it('should still refuse NODE_TLS_REJECT_UNAUTHORIZED=0 in production, with a CA file or not', () => {
    expect(problemsOf({ ...PRODUCTION, NODE_TLS_REJECT_UNAUTHORIZED: '0' })).toMatchObject({
      NODE_TLS_REJECT_UNAUTHORIZED: expect.stringMatching(/must not be 0/),
    });
  });
});

describe('Duo Admin API credentials (issue 16 item 1)', () => {
  const ADMIN = {
    DUO_ADMIN_INTEGRATION_KEY: 'DIADMIN0123456789ABC',
    DUO_ADMIN_SECRET_KEY: 'Adm1nSecretKey0123456789abcdefghijklmnopq'.slice(0, 40),
    DUO_ADMIN_API_HOST: 'api-1a2b3c4d.duosecurity.com',
  };

  it('none: the feature is off (all three undefined)', () => {
    const env = validateEnv(VALID);
    expect([
      env.DUO_ADMIN_INTEGRATION_KEY,
      env.DUO_ADMIN_SECRET_KEY,
      env.DUO_ADMIN_API_HOST,
    ]).toEqual([undefined, undefined, undefined]);
  });

  it('all three valid: accepted as given', () => {
    const env = validateEnv({ ...VALID, ...ADMIN });
    expect(env.DUO_ADMIN_INTEGRATION_KEY).toBe(ADMIN.DUO_ADMIN_INTEGRATION_KEY);
    expect(env.DUO_ADMIN_API_HOST).toBe(ADMIN.DUO_ADMIN_API_HOST);
  });

  it.each(Object.keys(ADMIN))('a partial set (without %s) is refused by name', (missing) => {
    const partial = { ...VALID, ...ADMIN, [missing]: undefined };
    const problems = problemsOf(partial);
    expect(Object.keys(problems)).toEqual([missing]);
    expect(problems[missing]).toContain('all three');
  });

  it('malformed values are refused without echoing them; production applies the host allow-list', () => {
    const bad = {
      DUO_ADMIN_INTEGRATION_KEY: 'not-a-key',
      DUO_ADMIN_SECRET_KEY: 'tooShortSecretValue',
      DUO_ADMIN_API_HOST: 'http://127.0.0.1:4000',
    };
    const problems = problemsOf({ ...PRODUCTION, ...bad });
    expect(Object.keys(problems).sort()).toEqual(Object.keys(bad).sort());
    for (const value of Object.values(bad)) {
      expect(JSON.stringify(problems)).not.toContain(value);
    }
    expect(
      problemsOf({ ...VALID, ...ADMIN, DUO_ADMIN_SECRET_KEY: ` ${ADMIN.DUO_ADMIN_SECRET_KEY}` }),
    ).toHaveProperty('DUO_ADMIN_SECRET_KEY');
    // Outside production the simulator's http://host:port is accepted, as for DUO_API_HOST.
    expect(
      validateEnv({ ...VALID, ...ADMIN, DUO_ADMIN_API_HOST: 'http://127.0.0.1:4000' })
        .DUO_ADMIN_API_HOST,
    ).toBe('http://127.0.0.1:4000');
  });
});

describe('the admin Duo application (DUO_ADMIN_APP_CLIENT_ID / DUO_ADMIN_APP_CLIENT_SECRET)', () => {
  const ADMIN_ID = 'DIZYXWVUTSRQ98765432';
  const ADMIN_SECRET = 'ZYXWVUTSRQPONMLKJIHGFEDCBA9876543210zyxw';

  it('should map both to applications.admin, and neither to the alias admin: default', () => {
    const both = validateEnv({
      ...VALID,
      DUO_ADMIN_APP_CLIENT_ID: ADMIN_ID,
      DUO_ADMIN_APP_CLIENT_SECRET: ADMIN_SECRET,
    });
    expect(duoOptionsFromEnv(both).applications).toEqual({
      admin: { clientId: ADMIN_ID, clientSecret: ADMIN_SECRET },
    });
    expect(duoOptionsFromEnv(validateEnv({ ...VALID })).applications).toEqual({
      admin: 'default',
    });
  });

  it.each([
    ['only the id', { DUO_ADMIN_APP_CLIENT_ID: ADMIN_ID }, 'DUO_ADMIN_APP_CLIENT_SECRET'],
    ['only the secret', { DUO_ADMIN_APP_CLIENT_SECRET: ADMIN_SECRET }, 'DUO_ADMIN_APP_CLIENT_ID'],
  ])('should refuse %s, naming the missing one', (_name, set, missing) => {
    const problems = problemsOf({ ...VALID, ...set });
    expect(Object.keys(problems)).toEqual([missing]);
    expect(problems[missing]).toMatch(/both, or neither/);
  });

  it('should check them like the main credentials and never echo the secret', () => {
    const badSecret = 'short-secret-value';
    const problems = problemsOf({
      ...VALID,
      DUO_ADMIN_APP_CLIENT_ID: ' DIZYXWVUTSRQ98765432',
      DUO_ADMIN_APP_CLIENT_SECRET: badSecret,
    });
    expect(Object.keys(problems).sort()).toEqual([
      'DUO_ADMIN_APP_CLIENT_ID',
      'DUO_ADMIN_APP_CLIENT_SECRET',
    ]);
    expect(problems.DUO_ADMIN_APP_CLIENT_ID).toMatch(/leading or trailing spaces/);
    expect(JSON.stringify(problems)).not.toContain(badSecret);
    // The production placeholder rule applies too.
    const production = problemsOf({
      ...PRODUCTION,
      DUO_ADMIN_APP_CLIENT_ID: ADMIN_ID,
      DUO_ADMIN_APP_CLIENT_SECRET: 'X'.repeat(40),
    });
    expect(Object.keys(production)).toEqual(['DUO_ADMIN_APP_CLIENT_SECRET']);
  });

  it('should refuse the main application under the admin name', () => {
    const problems = problemsOf({
      ...VALID,
      DUO_ADMIN_APP_CLIENT_ID: VALID.DUO_CLIENT_ID,
      DUO_ADMIN_APP_CLIENT_SECRET: ADMIN_SECRET,
    });
    expect(Object.keys(problems)).toEqual(['DUO_ADMIN_APP_CLIENT_ID']);
  });
});

describe('.env.example and the README', () => {
  it('should list every variable the app reads (set, or commented out with an example)', () => {
    const example = readFileSync(new URL('../../.env.example', import.meta.url), 'utf8');
    const listed = new Set([...example.matchAll(/^(?:# ?)?([A-Z][A-Z0-9_]+)=/gm)].map((m) => m[1]));
    expect(ENV_VARIABLES.filter((name) => !listed.has(name))).toEqual([]);
  });

  it("should describe every variable in the README's configuration table", () => {
    const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
    // The first cell of each row names one variable or several (`HTTPS_PROXY`, `NO_PROXY`).
    const inTable = new Set(
      [...readme.matchAll(/^\| (`[A-Z][A-Z0-9_]+`(?:, `[A-Z][A-Z0-9_]+`)*) \|/gm)].flatMap((m) =>
        [...m[1].matchAll(/`([A-Z0-9_]+)`/g)].map((n) => n[1]),
      ),
    );
    expect(ENV_VARIABLES.filter((name) => !inTable.has(name))).toEqual([]);
  });
});
