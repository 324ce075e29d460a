// Several Duo applications in one DuoModule: named ones from the options (`applications`), and
// tenants loaded from a DuoTenantStore, picked per request by `applicationResolver`. Each has its
// own client (credentials, API host, redirect URI), circuit breaker and health cache, so one
// application's outage or bad credentials never fail another's sign-on.
import { Inject, Injectable, Logger, type OnApplicationShutdown } from '@nestjs/common';
import type { Request } from 'express';
import { DuoCircuitBreaker } from './duo-circuit-breaker.js';
import { DuoClient } from './duo.client.js';
import { validateDuoClientOptions, type DuoClientOptions } from './duo-client-options.js';
import { DuoError, type DuoConfigIssue } from './duo.errors.js';
import type { DuoAuthEvent } from './duo-events.js';
import { DuoHealthService } from './duo-health.service.js';
import type { DuoModuleOptions } from './duo-module-options.interface.js';
import type { NormalizedDuoModuleOptions } from './duo-module-options.js';
import { requestContext } from './duo-request-context.js';
import { DUO_MODULE_OPTIONS } from './duo.module-definition.js';
import { InjectDuoOptions } from './duo.tokens.js';
import { APPLICATION_NAME_RE } from './stores/session-record.js';
import type { MfaSession } from './stores/session-store.interface.js';

/** The name of the application of DuoModule's top-level `clientId` and `clientSecret`. */
export const DUO_DEFAULT_APPLICATION = 'default';

/**
 * One Duo application (a Web SDK application in the Duo Admin Panel): its credentials, and where
 * it differs from the module, its API host and redirect URI. The redirect URI's path must be the
 * module's callback path (one callback route serves every application); its host may differ
 * (a tenant on its own host name).
 */
export interface DuoApplicationConfig {
  /** Client ID of this Duo application (20 characters). */
  clientId: string;
  /** Client secret of this Duo application (40 characters). */
  clientSecret: string;
  /** @default DuoModule's `apiHost` */
  apiHost?: string;
  /** @default DuoModule's `redirectUri` */
  redirectUri?: string;
}

/**
 * Where `applicationResolver`'s tenants come from. `get` answers the tenant's application, or
 * undefined for a name it does not know; DuoModule validates what it answers with the rules of
 * the options (a tenant with invalid settings is refused alone, audited) and caches the clients
 * it builds (`tenantCache`).
 */
export interface DuoTenantStore {
  get(name: string): Promise<DuoApplicationConfig | undefined>;
}

/** A DuoTenantStore held in memory (tests, or a fixed list); `set` and `delete` change it at run time. */
export class MemoryDuoTenantStore implements DuoTenantStore {
  readonly #tenants = new Map<string, DuoApplicationConfig>();

  constructor(tenants: Record<string, DuoApplicationConfig> = {}) {
    for (const [name, config] of Object.entries(tenants)) {
      this.#tenants.set(name, { ...config });
    }
  }

  get(name: string): Promise<DuoApplicationConfig | undefined> {
    const config = this.#tenants.get(name);
    return Promise.resolve(config ? { ...config } : undefined);
  }

  set(name: string, config: DuoApplicationConfig): void {
    this.#tenants.set(name, { ...config });
  }

  delete(name: string): void {
    this.#tenants.delete(name);
  }
}

/** The multi-application options of DuoModule, normalised. */
export interface NormalizedDuoApplications {
  /** Named applications of the options (not `default`), as client options ready to validate. */
  named: ReadonlyMap<string, DuoClientOptions>;
  /** Names that stand for another application (`{ admin: 'default' }`). */
  aliases: ReadonlyMap<string, string>;
  resolver?: (req: Request) => string | Promise<string>;
  tenants?: DuoTenantStore;
  tenantCache: { max: number; ttlMs: number };
  /** The step-up route's path (POST starts, GET shows its form). */
  stepUpPath: string;
}

const CLIENT_KEYS = new Set(['clientId', 'clientSecret', 'apiHost', 'redirectUri']);

