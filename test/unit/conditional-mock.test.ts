// Conditional requests at the SDK boundary, through aws-sdk-client-mock: the
// exact inputs S3ObjectStore sends (quoted ETags, `If-None-Match: *`, a
// per-object `ETag` in DeleteObjects) and the exact mapping of S3's answers
// (412 → PRECONDITION_FAILED, 409 ConditionalRequestConflict → CONFLICT,
// 404 NoSuchKey on If-Match → NOT_FOUND, 304 → NOT_MODIFIED). And
// probeConditionalWrites / cachedProbe on mocked answers.
import { Readable } from 'node:stream';

import {
  CompleteMultipartUploadCommand,
  CopyObjectCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadObjectCommand,
  PutObjectCommand,
  S3Client,
  S3ServiceException,
} from '@aws-sdk/client-s3';
import { mockClient } from 'aws-sdk-client-mock';
import { describe, expect, it, onTestFinished } from 'vitest';

import { StorageError } from '../../src/errors.js';
import { S3ObjectStore } from '../../src/storage/S3ObjectStore.js';
import {
  PROBE_NAME_PREFIX,
  cachedProbe,
  clearProbeCache,
  probeCacheKey,
  probeConditionalWrites,
  probeConditionalWritesDetailed,
  type ConditionalWriteSupport,
} from '../../src/storage/capabilities.js';

const T = { timeout: 10_000 };
const BUCKET = 'mock-bucket';
const ETAG = '0123456789abcdef0123456789abcdef';
const BODY = Buffer.from('hello');
const BODY_MD5 = '5d41402abc4b2a76b9719d911017c592';

function setup() {
  const client = new S3Client({ region: 'us-east-1', credentials: { accessKeyId: 'x', secretAccessKey: 'y' } });
  const s3 = mockClient(client);
  onTestFinished(() => {
    s3.restore();
    client.destroy();
  });
  // No watchdog of the store's own: the mock answers at once.
  const store = new S3ObjectStore(client, BUCKET, { stallTimeoutMs: 0 });
  return { s3, store };
}

/** An SDK error as the client throws it for an S3 answer (HEAD and 304 answers have no body: `Unknown`). */
function awsError(name: string, status: number, message = name === 'Unknown' ? 'UnknownError' : name): S3ServiceException {
  return new S3ServiceException({ name, $fault: status >= 500 ? 'server' : 'client', $metadata: { httpStatusCode: status }, message });
}

const putInput = (extra: Record<string, unknown> = {}) => ({
  key: 'ws/a.txt',
  body: BODY,
  size: BODY.length,
  md5: BODY_MD5,
  contentType: 'text/plain',
  mtimeMs: 1_700_000_000_000,
  ...extra,
});

async function rejection(p: Promise<unknown>): Promise<StorageError> {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(StorageError);
    return e as StorageError;
  }
  throw new Error('expected a rejection, the call succeeded');
}

const shape = (e: StorageError) => ({ code: e.code, statusCode: e.statusCode, retryable: e.retryable });

