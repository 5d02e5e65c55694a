// Listings of more than 1,000 objects (several ListObjectsV2 pages).
//
// Key names avoid a file name that extends a sibling directory's name (see
// test/helpers/s3.ts: s3rver can drop such keys at a page boundary): every
// file lives one level down in `dNN/`, and no file sits next to those dirs.
import { describe, expect, it } from 'vitest';

import { recordCommands } from '../helpers/commands.js';
import { putObjects } from '../helpers/s3.js';
import { fixture, tempDir } from '../helpers/sync-fixture.js';
import { readTree } from '../helpers/tree.js';

const COUNT = 1050;

describe('pagination', () => {
  it(`pull downloads all ${COUNT} objects of a multi-page listing; a second pull and a push do nothing`, async () => {
    const f = await fixture();
    const objects: Record<string, string> = {};
    for (let i = 0; i < COUNT; i++) {
      objects[`ws/d${String(i % 10).padStart(2, '0')}/f${String(i).padStart(4, '0')}.txt`] = `#${i}`;
    }
    await putObjects(f.other, f.bucket, objects, { concurrency: 32 });

    const ws = await tempDir();
    const sync = f.sync({ workspaceDir: ws });
    const log = recordCommands(f.client);
    const result = await sync.pull();
    expect(result.success).toBe(true);
    expect(result.failedFiles).toEqual([]);
    expect(result.downloadedFiles).toBe(COUNT);
    expect(log.count('ListObjectsV2Command')).toBeGreaterThanOrEqual(2); // really paginated
    const listCalls = log.calls.filter((c) => c.name === 'ListObjectsV2Command');
    expect(listCalls[0]?.input.ContinuationToken).toBeUndefined();
    expect(listCalls[1]?.input.ContinuationToken).toEqual(expect.any(String));

    const local = await readTree(ws);
    expect(Object.keys(local)).toHaveLength(COUNT);
    for (const [key, body] of Object.entries(objects)) {
      expect(local[key.slice('ws/'.length)]?.toString(), key).toBe(body);
    }

    log.reset();
    expect(await sync.pull()).toMatchObject({ success: true, downloadedFiles: 0, deletedFiles: 0 });
    expect(log.count('GetObjectCommand')).toBe(0);
    expect(await sync.push()).toMatchObject({ success: true, uploadedFiles: 0, deletedFiles: 0 });
    expect(log.count('PutObjectCommand')).toBe(0);
  });
});
