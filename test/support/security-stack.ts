/**
 * The security catalogue's own pieces (test/security/*.e2e-spec.ts): the real app and the
 * in-process simulator, with a transparent HTTP proxy between them that can rewrite Duo's token
 * answer (to craft id_tokens the simulator has no switch for), a TCP proxy that can cut a
 * connection (Redis going away), and a raw JWS builder.
 */
import { createHmac } from 'node:crypto';
import {
  createServer,
  request as httpRequest,
  type IncomingHttpHeaders,
  type Server,
} from 'node:http';
import { createConnection, createServer as createTcpServer, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { startSimulator, type RunningSimulator, type SimulatorOptions } from '@duo-nest/simulator';
import { Browser, startApp, type RunningApp } from './app-harness.js';
import { JSON_ACCEPT } from './duo-flow.js';

// ---------------------------------------------------------------- raw JWS

export function b64u(value: string | Buffer): string {
  return Buffer.from(value).toString('base64url');
}

export function decodeSegment(segment: string): Record<string, unknown> {
  return JSON.parse(Buffer.from(segment, 'base64url').toString('utf8')) as Record<string, unknown>;
}

/**
 * A compact JWS with whatever header and payload: objects are JSON-encoded, strings and Buffers are
 * taken as the exact bytes (to send arrays, BOMs, invalid UTF-8...). HMAC with `secret`.
 */
export function rawJws(
  header: object | string,
  payload: object | string | Buffer,
  secret: string,
  alg: 'sha256' | 'sha384' | 'sha512' = 'sha512',
): string {
  const h = b64u(typeof header === 'string' ? header : JSON.stringify(header));
  const p = b64u(
    typeof payload === 'string' || Buffer.isBuffer(payload) ? payload : JSON.stringify(payload),
  );
  const sig = createHmac(alg, secret).update(`${h}.${p}`).digest('base64url');
  return `${h}.${p}.${sig}`;
}

export const nowSec = (): number => Math.floor(Date.now() / 1000);

// ---------------------------------------------------------------- Duo proxy

export interface TokenAnswer {
  status: number;
  headers: IncomingHttpHeaders;
  /** The raw body text. */
  text: string;
  /** The parsed JSON body, or undefined. */
  json?: Record<string, unknown>;
  /** The id_token's decoded claims, when there is one. */
  claims?: Record<string, unknown>;
}

export interface TokenReply {
  status?: number;
  headers?: Record<string, string>;
  /** An object is JSON-encoded; a string is sent as is. */
  body: string | object;
}

export interface RecordedTokenRequest {
  method: string;
  /** Path and query as received. */
  url: string;
  form: URLSearchParams;
}

/**
 * A transparent proxy in front of the simulator: the app's DUO_API_HOST and the browser's authorize
 * both go through it (the Host header is kept, so the simulator's issuer and audiences are the
 * proxy's origin, as the app expects). `onToken` may replace Duo's token answer.
 */
export class DuoProxy {
  onToken?: (answer: TokenAnswer) => TokenReply | undefined;
  readonly tokenRequests: RecordedTokenRequest[] = [];
  private server!: Server;

  constructor(private readonly target: string) {}

  get url(): string {
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  async start(): Promise<this> {
    const target = new URL(this.target);
    this.server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const body = Buffer.concat(chunks);
        const isToken = (req.url ?? '').split('?')[0] === '/oauth/v1/token';
        if (isToken) {
          this.tokenRequests.push({
            method: req.method ?? '',
            url: req.url ?? '',
            form: new URLSearchParams(body.toString('utf8')),
          });
        }
        const upstream = httpRequest(
          {
            host: target.hostname,
            port: target.port,
            method: req.method,
            path: req.url,
            headers: req.headers,
          },
          (up) => {
            const out: Buffer[] = [];
            up.on('data', (c: Buffer) => out.push(c));
            up.on('end', () => {
              const text = Buffer.concat(out).toString('utf8');
              const reply = isToken && this.onToken ? this.onToken(answerOf(up, text)) : undefined;
              if (!reply) {
                res.writeHead(up.statusCode ?? 502, up.headers);
                res.end(text);
                return;
              }
              const payload =
                typeof reply.body === 'string' ? reply.body : JSON.stringify(reply.body);
              res.writeHead(reply.status ?? 200, {
                'content-type': 'application/json',
                ...reply.headers,
              });
              res.end(payload);
            });
          },
        );
        upstream.on('error', () => {
          res.writeHead(502);
          res.end();
        });
        upstream.end(body);
      });
    });
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    return this;
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

function answerOf(up: { statusCode?: number; headers: IncomingHttpHeaders }, text: string) {
  const answer: TokenAnswer = { status: up.statusCode ?? 0, headers: up.headers, text };
  try {
    answer.json = JSON.parse(text) as Record<string, unknown>;
    const idToken = answer.json.id_token;
    if (typeof idToken === 'string') {
      answer.claims = decodeSegment(idToken.split('.')[1]);
    }
  } catch {
    // not JSON: left undefined
  }
  return answer;
}

