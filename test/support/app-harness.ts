import { mkdtempSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { NestExpressApplication } from '@nestjs/platform-express';
import { Test } from '@nestjs/testing';
import { AppModule } from '../../src/app.module.js';
import { setupApp } from '../../src/app.setup.js';
import type { SecuritySetupOptions } from '../../src/security/security.setup.js';

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

/** The DUO_* variables that point the app at a running simulator. */
export function simulatorEnv(sim: { clientId: string; clientSecret: string; url: string }) {
  return {
    DUO_CLIENT_ID: sim.clientId,
    DUO_CLIENT_SECRET: sim.clientSecret,
    DUO_API_HOST: sim.url,
  };
}

export interface RunningApp {
  url: string;
  app: NestExpressApplication;
  close(): Promise<void>;
}

/**
 * Boots the real AppModule on 127.0.0.1 with the given environment (no .env file, no process.env).
 * Rate limits are high by default (tests of the limits set their own); `options.logDestination`
 * captures the app's JSON log lines.
 */
export async function startApp(
  env: Record<string, string | undefined>,
  options: SecuritySetupOptions = {},
): Promise<RunningApp> {
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
        RATE_LIMIT_LOGIN_PER_IP: '100000',
        RATE_LIMIT_LOGIN_PER_USER: '100000',
        RATE_LIMIT_CALLBACK_PER_IP: '100000',
        // Older specs count Duo calls exactly: no background health probe unless a spec asks.
        DUO_HEALTH_PROBE: 'false',
        ...env,
      }),
    ],
  }).compile();
  const app = setupApp(
    moduleRef.createNestApplication<NestExpressApplication>({ logger: ['error'] }),
    options,
  );
  await app.listen(port, '127.0.0.1');
  return { url, app, close: () => app.close() };
}

/** fetch with a cookie jar and no redirect following: each hop is asserted by the test. */
export class Browser {
  readonly cookies = new Map<string, string>();
  private csrf?: { cookie: string | undefined; token: string };

  /** This browser's CSRF token for the app at `origin` (GET / sets the cookie and names the token). */
  async csrfToken(origin: string): Promise<string> {
    const cookie = this.cookies.get('duo_csrf') ?? this.cookies.get('__Host-duo_csrf');
    if (this.csrf && cookie !== undefined && this.csrf.cookie === cookie) {
      return this.csrf.token;
    }
    const res = await this.fetch(`${origin}/`);
    await res.arrayBuffer();
    const token = res.headers.get('x-csrf-token') ?? '';
    this.csrf = {
      cookie: this.cookies.get('duo_csrf') ?? this.cookies.get('__Host-duo_csrf'),
      token,
    };
    return token;
  }

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

  /**
   * Posts a form as the app's own pages do: with the CSRF token of this browser (fetched from the
   * sign-on page once per CSRF cookie) unless the form already has a `_csrf` field. Use `fetch`
   * with method POST to send a request without it.
   */
  async postForm(
    url: string,
    form: Record<string, string>,
    init: RequestInit = {},
  ): Promise<Response> {
    const body = new URLSearchParams(form);
    if (!body.has('_csrf')) {
      body.set('_csrf', await this.csrfToken(new URL(url).origin));
    }
    return this.fetch(url, {
      ...init,
      method: 'POST',
      body,
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
