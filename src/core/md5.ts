/**
 * MD5s and ETags: the one place that knows what an MD5 looks like and when an
 * ETag is one. Pure.
 */
import { createHash } from 'node:crypto';

/** An MD5 as lowercase hex. */
export const MD5_HEX = /^[0-9a-f]{32}$/;

/** A multipart ETag: the MD5 of the part MD5s, a dash, the number of parts. */
const MULTIPART_ETAG = /^[0-9a-f]{32}-(\d+)$/i;

/** Whether `value` is an MD5 in hex (either case). */
export function isMd5Hex(value: string): boolean {
  return MD5_HEX.test(value.toLowerCase());
}

/** Strip quotes (and a weak `W/` marker) from an ETag. */
export function unquoteEtag(etag: string | undefined): string {
  return (etag ?? '').replace(/^W\//, '').replace(/"/g, '');
}

/**
 * The MD5 an ETag *looks like*: 32 hex digits. Multipart ETags (`…-N`) are
 * not MD5s. Whether it really is one depends on the object's encryption
 * (SSE-KMS and SSE-C ETags look like MD5s and are not): `core/compare.ts`
 * decides that.
 */
export function md5FromEtag(etag: string | undefined): string | undefined {
  const e = unquoteEtag(etag).toLowerCase();
  return MD5_HEX.test(e) ? e : undefined;
}

/** The number of parts of a multipart ETag (`"…-12"` → 12), or `undefined`. */
export function multipartPartCount(etag: string): number | undefined {
  const m = MULTIPART_ETAG.exec(unquoteEtag(etag));
  return m ? Number(m[1]) : undefined;
}

/** The ETag S3 gives a multipart object whose parts have these binary MD5s. */
export function multipartEtag(partDigests: readonly Buffer[]): string {
  return `${createHash('md5').update(Buffer.concat(partDigests)).digest('hex')}-${partDigests.length}`;
}

/** Base64 form of a hex MD5, as used by `Content-MD5`. */
export function md5HexToBase64(hex: string): string {
  return Buffer.from(hex, 'hex').toString('base64');
}

/** Hex form of a base64 MD5; `undefined` when it is not 16 bytes. */
export function md5Base64ToHex(b64: string): string | undefined {
  const buf = Buffer.from(b64, 'base64');
  return buf.length === 16 ? buf.toString('hex') : undefined;
}

/** The MD5 of `data`, hex. */
export function md5Hex(data: Buffer | string): string {
  return createHash('md5').update(data).digest('hex');
}
