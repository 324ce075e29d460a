// Argument parsing of the simulator CLI (main.ts), kept apart so it can be tested.
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { loadApplicationsFile } from './applications.js';
import { canonicalPublicHost } from './context.js';
import { AUTO_MODES, type SimApplicationInput, type SimulatorOptions } from './types.js';

export const USAGE = `Usage: duo-simulator [options]   (in this repository: npm run simulator -- [options])
  --port <n>                 port to listen on (default 4000, 0 = random)
  --host <addr>              address to bind (default 127.0.0.1)
  --client-id <id>           Duo client id (generated with --client-secret when both are absent)
  --client-secret <secret>   Duo client secret
  --applications <file.json> more Duo applications (JSON array of { clientId, clientSecret, name?,
                             policy? }, see the package README); with --client-id they follow it,
                             without it the first of them is the first application
  --public-host <host[:port]> the public API hostname: every aud expected and the id_token iss use
                             it, never the Host header (default <host>:<port>; :443 with TLS and
                             :80 without are dropped, as a URL drops them)
  --users <file.json>        user directory (JSON array of users, see the package README)
  --auto <mode>              answer authorize at once, without the prompt page:
                             allow | deny | fraud (deny and report) | timeout
  --new-user-policy <p>      enroll | allow | deny (default enroll)
  --tls-cert <cert.pem>      serve HTTPS with this certificate ...
  --tls-key <key.pem>        ... and this key
  --app-name <name>          application name shown on the prompt and in the id_token
  --error-redirect-on-deny   redirect with error=access_denied instead of the denial page
  --code-ttl-ms <n>          authorization code lifetime (default 60000)
  --admin-ikey <ikey>        Admin API integration key of the authentication log (generated with
                             --admin-skey when both are absent)
  --admin-skey <skey>        Admin API secret key
  -h, --help                 show this help`;

/** A bad command line: main.ts prints it with the usage and exits with code 2. */
export class UsageError extends Error {}

function oneOf<T extends string>(name: string, value: string | undefined, allowed: readonly T[]) {
  if (value !== undefined && !allowed.includes(value as T)) {
    throw new UsageError(`--${name} must be one of ${allowed.join(', ')}`);
  }
  return value as T | undefined;
}

function integer(name: string, value: string | undefined, min: number, max: number) {
  if (value === undefined) {
    return undefined;
  }
  const n = Number(value);
  if (!/^\d+$/.test(value) || n < min || n > max) {
    throw new UsageError(`--${name} must be an integer between ${min} and ${max}`);
  }
  return n;
}

function readFile(name: string, path: string): Buffer {
  try {
    return readFileSync(path);
  } catch {
    throw new UsageError(`--${name}: cannot read ${path}`);
  }
}

/** Parses argv into simulator options; throws UsageError with a readable message. */
export function parseCli(argv: string[]): SimulatorOptions | 'help' {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      strict: true,
      allowPositionals: false,
      options: {
        port: { type: 'string' },
        host: { type: 'string' },
        'client-id': { type: 'string' },
        'client-secret': { type: 'string' },
        users: { type: 'string' },
        applications: { type: 'string' },
        'public-host': { type: 'string' },
        auto: { type: 'string' },
        'new-user-policy': { type: 'string' },
        'tls-cert': { type: 'string' },
        'tls-key': { type: 'string' },
        'app-name': { type: 'string' },
        'error-redirect-on-deny': { type: 'boolean' },
        'code-ttl-ms': { type: 'string' },
        'admin-ikey': { type: 'string' },
        'admin-skey': { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    }));
  } catch (err) {
    throw new UsageError(err instanceof Error ? err.message : 'bad arguments');
  }
  if (values.help) {
    return 'help';
  }
  const clientId = values['client-id'];
  const clientSecret = values['client-secret'];
  if ((clientId === undefined) !== (clientSecret === undefined)) {
    throw new UsageError(
      '--client-id and --client-secret go together (omit both to generate them)',
    );
  }
  if (clientId !== undefined && !/^[A-Za-z0-9]{20}$/.test(clientId)) {
    throw new UsageError('--client-id must be 20 alphanumeric characters (e.g. DI + 18)');
  }
  if (clientSecret !== undefined && !/^[A-Za-z0-9]{40}$/.test(clientSecret)) {
    throw new UsageError('--client-secret must be 40 alphanumeric characters');
  }
  const adminIkey = values['admin-ikey'];
  const adminSkey = values['admin-skey'];
  if ((adminIkey === undefined) !== (adminSkey === undefined)) {
    throw new UsageError('--admin-ikey and --admin-skey go together (omit both to generate them)');
  }
  if (adminIkey !== undefined && !/^[A-Z0-9]{20}$/.test(adminIkey)) {
    throw new UsageError(
      '--admin-ikey must be 20 upper-case alphanumeric characters (e.g. DI + 18)',
    );
  }
  if (adminSkey !== undefined && !/^[A-Za-z0-9]{40}$/.test(adminSkey)) {
    throw new UsageError('--admin-skey must be 40 alphanumeric characters');
  }
  const certPath = values['tls-cert'];
  const keyPath = values['tls-key'];
  if ((certPath === undefined) !== (keyPath === undefined)) {
    throw new UsageError('--tls-cert and --tls-key go together');
  }
  if (values.users !== undefined) {
    readFile('users', values.users);
  }
  let applications: SimApplicationInput[] | undefined;
  if (values.applications !== undefined) {
    readFile('applications', values.applications);
    try {
      applications = loadApplicationsFile(values.applications);
    } catch (err) {
      throw new UsageError(`--applications: ${err instanceof Error ? err.message : 'invalid'}`);
    }
  }
  const publicHost = values['public-host'];
  if (publicHost !== undefined) {
    try {
      canonicalPublicHost(publicHost, certPath ? 'https' : 'http');
    } catch (err) {
      throw new UsageError(`--public-host: ${err instanceof Error ? err.message : 'invalid'}`);
    }
  }
  return {
    port: integer('port', values.port, 0, 65535) ?? 4000,
    host: values.host,
    clientId,
    clientSecret,
    users: values.users,
    applications,
    publicHost,
    auto: oneOf('auto', values.auto, AUTO_MODES),
    newUserPolicy: oneOf('new-user-policy', values['new-user-policy'], [
      'enroll',
      'allow',
      'deny',
    ] as const),
    tls:
      certPath && keyPath
        ? { cert: readFile('tls-cert', certPath), key: readFile('tls-key', keyPath) }
        : undefined,
    applicationName: values['app-name'],
    errorRedirectOnDeny: values['error-redirect-on-deny'],
    codeTtlMs: integer('code-ttl-ms', values['code-ttl-ms'], 1, 86_400_000),
    adminIntegrationKey: adminIkey,
    adminSecretKey: adminSkey,
  };
}
