import type { AuditEventInput, AuditService } from '@duo-nest/audit';
import type { DuoAuthEvent } from '@duo-nest/core';

/** Maps the Duo library's auth events to audit records: Duo's auth_context, never its tokens. */
export function toAuditInput(event: DuoAuthEvent): AuditEventInput {
  const tokens = event.result?.tokens;
  return {
    type: event.type,
    outcome: event.outcome,
    username: event.username ?? null,
    reason: event.reason ?? null,
    authContext: tokens?.auth_context ?? null,
    authResult: tokens?.auth_result ?? null,
    clientIp: event.clientIp ?? null,
    userAgent: event.userAgent ?? null,
    correlationId: event.correlationId ?? null,
    returnTo: event.returnTo ?? null,
    detail:
      event.path || event.detail
        ? { ...event.detail, ...(event.path ? { path: event.path.slice(0, 256) } : {}) }
        : null,
  };
}

/** The DuoModule `onEvent` hook: the event is written (or spooled) before the response goes out. */
export function auditEventSink(audit: AuditService): (event: DuoAuthEvent) => Promise<void> {
  return async (event) => {
    await audit.record(toAuditInput(event));
  };
}