/** The client options of one application: the module's shared ones with its own on top. */
export function applicationClientOptions(
  shared: DuoClientOptions,
  config: DuoApplicationConfig,
): DuoClientOptions {
  const { transport: _t, ...rest } = shared as DuoClientOptions & { transport?: unknown };
  return {
    ...rest,
    clientId: config.clientId,
    clientSecret: config.clientSecret,
    apiHost: config.apiHost ?? shared.apiHost,
    redirectUri: config.redirectUri ?? shared.redirectUri,
  };
}

/**
 * Checks one application's settings as the options are checked (plus the callback path): the
 * issues found, each field prefixed with `where`. Secrets are never quoted.
 */
export function checkApplication(
  where: string,
  config: unknown,
  shared: DuoClientOptions,
  callbackPath: string,
): { issues: DuoConfigIssue[]; options?: DuoClientOptions } {
  if (typeof config !== 'object' || config === null || Array.isArray(config)) {
    return {
      issues: [
        { field: where, message: 'must be { clientId, clientSecret, apiHost?, redirectUri? }' },
      ],
    };
  }
  const unknown = Object.keys(config).filter((k) => !CLIENT_KEYS.has(k));
  const options = applicationClientOptions(shared, config as DuoApplicationConfig);
  const { issues, normalized } = validateDuoClientOptions(options);
  // The transport built for the check is not kept (the client builds its own).
  void normalized.transport.close().catch(() => undefined);
  const out = issues
    .filter((i) => ['clientId', 'clientSecret', 'apiHost', 'redirectUri'].includes(i.field))
    .map((i) => ({ field: `${where}.${i.field}`, message: i.message }));
  for (const key of unknown) {
    out.push({ field: `${where}.${key}`, message: 'is not an application setting' });
  }
  if (
    out.length === 0 &&
    options.redirectUri !== shared.redirectUri &&
    new URL(options.redirectUri).pathname !== callbackPath
  ) {
    out.push({
      field: `${where}.redirectUri`,
      message: `must have the callback route's path ${callbackPath} (one route serves every application)`,
    });
  }
  return out.length > 0 ? { issues: out } : { issues: [], options };
}

/**
 * The multi-application options, checked at boot (with the top-level options' rules): every
 * named application's settings, alias targets, the resolver, the tenant store and its cache.
 */
export function normalizeApplications(
  issues: DuoConfigIssue[],
  options: DuoModuleOptions,
  shared: DuoClientOptions,
  callbackPath: string,
): NormalizedDuoApplications {
  const named = new Map<string, DuoClientOptions>();
  const aliases = new Map<string, string>();
  const given = options.applications ?? {};
  if (typeof given !== 'object' || given === null || Array.isArray(given)) {
    issues.push({ field: 'applications', message: 'must be an object of named applications' });
  } else {
    for (const [name, config] of Object.entries(given)) {
      const where = `applications.${name}`;
      if (!APPLICATION_NAME_RE.test(name)) {
        issues.push({ field: where, message: 'names must be 1 to 64 of A-Z a-z 0-9 _ . -' });
      } else if (name === DUO_DEFAULT_APPLICATION) {
        // Merged into the top-level options by withDefaultApplication.
      } else if (typeof config === 'string') {
        aliases.set(name, config);
      } else {
        const checked = checkApplication(where, config, shared, callbackPath);
        issues.push(...checked.issues);
        if (checked.options) {
          named.set(name, checked.options);
        }
      }
    }
    for (const [name, target] of aliases) {
      if (target !== DUO_DEFAULT_APPLICATION && !named.has(target)) {
        issues.push({
          field: `applications.${name}`,
          message: 'an alias must name `default` or an application given with credentials',
        });
      }
    }
  }
  const resolver = options.applicationResolver;
  if (resolver !== undefined && typeof resolver !== 'function') {
    issues.push({ field: 'applicationResolver', message: 'must be a function (req) => name' });
  }
  const tenants = options.tenants;
  if (tenants !== undefined && typeof tenants?.get !== 'function') {
    issues.push({ field: 'tenants', message: 'must be a DuoTenantStore ({ get(name) })' });
  }
  const max = options.tenantCache?.max ?? 100;
  const ttlMs = options.tenantCache?.ttlMs ?? 300_000;
  if (!Number.isSafeInteger(max) || max < 1 || max > 100_000) {
    issues.push({ field: 'tenantCache.max', message: 'must be an integer from 1 to 100000' });
  }
  if (!Number.isSafeInteger(ttlMs) || ttlMs < 1_000) {
    issues.push({ field: 'tenantCache.ttlMs', message: 'must be an integer of at least 1000' });
  }
  const base = callbackPath.replace(/\/[^/]*$/, '');
  return {
    named,
    aliases,
    ...(typeof resolver === 'function' ? { resolver } : {}),
    ...(tenants && typeof tenants.get === 'function' ? { tenants } : {}),
    tenantCache: { max, ttlMs },
    stepUpPath: `${base}/step-up`,
  };
}

