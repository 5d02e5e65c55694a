/**
 * A strict in-memory {@link ObjectStore}: refuses what S3 refuses and answers
 * what S3 answers, for fast whole-pipeline tests and fault injection (the model
 * is restic's mem backend). No I/O, no SDK, no timers (except an optional
 * per-operation delay); the same contract suite runs on it and on
 * {@link S3ObjectStore} (test/contract/object-store-contract.ts), so the two
 * cannot drift.
 *
 * What it enforces, as S3 does:
 * - ETag of a single PUT = MD5 hex of the body; of a multipart object = MD5 of
 *   the concatenated binary part ETags, `-N`. Under SSE-KMS / DSSE-KMS (asked
 *   for in `params`, or the bucket's default) the ETag is NOT the MD5: a
 *   random-looking 32-hex string (deterministic here, unique per write).
 * - `md5` is checked against the body (Content-MD5: `BadDigest`), `size`
 *   against its length (`IncompleteBody`); a body factory's stream is read to
 *   its end, then destroyed.
 * - Conditional requests, evaluated when the object is committed:
 *   `ifNoneMatch` on an existing key: 412 `PreconditionFailed`; `ifMatch`
 *   with another ETag: 412, on a missing key: 404 `NoSuchKey` (PUT and
 *   CompleteMultipartUpload; a failed completion leaves the upload pending);
 *   a {@link DeleteTarget} whose ETag differs: a per-key `PreconditionFailed`,
 *   missing: a per-key `NoSuchKey`; GET/HEAD `ifMatch` mismatch: 412,
 *   `ifNoneMatch` match: 304 (both bodiless for HEAD and 304, named `Unknown`
 *   as the SDK names them). {@link MemoryObjectStore.conflictNext} makes
 *   conditional writes answer 409 `ConditionalRequestConflict`.
 * - CopyObject (`copy`): the source must exist (404 `NoSuchKey`) and have
 *   the ETag `ifSourceMatch` names (412 `PreconditionFailed`), be at most
 *   5 GiB (400 `InvalidRequest`) and not be the destination; the copy keeps
 *   metadata and content type and gets the MD5 as ETag (single-part).
 * - Multipart: part numbers 1..10,000 (`InvalidArgument`); at completion the
 *   part list must be non-empty (`MalformedXML`), ascending
 *   (`InvalidPartOrder`), name uploaded parts with their ETags (`InvalidPart`),
 *   and every part but the last must be at least `minPartSize`
 *   (`EntityTooSmall`); unknown upload ids are `NoSuchUpload` (404). A
 *   completion retried with the same part list answers the same result, and an
 *   abort of a finished upload succeeds, as on S3.
 * - Listing: pages of at most 1,000 keys in UTF-8 byte order (S3's order, not
 *   JavaScript's UTF-16 order), continuing after the last key returned.
 * - Keys: non-empty, at most 1,024 UTF-8 bytes, well-formed Unicode;
 *   user metadata at most 2 KB (`MetadataTooLarge`).
 * - LastModified has 1-second resolution.
 *
 * Errors are {@link StorageError}s with the code, `statusCode`, `retryable` and
 * `retriedBySdk` that `S3ObjectStore`'s `toStorageError` gives the same S3
 * answer; their `cause` is an `Error` named like the SDK's exception
 * (`NoSuchKey`, `NotFound` for a HEAD, `BadDigest`, `InvalidPart`, …) with
 * `$metadata.httpStatusCode`. Differences from `S3ObjectStore`, on purpose:
 * an aborted `signal` rejects with `signal.reason` itself (S3ObjectStore wraps
 * it in a `STORAGE` error), a malformed range (`end < start`, negative or
 * fractional bounds) throws a `RangeError` (S3 silently answers the whole
 * object), and a {@link softSignal} is ignored, as a store sends requests
 * without it.
 *
 * @example
 * const store = new MemoryObjectStore({ minPartSize: 1024 });
 * store.seedObject('ws/a.txt', 'written by another tool', { md5: false });
 * store.failNext('put', s3LikeError('SlowDown', 503), 2); // the next two puts are throttled
 * await sync.push();
 * expect(store.requestCount('get')).toBe(0);
 */
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { isMd5Hex, md5HexToBase64, multipartEtag, unquoteEtag } from '../core/md5.js';
import type { ListedObject } from '../core/model.js';
import { META_MD5, META_MTIME, META_PART_SIZE, lowerKeys, metadataFor, readMetadata } from './metadata.js';
import { StorageError, messageOf } from '../errors.js';
import { storageCodeOf, toStorageError } from './storage-error.js';
import type { CheckedUploadParams } from '../upload-params.js';
import { isSoftSignal } from './ObjectStore.js';
import { MAX_COPY_BYTES } from './ObjectStore.js';
import type {
  CopyOptions,
  DeleteFailure,
  DeleteTarget,
  GetResult,
  MultipartInit,
  ObjectInfo,
  ObjectStore,
  PendingUpload,
  PutInput,
  PutResult,
  ReadCondition,
  WriteCondition,
} from './ObjectStore.js';


const MiB = 1024 * 1024;
const GiB = 1024 * MiB;
/** S3's limits. */
const DEFAULT_MIN_PART_SIZE = 5 * MiB;
const MAX_PART_NUMBER = 10_000;
const MAX_PART_SIZE = 5 * GiB;
const MAX_PUT_SIZE = 5 * GiB;
const MAX_KEY_BYTES = 1024;
const MAX_METADATA_BYTES = 2048;
const LIST_PAGE = 1000;
const DELETE_BATCH = 1000;
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

/**
 * The operations of the store, as counted by {@link MemoryObjectStore.requestCount}
 * and matched by {@link MemoryObjectStore.failNext}: one per S3 request, so a
 * `list` counts once per page (ListObjectsV2) and a `deleteMany` once per
 * batch of up to 1,000 keys (DeleteObjects).
 */
export type MemoryOperation =
  | 'list'
  | 'head'
  | 'firstPartSize'
  | 'get'
  | 'getRange'
  | 'put'
  | 'deleteMany'
  | 'createMultipart'
  | 'uploadPart'
  | 'completeMultipart'
  | 'abortMultipart'
  | 'listMultipartUploads'
  | 'copy';

const OPERATIONS: readonly MemoryOperation[] = [
  'list',
  'head',
  'firstPartSize',
  'get',
  'getRange',
  'put',
  'deleteMany',
  'createMultipart',
  'uploadPart',
  'completeMultipart',
  'abortMultipart',
  'listMultipartUploads',
  'copy',
];

