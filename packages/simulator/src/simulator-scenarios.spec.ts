import { afterAll, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import { createHmac } from 'node:crypto';
import { startSimulator } from './index.js';
import {
  authorizeForCode,
  authorizeUrl,
  decodePayload,
  exchange,
  get,
  post,
  REDIRECT_URI,
} from './spec-kit.js';
import {
  TOKEN_FAULTS,
  type RunningSimulator,
  type SimulatorOptions,
  type TokenFault,
} from './types.js';

let sim: RunningSimulator;
const extra: RunningSimulator[] = [];

async function another(options: SimulatorOptions): Promise<RunningSimulator> {
  const s = await startSimulator(options);
  extra.push(s);
  return s;
}

beforeAll(async () => {
  sim = await startSimulator({ applicationName: 'Spec <App>' });
});
afterAll(async () => {
  await Promise.all([sim, ...extra].map((s) => s.close()));
});
beforeEach(() => sim.control.reset());

/** Opens the prompt page for a user and returns the page and its one-time transaction id. */
async function openPrompt(s: RunningSimulator, username: string, state?: string) {
  const { url, state: sent } = await authorizeUrl(s, { username, state });
  const res = await get(url);
  const html = await res.text();
  const txn = /name="txn" value="([^"]+)"/.exec(html)?.[1];
  return { res, html, txn, state: sent };
}

function submit(s: RunningSimulator, txn: string, action: string, factor?: string) {
  return post(`${s.url}/frame/prompt`, { txn, action, factor });
}

async function tokenClaims(s: RunningSimulator, location: string) {
  const code = new URL(location).searchParams.get('duo_code')!;
  const res = await exchange(s, code);
  const body = (await res.json()) as { id_token: string };
  return decodePayload(body.id_token);
}

describe('prompt page', () => {
  it('should show the user, the application and the factor choice with a strict CSP when authorize is valid', async () => {
    const { res, html, txn } = await openPrompt(sim, 'bob');
    expect(res.status).toBe(200);
    expect(html).toMatch(/id="username">bob</);
    expect(html).toContain('Spec &#60;App&#62;');
    for (const id of ['id="approve"', 'id="deny"', 'name="factor"']) {
      expect(html).toContain(id);
    }
    for (const f of ['duo_push', 'duo_mobile_passcode', 'phone_call', 'webauthn']) {
      expect(html).toContain(`value="${f}"`);
    }
    expect(html.toLowerCase()).not.toContain('cancel');
    expect(html).not.toMatch(/<script|https?:\/\/(?!app\.example)/);
    expect(txn).toBeTruthy();
    const csp = res.headers.get('content-security-policy')!;
    expect(csp).toContain("default-src 'none'");
    expect(csp).toContain("frame-ancestors 'none'");
    expect(csp).toContain('form-action');
  });

  it('should redirect with a code and the exact state when Approve is pressed', async () => {
    const state = 'Zustand-ÄÖÜ-ß-日本-' + 'x'.repeat(10);
    const { txn } = await openPrompt(sim, 'bob', state);
    const res = await submit(sim, txn!, 'approve', 'phone_call');
    const location = new URL(res.headers.get('location')!);
    expect(res.status).toBe(302);
    expect(location.searchParams.get('state')).toBe(state);
    const claims = await tokenClaims(sim, location.href);
    expect(claims.auth_context).toMatchObject({ factor: 'phone_call', reason: 'user_approved' });
  });

  it('should record valid_passcode when the passcode factor is chosen', async () => {
    const { txn } = await openPrompt(sim, 'bob');
    const res = await submit(sim, txn!, 'approve', 'duo_mobile_passcode');
    const claims = await tokenClaims(sim, res.headers.get('location')!);
    expect(claims.auth_context).toMatchObject({
      factor: 'duo_mobile_passcode',
      reason: 'valid_passcode',
    });
  });

  it('should stay on the denial page when Deny is pressed', async () => {
    const { txn } = await openPrompt(sim, 'bob');
    const res = await submit(sim, txn!, 'deny');
    expect(res.status).toBe(200);
    expect(res.headers.get('location')).toBeNull();
    expect(await res.text()).toContain('id="denied"');
  });

  it('should refuse the transaction when it is submitted twice', async () => {
    const { txn } = await openPrompt(sim, 'bob');
    await submit(sim, txn!, 'approve');
    const again = await submit(sim, txn!, 'approve');
    expect(again.status).toBe(400);
    expect(again.headers.get('location')).toBeNull();
  });

  it('should redirect with error=access_denied when Deny is pressed and error redirects are on', async () => {
    const s = await another({ errorRedirectOnDeny: true });
    const { txn, state } = await openPrompt(s, 'bob');
    const res = await submit(s, txn!, 'deny');
    const location = new URL(res.headers.get('location')!);
    expect(res.status).toBe(302);
    expect(`${location.origin}${location.pathname}`).toBe(REDIRECT_URI);
    expect(location.searchParams.get('error')).toBe('access_denied');
    expect(location.searchParams.get('error_description')).toBeTruthy();
    expect(location.searchParams.get('state')).toBe(state);
    expect(location.searchParams.has('duo_code')).toBe(false);
  });
});

