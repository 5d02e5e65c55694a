/**
 * `npm run bench:large` (separate from `npm run bench`): one large file pushed
 * and pulled through this library against a local s3rver, next to what the
 * machine allows for the same bytes:
 *
 *   - MD5 rate: node:crypto streaming MD5 of the 1 GiB file (the library must
 *     hash every byte it moves, so this bounds it);
 *   - plain-SDK ceiling: @aws-sdk/client-s3 with no diffing and no hashing —
 *     a multipart upload (8 MiB parts, 8 in flight, Buffer bodies read
 *     positionally) and ranged GETs (8 MiB, 8 in flight, written positionally).
 *
 * Every measured operation runs in its own child process (bench/large-child.ts,
 * bundled with esbuild and run with plain node), which reports its wall time,
 * S3 requests (counted at the finalizeRequest step, so retries count), CPU time
 * and peak RSS. Pulled files are checked byte for byte (MD5) against the source.
 *
 * Targets (from the large-file issue): peak RSS < 200 MB for the 4 GiB file in
 * both directions; push and pull each ≥ 80% of min(MD5 rate, plain-SDK ceiling).
 *
 * Files are generated deterministically (AES-128-CTR keystream: incompressible)
 * under bench/.work/large/ (git-ignored) and reused when their size and stored
 * checksum match. Each size gets a fresh s3rver, stopped (and its data deleted)
 * afterwards. The 4 GiB case is skipped, with a message, when the disk lacks
 * room for the file, s3rver's parts plus assembled object, and a pulled copy.
 *
 * Environment: BENCH_RUNS (default 1; medians when > 1, peak RSS is the max),
 * BENCH_LARGE_SIZES (GiB, default "1,4"). Latest results: bench/RESULTS-large.md.
 */
