// A strict, in-memory S3 test double that the real AWS SDK v3 client talks to
// over HTTP (node:http on 127.0.0.1, path-style requests `/bucket/key`).
//
// Why: s3rver (the run's shared local server, see test/helpers/s3.ts and
// /work/shared/NOTES.md) does not enforce S3's multipart rules (plain-MD5
// ETags for multipart objects, undersized parts and bogus part ETags accepted,
// AbortMultipartUpload/ListParts 405, ListMultipartUploads 501) and ignores
// conditional writes. This double refuses what S3 refuses and computes ETags
// as S3 does, so multipart and conditional-write code can be tested against
// real S3 semantics. Its own contract tests: test/contract/strict-s3.test.ts.
//
//   const s3 = await startStrictS3({ minPartSize: 1024, buckets: ['b'] });
//   const client = new S3Client({ endpoint: s3.endpoint, forcePathStyle: true, region: 'us-east-1',
//     credentials: { accessKeyId: 'x', secretAccessKey: 'y' },
//     requestChecksumCalculation: 'WHEN_REQUIRED', responseChecksumValidation: 'WHEN_REQUIRED' });
//   s3.state.failNext({ op: 'UploadPart', nth: 3 });          // the 3rd UploadPart from now answers 500 InternalError
//   s3.state.failNext('AbortMultipartUpload', { status: 403, code: 'AccessDenied' });
//   s3.state.failAlways({ op: 'UploadPart', key: /big/ }, { reset: true });  // every one: socket destroyed
//   s3.state.failNext({ op: 'CompleteMultipartUpload' }, { after: true, reset: true }); // applied, answer lost
//   s3.state.conflictNext({ key: 'k' });                       // the next conditional write of k: 409 ConditionalRequestConflict
//   s3.state.count('UploadPart');                              // requests seen (retries included)
//   s3.state.getObject('b', 'k')?.body;                        // inspect / plant with state.putObject()
//   await s3.close();
//
// Implemented (each with S3's XML formats, status codes and error codes, so the
// SDK maps errors to the right exception names): ListBuckets, CreateBucket,
// HeadBucket, DeleteBucket, PutObject, CopyObject (within the double, no
// versionId, metadata directive COPY or REPLACE), GetObject, HeadObject, DeleteObject,
// DeleteObjects, ListObjectsV2, CreateMultipartUpload, UploadPart,
// CompleteMultipartUpload, AbortMultipartUpload, ListMultipartUploads, ListParts.
// Conditional requests, as AWS documents them (user guide "conditional-writes",
// "conditional-deletes", "conditional-requests"; the API reference):
//  - PutObject / CompleteMultipartUpload: `If-None-Match: *` → 412 when the key
//    exists; `If-Match: <etag>` → 412 when the ETag differs, 404 NoSuchKey when
//    the key does not exist. Evaluated at commit (a Complete that fails them
//    leaves the upload in place: the client aborts it). `If-None-Match` with an
//    entity tag on a write is 501 (S3 accepts only `*` there).
//  - DeleteObject `If-Match: <etag>|*` → 412 when the ETag differs, 404
//    NoSuchKey when the key does not exist; without If-Match a missing key is 204.
//  - CopyObject source conditions (x-amz-copy-source-if-match,
//    -if-none-match, -if-modified-since, -if-unmodified-since) → 412
//    PreconditionFailed, combined as AWS documents them (if-match true wins
//    over unmodified-since false; if-none-match false with modified-since true
//    fails); a missing source is 404 NoSuchKey; a source over 5 GiB is 400
//    InvalidRequest; the copy's ETag is the MD5 of the content (a multipart
//    source becomes a single-part object) unless SSE-KMS. Destination
//    conditions (If-Match / If-None-Match on a copy) are 501.
//  - DeleteObjects `<Object><ETag>` (or `*`): per key, an <Error> with
//    PreconditionFailed when it differs, NoSuchKey when the key does not exist;
//    keys without an ETag are deleted (or "deleted") as before.
//  - GetObject / HeadObject: If-Match → 412, If-None-Match → 304 (RFC 7232
//    order, with If-(Un)Modified-Since); a HEAD's 412 has no body.
//  - state.conflictNext(): the next conditional write (a request with
//    If-Match / If-None-Match, or a DeleteObjects object with an ETag) answers
//    409 ConditionalRequestConflict, as S3 does when another write of the key
//    is in progress (per key, in DeleteObjects: an assumption, AWS documents
//    the 409 for DeleteObject only). Nothing is written.
//  - The directory-bucket-only conditions (x-amz-if-match-last-modified-time,
//    x-amz-if-match-size, <LastModifiedTime>, <Size>) are 501.
//
// Any other operation, sub-resource (?acl, ?tagging, ?versionId=...) or
// unsupported feature header (x-amz-copy-source on UploadPartCopy, SSE-C) answers 501
// NotImplemented naming what is missing: a test never silently gets a
// behaviour the double does not have.
//
// Request bodies: plain bodies (signed payload hash -- verified --, or
// UNSIGNED-PAYLOAD), and `aws-chunked` streaming bodies (what the SDK sends for
// stream bodies unless requestChecksumCalculation is 'WHEN_REQUIRED'): the
// framing is decoded, chunk signatures are ignored, the decoded length must
// equal x-amz-decoded-content-length, and a trailing x-amz-checksum-* is
// verified. Content-MD5 and x-amz-checksum-{crc32,crc32c,crc64nvme,sha1,sha256}
// headers are verified (400 BadDigest). SigV4 signatures are NOT verified.
//
// Server-side encryption: SSE-S3 (AES256, the default, reported on every
// object as S3 does since 2023) and SSE-KMS / DSSE-KMS (the
// x-amz-server-side-encryption header of PutObject / CreateMultipartUpload, or
// a bucket default set with state.setBucketEncryption()): as on AWS, a KMS
// object's ETag is NOT the MD5 of its content (an opaque 32-hex string, or
// `<hex>-N` for a multipart object), its parts' ETags are not their MD5s
// either, and every answer about it carries x-amz-server-side-encryption and
// x-amz-server-side-encryption-aws-kms-key-id. No real KMS: keys are not
// checked, nothing is encrypted.
//
// Deliberate simplifications (not S3 behaviour a test should rely on):
//  - no versioning, ACLs, tagging, object lock, SSE-C, copies between
//    buckets of another owner, UploadPartCopy, ListObjects (v1), GetObjectAttributes, presigned POST;
//  - checksums are verified on upload but never returned by GetObject
//    (x-amz-checksum-mode is ignored), and multipart checksum composition
//    (x-amz-checksum-algorithm on CreateMultipartUpload, Checksum* in the
//    Complete body) is not checked;
//  - LastModified has 1-second resolution (like S3's headers and listings);
//  - everything lives in memory: keep objects small.
import { createHash, randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { crc32 as zlibCrc32 } from 'node:zlib';

// ---------------------------------------------------------------------------
// Public types

export type S3Operation =
  | 'ListBuckets'
  | 'CreateBucket'
  | 'HeadBucket'
  | 'DeleteBucket'
  | 'ListObjectsV2'
  | 'PutObject'
  | 'CopyObject'
  | 'GetObject'
  | 'HeadObject'
  | 'DeleteObject'
  | 'DeleteObjects'
  | 'CreateMultipartUpload'
  | 'UploadPart'
  | 'CompleteMultipartUpload'
  | 'AbortMultipartUpload'
  | 'ListMultipartUploads'
  | 'ListParts'
  /** Anything the double does not implement (answered 501 NotImplemented). */
  | 'Unsupported';

export interface StrictS3Options {
  /** Minimum size of every part but the last at CompleteMultipartUpload (EntityTooSmall). Default 5 MiB. */
  minPartSize?: number;
  /** Maximum size of one UploadPart body (EntityTooLarge). Default 5 GiB. */
  maxPartSize?: number;
  /** Maximum size of one PutObject body (EntityTooLarge). Default 5 GiB. */
  maxObjectSize?: number;
  /** Buckets that exist from the start. */
  buckets?: readonly string[];
  /** Canonical owner / account id; a request whose x-amz-expected-bucket-owner differs gets 403 AccessDenied. */
  ownerId?: string;
  /** Clock for LastModified / Initiated (default: real time). */
  now?: () => Date;
  /**
   * A CompleteMultipartUpload retried after it succeeded, with the same part
   * list, answers the same 200 result (as S3 does for a while); other requests
   * naming a completed upload get NoSuchUpload. Default true. With false, a
   * retried Complete gets 404 NoSuchUpload.
   */
  replayCompletedUploads?: boolean;
}

export interface StoredObject {
  readonly key: string;
  readonly body: Buffer;
  /** Unquoted: 32 hex digits, or `<hex>-<N>` for a multipart object. */
  readonly etag: string;
  readonly size: number;
  readonly lastModified: Date;
  readonly contentType: string;
  /** x-amz-meta-* without the prefix, names lower-cased. */
  readonly metadata: Readonly<Record<string, string>>;
  /** Other stored representation headers (cache-control, content-disposition, ...). */
  readonly headers: Readonly<Record<string, string>>;
  readonly storageClass: string;
  /** Part sizes, for an object created by CompleteMultipartUpload. */
  readonly partSizes?: readonly number[];
  /** `aws:kms` / `aws:kms:dsse` for a KMS-encrypted object; absent (or `AES256`): SSE-S3. */
  readonly serverSideEncryption?: string;
  /** KMS key of a KMS-encrypted object (an ARN). */
  readonly kmsKeyId?: string;
  /** x-amz-server-side-encryption-bucket-key-enabled of a KMS-encrypted object. */
  readonly bucketKeyEnabled?: boolean;
}

/** Server-side encryption of an object or a bucket default (what `setBucketEncryption` takes). */
export interface StrictS3Encryption {
  algorithm: 'AES256' | 'aws:kms' | 'aws:kms:dsse';
  /** KMS key id or ARN (KMS only). Default: the account's `aws/s3` key. */
  kmsKeyId?: string;
  bucketKeyEnabled?: boolean;
}

export interface UploadInfo {
  readonly bucket: string;
  readonly key: string;
  readonly uploadId: string;
  readonly initiated: Date;
  readonly parts: readonly { partNumber: number; etag: string; size: number }[];
}

/** One request as the double saw it (after the body was read). */
export interface RequestRecord {
  readonly seq: number;
  readonly op: S3Operation;
  readonly method: string;
  readonly url: string;
  readonly bucket: string | undefined;
  readonly key: string | undefined;
  readonly query: Readonly<Record<string, string>>;
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
  readonly partNumber: number | undefined;
  readonly uploadId: string | undefined;
  /** Decoded body length. */
  bodyLength: number;
  /** Status answered (undefined until answered; 0 for a reset connection). */
  status: number | undefined;
  /** S3 error code answered, if any. */
  errorCode: string | undefined;
  /** True when a fault rule decided the answer. */
  faulted: boolean;
}

/** Which requests a fault rule applies to. Every given field must match. */
export interface FaultMatch {
  op?: S3Operation | readonly S3Operation[];
  method?: string;
  bucket?: string;
  key?: string | RegExp;
  partNumber?: number;
  uploadId?: string;
  where?: (request: RequestRecord) => boolean;
  /** Fire on the nth matching request counted from when the rule was added (1-based). Default 1. */
  nth?: number;
  /** How many times the rule fires (from the nth match on). failNext: default 1; failAlways: Infinity. */
  times?: number;
}

/**
 * What a firing rule does. Default: 500 InternalError, before the operation is applied.
 * - `status`/`code`/`message`: an S3 XML error (status 200 + code gives S3's
 *   "200 with an error body", as CompleteMultipartUpload can answer);
 * - `reset`: destroy the socket instead of answering;
 * - `after`: apply the operation first (the object is stored, the upload is
 *   completed...), then answer with the error / reset: a lost answer;
 * - `delayMs`: wait before answering (alone: delay, then answer normally);
 * - `truncateBodyAt` (GetObject): send the headers and this many body bytes, then destroy the socket;
 * - `corruptBody` (GetObject): send the whole body with one byte flipped.
 */
export interface FaultSpec {
  status?: number;
  code?: string;
  message?: string;
  headers?: Record<string, string>;
  reset?: boolean;
  after?: boolean;
  delayMs?: number;
  truncateBodyAt?: number;
  corruptBody?: boolean;
}

export interface FaultHandle {
  /** How many requests this rule decided. */
  readonly fired: number;
  /** Whether it can still fire. */
  readonly pending: boolean;
  remove(): void;
}

export interface StrictS3State {
  /** Every request seen, in arrival order. */
  readonly requests: readonly RequestRecord[];
  /** Requests seen for one operation (or matching a predicate; all when omitted), retries included. */
  count(op?: S3Operation | ((r: RequestRecord) => boolean)): number;
  /** Forget the request log (counters restart at 0). */
  resetRequests(): void;
  /** Add a fault rule that fires once (or `match.times` times). */
  failNext(match: S3Operation | FaultMatch, fault?: FaultSpec): FaultHandle;
  /** Add a fault rule that fires on every match (or `match.times` times). */
  failAlways(match: S3Operation | FaultMatch, fault?: FaultSpec): FaultHandle;
  /** In DeleteObjects, report an <Error> (default AccessDenied) for matching keys instead of deleting them. */
  failDeleteOfKey(
    key: string | RegExp,
    error?: { code?: string; message?: string },
    times?: number,
  ): FaultHandle;
  /**
   * The next conditional write (`match.times` of them, default 1) answers 409
   * ConditionalRequestConflict instead of being evaluated: a PutObject or
   * CompleteMultipartUpload with If-Match / If-None-Match, a DeleteObject with
   * If-Match, or a DeleteObjects object with an <ETag> (an <Error> for that
   * key). Unconditional requests are not affected; nothing is written.
   */
  conflictNext(match?: { key?: string | RegExp; bucket?: string; times?: number }): FaultHandle;
  /** Remove every fault rule. */
  clearFaults(): void;
  /** Rules that can still fire. */
  pendingFaults(): number;
  /** Handler crashes (bugs in the double); answered 500 StrictS3InternalError. Tests can assert it stays empty. */
  readonly internalErrors: readonly Error[];

  createBucket(name: string): void;
  /**
   * A bucket's default encryption (PutBucketEncryption), applied to writes
   * without an x-amz-server-side-encryption header; `undefined`: SSE-S3.
   */
  setBucketEncryption(bucket: string, encryption: StrictS3Encryption | undefined): void;
  bucketNames(): string[];
  /** Plant an object directly (no request, no validation of the key): e.g. hostile keys. */
  putObject(
    bucket: string,
    key: string,
    body: Buffer | string,
    options?: { contentType?: string; metadata?: Record<string, string>; lastModified?: Date; encryption?: StrictS3Encryption },
  ): StoredObject;
  getObject(bucket: string, key: string): StoredObject | undefined;
  deleteObject(bucket: string, key: string): boolean;
  /** Keys of a bucket in S3 (UTF-8 byte) order. */
  keys(bucket: string, prefix?: string): string[];
  /** In-progress multipart uploads (of one bucket, or all). */
  uploads(bucket?: string): UploadInfo[];
}

export interface StrictS3 {
  /** e.g. http://127.0.0.1:41577 */
  readonly endpoint: string;
  readonly port: number;
  readonly state: StrictS3State;
  close(): Promise<void>;
}

// ---------------------------------------------------------------------------
// Constants and small helpers

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;
const XMLNS = 'http://s3.amazonaws.com/doc/2006-03-01/';
const MAX_KEY_BYTES = 1024;
const MAX_METADATA_BYTES = 2048;

const DEFAULT_STATUS: Record<string, number> = {
  InternalError: 500,
  ServiceUnavailable: 503,
  SlowDown: 503,
  RequestTimeout: 400,
  AccessDenied: 403,
  NoSuchKey: 404,
  NoSuchBucket: 404,
  NoSuchUpload: 404,
  PreconditionFailed: 412,
  ConditionalRequestConflict: 409,
  InvalidPart: 400,
  InvalidPartOrder: 400,
  EntityTooSmall: 400,
  EntityTooLarge: 400,
  BadDigest: 400,
  InvalidRange: 416,
  ExpiredToken: 400,
  RequestTimeTooSkewed: 403,
};

const DEFAULT_MESSAGE: Record<string, string> = {
  InternalError: 'We encountered an internal error. Please try again.',
  ServiceUnavailable: 'Please reduce your request rate.',
  SlowDown: 'Please reduce your request rate.',
  AccessDenied: 'Access Denied',
  NoSuchKey: 'The specified key does not exist.',
  NoSuchBucket: 'The specified bucket does not exist',
  NoSuchUpload:
    'The specified upload does not exist. The upload ID may be invalid, or the upload may have been aborted or completed.',
  PreconditionFailed: 'At least one of the pre-conditions you specified did not hold',
  ConditionalRequestConflict: 'A conflicting conditional operation is currently in progress against this resource. Please try again.',
  InvalidRange: 'The requested range is not satisfiable',
};

/** Stored representation headers (besides Content-Type and x-amz-meta-*). */
const REPRESENTATION_HEADERS = ['cache-control', 'content-disposition', 'content-encoding', 'content-language', 'expires'];

/** Query parameters any request may carry (SDK operation hint, presigned-URL auth). */
const NEUTRAL_PARAMS = new Set([
  'x-id',
  'X-Amz-Algorithm',
  'X-Amz-Credential',
  'X-Amz-Date',
  'X-Amz-Expires',
  'X-Amz-SignedHeaders',
  'X-Amz-Signature',
  'X-Amz-Security-Token',
  'X-Amz-Content-Sha256',
  'x-amz-checksum-crc32',
  'x-amz-sdk-checksum-algorithm',
]);

const RESPONSE_OVERRIDES: Record<string, string> = {
  'response-content-type': 'content-type',
  'response-content-disposition': 'content-disposition',
  'response-cache-control': 'cache-control',
  'response-content-encoding': 'content-encoding',
  'response-content-language': 'content-language',
  'response-expires': 'expires',
};

const ALLOWED_PARAMS: Record<Exclude<S3Operation, 'Unsupported'>, readonly string[]> = {
  ListBuckets: ['max-buckets', 'continuation-token', 'prefix', 'bucket-region'],
  CreateBucket: [],
  HeadBucket: [],
  DeleteBucket: [],
  ListObjectsV2: ['list-type', 'prefix', 'delimiter', 'max-keys', 'continuation-token', 'start-after', 'encoding-type', 'fetch-owner'],
  PutObject: [],
  CopyObject: [],
  GetObject: ['partNumber', ...Object.keys(RESPONSE_OVERRIDES)],
  HeadObject: ['partNumber', ...Object.keys(RESPONSE_OVERRIDES)],
  DeleteObject: [],
  DeleteObjects: ['delete'],
  CreateMultipartUpload: ['uploads'],
  UploadPart: ['partNumber', 'uploadId'],
  CompleteMultipartUpload: ['uploadId'],
  AbortMultipartUpload: ['uploadId'],
  ListMultipartUploads: ['uploads', 'prefix', 'delimiter', 'key-marker', 'upload-id-marker', 'max-uploads', 'encoding-type'],
  ListParts: ['uploadId', 'max-parts', 'part-number-marker'],
};

class S3Error extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message?: string,
    readonly extra: Record<string, string | number> = {},
    readonly headers: Record<string, string> = {},
  ) {
    super(message ?? DEFAULT_MESSAGE[code] ?? code);
  }
}

