// uploadParams and sseCustomerKey reach every request they belong to: single
// PUTs and multipart uploads alike (the real server for what s3rver keeps,
// the SDK mock for what it does not: KMS, storage class, ACL, tags, SSE-C).
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';

import {
  CompleteMultipartUploadCommand,
  DeleteObjectsCommand,
  CreateMultipartUploadCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import { mockClient } from 'aws-sdk-client-mock';
import { describe, expect, it, onTestFinished } from 'vitest';

import { ConfigError, S3WorkspaceSync, silentLogger } from '../../src/index.js';
import { fixture, md5Base64, md5Hex, tempDir } from '../helpers/sync-fixture.js';
import { readTree, writeTree } from '../helpers/tree.js';

const MiB = 1024 * 1024;
const large = { multipartThreshold: 5 * MiB, partSize: 5 * MiB, partConcurrency: 2 };

describe('uploadParams against the local server', () => {
  it('headers and metadata are stored on single and multipart uploads; a function chooses per file', { timeout: 30_000 }, async () => {
    const f = await fixture();
    const ws = await tempDir();
    const big = randomBytes(11 * MiB);
    await writeTree(ws, { 'notes.md': '# notes', 'report.pdf': 'pdf bytes', 'model.bin': big });
    const sync = f.sync({
      workspaceDir: ws,
      ...large,
      uploadParams: ({ path }) =>
        path.endsWith('.pdf')
          ? { ContentDisposition: 'attachment; filename="report.pdf"', Metadata: { owner: 'u1' } }
          : { CacheControl: 'no-cache', Metadata: { owner: 'u1', kind: path.endsWith('.bin') ? 'model' : 'text' } },
    });
    expect(await sync.push()).toMatchObject({ success: true, uploadedFiles: 3 });
    const head = (key: string) => f.other.send(new HeadObjectCommand({ Bucket: f.bucket, Key: key }));
    const notes = await head('ws/notes.md');
    expect(notes.CacheControl).toBe('no-cache');
    expect(notes.Metadata).toMatchObject({ owner: 'u1', kind: 'text', md5chksum: md5Base64('# notes') });
    const pdf = await head('ws/report.pdf');
    expect(pdf.ContentDisposition).toBe('attachment; filename="report.pdf"');
    expect(pdf.CacheControl).toBeUndefined();
    const model = await head('ws/model.bin'); // multipart
    expect(model.CacheControl).toBe('no-cache');
    expect(model.Metadata).toMatchObject({ owner: 'u1', kind: 'model', partsize: String(5 * MiB) });
    // and the library still recognises its objects: a fresh pull of the same bytes downloads nothing
    const again = await f.sync({ workspaceDir: ws, ...large }).pull();
    expect(again).toMatchObject({ success: true, downloadedFiles: 0, movedAside: [] });
  });

  it('a callback that returns a bad setting fails that file with a ConfigError; the others upload', { timeout: 20_000 }, async () => {
    const f = await fixture();
    const ws = await tempDir();
    await writeTree(ws, { 'ok.txt': 'ok', 'bad.txt': 'bad' });
    const sync = f.sync({ workspaceDir: ws, uploadParams: ({ path }) => (path === 'bad.txt' ? ({ Metadata: { mtime: 'x' } } as never) : undefined) });
    const result = await sync.push();
    expect(result).toMatchObject({ success: false, uploadedFiles: 1 });
    expect(result.failedFiles).toEqual([expect.objectContaining({ path: 'bad.txt', code: 'CONFIG' })]);
    expect(() => f.sync({ workspaceDir: ws, uploadParams: { Metadata: { md5chksum: 'x' } } })).toThrow(ConfigError);
  });
});

describe('uploadParams and sseCustomerKey on the wire (SDK mock)', () => {
  function setup(ws: string, options: Record<string, unknown>) {
    const client = new S3Client({ region: 'us-east-1', credentials: { accessKeyId: 'x', secretAccessKey: 'y' } });
    const s3 = mockClient(client);
    onTestFinished(() => {
      s3.restore();
      client.destroy();
    });
    s3.on(ListObjectsV2Command).resolves({ IsTruncated: false, Contents: [] });
    s3.on(HeadObjectCommand).rejects(Object.assign(new Error('NotFound'), { name: 'NotFound', $metadata: { httpStatusCode: 404 } }));
    s3.on(PutObjectCommand).callsFake(() => ({ ETag: `"${md5Hex(randomBytes(4))}"`, SSECustomerAlgorithm: "AES256" }));
    s3.on(CreateMultipartUploadCommand).resolves({ UploadId: 'u1' });
    // SSE-C (the default here): ETags that are not MD5s, and the algorithm echoed
    s3.on(UploadPartCommand).callsFake((input: { PartNumber: number }) => ({ ETag: `"${md5Hex(`part${input.PartNumber}`)}"`, SSECustomerAlgorithm: 'AES256' }));
    s3.on(CompleteMultipartUploadCommand).resolves({ ETag: "\"abc-3\"" });
    // the library's manifest (none yet) and the release of its push lease
    s3.on(GetObjectCommand).rejects(Object.assign(new Error('NoSuchKey'), { name: 'NoSuchKey', $metadata: { httpStatusCode: 404 } }));
    s3.on(DeleteObjectsCommand).resolves({});
    const sync = new S3WorkspaceSync({ bucket: 'bkt', prefix: 'ws/', workspaceDir: ws, s3Client: client, logger: silentLogger, ...large, ...options });
    return { s3, sync };
  }

  it('SSE-KMS, storage class, ACL and tags on PutObject and CreateMultipartUpload', { timeout: 20_000 }, async () => {
    const ws = await tempDir();
    await writeTree(ws, { 'a.txt': 'a', 'big.bin': Buffer.alloc(11 * MiB, 1) });
    const params = {
      ServerSideEncryption: 'aws:kms' as const,
      SSEKMSKeyId: 'arn:aws:kms:eu-west-1:111122223333:key/k1',
      BucketKeyEnabled: true,
      StorageClass: 'INTELLIGENT_TIERING',
      ACL: 'bucket-owner-full-control',
      Tagging: { team: 'agents' },
    };
    const { s3, sync } = setup(ws, { uploadParams: params });
    s3.on(PutObjectCommand).callsFake(() => ({ ETag: `"${md5Hex('not the content')}"`, ServerSideEncryption: 'aws:kms' }));
    s3.on(CompleteMultipartUploadCommand).resolves({ ETag: '"abc-3"', ServerSideEncryption: 'aws:kms' });
    // S3 answers an SSE-KMS part with an ETag that is not its MD5 (the multipart upload used to fail on it)
    s3.on(UploadPartCommand).callsFake((input: { PartNumber: number }) => ({ ETag: `"${md5Hex(`kms${input.PartNumber}`)}"`, ServerSideEncryption: 'aws:kms' }));
    const pushed = await sync.push();
    expect(pushed.failedFiles).toEqual([]);
    expect(pushed).toMatchObject({ success: true, uploadedFiles: 2 });
    const expected = { ...params, Tagging: 'team=agents' };
    const put = s3.commandCalls(PutObjectCommand, { Key: 'ws/a.txt' })[0]!.args[0].input;
    expect(put).toMatchObject(expected);
    expect(put.Metadata).toMatchObject({ md5chksum: md5Base64('a') });
    expect(s3.commandCalls(CreateMultipartUploadCommand)[0]!.args[0].input).toMatchObject(expected);
  });

  it('SSE-C: the key goes with every PUT, part, GET and HEAD; ETags are not taken for MD5s', { timeout: 20_000 }, async () => {
    const ws = await tempDir();
    const key = 'k'.repeat(32);
    await writeTree(ws, { 'a.txt': 'a', 'big.bin': Buffer.alloc(11 * MiB, 1) });
    const { s3, sync } = setup(ws, { sseCustomerKey: key });
    // an SSE-C PUT answers with an ETag that is not the MD5: still a success
    const pushed = await sync.push();
    expect(pushed.failedFiles).toEqual([]);
    expect(pushed).toMatchObject({ success: true, uploadedFiles: 2 });
    const ssec = { SSECustomerAlgorithm: 'AES256', SSECustomerKey: key };
    expect(s3.commandCalls(PutObjectCommand, { Key: 'ws/a.txt' })[0]!.args[0].input).toMatchObject(ssec);
    expect(s3.commandCalls(CreateMultipartUploadCommand)[0]!.args[0].input).toMatchObject(ssec);
    for (const c of s3.commandCalls(UploadPartCommand)) expect(c.args[0].input).toMatchObject(ssec);

    // pull: listed with a non-MD5 ETag, read with the key, verified against md5chksum
    const dest = await tempDir();
    const client2 = setup(dest, { sseCustomerKey: key });
    client2.s3.on(ListObjectsV2Command).resolves({ IsTruncated: false, Contents: [{ Key: 'ws/b.txt', Size: 1, ETag: `"${md5Hex('x')}"` }] });
    const meta = { ContentLength: 1, ETag: `"${md5Hex('x')}"`, SSECustomerAlgorithm: 'AES256', Metadata: { md5chksum: md5Base64('b') } };
    client2.s3.on(HeadObjectCommand).resolves(meta);
    client2.s3.on(GetObjectCommand).callsFake(() => ({ ...meta, Body: Readable.from([Buffer.from('b')]) }));
    expect(await client2.sync.pull()).toMatchObject({ success: true, downloadedFiles: 1 });
    expect((await readTree(dest))['b.txt']?.toString()).toBe('b');
    for (const c of client2.s3.commandCalls(GetObjectCommand)) expect(c.args[0].input).toMatchObject(ssec);
    for (const c of client2.s3.commandCalls(HeadObjectCommand)) expect(c.args[0].input).toMatchObject(ssec);
  });
});
