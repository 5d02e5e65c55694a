import { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CopyObjectCommand,
  type CopyObjectCommandOutput,
  CreateMultipartUploadCommand,
  ListMultipartUploadsCommand,
  UploadPartCommand,
  type CompleteMultipartUploadCommandOutput,
  type CreateMultipartUploadCommandOutput,
  type ListMultipartUploadsCommandOutput,
  type UploadPartCommandOutput,
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  type DeleteObjectsCommandOutput,
  type GetObjectCommandOutput,
  type HeadObjectCommandOutput,
  type ListObjectsV2CommandOutput,
  type PutObjectCommandInput,
  type PutObjectCommandOutput,
  type S3Client,
  type S3ServiceException,
} from '@aws-sdk/client-s3';
import { md5HexToBase64, unquoteEtag } from '../core/md5.js';
import { META_PART_SIZE, lowerKeys, metadataFor, readMetadata } from './metadata.js';
import type { ListedObject } from '../core/model.js';
import { StorageError, escapeForLog, messageOf } from '../errors.js';
import { storageCodeOf, toStorageError } from './storage-error.js';
import type { IncomingHttpHeaders, IncomingMessage } from 'node:http';
import { FINAL_ERROR_STATUSES, FastPath, errorAnswer, failedInTransit, header, notModifiedError, readErrorBody, readSmallBody, sseCustomerHeaders, type Transport } from './fast-path.js';
import { parseListPage, type ListPage } from './list-xml.js';

export { toStorageError };
import { DEFAULT_MAX_ATTEMPTS, backoffMs } from '../core/backoff.js';
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
import { isSoftSignal, SSE_C } from './ObjectStore.js';
import type { CheckedUploadParams } from '../upload-params.js';
import {
  COMPLETE_MULTIPART_MIN_MS,
  DEFAULT_STALL_TIMEOUT_MS,
  StallWatch,
  UPLOAD_FLOOR_BYTES_PER_S,
  UPLOAD_STREAM_SLACK,
  seconds,
  watchBody,
  watchUpload,
  type Stall,
} from './stall.js';


/** S3's limit on keys per DeleteObjects request. */
const DELETE_BATCH = 1000;
/** A listing page larger than this over the fast path is read again through the SDK (1,000 keys of 1 KiB are about 1.3 MB). */
const MAX_FAST_LIST_BYTES = 16 * 1024 * 1024;

/** Options of {@link S3ObjectStore}. */
export interface S3ObjectStoreOptions {
  /** Sent as `ExpectedBucketOwner` on every request when set. */
  expectedBucketOwner?: string | undefined;
  /**
   * A request that moves no bytes for this long is abandoned and sent again
   * (see `stall.ts`): no response headers, no chunk of a response body, or
   * (for a Buffer body, whose progress cannot be seen) longer than this plus
   * the bytes of the uploads in flight at 256 KiB/s. Default
   * {@link DEFAULT_STALL_TIMEOUT_MS} (20 s). `0`: no watchdog of the store's
   * own (for a client with its own socket timeout).
   */
  stallTimeoutMs?: number | undefined;
  /**
   * Attempts per request when stalls abandon it (the SDK never retries an
   * aborted request). Default 3.
   */
  maxAttempts?: number | undefined;
  /**
   * The client times out idle sockets itself within `stallTimeoutMs`
   * (`requestHandler.socketTimeout` and `connectionTimeout`, as the client the
   * library builds does): no watchdog of the store's own, and no options
   * object on `send()` without a signal, so the SDK's middleware cache works.
   */
  clientDetectsStalls?: boolean | undefined;
  /** SSE-C: sent with every request that reads or writes an object's bytes or metadata. */
  sseCustomer?: { SSECustomerAlgorithm: 'AES256'; SSECustomerKey: string } | undefined;
  /**
   * `'auto'` (default): GetObject (whole and ranged), ListObjectsV2 and
   * single-request PutObject of a Buffer go over the lean path of
   * `fast-path.ts` where it is safe. Elsewhere, and for an answer other than
   * a success, a 304 or (GET and PUT) a 404, 409 or 412, through
   * `client.send()`; a failure on the way counts as the first attempt.
   * `'sdk'`: every request through `client.send()`.
   */
  transport?: Transport | undefined;
  /**
   * The library built the client (its middleware is stock): the fast path
   * does not need to inspect it. Default false.
   */
  ownsClient?: boolean | undefined;
  /** @internal Called for each request the fast path answered itself (tests count requests with it). */
  onFastRequest?: ((op: 'get' | 'getRange' | 'put' | 'list') => void) | undefined;
}

/**
 * A request's first attempt went over the fast path and failed before its
 * answer: on its way (`error`, see {@link failedInTransit}) or for a stall
 * (`stall`, the store's watchdog). The SDK path counts it as attempt 1.
 */
class FailedFastAttempt {
  constructor(
    readonly error: unknown,
    readonly stall: Stall | undefined,
  ) {}
}

/** What a fast attempt that threw is for the SDK path: a first attempt, or nothing (an abort, a failure to sign). */
function failedAttempt(error: unknown, watch: StallWatch | undefined): FailedFastAttempt | undefined {
  if (watch?.stall !== undefined) return new FailedFastAttempt(watch.error, watch.stall);
  return failedInTransit(error) ? new FailedFastAttempt(error, undefined) : undefined;
}

