import { createHash, randomBytes } from 'node:crypto';
import { closeSync, constants, fstatSync, futimesSync, linkSync, lstatSync, openSync, renameSync, unlinkSync, writeSync, type Stats } from 'node:fs';
import { lstat, mkdir, open, rmdir, unlink, type FileHandle } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { LocalFile } from '../core/model.js';
import { LocalFileError } from '../errors.js';
import { TEMP_SUFFIX } from '../core/names.js';
import { calculateFileHash } from './hash.js';
import { assertRealParent } from './path-guard.js';
import type { RecoveryArea } from './RecoveryArea.js';

/**
 * What a pull expects at a path it writes or deletes, from its plan: the
 * local file it scanned there (`undefined`: none), and whether that file is
 * proven to be what the last sync recorded.
 */
export interface Expected {
  local: LocalFile | undefined;
  /**
   * The MD5 the proof claims for the local file (its last-synced content),
   * when it is proven. The replaced or deleted file is removed only once its
   * content is confirmed to be this; otherwise it stays in the recovery area.
   */
  proven: string | undefined;
}

/** Code of the error raised when a path changed locally between the scan and the write or deletion: it is kept. */
export const CHANGED_DURING_SYNC = 'CHANGED_DURING_SYNC';

/** Options of {@link WorkspaceWriter.writeAtomic}. */
export interface WriteOptions {
  /** The mtime to set, or a function giving it once the body is read (ranged downloads learn it from the first range). */
  mtimeMs?: number | (() => number | undefined) | undefined;
  signal?: AbortSignal | undefined;
  onBytes?: (n: number) => void;
  /** Sees every chunk in order (e.g. to compute multipart ETags alongside the MD5). */
  onChunk?: (chunk: Buffer) => void;
  /**
   * Computes the MD5 instead of the calling thread (an MD5 worker: see
   * HashPool): each chunk is written while it is hashed, and reused only
   * once both are done.
   */
  hash?: { update(chunk: Buffer): Promise<void>; digest(): Promise<string> } | undefined;
  /**
   * What the plan expects at the path. With it, the file never lands over
   * anything else: a path that was free is taken without replacing (a file
   * created there meanwhile is kept), a file that changed since the scan is
   * kept, and the replaced file goes through the recovery area (kept there
   * unless proven). Without it, the rename replaces whatever is there.
   */
  expected?: Expected | undefined;
}

/**
 * Writes into one workspace root without ever following a symbolic link out of
 * it: every directory on the way to a file is checked with `lstat` (once per
 * sync, cached) and created when missing.
 */
export class WorkspaceWriter {
  private readonly dirs = new Map<string, Promise<void>>();

  /** @param recovery where replaced or deleted files go first (needed for `expected` and for deletions with an expectation). */
  constructor(
    readonly root: string,
    private readonly recovery?: RecoveryArea,
  ) {}

  /** Directories checked or created in this sync (a synchronous view of `dirs`' fulfilled entries). */
  private readonly ready = new Set<string>();
  /** Temporary names: a random prefix per writer and a counter (no random bytes per file). */
  private readonly tempPrefix = randomBytes(6).toString('hex');
  private tempSeq = 0;

  /** Make sure every parent directory of `path` exists and is a real directory. */
  ensureParents(path: string): Promise<void> {
    const slash = path.lastIndexOf('/');
    if (slash < 0) return DONE;
    const dir = path.slice(0, slash);
    return this.dirs.get(dir) ?? this.ensureDir(dir);
  }

  private ensureDir(dir: string): Promise<void> {
    let pending = this.dirs.get(dir);
    if (pending === undefined) {
      const slash = dir.lastIndexOf('/');
      const parent = slash < 0 ? DONE : this.ensureDir(dir.slice(0, slash));
      pending = parent.then(() => this.checkOrCreate(dir)).then(() => {
        this.ready.add(dir);
      });
      // A failure is not cached for ever: the next sync checks again.
      this.dirs.set(dir, pending);
    }
    return pending;
  }

  /** Whether `path`'s directory is known to be checked already (then no await is needed). */
  private parentReady(path: string): boolean {
    const slash = path.lastIndexOf('/');
    return slash < 0 || this.ready.has(path.slice(0, slash));
  }

  private tempPath(target: string): string {
    return join(dirname(target), `.${this.tempPrefix}${(this.tempSeq++).toString(36)}${TEMP_SUFFIX}`);
  }

