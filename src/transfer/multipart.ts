/**
 * Large files: multipart uploads read part by part from the checked file
 * descriptor (memory ≤ parts in flight × part size), and downloads fetched as
 * parallel ranges and consumed in order (memory ≤ ranges in flight × range size).
 */
import type { FileHandle } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import type { LimitFunction } from 'p-limit';
import { contentMd5 } from '../core/compare.js';
import { multipartEtag, unquoteEtag } from '../core/md5.js';
import { IntegrityError, LocalFileError, SyncError, messageOf } from '../errors.js';
import { allocShared, type HashPool, type HashStream } from '../local/HashPool.js';
import { etagIsNotMd5, type GetResult, type ObjectInfo, type ObjectStore, type PutResult, type WriteCondition } from '../storage/ObjectStore.js';
import type { CheckedUploadParams } from '../upload-params.js';
import { withRetries } from './retry.js';

/**
 * Reusable part/range buffers of one capacity: large transfers allocate a
 * handful of buffers per sync instead of one per part, so memory stays at
 * the buffers in use instead of growing with garbage awaiting collection.
 * They live in shared memory, so the MD5 workers read them without a copy.
 */
export class BufferPool {
  private readonly free: Buffer[] = [];

  constructor(readonly capacity: number) {}

  /** A buffer of exactly `size` bytes (pooled when it fits the capacity). */
  take(size: number): Buffer {
    if (size > this.capacity) return allocShared(size); // a grown part size: one-off, still shared with the MD5 workers
    const whole = this.free.pop() ?? allocShared(this.capacity);
    return whole.subarray(0, size);
  }

  /** Hand a buffer from `take()` back once nothing refers to it any more. */
  give(buf: Buffer): void {
    if (buf.buffer.byteLength === this.capacity && buf.byteOffset === 0) {
      this.free.push(Buffer.from(buf.buffer, 0, this.capacity));
    }
  }
}

export interface MultipartUploadInput {
  store: ObjectStore;
  key: string;
  path: string;
  fh: FileHandle;
  size: number;
  /**
   * MD5 hex of the whole file when already known (stored as `md5chksum`).
   * Otherwise it is computed from the parts as they are read, and the object
   * carries no `md5chksum`: its multipart ETag and `partsize` identify it.
   */
  md5?: string | undefined;
  partSize: number;
  /** The user's S3 settings for the object (encryption, storage class, tags…), sent with CreateMultipartUpload. */
  params?: CheckedUploadParams | undefined;
  contentType: string;
  mtimeMs: number;
  /** Shared by every multipart upload of the sync: bounds parts (and their buffers) in flight. */
  partLimit: LimitFunction;
  /** Part buffers, reused across parts and files. */
  buffers: BufferPool;
  /** MD5 workers: part MD5s and the whole-file MD5 are computed off the event loop. */
  hashes: HashPool;
  signal?: AbortSignal | undefined;
  /** Called after each part with its size. */
  onPart?: (bytes: number) => void;
  /** Throws when the file changed since it was opened. */
  checkUnchanged: () => void;
  /** The condition the completion carries (`If-Match` / `If-None-Match: *`); a failed one aborts the upload. */
  condition?: WriteCondition | undefined;
}

/**
 * Upload a file in parts, reading it once: each part is read into a pooled
 * buffer, its MD5 computed (sent as Content-MD5, and checked against the
 * part's ETag), and the buffer fed in order into the whole-file MD5 while it
 * uploads. Any failure — a part, the completion, a changed file, an abort
 * signal — aborts the multipart upload on the server before this rejects (no
 * orphaned parts). The original error is kept; if the abort itself fails,
 * the error says so, names the upload id, and has the abort's error as
 * `cause`.
 *
 * @returns the server's answer and the file's MD5.
 */
