// The prefix is normalised to end in exactly one '/': `users/u1` and
// `users/u1/` are the same workspace, and neither ever touches `users/u10/…`.
import { unlink } from 'node:fs/promises';
import path from 'node:path';

import { describe, expect, it } from 'vitest';

import { ConfigError } from '../../src/index.js';
import { recordCommands } from '../helpers/commands.js';
import { getObjectBytes, listAllKeys, putObjects } from '../helpers/s3.js';
import { fixture, tempDir } from '../helpers/sync-fixture.js';
import { readTree, writeTree } from '../helpers/tree.js';

const NEIGHBOURS = {
  'users/u10/secret.txt': 'u10 secret',
  'users/u10/deep/x.txt': 'u10 x',
  'users/u1x.txt': 'sibling key',
  'users/u1.txt': 'sibling key 2',
};

describe.each(['users/u1', 'users/u1/', '/users/u1', 'users/u1//'])('prefix %j', (prefix) => {
  it('pull downloads only users/u1/…, push writes users/u1/<path>, and users/u10/… is never read, written or deleted', async () => {
    const f = await fixture();
    await putObjects(f.other, f.bucket, { ...NEIGHBOURS, 'users/u1/a.txt': 'a', 'users/u1/d/b.txt': 'b' });

    const ws = await tempDir();
    const sync = f.sync({ workspaceDir: ws, prefix });
    const log = recordCommands(f.client);
    const pulled = await sync.pull();
    expect(pulled).toMatchObject({ success: true, downloadedFiles: 2, skippedFiles: [] });
    expect(Object.keys(await readTree(ws))).toEqual(['a.txt', 'd/b.txt']);
    // the prefix, then (no manifest yet) the library's own folder: did a push run meanwhile?
    expect(log.calls.filter((c) => c.name === 'ListObjectsV2Command').map((c) => c.input.Prefix)).toEqual(['users/u1/', 'users/u1/.s3-workspace-sync/']);
    expect(log.keys('GetObjectCommand').sort()).toEqual(['users/u1/a.txt', 'users/u1/d/b.txt']);

    await writeTree(ws, { 'new.txt': 'new' });
    await unlink(path.join(ws, 'a.txt'));
    const pushed = await sync.push();
    expect(pushed).toMatchObject({ success: true, uploadedFiles: 1, deletedFiles: 1 });

    expect(await listAllKeys(f.other, f.bucket)).toEqual([
      'users/u1.txt',
      'users/u1/d/b.txt',
      'users/u1/new.txt',
      'users/u10/deep/x.txt',
      'users/u10/secret.txt',
      'users/u1x.txt',
    ]);
    for (const [key, body] of Object.entries(NEIGHBOURS)) {
      expect((await getObjectBytes(f.other, f.bucket, key)).toString()).toBe(body);
    }
  });
});

describe('prefix', () => {
  it('a fresh-instance pull with prefix users/u1 mirrors only users/u1/ (deletes nothing remote, keeps u10 out)', async () => {
    const f = await fixture();
    await putObjects(f.other, f.bucket, { ...NEIGHBOURS, 'users/u1/only.txt': 'only' });
    const ws = await tempDir();
    await writeTree(ws, { 'secret.txt': 'local file with the same name as a u10 object' });
    const result = await f.sync({ workspaceDir: ws, prefix: 'users/u1' }).pull();
    expect(result).toMatchObject({ success: true, downloadedFiles: 1, deletedFiles: 1 });
    expect(Object.keys(await readTree(ws))).toEqual(['only.txt']);
    expect(await listAllKeys(f.other, f.bucket, 'users/u10')).toEqual(['users/u10/deep/x.txt', 'users/u10/secret.txt']);
  });

  it('a prefix with a .. segment is refused with ConfigError', async () => {
    const f = await fixture();
    const ws = await tempDir();
    expect(() => f.sync({ workspaceDir: ws, prefix: 'users/../u1' })).toThrow(ConfigError);
  });
});
