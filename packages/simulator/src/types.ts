// Public types of the local Duo simulator. Nothing here is shared with src/duo on purpose.

/** A user in the simulator's directory. */
export interface SimUser {
  /** Primary Duo username (becomes the id_token `sub`). Matched case-insensitively. */
  username: string;
  /** Other names that resolve to this user; recorded as `auth_context.alias`. */
  aliases?: string[];
  /** Duo group names (`auth_context.user.groups`). @default [] */
  groups?: string[];
  /** @default '' */
  email?: string;
  /** `active` shows the prompt, `bypass` skips it, `locked_out`/`disabled` are denied. @default 'active' */
  status?: 'active' | 'bypass' | 'locked_out' | 'disabled';
  /** Name of the enrolled authenticator (`auth_device.name`). @default 'iOS (+1 555-0100)' */
  deviceName?: string;
}

export type NewUserPolicy = 'enroll' | 'allow' | 'deny';
export const NEW_USER_POLICIES: readonly NewUserPolicy[] = ['enroll', 'allow', 'deny'];

/** Factors the prompt offers, by form value (see prompt-page.ts for the names Duo logs). */
export const PROMPT_FACTOR_IDS = [
  'duo_push',
  'duo_mobile_passcode',
  'phone_call',
  'webauthn',
] as const;
export type PromptFactorId = (typeof PROMPT_FACTOR_IDS)[number];

/**
 * Duo's "Authentication policy" of an application: `enforce` (2FA), `bypass` (no prompt, logged
 * `allowed_by_policy`), `deny` (every user refused, `denied_by_policy`).
 */
export type AuthenticationPolicy = 'enforce' | 'bypass' | 'deny';
export const AUTHENTICATION_POLICIES: readonly AuthenticationPolicy[] = [
  'enforce',
  'bypass',
  'deny',
];

/** The Duo-side policy of one application (see the README for what is unconfirmed about Duo). */
export interface SimApplicationPolicy {
  /**
   * Factors this application accepts. The prompt offers only these; a choice (or a scripted
   * outcome's factor) outside them is denied with reason `factor_restricted`. `null`: any.
   * @default null (no restriction)
   */
  allowedFactors?: PromptFactorId[] | null;
  /**
   * Whether a user in `bypass` status skips the prompt here (`bypass_user`). When false such a
   * user is prompted like an active one. @default true
   */
  allowBypass?: boolean;
  /** Unknown users (overrides the simulator-wide `newUserPolicy`). */
  newUserPolicy?: NewUserPolicy;
  /** @default 'enforce' */
  authenticationPolicy?: AuthenticationPolicy;
}

/** One Duo application (a Web SDK integration) the simulator serves. */
export interface SimApplicationInput {
  /** 20 alphanumerics (Duo's are 'DI' + 18 upper-case). */
  clientId: string;
  /** 40 alphanumerics; signs this application's id_tokens and checks its JWTs. */
  clientSecret: string;
  /** `auth_context.application.name`, the prompt's heading and the log's application name. */
  name?: string;
  policy?: SimApplicationPolicy;
}

/** An application as the control API shows it: no secret. */
export interface SimApplicationInfo {
  clientId: string;
  name: string;
  policy: ResolvedApplicationPolicy;
}

/** A policy with its defaults filled in. */
export type ResolvedApplicationPolicy = {
  [K in keyof SimApplicationPolicy]-?: Exclude<SimApplicationPolicy[K], undefined>;
};
/** `fraud`: the user denies and reports fraud; `timeout`: the user never answers. */
export type AutoMode = 'allow' | 'deny' | 'fraud' | 'timeout';
export const AUTO_MODES: readonly AutoMode[] = ['allow', 'deny', 'fraud', 'timeout'];
export type ScriptedOutcomeKind = 'allow' | 'deny' | 'error_redirect' | 'fraud' | 'timeout';
export const SCRIPTED_OUTCOMES: readonly ScriptedOutcomeKind[] = [
  'allow',
  'deny',
  'error_redirect',
  'fraud',
  'timeout',
];

/** A one-shot outcome for the next authorize of one user (POST /__sim/next-outcome). */
export interface ScriptedOutcome {
  username: string;
  outcome: ScriptedOutcomeKind;
  /** `auth_context.reason` on allow, the denial reason otherwise. */
  reason?: string;
  /** `auth_context.factor` on allow. */
  factor?: string;
  /** Wait this long before answering the authorize request. */
  delayMs?: number;
}

