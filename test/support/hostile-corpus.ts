/**
 * A deterministic corpus of malformed and adversarial frames: every one must be refused with a
 * protocol error (none of them is a valid request), and each names the one it must get. Seeded, so
 * a failure names a reproducible frame.
 */
export interface HostileFrame {
  readonly kind: string;
  readonly frame: string;
  /** The error code this frame must be answered with (SPEC §4). */
  readonly expected: HostileCode;
}

export type HostileCode = 'INVALID_REQUEST' | 'UNKNOWN_ACTION' | 'MESSAGE_TOO_LARGE' | 'NOT_FOUND';

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

const UNICODE = [
  '\u202e',
  '\u200b',
  '\ufeff',
  '😀',
  '𝔘',
  'é',
  '\u0000',
  '\ud83d',
  '漢字',
  '\u2028',
  'ß',
  'İ',
];
const HOMOGLYPHS = [
  'sendMеssage',
  'sеndMessage',
  'ѕendMessage',
  'SendMessage',
  'SENDMESSAGE',
  'send_message',
  'sendMessage ',
  ' sendMessage',
  'sendMessage\u200b',
  'cancel\u0000',
];
/** Values of the wrong type for every field (the one string, '', is invalid for each). */
const WRONG_VALUES: unknown[] = [
  null,
  true,
  false,
  0,
  -1,
  1.5,
  2 ** 60,
  [],
  {},
  [1, 2],
  { a: 1 },
  ['hi'],
  { message: 'hi' },
  '',
];

export function hostileCorpus(seed = 20261124, otherUsersRequestIds: readonly string[] = []): HostileFrame[] {
  const random = rng(seed);
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)]!;
  const frames: HostileFrame[] = [];
  const add = (kind: string, frame: string, expected: HostileCode = 'INVALID_REQUEST') =>
    frames.push({ kind, frame, expected });
  const valid = [
    JSON.stringify({ action: 'sendMessage', message: 'hello', requestId: 'abc' }),
    JSON.stringify({ action: 'cancel', requestId: 'abc' }),
    JSON.stringify({ action: 'status' }),
  ];

  // 1. Broken JSON: a proper prefix of a JSON object is never valid JSON; half get a stray byte.
  for (let i = 0; i < 150; i++) {
    const base = pick(valid);
    const cut = 1 + Math.floor(random() * (base.length - 2));
    add(
      'truncated-json',
      i % 2 ? base.slice(0, cut) : `${base.slice(0, cut)}${pick(['{', '"', ',', ':', '\\', '['])}`,
    );
  }
  for (const text of [
    '',
    ' ',
    '\n',
    'null',
    'true',
    '0',
    '""',
    '[]',
    '[{}]',
    '"sendMessage"',
    'undefined',
    '{',
    '}',
    '{{}}',
    "{'action':'ping'}",
  ]) {
    add('not-an-object', text);
  }

  // 2. Deep nesting, cheaply refused before parsing.
  for (let i = 0; i < 60; i++) {
    const depth = 33 + Math.floor(random() * 3000);
    const open = pick(['[', '{"a":']);
    const close = open === '[' ? ']' : '}';
    add('deep-nesting', `{"action":"sendMessage","message":${open.repeat(depth)}1${close.repeat(depth)}}`);
  }

  // 3. Wrong types for every field.
  for (let i = 0; i < 220; i++) {
    const field = pick(['message', 'requestId', 'maxTokens', 'conversationId', 'action']);
    const value = pick(WRONG_VALUES);
    const frame: Record<string, unknown> = { action: 'sendMessage', message: 'hi', requestId: `r${i}` };
    if (field === 'maxTokens' && typeof value === 'number' && Number.isInteger(value) && value > 0) continue;
    if ((field === 'requestId' || field === 'conversationId') && value === undefined) continue;
    frame[field] = value;
    // An action that is not one of the action names (a non-string, or '') is an unknown action.
    add(
      `wrong-type-${field}`,
      JSON.stringify(frame),
      field === 'action' ? 'UNKNOWN_ACTION' : 'INVALID_REQUEST',
    );
  }
  for (let i = 0; i < 60; i++) {
    add(
      'bad-maxTokens',
      JSON.stringify({
        action: 'sendMessage',
        message: 'hi',
        maxTokens: pick([0, -5, 2.5, 10_000_000, '100', 'lots', [100]]),
      }),
    );
  }

  // 4. Unknown actions, look-alikes, route keys and case variants.
  for (let i = 0; i < 120; i++) {
    const action =
      i % 3 === 0
        ? pick(HOMOGLYPHS)
        : i % 3 === 1
          ? pick([
              '$connect',
              '$disconnect',
              '$default',
              '__proto__',
              'constructor',
              'toString',
              'admin',
              'reset',
            ])
          : `x${Math.floor(random() * 1e9).toString(36)}`;
    add('unknown-action', JSON.stringify({ action, message: 'hi' }), 'UNKNOWN_ACTION');
  }

  // 5. Prototype pollution attempts.
  for (let i = 0; i < 80; i++) {
    const key = pick(['__proto__', 'constructor', 'prototype']);
    add(
      'prototype-pollution',
      `{"action":"sendMessage","message":"hi","${key}":{"isAdmin":true,"polluted":${i}}}`,
    );
  }

  // 6. Oversize messages (within the 32 KB frame limit of API Gateway).
  for (let i = 0; i < 60; i++) {
    // Characters are counted as code points; each frame stays under 32 KB of UTF-8.
    const char = pick(['x', 'é', '😀']);
    const length = 8001 + Math.floor(random() * (char === '😀' ? 99 : 4000));
    add(
      'oversize-message',
      JSON.stringify({ action: 'sendMessage', message: char.repeat(length) }),
      'MESSAGE_TOO_LARGE',
    );
  }
  for (let i = 0; i < 40; i++) {
    add(
      'oversize-message',
      JSON.stringify({ action: 'sendMessage', message: 'y'.repeat(8001 + i * 97), requestId: `big${i}` }),
      'MESSAGE_TOO_LARGE',
    );
  }

  // 7. Unicode edge cases where the protocol demands ASCII ids.
  for (let i = 0; i < 120; i++) {
    const junk = `${pick(UNICODE)}${i}${pick(UNICODE)}`;
    const frame = pick([
      { action: 'sendMessage', message: `hi ${pick(UNICODE)}`, requestId: junk },
      { action: 'cancel', requestId: junk },
      { action: 'sendMessage', message: 'hi', conversationId: junk },
      { action: 'sendMessage', message: '', requestId: `e${i}` },
    ]);
    add('unicode', JSON.stringify(frame));
  }

  // 8. Cancelling requests that are not this user's (someone else's, or nobody's).
  for (let i = 0; i < 100; i++) {
    const requestId = otherUsersRequestIds.length && i % 2 === 0 ? pick(otherUsersRequestIds) : `ghost-${i}`;
    add('cancel-foreign', JSON.stringify({ action: 'cancel', requestId }), 'NOT_FOUND');
  }
  return frames;
}
