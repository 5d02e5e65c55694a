/**
 * Executes a plan's transfers and deletions with bounded concurrency. Every
 * finished item is reported through callbacks so the facade can count, emit
 * progress and update the snapshot only for what actually succeeded.
 */
import { constants, createReadStream, fstatSync, type Stats } from 'node:fs';
import { open } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import pLimit from 'p-limit';
import { md5FromEtag, type Deletion, type LocalFile, type SnapshotEntry, type Transfer } from '../core/plan.js';
import { parentDirs } from '../core/paths.js';
import { IntegrityError, LocalFileError, SyncError } from '../errors.js';
import { toLocalFile } from '../local/scanner.js';
import { assertRealParent } from '../local/path-guard.js';
import type { WorkspaceWriter } from '../local/WorkspaceWriter.js';
import type { ObjectStore } from '../storage/ObjectStore.js';
import { withRetries } from './retry.js';

/** Files up to this size are read into memory for upload (one read, hashed and sent from the same bytes, retryable by the SDK). */
export const BUFFERED_UPLOAD_MAX = 8 * 1024 * 1024;
/** S3's limit for a single PutObject. */
export const SINGLE_PUT_MAX = 5 * 1024 ** 3;

const CHECKSUM_HINT =
  'If the server is S3-compatible (R2, MinIO, s3rver…), build the S3Client with ' +
  "requestChecksumCalculation: 'WHEN_REQUIRED' and responseChecksumValidation: 'WHEN_REQUIRED'.";

export interface TransferDone {
  path: string;
  bytes: number;
  entry: SnapshotEntry;
}

export interface ExecuteHooks {
  onBytes(n: number): void;
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
  ctx: { concurrency: number; attempts?: number | undefined; signal?: AbortSignal | undefined },
  one: (t: Transfer) => Promise<TransferDone>,
  hooks: ExecuteHooks,
): Promise<void> {
  const { signal } = ctx;
  const limit = pLimit(ctx.concurrency);
  await Promise.all(
    transfers.map((t) =>
      limit(async () => {
        if (signal?.aborted) return; // not started: a later sync does it
        let done: TransferDone;
        try {
          done = await withRetries(() => one(t), signal, ctx.attempts);
        } catch (error) {
          hooks.onFailed(t.path, error);
          return;
        }
        hooks.onDone(done);
      }),
    ),
  );
}

/** Download every transfer of a pull plan: temp file → verify → rename. */
export function runDownloads(
  transfers: Transfer[],
  ctx: {
    store: ObjectStore;
    writer: WorkspaceWriter;
    concurrency: number;
    attempts?: number | undefined;
    signal?: AbortSignal | undefined;
  },
  hooks: ExecuteHooks,
): Promise<void> {
  return runEach(transfers, ctx, (t) => downloadOne(t, ctx, hooks), hooks);
}

async function downloadOne(
  t: Transfer,
  ctx: { store: ObjectStore; writer: WorkspaceWriter; signal?: AbortSignal | undefined },
  hooks: ExecuteHooks,
): Promise<TransferDone> {
  await ctx.writer.ensureParents(t.path); // no request when the path cannot be written
  const got = await ctx.store.get(t.key, ctx.signal);
  const expectedMd5 = got.md5 ?? (isKms(got.serverSideEncryption) ? undefined : md5FromEtag(got.etag));
  let counted = 0;
  try {
    const { md5, stat } = await ctx.writer.writeAtomic(
      t.path,
      got.body,
      {
        mtimeMs: got.mtimeMs ?? got.lastModifiedMs,
        signal: ctx.signal,
        onBytes: (n) => {
          counted += n;
          hooks.onBytes(n);
        },
      },
      (bytes, md5) => {
        if (bytes !== got.size) {
          throw new IntegrityError(t.path, `${got.size} bytes`, `${bytes} bytes`, `Download of "${t.path}" is truncated: got ${bytes} of ${got.size} bytes`);
        }
        if (expectedMd5 !== undefined && md5 !== expectedMd5) {
          throw new IntegrityError(t.path, expectedMd5, md5, `Download of "${t.path}" is corrupt: MD5 ${md5}, expected ${expectedMd5}`);
        }
      },
    );
    return { path: t.path, bytes: got.size, entry: { ...entryStat(toLocalFile(t.path, stat)), md5, etag: got.etag } };
  } catch (error) {
    hooks.onBytes(-counted); // a retry counts its bytes again
    throw error;
  }
}

/** Upload every transfer of a push plan; checks the server's ETag against the MD5 sent. */
export function runUploads(
  transfers: Transfer[],
  ctx: {
    store: ObjectStore;
    root: string;
    concurrency: number;
    attempts?: number | undefined;
    contentType: (path: string) => string;
    signal?: AbortSignal | undefined;
  },
  hooks: ExecuteHooks,
): Promise<void> {
  return runEach(
    transfers,
    ctx,
    async (t) => {
      const done = await uploadOne(t, ctx);
      hooks.onBytes(done.bytes);
      return done;
    },
    hooks,
  );
}

