// A pending-login record: its bounds, the checks of a login given to `put` or read back, and what
// its MAC covers. Shared by the memory and the Redis pending-login stores.
import {
  reportInvalid,
  type InvalidStoreRecordHandler,
  type SealPart,
  type StoreRecordSealer,
} from './record-seal.js';
import { DuoStoreError } from './store.errors.js';
import {
  isBase64Url,
  isCleanString,
  isEpoch,
  isPlainObject,
  utf8Length,
} from './store-validation.js';
import type { PendingLogin, TakeResult } from './pending-login-store.interface.js';
import { APPLICATION_NAME_RE } from './session-record.js';

/** Largest serialized pending login accepted (and read back). */
export const PENDING_LOGIN_MAX_RECORD_BYTES = 64 * 1024;
/** Default and largest `limit` of one `sweepExpired` call. */
export const PENDING_LOGIN_SWEEP_LIMIT = { default: 1_000, max: 10_000 } as const;

export const PENDING_LOGIN_BOUNDS = {
  state: { min: 22, max: 1024 },
  nonce: { min: 16, max: 1024 },
  username: { max: 255 },
  returnTo: { max: 2048 },
  bindingHash: 43,
  clientIp: { max: 64 },
  userAgent: { max: 1024 },
  correlationId: { max: 128 },
} as const;

/** True when `state` has the shape of a state this store could hold. */
export function isPendingLoginState(state: unknown): state is string {
  return isBase64Url(state, PENDING_LOGIN_BOUNDS.state.min, PENDING_LOGIN_BOUNDS.state.max);
}

function isSameOriginPath(value: unknown): value is string {
  return (
    isCleanString(value, 1, PENDING_LOGIN_BOUNDS.returnTo.max) &&
    value.startsWith('/') &&
    !value.startsWith('//') &&
    !value.startsWith('/\\')
  );
}

function optionalString(value: unknown, max: number, clean: boolean): boolean {
  if (value === undefined) {
    return true;
  }
  return clean ? isCleanString(value, 0, max) : typeof value === 'string' && value.length <= max;
}

/**
 * Checks a pending login (one handed to `put`, or one read back from Redis) and returns a copy
 * holding only the known fields, or `undefined` when anything is off.
 */
export function parsePendingLogin(value: unknown): PendingLogin | undefined {
  if (!isPlainObject(value)) {
    return undefined;
  }
  const v = value;
  const b = PENDING_LOGIN_BOUNDS;
  if (
    !isPendingLoginState(v.state) ||
    !isCleanString(v.nonce, b.nonce.min, b.nonce.max) ||
    !isCleanString(v.username, 1, b.username.max) ||
    !isSameOriginPath(v.returnTo) ||
    !isBase64Url(v.bindingHash, b.bindingHash, b.bindingHash) ||
    !isEpoch(v.createdAt) ||
    !isEpoch(v.expiresAt) ||
    v.expiresAt <= v.createdAt ||
    !optionalString(v.clientIp, b.clientIp.max, true) ||
    !optionalString(v.userAgent, b.userAgent.max, false) ||
    !optionalString(v.correlationId, b.correlationId.max, true) ||
    (v.application !== undefined &&
      (typeof v.application !== 'string' || !APPLICATION_NAME_RE.test(v.application)))
  ) {
    return undefined;
  }
  const login: PendingLogin = {
    state: v.state,
    nonce: v.nonce,
    username: v.username,
    returnTo: v.returnTo,
    bindingHash: v.bindingHash,
    createdAt: v.createdAt,
    expiresAt: v.expiresAt,
  };
  if (v.clientIp !== undefined) {
    login.clientIp = v.clientIp as string;
  }
  if (v.userAgent !== undefined) {
    login.userAgent = v.userAgent as string;
  }
  if (v.correlationId !== undefined) {
    login.correlationId = v.correlationId as string;
  }
  if (v.application !== undefined) {
    login.application = v.application;
  }
  return login;
}

