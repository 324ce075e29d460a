import { randomBytes } from 'node:crypto';
import {
  DEFAULT_USERS,
  startSimulator,
  type HealthFault,
  type NewUserPolicy,
  type RunningSimulator,
  type ScriptedOutcomeKind,
  type SimAuthLogEntry,
  type SimStats,
  type SimulatorControl,
  type SimUser,
  type TokenFault,
} from '@duo-nest/simulator';

/**
 * The authentication methods of the simulator's prompt, as `signInWithDuo` picks them. Duo reports
 * them in `auth_context.factor` as `duo_push`, `duo_mobile_passcode`, `phone_call` and
 * `WebAuthn Security Key`.
 */
export type DuoTestFactor = 'duo_push' | 'duo_mobile_passcode' | 'phone_call' | 'webauthn';

const FACTORS: readonly DuoTestFactor[] = [
  'duo_push',
  'duo_mobile_passcode',
  'phone_call',
  'webauthn',
];

/** One user of the simulator's directory. */
export interface DuoTestUser {
  /** Duo username (the id_token `sub`), matched case-insensitively. */
  username: string;
  /** Duo groups (`auth_context.user.groups`, what `@RequireDuoGroups()` checks). @default [] */
  groups?: string[];
  /** The method the user approves with on the prompt. @default 'duo_push' */
  factor?: DuoTestFactor;
  /** `bypass` skips the prompt, `locked_out` and `disabled` are denied by Duo. @default 'active' */
  status?: 'active' | 'bypass' | 'locked_out' | 'disabled';
  aliases?: string[];
  email?: string;
}

/** Options of {@link startDuoSimulator}. */
export interface DuoSimulatorOptions {
  /**
   * The directory: usernames or users. @default the simulator's demo users (`alice`: groups
   * admins and staff; `bob`: staff; `locked`: locked out; `disabled`; `bypass`)
   */
  users?: (string | DuoTestUser)[];
  /** Users Duo lets through without a prompt (`auth_context.reason` bypass_user). */
  bypass?: string[];
  /** Users Duo refuses as locked out. */
  locked?: string[];
  /**
   * What Duo does with a username not in the directory: `enroll` treats it as an enrolled user,
   * `allow` lets it through unenrolled, `deny` refuses it. @default 'enroll'
   */
  newUserPolicy?: NewUserPolicy;
  /** Duo-shaped credentials; generated when absent. */
  clientId?: string;
  clientSecret?: string;
  /** The application name Duo shows and reports. @default 'duo-nest test' */
  applicationName?: string;
  /** @default '127.0.0.1' */
  host?: string;
}

/** What {@link DuoTestSimulator.nextOutcome} scripts: Duo's answer to the user's next sign-on. */
export type DuoTestOutcome = ScriptedOutcomeKind;

/** A running in-process Duo simulator with the test kit's controls. */
export interface DuoTestSimulator {
  /** Origin, e.g. `http://127.0.0.1:41234` (what DuoModule's `apiHost` takes). */
  readonly url: string;
  readonly clientId: string;
  readonly clientSecret: string;
  /** A random session secret for the apps under test (what {@link duoTestOptions} uses). */
  readonly sessionSecret: string;
  /** The underlying simulator (its full control API: `simulator.control`). */
  readonly simulator: RunningSimulator;
  /**
   * Scripts Duo's answer to the next sign-on of one user (once): `deny` (the user taps Deny,
   * reason `user_mistake`), `fraud`, `timeout` (the user never answers: `no_response`),
   * `error_redirect` (Duo sends the browser back with `error=access_denied`), or `allow` (with
   * `factor`, `reason`). `delayMs` holds Duo's answer that long.
   */
  nextOutcome(
    outcome: DuoTestOutcome,
    target: string | { username: string; reason?: string; factor?: string; delayMs?: number },
  ): void;
  /**
   * Makes Duo's health check fail until cleared with `null` (or once, with `{ once: true }`):
   * `down` answers 503, `timeout` never answers, `reset` drops the connection, and the rest
   * answer that status. With failmode closed the app then refuses new sign-ons (503).
   */
  healthFault(fault: HealthFault | null, options?: { once?: boolean }): void;
  /** Makes Duo's token endpoint misbehave (status codes, timeouts, bad id_tokens); `null` clears. */
  tokenFault(fault: TokenFault | null, options?: { once?: boolean }): void;
  /** Duo is down: its health check answers 503 until {@link clearFaults}. */
  duoDown(): void;
  clearFaults(): void;
  /** Adds or replaces users (by username); with `replace`, the directory is exactly these. */
  setUsers(users: (string | DuoTestUser)[], options?: { replace?: boolean }): void;
  /** Back to the starting directory; scripted outcomes, faults and pending codes dropped. */
  reset(): void;
  stats(): SimStats;
  /** Duo's authentication log (the Admin API's view), oldest first. */
  authLog(): SimAuthLogEntry[];
  /** The prompt method of a user (the directory's, else `duo_push`). */
  factorOf(username: string): DuoTestFactor;
  close(): Promise<void>;
}

