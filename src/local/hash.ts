import { createHash } from 'node:crypto';
import { closeSync, createReadStream, fstatSync, openSync, readSync } from 'node:fs';
import { SyncHashStream } from './HashPool.js';

/** Read size used when streaming files through MD5. */
const HASH_CHUNK = 1024 * 1024;

/**
 * MD5 of a file's contents as lowercase hex, streamed (memory stays at one
 * 1 MiB chunk whatever the file size).
 *
 * @example
 * await calculateFileHash('/tmp/ws/README.md'); // 'd41d8cd98f00b204e9800998ecf8427e'
 * @throws the filesystem error (ENOENT, EACCES, EISDIR…) unchanged.
 */
export async function calculateFileHash(path: string, signal?: AbortSignal): Promise<string> {
  const hash = createHash('md5');
  const stream = createReadStream(path, { highWaterMark: HASH_CHUNK, ...(signal ? { signal } : {}) });
  for await (const chunk of stream) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/**
 * One streaming pass over a file giving its MD5 and its multipart ETags for
 * the candidate part sizes (see {@link MultipartEtagHasher}).
 */
export async function hashFileWithEtags(
  path: string,
  partSizes: readonly number[],
  signal?: AbortSignal,
): Promise<{ md5: string; etags: string[] }> {
  const hash = new SyncHashStream(partSizes);
  const stream = createReadStream(path, { highWaterMark: HASH_CHUNK, ...(signal ? { signal } : {}) });
  for await (const chunk of stream) hash.update(chunk as Buffer);
  return hash.digest();
}


/**
 * Computes, from one sequential pass over a content, the multipart ETags it
 * would have for each candidate part size (`md5(concat(part MD5s))-N`).
 */
export class MultipartEtagHasher {
  private readonly stream: SyncHashStream;

  constructor(partSizes: readonly number[]) {
    this.stream = new SyncHashStream(partSizes, false);
  }

  update(chunk: Buffer): void {
    this.stream.update(chunk);
  }

  /** The ETags, one per candidate part size (unquoted); call once. */
  digest(): string[] {
    return this.stream.digest().etags;
  }
}

export { multipartEtag } from '../core/md5.js';

/**
 * MD5 of a small file read synchronously in one piece (no stream, no thread
 * pool round trips): for many small files on a fast local filesystem. Returns
 * `undefined` when the file is larger than `maxBytes` (or grew past it while
 * read): hash it with {@link calculateFileHash} then.
 * @throws the filesystem error (ENOENT, EACCES, EISDIR…) unchanged.
 */
export function hashSmallFileSync(path: string, maxBytes: number): string | undefined {
  const fd = openSync(path, 'r');
  try {
    const size = fstatSync(fd).size;
    if (size > maxBytes) return undefined;
    const buf = Buffer.allocUnsafe(size + 1);
    let got = 0;
    for (;;) {
      const n = readSync(fd, buf, got, buf.length - got, got);
      if (n === 0) break;
      got += n;
      if (got > size) return undefined; // it grew: stream it
    }
    return createHash('md5').update(buf.subarray(0, got)).digest('hex');
  } finally {
    closeSync(fd);
  }
}
