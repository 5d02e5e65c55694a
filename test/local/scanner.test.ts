import { execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { calculateFileHash } from '../../src/local/hash.js';
import { scanWorkspace } from '../../src/local/scanner.js';
import { SyncIgnoreFilter } from '../../src/SyncIgnoreFilter.js';

let base: string;
let root: string;
beforeEach(async () => {
  base = await mkdtemp(join(tmpdir(), 'sws-scan-'));
  root = join(base, 'ws');
  await mkdir(root);
});
afterEach(async () => {
  await rm(base, { recursive: true, force: true });
});

describe('scanWorkspace', () => {
  it('lists synced regular files with stats; skips symlinks and special files; collects temp files', async () => {
    await mkdir(join(root, 'src/deep'), { recursive: true });
    await mkdir(join(root, 'node_modules/x'), { recursive: true });
    await mkdir(join(base, 'outside'));
    await writeFile(join(root, 'src/deep/a.ts'), 'abc');
    await writeFile(join(root, 'README.md'), '');
    await writeFile(join(root, 'node_modules/x/i.js'), 'x');
    await writeFile(join(root, 'app.log'), 'x');
    await writeFile(join(root, 'src/.1a2b.s3ws-tmp'), 'partial');
    await symlink(join(base, 'outside'), join(root, 'linkdir'));
    await symlink('/etc/hostname', join(root, 'linkfile'));
    execFileSync('mkfifo', [join(root, 'pipe')]);
    const scan = await scanWorkspace(root, new SyncIgnoreFilter());
    expect([...scan.files.keys()].sort()).toEqual(['README.md', 'src/deep/a.ts']);
    expect(scan.files.get('src/deep/a.ts')).toMatchObject({ size: 3 });
    expect([...scan.dirs].sort()).toEqual(['src', 'src/deep']);
    expect(scan.tempFiles).toEqual(['src/.1a2b.s3ws-tmp']);
    expect(Object.fromEntries(scan.skipped.map((s) => [s.path, s.reason]))).toEqual({
      linkdir: 'symlink',
      linkfile: 'symlink',
      pipe: 'not-a-regular-file',
    });
  });

  it('reports names that cannot be object keys', async () => {
    await writeFile(join(root, 'back\\slash.txt'), 'x');
    await writeFile(join(root, 'new\nline.txt'), 'x');
    const scan = await scanWorkspace(root, new SyncIgnoreFilter());
    expect(scan.files.size).toBe(0);
    expect(scan.skipped.map((s) => s.reason).sort()).toEqual(['invalid-name: contains a backslash', 'invalid-name: contains a control character']);
  });

  it('fails clearly when the root is missing', async () => {
    await expect(scanWorkspace(join(base, 'nope'), new SyncIgnoreFilter())).rejects.toMatchObject({ code: 'ENOENT' });
  });
});

describe('calculateFileHash', () => {
  it('streams the MD5 of a file', async () => {
    await writeFile(join(root, 'f'), Buffer.alloc(3 * 1024 * 1024 + 7, 1));
    const expected = execFileSync('md5sum', [join(root, 'f')]).toString().split(' ')[0];
    expect(await calculateFileHash(join(root, 'f'))).toBe(expected);
    await writeFile(join(root, 'empty'), '');
    expect(await calculateFileHash(join(root, 'empty'))).toBe('d41d8cd98f00b204e9800998ecf8427e');
  });
});
