// Costs of src/git/bundle.ts on a generated repository (not a test: vitest
// runs *.test.ts only). Figures are in docs/git-bundles.md.
//
//   npx tsx test/git/measure.ts [commits=1000] [files=2000]
//
// The repository: `files` text files of ~2 KiB in 50 folders, one commit
// adding them all, then `commits - 1` commits each rewriting 5 files
// (made with git fast-import), checked out, with 20 uncommitted edits;
// bundled once before `git gc` (one fast-import pack) and once after.
import { execFileSync } from 'node:child_process';
import { cpSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

import { createBundle, repositoryFingerprint, repositoryMatches, restoreRepository } from '../../src/git/bundle.js';

const commits = Number(process.argv[2] ?? 1000);
const fileCount = Number(process.argv[3] ?? 2000);
Object.assign(process.env, {
  GIT_CONFIG_GLOBAL: '/dev/null',
  GIT_CONFIG_NOSYSTEM: '1',
  GIT_AUTHOR_NAME: 'Bench',
  GIT_AUTHOR_EMAIL: 'bench@example.com',
  GIT_COMMITTER_NAME: 'Bench',
  GIT_COMMITTER_EMAIL: 'bench@example.com',
});

const git = (cwd: string, args: string[], input?: string): string =>
  execFileSync('git', args, { cwd, encoding: 'utf8', maxBuffer: 1 << 30, ...(input === undefined ? {} : { input }) });

let seed = 42;
const random = (): number => {
  seed = (seed * 1103515245 + 12345) & 0x7fffffff;
  return seed / 0x7fffffff;
};
const WORDS = 'const let function return import export from await async value result error path file bucket object sync push pull'.split(' ');
const text = (bytes: number): string => {
  let out = '';
  while (out.length < bytes) {
    const words = Array.from({ length: 8 }, () => WORDS[Math.floor(random() * WORDS.length)]).join(' ');
    out += `${words} ${Math.floor(random() * 1e6)}\n`;
  }
  return out;
};
const blob = (content: string): string => `data ${Buffer.byteLength(content)}\n${content}\n`;

const root = mkdtempSync(path.join(tmpdir(), 's3ws-git-measure-'));
const time = async <T>(label: string, fn: () => Promise<T> | T): Promise<T> => {
  const start = performance.now();
  const value = await fn();
  rows.push([label, `${(performance.now() - start).toFixed(0)} ms`]);
  return value;
};
const rows: Array<[string, string]> = [];
const du = (dir: string): number => {
  let total = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, entry.name);
    total += entry.isDirectory() ? du(p) : lstatSync(p).size;
  }
  return total;
};
const mib = (bytes: number): string => `${(bytes / 1024 / 1024).toFixed(1)} MiB`;

try {
  const ws = path.join(root, 'ws');
  mkdirSync(ws);
  git(ws, ['-c', 'init.defaultBranch=main', 'init', '-q']);
  const paths = Array.from({ length: fileCount }, (_, i) => `src/d${i % 50}/file${i}.txt`);
  await time('generate (fast-import + checkout)', () => {
    let stream = '';
    for (let c = 1; c <= commits; c++) {
      const changed = c === 1 ? paths : Array.from({ length: 5 }, () => paths[Math.floor(random() * paths.length)]!);
      stream += `commit refs/heads/main\nmark :${c}\ncommitter Bench <bench@example.com> ${1_700_000_000 + c * 60} +0000\n${blob(`commit ${c}`)}`;
      if (c > 1) stream += `from :${c - 1}\n`;
      for (const p of changed) stream += `M 100644 inline ${p}\n${blob(text(2048))}`;
      stream += '\n';
    }
    git(ws, ['fast-import', '--quiet'], stream);
    git(ws, ['reset', '-q', '--hard', 'main']);
    for (let i = 0; i < 20; i++) writeFileSync(path.join(ws, paths[i * 7]!), text(2048));
  });
  const out = path.join(root, 'out');
  rows.push(['.git size (fast-import pack)', mib(du(path.join(ws, '.git')))]);
  const first = await time('createBundle (before gc: no deltas to reuse)', () => createBundle(ws, out));
  rows.push(['bundle size (before gc)', mib(statSync(first.bundlePath!).size)]);
  await time('git gc', () => git(ws, ['gc', '-q']));
  rows.push(['.git size (after gc)', mib(du(path.join(ws, '.git')))]);
  rows.push(['working tree', `${fileCount} files, ${mib(du(ws) - du(path.join(ws, '.git')))}`]);

  await time('repositoryFingerprint', () => repositoryFingerprint(ws));
  await time('repositoryFingerprint (again, warm)', () => repositoryFingerprint(ws));
  const created = await time('createBundle (after gc)', () => createBundle(ws, out));
  rows.push(['bundle size', mib(statSync(created.bundlePath!).size)]);
  rows.push(['sidecar size', `${readFileSync(created.sidecarPath).length} bytes`]);
  await time('createBundle (again, warm)', () => createBundle(ws, out));
  const statusBefore = git(ws, ['status', '--porcelain']);

  for (const refreshIndex of [true, false]) {
    const target = path.join(root, `restored-${refreshIndex}`);
    cpSync(ws, target, { recursive: true, filter: (source) => path.basename(source) !== '.git' });
    await time(`restoreRepository (refreshIndex: ${refreshIndex})`, () =>
      restoreRepository(target, created.bundlePath, readFileSync(created.sidecarPath, 'utf8'), { refreshIndex }),
    );
    await time(`  then the first git status`, () => {
      if (git(target, ['status', '--porcelain']) !== statusBefore) throw new Error('status differs after restore');
    });
    if (refreshIndex) {
      rows.push(['restored .git size', mib(du(path.join(target, '.git')))]);
      await time('repositoryMatches (restored)', async () => {
        if (!(await repositoryMatches(target, created.sidecar))) throw new Error('restored repository does not match');
      });
    }
  }
  const width = Math.max(...rows.map(([l]) => l.length));
  console.log(`git ${git(root, ['--version']).trim().replace('git version ', '')}, node ${process.version}, ${commits} commits, ${fileCount} files`);
  for (const [label, value] of rows) console.log(`${label.padEnd(width)}  ${value}`);
} finally {
  rmSync(root, { recursive: true, force: true });
}
