/**
 * One measured operation of `bench/large.ts`, run in its own process so that
 * its peak RSS (`process.resourceUsage().maxRSS`) belongs to that operation
 * alone. Started by the parent with one JSON argument (a {@link Job}); prints
 * exactly one line of JSON (a {@link ChildReport}) as its last stdout line.
 *
 * The parent bundles this file with esbuild and runs it with plain `node`
 * (what users run: compiled JS), so the loader of tsx (~30 MB RSS) does not
 * count against the memory target. `node --import tsx bench/large-child.ts JOB`
 * works too.
 *
 * Jobs:
 *   md5       — stream a file through node:crypto MD5 (1 MiB reads)
 *   lib-push  — fresh S3WorkspaceSync, push() of a workspace holding the file
 *   lib-pull  — fresh S3WorkspaceSync, pull() into an empty directory
 *   sdk-push  — plain @aws-sdk/client-s3 multipart upload: 8 MiB parts, 8 in
 *               flight, Buffer bodies read positionally; no hashing, no diffing
 *   sdk-pull  — plain ranged GETs: 8 MiB ranges, 8 in flight, written
 *               positionally; no hashing
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { open } from 'node:fs/promises';
import {
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  GetObjectCommand,
  HeadObjectCommand,
  S3Client,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import { S3WorkspaceSync, silentLogger } from '../src/index.js';
import { localS3Client } from './local-client.mjs';

export type Job =
  | { kind: 'md5'; file: string }
  | {
      kind: 'lib-push' | 'lib-pull';
      endpoint: string;
      bucket: string;
      prefix: string;
      dir: string;
      /** Large-file options to override (the bench uses the defaults; for experiments). */
      options?: { multipartThreshold?: number; partSize?: number; partConcurrency?: number; hashThreads?: number; prehashMultipart?: boolean };
    }
  | SdkJob;

/** A plain-SDK transfer of `file` to or from `key`. */
export interface SdkJob {
  kind: 'sdk-push' | 'sdk-pull';
  endpoint: string;
  bucket: string;
  key: string;
  file: string;
  partSize: number;
  inFlight: number;
}

/** Per S3 command: how many requests (retries included) and when the first started / last ended, ms from the start. */
export interface CommandStats {
  n: number;
  firstMs: number;
  lastEndMs: number;
}

export interface ChildReport {
  kind: Job['kind'];
  ms: number;
  bytes: number;
  requests: number;
  commands: Record<string, CommandStats>;
  /** Peak RSS of this process, KiB (from process.resourceUsage().maxRSS). */
  maxRssKiB: number;
  /** RSS after imports and client set-up, just before the operation, KiB. */
  baselineRssKiB: number;
  /** Highest `process.memoryUsage().arrayBuffers` seen (sampled every 25 ms): Buffers alive or awaiting GC, KiB. */
  peakArrayBuffersKiB: number;
  /** CPU time of this process during the operation, ms. */
  userCpuMs: number;
  systemCpuMs: number;
  md5?: string;
  etag?: string;
}

const job = JSON.parse(process.argv[2] ?? '') as Job;
let t0 = 0;
const commands: Record<string, CommandStats> = {};
let requests = 0;

function client(endpoint: string): S3Client {
  const c = localS3Client(endpoint);
  // finalizeRequest runs once per attempt: retries are counted.
  c.middlewareStack.add(
    (next, context) => async (args) => {
      requests++;
      const name = String((context as { commandName?: string }).commandName ?? 'unknown').replace(/Command$/, '');
      const s = (commands[name] ??= { n: 0, firstMs: performance.now() - t0, lastEndMs: 0 });
      s.n++;
      try {
        return await next(args);
      } finally {
        s.lastEndMs = performance.now() - t0;
      }
    },
    { step: 'finalizeRequest', name: 'benchLargeRequestCounter' },
  );
  return c;
}

async function md5File(file: string): Promise<{ md5: string; bytes: number }> {
  const hash = createHash('md5');
  let bytes = 0;
  for await (const chunk of createReadStream(file, { highWaterMark: 1024 * 1024 })) {
    hash.update(chunk as Buffer);
    bytes += (chunk as Buffer).length;
  }
  return { md5: hash.digest('hex'), bytes };
}

async function readFully(fh: Awaited<ReturnType<typeof open>>, buf: Buffer, position: number): Promise<void> {
  let done = 0;
  while (done < buf.length) {
    const { bytesRead } = await fh.read(buf, done, buf.length - done, position + done);
    if (bytesRead === 0) throw new Error(`short read at ${position + done}`);
    done += bytesRead;
  }
}

/** Run `fn(i)` for i in [0, count) with at most `inFlight` at once. */
async function pool(count: number, inFlight: number, fn: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < count) await fn(next++);
  };
  await Promise.all(Array.from({ length: Math.min(inFlight, count) }, worker));
}

