// The command line (dist/cli.js, built): every command, every exit code,
// flags > environment > config file, the JSON line format, usage errors, a
// missing bucket, an unreachable endpoint, credentials through --profile, a
// missing peer dependency. Each test runs the binary as a child process
// against the run's local S3 server, in its own bucket and directories, so
// the tests of this file run concurrently.
import { execFileSync, spawn } from 'node:child_process';
import { writeFile, rm, unlink } from 'node:fs/promises';
import { connect, type Socket } from 'node:net';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

import { afterAll, beforeAll, describe, expect, test } from 'vitest';

import { closedPort, ensureCliBuilt, ROOT, runCli, where, type JsonLine } from '../helpers/cli.js';
import { createTestBucket, getObjectBytes, listAllKeys, makeTestClient, s3Endpoint } from '../helpers/s3.js';
import { makeTempDir, readTree, writeTree } from '../helpers/tree.js';

const client = makeTestClient();

beforeAll(async () => {
  await ensureCliBuilt();
}, 60_000);

// removed after the file, not per test: onTestFinished() outside a test's
// context is not safe with concurrent tests
const cleanups: Array<() => Promise<void>> = [];
afterAll(async () => {
  await Promise.all(cleanups.map((c) => c()));
});

async function tempDir(): Promise<string> {
  const t = await makeTempDir('s3ws-cli-');
  cleanups.push(t.cleanup);
  return t.dir;
}

const files = (n: number, size = 100): Record<string, string> =>
  Object.fromEntries(Array.from({ length: n }, (_, i) => [`f/${String(i).padStart(2, '0')}.txt`, `file ${i} `.repeat(size / 10)]));

const byType = (lines: JsonLine[], type: string): JsonLine[] => lines.filter((l) => l.type === type);

