// MemoryObjectStore beyond the ObjectStore contract (test/contract/): its test
// hooks (seeding, inspection, request counts, injected failures, delays), the
// refusals only a fake can show (sizes, digests, keys, metadata), its error
// mapping against S3ObjectStore's, and its determinism.
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';

import { describe, expect, it } from 'vitest';

import { multipartEtag } from '../../src/core/md5.js';
import { StorageError } from '../../src/errors.js';
import { MemoryObjectStore, s3LikeError } from '../../src/storage/MemoryObjectStore.js';
import { softSignal, type GetResult, type PutInput } from '../../src/storage/ObjectStore.js';
import { toStorageError } from '../../src/storage/S3ObjectStore.js';
import { probeConditionalWrites, probeConditionalWritesDetailed } from '../../src/storage/capabilities.js';

const T = { timeout: 5_000 };
const md5 = (b: Buffer | string): string => createHash('md5').update(b).digest('hex');

function putInput(key: string, body: Buffer | string, extra: Partial<PutInput> = {}): PutInput {
  const buf = Buffer.from(body);
  return { key, body: buf, size: buf.length, md5: md5(buf), contentType: 'text/plain', mtimeMs: 1_700_000_000_000, ...extra };
}

async function text(r: GetResult): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of r.body) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString();
}

async function rejection(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (e) {
    return e;
  }
  throw new Error('expected a rejection');
}

async function s3Name(p: Promise<unknown>): Promise<string | undefined> {
  const e = await rejection(p);
  expect(e).toBeInstanceOf(StorageError);
  return ((e as StorageError).cause as { name?: string }).name;
}

async function keysOf(store: MemoryObjectStore, prefix = ''): Promise<string[]> {
  const out: string[] = [];
  for await (const page of store.list(prefix)) out.push(...page.map((o) => o.key));
  return out;
}

describe('s3LikeError: the StorageError S3ObjectStore makes of the same S3 answer', () => {
  const table: Array<[string, number]> = [
    ['NoSuchKey', 404],
    ['NotFound', 404],
    ['NoSuchUpload', 404],
    ['NoSuchBucket', 404],
    ['PreconditionFailed', 412],
    ['ConditionalRequestConflict', 409],
    ['Unknown', 304],
    ['Unknown', 412],
    ['AccessDenied', 403],
    ['InvalidAccessKeyId', 403],
    ['SlowDown', 503],
    ['ServiceUnavailable', 503],
    ['InternalError', 500],
    ['BadDigest', 400],
    ['EntityTooSmall', 400],
    ['InvalidRange', 416],
    ['RequestTimeout', 400],
    ['TooManyRequests', 429],
  ];
  it.each(table)('%s (%i)', T, (name, status) => {
    for (const replayable of [true, false]) {
      const sdk = Object.assign(new Error(`message of ${name}`), { $metadata: { httpStatusCode: status } });
      Object.defineProperty(sdk, 'name', { value: name });
      const real = toStorageError(sdk, 'b', 'k/x', replayable);
      const fake = s3LikeError(name, status, { bucket: 'b', subject: 'k/x', message: `message of ${name}`, replayable });
      expect({ code: fake.code, statusCode: fake.statusCode, retryable: fake.retryable, retriedBySdk: fake.retriedBySdk, message: fake.message }).toEqual({
        code: real.code,
        statusCode: real.statusCode,
        retryable: real.retryable,
        retriedBySdk: real.retriedBySdk,
        message: real.message,
      });
      expect((fake.cause as Error).name).toBe(name);
    }
  });
});

