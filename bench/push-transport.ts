/**
 * Cold push of a workload with both transports: wall time and this
 * process's CPU (hashing included: the same for both), against a local
 * s3rver in its own process.
 *
 *   npx tsx bench/push-transport.ts
 *   PUSH_WORKLOAD=W1 PUSH_RUNS=3 npx tsx bench/push-transport.ts
 *
 * Each push is a fresh instance (`persistState: false`) into a fresh prefix
 * of one bucket, through the library's S3WorkspaceSync with the store that
 * `defaultStore()` (src/pipeline/context.ts) builds, on `transport: 'sdk'` or
 * `'auto'` (passed as the store part: the option is not wired there yet),
 * alternating. The client is bench/local-client.mjs's with `cacheMiddleware`
 * (as the library's own client), uploadConcurrency 16. Every push is checked
 * to have uploaded every file.
 */
import { join } from 'node:path';
import { cpus, loadavg } from 'node:os';
import { CreateBucketCommand } from '@aws-sdk/client-s3';

import { S3WorkspaceSync, silentLogger } from '../src/index.js';
import { S3ObjectStore } from '../src/storage/S3ObjectStore.js';
import type { Transport } from '../src/storage/fast-path.js';
import { startLocalS3 } from '../scripts/local-s3-launcher.mjs';
import { localS3Client } from './local-client.mjs';
import { prepareWorkload } from './workloads.js';

const WORKLOAD = (process.env.PUSH_WORKLOAD ?? 'W1') as 'W1' | 'W2';
const RUNS = Number(process.env.PUSH_RUNS ?? 3);
const WORK = join(import.meta.dirname, '.work');

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;

async function main(): Promise<void> {
  const size = await prepareWorkload(WORKLOAD, WORK);
  const server = await startLocalS3();
  const client = localS3Client(server.endpoint, 64);
  (client.config as { cacheMiddleware?: boolean }).cacheMiddleware = true;
  const bucket = `push-transport-${Date.now()}`;
  await client.send(new CreateBucketCommand({ Bucket: bucket }));
  console.log(`${WORKLOAD}: ${size.files} files, ${(size.bytes / 1e6).toFixed(1)} MB; node ${process.version}, ${cpus().length} CPUs, load ${loadavg()[0]!.toFixed(2)}`);
  const rows: Record<Transport, Array<{ wall: number; cpu: number }>> = { sdk: [], auto: [] };
  try {
    for (let run = 0; run < RUNS * 2; run++) {
      const transport: Transport = (run % 2 === 0) === (Math.floor(run / 2) % 2 === 0) ? 'sdk' : 'auto';
      const sync = new S3WorkspaceSync(
        { bucket, prefix: `${WORKLOAD}-${run}`, workspaceDir: size.dir, s3Client: client, logger: silentLogger, persistState: false, uploadConcurrency: 16 },
        {
          store: (o) =>
            new S3ObjectStore(o.client, o.bucket, { expectedBucketOwner: o.expectedBucketOwner, stallTimeoutMs: o.stallTimeoutMs, maxAttempts: o.maxAttempts, clientDetectsStalls: o.ownsClient, sseCustomer: o.sseCustomer, ownsClient: o.ownsClient, transport }),
        },
      );
      const c0 = process.cpuUsage();
      const t0 = performance.now();
      const result = await sync.push();
      const wall = performance.now() - t0;
      const c = process.cpuUsage(c0);
      if (!result.success || result.uploadedFiles !== size.files) throw new Error(`push failed: ${result.uploadedFiles} uploaded; ${result.errors.slice(0, 3).join('; ')}`);
      const cpu = (c.user + c.system) / 1000;
      rows[transport].push({ wall, cpu });
      console.log(`  ${transport.padEnd(4)} push: wall ${(wall / 1000).toFixed(2)} s, client CPU ${(cpu / 1000).toFixed(2)} s = ${((cpu * 1000) / size.files).toFixed(0)} µs/file, load ${loadavg()[0]!.toFixed(2)}`);
    }
    for (const t of ['sdk', 'auto'] as const) {
      const wall = median(rows[t].map((r) => r.wall));
      const cpu = median(rows[t].map((r) => r.cpu));
      console.log(`${WORKLOAD} cold push ${t} median of ${rows[t].length}: wall ${(wall / 1000).toFixed(2)} s, client CPU ${(cpu / 1000).toFixed(2)} s = ${((cpu * 1000) / size.files).toFixed(0)} µs/file`);
    }
  } finally {
    client.destroy();
    await server.stop();
  }
}

await main();
