// Several Duo applications in one simulator (own secrets, own policy, codes bound to their
// application, the log's application field) and one public host for every aud and iss.
import { afterAll, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import { jwtVerify } from 'jose';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseCli, UsageError } from './cli.js';
import { generateClientId, generateClientSecret, startSimulator } from './index.js';
import {
  asApp,
  assertion,
  authorizeForCode,
  authorizeUrl,
  decodePayload,
  exchange,
  get,
  post,
} from './spec-kit.js';
import type { RunningSimulator } from './types.js';

const ADMIN = { clientId: generateClientId(), clientSecret: generateClientSecret() };
const key = (secret: string) => new TextEncoder().encode(secret);

let sim: RunningSimulator;
beforeAll(async () => {
  sim = await startSimulator({
    auto: 'allow',
    clientId: generateClientId(),
    clientSecret: generateClientSecret(),
    applicationName: 'Portal',
    applications: [
      {
        ...ADMIN,
        name: 'Admin',
        policy: { allowedFactors: ['webauthn'], allowBypass: false, newUserPolicy: 'deny' },
      },
    ],
  });
});
afterAll(() => sim.close());
beforeEach(() => sim.control.reset());

const admin = () => asApp(sim, ADMIN);

async function idToken(s: RunningSimulator, username = 'alice') {
  const { code } = await authorizeForCode(s, { username });
  const res = await exchange(s, code);
  expect(res.status).toBe(200);
  return ((await res.json()) as { id_token: string }).id_token;
}

describe('two applications', () => {
  it('should serve the single clientId first and the given applications after it', async () => {
    // Without clientId/clientSecret, the first given application is the first one.
    const only = await startSimulator({ applications: [ADMIN] });
    await only.close();
    expect([only.clientId, only.applications.length]).toEqual([ADMIN.clientId, 1]);
    expect(sim.applications.map((a) => [a.clientId, a.name])).toEqual([
      [sim.clientId, 'Portal'],
      [ADMIN.clientId, 'Admin'],
    ]);
    expect(sim.control.applications()[1].policy).toEqual({
      allowedFactors: ['webauthn'],
      allowBypass: false,
      newUserPolicy: 'deny',
      authenticationPolicy: 'enforce',
    });
  });

  it('should sign each application id_token with its own secret and name it', async () => {
    const token = await idToken(admin());
    const { payload } = await jwtVerify(token, key(ADMIN.clientSecret), {
      audience: ADMIN.clientId,
      issuer: `${sim.publicOrigin}/oauth/v1/token`,
    });
    expect(payload.auth_context).toMatchObject({
      application: { key: ADMIN.clientId, name: 'Admin' },
    });
    await expect(jwtVerify(token, key(sim.clientSecret))).rejects.toThrow();
    const portal = await idToken(sim);
    await expect(jwtVerify(portal, key(sim.clientSecret))).resolves.toBeDefined();
  });

  it('should refuse an application assertion signed with the other application secret', async () => {
    const forged = { ...ADMIN, clientSecret: sim.clientSecret };
    const health = await post(`${sim.url}/oauth/v1/health_check`, {
      client_id: ADMIN.clientId,
      client_assertion: await assertion(asApp(sim, forged), '/oauth/v1/health_check'),
    });
    expect(health.status).toBe(400);
    expect(health.headers.get('x-simulator-reason')).toMatch(/signature/);
    const { code } = await authorizeForCode(admin());
    const token = await exchange(asApp(sim, forged), code);
    expect(token.status).toBe(400);
    expect(await token.json()).toMatchObject({ error: 'invalid_client' });
    // A request JWT signed with the other secret is refused at authorize too.
    const { url } = await authorizeUrl(asApp(sim, forged));
    expect((await get(url)).status).toBe(400);
  });

  it('should refuse with invalid_grant a code issued to another application, and spend it', async () => {
    const { code } = await authorizeForCode(sim);
    const stolen = await exchange(admin(), code);
    expect(stolen.status).toBe(400);
    expect(await stolen.json()).toMatchObject({ error: 'invalid_grant' });
    expect(stolen.headers.get('x-simulator-reason')).toBe('code issued to another application');
    expect((await exchange(sim, code)).status).toBe(400);
  });

  it('should identify the application from the assertion iss when client_id is omitted (Java)', async () => {
    const { code } = await authorizeForCode(admin());
    const res = await exchange(admin(), code, { client_id: undefined });
    expect(res.status).toBe(200);
  });
});

