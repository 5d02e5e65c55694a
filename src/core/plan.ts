/**
 * Pure planning: given what is on disk, what is in the bucket and what this
 * instance last synced, decide per path what a pull or a push does, and why.
 * No I/O here; the facade gathers the inputs and executes the plan.
 */
import { MAX_KEY_BYTES, parentDirs, storagePathProblem } from './paths.js';
import { md5FromEtag, unquoteEtag } from './md5.js';
import { localMd5Of, sameContent, statMatches, unchangedSinceSync } from './compare.js';
import type { ConflictPolicy, DeletionReason, ListedObject, LocalFile, RemoteObject, SkippedFile, Snapshot, SnapshotEntry, SyncConflict, TransferReason } from './model.js';

export { md5FromEtag, unquoteEtag };
export { isRacy, pullNeeds, pushNeeds, statMatches } from './compare.js';
export type { DeletionReason, ListedObject, LocalFile, RemoteObject, Snapshot, SnapshotEntry, TransferReason };

/** A file to download (pull) or upload (push). */
export interface Transfer {
  path: string;
  key: string;
  size: number;
  /** Expected MD5 when already known (pull: the object's; push: the local file's). */
  md5?: string | undefined;
  /** The object's ETag as listed (pull). */
  etag?: string | undefined;
  /** Push: the file's mtime when planned (a planned MD5 holds only while it is unchanged). */
  mtimeMs?: number | undefined;
  reason: TransferReason;
  /**
   * Pull: the local file this download replaces, as scanned (`undefined`: the
   * path was free). Anything else found there when the download lands was
   * written during the sync and is kept.
   */
  local?: LocalFile | undefined;
  /**
   * Push: the condition the write carries — the ETag of the object this
   * instance last saw at the key (`If-Match`), `null` to create the key only
   * if it has none (`If-None-Match: *`), `undefined` for none (no version
   * known). A write whose condition fails is a conflict, never an overwrite.
   */
  expectedEtag?: string | null | undefined;
  /**
   * Pull: the MD5 the replaced file is proven to have — what the last sync
   * recorded, so the bucket had it. `undefined`: unproven, so the file is
   * moved into the recovery area instead of being overwritten.
   */
  provenMd5?: string | undefined;
  /**
   * Push, policy `keep-local`, an instance without a snapshot: the object
   * this write replaces (`expectedEtag`) is a version this instance never
   * saw. It is saved into the conflicts area first (a server-side copy), and
   * the upload reports the conflict as `kept-local`.
   */
  replaces?: { etag: string; size: number } | undefined;
}

/**
 * A path both sides changed since this instance last synced it, left to the
 * execute stage's conflict policy: a pull's file modified (or created)
 * locally whose object changed (or appeared) too; a push's file of an
 * instance without a snapshot over other content (policies `keep-remote`,
 * `keep-both`). The local file stays in place until the policy acts.
 */
export interface BothChanged {
  path: string;
  key: string;
  /** The local file as scanned. */
  local: LocalFile;
  /** The object as listed. */
  remote: RemoteObject;
  /** The version this instance last synced (`null`: none: both sides created the path). */
  expectedEtag: string | null;
}

/** A local file (pull) or an object (push) to delete. */
export interface Deletion {
  path: string;
  key: string;
  reason: DeletionReason;
  /** Pull: the local file as scanned (a file changed since is kept). */
  local?: LocalFile | undefined;
  /** Pull: the MD5 the file is proven to have (see {@link Transfer.provenMd5}); an unproven file is moved into the recovery area, never deleted. */
  provenMd5?: string | undefined;
  /** Push: delete only this version of the object (`If-Match`; see {@link Transfer.expectedEtag}). */
  expectedEtag?: string | undefined;
}

/** A path that is already identical on both sides: only the snapshot is refreshed. */
export interface Unchanged {
  path: string;
  md5: string;
  etag?: string | undefined;
  local: LocalFile;
}

/** The exact actions a sync takes. */
export interface Plan {
  direction: 'pull' | 'push';
  transfers: Transfer[];
  deletions: Deletion[];
  skipped: SkippedFile[];
  /** Local files kept although the remote side differs or lacks them (possible unpushed work). */
  kept: SkippedFile[];
  /**
   * Files that cannot be synced: something else occupies the path on the
   * other side (a local directory or symlink where the bucket has a file), or
   * (push) the file cannot be stored as an object (key too long, too large).
   * They are failures: the two sides do not match.
   */
  blocked: Array<SkippedFile & { code: string }>;
  unchanged: Unchanged[];
  /** Push: paths another writer changed, known from the plan (a fresh instance over a bucket with other content), reported (policy `fail`). */
  conflicts: SyncConflict[];
  /**
   * Paths changed on both sides that the conflict policy settles when the
   * sync runs (pull: every policy; push: `keep-remote` / `keep-both`). A
   * pull also lists them in `kept` (they stay in place unless the policy
   * replaces them).
   */
  bothChanged: BothChanged[];
  /** Sum of `transfers[].size`. */
  transferBytes: number;
}

