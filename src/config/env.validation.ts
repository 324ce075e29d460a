import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import {
  DUO_BOUNDS,
  DUO_DEFAULTS,
  DUO_MESSAGES,
  isValidClientId,
  isValidClientSecret,
  isValidRedirectUri,
  parseApiHost,
  parseProxyUrl,
  readCaFile,
  DUO_PAGE_MESSAGES,
} from '@duo-nest/core/internal';
import { sanitizeReturnTo } from '@duo-nest/core';
import {
  DUO_ADMIN_ENV_VARIABLES,
  DUO_ADMIN_MESSAGES,
  isValidAdminIntegrationKey,
  isValidAdminSecretKey,
} from '@duo-nest/audit';

/** Every environment variable the app reads, parsed and typed. See README "Configuration". */
export interface AppEnv {
  NODE_ENV: 'development' | 'production' | 'test';
  HOST: string;
  PORT: number;
  PUBLIC_URL: string;
  TRUST_PROXY: number;
  LOG_LEVEL: 'debug' | 'info' | 'warn' | 'error';
  INSTANCE_ID: string;
  SHUTDOWN_GRACE_MS: number;
  HEALTH_DUO_REQUIRED: boolean;
  HEALTH_TIMEOUT_MS: number;
  METRICS_ENABLED: boolean;
  METRICS_TOKEN: string | undefined;
  DUO_CLIENT_ID: string;
  DUO_CLIENT_SECRET: string;
  DUO_API_HOST: string;
  DUO_REDIRECT_URI: string;
  DUO_FAILMODE: 'closed' | 'open';
  DUO_TIMEOUT_MS: number;
  DUO_CLOCK_TOLERANCE_MS: number;
  DUO_HEALTH_CACHE_MS: number;
  DUO_HEALTH_PROBE: boolean;
  DUO_BREAKER_THRESHOLD: number;
  DUO_BREAKER_COOLDOWN_MS: number;
  DUO_MAX_CONCURRENCY: number;
  DUO_PENDING_TTL_MS: number;
  DUO_SKIP_BUTTON_PRESS: boolean;
  /** Unset: the message catalogue's text in the page's language. */
  DUO_BUTTON_DISPLAY_NAME: string | undefined;
  DUO_BUTTON_CSS: string;
  DUO_SHOW_POWERED_BY: boolean;
  /** A second Duo application (Web SDK) for /admin: both or none; none: /admin uses the main one. */
  DUO_ADMIN_APP_CLIENT_ID: string | undefined;
  DUO_ADMIN_APP_CLIENT_SECRET: string | undefined;
  /** Duo Admin API (authentication log reconcile): all three or none; none turns the feature off. */
  DUO_ADMIN_INTEGRATION_KEY: string | undefined;
  DUO_ADMIN_SECRET_KEY: string | undefined;
  DUO_ADMIN_API_HOST: string | undefined;
  /** The proxy for Duo calls; false: DUO_HTTPS_PROXY=off (direct, whatever HTTPS_PROXY says). */
  DUO_HTTPS_PROXY: string | false | undefined;
  /** https_proxy, else HTTPS_PROXY: used for Duo when DUO_HTTPS_PROXY is unset. */
  HTTPS_PROXY: string | undefined;
  /** no_proxy, else NO_PROXY (curl's syntax). */
  NO_PROXY: string | undefined;
  DUO_CA_FILE: string | undefined;
  /** A single-page front end's route (same-origin path) where the callback lands; unset: none. */
  DUO_FRONTEND_URL: string | undefined;
  /** Languages of the pages, the first the default. */
  APP_LOCALES: string[];
  /** A fixed language for every page; unset: Accept-Language. */
  APP_LOCALE: string | undefined;
  DATABASE_URL: string | undefined;
  DATABASE_MIGRATIONS_RUN: boolean;
  REDIS_URL: string | undefined;
  REDIS_KEY_PREFIX: string;
  SESSION_SECRET: string;
  SESSION_SECRET_PREVIOUS: string | undefined;
  SESSION_IDLE_TIMEOUT_MS: number;
  SESSION_ABSOLUTE_TIMEOUT_MS: number;
  AUDIT_CHAIN_KEY: string;
  AUDIT_POLICY: 'spool' | 'deny';
  AUDIT_SPOOL_DIR: string;
  AUDIT_RETENTION_DAYS: number | undefined;
  AUDIT_ADMIN_USERS: string[];
  AUDIT_ADMIN_GROUPS: string[];
  RATE_LIMIT_WINDOW_MS: number;
  RATE_LIMIT_LOGIN_PER_IP: number;
  RATE_LIMIT_LOGIN_PER_USER: number;
  RATE_LIMIT_CALLBACK_PER_IP: number;
  RATE_LIMIT_IPV6_SUBNET: number;
}

