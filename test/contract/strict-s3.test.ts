// Contract tests of the strict S3 test double (test/helpers/strict-s3.ts),
// driven by the real AWS SDK v3 client (and @aws-sdk/lib-storage's Upload)
// over HTTP. They pin the S3 semantics the double promises -- multipart ETags,
// part validation, abort, ranges, conditional requests, listing order and
// paging, DeleteObjects results, error names -- and its fault hooks.
import { createHash } from 'node:crypto';
import { request as httpRequest } from 'node:http';
import { Readable } from 'node:stream';
import { crc32 } from 'node:zlib';

import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CopyObjectCommand,
  CreateBucketCommand,
  CreateMultipartUploadCommand,
  DeleteBucketCommand,
  DeleteObjectCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  GetObjectTaggingCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  ListBucketsCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  ListPartsCommand,
  PutObjectCommand,
  S3Client,
  UploadPartCommand,
  UploadPartCopyCommand,
  paginateListObjectsV2,
  type CompletedPart,
  type S3ClientConfig,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest';

import { startStrictS3, type StrictS3 } from '../helpers/strict-s3.js';

const MIN_PART = 1024; // the double's minPartSize for these tests (S3: 5 MiB)

let s3: StrictS3;
let client: S3Client;
const clients: S3Client[] = [];

function makeClient(endpoint: string, extra: Partial<S3ClientConfig> = {}): S3Client {
  const c = new S3Client({
    endpoint,
    forcePathStyle: true,
    region: 'us-east-1',
    credentials: { accessKeyId: 'x', secretAccessKey: 'y' },
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    ...extra,
  });
  clients.push(c);
  return c;
}

beforeAll(async () => {
  s3 = await startStrictS3({ minPartSize: MIN_PART });
  client = makeClient(s3.endpoint);
});

afterAll(async () => {
  for (const c of clients) c.destroy();
  await s3.close();
});

afterEach(() => {
  // A crash inside the double is a bug in the double, never an S3 answer.
  expect(s3.state.internalErrors).toEqual([]);
  s3.state.clearFaults();
});

let bucketSeq = 0;
async function newBucket(c: S3Client = client): Promise<string> {
  const name = `bucket-${++bucketSeq}-${Date.now().toString(36)}`;
  await c.send(new CreateBucketCommand({ Bucket: name }));
  return name;
}

/** The rejection of `p`, which must reject. */
type SdkError = Error & { $metadata?: { httpStatusCode?: number | undefined } };
async function rejection(p: Promise<unknown>): Promise<SdkError> {
  try {
    await p;
  } catch (e) {
    return e as SdkError;
  }
  throw new Error('expected the request to fail, it succeeded');
}

async function expectS3Error(p: Promise<unknown>, name: string, status: number): Promise<void> {
  const e = await rejection(p);
  expect({ name: e.name, status: e.$metadata?.httpStatusCode }).toEqual({ name, status });
}

const md5hex = (b: Buffer) => createHash('md5').update(b).digest('hex');
/** S3's multipart ETag, computed independently of the double: md5 of the concatenated binary part MD5s, `-N`. */
function multipartEtag(parts: Buffer[]): string {
  const digests = Buffer.concat(parts.map((p) => createHash('md5').update(p).digest()));
  return `"${createHash('md5').update(digests).digest('hex')}-${parts.length}"`;
}

function bytes(n: number, seed: number): Buffer {
  const b = Buffer.alloc(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    b[i] = x >>> 24;
  }
  return b;
}

async function getBytes(c: S3Client, bucket: string, key: string, extra: Record<string, unknown> = {}) {
  const r = await c.send(new GetObjectCommand({ Bucket: bucket, Key: key, ...extra }));
  const body = Buffer.from(await r.Body!.transformToByteArray());
  return { r, body };
}

/** A raw HTTP request to the double (for what the SDK will not send). */
function raw(
  method: string,
  path: string,
  headers: Record<string, string | number>,
  body?: Buffer,
): Promise<{ status: number; headers: Record<string, unknown>; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(`${s3.endpoint}${path}`, { method, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

async function startUpload(bucket: string, key: string, extra: Record<string, unknown> = {}): Promise<string> {
  const r = await client.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: key, ...extra }));
  expect(r.UploadId).toBeTruthy();
  return r.UploadId!;
}

async function uploadParts(bucket: string, key: string, uploadId: string, parts: Buffer[]): Promise<CompletedPart[]> {
  const out: CompletedPart[] = [];
  for (const [i, body] of parts.entries()) {
    const r = await client.send(new UploadPartCommand({ Bucket: bucket, Key: key, UploadId: uploadId, PartNumber: i + 1, Body: body }));
    expect(r.ETag).toBe(`"${md5hex(body)}"`);
    out.push({ PartNumber: i + 1, ETag: r.ETag! });
  }
  return out;
}

function complete(bucket: string, key: string, uploadId: string, parts: CompletedPart[], extra: Record<string, unknown> = {}) {
  return client.send(
    new CompleteMultipartUploadCommand({ Bucket: bucket, Key: key, UploadId: uploadId, MultipartUpload: { Parts: parts }, ...extra }),
  );
}

// ---------------------------------------------------------------------------

describe('buckets', () => {
  test('CreateBucket, HeadBucket, ListBuckets, DeleteBucket; missing buckets are NoSuchBucket / NotFound', async () => {
    const bucket = await newBucket();
    await expect(client.send(new HeadBucketCommand({ Bucket: bucket }))).resolves.toMatchObject({ BucketRegion: 'us-east-1' });
    const list = await client.send(new ListBucketsCommand({}));
    expect(list.Buckets?.map((b) => b.Name)).toContain(bucket);
    // us-east-1: re-creating a bucket you own succeeds.
    await client.send(new CreateBucketCommand({ Bucket: bucket }));

    // HEAD errors have no body: the SDK names them by status.
    await expectS3Error(client.send(new HeadBucketCommand({ Bucket: 'no-such-bucket' })), 'NotFound', 404);
    await expectS3Error(client.send(new PutObjectCommand({ Bucket: 'no-such-bucket', Key: 'k', Body: 'x' })), 'NoSuchBucket', 404);
    await expectS3Error(client.send(new GetObjectCommand({ Bucket: 'no-such-bucket', Key: 'k' })), 'NoSuchBucket', 404);
    await expectS3Error(client.send(new ListObjectsV2Command({ Bucket: 'no-such-bucket' })), 'NoSuchBucket', 404);
    await expectS3Error(client.send(new CreateMultipartUploadCommand({ Bucket: 'no-such-bucket', Key: 'k' })), 'NoSuchBucket', 404);
    await expectS3Error(client.send(new CreateBucketCommand({ Bucket: 'Invalid_Name' })), 'InvalidBucketName', 400);

    await client.send(new PutObjectCommand({ Bucket: bucket, Key: 'k', Body: 'x' }));
    await expectS3Error(client.send(new DeleteBucketCommand({ Bucket: bucket })), 'BucketNotEmpty', 409);
    await client.send(new DeleteObjectCommand({ Bucket: bucket, Key: 'k' }));
    await client.send(new DeleteBucketCommand({ Bucket: bucket }));
    await expectS3Error(client.send(new HeadBucketCommand({ Bucket: bucket })), 'NotFound', 404);
  });

  test('outside us-east-1, re-creating an owned bucket is BucketAlreadyOwnedByYou', async () => {
    const west = makeClient(s3.endpoint, { region: 'eu-west-1' });
    const bucket = await newBucket(west);
    await expectS3Error(west.send(new CreateBucketCommand({ Bucket: bucket })), 'BucketAlreadyOwnedByYou', 409);
  });

  test('a wrong x-amz-expected-bucket-owner is AccessDenied', async () => {
    const bucket = await newBucket();
    await expectS3Error(
      client.send(new PutObjectCommand({ Bucket: bucket, Key: 'k', Body: 'x', ExpectedBucketOwner: '999999999999' })),
      'AccessDenied',
      403,
    );
  });
});

