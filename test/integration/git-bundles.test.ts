// git: 'bundle' through the whole pipeline against the local S3 server: a
// push saves the workspace's repository (bundle + sidecar under
// `<prefix>.s3-workspace-sync/git/`), a pull into a workspace without .git
// restores it under the pulled files. git runs isolated from the machine's
// config (as in test/git/bundle.test.ts).
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';

import { describe, expect, it } from 'vitest';

import type { SyncLogger } from '../../src/index.js';
import { recordCommands } from '../helpers/commands.js';
import { getObjectBytes, listAllKeys } from '../helpers/s3.js';
import { fixture, tempDir } from '../helpers/sync-fixture.js';
import { GIT_ISOLATION, isolateGitForFile } from '../helpers/git-env.js';

const T = 30_000;
const GIT_AREA = 'ws/.s3-workspace-sync/git/';

const ISOLATION = GIT_ISOLATION;
isolateGitForFile();

function git(cwd: string, ...args: string[]): string {
  return execFileSync('git', args, { cwd, encoding: 'utf8', env: { ...process.env, ...ISOLATION }, stdio: ['ignore', 'pipe', 'pipe'] });
}

function write(file: string, text: string): void {
  mkdirSync(path.dirname(file), { recursive: true });
  writeFileSync(file, text);
}

/**
 * A repository with history on two branches, a remote, local config, the
 * feature branch checked out, and uncommitted work: a staged new file, an
 * unstaged edit, an untracked file. The library's state folder is excluded
 * (info/exclude is carried), so `git status` compares the user's files only.
 */
function makeRepository(ws: string): void {
  git(ws, '-c', 'init.defaultBranch=main', 'init', '-q');
  write(path.join(ws, '.git', 'info', 'exclude'), '.s3-workspace-sync/\n');
  write(path.join(ws, 'README.md'), '# project\n');
  write(path.join(ws, 'src', 'app.ts'), 'export const a = 1;\n');
  git(ws, 'add', '-A');
  git(ws, 'commit', '-q', '-m', 'first');
  git(ws, 'checkout', '-q', '-b', 'feature');
  write(path.join(ws, 'src', 'feature.ts'), 'export const f = 2;\n');
  git(ws, 'add', '-A');
  git(ws, 'commit', '-q', '-m', 'feature work');
  git(ws, 'remote', 'add', 'origin', 'https://example.com/team/project.git');
  git(ws, 'config', 'user.name', 'Workspace User');
  write(path.join(ws, 'src', 'staged.ts'), 'export const s = 3;\n');
  git(ws, 'add', 'src/staged.ts');
  write(path.join(ws, 'README.md'), '# project\n\nunstaged edit\n');
  write(path.join(ws, 'notes.txt'), 'untracked\n');
}

/** What git shows: what a restore must reproduce. */
function view(ws: string): Record<string, string> {
  return {
    head: git(ws, 'symbolic-ref', 'HEAD'),
    log: git(ws, 'log', '--all', '--format=%H %P %an %s'),
    branches: git(ws, 'branch', '--list'),
    remotes: git(ws, 'remote', '-v'),
    config: git(ws, 'config', '--local', '--get', 'user.name'),
    status: git(ws, 'status', '--porcelain=v1', '-uall'),
    staged: git(ws, 'diff', '--cached'),
    unstaged: git(ws, 'diff'),
  };
}

