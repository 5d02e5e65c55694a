// The ObjectStore contract on S3ObjectStore against s3rver 3.7.1, the run's
// shared local server (test/helpers/global-setup.ts), each test in its own
// bucket. s3rver is an independent third-party check of what it supports; the
// capability flags below name what it lacks (see test/helpers/s3.ts and
// /work/shared/NOTES.md). Each `false` was measured by running the case
// against s3rver, not assumed.
import { S3Client } from '@aws-sdk/client-s3';

import { S3ObjectStore } from '../../src/storage/S3ObjectStore.js';
import { TEST_CREDENTIALS, TEST_REGION, createTestBucket, putObjects, s3Endpoint } from '../helpers/s3.js';
import { countRequests, describeObjectStoreContract, quietLogger, type ObjectStoreCapabilities } from './object-store-contract.js';

/** makeTestClient()'s settings (checksums only when required: s3rver stores aws-chunked framing otherwise), and a quiet SDK logger. */
function makeClient(): S3Client {
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

/**
 * Re-check a gap (after an s3rver upgrade, say): claim the capability with
 * `S3RVER_CLAIM=multipartEtag npx vitest run test/contract/object-store.s3rver.test.ts`
 * (a comma-separated list of flags, or `all`); the cases it skipped must then fail.
 */
const claimed = new Set((process.env.S3RVER_CLAIM ?? '').split(',').filter((f) => f !== ''));

describeObjectStoreContract(
  'S3ObjectStore on s3rver',
  async () => {
    const client = makeClient();
    const requests = countRequests(client);
    const bucket = await createTestBucket(client);
    return {
      store: new S3ObjectStore(client, bucket, { transport: 'sdk' }),
      seed: (objects) => putObjects(client, bucket, Object.fromEntries(objects)),
      requests,
      // s3rver has no fault hooks: the per-key DeleteObjects error case and the 409 cases are skipped.
      failDeleteOf: undefined,
      conflictNext: undefined,
      cleanup: () => client.destroy(),
    };
  },
  gaps(
    {
      // s3rver enforces no minimum part size (undersized parts are accepted); the cases use 1 KiB parts.
      minPartSize: 1024,
      // s3rver ignores If-None-Match: * (and a stale If-Match) on PutObject: it overwrites and answers 200.
      conditionalWrites: false,
      // s3rver ignores the per-object <ETag> of DeleteObjects: it deletes a key whatever its ETag.
      conditionalDeletes: false,
      // s3rver ignores If-Match on GetObject and HeadObject (a stale ETag reads with 200)...
      readIfMatch: false,
      // ... but answers If-None-Match (an ETag or *) with 304, ranged GETs and HEAD included.
      readIfNoneMatch: true,
      // s3rver verifies neither Content-MD5 nor x-amz-checksum-*: a wrong digest is stored with 200.
      contentMd5: false,
      // s3rver's multipart ETag is the plain MD5 of the whole object, not md5(part MD5s)-N.
      multipartEtag: false,
      // s3rver accepts undersized parts and bogus part ETags at CompleteMultipartUpload, accepts
      // part number 0 and UploadPart for an unknown upload id, and answers Complete of an unknown
      // upload id 500 (retryable) instead of 404 NoSuchUpload.
      multipartValidation: false,
      // s3rver answers AbortMultipartUpload 405 and ListMultipartUploads 501.
      multipartAbortAndListing: false,
      // s3rver ignores x-amz-copy-source-if-match on CopyObject: a stale ETag copies with 200.
      copySourceConditions: false,
      // s3rver decodes x-amz-copy-source with decodeURI: %2B, %23, %3F… stay encoded and non-ASCII keys are
      // not found (404 NoSuchKey): such keys cannot be copied there.
      copySourceDecoding: false,
      // s3rver lists in directory-walk order, not S3's UTF-8 byte order.
      byteOrderListing: false,
      // s3rver ignores HeadObject ?partNumber=1 (no x-amz-mp-parts-count): firstPartSize is always undefined.
      partNumberHead: false,
      // s3rver ignores x-amz-server-side-encryption: aws:kms (ETag = MD5, no encryption reported).
      sseKms: false,
      // s3rver reports no x-amz-server-side-encryption at all (S3 reports AES256 for every object).
      reportsSseS3: false,
      // s3rver resets the connection (ECONNRESET, no HTTP answer) on a ranged GET of an empty object; S3 answers 416.
      emptyObjectRange: false,
      // S3ObjectStore's own choice, not the server's: see ObjectStoreCapabilities.
      abortRejectsWithReason: false,
    },
  ),
);

/** The flags, with the capabilities named in S3RVER_CLAIM claimed true (to watch the cases they skip fail). */
function gaps(caps: ObjectStoreCapabilities): ObjectStoreCapabilities {
  const out: Record<string, unknown> = { ...caps };
  for (const [flag, value] of Object.entries(caps)) {
    if (typeof value === 'boolean' && flag !== 'abortRejectsWithReason' && (claimed.has(flag) || claimed.has('all'))) out[flag] = true;
  }
  return out as unknown as ObjectStoreCapabilities;
}