/**
 * `applications.default` given instead of the top-level clientId and clientSecret: the same
 * application. Both given is refused (which one is meant would be a guess).
 */
export function withDefaultApplication(
  issues: DuoConfigIssue[],
  options: DuoModuleOptions,
): DuoModuleOptions {
  const given = options.applications?.[DUO_DEFAULT_APPLICATION];
  if (given === undefined) {
    return options;
  }
  if (typeof given !== 'object' || given === null) {
    issues.push({
      field: 'applications.default',
      message: 'must be { clientId, clientSecret, apiHost?, redirectUri? }',
    });
    return options;
  }
  if (options.clientId !== undefined || options.clientSecret !== undefined) {
    issues.push({
      field: 'applications.default',
      message:
        'give the default application once: top-level clientId/clientSecret or applications.default',
    });
    return options;
  }
  return {
    ...options,
    clientId: given.clientId,
    clientSecret: given.clientSecret,
    apiHost: given.apiHost ?? options.apiHost,
    redirectUri: given.redirectUri ?? options.redirectUri,
  };
}

/** One application ready for a sign-on: its client, breaker and health cache. */
export interface DuoApplication {
  name: string;
  client: DuoClient;
  breaker: DuoCircuitBreaker;
  health: DuoHealthService;
}

interface CachedTenant {
  /** The application, or the refusal to repeat while the entry lives (a bad tenant). */
  value: DuoApplication | DuoError;
  loadedAt: number;
}

/** The request marker of a step-up start: the application it must start (see DuoStepUpRoute). */
const STEP_UP = Symbol('duo:step-up');

/** Marks `req` as a step-up into `application`: the start uses it, and never fails open. */
export function markStepUp(req: Request, application: string): void {
  (req as Request & { [STEP_UP]?: string })[STEP_UP] = application;
}

/** The application a step-up start asked for, if `req` is one. */
export function stepUpOf(req: Request): string | undefined {
  return (req as Request & { [STEP_UP]?: string })[STEP_UP];
}

/**
 * The applications of a DuoModule: `default` (the top-level credentials, with the module's own
 * client, breaker and health check), the named ones of `applications`, and tenants of `tenants`.
 */
@Injectable()
export class DuoApplications implements OnApplicationShutdown {
  private readonly logger = new Logger('Duo');
  private readonly built = new Map<string, DuoApplication>();
  private readonly tenantCache = new Map<string, CachedTenant>();
  private readonly loading = new Map<string, Promise<CachedTenant>>();
  readonly config: NormalizedDuoApplications;

  constructor(
    private readonly client: DuoClient,
    private readonly breaker: DuoCircuitBreaker,
    private readonly health: DuoHealthService,
    @InjectDuoOptions() private readonly options: NormalizedDuoModuleOptions,
    @Inject(DUO_MODULE_OPTIONS) private readonly raw: DuoModuleOptions,
  ) {
    this.config = options.applicationsConfig;
  }

  /** The canonical name of `name` (an alias resolved). */
  canonical(name: string): string {
    return this.config.aliases.get(name) ?? name;
  }

  /** True when `name` is `default`, a named application, or an alias of one (no tenant lookup). */
  isStatic(name: string): boolean {
    const c = this.canonical(name);
    return c === DUO_DEFAULT_APPLICATION || this.config.named.has(c);
  }