export const HEALTH_FAULTS = [
  'down',
  'fail_envelope',
  '500',
  'timeout',
  'reset',
  '429',
  '400',
  '403',
  '404',
] as const;
export type HealthFault = (typeof HEALTH_FAULTS)[number];

export const TOKEN_FAULTS = [
  '400',
  '401',
  '500',
  '429',
  'timeout',
  'malformed_json',
  'huge_body',
  'bad_signature',
  'wrong_alg_hs256',
  'alg_none',
  'wrong_iss',
  'wrong_aud',
  'aud_array',
  'wrong_nonce',
  'missing_nonce',
  'expired',
  'just_inside_leeway',
  'future_iat',
  'wrong_username',
  'case_changed_username',
  'missing_id_token',
  'bad_token_type',
  'string_expires_in',
] as const;
export type TokenFault = (typeof TOKEN_FAULTS)[number];

/** Fault switches (POST /__sim/faults). `null` clears one; omitted keys are left as they are. */
export interface FaultSettings {
  health?: HealthFault | null;
  token?: TokenFault | null;
  /** Clear each fault after it has been applied once. @default false */
  once?: boolean;
}

/** Faults of the Admin API log endpoint: a 429, an outage (503), a 500, no answer, a reset. */
export const ADMIN_FAULTS = ['429', 'outage', '500', 'timeout', 'reset'] as const;
export type AdminFault = (typeof ADMIN_FAULTS)[number];

/** POST /__sim/admin-faults: the fault, how many requests it hits, and the 429's Retry-After. */
export interface AdminFaultSettings {
  /** null clears it. */
  fault: AdminFault | null;
  /** Requests it applies to before it clears itself. @default unlimited */
  count?: number;
  /** Retry-After (seconds) on a 429; null or absent sends none. */
  retryAfterSec?: number | null;
}

export type SimAuthResult = 'success' | 'denied' | 'failure' | 'error' | 'fraud';

/** One entry of the simulator's authentication log: the shape of Duo's Admin API v2 entries. */
export interface SimAuthLogEntry {
  txid: string;
  /** Unix seconds. */
  timestamp: number;
  isotimestamp: string;
  event_type: 'authentication';
  result: SimAuthResult;
  reason: string;
  factor: string;
  alias: string;
  email: string;
  user: { name: string; key: string; groups: string[] };
  application: { key: string; name: string };
  access_device: Record<string, unknown>;
  auth_device: Record<string, unknown>;
  trusted_endpoint_status: string;
  ood_software: null;
  adaptive_trust_assessments: Record<string, unknown>;
}

/** An entry injected through POST /__sim/authlog (a decision Duo made elsewhere, for tests). */
export interface AuthLogInput {
  username: string;
  result: SimAuthResult;
  reason: string;
  txid?: string;
  /** 13-digit Unix ms. @default now */
  timestampMs?: number;
  factor?: string;
  /** @default the first application's client id */
  applicationKey?: string;
  applicationName?: string;
  alias?: string;
  email?: string;
  groups?: string[];
  accessIp?: string;
  userAgent?: string;
  deviceName?: string;
}

/** Counters of endpoint calls and outcomes (GET /__sim/stats). */
export interface SimStats {
  health_check: number;
  authorize: number;
  prompt: number;
  token: number;
  token_success: number;
  token_error: number;
  codes_issued: number;
  denied: number;
  error_redirects: number;
  control: number;
  /** Authentication log requests, and those refused (bad signature, bad parameters). */
  admin_log: number;
  admin_refused: number;
}

