import { createServer, type IncomingMessage, type Server } from 'node:http';
import { connect, type Socket } from 'node:net';

/** How the test proxy answers a CONNECT: tunnel it, refuse it with 407, or never answer. */
export type ProxyMode = 'tunnel' | '407' | 'hang';

export interface ConnectProxy {
  url: string;
  port: number;
  /** CONNECT requests seen (each is one tunnel asked for). */
  connects: number;
  /** Tunnels opened to the target. */
  tunnels: number;
  /** The CONNECT targets (host:port), in order. */
  targets: string[];
  /** Every Proxy-Authorization header received (undefined when absent). */
  authorizations: (string | undefined)[];
  mode: ProxyMode;
  /** Only this Proxy-Authorization is let through (in 'tunnel' mode); unset: any. */
  requireAuthorization?: string;
  reset(): void;
  close(): Promise<void>;
}

/**
 * A forward proxy on 127.0.0.1 that only tunnels (CONNECT), as corporate proxies do for https.
 * Plain proxied requests get 405. It counts tunnels and records the Proxy-Authorization header.
 */
export async function startConnectProxy(): Promise<ConnectProxy> {
  const sockets = new Set<Socket>();
  const server: Server = createServer((_req, res) => {
    res.writeHead(405, { connection: 'close' }).end();
  });
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  const proxy: ConnectProxy = {
    url: '',
    port: 0,
    connects: 0,
    tunnels: 0,
    targets: [],
    authorizations: [],
    mode: 'tunnel',
    reset() {
      proxy.connects = 0;
      proxy.tunnels = 0;
      proxy.targets = [];
      proxy.authorizations = [];
      proxy.mode = 'tunnel';
      proxy.requireAuthorization = undefined;
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) {
          s.destroy();
        }
        server.close(() => resolve());
      }),
  };
  server.on('connect', (req: IncomingMessage, client: Socket, head: Buffer) => {
    proxy.connects++;
    proxy.targets.push(req.url ?? '');
    proxy.authorizations.push(req.headers['proxy-authorization']);
    client.on('error', () => undefined);
    if (proxy.mode === 'hang') {
      return; // accepted at TCP level, never answered
    }
    const denied =
      proxy.mode === '407' ||
      (proxy.requireAuthorization !== undefined &&
        req.headers['proxy-authorization'] !== proxy.requireAuthorization);
    if (denied) {
      client.end(
        'HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm="test"\r\nContent-Length: 0\r\n\r\n',
      );
      return;
    }
    const [host, port] = splitTarget(req.url ?? '');
    const upstream = connect(port, host, () => {
      proxy.tunnels++;
      client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      if (head.length > 0) {
        upstream.write(head);
      }
      upstream.pipe(client);
      client.pipe(upstream);
    });
    sockets.add(upstream);
    upstream.on('close', () => sockets.delete(upstream));
    upstream.on('error', () => client.destroy());
    client.on('close', () => upstream.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  proxy.port = (server.address() as { port: number }).port;
  proxy.url = `http://127.0.0.1:${proxy.port}`;
  return proxy;
}

function splitTarget(target: string): [string, number] {
  const m = /^\[?([^\]]+?)\]?:(\d+)$/.exec(target);
  return m ? [m[1], Number(m[2])] : [target, 443];
}
