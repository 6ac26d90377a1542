import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    // Integration tests start real servers on port 0; two workers fit the 2-core machines.
    maxWorkers: 2,
    globalSetup: ['test/helpers/global-setup.ts'],
  },
});
