/**
 * What the pipeline's stages hand each other: a local file as scanned, an
 * object as listed, and what the last sync recorded. Types only.
 */

/** Stat of a local regular file (what change detection needs). */
export interface LocalFile {
  path: string;
  size: number;
  mtimeMs: number;
  ctimeMs: number;
  ino: number;
  /** Permission bits (`st.mode & 0o7777`), recorded in the manifest; not synced. */
  mode?: number | undefined;
}

/** A listed object before validation. */
export interface ListedObject {
  key: string;
  size: number;
  etag: string;
  lastModifiedMs?: number | undefined;
  /** The content's MD5, when the source vouches for it (the committed manifest; a listing never does). */
  md5?: string | undefined;
  /** The file's mtime recorded at upload, when the source says (the committed manifest). */
  mtimeMs?: number | undefined;
}

/** An object under the prefix, as listed. */
export interface RemoteObject {
  key: string;
  /** Workspace-relative path (key minus prefix). */
  path: string;
  size: number;
  /** ETag without quotes. */
  etag: string;
  /** MD5 (hex) of the content when known: from a plain ETag or from metadata. */
  md5?: string | undefined;
  /**
   * `md5` was read off the ETag, which merely looks like an MD5: under
   * SSE-KMS (and SSE-C) it is not one. A mismatch with a local file of the
   * same size is confirmed from the metadata before it counts (see
   * {@link etagsToConfirm}).
   */
  md5FromEtag?: boolean | undefined;
  lastModifiedMs?: number | undefined;
  /** The file's mtime recorded in metadata at upload (known after a HEAD). */
  mtimeMs?: number | undefined;
  /** Part size of a multipart object (known after a HEAD: `partsize` metadata, or the size of part 1). */
  partSize?: number | undefined;
}

/** What this instance knows was identical on both sides at its last sync. */
export interface SnapshotEntry {
  size: number;
  mtimeMs: number;
  ctimeMs: number;
  ino: number;
  md5: string;
  /** The object's ETag at that time, when known. */
  etag?: string | undefined;
  /**
   * The file was modified so shortly before its stat was taken that a later
   * modification could leave size, mtime and ctime unchanged (the "racy git"
   * problem): its stat proves nothing, and its content is hashed next time.
   */
  racy?: boolean | undefined;
}

export type Snapshot = Map<string, SnapshotEntry>;

/** Why a file is transferred: `new`, `changed`, or (pull) `missing-locally` (synced before, gone from disk). */
export type TransferReason = 'new' | 'changed' | 'missing-locally';

/** Why a file or object is deleted: `not-in-remote` (a fresh pull mirrors), `deleted-remotely` (pull), `deleted-locally` (push). */
export type DeletionReason = 'not-in-remote' | 'deleted-remotely' | 'deleted-locally';

/** One file the sync did not act on, and why. */
export interface SkippedFile {
  /** Workspace-relative POSIX path (or the object key, for keys that are not valid paths). */
  path: string;
  /** Why it was skipped, e.g. `ignored`, `symlink`, `invalid-key: contains a '..' segment`. */
  reason: string;
}

/** One file whose transfer or deletion failed. */
export interface FailedFile {
  path: string;
  /** Error message. */
  error: string;
  /** Machine-readable code: a `SyncError` code (`INTEGRITY`, `ACCESS_DENIED`, `SYMLINK_IN_PATH`…) or an errno (`EACCES`, `ENOSPC`…). */
  code?: string;
}

/** Why a pull moved a local file into the recovery area. */
export type MovedAsideReason =
  /** The bucket does not have the file; the pull would have deleted it. */
  | 'not-in-remote'
  /** The bucket has other content; the pull would have overwritten it. */
  | 'differs-from-remote';

/** A local file a pull moved into the recovery area instead of destroying it. */
export interface MovedAside {
  /** Workspace-relative path the file had. */
  path: string;
  /** Absolute path where it is now: `<workspace>/.s3-workspace-sync/recovered/<time>/<path>`. */
  movedTo: string;
  reason: MovedAsideReason;
}

/**
 * What a sync does where both sides changed a path since this instance last
 * synced it (push: a write whose condition failed, or a fresh instance over
 * other content; pull: a file modified locally whose object changed too).
 * Nothing a user wrote is lost under any policy:
 * - `fail` (default): report the conflict, change neither side;
 * - `keep-local`: the local version wins; the other writer's version is
 *   first saved into the bucket's conflicts area (a server-side copy), then
 *   replaced on condition that it is still the version just seen;
 * - `keep-remote`: the other writer's version wins; the local bytes are first
 *   saved into the bucket's conflicts area, then the local file is moved into
 *   the recovery area and the remote version downloaded in its place;
 * - `keep-both`: the remote version stays at the path; the local file is
 *   renamed to a conflict copy (`notes (conflict 2026-12-06 054103 host).md`)
 *   and uploaded as a new object.
 */
