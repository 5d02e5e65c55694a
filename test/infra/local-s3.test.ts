// Proves the test fixture works: the global local S3 server is reachable, the
// helpers round-trip bytes, buckets isolate tests, and paginated listing works
// (which needs the server to run with --openssl-legacy-provider).
import { ListObjectsV2Command, PutObjectCommand } from '@aws-sdk/client-s3';
import { afterAll, describe, expect, test } from 'vitest';

import { createTestBucket, getObjectBytes, listAllKeys, makeTestClient, putObjects, s3Endpoint } from '../helpers/s3.js';

const client = makeTestClient();
afterAll(() => client.destroy());

describe('local S3 fixture', () => {
  test('endpoint is a local http URL', () => {
    expect(s3Endpoint()).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
  });

  test('1,005 objects: paginated ListObjectsV2 returns every key, GET is byte-identical', async () => {
    const bucket = await createTestBucket(client);
    const count = 1005;
    const keys = Array.from({ length: count }, (_, i) => `objects/${String(i).padStart(5, '0')}.bin`);
    const bodyOf = (i: number) => Buffer.from(`object ${i}\n\u0000\u00ff${'x'.repeat(i % 17)}`, 'latin1');

    // PutObjectCommand with Buffer bodies, 32 in flight.
    let next = 0;
    await Promise.all(
      Array.from({ length: 32 }, async () => {
        while (next < count) {
          const i = next++;
          await client.send(new PutObjectCommand({ Bucket: bucket, Key: keys[i], Body: bodyOf(i) }));
        }
      }),
    );

    // First page alone: truncated at 1,000 with a continuation token. This is
    // the part that answers HTTP 500 without --openssl-legacy-provider.
    const first = await client.send(new ListObjectsV2Command({ Bucket: bucket }));
    expect(first.IsTruncated).toBe(true);
    expect(first.Contents).toHaveLength(1000);
    expect(first.NextContinuationToken).toBeTruthy();

    const listed = await listAllKeys(client, bucket);
    expect(listed).toHaveLength(count);
    expect(listed).toEqual([...keys].sort());

    expect(await getObjectBytes(client, bucket, keys[1004]!)).toEqual(bodyOf(1004));
    expect(await listAllKeys(client, bucket, 'objects/0100')).toEqual(
      keys.filter((k) => k.startsWith('objects/0100')),
    );
  });

  test('each test bucket starts empty; putObjects round-trips strings and buffers', async () => {
    const bucket = await createTestBucket(client);
    expect(bucket).toMatch(/^t-[0-9a-f]{16}$/);
    expect(await listAllKeys(client, bucket)).toEqual([]);

    const binary = Buffer.from([0, 1, 2, 0xfe, 0xff, 0x0d, 0x0a]);
    await putObjects(client, bucket, { 'b/bin': binary, 'a/text.txt': 'héllo\n', empty: '' });
    expect(await listAllKeys(client, bucket)).toEqual(['a/text.txt', 'b/bin', 'empty']);
    expect(await getObjectBytes(client, bucket, 'b/bin')).toEqual(binary);
    expect((await getObjectBytes(client, bucket, 'a/text.txt')).toString('utf8')).toBe('héllo\n');
    expect(await getObjectBytes(client, bucket, 'empty')).toEqual(Buffer.alloc(0));
  });
});