  /**
   * The application a request signs on with or must have satisfied: the step-up's, else the
   * resolver's answer, else `default`. A resolver's throw or odd answer is a 400.
   */
  async nameFor(req: Request): Promise<string> {
    const stepUp = stepUpOf(req);
    if (stepUp !== undefined) {
      return this.canonical(stepUp);
    }
    if (!this.config.resolver) {
      return DUO_DEFAULT_APPLICATION;
    }
    let name: unknown;
    try {
      name = await this.config.resolver(req);
    } catch (err) {
      throw new DuoError('invalid_request', 'This site is not set up for two-factor sign-on', {
        cause: err,
      });
    }
    if (typeof name !== 'string' || !APPLICATION_NAME_RE.test(name)) {
      throw new DuoError('invalid_request', 'This site is not set up for two-factor sign-on');
    }
    return this.canonical(name);
  }

  /**
   * The application named `name`, built once (named ones) or loaded from the tenant store and
   * cached (tenants: at most `tenantCache.max`, each for `tenantCache.ttlMs`, the least recently
   * used evicted first). An unknown name is a 400 (`invalid_request`); a tenant whose settings
   * fail the options' rules is a 500 (`config`) for that tenant alone, reported once per load as
   * `mfa_unavailable` (reason `application_invalid`, the bad fields in `detail`, never a value).
   */
  async get(name: string, req?: Request): Promise<DuoApplication> {
    const canonical = this.canonical(name);
    if (canonical === DUO_DEFAULT_APPLICATION) {
      return this.defaultApplication();
    }
    const named = this.config.named.get(canonical);
    if (named) {
      return this.buildOnce(canonical, named);
    }
    if (!this.config.tenants) {
      throw new DuoError('invalid_request', 'This site is not set up for two-factor sign-on');
    }
    const cached = await this.tenant(canonical, req);
    if (cached.value instanceof DuoError) {
      throw cached.value;
    }
    return cached.value;
  }

  private defaultApplication(): DuoApplication {
    let app = this.built.get(DUO_DEFAULT_APPLICATION);
    if (!app) {
      app = {
        name: DUO_DEFAULT_APPLICATION,
        client: this.client,
        breaker: this.breaker,
        health: this.health,
      };
      this.built.set(DUO_DEFAULT_APPLICATION, app);
    }
    return app;
  }

  private buildOnce(name: string, options: DuoClientOptions): DuoApplication {
    let app = this.built.get(name);
    if (!app) {
      app = this.build(name, options);
      this.built.set(name, app);
    }
    return app;
  }

  /** A client with its own breaker and health cache: one application's outage stays its own. */
  private build(name: string, options: DuoClientOptions): DuoApplication {
    const o = this.options;
    const client = new DuoClient({ ...options, onDuoCall: o.onDuoCall });
    const breaker = new DuoCircuitBreaker({
      failureThreshold: o.breakerFailureThreshold,
      cooldownMs: o.breakerCooldownMs,
      maxConcurrent: o.maxConcurrentDuoCalls,
    });
    return { name, client, breaker, health: new DuoHealthService(client, breaker, o) };
  }

  private async tenant(name: string, req?: Request): Promise<CachedTenant> {
    const now = Date.now();
    const hit = this.tenantCache.get(name);
    if (hit && now - hit.loadedAt < this.config.tenantCache.ttlMs) {
      // Least recently used last out: a hit moves to the end of the Map's order.
      this.tenantCache.delete(name);
      this.tenantCache.set(name, hit);
      return hit;
    }
    let pending = this.loading.get(name);
    if (!pending) {
      pending = this.load(name, req).finally(() => this.loading.delete(name));
      this.loading.set(name, pending);
    }
    const loaded = await pending;
    this.remember(name, loaded);
    return loaded;
  }

