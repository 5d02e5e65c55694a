// The persisted snapshot: a new process on the same workspace (a Lambda cold
// start on a warm /tmp, a restarted container) continues where the last one
// stopped — no listing to push nothing, no re-hash of unchanged files — and a
// state file that cannot be trusted (corrupt, foreign, for a replaced
// directory) is ignored with a warning, never half-used.
import { mkdir, readFile, rm, utimes, writeFile } from 'node:fs/promises';
import path from 'node:path';

import { describe, expect, it } from 'vitest';

import { ConfigError, GuardError, S3WorkspaceSync, silentLogger, type S3WorkspaceSyncOptions, type SyncLogger } from '../../src/index.js';
import { recordCommands } from '../helpers/commands.js';
import { listAllKeys, makeTestClient, putObjects } from '../helpers/s3.js';
import { fixture, listEntries, recoveredFiles, tempDir } from '../helpers/sync-fixture.js';
import { readTree, writeTree } from '../helpers/tree.js';
import { readStateOnDisk, stateFileNames } from '../helpers/state-doc.js';

const STATE_DIR = '.s3-workspace-sync';

const FILES: Record<string, string> = {
  'a.txt': 'alpha',
  'src/b.ts': 'export const b = 1;\n',
  'src/deep/c.json': '{"c":3}',
  'empty': '',
};

/** Give every file an mtime well in the past, so no entry is racy. */
async function ageFiles(root: string, files: Iterable<string>): Promise<void> {
  const past = new Date(Date.now() - 3_600_000);
  for (const rel of files) await utimes(path.join(root, rel), past, past);
}

function warnings(): { logger: SyncLogger; lines: string[] } {
  const lines: string[] = [];
  const logger: SyncLogger = { debug: () => undefined, info: () => undefined, warn: (m) => lines.push(m), error: (m) => lines.push(m) };
  return { logger, lines };
}

async function stateFiles(ws: string): Promise<string[]> {
  return stateFileNames(path.join(ws, STATE_DIR));
}