describe('MemoryObjectStore: refusals', () => {
  it('a declared size that is not the body length is IncompleteBody; a malformed md5 is InvalidDigest', T, async () => {
    const store = new MemoryObjectStore();
    expect(await s3Name(store.put(putInput('a', 'abc', { size: 2 })))).toBe('IncompleteBody');
    expect(await s3Name(store.put(putInput('a', 'abc', { size: 4 })))).toBe('IncompleteBody');
    expect(await s3Name(store.put({ ...putInput('a', 'abc', { size: 4 }), body: () => Readable.from([Buffer.from('abc')]) }))).toBe('IncompleteBody');
    expect(await s3Name(store.put(putInput('a', 'abc', { md5: 'not-an-md5' })))).toBe('InvalidDigest');
    const e = (await rejection(store.put(putInput('a', 'abc', { size: 2 })))) as StorageError;
    expect({ code: e.code, statusCode: e.statusCode, retryable: e.retryable }).toEqual({ code: 'STORAGE', statusCode: 400, retryable: false });
    expect(store.keys()).toEqual([]);
  });

  it('keys: empty, over 1,024 UTF-8 bytes, or not well-formed Unicode are refused; 1,024 bytes is fine', T, async () => {
    const store = new MemoryObjectStore();
    expect(await s3Name(store.put(putInput('', 'x')))).toBe('InvalidArgument');
    expect(await s3Name(store.put(putInput('é'.repeat(513), 'x')))).toBe('KeyTooLongError');
    expect(await s3Name(store.put(putInput('bad\ud800key', 'x')))).toBe('InvalidURI');
    expect(await s3Name(store.createMultipart({ key: 'é'.repeat(513), partSize: 1, contentType: 'x', mtimeMs: 1 }))).toBe('KeyTooLongError');
    await store.put(putInput('é'.repeat(512), 'x'));
    await store.put(putInput('ok😀', 'x'));
    expect(store.keys()).toHaveLength(2);
  });

  it('user metadata over 2 KB is MetadataTooLarge', T, async () => {
    const store = new MemoryObjectStore();
    expect(await s3Name(store.put(putInput('m', 'x', { params: { Metadata: { big: 'v'.repeat(2000) } } })))).toBe('MetadataTooLarge');
    await store.put(putInput('m', 'x', { params: { Metadata: { fits: 'v'.repeat(1900) } } }));
    expect(store.inspect('m')?.metadata.fits).toHaveLength(1900);
  });

  it('getRange: non-integer, negative or reversed bounds are a RangeError (S3 would answer the whole object)', T, async () => {
    const store = new MemoryObjectStore();
    await store.put(putInput('r', '0123456789'));
    await expect(store.getRange('r', 5, 2)).rejects.toThrow(RangeError);
    await expect(store.getRange('r', -1, 2)).rejects.toThrow(RangeError);
    await expect(store.getRange('r', 0.5, 2)).rejects.toThrow(RangeError);
    expect(store.requestCount('getRange')).toBe(0);
    expect(await text(await store.getRange('r', 2, 4))).toBe('234');
  });

  it('minPartSize is configurable and checked at completion only (a short last part is fine)', T, async () => {
    expect(() => new MemoryObjectStore({ minPartSize: 0 })).toThrow(RangeError);
    const store = new MemoryObjectStore({ minPartSize: 4 });
    const id = await store.createMultipart({ key: 'm', partSize: 4, contentType: 'x', mtimeMs: 1 });
    const a = await store.uploadPart('m', id, 1, Buffer.from('abc'), md5('abc'));
    const b = await store.uploadPart('m', id, 2, Buffer.from('d'), md5('d'));
    expect(await s3Name(store.completeMultipart('m', id, [{ partNumber: 1, etag: a.etag }, { partNumber: 2, etag: b.etag }]))).toBe('EntityTooSmall');
    // Part 1 uploaded again, big enough: it replaces the first one.
    const a2 = await store.uploadPart('m', id, 1, Buffer.from('abcd'), md5('abcd'));
    expect(store.uploads()[0]?.parts).toEqual([
      { partNumber: 1, etag: md5('abcd'), size: 4 },
      { partNumber: 2, etag: md5('d'), size: 1 },
    ]);
    const done = await store.completeMultipart('m', id, [{ partNumber: 1, etag: `"${a2.etag}"` }, { partNumber: 2, etag: b.etag }]);
    expect(done.etag).toBe(multipartEtag([createHash('md5').update('abcd').digest(), createHash('md5').update('d').digest()]));
    expect(store.inspect('m')).toMatchObject({ size: 5, partSizes: [4, 1], metadata: { partsize: '4', mtime: '0.001' } });
    expect(store.uploads()).toEqual([]);
  });

  it('ifNoneMatch is evaluated when the object is committed: of two racing creates, one gets 412', T, async () => {
    const store = new MemoryObjectStore();
    store.setDelay('put', 20);
    const results = await Promise.allSettled([store.put(putInput('race', 'one', { ifNoneMatch: true })), store.put(putInput('race', 'two', { ifNoneMatch: true }))]);
    expect(results.map((r) => r.status).sort()).toEqual(['fulfilled', 'rejected']);
    const lost = results.find((r) => r.status === 'rejected') as PromiseRejectedResult;
    expect(lost.reason).toMatchObject({ code: 'PRECONDITION_FAILED', statusCode: 412 });
  });

  it('the stored body is a copy: changing the caller\'s buffer later changes nothing', T, async () => {
    const store = new MemoryObjectStore();
    const buf = Buffer.from('original');
    await store.put(putInput('c', buf));
    buf.fill(0);
    expect(store.bodyOf('c')?.toString()).toBe('original');
  });
});

