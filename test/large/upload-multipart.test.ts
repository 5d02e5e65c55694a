// uploadMultipart on its own, against a recording in-memory store: the file
// is read once (the whole-file MD5 and the part MD5s come from the part
// buffers), and every failure — a part, the MD5 worker — aborts the upload,
// keeps the original error, returns every buffer and never hangs.
import { createHash, randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { open } from 'node:fs/promises';
import path from 'node:path';
import pLimit from 'p-limit';
import { afterEach, describe, expect, it } from 'vitest';
import { HashPool, type HashStream } from '../../src/local/HashPool.js';
import type { MultipartInit, ObjectStore } from '../../src/storage/ObjectStore.js';
import { BufferPool, uploadMultipart } from '../../src/transfer/multipart.js';
import { tempDir } from '../helpers/sync-fixture.js';

const PART = 64 * 1024; // the function itself has no minimum; S3's is enforced by the store, not tested here
const md5 = (b: Uint8Array): string => createHash('md5').update(b).digest('hex');

class RecordingStore {
  inits: MultipartInit[] = [];
  parts = new Map<number, Buffer>();
  aborted: string[] = [];
  completed = 0;
  failPart: number | undefined;

  asStore(): ObjectStore {
    return this as unknown as ObjectStore;
  }
  async createMultipart(init: MultipartInit): Promise<string> {
    this.inits.push(init);
    return 'upload-1';
  }
  partsAfterAbort = 0;

  async uploadPart(_key: string, _id: string, n: number, body: Buffer, hex: string): Promise<string> {
    if (this.aborted.length > 0) this.partsAfterAbort++;
    await new Promise((r) => setTimeout(r, 2 + (n % 3))); // answers out of order
    if (this.aborted.length > 0) this.partsAfterAbort++;
    if (n === this.failPart) throw Object.assign(new Error(`part ${n} refused`), { code: 'TEST' });
    expect(md5(body)).toBe(hex); // the MD5 sent is the MD5 of the bytes sent
    this.parts.set(n, Buffer.from(body));
    return hex;
  }
  async completeMultipart(): Promise<{ etag: string }> {
    this.completed++;
    const all = Buffer.concat([...this.parts.entries()].sort((a, b) => a[0] - b[0]).map(([, b]) => b));
    return { etag: md5(all) }; // as s3rver answers (the plain MD5)
  }
  async abortMultipart(_key: string, id: string): Promise<void> {
    this.aborted.push(id);
  }
}

const pools: HashPool[] = [];
afterEach(async () => {
  await Promise.all(pools.splice(0).map((p) => p.close()));
});

async function setup(size: number, threads = 1) {
  const dir = await tempDir();
  const file = path.join(dir, 'big.bin');
  const data = randomBytes(size);
  await writeFile(file, data);
  const fh = await open(file, 'r');
  const hashes = new HashPool(threads);
  pools.push(hashes);
  const buffers = new BufferPool(PART);
  const store = new RecordingStore();
  const input = {
    store: store.asStore(),
    key: 'k',
    path: 'big.bin',
    fh,
    size,
    partSize: PART,
    contentType: 'application/octet-stream',
    mtimeMs: 1_700_000_000_000,
    partLimit: pLimit(3),
    buffers,
    hashes,
    checkUnchanged: () => undefined,
  };
  return { data, fh, store, input, buffers, hashes };
}

/** A HashPool whose `stream` / `md5` can be replaced (the rest delegates to the real one). */
function wrap(real: HashPool, over: Partial<Pick<HashPool, 'stream' | 'md5'>>): HashPool {
  return { offThread: real.offThread, stream: (s?: readonly number[]) => real.stream(s), md5: (b: Uint8Array) => real.md5(b), ...over } as unknown as HashPool;
}

/** Buffers handed back to the pool (each is reused by the next take()). */
const freeCount = (pool: BufferPool): number => (pool as unknown as { free: Buffer[] }).free.length;

describe('uploadMultipart', () => {
  it.each([1, 0])('hashThreads %i: one read gives the parts, their MD5s and the whole MD5; no md5chksum, partsize given', async (threads) => {
    const { data, fh, store, input } = await setup(PART * 7 + 123, threads);
    try {
      const done = await uploadMultipart(input);
      expect(done.md5).toBe(md5(data));
      expect(store.inits).toEqual([expect.objectContaining({ md5: undefined, partSize: PART })]);
      expect(Buffer.concat([...Array(8).keys()].map((i) => store.parts.get(i + 1)!)).equals(data)).toBe(true);
      expect(store.aborted).toEqual([]);
    } finally {
      await fh.close();
    }
  });

  it('a known MD5 goes into the metadata and is not computed again', async () => {
    const { data, fh, store, input, hashes } = await setup(PART * 3);
    let streams = 0;
    const counting = wrap(hashes, {
      stream: (sizes?: readonly number[]): HashStream => {
        streams++;
        return hashes.stream(sizes);
      },
    });
    try {
      const done = await uploadMultipart({ ...input, hashes: counting, md5: md5(data) });
      expect(done.md5).toBe(md5(data));
      expect(store.inits[0]?.md5).toBe(md5(data));
      expect(streams).toBe(0);
    } finally {
      await fh.close();
    }
  });

  it('a part that fails aborts the upload, keeps its error and returns every buffer', async () => {
    const { fh, store, input, buffers } = await setup(PART * 9);
    store.failPart = 4;
    try {
      await expect(uploadMultipart(input)).rejects.toThrow('part 4 refused');
      expect(store.aborted).toEqual(['upload-1']);
      expect(store.completed).toBe(0);
      // every part in flight had finished (its buffer back) before the abort was sent
      expect(freeCount(buffers)).toBe(3);
      expect(store.partsAfterAbort).toBe(0);
    } finally {
      await fh.close();
    }
  });

  it('an MD5 worker that fails mid-way fails the upload (aborted) instead of hanging', async () => {
    const { fh, store, input, hashes } = await setup(PART * 9);
    let calls = 0;
    const failing = wrap(hashes, {
      md5: async (buf: Uint8Array): Promise<string> => {
        if (++calls === 3) throw new Error('MD5 worker exited (code 1)');
        return hashes.md5(buf);
      },
    });
    try {
      await expect(uploadMultipart({ ...input, hashes: failing })).rejects.toThrow('MD5 worker exited');
      expect(store.aborted).toEqual(['upload-1']);
    } finally {
      await fh.close();
    }
  });

  it('a whole-file hash stream that fails fails the upload (aborted); later parts do not wait for ever', async () => {
    const { fh, store, input, hashes } = await setup(PART * 9);
    const failing = wrap(hashes, {
      stream: (): HashStream => {
        let n = 0;
        const real = hashes.stream();
        return {
          update: async (c) => {
            if (++n === 2) throw new Error('hash stream lost');
            await real.update(c);
          },
          digest: () => real.digest(),
          close: () => real.close(),
        };
      },
    });
    try {
      await expect(uploadMultipart({ ...input, hashes: failing })).rejects.toThrow('hash stream lost');
      expect(store.aborted).toEqual(['upload-1']);
      expect(store.completed).toBe(0);
    } finally {
      await fh.close();
    }
  });
});
