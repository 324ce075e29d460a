// The (f) bench apps, one process each: the same handler on a bare Nest 12 app (BENCH_APP=bare: no
// duo-nest, the same Express adapter, Nest's logger at `error` as in every bench app) and on that
// same app after adopting duo-nest the way the README shows (BENCH_APP=adopter: DuoModule.forRoot,
// the global MfaGuard, the username form and DuoStartGuard on POST /login). Routes:
// /bench/public (the handler, no MFA: @SkipMfa in the adopter) and, in the adopter, /bench/guarded
// (the same handler behind MfaGuard). With REDIS_URL the adopter keeps sessions in Redis.
// Reports "ready" over IPC like app-server.mjs.
import 'reflect-metadata';
import { Controller, Get, Header, Module, Post, Res, UseGuards } from '@nestjs/common';
import { APP_GUARD, NestFactory } from '@nestjs/core';
import { DuoFormFields, DuoModule, DuoStartGuard, MfaGuard, SkipMfa } from '@duo-nest/core';
import { answerBenchIpc } from './app-ipc.mjs';

const env = process.env;
const adopter = env.BENCH_APP === 'adopter';

/** Applies method decorators the way TypeScript's emit would (plain .mjs has no decorator syntax). */
function decorate(cls, name, ...decorators) {
  const descriptor = Object.getOwnPropertyDescriptor(cls.prototype, name);
  for (const d of decorators) {
    d(cls.prototype, name, descriptor);
  }
}
const param = (decorator, cls, name, index) => decorator(cls.prototype, name, index);

class RoutesController {
  publicRoute() {
    return { ok: true };
  }
  guardedRoute() {
    return { ok: true };
  }
}
decorate(RoutesController, 'publicRoute', Get('public'), ...(adopter ? [SkipMfa()] : []));
if (adopter) {
  decorate(RoutesController, 'guardedRoute', Get('guarded'));
} else {
  delete RoutesController.prototype.guardedRoute;
}
Controller('bench')(RoutesController);

/** The adopter's sign-on pages: the username form (its CSRF token also in a header) and the start. */
class SignOnController {
  form(fields, res) {
    res.setHeader('x-csrf-token', fields.csrfToken);
    return `<form method="post" action="/login">${fields.html}<input name="username"></form>`;
  }
  start() {}
}
decorate(
  SignOnController,
  'form',
  SkipMfa(),
  Get(''),
  Header('content-type', 'text/html; charset=utf-8'),
);
param(DuoFormFields(), SignOnController, 'form', 0);
param(Res({ passthrough: true }), SignOnController, 'form', 1);
decorate(SignOnController, 'start', SkipMfa(), Post('login'), UseGuards(DuoStartGuard));
Controller()(SignOnController);

class BenchAppModule {}
if (adopter) {
  const redis = env.REDIS_URL ? new (await import('ioredis')).Redis(env.REDIS_URL) : undefined;
  Module({
    imports: [
      DuoModule.forRoot({
        clientId: env.DUO_CLIENT_ID,
        clientSecret: env.DUO_CLIENT_SECRET,
        apiHost: env.DUO_API_HOST,
        allowInsecureHttp: true, // the local simulator, as in every bench app
        redirectUri: env.DUO_REDIRECT_URI,
        sessionSecret: env.SESSION_SECRET,
        secureCookies: false,
        maxConcurrentDuoCalls: 1000,
        limits: false,
        ...(redis ? { redis, redisKeyPrefix: env.REDIS_KEY_PREFIX } : {}),
      }),
    ],
    controllers: [SignOnController, RoutesController],
    providers: [{ provide: APP_GUARD, useExisting: MfaGuard }],
  })(BenchAppModule);
} else {
  Module({ controllers: [RoutesController] })(BenchAppModule);
}

const app = await NestFactory.create(BenchAppModule, { logger: ['error'] });
app.enableShutdownHooks();
await app.listen(Number(env.PORT), '127.0.0.1');
answerBenchIpc(adopter ? 'adopter' : 'bare');
