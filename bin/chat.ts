/**
 * `npm run chat -- --user alice [--tier pro] [--team eng]`: a terminal chat client for the `npm start` that is
 * running, or for a deployed stack with `--url wss://… --token JWT`.
 */
import '../local/quiet-sdk-notice';
import { parseArgs } from 'node:util';
import { isTier } from '../lambda/core/limiter/policy';
import { LOCAL_STAGE } from '../lambda/core/resources';
import { isTeamName } from '../lambda/core/team-name';
import { runTerminalClient } from '../local/chat/terminal-client';
import { signDevToken } from '../local/dev-tokens';
import {
  findLocalStack,
  LocalStackNotFoundError,
  type LocalTarget,
  tokenSecretMismatch,
  unreachableMessage,
} from '../local/discovery';
import { errorMessage } from '../local/error-message';

const USAGE = `usage: npm run chat -- [--user NAME] [--tier free|pro|enterprise] [--team TEAM]
                    [--url WS_URL] [--token JWT]

Each line you type is a message; replies stream in, queued messages show their place in line.
Commands: /status, /stop (or Ctrl-C once while a reply streams: stops it, charged what it
produced), /cancel ID, /resume, /quit (or Ctrl-D); a message that starts with / is typed as //…. A dropped connection is opened again (1, 2, 4 … 30 s apart); requests the server
no longer has after it (a restart) are named as lost.

  --user   user id of the development token signed for you (default: alice)
  --tier   the token's tier claim
  --team   the token's team claim (the team whose limits the user shares)
  --url    WebSocket URL (default: the \`npm start\` of this checkout, whatever its PORT;
           PORT=3002 in the environment means ws://localhost:3002/${LOCAL_STAGE})
  --token  a token to use instead of signing a development one (needed for deployed stacks)
  -h, --help this help`;

interface ChatArgs {
  readonly user: string;
  readonly tier?: 'free' | 'pro' | 'enterprise';
  readonly team?: string;
  readonly url?: string;
  readonly token?: string;
}

/** The session asked for, `help`, or what is wrong with the command line. */
function parse(argv: string[]): ChatArgs | 'help' | { readonly error: string } {
  let values: { user?: string; tier?: string; team?: string; url?: string; token?: string; help?: boolean };
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        user: { type: 'string' },
        tier: { type: 'string' },
        team: { type: 'string' },
        url: { type: 'string' },
        token: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
    }));
  } catch (err) {
    return { error: (err as Error).message };
  }
  if (values.help) return 'help';
  if (values.tier !== undefined && !isTier(values.tier))
    return { error: '--tier must be free, pro or enterprise' };
  if (values.team !== undefined && !isTeamName(values.team))
    return { error: '--team must be 1 to 64 of letters, digits, _ . and -' };
  if (values.url !== undefined && !/^wss?:\/\/./.test(values.url))
    return { error: `--url must be a ws:// or wss:// URL, got '${values.url}'` };
  return {
    user: values.user ?? 'alice',
    tier: values.tier,
    team: values.team,
    url: values.url,
    token: values.token,
  };
}

async function main(): Promise<number> {
  const args = parse(process.argv.slice(2));
  if (args === 'help') {
    console.log(USAGE);
    return 0;
  }
  if ('error' in args) {
    console.error(`chat: ${args.error}\n(npm run chat -- --help for usage)`);
    return 2;
  }
  let target: LocalTarget | undefined;
  if (!args.url) {
    try {
      target = findLocalStack({ flag: `--url ws://localhost:PORT/${LOCAL_STAGE}` });
    } catch (err) {
      if (!(err instanceof LocalStackNotFoundError)) throw err;
      console.error(`chat: ${err.message}`);
      return 1;
    }
  }
  if (!args.token) {
    const mismatch = tokenSecretMismatch(target);
    if (mismatch) {
      console.error(`chat: ${mismatch} (or pass --token)`);
      return 1;
    }
  }
  const token = args.token ?? (await signDevToken({ userId: args.user, tier: args.tier, team: args.team }));
  return runTerminalClient({
    url: args.url ?? target!.wsUrl,
    token,
    input: process.stdin,
    output: process.stdout,
    interrupts: process,
    unreachable: target && unreachableMessage(target),
  });
}

main().then(
  (code) => process.exit(code),
  (err) => {
    console.error(`chat: ${errorMessage(err)}`);
    process.exit(1);
  },
);
