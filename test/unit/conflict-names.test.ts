// Names of what a conflict policy keeps (src/core/conflict-names.ts): the
// bucket's conflicts area and the workspace's conflict copies.
import { describe, expect, it } from 'vitest';

import { conflictAreaPrefix, conflictCopyPath, freeConflictCopyPath, utcStamp, writerLabel } from '../../src/core/conflict-names.js';
import { storagePathProblem } from '../../src/core/paths.js';

const T = { timeout: 5_000 };
const now = new Date('2026-12-06T05:41:03.789Z');
const label = { now, who: 'ab12cd' };

describe('the conflicts area', () => {
  it('a UTC stamp in ISO basic format and a folder per sync under the library\'s own folder', T, () => {
    expect(utcStamp(now)).toBe('20261206T054103Z');
    expect(conflictAreaPrefix('users/u1/', now, '0f3a9c')).toBe('users/u1/.s3-workspace-sync/conflicts/20261206T054103Z-0f3a9c/');
    expect(conflictAreaPrefix('', now, '0f3a9c')).toBe('.s3-workspace-sync/conflicts/20261206T054103Z-0f3a9c/');
    expect(() => conflictAreaPrefix('', now, '../x')).toThrow(RangeError);
  });

  it('writerLabel: the first label of the host name, key-safe, 16 characters at most; else the fallback', T, () => {
    expect(writerLabel('ip-10-0-1-12.ec2.internal', 'x')).toBe('ip-10-0-1-12');
    expect(writerLabel('3f9c2b1a8e7d6c5b4a39', 'x')).toBe('3f9c2b1a8e7d6c5b');
    expect(writerLabel('my laptop (2)', 'x')).toBe('mylaptop2');
    expect(writerLabel('', 'a1b2c3')).toBe('a1b2c3');
    expect(writerLabel('ü.', '')).toBe('writer');
  });
});

describe('conflict copies', () => {
  const cases: Array<[string, string]> = [
    ['notes.md', 'notes (conflict 2026-12-06 054103 ab12cd).md'],
    ['docs/plan.v2.txt', 'docs/plan.v2 (conflict 2026-12-06 054103 ab12cd).txt'],
    ['Makefile', 'Makefile (conflict 2026-12-06 054103 ab12cd)'],
    ['.env', '.env (conflict 2026-12-06 054103 ab12cd)'],
    ['dir/.eslintrc.json', 'dir/.eslintrc (conflict 2026-12-06 054103 ab12cd).json'],
    ['trailing.', 'trailing. (conflict 2026-12-06 054103 ab12cd)'],
    ['a.with space', 'a.with space (conflict 2026-12-06 054103 ab12cd)'],
    ['naïve résumé.md', 'naïve résumé (conflict 2026-12-06 054103 ab12cd).md'],
  ];
  for (const [path, expected] of cases) {
    it(`${path} → ${expected}`, T, () => {
      expect(conflictCopyPath(path, label)).toBe(expected);
      expect(storagePathProblem(expected)).toBeUndefined();
    });
  }

  it('the second candidate and on carry a counter; freeConflictCopyPath never returns a taken name', T, () => {
    expect(conflictCopyPath('notes.md', label, 2)).toBe('notes (conflict 2026-12-06 054103 ab12cd 2).md');
    const taken = new Set(['notes (conflict 2026-12-06 054103 ab12cd).md', 'notes (conflict 2026-12-06 054103 ab12cd 2).md']);
    expect(freeConflictCopyPath('notes.md', label, (p) => taken.has(p))).toBe('notes (conflict 2026-12-06 054103 ab12cd 3).md');
    expect(freeConflictCopyPath('notes.md', label, () => true, '', 5)).toBeUndefined();
  });

  it('a long name is shortened (never mid code point) to fit a file name (255 bytes) and, with the prefix, a key (1,024 bytes)', T, () => {
    const long = `${'é'.repeat(200)}.md`; // 402 bytes
    const copy = conflictCopyPath(long, label)!;
    expect(Buffer.byteLength(copy)).toBeLessThanOrEqual(255);
    expect(copy.endsWith(' (conflict 2026-12-06 054103 ab12cd).md')).toBe(true);
    expect(copy.startsWith('é')).toBe(true);
    expect(storagePathProblem(copy)).toBeUndefined();
    const deep = `${'d/'.repeat(480)}file.txt`; // 968 bytes
    const inDeep = conflictCopyPath(deep, label, 1, 'p/')!;
    expect(Buffer.byteLength(`p/${inDeep}`)).toBeLessThanOrEqual(1024);
    expect(inDeep.endsWith('(conflict 2026-12-06 054103 ab12cd).txt')).toBe(true);
    // no room at all: no name
    expect(conflictCopyPath(`${'d/'.repeat(500)}f`, label, 1, 'p/')).toBeUndefined();
  });
});
