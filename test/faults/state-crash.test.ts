// Crash at every step of a state save: a child process
// (test/helpers/state-crash-child.ts, `node --import tsx`) pulls or pushes a
// workspace with `node:fs` instrumented, and SIGKILLs itself right before or
// right after the N-th mutating filesystem call inside the state directory.
//
// The steps are not hard-coded: a first child runs in trace mode and reports
// every call the library makes inside the state directory (loading the state,
// removing a leftover temp file, saving the new state); then one child per step
// and per side (before / after) is killed there. Reads, and calls in the
// recovery area (`recovered/…`, used by the downloads, in download order), are
// listed in the trace but are not kill points. The pull's save writes the
// whole state file (an earlier crash cut a journal line short); the push's
// appends a line to the journal. A second series makes one
// write of the temp state file or the journal fail (EIO, as a full or broken disk would),
// which sends the save down its error path, and kills the child at every step
// of that path too.
//
// Every run starts from a workspace prepared in place (a state file is bound
// to its directory's inode and birth time, so a copied workspace's state would
// not be trusted): a seeded bucket pulled by an instance of this process (so
// the state is valid), a leftover temp state file from an "earlier crash",
// unpushed local work (a new `notes.txt`, an edit of `src/m3.ts`, both with
// mtimes in the past so that nothing is racy) and, for pull, two objects
// changed by another writer (so the child downloads and must save state).
//
// After every kill:
//  - every `state-*.json` left in the state directory is absent or complete
//    JSON whose entries all still hold (an entry whose size, mtime, ctime and
//    inode equal the file's lstat has the file's MD5);
//  - pull: a fresh instance of this process pulls successfully; the unpushed
//    bytes of `notes.txt` and of the edit are still on disk, at their path or
//    under `.s3-workspace-sync/recovered/<stamp>/<path>` (and then listed in
//    `result.movedAside`); the files changed remotely hold the bucket's bytes;
//  - push: the local files are untouched; a fresh push succeeds and the bucket
//    then holds exactly the local files' bytes.
// The push scenario has no remote change: a push by an instance without a
// trusted state is last-writer-wins by design (README, "push()"), so an object
// changed remotely could legitimately be overwritten by the stale local copy.
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createRequire } from 'node:module';
import { lstat, mkdir, readdir, readFile, utimes, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { S3WorkspaceSync, silentLogger, type SyncResult } from '../../src/index.js';
import { createTestBucket, getObjectBytes, listAllKeys, makeTestClient, s3Endpoint } from '../helpers/s3.js';
import { md5Base64, tempDir } from '../helpers/sync-fixture.js';
import { readTree } from '../helpers/tree.js';
import { readStateOnDisk } from '../helpers/state-doc.js';

const REPO_ROOT = fileURLToPath(new URL('../..', import.meta.url));
const CHILD = fileURLToPath(new URL('../helpers/state-crash-child.ts', import.meta.url));
/** A child that runs longer than this is killed and the run fails. */
const CHILD_DEADLINE_MS = 20_000;
/** Runs (prepare + child + checks) in flight at once. */
const PARALLEL = 3;
const TEST_TIMEOUT_MS = 120_000;
const STATE_DIR = '.s3-workspace-sync';
const PREFIX = 'ws/';
/** Upload metadata: downloads get this mtime (2023), so no entry is racy. */
const OLD_MTIME = '1700000000.000';

// ---------------------------------------------------------------- data

const NOTES = 'notes.txt';
const EDITED = 'src/m3.ts';
const REMOTE_CHANGED = ['src/m7.ts', 'docs/d12.md'];

function seedFiles(): Map<string, Buffer> {
  const files = new Map<string, Buffer>();
  for (let i = 0; i < 20; i++) {
    const rel = i < 10 ? `src/m${i}.ts` : i < 16 ? `docs/d${i}.md` : `data/x/y${i}.json`;
    const lines = Array.from({ length: 20 + i * 7 }, (_, j) => `file ${i} line ${j}: ${'abcdefghij'.slice(0, (i + j) % 10)}`);
    files.set(rel, Buffer.from(`${lines.join('\n')}\n`));
  }
  return files;
}

const SEED = seedFiles();
const NOTES_BYTES = Buffer.from('unpushed notes: only this workspace has them\n'.repeat(12));
const EDITED_BYTES = Buffer.concat([SEED.get(EDITED)!, Buffer.from('// unpushed edit, longer than the original\n'.repeat(5))]);
const REMOTE_BYTES = new Map(REMOTE_CHANGED.map((rel, i) => [rel, Buffer.from(`changed by another writer (${i})\n`.repeat(30 + i))]));

function md5Hex(data: Buffer): string {
  return createHash('md5').update(data).digest('hex');
}

// ---------------------------------------------------------------- workspace

let client: S3Client;

beforeAll(() => {
  createRequire(import.meta.url).resolve('tsx/package.json'); // the child runs under `node --import tsx`
  client = makeTestClient();
});

afterAll(() => {
  client?.destroy();
});

function fresh(bucket: string, workspaceDir: string): S3WorkspaceSync {
  return new S3WorkspaceSync({ bucket, prefix: PREFIX, workspaceDir, s3Client: client, logger: silentLogger, timeoutMs: 30_000 });
}

async function putObject(bucket: string, rel: string, body: Buffer): Promise<void> {
  await client.send(
    new PutObjectCommand({ Bucket: bucket, Key: PREFIX + rel, Body: body, Metadata: { md5chksum: md5Base64(body), mtime: OLD_MTIME } }),
  );
}

type Operation = 'pull' | 'push';

interface Prepared {
  bucket: string;
  ws: string;
  stateDir: string;
  /** Every local file (outside the state directory) right before the child runs. */
  local: Map<string, Buffer>;
  /** Every object (path under the prefix -> bytes) right before the child runs. */
  remote: Map<string, Buffer>;
}

/**
 * A workspace with a valid state (pulled here), a leftover temp state file,
 * unpushed work, and (pull) two objects changed by another writer.
 */
async function prepare(op: Operation): Promise<Prepared> {
  const bucket = await createTestBucket(client);
  await Promise.all([...SEED].map(([rel, body]) => putObject(bucket, rel, body)));
  const ws = path.join(await tempDir(`s3ws-state-crash-${op}-`), 'ws');
  await mkdir(ws);
  const seeded = await fresh(bucket, ws).pull();
  if (!seeded.success || seeded.downloadedFiles !== SEED.size) throw new Error(`seeding pull: ${JSON.stringify(seeded.errors)}`);
  const stateDir = path.join(ws, STATE_DIR);
  const stateFiles = (await readdir(stateDir)).filter((n) => /^state-[0-9a-f]{16}\.json$/.test(n));
  if (stateFiles.length !== 1) throw new Error(`the seeding pull left ${JSON.stringify(stateFiles)} in the state directory`);
  // An earlier crash's temp file (half a document): loading the state removes it.
  await writeFile(path.join(stateDir, `${stateFiles[0]}.00000000000a.tmp`), '{"format":"s3-workspace-sync/state","ver');
  // Pull: an earlier crash also cut a journal line short, so the child's save writes the whole file (temp file,
  // rename). Push: the child's save appends its changes to the journal.
  if (op === 'pull') await writeFile(path.join(stateDir, `${stateFiles[0]}.journal`), '0123456789abcdef0123456789abcdef {"id":"');

  const past = new Date(Date.now() - 3_600_000);
  await writeFile(path.join(ws, NOTES), NOTES_BYTES);
  await writeFile(path.join(ws, EDITED), EDITED_BYTES);
  await utimes(path.join(ws, NOTES), past, past);
  await utimes(path.join(ws, EDITED), past, past);
  const local = new Map(SEED);
  local.set(NOTES, NOTES_BYTES);
  local.set(EDITED, EDITED_BYTES);

  const remote = new Map(SEED);
  if (op === 'pull') {
    for (const [rel, body] of REMOTE_BYTES) {
      await putObject(bucket, rel, body);
      remote.set(rel, body);
    }
  }
  return { bucket, ws, stateDir, local, remote };
}

// ---------------------------------------------------------------- checks

interface StateCheck {
  /** The state files found (names). */
  files: string[];
  problems: string[];
  entries: number;
  /** Entries whose stat matched the file (and whose MD5 was then checked). */
  matched: number;
}

/**
 * Every `*.json` in the state directory must be complete JSON with an
 * `entries` object of 7-field rows, and every entry must "still hold": when
 * size, mtimeMs, ctimeMs and ino equal the workspace file's lstat, the file's
 * MD5 equals the entry's (a stale entry that matches by stat would make the
 * next sync trust a wrong MD5).
 */
async function checkStateDir(p: Prepared): Promise<StateCheck> {
  const out: StateCheck = { files: [], problems: [], entries: 0, matched: 0 };
  const names = await readdir(p.stateDir).catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT') return [] as string[];
    throw error;
  });
  for (const name of names.filter((n) => n.endsWith('.json'))) {
    out.files.push(name);
    let entries: unknown;
    try {
      // the state file with its journal's lines applied
      entries = (await readStateOnDisk(p.stateDir, name)).entries;
    } catch (error) {
      out.problems.push(`${name}: not complete JSON, or a damaged journal (${String(error)})`);
      continue;
    }
    if (typeof entries !== 'object' || entries === null || Array.isArray(entries)) {
      out.problems.push(`${name}: no entries object`);
      continue;
    }
    for (const [rel, row] of Object.entries(entries as Record<string, unknown>)) {
      out.entries++;
      if (!Array.isArray(row) || row.length !== 7) {
        out.problems.push(`${name}: entry ${rel} is not a 7-field row: ${JSON.stringify(row)}`);
        continue;
      }
      const [size, mtimeMs, ctimeMs, ino, md5] = row as [number, number, number, number, string];
      const st = await lstat(path.join(p.ws, rel)).catch(() => undefined);
      if (st === undefined || st.size !== size || st.mtimeMs !== mtimeMs || st.ctimeMs !== ctimeMs || st.ino !== ino) continue;
      out.matched++;
      const actual = md5Hex(await readFile(path.join(p.ws, rel)));
      if (actual !== md5) out.problems.push(`${name}: entry ${rel} matches the file's stat but records MD5 ${md5}; the file's is ${actual}`);
    }
  }
  return out;
}

