// Ignore rules: built-in defaults, the workspace's .syncignore, ignorePatterns,
// `!pattern` re-includes, and the bucket's .syncignore on a cold start.
import { writeFile } from 'node:fs/promises';
import path from 'node:path';

import { describe, expect, it } from 'vitest';

import { recordCommands } from '../helpers/commands.js';
import { getObjectBytes, listAllKeys, putObjects } from '../helpers/s3.js';
import { fixture, tempDir } from '../helpers/sync-fixture.js';
import { readTree, writeTree } from '../helpers/tree.js';

const SYNCIGNORE = 'secret/\n*.tmp\n!keep.tmp\n!important.log\n';

const LOCAL: Record<string, string> = {
  'src/app.ts': 'app',
  '.syncignore': SYNCIGNORE,
  // default-ignored
  'node_modules/pkg/index.js': 'dep',
  'sub/node_modules/x.js': 'nested dep',
  '.env': 'SECRET=1',
  '.env.local': 'SECRET=2',
  'x.log': 'log',
  'logs/y.log': 'log',
  '.git/config': 'git',
  // default re-include
  '.env.example': 'SECRET=',
  // .syncignore
  'secret/s.txt': 'secret',
  'a.tmp': 'tmp',
  'keep.tmp': 'kept by !keep.tmp',
  'important.log': 'kept by !important.log',
  // ignorePatterns
  'cache/c.txt': 'cache',
  'data.csv': 'csv',
};
const IGNORE_PATTERNS = ['cache/', '*.csv'];
const SYNCED = ['.env.example', '.syncignore', 'important.log', 'keep.tmp', 'src/app.ts'];