/** Validates and serializes a login for storage; throws DuoStoreError when it is unfit. */
export function serializeForPut(login: PendingLogin): { login: PendingLogin; json: string } {
  // A browser's User-Agent is not ours to refuse a sign-on over: keep its first 1024 characters.
  const max = PENDING_LOGIN_BOUNDS.userAgent.max;
  const ua = (login as Partial<PendingLogin> | null)?.userAgent;
  const parsed = parsePendingLogin(
    typeof ua === 'string' && ua.length > max ? { ...login, userAgent: ua.slice(0, max) } : login,
  );
  if (!parsed) {
    throw new DuoStoreError(
      'invalid_record',
      'The pending login is malformed: check state, nonce, username, returnTo (a same-origin path), ' +
        'bindingHash (base64url SHA-256), createdAt < expiresAt and the optional fields',
    );
  }
  const json = JSON.stringify(parsed);
  if (utf8Length(json) > PENDING_LOGIN_MAX_RECORD_BYTES) {
    throw new DuoStoreError(
      'record_too_large',
      `The pending login exceeds ${PENDING_LOGIN_MAX_RECORD_BYTES} bytes once serialized`,
    );
  }
  return { login: parsed, json };
}

const LOGIN_KEYS: ReadonlySet<string> = new Set([
  'state',
  'nonce',
  'username',
  'returnTo',
  'bindingHash',
  'createdAt',
  'expiresAt',
  'clientIp',
  'userAgent',
  'correlationId',
  'application',
]);

/** Every field of a pending login, in a fixed order, after its kind and key name: what its MAC covers. */
export function sealParts(keyName: string, l: PendingLogin): SealPart[] {
  return [
    'pending-login/v1',
    keyName,
    l.state,
    l.nonce,
    l.username,
    l.returnTo,
    l.bindingHash,
    l.createdAt,
    l.expiresAt,
    l.clientIp ?? null,
    l.userAgent ?? null,
    l.correlationId ?? null,
    // Only when set: a default sign-on keeps the seal it had before named applications existed.
    ...(l.application !== undefined ? [l.application] : []),
  ];
}

/**
 * A record read back: a pending login whose every field and key name its MAC `m` covers, filed
 * under `state`. Anything else is reported (once: the caller has removed it) and counts as absent.
 */
export async function openSealed(
  sealer: StoreRecordSealer,
  onInvalid: InvalidStoreRecordHandler | undefined,
  keyName: string,
  state: string,
  record: unknown,
): Promise<PendingLogin | undefined> {
  const login = isPlainObject(record) ? parseStrict(record) : undefined;
  if (!login || login.state !== state) {
    await reportInvalid(onInvalid, { store: 'pending-login', reason: 'shape' });
    return undefined;
  }
  // A pending login is taken once: its check is not worth remembering.
  const tag = (record as Record<string, unknown>).m;
  if (!sealer.verify(sealParts(keyName, login), tag, { remember: false })) {
    await reportInvalid(onInvalid, { store: 'pending-login', reason: 'mac' });
    return undefined;
  }
  return login;
}

/** parsePendingLogin that also refuses unknown fields (besides the MAC `m`). */
function parseStrict(record: Record<string, unknown>): PendingLogin | undefined {
  for (const key of Object.keys(record)) {
    if (key !== 'm' && !LOGIN_KEYS.has(key)) {
      return undefined;
    }
  }
  return parsePendingLogin(record);
}

export function sweepLimit(limit: number | undefined): number {
  const l = limit ?? PENDING_LOGIN_SWEEP_LIMIT.default;
  if (!Number.isSafeInteger(l) || l <= 0) {
    throw new RangeError('limit must be a positive integer');
  }
  return Math.min(l, PENDING_LOGIN_SWEEP_LIMIT.max);
}

export function duplicateError(): DuoStoreError {
  return new DuoStoreError('duplicate', 'A pending login with this state already exists');
}

/** The key name a memory record's MAC covers. */
export function memoryKey(state: string): string {
  return `memory:pending:l:${state}`;
}

export function takeResult(login: PendingLogin, now: number): TakeResult {
  return now >= login.expiresAt ? { status: 'expired', login } : { status: 'ok', login };
}
