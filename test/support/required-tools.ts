/**
 * Tools some tests need that a machine may lack: Java (AWS's DynamoDB Local), tmux (the terminal
 * client) and Chromium (the chat page). Where a tool is missing the tests that need it never pass
 * silently:
 *
 * - with `REQUIRE_<TOOL>=1` (CI sets all three in `.ci/run`) the test file fails, naming the tool;
 * - without it they are skipped, and a warning on stderr says what did not run and how to get it.
 */
export interface RequiredTool {
  /** What is missing, as the warning names it: `java`, `tmux`, `Chromium`. */
  readonly tool: string;
  /** The variable that turns a missing tool into a failure: `REQUIRE_JAVA`, ... */
  readonly requireVariable: `REQUIRE_${string}`;
  /** The tests that need it, as the warning names them. */
  readonly tests: string;
  /** How to install it. */
  readonly install: string;
}

export const JAVA: RequiredTool = {
  tool: 'java',
  requireVariable: 'REQUIRE_JAVA',
  tests: 'DynamoDB Local contract tests',
  install: 'apt-get install openjdk-17-jre-headless',
};
export const TMUX: RequiredTool = {
  tool: 'tmux',
  requireVariable: 'REQUIRE_TMUX',
  tests: 'terminal client test',
  install: 'apt-get install tmux',
};
export const BROWSER: RequiredTool = {
  tool: 'Chromium',
  requireVariable: 'REQUIRE_BROWSER',
  tests: 'browser tests',
  install: 'apt-get install chromium, or set CHROMIUM_PATH',
};

/** The message a missing tool gets (the thrown error, or the skip warning). */
export function missingToolMessage(tool: RequiredTool, why = `no ${tool.tool} on this machine`): string {
  return `${tool.tests} NOT RUN: ${why} (${tool.install})`;
}

/**
 * Says whether the tests needing `tool` may run. When it is missing: throws if the environment
 * requires it (`REQUIRE_<TOOL>=1`), else warns on stderr and returns false (the caller skips,
 * with a name that says what is needed).
 */
export function mayRunWith(
  tool: RequiredTool,
  available: boolean,
  options: {
    readonly why?: string;
    readonly env?: NodeJS.ProcessEnv;
    readonly warn?: (m: string) => void;
  } = {},
): boolean {
  if (available) return true;
  const message = missingToolMessage(tool, options.why);
  if ((options.env ?? process.env)[tool.requireVariable] === '1') {
    throw new Error(`${message}; ${tool.requireVariable}=1 requires it`);
  }
  (options.warn ?? console.warn)(`${message}; set ${tool.requireVariable}=1 to fail instead of skipping`);
  return false;
}
