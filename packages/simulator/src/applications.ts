// The Duo applications one simulator serves: each has its own client id, secret (its JWT keys) and
// Duo-side policy. Users are shared, as they are across one Duo account's applications.
import { readFileSync } from 'node:fs';
import { importAppKeys, type AppKeys } from './jwt.js';
import {
  AUTHENTICATION_POLICIES,
  NEW_USER_POLICIES,
  PROMPT_FACTOR_IDS,
  type NewUserPolicy,
  type PromptFactorId,
  type SimApplicationInfo,
  type ResolvedApplicationPolicy,
  type SimApplicationInput,
} from './types.js';

/** One application, ready to check JWTs and sign id_tokens. */
export interface SimApplication {
  clientId: string;
  name: string;
  policy: ResolvedApplicationPolicy;
  keys: AppKeys;
}

/** Bound on applications, so the control API cannot grow the registry without end. */
export const MAX_APPLICATIONS = 1000;
const CLIENT_ID_RE = /^[A-Za-z0-9]{20}$/;
const CLIENT_SECRET_RE = /^[A-Za-z0-9]{40}$/;

function isObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

/** Validates one untrusted policy; missing fields take the defaults. */
export function parsePolicy(
  input: unknown,
  where: string,
  defaultNewUserPolicy: NewUserPolicy,
): ResolvedApplicationPolicy {
  if (input === undefined) {
    input = {};
  }
  if (!isObject(input)) {
    throw new Error(`${where} must be an object`);
  }
  const known = ['allowedFactors', 'allowBypass', 'newUserPolicy', 'authenticationPolicy'];
  const unknown = Object.keys(input).find((k) => !known.includes(k));
  if (unknown !== undefined) {
    throw new Error(
      `${where}: unknown field ${JSON.stringify(unknown)} (known: ${known.join(', ')})`,
    );
  }
  const { allowedFactors, allowBypass, newUserPolicy, authenticationPolicy } = input;
  if (
    allowedFactors !== undefined &&
    allowedFactors !== null &&
    (!Array.isArray(allowedFactors) ||
      allowedFactors.length === 0 ||
      allowedFactors.some((f) => !PROMPT_FACTOR_IDS.includes(f as PromptFactorId)))
  ) {
    throw new Error(
      `${where}.allowedFactors must be a non-empty array of ${PROMPT_FACTOR_IDS.join(', ')}`,
    );
  }
  if (allowBypass !== undefined && typeof allowBypass !== 'boolean') {
    throw new Error(`${where}.allowBypass must be a boolean`);
  }
  if (newUserPolicy !== undefined && !NEW_USER_POLICIES.includes(newUserPolicy as NewUserPolicy)) {
    throw new Error(`${where}.newUserPolicy must be one of ${NEW_USER_POLICIES.join(', ')}`);
  }
  if (
    authenticationPolicy !== undefined &&
    !AUTHENTICATION_POLICIES.includes(authenticationPolicy as never)
  ) {
    throw new Error(
      `${where}.authenticationPolicy must be one of ${AUTHENTICATION_POLICIES.join(', ')}`,
    );
  }
  return {
    allowedFactors: Array.isArray(allowedFactors)
      ? [...new Set(allowedFactors as PromptFactorId[])]
      : null,
    allowBypass: allowBypass ?? true,
    newUserPolicy: (newUserPolicy as NewUserPolicy | undefined) ?? defaultNewUserPolicy,
    authenticationPolicy:
      (authenticationPolicy as ResolvedApplicationPolicy['authenticationPolicy']) ?? 'enforce',
  };
}

/** A validated application: shape of the credentials, name, policy (secrets are never echoed). */
export interface ParsedApplication {
  clientId: string;
  clientSecret: string;
  name: string;
  policy: ResolvedApplicationPolicy;
}

