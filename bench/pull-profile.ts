/**
 * Cold-pull CPU profile: how much client CPU a pull of many small files costs.
 *
 *   npx tsx bench/pull-profile.ts
 *
 * Uses `npm run bench`'s W1 (2,112 files / ~82 MB) and W2 (10,000 files of
 * 1–4 KB), generated once under bench/.work/ (bench/workloads.ts), starts a local s3rver,
 * uploads each workload once (the library's push), then runs cold pulls into
 * fresh empty directories and prints, per pull: wall time, this process's CPU
 * (process.cpuUsage deltas, user/system), CPU µs per object, and the s3rver
 * child's CPU (from /proc) — client and server share the same cores.
 *
 * CPU time is steadier than wall time on a machine others use too.
 *
 * Environment:
 *   PROFILE_WORKLOADS   comma list, default "W1,W2"
 *   PROFILE_RUNS        cold pulls per workload (default 5; the first is also verified byte for byte)
 *   PROFILE_CONCURRENCY downloadConcurrency (default 16, like the peers in NOTES.md)
 *   PROFILE_CPUPROF     write a V8 .cpuprofile of the pulls only (not the upload) to this path
 *   PROFILE_LIBS        comma list of what to compare, runs interleaved (A B A B…) so that load
 *                       from other processes hits all alike; default "src/index.ts". Entries: an
 *                       entry point of the library; `sdk`: a plain GetObject loop, 64 in flight,
 *                       bodies kept in memory, no diffing or verification (the ceiling in NOTES.md);
 *                       `auto`: src/index.ts with the store on `transport: 'auto'` (the fast path for
 *                       GET/PUT; passed as the store part, as options.transport is not wired yet);
 *                       `rclone`: `rclone sync` with --transfers/--checkers = concurrency and
 *                       --fast-list, as the peers were measured (its CPU from /usr/bin/time).
 *                       E.g. a copy of the previous commit: `mkdir -p bench/.work/base && git archive HEAD src | tar -x -C bench/.work/base`
 *                       then PROFILE_LIBS=bench/.work/base/src/index.ts,src/index.ts (the copy must
 *                       sit inside the repository to find node_modules; tsc includes bench/, so
 *                       remove it afterwards).
 *   PROFILE_DEST        directory for the pulled copies (default bench/.work). Each pull goes to a
 *                       fresh directory, all removed only after the workload's last pull: on
 *                       ext4 without a journal (as here), creating files right after deleting
 *                       many costs ~0.2–1 ms of kernel CPU per create (ext4's inode allocator
 *                       skips recently deleted inodes, `recently_deleted()`), which would swamp
 *                       the client's own cost. /dev/shm (tmpfs) leaves only the client's cost.
 *   PROFILE_CACHE_MIDDLEWARE=1  build the S3Client with `cacheMiddleware: true`, as the library's
 *                       own client (options.ts buildClient) is; default off, as bench/local-client.mjs
 *   PROFILE_STRACE      attach `strace -c -f` to this process for the first pull of each workload
 *                       and entry, and write the syscall summaries to `<prefix>-<workload>-<entry index>.txt`
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { Session } from 'node:inspector/promises';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { CreateBucketCommand, GetObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { localS3Client } from './local-client.mjs';
import { cpuMsOf, findServerPid } from './proc.js';
import { compareTrees, digestTree, prepareWorkload } from './workloads.js';
import { startLocalS3 } from '../scripts/local-s3-launcher.mjs';
import type * as Lib from '../src/index.js';

const RUNS = Number(process.env.PROFILE_RUNS ?? 5);
const CONCURRENCY = Number(process.env.PROFILE_CONCURRENCY ?? 16);
const WORKLOADS = (process.env.PROFILE_WORKLOADS ?? 'W1,W2').split(',').map((s) => s.trim());
const CPUPROF = process.env.PROFILE_CPUPROF;
const DEST = process.env.PROFILE_DEST ?? join(import.meta.dirname, '.work');
const STRACE = process.env.PROFILE_STRACE;
const WORK = join(import.meta.dirname, '.work');
const ROOT = join(import.meta.dirname, '..');
const LIBS = (process.env.PROFILE_LIBS ?? 'src/index.ts').split(',').map((s) => s.trim());

interface Row {
  wallMs: number;
  userMs: number;
  sysMs: number;
  serverMs: number;
}

/** The plain-SDK ceiling: GetObject every key, 64 in flight, body into memory, nothing written. */
async function sdkPull(client: S3Client, bucket: string, keys: string[]): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < keys.length) {
      const key = keys[next++]!;
      const out = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
      await out.Body!.transformToByteArray();
    }
  };
  await Promise.all(Array.from({ length: 64 }, worker));
}

