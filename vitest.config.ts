import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/global-setup.ts'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    // Integration and e2e files share one pair of emulators; each file uses its own resource prefix.
    pool: 'forks',
    fileParallelism: true,
    reporters: ['default'],
    // The lockfile pins the SDK; its notice about future Node.js versions is noise in test output.
    env: { AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' },
  },
});
