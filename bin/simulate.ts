/** `npm run simulate -- --traffic FILE --limits FILE [--limits FILE2 ...] [--json]`: what if (SPEC §9.4). */

import { errorMessage } from '../local/error-message';
import { runSimulateCli } from '../local/simulate/cli';

runSimulateCli(process.argv.slice(2), {
  out: (text) => process.stdout.write(text),
  err: (text) => process.stderr.write(text),
}).then(
  (code) => {
    process.exitCode = code;
  },
  (err) => {
    console.error(`simulate: ${errorMessage(err)}`);
    process.exitCode = 1;
  },
);
