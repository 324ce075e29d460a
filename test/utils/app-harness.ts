import { mkdtempSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { NestExpressApplication } from '@nestjs/platform-express';
import { Test } from '@nestjs/testing';
import { AppModule } from '../../src/app.module.js';
import { setupApp } from '../../src/app.setup.js';

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}

export interface RunningApp {
  url: string;
  app: NestExpressApplication;
  close(): Promise<void>;
}

/** Boots the real AppModule on 127.0.0.1 with the given environment (no .env file, no process.env). */
export async function startApp(env: Record<string, string | undefined>): Promise<RunningApp> {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const moduleRef = await Test.createTestingModule({
    imports: [
      AppModule.forRoot({
        NODE_ENV: 'test',
        PORT: String(port),
        PUBLIC_URL: url,
        DUO_REDIRECT_URI: `${url}/auth/duo/callback`,
        SESSION_SECRET: 'test-session-secret-0123456789abcdefghij',
        AUDIT_CHAIN_KEY: 'test-audit-chain-key-0123456789abcdefghij',
        AUDIT_SPOOL_DIR: mkdtempSync(join(tmpdir(), 'duo-nest-spool-')),
        DATABASE_URL: 'sqlite::memory:',
        LOG_LEVEL: 'error',
        ...env,
      }),
    ],
  }).compile();
  const app = setupApp(
    moduleRef.createNestApplication<NestExpressApplication>({ logger: ['error'] }),
  );
  await app.listen(port, '127.0.0.1');
  return { url, app, close: () => app.close() };
}

/** fetch with a cookie jar and no redirect following: each hop is asserted by the test. */
export class Browser {
  readonly cookies = new Map<string, string>();

  async fetch(url: string, init: RequestInit = {}): Promise<Response> {
    const headers = new Headers(init.headers);
    if (this.cookies.size > 0) {
      headers.set('cookie', [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; '));
    }
    if (!headers.has('accept')) {
      headers.set('accept', 'text/html');
    }
    const res = await fetch(url, { ...init, headers, redirect: 'manual' });
    for (const line of res.headers.getSetCookie()) {
      const [pair, ...attrs] = line.split(';');
      const eq = pair.indexOf('=');
      const name = pair.slice(0, eq).trim();
      const value = pair.slice(eq + 1).trim();
      if (value === '' || attrs.some((a) => /max-age=0\b/i.test(a.trim()))) {
        this.cookies.delete(name);
      } else {
        this.cookies.set(name, value);
      }
    }
    return res;
  }

  postForm(url: string, form: Record<string, string>, init: RequestInit = {}): Promise<Response> {
    return this.fetch(url, {
      ...init,
      method: 'POST',
      body: new URLSearchParams(form),
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        ...(init.headers as Record<string, string>),
      },
    });
  }
}

export function location(res: Response): string {
  const loc = res.headers.get('location');
  if (!loc) {
    throw new Error(`expected a redirect, got ${res.status}`);
  }
  return loc;
}
