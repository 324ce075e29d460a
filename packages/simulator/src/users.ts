import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { NewUserPolicy, SimUser } from './types.js';

/** The directory used when no users are given. */
export const DEFAULT_USERS: readonly SimUser[] = [
  {
    username: 'alice',
    aliases: ['alice.alias'],
    groups: ['admins', 'staff'],
    email: 'alice@example.com',
  },
  { username: 'bob', groups: ['staff'], email: 'bob@example.com' },
  { username: 'locked', status: 'locked_out', email: 'locked@example.com' },
  { username: 'disabled', status: 'disabled' },
  { username: 'bypass', status: 'bypass', groups: ['staff'] },
];

const KEY_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789';

/** A Duo-style 20-character key: prefix + 18 upper-case alphanumerics derived from a seed. */
export function stableKey(prefix: string, seed: string): string {
  const digest = createHash('sha256').update(seed).digest();
  let out = prefix;
  for (let i = 0; out.length < 20; i++) {
    out += KEY_ALPHABET[digest[i] % KEY_ALPHABET.length];
  }
  return out;
}

const STATUSES = new Set(['active', 'bypass', 'locked_out', 'disabled']);

function stringArray(value: unknown, where: string): string[] | undefined {
  if (value === undefined) {
    return undefined;
  }
  if (!Array.isArray(value) || value.some((v) => typeof v !== 'string')) {
    throw new Error(`${where} must be an array of strings`);
  }
  return value as string[];
}

/** Validates one untrusted user record (from a file or the control API). */
export function parseUser(input: unknown, index: number): SimUser {
  const where = `users[${index}]`;
  if (input === null || typeof input !== 'object' || Array.isArray(input)) {
    throw new Error(`${where} must be an object`);
  }
  const raw = input as Record<string, unknown>;
  if (typeof raw.username !== 'string' || raw.username.trim() === '') {
    throw new Error(`${where}.username must be a non-empty string`);
  }
  if (raw.status !== undefined && !STATUSES.has(raw.status as string)) {
    throw new Error(`${where}.status must be one of ${[...STATUSES].join(', ')}`);
  }
  for (const field of ['email', 'deviceName'] as const) {
    if (raw[field] !== undefined && typeof raw[field] !== 'string') {
      throw new Error(`${where}.${field} must be a string`);
    }
  }
  return {
    username: raw.username,
    aliases: stringArray(raw.aliases, `${where}.aliases`),
    groups: stringArray(raw.groups, `${where}.groups`),
    email: raw.email as string | undefined,
    status: raw.status as SimUser['status'],
    deviceName: raw.deviceName as string | undefined,
  };
}

export function parseUsers(input: unknown): SimUser[] {
  const list =
    input !== null && typeof input === 'object' && !Array.isArray(input) && 'users' in input
      ? input.users
      : input;
  if (!Array.isArray(list)) {
    throw new Error('users must be an array (or an object with a "users" array)');
  }
  return list.map(parseUser);
}

/** Reads a users file: a JSON array of SimUser, or `{ "users": [...] }`. */
export function loadUsersFile(path: string): SimUser[] {
  return parseUsers(JSON.parse(readFileSync(path, 'utf8')));
}

/** The outcome of looking a duo_uname up. */
export interface ResolvedUser {
  user: SimUser;
  /** The alias used, '' when the primary username was given. */
  alias: string;
  /** True when the user is not in the directory (new-user policy applies). */
  unenrolled: boolean;
}

export class UserDirectory {
  private readonly byName = new Map<string, SimUser>();
  private readonly byAlias = new Map<string, SimUser>();

  constructor(users: readonly SimUser[]) {
    this.replace(users);
  }

  list(): SimUser[] {
    return [...this.byName.values()];
  }

  replace(users: readonly SimUser[]): void {
    this.byName.clear();
    this.byAlias.clear();
    this.upsert(users);
  }

  upsert(users: readonly SimUser[]): void {
    for (const user of users) {
      this.byName.set(user.username.toLowerCase(), user);
    }
    this.byAlias.clear();
    for (const user of this.byName.values()) {
      for (const alias of user.aliases ?? []) {
        this.byAlias.set(alias.toLowerCase(), user);
      }
    }
  }

  /** Usernames and aliases match case-insensitively (Duo stores aliases lower-cased). */
  resolve(duoUname: string, policy: NewUserPolicy): ResolvedUser {
    const key = duoUname.toLowerCase();
    const primary = this.byName.get(key);
    if (primary) {
      return { user: primary, alias: '', unenrolled: false };
    }
    const aliased = this.byAlias.get(key);
    if (aliased) {
      return { user: aliased, alias: duoUname, unenrolled: false };
    }
    // Unknown: 'enroll' treats the user as freshly enrolled; the others are policy decisions.
    return { user: { username: duoUname }, alias: '', unenrolled: policy !== 'enroll' };
  }
}
