/** `npm run admin -- <operation> <userId> [options]`: admin operations, locally or on AWS; `clock` (local only). */
import '../local/quiet-sdk-notice';
import { runAdminCli } from '../local/admin/admin-cli';

runAdminCli(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err) => {
    console.error(`admin: ${err instanceof Error ? err.message : String(err)}`);
    process.exit(1);
  },
);