/** Where `bytes` of `rel` survive: 'in place', the recovered copy's absolute path, or undefined (lost). */
async function locate(ws: string, rel: string, bytes: Buffer): Promise<string | undefined> {
  const inPlace = await readFile(path.join(ws, rel)).catch(() => undefined);
  if (inPlace?.equals(bytes)) return 'in place';
  const recovered = path.join(ws, STATE_DIR, 'recovered');
  for (const stamp of (await readdir(recovered).catch(() => [] as string[])).sort()) {
    const candidate = path.join(recovered, stamp, ...rel.split('/'));
    if ((await readFile(candidate).catch(() => undefined))?.equals(bytes)) return candidate;
  }
  return undefined;
}

interface MovedAside {
  path: string;
  movedTo: string;
  reason?: string;
}

function movedAsideOf(result: SyncResult): MovedAside[] {
  return (result as SyncResult & { movedAside?: MovedAside[] }).movedAside ?? [];
}

/** Names of the files that differ between two trees (missing, extra, other bytes). */
function treeDiff(actual: Record<string, Buffer>, expected: Map<string, Buffer>): string[] {
  const out: string[] = [];
  for (const [rel, bytes] of expected) {
    const got = actual[rel];
    if (got === undefined) out.push(`${rel}: missing`);
    else if (!got.equals(bytes)) out.push(`${rel}: ${got.length} bytes, expected ${bytes.length}`);
  }
  for (const rel of Object.keys(actual)) if (!expected.has(rel)) out.push(`${rel}: unexpected`);
  return out;
}