/** Server-side encryption of an object, as S3 reports it (`none`: a server that reports none, like s3rver). */
export type MemoryEncryption = 'AES256' | 'aws:kms' | 'aws:kms:dsse' | 'none';

/** Options of {@link MemoryObjectStore}. */
export interface MemoryObjectStoreOptions {
  /** Bucket name used in error messages (`s3://<bucket>/<key>`). Default `memory`. */
  bucket?: string | undefined;
  /**
   * Minimum size of every part but the last of a multipart upload, checked at
   * completion (S3's `EntityTooSmall`). Default 5 MiB, as S3; tests use small
   * parts with e.g. 1024.
   */
  minPartSize?: number | undefined;
  /**
   * The bucket's default encryption, applied to writes whose `params` ask for
   * none. Default `AES256` (SSE-S3: what S3 reports for every object since
   * 2023; the ETag is the MD5). `aws:kms` / `aws:kms:dsse`: a bucket with
   * default KMS encryption, every such write gets a non-MD5 ETag. `none`: a
   * server that reports no encryption (s3rver, MinIO without KMS).
   */
  bucketEncryption?: MemoryEncryption | undefined;
  /** KMS key recorded for SSE-KMS objects that name none. Default: an `aws/s3`-style ARN. */
  defaultKmsKeyId?: string | undefined;
  /** Clock for LastModified and Initiated, in ms (truncated to seconds, as S3). Default `Date.now`. */
  now?: (() => number) | undefined;
  /** Delay before each request of an operation, in ms (abortable). See {@link MemoryObjectStore.setDelay}. */
  delays?: Partial<Record<MemoryOperation, number>> | undefined;
}

/** What the store holds for one object (a copy: changing it changes nothing). */
export interface MemoryObject {
  key: string;
  body: Buffer;
  /** Unquoted: 32 hex digits, or `<hex>-<N>` for a multipart object. */
  etag: string;
  size: number;
  /** LastModified in ms (whole seconds). */
  lastModifiedMs: number;
  contentType: string;
  /** User metadata (`x-amz-meta-*`), names lower-cased; the library's `md5chksum`, `mtime`, `partsize` included. */
  metadata: Record<string, string>;
  /** `AES256`, `aws:kms`, `aws:kms:dsse`, or `undefined` (a server that reports none). */
  serverSideEncryption: string | undefined;
  kmsKeyId: string | undefined;
  /** Part sizes of a multipart object; `undefined` for a single PUT. */
  partSizes: number[] | undefined;
  /** The upload settings other than encryption and metadata (StorageClass, CacheControl, Tagging, ACL…). */
  params: Omit<CheckedUploadParams, 'Metadata' | 'ServerSideEncryption' | 'SSEKMSKeyId'>;
}

/** A multipart upload in progress, as {@link MemoryObjectStore.uploads} shows it. */
export interface MemoryUpload {
  key: string;
  uploadId: string;
  initiatedMs: number;
  metadata: Record<string, string>;
  serverSideEncryption: string | undefined;
  parts: Array<{ partNumber: number; etag: string; size: number }>;
}

/** How {@link MemoryObjectStore.seedObject} writes an object "as another tool would". */
export interface SeedOptions {
  /** User metadata stored verbatim (names lower-cased), e.g. `{ md5: '<hex>' }` or a bogus `mtime`. */
  metadata?: Record<string, string> | undefined;
  /**
   * Also store `md5chksum` (base64 MD5 of the body), as this library and
   * rclone do: `true` (the body's real MD5), a hex MD5 (a lying one), or
   * `false` (default: another tool that stores none).
   */
  md5?: boolean | string | undefined;
  /** Also store `mtime` metadata (seconds with 3 decimals, as this library writes it). */
  mtimeMs?: number | undefined;
  /**
   * Store it as a multipart object with parts of this size (the last one
   * shorter): the ETag is S3's multipart ETag and {@link ObjectStore.firstPartSize}
   * answers this size. No `partsize` metadata unless given in `metadata`.
   */
  partSize?: number | undefined;
  /** ETag override (unquoted), e.g. an SSE-C ETag or one from a server with its own ideas. */
  etag?: string | undefined;
  contentType?: string | undefined;
  lastModifiedMs?: number | undefined;
  /** Encryption reported for it; `aws:kms*` gives it a non-MD5 ETag unless `etag` is given. Default: the bucket's. */
  serverSideEncryption?: MemoryEncryption | undefined;
}

/** Options of {@link MemoryObjectStore.failNext}. */
export interface FailOptions {
  /**
   * Apply the operation first, then fail (the answer was lost: the object is
   * stored, the upload completed…). Default false: fail before doing anything.
   */
  after?: boolean | undefined;
  /** Only calls about this key (a string, or a test of the key; `list`: the prefix). */
  key?: string | RegExp | undefined;
}

/**
 * A {@link StorageError} exactly as `S3ObjectStore` makes one from an SDK
 * error with this name and HTTP status (its `toStorageError`): for
 * {@link MemoryObjectStore.failNext} and for the store's own refusals.
 * `replayable`: the request had a Buffer body (the SDK already retried it),
 * so `retriedBySdk` is set.
 *
 * @example
 * s3LikeError('SlowDown', 503)      // THROTTLED, retryable
 * s3LikeError('InternalError', 500) // STORAGE, retryable
 * s3LikeError('AccessDenied', 403)  // ACCESS_DENIED
 */
export function s3LikeError(
  name: string,
  status: number,
  options: { bucket?: string; subject?: string; message?: string; replayable?: boolean } = {},
): StorageError {
  const message = options.message ?? DEFAULT_MESSAGES[name] ?? name;
  const cause = Object.assign(new Error(message), { $metadata: { httpStatusCode: status }, Code: name });
  Object.defineProperty(cause, 'name', { value: name, enumerable: true, writable: true, configurable: true });
  // the same mapping S3ObjectStore applies to the SDK's errors (storage/storage-error.ts)
  return toStorageError(cause, options.bucket ?? 'memory', options.subject ?? '', options.replayable ?? true);
}

