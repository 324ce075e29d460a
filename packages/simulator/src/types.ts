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
  /** @default the simulator's client id (its Universal Prompt application) */
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
  /** Generated ('DI' + 18 upper-case alphanumerics) when absent. */
  clientId?: string;
  /** Generated (40 alphanumerics) when absent. */
  clientSecret?: string;
  /** The directory, or the path of a JSON file holding a SimUser array. @default DEFAULT_USERS */
  users?: SimUser[] | string;
  /** @default 'enroll' */
  newUserPolicy?: NewUserPolicy;
  /** Answer authorize at once, without the prompt page. */
  auto?: AutoMode;
  /** Serve HTTPS with this certificate and key. */
  tls?: { cert: string | Buffer; key: string | Buffer };
  /** `auth_context.application.name` and the prompt's heading. @default 'duo-nest demo' */
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
  clientId: string;
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
}

export interface RunningSimulator {
  /** Origin, e.g. http://127.0.0.1:4567. */
  url: string;
  /** host:port, what a client configures as its Duo API host. */
  apiHost: string;
  clientId: string;
  clientSecret: string;
  /** Admin API credentials of the authentication log (`GET /admin/v2/logs/authentication`). */
  adminIntegrationKey: string;
  adminSecretKey: string;
  control: SimulatorControl;
  close(): Promise<void>;
}