/** Inputs of the planners: immutable (the prepare stage builds them once; nothing changes them after). */
export interface PlanInput {
  readonly prefix: string;
  readonly local: ReadonlyMap<string, LocalFile>;
  /** Local directories (a remote file cannot replace one). */
  localDirs: ReadonlySet<string>;
  /** Valid, synced remote objects by path (see {@link classifyRemote}). */
  readonly remote: ReadonlyMap<string, RemoteObject>;
  readonly snapshot: ReadonlyMap<string, SnapshotEntry>;
  /** Whether this instance has synced before (a fresh instance mirrors the bucket on pull). */
  hasSnapshot: boolean;
  /** MD5s computed for local files whose snapshot entry could not be reused. */
  localMd5: ReadonlyMap<string, string>;
  /** Paths present locally that are not plain synced files (symlinks, unreadable…): never deleted remotely. */
  localBlocked?: ReadonlySet<string>;
  /** Returns true when a path is excluded by the ignore rules. */
  isIgnored?: (path: string) => boolean;
  /** Paths that exist remotely but are not synced (e.g. a key that is also a directory of other keys): never deleted locally. */
  remoteBlocked?: ReadonlySet<string>;
  /** Pull: remote wins over files created or modified locally since the last sync. */
  overwriteLocalChanges?: boolean;
  /** Push: what to do where the bucket changed under this instance (default `fail`). A pull's policy is applied by the execute stage (see {@link Plan.bothChanged}). */
  conflictPolicy?: ConflictPolicy;
}

/** S3's largest object (5 TiB). */
export const MAX_OBJECT_BYTES = 5 * 1024 ** 4;

/**
 * Turn a listing into synced remote objects by path. Keys that are not valid
 * workspace paths, folder markers, ignored paths and file/directory collisions
 * (both `a` and `a/b` exist) are skipped with a reason; nothing invalid ever
 * reaches the planner.
 */
export function classifyRemote(
  listed: Iterable<ListedObject>,
  prefix: string,
  isIgnored: (path: string) => boolean,
): { remote: Map<string, RemoteObject>; skipped: SkippedFile[]; conflicts: Set<string> } {
  const remote = new Map<string, RemoteObject>();
  const skipped: SkippedFile[] = [];
  for (const obj of listed) {
    if (!obj.key.startsWith(prefix)) {
      skipped.push({ path: obj.key, reason: 'outside-prefix' });
      continue;
    }
    const path = obj.key.slice(prefix.length);
    if (path === '' || path.endsWith('/')) {
      if (obj.size === 0) skipped.push({ path: obj.key, reason: 'directory-marker' });
      else skipped.push({ path: obj.key, reason: 'invalid-key: ends with /' });
      continue;
    }
    const problem = storagePathProblem(path);
    if (problem !== undefined) {
      skipped.push({ path: obj.key, reason: `invalid-key: ${problem}` });
      continue;
    }
    if (isIgnored(path) || parentDirs(path).some((dir) => isIgnored(`${dir}/`))) {
      skipped.push({ path, reason: 'ignored' });
      continue;
    }
    if (remote.has(path)) {
      skipped.push({ path, reason: 'duplicate-key' });
      continue;
    }
    const etag = unquoteEtag(obj.etag);
    const etagMd5 = obj.md5 === undefined ? md5FromEtag(etag) : undefined;
    remote.set(path, {
      key: obj.key,
      path,
      size: obj.size,
      etag,
      // a plain ETag is the MD5: one string, not two equal ones (100,000 objects: some 5 MB)
      md5: obj.md5 ?? (etagMd5 === etag ? etag : etagMd5),
      md5FromEtag: etagMd5 !== undefined,
      lastModifiedMs: obj.lastModifiedMs,
      ...(obj.mtimeMs === undefined ? {} : { mtimeMs: obj.mtimeMs }),
    });
  }
  // A key that is also a "directory" of another key cannot be a local file.
  const dirs = new Set<string>();
  const conflicts = new Set<string>();
  for (const path of remote.keys()) for (const dir of parentDirs(path)) dirs.add(dir);
  for (const path of [...remote.keys()]) {
    if (dirs.has(path)) {
      remote.delete(path);
      conflicts.add(path);
      skipped.push({ path, reason: 'file-directory-conflict: other keys use this path as a directory' });
    }
  }
  return { remote, skipped, conflicts };
}


