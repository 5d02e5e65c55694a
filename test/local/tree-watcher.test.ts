// TreeWatcher on real temporary directories (inotify on Linux). Events are
// awaited with a polling helper and a deadline, never with a bare sleep. A
// test that something was NOT reported writes a sentinel file afterwards and
// waits for it: inotify delivers one process's events in order, so once the
// sentinel is seen, every earlier event has been handled.
import type { FSWatcher } from 'node:fs';
import { mkdirSync, renameSync, rmSync, symlinkSync, watch as fsWatch, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it, onTestFinished } from 'vitest';

import { TreeWatcher, type TreeWatcherDegradation, type TreeWatcherOptions } from '../../src/local/TreeWatcher.js';
import { SyncIgnoreFilter } from '../../src/SyncIgnoreFilter.js';
import { makeTempDir } from '../helpers/tree.js';

const T = 20_000; // per-test timeout
const WAIT = 10_000; // deadline of one wait

/** Poll `check` until it returns true; fail with `what` (and the state) after `timeout` ms. */
async function waitFor(check: () => boolean, what: () => string, timeout = WAIT): Promise<void> {
  const deadline = Date.now() + timeout;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeout} ms waiting for ${what()}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

interface Harness {
  root: string;
  watcher: TreeWatcher;
  /** Every path reported, in order. */
  reported: string[];
  degraded: TreeWatcherDegradation[];
  /** Absolute path under the root of a relative POSIX path. */
  abs: (rel: string) => string;
  /** Wait until every path is reported, or covered by a reported ancestor directory. */
  waitCovered: (rels: readonly string[]) => Promise<void>;
  /** Write a new file at the root and wait for it: every earlier event has been handled then. */
  settle: () => Promise<void>;
}

let sentinels = 0;

async function setup(
  build: (root: string) => void = () => {},
  options: Partial<Omit<TreeWatcherOptions, 'root' | 'onChange' | 'onDegraded'>> = {},
  /** Called with each report, before it is recorded. */
  spy: (paths: readonly string[]) => void = () => {},
): Promise<Harness> {
  const { dir: root, cleanup } = await makeTempDir('s3ws-watch-');
  onTestFinished(cleanup);
  build(root);
  const reported: string[] = [];
  const degraded: TreeWatcherDegradation[] = [];
  const watcher = await TreeWatcher.start({
    root,
    ignores: () => false,
    ...options,
    onChange: (paths) => {
      spy(paths);
      reported.push(...paths);
    },
    onDegraded: (reason) => degraded.push(reason),
  });
  onTestFinished(() => watcher.close());
  const abs = (rel: string): string => path.join(root, ...rel.split('/'));
  const isCovered = (rel: string): boolean => reported.some((p) => p === rel || rel.startsWith(`${p}/`) || p === '');
  const waitCovered = (rels: readonly string[]): Promise<void> =>
    waitFor(
      () => rels.every(isCovered),
      () => {
        const missing = rels.filter((r) => !isCovered(r));
        return `${missing.length} paths (${missing.slice(0, 5).join(', ')}); reported: ${reported.slice(-10).join(', ')}`;
      },
    );
  const settle = async (): Promise<void> => {
    const name = `sentinel-${++sentinels}.txt`;
    writeFileSync(abs(name), 's');
    await waitFor(
      () => reported.includes(name),
      () => `the sentinel ${name}`,
    );
  };
  return { root, watcher, reported, degraded, abs, waitCovered, settle };
}

/** An `fs.watch` that fails with `code` for the directories `fails` names (absolute paths), and records every call. */
function failingWatch(fails: (abs: string) => string | undefined, calls: string[] = [], made = new Map<string, FSWatcher>()): typeof fsWatch {
  return ((p: string, options: object, listener: (type: string, name: string | null) => void) => {
    const code = fails(p);
    if (code !== undefined) {
      throw Object.assign(new Error(`${code}: injected, watch '${p}'`), { code, syscall: 'watch', path: p });
    }
    calls.push(p);
    const w = fsWatch(p, options, listener);
    made.set(p, w);
    return w;
  }) as unknown as typeof fsWatch;
}

