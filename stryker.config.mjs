// @ts-check
/**
 * `npm run mutate` (StrykerJS 9, the last line that runs on Node 20): mutates the limiter's core
 * and its DynamoDB adapter and runs, for each mutant, the limiter's unit and contract tests that
 * cover it. Only those test files, on dynalite only (the script sets SKIP_DYNAMODB_LOCAL=1), one
 * worker: a run fits on a 2-core machine. Not part of `npm test`. Score and surviving mutants:
 * docs/reliability.md, section "tests". Sandboxes (.stryker-tmp/) and reports (reports/) are
 * gitignored.
 *
 * @type {import('@stryker-mutator/api/core').PartialStrykerOptions}
 */
export default {
  testRunner: 'vitest',
  vitest: { configFile: 'vitest.config.ts', related: false },
  mutate: [
    'lambda/core/limiter/**/*.ts',
    'lambda/adapters/dynamo-limiter.ts',
    'lambda/adapters/limiter/**/*.ts',
  ],
  testFiles: [
    'test/unit/limiter/**/*.test.ts',
    'test/unit/global-priority.test.ts',
    'test/integration/dynamo-limiter.test.ts',
    'test/integration/limiter-guarantees.test.ts',
    'test/integration/global-limits.test.ts',
  ],
  // TypeScript 7 has no JavaScript API for Stryker's tsconfig rewrite; the sandbox needs none (vitest
  // compiles with esbuild, tsconfig.json has no `extends` or `references`), so it is pointed nowhere.
  tsconfigFile: 'stryker-no-tsconfig.json',
  coverageAnalysis: 'perTest',
  concurrency: 1,
  timeoutMS: 20_000,
  // Module-level constants are run once per test process: mutating them would rerun every test.
  ignoreStatic: true,
  tempDirName: '.stryker-tmp',
  cleanTempDir: 'always',
  reporters: ['clear-text', 'progress-append-only', 'html', 'json'],
  htmlReporter: { fileName: 'reports/mutation/mutation.html' },
  jsonReporter: { fileName: 'reports/mutation/mutation.json' },
  clearTextReporter: { allowColor: false, logTests: false, reportScoreTable: true },
  thresholds: { high: 90, low: 75, break: null },
};