/**
 * Plan a pull: the bucket is the source of truth, and no local file is
 * destroyed unless it is proven to be what the last sync recorded.
 *
 * A local file is *proven* when the snapshot has an entry for it and either
 * its stat matches the entry or its MD5 equals the entry's: its content was
 * in the bucket at the last sync. A proven file that differs from the bucket
 * is overwritten or deleted. An unproven one (no snapshot, a file the
 * snapshot does not cover, one modified since) is:
 * - kept in place when the instance has synced before (unpushed work),
 *   unless `overwriteLocalChanges`;
 * - otherwise replaced too, but moved into the recovery area first (the
 *   transfer or deletion carries no `provenMd5`), so the workspace mirrors
 *   the bucket and nothing is lost.
 */
export function planPull(input: PlanInput): Plan {
  const plan = emptyPlan('pull');
  /** The MD5 a local file is proven to have (its last-synced content), or `undefined`. */
  const proven = (local: LocalFile): string | undefined => {
    const snap = input.snapshot.get(local.path);
    if (snap === undefined) return undefined;
    if (statMatches(local, snap)) return snap.md5;
    const md5 = input.localMd5.get(local.path);
    return md5 !== undefined && md5 === snap.md5 ? md5 : undefined;
  };
  /** Unproven files stay where they are (instead of moving aside) for an instance that has synced. */
  const keepInPlace = input.hasSnapshot && input.overwriteLocalChanges !== true;
  const keptReason = (path: string): string => (input.snapshot.has(path) ? 'modified-locally' : 'created-locally');

  for (const remote of input.remote.values()) {
    const { path } = remote;
    if (input.localDirs.has(path)) {
      plan.blocked.push({ path, reason: 'directory-exists-locally', code: 'EISDIR' });
      continue;
    }
    if (parentDirs(path).some((dir) => input.local.has(dir) || input.localBlocked?.has(dir))) {
      plan.skipped.push({ path, reason: 'parent-is-not-a-directory-locally' });
      continue;
    }
    if (input.localBlocked?.has(path)) {
      plan.blocked.push({ path, reason: 'local-path-is-not-a-regular-file', code: 'NOT_A_FILE' });
      continue;
    }
    const local = input.local.get(path);
    if (local === undefined) {
      addTransfer(plan, remote, input.snapshot.has(path) ? 'missing-locally' : 'new');
      continue;
    }
    const snap = input.snapshot.get(path);
    if (unchangedSinceSync(local, snap, remote)) {
      plan.unchanged.push({ path, md5: (snap as SnapshotEntry).md5, etag: remote.etag, local });
      continue;
    }
    const localMd5 = localMd5Of(local, snap, input.localMd5);
    if (sameContent(local, localMd5, remote)) {
      plan.unchanged.push({ path, md5: localMd5, etag: remote.etag, local });
      continue;
    }
    const provenMd5 = proven(local);
    if (provenMd5 === undefined && keepInPlace) {
      plan.kept.push({ path, reason: keptReason(path) });
      // the object changed (or appeared) since the last sync too: a conflict, settled by the policy
      if (remoteChangedSince(remote, snap)) plan.bothChanged.push({ path, key: remote.key, local, remote, expectedEtag: snap?.etag ?? null });
      continue;
    }
    addTransfer(plan, remote, 'changed', local, provenMd5);
  }

  for (const local of input.local.values()) {
    if (input.remote.has(local.path)) continue;
    if (input.remoteBlocked?.has(local.path)) {
      plan.skipped.push({ path: local.path, reason: 'not-deleted: the key exists remotely but cannot be synced' });
      continue;
    }
    const key = input.prefix + local.path;
    const provenMd5 = proven(local);
    if (provenMd5 !== undefined) {
      plan.deletions.push({ path: local.path, key, reason: 'deleted-remotely', local, provenMd5 });
    } else if (keepInPlace) {
      plan.kept.push({ path: local.path, reason: keptReason(local.path) });
    } else {
      plan.deletions.push({ path: local.path, key, reason: 'not-in-remote', local });
    }
  }
  return plan;
}



/**
 * Plan a push: upload new and changed files; delete only objects this instance
 * synced before and whose file is now gone locally (never objects it has not
 * seen: another writer may have added them). Without a snapshot nothing is deleted.
 */
