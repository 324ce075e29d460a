import { DuoAdminConfigError, type DuoAdminConfigIssue } from './admin-api.errors.js';

/** Options of the Duo Admin API client (an "Admin API" application in the Duo Admin Panel). */
export interface DuoAdminClientOptions {
  /** Integration key of the Admin API application (20 characters, such as DIXXXXXXXXXXXXXXXXXX). */
  integrationKey: string;
  /** Secret key of the Admin API application (40 characters). Keep it in a secret store. */
  secretKey: string;
  /**
   * API hostname, such as `api-xxxxxxxx.duosecurity.com` (optionally `:port`). With
   * `allowInsecureHttp`, an `http://host:port` URL of a local simulator is accepted too.
   */
  apiHost: string;
  /** Total time allowed for one HTTP call, connection and body included. @default 5000 */
  timeoutMs?: number;
  /** Largest answer read for one page, in bytes. @default 4194304 (4 MiB) */
  maxResponseBytes?: number;
  /** Tries of one page while Duo answers 429 (the first try included). @default 5 */
  maxAttempts?: number;
  /** First backoff after a 429; doubled each time, plus up to 1 s of jitter. @default 1000 */
  backoffBaseMs?: number;
  /** Longest single wait, Retry-After included (a longer Retry-After fails at once). @default 32000 */
  backoffMaxMs?: number;
  /** Test-only: allow a plain http:// API host (the local simulator). @default false */
  allowInsecureHttp?: boolean;
  /** The fetch implementation. @default globalThis.fetch */
  fetch?: typeof fetch;
}

export interface NormalizedDuoAdminClientOptions {
  integrationKey: string;
  secretKey: string;
  /** `https://<api host>` (or the simulator's http origin). */
  apiOrigin: string;
  /** What is signed and sent as Host: the origin's host, lower-cased, default port dropped. */
  signedHost: string;
  timeoutMs: number;
  maxResponseBytes: number;
  maxAttempts: number;
  backoffBaseMs: number;
  backoffMaxMs: number;
  allowInsecureHttp: boolean;
  fetch: typeof fetch;
}

export const DUO_ADMIN_DEFAULTS = {
  timeoutMs: 5_000,
  maxResponseBytes: 4 * 1024 * 1024,
  maxAttempts: 5,
  backoffBaseMs: 1_000,
  backoffMaxMs: 32_000,
} as const;

export const DUO_ADMIN_BOUNDS = {
  timeoutMs: { min: 100, max: 60_000 },
  maxResponseBytes: { min: 64 * 1024, max: 16 * 1024 * 1024 },
  maxAttempts: { min: 1, max: 10 },
  backoffBaseMs: { min: 0, max: 60_000 },
  backoffMaxMs: { min: 0, max: 300_000 },
} as const;

