/**
 * End-to-end demo of s3-workspace-sync against an embedded local S3-compatible
 * server (s3rver on 127.0.0.1). Run it with `npm run demo`.
 *
 *  1. push a copy of examples/demo-workspace/ to s3://demo/demo/workspace/
 *  2. pull it into a fresh directory with a new instance (a "cold start")
 *  3. edit the pulled copy (modify 1, add 1, delete 1) and push again
 *  4. pull those changes into the first copy
 *  5. push with nothing changed (no S3 request at all)
 *  6. check both copies hold exactly the synced files, byte for byte
 *
 * The repository tree is never modified: everything happens in a temp dir.
 * Exits 0 and prints PASS when every check holds; prints what differs and
 * exits 1 otherwise.
 */
import { cp, mkdtemp, readdir, readFile, rm, unlink, writeFile, appendFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { startLocalS3, type LocalS3 } from '../scripts/local-s3-launcher.mjs';
import {
  S3WorkspaceSync,
  SyncIgnoreFilter,
  type SyncLogger,
  type SyncProgress,
  type SyncResult,
} from '../src/index.js';

// The AWS SDK warns on Node 20 that its releases after early January 2027 will
// need Node >= 22; that is about the SDK, not this demo, so keep the output clean.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

const BUCKET = 'demo';
const PREFIX = 'demo/workspace/';
const DEMO_WORKSPACE = fileURLToPath(new URL('./demo-workspace/', import.meta.url));

/** Warnings and errors only: the demo prints its own lines. */
const quietLogger: SyncLogger = {
  debug: () => undefined,
  info: () => undefined,
  warn: (message) => console.warn(`  [s3-workspace-sync] ${message}`),
  error: (message) => console.error(`  [s3-workspace-sync] ${message}`),
};

const problems: string[] = [];

/** Record a failed expectation (the demo goes on, then exits 1). */
function expect(ok: boolean, what: string): void {
  console.log(`  ${ok ? 'ok  ' : 'FAIL'} ${what}`);
  if (!ok) problems.push(what);
}

function kb(bytes: number): string {
  return bytes < 1024 ? `${bytes} B` : `${(bytes / 1024).toFixed(1)} kB`;
}

function printProgress(p: SyncProgress): void {
  const count = `${String(p.current).padStart(3)}/${String(p.total).padEnd(3)}`;
  const bytes = p.phase === 'cleanup' ? '' : `${kb(p.transferredBytes)} of ${kb(p.totalBytes)}`;
  console.log(`    ${p.phase.padEnd(8)} ${count} ${String(p.percentage).padStart(3)}%  ${bytes.padEnd(18)} ${p.currentFile ?? ''}`);
}

function printResult(op: 'push' | 'pull', r: SyncResult): void {
  const moved = op === 'push' ? `${r.uploadedFiles} uploaded` : `${r.downloadedFiles} downloaded`;
  console.log(
    `  ${op}: ${r.success ? 'success' : 'FAILED'}, ${moved}, ${r.deletedFiles} deleted, ` +
      `${r.skippedFiles.length} skipped, ${r.failedFiles.length} failed, ${kb(r.bytesTransferred)} in ${r.duration} ms`,
  );
  for (const s of r.skippedFiles) console.log(`    skipped ${s.path}: ${s.reason}`);
  for (const f of r.failedFiles) console.log(`    failed  ${f.path}: ${f.error}`);
}

/** Every regular file under `dir` (POSIX relative paths), minus what `filter` ignores. */
async function listFiles(dir: string, filter?: SyncIgnoreFilter): Promise<string[]> {
  const out: string[] = [];
  const walk = async (abs: string): Promise<void> => {
    for (const entry of await readdir(abs, { withFileTypes: true })) {
      const full = join(abs, entry.name);
      const rel = relative(dir, full).split('\\').join('/');
      if (entry.isDirectory()) {
        if (rel === '.s3-workspace-sync') continue; // the library's state file, not workspace content
        if (!filter?.ignores(rel, true)) await walk(full);
      } else if (entry.isFile() && !filter?.ignores(rel)) {
        out.push(rel);
      }
    }
  };
  await walk(dir);
  return out.sort();
}

/** The files the library syncs from `dir`: its own `.syncignore` plus the built-in defaults. */
async function syncedFiles(dir: string): Promise<string[]> {
  return listFiles(dir, await SyncIgnoreFilter.fromWorkspace(dir));
}

/** Compare two sets of files byte for byte; returns a description of every difference. */
async function diffTrees(aDir: string, aFiles: string[], bDir: string, bFiles: string[]): Promise<string[]> {
  const diffs: string[] = [];
  const bSet = new Set(bFiles);
  for (const f of aFiles) {
    if (!bSet.has(f)) {
      diffs.push(`missing from ${bDir}: ${f}`);
      continue;
    }
    const [a, b] = await Promise.all([readFile(join(aDir, f)), readFile(join(bDir, f))]);
    if (!a.equals(b)) diffs.push(`content differs: ${f} (${a.length} vs ${b.length} bytes)`);
  }
  const aSet = new Set(aFiles);
  for (const f of bFiles) if (!aSet.has(f)) diffs.push(`unexpected in ${bDir}: ${f}`);
  return diffs;
}

async function expectSameFiles(what: string, aDir: string, aFiles: string[], bDir: string, bFiles: string[]): Promise<void> {
  const diffs = await diffTrees(aDir, aFiles, bDir, bFiles);
  expect(diffs.length === 0, `${what} (${aFiles.length} files compared byte for byte)`);
  for (const d of diffs) console.log(`       ${d}`);
}

async function listBucket(client: S3Client): Promise<string[]> {
  const out = await client.send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix: PREFIX }));
  // `.s3-workspace-sync/workspace-id` is the library's own object (the identity its state files are bound to)
  return (out.Contents ?? []).map((o) => (o.Key ?? '').slice(PREFIX.length)).filter((k) => !k.startsWith('.s3-workspace-sync/')).sort();
}

