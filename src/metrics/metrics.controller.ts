import { createHash, timingSafeEqual } from 'node:crypto';
import type { Server } from 'node:http';
import {
  Controller,
  Get,
  Inject,
  Req,
  Res,
  type OnApplicationBootstrap,
  type OnModuleInit,
} from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import { HttpAdapterHost } from '@nestjs/core';
import type { Request, Response } from 'express';
import { AuditService } from '@duo-nest/audit';
import { SkipMfa, type PendingLoginStore, type SessionStore } from '@duo-nest/core';
import {
  DUO_PENDING_LOGIN_STORE,
  DUO_SESSION_STORE,
  DuoCircuitBreaker,
  InjectDuoOptions,
  type NormalizedDuoModuleOptions,
} from '@duo-nest/core/internal';
import { MetricsService } from './metrics.service.js';

function digest(value: string): Buffer {
  return createHash('sha256').update(value).digest();
}

/**
 * GET /metrics in Prometheus text format. Off with METRICS_ENABLED=false (404); with METRICS_TOKEN
 * set, only `Authorization: Bearer <token>` gets it (401 otherwise).
 */
@Controller('metrics')
export class MetricsController implements OnModuleInit, OnApplicationBootstrap {
  private readonly enabled: boolean;
  private readonly token?: Buffer;

  constructor(
    private readonly metrics: MetricsService,
    private readonly audit: AuditService,
    @Inject(DUO_PENDING_LOGIN_STORE) private readonly pending: PendingLoginStore,
    @Inject(DUO_SESSION_STORE) private readonly sessions: SessionStore,
    private readonly breaker: DuoCircuitBreaker,
    private readonly adapterHost: HttpAdapterHost,
    @InjectDuoOptions() private readonly duo: NormalizedDuoModuleOptions,
    config: ConfigService,
  ) {
    this.enabled = config.get<boolean>('METRICS_ENABLED') ?? true;
    const token = config.get<string>('METRICS_TOKEN');
    this.token = token ? digest(token) : undefined;
  }

  onModuleInit(): void {
    this.metrics.bindSources({
      pendingLogins: () => this.pending.count(),
      sessions: () => this.sessions.count(),
      audit: () => ({ ...this.audit.metrics }),
      auditSpoolDepth: () =>
        this.audit.spool.pending ? this.audit.spool.depth() : Promise.resolve(0),
      circuitState: () => this.breaker.state,
    });
  }

  onApplicationBootstrap(): void {
    const server = this.adapterHost.httpAdapter?.getHttpServer() as Server | undefined;
    if (!server || typeof server.on !== 'function') {
      return;
    }
    const callbackPath = this.duo.callbackPath;
    server.on('request', (req, res) => {
      res.once('finish', () => {
        const path = (req.url ?? '').split('?', 1)[0];
        this.metrics.countResponse(path, res.statusCode, callbackPath);
      });
    });
  }

  @SkipMfa()
  @Get()
  async scrape(@Req() req: Request, @Res() res: Response): Promise<void> {
    res.setHeader('Cache-Control', 'no-store');
    if (!this.enabled) {
      res.status(404).json({ statusCode: 404, error: 'not_found', message: 'Not Found' });
      return;
    }
    if (this.token && !this.authorized(req.headers.authorization)) {
      res.setHeader('WWW-Authenticate', 'Bearer realm="metrics"');
      res
        .status(401)
        .json({ statusCode: 401, error: 'unauthorized', message: 'A bearer token is required' });
      return;
    }
    const { contentType, body } = await this.metrics.render();
    res.status(200).type(contentType).send(body);
  }

  private authorized(header: string | undefined): boolean {
    const match = /^Bearer\s+(\S+)$/i.exec(header ?? '');
    // Digests compare in constant time whatever the lengths.
    return !!match && !!this.token && timingSafeEqual(digest(match[1]), this.token);
  }
}
