import type { Readable } from 'node:stream';
import type { ListedObject } from '../core/model.js';
import type { StorageErrorCode } from '../errors.js';

export type { ListedObject };
import type { CheckedUploadParams } from '../upload-params.js';

export { SSE_C, etagIsNotMd5 } from '../core/compare.js';

const softSignals = new WeakSet<AbortSignal>();

/**
 * Mark a signal that stops a sync between requests but is not handed to the
 * SDK with each request (an options object on `send()` defeats the client's
 * middleware cache: about 0.2 ms of CPU per request). Used for the
 * instance's own `destroy()` signal when the caller gave none: destroying the
 * library's own client ends its requests in flight instead.
 */
export function softSignal(signal: AbortSignal): AbortSignal {
  softSignals.add(signal);
  return signal;
}

/** Whether a signal is {@link softSignal}: a store sends requests without it. */
export function isSoftSignal(signal: AbortSignal | undefined): boolean {
  return signal !== undefined && softSignals.has(signal);
}


/** Metadata the library reads back from an object. */
export interface ObjectInfo {
  size: number;
  /** ETag without quotes. */
  etag: string;
  /** MD5 hex of the content from metadata (`md5chksum`, base64, as rclone writes it; or `md5` hex). */
  md5?: string | undefined;
  /** The file's modification time recorded at upload (`mtime` metadata, seconds), in ms. */
  mtimeMs?: number | undefined;
  lastModifiedMs?: number | undefined;
  /** Server-side encryption in effect (`aws:kms` ETags are not MD5s). */
  serverSideEncryption?: string | undefined;
  /** Part size of a multipart upload made by this library (`partsize` metadata): its multipart ETag is computed with it. */
  partSize?: number | undefined;
}

/** A download in progress: consume or destroy `body`. */
export interface GetResult extends ObjectInfo {
  body: Readable;
}

/** What to upload. */
export interface PutInput {
  key: string;
  /** A buffer, or a factory so that a retry can re-open the file. */
  body: Buffer | (() => Readable);
  size: number;
  /** MD5 hex of the body; sent as Content-MD5 and stored in metadata. */
  md5: string;
  contentType: string;
  mtimeMs: number;
  /** Create only: the server refuses (412, PRECONDITION_FAILED) when the key exists (`If-None-Match: *`). */
  ifNoneMatch?: boolean | undefined;
  /**
   * Overwrite only this version: the key's current ETag (unquoted; the store
   * quotes it) must be this one (`If-Match`). Else PRECONDITION_FAILED (412)
   * when it differs, NOT_FOUND (404, S3's NoSuchKey) when the key does not
   * exist. See {@link WriteCondition}.
   */
  ifMatch?: string | undefined;
  /** The user's S3 settings for this object (encryption, storage class, tags, metadata…). */
  params?: CheckedUploadParams | undefined;
  signal?: AbortSignal | undefined;
}

export interface PutResult {
  etag: string;
  serverSideEncryption?: string | undefined;
}

/** Per-key result of a batch delete. */
export interface DeleteFailure {
  key: string;
  /** S3's code and message (`PreconditionFailed: …`), or the batch's error. */
  error: string;
  /**
   * The library's code for it: `PRECONDITION_FAILED` (the key's ETag is not
   * the one given), `NOT_FOUND` (an ETag was given and the key does not
   * exist), `CONFLICT`, `ACCESS_DENIED`… for a per-key error; the batch
   * error's code when the whole request failed (`THROTTLED`, `STORAGE`…).
   */
  code?: StorageErrorCode | undefined;
}

/**
 * A precondition on a write (PutObject, CompleteMultipartUpload), evaluated
 * by the server when the object is committed:
 * - `ifNoneMatch: true` (`If-None-Match: *`): create only; 412
 *   PRECONDITION_FAILED when the key exists.
 * - `ifMatch: etag` (unquoted; `If-Match: "etag"`): replace only that
 *   version; 412 PRECONDITION_FAILED when the current ETag differs, 404
 *   NOT_FOUND when the key does not exist.
 * - Either may instead answer 409 CONFLICT (S3's ConditionalRequestConflict:
 *   another write of the key was in progress): re-read, then decide again.
 *
 * A server that does not enforce preconditions (s3rver, some S3-compatible
 * stores) ignores them and overwrites: see `probeConditionalWrites`
 * (storage/capabilities.ts).
 */
export interface WriteCondition {
  ifMatch?: string | undefined;
  ifNoneMatch?: boolean | undefined;
}

/**
 * A precondition on a read (GetObject, HeadObject), as HTTP defines them:
 * - `ifMatch: etag` (unquoted): 412 PRECONDITION_FAILED unless the current
 *   ETag is this one (e.g. the object was replaced since it was listed).
 * - `ifNoneMatch: etag` (unquoted, or `*`): 304 NOT_MODIFIED when the current
 *   ETag is this one (nothing changed), else the object as usual.
 * A missing key is NOT_FOUND (404) whatever the condition.
 */
export interface ReadCondition {
  ifMatch?: string | undefined;
  ifNoneMatch?: string | undefined;
}

/**
 * A key to delete only if its current ETag is `etag` (unquoted; `*`: only if
 * it exists). A key whose ETag differs is not deleted and is reported
 * (PRECONDITION_FAILED); a key that does not exist is reported NOT_FOUND
 * (AWS: "If the object doesn't exist when evaluating either of the
 * preconditions, S3 rejects the request and returns a Not Found error").
 */
export interface DeleteTarget {
  key: string;
  etag: string;
}

