import { ConfigService } from '@nestjs/config';
import type { NestExpressApplication } from '@nestjs/platform-express';

/** What main.ts and the e2e tests both apply to the Nest app. */
export function setupApp(app: NestExpressApplication): NestExpressApplication {
  const config = app.get(ConfigService);
  app.set('trust proxy', config.get<number>('TRUST_PROXY') ?? 0);
  app.disable('x-powered-by');
  app.enableShutdownHooks();
  return app;
}