/** A token reply that keeps Duo's answer but swaps its id_token. */
export function withIdToken(answer: TokenAnswer, idToken: unknown): TokenReply {
  return { body: { ...answer.json, id_token: idToken } };
}

// ---------------------------------------------------------------- the stack

export interface Stack {
  sim: RunningSimulator;
  proxy: DuoProxy;
  app: RunningApp;
  close(): Promise<void>;
}

/** The simulator, the proxy in front of it, and the real app configured against the proxy. */
export async function startStack(
  env: Record<string, string | undefined> = {},
  simOptions: SimulatorOptions = {},
): Promise<Stack> {
  const sim = await startSimulator({ auto: 'allow', ...simOptions });
  const proxy = await new DuoProxy(sim.url).start();
  // The simulator's one public name (aud, iss) is the proxy's, as the app is configured with it.
  sim.control.setPublicHost(new URL(proxy.url).host);
  const app = await startApp({
    DUO_CLIENT_ID: sim.clientId,
    DUO_CLIENT_SECRET: sim.clientSecret,
    DUO_API_HOST: proxy.url,
    // The catalogue runs many sign-ons from 127.0.0.1; the rate limits have their own tests (RL-*).
    RATE_LIMIT_LOGIN_PER_IP: '100000',
    RATE_LIMIT_CALLBACK_PER_IP: '100000',
    ...env,
  }).catch(async (err: unknown) => {
    await proxy.stop();
    await sim.close();
    throw err;
  });
  return {
    sim,
    proxy,
    app,
    close: async () => {
      await app.close();
      await proxy.stop();
      await sim.close();
    },
  };
}

/** The claims of the request JWT in an authorize URL (not verified). */
export function requestClaims(authorize: string): Record<string, unknown> {
  const jwt = new URL(authorize).searchParams.get('request') ?? '';
  return decodeSegment(jwt.split('.')[1]);
}

/** The raw id of the session cookie the browser holds, if any. */
export function sessionId(browser: Browser): string | undefined {
  for (const [name, value] of browser.cookies) {
    if (/duo_session$/.test(name)) {
      return value.slice(0, value.lastIndexOf('.'));
    }
  }
  return undefined;
}

/** GET /me as JSON: the status and the body. */
export async function me(
  browser: Browser,
  appUrl: string,
): Promise<{ status: number; body: Record<string, unknown> | undefined }> {
  const res = await browser.fetch(`${appUrl}/me`, { headers: JSON_ACCEPT });
  const body = (await res.json().catch(() => undefined)) as Record<string, unknown> | undefined;
  return { status: res.status, body };
}

// ---------------------------------------------------------------- TCP proxy (cuttable)

/** A TCP pipe to 127.0.0.1:targetPort whose connections can be cut and refused (a dependency going away). */
export class TcpPipe {
  private server = createTcpServer();
  private sockets = new Set<Socket>();
  private down = false;

  constructor(private readonly targetPort: number) {}

  get port(): number {
    return (this.server.address() as AddressInfo).port;
  }

  async start(): Promise<this> {
    this.server.on('connection', (client) => {
      if (this.down) {
        client.destroy();
        return;
      }
      const upstream = createConnection(this.targetPort, '127.0.0.1');
      this.sockets.add(client).add(upstream);
      const drop = () => {
        client.destroy();
        upstream.destroy();
        this.sockets.delete(client);
        this.sockets.delete(upstream);
      };
      client.on('error', drop).on('close', drop);
      upstream.on('error', drop).on('close', drop);
      client.pipe(upstream).pipe(client);
    });
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    return this;
  }

  /** Destroys every open connection and refuses new ones. */
  cut(): void {
    this.down = true;
    for (const s of this.sockets) {
      s.destroy();
    }
    this.sockets.clear();
  }

  restore(): void {
    this.down = false;
  }

  async stop(): Promise<void> {
    this.cut();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

/** A second app instance against the same Duo (and the same Redis when the env says so). */
export function startInstance(
  stack: Stack,
  env: Record<string, string | undefined> = {},
): Promise<RunningApp> {
  return startApp({
    DUO_CLIENT_ID: stack.sim.clientId,
    DUO_CLIENT_SECRET: stack.sim.clientSecret,
    DUO_API_HOST: stack.proxy.url,
    RATE_LIMIT_LOGIN_PER_IP: '100000',
    RATE_LIMIT_CALLBACK_PER_IP: '100000',
    ...env,
  });
}

/** A callback URL as received, re-pointed at another instance (same path and query). */
export function onInstance(callback: string, app: RunningApp): string {
  const u = new URL(callback);
  return `${app.url}${u.pathname}${u.search}`;
}

export const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
