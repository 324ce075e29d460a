import { Controller, Get, Inject, Optional, Param, Query, Res, UseGuards } from '@nestjs/common';
import type { Response } from 'express';
import { PAGE_CSP } from '@duo-nest/core/internal';
import { AuditAdminGuard } from './audit-admin.guard.js';
import {
  auditEventPage,
  auditListPage,
  auditMessagePage,
  type AuditListView,
} from './audit-page.js';
import { parseAuditEventId, parseAuditPageQuery, parseNoQuery } from './audit-query.dto.js';
import { AUDIT_PAGE_DEFAULT, AuditQueryError, AuditRepository } from './audit.repository.js';
import { reconcileSection } from './reconcile/reconcile-page.js';
import { AUDIT_RECONCILE, type ReconcileStatusSource } from './reconcile/reconcile.scheduler.js';

type RawQuery = Record<string, unknown>;

function send(res: Response, status: number, html: string): void {
  res.setHeader('Content-Security-Policy', PAGE_CSP);
  res.setHeader('Cache-Control', 'no-store');
  res.setHeader('X-Content-Type-Options', 'nosniff');
  res.setHeader('Referrer-Policy', 'no-referrer');
  res.status(status).type('html').send(html);
}

/** The form's values as given (strings only), to refill it. */
function formValues(query: RawQuery): Record<string, string> {
  return Object.fromEntries(
    Object.entries(query ?? {}).filter((e): e is [string, string] => typeof e[1] === 'string'),
  );
}

/** The audit page for people (HTML); same guards as the API: MFA session plus audit admin. */
@Controller('audit')
@UseGuards(AuditAdminGuard)
export class AuditPageController {
  constructor(
    private readonly repository: AuditRepository,
    @Optional() @Inject(AUDIT_RECONCILE) private readonly reconcile?: ReconcileStatusSource,
  ) {}

  @Get()
  async list(@Query() query: RawQuery, @Res() res: Response): Promise<void> {
    const form = formValues(query);
    let parsed;
    try {
      parsed = parseAuditPageQuery(query);
    } catch (err) {
      if (!(err instanceof AuditQueryError)) {
        throw err;
      }
      const view: AuditListView = {
        form,
        error: err.message,
        filter: {},
        bucket: form.bucket === 'hour' ? 'hour' : 'day',
        limit: AUDIT_PAGE_DEFAULT,
        paged: false,
        events: [],
        nextCursor: null,
        stats: [],
      };
      send(res, 400, auditListPage(view));
      return;
    }
    const { filter, cursor, limit, bucket } = parsed;
    const [page, stats, reconcile] = await Promise.all([
      this.repository.findPage(filter, cursor, limit),
      this.repository.stats(filter, bucket),
      reconcileSection(this.reconcile),
    ]);
    send(
      res,
      200,
      auditListPage({
        form: { ...form, from: filter.from as string, to: filter.to as string },
        filter,
        bucket,
        limit,
        paged: cursor !== null,
        events: page.items,
        nextCursor: page.nextCursor,
        stats,
        reconcile,
      }),
    );
  }

  @Get('view/:id')
  async view(
    @Param('id') id: string,
    @Query() query: RawQuery,
    @Res() res: Response,
  ): Promise<void> {
    let eventId: string;
    try {
      parseNoQuery(query);
      eventId = parseAuditEventId(id);
    } catch (err) {
      if (err instanceof AuditQueryError) {
        send(res, 400, auditMessagePage('Bad request', err.message));
        return;
      }
      throw err;
    }
    const event = await this.repository.findById(eventId);
    if (!event) {
      send(res, 404, auditMessagePage('Event not found', 'No audit event has this id.'));
      return;
    }
    send(res, 200, auditEventPage(event));
  }
}
