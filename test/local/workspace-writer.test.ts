import { createHash } from 'node:crypto';
import { lstat, mkdir, mkdtemp, readdir, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { LocalFileError } from '../../src/errors.js';
import type { LocalFile } from '../../src/core/plan.js';
import { RecoveryArea } from '../../src/local/RecoveryArea.js';
import { toLocalFile } from '../../src/local/scanner.js';
import { CHANGED_DURING_SYNC, WorkspaceWriter } from '../../src/local/WorkspaceWriter.js';

let base: string;
let root: string;
let outside: string;

beforeEach(async () => {
  base = await mkdtemp(join(tmpdir(), 'sws-writer-'));
  root = join(base, 'ws');
  outside = join(base, 'outside');
  await mkdir(root);
  await mkdir(outside);
});
afterEach(async () => {
  await rm(base, { recursive: true, force: true });
});

const body = (s: string): Readable => Readable.from([Buffer.from(s)]);
const md5 = (s: string): string => createHash('md5').update(s).digest('hex');
const accept = (): void => undefined;

async function allFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (!e.isDirectory()) out.push(join(e.parentPath, e.name).slice(dir.length + 1));
  }
  return out.sort();
}

describe('WorkspaceWriter.writeAtomic', () => {
  it('creates parents, writes, sets mtime, leaves no temporary file', async () => {
    const w = new WorkspaceWriter(root);
    const r = await w.writeAtomic('a/b/c.txt', body('hello'), { mtimeMs: 1_600_000_000_000 }, accept);
    expect(r).toMatchObject({ bytes: 5, md5: '5d41402abc4b2a76b9719d911017c592' });
    expect(r.stat.isFile()).toBe(true);
    expect(r.stat.mtimeMs).toBe(1_600_000_000_000);
    expect(await readFile(join(root, 'a/b/c.txt'), 'utf8')).toBe('hello');
    expect((await stat(join(root, 'a/b/c.txt'))).mtimeMs).toBe(1_600_000_000_000);
    expect(await allFiles(root)).toEqual(['a/b/c.txt']);
  });

  it('keeps the old file and removes the temporary file when verification fails', async () => {
    await writeFile(join(root, 'f.txt'), 'old content');
    const w = new WorkspaceWriter(root);
    await expect(
      w.writeAtomic('f.txt', body('new'), {}, () => {
        throw new Error('bad md5');
      }),
    ).rejects.toThrow('bad md5');
    expect(await readFile(join(root, 'f.txt'), 'utf8')).toBe('old content');
    expect(await allFiles(root)).toEqual(['f.txt']);
  });

  it('with an off-thread hash: the MD5 it gives is verified and returned; a hash that fails keeps the old file', async () => {
    const { HashPool } = await import('../../src/local/HashPool.js');
    const pool = new HashPool(1);
    try {
      const w = new WorkspaceWriter(root);
      const s = pool.stream();
      const seen: string[] = [];
      const chunks = Readable.from([Buffer.from('hel'), Buffer.from('lo')]);
      const r = await w.writeAtomic('h.txt', chunks, { hash: { update: (c) => s.update(c), digest: async () => (await s.digest()).md5 } }, (_n, md5) => {
        seen.push(md5);
      });
      expect(r.md5).toBe('5d41402abc4b2a76b9719d911017c592');
      expect(seen).toEqual([r.md5]);
      expect(await readFile(join(root, 'h.txt'), 'utf8')).toBe('hello');

      await writeFile(join(root, 'f.txt'), 'old content');
      let n = 0;
      const failing = {
        update: async (): Promise<void> => {
          if (++n === 2) throw new Error('MD5 worker exited (code 1)');
        },
        digest: async (): Promise<string> => 'unused',
      };
      const err = await w
        .writeAtomic('f.txt', Readable.from([Buffer.from('new '), Buffer.from('content!')]), { hash: failing }, accept)
        .catch((e: unknown) => e);
      expect(String(err)).toMatch(/MD5 worker exited/);
      expect(await readFile(join(root, 'f.txt'), 'utf8')).toBe('old content');
      expect(await allFiles(root)).toEqual(['f.txt', 'h.txt']);
    } finally {
      await pool.close();
    }
  });

  it('keeps the old file when the body fails midway', async () => {
    await writeFile(join(root, 'f.txt'), 'old content');
    const failing = new Readable({
      read() {
        this.push(Buffer.from('partial'));
        this.destroy(Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' }));
      },
    });
    await expect(new WorkspaceWriter(root).writeAtomic('f.txt', failing, {}, accept)).rejects.toThrow('socket hang up');
    expect(await readFile(join(root, 'f.txt'), 'utf8')).toBe('old content');
    expect(await allFiles(root)).toEqual(['f.txt']);
  });

  it('never writes through a symlinked parent directory', async () => {
    await symlink(outside, join(root, 'link'));
    const w = new WorkspaceWriter(root);
    const err = await w.writeAtomic('link/evil.txt', body('x'), {}, accept).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LocalFileError);
    expect((err as LocalFileError).code).toBe('SYMLINK_IN_PATH');
    expect(await readdir(outside)).toEqual([]);
  });

  it('never replaces a symlink at the target path', async () => {
    await writeFile(join(outside, 'target.txt'), 'outside');
    await symlink(join(outside, 'target.txt'), join(root, 'l.txt'));
    const err = await new WorkspaceWriter(root).writeAtomic('l.txt', body('x'), {}, accept).catch((e: unknown) => e);
    expect((err as LocalFileError).code).toBe('SYMLINK_IN_PATH');
    expect(await readFile(join(outside, 'target.txt'), 'utf8')).toBe('outside');
    expect(await allFiles(root)).toEqual(['l.txt']);
  });

  it('refuses to replace a directory, or to nest under a file', async () => {
    await mkdir(join(root, 'd'));
    await writeFile(join(root, 'f'), 'file');
    const w = new WorkspaceWriter(root);
    await expect(w.writeAtomic('d', body('x'), {}, accept)).rejects.toMatchObject({ code: 'EISDIR' });
    await expect(w.writeAtomic('f/x', body('x'), {}, accept)).rejects.toMatchObject({ code: 'ENOTDIR' });
    expect(await allFiles(root)).toEqual(['f']);
  });
});

