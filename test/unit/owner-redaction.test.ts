// expectedBucketOwner on every request, and no secrets in error messages or logs.
import { Readable } from 'node:stream';
import {
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  S3ServiceException,
} from '@aws-sdk/client-s3';
import { mockClient } from 'aws-sdk-client-mock';
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it, onTestFinished } from 'vitest';
import { ConfigError, redactSecrets, S3WorkspaceSync, type SyncLogger } from '../../src/index.js';
import { md5Hex, tempDir } from '../helpers/sync-fixture.js';
import { writeTree } from '../helpers/tree.js';

const SECRET = 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYSECRETKEY';
const ACCESS = 'AKIAIOSFODNN7EXAMPLE';

function recordingLogger(): SyncLogger & { lines: string[] } {
  const lines: string[] = [];
  const push = (m: string, ...a: unknown[]) => lines.push([m, ...a.map(String)].join(' '));
  return { lines, debug: push, info: push, warn: push, error: push };
}

function setup(workspaceDir: string, extra: Record<string, unknown> = {}) {
  const client = new S3Client({ region: 'us-east-1', credentials: { accessKeyId: ACCESS, secretAccessKey: SECRET } });
  const s3 = mockClient(client);
  onTestFinished(() => {
    s3.restore();
    client.destroy();
  });
  const logger = recordingLogger();
  const sync = new S3WorkspaceSync({ bucket: 'bkt', prefix: 'p/', workspaceDir, s3Client: client, logger, ...extra });
  return { s3, sync, logger };
}

describe('expectedBucketOwner', () => {
  it('is sent on every request when set', async () => {
    const ws = await tempDir();
    await writeTree(ws, { 'a.txt': 'a', 'b.txt': 'b' });
    const { s3, sync } = setup(ws, { expectedBucketOwner: '123456789012' });
    s3.on(ListObjectsV2Command).resolves({ IsTruncated: false, Contents: [{ Key: 'p/r.txt', Size: 1, ETag: '"abc-2"' }] });
    s3.on(HeadObjectCommand).resolves({ ContentLength: 1, ETag: '"abc-2"' });
    // a fresh body per answer (the manifest is read first: one GET per push until this instance has seen it)
    s3.on(GetObjectCommand).callsFake(() => ({ Body: Readable.from([Buffer.from('r')]) as never, ContentLength: 1, ETag: `"${md5Hex('r')}"` }));
    s3.on(PutObjectCommand).callsFake((input: { Body: Buffer }) => ({ ETag: `"${md5Hex(input.Body)}"` }));
    s3.on(DeleteObjectsCommand).resolves({});
    await sync.push();
    await rm(path.join(ws, 'b.txt'));
    await sync.push();
    await sync.pull({ overwriteLocalChanges: true });
    const names = new Set<string>();
    for (const call of s3.calls()) {
      const input = call.args[0].input as { ExpectedBucketOwner?: string };
      names.add(call.args[0].constructor.name);
      expect(input.ExpectedBucketOwner).toBe('123456789012');
    }
    expect([...names].sort()).toEqual(['DeleteObjectsCommand', 'GetObjectCommand', 'ListObjectsV2Command', 'PutObjectCommand']);
  });

  it('is absent when not set, and must be a 12-digit account id', async () => {
    const ws = await tempDir();
    const { s3, sync } = setup(ws);
    s3.on(ListObjectsV2Command).resolves({ IsTruncated: false, Contents: [] });
    await sync.pull();
    expect((s3.calls()[0]?.args[0].input as Record<string, unknown>).ExpectedBucketOwner).toBeUndefined();
    expect(() => setup(ws, { expectedBucketOwner: 'acme' })).toThrow(ConfigError);
  });
});

describe('no secrets in errors or logs', () => {
  it('redacts signatures, credentials and Authorization values from server errors', async () => {
    const ws = await tempDir();
    await writeTree(ws, { 'a.txt': 'a' });
    const { s3, sync, logger } = setup(ws);
    s3.on(ListObjectsV2Command).resolves({ IsTruncated: false, Contents: [] });
    const leaky =
      `SignatureDoesNotMatch: Authorization: AWS4-HMAC-SHA256 Credential=${ACCESS}/20240101/us-east-1/s3/aws4_request, ` +
      `SignedHeaders=host, Signature=0123abcd; url https://b.s3.amazonaws.com/p/a.txt?X-Amz-Signature=deadbeef&X-Amz-Credential=${ACCESS}`;
    s3.on(PutObjectCommand).rejects(
      new S3ServiceException({ name: 'BadRequest', $fault: 'client', $metadata: { httpStatusCode: 400 }, message: leaky }),
    );
    const result = await sync.push();
    expect(result.success).toBe(false);
    const everything = [...result.errors, ...result.failedFiles.map((f) => f.error), ...logger.lines].join('\n');
    expect(everything).toContain('[redacted]');
    for (const secret of [ACCESS, SECRET, '0123abcd', 'deadbeef']) expect(everything).not.toContain(secret);
  });

  it('redactSecrets leaves ordinary messages alone', () => {
    expect(redactSecrets('s3://b/p/a.txt: access denied')).toBe('s3://b/p/a.txt: access denied');
    expect(redactSecrets(`key ${ACCESS} secretAccessKey=${SECRET}`)).not.toMatch(/AKIA|wJalr/);
  });
});
