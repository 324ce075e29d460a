import {
  createHmac,
  createSecretKey,
  hkdfSync,
  randomBytes,
  timingSafeEqual,
  type KeyObject,
} from 'node:crypto';
import { VerifiedMemo } from '../verified-memo.js';

/**
 * HKDF-SHA256 `info` of the store-record MAC key: this key seals store records and nothing else
 * (the cookie HMAC uses its own key), so a MAC from one use can never pass as the other.
 */
export const STORE_RECORD_KEY_INFO = 'duo-nest/store-record/v1';

const MAC_BYTES = 32;
/** Records whose last check is remembered (about 0.5 KB each): the sessions in active use. */
const VERIFIED_MEMO_ENTRIES = 4096;
const MAC_RE = /^[A-Za-z0-9_-]{43}$/;

/** Which key verified a record: the current one, or the previous one (rotation). */
export type SealVerdict = 'current' | 'previous';

/** A value of a record as the MAC covers it: fields are listed in a fixed order, absent ones as null. */
export type SealPart = string | number | boolean | null;

/**
 * Seals and checks the records the built-in stores keep (pending logins, sessions): an HMAC-SHA256
 * over the record's key name and every field, in a fixed order, keyed by HKDF-SHA256 of the
 * session secret with its own `info`. The previous secret (rotation) verifies, never seals.
 */
export class StoreRecordSealer {
  readonly #current: KeyObject;
  readonly #previous: KeyObject | undefined;
  /** Records read back unchanged since their last check skip the HMAC (see VerifiedMemo). */
  readonly #memo = new VerifiedMemo<SealVerdict>(VERIFIED_MEMO_ENTRIES);

  /**
   * @param secret the current SESSION_SECRET (>= 32 characters)
   * @param previousSecret the secret before the last rotation: records it sealed are still accepted
   *   until they are written again (then sealed with `secret`)
   */
  constructor(secret: string, previousSecret?: string) {
    this.#current = createSecretKey(deriveStoreRecordKey(secret));
    this.#previous =
      previousSecret === undefined || previousSecret === secret
        ? undefined
        : createSecretKey(deriveStoreRecordKey(previousSecret));
  }

  /** The MAC (base64url, 43 characters) of a record: `[kind, keyName, ...fields]`. */
  seal(parts: readonly SealPart[]): string {
    return mac(this.#current, JSON.stringify(parts)).toString('base64url');
  }

  /**
   * Checks a MAC read back from a store in constant time: which key made it, or undefined when
   * neither did (or `tag` is not a MAC at all). A passed check is remembered unless `remember` is
   * false (records read once, such as pending logins, would only push out the sessions).
   */
  verify(
    parts: readonly SealPart[],
    tag: unknown,
    { remember = true }: { remember?: boolean } = {},
  ): SealVerdict | undefined {
    if (typeof tag !== 'string' || !MAC_RE.test(tag)) {
      return undefined;
    }
    const input = JSON.stringify(parts);
    const known = this.#memo.get(tag, input);
    if (known !== undefined) {
      return known;
    }
    const given = Buffer.from(tag, 'base64url');
    if (given.length !== MAC_BYTES) {
      return undefined;
    }
    let verdict: SealVerdict | undefined;
    if (timingSafeEqual(mac(this.#current, input), given)) {
      verdict = 'current';
    } else if (this.#previous && timingSafeEqual(mac(this.#previous, input), given)) {
      verdict = 'previous';
    }
    if (verdict !== undefined && remember) {
      this.#memo.remember(tag, input, verdict);
    }
    return verdict;
  }
}

/** HKDF-SHA256(secret, salt = '', info = STORE_RECORD_KEY_INFO), 32 bytes. */
export function deriveStoreRecordKey(secret: string): Buffer {
  if (typeof secret !== 'string' || secret.length < 32) {
    throw new RangeError('The store-record secret must be at least 32 characters');
  }
  return Buffer.from(
    hkdfSync('sha256', Buffer.from(secret, 'utf8'), Buffer.alloc(0), STORE_RECORD_KEY_INFO, 32),
  );
}

// The input is the JSON of the parts array: JSON of an array of scalars is one fixed, unambiguous
// serialisation: no field can bleed into the next one, and each value's type shows (the number 1
// differs from the string "1").
function mac(key: KeyObject, input: string): Buffer {
  return createHmac('sha256', key).update(input, 'utf8').digest();
}

/** What a store reports when a record it read back fails its MAC or shape check. */
export interface InvalidStoreRecord {
  /** Which store: pending logins or sessions. */
  store: 'pending-login' | 'session';
  /** `mac`: the MAC does not match (edited, copied under another key, or another secret); `shape`: unreadable. */
  reason: 'mac' | 'shape';
}

/**
 * Called once per invalid record (the store has already removed it, so no later read reports it
 * again), and awaited before the store answers. A throw or rejection is ignored.
 */
export type InvalidStoreRecordHandler = (record: InvalidStoreRecord) => void | Promise<void>;

/** Calls the handler, swallowing a failure: a reporting failure must not turn a refusal into a 500. */
export async function reportInvalid(
  handler: InvalidStoreRecordHandler | undefined,
  record: InvalidStoreRecord,
): Promise<void> {
  try {
    await handler?.(record);
  } catch {
    // The record is already treated as absent; nothing more to do.
  }
}

/** Options every built-in store takes for its record MAC. */
export interface StoreSealOptions {
  /**
   * Seals every record written and checks every record read back. Required by the Redis stores
   * (every instance must share it: build it from the shared session secret); the memory stores
   * default to a random key of their own (one process).
   */
  sealer?: StoreRecordSealer;
  /** Told about each record that failed its check (DuoModule audits it as store_record_invalid). */
  onInvalidRecord?: InvalidStoreRecordHandler;
}

/** The sealer a Redis store was given, or a clear error: a shared store needs a shared key. */
export function requireSealer(options: StoreSealOptions, store: string): StoreRecordSealer {
  if (!(options.sealer instanceof StoreRecordSealer)) {
    throw new TypeError(
      `${store} needs options.sealer (new StoreRecordSealer(sessionSecret)): records in Redis are sealed`,
    );
  }
  return options.sealer;
}

/** The memory stores' default: a random key that lives as long as the process. */
export function processLocalSealer(options: StoreSealOptions): StoreRecordSealer {
  return options.sealer ?? new StoreRecordSealer(randomBytes(32).toString('base64url'));
}

/**
 * The raw records of a memory store, for tests that play an attacker who edits the store (internal:
 * not exported from the package's public face).
 */
export const MEMORY_RECORDS = Symbol('duo-nest.memoryRecords');
