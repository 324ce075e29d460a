// The public face of the audit trail.
export * from './audit-events.js';
export {
  AUDIT_BOUNDS,
  buildAuditRecord,
  sanitizeAuthContext,
  sanitizeDetail,
  type AuditEvent,
  type AuditRecord,
  type AuditRow,
} from './audit-record.js';
export {
  verifyChain,
  type ChainHead,
  type ChainProblem,
  type ChainVerifyResult,
} from './audit-chain.js';
export {
  AuditChainAnchorEntity,
  AuditChainHeadEntity,
  AuditEventEntity,
  AUDIT_ENTITIES,
} from './audit-event.entity.js';
export * from './audit.repository.js';
export { TypeOrmAuditRepository } from './typeorm-audit.repository.js';
export { AuditUnavailableError } from './audit.errors.js';
export * from './audit.options.js';
export { AuditService, type AuditRecordResult, type AuditServiceMetrics } from './audit.service.js';
export { AuditModule, type AuditModuleAsyncOptions } from './audit.module.js';
export { AuditSpool } from './audit-spool.js';
export { AuditAdminGuard, isAuditAdmin } from './audit-admin.guard.js';
export { AuditApiExceptionFilter, AuditNotFoundError } from './audit-api.filter.js';
export {
  AuditController,
  type AuditEventsResponse,
  type AuditStatsResponse,
} from './audit.controller.js';
export { AuditPageController } from './audit-page.controller.js';
export {
  AuditSessionsController,
  type AuditSessionsResponse,
  type AuditSessionView,
} from './audit-sessions.controller.js';
export { AUDIT_OPENAPI } from './audit-openapi.js';
export { AUDIT_CSV_COLUMNS, csvCell, csvLine, ndjsonLine } from './audit-export.js';
export {
  AUDIT_FILTER_PARAMS,
  parseAuditEventId,
  parseAuditExportQuery,
  parseAuditListQuery,
  parseAuditPageQuery,
  parseAuditStatsQuery,
  type AuditExportFormat,
} from './audit-query.dto.js';

// The Duo Admin API client (authentication log), framework-free.
export * from './admin-api/index.js';
// The reconcile job (Duo's authentication log against the trail).
export * from './reconcile/index.js';
// The schema migrations, for the user's DataSource, and the verify CLI's function.
export { AUDIT_MIGRATIONS } from './migrations/index.js';
export {
  auditDataSourceOptions,
  auditDatabaseKind,
  DEFAULT_AUDIT_SQLITE_PATH,
  type AuditDataSourceOptionsInput,
  type AuditDatabaseKind,
} from './audit-data-source.js';
export { runAuditVerify, type VerifyOutput } from './audit-verify.cli.js';