/** {@link ObjectStore} over `@aws-sdk/client-s3`. SDK errors become {@link StorageError}s here. */
export class S3ObjectStore implements ObjectStore {
  /** Sent as `ExpectedBucketOwner` on every request when set. */
  private readonly owner: { ExpectedBucketOwner?: string };
  private readonly ownerHeader: string | undefined;
  private readonly stallTimeoutMs: number;
  private readonly attempts: number;
  /** Each request runs under a {@link StallWatch} (not when the client detects stalls itself). */
  private readonly watchdog: boolean;
  /** Bytes handed to requests whose upload progress cannot be seen (they share the link). */
  private uploading = 0;
  /** SSE-C parameters (empty without a customer key). */
  private readonly ssec: { SSECustomerAlgorithm?: 'AES256'; SSECustomerKey?: string };
  private readonly transport: Transport;
  private readonly ownsClient: boolean;
  /** The fast path, once looked at (`undefined` inside: not usable for this client). */
  private fast: Promise<FastPath | undefined> | undefined;
  /** SSE-C and expected-owner headers of the fast path. */
  private readonly fastHeaders: Record<string, string>;
  private readonly onFastRequest: ((op: 'get' | 'getRange' | 'put' | 'list') => void) | undefined;
  /** Whether the client's stack has the SDK's retry middleware (looked at once, when a fast attempt failed). */
  private retries: boolean | undefined;

  /**
   * @param options the expected bucket owner (a string, as before) or {@link S3ObjectStoreOptions}.
   */
  constructor(
    private readonly client: S3Client,
    private readonly bucket: string,
    options?: string | S3ObjectStoreOptions,
  ) {
    const o: S3ObjectStoreOptions = typeof options === 'string' ? { expectedBucketOwner: options } : (options ?? {});
    this.owner = o.expectedBucketOwner === undefined ? {} : { ExpectedBucketOwner: o.expectedBucketOwner };
    this.ownerHeader = o.expectedBucketOwner;
    this.stallTimeoutMs = o.stallTimeoutMs ?? DEFAULT_STALL_TIMEOUT_MS;
    this.attempts = o.maxAttempts ?? DEFAULT_MAX_ATTEMPTS;
    this.watchdog = o.clientDetectsStalls !== true && this.stallTimeoutMs > 0;
    this.ssec = o.sseCustomer === undefined ? {} : { ...o.sseCustomer };
    this.transport = o.transport ?? 'auto';
    this.ownsClient = o.ownsClient === true;
    this.onFastRequest = o.onFastRequest;
    this.fastHeaders = {
      ...sseCustomerHeaders(this.ssec),
      ...(o.expectedBucketOwner !== undefined ? { 'x-amz-expected-bucket-owner': o.expectedBucketOwner } : {}),
    };
  }

  /**
   * A sync operation starts: a client of the user's is looked at again before
   * the next fast request (middleware added to it since then is seen, and
   * turns the fast path off). The library's own client is not (nothing adds
   * middleware to it).
   */
  startOperation(): void {
    if (!this.ownsClient) this.fast = undefined;
  }

  async *list(prefix: string, signal?: AbortSignal): AsyncIterable<ListedObject[]> {
    let token: string | undefined;
    const seen = new Set<string>();
    do {
      const fast = await this.fastList(prefix, token, signal);
      const out = fast !== undefined && !(fast instanceof FailedFastAttempt) ? fast : await this.sdkList(prefix, token, signal, fast);
      yield out.objects;
      const next = out.isTruncated ? out.nextContinuationToken : undefined;
      if (out.isTruncated && !next) {
        throw new StorageError('STORAGE', `Listing of "${escapeForLog(prefix)}" is truncated but has no continuation token`);
      }
      if (next !== undefined) {
        if (seen.has(next)) throw new StorageError('STORAGE', 'Listing returned the same continuation token twice');
        seen.add(next);
      }
      token = next;
    } while (token !== undefined);
  }

  async head(key: string, signal?: AbortSignal, condition?: ReadCondition): Promise<ObjectInfo> {
    const out = await this.send<HeadObjectCommandOutput>(
      new HeadObjectCommand({ Bucket: this.bucket, Key: key, ...readConditionFields(condition), ...this.ssec, ...this.owner }),
      signal,
      key,
    );
    return infoFrom(out);
  }

  async firstPartSize(key: string, signal?: AbortSignal): Promise<number | undefined> {
    const out = await this.send<HeadObjectCommandOutput>(new HeadObjectCommand({ Bucket: this.bucket, Key: key, PartNumber: 1, ...this.ssec, ...this.owner }), signal, key);
    return out.PartsCount !== undefined && out.PartsCount > 0 && out.ContentLength !== undefined && out.ContentLength > 0 ? out.ContentLength : undefined;
  }

  async get(key: string, signal?: AbortSignal, condition?: ReadCondition): Promise<GetResult> {
    let first: FailedFastAttempt | undefined;
    if (this.transport === 'auto') {
      const fast = await this.fastGet(key, undefined, signal, condition);
      if (fast instanceof FailedFastAttempt) first = fast;
      else if (fast !== undefined) return fast;
    }
    const out = await this.send<GetObjectCommandOutput>(
      new GetObjectCommand({ Bucket: this.bucket, Key: key, ...readConditionFields(condition), ...this.ssec, ...this.owner }),
      signal,
      key,
      true,
      first,
    );
    if (out.Body === undefined) throw new StorageError('STORAGE', `GetObject returned no body for "${escapeForLog(key)}"`);
    return withBody(infoFrom(out), out.Body as Readable);
  }