  private async load(name: string, req?: Request): Promise<CachedTenant> {
    const loadedAt = Date.now();
    let config: DuoApplicationConfig | undefined;
    try {
      config = await this.config.tenants!.get(name);
    } catch (err) {
      // The store is down: nothing cached, the next request asks again.
      throw new DuoError('unavailable', 'Two-factor settings could not be read; try again', {
        cause: err,
      });
    }
    if (config === undefined) {
      return {
        value: new DuoError('invalid_request', 'This site is not set up for two-factor sign-on'),
        loadedAt,
      };
    }
    const shared = this.sharedClientOptions();
    const checked = checkApplication(`tenants.${name}`, config, shared, this.options.callbackPath);
    if (!checked.options) {
      this.logger.error(
        `Tenant ${name} has invalid Duo settings (${checked.issues.map((i) => i.field).join(', ')}): its sign-ons are refused`,
      );
      await this.report({
        type: 'mfa_unavailable',
        outcome: 'failure',
        reason: 'application_invalid',
        detail: {
          application: name,
          fields: checked.issues.map((i) => i.field.replace(`tenants.${name}.`, '')).join(','),
        },
        ...(req ? requestContext(req) : {}),
      });
      return {
        value: new DuoError(
          'config',
          'Two-factor authentication is misconfigured for this site; contact your administrator',
        ),
        loadedAt,
      };
    }
    return { value: this.build(name, checked.options), loadedAt };
  }

  private remember(name: string, entry: CachedTenant): void {
    const old = this.tenantCache.get(name);
    this.tenantCache.delete(name);
    if (old && old !== entry) {
      this.retire(old);
    }
    this.tenantCache.set(name, entry);
    while (this.tenantCache.size > this.config.tenantCache.max) {
      const [oldest, evicted] = this.tenantCache.entries().next().value as [string, CachedTenant];
      this.tenantCache.delete(oldest);
      this.retire(evicted);
    }
  }

  private retire(entry: CachedTenant): void {
    if (!(entry.value instanceof DuoError)) {
      void entry.value.client.close().catch(() => undefined);
    }
  }

  /** Tenants cached now (their clients are open). */
  get cachedTenants(): number {
    return this.tenantCache.size;
  }

  /** The module's settings every application shares (timeouts, proxy, CA, fetch, http for tests). */
  private sharedClientOptions(): DuoClientOptions {
    const r = this.raw;
    return {
      clientId: '',
      clientSecret: '',
      apiHost: r.apiHost,
      redirectUri: r.redirectUri,
      timeoutMs: r.timeoutMs,
      clockToleranceMs: r.clockToleranceMs,
      maxResponseBytes: r.maxResponseBytes,
      allowInsecureHttp: r.allowInsecureHttp,
      fetch: r.fetch,
      proxy: r.proxy,
      noProxy: r.noProxy,
      ca: r.ca,
      caFile: r.caFile,
    };
  }

  private async report(event: DuoAuthEvent): Promise<void> {
    try {
      await this.options.onEvent?.(event);
    } catch {
      this.logger.error(`Could not record ${event.type}`);
    }
  }

  async onApplicationShutdown(): Promise<void> {
    for (const [name, app] of this.built) {
      if (name !== DUO_DEFAULT_APPLICATION) {
        await app.client.close().catch(() => undefined);
      }
    }
    for (const entry of this.tenantCache.values()) {
      this.retire(entry);
    }
    this.tenantCache.clear();
  }
}

/**
 * The applications a session satisfied and when (seconds): its record, or for a record written
 * before named applications, `default` at its auth time. A fail-open session satisfied none.
 */
export function satisfiedApplications(session: MfaSession): Record<string, number> {
  if (!session.mfa) {
    return {};
  }
  return session.applications ?? { [DUO_DEFAULT_APPLICATION]: session.authTime ?? 0 };
}

/**
 * What a new session records after an MFA of `application` at `authTime`: that, plus what the
 * browser's current session of the SAME user had satisfied within `maxAgeMs` (a step-up adds to
 * the session instead of replacing it). Another user's session, a fail-open one, or none: only
 * this application.
 */
export function mergedApplications(
  previous: MfaSession | undefined,
  username: string,
  application: string,
  authTime: number,
  maxAgeMs: number,
  now = Date.now(),
): Record<string, number> {
  const merged: Record<string, number> = {};
  if (previous && previous.username === username && previous.mfa) {
    for (const [name, t] of Object.entries(satisfiedApplications(previous))) {
      if (now - t * 1000 < maxAgeMs) {
        merged[name] = t;
      }
    }
  }
  merged[application] = authTime;
  return merged;
}
