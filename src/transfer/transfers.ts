/**
 * Executes a plan's transfers and deletions with bounded concurrency. Every
 * finished item is reported through callbacks so the facade can count, emit
 * progress and update the snapshot only for what actually succeeded.
 */
import { closeSync, constants, fstatSync, openSync, readSync, type Stats } from 'node:fs';
import { lstat, open, type FileHandle } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { finished, Readable } from 'node:stream';
import type { LimitFunction } from 'p-limit';
import { eachLimited } from '../core/each.js';
import { choosePartSize, multipartPartCount, partSizesFor } from '../core/multipart.js';
import { contentMd5 } from '../core/compare.js';
import { unquoteEtag } from '../core/md5.js';
import type { ConflictPolicy, LocalFile, SnapshotEntry, SyncConflict } from '../core/model.js';
import type { Deletion, Transfer } from '../core/plan.js';
import { parentDirs } from '../core/paths.js';
import { BROKEN_CONNECTION_CODES, ConflictError, IntegrityError, LocalFileError, StorageError, SyncError, escapeForLog, messageOf } from '../errors.js';
import { MultipartEtagHasher, calculateFileHash, hashFileWithEtags } from '../local/hash.js';
import type { HashPool, HashStream } from '../local/HashPool.js';
import { toLocalFile } from '../local/scanner.js';
import { assertRealParent } from '../local/path-guard.js';
import type { WorkspaceWriter } from '../local/WorkspaceWriter.js';
import { MAX_COPY_BYTES, etagIsNotMd5, type ObjectInfo, type ObjectStore } from '../storage/ObjectStore.js';
import { describeSdkTimeout } from '../storage/stall.js';
import { BufferPool, rangedChunks, uploadMultipart } from './multipart.js';
import { withRetries } from './retry.js';
import type { CheckedUploadParams } from '../upload-params.js';

/**
 * Downloads up to this size (by their Content-Length) are read whole into
 * memory, verified, then written with one synchronous write: per file, a
 * few system calls instead of a chain of thread-pool round trips. Memory:
 * at most `downloadConcurrency × SMALL_DOWNLOAD_MAX` in such bodies.
 */
export const SMALL_DOWNLOAD_MAX = 1024 * 1024;

/** Files up to this size are read into memory for upload (one read, hashed and sent from the same bytes, retryable by the SDK). */
export const BUFFERED_UPLOAD_MAX = 8 * 1024 * 1024;
/**
 * Files up to this size are opened, read and closed with synchronous calls
 * when the filesystem is fast (a few µs each, against ~100 µs of CPU for each
 * promise-based FileHandle call): most of a code workspace.
 */
export const SYNC_UPLOAD_MAX = 256 * 1024;

const CHECKSUM_HINT =
  'If the server is S3-compatible (R2, MinIO, s3rver…), build the S3Client with ' +
  "requestChecksumCalculation: 'WHEN_REQUIRED' and responseChecksumValidation: 'WHEN_REQUIRED'.";

export interface TransferDone {
  path: string;
  bytes: number;
  entry: SnapshotEntry;
  /** Push: the upload met another writer's version, saved it into the conflicts area and replaced it (conflict policy `keep-local`). */
  conflict?: SyncConflict | undefined;
}

export interface ExecuteHooks {
  /** Bytes of `path` moved (negative: a failed attempt's bytes given back). */
  onBytes(n: number, path: string, size: number): void;
  onDone(done: TransferDone): void;
  onFailed(path: string, error: unknown): void;
}

/**
 * Run one function per transfer through a single concurrency limiter, each
 * retried as a whole after transient failures; outcomes go to the hooks, so
 * one failed file never stops the others.
 */
async function runEach(
  transfers: Transfer[],
  ctx: TransferContext,
  one: (t: Transfer) => Promise<TransferDone>,
  hooks: ExecuteHooks,
): Promise<void> {
  const { signal } = ctx;
  await eachLimited(transfers, ctx.concurrency, async (t) => {
    if (signal?.aborted) return; // not started: a later sync does it
    let done: TransferDone;
    try {
      done = await withRetries(() => one(t), signal, ctx.attempts);
    } catch (error) {
      hooks.onFailed(t.path, error);
      return;
    }
    hooks.onDone(done);
  });
}

