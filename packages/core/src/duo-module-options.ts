import type { Request } from 'express';
import { validateDuoClientOptions, type DuoClientOptions } from './duo-client-options.js';
import {
  normalizeApplications,
  withDefaultApplication,
  type NormalizedDuoApplications,
} from './duo-applications.js';
import { DuoConfigError, type DuoConfigIssue } from './duo.errors.js';
import { CALLBACK_ROUTE_PATH_MESSAGE, callbackRoutePathOk } from './duo-callback-path.js';
import { DUO_DEFAULT_LOCALES, DUO_PAGE_MESSAGES } from './duo-i18n.js';
import { checkPolicyFactors, DUO_FACTORS, type DuoFactor } from './duo-mfa-policy.js';
import type {
  DuoCsrfOptions,
  DuoFrontEndOptions,
  DuoLimitsOptions,
  DuoModuleOptions,
} from './duo-module-options.interface.js';
import { connectionKeyPrefix, hashTagOf } from './stores/redis-script.js';
import { effectivePrefix } from './stores/store-validation.js';

export type NormalizedDuoModuleOptions = Required<
  Omit<
    DuoModuleOptions,
    | 'redis'
    | 'stores'
    | 'onEvent'
    | 'fetch'
    | 'usernameResolver'
    | 'onDuoCall'
    | 'sessionSecretPrevious'
    | 'limits'
    | 'csrf'
    | 'displayName'
    | 'locale'
    | 'frontEnd'
    | 'policy'
    | 'applications'
    | 'applicationResolver'
    | 'tenants'
    | 'tenantCache'
  >
> &
  Pick<
    DuoModuleOptions,
    'redis' | 'stores' | 'onEvent' | 'fetch' | 'onDuoCall' | 'sessionSecretPrevious' | 'locale'
  > & {
    /** The app's button text, or undefined: the catalogue's (in the page's language). */
    displayName: string | undefined;
    /** The front end's landing routes (normalised same-origin paths), or false. */
    frontEnd: Required<DuoFrontEndOptions> | false;
    /** The module-wide factor and bypass policy (see DuoModuleOptions.policy). */
    policy: { factors?: readonly DuoFactor[]; allowBypass: boolean };
    usernameResolver: NonNullable<DuoModuleOptions['usernameResolver']>;
    /** Named applications, aliases, the resolver and tenant store, the step-up path. */
    applicationsConfig: NormalizedDuoApplications;
    /** The callback route's path, from redirectUri. */
    callbackPath: string;
    /** The origin of every Duo URL (from apiHost). */
    apiOrigin: string;
    limits: NormalizedDuoLimits | false;
    csrf: { allowedOrigins: string[] } | false;
  };