  private async checkOrCreate(dir: string): Promise<void> {
    const abs = join(this.root, dir);
    try {
      const st = await lstat(abs);
      if (st.isSymbolicLink()) throw new LocalFileError('SYMLINK_IN_PATH', dir, `"${dir}" is a symbolic link; not writing through it`);
      if (!st.isDirectory()) throw new LocalFileError('ENOTDIR', dir, `"${dir}" exists and is not a directory`);
      return;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    }
    try {
      await mkdir(abs);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      const st = await lstat(abs);
      if (!st.isDirectory()) throw new LocalFileError('ENOTDIR', dir, `"${dir}" exists and is not a directory`);
    }
  }

  /**
   * Stream `body` into a temporary file next to `path`, check its length and
   * MD5, set its mtime, then rename it over `path`. On any failure the temporary
   * file is removed and `path` is untouched.
   *
   * Symlinks: parents are checked with lstat when first created or seen
   * (cached per sync), and the file's directory is resolved again right
   * before and right after the temporary file is created, so a directory
   * swapped for a symlink mid-sync is refused before a byte is written. (A
   * swap after that makes the rename fail: the temporary file's path no longer
   * resolves.)
   *
   * A `Buffer` body (a small download read whole) takes a faster path with
   * the same guarantees: it is verified before the temporary file is even
   * created, and the file is written with synchronous calls — one system call
   * each instead of a thread-pool round trip, which costs more CPU than the
   * call itself for a file of a few KB.
   *
   * @param verify called with the byte count and MD5 of what was written, and
   *   the temporary file's path when there is one (to read it back); throw (or
   *   reject) to refuse it.
   * @returns the bytes written, their MD5, and the file's stat after the rename.
   */
  async writeAtomic(
    path: string,
    body: Buffer | (AsyncIterable<Buffer> & { destroy(): void }),
    options: WriteOptions,
    verify: (bytes: number, md5: string, tempPath?: string) => void | Promise<void>,
  ): Promise<{ bytes: number; md5: string; stat: Stats }> {
    if (Buffer.isBuffer(body)) return this.writeBufferAtomic(path, body, options, verify);
    const target = join(this.root, path);
    const temp = this.tempPath(target);
    let fh: FileHandle | undefined;
    let created: string | undefined;
    try {
      await this.ensureParents(path);
      assertRealParent(target, path);
      fh = await open(temp, 'wx', 0o666);
      created = temp;
      // Resolved again after the create: a swap in between is caught before a byte is written.
      assertRealParent(target, path);
      const offThread = options.hash;
      const hash = offThread === undefined ? createHash('md5') : undefined;
      let bytes = 0;
      for await (const chunk of body) {
        options.signal?.throwIfAborted();
        const hashed = offThread?.update(chunk);
        hashed?.catch(() => undefined); // awaited below, after the write
        hash?.update(chunk);
        options.onChunk?.(chunk);
        bytes += chunk.length;
        let offset = 0;
        while (offset < chunk.length) offset += (await fh.write(chunk, offset)).bytesWritten;
        await hashed;
        options.onBytes?.(chunk.length);
      }
      const md5 = offThread !== undefined ? await offThread.digest() : (hash as ReturnType<typeof createHash>).digest('hex');
      await verify(bytes, md5, temp);
      setMtime(fh.fd, typeof options.mtimeMs === 'function' ? options.mtimeMs() : options.mtimeMs);
      this.commit(temp, target, path, options.expected);
      created = undefined;
      const stat = fstatSync(fh.fd); // after the rename, which changes ctime
      return { bytes, md5, stat };
    } catch (error) {
      body.destroy();
      // If the parent was swapped for a link, the path would resolve elsewhere:
      // only unlink the temporary file where it was created.
      if (created !== undefined) {
        try {
          assertRealParent(target, path);
          await unlink(created);
        } catch {
          // not ours to remove, or already gone
        }
      }
      throw error;
    } finally {
      await fh?.close().catch(() => undefined);
    }
  }

