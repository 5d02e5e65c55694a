// Helpers for building and comparing local directory trees in tests.
//
//   const { dir, cleanup } = await makeTempDir();
//   onTestFinished(cleanup);            // or afterEach(cleanup)
//   await writeTree(dir, { 'a.txt': 'hello', 'sub/b.bin': Buffer.from([0, 1]) });
//   expect(await readTree(dir)).toEqual({ 'a.txt': Buffer.from('hello'), ... });
//   await expectSameTree(dir, otherDir);

import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, realpath, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';

export interface TempDir {
  /** Absolute, symlink-free path of the new empty directory. */
  dir: string;
  /** Remove the directory and everything in it. Safe to call more than once. */
  cleanup: () => Promise<void>;
}

/** Create an empty directory under os.tmpdir(). Pass `cleanup` to onTestFinished/afterEach. */
export async function makeTempDir(prefix = 's3ws-test-'): Promise<TempDir> {
  // realpath: on macOS os.tmpdir() is behind a symlink (/var -> /private/var).
  const dir = await realpath(await mkdtemp(path.join(tmpdir(), prefix)));
  return {
    dir,
    cleanup: () => rm(dir, { recursive: true, force: true, maxRetries: 3 }),
  };
}

function checkRelative(rel: string): void {
  const parts = rel.split('/');
  if (
    rel === '' ||
    rel.includes('\\') ||
    rel.includes('\0') ||
    path.posix.isAbsolute(rel) ||
    parts.some((p) => p === '' || p === '.' || p === '..')
  ) {
    throw new Error(`writeTree: not a plain relative posix path: ${JSON.stringify(rel)}`);
  }
}

/** Write files (posix relative path -> content) under `root`, creating parent directories. */
export async function writeTree(root: string, files: Record<string, string | Buffer>): Promise<void> {
  for (const [rel, content] of Object.entries(files)) {
    checkRelative(rel);
    const target = path.join(root, ...rel.split('/'));
    await mkdir(path.dirname(target), { recursive: true });
    await writeFile(target, content);
  }
}

export interface ReadTreeOptions {
  /** Return true to leave out a file (called with its posix relative path). */
  ignore?: (rel: string) => boolean;
  /** Include the library's state directory (`.s3-workspace-sync/` at the root), which is not workspace content. Default false. */
  includeState?: boolean;
}

function byteOrder(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a), Buffer.from(b));
}

/**
 * Every regular file under `root` (recursively) as posix relative path ->
 * content, with keys inserted in byte order. Symlinks, sockets, etc. are
 * skipped (and symlinked directories are not followed); empty directories
 * do not appear. The library's state directory is left out unless
 * `includeState` is set.
 */
export async function readTree(root: string, options: ReadTreeOptions = {}): Promise<Record<string, Buffer>> {
  const found: string[] = [];
  const walk = async (abs: string, rel: string): Promise<void> => {
    for (const entry of await readdir(abs, { withFileTypes: true })) {
      const childRel = rel ? `${rel}/${entry.name}` : entry.name;
      if (childRel === '.s3-workspace-sync' && options.includeState !== true) continue;
      if (entry.isDirectory()) await walk(path.join(abs, entry.name), childRel);
      else if (entry.isFile() && !options.ignore?.(childRel)) found.push(childRel);
    }
  };
  await walk(root, '');
  found.sort(byteOrder);
  const entries: [string, Buffer][] = [];
  for (const rel of found) entries.push([rel, await readFile(path.join(root, ...rel.split('/')))]);
  // fromEntries defines own properties, so even a file named "__proto__" is kept.
  return Object.fromEntries(entries);
}

function describeBytes(buf: Buffer): string {
  const sha = createHash('sha256').update(buf).digest('hex').slice(0, 12);
  return `${buf.length} bytes, sha256 ${sha}…`;
}

function preview(buf: Buffer, at: number): string {
  const start = Math.max(0, at - 8);
  const slice = buf.subarray(start, at + 24);
  return `${JSON.stringify(slice.toString('latin1'))} (from offset ${start})`;
}

/**
 * Assert that directories `a` and `b` hold the same regular files with the
 * same bytes. On failure the error lists missing, extra and differing files.
 */
export async function expectSameTree(a: string, b: string, options: ReadTreeOptions = {}): Promise<void> {
  const [left, right] = await Promise.all([readTree(a, options), readTree(b, options)]);
  const onlyLeft: string[] = [];
  const onlyRight: string[] = [];
  const differ: string[] = [];
  const has = (o: object, k: string) => Object.prototype.hasOwnProperty.call(o, k);
  for (const rel of Object.keys(left)) {
    if (!has(right, rel)) onlyLeft.push(rel);
    else {
      const x = left[rel]!;
      const y = right[rel]!;
      if (!x.equals(y)) {
        let i = 0;
        while (i < x.length && i < y.length && x[i] === y[i]) i++;
        differ.push(
          `  ~ ${rel}: first difference at byte ${i}\n` +
            `      ${a}: ${describeBytes(x)} ${preview(x, i)}\n` +
            `      ${b}: ${describeBytes(y)} ${preview(y, i)}`,
        );
      }
    }
  }
  for (const rel of Object.keys(right)) if (!has(left, rel)) onlyRight.push(rel);
  if (onlyLeft.length + onlyRight.length + differ.length === 0) return;

  const limit = (lines: string[]) =>
    lines.length > 50 ? [...lines.slice(0, 50), `  … and ${lines.length - 50} more`] : lines;
  const sections: string[] = [];
  if (onlyLeft.length) sections.push(`only in ${a} (${onlyLeft.length}):`, ...limit(onlyLeft.map((r) => `  - ${r}`)));
  if (onlyRight.length) sections.push(`only in ${b} (${onlyRight.length}):`, ...limit(onlyRight.map((r) => `  + ${r}`)));
  if (differ.length) sections.push(`content differs (${differ.length}):`, ...limit(differ));
  const counts = `${Object.keys(left).length} vs ${Object.keys(right).length} files`;
  throw new Error(`directory trees differ (${counts})\n${sections.join('\n')}`);
}
