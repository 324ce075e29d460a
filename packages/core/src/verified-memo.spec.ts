import { describe, expect, it } from '@jest/globals';
import type { Request } from 'express';

import { DuoCookies } from './duo-cookies.js';
import { StoreRecordSealer } from './stores/record-seal.js';
import { VerifiedMemo } from './verified-memo.js';

const SECRET = 'verified-memo-spec-secret-0123456789abcdef';
const req = (cookie: string) => ({ headers: { cookie } }) as unknown as Request;

describe(VerifiedMemo.name, () => {
  it('should answer only for the identical input under the same tag', () => {
    const memo = new VerifiedMemo<string>(4);
    memo.remember('t1', 'input', 'ok');

    expect(memo.get('t1', 'input')).toBe('ok');
    expect(memo.get('t1', 'input ')).toBeUndefined();
    expect(memo.get('t2', 'input')).toBeUndefined();
  });

  it('should hold at most max entries, dropping the oldest first', () => {
    const memo = new VerifiedMemo<number>(3);
    for (let i = 0; i < 5; i++) {
      memo.remember(`t${i}`, 'x', i);
    }

    expect(memo.size).toBe(3);
    expect(memo.get('t0', 'x')).toBeUndefined();
    expect(memo.get('t1', 'x')).toBeUndefined();
    expect([2, 3, 4].map((i) => memo.get(`t${i}`, 'x'))).toEqual([2, 3, 4]);
  });
});

describe('MAC checks with the memo', () => {
  it('should still refuse a record edited after it passed once, under its old tag', () => {
    const sealer = new StoreRecordSealer(SECRET);
    const parts = ['session/v1', 'k', '{"username":"alice"}', '1,2,3', '{}', 'u'];
    const tag = sealer.seal(parts);

    expect(sealer.verify(parts, tag)).toBe('current');
    expect(sealer.verify(parts, tag)).toBe('current');
    expect(
      sealer.verify([...parts.slice(0, 2), '{"username":"admin"}', ...parts.slice(3)], tag),
    ).toBeUndefined();
    expect(
      sealer.verify(
        parts,
        tag.replace(/.$/, (c) => (c === 'A' ? 'B' : 'A')),
      ),
    ).toBeUndefined();
    expect(sealer.verify(parts, tag)).toBe('current');
  });

  it('should still refuse a cookie whose value or signature changed after it passed once', () => {
    const cookies = new DuoCookies(SECRET, false);
    const signed = cookies.sign('session-id-1');
    const other = cookies.sign('session-id-2');
    const [, sig2] = other.split('.');

    expect(cookies.inspect(req(`duo_session=${signed}`), 'duo_session')).toEqual({
      status: 'ok',
      value: 'session-id-1',
    });
    expect(cookies.inspect(req(`duo_session=${signed}`), 'duo_session')).toEqual({
      status: 'ok',
      value: 'session-id-1',
    });
    expect(cookies.inspect(req(`duo_session=session-id-1.${sig2}`), 'duo_session')).toEqual({
      status: 'invalid',
      why: 'forged',
    });
    expect(
      cookies.inspect(req(`duo_session=session-id-3.${signed.split('.')[1]}`), 'duo_session'),
    ).toEqual({
      status: 'invalid',
      why: 'forged',
    });
    expect(
      new DuoCookies(`${SECRET}-other`, false).inspect(req(`duo_session=${signed}`), 'duo_session'),
    ).toEqual({
      status: 'invalid',
      why: 'forged',
    });
  });
});
