import { randomBytes } from 'node:crypto';
import { lstatSync, mkdirSync, readdirSync, renameSync, rmdirSync, unlinkSync, type Stats } from 'node:fs';
import { dirname, join } from 'node:path';
import { eachLimited } from '../core/each.js';
import { LocalFileError } from '../errors.js';
import { calculateFileHash } from './hash.js';
import { RECOVERY_DIR_NAME, STATE_DIR_NAME } from '../core/names.js';
import { assertRealParent } from './path-guard.js';

/** Folder of the recovery area, under the library's own folder of the workspace. */
export { RECOVERY_DIR_NAME };

import type { MovedAside, MovedAsideReason } from '../core/model.js';

export type { MovedAside, MovedAsideReason } from '../core/model.js';

/** Moved files whose content is checked at once, at the end of a pull. */
const VERIFY_CONCURRENCY = 4;

/**
 * One sync's folder of the recovery area,
 * `<workspace>/.s3-workspace-sync/recovered/<time>-<random>/`, created on
 * first use. A pull moves a local file here (one rename, on the same
 * filesystem) before it replaces or deletes it, whenever it cannot prove that
 * the file's content is in the bucket. The folder is inside the library's
 * reserved folder: never synced, never deleted by the library.
 *
 * Proven files go through it too: moved, then removed at the end of the pull
 * ({@link settle}) only once their content is confirmed to be the MD5 the
 * proof claimed. A file written by someone else at the same moment, or one a
 * stale or forged state entry vouched for, stays here instead of being
 * destroyed.
 */
export class RecoveryArea {
  /** Absolute path of this sync's folder. */
  readonly dir: string;
  /** Files kept here, in the order they were moved. */
  readonly moved: MovedAside[] = [];
  private created = false;
  /** Directories made under `dir` (workspace-relative). */
  private readonly made = new Set<string>();
  /** Proven files moved here, to remove once their content is confirmed. */
  private readonly unconfirmed: Array<{ path: string; movedTo: string; md5: string; reason: MovedAsideReason }> = [];

  constructor(
    readonly root: string,
    now: Date = new Date(),
  ) {
    const stamp = `${now.toISOString().replace(/:/g, '-')}-${randomBytes(3).toString('hex')}`;
    this.dir = join(root, STATE_DIR_NAME, RECOVERY_DIR_NAME, stamp);
  }

  /**
   * Move the file at workspace path `path` into this area. Returns where it
   * went and its stat there, or `undefined` when nothing is at `path` any more.
   * Synchronous: one rename (plus a few mkdirs the first time a directory is
   * needed). Throws a LocalFileError when the area cannot be used (then the
   * file stays where it was).
   */
  moveAside(path: string): { movedTo: string; stat: Stats } | undefined {
    const from = join(this.root, path);
    assertRealParent(from, path);
    const to = join(this.dir, path);
    try {
      this.ensureDir(dirname(path));
      renameSync(from, to);
      return { movedTo: to, stat: lstatSync(to) };
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' && lstatOrUndefined(from) === undefined) return undefined;
      if (error instanceof LocalFileError) throw error;
      throw new LocalFileError(code ?? 'EIO', path, `Cannot move "${path}" into the recovery area ${this.dir}: ${code ?? String(error)}`, {
        cause: error,
      });
    }
  }

  /** Record a moved file as kept (reported in the result and the log). */
  keep(path: string, movedTo: string, reason: MovedAsideReason): MovedAside {
    const entry: MovedAside = { path, movedTo, reason };
    this.moved.push(entry);
    return entry;
  }

  /**
   * A moved file the plan proved to be in the bucket with content `md5`: it is
   * removed by {@link settle} if its content really is that, and kept (and
   * reported, with `reason`) otherwise.
   */
  confirmLater(path: string, movedTo: string, md5: string, reason: MovedAsideReason): void {
    this.unconfirmed.push({ path, movedTo, md5, reason });
  }

  /**
   * Hash every file waiting for confirmation: remove those whose content is
   * the MD5 their proof claimed, keep the others. Then {@link prune}. Never
   * throws: a file that cannot be read or removed stays here.
   */
  async settle(): Promise<void> {
    const pending = this.unconfirmed.splice(0);
    await eachLimited(pending, VERIFY_CONCURRENCY, async (p) => {
      const actual = await calculateFileHash(p.movedTo).catch(() => undefined);
      if (actual !== p.md5) {
        if (lstatOrUndefined(p.movedTo) !== undefined) this.keep(p.path, p.movedTo, p.reason);
        return;
      }
      try {
        unlinkSync(p.movedTo);
      } catch {
        this.keep(p.path, p.movedTo, p.reason); // still here: say so
      }
    });
    this.prune();
  }

  /** Remove the directories of this area that ended up empty (all of it, when nothing was kept). */
  prune(): void {
    if (!this.created) return;
    const dirs = [...this.made].sort((a, b) => b.length - a.length);
    for (const d of dirs) removeIfEmpty(join(this.dir, d));
    removeIfEmpty(this.dir);
    removeIfEmpty(dirname(this.dir));
  }

  private ensureDir(relDir: string): void {
    if (!this.created) {
      const base = join(this.root, STATE_DIR_NAME);
      realDirectory(base, STATE_DIR_NAME);
      realDirectory(join(base, RECOVERY_DIR_NAME), `${STATE_DIR_NAME}/${RECOVERY_DIR_NAME}`);
      mkdirSync(this.dir, { mode: 0o700 }); // new, so everything below is ours
      this.created = true;
    }
    if (relDir === '.' || relDir === '' || this.made.has(relDir)) return;
    mkdirSync(join(this.dir, relDir), { recursive: true });
    for (let d = relDir; d !== '.' && d !== ''; d = dirname(d)) this.made.add(d);
  }
}

/** Make sure `abs` is a real directory (not a symlink), creating it when missing. */
function realDirectory(abs: string, rel: string): void {
  let st: Stats | undefined;
  try {
    st = lstatSync(abs);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
  if (st === undefined) {
    try {
      mkdirSync(abs, { mode: 0o700 });
      return;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      st = lstatSync(abs);
    }
  }
  if (!st.isDirectory()) {
    throw new LocalFileError('SYMLINK_IN_PATH', rel, `"${rel}" is not a real directory; the recovery area cannot be used`);
  }
}

function lstatOrUndefined(abs: string): Stats | undefined {
  try {
    return lstatSync(abs, { throwIfNoEntry: false });
  } catch {
    return undefined;
  }
}

function removeIfEmpty(abs: string): void {
  try {
    if (readdirSync(abs).length === 0) rmdirSync(abs);
  } catch {
    // gone, not empty, or not ours: leave it
  }
}
