// Disk full while saving the state file (real ENOSPC, on a small tmpfs; Linux
// and root only, skipped with the reason otherwise).
//
// README, "The state file": saving is best effort; a state file that cannot be
// written is logged with `warn`, the old one is removed so that stale state is
// never used, and the sync still succeeds. The next process then has no state,
// and a pull by an instance that cannot prove a local file was in sync never
// deletes or overwrites it in place: it moves it into
// `<workspace>/.s3-workspace-sync/recovered/<stamp>/<path>` (result.movedAside).
//
// 1. `stateDir` on a full tmpfs, workspace on the normal disk.
// 2. The whole workspace on a tmpfs filled by an ignored `agent.log`, leaving
//    room for the download but not for the state's journal line (150 of its
//    200 entries changed: files touched, same bytes).
// In both: the pull itself succeeds, the failed save is a warning naming
// ENOSPC, the state file is absent or complete and valid afterwards (never
// truncated, no temp file left), and after the space is freed a new instance's
// pull keeps the unpushed `notes.txt` and edit (in place or moved aside).
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { closeSync, openSync, statfsSync, truncateSync, writeSync } from 'node:fs';
import { lstat, mkdir, readdir, readFile, stat, unlink, utimes, writeFile } from 'node:fs/promises';
import path from 'node:path';

import { PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { describe, expect, it, onTestFinished } from 'vitest';

import { S3WorkspaceSync, type SyncLogger, type SyncResult } from '../../src/index.js';
import { fixture, md5Base64, type Fixture } from '../helpers/sync-fixture.js';
import { makeTempDir } from '../helpers/tree.js';

const PREFIX = 'ws/';
const STATE_DIR = '.s3-workspace-sync';
/** Upload metadata: downloads get this mtime (2023), so no state entry is racy. */
const OLD_MTIME = '1700000000.000';
const NOTES = 'notes.txt';
const NOTES_BYTES = Buffer.from('unpushed notes: only this workspace has them\n'.repeat(10));
const EDIT_SUFFIX = Buffer.from('// unpushed edit\n'.repeat(4));

// ---------------------------------------------------------------- tmpfs

/**
 * A directory with a tmpfs of `size` mounted on it, unmounted (lazily if busy)
 * and removed when the test finishes; a string is the reason it cannot be done.
 */
async function tmpfs(size: string): Promise<{ parent: string; mount: string } | string> {
  if (process.platform !== 'linux') return `tmpfs needs Linux (this is ${process.platform})`;
  if (process.getuid?.() !== 0) return 'mounting a tmpfs needs root';
  const t = await makeTempDir('s3ws-state-enospc-');
  const mount = path.join(t.dir, 'mnt');
  await mkdir(mount);
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${size}`, 'tmpfs', mount], { stdio: 'pipe' });
  } catch (error) {
    await t.cleanup();
    return `mount -t tmpfs failed: ${String((error as { stderr?: Buffer }).stderr ?? error).trim()}`;
  }
  onTestFinished(async () => {
    try {
      execFileSync('umount', [mount], { stdio: 'pipe' });
    } catch {
      execFileSync('umount', ['-l', mount], { stdio: 'pipe' }); // busy: detach now, freed when unused
    }
    await t.cleanup();
  });
  return { parent: t.dir, mount };
}

/** Write `file` until the filesystem answers ENOSPC; returns its size. */
function fillUntilFull(file: string): number {
  const fd = openSync(file, 'w');
  const chunk = Buffer.alloc(64 * 1024, 0x2e);
  let size = 0;
  try {
    for (;;) {
      try {
        size += writeSync(fd, chunk);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === 'ENOSPC') return size;
        throw error;
      }
    }
  } finally {
    closeSync(fd);
  }
}

// ---------------------------------------------------------------- scenario

function capturingLogger(): SyncLogger & { warnings: string[] } {
  const warnings: string[] = [];
  return {
    warnings,
    debug: () => undefined,
    info: () => undefined,
    warn: (message: string) => warnings.push(message),
    error: (message: string) => warnings.push(`[error] ${message}`),
  };
}

async function putWithMtime(client: S3Client, bucket: string, rel: string, body: Buffer): Promise<void> {
  await client.send(
    new PutObjectCommand({ Bucket: bucket, Key: PREFIX + rel, Body: body, Metadata: { md5chksum: md5Base64(body), mtime: OLD_MTIME } }),
  );
}

async function seed(f: Fixture, files: Map<string, Buffer>): Promise<void> {
  const entries = [...files];
  let next = 0;
  await Promise.all(
    Array.from({ length: 16 }, async () => {
      while (next < entries.length) {
        const [rel, body] = entries[next++]!;
        await putWithMtime(f.other, f.bucket, rel, body);
      }
    }),
  );
}

/** Unpushed local work: a new notes.txt and an edit of `edited` (other size), mtimes an hour ago. */
async function addUnpushedWork(ws: string, edited: string, original: Buffer): Promise<Buffer> {
  const editedBytes = Buffer.concat([original, EDIT_SUFFIX]);
  await writeFile(path.join(ws, NOTES), NOTES_BYTES);
  await writeFile(path.join(ws, edited), editedBytes);
  const past = new Date(Date.now() - 3_600_000);
  await utimes(path.join(ws, NOTES), past, past);
  await utimes(path.join(ws, edited), past, past);
  return editedBytes;
}

function md5Hex(data: Buffer): string {
  return createHash('md5').update(data).digest('hex');
}

/**
 * The state directory holds no temp file, and every `*.json` in it is complete
 * JSON whose entries still hold (an entry whose size, mtime, ctime and inode
 * equal the file's lstat records the file's MD5). Returns the state files.
 */
async function expectStateAbsentOrValid(stateDir: string, ws: string, tag: string): Promise<string[]> {
  const names = await readdir(stateDir).catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT') return [] as string[];
    throw error;
  });
  expect(names.filter((n) => n.endsWith('.tmp')), `${tag}: temp state files left behind`).toEqual([]);
  const states = names.filter((n) => n.endsWith('.json'));
  for (const name of states) {
    const text = await readFile(path.join(stateDir, name), 'utf8');
    let doc: { entries?: Record<string, unknown> };
    try {
      doc = JSON.parse(text) as typeof doc;
    } catch (error) {
      throw new Error(`${tag}: ${name} is not complete JSON (${text.length} bytes): ${String(error)}`);
    }
    expect(typeof doc.entries, `${tag}: ${name} has no entries`).toBe('object');
    const wrong: string[] = [];
    for (const [rel, row] of Object.entries(doc.entries ?? {})) {
      const [size, mtimeMs, ctimeMs, ino, md5] = row as [number, number, number, number, string];
      const st = await lstat(path.join(ws, rel)).catch(() => undefined);
      if (st === undefined || st.size !== size || st.mtimeMs !== mtimeMs || st.ctimeMs !== ctimeMs || st.ino !== ino) continue;
      const actual = md5Hex(await readFile(path.join(ws, rel)));
      if (actual !== md5) wrong.push(`${rel}: recorded ${md5}, file ${actual}`);
    }
    expect(wrong, `${tag}: ${name} has entries that match the file's stat but not its MD5`).toEqual([]);
  }
  return states;
}

