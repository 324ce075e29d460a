import { randomBytes } from 'node:crypto';

/** One holder at a time of the reconcile job: acquire, keep alive between pages, release. */
export interface ReconcileLock {
  /** A token when acquired, null when another holder has it. */
  acquire(): Promise<string | null>;
  /** Extends the hold; false when the lock was lost (expired and taken): the run must stop. */
  renew(token: string): Promise<boolean>;
  /** Releases the hold if `token` still owns it (never another holder's). */
  release(token: string): Promise<void>;
}

/** The commands the Redis lock needs (an ioredis client has them). */
export interface ReconcileLockRedis {
  set(key: string, value: string, px: 'PX', ms: number, nx: 'NX'): Promise<'OK' | null>;
  eval(script: string, keys: number, ...args: (string | number)[]): Promise<unknown>;
}

// Compare-and-delete, compare-and-extend: only the token's owner releases or extends its lock.
const RELEASE = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) else return 0 end`;
const RENEW = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) else return 0 end`;

/**
 * A lock across instances in Redis: SET NX PX with a random token, released and extended only by
 * its owner (Lua compare). The TTL bounds how long a crashed holder blocks the others.
 */
export class RedisReconcileLock implements ReconcileLock {
  constructor(
    private readonly redis: ReconcileLockRedis,
    private readonly key: string,
    private readonly ttlMs: number,
  ) {}

  async acquire(): Promise<string | null> {
    const token = randomBytes(18).toString('base64url');
    const ok = await this.redis.set(this.key, token, 'PX', this.ttlMs, 'NX');
    return ok === 'OK' ? token : null;
  }

  async renew(token: string): Promise<boolean> {
    return Number(await this.redis.eval(RENEW, 1, this.key, token, this.ttlMs)) === 1;
  }

  async release(token: string): Promise<void> {
    await this.redis.eval(RELEASE, 1, this.key, token);
  }
}

/** Without Redis: one run at a time in this process. */
export class InProcessReconcileLock implements ReconcileLock {
  private holder: string | null = null;

  acquire(): Promise<string | null> {
    if (this.holder) {
      return Promise.resolve(null);
    }
    this.holder = randomBytes(12).toString('base64url');
    return Promise.resolve(this.holder);
  }

  renew(token: string): Promise<boolean> {
    return Promise.resolve(this.holder === token);
  }

  release(token: string): Promise<void> {
    if (this.holder === token) {
      this.holder = null;
    }
    return Promise.resolve();
  }
}
