// Change detection for multipart objects written by other tools (no md5chksum
// metadata): the local file's multipart ETag for the likely part size decides,
// so an identical multi-part file is never downloaded again. Exact SDK calls
// checked with aws-sdk-client-mock (s3rver gives multipart objects plain-MD5
// ETags, so it cannot show this).
import { createHash, randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  S3Client,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import { mockClient } from 'aws-sdk-client-mock';
import { describe, expect, it, onTestFinished } from 'vitest';
import { choosePartSize, likelyPartSizes, multipartPartCount, partSizesFor } from '../../src/core/multipart.js';
import { MultipartEtagHasher, multipartEtag } from '../../src/local/hash.js';
import { S3WorkspaceSync, silentLogger } from '../../src/index.js';
import { tempDir } from '../helpers/sync-fixture.js';

const MiB = 1024 * 1024;

function s3MultipartEtag(data: Buffer, partSize: number): string {
  const digests: Buffer[] = [];
  for (let o = 0; o < data.length; o += partSize) digests.push(createHash('md5').update(data.subarray(o, o + partSize)).digest());
  return `${createHash('md5').update(Buffer.concat(digests)).digest('hex')}-${digests.length}`;
}

describe('multipart arithmetic', () => {
  it('choosePartSize keeps the preferred size, grows it past 10,000 parts, and never goes below 5 MiB', () => {
    expect(choosePartSize(100 * MiB, 8 * MiB)).toBe(8 * MiB);
    expect(choosePartSize(100 * MiB, 1 * MiB)).toBe(5 * MiB);
    const fifty = 50 * 1024 * MiB;
    const part = choosePartSize(fifty, 8 * MiB);
    expect(Math.ceil(fifty / part)).toBeLessThanOrEqual(10_000);
    expect(part % MiB).toBe(0);
    expect(part).toBe(8 * MiB); // 6,400 parts of 8 MiB fit
    const huge = 200 * 1024 * MiB;
    expect(Math.ceil(huge / choosePartSize(huge, 8 * MiB))).toBeLessThanOrEqual(10_000);
  });

  it('multipartPartCount and likelyPartSizes', () => {
    expect(multipartPartCount('"0123456789abcdef0123456789abcdef-12"')).toBe(12);
    expect(multipartPartCount('0123456789abcdef0123456789abcdef')).toBeUndefined();
    expect(likelyPartSizes(20 * MiB, 3)).toContain(8 * MiB);
    expect(likelyPartSizes(20 * MiB, 4)).toContain(5 * MiB);
    for (const ps of likelyPartSizes(123_456_789, 15)) expect(Math.ceil(123_456_789 / ps)).toBe(15);
  });

  it('partSizesFor puts a known part size first, and only when it gives that many parts', () => {
    const size = 14 * MiB + 1;
    expect(likelyPartSizes(size, 3)).not.toContain(7 * MiB);
    expect(partSizesFor(size, 3, 7 * MiB)).toEqual([7 * MiB, ...likelyPartSizes(size, 3)]);
    expect(partSizesFor(size, 3, 5 * MiB)).toEqual([5 * MiB, ...likelyPartSizes(size, 3).filter((s) => s !== 5 * MiB)]);
    expect(partSizesFor(size, 3, 8 * MiB)).toEqual(likelyPartSizes(size, 3)); // 8 MiB parts make 2, not 3
    expect(partSizesFor(size, 3, 0)).toEqual(likelyPartSizes(size, 3));
    expect(partSizesFor(size, 3)).toEqual(likelyPartSizes(size, 3));
  });

  it('MultipartEtagHasher matches S3’s ETag whatever the chunking of the input', () => {
    const data = randomBytes(13 * MiB + 17);
    const hasher = new MultipartEtagHasher([5 * MiB, 8 * MiB]);
    for (let o = 0; o < data.length; o += 777_777) hasher.update(data.subarray(o, o + 777_777));
    expect(hasher.digest()).toEqual([s3MultipartEtag(data, 5 * MiB), s3MultipartEtag(data, 8 * MiB)]);
    expect(multipartEtag([createHash('md5').update(data).digest()])).toBe(s3MultipartEtag(data, data.length));
  });
});

describe('pull recognises multipart objects written by other tools', () => {
  function setup(ws: string) {
    const client = new S3Client({ region: 'us-east-1', credentials: { accessKeyId: 'x', secretAccessKey: 'y' } });
    const s3 = mockClient(client);
    onTestFinished(() => {
      s3.restore();
      client.destroy();
    });
    return { s3, sync: new S3WorkspaceSync({ bucket: 'bkt', prefix: 'p/', workspaceDir: ws, s3Client: client, logger: silentLogger }) };
  }

  it('an identical file (no md5chksum metadata, ETag md5-of-parts-N) is not downloaded', async () => {
    const ws = await tempDir();
    const data = randomBytes(20 * MiB + 5);
    await writeFile(path.join(ws, 'data.bin'), data);
    const { s3, sync } = setup(ws);
    const etag = s3MultipartEtag(data, 8 * MiB); // aws-cli's default part size
    s3.on(ListObjectsV2Command).resolves({ IsTruncated: false, Contents: [{ Key: 'p/data.bin', Size: data.length, ETag: `"${etag}"` }] });
    s3.on(HeadObjectCommand).resolves({ ContentLength: data.length, ETag: `"${etag}"`, Metadata: {} });
    const result = await sync.pull();
    expect(result).toMatchObject({ success: true, downloadedFiles: 0 });
    expect(result.plan.unchangedFiles).toBe(1);
    expect(s3.commandCalls(GetObjectCommand)).toHaveLength(0);
    // the metadata, then part 1's size (no partsize metadata: another tool wrote it)
    expect(s3.commandCalls(HeadObjectCommand).map((c) => c.args[0].input.PartNumber)).toEqual([undefined, 1]);
  });

  it('a different file of the same size is downloaded', async () => {
    const ws = await tempDir();
    const local = randomBytes(20 * MiB);
    const remote = randomBytes(20 * MiB);
    await writeFile(path.join(ws, 'data.bin'), local);
    const { s3, sync } = setup(ws);
    const etag = s3MultipartEtag(remote, 8 * MiB);
    s3.on(ListObjectsV2Command).resolves({ IsTruncated: false, Contents: [{ Key: 'p/data.bin', Size: remote.length, ETag: `"${etag}"` }] });
    s3.on(HeadObjectCommand).resolves({ ContentLength: remote.length, ETag: `"${etag}"`, Metadata: {} });
    const plan = await sync.plan('pull');
    expect(plan.transfers.map((t) => [t.path, t.reason])).toEqual([['data.bin', 'changed']]);
  });
});

describe('multipart upload verification (mocked answers)', () => {
  it('a completed ETag that is neither the parts’ multipart ETag nor the MD5 fails the file as INTEGRITY (retried as a whole; a completed upload is not aborted)', async () => {
    const ws = await tempDir();
    const data = randomBytes(11 * MiB);
    await writeFile(path.join(ws, 'big.bin'), data);
    const client = new S3Client({ region: 'us-east-1', credentials: { accessKeyId: 'x', secretAccessKey: 'y' } });
    const s3 = mockClient(client);
    onTestFinished(() => {
      s3.restore();
      client.destroy();
    });
    s3.on(ListObjectsV2Command).resolves({ IsTruncated: false, Contents: [] });
    s3.on(CreateMultipartUploadCommand).resolves({ UploadId: 'u-1' });
    s3.on(UploadPartCommand).callsFake((input: { Body: Buffer }) => ({ ETag: `"${createHash('md5').update(input.Body).digest('hex')}"` }));
    s3.on(CompleteMultipartUploadCommand).resolves({ ETag: '"ffffffffffffffffffffffffffffffff-3"' });
    s3.on(AbortMultipartUploadCommand).resolves({});
    const sync = new S3WorkspaceSync({ bucket: 'bkt', prefix: 'p/', workspaceDir: ws, s3Client: client, logger: silentLogger, multipartThreshold: 5 * MiB, partSize: 5 * MiB });
    const result = await sync.push();
    expect(result.failedFiles).toEqual([expect.objectContaining({ path: 'big.bin', code: 'INTEGRITY' })]);
    // an integrity mismatch is worth one more whole try (maxAttempts = 3 in all)
    expect(s3.commandCalls(CreateMultipartUploadCommand)).toHaveLength(3);
    expect(s3.commandCalls(UploadPartCommand).map((c) => c.args[0].input.PartNumber).sort()).toEqual([1, 1, 1, 2, 2, 2, 3, 3, 3]);
    expect(s3.commandCalls(AbortMultipartUploadCommand)).toHaveLength(0);
  });
});