/** Where `bytes` of `rel` survive: 'in place', the recovered copy's absolute path, or undefined (lost). */
async function locate(ws: string, rel: string, bytes: Buffer): Promise<string | undefined> {
  if ((await readFile(path.join(ws, rel)).catch(() => undefined))?.equals(bytes)) return 'in place';
  const recovered = path.join(ws, STATE_DIR, 'recovered');
  for (const stamp of (await readdir(recovered).catch(() => [] as string[])).sort()) {
    const candidate = path.join(recovered, stamp, ...rel.split('/'));
    if ((await readFile(candidate).catch(() => undefined))?.equals(bytes)) return candidate;
  }
  return undefined;
}

function movedAsideOf(result: SyncResult): { path: string; movedTo: string }[] {
  return (result as SyncResult & { movedAside?: { path: string; movedTo: string }[] }).movedAside ?? [];
}

/** After the space is back: a new instance's pull succeeds and the unpushed bytes survive (in place, or moved aside and reported). */
async function expectUnpushedWorkSurvives(
  result: SyncResult,
  ws: string,
  unpushed: [string, Buffer][],
  tag: string,
): Promise<string[]> {
  expect(result.failedFiles, tag).toEqual([]);
  expect(result.success, tag).toBe(true);
  const where: string[] = [];
  for (const [rel, bytes] of unpushed) {
    const at = await locate(ws, rel, bytes);
    const now = await readFile(path.join(ws, rel)).then(
      (b) => `${b.length} bytes`,
      (error: NodeJS.ErrnoException) => String(error.code),
    );
    expect(at, `${tag}: the unpushed bytes of ${rel} are gone (neither at ${rel} nor under ${STATE_DIR}/recovered/*/${rel}); at ${rel} now: ${now}`).toBeDefined();
    if (at !== 'in place') {
      expect(movedAsideOf(result), `${tag}: ${rel} was moved to ${at}; result.movedAside must say so`).toContainEqual(expect.objectContaining({ path: rel, movedTo: at, reason: expect.any(String) }));
    }
    where.push(`${rel}: ${at === 'in place' ? 'in place' : 'moved aside'}`);
  }
  return where;
}

