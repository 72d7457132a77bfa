/** `npm run token -- --user alice [--tier pro] [--expires 3600] [--secret S]`: prints a dev token. */
import { parseArgs } from 'node:util';
import { isTier } from '../lambda/core/limiter/policy';
import { signDevToken } from '../local/dev-tokens';

const USAGE =
  'usage: npm run token -- --user NAME [--tier free|pro|enterprise] [--expires SECONDS] [--secret SECRET]';

async function main(): Promise<number> {
  let values: { user?: string; tier?: string; expires?: string; secret?: string };
  try {
    ({ values } = parseArgs({
      options: {
        user: { type: 'string' },
        tier: { type: 'string' },
        expires: { type: 'string' },
        secret: { type: 'string' },
      },
      strict: true,
    }));
  } catch (err) {
    console.error(`${(err as Error).message}\n${USAGE}`);
    return 2;
  }
  if (!values.user) {
    console.error(`--user is required\n${USAGE}`);
    return 2;
  }
  if (values.tier !== undefined && !isTier(values.tier)) {
    console.error(`--tier must be free, pro or enterprise\n${USAGE}`);
    return 2;
  }
  const expires = values.expires === undefined ? undefined : Number(values.expires);
  if (expires !== undefined && (!Number.isInteger(expires) || expires <= 0)) {
    console.error(`--expires must be a positive number of seconds\n${USAGE}`);
    return 2;
  }
  process.stdout.write(
    `${await signDevToken({ userId: values.user, tier: values.tier, secret: values.secret, expiresInSeconds: expires })}\n`,
  );
  return 0;
}

main().then((code) => process.exit(code));