describe('PutObject / GetObject / HeadObject', () => {
  test('round trip: ETag is the quoted MD5, content type, metadata, length and Last-Modified come back', async () => {
    const bucket = await newBucket();
    const body = bytes(3000, 1);
    const put = await client.send(
      new PutObjectCommand({
        Bucket: bucket,
        Key: 'dir/file.bin',
        Body: body,
        ContentType: 'application/x-test',
        CacheControl: 'max-age=60',
        Metadata: { mtime: '1700000000000', Mode: '644' },
      }),
    );
    expect(put.ETag).toBe(`"${md5hex(body)}"`);
    const before = Date.now();
    const { r, body: got } = await getBytes(client, bucket, 'dir/file.bin');
    expect(got.equals(body)).toBe(true);
    expect(r.ETag).toBe(put.ETag);
    expect(r.ContentType).toBe('application/x-test');
    expect(r.CacheControl).toBe('max-age=60');
    expect(r.ContentLength).toBe(3000);
    expect(r.Metadata).toEqual({ mtime: '1700000000000', mode: '644' });
    expect(r.LastModified).toBeInstanceOf(Date);
    expect(Math.abs(r.LastModified!.getTime() - before)).toBeLessThan(5000);
    expect(r.LastModified!.getTime() % 1000).toBe(0); // 1-second resolution, like S3

    const head = await client.send(new HeadObjectCommand({ Bucket: bucket, Key: 'dir/file.bin' }));
    expect(head).toMatchObject({ ETag: put.ETag, ContentLength: 3000, ContentType: 'application/x-test', Metadata: r.Metadata });
    expect(head.LastModified?.getTime()).toBe(r.LastModified!.getTime());

    await expectS3Error(client.send(new GetObjectCommand({ Bucket: bucket, Key: 'missing' })), 'NoSuchKey', 404);
    await expectS3Error(client.send(new HeadObjectCommand({ Bucket: bucket, Key: 'missing' })), 'NotFound', 404);
  });

  test('an empty object, and keys S3 keeps verbatim (.., //, spaces, +, %, non-ASCII, CR)', async () => {
    const bucket = await newBucket();
    const keys = ['empty', 'a/../b', './x', '//double//slash', 'sp ace+plus%25%', 'ünï/😀', 'line\r\nbreak', 'trailing/'];
    for (const key of keys) {
      await client.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: key === 'empty' ? Buffer.alloc(0) : key }));
    }
    for (const key of keys) {
      const { body } = await getBytes(client, bucket, key);
      expect(body.toString('utf8')).toBe(key === 'empty' ? '' : key);
    }
    const listed = await client.send(new ListObjectsV2Command({ Bucket: bucket }));
    expect(listed.Contents?.map((c) => c.Key)).toEqual([...keys].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b))));
    expect(s3.state.keys(bucket)).toEqual(listed.Contents?.map((c) => c.Key));
    const empty = listed.Contents?.find((c) => c.Key === 'empty');
    expect(empty).toMatchObject({ Size: 0, ETag: '"d41d8cd98f00b204e9800998ecf8427e"' });
  });

  test('Content-MD5 is verified: a wrong one is BadDigest and stores nothing', async () => {
    const bucket = await newBucket();
    const body = Buffer.from('payload');
    const good = createHash('md5').update(body).digest('base64');
    await client.send(new PutObjectCommand({ Bucket: bucket, Key: 'ok', Body: body, ContentMD5: good }));
    const wrong = createHash('md5').update('other').digest('base64');
    await expectS3Error(client.send(new PutObjectCommand({ Bucket: bucket, Key: 'bad', Body: body, ContentMD5: wrong })), 'BadDigest', 400);
    await expectS3Error(client.send(new PutObjectCommand({ Bucket: bucket, Key: 'bad', Body: body, ContentMD5: 'nope' })), 'InvalidDigest', 400);
    expect(s3.state.getObject(bucket, 'bad')).toBeUndefined();
  });

  test('a signed payload whose x-amz-content-sha256 does not match is refused', async () => {
    const bucket = await newBucket();
    const res = await raw('PUT', `/${bucket}/k`, { 'x-amz-content-sha256': '0'.repeat(64), 'content-length': 3 }, Buffer.from('abc'));
    expect(res.status).toBe(400);
    expect(res.body).toContain('<Code>XAmzContentSHA256Mismatch</Code>');
  });

  test('WHEN_REQUIRED: stream bodies arrive plain (UNSIGNED-PAYLOAD, Content-Length), no aws-chunked', async () => {
    const bucket = await newBucket();
    const body = bytes(70_000, 2);
    s3.state.resetRequests();
    await client.send(new PutObjectCommand({ Bucket: bucket, Key: 's', Body: Readable.from([body.subarray(0, 30_000), body.subarray(30_000)]), ContentLength: body.length }));
    const req = s3.state.requests.find((r) => r.op === 'PutObject')!;
    expect(req.headers['x-amz-content-sha256']).toBe('UNSIGNED-PAYLOAD');
    expect(req.headers['content-encoding']).toBeUndefined();
    expect(req.headers['content-length']).toBe('70000');
    expect(s3.state.getObject(bucket, 's')?.body.equals(body)).toBe(true);
  });

  test('WHEN_SUPPORTED: aws-chunked stream bodies are decoded and their trailing checksums verified', async () => {
    const bucket = await newBucket();
    const supported = makeClient(s3.endpoint, { requestChecksumCalculation: 'WHEN_SUPPORTED', responseChecksumValidation: 'WHEN_SUPPORTED' });
    const body = bytes(200_000, 3);
    s3.state.resetRequests();
    for (const alg of [undefined, 'CRC32C', 'SHA1', 'SHA256'] as const) {
      const key = `chunked-${alg ?? 'default'}`;
      const put = await supported.send(
        new PutObjectCommand({ Bucket: bucket, Key: key, Body: Readable.from([body]), ContentLength: body.length, ...(alg ? { ChecksumAlgorithm: alg } : {}) }),
      );
      expect(put.ETag).toBe(`"${md5hex(body)}"`);
      expect(s3.state.getObject(bucket, key)?.body.equals(body)).toBe(true);
      const { body: got } = await getBytes(supported, bucket, key);
      expect(got.equals(body)).toBe(true);
    }
    const puts = s3.state.requests.filter((r) => r.op === 'PutObject');
    expect(puts.map((r) => r.headers['content-encoding'])).toEqual(['aws-chunked', 'aws-chunked', 'aws-chunked', 'aws-chunked']);
    expect(puts.map((r) => r.headers['x-amz-trailer'])).toEqual([
      'x-amz-checksum-crc32',
      'x-amz-checksum-crc32c',
      'x-amz-checksum-sha1',
      'x-amz-checksum-sha256',
    ]);
    // Buffer bodies get a checksum header, which is verified too.
    const wrong = await rejection(
      supported.send(new PutObjectCommand({ Bucket: bucket, Key: 'w', Body: Buffer.from('abc'), ChecksumCRC32: 'AAAAAA==' })),
    );
    expect(wrong.name).toBe('BadDigest');
  });

  test('raw aws-chunked: a tampered trailer is BadDigest; a wrong decoded length is refused', async () => {
    const bucket = await newBucket();
    const data = Buffer.from('hello chunked world');
    const crc = (b: Buffer) => {
      const out = Buffer.alloc(4);
      out.writeUInt32BE(crc32(b));
      return out.toString('base64');
    };
    const frame = (checksum: string) =>
      Buffer.concat([
        Buffer.from(`${data.length.toString(16)}\r\n`),
        data,
        Buffer.from(`\r\n0\r\nx-amz-checksum-crc32:${checksum}\r\n\r\n`),
      ]);
    const headers = (len: number, decoded: number) => ({
      'content-encoding': 'aws-chunked',
      'x-amz-content-sha256': 'STREAMING-UNSIGNED-PAYLOAD-TRAILER',
      'x-amz-decoded-content-length': decoded,
      'x-amz-trailer': 'x-amz-checksum-crc32',
      'content-length': len,
    });
    const good = frame(crc(data));
    const ok = await raw('PUT', `/${bucket}/ok`, headers(good.length, data.length), good);
    expect(ok.status).toBe(200);
    expect(ok.headers['etag']).toBe(`"${md5hex(data)}"`);
    expect(s3.state.getObject(bucket, 'ok')?.body.toString()).toBe('hello chunked world');

    const bad = frame(crc(Buffer.from('other')));
    const r1 = await raw('PUT', `/${bucket}/bad`, headers(bad.length, data.length), bad);
    expect(r1.status).toBe(400);
    expect(r1.body).toContain('<Code>BadDigest</Code>');
    const r2 = await raw('PUT', `/${bucket}/bad`, headers(good.length, data.length + 1), good);
    expect(r2.status).toBe(400);
    expect(r2.body).toContain('<Code>IncompleteBody</Code>');
    const r3 = await raw('PUT', `/${bucket}/bad`, headers(5, data.length), Buffer.from('zz\r\nx'));
    expect(r3.status).toBe(400);
    expect(s3.state.getObject(bucket, 'bad')).toBeUndefined();
  });
});