export type ConflictPolicy = 'fail' | 'keep-local' | 'keep-remote' | 'keep-both';

/** A path where this sync met another writer's change, and what became of it. */
export interface SyncConflict {
  path: string;
  key: string;
  /**
   * What this sync meant to do: `upload` / `delete` an object (push), or
   * `download` it over a file modified locally (pull).
   */
  action: 'upload' | 'delete' | 'download';
  /** The object this instance last saw at the key: its ETag, or `null` when it saw none (it meant to create the key). */
  expectedEtag: string | null;
  /** What the bucket holds now: the ETag, `null` when the key has no object, `undefined` when unknown. */
  currentEtag: string | null | undefined;
  /**
   * - `reported` (policy `fail`, or the policy could not be applied: a third
   *   writer got in the way, an object over 5 GiB to save…): neither side was
   *   changed; also a failure (code `CONFLICT`).
   * - `kept-local`: the local file is what the bucket holds at the path now
   *   (push), or stays in place for the next push (pull).
   * - `kept-remote`: the bucket's version (or its absence) is what the
   *   workspace holds at the path now.
   * - `kept-both`: the bucket's version is at the path on both sides; the
   *   local bytes are at {@link conflictCopy} on both sides (pull: locally,
   *   uploaded by the next push).
   */
  resolution: 'reported' | 'kept-local' | 'kept-remote' | 'kept-both';
  /** Key in the bucket's conflicts area where the other writer's version was saved before it was replaced (`keep-local`). */
  remoteSavedTo?: string;
  /** Key in the bucket's conflicts area where the local bytes were saved before the local file was replaced (`keep-remote`). */
  localSavedTo?: string;
  /** Workspace path of the conflict copy holding the local bytes (`keep-both`). */
  conflictCopy?: string;
}

/** What {@link verify} found. Paths are workspace-relative POSIX paths; keys are full object keys. */
export interface VerifyReport {
  /** `true` only when `missingLocally`, `missingRemotely`, `different` and `unknown` are all empty. */
  ok: boolean;
  /** Paths compared: every synced local file and every synced object, counted once per path (skipped ones excluded). */
  checked: number;
  /** Objects with no local file at their path. */
  missingLocally: Array<{ path: string; key: string }>;
  /** Local files with no object at their key. */
  missingRemotely: Array<{ path: string }>;
  /**
   * File and object both present, with different bytes: different sizes, or
   * the same size and different known MD5s. `localMd5` / `remoteMd5` are given
   * when known (a remote MD5 only when it is proven: metadata, or an ETag
   * confirmed to be one).
   */
  different: Array<{ path: string; key: string; localMd5?: string; remoteMd5?: string; localSize: number; remoteSize: number }>;
  /**
   * File and object both present with the same size, but whether they hold
   * the same bytes cannot be known without downloading the object. `reason`
   * starts with a code: `no-md5` (the object has no MD5 metadata and its ETag
   * is not an MD5: SSE-KMS, SSE-C, another server), `multipart-etag-mismatch`
   * (another tool's multipart object without MD5 metadata whose ETag the
   * local file's multipart ETag, computed with the object's likely part
   * sizes, does not reproduce: different content, or another part layout),
   * `unconfirmed` (the HEAD that would tell failed, or the object changed
   * during the verify), `local-not-comparable` (a symlink, special or
   * unreadable entry stands at the path or above it locally),
   * `remote-not-comparable` (the key is also a "directory" of other keys).
   */
  unknown: Array<{ path: string; key: string; reason: string }>;
  /**
   * What was not compared, with a reason, as a sync reports it: objects the
   * ignore rules exclude (`ignored`, including the library's own folder
   * `.s3-workspace-sync/` and its workspace identity object), invalid keys
   * (`invalid-key: …`), folder markers, file/directory collisions, and local
   * entries that are not regular files (`symlink`, `unreadable: EACCES`…).
   * Ignored local files are not listed (the scan does not enter ignored
   * directories).
   */
  skipped: SkippedFile[];
  /**
   * The committed manifest (`<prefix>.s3-workspace-sync/manifest.json`)
   * against the bucket as listed, or `null` when the prefix has none (no push
   * of this library version yet). `missing`: objects the manifest does not
   * name (uploaded by other tools, or by a push whose commit failed);
   * `extra`: paths it names that have no object; `different`: paths whose
   * object has another ETag than the manifest's. Other tools writing into
   * the prefix make it differ: it does not change `ok`.
   */
  manifest: { generation: number; committedAt: string; ok: boolean; missing: string[]; extra: string[]; different: string[] } | null;
}