export async function uploadMultipart(input: MultipartUploadInput): Promise<PutResult & { md5: string }> {
  const { store, key, size, partSize, signal } = input;
  const parts = Math.ceil(size / partSize);
  const uploadId = await store.createMultipart({
    key,
    md5: input.md5,
    partSize,
    contentType: input.contentType,
    mtimeMs: input.mtimeMs,
    params: input.params,
    signal,
  });
  const whole = input.md5 === undefined ? input.hashes.stream() : undefined;
  // Part i is fed into the whole-file MD5 after part i - 1: `wholeFed[i]`
  // settles once it has been (parts start in order, so [i - 1] exists when i starts).
  const wholeFed: Array<Promise<void>> = new Array<Promise<void>>(parts);
  const digests: Buffer[] = new Array<Buffer>(parts);
  let failed = false;
  let completed = false;
  const uploads = Array.from({ length: parts }, (_, i) =>
    input.partLimit(async () => {
      let fed: Promise<void> = Promise.resolve();
      let resolveFed!: (p: Promise<void>) => void;
      let fedSettled = false;
      const settleFed = (p: Promise<void>): void => {
        if (fedSettled) return;
        fedSettled = true;
        resolveFed(p);
      };
      wholeFed[i] = new Promise<void>((resolve) => (resolveFed = resolve));
      wholeFed[i]!.catch(() => undefined);
      const previous = i === 0 ? Promise.resolve() : wholeFed[i - 1]!;
      let buf: Buffer | undefined;
      try {
        if (failed) throw new SyncError('SKIPPED', 'an earlier part failed');
        signal?.throwIfAborted();
        const offset = i * partSize;
        const length = Math.min(partSize, size - offset);
        buf = input.buffers.take(length);
        await readFully(input.fh, buf, offset, input.path);
        const bytes = buf;
        if (whole !== undefined) fed = previous.then(() => whole.update(bytes));
        settleFed(fed);
        const hex = await input.hashes.md5(bytes);
        digests[i] = Buffer.from(hex, 'hex');
        const part = await store.uploadPart(key, uploadId, i + 1, bytes, hex, signal);
        const etag = part.etag;
        // (Content-MD5 has the server check the bytes; an SSE-KMS or SSE-C part's ETag is no MD5 to compare.)
        const etagMd5 = contentMd5({ etag, serverSideEncryption: part.serverSideEncryption });
        if (etagMd5 !== undefined && etagMd5 !== hex) {
          throw new IntegrityError(input.path, hex, etagMd5, `Part ${i + 1} of "${input.path}" was stored with ETag ${etagMd5}, not the MD5 sent`);
        }
        await fed;
        input.onPart?.(length);
        return { partNumber: i + 1, etag: unquoteEtag(etag) };
      } catch (error) {
        if (!fedSettled) settleFed(Promise.reject(error)); // later parts never wait for ever
        throw error;
      } finally {
        // The SDK is done with the buffer (its retries ran inside uploadPart);
        // the MD5 worker may still be reading it.
        await fed.catch(() => undefined);
        if (buf !== undefined) input.buffers.give(buf);
      }
    }).catch((error: unknown) => {
      failed = true; // parts not started yet are skipped
      throw error;
    }),
  );
  try {
    const etags = await Promise.all(uploads);
    const md5 = input.md5 ?? (await (whole as HashStream).digest()).md5;
    input.checkUnchanged();
    signal?.throwIfAborted();
    const done = await store.completeMultipart(key, uploadId, etags, signal, input.condition);
    completed = true; // nothing left to abort: the object exists (a mismatch below fails the file)
    const expected = multipartEtag(digests);
    const encrypted = etagIsNotMd5(done.serverSideEncryption);
    // S3 answers md5-of-part-md5s-N; some compatible servers the whole MD5.
    if (!encrypted && done.etag !== '' && done.etag !== expected && done.etag !== md5) {
      throw new IntegrityError(input.path, expected, done.etag, `Multipart upload of "${input.path}" completed with ETag ${done.etag}, expected ${expected}`);
    }
    return { ...done, md5 };
  } catch (error) {
    const original = await settleParts(error);
    if (completed) throw original;
    // Parts still in flight finish first (their buffers go back): an abort
    // sent while a part is being stored could leave that part behind.
    await Promise.allSettled(uploads);
    try {
      await store.abortMultipart(key, uploadId);
    } catch (abortError) {
      const base = original instanceof SyncError ? original : undefined;
      throw new SyncError(
        base?.code ?? 'MULTIPART_FAILED',
        `${messageOf(original)} (and aborting multipart upload ${uploadId} of "${key}" failed: ${messageOf(abortError)}; ` +
          'its parts stay billed until a sweep or the bucket lifecycle rule AbortIncompleteMultipartUpload removes them)',
        { cause: abortError, details: { uploadId, key, originalCode: base?.code } },
      );
    }
    throw original;
  } finally {
    whole?.close();
  }
}

