import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
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

type CanonicalInput = Parameters<typeof canonicalRowJson>[0];

/**
 * canonicalRowJson as it was first written (sort the keys and stringify each key and value per
 * row). The chain hash is over this text, so the faster version must give the same bytes for
 * every row: kept here as the reference the property tests compare against.
 */
function referenceCanonicalRowJson(row: CanonicalInput): string {
  const obj: Record<string, string | number | null> = { seq: Number(row.seq) };
  for (const column of AUDIT_RECORD_COLUMNS) {
    const value = row[column];
    obj[column] = value === undefined ? null : value;
  }
  const keys = Object.keys(obj).sort();
  return `{${keys.map((k) => `${JSON.stringify(k)}:${JSON.stringify(obj[k])}`).join(',')}}`;
}

/** What a function returns, or which error it throws. */
function outcome(f: () => string): { json: string } | { threw: string } {
  try {
    return { json: f() };
  } catch (err) {
    return { threw: err instanceof Error ? err.name : typeof err };
  }
}

/** Any UTF-16 text: astral characters, controls, quotes, backslashes and lone surrogates. */
const anyText = fc.string({
  unit: fc.oneof(
    fc.constantFrom(
      '"',
      '\\',
      '\n',
      '\u0000',
      '\u001f',
      '\u007f',
      '\u2028',
      '\u2029',
      '\ud800',
      '\udfff',
    ),
    fc.string({ unit: 'binary', minLength: 1, maxLength: 1 }),
    fc.string({ unit: 'grapheme', minLength: 1, maxLength: 1 }),
  ),
  maxLength: 40,
});
/** Keys a hostile or careless writer might use, inside JSON objects and on the row itself. */
const oddKey = fc.oneof(
  fc.constantFrom(
    '__proto__',
    'constructor',
    'toString',
    'seq',
    'hash',
    'prev_hash',
    '',
    ' ',
    '0',
    '10',
    '-1',
    'Seq',
    'id ',
  ),
  anyText,
);
/** Nested JSON-like values (objects with odd keys, arrays, unicode, numbers, nulls). */
const nested = fc.letrec((tie) => ({
  value: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    fc.constant(null),
    fc.boolean(),
    fc.double(),
    fc.integer(),
    anyText,
    fc.array(tie('value'), { maxLength: 4 }),
    fc.dictionary(oddKey, tie('value'), { maxKeys: 4 }),
  ),
})).value;
/** What a column can hold: mostly text or null, but also what a damaged database could return. */
const columnValue = fc.oneof(
  { arbitrary: fc.constant(null), weight: 3 },
  { arbitrary: fc.constant(undefined), weight: 1 },
  { arbitrary: anyText, weight: 6 },
  { arbitrary: nested.map((v) => JSON.stringify(v) ?? null), weight: 2 },
  { arbitrary: nested, weight: 1 },
  { arbitrary: fc.oneof(fc.double(), fc.integer(), fc.boolean()), weight: 1 },
);
const seqValue = fc.oneof(
  fc.nat(),
  fc.integer(),
  fc.double(),
  fc.nat().map(String),
  anyText,
  fc.constant(null),
);
const anyRow = fc
  .record({
    columns: fc.tuple(...AUDIT_RECORD_COLUMNS.map(() => columnValue)),
    seq: seqValue,
    extra: fc.dictionary(oddKey, columnValue, { maxKeys: 3 }),
    reversed: fc.boolean(),
  })
  .map(({ columns, seq, extra, reversed }) => {
    const entries: [string, unknown][] = [
      ...Object.entries(extra),
      ...AUDIT_RECORD_COLUMNS.map((c, i): [string, unknown] => [c, columns[i]]),
      ['seq', seq],
    ];
    // defineProperty: an odd key such as __proto__ becomes an own property, not the prototype.
    const row = {};
    for (const [k, v] of reversed ? entries.reverse() : entries) {
      Object.defineProperty(row, k, { value: v, enumerable: true, writable: true });
    }
    return row as CanonicalInput;
  });
/** Rows as the append path builds them, from arbitrary (nested, unicode) Duo auth contexts. */
const builtRow = fc
  .record({
    username: fc.option(anyText),
    authContext: fc.oneof(
      nested,
      fc.record(
        {
          txid: anyText,
          timestamp: fc.double(),
          result: anyText,
          reason: anyText,
          factor: anyText,
          user: fc.record({ name: anyText, groups: fc.array(anyText, { maxLength: 5 }) }),
          application: fc.record({ name: anyText }),
          access_device: fc.record({
            ip: anyText,
            browser: anyText,
            location: fc.record({ city: anyText, state: anyText, country: anyText }),
          }),
          auth_device: fc.record({ name: anyText, location: fc.record({ city: anyText }) }),
        },
        { requiredKeys: [] },
      ),
    ),
    detail: fc.dictionary(
      fc.stringMatching(/^[A-Za-z][A-Za-z0-9_.-]{0,8}$/),
      fc.oneof(anyText, fc.double(), fc.boolean(), fc.constant(null)),
      { maxKeys: 5 },
    ),
    seq: fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER }),
  })
  .map(({ username, authContext, detail, seq }) => ({
    ...buildAuditRecord({
      type: 'mfa_succeeded',
      outcome: 'success',
      username,
      authContext: authContext as never,
      detail,
      userAgent: 'Mozilla/5.0 ✓',
    }),
    seq,
  }));

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
  it('should write the canonical JSON byte for byte as the reference on any row', () => {
    fc.assert(
      fc.property(anyRow, (row) => {
        // A value no row can hold (a seq that is an object without a primitive) throws in both.
        expect(outcome(() => canonicalRowJson(row))).toEqual(
          outcome(() => referenceCanonicalRowJson(row)),
        );
      }),
      { numRuns: 3000 },
    );
  });

  it('should write the canonical JSON byte for byte as the reference on built records', () => {
    fc.assert(
      fc.property(builtRow, (row) => {
        expect(canonicalRowJson(row)).toBe(referenceCanonicalRowJson(row));
      }),
      { numRuns: 1000 },
    );
  });

  it('should keep the link hash of a fixed row (a vector computed before canonicalRowJson was optimized)', () => {
    const row = {
      id: '01234567-89ab-4cde-8f01-23456789abcd',
      occurred_at: '2026-12-01T12:34:56.789Z',
      type: 'mfa_succeeded',
      outcome: 'success',
      username: 'zoë "z" \\ ✓ 𝄞',
      reason: null,
      txid: 'tx-1',
      factor: 'duo_push',
      duo_result: 'allow',
      duo_reason: null,
      duo_status: 'allow',
      auth_device_ip: null,
      auth_device_name: null,
      auth_device_location: null,
      access_device_ip: '203.0.113.7',
      access_device_location: 'Ann Arbor, United States',
      application: null,
      groups: '["Staff","Ünïcode"]',
      client_ip: '203.0.113.7',
      user_agent: 'Mozilla/5.0',
      correlation_id: 'corr-1',
      instance_id: 'node-a',
      auth_context:
        '{"txid":"tx-1","timestamp":1790000000,"factor":"duo_push","result":"allow","user":{"name":"zoë","groups":["Staff","Ünïcode"]},"access_device":{"ip":"203.0.113.7","location":{"city":"Ann Arbor","country":"United States"}}}',
      detail: '{"attempt":2,"note":"line\\\\u000abreak","return_to":"/home?x=1"}',
      seq: 42,
    } as const;
    expect(linkHash(KEY, GENESIS_HASH, row)).toBe(
      'cb67e563beb3a76ddc826048a1e4d780017ebe2a0b78426005991da046f358db',
    );
  });

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