/** `rclone sync` of the prefix into `dest`, as the peers in NOTES.md were run; returns its CPU ms. */
async function rclonePull(endpoint: string, bucket: string, prefix: string, dest: string): Promise<{ user: number; sys: number }> {
  const timeFile = join(WORK, `rclone-time-${process.pid}.txt`);
  const args = ['-f', '%U %S', '-o', timeFile, 'rclone', 'sync', `bench:${bucket}/${prefix}`, dest];
  args.push('--transfers', String(CONCURRENCY), '--checkers', String(CONCURRENCY), '--fast-list', '-q');
  const child = spawn('/usr/bin/time', args, {
    stdio: 'inherit',
    env: {
      ...Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('AWS_'))), // e.g. AWS_CA_BUNDLE breaks its plain-http client
      RCLONE_CONFIG: '/dev/null',
      RCLONE_CONFIG_BENCH_TYPE: 's3',
      RCLONE_CONFIG_BENCH_PROVIDER: 'Other',
      RCLONE_CONFIG_BENCH_ENDPOINT: endpoint,
      RCLONE_CONFIG_BENCH_REGION: 'us-east-1',
      RCLONE_CONFIG_BENCH_ACCESS_KEY_ID: 'S3RVER',
      RCLONE_CONFIG_BENCH_SECRET_ACCESS_KEY: 'S3RVER',
      RCLONE_CONFIG_BENCH_FORCE_PATH_STYLE: 'true',
      RCLONE_CONFIG_BENCH_NO_CHECK_BUCKET: 'true',
    },
  });
  const code = await new Promise<number | null>((r) => child.once('exit', r));
  if (code !== 0) throw new Error(`rclone exited with ${code}`);
  const [user, sys] = (await readFile(timeFile, 'utf8')).trim().split('\n').at(-1)!.split(' ').map(Number);
  return { user: user! * 1000, sys: sys! * 1000 };
}

function summary(name: string, files: number, rows: Row[]): void {
  if (rows.length === 0) return;
  const med = (f: (r: Row) => number): number => {
    const v = rows.map(f).sort((a, b) => a - b);
    return v[Math.floor(v.length / 2)]!;
  };
  const wall = med((r) => r.wallMs);
  const user = med((r) => r.userMs);
  const sys = med((r) => r.sysMs);
  const cpu = med((r) => r.userMs + r.sysMs);
  const server = med((r) => r.serverMs);
  console.log(
    `${name} median of ${rows.length}: wall ${(wall / 1000).toFixed(2)} s | client CPU ${(cpu / 1000).toFixed(2)} s ` +
      `(user ${(user / 1000).toFixed(2)}, sys ${(sys / 1000).toFixed(2)}) = ${((cpu * 1000) / files).toFixed(0)} µs/object ` +
      `(user ${((user * 1000) / files).toFixed(0)}, sys ${((sys * 1000) / files).toFixed(0)}) | server CPU ${(server / 1000).toFixed(2)} s`,
  );
}

