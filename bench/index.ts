/**
 * `npm run bench`: s3-workspace-sync side by side with rclone and aws-cli (and
 * a plain-SDK ceiling) against a local S3 server, every sync a whole process.
 *
 * For each workload (bench/workloads.ts: W1 code workspace, W2 10,000 small
 * files, W3 one 1 GiB file, W4 100,000 tiny files) a fresh s3rver starts (scripts/local-s3-launcher.mjs)
 * with a request-counting proxy in front of it (bench/count-proxy.ts); every
 * tool talks to the proxy. Each run of each tool gets a fresh bucket and a
 * private copy of the workload, and goes through these scenarios in order:
 *
 *   cold push               into the empty bucket prefix
 *   cold-start no-op push   a new process, nothing changed; the library loads its saved state
 *                           (a Lambda cold start on a warm /tmp); compared with a bare directory walk
 *   no-op push, no state    a new process, nothing changed, the library's saved state deleted first
 *                           (a fresh container with a restored workspace; for the peers the same as above)
 *   small-change push       5 files modified (3 grow, 2 same size), 2 added, 1 deleted locally
 *   cold pull               into an empty directory
 *   no-op pull              nothing changed
 *   warm pull               after another client changed 5 objects, added 2, deleted 1
 *
 * (W3 is a single file: no small-change push, no warm pull. The plain-SDK
 * ceiling runs cold push and cold pull only. W4, the scale workload, runs the
 * library and rclone only, without the no-state push and the warm pull: see
 * SCALE_NOTE.) Runs are interleaved (run 1 of
 * every tool, then run 2…) so background noise spreads over all tools.
 *
 * Measured per process: wall time (spawn to exit, in this process), CPU
 * user+sys and peak RSS of the child and its descendants (/usr/bin/time), S3
 * requests at the proxy, s3rver's CPU (from /proc). Every pull's tree is
 * verified byte for byte (MD5) against the expected tree, every push's bucket
 * by key, size and ETag (s3rver's ETag is the plain MD5, multipart included);
 * a wrong result is reported as FAIL, not as a time, and repaired so later
 * scenarios of that run start from the intended state.
 *
 * Environment:
 *   BENCH_RUNS          runs per scenario (default 3)
 *   BENCH_WORKLOADS     e.g. W1,W4 (default W1,W2,W3,W4)
 *   BENCH_TOOLS         e.g. lib,rclone (default lib,rclone,aws,sdk; missing tools are skipped with the reason)
 *   BENCH_CONCURRENCY   transfers in flight for lib, rclone, aws (default 16)
 *   BENCH_SDK_IN_FLIGHT requests in flight for the plain-SDK ceiling (default 64)
 *   BENCH_TIMEOUT_S     deadline per child process (default 300)
 *   BENCH_LIB           a built dist/index.js to measure instead of this worktree's (skips the build)
 *   BENCH_SKIP_BUILD=1  do not run `npm run build` first
 *   BENCH_RCLONE_CHECKSUM=0  run rclone without --checksum (size + modtime)
 *   BENCH_AWS_EXACT_TIMESTAMPS=1  run aws s3 sync with --exact-timestamps (pulls)
 *   BENCH_QUIET_WAIT_S  before each measured process, wait up to this long for other jobs to leave the CPUs
 *                       quiet (< 0.25 core busy; default 5, 0 = don't wait); measurements that start busy are counted
 *   BENCH_DIRECT=1      talk to s3rver directly (no proxy, no request counts): to check the proxy's overhead
 *   BENCH_RENDER_ONLY=1 run nothing: write the markdown again from the raw samples (BENCH_RAW, default
 *                       bench/.work/results.json: a full run's; partial runs write results-partial.json)
 *   BENCH_RESULTS       where to write the markdown (default bench/RESULTS.md for a full run — all workloads,
 *                       all tools, ≥ 3 runs, proxy on — else bench/.work/RESULTS-partial.md)
 *
 * Raw samples: bench/.work/results.json (a full run) or results-partial.json. The 1 GiB / 4 GiB large-file figures
 * against the plain SDK and the MD5 rate are `npm run bench:large`.
 */
import { execFile, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { cpus, loadavg, release, totalmem } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { CreateBucketCommand, DeleteObjectsCommand, ListObjectsV2Command, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { startLocalS3 } from '../scripts/local-s3-launcher.mjs';
import { cpuMsOf, findServerPid } from './proc.js';
import { startCountingProxy, type CountingProxy, type ProxyCounts } from './count-proxy.js';
import { localS3Client } from './local-client.mjs';
import { makeTools, type Op, type Tool, type ToolId } from './tools.js';
import {
  compareTrees,
  copyWorkload,
  digestTree,
  mutateTree,
  prepareWorkload,
  STATE_DIR,
  type FileDigest,
  type Workload,
  type WorkloadName,
} from './workloads.js';

const execFileP = promisify(execFile);

// ---------------------------------------------------------------- settings

const HERE = import.meta.dirname;
const ROOT = join(HERE, '..');
const WORK = join(HERE, '.work');
/**
 * Where finished runs' files go until the last measurement is done: on this
 * machine's ext4, creating files right after a mass delete costs 0.3-1 ms
 * more per file, so no run deletes anything before a later run measures.
 */
const TRASH = join(WORK, 'trash');
const ALL_WORKLOADS: WorkloadName[] = ['W1', 'W2', 'W3', 'W4'];
/** What the scale workload (W4) leaves out, and why: said in the report. */
const SCALE_TOOLS: ToolId[] = ['lib', 'libsdk', 'rclone'];
const SCALE_NOTE =
  'W4 (100,000 files) runs the library and rclone only (aws-cli and the plain-SDK ceiling would take tens of minutes per scenario on s3rver here), ' +
  'and skips the no-state push and the warm pull (each run of each tool already takes several minutes; the cold-start no-op push and the no-op pull measure the same machinery at this size).';
const ALL_TOOLS: ToolId[] = ['lib', 'libsdk', 'rclone', 'aws', 'sdk'];

function listEnv<T extends string>(name: string, all: readonly T[]): T[] {
  const raw = process.env[name];
  if (raw === undefined || raw.trim() === '') return [...all];
  const picked = raw.split(',').map((s) => s.trim()).filter(Boolean);
  const bad = picked.filter((p) => !all.some((a) => a.toLowerCase() === p.toLowerCase()));
  if (bad.length > 0) throw new Error(`${name}: unknown ${bad.join(', ')} (choose from ${all.join(',')})`);
  return all.filter((a) => picked.some((p) => p.toLowerCase() === a.toLowerCase()));
}

function intEnv(name: string, fallback: number, min = 1): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min) throw new Error(`${name} must be an integer ≥ ${min} (got ${raw})`);
  return n;
}

