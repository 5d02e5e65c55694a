// Crash tests: a child process (test/helpers/crash-child.ts, run with
// `node --import tsx`) pulls or pushes a workspace of ~150 files (2-200 KB)
// plus two 1-3 MB files with concurrency 4, and this process SIGKILLs it at a
// random moment (seeded PRNG; delays from 0 to past the end of the operation,
// measured from the moment the child calls pull()/push()).
//
// After every kill:
//  - every local file under its real name holds exactly its old or its new
//    content (never truncated, never mixed); files that exist on both sides
//    still exist; leftover `*.s3ws-tmp` files are the only other entries;
//  - every object under the prefix is complete: its bytes are one of the
//    known versions and its `md5chksum` metadata is the MD5 of those bytes;
//  - nothing appeared or changed outside the workspace (the listing of the
//    workspace's parent directory is unchanged);
//  - a re-run of the same operation by a fresh instance in this process
//    succeeds, converges to exactly the expected state, and (pull) removes
//    every leftover temporary file.
//
// The child talks to the run's s3rver through test/helpers/atomic-put-proxy.ts:
// s3rver stores the partial body of a PUT whose client disappears (real S3
// discards it), which would otherwise be reported as a torn upload.
//
// Environment: CRASH_ITERATIONS (default 10 per direction), CRASH_SEED (fixed
// in npm test, `random` in npm run soak; the
// seed is printed on every run, and in every failure message).
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { lstat, mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';

import { GetObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { S3WorkspaceSync, silentLogger } from '../../src/index.js';
import { startAtomicPutProxy, type AtomicPutProxy } from '../helpers/atomic-put-proxy.js';
import { mulberry32 as prng } from '../helpers/fault-proxy.js';
import { createTestBucket, listAllKeys, makeTestClient, s3Endpoint } from '../helpers/s3.js';
import { readStateOnDisk } from '../helpers/state-doc.js';
import { listEntries, md5Base64, tempDir } from '../helpers/sync-fixture.js';

const REPO_ROOT = fileURLToPath(new URL('../..', import.meta.url));
const CHILD = fileURLToPath(new URL('../helpers/crash-child.ts', import.meta.url));
const ITERATIONS = Math.max(1, Number(process.env.CRASH_ITERATIONS ?? 10) || 10);
// npm test is deterministic (a fixed seed); `npm run soak` draws a new one (CRASH_SEED=random).
const SEED =
  process.env.CRASH_SEED === 'random'
    ? (Math.random() * 2 ** 32) >>> 0
    : process.env.CRASH_SEED !== undefined
      ? Number(process.env.CRASH_SEED) >>> 0
      : 2027316177;
const CONCURRENCY = 4;
/** A child that runs longer than this is killed and the test fails. */
const CHILD_DEADLINE_MS = 30_000;
/** Per iteration: spawn, operation, checks and the re-run take ~1-3 s; generous margin. */
const TEST_TIMEOUT_MS = 40_000 + ITERATIONS * 10_000;
const TEMP_SUFFIX = '.s3ws-tmp';

// ---------------------------------------------------------------- data

function randomBytesFrom(rand: () => number, size: number): Buffer {
  const buf = Buffer.alloc(size);
  let i = 0;
  for (; i + 4 <= size; i += 4) buf.writeUInt32LE((rand() * 4294967296) >>> 0, i);
  for (; i < size; i++) buf[i] = (rand() * 256) >>> 0;
  return buf;
}

const KB = 1024;
const MB = 1024 * KB;

/** One path's versions: `old` is the state the target side starts in, `new` the source's. Either may be absent. */
interface Versions {
  old?: Buffer;
  new?: Buffer;
}
type Scenario = Map<string, Versions>;

/**
 * ~150 files of 2-200 KB in nested directories, two 1-3 MB files, and a
 * directory whose files exist only in the old state. Kinds: identical in
 * both, changed (other size), changed (same size), only new, only old.
 */
function buildScenario(rand: () => number): Scenario {
  const files: Scenario = new Map();
  const size = (min: number, max: number): number => min + Math.floor(rand() * (max - min));
  for (let i = 0; i < 150; i++) {
    const p = i % 10 === 0 ? `top-${i}.bin` : `d${i % 7}/s${(i >> 3) % 3}/f-${i}.bin`;
    const n = size(2 * KB, 200 * KB);
    const r = rand();
    const a = randomBytesFrom(rand, n);
    if (r < 0.2) files.set(p, { old: a, new: a });
    else if (r < 0.5) files.set(p, { old: a, new: randomBytesFrom(rand, size(2 * KB, 200 * KB)) });
    else if (r < 0.66) files.set(p, { old: a, new: randomBytesFrom(rand, n) });
    else if (r < 0.83) files.set(p, { new: a });
    else files.set(p, { old: a });
  }
  const big = size(1 * MB, 3 * MB);
  files.set('big/same-size.bin', { old: randomBytesFrom(rand, big), new: randomBytesFrom(rand, big) });
  files.set('big/other-size.bin', { old: randomBytesFrom(rand, size(1 * MB, 3 * MB)), new: randomBytesFrom(rand, size(1 * MB, 3 * MB)) });
  for (let i = 0; i < 3; i++) files.set(`gone/x-${i}.bin`, { old: randomBytesFrom(rand, size(2 * KB, 50 * KB)) });
  return files;
}

function pick(scenario: Scenario, which: 'old' | 'new'): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  for (const [p, v] of scenario) {
    const b = v[which];
    if (b !== undefined) out.set(p, b);
  }
  return out;
}

async function writeFiles(root: string, files: Map<string, Buffer>): Promise<void> {
  const dirs = new Set([...files.keys()].map((p) => path.posix.dirname(p)).filter((d) => d !== '.'));
  for (const d of dirs) await mkdir(path.join(root, d), { recursive: true });
  await Promise.all([...files].map(([p, b]) => writeFile(path.join(root, p), b)));
}

function describeBuf(b: Buffer | undefined): string {
  return b === undefined ? 'absent' : `${b.length} bytes`;
}

// ---------------------------------------------------------------- checks

interface LocalState {
  problems: string[];
  tempFiles: string[];
  /** Files at their old content (that differs from the new one). */
  atOld: number;
  /** Files at their new content (that differs from the old one, or is new). */
  atNew: number;
  /** Files whose two versions are identical. */
  identical: number;
}

/**
 * Every entry of the workspace: directories, leftover temp files, and regular
 * files under a known name whose content is exactly one of its versions.
 * `mustExist`: paths that existed before and still exist on the source side
 * (a rename over them never makes them disappear).
 */
async function inspectLocal(root: string, scenario: Scenario, mustExist: (v: Versions) => boolean): Promise<LocalState> {
  const state: LocalState = { problems: [], tempFiles: [], atOld: 0, atNew: 0, identical: 0 };
  const seen = new Set<string>();
  /** Paths whose old content is in the recovery area (moved aside by a pull). */
  const recovered = new Set<string>();
  const walk = async (abs: string, rel: string): Promise<void> => {
    for (const e of await readdir(abs, { withFileTypes: true })) {
      const r = rel ? `${rel}/${e.name}` : e.name;
      const full = path.join(abs, e.name);
      if (r === STATE_DIR && e.isDirectory()) {
        state.problems.push(...(await inspectStateDir(full, scenario, recovered)));
        continue;
      }
      if (e.isDirectory()) {
        await walk(full, r);
        continue;
      }
      if (!e.isFile()) {
        state.problems.push(`${r}: not a regular file or directory`);
        continue;
      }
      if (e.name.endsWith(TEMP_SUFFIX)) {
        state.tempFiles.push(r);
        continue;
      }
      const v = scenario.get(r);
      if (v === undefined) {
        state.problems.push(`${r}: unexpected file`);
        continue;
      }
      seen.add(r);
      const bytes = await readFile(full);
      if (v.new !== undefined && bytes.equals(v.new)) {
        if (v.old === undefined || !v.old.equals(v.new)) state.atNew++;
        else state.identical++;
      } else if (v.old !== undefined && bytes.equals(v.old)) state.atOld++;
      else state.problems.push(`${r}: ${bytes.length} bytes, neither the old (${describeBuf(v.old)}) nor the new (${describeBuf(v.new)}) content`);
    }
  };
  await walk(root, '');
  // A file a pull moved aside (killed before the new one was linked in) is not lost: it is in the recovery area.
  for (const [p, v] of scenario) if (mustExist(v) && !seen.has(p) && !recovered.has(p)) state.problems.push(`${p}: missing`);
  return state;
}

const STATE_DIR = '.s3-workspace-sync';

/**
 * The library's state directory holds only state files (and at most the temp
 * file of a save the kill interrupted), and the recovery area; a state file is
 * always complete JSON, whenever the process died (it is written to a temp
 * file and renamed). Every file in the recovery area
 * (`recovered/<time>/<path>`) holds exactly the old content of its path: what
 * a pull moved aside instead of destroying (added to `recovered`).
 */
async function inspectStateDir(dir: string, scenario: Scenario, recovered: Set<string>): Promise<string[]> {
  const problems: string[] = [];
  for (const name of await readdir(dir)) {
    if (/^state-[0-9a-f]{16}\.json\.[0-9a-f]{12}\.tmp$/.test(name)) continue;
    if (name === 'recovered') {
      for (const stamp of await readdir(path.join(dir, name))) {
        const walk = async (abs: string, rel: string): Promise<void> => {
          for (const e of await readdir(abs, { withFileTypes: true })) {
            const r = rel ? `${rel}/${e.name}` : e.name;
            if (e.isDirectory()) await walk(path.join(abs, e.name), r);
            else if (!(scenario.get(r)?.old?.equals(await readFile(path.join(abs, e.name))) ?? false)) {
              problems.push(`${STATE_DIR}/recovered/${stamp}/${r}: not the old content of ${r}`);
            } else recovered.add(r);
          }
        };
        await walk(path.join(dir, name, stamp), '');
      }
      continue;
    }
    // a killed sync leaves its workspace lock (the next sync takes it over: same host, dead pid)
    if (name === 'lock' || /^lock\.stale-/.test(name)) continue;
    // the state file, its journal and the manifest kept beside it
    if (!/^state-[0-9a-f]{16}\.json(\.journal|\.manifest)?$/.test(name)) {
      problems.push(`${STATE_DIR}/${name}: unexpected file in the state directory`);
      continue;
    }
    if (name.endsWith('.manifest')) continue; // a cache of the bucket's manifest: trusted only when its MD5 is the one recorded
    if (name.endsWith('.journal')) continue; // read with its state file below
    try {
      await readStateOnDisk(dir, name); // complete JSON, and every complete journal line passes its checksum
    } catch (error) {
      problems.push(`${STATE_DIR}/${name}: not complete JSON, or a damaged journal (${String(error)})`);
    }
  }
  return problems;
}

interface RemoteState {
  problems: string[];
  /** Objects at their old content (that differs from the new one). */
  atOld: number;
  /** Objects at their new content (that differs from the old one, or is new). */
  atNew: number;
  /** Which version each object holds ('new' when both versions are identical). */
  holds: Map<string, 'old' | 'new'>;
}

/**
 * Every object under the prefix: a known path, bytes equal to one of its
 * versions, `md5chksum` metadata equal to the MD5 of the bytes. s3rver can
 * answer a GET right after a PUT with a short read (its store resolves before
 * the file is flushed): a mismatch is read again a few times before it counts.
 */
async function inspectRemote(
  client: S3Client,
  bucket: string,
  prefix: string,
  scenario: Scenario,
  mustExist: (v: Versions) => boolean,
): Promise<RemoteState> {
  const state: RemoteState = { problems: [], atOld: 0, atNew: 0, holds: new Map() };
  const keys = await listAllKeys(client, bucket, prefix);
  const seen = new Set<string>();
  let next = 0;
  const check = async (key: string): Promise<void> => {
    const p = key.slice(prefix.length);
    const v = scenario.get(p);
    if (v === undefined) {
      state.problems.push(`${key}: unexpected object`);
      return;
    }
    seen.add(p);
    let last = '';
    for (let attempt = 0; attempt < 4; attempt++) {
      if (attempt > 0) await sleep(100);
      const got = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
      const bytes = Buffer.from(await got.Body!.transformToByteArray());
      const meta = got.Metadata?.md5chksum;
      const which = v.new !== undefined && bytes.equals(v.new) ? 'new' : v.old !== undefined && bytes.equals(v.old) ? 'old' : undefined;
      if (which === undefined) {
        last = `${key}: ${bytes.length} bytes, neither the old (${describeBuf(v.old)}) nor the new (${describeBuf(v.new)}) content`;
        continue;
      }
      if (meta !== md5Base64(bytes)) {
        last = `${key}: md5chksum metadata ${String(meta)} is not the MD5 of its ${which} content (${md5Base64(bytes)})`;
        continue;
      }
      if (which === 'old') state.atOld++;
      else if (v.old === undefined || !v.old.equals(bytes)) state.atNew++;
      state.holds.set(p, which);
      return;
    }
    state.problems.push(last);
  };
  await Promise.all(
    Array.from({ length: 16 }, async () => {
      while (next < keys.length) await check(keys[next++]!);
    }),
  );
  for (const [p, v] of scenario) if (mustExist(v) && !seen.has(p)) state.problems.push(`${prefix}${p}: missing`);
  return state;
}

/** Snapshot of a directory listing (names and sizes/types) to detect writes outside the workspace. */
async function listingOf(dir: string, except: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true })) {
    if (e.name === except) continue;
    const st = await lstat(path.join(dir, e.name));
    out.push(`${e.name}:${st.isDirectory() ? 'dir' : st.size}:${st.mtimeMs}`);
    if (e.isDirectory()) for (const x of await listEntries(path.join(dir, e.name))) out.push(`${e.name}/${x}`);
  }
  return out.sort();
}

