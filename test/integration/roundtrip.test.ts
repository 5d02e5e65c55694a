// push → pull round trip against the local S3 server: bytes, key layout,
// metadata and Content-Type of what the library writes.
import { randomBytes } from 'node:crypto';
import { stat } from 'node:fs/promises';
import path from 'node:path';

import { HeadObjectCommand } from '@aws-sdk/client-s3';
import { describe, expect, it } from 'vitest';

import { fixture, md5Base64, md5Hex, tempDir } from '../helpers/sync-fixture.js';
import { getObjectBytes, listAllKeys } from '../helpers/s3.js';
import { expectSameTree, readTree, writeTree } from '../helpers/tree.js';

const binary = Buffer.concat([Buffer.from([0, 0xff, 0x0d, 0x0a, 0x00]), randomBytes(3000)]);

const FILES: Record<string, string | Buffer> = {
  'README.md': '# hello\n',
  'config.json': '{"a":1}\n',
  'empty.txt': '',
  'img/pic.png': Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 0]),
  'bin/data.bin': binary,
  'a/b/c/d/deep.txt': 'deep\n',
  'dir with space/héllo wörld ✓.txt': 'unicode name\n',
  '日本語/ファイル 名.md': 'テキスト\n',
  'src/index.ts': 'export const x = 1;\n',
  'special/a+b c#d%20e&f=g(h)[i]{j}~k!l@m$n\'o,p;q.txt': 'url-hostile characters\n',
  '.hidden/.dotfile': 'dot\n',
};

describe('round trip', () => {
  it('push then pull into an empty dir gives a byte-identical tree, keys are prefix + posix path', async () => {
    const f = await fixture();
    const src = await tempDir();
    await writeTree(src, FILES);

    const pushed = await f.sync({ workspaceDir: src, prefix: 'users/u1/workspace' }).push();
    expect(pushed.success).toBe(true);
    expect(pushed.failedFiles).toEqual([]);
    expect(pushed.uploadedFiles).toBe(Object.keys(FILES).length);
    expect(pushed.deletedFiles).toBe(0);
    const totalBytes = Object.values(FILES).reduce((n, c) => n + Buffer.byteLength(c), 0);
    expect(pushed.bytesTransferred).toBe(totalBytes);

    const keys = await listAllKeys(f.other, f.bucket);
    expect(keys).toEqual(
      Object.keys(FILES)
        .map((rel) => `users/u1/workspace/${rel}`)
        .sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b))),
    );
    for (const [rel, content] of Object.entries(FILES)) {
      expect(await getObjectBytes(f.other, f.bucket, `users/u1/workspace/${rel}`)).toEqual(Buffer.from(content));
    }

    // Pull into a directory that does not exist yet: pull creates it.
    const dest = path.join(await tempDir(), 'restored', 'ws');
    const pulled = await f.sync({ workspaceDir: dest, prefix: 'users/u1/workspace/' }).pull();
    expect(pulled.success).toBe(true);
    expect(pulled.downloadedFiles).toBe(Object.keys(FILES).length);
    expect(pulled.deletedFiles).toBe(0);
    expect(pulled.failedFiles).toEqual([]);
    expect(pulled.bytesTransferred).toBe(totalBytes);
    await expectSameTree(src, dest);
    expect((await readTree(dest))['bin/data.bin']).toEqual(binary);
  });

  it('uploaded objects carry md5chksum (base64 MD5) and mtime metadata, an MD5 ETag and a Content-Type', async () => {
    const f = await fixture();
    const src = await tempDir();
    await writeTree(src, FILES);
    const result = await f.sync({ workspaceDir: src, prefix: 'p' }).push();
    expect(result.success).toBe(true);

    const expectedType: Record<string, string> = {
      'config.json': 'application/json; charset=utf-8',
      'img/pic.png': 'image/png',
      'empty.txt': 'text/plain; charset=utf-8',
      'README.md': 'text/markdown; charset=utf-8',
      'bin/data.bin': 'application/octet-stream',
      'src/index.ts': 'application/typescript; charset=utf-8',
    };
    for (const [rel, content] of Object.entries(FILES)) {
      const head = await f.other.send(new HeadObjectCommand({ Bucket: f.bucket, Key: `p/${rel}` }));
      const st = await stat(path.join(src, ...rel.split('/')));
      expect(head.Metadata?.md5chksum, rel).toBe(md5Base64(content));
      expect(head.Metadata?.mtime, rel).toBe((st.mtimeMs / 1000).toFixed(3));
      expect(head.ETag?.replace(/"/g, ''), rel).toBe(md5Hex(content));
      expect(head.ContentLength, rel).toBe(Buffer.byteLength(content));
      if (expectedType[rel] !== undefined) expect(head.ContentType, rel).toBe(expectedType[rel]);
    }
  });

  it('contentTypeResolver overrides the Content-Type and gets the workspace-relative path', async () => {
    const f = await fixture();
    const src = await tempDir();
    await writeTree(src, { 'x/y.json': '{}' });
    const seen: string[] = [];
    const result = await f
      .sync({
        workspaceDir: src,
        contentTypeResolver: (p) => {
          seen.push(p);
          return 'application/x-custom';
        },
      })
      .push();
    expect(result.success).toBe(true);
    expect(seen).toEqual(['x/y.json']);
    const head = await f.other.send(new HeadObjectCommand({ Bucket: f.bucket, Key: 'ws/x/y.json' }));
    expect(head.ContentType).toBe('application/x-custom');
  });

  it('prefix "" syncs at the bucket root', async () => {
    const f = await fixture();
    const src = await tempDir();
    await writeTree(src, { 'a.txt': 'a', 'd/b.txt': 'b' });
    expect((await f.sync({ workspaceDir: src, prefix: '' }).push()).success).toBe(true);
    expect(await listAllKeys(f.other, f.bucket)).toEqual(['a.txt', 'd/b.txt']);
    const dest = await tempDir();
    expect((await f.sync({ workspaceDir: dest, prefix: '' }).pull()).downloadedFiles).toBe(2);
    await expectSameTree(src, dest);
  });
});
