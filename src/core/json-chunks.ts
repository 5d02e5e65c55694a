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
const SLICE = 2048;

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