  async put(input: PutInput): Promise<PutResult> {
    if (Buffer.isBuffer(input.body) && input.body.length !== input.size) {
      // a caller's bug: the request would hang on a short body or be refused without a reason
      throw new RangeError(`put ${escapeForLog(input.key)}: the body has ${input.body.length} bytes, size says ${input.size}`);
    }
    let first: FailedFastAttempt | undefined;
    if (this.transport === 'auto' && Buffer.isBuffer(input.body)) {
      const fast = await this.fastPut(input, input.body);
      if (fast instanceof FailedFastAttempt) first = fast;
      else if (fast !== undefined) return fast;
    }
    const body = Buffer.isBuffer(input.body) ? input.body : input.body();
    try {
      const out = await this.send<PutObjectCommandOutput>(
        new PutObjectCommand({
          Bucket: this.bucket,
          Key: input.key,
          Body: body,
          ContentLength: input.size,
          ContentMD5: md5HexToBase64(input.md5),
          ContentType: input.contentType,
          ...uploadFields(input.params),
          Metadata: { ...input.params?.Metadata, ...metadataFor(input.md5, input.mtimeMs) },
          ...writeConditionFields(input),
          ...this.ssec,
          ...this.owner,
        }),
        input.signal,
        input.key,
        Buffer.isBuffer(body),
        first,
      );
      return { etag: unquoteEtag(out.ETag), serverSideEncryption: encryptionOf(out) };
    } finally {
      if (!Buffer.isBuffer(body)) body.destroy();
    }
  }

  async getRange(key: string, start: number, end: number, signal?: AbortSignal, condition?: ReadCondition): Promise<GetResult> {
    let first: FailedFastAttempt | undefined;
    if (this.transport === 'auto') {
      const fast = await this.fastGet(key, `bytes=${start}-${end}`, signal, condition);
      if (fast instanceof FailedFastAttempt) first = fast;
      else if (fast !== undefined) return fast;
    }
    const out = await this.send<GetObjectCommandOutput>(
      new GetObjectCommand({ Bucket: this.bucket, Key: key, Range: `bytes=${start}-${end}`, ...readConditionFields(condition), ...this.ssec, ...this.owner }),
      signal,
      key,
      true,
      first,
    );
    if (out.Body === undefined) throw new StorageError('STORAGE', `GetObject returned no body for "${escapeForLog(key)}"`);
    return withBody(infoFrom(out), out.Body as Readable);
  }

  async createMultipart(init: MultipartInit): Promise<string> {
    const out = await this.send<CreateMultipartUploadCommandOutput>(
      new CreateMultipartUploadCommand({
        Bucket: this.bucket,
        Key: init.key,
        ContentType: init.contentType,
        ...uploadFields(init.params),
        Metadata: { ...init.params?.Metadata, ...metadataFor(init.md5, init.mtimeMs), [META_PART_SIZE]: String(init.partSize) },
        ...this.ssec,
        ...this.owner,
      }),
      init.signal,
      init.key,
    );
    if (!out.UploadId) throw new StorageError('STORAGE', `CreateMultipartUpload returned no upload id for "${escapeForLog(init.key)}"`);
    return out.UploadId;
  }

  async uploadPart(key: string, uploadId: string, partNumber: number, body: Buffer, md5: string, signal?: AbortSignal): Promise<PutResult> {
    const out = await this.send<UploadPartCommandOutput>(
      new UploadPartCommand({
        Bucket: this.bucket,
        Key: key,
        UploadId: uploadId,
        PartNumber: partNumber,
        Body: body,
        ContentLength: body.length,
        ContentMD5: md5HexToBase64(md5),
        ...this.ssec,
        ...this.owner,
      }),
      signal,
      key,
    );
    return { etag: unquoteEtag(out.ETag), serverSideEncryption: encryptionOf(out) };
  }

  async completeMultipart(
    key: string,
    uploadId: string,
    parts: Array<{ partNumber: number; etag: string }>,
    signal?: AbortSignal,
    condition?: WriteCondition,
  ): Promise<PutResult> {
    const out = await this.send<CompleteMultipartUploadCommandOutput>(
      new CompleteMultipartUploadCommand({
        Bucket: this.bucket,
        Key: key,
        UploadId: uploadId,
        MultipartUpload: { Parts: parts.map((p) => ({ PartNumber: p.partNumber, ETag: `"${p.etag}"` })) },
        ...writeConditionFields(condition),
        ...this.owner,
      }),
      signal,
      key,
    );
    // CompleteMultipartUpload does not echo SSECustomerAlgorithm: the object is SSE-C when its parts were sent so
    return { etag: unquoteEtag(out.ETag), serverSideEncryption: this.ssec.SSECustomerAlgorithm !== undefined ? SSE_C : encryptionOf(out) };
  }

