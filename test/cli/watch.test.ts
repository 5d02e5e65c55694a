// `s3-workspace-sync watch` (the built binary) against the run's local S3
// server: it restores the prefix, pushes what is written while it runs
// (JSON lines watch-start, push-start, push-end), and on SIGTERM stops
// watching, pushes everything and exits with that push's code. Every wait
// polls with a deadline; no fixed sleep decides anything.
import type { ChildProcess } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';

import { afterAll, beforeAll, describe, expect, test } from 'vitest';

import { ensureCliBuilt, runCli, where, type CliRun, type JsonLine } from '../helpers/cli.js';
import { createTestBucket, getObjectBytes, listAllKeys, makeTestClient, putObjects } from '../helpers/s3.js';
import { makeTempDir, readTree, writeTree } from '../helpers/tree.js';

const client = makeTestClient();
const cleanups: Array<() => Promise<void>> = [];

beforeAll(async () => {
  await ensureCliBuilt();
}, 60_000);

afterAll(async () => {
  await Promise.all(cleanups.map((c) => c()));
});

async function tempDir(): Promise<string> {
  const t = await makeTempDir('s3ws-cli-watch-');
  cleanups.push(t.cleanup);
  return t.dir;
}

async function waitFor(what: string, check: () => boolean | Promise<boolean>, deadlineMs = 15_000): Promise<void> {
  const until = Date.now() + deadlineMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** `watch` running as a child: its JSON lines as they arrive, and its end. */
function startWatch(args: string[], timeoutMs = 30_000): { lines: JsonLine[]; child: () => ChildProcess; done: Promise<CliRun>; seen: (type: string, match?: (l: JsonLine) => boolean) => Promise<JsonLine> } {
  const lines: JsonLine[] = [];
  let child: ChildProcess | undefined;
  const done = runCli(['watch', ...args], {
    timeoutMs,
    onSpawn: (c) => (child = c),
    onLine: (line) => {
      if (line.startsWith('{')) lines.push(JSON.parse(line) as JsonLine);
    },
  });
  let exited = false;
  void done.then(
    () => (exited = true),
    () => (exited = true),
  );
  const seen = async (type: string, match: (l: JsonLine) => boolean = () => true): Promise<JsonLine> => {
    let found: JsonLine | undefined;
    await waitFor(`a "${type}" line`, () => {
      found = lines.find((l) => l.type === type && match(l));
      if (found === undefined && exited) throw new Error(`watch exited without a "${type}" line: ${JSON.stringify(lines)}`);
      return found !== undefined;
    });
    return found!;
  };
  return { lines, child: () => child!, done, seen };
}

type PushEnd = JsonLine & { reason: string; paths: number | 'all'; durationMs: number; result: { success: boolean; uploadedFiles: number; deletedFiles: number } };

describe.concurrent('s3-workspace-sync watch', () => {
  test('restores the prefix, then pushes a file written after start; SIGTERM: exit 0', { timeout: 40_000 }, async () => {
    const bucket = await createTestBucket(client);
    await putObjects(client, bucket, { 'ws/seed.txt': 'from the bucket' });
    const dir = await tempDir();
    const w = startWatch([...where(bucket, 'ws/', dir), '--debounce', '100ms', '--reconcile', '0']);
    const start = await w.seen('watch-start');
    expect(start).toMatchObject({ schema: 1, initial: 'pull', initialResult: { downloadedFiles: 1 }, debounceMs: 100, maxDelayMs: 10_000, reconcileMs: 0, timeoutMs: null });
    expect(start.finalPush).toMatch(/SIGTERM.*full push.*SIGKILL 30 s.*--max-delay/);
    expect((await readTree(dir))['seed.txt']?.toString()).toBe('from the bucket');

    await writeFile(path.join(dir, 'new.txt'), 'written while watching');
    await waitFor('ws/new.txt in the bucket', async () => (await listAllKeys(client, bucket, 'ws/')).includes('ws/new.txt'));
    expect((await getObjectBytes(client, bucket, 'ws/new.txt')).toString()).toBe('written while watching');

    w.child().kill('SIGTERM');
    const run = await w.done;
    expect(run.code, run.stderr).toBe(0);
    expect(run.result).toMatchObject({ command: 'watch', exitCode: 0, ok: true, result: { success: true } });
  });

  test('--json: push-start and push-end lines (schema 1), a full push at the stop, the result line last', { timeout: 40_000 }, async () => {
    const bucket = await createTestBucket(client);
    const dir = await tempDir();
    await writeTree(dir, { 'a.txt': 'a' });
    const w = startWatch([...where(bucket, 'j/', dir), '--json', '--initial', 'push', '--debounce', '100ms', '--reconcile', '0']);
    expect(await w.seen('watch-start')).toMatchObject({ initial: 'push', initialResult: { uploadedFiles: 1 } });

    await writeFile(path.join(dir, 'b.txt'), 'b');
    const end = (await w.seen('push-end', (l) => (l as PushEnd).result.uploadedFiles > 0)) as PushEnd;
    expect(end).toMatchObject({ schema: 1, reason: 'quiet', paths: 1, result: { success: true, uploadedFiles: 1, deletedFiles: 0 } });
    expect(end.durationMs).toBeGreaterThanOrEqual(0);
    const starts = w.lines.filter((l) => l.type === 'push-start');
    expect(starts[0]).toMatchObject({ schema: 1, reason: 'quiet', paths: 1 });

    w.child().kill('SIGTERM');
    const run = await w.done;
    expect(run.code, run.stderr).toBe(0);
    const types = run.lines.map((l) => l.type);
    expect(types[0]).toBe('start');
    expect(run.lines[0]).toMatchObject({ command: 'watch', bucket, prefix: 'j/', dir });
    expect(types.at(-1)).toBe('result');
    for (const line of run.lines) expect(line.schema).toBe(1);
    for (const type of types) expect(['start', 'progress', 'log', 'watch-start', 'push-start', 'push-end', 'result']).toContain(type);
    const last = run.lines.filter((l) => l.type === 'push-end').at(-1);
    expect(last).toMatchObject({ reason: 'close', paths: 'all', result: { success: true, uploadedFiles: 0 } });
    expect(run.lines.find((l) => l.type === 'log' && /SIGTERM/.test(String(l.message)))).toBeDefined();
    expect(await listAllKeys(client, bucket, 'j/')).toEqual(['j/a.txt', 'j/b.txt']);
  });

  test('SIGTERM right after a write: the stop pushes it (a full push) and exits 0', { timeout: 40_000 }, async () => {
    const bucket = await createTestBucket(client);
    const dir = await tempDir();
    // no push would run on its own for 10 minutes: only the stop can push the file
    const w = startWatch([...where(bucket, 's/', dir), '--initial', 'none', '--debounce', '10m', '--max-delay', '10m', '--reconcile', '0']);
    expect(await w.seen('watch-start')).toMatchObject({ initial: 'none', initialResult: null, debounceMs: 600_000 });
    await writeFile(path.join(dir, 'last-words.txt'), 'written just before the signal');
    w.child().kill('SIGTERM');
    const run = await w.done;
    expect(run.code, run.stderr).toBe(0);
    expect(run.lines.filter((l) => l.type === 'push-end')).toEqual([expect.objectContaining({ reason: 'close', paths: 'all', result: expect.objectContaining({ uploadedFiles: 1 }) })]);
    expect(run.result).toMatchObject({ exitCode: 0, result: { success: true, uploadedFiles: 1 } });
    expect((await getObjectBytes(client, bucket, 's/last-words.txt')).toString()).toBe('written just before the signal');
  });

  test('a conflict at the stop exits 3, and the bucket keeps its version', { timeout: 40_000 }, async () => {
    const bucket = await createTestBucket(client);
    await putObjects(client, bucket, { 'c/shared.txt': 'theirs' });
    const dir = await tempDir();
    await writeTree(dir, { 'shared.txt': 'mine' });
    const w = startWatch([...where(bucket, 'c/', dir), '--initial', 'none', '--reconcile', '0']);
    await w.seen('watch-start');
    w.child().kill('SIGTERM');
    const run = await w.done;
    expect(run.code, run.stdout).toBe(3);
    expect(run.result).toMatchObject({ exitCode: 3, ok: false, result: { success: false, conflicts: [{ path: 'shared.txt', resolution: 'reported' }] } });
    expect((await getObjectBytes(client, bucket, 'c/shared.txt')).toString()).toBe('theirs');
  });

  test('SIGINT during the initial pull cancels it: exit 130, nothing half-written', { timeout: 40_000 }, async () => {
    const bucket = await createTestBucket(client);
    const files = Object.fromEntries(Array.from({ length: 120 }, (_, i) => [`d/f${String(i).padStart(3, '0')}.bin`, Buffer.alloc(16 * 1024, `${i},`)]));
    await putObjects(client, bucket, Object.fromEntries(Object.entries(files).map(([k, v]) => [`p/${k}`, v])));
    const dir = await tempDir();
    let killed = false;
    const run = await runCli(['watch', ...where(bucket, 'p/', dir), '--concurrency', '1'], {
      timeoutMs: 30_000,
      onLine: (line, child) => {
        if (killed || !line.includes('"phase":"download"')) return;
        if ((JSON.parse(line) as { current: number }).current >= 1) {
          killed = true;
          child.kill('SIGINT');
        }
      },
    });
    expect(killed).toBe(true);
    expect(run.code, run.stderr).toBe(130);
    expect(run.result).toMatchObject({ command: 'watch', exitCode: 130, error: { code: 'ABORTED' } });
    expect(run.lines.some((l) => l.type === 'watch-start')).toBe(false);
    const got = await readTree(dir);
    expect(Object.keys(got).length).toBeLessThan(120);
    for (const [p, body] of Object.entries(got)) expect(body.equals(files[p]!), `${p} is whole`).toBe(true);
  });

  test('bad --debounce, --max-delay shorter than --debounce, a bad --initial, environment or config value: exit 2', { timeout: 20_000 }, async () => {
    const dir = await tempDir();
    const config = path.join(dir, 'config.json');
    await writeFile(config, JSON.stringify({ debounce: 'soonish' }));
    const base = ['watch', '--bucket', 'bkt', '--prefix', 'p/', '--dir', dir];
    const cases: Array<[string[], Record<string, string>, RegExp]> = [
      [[...base, '--debounce', 'soon'], {}, /--debounce must be a duration/],
      [[...base, '--debounce', '2s', '--max-delay', '500ms'], {}, /--max-delay \(500 ms\) must not be shorter than --debounce \(2000 ms\)/],
      [[...base, '--initial', 'sideways'], {}, /--initial must be one of pull, push, none/],
      [base, { S3WS_RECONCILE: 'often' }, /S3WS_RECONCILE must be a duration/],
      [[...base, '--config', config], {}, /"debounce" in .*config\.json must be a duration/],
      [[...base, '--dry-run'], {}, /--dry-run is not an option of watch/],
      [['push', '--bucket', 'bkt', '--prefix', 'p/', '--dir', dir, '--debounce', '1s'], {}, /--debounce is not an option of push \(it applies to: watch\)/],
    ];
    const runs = await Promise.all(cases.map(([args, env]) => runCli(args, { env })));
    for (const [i, [args, , message]] of cases.entries()) {
      const r = runs[i]!;
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr, args.join(' ')).toMatch(message);
      expect(r.result).toMatchObject({ exitCode: 2, ok: false, error: { code: 'USAGE' } });
    }
  });

  test('watch --help: the watch options, the stop and its time limit; --help lists watch', { timeout: 15_000 }, async () => {
    const [help, all] = await Promise.all([runCli(['watch', '--help']), runCli(['--help'])]);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain('Usage: s3-workspace-sync watch');
    for (const flag of ['--debounce DURATION', '--max-delay DURATION', '--reconcile DURATION', '--initial MODE', '--conflict-policy', '--max-deletes', '--timeout']) expect(help.stdout).toContain(flag);
    expect(help.stdout).not.toContain('--dry-run');
    expect(help.stdout).not.toContain('--priority');
    expect(help.stdout).toMatch(/SIGKILL 30 s/);
    expect(help.stdout).toMatch(/--max-delay bounds how long a change waits/);
    expect(all.stdout).toMatch(/\n {2}watch {11}push local changes as they happen/);
  });
});
