#!/usr/bin/env node
// The "plain SDK ceiling" of `npm run bench`: @aws-sdk/client-s3 alone, no
// diffing, no hashing, no temp files — the least work a tool can do to copy a
// tree. One process per push or pull, like every other tool.
//
//   node bench/sdk-child.mjs '{"op":"push","endpoint":"...","bucket":"b","prefix":"p","dir":"/ws","inFlight":64}'
//
// push: walk `dir`, PutObject every file (Buffer body, read whole) — files of
//       16 MiB or more as multipart uploads of 8 MiB parts; files and parts
//       share one pool of `inFlight` requests.
// pull: list the prefix (all pages), GetObject every object into `dir`
//       (objects of 16 MiB or more as ranged GETs of 8 MiB written
//       positionally); one pool of `inFlight` requests.
//
// Prints one line of JSON: { ok, op, files, bytes, opMs }.

import { mkdir, open, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { dirname, join, relative, sep } from 'node:path';
import {
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  GetObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import { localS3Client } from './local-client.mjs';

const job = JSON.parse(process.argv[2] ?? '{}');
const IN_FLIGHT = job.inFlight ?? 64;
const THRESHOLD = 16 * 1024 * 1024;
const PART = 8 * 1024 * 1024;
const prefix = job.prefix.endsWith('/') ? job.prefix : `${job.prefix}/`;

const s3 = localS3Client(job.endpoint, IN_FLIGHT);

/** Run every task with at most IN_FLIGHT at once. */
async function pool(tasks) {
  let next = 0;
  const worker = async () => {
    while (next < tasks.length) await tasks[next++]();
  };
  await Promise.all(Array.from({ length: IN_FLIGHT }, worker));
}

async function body(stream) {
  const chunks = [];
  for await (const c of stream) chunks.push(c);
  return Buffer.concat(chunks);
}

async function push() {
  const files = [];
  for (const e of await readdir(job.dir, { withFileTypes: true, recursive: true })) {
    if (!e.isFile()) continue;
    const abs = join(e.parentPath, e.name);
    files.push({ abs, key: prefix + relative(job.dir, abs).split(sep).join('/'), size: (await stat(abs)).size });
  }
  const tasks = [];
  for (const f of files) {
    if (f.size < THRESHOLD) {
      tasks.push(async () => {
        await s3.send(new PutObjectCommand({ Bucket: job.bucket, Key: f.key, Body: await readFile(f.abs) }));
      });
      continue;
    }
    // Multipart: created before the pool starts, so every part is a task of the one pool.
    const { UploadId } = await s3.send(new CreateMultipartUploadCommand({ Bucket: job.bucket, Key: f.key }));
    const fh = await open(f.abs, 'r');
    const count = Math.ceil(f.size / PART);
    const etags = new Array(count);
    let left = count;
    for (let i = 0; i < count; i++) {
      tasks.push(async () => {
        const buf = Buffer.allocUnsafe(Math.min(PART, f.size - i * PART));
        let off = 0;
        while (off < buf.length) off += (await fh.read(buf, off, buf.length - off, i * PART + off)).bytesRead || fail(`short read ${f.abs}`);
        const r = await s3.send(new UploadPartCommand({ Bucket: job.bucket, Key: f.key, UploadId, PartNumber: i + 1, Body: buf }));
        etags[i] = r.ETag;
        if (--left === 0) {
          await fh.close();
          await s3.send(
            new CompleteMultipartUploadCommand({
              Bucket: job.bucket,
              Key: f.key,
              UploadId,
              MultipartUpload: { Parts: etags.map((ETag, n) => ({ ETag, PartNumber: n + 1 })) },
            }),
          );
        }
      });
    }
  }
  await pool(tasks);
  return { files: files.length, bytes: files.reduce((a, f) => a + f.size, 0) };
}

async function pull() {
  const objects = [];
  let ContinuationToken;
  do {
    const page = await s3.send(new ListObjectsV2Command({ Bucket: job.bucket, Prefix: prefix, ContinuationToken }));
    for (const o of page.Contents ?? []) objects.push({ key: o.Key, size: o.Size ?? 0 });
    ContinuationToken = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (ContinuationToken);
  const dirs = new Set(objects.map((o) => dirname(join(job.dir, o.key.slice(prefix.length)))));
  for (const d of dirs) await mkdir(d, { recursive: true });
  const tasks = [];
  for (const o of objects) {
    const abs = join(job.dir, o.key.slice(prefix.length));
    if (o.size < THRESHOLD) {
      tasks.push(async () => {
        const r = await s3.send(new GetObjectCommand({ Bucket: job.bucket, Key: o.key }));
        await writeFile(abs, await body(r.Body));
      });
      continue;
    }
    const fh = await open(abs, 'w');
    const count = Math.ceil(o.size / PART);
    let left = count;
    for (let i = 0; i < count; i++) {
      tasks.push(async () => {
        const start = i * PART;
        const end = Math.min(o.size, start + PART) - 1;
        const r = await s3.send(new GetObjectCommand({ Bucket: job.bucket, Key: o.key, Range: `bytes=${start}-${end}` }));
        const buf = await body(r.Body);
        if (buf.length !== end - start + 1) fail(`range ${start}-${end} of ${o.key}: got ${buf.length} bytes`);
        let off = 0;
        while (off < buf.length) off += (await fh.write(buf, off, buf.length - off, start + off)).bytesWritten;
        if (--left === 0) await fh.close();
      });
    }
  }
  await pool(tasks);
  return { files: objects.length, bytes: objects.reduce((a, o) => a + o.size, 0) };
}

function fail(message) {
  throw new Error(message);
}

let out;
let code = 0;
const t0 = performance.now();
try {
  const r = job.op === 'pull' ? await pull() : await push();
  out = { ok: true, op: job.op, ...r, opMs: Math.round(performance.now() - t0) };
} catch (error) {
  out = { ok: false, op: job.op, error: String(error?.stack ?? error).slice(0, 2000) };
  process.stderr.write(`sdk-child: ${error?.stack ?? error}\n`);
  code = 2;
}
s3.destroy();
process.stdout.write(`${JSON.stringify(out)}\n`);
process.exitCode = code;