const RUNS = intEnv('BENCH_RUNS', 3);
const WORKLOADS = listEnv('BENCH_WORKLOADS', ALL_WORKLOADS);
const TOOL_IDS = listEnv('BENCH_TOOLS', ALL_TOOLS);
const CONCURRENCY = intEnv('BENCH_CONCURRENCY', 16);
const SDK_IN_FLIGHT = intEnv('BENCH_SDK_IN_FLIGHT', 64);
const TIMEOUT_MS = intEnv('BENCH_TIMEOUT_S', 300) * 1000;
const DIRECT = process.env.BENCH_DIRECT === '1';
const LIB_ENTRY = process.env.BENCH_LIB ?? join(ROOT, 'dist', 'index.js');
const BUILD = process.env.BENCH_LIB === undefined && process.env.BENCH_SKIP_BUILD !== '1';
const RCLONE_CHECKSUM = process.env.BENCH_RCLONE_CHECKSUM !== '0';
const AWS_EXACT_TIMESTAMPS = process.env.BENCH_AWS_EXACT_TIMESTAMPS === '1';
const FULL_RUN =
  WORKLOADS.length === ALL_WORKLOADS.length && TOOL_IDS.length === ALL_TOOLS.length && RUNS >= 3 && !DIRECT && RCLONE_CHECKSUM && !AWS_EXACT_TIMESTAMPS;
const RESULTS = process.env.BENCH_RESULTS ?? (FULL_RUN ? join(HERE, 'RESULTS.md') : join(WORK, 'RESULTS-partial.md'));
/** Wait this long before changing files after a sync: S3 LastModified has 1 s resolution, and people do not edit within the same second. */
const SETTLE_MS = 1100;
/** Raw samples: a partial run must not overwrite the full run's (BENCH_RENDER_ONLY reads BENCH_RAW, default the full run's). */
const RAW = process.env.BENCH_RAW ?? join(WORK, FULL_RUN || process.env.BENCH_RENDER_ONLY === '1' ? 'results.json' : 'results-partial.json');
const TIME_BIN = '/usr/bin/time';
/** Before each measured process, wait up to this long for the rest of the machine to go quiet (other jobs share the cores). */
const QUIET_WAIT_MS = intEnv('BENCH_QUIET_WAIT_S', 5, 0) * 1000;
/** "Quiet": the machine's busy time over 250 ms is below this many cores (the harness and s3rver are idle then). */
const QUIET_CORES = 0.25;

// ---------------------------------------------------------------- scenarios

type ScenarioId = 'coldPush' | 'noopPush' | 'coldStartNoopPush' | 'smallPush' | 'coldPull' | 'noopPull' | 'warmPull';

interface Scenario {
  id: ScenarioId;
  label: string;
  op: Op;
  /** Not for single-file workloads (W3). */
  multiFileOnly?: boolean;
  /** The plain-SDK ceiling runs this one too. */
  ceiling?: boolean;
  /** Not for the scale workload (W4): see SCALE_NOTE. */
  notAtScale?: boolean;
}

const SCENARIOS: Scenario[] = [
  { id: 'coldPush', label: 'cold push', op: 'push', ceiling: true },
  { id: 'noopPush', label: 'cold-start no-op push (new process, state kept)', op: 'push' },
  { id: 'coldStartNoopPush', label: 'no-op push, no saved state', op: 'push', notAtScale: true },
  { id: 'smallPush', label: 'small-change push (5 mod, 2 add, 1 del)', op: 'push', multiFileOnly: true },
  { id: 'coldPull', label: 'cold pull (empty dir)', op: 'pull', ceiling: true },
  { id: 'noopPull', label: 'no-op pull', op: 'pull' },
  { id: 'warmPull', label: 'warm pull (5 changed, 2 added, 1 deleted remotely)', op: 'pull', multiFileOnly: true, notAtScale: true },
];

// ---------------------------------------------------------------- measuring one process

type Status = 'OK' | 'FAIL' | 'ERROR' | 'TIMEOUT';

interface Sample {
  workload: WorkloadName;
  tool: ToolId;
  scenario: ScenarioId;
  run: number;
  status: Status;
  /** Why it is not OK (first lines). */
  detail?: string;
  wallMs: number;
  cpuS?: number;
  rssKiB?: number;
  requests: number;
  byClass: Record<string, number>;
  serverCpuMs?: number;
  /** CPU of this process (the proxy, mostly) while the child ran. */
  proxyCpuMs: number;
  /** CPU used by everything else on the machine while the child ran (noise from other jobs). */
  otherCpuMs?: number;
  /** The machine was still busy with other jobs when this measurement started (after waiting BENCH_QUIET_WAIT_S). */
  startedBusy?: boolean;
  /** The library's / SDK child's own JSON report. */
  report?: Record<string, unknown>;
  /** The state this scenario started from was repaired after an earlier failure of this run. */
  afterRepair?: boolean;
  /** Something to mention that is not a failure (e.g. the child lingered). */
  note?: string;
}

interface ChildOutcome {
  code: number | null;
  signal: NodeJS.Signals | null;
  timedOut: boolean;
  wallMs: number;
  cpuS?: number;
  rssKiB?: number;
  stdout: string;
  stderr: string;
}

let haveTime = true;
/** The deadline of the child processes of the workload being run (the scale workload gets at least 15 minutes). */
let childTimeoutMs = TIMEOUT_MS;

