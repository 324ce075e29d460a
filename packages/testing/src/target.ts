import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * The app a test talks to: a Nest application (listening or only `init()`-ed, as with supertest),
 * a Node http.Server, or the base URL of a running app.
 */
export type DuoTestServer = string | URL | Server | { getHttpServer(): unknown };

/** A base URL to send requests to, and the undo of any listen this opened. */
export interface OpenTarget {
  base: string;
  release(): Promise<void>;
}

/** Servers this kit put on a port, with how many sign-ons use them now. */
const borrowed = new WeakMap<Server, { base: string; users: number }>();

function isServer(value: unknown): value is Server {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as Server).listen === 'function' &&
    typeof (value as Server).address === 'function'
  );
}

function baseOf(server: Server): string {
  const address = server.address() as AddressInfo;
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  // A server on all interfaces is reached on loopback.
  const reachable = host === '0.0.0.0' ? '127.0.0.1' : host === '[::]' ? '[::1]' : host;
  return `http://${reachable}:${address.port}`;
}

/**
 * Resolves the target to a base URL. A server that does not listen is put on a free port of
 * 127.0.0.1 for the duration (as supertest does) and closed again by `release`.
 */
export async function openTarget(server: DuoTestServer): Promise<OpenTarget> {
  if (typeof server === 'string' || server instanceof URL) {
    const url = new URL(server);
    return { base: url.origin, release: () => Promise.resolve() };
  }
  const http = 'getHttpServer' in server ? server.getHttpServer() : server;
  if (!isServer(http)) {
    throw new TypeError('server must be a Nest application, an http.Server or a base URL');
  }
  const lent = borrowed.get(http);
  if (lent) {
    lent.users++;
  } else if (http.listening) {
    return { base: baseOf(http), release: () => Promise.resolve() };
  } else {
    await new Promise<void>((resolve, reject) => {
      http.once('error', reject);
      http.listen(0, '127.0.0.1', () => {
        http.off('error', reject);
        resolve();
      });
    });
    borrowed.set(http, { base: baseOf(http), users: 1 });
  }
  const entry = borrowed.get(http) as { base: string; users: number };
  return {
    base: entry.base,
    release: async () => {
      if (--entry.users > 0) {
        return;
      }
      borrowed.delete(http);
      await new Promise<void>((resolve) => {
        http.close(() => resolve());
        http.closeIdleConnections();
      });
    },
  };
}