  /**
   * CopyObject within the bucket: `CopySourceIfMatch` the quoted ETag,
   * `MetadataDirective: COPY`; under SSE-C the source is read with the
   * customer key and the copy written with it.
   */
  async copy(sourceKey: string, destKey: string, options: CopyOptions): Promise<PutResult> {
    const sourceSsec =
      this.ssec.SSECustomerAlgorithm === undefined ? {} : { CopySourceSSECustomerAlgorithm: this.ssec.SSECustomerAlgorithm, CopySourceSSECustomerKey: this.ssec.SSECustomerKey };
    const out = await this.send<CopyObjectCommandOutput>(
      new CopyObjectCommand({
        Bucket: this.bucket,
        Key: destKey,
        CopySource: copySource(this.bucket, sourceKey),
        CopySourceIfMatch: quoteEtag(options.ifSourceMatch),
        MetadataDirective: 'COPY',
        ...(options.params as Record<string, unknown> | undefined),
        ...sourceSsec,
        ...this.ssec,
        ...this.owner,
        ...(this.owner.ExpectedBucketOwner !== undefined ? { ExpectedSourceBucketOwner: this.owner.ExpectedBucketOwner } : {}),
      }),
      options.signal,
      sourceKey,
    );
    return {
      etag: unquoteEtag(out.CopyObjectResult?.ETag),
      serverSideEncryption: this.ssec.SSECustomerAlgorithm !== undefined ? SSE_C : encryptionOf(out),
    };
  }

  async abortMultipart(key: string, uploadId: string): Promise<void> {
    // Never tied to the sync's signal: an aborted sync must still clean up.
    await this.send(new AbortMultipartUploadCommand({ Bucket: this.bucket, Key: key, UploadId: uploadId, ...this.owner }), undefined, key);
  }

  async listMultipartUploads(prefix: string, signal?: AbortSignal): Promise<PendingUpload[]> {
    const out: PendingUpload[] = [];
    let keyMarker: string | undefined;
    let uploadIdMarker: string | undefined;
    for (;;) {
      const page = await this.send<ListMultipartUploadsCommandOutput>(
        new ListMultipartUploadsCommand({
          Bucket: this.bucket,
          Prefix: prefix,
          KeyMarker: keyMarker,
          UploadIdMarker: uploadIdMarker,
          ...this.owner,
        }),
        signal,
        prefix,
      );
      for (const u of page.Uploads ?? []) {
        if (u.Key && u.UploadId) out.push({ key: u.Key, uploadId: u.UploadId, initiatedMs: u.Initiated?.getTime() });
      }
      if (!page.IsTruncated || (!page.NextKeyMarker && !page.NextUploadIdMarker)) return out;
      keyMarker = page.NextKeyMarker;
      uploadIdMarker = page.NextUploadIdMarker;
    }
  }

  /**
   * DeleteObjects in batches of 1,000 (Quiet: only errors come back). A
   * {@link DeleteTarget} is sent with its `ETag` (quoted), so S3 deletes it
   * only if its current ETag is that one; otherwise S3 reports it in
   * `Errors` (PreconditionFailed; NoSuchKey when it does not exist).
   */
  async deleteMany(keys: ReadonlyArray<string | DeleteTarget>, signal?: AbortSignal): Promise<DeleteFailure[]> {
    const failures: DeleteFailure[] = [];
    for (let i = 0; i < keys.length; i += DELETE_BATCH) {
      const batch = keys.slice(i, i + DELETE_BATCH).map((k) => (typeof k === 'string' ? { key: k, etag: undefined } : k));
      try {
        const out = await this.send<DeleteObjectsCommandOutput>(
          new DeleteObjectsCommand({
            Bucket: this.bucket,
            Delete: { Objects: batch.map((t) => (t.etag === undefined ? { Key: t.key } : { Key: t.key, ETag: quoteEtag(t.etag) })), Quiet: true },
            ...this.owner,
          }),
          signal,
          batch[0]?.key ?? '',
        );
        for (const err of out.Errors ?? []) {
          failures.push({ key: err.Key ?? '?', error: `${err.Code ?? 'Error'}: ${err.Message ?? 'delete failed'}`, code: storageCodeOf(err.Code ?? '') });
        }
      } catch (error) {
        if (signal?.aborted) throw error; // stopped: not a per-key failure, and no further batch
        if (error instanceof StorageError && !error.retryable && error.code !== 'STORAGE') throw error;
        const code = error instanceof StorageError ? error.code : 'STORAGE';
        for (const t of batch) failures.push({ key: t.key, error: messageOf(error), code });
      }
    }
    return failures;
  }

  private async sdkList(prefix: string, token: string | undefined, signal: AbortSignal | undefined, first: FailedFastAttempt | undefined): Promise<ListPage> {
    const out = await this.send<ListObjectsV2CommandOutput>(
      new ListObjectsV2Command({ Bucket: this.bucket, Prefix: prefix, ContinuationToken: token, ...this.owner }),
      signal,
      prefix,
      true,
      first,
    );
    const objects: ListedObject[] = [];
    for (const item of out.Contents ?? []) {
      if (item.Key === undefined) continue;
      objects.push({ key: item.Key, size: item.Size ?? 0, etag: unquoteEtag(item.ETag), lastModifiedMs: item.LastModified?.getTime() });
    }
    return { objects, isTruncated: out.IsTruncated === true, nextContinuationToken: out.NextContinuationToken };
  }

