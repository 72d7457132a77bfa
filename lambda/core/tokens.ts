/**
 * Token estimation for the limiter's input reservation and the echo model's usage: about four
 * characters per token, the usual rule of thumb for English text with BPE tokenizers. Counted in
 * code points so emoji and CJK text are not undercounted as UTF-16 halves. Never below one.
 */
export function estimateTokens(text: string): number {
  let codePoints = 0;
  for (const _ of text) codePoints++;
  return Math.max(1, Math.ceil(codePoints / 4));
}

/** Counts characters as the protocol does (code points), for `MAX_MESSAGE_CHARS`. */
export function countChars(text: string): number {
  let n = 0;
  for (const _ of text) n++;
  return n;
}
