// Signals: SIGTERM mid-push and SIGINT mid-pull cancel through the library's
// abort signal (exit 130, nothing half-written, the next run completes), and
// examples/entrypoint.sh forwards SIGTERM to the agent, then pushes.
//
// The push test runs against the strict S3 double (test/helpers/strict-s3.ts),
// not s3rver: s3rver stores a PUT whose connection closes mid-body as an
// object holding the bytes received (measured: 1,000 of 30,000 bytes, answered
// 200 to a later HEAD), which S3 never does; an interrupted push there leaves
// such an object, which the next push rightly reports as another writer's
// version (a conflict). The double, like S3, stores nothing for an incomplete
// body.
import { spawn } from 'node:child_process';
import { chmod, readdir, writeFile } from 'node:fs/promises';
import path from 'node:path';

import { afterAll, beforeAll, describe, expect, test } from 'vitest';

import { baseEnv, CLI, cliHome, ensureCliBuilt, ROOT, runCli, where } from '../helpers/cli.js';
import { createTestBucket, getObjectBytes, listAllKeys, makeTestClient, putObjects, s3Endpoint } from '../helpers/s3.js';
import { startStrictS3, type StrictS3 } from '../helpers/strict-s3.js';
import { makeTempDir, readTree, writeTree } from '../helpers/tree.js';

const client = makeTestClient();
const cleanups: Array<() => Promise<void>> = [];
let strict: StrictS3;

beforeAll(async () => {
  await ensureCliBuilt();
  strict = await startStrictS3({ buckets: ['interrupted'] });
}, 60_000);

afterAll(async () => {
  await strict?.close();
  await Promise.all(cleanups.map((c) => c()));
});

async function tempDir(): Promise<string> {
  const t = await makeTempDir('s3ws-cli-sig-');
  cleanups.push(t.cleanup);
  return t.dir;
}

const tree = (n: number, size: number): Record<string, Buffer> =>
  Object.fromEntries(Array.from({ length: n }, (_, i) => [`d${i % 4}/file-${String(i).padStart(3, '0')}.bin`, Buffer.alloc(size, `${i},`)]));

const isLibrary = (key: string): boolean => key.includes('.s3-workspace-sync/');

