/**
 * Client CPU per GetObject and per PutObject, for both transports of
 * S3ObjectStore (`'sdk'`: client.send(); `'auto'`: the fast path of
 * src/storage/fast-path.ts), against a local s3rver in its own process (its
 * CPU is not counted).
 *
 *   npx tsx bench/transport.ts
 *   BENCH_N=2000 BENCH_RUNS=3 BENCH_CONCURRENCY=16 BENCH_SIZE=1024 npx tsx bench/transport.ts
 *
 * The client is the one the library builds (options.ts buildClient:
 * cacheMiddleware, checksums only when required, keep-alive agent, socket
 * timeout) and the store is built as the library builds it
 * (clientDetectsStalls). Each run measures, for each transport in turn, N
 * PUTs of BENCH_SIZE bytes (Buffer bodies) then N whole-object GETs (bodies
 * read to the end), BENCH_CONCURRENCY at a time, with process.cpuUsage()
 * (user + system of this process) around each batch, after a warm-up. The
 * transports alternate within a run so that load from elsewhere on the
 * machine falls on both. Prints every run and the median per transport.
 */
import { createHash } from 'node:crypto';
import { Agent as HttpAgent } from 'node:http';
import { loadavg, cpus } from 'node:os';
import { S3Client, CreateBucketCommand } from '@aws-sdk/client-s3';

import { startLocalS3 } from '../scripts/local-s3-launcher.mjs';
import { S3ObjectStore } from '../src/storage/S3ObjectStore.js';
import type { Transport } from '../src/storage/fast-path.js';

const N = Number(process.env.BENCH_N ?? 2000);
const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 16);
const SIZE = Number(process.env.BENCH_SIZE ?? 1024);
const WARMUP = 200;

function libraryClient(endpoint: string): S3Client {
  // as options.ts buildClient(), plus the local endpoint and credentials
  return new S3Client({
    endpoint,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
    maxAttempts: 3,
    cacheMiddleware: true,
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    requestHandler: { httpAgent: new HttpAgent({ keepAlive: true, maxSockets: CONCURRENCY }), connectionTimeout: 10_000, socketTimeout: 20_000 },
  });
}

async function pool(count: number, fn: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next < count) await fn(next++);
    }),
  );
}

/** CPU ms of this process for `fn`. */
async function cpu(fn: () => Promise<void>): Promise<number> {
  const before = process.cpuUsage();
  await fn();
  const d = process.cpuUsage(before);
  return (d.user + d.system) / 1000;
}

const body = Buffer.alloc(SIZE, 0x61);
const md5 = createHash('md5').update(body).digest('hex');

async function putAll(store: S3ObjectStore, prefix: string, count: number): Promise<void> {
  await pool(count, async (i) => {
    await store.put({ key: `${prefix}/${i}`, body, size: SIZE, md5, contentType: 'application/octet-stream', mtimeMs: 1_700_000_000_000 });
  });
}

async function getAll(store: S3ObjectStore, prefix: string, count: number): Promise<void> {
  await pool(count, async (i) => {
    const got = await store.get(`${prefix}/${i}`);
    let n = 0;
    for await (const c of got.body) n += (c as Buffer).length;
    if (n !== SIZE) throw new Error(`short body: ${n}`);
  });
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;

async function main(): Promise<void> {
  const s3 = await startLocalS3();
  const results: Record<Transport, { put: number[]; get: number[] }> = { sdk: { put: [], get: [] }, auto: { put: [], get: [] } };
  try {
    const clients = { sdk: libraryClient(s3.endpoint), auto: libraryClient(s3.endpoint) };
    const bucket = 'bench-transport';
    await clients.sdk.send(new CreateBucketCommand({ Bucket: bucket }));
    const fastCount = { n: 0 };
    const stores = {
      sdk: new S3ObjectStore(clients.sdk, bucket, { transport: 'sdk', ownsClient: true, clientDetectsStalls: true }),
      auto: new S3ObjectStore(clients.auto, bucket, { transport: 'auto', ownsClient: true, clientDetectsStalls: true, onFastRequest: () => fastCount.n++ }),
    };
    for (const t of ['sdk', 'auto'] as const) {
      await putAll(stores[t], `warm-${t}`, WARMUP);
      await getAll(stores[t], `warm-${t}`, WARMUP);
    }
    if (fastCount.n !== 2 * WARMUP) throw new Error(`the fast path answered ${fastCount.n} of ${2 * WARMUP} warm-up requests`);
    console.log(`N=${N} per batch, ${SIZE}-byte objects, concurrency ${CONCURRENCY}, ${RUNS} runs; node ${process.version}, ${cpus().length} CPUs; load before: ${loadavg().map((l) => l.toFixed(2)).join(' ')}`);
    for (let run = 1; run <= RUNS; run++) {
      const order: Transport[] = run % 2 === 1 ? ['sdk', 'auto'] : ['auto', 'sdk'];
      for (const t of order) {
        const prefix = `r${run}-${t}`;
        const start = performance.now();
        const put = await cpu(() => putAll(stores[t], prefix, N));
        const get = await cpu(() => getAll(stores[t], prefix, N));
        results[t].put.push(put / N);
        results[t].get.push(get / N);
        console.log(
          `run ${run} ${t.padEnd(4)}: PUT ${(put / N).toFixed(3)} ms CPU/request, GET ${(get / N).toFixed(3)} ms CPU/request (${((performance.now() - start) / 1000).toFixed(1)} s wall)`,
        );
      }
    }
    console.log(`load after: ${loadavg().map((l) => l.toFixed(2)).join(' ')}`);
    console.log('\nmedian client CPU per request (ms):');
    console.log('transport   PUT     GET');
    for (const t of ['sdk', 'auto'] as const) console.log(`${t.padEnd(10)} ${median(results[t].put).toFixed(3)}   ${median(results[t].get).toFixed(3)}`);
    for (const c of Object.values(clients)) c.destroy();
  } finally {
    await s3.stop();
  }
}

await main();
