import type { DuoReconcileOptions } from './reconcile.job.js';

/** The reconcile job's environment variables (the Admin API's three and DUO_CLIENT_ID aside). */
export interface ReconcileEnvSettings {
  /** ms between runs; 0 turns the timer off. */
  intervalMs: number;
  options: Omit<DuoReconcileOptions, 'clientId' | 'instanceId'>;
}

export const RECONCILE_ENV_DEFAULTS = {
  DUO_RECONCILE_INTERVAL_MS: 300_000,
  DUO_RECONCILE_GRACE_MS: 600_000,
  DUO_RECONCILE_LOOKBACK_MS: 3_600_000,
  DUO_RECONCILE_PAGE_SIZE: 1000,
  DUO_RECONCILE_MAX_PAGES: 0,
  DUO_RECONCILE_REVOKE_ON_FRAUD: true,
} as const;

const BOUNDS: Record<string, [number, number]> = {
  DUO_RECONCILE_INTERVAL_MS: [0, 86_400_000],
  DUO_RECONCILE_GRACE_MS: [0, 86_400_000],
  DUO_RECONCILE_LOOKBACK_MS: [60_000, 30 * 86_400_000],
  DUO_RECONCILE_PAGE_SIZE: [1, 1000],
  DUO_RECONCILE_MAX_PAGES: [0, 1_000_000],
};

/** Thrown at boot with every bad variable (names and rules, never values). */
export class ReconcileEnvError extends Error {
  override name = 'ReconcileEnvError';
}

/**
 * Reads and checks the DUO_RECONCILE_* variables. In production the grace window may not be
 * shorter than Duo's log delay (2 minutes): a shorter one reports successes as missing at Duo.
 */
export function reconcileSettingsFromEnv(
  env: Record<string, string | undefined>,
): ReconcileEnvSettings {
  const problems: string[] = [];
  const num = (
    name: Exclude<keyof typeof RECONCILE_ENV_DEFAULTS, 'DUO_RECONCILE_REVOKE_ON_FRAUD'>,
  ): number => {
    const raw = (env[name] ?? '').trim();
    if (raw === '') {
      return RECONCILE_ENV_DEFAULTS[name];
    }
    const [min, max] = BOUNDS[name];
    const n = Number(raw);
    if (!/^\d+$/.test(raw) || !Number.isSafeInteger(n) || n < min || n > max) {
      problems.push(`${name} must be an integer from ${min} to ${max}`);
      return RECONCILE_ENV_DEFAULTS[name];
    }
    return n;
  };
  const intervalMs = num('DUO_RECONCILE_INTERVAL_MS');
  const graceMs = num('DUO_RECONCILE_GRACE_MS');
  const lookbackMs = num('DUO_RECONCILE_LOOKBACK_MS');
  const pageSize = num('DUO_RECONCILE_PAGE_SIZE');
  const maxPages = num('DUO_RECONCILE_MAX_PAGES');
  const rawRevoke = (env.DUO_RECONCILE_REVOKE_ON_FRAUD ?? '').trim().toLowerCase();
  let revokeOnFraud: boolean = RECONCILE_ENV_DEFAULTS.DUO_RECONCILE_REVOKE_ON_FRAUD;
  if (['false', '0', 'no', 'off'].includes(rawRevoke)) {
    revokeOnFraud = false;
  } else if (rawRevoke !== '' && !['true', '1', 'yes', 'on'].includes(rawRevoke)) {
    problems.push('DUO_RECONCILE_REVOKE_ON_FRAUD must be true or false');
  }
  if (env.NODE_ENV === 'production' && graceMs < 120_000) {
    problems.push("DUO_RECONCILE_GRACE_MS must be at least 120000 in production (Duo's log delay)");
  }
  if (problems.length > 0) {
    throw new ReconcileEnvError(`Invalid reconcile configuration:\n  - ${problems.join('\n  - ')}`);
  }
  return {
    intervalMs,
    options: {
      graceMs,
      lookbackMs,
      pageSize,
      revokeOnFraud,
      ...(maxPages > 0 ? { maxPagesPerRun: maxPages } : {}),
    },
  };
}