type Raw = Record<string, string | undefined>;
type Parser<T> = (raw: string, env: { production: boolean; raw: Raw }) => T | Invalid;

class Invalid {
  constructor(readonly message: string) {}
}

const invalid = (message: string) => new Invalid(message);

/** Leading or trailing spaces in a Duo credential mean a copy-paste went wrong (CFG-01). */
const PADDED = 'must not have leading or trailing spaces (check the copy from the Duo Admin Panel)';

/** Languages the pages have a catalogue for (en and de complete, ar partial). */
const PAGE_LOCALES = Object.keys(DUO_PAGE_MESSAGES);

/** Production Duo API hosts (commercial and federal); anything else only outside production (CFG-03). */
const DUO_HOST_ALLOW_LIST =
  /^api-[a-z0-9]{1,32}\.(?:[a-z0-9-]{1,32}\.)?duo(?:security|federal)\.com$/i;

/** The path the AuthController mounts the callback on; DUO_REDIRECT_URI must point at it (CFG-04). */
export const CALLBACK_PATH = '/auth/duo/callback';

/** Values that show a secret was copied from an example and never set. */
const PLACEHOLDER = /change[-_ ]?me|placeholder|example|replace|your[-_ ]|^x+$|^(.)\1+$/i;

function int(min: number, max: number): Parser<number> {
  return (raw) => {
    const n = Number(raw);
    return /^-?\d+$/.test(raw.trim()) && Number.isSafeInteger(n) && n >= min && n <= max
      ? n
      : invalid(`must be an integer from ${min} to ${max}`);
  };
}

function oneOf<T extends string>(...values: T[]): Parser<T> {
  return (raw) => {
    const v = raw.trim().toLowerCase() as T;
    return values.includes(v) ? v : invalid(`must be one of ${values.join(', ')}`);
  };
}

const bool: Parser<boolean> = (raw) => {
  const v = raw.trim().toLowerCase();
  if (['true', '1', 'yes', 'on'].includes(v)) {
    return true;
  }
  if (['false', '0', 'no', 'off'].includes(v)) {
    return false;
  }
  return invalid('must be true or false');
};

const text =
  (max: number): Parser<string> =>
  (raw) =>
    raw.length <= max && !/[\0\r\n]/.test(raw)
      ? raw
      : invalid(`must be at most ${max} characters on one line`);

const list: Parser<string[]> = (raw) =>
  raw
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);

function secret(what: string): Parser<string> {
  return (raw, { production }) => {
    if (raw.length < 32) {
      return invalid(
        `must be at least 32 characters (${what}); generate one with: openssl rand -base64 48`,
      );
    }
    if (production && PLACEHOLDER.test(raw)) {
      return invalid(
        `is still the placeholder from .env.example; set a real random value (${what})`,
      );
    }
    return raw;
  };
}

const duoApiHost: Parser<string> = (raw, { production }) => {
  if (production && !DUO_HOST_ALLOW_LIST.test(raw.trim())) {
    return invalid(
      'must be the API hostname of your Duo application in production: api-<id>.duosecurity.com or api-<id>.duofederal.com, without scheme, port or path',
    );
  }
  const parsed = parseApiHost(raw.trim(), !production);
  if ('error' in parsed) {
    return invalid(
      production && /^http:/i.test(raw)
        ? 'must be a bare Duo API hostname in production (http:// is only for the local simulator)'
        : DUO_MESSAGES.apiHost + ' (outside production, also http://host:port of the simulator)',
    );
  }
  return raw.trim();
};

/** A proxy URL; the message never repeats the value (it may hold a password). */
const proxyUrl: Parser<string> = (raw) => {
  const parsed = parseProxyUrl(raw.trim());
  return 'error' in parsed ? invalid(parsed.error) : raw.trim();
};

/** Lower-case spellings read first, as curl does (https_proxy before HTTPS_PROXY). */
const LOWER_CASE_ALIASES: Partial<Record<keyof AppEnv, string>> = {
  HTTPS_PROXY: 'https_proxy',
  NO_PROXY: 'no_proxy',
};