  /**
   * One ListObjectsV2 page over the fast path, read by `parseListPage`: the
   * page, or `undefined` for the caller to send it through the SDK (fast
   * path unusable, any failure, an answer other than 200, a body the reader
   * is not sure of, a stall: the SDK's retries and stall handling then apply;
   * a {@link FailedFastAttempt} when the attempt counts as the first).
   */
  private async fastList(prefix: string, token: string | undefined, signal: AbortSignal | undefined): Promise<ListPage | FailedFastAttempt | undefined> {
    const userSignal = signal !== undefined && !isSoftSignal(signal) ? signal : undefined;
    const fast = await this.fastPath('get', userSignal);
    if (fast === undefined) return undefined;
    const query: Record<string, string> = { 'list-type': '2', prefix };
    if (token !== undefined) query['continuation-token'] = token;
    const headers: Record<string, string> = this.ownerHeader === undefined ? {} : { 'x-amz-expected-bucket-owner': this.ownerHeader };
    const where = `s3://${this.bucket}/${escapeForLog(prefix)}`;
    const watch = this.watchdog ? new StallWatch(userSignal, () => this.stallTimeoutMs, (stall) => this.stallError(where, stall, false), 'response') : undefined;
    try {
      const res = await fast.request({ method: 'GET', key: '', query, headers, signal: userSignal, watch, socketTimeoutMs: watch === undefined ? fast.socketTimeoutMs : 0 });
      if (res.statusCode !== 200) {
        res.resume(); // read the error body to its end: the socket goes back to the pool
        return undefined;
      }
      const body = await readSmallBody(res, MAX_FAST_LIST_BYTES, watch === undefined ? undefined : () => watch.touch());
      if (body === undefined) return undefined;
      const page = parseListPage(body);
      if (page !== undefined) this.onFastRequest?.('list');
      return page;
    } catch (error) {
      // the SDK sends it again (an abort: the SDK path rejects as it always did)
      return failedAttempt(error, watch);
    } finally {
      watch?.stop();
    }
  }

  /** The fast path, when the transport is `'auto'` and it is usable for this client and bucket. */
  private async fastPath(op: 'get' | 'put', signal: AbortSignal | undefined): Promise<FastPath | undefined> {
    if (this.transport !== 'auto' || signal?.aborted === true) return undefined;
    const fast = await (this.fast ??= FastPath.open(this.client, this.bucket, this.ownsClient));
    return fast?.usable(op) === true ? fast : undefined;
  }

  /**
   * GetObject over the fast path: the result, or `undefined` for the caller
   * to send it through the SDK (fast path unusable, a failure before the
   * response headers, an answer other than 200/206/304; a
   * {@link FailedFastAttempt} when the attempt counts as the first). A 304 is
   * answered here with the error the SDK makes of it. The body is watched as
   * the SDK path's is (the store's watchdog, else the client's socket timeout).
   */
  private async fastGet(
    key: string,
    range: string | undefined,
    signal: AbortSignal | undefined,
    condition: ReadCondition | undefined,
  ): Promise<GetResult | FailedFastAttempt | undefined> {
    const userSignal = signal !== undefined && !isSoftSignal(signal) ? signal : undefined;
    const fast = await this.fastPath('get', userSignal);
    if (fast === undefined) return undefined;
    const headers: Record<string, string> = Object.assign({}, this.fastHeaders);
    if (range !== undefined) headers.range = range;
    const c = readConditionFields(condition);
    if (c.IfMatch !== undefined) headers['if-match'] = c.IfMatch;
    if (c.IfNoneMatch !== undefined) headers['if-none-match'] = c.IfNoneMatch;
    const where = `s3://${this.bucket}/${escapeForLog(key)}`;
    const watch = this.watchdog ? new StallWatch(userSignal, () => this.stallTimeoutMs, (stall) => this.stallError(where, stall, false), 'response') : undefined;
    let res;
    try {
      res = await fast.request({ method: 'GET', key, headers, signal: userSignal, watch, socketTimeoutMs: watch === undefined ? fast.socketTimeoutMs : 0 });
    } catch (error) {
      watch?.stop();
      // the SDK sends it again (an abort: the SDK path rejects as it always did)
      return failedAttempt(error, watch);
    }
    const status = res.statusCode ?? 0;
    if (status === 200 || status === 206) {
      this.onFastRequest?.(range === undefined ? 'get' : 'getRange');
      const info = infoFromHeaders(res.headers);
      if (watch === undefined) return withBody(info, res);
      if (watch.active) return withBody(info, watchBody(res, watch));
      // aborted in the meantime: the body is destroyed already
      return withBody(info, res);
    }
    if (FINAL_ERROR_STATUSES.has(status)) {
      const error = await this.finalError(res, watch);
      if (error !== undefined) {
        this.onFastRequest?.(range === undefined ? 'get' : 'getRange');
        throw toStorageError(error, this.bucket, key);
      }
      return undefined;
    }
    watch?.stop();
    res.resume(); // read the error body to its end: the socket goes back to the pool
    if (status === 304) {
      this.onFastRequest?.(range === undefined ? 'get' : 'getRange');
      throw toStorageError(notModifiedError(res), this.bucket, key);
    }
    return undefined;
  }

  /**
   * The SDK's error for an answer it never retries (see
   * `FINAL_ERROR_STATUSES`), read from its body under the request's watch;
   * `undefined` when the body is not S3's (the SDK is then asked).
   */
  private async finalError(res: IncomingMessage, watch: StallWatch | undefined): Promise<S3ServiceException | undefined> {
    try {
      const body = await readErrorBody(res, watch === undefined ? undefined : () => watch.touch());
      return body === undefined ? undefined : errorAnswer(res, body);
    } finally {
      watch?.stop();
    }
  }