async function main(): Promise<void> {
  console.log(`pull-profile — node ${process.version}, ${cpus().length} cores, runs=${RUNS}, concurrency=${CONCURRENCY}`);
  const libs: Array<typeof Lib | 'sdk' | 'rclone' | 'auto'> = [];
  for (const l of LIBS) libs.push(l === 'sdk' || l === 'rclone' || l === 'auto' ? l : ((await import(join(ROOT, l))) as typeof Lib));
  const { S3ObjectStore } = await import('../src/storage/S3ObjectStore.js');
  const { S3WorkspaceSync, silentLogger } = libs.filter((l) => typeof l !== 'string').at(-1) ?? ((await import('../src/index.js')) as typeof Lib);
  const server = await startLocalS3();
  const serverPid = findServerPid();
  const client = localS3Client(server.endpoint, Math.max(64, CONCURRENCY));
  if (process.env.PROFILE_CACHE_MIDDLEWARE === '1') (client.config as { cacheMiddleware?: boolean }).cacheMiddleware = true;
  const session = CPUPROF ? new Session() : undefined;
  if (session) {
    session.connect();
    await session.post('Profiler.enable');
    await session.post('Profiler.setSamplingInterval', { interval: 100 });
  }
  let profiling = false;
  try {
    for (const w of WORKLOADS) {
      if (w !== 'W1' && w !== 'W2') throw new Error(`unknown workload ${w}`);
      const size = await prepareWorkload(w, WORK); // the same trees as npm run bench
      const src = size.dir;
      const expected = await digestTree(src);
      const bucket = `profile-${w.toLowerCase()}-${Date.now()}`;
      await client.send(new CreateBucketCommand({ Bucket: bucket }));
      const base = { bucket, prefix: w, s3Client: client, logger: silentLogger, uploadConcurrency: 32, downloadConcurrency: CONCURRENCY };
      const t0 = performance.now();
      // persistState: false keeps the shared source tree free of state files
      const pushed = await new S3WorkspaceSync({ ...base, workspaceDir: src, persistState: false }).push();
      if (!pushed.success || pushed.uploadedFiles !== size.files) throw new Error(`upload failed: ${pushed.errors.slice(0, 3).join('; ')}`);
      console.log(`${w}: ${size.files} files, ${(size.bytes / 1e6).toFixed(1)} MB, uploaded in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
      const keys = [...expected.keys()].map((p) => `${w}/${p}`);
      const rowsBy: Row[][] = libs.map(() => []);
      const dests: string[] = [];
      if (session && !profiling) {
        await session.post('Profiler.start');
        profiling = true;
      }
      for (let run = 0; run < RUNS * libs.length; run++) {
        const li = run % libs.length;
        const lib = libs[li]!;
        const rows = rowsBy[li]!;
        const dest = join(DEST, `profile-pull-${process.pid}-${w.toLowerCase()}-${run}`);
        dests.push(dest);
        let tracer: ChildProcess | undefined;
        if (STRACE && run < libs.length) {
          tracer = spawn('strace', ['-c', '-f', '-o', `${STRACE}-${w}-${li}.txt`, '-p', String(process.pid)], { stdio: 'ignore' });
          await new Promise((r) => setTimeout(r, 1000)); // attached to every thread by then
        }
        const s0 = cpuMsOf(serverPid) ?? 0;
        const c0 = process.cpuUsage();
        const t = performance.now();
        let childCpu = { user: 0, sys: 0 };
        if (lib === 'sdk') {
          await sdkPull(client, bucket, keys);
        } else if (lib === 'rclone') {
          childCpu = await rclonePull(server.endpoint, bucket, w, dest);
        } else if (lib === 'auto') {
          // the store defaultStore() builds (src/pipeline/context.ts), on the fast transport
          const result = await new S3WorkspaceSync(
            { ...base, logger: silentLogger, workspaceDir: dest },
            { store: (o) => new S3ObjectStore(o.client, o.bucket, { expectedBucketOwner: o.expectedBucketOwner, stallTimeoutMs: o.stallTimeoutMs, maxAttempts: o.maxAttempts, clientDetectsStalls: o.ownsClient, sseCustomer: o.sseCustomer, ownsClient: o.ownsClient, transport: 'auto' }) },
          ).pull();
          if (!result.success || result.downloadedFiles !== size.files) {
            throw new Error(`pull failed: ${result.downloadedFiles} downloaded; ${result.errors.slice(0, 3).join('; ')}`);
          }
        } else {
          const result = await new lib.S3WorkspaceSync({ ...base, logger: lib.silentLogger, workspaceDir: dest }).pull();
          if (!result.success || result.downloadedFiles !== size.files) {
            throw new Error(`pull failed: ${result.downloadedFiles} downloaded; ${result.errors.slice(0, 3).join('; ')}`);
          }
        }
        const wallMs = performance.now() - t;
        const c = process.cpuUsage(c0);
        const serverMs = (cpuMsOf(serverPid) ?? 0) - s0;
        if (tracer) {
          const exited = new Promise((r) => tracer.once('exit', r));
          tracer.kill('SIGINT');
          await exited;
        }
        const row = { wallMs, userMs: c.user / 1000 + childCpu.user, sysMs: c.system / 1000 + childCpu.sys, serverMs };
        rows.push(row);
        console.log(
          `  ${w} ${LIBS[li]} pull ${rows.length}: wall ${(wallMs / 1000).toFixed(2)} s, client CPU user ${(row.userMs / 1000).toFixed(2)} s + sys ${(row.sysMs / 1000).toFixed(2)} s ` +
            `= ${(((row.userMs + row.sysMs) * 1000) / size.files).toFixed(0)} µs/object, server CPU ${(serverMs / 1000).toFixed(2)} s, ` +
            `rss ${(process.memoryUsage().rss / 2 ** 20).toFixed(0)} MiB, load ${loadavg()[0]!.toFixed(1)}`,
        );
        if (run < libs.length && lib !== 'sdk') {
          const problems = compareTrees(expected, await digestTree(dest));
          if (problems.length > 0) throw new Error(`pulled tree differs: ${problems.join('; ')}`);
        }
      }
      for (const d of dests) await rm(d, { recursive: true, force: true });
      libs.forEach((_, i) => summary(`${w} ${LIBS[i]}`, size.files, rowsBy[i]!));
    }
    if (session) {
      const { profile } = await session.post('Profiler.stop');
      await writeFile(CPUPROF!, JSON.stringify(profile));
      console.log(`CPU profile written to ${CPUPROF}`);
    }
  } finally {
    session?.disconnect();
    client.destroy();
    await server.stop();
  }
}

await main();