describe('TreeWatcher', () => {
  it('reports files created, modified and deleted', { timeout: T }, async () => {
    const h = await setup((root) => {
      mkdirSync(path.join(root, 'src'));
      writeFileSync(path.join(root, 'src/old.txt'), 'old');
      writeFileSync(path.join(root, 'top.txt'), 'top');
    });
    expect(h.watcher.watchedDirectories).toBe(2);
    expect(h.watcher.degraded).toBe(false);

    writeFileSync(h.abs('src/new.txt'), 'new');
    await h.waitCovered(['src/new.txt']);
    writeFileSync(h.abs('top.txt'), 'changed');
    await h.waitCovered(['top.txt']);
    rmSync(h.abs('src/old.txt'));
    await h.waitCovered(['src/old.txt']);
    // Files are reported by name: no directory stands in for them.
    expect(h.reported).not.toContain('src');
    expect(h.reported).not.toContain('');
  });

  it('reports every file of a burst of 2,000 files in 100 new directories (or a reported new ancestor)', { timeout: 60_000 }, async () => {
    const h = await setup();
    const files: string[] = [];
    for (let d = 0; d < 50; d++) {
      mkdirSync(h.abs(`burst${d}/sub`), { recursive: true });
      for (let f = 0; f < 20; f++) {
        for (const rel of [`burst${d}/f${f}.txt`, `burst${d}/sub/g${f}.txt`]) {
          writeFileSync(h.abs(rel), rel);
          files.push(rel);
        }
      }
    }
    expect(files).toHaveLength(2_000);
    await h.waitCovered(files);
    await waitFor(
      () => h.watcher.watchedDirectories === 101,
      () => `101 watches (have ${h.watcher.watchedDirectories})`,
    );
    // Written after the directories are watched: reported by name.
    writeFileSync(h.abs('burst49/sub/late.txt'), 'late');
    await waitFor(
      () => h.reported.includes('burst49/sub/late.txt'),
      () => 'burst49/sub/late.txt',
    );
    expect(h.degraded).toEqual([]);
  });

  it('reports an editor-style save by rename over the file, the first time and the next', { timeout: T }, async () => {
    const h = await setup((root) => {
      mkdirSync(path.join(root, 'edit'));
      writeFileSync(path.join(root, 'edit/x'), 'v1');
    });
    for (const version of ['v2', 'v3']) {
      const before = h.reported.length;
      writeFileSync(h.abs('edit/x.tmp'), version);
      renameSync(h.abs('edit/x.tmp'), h.abs('edit/x'));
      await waitFor(
        () => h.reported.slice(before).includes('edit/x'),
        () => `edit/x after the save of ${version}`,
      );
    }
    // And an in-place write after the rename-saves (the watch is on the directory, not the replaced inode).
    const before = h.reported.length;
    writeFileSync(h.abs('edit/x'), 'v4');
    await waitFor(
      () => h.reported.slice(before).includes('edit/x'),
      () => 'edit/x after an in-place write',
    );
  });

  it('reports a new directory only after its whole subtree is watched, so files written before its watches are covered', { timeout: T }, async () => {
    const calls: string[] = [];
    /** The watches added when `fresh` was reported. */
    let watchesAtReport: string[] | undefined;
    let root = '';
    const watch = failingWatch(
      (p) => {
        // The race, made certain: a file lands in `fresh/sub` just before its watch is added.
        if (p === path.join(root, 'fresh/sub')) writeFileSync(path.join(p, 'early.txt'), 'early');
        return undefined;
      },
      calls,
    );
    const h = await setup(
      (r) => {
        root = r;
      },
      { watch },
      (paths) => {
        if (paths.includes('fresh')) watchesAtReport ??= [...calls];
      },
    );
    const start = calls.length;
    mkdirSync(h.abs('fresh/sub'), { recursive: true });
    await h.waitCovered(['fresh']);
    // Both watches were in place when `fresh` was reported.
    expect(watchesAtReport?.slice(start).sort()).toEqual([h.abs('fresh'), h.abs('fresh/sub')]);
    expect(calls.slice(start).sort()).toEqual([h.abs('fresh'), h.abs('fresh/sub')]);
    expect(h.watcher.watchedDirectories).toBe(3);
    // `fresh/sub/early.txt` was written before its directory's watch: it
    // produced no event, and is covered by the report of `fresh` (the consumer rescans it).
    expect(h.reported).not.toContain('fresh/sub/early.txt');
    // Later files come by name.
    writeFileSync(h.abs('fresh/sub/late.txt'), 'late');
    await waitFor(
      () => h.reported.includes('fresh/sub/late.txt'),
      () => 'fresh/sub/late.txt',
    );
  });

  it('watches a directory created with files written into it at once', { timeout: T }, async () => {
    const h = await setup();
    mkdirSync(h.abs('a/b/c'), { recursive: true });
    const files = Array.from({ length: 10 }, (_, i) => `a/b/c/x${i}.txt`);
    for (const f of files) writeFileSync(h.abs(f), f);
    await h.waitCovered(files);
    await waitFor(
      () => h.watcher.watchedDirectories === 4,
      () => `4 watches (have ${h.watcher.watchedDirectories})`,
    );
    writeFileSync(h.abs('a/b/later.txt'), 'later');
    await waitFor(
      () => h.reported.includes('a/b/later.txt'),
      () => 'a/b/later.txt',
    );
  });

  it('reports a deleted directory and closes its watches and its descendants’', { timeout: T }, async () => {
    const h = await setup((root) => {
      for (const s of ['s0', 's1', 's2']) {
        mkdirSync(path.join(root, 'gone', s), { recursive: true });
        for (let i = 0; i < 10; i++) writeFileSync(path.join(root, 'gone', s, `f${i}.txt`), 'x');
      }
      mkdirSync(path.join(root, 'kept'));
    });
    expect(h.watcher.watchedDirectories).toBe(6);
    rmSync(h.abs('gone'), { recursive: true });
    await waitFor(
      () => h.reported.includes('gone') && h.watcher.watchedDirectories === 2,
      () => `'gone' and 2 watches (have ${h.watcher.watchedDirectories}; reported ${h.reported.join(', ')})`,
    );
    await h.settle();
    expect(h.watcher.watchedDirectories).toBe(2);
    expect(h.degraded).toEqual([]);
  });

  it('reports both names of a renamed directory; the new name is watched, the old one is not', { timeout: T }, async () => {
    const h = await setup((root) => {
      mkdirSync(path.join(root, 'old/deep'), { recursive: true });
      writeFileSync(path.join(root, 'old/deep/a.txt'), 'a');
    });
    expect(h.watcher.watchedDirectories).toBe(3);
    renameSync(h.abs('old'), h.abs('new'));
    await waitFor(
      () => h.reported.includes('old') && h.reported.includes('new'),
      () => `'old' and 'new' (reported ${h.reported.join(', ')})`,
    );
    expect(h.watcher.watchedDirectories).toBe(3);
    const before = h.reported.length;
    writeFileSync(h.abs('new/deep/b.txt'), 'b');
    await waitFor(
      () => h.reported.includes('new/deep/b.txt'),
      () => 'new/deep/b.txt',
    );
    // The watches follow inodes: nothing may come out under the old name.
    expect(h.reported.slice(before).filter((p) => p.startsWith('old'))).toEqual([]);
  });

  it('follows directories moved across the tree, in from outside and out of it', { timeout: T }, async () => {
    const { dir: outside, cleanup } = await makeTempDir('s3ws-watch-outside-');
    onTestFinished(cleanup);
    mkdirSync(path.join(outside, 'incoming/s1'), { recursive: true });
    writeFileSync(path.join(outside, 'incoming/s1/f.txt'), 'f');
    const h = await setup((root) => {
      mkdirSync(path.join(root, 'a/x/y'), { recursive: true });
      mkdirSync(path.join(root, 'b'));
      mkdirSync(path.join(root, 'leaving/z'), { recursive: true });
    });
    expect(h.watcher.watchedDirectories).toBe(7);
    renameSync(h.abs('a/x'), h.abs('b/x'));
    renameSync(path.join(outside, 'incoming'), h.abs('b/incoming'));
    renameSync(h.abs('leaving'), path.join(outside, 'left'));
    await h.waitCovered(['a/x', 'b/x', 'b/incoming', 'leaving']);
    // root, a, b, b/x, b/x/y, b/incoming, b/incoming/s1
    await waitFor(
      () => h.watcher.watchedDirectories === 7,
      () => `7 watches (have ${h.watcher.watchedDirectories})`,
    );
    const before = h.reported.length;
    writeFileSync(h.abs('b/x/y/moved.txt'), '1');
    writeFileSync(h.abs('b/incoming/s1/new.txt'), '2');
    writeFileSync(path.join(outside, 'left/z/gone.txt'), '3');
    await h.waitCovered(['b/x/y/moved.txt', 'b/incoming/s1/new.txt']);
    await h.settle();
    // Nothing from the tree moved out (its watches were closed), nothing under the old names.
    expect(new Set(h.reported.slice(before).filter((p) => !p.startsWith('sentinel-')))).toEqual(new Set(['b/incoming/s1/new.txt', 'b/x/y/moved.txt']));
  });

  it('handles a directory renamed away with a new one created at its name at once (the watch follows the inode)', { timeout: T }, async () => {
    const h = await setup((root) => {
      mkdirSync(path.join(root, 'd'));
    });
    renameSync(h.abs('d'), h.abs('d.bak'));
    mkdirSync(h.abs('d'));
    await waitFor(
      () => h.reported.includes('d') && h.reported.includes('d.bak'),
      () => `'d' and 'd.bak' (reported ${h.reported.join(', ')})`,
    );
    await h.settle();
    const before = h.reported.length;
    writeFileSync(h.abs('d/in-new.txt'), '1');
    writeFileSync(h.abs('d.bak/in-old.txt'), '2');
    await waitFor(
      () => h.reported.includes('d/in-new.txt') && h.reported.includes('d.bak/in-old.txt'),
      () => `d/in-new.txt and d.bak/in-old.txt (reported ${h.reported.slice(before).join(', ')})`,
    );
    expect(h.reported.slice(before)).not.toContain('d/in-old.txt');
    expect(h.watcher.watchedDirectories).toBe(3);
  });

  it('handles a directory replaced by a file, and a file replaced by a directory', { timeout: T }, async () => {
    const h = await setup((root) => {
      mkdirSync(path.join(root, 'was-dir/sub'), { recursive: true });
      writeFileSync(path.join(root, 'was-file'), 'f');
    });
    expect(h.watcher.watchedDirectories).toBe(3);
    rmSync(h.abs('was-dir'), { recursive: true });
    writeFileSync(h.abs('was-dir'), 'now a file');
    rmSync(h.abs('was-file'));
    mkdirSync(h.abs('was-file'));
    await waitFor(
      () => h.reported.includes('was-dir') && h.reported.includes('was-file') && h.watcher.watchedDirectories === 2,
      () => `both names and 2 watches (have ${h.watcher.watchedDirectories}; reported ${h.reported.join(', ')})`,
    );
    writeFileSync(h.abs('was-file/inside.txt'), 'x');
    await waitFor(
      () => h.reported.includes('was-file/inside.txt'),
      () => 'was-file/inside.txt',
    );
  });

  it('never watches nor reports ignored directories, the library folder and temporary download files', { timeout: T }, async () => {
    const filter = new SyncIgnoreFilter({ patterns: ['generated/'] });
    const h = await setup(
      (root) => {
        for (const d of ['.git/objects/00', 'node_modules/pkg/lib', '.s3-workspace-sync/recovered', 'src/generated/x', 'src/kept']) {
          mkdirSync(path.join(root, d), { recursive: true });
        }
      },
      { ignores: (p) => filter.ignores(p) },
    );
    // root, src, src/kept
    expect(h.watcher.watchedDirectories).toBe(3);
    writeFileSync(h.abs('.git/objects/00/abc'), 'x');
    writeFileSync(h.abs('node_modules/pkg/lib/i.js'), 'x');
    writeFileSync(h.abs('.s3-workspace-sync/state.json'), 'x');
    writeFileSync(h.abs('src/generated/x/out.js'), 'x');
    writeFileSync(h.abs('src/kept/.a1b2.s3ws-tmp'), 'partial');
    writeFileSync(h.abs('src/kept/app.log'), 'ignored file');
    mkdirSync(h.abs('node_modules/newpkg'));
    mkdirSync(h.abs('src/kept/node_modules/deep'), { recursive: true });
    writeFileSync(h.abs('src/kept/node_modules/deep/x.js'), 'x');
    rmSync(h.abs('src/generated'), { recursive: true });
    writeFileSync(h.abs('src/kept/real.txt'), 'real');
    await h.settle();
    expect(h.reported).toContain('src/kept/real.txt');
    expect(new Set(h.reported.filter((p) => !p.startsWith('sentinel-')))).toEqual(new Set(['src/kept/real.txt']));
    expect(h.watcher.watchedDirectories).toBe(3);
  });

  it('on ENOSPC from fs.watch: onDegraded once with the code and the limit to raise; the rest is still watched', { timeout: T }, async () => {
    let root = '';
    const refused = new Set(['b', 'c', 'later']);
    const watch = failingWatch((p) => (refused.has(path.relative(root, p)) ? 'ENOSPC' : undefined));
    const h = await setup(
      (r) => {
        root = r;
        for (const d of ['a', 'b/under-b', 'c', 'd']) mkdirSync(path.join(r, d), { recursive: true });
      },
      { watch },
    );
    expect(h.degraded).toHaveLength(1);
    expect(h.degraded[0]?.code).toBe('ENOSPC');
    expect(['b', 'c']).toContain(h.degraded[0]?.path);
    expect(h.degraded[0]?.message).toContain('fs.inotify.max_user_watches');
    expect(h.watcher.degraded).toBe(true);
    // root, a, b/under-b (below the refused b), d
    expect(h.watcher.watchedDirectories).toBe(4);
    writeFileSync(h.abs('a/1.txt'), '1');
    writeFileSync(h.abs('b/under-b/2.txt'), '2');
    writeFileSync(h.abs('d/3.txt'), '3');
    await h.waitCovered(['a/1.txt', 'b/under-b/2.txt', 'd/3.txt']);
    // A new directory refused later: still reported (the consumer scans it), no second onDegraded for the same cause.
    mkdirSync(h.abs('later'));
    await h.waitCovered(['later']);
    expect(h.degraded).toHaveLength(1);
  });

  it('on EMFILE: onDegraded names ulimit -n, once per cause', { timeout: T }, async () => {
    let root = '';
    const watch = failingWatch((p) => {
      const rel = path.relative(root, p);
      return rel.startsWith('m') ? 'EMFILE' : rel.startsWith('s') ? 'ENOSPC' : undefined;
    });
    const h = await setup(
      (r) => {
        root = r;
        for (const d of ['m1', 'm2', 's1', 's2', 'ok']) mkdirSync(path.join(r, d));
      },
      { watch },
    );
    expect(h.degraded.map((d) => d.code).sort()).toEqual(['EMFILE', 'ENOSPC']);
    expect(h.degraded.find((d) => d.code === 'EMFILE')?.message).toContain('ulimit -n');
    expect(h.watcher.watchedDirectories).toBe(2);
  });

  it('reports nothing after close()', { timeout: T }, async () => {
    const h = await setup((root) => mkdirSync(path.join(root, 'sub')));
    // A second watcher on the same tree tells when the events have been delivered.
    const witness: string[] = [];
    const other = await TreeWatcher.start({ root: h.root, ignores: () => false, onChange: (p) => witness.push(...p) });
    onTestFinished(() => other.close());
    h.watcher.close();
    h.watcher.close(); // idempotent
    expect(h.watcher.watchedDirectories).toBe(0);
    writeFileSync(h.abs('sub/after-close.txt'), 'x');
    mkdirSync(h.abs('newdir'));
    await waitFor(
      () => witness.includes('sub/after-close.txt') && witness.includes('newdir'),
      () => 'the witness to see the writes',
    );
    expect(h.reported).toEqual([]);
    expect(h.watcher.watchedDirectories).toBe(0);
  });

  it('does not follow a symlinked directory: the link is reported, writes behind it are not', { timeout: T }, async () => {
    const { dir: outside, cleanup } = await makeTempDir('s3ws-watch-outside-');
    onTestFinished(cleanup);
    mkdirSync(path.join(outside, 'target'));
    const h = await setup((root) => {
      mkdirSync(path.join(root, 'real'));
      symlinkSync(path.join(outside, 'target'), path.join(root, 'existing-link'));
    });
    expect(h.watcher.watchedDirectories).toBe(2);
    symlinkSync(path.join(outside, 'target'), h.abs('real/new-link'));
    await h.waitCovered(['real/new-link']);
    writeFileSync(path.join(outside, 'target/behind.txt'), 'x');
    await h.settle();
    expect(h.reported.filter((p) => p.includes('behind'))).toEqual([]);
    expect(h.watcher.watchedDirectories).toBe(2);
  });

  it('reports ROOT_GONE when the root is moved away, and stops watching', { timeout: T }, async () => {
    const h = await setup((root) => mkdirSync(path.join(root, 'sub')));
    const moved = `${h.root}-moved`;
    onTestFinished(() => rmSync(moved, { recursive: true, force: true }));
    renameSync(h.root, moved);
    await waitFor(
      () => h.degraded.some((d) => d.code === 'ROOT_GONE'),
      () => `ROOT_GONE (degraded: ${JSON.stringify(h.degraded)})`,
    );
    expect(h.watcher.degraded).toBe(true);
    expect(h.watcher.watchedDirectories).toBe(0);
    expect(h.degraded).toHaveLength(1);
  });

  it('reports ROOT_GONE when the root is deleted', { timeout: T }, async () => {
    const h = await setup((root) => mkdirSync(path.join(root, 'sub')));
    rmSync(h.root, { recursive: true });
    await waitFor(
      () => h.degraded.some((d) => d.code === 'ROOT_GONE'),
      () => `ROOT_GONE (degraded: ${JSON.stringify(h.degraded)})`,
    );
    expect(h.watcher.watchedDirectories).toBe(0);
  });

  it("survives an 'error' event on a directory's watcher: the watch is closed quietly and the directory reported", { timeout: T }, async () => {
    const made = new Map<string, FSWatcher>();
    const h = await setup(
      (root) => {
        mkdirSync(path.join(root, 'flaky'));
        mkdirSync(path.join(root, 'doomed/inner'), { recursive: true });
      },
      { watch: failingWatch(() => undefined, [], made) },
    );
    expect(h.watcher.watchedDirectories).toBe(4);
    const fail = (rel: string): void => {
      const w = made.get(h.abs(rel));
      if (w === undefined) throw new Error(`no watcher for ${rel}`);
      w.emit('error', Object.assign(new Error('EIO: injected'), { code: 'EIO' }));
    };
    // Still a directory: unwatched from now on, so the watcher is degraded.
    fail('flaky');
    expect(h.reported).toEqual(['flaky']);
    expect(h.degraded).toMatchObject([{ code: 'EIO', path: 'flaky' }]);
    expect(h.watcher.watchedDirectories).toBe(3);
    // Gone: its subtree's watches go too, no degradation.
    rmSync(h.abs('doomed'), { recursive: true });
    fail('doomed');
    expect(h.reported).toContain('doomed');
    expect(h.watcher.watchedDirectories).toBe(1);
    await h.settle();
    expect(h.degraded).toHaveLength(1);
  });

  it('rejects when the root does not exist or is not a directory', { timeout: T }, async () => {
    const { dir, cleanup } = await makeTempDir('s3ws-watch-');
    onTestFinished(cleanup);
    writeFileSync(path.join(dir, 'file'), 'x');
    const start = (root: string): Promise<TreeWatcher> => TreeWatcher.start({ root, ignores: () => false, onChange: () => {} });
    await expect(start(path.join(dir, 'missing'))).rejects.toMatchObject({ code: 'ENOENT' });
    await expect(start(path.join(dir, 'file'))).rejects.toMatchObject({ code: 'ENOTDIR' });
  });
});
