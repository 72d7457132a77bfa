/** `npm run admin -- <operation> <userId> [options]`: admin operations, locally or on AWS; `clock` (local only). */
import '../local/quiet-sdk-notice';
import { runAdminCli } from '../local/admin/admin-cli';
import { errorMessage } from '../local/error-message';

runAdminCli(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err) => {
    console.error(`admin: ${errorMessage(err)}`);
    process.exit(1);
  },
);
