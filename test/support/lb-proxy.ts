import { createServer, request, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';

/** The header a test sets to pick the backend of one request (absent: round robin). */
export const BACKEND_HEADER = 'x-test-backend';

export interface LoadBalancer {
  /** The one origin browsers see (PUBLIC_URL of every backend). */
  url: string;
  /** Requests served per backend name. */
  hits: Record<string, number>;
  close(): Promise<void>;
}

/**
 * A tiny HTTP load balancer in front of several app instances: one origin for the browser, and the
 * test decides which backend serves each request (`x-test-backend: <name>`), like a non-sticky
 * balancer would. The header is removed before forwarding; Host is kept, as proxies do.
 */
export async function startLoadBalancer(backends: Record<string, number>): Promise<LoadBalancer> {
  const names = Object.keys(backends);
  const hits: Record<string, number> = Object.fromEntries(names.map((n) => [n, 0]));
  let next = 0;
  const server = createServer((req, res) => {
    const asked = req.headers[BACKEND_HEADER];
    const name =
      typeof asked === 'string' && asked in backends ? asked : names[next++ % names.length];
    hits[name] += 1;
    const headers: IncomingHttpHeaders = { ...req.headers };
    delete headers[BACKEND_HEADER];
    const upstream = request(
      { host: '127.0.0.1', port: backends[name], method: req.method, path: req.url, headers },
      (up) => {
        res.writeHead(up.statusCode ?? 502, up.headers);
        up.pipe(res);
      },
    );
    upstream.on('error', () => {
      if (!res.headersSent) {
        res.writeHead(502, { 'content-type': 'text/plain' });
      }
      res.end('bad gateway');
    });
    req.pipe(upstream);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    hits,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
