import { availableParallelism } from 'node:os';

import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // One local S3 server (s3rver) for the whole run; tests get its endpoint
    // through inject('s3Endpoint') (see test/helpers/s3.ts). Each test uses
    // its own bucket, so test files can run in parallel against it.
    globalSetup: ['test/helpers/global-setup.ts'],
    pool: 'forks',
    // Many test files spend their time waiting (on the S3 server, child
    // processes, lease expiry) rather than computing: one worker more than
    // the cores keeps them busy. On 2 cores: 2m53s instead of 4m45s, measured.
    maxWorkers: Math.min(availableParallelism() + 1, 8),
    // The AWS SDK warns once per process, on Node 20, that its releases after
    // early January 2027 need Node >= 22 (README's FAQ says so); in a run of
    // dozens of worker and child processes that is ~30 identical warnings.
    env: { AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' },
    testTimeout: 30_000,
    hookTimeout: 30_000,
    teardownTimeout: 10_000,
  },
});