export function planPush(input: PlanInput): Plan {
  const plan = emptyPlan('push');
  for (const local of input.local.values()) {
    const { path } = local;
    const key = input.prefix + path;
    // Files that cannot be stored are failures, not skips: the bucket would not hold them.
    if (Buffer.byteLength(key, 'utf8') > MAX_KEY_BYTES) {
      plan.blocked.push({ path, reason: `invalid-name: the key would be longer than ${MAX_KEY_BYTES} bytes`, code: 'INVALID_NAME' });
      continue;
    }
    if (local.size > MAX_OBJECT_BYTES) {
      plan.blocked.push({ path, reason: `too-large: ${local.size} bytes, more than an S3 object can hold (5 TiB)`, code: 'TOO_LARGE' });
      continue;
    }
    const snap = input.snapshot.get(path);
    const md5 = localMd5Of(local, snap, input.localMd5);
    if (input.hasSnapshot) {
      if (snap !== undefined && md5 === snap.md5) {
        plan.unchanged.push({ path, md5, etag: snap.etag, local });
      } else {
        // replace exactly the version last synced; a path new to the snapshot is created only if still free
        addUpload(plan, local, key, md5, snap === undefined ? 'new' : 'changed', snap === undefined ? null : snap.etag);
      }
      continue;
    }
    const remote = input.remote.get(path);
    if (remote === undefined) {
      addUpload(plan, local, key, md5, 'new', null);
    } else if (sameContent(local, md5, remote)) {
      plan.unchanged.push({ path, md5, etag: remote.etag, local });
    } else if (input.conflictPolicy === 'keep-local') {
      addUpload(plan, local, key, md5, 'changed', remote.etag);
      plan.transfers[plan.transfers.length - 1]!.replaces = { etag: remote.etag, size: remote.size };
    } else if (input.conflictPolicy === 'keep-remote' || input.conflictPolicy === 'keep-both') {
      plan.bothChanged.push({ path, key, local, remote, expectedEtag: null });
    } else {
      // No snapshot: this instance never saw the bucket's version, so it cannot tell a stale copy from newer work.
      plan.conflicts.push({ path, key, action: 'upload', expectedEtag: null, currentEtag: remote.etag, resolution: 'reported' });
    }
  }
  if (input.hasSnapshot) {
    const blocked = input.localBlocked ?? new Set<string>();
    for (const path of input.snapshot.keys()) {
      if (input.local.has(path)) continue;
      // Something unreadable, a symlink or a special file stands at this path
      // or above it: the file may well still exist; never delete its object.
      const blocker = [path, ...parentDirs(path)].find((p) => blocked.has(p));
      if (blocker !== undefined) {
        plan.skipped.push({ path, reason: `not-deleted: local "${blocker}" is not a readable regular file or directory` });
        continue;
      }
      if (input.isIgnored?.(path) || parentDirs(path).some((dir) => input.isIgnored?.(`${dir}/`))) continue;
      // A directory now standing where the file was does not save the old object.
      const d: Deletion = { path, key: input.prefix + path, reason: 'deleted-locally' };
      const etag = input.snapshot.get(path)?.etag;
      if (etag !== undefined) d.expectedEtag = etag; // only the version last synced: a newer one is another writer's
      plan.deletions.push(d);
    }
  }
  return plan;
}

/**
 * Whether the object's content changed since the snapshot's entry (a pull's
 * local file changed too: a conflict). No entry: the object appeared since
 * (both sides created the path). The version recorded (same ETag) did not
 * change; otherwise a known MD5 decides (an SSE-KMS rewrite of the same bytes
 * is not a change); an unknown one counts as a change.
 */
export function remoteChangedSince(remote: RemoteObject, snap: SnapshotEntry | undefined): boolean {
  if (snap === undefined) return true;
  if (snap.etag !== undefined && snap.etag === remote.etag) return false;
  return remote.md5 === undefined || remote.md5 !== snap.md5;
}

function emptyPlan(direction: 'pull' | 'push'): Plan {
  return { direction, transfers: [], deletions: [], skipped: [], kept: [], blocked: [], unchanged: [], conflicts: [], bothChanged: [], transferBytes: 0 };
}

function addTransfer(plan: Plan, remote: RemoteObject, reason: TransferReason, local?: LocalFile, provenMd5?: string): void {
  const t: Transfer = { path: remote.path, key: remote.key, size: remote.size, md5: remote.md5, etag: remote.etag, reason };
  if (local !== undefined) t.local = local;
  if (provenMd5 !== undefined) t.provenMd5 = provenMd5;
  plan.transfers.push(t);
  plan.transferBytes += remote.size;
}

function addUpload(plan: Plan, local: LocalFile, key: string, md5: string | undefined, reason: TransferReason, expectedEtag: string | null | undefined): void {
  plan.transfers.push({ path: local.path, key, size: local.size, md5, mtimeMs: local.mtimeMs, reason, expectedEtag });
  plan.transferBytes += local.size;
}
