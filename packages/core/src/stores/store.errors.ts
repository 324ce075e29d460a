/**
 * Stable codes of the failures the pending-login and session stores report. Messages never carry a
 * state, a session id or any other secret.
 */
export type DuoStoreErrorCode =
  /** A bounded in-memory store is full (after purging what had expired). */
  | 'store_full'
  /** A record with the same key already exists (a state or session id collision). */
  | 'duplicate'
  /** The record handed to the store is malformed (a programming error in the caller). */
  | 'invalid_record'
  /** The record, or its app data, is larger than the store accepts. */
  | 'record_too_large';

/** Base of every store failure. Redis connection errors are passed through unchanged (ioredis'). */
export class DuoStoreError extends Error {
  override name = this.constructor.name;

  constructor(
    readonly code: DuoStoreErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** Thrown by `MemoryPendingLoginStore.put` when `maxEntries` live pending logins are held. */
export class PendingLoginStoreFullError extends DuoStoreError {
  constructor(readonly maxEntries: number) {
    super(
      'store_full',
      `The pending-login store holds its maximum of ${maxEntries} sign-ons in progress; ` +
        'retry later, raise maxEntries, or use the Redis store',
    );
  }
}
