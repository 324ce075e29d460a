import { ConfigService } from '@nestjs/config';
import type { NestExpressApplication } from '@nestjs/platform-express';
import { applySecurity, type SecuritySetupOptions } from './security/security.setup.js';

/** What main.ts and the e2e tests both apply to the Nest app. */
export function setupApp(
  app: NestExpressApplication,
  options: SecuritySetupOptions = {},
): NestExpressApplication {
  const config = app.get(ConfigService);
  app.set('trust proxy', config.get<number>('TRUST_PROXY') ?? 0);
  app.disable('x-powered-by');
  applySecurity(app, options);
  // SIGTERM: graceful shutdown (GracefulShutdownService), then exit 0 (not a re-raised signal).
  app.enableShutdownHooks([], { useProcessExit: true });
  return app;
}