describe('conditional requests', () => {
  test('PUT If-None-Match: * creates once, then 412; If-Match needs the current ETag (412 when stale, NoSuchKey when absent)', async () => {
    const bucket = await newBucket();
    const first = await client.send(new PutObjectCommand({ Bucket: bucket, Key: 'lock', Body: 'v1', IfNoneMatch: '*' }));
    await expectS3Error(client.send(new PutObjectCommand({ Bucket: bucket, Key: 'lock', Body: 'v2', IfNoneMatch: '*' })), 'PreconditionFailed', 412);
    expect(s3.state.getObject(bucket, 'lock')?.body.toString()).toBe('v1');

    const second = await client.send(new PutObjectCommand({ Bucket: bucket, Key: 'lock', Body: 'v2', IfMatch: first.ETag }));
    await expectS3Error(client.send(new PutObjectCommand({ Bucket: bucket, Key: 'lock', Body: 'v3', IfMatch: first.ETag })), 'PreconditionFailed', 412);
    expect(s3.state.getObject(bucket, 'lock')?.body.toString()).toBe('v2');
    await client.send(new PutObjectCommand({ Bucket: bucket, Key: 'lock', Body: 'v3', IfMatch: second.ETag!.replace(/"/g, '') }));
    await expectS3Error(client.send(new PutObjectCommand({ Bucket: bucket, Key: 'absent', Body: 'x', IfMatch: first.ETag })), 'NoSuchKey', 404);
  });

  test('concurrent If-None-Match: * writers: exactly one wins', async () => {
    const bucket = await newBucket();
    const results = await Promise.allSettled(
      Array.from({ length: 10 }, (_, i) =>
        client.send(new PutObjectCommand({ Bucket: bucket, Key: 'lease', Body: `writer ${i}`, IfNoneMatch: '*' })),
      ),
    );
    const won = results.flatMap((r, i) => (r.status === 'fulfilled' ? [i] : []));
    expect(won).toHaveLength(1);
    expect(results.filter((r) => r.status === 'rejected').map((r) => (r as PromiseRejectedResult).reason.name)).toEqual(
      Array(9).fill('PreconditionFailed'),
    );
    expect(s3.state.getObject(bucket, 'lease')?.body.toString()).toBe(`writer ${won[0]}`);
  });

  test('GET/HEAD: If-None-Match / If-Modified-Since → 304, If-Match / If-Unmodified-Since → 412', async () => {
    const bucket = await newBucket();
    const put = await client.send(new PutObjectCommand({ Bucket: bucket, Key: 'k', Body: 'hello' }));
    const future = new Date(Date.now() + 3_600_000);
    const past = new Date(Date.now() - 3_600_000);
    for (const Cmd of [GetObjectCommand, HeadObjectCommand]) {
      // 304 has no body: the SDK has no code to name it by.
      for (const cond of [{ IfNoneMatch: put.ETag }, { IfNoneMatch: '*' }, { IfModifiedSince: future }]) {
        const e = await rejection(client.send(new Cmd({ Bucket: bucket, Key: 'k', ...cond })));
        expect(e.$metadata?.httpStatusCode).toBe(304);
      }
      for (const cond of [{ IfMatch: '"0123"' }, { IfUnmodifiedSince: past }]) {
        const e = await rejection(client.send(new Cmd({ Bucket: bucket, Key: 'k', ...cond })));
        expect(e.$metadata?.httpStatusCode).toBe(412);
        if (Cmd === GetObjectCommand) expect(e.name).toBe('PreconditionFailed');
      }
      // satisfied conditions
      await client.send(new Cmd({ Bucket: bucket, Key: 'k', IfMatch: put.ETag, IfNoneMatch: '"other"' }));
      await client.send(new Cmd({ Bucket: bucket, Key: 'k', IfModifiedSince: past, IfUnmodifiedSince: future }));
      // S3's documented precedence: If-Match true wins over If-Unmodified-Since false ...
      await client.send(new Cmd({ Bucket: bucket, Key: 'k', IfMatch: put.ETag, IfUnmodifiedSince: past }));
      // ... and If-None-Match false wins over If-Modified-Since true (→ 304).
      const e = await rejection(client.send(new Cmd({ Bucket: bucket, Key: 'k', IfNoneMatch: put.ETag, IfModifiedSince: past })));
      expect(e.$metadata?.httpStatusCode).toBe(304);
    }
  });
});

describe('conditional writes and deletes (AWS: conditional-writes, conditional-deletes)', () => {
  const T = { timeout: 10_000 };

  test('DeleteObject If-Match: the current ETag or * deletes (204); another is 412; a missing key is 404 NoSuchKey', T, async () => {
    const bucket = await newBucket();
    const put = await client.send(new PutObjectCommand({ Bucket: bucket, Key: 'k', Body: 'x' }));
    await expectS3Error(client.send(new DeleteObjectCommand({ Bucket: bucket, Key: 'k', IfMatch: '"0123456789abcdef0123456789abcdef"' })), 'PreconditionFailed', 412);
    expect(s3.state.getObject(bucket, 'k')).toBeDefined();
    const ok = await client.send(new DeleteObjectCommand({ Bucket: bucket, Key: 'k', IfMatch: put.ETag }));
    expect(ok.$metadata.httpStatusCode).toBe(204);
    expect(s3.state.getObject(bucket, 'k')).toBeUndefined();
    await expectS3Error(client.send(new DeleteObjectCommand({ Bucket: bucket, Key: 'k', IfMatch: put.ETag })), 'NoSuchKey', 404);
    await expectS3Error(client.send(new DeleteObjectCommand({ Bucket: bucket, Key: 'k', IfMatch: '*' })), 'NoSuchKey', 404);
    s3.state.putObject(bucket, 'k', 'y');
    await client.send(new DeleteObjectCommand({ Bucket: bucket, Key: 'k', IfMatch: '*' }));
    expect(s3.state.getObject(bucket, 'k')).toBeUndefined();
    // Without If-Match a missing key is still 204.
    expect((await client.send(new DeleteObjectCommand({ Bucket: bucket, Key: 'k' }))).$metadata.httpStatusCode).toBe(204);
  });

  test('DeleteObjects per-object ETag: matching (quoted or not) or * deletes; a different one is a per-key PreconditionFailed; a missing key a per-key NoSuchKey', T, async () => {
    const bucket = await newBucket();
    const etags: Record<string, string> = {};
    for (const k of ['a', 'b', 'c', 'd', 'e']) etags[k] = s3.state.putObject(bucket, k, `body ${k}`).etag;
    const r = await client.send(
      new DeleteObjectsCommand({
        Bucket: bucket,
        Delete: {
          Objects: [
            { Key: 'a', ETag: `"${etags['a']}"` },
            { Key: 'b', ETag: etags['b'] },
            { Key: 'c', ETag: '"0123456789abcdef0123456789abcdef"' },
            { Key: 'd', ETag: '*' },
            { Key: 'gone', ETag: '"0123456789abcdef0123456789abcdef"' },
            { Key: 'gone-star', ETag: '*' },
            { Key: 'gone-plain' },
          ],
        },
      }),
    );
    expect(r.Deleted?.map((d) => d.Key)).toEqual(['a', 'b', 'd', 'gone-plain']);
    expect(r.Errors?.map((e) => [e.Key, e.Code])).toEqual([
      ['c', 'PreconditionFailed'],
      ['gone', 'NoSuchKey'],
      ['gone-star', 'NoSuchKey'],
    ]);
    expect(s3.state.keys(bucket)).toEqual(['c', 'e']);
  });

  test('CompleteMultipartUpload If-Match: stale 412, missing key 404 NoSuchKey, current ETag completes; a refused Complete leaves the upload to abort', T, async () => {
    const bucket = await newBucket();
    const old = s3.state.putObject(bucket, 'k', 'old');
    const parts = [bytes(MIN_PART, 70), bytes(10, 71)];
    const uploadId = await startUpload(bucket, 'k');
    const done = await uploadParts(bucket, 'k', uploadId, parts);
    await expectS3Error(complete(bucket, 'k', uploadId, done, { IfMatch: '"0123456789abcdef0123456789abcdef"' }), 'PreconditionFailed', 412);
    expect(s3.state.getObject(bucket, 'k')?.body.toString()).toBe('old');
    expect(s3.state.uploads(bucket).map((u) => u.uploadId)).toEqual([uploadId]);
    const other = await startUpload(bucket, 'absent');
    const otherParts = await uploadParts(bucket, 'absent', other, [bytes(10, 72)]);
    await expectS3Error(complete(bucket, 'absent', other, otherParts, { IfMatch: `"${old.etag}"` }), 'NoSuchKey', 404);
    expect(s3.state.getObject(bucket, 'absent')).toBeUndefined();
    await client.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: 'absent', UploadId: other }));
    const r = await complete(bucket, 'k', uploadId, done, { IfMatch: `"${old.etag}"` });
    expect(r.ETag).toBe(multipartEtag(parts));
    expect(s3.state.uploads(bucket)).toEqual([]);
  });

  test('If-None-Match with an entity tag on a write is NotImplemented (S3 takes only *); directory-bucket-only delete conditions are NotImplemented', T, async () => {
    const bucket = await newBucket();
    await expectS3Error(client.send(new PutObjectCommand({ Bucket: bucket, Key: 'k', Body: 'x', IfNoneMatch: '"abc"' })), 'NotImplemented', 501);
    s3.state.putObject(bucket, 'k', 'x');
    await expectS3Error(client.send(new DeleteObjectCommand({ Bucket: bucket, Key: 'k', IfMatchSize: 1 })), 'NotImplemented', 501);
    await expectS3Error(
      client.send(new DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects: [{ Key: 'k', Size: 1 }] } })),
      'NotImplemented',
      501,
    );
    expect(s3.state.getObject(bucket, 'k')).toBeDefined();
  });

  test('conflictNext: the next conditional write of a key answers 409 ConditionalRequestConflict and writes nothing; unconditional requests pass and do not use it up', T, async () => {
    const bucket = await newBucket();
    const first = await client.send(new PutObjectCommand({ Bucket: bucket, Key: 'k', Body: 'v1' }));
    const rule = s3.state.conflictNext({ key: 'k', times: 2 });
    expect(s3.state.pendingFaults()).toBe(1);
    await client.send(new PutObjectCommand({ Bucket: bucket, Key: 'k', Body: 'v2' })); // unconditional: not affected
    const v2 = s3.state.getObject(bucket, 'k')!.etag;
    expect(rule.fired).toBe(0);
    await expectS3Error(client.send(new PutObjectCommand({ Bucket: bucket, Key: 'k', Body: 'v3', IfMatch: `"${v2}"` })), 'ConditionalRequestConflict', 409);
    await expectS3Error(client.send(new DeleteObjectCommand({ Bucket: bucket, Key: 'k', IfMatch: `"${v2}"` })), 'ConditionalRequestConflict', 409);
    expect(rule.fired).toBe(2);
    expect(rule.pending).toBe(false);
    expect(s3.state.getObject(bucket, 'k')?.body.toString()).toBe('v2');
    expect(first.ETag).not.toBe(`"${v2}"`);

    // At completion: 409, the upload stays (to abort).
    const uploadId = await startUpload(bucket, 'm');
    const done = await uploadParts(bucket, 'm', uploadId, [bytes(10, 73)]);
    s3.state.conflictNext({ key: 'm' });
    await expectS3Error(complete(bucket, 'm', uploadId, done, { IfNoneMatch: '*' }), 'ConditionalRequestConflict', 409);
    expect(s3.state.getObject(bucket, 'm')).toBeUndefined();
    expect(s3.state.uploads(bucket).map((u) => u.uploadId)).toEqual([uploadId]);
    await client.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: 'm', UploadId: uploadId }));

    // In DeleteObjects: a per-key error for the conditional object only.
    s3.state.putObject(bucket, 'x', 'x');
    s3.state.conflictNext({ key: /^[kx]$/ });
    const r = await client.send(
      new DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects: [{ Key: 'k' }, { Key: 'x', ETag: '*' }] } }),
    );
    expect(r.Deleted?.map((d) => d.Key)).toEqual(['k']);
    expect(r.Errors?.map((e) => [e.Key, e.Code])).toEqual([['x', 'ConditionalRequestConflict']]);
    expect(s3.state.keys(bucket)).toEqual(['x']);

    // Bucket-scoped, and cleared with the other faults.
    const scoped = s3.state.conflictNext({ bucket: 'another-bucket' });
    await client.send(new PutObjectCommand({ Bucket: bucket, Key: 'x', Body: 'y', IfMatch: '*' }));
    expect(scoped.fired).toBe(0);
    s3.state.clearFaults();
    expect(s3.state.pendingFaults()).toBe(0);
  });

  test('a HEAD with a failed If-Match is a bodiless 412; a condition on a missing key is 404', T, async () => {
    const bucket = await newBucket();
    s3.state.putObject(bucket, 'k', 'x');
    const e = await rejection(client.send(new HeadObjectCommand({ Bucket: bucket, Key: 'k', IfMatch: '"0123"' })));
    expect({ name: e.name, status: e.$metadata?.httpStatusCode }).toEqual({ name: 'Unknown', status: 412 });
    await expectS3Error(client.send(new HeadObjectCommand({ Bucket: bucket, Key: 'none', IfMatch: '"0123"' })), 'NotFound', 404);
    await expectS3Error(client.send(new GetObjectCommand({ Bucket: bucket, Key: 'none', IfNoneMatch: '*' })), 'NoSuchKey', 404);
  });
});

