import type { Server } from 'node:http';
import {
  Injectable,
  Logger,
  type BeforeApplicationShutdown,
  type OnApplicationBootstrap,
  type OnApplicationShutdown,
} from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import { HttpAdapterHost } from '@nestjs/core';
import type { Cluster, Redis } from 'ioredis';
import { AuditService } from '@duo-nest/audit';
import { InjectDuoOptions, type NormalizedDuoModuleOptions } from '@duo-nest/core/internal';

/** Longest wait for the audit spool replay at shutdown (the spool is durable: what is left waits). */
const REPLAY_BUDGET_MS = 5_000;

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}

/**
 * Graceful shutdown, run by Nest's shutdown hooks (SIGTERM/SIGINT, or app.close()):
 * 1. readiness turns 503 and the listening socket closes (new connections are refused; idle
 *    keep-alive connections are closed);
 * 2. requests in flight (a Duo callback waiting on the token call, say) finish, for at most
 *    SHUTDOWN_GRACE_MS; stragglers are then cut;
 * 3. the audit spool is replayed while the database is still open (bounded; what is left stays in
 *    the durable spool for the next start);
 * 4. after the other modules' shutdown hooks (TypeORM closes its pool), the Redis connection quits.
 */
@Injectable()
export class GracefulShutdownService
  implements OnApplicationBootstrap, BeforeApplicationShutdown, OnApplicationShutdown
{
  private readonly logger = new Logger('Shutdown');
  private readonly graceMs: number;
  private inFlight = 0;
  private onIdle?: () => void;
  private server?: Server;
  private state: 'serving' | 'draining' = 'serving';

  constructor(
    private readonly adapterHost: HttpAdapterHost,
    private readonly audit: AuditService,
    @InjectDuoOptions() private readonly duo: NormalizedDuoModuleOptions,
    config: ConfigService,
  ) {
    this.graceMs = config.get<number>('SHUTDOWN_GRACE_MS') ?? 10_000;
  }

  /** True once shutdown has begun (readiness answers 503). */
  get draining(): boolean {
    return this.state === 'draining';
  }

  /** Requests being handled now. */
  get requestsInFlight(): number {
    return this.inFlight;
  }

  onApplicationBootstrap(): void {
    const server = this.adapterHost.httpAdapter?.getHttpServer() as Server | undefined;
    if (!server || typeof server.on !== 'function') {
      return;
    }
    this.server = server;
    server.on('request', (_req, res) => {
      this.inFlight += 1;
      if (this.draining && !res.headersSent) {
        res.setHeader('Connection', 'close');
      }
      res.once('close', () => {
        this.inFlight -= 1;
        if (this.inFlight === 0) {
          this.onIdle?.();
        }
      });
    });
  }

  async beforeApplicationShutdown(signal?: string): Promise<void> {
    if (this.draining) {
      return;
    }
    this.state = 'draining';
    const started = Date.now();
    const server = this.server;
    if (server) {
      server.close(() => undefined);
      server.closeIdleConnections();
      if (this.inFlight > 0) {
        this.logger.log(
          `${signal ?? 'close'}: waiting for ${this.inFlight} request(s) in flight (at most ${this.graceMs} ms)`,
        );
        const idle = new Promise<void>((resolve) => (this.onIdle = resolve));
        await Promise.race([idle, delay(this.graceMs)]);
      }
      if (this.inFlight > 0) {
        this.logger.warn(`grace period over: closing ${this.inFlight} unfinished request(s)`);
      }
      server.closeAllConnections();
    }
    const replayed = await Promise.race([
      this.audit.replayIfPending(),
      delay(Math.min(REPLAY_BUDGET_MS, this.graceMs)).then(() => 0),
    ]);
    this.logger.log(
      `drained in ${Date.now() - started} ms${replayed > 0 ? `; ${replayed} spooled audit event(s) replayed` : ''}`,
    );
  }

  async onApplicationShutdown(): Promise<void> {
    // The app's own ioredis client (app.module.ts), which core sees as a DuoRedisConnection.
    const redis = this.duo.redis as Redis | Cluster | undefined;
    if (!redis || redis.status === 'end') {
      return;
    }
    if (redis.status === 'ready') {
      await redis.quit().catch(() => redis.disconnect());
    } else {
      // Connecting or reconnecting: QUIT would wait for a connection that may never come.
      redis.disconnect();
    }
  }
}