/** The checks after the child died (or finished): see the header. Returns a one-line summary. */
async function checkAfter(op: Operation, p: Prepared, tag: string): Promise<string> {
  const state = await checkStateDir(p);
  expect(state.problems, `${tag}: state left by the child`).toEqual([]);
  expect(state.files.length, `${tag}: state files left by the child: ${state.files.join(', ')}`).toBeLessThanOrEqual(1);
  const stateSummary = state.files.length === 0 ? 'no state' : `state of ${state.entries} entries (${state.matched} matching by stat)`;

  if (op === 'push') {
    expect(treeDiff(await readTree(p.ws), p.local), `${tag}: the killed push changed local files`).toEqual([]);
    const result = await fresh(p.bucket, p.ws).push();
    expect(result.failedFiles, `${tag}: re-run push`).toEqual([]);
    expect(result.success, `${tag}: re-run push`).toBe(true);
    // The library's own folder of the prefix (`.s3-workspace-sync/`, e.g. its workspace-id object) is not workspace content.
    const keys = (await listAllKeys(client, p.bucket, PREFIX)).filter((k) => !k.startsWith(`${PREFIX}${STATE_DIR}/`));
    expect(keys, `${tag}: keys after the re-run push`).toEqual([...p.local.keys()].map((rel) => PREFIX + rel).sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b))));
    const wrong: string[] = [];
    for (const [rel, bytes] of p.local) if (!(await getObjectBytes(client, p.bucket, PREFIX + rel)).equals(bytes)) wrong.push(rel);
    expect(wrong, `${tag}: objects that do not hold the local bytes after the re-run push`).toEqual([]);
    expect(treeDiff(await readTree(p.ws), p.local), `${tag}: the re-run push changed local files`).toEqual([]);
    const after = await checkStateDir(p);
    expect(after.problems, `${tag}: state after the re-run push`).toEqual([]);
    return `${stateSummary}; re-run push uploaded ${result.uploadedFiles}`;
  }

  const result = await fresh(p.bucket, p.ws).pull();
  expect(result.failedFiles, `${tag}: re-run pull`).toEqual([]);
  expect(result.success, `${tag}: re-run pull`).toBe(true);
  const where: string[] = [];
  for (const [rel, bytes] of [
    [NOTES, NOTES_BYTES],
    [EDITED, EDITED_BYTES],
  ] as const) {
    const at = await locate(p.ws, rel, bytes);
    expect(at, `${tag}: the unpushed bytes of ${rel} are gone (neither at ${rel} nor under ${STATE_DIR}/recovered/*/${rel}); on disk now: ${await describeFile(path.join(p.ws, rel))}`).toBeDefined();
    if (at !== 'in place') {
      expect(movedAsideOf(result), `${tag}: ${rel} was moved to ${at}, result.movedAside must say so`).toContainEqual(expect.objectContaining({ path: rel, movedTo: at, reason: expect.any(String) }));
    }
    where.push(`${rel} ${at === 'in place' ? 'kept in place' : 'moved aside'}`);
  }
  // Everything else holds the bucket's bytes (the edited path: the edit kept in place, or the bucket's bytes once it was moved aside).
  const wrong: string[] = [];
  for (const [rel, bytes] of p.remote) {
    const got = await readFile(path.join(p.ws, rel)).catch(() => undefined);
    if (got?.equals(bytes) === true) continue;
    if (rel === EDITED && got?.equals(EDITED_BYTES) === true) continue;
    wrong.push(`${rel}: ${got === undefined ? 'missing' : `${got.length} bytes`}, the bucket has ${bytes.length}`);
  }
  expect(wrong, `${tag}: files that do not hold the bucket's bytes after the re-run pull`).toEqual([]);
  const after = await checkStateDir(p);
  expect(after.problems, `${tag}: state after the re-run pull`).toEqual([]);
  return `${stateSummary}; re-run pull: ${where.join(', ')}, downloaded ${result.downloadedFiles}`;
}

