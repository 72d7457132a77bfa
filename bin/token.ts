/** `npm run token -- --user alice [--tier pro] [--team eng] [--expires 3600] [--secret S]`: prints a dev token. */
import '../local/quiet-sdk-notice';
import { parseArgs } from 'node:util';
import { isTier } from '../lambda/core/limiter/policy';
import { isTeamName } from '../lambda/core/team-name';
import { StackOutputError } from '../local/admin/stack-outputs';
import { mintStackToken, signDevToken } from '../local/dev-tokens';
import {
  findLocalStack,
  LocalStackNotFoundError,
  type LocalTarget,
  tokenSecretMismatch,
} from '../local/discovery';
import { errorMessage } from '../local/error-message';

const USAGE = `usage: npm run token -- --user NAME [--tier free|pro|enterprise] [--team TEAM]
                     [--expires SECONDS] [--secret SECRET | --stack NAME [--region R]]

Prints a token (HS256 JWT, sub = NAME) and nothing else, for the local stack or a deployed stack
in secret mode.

  --user     the user id (the token's sub); required
  --tier     the token's tier claim (default: none, which means free unless an admin set a tier)
  --team     the token's team claim: the team whose limits.teams.<TEAM> the user shares (default:
             none; an admin's set-team wins); 1-64 of A-Z a-z 0-9 _ . -
  --expires  lifetime in seconds (default 86400, 24 h)
  --secret   sign with this secret (default: JWT_SECRET, else the development secret of \`npm start\`)
  --stack    sign for this deployed stack with its own secret, read from Secrets Manager with your
             AWS credentials (its JwtSecretArn output; needs secretsmanager:GetSecretValue on it)
  --region   AWS region of --stack (default: your AWS configuration's)
  -h, --help this help`;

interface TokenArgs {
  readonly userId: string;
  readonly tier?: 'free' | 'pro' | 'enterprise';
  readonly team?: string;
  readonly secret?: string;
  readonly stack?: string;
  readonly region?: string;
  readonly expires?: number;
}

/** The token asked for, `help`, or what is wrong with the command line. */
function parse(argv: string[]): TokenArgs | 'help' | { readonly error: string } {
  let values: {
    user?: string;
    tier?: string;
    team?: string;
    expires?: string;
    secret?: string;
    stack?: string;
    region?: string;
    help?: boolean;
  };
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        user: { type: 'string' },
        tier: { type: 'string' },
        team: { type: 'string' },
        expires: { type: 'string' },
        secret: { type: 'string' },
        stack: { type: 'string' },
        region: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
    }));
  } catch (err) {
    return { error: (err as Error).message };
  }
  if (values.help) return 'help';
  if (!values.user) return { error: '--user is required' };
  if (values.tier !== undefined && !isTier(values.tier))
    return { error: '--tier must be free, pro or enterprise' };
  if (values.team !== undefined && !isTeamName(values.team))
    return { error: '--team must be 1 to 64 of letters, digits, _ . and -' };
  const expires = values.expires === undefined ? undefined : Number(values.expires);
  if (expires !== undefined && (!Number.isInteger(expires) || expires <= 0))
    return { error: '--expires must be a positive number of seconds' };
  if (values.stack !== undefined && values.secret !== undefined)
    return { error: '--stack and --secret exclude each other: the stack has its own secret' };
  if (values.region !== undefined && values.stack === undefined)
    return { error: '--region goes with --stack' };
  return {
    userId: values.user,
    tier: values.tier,
    team: values.team,
    secret: values.secret,
    stack: values.stack,
    region: values.region,
    expires,
  };
}

async function main(): Promise<number> {
  const args = parse(process.argv.slice(2));
  if (args === 'help') {
    console.log(USAGE);
    return 0;
  }
  if ('error' in args) {
    console.error(`token: ${args.error}\n${USAGE.split('\n')[0]}`);
    return 2;
  }
  if (args.stack !== undefined) {
    try {
      const token = await mintStackToken({
        stackName: args.stack,
        region: args.region,
        userId: args.userId,
        tier: args.tier,
        team: args.team,
        expiresInSeconds: args.expires,
      });
      process.stdout.write(`${token}\n`);
      return 0;
    } catch (err) {
      if (!(err instanceof StackOutputError)) throw err;
      console.error(`token: ${err.message}`);
      return 1;
    }
  }
  if (args.secret === undefined) {
    // A token for the `npm start` that is running: signed so that it accepts it.
    let target: LocalTarget | undefined;
    try {
      target = findLocalStack({ flag: '--secret' });
    } catch (err) {
      if (!(err instanceof LocalStackNotFoundError)) throw err;
    }
    const mismatch = tokenSecretMismatch(target);
    if (mismatch) {
      console.error(`token: ${mismatch} (or pass --secret)`);
      return 1;
    }
  }
  const token = await signDevToken({
    userId: args.userId,
    tier: args.tier,
    team: args.team,
    secret: args.secret,
    expiresInSeconds: args.expires,
  });
  process.stdout.write(`${token}\n`);
  return 0;
}

main().then(
  (code) => process.exit(code),
  (err) => {
    console.error(`token: ${errorMessage(err)}`);
    process.exit(1);
  },
);
