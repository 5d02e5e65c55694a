// The MD5 worker pool: the digests equal node:crypto's over any chunking,
// streams never mix, shared and ordinary buffers both work, a dead worker
// fails its requests (and the next stream gets a new one), and idle workers
// never keep a process alive.
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { HashPool, allocShared } from '../../src/local/HashPool.js';
import { multipartEtag } from '../../src/local/hash.js';

const pools: HashPool[] = [];
const pool = (threads: number): HashPool => {
  const p = new HashPool(threads);
  pools.push(p);
  return p;
};
afterEach(async () => {
  await Promise.all(pools.splice(0).map((p) => p.close()));
});

const md5 = (b: Uint8Array): string => createHash('md5').update(b).digest('hex');
function etagOf(data: Buffer, partSize: number): string {
  const digests: Buffer[] = [];
  for (let o = 0; o < data.length; o += partSize) digests.push(createHash('md5').update(data.subarray(o, o + partSize)).digest());
  if (digests.length === 0) digests.push(createHash('md5').digest());
  return multipartEtag(digests);
}

/** Cut `data` into chunks of pseudo-random sizes (some 0 bytes), copied into shared or ordinary buffers. */
function chunks(data: Buffer, shared: boolean, seed: number): Buffer[] {
  const out: Buffer[] = [];
  let o = 0;
  let x = seed;
  while (o < data.length) {
    x = (x * 1103515245 + 12345) % 2 ** 31;
    const n = Math.min(data.length - o, x % 3 === 0 ? 0 : x % 200_003);
    const b = shared ? allocShared(n) : Buffer.allocUnsafe(n);
    data.copy(b, 0, o, o + n);
    out.push(b);
    o += n;
  }
  return out;
}

describe('HashPool', () => {
  it.each([
    ['a worker, shared buffers', 1, true],
    ['a worker, ordinary buffers (copied to it)', 1, false],
    ['two workers', 2, true],
    ['in-thread (threads: 0)', 0, true],
  ])('%s: whole MD5 and multipart ETags equal node:crypto over any chunking', async (_name, threads, shared) => {
    const p = pool(threads);
    expect(p.offThread).toBe(threads > 0);
    for (const [size, seed] of [[0, 1], [1, 2], [65_536, 3], [1_000_003, 4]] as const) {
      const data = randomBytes(size);
      const s = p.stream([65_536, 100_000]);
      for (const c of chunks(data, shared, seed)) await s.update(c);
      expect(await s.digest()).toEqual({ md5: md5(data), etags: [etagOf(data, 65_536), etagOf(data, 100_000)] });
    }
  });

  it('streams interleaved on the same workers keep their own state; part MD5s run alongside', async () => {
    const p = pool(2);
    const a = randomBytes(700_001);
    const b = randomBytes(300_007);
    const sa = p.stream([100_000]);
    const sb = p.stream();
    const ca = chunks(a, true, 7);
    const cb = chunks(b, true, 9);
    const parts: Array<Promise<string>> = [];
    for (let i = 0; i < Math.max(ca.length, cb.length); i++) {
      // not awaited one by one: updates of one stream are queued in order
      const pending: Array<Promise<void>> = [];
      if (ca[i]) pending.push(sa.update(ca[i]!));
      if (cb[i]) pending.push(sb.update(cb[i]!));
      if (ca[i]) parts.push(p.md5(ca[i]!));
      await Promise.all(pending);
    }
    expect(await sa.digest()).toEqual({ md5: md5(a), etags: [etagOf(a, 100_000)] });
    expect(await sb.digest()).toEqual({ md5: md5(b), etags: [] });
    expect(await Promise.all(parts)).toEqual(ca.map(md5));
  });

  it('a closed stream is forgotten; digest twice is refused', async () => {
    const p = pool(1);
    const s = p.stream();
    await s.update(allocShared(10));
    s.close();
    s.close();
    const t = p.stream();
    await t.update(Buffer.from('abc'));
    expect((await t.digest()).md5).toBe(md5(Buffer.from('abc')));
    await expect(t.digest()).rejects.toThrow(/ended/);
  });

  it('a worker that dies fails the requests it held; the next stream gets a new worker', async () => {
    const p = pool(1);
    const s = p.stream();
    await s.update(Buffer.from('x'));
    await p.close(); // terminates the worker under the open stream
    await expect(s.update(Buffer.from('y'))).rejects.toThrow(/worker/i);
    const t = p.stream();
    await t.update(Buffer.from('fresh'));
    expect((await t.digest()).md5).toBe(md5(Buffer.from('fresh')));
  });

  it('an idle pool does not keep the process alive', async () => {
    const src = fileURLToPath(new URL('../../src/local/HashPool.ts', import.meta.url));
    const script = `
      import { HashPool } from ${JSON.stringify(src)};
      const p = new HashPool(2);
      const s = p.stream([5]);
      await s.update(Buffer.from('hello world'));
      const d = await s.digest();
      console.log(d.md5, await p.md5(Buffer.from('x')));
    `;
    const started = Date.now();
    const out = await new Promise<{ code: number | null; stdout: string }>((resolve, reject) => {
      const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
      let stdout = '';
      child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
      const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
      child.on('error', reject);
      child.on('close', (code) => {
        clearTimeout(timer);
        resolve({ code, stdout });
      });
    });
    expect(out.code).toBe(0);
    expect(out.stdout.trim()).toBe(`${md5(Buffer.from('hello world'))} ${md5(Buffer.from('x'))}`);
    expect(Date.now() - started).toBeLessThan(9_000); // exited at once, not after the 10 s idle timeout
  }, 30_000);
});