describe.concurrent('s3-workspace-sync (the built binary)', () => {
  test('--version, --help, help of every command (with examples)', { timeout: 15_000 }, async () => {
    const pkg = (await import('../../package.json', { with: { type: 'json' } })).default as { version: string };
    const [version, help, ...commands] = await Promise.all([
      runCli(['--version']),
      runCli(['--help']),
      ...['pull', 'push', 'plan', 'status', 'verify', 'watch'].map((c) => runCli([c, '--help'])),
    ]);
    expect(version.code).toBe(0);
    expect(version.stdout.trim()).toBe(pkg.version);
    expect(help.code).toBe(0);
    for (const c of ['pull', 'push', 'plan pull|push', 'status', 'verify', 'watch']) expect(help.stdout).toContain(`  ${c}`);
    expect(help.stdout).toMatch(/Exit codes: 0 done, 1 some files failed/);
    for (const [i, c] of ['pull', 'push', 'plan', 'status', 'verify', 'watch'].entries()) {
      const r = commands[i]!;
      expect(r.code, c).toBe(0);
      expect(r.stdout, c).toContain(`Usage: s3-workspace-sync ${c}`);
      expect(r.stdout, c).toContain('Examples:');
      expect(r.stdout, c).toContain('--bucket NAME');
    }
    // options that do not apply are not listed
    expect(commands[4]!.stdout).not.toContain('--dry-run');
    expect(commands[0]!.stdout).toContain('--priority');
    // help never loads the library: fast
    expect(version.ms).toBeLessThan(5_000);
  });

  test('usage and configuration errors exit 2 with a message (and a JSON result line)', { timeout: 15_000 }, async () => {
    const dir = await tempDir();
    const bad = path.join(dir, 'bad.json');
    await writeFile(bad, JSON.stringify({ bucket: 'b', prefx: 'x/' }));
    const broken = path.join(dir, 'broken.json');
    await writeFile(broken, '{ "bucket": ');
    const base = ['--bucket', 'bkt', '--prefix', 'p/', '--dir', dir];
    const cases: Array<[string[], RegExp]> = [
      [['push', '--prefx', 'x/'], /unknown option '--prefx' \(did you mean --prefix\?\)/],
      [['push', ...base, '--concurrency', 'lots'], /--concurrency must be a whole number/],
      [['push', ...base, '--max-total-bytes', '12 parsecs'], /--max-total-bytes must be a size/],
      [['push', '--prefix', 'p/', '--dir', dir], /--bucket is required \(or S3WS_BUCKET/],
      [['pusj', ...base], /unknown command "pusj" \(did you mean push\?\)/],
      [['watch', ...base, '--priority', 'a'], /--priority is not an option of watch/],
      [['plan', ...base], /plan needs a direction/],
      [['verify', ...base, '--dry-run'], /--dry-run is not an option of verify/],
      [['push', ...base, '--sse-customer-key', 'k'], /not accepted on the command line.*S3WS_SSE_CUSTOMER_KEY/],
      [['push', ...base, '--secret-access-key', 'k'], /credentials are never taken from the command line/],
      [['push', ...base, '--config', bad], /unknown key "prefx" in the config file .*did you mean "prefix"/],
      [['push', ...base, '--config', broken], /is not valid JSON/],
      [['push', ...base, '--config', path.join(dir, 'missing.json')], /cannot read the config file/],
      // the library's own check, mapped back to the flag
      [['push', ...base, '--upload-concurrency', '0'], /`uploadConcurrency` must be an integer from 1 to 1000/],
    ];
    const runs = await Promise.all(cases.map(([args]) => runCli(args)));
    for (const [i, [args, message]] of cases.entries()) {
      const r = runs[i]!;
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr, args.join(' ')).toMatch(message);
      expect(r.result?.exitCode, args.join(' ')).toBe(2);
      expect(r.result?.ok).toBe(false);
    }
    expect(runs.at(-1)!.stderr).toContain('--upload-concurrency');
  });

  test('push, pull, verify, status, plan: JSON lines and exit 0', { timeout: 20_000 }, async () => {
    const bucket = await createTestBucket(client);
    const a = await tempDir();
    const b = await tempDir();
    await writeTree(a, { ...files(5), 'notes.md': '# notes\n', 'debug.log': 'noise' });

    const push = await runCli(['push', ...where(bucket, 'ws/', a), '--json', '--exclude', '*.log']);
    expect(push.code, push.stderr).toBe(0);
    const [start] = push.lines;
    expect(start).toMatchObject({ type: 'start', schema: 1, command: 'push', bucket, prefix: 'ws/', dir: a, dryRun: false });
    for (const line of push.lines) expect(line.schema).toBe(1);
    const uploads = byType(push.lines, 'progress').filter((p) => p.phase === 'upload');
    expect(uploads.at(-1)).toMatchObject({ current: 6, total: 6, percentage: 100 });
    expect(push.result).toMatchObject({ type: 'result', command: 'push', exitCode: 0, ok: true, result: { success: true, uploadedFiles: 6, deletedFiles: 0 } });
    expect(await listAllKeys(client, bucket, 'ws/')).not.toContain('ws/debug.log');

    const pull = await runCli(['pull', ...where(bucket, 'ws/', b), '--json']);
    expect(pull.code, pull.stderr).toBe(0);
    expect(pull.result).toMatchObject({ exitCode: 0, result: { downloadedFiles: 6 } });
    const { 'debug.log': _, ...pushed } = await readTree(a);
    expect(await readTree(b)).toEqual(pushed);

    const [verify, status] = await Promise.all([runCli(['verify', ...where(bucket, 'ws/', b), '--json']), runCli(['status', ...where(bucket, 'ws/', b), '--json'])]);
    expect(verify.code).toBe(0);
    expect(verify.result).toMatchObject({ command: 'verify', report: { ok: true, checked: 6 } });
    expect(status.code).toBe(0);
    expect(status.result).toMatchObject({ command: 'status', inStep: true });

    // a local change: verify exits 1, status and plan show it, nothing moves
    await writeFile(path.join(b, 'notes.md'), '# notes, edited\n');
    await unlink(path.join(b, 'f/00.txt'));
    const [verify2, status2, plan] = await Promise.all([
      runCli(['verify', ...where(bucket, 'ws/', b), '--json']),
      runCli(['status', ...where(bucket, 'ws/', b), '--json']),
      runCli(['plan', 'push', ...where(bucket, 'ws/', b), '--json']),
    ]);
    expect(verify2.code).toBe(1);
    expect(verify2.result).toMatchObject({ exitCode: 1, report: { ok: false, different: [{ path: 'notes.md' }], missingLocally: [{ path: 'f/00.txt' }] } });
    expect(status2.code).toBe(0);
    expect(status2.result).toMatchObject({ inStep: false, push: { transfers: [{ path: 'notes.md', reason: 'changed' }], deletions: [{ path: 'f/00.txt', reason: 'deleted-locally' }] } });
    expect(plan.code).toBe(0);
    expect(plan.result).toMatchObject({ command: 'plan push', plan: { direction: 'push', transfers: [{ path: 'notes.md' }] } });

    // --dry-run changes nothing; then the real push
    const dry = await runCli(['push', ...where(bucket, 'ws/', b), '--json', '--dry-run']);
    expect(dry.code).toBe(0);
    expect(dry.result).toMatchObject({ result: { dryRun: true, uploadedFiles: 0 } });
    expect((await getObjectBytes(client, bucket, 'ws/notes.md')).toString()).toBe('# notes\n');
    const real = await runCli(['push', ...where(bucket, 'ws/', b), '--quiet']);
    expect(real.code).toBe(0);
    expect(real.lines.map((l) => l.type)).toEqual(['result']); // --quiet: the result line only
    expect((await getObjectBytes(client, bucket, 'ws/notes.md')).toString()).toBe('# notes, edited\n');
    expect(await listAllKeys(client, bucket, 'ws/')).not.toContain('ws/f/00.txt');
  });

  test('--git bundle (or S3WS_GIT=bundle): push saves the repository, pull restores it', { timeout: 30_000 }, async () => {
    const bucket = await createTestBucket(client);
    const a = await tempDir();
    const b = await tempDir();
    const env = { GIT_CONFIG_GLOBAL: '/dev/null', GIT_CONFIG_NOSYSTEM: '1', GIT_AUTHOR_NAME: 'T', GIT_AUTHOR_EMAIL: 't@example.com', GIT_COMMITTER_NAME: 'T', GIT_COMMITTER_EMAIL: 't@example.com' };
    const git = (cwd: string, ...args: string[]) => execFileSync('git', args, { cwd, encoding: 'utf8', env: { ...process.env, ...env } });
    await writeTree(a, { 'app.txt': 'app\n' });
    git(a, '-c', 'init.defaultBranch=main', 'init', '-q');
    git(a, 'add', '-A');
    git(a, 'commit', '-q', '-m', 'one');
    const push = await runCli(['push', ...where(bucket, 'g/', a), '--json', '--git', 'bundle'], { env });
    expect(push.code, push.stderr).toBe(0);
    expect(await listAllKeys(client, bucket, 'g/.s3-workspace-sync/git/', { includeLibrary: true })).toContain('g/.s3-workspace-sync/git/repository.json');
    const pull = await runCli(['pull', ...where(bucket, 'g/', b), '--json'], { env: { ...env, S3WS_GIT: 'bundle' } });
    expect(pull.code, pull.stderr).toBe(0);
    expect(git(b, 'log', '--format=%s')).toBe('one\n');
    expect(git(b, 'status', '--porcelain')).toBe('?? .s3-workspace-sync/\n');
  });

  test('a guard refuses: exit 4, nothing deleted; the flag that allows it', { timeout: 20_000 }, async () => {
    const bucket = await createTestBucket(client);
    const a = await tempDir();
    await writeTree(a, files(12));
    expect((await runCli(['push', ...where(bucket, 'g/', a)])).code).toBe(0);
    for (let i = 0; i < 10; i++) await unlink(path.join(a, `f/${String(i).padStart(2, '0')}.txt`));

    const [refused, plan] = await Promise.all([runCli(['push', ...where(bucket, 'g/', a)]), runCli(['plan', 'push', ...where(bucket, 'g/', a)])]);
    expect(refused.code).toBe(4);
    expect(refused.result?.error).toMatchObject({ code: 'MAX_DELETES' });
    expect(refused.stderr).toContain('--max-deletes');
    expect(plan.code).toBe(4);
    expect(plan.result).toMatchObject({ plan: { refusedBy: { code: 'MAX_DELETES' } } });
    expect(await listAllKeys(client, bucket, 'g/')).toHaveLength(12);

    const allowed = await runCli(['push', ...where(bucket, 'g/', a), '--max-deletes', 'off']);
    expect(allowed.code, allowed.stderr).toBe(0);
    expect(allowed.result).toMatchObject({ result: { deletedFiles: 10 } });
    expect(await listAllKeys(client, bucket, 'g/')).toHaveLength(2);
  });

  test('a conflict exits 3 and changes nothing there; a file that cannot be pushed exits 1', { timeout: 20_000 }, async () => {
    const bucket = await createTestBucket(client);
    const a = await tempDir();
    const b = await tempDir();
    const c = await tempDir();
    await writeTree(a, { 'shared.txt': 'from a' });
    await writeTree(b, { 'shared.txt': 'from b' });
    await writeTree(c, { 'ok.txt': 'fine' });
    await writeFile(path.join(c, 'back\\slash.txt'), 'a name S3 keys cannot hold here');
    const [first, failing] = await Promise.all([runCli(['push', ...where(bucket, 'c/', a)]), runCli(['push', ...where(bucket, 'bad/', c)])]);
    expect(first.code).toBe(0);

    // b never synced, and the bucket holds other content at its path
    const conflict = await runCli(['push', ...where(bucket, 'c/', b)]);
    expect(conflict.code, conflict.stdout).toBe(3);
    expect(conflict.result).toMatchObject({ exitCode: 3, result: { success: false, conflicts: [{ path: 'shared.txt', resolution: 'reported' }] } });
    expect((await getObjectBytes(client, bucket, 'c/shared.txt')).toString()).toBe('from a');

    expect(failing.code, failing.stdout).toBe(1);
    expect(failing.result).toMatchObject({ exitCode: 1, result: { success: false, uploadedFiles: 1, failedFiles: [{ path: 'back\\slash.txt', code: 'INVALID_NAME' }] } });
  });

  test('a missing bucket and an unreachable endpoint: exit 5, a clear error, bounded time', { timeout: 30_000 }, async () => {
    const dir = await tempDir();
    await writeTree(dir, { 'a.txt': 'a' });
    const port = await closedPort();
    const [missing, unreachable] = await Promise.all([
      runCli(['push', ...where('no-such-bucket-here', 'p/', dir)]),
      runCli(['pull', '--bucket', 'bkt', '--prefix', 'p/', '--dir', dir, '--endpoint', `http://127.0.0.1:${port}`, '--path-style'], { timeoutMs: 25_000 }),
    ]);
    expect(missing.code, missing.stderr).toBe(5);
    expect(missing.result?.error).toMatchObject({ code: 'BUCKET_NOT_FOUND' });
    expect(missing.stderr).toMatch(/check --bucket/);

    expect(unreachable.code, unreachable.stderr).toBe(5);
    expect(unreachable.result?.error).toMatchObject({ code: 'NETWORK' });
    expect(unreachable.result?.error?.message).toMatch(/ECONNREFUSED|connect/i);
    expect(unreachable.stderr).toMatch(/check --endpoint/);
    expect(unreachable.ms).toBeLessThan(20_000);
  });

  test('an endpoint that never accepts the connection: exit 5 within --connect-timeout × attempts', { timeout: 20_000 }, async () => {
    // a listener whose process never accepts: once its small backlog is full,
    // connection attempts get no answer at all (SYNs dropped), like a firewalled host
    const silent = spawn(process.execPath, ['-e', "const s = require('net').createServer().listen(0, '127.0.0.1', 1, () => { console.log(s.address().port); Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0); });"], { stdio: ['ignore', 'pipe', 'inherit'] });
    const sockets: Socket[] = [];
    cleanups.push(async () => {
      for (const s of sockets) s.destroy();
      silent.kill('SIGKILL');
    });
    const port = Number(await new Promise<string>((resolve) => silent.stdout.setEncoding('utf8').once('data', resolve)));
    for (let i = 0; i < 4; i++) sockets.push(connect(port, '127.0.0.1').on('error', () => {}));
    await new Promise((r) => setTimeout(r, 200));
    const dir = await tempDir();
    const run = await runCli(['pull', '--bucket', 'bkt', '--prefix', 'p/', '--dir', dir, '--endpoint', `http://127.0.0.1:${port}`, '--path-style', '--connect-timeout', '1s']);
    expect(run.code, run.stderr).toBe(5);
    expect(run.result?.error).toMatchObject({ code: 'NETWORK' });
    expect(run.result?.error?.message).toMatch(/could not connect within 1 s/);
    // 3 attempts of 1 s, plus backoff and start-up; the default (5 s) bounds it at about 16 s the same way
    expect(run.ms).toBeGreaterThan(2_500);
    expect(run.ms).toBeLessThan(10_000);
  });

  test('precedence: flags > S3WS_* environment > config file (--config, S3WS_CONFIG, ./s3-workspace-sync.json)', { timeout: 20_000 }, async () => {
    const bucket = await createTestBucket(client);
    const dir = await tempDir();
    const cwd = await tempDir();
    await writeTree(dir, { 'keep.txt': 'k', 'skip.tmp': 's' });
    const config = { bucket, prefix: 'from-config/', dir, endpoint: s3Endpoint(), pathStyle: true, exclude: ['*.tmp'], maxDeletes: 3 };
    await writeFile(path.join(cwd, 's3-workspace-sync.json'), JSON.stringify(config));
    const other = path.join(cwd, 'other.json');
    await writeFile(other, JSON.stringify({ ...config, prefix: 'from-other-config/' }));

    const plan = (extra: string[], env: Record<string, string> = {}) => runCli(['plan', 'push', '--json', ...extra], { cwd, env });
    const [fromConfig, fromEnv, fromFlag, explicit, viaEnv, envList] = await Promise.all([
      plan([]),
      plan([], { S3WS_PREFIX: 'from-env/' }),
      plan(['--prefix', 'from-flag/'], { S3WS_PREFIX: 'from-env/' }),
      plan(['--config', other], { S3WS_PREFIX: '' }), // an empty variable counts as unset
      plan([], { S3WS_CONFIG: other }),
      plan([], { S3WS_EXCLUDE: '*.txt' }), // replaces the config file's list
    ]);
    const prefixOf = (r: typeof fromConfig) => (r.lines[0] as { prefix?: string }).prefix;
    expect(fromConfig.code, fromConfig.stderr).toBe(0);
    expect(prefixOf(fromConfig)).toBe('from-config/');
    expect(fromConfig.lines[0]).toMatchObject({ configFile: path.join(cwd, 's3-workspace-sync.json') });
    expect(fromConfig.result).toMatchObject({ plan: { transfers: [{ path: 'keep.txt' }] } });
    expect(prefixOf(fromEnv)).toBe('from-env/');
    expect(prefixOf(fromFlag)).toBe('from-flag/');
    expect(prefixOf(explicit)).toBe('from-other-config/');
    expect(prefixOf(viaEnv)).toBe('from-other-config/');
    expect(envList.result).toMatchObject({ plan: { transfers: [{ path: 'skip.tmp' }] } });

    // a flag beats a bad value below it: no error from the environment's value
    const envBad = await plan(['--max-deletes', '2'], { S3WS_MAX_DELETES: 'many' });
    expect(envBad.code).toBe(0);
    const envBadUsed = await plan([], { S3WS_MAX_DELETES: 'many' });
    expect(envBadUsed.code).toBe(2);
    expect(envBadUsed.stderr).toMatch(/S3WS_MAX_DELETES must be a count/);
  });

  test('--profile selects credentials through the SDK (shared credentials file); a missing profile is a clear error', { timeout: 20_000 }, async () => {
    const bucket = await createTestBucket(client);
    const dir = await tempDir();
    await writeTree(dir, { 'a.txt': 'a' });
    const credentials = path.join(dir, '..', `${path.basename(dir)}-credentials`);
    await writeFile(credentials, '[cli-test]\naws_access_key_id = S3RVER\naws_secret_access_key = S3RVER\n');
    cleanups.push(() => rm(credentials, { force: true }));
    const env = { AWS_ACCESS_KEY_ID: undefined, AWS_SECRET_ACCESS_KEY: undefined, AWS_SHARED_CREDENTIALS_FILE: credentials };
    const [ok, missing] = await Promise.all([
      runCli(['push', ...where(bucket, 'p/', dir), '--profile', 'cli-test'], { env }),
      runCli(['push', ...where(bucket, 'p/', dir), '--profile', 'nobody'], { env }),
    ]);
    expect(ok.code, ok.stderr + ok.stdout).toBe(0);
    expect(await listAllKeys(client, bucket, 'p/')).toEqual(['p/a.txt']);
    expect(missing.code).toBe(5);
    expect(missing.stderr).toMatch(/profile|credential/i);
    expect(missing.stderr).toMatch(/AWS SDK chain/);
  });

  test('without @aws-sdk/client-s3: a clear message, exit 2', { timeout: 15_000 }, async () => {
    const preload = pathToFileURL(path.join(ROOT, 'test/helpers/no-aws-sdk.mjs')).href;
    const dir = await tempDir();
    const [run, version] = await Promise.all([
      runCli(['push', '--bucket', 'bkt', '--prefix', 'p/', '--dir', dir], { nodeArgs: ['--import', preload] }),
      runCli(['--version'], { nodeArgs: ['--import', preload] }),
    ]);
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(/@aws-sdk\/client-s3\) is not installed/);
    expect(run.stderr).toContain('npm install @aws-sdk/client-s3');
    expect(run.result?.error).toMatchObject({ code: 'MISSING_PEER' });
    expect(version.code).toBe(0); // --version needs neither the library nor the SDK
  });
});