const DEFAULT_MESSAGES: Record<string, string> = {
  NoSuchKey: 'The specified key does not exist.',
  NotFound: 'Not Found',
  NoSuchUpload: 'The specified upload does not exist. The upload ID may be invalid, or the upload may have been aborted or completed.',
  PreconditionFailed: 'At least one of the pre-conditions you specified did not hold',
  ConditionalRequestConflict: 'A conflicting conditional operation is currently in progress against this resource. Please try again.',
  // What the SDK makes of an answer without a body (a HEAD error, a 304).
  Unknown: 'UnknownError',
  BadDigest: 'The Content-MD5 you specified did not match what we received.',
  InvalidDigest: 'The Content-MD5 you specified was invalid.',
  IncompleteBody: 'You did not provide the number of bytes specified by the Content-Length HTTP header.',
  InvalidPart:
    "One or more of the specified parts could not be found. The part might not have been uploaded, or the specified entity tag might not have matched the part's entity tag.",
  InvalidPartOrder: 'The list of parts was not in ascending order. The parts list must be specified in order by part number.',
  EntityTooSmall: 'Your proposed upload is smaller than the minimum allowed object size.',
  EntityTooLarge: 'Your proposed upload exceeds the maximum allowed size',
  MalformedXML: 'The XML you provided was not well-formed or did not validate against our published schema',
  InvalidRange: 'The requested range is not satisfiable',
  KeyTooLongError: 'Your key is too long',
  MetadataTooLarge: 'Your metadata headers exceed the maximum allowed metadata size',
  AccessDenied: 'Access Denied',
  SlowDown: 'Please reduce your request rate.',
  InternalError: 'We encountered an internal error. Please try again.',
  ServiceUnavailable: 'Please reduce your request rate.',
};

interface StoredObject {
  key: string;
  body: Buffer;
  etag: string;
  lastModifiedMs: number;
  contentType: string;
  metadata: Record<string, string>;
  sse: string | undefined;
  kmsKeyId: string | undefined;
  partSizes: number[] | undefined;
  params: MemoryObject['params'];
}

interface Part {
  partNumber: number;
  body: Buffer;
  etag: string;
}

interface Upload {
  key: string;
  uploadId: string;
  initiatedMs: number;
  seq: number;
  contentType: string;
  metadata: Record<string, string>;
  sse: string | undefined;
  kmsKeyId: string | undefined;
  params: MemoryObject['params'];
  parts: Map<number, Part>;
}

interface FinishedUpload {
  key: string;
  how: 'completed' | 'aborted';
  /** For a completed upload: its part list and result (a retried completion answers the same). */
  signature?: string;
  result?: PutResult;
}

interface FaultRule {
  op: MemoryOperation;
  error: unknown;
  remaining: number;
  after: boolean;
  key: string | RegExp | undefined;
}

interface DeleteRule {
  key: string | RegExp;
  code: string;
  remaining: number;
}

interface ConflictRule {
  key: string | RegExp | undefined;
  remaining: number;
}