describe('ranges', () => {
  test('0-byte, 1-byte and larger objects: exact bytes, Content-Range, suffix ranges, 416 InvalidRange', async () => {
    const bucket = await newBucket();
    const big = bytes(5000, 4);
    await client.send(new PutObjectCommand({ Bucket: bucket, Key: 'zero', Body: Buffer.alloc(0) }));
    await client.send(new PutObjectCommand({ Bucket: bucket, Key: 'one', Body: Buffer.from('Z') }));
    await client.send(new PutObjectCommand({ Bucket: bucket, Key: 'big', Body: big }));

    // 0 bytes: a plain GET is fine, any range is unsatisfiable.
    const z = await getBytes(client, bucket, 'zero');
    expect(z.body.length).toBe(0);
    expect(z.r.ContentLength).toBe(0);
    for (const Range of ['bytes=0-0', 'bytes=0-', 'bytes=-1']) {
      await expectS3Error(client.send(new GetObjectCommand({ Bucket: bucket, Key: 'zero', Range })), 'InvalidRange', 416);
    }

    const cases: [string, string, Buffer, string][] = [
      ['one', 'bytes=0-0', Buffer.from('Z'), 'bytes 0-0/1'],
      ['one', 'bytes=0-', Buffer.from('Z'), 'bytes 0-0/1'],
      ['one', 'bytes=-1', Buffer.from('Z'), 'bytes 0-0/1'],
      ['one', 'bytes=-100', Buffer.from('Z'), 'bytes 0-0/1'],
      ['one', 'bytes=0-99', Buffer.from('Z'), 'bytes 0-0/1'],
      ['big', 'bytes=0-0', big.subarray(0, 1), 'bytes 0-0/5000'],
      ['big', 'bytes=100-199', big.subarray(100, 200), 'bytes 100-199/5000'],
      ['big', 'bytes=4999-', big.subarray(4999), 'bytes 4999-4999/5000'],
      ['big', 'bytes=4000-9999', big.subarray(4000), 'bytes 4000-4999/5000'],
      ['big', 'bytes=-10', big.subarray(4990), 'bytes 4990-4999/5000'],
      ['big', 'bytes=-5000', big, 'bytes 0-4999/5000'],
      ['big', 'bytes=-6000', big, 'bytes 0-4999/5000'],
    ];
    for (const [key, Range, expected, contentRange] of cases) {
      const { r, body } = await getBytes(client, bucket, key, { Range });
      expect({ Range, hex: body.toString('hex'), contentRange: r.ContentRange, len: r.ContentLength, status: r.$metadata.httpStatusCode }).toEqual({
        Range,
        hex: expected.toString('hex'),
        contentRange,
        len: expected.length,
        status: 206,
      });
    }
    for (const Range of ['bytes=1-', 'bytes=1-1', 'bytes=-0']) {
      await expectS3Error(client.send(new GetObjectCommand({ Bucket: bucket, Key: 'one', Range })), 'InvalidRange', 416);
    }
    await expectS3Error(client.send(new GetObjectCommand({ Bucket: bucket, Key: 'big', Range: 'bytes=5000-5001' })), 'InvalidRange', 416);
    // A syntactically invalid range is ignored: the whole object, 200.
    const inv = await getBytes(client, bucket, 'big', { Range: 'bytes=10-5' });
    expect(inv.r.$metadata.httpStatusCode).toBe(200);
    expect(inv.body.equals(big)).toBe(true);
    // HEAD with a range answers the range's headers.
    const head = await client.send(new HeadObjectCommand({ Bucket: bucket, Key: 'big', Range: 'bytes=10-19' }));
    expect({ len: head.ContentLength, cr: head.ContentRange }).toEqual({ len: 10, cr: 'bytes 10-19/5000' });
  });

  test('multipart object: ranges across and exactly on part boundaries; GetObject/HeadObject partNumber', async () => {
    const bucket = await newBucket();
    const parts = [bytes(MIN_PART, 5), bytes(MIN_PART + 500, 6), bytes(7, 7)];
    const all = Buffer.concat(parts);
    const uploadId = await startUpload(bucket, 'mp');
    await complete(bucket, 'mp', uploadId, await uploadParts(bucket, 'mp', uploadId, parts));
    const b1 = MIN_PART; // first byte of part 2
    const b2 = MIN_PART * 2 + 500; // first byte of part 3
    for (const [start, end] of [
      [0, b1 - 1],
      [b1, b2 - 1],
      [b2, all.length - 1],
      [b1 - 1, b1],
      [b2 - 1, b2],
      [b1 - 3, b2 + 2],
    ] as const) {
      const { body, r } = await getBytes(client, bucket, 'mp', { Range: `bytes=${start}-${end}` });
      expect(body.equals(all.subarray(start, end + 1))).toBe(true);
      expect(r.ContentRange).toBe(`bytes ${start}-${end}/${all.length}`);
    }
    const tail = await getBytes(client, bucket, 'mp', { Range: 'bytes=-7' });
    expect(tail.body.equals(parts[2]!)).toBe(true);

    for (const [i, part] of parts.entries()) {
      const { r, body } = await getBytes(client, bucket, 'mp', { PartNumber: i + 1 });
      expect(body.equals(part)).toBe(true);
      expect(r.PartsCount).toBe(3);
      expect(r.$metadata.httpStatusCode).toBe(206);
      const head = await client.send(new HeadObjectCommand({ Bucket: bucket, Key: 'mp', PartNumber: i + 1 }));
      expect({ len: head.ContentLength, parts: head.PartsCount }).toEqual({ len: part.length, parts: 3 });
    }
    await expectS3Error(client.send(new GetObjectCommand({ Bucket: bucket, Key: 'mp', PartNumber: 4 })), 'InvalidPartNumber', 416);
    await expectS3Error(
      client.send(new GetObjectCommand({ Bucket: bucket, Key: 'mp', PartNumber: 1, Range: 'bytes=0-1' })),
      'InvalidRequest',
      400,
    );
  });
});