const databaseUrl: Parser<string> = (raw) =>
  /^(sqlite:.+|postgres(ql)?:\/\/.+)$/i.test(raw.trim())
    ? raw.trim()
    : invalid(
        'must be sqlite:<path>, sqlite::memory: or postgres://user@host:5432/db (unset: a SQLite file under ./data)',
      );

const redisUrl: Parser<string> = (raw) =>
  /^rediss?:\/\/.+/i.test(raw.trim())
    ? raw.trim()
    : invalid('must be redis://host:6379[/db] or rediss://...');

const url: Parser<string> = (raw, { production }) => {
  try {
    const u = new URL(raw.trim());
    if (u.protocol !== 'https:' && (production || u.protocol !== 'http:')) {
      return invalid('must be an https:// URL (http:// only outside production)');
    }
    return u.origin;
  } catch {
    return invalid('must be an absolute URL such as https://app.example.com');
  }
};

/** A Duo Client ID (DUO_CLIENT_ID, DUO_ADMIN_APP_CLIENT_ID). */
const clientId: Parser<string> = (raw) =>
  raw !== raw.trim()
    ? invalid(PADDED)
    : isValidClientId(raw)
      ? raw
      : invalid(DUO_MESSAGES.clientId);

/** A Duo Client secret (DUO_CLIENT_SECRET, DUO_ADMIN_APP_CLIENT_SECRET); never echoed. */
const clientSecret: Parser<string> = (raw, { production }) => {
  if (raw !== raw.trim()) {
    return invalid(PADDED);
  }
  if (!isValidClientSecret(raw)) {
    return invalid(DUO_MESSAGES.clientSecret);
  }
  return production && PLACEHOLDER.test(raw)
    ? invalid('is still a placeholder; set the real Client secret')
    : raw.trim();
};

interface VarSpec<K extends keyof AppEnv> {
  parse: Parser<AppEnv[K]>;
  /** The default, or a function of the other (already parsed) values. Absent: the variable is required. */
  fallback?: (env: Partial<AppEnv>, production: boolean) => AppEnv[K] | Invalid;
  /** How to fix it when missing. */
  hint?: string;
}

type Schema = { [K in keyof AppEnv]: VarSpec<K> };