async function uploadOne(
  t: Transfer,
  ctx: { store: ObjectStore; root: string; contentType: (path: string) => string; signal?: AbortSignal | undefined },
): Promise<TransferDone> {
  const abs = join(ctx.root, t.path);
  assertRealParent(abs, t.path);
  // O_NOFOLLOW: a file replaced by a symlink since the scan is refused (ELOOP),
  // never read; the descriptor check catches a parent directory swapped for one.
  const fh = await open(abs, constants.O_RDONLY | constants.O_NOFOLLOW).catch((error: NodeJS.ErrnoException) => {
    const why = error.code === 'ELOOP' ? 'it is a symbolic link' : error.message;
    throw new LocalFileError(error.code ?? 'EIO', t.path, `Cannot read "${t.path}": ${why}`, { cause: error });
  });
  try {
    // Resolved again after the open: a parent swapped for a link in between is caught.
    assertRealParent(abs, t.path);
    const st = fstatSync(fh.fd);
    if (!st.isFile()) throw new LocalFileError('NOT_A_FILE', t.path, `"${t.path}" is no longer a regular file`);
    const before = toLocalFile(t.path, st);
    if (st.size > SINGLE_PUT_MAX) {
      throw new SyncError(
        'FILE_TOO_LARGE',
        `"${t.path}" is ${st.size} bytes; single uploads are limited to 5 GiB and multipart upload is not supported yet`,
      );
    }
    let body: Buffer | (() => Readable);
    let md5: string;
    if (st.size <= BUFFERED_UPLOAD_MAX) {
      const buf = await fh.readFile();
      if (buf.length !== st.size) throw new LocalFileError('CHANGED_DURING_READ', t.path, `"${t.path}" changed while being read`);
      md5 = createHash('md5').update(buf).digest('hex');
      body = buf;
    } else {
      // Larger files stream from the checked descriptor (positional reads, so a
      // retry can start again at byte 0); memory stays at one chunk per upload.
      const fromStart = (): Readable => createReadStream('', { fd: fh.fd, start: 0, autoClose: false, highWaterMark: 1024 * 1024 });
      md5 = t.md5 ?? (await hashStream(fromStart()));
      body = fromStart;
    }
    const put = await ctx.store.put({
      key: t.key,
      body,
      size: before.size,
      md5,
      contentType: ctx.contentType(t.path),
      mtimeMs: before.mtimeMs,
      signal: ctx.signal,
    });
    const etagMd5 = isKms(put.serverSideEncryption) ? undefined : md5FromEtag(put.etag);
    if (etagMd5 !== undefined && etagMd5 !== md5) {
      throw new IntegrityError(
        t.path,
        md5,
        etagMd5,
        `Upload of "${t.path}" was stored with ETag ${etagMd5} but MD5 ${md5} was sent (the object may be corrupt). ${CHECKSUM_HINT}`,
      );
    }
    // Record the stat only if the file did not change while it was uploaded.
    let after: Stats | undefined;
    try {
      after = fstatSync(fh.fd);
    } catch {
      after = undefined;
    }
    const same =
      after !== undefined && after.size === before.size && after.mtimeMs === before.mtimeMs && after.ctimeMs === before.ctimeMs;
    const entry: SnapshotEntry = { ...entryStat(before), md5, etag: put.etag };
    if (!same) entry.mtimeMs = -1; // forces a re-hash next time
    return { path: t.path, bytes: before.size, entry };
  } finally {
    await fh.close();
  }
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
      if (await writer.removeFile(d.path)) emptied.push(...parentDirs(d.path));
      hooks.onDeleted(d.path);
    } catch (error) {
      hooks.onFailed(d.path, error);
    }
  }
  await writer.pruneEmptyDirs(emptied);
}

/** Delete objects (push) in batches; per-key failures are reported. */
export async function runRemoteDeletes(
  deletions: Deletion[],
  store: ObjectStore,
  signal: AbortSignal | undefined,
  hooks: { onDeleted(path: string): void; onFailed(path: string, error: unknown): void },
): Promise<void> {
  if (deletions.length === 0) return;
  const failures = await store.deleteMany(
    deletions.map((d) => d.key),
    signal,
  );
  const failed = new Map(failures.map((f) => [f.key, f.error]));
  for (const d of deletions) {
    const error = failed.get(d.key);
    if (error === undefined) hooks.onDeleted(d.path);
    else hooks.onFailed(d.path, new SyncError('DELETE_FAILED', `Could not delete "${d.key}": ${error}`));
  }
}

/** SSE-KMS and DSSE-KMS objects have ETags that are not MD5s. */
function isKms(sse: string | undefined): boolean {
  return sse !== undefined && sse.startsWith('aws:kms');
}

function entryStat(local: LocalFile): Omit<SnapshotEntry, 'md5' | 'etag'> {
  return { size: local.size, mtimeMs: local.mtimeMs, ctimeMs: local.ctimeMs, ino: local.ino };
}
