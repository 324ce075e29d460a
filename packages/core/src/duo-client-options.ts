import {
  DUO_BOUNDS,
  DUO_CLIENT_ID_LENGTH,
  DUO_CLIENT_SECRET_LENGTH,
  DUO_DEFAULTS,
  DUO_MESSAGES,
  DUO_REDIRECT_URI_MAX_LENGTH,
} from './duo.constants.js';
import { DuoConfigError, type DuoConfigIssue, type DuoErrorCode } from './duo.errors.js';
import { buildDuoTransport, DuoTransport } from './duo-transport.js';

/** What the Duo client needs; DuoModule options extend it. */
export interface DuoClientOptions {
  /** Client ID of the Duo Web SDK application (20 characters). */
  clientId: string;
  /** Client secret of the Duo application (40 characters). Keep it in a secret store. */
  clientSecret: string;
  /**
   * API hostname, such as `api-xxxxxxxx.duosecurity.com` (optionally with `:port`). With
   * `allowInsecureHttp`, an `http://host:port` URL of a local simulator is accepted too.
   */
  apiHost: string;
  /** Absolute URL of the callback route that receives Duo's redirect (at most 256 characters). */
  redirectUri: string;
  /** Total time allowed for one call to Duo, connection included. @default 5000 */
  timeoutMs?: number;
  /** Clock tolerance for id_token exp/iat/nbf, in ms (0..300000). @default 60000 */
  clockToleranceMs?: number;
  /** Largest Duo response body read, in bytes. @default 65536 */
  maxResponseBytes?: number;
  /** Test-only: allow a plain http:// Duo (the local simulator) and an http:// redirect URI. @default false */
  allowInsecureHttp?: boolean;
  /**
   * The fetch implementation (tests). With a proxy or a CA configured it receives the undici
   * dispatcher as `init.dispatcher` and must use it. @default undici's fetch with a proxy or CA,
   * else globalThis.fetch
   */
  fetch?: typeof fetch;
  /**
   * The HTTP(S) proxy for every call to Duo: `http://host:port`, `http://user:password@host:port`
   * or `https://...` (a proxy reached over TLS); Duo's TLS runs end to end through a CONNECT
   * tunnel. `false`: always direct, whatever the environment says. The credentials never appear in
   * a message, a log or these options once normalized (only the proxy's origin does).
   * @default from the environment as curl reads it: https_proxy, then HTTPS_PROXY (http_proxy for
   * an http:// simulator), unless Duo's host matches noProxy
   */
  proxy?: string | false;
  /**
   * Hosts reached directly even when a proxy is set, as curl's NO_PROXY: comma-separated; `*`;
   * `example.com` (and its subdomains; `.example.com` and `*.example.com` mean the same);
   * IP addresses and CIDR blocks (`10.0.0.0/8`); `host:port` for one port only.
   * @default from the environment: no_proxy, then NO_PROXY
   */
  noProxy?: string;
  /**
   * Extra CA certificates (PEM) trusted for Duo's certificate, in addition to Node's default roots:
   * a company CA that re-signs TLS (TLS inspection). Verification is never turned off; a value
   * without a certificate, or holding a private key, is refused at boot. @default none
   */
  ca?: string | Buffer;
  /** Path of a PEM bundle read once at boot, added as `ca` is (unreadable or empty: refused at boot). @default none */
  caFile?: string;
  /**
   * Observes every call to Duo (metrics): the endpoint, 'success' or the DuoErrorCode, and the HTTP
   * round trip in ms. Must not throw (a throw is ignored). @default none
   */
  onDuoCall?: DuoCallObserver;
}

/** The Duo endpoints the client calls. */
export type DuoCallEndpoint = 'health_check' | 'token';

/** See `DuoClientOptions.onDuoCall`. */
export type DuoCallObserver = (
  endpoint: DuoCallEndpoint,
  result: 'success' | DuoErrorCode,
  durationMs: number,
) => void;

