import {
  Inject,
  Injectable,
  Logger,
  type CanActivate,
  type ExecutionContext,
} from '@nestjs/common';
import type { Request } from 'express';
import { DuoError, type MfaSession } from '@duo-nest/core';
import { AUDIT_MODULE_OPTIONS, type ResolvedAuditModuleOptions } from './audit.options.js';
import { AuditService } from './audit.service.js';

/** Who may read the audit trail: a listed username, or a member of a listed Duo group. */
export function isAuditAdmin(
  session: Pick<MfaSession, 'username' | 'groups'>,
  options: Pick<ResolvedAuditModuleOptions, 'adminUsers' | 'adminGroups'>,
): boolean {
  return (
    options.adminUsers.includes(session.username.toLowerCase()) ||
    session.groups.some((g) => options.adminGroups.includes(g))
  );
}

/**
 * The audit routes' second gate. The global MfaGuard runs first (a live session with a completed
 * Duo MFA, placed on the request); this one lets only audit admins through. Others get
 * DuoError('forbidden') (403, JSON or HTML through DuoExceptionFilter) and an access_denied event.
 */
@Injectable()
export class AuditAdminGuard implements CanActivate {
  private readonly logger = new Logger('AuditAdminGuard');

  constructor(
    private readonly audit: AuditService,
    @Inject(AUDIT_MODULE_OPTIONS) private readonly options: ResolvedAuditModuleOptions,
  ) {}

  async canActivate(context: ExecutionContext): Promise<boolean> {
    const req = context.switchToHttp().getRequest<Request & { duoSession?: MfaSession }>();
    const session = req.duoSession;
    if (!session) {
      // Only reachable when a route was made @Public() by mistake: never serve the trail then.
      throw new DuoError('mfa_required', 'Sign on with Duo first');
    }
    if (session.mfa && isAuditAdmin(session, this.options)) {
      return true;
    }
    try {
      await this.audit.record({
        type: 'access_denied',
        outcome: 'failure',
        username: session.username,
        reason: this.options.adminGroups.length > 0 ? 'group_required' : 'forbidden',
        clientIp: req.ip ?? null,
        userAgent: req.get('user-agent') ?? null,
        detail: { path: req.path.slice(0, 256) },
      });
    } catch (err) {
      // The denial stands either way; the failure to record it is logged, never hidden.
      this.logger.error(`access_denied not recorded (${(err as Error)?.name ?? 'Error'})`);
    }
    throw new DuoError('forbidden', 'Only audit administrators may read the audit trail');
  }
}