describe('MemoryObjectStore: bodies and signals', () => {
  it('a body factory is opened once, read to its end and destroyed; its own error comes back as is', T, async () => {
    const store = new MemoryObjectStore();
    let opened = 0;
    let stream: Readable | undefined;
    await store.put({
      ...putInput('f', 'abcdef'),
      body: () => {
        opened++;
        stream = Readable.from([Buffer.from('abc'), Buffer.from('def')]);
        return stream;
      },
    });
    expect(opened).toBe(1);
    expect(stream?.destroyed).toBe(true);
    expect(store.bodyOf('f')?.toString()).toBe('abcdef');

    const disk = new Error('EIO: the disk went away');
    const failing = () =>
      Readable.from(
        (async function* () {
          yield Buffer.from('abc');
          throw disk;
        })(),
      );
    await expect(store.put({ ...putInput('g', 'abcdef'), body: failing })).rejects.toBe(disk);
    expect(store.inspect('g')).toBeUndefined();
  });

  it('an abort while a body factory is being read rejects with the reason and destroys the stream', T, async () => {
    const store = new MemoryObjectStore();
    const controller = new AbortController();
    const endless = new Readable({ read() {} });
    endless.push(Buffer.from('a'));
    const p = store.put({ ...putInput('h', 'a'), body: () => endless, signal: controller.signal });
    const reason = new Error('stop');
    setTimeout(() => controller.abort(reason), 10);
    await expect(p).rejects.toBe(reason);
    expect(endless.destroyed).toBe(true);
    expect(store.inspect('h')).toBeUndefined();
  });

  it('an abort after get() resolved destroys the body with the reason', T, async () => {
    const store = new MemoryObjectStore();
    await store.put(putInput('b', 'body'));
    const controller = new AbortController();
    const got = await store.get('b', controller.signal);
    const reason = new Error('stop reading');
    controller.abort(reason);
    await expect(text(got)).rejects.toBe(reason);
  });

  it('a delay is abortable: the request rejects with the reason at once', T, async () => {
    const store = new MemoryObjectStore({ delays: { head: 10_000 } });
    await store.put(putInput('d', 'x'));
    const controller = new AbortController();
    const started = Date.now();
    const p = store.head('d', controller.signal);
    const reason = new Error('stop waiting');
    setTimeout(() => controller.abort(reason), 20);
    await expect(p).rejects.toBe(reason);
    expect(Date.now() - started).toBeLessThan(2_000);
    expect(store.requestCount('head')).toBe(1); // it was sent
    store.setDelay('head', 30);
    const t = Date.now();
    await store.head('d');
    expect(Date.now() - t).toBeGreaterThanOrEqual(25);
    store.setDelay('head', undefined);
    expect(() => store.setDelay('head', -1)).toThrow(RangeError);
  });

  it('a soft signal is not sent with requests (as S3ObjectStore): it does not abort them', T, async () => {
    const store = new MemoryObjectStore();
    await store.put(putInput('s', 'x'));
    const controller = new AbortController();
    controller.abort(new Error('destroyed'));
    const soft = softSignal(controller.signal);
    expect((await store.head('s', soft)).size).toBe(1);
    await store.put({ ...putInput('t', 'y'), body: () => Readable.from([Buffer.from('y')]), signal: soft });
    expect(await store.deleteMany(['s', 't'], soft)).toEqual([]);
  });
});