async function describeFile(file: string): Promise<string> {
  const bytes = await readFile(file).catch((error: NodeJS.ErrnoException) => error.code ?? String(error));
  return typeof bytes === 'string' ? bytes : `${bytes.length} bytes`;
}

// ---------------------------------------------------------------- child

interface FsLine {
  step: number | null;
  op: string;
  path: string;
}

interface ChildRun {
  fs: FsLine[];
  /** Mutating calls inside the state directory, in order (fs lines with a step number). */
  steps: (FsLine & { step: number })[];
  killed?: { step: number; when: 'before' | 'after'; op: string; path: string };
  failed?: { step: number; op: string; path: string; code: string };
  warnings: string[];
  done?: { result: { success: boolean; failedFiles: unknown[]; errors: string[] } };
  error?: string;
  exit: { code: number | null; signal: NodeJS.Signals | null };
  stderr: string;
}

interface ChildOptions {
  kill?: { step: number; when: 'before' | 'after' };
  fail?: { step: number; code: string };
}

function runChild(op: Operation, p: Prepared, options: ChildOptions = {}): Promise<ChildRun> {
  const config = { endpoint: s3Endpoint(), bucket: p.bucket, prefix: PREFIX, workspaceDir: p.ws, stateDir: p.stateDir, operation: op, ...options };
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', CHILD], {
      cwd: REPO_ROOT,
      env: { ...process.env, S3WS_STATE_CRASH_CHILD: JSON.stringify(config) },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const run: Omit<ChildRun, 'exit' | 'stderr'> = { fs: [], steps: [], warnings: [] };
    let stdout = '';
    let stderr = '';
    const deadline = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`state-crash child did not finish within ${CHILD_DEADLINE_MS} ms (${JSON.stringify(options)})\nstderr: ${stderr.slice(-4000)}`));
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
        const msg = JSON.parse(line) as Record<string, unknown>;
        if (msg.event === 'fs') {
          const f = msg as unknown as FsLine;
          run.fs.push({ step: f.step, op: f.op, path: f.path });
          if (f.step !== null) run.steps.push({ step: f.step, op: f.op, path: f.path });
        } else if (msg.event === 'kill') run.killed = msg as unknown as NonNullable<ChildRun['killed']>;
        else if (msg.event === 'fail') run.failed = msg as unknown as NonNullable<ChildRun['failed']>;
        else if (msg.event === 'warn') run.warnings.push(String(msg.message));
        else if (msg.event === 'done') run.done = msg as unknown as NonNullable<ChildRun['done']>;
        else if (msg.event === 'error') run.error = String(msg.message);
      }
    });
    child.on('error', (error) => {
      clearTimeout(deadline);
      reject(error);
    });
    child.on('close', (code, signal) => {
      clearTimeout(deadline);
      resolve({ ...run, exit: { code, signal }, stderr });
    });
  });
}