/** The sign-on caps with their defaults filled in. */
export type NormalizedDuoLimits = Required<Omit<DuoLimitsOptions, 'store'>> &
  Pick<DuoLimitsOptions, 'store'>;

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
  // `applications.default` is the top-level clientId/clientSecret given the other way.
  const defaultIssues: DuoConfigIssue[] = [];
  options = withDefaultApplication(defaultIssues, options);
  const { issues, normalized } = validateDuoClientOptions(options as DuoClientOptions);
  issues.push(...defaultIssues);
  const displayName = options.displayName;
  if (
    displayName !== undefined &&
    (typeof displayName !== 'string' || displayName.length === 0 || displayName.length > 64)
  ) {
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
  if (
    options.sessionSecretPrevious !== undefined &&
    (typeof options.sessionSecretPrevious !== 'string' || options.sessionSecretPrevious.length < 32)
  ) {
    issues.push({ field: 'sessionSecretPrevious', message: 'must be at least 32 characters' });
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
  } else if (
    options.redis?.isCluster &&
    !(options.stores?.pendingLogins && options.stores.sessions) &&
    hashTagOf(effectivePrefix(connectionKeyPrefix(options.redis), redisKeyPrefix)) === undefined
  ) {
    issues.push({
      field: 'redisKeyPrefix',
      message:
        "must hold a hash tag on Redis Cluster, such as '{duo}:' (the stores' scripts touch several keys, which must share one slot)",
    });
  }
  const reverify = options.failOpen?.reverifyWhenDuoIsBack;
  if (reverify !== undefined && typeof reverify !== 'boolean') {
    issues.push({ field: 'failOpen.reverifyWhenDuoIsBack', message: 'must be a boolean' });
  }
  if (options.healthProbe !== undefined && typeof options.healthProbe !== 'boolean') {
    issues.push({ field: 'healthProbe', message: 'must be a boolean' });
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
    failOpen: { reverifyWhenDuoIsBack: options.failOpen?.reverifyWhenDuoIsBack ?? true },
    healthCacheMs: positive(issues, 'healthCacheMs', options.healthCacheMs, 10_000, 0, 600_000),
    healthProbe: options.healthProbe ?? true,
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
    routes: options.routes ?? true,
    applicationsConfig: normalizeApplications(
      issues,
      options,
      options as DuoClientOptions,
      normalized.redirectUri ? safePath(normalized.redirectUri) : '/',
    ),
    locales: normalizeLocales(issues, options.locales),
    jsonStart: options.jsonStart ?? true,
    frontEnd: normalizeFrontEnd(issues, options.frontEnd),
    policy: normalizePolicy(issues, options.policy),
    limits: normalizeLimits(issues, options.limits),
    csrf: normalizeCsrf(issues, options.csrf, normalized.redirectUri),
  };
  if (
    result.locale !== undefined &&
    typeof result.locale !== 'function' &&
    !(typeof result.locale === 'string' && result.locales.includes(result.locale))
  ) {
    issues.push({ field: 'locale', message: 'must be one of locales, or a function' });
  }
  if (typeof result.jsonStart !== 'boolean') {
    issues.push({ field: 'jsonStart', message: 'must be true or false' });
  }
  if (result.routes !== true && result.routes !== false) {
    issues.push({ field: 'routes', message: 'must be true or false' });
  } else if (result.routes && !callbackRoutePathOk(normalized.redirectUri)) {
    issues.push({ field: 'redirectUri', message: CALLBACK_ROUTE_PATH_MESSAGE });
  }
  if (issues.length > 0) {
    throw new DuoConfigError(issues);
  }
  return result;
}

function normalizePolicy(
  issues: DuoConfigIssue[],
  policy: unknown,
): NormalizedDuoModuleOptions['policy'] {
  if (policy === undefined) {
    return { allowBypass: true };
  }
  if (typeof policy !== 'object' || policy === null || Array.isArray(policy)) {
    issues.push({ field: 'policy', message: 'must be an object { factors?, allowBypass? }' });
    return { allowBypass: false };
  }
  const { factors, allowBypass } = policy as Record<string, unknown>;
  const out: NormalizedDuoModuleOptions['policy'] = { allowBypass: allowBypass !== false };
  if (allowBypass !== undefined && typeof allowBypass !== 'boolean') {
    issues.push({ field: 'policy.allowBypass', message: 'must be true or false' });
  }
  if (factors !== undefined) {
    try {
      out.factors = checkPolicyFactors(factors, 'policy');
    } catch {
      issues.push({
        field: 'policy.factors',
        message: `must be a non-empty list of Duo factor names (${DUO_FACTORS.join(', ')})`,
      });
    }
  }
  return out;
}

function normalizeLocales(issues: DuoConfigIssue[], locales: unknown): string[] {
  if (locales === undefined) {
    return [...DUO_DEFAULT_LOCALES];
  }
  const known = Object.keys(DUO_PAGE_MESSAGES);
  if (
    !Array.isArray(locales) ||
    locales.length === 0 ||
    !locales.every((l) => typeof l === 'string' && known.includes(l))
  ) {
    issues.push({
      field: 'locales',
      message: `must be a non-empty list of ${known.join(', ')} (the first is the default)`,
    });
    return [...DUO_DEFAULT_LOCALES];
  }
  return [...new Set(locales as string[])];
}

