// The ObjectStore contract on S3ObjectStore over a real S3Client, against the
// strict S3 double (test/helpers/strict-s3.ts) over HTTP: S3's semantics for
// conditional writes, Content-MD5, multipart ETags and validation, abort and
// listing of uploads, byte-order listings and SSE-KMS. Nothing is skipped for
// lack of a server feature.
import { CreateMultipartUploadCommand, HeadObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { afterAll, afterEach, beforeAll, describe, expect, it, onTestFinished } from 'vitest';

import { S3ObjectStore } from '../../src/storage/S3ObjectStore.js';
import { startStrictS3, type StrictS3 } from '../helpers/strict-s3.js';
import { countRequests, describeObjectStoreContract, quietLogger } from './object-store-contract.js';

const MIN_PART = 1024; // the double's minPartSize here (S3: 5 MiB)

let s3: StrictS3;
let n = 0;

beforeAll(async () => {
  s3 = await startStrictS3({ minPartSize: MIN_PART });
});
afterAll(async () => {
  await s3.close();
});
afterEach(() => {
  // A crash inside the double is a bug in the double, never an S3 answer.
  expect(s3.state.internalErrors).toEqual([]);
  s3.state.clearFaults();
});

function makeClient(): S3Client {
  return new S3Client({
    endpoint: s3.endpoint,
    forcePathStyle: true,
    region: 'us-east-1',
    credentials: { accessKeyId: 'x', secretAccessKey: 'y' },
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    logger: quietLogger, // the SDK warns on the console about an aborted stream upload
  });
}

describeObjectStoreContract(
  'S3ObjectStore on the strict S3 double',
  async (options = {}) => {
    const bucket = `contract-${++n}`;
    s3.state.createBucket(bucket);
    if (options.bucketKms === true) s3.state.setBucketEncryption(bucket, { algorithm: 'aws:kms' });
    const client = makeClient();
    const requests = countRequests(client);
    return {
      store: new S3ObjectStore(client, bucket, { transport: 'sdk' }),
      seed: async (objects) => {
        for (const [key, body] of objects) s3.state.putObject(bucket, key, body);
      },
      requests,
      failDeleteOf: (key) => {
        s3.state.failDeleteOfKey(key);
      },
      conflictNext: (key) => {
        s3.state.conflictNext({ bucket, key });
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
    // S3ObjectStore's own choice, not the server's: see ObjectStoreCapabilities.
    abortRejectsWithReason: false,
  },
  { bucketDefaultKms: true },
);

// The double's SSE-KMS, at the SDK level (what the contract above relies on).
describe('strict S3 double: SSE-KMS headers', () => {
  function setup() {
    const bucket = `sse-${++n}`;
    s3.state.createBucket(bucket);
    const client = makeClient();
    onTestFinished(() => client.destroy());
    return { bucket, client };
  }

  it('a KMS object answers with its key ARN and bucket-key flag; AES256 is the default', { timeout: 10_000 }, async () => {
    const { bucket, client } = setup();
    const put = await client.send(
      new PutObjectCommand({ Bucket: bucket, Key: 'k', Body: 'x', ServerSideEncryption: 'aws:kms', SSEKMSKeyId: 'arn:aws:kms:us-east-1:111122223333:key/contract', BucketKeyEnabled: true }),
    );
    expect(put).toMatchObject({ ServerSideEncryption: 'aws:kms', SSEKMSKeyId: 'arn:aws:kms:us-east-1:111122223333:key/contract', BucketKeyEnabled: true });
    const head = await client.send(new HeadObjectCommand({ Bucket: bucket, Key: 'k' }));
    expect(head).toMatchObject({ ServerSideEncryption: 'aws:kms', SSEKMSKeyId: 'arn:aws:kms:us-east-1:111122223333:key/contract', ETag: put.ETag });
    expect(s3.state.getObject(bucket, 'k')).toMatchObject({ serverSideEncryption: 'aws:kms', etag: put.ETag!.replace(/"/g, '') });
    const plain = await client.send(new PutObjectCommand({ Bucket: bucket, Key: 'p', Body: 'x' }));
    expect(plain).toMatchObject({ ServerSideEncryption: 'AES256', ETag: '"9dd4e461268c8034f5c8564e155c67a6"' });
    expect(plain.SSEKMSKeyId).toBeUndefined();
    const mp = await client.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: 'm', ServerSideEncryption: 'aws:kms:dsse' }));
    expect(mp).toMatchObject({ ServerSideEncryption: 'aws:kms:dsse', SSEKMSKeyId: expect.stringMatching(/^arn:aws:kms:/) });
  });

  it('an unknown algorithm, or a KMS key without KMS encryption, is InvalidArgument (400)', { timeout: 10_000 }, async () => {
    const { bucket, client } = setup();
    await expect(client.send(new PutObjectCommand({ Bucket: bucket, Key: 'a', Body: 'x', ServerSideEncryption: 'aws:nope' as 'AES256' }))).rejects.toMatchObject({
      name: 'InvalidArgument',
      $metadata: { httpStatusCode: 400 },
    });
    await expect(client.send(new PutObjectCommand({ Bucket: bucket, Key: 'a', Body: 'x', ServerSideEncryption: 'AES256', SSEKMSKeyId: 'k' }))).rejects.toMatchObject({
      name: 'InvalidArgument',
      $metadata: { httpStatusCode: 400 },
    });
    expect(s3.state.getObject(bucket, 'a')).toBeUndefined();
  });
});
