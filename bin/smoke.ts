/** `npm run smoke -- [--stack NAME | --url WS_URL --token JWT]`: checks a stack end to end. */
import '../local/quiet-sdk-notice';
import { errorMessage } from '../local/error-message';
import { runSmokeCli } from '../local/smoke/smoke-cli';

runSmokeCli(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err) => {
    console.error(`smoke: ${errorMessage(err)}`);
    process.exit(1);
  },
);
