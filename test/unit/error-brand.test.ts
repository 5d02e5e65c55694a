// isSyncError and the brand behind cross-build instanceof (src/errors.ts):
// every SyncError carries Symbol.for('s3-workspace-sync/SyncError') holding
// its class chain, and SyncError[Symbol.hasInstance] accepts a branded value
// for the library classes its chain names. The built ESM/CommonJS pair is
// tested in test/integration/package-exports.test.ts.
import { inspect } from 'node:util';

import { describe, expect, test } from 'vitest';

import {
  ConfigError,
  GuardError,
  IncompletePathsError,
  IncompleteSyncError,
  IntegrityError,
  LocalFileError,
  PathValidationError,
  StorageError,
  SyncAbortedError,
  WorkspaceLockedError,
  SyncError,
  isSyncError,
} from '../../src/index.js';
import { GitError } from '../../src/errors.js'; // not public: a sync reports git failures as codes in failedFiles
import type { SyncResult } from '../../src/index.js';

const BRAND = Symbol.for('s3-workspace-sync/SyncError');
const result = { failedFiles: [], errors: [], downloadedFiles: 0, uploadedFiles: 0, deletedFiles: 0 } as unknown as SyncResult;

const CASES: Array<[string, () => SyncError, abstract new (...args: never[]) => SyncError]> = [
  ['SyncError', () => new SyncError('X', 'base'), SyncError],
  ['ConfigError', () => new ConfigError('bad'), ConfigError],
  ['PathValidationError', () => new PathValidationError('../x', 'dots'), PathValidationError],
  ['StorageError', () => new StorageError('THROTTLED', 'slow', { retryable: true }), StorageError],
  ['LocalFileError', () => new LocalFileError('ENOENT', 'a', 'gone'), LocalFileError],
  ['IntegrityError', () => new IntegrityError('a', 'e', 'f', 'bad bytes'), IntegrityError],
  ['IncompleteSyncError', () => new IncompleteSyncError(result), IncompleteSyncError],
  ['IncompletePathsError', () => new IncompletePathsError(['a'], []), IncompletePathsError],
  ['GuardError', () => new GuardError('MAX_DELETES', 'too many', {}), GuardError],
  ['SyncAbortedError', () => new SyncAbortedError(result, 'timeout'), SyncAbortedError],
  ['WorkspaceLockedError', () => new WorkspaceLockedError('/ws/.s3-workspace-sync/lock', { pid: 1, host: 'h', startedAt: 'now' }), WorkspaceLockedError],
  ['GitError', () => new GitError('GIT_FAILED', 'git failed'), GitError],
];

/** A value shaped like an error of another copy of the library: its own prototype chain, the same brand. */
function foreign(chain: readonly string[], name = chain[chain.length - 1]): Error {
  class ForeignError extends Error {}
  const error = new ForeignError('from another build');
  error.name = name ?? 'Error';
  Object.defineProperty(error, BRAND, { value: Object.freeze([...chain]) });
  return error;
}

describe('isSyncError', () => {
  test.each(CASES)('true for a %s', (_name, make) => {
    expect(isSyncError(make())).toBe(true);
  });

  test.each([
    ['an Error', new Error('x')],
    ['a TypeError', new TypeError('x')],
    ['an object shaped like a SyncError', { name: 'SyncError', code: 'CONFIG', message: 'x', details: {} }],
    ['null', null],
    ['undefined', undefined],
    ['a string', 'SyncError'],
    ['a number', 42],
    ['a function', () => undefined],
    ['a brand that is not an array', Object.assign(new Error('x'), { [BRAND]: 'SyncError' })],
    ['a brand with non-string ids', Object.assign(new Error('x'), { [BRAND]: [1, 2] })],
    ['a brand without SyncError', foreign(['Other'])],
  ])('false for %s', (_name, value) => {
    expect(isSyncError(value)).toBe(false);
  });

  test('true for an error branded by another copy of the library', () => {
    expect(isSyncError(foreign(['SyncError', 'StorageError']))).toBe(true);
  });

  test('false, not a throw, for a value whose brand getter throws', () => {
    const hostile = new Proxy(
      {},
      {
        get: () => {
          throw new Error('trap');
        },
      },
    );
    expect(isSyncError(hostile)).toBe(false);
    expect(hostile instanceof StorageError).toBe(false);
  });

  test('narrows the type', () => {
    const value: unknown = new ConfigError('bad');
    if (!isSyncError(value)) throw new Error('expected a SyncError');
    expect(value.code).toBe('CONFIG');
  });
});