describe('S3ObjectStore: the conditional request fields it sends', () => {
  it('put: ifMatch becomes a quoted IfMatch, ifNoneMatch IfNoneMatch "*"; none without a condition', T, async () => {
    const { s3, store } = setup();
    s3.on(PutObjectCommand).resolves({ ETag: `"${BODY_MD5}"` });
    await store.put(putInput({ ifMatch: ETAG }));
    await store.put(putInput({ ifMatch: `"${ETAG}"` })); // already quoted: not quoted twice
    await store.put(putInput({ ifNoneMatch: true }));
    await store.put(putInput({ ifNoneMatch: false }));
    await store.put(putInput());
    const inputs = s3.commandCalls(PutObjectCommand).map((c) => c.args[0].input);
    expect(inputs.map((i) => ({ IfMatch: i.IfMatch, IfNoneMatch: i.IfNoneMatch }))).toEqual([
      { IfMatch: `"${ETAG}"`, IfNoneMatch: undefined },
      { IfMatch: `"${ETAG}"`, IfNoneMatch: undefined },
      { IfMatch: undefined, IfNoneMatch: '*' },
      { IfMatch: undefined, IfNoneMatch: undefined },
      { IfMatch: undefined, IfNoneMatch: undefined },
    ]);
    for (const i of inputs.slice(3)) expect(Object.keys(i).filter((k) => k.startsWith('If'))).toEqual([]);
  });

  it('completeMultipart: the condition goes on CompleteMultipartUpload (quoted IfMatch, IfNoneMatch "*")', T, async () => {
    const { s3, store } = setup();
    s3.on(CompleteMultipartUploadCommand).resolves({ ETag: `"${ETAG}-2"` });
    const parts = [
      { partNumber: 1, etag: 'a'.repeat(32) },
      { partNumber: 2, etag: 'b'.repeat(32) },
    ];
    await store.completeMultipart('ws/big', 'up-1', parts, undefined, { ifMatch: ETAG });
    await store.completeMultipart('ws/big', 'up-2', parts, undefined, { ifNoneMatch: true });
    await store.completeMultipart('ws/big', 'up-3', parts);
    const inputs = s3.commandCalls(CompleteMultipartUploadCommand).map((c) => c.args[0].input);
    expect(inputs[0]).toMatchObject({
      Bucket: BUCKET,
      Key: 'ws/big',
      UploadId: 'up-1',
      IfMatch: `"${ETAG}"`,
      MultipartUpload: { Parts: [{ PartNumber: 1, ETag: `"${'a'.repeat(32)}"` }, { PartNumber: 2, ETag: `"${'b'.repeat(32)}"` }] },
    });
    expect(inputs[0]?.IfNoneMatch).toBeUndefined();
    expect({ IfMatch: inputs[1]?.IfMatch, IfNoneMatch: inputs[1]?.IfNoneMatch }).toEqual({ IfMatch: undefined, IfNoneMatch: '*' });
    expect({ IfMatch: inputs[2]?.IfMatch, IfNoneMatch: inputs[2]?.IfNoneMatch }).toEqual({ IfMatch: undefined, IfNoneMatch: undefined });
  });

  it('deleteMany: a plain key is { Key }, a target { Key, ETag } with the ETag quoted (* as is); Quiet; one request per 1,000', T, async () => {
    const { s3, store } = setup();
    s3.on(DeleteObjectsCommand).resolves({});
    await store.deleteMany(['ws/plain', { key: 'ws/cond', etag: ETAG }, { key: 'ws/quoted', etag: `"${ETAG}"` }, { key: 'ws/any', etag: '*' }]);
    const calls = s3.commandCalls(DeleteObjectsCommand);
    expect(calls).toHaveLength(1);
    expect(calls[0]!.args[0].input).toEqual({
      Bucket: BUCKET,
      Delete: {
        Objects: [{ Key: 'ws/plain' }, { Key: 'ws/cond', ETag: `"${ETAG}"` }, { Key: 'ws/quoted', ETag: `"${ETAG}"` }, { Key: 'ws/any', ETag: '*' }],
        Quiet: true,
      },
    });
  });

  it('head, get and getRange: quoted IfMatch / IfNoneMatch (* as is); none without a condition', T, async () => {
    const { s3, store } = setup();
    s3.on(HeadObjectCommand).resolves({ ContentLength: 5, ETag: `"${BODY_MD5}"` });
    s3.on(GetObjectCommand).callsFake(() => ({ Body: Readable.from([BODY]), ContentLength: 5, ETag: `"${BODY_MD5}"` }));
    await store.head('ws/a', undefined, { ifMatch: ETAG });
    await store.head('ws/a', undefined, { ifNoneMatch: ETAG });
    await store.head('ws/a');
    (await store.get('ws/a', undefined, { ifMatch: ETAG, ifNoneMatch: '*' })).body.destroy();
    (await store.get('ws/a')).body.destroy();
    (await store.getRange('ws/a', 0, 4, undefined, { ifMatch: ETAG })).body.destroy();
    const heads = s3.commandCalls(HeadObjectCommand).map((c) => c.args[0].input);
    expect(heads.map((i) => [i.IfMatch, i.IfNoneMatch])).toEqual([
      [`"${ETAG}"`, undefined],
      [undefined, `"${ETAG}"`],
      [undefined, undefined],
    ]);
    const gets = s3.commandCalls(GetObjectCommand).map((c) => c.args[0].input);
    expect(gets.map((i) => [i.IfMatch, i.IfNoneMatch, i.Range])).toEqual([
      [`"${ETAG}"`, '*', undefined],
      [undefined, undefined, undefined],
      [`"${ETAG}"`, undefined, 'bytes=0-4'],
    ]);
  });
});