/** Run a command in its own process group under /usr/bin/time; kill the group at the deadline. */
async function runChild(file: string, args: string[], env: NodeJS.ProcessEnv): Promise<ChildOutcome> {
  const timeFile = join(WORK, `time-${process.pid}.txt`);
  await rm(timeFile, { force: true });
  const [cmd, argv] = haveTime ? [TIME_BIN, ['-f', '%U %S %M', '-o', timeFile, file, ...args]] : [file, args];
  return new Promise((resolve) => {
    const t0 = performance.now();
    const child = spawn(cmd, argv, { env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (c: string) => (stdout = (stdout + c).slice(-1_000_000)));
    child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr = (stderr + c).slice(-64_000)));
    let timedOut = false;
    const kill = (): void => {
      try {
        if (child.pid !== undefined) process.kill(-child.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    };
    const timer = setTimeout(() => {
      timedOut = true;
      kill();
    }, childTimeoutMs);
    child.once('error', (err) => {
      clearTimeout(timer);
      resolve({ code: null, signal: null, timedOut, wallMs: performance.now() - t0, stdout, stderr: `${stderr}\nspawn failed: ${err.message}` });
    });
    child.once('close', (code, signal) => {
      const wallMs = performance.now() - t0;
      clearTimeout(timer);
      void (async () => {
        let cpuS: number | undefined;
        let rssKiB: number | undefined;
        if (haveTime) {
          const line = (await readFile(timeFile, 'utf8').catch(() => '')).trim().split('\n').pop() ?? '';
          const m = /^([\d.]+) ([\d.]+) (\d+)$/.exec(line);
          if (m) {
            cpuS = Number(m[1]) + Number(m[2]);
            rssKiB = Number(m[3]);
          }
        }
        resolve({ code, signal, timedOut, wallMs, ...(cpuS !== undefined ? { cpuS } : {}), ...(rssKiB !== undefined ? { rssKiB } : {}), stdout, stderr });
      })();
    });
  });
}

/** Busy CPU time of the whole machine so far (all cores, /proc/stat), ms. */
function machineBusyMs(): number | undefined {
  try {
    const cpu = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
    // user nice system idle iowait irq softirq steal (guest time is already in user)
    const busy = cpu[0]! + cpu[1]! + cpu[2]! + cpu[5]! + cpu[6]! + cpu[7]!;
    return busy * 10; // USER_HZ = 100
  } catch {
    return undefined;
  }
}

/** Wait (up to QUIET_WAIT_MS) until the machine is quiet; false if it never was. */
async function waitForQuiet(): Promise<boolean> {
  if (QUIET_WAIT_MS === 0) return true;
  const t0 = performance.now();
  for (;;) {
    const a = machineBusyMs();
    await sleep(250);
    const b = machineBusyMs();
    if (a === undefined || b === undefined) return true;
    if ((b - a) / 250 < QUIET_CORES) return true;
    if (performance.now() - t0 > QUIET_WAIT_MS) return false;
  }
}

// ---------------------------------------------------------------- S3 side helpers (direct to s3rver, never counted)

interface Env {
  server: { endpoint: string; directory: string };
  serverPid: number | undefined;
  proxy: CountingProxy | undefined;
  /** What the tools talk to. */
  endpoint: string;
  direct: S3Client;
}

async function listBucket(s3: S3Client, bucket: string, prefix: string): Promise<Map<string, { size: number; etag: string }>> {
  const out = new Map<string, { size: number; etag: string }>();
  let token: string | undefined;
  do {
    const page = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: `${prefix}/`, ContinuationToken: token }));
    for (const o of page.Contents ?? []) {
      const path = o.Key!.slice(prefix.length + 1);
      if (path.startsWith(`${STATE_DIR}/`)) continue; // the library's own workspace-identity object, not workspace content
      out.set(path, { size: o.Size ?? 0, etag: (o.ETag ?? '').replace(/"/g, '') });
    }
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token);
  return out;
}

/** The bucket prefix holds exactly the expected tree (key, size, ETag = MD5). */
async function verifyBucket(env: Env, bucket: string, prefix: string, expected: Map<string, FileDigest>): Promise<string[]> {
  const listed = await listBucket(env.direct, bucket, prefix);
  const actual = new Map<string, FileDigest>();
  for (const [path, o] of listed) {
    const want = expected.get(path);
    // A multipart ETag (md5-N) is no MD5: compare sizes only (s3rver gives plain MD5s, so this does not happen there).
    const md5 = /^[0-9a-f]{32}$/.test(o.etag) ? o.etag : o.size === want?.size ? want.md5 : o.etag;
    actual.set(path, { size: o.size, md5 });
  }
  return compareTrees(expected, actual);
}

/** Make the bucket prefix hold exactly `dir`'s tree (after a tool got it wrong). */
async function repairBucket(env: Env, bucket: string, prefix: string, dir: string, expected: Map<string, FileDigest>): Promise<void> {
  const listed = await listBucket(env.direct, bucket, prefix);
  for (const [path, want] of expected) {
    const o = listed.get(path);
    if (o?.size === want.size && o.etag === want.md5) continue;
    await env.direct.send(new PutObjectCommand({ Bucket: bucket, Key: `${prefix}/${path}`, Body: await readFile(join(dir, path)) }));
  }
  const extra = [...listed.keys()].filter((k) => !expected.has(k));
  for (let i = 0; i < extra.length; i += 1000) {
    await env.direct.send(
      new DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects: extra.slice(i, i + 1000).map((k) => ({ Key: `${prefix}/${k}` })) } }),
    );
  }
}

// ---------------------------------------------------------------- one run of one tool on one workload

interface RunContext {
  env: Env;
  w: Workload;
  tool: Tool;
  run: number;
  /** The workload's own digest (W3: computed once; its copies are hard links). */
  sourceDigest: Map<string, FileDigest>;
}

const runSeq = { n: 0 };

async function measure(ctx: RunContext, scenario: Scenario, dir: string, bucket: string, prefix: string): Promise<Sample> {
  const { env, tool } = ctx;
  const cmd = tool.command(scenario.op, { endpoint: env.endpoint, bucket, prefix, dir });
  const startedBusy = !(await waitForQuiet());
  // The previous child has exited, so every request it sent has reached the proxy.
  env.proxy?.reset();
  const server0 = cpuMsOf(env.serverPid);
  const cpu0 = process.cpuUsage();
  const busy0 = machineBusyMs();
  const out = await runChild(cmd.file, cmd.args, cmd.env);
  const busy1 = machineBusyMs();
  const cpu1 = process.cpuUsage(cpu0);
  const server1 = cpuMsOf(env.serverPid);
  const counts: ProxyCounts = env.proxy?.counts() ?? { total: 0, byClass: {}, parseErrors: 0 };
  const proxyCpuMs = (cpu1.user + cpu1.system) / 1000;
  const serverCpuMs = server0 !== undefined && server1 !== undefined ? server1 - server0 : undefined;
  // CPU the rest of the machine used meanwhile (other people's jobs): all busy time minus child, s3rver and this process.
  const otherCpuMs =
    busy0 !== undefined && busy1 !== undefined && out.cpuS !== undefined && serverCpuMs !== undefined
      ? Math.max(0, busy1 - busy0 - out.cpuS * 1000 - serverCpuMs - proxyCpuMs)
      : undefined;
  let report: Record<string, unknown> | undefined;
  const lastLine = out.stdout.trim().split('\n').filter((l) => l.startsWith('{')).pop();
  if (lastLine !== undefined && (tool.id === 'lib' || tool.id === 'libsdk' || tool.id === 'sdk')) {
    try {
      report = JSON.parse(lastLine) as Record<string, unknown>;
    } catch {
      // reported below as an error if the exit code says so
    }
  }
  const sample: Sample = {
    workload: ctx.w.name,
    tool: tool.id,
    scenario: scenario.id,
    run: ctx.run,
    status: 'OK',
    wallMs: out.wallMs,
    ...(out.cpuS !== undefined ? { cpuS: out.cpuS } : {}),
    ...(out.rssKiB !== undefined ? { rssKiB: out.rssKiB } : {}),
    requests: counts.total,
    byClass: counts.byClass,
    ...(serverCpuMs !== undefined ? { serverCpuMs } : {}),
    proxyCpuMs,
    ...(otherCpuMs !== undefined ? { otherCpuMs } : {}),
    ...(startedBusy ? { startedBusy } : {}),
    ...(report !== undefined ? { report } : {}),
  };
  const tail = (s: string): string => s.trim().split('\n').slice(-4).join(' | ').slice(0, 400);
  if (out.timedOut) {
    sample.status = 'TIMEOUT';
    sample.detail = `killed after ${childTimeoutMs / 1000} s; stderr: ${tail(out.stderr) || '(none)'}`;
  } else if (out.code !== 0) {
    sample.status = 'ERROR';
    const why = report?.error ?? (Array.isArray(report?.errors) ? (report.errors as string[]).join('; ') : undefined);
    sample.detail = `exit ${out.code ?? out.signal}: ${typeof why === 'string' && why ? why.split('\n')[0] : tail(out.stderr) || '(no output)'}`;
  } else if (out.stderr.includes('LINGER')) {
    sample.note = 'the process stayed alive > 5 s after the sync finished (lib-child forced the exit)';
  }
  if (counts.parseErrors > 0) sample.note = `${sample.note ? `${sample.note}; ` : ''}the proxy lost track of ${counts.parseErrors} connection(s): request count too low`;
  return sample;
}