function collectingLogger(): SyncLogger & { lines: Array<[string, string]> } {
  const lines: Array<[string, string]> = [];
  const at = (level: string) => (message: string) => void lines.push([level, message]);
  return { lines, debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
}

async function gitKeys(f: Awaited<ReturnType<typeof fixture>>): Promise<string[]> {
  return (await listAllKeys(f.other, f.bucket, GIT_AREA, { includeLibrary: true })).map((k) => k.slice(GIT_AREA.length));
}

describe("git: 'bundle'", () => {
  it('commit, push, wipe the directory, pull: the same log, branch, remotes, config and uncommitted changes', { timeout: T }, async () => {
    const f = await fixture();
    const ws = await tempDir();
    makeRepository(ws);
    const before = view(ws);

    const pushed = await f.sync({ workspaceDir: ws, git: 'bundle' }).push();
    expect(pushed.success).toBe(true);
    expect(pushed.failedFiles).toEqual([]);
    const keys = await gitKeys(f);
    expect(keys).toHaveLength(2);
    expect(keys).toContain('repository.json');
    expect(keys.find((k) => k !== 'repository.json')).toMatch(/^bundle-[0-9a-f]{16}\.bundle$/);
    const sidecar = JSON.parse((await getObjectBytes(f.other, f.bucket, `${GIT_AREA}repository.json`)).toString('utf8')) as { bundle: { sha256: string } };
    expect(keys).toContain(`bundle-${sidecar.bundle.sha256.slice(0, 16)}.bundle`);
    // the repository is not synced as files
    expect((await listAllKeys(f.other, f.bucket, 'ws/')).filter((k) => k.includes('.git/'))).toEqual([]);

    rmSync(ws, { recursive: true, force: true });
    const pulled = await f.sync({ workspaceDir: ws, git: 'bundle' }).pull();
    expect(pulled.success).toBe(true);
    expect(pulled.failedFiles).toEqual([]);
    expect(existsSync(path.join(ws, '.git'))).toBe(true);
    expect(view(ws)).toEqual(before);

    // the restored repository is the pushed one: the next push writes nothing of git
    const again = f.sync({ workspaceDir: ws, git: 'bundle' });
    const log = recordCommands(f.client);
    expect((await again.push()).success).toBe(true);
    expect(log.library().filter((c) => String(c.input.Key).includes('/git/'))).toEqual([]);
  });

  it('a second push with no new commits writes no bundle (and a new process neither); a commit writes one and removes the previous', { timeout: T }, async () => {
    const f = await fixture();
    const ws = await tempDir();
    makeRepository(ws);
    const sync = f.sync({ workspaceDir: ws, git: 'bundle' });
    expect((await sync.push()).success).toBe(true);
    const first = await gitKeys(f);

    const log = recordCommands(f.client);
    write(path.join(ws, 'README.md'), 'another working-tree edit: synced as a file, not a repository change\n');
    expect((await sync.push()).success).toBe(true);
    expect(log.library().filter((c) => String(c.input.Key).includes('/git/'))).toEqual([]);
    expect(log.keys('PutObjectCommand')).toEqual(['ws/README.md']);

    // a new instance (a new process) reads the fingerprint from the state file
    log.reset();
    expect((await f.sync({ workspaceDir: ws, git: 'bundle' }).push()).success).toBe(true);
    expect(log.calls.filter((c) => String(c.input.Key).includes('/git/'))).toEqual([]);

    git(ws, 'commit', '-q', '-am', 'second');
    log.reset();
    expect((await sync.push()).success).toBe(true);
    const puts = log.keysAll('PutObjectCommand').filter((k) => k.includes('/git/'));
    expect(puts).toHaveLength(2);
    expect(puts[0]).toMatch(/\/git\/bundle-[0-9a-f]{16}\.bundle$/); // the bundle first, the sidecar last
    expect(puts[1]).toBe(`${GIT_AREA}repository.json`);
    const second = await gitKeys(f);
    expect(second).toHaveLength(2); // the previous bundle (this workspace's) is gone
    expect(second.filter((k) => first.includes(k))).toEqual(['repository.json']);
  });

  it('a workspace whose .git is another repository does not overwrite the saved one (GIT_CONFLICT); its files are pushed', { timeout: T }, async () => {
    const f = await fixture();
    const a = await tempDir();
    makeRepository(a);
    expect((await f.sync({ workspaceDir: a, git: 'bundle' }).push()).success).toBe(true);
    const sidecarBefore = await getObjectBytes(f.other, f.bucket, `${GIT_AREA}repository.json`);

    const b = await tempDir();
    git(b, '-c', 'init.defaultBranch=main', 'init', '-q');
    write(path.join(b, 'other.txt'), 'other\n');
    git(b, 'add', '-A');
    git(b, 'commit', '-q', '-m', 'unrelated');
    const result = await f.sync({ workspaceDir: b, git: 'bundle' }).push();
    expect(result.success).toBe(false);
    expect(result.failedFiles).toEqual([expect.objectContaining({ path: '.git/', code: 'GIT_CONFLICT' })]);
    expect(result.uploadedFiles).toBe(1);
    expect(await getObjectBytes(f.other, f.bucket, `${GIT_AREA}repository.json`)).toEqual(sidecarBefore);
    expect(await gitKeys(f)).toHaveLength(2); // no orphan bundle
  });

  it('a pull into a workspace whose .git exists leaves it alone', { timeout: T }, async () => {
    const f = await fixture();
    const a = await tempDir();
    makeRepository(a);
    expect((await f.sync({ workspaceDir: a, git: 'bundle' }).push()).success).toBe(true);

    const b = await tempDir();
    git(b, '-c', 'init.defaultBranch=trunk', 'init', '-q');
    const logger = collectingLogger();
    const sync = f.sync({ workspaceDir: b, git: 'bundle', logger });
    const result = await sync.pull();
    expect(result.success).toBe(true);
    expect(git(b, 'symbolic-ref', 'HEAD')).toBe('refs/heads/trunk\n');
    const differs = () => logger.lines.filter(([level, m]) => level === 'info' && /differs from the repository saved in the bucket/.test(m));
    expect(differs()).toHaveLength(1);
    // said once per saved repository: the next pull asks with If-None-Match and gets a 304
    expect((await sync.pull()).success).toBe(true);
    expect(differs()).toHaveLength(1);
    expect(git(b, 'symbolic-ref', 'HEAD')).toBe('refs/heads/trunk\n');
  });

  it('without git on the machine: one warning, the files sync, success stays true', { timeout: T }, async () => {
    const f = await fixture();
    const a = await tempDir();
    makeRepository(a);
    const missing = path.join(a, 'no-such-dir', 'git');
    const pushLogger = collectingLogger();
    const push = f.sync({ workspaceDir: a, git: 'bundle', gitBinary: missing, logger: pushLogger });
    const pushed = await push.push();
    expect(pushed.success).toBe(true);
    expect(await gitKeys(f)).toEqual([]);
    write(path.join(a, 'notes.txt'), 'again\n');
    expect((await push.push()).success).toBe(true);
    expect(pushLogger.lines.filter(([level, m]) => level === 'warn' && /cannot be run/.test(m))).toHaveLength(1);

    // a repository saved by a machine with git, pulled on one without
    expect((await f.sync({ workspaceDir: a, git: 'bundle' }).push()).success).toBe(true);
    const b = await tempDir();
    const pullLogger = collectingLogger();
    const pulled = await f.sync({ workspaceDir: b, git: 'bundle', gitBinary: missing, logger: pullLogger }).pull();
    expect(pulled.success).toBe(true);
    expect(pulled.downloadedFiles).toBeGreaterThan(0);
    expect(existsSync(path.join(b, '.git'))).toBe(false);
    expect(pullLogger.lines.filter(([level, m]) => level === 'warn' && /bucket holds a git repository.*cannot be run/.test(m))).toHaveLength(1);
  });

  it("dry runs and git: 'off' write no repository", { timeout: T }, async () => {
    const f = await fixture();
    const ws = await tempDir();
    makeRepository(ws);
    const dry = await f.sync({ workspaceDir: ws, git: 'bundle' }).push({ dryRun: true });
    expect(dry.success).toBe(true);
    await f.sync({ workspaceDir: ws, git: 'bundle' }).plan('push');
    expect(await gitKeys(f)).toEqual([]);
    expect((await f.sync({ workspaceDir: ws }).push()).success).toBe(true);
    expect(await gitKeys(f)).toEqual([]);
  });
  it('watch mode: a commit that changes no working-tree file is saved (a change in .git triggers the push)', { timeout: T }, async () => {
    const f = await fixture();
    const ws = await tempDir();
    makeRepository(ws);
    const sync = f.sync({ workspaceDir: ws, git: 'bundle' });
    const w = await sync.watch({ initial: 'push', debounceMs: 100, maxDelayMs: 500, reconcileMs: 0 });
    try {
      const sidecarText = async (): Promise<string> => (await getObjectBytes(f.other, f.bucket, `${GIT_AREA}repository.json`)).toString('utf8');
      const first = await sidecarText();
      // commit what is staged: no working-tree file changes, only .git/
      git(ws, 'commit', '-q', '-m', 'staged work');
      const until = Date.now() + 15_000;
      while ((await sidecarText()) === first) {
        if (Date.now() > until) throw new Error('the commit was not saved');
        await new Promise((r) => setTimeout(r, 50));
      }
      const head = git(ws, 'rev-parse', 'HEAD').trim();
      expect(JSON.parse(await sidecarText()).repository.head.commit).toBe(head);
    } finally {
      await w.close();
      sync.destroy();
    }
  });
});
