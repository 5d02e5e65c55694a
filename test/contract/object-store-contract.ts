// The ObjectStore contract: one suite of observable behaviour, run on every
// store (test/contract/object-store.*.test.ts):
//   - MemoryObjectStore (the strict in-memory fake the pipeline tests use);
//   - S3ObjectStore over a real S3Client against the strict HTTP double
//     (test/helpers/strict-s3.ts: S3's semantics, checked by its own suite);
//   - S3ObjectStore against s3rver (a third-party server: an independent check
//     of everything it supports).
// The fake cannot drift from the real store without a case failing here.
//
// What a server lacks is declared as data (ObjectStoreCapabilities, rclone's
// `Features` idea): a case that needs it is skipped, with the reason in its
// name, and each flag names the gap it documents. A flag is set from running
// the case against the server, never from guessing.
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';

import type { S3Client } from '@aws-sdk/client-s3';
import { describe, expect, it, onTestFinished } from 'vitest';

import { multipartEtag } from '../../src/core/md5.js';
import { StorageError } from '../../src/errors.js';
import { etagIsNotMd5, type GetResult, type ObjectStore } from '../../src/storage/ObjectStore.js';
import { PROBE_NAME_PREFIX, probeConditionalWrites } from '../../src/storage/capabilities.js';

/** What a store under test can do. Every `false` names the server gap it stands for. */
export interface ObjectStoreCapabilities {
  /** Minimum size of every part but the last (EntityTooSmall); the multipart cases use parts of this size. */
  minPartSize: number;
  /**
   * Conditional writes are enforced (PutObject and CompleteMultipartUpload):
   * `If-None-Match: *` refused with 412 when the key exists, `If-Match` with
   * 412 when the ETag differs and 404 when the key does not exist.
   */
  conditionalWrites: boolean;
  /**
   * DeleteObjects honours a per-object `<ETag>`: a key whose ETag differs is
   * reported (PreconditionFailed) and kept, a missing one reported (NoSuchKey).
   */
  conditionalDeletes: boolean;
  /** GET (ranged too) and HEAD honour `If-Match`: 412 when the ETag differs. */
  readIfMatch: boolean;
  /** GET (ranged too) and HEAD honour `If-None-Match`: 304 when the ETag (or `*`) matches. */
  readIfNoneMatch: boolean;
  /** A put or part whose Content-MD5 does not match its body is refused (BadDigest). */
  contentMd5: boolean;
  /** A multipart object's ETag is S3's: md5 of the binary part MD5s, `-N`. */
  multipartEtag: boolean;
  /**
   * Completion refuses undersized parts (EntityTooSmall), wrong or missing part
   * ETags (InvalidPart), parts out of order (InvalidPartOrder); part numbers
   * outside 1..10000 are refused; an unknown upload id is NoSuchUpload (404).
   */
  multipartValidation: boolean;
  /** AbortMultipartUpload and ListMultipartUploads work. */
  multipartAbortAndListing: boolean;
  /**
   * CopyObject honours `x-amz-copy-source-if-match`: a source whose ETag
   * differs is refused with 412 and nothing is written.
   */
  copySourceConditions: boolean;
  /** CopyObject URL-decodes `x-amz-copy-source` fully (any key can be a copy source). */
  copySourceDecoding: boolean;
  /** Listings come in S3's order (UTF-8 bytes). */
  byteOrderListing: boolean;
  /** HeadObject with `partNumber=1` says how many parts there are (x-amz-mp-parts-count): `firstPartSize`. */
  partNumberHead: boolean;
  /** SSE-KMS / DSSE-KMS writes are honoured: non-MD5 ETags, encryption reported. */
  sseKms: boolean;
  /** Every object reports its encryption: `AES256` (SSE-S3) by default, as S3 does since 2023. */
  reportsSseS3: boolean;
  /** A ranged GET of an empty object is refused with 416 InvalidRange (there is no byte 0). */
  emptyObjectRange: boolean;
  /**
   * Not a server gap but the store's own choice: an aborted `signal` rejects
   * with `signal.reason` itself (MemoryObjectStore). S3ObjectStore rejects
   * with a StorageError (code STORAGE, "was aborted"), `deleteMany`
   * included (it used to resolve with every key as a failure).
   */
  abortRejectsWithReason: boolean;
}

/** Requests counted by {@link ContractStore.requests}: one per S3 request, retries not included. */
export type CountedRequest =
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

/** One fresh, empty store (its own bucket) for one test. */
export interface ContractStore {
  store: ObjectStore;
  /** Plant objects as another tool would (no metadata), by the fastest path the store has. */
  seed(objects: ReadonlyArray<readonly [string, Buffer]>): Promise<void>;
  /** Requests of one kind this store has sent since it was set up. */
  requests(kind: CountedRequest): number;
  /** Report a per-key error (AccessDenied) for this key in the next DeleteObjects; `undefined`: the store cannot. */
  failDeleteOf?: ((key: string) => void) | undefined;
  /** The next conditional write of this key answers 409 ConditionalRequestConflict; `undefined`: the store cannot. */
  conflictNext?: ((key: string) => void) | undefined;
  /** Called when the test ends. */
  cleanup?: (() => Promise<void> | void) | undefined;
}

export interface ContractSetupOptions {
  /** The bucket's default encryption is SSE-KMS (only asked of stores with `bucketDefaultKms`). */
  bucketKms?: boolean;
}

export type ContractSetup = (options?: ContractSetupOptions) => Promise<ContractStore>;

/** Extra knobs of a harness (not server capabilities). */
export interface ContractHarnessFeatures {
  /** The harness can give a bucket with default SSE-KMS encryption. */
  bucketDefaultKms: boolean;
  /**
   * Skip the cases of more than 1,000 keys (listing pages, delete batches):
   * for a harness that differs from another one only in GET and PUT (the
   * fast transport), where they would only repeat seconds of LIST and
   * DeleteObjects. Default false.
   */
  skipBulk?: boolean;
}

// ---------------------------------------------------------------------------
// Fixed data and small helpers

const md5 = (b: Buffer): string => createHash('md5').update(b).digest('hex');
const md5Bin = (b: Buffer): Buffer => createHash('md5').update(b).digest();

/** `n` deterministic pseudo-random bytes (an LCG with a fixed seed). */
export function bytes(n: number, seed: number): Buffer {
  const b = Buffer.alloc(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    b[i] = x >>> 24;
  }
  return b;
}

const byteOrder = (a: string, b: string): number => Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));

async function readBody(r: GetResult): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of r.body) chunks.push(Buffer.from(c as Uint8Array));
  return Buffer.concat(chunks);
}

async function listAll(store: ObjectStore, prefix: string, signal?: AbortSignal) {
  const pages = [];
  for await (const page of store.list(prefix, signal)) pages.push(page);
  return { pages, objects: pages.flat() };
}

/** The rejection of `p`, which must reject. */
async function rejection(p: Promise<unknown>): Promise<unknown> {
  let value: unknown;
  try {
    value = await p;
  } catch (e) {
    return e;
  }
  // An unexpected download: release its body (an unread body holds a socket).
  const body = (value as { body?: unknown } | undefined)?.body;
  if (body instanceof Readable) {
    body.on('error', () => undefined);
    body.destroy();
  }
  throw new Error('expected a rejection, the call succeeded');
}

/**
 * `p` rejects with a StorageError like S3ObjectStore makes from S3's answer:
 * code, HTTP status, retryable, and a cause named as the SDK names S3's error.
 */
