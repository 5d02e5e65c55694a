/**
 * `npm run bench`: this library's core scenarios against a local S3-compatible
 * server (s3rver) on 127.0.0.1. Prints wall time (median, min–max of RUNS runs)
 * and the number of S3 requests per scenario. Every pull is verified byte for
 * byte against the source tree.
 *
 * Workloads are generated deterministically under bench/.work/ (git-ignored):
 *   W1: a code workspace of 2,112 files / ~80 MB (nested dirs, a few MB-sized files).
 *
 * Environment: BENCH_RUNS (default 3), BENCH_CONCURRENCY (default 16, applied
 * to uploads and downloads so figures compare with the peers' in NOTES.md).
 */
import { createHash } from 'node:crypto';
import { mkdir, readdir, readFile, rm, unlink, writeFile } from 'node:fs/promises';
import { cpus, totalmem } from 'node:os';
import { join } from 'node:path';
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { localS3Client } from './local-client.js';
import { startLocalS3 } from '../scripts/local-s3-launcher.mjs';
import { S3WorkspaceSync, silentLogger, type SyncResult } from '../src/index.js';

const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 16);
const WORK = join(import.meta.dirname, '.work');

/** Deterministic pseudo-random bytes (xorshift), incompressible enough for S3 purposes. */
function bytes(seed: number, size: number): Buffer {
  const buf = Buffer.allocUnsafe(size);
  let x = seed * 2654435761 + 1;
  for (let i = 0; i < size; i += 4) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    buf.writeUInt32LE(x >>> 0, Math.min(i, size - 4 < 0 ? 0 : size - 4));
  }
  return size < 4 ? Buffer.alloc(size, seed & 0xff) : buf;
}

async function makeW1(dir: string): Promise<{ files: number; bytes: number }> {
  await rm(dir, { recursive: true, force: true });
  let files = 0;
  let total = 0;
  let seed = 1;
  const put = async (rel: string, size: number): Promise<void> => {
    const abs = join(dir, rel);
    await mkdir(join(abs, '..'), { recursive: true });
    await writeFile(abs, bytes(seed++, size));
    files++;
    total += size;
  };
  // 2,100 source-like files across nested packages, 1–40 KB
  for (let p = 0; p < 12; p++) {
    for (let m = 0; m < 7; m++) {
      for (let f = 0; f < 25; f++) {
        const size = 1024 + ((seed * 7919) % (39 * 1024));
        await put(`packages/pkg${p}/src/module${m}/file${f}.ts`, size);
      }
    }
  }
  // a few larger assets: 12 files of 2–4 MB
  for (let i = 0; i < 12; i++) await put(`assets/blob${i}.bin`, (2 + (i % 3)) * 1024 * 1024);
  return { files, bytes: total };
}

interface Sample {
  ms: number;
  requests: number;
  result: SyncResult;
}

function countingClient(endpoint: string, counter: { n: number }): S3Client {
  const client = localS3Client(endpoint, Math.max(64, CONCURRENCY));
  client.middlewareStack.add(
    (next) => async (args) => {
      counter.n++;
      return next(args);
    },
    { step: 'finalizeRequest', name: 'benchRequestCounter' },
  );
  return client;
}

async function treeDigest(dir: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const e of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (!e.isFile()) continue;
    const abs = join(e.parentPath, e.name);
    out.set(abs.slice(dir.length + 1), createHash('md5').update(await readFile(abs)).digest('hex'));
  }
  return out;
}

async function verifySame(a: string, b: string): Promise<void> {
  const [da, db] = await Promise.all([treeDigest(a), treeDigest(b)]);
  if (da.size !== db.size) throw new Error(`tree mismatch: ${da.size} vs ${db.size} files`);
  for (const [k, v] of da) if (db.get(k) !== v) throw new Error(`tree mismatch at ${k}`);
}

function fmt(samples: Sample[]): string {
  const ms = samples.map((s) => s.ms).sort((x, y) => x - y);
  const med = ms[Math.floor(ms.length / 2)] as number;
  const req = samples.map((s) => s.requests).sort((x, y) => x - y)[Math.floor(samples.length / 2)];
  return `${(med / 1000).toFixed(2)} s (${(ms[0]! / 1000).toFixed(2)}–${(ms[ms.length - 1]! / 1000).toFixed(2)}), ${req} requests`;
}

