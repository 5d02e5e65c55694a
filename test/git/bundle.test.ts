// src/git/bundle.ts against the real `git`, in temporary directories: a
// repository is bundled, its .git/ and working tree wiped, the working-tree
// files laid back (copied, as a pull would), the repository restored, and
// everything `git` shows compared with what it showed before.
import { execFileSync } from 'node:child_process';
import { chmodSync, cpSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import {
  createBundle,
  findRepository,
  gitAvailable,
  GitError,
  parseSidecar,
  redactConfig,
  repositoryFingerprint,
  repositoryMatches,
  restoreRepository,
} from '../../src/git/bundle.js';
import { isSyncError } from '../../src/errors.js';
import { GIT_ISOLATION, isolateGitForFile } from '../helpers/git-env.js';

const T = 10_000;
let root = '';

const ISOLATION = GIT_ISOLATION;
isolateGitForFile();

beforeAll(() => {
  root = mkdtempSync(path.join(tmpdir(), 's3ws-git-'));
});

afterAll(() => {
  rmSync(root, { recursive: true, force: true });
});

let counter = 0;
function dir(name: string): string {
  const d = path.join(root, `${name}-${counter++}`);
  mkdirSync(d, { recursive: true });
  return d;
}

/** git in `cwd`, stdout as text (throws on a non-zero exit). */
function git(cwd: string, ...args: string[]): string {
  return execFileSync('git', ['-c', 'protocol.file.allow=always', ...args], { cwd, encoding: 'utf8', env: { ...process.env, ...ISOLATION }, stdio: ['ignore', 'pipe', 'pipe'] });
}

function write(file: string, text: string, mode?: number): void {
  mkdirSync(path.dirname(file), { recursive: true });
  writeFileSync(file, text);
  if (mode !== undefined) chmodSync(file, mode);
}

function init(d: string): string {
  git(d, '-c', 'init.defaultBranch=main', 'init', '-q');
  return d;
}

function commitFile(d: string, file: string, text: string, message = `add ${file}`): void {
  write(path.join(d, file), text);
  git(d, 'add', file);
  git(d, 'commit', '-q', '-m', message);
}

/** What git shows about a repository: everything a restore must reproduce. */
function view(d: string): Record<string, string> {
  const hooksDir = path.join(d, '.git', 'hooks');
  const hooks = readdirSync(hooksDir)
    .filter((n) => !n.endsWith('.sample'))
    .sort()
    .map((n) => `${n} ${(statSync(path.join(hooksDir, n)).mode & 0o777).toString(8)} ${readFileSync(path.join(hooksDir, n), 'utf8')}`)
    .join('\n');
  const head = (() => {
    try {
      return git(d, 'symbolic-ref', 'HEAD');
    } catch {
      return `detached ${git(d, 'rev-parse', 'HEAD')}`;
    }
  })();
  return {
    head,
    log: git(d, 'log', '--all', '--format=%H %P %an %s'),
    refs: git(d, 'for-each-ref', '--format=%(objectname) %(refname) %(symref)'),
    status: git(d, 'status', '--porcelain=v1', '-uall', '--ignored'),
    staged: git(d, 'diff', '--cached', '--stat'),
    unstaged: git(d, 'diff', '--stat'),
    config: git(d, 'config', '--local', '--list'),
    remotes: git(d, 'remote', '-v'),
    stash: git(d, 'stash', 'list', '--format=%H %gs %gn %gd'),
    hooks,
    fsck: git(d, 'fsck', '--no-progress', '--no-dangling'),
  };
}

/** Copy the working tree as a sync would: every file, no `.git/` directory (a `.git` file is copied). */
function layWorkingTree(from: string, to: string): void {
  mkdirSync(to, { recursive: true });
  cpSync(from, to, {
    recursive: true,
    preserveTimestamps: false,
    filter: (source) => !(path.basename(source) === '.git' && lstatSync(source).isDirectory()),
  });
}

/** Bundle `ws`, wipe it, lay its files back, restore: returns the workspace and the sidecar. */
async function roundTrip(ws: string) {
  const out = dir('out');
  const created = await createBundle(ws, out);
  const files = dir('files');
  layWorkingTree(ws, files);
  rmSync(ws, { recursive: true, force: true });
  layWorkingTree(files, ws);
  expect(existsSync(path.join(ws, '.git'))).toBe(false);
  const restored = await restoreRepository(ws, created.bundlePath, readFileSync(created.sidecarPath, 'utf8'));
  return { created, restored };
}

async function rejection(promise: Promise<unknown>): Promise<GitError> {
  try {
    await promise;
  } catch (err) {
    expect(err).toBeInstanceOf(GitError);
    expect(isSyncError(err)).toBe(true);
    return err as GitError;
  }
  throw new Error('expected a rejection');
}

describe('git bundle: round trip', () => {
  it(
    'restores branches, tags, remotes, config, hooks, stash, staged and unstaged changes and untracked files',
    async () => {
      const ws = init(dir('ws'));
      commitFile(ws, 'a.txt', 'a1\n');
      write(path.join(ws, 'bin', 'run.sh'), '#!/bin/sh\necho hi\n', 0o755);
      write(path.join(ws, 'dir', 'b.txt'), 'b1\n');
      write(path.join(ws, 'gone.txt'), 'soon deleted\n');
      git(ws, 'add', '.');
      git(ws, 'commit', '-q', '-m', 'second');
      git(ws, 'tag', 'v1');
      git(ws, 'tag', '-a', 'v2', '-m', 'annotated');
      git(ws, 'checkout', '-q', '-b', 'feature');
      commitFile(ws, 'feature.txt', 'f\n');
      git(ws, 'checkout', '-q', 'main');
      commitFile(ws, 'a.txt', 'a2\n', 'third');
      git(ws, 'branch', 'topic', 'HEAD~1');
      git(ws, 'remote', 'add', 'origin', 'https://example.com/team/repo.git');
      git(ws, 'config', 'remote.origin.pushurl', 'git@example.com:team/repo.git');
      git(ws, 'remote', 'add', 'mirror', '/srv/mirror.git');
      git(ws, 'update-ref', 'refs/remotes/origin/main', 'HEAD~1');
      git(ws, 'symbolic-ref', 'refs/remotes/origin/HEAD', 'refs/remotes/origin/main');
      git(ws, 'config', 'user.name', 'Local Name');
      git(ws, 'config', 'branch.main.remote', 'origin');
      git(ws, 'config', 'branch.main.merge', 'refs/heads/main');
      write(path.join(ws, '.git', 'hooks', 'pre-commit'), '#!/bin/sh\nexit 0\n', 0o755);
      write(path.join(ws, '.git', 'hooks', 'commit-msg'), '#!/bin/sh\nexit 0\n', 0o700);
      write(path.join(ws, '.git', 'info', 'exclude'), '*.local\n');
      // Two stash entries.
      write(path.join(ws, 'a.txt'), 'stashed 1\n');
      git(ws, 'stash', 'push', '-q', '-m', 'first wip');
      write(path.join(ws, 'dir', 'b.txt'), 'stashed 2\n');
      git(ws, 'stash', 'push', '-q', '-m', 'second wip');
      // Uncommitted work of every kind.
      write(path.join(ws, 'a.txt'), 'a3 unstaged\n');
      write(path.join(ws, 'c.txt'), 'new staged\n');
      git(ws, 'add', 'c.txt');
      write(path.join(ws, 'dir', 'b.txt'), 'b2 staged\n');
      git(ws, 'add', 'dir/b.txt');
      write(path.join(ws, 'dir', 'b.txt'), 'b3 staged then edited\n');
      rmSync(path.join(ws, 'gone.txt'));
      write(path.join(ws, 'untracked', 'u.txt'), 'untracked\n');
      write(path.join(ws, 'notes.local'), 'ignored by info/exclude\n');

      const before = view(ws);
      const fingerprint = await repositoryFingerprint(ws);
      expect(before.status).toContain('MM dir/b.txt');
      expect(before.status).toContain('A  c.txt');
      expect(before.status).toContain(' D gone.txt');
      expect(before.status).toContain('!! notes.local');

      const { created, restored } = await roundTrip(ws);
      expect(created.sidecar.fingerprint).toBe(fingerprint);
      expect(created.sidecar.repository.head).toMatchObject({ kind: 'branch', ref: 'refs/heads/main' });
      expect(created.sidecar.repository.remotes).toEqual([
        { name: 'origin', fetchUrls: ['https://example.com/team/repo.git'], pushUrls: ['git@example.com:team/repo.git'] },
        { name: 'mirror', fetchUrls: ['/srv/mirror.git'], pushUrls: [] },
      ]);
      expect(created.sidecar.repository.stash.map((e) => e.message)).toEqual(['On main: first wip', 'On main: second wip']);
      expect(restored.gitDir).toBe(path.join(ws, '.git'));

      expect(view(ws)).toEqual(before);
      expect(await repositoryMatches(ws, created.sidecar)).toBe(true);
      expect(await repositoryFingerprint(ws)).toBe(fingerprint);
      expect(readdirSync(ws).filter((n) => n.includes('s3ws-tmp'))).toEqual([]);
    },
    T,
  );

  it(
    'restores a detached HEAD',
    async () => {
      const ws = init(dir('ws'));
      commitFile(ws, 'a.txt', '1\n');
      commitFile(ws, 'a.txt', '2\n');
      git(ws, 'checkout', '-q', '--detach', 'HEAD~1');
      commitFile(ws, 'only-detached.txt', 'x\n'); // reachable from HEAD alone
      write(path.join(ws, 'a.txt'), 'edited\n');
      const before = view(ws);
      const { created } = await roundTrip(ws);
      expect(created.sidecar.repository.head.kind).toBe('detached');
      expect(view(ws)).toEqual(before);
      expect(await repositoryMatches(ws, created.sidecar)).toBe(true);
    },
    T,
  );

  it(
    'an empty repository: metadata only, no bundle; the branch is unborn after restore',
    async () => {
      const ws = init(dir('ws'));
      git(ws, 'config', 'core.autocrlf', 'input');
      write(path.join(ws, 'draft.txt'), 'not yet added\n');
      const before = view(ws);
      const { created } = await roundTrip(ws);
      expect(created.bundlePath).toBeNull();
      expect(created.sidecar.bundle).toBeNull();
      expect(created.sidecar.repository.index.kind).toBe('none');
      expect(view(ws)).toEqual(before);
      expect(git(ws, 'symbolic-ref', 'HEAD').trim()).toBe('refs/heads/main');
      expect(await repositoryMatches(ws, created.sidecar)).toBe(true);
    },
    T,
  );

  it(
    'a repository with no commits but staged files: the index is carried',
    async () => {
      const ws = init(dir('ws'));
      write(path.join(ws, 'first.txt'), 'staged before the first commit\n');
      git(ws, 'add', 'first.txt');
      write(path.join(ws, 'other.txt'), 'untracked\n');
      const before = view(ws);
      const { created } = await roundTrip(ws);
      expect(created.bundlePath).not.toBeNull();
      expect(created.sidecar.repository.index.kind).toBe('tree');
      expect(view(ws)).toEqual(before);
      expect(before.status).toContain('A  first.txt');
    },
    T,
  );

  it(
    'a shallow clone is supported: its boundary is saved and restored',
    async () => {
      const origin = init(dir('origin'));
      for (let i = 0; i < 5; i++) commitFile(origin, 'n.txt', `${i}\n`, `c${i}`);
      const parent = dir('clones');
      git(parent, 'clone', '-q', '--depth', '2', `file://${origin}`, 'shallow');
      const ws = path.join(parent, 'shallow');
      write(path.join(ws, 'n.txt'), 'edited\n');
      const found = await findRepository(ws);
      expect(found).toMatchObject({ kind: 'repository', shallow: true });
      const before = view(ws);
      const { created } = await roundTrip(ws);
      expect(created.sidecar.repository.shallow).toHaveLength(1);
      expect(view(ws)).toEqual(before);
      expect(git(ws, 'rev-parse', '--is-shallow-repository').trim()).toBe('true');
      expect(git(ws, 'rev-list', '--count', 'HEAD').trim()).toBe('2');
    },
    T,
  );

  it(
    'a submodule: its repository (.git/modules/<name>) is carried in the same bundle',
    async () => {
      const lib = init(dir('lib'));
      commitFile(lib, 'lib.txt', 'lib 1\n');
      commitFile(lib, 'lib.txt', 'lib 2\n');
      const ws = init(dir('super'));
      commitFile(ws, 'top.txt', 'top\n');
      git(ws, 'submodule', 'add', '-q', lib, 'vendor/lib');
      git(ws, 'commit', '-q', '-m', 'add submodule');
      // Work inside the submodule: a local commit, a staged and an unstaged change.
      commitFile(path.join(ws, 'vendor', 'lib'), 'local.txt', 'local commit\n');
      write(path.join(ws, 'vendor', 'lib', 'lib.txt'), 'edited in submodule\n');
      write(path.join(ws, 'vendor', 'lib', 'staged.txt'), 'staged\n');
      git(path.join(ws, 'vendor', 'lib'), 'add', 'staged.txt');
      expect((await findRepository(ws)).kind === 'repository' && (await findRepository(ws))).toMatchObject({ submodules: ['modules/vendor/lib'] });
      const sub = path.join(ws, 'vendor', 'lib');
      const before = { top: view(ws), sub: git(sub, 'status', '--porcelain=v1'), subLog: git(sub, 'log', '--format=%H %s'), modules: git(ws, 'submodule', 'status') };
      const { created } = await roundTrip(ws);
      expect(created.sidecar.submodules.map((m) => m.gitDir)).toEqual(['modules/vendor/lib']);
      const after = { top: view(ws), sub: git(sub, 'status', '--porcelain=v1'), subLog: git(sub, 'log', '--format=%H %s'), modules: git(ws, 'submodule', 'status') };
      expect(after).toEqual(before);
      expect(await repositoryMatches(ws, created.sidecar)).toBe(true);
    },
    T,
  );
});

describe('git bundle: hooks', () => {
  it(
    'hooks: false restores none; a machine template (GIT_TEMPLATE_DIR) adds none',
    async () => {
      const ws = init(dir('ws'));
      commitFile(ws, 'a.txt', '1\n');
      write(path.join(ws, '.git', 'hooks', 'pre-commit'), '#!/bin/sh\nexit 1\n', 0o755);
      const { bundlePath, sidecar } = await createBundle(ws, dir('out'));
      const template = dir('template');
      write(path.join(template, 'hooks', 'post-checkout'), '#!/bin/sh\nexit 1\n', 0o755);
      process.env.GIT_TEMPLATE_DIR = template;
      try {
        const target = dir('target');
        await restoreRepository(target, bundlePath, sidecar, { hooks: false });
        expect(readdirSync(path.join(target, '.git', 'hooks'))).toEqual([]);
        const withHooks = dir('target');
        await restoreRepository(withHooks, bundlePath, sidecar);
        expect(readdirSync(path.join(withHooks, '.git', 'hooks'))).toEqual(['pre-commit']);
      } finally {
        delete process.env.GIT_TEMPLATE_DIR;
      }
    },
    T,
  );
});

describe('git bundle: fingerprint', () => {
  it(
    'ignores working-tree edits; changes with a commit, a branch, git add, config, a hook, the stash',
    async () => {
      const ws = init(dir('ws'));
      commitFile(ws, 'a.txt', '1\n');
      commitFile(ws, 'b.txt', '1\n');
      let last = await repositoryFingerprint(ws);
      const same = async (what: string): Promise<void> => {
        expect(await repositoryFingerprint(ws), what).toBe(last);
      };
      const changed = async (what: string): Promise<void> => {
        const now = await repositoryFingerprint(ws);
        expect(now, what).not.toBe(last);
        last = now;
      };
      await same('nothing');
      write(path.join(ws, 'a.txt'), 'edited\n');
      write(path.join(ws, 'new.txt'), 'untracked\n');
      await same('working-tree edits');
      git(ws, 'status', '--porcelain'); // may refresh the index's stat data
      await same('git status');
      git(ws, 'add', 'a.txt');
      await changed('git add');
      git(ws, 'commit', '-q', '-m', 'edit');
      await changed('a commit');
      git(ws, 'branch', 'other');
      await changed('a new branch');
      git(ws, 'tag', 'v1');
      await changed('a tag');
      git(ws, 'pack-refs', '--all');
      await same('refs packed');
      git(ws, 'config', 'core.ignorecase', 'true');
      await changed('a config change');
      write(path.join(ws, '.git', 'hooks', 'pre-push'), '#!/bin/sh\n', 0o755);
      await changed('a hook');
      chmodSync(path.join(ws, '.git', 'hooks', 'pre-push'), 0o700);
      await changed('a hook mode');
      write(path.join(ws, 'b.txt'), 'to stash\n');
      git(ws, 'stash', 'push', '-q');
      await changed('a stash');
      git(ws, 'checkout', '-q', 'other');
      await changed('another branch checked out');
    },
    T,
  );
});

describe('git bundle: refusals and errors', () => {
  it(
    'restore never replaces an existing .git (directory or file)',
    async () => {
      const ws = init(dir('ws'));
      commitFile(ws, 'a.txt', '1\n');
      const out = dir('out');
      const { bundlePath, sidecar } = await createBundle(ws, out);
      const before = git(ws, 'rev-parse', 'HEAD');
      const err = await rejection(restoreRepository(ws, bundlePath, sidecar));
      expect(err.code).toBe('GIT_EXISTS');
      expect(git(ws, 'rev-parse', 'HEAD')).toBe(before);

      const linked = dir('linked');
      write(path.join(linked, '.git'), 'gitdir: /elsewhere/.git/worktrees/x\n');
      expect((await rejection(restoreRepository(linked, bundlePath, sidecar))).code).toBe('GIT_EXISTS');
      expect(readFileSync(path.join(linked, '.git'), 'utf8')).toBe('gitdir: /elsewhere/.git/worktrees/x\n');
      expect(await findRepository(linked)).toMatchObject({ kind: 'unsupported' });
      expect((await rejection(createBundle(linked, dir('out')))).code).toBe('GIT_UNSUPPORTED');
      expect((await rejection(createBundle(dir('plain'), dir('out')))).code).toBe('GIT_NOT_A_REPOSITORY');
    },
    T,
  );

  it(
    'without git: GIT_UNAVAILABLE, and nothing is left in the workspace',
    async () => {
      const noGit = path.join(dir('empty-bin'), 'git');
      expect(await gitAvailable({ git: noGit })).toBeUndefined();
      expect(await gitAvailable()).toMatch(/^\d+\.\d+/);
      const ws = init(dir('ws'));
      commitFile(ws, 'a.txt', '1\n');
      expect((await rejection(createBundle(ws, dir('out'), { git: noGit }))).code).toBe('GIT_UNAVAILABLE');
      expect((await rejection(repositoryFingerprint(ws, { git: noGit }))).code).toBe('GIT_UNAVAILABLE');
      const { bundlePath, sidecar } = await createBundle(ws, dir('out'));
      const target = dir('target');
      expect((await rejection(restoreRepository(target, bundlePath, sidecar, { git: noGit }))).code).toBe('GIT_UNAVAILABLE');
      expect(readdirSync(target)).toEqual([]);
    },
    T,
  );

  it(
    'a bundle that is not the sidecar\'s, a tampered sidecar, an aborted restore: refused, no .git left',
    async () => {
      const ws = init(dir('ws'));
      commitFile(ws, 'a.txt', '1\n');
      const out = dir('out');
      const { bundlePath, sidecar } = await createBundle(ws, out);
      const target = dir('target');
      const other = dir('other');
      commitFile(ws, 'b.txt', '2\n');
      const second = await createBundle(ws, other);
      expect((await rejection(restoreRepository(target, second.bundlePath, sidecar))).code).toBe('GIT_BUNDLE_MISMATCH');
      expect((await rejection(restoreRepository(target, null, sidecar))).code).toBe('GIT_BUNDLE_MISMATCH');

      const evil = structuredClone(sidecar);
      evil.repository.hooks.push({ name: '../../escape', mode: 0o755, base64: '' });
      expect((await rejection(restoreRepository(target, bundlePath, evil))).code).toBe('GIT_INVALID_SIDECAR');
      expect(() => parseSidecar('{"schema":2}')).toThrow(GitError);
      expect(() => parseSidecar({ ...sidecar, schema: 2 })).toThrow(/schema 2/);

      const aborted = new AbortController();
      aborted.abort();
      const err = await rejection(restoreRepository(target, bundlePath, sidecar, { signal: aborted.signal }));
      expect(err.code).toBe('GIT_ABORTED');
      expect(err.name).toBe('AbortError');
      expect(readdirSync(target)).toEqual([]);

      // A leftover of a crashed restore is removed by the next one.
      mkdirSync(path.join(target, '.git.0123abcd.s3ws-tmp', 'objects'), { recursive: true });
      await restoreRepository(target, bundlePath, sidecar);
      expect(readdirSync(target).sort()).toEqual(['.git']);
      expect(git(target, 'log', '--format=%s')).toBe('add a.txt\n');
    },
    T,
  );

  it(
    'a git command stopped mid-restore (abort, timeout) leaves no .git and no temporary directory',
    async () => {
      const ws = init(dir('ws'));
      commitFile(ws, 'a.txt', '1\n');
      const { bundlePath, sidecar } = await createBundle(ws, dir('out'));
      // A git whose fetch hangs: the restore is stopped in the middle.
      const slowGit = path.join(dir('bin'), 'git');
      write(slowGit, '#!/bin/sh\nfor a in "$@"; do [ "$a" = fetch ] && exec sleep 20; done\nexec git "$@"\n', 0o755);
      const target = dir('target');
      const controller = new AbortController();
      setTimeout(() => controller.abort(), 300);
      const aborted = await rejection(restoreRepository(target, bundlePath, sidecar, { git: slowGit, signal: controller.signal }));
      expect(aborted.code).toBe('GIT_ABORTED');
      expect(readdirSync(target)).toEqual([]);
      const timedOut = await rejection(restoreRepository(target, bundlePath, sidecar, { git: slowGit, timeoutMs: 300 }));
      expect(timedOut.code).toBe('GIT_TIMEOUT');
      expect(readdirSync(target)).toEqual([]);
    },
    T,
  );

  it(
    'credentials in the config are not saved: URL user info and http.extraheader',
    async () => {
      const ws = init(dir('ws'));
      commitFile(ws, 'a.txt', '1\n');
      git(ws, 'remote', 'add', 'origin', 'https://x-access-token:ghs_SECRET123@github.com/o/r.git');
      git(ws, 'config', 'http.https://github.com/.extraheader', 'AUTHORIZATION: basic c2VjcmV0');
      git(ws, 'remote', 'add', 'ssh', 'ssh://deploy:hunter2@host.example/r.git');
      const { sidecar } = await createBundle(ws, dir('out'));
      const text = JSON.stringify(sidecar);
      expect(text).not.toMatch(/ghs_SECRET123|c2VjcmV0|hunter2/);
      expect(sidecar.repository.redacted.sort()).toEqual(['URL credentials', 'http.extraheader']);
      expect(sidecar.repository.remotes[0]).toEqual({ name: 'origin', fetchUrls: ['https://github.com/o/r.git'], pushUrls: [] });
      expect(sidecar.repository.remotes[1]?.fetchUrls).toEqual(['ssh://deploy@host.example/r.git']);
      expect(redactConfig('[http]\n\textraheader = a \\\n\tcontinued\n[core]\n').text).toBe('[http]\n[core]\n');
    },
    T,
  );

  it(
    'an unmerged index (a merge in progress) is restored from HEAD, with a warning',
    async () => {
      const ws = init(dir('ws'));
      commitFile(ws, 'a.txt', 'base\n');
      git(ws, 'checkout', '-q', '-b', 'other');
      commitFile(ws, 'a.txt', 'other\n');
      git(ws, 'checkout', '-q', 'main');
      commitFile(ws, 'a.txt', 'main\n');
      expect(() => git(ws, 'merge', '-q', 'other')).toThrow();
      const { created } = await roundTrip(ws);
      expect(created.sidecar.repository.index.kind).toBe('head');
      expect(created.sidecar.warnings.join('\n')).toMatch(/merge in progress/);
      expect(git(ws, 'status', '--porcelain')).toBe(' M a.txt\n');
    },
    T,
  );
});
