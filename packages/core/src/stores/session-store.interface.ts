import type { StoreSealOptions } from './record-seal.js';

/**
 * A signed-on user's server-side session. The raw `id` is the cookie value and is never stored:
 * stores key sessions (and per-user indexes) by `sha256(id)`.
 */
export interface MfaSession {
  /** The raw session id (cookie value): 256 bits from the CSPRNG, 43 base64url characters. */
  id: string;
  username: string;
  /** True only when Duo MFA really completed; false for a fail-open session. */
  mfa: boolean;
  /** True when the session was opened because Duo was unreachable and failmode is open. */
  failOpen: boolean;
  txid?: string;
  /**
   * Duo's `auth_context.factor` as Duo sent it (`duo_push`, `not_available`, or free text such as
   * `WebAuthn Chrome Touch ID`): see DUO_FACTORS and duoFactorName. Absent for a fail-open session.
   */
  factor?: string;
  /** Duo's `auth_time`, in seconds. */
  authTime?: number;
  groups: string[];
  /**
   * The Duo application the MFA satisfied: DuoModule's client id (for a fail-open session, the one
   * it would have used). A string so that named applications can record their name later.
   */
  application: string;
  /**
   * The DuoModule applications (by name: `default`, `admin`, a tenant) whose Duo MFA this session
   * satisfied, each with Duo's `auth_time` in seconds. A step-up into another application adds its
   * name. Absent on a fail-open session and on records written before named applications (an MFA
   * session without it counts as satisfied by `default` at `authTime`).
   */
  applications?: Record<string, number>;
  /** Duo's `auth_context.result` (`success` for every session Duo redirected back). MFA only. */
  duoResult?: string;
  /**
   * Duo's `auth_context.reason` (`user_approved`, `valid_passcode`, `bypass_user`, ...). MFA only.
   * With `factor`, it tells a bypass (see isDuoBypass).
   */
  duoReason?: string;
  /** The client's address when the session was opened (clientIpOf: the app's trusted proxies applied). */
  clientIp?: string;
  /** The User-Agent when the session was opened: control and format characters removed, at most 256 characters. */
  userAgent?: string;
  /** ms since the epoch. */
  createdAt: number;
  /** ms since the epoch; moves at most once per `touchIntervalMs`. */
  lastSeenAt: number;
  /** lastSeenAt + idleTimeoutMs. */
  idleExpiresAt: number;
  /** createdAt + absoluteTimeoutMs. */
  absoluteExpiresAt: number;
  /** Small app data (a CSRF token, the last MFA result summary): a JSON object of at most 16 KiB. */
  data: Record<string, unknown>;
}

/** What `create` takes: the store adds the id and the timestamps. */
export type NewMfaSession = Omit<
  MfaSession,
  'id' | 'createdAt' | 'lastSeenAt' | 'idleExpiresAt' | 'absoluteExpiresAt'
>;

/**
 * What session control shows of a live session (`listForUser`): every recorded fact but its id and
 * its app data. The `handle` names it for `destroyByHandle`; it is the key the store files it under
 * (base64url SHA-256 of the id), so it cannot be turned back into the id or used as a cookie.
 */
export type SessionSummary = Omit<MfaSession, 'id' | 'data'> & {
  /** base64url SHA-256 of the session id (43 characters). */
  handle: string;
};

export type SessionExpiryReason = 'idle' | 'absolute';

export type SessionLookup =
  | { status: 'active'; session: MfaSession }
  /** Deleted now, reported once (absolute wins when both apply). */
  | { status: 'expired'; session: MfaSession; reason: SessionExpiryReason }
  /** Unknown, destroyed, evicted, already reported expired, or unreadable. */
  | { status: 'missing' };

export interface SessionStore {
  /** Generates the id and stores the session. Throws DuoStoreError on a malformed input. */
  create(input: NewMfaSession, now?: number): Promise<MfaSession>;
  /**
   * Looks a session up; an expired one is deleted and reported once. An active one has its idle
   * expiry slid forward ("touch"), at most once per `touchIntervalMs`.
   */
  get(id: string, now?: number): Promise<SessionLookup>;
  /** Replaces the app data of a live session; false when it is missing or expired. */
  update(id: string, patch: Partial<Pick<MfaSession, 'data'>>, now?: number): Promise<boolean>;
  /** Logout: true when a session was deleted. Afterwards `get` answers missing on every instance. */
  destroy(id: string): Promise<boolean>;
  /** Deletes every session of `username` (admin revocation, ASVS 7.4.2); answers how many. */
  destroyAllForUser(username: string): Promise<number>;
  /**
   * The live sessions of `username`, newest first (session control). Expired sessions are left
   * out (and left for `get` to report); a record failing its MAC is dropped and reported. Never
   * touches a session: listing is not activity.
   */
  listForUser(username: string, now?: number): Promise<SessionSummary[]>;
  /**
   * Deletes the session whose handle (see SessionSummary) is `handle`, only when it belongs to
   * `username`; true when one was deleted. A malformed handle answers false.
   */
  destroyByHandle(username: string, handle: string): Promise<boolean>;
  /** Sessions held (expired ones not yet reported or dropped included). */
  count(): Promise<number>;
  close?(): Promise<void>;
}

export interface SessionTimeoutOptions extends StoreSealOptions {
  /** A session unused this long expires. @default 900_000 (15 min) */
  idleTimeoutMs?: number;
  /** A session expires this long after creation, used or not. @default 28_800_000 (8 h) */
  absoluteTimeoutMs?: number;
  /**
   * The idle expiry is slid at most once per this interval, to keep writes low; a session may thus
   * expire up to this much before `idleTimeoutMs` of real idleness. Must be below idleTimeoutMs.
   * @default 60_000, or half of idleTimeoutMs when that is shorter
   */
  touchIntervalMs?: number;
  /** Clock used when `now` is not passed. @default Date.now */
  clock?: () => number;
}