const SCHEMA: Schema = {
  NODE_ENV: { parse: oneOf('development', 'production', 'test'), fallback: () => 'development' },
  HOST: { parse: text(255), fallback: () => '127.0.0.1' },
  PORT: { parse: int(0, 65535), fallback: () => 3000 },
  PUBLIC_URL: {
    parse: url,
    fallback: (e, production) =>
      production
        ? invalid('is required in production: the https:// origin users reach')
        : `http://localhost:${e.PORT ?? 3000}`,
  },
  TRUST_PROXY: { parse: int(0, 10), fallback: () => 0 },
  LOG_LEVEL: { parse: oneOf('debug', 'info', 'warn', 'error'), fallback: () => 'info' },
  INSTANCE_ID: {
    parse: (raw) =>
      /^[A-Za-z0-9_.-]{1,64}$/.test(raw.trim())
        ? raw.trim()
        : invalid('must be 1 to 64 letters, digits, _ . -'),
    fallback: () =>
      `${hostname()
        .replace(/[^A-Za-z0-9_.-]/g, '-')
        .slice(0, 40)}-${process.pid}`,
  },
  SHUTDOWN_GRACE_MS: { parse: int(0, 300_000), fallback: () => 10_000 },
  HEALTH_DUO_REQUIRED: { parse: bool, fallback: () => false },
  HEALTH_TIMEOUT_MS: { parse: int(50, 30_000), fallback: () => 1_000 },
  METRICS_ENABLED: { parse: bool, fallback: () => true },
  METRICS_TOKEN: {
    parse: secret('scrapers send it as Authorization: Bearer <token>'),
    fallback: () => undefined,
  },
  DUO_CLIENT_ID: {
    parse: clientId,
    hint: 'the Client ID from the Duo Admin Panel (or from `npm run simulator`)',
  },
  DUO_CLIENT_SECRET: {
    parse: clientSecret,
    hint: 'the Client secret from the Duo Admin Panel (or from `npm run simulator`)',
  },
  DUO_API_HOST: {
    parse: duoApiHost,
    hint: 'the API hostname from the Duo Admin Panel, such as api-xxxxxxxx.duosecurity.com',
  },
  DUO_REDIRECT_URI: {
    parse: (raw, { production }) => {
      const v = raw.trim();
      if (isValidRedirectUri(v, !production) && new URL(v).pathname !== CALLBACK_PATH) {
        return invalid(`must end in ${CALLBACK_PATH}, the route this app serves the callback on`);
      }
      if (!isValidRedirectUri(v, !production) || (production && !v.startsWith('https://'))) {
        return invalid(
          production
            ? 'must be an https:// URL of at most 256 characters in production'
            : DUO_MESSAGES.redirectUri,
        );
      }
      return v;
    },
    fallback: (e, production) =>
      production
        ? invalid('is required in production: https://<your host>/auth/duo/callback')
        : `${e.PUBLIC_URL}/auth/duo/callback`,
  },
  DUO_FAILMODE: { parse: oneOf('closed', 'open'), fallback: () => 'closed' },
  DUO_TIMEOUT_MS: {
    parse: int(DUO_BOUNDS.timeoutMs.min, DUO_BOUNDS.timeoutMs.max),
    fallback: () => DUO_DEFAULTS.timeoutMs,
  },
  DUO_CLOCK_TOLERANCE_MS: {
    parse: int(DUO_BOUNDS.clockToleranceMs.min, DUO_BOUNDS.clockToleranceMs.max),
    fallback: () => DUO_DEFAULTS.clockToleranceMs,
  },
  DUO_HEALTH_CACHE_MS: { parse: int(0, 600_000), fallback: () => 10_000 },
  DUO_HEALTH_PROBE: { parse: bool, fallback: () => true },
  DUO_BREAKER_THRESHOLD: { parse: int(1, 1000), fallback: () => 5 },
  DUO_BREAKER_COOLDOWN_MS: { parse: int(100, 600_000), fallback: () => 10_000 },
  DUO_MAX_CONCURRENCY: { parse: int(1, 10_000), fallback: () => 32 },
  DUO_PENDING_TTL_MS: { parse: int(30_000, 3_600_000), fallback: () => 600_000 },
  DUO_SKIP_BUTTON_PRESS: { parse: bool, fallback: () => true },
  DUO_BUTTON_DISPLAY_NAME: {
    parse: (raw, ctx) => (raw.trim() === '' ? undefined : text(64)(raw, ctx)),
    fallback: () => undefined,
  },
  DUO_BUTTON_CSS: { parse: text(8192), fallback: () => '' },
  DUO_SHOW_POWERED_BY: { parse: bool, fallback: () => false },
  // The admin application's credentials: the main credentials' rules (never echoed).
  DUO_ADMIN_APP_CLIENT_ID: {
    parse: clientId,
    fallback: () => undefined,
  },
  DUO_ADMIN_APP_CLIENT_SECRET: {
    parse: clientSecret,
    fallback: () => undefined,
  },
  DUO_ADMIN_INTEGRATION_KEY: {
    parse: (raw) =>
      raw !== raw.trim()
        ? invalid(PADDED)
        : isValidAdminIntegrationKey(raw)
          ? raw
          : invalid(DUO_ADMIN_MESSAGES.integrationKey),
    fallback: () => undefined,
  },
  DUO_ADMIN_SECRET_KEY: {
    parse: (raw, { production }) =>
      raw !== raw.trim()
        ? invalid(PADDED)
        : !isValidAdminSecretKey(raw)
          ? invalid(DUO_ADMIN_MESSAGES.secretKey)
          : production && PLACEHOLDER.test(raw)
            ? invalid('is still a placeholder; set the real Admin API Secret key')
            : raw,
    fallback: () => undefined,
  },
  // The same rules as DUO_API_HOST (the production allow-list included).
  DUO_ADMIN_API_HOST: { parse: duoApiHost, fallback: () => undefined },
  DUO_HTTPS_PROXY: {
    parse: (raw, ctx) => (/^(off|none)$/i.test(raw.trim()) ? false : proxyUrl(raw, ctx)),
    fallback: () => undefined,
  },
  HTTPS_PROXY: {
    // Checked only when it is the one Duo calls use.
    parse: (raw, ctx) => (ctx.raw.DUO_HTTPS_PROXY?.trim() ? raw.trim() : proxyUrl(raw, ctx)),
    fallback: () => undefined,
  },
  NO_PROXY: { parse: text(4096), fallback: () => undefined },
  DUO_CA_FILE: {
    parse: (raw) => {
      const read = readCaFile(raw.trim());
      return 'error' in read ? invalid(read.error) : raw.trim();
    },
    fallback: () => undefined,
  },
  DUO_FRONTEND_URL: {
    parse: (raw, { raw: all }) => {
      const v = raw.trim();
      if (v === '') {
        return undefined;
      }
      // A path, or an absolute URL on PUBLIC_URL's origin (reduced to its path).
      let path = v;
      if (/^https?:\/\//i.test(v)) {
        const publicUrl = all.PUBLIC_URL?.trim() || `http://localhost:${all.PORT?.trim() || 3000}`;
        try {
          const u = new URL(v);
          if (u.origin !== new URL(publicUrl).origin) {
            return invalid(
              'must be on the origin of PUBLIC_URL (the callback redirects same-origin only)',
            );
          }
          path = u.pathname + u.search;
        } catch {
          return invalid('must be a same-origin path such as /app/');
        }
      }
      return sanitizeReturnTo(path) === path
        ? path
        : invalid('must be a same-origin path in normal form, such as /app/ (no fragment)');
    },
    fallback: () => undefined,
  },
  APP_LOCALES: {
    parse: (raw) => {
      const locales = list(raw, { production: false, raw: {} }) as string[];
      return locales.length > 0 && locales.every((l) => PAGE_LOCALES.includes(l))
        ? locales
        : invalid(
            `must be a comma-separated list of ${PAGE_LOCALES.join(', ')} (the first is the default)`,
          );
    },
    fallback: () => ['en', 'de'],
  },
  APP_LOCALE: {
    parse: (raw, { raw: all }) => {
      const v = raw.trim().toLowerCase();
      if (v === '') {
        return undefined;
      }
      const offered = all.APP_LOCALES?.split(',')
        .map((s) => s.trim())
        .filter(Boolean) ?? ['en', 'de'];
      return offered.includes(v)
        ? v
        : invalid(`must be one of APP_LOCALES (${offered.join(', ')})`);
    },
    fallback: () => undefined,
  },
  DATABASE_URL: { parse: databaseUrl, fallback: () => undefined },
  DATABASE_MIGRATIONS_RUN: { parse: bool, fallback: () => true },
  REDIS_URL: { parse: redisUrl, fallback: () => undefined },
  REDIS_KEY_PREFIX: {
    parse: (raw) =>
      /^[\x21-\x7e]{1,64}$/.test(raw.trim())
        ? raw.trim()
        : invalid('must be 1 to 64 printable characters without spaces, such as duo: or {duo}:'),
    fallback: () => 'duo:',
  },
  SESSION_SECRET: {
    parse: secret('it signs the session and browser-binding cookies'),
    fallback: (_e, production) =>
      production
        ? invalid('is required in production (>= 32 random characters)')
        : randomBytes(32).toString('base64url'),
  },
  SESSION_SECRET_PREVIOUS: {
    parse: (raw, ctx) => {
      const v = secret('it still verifies store records sealed before a rotation')(raw, ctx);
      return v === ctx.raw.SESSION_SECRET
        ? invalid('must differ from SESSION_SECRET (it is the secret before the last rotation)')
        : v;
    },
    fallback: () => undefined,
  },
  SESSION_IDLE_TIMEOUT_MS: { parse: int(60_000, 86_400_000), fallback: () => 15 * 60_000 },
  SESSION_ABSOLUTE_TIMEOUT_MS: {
    parse: int(60_000, 7 * 86_400_000),
    fallback: () => 8 * 3_600_000,
  },
  AUDIT_CHAIN_KEY: {
    parse: secret('it keys the audit chain HMAC; keep it outside the database'),
    fallback: (_e, production) =>
      production
        ? invalid('is required in production (>= 32 random characters, kept outside the database)')
        : 'development-only-audit-chain-key-not-for-production',
  },
  AUDIT_POLICY: { parse: oneOf('spool', 'deny'), fallback: () => 'spool' },
  AUDIT_SPOOL_DIR: { parse: text(1024), fallback: () => './data/audit-spool' },
  AUDIT_RETENTION_DAYS: { parse: int(1, 36_500), fallback: () => undefined },
  AUDIT_ADMIN_USERS: { parse: list, fallback: () => [] },
  AUDIT_ADMIN_GROUPS: { parse: list, fallback: () => [] },
  RATE_LIMIT_WINDOW_MS: { parse: int(1_000, 86_400_000), fallback: () => 600_000 },
  RATE_LIMIT_LOGIN_PER_IP: { parse: int(0, 1_000_000), fallback: () => 100 },
  RATE_LIMIT_LOGIN_PER_USER: { parse: int(0, 1_000_000), fallback: () => 5 },
  RATE_LIMIT_CALLBACK_PER_IP: { parse: int(0, 1_000_000), fallback: () => 100 },
  RATE_LIMIT_IPV6_SUBNET: { parse: int(48, 128), fallback: () => 64 },
};

