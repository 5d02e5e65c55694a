// What a ConflictError says: what this instance had on record for the path,
// and what the bucket holds now. A push without saved state meets objects it
// listed but never synced: it must not claim it "saw no object".
import { describe, expect, it } from 'vitest';

import { ConflictError } from '../../src/errors.js';

const QUICK = { timeout: 5_000 };

describe('ConflictError message', () => {
  it('an upload with no version on record (a push without saved state, or a create that lost): says so, not "saw no object"', QUICK, () => {
    const e = new ConflictError({ path: 'a.txt', key: 'ws/a.txt', action: 'upload', expectedEtag: null, currentEtag: 'e2', resolution: 'reported' });
    expect(e.code).toBe('CONFLICT');
    expect(e.message).toBe(
      'Conflict: "a.txt" was not uploaded: this instance has no version of it on record (no object when it looked, or no saved state to compare with); ' +
        "the bucket now holds version e2 (another writer). Nothing was changed; sync again with conflictPolicy 'keep-local', 'keep-remote' or 'keep-both' to resolve it (the version replaced is saved, never lost).",
    );
    expect(e.message).not.toMatch(/saw no object/);
  });

  it('an upload or delete over a version last seen; a download over local changes', QUICK, () => {
    expect(new ConflictError({ path: 'b', key: 'ws/b', action: 'upload', expectedEtag: 'e1', currentEtag: 'e2', resolution: 'reported' }).message).toMatch(
      /^Conflict: "b" was not uploaded: this instance last saw version e1; the bucket now holds version e2 \(another writer\)\./,
    );
    expect(new ConflictError({ path: 'c', key: 'ws/c', action: 'delete', expectedEtag: 'e1', currentEtag: null, resolution: 'reported' }).message).toMatch(
      /^Conflict: "c" was not deleted: this instance last saw version e1; the bucket has no object there now \(another writer\)\./,
    );
    expect(new ConflictError({ path: 'd', key: 'ws/d', action: 'download', expectedEtag: null, currentEtag: undefined, resolution: 'reported' }).message).toMatch(
      /^Conflict: "d" was not downloaded over the local changes: this instance saw no object; the bucket has changed \(another writer\)\./,
    );
  });
});
