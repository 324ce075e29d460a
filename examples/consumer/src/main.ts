import 'reflect-metadata';
import { NestFactory } from '@nestjs/core';
import type { NestExpressApplication } from '@nestjs/platform-express';
import { AppModule } from './app.module.js';

/** The environment variable, or a clear stop. */
function required(name: string): string {
  const value = process.env[name];
  if (!value) {
    throw new Error(`${name} is not set`);
  }
  return value;
}

const port = Number(process.env.PORT ?? 3000);
const apiHost = required('DUO_API_HOST');
const app = await NestFactory.create<NestExpressApplication>(
  AppModule.register({
    clientId: required('DUO_CLIENT_ID'),
    clientSecret: required('DUO_CLIENT_SECRET'),
    apiHost,
    redirectUri: required('DUO_REDIRECT_URI'),
    sessionSecret: required('SESSION_SECRET'),
    // Only for a local simulator over plain HTTP.
    allowInsecureHttp: apiHost.startsWith('http://127.0.0.1:'),
  }),
);
app.enableShutdownHooks();
await app.listen(port);
