import type { Request } from 'express';
import type { DuoApplicationConfig, DuoTenantStore } from './duo-applications.js';
import type { DuoClientOptions } from './duo-client-options.js';
import type { DuoAuthEvent } from './duo-events.js';
import type { DuoMfaPolicy } from './duo-mfa-policy.js';
import type { PendingLoginStore } from './stores/pending-login-store.interface.js';
import type { RateLimitStore } from './stores/rate-limit-store.interface.js';
import type { DuoRedisConnection } from './stores/redis-connection.js';
import type { SessionStore } from './stores/session-store.interface.js';

/**
 * The sign-on caps (fixed windows). Starts are counted per client IP before anything else, then
 * per username (the push-bombing defence: each start sends a push); Duo's redirects back are
 * counted per client IP. Over a cap: 429 with Retry-After, no Duo call, and one `rate_limited`
 * event per key and window (reason `login_ip`, `login_user` or `callback_ip`). A counter store
 * that fails lets the request through (logged): sign-on depends on the same store anyway.
 * A cap of 0 turns that cap off.
 */
export interface DuoLimitsOptions {
  /** Length of one counting window. @default 600000 (10 minutes) */
  windowMs?: number;
  /** Sign-on starts per client IP (IPv6: per `ipv6Subnet` network) and window. @default 100 */
  startsPerIp?: number;
  /** Sign-on starts (Duo pushes) per username and window; case and Unicode form folded. @default 5 */
  startsPerUser?: number;
  /** Requests to the callback route per client IP and window. @default 100 */
  callbacksPerIp?: number;
  /**
   * Prefix length that groups IPv6 clients for the per-IP caps (a host usually holds a whole /64,
   * so single addresses rotate freely); 128 counts each address. IPv4-mapped IPv6 counts as IPv4.
   * @default 64
   */
  ipv6Subnet?: number;
  /**
   * Where the counters live. @default the pending-login store's backing: `redis` under
   * `<redisKeyPrefix>rl:` (shared by every instance), else in memory (bounded, one instance)
   */
  store?: RateLimitStore;
}

/** The CSRF check of the sign-on start (a signed double-submit token plus Origin and Sec-Fetch-Site). */
export interface DuoCsrfOptions {
  /**
   * Origins a start may come from (the `Origin` header; absent or "null" leaves it to the token).
   * @default the origin of `redirectUri`
   */
  allowedOrigins?: string[];
}

/**
 * Where the module's callback sends a single-page front end's browser (same-origin paths). With
 * it, the callback never answers with a page: success goes to the pending login's return path
 * (for a JSON start without `returnTo`: `successUrl`), and every failure goes to `errorUrl` with
 * the stable code alone in the query: `?error=<DuoErrorCode>` (never a token, code or state).
 */
export interface DuoFrontEndOptions {
  /** Where a JSON-started sign-on lands after MFA when it named no `returnTo`, such as `/app/`. */
  successUrl: string;
  /** Where every callback failure lands, with `?error=<code>` added. @default successUrl */
  errorUrl?: string;
}