describe('ListObjectsV2', () => {
  test('2,500 keys: pages of 1,000 in UTF-8 byte order, KeyCount, IsTruncated, opaque continuation tokens', async () => {
    const bucket = await newBucket();
    // Names whose byte order differs from UTF-16 / locale order: case, '.' vs '/',
    // astral characters (UTF-16 surrogates sort below U+FF5E; their UTF-8 sorts above).
    const specials = ['utils.ts', 'utils/a.ts', 'utils-x', 'Zeta', 'alpha', 'éclair', '\u{1F600}', '\uFF5E', 'a b', 'a+b', 'a%b'];
    const keys = [...specials];
    for (let i = 0; keys.length < 2500; i++) keys.push(`f/${(i * 7919) % 100000}-${i % 3 === 0 ? 'X' : 'y'}`);
    for (const k of keys) s3.state.putObject(bucket, k, k);
    // a few through the SDK too
    for (const k of ['f/0-X', 'utils.ts']) await client.send(new PutObjectCommand({ Bucket: bucket, Key: k, Body: k }));
    const expected = [...keys].sort((a, b) => Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8')));
    expect(expected.indexOf('\uFF5E')).toBeLessThan(expected.indexOf('\u{1F600}'));

    const pages: { count: number | undefined; truncated: boolean | undefined; n: number }[] = [];
    const seen: string[] = [];
    let token: string | undefined;
    do {
      const r = await client.send(new ListObjectsV2Command({ Bucket: bucket, ContinuationToken: token }));
      pages.push({ count: r.KeyCount, truncated: r.IsTruncated, n: r.Contents?.length ?? 0 });
      for (const c of r.Contents ?? []) {
        seen.push(c.Key!);
        expect(c.ETag).toBe(`"${md5hex(Buffer.from(c.Key!, 'utf8'))}"`);
        expect(c.Size).toBe(Buffer.byteLength(c.Key!));
        expect(c.LastModified).toBeInstanceOf(Date);
      }
      token = r.NextContinuationToken;
      if (r.IsTruncated) expect(token).toBeTruthy();
      else expect(token).toBeUndefined();
    } while (token !== undefined);
    expect(pages).toEqual([
      { count: 1000, truncated: true, n: 1000 },
      { count: 1000, truncated: true, n: 1000 },
      { count: 500, truncated: false, n: 500 },
    ]);
    expect(seen).toEqual(expected);

    // The SDK paginator, with small pages and a prefix.
    const viaPaginator: string[] = [];
    for await (const page of paginateListObjectsV2({ client, pageSize: 333 }, { Bucket: bucket, Prefix: 'f/' })) {
      expect(page.KeyCount).toBeLessThanOrEqual(333);
      for (const c of page.Contents ?? []) viaPaginator.push(c.Key!);
    }
    expect(viaPaginator).toEqual(expected.filter((k) => k.startsWith('f/')));

    // StartAfter
    const after = await client.send(new ListObjectsV2Command({ Bucket: bucket, StartAfter: 'utils.ts', MaxKeys: 3 }));
    const i = expected.indexOf('utils.ts');
    expect(after.Contents?.map((c) => c.Key)).toEqual(expected.slice(i + 1, i + 4));
    expect(after.StartAfter).toBe('utils.ts');

    // A token the double did not issue.
    await expectS3Error(client.send(new ListObjectsV2Command({ Bucket: bucket, ContinuationToken: 'bogus' })), 'InvalidArgument', 400);
  });

  test('delimiter: CommonPrefixes count toward MaxKeys and are not repeated across pages', async () => {
    const bucket = await newBucket();
    const keys = ['a/1', 'a/2', 'a/3', 'b', 'c/1', 'c/d/2', 'd', 'e/1'];
    for (const k of keys) s3.state.putObject(bucket, k, k);
    const items: string[] = [];
    let token: string | undefined;
    do {
      const r = await client.send(new ListObjectsV2Command({ Bucket: bucket, Delimiter: '/', MaxKeys: 2, ContinuationToken: token }));
      expect(r.KeyCount).toBe((r.Contents?.length ?? 0) + (r.CommonPrefixes?.length ?? 0));
      items.push(...(r.Contents ?? []).map((c) => c.Key!), ...(r.CommonPrefixes ?? []).map((p) => `[${p.Prefix}]`));
      token = r.NextContinuationToken;
    } while (token !== undefined);
    expect(items.sort()).toEqual(['[a/]', '[c/]', '[e/]', 'b', 'd']);
    const sub = await client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: 'c/', Delimiter: '/' }));
    expect(sub.Contents?.map((c) => c.Key)).toEqual(['c/1']);
    expect(sub.CommonPrefixes?.map((p) => p.Prefix)).toEqual(['c/d/']);
  });
});

describe('DeleteObject / DeleteObjects', () => {
  test('DeleteObject answers 204 whether or not the key exists', async () => {
    const bucket = await newBucket();
    await client.send(new PutObjectCommand({ Bucket: bucket, Key: 'k', Body: 'x' }));
    const r1 = await client.send(new DeleteObjectCommand({ Bucket: bucket, Key: 'k' }));
    const r2 = await client.send(new DeleteObjectCommand({ Bucket: bucket, Key: 'k' }));
    expect([r1.$metadata.httpStatusCode, r2.$metadata.httpStatusCode]).toEqual([204, 204]);
    expect(s3.state.getObject(bucket, 'k')).toBeUndefined();
  });

  test('per-key results: Deleted for existing and missing keys, Errors for refused ones; Quiet reports only errors', async () => {
    const bucket = await newBucket();
    for (const k of ['a', 'b', 'c', 'd', 'x&y<z>']) s3.state.putObject(bucket, k, k);
    s3.state.resetRequests();
    const refused = s3.state.failDeleteOfKey('b');
    const r = await client.send(
      new DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects: [{ Key: 'a' }, { Key: 'b' }, { Key: 'missing' }, { Key: 'x&y<z>' }] } }),
    );
    expect(r.Deleted?.map((d) => d.Key)).toEqual(['a', 'missing', 'x&y<z>']);
    expect(r.Errors).toEqual([{ Key: 'b', Code: 'AccessDenied', Message: 'Access Denied' }]);
    expect(refused.fired).toBe(1);
    expect(s3.state.keys(bucket)).toEqual(['b', 'c', 'd']);
    // What the SDK sends even with WHEN_REQUIRED: a CRC32 checksum header, no Content-MD5.
    const sent = s3.state.requests.find((q) => q.op === 'DeleteObjects')!;
    expect(sent.headers['x-amz-checksum-crc32']).toBeTruthy();
    expect(sent.headers['content-md5']).toBeUndefined();

    s3.state.failDeleteOfKey(/^c$/, { code: 'InternalError', message: 'try again' });
    const quiet = await client.send(
      new DeleteObjectsCommand({ Bucket: bucket, Delete: { Quiet: true, Objects: [{ Key: 'b' }, { Key: 'c' }, { Key: 'd' }] } }),
    );
    expect(quiet.Deleted).toBeUndefined();
    expect(quiet.Errors).toEqual([{ Key: 'c', Code: 'InternalError', Message: 'try again' }]);
    expect(s3.state.keys(bucket)).toEqual(['c']);
  });

  test('DeleteObjects needs Content-MD5 or a checksum header (raw), and either is verified', async () => {
    const bucket = await newBucket();
    s3.state.putObject(bucket, 'k', 'x');
    const xml = Buffer.from(`<Delete xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Object><Key>k</Key></Object></Delete>`);
    const none = await raw('POST', `/${bucket}?delete`, { 'content-length': xml.length }, xml);
    expect(none.status).toBe(400);
    expect(none.body).toContain('<Code>InvalidRequest</Code>');
    const badMd5 = await raw('POST', `/${bucket}?delete`, { 'content-md5': createHash('md5').update('z').digest('base64') }, xml);
    expect(badMd5.body).toContain('<Code>BadDigest</Code>');
    expect(s3.state.getObject(bucket, 'k')).toBeDefined();
    const ok = await raw('POST', `/${bucket}?delete`, { 'content-md5': createHash('md5').update(xml).digest('base64') }, xml);
    expect(ok.status).toBe(200);
    expect(ok.body).toContain('<Deleted><Key>k</Key></Deleted>');
    expect(s3.state.getObject(bucket, 'k')).toBeUndefined();
  });
});

