/**
 * One sign-on in progress, between the redirect to Duo and the callback. Keyed by its `state`.
 *
 * The raw `state` is the key (in memory and in Redis): it is one-time, lives for minutes, and is
 * worthless without the browser-binding cookie (only its hash is stored) and Duo's code.
 */
export interface PendingLogin {
  /** The OIDC `state`: base64url, 22..1024 characters (we generate 43); the store key. */
  state: string;
  /** The OIDC `nonce` sent to Duo (16..1024 characters). */
  nonce: string;
  /** The user who started the sign-on (1..255 characters, no control characters). */
  username: string;
  /** Same-origin path to return to after MFA: starts with `/`, never `//` or `/\`. */
  returnTo: string;
  /** SHA-256 (base64url, 43 characters) of the browser-binding cookie value. */
  bindingHash: string;
  /** Creation time, ms since the epoch. */
  createdAt: number;
  /** End of the transaction, ms since the epoch (after createdAt). */
  expiresAt: number;
  /** At most 64 characters. */
  clientIp?: string;
  /** At most 1024 characters (`put` keeps the first 1024 of a longer one). */
  userAgent?: string;
  /** At most 128 characters, no control characters. */
  correlationId?: string;
  /**
   * The DuoModule application (by name) this sign-on was started for: the callback exchanges the
   * code with that application's credentials. Absent: `default`.
   */
  application?: string;
}

export type TakeResult =
  | { status: 'ok'; login: PendingLogin }
  /** Existed but `now >= expiresAt`: consumed now, reported once. */
  | { status: 'expired'; login: PendingLogin }
  /** Unknown, already taken, already swept, or its stored record was unreadable. */
  | { status: 'missing' };

export interface PendingLoginStore {
  /**
   * Stores a new pending login. Throws `DuoStoreError` (`invalid_record`, `record_too_large`,
   * `duplicate`), or `PendingLoginStoreFullError` (memory) when the store is full after purging the
   * expired logins.
   */
  put(login: PendingLogin, now?: number): Promise<void>;
  /**
   * Atomic take-once: of any number of concurrent takes of one state (from any number of processes
   * with Redis) exactly one gets `ok` or `expired`; the others, and every later one, get `missing`.
   * A malformed `state` answers `missing` without touching the store.
   */
  take(state: string, now?: number): Promise<TakeResult>;
  /**
   * Removes and returns up to `limit` (default 1000) logins with `expiresAt <= now` that were never
   * taken, oldest expiry first. Each is returned exactly once across all instances and never also
   * by `take` (for the `abandoned` audit).
   */
  sweepExpired(now?: number, limit?: number): Promise<PendingLogin[]>;
  /** Pending logins held, expired ones not yet swept included. */
  count(): Promise<number>;
  close?(): Promise<void>;
}
