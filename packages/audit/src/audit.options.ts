import { hostname } from 'node:os';

/** DI token of the resolved AuditModuleOptions. */
export const AUDIT_MODULE_OPTIONS = Symbol('AUDIT_MODULE_OPTIONS');

/**
 * What happens when the database is down or slower than writeTimeoutMs:
 * - 'spool' (default): the event goes to a local fsync'd file and is replayed later; the flow goes on.
 * - 'deny': AuditUnavailableError is thrown; the caller refuses the login ("no audit, no login").
 */
export type AuditOutagePolicy = 'spool' | 'deny';

export interface AuditModuleOptions {
  /** AUDIT_CHAIN_KEY: the HMAC key of the chain (>= 16 bytes). Never stored in the database. */
  chainKey: string | Buffer;
  policy?: AuditOutagePolicy;
  /** Folder of the spool files (one per instance id). Default ./data/audit-spool. */
  spoolDir?: string;
  /** Names this process in events and its spool file. Default `<hostname>-<pid>`. */
  instanceId?: string;
  /** When set, events older than this many days are purged on a timer (the chain stays verifiable). */
  retentionDays?: number;
  /** A write slower than this counts as an outage. Default 2000 ms. */
  writeTimeoutMs?: number;
  /** How often a non-empty spool is replayed. Default 5000 ms. */
  replayIntervalMs?: number;
  /** How often the retention purge runs. Default one hour. */
  purgeIntervalMs?: number;
  /** An external checkpoint file (ideally on another system) the chain head is appended to. */
  checkpointFile?: string;
  /** How often the checkpoint is written. Default 60 000 ms. */
  checkpointIntervalMs?: number;
  /**
   * AUDIT_ADMIN_USERS: usernames (compared case-insensitively) allowed to read the audit trail
   * through the audit routes (they also need a completed Duo MFA session).
   * @default []
   */
  adminUsers?: readonly string[];
  /** AUDIT_ADMIN_GROUPS: Duo group names (exact) whose members may read the audit trail. @default [] */
  adminGroups?: readonly string[];
}

export type ResolvedAuditModuleOptions = Required<
  Omit<AuditModuleOptions, 'retentionDays' | 'checkpointFile'>
> &
  Pick<AuditModuleOptions, 'retentionDays' | 'checkpointFile'>;

export function resolveAuditOptions(options: AuditModuleOptions): ResolvedAuditModuleOptions {
  const policy = options.policy ?? 'spool';
  if (policy !== 'spool' && policy !== 'deny') {
    throw new TypeError('audit: policy must be spool or deny');
  }
  const instanceId = options.instanceId ?? `${hostname()}-${process.pid}`;
  if (!/^[A-Za-z0-9_.-]{1,128}$/.test(instanceId)) {
    throw new TypeError('audit: instanceId may hold letters, digits, _ . - (1-128)');
  }
  if (options.retentionDays !== undefined && !(options.retentionDays > 0)) {
    throw new TypeError('audit: retentionDays must be positive');
  }
  return {
    chainKey: options.chainKey,
    policy,
    spoolDir: options.spoolDir ?? './data/audit-spool',
    instanceId,
    retentionDays: options.retentionDays,
    writeTimeoutMs: options.writeTimeoutMs ?? 2000,
    replayIntervalMs: options.replayIntervalMs ?? 5000,
    purgeIntervalMs: options.purgeIntervalMs ?? 3_600_000,
    checkpointFile: options.checkpointFile,
    checkpointIntervalMs: options.checkpointIntervalMs ?? 60_000,
    adminUsers: cleanList(options.adminUsers).map((u) => u.toLowerCase()),
    adminGroups: cleanList(options.adminGroups),
  };
}

function cleanList(list: readonly string[] | undefined): string[] {
  return (list ?? []).map((s) => s.trim()).filter((s) => s.length > 0);
}
