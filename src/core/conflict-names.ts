/**
 * Names for what a conflict policy keeps, pure (no clock, no randomness, no
 * I/O: the caller passes the time, the random suffix and who it is):
 * - the conflicts area of the bucket, where a version about to be replaced is
 *   saved: `<prefix>.s3-workspace-sync/conflicts/<stamp>-<hex>/<path>`;
 * - a conflict copy in the workspace (policy `keep-both`):
 *   `notes (conflict 2026-12-06 054103 host).md`.
 */
import { CONFLICTS_DIR_NAME, libraryFolder } from './names.js';
import { MAX_KEY_BYTES, MAX_SEGMENT_BYTES, storagePathProblem } from './paths.js';

/** A UTC time as `20261206T054103Z` (ISO 8601 basic format, whole seconds): sorts by time. */
export function utcStamp(now: Date): string {
  return now.toISOString().replace(/\.\d{3}Z$/, 'Z').replace(/[-:]/g, '');
}

/**
 * The folder of one sync in the bucket's conflicts area (a key prefix ending
 * in `/`): `<prefix>.s3-workspace-sync/conflicts/<stamp>-<random>/`. The
 * library's own folder: never synced into a workspace, never deleted by the
 * library.
 */
export function conflictAreaPrefix(prefix: string, now: Date, random: string): string {
  if (!/^[0-9a-f]{1,32}$/.test(random)) throw new RangeError(`random must be lower-case hex (got ${JSON.stringify(random)})`);
  return `${libraryFolder(prefix)}${CONFLICTS_DIR_NAME}/${utcStamp(now)}-${random}/`;
}

/**
 * A short, key-safe label for this writer: the first label of the host name
 * (a container's is its id), letters, digits, `_` and `-` only, at most 16
 * characters; `fallback` (e.g. an instance id) when nothing is left.
 */
export function writerLabel(hostname: string, fallback: string): string {
  const first = hostname.split('.')[0] ?? '';
  const clean = first.replace(/[^A-Za-z0-9_-]/g, '').slice(0, 16);
  return clean !== '' ? clean : fallback.replace(/[^A-Za-z0-9_-]/g, '').slice(0, 16) || 'writer';
}

/** What a conflict copy's name says. */
export interface ConflictCopyLabel {
  /** When the conflict was resolved. */
  now: Date;
  /** Who resolved it (see {@link writerLabel}). */
  who: string;
}

/**
 * The workspace path of a conflict copy of `path`: the same folder, the name
 * with ` (conflict 2026-12-06 054103 <who>)` (and ` <n>` from the second
 * candidate on) before the extension, which stays last: `notes.md` →
 * `notes (conflict 2026-12-06 054103 ab12cd).md`; `.env` → `.env (conflict …)`;
 * `Makefile` → `Makefile (conflict …)`. The time is UTC. The stem is
 * shortened (never the label) so that the name fits a file name (255 bytes)
 * and `prefix` + path fits a key (1,024 bytes).
 *
 * @returns `undefined` when no valid name fits (the folder alone is too long).
 */
export function conflictCopyPath(path: string, label: ConflictCopyLabel, n = 1, prefix = ''): string | undefined {
  const slash = path.lastIndexOf('/');
  const dir = slash < 0 ? '' : path.slice(0, slash + 1);
  const base = path.slice(slash + 1);
  const { stem, ext } = splitExtension(base);
  const iso = label.now.toISOString();
  const tag = ` (conflict ${iso.slice(0, 10)} ${iso.slice(11, 19).replace(/:/g, '')} ${label.who}${n > 1 ? ` ${n}` : ''})`;
  const room = Math.min(MAX_SEGMENT_BYTES, MAX_KEY_BYTES - utf8(prefix) - utf8(dir)) - utf8(tag) - utf8(ext);
  if (room < 1) return undefined;
  const candidate = `${dir}${truncateUtf8(stem, room)}${tag}${ext}`;
  return storagePathProblem(candidate) === undefined ? candidate : undefined;
}

/**
 * The first {@link conflictCopyPath} that `taken` does not claim (a file
 * already there, locally or in the bucket): never overwrite, count up.
 * `undefined` when none of `tries` candidates is free and valid.
 */
export function freeConflictCopyPath(path: string, label: ConflictCopyLabel, taken: (candidate: string) => boolean, prefix = '', tries = 100): string | undefined {
  for (let n = 1; n <= tries; n++) {
    const candidate = conflictCopyPath(path, label, n, prefix);
    if (candidate === undefined) return undefined;
    if (!taken(candidate)) return candidate;
  }
  return undefined;
}

/** `notes.md` → `notes` + `.md`; a leading dot is not an extension; an "extension" with spaces or over 16 characters is part of the stem. */
function splitExtension(base: string): { stem: string; ext: string } {
  const dot = base.lastIndexOf('.');
  if (dot <= 0 || dot === base.length - 1) return { stem: base, ext: '' };
  const ext = base.slice(dot);
  if (ext.length > 17 || /\s/.test(ext)) return { stem: base, ext: '' };
  return { stem: base.slice(0, dot), ext };
}

function utf8(s: string): number {
  return Buffer.byteLength(s, 'utf8');
}

/** The longest prefix of `s` of at most `bytes` UTF-8 bytes, never splitting a code point. */
function truncateUtf8(s: string, bytes: number): string {
  if (utf8(s) <= bytes) return s;
  let out = '';
  let used = 0;
  for (const ch of s) {
    const n = utf8(ch);
    if (used + n > bytes) break;
    out += ch;
    used += n;
  }
  return out;
}