/** Running test simulators by origin: `signInWithDuo` finds a user's prompt method here. */
const running = new Map<string, DuoTestSimulator>();

/** The test simulator serving this origin, if it runs in this process. */
export function simulatorAt(origin: string): DuoTestSimulator | undefined {
  return running.get(origin);
}

function toUser(entry: string | DuoTestUser, index: number): DuoTestUser {
  const user = typeof entry === 'string' ? { username: entry } : entry;
  if (typeof user.username !== 'string' || user.username.trim() === '') {
    throw new TypeError(`users[${index}].username must be a non-empty string`);
  }
  if (user.factor !== undefined && !FACTORS.includes(user.factor)) {
    throw new TypeError(`users[${index}].factor must be one of ${FACTORS.join(', ')}`);
  }
  return user;
}

/** The directory: the users, then bypass and locked ones (a later entry replaces an earlier one). */
function directory(options: DuoSimulatorOptions): DuoTestUser[] {
  const users = (options.users ?? DEFAULT_USERS.map((u) => ({ ...u }))).map(toUser);
  for (const username of options.bypass ?? []) {
    users.push({ username, status: 'bypass' });
  }
  for (const username of options.locked ?? []) {
    users.push({ username, status: 'locked_out' });
  }
  const byName = new Map<string, DuoTestUser>();
  for (const user of users) {
    byName.set(user.username.toLowerCase(), user);
  }
  return [...byName.values()];
}

function simUsers(users: readonly DuoTestUser[]): SimUser[] {
  return users.map(({ username, groups, status, aliases, email }) => ({
    username,
    groups,
    status,
    aliases,
    email,
  }));
}

/**
 * Starts a local Duo in this process on a free port of 127.0.0.1 (plain HTTP), with a user
 * directory. The prompt is real: {@link signInWithDuo} answers it as the user would, with the
 * user's `factor`.
 *
 * @example
 * const sim = await startDuoSimulator({
 *   users: [{ username: 'alice', groups: ['admins'] }, 'bob'],
 *   bypass: ['svc-backup'],
 *   locked: ['mallory'],
 * });
 * afterAll(() => sim.close());
 */
export async function startDuoSimulator(
  options: DuoSimulatorOptions = {},
): Promise<DuoTestSimulator> {
  const initial = directory(options);
  const simulator = await startSimulator({
    port: 0,
    host: options.host ?? '127.0.0.1',
    users: simUsers(initial),
    newUserPolicy: options.newUserPolicy ?? 'enroll',
    applicationName: options.applicationName ?? 'duo-nest test',
    clientId: options.clientId,
    clientSecret: options.clientSecret,
  });
  const control: SimulatorControl = simulator.control;
  const factors = new Map<string, DuoTestFactor>();
  const remember = (users: readonly DuoTestUser[], replace: boolean) => {
    if (replace) {
      factors.clear();
    }
    for (const user of users) {
      factors.set(user.username.toLowerCase(), user.factor ?? 'duo_push');
    }
  };
  remember(initial, true);

  const sim: DuoTestSimulator = {
    url: simulator.url,
    clientId: simulator.clientId,
    clientSecret: simulator.clientSecret,
    sessionSecret: randomBytes(36).toString('base64url'),
    simulator,
    nextOutcome(outcome, target) {
      const scripted = typeof target === 'string' ? { username: target } : target;
      control.nextOutcome({ ...scripted, outcome });
    },
    healthFault(fault, { once = false } = {}) {
      control.setFaults({ health: fault, once });
    },
    tokenFault(fault, { once = false } = {}) {
      control.setFaults({ token: fault, once });
    },
    duoDown() {
      control.setFaults({ health: 'down', once: false });
    },
    clearFaults() {
      control.setFaults({ health: null, token: null, once: false });
    },
    setUsers(users, { replace = false } = {}) {
      const parsed = users.map(toUser);
      control.setUsers(simUsers(parsed), replace);
      remember(parsed, replace);
    },
    reset() {
      control.reset();
      remember(initial, true);
    },
    stats: () => control.stats(),
    authLog: () => control.authLog(),
    factorOf: (username) => factors.get(username.toLowerCase()) ?? 'duo_push',
    async close() {
      running.delete(simulator.url);
      await simulator.close();
    },
  };
  running.set(simulator.url, sim);
  return sim;
}