/** Validates one untrusted application (options, file or control API). */
export function parseApplication(
  input: unknown,
  index: number,
  defaults: { name: string; newUserPolicy: NewUserPolicy },
): ParsedApplication {
  const where = `applications[${index}]`;
  if (!isObject(input)) {
    throw new Error(`${where} must be an object`);
  }
  const { clientId, clientSecret, name } = input;
  if (typeof clientId !== 'string' || !CLIENT_ID_RE.test(clientId)) {
    throw new Error(`${where}.clientId must be 20 alphanumeric characters (e.g. DI + 18)`);
  }
  if (typeof clientSecret !== 'string' || !CLIENT_SECRET_RE.test(clientSecret)) {
    throw new Error(`${where}.clientSecret must be 40 alphanumeric characters`);
  }
  if (name !== undefined && (typeof name !== 'string' || name.trim() === '' || name.length > 100)) {
    throw new Error(`${where}.name must be a non-empty string of at most 100 characters`);
  }
  return {
    clientId,
    clientSecret,
    name: name ?? defaults.name,
    policy: parsePolicy(input.policy, `${where}.policy`, defaults.newUserPolicy),
  };
}

/** `[...]` or `{ "applications": [...] }`, as a file or the control API gives them. */
export function applicationList(input: unknown): unknown[] {
  const list = isObject(input) && 'applications' in input ? input.applications : input;
  if (!Array.isArray(list)) {
    throw new Error('applications must be an array (or an object with an "applications" array)');
  }
  return list;
}

/** Throws when two applications share a client id. */
export function assertDistinct(apps: readonly { clientId: string }[]): void {
  const seen = new Set<string>();
  for (const { clientId } of apps) {
    if (seen.has(clientId)) {
      throw new Error(`applications: client id ${clientId} is given twice`);
    }
    seen.add(clientId);
  }
}

/**
 * Reads an applications file: a JSON array of `{ clientId, clientSecret, name?, policy? }`, or
 * `{ "applications": [...] }`. Every entry is validated (names default when the simulator starts).
 */
export function loadApplicationsFile(path: string): SimApplicationInput[] {
  const list = applicationList(JSON.parse(readFileSync(path, 'utf8')));
  list.forEach((a, i) => parseApplication(a, i, { name: 'Web SDK', newUserPolicy: 'enroll' }));
  return list as SimApplicationInput[];
}

async function load(app: ParsedApplication): Promise<SimApplication> {
  return {
    clientId: app.clientId,
    name: app.name,
    policy: app.policy,
    keys: await importAppKeys(app.clientSecret),
  };
}

export function describeApplication(app: SimApplication): SimApplicationInfo {
  return {
    clientId: app.clientId,
    name: app.name,
    policy: {
      ...app.policy,
      allowedFactors: app.policy.allowedFactors ? [...app.policy.allowedFactors] : null,
    },
  };
}

/** The applications by client id, in the order they were added; reset() restores the start set. */
export class ApplicationRegistry {
  private byId = new Map<string, SimApplication>();

  private constructor(private readonly initial: readonly SimApplication[]) {
    this.reset();
  }

  static async create(apps: readonly ParsedApplication[]): Promise<ApplicationRegistry> {
    if (apps.length === 0) {
      throw new Error('at least one application is needed');
    }
    assertDistinct(apps);
    return new ApplicationRegistry(await Promise.all(apps.map(load)));
  }

  /** The first application (the simulator's `clientId`). */
  get first(): SimApplication {
    return this.initial[0];
  }

  get(clientId: string | undefined): SimApplication | undefined {
    return clientId === undefined ? undefined : this.byId.get(clientId);
  }

  list(): SimApplicationInfo[] {
    return [...this.byId.values()].map(describeApplication);
  }

  /** Adds, or replaces by client id; all or nothing (every entry is checked first). */
  async upsert(apps: readonly ParsedApplication[]): Promise<void> {
    assertDistinct(apps);
    const added = apps.filter((a) => !this.byId.has(a.clientId)).length;
    if (this.byId.size + added > MAX_APPLICATIONS) {
      throw new Error(`at most ${MAX_APPLICATIONS} applications`);
    }
    const loaded = await Promise.all(apps.map(load));
    for (const app of loaded) {
      this.byId.set(app.clientId, app);
    }
  }

  reset(): void {
    this.byId = new Map(this.initial.map((a) => [a.clientId, a]));
  }
}
