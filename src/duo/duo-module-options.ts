import type { Request } from 'express';
import { validateDuoClientOptions } from './duo-client-options.js';
import { DuoConfigError, type DuoConfigIssue } from './duo.errors.js';
import type { DuoModuleOptions } from './duo-module-options.interface.js';

export type NormalizedDuoModuleOptions = Required<
  Omit<
    DuoModuleOptions,
    'redis' | 'stores' | 'onEvent' | 'fetch' | 'usernameResolver' | 'onDuoCall'
  >
> &
  Pick<DuoModuleOptions, 'redis' | 'stores' | 'onEvent' | 'fetch' | 'onDuoCall'> & {
    usernameResolver: NonNullable<DuoModuleOptions['usernameResolver']>;
    /** The callback route's path, from redirectUri. */
    callbackPath: string;
    /** The origin of every Duo URL (from apiHost). */
    apiOrigin: string;
  };

const SAME_ORIGIN_PATH = /^\/(?![/\\])[^\s\\]*$/;

function positive(
  issues: DuoConfigIssue[],
  field: string,
  value: number | undefined,
  fallback: number,
  min: number,
  max: number,
) {
  if (value === undefined) {
    return fallback;
  }
  if (!Number.isInteger(value) || value < min || value > max) {
    issues.push({ field, message: `must be an integer from ${min} to ${max}` });
  }
  return value;
}

/** Merges defaults and checks every DuoModule option once, at boot: one DuoConfigError lists all problems. */
export function normalizeDuoModuleOptions(options: DuoModuleOptions): NormalizedDuoModuleOptions {
  const { issues, normalized } = validateDuoClientOptions(options);
  const displayName = options.displayName ?? 'Sign on with Duo';
  if (typeof displayName !== 'string' || displayName.length === 0 || displayName.length > 64) {
    issues.push({ field: 'displayName', message: 'must be 1 to 64 characters' });
  }
  const css = options.css ?? '';
  if (typeof css !== 'string' || css.includes('<') || css.length > 8192) {
    issues.push({ field: 'css', message: 'must be CSS of at most 8192 characters without "<"' });
  }
  if (
    options.failmode !== undefined &&
    options.failmode !== 'closed' &&
    options.failmode !== 'open'
  ) {
    issues.push({ field: 'failmode', message: "must be 'closed' or 'open'" });
  }
  if (typeof options.sessionSecret !== 'string' || options.sessionSecret.length < 32) {
    issues.push({ field: 'sessionSecret', message: 'must be at least 32 characters' });
  }
  for (const field of ['defaultReturnTo', 'signOnPath'] as const) {
    const value = options[field];
    if (value !== undefined && (typeof value !== 'string' || !SAME_ORIGIN_PATH.test(value))) {
      issues.push({ field, message: 'must be a same-origin path such as /result' });
    }
  }
  const redisKeyPrefix = options.redisKeyPrefix ?? 'duo:';
  if (typeof redisKeyPrefix !== 'string' || !/^[\x21-\x7e]{0,64}$/.test(redisKeyPrefix)) {
    issues.push({
      field: 'redisKeyPrefix',
      message: 'must be at most 64 printable characters without spaces',
    });
  }
  const secureCookies = options.secureCookies ?? !normalized.allowInsecureHttp;
  const result: NormalizedDuoModuleOptions = {
    ...options,
    ...normalized,
    skipButtonPress: options.skipButtonPress ?? true,
    displayName,
    css,
    showPoweredBy: options.showPoweredBy ?? false,
    failmode: options.failmode ?? 'closed',
    healthCacheMs: positive(issues, 'healthCacheMs', options.healthCacheMs, 10_000, 0, 600_000),
    pendingTtlMs: positive(
      issues,
      'pendingTtlMs',
      options.pendingTtlMs,
      600_000,
      30_000,
      3_600_000,
    ),
    sessionIdleTimeoutMs: positive(
      issues,
      'sessionIdleTimeoutMs',
      options.sessionIdleTimeoutMs,
      900_000,
      60_000,
      86_400_000,
    ),
    sessionAbsoluteTimeoutMs: positive(
      issues,
      'sessionAbsoluteTimeoutMs',
      options.sessionAbsoluteTimeoutMs,
      28_800_000,
      60_000,
      7 * 86_400_000,
    ),
    sweepIntervalMs: positive(
      issues,
      'sweepIntervalMs',
      options.sweepIntervalMs,
      30_000,
      100,
      3_600_000,
    ),
    breakerFailureThreshold: positive(
      issues,
      'breakerFailureThreshold',
      options.breakerFailureThreshold,
      5,
      1,
      1000,
    ),
    breakerCooldownMs: positive(
      issues,
      'breakerCooldownMs',
      options.breakerCooldownMs,
      10_000,
      100,
      600_000,
    ),
    maxConcurrentDuoCalls: positive(
      issues,
      'maxConcurrentDuoCalls',
      options.maxConcurrentDuoCalls,
      32,
      1,
      10_000,
    ),
    usernameResolver: options.usernameResolver ?? defaultUsernameResolver,
    defaultReturnTo: options.defaultReturnTo ?? '/',
    signOnPath: options.signOnPath ?? '/',
    secureCookies,
    redisKeyPrefix,
    callbackPath: normalized.redirectUri ? safePath(normalized.redirectUri) : '/',
  };
  if (issues.length > 0) {
    throw new DuoConfigError(issues);
  }
  return result;
}

/** The library's default first-factor source: the `username` form field. */
export const defaultUsernameResolver = (req: Request): unknown =>
  (req.body as Record<string, unknown> | undefined)?.username;

function safePath(uri: string): string {
  try {
    return new URL(uri).pathname;
  } catch {
    return '/';
  }
}

/**
 * A same-origin return path, or undefined. Decodes once and re-checks with the URL parser, so
 * `//evil`, `/\evil`, `https://evil`, encoded variants and control characters are refused.
 */
export function sanitizeReturnTo(value: unknown): string | undefined {
  if (typeof value !== 'string' || value.length === 0 || value.length > 512) {
    return undefined;
  }
  let decoded: string;
  try {
    decoded = decodeURIComponent(value);
  } catch {
    return undefined;
  }
  if (!SAME_ORIGIN_PATH.test(value) || !SAME_ORIGIN_PATH.test(decoded) || /\p{Cc}/u.test(decoded)) {
    return undefined;
  }
  const base = 'https://same-origin.invalid';
  const url = new URL(value, base);
  return url.origin === base ? url.pathname + url.search : undefined;
}
