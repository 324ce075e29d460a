import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Cluster, type ClusterOptions } from 'ioredis';

const run = promisify(execFile);
const REDIS_SERVER = process.env.REDIS_SERVER_BIN ?? '/usr/bin/redis-server';
const REDIS_CLI = process.env.REDIS_CLI_BIN ?? '/usr/bin/redis-cli';

/** A running local Redis Cluster; see {@link startRedisCluster}. */
export interface RedisClusterFixture {
  /** The masters' ports, one per node. */
  readonly ports: readonly number[];
  /** A new ioredis Cluster client on these nodes; it is quit by `stop()` if still open. */
  connect(options?: ClusterOptions): Cluster;
  /** Quits the clients, kills every node (SIGTERM, then SIGKILL) and removes the temp dir. */
  stop(): Promise<void>;
}

/**
 * Starts a local Redis Cluster of `masters` masters and no replicas, on free ports picked at run
 * time (several spec files or helpers may run clusters side by side), in a fresh temp dir with no
 * persistence. Resolves once every node reports `cluster_state:ok`.
 *
 * Use it from a spec's setup and always stop it:
 *
 * ```ts
 * let cluster: RedisClusterFixture;
 * beforeAll(async () => { cluster = await startRedisCluster(); }, 60_000);
 * afterAll(() => cluster?.stop());
 * ```
 *
 * The nodes are also killed if the test process exits without `stop()`, so none is left behind.
 * Binaries: /usr/bin/redis-server and /usr/bin/redis-cli (REDIS_SERVER_BIN / REDIS_CLI_BIN).
 */
export async function startRedisCluster(masters = 3): Promise<RedisClusterFixture> {
  const dir = mkdtempSync(join(tmpdir(), 'redis-cluster-'));
  const nodes: ChildProcess[] = [];
  const clients: Cluster[] = [];
  const killAll = (): void => {
    for (const p of nodes) {
      if (p.exitCode === null && p.signalCode === null) {
        p.kill('SIGKILL');
      }
    }
  };
  process.once('exit', killAll);

  const stop = async (): Promise<void> => {
    await Promise.all(
      clients.filter((c) => c.status !== 'end').map((c) => c.quit().catch(() => c.disconnect())),
    );
    await Promise.all(nodes.map(terminate));
    process.removeListener('exit', killAll);
    rmSync(dir, { recursive: true, force: true });
  };

  try {
    const ports: number[] = [];
    while (ports.length < masters) {
      const { port, node } = await startNode(dir, ports);
      ports.push(port);
      nodes.push(node);
    }
    await run(REDIS_CLI, [
      '--cluster',
      'create',
      ...ports.map((p) => `127.0.0.1:${p}`),
      '--cluster-replicas',
      '0',
      '--cluster-yes',
    ]);
    for (const port of ports) {
      await waitClusterOk(port);
    }
    return {
      ports,
      connect(options: ClusterOptions = {}): Cluster {
        const client = new Cluster(
          ports.map((port) => ({ host: '127.0.0.1', port })),
          options,
        );
        clients.push(client);
        return client;
      },
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}

/** One cluster node on a port that is free with its bus port (port + 10000); retries on a race. */
async function startNode(
  dir: string,
  taken: number[],
): Promise<{ port: number; node: ChildProcess }> {
  let lastError: unknown;
  for (let attempt = 0; attempt < 10; attempt++) {
    // Below the kernel's ephemeral range (32768+), so port + 10000 stays a valid, rarely used port.
    const port = 20_000 + Math.floor(Math.random() * 12_000);
    if (taken.includes(port) || !(await isFree(port)) || !(await isFree(port + 10_000))) {
      continue;
    }
    const node = spawn(
      REDIS_SERVER,
      [
        '--port',
        String(port),
        '--cluster-enabled',
        'yes',
        '--cluster-config-file',
        join(dir, `nodes-${port}.conf`),
        '--dir',
        dir,
        '--save',
        '',
        '--appendonly',
        'no',
        '--bind',
        '127.0.0.1',
        '--daemonize',
        'no',
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    try {
      await readyOrExit(node);
      return { port, node };
    } catch (err) {
      // Another process took the port between the check and the bind: try another one.
      lastError = err;
      await terminate(node);
    }
  }
  throw new Error(`no free port for a Redis Cluster node: ${String(lastError)}`);
}

function readyOrExit(node: ChildProcess): Promise<void> {
  return new Promise((resolve, reject) => {
    let log = '';
    const timer = setTimeout(() => reject(new Error(`redis-server not ready: ${log}`)), 10_000);
    node.stdout?.on('data', (chunk: Buffer) => {
      log += chunk.toString();
      if (log.includes('Ready to accept connections')) {
        clearTimeout(timer);
        node.stdout?.resume(); // keep draining so the node never blocks on a full pipe
        resolve();
      }
    });
    node.stderr?.resume();
    node.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`redis-server exited (${code}): ${log.slice(-500)}`));
    });
  });
}

function isFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.once('error', () => resolve(false));
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
  });
}

async function waitClusterOk(port: number): Promise<void> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    const { stdout } = await run(REDIS_CLI, ['-p', String(port), 'cluster', 'info']);
    if (stdout.includes('cluster_state:ok')) {
      return;
    }
    if (Date.now() > deadline) {
      throw new Error(`node ${port}: cluster_state not ok`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

function terminate(node: ChildProcess): Promise<void> {
  if (node.exitCode !== null || node.signalCode !== null) {
    return Promise.resolve();
  }
  return new Promise((resolve) => {
    const force = setTimeout(() => node.kill('SIGKILL'), 3_000);
    node.once('exit', () => {
      clearTimeout(force);
      resolve();
    });
    node.kill('SIGTERM');
  });
}
