import * as z from 'zod';
import { MAX_FRAME_BYTES, MAX_MESSAGE_BYTES } from './frame-limits';
import type { ErrorCode, ErrorMessage, RateLimitStrings } from './server-messages';
import { countChars } from './tokens';

/**
 * Protocol v1 (SPEC §3): what clients may send, and the `error` message for what they may not.
 * Parsing never throws: every bad frame becomes a value with the protocol error code to answer.
 */

export const ACTIONS = ['sendMessage', 'cancel', 'status', 'resume', 'ping'] as const;
export type Action = (typeof ACTIONS)[number];

export { MAX_FRAME_BYTES, MAX_MESSAGE_BYTES } from './frame-limits';
export * from './server-messages';

/** Room a `chunk` message needs besides its text (type, timestamp, requestId, index). */
const CHUNK_ENVELOPE_BYTES = 512;

/** Client-chosen ids: letters, digits, `_` and `-`, 1 to 64 of them. */
export const REQUEST_ID_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;
/** Deeper JSON than this is refused before it is parsed. */
export const MAX_JSON_DEPTH = 32;
/** Upper bound of `maxTokens` a client may ask for; the tier's budget caps it further. */
export const MAX_REQUESTED_TOKENS = 100_000;

const requestId = z.string().regex(REQUEST_ID_PATTERN, 'must be 1-64 of A-Z a-z 0-9 _ -');

// Unknown fields are ignored (and dropped): a `userId` in the body never reaches the handlers.
const schemas = {
  sendMessage: z.object({
    action: z.literal('sendMessage'),
    message: z.string().min(1, 'must not be empty'),
    requestId: requestId.optional(),
    conversationId: z.string().regex(REQUEST_ID_PATTERN, 'must be 1-64 of A-Z a-z 0-9 _ -').optional(),
    maxTokens: z
      .number()
      .int('must be an integer')
      .positive('must be positive')
      .max(MAX_REQUESTED_TOKENS)
      .optional(),
    /** The model to answer with; the tier's default when absent. One the tier may not use is refused. */
    model: z
      .string()
      .regex(/^[A-Za-z0-9._:-]{1,64}$/, 'must be a model id')
      .optional(),
  }),
  cancel: z.object({ action: z.literal('cancel'), requestId }),
  status: z.object({ action: z.literal('status') }),
  resume: z.object({ action: z.literal('resume') }),
  ping: z.object({ action: z.literal('ping') }),
} satisfies Record<Action, z.ZodType>;

export type ClientRequest = { [A in Action]: z.infer<(typeof schemas)[A]> }[Action];

export interface ProtocolError {
  readonly code: ErrorCode;
  readonly message: string;
  readonly requestId?: string;
  readonly details?: Record<string, unknown>;
}

export type ParseResult =
  | { readonly ok: true; readonly request: ClientRequest }
  | { readonly ok: false; readonly error: ProtocolError };

type ParseFailure = Extract<ParseResult, { readonly ok: false }>;

const FORBIDDEN_KEYS = new Set(['__proto__', 'constructor', 'prototype']);

/** Parses one WebSocket frame into a client request, or the error to answer it with. */
export function parseClientFrame(
  body: string | undefined | null,
  options: { maxMessageChars: number },
): ParseResult {
  const object = parseFrameObject(body);
  if (!object.ok) return object;
  const { frame } = object;
  const echoedId =
    typeof frame.requestId === 'string' && REQUEST_ID_PATTERN.test(frame.requestId)
      ? frame.requestId
      : undefined;
  const forbidden = Object.keys(frame).find((key) => FORBIDDEN_KEYS.has(key));
  if (forbidden) return fail('INVALID_REQUEST', `Field "${forbidden}" is not allowed.`, echoedId);
  const action = frame.action;
  if (typeof action !== 'string' || !(ACTIONS as readonly string[]).includes(action)) {
    return fail('UNKNOWN_ACTION', `Unknown action; use one of ${ACTIONS.join(', ')}.`, echoedId, {
      action: typeof action === 'string' ? action.slice(0, 64) : null,
    });
  }
  if (action === 'sendMessage' && typeof frame.message === 'string') {
    const chars = countChars(frame.message);
    if (chars > options.maxMessageChars) {
      return fail(
        'MESSAGE_TOO_LARGE',
        `Message is ${chars} characters; the limit is ${options.maxMessageChars}.`,
        echoedId,
        {
          maxMessageChars: options.maxMessageChars,
          messageChars: chars,
        },
      );
    }
  }
  const parsed = schemas[action as Action].safeParse(frame);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const field = issue?.path.join('.') || 'frame';
    return fail('INVALID_REQUEST', `Invalid ${field}: ${issue?.message ?? 'bad value'}.`, echoedId, {
      field,
    });
  }
  return { ok: true, request: parsed.data as ClientRequest };
}