// Small downloads arrive whole, as a Buffer: a separate (synchronous) write path with the same guarantees.
describe('WorkspaceWriter.writeAtomic with a Buffer body', () => {
  it('creates parents, writes, sets mtime, leaves no temporary file', async () => {
    const w = new WorkspaceWriter(root);
    const r = await w.writeAtomic('a/b/c.txt', Buffer.from('hello'), { mtimeMs: 1_600_000_000_000 }, accept);
    expect(r).toMatchObject({ bytes: 5, md5: '5d41402abc4b2a76b9719d911017c592' });
    expect(r.stat.isFile()).toBe(true);
    expect(r.stat.mtimeMs).toBe(1_600_000_000_000);
    expect(await readFile(join(root, 'a/b/c.txt'), 'utf8')).toBe('hello');
    expect(await allFiles(root)).toEqual(['a/b/c.txt']);
  });

  it('writes an empty file', async () => {
    const r = await new WorkspaceWriter(root).writeAtomic('e.txt', Buffer.alloc(0), {}, accept);
    expect(r).toMatchObject({ bytes: 0, md5: 'd41d8cd98f00b204e9800998ecf8427e' });
    expect(await readFile(join(root, 'e.txt'), 'utf8')).toBe('');
  });

  it('verifies before writing: a refused body keeps the old file and creates no temporary file', async () => {
    await writeFile(join(root, 'f.txt'), 'old content');
    const seen: Array<[number, string]> = [];
    await expect(
      new WorkspaceWriter(root).writeAtomic('f.txt', Buffer.from('new'), {}, (bytes, md5) => {
        seen.push([bytes, md5]);
        throw new Error('bad md5');
      }),
    ).rejects.toThrow('bad md5');
    expect(seen).toEqual([[3, '22af645d1859cb5ca6da0c484f1f37ea']]);
    expect(await readFile(join(root, 'f.txt'), 'utf8')).toBe('old content');
    expect(await allFiles(root)).toEqual(['f.txt']);
  });

  it('keeps the old file and removes the temporary file when the write fails after the create', async () => {
    await writeFile(join(root, 'f.txt'), 'old content');
    await mkdir(join(root, 'd'));
    const w = new WorkspaceWriter(root);
    // The target turns out to be a directory only at rename time: the temporary file was written by then.
    await expect(w.writeAtomic('d', Buffer.from('x'), {}, accept)).rejects.toMatchObject({ code: 'EISDIR' });
    expect(await allFiles(root)).toEqual(['f.txt']);
  });

  it('never writes through a symlinked parent directory', async () => {
    await symlink(outside, join(root, 'link'));
    const err = await new WorkspaceWriter(root).writeAtomic('link/evil.txt', Buffer.from('x'), {}, accept).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LocalFileError);
    expect((err as LocalFileError).code).toBe('SYMLINK_IN_PATH');
    expect(await readdir(outside)).toEqual([]);
  });

  it('never writes through a parent swapped for a symlink after it was checked', async () => {
    await mkdir(join(root, 'd'));
    const w = new WorkspaceWriter(root);
    await w.writeAtomic('d/one.txt', Buffer.from('1'), {}, accept); // d is now checked and cached
    await rm(join(root, 'd'), { recursive: true });
    await symlink(outside, join(root, 'd'));
    const err = await w.writeAtomic('d/two.txt', Buffer.from('2'), {}, accept).catch((e: unknown) => e);
    expect((err as LocalFileError).code).toBe('SYMLINK_IN_PATH');
    expect(await readdir(outside)).toEqual([]);
  });

  it('never replaces a symlink at the target path', async () => {
    await writeFile(join(outside, 'target.txt'), 'outside');
    await symlink(join(outside, 'target.txt'), join(root, 'l.txt'));
    const err = await new WorkspaceWriter(root).writeAtomic('l.txt', Buffer.from('x'), {}, accept).catch((e: unknown) => e);
    expect((err as LocalFileError).code).toBe('SYMLINK_IN_PATH');
    expect(await readFile(join(outside, 'target.txt'), 'utf8')).toBe('outside');
    expect(await allFiles(root)).toEqual(['l.txt']);
  });

  it('stops before writing when the signal is aborted', async () => {
    await writeFile(join(root, 'f.txt'), 'old content');
    const ac = new AbortController();
    ac.abort();
    await expect(new WorkspaceWriter(root).writeAtomic('f.txt', Buffer.from('new'), { signal: ac.signal }, accept)).rejects.toThrow();
    expect(await readFile(join(root, 'f.txt'), 'utf8')).toBe('old content');
    expect(await allFiles(root)).toEqual(['f.txt']);
  });
});