// ---------------------------------------------------------------- child

interface ChildRun {
  /** ms from the child's "start" line to the kill (undefined: not killed). */
  killedAfter?: number;
  /** The child's result when it finished before the kill. */
  done?: { ms: number; result: { success: boolean; failedFiles: unknown[] } };
  exit: { code: number | null; signal: NodeJS.Signals | null };
}

/**
 * s3rver can answer a PUT before it has finished writing the object's data and
 * metadata files (NOTES.md: "a PUT can be answered before its data is on
 * disk"), so right after a kill the bucket may briefly show new bytes with the
 * previous metadata. Re-inspect for up to 5 s before calling a problem real:
 * a truly incomplete or inconsistent object stays so.
 */
async function settledRemote<T extends { problems: string[] }>(inspect: () => Promise<T>): Promise<T> {
  let last = await inspect();
  for (let i = 0; i < 50 && last.problems.length > 0; i++) {
    await new Promise((r) => setTimeout(r, 100));
    last = await inspect();
  }
  return last;
}

/** The proxy's idle(), with a deadline: a request stuck in the proxy fails the test with a message. */
async function idleWithin(ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([
    proxy.idle(),
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`the proxy still had requests in flight after ${ms} ms`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

function runChild(config: Record<string, unknown>, killDelayMs: number | undefined): Promise<ChildRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', CHILD], {
      cwd: REPO_ROOT,
      env: { ...process.env, S3WS_CRASH_CHILD: JSON.stringify(config) },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const run: Partial<ChildRun> = {};
    let stdout = '';
    let stderr = '';
    let startedAt: number | undefined;
    let killTimer: NodeJS.Timeout | undefined;
    const deadline = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`crash child did not finish within ${CHILD_DEADLINE_MS} ms\nstdout: ${stdout}\nstderr: ${stderr.slice(-4000)}`));
    }, CHILD_DEADLINE_MS);
    child.stderr.setEncoding('utf8').on('data', (c: string) => {
      stderr = (stderr + c).slice(-64 * 1024);
    });
    child.stdout.setEncoding('utf8').on('data', (c: string) => {
      stdout += c;
      let nl: number;
      while ((nl = stdout.indexOf('\n')) !== -1) {
        const line = stdout.slice(0, nl);
        stdout = stdout.slice(nl + 1);
        const msg = JSON.parse(line) as { event: string; message?: string };
        if (msg.event === 'start') {
          startedAt = performance.now();
          if (killDelayMs !== undefined) {
            const kill = (): void => {
              if (child.exitCode === null && child.signalCode === null) {
                run.killedAfter = performance.now() - (startedAt as number);
                child.kill('SIGKILL');
              }
            };
            if (killDelayMs <= 0) kill();
            else killTimer = setTimeout(kill, killDelayMs);
          }
        } else if (msg.event === 'done') {
          run.done = msg as unknown as NonNullable<ChildRun['done']>;
        } else if (msg.event === 'error') {
          stderr += `\n[child error] ${msg.message}`;
        }
      }
    });
    child.on('error', (error) => {
      clearTimeout(deadline);
      reject(error);
    });
    child.on('exit', (code, signal) => {
      clearTimeout(deadline);
      clearTimeout(killTimer);
      if (signal === null && code !== 0) {
        reject(new Error(`crash child exited with code ${code}\nstderr: ${stderr.slice(-4000)}`));
        return;
      }
      if (signal !== null && run.killedAfter === undefined) {
        reject(new Error(`crash child died of ${signal} without being killed\nstderr: ${stderr.slice(-4000)}`));
        return;
      }
      resolve({ ...run, exit: { code, signal } } as ChildRun);
    });
  });
}