describe('user directory', () => {
  it('should put the primary name in sub and the alias in preferred_username when an alias is used', async () => {
    const s = await another({ auto: 'allow' });
    const { location } = await authorizeForCode(s, { username: 'Alice.Alias' });
    const claims = await tokenClaims(s, location.href);
    expect(claims.sub).toBe('alice');
    expect(claims.preferred_username).toBe('Alice.Alias');
    expect(claims.auth_context).toMatchObject({ alias: 'Alice.Alias', user: { name: 'alice' } });
  });

  it.each(['locked', 'disabled'])(
    'should show a denial page and never redirect when the user is %s',
    async (name) => {
      const { res, html } = await openPrompt(sim, name);
      expect(res.status).toBe(200);
      expect(res.headers.get('location')).toBeNull();
      expect(html).toContain('id="denied"');
      expect(html).toMatch(/data-reason="(locked_out|user_disabled)"/);
    },
  );

  it('should redirect at once with reason bypass_user when the user is in bypass status', async () => {
    const { url } = await authorizeUrl(sim, { username: 'bypass' });
    const res = await get(url);
    expect(res.status).toBe(302);
    const claims = await tokenClaims(sim, res.headers.get('location')!);
    expect(claims.auth_context).toMatchObject({ reason: 'bypass_user', factor: 'not_available' });
  });

  it('should show the prompt for an unknown user when the policy is enroll', async () => {
    const { res, txn } = await openPrompt(sim, 'newcomer');
    expect(res.status).toBe(200);
    const approved = await submit(sim, txn!, 'approve');
    const claims = await tokenClaims(sim, approved.headers.get('location')!);
    expect(claims).toMatchObject({ sub: 'newcomer', auth_context: { user: { groups: [] } } });
  });

  it('should let an unknown user through with allow_unenrolled_user when the policy is allow', async () => {
    const s = await another({ newUserPolicy: 'allow' });
    const { location } = await authorizeForCode(s, { username: 'stranger' });
    const claims = await tokenClaims(s, location.href);
    expect(claims.auth_context).toMatchObject({ reason: 'allow_unenrolled_user' });
  });

  it('should deny an unknown user without redirect when the policy is deny', async () => {
    const s = await another({ newUserPolicy: 'deny', auto: 'allow', errorRedirectOnDeny: true });
    const { url } = await authorizeUrl(s, { username: 'stranger' });
    const res = await get(url);
    expect(res.status).toBe(200);
    expect(res.headers.get('location')).toBeNull();
    expect(await res.text()).toContain('data-reason="deny_unenrolled_user"');
  });

  it('should use users added through the control API when they are posted', async () => {
    const res = await fetch(`${sim.url}/__sim/users`, {
      method: 'POST',
      body: JSON.stringify([{ username: 'carol', groups: ['ops'], status: 'bypass' }]),
    });
    expect(res.status).toBe(200);
    const { url } = await authorizeUrl(sim, { username: 'carol' });
    const claims = await tokenClaims(sim, (await get(url)).headers.get('location')!);
    expect(claims.auth_context).toMatchObject({ user: { name: 'carol', groups: ['ops'] } });
  });
});

