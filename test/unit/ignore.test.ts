import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import ignore from 'ignore';
import { DEFAULT_IGNORE_PATTERNS, RESERVED_IGNORE_PATTERNS, SyncIgnoreFilter } from '../../src/SyncIgnoreFilter.js';

describe('SyncIgnoreFilter defaults', () => {
  const filter = new SyncIgnoreFilter();
  it.each([
    ['.git/config', true],
    ['node_modules/left-pad/index.js', true],
    ['packages/a/node_modules/x.js', true],
    ['__pycache__/m.cpython-311.pyc', true],
    ['.venv/bin/python', true],
    ['venv/lib/x.py', true],
    ['dist/index.js', true],
    ['build/out.o', true],
    ['debug.log', true],
    ['logs/app.log', true],
    ['m.pyc', true],
    ['.DS_Store', true],
    ['sub/.DS_Store', true],
    ['.idea/workspace.xml', true],
    ['.vscode/settings.json', true],
    ['.env', true],
    ['.env.local', true],
    ['.env.production', true],
    ['.env.example', false],
    ['certs/server.pem', true],
    ['id.key', true],
    ['.s3-workspace-sync/state.json', true],
    ['src/.a1b2c3.s3ws-tmp', true],
    ['src/index.ts', false],
    ['README.md', false],
    ['.syncignore', false],
    ['distribution/x.txt', false],
    ['keys.json', false],
  ])('%s ignored=%s', (path, ignored) => {
    expect(filter.ignores(path)).toBe(ignored);
  });

  it('matches directories by name with isDirectory', () => {
    expect(filter.ignores('node_modules', true)).toBe(true);
    expect(filter.ignores('node_modules', false)).toBe(false);
    expect(filter.ignores('src', true)).toBe(false);
  });

  it('lists the documented defaults', () => {
    for (const p of ['.git/', 'node_modules/', '__pycache__/', '.venv/', 'venv/', 'dist/', 'build/', '*.log', '*.pyc', '.DS_Store', '.idea/', '.vscode/', '.env', '.env.*', '!.env.example', '*.pem', '*.key']) {
      expect(DEFAULT_IGNORE_PATTERNS).toContain(p);
    }
  });
});

describe('SyncIgnoreFilter rules', () => {
  it('applies .syncignore then ignorePatterns, later rules winning', () => {
    const filter = new SyncIgnoreFilter({ syncignore: '# comment\ndata/\n!data/keep.csv\n*.tmp\n', patterns: ['secret.txt', '!important.tmp'] });
    expect(filter.ignores('data/big.csv')).toBe(true);
    expect(filter.ignores('x.tmp')).toBe(true);
    expect(filter.ignores('important.tmp')).toBe(false);
    expect(filter.ignores('secret.txt')).toBe(true);
    expect(filter.ignores('src/a.ts')).toBe(false);
  });

  it('re-includes a default with !pattern', () => {
    const filter = new SyncIgnoreFilter({ syncignore: '!dist/\n!*.log\n' });
    expect(filter.ignores('dist/index.js')).toBe(false);
    expect(filter.ignores('app.log')).toBe(false);
    expect(filter.ignores('node_modules/x.js')).toBe(true);
  });

  it('never re-includes the library’s own state and temporary files', () => {
    const filter = new SyncIgnoreFilter({ syncignore: '!.s3-workspace-sync/\n!*.s3ws-tmp\n', patterns: ['!**'] });
    expect(filter.ignores('.s3-workspace-sync/state.json')).toBe(true);
    expect(filter.ignores('a/.x.s3ws-tmp')).toBe(true);
  });

  it('can drop the defaults', () => {
    const filter = new SyncIgnoreFilter({ useDefaults: false });
    expect(filter.ignores('node_modules/x.js')).toBe(false);
    expect(filter.ignores('.s3ws.s3ws-tmp')).toBe(true);
  });

  it('treats paths it cannot evaluate as ignored', () => {
    const filter = new SyncIgnoreFilter();
    expect(filter.ignores('../outside')).toBe(true);
  });

  it('createFilter keeps synced paths', () => {
    const keep = new SyncIgnoreFilter().createFilter();
    expect(['a.ts', 'b.log', '.env'].filter(keep)).toEqual(['a.ts']);
  });

  it('fromWorkspace reads <dir>/.syncignore and tolerates its absence', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'sws-ig-'));
    try {
      expect((await SyncIgnoreFilter.fromWorkspace(dir)).ignores('data/x')).toBe(false);
      await writeFile(join(dir, '.syncignore'), 'data/\n');
      const filter = await SyncIgnoreFilter.fromWorkspace(dir, ['*.bak']);
      expect(filter.ignores('data/x')).toBe(true);
      expect(filter.ignores('a.bak')).toBe(true);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('reserved paths', () => {
  // The filter tests its own folder and temporary files without an `ignore`
  // instance (no per-path cache); it must decide exactly as `ignore` does with
  // RESERVED_IGNORE_PATTERNS, for files and directories, at any depth, in any case.
  it('decides as the ignore package does with RESERVED_IGNORE_PATTERNS, on every combination of the names involved', () => {
    const reference = ignore().add([...RESERVED_IGNORE_PATTERNS]);
    const filter = new SyncIgnoreFilter({ useDefaults: false });
    const names = ['a', '.s3-workspace-sync', '.S3-Workspace-Sync', 'x.s3ws-tmp', '.s3ws-tmp', 'x.S3WS-TMP', 'x.s3ws-tmpy', 's3-workspace-sync', 'a.s3-workspace-sync', '.s3-workspace-syncx', 'b c', '.s3ws-tmp.x'];
    let compared = 0;
    let reservedSeen = 0;
    const walk = (prefix: string, depth: number): void => {
      if (depth === 0) return;
      for (const name of names) {
        const path = prefix + name;
        for (const p of [path, `${path}/`]) {
          const expected = reference.ignores(p);
          expect(filter.ignores(p), p).toBe(expected);
          compared++;
          if (expected) reservedSeen++;
        }
        walk(`${path}/`, depth - 1);
      }
    };
    walk('', 3);
    expect(compared).toBe(3768);
    // both answers occur (the comparison is not all one way)
    expect(reservedSeen).toBeGreaterThan(500);
    expect(compared - reservedSeen).toBeGreaterThan(500);
  });
});