import { spawn } from 'node:child_process';
import { createCipheriv, createHash } from 'node:crypto';
import { mkdir, open, readFile, rename, rm, stat, statfs, writeFile } from 'node:fs/promises';
import { cpus, release, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { DeleteObjectCommand, HeadObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { localS3Client } from './local-client.mjs';
import { startLocalS3 } from '../scripts/local-s3-launcher.mjs';
import { cpuMsOf, findServerPid } from './proc.js';
import type { ChildReport, Job } from './large-child.js';

const RUNS = Math.max(1, Number(process.env.BENCH_RUNS ?? 1));
const SIZES_GIB = (process.env.BENCH_LARGE_SIZES ?? '1,4').split(',').map((s) => Number(s.trim())).filter((n) => n > 0);
const HERE = import.meta.dirname;
const WORK = join(HERE, '.work');
const LARGE = join(WORK, 'large');
const RESULTS = join(HERE, 'RESULTS-large.md');
const GIB = 1024 ** 3;
const CHUNK = 8 * 1024 * 1024;
const PART = 8 * 1024 * 1024;
const IN_FLIGHT = 8;
const BUCKET = 'bench-large';
const GENERATOR = 'aes-128-ctr/v1';
const RSS_TARGET_BYTES = 200e6;
const RSS_TARGET_GIB = 4;
const RATIO_TARGET = 0.8;
const CHILD_TIMEOUT_MS = 10 * 60_000;

// ---------------------------------------------------------------- data files

interface DataFile {
  gib: number;
  dir: string; // the push workspace: holds only this file
  path: string;
  name: string;
  size: number;
  md5: string;
}

function dataPaths(gib: number): { dir: string; name: string; path: string; sidecar: string } {
  const dir = join(LARGE, `ws-${gib}g`);
  const name = `data-${gib}g.bin`;
  return { dir, name, path: join(dir, name), sidecar: join(LARGE, `data-${gib}g.json`) };
}

/** The file if it is present with the right size and a stored checksum from this generator. */
async function existingData(gib: number): Promise<DataFile | undefined> {
  const { dir, name, path, sidecar } = dataPaths(gib);
  try {
    const meta = JSON.parse(await readFile(sidecar, 'utf8')) as { size: number; md5: string; generator: string };
    const st = await stat(path);
    if (meta.generator === GENERATOR && meta.size === gib * GIB && st.size === meta.size && /^[0-9a-f]{32}$/.test(meta.md5)) {
      return { gib, dir, name, path, size: st.size, md5: meta.md5 };
    }
  } catch {
    // absent or unreadable: regenerate
  }
  return undefined;
}

/** Deterministic, incompressible bytes: the AES-128-CTR keystream of a per-size key, written in 8 MiB chunks. */
async function generateData(gib: number): Promise<DataFile> {
  const { dir, name, path, sidecar } = dataPaths(gib);
  await rm(dir, { recursive: true, force: true });
  await mkdir(dir, { recursive: true });
  const size = gib * GIB;
  const key = createHash('sha256').update(`s3-workspace-sync bench large ${gib}`).digest().subarray(0, 16);
  const cipher = createCipheriv('aes-128-ctr', key, Buffer.alloc(16));
  const zeros = Buffer.alloc(CHUNK);
  const hash = createHash('md5');
  const temp = join(LARGE, `.${name}.partial`);
  const fh = await open(temp, 'w');
  const t0 = performance.now();
  try {
    for (let written = 0; written < size; ) {
      const n = Math.min(CHUNK, size - written);
      const chunk = cipher.update(n === CHUNK ? zeros : zeros.subarray(0, n));
      hash.update(chunk);
      let off = 0;
      while (off < chunk.length) off += (await fh.write(chunk, off, chunk.length - off, written + off)).bytesWritten;
      written += n;
    }
  } finally {
    await fh.close();
  }
  const md5 = hash.digest('hex');
  await rename(temp, path);
  await writeFile(sidecar, `${JSON.stringify({ size, md5, generator: GENERATOR }, null, 2)}\n`);
  console.log(`  generated ${path} (${gib} GiB) in ${((performance.now() - t0) / 1000).toFixed(1)} s, md5 ${md5}`);
  return { gib, dir, name, path, size, md5 };
}

async function freeBytes(path: string): Promise<number> {
  const s = await statfs(path);
  return s.bavail * s.bsize;
}

/**
 * Whether `gib` fits: the source file (unless already there), then at the peak
 * either s3rver's uploaded parts plus the object it assembles from them
 * (CompleteMultipartUpload concatenates), or its object plus a pulled copy.
 */
async function diskCheck(gib: number, present: boolean): Promise<string | undefined> {
  const size = gib * GIB;
  const margin = GIB;
  const source = present ? 0 : size;
  const tmp = tmpdir();
  const [workDev, tmpDev] = [(await stat(WORK)).dev, (await stat(tmp)).dev];
  const fmt = (b: number): string => `${(b / GIB).toFixed(1)} GiB`;
  if (workDev === tmpDev) {
    const need = source + 2 * size + margin;
    const have = await freeBytes(WORK);
    if (have < need) return `needs ${fmt(need)} free on ${WORK} (file + s3rver's parts and assembled object, or its object + the pulled copy, + 1 GiB margin); ${fmt(have)} free`;
    return undefined;
  }
  const needWork = source + size + margin;
  const needTmp = 2 * size + margin;
  const [haveWork, haveTmp] = [await freeBytes(WORK), await freeBytes(tmp)];
  if (haveWork < needWork) return `needs ${fmt(needWork)} free on ${WORK} (file + pulled copy + margin); ${fmt(haveWork)} free`;
  if (haveTmp < needTmp) return `needs ${fmt(needTmp)} free on ${tmp} for s3rver (parts + assembled object + margin); ${fmt(haveTmp)} free`;
  return undefined;
}

// ---------------------------------------------------------------- child processes

let childArgv: string[] = [];

/** Bundle the child with esbuild so it runs on plain node (no tsx loader in its RSS); fall back to tsx. */
async function prepareChild(): Promise<string> {
  const entry = join(HERE, 'large-child.ts');
  const out = join(WORK, 'large-child.mjs');
  try {
    const { build } = await import('esbuild');
    await build({ entryPoints: [entry], outfile: out, bundle: true, platform: 'node', format: 'esm', target: 'node20', packages: 'external', logLevel: 'warning' });
    childArgv = [out];
    return 'plain node (bench/large-child.ts bundled with esbuild; dependencies from node_modules)';
  } catch (error) {
    childArgv = ['--import', 'tsx', entry];
    return `node --import tsx (esbuild unavailable: ${(error as Error).message}; peak RSS includes ~30 MB of tsx loader)`;
  }
}

function runChild(job: Job): Promise<ChildReport> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...childArgv, JSON.stringify(job)], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
    child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr = (stderr + c).slice(-16_384)));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${job.kind} child timed out after ${CHILD_TIMEOUT_MS / 1000} s`));
    }, CHILD_TIMEOUT_MS);
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const line = stdout.trim().split('\n').filter((l) => l.startsWith('{')).pop();
      if (code !== 0 || line === undefined) {
        reject(new Error(`${job.kind} child failed (${code ?? signal}):\n${stderr.trim()}`));
        return;
      }
      resolve(JSON.parse(line) as ChildReport);
    });
  });
}

// ---------------------------------------------------------------- measuring

interface Sample extends ChildReport {
  serverCpuMs?: number | undefined;
}

type Op = 'libPush' | 'libPull' | 'sdkPush' | 'sdkPull';

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};
const mbps = (bytes: number, ms: number): number => bytes / 1e6 / (ms / 1000);

const s3Client = (endpoint: string): S3Client => localS3Client(endpoint);

async function verifyFile(path: string, data: DataFile, what: string): Promise<void> {
  const r = await runChild({ kind: 'md5', file: path });
  if (r.bytes !== data.size || r.md5 !== data.md5) {
    throw new Error(`${what}: ${path} is not byte-identical to the source (md5 ${r.md5}, ${r.bytes} bytes; expected ${data.md5}, ${data.size} bytes)`);
  }
}

async function measureSize(data: DataFile): Promise<Record<Op, Sample[]>> {
  const out: Record<Op, Sample[]> = { libPush: [], libPull: [], sdkPush: [], sdkPull: [] };
  const server = await startLocalS3({ buckets: [BUCKET] });
  const serverPid = findServerPid();
  const client = s3Client(server.endpoint);
  const timed = async (job: Job): Promise<Sample> => {
    const before = cpuMsOf(serverPid);
    const r = await runChild(job);
    const after = cpuMsOf(serverPid);
    return { ...r, serverCpuMs: before !== undefined && after !== undefined ? after - before : undefined };
  };
  const pullDir = join(LARGE, 'pull');
  const sdkFile = join(LARGE, 'sdk-pull.bin');
  try {
    for (let run = 0; run < RUNS; run++) {
      const prefix = `run${run}`;
      const key = `${prefix}/${data.name}`;
      const common = { endpoint: server.endpoint, bucket: BUCKET };

      // library push: a fresh instance, one file in the workspace, nothing in the bucket
      const push = await timed({ kind: 'lib-push', ...common, prefix, dir: data.dir });
      const head = await client.send(new HeadObjectCommand({ Bucket: BUCKET, Key: key }));
      if (head.ContentLength !== data.size) throw new Error(`library push stored ${head.ContentLength} bytes, expected ${data.size}`);
      // s3rver's multipart ETag is the plain MD5 of the object
      if ((head.ETag ?? '').replace(/"/g, '') !== data.md5) throw new Error(`library push stored ETag ${head.ETag}, expected ${data.md5}`);
      out.libPush.push(push);
      process.stdout.write(`  run ${run + 1}: library push ${(push.ms / 1000).toFixed(1)} s`);

      // library pull: a fresh instance into an empty directory
      await rm(pullDir, { recursive: true, force: true });
      await mkdir(pullDir, { recursive: true });
      const pull = await timed({ kind: 'lib-pull', ...common, prefix, dir: pullDir });
      await verifyFile(join(pullDir, data.name), data, 'library pull');
      await rm(pullDir, { recursive: true, force: true });
      out.libPull.push(pull);
      process.stdout.write(`, pull ${(pull.ms / 1000).toFixed(1)} s`);

      // plain SDK ranged download of the same object
      await rm(sdkFile, { force: true });
      const sdkPull = await timed({ kind: 'sdk-pull', ...common, key, file: sdkFile, partSize: PART, inFlight: IN_FLIGHT });
      await verifyFile(sdkFile, data, 'plain SDK pull');
      await rm(sdkFile, { force: true });
      out.sdkPull.push(sdkPull);
      await client.send(new DeleteObjectCommand({ Bucket: BUCKET, Key: key })); // free s3rver's copy before the next upload
      process.stdout.write(`; plain SDK pull ${(sdkPull.ms / 1000).toFixed(1)} s`);

      // plain SDK multipart upload of the same bytes
      const sdkKey = `${prefix}/sdk-${data.name}`;
      const sdkPush = await timed({ kind: 'sdk-push', ...common, key: sdkKey, file: data.path, partSize: PART, inFlight: IN_FLIGHT });
      if (sdkPush.etag !== data.md5) throw new Error(`plain SDK push stored ETag ${sdkPush.etag}, expected ${data.md5}`);
      await client.send(new DeleteObjectCommand({ Bucket: BUCKET, Key: sdkKey }));
      out.sdkPush.push(sdkPush);
      process.stdout.write(`, push ${(sdkPush.ms / 1000).toFixed(1)} s\n`);
    }
  } finally {
    client.destroy();
    await server.stop();
    await rm(pullDir, { recursive: true, force: true });
    await rm(sdkFile, { force: true });
  }
  return out;
}

// ---------------------------------------------------------------- reporting

interface Summary {
  ms: number;
  mbps: number;
  requests: number;
  rssMB: number;
  baseMB: number;
  buffersMB: number;
  cpuMs: number;
  serverCpuMs: number | undefined;
  phases: string;
}

const secs = (ms: number): string => `${(ms / 1000).toFixed(2)} s`;

/** Where the wall time went, from the first/last request of each S3 command (medians over runs). */
function phases(op: Op, samples: Sample[]): string {
  const at = (cmd: string, f: 'firstMs' | 'lastEndMs'): number | undefined => {
    const xs = samples.map((s) => s.commands[cmd]?.[f]).filter((x): x is number => x !== undefined);
    return xs.length ? median(xs) : undefined;
  };
  const total = median(samples.map((s) => s.ms));
  const part = (label: string, from: number | undefined, to: number | undefined): string | undefined =>
    from !== undefined && to !== undefined ? `${label} ${secs(to - from)}` : undefined;
  const lib = op === 'libPush' || op === 'libPull';
  const items: Array<string | undefined> =
    op === 'libPush' || op === 'sdkPush'
      ? [
          part(`start→CreateMultipartUpload${lib ? ' (scan, list, hash)' : ''}`, 0, at('CreateMultipartUpload', 'firstMs')),
          part('parts (first UploadPart→last answered)', at('UploadPart', 'firstMs'), at('UploadPart', 'lastEndMs')),
          part('CompleteMultipartUpload', at('CompleteMultipartUpload', 'firstMs'), at('CompleteMultipartUpload', 'lastEndMs')),
        ]
      : [
          part(`start→first GetObject${lib ? ' (list, plan)' : ' (HeadObject)'}`, 0, at('GetObject', 'firstMs')),
          part('ranges (first GetObject→last answered)', at('GetObject', 'firstMs'), at('GetObject', 'lastEndMs')),
          part(`after the last range's headers${lib ? ' (its body, write, verify, rename)' : ' (its body, write)'}`, at('GetObject', 'lastEndMs'), total),
        ];
  return items.filter(Boolean).join('; ');
}