describe('per-application policy', () => {
  it('should let a bypass user skip the prompt only where bypass is allowed', async () => {
    const portal = decodePayload(await idToken(sim, 'bypass'));
    expect(portal.auth_context).toMatchObject({ reason: 'bypass_user', factor: 'not_available' });
    const strict = decodePayload(await idToken(admin(), 'bypass'));
    expect(strict.auth_context).toMatchObject({
      reason: 'user_approved',
      factor: 'WebAuthn Security Key',
    });
  });

  it('should deny an unknown user where the new-user policy denies', async () => {
    expect((await get((await authorizeUrl(sim, { username: 'newbie' })).url)).status).toBe(302);
    const res = await get((await authorizeUrl(admin(), { username: 'newbie' })).url);
    expect(res.status).toBe(200);
    expect(await res.text()).toContain('data-reason="deny_unenrolled_user"');
  });

  it('should deny a scripted approval by a factor the application does not allow', async () => {
    sim.control.nextOutcome({ username: 'bob', outcome: 'allow', factor: 'duo_push' });
    const res = await get((await authorizeUrl(admin(), { username: 'bob' })).url);
    expect(res.status).toBe(200);
    expect(await res.text()).toContain('data-reason="factor_restricted"');
    expect(sim.control.authLog().at(-1)).toMatchObject({
      result: 'denied',
      reason: 'factor_restricted',
      application: { key: ADMIN.clientId },
    });
  });

  it('should apply an authentication policy of bypass or deny to every user', async () => {
    const open = { clientId: generateClientId(), clientSecret: generateClientSecret() };
    const closed = { clientId: generateClientId(), clientSecret: generateClientSecret() };
    const added = await fetch(`${sim.url}/__sim/applications`, {
      method: 'POST',
      body: JSON.stringify([
        { ...open, policy: { authenticationPolicy: 'bypass' } },
        { ...closed, policy: { authenticationPolicy: 'deny' } },
      ]),
    });
    expect(added.status).toBe(200);
    const text = await added.text();
    expect(text).not.toContain(open.clientSecret);
    const bypassed = decodePayload(await idToken(asApp(sim, open), 'bob'));
    expect(bypassed.auth_context).toMatchObject({
      reason: 'allowed_by_policy',
      factor: 'not_available',
    });
    const res = await get((await authorizeUrl(asApp(sim, closed), { username: 'bob' })).url);
    expect(await res.text()).toContain('data-reason="denied_by_policy"');
  });
});

describe('prompt of a factor-restricted application', () => {
  it('should offer only the allowed factors and refuse a forged choice', async () => {
    const prompted = await startSimulator({
      applications: [{ ...ADMIN, policy: { allowedFactors: ['webauthn', 'phone_call'] } }],
    });
    try {
      const res = await get((await authorizeUrl(asApp(prompted, ADMIN))).url);
      const html = await res.text();
      expect([...html.matchAll(/<option value="([^"]+)"/g)].map((m) => m[1])).toEqual([
        'webauthn',
        'phone_call',
      ]);
      const txn = /name="txn" value="([^"]+)"/.exec(html)![1];
      const forged = await post(`${prompted.url}/frame/prompt`, {
        txn,
        action: 'approve',
        factor: 'duo_push',
      });
      expect(forged.status).toBe(200);
      expect(await forged.text()).toContain('data-reason="factor_restricted"');
      expect(prompted.control.stats().codes_issued).toBe(0);
    } finally {
      await prompted.close();
    }
  });
});

describe('control API for applications', () => {
  it('should list the applications without any secret', async () => {
    const res = await fetch(`${sim.url}/__sim/applications`);
    const text = await res.text();
    expect(JSON.parse(text)).toMatchObject({
      applications: [{ clientId: sim.clientId }, { clientId: ADMIN.clientId }],
    });
    expect(text).not.toContain(sim.clientSecret);
    expect(text).not.toContain(ADMIN.clientSecret);
  });

  it.each([
    [{ clientId: 'short', clientSecret: generateClientSecret() }],
    [{ clientId: generateClientId(), clientSecret: 'x' }],
    [{ ...ADMIN, policy: { allowedFactors: ['sms'] } }],
    [{ ...ADMIN, policy: { allowBypass: 'no' } }],
    [{ ...ADMIN, policy: { bypass: true } }],
    [[ADMIN, ADMIN]],
  ])('should refuse %j with a 400 and change nothing', async (body) => {
    const before = sim.control.applications();
    const res = await fetch(`${sim.url}/__sim/applications`, {
      method: 'POST',
      body: JSON.stringify(body),
    });
    expect(res.status).toBe(400);
    expect(sim.control.applications()).toEqual(before);
  });

  it('should drop applications added at run time when reset', async () => {
    await sim.control.addApplications([
      { clientId: generateClientId(), clientSecret: generateClientSecret() },
    ]);
    expect(sim.control.applications()).toHaveLength(3);
    sim.control.reset();
    expect(sim.control.applications()).toHaveLength(2);
  });

  it('should refuse to start with a client id given twice', async () => {
    await expect(
      startSimulator({ ...ADMIN, applications: [{ ...ADMIN, name: 'again' }] }),
    ).rejects.toThrow(/given twice/);
  });
});

