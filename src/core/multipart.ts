/**
 * Pure arithmetic of multipart uploads: part sizes, and the ETag S3 gives a
 * multipart object (`md5(concat(binary part MD5s))-N`).
 */

/** S3's limits. */
export const MIN_PART_SIZE = 5 * 1024 * 1024;
export const MAX_PART_SIZE = 5 * 1024 ** 3;
export const MAX_PARTS = 10_000;
const MiB = 1024 * 1024;

/**
 * The part size to use for a file: `preferred`, grown (to a whole MiB) so the
 * file never needs more than 10,000 parts — a 50 GiB file gets 6 MiB parts —
 * and never below S3's 5 MiB minimum.
 */
export function choosePartSize(size: number, preferred: number): number {
  let part = Math.max(preferred, MIN_PART_SIZE);
  if (Math.ceil(size / part) > MAX_PARTS) part = Math.ceil(size / MAX_PARTS / MiB) * MiB;
  return Math.min(part, MAX_PART_SIZE);
}

export { multipartPartCount } from './md5.js';

/**
 * Part sizes that could have produced an object of `size` bytes in `parts`
 * parts: the sizes common tools use (5, 8, 15, 16, 32, 64, 100, 128 MiB…) and
 * `size / parts` rounded up to a MiB and to a byte, keeping those for which
 * `ceil(size / partSize) === parts`. At most four, most likely first.
 */
export function likelyPartSizes(size: number, parts: number): number[] {
  if (parts < 1 || size < 1) return [];
  const exact = Math.ceil(size / parts);
  const candidates = [
    Math.ceil(exact / MiB) * MiB,
    8 * MiB,
    5 * MiB,
    16 * MiB,
    15 * MiB,
    10 * MiB,
    32 * MiB,
    64 * MiB,
    100 * MiB,
    128 * MiB,
    exact,
  ];
  const out: number[] = [];
  for (const c of candidates) {
    if (c > 0 && Math.ceil(size / c) === parts && !out.includes(c)) out.push(c);
    if (out.length === 4) break;
  }
  return out;
}

/**
 * The part sizes to try for an object of `size` bytes in `parts` parts: the
 * known one first (`partsize` metadata, or the size of part 1) when it fits,
 * then {@link likelyPartSizes}.
 */
export function partSizesFor(size: number, parts: number, known?: number): number[] {
  const sizes = likelyPartSizes(size, parts);
  if (known === undefined || !(known > 0) || Math.ceil(size / known) !== parts) return sizes;
  return [known, ...sizes.filter((s) => s !== known)];
}