const err = {
  noSuchBucket: (bucket: string) => new S3Error(404, 'NoSuchBucket', undefined, { BucketName: bucket }),
  noSuchKey: (key: string) => new S3Error(404, 'NoSuchKey', undefined, { Key: key }),
  noSuchUpload: (uploadId: string) => new S3Error(404, 'NoSuchUpload', undefined, { UploadId: uploadId }),
  precondition: (condition: string) => new S3Error(412, 'PreconditionFailed', undefined, { Condition: condition }),
  conflict: (key: string) => new S3Error(409, 'ConditionalRequestConflict', undefined, { Key: key }),
  invalidArgument: (message: string, name?: string, value?: string) =>
    new S3Error(
      400,
      'InvalidArgument',
      message,
      name === undefined ? {} : { ArgumentName: name, ArgumentValue: value ?? '' },
    ),
  invalidRequest: (message: string) => new S3Error(400, 'InvalidRequest', message),
  malformedXml: () =>
    new S3Error(400, 'MalformedXML', 'The XML you provided was not well-formed or did not validate against our published schema'),
  notImplemented: (what: string) =>
    new S3Error(501, 'NotImplemented', `A header or query you provided implies functionality that is not implemented (strict-s3: ${what})`),
};

function xmlEscape(value: string): string {
  return value.replace(/[&<>"'\u0000-\u0008\u000b\u000c\u000e-\u001f\r]/g, (ch) => {
    switch (ch) {
      case '&':
        return '&amp;';
      case '<':
        return '&lt;';
      case '>':
        return '&gt;';
      case '"':
        return '&quot;';
      case "'":
        return '&apos;';
      default:
        return `&#x${ch.charCodeAt(0).toString(16).toUpperCase()};`;
    }
  });
}

