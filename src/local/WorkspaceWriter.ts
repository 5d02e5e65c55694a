import { createHash, randomBytes } from 'node:crypto';
import { closeSync, constants, fstatSync, futimesSync, lstatSync, openSync, renameSync, unlinkSync, writeSync, type Stats } from 'node:fs';
import { lstat, mkdir, open, rename, rmdir, unlink, type FileHandle } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { LocalFileError } from '../errors.js';
import { TEMP_SUFFIX } from '../SyncIgnoreFilter.js';
import { assertRealParent } from './path-guard.js';

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
}

/**
 * Writes into one workspace root without ever following a symbolic link out of
 * it: every directory on the way to a file is checked with `lstat` (once per
 * sync, cached) and created when missing.
 */
export class WorkspaceWriter {
  private readonly dirs = new Map<string, Promise<void>>();

  constructor(readonly root: string) {}

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
      const existing = lstatOrUndefined(target);
      if (existing?.isDirectory()) throw new LocalFileError('EISDIR', path, `"${path}" is a directory locally`);
      if (existing?.isSymbolicLink()) throw new LocalFileError('SYMLINK_IN_PATH', path, `"${path}" is a symbolic link locally`);
      await rename(temp, target);
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
      const existing = lstatOrUndefined(target);
      if (existing?.isDirectory()) throw new LocalFileError('EISDIR', path, `"${path}" is a directory locally`);
      if (existing?.isSymbolicLink()) throw new LocalFileError('SYMLINK_IN_PATH', path, `"${path}" is a symbolic link locally`);
      renameSync(temp, target);
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
   * Delete a regular file (never a directory or what a symlink points to), then
   * remove parent directories this left empty.
   */
  async removeFile(path: string): Promise<boolean> {
    const abs = join(this.root, path);
    assertRealParent(abs, path);
    const st = await lstat(abs).catch((error: NodeJS.ErrnoException) => {
      if (error.code === 'ENOENT') return undefined;
      throw error;
    });
    if (st === undefined) return false;
    if (!st.isFile()) throw new LocalFileError('NOT_A_FILE', path, `"${path}" is not a regular file; not deleting it`);
    await unlink(abs);
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