/** How large files move: multipart uploads and ranged downloads above `threshold`. */
export interface LargeFileSettings {
  /** Files at or above this size use multipart upload / parallel ranged download. */
  threshold: number;
  /** Preferred part (and range) size; grown so a file never needs more than 10,000 parts. */
  partSize: number;
  /** Shared by the whole sync: parts and ranges in flight (memory ≤ this × partSize). */
  partLimit: LimitFunction;
  /** Part and range buffers of `partSize`, reused for the whole sync. */
  buffers: BufferPool;
  /** Ranges fetched ahead per large download. */
  rangesPerFile: number;
  /** Large downloads at once (each holds up to `rangesPerFile` ranges in memory). */
  largeDownloadLimit: LimitFunction;
  /** MD5 workers for large files. */
  hashes: HashPool;
  /** Hash a file before its multipart upload so its MD5 can be stored as `md5chksum` (an extra read). */
  prehash?: boolean | undefined;
}

/** What every transfer of one sync shares. */
export interface TransferContext {
  store: ObjectStore;
  /** Files in flight. */
  concurrency: number;
  large: LargeFileSettings;
  /** Attempts per whole transfer (where the SDK cannot retry). */
  attempts?: number | undefined;
  signal?: AbortSignal | undefined;
}

export interface DownloadContext extends TransferContext {
  writer: WorkspaceWriter;
}

export interface UploadContext extends TransferContext {
  root: string;
  contentType: (path: string) => string;
  /** The user's S3 settings for one file (a bad result throws a ConfigError: that file fails). */
  uploadParams?: ((file: { path: string; size: number }) => CheckedUploadParams | undefined) | undefined;
  /** The filesystem answers synchronous calls fast (the scan measured it): small files are read synchronously. */
  syncIo?: boolean | undefined;
  /** What an upload whose condition fails does (see `ConflictPolicy`). Default `fail`. */
  conflictPolicy?: ConflictPolicy | undefined;
  /** The key in this sync's conflicts area for a workspace path (where a version about to be replaced is saved). */
  conflictKey?: ((path: string) => string) | undefined;
}

/**
 * A conflict the policy settles after the transfers (`keep-remote`,
 * `keep-both`: a download or a copy of the local file is needed): what the
 * key held when the condition failed (`null`: nothing; `undefined`: the HEAD
 * failed). Not reported until then.
 */
export class PendingConflict extends ConflictError {
  constructor(
    conflict: SyncConflict,
    readonly current: ObjectInfo | null | undefined,
    options: { cause?: unknown } = {},
  ) {
    super(conflict, options);
  }
}

/** Download every transfer of a pull plan: temp file → verify → rename. */
export function runDownloads(
  transfers: Transfer[],
  ctx: DownloadContext,
  hooks: ExecuteHooks,
): Promise<void> {
  return runEach(
    transfers,
    ctx,
    (t) => (t.size >= ctx.large.threshold ? ctx.large.largeDownloadLimit(() => downloadOne(t, ctx, hooks)) : downloadOne(t, ctx, hooks)),
    hooks,
  );
}