async function runToolOnce(ctx: RunContext, record: (s: Sample) => void): Promise<void> {
  const { env, w, tool, run } = ctx;
  const id = `${w.name}-${tool.id}-r${run}-${++runSeq.n}`.toLowerCase();
  const bucket = `bench-${id}`;
  const prefix = 'team/workspace';
  const base = join(WORK, 'runs', id);
  const ws = join(base, 'ws');
  const dest = join(base, 'pull');
  await rm(base, { recursive: true, force: true });
  await mkdir(base, { recursive: true });
  await copyWorkload(w, ws);
  await env.direct.send(new CreateBucketCommand({ Bucket: bucket }));
  let expected = w.singleFile ? ctx.sourceDigest : await digestTree(ws);
  let repaired = false;
  const progress: string[] = [];

  const scenarios = SCENARIOS.filter(
    (s) => (tool.id === 'sdk' ? s.ceiling : true) && !(s.multiFileOnly && w.singleFile) && !(s.notAtScale && w.scale === true),
  );
  try {
    for (const scenario of scenarios) {
      // Set the stage.
      if (scenario.id === 'coldStartNoopPush') await rm(join(ws, STATE_DIR), { recursive: true, force: true });
      if (scenario.id === 'smallPush') {
        await sleep(SETTLE_MS);
        await mutateTree(ws, `l${run}`);
        expected = await digestTree(ws);
      }
      if (scenario.id === 'coldPull') {
        await rm(dest, { recursive: true, force: true });
        await mkdir(dest, { recursive: true });
      }
      if (scenario.id === 'warmPull') {
        // "Another client" changes the bucket: the harness, straight to s3rver (not counted).
        await sleep(SETTLE_MS);
        const change = await mutateTree(ws, `r${run}`);
        for (const path of [...change.modified, ...change.added]) {
          await env.direct.send(new PutObjectCommand({ Bucket: bucket, Key: `${prefix}/${path}`, Body: await readFile(join(ws, path)) }));
        }
        await env.direct.send(new DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects: change.deleted.map((p) => ({ Key: `${prefix}/${p}` })) } }));
        expected = await digestTree(ws);
        await sleep(SETTLE_MS);
      }

      const dir = scenario.op === 'push' ? ws : dest;
      const sample = await measure(ctx, scenario, dir, bucket, prefix);
      if (repaired) sample.afterRepair = true;

      // Verify: a pull's tree byte for byte, a push's bucket by key, size and MD5.
      const problems = scenario.op === 'pull' ? compareTrees(expected, await digestTree(dest)) : await verifyBucket(env, bucket, prefix, expected);
      if (problems.length > 0 && sample.status === 'OK') {
        sample.status = 'FAIL';
        sample.detail = `wrong result: ${problems.join('; ')}`;
      }
      record(sample);
      progress.push(`${scenario.label.split(' (')[0]} ${sample.status === 'OK' ? `${(sample.wallMs / 1000).toFixed(2)}s` : sample.status}`);

      if (sample.status !== 'OK') {
        // Put the intended state back so the next scenarios measure what they claim to.
        repaired = true;
        if (scenario.op === 'push') await repairBucket(env, bucket, prefix, ws, expected);
        else {
          await rm(dest, { recursive: true, force: true });
          await copyWorkload({ ...w, dir: ws }, dest);
          await rm(join(dest, STATE_DIR), { recursive: true, force: true });
        }
      }
    }
  } finally {
    console.log(`  ${w.name} run ${run + 1}/${RUNS} ${tool.label.padEnd(19)} ${progress.join(', ')}`);
    await setAside(base, id);
    // The bucket's data on s3rver's disk too (each run has its own bucket; deleting 10,000 objects through the API would take longer than the run).
    await setAside(join(env.server.directory, bucket), `${id}-bucket`);
  }
}

/** Move a finished run's directory into {@link TRASH} (removed after the last measurement); removed now only if it cannot be moved. */
async function setAside(dir: string, name: string): Promise<void> {
  await mkdir(TRASH, { recursive: true });
  try {
    await rename(dir, join(TRASH, name));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
    await rm(dir, { recursive: true, force: true }); // another filesystem: no mass delete to avoid there
  }
}