describe('control API', () => {
  it('should report state without the secret and count endpoint calls when queried', async () => {
    await openPrompt(sim, 'bob');
    const state = (await (await fetch(`${sim.url}/__sim/state`)).json()) as Record<string, unknown>;
    expect(state.clientId).toBe(sim.clientId);
    expect(JSON.stringify(state)).not.toContain(sim.clientSecret);
    expect(state.pendingTransactions).toBe(1);
    const stats = (await (await fetch(`${sim.url}/__sim/stats`)).json()) as Record<string, number>;
    expect(stats.authorize).toBe(1);
  });

  it('should apply a scripted outcome once when next-outcome is posted', async () => {
    const res = await fetch(`${sim.url}/__sim/next-outcome`, {
      method: 'POST',
      body: JSON.stringify({
        username: 'bob',
        outcome: 'allow',
        factor: 'sms_passcode',
        reason: 'valid_passcode',
      }),
    });
    expect(res.status).toBe(200);
    const first = await get((await authorizeUrl(sim, { username: 'bob' })).url);
    expect(first.status).toBe(302);
    const claims = await tokenClaims(sim, first.headers.get('location')!);
    expect(claims.auth_context).toMatchObject({ factor: 'sms_passcode', reason: 'valid_passcode' });
    const second = await get((await authorizeUrl(sim, { username: 'bob' })).url);
    expect(second.status).toBe(200); // back to the prompt page
  });

  it.each([
    ['deny', 200, null],
    ['error_redirect', 302, 'access_denied'],
  ])('should answer %s when that outcome is scripted', async (outcome, status, error) => {
    sim.control.nextOutcome({ username: 'bob', outcome: outcome as 'deny' | 'error_redirect' });
    const res = await get((await authorizeUrl(sim, { username: 'bob' })).url);
    expect(res.status).toBe(status);
    const location = res.headers.get('location');
    expect(location === null ? null : new URL(location).searchParams.get('error')).toBe(error);
  });

  it.each([
    ['/__sim/faults', { token: 'nonsense' }],
    ['/__sim/faults', { health: 'down', once: 'yes' }],
    ['/__sim/next-outcome', { username: 'bob', outcome: 'maybe' }],
    ['/__sim/users', [{ username: '' }]],
    ['/__sim/users', 'not json{'],
  ])('should answer 400 when %s gets %j', async (path, body) => {
    const res = await fetch(`${sim.url}${path}`, {
      method: 'POST',
      body: typeof body === 'string' ? body : JSON.stringify(body),
    });
    expect(res.status).toBe(400);
  });
});

describe('health faults', () => {
  const healthCall = async (s: RunningSimulator, signal?: AbortSignal) =>
    fetch(`${s.url}/oauth/v1/health_check`, {
      method: 'POST',
      body: new URLSearchParams({ client_id: s.clientId, client_assertion: 'x' }),
      signal,
    });

  it.each([
    ['down', 503],
    ['500', 500],
    ['fail_envelope', 200],
  ] as const)('should answer %s with status %i when that fault is set', async (fault, status) => {
    sim.control.setFaults({ health: fault });
    const res = await healthCall(sim);
    expect(res.status).toBe(status);
    if (fault === 'fail_envelope') {
      expect(await res.json()).toMatchObject({ stat: 'FAIL', code: 40002 });
    }
  });

  it('should drop the connection when the reset fault is set', async () => {
    sim.control.setFaults({ health: 'reset' });
    await expect(healthCall(sim)).rejects.toThrow();
  });

  it('should never answer when the timeout fault is set', async () => {
    await fetch(`${sim.url}/__sim/faults`, { method: 'POST', body: '{"health":"timeout"}' });
    await expect(healthCall(sim, AbortSignal.timeout(300))).rejects.toThrow(/abort|timeout/i);
  });

  it('should clear the fault after one use when once is set', async () => {
    sim.control.setFaults({ health: 'down', once: true });
    expect((await healthCall(sim)).status).toBe(503);
    expect((await healthCall(sim)).status).toBe(400); // back to checking the (bad) assertion
  });
});

