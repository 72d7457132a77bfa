/**
 * API Gateway's WebSocket quotas, and the message size the stack accepts by default: declared once,
 * read by the protocol (splitting and fitting server messages), the configuration and the local
 * gateway (which refuses what AWS would).
 */

/** A WebSocket frame carries at most 32 KB (API Gateway quota). */
export const MAX_FRAME_BYTES = 32 * 1024;
/** A WebSocket message carries at most 128 KB (API Gateway quota). */
export const MAX_MESSAGE_BYTES = 128 * 1024;
/** `MAX_MESSAGE_CHARS`: the longest chat message accepted, in characters. @default 8000 */
export const DEFAULT_MAX_MESSAGE_CHARS = 8000;
