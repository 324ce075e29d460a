import { CreateAuditEvents1795912253399 } from './1795912253399-CreateAuditEvents.js';
import { CreateAuditReconcile1796500000000 } from './1796500000000-CreateAuditReconcile.js';

/**
 * The audit trail's schema migrations, oldest first, for the user's DataSource:
 * `new DataSource({ ..., entities: [...AUDIT_ENTITIES], migrations: [...AUDIT_MIGRATIONS] })`.
 * A shipped migration never changes: new schema comes as a new migration appended here.
 */
export const AUDIT_MIGRATIONS = [
  CreateAuditEvents1795912253399,
  CreateAuditReconcile1796500000000,
] as const;
