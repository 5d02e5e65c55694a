// SSE-KMS objects have ETags that look like MD5s but are not. A fresh
// instance used to take them for MD5s: a pull downloaded identical files
// again and a push without a snapshot uploaded them again. The mismatch is
// now confirmed from the metadata (one HEAD per same-size file) first.
import { Readable } from 'node:stream';

import { CopyObjectCommand, DeleteObjectsCommand, GetObjectCommand, HeadObjectCommand, ListObjectsV2Command, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { mockClient } from 'aws-sdk-client-mock';
import { describe, expect, it, onTestFinished } from 'vitest';

import { S3WorkspaceSync, silentLogger } from '../../src/index.js';
import { md5Base64, md5Hex, tempDir } from '../helpers/sync-fixture.js';
import { readTree, writeTree } from '../helpers/tree.js';

const FILES = { 'a.txt': 'alpha', 'src/b.ts': 'export const b = 2;\n', 'changed.txt': 'local!' };
const REMOTE = { 'a.txt': 'alpha', 'src/b.ts': 'export const b = 2;\n', 'changed.txt': 'remote' };
/** A KMS ETag: 32 hex digits, not the MD5 of anything here. */
const kmsEtag = (path: string): string => md5Hex(`kms:${path}`);

function setup(ws: string, { metadata = true }: { metadata?: boolean } = {}) {
  const client = new S3Client({ region: 'us-east-1', credentials: { accessKeyId: 'x', secretAccessKey: 'y' } });
  const s3 = mockClient(client);
  onTestFinished(() => {
    s3.restore();
    client.destroy();
  });
  s3.on(ListObjectsV2Command).resolves({
    IsTruncated: false,
    Contents: Object.entries(REMOTE).map(([p, body]) => ({ Key: `ws/${p}`, Size: Buffer.byteLength(body), ETag: `"${kmsEtag(p)}"` })),
  });
  for (const [p, body] of Object.entries(REMOTE)) {
    const head = {
      ContentLength: Buffer.byteLength(body),
      ETag: `"${kmsEtag(p)}"`,
      ServerSideEncryption: 'aws:kms' as const,
      Metadata: metadata ? { md5chksum: md5Base64(body) } : {},
    };
    s3.on(HeadObjectCommand, { Key: `ws/${p}` }).resolves(head);
    s3.on(GetObjectCommand, { Key: `ws/${p}` }).callsFake(() => ({ ...head, Body: Readable.from([Buffer.from(body)]) }));
  }
  s3.on(PutObjectCommand).callsFake((input: { Key: string }) => ({ ETag: `"${kmsEtag(input.Key)}"`, ServerSideEncryption: 'aws:kms' }));
  // the library's manifest (none yet) and the release of its push lease
  s3.on(GetObjectCommand, { Key: 'ws/.s3-workspace-sync/manifest.json' }).rejects(Object.assign(new Error('NoSuchKey'), { name: 'NoSuchKey', $metadata: { httpStatusCode: 404 } }));
  s3.on(DeleteObjectsCommand).resolves({});
  // keep-local saves the version it replaces (a server-side copy into the library's conflicts area)
  s3.on(CopyObjectCommand).callsFake((input: { Key: string }) => ({ CopyObjectResult: { ETag: `"${kmsEtag(input.Key)}"` } }));
  const sync = new S3WorkspaceSync({ bucket: 'b-kms', prefix: 'ws/', workspaceDir: ws, s3Client: client, logger: silentLogger, persistState: false });
  return { s3, sync };
}

describe('SSE-KMS objects (ETags that are not MD5s)', () => {
  it('a fresh pull downloads only the file that really differs (metadata MD5 confirms the others)', { timeout: 20_000 }, async () => {
    const ws = await tempDir();
    await writeTree(ws, FILES);
    const { s3, sync } = setup(ws);
    const result = await sync.pull();
    expect(result).toMatchObject({ success: true, downloadedFiles: 1 });
    expect(s3.commandCalls(GetObjectCommand).map((c) => c.args[0].input.Key)).toEqual(['ws/changed.txt']);
    expect((await readTree(ws))['changed.txt']?.toString()).toBe('remote');
    expect(result.plan.unchangedFiles).toBe(2);
  });

  it('a push without a snapshot touches only the file that really differs (a conflict by default; keep-local uploads it, conditionally)', { timeout: 20_000 }, async () => {
    const ws = await tempDir();
    await writeTree(ws, FILES);
    const { s3, sync } = setup(ws);
    const result = await sync.push();
    expect(result).toMatchObject({ success: false, uploadedFiles: 0 });
    expect(result.conflicts.map((c) => c.path)).toEqual(['changed.txt']);
    expect(s3.commandCalls(PutObjectCommand).filter((c) => !c.args[0].input.Key?.includes('.s3-workspace-sync/'))).toEqual([]);
    // another fresh instance, keep-local: one upload, on condition that the object is still the version listed
    const other = setup(ws);
    const keep = await other.sync.push({ conflictPolicy: 'keep-local' });
    expect(keep).toMatchObject({ success: true, uploadedFiles: 1 });
    const puts = other.s3.commandCalls(PutObjectCommand).map((c) => c.args[0].input).filter((i) => !i.Key?.includes('.s3-workspace-sync/'));
    expect(puts.map((i) => [i.Key, i.IfMatch])).toEqual([['ws/changed.txt', `"${kmsEtag('changed.txt')}"`]]);
    // the version replaced was saved first, exactly that version
    const copies = other.s3.commandCalls(CopyObjectCommand).map((c) => c.args[0].input);
    expect(copies).toHaveLength(1);
    expect(copies[0]).toMatchObject({ CopySource: 'b-kms/ws/changed.txt', CopySourceIfMatch: `"${kmsEtag('changed.txt')}"` });
    expect(copies[0]!.Key).toMatch(/^ws\/\.s3-workspace-sync\/conflicts\/\d{8}T\d{6}Z-[0-9a-f]{6}\/changed\.txt$/);
    expect(keep.conflicts).toEqual([expect.objectContaining({ path: 'changed.txt', resolution: 'kept-local', remoteSavedTo: copies[0]!.Key })]);
  });

  it('without an MD5 in the metadata, equality cannot be known: the same-size files transfer (and nothing is trusted wrongly)', { timeout: 20_000 }, async () => {
    const ws = await tempDir();
    await writeTree(ws, FILES);
    const { s3, sync } = setup(ws, { metadata: false });
    const result = await sync.pull();
    expect(result.success).toBe(true);
    expect(s3.commandCalls(GetObjectCommand).map((c) => c.args[0].input.Key).sort()).toEqual(['ws/a.txt', 'ws/changed.txt', 'ws/src/b.ts']);
    expect((await readTree(ws))['changed.txt']?.toString()).toBe('remote');
  });
});
