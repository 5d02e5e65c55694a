// Property: whatever keys a listing returns, a pull either writes each one
// strictly inside the workspace -- a regular file at exactly
// workspace/<key minus prefix> (realpath inside, no symlink on the way) with
// the object's bytes -- or reports it (skippedFiles / failedFiles) with a
// reason. Nothing else is ever written: not outside the workspace (the
// parent directory holds only the workspace and an untouched sentinel), not
// inside it under another name, and no temporary file remains.
//
// Keys are drawn from segments built to hurt: `.`, `..`, `%2e` forms,
// backslashes, drive letters, control characters, empty segments, reserved
// and default-ignored names, case and Unicode-normalisation twins, full
// Unicode, and segments around the 255-byte limit; some keys fall outside the
// prefix. Listing and GetObject are mocked (aws-sdk-client-mock), so keys no
// real server would store are tested too. S3 keys are UTF-8, so only
// well-formed strings are used (no lone surrogates).
//
// Runs: PROPERTY_RUNS (default 200); seed: PROPERTY_SEED (fixed in npm test, `random` in npm run soak). The
// seed is printed on every run, and fast-check prints it with the shrunk
// counterexample on failure.
import { mkdir, mkdtemp, readFile, realpath, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';

import { GetObjectCommand, HeadObjectCommand, ListObjectsV2Command, S3Client, S3ServiceException } from '@aws-sdk/client-s3';
import { mockClient } from 'aws-sdk-client-mock';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';

import { S3WorkspaceSync, silentLogger } from '../../src/index.js';
import { listEntries, md5Hex } from '../helpers/sync-fixture.js';

const PREFIX = 'p/';
const RUNS = Math.max(1, Number(process.env.PROPERTY_RUNS ?? 200) || 200);
// npm test is deterministic (a fixed seed); `npm run soak` draws a new one (PROPERTY_SEED=random).
const SEED =
  process.env.PROPERTY_SEED === 'random'
    ? (Math.random() * 2 ** 31) | 0
    : process.env.PROPERTY_SEED !== undefined
      ? Number(process.env.PROPERTY_SEED) | 0
      : 1626376865;

const nasty = fc.constantFrom(
  '.', '..', '...', '%2e', '%2E', '%2e%2e', '%2E%2e', '.%2e', '%2e.', '%252e%252e', '%2f', '',
  '\\', '..\\..', 'a\\b', 'C:', 'c:x', '~', '-', ' ', 'CON', 'nul',
  '\u0000', '\n', '\r', '\t', '\u001b', '\u007f', '\u0085', '\u2028', '\u202e',
  'caf\u00e9', 'cafe\u0301', 'Readme.md', 'README.md', 'a', 'A',
  '.git', 'node_modules', '.s3-workspace-sync', 'x.s3ws-tmp', '.syncignore', '.env', 'dist',
);
const segment = fc.oneof(
  { weight: 5, arbitrary: nasty },
  { weight: 2, arbitrary: fc.string({ unit: 'binary-ascii', minLength: 1, maxLength: 6 }) },
  { weight: 2, arbitrary: fc.string({ unit: 'grapheme', minLength: 1, maxLength: 4 }) },
  { weight: 1, arbitrary: fc.string({ unit: 'binary', minLength: 1, maxLength: 4 }) },
  { weight: 2, arbitrary: fc.string({ unit: fc.constantFrom('a', '.', '/', '\\', '%', '2', 'e', 'E', '\u0001'), minLength: 1, maxLength: 8 }) },
  // Around the 255-byte segment limit, in 1- and 2-byte characters.
  { weight: 1, arbitrary: fc.integer({ min: 250, max: 260 }).map((n) => 'L'.repeat(n)) },
  { weight: 1, arbitrary: fc.integer({ min: 125, max: 130 }).map((n) => '\u00e9'.repeat(n)) },
);
const relative = fc.array(segment, { minLength: 1, maxLength: 4 }).map((parts) => parts.join('/'));
const key = fc
  .oneof(
    { weight: 8, arbitrary: relative.map((r) => PREFIX + r) },
    { weight: 1, arbitrary: relative.map((r) => `/${r}`) },
    { weight: 1, arbitrary: relative },
  )
  .filter((k) => !/\p{Cs}/u.test(k)); // well-formed UTF-16 only (S3 keys are UTF-8)
const keyLists = fc.array(key, { minLength: 1, maxLength: 6 });

function awsError(name: string, status: number): S3ServiceException {
  return new S3ServiceException({ name, $fault: 'client', $metadata: { httpStatusCode: status }, message: name });
}

const bodyOf = (k: string): Buffer => Buffer.from(`body of ${JSON.stringify(k)}`);

const client = new S3Client({ region: 'us-east-1', credentials: { accessKeyId: 'x', secretAccessKey: 'y' } });
const s3 = mockClient(client);
afterAll(() => {
  s3.restore();
  client.destroy();
});

/** One pull of `keys` into a fresh workspace: the problems found (none: the property holds) and how many keys were written. */
async function pullAndCheck(keys: string[]): Promise<{ problems: string[]; written: number }> {
  const parent = await realpath(await mkdtemp(path.join(tmpdir(), 's3ws-prop-')));
  try {
    const ws = path.join(parent, 'ws');
    await mkdir(ws);
    await writeFile(path.join(parent, 'sentinel.txt'), 'untouched');
    s3.reset();
    s3.on(ListObjectsV2Command).resolves({
      IsTruncated: false,
      KeyCount: keys.length,
      Contents: keys.map((Key) => ({ Key, Size: bodyOf(Key).length, ETag: `"${md5Hex(bodyOf(Key))}"`, LastModified: new Date('2024-01-01T00:00:00Z') })),
    });
    s3.on(GetObjectCommand).callsFake((input: { Key: string }) => {
      if (!keys.includes(input.Key)) throw awsError('NoSuchKey', 404);
      const buf = bodyOf(input.Key);
      return { Body: Readable.from([buf]), ContentLength: buf.length, ETag: `"${md5Hex(buf)}"`, LastModified: new Date('2024-01-01T00:00:00Z') };
    });
    s3.on(HeadObjectCommand).rejects(awsError('NotFound', 404));
    const sync = new S3WorkspaceSync({ bucket: 'mock-bucket', prefix: PREFIX, workspaceDir: ws, s3Client: client, logger: silentLogger });
    const result = await sync.pull();

    const problems: string[] = [];
    const entries = await listEntries(parent);
    const outside = entries.filter((e) => e !== 'ws/' && !e.startsWith('ws/'));
    if (JSON.stringify(outside) !== JSON.stringify(['sentinel.txt'])) problems.push(`outside the workspace: ${JSON.stringify(outside)}`);
    if ((await readFile(path.join(parent, 'sentinel.txt'), 'utf8')) !== 'untouched') problems.push('sentinel.txt changed');
    const inside = entries.filter((e) => e.startsWith('ws/') && e !== 'ws/').map((e) => e.slice(3));
    const files = new Set(inside.filter((e) => !e.endsWith('/')));
    const dirs = inside.filter((e) => e.endsWith('/')).map((d) => d.slice(0, -1));

    const realWs = await realpath(ws);
    const reported = [...result.skippedFiles.map((s) => [s.path, s.reason] as const), ...result.failedFiles.map((x) => [x.path, x.error] as const)];
    const expectedFiles = new Set<string>();
    for (const k of new Set(keys)) {
      const rel = k.startsWith(PREFIX) ? k.slice(PREFIX.length) : undefined;
      const isReported = reported.some(([p, why]) => (p === k || p === rel) && typeof why === 'string' && why.length > 0);
      if (rel !== undefined && files.has(rel)) {
        expectedFiles.add(rel);
        const target = `${realWs}/${rel}`;
        if ((await realpath(target)) !== target) problems.push(`${JSON.stringify(k)}: written through a link (${await realpath(target)})`);
        if (!(await readFile(target)).equals(bodyOf(k))) problems.push(`${JSON.stringify(k)}: written with the wrong content`);
        if (result.failedFiles.some((x) => x.path === rel || x.path === k)) problems.push(`${JSON.stringify(k)}: written but reported failed`);
      } else if (!isReported) {
        problems.push(`${JSON.stringify(k)}: neither written at workspace/${JSON.stringify(rel)} nor reported`);
      }
    }
    for (const f of files) {
      if (f.endsWith('.s3ws-tmp')) problems.push(`temporary file left: ${JSON.stringify(f)}`);
      else if (!expectedFiles.has(f)) problems.push(`unexpected file in the workspace: ${JSON.stringify(f)}`);
    }
    const wanted = new Set([...new Set(keys)].filter((k) => k.startsWith(PREFIX)).map((k) => k.slice(PREFIX.length)));
    for (const d of dirs) {
      if (![...wanted].some((rel) => rel.startsWith(`${d}/`))) problems.push(`unexpected directory in the workspace: ${JSON.stringify(d)}`);
    }
    return { problems, written: expectedFiles.size };
  } finally {
    await rm(parent, { recursive: true, force: true });
  }
}

describe('property: a pull never writes outside workspace/<key minus prefix>', () => {
  it(`arbitrary hostile keys are written exactly in place or reported (${RUNS} runs)`, { timeout: 120_000 }, async () => {
    console.log(`[hostile-property] seed ${SEED} (replay with PROPERTY_SEED=${SEED}), ${RUNS} runs`);
    let keysSeen = 0;
    let written = 0;
    await fc.assert(
      fc.asyncProperty(keyLists, async (keys) => {
        const outcome = await pullAndCheck(keys);
        if (outcome.problems.length > 0) throw new Error(`keys ${JSON.stringify(keys)}:\n  ${outcome.problems.join('\n  ')}`);
        keysSeen += new Set(keys).size;
        written += outcome.written;
      }),
      { numRuns: RUNS, seed: SEED },
    );
    console.log(`[hostile-property] ${keysSeen} distinct keys over the runs (shrinking included): ${written} written in place, ${keysSeen - written} reported`);
    // Not vacuous: some keys are valid and written, many are refused.
    expect(written).toBeGreaterThan(0);
    expect(keysSeen - written).toBeGreaterThan(0);
  });

  it('the generator reaches the interesting cases (sanity check of the arbitraries)', () => {
    const sample = fc.sample(keyLists, { numRuns: 500, seed: SEED }).flat();
    const has = (re: RegExp) => sample.some((k) => re.test(k));
    expect(has(/(^|\/)\.\.(\/|$)/)).toBe(true);
    expect(has(/%2e/i)).toBe(true);
    expect(has(/\\/)).toBe(true);
    // eslint-disable-next-line no-control-regex
    expect(has(/[\u0000-\u001f]/)).toBe(true);
    expect(has(/[^/]{256}/)).toBe(true);
    expect(has(/^p\/[^/]+$/)).toBe(true);
    expect(has(/^\//)).toBe(true);
  });
});
