// Reads the library's state as it is on disk — the state file plus the lines
// of its journal — independently of src/state/StateFile.ts, so tests can
// check what a sync recorded.
import { createHash } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';

export type Row = [number, number, number, number, string, string | null, number];

export interface StateOnDisk {
  /** The state file's name (`state-<id>.json`). */
  name: string;
  /** Every entry after the journal's lines are applied. */
  entries: Record<string, Row>;
  /** Journal lines applied. */
  journalLines: number;
  doc: Record<string, unknown>;
}

/** The state files in `dir` (names ending in `.json`). */
export async function stateFileNames(dir: string): Promise<string[]> {
  return (await readdir(dir).catch(() => [] as string[])).filter((n) => /^state-[0-9a-f]+\.json$/.test(n));
}

/** One state file with its journal applied (a complete journal line that fails its checksum throws). */
export async function readStateOnDisk(dir: string, name: string): Promise<StateOnDisk> {
  const doc = JSON.parse(await readFile(path.join(dir, name), 'utf8')) as Record<string, unknown>;
  const entries: Record<string, Row> = Object.assign(Object.create(null) as Record<string, Row>, doc.entries as Record<string, Row>);
  const journal = await readFile(path.join(dir, `${name}.journal`), 'utf8').catch(() => '');
  let journalLines = 0;
  const lines = journal.split('\n');
  lines.pop(); // '' after the last newline, or a line cut short by a crash (the library drops it too)
  for (const line of lines) {
    const json = line.slice(33);
    if (createHash('md5').update(json).digest('hex') !== line.slice(0, 32)) throw new Error(`${name}.journal: line ${journalLines + 1} fails its checksum`);
    const v = JSON.parse(json) as { id: string; set: Record<string, Row>; del: string[] };
    if (v.id !== doc.id) break; // a journal of an older state file: void
    for (const p of v.del) delete entries[p];
    Object.assign(entries, v.set);
    journalLines++;
  }
  return { name, entries, journalLines, doc };
}
