import { randomBytes } from 'node:crypto';
import {
  applicationList,
  type ApplicationRegistry,
  parseApplication,
  type SimApplication,
} from './applications.js';
import { AuthLog, buildEntry, checkAuthLogInput } from './auth-log.js';
import { canonicalPublicHost } from './context.js';
import {
  ADMIN_FAULTS,
  SCRIPTED_OUTCOMES,
  type AdminFault,
  type AdminFaultSettings,
  type AuthLogInput,
  type SimAuthLogEntry,
  type SimAuthResult,
  HEALTH_FAULTS,
  TOKEN_FAULTS,
  type FaultSettings,
  type HealthFault,
  type ScriptedOutcome,
  type SimApplicationInfo,
  type SimApplicationInput,
  type SimState,
  type SimStats,
  type SimUser,
  type SimulatorControl,
  type TokenFault,
} from './types.js';
import { parseUser, UserDirectory } from './users.js';

/** A validated authorize request waiting on the prompt page. */
export interface Transaction {
  /** The application the authorize request named; its policy and name apply. */
  clientId: string;
  redirectUri: string;
  state: string;
  useDuoCode: boolean;
  nonce: string | undefined;
  duoUname: string;
  user: SimUser;
  alias: string;
  accessIp: string | null;
  userAgent: string;
  expiresAt: number;
}

/** A completed authentication, bound to an authorization code. */
export interface Grant {
  /** `auth_context.txid`, fixed when the authentication completes. */
  txid: string;
  /** Only this application may redeem the code. */
  clientId: string;
  redirectUri: string;
  duoUname: string;
  user: SimUser;
  alias: string;
  nonce: string | undefined;
  factor: string;
  reason: string;
  authTimeMs: number;
  accessIp: string | null;
  userAgent: string;
  expiresAt: number;
}

/** Prompt transactions live this long (the user may take a while on the page). */
export const TRANSACTION_TTL_MS = 10 * 60_000;
/** Bounds on in-memory maps so a stuck client cannot grow them without end. */
const MAX_ENTRIES = 200_000;

export function randomId(bytes = 32): string {
  return randomBytes(bytes).toString('base64url');
}

function emptyStats(): SimStats {
  return {
    health_check: 0,
    authorize: 0,
    prompt: 0,
    token: 0,
    token_success: 0,
    token_error: 0,
    codes_issued: 0,
    denied: 0,
    error_redirects: 0,
    control: 0,
    admin_log: 0,
    admin_refused: 0,
  };
}

export interface StoreConfig {
  url: string;
  scheme: 'http' | 'https';
  /** The public host at start (canonical). */
  publicHost: string;
  /** Simulator-wide default for applications added without a newUserPolicy. */
  newUserPolicy: SimState['newUserPolicy'];
  auto: SimState['auto'];
  errorRedirectOnDeny: boolean;
  codeTtlMs: number;
  initialUsers: readonly SimUser[];
}

/** Everything mutable in one simulator: directory, codes, prompt transactions, jtis, switches. */
export class SimStore implements SimulatorControl {
  readonly users: UserDirectory;
  readonly codes = new Map<string, Grant>();
  readonly transactions = new Map<string, Transaction>();
  /** jti → expiry (ms) of client assertions already used. */
  private readonly jtis = new Map<string, number>();
  private readonly outcomes = new Map<string, ScriptedOutcome>();
  private faults: { health: HealthFault | null; token: TokenFault | null; once: boolean } = {
    health: null,
    token: null,
    once: false,
  };
  counters: SimStats = emptyStats();
  /** Every decision, in the shape of Duo's Admin API v2 authentication log. */
  readonly log = new AuthLog();
  private adminFault: {
    fault: AdminFault | null;
    remaining: number | null;
    retryAfterSec: number | null;
  } = { fault: null, remaining: null, retryAfterSec: null };

  /** The public host in force (canonical); setPublicHost changes it, reset() does not. */
  private publicHostNow: string;

  constructor(
    readonly config: StoreConfig,
    readonly apps: ApplicationRegistry,
  ) {
    this.users = new UserDirectory(config.initialUsers);
    this.publicHostNow = config.publicHost;
  }

  get publicHost(): string {
    return this.publicHostNow;
  }

  /** `<scheme>://<public host>`: the origin of every aud expected and of the id_token iss. */
  get publicOrigin(): string {
    return `${this.config.scheme}://${this.publicHostNow}`;
  }

  setPublicHost(host: string): string {
    this.publicHostNow = canonicalPublicHost(host, this.config.scheme);
    return this.publicHostNow;
  }

  /** The application a client id names, or undefined. */
  app(clientId: string | undefined): SimApplication | undefined {
    return this.apps.get(clientId);
  }

