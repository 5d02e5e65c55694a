// What git: 'bundle' adds to a push and a pull, against the local S3 server
// (not a test: vitest runs *.test.ts only). Figures are in README ("Git
// repositories") and docs/git-bundles.md.
//
//   npx tsx test/git/measure-sync.ts [commits=1000] [files=2000]
//
// The repository as in test/git/measure.ts (generated with git fast-import,
// then `git gc`, 20 uncommitted edits). Each figure is the median of 3 runs,
// each run on its own prefix: cold push, no-op push, cold pull into an empty
// directory, with git 'off' and with git 'bundle'; and a push after a commit
// that changed no file (with 'bundle': the bundle and its two uploads).
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

import { S3Client } from '@aws-sdk/client-s3';

import { startLocalS3 } from '../../scripts/local-s3-launcher.mjs';
import { S3WorkspaceSync, silentLogger } from '../../src/index.js';

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

let seed = 7;
const random = (): number => {
  seed = (seed * 1103515245 + 12345) & 0x7fffffff;
  return seed / 0x7fffffff;
};
const text = (bytes: number): string => {
  let out = '';
  while (out.length < bytes) out += `line ${Math.floor(random() * 1e9)} of generated text for the measurement\n`;
  return out;
};
const blob = (content: string): string => `data ${Buffer.byteLength(content)}\n${content}\n`;

const root = mkdtempSync(path.join(tmpdir(), 's3ws-git-sync-measure-'));
const s3 = await startLocalS3({ buckets: ['measure'] });
const client = new S3Client({
  endpoint: s3.endpoint,
  forcePathStyle: true,
  region: 'us-east-1',
  credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
  requestChecksumCalculation: 'WHEN_REQUIRED',
  responseChecksumValidation: 'WHEN_REQUIRED',
});
const sync = (workspaceDir: string, prefix: string, mode: 'off' | 'bundle'): S3WorkspaceSync =>
  new S3WorkspaceSync({ bucket: 'measure', prefix, workspaceDir, s3Client: client, logger: silentLogger, git: mode });
const ms = async (fn: () => Promise<unknown>): Promise<number> => {
  const start = performance.now();
  await fn();
  return performance.now() - start;
};
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

try {
  const ws = path.join(root, 'ws');
  mkdirSync(ws);
  git(ws, ['-c', 'init.defaultBranch=main', 'init', '-q']);
  const paths = Array.from({ length: fileCount }, (_, i) => `src/d${i % 50}/file${i}.txt`);
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
  git(ws, ['gc', '-q']);
  for (let i = 0; i < 20; i++) writeFileSync(path.join(ws, paths[i * 7]!), text(2048));
  writeFileSync(path.join(ws, '.git', 'info', 'exclude'), '.s3-workspace-sync/\n');

  const rows: Array<[string, number, number]> = [];
  for (const [label, run] of [
    ['cold push', async (mode: 'off' | 'bundle', n: number) => ms(() => sync(ws, `${mode}-${n}/`, mode).push())],
    ['no-op push (new instance, state file)', async (mode: 'off' | 'bundle', n: number) => ms(() => sync(ws, `${mode}-${n}/`, mode).push())],
    [
      'push after a new commit (no file changed)',
      async (mode: 'off' | 'bundle', n: number) => {
        git(ws, ['commit', '-q', '--allow-empty', '-m', `measure ${mode} ${n}`]); // outside the timing
        return ms(() => sync(ws, `${mode}-${n}/`, mode).push());
      },
    ],
    [
      'cold pull into an empty directory',
      async (mode: 'off' | 'bundle', n: number) => {
        const target = path.join(root, `pull-${mode}-${n}`);
        return ms(async () => {
          const result = await sync(target, `${mode}-${n}/`, mode).pull();
          if (!result.success) throw new Error(`pull failed: ${JSON.stringify(result.failedFiles)}`);
        });
      },
    ],
  ] as const) {
    const off: number[] = [];
    const bundle: number[] = [];
    for (let n = 0; n < 3; n++) {
      off.push(await run('off', n));
      bundle.push(await run('bundle', n));
    }
    rows.push([label, median(off), median(bundle)]);
  }
  const restored = path.join(root, 'pull-bundle-0');
  if (git(restored, ['status', '--porcelain']) !== git(ws, ['status', '--porcelain'])) throw new Error('status differs after the pull');
  console.log(`git ${git(root, ['--version']).trim().replace('git version ', '')}, node ${process.version}, ${commits} commits, ${fileCount} files`);
  console.log(`${'operation'.padEnd(40)}  git 'off'  git 'bundle'`);
  for (const [label, a, b] of rows) console.log(`${label.padEnd(40)}  ${a.toFixed(0).padStart(6)} ms  ${b.toFixed(0).padStart(6)} ms`);
} finally {
  client.destroy();
  await s3.stop();
  rmSync(root, { recursive: true, force: true });
}