export interface SimulatorOptions {
  /** 0 picks a free port. @default 0 */
  port?: number;
  /** @default '127.0.0.1' */
  host?: string;
  /**
   * The public name of this Duo, `host[:port]`, as Duo has one API hostname: the client assertions'
   * `aud` must be `<scheme>://<publicHost>/oauth/v1/...` and id_tokens carry
   * `iss = <scheme>://<publicHost>/oauth/v1/token`, whatever Host header a request carries. The
   * scheme's default port (443 with TLS, 80 without) is dropped, as a URL drops it.
   * @default '<host>:<port listened on>'
   */
  publicHost?: string;
  /** The first application's client id. Generated ('DI' + 18 upper-case alphanumerics) when absent. */
  clientId?: string;
  /** The first application's secret. Generated (40 alphanumerics) when absent. */
  clientSecret?: string;
  /**
   * The applications served. With clientId/clientSecret given, those are the first application
   * (named applicationName, simulator-wide policy) and these follow; without them, the first of
   * these is the first application (none is generated). Client ids must be distinct.
   * @default []
   */
  applications?: SimApplicationInput[];
  /** The directory, or the path of a JSON file holding a SimUser array. @default DEFAULT_USERS */
  users?: SimUser[] | string;
  /** Unknown users, for every application whose policy does not say. @default 'enroll' */
  newUserPolicy?: NewUserPolicy;
  /** Answer authorize at once, without the prompt page. */
  auto?: AutoMode;
  /** Serve HTTPS with this certificate and key. */
  tls?: { cert: string | Buffer; key: string | Buffer };
  /** The first application's name (`auth_context.application.name`, the prompt's heading). @default 'duo-nest demo' */
  applicationName?: string;
  /** On deny, redirect with `error=access_denied` instead of staying on the denial page. @default false */
  errorRedirectOnDeny?: boolean;
  /** Lifetime of authorization codes. @default 60000 */
  codeTtlMs?: number;
  /** Integration key of the Admin API (authentication log). Generated ('DI' + 18) when absent. */
  adminIntegrationKey?: string;
  /** Secret key of the Admin API. Generated (40 alphanumerics) when absent. */
  adminSecretKey?: string;
}

/** What GET /__sim/state returns (no secret in it). */
export interface SimState {
  url: string;
  /** The configured public host (canonical: no default port). */
  publicHost: string;
  /** The first application's client id. */
  clientId: string;
  applications: SimApplicationInfo[];
  applicationName: string;
  newUserPolicy: NewUserPolicy;
  auto: AutoMode | null;
  errorRedirectOnDeny: boolean;
  users: SimUser[];
  faults: { health: HealthFault | null; token: TokenFault | null; once: boolean };
  adminFault: { fault: AdminFault | null; remaining: number | null; retryAfterSec: number | null };
  authLogEntries: number;
  nextOutcomes: ScriptedOutcome[];
  pendingCodes: number;
  pendingTransactions: number;
  stats: SimStats;
}

/** In-process twin of the /__sim control API. */
export interface SimulatorControl {
  state(): SimState;
  stats(): SimStats;
  reset(): void;
  /** Adds or replaces users by primary username; `replace` drops the others first. */
  setUsers(users: SimUser[], replace?: boolean): void;
  nextOutcome(outcome: ScriptedOutcome): void;
  setFaults(faults: FaultSettings): void;
  /** The authentication log, oldest first. */
  authLog(): SimAuthLogEntry[];
  /** Injects entries (decisions Duo made outside this simulator's flows); returns their txids. */
  addAuthLogEntries(entries: AuthLogInput[]): string[];
  setAdminFault(settings: AdminFaultSettings): void;
  /** The applications served (no secrets), the first one first. */
  applications(): SimApplicationInfo[];
  /**
   * Renames the public host (e.g. to a proxy put in front after start); returns it canonical.
   * reset() keeps it: it is the deployment's name, not test state.
   */
  setPublicHost(host: string): string;
  /** Adds applications, or replaces those with the same client id (secret, name, policy). */
  addApplications(apps: SimApplicationInput[]): Promise<SimApplicationInfo[]>;
}

export interface RunningSimulator {
  /** Origin, e.g. http://127.0.0.1:4567. */
  url: string;
  /**
   * What a client configures as its Duo API host: the public host (by default host:port of the
   * listening socket). With a custom publicHost, connect to `url` but name `apiHost`. Follows
   * control.setPublicHost.
   */
  readonly apiHost: string;
  /** `<scheme>://<apiHost>`: the origin of every aud expected and of the id_token iss. */
  readonly publicOrigin: string;
  /** The first application. */
  clientId: string;
  clientSecret: string;
  /** Every application given at start, the first one first (with secrets: the caller gave them). */
  applications: Required<Omit<SimApplicationInput, 'policy'>>[];
  /** Admin API credentials of the authentication log (`GET /admin/v2/logs/authentication`). */
  adminIntegrationKey: string;
  adminSecretKey: string;
  control: SimulatorControl;
  close(): Promise<void>;
}