/** Names of every variable, in README order. */
export const ENV_VARIABLES = Object.keys(SCHEMA) as (keyof AppEnv)[];

export class EnvValidationError extends Error {
  override name = 'EnvValidationError';
  constructor(readonly problems: { variable: string; message: string }[]) {
    super(
      `Invalid environment (${problems.length} problem${problems.length === 1 ? '' : 's'}); fix these and start again:\n` +
        problems.map((p) => `  - ${p.variable} ${p.message}`).join('\n'),
    );
  }
}

/**
 * Validates the whole environment at once and returns typed values. One error lists every bad
 * variable by name with how to fix it; values are never printed, so no secret can leak.
 * Used as ConfigModule's `validate` hook.
 */
export function validateEnv(raw: Raw): AppEnv {
  const production = (raw.NODE_ENV ?? '').trim().toLowerCase() === 'production';
  const out: Partial<Record<keyof AppEnv, unknown>> = {};
  const problems: { variable: string; message: string }[] = [];
  for (const name of ENV_VARIABLES) {
    const spec = SCHEMA[name] as VarSpec<typeof name>;
    const alias = LOWER_CASE_ALIASES[name];
    const value = alias !== undefined && raw[alias]?.trim() ? raw[alias] : raw[name];
    let result: unknown;
    if (value === undefined || value.trim() === '') {
      result = spec.fallback
        ? spec.fallback(out as Partial<AppEnv>, production)
        : invalid(`is required: ${spec.hint ?? 'set it'}`);
    } else {
      result = spec.parse(value, { production, raw });
    }
    if (result instanceof Invalid) {
      problems.push({ variable: name, message: result.message });
    } else {
      out[name] = result;
    }
  }
  if (production) {
    // CFG-07: TLS verification switched off process-wide would let anyone pose as Duo.
    if (raw.NODE_TLS_REJECT_UNAUTHORIZED?.trim() === '0') {
      problems.push({
        variable: 'NODE_TLS_REJECT_UNAUTHORIZED',
        message: 'must not be 0 in production (it turns off TLS certificate checks of Duo)',
      });
    }
    // CFG-08: the audit trail must live in PostgreSQL in production (SQLite is one local file).
    const db = out.DATABASE_URL as string | undefined;
    if (db === undefined || /^sqlite:/i.test(db)) {
      if (!problems.some((p) => p.variable === 'DATABASE_URL')) {
        problems.push({
          variable: 'DATABASE_URL',
          message: 'must be a postgres:// URL in production (SQLite is for development and tests)',
        });
      }
    }
  }
  // The admin application's credentials come as a pair: one alone is a mistake, not "unset".
  const adminApp = ['DUO_ADMIN_APP_CLIENT_ID', 'DUO_ADMIN_APP_CLIENT_SECRET'] as const;
  const adminAppSet = adminApp.filter((name) => (raw[name] ?? '').trim() !== '');
  if (adminAppSet.length === 1) {
    const missing = adminApp.find((n) => n !== adminAppSet[0])!;
    problems.push({
      variable: missing,
      message: `is required when ${adminAppSet[0]} is set (the admin Duo application needs both, or neither)`,
    });
  }
  if (
    out.DUO_ADMIN_APP_CLIENT_ID !== undefined &&
    out.DUO_ADMIN_APP_CLIENT_ID === out.DUO_CLIENT_ID
  ) {
    problems.push({
      variable: 'DUO_ADMIN_APP_CLIENT_ID',
      message:
        'must be another Duo application than DUO_CLIENT_ID (unset both to use the main one)',
    });
  }
  // The Admin API credentials come as a set: a partial set is a mistake, not "feature off".
  const adminSet = DUO_ADMIN_ENV_VARIABLES.filter((name) => (raw[name] ?? '').trim() !== '');
  if (adminSet.length > 0 && adminSet.length < DUO_ADMIN_ENV_VARIABLES.length) {
    for (const name of DUO_ADMIN_ENV_VARIABLES.filter((n) => !adminSet.includes(n))) {
      problems.push({
        variable: name,
        message: `is required when ${adminSet.join(' and ')} ${adminSet.length === 1 ? 'is' : 'are'} set (the Duo Admin API needs all three, or none to turn it off)`,
      });
    }
  }
  if (problems.length > 0) {
    throw new EnvValidationError(problems);
  }
  return out as AppEnv;
}