async function downloadOne(
  t: Transfer,
  ctx: DownloadContext,
  hooks: ExecuteHooks,
): Promise<TransferDone> {
  await ctx.writer.ensureParents(t.path); // no request when the path cannot be written
  const ranged = t.size >= ctx.large.threshold;
  let info: ObjectInfo;
  let source: Buffer | (AsyncIterable<Buffer> & { destroy(): void });
  const ref: { value?: ObjectInfo } = {};
  if (ranged) {
    const rangeSize = choosePartSize(t.size, ctx.large.partSize);
    const chunks = rangedChunks(
      ctx.store,
      t.key,
      t.size,
      rangeSize,
      ctx.large.rangesPerFile,
      ctx.large.partLimit,
      ctx.large.buffers,
      ctx.attempts ?? 3,
      ref,
      ctx.signal,
      t.etag,
    );
    source = Object.assign(chunks, { destroy: () => void chunks.return(undefined) });
    // Metadata and ETag arrive with the first range; they are read in verify().
    info = { size: t.size, etag: t.etag ?? '' };
  } else {
    // only the version the plan was made from: one replaced since fails (412) instead of mixing versions
    const got = await ctx.store.get(t.key, ctx.signal, t.etag === undefined ? undefined : { ifMatch: t.etag });
    info = got;
    source = got.body as Readable & AsyncIterable<Buffer>;
    if (got.size <= SMALL_DOWNLOAD_MAX) {
      try {
        source = await readWhole(got.body, got.size, t.path);
      } catch (error) {
        throw bodyError(error, t.key);
      }
    }
  }
  // Objects without an MD5 (multipart, written by other tools) are checked by
  // their multipart ETag; decided on the first chunk, once the metadata is known.
  const parts = multipartPartCount(t.etag ?? '');
  const etagSizes = (): number[] => {
    const meta = ref.value ?? info;
    if (parts === undefined || meta.md5 !== undefined) return [];
    return partSizesFor(t.size, parts, meta.partSize); // our own multipart uploads say their part size
  };
  let etags: string[] | undefined;
  let etagHasher: MultipartEtagHasher | undefined;
  let decided = false;
  const onChunk = (chunk: Buffer): void => {
    if (!decided) {
      decided = true;
      const sizes = etagSizes();
      if (sizes.length > 0) etagHasher = new MultipartEtagHasher(sizes);
    }
    etagHasher?.update(chunk);
  };
  // Ranged downloads hash through the MD5 pool: on a worker (the pool's
  // buffers are shared with it), or in-thread with hashThreads: 0.
  let stream: HashStream | undefined;
  const pooled =
    ranged
      ? {
          update: (chunk: Buffer): Promise<void> => (stream ??= ctx.large.hashes.stream(etagSizes())).update(chunk),
          digest: async (): Promise<string> => {
            const d = await (stream ??= ctx.large.hashes.stream(etagSizes())).digest();
            etags = d.etags;
            return d.md5;
          },
        }
      : undefined;
  let counted = 0;
  try {
    const { md5, stat } = await ctx.writer.writeAtomic(
      t.path,
      source,
      {
        mtimeMs: () => (ref.value ?? info).mtimeMs ?? (ref.value ?? info).lastModifiedMs,
        signal: ctx.signal,
        onBytes: (n) => {
          counted += n;
          hooks.onBytes(n, t.path, t.size);
        },
        ...(pooled !== undefined ? { hash: pooled } : parts !== undefined ? { onChunk } : {}),
        expected: { local: t.local, proven: t.provenMd5 },
      },
      async (bytes, md5, tempPath) => {
        const meta = ref.value ?? info;
        const size = ranged ? t.size : meta.size;
        if (bytes !== size) {
          throw new IntegrityError(t.path, `${size} bytes`, `${bytes} bytes`, `Download of "${t.path}" is truncated: got ${bytes} of ${size} bytes`);
        }
        const expected = contentMd5(meta);
        if (expected !== undefined) {
          if (md5 !== expected) {
            throw new IntegrityError(t.path, expected, md5, `Download of "${t.path}" is corrupt: MD5 ${md5}, expected ${expected}`);
          }
        } else if ((etags ??= etagHasher?.digest()) !== undefined && etags.length > 0 && !etagIsNotMd5(meta.serverSideEncryption) && !etags.includes(unquoteEtag(meta.etag))) {
          // None of the guessed part sizes: ask the server for the real one, and read the file back once with it.
          const tried = etagSizes();
          const real = meta.partSize === undefined && tempPath !== undefined ? await ctx.store.firstPartSize(t.key, ctx.signal).catch(() => undefined) : undefined;
          const again = real !== undefined && !tried.includes(real) ? (await hashFileWithEtags(tempPath!, [real], ctx.signal)).etags : [];
          if (!again.includes(unquoteEtag(meta.etag))) {
            throw new IntegrityError(t.path, meta.etag, 'no matching multipart ETag', `Download of "${t.path}" does not match its multipart ETag ${meta.etag}`);
          }
        }
      },
    );
    const meta = ref.value ?? info;
    return { path: t.path, bytes: t.size, entry: entryOf(toLocalFile(t.path, stat), md5, meta.etag) };
  } catch (error) {
    hooks.onBytes(-counted, t.path, t.size); // a retry counts its bytes again
    throw bodyError(error, t.key);
  } finally {
    stream?.close();
  }
}

/**
 * A small response body, whole. More bytes than the Content-Length announced
 * are refused (memory stays bounded by it); fewer are left to the caller's
 * length check. A body that fails or closes early rejects.
 */
