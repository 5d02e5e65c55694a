import { mkdir, mkdtemp, readdir, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { LocalFileError } from '../../src/errors.js';
import { WorkspaceWriter } from '../../src/local/WorkspaceWriter.js';

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