describe('persisted state', () => {
  it('a new instance on an unchanged workspace pushes with one request (the identity check) and hashes nothing; the next push makes none', { timeout: 20_000 }, async () => {
    const f = await fixture();
    const ws = await tempDir();
    await writeTree(ws, FILES);
    await ageFiles(ws, Object.keys(FILES));
    const first = await f.sync({ workspaceDir: ws }).push();
    expect(first).toMatchObject({ success: true, uploadedFiles: 4 });
    expect(await stateFiles(ws)).toHaveLength(1);

    const log = recordCommands(f.client);
    const sync = f.sync({ workspaceDir: ws });
    const second = await sync.push();
    expect(second).toMatchObject({ success: true, uploadedFiles: 0, deletedFiles: 0, hashedFiles: 0 });
    // The loaded state is checked against the bucket once: a HEAD of the workspace identity object.
    expect(log.calls.map((c) => [c.name, c.input.Key])).toEqual([['HeadObjectCommand', 'ws/.s3-workspace-sync/workspace-id']]);
    log.reset();
    expect(await sync.push()).toMatchObject({ success: true, uploadedFiles: 0, hashedFiles: 0 });
    expect(log.calls).toEqual([]);
  });

  it('a new instance uploads and deletes exactly the local changes, without listing, hashing only the changed file', { timeout: 20_000 }, async () => {
    const f = await fixture();
    const ws = await tempDir();
    await writeTree(ws, FILES);
    await ageFiles(ws, Object.keys(FILES));
    await f.sync({ workspaceDir: ws }).push();

    await writeFile(path.join(ws, 'a.txt'), 'ALPHA'); // same size, new content
    await writeFile(path.join(ws, 'new.txt'), 'new');
    await rm(path.join(ws, 'src/deep/c.json'));
    const log = recordCommands(f.client);
    const result = await f.sync({ workspaceDir: ws }).push();
    expect(result).toMatchObject({ success: true, uploadedFiles: 2, deletedFiles: 1, hashedFiles: 1 });
    expect(log.count('ListObjectsV2Command')).toBe(0);
    expect(log.keys('PutObjectCommand').sort()).toEqual(['ws/a.txt', 'ws/new.txt']);
    expect((await listAllKeys(f.other, f.bucket, 'ws/')).sort()).toEqual(['ws/a.txt', 'ws/empty', 'ws/new.txt', 'ws/src/b.ts']);
  });

  it('a new instance pulling keeps local work made after the last sync (it is not a fresh mirror)', { timeout: 20_000 }, async () => {
    const f = await fixture();
    await putObjects(f.other, f.bucket, { 'ws/a.txt': 'remote a', 'ws/b.txt': 'remote b' });
    const ws = await tempDir();
    await f.sync({ workspaceDir: ws }).pull();
    await writeFile(path.join(ws, 'unpushed.txt'), 'agent work');
    await writeFile(path.join(ws, 'b.txt'), 'edited by the agent');
    await putObjects(f.other, f.bucket, { 'ws/a.txt': 'remote a v2' });

    const result = await f.sync({ workspaceDir: ws }).pull();
    expect(result).toMatchObject({ success: true, downloadedFiles: 1, deletedFiles: 0 });
    expect(result.keptLocal.map((k) => k.path).sort()).toEqual(['b.txt', 'unpushed.txt']);
    expect(await readTree(ws)).toEqual({
      'a.txt': Buffer.from('remote a v2'),
      'b.txt': Buffer.from('edited by the agent'),
      'unpushed.txt': Buffer.from('agent work'),
    });
  });

  it('persistState: false writes no state and every new instance starts fresh (mirrors the bucket)', { timeout: 20_000 }, async () => {
    const f = await fixture();
    await putObjects(f.other, f.bucket, { 'ws/a.txt': 'remote a' });
    const ws = await tempDir();
    await f.sync({ workspaceDir: ws, persistState: false }).pull();
    expect(await listEntries(ws, { includeState: true })).toEqual(['a.txt']);
    await writeFile(path.join(ws, 'local-only.txt'), 'x');
    const result = await f.sync({ workspaceDir: ws, persistState: false }).pull();
    // fresh: the workspace mirrors the bucket, and the unproven local file is moved aside, not lost
    expect(result).toMatchObject({ success: true, deletedFiles: 1 });
    expect(result.movedAside.map((m) => m.path)).toEqual(['local-only.txt']);
    expect(await listEntries(ws)).toEqual(['a.txt']);
    expect(await recoveredFiles(ws)).toEqual({ 'local-only.txt': Buffer.from('x') });
    expect(await stateFiles(ws)).toEqual([]);
  });

  it.each([
    ['truncated JSON', (text: string) => text.slice(0, Math.floor(text.length / 2))],
    ['not JSON at all', () => '\u0000\u0001garbage'],
    ['another format version', (text: string) => text.replace('"version":3', '"version":99')],
    ['an entry with a bad MD5', (text: string) => text.replace(/("a\.txt":\[[^\]]*?)"[0-9a-f]{32}"/, '$1"not-an-md5"')],
    ['written for another endpoint (same bucket and prefix)', (text: string) => text.replace(/"endpoint":"[^"]+"/, '"endpoint":"https://elsewhere.example"')],
    ['an entry with a hostile path', (text: string) => text.replace('"a.txt"', '"../../etc/passwd"')],
    ['written for another bucket', (text: string) => text.replace(/"bucket":"[^"]+"/, '"bucket":"someone-else"')],
    ['format version 1 (no origin)', (text: string) => text.replace('"version":3', '"version":1')],
  ])('a state file with %s is ignored with a warning, then rewritten', { timeout: 20_000 }, async (_label, corrupt) => {
    const f = await fixture();
    const ws = await tempDir();
    await writeTree(ws, FILES);
    await f.sync({ workspaceDir: ws }).push();
    const [name] = await stateFiles(ws);
    const file = path.join(ws, STATE_DIR, name!);
    await writeFile(file, corrupt(await readFile(file, 'utf8')));

    const { logger, lines } = warnings();
    const log = recordCommands(f.client);
    const result = await f.sync({ workspaceDir: ws, logger }).push();
    // Not trusted: the instance is fresh, so it lists, hashes every same-size file and deletes nothing.
    expect(result).toMatchObject({ success: true, uploadedFiles: 0, deletedFiles: 0, hashedFiles: 4 });
    expect(log.count('ListObjectsV2Command')).toBe(1);
    expect(lines.some((l) => l.includes('Ignoring the sync state file'))).toBe(true);
    expect(JSON.parse(await readFile(file, 'utf8'))).toMatchObject({ version: 3, synced: true });
  });

  it('a state file kept outside a workspace that was deleted and re-created is not trusted: nothing is deleted remotely', { timeout: 20_000 }, async () => {
    const f = await fixture();
    const ws = await tempDir();
    const stateDir = path.join(await tempDir(), 'state');
    await writeTree(ws, FILES);
    await ageFiles(ws, Object.keys(FILES));
    await f.sync({ workspaceDir: ws, stateDir }).push();
    expect(await listEntries(ws, { includeState: true })).not.toContain(`${STATE_DIR}/`);

    // The directory is replaced (a new volume, an empty mount) holding one file.
    await rm(ws, { recursive: true });
    await mkdir(ws);
    await writeTree(ws, { 'a.txt': 'alpha' });
    const { logger, lines } = warnings();
    const result = await f.sync({ workspaceDir: ws, stateDir, logger }).push();
    expect(result).toMatchObject({ success: true, deletedFiles: 0 });
    expect(lines.some((l) => l.includes('replaced'))).toBe(true);
    expect((await listAllKeys(f.other, f.bucket, 'ws/')).length).toBe(4);
  });

  it('the deletion guard still holds for a new instance: most files gone locally is refused', { timeout: 20_000 }, async () => {
    const f = await fixture();
    const ws = await tempDir();
    const files = Object.fromEntries(Array.from({ length: 20 }, (_, i) => [`f${i}.txt`, `file ${i}`]));
    await writeTree(ws, files);
    await f.sync({ workspaceDir: ws }).push();
    for (let i = 0; i < 15; i++) await rm(path.join(ws, `f${i}.txt`));
    await expect(f.sync({ workspaceDir: ws }).push()).rejects.toBeInstanceOf(GuardError);
    expect((await listAllKeys(f.other, f.bucket, 'ws/')).length).toBe(20);
  });

  it('a file modified just before its sync is recorded as racy and re-hashed by the next process; an old one is not', { timeout: 20_000 }, async () => {
    const f = await fixture();
    const ws = await tempDir();
    await writeTree(ws, { 'old.txt': 'old', 'fresh.txt': 'fresh' });
    await ageFiles(ws, ['old.txt']);
    await f.sync({ workspaceDir: ws }).push(); // fresh.txt was written milliseconds ago
    const [name] = await stateFiles(ws);
    const doc = await readStateOnDisk(path.join(ws, STATE_DIR), name!);
    expect(doc.entries['fresh.txt']?.[6]).toBe(1);
    expect(doc.entries['old.txt']?.[6]).toBe(0);

    const log = recordCommands(f.client);
    const result = await f.sync({ workspaceDir: ws }).push();
    expect(result).toMatchObject({ success: true, uploadedFiles: 0, hashedFiles: 1 });
    expect(log.calls.map((c) => c.name)).toEqual(['HeadObjectCommand']); // the identity check of the loaded state
  });

  it('files pulled right after another instance pushed them (restored mtimes within the racy window) are not re-hashed by the next process', { timeout: 20_000 }, async () => {
    // The demo's step 4 -> 5: an edit pushed by one instance and pulled at once by another.
    const f = await fixture();
    const src = await tempDir();
    const ws = await tempDir();
    await writeTree(src, { 'base.txt': 'base' });
    await f.sync({ workspaceDir: src }).push();
    await f.sync({ workspaceDir: ws }).pull();
    const editor = f.sync({ workspaceDir: src });
    await writeFile(path.join(src, 'edited-now.txt'), 'written a moment ago');
    await writeFile(path.join(src, 'clock-ahead.txt'), 'written on a machine whose clock runs 1 s ahead');
    const ahead = new Date(Date.now() + 1000);
    await utimes(path.join(src, 'clock-ahead.txt'), ahead, ahead);
    await editor.push();
    const pulled = await f.sync({ workspaceDir: ws }).pull();
    expect(pulled).toMatchObject({ success: true, downloadedFiles: 2 });
    // Their mtimes were restored from the objects, but their ctimes are the download's: a later write would move the mtime.
    const [name] = await stateFiles(ws);
    const doc = await readStateOnDisk(path.join(ws, STATE_DIR), name!);
    expect(doc.entries['edited-now.txt']?.[6]).toBe(0);
    expect(doc.entries['clock-ahead.txt']?.[6]).toBe(0);
    const log = recordCommands(f.client);
    const next = await f.sync({ workspaceDir: ws }).push();
    expect(next).toMatchObject({ success: true, uploadedFiles: 0, hashedFiles: 0 });
    expect(log.calls.map((c) => c.name)).toEqual(['HeadObjectCommand']);
    // …and a real edit afterwards is still seen
    await writeFile(path.join(ws, 'edited-now.txt'), 'written a moment agO'); // same size: only the mtime tells
    expect(await f.sync({ workspaceDir: ws }).push()).toMatchObject({ success: true, uploadedFiles: 1 });
  });

  it('a state file that cannot be written does not fail the sync; it is reported as a warning', { timeout: 20_000 }, async () => {
    const f = await fixture();
    const ws = await tempDir();
    const blocker = path.join(await tempDir(), 'not-a-dir');
    await writeFile(blocker, 'a file where the state directory should be');
    await writeTree(ws, FILES);
    const { logger, lines } = warnings();
    const result = await f.sync({ workspaceDir: ws, stateDir: blocker, logger }).push();
    expect(result).toMatchObject({ success: true, uploadedFiles: 4 });
    expect(lines.some((l) => l.includes('Could not save the sync state'))).toBe(true);
  });

  it('dry runs and plan() never write state', { timeout: 20_000 }, async () => {
    const f = await fixture();
    const ws = await tempDir();
    await writeTree(ws, FILES);
    await f.sync({ workspaceDir: ws }).plan('push');
    await f.sync({ workspaceDir: ws }).push({ dryRun: true });
    expect(await stateFiles(ws)).toEqual([]);
  });

  it('stateDir inside the workspace (outside .s3-workspace-sync/) is refused: it would be synced', () => {
    const ws = '/tmp/some-ws';
    expect(() => fixtureless({ workspaceDir: ws, stateDir: '/tmp/some-ws/state' })).toThrow(ConfigError);
    expect(() => fixtureless({ workspaceDir: ws, stateDir: '/tmp/some-ws' })).toThrow(ConfigError);
    expect(() => fixtureless({ workspaceDir: ws, stateDir: '/tmp/some-ws/.s3-workspace-sync/custom' })).not.toThrow();
    expect(() => fixtureless({ workspaceDir: ws, stateDir: '/tmp/elsewhere' })).not.toThrow();
    expect(() => fixtureless({ workspaceDir: ws, persistState: 'yes' as unknown as boolean })).toThrow(ConfigError);
  });
});

function fixtureless(options: Partial<S3WorkspaceSyncOptions> & { workspaceDir: string }): S3WorkspaceSync {
  const client = makeTestClient();
  try {
    return new S3WorkspaceSync({ bucket: 'bkt', prefix: 'p/', s3Client: client, logger: silentLogger, ...options });
  } finally {
    client.destroy();
  }
}
