/**
 * Tamper evidence for the audit trail.
 *
 *   hash_n = HMAC-SHA256(key, hash_{n-1} || canonical JSON of row n)     (hex, 64 chars)
 *
 * The canonical JSON holds every stored column except prev_hash/hash (id, seq and occurred_at
 * included), keys sorted, no whitespace. hash_0 is 64 zeros, or the hash of the last purged row
 * when a retention anchor exists. The key (AUDIT_CHAIN_KEY) never reaches the database, so someone
 * with write access to the tables cannot recompute links after an edit.
 *
 * The chain head row (seq, hash of the last row) carries its own MAC: deleting the newest rows is
 * detected because the head points past them, and rolling the head back needs the key. An older
 * head value replayed by an attacker (with the rows after it deleted) still verifies; only an
 * external checkpoint file catches that, so verify checks one when given.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { open, mkdir } from 'node:fs/promises';
import { dirname } from 'node:path';
import { AUDIT_RECORD_COLUMNS, type AuditRow } from './audit-record.js';
import { readTextFileOrEmpty } from './read-text-file.js';

export const GENESIS_HASH = '0'.repeat(64);
export const MIN_CHAIN_KEY_BYTES = 16;

export interface ChainHead {
  seq: number;
  hash: string;
  updatedAt: string;
  mac: string;
}

export interface ChainAnchor {
  seq: number;
  hash: string;
  createdAt: string;
  mac: string;
}

export interface ChainCheckpoint {
  seq: number;
  hash: string;
  mac: string;
  line: number;
}

export type ChainProblem =
  /** A row's hash is not HMAC(prev, row): the row was modified (or forged). */
  | 'hash_mismatch'
  /** A row's prev_hash is not the hash of the row before: rows were swapped, inserted or deleted. */
  | 'link_mismatch'
  /** A sequence number is missing: a row was deleted. */
  | 'sequence_gap'
  /** The head row's MAC does not verify: the head was edited. */
  | 'head_mac'
  /** There are rows but no head row. */
  | 'head_missing'
  /** The head points past the last row: the newest rows were deleted. */
  | 'truncated_tail'
  /** The head does not match the last row (rows after the head, or a different hash). */
  | 'head_mismatch'
  /** The retention anchor's MAC does not verify. */
  | 'anchor_mac'
  /** A checkpoint line's MAC does not verify or the line is malformed. */
  | 'checkpoint_mac'
  /** A checkpointed row has another hash now. */
  | 'checkpoint_mismatch';

export interface ChainVerifyResult {
  ok: boolean;
  /** Rows checked. */
  checked: number;
  /** The last sequence number that verified (the anchor's when nothing is left). */
  lastSeq: number;
  /** The first sequence number that cannot be trusted. */
  firstBrokenSeq?: number;
  problem?: ChainProblem;
}

export function normalizeChainKey(key: string | Buffer): Buffer {
  const buf = typeof key === 'string' ? Buffer.from(key, 'utf8') : Buffer.from(key);
  if (buf.length < MIN_CHAIN_KEY_BYTES) {
    throw new TypeError(`audit: the chain key must be at least ${MIN_CHAIN_KEY_BYTES} bytes`);
  }
  return buf;
}

type CanonicalRow = Omit<AuditRow, 'prev_hash' | 'hash'>;
type CanonicalKey = 'seq' | (typeof AUDIT_RECORD_COLUMNS)[number];

/** seq and every record column, sorted once (default sort: UTF-16 code units, as the format says). */
const CANONICAL_KEYS: readonly CanonicalKey[] = ['seq' as const, ...AUDIT_RECORD_COLUMNS].sort();
/** `"key":` of each sorted key, the first with the opening brace and the rest with a comma. */
const CANONICAL_PREFIXES = CANONICAL_KEYS.map(
  (k, i) => `${i === 0 ? '{' : ','}${JSON.stringify(k)}:`,
);

/**
 * Keys sorted, every record column present (null when empty), seq as a number: each value as
 * JSON.stringify writes it alone. Runs on every append and every verified row, so the key order
 * and the `"key":` text are computed once, nulls are written as text, and JSON.stringify runs
 * once per other value. Byte-identical to sorting and stringifying each key and value per row
 * (audit-chain.spec.ts keeps that version and compares the two on generated rows).
 */
export function canonicalRowJson(row: CanonicalRow): string {
  let out = '';
  for (let i = 0; i < CANONICAL_KEYS.length; i += 1) {
    const key = CANONICAL_KEYS[i];
    const value = key === 'seq' ? Number(row.seq) : row[key];
    // undefined is written as null; anything JSON.stringify drops (a function) as `undefined`, as before.
    out +=
      CANONICAL_PREFIXES[i] +
      (value === null || value === undefined ? 'null' : `${JSON.stringify(value)}`);
  }
  return `${out}}`;
}

function hmac(key: Buffer, ...parts: string[]): string {
  const h = createHmac('sha256', key);
  for (const part of parts) {
    h.update(part, 'utf8');
  }
  return h.digest('hex');
}

export function linkHash(
  key: Buffer,
  prevHash: string,
  row: Omit<AuditRow, 'prev_hash' | 'hash'>,
): string {
  return hmac(key, prevHash, canonicalRowJson(row));
}

export function headMac(key: Buffer, seq: number, hash: string): string {
  return hmac(key, 'audit_chain_head\n', String(seq), '\n', hash);
}

