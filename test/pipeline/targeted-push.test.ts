// push({ changedPaths }): a push that looks only at the paths it is told
// about (watch mode's push). Whole pipeline on real temp directories against
// the strict in-memory store, so request counts are exact.
import { mkdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it, onTestFinished } from 'vitest';
import { ConfigError, S3WorkspaceSync, silentLogger } from '../../src/index.js';
import { MemoryObjectStore } from '../../src/storage/MemoryObjectStore.js';
import { tempDir } from '../helpers/sync-fixture.js';

const PREFIX = 'ws/';
const own = (keys: string[]): string[] => keys.filter((k) => !k.includes('.s3-workspace-sync/'));

async function write(ws: string, files: Record<string, string>): Promise<void> {
  for (const [p, body] of Object.entries(files)) {
    await mkdir(path.dirname(path.join(ws, p)), { recursive: true });
    await writeFile(path.join(ws, p), body);
  }
}

async function setup(files: Record<string, string>) {
  const store = new MemoryObjectStore({ minPartSize: 1024 });
  const ws = await tempDir();
  await write(ws, files);
  const make = (): S3WorkspaceSync => {
    const sync = new S3WorkspaceSync({ bucket: 'mem', prefix: PREFIX, workspaceDir: ws, logger: silentLogger }, { store: () => store });
    onTestFinished(() => sync.destroy());
    return sync;
  };
  const body = async (key: string): Promise<string | undefined> => store.inspect(key)?.body.toString('utf8');
  return { store, ws, make, body };
}

describe('push({ changedPaths })', () => {
  it('uploads and deletes under the named paths only; an unnamed change waits for a full push', { timeout: 10_000 }, async () => {
    const { store, ws, make, body } = await setup({ 'a.txt': 'a1', 'c.txt': 'c1', 'd.txt': 'd1', 'dir/x.txt': 'x1', 'dir/sub/y.txt': 'y1', 'other/z.txt': 'z1' });
    const sync = make();
    expect((await sync.push()).uploadedFiles).toBe(6);
    await write(ws, { 'a.txt': 'a2', 'd.txt': 'd2 (not named)', 'new/b.txt': 'b1', 'dir/sub/y.txt': 'y2' });
    await rm(path.join(ws, 'c.txt'));
    await rm(path.join(ws, 'dir/x.txt'));

    store.resetRequestCounts();
    const result = await sync.push({ changedPaths: ['a.txt', 'c.txt', 'new/', 'dir'] });
    expect(result.success).toBe(true);
    expect(result.plan.transfers.map((t) => t.path).sort()).toEqual(['a.txt', 'dir/sub/y.txt', 'new/b.txt']);
    expect(result.plan.deletions.map((d) => d.path).sort()).toEqual(['c.txt', 'dir/x.txt']);
    // only what was looked at: other/z.txt and d.txt were neither compared nor hashed
    // (a.txt and dir/sub/y.txt were hashed while planning; the new file is hashed as it uploads)
    expect(result.plan.unchangedFiles).toBe(0);
    expect(result.hashedFiles).toBe(2);
    expect(await body('ws/a.txt')).toBe('a2');
    expect(await body('ws/d.txt')).toBe('d1');
    expect(own(store.keys(PREFIX))).toEqual(['ws/a.txt', 'ws/d.txt', 'ws/dir/sub/y.txt', 'ws/new/b.txt', 'ws/other/z.txt']);
    expect(store.requestCount('list')).toBe(0);

    // the full push finds the change nobody named; the targeted push kept the rest of the snapshot
    const full = await sync.push();
    expect(full.plan.transfers.map((t) => t.path)).toEqual(['d.txt']);
    expect(full.plan.deletions).toEqual([]);
    expect(full.plan.unchangedFiles).toBe(4);
    expect(await body('ws/d.txt')).toBe('d2 (not named)');
  });

  it('a named directory that was deleted deletes its objects (only the versions last synced)', { timeout: 10_000 }, async () => {
    const { store, ws, make } = await setup({ 'keep.txt': 'k', 'gone/a.txt': 'a', 'gone/deep/b.txt': 'b', 'gone2.txt': 'not under gone/' });
    const sync = make();
    await sync.push();
    await rm(path.join(ws, 'gone'), { recursive: true });
    const result = await sync.push({ changedPaths: ['gone'] });
    expect(result.plan.deletions.map((d) => d.path).sort()).toEqual(['gone/a.txt', 'gone/deep/b.txt']);
    expect(own(store.keys(PREFIX))).toEqual(['ws/gone2.txt', 'ws/keep.txt']);
  });

  it('a named path under a directory that became a symlink deletes nothing (as the full scan would)', { timeout: 10_000 }, async () => {
    const { store, ws, make } = await setup({ 'd/a.txt': 'a', 'elsewhere/a.txt': 'a' });
    const sync = make();
    await sync.push();
    await rm(path.join(ws, 'd'), { recursive: true });
    await symlink(path.join(ws, 'elsewhere'), path.join(ws, 'd'));
    const result = await sync.push({ changedPaths: ['d/a.txt'] });
    expect(result.plan.deletions).toEqual([]);
    expect(result.plan.transfers).toEqual([]);
    expect(result.skippedFiles).toEqual(expect.arrayContaining([{ path: 'd', reason: 'symlink' }]));
    expect(own(store.keys(PREFIX))).toContain('ws/d/a.txt');
  });

  it('ignored paths stay ignored; the temp files of downloads are never pushed', { timeout: 10_000 }, async () => {
    const { store, ws, make } = await setup({ 'a.txt': 'a', '.syncignore': 'secret.txt\nlogs/\n' });
    const sync = make();
    await sync.push();
    await write(ws, { 'secret.txt': 's', 'logs/x.log': 'x', 'b.txt.s3ws-tmp': 'partial' });
    const result = await sync.push({ changedPaths: ['secret.txt', 'logs/x.log', 'logs', 'b.txt.s3ws-tmp'] });
    expect(result.plan.transfers).toEqual([]);
    expect(own(store.keys(PREFIX))).toEqual(['ws/.syncignore', 'ws/a.txt']);
  });

  it('ignored without a snapshot (a first push looks at everything), and when .syncignore changed', { timeout: 10_000 }, async () => {
    const { ws, make } = await setup({ 'a.txt': 'a', 'b.txt': 'b', 'skip.txt': 's', '.syncignore': 'skip.txt\n' });
    const sync = make();
    const first = await sync.push({ changedPaths: ['a.txt'] });
    expect(first.plan.transfers.map((t) => t.path).sort()).toEqual(['.syncignore', 'a.txt', 'b.txt']);
    await write(ws, { '.syncignore': '', 'b.txt': 'b2' });
    const rules = await sync.push({ changedPaths: ['.syncignore'] });
    // the rules changed: everything is looked at again, so the file no longer ignored goes up, and b.txt too
    expect(rules.plan.transfers.map((t) => t.path).sort()).toEqual(['.syncignore', 'b.txt', 'skip.txt']);
  });

  it('refuses changedPaths on pull, and paths that are not workspace paths', { timeout: 10_000 }, async () => {
    const { make } = await setup({ 'a.txt': 'a' });
    const sync = make();
    await expect(sync.pull({ changedPaths: ['a.txt'] } as never)).rejects.toBeInstanceOf(ConfigError);
    await expect(sync.push({ changedPaths: ['../etc/passwd'] })).rejects.toBeInstanceOf(ConfigError);
    await expect(sync.push({ changedPaths: 'a.txt' as never })).rejects.toBeInstanceOf(ConfigError);
  });

  it('a file created where a named directory was, and a directory where a file was', { timeout: 10_000 }, async () => {
    const { store, ws, make, body } = await setup({ 'p/inner.txt': 'i', 'q': 'q-file' });
    const sync = make();
    await sync.push();
    await rm(path.join(ws, 'p'), { recursive: true });
    await writeFile(path.join(ws, 'p'), 'now a file');
    await rm(path.join(ws, 'q'));
    await write(ws, { 'q/inside.txt': 'now a directory' });
    const result = await sync.push({ changedPaths: ['p', 'q'] });
    expect(result.success).toBe(true);
    expect(own(store.keys(PREFIX))).toEqual(['ws/p', 'ws/q/inside.txt']);
    expect(await body('ws/p')).toBe('now a file');
    expect(await readFile(path.join(ws, 'q/inside.txt'), 'utf8')).toBe('now a directory');
  });
});