async function sdkPush(s3: S3Client, j: SdkJob): Promise<{ bytes: number; etag: string }> {
  const fh = await open(j.file, 'r');
  try {
    const size = (await fh.stat()).size;
    const parts = Math.ceil(size / j.partSize);
    const { UploadId } = await s3.send(new CreateMultipartUploadCommand({ Bucket: j.bucket, Key: j.key }));
    const etags: string[] = new Array<string>(parts);
    await pool(parts, j.inFlight, async (i) => {
      const offset = i * j.partSize;
      const buf = Buffer.allocUnsafe(Math.min(j.partSize, size - offset));
      await readFully(fh, buf, offset);
      const out = await s3.send(new UploadPartCommand({ Bucket: j.bucket, Key: j.key, UploadId, PartNumber: i + 1, Body: buf }));
      etags[i] = out.ETag ?? '';
    });
    const done = await s3.send(
      new CompleteMultipartUploadCommand({
        Bucket: j.bucket,
        Key: j.key,
        UploadId,
        MultipartUpload: { Parts: etags.map((ETag, i) => ({ ETag, PartNumber: i + 1 })) },
      }),
    );
    return { bytes: size, etag: (done.ETag ?? '').replace(/"/g, '') };
  } finally {
    await fh.close();
  }
}

async function sdkPull(s3: S3Client, j: SdkJob): Promise<{ bytes: number }> {
  const head = await s3.send(new HeadObjectCommand({ Bucket: j.bucket, Key: j.key }));
  const size = head.ContentLength ?? 0;
  const fh = await open(j.file, 'w');
  try {
    await pool(Math.ceil(size / j.partSize), j.inFlight, async (i) => {
      const start = i * j.partSize;
      const end = Math.min(size, start + j.partSize) - 1;
      const got = await s3.send(new GetObjectCommand({ Bucket: j.bucket, Key: j.key, Range: `bytes=${start}-${end}`, IfMatch: head.ETag }));
      const chunks: Buffer[] = [];
      for await (const c of got.Body as AsyncIterable<Buffer>) chunks.push(c);
      const buf = Buffer.concat(chunks);
      if (buf.length !== end - start + 1) throw new Error(`range ${start}-${end}: got ${buf.length} bytes`);
      let off = 0;
      while (off < buf.length) off += (await fh.write(buf, off, buf.length - off, start + off)).bytesWritten;
    });
  } finally {
    await fh.close();
  }
  return { bytes: size };
}

async function main(): Promise<ChildReport> {
  const s3 = 'endpoint' in job ? client(job.endpoint) : undefined;
  const baselineRssKiB = Math.round(process.memoryUsage().rss / 1024);
  let peakArrayBuffers = 0;
  const sampler = setInterval(() => {
    peakArrayBuffers = Math.max(peakArrayBuffers, process.memoryUsage().arrayBuffers);
  }, 25);
  const cpu0 = process.cpuUsage();
  t0 = performance.now();
  let bytes = 0;
  let md5: string | undefined;
  let etag: string | undefined;
  switch (job.kind) {
    case 'md5':
      ({ md5, bytes } = await md5File(job.file));
      break;
    case 'lib-push':
    case 'lib-pull': {
      // persistState: false — every measured process is a cold container (no state left by an earlier run)
      const sync = new S3WorkspaceSync({ persistState: false, ...job.options, bucket: job.bucket, prefix: job.prefix, workspaceDir: job.dir, s3Client: s3, logger: silentLogger });
      const result = job.kind === 'lib-push' ? await sync.push() : await sync.pull();
      if (!result.success) throw new Error(`${job.kind} failed: ${JSON.stringify(result.errors).slice(0, 2000)}`);
      const moved = job.kind === 'lib-push' ? result.uploadedFiles : result.downloadedFiles;
      if (moved !== 1) throw new Error(`${job.kind} moved ${moved} files, expected 1`);
      bytes = result.bytesTransferred;
      break;
    }
    case 'sdk-push':
      ({ bytes, etag } = await sdkPush(s3!, job));
      break;
    case 'sdk-pull':
      ({ bytes } = await sdkPull(s3!, job));
      break;
  }
  const ms = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  clearInterval(sampler);
  peakArrayBuffers = Math.max(peakArrayBuffers, process.memoryUsage().arrayBuffers);
  s3?.destroy();
  return {
    kind: job.kind,
    ms,
    bytes,
    requests,
    commands,
    maxRssKiB: process.resourceUsage().maxRSS,
    baselineRssKiB,
    peakArrayBuffersKiB: Math.round(peakArrayBuffers / 1024),
    userCpuMs: cpu.user / 1000,
    systemCpuMs: cpu.system / 1000,
    ...(md5 !== undefined ? { md5 } : {}),
    ...(etag !== undefined ? { etag } : {}),
  };
}

main().then(
  (report) => {
    process.stdout.write(`${JSON.stringify(report)}\n`);
  },
  (error: unknown) => {
    process.stderr.write(`large-child ${job.kind}: ${(error as Error)?.stack ?? String(error)}\n`);
    process.exitCode = 1;
  },
);