export function anchorMac(key: Buffer, seq: number, hash: string): string {
  return hmac(key, 'audit_chain_anchor\n', String(seq), '\n', hash);
}

export function checkpointMac(key: Buffer, seq: number, hash: string): string {
  return hmac(key, 'audit_chain_checkpoint\n', String(seq), '\n', hash);
}

export function safeEqualHex(a: string | null | undefined, b: string): boolean {
  if (typeof a !== 'string' || a.length !== b.length) {
    return false;
  }
  return timingSafeEqual(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

/** Appends one `v1 <seq> <hash> <mac> <iso time>` line and fsyncs it. */
export async function appendCheckpoint(
  file: string,
  key: Buffer,
  seq: number,
  hash: string,
): Promise<void> {
  await mkdir(dirname(file), { recursive: true });
  const handle = await open(file, 'a', 0o600);
  try {
    await handle.appendFile(
      `v1 ${seq} ${hash} ${checkpointMac(key, seq, hash)} ${new Date().toISOString()}\n`,
    );
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** Reads a checkpoint file; a missing file is an empty list. */
export async function readCheckpoints(file: string): Promise<ChainCheckpoint[]> {
  const text = await readTextFileOrEmpty(file);
  const out: ChainCheckpoint[] = [];
  text.split('\n').forEach((raw, index) => {
    const line = raw.trim();
    if (line.length === 0) {
      return;
    }
    const [version, seq, hash, mac] = line.split(' ');
    out.push({
      seq: version === 'v1' && /^\d+$/.test(seq ?? '') ? Number(seq) : -1,
      hash: hash ?? '',
      mac: mac ?? '',
      line: index + 1,
    });
  });
  return out;
}

export interface ChainSource {
  /** The newest retention anchor (or null). */
  anchor: ChainAnchor | null;
  /** The head, or a function read after the rows are exhausted (so concurrent appends agree). */
  head: ChainHead | null | (() => Promise<ChainHead | null>);
  /** Rows with seq greater than the anchor's, ascending by seq. */
  rows: AsyncIterable<AuditRow> | Iterable<AuditRow>;
  checkpoints?: readonly ChainCheckpoint[];
}

function broken(
  checked: number,
  lastSeq: number,
  firstBrokenSeq: number,
  problem: ChainProblem,
): ChainVerifyResult {
  return { ok: false, checked, lastSeq, firstBrokenSeq, problem };
}

/** Walks the chain once; stops at the first problem. */
export async function verifyChain(
  keyInput: string | Buffer,
  source: ChainSource,
): Promise<ChainVerifyResult> {
  const key = normalizeChainKey(keyInput);
  let prevSeq = 0;
  let prevHash = GENESIS_HASH;
  if (source.anchor) {
    if (!safeEqualHex(source.anchor.mac, anchorMac(key, source.anchor.seq, source.anchor.hash))) {
      return broken(0, 0, source.anchor.seq + 1, 'anchor_mac');
    }
    prevSeq = source.anchor.seq;
    prevHash = source.anchor.hash;
  }

  const expected = new Map<number, ChainCheckpoint>();
  let maxCheckpoint = -1;
  for (const cp of source.checkpoints ?? []) {
    if (cp.seq < 0 || !safeEqualHex(cp.mac, checkpointMac(key, cp.seq, cp.hash))) {
      return broken(0, prevSeq, Math.max(cp.seq, 0) + 1, 'checkpoint_mac');
    }
    if (cp.seq > prevSeq) {
      expected.set(cp.seq, cp);
      maxCheckpoint = Math.max(maxCheckpoint, cp.seq);
    }
  }

  let checked = 0;
  for await (const row of source.rows) {
    const seq = Number(row.seq);
    if (seq !== prevSeq + 1) {
      return broken(checked, prevSeq, prevSeq + 1, 'sequence_gap');
    }
    if (row.prev_hash !== prevHash) {
      return broken(checked, prevSeq, seq, 'link_mismatch');
    }
    if (!safeEqualHex(row.hash, linkHash(key, prevHash, row))) {
      return broken(checked, prevSeq, seq, 'hash_mismatch');
    }
    const cp = expected.get(seq);
    if (cp && cp.hash !== row.hash) {
      return broken(checked, prevSeq, seq, 'checkpoint_mismatch');
    }
    checked += 1;
    prevSeq = seq;
    prevHash = row.hash;
  }

  if (maxCheckpoint > prevSeq) {
    return broken(checked, prevSeq, prevSeq + 1, 'truncated_tail');
  }
  const head = typeof source.head === 'function' ? await source.head() : source.head;
  if (!head) {
    return checked > 0 || source.anchor
      ? broken(checked, prevSeq, prevSeq + 1, 'head_missing')
      : { ok: true, checked, lastSeq: 0 };
  }
  if (!safeEqualHex(head.mac, headMac(key, Number(head.seq), head.hash))) {
    return broken(checked, prevSeq, Math.min(Number(head.seq), prevSeq) + 1, 'head_mac');
  }
  if (Number(head.seq) > prevSeq) {
    return broken(checked, prevSeq, prevSeq + 1, 'truncated_tail');
  }
  if (Number(head.seq) < prevSeq) {
    return broken(checked, prevSeq, Number(head.seq) + 1, 'head_mismatch');
  }
  if (head.hash !== prevHash) {
    return broken(checked, prevSeq, prevSeq, 'head_mismatch');
  }
  return { ok: true, checked, lastSeq: prevSeq };
}
