import { describe, expect, it } from '@jest/globals';
import { multipartBoundary, parseBody, parseMultipart } from './params.js';

function multipart(boundary: string, fields: [string, string][]): Buffer {
  const parts = fields.map(
    ([name, value]) =>
      `--${boundary}\r\nContent-Disposition: form-data; name="${name}"\r\n\r\n${value}\r\n`,
  );
  return Buffer.from(`${parts.join('')}--${boundary}--\r\n`, 'utf8');
}

describe(parseMultipart.name, () => {
  it('should read every field when the body is multipart/form-data', () => {
    const body = multipart('----X1', [
      ['code', 'abc'],
      ['state', 'état\r\nzwei Zeilen'],
      ['empty', ''],
    ]);
    const params = parseMultipart(body, '----X1');
    expect(Object.fromEntries(params)).toEqual({
      code: 'abc',
      state: 'état\r\nzwei Zeilen',
      empty: '',
    });
  });

  it('should keep the first value when a field is repeated', () => {
    const params = parseMultipart(
      multipart('b', [
        ['a', '1'],
        ['a', '2'],
      ]),
      'b',
    );
    expect(params.get('a')).toBe('1');
  });

  it('should return nothing when the body has no closing delimiter', () => {
    expect(
      parseMultipart(Buffer.from('--b\r\nContent-Disposition: form-data; name="a"\r\n\r\n1'), 'b')
        .size,
    ).toBe(0);
  });
});

describe(multipartBoundary.name, () => {
  it.each([
    ['multipart/form-data; boundary=abc', 'abc'],
    ['multipart/form-data; charset=utf-8; boundary="a b"', 'a b'],
    ['application/x-www-form-urlencoded', null],
  ])('should read %s as %p', (type, expected) => {
    expect(multipartBoundary(type)).toBe(expected);
  });
});

describe(parseBody.name, () => {
  it('should parse urlencoded bodies and ignore JSON ones when the content type says so', () => {
    const form = parseBody(Buffer.from('a=1&b=%C3%A9+x'), 'application/x-www-form-urlencoded');
    expect(Object.fromEntries(form)).toEqual({ a: '1', b: 'é x' });
    expect(parseBody(Buffer.from('{"a":1}'), 'application/json').size).toBe(0);
  });
});
