import 'reflect-metadata';
import { existsSync } from 'node:fs';
import { Logger } from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import { NestFactory } from '@nestjs/core';
import type { NestExpressApplication } from '@nestjs/platform-express';
import { AppModule } from './app.module.js';
import { setupApp } from './app.setup.js';
import { EnvValidationError } from './config/env.validation.js';

async function main(): Promise<void> {
  if (existsSync('.env')) {
    process.loadEnvFile('.env');
  }
  const app = setupApp(
    await NestFactory.create<NestExpressApplication>(AppModule.forRoot(process.env), {
      bufferLogs: true,
    }),
  );
  const config = app.get(ConfigService);
  const host = config.get<string>('HOST') ?? '127.0.0.1';
  await app.listen(config.get<number>('PORT') ?? 3000, host);
  new Logger('duo-nest').log(`Listening on ${config.get<string>('PUBLIC_URL')} (bound to ${host})`);
}

main().catch((err: unknown) => {
  console.error(err instanceof EnvValidationError ? err.message : err);
  process.exit(1);
});
