// Checks the directory-tree helpers used by the sync tests.
import { describe, expect, onTestFinished, test } from 'vitest';

import { expectSameTree, makeTempDir, readTree, writeTree } from '../helpers/tree.js';

describe('tree helpers', () => {
  test('writeTree / readTree / expectSameTree', async () => {
    const a = await makeTempDir();
    const b = await makeTempDir();
    onTestFinished(a.cleanup);
    onTestFinished(b.cleanup);

    const files = { 'z.txt': 'z', 'dir/nested/deep.bin': Buffer.from([0, 255]), 'a.txt': 'a' };
    await writeTree(a.dir, files);
    await writeTree(b.dir, files);
    expect(Object.keys(await readTree(a.dir))).toEqual(['a.txt', 'dir/nested/deep.bin', 'z.txt']);
    expect(await readTree(a.dir, { ignore: (rel) => rel.startsWith('dir/') })).toEqual({
      'a.txt': Buffer.from('a'),
      'z.txt': Buffer.from('z'),
    });
    await expectSameTree(a.dir, b.dir);

    await writeTree(b.dir, { 'dir/nested/deep.bin': Buffer.from([0, 254]), 'extra.txt': '' });
    await expect(expectSameTree(a.dir, b.dir)).rejects.toThrow(
      /only in .*\n {2}\+ extra\.txt\ncontent differs \(1\):\n {2}~ dir\/nested\/deep\.bin: first difference at byte 1/,
    );
    await expect(writeTree(a.dir, { '../escape': 'x' })).rejects.toThrow(/not a plain relative/);
  });
});
