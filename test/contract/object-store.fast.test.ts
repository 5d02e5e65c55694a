// The ObjectStore contract on S3ObjectStore with `transport: 'auto'`: GetObject
// (whole and ranged) and single-request PutObject go over the fast path
// (src/storage/fast-path.ts), against s3rver and against the strict S3 double.
// The capabilities are those of object-store.s3rver.test.ts and
// object-store.strict.test.ts: the fast path must not change an answer.
//
// Requests are counted as the SDK harnesses count them (one per request the
// server answered, retries not counted): the SDK's through the client's
// middleware, the fast path's through the store's `onFastRequest` hook. An
// answer the fast path does not take (a non-2xx other than 304, 404, 409 and
// 412, which it answers itself) is sent again through the SDK, and counted
// there only.
import { S3Client } from '@aws-sdk/client-s3';
import { afterAll, afterEach, beforeAll, describe, expect, it, onTestFinished } from 'vitest';

import { S3ObjectStore } from '../../src/storage/S3ObjectStore.js';
import { TEST_CREDENTIALS, TEST_REGION, createTestBucket, putObjects, s3Endpoint } from '../helpers/s3.js';
import { startStrictS3, type StrictS3 } from '../helpers/strict-s3.js';
import { countRequests, describeObjectStoreContract, quietLogger, type CountedRequest, type ObjectStoreCapabilities } from './object-store-contract.js';

const MIN_PART = 1024;

/** A store on the fast transport, its requests counted on both paths. */
function fastStore(client: S3Client, bucket: string): { store: S3ObjectStore; requests: (kind: CountedRequest) => number; fast: Map<string, number> } {
  const sdk = countRequests(client);
  const fast = new Map<string, number>();
  const store = new S3ObjectStore(client, bucket, {
    transport: 'auto',
    // the harness built the client; its only middleware (the counter) observes
    ownsClient: true,
    onFastRequest: (op) => fast.set(op, (fast.get(op) ?? 0) + 1),
  });
  return { store, fast, requests: (kind) => sdk(kind) + (fast.get(kind) ?? 0) };
}

const S3RVER_CAPS: ObjectStoreCapabilities = {
  minPartSize: 1024,
  conditionalWrites: false,
  conditionalDeletes: false,
  readIfMatch: false,
  readIfNoneMatch: true,
  contentMd5: false,
  multipartEtag: false,
  multipartValidation: false,
  multipartAbortAndListing: false,
  copySourceConditions: false,
  copySourceDecoding: false,
  byteOrderListing: false,
  partNumberHead: false,
  sseKms: false,
  reportsSseS3: false,
  emptyObjectRange: false,
  abortRejectsWithReason: false,
};

function s3rverClient(): S3Client {
  return new S3Client({
    endpoint: s3Endpoint(),
    region: TEST_REGION,
    forcePathStyle: true,
    credentials: { ...TEST_CREDENTIALS },
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    logger: quietLogger,
  });
}

describeObjectStoreContract('S3ObjectStore (fast transport) on s3rver', async () => {
  const client = s3rverClient();
  const bucket = await createTestBucket(client);
  const { store, requests, fast } = fastStore(client, bucket);
  return {
    store,
    seed: (objects) => putObjects(client, bucket, Object.fromEntries(objects)),
    requests,
    failDeleteOf: undefined,
    conflictNext: undefined,
    cleanup: () => {
      client.destroy();
      void fast;
    },
  };
}, S3RVER_CAPS, { bucketDefaultKms: false, skipBulk: true }); // bulk listing runs on the strict double below (1,003 keys on s3rver take long)

let strict: StrictS3;
let n = 0;

beforeAll(async () => {
  strict = await startStrictS3({ minPartSize: MIN_PART });
});
afterAll(async () => {
  await strict.close();
});
afterEach(() => {
  expect(strict.state.internalErrors).toEqual([]);
  strict.state.clearFaults();
});

function strictClient(): S3Client {
  return new S3Client({
    endpoint: strict.endpoint,
    forcePathStyle: true,
    region: 'us-east-1',
    credentials: { accessKeyId: 'x', secretAccessKey: 'y' },
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    logger: quietLogger,
  });
}

