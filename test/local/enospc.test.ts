// Disk full without a small filesystem: `node:fs/promises` (streamed
// downloads) and `node:fs` (small downloads, written with writeSync) are
// mocked so that writes to temporary download files fail with ENOSPC once a
// byte budget is spent, exactly as write(2) does on a full disk. The real-disk version of
// this test (a 512 KiB tmpfs) is in test/integration/hostile.test.ts and
// needs root; this one runs everywhere.
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';

import { GetObjectCommand, HeadObjectCommand, ListObjectsV2Command, S3Client, S3ServiceException } from '@aws-sdk/client-s3';
import { mockClient } from 'aws-sdk-client-mock';
import { afterEach, describe, expect, it, onTestFinished, vi } from 'vitest';

import { S3WorkspaceSync, silentLogger } from '../../src/index.js';
import { WorkspaceWriter } from '../../src/local/WorkspaceWriter.js';
import { SMALL_DOWNLOAD_MAX } from '../../src/transfer/transfers.js';
import { listEntries, md5Hex, tempDir } from '../helpers/sync-fixture.js';

/**
 * Free space for one temporary download file (downloads run one at a time in
 * these tests, and a failed download's temporary file is removed, which gives
 * its blocks back): a write past it fails with ENOSPC. Infinity = not full.
 */
const disk = vi.hoisted(() => ({ free: Infinity, refused: 0 }));

vi.mock('node:fs/promises', async (importOriginal) => {
  const actual = await importOriginal<typeof import('node:fs/promises')>();
  const enospc = (): NodeJS.ErrnoException =>
    Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC', errno: -28, syscall: 'write' });
  const open: typeof actual.open = async (...args: Parameters<typeof actual.open>) => {
    const fh = await actual.open(...args);
    if (!String(args[0]).endsWith('.s3ws-tmp')) return fh;
    const write = fh.write.bind(fh) as (buffer: Buffer, offset?: number, length?: number) => Promise<{ bytesWritten: number; buffer: Buffer }>;
    let used = 0;
    (fh as { write: unknown }).write = async (buffer: Buffer, offset = 0, length = buffer.length - offset) => {
      if (used >= disk.free) {
        disk.refused++;
        throw enospc();
      }
      const n = Math.min(length, disk.free - used);
      used += n;
      return write(buffer, offset, n); // a short write, as on a filling disk; the caller loops
    };
    return fh;
  };
  return { ...actual, open, default: { ...actual, open } };
});

vi.mock('node:fs', async (importOriginal) => {
  const actual = await importOriginal<typeof import('node:fs')>();
  const enospc = (): NodeJS.ErrnoException =>
    Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC', errno: -28, syscall: 'write' });
  /** Bytes written so far to each open temporary file. */
  const temps = new Map<number, number>();
  const openSync = ((...args: Parameters<typeof actual.openSync>) => {
    const fd = actual.openSync(...args);
    if (String(args[0]).endsWith('.s3ws-tmp')) temps.set(fd, 0);
    return fd;
  }) as typeof actual.openSync;
  const closeSync: typeof actual.closeSync = (fd) => {
    temps.delete(fd);
    actual.closeSync(fd);
  };
  const writeSync = ((fd: number, buffer: NodeJS.ArrayBufferView | string, ...rest: unknown[]) => {
    const used = temps.get(fd);
    const write = actual.writeSync as (...a: unknown[]) => number;
    if (used === undefined || typeof buffer === 'string') return write(fd, buffer, ...rest);
    const offset = (rest[0] as number | undefined) ?? 0;
    const length = (rest[1] as number | undefined) ?? buffer.byteLength - offset;
    if (used >= disk.free) {
      disk.refused++;
      throw enospc();
    }
    const n = Math.min(length, disk.free - used);
    temps.set(fd, used + n);
    return write(fd, buffer, offset, n); // a short write, as on a filling disk; the caller loops
  }) as typeof actual.writeSync;
  const fake = { openSync, closeSync, writeSync };
  return { ...actual, ...fake, default: { ...actual, ...fake } };
});

afterEach(() => {
  disk.free = Infinity;
  disk.refused = 0;
});

const tempFiles = async (dir: string) => (await listEntries(dir)).filter((e) => e.endsWith('.s3ws-tmp'));

