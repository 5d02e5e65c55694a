/**
 * Deterministic workloads for `npm run bench` (bench/index.ts), and the tree
 * helpers the harness uses to copy, mutate and verify them.
 *
 *   W1  a code workspace: 2,112 files / ~80 MB (2,100 source-like files of
 *       1–40 KB in nested packages, 12 assets of 2–4 MB)
 *   W2  10,000 files of 1–4 KB in nested directories (10 × 10 × 100)
 *   W3  one 1 GiB incompressible file (AES-128-CTR keystream)
 *   W4  scale: 100,000 files of 16–200 bytes (100 × 10 directories of 100)
 *
 * Generated under bench/.work/ (git-ignored) and reused while a sidecar
 * `<name>.json` says the same generator wrote them and a stat walk still finds
 * the same file count and total size.
 */
import { createCipheriv, createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { copyFile, link, mkdir, open, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { join, relative, sep } from 'node:path';

export type WorkloadName = 'W1' | 'W2' | 'W3' | 'W4';

export interface Workload {
  name: WorkloadName;
  description: string;
  dir: string;
  files: number;
  bytes: number;
  /** W3 is one big file: no small-change push, no warm pull; copies are hard links. */
  singleFile: boolean;
  /** W4 is the scale workload: fewer scenarios and tools (see bench/index.ts). */
  scale?: boolean;
}

/** The library keeps its saved sync state here; never part of a tree comparison. */
export const STATE_DIR = '.s3-workspace-sync';

const GENERATOR_VERSION = 'v1';
const GIB = 1024 ** 3;

/** Deterministic pseudo-random bytes (xorshift), incompressible enough for S3 purposes. Same as the old bench's W1. */
export function bytes(seed: number, size: number): Buffer {
  const buf = Buffer.allocUnsafe(size);
  let x = seed * 2654435761 + 1;
  for (let i = 0; i < size; i += 4) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    buf.writeUInt32LE(x >>> 0, Math.min(i, size - 4 < 0 ? 0 : size - 4));
  }
  return size < 4 ? Buffer.alloc(size, seed & 0xff) : buf;
}

/** W1: the old bench's code workspace, unchanged (2,100 files of 1–40 KB + 12 files of 2–4 MB). */
export async function makeW1(dir: string): Promise<{ files: number; bytes: number }> {
  await rm(dir, { recursive: true, force: true });
  let files = 0;
  let total = 0;
  let seed = 1;
  const put = async (rel: string, size: number): Promise<void> => {
    const abs = join(dir, rel);
    await mkdir(join(abs, '..'), { recursive: true });
    await writeFile(abs, bytes(seed++, size));
    files++;
    total += size;
  };
  for (let p = 0; p < 12; p++) {
    for (let m = 0; m < 7; m++) {
      for (let f = 0; f < 25; f++) {
        const size = 1024 + ((seed * 7919) % (39 * 1024));
        await put(`packages/pkg${p}/src/module${m}/file${f}.ts`, size);
      }
    }
  }
  for (let i = 0; i < 12; i++) await put(`assets/blob${i}.bin`, (2 + (i % 3)) * 1024 * 1024);
  return { files, bytes: total };
}

/** W2: 10,000 files of 1–4 KB, 100 per directory, two levels deep. */
export async function makeW2(dir: string): Promise<{ files: number; bytes: number }> {
  await rm(dir, { recursive: true, force: true });
  let files = 0;
  let total = 0;
  let seed = 100_000;
  for (let a = 0; a < 10; a++) {
    for (let b = 0; b < 10; b++) {
      const sub = join(dir, `dir${a}`, `sub${b}`);
      await mkdir(sub, { recursive: true });
      const writes: Promise<void>[] = [];
      for (let f = 0; f < 100; f++) {
        const size = 1024 + ((seed * 7919) % (3 * 1024 + 1));
        writes.push(writeFile(join(sub, `item${f}.json`), bytes(seed++, size)));
        files++;
        total += size;
      }
      await Promise.all(writes);
    }
  }
  return { files, bytes: total };
}

/** W4: 100,000 small files (16–200 bytes), 100 per directory, two levels deep: the cost of a tree, not of bytes. */
export async function makeW4(dir: string): Promise<{ files: number; bytes: number }> {
  await rm(dir, { recursive: true, force: true });
  let files = 0;
  let total = 0;
  let seed = 500_000;
  for (let a = 0; a < 100; a++) {
    for (let b = 0; b < 10; b++) {
      const sub = join(dir, `part${a}`, `group${b}`);
      await mkdir(sub, { recursive: true });
      const writes: Promise<void>[] = [];
      for (let f = 0; f < 100; f++) {
        const size = 16 + ((seed * 7919) % 185);
        writes.push(writeFile(join(sub, `note${f}.txt`), bytes(seed++, size)));
        files++;
        total += size;
      }
      await Promise.all(writes);
    }
  }
  return { files, bytes: total };
}

/** W3: one 1 GiB file of AES-128-CTR keystream (incompressible), written in 8 MiB chunks. */
export async function makeW3(dir: string): Promise<{ files: number; bytes: number }> {
  await rm(dir, { recursive: true, force: true });
  await mkdir(dir, { recursive: true });
  const size = GIB;
  const chunk = 8 * 1024 * 1024;
  const key = createHash('sha256').update('s3-workspace-sync bench W3').digest().subarray(0, 16);
  const cipher = createCipheriv('aes-128-ctr', key, Buffer.alloc(16));
  const zeros = Buffer.alloc(chunk);
  const fh = await open(join(dir, 'data-1g.bin'), 'w');
  try {
    for (let written = 0; written < size; written += chunk) {
      const block = cipher.update(zeros);
      let off = 0;
      while (off < block.length) off += (await fh.write(block, off, block.length - off, written + off)).bytesWritten;
    }
  } finally {
    await fh.close();
  }
  return { files: 1, bytes: size };
}

const MAKERS: Record<WorkloadName, { make: (dir: string) => Promise<{ files: number; bytes: number }>; description: string }> = {
  W1: { make: makeW1, description: 'code workspace: nested packages of 1–40 KB files + 12 files of 2–4 MB' },
  W2: { make: makeW2, description: '10,000 files of 1–4 KB in nested directories' },
  W3: { make: makeW3, description: 'one 1 GiB incompressible file' },
  W4: { make: makeW4, description: 'scale: 100,000 files of 16–200 bytes' },
};

/** Count files and bytes under `dir` (stat walk, no reads). */
export async function statTree(dir: string): Promise<{ files: number; bytes: number }> {
  let files = 0;
  let total = 0;
  for (const e of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (!e.isFile()) continue;
    files++;
    total += (await stat(join(e.parentPath, e.name))).size;
  }
  return { files, bytes: total };
}

/** The workload's source tree under `workDir`, generated unless a matching one is already there. */
export async function prepareWorkload(name: WorkloadName, workDir: string): Promise<Workload & { generated: boolean; ms: number }> {
  const { make, description } = MAKERS[name];
  const dir = join(workDir, 'src', name.toLowerCase());
  const sidecar = join(workDir, 'src', `${name.toLowerCase()}.json`);
  const t0 = performance.now();
  try {
    const meta = JSON.parse(await readFile(sidecar, 'utf8')) as { generator: string; files: number; bytes: number };
    const now = await statTree(dir);
    if (meta.generator === GENERATOR_VERSION && now.files === meta.files && now.bytes === meta.bytes) {
      return { name, description, dir, ...now, singleFile: name === 'W3', scale: name === 'W4', generated: false, ms: performance.now() - t0 };
    }
  } catch {
    // absent or stale: generate
  }
  await mkdir(join(workDir, 'src'), { recursive: true });
  const made = await make(dir);
  await writeFile(sidecar, `${JSON.stringify({ generator: GENERATOR_VERSION, ...made })}\n`);
  return { name, description, dir, ...made, singleFile: name === 'W3', scale: name === 'W4', generated: true, ms: performance.now() - t0 };
}

/**
 * A private, mutable copy of a workload for one run: a recursive copy, or hard
 * links for the single-file workload (never modified; saves copying 1 GiB).
 */
export async function copyWorkload(w: Workload, dest: string): Promise<void> {
  await rm(dest, { recursive: true, force: true });
  if (w.singleFile) {
    await mkdir(dest, { recursive: true });
    for (const e of await readdir(w.dir, { withFileTypes: true })) if (e.isFile()) await link(join(w.dir, e.name), join(dest, e.name));
  } else {
    await copyTree(w.dir, dest);
  }
}

/**
 * A recursive copy of regular files and directories: each directory's files
 * 32 at a time, directories one after another. Not `fs.promises.cp`: on
 * Node 20 it once stopped for good part-way through W4's 100,000 files (the
 * event loop idle, no request pending, 10,510 entries copied), which stalled
 * a whole benchmark run.
 */
async function copyTree(src: string, dest: string): Promise<void> {
  await mkdir(dest, { recursive: true });
  const entries = await readdir(src, { withFileTypes: true });
  const files = entries.filter((e) => e.isFile());
  for (let i = 0; i < files.length; i += 32) {
    await Promise.all(files.slice(i, i + 32).map((e) => copyFile(join(src, e.name), join(dest, e.name))));
  }
  for (const e of entries) if (e.isDirectory()) await copyTree(join(src, e.name), join(dest, e.name));
}

export interface FileDigest {
  size: number;
  md5: string;
}

async function md5Of(path: string, size: number): Promise<string> {
  if (size <= 64 * 1024 * 1024) return createHash('md5').update(await readFile(path)).digest('hex');
  const hash = createHash('md5');
  for await (const chunk of createReadStream(path, { highWaterMark: 4 * 1024 * 1024 })) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/**
 * Every regular file under `dir` (POSIX relative path → size, MD5), the
 * library's state directory excluded. Anything else that is not a directory
 * (a symlink, a leftover temp file is a file and so counts) is reported too.
 */
export async function digestTree(dir: string): Promise<Map<string, FileDigest>> {
  const out = new Map<string, FileDigest>();
  const entries = await readdir(dir, { withFileTypes: true, recursive: true });
  const todo: Array<{ rel: string; abs: string }> = [];
  for (const e of entries) {
    const abs = join(e.parentPath, e.name);
    const rel = relative(dir, abs).split(sep).join('/');
    if (rel === STATE_DIR || rel.startsWith(`${STATE_DIR}/`)) continue;
    if (e.isDirectory()) continue;
    if (!e.isFile()) {
      out.set(rel, { size: -1, md5: 'not-a-regular-file' });
      continue;
    }
    todo.push({ rel, abs });
  }
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < todo.length) {
      const { rel, abs } = todo[next++]!;
      const size = (await stat(abs)).size;
      out.set(rel, { size, md5: await md5Of(abs, size) });
    }
  };
  await Promise.all(Array.from({ length: 16 }, worker));
  return out;
}

