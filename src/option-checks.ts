/**
 * How option checks talk about values: shown safely in messages, and near
 * misses named ("did you mean"). No SDK, no I/O.
 */
import { escapeForLog, redactSecrets } from './errors.js';

/**
 * A value as an error message may show it: a string quoted (JSON), control
 * characters escaped, anything credential-shaped redacted, cut after 64
 * characters; a number, boolean, `null` or `undefined` as written; anything
 * else only by its kind (`an object`, `an array of 3`, `a function`), never
 * its contents: an options object can hold credentials.
 */
export function describeValue(value: unknown): string {
  switch (typeof value) {
    case 'string':
      return quote(value);
    case 'number':
      return Object.is(value, -0) ? '-0' : String(value);
    case 'bigint':
      return `${value}n`;
    case 'boolean':
    case 'undefined':
      return String(value);
    case 'symbol':
      return 'a symbol';
    case 'function':
      return 'a function';
    default:
      if (value === null) return 'null';
      if (Array.isArray(value)) return value.length === 0 ? 'an empty array' : `an array of ${value.length}`;
      return 'an object';
  }
}

/** Longest string a message shows in full. */
export const MAX_SHOWN = 64;

function quote(value: string): string {
  const clean = redactSecrets(value);
  if (clean.length <= MAX_SHOWN) return escapeForLog(JSON.stringify(clean));
  return `${escapeForLog(JSON.stringify(`${clean.slice(0, MAX_SHOWN - 1)}…`))} (${value.length} characters)`;
}

/** The known name equal to `key` but for case, else the nearest within 2 edits (case ignored). */
export function closestName(key: string, names: readonly string[]): string | undefined {
  const lower = key.toLowerCase();
  let best: string | undefined;
  let bestDistance = 3;
  for (const name of names) {
    const d = editDistance(lower, name.toLowerCase(), bestDistance);
    if (d < bestDistance) {
      best = name;
      bestDistance = d;
    }
  }
  return best;
}

/** Levenshtein distance, or `limit` as soon as it is certain to be at least that. */
function editDistance(a: string, b: string, limit: number): number {
  if (Math.abs(a.length - b.length) >= limit) return limit;
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    let rowMin = i;
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      const d = Math.min((previous[j] as number) + 1, (current[j - 1] as number) + 1, (previous[j - 1] as number) + cost);
      current.push(d);
      rowMin = Math.min(rowMin, d);
    }
    if (rowMin >= limit) return limit;
    previous = current;
  }
  return Math.min(previous[b.length] as number, limit);
}