  /**
   * PutObject of a Buffer over the fast path: the result, or `undefined` for
   * the caller to send it through the SDK (fast path unusable, a body the SDK
   * would send with `Expect: 100-continue` (2 MiB and more by default), an
   * upload setting it does not know, a failure before the response headers, any
   * answer but 200; a {@link FailedFastAttempt} when the attempt counts as
   * the first). Sends what the SDK would: Content-MD5, the metadata, the
   * user's settings, conditions, SSE-C and the expected owner.
   */
  private async fastPut(input: PutInput, body: Buffer): Promise<PutResult | FailedFastAttempt | undefined> {
    const userSignal = input.signal !== undefined && !isSoftSignal(input.signal) ? input.signal : undefined;
    const fast = await this.fastPath('put', userSignal);
    if (fast === undefined || !fast.puts(body.length)) return undefined;
    const params = uploadHeaders(input.params);
    if (params === undefined) return undefined;
    const headers: Record<string, string> = Object.assign({}, params, this.fastHeaders, { 'content-md5': md5HexToBase64(input.md5) });
    if (input.contentType !== '') headers['content-type'] = input.contentType;
    for (const [k, v] of Object.entries(Object.assign({}, input.params?.Metadata, metadataFor(input.md5, input.mtimeMs)))) headers[`x-amz-meta-${k}`] = v;
    const c = writeConditionFields(input);
    if (c.IfMatch !== undefined) headers['if-match'] = c.IfMatch;
    if (c.IfNoneMatch !== undefined) headers['if-none-match'] = c.IfNoneMatch;
    const where = `s3://${this.bucket}/${escapeForLog(input.key)}`;
    const unsent = body.length;
    const watch = this.watchdog
      ? new StallWatch(userSignal, () => this.stallTimeoutMs + (this.uploading / UPLOAD_FLOOR_BYTES_PER_S) * 1000, (stall) => this.stallError(where, stall, true), 'upload')
      : undefined;
    this.uploading += unsent;
    let res;
    try {
      res = await fast.request({ method: 'PUT', key: input.key, headers, body, signal: userSignal, watch, socketTimeoutMs: watch === undefined ? fast.socketTimeoutMs : 0 });
    } catch (error) {
      watch?.stop();
      return failedAttempt(error, watch); // the SDK sends it again
    } finally {
      this.uploading -= unsent;
    }
    const status = res.statusCode ?? 0;
    if (FINAL_ERROR_STATUSES.has(status)) {
      // a conditional write that lost (412, 409) or a missing bucket: final, as through the SDK
      const error = await this.finalError(res, watch);
      if (error === undefined) return undefined;
      this.onFastRequest?.('put');
      throw toStorageError(error, this.bucket, input.key);
    }
    watch?.stop();
    res.resume();
    if (status !== 200) return undefined;
    this.onFastRequest?.('put');
    return {
      etag: unquoteEtag(header(res.headers.etag)),
      serverSideEncryption: encryptionOf({
        ServerSideEncryption: header(res.headers['x-amz-server-side-encryption']),
        SSECustomerAlgorithm: header(res.headers['x-amz-server-side-encryption-customer-algorithm']),
      }),
    };
  }