describe('ignore rules', () => {
  it('push uploads only what the rules let through (defaults, .syncignore, ignorePatterns, !re-includes)', async () => {
    const f = await fixture();
    const ws = await tempDir();
    await writeTree(ws, LOCAL);
    const result = await f.sync({ workspaceDir: ws, ignorePatterns: IGNORE_PATTERNS }).push();
    expect(result.success).toBe(true);
    expect(result.uploadedFiles).toBe(SYNCED.length);
    expect(await listAllKeys(f.other, f.bucket)).toEqual(SYNCED.map((p) => `ws/${p}`));
    expect((await getObjectBytes(f.other, f.bucket, 'ws/.syncignore')).toString()).toBe(SYNCIGNORE);
  });

  it('pull neither deletes nor overwrites ignored local files, and does not download ignored remote keys (reason "ignored")', async () => {
    const f = await fixture();
    const ws = await tempDir();
    await writeTree(ws, LOCAL);
    await f.sync({ workspaceDir: ws, ignorePatterns: IGNORE_PATTERNS }).push();
    const IGNORED_REMOTE = {
      'ws/node_modules/evil.js': 'remote dep',
      'ws/y.log': 'remote log',
      'ws/.env': 'REMOTE=1',
      'ws/secret/s.txt': 'remote secret',
      'ws/secret/s2.txt': 'remote secret 2',
      'ws/a.tmp': 'remote tmp',
      'ws/cache/c.txt': 'remote cache',
      'ws/data.csv': 'remote csv',
    };
    await putObjects(f.other, f.bucket, IGNORED_REMOTE);

    // A fresh instance mirrors the bucket, yet ignored files are out of scope.
    const log = recordCommands(f.client);
    const result = await f.sync({ workspaceDir: ws, ignorePatterns: IGNORE_PATTERNS }).pull();
    expect(result).toMatchObject({ success: true, downloadedFiles: 0, deletedFiles: 0, failedFiles: [] });
    expect(log.count('GetObjectCommand')).toBe(0);
    const skipped = Object.keys(IGNORED_REMOTE).map((k) => ({ path: k.slice('ws/'.length), reason: 'ignored' }));
    for (const s of skipped) expect(result.skippedFiles).toContainEqual(s);
    expect(await readTree(ws)).toEqual(await readTreeOf(LOCAL));

    // Same for an instance that has synced before.
    const sync = f.sync({ workspaceDir: ws, ignorePatterns: IGNORE_PATTERNS });
    await sync.pull();
    const again = await sync.pull();
    expect(again).toMatchObject({ success: true, downloadedFiles: 0, deletedFiles: 0 });
    expect(await readTree(ws)).toEqual(await readTreeOf(LOCAL));
  });

  it("a cold pull into an empty workspace honours the bucket's .syncignore (and downloads it)", async () => {
    const f = await fixture();
    await putObjects(f.other, f.bucket, {
      'ws/.syncignore': 'secret/\n*.bak\n',
      'ws/ok.txt': 'ok',
      'ws/secret/a.txt': 'no',
      'ws/old.bak': 'no',
    });
    const ws = await tempDir();
    const result = await f.sync({ workspaceDir: ws }).pull();
    expect(result).toMatchObject({ success: true, downloadedFiles: 2 });
    expect(result.skippedFiles).toEqual(
      expect.arrayContaining([
        { path: 'secret/a.txt', reason: 'ignored' },
        { path: 'old.bak', reason: 'ignored' },
      ]),
    );
    expect(Object.keys(await readTree(ws))).toEqual(['.syncignore', 'ok.txt']);
  });

  it("a pull into a workspace without .syncignore uses the bucket's rules, not the workspace scanned with its own (scanned again)", async () => {
    const f = await fixture();
    await putObjects(f.other, f.bucket, {
      'ws/.syncignore': 'secret/\n*.bak\n',
      'ws/ok.txt': 'ok',
      'ws/draft.bak': 'remote draft',
    });
    const ws = await tempDir();
    await writeTree(ws, { 'secret/mine.txt': 'local secret', 'draft.bak': 'local draft', 'notes.txt': 'local notes' });
    const result = await f.sync({ workspaceDir: ws }).pull();
    expect(result).toMatchObject({ success: true, downloadedFiles: 2 });
    // mirrored: the local-only file the bucket's rules let through is moved aside (never deleted);
    // the files they ignore are not looked at, so they stay where they are
    expect(result.plan?.deletions.map((d) => d.path)).toEqual(['notes.txt']);
    expect(result.movedAside.map((m) => m.path)).toEqual(['notes.txt']);
    const tree = await readTree(ws);
    expect(tree['secret/mine.txt']?.toString()).toBe('local secret');
    expect(tree['draft.bak']?.toString()).toBe('local draft');
    expect(tree['ok.txt']?.toString()).toBe('ok');
    expect(tree['notes.txt']).toBeUndefined();
  });

  it('a synced file that becomes ignored is neither uploaded nor deleted remotely', async () => {
    const f = await fixture();
    const ws = await tempDir();
    await writeTree(ws, { 'data.csv': 'v1', 'a.txt': 'a' });
    const sync = f.sync({ workspaceDir: ws });
    expect((await sync.push()).uploadedFiles).toBe(2);
    await writeFile(path.join(ws, '.syncignore'), '*.csv\n');
    await writeFile(path.join(ws, 'data.csv'), 'v2 changed');
    const result = await sync.push();
    expect(result).toMatchObject({ success: true, uploadedFiles: 1, deletedFiles: 0 });
    expect(await listAllKeys(f.other, f.bucket)).toEqual(['ws/.syncignore', 'ws/a.txt', 'ws/data.csv']);
    expect((await getObjectBytes(f.other, f.bucket, 'ws/data.csv')).toString()).toBe('v1');
  });

  it("the library's own state dir and temp files cannot be re-included", async () => {
    const f = await fixture();
    const ws = await tempDir();
    await writeTree(ws, {
      '.s3-workspace-sync/state.json': '{}',
      'a.txt': 'a',
      '.syncignore': '!.s3-workspace-sync/\n!*.s3ws-tmp\n',
    });
    await writeFile(path.join(ws, '.x.s3ws-tmp'), 'tmp');
    const result = await f.sync({ workspaceDir: ws, ignorePatterns: ['!.s3-workspace-sync/**'] }).push();
    expect(result.success).toBe(true);
    expect(await listAllKeys(f.other, f.bucket)).toEqual(['ws/.syncignore', 'ws/a.txt']);
  });
});

async function readTreeOf(files: Record<string, string>): Promise<Record<string, Buffer>> {
  const dir = await tempDir();
  await writeTree(dir, files);
  return readTree(dir);
}
