/**
 * The user metadata the library stores with every object, and how it is read
 * back: one format for every store (S3ObjectStore writes it over the SDK,
 * MemoryObjectStore keeps it as S3 would). The names and formats are
 * rclone's, so the bucket stays interoperable.
 */
import { isMd5Hex, md5Base64ToHex, md5HexToBase64 } from '../core/md5.js';

/** Metadata key holding the base64 MD5 of the content (the name rclone uses). */
export const META_MD5 = 'md5chksum';
/** Metadata key holding the file's mtime in seconds with a fraction (the name and format rclone uses). */
export const META_MTIME = 'mtime';
/** Metadata key holding the part size of a multipart upload (bytes): which multipart ETag to compute. */
export const META_PART_SIZE = 'partsize';
/** Later `mtime` metadata (about year 5138) is not a usable file time. */
const MAX_MTIME_SECONDS = 1e11;

/** The metadata every upload carries: the content's MD5 (base64, when known) and the file's mtime (seconds). */
export function metadataFor(md5: string | undefined, mtimeMs: number): Record<string, string> {
  const meta: Record<string, string> = { [META_MTIME]: (mtimeMs / 1000).toFixed(3) };
  if (md5 !== undefined) meta[META_MD5] = md5HexToBase64(md5);
  return meta;
}

/**
 * What an object's metadata tells (names lower-cased): its MD5 (`md5chksum`
 * base64, or an `md5` hex field), the file's mtime when usable (another writer
 * may store anything there), and the part size of this library's multipart
 * uploads.
 */
export function readMetadata(meta: Record<string, string>): { md5?: string; mtimeMs?: number; partSize?: number } {
  let md5: string | undefined;
  const b64 = meta[META_MD5];
  if (b64 !== undefined) md5 = md5Base64ToHex(b64);
  if (md5 === undefined && meta.md5 !== undefined && isMd5Hex(meta.md5)) md5 = meta.md5.toLowerCase();
  const mtime = meta[META_MTIME] !== undefined ? Number(meta[META_MTIME]) : NaN;
  const partSize = meta[META_PART_SIZE] !== undefined && /^[1-9][0-9]{0,12}$/.test(meta[META_PART_SIZE]) ? Number(meta[META_PART_SIZE]) : undefined;
  const out: { md5?: string; mtimeMs?: number; partSize?: number } = {};
  if (md5 !== undefined) out.md5 = md5;
  if (Number.isFinite(mtime) && mtime > 0 && mtime < MAX_MTIME_SECONDS) out.mtimeMs = Math.round(mtime * 1000);
  if (partSize !== undefined) out.partSize = partSize;
  return out;
}

/** The same metadata with lower-case names (S3 lower-cases them; the SDK passes them as sent). */
export function lowerKeys(meta: Record<string, string> | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(meta ?? {})) out[k.toLowerCase()] = v;
  return out;
}
