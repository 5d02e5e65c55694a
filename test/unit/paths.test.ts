import { describe, expect, it } from 'vitest';
import { normalizePrefix, parentDirs, storagePathProblem, validateStoragePath } from '../../src/core/paths.js';
import { PathValidationError, SyncError } from '../../src/errors.js';

describe('validateStoragePath', () => {
  it.each([
    ['src/index.ts'],
    ['README.md'],
    ['a/b/c/d.txt'],
    ['.syncignore'],
    ['notes/réunion notes.md'],
    ['dir.with.dots/..hidden'],
    ['...'],
    ['a/.b'],
    ['x'.repeat(255)],
  ])('accepts %j', (path) => {
    expect(() => validateStoragePath(path)).not.toThrow();
  });

  const malicious: Array<[string, string, RegExp]> = [
    ['parent escape', '../etc/passwd', /'\.\.' segment/],
    ['nested escape', 'a/../../etc/passwd', /'\.\.' segment/],
    ['trailing ..', 'a/..', /'\.\.' segment/],
    ['absolute', '/etc/passwd', /absolute/],
    ['drive letter', 'C:/Windows/system32', /absolute/],
    ['backslash traversal', '..\\..\\etc\\passwd', /backslash/],
    ['backslash', 'a\\b', /backslash/],
    ['NUL byte', 'a\u0000b', /control/],
    ['newline (log forging)', 'a\nINFO forged', /control/],
    ['escape char', 'a\u001b[31m', /control/],
    ['DEL', 'a\u007f', /control/],
    ['empty', '', /empty path/],
    ['double slash', 'a//b', /empty segment/],
    ['trailing slash', 'a/b/', /empty segment/],
    ['dot segment', './a', /'\.' segment/],
    ['inner dot segment', 'a/./b', /'\.' segment/],
    ['encoded dot-dot', '%2e%2e/etc/passwd', /encoded dot/],
    ['mixed encoded dot-dot', '.%2E/x', /encoded dot/],
    ['encoded dot', 'a/%2e/b', /encoded dot/],
    ['over-long key', 'a/'.repeat(600) + 'b', /longer than 1024/],
    ['over-long segment', 'x'.repeat(256), /segment is longer than 255/],
    ['over-long multibyte segment', 'é'.repeat(128), /segment is longer than 255/],
  ];

  it.each(malicious)('refuses %s', (_name, path, reason) => {
    let caught: unknown;
    try {
      validateStoragePath(path);
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(PathValidationError);
    expect(caught).toBeInstanceOf(SyncError);
    const err = caught as PathValidationError;
    expect(err.code).toBe('INVALID_PATH');
    expect(err.reason).toMatch(reason);
    // control characters never reach the message raw
    // eslint-disable-next-line no-control-regex
    expect(err.message).not.toMatch(/[\u0000-\u001f]/);
    expect(storagePathProblem(path)).toBe(err.reason);
  });
});

describe('normalizePrefix', () => {
  it.each([
    ['users/u1', 'users/u1/'],
    ['users/u1/', 'users/u1/'],
    ['/users/u1//', 'users/u1/'],
    ['', ''],
    ['/', ''],
  ])('%j → %j', (input, expected) => {
    expect(normalizePrefix(input)).toBe(expected);
  });

  it('a normalised prefix never matches a sibling with a longer name', () => {
    const p = normalizePrefix('users/u1');
    expect('users/u10/file'.startsWith(p)).toBe(false);
    expect('users/u1/file'.startsWith(p)).toBe(true);
  });

  it.each([['a/../b'], ['a//b'], ['a\u0000']])('refuses %j', (prefix) => {
    expect(() => normalizePrefix(prefix)).toThrow(PathValidationError);
  });
});

describe('parentDirs', () => {
  it('lists parents shallowest first', () => {
    expect(parentDirs('a/b/c.txt')).toEqual(['a', 'a/b']);
    expect(parentDirs('c.txt')).toEqual([]);
    expect(parentDirs('')).toEqual([]);
    expect(parentDirs('a/b/c/d/e')).toEqual(['a', 'a/b', 'a/b/c', 'a/b/c/d']);
    expect(parentDirs('dir/')).toEqual(['dir']);
  });
});