describe('authentication log', () => {
  it('should record the application of each decision', async () => {
    await idToken(sim, 'bob');
    await idToken(admin(), 'bob');
    await get((await authorizeUrl(admin(), { username: 'locked' })).url);
    expect(
      sim.control.authLog().map((e) => [e.application.key, e.application.name, e.result]),
    ).toEqual([
      [sim.clientId, 'Portal', 'success'],
      [ADMIN.clientId, 'Admin', 'success'],
      [ADMIN.clientId, 'Admin', 'denied'],
    ]);
  });
});

describe('public host', () => {
  it('should refuse a client that names localhost when the public host is 127.0.0.1', async () => {
    const port = new URL(sim.url).port;
    const viaLocalhost = { ...sim, publicOrigin: `http://localhost:${port}` };
    const health = await post(`http://localhost:${port}/oauth/v1/health_check`, {
      client_id: sim.clientId,
      client_assertion: await assertion(viaLocalhost, '/oauth/v1/health_check'),
    });
    expect(health.status).toBe(400);
    expect(health.headers.get('x-simulator-reason')).toMatch(/aud/);
    const { code } = await authorizeForCode(sim);
    const token = await exchange(viaLocalhost, code);
    expect(token.status).toBe(400);
    expect(await token.json()).toMatchObject({ error: 'invalid_client' });
    const { url } = await authorizeUrl(viaLocalhost);
    expect((await get(url)).status).toBe(400);
  });

  it('should take aud and iss from the configured public host, not the Host header', async () => {
    const named = await startSimulator({ auto: 'allow', publicHost: 'API-Sim.example:8443' });
    try {
      expect(named.apiHost).toBe('api-sim.example:8443');
      expect(named.publicOrigin).toBe('http://api-sim.example:8443');
      // Requests reach 127.0.0.1 (that is the Host header) but name the public host.
      const claims = decodePayload(await idToken(named));
      expect(claims.iss).toBe('http://api-sim.example:8443/oauth/v1/token');
      const bySocket = { ...named, publicOrigin: named.url };
      const res = await post(`${named.url}/oauth/v1/health_check`, {
        client_id: named.clientId,
        client_assertion: await assertion(bySocket, '/oauth/v1/health_check'),
      });
      expect(res.status).toBe(400);
    } finally {
      await named.close();
    }
  });

  it('should rename the public host at run time and keep it across reset', async () => {
    const renamed = await startSimulator({ auto: 'allow' });
    try {
      const res = await fetch(`${renamed.url}/__sim/public-host`, {
        method: 'POST',
        body: JSON.stringify({ publicHost: 'Proxy.example:8080' }),
      });
      expect(await res.json()).toEqual({ ok: true, publicHost: 'proxy.example:8080' });
      renamed.control.reset();
      expect(renamed.apiHost).toBe('proxy.example:8080');
      expect(decodePayload(await idToken(renamed)).iss).toBe(
        'http://proxy.example:8080/oauth/v1/token',
      );
      const bad = await fetch(`${renamed.url}/__sim/public-host`, {
        method: 'POST',
        body: JSON.stringify({ publicHost: 'http://x/y' }),
      });
      expect(bad.status).toBe(400);
      expect(renamed.apiHost).toBe('proxy.example:8080');
    } finally {
      await renamed.close();
    }
  });

  it('should drop the scheme default port from the public host', async () => {
    const plain = await startSimulator({ publicHost: 'api-sim.example:80' });
    try {
      expect(plain.publicOrigin).toBe('http://api-sim.example');
    } finally {
      await plain.close();
    }
  });

  it.each(['http://api-sim.example', 'api-sim.example/x', 'user@api-sim.example', 'h:99999', ''])(
    'should refuse to start with the public host %j',
    async (publicHost) => {
      await expect(startSimulator({ publicHost })).rejects.toThrow(/publicHost/);
    },
  );
});

describe('CLI', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'duo-sim-apps-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('should read applications from a JSON file and take --public-host', () => {
    const file = join(dir, 'apps.json');
    writeFileSync(file, JSON.stringify({ applications: [{ ...ADMIN, name: 'Admin' }] }));
    expect(parseCli(['--applications', file, '--public-host', 'api-sim.example'])).toMatchObject({
      applications: [{ clientId: ADMIN.clientId, name: 'Admin' }],
      publicHost: 'api-sim.example',
      clientId: undefined,
    });
  });

  it.each([
    [['--applications', '/no/such/file.json']],
    [['--applications', 'BAD']],
    [['--public-host', 'https://x']],
  ])('should throw a UsageError when given %j', (argv) => {
    const bad = join(dir, 'bad.json');
    writeFileSync(bad, JSON.stringify([{ clientId: 'x', clientSecret: 'y' }]));
    expect(() => parseCli(argv.map((a) => (a === 'BAD' ? bad : a)))).toThrow(UsageError);
  });
});
