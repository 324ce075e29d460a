import { randomBytes } from 'node:crypto';
import { Redis, type RedisOptions } from 'ioredis';

/**
 * A spec's own corner of the local Redis: connections, a fresh key prefix per test under one random
 * root, a key scan, and a `close()` that deletes everything under the root and quits the clients.
 */
export class RedisScratch {
  readonly root: string;
  readonly #clients: Redis[] = [];
  #seq = 0;

  constructor(name: string) {
    this.root = `test:${name}:${randomBytes(6).toString('hex')}:`;
  }

  connect(options: RedisOptions = {}): Redis {
    const client = new Redis({ host: '127.0.0.1', port: 6379, lazyConnect: false, ...options });
    this.#clients.push(client);
    return client;
  }

  freshPrefix(): string {
    this.#seq += 1;
    return `${this.root}${this.#seq}:`;
  }

  /** Every key under `prefix` (full names, without any connection keyPrefix applied). */
  async keysUnder(prefix: string): Promise<string[]> {
    const redis = this.#admin();
    const out: string[] = [];
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
      cursor = next;
      out.push(...keys);
    } while (cursor !== '0');
    return out;
  }

  async close(): Promise<void> {
    const keys = await this.keysUnder(this.root);
    if (keys.length > 0) {
      await this.#admin().del(...keys);
    }
    await Promise.all(this.#clients.filter((c) => c.status !== 'end').map((c) => c.quit()));
  }

  /** The first client opened without a keyPrefix: scans and deletes must see full key names. */
  #admin(): Redis {
    const admin = this.#clients.find((c) => !c.options.keyPrefix && c.status !== 'end');
    return admin ?? this.connect();
  }
}