function xmlUnescape(value: string): string {
  return value.replace(/&(#x[0-9a-fA-F]+|#[0-9]+|amp|lt|gt|quot|apos);/g, (_m, ent: string) => {
    if (ent.startsWith('#x')) return String.fromCodePoint(parseInt(ent.slice(2), 16));
    if (ent.startsWith('#')) return String.fromCodePoint(parseInt(ent.slice(1), 10));
    return ({ amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" } as Record<string, string>)[ent] ?? '';
  });
}

/** `<Tag>value</Tag>` with the value escaped; omitted when undefined. */
function el(tag: string, value: string | number | boolean | undefined): string {
  if (value === undefined) return '';
  return `<${tag}>${xmlEscape(String(value))}</${tag}>`;
}

function xmlDoc(root: string, inner: string): string {
  return `<?xml version="1.0" encoding="UTF-8"?>\n<${root} xmlns="${XMLNS}">${inner}</${root}>`;
}

/** Direct children `<tag>...</tag>` of an XML fragment produced by a well-behaved client (no nesting of the same tag). */
function xmlChildren(xml: string, tag: string): string[] {
  const out: string[] = [];
  const re = new RegExp(`<${tag}(?:\\s[^>]*)?>([\\s\\S]*?)</${tag}>|<${tag}(?:\\s[^>]*)?/>`, 'g');
  for (const m of xml.matchAll(re)) out.push(m[1] ?? '');
  return out;
}

function xmlChild(xml: string, tag: string): string | undefined {
  const all = xmlChildren(xml, tag);
  return all.length === 0 ? undefined : xmlUnescape(all[0] ?? '');
}

function md5(buf: Buffer): Buffer {
  return createHash('md5').update(buf).digest();
}

/** Seconds resolution, like S3. */
function truncateToSecond(d: Date): Date {
  return new Date(Math.floor(d.getTime() / 1000) * 1000);
}

function isoTime(d: Date): string {
  return d.toISOString();
}

function utf8Compare(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

function stripQuotes(etag: string): string {
  let e = etag.trim();
  if (e.startsWith('W/')) e = e.slice(2);
  if (e.length >= 2 && e.startsWith('"') && e.endsWith('"')) e = e.slice(1, -1);
  return e;
}

/** Does an If-Match / If-None-Match header value match this (unquoted) ETag? `*` matches any existing object. */
function etagListMatches(header: string, etag: string | undefined): boolean {
  if (etag === undefined) return false;
  return header
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '')
    .some((candidate) => candidate === '*' || stripQuotes(candidate) === etag);
}

function headerString(req: IncomingMessage, name: string): string | undefined {
  const v = req.headers[name];
  if (Array.isArray(v)) return v.join(',');
  return v;
}

function isValidBucketName(name: string): boolean {
  return (
    /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(name) &&
    !name.includes('..') &&
    !/^\d+\.\d+\.\d+\.\d+$/.test(name)
  );
}

// --- checksums -------------------------------------------------------------

function makeCrc32Table(poly: number): Uint32Array {
  const table = new Uint32Array(256);
  for (let i = 0; i < 256; i++) {
    let c = i;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ poly : c >>> 1;
    table[i] = c >>> 0;
  }
  return table;
}
const CRC32C_TABLE = makeCrc32Table(0x82f63b78);

function crc32c(buf: Buffer): number {
  let c = 0xffffffff;
  for (let i = 0; i < buf.length; i++) c = (CRC32C_TABLE[(c ^ buf[i]!) & 0xff]! ^ (c >>> 8)) >>> 0;
  return (c ^ 0xffffffff) >>> 0;
}

let CRC64_TABLE: BigUint64Array | undefined;
function crc64nvme(buf: Buffer): Buffer {
  if (CRC64_TABLE === undefined) {
    CRC64_TABLE = new BigUint64Array(256);
    const poly = 0x9a6c9329ac4bc9b5n;
    for (let i = 0; i < 256; i++) {
      let c = BigInt(i);
      for (let k = 0; k < 8; k++) c = c & 1n ? (c >> 1n) ^ poly : c >> 1n;
      CRC64_TABLE[i] = c;
    }
  }
  const table = CRC64_TABLE;
  const mask = 0xffffffffffffffffn;
  let c = mask;
  for (let i = 0; i < buf.length; i++) c = table[Number((c ^ BigInt(buf[i]!)) & 0xffn)]! ^ (c >> 8n);
  c = (c ^ mask) & mask;
  const out = Buffer.alloc(8);
  out.writeBigUInt64BE(c);
  return out;
}

function uint32Buffer(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n >>> 0);
  return b;
}

const CHECKSUMS: Record<string, (body: Buffer) => Buffer> = {
  crc32: (b) => uint32Buffer(zlibCrc32(b)),
  crc32c: (b) => uint32Buffer(crc32c(b)),
  crc64nvme: crc64nvme,
  sha1: (b) => createHash('sha1').update(b).digest(),
  sha256: (b) => createHash('sha256').update(b).digest(),
};

/** Verify one x-amz-checksum-<alg> value against a body. */
function verifyChecksum(alg: string, expected: string, body: Buffer): void {
  const fn = CHECKSUMS[alg];
  if (fn === undefined) throw err.invalidRequest(`Unsupported checksum algorithm: ${alg}`);
  if (fn(body).toString('base64') !== expected.trim()) {
    throw new S3Error(400, 'BadDigest', `The ${alg.toUpperCase()} you specified did not match the calculated checksum.`);
  }
}

// ---------------------------------------------------------------------------
// Storage

type MutableObject = StoredObject;

interface Part {
  partNumber: number;
  body: Buffer;
  etag: string;
  lastModified: Date;
}

interface Upload {
  bucket: string;
  key: string;
  uploadId: string;
  initiated: Date;
  seq: number;
  contentType: string;
  metadata: Record<string, string>;
  headers: Record<string, string>;
  storageClass: string;
  sse: ObjectSse;
  parts: Map<number, Part>;
}

/** Encryption recorded on an object or upload: SSE-S3 is `{}`. */
interface ObjectSse {
  serverSideEncryption?: string;
  kmsKeyId?: string;
  bucketKeyEnabled?: boolean;
}

interface FinishedUpload {
  bucket: string;
  key: string;
  how: 'completed' | 'aborted';
  /** For completed: the part list it was completed with, and the answer. */
  signature?: string;
  etag?: string;
  sse?: ObjectSse;
}

interface Bucket {
  name: string;
  created: Date;
  /** Default encryption (PutBucketEncryption); undefined: SSE-S3. */
  encryption?: StrictS3Encryption;
  objects: Map<string, MutableObject>;
  sortedKeys: string[] | undefined;
}

interface FaultRule {
  match: FaultMatch;
  fault: FaultSpec;
  seen: number;
  fired: number;
  nth: number;
  times: number;
  removed: boolean;
}

interface DeleteKeyRule {
  key: string | RegExp;
  code: string;
  message: string;
  fired: number;
  times: number;
  removed: boolean;
}

interface ConflictRule {
  key: string | RegExp | undefined;
  bucket: string | undefined;
  fired: number;
  times: number;
  removed: boolean;
}

// ---------------------------------------------------------------------------
// The server

export async function startStrictS3(options: StrictS3Options = {}): Promise<StrictS3> {
  const minPartSize = options.minPartSize ?? 5 * MiB;
  const maxPartSize = options.maxPartSize ?? 5 * GiB;
  const maxObjectSize = options.maxObjectSize ?? 5 * GiB;
  const ownerId = options.ownerId ?? '75aa57f09aa0c8caeab4f8c24e99d10f8e7faeebf76c078efc7c6caea54ba06a';
  const now = options.now ?? (() => new Date());
  const replayCompleted = options.replayCompletedUploads ?? true;

  const buckets = new Map<string, Bucket>();
  const uploads = new Map<string, Upload>();
  const finishedUploads = new Map<string, FinishedUpload>();
  let uploadSeq = 0;
  const requests: RequestRecord[] = [];
  let requestSeq = 0;
  const faultRules: FaultRule[] = [];
  const deleteKeyRules: DeleteKeyRule[] = [];
  const conflictRules: ConflictRule[] = [];
  const internalErrors: Error[] = [];
  const timers = new Set<NodeJS.Timeout>();

  function sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(() => {
        timers.delete(t);
        resolve();
      }, ms);
      timers.add(t);
    });
  }

  function createBucketInternal(name: string): Bucket {
    const b: Bucket = { name, created: truncateToSecond(now()), objects: new Map(), sortedKeys: undefined };
    buckets.set(name, b);
    return b;
  }
  for (const name of options.buckets ?? []) createBucketInternal(name);

  function bucketOrThrow(name: string): Bucket {
    const b = buckets.get(name);
    if (b === undefined) throw err.noSuchBucket(name);
    return b;
  }

  function sortedKeys(b: Bucket): string[] {
    if (b.sortedKeys === undefined) b.sortedKeys = [...b.objects.keys()].sort(utf8Compare);
    return b.sortedKeys;
  }

  function storeObject(b: Bucket, obj: MutableObject): void {
    if (!b.objects.has(obj.key)) b.sortedKeys = undefined;
    b.objects.set(obj.key, obj);
  }

  function removeObject(b: Bucket, key: string): boolean {
    const had = b.objects.delete(key);
    if (had) b.sortedKeys = undefined;
    return had;
  }

  function uploadInfo(u: Upload): UploadInfo {
    return {
      bucket: u.bucket,
      key: u.key,
      uploadId: u.uploadId,
      initiated: u.initiated,
      parts: [...u.parts.values()]
        .sort((a, z) => a.partNumber - z.partNumber)
        .map((p) => ({ partNumber: p.partNumber, etag: p.etag, size: p.body.length })),
    };
  }

  function addRule(matchIn: S3Operation | FaultMatch, fault: FaultSpec, defaultTimes: number): FaultHandle {
    const match: FaultMatch = typeof matchIn === 'string' ? { op: matchIn } : matchIn;
    const rule: FaultRule = {
      match,
      fault,
      seen: 0,
      fired: 0,
      nth: match.nth ?? 1,
      times: match.times ?? defaultTimes,
      removed: false,
    };
    if (!Number.isInteger(rule.nth) || rule.nth < 1) throw new Error(`strict-s3: nth must be an integer >= 1, got ${rule.nth}`);
    faultRules.push(rule);
    return {
      get fired() {
        return rule.fired;
      },
      get pending() {
        return !rule.removed && rule.fired < rule.times;
      },
      remove() {
        rule.removed = true;
      },
    };
  }

  function ruleMatches(m: FaultMatch, r: RequestRecord): boolean {
    if (m.op !== undefined) {
      const ops: readonly S3Operation[] = typeof m.op === 'string' ? [m.op] : m.op;
      if (!ops.includes(r.op)) return false;
    }
    if (m.method !== undefined && m.method.toUpperCase() !== r.method) return false;
    if (m.bucket !== undefined && m.bucket !== r.bucket) return false;
    if (m.key !== undefined) {
      if (r.key === undefined) return false;
      if (typeof m.key === 'string' ? m.key !== r.key : !m.key.test(r.key)) return false;
    }
    if (m.partNumber !== undefined && m.partNumber !== r.partNumber) return false;
    if (m.uploadId !== undefined && m.uploadId !== r.uploadId) return false;
    if (m.where !== undefined && !m.where(r)) return false;
    return true;
  }

  /** The fault for this request, if a rule fires (first rule in insertion order that fires). */
  function drawFault(r: RequestRecord): FaultSpec | undefined {
    let chosen: FaultSpec | undefined;
    for (const rule of faultRules) {
      if (rule.removed || rule.fired >= rule.times) continue;
      if (!ruleMatches(rule.match, r)) continue;
      rule.seen += 1;
      if (chosen === undefined && rule.seen >= rule.nth) {
        rule.fired += 1;
        chosen = rule.fault;
      }
    }
    return chosen;
  }

  // --- request parsing -----------------------------------------------------

  interface Parsed {
    op: S3Operation;
    bucket: string | undefined;
    key: string | undefined;
    query: Record<string, string>;
    unsupported?: string;
  }

  function parseRequest(req: IncomingMessage): Parsed {
    const raw = req.url ?? '/';
    const qIdx = raw.indexOf('?');
    const rawPath = qIdx === -1 ? raw : raw.slice(0, qIdx);
    const rawQuery = qIdx === -1 ? '' : raw.slice(qIdx + 1);
    const query: Record<string, string> = {};
    for (const [k, v] of new URLSearchParams(rawQuery)) query[k] = v;
    // Path-style: /bucket/key... -- never normalised (keys may contain `..`, `//`).
    if (!rawPath.startsWith('/')) throw err.invalidRequest('request path must start with /');
    const rest = rawPath.slice(1);
    const slash = rest.indexOf('/');
    let bucket: string | undefined;
    let key: string | undefined;
    try {
      bucket = slash === -1 ? decodeURIComponent(rest) : decodeURIComponent(rest.slice(0, slash));
      const rawKey = slash === -1 ? '' : rest.slice(slash + 1);
      key = rawKey === '' ? undefined : decodeURIComponent(rawKey);
    } catch {
      throw err.invalidRequest('malformed percent-encoding in the request path');
    }
    if (bucket === '') bucket = undefined;
    const method = req.method ?? 'GET';
    const has = (p: string) => Object.prototype.hasOwnProperty.call(query, p);

    let op: S3Operation = 'Unsupported';
    let unsupported: string | undefined;
    if (bucket === undefined) {
      op = method === 'GET' ? 'ListBuckets' : 'Unsupported';
    } else if (key === undefined) {
      if (method === 'PUT') op = 'CreateBucket';
      else if (method === 'HEAD') op = 'HeadBucket';
      else if (method === 'DELETE') op = 'DeleteBucket';
      else if (method === 'GET' && has('uploads')) op = 'ListMultipartUploads';
      else if (method === 'GET' && query['list-type'] === '2') op = 'ListObjectsV2';
      else if (method === 'POST' && has('delete')) op = 'DeleteObjects';
    } else {
      if (method === 'PUT') op = has('uploadId') || has('partNumber') ? 'UploadPart' : req.headers['x-amz-copy-source'] !== undefined ? 'CopyObject' : 'PutObject';
      else if (method === 'GET') op = has('uploadId') ? 'ListParts' : 'GetObject';
      else if (method === 'HEAD') op = 'HeadObject';
      else if (method === 'DELETE') op = has('uploadId') ? 'AbortMultipartUpload' : 'DeleteObject';
      else if (method === 'POST') {
        if (has('uploads')) op = 'CreateMultipartUpload';
        else if (has('uploadId')) op = 'CompleteMultipartUpload';
      }
    }
    if (op === 'Unsupported') {
      const params = Object.keys(query).filter((p) => !NEUTRAL_PARAMS.has(p));
      unsupported = `${method} ${bucket === undefined ? '/' : key === undefined ? 'bucket' : 'object'}${
        params.length > 0 ? ` with ?${params.join('&')}` : ''
      }`;
    } else {
      const allowed = ALLOWED_PARAMS[op];
      const extra = Object.keys(query).filter((p) => !NEUTRAL_PARAMS.has(p) && !allowed.includes(p));
      if (extra.length > 0) unsupported = `${op} with query parameter(s) ${extra.join(', ')}`;
      if (req.headers['x-amz-copy-source'] !== undefined && op !== 'CopyObject') unsupported = `${op} with x-amz-copy-source (UploadPartCopy)`;
      if (req.headers['x-amz-copy-source-server-side-encryption-customer-algorithm'] !== undefined) unsupported = `${op} with SSE-C`;
      if (req.headers['x-amz-server-side-encryption-customer-algorithm'] !== undefined) unsupported = `${op} with SSE-C`;
    }
    // GetObjectTagging is not GetObject, CopyObject is not PutObject: count and match them as Unsupported.
    return unsupported === undefined ? { op, bucket, key, query } : { op: 'Unsupported', bucket, key, query, unsupported };
  }

  /** Read the whole body, decoding aws-chunked framing; verifies payload hashes and checksums. */
  async function readBody(req: IncomingMessage): Promise<Buffer> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const raw = Buffer.concat(chunks);
    const sha = headerString(req, 'x-amz-content-sha256');
    const contentEncoding = headerString(req, 'content-encoding') ?? '';
    const chunked =
      (sha !== undefined && sha.startsWith('STREAMING-')) ||
      contentEncoding
        .split(',')
        .map((s) => s.trim().toLowerCase())
        .includes('aws-chunked');
    if (!chunked) {
      if (sha !== undefined && /^[0-9a-f]{64}$/i.test(sha)) {
        const actual = createHash('sha256').update(raw).digest('hex');
        if (actual !== sha.toLowerCase()) {
          throw new S3Error(400, 'XAmzContentSHA256Mismatch', "The provided 'x-amz-content-sha256' header does not match what was computed.", {
            ClientComputedContentSHA256: sha,
            S3ComputedContentSHA256: actual,
          });
        }
      }
      return raw;
    }
    const decodedLength = headerString(req, 'x-amz-decoded-content-length');
    if (decodedLength === undefined) {
      throw new S3Error(411, 'MissingContentLength', 'You must provide the Content-Length HTTP header (x-amz-decoded-content-length for aws-chunked).');
    }
    const { data, trailers } = decodeAwsChunked(raw);
    if (data.length !== Number(decodedLength)) {
      throw new S3Error(400, 'IncompleteBody', `aws-chunked body decodes to ${data.length} bytes, x-amz-decoded-content-length says ${decodedLength}`);
    }
    const declared = headerString(req, 'x-amz-trailer');
    if (declared !== undefined) {
      for (const name of declared.split(',').map((s) => s.trim().toLowerCase()).filter((s) => s !== '')) {
        const value = trailers[name];
        if (value === undefined) {
          throw new S3Error(400, 'MalformedTrailerError', `The request declared trailer ${name} but did not send it.`);
        }
        if (name.startsWith('x-amz-checksum-')) verifyChecksum(name.slice('x-amz-checksum-'.length), value, data);
      }
    }
    return data;
  }

  function decodeAwsChunked(raw: Buffer): { data: Buffer; trailers: Record<string, string> } {
    const parts: Buffer[] = [];
    let i = 0;
    const bad = (why: string) => new S3Error(400, 'IncompleteBody', `malformed aws-chunked body: ${why}`);
    for (;;) {
      const eol = raw.indexOf('\r\n', i, 'latin1');
      if (eol === -1) throw bad('chunk header without CRLF');
      const header = raw.toString('latin1', i, eol);
      const sizeHex = (header.split(';')[0] ?? '').trim();
      if (!/^[0-9a-fA-F]+$/.test(sizeHex)) throw bad(`chunk size ${JSON.stringify(sizeHex)}`);
      const size = parseInt(sizeHex, 16);
      i = eol + 2;
      if (size === 0) break;
      if (i + size + 2 > raw.length) throw bad('chunk data shorter than its size');
      parts.push(raw.subarray(i, i + size));
      i += size;
      if (raw[i] !== 0x0d || raw[i + 1] !== 0x0a) throw bad('chunk data not followed by CRLF');
      i += 2;
    }
    // Trailers: `name:value\r\n`..., then an empty line (or end of body).
    const trailers: Record<string, string> = {};
    while (i < raw.length) {
      const eol = raw.indexOf('\r\n', i, 'latin1');
      const line = raw.toString('latin1', i, eol === -1 ? raw.length : eol);
      i = eol === -1 ? raw.length : eol + 2;
      if (line === '') break;
      const colon = line.indexOf(':');
      if (colon === -1) throw new S3Error(400, 'MalformedTrailerError', `malformed trailer line ${JSON.stringify(line)}`);
      trailers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
    }
    return { data: Buffer.concat(parts), trailers };
  }

  function verifyIntegrityHeaders(req: IncomingMessage, body: Buffer): void {
    const contentMd5 = headerString(req, 'content-md5');
    if (contentMd5 !== undefined) {
      const decoded = Buffer.from(contentMd5.trim(), 'base64');
      if (decoded.length !== 16 || decoded.toString('base64') !== contentMd5.trim()) {
        throw new S3Error(400, 'InvalidDigest', 'The Content-MD5 you specified was invalid.');
      }
      if (!decoded.equals(md5(body))) {
        throw new S3Error(400, 'BadDigest', 'The Content-MD5 you specified did not match what we received.', {
          ExpectedDigest: contentMd5,
          CalculatedDigest: md5(body).toString('base64'),
        });
      }
    }
    for (const [name, value] of Object.entries(req.headers)) {
      if (!name.startsWith('x-amz-checksum-') || name === 'x-amz-checksum-mode' || name === 'x-amz-checksum-type') continue;
      if (typeof value !== 'string') continue;
      verifyChecksum(name.slice('x-amz-checksum-'.length), value, body);
    }
  }

  function echoedChecksumHeaders(req: IncomingMessage, body: Buffer): Record<string, string> {
    const out: Record<string, string> = {};
    for (const name of Object.keys(req.headers)) {
      if (!name.startsWith('x-amz-checksum-') || name === 'x-amz-checksum-mode' || name === 'x-amz-checksum-type') continue;
      const fn = CHECKSUMS[name.slice('x-amz-checksum-'.length)];
      if (fn !== undefined) out[name] = fn(body).toString('base64');
    }
    const trailer = headerString(req, 'x-amz-trailer');
    if (trailer !== undefined) {
      for (const name of trailer.split(',').map((s) => s.trim().toLowerCase())) {
        const fn = CHECKSUMS[name.slice('x-amz-checksum-'.length)];
        if (name.startsWith('x-amz-checksum-') && fn !== undefined) out[name] = fn(body).toString('base64');
      }
    }
    return out;
  }

  /** Content-Type, x-amz-meta-*, representation headers and storage class of a PUT / CreateMultipartUpload. */
  function objectAttributes(req: IncomingMessage): {
    contentType: string;
    metadata: Record<string, string>;
    headers: Record<string, string>;
    storageClass: string;
  } {
    const metadata: Record<string, string> = {};
    let metaBytes = 0;
    for (const [name, value] of Object.entries(req.headers)) {
      if (!name.startsWith('x-amz-meta-') || value === undefined) continue;
      const v = Array.isArray(value) ? value.join(',') : value;
      const short = name.slice('x-amz-meta-'.length);
      metadata[short] = v;
      metaBytes += Buffer.byteLength(short) + Buffer.byteLength(v);
    }
    if (metaBytes > MAX_METADATA_BYTES) {
      throw new S3Error(400, 'MetadataTooLarge', 'Your metadata headers exceed the maximum allowed metadata size', {
        Size: metaBytes,
        MaxSizeAllowed: MAX_METADATA_BYTES,
      });
    }
    const headers: Record<string, string> = {};
    for (const h of REPRESENTATION_HEADERS) {
      let v = headerString(req, h);
      if (v === undefined) continue;
      if (h === 'content-encoding') {
        v = v
          .split(',')
          .map((s) => s.trim())
          .filter((s) => s !== '' && s.toLowerCase() !== 'aws-chunked')
          .join(',');
        if (v === '') continue;
      }
      headers[h] = v;
    }
    const storageClass = headerString(req, 'x-amz-storage-class') ?? 'STANDARD';
    return { contentType: headerString(req, 'content-type') ?? 'binary/octet-stream', metadata, headers, storageClass };
  }

  function checkKey(key: string): void {
    if (Buffer.byteLength(key, 'utf8') > MAX_KEY_BYTES) {
      throw new S3Error(400, 'KeyTooLongError', 'Your key is too long', { Size: Buffer.byteLength(key), MaxSizeAllowed: MAX_KEY_BYTES });
    }
  }

  /** The account's `aws/s3` KMS key, used when a KMS write names none. */
  const defaultKmsKeyArn = 'arn:aws:kms:us-east-1:111122223333:key/0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d';

  function kmsKeyArn(id: string | undefined): string {
    if (id === undefined || id === '') return defaultKmsKeyArn;
    return id.startsWith('arn:') ? id : `arn:aws:kms:us-east-1:111122223333:key/${id}`;
  }

  function isKms(algorithm: string | undefined): boolean {
    return algorithm === 'aws:kms' || algorithm === 'aws:kms:dsse';
  }

  function sseOf(e: StrictS3Encryption | undefined): ObjectSse {
    if (e === undefined || !isKms(e.algorithm)) return {};
    return { serverSideEncryption: e.algorithm, kmsKeyId: kmsKeyArn(e.kmsKeyId), ...(e.bucketKeyEnabled === true ? { bucketKeyEnabled: true } : {}) };
  }

  /**
   * The encryption a write asks for (x-amz-server-side-encryption and its
   * KMS companions), else the bucket's default. Refused as AWS refuses them:
   * an unknown algorithm, KMS parameters without a KMS algorithm, an
   * encryption context that is not base64 JSON.
   */
  function requestSse(req: IncomingMessage, b: Bucket): ObjectSse {
    const algorithm = headerString(req, 'x-amz-server-side-encryption');
    const keyId = headerString(req, 'x-amz-server-side-encryption-aws-kms-key-id');
    const context = headerString(req, 'x-amz-server-side-encryption-context');
    const bucketKey = headerString(req, 'x-amz-server-side-encryption-bucket-key-enabled');
    if (algorithm !== undefined && algorithm !== 'AES256' && !isKms(algorithm)) {
      throw err.invalidArgument('The encryption method specified is not supported', 'x-amz-server-side-encryption', algorithm);
    }
    if ((keyId !== undefined || context !== undefined) && !isKms(algorithm)) {
      throw err.invalidArgument(
        'Server Side Encryption with AWS KMS managed key requires HTTP header x-amz-server-side-encryption : aws:kms',
        keyId !== undefined ? 'x-amz-server-side-encryption-aws-kms-key-id' : 'x-amz-server-side-encryption-context',
        keyId ?? context ?? '',
      );
    }
    if (context !== undefined) {
      let ok = false;
      try {
        const v: unknown = JSON.parse(Buffer.from(context, 'base64').toString('utf8'));
        ok = typeof v === 'object' && v !== null && !Array.isArray(v);
      } catch {
        ok = false;
      }
      if (!ok) throw err.invalidArgument('The encryption context must be base64-encoded JSON', 'x-amz-server-side-encryption-context', context);
    }
    if (algorithm === undefined) return sseOf(b.encryption);
    if (!isKms(algorithm)) return {};
    return sseOf({ algorithm: algorithm as 'aws:kms' | 'aws:kms:dsse', ...(keyId !== undefined ? { kmsKeyId: keyId } : {}), bucketKeyEnabled: bucketKey === 'true' });
  }

  /** The response headers that say how an object (or upload) is encrypted. */
  function sseHeaders(sse: ObjectSse | undefined): Record<string, string> {
    if (sse?.serverSideEncryption === undefined || !isKms(sse.serverSideEncryption)) return { 'x-amz-server-side-encryption': 'AES256' };
    return {
      'x-amz-server-side-encryption': sse.serverSideEncryption,
      'x-amz-server-side-encryption-aws-kms-key-id': sse.kmsKeyId ?? defaultKmsKeyArn,
      ...(sse.bucketKeyEnabled === true ? { 'x-amz-server-side-encryption-bucket-key-enabled': 'true' } : {}),
    };
  }

  /** An ETag that is not the content's MD5, as AWS gives SSE-KMS objects and parts. */
  function opaqueEtag(): string {
    return randomBytes(16).toString('hex');
  }

  /** A conflictNext() rule for this key, used up by one conditional write. */
  function drawConflict(bucket: string, key: string): boolean {
    const rule = conflictRules.find(
      (r) =>
        !r.removed &&
        r.fired < r.times &&
        (r.bucket === undefined || r.bucket === bucket) &&
        (r.key === undefined || (typeof r.key === 'string' ? r.key === key : r.key.test(key))),
    );
    if (rule === undefined) return false;
    rule.fired += 1;
    return true;
  }

  /** If-None-Match: * / If-Match: <etag> on a write (PutObject, CompleteMultipartUpload). */
  function checkWritePreconditions(req: IncomingMessage, existing: StoredObject | undefined, key: string, bucket: string): void {
    const ifNoneMatch = headerString(req, 'if-none-match');
    const ifMatch = headerString(req, 'if-match');
    if (ifNoneMatch !== undefined && ifNoneMatch.trim() !== '*') {
      throw err.notImplemented('If-None-Match on a write accepts only *');
    }
    if ((ifNoneMatch !== undefined || ifMatch !== undefined) && drawConflict(bucket, key)) throw err.conflict(key);
    if (ifNoneMatch !== undefined && existing !== undefined) throw err.precondition('If-None-Match');
    if (ifMatch !== undefined) {
      if (existing === undefined) throw err.noSuchKey(key);
      if (!etagListMatches(ifMatch, existing.etag)) throw err.precondition('If-Match');
    }
  }

  // --- responses -------------------------------------------------------------

  function baseHeaders(res: ServerResponse): void {
    const id = randomBytes(8).toString('hex').toUpperCase();
    res.setHeader('x-amz-request-id', id);
    res.setHeader('x-amz-id-2', randomBytes(24).toString('base64'));
    res.setHeader('Server', 'StrictS3');
  }

  function sendXml(res: ServerResponse, status: number, xml: string, headers: Record<string, string> = {}): void {
    res.statusCode = status;
    for (const [k, v] of Object.entries(headers)) res.setHeader(k, v);
    const body = Buffer.from(xml, 'utf8');
    res.setHeader('Content-Type', 'application/xml');
    res.setHeader('Content-Length', body.length);
    res.end(body);
  }

  function sendEmpty(res: ServerResponse, status: number, headers: Record<string, string> = {}): void {
    res.statusCode = status;
    for (const [k, v] of Object.entries(headers)) res.setHeader(k, v);
    res.setHeader('Content-Length', 0);
    res.end();
  }

  function sendError(res: ServerResponse, method: string, e: S3Error, resource: string): void {
    res.statusCode = e.status;
    for (const [k, v] of Object.entries(e.headers)) res.setHeader(k, v);
    if (method === 'HEAD') {
      // S3 answers HEAD errors without a body (the SDK then names them by status: NotFound, ...).
      res.setHeader('Content-Length', 0);
      res.end();
      return;
    }
    const extra = Object.entries(e.extra)
      .map(([k, v]) => el(k, v))
      .join('');
    const requestId = String(res.getHeader('x-amz-request-id') ?? '');
    const xml =
      `<?xml version="1.0" encoding="UTF-8"?>\n<Error>${el('Code', e.code)}${el('Message', e.message)}${extra}` +
      `${el('Resource', resource)}${el('RequestId', requestId)}${el('HostId', String(res.getHeader('x-amz-id-2') ?? ''))}</Error>`;
    const body = Buffer.from(xml, 'utf8');
    res.setHeader('Content-Type', 'application/xml');
    res.setHeader('Content-Length', body.length);
    res.end(body);
  }

  function objectHeaders(obj: StoredObject): Record<string, string> {
    const h: Record<string, string> = {
      ETag: `"${obj.etag}"`,
      'Last-Modified': obj.lastModified.toUTCString(),
      'Content-Type': obj.contentType,
      'Accept-Ranges': 'bytes',
      ...sseHeaders(obj),
    };
    for (const [k, v] of Object.entries(obj.headers)) h[k] = v;
    for (const [k, v] of Object.entries(obj.metadata)) h[`x-amz-meta-${k}`] = v;
    if (obj.storageClass !== 'STANDARD') h['x-amz-storage-class'] = obj.storageClass;
    return h;
  }

  // --- operations ------------------------------------------------------------

  interface Ctx {
    req: IncomingMessage;
    res: ServerResponse;
    parsed: Parsed;
    body: Buffer;
    record: RequestRecord;
    fault: FaultSpec | undefined;
  }

  /** The region named in the SigV4 credential scope (Authorization header or X-Amz-Credential). */
  function requestRegion(ctx: Ctx): string | undefined {
    const auth = headerString(ctx.req, 'authorization') ?? ctx.parsed.query['X-Amz-Credential'] ?? '';
    const m = /Credential=[^/,]+\/\d{8}\/([^/,]+)\//.exec(auth) ?? /^[^/]+\/\d{8}\/([^/]+)\//.exec(auth);
    return m?.[1];
  }

  function listBuckets(ctx: Ctx): void {
    const inner =
      `<Owner>${el('ID', ownerId)}${el('DisplayName', 'strict-s3')}</Owner><Buckets>` +
      [...buckets.values()]
        .sort((a, z) => utf8Compare(a.name, z.name))
        .map((b) => `<Bucket>${el('Name', b.name)}${el('CreationDate', isoTime(b.created))}${el('BucketRegion', 'us-east-1')}</Bucket>`)
        .join('') +
      '</Buckets>';
    sendXml(ctx.res, 200, xmlDoc('ListAllMyBucketsResult', inner));
  }

  function createBucket(ctx: Ctx, name: string): void {
    if (!isValidBucketName(name)) throw new S3Error(400, 'InvalidBucketName', 'The specified bucket is not valid.', { BucketName: name });
    if (buckets.has(name)) {
      // S3: in us-east-1 re-creating a bucket you own answers 200; elsewhere 409.
      const region = requestRegion(ctx) ?? 'us-east-1';
      if (region !== 'us-east-1') {
        throw new S3Error(409, 'BucketAlreadyOwnedByYou', 'Your previous request to create the named bucket succeeded and you already own it.', {
          BucketName: name,
        });
      }
    } else {
      createBucketInternal(name);
    }
    sendEmpty(ctx.res, 200, { Location: `/${name}` });
  }

  function deleteBucket(ctx: Ctx, name: string): void {
    const b = bucketOrThrow(name);
    if (b.objects.size > 0) {
      throw new S3Error(409, 'BucketNotEmpty', 'The bucket you tried to delete is not empty', { BucketName: name });
    }
    for (const [id, u] of uploads) if (u.bucket === name) uploads.delete(id);
    buckets.delete(name);
    sendEmpty(ctx.res, 204);
  }

  function putObject(ctx: Ctx, bucketName: string, key: string): void {
    const b = bucketOrThrow(bucketName);
    checkKey(key);
    if (ctx.body.length > maxObjectSize) {
      throw new S3Error(400, 'EntityTooLarge', 'Your proposed upload exceeds the maximum allowed size', {
        ProposedSize: ctx.body.length,
        MaxSizeAllowed: maxObjectSize,
      });
    }
    verifyIntegrityHeaders(ctx.req, ctx.body);
    const attrs = objectAttributes(ctx.req);
    const sse = requestSse(ctx.req, b);
    checkWritePreconditions(ctx.req, b.objects.get(key), key, bucketName);
    const obj: MutableObject = {
      key,
      body: ctx.body,
      etag: isKms(sse.serverSideEncryption) ? opaqueEtag() : md5(ctx.body).toString('hex'),
      size: ctx.body.length,
      lastModified: truncateToSecond(now()),
      ...attrs,
      ...sse,
    };
    storeObject(b, obj);
    sendEmpty(ctx.res, 200, {
      ETag: `"${obj.etag}"`,
      ...sseHeaders(sse),
      ...echoedChecksumHeaders(ctx.req, ctx.body),
    });
  }

  /** S3's largest CopyObject source (5 GiB). */
  const MAX_COPY_SOURCE = 5 * GiB;

  /**
   * CopyObject (`PUT` with x-amz-copy-source) within the double. The source
   * is `bucket/key` or `/bucket/key`, URL-encoded; its conditions
   * (x-amz-copy-source-if-*) are evaluated as AWS documents them, then the
   * size limit; the destination gets the request's encryption (else the
   * bucket default; never the source's), storage class, and — with
   * x-amz-metadata-directive COPY, the default — the source's metadata and
   * content headers (REPLACE: the request's).
   */
  function copyObject(ctx: Ctx, bucketName: string, key: string): void {
    const b = bucketOrThrow(bucketName);
    checkKey(key);
    const raw = headerString(ctx.req, 'x-amz-copy-source') ?? '';
    const q = raw.indexOf('?');
    if (q !== -1) {
      if (raw.slice(q + 1).startsWith('versionId=')) throw err.notImplemented('CopyObject of a versionId (no versioning)');
      throw err.invalidArgument('Invalid copy source', 'x-amz-copy-source', raw);
    }
    let source: string;
    try {
      source = decodeURIComponent(raw.startsWith('/') ? raw.slice(1) : raw);
    } catch {
      throw err.invalidArgument('Invalid copy source encoding', 'x-amz-copy-source', raw);
    }
    const slash = source.indexOf('/');
    if (slash <= 0 || slash === source.length - 1) throw err.invalidArgument('Invalid copy source object key', 'x-amz-copy-source', raw);
    const srcBucket = bucketOrThrow(source.slice(0, slash));
    const srcKey = source.slice(slash + 1);
    const expectedSourceOwner = headerString(ctx.req, 'x-amz-source-expected-bucket-owner');
    if (expectedSourceOwner !== undefined && expectedSourceOwner !== ownerId) throw new S3Error(403, 'AccessDenied', 'Access Denied');
    for (const h of ['if-match', 'if-none-match']) {
      if (headerString(ctx.req, h) !== undefined) throw err.notImplemented(`${h} (a destination condition) on CopyObject`);
    }
    for (const h of ['x-amz-tagging', 'x-amz-tagging-directive', 'x-amz-object-lock-mode', 'x-amz-website-redirect-location']) {
      if (headerString(ctx.req, h) !== undefined) throw err.notImplemented(`${h} on CopyObject`);
    }
    const src = srcBucket.objects.get(srcKey);
    if (src === undefined) throw err.noSuchKey(srcKey);
    checkCopySourcePreconditions(ctx.req, src);
    if (src.size > MAX_COPY_SOURCE) {
      throw err.invalidRequest(`The specified copy source is larger than the maximum allowable size for a copy source: ${MAX_COPY_SOURCE}`);
    }
    const directive = headerString(ctx.req, 'x-amz-metadata-directive') ?? 'COPY';
    if (directive !== 'COPY' && directive !== 'REPLACE') throw err.invalidArgument('Unknown metadata directive.', 'x-amz-metadata-directive', directive);
    const sse = requestSse(ctx.req, b);
    const storageClass = headerString(ctx.req, 'x-amz-storage-class') ?? 'STANDARD';
    const changes =
      directive === 'REPLACE' || headerString(ctx.req, 'x-amz-storage-class') !== undefined || headerString(ctx.req, 'x-amz-server-side-encryption') !== undefined;
    if (srcBucket === b && srcKey === key && !changes) {
      throw err.invalidRequest(
        "This copy request is illegal because it is trying to copy an object to itself without changing the object's metadata, storage class, website redirect location or encryption attributes.",
      );
    }
    const attrs =
      directive === 'COPY'
        ? { contentType: src.contentType, metadata: { ...src.metadata }, headers: { ...src.headers }, storageClass }
        : { ...objectAttributes(ctx.req), storageClass };
    const obj: MutableObject = {
      key,
      body: src.body,
      etag: isKms(sse.serverSideEncryption) ? opaqueEtag() : md5(src.body).toString('hex'),
      size: src.size,
      lastModified: truncateToSecond(now()),
      ...attrs,
      ...sse,
    };
    storeObject(b, obj);
    sendXml(
      ctx.res,
      200,
      xmlDoc('CopyObjectResult', `${el('LastModified', isoTime(obj.lastModified))}${el('ETag', `"${obj.etag}"`)}`),
      sseHeaders(sse),
    );
  }

  /**
   * x-amz-copy-source-if-* as AWS documents them for CopyObject: if-match
   * true and unmodified-since false → copied; if-none-match false and
   * modified-since true → 412; otherwise any false condition → 412.
   */
  function checkCopySourcePreconditions(req: IncomingMessage, src: StoredObject): void {
    const ifMatch = headerString(req, 'x-amz-copy-source-if-match');
    const ifNoneMatch = headerString(req, 'x-amz-copy-source-if-none-match');
    const ifModifiedSince = headerString(req, 'x-amz-copy-source-if-modified-since');
    const ifUnmodifiedSince = headerString(req, 'x-amz-copy-source-if-unmodified-since');
    const lm = src.lastModified.getTime();
    if (ifMatch !== undefined) {
      if (!etagListMatches(ifMatch, src.etag)) throw err.precondition('x-amz-copy-source-If-Match');
    } else if (ifUnmodifiedSince !== undefined) {
      const t = Date.parse(ifUnmodifiedSince);
      if (!Number.isNaN(t) && lm > t) throw err.precondition('x-amz-copy-source-If-Unmodified-Since');
    }
    if (ifNoneMatch !== undefined) {
      if (etagListMatches(ifNoneMatch, src.etag)) throw err.precondition('x-amz-copy-source-If-None-Match');
    } else if (ifModifiedSince !== undefined) {
      const t = Date.parse(ifModifiedSince);
      if (!Number.isNaN(t) && lm <= t) throw err.precondition('x-amz-copy-source-If-Modified-Since');
    }
  }

  /** RFC 7232 evaluation order, as S3 documents it for GetObject/HeadObject. */
  function checkReadPreconditions(req: IncomingMessage, obj: StoredObject): void {
    const ifMatch = headerString(req, 'if-match');
    const ifNoneMatch = headerString(req, 'if-none-match');
    const ifModifiedSince = headerString(req, 'if-modified-since');
    const ifUnmodifiedSince = headerString(req, 'if-unmodified-since');
    const lm = obj.lastModified.getTime();
    if (ifMatch !== undefined) {
      if (!etagListMatches(ifMatch, obj.etag)) throw err.precondition('If-Match');
    } else if (ifUnmodifiedSince !== undefined) {
      const t = Date.parse(ifUnmodifiedSince);
      if (!Number.isNaN(t) && lm > t) throw err.precondition('If-Unmodified-Since');
    }
    const notModified = () =>
      new S3Error(304, 'NotModified', 'Not Modified', {}, { ETag: `"${obj.etag}"`, 'Last-Modified': obj.lastModified.toUTCString() });
    if (ifNoneMatch !== undefined) {
      if (etagListMatches(ifNoneMatch, obj.etag)) throw notModified();
    } else if (ifModifiedSince !== undefined) {
      const t = Date.parse(ifModifiedSince);
      if (!Number.isNaN(t) && lm <= t) throw notModified();
    }
  }

  /** Parse a Range header: undefined when absent or ignorable (S3 then answers the whole object). */
  function parseRange(header: string | undefined, size: number): { start: number; end: number } | 'unsatisfiable' | undefined {
    if (header === undefined) return undefined;
    const m = /^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$/i.exec(header);
    if (m === null) return undefined; // malformed or multiple ranges: ignored
    const [, a = '', z = ''] = m;
    if (a === '' && z === '') return undefined;
    if (a === '') {
      const n = Number(z);
      if (n === 0 || size === 0) return 'unsatisfiable';
      return { start: Math.max(0, size - n), end: size - 1 };
    }
    const start = Number(a);
    if (z !== '' && Number(z) < start) return undefined; // syntactically invalid: ignored
    if (start >= size) return 'unsatisfiable';
    const end = z === '' ? size - 1 : Number(z);
    return { start, end: Math.min(end, size - 1) };
  }

  function getObject(ctx: Ctx, bucketName: string, key: string, head: boolean): void {
    const b = bucketOrThrow(bucketName);
    const obj = b.objects.get(key);
    if (obj === undefined) throw err.noSuchKey(key);
    checkReadPreconditions(ctx.req, obj);
    const headers = objectHeaders(obj);
    for (const [param, header] of Object.entries(RESPONSE_OVERRIDES)) {
      const v = ctx.parsed.query[param];
      if (v !== undefined) {
        const existing = Object.keys(headers).find((h) => h.toLowerCase() === header);
        if (existing !== undefined) delete headers[existing];
        headers[header] = v;
      }
    }
    const rangeHeader = headerString(ctx.req, 'range');
    const partParam = ctx.parsed.query['partNumber'];
    let status = 200;
    let start = 0;
    let end = obj.size - 1;
    if (partParam !== undefined) {
      if (rangeHeader !== undefined) throw err.invalidRequest('Cannot specify both Range header and partNumber query parameter');
      const n = Number(partParam);
      if (!Number.isInteger(n) || n < 1 || n > 10000) {
        throw err.invalidArgument('Part number must be an integer between 1 and 10000, inclusive', 'partNumber', partParam);
      }
      const sizes = obj.partSizes;
      if (sizes === undefined) {
        if (n !== 1) throw new S3Error(416, 'InvalidPartNumber', 'The requested partnumber is not satisfiable', { PartNumberRequested: n, ActualPartCount: 1 });
      } else {
        if (n > sizes.length) {
          throw new S3Error(416, 'InvalidPartNumber', 'The requested partnumber is not satisfiable', {
            PartNumberRequested: n,
            ActualPartCount: sizes.length,
          });
        }
        start = sizes.slice(0, n - 1).reduce((s, x) => s + x, 0);
        end = start + (sizes[n - 1] ?? 0) - 1;
        status = 206;
        headers['x-amz-mp-parts-count'] = String(sizes.length);
        headers['Content-Range'] = `bytes ${start}-${end}/${obj.size}`;
      }
    } else {
      const range = parseRange(rangeHeader, obj.size);
      if (range === 'unsatisfiable') {
        throw new S3Error(
          416,
          'InvalidRange',
          undefined,
          { RangeRequested: rangeHeader ?? '', ActualObjectSize: obj.size },
          { 'Content-Range': `bytes */${obj.size}` },
        );
      }
      if (range !== undefined) {
        ({ start, end } = range);
        status = 206;
        headers['Content-Range'] = `bytes ${start}-${end}/${obj.size}`;
      }
    }
    let body = obj.body.subarray(start, end + 1);
    const res = ctx.res;
    res.statusCode = status;
    for (const [k, v] of Object.entries(headers)) res.setHeader(k, v);
    res.setHeader('Content-Length', body.length);
    if (head) {
      res.end();
      return;
    }
    const fault = ctx.fault;
    if (fault?.corruptBody === true && body.length > 0) {
      body = Buffer.from(body);
      const i = Math.floor(body.length / 2);
      body[i] = body[i]! ^ 0xff;
    }
    if (fault?.truncateBodyAt !== undefined) {
      const cut = Math.max(0, Math.min(fault.truncateBodyAt, body.length - 1));
      res.flushHeaders();
      res.write(body.subarray(0, cut), () => {
        setImmediate(() => res.socket?.destroy());
      });
      ctx.record.status = 0;
      return;
    }
    res.end(body);
  }

  function deleteObject(ctx: Ctx, bucketName: string, key: string): void {
    const b = bucketOrThrow(bucketName);
    for (const h of ['x-amz-if-match-last-modified-time', 'x-amz-if-match-size']) {
      if (headerString(ctx.req, h) !== undefined) throw err.notImplemented(`DeleteObject with ${h} (directory buckets only)`);
    }
    const ifMatch = headerString(ctx.req, 'if-match');
    if (ifMatch !== undefined) {
      // Conditional delete: evaluated against the current object; a missing key is 404.
      if (drawConflict(bucketName, key)) throw err.conflict(key);
      const existing = b.objects.get(key);
      if (existing === undefined) throw err.noSuchKey(key);
      if (!etagListMatches(ifMatch, existing.etag)) throw err.precondition('If-Match');
    }
    removeObject(b, key);
    sendEmpty(ctx.res, 204);
  }

  function deleteObjects(ctx: Ctx, bucketName: string): void {
    const b = bucketOrThrow(bucketName);
    const hasChecksum = Object.keys(ctx.req.headers).some(
      (h) => h === 'content-md5' || (h.startsWith('x-amz-checksum-') && h !== 'x-amz-checksum-mode' && h !== 'x-amz-checksum-type'),
    );
    const hasTrailerChecksum = (headerString(ctx.req, 'x-amz-trailer') ?? '').includes('x-amz-checksum-');
    if (!hasChecksum && !hasTrailerChecksum) {
      throw err.invalidRequest('Missing required header for this request: Content-MD5 (or an x-amz-checksum-* header)');
    }
    verifyIntegrityHeaders(ctx.req, ctx.body);
    const xml = ctx.body.toString('utf8');
    if (!/<Delete[\s>]/.test(xml)) throw err.malformedXml();
    const objects = xmlChildren(xml, 'Object');
    if (objects.length === 0 || objects.length > 1000) throw err.malformedXml();
    const quiet = (xmlChild(xml, 'Quiet') ?? 'false').trim().toLowerCase() === 'true';
    let out = '';
    for (const o of objects) {
      const key = xmlChild(o, 'Key');
      if (key === undefined) throw err.malformedXml();
      if (xmlChild(o, 'VersionId') !== undefined) throw err.notImplemented('DeleteObjects with VersionId');
      for (const tag of ['LastModifiedTime', 'Size']) {
        if (xmlChild(o, tag) !== undefined) throw err.notImplemented(`DeleteObjects with <${tag}> (directory buckets only)`);
      }
      const etag = xmlChild(o, 'ETag');
      const rule = deleteKeyRules.find(
        (r) => !r.removed && r.fired < r.times && (typeof r.key === 'string' ? r.key === key : r.key.test(key)),
      );
      if (rule !== undefined) {
        rule.fired += 1;
        out += `<Error>${el('Key', key)}${el('Code', rule.code)}${el('Message', rule.message)}</Error>`;
        continue;
      }
      if (etag !== undefined) {
        // A conditional delete of this key: PreconditionFailed when its ETag differs, NoSuchKey when it is missing.
        const perKey = (code: string): string =>
          `<Error>${el('Key', key)}${el('Code', code)}${el('Message', DEFAULT_MESSAGE[code] ?? code)}</Error>`;
        if (drawConflict(bucketName, key)) {
          out += perKey('ConditionalRequestConflict');
          continue;
        }
        const existing = b.objects.get(key);
        if (existing === undefined) {
          out += perKey('NoSuchKey');
          continue;
        }
        if (!etagListMatches(etag, existing.etag)) {
          out += perKey('PreconditionFailed');
          continue;
        }
      }
      removeObject(b, key);
      if (!quiet) out += `<Deleted>${el('Key', key)}</Deleted>`;
    }
    sendXml(ctx.res, 200, xmlDoc('DeleteResult', out));
  }

  function listObjectsV2(ctx: Ctx, bucketName: string): void {
    const b = bucketOrThrow(bucketName);
    const q = ctx.parsed.query;
    const prefix = q['prefix'] ?? '';
    const delimiter = q['delimiter'] ?? '';
    const encodingType = q['encoding-type'];
    if (encodingType !== undefined && encodingType !== 'url') {
      throw err.invalidArgument('Invalid Encoding Method specified in Request', 'encoding-type', encodingType);
    }
    let maxKeys = 1000;
    if (q['max-keys'] !== undefined) {
      const n = Number(q['max-keys']);
      if (!/^\d+$/.test(q['max-keys']) || !Number.isSafeInteger(n)) {
        throw err.invalidArgument('Provided max-keys not an integer or within integer range', 'max-keys', q['max-keys']);
      }
      maxKeys = Math.min(n, 1000);
    }
    let after: string | undefined = q['start-after'] === '' ? undefined : q['start-after'];
    let skipPrefix = false;
    const token = q['continuation-token'];
    if (token !== undefined) {
      const decoded = decodeToken(token);
      if (decoded === undefined) {
        throw err.invalidArgument('The continuation token provided is incorrect', 'continuation-token', token);
      }
      after = decoded.after;
      skipPrefix = decoded.prefix;
    }
    const enc = (s: string) => (encodingType === 'url' ? encodeURIComponent(s).replace(/%2F/g, '/') : s);
    const contents: string[] = [];
    const commonPrefixes: string[] = [];
    let isTruncated = false;
    let last: { after: string; prefix: boolean } | undefined;
    const keys = sortedKeys(b);
    for (const key of keys) {
      if (!key.startsWith(prefix)) continue;
      if (after !== undefined) {
        if (utf8Compare(key, after) <= 0) continue;
        // continuing after a CommonPrefix: skip the rest of its keys
        if (skipPrefix && key.startsWith(after)) continue;
      }
      let cp: string | undefined;
      if (delimiter !== '') {
        const idx = key.indexOf(delimiter, prefix.length);
        if (idx !== -1) cp = key.slice(0, idx + delimiter.length);
      }
      if (cp !== undefined && commonPrefixes[commonPrefixes.length - 1] === cp) continue;
      if (contents.length + commonPrefixes.length >= maxKeys) {
        isTruncated = true;
        break;
      }
      if (cp !== undefined) {
        // Keys are in byte order, so the other keys under this prefix follow
        // at once and are skipped by the check above.
        commonPrefixes.push(cp);
        last = { after: cp, prefix: true };
        continue;
      }
      const obj = b.objects.get(key)!;
      contents.push(
        `<Contents>${el('Key', enc(key))}${el('LastModified', isoTime(obj.lastModified))}${el('ETag', `"${obj.etag}"`)}` +
          `${el('Size', obj.size)}${
            q['fetch-owner'] === 'true' ? `<Owner>${el('ID', ownerId)}${el('DisplayName', 'strict-s3')}</Owner>` : ''
          }${el('StorageClass', obj.storageClass)}</Contents>`,
      );
      last = { after: key, prefix: false };
    }
    if (maxKeys === 0) isTruncated = false;
    const inner =
      el('Name', bucketName) +
      el('Prefix', enc(prefix)) +
      (q['start-after'] !== undefined ? el('StartAfter', enc(q['start-after'])) : '') +
      (token !== undefined ? el('ContinuationToken', token) : '') +
      (isTruncated && last !== undefined ? el('NextContinuationToken', encodeToken(last)) : '') +
      el('KeyCount', contents.length + commonPrefixes.length) +
      el('MaxKeys', maxKeys) +
      (delimiter !== '' ? el('Delimiter', enc(delimiter)) : '') +
      (encodingType !== undefined ? el('EncodingType', encodingType) : '') +
      el('IsTruncated', isTruncated) +
      contents.join('') +
      commonPrefixes.map((p) => `<CommonPrefixes>${el('Prefix', enc(p))}</CommonPrefixes>`).join('');
    sendXml(ctx.res, 200, xmlDoc('ListBucketResult', inner));
  }

  function encodeToken(t: { after: string; prefix: boolean }): string {
    return Buffer.from(JSON.stringify({ s: 'strict-s3', a: t.after, p: t.prefix ? 1 : 0 }), 'utf8').toString('base64');
  }

  function decodeToken(token: string): { after: string; prefix: boolean } | undefined {
    try {
      const v = JSON.parse(Buffer.from(token, 'base64').toString('utf8')) as { s?: unknown; a?: unknown; p?: unknown };
      if (v.s !== 'strict-s3' || typeof v.a !== 'string') return undefined;
      return { after: v.a, prefix: v.p === 1 };
    } catch {
      return undefined;
    }
  }

  function createMultipartUpload(ctx: Ctx, bucketName: string, key: string): void {
    const b = bucketOrThrow(bucketName);
    checkKey(key);
    const attrs = objectAttributes(ctx.req);
    const sse = requestSse(ctx.req, b);
    const uploadId = randomBytes(48).toString('base64url');
    uploads.set(uploadId, {
      bucket: bucketName,
      key,
      uploadId,
      initiated: truncateToSecond(now()),
      seq: uploadSeq++,
      parts: new Map(),
      sse,
      ...attrs,
    });
    sendXml(
      ctx.res,
      200,
      xmlDoc('InitiateMultipartUploadResult', el('Bucket', bucketName) + el('Key', key) + el('UploadId', uploadId)),
      sseHeaders(sse),
    );
  }

  /** The in-progress upload named by ?uploadId=, for this bucket and key. */
  function uploadOrThrow(bucketName: string, key: string, uploadId: string | undefined): Upload {
    bucketOrThrow(bucketName);
    if (uploadId === undefined || uploadId === '') throw err.noSuchUpload('');
    const u = uploads.get(uploadId);
    if (u === undefined || u.bucket !== bucketName || u.key !== key) throw err.noSuchUpload(uploadId);
    return u;
  }

  function uploadPart(ctx: Ctx, bucketName: string, key: string): void {
    const q = ctx.parsed.query;
    const pn = q['partNumber'];
    if (q['uploadId'] === undefined || pn === undefined) {
      throw err.invalidRequest('UploadPart needs both partNumber and uploadId');
    }
    const partNumber = Number(pn);
    const u = uploadOrThrow(bucketName, key, q['uploadId']);
    if (!/^\d+$/.test(pn) || partNumber < 1 || partNumber > 10000) {
      throw err.invalidArgument('Part number must be an integer between 1 and 10000, inclusive', 'partNumber', pn);
    }
    if (ctx.body.length > maxPartSize) {
      throw new S3Error(400, 'EntityTooLarge', 'Your proposed upload exceeds the maximum allowed size', {
        ProposedSize: ctx.body.length,
        MaxSizeAllowed: maxPartSize,
      });
    }
    verifyIntegrityHeaders(ctx.req, ctx.body);
    const part: Part = {
      partNumber,
      body: ctx.body,
      // SSE-KMS: a part's ETag is not its MD5 either.
      etag: isKms(u.sse.serverSideEncryption) ? opaqueEtag() : md5(ctx.body).toString('hex'),
      lastModified: truncateToSecond(now()),
    };
    u.parts.set(partNumber, part);
    sendEmpty(ctx.res, 200, {
      ETag: `"${part.etag}"`,
      ...sseHeaders(u.sse),
      ...echoedChecksumHeaders(ctx.req, ctx.body),
    });
  }

  function completeMultipartUpload(ctx: Ctx, bucketName: string, key: string): void {
    const uploadId = ctx.parsed.query['uploadId'] ?? '';
    const b = bucketOrThrow(bucketName);
    const xml = ctx.body.toString('utf8');
    const finished = finishedUploads.get(uploadId);
    if (!uploads.has(uploadId) && finished !== undefined && finished.bucket === bucketName && finished.key === key) {
      // A retried Complete of an upload that already completed with the same part list: S3 answers the same result.
      if (replayCompleted && finished.how === 'completed' && finished.signature === partSignature(xml)) {
        sendCompleteResult(ctx, bucketName, key, finished.etag ?? '', finished.sse);
        return;
      }
      throw err.noSuchUpload(uploadId);
    }
    const u = uploadOrThrow(bucketName, key, uploadId);
    if (!/<CompleteMultipartUpload[\s>]/.test(xml)) throw err.malformedXml();
    const listed: { partNumber: number; etag: string }[] = [];
    for (const p of xmlChildren(xml, 'Part')) {
      const pn = xmlChild(p, 'PartNumber');
      const etag = xmlChild(p, 'ETag');
      if (pn === undefined || etag === undefined || !/^\s*\d+\s*$/.test(pn)) throw err.malformedXml();
      listed.push({ partNumber: Number(pn), etag: stripQuotes(etag) });
    }
    if (listed.length === 0) throw err.malformedXml();
    for (let i = 1; i < listed.length; i++) {
      if (listed[i]!.partNumber <= listed[i - 1]!.partNumber) {
        throw new S3Error(400, 'InvalidPartOrder', 'The list of parts was not in ascending order. The parts list must be specified in order by part number.', {
          UploadId: uploadId,
        });
      }
    }
    const parts: Part[] = [];
    for (const l of listed) {
      const p = u.parts.get(l.partNumber);
      if (p === undefined || p.etag !== l.etag) {
        throw new S3Error(
          400,
          'InvalidPart',
          "One or more of the specified parts could not be found. The part might not have been uploaded, or the specified entity tag might not have matched the part's entity tag.",
          { UploadId: uploadId, PartNumber: l.partNumber, ETag: l.etag },
        );
      }
      parts.push(p);
    }
    for (let i = 0; i < parts.length - 1; i++) {
      const p = parts[i]!;
      if (p.body.length < minPartSize) {
        throw new S3Error(400, 'EntityTooSmall', 'Your proposed upload is smaller than the minimum allowed object size.', {
          ProposedSize: p.body.length,
          MinSizeAllowed: minPartSize,
          PartNumber: p.partNumber,
          ETag: p.etag,
        });
      }
    }
    // Evaluated at completion; a failure leaves the upload in place (the client aborts it).
    checkWritePreconditions(ctx.req, b.objects.get(key), key, bucketName);
    // The MD5 of the parts' binary ETags (their MD5s, unless SSE-KMS), then -N.
    const etag = `${md5(Buffer.concat(parts.map((p) => Buffer.from(p.etag, 'hex')))).toString('hex')}-${parts.length}`;
    const body = Buffer.concat(parts.map((p) => p.body));
    storeObject(b, {
      key,
      body,
      etag,
      size: body.length,
      lastModified: truncateToSecond(now()),
      contentType: u.contentType,
      metadata: u.metadata,
      headers: u.headers,
      storageClass: u.storageClass,
      partSizes: parts.map((p) => p.body.length),
      ...u.sse,
    });
    uploads.delete(uploadId);
    finishedUploads.set(uploadId, { bucket: bucketName, key, how: 'completed', signature: partSignature(xml), etag, sse: u.sse });
    sendCompleteResult(ctx, bucketName, key, etag, u.sse);
  }

  function partSignature(xml: string): string {
    return JSON.stringify(
      xmlChildren(xml, 'Part').map((p) => [xmlChild(p, 'PartNumber')?.trim(), stripQuotes(xmlChild(p, 'ETag') ?? '')]),
    );
  }

  function sendCompleteResult(ctx: Ctx, bucketName: string, key: string, etag: string, sse: ObjectSse | undefined): void {
    const host = headerString(ctx.req, 'host') ?? '127.0.0.1';
    const location = `http://${host}/${encodeURIComponent(bucketName)}/${key.split('/').map(encodeURIComponent).join('/')}`;
    sendXml(
      ctx.res,
      200,
      xmlDoc(
        'CompleteMultipartUploadResult',
        el('Location', location) + el('Bucket', bucketName) + el('Key', key) + el('ETag', `"${etag}"`),
      ),
      sseHeaders(sse),
    );
  }

  function abortMultipartUpload(ctx: Ctx, bucketName: string, key: string): void {
    const uploadId = ctx.parsed.query['uploadId'] ?? '';
    bucketOrThrow(bucketName);
    const finished = finishedUploads.get(uploadId);
    if (!uploads.has(uploadId) && finished !== undefined && finished.bucket === bucketName && finished.key === key) {
      // S3 keeps answering 204 for an upload that was already aborted or completed (for a while).
      sendEmpty(ctx.res, 204);
      return;
    }
    uploadOrThrow(bucketName, key, uploadId);
    uploads.delete(uploadId);
    finishedUploads.set(uploadId, { bucket: bucketName, key, how: 'aborted' });
    sendEmpty(ctx.res, 204);
  }

  function listMultipartUploads(ctx: Ctx, bucketName: string): void {
    bucketOrThrow(bucketName);
    const q = ctx.parsed.query;
    const prefix = q['prefix'] ?? '';
    const delimiter = q['delimiter'] ?? '';
    const keyMarker = q['key-marker'];
    const uploadIdMarker = q['upload-id-marker'];
    const encodingType = q['encoding-type'];
    const enc = (s: string) => (encodingType === 'url' ? encodeURIComponent(s).replace(/%2F/g, '/') : s);
    let maxUploads = 1000;
    if (q['max-uploads'] !== undefined) {
      const n = Number(q['max-uploads']);
      if (!/^\d+$/.test(q['max-uploads'])) throw err.invalidArgument('max-uploads must be an integer', 'max-uploads', q['max-uploads']);
      maxUploads = Math.min(n, 1000);
    }
    const all = [...uploads.values()]
      .filter((u) => u.bucket === bucketName && u.key.startsWith(prefix))
      .sort((a, z) => utf8Compare(a.key, z.key) || a.seq - z.seq);
    let markerSeq: number | undefined;
    if (keyMarker !== undefined && uploadIdMarker !== undefined && uploadIdMarker !== '') {
      const m = uploads.get(uploadIdMarker);
      markerSeq = m?.key === keyMarker ? m.seq : undefined;
    }
    const entries: string[] = [];
    const prefixes: string[] = [];
    let truncated = false;
    let lastUpload: Upload | undefined;
    for (const u of all) {
      if (keyMarker !== undefined && keyMarker !== '') {
        const c = utf8Compare(u.key, keyMarker);
        if (c < 0) continue;
        if (c === 0 && (markerSeq === undefined || u.seq <= markerSeq)) continue;
      }
      let cp: string | undefined;
      if (delimiter !== '') {
        const idx = u.key.indexOf(delimiter, prefix.length);
        if (idx !== -1) cp = u.key.slice(0, idx + delimiter.length);
      }
      if (cp !== undefined && prefixes.includes(cp)) continue;
      if (entries.length + prefixes.length >= maxUploads) {
        truncated = true;
        break;
      }
      if (cp !== undefined) {
        prefixes.push(cp);
        continue;
      }
      lastUpload = u;
      entries.push(
        `<Upload>${el('Key', enc(u.key))}${el('UploadId', u.uploadId)}` +
          `<Initiator>${el('ID', ownerId)}${el('DisplayName', 'strict-s3')}</Initiator>` +
          `<Owner>${el('ID', ownerId)}${el('DisplayName', 'strict-s3')}</Owner>` +
          `${el('StorageClass', u.storageClass)}${el('Initiated', isoTime(u.initiated))}</Upload>`,
      );
    }
    const inner =
      el('Bucket', bucketName) +
      el('KeyMarker', enc(keyMarker ?? '')) +
      el('UploadIdMarker', uploadIdMarker ?? '') +
      (truncated && lastUpload !== undefined
        ? el('NextKeyMarker', enc(lastUpload.key)) + el('NextUploadIdMarker', lastUpload.uploadId)
        : '') +
      (prefix !== '' ? el('Prefix', enc(prefix)) : '') +
      (delimiter !== '' ? el('Delimiter', enc(delimiter)) : '') +
      el('MaxUploads', maxUploads) +
      (encodingType !== undefined ? el('EncodingType', encodingType) : '') +
      el('IsTruncated', truncated) +
      entries.join('') +
      prefixes.map((p) => `<CommonPrefixes>${el('Prefix', enc(p))}</CommonPrefixes>`).join('');
    sendXml(ctx.res, 200, xmlDoc('ListMultipartUploadsResult', inner));
  }

  function listParts(ctx: Ctx, bucketName: string, key: string): void {
    const q = ctx.parsed.query;
    const u = uploadOrThrow(bucketName, key, q['uploadId']);
    const marker = q['part-number-marker'] === undefined ? 0 : Number(q['part-number-marker']);
    if (!Number.isInteger(marker) || marker < 0) {
      throw err.invalidArgument('part-number-marker must be an integer', 'part-number-marker', q['part-number-marker']);
    }
    let maxParts = 1000;
    if (q['max-parts'] !== undefined) {
      if (!/^\d+$/.test(q['max-parts'])) throw err.invalidArgument('max-parts must be an integer', 'max-parts', q['max-parts']);
      maxParts = Math.min(Number(q['max-parts']), 1000);
    }
    const all = [...u.parts.values()].filter((p) => p.partNumber > marker).sort((a, z) => a.partNumber - z.partNumber);
    const page = all.slice(0, maxParts);
    const truncated = all.length > page.length;
    const inner =
      el('Bucket', bucketName) +
      el('Key', key) +
      el('UploadId', u.uploadId) +
      `<Initiator>${el('ID', ownerId)}${el('DisplayName', 'strict-s3')}</Initiator>` +
      `<Owner>${el('ID', ownerId)}${el('DisplayName', 'strict-s3')}</Owner>` +
      el('StorageClass', u.storageClass) +
      el('PartNumberMarker', marker) +
      (page.length > 0 ? el('NextPartNumberMarker', page[page.length - 1]!.partNumber) : '') +
      el('MaxParts', maxParts) +
      el('IsTruncated', truncated) +
      page
        .map(
          (p) =>
            `<Part>${el('PartNumber', p.partNumber)}${el('LastModified', isoTime(p.lastModified))}${el('ETag', `"${p.etag}"`)}${el(
              'Size',
              p.body.length,
            )}</Part>`,
        )
        .join('');
    sendXml(ctx.res, 200, xmlDoc('ListPartsResult', inner));
  }

  function dispatch(ctx: Ctx): void {
    const { op, bucket = '', key = '' } = ctx.parsed;
    const expectedOwner = headerString(ctx.req, 'x-amz-expected-bucket-owner');
    if (expectedOwner !== undefined && op !== 'ListBuckets' && expectedOwner !== ownerId) {
      throw new S3Error(403, 'AccessDenied', 'Access Denied');
    }
    switch (op) {
      case 'ListBuckets':
        return listBuckets(ctx);
      case 'CreateBucket':
        return createBucket(ctx, bucket);
      case 'HeadBucket':
        bucketOrThrow(bucket);
        return sendEmpty(ctx.res, 200, { 'x-amz-bucket-region': 'us-east-1' });
      case 'DeleteBucket':
        return deleteBucket(ctx, bucket);
      case 'ListObjectsV2':
        return listObjectsV2(ctx, bucket);
      case 'PutObject':
        return putObject(ctx, bucket, key);
      case 'CopyObject':
        return copyObject(ctx, bucket, key);
      case 'GetObject':
        return getObject(ctx, bucket, key, false);
      case 'HeadObject':
        return getObject(ctx, bucket, key, true);
      case 'DeleteObject':
        return deleteObject(ctx, bucket, key);
      case 'DeleteObjects':
        return deleteObjects(ctx, bucket);
      case 'CreateMultipartUpload':
        return createMultipartUpload(ctx, bucket, key);
      case 'UploadPart':
        return uploadPart(ctx, bucket, key);
      case 'CompleteMultipartUpload':
        return completeMultipartUpload(ctx, bucket, key);
      case 'AbortMultipartUpload':
        return abortMultipartUpload(ctx, bucket, key);
      case 'ListMultipartUploads':
        return listMultipartUploads(ctx, bucket);
      case 'ListParts':
        return listParts(ctx, bucket, key);
      case 'Unsupported':
        throw err.notImplemented('unsupported operation');
    }
  }

  /** A response sink that swallows what the operation writes (for `after` faults). */
  function discardingResponse(real: ServerResponse): ServerResponse {
    const sink = {
      statusCode: 200,
      setHeader: () => sink,
      getHeader: (name: string) => real.getHeader(name),
      flushHeaders: () => undefined,
      write: (_c: unknown, cb?: () => void) => {
        if (typeof cb === 'function') cb();
        return true;
      },
      end: () => sink,
      socket: null,
    };
    return sink as unknown as ServerResponse;
  }

  function applyFaultAnswer(ctx: Ctx, fault: FaultSpec, resource: string): void {
    if (fault.reset === true) {
      ctx.record.status = 0;
      ctx.req.socket.destroy();
      return;
    }
    const code = fault.code ?? 'InternalError';
    const status = fault.status ?? DEFAULT_STATUS[code] ?? 500;
    ctx.record.status = status;
    ctx.record.errorCode = code;
    sendError(ctx.res, ctx.record.method, new S3Error(status, code, fault.message, {}, fault.headers ?? {}), resource);
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    baseHeaders(res);
    const method = req.method ?? 'GET';
    let parsed: Parsed;
    let body: Buffer;
    const resource = (req.url ?? '/').split('?')[0] ?? '/';
    const record: RequestRecord = {
      seq: ++requestSeq,
      op: 'Unsupported',
      method,
      url: req.url ?? '/',
      bucket: undefined,
      key: undefined,
      query: {},
      headers: { ...req.headers },
      partNumber: undefined,
      uploadId: undefined,
      bodyLength: 0,
      status: undefined,
      errorCode: undefined,
      faulted: false,
    };
    try {
      parsed = parseRequest(req);
      Object.assign(record, {
        op: parsed.op,
        bucket: parsed.bucket,
        key: parsed.key,
        query: parsed.query,
        partNumber: parsed.query['partNumber'] === undefined ? undefined : Number(parsed.query['partNumber']),
        uploadId: parsed.query['uploadId'],
      });
      requests.push(record);
      body = await readBody(req);
      record.bodyLength = body.length;
    } catch (e) {
      if (!requests.includes(record)) requests.push(record);
      // drain whatever is left so the error answer reaches the client
      req.resume();
      return finishWithError(res, record, e, resource);
    }
    const fault = drawFault(record);
    const ctx: Ctx = { req, res, parsed, body, record, fault };
    if (fault !== undefined) record.faulted = true;
    if (fault?.delayMs !== undefined) await sleep(fault.delayMs);
    const answers = fault !== undefined && (fault.reset === true || fault.status !== undefined || fault.code !== undefined);
    const isErrorFault =
      fault !== undefined &&
      (answers || (fault.delayMs === undefined && fault.truncateBodyAt === undefined && fault.corruptBody !== true));
    if (fault !== undefined && isErrorFault && fault.after !== true) {
      applyFaultAnswer(ctx, fault, resource);
      return;
    }
    try {
      if (parsed.unsupported !== undefined) throw err.notImplemented(parsed.unsupported);
      if (fault !== undefined && isErrorFault && fault.after === true) {
        const sinkCtx: Ctx = { ...ctx, res: discardingResponse(res) };
        try {
          dispatch(sinkCtx);
        } catch (e) {
          if (!(e instanceof S3Error)) throw e;
        }
        applyFaultAnswer(ctx, fault, resource);
        return;
      }
      dispatch(ctx);
      if (record.status === undefined) record.status = res.statusCode;
    } catch (e) {
      finishWithError(res, record, e, resource);
    }
  }

  function finishWithError(res: ServerResponse, record: RequestRecord, e: unknown, resource: string): void {
    let s3e: S3Error;
    if (e instanceof S3Error) {
      s3e = e;
    } else {
      const error = e instanceof Error ? e : new Error(String(e));
      internalErrors.push(error);
      s3e = new S3Error(500, 'StrictS3InternalError', `strict-s3 crashed: ${error.message}`);
    }
    record.status = s3e.status;
    record.errorCode = s3e.code;
    if (res.headersSent) {
      res.socket?.destroy();
      return;
    }
    if (s3e.status === 304) {
      res.statusCode = 304;
      for (const [k, v] of Object.entries(s3e.headers)) res.setHeader(k, v);
      res.end();
      return;
    }
    sendError(res, record.method, s3e, resource);
  }

  const server: Server = createServer((req, res) => {
    handle(req, res).catch((e: unknown) => {
      internalErrors.push(e instanceof Error ? e : new Error(String(e)));
      if (!res.headersSent) {
        res.statusCode = 500;
        res.end();
      } else {
        res.socket?.destroy();
      }
    });
  });
  // Outlive the SDK's idle keep-alive sockets, so a reused socket is never closed under a request.
  server.keepAliveTimeout = 60_000;
  server.headersTimeout = 65_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;

  const state: StrictS3State = {
    get requests() {
      return requests;
    },
    count(op) {
      if (op === undefined) return requests.length;
      if (typeof op === 'function') return requests.filter(op).length;
      return requests.filter((r) => r.op === op).length;
    },
    resetRequests() {
      requests.length = 0;
    },
    failNext(match, fault = {}) {
      return addRule(match, fault, 1);
    },
    failAlways(match, fault = {}) {
      return addRule(match, fault, Infinity);
    },
    failDeleteOfKey(key, error = {}, times = 1) {
      const rule: DeleteKeyRule = {
        key,
        code: error.code ?? 'AccessDenied',
        message: error.message ?? DEFAULT_MESSAGE[error.code ?? 'AccessDenied'] ?? 'Access Denied',
        fired: 0,
        times,
        removed: false,
      };
      deleteKeyRules.push(rule);
      return {
        get fired() {
          return rule.fired;
        },
        get pending() {
          return !rule.removed && rule.fired < rule.times;
        },
        remove() {
          rule.removed = true;
        },
      };
    },
    conflictNext(match = {}) {
      const times = match.times ?? 1;
      if (!Number.isInteger(times) || times < 1) throw new Error(`strict-s3: times must be an integer >= 1, got ${times}`);
      const rule: ConflictRule = { key: match.key, bucket: match.bucket, fired: 0, times, removed: false };
      conflictRules.push(rule);
      return {
        get fired() {
          return rule.fired;
        },
        get pending() {
          return !rule.removed && rule.fired < rule.times;
        },
        remove() {
          rule.removed = true;
        },
      };
    },
    clearFaults() {
      for (const r of faultRules) r.removed = true;
      for (const r of deleteKeyRules) r.removed = true;
      for (const r of conflictRules) r.removed = true;
      faultRules.length = 0;
      deleteKeyRules.length = 0;
      conflictRules.length = 0;
    },
    pendingFaults() {
      return (
        faultRules.filter((r) => !r.removed && r.fired < r.times).length +
        deleteKeyRules.filter((r) => !r.removed && r.fired < r.times).length +
        conflictRules.filter((r) => !r.removed && r.fired < r.times).length
      );
    },
    get internalErrors() {
      return internalErrors;
    },
    createBucket(name) {
      if (!buckets.has(name)) createBucketInternal(name);
    },
    setBucketEncryption(bucket, encryption) {
      const b = buckets.get(bucket) ?? createBucketInternal(bucket);
      if (encryption === undefined) delete b.encryption;
      else b.encryption = { ...encryption };
    },
    bucketNames() {
      return [...buckets.keys()].sort(utf8Compare);
    },
    putObject(bucket, key, body, opts = {}) {
      const b = buckets.get(bucket) ?? createBucketInternal(bucket);
      const buf = typeof body === 'string' ? Buffer.from(body, 'utf8') : body;
      const sse = sseOf(opts.encryption);
      const obj: MutableObject = {
        key,
        body: buf,
        etag: isKms(sse.serverSideEncryption) ? opaqueEtag() : md5(buf).toString('hex'),
        size: buf.length,
        lastModified: truncateToSecond(opts.lastModified ?? now()),
        contentType: opts.contentType ?? 'binary/octet-stream',
        metadata: { ...(opts.metadata ?? {}) },
        headers: {},
        storageClass: 'STANDARD',
        ...sse,
      };
      storeObject(b, obj);
      return obj;
    },
    getObject(bucket, key) {
      return buckets.get(bucket)?.objects.get(key);
    },
    deleteObject(bucket, key) {
      const b = buckets.get(bucket);
      return b === undefined ? false : removeObject(b, key);
    },
    keys(bucket, prefix = '') {
      const b = buckets.get(bucket);
      return b === undefined ? [] : sortedKeys(b).filter((k) => k.startsWith(prefix));
    },
    uploads(bucket) {
      return [...uploads.values()]
        .filter((u) => bucket === undefined || u.bucket === bucket)
        .sort((a, z) => utf8Compare(a.key, z.key) || a.seq - z.seq)
        .map(uploadInfo);
    },
  };

  return {
    endpoint: `http://127.0.0.1:${port}`,
    port,
    state,
    async close() {
      for (const t of timers) clearTimeout(t);
      timers.clear();
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    },
  };
}