describe('multipart uploads', () => {
  test('complete: ETag is md5-of-part-md5s-N, bytes are the parts, metadata from CreateMultipartUpload; listings follow', async () => {
    const bucket = await newBucket();
    const parts = [bytes(MIN_PART, 10), bytes(MIN_PART * 2 + 3, 11), bytes(1, 12)];
    const uploadId = await startUpload(bucket, 'obj.bin', { ContentType: 'application/x-mp', Metadata: { origin: 'test' } });
    const done = await uploadParts(bucket, 'obj.bin', uploadId, parts);

    const listed = await client.send(new ListMultipartUploadsCommand({ Bucket: bucket }));
    expect(listed.Uploads?.map((u) => [u.Key, u.UploadId])).toEqual([['obj.bin', uploadId]]);
    expect(listed.Uploads?.[0]?.Initiated).toBeInstanceOf(Date);
    const lp = await client.send(new ListPartsCommand({ Bucket: bucket, Key: 'obj.bin', UploadId: uploadId }));
    expect(lp.Parts?.map((p) => [p.PartNumber, p.ETag, p.Size])).toEqual(done.map((d, i) => [d.PartNumber, d.ETag, parts[i]!.length]));
    expect(lp.IsTruncated).toBe(false);

    const r = await complete(bucket, 'obj.bin', uploadId, done);
    expect(r.ETag).toBe(multipartEtag(parts));
    expect(r).toMatchObject({ Bucket: bucket, Key: 'obj.bin' });
    const { r: got, body } = await getBytes(client, bucket, 'obj.bin');
    expect(body.equals(Buffer.concat(parts))).toBe(true);
    expect({ etag: got.ETag, type: got.ContentType, meta: got.Metadata }).toEqual({
      etag: multipartEtag(parts),
      type: 'application/x-mp',
      meta: { origin: 'test' },
    });
    const list = await client.send(new ListObjectsV2Command({ Bucket: bucket }));
    expect(list.Contents?.map((c) => [c.Key, c.ETag, c.Size])).toEqual([['obj.bin', multipartEtag(parts), Buffer.concat(parts).length]]);
    expect((await client.send(new ListMultipartUploadsCommand({ Bucket: bucket }))).Uploads).toBeUndefined();

    // After completion the upload is gone for parts and listing ...
    await expectS3Error(
      client.send(new UploadPartCommand({ Bucket: bucket, Key: 'obj.bin', UploadId: uploadId, PartNumber: 4, Body: 'x' })),
      'NoSuchUpload',
      404,
    );
    await expectS3Error(client.send(new ListPartsCommand({ Bucket: bucket, Key: 'obj.bin', UploadId: uploadId })), 'NoSuchUpload', 404);
    // ... but a retried Complete with the same part list answers the same result (as S3 does).
    expect((await complete(bucket, 'obj.bin', uploadId, done)).ETag).toBe(multipartEtag(parts));
    await expectS3Error(complete(bucket, 'obj.bin', uploadId, done.slice(0, 1)), 'NoSuchUpload', 404);
  });

  test('one part (smaller than the minimum: the last part may be) gives "<md5 of its md5>-1"', async () => {
    const bucket = await newBucket();
    const part = Buffer.from('tiny');
    const uploadId = await startUpload(bucket, 'one');
    const r = await complete(bucket, 'one', uploadId, await uploadParts(bucket, 'one', uploadId, [part]));
    expect(r.ETag).toBe(multipartEtag([part]));
    expect(r.ETag).not.toBe(`"${md5hex(part)}"`);
  });

  test('refusals: EntityTooSmall, InvalidPart (wrong ETag, missing part), InvalidPartOrder, MalformedXML; the upload survives them', async () => {
    const bucket = await newBucket();
    const uploadId = await startUpload(bucket, 'k');
    const parts = [bytes(MIN_PART - 1, 20), bytes(MIN_PART, 21), bytes(10, 22)];
    const done = await uploadParts(bucket, 'k', uploadId, parts);
    const [p1, p2, p3] = done as [CompletedPart, CompletedPart, CompletedPart];

    const tooSmall = await rejection(complete(bucket, 'k', uploadId, [p1, p2, p3]));
    expect(tooSmall.name).toBe('EntityTooSmall');
    expect(tooSmall.$metadata?.httpStatusCode).toBe(400);
    await expectS3Error(complete(bucket, 'k', uploadId, [p2, { PartNumber: 3, ETag: `"${md5hex(Buffer.from('nope'))}"` }]), 'InvalidPart', 400);
    await expectS3Error(complete(bucket, 'k', uploadId, [p2, { PartNumber: 7, ETag: p3.ETag }]), 'InvalidPart', 400);
    await expectS3Error(complete(bucket, 'k', uploadId, [p3, p2]), 'InvalidPartOrder', 400);
    await expectS3Error(complete(bucket, 'k', uploadId, [p2, p2]), 'InvalidPartOrder', 400);
    await expectS3Error(complete(bucket, 'k', uploadId, []), 'MalformedXML', 400);
    await expectS3Error(
      client.send(new UploadPartCommand({ Bucket: bucket, Key: 'k', UploadId: uploadId, PartNumber: 10001, Body: 'x' })),
      'InvalidArgument',
      400,
    );
    await expectS3Error(
      client.send(new UploadPartCommand({ Bucket: bucket, Key: 'k', UploadId: uploadId, PartNumber: 0, Body: 'x' })),
      'InvalidArgument',
      400,
    );
    expect(s3.state.getObject(bucket, 'k')).toBeUndefined();
    expect(s3.state.uploads(bucket)).toHaveLength(1);

    // Parts left out are dropped; ETag counts only the listed parts.
    const r = await complete(bucket, 'k', uploadId, [p2, p3]);
    expect(r.ETag).toBe(multipartEtag([parts[1]!, parts[2]!]));
    expect(s3.state.getObject(bucket, 'k')?.body.equals(Buffer.concat([parts[1]!, parts[2]!]))).toBe(true);
  });

  test('re-uploading a part number replaces it: the old ETag becomes InvalidPart', async () => {
    const bucket = await newBucket();
    const uploadId = await startUpload(bucket, 'k');
    const [old] = await uploadParts(bucket, 'k', uploadId, [bytes(MIN_PART, 30)]);
    const [fresh] = await uploadParts(bucket, 'k', uploadId, [bytes(MIN_PART, 31)]);
    await expectS3Error(complete(bucket, 'k', uploadId, [old!]), 'InvalidPart', 400);
    await complete(bucket, 'k', uploadId, [fresh!]);
    expect(s3.state.getObject(bucket, 'k')?.body.equals(bytes(MIN_PART, 31))).toBe(true);
  });

  test('abort: 204, then ListMultipartUploads shows none and UploadPart / Complete / ListParts are NoSuchUpload', async () => {
    const bucket = await newBucket();
    const uploadId = await startUpload(bucket, 'k');
    const done = await uploadParts(bucket, 'k', uploadId, [bytes(MIN_PART, 40)]);
    const other = await startUpload(bucket, 'keep');
    const ab = await client.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: 'k', UploadId: uploadId }));
    expect(ab.$metadata.httpStatusCode).toBe(204);
    const after = await client.send(new ListMultipartUploadsCommand({ Bucket: bucket, Prefix: 'k' }));
    expect(after.Uploads?.map((u) => u.UploadId)).toEqual([other]);
    expect((await client.send(new ListMultipartUploadsCommand({ Bucket: bucket, Prefix: 'k/' }))).Uploads).toBeUndefined();
    await expectS3Error(
      client.send(new UploadPartCommand({ Bucket: bucket, Key: 'k', UploadId: uploadId, PartNumber: 2, Body: 'x' })),
      'NoSuchUpload',
      404,
    );
    await expectS3Error(complete(bucket, 'k', uploadId, done), 'NoSuchUpload', 404);
    await expectS3Error(client.send(new ListPartsCommand({ Bucket: bucket, Key: 'k', UploadId: uploadId })), 'NoSuchUpload', 404);
    expect(s3.state.getObject(bucket, 'k')).toBeUndefined();
    // Aborting again is still 204 (S3 does so for a while); an unknown id, or another key's, is NoSuchUpload.
    await client.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: 'k', UploadId: uploadId }));
    await expectS3Error(client.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: 'k', UploadId: 'nope' })), 'NoSuchUpload', 404);
    await expectS3Error(client.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: 'k', UploadId: other })), 'NoSuchUpload', 404);
    await client.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: 'keep', UploadId: other }));
    expect(s3.state.uploads(bucket)).toEqual([]);
  });

  test('ListMultipartUploads and ListParts page; Complete honours If-None-Match: *', async () => {
    const bucket = await newBucket();
    const ids: string[] = [];
    for (const k of ['p/a', 'p/b', 'p/b', 'q/c']) ids.push(await startUpload(bucket, k));
    const seen: string[] = [];
    let keyMarker: string | undefined;
    let idMarker: string | undefined;
    for (;;) {
      const r = await client.send(
        new ListMultipartUploadsCommand({ Bucket: bucket, Prefix: 'p/', MaxUploads: 2, KeyMarker: keyMarker, UploadIdMarker: idMarker }),
      );
      seen.push(...(r.Uploads ?? []).map((u) => u.UploadId!));
      if (!r.IsTruncated) break;
      keyMarker = r.NextKeyMarker;
      idMarker = r.NextUploadIdMarker;
    }
    expect(seen).toEqual(ids.slice(0, 3));

    const uploadId = ids[3]!;
    const parts = Array.from({ length: 5 }, (_, i) => bytes(MIN_PART, 50 + i));
    const done = await uploadParts(bucket, 'q/c', uploadId, parts);
    const numbers: number[] = [];
    let marker: string | undefined;
    for (;;) {
      const r = await client.send(new ListPartsCommand({ Bucket: bucket, Key: 'q/c', UploadId: uploadId, MaxParts: 2, PartNumberMarker: marker }));
      numbers.push(...(r.Parts ?? []).map((p) => p.PartNumber!));
      if (!r.IsTruncated) break;
      marker = r.NextPartNumberMarker;
    }
    expect(numbers).toEqual([1, 2, 3, 4, 5]);

    s3.state.putObject(bucket, 'q/c', 'already there');
    await expectS3Error(complete(bucket, 'q/c', uploadId, done, { IfNoneMatch: '*' }), 'PreconditionFailed', 412);
    expect(s3.state.getObject(bucket, 'q/c')?.body.toString()).toBe('already there');
    await complete(bucket, 'q/c', uploadId, done);
    expect(s3.state.getObject(bucket, 'q/c')?.etag).toBe(multipartEtag(parts).replace(/"/g, ''));
  });

  test('an uploadId is bound to its key; maxPartSize gives EntityTooLarge', async () => {
    const small = await startStrictS3({ minPartSize: 1, maxPartSize: 100, maxObjectSize: 200, buckets: ['b'] });
    try {
      const c = makeClient(small.endpoint);
      const { UploadId } = await c.send(new CreateMultipartUploadCommand({ Bucket: 'b', Key: 'k' }));
      await expectS3Error(c.send(new UploadPartCommand({ Bucket: 'b', Key: 'other', UploadId, PartNumber: 1, Body: 'x' })), 'NoSuchUpload', 404);
      await expectS3Error(
        c.send(new UploadPartCommand({ Bucket: 'b', Key: 'k', UploadId, PartNumber: 1, Body: Buffer.alloc(101) })),
        'EntityTooLarge',
        400,
      );
      await c.send(new UploadPartCommand({ Bucket: 'b', Key: 'k', UploadId, PartNumber: 1, Body: Buffer.alloc(100) }));
      await expectS3Error(c.send(new PutObjectCommand({ Bucket: 'b', Key: 'p', Body: Buffer.alloc(201) })), 'EntityTooLarge', 400);
    } finally {
      await small.close();
    }
  });
});