describe('the brand', () => {
  test.each(CASES)('a %s carries its class chain, frozen and hidden', (name, make) => {
    const error = make();
    const expected = name === 'SyncError' ? ['SyncError'] : ['SyncError', name];
    expect((error as unknown as Record<symbol, unknown>)[BRAND]).toEqual(expected);
    expect(Object.isFrozen((error as unknown as Record<symbol, unknown>)[BRAND])).toBe(true);
    const descriptor = Object.getOwnPropertyDescriptor(error, BRAND);
    expect(descriptor).toMatchObject({ enumerable: false, writable: false, configurable: false });
    expect(inspect(error)).not.toContain('s3-workspace-sync/SyncError');
  });

  test("a user's subclass is listed by its name below the library class", () => {
    class QuotaError extends StorageError {
      constructor() {
        super('THROTTLED', 'quota', { retryable: true });
      }
    }
    const error = new QuotaError();
    expect((error as unknown as Record<symbol, unknown>)[BRAND]).toEqual(['SyncError', 'StorageError', 'QuotaError']);
  });
});

describe('instanceof', () => {
  test.each(CASES)('same build: a %s is an instance of its class, SyncError and Error only', (name, make, cls) => {
    const error = make();
    expect(error instanceof cls).toBe(true);
    expect(error instanceof SyncError).toBe(true);
    expect(error instanceof Error).toBe(true);
    for (const [other, , otherCls] of CASES) {
      if (other !== name && other !== 'SyncError') expect(error instanceof otherCls, `${name} instanceof ${other}`).toBe(false);
    }
  });

  test.each(CASES.filter(([name]) => name !== 'SyncError'))(
    'another copy: a branded %s is an instance of its class and SyncError only',
    (name, _make, cls) => {
      const error = foreign(['SyncError', name]);
      expect(error instanceof cls).toBe(true);
      expect(error instanceof SyncError).toBe(true);
      for (const [other, , otherCls] of CASES) {
        if (other !== name && other !== 'SyncError') expect(error instanceof otherCls, `${name} instanceof ${other}`).toBe(false);
      }
    },
  );

  test("a user's subclasses: ordinary prototype rule, for theirs and ours", () => {
    class QuotaError extends StorageError {
      constructor() {
        super('THROTTLED', 'quota', { retryable: true });
      }
    }
    class OtherQuotaError extends StorageError {}
    const error = new QuotaError();
    expect(error instanceof QuotaError).toBe(true);
    expect(error instanceof StorageError).toBe(true);
    expect(error instanceof SyncError).toBe(true);
    expect(error instanceof ConfigError).toBe(false);
    expect(error instanceof OtherQuotaError).toBe(false);
    // A user class is matched by its prototype chain only, never by a brand naming it.
    expect(foreign(['SyncError', 'StorageError', 'QuotaError']) instanceof QuotaError).toBe(false);
    expect(foreign(['SyncError', 'StorageError', 'QuotaError']) instanceof StorageError).toBe(true);
  });

  test('narrows the type as before', () => {
    const value: unknown = new StorageError('THROTTLED', 'slow', { retryable: true });
    if (!(value instanceof StorageError)) throw new Error('expected a StorageError');
    expect(value.retryable).toBe(true);
  });

  test("SyncAbortedError keeps name 'AbortError' and is recognised by class, not by name", () => {
    const error = new SyncAbortedError(result, 'aborted');
    expect(error.name).toBe('AbortError');
    expect(error instanceof SyncAbortedError).toBe(true);
    expect(foreign(['SyncError', 'SyncAbortedError'], 'AbortError') instanceof SyncAbortedError).toBe(true);
  });
});