  /**
   * Appends one decision to the authentication log: the txid (the id_token's auth_context.txid for
   * a success), the user, the application the request named (its client id and name), factor,
   * result and reason.
   */
  recordDecision(
    tx: Pick<Transaction, 'clientId' | 'user' | 'alias' | 'accessIp' | 'userAgent'>,
    decision: {
      result: SimAuthResult;
      reason: string;
      factor: string;
      txid?: string;
      atMs?: number;
    },
  ): string {
    const built = buildEntry({
      username: tx.user.username,
      alias: tx.alias === tx.user.username ? '' : tx.alias,
      email: tx.user.email,
      groups: tx.user.groups,
      deviceName: tx.user.deviceName,
      accessIp: tx.accessIp ?? undefined,
      userAgent: tx.userAgent,
      result: decision.result,
      reason: decision.reason,
      factor: decision.factor,
      txid: decision.txid,
      timestampMs: decision.atMs,
      applicationKey: tx.clientId,
      // An application replaced or dropped since keeps its key; its name is looked up now.
      applicationName: this.app(tx.clientId)?.name ?? '',
    });
    this.log.add(built);
    return built.entry.txid;
  }

  // --- in-process control handle ---

  state(): SimState {
    const c = this.config;
    const first = this.apps.first;
    return {
      url: c.url,
      publicHost: this.publicHostNow,
      clientId: first.clientId,
      applications: this.apps.list(),
      applicationName: first.name,
      newUserPolicy: c.newUserPolicy,
      auto: c.auto,
      errorRedirectOnDeny: c.errorRedirectOnDeny,
      users: this.users.list(),
      faults: { ...this.faults },
      adminFault: { ...this.adminFault },
      authLogEntries: this.log.size,
      nextOutcomes: [...this.outcomes.values()],
      pendingCodes: this.codes.size,
      pendingTransactions: this.transactions.size,
      stats: this.stats(),
    };
  }

  stats(): SimStats {
    return { ...this.counters };
  }

  reset(): void {
    this.users.replace(this.config.initialUsers);
    this.apps.reset();
    this.codes.clear();
    this.transactions.clear();
    this.jtis.clear();
    this.outcomes.clear();
    this.faults = { health: null, token: null, once: false };
    this.counters = emptyStats();
    this.log.clear();
    this.adminFault = { fault: null, remaining: null, retryAfterSec: null };
  }

  authLog(): SimAuthLogEntry[] {
    return this.log.all();
  }

  addAuthLogEntries(entries: AuthLogInput[]): string[] {
    if (!Array.isArray(entries) || entries.length > 200_000) {
      throw new Error('entries must be an array of at most 200000 entries');
    }
    const checked = entries.map(checkAuthLogInput);
    return checked.map((input) => {
      const key = input.applicationKey ?? this.apps.first.clientId;
      const built = buildEntry({
        ...input,
        applicationKey: key,
        applicationName: input.applicationName ?? this.app(key)?.name ?? '',
      });
      this.log.add(built);
      return built.entry.txid;
    });
  }

  applications(): SimApplicationInfo[] {
    return this.apps.list();
  }

  async addApplications(apps: SimApplicationInput[]): Promise<SimApplicationInfo[]> {
    const parsed = applicationList(apps).map((a, i) =>
      parseApplication(a, i, { name: 'Web SDK', newUserPolicy: this.config.newUserPolicy }),
    );
    await this.apps.upsert(parsed);
    return this.apps.list();
  }

  setAdminFault(settings: AdminFaultSettings): void {
    const { fault, count, retryAfterSec } = settings;
    if (fault !== null && !ADMIN_FAULTS.includes(fault)) {
      throw new Error(`fault must be one of ${ADMIN_FAULTS.join(', ')} or null`);
    }
    if (count !== undefined && !(Number.isInteger(count) && count >= 1 && count <= 1_000_000)) {
      throw new Error('count must be an integer from 1 to 1000000');
    }
    if (
      retryAfterSec !== undefined &&
      retryAfterSec !== null &&
      !(Number.isInteger(retryAfterSec) && retryAfterSec >= 0 && retryAfterSec <= 3600)
    ) {
      throw new Error('retryAfterSec must be an integer from 0 to 3600 or null');
    }
    this.adminFault = {
      fault,
      remaining: fault === null ? null : (count ?? null),
      retryAfterSec: retryAfterSec ?? null,
    };
  }

  /** The Admin API fault to apply to this request (counted down), or null. */
  takeAdminFault(): { fault: AdminFault; retryAfterSec: number | null } | null {
    const { fault, remaining, retryAfterSec } = this.adminFault;
    if (fault === null) {
      return null;
    }
    if (remaining !== null) {
      this.adminFault.remaining = remaining - 1;
      if (remaining - 1 <= 0) {
        this.adminFault = { fault: null, remaining: null, retryAfterSec: null };
      }
    }
    return { fault, retryAfterSec };
  }

  setUsers(users: SimUser[], replace = false): void {
    const checked = users.map(parseUser);
    if (replace) {
      this.users.replace(checked);
    } else {
      this.users.upsert(checked);
    }
  }