/** The first real error (not the "an earlier part failed" placeholders). */
async function settleParts(error: unknown): Promise<unknown> {
  return error instanceof SyncError && error.code === 'SKIPPED' ? new SyncError('MULTIPART_FAILED', 'a part failed') : error;
}

async function readFully(fh: FileHandle, buf: Buffer, position: number, path: string): Promise<void> {
  let done = 0;
  while (done < buf.length) {
    const { bytesRead } = await fh.read(buf, done, buf.length - done, position + done);
    if (bytesRead === 0) throw new LocalFileError('CHANGED_DURING_READ', path, `"${path}" got shorter while being uploaded`);
    done += bytesRead;
  }
}

/**
 * Fetch an object as ranges of `rangeSize`, up to `concurrency` at once, and
 * yield them in order (of the version `etag`, when given). Each range is retried on its own after a transient
 * failure; every range must come from the same object version (same ETag).
 * `info` is filled from the first range's answer (metadata, ETag).
 * A yielded buffer is valid until the consumer asks for the next one: it then
 * goes back to `buffers` for a later range.
 */
export async function* rangedChunks(
  store: ObjectStore,
  key: string,
  size: number,
  rangeSize: number,
  concurrency: number,
  partLimit: LimitFunction,
  buffers: BufferPool,
  attempts: number,
  info: { value?: ObjectInfo },
  signal?: AbortSignal,
  /** The version to read (`If-Match` on every range): one replaced since fails with a 412. */
  etag?: string,
): AsyncGenerator<Buffer> {
  const count = Math.ceil(size / rangeSize);
  const stop = new AbortController();
  const inner = signal ? AbortSignal.any([signal, stop.signal]) : stop.signal;
  const fetchRange = (i: number): Promise<Buffer> =>
    partLimit(() => withRetries(async () => {
      const start = i * rangeSize;
      const end = Math.min(size, start + rangeSize) - 1;
      const got = await store.getRange(key, start, end, inner, etag === undefined ? undefined : { ifMatch: etag });
      checkVersion(info, got, key);
      const buf = buffers.take(end - start + 1);
      const got2 = await collect(got.body, buf);
      if (got2 !== buf.length) {
        buffers.give(buf);
        throw new IntegrityError(key, `${buf.length} bytes`, `${got2} bytes`, `Range ${start}-${end} of "${key}" is truncated`);
      }
      return buf;
    }, inner, attempts));
  const inflight: Array<Promise<Buffer>> = [];
  let next = 0;
  const launch = (): void => {
    const p = fetchRange(next++);
    p.catch(() => undefined); // consumed below; never an unhandled rejection
    inflight.push(p);
  };
  try {
    while (next < count && inflight.length < concurrency) launch();
    for (let i = 0; i < count; i++) {
      const buf = await (inflight.shift() as Promise<Buffer>);
      if (next < count) launch();
      yield buf;
      buffers.give(buf); // the consumer has hashed and written it
    }
  } finally {
    stop.abort();
    // ranges fetched but never consumed go back too
    for (const p of inflight) p.then((b) => buffers.give(b), () => undefined);
  }
}

function checkVersion(info: { value?: ObjectInfo }, got: GetResult, key: string): void {
  const { body, ...meta } = got;
  if (info.value === undefined) {
    info.value = meta;
  } else if (info.value.etag !== meta.etag) {
    body.destroy();
    throw new IntegrityError(key, info.value.etag, meta.etag, `"${key}" changed while it was being downloaded`);
  }
}

/** Read a range's body into `out`; returns the byte count (more than `out.length` when the body is too long). */
async function collect(body: Readable, out: Buffer): Promise<number> {
  let total = 0;
  try {
    for await (const chunk of body as AsyncIterable<Buffer>) {
      if (total + chunk.length > out.length) return total + chunk.length;
      chunk.copy(out, total);
      total += chunk.length;
    }
  } finally {
    body.destroy();
  }
  return total;
}

