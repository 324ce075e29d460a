// The reconcile job: Duo's authentication log held against our audit trail (issue 16).
export * from './reconcile.job.js';
export * from './reconcile-lock.js';
export * from './reconcile-store.js';
export * from './reconcile.scheduler.js';
export * from './reconcile-options.js';
export * from './reconcile-page.js';
export { parseSince, runAuditReconcile, type ReconcileCliOutput } from './reconcile.cli.js';