describe('S3ObjectStore: how S3 answers conditional requests become StorageErrors', () => {
  it('PutObject: 412 PreconditionFailed → PRECONDITION_FAILED; 409 ConditionalRequestConflict → CONFLICT; 404 NoSuchKey (If-Match, key missing) → NOT_FOUND; none retryable', T, async () => {
    const { s3, store } = setup();
    s3.on(PutObjectCommand)
      .rejectsOnce(awsError('PreconditionFailed', 412, 'At least one of the pre-conditions you specified did not hold'))
      .rejectsOnce(awsError('ConditionalRequestConflict', 409, 'A conflicting conditional operation is currently in progress against this resource.'))
      .rejectsOnce(awsError('NoSuchKey', 404, 'The specified key does not exist.'));
    const failed = await rejection(store.put(putInput({ ifMatch: ETAG })));
    expect(shape(failed)).toEqual({ code: 'PRECONDITION_FAILED', statusCode: 412, retryable: false });
    expect(failed.message).toContain('s3://mock-bucket/ws/a.txt');
    const conflict = await rejection(store.put(putInput({ ifNoneMatch: true })));
    expect(shape(conflict)).toEqual({ code: 'CONFLICT', statusCode: 409, retryable: false });
    expect(conflict.message).toMatch(/conflicting conditional request/);
    expect((conflict.cause as { name?: string }).name).toBe('ConditionalRequestConflict');
    expect(shape(await rejection(store.put(putInput({ ifMatch: ETAG }))))).toEqual({ code: 'NOT_FOUND', statusCode: 404, retryable: false });
    // Sent once each: the store does not retry a refused precondition.
    expect(s3.commandCalls(PutObjectCommand)).toHaveLength(3);
  });

  it('CompleteMultipartUpload: 412 → PRECONDITION_FAILED, 409 → CONFLICT, 404 NoSuchKey → NOT_FOUND', T, async () => {
    const { s3, store } = setup();
    s3.on(CompleteMultipartUploadCommand)
      .rejectsOnce(awsError('PreconditionFailed', 412))
      .rejectsOnce(awsError('ConditionalRequestConflict', 409))
      .rejectsOnce(awsError('NoSuchKey', 404));
    const parts = [{ partNumber: 1, etag: 'a'.repeat(32) }];
    const codes = [];
    for (const condition of [{ ifMatch: ETAG }, { ifNoneMatch: true }, { ifMatch: ETAG }]) {
      codes.push(shape(await rejection(store.completeMultipart('ws/big', 'up', parts, undefined, condition))));
    }
    expect(codes).toEqual([
      { code: 'PRECONDITION_FAILED', statusCode: 412, retryable: false },
      { code: 'CONFLICT', statusCode: 409, retryable: false },
      { code: 'NOT_FOUND', statusCode: 404, retryable: false },
    ]);
  });

  it('GetObject / HeadObject: 304 (bodiless, "Unknown") → NOT_MODIFIED; 412 → PRECONDITION_FAILED, for HEAD by status alone', T, async () => {
    const { s3, store } = setup();
    s3.on(GetObjectCommand).rejectsOnce(awsError('Unknown', 304)).rejectsOnce(awsError('PreconditionFailed', 412));
    s3.on(HeadObjectCommand).rejectsOnce(awsError('Unknown', 304)).rejectsOnce(awsError('Unknown', 412)).rejectsOnce(awsError('NotModified', 304));
    const notModified = await rejection(store.get('ws/a', undefined, { ifNoneMatch: ETAG }));
    expect(shape(notModified)).toEqual({ code: 'NOT_MODIFIED', statusCode: 304, retryable: false });
    expect(notModified.message).toBe('s3://mock-bucket/ws/a: not modified (If-None-Match matched the current ETag) (HTTP 304)');
    expect(shape(await rejection(store.get('ws/a', undefined, { ifMatch: ETAG })))).toEqual({ code: 'PRECONDITION_FAILED', statusCode: 412, retryable: false });
    expect(shape(await rejection(store.head('ws/a', undefined, { ifNoneMatch: ETAG })))).toEqual({ code: 'NOT_MODIFIED', statusCode: 304, retryable: false });
    const headFailed = await rejection(store.head('ws/a', undefined, { ifMatch: ETAG }));
    expect(shape(headFailed)).toEqual({ code: 'PRECONDITION_FAILED', statusCode: 412, retryable: false });
    expect(headFailed.message).toBe('s3://mock-bucket/ws/a: precondition failed (HTTP 412)');
    expect(shape(await rejection(store.head('ws/a', undefined, { ifNoneMatch: ETAG })))).toEqual({ code: 'NOT_MODIFIED', statusCode: 304, retryable: false });
  });

  it('a 409 that is not about a condition (BucketNotEmpty) stays STORAGE; a bodiless 409 is CONFLICT', T, async () => {
    const { s3, store } = setup();
    s3.on(HeadObjectCommand).rejectsOnce(awsError('BucketNotEmpty', 409)).rejectsOnce(awsError('Unknown', 409));
    expect(shape(await rejection(store.head('ws/a')))).toEqual({ code: 'STORAGE', statusCode: 409, retryable: false });
    expect(shape(await rejection(store.head('ws/a')))).toEqual({ code: 'CONFLICT', statusCode: 409, retryable: false });
  });

  it('DeleteObjects per-key Errors carry the library code: PreconditionFailed, NoSuchKey, ConditionalRequestConflict, AccessDenied', T, async () => {
    const { s3, store } = setup();
    s3.on(DeleteObjectsCommand).resolves({
      Errors: [
        { Key: 'ws/b', Code: 'PreconditionFailed', Message: 'At least one of the pre-conditions you specified did not hold' },
        { Key: 'ws/c', Code: 'NoSuchKey', Message: 'The specified key does not exist.' },
        { Key: 'ws/d', Code: 'ConditionalRequestConflict', Message: 'conflict' },
        { Key: 'ws/e', Code: 'AccessDenied', Message: 'Access Denied' },
        { Key: 'ws/f', Code: 'InternalError', Message: 'try again' },
      ],
    });
    const failures = await store.deleteMany(['ws/a', ...['b', 'c', 'd', 'e', 'f'].map((k) => ({ key: `ws/${k}`, etag: ETAG }))]);
    expect(failures).toEqual([
      { key: 'ws/b', error: 'PreconditionFailed: At least one of the pre-conditions you specified did not hold', code: 'PRECONDITION_FAILED' },
      { key: 'ws/c', error: 'NoSuchKey: The specified key does not exist.', code: 'NOT_FOUND' },
      { key: 'ws/d', error: 'ConditionalRequestConflict: conflict', code: 'CONFLICT' },
      { key: 'ws/e', error: 'AccessDenied: Access Denied', code: 'ACCESS_DENIED' },
      { key: 'ws/f', error: 'InternalError: try again', code: 'STORAGE' },
    ]);
  });

  it('a DeleteObjects request that fails as a whole (retryable) is reported for every key with its code; a fatal one is thrown', T, async () => {
    const { s3, store } = setup();
    s3.on(DeleteObjectsCommand).rejectsOnce(awsError('SlowDown', 503)).rejectsOnce(awsError('AccessDenied', 403));
    const failures = await store.deleteMany(['ws/a', { key: 'ws/b', etag: ETAG }]);
    expect(failures.map((f) => [f.key, f.code])).toEqual([
      ['ws/a', 'THROTTLED'],
      ['ws/b', 'THROTTLED'],
    ]);
    await expect(store.deleteMany([{ key: 'ws/b', etag: ETAG }])).rejects.toMatchObject({ code: 'ACCESS_DENIED' });
  });
});

