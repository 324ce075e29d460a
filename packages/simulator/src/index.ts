import { randomBytes } from 'node:crypto';
import { createServer as createHttpServer, type Server } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { ApplicationRegistry, parseApplication, type ParsedApplication } from './applications.js';
import { canonicalPublicHost, type SimContext } from './context.js';
import { createListener } from './server.js';
import { SimStore } from './state.js';
import type { RunningSimulator, SimulatorOptions, SimUser } from './types.js';
import { DEFAULT_USERS, loadUsersFile, parseUsers } from './users.js';

export type * from './types.js';
export {
  ADMIN_FAULTS,
  AUTHENTICATION_POLICIES,
  AUTO_MODES,
  NEW_USER_POLICIES,
  PROMPT_FACTOR_IDS,
  HEALTH_FAULTS,
  SCRIPTED_OUTCOMES,
  TOKEN_FAULTS,
} from './types.js';
export { ADMIN_AUTH_ERRORS, ADMIN_AUTH_LOG_PATH } from './admin-api.js';
export { DEFAULT_USERS, loadUsersFile } from './users.js';
export { loadApplicationsFile } from './applications.js';

const UPPER_ALNUM = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789';
const ALNUM = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';

/** Random characters from an alphabet, rejection-sampled so every character is equally likely. */
function randomChars(alphabet: string, length: number): string {
  const limit = 256 - (256 % alphabet.length);
  let out = '';
  while (out.length < length) {
    for (const byte of randomBytes(length * 2)) {
      if (byte < limit && out.length < length) {
        out += alphabet[byte % alphabet.length];
      }
    }
  }
  return out;
}

/** A client id of Duo's shape: 'DI' + 18 upper-case alphanumerics. */
export function generateClientId(): string {
  return `DI${randomChars(UPPER_ALNUM, 18)}`;
}

/** A client secret of Duo's shape: 40 alphanumerics. */
export function generateClientSecret(): string {
  return randomChars(ALNUM, 40);
}

const SWEEP_INTERVAL_MS = 10_000;

function resolveUsers(users: SimulatorOptions['users']): readonly SimUser[] {
  if (users === undefined) {
    return DEFAULT_USERS;
  }
  return typeof users === 'string' ? loadUsersFile(users) : parseUsers(users);
}

function listen(server: Server, port: number, host: string): Promise<AddressInfo> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve(server.address() as AddressInfo);
    });
  });
}

/**
 * The applications to serve: the single clientId/clientSecret first when given (or generated when
 * neither they nor `applications` are), then `applications`. Throws on a bad or repeated one.
 */
function resolveApplications(options: SimulatorOptions): ParsedApplication[] {
  const newUserPolicy = options.newUserPolicy ?? 'enroll';
  const given = options.applications ?? [];
  if (!Array.isArray(given)) {
    throw new Error('applications must be an array');
  }
  const single = options.clientId !== undefined || options.clientSecret !== undefined;
  const inputs: unknown[] = [...given];
  if (single || given.length === 0) {
    inputs.unshift({
      clientId: options.clientId ?? generateClientId(),
      clientSecret: options.clientSecret ?? generateClientSecret(),
      policy: { newUserPolicy },
    });
  }
  const firstName = options.applicationName ?? 'duo-nest demo';
  return inputs.map((input, i) =>
    parseApplication(input, i, { name: i === 0 ? firstName : 'Web SDK', newUserPolicy }),
  );
}

/** Starts a local Duo (health check, authorize + prompt, token, /__sim control API). */
export async function startSimulator(options: SimulatorOptions = {}): Promise<RunningSimulator> {
  const host = options.host ?? '127.0.0.1';
  const parsedApps = resolveApplications(options);
  const apps = await ApplicationRegistry.create(parsedApps);
  const { clientId, clientSecret } = parsedApps[0];
  const adminIntegrationKey = options.adminIntegrationKey ?? generateClientId();
  const adminSecretKey = options.adminSecretKey ?? generateClientSecret();
  if (!/^[A-Za-z0-9]{20}$/.test(adminIntegrationKey) || !/^[A-Za-z0-9]{40}$/.test(adminSecretKey)) {
    throw new Error('adminIntegrationKey must be 20 and adminSecretKey 40 alphanumeric characters');
  }
  const scheme = options.tls ? 'https' : 'http';
  const initialUsers = resolveUsers(options.users);
  if (options.publicHost !== undefined) {
    canonicalPublicHost(options.publicHost, scheme); // refuse a bad one before listening
  }

  const server = options.tls
    ? createHttpsServer({ cert: options.tls.cert, key: options.tls.key })
    : createHttpServer();
  server.keepAliveTimeout = 65_000;
  const address = await listen(server, options.port ?? 0, host);
  const hostPart = address.family === 'IPv6' ? `[${address.address}]` : host;
  const url = `${scheme}://${hostPart}:${address.port}`;
  // By default the name the caller bound (e.g. localhost, not the address it resolved to).
  const bound = host.includes(':') && !host.startsWith('[') ? `[${host}]` : host;
  const publicHost = canonicalPublicHost(options.publicHost ?? `${bound}:${address.port}`, scheme);

  const store = new SimStore(
    {
      url,
      scheme,
      publicHost,
      newUserPolicy: options.newUserPolicy ?? 'enroll',
      auto: options.auto ?? null,
      errorRedirectOnDeny: options.errorRedirectOnDeny ?? false,
      codeTtlMs: options.codeTtlMs ?? 60_000,
      initialUsers,
    },
    apps,
  );
  const ctx: SimContext = {
    store,
    auto: store.config.auto,
    errorRedirectOnDeny: store.config.errorRedirectOnDeny,
    codeTtlMs: store.config.codeTtlMs,
    admin: { integrationKey: adminIntegrationKey, secretKey: adminSecretKey },
  };
  server.on('request', createListener(ctx));
  const sweeper = setInterval(() => store.sweep(Date.now()), SWEEP_INTERVAL_MS);
  sweeper.unref();

  return {
    url,
    get apiHost() {
      return store.publicHost;
    },
    get publicOrigin() {
      return store.publicOrigin;
    },
    clientId,
    clientSecret,
    applications: parsedApps.map((a) => ({
      clientId: a.clientId,
      clientSecret: a.clientSecret,
      name: a.name,
    })),
    adminIntegrationKey,
    adminSecretKey,
    control: store,
    close: () =>
      new Promise<void>((resolve, reject) => {
        clearInterval(sweeper);
        server.close((err) => (err ? reject(err) : resolve()));
        server.closeAllConnections();
      }),
  };
}
