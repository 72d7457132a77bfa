/**
 * `npm run chat -- --user alice [--tier pro]`: a terminal chat client for the local stack, or for a
 * deployed one with `--url wss://… --token JWT`.
 */
import { parseArgs } from 'node:util';
import { LOCAL_STAGE } from '../lambda/core/resources';
import { runTerminalClient } from '../local/chat/terminal-client';
import { signDevToken } from '../local/dev-tokens';

const USAGE = `usage: npm run chat -- [--user NAME] [--tier free|pro|enterprise] [--url WS_URL] [--token JWT]

  --user   local user id for a development token (default: alice)
  --tier   the token's tier claim
  --url    WebSocket URL (default ws://localhost:$PORT/${LOCAL_STAGE}, PORT defaults to 3001)
  --token  a token to use instead of signing a development one (needed for deployed stacks)`;

async function main(): Promise<number> {
  let values: { user?: string; tier?: string; url?: string; token?: string; help?: boolean };
  try {
    ({ values } = parseArgs({
      options: {
        user: { type: 'string' },
        tier: { type: 'string' },
        url: { type: 'string' },
        token: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
    }));
  } catch (err) {
    console.error(`${(err as Error).message}\n\n${USAGE}`);
    return 2;
  }
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  const url = values.url ?? `ws://localhost:${process.env.PORT ?? 3001}/${LOCAL_STAGE}`;
  const token =
    values.token ??
    (await signDevToken({
      userId: values.user ?? 'alice',
      tier: values.tier as Parameters<typeof signDevToken>[0]['tier'],
    }));
  return runTerminalClient({ url, token, input: process.stdin, output: process.stdout });
}

main().then(
  (code) => process.exit(code),
  (err) => {
    console.error(`chat: ${err instanceof Error ? err.message : String(err)}`);
    process.exit(1);
  },
);