describe('the manifest after small pushes (patched from its bytes, not re-encoded)', () => {
  it('names exactly what the bucket holds after pushes that add, change and delete, from this instance and a new one', { timeout: 10_000 }, async () => {
    const { decodeManifest } = await import('../../src/core/manifest.js');
    const { store, ws, make } = await setup({ 'a.txt': 'a', 'b.txt': 'b', 'dir/c.txt': 'c', 'é "quoted", name.txt': 'q' });
    const check = (): void => {
      const m = decodeManifest(store.bodyOf('ws/.s3-workspace-sync/manifest.json')!);
      const objects = own(store.keys(PREFIX));
      expect([...m.files.keys()].map((p) => PREFIX + p).sort()).toEqual(objects);
      for (const key of objects) expect(m.files.get(key.slice(PREFIX.length))?.etag).toBe(store.inspect(key)?.etag);
    };
    const first = make();
    await first.push();
    check();
    await write(ws, { 'a.txt': 'a2', 'new.txt': 'n' });
    await rm(path.join(ws, 'b.txt'));
    await rm(path.join(ws, 'é "quoted", name.txt'));
    await first.push({ changedPaths: ['a.txt', 'new.txt', 'b.txt', 'é "quoted", name.txt'] });
    check();
    first.destroy();
    // a new instance starts from the state file's copy of the manifest
    const second = make();
    await write(ws, { 'dir/c.txt': 'c2' });
    await rm(path.join(ws, 'a.txt'));
    const result = await second.push();
    expect(result.success).toBe(true);
    check();
    expect(decodeManifest(store.bodyOf('ws/.s3-workspace-sync/manifest.json')!).generation).toBe(3);
  });
});