/** Differences between an expected and an actual tree, as short messages (at most `limit`). */
export function compareTrees(expected: Map<string, FileDigest>, actual: Map<string, FileDigest>, limit = 5): string[] {
  const problems: string[] = [];
  let missing = 0;
  let differ = 0;
  let extra = 0;
  for (const [path, want] of expected) {
    const got = actual.get(path);
    if (got === undefined) {
      if (missing++ < limit) problems.push(`missing ${path}`);
    } else if (got.size !== want.size || got.md5 !== want.md5) {
      if (differ++ < limit) problems.push(`differs ${path} (${got.size} B vs ${want.size} B expected)`);
    }
  }
  for (const path of actual.keys()) if (!expected.has(path) && extra++ < limit) problems.push(`unexpected ${path}`);
  if (missing + differ + extra === 0) return [];
  return [`${missing} missing, ${differ} different, ${extra} unexpected`, ...problems];
}

/**
 * A small change to a tree, applied to `dir` and described for the remote
 * side: `modified` files (3 grow by one line, 2 keep their size with new
 * bytes: a size+mtime tool must still notice), `added` files, `deleted` files.
 * Deterministic in `tag`; picks files spread over the sorted file list.
 */
export async function mutateTree(
  dir: string,
  tag: string,
  counts = { modified: 5, added: 2, deleted: 1 },
): Promise<{ modified: string[]; added: string[]; deleted: string[] }> {
  const files = [...(await digestTree(dir)).keys()].sort();
  const step = Math.max(1, Math.floor(files.length / (counts.modified + counts.deleted + 1)));
  const picked = Array.from({ length: counts.modified + counts.deleted }, (_, i) => files[(i + 1) * step - 1]!).filter(
    (p, i, all) => all.indexOf(p) === i,
  );
  const modified = picked.slice(0, counts.modified);
  const deleted = picked.slice(counts.modified);
  for (const [i, rel] of modified.entries()) {
    const abs = join(dir, rel);
    const old = await readFile(abs);
    if (i < 3) {
      await writeFile(abs, Buffer.concat([old, Buffer.from(`\n// edit ${tag}-${i}\n`)]));
    } else {
      const same = Buffer.from(old);
      const stamp = Buffer.from(`edit ${tag}-${i}`);
      stamp.copy(same, 0, 0, Math.min(stamp.length, same.length));
      if (same.equals(old)) same[0] = (same[0]! + 1) & 0xff;
      await writeFile(abs, same);
    }
  }
  const parent = modified[0]?.includes('/') ? modified[0].slice(0, modified[0].lastIndexOf('/')) : '';
  const added = Array.from({ length: counts.added }, (_, i) => `${parent ? `${parent}/` : ''}added-${tag}-${i}.ts`);
  for (const [i, rel] of added.entries()) await writeFile(join(dir, rel), `export const added${i} = ${JSON.stringify(tag)};\n`);
  for (const rel of deleted) await rm(join(dir, rel));
  return { modified, added, deleted };
}