describe('WorkspaceWriter.removeFile / pruneEmptyDirs', () => {
  it('deletes regular files only, then prunes directories left empty', async () => {
    await mkdir(join(root, 'a/b'), { recursive: true });
    await mkdir(join(root, 'keep'), { recursive: true });
    await writeFile(join(root, 'a/b/x.txt'), 'x');
    await writeFile(join(root, 'keep/y.txt'), 'y');
    await writeFile(join(outside, 't.txt'), 't');
    await symlink(join(outside, 't.txt'), join(root, 'keep/link'));
    const w = new WorkspaceWriter(root);
    expect(await w.removeFile('a/b/x.txt')).toBe(true);
    expect(await w.removeFile('missing.txt')).toBe(false);
    await expect(w.removeFile('keep/link')).rejects.toMatchObject({ code: 'NOT_A_FILE' });
    await expect(w.removeFile('keep')).rejects.toMatchObject({ code: 'NOT_A_FILE' });
    await w.pruneEmptyDirs(['a', 'a/b', 'keep']);
    expect(await readdir(root)).toEqual(['keep']);
    expect(await readFile(join(outside, 't.txt'), 'utf8')).toBe('t');
  });
});

/** The scanned stat of a file, as the plan records it. */
async function scanned(rel: string): Promise<LocalFile> {
  return toLocalFile(rel, await lstat(join(root, rel)));
}