  /**
   * Send a command; SDK errors become StorageErrors. `replayable`: the SDK can
   * resend this request (no stream body), so its retry strategy has already
   * retried a transient failure.
   *
   * Unless the client detects stalls itself (`clientDetectsStalls`, or a
   * `stallTimeoutMs` of 0), each attempt runs under a {@link StallWatch}: an
   * AbortController following `signal`, aborted when no response comes
   * within the allowed silence, and, for GetObject, kept on the response body
   * (see `watchBody`). A replayable request that stalled before its response
   * is sent again here (up to `maxAttempts`), since the SDK does not retry an
   * aborted request; a stalled body or stream upload is left to the caller's
   * retry of the whole transfer. A stream body is always watched for its own
   * failure (see `watchUpload`), even without a watchdog.
   *
   * `first`: the request's first attempt went over the fast path and failed
   * on its way (see {@link FailedFastAttempt}); the attempts here are the
   * second and later, so a dead or silent endpoint costs as many attempts
   * with `transport: 'auto'` as with `'sdk'`.
   */
  private async send<T>(
    // eslint-disable-next-line @typescript-eslint/no-explicit-any
    command: any,
    signal: AbortSignal | undefined,
    subject: string,
    replayable = true,
    first?: FailedFastAttempt,
  ): Promise<T> {
    const input = command.input as { Body?: unknown; ContentLength?: number };
    const original = input.Body;
    const stream = original instanceof Readable ? original : undefined;
    // A failure in transit is handed to the SDK's retry as its first attempt (a stall is counted below).
    const replaying = first !== undefined && first.stall === undefined && this.replayFirstAttempt(command, first.error);
    if (!this.watchdog && stream === undefined) {
      try {
        // No options object without a signal: a client built with `cacheMiddleware: true`
        // then reuses its resolved middleware stack instead of rebuilding it per request.
        // (With a replayed attempt it must not: that stack would keep the replay for every later request.)
        const options = signal !== undefined && !isSoftSignal(signal) ? { abortSignal: signal } : replaying ? {} : undefined;
        return (await (options !== undefined ? this.client.send(command, options) : this.client.send(command))) as T;
      } catch (error) {
        throw toStorageError(error, this.bucket, subject, replayable);
      }
    }
    const where = `s3://${this.bucket}/${escapeForLog(subject)}`;
    const streamsBody = this.watchdog && command instanceof GetObjectCommand;
    const floor = command instanceof CompleteMultipartUploadCommand ? Math.max(this.stallTimeoutMs, COMPLETE_MULTIPART_MIN_MS) : this.stallTimeoutMs;
    // Bytes this request may still have to send: its progress is not visible above the SDK.
    const unsent =
      original instanceof Uint8Array ? original.byteLength
      : typeof original === 'string' ? Buffer.byteLength(original)
      : stream !== undefined ? Math.min(input.ContentLength ?? UPLOAD_STREAM_SLACK, UPLOAD_STREAM_SLACK)
      : 0;
    const allowance =
      !this.watchdog ? (): number => Infinity // a stream body without a watchdog: watched for its failure only
      : unsent > 0 ? (): number => floor + (this.uploading / UPLOAD_FLOOR_BYTES_PER_S) * 1000
      : (): number => floor;
    let attempt = 1;
    if (first?.stall !== undefined) {
      // the fast attempt stalled: that was attempt 1
      if (!replayable || this.attempts <= 1 || signal?.aborted) throw this.stallError(where, first.stall, unsent > 0, 1);
      try {
        await sleep(backoffMs(1), undefined, signal ? { signal } : {});
      } catch (error) {
        throw toStorageError(error, this.bucket, subject, replayable);
      }
      attempt = 2;
    }
    for (; ; attempt++) {
      const watch = new StallWatch(signal, allowance, (stall) => this.stallError(where, stall, unsent > 0), unsent > 0 ? 'upload' : 'response');
      if (stream !== undefined) input.Body = watchUpload(stream, watch);
      this.uploading += unsent;
      let keep = false;
      try {
        const out = (await this.client.send(command, { abortSignal: watch.signal })) as unknown as T & { Body?: unknown };
        if (streamsBody && out.Body instanceof Readable && watch.active) {
          out.Body = watchBody(out.Body, watch); // the watch now follows the body and stops when it closes
          keep = true;
        }
        return out;
      } catch (error) {
        if (watch.failure !== undefined) throw watch.failure; // the request body failed (e.g. a file that got shorter)
        if (watch.stall === undefined) throw toStorageError(error, this.bucket, subject, replayable);
        if (!replayable || attempt >= this.attempts || signal?.aborted) {
          // A stream body was consumed: the caller retries the whole transfer.
          throw this.stallError(where, watch.stall, unsent > 0, replayable ? attempt : undefined);
        }
      } finally {
        this.uploading -= unsent;
        if (!keep) watch.stop();
      }
      try {
        await sleep(backoffMs(attempt), undefined, signal ? { signal } : {});
      } catch (error) {
        throw toStorageError(error, this.bucket, subject, replayable);
      }
    }
  }

  /**
   * Make the SDK's retry take `error` (a fast attempt's failure in transit) as
   * the outcome of its first attempt: a one-shot middleware right after the
   * retry middleware throws it instead of sending. The SDK then classifies it,
   * spends its retry tokens and backs off as if its own handler had failed,
   * and its next attempt is a real one. `false` (nothing added) when the
   * client has no retry middleware to count it.
   */
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  private replayFirstAttempt(command: any, error: unknown): boolean {
    this.retries ??= this.client.middlewareStack.identify().some((name) => name.startsWith('retryMiddleware '));
    if (!this.retries) return false;
    let pending = true;
    const stack = (command as { middlewareStack: { addRelativeTo(mw: unknown, options: Record<string, unknown>): void } }).middlewareStack;
    stack.addRelativeTo(
      (next: (args: unknown) => Promise<unknown>) => async (args: unknown) => {
        if (!pending) return next(args);
        pending = false;
        throw error;
      },
      { relation: 'after', toMiddleware: 'retryMiddleware', name: 'fastPathFirstAttempt', override: true },
    );
    return true;
  }

  /**
   * A stalled request as a retryable NETWORK error. `attempts`: the request was
   * sent that many times already (the caller must not multiply them).
   */
  private stallError(where: string, stall: Stall, upload: boolean, attempts?: number): StorageError {
    const what =
      stall.phase === 'body' ? 'while reading the response body'
      : upload ? 'while sending the request body or waiting for the response'
      : 'waiting for the response';
    const tries = attempts !== undefined && attempts > 1 ? `; ${attempts} attempts` : '';
    return new StorageError('NETWORK', `${where}: no data for ${seconds(stall.allowedMs)} ${what} (stallTimeoutMs ${this.stallTimeoutMs})${tries}`, {
      retryable: true,
      retriedBySdk: attempts !== undefined,
      details: { stalled: stall.phase, idleMs: stall.idleMs, allowedMs: stall.allowedMs, stallTimeoutMs: this.stallTimeoutMs, ...(attempts !== undefined ? { attempts } : {}) },
    });
  }
}

/**
 * An ETag as an HTTP entity-tag (`If-Match`, `If-None-Match`, a DeleteObjects
 * `<ETag>`): quoted, as S3 sends them; `*` as is.
 */
function quoteEtag(etag: string): string {
  const bare = unquoteEtag(etag);
  return bare === '*' ? '*' : `"${bare}"`;
}

