// Whether the server enforces conditional writes, and requireConditionalWrites,
// against s3rver — which ignores If-None-Match / If-Match (a documented s3rver
// gap: see test/helpers/s3.ts), so it answers 'ignored' here. The 'enforced'
// answer is covered on the in-memory store (test/pipeline) and the strict
// S3 double (test/contract).
import { describe, expect, it } from 'vitest';

import { listAllKeys } from '../helpers/s3.js';
import { fixture, tempDir } from '../helpers/sync-fixture.js';
import { writeTree } from '../helpers/tree.js';

describe('conditional writes (s3rver ignores them)', () => {
  it("checkConditionalWrites() answers 'ignored' and leaves no scratch object", { timeout: 20_000 }, async () => {
    const f = await fixture();
    const sync = f.sync({ workspaceDir: await tempDir() });
    expect(await sync.checkConditionalWrites()).toBe('ignored');
    expect(await listAllKeys(f.other, f.bucket)).toEqual([]);
  });

  it('requireConditionalWrites: a push that would write refuses before writing anything; a no-op push needs no check', { timeout: 20_000 }, async () => {
    const f = await fixture();
    const ws = await tempDir();
    await writeTree(ws, { 'a.txt': 'a', 'b.txt': 'b' });
    const strict = f.sync({ workspaceDir: ws, requireConditionalWrites: true });
    const error = await strict.push().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toMatchObject({ name: 'SyncError', code: 'CONDITIONAL_WRITES_UNSUPPORTED', details: { support: 'ignored' } });
    expect((await listAllKeys(f.other, f.bucket)).filter((k) => !k.includes('.s3-workspace-sync/'))).toEqual([]);
    // pushed by an instance without the requirement, then nothing to write: no refusal
    expect((await f.sync({ workspaceDir: ws }).push()).success).toBe(true);
    const again = f.sync({ workspaceDir: ws, requireConditionalWrites: true });
    expect((await again.push()).success).toBe(true);
  });
});
