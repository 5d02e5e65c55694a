// Vitest global setup: starts ONE local S3 server (s3rver, via the shared
// launcher) for the whole test run and hands its endpoint to the tests with
// project.provide(); tests read it with inject('s3Endpoint') -- see
// test/helpers/s3.ts. The server runs in its own process under the same Node
// binary as vitest, with --openssl-legacy-provider.
import type { TestProject } from 'vitest/node';

import { startLocalS3 } from '../../scripts/local-s3-launcher.mjs';

declare module 'vitest' {
  export interface ProvidedContext {
    /** Base URL of the run's local S3 server, e.g. http://127.0.0.1:41577 */
    s3Endpoint: string;
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const server = await startLocalS3();
  project.provide('s3Endpoint', server.endpoint);
  return async () => {
    await server.stop();
  };
}
