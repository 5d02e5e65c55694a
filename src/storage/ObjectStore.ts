import type { Readable } from 'node:stream';
import type { ListedObject } from '../core/model.js';

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
  error: string;
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
  /** All objects under `prefix`, page by page. */
  list(prefix: string, signal?: AbortSignal): AsyncIterable<ListedObject[]>;
  head(key: string, signal?: AbortSignal): Promise<ObjectInfo>;
  /** The size of part 1 of a multipart object (its part size), or `undefined` when the server does not say. */
  firstPartSize(key: string, signal?: AbortSignal): Promise<number | undefined>;
  get(key: string, signal?: AbortSignal): Promise<GetResult>;
  put(input: PutInput): Promise<PutResult>;
  /** Delete keys in batches; returns the keys that could not be deleted. */
  deleteMany(keys: string[], signal?: AbortSignal): Promise<DeleteFailure[]>;
  /** Bytes `start`…`end` (inclusive) of an object. */
  getRange(key: string, start: number, end: number, signal?: AbortSignal): Promise<GetResult>;
  /** Start a multipart upload; returns its upload id. */
  createMultipart(init: MultipartInit): Promise<string>;
  /**
   * Upload one part (1-based); returns its ETag (unquoted) and how it is
   * encrypted (an SSE-KMS or SSE-C part's ETag is not its MD5).
   */
  uploadPart(key: string, uploadId: string, partNumber: number, body: Buffer, md5: string, signal?: AbortSignal): Promise<PutResult>;
  /** Complete a multipart upload from its parts in order; returns the object's ETag. */
  completeMultipart(key: string, uploadId: string, parts: Array<{ partNumber: number; etag: string }>, signal?: AbortSignal): Promise<PutResult>;
  abortMultipart(key: string, uploadId: string): Promise<void>;
  /** Multipart uploads in progress under a prefix. */
  listMultipartUploads(prefix: string, signal?: AbortSignal): Promise<PendingUpload[]>;
}