function normalizeFrontEnd(
  issues: DuoConfigIssue[],
  frontEnd: DuoFrontEndOptions | undefined,
): Required<DuoFrontEndOptions> | false {
  if (frontEnd === undefined) {
    return false;
  }
  if (typeof frontEnd !== 'object' || frontEnd === null) {
    issues.push({ field: 'frontEnd', message: 'must be { successUrl, errorUrl? }' });
    return false;
  }
  const paths: Partial<Record<'successUrl' | 'errorUrl', string>> = {};
  for (const field of ['successUrl', 'errorUrl'] as const) {
    const value =
      field === 'errorUrl' ? (frontEnd.errorUrl ?? frontEnd.successUrl) : frontEnd[field];
    const path = sanitizeReturnTo(value);
    // Only a path that is already in its normal form: what is configured is what the browser gets.
    if (path === undefined || path !== value) {
      issues.push({
        field: `frontEnd.${field}`,
        message:
          'must be a same-origin path in normal form, such as /app/ or /app/signed-in (no fragment)',
      });
    } else {
      paths[field] = path;
    }
  }
  return paths.successUrl && paths.errorUrl
    ? { successUrl: paths.successUrl, errorUrl: paths.errorUrl }
    : false;
}

function normalizeLimits(
  issues: DuoConfigIssue[],
  limits: DuoLimitsOptions | false | undefined,
): NormalizedDuoLimits | false {
  if (limits === false) {
    return false;
  }
  if (limits !== undefined && (typeof limits !== 'object' || limits === null)) {
    issues.push({ field: 'limits', message: 'must be an object of caps, or false' });
    return false;
  }
  const l = limits ?? {};
  const store = l.store;
  if (store !== undefined && typeof store?.hit !== 'function') {
    issues.push({ field: 'limits.store', message: 'must have a hit(key, windowMs) method' });
  }
  return {
    windowMs: positive(issues, 'limits.windowMs', l.windowMs, 600_000, 1_000, 86_400_000),
    startsPerIp: positive(issues, 'limits.startsPerIp', l.startsPerIp, 100, 0, 1_000_000),
    startsPerUser: positive(issues, 'limits.startsPerUser', l.startsPerUser, 5, 0, 1_000_000),
    callbacksPerIp: positive(issues, 'limits.callbacksPerIp', l.callbacksPerIp, 100, 0, 1_000_000),
    ipv6Subnet: positive(issues, 'limits.ipv6Subnet', l.ipv6Subnet, 64, 1, 128),
    ...(store ? { store } : {}),
  };
}