/**
 * Kill moments as fractions of the operation's duration: the first kills at
 * once, the last lands past the end, the rest spread over [0, 1.25]. The
 * duration is re-estimated as the run goes (the shortest complete run so far),
 * so a slow calibration on a busy machine does not push every kill past the end.
 */
function killFractions(rand: () => number, n: number): number[] {
  return Array.from({ length: n }, (_, i) => (i === 0 ? 0 : i === n - 1 ? 1.5 : Math.round(rand() * 125) / 100));
}

function killDelay(fraction: number, estimateMs: number): number {
  return Math.round(fraction * estimateMs) + (fraction > 1.25 ? 200 : 0);
}

// ---------------------------------------------------------------- tests

let proxy: AtomicPutProxy;
let client: S3Client;

beforeAll(async () => {
  // The seed is printed on every run: a failure can be replayed with CRASH_SEED.
  console.log(`[crash] seed ${SEED} (replay with CRASH_SEED=${SEED}), ${ITERATIONS} iterations per direction`);
  createRequire(import.meta.url).resolve('tsx/package.json'); // the child runs under `node --import tsx`
  proxy = await startAtomicPutProxy(s3Endpoint());
  client = makeTestClient();
});

afterAll(async () => {
  client?.destroy();
  await proxy?.stop();
});

