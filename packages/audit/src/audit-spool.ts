/**
 * The local outage spool: one append-only NDJSON file per instance id, each line one prepared
 * AuditRecord (already sanitized: no secret ever reaches the disk), fsync'd before append()
 * resolves.
 *
 * Replay moves the file aside (`*.replaying.ndjson`, an atomic rename) so new events go to a fresh
 * file, writes its records in order through the sink (which deduplicates by event id), and only
 * then deletes it. A crash at any point leaves the records on disk; replaying them again inserts
 * nothing twice. Lines that do not parse (a write torn by a crash) go to `*.rejected.ndjson`.
 *
 * Two processes must not share an instance id (they would share a file).
 */
import { open, rename, stat, unlink, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { isAuditRecord, type AuditRecord } from './audit-record.js';
import { readTextFileOrEmpty } from './read-text-file.js';

export interface SpoolReplayResult {
  replayed: number;
  rejected: number;
}

export class AuditSpool {
  readonly file: string;
  readonly replayingFile: string;
  readonly rejectedFile: string;
  private appendChain: Promise<void> = Promise.resolve();
  private replaying: Promise<SpoolReplayResult> | null = null;
  private pendingFlag = false;
  private initialized: Promise<void> | null = null;

  constructor(
    readonly dir: string,
    readonly instanceId: string,
  ) {
    if (!/^[A-Za-z0-9_.-]{1,128}$/.test(instanceId)) {
      throw new TypeError('audit spool: invalid instance id');
    }
    this.file = join(dir, `audit-spool-${instanceId}.ndjson`);
    this.replayingFile = join(dir, `audit-spool-${instanceId}.replaying.ndjson`);
    this.rejectedFile = join(dir, `audit-spool-${instanceId}.rejected.ndjson`);
  }

  /** Creates the folder and notices events left by an earlier run. */
  init(): Promise<void> {
    this.initialized ??= (async () => {
      await mkdir(this.dir, { recursive: true, mode: 0o700 });
      // A crash may have torn the last line: end it, so the next record starts on a line of its own.
      await terminateLastLine(this.file);
      this.pendingFlag = (await sizeOf(this.file)) > 0 || (await sizeOf(this.replayingFile)) > 0;
    })();
    return this.initialized;
  }

  /** True when events wait for replay (new events then go to the spool too, to keep order). */
  get pending(): boolean {
    return this.pendingFlag;
  }

  /** Appends one record and fsyncs; appends are serialized so lines never interleave. */
  append(record: AuditRecord): Promise<void> {
    const line = `${JSON.stringify(record)}\n`;
    const run = this.appendChain.then(async () => {
      await this.init();
      await appendDurably(this.file, line);
      this.pendingFlag = true;
    });
    this.appendChain = run.catch(() => undefined);
    return run;
  }

  /** Number of records waiting (reads the files; for metrics and tests). */
  async depth(): Promise<number> {
    await this.init();
    // Under the append lock: a replay moves the live file aside under that lock, and a read of
    // both files with that rename in between would count neither (0 while records still wait).
    return this.withAppendLock(async () => {
      let n = 0;
      for (const f of [this.replayingFile, this.file]) {
        n += (await readLines(f)).length;
      }
      return n;
    });
  }

  /**
   * Replays everything spooled, oldest first, in batches through `sink` (which must be
   * idempotent by record id). Single-flight: a call during a replay joins it.
   */
  replay(
    sink: (records: AuditRecord[]) => Promise<unknown>,
    batchSize = 200,
  ): Promise<SpoolReplayResult> {
    this.replaying ??= this.replayAll(sink, batchSize).finally(() => {
      this.replaying = null;
    });
    return this.replaying;
  }

  private async replayAll(
    sink: (records: AuditRecord[]) => Promise<unknown>,
    batchSize: number,
  ): Promise<SpoolReplayResult> {
    await this.init();
    const total: SpoolReplayResult = { replayed: 0, rejected: 0 };
    // Bounded: events keep arriving while the spool is pending; each round drains one file.
    for (let round = 0; round < 100; round += 1) {
      if ((await sizeOf(this.replayingFile)) === 0) {
        // Move the live file aside between two appends.
        const moved = await this.withAppendLock(async () => {
          if ((await sizeOf(this.file)) === 0) {
            return false;
          }
          await rename(this.file, this.replayingFile);
          return true;
        });
        if (!moved) {
          await removeIfExists(this.replayingFile);
          await this.withAppendLock(async () => {
            this.pendingFlag = (await sizeOf(this.file)) > 0;
          });
          return total;
        }
      }
      const lines = await readLines(this.replayingFile);
      const records: AuditRecord[] = [];
      const rejected: string[] = [];
      for (const line of lines) {
        let parsed: unknown;
        try {
          parsed = JSON.parse(line);
        } catch {
          parsed = undefined;
        }
        if (isAuditRecord(parsed)) {
          records.push(parsed);
        } else {
          rejected.push(line);
        }
      }
      for (let i = 0; i < records.length; i += batchSize) {
        await sink(records.slice(i, i + batchSize));
      }
      if (rejected.length > 0) {
        await appendDurably(this.rejectedFile, `${rejected.join('\n')}\n`);
      }
      await unlink(this.replayingFile);
      total.replayed += records.length;
      total.rejected += rejected.length;
    }
    return total;
  }

  private withAppendLock<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.appendChain.then(fn);
    this.appendChain = run.then(
      () => undefined,
      () => undefined,
    );
    return run;
  }
}

async function sizeOf(file: string): Promise<number> {
  try {
    return (await stat(file)).size;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
      return 0;
    }
    throw err;
  }
}

async function terminateLastLine(file: string): Promise<void> {
  const size = await sizeOf(file);
  if (size === 0) {
    return;
  }
  const handle = await open(file, 'r');
  const last = Buffer.alloc(1);
  try {
    await handle.read(last, 0, 1, size - 1);
  } finally {
    await handle.close();
  }
  if (last[0] !== 0x0a) {
    await appendDurably(file, '\n');
  }
}

async function removeIfExists(file: string): Promise<void> {
  try {
    await unlink(file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
      throw err;
    }
  }
}

async function readLines(file: string): Promise<string[]> {
  const text = await readTextFileOrEmpty(file);
  return text.split('\n').filter((l) => l.trim().length > 0);
}

async function appendDurably(file: string, text: string): Promise<void> {
  const handle = await open(file, 'a', 0o600);
  try {
    await handle.appendFile(text, 'utf8');
    await handle.sync();
  } finally {
    await handle.close();
  }
}
