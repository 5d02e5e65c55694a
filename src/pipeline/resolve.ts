/**
 * The resolve stage: conflicts the policy settles with more than a retried
 * write — a path both sides changed since this instance last synced it.
 * Runs inside the execute stage: a push's after its uploads (upload
 * conflicts) and after its deletions (deletion conflicts); a pull's after its
 * downloads and deletions.
 *
 * Nothing a user wrote is lost, whatever the policy: a version about to be
 * replaced is saved first — the other writer's into the bucket's conflicts
 * area with a server-side copy (`keep-local`), the local bytes into the same
 * area with a create-only PUT and into the workspace's recovery area
 * (`keep-remote`), or kept as a conflict copy on both sides (`keep-both`).
 * The remote version comes into the workspace through the pull machinery
 * (temp file, verify, no-replace commit). Whatever cannot be done is reported
 * (`resolution: 'reported'`, a `CONFLICT` failure) with nothing overwritten.
 */
import { randomBytes } from 'node:crypto';
import { linkSync, lstatSync, renameSync, unlinkSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { eachLimited } from '../core/each.js';
import { conflictAreaPrefix, freeConflictCopyPath, writerLabel, type ConflictCopyLabel } from '../core/conflict-names.js';
import type { ConflictPolicy, LocalFile, SyncConflict } from '../core/model.js';
import type { Outcomes } from '../core/record.js';
import type { PathTracker } from '../core/priority.js';
import { ConflictError, LocalFileError, StorageError, escapeForLog, messageOf } from '../errors.js';
import { toLocalFile } from '../local/scanner.js';
import type { WorkspaceWriter } from '../local/WorkspaceWriter.js';
import type { ObjectInfo } from '../storage/ObjectStore.js';
import { withRetries } from '../transfer/retry.js';
import { ownWrite, runDownloads, saveRemoteVersion, uploadOne, type LargeFileSettings, type TransferDone, type UploadContext } from '../transfer/transfers.js';
import type { SyncResult } from '../types.js';
import type { SyncCall, SyncContext } from './context.js';
import { addConflict, settleFailure } from './result.js';

/** Resolutions run at once (each a few requests; conflicts are rare). */
const RESOLVE_CONCURRENCY = 4;

/** What the key holds (`null`: nothing; `undefined`: not known yet, HEAD it). */
export type CurrentVersion = Pick<ObjectInfo, 'etag' | 'size'> & { md5?: string | undefined };

/** One conflict to settle. */
export interface Unresolved {
  /** The conflict as met (`resolution: 'reported'`). */
  conflict: SyncConflict;
  current: CurrentVersion | null | undefined;
}

/** Where one sync keeps what its conflict policy replaces, and how it names conflict copies. */
export class ConflictArea {
  /** `<prefix>.s3-workspace-sync/conflicts/<stamp>-<hex>/` */
  readonly prefix: string;
  readonly label: ConflictCopyLabel;

  constructor(bucketPrefix: string, now: Date = new Date()) {
    const random = randomBytes(3).toString('hex');
    this.prefix = conflictAreaPrefix(bucketPrefix, now, random);
    this.label = { now, who: writerLabel(hostname(), random) };
  }

  keyFor(path: string): string {
    return this.prefix + path;
  }
}

/** What the stage works with. */
export interface Resolver {
  readonly ctx: SyncContext;
  readonly call: SyncCall;
  readonly result: SyncResult;
  readonly outcomes: Outcomes;
  readonly root: string;
  readonly area: ConflictArea;
  readonly writer: WorkspaceWriter;
  readonly large: LargeFileSettings;
  /** The filesystem answers synchronous calls fast (see the scan). */
  readonly syncIo: boolean;
  readonly paths?: PathTracker | undefined;
}

/** Settle each conflict by the call's policy; report (and count as a failure) what cannot be settled. */
export async function resolveConflicts(r: Resolver, items: readonly Unresolved[]): Promise<void> {
  if (items.length === 0) return;
  await eachLimited(items, RESOLVE_CONCURRENCY, async (item) => {
    if (r.call.signal?.aborted) return; // not started: the next sync meets it again
    let resolved: SyncConflict | undefined;
    let why: unknown;
    try {
      resolved = await resolveOne(r, item, r.call.conflictPolicy);
    } catch (error) {
      if (r.call.signal?.aborted) return;
      why = error;
    }
    if (resolved !== undefined && resolved.resolution !== 'reported') {
      r.result.conflicts.push(resolved);
      r.paths?.settled(item.conflict.path);
      if (resolved.action === 'download' && resolved.resolution !== 'kept-local') unkeep(r.result, resolved.path);
      return;
    }
    const reported = resolved ?? item.conflict;
    if (why !== undefined && !(why instanceof ConflictError)) {
      r.ctx.options.logger.warn(`Conflict on ${escapeForLog(reported.path)} not resolved (${r.call.conflictPolicy}): ${messageOf(why)}`);
    }
    const failed = addConflict(r.result, reported);
    r.paths?.settled(reported.path, failed);
  });
}

/** One conflict: the resolved conflict, or a `reported` one (nothing replaced). Throws when something failed on the way (nothing replaced either). */
async function resolveOne(r: Resolver, item: Unresolved, policy: ConflictPolicy): Promise<SyncConflict> {
  const { conflict } = item;
  const current = item.current !== undefined ? item.current : await headCurrent(r, conflict.key);
  if (current === undefined) return conflict; // cannot tell what the bucket holds: report
  const seen: SyncConflict = { ...conflict, currentEtag: current === null ? null : current.etag };
  const local = localFileAt(r.root, conflict.path);
  switch (policy) {
    case 'fail':
      return seen;
    case 'keep-local':
      return keepLocal(r, seen, current, local);
    case 'keep-remote':
      return keepRemote(r, seen, current, local);
    case 'keep-both':
      return keepBoth(r, seen, current, local);
  }
}

/**
 * `keep-local` for what the upload path does not settle: a deletion (save
 * the current version, then delete it `If-Match` it), and a pull's file
 * (kept in place for the next push, which settles it).
 */
async function keepLocal(r: Resolver, c: SyncConflict, current: CurrentVersion | null, local: LocalFile | undefined): Promise<SyncConflict> {
  if (c.action === 'download') return local === undefined ? c : { ...c, resolution: 'kept-local' };
  if (c.action !== 'delete' || local !== undefined) return c; // a file came back at the path: nothing to decide here
  if (current === null) {
    deleted(r, c.path); // gone meanwhile: what the deletion wanted
    return { ...c, resolution: 'kept-local' };
  }
  const saved = await saveRemoteVersion(r.ctx.store, c.key, current, r.area.keyFor(c.path), r.call.signal);
  if (saved.savedTo === undefined) return saved.changed ? { ...c, currentEtag: undefined } : c;
  const failures = await r.ctx.store.deleteMany([{ key: c.key, etag: current.etag }], r.call.signal);
  const f = failures[0];
  if (f !== undefined && f.code !== 'NOT_FOUND') return { ...c, currentEtag: undefined, remoteSavedTo: saved.savedTo };
  deleted(r, c.path);
  r.result.deletedFiles++;
  return { ...c, resolution: 'kept-local', remoteSavedTo: saved.savedTo };
}

/**
 * `keep-remote`: the bucket's version (or its absence) wins. A local file is
 * first saved into the conflicts area (a create-only PUT), then moved into
 * the recovery area as the remote version replaces it (or as the path is
 * emptied, when the remote side deleted it).
 */
async function keepRemote(r: Resolver, c: SyncConflict, current: CurrentVersion | null, local: LocalFile | undefined): Promise<SyncConflict> {
  if (local === undefined) {
    if (current === null) {
      deleted(r, c.path); // deleted on both sides
      return { ...c, resolution: 'kept-remote' };
    }
    await download(r, c, current, undefined); // deleted here, changed there: restore it
    return { ...c, resolution: 'kept-remote' };
  }
  const saved = await saveLocal(r, local, r.area.keyFor(c.path));
  if (current === null) {
    await r.writer.removeFile(c.path, { local: saved, proven: undefined }); // into the recovery area, kept there
    deleted(r, c.path);
  } else {
    await download(r, c, current, saved);
  }
  return { ...c, resolution: 'kept-remote', localSavedTo: r.area.keyFor(c.path) };
}

/**
 * `keep-both`: the remote version stays at the path; the local file becomes
 * a conflict copy next to it, uploaded as a new object (a push) or left for
 * the next push (a pull). The remote side deleted the path: the local file
 * is created again there (`If-None-Match: *`), as `keep-local` does.
 */
async function keepBoth(r: Resolver, c: SyncConflict, current: CurrentVersion | null, local: LocalFile | undefined): Promise<SyncConflict> {
  if (local === undefined) return keepRemote(r, c, current, undefined);
  if (current === null) {
    if (c.action === 'download') return { ...c, resolution: 'kept-local' };
    await upload(r, c.path, c.key);
    return { ...c, resolution: 'kept-local' };
  }
  const copy = renameToConflictCopy(r, c.path, local);
  if (r.call.direction === 'push') {
    try {
      await upload(r, copy, r.ctx.options.prefix + copy);
    } catch (error) {
      // the copy stays in the workspace (the next push uploads it); the path still gets the remote version
      if (r.call.signal?.aborted) throw error;
      settleFailure(r.result, copy, error, r.paths);
    }
  }
  await download(r, c, current, undefined);
  return { ...c, resolution: 'kept-both', conflictCopy: copy };
}

/** HEAD the key: its version, `null` when it has none, `undefined` when the HEAD failed. */
async function headCurrent(r: Resolver, key: string): Promise<CurrentVersion | null | undefined> {
  try {
    const info = await r.ctx.store.head(key, r.call.signal);
    return { etag: info.etag, size: info.size, md5: info.md5 };
  } catch (error) {
    if (r.call.signal?.aborted) throw error;
    return error instanceof StorageError && error.code === 'NOT_FOUND' ? null : undefined;
  }
}

/** The regular file at `path` now (`undefined`: none, or not a regular file). */
function localFileAt(root: string, path: string): LocalFile | undefined {
  try {
    const st = lstatSync(join(root, path), { throwIfNoEntry: false });
    return st?.isFile() ? toLocalFile(path, st) : undefined;
  } catch {
    return undefined;
  }
}

function uploadContext(r: Resolver): UploadContext {
  const o = r.ctx.options;
  return {
    store: r.ctx.store,
    root: r.root,
    concurrency: 1,
    large: r.large,
    attempts: o.maxAttempts,
    contentType: o.contentTypeResolver,
    uploadParams: o.uploadParams,
    syncIo: r.syncIo,
    signal: r.call.signal,
  };
}

/**
 * Save the local file's bytes at `key` in the conflicts area (create only).
 * Returns the file as it was read: the one a later replacement must find.
 */
async function saveLocal(r: Resolver, local: LocalFile, key: string): Promise<LocalFile> {
  const ctx = uploadContext(r);
  const t = { path: local.path, key, size: local.size, mtimeMs: local.mtimeMs, reason: 'new' as const, expectedEtag: null };
  try {
    const done = await withRetries(() => uploadOne(t, ctx, () => undefined), r.call.signal, ctx.attempts);
    return fileOf(done);
  } catch (error) {
    // an earlier attempt landed and its answer was lost: the object holds exactly these bytes
    if (error instanceof StorageError && error.code === 'PRECONDITION_FAILED') {
      const info = await r.ctx.store.head(key, r.call.signal).catch(() => undefined);
      const mine = info === undefined ? undefined : await ownWrite(r.root, local.path, info, r.call.signal);
      if (mine !== undefined) return mine;
    }
    throw error;
  }
}

/** Upload the file at `path` as a new object `key` (`If-None-Match: *`), recorded as synced. */
async function upload(r: Resolver, path: string, key: string): Promise<void> {
  const ctx = uploadContext(r);
  const size = localFileAt(r.root, path)?.size ?? 0;
  const done = await withRetries(() => uploadOne({ path, key, size, reason: 'new', expectedEtag: null }, ctx, () => undefined), r.call.signal, ctx.attempts);
  r.outcomes.transferred.push({ path, entry: done.entry });
  r.result.uploadedFiles++;
  r.result.bytesTransferred += done.bytes;
}

/**
 * Bring `current` into the workspace at the conflict's path, as a pull
 * does: temp file, verified, committed without replacing anything but
 * `local` (which goes into the recovery area, kept there). Recorded as synced.
 */
async function download(r: Resolver, c: SyncConflict, current: CurrentVersion, local: LocalFile | undefined): Promise<void> {
  let done: TransferDone | undefined;
  let failure: unknown;
  await runDownloads(
    [{ path: c.path, key: c.key, size: current.size, md5: current.md5, etag: current.etag, reason: 'changed', local }],
    { store: r.ctx.store, writer: r.writer, concurrency: 1, large: r.large, attempts: r.ctx.options.maxAttempts, signal: r.call.signal },
    {
      onBytes: () => undefined,
      onDone: (d) => {
        done = d;
      },
      onFailed: (_path, error) => {
        failure = error;
      },
    },
  );
  if (done === undefined) {
    r.call.signal?.throwIfAborted();
    throw failure ?? new Error(`internal: the download of ${escapeForLog(c.path)} neither finished nor failed`);
  }
  r.outcomes.transferred.push({ path: done.path, entry: done.entry });
  r.result.downloadedFiles++;
  r.result.bytesTransferred += done.bytes;
}

/**
 * Give the local file at `path` a conflict copy's name in the same folder,
 * never replacing anything: link(2) to the first free name, then unlink the
 * old name once it is confirmed to be the same file (a file saved over it
 * meanwhile is not moved). Returns the copy's workspace path.
 */
function renameToConflictCopy(r: Resolver, path: string, local: LocalFile): string {
  const from = join(r.root, path);
  const unchanged = (): boolean => {
    const st = lstatSync(from, { throwIfNoEntry: false });
    return st !== undefined && st.isFile() && st.ino === local.ino && st.size === local.size && st.mtimeMs === local.mtimeMs;
  };
  const changed = (): LocalFileError => new LocalFileError('CHANGED_DURING_SYNC', path, `"${path}" changed locally during the sync; kept, no conflict copy made`);
  if (!unchanged()) throw changed();
  let placed: { copy: string; renamed: boolean } | undefined;
  const copy = freeConflictCopyPath(
    path,
    r.area.label,
    (candidate) => {
      const to = join(r.root, candidate);
      try {
        linkSync(from, to);
        placed = { copy: candidate, renamed: false };
        return false;
      } catch (error) {
        const code = (error as NodeJS.ErrnoException).code;
        if (code === 'EEXIST' || lstatSync(to, { throwIfNoEntry: false }) !== undefined) return true;
        if (code === 'ENOENT') throw changed();
        // no hard links on this filesystem: a check, then a rename (a window of microseconds)
        renameSync(from, to);
        placed = { copy: candidate, renamed: true };
        return false;
      }
    },
    r.ctx.options.prefix,
  );
  if (copy === undefined || placed === undefined) throw new LocalFileError('INVALID_NAME', path, `No free, valid conflict copy name for "${path}"`);
  if (placed.renamed) return copy;
  if (!unchanged()) {
    unlinkSync(join(r.root, copy)); // a file was saved over the path meanwhile: leave it, and report
    throw changed();
  }
  unlinkSync(from);
  return copy;
}

/** A pull's path the plan kept in place, replaced after all: no longer reported as kept. */
function unkeep(result: SyncResult, path: string): void {
  const i = result.keptLocal.findIndex((k) => k.path === path);
  if (i >= 0) result.keptLocal.splice(i, 1);
  const j = result.skippedFiles.findIndex((k) => k.path === path && (k.reason === 'modified-locally' || k.reason === 'created-locally'));
  if (j >= 0) result.skippedFiles.splice(j, 1);
}

function deleted(r: Resolver, path: string): void {
  r.outcomes.deleted.push(path);
}

function fileOf(done: TransferDone): LocalFile {
  const { size, mtimeMs, ctimeMs, ino } = done.entry;
  return { path: done.path, size, mtimeMs, ctimeMs, ino };
}