describe('probeConditionalWrites on mocked answers', () => {
  it("'enforced': the second create is refused; 2 PutObject with IfNoneMatch '*' on a scratch key under <prefix>.s3-workspace-sync/, then 1 DeleteObjects of it", T, async () => {
    const { s3, store } = setup();
    s3.on(PutObjectCommand).resolvesOnce({ ETag: '"e1"' }).rejectsOnce(awsError('PreconditionFailed', 412));
    s3.on(DeleteObjectsCommand).resolves({});
    const probe = await probeConditionalWritesDetailed(store, 'ws/');
    expect(probe).toEqual({ support: 'enforced', key: expect.stringMatching(/^ws\/\.s3-workspace-sync\/probe-[0-9a-f]{16}$/) });
    const puts = s3.commandCalls(PutObjectCommand).map((c) => c.args[0].input);
    expect(puts.map((i) => [i.Key, i.IfNoneMatch, i.IfMatch])).toEqual([
      [probe.key, '*', undefined],
      [probe.key, '*', undefined],
    ]);
    expect(s3.commandCalls(DeleteObjectsCommand).map((c) => c.args[0].input.Delete)).toEqual([{ Objects: [{ Key: probe.key }], Quiet: true }]);
    expect(s3.calls()).toHaveLength(3);
    expect(PROBE_NAME_PREFIX).toBe('.s3-workspace-sync/probe-');
  });

  it("'enforced' also on a 409 ConditionalRequestConflict (only a server that evaluates conditions answers it)", T, async () => {
    const { s3, store } = setup();
    s3.on(PutObjectCommand).resolvesOnce({ ETag: '"e1"' }).rejectsOnce(awsError('ConditionalRequestConflict', 409));
    s3.on(DeleteObjectsCommand).resolves({});
    expect(await probeConditionalWrites(store, '')).toBe('enforced');
    expect(s3.calls()).toHaveLength(3);
  });

  it("'ignored' when the second create succeeds; the scratch key is still deleted", T, async () => {
    const { s3, store } = setup();
    s3.on(PutObjectCommand).resolves({ ETag: '"e1"' });
    s3.on(DeleteObjectsCommand).resolves({});
    expect(await probeConditionalWrites(store, 'p/')).toBe('ignored');
    expect(s3.commandCalls(PutObjectCommand)).toHaveLength(2);
    expect(s3.commandCalls(DeleteObjectsCommand)).toHaveLength(1);
  });

  it("'unknown' on access denied (first or second PUT), not thrown; the cleanup delete is still sent, and its own failure ignored", T, async () => {
    const { s3, store } = setup();
    s3.on(PutObjectCommand).rejects(awsError('AccessDenied', 403));
    s3.on(DeleteObjectsCommand).rejects(awsError('AccessDenied', 403));
    const first = await probeConditionalWritesDetailed(store, 'p/');
    expect(first.support).toBe('unknown');
    expect(first.error).toMatchObject({ code: 'ACCESS_DENIED' });
    expect(s3.commandCalls(PutObjectCommand)).toHaveLength(1);
    expect(s3.commandCalls(DeleteObjectsCommand)).toHaveLength(1);

    s3.reset();
    s3.on(PutObjectCommand).resolvesOnce({ ETag: '"e1"' }).rejectsOnce(awsError('AccessDenied', 403));
    s3.on(DeleteObjectsCommand).resolves({ Errors: [{ Key: 'x', Code: 'AccessDenied', Message: 'Access Denied' }] });
    const second = await probeConditionalWritesDetailed(store, 'p/');
    expect(second.support).toBe('unknown');
    expect(second.error).toMatchObject({ code: 'ACCESS_DENIED' });
    expect(s3.commandCalls(PutObjectCommand)).toHaveLength(2);
    expect(s3.commandCalls(DeleteObjectsCommand)).toHaveLength(1);
  });

  it("'unknown' on a network error or a throttled PUT", T, async () => {
    const { s3, store } = setup();
    const reset = Object.assign(new Error('socket hang up'), { code: 'ECONNRESET', name: 'Error' });
    s3.on(PutObjectCommand).resolvesOnce({ ETag: '"e1"' }).rejectsOnce(reset).resolvesOnce({ ETag: '"e1"' }).rejectsOnce(awsError('SlowDown', 503));
    s3.on(DeleteObjectsCommand).resolves({});
    expect(await probeConditionalWritesDetailed(store, '')).toMatchObject({ support: 'unknown', error: { code: 'NETWORK' } });
    expect(await probeConditionalWritesDetailed(store, '')).toMatchObject({ support: 'unknown', error: { code: 'THROTTLED' } });
    expect(s3.commandCalls(DeleteObjectsCommand)).toHaveLength(2);
  });

  it('an aborted signal: the error is thrown, after the cleanup delete (sent without the signal)', T, async () => {
    const { s3, store } = setup();
    const controller = new AbortController();
    // The first PUT goes through and the caller aborts meanwhile; the SDK then rejects the next request with an AbortError.
    s3.on(PutObjectCommand)
      .callsFakeOnce(() => {
        controller.abort(new Error('stop'));
        return { ETag: '"e1"' };
      })
      .rejects(Object.assign(new Error('The operation was aborted'), { name: 'AbortError' }));
    s3.on(DeleteObjectsCommand).resolves({});
    await expect(probeConditionalWrites(store, 'p/', controller.signal)).rejects.toMatchObject({ name: 'StorageError', message: expect.stringContaining('aborted') });
    expect(s3.commandCalls(PutObjectCommand)).toHaveLength(2);
    expect(s3.commandCalls(DeleteObjectsCommand)).toHaveLength(1);
    expect((s3.commandCalls(DeleteObjectsCommand)[0]!.args as unknown[])[1]).toBeUndefined(); // no abortSignal option
  });
});

