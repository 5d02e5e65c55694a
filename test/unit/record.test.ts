// The record stage (src/core/record.ts): apply(snapshot, plan, outcomes) is
// pure — what the next snapshot is after a sync, never more than is true.
import { describe, expect, it } from 'vitest';
import type { LocalFile, Snapshot, SnapshotEntry } from '../../src/core/model.js';
import type { Plan } from '../../src/core/plan.js';
import { apply, noOutcomes } from '../../src/core/record.js';

const hex = (c: string): string => c.repeat(32);
const FLOOR = 1_000_000; // the sync started here; files older than ~this are not racy
const OLD = FLOOR - 60_000;

const entry = (md5: string, mtimeMs = OLD, extra: Partial<SnapshotEntry> = {}): SnapshotEntry => ({ size: 3, mtimeMs, ctimeMs: mtimeMs, ino: 1, md5, etag: md5, ...extra });
const local = (path: string, mtimeMs = OLD): LocalFile => ({ path, size: 3, mtimeMs, ctimeMs: mtimeMs, ino: 1 });

function plan(unchanged: Array<{ path: string; md5: string; mtimeMs?: number }> = []): Plan {
  return {
    direction: 'pull',
    transfers: [],
    deletions: [],
    skipped: [],
    kept: [],
    blocked: [],
    unchanged: unchanged.map((u) => ({ path: u.path, md5: u.md5, etag: u.md5, local: local(u.path, u.mtimeMs) })),
    conflicts: [],
    bothChanged: [],
    transferBytes: 0,
  };
}

describe('record: apply(snapshot, plan, outcomes)', () => {
  it('a no-op sync changes nothing and copies nothing (undefined)', { timeout: 5_000 }, () => {
    const snap: Snapshot = new Map([['a', entry(hex('1'))]]);
    expect(apply(snap, plan([{ path: 'a', md5: hex('1') }]), noOutcomes(), FLOOR)).toBeUndefined();
  });

  it('records transferred and unchanged files, drops deleted paths, and leaves the input snapshot as it was', { timeout: 5_000 }, () => {
    const snap: Snapshot = new Map([
      ['kept', entry(hex('1'))],
      ['gone', entry(hex('2'))],
    ]);
    const before = JSON.stringify([...snap]);
    const outcomes = noOutcomes();
    outcomes.transferred.push({ path: 'new', entry: entry(hex('3')) });
    outcomes.deleted.push('gone', 'never-known');
    const next = apply(snap, plan([{ path: 'fresh-unchanged', md5: hex('4') }]), outcomes, FLOOR);
    expect(next && [...next.keys()].sort()).toEqual(['fresh-unchanged', 'kept', 'new']);
    expect(next?.get('new')?.md5).toBe(hex('3'));
    expect(next?.get('fresh-unchanged')).toEqual(entry(hex('4')));
    expect(JSON.stringify([...snap])).toBe(before);
  });

  it('an entry modified within the timestamp granularity of the sync is racy; an older one is not; a racy one stays racy', { timeout: 5_000 }, () => {
    const outcomes = noOutcomes();
    outcomes.transferred.push({ path: 'recent', entry: entry(hex('1'), FLOOR + 3) });
    outcomes.transferred.push({ path: 'old', entry: entry(hex('2')) });
    outcomes.transferred.push({ path: 'changed-while-uploading', entry: entry(hex('3'), OLD, { racy: true }) });
    const next = apply(new Map(), plan(), outcomes, FLOOR);
    expect(next?.get('recent')?.racy).toBe(true);
    expect(next?.get('old')?.racy).toBeUndefined();
    expect(next?.get('changed-while-uploading')?.racy).toBe(true);
  });

  it('re-recording an entry that became racy is a change (its stat no longer proves anything)', { timeout: 5_000 }, () => {
    const snap: Snapshot = new Map([['a', entry(hex('1'), FLOOR + 3)]]);
    const next = apply(snap, plan([{ path: 'a', md5: hex('1'), mtimeMs: FLOOR + 3 }]), noOutcomes(), FLOOR);
    expect(next?.get('a')?.racy).toBe(true);
  });
});