function readWhole(body: Readable, size: number, path: string): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let bytes = 0;
    body.on('data', (chunk: Buffer) => {
      bytes += chunk.length;
      if (bytes > size) {
        body.destroy(new IntegrityError(path, `${size} bytes`, `more than ${size} bytes`, `Download of "${path}" is longer than its ${size} bytes`));
        return;
      }
      chunks.push(chunk);
    });
    finished(body, (error) => {
      if (error) reject(error);
      else resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, bytes));
    });
  });
}

/**
 * A response body that failed mid-way (socket reset, stalled socket timing
 * out) becomes a typed, retryable NETWORK error naming the key — the same
 * error a failure before the headers gives. (A stall the store detected
 * itself is already a StorageError: "no data for 20 s".)
 */
function bodyError(error: unknown, key: string): unknown {
  if (error instanceof SyncError) return error;
  const e = error as { name?: unknown; code?: unknown; message?: unknown } | null;
  const network = e?.name === 'TimeoutError' || (typeof e?.code === 'string' && BROKEN_CONNECTION_CODES.has(e.code));
  if (!network) return error;
  // The SDK's socket idle timeout (stallTimeoutMs on the client the library builds) in the library's words.
  const timeout = e?.name === 'TimeoutError' && typeof e.message === 'string' ? describeSdkTimeout(e.message) : undefined;
  const why = timeout !== undefined ? `${timeout} while reading the response body` : `the download failed mid-way (${String(e?.code ?? e?.name)}): ${messageOf(error)}`;
  return new StorageError('NETWORK', `${escapeForLog(key)}: ${why}`, {
    cause: error,
    retryable: true,
    retriedBySdk: false,
  });
}

/** Upload every transfer of a push plan; checks the server's ETag against the MD5 sent. */
export function runUploads(
  transfers: Transfer[],
  ctx: UploadContext,
  hooks: ExecuteHooks,
): Promise<void> {
  return runEach(
    transfers,
    ctx,
    async (t) => {
      let counted = 0;
      try {
        const done = await uploadGuarded(t, ctx, (n) => {
          counted += n;
          hooks.onBytes(n, t.path, t.size);
        });
        if (counted === 0) hooks.onBytes(done.bytes, t.path, t.size);
        return done;
      } catch (error) {
        hooks.onBytes(-counted, t.path, t.size);
        throw error;
      }
    },
    hooks,
  );
}

/**
 * Upload under the transfer's condition (`If-Match` the version last seen,
 * or `If-None-Match: *`). A condition that fails is a conflict — another
 * writer changed the key — and nothing is overwritten, unless:
 * - the object now holds exactly the local bytes: our own earlier attempt
 *   landed and its answer was lost (the SDK's retry then met our own write);
 * - the policy is `keep-local`: the version just seen is saved into the
 *   conflicts area (a server-side copy, conditional on that version), then
 *   the upload runs once more, conditional on it (a third writer in between,
 *   or a version that cannot be copied, is still a conflict).
 * Under `keep-remote` / `keep-both` the conflict is left to the resolve
 * stage ({@link PendingConflict}).
 */
async function uploadGuarded(t: Transfer, ctx: UploadContext, onPartBytes: (n: number) => void): Promise<TransferDone> {
  if (t.replaces !== undefined) return replaceUnseen(t, t.replaces, ctx, onPartBytes);
  try {
    return await uploadOne(t, ctx, onPartBytes);
  } catch (error) {
    if (!conditionFailed(error, t.expectedEtag)) throw error;
    const current = await currentObject(ctx.store, t.key, ctx.signal);
    const mine = current === null || current === undefined || current.md5 === undefined ? undefined : await ownWrite(ctx.root, t.path, current, ctx.signal);
    if (mine !== undefined) return { path: t.path, bytes: mine.size, entry: entryOf(mine, current!.md5!, current!.etag) };
    const conflict: SyncConflict = {
      path: t.path,
      key: t.key,
      action: 'upload',
      expectedEtag: t.expectedEtag ?? null,
      currentEtag: current === undefined ? undefined : (current?.etag ?? null),
      resolution: 'reported',
    };
    if ((ctx.conflictPolicy === 'keep-remote' || ctx.conflictPolicy === 'keep-both') && current !== undefined) {
      throw new PendingConflict(conflict, current, { cause: error });
    }
    if (ctx.conflictPolicy !== 'keep-local' || current === undefined) throw new ConflictError(conflict, { cause: error });
    return keepLocal(t, current, conflict, ctx, onPartBytes);
  }
}

