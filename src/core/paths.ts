import { PathValidationError } from '../errors.js';

/** Segments of printable ASCII other than `/ \\ % :`, joined by single slashes. */
const PLAIN_PATH = /^[\x20-\x24\x26-\x2e\x30-\x39\x3b-\x5b\x5d-\x7e]+(?:\/[\x20-\x24\x26-\x2e\x30-\x39\x3b-\x5b\x5d-\x7e]+)*$/;
const DOT_SEGMENT = /(?:^|\/)\.{1,2}(?:\/|$)/;

/** S3's limit on the length of a whole object key, in UTF-8 bytes. */
export const MAX_KEY_BYTES = 1024;
/** The usual filesystem limit on one path segment (ext4, APFS, NTFS), in bytes. */
export const MAX_SEGMENT_BYTES = 255;

/**
 * Check that `path` (a workspace-relative POSIX path, or the part of an object
 * key after the prefix) can safely become a file inside the workspace.
 *
 * Refused, with a {@link PathValidationError} saying why: empty paths, absolute
 * paths, `..`, `.` and empty segments (`a//b`, trailing `/`), backslashes, NUL
 * and other control characters, percent-encoded dot segments (`%2e%2e`), a path
 * over 1,024 UTF-8 bytes, or a segment over 255 bytes.
 *
 * @example
 * validateStoragePath('src/index.ts');   // ok, returns undefined
 * validateStoragePath('../etc/passwd');  // throws PathValidationError
 * @throws {PathValidationError}
 */
export function validateStoragePath(path: string): void {
  const reason = storagePathProblem(path);
  if (reason !== undefined) throw new PathValidationError(path, reason);
}

/** Like {@link validateStoragePath} but returns the reason instead of throwing. */
export function storagePathProblem(path: string): string | undefined {
  // Fast path for the common case (called for every file of every scan): short
  // printable-ASCII paths without `%`, `\\`, `:` or empty segments cannot break
  // any rule below except `.`/`..` segments.
  if (typeof path === 'string' && path.length <= MAX_SEGMENT_BYTES && PLAIN_PATH.test(path) && !DOT_SEGMENT.test(path)) {
    return undefined;
  }
  if (typeof path !== 'string') return 'not a string';
  if (path.length === 0) return 'empty path';
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(path)) return 'contains a control character';
  if (path.includes('\\')) return 'contains a backslash';
  if (path.startsWith('/')) return 'absolute path';
  if (/^[a-zA-Z]:/.test(path)) return 'absolute path (drive letter)';
  if (Buffer.byteLength(path, 'utf8') > MAX_KEY_BYTES) return `longer than ${MAX_KEY_BYTES} bytes`;
  for (const segment of path.split('/')) {
    if (segment === '') return 'contains an empty segment';
    if (segment === '.') return "contains a '.' segment";
    if (segment === '..') return "contains a '..' segment";
    if (/^(?:\.|%2e){1,2}$/i.test(segment)) return 'contains an encoded dot segment';
    if (Buffer.byteLength(segment, 'utf8') > MAX_SEGMENT_BYTES) return `a segment is longer than ${MAX_SEGMENT_BYTES} bytes`;
  }
  return undefined;
}

/**
 * Normalise a bucket prefix: no leading `/`, exactly one trailing `/` (so
 * `users/u1` never matches `users/u10/…`), `''` for the bucket root.
 * @throws {PathValidationError} for a prefix with `..`, `.`, empty segments or control characters.
 */
export function normalizePrefix(prefix: string): string {
  let p = prefix.replace(/^\/+/, '').replace(/\/+$/, '');
  if (p === '') return '';
  const problem = storagePathProblem(p);
  if (problem !== undefined) throw new PathValidationError(prefix, `invalid prefix: ${problem}`);
  p += '/';
  return p;
}

/** Parent directories of a relative path, shallowest first: `a/b/c` → `['a', 'a/b']`. */
export function parentDirs(path: string): string[] {
  const out: string[] = [];
  for (let i = path.indexOf('/'); i >= 0; i = path.indexOf('/', i + 1)) out.push(path.slice(0, i));
  return out;
}
