import { realpathSync } from 'node:fs';
import { dirname } from 'node:path';
import { LocalFileError } from '../errors.js';

/**
 * Guard against following a symbolic link out of the workspace when a
 * directory is swapped for a link while a sync runs. Node has no openat(), so
 * the directory containing a file is resolved right before (and again right
 * after) the file is opened or created: it must resolve to itself, i.e. no
 * symlink between the workspace root (already a real path) and the file.
 *
 * Synchronous on purpose: one realpath(3) call costs a few microseconds,
 * while a thread-pool round trip costs ten times that in CPU.
 */
export function assertRealParent(abs: string, rel: string): void {
  const parent = dirname(abs);
  let real: string;
  try {
    real = realpathSync.native(parent);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? 'EIO';
    throw new LocalFileError(code, rel, `Cannot resolve the directory of "${rel}": ${code}`, { cause: error });
  }
  if (real !== parent) {
    throw new LocalFileError('SYMLINK_IN_PATH', rel, `A directory above "${rel}" is a symbolic link; not following it`);
  }
}