function summarise(op: Op, samples: Sample[], bytes: number): Summary {
  const ms = median(samples.map((s) => s.ms));
  const server = samples.map((s) => s.serverCpuMs).filter((x): x is number => x !== undefined);
  return {
    ms,
    mbps: mbps(bytes, ms),
    requests: median(samples.map((s) => s.requests)),
    rssMB: Math.max(...samples.map((s) => (s.maxRssKiB * 1024) / 1e6)),
    baseMB: median(samples.map((s) => (s.baselineRssKiB * 1024) / 1e6)),
    buffersMB: Math.max(...samples.map((s) => (s.peakArrayBuffersKiB * 1024) / 1e6)),
    cpuMs: median(samples.map((s) => s.userCpuMs + s.systemCpuMs)),
    serverCpuMs: server.length ? median(server) : undefined,
    phases: phases(op, samples),
  };
}

interface SizeResult {
  gib: number;
  bytes: number;
  lib: { push: Summary; pull: Summary };
  sdk: { push: Summary; pull: Summary };
  md5: number;
}

const FOOTNOTE =
  '¹ serial bound = 1 / (1/MD5 rate + 1/ceiling): the ceiling plus one MD5 pass that does not overlap the transfer. ' +
  "² the library's extra wall time over the plain SDK, in units of the time to MD5 the file once.";