/** Options of DuoModule.forRoot / forRootAsync. Durations are in ms. */
export interface DuoModuleOptions extends Omit<DuoClientOptions, 'clientId' | 'clientSecret'> {
  /** Client ID of the `default` Duo application (or give `applications.default`). */
  clientId?: string;
  /** Client secret of the `default` Duo application (or give `applications.default`). */
  clientSecret?: string;
  /**
   * Named Duo applications besides `default` (the top-level clientId/clientSecret; or give it here
   * as `default` instead): each with its own credentials, and optionally its own apiHost and
   * redirectUri (same path as the callback route). `@RequireMfa({ application: 'admin' })` steps a
   * session up into one. A string value is an alias (`{ admin: 'default' }`: routes that ask for
   * `admin` are satisfied by `default`). Checked at boot with the rules of the top-level options.
   * @default { default: the top-level credentials }
   */
  applications?: Record<string, DuoApplicationConfig | string>;
  /**
   * Multi-tenant: picks the application of each request (by host, path or a header), for the
   * sign-on start and for MfaGuard (a session must have satisfied the request's application).
   * Names not among `applications` are loaded from `tenants`. A throw or a name that is not
   * `[A-Za-z0-9][A-Za-z0-9_.-]{0,63}` refuses the request (400). @default every request: `default`
   */
  applicationResolver?: (req: Request) => string | Promise<string>;
  /** Where the resolver's tenants come from (see DuoTenantStore, MemoryDuoTenantStore). */
  tenants?: DuoTenantStore;
  /** Tenant clients kept: at most `max` (least recently used evicted), each for `ttlMs`. @default { max: 100, ttlMs: 300000 } */
  tenantCache?: { max?: number; ttlMs?: number };
  /** Redirect straight to Duo after the first factor; false shows the "Sign on with Duo" button page. @default true */
  skipButtonPress?: boolean;
  /** Text of the button page's button; set, it wins over the message catalogue. @default the catalogue's ('Sign on with Duo') */
  displayName?: string;
  /** Custom CSS for the button page (no `<`); it applies in every language. @default '' */
  css?: string;
  /**
   * Languages of the library's pages (button, message and error pages), chosen by the request's
   * Accept-Language (q-values; `de-CH` matches `de`); the first is the default. Built in: `en`,
   * `de` (complete) and `ar` (partial, right-to-left, English for the rest). @default ['en', 'de']
   */
  locales?: string[];
  /**
   * A fixed language for every page (one of `locales`), overriding Accept-Language; or a resolver
   * asked first (an answer outside `locales` falls back to Accept-Language). @default Accept-Language
   */
  locale?: string | ((req: Request) => string | undefined);
  /**
   * Answer the sign-on start with JSON when it is a JSON request (`Content-Type:
   * application/json`) that prefers `Accept: application/json` over text/html; a form post keeps
   * the 303 whatever it accepts: 200 `{ authorizeUrl }` instead of the 303 or the button page (the same
   * browser-binding cookie is set), fail-open as 200 `{ signedIn: true, mfa: false, failOpen:
   * true, returnTo }`, refusals as the library's JSON. false: always the 303 or page. @default true
   */
  jsonStart?: boolean;
  /** A single-page front end's landing routes for the callback; see DuoFrontEndOptions. @default none */
  frontEnd?: DuoFrontEndOptions;
  /**
   * The factor and bypass policy of every MFA route (MfaGuard). `factors`: the factors accepted
   * everywhere (DUO_FACTORS names); a route's @RequireMfa({ factors }) replaces it. `allowBypass`:
   * whether routes WITHOUT @RequireMfa accept a session Duo let through without a second factor
   * (a bypass user); routes with @RequireMfa refuse bypass unless they say `allowBypass: true`.
   * Refusals are 403 `mfa_policy` with a `reason`, and an `access_denied` event carrying it.
   * @default { allowBypass: true } (any factor; plain MFA routes accept bypass, as before)
   */
  policy?: DuoMfaPolicy;
  /** Show "Powered by Duo" on the button page. @default false */
  showPoweredBy?: boolean;
  /** What happens when Duo cannot be reached before the redirect: 'closed' refuses sign-on. @default 'closed' */
  failmode?: 'closed' | 'open';
  /**
   * What becomes of fail-open sessions (failmode 'open'). `reverifyWhenDuoIsBack`: once Duo's
   * health check answers again, MfaGuard ends a fail-open session on its next request (audited as
   * `session_expired`, reason `failopen_reverify`) and sends the user to sign on, now through Duo.
   * The check is the module's cached, single-flight health check (healthCacheMs; 2 s after a
   * failure), run only for fail-open sessions. @default { reverifyWhenDuoIsBack: true }
   */
  failOpen?: { reverifyWhenDuoIsBack?: boolean };
  /**
   * How long a health-check answer is reused, and the period of the background probe. 0: no cache
   * and no background probe (every sign-on asks Duo). @default 10000
   */
  healthCacheMs?: number;
  /**
   * Probe Duo's health check in the background every `healthCacheMs` (jittered by up to ±15 %, one
   * call in flight at a time, stopped at shutdown), so health reports and sign-ons read a recent
   * answer instead of a guess. With `redis`, one instance per interval probes (a lease key) and
   * writes a sealed answer every instance reads; the shared answer never decides a fail-open
   * sign-on (see DuoHealthService). @default true
   */
  healthProbe?: boolean;
  /** How long a started sign-on waits for Duo's callback. @default 600000 */
  pendingTtlMs?: number;
  /**
   * Where the username comes from after the first factor. @default `req.user.username` when an
   * earlier guard (a Passport strategy, say) set `req.user`, else the `username` form field (the
   * body then holds only `username` and `returnTo`, strictly parsed)
   */
  usernameResolver?: (req: Request) => unknown;
  /**
   * Serve the callback route at the path of `redirectUri` (GET only). false: no route; the app
   * calls `DuoSignOn.start()` and `DuoSignOn.finish()` from its own routes. @default true
   */
  routes?: boolean;
  /** Where the browser goes after MFA when the sign-on named no same-origin path. @default '/' */
  defaultReturnTo?: string;
  /** The sign-on page HTML requests are sent to when a route needs MFA. @default '/' */
  signOnPath?: string;
  /**
   * Signs the session and binding cookies (>= 32 characters), and, through a key derived from it
   * for that use alone (HKDF-SHA256, info 'duo-nest/store-record/v1'), seals every record the
   * built-in stores keep: a pending login or session edited, or copied under another key, in Redis
   * (or memory) fails its MAC, is dropped, and is reported as `store_record_invalid`.
   */
  sessionSecret: string;
  /**
   * The session secret before the last rotation (>= 32 characters): session and binding cookies,
   * CSRF tokens and store records it signed are still accepted, so a rotation signs nobody out;
   * records are sealed again with `sessionSecret` on their next write. It never signs or seals.
   * Drop it once the longest session lifetime has passed.
   */
  sessionSecretPrevious?: string;
  /** Idle timeout of an MFA session. @default 900000 */
  sessionIdleTimeoutMs?: number;
  /** Absolute timeout of an MFA session. @default 28800000 */
  sessionAbsoluteTimeoutMs?: number;
  /** Mark cookies Secure (and use the __Host- prefix). @default true unless allowInsecureHttp */
  secureCookies?: boolean;
  /**
   * Redis for pending logins and sessions shared by every instance: one Redis, or a Redis
   * Cluster (then `redisKeyPrefix` must hold a hash tag). An ioredis `Redis` or `Cluster` fits
   * {@link DuoRedisConnection} as it is. Absent: in memory (one instance).
   */
  redis?: DuoRedisConnection;
  /**
   * Prefix of every Redis key of the built-in stores (`<prefix>pending:`, `<prefix>sess:`).
   *
   * On Redis Cluster it must hold a hash tag, such as `{duo}:`: the stores' Lua scripts touch
   * several keys at once (a record and its index), which Cluster allows only within one hash slot,
   * and the tag (the text between the first `{` and the next `}`, together with any ioredis
   * `keyPrefix`) puts every key of the stores in one slot. A Cluster with an untagged prefix is
   * refused at boot. Every key of the stores thus lives on one master: Cluster spreads other data,
   * not these stores' load. @default 'duo:'
   */
  redisKeyPrefix?: string;
  /**
   * Custom stores (they win over `redis`). DuoModule cannot seal what they keep: a custom store
   * must guard its own records (for example with the exported StoreRecordSealer and a key derived
   * from your secret), or keep them where nobody else can write. The built-in memory and Redis
   * stores seal every record.
   */
  stores?: { pendingLogins?: PendingLoginStore; sessions?: SessionStore };
  /** Receives every auth event before the response is sent (the audit trail). A throw on a success
   *  event refuses the sign-on ('audit_unavailable'). */
  onEvent?: (event: DuoAuthEvent) => Promise<void> | void;
  /** How often expired pending logins are swept and reported as abandoned. @default 30000 */
  sweepIntervalMs?: number;
  /** Consecutive Duo outages (network, timeout, 5xx, 429) that open the circuit breaker. @default 5 */
  breakerFailureThreshold?: number;
  /** How long the open circuit fails fast before one probe call is let through. @default 10000 */
  breakerCooldownMs?: number;
  /** Calls to Duo in flight at once; more fail at once with 'busy' (503). @default 32 */
  maxConcurrentDuoCalls?: number;
  /**
   * The sign-on caps (per IP, per username, per IP on the callback), on by default.
   * `false` turns every cap off: DANGEROUS, an escape hatch for apps that enforce the same caps
   * elsewhere (without the per-username cap, anyone who knows a username can flood its owner with
   * Duo pushes). @default {} (every cap at its default)
   */
  limits?: DuoLimitsOptions | false;
  /**
   * The CSRF check of the sign-on start, on by default: the start must carry the token of
   * `@DuoFormFields()` (hidden field `_csrf`, or header `X-CSRF-Token`) and must not come from
   * another origin; a refusal is 403 `csrf_failed` with one `input_validation_failed` event per
   * source and window. `false` turns it off: DANGEROUS (login CSRF: another site can sign a
   * browser on as someone else), only for apps that check the same request themselves before the
   * start. @default {}
   */
  csrf?: DuoCsrfOptions | false;
}