describe('token faults', () => {
  let auto: RunningSimulator;
  beforeAll(async () => {
    auto = await another({ auto: 'allow' });
  });
  beforeEach(() => auto.control.reset());

  async function exchangeWith(fault: TokenFault, nonce = 'nonce-0123456789abcdef') {
    const { code } = await authorizeForCode(auto, { username: 'alice', claims: { nonce } });
    auto.control.setFaults({ token: fault, once: true });
    return { code, res: await exchange(auto, code) };
  }

  it.each([
    ['400', 400, 'invalid_grant'],
    ['401', 401, 'invalid_client'],
    ['429', 429, undefined],
    ['500', 500, undefined],
  ] as const)(
    'should answer status %s and still burn the code when that fault is set',
    async (fault, status, error) => {
      const { code, res } = await exchangeWith(fault);
      expect(res.status).toBe(status);
      const text = await res.text();
      if (error) {
        expect((JSON.parse(text) as { error: string }).error).toBe(error);
      }
      const retry = await exchange(auto, code);
      expect(retry.status).toBe(400);
      expect(((await retry.json()) as { error: string }).error).toBe('invalid_grant');
    },
  );

  it('should never answer the token call when the timeout fault is set', async () => {
    const { code } = await authorizeForCode(auto);
    auto.control.setFaults({ token: 'timeout' });
    const call = fetch(`${auto.url}/oauth/v1/token`, {
      method: 'POST',
      body: new URLSearchParams({ code }),
      signal: AbortSignal.timeout(300),
    });
    await expect(call).rejects.toThrow(/abort|timeout/i);
  });

  it('should send a truncated JSON body when malformed_json is set', async () => {
    const { res } = await exchangeWith('malformed_json');
    expect(res.status).toBe(200);
    await expect(res.json()).rejects.toThrow();
  });

  it('should send a body over 5 MB when huge_body is set', async () => {
    const { res } = await exchangeWith('huge_body');
    expect(Number(res.headers.get('content-length'))).toBeGreaterThan(5 * 1024 * 1024);
  });

  it.each([
    ['missing_id_token', (b: Record<string, unknown>) => !('id_token' in b)],
    ['bad_token_type', (b: Record<string, unknown>) => b.token_type === 'bearer'],
    ['string_expires_in', (b: Record<string, unknown>) => b.expires_in === '3600'],
  ] as const)('should change the body shape when %s is set', async (fault, check) => {
    const { res } = await exchangeWith(fault);
    expect(check((await res.json()) as Record<string, unknown>)).toBe(true);
  });

  function parts(jwt: string) {
    const [h, p, sig] = jwt.split('.') as [string, string, string];
    return {
      header: JSON.parse(Buffer.from(h, 'base64url').toString()) as Record<string, unknown>,
      payload: decodePayload(jwt),
      signingInput: `${h}.${p}`,
      sig,
    };
  }

  it.each([
    ['bad_signature', 'HS512', false],
    ['wrong_alg_hs256', 'HS256', true],
    ['alg_none', 'none', false],
  ] as const)(
    'should sign the id_token differently when %s is set',
    async (fault, alg, validHs256) => {
      const { res } = await exchangeWith(fault);
      const { id_token } = (await res.json()) as { id_token: string };
      const p = parts(id_token);
      expect(p.header.alg).toBe(alg);
      const good512 = createHmac('sha512', auto.clientSecret)
        .update(p.signingInput)
        .digest('base64url');
      const good256 = createHmac('sha256', auto.clientSecret)
        .update(p.signingInput)
        .digest('base64url');
      expect(p.sig === good512).toBe(false);
      expect(p.sig === good256).toBe(validHs256);
      if (fault === 'alg_none') {
        expect(p.sig).toBe('');
      }
    },
  );

  const now = () => Math.floor(Date.now() / 1000);
  const claimChecks: [TokenFault, (c: Record<string, unknown>, s: RunningSimulator) => boolean][] =
    [
      ['wrong_iss', (c, s) => c.iss === s.url],
      [
        'wrong_aud',
        (c, s) =>
          typeof c.aud === 'string' && c.aud !== s.clientId && /^DI[A-Z0-9]{18}$/.test(c.aud),
      ],
      [
        'aud_array',
        (c, s) => Array.isArray(c.aud) && c.aud[0] === s.clientId && c.aud.length === 2,
      ],
      ['wrong_nonce', (c) => typeof c.nonce === 'string' && c.nonce !== 'nonce-0123456789abcdef'],
      ['missing_nonce', (c) => !('nonce' in c)],
      ['expired', (c) => (c.exp as number) <= now() - 120],
      ['just_inside_leeway', (c) => Math.abs((c.exp as number) - (now() - 30)) <= 2],
      ['future_iat', (c) => (c.iat as number) >= now() + 240],
      ['wrong_username', (c) => c.preferred_username === 'alice-other'],
      ['case_changed_username', (c) => c.preferred_username === 'ALICE'],
    ];

  it.each(claimChecks)(
    'should change the claims and keep a valid HS512 signature when %s is set',
    async (fault, check) => {
      const { res } = await exchangeWith(fault);
      const { id_token } = (await res.json()) as { id_token: string };
      const p = parts(id_token);
      const good = createHmac('sha512', auto.clientSecret)
        .update(p.signingInput)
        .digest('base64url');
      expect(p.sig).toBe(good);
      expect(check(p.payload, auto)).toBe(true);
    },
  );

  it('should cover every token fault when the switch list is walked', () => {
    const covered = new Set<string>([
      ...claimChecks.map(([f]) => f),
      ...['400', '401', '429', '500', 'timeout', 'malformed_json', 'huge_body'],
      ...['missing_id_token', 'bad_token_type', 'string_expires_in'],
      ...['bad_signature', 'wrong_alg_hs256', 'alg_none'],
    ]);
    expect(TOKEN_FAULTS.filter((f) => !covered.has(f))).toEqual([]);
  });

  it('should keep the claim fault until a success when the exchange fails first', async () => {
    auto.control.setFaults({ token: 'wrong_username', once: true });
    expect((await exchange(auto, 'no-such-code')).status).toBe(400);
    expect(auto.control.state().faults.token).toBe('wrong_username');
    const { code } = await authorizeForCode(auto);
    const { id_token } = (await (await exchange(auto, code)).json()) as { id_token: string };
    expect(decodePayload(id_token).preferred_username).toBe('alice-other');
    expect(auto.control.state().faults.token).toBeNull();
  });
});