const RSS_LEGEND =
  'Peak RSS = `process.resourceUsage().maxRSS` of the process doing the transfer; baseline = its RSS just before starting ' +
  '(node, SDK and library loaded); peak Buffers = highest `process.memoryUsage().arrayBuffers` (live Buffers plus those awaiting GC).';

type Table = { head: string[]; rows: string[][]; notes: string[] };

function table(r: SizeResult): Table {
  const bound = { push: Math.min(r.md5, r.sdk.push.mbps), pull: Math.min(r.md5, r.sdk.pull.mbps) };
  const ratio = { push: r.lib.push.mbps / bound.push, pull: r.lib.pull.mbps / bound.pull };
  const mark = (ok: boolean): string => (ok ? 'PASS' : 'MISS');
  const rssRow = (s: Summary): string =>
    r.gib === RSS_TARGET_GIB ? `${mark(s.rssMB * 1e6 < RSS_TARGET_BYTES)} (${s.rssMB.toFixed(0)} MB)` : `n/a (target is for the ${RSS_TARGET_GIB} GiB file)`;
  const cpu = (s: Summary): string =>
    `${(s.cpuMs / 1000).toFixed(1)} s client` + (s.serverCpuMs !== undefined ? ` / ${(s.serverCpuMs / 1000).toFixed(1)} s s3rver` : '');
  // ¹ what one MD5 pass that does not overlap the transfer allows: 1 / (1/MD5 + 1/ceiling)
  const serial = { push: 1 / (1 / r.md5 + 1 / r.sdk.push.mbps), pull: 1 / (1 / r.md5 + 1 / r.sdk.pull.mbps) };
  // ² the library's extra wall time over the plain SDK, in units of "MD5 the whole file once"
  const md5Ms = (r.bytes / 1e6 / r.md5) * 1000;
  const extra = (l: Summary, c: Summary): string => `${secs(l.ms - c.ms)} ≈ ${((l.ms - c.ms) / md5Ms).toFixed(1)} × ${secs(md5Ms)}`;
  const rss = (s: Summary): string => `${s.rssMB.toFixed(0)} MB (${s.baseMB.toFixed(0)}; ${s.buffersMB.toFixed(0)})`;
  const rows: string[][] = [
    ['library throughput', `${r.lib.push.mbps.toFixed(0)} MB/s (${secs(r.lib.push.ms)})`, `${r.lib.pull.mbps.toFixed(0)} MB/s (${secs(r.lib.pull.ms)})`],
    ['library peak RSS (baseline; peak Buffers)', rss(r.lib.push), rss(r.lib.pull)],
    ['library S3 requests', `${r.lib.push.requests}`, `${r.lib.pull.requests}`],
    ['library CPU time', cpu(r.lib.push), cpu(r.lib.pull)],
    ['plain-SDK ceiling', `${r.sdk.push.mbps.toFixed(0)} MB/s (${secs(r.sdk.push.ms)})`, `${r.sdk.pull.mbps.toFixed(0)} MB/s (${secs(r.sdk.pull.ms)})`],
    ['plain-SDK peak RSS (baseline; peak Buffers)', rss(r.sdk.push), rss(r.sdk.pull)],
    ['plain-SDK S3 requests', `${r.sdk.push.requests}`, `${r.sdk.pull.requests}`],
    ['plain-SDK CPU time', cpu(r.sdk.push), cpu(r.sdk.pull)],
    ['MD5 rate (1 GiB file)', `${r.md5.toFixed(0)} MB/s`, `${r.md5.toFixed(0)} MB/s`],
    ['library / min(MD5, ceiling)', `${(ratio.push * 100).toFixed(0)}% of ${bound.push.toFixed(0)} MB/s`, `${(ratio.pull * 100).toFixed(0)}% of ${bound.pull.toFixed(0)} MB/s`],
    [`target ≥ ${RATIO_TARGET * 100}%`, mark(ratio.push >= RATIO_TARGET), mark(ratio.pull >= RATIO_TARGET)],
    [`target peak RSS < ${RSS_TARGET_BYTES / 1e6} MB`, rssRow(r.lib.push), rssRow(r.lib.pull)],
    ['(info) library / serial bound¹', `${((r.lib.push.mbps / serial.push) * 100).toFixed(0)}% of ${serial.push.toFixed(0)} MB/s`, `${((r.lib.pull.mbps / serial.pull) * 100).toFixed(0)}% of ${serial.pull.toFixed(0)} MB/s`],
    ['(info) library − ceiling, in MD5 passes²', extra(r.lib.push, r.sdk.push), extra(r.lib.pull, r.sdk.pull)],
  ];
  const notes = [
    `library push: ${r.lib.push.phases}`,
    `library pull: ${r.lib.pull.phases}`,
    `plain-SDK push: ${r.sdk.push.phases}`,
    `plain-SDK pull: ${r.sdk.pull.phases}`,
  ];
  return { head: [`${r.gib} GiB (${(r.bytes / 1e6).toFixed(0)} MB)`, 'push', 'pull'], rows, notes };
}