describe('WorkspaceWriter with expectations (a pull never destroys what it cannot prove)', () => {
  const bodies: Array<[string, (s: string) => Buffer | Readable]> = [
    ['Buffer body', (s) => Buffer.from(s)],
    ['stream body', (s) => body(s)],
  ];

  it.each(bodies)('%s: a path that was free when scanned but is taken now is kept (CHANGED_DURING_SYNC), no temp file left', async (_l, make) => {
    await writeFile(join(root, 'f.txt'), 'written meanwhile');
    const w = new WorkspaceWriter(root, new RecoveryArea(root));
    const err = await w.writeAtomic('f.txt', make('download'), { expected: { local: undefined, proven: undefined } }, accept).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: CHANGED_DURING_SYNC });
    expect(await allFiles(root)).toEqual(['f.txt']);
    expect(await readFile(join(root, 'f.txt'), 'utf8')).toBe('written meanwhile');
  });

  it.each(bodies)('%s: an unproven file is moved into the recovery area, byte for byte, and the download takes its place', async (_l, make) => {
    await writeFile(join(root, 'f.txt'), 'only copy');
    const local = await scanned('f.txt');
    const area = new RecoveryArea(root);
    const w = new WorkspaceWriter(root, area);
    await w.writeAtomic('f.txt', make('download'), { expected: { local, proven: undefined } }, accept);
    expect(await readFile(join(root, 'f.txt'), 'utf8')).toBe('download');
    expect(area.moved).toEqual([{ path: 'f.txt', movedTo: join(area.dir, 'f.txt'), reason: 'differs-from-remote' }]);
    expect(await readFile(join(area.dir, 'f.txt'), 'utf8')).toBe('only copy');
    expect(area.dir.startsWith(join(root, '.s3-workspace-sync', 'recovered') + '/')).toBe(true);
    area.prune();
    expect(await readFile(join(area.dir, 'f.txt'), 'utf8')).toBe('only copy'); // pruning never removes a kept file
  });

  it.each(bodies)('%s: a proven file is replaced, and nothing stays in the recovery area', async (_l, make) => {
    await mkdir(join(root, 'd'));
    await writeFile(join(root, 'd/f.txt'), 'as last synced');
    const local = await scanned('d/f.txt');
    const area = new RecoveryArea(root);
    const w = new WorkspaceWriter(root, area);
    await w.writeAtomic('d/f.txt', make('new version'), { expected: { local, proven: md5('as last synced') } }, accept);
    expect(await readFile(join(root, 'd/f.txt'), 'utf8')).toBe('new version');
    await area.settle(); // the moved file's content is confirmed, then it is removed
    expect(area.moved).toEqual([]);
    expect(await readdir(join(root, '.s3-workspace-sync'))).toEqual([]);
  });

  it.each(bodies)('%s: a file whose content is not what its proof claims (a stale or forged entry) stays in the recovery area', async (_l, make) => {
    await writeFile(join(root, 'f.txt'), 'the only copy');
    const local = await scanned('f.txt');
    const area = new RecoveryArea(root);
    const w = new WorkspaceWriter(root, area);
    await w.writeAtomic('f.txt', make('download'), { expected: { local, proven: md5('what the entry claims') } }, accept);
    await area.settle();
    expect(area.moved.map((m) => [m.path, m.reason])).toEqual([['f.txt', 'differs-from-remote']]);
    expect(await readFile(join(area.dir, 'f.txt'), 'utf8')).toBe('the only copy');
    expect(await readFile(join(root, 'f.txt'), 'utf8')).toBe('download');
  });

  it('a file changed since the scan (even a proven one) is kept', async () => {
    await writeFile(join(root, 'f.txt'), 'as scanned');
    const local = await scanned('f.txt');
    await writeFile(join(root, 'f.txt'), 'edited by the agent');
    const w = new WorkspaceWriter(root, new RecoveryArea(root));
    await expect(w.writeAtomic('f.txt', Buffer.from('download'), { expected: { local, proven: md5('as scanned') } }, accept)).rejects.toMatchObject({
      code: CHANGED_DURING_SYNC,
    });
    await expect(w.removeFile('f.txt', { local, proven: md5('as scanned') })).rejects.toMatchObject({ code: CHANGED_DURING_SYNC });
    expect(await readFile(join(root, 'f.txt'), 'utf8')).toBe('edited by the agent');
  });

  it('removeFile: an unproven file is moved aside, a proven one removed once its content is confirmed, a wrongly proven one kept', async () => {
    await writeFile(join(root, 'unproven.txt'), 'only copy');
    await writeFile(join(root, 'proven.txt'), 'in the bucket');
    await writeFile(join(root, 'forged.txt'), 'not what the entry says');
    const area = new RecoveryArea(root);
    const w = new WorkspaceWriter(root, area);
    expect(await w.removeFile('unproven.txt', { local: await scanned('unproven.txt'), proven: undefined })).toBe(true);
    expect(await w.removeFile('proven.txt', { local: await scanned('proven.txt'), proven: md5('in the bucket') })).toBe(true);
    expect(await w.removeFile('forged.txt', { local: await scanned('forged.txt'), proven: md5('in the bucket') })).toBe(true);
    await area.settle();
    const stamp = area.dir.split('/').pop();
    expect(await allFiles(root)).toEqual([`.s3-workspace-sync/recovered/${stamp}/forged.txt`, `.s3-workspace-sync/recovered/${stamp}/unproven.txt`]);
    expect(area.moved.map((m) => [m.path, m.reason]).sort()).toEqual([
      ['forged.txt', 'not-in-remote'],
      ['unproven.txt', 'not-in-remote'],
    ]);
  });

  it('a recovery area that cannot be used (the reserved folder is a symlink): unproven files are left alone, proven ones still replaced', async () => {
    await symlink(outside, join(root, '.s3-workspace-sync'));
    await writeFile(join(root, 'unproven.txt'), 'only copy');
    await writeFile(join(root, 'proven.txt'), 'in the bucket');
    const w = new WorkspaceWriter(root, new RecoveryArea(root));
    const err = await w
      .writeAtomic('unproven.txt', Buffer.from('download'), { expected: { local: await scanned('unproven.txt'), proven: undefined } }, accept)
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LocalFileError);
    expect(err).toMatchObject({ code: 'SYMLINK_IN_PATH' });
    expect(await readFile(join(root, 'unproven.txt'), 'utf8')).toBe('only copy');
    await w.writeAtomic('proven.txt', Buffer.from('download'), { expected: { local: await scanned('proven.txt'), proven: md5('in the bucket') } }, accept);
    expect(await readFile(join(root, 'proven.txt'), 'utf8')).toBe('download');
    expect(await readdir(outside)).toEqual([]); // nothing written through the link
    expect((await allFiles(root)).filter((f) => f.endsWith('.s3ws-tmp'))).toEqual([]);
  });
});