async function main(): Promise<void> {
  const started = Date.now();
  let server: LocalS3 | undefined;
  let client: S3Client | undefined;
  const temp = await mkdtemp(join(tmpdir(), 's3ws-demo-'));
  try {
    server = await startLocalS3({ buckets: [BUCKET] });
    client = new S3Client({
      endpoint: server.endpoint,
      forcePathStyle: true,
      region: 'us-east-1',
      credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
      // The library sends Content-MD5 and verifies MD5s itself; the SDK's
      // default checksums make s3rver (and some S3-compatible servers) store
      // aws-chunked framing inside the object.
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
    });
    let requests = 0;
    client.middlewareStack.add(
      (next) => (args) => {
        requests++;
        return next(args);
      },
      { step: 'initialize', name: 'demoRequestCounter' },
    );

    console.log('s3-workspace-sync demo');
    console.log(`  local S3 server ${server.endpoint}, bucket "${BUCKET}", prefix "${PREFIX}"`);

    // ------------------------------------------------------------------ 1
    const first = join(temp, 'first');
    await cp(DEMO_WORKSPACE, first, { recursive: true });
    const sourceAll = await listFiles(first);
    const sourceSynced = await syncedFiles(first);
    const ignored = sourceAll.filter((f) => !sourceSynced.includes(f));
    const syncA = new S3WorkspaceSync({ bucket: BUCKET, prefix: PREFIX, workspaceDir: first, s3Client: client, logger: quietLogger });
    syncA.on('progress', printProgress);

    console.log(`\n1. push examples/demo-workspace (${sourceAll.length} files, copied to ${first})`);
    const push1 = await syncA.push();
    printResult('push', push1);
    const keys = await listBucket(client);
    console.log(`  ignored, stay local: ${ignored.join(', ')}`);
    expect(push1.success && push1.uploadedFiles === sourceSynced.length, `uploaded the ${sourceSynced.length} synced files`);
    expect(
      keys.length === sourceSynced.length && keys.every((k, i) => k === sourceSynced[i]),
      `bucket holds exactly those ${sourceSynced.length} objects (none of the ${ignored.length} ignored files)`,
    );

    // ------------------------------------------------------------------ 2
    const second = join(temp, 'second'); // does not exist yet: pull() creates it
    const syncB = new S3WorkspaceSync({ bucket: BUCKET, prefix: PREFIX, workspaceDir: second, s3Client: client, logger: quietLogger });
    syncB.on('progress', printProgress);

    console.log(`\n2. pull into a fresh directory with a new instance (${second})`);
    const pull1 = await syncB.pull();
    printResult('pull', pull1);
    expect(pull1.success && pull1.downloadedFiles === sourceSynced.length, `downloaded ${sourceSynced.length} files`);
    const repoSynced = await syncedFiles(DEMO_WORKSPACE);
    await expectSameFiles(
      'pulled copy == synced files of examples/demo-workspace',
      DEMO_WORKSPACE,
      repoSynced,
      second,
      await listFiles(second),
    );

    // ------------------------------------------------------------------ 3
    console.log('\n3. in the pulled copy: modify notes/2026-11-20.md, add notes/2026-11-21.md, delete notes/todo.md; push');
    await appendFile(join(second, 'notes/2026-11-20.md'), '- Follow-up: the transcript confirms Q4 guidance.\n');
    await writeFile(join(second, 'notes/2026-11-21.md'), '# 2026-11-21\n\n- Compared guidance with last year: unchanged.\n');
    await unlink(join(second, 'notes/todo.md'));
    const push2 = await syncB.push();
    printResult('push', push2);
    expect(push2.success && push2.uploadedFiles === 2 && push2.deletedFiles === 1, 'exactly 2 uploads + 1 delete');

    // ------------------------------------------------------------------ 4
    console.log('\n4. pull into the first copy (same instance as step 1)');
    const pull2 = await syncA.pull();
    printResult('pull', pull2);
    expect(pull2.success && pull2.downloadedFiles === 2 && pull2.deletedFiles === 1, 'exactly 2 downloads + 1 delete');

    // ------------------------------------------------------------------ 5
    console.log('\n5. push the first copy again, nothing changed');
    const before = requests;
    const push3 = await syncA.push();
    printResult('push', push3);
    const made = requests - before;
    expect(push3.success && push3.uploadedFiles === 0 && push3.deletedFiles === 0, 'nothing uploaded, nothing deleted');
    expect(made === 0, `${made} S3 requests (the instance's snapshot answers from local stat() calls)`);

    console.log('\n   ...and from a new instance, as after a process restart (it loads the state file)');
    const before2 = requests;
    const push4 = await new S3WorkspaceSync({ bucket: BUCKET, prefix: PREFIX, workspaceDir: first, s3Client: client, logger: quietLogger }).push();
    printResult('push', push4);
    const made2 = requests - before2;
    expect(push4.success && push4.uploadedFiles === 0 && push4.hashedFiles === 0, 'nothing uploaded, no file re-hashed');
    expect(made2 === 1, `${made2} S3 request (the snapshot was persisted in .s3-workspace-sync/; one HEAD checks it belongs to this bucket)`);

    // ------------------------------------------------------------------ 6
    console.log('\n6. verify');
    const firstSynced = await syncedFiles(first);
    await expectSameFiles('first copy (minus ignored files) == pulled copy', first, firstSynced, second, await listFiles(second));
    const stillThere = (await listFiles(first)).filter((f) => ignored.includes(f));
    expect(stillThere.length === ignored.length, `the ${ignored.length} ignored files in the first copy were left alone`);
    const finalKeys = await listBucket(client);
    expect(
      finalKeys.length === firstSynced.length && finalKeys.every((k, i) => k === firstSynced[i]),
      `bucket == synced files (${finalKeys.length} objects)`,
    );
  } catch (error) {
    problems.push(`unexpected error: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
    console.error(`\n${problems[problems.length - 1]}`);
  } finally {
    client?.destroy();
    await server?.stop();
    await rm(temp, { recursive: true, force: true });
  }

  const seconds = ((Date.now() - started) / 1000).toFixed(1);
  if (problems.length === 0) {
    console.log(`\nPASS: pushed, pulled, synced incrementally; both copies and the bucket hold identical files (${seconds} s)`);
    process.exit(0);
  }
  console.log(`\nFAIL: ${problems.length} check(s) failed:`);
  for (const p of problems) console.log(`  - ${p}`);
  process.exit(1);
}

await main();