function fresh(bucket: string, prefix: string, workspaceDir: string): S3WorkspaceSync {
  return new S3WorkspaceSync({ bucket, prefix, workspaceDir, s3Client: client, logger: silentLogger, downloadConcurrency: 8, uploadConcurrency: 8, timeoutMs: 30_000, conflictPolicy: 'keep-local' });
}

async function putVersions(bucket: string, prefix: string, files: Map<string, Buffer>): Promise<void> {
  const entries = [...files];
  let next = 0;
  await Promise.all(
    Array.from({ length: 16 }, async () => {
      while (next < entries.length) {
        const [p, body] = entries[next++]!;
        await client.send(
          new PutObjectCommand({
            Bucket: bucket,
            Key: prefix + p,
            Body: body,
            Metadata: { md5chksum: md5Base64(body), mtime: '1700000000.000' },
          }),
        );
      }
    }),
  );
}

describe('crash: SIGKILL at a random moment', () => {
  it(
    'pull: every local file is old or new in full; the bucket is untouched; a fresh pull converges and removes temp files',
    { timeout: TEST_TIMEOUT_MS },
    async () => {
      const rand = prng(SEED ^ 0x5eed0001);
      const scenario = buildScenario(rand);
      const localBefore = pick(scenario, 'old');
      const bucketFiles = pick(scenario, 'new');
      const bucket = await createTestBucket(client);
      const prefix = 'ws/';
      await putVersions(bucket, prefix, bucketFiles);
      const keysBefore = await listAllKeys(client, bucket, prefix);

      const parent = await tempDir('s3ws-crash-pull-');
      await writeFile(path.join(parent, 'sentinel.txt'), 'outside the workspace');
      const ws = path.join(parent, 'ws');
      const reset = async (): Promise<void> => {
        await rm(ws, { recursive: true, force: true });
        await mkdir(ws);
        await writeFiles(ws, localBefore);
      };
      const outsideBefore = await listingOf(parent, 'ws');
      const config = { endpoint: proxy.endpoint, bucket, prefix, workspaceDir: ws, operation: 'pull', concurrency: CONCURRENCY };

      // Calibration: one uncrashed run measures the operation (and proves the child works).
      await reset();
      const calibration = await runChild(config, undefined);
      expect(calibration.done?.result.failedFiles, `seed ${SEED}: calibration pull failed`).toEqual([]);
      expect(calibration.done?.result.success, `seed ${SEED}: calibration pull failed`).toBe(true);
      let estimate = calibration.done!.ms;
      const fractions = killFractions(rand, ITERATIONS);
      console.log(`[crash] pull takes ${Math.round(estimate)} ms; kill at ${fractions.join(', ')} × its duration`);

      const mustExistLocally = (v: Versions): boolean => v.old !== undefined && v.new !== undefined;
      for (const [i, fraction] of fractions.entries()) {
        const delay = killDelay(fraction, estimate);
        const tag = `seed ${SEED}, pull iteration ${i}, kill delay ${delay} ms`;
        await reset();
        const run = await runChild(config, delay);
        if (run.done) estimate = Math.min(estimate, run.done.ms);
        await idleWithin(10_000);

        const crashed = await inspectLocal(ws, scenario, mustExistLocally);
        expect(crashed.problems, `${tag}: local state after the kill`).toEqual([]);
        if (run.killedAfter === undefined) {
          expect(run.done?.result.failedFiles, `${tag}: the child finished but failed`).toEqual([]);
          expect(run.done?.result.success, `${tag}: the child finished but failed`).toBe(true);
          expect(crashed.tempFiles, `${tag}: temp files after a finished pull`).toEqual([]);
        }
        expect(await listingOf(parent, 'ws'), `${tag}: outside the workspace`).toEqual(outsideBefore);
        expect(await listAllKeys(client, bucket, prefix), `${tag}: pull changed the bucket`).toEqual(keysBefore);

        const rerun = await fresh(bucket, prefix, ws).pull();
        expect(rerun.failedFiles, `${tag}: re-run`).toEqual([]);
        expect(rerun.success, `${tag}: re-run`).toBe(true);
        const converged = await inspectLocal(ws, scenario, (v) => v.new !== undefined);
        expect(converged.problems, `${tag}: after the re-run`).toEqual([]);
        expect(converged.tempFiles, `${tag}: temp files left after the re-run`).toEqual([]);
        expect({ new: converged.atNew + converged.identical, old: converged.atOld }, `${tag}: after the re-run`).toEqual({
          new: bucketFiles.size,
          old: 0,
        });
        expect(await listingOf(parent, 'ws'), `${tag}: outside the workspace after the re-run`).toEqual(outsideBefore);
        console.log(
          `[crash] pull #${i} (kill at ${delay} ms): ${run.killedAfter === undefined ? `finished in ${Math.round(run.done?.ms ?? 0)} ms, before the kill` : `killed after ${Math.round(run.killedAfter)} ms`}; ` +
            `${crashed.atNew} files new, ${crashed.atOld} old (+${crashed.identical} identical), ${crashed.tempFiles.length} temp files; re-run downloaded ${rerun.downloadedFiles}, deleted ${rerun.deletedFiles}`,
        );
      }
      // Pulls never write to the bucket: every object still holds its (new) bytes, md5chksum intact.
      const bucketAfter = await inspectRemote(client, bucket, prefix, scenario, (v) => v.new !== undefined);
      expect(bucketAfter.problems, `seed ${SEED}: the bucket after all pulls`).toEqual([]);
      expect([...bucketAfter.holds.values()].every((w) => w === 'new'), `seed ${SEED}: the bucket after all pulls`).toBe(true);
    },
  );

  it(
    'push: every object is complete (old or new bytes, md5chksum matches); local files untouched; a fresh push converges',
    { timeout: TEST_TIMEOUT_MS },
    async () => {
      const rand = prng(SEED ^ 0x5eed0002);
      const scenario = buildScenario(rand);
      const localFiles = pick(scenario, 'new');
      const bucketBefore = pick(scenario, 'old');
      const bucket = await createTestBucket(client);

      const parent = await tempDir('s3ws-crash-push-');
      await writeFile(path.join(parent, 'sentinel.txt'), 'outside the workspace');
      const ws = path.join(parent, 'ws');
      await mkdir(ws);
      await writeFiles(ws, localFiles);
      // The library's state directory (its files are checked by inspectLocal) exists
      // from the start, so creating it does not count as touching the workspace.
      await mkdir(path.join(ws, STATE_DIR));
      const localListing = await listingOf(parent, '');
      const outsideBefore = await listingOf(parent, 'ws');

      // Each iteration gets its own prefix holding the old versions.
      const prepare = async (name: string): Promise<string> => {
        const prefix = `${name}/`;
        await putVersions(bucket, prefix, bucketBefore);
        return prefix;
      };
      const config = (prefix: string) => ({ endpoint: proxy.endpoint, bucket, prefix, workspaceDir: ws, operation: 'push', concurrency: CONCURRENCY });

      const calibration = await runChild(config(await prepare('calibration')), undefined);
      expect(calibration.done?.result.failedFiles, `seed ${SEED}: calibration push failed`).toEqual([]);
      expect(calibration.done?.result.success, `seed ${SEED}: calibration push failed`).toBe(true);
      let estimate = calibration.done!.ms;
      const fractions = killFractions(rand, ITERATIONS);
      console.log(`[crash] push takes ${Math.round(estimate)} ms; kill at ${fractions.join(', ')} × its duration`);

      // Expected final object of each path: the local (new) version, else the untouched old object.
      const expectedFinal = new Map<string, Buffer>();
      for (const [p, v] of scenario) expectedFinal.set(p, (v.new ?? v.old)!);

      for (const [i, fraction] of fractions.entries()) {
        const delay = killDelay(fraction, estimate);
        const tag = `seed ${SEED}, push iteration ${i}, kill delay ${delay} ms`;
        const prefix = await prepare(`it-${i}`);
        const run = await runChild(config(prefix), delay);
        if (run.done) estimate = Math.min(estimate, run.done.ms);
        await idleWithin(10_000);

        // A fresh instance deletes nothing: every old object is still there.
        const crashed = await settledRemote(() => inspectRemote(client, bucket, prefix, scenario, (v) => v.old !== undefined));
        expect(crashed.problems, `${tag}: bucket after the kill`).toEqual([]);
        if (run.killedAfter === undefined) {
          expect(run.done?.result.failedFiles, `${tag}: the child finished but failed`).toEqual([]);
          expect(run.done?.result.success, `${tag}: the child finished but failed`).toBe(true);
        }
        const local = await inspectLocal(ws, scenario, (v) => v.new !== undefined);
        expect(local.problems, `${tag}: push changed local files`).toEqual([]);
        expect(local.tempFiles, `${tag}: push left temp files`).toEqual([]);
        expect(local.atNew + local.identical, `${tag}: local files`).toBe(localFiles.size);
        // (the library's own folder excepted: a killed push leaves its lock there, taken over by the next sync)
        const own = (l: string[]): string[] => l.filter((x) => !x.includes(`${STATE_DIR}/`));
        expect(own(await listingOf(parent, '')), `${tag}: push touched the workspace or its parent`).toEqual(own(localListing));

        const rerun = await fresh(bucket, prefix, ws).push();
        expect(rerun.failedFiles, `${tag}: re-run`).toEqual([]);
        expect(rerun.success, `${tag}: re-run`).toBe(true);
        const converged = await settledRemote(() => inspectRemote(client, bucket, prefix, scenario, () => true));
        expect(converged.problems, `${tag}: bucket after the re-run`).toEqual([]);
        const keys = (await listAllKeys(client, bucket, prefix)).map((k) => k.slice(prefix.length));
        expect(keys, `${tag}: keys after the re-run`).toEqual([...expectedFinal.keys()].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b))));
        // Objects only the bucket had stay at their old content; everything else is the local content.
        const wrong = [...scenario]
          .filter(([p, v]) => converged.holds.get(p) !== (v.new !== undefined ? 'new' : 'old'))
          .map(([p]) => `${p}: holds ${String(converged.holds.get(p))}`);
        expect(wrong, `${tag}: objects after the re-run`).toEqual([]);
        expect(await listingOf(parent, 'ws'), `${tag}: outside the workspace`).toEqual(outsideBefore);
        console.log(
          `[crash] push #${i} (kill at ${delay} ms): ${run.killedAfter === undefined ? `finished in ${Math.round(run.done?.ms ?? 0)} ms, before the kill` : `killed after ${Math.round(run.killedAfter)} ms`}; ` +
            `${crashed.atNew} objects new, ${crashed.atOld} old; re-run uploaded ${rerun.uploadedFiles}; proxy dropped ${proxy.dropped} incomplete requests so far`,
        );
      }
    },
  );
});
