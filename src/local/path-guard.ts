import { readlink, realpath } from 'node:fs/promises';
import { dirname } from 'node:path';
import { LocalFileError } from '../errors.js';

/**
 * Guards against following a symbolic link out of the workspace when a
 * directory is swapped for a link while a sync runs. Node has no openat(), so
 * the checks are: resolve the parent right before acting (one realpath call),
 * and after opening, ask the kernel which file the descriptor really is
 * (`/proc/self/fd`, Linux; elsewhere the realpath check alone applies).
 */

let procFdWorks: boolean | undefined;

/** The path the kernel says an open descriptor refers to, or `undefined` when it cannot tell. */
export async function pathOfFd(fd: number): Promise<string | undefined> {
  if (procFdWorks === false) return undefined;
  try {
    const path = await readlink(`/proc/self/fd/${fd}`);
    procFdWorks = true;
    return path;
  } catch {
    procFdWorks = false;
    return undefined;
  }
}

/**
 * Throw unless the directory containing `abs` resolves to itself (no symlink
 * anywhere between the workspace root — already a real path — and `abs`).
 */
export async function assertRealParent(abs: string, rel: string): Promise<void> {
  const parent = dirname(abs);
  let real: string;
  try {
    real = await realpath(parent);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? 'EIO';
    throw new LocalFileError(code, rel, `Cannot resolve the directory of "${rel}": ${code}`, { cause: error });
  }
  if (real !== parent) {
    throw new LocalFileError('SYMLINK_IN_PATH', rel, `A directory above "${rel}" is a symbolic link; not following it`);
  }
}

/** Throw unless the open descriptor is the file at `abs` (when the platform can tell). */
export async function assertFdIs(fd: number, abs: string, rel: string): Promise<void> {
  const actual = await pathOfFd(fd);
  if (actual !== undefined && actual !== abs) {
    throw new LocalFileError('SYMLINK_IN_PATH', rel, `"${rel}" resolved outside its place in the workspace; not using it`);
  }
}