function printTable(t: Table): void {
  const all = [t.head, ...t.rows];
  const w = t.head.map((_, i) => Math.max(...all.map((r) => r[i]!.length)));
  const line = (r: string[]): string => r.map((c, i) => c.padEnd(w[i]!)).join('  ').trimEnd();
  console.log(line(t.head));
  console.log(w.map((n) => '─'.repeat(n)).join('  '));
  for (const r of t.rows) console.log(line(r));
  console.log(`  ${FOOTNOTE}`);
  for (const n of t.notes) console.log(`  ${n}`);
}

function markdownTable(t: Table): string {
  const row = (r: string[]): string => `| ${r.join(' | ')} |`;
  return [
    row(t.head),
    row(t.head.map(() => '---')),
    ...t.rows.map(row),
    '',
    FOOTNOTE,
    '',
    'Where the wall time went (medians; from the first and last request of each S3 command):',
    '',
    ...t.notes.map((n) => `- ${n}`),
  ].join('\n');
}

// ---------------------------------------------------------------- main

async function main(): Promise<void> {
  const started = performance.now();
  const machine = `node ${process.version}, ${cpus().length} × ${cpus()[0]?.model.trim() ?? 'cpu'}, ${(totalmem() / GIB).toFixed(0)} GiB RAM, ${process.platform} ${release()}`;
  console.log(`s3-workspace-sync large-file bench — ${machine}, runs=${RUNS}`);
  await mkdir(LARGE, { recursive: true });
  const runner = await prepareChild();
  console.log(`  children run on ${runner}`);

  // The 1 GiB file is always needed: the MD5 rate is measured on it.
  const wanted = [...new Set([1, ...SIZES_GIB])].sort((a, b) => a - b);
  const skipped: string[] = [];
  const results: SizeResult[] = [];
  let md5Rate = 0;

  for (const gib of wanted) {
    let data = await existingData(gib);
    const problem = await diskCheck(gib, data !== undefined);
    if (problem !== undefined) {
      const msg = `SKIPPED ${gib} GiB: ${problem}`;
      console.log(`  ${msg}`);
      skipped.push(msg);
      if (gib === 1) throw new Error('the 1 GiB file is needed for the MD5 rate; free some disk space');
      continue;
    }
    data ??= await generateData(gib);

    if (gib === 1) {
      const rates: number[] = [];
      for (let run = 0; run < RUNS; run++) {
        const r = await runChild({ kind: 'md5', file: data.path });
        if (r.md5 !== data.md5) throw new Error(`${data.path} does not match its stored checksum (md5 ${r.md5}, stored ${data.md5}): delete bench/.work/large/ and run again`);
        rates.push(mbps(r.bytes, r.ms));
      }
      md5Rate = median(rates);
      console.log(`  MD5 rate: ${md5Rate.toFixed(0)} MB/s (node:crypto, streaming the 1 GiB file; stored checksum verified)`);
    }
    if (!SIZES_GIB.includes(gib)) continue;

    console.log(`\n${gib} GiB: fresh s3rver`);
    const samples = await measureSize(data);
    results.push({
      gib,
      bytes: data.size,
      lib: { push: summarise('libPush', samples.libPush, data.size), pull: summarise('libPull', samples.libPull, data.size) },
      sdk: { push: summarise('sdkPush', samples.sdkPush, data.size), pull: summarise('sdkPull', samples.sdkPull, data.size) },
      md5: md5Rate,
    });
    console.log();
    printTable(table(results[results.length - 1]!));
  }

  const total = (performance.now() - started) / 1000;
  console.log(`\nlarge-file bench done in ${total.toFixed(0)} s; results in ${RESULTS}`);
  const md = [
    '# Large-file benchmark: latest results',
    '',
    'Written by `npm run bench:large` (`bench/large.ts`; not part of `npm run bench`, which compares with rclone and aws-cli). Do not edit by hand.',
    '',
    `- Date: ${new Date().toISOString()}`,
    `- Machine: ${machine}`,
    `- Server: s3rver (local, 127.0.0.1, shares the CPU with the client); a fresh server per size`,
    `- Runs: ${RUNS}${RUNS > 1 ? ' (medians; peak RSS is the max over runs)' : ''}; measured processes run on ${runner}`,
    `- Library: default options (multipartThreshold 16 MiB, partSize 8 MiB, partConcurrency 8); a fresh instance per push and per pull; the client: forcePathStyle, checksums WHEN_REQUIRED, keep-alive, maxSockets 64`,
    `- Plain-SDK ceiling: @aws-sdk/client-s3 alone, no diffing, no hashing: multipart upload with ${PART / 2 ** 20} MiB Buffer parts read positionally, ${IN_FLIGHT} in flight; ranged GETs of ${PART / 2 ** 20} MiB, ${IN_FLIGHT} in flight, written positionally`,
    `- MD5 rate: node:crypto MD5 streaming the 1 GiB file (1 MiB reads, page cache warm)`,
    `- Pulled files are verified byte-identical (MD5) against the source; MB = 10^6 bytes`,
    `- ${RSS_LEGEND}`,
    `- Targets: peak RSS < ${RSS_TARGET_BYTES / 1e6} MB for the ${RSS_TARGET_GIB} GiB file in both directions; push and pull each ≥ ${RATIO_TARGET * 100}% of min(MD5 rate, plain-SDK ceiling)`,
    `- Total bench time: ${total.toFixed(0)} s`,
    '',
    ...skipped.map((s) => `**${s}**\n`),
    ...results.flatMap((r) => [`## ${r.gib} GiB`, '', markdownTable(table(r)), '']),
  ].join('\n');
  await writeFile(RESULTS, md);
}

await main();