describe('fault hooks and request counters', () => {
  test('the 3rd UploadPart answers 500 once: the SDK retries it, the counters show it', async () => {
    const bucket = await newBucket();
    const uploadId = await startUpload(bucket, 'k');
    s3.state.resetRequests();
    const rule = s3.state.failNext({ op: 'UploadPart', nth: 3 });
    const parts = Array.from({ length: 5 }, (_, i) => bytes(MIN_PART, 60 + i));
    const done = await uploadParts(bucket, 'k', uploadId, parts);
    expect(rule.fired).toBe(1);
    expect(rule.pending).toBe(false);
    expect(s3.state.count('UploadPart')).toBe(6);
    const ups = s3.state.requests.filter((r) => r.op === 'UploadPart');
    expect(ups.map((r) => [r.partNumber, r.status, r.faulted])).toEqual([
      [1, 200, false],
      [2, 200, false],
      [3, 500, true],
      [3, 200, false],
      [4, 200, false],
      [5, 200, false],
    ]);
    expect(ups[2]!.errorCode).toBe('InternalError');
    expect((await complete(bucket, 'k', uploadId, done)).ETag).toBe(multipartEtag(parts));
    expect(s3.state.count((r) => r.op === 'UploadPart' && r.partNumber === 3)).toBe(2);
  });

  test('without retries the fault reaches the caller with its S3 error name', async () => {
    const bucket = await newBucket();
    const once = makeClient(s3.endpoint, { maxAttempts: 1 });
    const uploadId = await startUpload(bucket, 'k');
    s3.state.failNext({ op: 'UploadPart', partNumber: 2 }, { status: 503, code: 'SlowDown' });
    await once.send(new UploadPartCommand({ Bucket: bucket, Key: 'k', UploadId: uploadId, PartNumber: 1, Body: 'a' }));
    await expectS3Error(once.send(new UploadPartCommand({ Bucket: bucket, Key: 'k', UploadId: uploadId, PartNumber: 2, Body: 'b' })), 'SlowDown', 503);
    s3.state.failNext('AbortMultipartUpload', { status: 403, code: 'AccessDenied' });
    await expectS3Error(once.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: 'k', UploadId: uploadId })), 'AccessDenied', 403);
    expect(s3.state.uploads(bucket).map((u) => u.uploadId)).toEqual([uploadId]); // not aborted
    await once.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: 'k', UploadId: uploadId }));
    expect(s3.state.uploads(bucket)).toEqual([]);
  });

  test('failAlways with a key matcher, times, and remove()', async () => {
    const bucket = await newBucket();
    const once = makeClient(s3.endpoint, { maxAttempts: 1 });
    const rule = s3.state.failAlways({ op: 'PutObject', key: /^locked\// }, { status: 403, code: 'AccessDenied' });
    await once.send(new PutObjectCommand({ Bucket: bucket, Key: 'free', Body: 'x' }));
    for (let i = 0; i < 3; i++) {
      await expectS3Error(once.send(new PutObjectCommand({ Bucket: bucket, Key: 'locked/a', Body: 'x' })), 'AccessDenied', 403);
    }
    expect(rule.fired).toBe(3);
    rule.remove();
    await once.send(new PutObjectCommand({ Bucket: bucket, Key: 'locked/a', Body: 'x' }));
    const twice = s3.state.failNext({ op: 'GetObject', times: 2 }, { status: 500 });
    await expectS3Error(once.send(new GetObjectCommand({ Bucket: bucket, Key: 'free' })), 'InternalError', 500);
    await expectS3Error(once.send(new GetObjectCommand({ Bucket: bucket, Key: 'free' })), 'InternalError', 500);
    await once.send(new GetObjectCommand({ Bucket: bucket, Key: 'free' })).then((r) => r.Body!.transformToString());
    expect(twice.fired).toBe(2);
    expect(s3.state.pendingFaults()).toBe(0);
  });

  test('reset before and after applying: a lost PutObject answer is retried; a lost Complete answer is replayed', async () => {
    const bucket = await newBucket();
    s3.state.resetRequests();
    s3.state.failNext('PutObject', { reset: true });
    await client.send(new PutObjectCommand({ Bucket: bucket, Key: 'k', Body: 'x' }));
    expect(s3.state.requests.map((r) => [r.op, r.status])).toEqual([
      ['PutObject', 0],
      ['PutObject', 200],
    ]);

    const uploadId = await startUpload(bucket, 'mp');
    const parts = [bytes(MIN_PART, 70), bytes(5, 71)];
    const done = await uploadParts(bucket, 'mp', uploadId, parts);
    s3.state.failNext('CompleteMultipartUpload', { after: true, reset: true });
    const r = await complete(bucket, 'mp', uploadId, done);
    expect(r.ETag).toBe(multipartEtag(parts));
    expect(s3.state.count('CompleteMultipartUpload')).toBe(2);

    // With replay off, the retried Complete of a completed upload is NoSuchUpload -- though the object exists.
    const strict = await startStrictS3({ minPartSize: 1, replayCompletedUploads: false, buckets: ['b'] });
    try {
      const c = makeClient(strict.endpoint);
      const { UploadId } = await c.send(new CreateMultipartUploadCommand({ Bucket: 'b', Key: 'k' }));
      const p = await c.send(new UploadPartCommand({ Bucket: 'b', Key: 'k', UploadId, PartNumber: 1, Body: 'abc' }));
      strict.state.failNext('CompleteMultipartUpload', { after: true, status: 500 });
      await expectS3Error(
        c.send(new CompleteMultipartUploadCommand({ Bucket: 'b', Key: 'k', UploadId, MultipartUpload: { Parts: [{ PartNumber: 1, ETag: p.ETag! }] } })),
        'NoSuchUpload',
        404,
      );
      expect(strict.state.getObject('b', 'k')?.body.toString()).toBe('abc');
    } finally {
      await strict.close();
    }
  });

  test('CompleteMultipartUpload answering 200 with an error body: the SDK treats it as an error (and retries)', async () => {
    const bucket = await newBucket();
    const uploadId = await startUpload(bucket, 'k');
    const done = await uploadParts(bucket, 'k', uploadId, [Buffer.from('abc')]);
    s3.state.resetRequests();
    s3.state.failNext('CompleteMultipartUpload', { status: 200, code: 'InternalError' });
    const r = await complete(bucket, 'k', uploadId, done);
    expect(r.ETag).toBe(multipartEtag([Buffer.from('abc')]));
    expect(s3.state.requests.map((q) => [q.status, q.errorCode])).toEqual([
      [200, 'InternalError'],
      [200, undefined],
    ]);
  });

  test('GetObject body faults: truncated body, flipped byte, delay', async () => {
    const bucket = await newBucket();
    const body = bytes(10_000, 80);
    s3.state.putObject(bucket, 'k', body);
    s3.state.failNext('GetObject', { truncateBodyAt: 4000 });
    const r = await client.send(new GetObjectCommand({ Bucket: bucket, Key: 'k' }));
    expect(r.ContentLength).toBe(10_000);
    await expect(r.Body!.transformToByteArray()).rejects.toThrow();

    s3.state.failNext('GetObject', { corruptBody: true });
    const { body: corrupted } = await getBytes(client, bucket, 'k');
    expect(corrupted.length).toBe(body.length);
    expect(corrupted.equals(body)).toBe(false);
    expect([...corrupted].filter((b, i) => b !== body[i])).toHaveLength(1);

    s3.state.failNext('HeadObject', { delayMs: 150 });
    const t0 = Date.now();
    await client.send(new HeadObjectCommand({ Bucket: bucket, Key: 'k' }));
    expect(Date.now() - t0).toBeGreaterThanOrEqual(140);
  });

  test('unsupported operations answer 501 NotImplemented instead of pretending', async () => {
    const bucket = await newBucket();
    s3.state.putObject(bucket, 'k', 'x');
    s3.state.resetRequests();
    await expectS3Error(client.send(new UploadPartCopyCommand({ Bucket: bucket, Key: 'k2', UploadId: 'u', PartNumber: 1, CopySource: `${bucket}/k` })), 'NotImplemented', 501);
    await expectS3Error(client.send(new GetObjectTaggingCommand({ Bucket: bucket, Key: 'k' })), 'NotImplemented', 501);
    await expectS3Error(client.send(new GetObjectCommand({ Bucket: bucket, Key: 'k', VersionId: 'v1' })), 'NotImplemented', 501);
    expect(s3.state.count('Unsupported')).toBe(3);
    expect(s3.state.requests.filter((r) => r.op === 'Unsupported').map((r) => [r.method, r.status, r.errorCode])).toEqual([
      ['PUT', 501, 'NotImplemented'],
      ['GET', 501, 'NotImplemented'],
      ['GET', 501, 'NotImplemented'],
    ]);
  });
});

