import type { Dirent, Stats } from 'node:fs';
import { lstatSync } from 'node:fs';
import { lstat, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { parentDirs, storagePathProblem } from '../core/paths.js';
import type { LocalFile } from '../core/model.js';
import type { SyncIgnoreFilter } from '../SyncIgnoreFilter.js';
import { TEMP_SUFFIX } from '../core/names.js';
import type { SkippedFile } from '../core/model.js';

/** What a walk of the workspace found. */
export interface ScanResult {
  /** Regular, synced (not ignored) files by workspace-relative POSIX path. */
  files: Map<string, LocalFile>;
  /** Synced directories (relative paths). */
  dirs: Set<string>;
  /** Entries that are neither synced nor ignored: symlinks, special files, unreadable dirs… */
  skipped: SkippedFile[];
  /** Leftover temporary download files (from an interrupted pull). */
  tempFiles: string[];
  /** Synchronous stats were fast on this filesystem (local disk, warm cache): small files can use synchronous I/O. */
  fastFs: boolean;
}

/** How many directories are read at once. */
const DIR_CONCURRENCY = 16;

/**
 * A synchronous lstat of a cached inode on a local disk costs a few µs; the
 * promise version costs tens of µs of CPU (thread pool, promise, callback).
 * So files are stat'ed synchronously — unless the filesystem turns out to be
 * slow (NFS, EFS, a cold disk), where parallel asynchronous stats win: the
 * first {@link PROBE_STATS} stats of a scan decide.
 */
const PROBE_STATS = 64;
const SLOW_STAT_US = 100;

class StatMode {
  private probed = 0;
  private probeNs = 0n;
  sync = true;

  /** Time one synchronous stat (while probing) and switch to async if they are slow. */
  measure<T>(fn: () => T): T {
    if (this.probed >= PROBE_STATS) return fn();
    const t0 = process.hrtime.bigint();
    try {
      return fn();
    } finally {
      this.probeNs += process.hrtime.bigint() - t0;
      if (++this.probed === PROBE_STATS && this.probeNs / BigInt(PROBE_STATS) > BigInt(SLOW_STAT_US * 1000)) this.sync = false;
    }
  }
}

/** Stat fields the snapshot compares. */
export function toLocalFile(path: string, st: Stats): LocalFile {
  return { path, size: st.size, mtimeMs: st.mtimeMs, ctimeMs: st.ctimeMs, ino: st.ino, mode: st.mode & 0o7777 };
}

/**
 * Walk `root` without following symbolic links. Ignored directories are not
 * entered; ignored files are not reported. Symlinks and special files are
 * reported as skipped; files that vanish during the walk are left out.
 */
export async function scanWorkspace(root: string, filter: SyncIgnoreFilter, signal?: AbortSignal): Promise<ScanResult> {
  return walk(root, filter, [''], emptyResult(), signal);
}

function emptyResult(): ScanResult {
  return { files: new Map(), dirs: new Set(), skipped: [], tempFiles: [], fastFs: true };
}

/**
 * Look at the given workspace paths only (files, or directories with
 * everything under them), as {@link scanWorkspace} would have found them:
 * the same ignore rules, the same skips, no symbolic link followed — a path
 * under a symlinked or missing directory is reported as the full walk would
 * (the blocking entry skipped, or nothing). Paths that do not exist are
 * simply absent. `paths` are valid workspace paths (see `storagePathProblem`).
 */
export async function scanPaths(root: string, filter: SyncIgnoreFilter, paths: Iterable<string>, signal?: AbortSignal): Promise<ScanResult> {
  const scope = topmost(paths);
  if (scope.includes('')) return scanWorkspace(root, filter, signal);
  const result = emptyResult();
  const dirs: string[] = [];
  /** What each ancestor directory turned out to be: a directory to go on with, or not (reported once). */
  const ancestors = new Map<string, boolean>();
  const usable = async (dir: string): Promise<boolean> => {
    const known = ancestors.get(dir);
    if (known !== undefined) return known;
    let ok = false;
    if (!filter.ignores(dir, true)) {
      const entry = await lstatEntry(join(root, dir));
      if (entry.kind === 'dir') ok = true;
      else if (entry.kind !== 'missing') classify(result, dir, entry, filter);
    }
    ancestors.set(dir, ok);
    return ok;
  };
  for (const path of scope) {
    signal?.throwIfAborted();
    let reachable = true;
    for (const dir of parentDirs(path)) {
      if (!(await usable(dir))) {
        reachable = false;
        break;
      }
    }
    if (!reachable) continue;
    const entry = await lstatEntry(join(root, path));
    if (entry.kind === 'missing') continue;
    if (entry.kind === 'dir') {
      if (filter.ignores(path, true)) continue;
      result.dirs.add(path);
      dirs.push(path);
      continue;
    }
    classify(result, path, entry, filter);
  }
  return dirs.length === 0 ? result : walk(root, filter, dirs, result, signal);
}

type Entry = { kind: 'dir' } | { kind: 'missing' } | { kind: 'file'; st: Stats } | { kind: 'symlink' } | { kind: 'other' } | { kind: 'error'; code: string };

async function lstatEntry(path: string): Promise<Entry> {
  try {
    const st = await lstat(path);
    if (st.isDirectory()) return { kind: 'dir' };
    if (st.isFile()) return { kind: 'file', st };
    return { kind: st.isSymbolicLink() ? 'symlink' : 'other' };
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? 'error';
    return code === 'ENOENT' || code === 'ENOTDIR' ? { kind: 'missing' } : { kind: 'error', code };
  }
}

/**
 * Where a non-directory entry goes, for the walk and for {@link scanPaths}
 * alike: a leftover download to `tempFiles`, ignored ones nowhere, symlinks,
 * special files and unstorable names to `skipped`. `true`: a synced regular
 * file, for the caller to stat and record.
 */
function sortEntry(out: ScanResult, rel: string, kind: 'file' | 'symlink' | 'other', filter: SyncIgnoreFilter): boolean {
  if (kind === 'file' && rel.endsWith(TEMP_SUFFIX)) {
    out.tempFiles.push(rel);
    return false;
  }
  if (filter.ignores(rel)) return false;
  if (kind !== 'file') {
    out.skipped.push({ path: rel, reason: kind === 'symlink' ? 'symlink' : 'not-a-regular-file' });
    return false;
  }
  const problem = storagePathProblem(rel);
  if (problem !== undefined) {
    out.skipped.push({ path: rel, reason: `invalid-name: ${problem}` });
    return false;
  }
  return true;
}

/** Record a non-directory entry {@link scanPaths} stat'ed, the way the walk does. */
function classify(out: ScanResult, rel: string, entry: Exclude<Entry, { kind: 'dir' | 'missing' }>, filter: SyncIgnoreFilter): void {
  if (entry.kind === 'error') {
    if (!filter.ignores(rel)) out.skipped.push({ path: rel, reason: `unreadable: ${entry.code}` });
    return;
  }
  if (sortEntry(out, rel, entry.kind, filter) && entry.kind === 'file') out.files.set(rel, toLocalFile(rel, entry.st));
}

/** The paths without those under another of them (`a/b` goes when `a` is there), without duplicates. */
export function topmost(paths: Iterable<string>): string[] {
  const all = new Set(paths);
  if (all.has('')) return [''];
  return [...all].filter((p) => !parentDirs(p).some((d) => all.has(d)));
}

async function walk(root: string, filter: SyncIgnoreFilter, start: string[], result: ScanResult, signal: AbortSignal | undefined): Promise<ScanResult> {
  const queue: string[] = [...start];
  const mode = new StatMode();
  let active = 0;
  let failure: unknown;

  await new Promise<void>((resolve) => {
    const pump = (): void => {
      if (failure !== undefined) {
        if (active === 0) resolve();
        return;
      }
      while (active < DIR_CONCURRENCY && queue.length > 0) {
        const dir = queue.shift() as string;
        active++;
        scanDir(root, dir, filter, result, queue, mode, signal).then(
          () => {
            active--;
            pump();
          },
          (error: unknown) => {
            active--;
            failure ??= error;
            pump();
          },
        );
      }
      if (active === 0 && queue.length === 0) resolve();
    };
    signal?.throwIfAborted();
    pump();
  });
  if (failure !== undefined) throw failure;
  result.fastFs = mode.sync;
  return result;
}

async function scanDir(
  root: string,
  dir: string,
  filter: SyncIgnoreFilter,
  out: ScanResult,
  queue: string[],
  mode: StatMode,
  signal: AbortSignal | undefined,
): Promise<void> {
  signal?.throwIfAborted();
  let entries: Dirent[];
  try {
    entries = await readdir(dir === '' ? root : join(root, dir), { withFileTypes: true });
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (dir === '') throw error;
    if (code === 'ENOENT' || code === 'ENOTDIR') return; // vanished during the walk
    out.skipped.push({ path: dir, reason: `unreadable-directory: ${code ?? 'error'}` });
    return;
  }
  const stats: Promise<void>[] = [];
  for (const entry of entries) {
    const rel = dir === '' ? entry.name : `${dir}/${entry.name}`;
    if (entry.isDirectory()) {
      if (filter.ignores(rel, true)) continue;
      const problem = storagePathProblem(rel);
      if (problem !== undefined) {
        out.skipped.push({ path: rel, reason: `invalid-name: ${problem}` });
        continue;
      }
      out.dirs.add(rel);
      queue.push(rel);
      continue;
    }
    if (!sortEntry(out, rel, entry.isFile() ? 'file' : entry.isSymbolicLink() ? 'symlink' : 'other', filter)) continue;
    const found = (st: Stats): void => {
      if (st.isFile()) out.files.set(rel, toLocalFile(rel, st));
    };
    const failed = (error: NodeJS.ErrnoException): void => {
      if (error.code !== 'ENOENT') out.skipped.push({ path: rel, reason: `unreadable: ${error.code ?? 'error'}` });
    };
    if (mode.sync) {
      try {
        found(mode.measure(() => lstatSync(join(root, rel))));
      } catch (error) {
        failed(error as NodeJS.ErrnoException);
      }
    } else {
      stats.push(lstat(join(root, rel)).then(found, failed));
    }
  }
  await Promise.all(stats);
}