describe.concurrent('signals', () => {
  test('SIGTERM mid-push: exit 130, no partial object, the next push completes', { timeout: 20_000 }, async () => {
    const dir = await tempDir();
    const files = tree(150, 16 * 1024);
    await writeTree(dir, files);
    const args = ['push', '--bucket', 'interrupted', '--prefix', 'ws/', '--dir', dir, '--endpoint', strict.endpoint, '--path-style', '--concurrency', '1'];
    let killed = false;
    const first = await runCli(args, {
      onLine: (line, child) => {
        if (killed || !line.includes('"phase":"upload"')) return;
        const p = JSON.parse(line) as { current: number };
        if (p.current >= 1) {
          killed = true;
          child.kill('SIGTERM');
        }
      },
    });
    expect(killed).toBe(true);
    expect(first.code, first.stderr).toBe(130);
    expect(first.result).toMatchObject({ exitCode: 130, error: { code: 'ABORTED' } });
    expect(first.stderr).toMatch(/SIGTERM/);
    const keys = strict.state.keys('interrupted', 'ws/').filter((k) => !isLibrary(k));
    expect(keys.length).toBeGreaterThan(0);
    expect(keys.length).toBeLessThan(150);
    for (const key of keys) expect(strict.state.getObject('interrupted', key)!.body.equals(files[key.slice(3)]!), key).toBe(true);
    expect(strict.state.uploads('interrupted')).toEqual([]);

    const second = await runCli(args);
    expect(second.code, second.stderr).toBe(0);
    expect(second.result).toMatchObject({ result: { success: true, uploadedFiles: 150 - keys.length } });
    const all = strict.state.keys('interrupted', 'ws/').filter((k) => !isLibrary(k));
    expect(all).toHaveLength(150);
    for (const key of all) expect(strict.state.getObject('interrupted', key)!.body.equals(files[key.slice(3)]!), key).toBe(true);
  });

  test('SIGINT mid-pull: exit 130, no partial or temporary file, the next pull completes', { timeout: 20_000 }, async () => {
    const bucket = await createTestBucket(client);
    const files = tree(120, 16 * 1024);
    await putObjects(client, bucket, Object.fromEntries(Object.entries(files).map(([k, v]) => [`p/${k}`, v])));
    const dir = await tempDir();
    let killed = false;
    const first = await runCli(['pull', ...where(bucket, 'p/', dir), '--concurrency', '1'], {
      onLine: (line, child) => {
        if (killed || !line.includes('"phase":"download"')) return;
        if ((JSON.parse(line) as { current: number }).current >= 1) {
          killed = true;
          child.kill('SIGINT');
        }
      },
    });
    expect(first.code, first.stderr).toBe(130);
    expect(first.result).toMatchObject({ exitCode: 130, error: { code: 'ABORTED' } });
    const got = await readTree(dir);
    expect(Object.keys(got).length).toBeGreaterThan(0);
    expect(Object.keys(got).length).toBeLessThan(120);
    for (const [p, body] of Object.entries(got)) expect(body.equals(files[p]!), `${p} is whole`).toBe(true);

    const second = await runCli(['pull', ...where(bucket, 'p/', dir)]);
    expect(second.code, second.stderr).toBe(0);
    // (Buffer.equals: toEqual on 2 MB of Buffers compares byte by byte, for seconds)
    const all = await readTree(dir);
    expect(Object.keys(all)).toEqual(Object.keys(files).sort());
    for (const [p, body] of Object.entries(all)) expect(body.equals(files[p]!), p).toBe(true);
    // nothing left in the state folder but the library's own files (no temp files elsewhere: readTree above)
    expect((await readdir(path.join(dir, '.s3-workspace-sync'))).filter((n) => /\.tmp|partial/i.test(n))).toEqual([]);
  });

  test('examples/entrypoint.sh: pull, run the agent, forward SIGTERM, push, exit with the agent\'s code', { timeout: 20_000 }, async () => {
    const bucket = await createTestBucket(client);
    await putObjects(client, bucket, { 'ws/seed.txt': 'restored by the pull' });
    const dir = await tempDir();
    const bin = await tempDir();
    // `s3-workspace-sync` on PATH, as after `npm install -g`
    const shim = path.join(bin, 's3-workspace-sync');
    await writeFile(shim, `#!/bin/sh\nexec "${process.execPath}" "${CLI}" "$@"\n`);
    await chmod(shim, 0o755);
    const env = {
      ...baseEnv(await cliHome()),
      PATH: `${bin}:${process.env.PATH ?? '/usr/bin:/bin'}`,
      S3WS_BUCKET: bucket,
      S3WS_PREFIX: 'ws/',
      S3WS_DIR: dir,
      S3WS_ENDPOINT: s3Endpoint(),
      S3WS_PATH_STYLE: '1',
      S3WS_QUIET: '1',
    };
    // the agent: uses the restored file, writes its work, then runs until stopped
    const agent = 'cat "$S3WS_DIR/seed.txt" > "$S3WS_DIR/work.txt"; echo " + work" >> "$S3WS_DIR/work.txt"; echo agent-started; exec sleep 30';
    const child = spawn('sh', [path.join(ROOT, 'examples/entrypoint.sh'), 'sh', '-c', agent], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
    const code = await new Promise<number | null>((resolve, reject) => {
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        reject(new Error(`entrypoint did not finish: ${out} ${err}`));
      }, 15_000);
      child.stdout.setEncoding('utf8').on('data', (d: string) => {
        out += d;
        if (out.includes('agent-started') && !out.includes('(signalled)')) {
          out += '(signalled)';
          child.kill('SIGTERM');
        }
      });
      child.on('close', (c) => {
        clearTimeout(timer);
        resolve(c);
      });
    });
    expect(code, err).toBe(143); // the agent's status: sleep stopped by the forwarded SIGTERM
    expect((await getObjectBytes(client, bucket, 'ws/work.txt')).toString()).toBe('restored by the pull + work\n');
    expect(await listAllKeys(client, bucket, 'ws/')).toEqual(['ws/seed.txt', 'ws/work.txt']);
  });
});