function normalizeCsrf(
  issues: DuoConfigIssue[],
  csrf: DuoCsrfOptions | false | undefined,
  redirectUri: string,
): { allowedOrigins: string[] } | false {
  if (csrf === false) {
    return false;
  }
  if (csrf !== undefined && (typeof csrf !== 'object' || csrf === null)) {
    issues.push({ field: 'csrf', message: 'must be an object, or false' });
    return false;
  }
  const given = csrf?.allowedOrigins;
  if (given === undefined) {
    let own: string | undefined;
    try {
      own = new URL(redirectUri).origin;
    } catch {
      own = undefined; // redirectUri is already reported
    }
    return { allowedOrigins: own ? [own] : [] };
  }
  const ok =
    Array.isArray(given) &&
    given.every((o) => {
      try {
        return typeof o === 'string' && new URL(o).origin === o;
      } catch {
        return false;
      }
    });
  if (!ok) {
    issues.push({
      field: 'csrf.allowedOrigins',
      message: 'must be a list of origins such as https://app.example (scheme, host, port only)',
    });
  }
  return { allowedOrigins: ok ? [...given] : [] };
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

/** The longest return path accepted (raw) and sent (normalised and percent-encoded). */
const MAX_RETURN_TO_IN = 512;
const MAX_RETURN_TO_OUT = 2048;
/** Percent-decoding rounds looked through; a value still changing after them is refused. */
const MAX_DECODE_ROUNDS = 3;
/** Two unrelated bases: a same-origin absolute path resolves to the same path against both. */
const BASE_A = 'https://return-to-a.invalid';
const BASE_B = 'http://return-to-b.invalid:8080/deep/dir/page?q=1';
/**
 * Characters a return path never needs and that confuse a parser somewhere: controls (tab, CR,
 * LF, NUL, DEL, C1), every kind of white space, format characters (bidi, zero-width),
 * line/paragraph separators, surrogates and non-characters, and the backslash.
 */
const FORBIDDEN_CHAR = /[\p{Cc}\p{Cf}\p{Cs}\p{Co}\p{Cn}\p{Z}\s\\]/u;
/** Unicode look-alikes of "/", "\\" and "." (their skeleton must still be a same-origin path). */
const LOOKALIKE_SLASH =
  /[\u2044\u2215\u2571\u29f8\u2cc6\u3033\u30ce\u31d3\u4e3f\u1735\ufe68\uff0f\uff3c\u2216\u29f5\u29f9\u244a]/gu;
const LOOKALIKE_DOT =
  /[\u00b7\u0701\u0702\u06d4\u2024\u2027\u2e31\u2e33\u3002\ua4f8\ua60e\ufe52\uff0e\uff61]/gu;
/** The final form: "/" then a non-slash, printable ASCII only, no backslash. */
const FINAL_PATH = /^\/(?![/\\])[\x21-\x5b\x5d-\x7e]*$/;

/**
 * A same-origin return path, or undefined. The check holds on the value returned: the value is
 * normalised first (WHATWG URL parsing, as a browser does: dot segments, `%2e`, tabs) and the
 * normalised path+query must be a single-slash absolute path that resolves to itself against any
 * base. On top of that, every percent-decoded layer (up to three; deeper nesting is refused) and
 * the NFKC form and the look-alike skeleton (U+2215, U+FF0F, U+2024, U+FF0E, ...) of each layer
 * must pass the same test, so no later decoding or Unicode folding can turn it into `//host`.
 * Controls, white space, format characters and backslashes are refused anywhere, in any layer.
 */
export function sanitizeReturnTo(value: unknown): string | undefined {
  if (typeof value !== 'string' || value.length === 0 || value.length > MAX_RETURN_TO_IN) {
    return undefined;
  }
  const layers = decodeLayers(value);
  if (!layers) {
    return undefined;
  }
  for (const layer of layers) {
    for (const form of [layer, layer.normalize('NFKC'), skeleton(layer)]) {
      if (normaliseReturnPath(form) === undefined) {
        return undefined;
      }
    }
  }
  return normaliseReturnPath(value);
}

/** The value and each percent-decoded form of it until it stops changing; undefined when odd. */
function decodeLayers(value: string): string[] | undefined {
  const layers = [value];
  let current = value;
  for (let round = 0; round <= MAX_DECODE_ROUNDS; round++) {
    let next: string;
    try {
      next = decodeURIComponent(current);
    } catch {
      return undefined; // a malformed escape or an encoded lone surrogate
    }
    if (next === current) {
      return layers;
    }
    layers.push(next);
    current = next;
  }
  return undefined;
}

function skeleton(value: string): string {
  return value.replace(LOOKALIKE_SLASH, '/').replace(LOOKALIKE_DOT, '.');
}

/**
 * The normalised path+query of a candidate, or undefined unless it is a same-origin absolute path
 * both before and after normalisation (the fragment is dropped).
 */
function normaliseReturnPath(value: string): string | undefined {
  if (!value.startsWith('/') || value.startsWith('//') || FORBIDDEN_CHAR.test(value)) {
    return undefined;
  }
  let url: URL;
  try {
    url = new URL(value, BASE_A);
  } catch {
    return undefined;
  }
  const out = url.pathname + url.search;
  if (url.origin !== BASE_A || out.length > MAX_RETURN_TO_OUT || !FINAL_PATH.test(out)) {
    return undefined;
  }
  // Idempotent and base-independent: what a browser resolves from the Location we send.
  for (const base of [BASE_A, BASE_B]) {
    const again = new URL(out, base);
    if (again.origin !== new URL(base).origin || again.pathname + again.search !== out) {
      return undefined;
    }
  }
  return out;
}