describe('CopyObject (AWS: CopyObject API reference)', () => {
  test('copies bytes, metadata and content type (directive COPY), answers the MD5 ETag in CopyObjectResult; REPLACE takes the request\'s', { timeout: 10_000 }, async () => {
    const bucket = await newBucket();
    await client.send(new PutObjectCommand({ Bucket: bucket, Key: 'dir/a b+c.txt', Body: 'hello', ContentType: 'text/x-src', Metadata: { md5chksum: 'x', team: 't' } }));
    const out = await client.send(new CopyObjectCommand({ Bucket: bucket, Key: 'copies/1', CopySource: `${bucket}/dir/${encodeURIComponent('a b+c.txt')}`, CopySourceIfMatch: `"${md5hex(Buffer.from('hello'))}"` }));
    expect(out.CopyObjectResult?.ETag).toBe(`"${md5hex(Buffer.from('hello'))}"`);
    expect(out.ServerSideEncryption).toBe('AES256');
    const head = await client.send(new HeadObjectCommand({ Bucket: bucket, Key: 'copies/1' }));
    expect(head).toMatchObject({ ContentType: 'text/x-src', Metadata: { md5chksum: 'x', team: 't' }, ContentLength: 5 });
    await client.send(new CopyObjectCommand({ Bucket: bucket, Key: 'copies/2', CopySource: `/${bucket}/copies/1`, MetadataDirective: 'REPLACE', ContentType: 'text/x-new', Metadata: { other: 'y' } }));
    expect(await client.send(new HeadObjectCommand({ Bucket: bucket, Key: 'copies/2' }))).toMatchObject({ ContentType: 'text/x-new', Metadata: { other: 'y' } });
    // onto itself without a change: refused; with REPLACE: allowed
    await expectS3Error(client.send(new CopyObjectCommand({ Bucket: bucket, Key: 'copies/1', CopySource: `${bucket}/copies/1` })), 'InvalidRequest', 400);
    await client.send(new CopyObjectCommand({ Bucket: bucket, Key: 'copies/1', CopySource: `${bucket}/copies/1`, MetadataDirective: 'REPLACE' }));
  });

  test('source conditions: if-match / if-none-match / (un)modified-since as AWS combines them → 412; a missing source is 404; destination conditions are 501', { timeout: 10_000 }, async () => {
    const bucket = await newBucket();
    await client.send(new PutObjectCommand({ Bucket: bucket, Key: 'src', Body: 'v1' }));
    const etag = `"${md5hex(Buffer.from('v1'))}"`;
    const past = new Date(Date.now() - 3_600_000);
    const future = new Date(Date.now() + 3_600_000);
    const copy = (extra: Record<string, unknown>) => client.send(new CopyObjectCommand({ Bucket: bucket, Key: 'dst', CopySource: `${bucket}/src`, ...extra }));
    await expectS3Error(copy({ CopySourceIfMatch: '"0123456789abcdef0123456789abcdef"' }), 'PreconditionFailed', 412);
    await expectS3Error(copy({ CopySourceIfNoneMatch: etag }), 'PreconditionFailed', 412);
    await expectS3Error(copy({ CopySourceIfUnmodifiedSince: past }), 'PreconditionFailed', 412);
    await expectS3Error(copy({ CopySourceIfModifiedSince: future }), 'PreconditionFailed', 412);
    // if-none-match false with modified-since true: 412
    await expectS3Error(copy({ CopySourceIfNoneMatch: etag, CopySourceIfModifiedSince: past }), 'PreconditionFailed', 412);
    expect(s3.state.getObject(bucket, 'dst')).toBeUndefined();
    // if-match true with unmodified-since false: copied
    await copy({ CopySourceIfMatch: etag, CopySourceIfUnmodifiedSince: past });
    expect(s3.state.getObject(bucket, 'dst')?.body.toString()).toBe('v1');
    await expectS3Error(client.send(new CopyObjectCommand({ Bucket: bucket, Key: 'dst2', CopySource: `${bucket}/none` })), 'NoSuchKey', 404);
    await expectS3Error(copy({ IfNoneMatch: '*' }), 'NotImplemented', 501);
  });

  test('a source over 5 GiB is InvalidRequest (400); a multipart source becomes a single-part object (MD5 ETag, no parts)', { timeout: 10_000 }, async () => {
    const bucket = await newBucket();
    const parts = [Buffer.alloc(MIN_PART, 1), Buffer.from('tail')];
    const { UploadId } = await client.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: 'mp' }));
    const done: CompletedPart[] = [];
    for (const [i, body] of parts.entries()) {
      const r = await client.send(new UploadPartCommand({ Bucket: bucket, Key: 'mp', UploadId, PartNumber: i + 1, Body: body }));
      done.push({ PartNumber: i + 1, ETag: r.ETag! });
    }
    await client.send(new CompleteMultipartUploadCommand({ Bucket: bucket, Key: 'mp', UploadId, MultipartUpload: { Parts: done } }));
    const out = await client.send(new CopyObjectCommand({ Bucket: bucket, Key: 'mp-copy', CopySource: `${bucket}/mp` }));
    expect(out.CopyObjectResult?.ETag).toBe(`"${md5hex(Buffer.concat(parts))}"`);
    expect(s3.state.getObject(bucket, 'mp-copy')?.partSizes).toBeUndefined();
    // a fake 5 GiB + 1 object: only its size is looked at
    const big = s3.state.putObject(bucket, 'big', 'x');
    Object.defineProperty(big, 'size', { value: 5 * 1024 ** 3 + 1 });
    await expectS3Error(client.send(new CopyObjectCommand({ Bucket: bucket, Key: 'big-copy', CopySource: `${bucket}/big` })), 'InvalidRequest', 400);
  });
});

describe('@aws-sdk/lib-storage Upload', () => {
  let real: StrictS3; // S3's real 5 MiB minimum part size
  let c: S3Client;
  beforeAll(async () => {
    real = await startStrictS3({ buckets: ['lib'] });
    c = makeClient(real.endpoint);
  });
  afterAll(async () => {
    await real.close();
  });

  test('a 12 MiB body in 5 MiB parts completes as a real multipart upload', async () => {
    const body = bytes(12 * 1024 * 1024, 90);
    const partSize = 5 * 1024 * 1024;
    real.state.resetRequests();
    const upload = new Upload({ client: c, params: { Bucket: 'lib', Key: 'big.bin', Body: body, ContentType: 'application/x-big' }, partSize, queueSize: 3 });
    const r = await upload.done();
    const expectedParts = [body.subarray(0, partSize), body.subarray(partSize, 2 * partSize), body.subarray(2 * partSize)];
    expect(r.ETag).toBe(multipartEtag(expectedParts));
    expect(real.state.count('CreateMultipartUpload')).toBe(1);
    expect(real.state.count('UploadPart')).toBe(3);
    expect(real.state.count('CompleteMultipartUpload')).toBe(1);
    const stored = real.state.getObject('lib', 'big.bin')!;
    expect(stored.body.equals(body)).toBe(true);
    expect(stored.contentType).toBe('application/x-big');
    expect(stored.partSizes).toEqual([partSize, partSize, 2 * 1024 * 1024]);
    expect(real.state.uploads('lib')).toEqual([]);
    expect(real.state.internalErrors).toEqual([]);
  });

  test('a stream body of unknown length, with WHEN_SUPPORTED checksums, also completes', async () => {
    const supported = makeClient(real.endpoint, { requestChecksumCalculation: 'WHEN_SUPPORTED', responseChecksumValidation: 'WHEN_SUPPORTED' });
    const body = bytes(11 * 1024 * 1024, 91);
    const chunks = Array.from({ length: 11 }, (_, i) => body.subarray(i * 1024 * 1024, (i + 1) * 1024 * 1024));
    const r = await new Upload({ client: supported, params: { Bucket: 'lib', Key: 'stream.bin', Body: Readable.from(chunks) } }).done();
    expect(r.ETag).toBe(multipartEtag([body.subarray(0, 5 * 1024 * 1024), body.subarray(5 * 1024 * 1024, 10 * 1024 * 1024), body.subarray(10 * 1024 * 1024)]));
    expect(real.state.getObject('lib', 'stream.bin')?.body.equals(body)).toBe(true);
    expect(real.state.internalErrors).toEqual([]);
  });

  test('a body below partSize goes as one PutObject', async () => {
    real.state.resetRequests();
    await new Upload({ client: c, params: { Bucket: 'lib', Key: 'small', Body: Buffer.from('small') } }).done();
    expect(real.state.requests.map((r) => r.op)).toEqual(['PutObject']);
    expect(real.state.getObject('lib', 'small')?.etag).toBe(md5hex(Buffer.from('small')));
  });

  test('a failing part makes Upload abort the multipart upload', async () => {
    const once = makeClient(real.endpoint, { maxAttempts: 1 });
    real.state.resetRequests();
    real.state.failAlways({ op: 'UploadPart', partNumber: 2 }, { status: 500 });
    const upload = new Upload({ client: once, params: { Bucket: 'lib', Key: 'fails.bin', Body: bytes(11 * 1024 * 1024, 92) } });
    await expect(upload.done()).rejects.toMatchObject({ name: 'InternalError' });
    real.state.clearFaults();
    expect(real.state.count('AbortMultipartUpload')).toBe(1);
    expect(real.state.count('CompleteMultipartUpload')).toBe(0);
    expect(real.state.uploads('lib')).toEqual([]);
    expect((await c.send(new ListMultipartUploadsCommand({ Bucket: 'lib' }))).Uploads).toBeUndefined();
    expect(real.state.getObject('lib', 'fails.bin')).toBeUndefined();
  });
});
