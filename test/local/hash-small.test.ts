// hashSmallFileSync: the planning stage's one-read hash of small files on a
// fast filesystem gives the same MD5 as the streamed hash, and hands larger
// files back to it.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { calculateFileHash, hashSmallFileSync } from '../../src/local/hash.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 's3ws-hash-small-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('hashSmallFileSync', () => {
  it.each([0, 1, 4095, 65_536, 200_000])('a file of %i bytes: the same MD5 as the streamed hash', { timeout: 5_000 }, async (size) => {
    const file = path.join(dir, `f-${size}`);
    await writeFile(file, Buffer.from(Array.from({ length: size }, (_, i) => (i * 31 + size) & 0xff)));
    expect(hashSmallFileSync(file, 256 * 1024)).toBe(await calculateFileHash(file));
  });

  it('a file larger than the limit is left to the streamed hash (undefined)', { timeout: 5_000 }, async () => {
    const file = path.join(dir, 'big');
    await writeFile(file, Buffer.alloc(1025, 7));
    expect(hashSmallFileSync(file, 1024)).toBeUndefined();
    expect(hashSmallFileSync(file, 1025)).toBe(await calculateFileHash(file));
  });

  it('a missing file or a directory throws the filesystem error', { timeout: 5_000 }, () => {
    expect(() => hashSmallFileSync(path.join(dir, 'missing'), 1024)).toThrow(expect.objectContaining({ code: 'ENOENT' }));
    expect(() => hashSmallFileSync(dir, 1 << 20)).toThrow(expect.objectContaining({ code: 'EISDIR' }));
  });
});