describeObjectStoreContract(
  'S3ObjectStore (fast transport) on the strict S3 double',
  async (options = {}) => {
    const bucket = `fast-${++n}`;
    strict.state.createBucket(bucket);
    if (options.bucketKms === true) strict.state.setBucketEncryption(bucket, { algorithm: 'aws:kms' });
    const client = strictClient();
    const { store, requests } = fastStore(client, bucket);
    return {
      store,
      seed: async (objects) => {
        for (const [key, body] of objects) strict.state.putObject(bucket, key, body);
      },
      requests,
      failDeleteOf: (key) => {
        strict.state.failDeleteOfKey(key);
      },
      // The fast path answers a 409 itself (final for the SDK too): one conflict, one request.
      conflictNext: (key) => {
        strict.state.conflictNext({ bucket, key });
      },
      cleanup: () => client.destroy(),
    };
  },
  {
    minPartSize: MIN_PART,
    conditionalWrites: true,
    conditionalDeletes: true,
    readIfMatch: true,
    readIfNoneMatch: true,
    contentMd5: true,
    multipartEtag: true,
    multipartValidation: true,
    multipartAbortAndListing: true,
    copySourceConditions: true,
    copySourceDecoding: true,
    byteOrderListing: true,
    partNumberHead: true,
    sseKms: true,
    reportsSseS3: true,
    emptyObjectRange: true,
    abortRejectsWithReason: false,
  },
  { bucketDefaultKms: true, skipBulk: false },
);

