import { describe, expect, it } from 'vitest';
import { itemSize } from '../../bench/capacity-units';

/**
 * The capacity bench's item sizes follow AWS's "Item sizes and formats": names and strings in
 * UTF-8 bytes, numbers by significant digits, lists and maps 3 bytes plus 1 per element.
 */
describe('itemSize (bench/capacity-units.ts)', () => {
  it('counts names and strings in UTF-8 bytes', () => {
    expect(itemSize({ a: { S: 'abc' } })).toBe(4);
    expect(itemSize({ é: { S: '😀😀' } })).toBe(2 + 8);
  });

  it('counts a number as its significant digits / 2, rounded up, + 1', () => {
    expect(itemSize({ n: { N: '12345' } })).toBe(1 + 4);
    expect(itemSize({ n: { N: '-0.00100' } })).toBe(1 + 2);
    expect(itemSize({ n: { N: '1700000000000' } })).toBe(1 + 2);
    expect(itemSize({ n: { N: '1712345678901' } })).toBe(1 + 8);
  });

  it('counts a list or map as 3 bytes, its elements and 1 byte per element', () => {
    expect(itemSize({ m: { M: {} } })).toBe(1 + 3);
    expect(itemSize({ m: { M: { k: { S: 'v' } } } })).toBe(1 + 3 + (1 + 1 + 1));
    expect(itemSize({ l: { L: [{ BOOL: true }, { NULL: true }] } })).toBe(1 + 3 + 2 + 2);
  });

  it('counts a set as the sum of its elements', () => {
    expect(itemSize({ s: { SS: ['ab', 'c'] } })).toBe(1 + 3);
    expect(itemSize({ s: { NS: ['1', '22'] } })).toBe(1 + 2 + 2);
  });
});
