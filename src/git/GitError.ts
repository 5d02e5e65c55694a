import { SyncError, escapeForLog, redactSecrets, type SyncErrorOptions } from '../errors.js';

/**
 * Codes carried by {@link GitError}:
 * - `GIT_UNAVAILABLE`: no `git` executable (not installed, not on `PATH`, or
 *   the configured binary path does not exist or cannot run).
 * - `GIT_FAILED`: a `git` command exited with an error; `details.args`,
 *   `details.exitCode` and `details.stderr` (redacted, shortened) say which.
 * - `GIT_TIMEOUT`: a `git` command ran longer than its timeout and was killed.
 * - `GIT_ABORTED`: the caller's `AbortSignal` fired (`name` is `'AbortError'`).
 * - `GIT_EXISTS`: a restore found a `.git` already in the workspace; nothing
 *   was changed.
 * - `GIT_NOT_A_REPOSITORY`: the workspace has no `.git/` directory holding a
 *   repository.
 * - `GIT_UNSUPPORTED`: a layout this module does not carry: `.git` is a file
 *   (a linked worktree or a submodule checkout) or a symlink, or a reftable
 *   repository.
 * - `GIT_INVALID_SIDECAR`: the sidecar JSON is malformed, of another schema
 *   version, or names something unsafe (a hook path with `/`, a bad ref name).
 * - `GIT_BUNDLE_MISMATCH`: the bundle file is not the one the sidecar
 *   describes (size or SHA-256 differ), or is missing when one is required.
 */
export type GitErrorCode =
  | 'GIT_UNAVAILABLE'
  | 'GIT_FAILED'
  | 'GIT_TIMEOUT'
  | 'GIT_ABORTED'
  | 'GIT_EXISTS'
  | 'GIT_NOT_A_REPOSITORY'
  | 'GIT_UNSUPPORTED'
  | 'GIT_INVALID_SIDECAR'
  | 'GIT_BUNDLE_MISMATCH';

/**
 * A git repository could not be bundled, restored or inspected. Extends
 * {@link SyncError}, so `isSyncError(err)` holds and `code`/`details` are
 * there; `code` says how to react (see {@link GitErrorCode}). With
 * `git: 'bundle'` a sync reports it as a warning and goes on: the files are
 * synced whatever happens to the repository.
 *
 * @example
 * try {
 *   await restoreRepository(dir, bundle, sidecar);
 * } catch (err) {
 *   if (err instanceof GitError && err.code === 'GIT_EXISTS') return; // leave the user's .git alone
 *   throw err;
 * }
 */
export class GitError extends SyncError {
  declare readonly code: GitErrorCode;

  constructor(code: GitErrorCode, message: string, options: SyncErrorOptions = {}) {
    super(code, escapeForLog(redactSecrets(message)), options);
    if (code === 'GIT_ABORTED') this.name = 'AbortError';
  }
}