/** `x-amz-copy-source`: `bucket/key`, each segment of the key URL-encoded (as AWS asks; `/` kept). */
function copySource(bucket: string, key: string): string {
  return `${bucket}/${key.split('/').map(encodeURIComponent).join('/')}`;
}

/** The request fields of a write's precondition (PutObject, CompleteMultipartUpload). */
function writeConditionFields(c: WriteCondition | undefined): { IfMatch?: string; IfNoneMatch?: string } {
  if (c === undefined) return {};
  return {
    ...(c.ifMatch !== undefined ? { IfMatch: quoteEtag(c.ifMatch) } : {}),
    ...(c.ifNoneMatch === true ? { IfNoneMatch: '*' } : {}),
  };
}

/** The request fields of a read's precondition (GetObject, HeadObject). */
function readConditionFields(c: ReadCondition | undefined): { IfMatch?: string; IfNoneMatch?: string } {
  if (c === undefined) return {};
  return {
    ...(c.ifMatch !== undefined ? { IfMatch: quoteEtag(c.ifMatch) } : {}),
    ...(c.ifNoneMatch !== undefined ? { IfNoneMatch: quoteEtag(c.ifNoneMatch) } : {}),
  };
}


/** The request fields of the user's upload settings (Metadata is merged by the caller, after them). */
function uploadFields(params: CheckedUploadParams | undefined): Pick<PutObjectCommandInput, UploadField> {
  if (params === undefined) return {};
  const { Metadata: _metadata, ...fields } = params;
  // checked in upload-params.ts; the SDK's enums (StorageClass, ACL) are open strings on other servers
  return fields as Pick<PutObjectCommandInput, UploadField>;
}

type UploadField = Exclude<keyof CheckedUploadParams, 'Metadata'>;

/** How an object is encrypted, as far as its ETag is concerned: SSE-C objects answer with `SSECustomerAlgorithm`. */
function encryptionOf(out: { ServerSideEncryption?: string | undefined; SSECustomerAlgorithm?: string | undefined }): string | undefined {
  return out.SSECustomerAlgorithm !== undefined ? SSE_C : out.ServerSideEncryption;
}

/**
 * A GET's result: `info` with the body added in place. Not `{ ...info, body }`:
 * on Node 20 that gives every response object a hidden class of its own,
 * allocated in old space (one per GET).
 */
function withBody(info: ObjectInfo, body: Readable): GetResult {
  return Object.assign(info, { body });
}

function infoFrom(out: {
  ContentLength?: number | undefined;
  ETag?: string | undefined;
  Metadata?: Record<string, string> | undefined;
  LastModified?: Date | undefined;
  ServerSideEncryption?: string | undefined;
  SSECustomerAlgorithm?: string | undefined;
}): ObjectInfo {
  return {
    size: out.ContentLength ?? 0,
    etag: unquoteEtag(out.ETag),
    md5: undefined,
    mtimeMs: undefined,
    ...readMetadata(lowerKeys(out.Metadata)),
    lastModifiedMs: out.LastModified?.getTime(),
    serverSideEncryption: encryptionOf(out),
  };
}

/** A GetObject answer's headers as {@link infoFrom} reads the SDK's output (`x-amz-meta-*` as Metadata). */
function infoFromHeaders(h: IncomingHttpHeaders): ObjectInfo {
  const meta: Record<string, string> = {};
  for (const name of Object.keys(h)) {
    if (name.startsWith('x-amz-meta-')) {
      const v = header(h[name]);
      if (v !== undefined) meta[name.slice(11)] = v;
    }
  }
  const length = header(h['content-length']);
  const modified = header(h['last-modified']);
  return infoFrom({
    ContentLength: length === undefined ? undefined : Number(length),
    ETag: header(h.etag),
    Metadata: meta,
    LastModified: modified === undefined ? undefined : new Date(modified),
    ServerSideEncryption: header(h['x-amz-server-side-encryption']),
    SSECustomerAlgorithm: header(h['x-amz-server-side-encryption-customer-algorithm']),
  });
}

/** The headers of the user's upload settings, as the SDK sends them; `undefined` for a setting the fast path does not know. */
function uploadHeaders(params: CheckedUploadParams | undefined): Record<string, string> | undefined {
  const out: Record<string, string> = {};
  if (params === undefined) return out;
  for (const [field, v] of Object.entries(params)) {
    if (v === undefined || field === 'Metadata') continue;
    const name = UPLOAD_HEADERS[field];
    if (name === undefined) return undefined;
    const text = v instanceof Date ? v.toUTCString() : typeof v === 'boolean' ? String(v) : typeof v === 'string' ? v : undefined;
    if (text === undefined) return undefined;
    if (text !== '') out[name] = text;
  }
  return out;
}

const UPLOAD_HEADERS: Record<string, string | undefined> = {
  ServerSideEncryption: 'x-amz-server-side-encryption',
  SSEKMSKeyId: 'x-amz-server-side-encryption-aws-kms-key-id',
  SSEKMSEncryptionContext: 'x-amz-server-side-encryption-context',
  BucketKeyEnabled: 'x-amz-server-side-encryption-bucket-key-enabled',
  StorageClass: 'x-amz-storage-class',
  CacheControl: 'cache-control',
  ContentDisposition: 'content-disposition',
  ContentEncoding: 'content-encoding',
  ContentLanguage: 'content-language',
  Expires: 'expires',
  ACL: 'x-amz-acl',
  Tagging: 'x-amz-tagging',
};