async function expectStorageError(
  p: Promise<unknown>,
  expected: { code: string; statusCode: number; retryable?: boolean; s3: string | readonly string[] },
): Promise<StorageError> {
  const e = await rejection(p);
  expect(e).toBeInstanceOf(StorageError);
  const se = e as StorageError;
  expect({ code: se.code, statusCode: se.statusCode, retryable: se.retryable }).toEqual({
    code: expected.code,
    statusCode: expected.statusCode,
    retryable: expected.retryable ?? false,
  });
  const names = typeof expected.s3 === 'string' ? [expected.s3] : expected.s3;
  expect(names).toContain((se.cause as { name?: string } | undefined)?.name);
  return se;
}

const putInput = (key: string, body: Buffer, extra: Record<string, unknown> = {}) => ({
  key,
  body,
  size: body.length,
  md5: md5(body),
  contentType: 'application/octet-stream',
  mtimeMs: 1_700_000_000_123,
  ...extra,
});

/** An SDK logger that says nothing (the SDK warns on the console when a stream upload is aborted). */
export const quietLogger = { trace: () => undefined, debug: () => undefined, info: () => undefined, warn: () => undefined, error: () => undefined };

/**
 * Count the S3 requests a client's `send`s got an answer to (one per `send`,
 * retries not counted; a request aborted before it was sent not counted
 * either), by the ObjectStore operation that sends them: for the S3 harnesses.
 */
