import { rmdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { STATE_DIR_NAME } from '../core/names.js';
import { WorkspaceLock, type LockHandle } from '../state/WorkspaceLock.js';
import type { SyncCall, SyncContext } from './context.js';

/**
 * Take the workspace's advisory lock for one sync (see `WorkspaceLock`): two
 * syncs of one workspace directory — two processes, or two instances — never
 * run at once; the second waits up to `lockWaitMs`, then rejects with
 * `WorkspaceLockedError`. Held for one `pull()` or `push()` only, never
 * between calls (a Lambda frozen between invocations cannot heartbeat).
 *
 * No lock (`undefined`): for a dry run (it only reads); for a push of a
 * workspace that is not a directory, or a pull over something that is not
 * one (the prepare stage reports those); on a filesystem that refuses writes
 * (nothing there can be corrupted by a second writer).
 */
export async function lockWorkspace(ctx: SyncContext, call: SyncCall): Promise<LockHandle | undefined> {
  if (call.dryRun) return undefined;
  const { workspaceDir, lockWaitMs, logger } = ctx.options;
  const kind = await stat(workspaceDir).then(
    (st) => (st.isDirectory() ? 'dir' : 'other'),
    () => 'missing',
  );
  // a pull creates a missing workspace anyway; a push of one fails in prepare, without creating it
  if (kind === 'other' || (kind === 'missing' && call.direction === 'push')) return undefined;
  const handle = await new WorkspaceLock(workspaceDir).acquire(call.signal === undefined ? { waitMs: lockWaitMs } : { waitMs: lockWaitMs, signal: call.signal });
  if (handle === undefined) {
    logger.debug(`No workspace lock for ${workspaceDir}: the filesystem refuses writes there`);
    return undefined;
  }
  // An empty library folder is removed with the lock (it held nothing else: no state, no recovered files).
  const ownDir = join(workspaceDir, STATE_DIR_NAME);
  return {
    lockPath: handle.lockPath,
    token: handle.token,
    lost: handle.lost,
    release: async () => {
      await handle.release();
      await rmdir(ownDir).catch(() => undefined); // ENOTEMPTY: something else lives there
    },
  };
}
