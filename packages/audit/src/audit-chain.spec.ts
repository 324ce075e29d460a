import { describe, expect, it } from '@jest/globals';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  GENESIS_HASH,
  appendCheckpoint,
  canonicalRowJson,
  checkpointMac,
  headMac,
  linkHash,
  normalizeChainKey,
  readCheckpoints,
  verifyChain,
} from './audit-chain.js';
import { AUDIT_RECORD_COLUMNS, buildAuditRecord, type AuditRow } from './audit-record.js';

const KEY = normalizeChainKey('unit-test-chain-key-0123456789');

function chain(n: number): {
  rows: AuditRow[];
  head: { seq: number; hash: string; updatedAt: string; mac: string };
} {
  const rows: AuditRow[] = [];
  let prev = GENESIS_HASH;
  for (let seq = 1; seq <= n; seq += 1) {
    const base = {
      ...buildAuditRecord({ type: 'mfa_started', outcome: 'info', username: `u${seq}` }),
      seq,
    };
    const hash = linkHash(KEY, prev, base);
    rows.push({ ...base, prev_hash: prev, hash });
    prev = hash;
  }
  return { rows, head: { seq: n, hash: prev, updatedAt: '', mac: headMac(KEY, n, prev) } };
}

describe('audit chain', () => {
  it('should produce the same canonical JSON when the keys come in another order', () => {
    const r = { ...buildAuditRecord({ type: 'mfa_started', outcome: 'info' }), seq: 3 };
    const reversed = Object.fromEntries(Object.entries(r).reverse()) as typeof r;
    expect(canonicalRowJson(reversed)).toBe(canonicalRowJson(r));
    expect(canonicalRowJson(r)).toMatch(/^\{"access_device_ip":null,.*"seq":3,/);
  });

  it('should change the link hash when any stored field or the key changes', () => {
    const r = {
      ...buildAuditRecord({ type: 'mfa_started', outcome: 'info', username: 'a' }),
      seq: 1,
    };
    const h = linkHash(KEY, GENESIS_HASH, r);
    expect(linkHash(KEY, GENESIS_HASH, { ...r, username: 'b' })).not.toBe(h);
    expect(linkHash(KEY, GENESIS_HASH, { ...r, seq: 2 })).not.toBe(h);
    expect(linkHash(KEY, GENESIS_HASH, { ...r, occurred_at: '2000-01-01T00:00:00.000Z' })).not.toBe(
      h,
    );
    expect(linkHash(normalizeChainKey('another-key-of-enough-length'), GENESIS_HASH, r)).not.toBe(
      h,
    );
    expect(h).toMatch(/^[0-9a-f]{64}$/);
  });

  it('should refuse a chain key shorter than 16 bytes', () => {
    expect(() => normalizeChainKey('short')).toThrow(TypeError);
  });

  it('should verify an intact chain and an empty one', async () => {
    const { rows, head } = chain(5);
    expect(await verifyChain(KEY, { anchor: null, head, rows })).toEqual({
      ok: true,
      checked: 5,
      lastSeq: 5,
    });
    const empty = { seq: 0, hash: GENESIS_HASH, updatedAt: '', mac: headMac(KEY, 0, GENESIS_HASH) };
    expect(await verifyChain(KEY, { anchor: null, head: empty, rows: [] })).toEqual({
      ok: true,
      checked: 0,
      lastSeq: 0,
    });
  });

  it.each(AUDIT_RECORD_COLUMNS)(
    'should report hash_mismatch at the edited row when its %s column is changed',
    async (column) => {
      const { rows, head } = chain(5);
      const edited = rows.map((r) => ({ ...r }));
      const before = edited[2][column];
      (edited[2] as unknown as Record<string, string | null>)[column] =
        before === null ? 'x' : before === 'x' ? 'y' : `${before}x`;
      expect(await verifyChain(KEY, { anchor: null, head, rows: edited })).toEqual({
        ok: false,
        checked: 2,
        lastSeq: 2,
        firstBrokenSeq: 3,
        problem: 'hash_mismatch',
      });
    },
  );

  it('should report hash_mismatch when the newest row is edited or a row is re-hashed with another key', async () => {
    const { rows, head } = chain(3);
    const last = rows.map((r, i) => (i === 2 ? { ...r, username: 'mallory' } : r));
    expect(await verifyChain(KEY, { anchor: null, head, rows: last })).toMatchObject({
      ok: false,
      firstBrokenSeq: 3,
      problem: 'hash_mismatch',
    });
    const otherKey = normalizeChainKey('an-attackers-own-key-0123456789');
    const forged = rows.map((r, i) => {
      if (i !== 1) {
        return r;
      }
      const { prev_hash: prev, hash: _old, ...rest } = { ...r, username: 'mallory' };
      return { ...rest, prev_hash: prev, hash: linkHash(otherKey, prev, rest) };
    });
    expect(await verifyChain(KEY, { anchor: null, head, rows: forged })).toMatchObject({
      ok: false,
      checked: 1,
      firstBrokenSeq: 2,
      problem: 'hash_mismatch',
    });
  });

  it('should report rows without a head when the head row was deleted', async () => {
    const { rows } = chain(3);
    expect(await verifyChain(KEY, { anchor: null, head: null, rows })).toMatchObject({
      ok: false,
      problem: 'head_missing',
      firstBrokenSeq: 4,
    });
  });

  it('should report rows beyond the head when rows were appended without the key', async () => {
    const { rows, head } = chain(4);
    const stale = { ...head, seq: 3, hash: rows[2].hash, mac: headMac(KEY, 3, rows[2].hash) };
    expect(await verifyChain(KEY, { anchor: null, head: stale, rows })).toMatchObject({
      ok: false,
      problem: 'head_mismatch',
      firstBrokenSeq: 4,
    });
  });

  it('should write checkpoint lines that verify and reject a forged line', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'audit-cp-'));
    try {
      const file = join(dir, 'cp.log');
      const { rows, head } = chain(3);
      await appendCheckpoint(file, KEY, 3, rows[2].hash);
      const cps = await readCheckpoints(file);
      expect(cps).toEqual([expect.objectContaining({ seq: 3, hash: rows[2].hash, line: 1 })]);
      expect(await verifyChain(KEY, { anchor: null, head, rows, checkpoints: cps })).toMatchObject({
        ok: true,
      });
      writeFileSync(
        file,
        `${readFileSync(file, 'utf8')}v1 9 ${'a'.repeat(64)} ${'b'.repeat(64)} x\n`,
      );
      expect(
        await verifyChain(KEY, {
          anchor: null,
          head,
          rows,
          checkpoints: await readCheckpoints(file),
        }),
      ).toMatchObject({
        ok: false,
        problem: 'checkpoint_mac',
      });
      expect(await readCheckpoints(join(dir, 'missing.log'))).toEqual([]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('should report a checkpoint mismatch when a checkpointed row was rewritten with the key', async () => {
    const { rows } = chain(3);
    const cps = [{ seq: 2, hash: rows[1].hash, mac: checkpointMac(KEY, 2, rows[1].hash), line: 1 }];
    const { rows: other, head: otherHead } = chain(3); // a different, self-consistent chain
    expect(
      await verifyChain(KEY, { anchor: null, head: otherHead, rows: other, checkpoints: cps }),
    ).toMatchObject({
      ok: false,
      problem: 'checkpoint_mismatch',
      firstBrokenSeq: 2,
    });
  });
});