  /** {@link writeAtomic} for a body held whole in memory. */
  private async writeBufferAtomic(
    path: string,
    data: Buffer,
    options: WriteOptions,
    verify: (bytes: number, md5: string) => void | Promise<void>,
  ): Promise<{ bytes: number; md5: string; stat: Stats }> {
    if (!this.parentReady(path)) await this.ensureParents(path);
    options.signal?.throwIfAborted();
    options.onChunk?.(data);
    const md5 = createHash('md5').update(data).digest('hex');
    await verify(data.length, md5); // a refused body never reaches the disk
    const target = join(this.root, path);
    const temp = this.tempPath(target);
    let fd: number | undefined;
    let created: string | undefined;
    try {
      assertRealParent(target, path);
      fd = openSync(temp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o666);
      created = temp;
      // Resolved again after the create: a swap in between is caught before a byte is written.
      assertRealParent(target, path);
      let offset = 0;
      while (offset < data.length) {
        const n = writeSync(fd, data, offset, data.length - offset);
        if (n <= 0) throw new LocalFileError('EIO', path, `Writing "${path}" made no progress`);
        offset += n;
      }
      options.onBytes?.(data.length);
      setMtime(fd, typeof options.mtimeMs === 'function' ? options.mtimeMs() : options.mtimeMs);
      this.commit(temp, target, path, options.expected);
      created = undefined;
      const stat = fstatSync(fd); // after the rename, which changes ctime
      return { bytes: data.length, md5, stat };
    } catch (error) {
      // Only unlink the temporary file where it was created (see writeAtomic).
      if (created !== undefined) {
        try {
          assertRealParent(target, path);
          unlinkSync(created);
        } catch {
          // not ours to remove, or already gone
        }
      }
      throw error;
    } finally {
      if (fd !== undefined) {
        try {
          closeSync(fd);
        } catch {
          // nothing left to do with it
        }
      }
    }
  }

  /**
   * Put the verified temporary file at `target` (synchronous: a few system
   * calls). Never replaces a directory or a symlink. With `expected`:
   * - a path that was free is taken with link(2), which never replaces: a
   *   file created there since the scan is kept (CHANGED_DURING_SYNC);
   * - a file that is not exactly the one scanned (size, mtime, ctime, inode)
   *   is kept (CHANGED_DURING_SYNC);
   * - otherwise the file is first moved into the recovery area, then the new
   *   file is linked in; the moved file is removed only when it is proven
   *   and is still the file scanned, and kept there (and reported) otherwise.
   * On success the temporary name no longer exists.
   */
  private commit(temp: string, target: string, path: string, expected: Expected | undefined): void {
    const existing = lstatOrUndefined(target);
    if (existing?.isDirectory()) throw new LocalFileError('EISDIR', path, `"${path}" is a directory locally`);
    if (existing?.isSymbolicLink()) throw new LocalFileError('SYMLINK_IN_PATH', path, `"${path}" is a symbolic link locally`);
    if (expected === undefined) {
      renameSync(temp, target);
      return;
    }
    if (existing === undefined) {
      placeNoReplace(temp, target, path);
      return;
    }
    if (expected.local === undefined || !sameFile(existing, expected.local)) throw changedDuringSync(path, 'overwritten');
    const area = this.requireRecovery();
    const moved = this.moveAside(path, expected.proven !== undefined);
    if (moved === null) {
      renameSync(temp, target); // proven by its stat (no recovery area to confirm its content in)
      return;
    }
    try {
      placeNoReplace(temp, target, path);
    } catch (error) {
      if (moved !== undefined) this.restore(moved.movedTo, target);
      throw error;
    } finally {
      if (moved !== undefined && lstatOrUndefined(moved.movedTo) !== undefined) {
        if (expected.proven !== undefined && sameContent(moved.stat, existing)) {
          area.confirmLater(path, moved.movedTo, expected.proven, 'differs-from-remote');
        } else {
          area.keep(path, moved.movedTo, 'differs-from-remote');
        }
      }
    }
  }

  /** Put a moved file back where it was, if the path is still free (best effort). */
  private restore(movedTo: string, target: string): void {
    try {
      linkSync(movedTo, target);
      unlinkSync(movedTo);
    } catch {
      // stays in the recovery area, where it is reported
    }
  }

  /**
   * Move the file at `path` into the recovery area (`undefined`: nothing is
   * there any more). When the area cannot be used (the reserved folder is a
   * symlink, another filesystem is mounted inside the workspace), an unproven
   * file is left alone (the error is thrown), and for a proven one `null`
   * tells the caller to replace or delete it in place.
   */
  private moveAside(path: string, proven: boolean): { movedTo: string; stat: Stats } | undefined | null {
    try {
      return this.requireRecovery().moveAside(path);
    } catch (error) {
      if (!proven) throw error;
      return null;
    }
  }

  private requireRecovery(): RecoveryArea {
    if (this.recovery === undefined) throw new Error('internal: a WorkspaceWriter with expectations needs a recovery area');
    return this.recovery;
  }