/** Bytes of a key in UTF-8, for S3's order. */
function utf8Compare(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

function md5Hex(body: Buffer): string {
  return createHash('md5').update(body).digest('hex');
}

/** {@link ObjectStore} in memory, strict the way S3 is. See the module comment. */
export class MemoryObjectStore implements ObjectStore {
  private readonly bucket: string;
  private readonly minPartSize: number;
  private readonly bucketEncryption: MemoryEncryption;
  private readonly defaultKmsKeyId: string;
  private readonly now: () => number;
  private readonly objects = new Map<string, StoredObject>();
  /** Keys in S3 order; rebuilt lazily after a key is added or removed. */
  private sorted: string[] | undefined;
  private readonly pending = new Map<string, Upload>();
  private readonly finished = new Map<string, FinishedUpload>();
  private readonly counts = new Map<MemoryOperation, number>();
  private readonly faults: FaultRule[] = [];
  private readonly deleteRules: DeleteRule[] = [];
  private readonly conflictRules: ConflictRule[] = [];
  private readonly delays = new Map<MemoryOperation, number>();
  /** Feeds deterministic upload ids and SSE-KMS ETags. */
  private seq = 0;

  /**
   * @throws {RangeError} for a `minPartSize` that is not a positive integer, or a negative delay.
   */
  constructor(options: MemoryObjectStoreOptions = {}) {
    this.bucket = options.bucket ?? 'memory';
    this.minPartSize = options.minPartSize ?? DEFAULT_MIN_PART_SIZE;
    if (!Number.isSafeInteger(this.minPartSize) || this.minPartSize < 1) throw new RangeError(`minPartSize must be a positive integer (got ${this.minPartSize})`);
    this.bucketEncryption = options.bucketEncryption ?? 'AES256';
    this.defaultKmsKeyId = options.defaultKmsKeyId ?? 'arn:aws:kms:us-east-1:111122223333:key/00000000-0000-4000-8000-000000000000';
    this.now = options.now ?? Date.now;
    for (const [op, ms] of Object.entries(options.delays ?? {}) as Array<[MemoryOperation, number | undefined]>) this.setDelay(op, ms);
  }

  // -------------------------------------------------------------------------
  // ObjectStore

  async *list(prefix: string, signal?: AbortSignal): AsyncIterable<ListedObject[]> {
    let after: string | undefined;
    for (;;) {
      await this.request('list', prefix, signal);
      const keys = this.sortedKeys();
      // Continue after the last key returned, as S3's continuation token does (keys may change in between).
      let i = after === undefined ? lowerBound(keys, prefix) : upperBound(keys, after);
      const page: ListedObject[] = [];
      while (i < keys.length && page.length < LIST_PAGE) {
        const key = keys[i]!;
        if (!key.startsWith(prefix)) break;
        const obj = this.objects.get(key)!;
        page.push({ key, size: obj.body.length, etag: obj.etag, lastModifiedMs: obj.lastModifiedMs });
        i++;
      }
      const truncated = i < keys.length && keys[i]!.startsWith(prefix);
      this.afterFault('list', prefix);
      yield page;
      if (!truncated) return;
      after = page[page.length - 1]!.key;
    }
  }

  async head(key: string, signal?: AbortSignal, condition?: ReadCondition): Promise<ObjectInfo> {
    await this.request('head', key, signal);
    const obj = this.objects.get(key);
    if (obj === undefined) throw this.error('NotFound', 404, key); // a HEAD error has no body: the SDK names it by status
    this.checkRead(obj, condition, true);
    this.afterFault('head', key);
    return infoOf(obj);
  }

  async firstPartSize(key: string, signal?: AbortSignal): Promise<number | undefined> {
    await this.request('firstPartSize', key, signal);
    const obj = this.objects.get(key);
    if (obj === undefined) throw this.error('NotFound', 404, key);
    this.afterFault('firstPartSize', key);
    const first = obj.partSizes?.[0];
    return first !== undefined && first > 0 ? first : undefined;
  }

  async get(key: string, signal?: AbortSignal, condition?: ReadCondition): Promise<GetResult> {
    await this.request('get', key, signal);
    const obj = this.objects.get(key);
    if (obj === undefined) throw this.error('NoSuchKey', 404, key);
    this.checkRead(obj, condition, false);
    this.afterFault('get', key);
    return { ...infoOf(obj), body: bodyStream(obj.body, signal) };
  }

  /**
   * @throws {RangeError} when `start`/`end` are not integers with `0 <= start <= end`
   *   (S3 would ignore such a Range and answer the whole object).
   */
  async getRange(key: string, start: number, end: number, signal?: AbortSignal, condition?: ReadCondition): Promise<GetResult> {
    if (!Number.isSafeInteger(start) || !Number.isSafeInteger(end) || start < 0 || end < start) {
      throw new RangeError(`getRange(${JSON.stringify(key)}, ${start}, ${end}): need integers 0 <= start <= end`);
    }
    await this.request('getRange', key, signal);
    const obj = this.objects.get(key);
    if (obj === undefined) throw this.error('NoSuchKey', 404, key);
    this.checkRead(obj, condition, false); // S3 evaluates conditions before the range
    if (start >= obj.body.length) throw this.error('InvalidRange', 416, key);
    this.afterFault('getRange', key);
    const part = obj.body.subarray(start, Math.min(end, obj.body.length - 1) + 1);
    // As S3ObjectStore: the info of a ranged GET is the response's (size = the range's length).
    return { ...infoOf(obj), size: part.length, body: bodyStream(part, signal) };
  }

  async put(input: PutInput): Promise<PutResult> {
    const { key, signal } = input;
    const replayable = Buffer.isBuffer(input.body);
    await this.request('put', key, signal, replayable);
    this.checkKey(key, replayable);
    const body = Buffer.isBuffer(input.body) ? input.body : await readAll(input.body(), signal);
    if (body.length > MAX_PUT_SIZE) throw this.error('EntityTooLarge', 400, key, undefined, replayable);
    if (body.length !== input.size) {
      throw this.error('IncompleteBody', 400, key, `Declared size ${input.size}, body has ${body.length} bytes`, replayable);
    }
    this.checkMd5(input.md5, body, key, replayable);
    const metadata = this.metadataFor(key, input.params, input.md5, input.mtimeMs, undefined, replayable);
    signalCheck(signal !== undefined && !isSoftSignal(signal) ? signal : undefined); // the body may have taken a while
    // S3 evaluates the condition when the object is committed.
    this.checkWrite(key, input, replayable);
    const { sse, kmsKeyId } = this.encryptionFor(input.params);
    const obj: StoredObject = {
      key,
      body: Buffer.from(body), // the caller's buffer may be reused
      etag: isKms(sse) ? this.opaqueEtag(key) : md5Hex(body),
      lastModifiedMs: this.lastModified(),
      contentType: input.contentType,
      metadata,
      sse,
      kmsKeyId,
      partSizes: undefined,
      params: otherParams(input.params),
    };
    this.store(obj);
    this.afterFault('put', key, replayable);
    return { etag: obj.etag, serverSideEncryption: sse };
  }

  async deleteMany(keys: ReadonlyArray<string | DeleteTarget>, signal?: AbortSignal): Promise<DeleteFailure[]> {
    const failures: DeleteFailure[] = [];
    const perKey = (key: string, s3Code: string): DeleteFailure => ({ key, error: `${s3Code}: ${DEFAULT_MESSAGES[s3Code] ?? 'delete failed'}`, code: storageCodeOf(s3Code) });
    for (let i = 0; i < keys.length; i += DELETE_BATCH) {
      const batch = keys.slice(i, i + DELETE_BATCH).map((k) => (typeof k === 'string' ? { key: k, etag: undefined } : k));
      const subject = batch[0]?.key ?? '';
      try {
        await this.request('deleteMany', subject, signal);
      } catch (error) {
        if (signal?.aborted && !isSoftSignal(signal) && error === signal.reason) throw error;
        // As S3ObjectStore: a batch that fails is reported key by key, unless the error is fatal.
        if (error instanceof StorageError && !error.retryable && error.code !== 'STORAGE') throw error;
        const code = error instanceof StorageError ? error.code : 'STORAGE';
        for (const { key } of batch) failures.push({ key, error: messageOf(error), code });
        continue;
      }
      for (const { key, etag } of batch) {
        const rule = this.deleteRules.find((r) => r.remaining > 0 && (typeof r.key === 'string' ? r.key === key : r.key.test(key)));
        if (rule !== undefined) {
          rule.remaining--;
          failures.push(perKey(key, rule.code));
          continue;
        }
        if (etag !== undefined) {
          // A conditional delete (DeleteObjects <ETag>): evaluated against the current object.
          if (this.drawConflict(key)) {
            failures.push(perKey(key, 'ConditionalRequestConflict'));
            continue;
          }
          const obj = this.objects.get(key);
          if (obj === undefined) {
            failures.push(perKey(key, 'NoSuchKey'));
            continue;
          }
          if (!etagMatches(etag, obj.etag)) {
            failures.push(perKey(key, 'PreconditionFailed'));
            continue;
          }
        }
        this.remove(key); // without an ETag a missing key is deleted too, as on S3
      }
      try {
        this.afterFault('deleteMany', subject);
      } catch (error) {
        if (error instanceof StorageError && !error.retryable && error.code !== 'STORAGE') throw error;
        const code = error instanceof StorageError ? error.code : 'STORAGE';
        for (const { key } of batch) failures.push({ key, error: messageOf(error), code });
      }
    }
    return failures;
  }

  async createMultipart(init: MultipartInit): Promise<string> {
    const { key, signal } = init;
    await this.request('createMultipart', key, signal);
    this.checkKey(key, true);
    const metadata = this.metadataFor(key, init.params, init.md5, init.mtimeMs, init.partSize, true);
    const { sse, kmsKeyId } = this.encryptionFor(init.params);
    const seq = ++this.seq;
    const uploadId = `mem-upload-${seq}-${md5Hex(Buffer.from(`${this.bucket}\0${key}\0${seq}`)).slice(0, 16)}`;
    this.pending.set(uploadId, {
      key,
      uploadId,
      initiatedMs: this.lastModified(),
      seq,
      contentType: init.contentType,
      metadata,
      sse,
      kmsKeyId,
      params: otherParams(init.params),
      parts: new Map(),
    });
    this.afterFault('createMultipart', key);
    return uploadId;
  }

  async uploadPart(key: string, uploadId: string, partNumber: number, body: Buffer, md5: string, signal?: AbortSignal): Promise<PutResult> {
    await this.request('uploadPart', key, signal);
    const upload = this.uploadOrThrow(key, uploadId);
    if (!Number.isInteger(partNumber) || partNumber < 1 || partNumber > MAX_PART_NUMBER) {
      throw this.error('InvalidArgument', 400, key, 'Part number must be an integer between 1 and 10000, inclusive');
    }
    if (body.length > MAX_PART_SIZE) throw this.error('EntityTooLarge', 400, key);
    this.checkMd5(md5, body, key, true);
    const etag = isKms(upload.sse) ? this.opaqueEtag(`${key}#${partNumber}`) : md5Hex(body);
    upload.parts.set(partNumber, { partNumber, body: Buffer.from(body), etag }); // a part uploaded again replaces the first
    this.afterFault('uploadPart', key);
    return { etag, serverSideEncryption: upload.sse };
  }

  async completeMultipart(
    key: string,
    uploadId: string,
    parts: Array<{ partNumber: number; etag: string }>,
    signal?: AbortSignal,
    condition?: WriteCondition,
  ): Promise<PutResult> {
    await this.request('completeMultipart', key, signal);
    const signature = JSON.stringify(parts.map((p) => [p.partNumber, unquoteEtag(p.etag)]));
    const done = this.finished.get(uploadId);
    if (!this.pending.has(uploadId) && done !== undefined && done.key === key) {
      // A completion retried after it succeeded (its answer was lost) gets the same answer, as on S3.
      if (done.how === 'completed' && done.signature === signature && done.result !== undefined) return { ...done.result };
      throw this.error('NoSuchUpload', 404, key);
    }
    const upload = this.uploadOrThrow(key, uploadId);
    if (parts.length === 0) throw this.error('MalformedXML', 400, key);
    for (let i = 1; i < parts.length; i++) {
      if (parts[i]!.partNumber <= parts[i - 1]!.partNumber) throw this.error('InvalidPartOrder', 400, key);
    }
    const chosen: Part[] = [];
    for (const listed of parts) {
      const part = upload.parts.get(listed.partNumber);
      if (part === undefined || part.etag !== unquoteEtag(listed.etag).toLowerCase()) {
        throw this.error('InvalidPart', 400, key, `${DEFAULT_MESSAGES.InvalidPart} (part ${listed.partNumber})`);
      }
      chosen.push(part);
    }
    for (const part of chosen.slice(0, -1)) {
      if (part.body.length < this.minPartSize) {
        throw this.error('EntityTooSmall', 400, key, `Part ${part.partNumber} has ${part.body.length} bytes, the minimum is ${this.minPartSize}`);
      }
    }
    // Evaluated at completion; a failure leaves the upload pending (the caller aborts it).
    this.checkWrite(key, condition, true);
    // S3's multipart ETag: the MD5 of the parts' binary ETags (their MD5s, unless SSE-KMS), `-N`.
    const etag = multipartEtag(chosen.map((p) => Buffer.from(p.etag, 'hex')));
    const obj: StoredObject = {
      key,
      body: Buffer.concat(chosen.map((p) => p.body)),
      etag,
      lastModifiedMs: this.lastModified(),
      contentType: upload.contentType,
      metadata: upload.metadata,
      sse: upload.sse,
      kmsKeyId: upload.kmsKeyId,
      partSizes: chosen.map((p) => p.body.length),
      params: upload.params,
    };
    this.store(obj);
    this.pending.delete(uploadId);
    const result: PutResult = { etag, serverSideEncryption: upload.sse };
    this.finished.set(uploadId, { key, how: 'completed', signature, result });
    this.afterFault('completeMultipart', key);
    return { ...result };
  }

  /**
   * CopyObject within the store, as S3 answers it: a missing source is 404
   * NoSuchKey, a source whose ETag is not `ifSourceMatch` 412
   * PreconditionFailed, a source over 5 GiB 400 InvalidRequest. Metadata,
   * content type and the other settings are copied; the encryption is the
   * one asked for, else the bucket's; the ETag is the content's MD5 (a
   * multipart source becomes a single-part object), except under SSE-KMS.
   */
  async copy(sourceKey: string, destKey: string, options: CopyOptions): Promise<PutResult> {
    await this.request('copy', sourceKey, options.signal);
    this.checkKey(destKey, true);
    const source = this.objects.get(sourceKey);
    if (source === undefined) throw this.error('NoSuchKey', 404, sourceKey);
    if (!etagMatches(options.ifSourceMatch, source.etag)) throw this.error('PreconditionFailed', 412, sourceKey);
    if (source.body.length > MAX_COPY_BYTES) {
      throw this.error('InvalidRequest', 400, sourceKey, `The specified copy source is larger than the maximum allowable size for a copy source: ${MAX_COPY_BYTES}`);
    }
    if (sourceKey === destKey) {
      throw this.error('InvalidRequest', 400, sourceKey, "This copy request is illegal because it is trying to copy an object to itself without changing the object's metadata, storage class, website redirect location or encryption attributes.");
    }
    const { sse, kmsKeyId } = this.encryptionFor(options.params);
    const obj: StoredObject = {
      key: destKey,
      body: source.body, // never mutated: stores replace whole objects
      etag: isKms(sse) ? this.opaqueEtag(destKey) : md5Hex(source.body),
      lastModifiedMs: this.lastModified(),
      contentType: source.contentType,
      metadata: { ...source.metadata },
      sse,
      kmsKeyId,
      partSizes: undefined,
      params: { ...source.params, ...otherParams(options.params) },
    };
    this.store(obj);
    this.afterFault('copy', sourceKey);
    return { etag: obj.etag, serverSideEncryption: sse };
  }

  async abortMultipart(key: string, uploadId: string): Promise<void> {
    // Never tied to a signal (as S3ObjectStore): an aborted sync must still clean up.
    await this.request('abortMultipart', key, undefined);
    const done = this.finished.get(uploadId);
    if (!this.pending.has(uploadId) && done !== undefined && done.key === key) return; // S3 keeps answering 204 for a while
    this.uploadOrThrow(key, uploadId);
    this.pending.delete(uploadId);
    this.finished.set(uploadId, { key, how: 'aborted' });
    this.afterFault('abortMultipart', key);
  }

  async listMultipartUploads(prefix: string, signal?: AbortSignal): Promise<PendingUpload[]> {
    await this.request('listMultipartUploads', prefix, signal);
    const out = [...this.pending.values()]
      .filter((u) => u.key.startsWith(prefix))
      .sort((a, b) => utf8Compare(a.key, b.key) || a.seq - b.seq)
      .map((u) => ({ key: u.key, uploadId: u.uploadId, initiatedMs: u.initiatedMs }));
    this.afterFault('listMultipartUploads', prefix);
    return out;
  }

  // -------------------------------------------------------------------------
  // Test hooks. None of these counts as a request or honours failNext/delays.

  /**
   * **Test hook.** Store an object as another tool would write it: any body,
   * metadata with or without `md5chksum`, an ETag override, a multipart shape.
   * Replaces an existing object. Returns what was stored.
   *
   * @example
   * store.seedObject('ws/big.bin', data, { partSize: 8 * 1024 * 1024 });  // aws-cli's multipart, no metadata
   * store.seedObject('ws/a.txt', 'x', { md5: true, mtimeMs: 1_700_000_000_000 }); // as this library writes it
   */
  seedObject(key: string, body: Buffer | string, options: SeedOptions = {}): MemoryObject {
    const buf = typeof body === 'string' ? Buffer.from(body, 'utf8') : Buffer.from(body);
    const metadata = lowerKeys(options.metadata);
    if (options.md5 !== undefined && options.md5 !== false) metadata[META_MD5] = md5HexToBase64(options.md5 === true ? md5Hex(buf) : options.md5);
    if (options.mtimeMs !== undefined) metadata[META_MTIME] = (options.mtimeMs / 1000).toFixed(3);
    let partSizes: number[] | undefined;
    if (options.partSize !== undefined) {
      if (!Number.isSafeInteger(options.partSize) || options.partSize < 1) throw new RangeError(`partSize must be a positive integer (got ${options.partSize})`);
      partSizes = [];
      for (let o = 0; o < buf.length || partSizes.length === 0; o += options.partSize) partSizes.push(Math.min(options.partSize, buf.length - o));
    }
    const encryption = options.serverSideEncryption ?? this.bucketEncryption;
    const sse = encryption === 'none' ? undefined : encryption;
    let etag = options.etag;
    if (etag === undefined) {
      if (isKms(sse)) etag = this.opaqueEtag(key) + (partSizes === undefined ? '' : `-${partSizes.length}`);
      else if (partSizes === undefined) etag = md5Hex(buf);
      else {
        let o = 0;
        etag = multipartEtag(partSizes.map((n) => createHash('md5').update(buf.subarray(o, (o += n))).digest()));
      }
    }
    const obj: StoredObject = {
      key,
      body: buf,
      etag: unquoteEtag(etag),
      lastModifiedMs: truncateToSecond(options.lastModifiedMs ?? this.now()),
      contentType: options.contentType ?? 'binary/octet-stream',
      metadata,
      sse,
      kmsKeyId: isKms(sse) ? this.defaultKmsKeyId : undefined,
      partSizes,
      params: {},
    };
    this.store(obj);
    return snapshot(obj);
  }

  /** **Test hook.** What the store holds for `key` (a copy), or `undefined`. */
  inspect(key: string): MemoryObject | undefined {
    const obj = this.objects.get(key);
    return obj === undefined ? undefined : snapshot(obj);
  }

  /** **Test hook.** The bytes of `key` (a copy), or `undefined`. */
  bodyOf(key: string): Buffer | undefined {
    const obj = this.objects.get(key);
    return obj === undefined ? undefined : Buffer.from(obj.body);
  }

  /** **Test hook.** Every key (under `prefix`), in S3's order (UTF-8 bytes). */
  keys(prefix = ''): string[] {
    return this.sortedKeys().filter((k) => k.startsWith(prefix));
  }

  /** **Test hook.** Remove an object as another tool would (not a request). Returns whether it existed. */
  removeObject(key: string): boolean {
    return this.remove(key);
  }

  /** **Test hook.** Multipart uploads in progress, in S3's order. */
  uploads(): MemoryUpload[] {
    return [...this.pending.values()]
      .sort((a, b) => utf8Compare(a.key, b.key) || a.seq - b.seq)
      .map((u) => ({
        key: u.key,
        uploadId: u.uploadId,
        initiatedMs: u.initiatedMs,
        metadata: { ...u.metadata },
        serverSideEncryption: u.sse,
        parts: [...u.parts.values()].sort((a, b) => a.partNumber - b.partNumber).map((p) => ({ partNumber: p.partNumber, etag: p.etag, size: p.body.length })),
      }));
  }

  /**
   * **Test hook.** Requests made for an operation (all operations when
   * omitted), failed ones included, since construction or the last
   * {@link resetRequestCounts}. One per S3 request: a `list` page and a
   * `deleteMany` batch count one each. A call rejected for an already-aborted
   * signal is never sent, so not counted.
   *
   * @example
   * expect(store.requestCount('get') + store.requestCount('getRange')).toBe(0); // no download happened
   */
  requestCount(op?: MemoryOperation): number {
    if (op !== undefined) return this.counts.get(op) ?? 0;
    let total = 0;
    for (const n of this.counts.values()) total += n;
    return total;
  }

  /** **Test hook.** Every operation's request count (operations never called are 0). */
  requestCounts(): Record<MemoryOperation, number> {
    return Object.fromEntries(OPERATIONS.map((op) => [op, this.counts.get(op) ?? 0])) as Record<MemoryOperation, number>;
  }

  /** **Test hook.** Restart the request counters at 0. */
  resetRequestCounts(): void {
    this.counts.clear();
  }

  /**
   * **Test hook.** Make the next `times` requests of `op` (default 1) fail
   * with `error` (a function is called for each failure, for a fresh error
   * each time). Before the operation does anything, unless `options.after`.
   * Rules are matched in the order they were added. Use {@link s3LikeError}
   * for the errors S3ObjectStore would give.
   *
   * @example
   * store.failNext('uploadPart', s3LikeError('InternalError', 500), 3);
   * store.failNext('completeMultipart', () => s3LikeError('InternalError', 500), 1, { after: true }); // completed, answer lost
   */
  failNext(op: MemoryOperation, error: unknown, times = 1, options: FailOptions = {}): void {
    if (!OPERATIONS.includes(op)) throw new RangeError(`unknown operation ${JSON.stringify(op)}`);
    if (!Number.isSafeInteger(times) || times < 1) throw new RangeError(`times must be a positive integer (got ${times})`);
    this.faults.push({ op, error, remaining: times, after: options.after === true, key: options.key });
  }

  /**
   * **Test hook.** In `deleteMany`, report a per-key error (S3's `<Error>` in
   * a DeleteObjects answer, default `AccessDenied`) for the next `times`
   * matching keys instead of deleting them.
   */
  failDeleteOf(key: string | RegExp, code = 'AccessDenied', times = 1): void {
    this.deleteRules.push({ key, code, remaining: times });
  }

  /**
   * **Test hook.** The next `times` conditional writes (a `put` or
   * `completeMultipart` with `ifMatch` / `ifNoneMatch`, or a `deleteMany`
   * target with an ETag) of a matching key (default: any) answer 409
   * `ConditionalRequestConflict` (CONFLICT) instead of being evaluated, as S3
   * does when another write of the key is in progress. Nothing is written; a
   * multipart upload stays pending; a delete target is reported per key.
   * Unconditional writes are not affected.
   */
  conflictNext(times = 1, key?: string | RegExp): void {
    if (!Number.isSafeInteger(times) || times < 1) throw new RangeError(`times must be a positive integer (got ${times})`);
    this.conflictRules.push({ key, remaining: times });
  }

  /** **Test hook.** Failures still to fire (from {@link failNext}, {@link failDeleteOf} and {@link conflictNext}). */
  pendingFaults(): number {
    return (
      this.faults.filter((f) => f.remaining > 0).length +
      this.deleteRules.filter((r) => r.remaining > 0).length +
      this.conflictRules.filter((r) => r.remaining > 0).length
    );
  }

  /** **Test hook.** Forget every injected failure. */
  clearFaults(): void {
    this.faults.length = 0;
    this.deleteRules.length = 0;
    this.conflictRules.length = 0;
  }

  /**
   * **Test hook.** Wait `ms` before each request of `op` (`undefined` or 0:
   * none). The only timer the store uses; an abort of the request's signal
   * ends the wait (rejecting with its reason).
   */
  setDelay(op: MemoryOperation, ms: number | undefined): void {
    if (!OPERATIONS.includes(op)) throw new RangeError(`unknown operation ${JSON.stringify(op)}`);
    if (ms === undefined || ms === 0) {
      this.delays.delete(op);
      return;
    }
    if (!Number.isFinite(ms) || ms < 0) throw new RangeError(`delay must be a non-negative number of ms (got ${ms})`);
    this.delays.set(op, ms);
  }

  // -------------------------------------------------------------------------
  // Internals

  /** The start of every request: signal, count, delay, injected failure. */
  private async request(op: MemoryOperation, subject: string, signal: AbortSignal | undefined, replayable = true): Promise<void> {
    const live = signal !== undefined && !isSoftSignal(signal) ? signal : undefined;
    signalCheck(live);
    this.counts.set(op, (this.counts.get(op) ?? 0) + 1);
    const ms = this.delays.get(op);
    if (ms !== undefined) await delay(ms, live);
    signalCheck(live);
    const rule = this.drawFault(op, subject, false);
    if (rule !== undefined) throw materialize(rule.error, this.bucket, subject, replayable);
  }

  /** An `after` failure: the operation was applied, its answer is lost. */
  private afterFault(op: MemoryOperation, subject: string, replayable = true): void {
    const rule = this.drawFault(op, subject, true);
    if (rule !== undefined) throw materialize(rule.error, this.bucket, subject, replayable);
  }

  private drawFault(op: MemoryOperation, subject: string, after: boolean): FaultRule | undefined {
    const rule = this.faults.find(
      (f) => f.op === op && f.remaining > 0 && f.after === after && (f.key === undefined || (typeof f.key === 'string' ? f.key === subject : f.key.test(subject))),
    );
    if (rule !== undefined) rule.remaining--;
    return rule;
  }

  /** A {@link conflictNext} rule for this key, used up by one conditional write. */
  private drawConflict(key: string): boolean {
    const rule = this.conflictRules.find((r) => r.remaining > 0 && (r.key === undefined || (typeof r.key === 'string' ? r.key === key : r.key.test(key))));
    if (rule === undefined) return false;
    rule.remaining--;
    return true;
  }

  /**
   * A write's precondition against the current object, as S3 evaluates it at
   * commit: If-None-Match: * → 412 when the key exists; If-Match → 404
   * NoSuchKey when it does not, 412 when its ETag differs.
   */
  private checkWrite(key: string, condition: WriteCondition | undefined, replayable: boolean): void {
    if (condition === undefined || (condition.ifMatch === undefined && condition.ifNoneMatch !== true)) return;
    if (this.drawConflict(key)) throw this.error('ConditionalRequestConflict', 409, key, undefined, replayable);
    const existing = this.objects.get(key);
    if (condition.ifNoneMatch === true && existing !== undefined) throw this.error('PreconditionFailed', 412, key, undefined, replayable);
    if (condition.ifMatch !== undefined) {
      if (existing === undefined) throw this.error('NoSuchKey', 404, key, undefined, replayable);
      if (!etagMatches(condition.ifMatch, existing.etag)) throw this.error('PreconditionFailed', 412, key, undefined, replayable);
    }
  }

  /**
   * A read's precondition (RFC 7232 order, as S3): If-Match mismatch → 412;
   * then If-None-Match match → 304. A HEAD's errors and any 304 have no
   * body: the SDK names them `Unknown`, and so does this store.
   */
  private checkRead(obj: StoredObject, condition: ReadCondition | undefined, head: boolean): void {
    if (condition === undefined) return;
    if (condition.ifMatch !== undefined && !etagMatches(condition.ifMatch, obj.etag)) {
      throw head ? this.error('Unknown', 412, obj.key) : this.error('PreconditionFailed', 412, obj.key);
    }
    if (condition.ifNoneMatch !== undefined && etagMatches(condition.ifNoneMatch, obj.etag)) throw this.error('Unknown', 304, obj.key);
  }

  private error(name: string, status: number, subject: string, message?: string, replayable = true): StorageError {
    return s3LikeError(name, status, { bucket: this.bucket, subject, replayable, ...(message !== undefined ? { message } : {}) });
  }

  private checkKey(key: string, replayable: boolean): void {
    if (typeof key !== 'string' || key.length === 0) throw this.error('InvalidArgument', 400, String(key), 'An object key must not be empty', replayable);
    if (LONE_SURROGATE.test(key)) throw this.error('InvalidURI', 400, key, 'The key is not well-formed Unicode (a lone surrogate cannot be sent)', replayable);
    if (Buffer.byteLength(key, 'utf8') > MAX_KEY_BYTES) throw this.error('KeyTooLongError', 400, key, undefined, replayable);
  }

  /** Content-MD5: a malformed one is `InvalidDigest`, a wrong one `BadDigest`. */
  private checkMd5(md5: string, body: Buffer, key: string, replayable: boolean): void {
    if (typeof md5 !== 'string' || !isMd5Hex(md5)) throw this.error('InvalidDigest', 400, key, undefined, replayable);
    if (md5.toLowerCase() !== md5Hex(body)) throw this.error('BadDigest', 400, key, undefined, replayable);
  }

  /** The metadata S3ObjectStore sends: the user's, then `mtime`, `md5chksum` (and `partsize`) over them. */
  private metadataFor(
    key: string,
    params: CheckedUploadParams | undefined,
    md5: string | undefined,
    mtimeMs: number,
    partSize: number | undefined,
    replayable: boolean,
  ): Record<string, string> {
    const meta = { ...lowerKeys(params?.Metadata), ...metadataFor(md5, mtimeMs) };
    if (partSize !== undefined) meta[META_PART_SIZE] = String(partSize);
    let bytes = 0;
    for (const [k, v] of Object.entries(meta)) bytes += Buffer.byteLength(k) + Buffer.byteLength(v);
    if (bytes > MAX_METADATA_BYTES) throw this.error('MetadataTooLarge', 400, key, undefined, replayable);
    return meta;
  }

  /** The encryption asked for, or the bucket's default. */
  private encryptionFor(params: CheckedUploadParams | undefined): { sse: string | undefined; kmsKeyId: string | undefined } {
    const asked = params?.ServerSideEncryption;
    const sse = asked ?? (this.bucketEncryption === 'none' ? undefined : this.bucketEncryption);
    return { sse, kmsKeyId: isKms(sse) ? (params?.SSEKMSKeyId ?? this.defaultKmsKeyId) : undefined };
  }

  /** A 32-hex ETag that is not the content's MD5 (SSE-KMS): unique per write, deterministic across runs. */
  private opaqueEtag(salt: string): string {
    return md5Hex(Buffer.from(`sse-kms\0${this.bucket}\0${salt}\0${++this.seq}`));
  }

  private uploadOrThrow(key: string, uploadId: string): Upload {
    const upload = this.pending.get(uploadId);
    if (upload === undefined || upload.key !== key) throw this.error('NoSuchUpload', 404, key);
    return upload;
  }

  private lastModified(): number {
    return truncateToSecond(this.now());
  }

  private store(obj: StoredObject): void {
    if (!this.objects.has(obj.key)) this.sorted = undefined;
    this.objects.set(obj.key, obj);
  }

  private remove(key: string): boolean {
    const had = this.objects.delete(key);
    if (had) this.sorted = undefined;
    return had;
  }

  private sortedKeys(): string[] {
    if (this.sorted === undefined) {
      this.sorted = [...this.objects.keys()]
        .map((k) => ({ k, b: Buffer.from(k, 'utf8') }))
        .sort((x, y) => Buffer.compare(x.b, y.b))
        .map((x) => x.k);
    }
    return this.sorted;
  }
}

/** Does an ETag condition (quoted or not; `*`: any) match an object's (unquoted) ETag? */
function etagMatches(condition: string, etag: string): boolean {
  const wanted = unquoteEtag(condition.trim());
  return wanted === '*' || wanted === etag;
}

function isKms(sse: string | undefined): boolean {
  return sse !== undefined && sse.startsWith('aws:kms');
}

function truncateToSecond(ms: number): number {
  return Math.floor(ms / 1000) * 1000;
}


function otherParams(params: CheckedUploadParams | undefined): MemoryObject['params'] {
  if (params === undefined) return {};
  const { Metadata: _m, ServerSideEncryption: _s, SSEKMSKeyId: _k, ...rest } = params;
  return { ...rest };
}

/** What S3ObjectStore's `infoFrom` makes of the same object's HEAD/GET answer. */
function infoOf(obj: StoredObject): ObjectInfo {
  return {
    size: obj.body.length,
    etag: obj.etag,
    md5: undefined,
    mtimeMs: undefined,
    ...readMetadata(obj.metadata),
    lastModifiedMs: obj.lastModifiedMs,
    serverSideEncryption: obj.sse,
  };
}

function snapshot(obj: StoredObject): MemoryObject {
  return {
    key: obj.key,
    body: Buffer.from(obj.body),
    etag: obj.etag,
    size: obj.body.length,
    lastModifiedMs: obj.lastModifiedMs,
    contentType: obj.contentType,
    metadata: { ...obj.metadata },
    serverSideEncryption: obj.sse,
    kmsKeyId: obj.kmsKeyId,
    partSizes: obj.partSizes === undefined ? undefined : [...obj.partSizes],
    params: { ...obj.params },
  };
}

/** First index whose key is >= `from` in UTF-8 order. */
function lowerBound(keys: readonly string[], from: string): number {
  let lo = 0;
  let hi = keys.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (utf8Compare(keys[mid]!, from) < 0) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** First index whose key is > `after` in UTF-8 order. */
function upperBound(keys: readonly string[], after: string): number {
  let lo = 0;
  let hi = keys.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (utf8Compare(keys[mid]!, after) <= 0) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

function signalCheck(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw signal.reason;
}

/** An injected failure: a function is called for a fresh error. */
function materialize(error: unknown, bucket: string, subject: string, replayable: boolean): unknown {
  if (typeof error === 'function') return (error as (ctx: { bucket: string; subject: string; replayable: boolean }) => unknown)({ bucket, subject, replayable });
  return error;
}

/** Wait `ms`; an abort of `signal` ends the wait with its reason. */
function delay(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** Read a body factory's stream to its end (then destroy it, as S3ObjectStore does); an abort destroys it with the reason. */
async function readAll(stream: Readable, signal: AbortSignal | undefined): Promise<Buffer> {
  const live = signal !== undefined && !isSoftSignal(signal) ? signal : undefined;
  const onAbort = (): void => {
    stream.destroy(live?.reason instanceof Error ? live.reason : new Error('aborted'));
  };
  live?.addEventListener('abort', onAbort, { once: true });
  try {
    const chunks: Buffer[] = [];
    for await (const chunk of stream) chunks.push(typeof chunk === 'string' ? Buffer.from(chunk) : Buffer.from(chunk as Uint8Array));
    return Buffer.concat(chunks);
  } catch (error) {
    if (live?.aborted) throw live.reason;
    throw error; // the body's own failure, as S3ObjectStore reports it (e.g. a file that could not be read)
  } finally {
    live?.removeEventListener('abort', onAbort);
    stream.destroy();
  }
}

/** A response body; an abort of the request's signal destroys it with the reason, as the SDK's body is. */
function bodyStream(data: Buffer, signal: AbortSignal | undefined): Readable {
  const body = Readable.from([Buffer.from(data)], { objectMode: false });
  const live = signal !== undefined && !isSoftSignal(signal) ? signal : undefined;
  if (live !== undefined) {
    const onAbort = (): void => {
      body.destroy(live.reason instanceof Error ? live.reason : Object.assign(new Error('The operation was aborted'), { name: 'AbortError', cause: live.reason }));
    };
    live.addEventListener('abort', onAbort, { once: true });
    body.once('close', () => live.removeEventListener('abort', onAbort));
  }
  return body;
}
