/**
 * The names the library gives its own files and objects, in one place.
 */

/** Ignore rules of a workspace (and of its bucket prefix). */
export const SYNCIGNORE_FILE = '.syncignore';

/**
 * The library's own folder: in the workspace (sync state, recovery area) and
 * under the bucket prefix (workspace identity). Never synced.
 */
export const STATE_DIR_NAME = '.s3-workspace-sync';

/** The library's own folder of a bucket prefix: `<prefix>.s3-workspace-sync/` (never synced). */
export function libraryFolder(prefix: string): string {
  return `${prefix}${STATE_DIR_NAME}/`;
}

/** Suffix of a download in progress (removed by the next pull if a crash left it). */
export const TEMP_SUFFIX = '.s3ws-tmp';

/** Folder of `STATE_DIR_NAME` where a pull moves local files it could not prove were synced. */
export const RECOVERY_DIR_NAME = 'recovered';

/**
 * Folder of `STATE_DIR_NAME` under the bucket prefix where a conflict policy
 * saves a version before it is replaced (`<prefix>.s3-workspace-sync/conflicts/<stamp>-<hex>/<path>`).
 */
export const CONFLICTS_DIR_NAME = 'conflicts';

/** Object under the prefix that identifies the remote workspace (see `state/remote-identity.ts`). */
export const WORKSPACE_ID_NAME = `${STATE_DIR_NAME}/workspace-id`;