/**
 * `keep-local` over `current`: save it into the conflicts area, then upload
 * conditionally on it. Anything in the way (a version that cannot be copied,
 * a third writer) is reported, and nothing is overwritten.
 */
async function keepLocal(t: Transfer, current: ObjectInfo | null, conflict: SyncConflict, ctx: UploadContext, onPartBytes: (n: number) => void): Promise<TransferDone> {
  let remoteSavedTo: string | undefined;
  if (current !== null) {
    const saved = await saveRemoteVersion(ctx.store, t.key, current, conflictKeyOf(ctx, t.path), ctx.signal);
    if (saved.savedTo === undefined) throw new ConflictError({ ...conflict, currentEtag: saved.changed ? undefined : current.etag }, { cause: saved.error });
    remoteSavedTo = saved.savedTo;
  }
  const expected = current === null ? null : current.etag;
  try {
    const done = await uploadOne({ ...t, expectedEtag: expected, replaces: undefined }, ctx, onPartBytes);
    return { ...done, conflict: { ...conflict, resolution: 'kept-local', ...(remoteSavedTo !== undefined ? { remoteSavedTo } : {}) } };
  } catch (again) {
    if (!conditionFailed(again, expected)) throw again;
    // a third writer: report (what was saved stays saved)
    throw new ConflictError({ ...conflict, currentEtag: undefined, ...(remoteSavedTo !== undefined ? { remoteSavedTo } : {}) }, { cause: again });
  }
}

/** An instance without a snapshot replaces a version it never saw (`keep-local`): saved first, reported as a resolved conflict. */
function replaceUnseen(t: Transfer, seen: { etag: string; size: number }, ctx: UploadContext, onPartBytes: (n: number) => void): Promise<TransferDone> {
  const conflict: SyncConflict = { path: t.path, key: t.key, action: 'upload', expectedEtag: null, currentEtag: seen.etag, resolution: 'reported' };
  return keepLocal(t, { etag: seen.etag, size: seen.size }, conflict, ctx, onPartBytes);
}

function conflictKeyOf(ctx: UploadContext, path: string): string {
  if (ctx.conflictKey === undefined) throw new Error('internal: a conflict policy that saves versions needs the conflicts area');
  return ctx.conflictKey(path);
}

/**
 * Save the version `current` of `key` to `savedKey` with a server-side copy
 * conditional on exactly that version. `savedTo` when saved; otherwise why
 * not: `changed` (the copy's condition failed or the key is gone: another
 * writer), or too large to copy in one request (over 5 GiB), or the copy
 * failed (`error`). Transient failures are retried by the caller's retry.
 */
export async function saveRemoteVersion(
  store: ObjectStore,
  key: string,
  current: { etag: string; size: number },
  savedKey: string,
  signal: AbortSignal | undefined,
): Promise<{ savedTo?: string; changed?: boolean; error?: unknown }> {
  if (current.size > MAX_COPY_BYTES) {
    return { error: new SyncError('CONFLICT', `"${escapeForLog(key)}" (${current.size} bytes) is larger than a server-side copy can save (5 GiB): not replaced`) };
  }
  try {
    await store.copy(key, savedKey, { ifSourceMatch: current.etag, signal });
    return { savedTo: savedKey };
  } catch (error) {
    if (error instanceof StorageError && (error.code === 'PRECONDITION_FAILED' || error.code === 'NOT_FOUND')) return { changed: true, error };
    if (error instanceof StorageError && error.retryable) throw error;
    if (signal?.aborted) throw error;
    return { error };
  }
}

/** The condition a write carries (see `Transfer.expectedEtag`). */
function writeCondition(expected: string | null | undefined): { ifMatch?: string; ifNoneMatch?: boolean } {
  if (expected === undefined) return {};
  return expected === null ? { ifNoneMatch: true } : { ifMatch: expected };
}

/** Whether a write failed because its condition did not hold (412; 409 while another conditional write runs; 404 for `If-Match` on a key now gone). */
function conditionFailed(error: unknown, expected: string | null | undefined): boolean {
  if (expected === undefined || !(error instanceof StorageError)) return false;
  return error.code === 'PRECONDITION_FAILED' || error.code === 'CONFLICT' || (error.code === 'NOT_FOUND' && expected !== null);
}