describe('cachedProbe', () => {
  it('probes once per endpoint and bucket; concurrent callers share the probe; unknown answers and failures are not kept', T, async () => {
    clearProbeCache();
    onTestFinished(() => clearProbeCache());
    let probes = 0;
    const answer = (support: ConditionalWriteSupport) => async () => {
      probes++;
      await new Promise((r) => setTimeout(r, 5));
      return support;
    };
    const a = probeCacheKey('http://127.0.0.1:9000', 'bucket-a');
    const [x, y] = await Promise.all([cachedProbe(a, answer('enforced')), cachedProbe(a, answer('ignored'))]);
    expect([x, y, probes]).toEqual(['enforced', 'enforced', 1]);
    expect(await cachedProbe(a, answer('ignored'))).toBe('enforced');
    expect(probes).toBe(1);
    // Another bucket, another endpoint: probed on their own.
    expect(await cachedProbe(probeCacheKey('http://127.0.0.1:9000', 'bucket-b'), answer('ignored'))).toBe('ignored');
    expect(await cachedProbe(probeCacheKey('aws', 'bucket-a'), answer('enforced'))).toBe('enforced');
    expect(probes).toBe(3);
    // 'unknown' is asked again next time; so is a probe that threw.
    const u = probeCacheKey('aws', 'flaky');
    expect(await cachedProbe(u, answer('unknown'))).toBe('unknown');
    await expect(
      cachedProbe(u, async () => {
        probes++;
        throw new Error('aborted');
      }),
    ).rejects.toThrow('aborted');
    expect(await cachedProbe(u, answer('enforced'))).toBe('enforced');
    expect(await cachedProbe(u, answer('ignored'))).toBe('enforced');
    expect(probes).toBe(6);
    clearProbeCache();
    expect(await cachedProbe(a, answer('ignored'))).toBe('ignored');
  });
});