const describeStep = (s: FsLine): string => `#${s.step} ${s.op} ${s.path}`;

/** The child finished normally and its operation succeeded. */
function expectFinished(run: ChildRun, tag: string): void {
  const why = `${tag}: exit ${JSON.stringify(run.exit)}, error ${String(run.error)}\nstderr: ${run.stderr.slice(-2000)}`;
  expect(run.exit, why).toEqual({ code: 0, signal: null });
  expect(run.done?.result.failedFiles, why).toEqual([]);
  expect(run.done?.result.success, why).toBe(true);
}

/** The harness really killed the child, at the expected step, which is the same call the trace saw there. */
function expectKilled(run: ChildRun, kill: { step: number; when: 'before' | 'after' }, trace: FsLine[], tag: string): void {
  const why = `${tag}: exit ${JSON.stringify(run.exit)}, killed ${JSON.stringify(run.killed)}, error ${String(run.error)}\nstderr: ${run.stderr.slice(-2000)}`;
  const traced = trace[kill.step]!;
  expect(run.exit.signal, why).toBe('SIGKILL');
  expect(run.done, `${tag}: the child printed "done" although it was to be killed`).toBeUndefined();
  expect(run.killed, why).toEqual({ event: 'kill', step: kill.step, when: kill.when, op: traced.op, path: traced.path });
  // The calls up to the kill are the traced ones (the library's sequence is deterministic).
  expect(run.steps.map(describeStep), `${tag}: the steps before the kill differ from the trace`).toEqual(trace.slice(0, kill.step + 1).map(describeStep));
}

/** Run `jobs` with at most PARALLEL in flight; every failure is collected (message per job). */
async function runAll<T>(jobs: T[], job: (j: T) => Promise<void>): Promise<string[]> {
  const failures: string[] = [];
  let next = 0;
  await Promise.all(
    Array.from({ length: PARALLEL }, async () => {
      while (next < jobs.length) {
        const j = jobs[next++]!;
        try {
          await job(j);
        } catch (error) {
          failures.push(error instanceof Error ? error.message.split('\n').slice(0, 12).join('\n') : String(error));
        }
      }
    }),
  );
  return failures;
}

// ---------------------------------------------------------------- tests

const WHENS = ['before', 'after'] as const;