/** What the key holds now (`null`: nothing; `undefined`: could not tell). */
async function currentObject(store: ObjectStore, key: string, signal: AbortSignal | undefined): Promise<ObjectInfo | null | undefined> {
  try {
    return await store.head(key, signal);
  } catch (error) {
    if (signal?.aborted) throw error;
    return error instanceof StorageError && error.code === 'NOT_FOUND' ? null : undefined;
  }
}

/** The local file, when the object holds exactly its bytes (same size, same MD5); otherwise `undefined`. */
export async function ownWrite(root: string, path: string, current: ObjectInfo, signal: AbortSignal | undefined): Promise<LocalFile | undefined> {
  try {
    const st = await lstat(join(root, path));
    if (!st.isFile() || st.size !== current.size) return undefined;
    const md5 = await calculateFileHash(join(root, path), signal);
    const after = await lstat(join(root, path));
    return md5 === current.md5 && after.mtimeMs === st.mtimeMs && after.size === st.size ? toLocalFile(path, after) : undefined;
  } catch (error) {
    if (signal?.aborted) throw error;
    return undefined;
  }
}

/** Upload one file under the transfer's condition (no conflict handling: see {@link uploadGuarded}). */
export async function uploadOne(
  t: Transfer,
  ctx: UploadContext,
  onPartBytes: (n: number) => void,
): Promise<TransferDone> {
  const abs = join(ctx.root, t.path);
  if (ctx.syncIo === true && t.size <= SYNC_UPLOAD_MAX && t.size < ctx.large.threshold) {
    const done = await uploadSmall(t, ctx, abs);
    if (done !== undefined) return done; // else it grew since the scan: the general path below
  }
  assertRealParent(abs, t.path);
  // O_NOFOLLOW: a file replaced by a symlink since the scan is refused (ELOOP),
  // never read; the descriptor check catches a parent directory swapped for one.
  const fh = await open(abs, constants.O_RDONLY | constants.O_NOFOLLOW).catch((error: NodeJS.ErrnoException) => {
    throw cannotOpen(t.path, error);
  });
  try {
    // Resolved again after the open: a parent swapped for a link in between is caught.
    assertRealParent(abs, t.path);
    const st = fstatSync(fh.fd);
    if (!st.isFile()) throw new LocalFileError('NOT_A_FILE', t.path, `"${t.path}" is no longer a regular file`);
    const before = toLocalFile(t.path, st);
    const changedSinceOpen = (): boolean => statMoved(fh.fd, before);
    // the planned MD5 holds only if the file is still what was planned
    const planned = t.md5 !== undefined && t.mtimeMs === st.mtimeMs && t.size === st.size ? t.md5 : undefined;
    if (st.size >= ctx.large.threshold) {
      // One read of the file: parts and MD5s from the same buffers (see uploadMultipart).
      const fromStart = (): Readable => descriptorStream(fh, st.size, t.path);
      const known = planned ?? (ctx.large.prehash === true ? await hashStream(fromStart()) : undefined);
      const put = await uploadMultipart({
        store: ctx.store,
        key: t.key,
        path: t.path,
        fh,
        size: st.size,
        md5: known,
        partSize: choosePartSize(st.size, ctx.large.partSize),
        contentType: ctx.contentType(t.path),
        mtimeMs: before.mtimeMs,
        params: ctx.uploadParams?.({ path: t.path, size: st.size }),
        partLimit: ctx.large.partLimit,
        buffers: ctx.large.buffers,
        hashes: ctx.large.hashes,
        signal: ctx.signal,
        condition: writeCondition(t.expectedEtag),
        onPart: onPartBytes,
        checkUnchanged: () => {
          if (changedSinceOpen()) {
            throw new LocalFileError('CHANGED_DURING_READ', t.path, `"${t.path}" changed while being uploaded; the next push uploads it again`);
          }
        },
      });
      // uploadMultipart verified the parts, the multipart ETag and that the file did not change
      return { path: t.path, bytes: before.size, entry: entryOf(before, put.md5, put.etag) };
    }
    let body: Buffer | (() => Readable);
    let md5: string;
    if (st.size <= BUFFERED_UPLOAD_MAX) {
      const buf = await fh.readFile();
      if (buf.length !== st.size) throw new LocalFileError('CHANGED_DURING_READ', t.path, `"${t.path}" changed while being read`);
      md5 = createHash('md5').update(buf).digest('hex');
      body = buf;
    } else {
      // Larger files are read from the checked descriptor (positional reads,
      // so a retry can start again at byte 0).
      const fromStart = (): Readable => descriptorStream(fh, st.size, t.path);
      md5 = planned ?? (await hashStream(fromStart()));
      body = fromStart;
    }
    const put = await ctx.store.put({
      key: t.key,
      body,
      size: before.size,
      md5,
      contentType: ctx.contentType(t.path),
      mtimeMs: before.mtimeMs,
      params: ctx.uploadParams?.({ path: t.path, size: before.size }),
      signal: ctx.signal,
      ...writeCondition(t.expectedEtag),
    });
    return singlePutDone(t.path, before, md5, put, changedSinceOpen);
  } finally {
    await fh.close();
  }
}