/** S3's largest source of a single CopyObject request (5 GiB): larger objects need UploadPartCopy. */
export const MAX_COPY_BYTES = 5 * 1024 ** 3;

/** The upload settings a server-side copy takes (metadata and content headers are copied from the source). */
export type CopyParams = Pick<CheckedUploadParams, 'ServerSideEncryption' | 'SSEKMSKeyId' | 'SSEKMSEncryptionContext' | 'BucketKeyEnabled' | 'StorageClass' | 'ACL'>;

/** Options of {@link ObjectStore.copy}. */
export interface CopyOptions {
  /**
   * Copy only this version of the source: its current ETag (unquoted; the
   * store quotes it) must be this one (`x-amz-copy-source-if-match`). Else
   * PRECONDITION_FAILED (412); a missing source is NOT_FOUND (404).
   */
  ifSourceMatch: string;
  /** Encryption, storage class and ACL of the copy (default: the bucket's). */
  params?: CopyParams | undefined;
  signal?: AbortSignal | undefined;
}

/** Metadata of an object being created in parts. */
export interface MultipartInit {
  key: string;
  /**
   * MD5 hex of the whole content, stored as `md5chksum` metadata when known
   * before the upload starts (it costs a read of the whole file otherwise).
   */
  md5?: string | undefined;
  /** Part size, stored as `partsize` metadata. */
  partSize: number;
  contentType: string;
  mtimeMs: number;
  /** The user's S3 settings for this object (see {@link PutInput.params}). */
  params?: CheckedUploadParams | undefined;
  signal?: AbortSignal | undefined;
}

/** A multipart upload in progress (for the stale-upload sweep). */
export interface PendingUpload {
  key: string;
  uploadId: string;
  initiatedMs: number | undefined;
}

/** The few operations the sync engine needs from a bucket. */
export interface ObjectStore {
  /**
   * A sync operation starts (pull, push, plan, verify): what the store
   * learnt about its client before (see `S3ObjectStore`'s fast path) is
   * looked at again. Optional.
   */
  startOperation?(): void;
  /** All objects under `prefix`, page by page. */
  list(prefix: string, signal?: AbortSignal): AsyncIterable<ListedObject[]>;
  /** An object's metadata; `condition`: see {@link ReadCondition} (HEAD errors have no body: mapped by status). */
  head(key: string, signal?: AbortSignal, condition?: ReadCondition): Promise<ObjectInfo>;
  /** The size of part 1 of a multipart object (its part size), or `undefined` when the server does not say. */
  firstPartSize(key: string, signal?: AbortSignal): Promise<number | undefined>;
  /** An object's content; `condition`: see {@link ReadCondition}. */
  get(key: string, signal?: AbortSignal, condition?: ReadCondition): Promise<GetResult>;
  /** Upload one object; `ifNoneMatch` / `ifMatch`: see {@link WriteCondition}. */
  put(input: PutInput): Promise<PutResult>;
  /**
   * Delete keys in batches of 1,000 (DeleteObjects); returns the keys that
   * could not be deleted. A plain key is deleted whether or not it exists (no
   * failure); a {@link DeleteTarget} only if its ETag still is the one given
   * (per-key failures: PRECONDITION_FAILED, NOT_FOUND). Throws for a fatal
   * batch error (access denied, missing bucket) or an aborted signal.
   */
  deleteMany(keys: ReadonlyArray<string | DeleteTarget>, signal?: AbortSignal): Promise<DeleteFailure[]>;
  /**
   * Bytes `start`…`end` (inclusive) of an object. `condition`: see
   * {@link ReadCondition} (`ifMatch` keeps every range of one download on one
   * version of the object).
   */
  getRange(key: string, start: number, end: number, signal?: AbortSignal, condition?: ReadCondition): Promise<GetResult>;
  /** Start a multipart upload; returns its upload id. */
  createMultipart(init: MultipartInit): Promise<string>;
  /**
   * Upload one part (1-based); returns its ETag (unquoted) and how it is
   * encrypted (an SSE-KMS or SSE-C part's ETag is not its MD5).
   */
  uploadPart(key: string, uploadId: string, partNumber: number, body: Buffer, md5: string, signal?: AbortSignal): Promise<PutResult>;
  /**
   * Complete a multipart upload from its parts in order; returns the object's
   * ETag. `condition` is checked by the server at completion (see
   * {@link WriteCondition}); when it fails (412, 404, 409) nothing is
   * written and the upload is left as it was: the caller aborts it (S3 asks
   * for a new upload after a 409).
   */
  completeMultipart(
    key: string,
    uploadId: string,
    parts: Array<{ partNumber: number; etag: string }>,
    signal?: AbortSignal,
    condition?: WriteCondition,
  ): Promise<PutResult>;
  abortMultipart(key: string, uploadId: string): Promise<void>;
  /**
   * Server-side copy of `sourceKey` (same bucket) to `destKey` in one request
   * (CopyObject), metadata and content type included (`MetadataDirective:
   * COPY`). Only the version `ifSourceMatch` names is copied (see
   * {@link CopyOptions}). A source over {@link MAX_COPY_BYTES} is refused by
   * S3 (400 InvalidRequest): check the size first. The copy's ETag is the MD5
   * of the content (a multipart source becomes a single-part object), except
   * under SSE-KMS.
   */
  copy(sourceKey: string, destKey: string, options: CopyOptions): Promise<PutResult>;
  /** Multipart uploads in progress under a prefix. */
  listMultipartUploads(prefix: string, signal?: AbortSignal): Promise<PendingUpload[]>;
}
