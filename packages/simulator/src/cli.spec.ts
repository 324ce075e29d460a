import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseCli, UsageError } from './cli.js';
import { generateClientId, generateClientSecret, startSimulator } from './index.js';
import { authorizeForCode, decodePayload, exchange } from './spec-kit.js';

let dir: string;
let usersFile: string;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'duo-sim-cli-'));
  usersFile = join(dir, 'users.json');
  writeFileSync(
    usersFile,
    JSON.stringify({ users: [{ username: 'dave', aliases: ['D.Ops'], groups: ['ops'] }] }),
  );
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe(parseCli.name, () => {
  it('should map every option when the arguments are valid', () => {
    const id = generateClientId();
    const secret = generateClientSecret();
    const options = parseCli([
      ...['--port', '4100', '--host', '0.0.0.0', '--client-id', id, '--client-secret', secret],
      ...['--users', usersFile, '--auto', 'deny', '--new-user-policy', 'allow'],
      ...['--app-name', 'Demo', '--error-redirect-on-deny', '--code-ttl-ms', '5000'],
    ]);
    expect(options).toMatchObject({
      port: 4100,
      host: '0.0.0.0',
      clientId: id,
      clientSecret: secret,
      users: usersFile,
      auto: 'deny',
      newUserPolicy: 'allow',
      applicationName: 'Demo',
      errorRedirectOnDeny: true,
      codeTtlMs: 5000,
    });
  });

  it('should default to port 4000 and generated credentials when no arguments are given', () => {
    expect(parseCli([])).toMatchObject({
      port: 4000,
      clientId: undefined,
      clientSecret: undefined,
    });
  });

  it.each([
    [['--port', 'abc']],
    [['--port', '70000']],
    [['--bogus']],
    [['--auto', 'maybe']],
    [['--new-user-policy', 'sometimes']],
    [['--client-id', 'DIAAAAAAAAAAAAAAAAAA']],
    [['--client-id', 'short', '--client-secret', 'a'.repeat(40)]],
    [['--tls-cert', 'cert.pem']],
    [['--users', '/no/such/file.json']],
    [['positional']],
  ])('should throw a UsageError when given %j', (argv) => {
    expect(() => parseCli(argv)).toThrow(UsageError);
  });
});

describe('credentials and users file', () => {
  it('should generate credentials of Duo shape when none are given', () => {
    expect(generateClientId()).toMatch(/^DI[A-Z0-9]{18}$/);
    expect(generateClientSecret()).toMatch(/^[A-Za-z0-9]{40}$/);
    expect(generateClientSecret()).not.toBe(generateClientSecret());
  });

  it('should load the directory from a JSON file when users is a path', async () => {
    const sim = await startSimulator({ users: usersFile, auto: 'allow' });
    try {
      const { code } = await authorizeForCode(sim, { username: 'd.ops' });
      const { id_token } = (await (await exchange(sim, code)).json()) as { id_token: string };
      expect(decodePayload(id_token)).toMatchObject({
        sub: 'dave',
        preferred_username: 'd.ops',
        auth_context: { alias: 'd.ops', user: { groups: ['ops'] } },
      });
      expect(sim.control.state().users.map((u) => u.username)).toEqual(['dave']);
    } finally {
      await sim.close();
    }
  });

  it('should refuse to start when the users file is invalid', async () => {
    const bad = join(dir, 'bad.json');
    writeFileSync(bad, JSON.stringify([{ username: 'x', status: 'sleepy' }]));
    await expect(startSimulator({ users: bad })).rejects.toThrow(/status/);
  });
});