/**
 * The small-file path: the same steps and checks as {@link uploadOne}'s
 * buffered path (realpath around an O_NOFOLLOW open, fstat of the descriptor,
 * read to EOF, the descriptor's stat compared after the PUT) with synchronous
 * calls. `undefined` when the file has grown past {@link SYNC_UPLOAD_MAX}.
 */
async function uploadSmall(t: Transfer, ctx: UploadContext, abs: string): Promise<TransferDone | undefined> {
  assertRealParent(abs, t.path);
  let fd: number;
  try {
    fd = openSync(abs, constants.O_RDONLY | constants.O_NOFOLLOW);
  } catch (error) {
    throw cannotOpen(t.path, error as NodeJS.ErrnoException);
  }
  try {
    assertRealParent(abs, t.path);
    const st = fstatSync(fd);
    if (!st.isFile()) throw new LocalFileError('NOT_A_FILE', t.path, `"${t.path}" is no longer a regular file`);
    if (st.size > SYNC_UPLOAD_MAX || st.size >= ctx.large.threshold) return undefined;
    const before = toLocalFile(t.path, st);
    const buf = Buffer.allocUnsafe(st.size);
    let got = 0;
    while (got < st.size) {
      const n = readSync(fd, buf, got, st.size - got, got);
      if (n === 0) break;
      got += n;
    }
    if (got !== st.size || readSync(fd, Buffer.allocUnsafe(1), 0, 1, got) !== 0) {
      throw new LocalFileError('CHANGED_DURING_READ', t.path, `"${t.path}" changed while being read`);
    }
    const md5 = createHash('md5').update(buf).digest('hex');
    const put = await ctx.store.put({
      key: t.key,
      body: buf,
      size: before.size,
      md5,
      contentType: ctx.contentType(t.path),
      mtimeMs: before.mtimeMs,
      params: ctx.uploadParams?.({ path: t.path, size: before.size }),
      signal: ctx.signal,
      ...writeCondition(t.expectedEtag),
    });
    return singlePutDone(t.path, before, md5, put, () => statMoved(fd, before));
  } finally {
    closeSync(fd);
  }
}

function cannotOpen(path: string, error: NodeJS.ErrnoException): LocalFileError {
  const why = error.code === 'ELOOP' ? 'it is a symbolic link' : error.message;
  return new LocalFileError(error.code ?? 'EIO', path, `Cannot read "${path}": ${why}`, { cause: error });
}

/** Whether the open file's stat moved since `before` (it was written to meanwhile). */
function statMoved(fd: number, before: LocalFile): boolean {
  let now: Stats;
  try {
    now = fstatSync(fd);
  } catch {
    return true;
  }
  return now.size !== before.size || now.mtimeMs !== before.mtimeMs || now.ctimeMs !== before.ctimeMs;
}

/** A single PUT answered: verify the ETag against the MD5 sent, and record the stat only if the file did not change meanwhile. */
function singlePutDone(
  path: string,
  before: LocalFile,
  md5: string,
  put: { etag: string; serverSideEncryption?: string | undefined },
  changedSinceOpen: () => boolean,
): TransferDone {
  const etagMd5 = contentMd5({ etag: put.etag, serverSideEncryption: put.serverSideEncryption });
  if (etagMd5 !== undefined && etagMd5 !== md5) {
    throw new IntegrityError(
      path,
      md5,
      etagMd5,
      `Upload of "${path}" was stored with ETag ${etagMd5} but MD5 ${md5} was sent (the object may be corrupt). ${CHECKSUM_HINT}`,
    );
  }
  const entry = entryOf(before, md5, put.etag);
  if (changedSinceOpen()) entry.racy = true; // its stat proves nothing: re-hashed next time
  return { path, bytes: before.size, entry };
}

