import { Module } from '@nestjs/common';
import { MetricsService } from './metrics.service.js';

/**
 * One MetricsService per app: imported by the app (the /metrics controller) and by DuoModule's
 * factory (the event and Duo-call hooks), which share the same instance.
 */
@Module({ providers: [MetricsService], exports: [MetricsService] })
export class MetricsModule {}
