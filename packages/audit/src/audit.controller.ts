import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import {
  Controller,
  Get,
  Header,
  Logger,
  Param,
  Query,
  Res,
  UseFilters,
  UseGuards,
} from '@nestjs/common';
import type { Response } from 'express';
import { AuditAdminGuard } from './audit-admin.guard.js';
import { AuditApiExceptionFilter, AuditNotFoundError } from './audit-api.filter.js';
import { AUDIT_EXPORT_CONTENT_TYPES, csvHeaderLine, csvLine, ndjsonLine } from './audit-export.js';
import { AUDIT_OPENAPI } from './audit-openapi.js';
import {
  parseAuditEventId,
  parseAuditExportQuery,
  parseAuditListQuery,
  parseAuditStatsQuery,
  parseNoQuery,
} from './audit-query.dto.js';
import type { AuditEvent } from './audit-record.js';
import {
  AuditRepository,
  type AuditPage,
  type AuditStatsBucket,
  type AuditStatsRow,
} from './audit.repository.js';

export interface AuditEventsResponse extends AuditPage {
  limit: number;
}

export interface AuditStatsResponse {
  bucket: AuditStatsBucket;
  total: number;
  buckets: AuditStatsRow[];
}

type RawQuery = Record<string, unknown>;

/**
 * The audit trail's read API. Guarded twice: the global MfaGuard (a completed Duo MFA session;
 * these routes are never @Public) and AuditAdminGuard (AUDIT_ADMIN_USERS / AUDIT_ADMIN_GROUPS).
 * Described in audit-openapi.ts, served at GET /audit/openapi.json.
 */
@Controller('audit')
@UseGuards(AuditAdminGuard)
@UseFilters(AuditApiExceptionFilter)
export class AuditController {
  private readonly logger = new Logger('AuditController');

  constructor(private readonly repository: AuditRepository) {}

  /** Newest first, keyset-paginated. */
  @Get('events')
  @Header('Cache-Control', 'no-store')
  async events(@Query() query: RawQuery): Promise<AuditEventsResponse> {
    const { filter, cursor, limit } = parseAuditListQuery(query);
    const page = await this.repository.findPage(filter, cursor, limit);
    return { ...page, limit };
  }

  @Get('events/:id')
  @Header('Cache-Control', 'no-store')
  async event(@Param('id') id: string, @Query() query: RawQuery): Promise<AuditEvent> {
    parseNoQuery(query);
    const event = await this.repository.findById(parseAuditEventId(id));
    if (!event) {
      throw new AuditNotFoundError('no audit event has this id');
    }
    return event;
  }

  @Get('stats')
  @Header('Cache-Control', 'no-store')
  async stats(@Query() query: RawQuery): Promise<AuditStatsResponse> {
    const { filter, bucket } = parseAuditStatsQuery(query);
    const buckets = await this.repository.stats(filter, bucket);
    return { bucket, total: buckets.reduce((n, b) => n + b.total, 0), buckets };
  }

  @Get('openapi.json')
  @Header('Cache-Control', 'no-store')
  openapi(@Query() query: RawQuery): typeof AUDIT_OPENAPI {
    parseNoQuery(query);
    return AUDIT_OPENAPI;
  }

  /**
   * Every matching event, newest first, streamed page by page with backpressure: the next page is
   * read only when the client has taken the previous one.
   */
  @Get('export')
  async export(@Query() query: RawQuery, @Res() res: Response): Promise<void> {
    const { filter, format } = parseAuditExportQuery(query);
    const events = this.repository.stream(filter);
    // Read the first page before answering, so a database failure is an error response rather
    // than a truncated file.
    const first = await events.next();
    async function* lines(): AsyncGenerator<string> {
      if (format === 'csv') {
        yield csvHeaderLine();
      }
      const line = format === 'csv' ? csvLine : ndjsonLine;
      if (!first.done) {
        yield line(first.value);
        for await (const event of events) {
          yield line(event);
        }
      }
    }
    const stamp = new Date()
      .toISOString()
      .replace(/[-:]/g, '')
      .replace(/\.\d{3}/, '');
    res.status(200);
    res.setHeader('Content-Type', AUDIT_EXPORT_CONTENT_TYPES[format]);
    res.setHeader('Content-Disposition', `attachment; filename="audit-events-${stamp}.${format}"`);
    res.setHeader('Cache-Control', 'no-store');
    res.setHeader('X-Content-Type-Options', 'nosniff');
    try {
      await pipeline(Readable.from(lines()), res);
    } catch (err) {
      // Client gone, or the database failed mid-stream: the response is cut short (no trailer
      // can say so); the generator is closed by pipeline.
      const e = err as { code?: string; name?: string };
      if (e?.code !== 'ERR_STREAM_PREMATURE_CLOSE') {
        this.logger.warn(`audit export interrupted (${e?.name ?? 'Error'})`);
      }
    } finally {
      await events.return(undefined);
    }
  }
}