describe('MemoryObjectStore: test hooks', () => {
  it('seedObject writes as other tools do: with or without md5 metadata, hex md5, bogus mtime, multipart shape, ETag override', T, async () => {
    const store = new MemoryObjectStore();
    store.seedObject('plain', 'abc');
    expect(await store.head('plain')).toMatchObject({ etag: md5('abc'), md5: undefined, mtimeMs: undefined, serverSideEncryption: 'AES256' });
    store.seedObject('ours', 'abc', { md5: true, mtimeMs: 1_600_000_000_250 });
    expect(await store.head('ours')).toMatchObject({ md5: md5('abc'), mtimeMs: 1_600_000_000_250 });
    store.seedObject('lying', 'abc', { md5: md5('other') });
    expect((await store.head('lying')).md5).toBe(md5('other'));
    store.seedObject('hex', 'abc', { metadata: { MD5: md5('abc').toUpperCase(), mtime: '1e12' } });
    expect(await store.head('hex')).toMatchObject({ md5: md5('abc'), mtimeMs: undefined });
    const data = Buffer.from('0123456789');
    store.seedObject('mp', data, { partSize: 4 });
    const parts = [data.subarray(0, 4), data.subarray(4, 8), data.subarray(8)].map((p) => createHash('md5').update(p).digest());
    expect(store.inspect('mp')).toMatchObject({ etag: multipartEtag(parts), partSizes: [4, 4, 2] });
    expect(await store.firstPartSize('mp')).toBe(4);
    expect((await store.head('mp')).partSize).toBeUndefined(); // no partsize metadata: another tool's upload
    store.seedObject('ssec', 'abc', { etag: '"0123456789abcdef0123456789abcdef"' });
    expect((await store.head('ssec')).etag).toBe('0123456789abcdef0123456789abcdef');
    store.seedObject('kms', 'abc', { serverSideEncryption: 'aws:kms' });
    expect(await store.head('kms')).toMatchObject({ serverSideEncryption: 'aws:kms' });
    expect((await store.head('kms')).etag).not.toBe(md5('abc'));
    store.seedObject('old', 'abc', { lastModifiedMs: 1_500_000_000_999 });
    expect((await store.head('old')).lastModifiedMs).toBe(1_500_000_000_000);
    // Seeding is not a request.
    expect(store.requestCount('put')).toBe(0);
  });

  it('inspect, bodyOf, keys (S3 order), removeObject', T, async () => {
    const store = new MemoryObjectStore({ now: () => 1_700_000_123_456 });
    await store.put(putInput('b/😀', 'x', { params: { Metadata: { Team: 'agents' }, StorageClass: 'STANDARD_IA', CacheControl: 'no-cache' } }));
    await store.put(putInput('b/Ａ', 'y'));
    store.seedObject('a', 'z');
    expect(store.keys()).toEqual(['a', 'b/Ａ', 'b/😀']);
    expect(store.keys('b/')).toEqual(['b/Ａ', 'b/😀']);
    expect(store.inspect('b/😀')).toEqual({
      key: 'b/😀',
      body: Buffer.from('x'),
      etag: md5('x'),
      size: 1,
      lastModifiedMs: 1_700_000_123_000,
      contentType: 'text/plain',
      metadata: { team: 'agents', mtime: '1700000000.000', md5chksum: Buffer.from(md5('x'), 'hex').toString('base64') },
      serverSideEncryption: 'AES256',
      kmsKeyId: undefined,
      partSizes: undefined,
      params: { StorageClass: 'STANDARD_IA', CacheControl: 'no-cache' },
    });
    expect(store.bodyOf('missing')).toBeUndefined();
    expect(store.removeObject('a')).toBe(true);
    expect(store.removeObject('a')).toBe(false);
    expect(await keysOf(store)).toEqual(['b/Ａ', 'b/😀']);
  });

  it('requestCount counts S3 requests: one per list page and per 1,000-key delete batch, failures included', T, async () => {
    const store = new MemoryObjectStore();
    for (let i = 0; i < 2500; i++) store.seedObject(`k/${String(i).padStart(4, '0')}`, 'x');
    expect(await keysOf(store, 'k/')).toHaveLength(2500);
    expect(store.requestCount('list')).toBe(3);
    await store.head('k/0000');
    await rejection(store.head('nope'));
    expect(await store.deleteMany(store.keys())).toEqual([]);
    expect(store.requestCounts()).toMatchObject({ list: 3, head: 2, deleteMany: 3, get: 0, put: 0 });
    expect(store.requestCount()).toBe(8);
    store.resetRequestCounts();
    expect(store.requestCount()).toBe(0);
  });

  it('failNext: the next N requests of an operation fail before anything happens, then it works again', T, async () => {
    const store = new MemoryObjectStore();
    store.failNext('put', s3LikeError('SlowDown', 503), 2);
    expect(store.pendingFaults()).toBe(1);
    await expect(store.put(putInput('p', 'x'))).rejects.toMatchObject({ code: 'THROTTLED', retryable: true });
    await expect(store.put(putInput('p', 'x'))).rejects.toMatchObject({ code: 'THROTTLED' });
    expect(store.inspect('p')).toBeUndefined();
    await store.put(putInput('p', 'x'));
    expect(store.requestCount('put')).toBe(3);
    expect(store.pendingFaults()).toBe(0);

    // A function gives a fresh error each time; a key filter picks the calls.
    let made = 0;
    store.failNext('get', () => new Error(`fresh ${++made}`), 2, { key: /^only\// });
    store.seedObject('only/a', 'a');
    expect(await text(await store.get('p'))).toBe('x');
    await expect(store.get('only/a')).rejects.toThrow('fresh 1');
    await expect(store.get('only/a')).rejects.toThrow('fresh 2');
    expect(await text(await store.get('only/a'))).toBe('a');
    expect(() => store.failNext('nope' as 'get', new Error('x'))).toThrow(RangeError);
  });

  it('failNext after: the operation is applied and its answer lost; a retried completion gets the same answer', T, async () => {
    const store = new MemoryObjectStore({ minPartSize: 1 });
    store.failNext('put', s3LikeError('InternalError', 500), 1, { after: true });
    await expect(store.put(putInput('lost', 'x'))).rejects.toMatchObject({ code: 'STORAGE', retryable: true });
    expect(store.bodyOf('lost')?.toString()).toBe('x');

    const id = await store.createMultipart({ key: 'm', partSize: 1, contentType: 'x', mtimeMs: 1 });
    const part = await store.uploadPart('m', id, 1, Buffer.from('p'), md5('p'));
    store.failNext('completeMultipart', s3LikeError('InternalError', 500), 1, { after: true });
    const list = [{ partNumber: 1, etag: part.etag }];
    await expect(store.completeMultipart('m', id, list)).rejects.toMatchObject({ retryable: true });
    expect(store.inspect('m')?.etag).toBe(multipartEtag([createHash('md5').update('p').digest()]));
    expect(await store.completeMultipart('m', id, list)).toEqual({ etag: store.inspect('m')?.etag, serverSideEncryption: 'AES256' });
    // Not with another part list, and not for another key.
    expect(await s3Name(store.completeMultipart('m', id, [{ partNumber: 1, etag: md5('other') }]))).toBe('NoSuchUpload');
    expect(await s3Name(store.completeMultipart('other', id, list))).toBe('NoSuchUpload');
    // Aborting a completed upload answers success, as S3 does for a while.
    await store.abortMultipart('m', id);
    expect(store.inspect('m')).toBeDefined();
  });

  it('a failing list page: the listing rejects after the pages before it', T, async () => {
    const store = new MemoryObjectStore();
    for (let i = 0; i < 1500; i++) store.seedObject(`l/${String(i).padStart(4, '0')}`, 'x');
    const pages: number[] = [];
    const listing = (async () => {
      for await (const page of store.list('l/')) {
        pages.push(page.length);
        if (pages.length === 1) store.failNext('list', s3LikeError('InternalError', 500));
      }
    })();
    await expect(listing).rejects.toMatchObject({ code: 'STORAGE', retryable: true });
    expect(pages).toEqual([1000]);
  });

  it('a listing continues after the last key returned: keys added behind the cursor are not seen, keys ahead are', T, async () => {
    const store = new MemoryObjectStore();
    for (let i = 0; i < 1200; i++) store.seedObject(`c/${String(i).padStart(4, '0')}`, 'x');
    const seen: string[] = [];
    for await (const page of store.list('c/')) {
      if (seen.length === 0) {
        store.seedObject('c/0000a', 'behind');
        store.seedObject('c/9999', 'ahead');
        store.removeObject('c/1100');
      }
      seen.push(...page.map((o) => o.key));
    }
    expect(seen).toHaveLength(1200);
    expect(seen).not.toContain('c/0000a');
    expect(seen).toContain('c/9999');
    expect(seen).not.toContain('c/1100');
  });

  it('deleteMany: per-key errors (failDeleteOf), a retryable batch failure reported key by key, a fatal one thrown', T, async () => {
    const store = new MemoryObjectStore();
    const keys = Array.from({ length: 1500 }, (_, i) => `d/${String(i).padStart(4, '0')}`);
    for (const k of keys) store.seedObject(k, 'x');
    store.failDeleteOf('d/0003');
    store.failDeleteOf(/^d\/001/, 'InternalError', 2);
    store.failNext('deleteMany', s3LikeError('InternalError', 500)); // the first batch fails as a whole
    const failures = await store.deleteMany(keys);
    expect(failures.filter((f) => /server error 500/.test(f.error) && f.code === 'STORAGE')).toHaveLength(1000);
    expect(failures.filter((f) => !/server error 500/.test(f.error))).toEqual([]);
    expect(store.keys('d/')).toEqual(keys.slice(0, 1000));
    const again = await store.deleteMany(store.keys('d/'));
    expect(again).toEqual([
      { key: 'd/0003', error: 'AccessDenied: Access Denied', code: 'ACCESS_DENIED' },
      { key: 'd/0010', error: expect.stringMatching(/^InternalError: /), code: 'STORAGE' },
      { key: 'd/0011', error: expect.stringMatching(/^InternalError: /), code: 'STORAGE' },
    ]);
    expect(store.keys('d/')).toEqual(['d/0003', 'd/0010', 'd/0011']);
    store.failNext('deleteMany', s3LikeError('AccessDenied', 403));
    await expect(store.deleteMany(['d/0003'])).rejects.toMatchObject({ code: 'ACCESS_DENIED' });
    store.clearFaults();
    expect(await store.deleteMany(store.keys('d/'))).toEqual([]);
  });
});

describe('MemoryObjectStore: encryption', () => {
  it('a bucket with default SSE-KMS: every write gets a non-MD5 ETag unless it asks for AES256; the KMS key is recorded', T, async () => {
    const store = new MemoryObjectStore({ bucketEncryption: 'aws:kms', minPartSize: 1 });
    const plain = await store.put(putInput('a', 'abc'));
    expect(plain.serverSideEncryption).toBe('aws:kms');
    expect(plain.etag).toMatch(/^[0-9a-f]{32}$/);
    expect(plain.etag).not.toBe(md5('abc'));
    const again = await store.put(putInput('a', 'abc'));
    expect(again.etag).not.toBe(plain.etag); // a new ETag for every write, as on AWS
    expect(store.inspect('a')?.kmsKeyId).toMatch(/^arn:aws:kms:/);
    const named = await store.put(putInput('b', 'abc', { params: { ServerSideEncryption: 'aws:kms', SSEKMSKeyId: 'alias/mine' } }));
    expect(named.serverSideEncryption).toBe('aws:kms');
    expect(store.inspect('b')?.kmsKeyId).toBe('alias/mine');
    expect(await store.put(putInput('c', 'abc', { params: { ServerSideEncryption: 'AES256' } }))).toEqual({ etag: md5('abc'), serverSideEncryption: 'AES256' });
  });

  it('bucketEncryption none: nothing reported (a server like s3rver), ETags are MD5s', T, async () => {
    const store = new MemoryObjectStore({ bucketEncryption: 'none' });
    expect(await store.put(putInput('a', 'abc'))).toEqual({ etag: md5('abc'), serverSideEncryption: undefined });
    expect((await store.head('a')).serverSideEncryption).toBeUndefined();
  });

  it('is deterministic: the same calls give the same upload ids and SSE-KMS ETags', T, async () => {
    const run = async () => {
      const store = new MemoryObjectStore({ bucketEncryption: 'aws:kms', minPartSize: 1, now: () => 0 });
      const put = await store.put(putInput('k', 'abc'));
      const id = await store.createMultipart({ key: 'm', partSize: 1, contentType: 'x', mtimeMs: 1 });
      const part = await store.uploadPart('m', id, 1, Buffer.from('p'), md5('p'));
      const done = await store.completeMultipart('m', id, [{ partNumber: 1, etag: part.etag }]);
      return [put.etag, id, part.etag, done.etag];
    };
    expect(await run()).toEqual(await run());
  });
});

describe('MemoryObjectStore: conditional requests', () => {
  it('ifMatch is evaluated when the object is committed: of two racing replacements of one version, one gets 412', T, async () => {
    const store = new MemoryObjectStore();
    const { etag } = await store.put(putInput('race', 'v1'));
    store.setDelay('put', 20);
    const results = await Promise.allSettled([store.put(putInput('race', 'one', { ifMatch: etag })), store.put(putInput('race', 'two', { ifMatch: etag }))]);
    expect(results.map((r) => r.status).sort()).toEqual(['fulfilled', 'rejected']);
    const lost = results.find((r) => r.status === 'rejected') as PromiseRejectedResult;
    expect(lost.reason).toMatchObject({ code: 'PRECONDITION_FAILED', statusCode: 412 });
    expect(['one', 'two']).toContain(store.bodyOf('race')?.toString());
  });

  it('completeMultipart evaluates its condition at completion: a key created after the upload started refuses ifNoneMatch; the upload stays pending', T, async () => {
    const store = new MemoryObjectStore({ minPartSize: 1 });
    const id = await store.createMultipart({ key: 'm', partSize: 4, contentType: 'x', mtimeMs: 1 });
    const part = await store.uploadPart('m', id, 1, Buffer.from('abcd'), md5('abcd'));
    store.seedObject('m', 'written meanwhile by another writer');
    await expect(store.completeMultipart('m', id, [{ partNumber: 1, etag: part.etag }], undefined, { ifNoneMatch: true })).rejects.toMatchObject({ code: 'PRECONDITION_FAILED' });
    expect(store.bodyOf('m')?.toString()).toBe('written meanwhile by another writer');
    expect(store.uploads().map((u) => u.uploadId)).toEqual([id]);
    // With the ETag just read, it completes.
    const done = await store.completeMultipart('m', id, [{ partNumber: 1, etag: part.etag }], undefined, { ifMatch: store.inspect('m')!.etag });
    expect(store.inspect('m')?.etag).toBe(done.etag);
  });

  it('conflictNext: matching conditional writes (put, completeMultipart, ETag deletes) answer 409 for `times` of them; unconditional ones pass; counted in pendingFaults, cleared by clearFaults', T, async () => {
    const store = new MemoryObjectStore({ minPartSize: 1 });
    store.seedObject('a/1', 'x');
    store.conflictNext(2, /^a\//);
    expect(store.pendingFaults()).toBe(1);
    await store.put(putInput('a/2', 'unconditional'));
    await store.put(putInput('b/1', 'other key', { ifNoneMatch: true }));
    const e = (await rejection(store.put(putInput('a/3', 'y', { ifNoneMatch: true })))) as StorageError;
    expect(e).toMatchObject({ code: 'CONFLICT', statusCode: 409, retryable: false });
    expect((e.cause as Error).name).toBe('ConditionalRequestConflict');
    expect(await store.deleteMany([{ key: 'a/1', etag: md5('x') }, 'a/2'])).toEqual([
      { key: 'a/1', error: expect.stringMatching(/^ConditionalRequestConflict: /), code: 'CONFLICT' },
    ]);
    expect(store.keys()).toEqual(['a/1', 'b/1']);
    expect(store.pendingFaults()).toBe(0);
    await store.put(putInput('a/3', 'y', { ifNoneMatch: true }));
    store.conflictNext(1, 'a/4');
    store.clearFaults();
    await store.put(putInput('a/4', 'z', { ifNoneMatch: true }));
    expect(() => store.conflictNext(0)).toThrow(RangeError);
  });

  it('reads: a HEAD 412 and any 304 are bodiless answers named Unknown, as the SDK names them; the key must exist first', T, async () => {
    const store = new MemoryObjectStore();
    const { etag } = await store.put(putInput('k', 'body'));
    const head412 = (await rejection(store.head('k', undefined, { ifMatch: md5('other') }))) as StorageError;
    expect({ code: head412.code, status: head412.statusCode, name: (head412.cause as Error).name, message: head412.message }).toEqual({
      code: 'PRECONDITION_FAILED',
      status: 412,
      name: 'Unknown',
      message: 's3://memory/k: precondition failed (HTTP 412)',
    });
    const get304 = (await rejection(store.get('k', undefined, { ifNoneMatch: `"${etag}"` }))) as StorageError;
    expect({ code: get304.code, status: get304.statusCode, name: (get304.cause as Error).name }).toEqual({ code: 'NOT_MODIFIED', status: 304, name: 'Unknown' });
    expect(store.requestCounts()).toMatchObject({ head: 1, get: 1 });
    await expect(store.get('none', undefined, { ifMatch: etag })).rejects.toMatchObject({ code: 'NOT_FOUND' });
  });

  it("probeConditionalWrites: 'enforced', 2 puts + 1 delete, nothing left; 'unknown' on access denied, scratch key still removed; an abort rethrows its reason after the cleanup", T, async () => {
    const store = new MemoryObjectStore();
    store.seedObject('ws/keep', 'k');
    expect(await probeConditionalWrites(store, 'ws/')).toBe('enforced');
    expect(store.requestCounts()).toMatchObject({ put: 2, deleteMany: 1, head: 0, get: 0, list: 0 });
    expect(store.keys()).toEqual(['ws/keep']);

    store.resetRequestCounts();
    store.failNext('put', s3LikeError('AccessDenied', 403), 1);
    const denied = await probeConditionalWritesDetailed(store, 'ws/');
    expect(denied).toMatchObject({ support: 'unknown', error: { code: 'ACCESS_DENIED' } });
    expect(store.requestCounts()).toMatchObject({ put: 1, deleteMany: 1 });

    // The second PUT denied: the first one's object is removed all the same.
    let puts = 0;
    const original = store.put.bind(store);
    store.put = async (input) => {
      if (++puts === 2) throw s3LikeError('AccessDenied', 403);
      return original(input);
    };
    expect(await probeConditionalWrites(store, 'ws/')).toBe('unknown');
    expect(store.keys()).toEqual(['ws/keep']);
    store.put = original;

    // The cleanup fails: still an answer, not a throw (the scratch object stays, named as such).
    store.failNext('deleteMany', s3LikeError('AccessDenied', 403));
    expect(await probeConditionalWrites(store, 'ws/')).toBe('enforced');
    expect(store.keys().filter((k) => k !== 'ws/keep')).toEqual([expect.stringMatching(/^ws\/\.s3-workspace-sync\/probe-[0-9a-f]{16}$/)]);
    for (const k of store.keys()) if (k !== 'ws/keep') store.removeObject(k);

    const controller = new AbortController();
    const reason = new Error('stop');
    store.setDelay('put', 50);
    const probing = probeConditionalWrites(store, 'ws/', controller.signal);
    setTimeout(() => controller.abort(reason), 10);
    await expect(probing).rejects.toBe(reason);
    expect(store.keys()).toEqual(['ws/keep']);
  });
});
