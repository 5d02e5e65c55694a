// Symbolic links: push never reads through them, pull never writes through
// them, and neither side deletes them or what they point to.
import { lstat, mkdir, readFile, readlink, rm, rmdir, symlink, unlink, writeFile } from 'node:fs/promises';
import path from 'node:path';

import { describe, expect, it } from 'vitest';

import { recordCommands } from '../helpers/commands.js';
import { getObjectBytes, listAllKeys, putObjects } from '../helpers/s3.js';
import { fixture, listEntries, tempDir } from '../helpers/sync-fixture.js';
import { readTree, writeTree } from '../helpers/tree.js';

async function outsideWithSecrets(): Promise<string> {
  const outside = await tempDir('s3ws-outside-');
  await writeTree(outside, { 'secret.txt': 'TOP SECRET', 'dir/inner.txt': 'INNER SECRET' });
  return outside;
}

describe('symlinks', () => {
  it('push skips symlinks (reason "symlink"): a link to an outside file is not uploaded and a linked directory is not followed', async () => {
    const f = await fixture();
    const outside = await outsideWithSecrets();
    const ws = await tempDir();
    await writeTree(ws, { 'real.txt': 'real', 'sub/real2.txt': 'real2' });
    await symlink(path.join(outside, 'secret.txt'), path.join(ws, 'link.txt'));
    await symlink(path.join(outside, 'dir'), path.join(ws, 'linkdir'));
    await symlink('../real.txt', path.join(ws, 'sub', 'rel-link.txt'));

    const log = recordCommands(f.client);
    const result = await f.sync({ workspaceDir: ws }).push();
    expect(result).toMatchObject({ success: true, uploadedFiles: 2, failedFiles: [] });
    expect(result.skippedFiles).toEqual(
      expect.arrayContaining([
        { path: 'link.txt', reason: 'symlink' },
        { path: 'linkdir', reason: 'symlink' },
        { path: 'sub/rel-link.txt', reason: 'symlink' },
      ]),
    );
    expect(await listAllKeys(f.other, f.bucket)).toEqual(['ws/real.txt', 'ws/sub/real2.txt']);
    for (const call of log.calls.filter((c) => c.name === 'PutObjectCommand')) {
      expect(String(call.input.Body)).not.toContain('SECRET');
    }
  });

  it('a synced file replaced by a symlink is neither uploaded (target content) nor deleted remotely', async () => {
    const f = await fixture();
    const outside = await outsideWithSecrets();
    const ws = await tempDir();
    await writeTree(ws, { 'a.txt': 'original a', 'b.txt': 'b' });
    const sync = f.sync({ workspaceDir: ws });
    expect((await sync.push()).uploadedFiles).toBe(2);
    await unlink(path.join(ws, 'a.txt'));
    await symlink(path.join(outside, 'secret.txt'), path.join(ws, 'a.txt'));

    const result = await sync.push();
    expect(result).toMatchObject({ success: true, uploadedFiles: 0, deletedFiles: 0 });
    expect(result.skippedFiles).toContainEqual({ path: 'a.txt', reason: 'symlink' });
    expect(result.skippedFiles).toContainEqual({ path: 'a.txt', reason: expect.stringMatching(/^not-deleted/) });
    expect(await listAllKeys(f.other, f.bucket)).toEqual(['ws/a.txt', 'ws/b.txt']);
    expect((await getObjectBytes(f.other, f.bucket, 'ws/a.txt')).toString()).toBe('original a');
  });

  it.each([
    ['a fresh instance', false],
    ['an instance that synced before', true],
  ])('pull (%s) never writes through a symlinked parent directory', async (_label, syncedBefore) => {
    const f = await fixture();
    const outside = await tempDir('s3ws-outside-');
    const ws = await tempDir();
    await writeTree(ws, { 'ok.txt': 'ok' });
    const sync = f.sync({ workspaceDir: ws });
    if (syncedBefore) await sync.push();
    await symlink(outside, path.join(ws, 'linkdir'));
    await putObjects(f.other, f.bucket, {
      'ws/ok.txt': 'ok',
      'ws/linkdir/evil.txt': 'evil',
      'ws/linkdir/sub/evil2.txt': 'evil2',
      'ws/new.txt': 'new',
    });

    const result = await sync.pull();
    expect(await listEntries(outside)).toEqual([]);
    const notWritten = [...result.skippedFiles.map((s) => s.path), ...result.failedFiles.map((x) => x.path)];
    expect(notWritten).toEqual(expect.arrayContaining(['linkdir/evil.txt', 'linkdir/sub/evil2.txt']));
    expect(result.downloadedFiles).toBe(1);
    expect(await readTree(ws)).toEqual({ 'new.txt': Buffer.from('new'), 'ok.txt': Buffer.from('ok') });
    // The link itself is left alone.
    expect((await lstat(path.join(ws, 'linkdir'))).isSymbolicLink()).toBe(true);
    expect(await readlink(path.join(ws, 'linkdir'))).toBe(outside);
  });

  it('pull never overwrites a file through a symlink, nor deletes the link', async () => {
    const f = await fixture();
    const outside = await tempDir('s3ws-outside-');
    await writeFile(path.join(outside, 'target.txt'), 'original');
    const ws = await tempDir();
    await symlink(path.join(outside, 'target.txt'), path.join(ws, 'link.txt'));
    await putObjects(f.other, f.bucket, { 'ws/link.txt': 'evil', 'ws/ok.txt': 'ok' });

    const result = await f.sync({ workspaceDir: ws }).pull();
    expect(await readFile(path.join(outside, 'target.txt'), 'utf8')).toBe('original');
    expect(await listEntries(outside)).toEqual(['target.txt']);
    expect((await lstat(path.join(ws, 'link.txt'))).isSymbolicLink()).toBe(true);
    // The two sides cannot match while the link is there: a failure, not a silent skip.
    expect(result.failedFiles).toContainEqual(expect.objectContaining({ path: 'link.txt', code: 'NOT_A_FILE' }));
    expect(result.success).toBe(false);
    expect(result.downloadedFiles).toBe(1);
  });

  // Regression: parents are re-resolved (uncached) right before the temp file
  // is created and before the rename, and the created file is checked by
  // descriptor (/proc/self/fd), so a directory swapped for a symlink after the
  // planning-time check is refused (SYMLINK_IN_PATH).
  it('pull does not follow a directory swapped for a symlink after the scan', async () => {
    const f = await fixture();
    const outside = await tempDir('s3ws-outside-');
    const ws = await tempDir();
    await mkdir(path.join(ws, 'd'));
    await putObjects(f.other, f.bucket, { 'ws/d/evil.txt': 'evil' });
    let swapped = false;
    // Just before the GET (after planning and the parent check), d becomes a link out.
    recordCommands(f.client, async (name) => {
      if (name === 'GetObjectCommand' && !swapped) {
        swapped = true;
        await rmdir(path.join(ws, 'd'));
        await symlink(outside, path.join(ws, 'd'));
      }
    });
    const result = await f.sync({ workspaceDir: ws }).pull();
    expect(swapped).toBe(true);
    expect(await listEntries(outside)).toEqual([]);
    expect(result.failedFiles).toEqual([expect.objectContaining({ path: 'd/evil.txt', code: 'SYMLINK_IN_PATH' })]);
  });
  // Regression test: WorkspaceWriter.removeFile once checked only the last
  // path component, so a directory swapped for a symlink during the pull led
  // the delete outside the workspace (fixed in 5fa2bce).
  it('pull deletions do not follow a directory swapped for a symlink after the scan', async () => {
    const f = await fixture();
    const outside = await tempDir('s3ws-outside-');
    await writeFile(path.join(outside, 'x.txt'), 'precious, not in the workspace');
    const ws = await tempDir();
    await writeTree(ws, { 'd/x.txt': 'local only: a fresh pull deletes it' });
    await putObjects(f.other, f.bucket, { 'ws/trigger.txt': 't' });
    let swapped = false;
    recordCommands(f.client, async (name) => {
      if (name === 'GetObjectCommand' && !swapped) {
        swapped = true;
        await unlink(path.join(ws, 'd', 'x.txt'));
        await rmdir(path.join(ws, 'd'));
        await symlink(outside, path.join(ws, 'd'));
      }
    });
    const result = await f.sync({ workspaceDir: ws }).pull();
    expect(swapped).toBe(true);
    expect(await readFile(path.join(outside, 'x.txt'), 'utf8')).toBe('precious, not in the workspace');
    expect(result.success).toBe(false);
    expect(result.failedFiles).toEqual([expect.objectContaining({ path: 'd/x.txt', code: 'SYMLINK_IN_PATH' })]);
  });
  // Regression test: planPush once checked only the path itself against the
  // blocked paths, so the objects under a synced directory replaced by a
  // symlink were deleted (fixed in 5fa2bce).
  it('a synced directory replaced by a symlink: push does not delete the objects under it', async () => {
    const f = await fixture();
    const outside = await tempDir('s3ws-outside-');
    await writeTree(outside, { 'x.txt': 'elsewhere x' });
    const ws = await tempDir();
    await writeTree(ws, { 'ok.txt': 'ok', 'd/x.txt': 'x', 'd/y.txt': 'y' });
    const sync = f.sync({ workspaceDir: ws });
    expect((await sync.push()).uploadedFiles).toBe(3);
    await rm(path.join(ws, 'd'), { recursive: true });
    await symlink(outside, path.join(ws, 'd'));

    const result = await sync.push();
    expect(result.skippedFiles).toContainEqual({ path: 'd', reason: 'symlink' });
    expect(result.uploadedFiles).toBe(0);
    expect(await listAllKeys(f.other, f.bucket)).toEqual(['ws/d/x.txt', 'ws/d/y.txt', 'ws/ok.txt']);
    expect(result.deletedFiles).toBe(0);
  });
  // Regression: uploads re-resolve the parent chain before opening, open with
  // O_NOFOLLOW, and check the descriptor's real path (/proc/self/fd), so a
  // parent directory swapped for a symlink after the scan is never read.
  it('push does not read through a directory swapped for a symlink after the scan', async () => {
    const f = await fixture();
    const outside = await tempDir('s3ws-outside-');
    await writeTree(outside, { 'x.txt': 'OUTSIDE SECRET' });
    const ws = await tempDir();
    await writeTree(ws, { 'd/x.txt': 'mine' });
    let swapped = false;
    // A fresh instance scans, then lists: swap d while the listing is sent.
    recordCommands(f.client, async (name) => {
      if (name === 'ListObjectsV2Command' && !swapped) {
        swapped = true;
        await rm(path.join(ws, 'd'), { recursive: true });
        await symlink(outside, path.join(ws, 'd'));
      }
    });
    const result = await f.sync({ workspaceDir: ws }).push();
    expect(swapped).toBe(true);
    const keys = await listAllKeys(f.other, f.bucket);
    for (const key of keys) expect((await getObjectBytes(f.other, f.bucket, key)).toString(), key).not.toContain('OUTSIDE SECRET');
    expect(keys).toEqual([]);
    expect(result.success).toBe(false);
    expect(result.failedFiles.map((x) => x.path)).toEqual(['d/x.txt']);
  });
});