describe('state save: SIGKILL before and after every filesystem step in the state directory', () => {
  for (const op of ['pull', 'push'] as const) {
    it(
      `${op}: the state left behind is absent or valid, and unpushed work survives the next ${op}`,
      { timeout: TEST_TIMEOUT_MS },
      async () => {
        const started = performance.now();
        // 1. Trace: one complete run lists the steps (and must itself pass the checks).
        const p0 = await prepare(op);
        const trace = await runChild(op, p0);
        expectFinished(trace, `${op}: trace run`);
        console.log(`[state-crash] ${op}: ${trace.steps.length} steps in the state directory:\n  ${trace.fs.map((f) => (f.step === null ? `   (not a step) ${f.op} ${f.path}` : describeStep(f))).join('\n  ')}`);
        if (op === 'pull') {
          expect(
            trace.steps.some((s) => s.op === 'rename' && /\.tmp -> state-<id>\.json$/.test(s.path)),
            `${op}: the trace shows no rename of a temp file over the state file (is the harness seeing the save?)`,
          ).toBe(true);
        } else {
          expect(
            trace.steps.some((s) => /write/i.test(s.op) && s.path.endsWith('state-<id>.json.journal')),
            `${op}: the trace shows no write to the state's journal (is the harness seeing the save?)`,
          ).toBe(true);
        }
        expect(trace.steps.some((s) => s.op === 'unlink' && s.path.endsWith('.<hex>.tmp')), `${op}: the leftover temp file was not removed`).toBe(true);
        console.log(`[state-crash] ${op}: trace run: ${await checkAfter(op, p0, `${op}: trace run`)}`);

        // 2. Kill before and after every step.
        const kills = trace.steps.flatMap((s) => WHENS.map((when) => ({ step: s.step, when })));
        const failures = await runAll(kills, async (kill) => {
          const traced = trace.steps[kill.step]!;
          const tag = `${op}: kill ${kill.when} ${describeStep(traced)}`;
          const p = await prepare(op);
          const run = await runChild(op, p, { kill });
          expectKilled(run, kill, trace.steps, tag);
          console.log(`[state-crash] ${tag}: ${await checkAfter(op, p, tag)}`);
        });

        // 3. The save's error path: the first write of the temp state file (pull) or of the journal (push) fails with EIO.
        const saved = op === 'pull' ? /state-<id>\.json\.<hex>\.tmp$/ : /state-<id>\.json\.journal$/;
        const failAt = trace.steps.find((s) => /write/i.test(s.op) && saved.test(s.path));
        expect(failAt, `${op}: no write of a temp state file or of the journal in the trace`).toBeDefined();
        const series = `${op}/EIO`;
        const pf = await prepare(op);
        const failing = await runChild(op, pf, { fail: { step: failAt!.step, code: 'EIO' } });
        expectFinished(failing, `${series}: the save failed, the ${op} itself must succeed`);
        expect(failing.failed, `${series}: the injected failure`).toMatchObject({ step: failAt!.step, op: failAt!.op });
        expect(failing.warnings.join('\n'), `${series}: a warning about the failed save`).toMatch(/EIO/);
        expect(failing.steps.slice(0, failAt!.step + 1), `${series}: the steps up to the failure`).toEqual(trace.steps.slice(0, failAt!.step + 1));
        const errorPath = failing.steps.slice(failAt!.step + 1);
        console.log(`[state-crash] ${series}: after ${describeStep(failAt!)} fails, ${errorPath.length} steps:\n  ${errorPath.map(describeStep).join('\n  ')}`);
        // The save failed and nothing killed the process: the next run starts without a (trusted) state.
        try {
          console.log(`[state-crash] ${series}: finished: ${await checkAfter(op, pf, `${series}: finished`)}`);
        } catch (error) {
          failures.push(error instanceof Error ? error.message.split('\n').slice(0, 12).join('\n') : String(error));
        }
        failures.push(
          ...(await runAll(
            errorPath.flatMap((s) => WHENS.map((when) => ({ step: s.step, when }))),
            async (kill) => {
              const traced = failing.steps[kill.step]!;
              const tag = `${series}: kill ${kill.when} ${describeStep(traced)}`;
              const p = await prepare(op);
              const run = await runChild(op, p, { fail: { step: failAt!.step, code: 'EIO' }, kill });
              expectKilled(run, kill, failing.steps, tag);
              console.log(`[state-crash] ${tag}: ${await checkAfter(op, p, tag)}`);
            },
          )),
        );
        console.log(`[state-crash] ${op}: ${kills.length + 2 + errorPath.length * 2} children in ${Math.round(performance.now() - started)} ms`);
        expect(failures, `${op}: ${failures.length} failing run(s)`).toEqual([]);
      },
    );
  }
});
