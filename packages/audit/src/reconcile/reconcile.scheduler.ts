import type { DuoReconcileJob, ReconcileRunResult } from './reconcile.job.js';

/** DI token of the reconcile status (the audit page and /health read it; absent: feature off). */
export const AUDIT_RECONCILE = Symbol('AUDIT_RECONCILE');

/** What the audit page, /health and /metrics read of the reconcile job. */
export interface ReconcileStatusSource {
  readonly enabled: boolean;
  readonly intervalMs: number;
  readonly job: DuoReconcileJob | null;
}

/**
 * Runs the job every `intervalMs` (the first one interval after start), never two runs at once
 * in this process; the job's lock keeps it to one instance at a time across instances. A failed
 * run is counted and logged by code; the next tick tries again from the same cursor.
 */
export class ReconcileScheduler implements ReconcileStatusSource {
  readonly enabled: boolean;
  private timer?: NodeJS.Timeout;
  private running?: Promise<ReconcileRunResult>;
  private stopped = false;

  constructor(
    readonly job: DuoReconcileJob | null,
    readonly intervalMs: number,
    private readonly onRun: (result: ReconcileRunResult) => void = () => undefined,
  ) {
    this.enabled = job !== null && intervalMs > 0;
  }

  /** Starts the timer (no-op when disabled). */
  start(firstDelayMs = this.intervalMs): void {
    if (!this.enabled || this.timer || this.stopped) {
      return;
    }
    const tick = () => {
      this.timer = setTimeout(() => {
        void this.runNow()
          .catch(() => undefined)
          .finally(() => {
            if (!this.stopped) {
              tick();
            }
          });
      }, delay);
      this.timer.unref();
      delay = this.intervalMs + Math.floor(Math.random() * Math.min(1_000, this.intervalMs / 10));
    };
    let delay = firstDelayMs;
    tick();
  }

  /** One run now (joins the one in flight). */
  runNow(): Promise<ReconcileRunResult> {
    if (!this.job) {
      return Promise.reject(new Error('reconcile is not enabled'));
    }
    this.running ??= this.job.runOnce().then(
      (r) => {
        this.running = undefined;
        this.onRun(r);
        return r;
      },
      (err: unknown) => {
        this.running = undefined;
        throw err;
      },
    );
    return this.running;
  }

  /** Stops the timer and waits for a run in flight (graceful shutdown). */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.running?.catch(() => undefined);
  }
}