// ---------------------------------------------------------------- tests

describe('ENOSPC while saving the state file', () => {
  it('stateDir on a full tmpfs: the pull succeeds, the failed save is a warning, the state is never truncated, and unpushed work survives the next pull', { timeout: 30_000 }, async (ctx) => {
    const disk = await tmpfs('256k');
    if (typeof disk === 'string') {
      console.log(`[state-enospc] skipped: ${disk}`);
      ctx.skip(disk);
      return;
    }
    const f = await fixture();
    const files = new Map<string, Buffer>();
    for (let i = 0; i < 20; i++) files.set(`src/f${i}.txt`, Buffer.from(`file ${i}\n`.repeat(10 + i)));
    await seed(f, files);
    const ws = path.join(disk.parent, 'ws'); // normal disk
    const stateDir = path.join(disk.mount, 'state'); // the tmpfs
    const make = (logger: SyncLogger): S3WorkspaceSync =>
      new S3WorkspaceSync({ bucket: f.bucket, prefix: PREFIX, workspaceDir: ws, stateDir, s3Client: f.client, logger });

    const first = await make(capturingLogger()).pull();
    expect(first).toMatchObject({ success: true, downloadedFiles: 20 });
    expect(await expectStateAbsentOrValid(stateDir, ws, 'after the first pull'), 'a state file on the tmpfs').toHaveLength(1);

    const edited = 'src/f3.txt';
    const editedBytes = await addUnpushedWork(ws, edited, files.get(edited)!);
    const filler = path.join(disk.mount, 'filler');
    fillUntilFull(filler);
    expect(statfsSync(disk.mount).bavail, 'the tmpfs is full').toBe(0);
    const changed = 'src/f7.txt';
    const changedBytes = Buffer.from('changed by another writer\n'.repeat(20));
    await putWithMtime(f.other, f.bucket, changed, changedBytes);

    // A new instance (it loads the state, which needs no space) pulls: the download lands on the normal disk, the save fails.
    const logger = capturingLogger();
    const second = await make(logger).pull();
    expect(second.failedFiles).toEqual([]);
    expect(second.success).toBe(true);
    expect(second.downloadedFiles).toBe(1);
    expect((await readFile(path.join(ws, changed))).equals(changedBytes), 'the download landed').toBe(true);
    expect(second.keptLocal.map((k) => k.path).sort(), 'unpushed work kept by an instance with a trusted state').toEqual([NOTES, edited].sort());
    expect(logger.warnings.filter((w) => /ENOSPC|no space left/i.test(w)), `a warning names ENOSPC; warnings: ${JSON.stringify(logger.warnings)}`).not.toEqual([]);
    const left = await expectStateAbsentOrValid(stateDir, ws, 'after the failed save');
    console.log(`[state-enospc] stateDir on a full tmpfs: the save failed (${logger.warnings.find((w) => /ENOSPC|no space left/i.test(w))}); state files left: ${JSON.stringify(left)}`);

    // Space is back. A new instance pulls again: nothing unpushed is lost.
    await unlink(filler);
    const third = await make(capturingLogger()).pull();
    const where = await expectUnpushedWorkSurvives(third, ws, [
      [NOTES, NOTES_BYTES],
      [edited, editedBytes],
    ], 'the pull after the space was freed');
    expect((await readFile(path.join(ws, changed))).equals(changedBytes)).toBe(true);
    expect(await expectStateAbsentOrValid(stateDir, ws, 'after the last pull'), 'the last pull saved its state').toHaveLength(1);
    console.log(`[state-enospc] stateDir on a full tmpfs: the next pull: ${where.join(', ')}; moved aside ${movedAsideOf(third).length}`);
  });

  // Deterministic because tmpfs accounts whole 4 KiB pages exactly: the filler
  // is written until ENOSPC, then truncated to give back exactly FREE_PAGES
  // pages (checked with statfs); the download needs one page (its temp file,
  // and the old file's page is released by the rename), the new state needs
  // more pages than are free (checked against the first state's size).
  it('workspace on a tmpfs filled by an ignored agent.log: room for the download, not for the state', { timeout: 30_000 }, async (ctx) => {
    const FREE_PAGES = 2;
    const disk = await tmpfs('2m');
    if (typeof disk === 'string') {
      console.log(`[state-enospc] skipped: ${disk}`);
      ctx.skip(disk);
      return;
    }
    const f = await fixture();
    const files = new Map<string, Buffer>();
    for (let i = 0; i < 200; i++) files.set(`src/module-${i % 20}/component-file-${i}.ts`, Buffer.from(`export const value${i} = ${i};\n`.repeat(4)));
    await seed(f, files);
    const ws = path.join(disk.mount, 'ws');
    const make = (logger: SyncLogger): S3WorkspaceSync =>
      new S3WorkspaceSync({ bucket: f.bucket, prefix: PREFIX, workspaceDir: ws, s3Client: f.client, logger, downloadConcurrency: 1 });

    const first = await make(capturingLogger()).pull();
    expect(first).toMatchObject({ success: true, downloadedFiles: 200 });
    const stateDir = path.join(ws, STATE_DIR);
    const [stateName] = await expectStateAbsentOrValid(stateDir, ws, 'after the first pull');
    const statePages = Math.ceil((await stat(path.join(stateDir, stateName!))).size / 4096);
    expect(statePages, 'the state needs more pages than will be free').toBeGreaterThan(FREE_PAGES + 1);

    const edited = 'src/module-3/component-file-3.ts';
    const editedBytes = await addUnpushedWork(ws, edited, files.get(edited)!);
    const log = path.join(ws, 'agent.log'); // ignored by default (*.log)
    const logSize = fillUntilFull(log);
    truncateSync(log, (Math.ceil(logSize / 4096) - FREE_PAGES) * 4096);
    expect(statfsSync(disk.mount).bsize).toBe(4096);
    expect(statfsSync(disk.mount).bavail, `${FREE_PAGES} pages free`).toBe(FREE_PAGES);
    const changed = 'src/module-7/component-file-7.ts';
    const changedBytes = Buffer.from('export const changedRemotely = true;\n'.repeat(20)); // < 4 KiB: one page
    await putWithMtime(f.other, f.bucket, changed, changedBytes);
    // 150 files touched (same bytes, another mtime): the pull re-hashes them and records their new stat, so
    // the state's journal line (150 entries) needs more pages than are free.
    const touched = new Date(Date.now() - 7_200_000);
    for (let i = 50; i < 200; i++) await utimes(path.join(ws, `src/module-${i % 20}/component-file-${i}.ts`), touched, touched);

    const logger = capturingLogger();
    const second = await make(logger).pull();
    expect(second.failedFiles).toEqual([]);
    expect(second.success).toBe(true);
    expect(second.downloadedFiles).toBe(1);
    expect((await readFile(path.join(ws, changed))).equals(changedBytes), 'the download landed').toBe(true);
    expect(logger.warnings.filter((w) => /ENOSPC|no space left/i.test(w)), `a warning names ENOSPC; warnings: ${JSON.stringify(logger.warnings)}`).not.toEqual([]);
    const left = await expectStateAbsentOrValid(stateDir, ws, 'after the failed save');
    console.log(`[state-enospc] workspace on a full tmpfs: state of ${statePages} pages, ${FREE_PAGES} free: the save failed; state files left: ${JSON.stringify(left)}`);

    // The agent's log is rotated away: space is back.
    await unlink(log);
    const third = await make(capturingLogger()).pull();
    const where = await expectUnpushedWorkSurvives(third, ws, [
      [NOTES, NOTES_BYTES],
      [edited, editedBytes],
    ], 'the pull after the space was freed');
    expect((await readFile(path.join(ws, changed))).equals(changedBytes)).toBe(true);
    expect(await expectStateAbsentOrValid(stateDir, ws, 'after the last pull'), 'the last pull saved its state').toHaveLength(1);
    console.log(`[state-enospc] workspace on a full tmpfs: the next pull: ${where.join(', ')}; moved aside ${movedAsideOf(third).length}`);
  });
});
