import { describe, expect, it } from 'vitest';
import { errorMessage, jsonDepthExceeds, parseClientFrame } from '../../lambda/core/protocol';
import { countChars, estimateTokens } from '../../lambda/core/tokens';

const parse = (frame: unknown, maxMessageChars = 10) =>
  parseClientFrame(typeof frame === 'string' ? frame : JSON.stringify(frame), { maxMessageChars });

describe('parseClientFrame', () => {
  it('accepts every action of protocol v1 and drops unknown fields such as userId', () => {
    expect(
      parse({ action: 'sendMessage', message: 'hi', requestId: 'r-1', maxTokens: 5, userId: 'mallory' }),
    ).toEqual({
      ok: true,
      request: { action: 'sendMessage', message: 'hi', requestId: 'r-1', maxTokens: 5 },
    });
    for (const action of ['status', 'resume', 'ping'])
      expect(parse({ action })).toEqual({ ok: true, request: { action } });
    expect(parse({ action: 'cancel', requestId: 'abc' })).toEqual({
      ok: true,
      request: { action: 'cancel', requestId: 'abc' },
    });
  });

  it.each([
    ['an empty frame', '', 'INVALID_REQUEST'],
    ['malformed JSON', '{"action":', 'INVALID_REQUEST'],
    ['an array', '[]', 'INVALID_REQUEST'],
    ['null', 'null', 'INVALID_REQUEST'],
    ['no action', { message: 'hi' }, 'UNKNOWN_ACTION'],
    ['an unknown action', { action: 'shutdown' }, 'UNKNOWN_ACTION'],
    ['an inherited name as action', { action: 'constructor' }, 'UNKNOWN_ACTION'],
    ['a numeric action', { action: 7 }, 'UNKNOWN_ACTION'],
    ['a message of the wrong type', { action: 'sendMessage', message: 7 }, 'INVALID_REQUEST'],
    ['an empty message', { action: 'sendMessage', message: '' }, 'INVALID_REQUEST'],
    ['a message over the limit', { action: 'sendMessage', message: 'x'.repeat(11) }, 'MESSAGE_TOO_LARGE'],
    ['a bad requestId', { action: 'sendMessage', message: 'hi', requestId: 'a b' }, 'INVALID_REQUEST'],
    ['a zero maxTokens', { action: 'sendMessage', message: 'hi', maxTokens: 0 }, 'INVALID_REQUEST'],
    ['a string maxTokens', { action: 'sendMessage', message: 'hi', maxTokens: '5' }, 'INVALID_REQUEST'],
    ['cancel without id', { action: 'cancel' }, 'INVALID_REQUEST'],
    ['a __proto__ key', '{"action":"ping","__proto__":{"x":1}}', 'INVALID_REQUEST'],
    ['deep nesting', `{"action":"ping","a":${'['.repeat(40)}${']'.repeat(40)}}`, 'INVALID_REQUEST'],
  ])('refuses %s with %s', (_name, frame, code) => {
    const result = parse(frame);
    expect(result.ok).toBe(false);
    expect(!result.ok && result.error.code).toBe(code);
  });

  it('counts characters as code points, so emoji are one each', () => {
    expect(parse({ action: 'sendMessage', message: '😀'.repeat(10) }).ok).toBe(true);
    expect(parse({ action: 'sendMessage', message: '😀'.repeat(11) })).toMatchObject({
      ok: false,
      error: { code: 'MESSAGE_TOO_LARGE', details: { maxMessageChars: 10, messageChars: 11 } },
    });
  });

  it('echoes a well-formed requestId in the refusal so the client can match it', () => {
    expect(parse({ action: 'sendMessage', message: 'x'.repeat(20), requestId: 'mine' })).toMatchObject({
      ok: false,
      error: { requestId: 'mine' },
    });
  });
});

describe('jsonDepthExceeds', () => {
  it('ignores brackets inside strings', () => {
    expect(jsonDepthExceeds(`{"a":"${'['.repeat(100)}"}`, 3)).toBe(false);
    expect(jsonDepthExceeds('[[[[1]]]]', 3)).toBe(true);
  });
});

describe('errorMessage', () => {
  it('builds the protocol error with type and timestamp, omitting absent fields', () => {
    expect(errorMessage({ code: 'NOT_FOUND', message: 'no' }, 42)).toEqual({
      type: 'error',
      timestamp: 42,
      code: 'NOT_FOUND',
      message: 'no',
    });
  });
});

describe('estimateTokens', () => {
  it('is about four characters a token, never zero', () => {
    expect(estimateTokens('')).toBe(1);
    expect(estimateTokens('abcdefgh')).toBe(2);
    expect(countChars('😀é')).toBe(2);
  });
});
