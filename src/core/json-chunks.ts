/**
 * JSON text of a large object written in slices: `{"k":v,...}` for many
 * entries without building one object or one string of the whole. The
 * state file and the manifest name every path of the workspace: at 100,000
 * paths, `JSON.stringify` of one object meant an object of 100,000 keys, an
 * array per entry and a 10–15 MB string at once, all in the JavaScript heap
 * at the end of every cold push (where its memory peaks). Each slice here is
 * encoded to a Buffer (outside the heap) as soon as it is complete.
 */

/** Entries per slice: big enough that the per-slice cost vanishes, small enough that a slice is a few hundred KB. */
export const SLICE = 2048;

/**
 * The members of a JSON object, `"k":v` joined with commas and without the
 * braces, as Buffers; `[]` when there are none. Each key and value is
 * encoded by `JSON.stringify`, so the text parses to what `JSON.stringify`
 * of the whole object would give.
 */
export function jsonMembers<T>(entries: Iterable<readonly [string, T]>, value: (t: T) => unknown): Buffer[] {
  const out: Buffer[] = [];
  let parts: string[] = [];
  for (const [key, v] of entries) {
    parts.push(`${out.length === 0 && parts.length === 0 ? '' : ','}${JSON.stringify(key)}:${JSON.stringify(value(v))}`);
    if (parts.length === SLICE) {
      out.push(Buffer.from(parts.join(''), 'utf8'));
      parts = [];
    }
  }
  if (parts.length > 0) out.push(Buffer.from(parts.join(''), 'utf8'));
  return out;
}

/**
 * `head` (the JSON of an object without the large member) with `name` added
 * last, its members given as {@link jsonMembers}: the object's text as
 * Buffers, then `tail`.
 */
export function withMembers(head: string, name: string, members: Buffer[], tail = ''): Buffer[] {
  if (!head.endsWith('}')) throw new Error('withMembers: head is not a JSON object');
  const open = head === '{}' ? `{${JSON.stringify(name)}:{` : `${head.slice(0, -1)},${JSON.stringify(name)}:{`;
  return [Buffer.from(open, 'utf8'), ...members, Buffer.from(`}}${tail}`, 'utf8')];
}

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COMMA = 0x2c;
const COLON = 0x3a;
const OPEN_BRACE = 0x7b;
const CLOSE_BRACE = 0x7d;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACKET = 0x5d;

function isSpace(c: number | undefined): boolean {
  return c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09;
}

/**
 * Parse the JSON object in `buf` as `JSON.parse` would, except that the
 * top-level member `name` (an object of many members) is not built: its
 * members are handed to `each`, parsed a slice at a time, in order. The
 * reading side of {@link jsonMembers}: no string of the whole text and no
 * object of every member exist at once (the text stays in `buf`, outside
 * the JavaScript heap).
 *
 * Returns the object without `name` (`name` is `{}` in it), or `undefined`
 * when the text is not laid out as expected (no such member, not an object):
 * the caller then parses the whole text. Invalid JSON throws a SyntaxError,
 * as `JSON.parse` would: every byte is parsed, by the slices or with the rest.
 */
export function parseWithMembers(buf: Buffer, name: string, each: (key: string, value: unknown) => void): Record<string, unknown> | undefined {
  const range = memberValue(buf, name);
  if (range === undefined) return undefined;
  const [start, end] = range;
  const rest: unknown = JSON.parse(`${buf.toString('utf8', 0, start)}{}${buf.toString('utf8', end)}`);
  if (rest === null || typeof rest !== 'object' || Array.isArray(rest)) return undefined;
  eachMemberOf(buf, start, end, each);
  return rest as Record<string, unknown>;
}

/**
 * `[start, end)` of the value of the last top-level member `name` when it is
 * an object (`{` … `}`); `undefined` otherwise, or when the text is not one
 * object or its strings and brackets do not close (the whole parse decides).
 */
function memberValue(buf: Buffer, name: string): [number, number] | undefined {
  let i = 0;
  while (isSpace(buf[i])) i++;
  if (buf[i] !== OPEN_BRACE) return undefined;
  let depth = 0;
  let found: [number, number] | undefined;
  let keyStart = -1;
  let valueStart = -1;
  for (; i < buf.length; i++) {
    const c = buf[i];
    if (c === QUOTE) {
      const from = i;
      for (i++; i < buf.length && buf[i] !== QUOTE; i++) if (buf[i] === BACKSLASH) i++;
      if (i >= buf.length) return undefined;
      if (depth === 1) keyStart = from;
      continue;
    }
    if (c === COLON && depth === 1 && keyStart >= 0) {
      let key: unknown;
      try {
        key = JSON.parse(buf.toString('utf8', keyStart, i).trimEnd());
      } catch {
        return undefined;
      }
      keyStart = -1;
      if (key !== name) continue;
      let v = i + 1;
      while (isSpace(buf[v])) v++;
      valueStart = buf[v] === OPEN_BRACE ? v : -1;
    } else if (c === OPEN_BRACE || c === OPEN_BRACKET) {
      depth++;
    } else if (c === CLOSE_BRACE || c === CLOSE_BRACKET) {
      depth--;
      if (depth === 1 && valueStart >= 0 && c === CLOSE_BRACE) {
        found = [valueStart, i + 1];
        valueStart = -1;
      }
      if (depth === 0) return found;
    } else if (c === COMMA && depth === 1) {
      keyStart = -1;
    }
  }
  return undefined;
}

/** The members of the object text `buf[start, end)`, parsed {@link SLICE} at a time. */
function eachMemberOf(buf: Buffer, start: number, end: number, each: (key: string, value: unknown) => void): void {
  let depth = 0;
  let from = start + 1;
  let members = 0;
  let slices = 0;
  const flush = (to: number, last: boolean): void => {
    const text = buf.toString('utf8', from, to);
    slices++;
    if (text.trim() === '') {
      // `{}` has no members; anywhere else an empty slice is a stray comma, which JSON.parse refuses too
      if (slices === 1 && last) return;
      throw new SyntaxError('Unexpected "," in JSON');
    }
    const part = JSON.parse(`{${text}}`) as Record<string, unknown>;
    for (const key of Object.keys(part)) each(key, part[key]);
  };
  for (let i = start; i < end; i++) {
    const c = buf[i];
    if (c === QUOTE) {
      for (i++; i < end && buf[i] !== QUOTE; i++) if (buf[i] === BACKSLASH) i++;
    } else if (c === OPEN_BRACE || c === OPEN_BRACKET) {
      depth++;
    } else if (c === CLOSE_BRACE || c === CLOSE_BRACKET) {
      depth--;
      if (depth === 0) flush(i, true);
    } else if (c === COMMA && depth === 1 && ++members === SLICE) {
      flush(i, false);
      from = i + 1;
      members = 0;
    }
  }
}
