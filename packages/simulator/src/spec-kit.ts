// Client-side helpers for the simulator's own specs: hand-made JWTs and requests, written
// independently of src/duo so the two implementations check each other. Not used at runtime.
import { randomBytes } from 'node:crypto';
import { CompactSign } from 'jose';
import type { RunningSimulator } from './types.js';

type Claims = Record<string, unknown>;
const encoder = new TextEncoder();

export const ASSERTION_TYPE = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';
export const REDIRECT_URI = 'https://app.example.test/auth/duo/callback';

export interface SignOptions {
  alg?: 'HS512' | 'HS256';
  secret?: string;
  typ?: boolean;
}

/** Signs claims exactly as given (so `exp` can be a float or a string, as some SDKs send). */
export function sign(claims: Claims, secret: string, opts: SignOptions = {}): Promise<string> {
  const header =
    opts.typ === false ? { alg: opts.alg ?? 'HS512' } : { alg: opts.alg ?? 'HS512', typ: 'JWT' };
  return new CompactSign(encoder.encode(JSON.stringify(claims)))
    .setProtectedHeader(header)
    .sign(encoder.encode(opts.secret ?? secret));
}

export function nowSec(): number {
  return Math.floor(Date.now() / 1000);
}

export function randomHex(bytes = 18): string {
  return randomBytes(bytes).toString('hex');
}

/**
 * The simulator as one of its applications sees it: the helpers below then sign with that
 * application's client id and secret.
 */
export function asApp(
  sim: RunningSimulator,
  app: { clientId: string; clientSecret: string },
): RunningSimulator {
  return { ...sim, clientId: app.clientId, clientSecret: app.clientSecret };
}

/**
 * A client assertion for `<sim.publicOrigin><path>`; overrides replace (or with undefined, drop)
 * claims.
 */
export function assertion(
  sim: RunningSimulator,
  path: string,
  overrides: Claims = {},
  opts: SignOptions = {},
): Promise<string> {
  const claims: Claims = {
    iss: sim.clientId,
    sub: sim.clientId,
    aud: `${sim.publicOrigin}${path}`,
    exp: nowSec() + 300,
    jti: randomHex(),
    iat: nowSec(),
    ...overrides,
  };
  return sign(dropUndefined(claims), sim.clientSecret, opts);
}

function dropUndefined(claims: Claims): Claims {
  return Object.fromEntries(Object.entries(claims).filter(([, v]) => v !== undefined));
}

export interface AuthorizeInput {
  username?: string;
  state?: string;
  claims?: Claims;
  query?: Record<string, string | undefined>;
  signOptions?: SignOptions;
}

/** The authorize URL as the Node SDK builds it (plus any overrides). */
export async function authorizeUrl(sim: RunningSimulator, input: AuthorizeInput = {}) {
  const state = input.state ?? randomHex();
  const claims = dropUndefined({
    response_type: 'code',
    scope: 'openid',
    exp: nowSec() + 300,
    client_id: sim.clientId,
    redirect_uri: REDIRECT_URI,
    state,
    duo_uname: input.username ?? 'alice',
    iss: sim.clientId,
    aud: sim.publicOrigin,
    use_duo_code_attribute: true,
    ...input.claims,
  });
  const request = await sign(claims, sim.clientSecret, input.signOptions);
  const query = dropUndefined({
    response_type: 'code',
    client_id: sim.clientId,
    request,
    redirect_uri: claims.redirect_uri,
    scope: 'openid',
    ...input.query,
  }) as Record<string, string>;
  return { url: `${sim.url}/oauth/v1/authorize?${new URLSearchParams(query).toString()}`, state };
}

/** GET without following redirects. */
export function get(url: string): Promise<Response> {
  return fetch(url, { redirect: 'manual' });
}

/** POST as urlencoded (default), multipart, or with everything in the query string. */
export function post(
  url: string,
  params: Record<string, string | undefined>,
  as: 'urlencoded' | 'multipart' | 'query' = 'urlencoded',
): Promise<Response> {
  const clean = dropUndefined(params) as Record<string, string>;
  if (as === 'query') {
    return fetch(`${url}?${new URLSearchParams(clean).toString()}`, {
      method: 'POST',
      redirect: 'manual',
    });
  }
  if (as === 'multipart') {
    const form = new FormData();
    for (const [k, v] of Object.entries(clean)) {
      form.append(k, v);
    }
    return fetch(url, { method: 'POST', body: form, redirect: 'manual' });
  }
  return fetch(url, { method: 'POST', body: new URLSearchParams(clean), redirect: 'manual' });
}

/** Runs authorize in auto/bypass mode and returns the code from the 302. */
export async function authorizeForCode(sim: RunningSimulator, input: AuthorizeInput = {}) {
  const { url, state } = await authorizeUrl(sim, input);
  const res = await get(url);
  const location = res.headers.get('location');
  if (res.status !== 302 || !location) {
    throw new Error(`expected a 302 from authorize, got ${res.status}`);
  }
  const back = new URL(location);
  const code = back.searchParams.get('duo_code') ?? back.searchParams.get('code');
  if (!code) {
    throw new Error('no code in the redirect');
  }
  return { code, state, location: back };
}

/** A token call with a valid assertion; overrides replace form fields. */
export async function exchange(
  sim: RunningSimulator,
  code: string,
  fields: Record<string, string | undefined> = {},
  as: 'urlencoded' | 'multipart' | 'query' = 'urlencoded',
): Promise<Response> {
  return post(
    `${sim.url}/oauth/v1/token`,
    {
      grant_type: 'authorization_code',
      code,
      redirect_uri: REDIRECT_URI,
      client_id: sim.clientId,
      client_assertion_type: ASSERTION_TYPE,
      client_assertion: await assertion(sim, '/oauth/v1/token'),
      ...fields,
    },
    as,
  );
}

/** The claims of a JWT, unverified (specs check the signature separately). */
export function decodePayload(jwt: string): Claims {
  return JSON.parse(Buffer.from(jwt.split('.')[1] ?? '', 'base64url').toString('utf8')) as Claims;
}