const STREAM_CHUNK = 1024 * 1024;

/**
 * A stream of a file's bytes from byte 0, read positionally from a descriptor
 * the caller owns: destroying the stream never closes it (an fs.ReadStream
 * would, even with autoClose: false), so each retry can start a new one.
 */
function descriptorStream(fh: FileHandle, size: number, path: string): Readable {
  let position = 0;
  return new Readable({
    highWaterMark: STREAM_CHUNK,
    read() {
      const length = Math.min(STREAM_CHUNK, size - position);
      if (length <= 0) {
        this.push(null);
        return;
      }
      const buf = Buffer.allocUnsafe(length);
      fh.read(buf, 0, length, position).then(
        ({ bytesRead }) => {
          if (bytesRead === 0) {
            this.destroy(new LocalFileError('CHANGED_DURING_READ', path, `"${path}" got shorter while being uploaded`));
            return;
          }
          position += bytesRead;
          this.push(bytesRead < length ? buf.subarray(0, bytesRead) : buf);
        },
        (error: unknown) => this.destroy(error as Error),
      );
    },
  });
}

async function hashStream(stream: Readable): Promise<string> {
  const hash = createHash('md5');
  for await (const chunk of stream) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/** Delete local files (pull) and prune directories left empty. */
export async function runLocalDeletes(
  deletions: Deletion[],
  writer: WorkspaceWriter,
  hooks: { onDeleted(path: string): void; onFailed(path: string, error: unknown): void },
  signal?: AbortSignal,
): Promise<void> {
  const emptied: string[] = [];
  for (const d of deletions) {
    if (signal?.aborted) break;
    try {
      if (await writer.removeFile(d.path, { local: d.local, proven: d.provenMd5 })) emptied.push(...parentDirs(d.path));
      hooks.onDeleted(d.path);
    } catch (error) {
      hooks.onFailed(d.path, error);
    }
  }
  await writer.pruneEmptyDirs(emptied);
}

/**
 * Delete objects (push) in batches; per-key failures are reported. A deletion
 * with an expected version deletes only that version: an object another
 * writer replaced since is a conflict, never deleted; one already gone is done.
 */
export async function runRemoteDeletes(
  deletions: Deletion[],
  store: ObjectStore,
  signal: AbortSignal | undefined,
  hooks: { onDeleted(path: string): void; onFailed(path: string, error: unknown): void },
  policy: ConflictPolicy = 'fail',
): Promise<void> {
  if (deletions.length === 0) return;
  const failures = await store.deleteMany(
    deletions.map((d) => (d.expectedEtag === undefined ? d.key : { key: d.key, etag: d.expectedEtag })),
    signal,
  );
  const failed = new Map(failures.map((f) => [f.key, f]));
  for (const d of deletions) {
    const f = failed.get(d.key);
    if (f === undefined || (f.code === 'NOT_FOUND' && d.expectedEtag !== undefined)) hooks.onDeleted(d.path);
    else if (d.expectedEtag !== undefined && (f.code === 'PRECONDITION_FAILED' || f.code === 'CONFLICT')) {
      const conflict: SyncConflict = { path: d.path, key: d.key, action: 'delete', expectedEtag: d.expectedEtag, currentEtag: undefined, resolution: 'reported' };
      // a policy other than `fail` settles it after the deletions (the resolve stage reads the current version)
      hooks.onFailed(d.path, policy === 'fail' ? new ConflictError(conflict) : new PendingConflict(conflict, undefined));
    } else hooks.onFailed(d.path, new SyncError('DELETE_FAILED', `Could not delete "${d.key}": ${f.error}`));
  }
}

/**
 * The snapshot entry of a file now identical on both sides. Built as one
 * literal, never by spreading: on Node 20 (V8 11.3) an object made by a
 * spread and then given more properties gets a hidden class of its own, so a
 * spread here cost about 250 bytes of old-space shape per file, live until the
 * snapshot is dropped (24 MB at 100,000 files).
 */
function entryOf(local: LocalFile, md5: string, etag: string): SnapshotEntry {
  // a plain ETag is the MD5: keep one string, not two equal ones
  return { size: local.size, mtimeMs: local.mtimeMs, ctimeMs: local.ctimeMs, ino: local.ino, md5, etag: etag === md5 ? md5 : etag };
}