describe('S3ObjectStore.copy: the exact CopyObject request', () => {
  it('CopySource URL-encoded per segment, CopySourceIfMatch quoted, MetadataDirective COPY; 412 → PRECONDITION_FAILED, 404 → NOT_FOUND', T, async () => {
    const { s3, store } = setup();
    s3.on(CopyObjectCommand).resolves({ CopyObjectResult: { ETag: `"${ETAG}"` }, ServerSideEncryption: 'AES256' });
    expect(await store.copy('ws/a dir/ü+x.md', 'ws/.s3-workspace-sync/conflicts/s/a dir/ü+x.md', { ifSourceMatch: ETAG })).toEqual({ etag: ETAG, serverSideEncryption: 'AES256' });
    expect(s3.commandCalls(CopyObjectCommand)[0]!.args[0].input).toEqual({
      Bucket: BUCKET,
      Key: 'ws/.s3-workspace-sync/conflicts/s/a dir/ü+x.md',
      CopySource: `${BUCKET}/ws/a%20dir/%C3%BC%2Bx.md`,
      CopySourceIfMatch: `"${ETAG}"`,
      MetadataDirective: 'COPY',
    });
    s3.on(CopyObjectCommand).rejects(awsError('PreconditionFailed', 412));
    await expect(store.copy('ws/a', 'ws/b', { ifSourceMatch: ETAG })).rejects.toMatchObject({ code: 'PRECONDITION_FAILED', statusCode: 412 });
    s3.on(CopyObjectCommand).rejects(awsError('NoSuchKey', 404));
    await expect(store.copy('ws/a', 'ws/b', { ifSourceMatch: ETAG })).rejects.toMatchObject({ code: 'NOT_FOUND', statusCode: 404 });
  });

  it('SSE-C: the source is read and the copy written with the customer key; the expected owner applies to both buckets; encryption params pass through', T, async () => {
    const client = new S3Client({ region: 'us-east-1', credentials: { accessKeyId: 'x', secretAccessKey: 'y' } });
    const s3 = mockClient(client);
    onTestFinished(() => {
      s3.restore();
      client.destroy();
    });
    const store = new S3ObjectStore(client, BUCKET, { stallTimeoutMs: 0, expectedBucketOwner: '111122223333', sseCustomer: { SSECustomerAlgorithm: 'AES256', SSECustomerKey: 'k'.repeat(32) } });
    s3.on(CopyObjectCommand).resolves({ CopyObjectResult: { ETag: `"${ETAG}"` }, SSECustomerAlgorithm: 'AES256' });
    const out = await store.copy('ws/a', 'ws/b', { ifSourceMatch: ETAG, params: { StorageClass: 'STANDARD_IA' } });
    expect(out.serverSideEncryption).toBe('sse-c');
    expect(s3.commandCalls(CopyObjectCommand)[0]!.args[0].input).toMatchObject({
      CopySourceSSECustomerAlgorithm: 'AES256',
      CopySourceSSECustomerKey: 'k'.repeat(32),
      SSECustomerAlgorithm: 'AES256',
      SSECustomerKey: 'k'.repeat(32),
      ExpectedBucketOwner: '111122223333',
      ExpectedSourceBucketOwner: '111122223333',
      StorageClass: 'STANDARD_IA',
    });
  });
});