async function main(): Promise<void> {
  console.log(`s3-workspace-sync bench — node ${process.version}, ${cpus().length} cores, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, runs=${RUNS}, concurrency=${CONCURRENCY}`);
  const src = join(WORK, 'w1');
  const w1 = await makeW1(src);
  console.log(`W1: ${w1.files} files, ${(w1.bytes / 1e6).toFixed(1)} MB`);
  const server = await startLocalS3();
  const counter = { n: 0 };
  const client = countingClient(server.endpoint, counter);
  const rows: Array<[string, Sample[]]> = [];
  const measure = async (fn: () => Promise<SyncResult>): Promise<Sample> => {
    counter.n = 0;
    const t0 = performance.now();
    const result = await fn();
    const ms = performance.now() - t0;
    if (!result.success) throw new Error(`sync failed: ${result.errors.slice(0, 3).join('; ')}`);
    return { ms, requests: counter.n, result };
  };
  const scenarios: Record<string, Sample[]> = {};
  const add = (name: string, s: Sample): void => {
    (scenarios[name] ??= []).push(s);
  };
  try {
    for (let run = 0; run < RUNS; run++) {
      const bucket = `bench-${run}-${Date.now()}`;
      await client.send(new CreateBucketCommand({ Bucket: bucket }));
      const opts = { bucket, prefix: 'w1', s3Client: client, logger: silentLogger, uploadConcurrency: CONCURRENCY, downloadConcurrency: CONCURRENCY };
      const pusher = new S3WorkspaceSync({ ...opts, workspaceDir: src });
      add('W1 cold push', await measure(() => pusher.push()));
      add('W1 no-op push', await measure(() => pusher.push()));
      add('W1 cold-start no-op push (new instance)', await measure(() => new S3WorkspaceSync({ ...opts, workspaceDir: src }).push()));

      const dest = join(WORK, `pull-${run}`);
      await rm(dest, { recursive: true, force: true });
      const puller = new S3WorkspaceSync({ ...opts, workspaceDir: dest });
      add('W1 cold pull into empty dir', await measure(() => puller.pull()));
      await verifySame(src, dest);
      add('W1 no-op pull', await measure(() => puller.pull()));

      // small change on the pulled copy: 5 modified, 2 added, 1 deleted
      const files = [...(await treeDigest(dest)).keys()].sort().filter((f) => f.endsWith('.ts'));
      for (let i = 0; i < 5; i++) await writeFile(join(dest, files[i * 10]!), `// edit ${run}-${i}\n`);
      await writeFile(join(dest, 'new-a.ts'), 'export const a = 1;\n');
      await writeFile(join(dest, 'new-b.ts'), 'export const b = 2;\n');
      await unlink(join(dest, files[100]!));
      const small = await measure(() => puller.push());
      if (small.result.uploadedFiles !== 7 || small.result.deletedFiles !== 1) throw new Error('small-change push did the wrong work');
      add('W1 small-change push (5 mod, 2 add, 1 del)', small);
      await rm(dest, { recursive: true, force: true });
      process.stdout.write('.');
    }
    process.stdout.write('\n');
    for (const [name, samples] of Object.entries(scenarios)) rows.push([name, samples]);
    const width = Math.max(...rows.map(([n]) => n.length));
    for (const [name, samples] of rows) console.log(`${name.padEnd(width)}  ${fmt(samples)}`);
    const cold = scenarios['W1 cold pull into empty dir']!;
    const pushCold = scenarios['W1 cold push']!;
    const mb = w1.bytes / 1e6;
    const med = (s: Sample[]): number => s.map((x) => x.ms).sort((a, b) => a - b)[Math.floor(s.length / 2)]!;
    console.log(`throughput: cold pull ${(mb / (med(cold) / 1000)).toFixed(0)} MB/s, cold push ${(mb / (med(pushCold) / 1000)).toFixed(0)} MB/s`);
  } finally {
    client.destroy();
    await server.stop();
  }
}

await main();