export interface NormalizedDuoClientOptions {
  clientId: string;
  clientSecret: string;
  /** `https://<api host>` (or the simulator's http origin): the base of every Duo URL. */
  apiOrigin: string;
  redirectUri: string;
  timeoutMs: number;
  clockToleranceMs: number;
  maxResponseBytes: number;
  allowInsecureHttp: boolean;
  fetch: typeof fetch;
  /** The proxy's origin without credentials, or false when Duo is reached directly. */
  proxy: string | false;
  /** The NO_PROXY list in force (given or from the environment). */
  noProxy: string;
  /** The extra CA certificates trusted for Duo (PEM), '' for none. */
  ca: string;
  /** The CA file read at boot, '' for none. */
  caFile: string;
  /** How every call reaches Duo (proxy, CA); built once at boot. */
  transport: DuoTransport;
}

const CLIENT_ID_RE = new RegExp(`^[A-Z0-9]{${DUO_CLIENT_ID_LENGTH}}$`);
const CLIENT_SECRET_RE = new RegExp(`^[A-Za-z0-9]{${DUO_CLIENT_SECRET_LENGTH}}$`);
const HOSTNAME_RE =
  /^(?=.{1,253}(?::|$))[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*(?::(?:[1-9][0-9]{0,4}))?$/;
const LOOPBACK_HOSTS = new Set(['localhost', '127.0.0.1', '[::1]']);

export function isValidClientId(value: unknown): value is string {
  return typeof value === 'string' && CLIENT_ID_RE.test(value);
}

export function isValidClientSecret(value: unknown): value is string {
  return typeof value === 'string' && CLIENT_SECRET_RE.test(value);
}

/**
 * Turns an API host setting into the origin of every Duo URL, or returns the reason it is invalid.
 * A bare `host[:port]` becomes `https://host[:port]`; an `http://host:port` URL is accepted only when
 * insecure http is allowed (a local simulator). The origin is canonical (WHATWG URL): host in lower
 * case, the scheme's default port (443, or 80 for http) dropped, so URLs, aud and iss all agree.
 */
export function parseApiHost(
  value: unknown,
  allowInsecureHttp: boolean,
): { origin: string } | { error: string } {
  if (typeof value !== 'string' || value.length === 0) {
    return { error: DUO_MESSAGES.apiHost };
  }
  if (HOSTNAME_RE.test(value)) {
    const port = Number(value.split(':')[1] ?? 443);
    if (port > 65535) {
      return { error: DUO_MESSAGES.apiHost };
    }
    // The default :443 is dropped once, as fetch's Host header drops it: kept here, it would put a
    // port into aud and iss that Duo's name does not carry. The name itself is used verbatim
    // (the protocol's rule; the SDKs' byte-exact vectors keep `api-XXXXXXX` in upper case).
    const [name] = value.split(':');
    return { origin: port === 443 ? `https://${name}` : `https://${name}:${port}` };
  }
  if (/^https?:\/\//i.test(value)) {
    if (!allowInsecureHttp) {
      return {
        error: value.toLowerCase().startsWith('http:')
          ? DUO_MESSAGES.apiHostInsecure
          : DUO_MESSAGES.apiHost,
      };
    }
    let url: URL;
    try {
      url = new URL(value);
    } catch {
      return { error: DUO_MESSAGES.apiHost };
    }
    const bare = url.pathname === '/' && !/[?#@]/.test(value) && !url.username && !url.password;
    if (!bare) {
      return { error: DUO_MESSAGES.apiHost };
    }
    return { origin: url.origin };
  }
  return { error: DUO_MESSAGES.apiHost };
}

export function isValidRedirectUri(value: unknown, allowInsecureHttp: boolean): value is string {
  if (
    typeof value !== 'string' ||
    value.length === 0 ||
    value.length > DUO_REDIRECT_URI_MAX_LENGTH
  ) {
    return false;
  }
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return false;
  }
  if (url.hash || value.includes('#') || url.username || url.password) {
    return false;
  }
  if (url.protocol === 'https:') {
    return true;
  }
  return url.protocol === 'http:' && (allowInsecureHttp || LOOPBACK_HOSTS.has(url.hostname));
}

function checkInteger(
  issues: DuoConfigIssue[],
  field: string,
  value: number | undefined,
  fallback: number,
  bounds: { min: number; max: number },
): number {
  if (value === undefined) {
    return fallback;
  }
  if (!Number.isInteger(value) || value < bounds.min || value > bounds.max) {
    issues.push({ field, message: DUO_MESSAGES.range(bounds.min, bounds.max) });
  }
  return value;
}

/**
 * Checks every option and returns the issues found (empty when valid) with the normalized options.
 * The app's environment validation reuses it, so code and env follow the same rules.
 */
export function validateDuoClientOptions(
  options: DuoClientOptions,
  env: NodeJS.ProcessEnv = process.env,
): {
  issues: DuoConfigIssue[];
  normalized: NormalizedDuoClientOptions;
} {
  const issues: DuoConfigIssue[] = [];
  const allowInsecureHttp = options.allowInsecureHttp === true;
  if (!isValidClientId(options.clientId)) {
    issues.push({ field: 'clientId', message: DUO_MESSAGES.clientId });
  }
  if (!isValidClientSecret(options.clientSecret)) {
    issues.push({ field: 'clientSecret', message: DUO_MESSAGES.clientSecret });
  }
  const host = parseApiHost(options.apiHost, allowInsecureHttp);
  if ('error' in host) {
    issues.push({ field: 'apiHost', message: host.error });
  }
  if (!isValidRedirectUri(options.redirectUri, allowInsecureHttp)) {
    issues.push({ field: 'redirectUri', message: DUO_MESSAGES.redirectUri });
  }
  const timeoutMs = checkInteger(
    issues,
    'timeoutMs',
    options.timeoutMs,
    DUO_DEFAULTS.timeoutMs,
    DUO_BOUNDS.timeoutMs,
  );
  const clockToleranceMs = checkInteger(
    issues,
    'clockToleranceMs',
    options.clockToleranceMs,
    DUO_DEFAULTS.clockToleranceMs,
    DUO_BOUNDS.clockToleranceMs,
  );
  const maxResponseBytes = checkInteger(
    issues,
    'maxResponseBytes',
    options.maxResponseBytes,
    DUO_DEFAULTS.maxResponseBytes,
    DUO_BOUNDS.maxResponseBytes,
  );
  if (options.fetch !== undefined && typeof options.fetch !== 'function') {
    issues.push({ field: 'fetch', message: 'must be a fetch-compatible function' });
  }
  const origin = 'origin' in host ? host.origin : '';
  const fetchImpl = typeof options.fetch === 'function' ? options.fetch : undefined;
  // Options normalized once already (DuoModule hands them to the client) carry their transport:
  // reuse it, as its proxy credentials are no longer in the options.
  const given = (options as { transport?: unknown }).transport;
  const built =
    given instanceof DuoTransport
      ? { transport: given, issues: [], noProxy: (options as { noProxy?: string }).noProxy ?? '' }
      : buildDuoTransport(options, { apiOrigin: origin, timeoutMs, fetch: fetchImpl }, env);
  issues.push(...built.issues);
  const transport =
    built.transport ?? new DuoTransport(undefined, { apiOrigin: origin, timeoutMs });
  return {
    issues,
    normalized: {
      clientId: options.clientId,
      clientSecret: options.clientSecret,
      apiOrigin: 'origin' in host ? host.origin : '',
      redirectUri: options.redirectUri,
      timeoutMs,
      clockToleranceMs,
      maxResponseBytes,
      allowInsecureHttp,
      fetch: options.fetch ?? globalThis.fetch.bind(globalThis),
      proxy: transport.proxy,
      noProxy: built.noProxy,
      ca: caText(options.ca),
      caFile: typeof options.caFile === 'string' ? options.caFile : '',
      transport,
    },
  };
}

/** Validates and normalizes, throwing one DuoConfigError that lists every bad option. */
export function normalizeDuoClientOptions(options: DuoClientOptions): NormalizedDuoClientOptions {
  const { issues, normalized } = validateDuoClientOptions(options ?? ({} as DuoClientOptions));
  if (issues.length > 0) {
    throw new DuoConfigError(issues);
  }
  return normalized;
}

function caText(ca: unknown): string {
  return typeof ca === 'string' ? ca : Buffer.isBuffer(ca) ? ca.toString('utf8') : '';
}
