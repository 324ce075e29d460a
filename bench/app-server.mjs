// The built app (dist/) as a bench process: AppModule plus a bench-only controller serving the same
// handler public (/bench/public) and behind the global MfaGuard (/bench/guarded). Configured by env
// like the real app; reports "ready" and the server-side callback timings over IPC.
// Callback timing: from the first middleware to the response's finish, minus the HTTP round trip of
// the Duo token call inside it (reported by DuoModule's onDuoCall hook, attributed per request with
// AsyncLocalStorage) = the app's own handling of the callback, without the simulator's time.
import 'reflect-metadata';
import { AsyncLocalStorage } from 'node:async_hooks';
import { performance } from 'node:perf_hooks';
import { Controller, Get, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { AppModule } from '../dist/src/app.module.js';
import { setupApp } from '../dist/src/app.setup.js';
import { DuoClient, Public } from '@duo-nest/core';
import { DUO_OPTIONS } from '@duo-nest/core/internal';
import { answerBenchIpc } from './app-ipc.mjs';

class BenchController {
  publicRoute() {
    return { ok: true };
  }
  guardedRoute() {
    return { ok: true };
  }
}
const proto = BenchController.prototype;
const decorate = (name, ...decorators) => {
  const descriptor = Object.getOwnPropertyDescriptor(proto, name);
  for (const d of decorators) {
    d(proto, name, descriptor);
  }
};
decorate('publicRoute', Get('public'), Public());
decorate('guardedRoute', Get('guarded'));
Controller('bench')(BenchController);

class BenchRootModule {}
Module({ imports: [AppModule.forRoot(process.env)], controllers: [BenchController] })(
  BenchRootModule,
);

// BENCH_COUNT_IO=1 (bench/shared-work.mjs): count PostgreSQL and Redis work, reported with `stats`.
const io =
  process.env.BENCH_COUNT_IO === '1'
    ? (await import('./io-count.mjs')).installIoCounters()
    : undefined;
const app = await NestFactory.create(BenchRootModule, { logger: ['error'] });
await io?.watch(app);
const als = new AsyncLocalStorage();
let callbackTimes = [];
let callbackPath = '/auth/duo/callback';
app.use((req, res, next) => {
  if (req.path !== callbackPath) {
    next();
    return;
  }
  const ctx = { t0: performance.now(), duoMs: 0 };
  res.once('finish', () => {
    if (res.statusCode === 303) {
      callbackTimes.push({ totalMs: performance.now() - ctx.t0, duoMs: ctx.duoMs });
    }
  });
  als.run(ctx, next);
});
setupApp(app);
callbackPath = app.get(DUO_OPTIONS).callbackPath;
const client = app.get(DuoClient);
const observer = client.onDuoCall;
client.onDuoCall = (endpoint, result, ms) => {
  observer?.(endpoint, result, ms);
  const ctx = als.getStore();
  if (ctx && endpoint === 'token') {
    ctx.duoMs += ms;
  }
};
await app.listen(Number(process.env.PORT), '127.0.0.1');

answerBenchIpc(process.env.INSTANCE_ID ?? 'app', {
  stats: () => ({ callbacks: callbackTimes, ...(io ? { io: io.snapshot() } : {}) }),
  reset: () => {
    callbackTimes = [];
    io?.reset();
  },
});
