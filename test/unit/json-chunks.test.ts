// core/json-chunks: the state file and the manifest are written in slices;
// the text must parse to exactly what one JSON.stringify of the whole would.
import { describe, expect, it } from 'vitest';
import { jsonMembers, withMembers } from '../../src/core/json-chunks.js';
import { mulberry32 } from '../helpers/fault-proxy.js';

const ODD_KEYS = ['__proto__', 'constructor', '', '0', '42', '"quoted"', 'back\\slash', 'new\nline', 'tab\there', 'ünï/cödé', '😀/x', 'lone\ud800surrogate', ',', '}', '{"a":1}'];

function parse(head: string, name: string, members: Buffer[], tail = ''): unknown {
  return JSON.parse(Buffer.concat(withMembers(head, name, members, tail)).toString('utf8'));
}

describe('jsonMembers / withMembers', () => {
  it('give the text JSON.stringify of the whole object gives, for odd keys and values, across many slices', { timeout: 10_000 }, () => {
    const rnd = mulberry32(12);
    const entries: Array<[string, [number, string | null]]> = ODD_KEYS.map((k, i) => [k, [i, i % 2 === 0 ? null : k]]);
    for (let i = 0; i < 5000; i++) entries.push([`dir${Math.floor(rnd() * 50)}/file-${i}-${rnd().toString(36).slice(2)}.txt`, [Math.floor(rnd() * 1e9), rnd().toString(16)]]);
    const members = jsonMembers(entries, (v) => v);
    expect(members.length).toBeGreaterThan(2); // more than one slice, so the commas between slices are exercised
    const whole = Object.create(null) as Record<string, unknown>;
    for (const [k, v] of entries) whole[k] = v;
    const got = parse(JSON.stringify({ format: 'x', n: 1 }), 'files', members) as Record<string, unknown>;
    expect(Object.keys(got)).toEqual(['format', 'n', 'files']);
    const files = got.files as Record<string, unknown>;
    expect(Object.keys(files).length).toBe(entries.length);
    for (const [k, v] of entries) expect(Object.prototype.hasOwnProperty.call(files, k) ? files[k] : 'missing', JSON.stringify(k)).toEqual(v);
    expect(JSON.parse(JSON.stringify(whole))).toEqual(files);
  });

  it('write an empty member, an empty head and a tail', { timeout: 5_000 }, () => {
    expect(jsonMembers([], (v) => v)).toEqual([]);
    expect(Buffer.concat(withMembers('{}', 'entries', [], '\n')).toString()).toBe('{"entries":{}}\n');
    expect(parse('{"a":[1,{"b":2}]}', 'e', jsonMembers([['k', 1]], (v) => v))).toEqual({ a: [1, { b: 2 }], e: { k: 1 } });
  });

  it('refuse a head that is not an object', { timeout: 5_000 }, () => {
    expect(() => withMembers('[1]', 'x', [])).toThrow(/not a JSON object/);
  });
});