// The same rules as the Universal Prompt's client id and secret (src/duo/duo-client-options.ts),
// duplicated on purpose: the audit package does not reach into src/duo's internals for them.
const INTEGRATION_KEY_RE = /^[A-Z0-9]{20}$/;
const SECRET_KEY_RE = /^[A-Za-z0-9]{40}$/;
const HOSTNAME_RE =
  /^(?=.{1,253}(?::|$))[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*(?::(?:[1-9][0-9]{0,4}))?$/;

/** Messages that say what to fix; they never carry a value. */
export const DUO_ADMIN_MESSAGES = {
  integrationKey:
    'must be the 20-character Integration key of the Duo Admin API application (letters A-Z and digits, such as DIXXXXXXXXXXXXXXXXXX)',
  secretKey:
    'must be the 40-character Secret key of the Duo Admin API application (letters and digits)',
  apiHost:
    'must be the API hostname of the Duo account, such as api-xxxxxxxx.duosecurity.com (no scheme, no path)',
  apiHostInsecure:
    'is a plain http:// URL; that is only allowed for a local simulator with allowInsecureHttp: true',
  range: (min: number, max: number) => `must be an integer from ${min} to ${max}`,
} as const;

export function isValidAdminIntegrationKey(value: unknown): value is string {
  return typeof value === 'string' && INTEGRATION_KEY_RE.test(value);
}

export function isValidAdminSecretKey(value: unknown): value is string {
  return typeof value === 'string' && SECRET_KEY_RE.test(value);
}

/** The origin of every Admin API URL, or why the host is invalid. */
export function parseAdminApiHost(
  value: unknown,
  allowInsecureHttp: boolean,
): { origin: string } | { error: string } {
  if (typeof value !== 'string' || value.length === 0) {
    return { error: DUO_ADMIN_MESSAGES.apiHost };
  }
  if (HOSTNAME_RE.test(value)) {
    const port = Number(value.split(':')[1] ?? 443);
    return port > 65535
      ? { error: DUO_ADMIN_MESSAGES.apiHost }
      : { origin: new URL(`https://${value}`).origin };
  }
  if (!/^https?:\/\//i.test(value)) {
    return { error: DUO_ADMIN_MESSAGES.apiHost };
  }
  if (!allowInsecureHttp) {
    return {
      error: /^http:/i.test(value)
        ? DUO_ADMIN_MESSAGES.apiHostInsecure
        : DUO_ADMIN_MESSAGES.apiHost,
    };
  }
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return { error: DUO_ADMIN_MESSAGES.apiHost };
  }
  const bare = url.pathname === '/' && !/[?#@]/.test(value) && !url.username && !url.password;
  return bare ? { origin: url.origin } : { error: DUO_ADMIN_MESSAGES.apiHost };
}

function checkInteger(
  issues: DuoAdminConfigIssue[],
  field: keyof typeof DUO_ADMIN_BOUNDS,
  value: number | undefined,
): number {
  if (value === undefined) {
    return DUO_ADMIN_DEFAULTS[field];
  }
  const { min, max } = DUO_ADMIN_BOUNDS[field];
  if (!Number.isInteger(value) || value < min || value > max) {
    issues.push({ field, message: DUO_ADMIN_MESSAGES.range(min, max) });
  }
  return value;
}

/** Checks every option; returns the issues (empty when valid) and the normalized options. */
export function validateDuoAdminClientOptions(options: DuoAdminClientOptions): {
  issues: DuoAdminConfigIssue[];
  normalized: NormalizedDuoAdminClientOptions;
} {
  const issues: DuoAdminConfigIssue[] = [];
  const allowInsecureHttp = options.allowInsecureHttp === true;
  if (!isValidAdminIntegrationKey(options.integrationKey)) {
    issues.push({ field: 'integrationKey', message: DUO_ADMIN_MESSAGES.integrationKey });
  }
  if (!isValidAdminSecretKey(options.secretKey)) {
    issues.push({ field: 'secretKey', message: DUO_ADMIN_MESSAGES.secretKey });
  }
  const host = parseAdminApiHost(options.apiHost, allowInsecureHttp);
  if ('error' in host) {
    issues.push({ field: 'apiHost', message: host.error });
  }
  const normalized: NormalizedDuoAdminClientOptions = {
    integrationKey: options.integrationKey,
    secretKey: options.secretKey,
    apiOrigin: 'origin' in host ? host.origin : '',
    signedHost: 'origin' in host ? new URL(host.origin).host.toLowerCase() : '',
    timeoutMs: checkInteger(issues, 'timeoutMs', options.timeoutMs),
    maxResponseBytes: checkInteger(issues, 'maxResponseBytes', options.maxResponseBytes),
    maxAttempts: checkInteger(issues, 'maxAttempts', options.maxAttempts),
    backoffBaseMs: checkInteger(issues, 'backoffBaseMs', options.backoffBaseMs),
    backoffMaxMs: checkInteger(issues, 'backoffMaxMs', options.backoffMaxMs),
    allowInsecureHttp,
    fetch: options.fetch ?? globalThis.fetch.bind(globalThis),
  };
  if (options.fetch !== undefined && typeof options.fetch !== 'function') {
    issues.push({ field: 'fetch', message: 'must be a fetch-compatible function' });
  }
  return { issues, normalized };
}

/** Validates and normalizes, throwing one DuoAdminConfigError listing every bad option. */
export function normalizeDuoAdminClientOptions(
  options: DuoAdminClientOptions,
): NormalizedDuoAdminClientOptions {
  const { issues, normalized } = validateDuoAdminClientOptions(
    options ?? ({} as DuoAdminClientOptions),
  );
  if (issues.length > 0) {
    throw new DuoAdminConfigError(issues);
  }
  return normalized;
}

/** The three environment variables of the Admin API; all three or none. */
export const DUO_ADMIN_ENV_VARIABLES = [
  'DUO_ADMIN_INTEGRATION_KEY',
  'DUO_ADMIN_SECRET_KEY',
  'DUO_ADMIN_API_HOST',
] as const;

/**
 * Whether the Admin API (and so everything built on Duo's authentication log) is on: all three
 * variables are set. Without them the feature is off. The values are validated by the environment
 * validation, which refuses a partial set.
 */
export function isDuoAdminApiConfigured(
  env: Partial<Record<(typeof DUO_ADMIN_ENV_VARIABLES)[number], string | undefined>>,
): boolean {
  return DUO_ADMIN_ENV_VARIABLES.every((name) => (env[name] ?? '').trim() !== '');
}