/** The known cause of a wrong result, when the pattern matches one. */
function explain(s: Sample): string | undefined {
  if (s.status !== 'FAIL' || s.detail === undefined) return undefined;
  const m = /(\d+) missing, (\d+) different, (\d+) unexpected/.exec(s.detail);
  if (!m) return undefined;
  const [missing, different, unexpected] = [Number(m[1]), Number(m[2]), Number(m[3])];
  const op = SCENARIOS.find((x) => x.id === s.scenario)?.op;
  if (s.tool === 'lib' && op === 'push' && missing === 0 && different === 0 && unexpected > 0 && s.report?.deleted === 0 && s.report.stateDir === false) {
    return 'the library deletes only objects it has synced before; a new process without saved state has no such record, so a local deletion is not pushed (saved state, `persistState`, is meant to fix this)';
  }
  if (s.tool === 'aws' && op === 'pull' && missing === 0 && unexpected === 0 && different > 0 && !AWS_EXACT_TIMESTAMPS) {
    return 'aws s3 sync compares size and time; from S3 to local it skips a same-size object unless the local file is newer (documented; `--exact-timestamps` changes that, BENCH_AWS_EXACT_TIMESTAMPS=1)';
  }
  return undefined;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

// ---------------------------------------------------------------- statistics and tables

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length === 0 ? NaN : s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

interface Cell {
  samples: Sample[];
  ok: boolean;
  wallMs: number;
  minMs: number;
  maxMs: number;
  cpuS: number | undefined;
  rssMB: number | undefined;
  requests: number;
  mix: string;
  serverCpuS: number | undefined;
  otherCpuS: number | undefined;
}

function summarise(samples: Sample[]): Cell {
  const ok = samples.length > 0 && samples.every((s) => s.status === 'OK');
  const walls = samples.map((s) => s.wallMs);
  const defined = (xs: Array<number | undefined>): number[] => xs.filter((x): x is number => x !== undefined);
  const cpu = defined(samples.map((s) => s.cpuS));
  const rss = defined(samples.map((s) => s.rssKiB));
  const server = defined(samples.map((s) => s.serverCpuMs));
  const other = defined(samples.map((s) => s.otherCpuMs));
  const requests = median(samples.map((s) => s.requests));
  // The request mix of the run whose total is closest to the median.
  const typical = [...samples].sort((a, b) => Math.abs(a.requests - requests) - Math.abs(b.requests - requests))[0];
  const mix = typical
    ? Object.entries(typical.byClass)
        .sort((a, b) => b[1] - a[1])
        .map(([k, v]) => `${k} ${v}`)
        .join(', ')
    : '';
  return {
    samples,
    ok,
    wallMs: median(walls),
    minMs: Math.min(...walls),
    maxMs: Math.max(...walls),
    cpuS: cpu.length ? median(cpu) : undefined,
    rssMB: rss.length ? (median(rss) * 1024) / 1e6 : undefined,
    requests,
    mix,
    serverCpuS: server.length ? median(server) / 1000 : undefined,
    otherCpuS: other.length ? median(other) / 1000 : undefined,
  };
}

const s2 = (ms: number): string => (ms / 1000).toFixed(2);

function statusText(c: Cell): string {
  if (c.ok) return 'OK';
  const counts = new Map<Status, number>();
  for (const s of c.samples) counts.set(s.status, (counts.get(s.status) ?? 0) + 1);
  return [...counts].filter(([st]) => st !== 'OK').map(([st, n]) => `${st} ${n}/${c.samples.length}`).join(', ');
}

/** What a workload's run leaves besides its samples (saved in results.json). */
interface WorkloadMeta {
  w: Workload;
  load?: { before: number[]; after: number[] };
  wallS?: number;
  /** Median wall time of a bare directory walk (a new node process: readdir + lstat of every file). */
  walkS?: number;
}

interface WorkloadResult extends WorkloadMeta {
  cells: Map<ScenarioId, Map<ToolId, Cell>>;
  notes: string[];
  proxyCpuS: number;
}

/** Everything a report is made from: written to bench/.work/results.json, re-rendered by BENCH_RENDER_ONLY=1. */
interface SavedRun {
  date: string;
  totalS: number;
  runs: number;
  concurrency: number;
  quietWaitMs?: number;
  /** The library line of the set-up (build and commit, taken when the run started). */
  library?: string;
  versions?: Array<[ToolId, string]>;
  skipped?: string[];
  workloads?: WorkloadMeta[];
  samples: Sample[];
}

/** Tables' cells and the notes (grouped over runs) for one workload. */
function workloadResult(meta: WorkloadMeta, samples: Sample[], tools: Tool[]): WorkloadResult {
  const cells = new Map<ScenarioId, Map<ToolId, Cell>>();
  for (const sc of SCENARIOS) {
    for (const t of tools) {
      const mine = samples.filter((s) => s.scenario === sc.id && s.tool === t.id);
      if (mine.length === 0) continue;
      if (!cells.has(sc.id)) cells.set(sc.id, new Map());
      cells.get(sc.id)!.set(t.id, summarise(mine));
    }
  }
  // One note per (tool, scenario, message), listing the runs it happened in.
  const grouped = new Map<string, { head: string; text: string; runs: number[]; times: string[] }>();
  const add = (s: Sample, text: string, time?: string): void => {
    const label = tools.find((t) => t.id === s.tool)?.label ?? s.tool;
    const sc = SCENARIOS.find((x) => x.id === s.scenario)?.label ?? s.scenario;
    const key = `${label}|${sc}|${text}`;
    const g = grouped.get(key) ?? { head: `${label}, ${sc}`, text, runs: [], times: [] };
    g.runs.push(s.run + 1);
    if (time) g.times.push(time);
    grouped.set(key, g);
  };
  for (const s of samples) {
    if (s.status !== 'OK') {
      const hint = explain(s);
      add(s, `**${s.status}** — ${s.detail ?? ''}${hint ? `. *Why:* ${hint}` : ''}`, Number.isFinite(s.wallMs) ? s2(s.wallMs) : undefined);
    }
    if (s.note) add(s, s.note);
    if (s.afterRepair) add(s, 'started from a state the harness repaired after an earlier failure in the same run');
  }
  const notes = [...grouped.values()].map(
    (g) => `${g.head}, run${g.runs.length > 1 ? 's' : ''} ${g.runs.join(', ')}: ${g.text}${g.times.length ? ` (took ${g.times.join(', ')} s)` : ''}`,
  );
  const busy = samples.filter((s) => s.startedBusy).length;
  if (busy > 0) {
    notes.push(`${busy} of ${samples.length} measurements started while other jobs kept more than ${QUIET_CORES} core busy (after waiting up to ${QUIET_WAIT_MS / 1000} s): see the Other CPU column`);
  }
  return { ...meta, cells, notes, proxyCpuS: samples.reduce((a, s) => a + s.proxyCpuMs, 0) / 1000 };
}

function workloadTables(r: WorkloadResult, tools: Tool[]): { main: string[][]; ratios: string[][]; lib: string[][] } {
  const main: string[][] = [['Scenario', 'Tool', 'Wall s, median (min–max)', 'Client CPU s', 'Peak RSS MB', 'S3 requests', 'Request mix', 's3rver CPU s', 'Other CPU s', 'Result']];
  const ratios: string[][] = [['Scenario', 'lib', 'lib (sdk)', 'Best peer', 'lib / best peer', 'lib (sdk) / best peer', 'Plain SDK', 'lib / plain SDK']];
  const lib: string[][] = [['Scenario', 'Process wall s', 'In-process sync s', 'Start-up (imports) s', 'Uploaded', 'Downloaded', 'Deleted', 'Unchanged', 'Kept local', 'Hashed', 'State dir after']];
  for (const sc of SCENARIOS) {
    const row = r.cells.get(sc.id);
    if (!row) continue;
    for (const t of tools) {
      const c = row.get(t.id);
      if (!c) continue;
      main.push([
        sc.label,
        t.label,
        c.ok ? `${s2(c.wallMs)} (${s2(c.minMs)}–${s2(c.maxMs)})` : `**${statusText(c)}**`,
        c.cpuS?.toFixed(2) ?? 'n/a',
        c.rssMB?.toFixed(0) ?? 'n/a',
        DIRECT ? 'n/a' : String(c.requests),
        DIRECT ? '' : c.mix,
        c.serverCpuS?.toFixed(2) ?? 'n/a',
        c.otherCpuS?.toFixed(2) ?? 'n/a',
        statusText(c),
      ]);
    }
    const libCell = row.get('lib');
    const peers = tools.filter((t) => t.peer).map((t) => ({ t, c: row.get(t.id) })).filter((p): p is { t: Tool; c: Cell } => p.c !== undefined);
    const okPeers = peers.filter((p) => p.c.ok).sort((a, b) => a.c.wallMs - b.c.wallMs);
    const best = okPeers[0];
    const sdk = row.get('sdk');
    const viaSdk = row.get('libsdk');
    if (libCell) {
      const libOk = libCell.ok;
      ratios.push([
        sc.label,
        libOk ? `${s2(libCell.wallMs)} s` : statusText(libCell),
        viaSdk ? (viaSdk.ok ? `${s2(viaSdk.wallMs)} s` : statusText(viaSdk)) : '—',
        best ? `${best.t.label} ${s2(best.c.wallMs)} s` : peers.length ? 'none correct' : 'n/a',
        libOk && best ? `${(libCell.wallMs / best.c.wallMs).toFixed(2)}×` : '—',
        viaSdk?.ok && best ? `${(viaSdk.wallMs / best.c.wallMs).toFixed(2)}×` : '—',
        sdk ? (sdk.ok ? `${s2(sdk.wallMs)} s` : statusText(sdk)) : sc.ceiling ? 'not run' : '—',
        libOk && sdk?.ok ? `${(libCell.wallMs / sdk.wallMs).toFixed(2)}×` : '—',
      ]);
      const reps = libCell.samples.map((s) => s.report).filter((x): x is Record<string, unknown> => x !== undefined);
      const med = (k: string): string => {
        const xs = reps.map((x) => x[k]).filter((v): v is number => typeof v === 'number');
        return xs.length ? String(median(xs)) : 'n/a';
      };
      const medS = (k: string): string => {
        const xs = reps.map((x) => x[k]).filter((v): v is number => typeof v === 'number');
        return xs.length ? s2(median(xs)) : 'n/a';
      };
      const state = reps.map((x) => x.stateDir);
      lib.push([
        sc.label,
        s2(libCell.wallMs),
        medS('opMs'),
        medS('loadMs'),
        med('uploaded'),
        med('downloaded'),
        med('deleted'),
        med('unchanged'),
        med('keptLocal'),
        med('hashed'),
        state.every((x) => x === true) ? 'yes' : state.every((x) => x === false) ? 'no' : 'mixed',
      ]);
    }
  }
  return { main, ratios, lib };
}

/** Median wall seconds of 3 bare directory walks, each a new node process (bench/walk-child.mjs). */
async function bareWalk(dir: string): Promise<number> {
  const times: number[] = [];
  for (let i = 0; i < 3; i++) {
    const t0 = performance.now();
    await execFileP(process.execPath, [join(HERE, 'walk-child.mjs'), dir]);
    times.push((performance.now() - t0) / 1000);
  }
  return median(times);
}

function markdown(rows: string[][]): string {
  const [head, ...body] = rows;
  if (!head) return '';
  return [`| ${head.join(' | ')} |`, `| ${head.map(() => '---').join(' | ')} |`, ...body.map((r) => `| ${r.join(' | ')} |`)].join('\n');
}

function plain(rows: string[][]): string {
  const clean = rows.map((r) => r.map((c) => c.replace(/\*\*/g, '')));
  const widths = clean[0]!.map((_, i) => Math.max(...clean.map((r) => (r[i] ?? '').length)));
  return clean.map((r) => r.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd()).join('\n');
}

// ---------------------------------------------------------------- main

/** The library measured: which build, from which commit. Taken when the run starts (before the build), not when the report is written. */
let libraryLine: string | undefined;

async function describeLibrary(): Promise<string> {
  const git = async (...args: string[]): Promise<string> => (await execFileP('git', args, { cwd: ROOT }).catch(() => ({ stdout: '?' }))).stdout.trim();
  const dirty = (await git('status', '--porcelain', '--', 'src')) !== '' ? ' (src/ has uncommitted changes)' : '';
  return `- Library: ${BUILD || process.env.BENCH_LIB === undefined ? 'this worktree, built with `npm run build`,' : `BENCH_LIB=${LIB_ENTRY},`} src/ as of commit ${await git('log', '-1', '--format=%h %s', '--', 'src')} (worktree HEAD ${await git('rev-parse', '--short', 'HEAD')} on branch ${await git('rev-parse', '--abbrev-ref', 'HEAD')})${dirty}, when the run started`;
}

async function machine(tools: Tool[], versions: Map<ToolId, string>, date: string): Promise<string[]> {
  let s3rver = '?';
  try {
    s3rver = (JSON.parse(await readFile(join(ROOT, 'node_modules', 's3rver', 'package.json'), 'utf8')) as { version: string }).version;
  } catch {
    // unknown
  }
  return [
    `- Date: ${date}`,
    `- Machine: ${cpus().length} × ${cpus()[0]?.model.trim() ?? 'cpu'}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB RAM, ${process.platform} ${release()}, node ${process.version}`,
    libraryLine ?? (await describeLibrary()),
    `- Server: s3rver ${s3rver} on 127.0.0.1 (scripts/local-s3-launcher.mjs, --openssl-legacy-provider), a fresh server per workload, sharing the CPUs with the client`,
    ...tools.map((t) => `- ${t.label}: ${versions.get(t.id) ?? '?'}`),
  ];
}

/** BENCH_RENDER_ONLY=1: write the markdown again from bench/.work/results.json (e.g. after changing the report's layout). */
async function renderOnly(): Promise<void> {
  const saved = JSON.parse(await readFile(RAW, 'utf8')) as SavedRun;
  if (saved.library !== undefined) libraryLine = saved.library;
  const allTools = await makeTools({ concurrency: saved.concurrency, sdkInFlight: SDK_IN_FLIGHT, workDir: WORK, libEntry: LIB_ENTRY, rcloneChecksum: RCLONE_CHECKSUM, awsExactTimestamps: AWS_EXACT_TIMESTAMPS });
  const ids = ALL_TOOLS.filter((id) => saved.samples.some((s) => s.tool === id));
  const tools = ids.map((id) => allTools[id]);
  const versions = new Map<ToolId, string>(saved.versions ?? []);
  for (const t of tools) if (!versions.has(t.id)) versions.set(t.id, await t.probe().catch((e: Error) => `? (${e.message})`));
  const names = ALL_WORKLOADS.filter((n) => saved.samples.some((s) => s.workload === n));
  const results: WorkloadResult[] = [];
  for (const name of names) {
    const meta = saved.workloads?.find((m) => m.w.name === name) ?? { w: await prepareWorkload(name, WORK) };
    results.push(workloadResult(meta, saved.samples.filter((s) => s.workload === name), tools));
  }
  await writeFile(RESULTS, await renderMarkdown(results, tools, versions, saved.skipped ?? [], saved.totalS ?? NaN, saved.date));
  console.log(`re-rendered ${RAW} (${saved.date}) into ${RESULTS}`);
}

async function main(): Promise<void> {
  const started = performance.now();
  await mkdir(WORK, { recursive: true });
  // (an interrupted bench's leftovers in TRASH are removed with this run's, after the last measurement)
  libraryLine = await describeLibrary();
  console.log(`s3-workspace-sync vs peers — runs=${RUNS}, workloads=${WORKLOADS.join(',')}, tools=${TOOL_IDS.join(',')}, concurrency=${CONCURRENCY}${DIRECT ? ', DIRECT (no proxy)' : ''}`);

  try {
    await execFileP(TIME_BIN, ['-f', '%U', 'true']);
  } catch {
    haveTime = false;
    console.log(`  ${TIME_BIN} is not usable (apt-get install time): CPU and peak RSS will show n/a`);
  }

  if (BUILD && TOOL_IDS.includes('lib')) {
    console.log('  building the library (npm run build)…');
    try {
      await execFileP('npm', ['run', 'build'], { cwd: ROOT, maxBuffer: 16 * 1024 * 1024 });
    } catch (error) {
      const e = error as { stdout?: string; stderr?: string; message: string };
      throw new Error(`npm run build failed: ${e.message}\n${e.stdout ?? ''}${e.stderr ?? ''}`);
    }
  }

  const allTools = await makeTools({
    concurrency: CONCURRENCY,
    sdkInFlight: SDK_IN_FLIGHT,
    workDir: WORK,
    libEntry: LIB_ENTRY,
    rcloneChecksum: RCLONE_CHECKSUM,
    awsExactTimestamps: AWS_EXACT_TIMESTAMPS,
  });
  const tools: Tool[] = [];
  const versions = new Map<ToolId, string>();
  const skipped: string[] = [];
  for (const id of TOOL_IDS) {
    try {
      versions.set(id, await allTools[id].probe());
      tools.push(allTools[id]);
    } catch (error) {
      const msg = `${allTools[id].label} skipped: ${(error as Error).message}`;
      skipped.push(msg);
      console.log(`  ${msg}`);
    }
  }
  if (tools.length === 0) throw new Error('no tool to run');
  for (const t of tools) console.log(`  ${t.label}: ${versions.get(t.id)}`);

  const results: WorkloadResult[] = [];
  const metas: WorkloadMeta[] = [];
  const allSamples: Sample[] = [];
  for (const name of WORKLOADS) {
    const w = await prepareWorkload(name, WORK);
    childTimeoutMs = w.scale === true ? Math.max(TIMEOUT_MS, 900_000) : TIMEOUT_MS;
    console.log(
      `\n${w.name}: ${w.description} — ${w.files.toLocaleString('en')} files, ${(w.bytes / 1e6).toFixed(1)} MB (${w.generated ? `generated in ${s2(w.ms)} s` : 'reused'})`,
    );
    const t0 = performance.now();
    const before = loadavg();
    const server = await startLocalS3();
    const proxy = DIRECT ? undefined : await startCountingProxy(server.endpoint);
    const direct = localS3Client(server.endpoint);
    const env: Env = { server, serverPid: findServerPid(), proxy, endpoint: proxy?.endpoint ?? server.endpoint, direct };
    const sourceDigest = w.singleFile ? await digestTree(w.dir) : new Map<string, FileDigest>();
    const samples: Sample[] = [];
    const walkS = await bareWalk(w.dir);
    try {
      const runTools = w.scale === true ? tools.filter((t) => SCALE_TOOLS.includes(t.id)) : tools;
      for (let run = 0; run < RUNS; run++) {
        for (const tool of runTools) {
          try {
            await runToolOnce({ env, w, tool, run, sourceDigest }, (s) => samples.push(s));
          } catch (error) {
            // A harness-side problem (set-up, verification I/O): say so and go on with the next tool.
            console.log(`  ${w.name} run ${run + 1} ${tool.label}: harness error: ${(error as Error).stack ?? error}`);
            samples.push({
              workload: w.name,
              tool: tool.id,
              scenario: 'coldPush',
              run,
              status: 'ERROR',
              detail: `harness: ${(error as Error).message}`,
              wallMs: NaN,
              requests: 0,
              byClass: {},
              proxyCpuMs: 0,
            });
          }
        }
      }
    } finally {
      direct.destroy();
      await proxy?.stop();
      await server.stop();
    }
    allSamples.push(...samples);
    const meta: WorkloadMeta = {
      w: { name: w.name, description: w.description, dir: w.dir, files: w.files, bytes: w.bytes, singleFile: w.singleFile, scale: w.scale === true },
      load: { before, after: loadavg() },
      wallS: (performance.now() - t0) / 1000,
      walkS,
    };
    metas.push(meta);
    const result = workloadResult(meta, samples, tools);
    results.push(result);

    const tables = workloadTables(result, tools);
    console.log(`\n${w.name} results (median of ${RUNS}):\n${plain(tables.main)}\n\n${plain(tables.ratios)}`);
    if (tools.some((t) => t.id === 'lib')) console.log(`\nlibrary's own report (medians):\n${plain(tables.lib)}`);
    for (const n of result.notes) console.log(`  note: ${n.replace(/\*\*/g, '')}`);
    console.log(`  bare directory walk (new node process, readdir + lstat of every file): ${s2(walkS * 1000)} s`);
    console.log(
      `  load average before/after: ${before.map((x) => x.toFixed(2)).join(' ')} / ${meta.load!.after.map((x) => x.toFixed(2)).join(' ')}; proxy CPU ${result.proxyCpuS.toFixed(1)} s over ${meta.wallS!.toFixed(0)} s`,
    );
  }

  const totalS = (performance.now() - started) / 1000;
  const saved: SavedRun = {
    date: new Date().toISOString(),
    totalS,
    runs: RUNS,
    concurrency: CONCURRENCY,
    quietWaitMs: QUIET_WAIT_MS,
    library: libraryLine,
    versions: [...versions],
    skipped,
    workloads: metas,
    samples: allSamples,
  };
  await writeFile(RAW, `${JSON.stringify(saved, null, 1)}\n`);
  const md = await renderMarkdown(results, tools, versions, skipped, totalS, saved.date);
  await mkdir(join(RESULTS, '..'), { recursive: true });
  await writeFile(RESULTS, md);
  console.log(`\nbench done in ${totalS.toFixed(0)} s; results in ${RESULTS}${FULL_RUN ? '' : ' (partial run: bench/RESULTS.md is only written by a full run)'}`);
  console.log('  removing the finished runs\' files…');
  await rm(TRASH, { recursive: true, force: true });
}

async function renderMarkdown(results: WorkloadResult[], tools: Tool[], versions: Map<ToolId, string>, skipped: string[], totalS: number, date: string): Promise<string> {
  const flags = tools.flatMap((t) =>
    t.id === 'sdk'
      ? [`- **${t.label}**, cold push: ${t.describe('push')}`, `- **${t.label}**, cold pull: ${t.describe('pull')}`]
      : [`- **${t.label}**, every push scenario: ${t.describe('push')}`, `- **${t.label}**, every pull scenario: ${t.describe('pull')}`],
  );
  const out: string[] = [
    '# Benchmark: s3-workspace-sync vs rclone and aws-cli',
    '',
    `Written by \`npm run bench\` (\`bench/index.ts\`) on ${FULL_RUN ? 'a full run' : 'a partial run'}. Do not edit by hand; the figures are overwritten by the next full run.`,
    '',
    '## How to run',
    '',
    '```sh',
    'sudo apt-get install rclone awscli   # optional: the peers (aws-cli v2 at /usr/bin/aws); missing tools are skipped',
    'npm run bench                          # builds the library, then all workloads, all tools, 3 runs',
    'BENCH_RUNS=1 BENCH_WORKLOADS=W1 BENCH_TOOLS=lib,rclone npm run bench   # a subset',
    '```',
    '',
    'Knobs: `BENCH_RUNS`, `BENCH_WORKLOADS` (W1,W2,W3,W4), `BENCH_TOOLS` (lib,rclone,aws,sdk), `BENCH_CONCURRENCY` (16), `BENCH_SDK_IN_FLIGHT` (64), ' +
      '`BENCH_TIMEOUT_S` (300 per process), `BENCH_LIB` (another build\'s dist/index.js), `BENCH_SKIP_BUILD=1`, `BENCH_RCLONE_CHECKSUM=0`, `BENCH_AWS_EXACT_TIMESTAMPS=1`, `BENCH_DIRECT=1` (no proxy: to check its overhead). ' +
      'Large files (1 and 4 GiB, memory targets, MD5 rate): `npm run bench:large` → bench/RESULTS-large.md.',
    '',
    '## Set-up',
    '',
    ...(await machine(tools, versions, date)),
    ...skipped.map((s) => `- ${s}`),
    `- Runs: ${RUNS} per scenario, interleaved (run 1 of every tool, then run 2, …); each run of each tool has a fresh bucket and a private copy of the workload; the tables show medians (min–max for wall time)`,
    `- Noise control: before each measured process the harness waits up to ${QUIET_WAIT_MS / 1000} s for the machine to be quiet (< ${QUIET_CORES} core busy); the **Other CPU** column shows what other jobs used during each measurement anyway`,
    `- Total bench time: ${totalS.toFixed(0)} s`,
    "- No mass delete before a measurement: a finished run's files (its workspace copy, pulled tree and s3rver bucket directory) are moved aside and removed only after the last measurement (on this machine's ext4, creating files right after a large delete costs 0.3–1 ms more per file)",
    '',
    'What is measured, per sync, as a whole process (start-up included):',
    '',
    '- **Wall**: spawn to exit, measured by the harness. **Client CPU** (user + sys) and **peak RSS**: `/usr/bin/time -f "%U %S %M"` around the process (descendants included: aws-cli is Python, rclone Go, the library and the SDK ceiling run on plain node).',
    '- **S3 requests**: counted at a small proxy every tool talks to (bench/count-proxy.ts: forwards TCP, one upstream connection per client connection so keep-alive is kept, bytes piped unchanged, ' +
      'request heads parsed on the way through), so counts include retries and are comparable across tools. LIST = GET on the bucket; PART = UploadPart; DELETES = DeleteObjects; POST = multipart create/complete. ' +
      'The proxy runs in the harness process and costs about 0.3 ms CPU per request plus ~1.7 s per GiB moved (measured here); `BENCH_DIRECT=1` runs without it.',
    '- **s3rver CPU**: the server\'s CPU time during the sync (it shares the machine\'s cores with the client: client CPU per object costs wall time here). ' +
      '**Other CPU**: what the rest of the machine used meanwhile (/proc/stat busy time minus the client, s3rver and the harness with its proxy): other jobs, i.e. noise (plus kernel threads such as page-cache writeback, which the sync itself causes); near 0 on a quiet machine with small workloads.',
    '- **Result**: every pull\'s tree is compared byte for byte (MD5 of every file) with the expected tree; every push\'s bucket prefix by key, size and ETag (s3rver\'s ETag is the plain MD5, multipart included). The library\'s state directory `.s3-workspace-sync/` is not part of the comparison. A wrong result is **FAIL** (no time is shown for it); the harness then repairs the state so the run\'s later scenarios start where they should.',
    '',
    'Scenarios, in order, per run:',
    '',
    '1. **cold push**: the workload into an empty bucket prefix.',
    '2. **cold-start no-op push (state kept)**: a new process (as after a Lambda cold start on a warm `/tmp`), nothing changed. The library loads the state it saved in `<workspace>/.s3-workspace-sync/`; "Hashed" in its table counts files it re-read.',
    '3. **no-op push, no saved state**: a new process, nothing changed, and the library\'s saved state deleted first (a fresh container with a restored workspace). The peers keep no state: for them this is a repeat of 2.',
    `4. **small-change push**: ${SETTLE_MS / 1000} s later, 5 files modified (3 grow by a line, 2 keep their size with new bytes), 2 added, 1 deleted.`,
    '5. **cold pull**: into a new empty directory.',
    '6. **no-op pull**: the same directory, nothing changed.',
    '7. **warm pull**: another client (the harness, directly) changed 5 objects (3 grow, 2 same size), added 2, deleted 1.',
    '',
    'W3 (one file) has no small-change push or warm pull. The plain-SDK ceiling runs cold push and cold pull only. ' + SCALE_NOTE,
    '',
    'Command lines and options:',
    '',
    ...flags,
    '',
  ];
  for (const r of results) {
    const tables = workloadTables(r, tools);
    out.push(
      `## ${r.w.name}: ${r.w.description} (${r.w.files.toLocaleString('en')} files, ${(r.w.bytes / 1e6).toFixed(1)} MB)`,
      '',
      markdown(tables.main),
      '',
      'This library against the best correct peer (lower is better) and the plain-SDK ceiling, median wall time:',
      '',
      markdown(tables.ratios),
      '',
    );
    if (tools.some((t) => t.id === 'lib')) {
      out.push("The library's own report (medians; in-process = the `pull()`/`push()` call, start-up = importing the SDK and the library):", '', markdown(tables.lib), '');
    }
    if (r.walkS !== undefined) {
      out.push(`Bare directory walk (a new node process doing readdir + lstat of every file; the baseline of a no-op push): ${s2(r.walkS * 1000)} s, median of 3.`, '');
    }
    out.push(
      `${r.load ? `Load average before / after this workload: ${r.load.before.map((x) => x.toFixed(2)).join(', ')} / ${r.load.after.map((x) => x.toFixed(2)).join(', ')}; ` : ''}` +
        `proxy CPU ${r.proxyCpuS.toFixed(1)} s${r.wallS !== undefined ? ` over the workload's ${r.wallS.toFixed(0)} s` : ''}.`,
      '',
    );
    if (r.notes.length > 0) out.push('Notes:', '', ...r.notes.map((n) => `- ${n}`), '');
  }
  return `${out.join('\n')}\n`;
}

if (process.env.BENCH_RENDER_ONLY === '1') await renderOnly();
else await main();
