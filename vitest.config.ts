import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // One local S3 server (s3rver) for the whole run; tests get its endpoint
    // through inject('s3Endpoint') (see test/helpers/s3.ts). Each test uses
    // its own bucket, so test files can run in parallel against it.
    globalSetup: ['test/helpers/global-setup.ts'],
    pool: 'forks',
    testTimeout: 30_000,
    hookTimeout: 30_000,
    teardownTimeout: 10_000,
  },
});