  /**
   * Delete a regular file (never a directory or what a symlink points to), then
   * remove parent directories this left empty.
   *
   * With `expected` (a pull's deletion): a file that changed since the scan
   * is kept (CHANGED_DURING_SYNC); otherwise it is moved into the recovery
   * area and removed from there only when proven and still the file scanned.
   * Returns whether the path was emptied.
   */
  async removeFile(path: string, expected?: Expected): Promise<boolean> {
    const abs = join(this.root, path);
    assertRealParent(abs, path);
    const st = await lstat(abs).catch((error: NodeJS.ErrnoException) => {
      if (error.code === 'ENOENT') return undefined;
      throw error;
    });
    if (st === undefined) return false;
    if (!st.isFile()) throw new LocalFileError('NOT_A_FILE', path, `"${path}" is not a regular file; not deleting it`);
    if (expected === undefined) {
      await unlink(abs);
      return true;
    }
    if (expected.local === undefined || !sameFile(st, expected.local)) throw changedDuringSync(path, 'deleted');
    const area = this.requireRecovery();
    const moved = this.moveAside(path, expected.proven !== undefined);
    if (moved === null) {
      // No recovery area: a proven file is deleted in place once its content is confirmed.
      if ((await calculateFileHash(abs).catch(() => undefined)) !== expected.proven) throw changedDuringSync(path, 'deleted');
      const again = lstatOrUndefined(abs);
      if (again === undefined) return false;
      if (!sameFile(again, expected.local)) throw changedDuringSync(path, 'deleted');
      await unlink(abs);
      return true;
    }
    if (moved === undefined) return false;
    if (expected.proven !== undefined && sameContent(moved.stat, st)) area.confirmLater(path, moved.movedTo, expected.proven, 'not-in-remote');
    else area.keep(path, moved.movedTo, 'not-in-remote');
    return true;
  }

  /** Remove the given directories if empty, deepest first; non-empty ones stay. */
  async pruneEmptyDirs(dirs: Iterable<string>): Promise<void> {
    const sorted = [...new Set(dirs)].sort((a, b) => b.split('/').length - a.split('/').length || (a < b ? 1 : -1));
    for (const dir of sorted) {
      try {
        await rmdir(join(this.root, dir));
        this.dirs.delete(dir);
        this.ready.delete(dir);
      } catch {
        // not empty, gone, or not ours to remove: leave it
      }
    }
  }
}

function setMtime(fd: number, mtimeMs: number | undefined): void {
  if (mtimeMs === undefined) return;
  const t = mtimeMs / 1000;
  try {
    futimesSync(fd, t, t);
  } catch {
    // a time this filesystem cannot store: the file keeps the current time
  }
}

const DONE: Promise<void> = Promise.resolve();

/** The file scanned: same inode, size and timestamps (a write changes mtime and ctime). */
function sameFile(st: Stats, local: LocalFile): boolean {
  return st.ino === local.ino && st.size === local.size && st.mtimeMs === local.mtimeMs && st.ctimeMs === local.ctimeMs;
}

/** The same file before and after a rename (which changes ctime, not content or mtime). */
function sameContent(after: Stats, before: Stats): boolean {
  return after.ino === before.ino && after.size === before.size && after.mtimeMs === before.mtimeMs;
}

function changedDuringSync(path: string, what: 'overwritten' | 'deleted'): LocalFileError {
  return new LocalFileError(CHANGED_DURING_SYNC, path, `"${path}" changed locally during the sync; kept, not ${what}`);
}

/**
 * Give the temporary file its final name without replacing anything:
 * link(2) fails with EEXIST when the name is taken. Where hard links are not
 * supported, a check and a rename (a window of microseconds).
 */
function placeNoReplace(temp: string, target: string, path: string): void {
  try {
    linkSync(temp, target);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') throw changedDuringSync(path, 'overwritten');
    if (lstatOrUndefined(target) !== undefined) throw changedDuringSync(path, 'overwritten');
    renameSync(temp, target);
    return;
  }
  try {
    unlinkSync(temp);
  } catch {
    // a leftover temporary name: the next pull removes it
  }
}

/**
 * Synchronous lstat (a few microseconds; cheaper than a thread-pool round
 * trip). A missing path, the common case, returns without building an Error.
 */
function lstatOrUndefined(path: string): Stats | undefined {
  try {
    return lstatSync(path, { throwIfNoEntry: false });
  } catch {
    return undefined;
  }
}
