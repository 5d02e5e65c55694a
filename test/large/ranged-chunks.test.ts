// rangedChunks reassembles any size correctly (0 bytes, 1 byte, exactly a
// range, a range + 1…), with tiny ranges over an in-memory store.
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import pLimit from 'p-limit';
import { describe, expect, it } from 'vitest';
import { IntegrityError } from '../../src/errors.js';
import type { GetResult, ObjectStore } from '../../src/storage/ObjectStore.js';
import { BufferPool, rangedChunks } from '../../src/transfer/multipart.js';

function memoryStore(data: Buffer, opts: { etag?: (call: number) => string; shortAt?: number } = {}): { store: ObjectStore; ranges: string[] } {
  const ranges: string[] = [];
  let calls = 0;
  const store = {
    async getRange(_key: string, start: number, end: number): Promise<GetResult> {
      const call = calls++;
      ranges.push(`${start}-${end}`);
      let body = data.subarray(start, end + 1);
      if (opts.shortAt === call) body = body.subarray(0, Math.max(0, body.length - 1));
      return { body: Readable.from([Buffer.from(body)]), size: body.length, etag: opts.etag?.(call) ?? 'v1' };
    },
  } as unknown as ObjectStore;
  return { store, ranges };
}

async function collect(gen: AsyncGenerator<Buffer>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of gen) parts.push(Buffer.from(c)); // a yielded buffer is reused after the next step
  return Buffer.concat(parts);
}

describe('rangedChunks', () => {
  it.each([0, 1, 3, 4, 5, 8, 9, 31])('reassembles %i bytes from 4-byte ranges in order', async (size) => {
    const data = randomBytes(size);
    const { store, ranges } = memoryStore(data);
    const out = await collect(rangedChunks(store, 'k', size, 4, 3, pLimit(2), new BufferPool(4), 3, {}));
    expect(out.equals(data)).toBe(true);
    expect(ranges).toHaveLength(Math.ceil(size / 4));
  });

  it('reuses range buffers from the pool without corrupting the data (8 KiB ranges, pooled)', async () => {
    const data = randomBytes(8192 * 9 + 5);
    const { store } = memoryStore(data);
    const pool = new BufferPool(8192);
    const out = await collect(rangedChunks(store, 'k', data.length, 8192, 3, pLimit(2), pool, 3, {}));
    expect(out.equals(data)).toBe(true);
  });

  it('retries a short range on its own', async () => {
    const data = randomBytes(12);
    const { store, ranges } = memoryStore(data, { shortAt: 1 });
    const out = await collect(rangedChunks(store, 'k', 12, 4, 1, pLimit(1), new BufferPool(4), 3, {}));
    expect(out.equals(data)).toBe(true);
    expect(ranges).toEqual(['0-3', '4-7', '4-7', '8-11']);
  });

  it('refuses ranges from different versions of the object', async () => {
    const data = randomBytes(12);
    const { store } = memoryStore(data, { etag: (call) => (call === 0 ? 'v1' : 'v2') });
    await expect(collect(rangedChunks(store, 'k', 12, 4, 1, pLimit(1), new BufferPool(4), 1, {}))).rejects.toBeInstanceOf(IntegrityError);
  });
});
