/** Commands of the terminal client; anything else starting with `/` is refused, not sent. */
export const COMMANDS =
  '/status, /stop, /cancel ID, /resume, /new, /quit (a message that starts with / is sent as //…)';

/** What one input line asks for. */
export type Command =
  | { readonly kind: 'none' | 'quit' | 'status' | 'resume' | 'stop' | 'new' }
  | { readonly kind: 'cancel'; readonly requestId: string }
  | { readonly kind: 'message'; readonly text: string }
  | { readonly kind: 'unknown'; readonly name: string };

/** Reads an input line: a `/command`, `//…` (a message that starts with `/`), or a message. */
export function commandOf(raw: string): Command {
  const text = raw.trim();
  if (!text) return { kind: 'none' };
  const simple = {
    '/quit': 'quit',
    '/status': 'status',
    '/resume': 'resume',
    '/stop': 'stop',
    '/new': 'new',
  } as const;
  if (text in simple) return { kind: simple[text as keyof typeof simple] };
  if (text === '/cancel' || text.startsWith('/cancel '))
    return { kind: 'cancel', requestId: text.split(/\s+/)[1] ?? '' };
  if (text.startsWith('//')) return { kind: 'message', text: text.slice(1) };
  if (text.startsWith('/')) return { kind: 'unknown', name: text.split(/\s+/)[0]! };
  return { kind: 'message', text };
}

/** What the client says of a `/command` it does not know (nothing is sent). */
export const unknownCommand = (name: string) => `unknown command ${name} — not sent. Commands: ${COMMANDS}`;