/** The frame as a JSON object (not yet checked against any schema), or the error to answer. */
function parseFrameObject(
  body: string | undefined | null,
): { readonly ok: true; readonly frame: Record<string, unknown> } | ParseFailure {
  if (typeof body !== 'string' || body.length === 0)
    return fail('INVALID_REQUEST', 'Empty frame: send a JSON object.');
  if (jsonDepthExceeds(body, MAX_JSON_DEPTH)) {
    return fail('INVALID_REQUEST', `JSON nested deeper than ${MAX_JSON_DEPTH} levels.`);
  }
  let value: unknown;
  try {
    value = JSON.parse(body);
  } catch {
    return fail('INVALID_REQUEST', 'Malformed JSON.');
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return fail('INVALID_REQUEST', 'A frame must be a JSON object with an "action".');
  }
  return { ok: true, frame: value as Record<string, unknown> };
}

/**
 * The protocol `error` message for a refusal or a bad frame; a refusal by a limit also carries the
 * user's limits in the IETF RateLimit fields' syntax (SPEC §9.3).
 */
export function errorMessage(
  error: {
    code: ErrorCode;
    message: string;
    requestId?: string;
    details?: Record<string, unknown>;
  } & RateLimitStrings,
  nowMs: number,
): ErrorMessage {
  return {
    type: 'error',
    timestamp: nowMs,
    code: error.code,
    message: error.message,
    ...(error.requestId === undefined ? {} : { requestId: error.requestId }),
    ...(error.details === undefined ? {} : { details: error.details }),
    ...(error.rateLimitPolicy === undefined ? {} : { rateLimitPolicy: error.rateLimitPolicy }),
    ...(error.rateLimit === undefined ? {} : { rateLimit: error.rateLimit }),
  };
}

function fail(
  code: ErrorCode,
  message: string,
  requestId?: string,
  details?: Record<string, unknown>,
): ParseFailure {
  return { ok: false, error: { code, message, requestId, details } };
}

/**
 * Does the JSON text nest deeper than `max`? One pass over the characters, skipping strings, so a
 * hostile `[[[[…` frame is refused before `JSON.parse` spends time or stack on it.
 */
export function jsonDepthExceeds(text: string, max: number): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 92 /* \ */) i++;
      else if (c === 34 /* " */) inString = false;
    } else if (c === 34) inString = true;
    else if (c === 123 /* { */ || c === 91 /* [ */) {
      if (++depth > max) return true;
    } else if (c === 125 /* } */ || c === 93 /* ] */) depth--;
  }
  return false;
}

/**
 * Splits reply text into pieces whose `chunk` message fits one API Gateway frame (32 KB), cutting
 * between code points and measuring each piece as JSON encodes it (escapes included).
 */
export function splitChunkText(text: string, maxBytes = MAX_FRAME_BYTES - CHUNK_ENVELOPE_BYTES): string[] {
  if (Buffer.byteLength(JSON.stringify(text)) <= maxBytes) return [text];
  const pieces: string[] = [];
  let piece = '';
  let pieceBytes = 2; // the quotes
  for (const char of text) {
    const bytes = Buffer.byteLength(JSON.stringify(char)) - 2;
    if (pieceBytes + bytes > maxBytes && piece) {
      pieces.push(piece);
      piece = '';
      pieceBytes = 2;
    }
    piece += char;
    pieceBytes += bytes;
  }
  if (piece) pieces.push(piece);
  return pieces;
}

/**
 * The message as it may be posted: every server message must fit API Gateway's 128 KB. A
 * `message_complete` that would not leaves its `text` out and says so (`textOmitted: true`, SPEC
 * §3): the client has the text from the chunks.
 */
export function fitMessage<M extends { readonly type: string }>(message: M): M {
  if (Buffer.byteLength(JSON.stringify(message)) <= MAX_MESSAGE_BYTES) return message;
  if (message.type === 'message_complete') {
    const { text: _text, ...rest } = message as M & { text?: string };
    return { ...rest, textOmitted: true } as unknown as M;
  }
  throw new Error(`a ${message.type} message is larger than ${MAX_MESSAGE_BYTES} bytes`);
}
