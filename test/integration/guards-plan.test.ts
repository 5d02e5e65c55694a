import { mkdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { GuardError } from '../../src/index.js';
import { recordCommands } from '../helpers/commands.js';
import { listAllKeys, putObjects } from '../helpers/s3.js';
import { fixture, listEntries, tempDir } from '../helpers/sync-fixture.js';
import { readTree, writeTree } from '../helpers/tree.js';

const tree = (n: number, tag = 'v1'): Record<string, string> =>
  Object.fromEntries(Array.from({ length: n }, (_, i) => [`dir/f${i}.txt`, `${tag} ${i}`]));

describe('guards', () => {
  it('a pull whose listing is empty (mistyped prefix) refuses to wipe the workspace, changes nothing, and allowEmptyRemote overrides', async () => {
    const f = await fixture();
    const ws = await tempDir();
    await writeTree(ws, tree(5));
    await f.sync({ workspaceDir: ws }).push(); // the real prefix is ws/
    const before = await readTree(ws);
    const typo = f.sync({ workspaceDir: ws, prefix: 'wss/' });
    const log = recordCommands(f.client);
    const err = await typo.pull().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(GuardError);
    expect(err).toMatchObject({ code: 'EMPTY_REMOTE', details: { wouldDelete: 5 } });
    expect((err as Error).message).toMatch(/allowEmptyRemote/);
    expect(await readTree(ws)).toEqual(before);
    expect(log.count('GetObjectCommand')).toBe(0);
    // explicitly allowed: mirrors the empty prefix
    const result = await typo.pull({ allowEmptyRemote: true });
    expect(result.deletedFiles).toBe(5);
    expect(await readTree(ws)).toEqual({});
  });

  it('a push after the workspace was wiped locally refuses to delete most of the bucket (default rule), then deletes when allowed', async () => {
    const f = await fixture();
    const ws = await tempDir();
    await writeTree(ws, tree(20));
    const sync = f.sync({ workspaceDir: ws });
    await sync.push();
    await rm(path.join(ws, 'dir'), { recursive: true });
    const log = recordCommands(f.client);
    await expect(sync.push()).rejects.toMatchObject({ name: 'GuardError', code: 'MAX_DELETES', details: { wouldDelete: 20, treeSize: 20 } });
    expect(log.count('DeleteObjectsCommand')).toBe(0);
    expect(await listAllKeys(f.other, f.bucket)).toHaveLength(20);
    // a dry run shows the same plan and the refusal, without throwing
    const dry = await sync.push({ dryRun: true });
    expect(dry.dryRun).toBe(true);
    expect(dry.plan.deletions).toHaveLength(20);
    expect(dry.plan.refusedBy?.code).toBe('MAX_DELETES');
    expect(await listAllKeys(f.other, f.bucket)).toHaveLength(20);
    await expect(sync.push({ maxDeletes: 1 })).rejects.toMatchObject({ code: 'MAX_DELETES' });
    const done = await sync.push({ maxDeletes: Infinity });
    expect(done.deletedFiles).toBe(20);
    expect(await listAllKeys(f.other, f.bucket)).toEqual([]);
  });

  it('maxDeletes as a count or a fraction, on the instance or per call', async () => {
    const f = await fixture();
    const ws = await tempDir();
    await writeTree(ws, tree(8));
    const sync = f.sync({ workspaceDir: ws, maxDeletes: 2 });
    await sync.push();
    for (const i of [0, 1, 2]) await rm(path.join(ws, `dir/f${i}.txt`));
    await expect(sync.push()).rejects.toMatchObject({ code: 'MAX_DELETES', details: { wouldDelete: 3, limit: 2 } });
    await expect(sync.push({ maxDeletes: 0.25 })).rejects.toMatchObject({ code: 'MAX_DELETES', details: { limit: 2 } });
    const ok = await sync.push({ maxDeletes: 0.5 });
    expect(ok.deletedFiles).toBe(3);
    expect(await listAllKeys(f.other, f.bucket)).toHaveLength(5);
  });

  it('maxTotalBytes refuses a pull that would download too much, before any GET', async () => {
    const f = await fixture();
    await putObjects(f.other, f.bucket, { 'ws/a.bin': Buffer.alloc(3000, 1), 'ws/b.bin': Buffer.alloc(3000, 2) });
    const ws = await tempDir();
    const sync = f.sync({ workspaceDir: ws, maxTotalBytes: 5000 });
    const log = recordCommands(f.client);
    await expect(sync.pull()).rejects.toMatchObject({ code: 'MAX_TOTAL_BYTES', details: { wouldTransferBytes: 6000, limit: 5000 } });
    expect(log.count('GetObjectCommand')).toBe(0);
    expect(await listEntries(ws)).toEqual([]);
    expect((await sync.pull({ maxTotalBytes: 6000 })).downloadedFiles).toBe(2);
  });
});

describe('plan() and dry runs', () => {
  it('plan() reports exactly what the sync then does, and changes nothing', async () => {
    const f = await fixture();
    const ws = await tempDir();
    await writeTree(ws, { 'keep.txt': 'k', 'edit.txt': 'old', 'gone.txt': 'g', 'node_modules/x.js': 'ignored' });
    const sync = f.sync({ workspaceDir: ws });
    await sync.push();
    await writeFile(path.join(ws, 'edit.txt'), 'new content');
    await writeFile(path.join(ws, 'new.txt'), 'n');
    await rm(path.join(ws, 'gone.txt'));
    await mkdir(path.join(ws, 'link-target'));

    const log = recordCommands(f.client);
    const planned = await sync.plan('push');
    expect(log.count('PutObjectCommand') + log.count('DeleteObjectsCommand')).toBe(0);
    expect(planned.direction).toBe('push');
    expect(planned.transfers.map((t) => [t.path, t.reason]).sort()).toEqual([
      ['edit.txt', 'changed'],
      ['new.txt', 'new'],
    ]);
    expect(planned.transferBytes).toBe('new content'.length + 1);
    expect(planned.deletions).toEqual([{ path: 'gone.txt', key: 'ws/gone.txt', reason: 'deleted-locally', movesAside: false }]);
    expect(planned.unchangedFiles).toBe(1);
    expect(planned.refusedBy).toBeUndefined();
    expect(await listAllKeys(f.other, f.bucket)).toEqual(['ws/edit.txt', 'ws/gone.txt', 'ws/keep.txt']);

    const result = await sync.push();
    expect(result.plan).toEqual(planned);
    expect(result.uploadedFiles).toBe(2);
    expect(result.deletedFiles).toBe(1);
    expect(await listAllKeys(f.other, f.bucket)).toEqual(['ws/edit.txt', 'ws/keep.txt', 'ws/new.txt']);
  });

  it('a pull dry run does not create the workspace, download, delete, or clean temp files', async () => {
    const f = await fixture();
    await putObjects(f.other, f.bucket, { 'ws/a.txt': 'a', 'ws/sub/b.txt': 'b' });
    const base = await tempDir();
    const missing = path.join(base, 'not-yet');
    const dry = await f.sync({ workspaceDir: missing }).pull({ dryRun: true });
    expect(dry).toMatchObject({ success: true, dryRun: true, downloadedFiles: 0 });
    expect(dry.plan.transfers.map((t) => t.path).sort()).toEqual(['a.txt', 'sub/b.txt']);
    expect(await listEntries(base)).toEqual([]);

    const ws = await tempDir();
    await writeTree(ws, { 'local-only.txt': 'x', '.abc.s3ws-tmp': 'leftover' });
    const plan = await f.sync({ workspaceDir: ws }).plan('pull');
    expect(plan.deletions).toEqual([{ path: 'local-only.txt', key: 'ws/local-only.txt', reason: 'not-in-remote', movesAside: true }]);
    expect(await listEntries(ws)).toEqual(['.abc.s3ws-tmp', 'local-only.txt']);
  });
});

describe('unpushed work and overwriteLocalChanges', () => {
  it('kept files are reported in keptLocal; overwriteLocalChanges makes the bucket win', async () => {
    const f = await fixture();
    await putObjects(f.other, f.bucket, { 'ws/a.txt': 'remote a', 'ws/b.txt': 'remote b' });
    const ws = await tempDir();
    const sync = f.sync({ workspaceDir: ws });
    await sync.pull();
    await writeFile(path.join(ws, 'a.txt'), 'local edit');
    await writeFile(path.join(ws, 'mine.txt'), 'local new');
    await putObjects(f.other, f.bucket, { 'ws/a.txt': 'remote a v2' });

    const kept = await sync.pull();
    expect(kept.keptLocal).toEqual([
      { path: 'a.txt', reason: 'modified-locally' },
      { path: 'mine.txt', reason: 'created-locally' },
    ]);
    expect(kept.plan.keptLocal).toEqual(kept.keptLocal);
    expect((await readTree(ws))['a.txt']?.toString()).toBe('local edit');

    const wins = await sync.pull({ overwriteLocalChanges: true, maxDeletes: Infinity });
    expect(wins.keptLocal).toEqual([]);
    expect(await readTree(ws)).toEqual({ 'a.txt': Buffer.from('remote a v2'), 'b.txt': Buffer.from('remote b') });
  });
});