describe('fast transport: the requests really take the fast path', () => {
  it('put, get and getRange are answered by the fast path; the SDK sends none of them; the signature is s3rver-checked', { timeout: 10_000 }, async () => {
    const client = s3rverClient();
    onTestFinished(() => client.destroy());
    const bucket = await createTestBucket(client);
    const { store, fast, requests } = fastStore(client, bucket);
    const body = Buffer.from('hello fast path');
    const md5 = (await import('node:crypto')).createHash('md5').update(body).digest('hex');
    // a key the SDK would encode: spaces, RFC 3986 reserved characters, non-ASCII
    const key = "d/x y+!'()*é~.txt";
    await store.put({ key, body, size: body.length, md5, contentType: 'text/plain', mtimeMs: 1_700_000_000_000, params: { Metadata: { team: 'a' }, CacheControl: 'no-cache' } });
    const got = await store.get(key);
    const chunks: Buffer[] = [];
    for await (const c of got.body) chunks.push(c as Buffer);
    expect(Buffer.concat(chunks).toString()).toBe('hello fast path');
    expect(got).toMatchObject({ size: body.length, etag: md5, md5, mtimeMs: 1_700_000_000_000 });
    const range = await store.getRange(key, 0, 4);
    const r: Buffer[] = [];
    for await (const c of range.body) r.push(c as Buffer);
    expect(Buffer.concat(r).toString()).toBe('hello');
    expect(Object.fromEntries(fast)).toEqual({ put: 1, get: 1, getRange: 1 });
    expect(requests('put') + requests('get') + requests('getRange')).toBe(3);
  });

  it('listings are answered by the fast path (XML characters, pages, keys under the prefix only) and equal the SDK\'s, on s3rver and on the strict double', { timeout: 30_000 }, async () => {
    const keys = [`x/a&b<c>"d'e`, 'x/&amp;', 'x/&#38;', 'x/é 😀+%25', 'x/sub/f', 'y/other', ...Array.from({ length: 1005 }, (_, i) => `x/many/${i}`)];
    const servers: Array<{ name: string; client: S3Client; bucket: string }> = [];
    const s3c = s3rverClient();
    onTestFinished(() => s3c.destroy());
    const b1 = await createTestBucket(s3c);
    await putObjects(s3c, b1, Object.fromEntries(keys.slice(0, 6).map((k) => [k, Buffer.from(k)])));
    servers.push({ name: 's3rver', client: s3c, bucket: b1 });
    const sc = strictClient();
    onTestFinished(() => sc.destroy());
    const b2 = `fast-list-${++n}`;
    strict.state.createBucket(b2);
    for (const k of keys) strict.state.putObject(b2, k, Buffer.from(k));
    servers.push({ name: 'strict', client: sc, bucket: b2 });
    for (const { name, client, bucket } of servers) {
      const { store, fast, requests } = fastStore(client, bucket);
      const viaSdk = new S3ObjectStore(client, bucket, { transport: 'sdk' });
      const collect = async (s: S3ObjectStore): Promise<{ pages: number; objects: Array<{ key: string; size: number; etag: string; lastModifiedMs?: number | undefined }> }> => {
        let pages = 0;
        const objects = [];
        for await (const page of s.list('x/')) {
          pages++;
          objects.push(...page);
        }
        return { pages, objects: objects.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0)) };
      };
      const fastListing = await collect(store);
      const sdkListBefore = requests('list') - (fast.get('list') ?? 0);
      const sdkListing = await collect(viaSdk);
      expect(fastListing, name).toEqual(sdkListing);
      expect(fastListing.objects.map((o) => o.key), name).toEqual(keys.filter((k) => k.startsWith('x/') && (name === 'strict' || !k.includes('many'))).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0)));
      expect(fast.get('list'), name).toBe(fastListing.pages);
      expect(sdkListBefore, name).toBe(0); // none sent again through the SDK
      expect(fastListing.pages, name).toBe(name === 'strict' ? 2 : 1);
    }
  });

  it('a client with middleware of its own is not trusted: everything goes through the SDK', { timeout: 10_000 }, async () => {
    const client = s3rverClient();
    onTestFinished(() => client.destroy());
    const bucket = await createTestBucket(client);
    let seen = 0;
    client.middlewareStack.add((next) => (args) => { seen++; return next(args); }, { step: 'build', name: 'users-own' });
    const fast: string[] = [];
    const store = new S3ObjectStore(client, bucket, { transport: 'auto', onFastRequest: (op) => fast.push(op) });
    const body = Buffer.from('x');
    await store.put({ key: 'k', body, size: 1, md5: '9dd4e461268c8034f5c8564e155c67a6', contentType: 'text/plain', mtimeMs: 1 });
    (await store.get('k')).body.resume();
    expect(fast).toEqual([]);
    expect(seen).toBeGreaterThanOrEqual(2);
  });

  it("checksums: the SDK's default ('WHEN_SUPPORTED': a CRC32 on each PutObject, GetObject checksums validated) keeps that operation on the SDK", { timeout: 10_000 }, async () => {
    const client = new S3Client({
      endpoint: s3Endpoint(),
      region: TEST_REGION,
      forcePathStyle: true,
      credentials: { ...TEST_CREDENTIALS },
      responseChecksumValidation: 'WHEN_REQUIRED', // requestChecksumCalculation left at the default
      logger: quietLogger,
    });
    onTestFinished(() => client.destroy());
    const bucket = await createTestBucket(client);
    const fast: string[] = [];
    const store = new S3ObjectStore(client, bucket, { transport: 'auto', onFastRequest: (op) => fast.push(op) });
    const body = Buffer.from('x');
    await store.put({ key: 'k', body, size: 1, md5: '9dd4e461268c8034f5c8564e155c67a6', contentType: 'text/plain', mtimeMs: 1 });
    (await store.get('k')).body.resume();
    expect(fast).toEqual(['get']); // a stock client: trusted without ownsClient
  });

  it("a body of 2 MiB or more (the SDK's Expect: 100-continue threshold) is sent by the SDK; one byte less by the fast path", { timeout: 10_000 }, async () => {
    const client = s3rverClient();
    onTestFinished(() => client.destroy());
    const bucket = await createTestBucket(client);
    const { store, fast } = fastStore(client, bucket);
    const { createHash } = await import('node:crypto');
    for (const size of [2 * 1024 * 1024 - 1, 2 * 1024 * 1024]) {
      const body = Buffer.alloc(size, 3);
      await store.put({ key: `s${size}`, body, size, md5: createHash('md5').update(body).digest('hex'), contentType: 'application/octet-stream', mtimeMs: 1 });
    }
    expect(fast.get('put')).toBe(1);
  });
});
