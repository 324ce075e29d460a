// The reference app's migrations, oldest first. The audit trail's schema ships with
// @duo-nest/audit (AUDIT_MIGRATIONS); the app's own migrations, if it ever has any, follow it here.
import { AUDIT_MIGRATIONS } from '@duo-nest/audit';

/** Every migration the app's DataSource runs (src/database/typeorm-options.ts). */
export const APP_MIGRATIONS = [...AUDIT_MIGRATIONS];
