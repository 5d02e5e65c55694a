// The remote workspace identity: split out of listings, and created at most
// once per instance when the credentials refuse it (read-only consumers).
import { Readable } from 'node:stream';

import { GetObjectCommand, ListObjectsV2Command, PutObjectCommand, S3Client, S3ServiceException } from '@aws-sdk/client-s3';
import { mockClient } from 'aws-sdk-client-mock';
import { describe, expect, it, onTestFinished } from 'vitest';

import { S3WorkspaceSync, silentLogger } from '../../src/index.js';
import { splitIdentity } from '../../src/state/remote-identity.js';
import { md5Hex, tempDir } from '../helpers/sync-fixture.js';

describe('splitIdentity', () => {
  it('takes the identity object out of a listing of its prefix, and nothing else', () => {
    const listed = [
      { key: 'p/a.txt', etag: 'e1' },
      { key: 'p/.s3-workspace-sync/workspace-id', etag: 'id-etag' },
      { key: 'p/sub/.s3-workspace-sync/workspace-id', etag: 'nested' }, // another prefix's: a workspace object here
    ];
    expect(splitIdentity(listed, 'p/')).toEqual({ id: 'id-etag', own: [listed[0], listed[2]] });
    expect(splitIdentity([listed[0]!], 'p/')).toEqual({ id: null, own: [listed[0]] });
  });
});

describe('creating the identity object', () => {
  it('refused (read-only credentials): tried once per instance, and the pulls still succeed', { timeout: 20_000 }, async () => {
    const client = new S3Client({ region: 'us-east-1', credentials: { accessKeyId: 'x', secretAccessKey: 'y' } });
    const s3 = mockClient(client);
    onTestFinished(() => {
      s3.restore();
      client.destroy();
    });
    s3.on(ListObjectsV2Command).resolves({ IsTruncated: false, Contents: [{ Key: 'ws/a.txt', Size: 1, ETag: `"${md5Hex('a')}"` }] });
    s3.on(GetObjectCommand).callsFake(() => ({ Body: Readable.from([Buffer.from('a')]), ContentLength: 1, ETag: `"${md5Hex('a')}"` }));
    s3.on(PutObjectCommand).rejects(new S3ServiceException({ name: 'AccessDenied', $fault: 'client', $metadata: { httpStatusCode: 403 }, message: 'Access Denied' }));
    const sync = new S3WorkspaceSync({ bucket: 'bkt', prefix: 'ws/', workspaceDir: await tempDir(), s3Client: client, logger: silentLogger });
    expect(await sync.pull()).toMatchObject({ success: true, downloadedFiles: 1 });
    expect(await sync.pull()).toMatchObject({ success: true, downloadedFiles: 0 });
    expect(s3.commandCalls(PutObjectCommand).map((c) => c.args[0].input.Key)).toEqual(['ws/.s3-workspace-sync/workspace-id']);
  });
});