export function countRequests(client: S3Client): (kind: CountedRequest) => number {
  const counts = new Map<CountedRequest, number>();
  client.middlewareStack.add(
    (next, context) => async (args) => {
      const input = args.input as { PartNumber?: number; Range?: string };
      const kind: CountedRequest | undefined = (
        {
          ListObjectsV2Command: 'list',
          HeadObjectCommand: input.PartNumber !== undefined ? 'firstPartSize' : 'head',
          GetObjectCommand: input.Range !== undefined ? 'getRange' : 'get',
          PutObjectCommand: 'put',
          DeleteObjectsCommand: 'deleteMany',
          CreateMultipartUploadCommand: 'createMultipart',
          UploadPartCommand: 'uploadPart',
          CompleteMultipartUploadCommand: 'completeMultipart',
          AbortMultipartUploadCommand: 'abortMultipart',
          ListMultipartUploadsCommand: 'listMultipartUploads',
          CopyObjectCommand: 'copy',
        } as Record<string, CountedRequest>
      )[context.commandName ?? ""];
      const count = (): void => {
        if (kind !== undefined) counts.set(kind, (counts.get(kind) ?? 0) + 1);
      };
      try {
        const out = await next(args);
        count();
        return out;
      } catch (error) {
        // Counted when the server answered (an error status); a request never sent (aborted first) is not.
        if ((error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode !== undefined) count();
        throw error;
      }
    },
    { step: 'initialize', name: 'contract-request-counter' },
  );
  return (kind) => counts.get(kind) ?? 0;
}

// ---------------------------------------------------------------------------
// The suite

const QUICK = { timeout: 10_000 };
const BULK = { timeout: 30_000 };

/**
 * Register the ObjectStore contract for one store.
 *
 * @param name  the store, e.g. `MemoryObjectStore`
 * @param setup a fresh, empty store per test
 * @param caps  what the server can do (each `false` skips the cases that need it, saying why)
 */
export function describeObjectStoreContract(
  name: string,
  setup: ContractSetup,
  caps: ObjectStoreCapabilities,
  harness: ContractHarnessFeatures = { bucketDefaultKms: false },
): void {
  async function fresh(options?: ContractSetupOptions): Promise<ContractStore> {
    const h = await setup(options);
    onTestFinished(async () => {
      await h.cleanup?.();
    });
    return h;
  }

  /** The encryption a plain object reports. */
  const plainSse = caps.reportsSseS3 ? 'AES256' : undefined;
  const P = caps.minPartSize;

  describe(`ObjectStore contract: ${name}`, () => {
    describe('put / head / get', () => {
      it('a Buffer body whose length is not `size` is refused at once, and nothing is stored', QUICK, async () => {
        const { store } = await fresh();
        const body = bytes(100, 9);
        for (const size of [99, 101]) {
          const e = await rejection(store.put({ ...putInput('wrong-size', body), size }));
          expect(e).toBeInstanceOf(Error);
        }
        expect((await listAll(store, '')).objects.map((o) => o.key)).toEqual([]);
      });

      it('round trip: the ETag is the MD5; head and get report size, md5 and mtime from metadata, LastModified in whole seconds', QUICK, async () => {
        const { store, requests } = await fresh();
        const body = bytes(3000, 1);
        const before = Date.now();
        const put = await store.put(
          putInput('dir/file.bin', body, { contentType: 'application/x-test', params: { Metadata: { team: 'agents' }, CacheControl: 'max-age=60' } }),
        );
        expect(put).toEqual({ etag: md5(body), serverSideEncryption: plainSse });

        const head = await store.head('dir/file.bin');
        expect(head).toEqual({
          size: 3000,
          etag: md5(body),
          md5: md5(body),
          mtimeMs: 1_700_000_000_123,
          lastModifiedMs: expect.any(Number),
          serverSideEncryption: plainSse,
        });
        expect(head.lastModifiedMs! % 1000).toBe(0);
        expect(head.lastModifiedMs!).toBeGreaterThanOrEqual(Math.floor(before / 1000) * 1000 - 2000);
        expect(head.lastModifiedMs!).toBeLessThanOrEqual(Date.now() + 2000);
        expect(head.partSize).toBeUndefined();
        expect(etagIsNotMd5(head.serverSideEncryption)).toBe(false);

        const got = await store.get('dir/file.bin');
        const { body: stream, ...info } = got;
        expect(info).toEqual(head);
        expect((await readBody({ ...info, body: stream })).equals(body)).toBe(true);
        expect({ put: requests('put'), head: requests('head'), get: requests('get'), getRange: requests('getRange') }).toEqual({ put: 1, head: 1, get: 1, getRange: 0 });
      });

      it('ETag = MD5 for an empty body and for a body factory, whose stream is read to its end', QUICK, async () => {
        const { store } = await fresh();
        const empty = await store.put(putInput('empty', Buffer.alloc(0)));
        expect(empty.etag).toBe('d41d8cd98f00b204e9800998ecf8427e');

        const body = bytes(70_000, 2);
        let opened = 0;
        let streamed = 0;
        const factory = () => {
          opened++;
          return Readable.from(
            (function* () {
              for (let o = 0; o < body.length; o += 16_384) {
                const chunk = body.subarray(o, o + 16_384);
                streamed += chunk.length;
                yield chunk;
              }
            })(),
          );
        };
        const put = await store.put({ ...putInput('streamed', body), body: factory });
        expect(put.etag).toBe(md5(body));
        expect(opened).toBe(1);
        expect(streamed).toBe(body.length);
        expect((await readBody(await store.get('streamed'))).equals(body)).toBe(true);
        expect((await store.head('empty')).size).toBe(0);
      });

      it.skipIf(!caps.contentMd5)(
        `a Content-MD5 that does not match the body is refused (BadDigest) and stores nothing${caps.contentMd5 ? '' : ' -- SKIPPED: the server does not verify Content-MD5'}`,
        QUICK,
        async () => {
          const { store } = await fresh();
          const body = Buffer.from('payload');
          await expectStorageError(store.put(putInput('bad', body, { md5: md5(Buffer.from('other')) })), { code: 'STORAGE', statusCode: 400, s3: 'BadDigest' });
          await expectStorageError(store.head('bad'), { code: 'NOT_FOUND', statusCode: 404, s3: 'NotFound' });
        },
      );

      it.skipIf(!caps.conditionalWrites)(
        `ifNoneMatch creates only: a second create is PRECONDITION_FAILED (412) and the first content stays${caps.conditionalWrites ? '' : ' -- SKIPPED: the server ignores If-None-Match on writes'}`,
        QUICK,
        async () => {
          const { store } = await fresh();
          const first = Buffer.from('first');
          const second = Buffer.from('second');
          await store.put(putInput('once', first, { ifNoneMatch: true }));
          await expectStorageError(store.put(putInput('once', second, { ifNoneMatch: true })), { code: 'PRECONDITION_FAILED', statusCode: 412, s3: 'PreconditionFailed' });
          expect((await readBody(await store.get('once'))).toString()).toBe('first');
          // Without the condition, the same write replaces the object.
          await store.put(putInput('once', second));
          expect((await readBody(await store.get('once'))).toString()).toBe('second');
        },
      );

      it('NOT_FOUND (404, not retryable) for head, get, getRange and firstPartSize of a missing key', QUICK, async () => {
        const { store } = await fresh();
        await store.put(putInput('present', Buffer.from('x')));
        // HEAD errors have no body: the SDK names them by status (NotFound).
        await expectStorageError(store.head('missing'), { code: 'NOT_FOUND', statusCode: 404, s3: 'NotFound' });
        await expectStorageError(store.get('missing'), { code: 'NOT_FOUND', statusCode: 404, s3: 'NoSuchKey' });
        await expectStorageError(store.getRange('missing', 0, 0), { code: 'NOT_FOUND', statusCode: 404, s3: 'NoSuchKey' });
        await expectStorageError(store.firstPartSize('missing'), { code: 'NOT_FOUND', statusCode: 404, s3: 'NotFound' });
        // A key is not a prefix: `present/` and `presen` are other keys.
        await expectStorageError(store.head('presen'), { code: 'NOT_FOUND', statusCode: 404, s3: 'NotFound' });
      });
    });

    describe('getRange', () => {
      it('bytes start..end inclusive; an end past the object is clamped; the info is the range\'s', QUICK, async () => {
        const { store } = await fresh();
        const body = bytes(100, 3);
        const { etag } = await store.put(putInput('r', body));
        const mid = await store.getRange('r', 10, 19);
        expect((await readBody(mid)).equals(body.subarray(10, 20))).toBe(true);
        expect({ size: mid.size, etag: mid.etag, md5: mid.md5 }).toEqual({ size: 10, etag, md5: md5(body) });
        const one = await store.getRange('r', 99, 99);
        expect((await readBody(one)).equals(body.subarray(99))).toBe(true);
        const tail = await store.getRange('r', 90, 1000);
        expect((await readBody(tail)).equals(body.subarray(90))).toBe(true);
        expect(tail.size).toBe(10);
      });

      it('a range starting at or past the end is refused (416 InvalidRange, not retryable)', QUICK, async () => {
        const { store } = await fresh();
        await store.put(putInput('r', bytes(100, 4)));
        await expectStorageError(store.getRange('r', 100, 200), { code: 'STORAGE', statusCode: 416, s3: 'InvalidRange' });
        await expectStorageError(store.getRange('r', 150, 150), { code: 'STORAGE', statusCode: 416, s3: 'InvalidRange' });
      });

      it.skipIf(!caps.emptyObjectRange)(
        `any range of an empty object is refused (416 InvalidRange)${caps.emptyObjectRange ? '' : ' -- SKIPPED: the server resets the connection instead of answering'}`,
        QUICK,
        async () => {
          const { store } = await fresh();
          await store.put(putInput('empty', Buffer.alloc(0)));
          await expectStorageError(store.getRange('empty', 0, 0), { code: 'STORAGE', statusCode: 416, s3: 'InvalidRange' });
        },
      );
    });

    describe('list', () => {
      it.skipIf(harness.skipBulk === true)(`more than 1,000 keys: pages of at most 1,000, one request each, every key once${caps.byteOrderListing ? ', in byte order' : ' (order not checked: the server does not list in S3 order)'}`, BULK, async () => {
        const { store, seed, requests } = await fresh();
        const keys = Array.from({ length: 1003 }, (_, i) => `many/k${String(i).padStart(4, '0')}`);
        await seed([...keys.map((k, i) => [k, Buffer.from(`v${i}`)] as const), ['many', Buffer.from('no slash')], ['manz/x', Buffer.from('after')], ['man', Buffer.from('before')]]);
        const { pages, objects } = await listAll(store, 'many/');
        expect(pages.length).toBeGreaterThanOrEqual(2);
        for (const page of pages) expect(page.length).toBeLessThanOrEqual(1000);
        expect(requests('list')).toBe(pages.length);
        const listed = objects.map((o) => o.key);
        if (caps.byteOrderListing) expect(listed).toEqual(keys);
        else expect([...listed].sort(byteOrder)).toEqual(keys);
        const k7 = objects.find((o) => o.key === 'many/k0007');
        expect(k7).toMatchObject({ size: 2, etag: md5(Buffer.from('v7')) });
        expect(typeof k7?.lastModifiedMs).toBe('number');
      });

      it.skipIf(!caps.byteOrderListing)(
        `keys come in UTF-8 byte order, not JavaScript's UTF-16 order${caps.byteOrderListing ? '' : ' -- SKIPPED: the server lists in directory-walk order'}`,
        QUICK,
        async () => {
          const { store, seed } = await fresh();
          const names = ['é', 'Z', 'a', '~', '😀', 'Ａ', 'a-b', 'a.b', 'a/b', 'A'];
          await seed(names.map((n) => [`order/${n}`, Buffer.from(n)] as const));
          const listed = (await listAll(store, 'order/')).objects.map((o) => o.key.slice('order/'.length));
          expect(listed).toEqual(['A', 'Z', 'a', 'a-b', 'a.b', 'a/b', '~', 'é', 'Ａ', '😀']);
          // JavaScript's sort puts U+1F600 (a surrogate pair) before U+FF21: S3 does not.
          expect([...names].sort()).not.toEqual(listed);
        },
      );

      it('every key is listed once whatever its characters (order aside)', QUICK, async () => {
        const { store, seed } = await fresh();
        // XML's own characters too: a listing is XML, and its reader must decode them (&amp; &lt; &gt; &quot; &apos;)
        const names = ['é', 'Z', 'a', '~', '😀', 'Ａ', 'a-b', 'a.b', 'a/b', 'sp ace+plus%25', `x&y<z>"q'`, '&amp;', '&#38;'];
        await seed(names.map((n) => [`chars/${n}`, Buffer.from(n)] as const));
        const listed = (await listAll(store, 'chars/')).objects.map((o) => o.key.slice('chars/'.length));
        expect([...listed].sort(byteOrder)).toEqual([...names].sort(byteOrder));
      });

      it('only keys under the prefix; an empty prefix lists everything; an unknown prefix lists nothing', QUICK, async () => {
        const { store, seed } = await fresh();
        const all = ['p/a', 'p/b/c', 'p', 'pa', 'q/p/a', 'P/a'];
        await seed(all.map((k) => [k, Buffer.from(k)] as const));
        const under = (await listAll(store, 'p/')).objects.map((o) => o.key);
        expect([...under].sort(byteOrder)).toEqual(['p/a', 'p/b/c']);
        const everything = (await listAll(store, '')).objects.map((o) => o.key);
        expect([...everything].sort(byteOrder)).toEqual([...all].sort(byteOrder));
        const none = await listAll(store, 'nothing/');
        expect(none.objects).toEqual([]);
        expect(none.pages.length).toBeGreaterThanOrEqual(1);
      });
    });

    describe('deleteMany', () => {
      it('deletes present keys; missing keys are deleted too (no failure); no keys, no request', QUICK, async () => {
        const { store, seed, requests } = await fresh();
        await seed([['d/a', Buffer.from('a')], ['d/b', Buffer.from('b')], ['d/keep', Buffer.from('k')]]);
        expect(await store.deleteMany(['d/a', 'd/missing', 'd/b', 'd/a'])).toEqual([]);
        expect((await listAll(store, 'd/')).objects.map((o) => o.key)).toEqual(['d/keep']);
        expect(await store.deleteMany([])).toEqual([]);
        expect(requests('deleteMany')).toBe(1);
      });

      it.skipIf(harness.skipBulk === true)('more than 1,000 keys go in batches of 1,000', BULK, async () => {
        const { store, seed, requests } = await fresh();
        const keys = Array.from({ length: 1002 }, (_, i) => `bulk/${String(i).padStart(4, '0')}`);
        await seed(keys.map((k) => [k, Buffer.from(k)] as const));
        expect(await store.deleteMany([...keys, 'bulk/missing-1', 'bulk/missing-2'])).toEqual([]);
        expect(requests('deleteMany')).toBe(2);
        expect((await listAll(store, 'bulk/')).objects).toEqual([]);
      });

      it('a per-key error is reported for that key only; the others are deleted', QUICK, async (ctx) => {
        const h = await fresh();
        if (h.failDeleteOf === undefined) {
          ctx.skip('the server has no per-key DeleteObjects fault hook');
          return;
        }
        await h.seed([['e/a', Buffer.from('a')], ['e/b', Buffer.from('b')]]);
        h.failDeleteOf('e/a');
        const failures = await h.store.deleteMany(['e/a', 'e/b']);
        expect(failures).toEqual([{ key: 'e/a', error: expect.stringContaining('AccessDenied'), code: 'ACCESS_DENIED' }]);
        expect((await listAll(h.store, 'e/')).objects.map((o) => o.key)).toEqual(['e/a']);
      });
    });

    describe('multipart', () => {
      /** Three parts: two of the minimum size and a short last one. */
      const parts = [bytes(P, 11), bytes(P, 12), bytes(100, 13)];
      const whole = Buffer.concat(parts);

      async function uploadAll(store: ObjectStore, key: string, extra: Record<string, unknown> = {}) {
        const uploadId = await store.createMultipart({ key, md5: md5(whole), partSize: P, contentType: 'application/x-test', mtimeMs: 1_700_000_000_500, ...extra });
        const etags = [];
        for (const [i, part] of parts.entries()) etags.push(await store.uploadPart(key, uploadId, i + 1, part, md5(part)));
        return { uploadId, etags };
      }

      it(`create, upload parts, complete: content, metadata (md5, mtime, partsize)${caps.multipartEtag ? ' and S3\'s multipart ETag' : ' (ETag not checked: the server gives a plain MD5)'}`, QUICK, async () => {
        const { store, requests } = await fresh();
        const { uploadId, etags } = await uploadAll(store, 'mp/obj');
        expect(etags).toEqual(parts.map((p) => ({ etag: md5(p), serverSideEncryption: plainSse })));
        const done = await store.completeMultipart('mp/obj', uploadId, etags.map((e, i) => ({ partNumber: i + 1, etag: e.etag })));
        if (caps.multipartEtag) expect(done.etag).toBe(multipartEtag(parts.map(md5Bin)));
        expect(done.serverSideEncryption).toBe(plainSse);
        const head = await store.head('mp/obj');
        expect(head).toEqual({
          size: whole.length,
          etag: done.etag,
          md5: md5(whole),
          mtimeMs: 1_700_000_000_500,
          lastModifiedMs: expect.any(Number),
          serverSideEncryption: plainSse,
          partSize: P,
        });
        expect((await readBody(await store.get('mp/obj'))).equals(whole)).toBe(true);
        expect((await listAll(store, 'mp/')).objects).toEqual([{ key: 'mp/obj', size: whole.length, etag: done.etag, lastModifiedMs: head.lastModifiedMs }]);
        expect({ create: requests('createMultipart'), parts: requests('uploadPart'), complete: requests('completeMultipart') }).toEqual({ create: 1, parts: 3, complete: 1 });
      });

      it(`firstPartSize: the first part's size for a multipart object, undefined for a single PUT${caps.partNumberHead ? '' : ' (multipart half SKIPPED: the server ignores HeadObject partNumber)'}`, QUICK, async () => {
        const { store } = await fresh();
        await store.put(putInput('single', bytes(500, 14)));
        expect(await store.firstPartSize('single')).toBeUndefined();
        if (!caps.partNumberHead) return;
        const { uploadId, etags } = await uploadAll(store, 'multi');
        await store.completeMultipart('multi', uploadId, etags.map((e, i) => ({ partNumber: i + 1, etag: e.etag })));
        expect(await store.firstPartSize('multi')).toBe(P);
      });

      it.skipIf(!caps.multipartValidation)(
        `completion refuses undersized parts, wrong or missing part ETags and parts out of order; the upload survives${caps.multipartValidation ? '' : ' -- SKIPPED: the server accepts undersized parts and bogus part ETags'}`,
        QUICK,
        async () => {
          const { store } = await fresh();
          const small = [bytes(100, 15), bytes(100, 16)];
          const uploadId = await store.createMultipart({ key: 'v', partSize: 100, contentType: 'x', mtimeMs: 1 });
          const e1 = await store.uploadPart('v', uploadId, 1, small[0]!, md5(small[0]!));
          const e2 = await store.uploadPart('v', uploadId, 2, small[1]!, md5(small[1]!));
          const list = [
            { partNumber: 1, etag: e1.etag },
            { partNumber: 2, etag: e2.etag },
          ];
          await expectStorageError(store.completeMultipart('v', uploadId, list), { code: 'STORAGE', statusCode: 400, s3: 'EntityTooSmall' });
          await expectStorageError(store.completeMultipart('v', uploadId, [{ partNumber: 1, etag: 'f'.repeat(32) }]), { code: 'STORAGE', statusCode: 400, s3: 'InvalidPart' });
          await expectStorageError(store.completeMultipart('v', uploadId, [...list, { partNumber: 3, etag: e1.etag }]), { code: 'STORAGE', statusCode: 400, s3: 'InvalidPart' });
          await expectStorageError(store.completeMultipart('v', uploadId, [list[1]!, list[0]!]), { code: 'STORAGE', statusCode: 400, s3: 'InvalidPartOrder' });
          await expectStorageError(store.head('v'), { code: 'NOT_FOUND', statusCode: 404, s3: 'NotFound' });
          // The upload is still there: a single (last) part of any size completes it.
          const done = await store.completeMultipart('v', uploadId, [list[0]!]);
          expect(done.etag).toBe(multipartEtag([md5Bin(small[0]!)]));
          expect((await readBody(await store.get('v'))).equals(small[0]!)).toBe(true);
        },
      );

      it.skipIf(!caps.multipartValidation)(
        `part numbers outside 1..10000 are refused; an unknown upload id is NoSuchUpload (404)${caps.multipartValidation ? '' : ' -- SKIPPED: the server accepts parts for unknown uploads'}`,
        QUICK,
        async () => {
          const { store } = await fresh();
          const part = Buffer.from('part');
          const uploadId = await store.createMultipart({ key: 'n', partSize: P, contentType: 'x', mtimeMs: 1 });
          await expectStorageError(store.uploadPart('n', uploadId, 0, part, md5(part)), { code: 'STORAGE', statusCode: 400, s3: 'InvalidArgument' });
          await expectStorageError(store.uploadPart('n', uploadId, 10_001, part, md5(part)), { code: 'STORAGE', statusCode: 400, s3: 'InvalidArgument' });
          await expectStorageError(store.uploadPart('n', 'no-such-upload', 1, part, md5(part)), { code: 'NOT_FOUND', statusCode: 404, s3: 'NoSuchUpload' });
          await expectStorageError(store.completeMultipart('n', 'no-such-upload', [{ partNumber: 1, etag: md5(part) }]), { code: 'NOT_FOUND', statusCode: 404, s3: 'NoSuchUpload' });
          // The upload id belongs to its key.
          await expectStorageError(store.uploadPart('other-key', uploadId, 1, part, md5(part)), { code: 'NOT_FOUND', statusCode: 404, s3: 'NoSuchUpload' });
          const ok = await store.uploadPart('n', uploadId, 10_000, part, md5(part));
          expect(ok.etag).toBe(md5(part));
        },
      );

      it.skipIf(!caps.contentMd5)(
        `a part whose Content-MD5 does not match is refused (BadDigest)${caps.contentMd5 ? '' : ' -- SKIPPED: the server does not verify Content-MD5'}`,
        QUICK,
        async () => {
          const { store } = await fresh();
          const uploadId = await store.createMultipart({ key: 'm', partSize: P, contentType: 'x', mtimeMs: 1 });
          await expectStorageError(store.uploadPart('m', uploadId, 1, Buffer.from('part'), md5(Buffer.from('other'))), { code: 'STORAGE', statusCode: 400, s3: 'BadDigest' });
        },
      );

      it.skipIf(!caps.multipartAbortAndListing)(
        `listMultipartUploads lists pending uploads under a prefix with their initiation time; abort removes one${caps.multipartAbortAndListing ? '' : ' -- SKIPPED: the server answers AbortMultipartUpload 405 and ListMultipartUploads 501'}`,
        QUICK,
        async () => {
          const { store } = await fresh();
          const before = Math.floor(Date.now() / 1000) * 1000 - 2000;
          const a = await store.createMultipart({ key: 'up/a', partSize: P, contentType: 'x', mtimeMs: 1 });
          const b = await store.createMultipart({ key: 'up/b', partSize: P, contentType: 'x', mtimeMs: 1 });
          const other = await store.createMultipart({ key: 'elsewhere/c', partSize: P, contentType: 'x', mtimeMs: 1 });
          const listed = await store.listMultipartUploads('up/');
          expect(listed.map((u) => ({ key: u.key, uploadId: u.uploadId }))).toEqual([
            { key: 'up/a', uploadId: a },
            { key: 'up/b', uploadId: b },
          ]);
          for (const u of listed) {
            expect(u.initiatedMs).toBeGreaterThanOrEqual(before);
            expect(u.initiatedMs).toBeLessThanOrEqual(Date.now() + 2000);
          }
          expect((await store.listMultipartUploads('')).map((u) => u.uploadId).sort()).toEqual([a, b, other].sort());

          await store.abortMultipart('up/a', a);
          expect((await store.listMultipartUploads('up/')).map((u) => u.uploadId)).toEqual([b]);
          const part = bytes(10, 17);
          await expectStorageError(store.uploadPart('up/a', a, 1, part, md5(part)), { code: 'NOT_FOUND', statusCode: 404, s3: 'NoSuchUpload' });
          await expectStorageError(store.completeMultipart('up/a', a, [{ partNumber: 1, etag: md5(part) }]), { code: 'NOT_FOUND', statusCode: 404, s3: 'NoSuchUpload' });
          // Aborting again is not an error (S3 keeps answering 204 for a while); an unknown id is.
          await store.abortMultipart('up/a', a);
          await expectStorageError(store.abortMultipart('up/a', 'no-such-upload'), { code: 'NOT_FOUND', statusCode: 404, s3: 'NoSuchUpload' });
          // A completed upload is no longer listed.
          const e = await store.uploadPart('up/b', b, 1, part, md5(part));
          await store.completeMultipart('up/b', b, [{ partNumber: 1, etag: e.etag }]);
          expect(await store.listMultipartUploads('up/')).toEqual([]);
          await store.abortMultipart('elsewhere/c', other);
        },
      );
    });

    describe('copy (CopyObject)', () => {
      it('a server-side copy: the same bytes, metadata (md5, mtime) and content type, the MD5 as ETag; the source stays; one request', QUICK, async () => {
        const { store, requests } = await fresh();
        const body = bytes(5000, 41);
        const src = await store.put(putInput('cp/src.bin', body, { contentType: 'application/x-test' }));
        const copied = await store.copy('cp/src.bin', 'cp/area/2026/src.bin', { ifSourceMatch: src.etag });
        expect(copied).toEqual({ etag: md5(body), serverSideEncryption: plainSse });
        expect(await store.head('cp/area/2026/src.bin')).toEqual({
          size: body.length,
          etag: md5(body),
          md5: md5(body),
          mtimeMs: 1_700_000_000_123,
          lastModifiedMs: expect.any(Number),
          serverSideEncryption: plainSse,
        });
        expect((await readBody(await store.get('cp/area/2026/src.bin'))).equals(body)).toBe(true);
        expect((await readBody(await store.get('cp/src.bin'))).equals(body)).toBe(true);
        expect(requests('copy')).toBe(1);
        // a quoted ETag is the same ETag
        await store.copy('cp/src.bin', 'cp/again.bin', { ifSourceMatch: `"${src.etag}"` });
        expect((await store.head('cp/again.bin')).etag).toBe(md5(body));
      });

      it.skipIf(!caps.copySourceDecoding)(
        `a source key with spaces, non-ASCII and reserved characters (URL-encoded in x-amz-copy-source) is found${caps.copySourceDecoding ? '' : ' -- SKIPPED: the server decodes x-amz-copy-source with decodeURI (%2B stays encoded, non-ASCII is mangled)'}`,
        QUICK,
        async () => {
          const { store } = await fresh();
          const odd = 'cp/a dir/naïve + plan #1 (1)?.md';
          const put = await store.put(putInput(odd, Buffer.from('odd')));
          await store.copy(odd, 'cp/area/odd copy.md', { ifSourceMatch: put.etag });
          expect((await readBody(await store.get('cp/area/odd copy.md'))).toString()).toBe('odd');
        },
      );

      it('a multipart source becomes a single-part copy whose ETag is the MD5 of the content', QUICK, async () => {
        const { store } = await fresh();
        const parts = [bytes(P, 42), bytes(70, 43)];
        const uploadId = await store.createMultipart({ key: 'cp/mp', md5: md5(Buffer.concat(parts)), partSize: P, contentType: 'x', mtimeMs: 1_700_000_000_000 });
        const etags = [];
        for (const [i, part] of parts.entries()) etags.push((await store.uploadPart('cp/mp', uploadId, i + 1, part, md5(part))).etag);
        const done = await store.completeMultipart('cp/mp', uploadId, etags.map((etag, i) => ({ partNumber: i + 1, etag })));
        const copied = await store.copy('cp/mp', 'cp/mp-copy', { ifSourceMatch: done.etag });
        expect(copied.etag).toBe(md5(Buffer.concat(parts)));
        expect((await readBody(await store.get('cp/mp-copy'))).equals(Buffer.concat(parts))).toBe(true);
        expect((await store.head('cp/mp-copy')).md5).toBe(md5(Buffer.concat(parts)));
      });

      it('a missing source is NOT_FOUND (404 NoSuchKey, not retryable); nothing is written', QUICK, async () => {
        const { store } = await fresh();
        await expectStorageError(store.copy('cp/none', 'cp/dest', { ifSourceMatch: md5(Buffer.from('x')) }), { code: 'NOT_FOUND', statusCode: 404, s3: 'NoSuchKey' });
        await expectStorageError(store.head('cp/dest'), { code: 'NOT_FOUND', statusCode: 404, s3: 'NotFound' });
      });

      it.skipIf(!caps.copySourceConditions)(
        `ifSourceMatch copies only that version: another ETag is PRECONDITION_FAILED (412) and nothing is written${caps.copySourceConditions ? '' : ' -- SKIPPED: the server ignores x-amz-copy-source-if-match'}`,
        QUICK,
        async () => {
          const { store } = await fresh();
          const v1 = await store.put(putInput('cp/k', Buffer.from('version 1')));
          await store.put(putInput('cp/k', Buffer.from('version 2')));
          await expectStorageError(store.copy('cp/k', 'cp/saved', { ifSourceMatch: v1.etag }), { code: 'PRECONDITION_FAILED', statusCode: 412, s3: 'PreconditionFailed' });
          await expectStorageError(store.head('cp/saved'), { code: 'NOT_FOUND', statusCode: 404, s3: 'NotFound' });
        },
      );
    });

    describe('conditional requests', () => {
      const writesSkip = caps.conditionalWrites ? '' : ' -- SKIPPED: the server ignores If-Match / If-None-Match on writes';
      const deletesSkip = caps.conditionalDeletes ? '' : ' -- SKIPPED: the server ignores the per-object <ETag> of DeleteObjects';
      const ifMatchSkip = caps.readIfMatch ? '' : ' -- SKIPPED: the server ignores If-Match on GET and HEAD';
      const ifNoneMatchSkip = caps.readIfNoneMatch ? '' : ' -- SKIPPED: the server ignores If-None-Match on GET and HEAD';

      it.skipIf(!caps.conditionalWrites)(`put ifMatch: the current ETag replaces; a stale one is PRECONDITION_FAILED (412); a missing key is NOT_FOUND (404, NoSuchKey)${writesSkip}`, QUICK, async () => {
        const { store } = await fresh();
        const v1 = Buffer.from('version 1');
        const v2 = Buffer.from('version 2');
        const v3 = Buffer.from('version 3');
        const first = await store.put(putInput('cas', v1));
        const second = await store.put(putInput('cas', v2, { ifMatch: first.etag }));
        expect(second.etag).toBe(md5(v2));
        await expectStorageError(store.put(putInput('cas', v3, { ifMatch: first.etag })), { code: 'PRECONDITION_FAILED', statusCode: 412, s3: 'PreconditionFailed' });
        expect((await readBody(await store.get('cas'))).equals(v2)).toBe(true);
        // S3 answers NoSuchKey, not 412, for If-Match on a key that does not exist; nothing is created.
        await expectStorageError(store.put(putInput('absent', v1, { ifMatch: first.etag })), { code: 'NOT_FOUND', statusCode: 404, s3: 'NoSuchKey' });
        await expectStorageError(store.head('absent'), { code: 'NOT_FOUND', statusCode: 404, s3: 'NotFound' });
        // A quoted ETag is the same ETag.
        await store.put(putInput('cas', v3, { ifMatch: `"${second.etag}"` }));
        expect((await readBody(await store.get('cas'))).equals(v3)).toBe(true);
      });

      it(`a conditional write racing another one is CONFLICT (409 ConditionalRequestConflict, not retryable); nothing is written${caps.conditionalWrites ? '' : writesSkip}`, QUICK, async (ctx) => {
        const h = await fresh();
        if (!caps.conditionalWrites) {
          ctx.skip('the server ignores conditional writes');
          return;
        }
        if (h.conflictNext === undefined) {
          ctx.skip('the server has no hook to answer 409');
          return;
        }
        const { store } = h;
        const v1 = Buffer.from('v1');
        const { etag } = await store.put(putInput('race', v1));
        h.conflictNext('race');
        await expectStorageError(store.put(putInput('race', Buffer.from('v2'), { ifMatch: etag })), { code: 'CONFLICT', statusCode: 409, s3: 'ConditionalRequestConflict' });
        expect((await store.head('race')).etag).toBe(etag);
        h.conflictNext('new');
        await expectStorageError(store.put(putInput('new', v1, { ifNoneMatch: true })), { code: 'CONFLICT', statusCode: 409, s3: 'ConditionalRequestConflict' });
        await expectStorageError(store.head('new'), { code: 'NOT_FOUND', statusCode: 404, s3: 'NotFound' });
        // An unconditional write is not a conditional one: it neither gets nor uses up the 409.
        h.conflictNext('other');
        await store.put(putInput('other', v1));
        await expectStorageError(store.put(putInput('other', v1, { ifMatch: md5(v1) })), { code: 'CONFLICT', statusCode: 409, s3: 'ConditionalRequestConflict' });
        // Re-read, then write again: it goes through.
        await store.put(putInput('race', Buffer.from('v2'), { ifMatch: (await store.head('race')).etag }));
      });

      it.skipIf(!caps.conditionalWrites || !caps.multipartAbortAndListing)(
        `completeMultipart honours ifNoneMatch and ifMatch at completion; a refused completion writes nothing and leaves the upload to abort${caps.conditionalWrites ? (caps.multipartAbortAndListing ? '' : ' -- SKIPPED: the server cannot abort uploads') : writesSkip}`,
        QUICK,
        async () => {
          const h = await fresh();
          const { store } = h;
          const part = bytes(300, 31);
          const start = async (key: string) => {
            const uploadId = await store.createMultipart({ key, partSize: P, contentType: 'x', mtimeMs: 1 });
            const { etag } = await store.uploadPart(key, uploadId, 1, part, md5(part));
            return { uploadId, list: [{ partNumber: 1, etag }] };
          };
          const old = await store.put(putInput('mc/k', Buffer.from('old')));
          // If-None-Match: * on an existing key: 412; the object stays, the upload is still there and can be aborted.
          const a = await start('mc/k');
          await expectStorageError(store.completeMultipart('mc/k', a.uploadId, a.list, undefined, { ifNoneMatch: true }), { code: 'PRECONDITION_FAILED', statusCode: 412, s3: 'PreconditionFailed' });
          // If-Match with a stale ETag: 412.
          await expectStorageError(store.completeMultipart('mc/k', a.uploadId, a.list, undefined, { ifMatch: 'f'.repeat(32) }), { code: 'PRECONDITION_FAILED', statusCode: 412, s3: 'PreconditionFailed' });
          expect((await store.head('mc/k')).etag).toBe(old.etag);
          expect((await store.listMultipartUploads('mc/')).map((u) => u.uploadId)).toEqual([a.uploadId]);
          await store.abortMultipart('mc/k', a.uploadId);
          expect(await store.listMultipartUploads('mc/')).toEqual([]);
          // If-Match on a key that does not exist: 404 NoSuchKey.
          const b = await start('mc/absent');
          await expectStorageError(store.completeMultipart('mc/absent', b.uploadId, b.list, undefined, { ifMatch: old.etag }), { code: 'NOT_FOUND', statusCode: 404, s3: 'NoSuchKey' });
          await expectStorageError(store.head('mc/absent'), { code: 'NOT_FOUND', statusCode: 404, s3: 'NotFound' });
          await store.abortMultipart('mc/absent', b.uploadId);
          // The current ETag: completed.
          const c = await start('mc/k');
          const done = await store.completeMultipart('mc/k', c.uploadId, c.list, undefined, { ifMatch: old.etag });
          expect((await store.head('mc/k')).etag).toBe(done.etag);
          expect((await readBody(await store.get('mc/k'))).equals(part)).toBe(true);
          // If-None-Match: * on a new key: completed.
          const d = await start('mc/new');
          await store.completeMultipart('mc/new', d.uploadId, d.list, undefined, { ifNoneMatch: true });
          expect((await store.head('mc/new')).size).toBe(part.length);
          // A 409 at completion: nothing written, the upload is left to abort.
          if (h.conflictNext !== undefined) {
            const e = await start('mc/k');
            h.conflictNext('mc/k');
            await expectStorageError(store.completeMultipart('mc/k', e.uploadId, e.list, undefined, { ifMatch: done.etag }), { code: 'CONFLICT', statusCode: 409, s3: 'ConditionalRequestConflict' });
            expect((await store.head('mc/k')).etag).toBe(done.etag);
            await store.abortMultipart('mc/k', e.uploadId);
          }
          expect(await store.listMultipartUploads('mc/')).toEqual([]);
        },
      );

      it.skipIf(!caps.conditionalDeletes)(
        `deleteMany with ETags: a matching (or *) ETag deletes; a different one is a per-key PRECONDITION_FAILED, a missing key a per-key NOT_FOUND; plain keys as before; one request${deletesSkip}`,
        QUICK,
        async () => {
          const { store, seed, requests } = await fresh();
          await seed([['cd/a', Buffer.from('a')], ['cd/b', Buffer.from('b')], ['cd/c', Buffer.from('c')], ['cd/star', Buffer.from('s')], ['cd/keep', Buffer.from('k')]]);
          const failures = await store.deleteMany([
            { key: 'cd/a', etag: md5(Buffer.from('a')) },
            { key: 'cd/b', etag: md5(Buffer.from('not b')) },
            { key: 'cd/missing', etag: md5(Buffer.from('m')) },
            'cd/c',
            'cd/plain-missing',
            { key: 'cd/star', etag: '*' },
            { key: 'cd/star-missing', etag: '*' },
          ]);
          expect(failures).toEqual([
            { key: 'cd/b', error: expect.stringContaining('PreconditionFailed'), code: 'PRECONDITION_FAILED' },
            { key: 'cd/missing', error: expect.stringContaining('NoSuchKey'), code: 'NOT_FOUND' },
            { key: 'cd/star-missing', error: expect.stringContaining('NoSuchKey'), code: 'NOT_FOUND' },
          ]);
          expect((await listAll(store, 'cd/')).objects.map((o) => o.key).sort(byteOrder)).toEqual(['cd/b', 'cd/keep']);
          expect(requests('deleteMany')).toBe(1);
        },
      );

      it(`deleteMany: a conditional delete racing a write is a per-key CONFLICT${caps.conditionalDeletes ? '' : deletesSkip}`, QUICK, async (ctx) => {
        const h = await fresh();
        if (!caps.conditionalDeletes) {
          ctx.skip('the server ignores conditional deletes');
          return;
        }
        if (h.conflictNext === undefined) {
          ctx.skip('the server has no hook to answer 409');
          return;
        }
        await h.seed([['cr/a', Buffer.from('a')], ['cr/b', Buffer.from('b')]]);
        h.conflictNext('cr/a');
        const failures = await h.store.deleteMany([{ key: 'cr/a', etag: md5(Buffer.from('a')) }, { key: 'cr/b', etag: md5(Buffer.from('b')) }]);
        expect(failures).toEqual([{ key: 'cr/a', error: expect.stringContaining('ConditionalRequestConflict'), code: 'CONFLICT' }]);
        expect((await listAll(h.store, 'cr/')).objects.map((o) => o.key)).toEqual(['cr/a']);
      });

      it.skipIf(!caps.readIfMatch)(
        `head, get and getRange with ifMatch: the current ETag reads as usual, another is PRECONDITION_FAILED (412); a missing key stays NOT_FOUND${ifMatchSkip}`,
        QUICK,
        async () => {
          const { store } = await fresh();
          const body = bytes(200, 32);
          const { etag } = await store.put(putInput('rm/k', body));
          const stale = md5(Buffer.from('stale'));
          expect((await store.head('rm/k', undefined, { ifMatch: etag })).etag).toBe(etag);
          expect((await readBody(await store.get('rm/k', undefined, { ifMatch: `"${etag}"` }))).equals(body)).toBe(true);
          expect((await readBody(await store.getRange('rm/k', 10, 19, undefined, { ifMatch: etag }))).equals(body.subarray(10, 20))).toBe(true);
          // The object changed since it was seen. A HEAD's 412 has no body: the SDK names it Unknown.
          await expectStorageError(store.head('rm/k', undefined, { ifMatch: stale }), { code: 'PRECONDITION_FAILED', statusCode: 412, s3: 'Unknown' });
          await expectStorageError(store.get('rm/k', undefined, { ifMatch: stale }), { code: 'PRECONDITION_FAILED', statusCode: 412, s3: 'PreconditionFailed' });
          await expectStorageError(store.getRange('rm/k', 0, 9, undefined, { ifMatch: stale }), { code: 'PRECONDITION_FAILED', statusCode: 412, s3: 'PreconditionFailed' });
          await expectStorageError(store.head('rm/none', undefined, { ifMatch: etag }), { code: 'NOT_FOUND', statusCode: 404, s3: 'NotFound' });
          await expectStorageError(store.get('rm/none', undefined, { ifMatch: etag }), { code: 'NOT_FOUND', statusCode: 404, s3: 'NoSuchKey' });
        },
      );

      it.skipIf(!caps.readIfNoneMatch)(
        `head, get and getRange with ifNoneMatch: the current ETag (or *) is NOT_MODIFIED (304, no body), another reads as usual; a missing key stays NOT_FOUND${ifNoneMatchSkip}`,
        QUICK,
        async () => {
          const { store } = await fresh();
          const body = bytes(200, 33);
          const { etag } = await store.put(putInput('rn/k', body));
          const stale = md5(Buffer.from('stale'));
          expect((await store.head('rn/k', undefined, { ifNoneMatch: stale })).etag).toBe(etag);
          expect((await readBody(await store.get('rn/k', undefined, { ifNoneMatch: `"${stale}"` }))).equals(body)).toBe(true);
          await expectStorageError(store.head('rn/k', undefined, { ifNoneMatch: etag }), { code: 'NOT_MODIFIED', statusCode: 304, s3: 'Unknown' });
          await expectStorageError(store.get('rn/k', undefined, { ifNoneMatch: etag }), { code: 'NOT_MODIFIED', statusCode: 304, s3: 'Unknown' });
          await expectStorageError(store.get('rn/k', undefined, { ifNoneMatch: '*' }), { code: 'NOT_MODIFIED', statusCode: 304, s3: 'Unknown' });
          await expectStorageError(store.getRange('rn/k', 0, 9, undefined, { ifNoneMatch: etag }), { code: 'NOT_MODIFIED', statusCode: 304, s3: 'Unknown' });
          await expectStorageError(store.get('rn/none', undefined, { ifNoneMatch: etag }), { code: 'NOT_FOUND', statusCode: 404, s3: 'NoSuchKey' });
        },
      );

      it(`probeConditionalWrites: '${caps.conditionalWrites ? 'enforced' : 'ignored'}' here, for exactly 2 PUTs and 1 delete, and the scratch key is gone`, QUICK, async () => {
        const { store, seed, requests } = await fresh();
        await seed([['pw/a.txt', Buffer.from('user data')]]);
        const count = () => ({ put: requests('put'), deleteMany: requests('deleteMany'), get: requests('get'), head: requests('head'), list: requests('list') });
        const before = count(); // a harness may seed through the same client
        expect(await probeConditionalWrites(store, 'pw/')).toBe(caps.conditionalWrites ? 'enforced' : 'ignored');
        const after = count();
        expect({ put: after.put - before.put, deleteMany: after.deleteMany - before.deleteMany, get: after.get - before.get, head: after.head - before.head, list: after.list - before.list }).toEqual({ put: 2, deleteMany: 1, get: 0, head: 0, list: 0 });
        expect((await listAll(store, '')).objects.map((o) => o.key)).toEqual(['pw/a.txt']);
        expect(PROBE_NAME_PREFIX.startsWith('.s3-workspace-sync/')).toBe(true);
      });
    });

    describe('abort signal', () => {
      it(`an aborted signal rejects every operation and changes nothing${caps.abortRejectsWithReason ? ' (with the signal\'s reason)' : ' (S3ObjectStore: a StorageError saying so)'}`, QUICK, async () => {
        const { store, requests } = await fresh();
        const body = Buffer.from('keep');
        await store.put(putInput('k', body));
        const uploadId = await store.createMultipart({ key: 'm', partSize: P, contentType: 'x', mtimeMs: 1 });
        const reason = new Error('contract: stop');
        const controller = new AbortController();
        controller.abort(reason);
        const signal = controller.signal;
        const check = async (p: Promise<unknown>) => {
          const e = await rejection(p);
          if (caps.abortRejectsWithReason) expect(e).toBe(reason);
          else expect(e).toMatchObject({ name: 'StorageError', code: 'STORAGE', retryable: false, message: expect.stringContaining('aborted') });
        };
        await check(store.head('k', signal));
        await check(store.get('k', signal));
        await check(store.getRange('k', 0, 1, signal));
        await check(store.firstPartSize('k', signal));
        await check(listAll(store, '', signal));
        await check(store.put({ ...putInput('new', body), signal }));
        await check(store.put({ ...putInput('new', body), body: () => Readable.from([body]), signal }));
        await check(store.createMultipart({ key: 'm2', partSize: P, contentType: 'x', mtimeMs: 1, signal }));
        await check(store.uploadPart('m', uploadId, 1, body, md5(body), signal));
        await check(store.completeMultipart('m', uploadId, [{ partNumber: 1, etag: md5(body) }], signal));
        await check(store.listMultipartUploads('', signal));
        await check(store.deleteMany(['k'], signal));
        await check(store.copy('k', 'copied', { ifSourceMatch: md5(body), signal }));
        // Nothing was sent, nothing changed.
        expect({ head: requests('head'), get: requests('get'), list: requests('list'), put: requests('put'), deleteMany: requests('deleteMany'), copy: requests('copy') }).toEqual({ head: 0, get: 0, list: 0, put: 1, deleteMany: 0, copy: 0 });
        expect((await listAll(store, '')).objects.map((o) => o.key)).toEqual(['k']);
        expect((await readBody(await store.get('k'))).equals(body)).toBe(true);
        if (caps.multipartAbortAndListing) {
          expect((await store.listMultipartUploads('')).map((u) => u.key)).toEqual(['m']);
          await store.abortMultipart('m', uploadId);
        }
      });
    });

    describe('server-side encryption', () => {
      it.skipIf(!caps.sseKms)(
        `SSE-KMS and DSSE-KMS: the ETag is not the MD5 and the encryption is reported; the md5 metadata still is the MD5${caps.sseKms ? '' : ' -- SKIPPED: the server ignores x-amz-server-side-encryption'}`,
        QUICK,
        async () => {
          const { store } = await fresh();
          const body = bytes(2000, 21);
          for (const sse of ['aws:kms', 'aws:kms:dsse'] as const) {
            const key = `kms/${sse}`;
            const put = await store.put(putInput(key, body, { params: { ServerSideEncryption: sse, SSEKMSKeyId: 'alias/contract', BucketKeyEnabled: true } }));
            expect(put.serverSideEncryption).toBe(sse);
            expect(put.etag).toMatch(/^[0-9a-f]{32}$/);
            expect(put.etag).not.toBe(md5(body));
            const head = await store.head(key);
            expect(head).toMatchObject({ size: body.length, etag: put.etag, md5: md5(body), serverSideEncryption: sse });
            expect(etagIsNotMd5(head.serverSideEncryption)).toBe(true);
            const got = await store.get(key);
            expect(got).toMatchObject({ etag: put.etag, serverSideEncryption: sse });
            expect((await readBody(got)).equals(body)).toBe(true);
            expect((await listAll(store, key)).objects).toMatchObject([{ key, etag: put.etag }]);
          }
          // An explicit AES256 is SSE-S3: the ETag is the MD5.
          const aes = await store.put(putInput('kms/aes', body, { params: { ServerSideEncryption: 'AES256' } }));
          expect(aes).toEqual({ etag: md5(body), serverSideEncryption: 'AES256' });
        },
      );

      it.skipIf(!caps.sseKms)(
        `SSE-KMS multipart: neither the parts' ETags nor the object's come from the MD5s${caps.sseKms ? '' : ' -- SKIPPED: the server ignores x-amz-server-side-encryption'}`,
        QUICK,
        async () => {
          const { store } = await fresh();
          const parts = [bytes(P, 22), bytes(50, 23)];
          const uploadId = await store.createMultipart({ key: 'kms/mp', partSize: P, contentType: 'x', mtimeMs: 1_700_000_000_000, md5: md5(Buffer.concat(parts)), params: { ServerSideEncryption: 'aws:kms' } });
          const etags = [];
          for (const [i, part] of parts.entries()) {
            const r = await store.uploadPart('kms/mp', uploadId, i + 1, part, md5(part));
            expect(r.serverSideEncryption).toBe('aws:kms');
            expect(r.etag).toMatch(/^[0-9a-f]{32}$/);
            expect(r.etag).not.toBe(md5(part));
            etags.push(r.etag);
          }
          const done = await store.completeMultipart('kms/mp', uploadId, etags.map((etag, i) => ({ partNumber: i + 1, etag })));
          expect(done.serverSideEncryption).toBe('aws:kms');
          expect(done.etag).toMatch(/^[0-9a-f]{32}-2$/);
          expect(done.etag).not.toBe(multipartEtag(parts.map(md5Bin)));
          const head = await store.head('kms/mp');
          expect(head).toMatchObject({ etag: done.etag, md5: md5(Buffer.concat(parts)), partSize: P, serverSideEncryption: 'aws:kms' });
        },
      );

      it.skipIf(!caps.sseKms || !harness.bucketDefaultKms)(
        `a bucket with default SSE-KMS: writes that ask for nothing get non-MD5 ETags${caps.sseKms && harness.bucketDefaultKms ? '' : ' -- SKIPPED: the server has no default bucket encryption'}`,
        QUICK,
        async () => {
          const { store } = await fresh({ bucketKms: true });
          const body = bytes(300, 24);
          const put = await store.put(putInput('d', body));
          expect(put.serverSideEncryption).toBe('aws:kms');
          expect(put.etag).not.toBe(md5(body));
          expect(await store.head('d')).toMatchObject({ etag: put.etag, md5: md5(body), serverSideEncryption: 'aws:kms' });
          const uploadId = await store.createMultipart({ key: 'dm', partSize: P, contentType: 'x', mtimeMs: 1 });
          const part = await store.uploadPart('dm', uploadId, 1, body, md5(body));
          expect(part).toMatchObject({ serverSideEncryption: 'aws:kms' });
          expect(part.etag).not.toBe(md5(body));
        },
      );
    });
  });
}