  nextOutcome(outcome: ScriptedOutcome): void {
    const { username, delayMs } = outcome;
    if (typeof username !== 'string' || username === '') {
      throw new Error('username must be a non-empty string');
    }
    if (!SCRIPTED_OUTCOMES.includes(outcome.outcome)) {
      throw new Error(`outcome must be one of ${SCRIPTED_OUTCOMES.join(', ')}`);
    }
    for (const field of ['reason', 'factor'] as const) {
      if (outcome[field] !== undefined && typeof outcome[field] !== 'string') {
        throw new Error(`${field} must be a string`);
      }
    }
    if (
      delayMs !== undefined &&
      !(Number.isInteger(delayMs) && delayMs >= 0 && delayMs <= 60_000)
    ) {
      throw new Error('delayMs must be an integer between 0 and 60000');
    }
    this.outcomes.set(username.toLowerCase(), { ...outcome });
  }

  setFaults(faults: FaultSettings): void {
    const { health, token, once } = faults;
    if (health !== undefined && health !== null && !HEALTH_FAULTS.includes(health)) {
      throw new Error(`health must be one of ${HEALTH_FAULTS.join(', ')} or null`);
    }
    if (token !== undefined && token !== null && !TOKEN_FAULTS.includes(token)) {
      throw new Error(`token must be one of ${TOKEN_FAULTS.join(', ')} or null`);
    }
    if (once !== undefined && typeof once !== 'boolean') {
      throw new Error('once must be a boolean');
    }
    if (health !== undefined) {
      this.faults.health = health;
    }
    if (token !== undefined) {
      this.faults.token = token;
    }
    if (once !== undefined) {
      this.faults.once = once;
    }
  }

  // --- used by the endpoints ---

  /** The scripted outcome for this name (requested name or primary username), consumed. */
  takeOutcome(duoUname: string, primary: string): ScriptedOutcome | undefined {
    for (const key of [duoUname.toLowerCase(), primary.toLowerCase()]) {
      const found = this.outcomes.get(key);
      if (found) {
        this.outcomes.delete(key);
        return found;
      }
    }
    return undefined;
  }

  /** The active fault of one kind; with `once`, taking it clears it. */
  takeHealthFault(): HealthFault | null {
    const fault = this.faults.health;
    if (fault && this.faults.once) {
      this.faults.health = null;
    }
    return fault;
  }

  /** Token faults are looked at first and cleared (with `once`) only when actually applied. */
  peekTokenFault(): TokenFault | null {
    return this.faults.token;
  }

  consumeTokenFault(): void {
    if (this.faults.once) {
      this.faults.token = null;
    }
  }

  /** Records a jti; false when it was already used and has not expired yet. */
  useJti(jti: string, expSec: number, nowMs: number): boolean {
    const seen = this.jtis.get(jti);
    if (seen !== undefined && seen > nowMs) {
      return false;
    }
    this.jtis.set(jti, expSec * 1000);
    return true;
  }

  issueCode(grant: Grant): string {
    const code = randomId(32);
    this.codes.set(code, grant);
    this.counters.codes_issued++;
    return code;
  }

  /** Codes are single-use: any lookup removes them. */
  takeCode(code: string): Grant | undefined {
    const grant = this.codes.get(code);
    this.codes.delete(code);
    return grant;
  }

  addTransaction(tx: Transaction): string {
    const id = randomId(24);
    this.transactions.set(id, tx);
    return id;
  }

  takeTransaction(id: string, nowMs: number): Transaction | undefined {
    const tx = this.transactions.get(id);
    this.transactions.delete(id);
    if (tx && tx.expiresAt <= nowMs) {
      this.recordTimeout(tx);
      return undefined;
    }
    return tx;
  }

  /** A prompt left unanswered until it expired: logged once, as Duo logs a timeout (unconfirmed). */
  recordTimeout(tx: Transaction): void {
    this.recordDecision(tx, {
      result: 'failure',
      reason: 'no_response',
      factor: 'duo_push',
      atMs: tx.expiresAt,
    });
  }

  /** Drops expired entries; also trims the oldest when a map outgrows its bound. */
  sweep(nowMs: number): void {
    for (const [key, tx] of this.transactions) {
      if (tx.expiresAt <= nowMs) {
        this.recordTimeout(tx);
      }
      if (tx.expiresAt <= nowMs || this.transactions.size > MAX_ENTRIES) {
        this.transactions.delete(key);
      }
    }
    for (const [key, value] of this.codes) {
      if (value.expiresAt <= nowMs || this.codes.size > MAX_ENTRIES) {
        this.codes.delete(key);
      }
    }
    for (const [jti, exp] of this.jtis) {
      if (exp <= nowMs || this.jtis.size > MAX_ENTRIES) {
        this.jtis.delete(jti);
      }
    }
  }
}