describe('disk full (ENOSPC injected into node:fs/promises)', () => {
  it('WorkspaceWriter.writeAtomic: ENOSPC mid-file rejects with the errno, keeps the old file, removes the temporary file', async () => {
    const ws = await tempDir();
    await writeFile(path.join(ws, 'f.txt'), 'old content');
    disk.free = 1000;
    const writer = new WorkspaceWriter(ws);
    const body = Readable.from([Buffer.alloc(800, 1), Buffer.alloc(800, 2)]);
    await expect(writer.writeAtomic('f.txt', body, {}, () => undefined)).rejects.toMatchObject({ code: 'ENOSPC' });
    expect(disk.refused).toBe(1);
    expect(await readFile(path.join(ws, 'f.txt'), 'utf8')).toBe('old content');
    expect(await readdir(ws)).toEqual(['f.txt']);
  });

  it('WorkspaceWriter.writeAtomic (whole-body Buffer): ENOSPC rejects with the errno, keeps the old file, removes the temporary file', async () => {
    const ws = await tempDir();
    await writeFile(path.join(ws, 'f.txt'), 'old content');
    disk.free = 1000;
    const writer = new WorkspaceWriter(ws);
    await expect(writer.writeAtomic('f.txt', Buffer.alloc(1600, 1), {}, () => undefined)).rejects.toMatchObject({ code: 'ENOSPC' });
    expect(disk.refused).toBe(1);
    expect(await readFile(path.join(ws, 'f.txt'), 'utf8')).toBe('old content');
    expect(await readdir(ws)).toEqual(['f.txt']);
  });

  // big.txt is read whole (≤ SMALL_DOWNLOAD_MAX) or streamed to disk (larger): both write paths.
  it.each([
    ['read whole', 64 * 1024],
    ['streamed', SMALL_DOWNLOAD_MAX + 64 * 1024],
  ])('pull (%s): the file fails with code ENOSPC (no retry), old files intact, nothing deleted, no temporary file', async (_, bigSize) => {
    const parent = await tempDir();
    const ws = path.join(parent, 'ws');
    await mkdir(ws);
    await writeFile(path.join(parent, 'sentinel.txt'), 'untouched');
    await writeFile(path.join(ws, 'big.txt'), 'old big');
    await writeFile(path.join(ws, 'gone.txt'), 'not in the bucket');
    const objects: Record<string, Buffer> = {
      'prefix/big.txt': Buffer.alloc(bigSize, 7),
      'prefix/small.txt': Buffer.from('small'),
    };
    const client = new S3Client({ region: 'us-east-1', credentials: { accessKeyId: 'x', secretAccessKey: 'y' } });
    const s3 = mockClient(client);
    onTestFinished(() => {
      s3.restore();
      client.destroy();
    });
    s3.on(ListObjectsV2Command).resolves({
      IsTruncated: false,
      Contents: Object.entries(objects).map(([Key, b]) => ({ Key, Size: b.length, ETag: `"${md5Hex(b)}"`, LastModified: new Date('2024-01-01T00:00:00Z') })),
    });
    s3.on(GetObjectCommand).callsFake((input: { Key: string }) => {
      const b = objects[input.Key]!;
      return { Body: Readable.from([b.subarray(0, 16 * 1024), b.subarray(16 * 1024)]), ContentLength: b.length, ETag: `"${md5Hex(b)}"` };
    });
    s3.on(HeadObjectCommand).rejects(new S3ServiceException({ name: 'NotFound', $fault: 'client', $metadata: { httpStatusCode: 404 }, message: 'NotFound' }));
    const sync = new S3WorkspaceSync({ bucket: 'bkt', prefix: 'prefix/', workspaceDir: ws, s3Client: client, logger: silentLogger, downloadConcurrency: 1 });
    disk.free = 10 * 1024; // room for small.txt, not for big.txt

    const result = await sync.pull();
    expect(result.success).toBe(false);
    expect(result.failedFiles).toEqual([expect.objectContaining({ path: 'big.txt', code: 'ENOSPC' })]);
    expect(s3.commandCalls(GetObjectCommand).filter((c) => c.args[0].input.Key === 'prefix/big.txt')).toHaveLength(1);
    expect(result.skippedFiles).toContainEqual({ path: 'gone.txt', reason: 'not-deleted: a transfer failed in this sync' });
    expect(await readFile(path.join(ws, 'big.txt'), 'utf8')).toBe('old big');
    expect(await readFile(path.join(ws, 'gone.txt'), 'utf8')).toBe('not in the bucket');
    expect(await readFile(path.join(ws, 'small.txt'), 'utf8')).toBe('small');
    expect(await tempFiles(ws)).toEqual([]);
    expect(await listEntries(parent)).toEqual(['sentinel.txt', 'ws/', 'ws/big.txt', 'ws/gone.txt', 'ws/small.txt']);
  });
});
