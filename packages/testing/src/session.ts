import type { MfaSession, SessionStore } from '@duo-nest/core';
import {
  DUO_OPTIONS,
  DUO_SESSION_STORE,
  DuoSessionService,
  type NormalizedDuoModuleOptions,
} from '@duo-nest/core/internal';

/** What {@link mfaSession} writes. */
export interface MfaSessionInput {
  username: string;
  /** Duo groups, as `auth_context.user.groups` would give them. @default [] */
  groups?: string[];
  /** `auth_context.factor`. @default 'duo_push' */
  factor?: string;
  /**
   * How long ago the user completed MFA (Duo's `auth_time`): a session older than a route's
   * `@RequireMfa({ maxAgeMs })` is refused with `mfa_stale`. @default 0 (just now)
   */
  mfaAgeMs?: number;
  /**
   * A fail-open session (Duo was unreachable, failmode open): `mfa` false, refused by every route
   * without `@AllowFailOpen()`. @default false
   */
  failOpen?: boolean;
  /** Duo's transaction id. @default a `test-` id */
  txid?: string;
  /**
   * Duo's `auth_context.reason`: `bypass_user` writes a session Duo let through without a second
   * factor (with factor `not_available` unless `factor` says otherwise). @default 'user_approved'
   */
  reason?: string;
  /** App data kept with the session (a JSON object). @default {} */
  data?: Record<string, unknown>;
}

/** A session written by {@link mfaSession}: the stored record and its cookie. */
export interface TestMfaSession {
  session: MfaSession;
  /** `name=value`: `request(app.getHttpServer()).get('/me').set('Cookie', [cookie])`. */
  cookie: string;
  /** Ends the session in the store (what a logout does). */
  destroy(): Promise<void>;
}

/** The part of a Nest application (or TestingModule) that `mfaSession` uses. */
export interface DuoTestModuleRef {
  get<T = unknown>(token: unknown, options?: { strict?: boolean }): T;
}

/**
 * Writes a real MFA session through the app's configured session store (memory, Redis, or your
 * own) and returns its signed cookie, for controller-level tests that need a signed-on user
 * without a trip through Duo. It forges nothing: it uses DuoModule's own session store (so the
 * record is sealed with the key derived from your `sessionSecret`) and the cookie signing of
 * DuoModule's session service, exactly as the callback does after a real sign-on. No Duo call is
 * made and no auth event is reported. With two DuoModules in one app, pass the module's ref.
 *
 * @example
 * const { cookie } = await mfaSession(app, { username: 'alice', groups: ['admins'] });
 * await request(app.getHttpServer()).get('/admin').set('Cookie', [cookie]).expect(200);
 */
export async function mfaSession(
  app: DuoTestModuleRef,
  input: MfaSessionInput,
): Promise<TestMfaSession> {
  let store: SessionStore;
  let service: DuoSessionService;
  let clientId: string;
  try {
    store = app.get<SessionStore>(DUO_SESSION_STORE, { strict: false });
    service = app.get<DuoSessionService>(DuoSessionService, { strict: false });
    clientId = app.get<NormalizedDuoModuleOptions>(DUO_OPTIONS, { strict: false }).clientId;
  } catch (err) {
    throw new Error('mfaSession: the app has no DuoModule (its session store was not found)', {
      cause: err,
    });
  }
  const mfaAgeMs = input.mfaAgeMs ?? 0;
  if (!Number.isFinite(mfaAgeMs) || mfaAgeMs < 0) {
    throw new TypeError('mfaAgeMs must be a non-negative number');
  }
  const failOpen = input.failOpen ?? false;
  const session = await store.create({
    username: input.username,
    mfa: !failOpen,
    failOpen,
    txid: failOpen ? undefined : (input.txid ?? `test-${crypto.randomUUID()}`),
    factor: failOpen
      ? undefined
      : (input.factor ?? (input.reason === 'bypass_user' ? 'not_available' : 'duo_push')),
    authTime: failOpen ? undefined : Math.floor((Date.now() - mfaAgeMs) / 1000),
    groups: input.groups ?? [],
    application: clientId,
    duoResult: failOpen ? undefined : 'success',
    duoReason: failOpen ? undefined : (input.reason ?? 'user_approved'),
    data: input.data ?? {},
  });
  const { cookies } = service;
  return {
    session,
    cookie: `${cookies.session}=${cookies.sign(session.id)}`,
    destroy: async () => {
      await store.destroy(session.id);
    },
  };
}
