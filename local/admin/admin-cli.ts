/**
 * `npm run admin`: the command line (args.ts), its flow (cli.ts), the output (render.ts) and the
 * help, whose limit flags come from the limit kinds (help.ts).
 */
import { adminUsage } from './help';

export { parseExpiry } from './args';
export { adminFunctionFromStack, runAdminCli } from './cli';
export {
  formatDuration,
  renderAdminResponse,
  renderAudit,
  renderHealthReport,
  renderHistory,
  renderTop,
} from './render';

/** `npm run admin -- --help`, its limit flags taken from the limit kinds when this module loads. */
export const ADMIN_USAGE = adminUsage();
