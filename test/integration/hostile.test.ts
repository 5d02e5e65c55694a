// Hostile input, table-driven: keys and local trees built to escape the
// workspace, collide, confuse or exhaust it. Every row asserts one clear
// outcome per key (a skip with its reason, a typed failure, or the file
// written exactly at workspace/<key minus prefix>) and that nothing changed
// outside the workspace (the listing and contents of its parent directory,
// which also holds an `outside/` directory that symlinks point to).
//
// Source of the keys: the run's s3rver ("real") wherever it stores the key
// exactly -- every real row first checks that the listing returns the planted
// keys byte for byte -- and a mocked listing (aws-sdk-client-mock) where it
// cannot. Measured with s3rver 3.7.1:
//  - `..` and `.` segments are normalised away by its URL handling, empty
//    segments / absolute keys answer 404, a NUL answers 500: mocked;
//  - a segment whose name plus s3rver's `._S3rver_object` suffix exceeds 255
//    bytes answers 500 or CRASHES the server process (ECONNREFUSED for every
//    later request) -- never plant one on the shared server: mocked;
//  - backslashes, control characters other than NUL, `%2e%2e`, folder markers,
//    `a` next to `a/b`, case and Unicode-normalisation variants and keys over
//    1,024 bytes made of short segments are stored exactly: real.
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { statfsSync } from 'node:fs';
import { lstat, mkdir, readFile, readlink, realpath, symlink, unlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';

import {
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  S3ServiceException,
} from '@aws-sdk/client-s3';
import { mockClient } from 'aws-sdk-client-mock';
import { describe, expect, it, onTestFinished } from 'vitest';

import { S3WorkspaceSync, silentLogger, type SyncResult } from '../../src/index.js';
import { startAtomicPutProxy } from '../helpers/atomic-put-proxy.js';
import { isLibraryInput, recordCommands } from '../helpers/commands.js';
import { getObjectBytes, listAllKeys, putObjects, s3Endpoint, TEST_CREDENTIALS, TEST_REGION } from '../helpers/s3.js';
import { fixture, listEntries, md5Base64, md5Hex, tempDir, type Fixture } from '../helpers/sync-fixture.js';
import { readTree, writeTree } from '../helpers/tree.js';

const PREFIX = 'ws/';
const TEMP_SUFFIX = '.s3ws-tmp';

// ---------------------------------------------------------------- arena

interface Arena {
  /** Temp dir holding ws/, outside/ and sentinel.txt. */
  parent: string;
  ws: string;
  /** A directory next to the workspace that symlinks point to. */
  outside: string;
  /** Everything in `parent` except the workspace subtree, with the MD5 of each regular file. */
  outsideState(): Promise<string[]>;
}

async function arena(parentDir?: string): Promise<Arena> {
  const parent = parentDir ?? (await tempDir('s3ws-hostile-'));
  const ws = path.join(parent, 'ws');
  const outside = path.join(parent, 'outside');
  await mkdir(ws);
  await writeTree(outside, { 'secret.txt': 'TOP SECRET', 'dir/inner.txt': 'INNER SECRET' });
  await writeFile(path.join(parent, 'sentinel.txt'), 'untouched');
  return {
    parent,
    ws,
    outside,
    outsideState: async () => {
      const out: string[] = [];
      for (const e of await listEntries(parent)) {
        if (e === 'ws/' || e.startsWith('ws/')) continue;
        const abs = path.join(parent, e);
        const st = await lstat(abs);
        if (st.isFile()) out.push(`${e} ${md5Hex(await readFile(abs))}`);
        else if (st.isSymbolicLink()) out.push(`${e} -> ${await readlink(abs)}`);
        else out.push(e);
      }
      return out;
    },
  };
}

/** Every entry of the workspace that is a leftover temporary download file. */
async function tempFilesIn(dir: string): Promise<string[]> {
  return (await listEntries(dir)).filter((e) => e.endsWith(TEMP_SUFFIX));
}

// ---------------------------------------------------------------- outcomes

/** What must happen to one key. */
type Outcome =
  | { skip: RegExp }
  /** Written at exactly workspace/<key minus prefix>, with the object's bytes. */
  | { write: true }
  | { fail: string };

function describeOutcome(key: string, result: SyncResult): string {
  const rel = key.startsWith(PREFIX) ? key.slice(PREFIX.length) : key;
  const skip = result.skippedFiles.find((s) => s.path === key || s.path === rel);
  const fail = result.failedFiles.find((x) => x.path === key || x.path === rel);
  if (fail) return `failed ${fail.code ?? '(no code)'}`;
  if (skip) return `skipped: ${skip.reason}`;
  return 'written';
}

/**
 * Check each key's outcome after a pull. Written files must resolve (realpath)
 * to exactly workspace/<key minus prefix> and hold `bodies[key]`; skipped and
 * failed keys must not exist as files under their path, and must never have
 * been downloaded (`gets`).
 */
async function expectOutcomes(
  ws: string,
  result: SyncResult,
  outcomes: Record<string, Outcome>,
  bodies: Record<string, string | Buffer>,
  gets: string[],
): Promise<string[]> {
  const lines: string[] = [];
  const realWs = await realpath(ws);
  for (const [key, outcome] of Object.entries(outcomes)) {
    const label = JSON.stringify(key);
    const rel = key.startsWith(PREFIX) ? key.slice(PREFIX.length) : key;
    const reported = [...result.skippedFiles, ...result.failedFiles].filter((s) => s.path === key || s.path === rel);
    if ('skip' in outcome) {
      expect(result.skippedFiles.filter((s) => s.path === key || s.path === rel).map((s) => s.reason), label).toEqual(
        expect.arrayContaining([expect.stringMatching(outcome.skip)]),
      );
      expect(gets, `${label} must never be downloaded`).not.toContain(key);
    } else if ('fail' in outcome) {
      expect(result.failedFiles.filter((s) => s.path === key || s.path === rel), label).toEqual([
        expect.objectContaining({ code: outcome.fail }),
      ]);
    } else {
      expect(reported, `${label} should be written, not reported`).toEqual([]);
      const target = path.join(realWs, ...rel.split('/'));
      expect(await realpath(target), label).toBe(target);
      const expected = bodies[key];
      expect((await readFile(target)).equals(Buffer.from(expected ?? '')), `${label} content`).toBe(true);
    }
    lines.push(`${label} -> ${describeOutcome(key, result)}`);
  }
  return lines;
}

function report(row: string, lines: string[]): void {
  console.log(`[hostile] ${row}\n${lines.map((l) => `    ${l}`).join('\n')}`);
}

// ---------------------------------------------------------------- sources

function awsError(name: string, status: number, message = name): S3ServiceException {
  return new S3ServiceException({ name, $fault: status >= 500 ? 'server' : 'client', $metadata: { httpStatusCode: status }, message });
}

/** A pull through a mocked listing: `objects` is what ListObjectsV2 returns (and GetObject serves). */
async function mockedPull(a: Arena, objects: Record<string, string | Buffer>): Promise<{ result: SyncResult; gets: string[] }> {
  const client = new S3Client({ region: 'us-east-1', credentials: { accessKeyId: 'x', secretAccessKey: 'y' } });
  const s3 = mockClient(client);
  onTestFinished(() => {
    s3.restore();
    client.destroy();
  });
  s3.on(ListObjectsV2Command).resolves({
    IsTruncated: false,
    KeyCount: Object.keys(objects).length,
    Contents: Object.entries(objects).map(([Key, body]) => ({
      Key,
      Size: Buffer.byteLength(body),
      ETag: `"${md5Hex(body)}"`,
      LastModified: new Date('2024-01-01T00:00:00Z'),
    })),
  });
  s3.on(GetObjectCommand).callsFake((input: { Key: string }) => {
    const body = objects[input.Key];
    if (body === undefined) throw awsError('NoSuchKey', 404);
    const buf = Buffer.from(body);
    return { Body: Readable.from([buf]), ContentLength: buf.length, ETag: `"${md5Hex(buf)}"`, LastModified: new Date('2024-01-01T00:00:00Z') };
  });
  s3.on(HeadObjectCommand).rejects(awsError('NotFound', 404));
  const sync = new S3WorkspaceSync({ bucket: 'mock-bucket', prefix: PREFIX, workspaceDir: a.ws, s3Client: client, logger: silentLogger });
  const result = await sync.pull();
  return { result, gets: s3.commandCalls(GetObjectCommand).map((c) => String(c.args[0].input.Key)) };
}

/** Plant `objects` on the real server (checking it stored every key exactly), then pull with a fresh instance. */
async function realPull(
  f: Fixture,
  a: Arena,
  objects: Record<string, string | Buffer>,
  options: { downloadConcurrency?: number } = {},
): Promise<{ result: SyncResult; gets: string[] }> {
  await putObjects(f.other, f.bucket, objects);
  const planted = await listAllKeys(f.other, f.bucket, undefined, { includeLibrary: true }); // planted keys may be in the library's folder
  expect(planted, 's3rver must store every planted key exactly (else use a mocked listing)').toEqual(
    Object.keys(objects).sort((x, y) => Buffer.compare(Buffer.from(x), Buffer.from(y))),
  );
  const log = recordCommands(f.client);
  const result = await f.sync({ workspaceDir: a.ws, ...options }).pull();
  return { result, gets: log.keys('GetObjectCommand') };
}

/** A pull row: plant (or mock) the keys, pull, check every key's outcome and the outside. */
async function pullRow(
  name: string,
  source: 'real' | 'mock',
  objects: Record<string, string | Buffer>,
  outcomes: Record<string, Outcome>,
): Promise<SyncResult> {
  const a = await arena();
  const before = await a.outsideState();
  const { result, gets } = source === 'real' ? await realPull(await fixture(), a, objects) : await mockedPull(a, objects);
  const lines = await expectOutcomes(a.ws, result, outcomes, objects, gets);
  expect(await a.outsideState(), 'nothing outside the workspace changed').toEqual(before);
  expect(await tempFilesIn(a.ws)).toEqual([]);
  // Only keys that were to be written exist in the workspace, nothing else.
  const written = Object.entries(outcomes)
    .filter(([, o]) => 'write' in o)
    .map(([k]) => k.slice(PREFIX.length));
  expect(Object.keys(await readTree(a.ws)).sort(), 'files in the workspace').toEqual(written.sort());
  const skipsOnly = Object.values(outcomes).every((o) => !('fail' in o));
  if (skipsOnly) expect(result.failedFiles).toEqual([]);
  report(`${name} [${source}]`, lines);
  return result;
}

const OK = { 'ws/ok.txt': 'ok' } as const;
const okWritten = { 'ws/ok.txt': { write: true } } as const;

// ---------------------------------------------------------------- pull rows

describe('hostile keys (pull)', () => {
  it('`..` segments', async () => {
    const keys = ['ws/../escape.txt', 'ws/a/../../escape.txt', 'ws/..', 'ws/../ws/../../escape.txt', 'ws/a/..'];
    await pullRow('`..` segments', 'mock', { ...Object.fromEntries(keys.map((k) => [k, 'PWNED'])), ...OK }, {
      ...Object.fromEntries(keys.map((k) => [k, { skip: /^invalid-key: contains a '\.\.' segment$/ }])),
      ...okWritten,
    });
  });

  it('`.` segments', async () => {
    const keys = ['ws/./x.txt', 'ws/a/./b.txt', 'ws/.', 'ws/a/.'];
    await pullRow('`.` segments', 'mock', { ...Object.fromEntries(keys.map((k) => [k, 'PWNED'])), ...OK }, {
      ...Object.fromEntries(keys.map((k) => [k, { skip: /^invalid-key: contains a '\.' segment$/ }])),
      ...okWritten,
    });
  });

  it('absolute paths and empty segments', async () => {
    await pullRow(
      'absolute paths and empty segments',
      'mock',
      { 'ws//etc/passwd': 'PWNED', 'ws///tmp/x': 'PWNED', 'ws/a//b.txt': 'PWNED', 'ws/a/b//': 'PWNED', ...OK },
      {
        'ws//etc/passwd': { skip: /^invalid-key: absolute path$/ },
        'ws///tmp/x': { skip: /^invalid-key: absolute path$/ },
        'ws/a//b.txt': { skip: /^invalid-key: contains an empty segment$/ },
        'ws/a/b//': { skip: /^invalid-key: ends with \/$/ },
        ...okWritten,
      },
    );
  });

  it('drive letters', async () => {
    await pullRow('drive letters', 'real', { 'ws/C:/evil.txt': 'PWNED', 'ws/c:evil.txt': 'PWNED', ...OK }, {
      'ws/C:/evil.txt': { skip: /^invalid-key: absolute path \(drive letter\)$/ },
      'ws/c:evil.txt': { skip: /^invalid-key: absolute path \(drive letter\)$/ },
      ...okWritten,
    });
  });

  it('backslashes', async () => {
    const keys = ['ws/a\\b.txt', 'ws/..\\..\\escape.txt', 'ws/dir\\', 'ws/\\\\server\\share\\x'];
    await pullRow('backslashes', 'real', { ...Object.fromEntries(keys.map((k) => [k, 'PWNED'])), ...OK }, {
      ...Object.fromEntries(keys.map((k) => [k, { skip: /^invalid-key: contains a backslash$/ }])),
      ...okWritten,
    });
  });

  // s3rver cannot store a NUL (500), and an XML listing (ListObjectsV2 without
  // EncodingType=url, on s3rver as on S3) hands a CR back as LF: mocked.
  it('NUL and CR characters', async () => {
    const keys = ['ws/nul\u0000.txt', 'ws/\u0000', 'ws/a\u0000/../../escape.txt', 'ws/cr\r.txt', 'ws/crlf\r\n.txt'];
    await pullRow('NUL and CR characters', 'mock', { ...Object.fromEntries(keys.map((k) => [k, 'PWNED'])), ...OK }, {
      ...Object.fromEntries(keys.map((k) => [k, { skip: /^invalid-key: contains a control character$/ }])),
      ...okWritten,
    });
  });

  it('control characters', async () => {
    const keys = ['ws/bell\u0007.txt', 'ws/line\nbreak.txt', 'ws/tab\there.txt', 'ws/esc\u001b[31mred.txt', 'ws/del\u007f.txt', 'ws/dir\n/x.txt'];
    await pullRow('control characters', 'real', { ...Object.fromEntries(keys.map((k) => [k, 'PWNED'])), ...OK }, {
      ...Object.fromEntries(keys.map((k) => [k, { skip: /^invalid-key: contains a control character$/ }])),
      ...okWritten,
    });
  });

  it('Unicode format characters (bidi override, zero-width, line separator, C1 NEL) are ordinary names: written exactly inside', async () => {
    const keys = ['ws/\u202Etxt.exe', 'ws/zero\u200Bwidth.txt', 'ws/line\u2028sep.txt', 'ws/nel\u0085.txt', 'ws/\uFEFFbom.txt'];
    await pullRow('Unicode format characters', 'real', { ...Object.fromEntries(keys.map((k) => [k, `body of ${k}`])), ...OK }, {
      ...Object.fromEntries(keys.map((k) => [k, { write: true } as const])),
      ...okWritten,
    });
  });

  it('percent-encoded dot segments are refused; other percent sequences are literal names', async () => {
    await pullRow(
      'percent-encodings',
      'real',
      {
        'ws/%2e%2e/escape.txt': 'PWNED',
        'ws/%2E%2e': 'PWNED',
        'ws/%2e/x.txt': 'PWNED',
        'ws/.%2e/escape.txt': 'PWNED',
        'ws/a%2fb.txt': 'literal a%2fb',
        'ws/%252e%252e/x.txt': 'literal double-encoded',
        'ws/%2e%2e%2fescape.txt': 'literal %2e%2e%2f',
        ...OK,
      },
      {
        'ws/%2e%2e/escape.txt': { skip: /^invalid-key: contains an encoded dot segment$/ },
        'ws/%2E%2e': { skip: /^invalid-key: contains an encoded dot segment$/ },
        'ws/%2e/x.txt': { skip: /^invalid-key: contains an encoded dot segment$/ },
        'ws/.%2e/escape.txt': { skip: /^invalid-key: contains an encoded dot segment$/ },
        'ws/a%2fb.txt': { write: true },
        'ws/%252e%252e/x.txt': { write: true },
        'ws/%2e%2e%2fescape.txt': { write: true },
        ...okWritten,
      },
    );
  });

  it('keys ending in / (folder markers) are skipped; a marker with content is an invalid key', async () => {
    const a = await pullRow(
      'keys ending in /',
      'real',
      { 'ws/folder/': '', 'ws/deep/er/': '', 'ws/nonempty/': 'data', ...OK },
      {
        'ws/folder/': { skip: /^directory-marker$/ },
        'ws/deep/er/': { skip: /^directory-marker$/ },
        'ws/nonempty/': { skip: /^invalid-key: ends with \/$/ },
        ...okWritten,
      },
    );
    expect(a.success).toBe(true);
  });

  it('both `a` and `a/b`: a is a file/directory conflict, a/b is written', async () => {
    await pullRow('both a and a/b', 'real', { 'ws/a': 'file a', 'ws/a/b': 'file a/b', 'ws/x/y/z': 'z', 'ws/x/y': 'y', ...OK }, {
      'ws/a': { skip: /^file-directory-conflict/ },
      'ws/a/b': { write: true },
      'ws/x/y': { skip: /^file-directory-conflict/ },
      'ws/x/y/z': { write: true },
      ...okWritten,
    });
  });

  it("the library's own names and default-ignored paths (.git hooks, temp suffix, state dir) are never downloaded", async () => {
    const keys = ['ws/evil.s3ws-tmp', 'ws/.s3-workspace-sync/state.json', 'ws/.git/hooks/post-checkout', 'ws/sub/.git/config', 'ws/node_modules/x/index.js'];
    await pullRow('reserved and ignored names', 'real', { ...Object.fromEntries(keys.map((k) => [k, 'PWNED'])), ...OK }, {
      ...Object.fromEntries(keys.map((k) => [k, { skip: /^ignored$/ }])),
      ...okWritten,
    });
  });

  it('a segment longer than 255 bytes is refused; exactly 255 bytes is written', async () => {
    const long = `ws/${'s'.repeat(256)}`;
    const wide = `ws/d/${'é'.repeat(128)}`; // 128 characters, 256 bytes
    const max = `ws/${'m'.repeat(255)}`;
    await pullRow('segment over 255 bytes', 'mock', { [long]: 'PWNED', [wide]: 'PWNED', [max]: 'max segment', ...OK }, {
      [long]: { skip: /^invalid-key: a segment is longer than 255 bytes$/ },
      [wide]: { skip: /^invalid-key: a segment is longer than 255 bytes$/ },
      [max]: { write: true },
      ...okWritten,
    });
  });

  it('a key over 1,024 bytes (after the prefix) is refused; exactly 1,024 bytes is written', async () => {
    const seg = (c: string) => c.repeat(99);
    const over = `ws/${Array.from({ length: 11 }, (_, i) => seg(String.fromCharCode(97 + i))).join('/')}`; // 1,099 bytes
    const exact = `ws/${Array.from({ length: 10 }, (_, i) => seg(String.fromCharCode(97 + i))).join('/')}/${'z'.repeat(24)}`; // 1,024
    expect(Buffer.byteLength(over) - PREFIX.length).toBeGreaterThan(1024);
    expect(Buffer.byteLength(exact) - PREFIX.length).toBe(1024);
    await pullRow('key over 1,024 bytes', 'real', { [over]: 'PWNED', [exact]: 'exactly 1024', ...OK }, {
      [over]: { skip: /^invalid-key: longer than 1024 bytes$/ },
      [exact]: { write: true },
      ...okWritten,
    });
  });

  it('keys outside the prefix returned by a misbehaving listing', async () => {
    await pullRow('keys outside the prefix', 'mock', { 'wsx/evil.txt': 'PWNED', 'w': 'PWNED', '../ws/evil.txt': 'PWNED', ...OK }, {
      'wsx/evil.txt': { skip: /^outside-prefix$/ },
      w: { skip: /^outside-prefix$/ },
      '../ws/evil.txt': { skip: /^outside-prefix$/ },
      ...okWritten,
    });
  });

  it('a symlinked parent directory: pull never writes through it', async () => {
    const f = await fixture();
    const a = await arena();
    await symlink(a.outside, path.join(a.ws, 'linkdir'));
    await symlink(path.join(a.outside, 'secret.txt'), path.join(a.ws, 'link.txt'));
    const before = await a.outsideState();
    const objects = { 'ws/linkdir/evil.txt': 'PWNED', 'ws/linkdir/dir/inner.txt': 'PWNED', 'ws/linkdir/secret.txt': 'PWNED', 'ws/link.txt': 'PWNED', ...OK };
    const { result } = await realPull(f, a, objects);
    const lines: string[] = [];
    for (const key of ['ws/linkdir/evil.txt', 'ws/linkdir/dir/inner.txt', 'ws/linkdir/secret.txt']) {
      const rel = key.slice(PREFIX.length);
      const skipped = result.skippedFiles.some((s) => s.path === rel && s.reason === 'parent-is-not-a-directory-locally');
      const failed = result.failedFiles.some((x) => x.path === rel && x.code === 'SYMLINK_IN_PATH');
      expect(skipped || failed, `${key}: skipped (parent-is-not-a-directory-locally) or failed SYMLINK_IN_PATH`).toBe(true);
      lines.push(`${key} -> ${describeOutcome(key, result)}`);
    }
    // A symlink where the object's file would go: a failure, never overwritten.
    expect(result.failedFiles).toContainEqual(expect.objectContaining({ path: 'link.txt', code: 'NOT_A_FILE' }));
    lines.push(`"ws/link.txt" (a local symlink) -> ${describeOutcome('ws/link.txt', result)}`);
    expect(await a.outsideState()).toEqual(before);
    expect(await readlink(path.join(a.ws, 'linkdir'))).toBe(a.outside);
    expect(await readFile(path.join(a.outside, 'secret.txt'), 'utf8')).toBe('TOP SECRET');
    expect(await readFile(path.join(a.ws, 'ok.txt'), 'utf8')).toBe('ok');
    expect(await tempFilesIn(a.ws)).toEqual([]);
    report('symlinked parent directory [real]', lines);
  });
  // Regression: an object whose `mtime` metadata is unusable (a finite but
  // huge number from another tool or a hostile writer) used to fail its
  // download forever (futimes EINVAL). Such an mtime is now ignored: the file is
  // written with LastModified, or keeps the current time.
  it('object metadata from another writer with an unusable mtime (1e20, -5, NaN, "abc", year 5138): the file is still written', async () => {
    const f = await fixture();
    const a = await arena();
    const before = await a.outsideState();
    const mtimes = { 'huge.txt': '1e20', 'negative.txt': '-5', 'nan.txt': 'NaN', 'text.txt': 'abc', 'far.txt': '100000000000' };
    for (const [name, mtime] of Object.entries(mtimes)) {
      await f.other.send(new PutObjectCommand({ Bucket: f.bucket, Key: PREFIX + name, Body: Buffer.from(`body of ${name}`), Metadata: { mtime } }));
    }
    const result = await f.sync({ workspaceDir: a.ws }).pull();
    const lines = Object.entries(mtimes).map(([name, mtime]) => `"${PREFIX}${name}" (mtime ${mtime}) -> ${describeOutcome(PREFIX + name, result)}`);
    report('unusable mtime metadata [real]', lines);
    expect(result.failedFiles).toEqual([]);
    expect(result).toMatchObject({ success: true, downloadedFiles: Object.keys(mtimes).length });
    for (const name of Object.keys(mtimes)) expect(await readFile(path.join(a.ws, name), 'utf8')).toBe(`body of ${name}`);
    expect(await tempFilesIn(a.ws)).toEqual([]);
    expect(await a.outsideState()).toEqual(before);
  });

  it('a hard link to a file outside: pull replaces the workspace name, the outside file keeps its content', async () => {
    const f = await fixture();
    const a = await arena();
    execFileSync('ln', [path.join(a.outside, 'secret.txt'), path.join(a.ws, 'hard.txt')]);
    const before = await a.outsideState();
    const { result } = await realPull(f, a, { 'ws/hard.txt': 'new content from the bucket', ...OK });
    expect(result).toMatchObject({ success: true, failedFiles: [] });
    expect(await readFile(path.join(a.ws, 'hard.txt'), 'utf8')).toBe('new content from the bucket');
    expect(await readFile(path.join(a.outside, 'secret.txt'), 'utf8')).toBe('TOP SECRET');
    expect(await a.outsideState()).toEqual(before);
    report('hard link to an outside file [real]', ['"ws/hard.txt" -> written by rename: the workspace name now holds the object, outside/secret.txt unchanged']);
  });

  it('a FIFO where the bucket has a file: pull fails it (NOT_A_FILE) without opening or replacing it', { timeout: 15_000 }, async () => {
    const f = await fixture();
    const a = await arena();
    execFileSync('mkfifo', [path.join(a.ws, 'pipe')]);
    const before = await a.outsideState();
    const { result } = await realPull(f, a, { 'ws/pipe': 'PWNED', ...OK });
    expect(result.failedFiles).toEqual([expect.objectContaining({ path: 'pipe', code: 'NOT_A_FILE' })]);
    expect((await lstat(path.join(a.ws, 'pipe'))).isFIFO()).toBe(true);
    expect(await readFile(path.join(a.ws, 'ok.txt'), 'utf8')).toBe('ok');
    expect(await a.outsideState()).toEqual(before);
    report('FIFO where the bucket has a file [real]', [`"ws/pipe" -> ${describeOutcome('ws/pipe', result)}; the FIFO is left alone`]);
  });
});

// ---------------------------------------------------------------- round trips

describe('names that differ only in case or Unicode normalisation (ext4 keeps them apart)', () => {
  async function roundTrip(name: string, files: Record<string, string>): Promise<void> {
    const f = await fixture();
    const a = await arena();
    const before = await a.outsideState();
    for (const [rel, body] of Object.entries(files)) {
      await mkdir(path.dirname(path.join(a.ws, rel)), { recursive: true });
      await writeFile(path.join(a.ws, rel), body);
    }
    expect((await listEntries(a.ws)).filter((e) => !e.endsWith('/')).sort(), 'the filesystem keeps every name apart').toEqual(
      Object.keys(files).sort(),
    );
    const pushed = await f.sync({ workspaceDir: a.ws }).push();
    expect(pushed).toMatchObject({ success: true, uploadedFiles: Object.keys(files).length, failedFiles: [] });
    const keys = await listAllKeys(f.other, f.bucket);
    expect(keys).toEqual(Object.keys(files).map((k) => PREFIX + k).sort((x, y) => Buffer.compare(Buffer.from(x), Buffer.from(y))));
    for (const [rel, body] of Object.entries(files)) expect((await getObjectBytes(f.other, f.bucket, PREFIX + rel)).toString()).toBe(body);

    const b = await arena();
    const pulled = await f.sync({ workspaceDir: b.ws }).pull();
    expect(pulled).toMatchObject({ success: true, downloadedFiles: Object.keys(files).length, failedFiles: [], skippedFiles: [] });
    const tree = await readTree(b.ws);
    expect(Object.keys(tree).sort()).toEqual(Object.keys(files).sort());
    for (const [rel, body] of Object.entries(files)) expect(tree[rel]?.toString(), JSON.stringify(rel)).toBe(body);
    expect(await a.outsideState()).toEqual(before);
    report(`${name} [real]`, Object.keys(files).map((k) => `${JSON.stringify(k)} (${Buffer.from(k).toString('hex')}) -> round-trips as its own file`));
  }

  it('Readme.md / README.md / readme.md (and Dir/ vs dir/) round-trip as distinct files', async () => {
    await roundTrip('case-only differences', {
      'Readme.md': 'mixed case',
      'README.md': 'upper case',
      'readme.md': 'lower case',
      'Dir/x.txt': 'in Dir',
      'dir/x.txt': 'in dir',
    });
  });

  it('NFC café vs NFD cafe\\u0301 (files and directories) round-trip as distinct files', async () => {
    const nfc = 'caf\u00e9.txt';
    const nfd = 'cafe\u0301.txt';
    expect(nfc.normalize('NFC')).toBe(nfd.normalize('NFC'));
    await roundTrip('Unicode normalisation (NFC vs NFD)', {
      [nfc]: 'NFC bytes 63 61 66 c3 a9',
      [nfd]: 'NFD bytes 63 61 66 65 cc 81',
      'r\u00e9sum\u00e9/cv.txt': 'NFC directory',
      're\u0301sume\u0301/cv.txt': 'NFD directory',
    });
  });
});

// ---------------------------------------------------------------- push rows

describe('hostile workspaces (push)', () => {
  it('symlinks pointing outside (to a file, a directory and a FIFO) are skipped and their targets never read', { timeout: 15_000 }, async () => {
    const f = await fixture();
    const a = await arena();
    execFileSync('mkfifo', [path.join(a.outside, 'fifo')]);
    await writeTree(a.ws, { 'ok.txt': 'ok' });
    await symlink(path.join(a.outside, 'secret.txt'), path.join(a.ws, 'link.txt'));
    await symlink(a.outside, path.join(a.ws, 'linkdir'));
    // Opening a FIFO for reading blocks until a writer appears: a push that
    // read through this link would hang until the test's deadline.
    await symlink(path.join(a.outside, 'fifo'), path.join(a.ws, 'fifo-link'));
    await symlink('../outside/secret.txt', path.join(a.ws, 'relative-link.txt'));
    const before = await a.outsideState();
    const log = recordCommands(f.client);
    const result = await f.sync({ workspaceDir: a.ws }).push();
    expect(result).toMatchObject({ success: true, uploadedFiles: 1, failedFiles: [] });
    for (const p of ['link.txt', 'linkdir', 'fifo-link', 'relative-link.txt']) expect(result.skippedFiles).toContainEqual({ path: p, reason: 'symlink' });
    expect(await listAllKeys(f.other, f.bucket)).toEqual(['ws/ok.txt']);
    for (const call of log.calls.filter((c) => c.name === 'PutObjectCommand')) expect(String(call.input.Body)).not.toContain('SECRET');
    expect(await a.outsideState()).toEqual(before);
    report('symlinks pointing outside [real, push]', ['link.txt, linkdir, fifo-link, relative-link.txt -> skipped: symlink; only ok.txt uploaded']);
  });

  it('a FIFO in the workspace is skipped (not-a-regular-file) and never opened by push', { timeout: 15_000 }, async () => {
    const f = await fixture();
    const a = await arena();
    await writeTree(a.ws, { 'ok.txt': 'ok' });
    // Opening a FIFO for reading blocks until a writer appears: a push that opened it would hang.
    execFileSync('mkfifo', [path.join(a.ws, 'pipe')]);
    const result = await f.sync({ workspaceDir: a.ws }).push();
    expect(result).toMatchObject({ success: true, uploadedFiles: 1, failedFiles: [] });
    expect(result.skippedFiles).toContainEqual({ path: 'pipe', reason: 'not-a-regular-file' });
    expect(await listAllKeys(f.other, f.bucket)).toEqual(['ws/ok.txt']);
    report('FIFO in the workspace [real, push]', [`"pipe" -> ${describeOutcome('pipe', result)}`]);
  });

  it('local names that cannot be keys (backslash, control characters) are never uploaded, and the push does not report success', async () => {
    const f = await fixture();
    const a = await arena();
    await writeTree(a.ws, { 'ok.txt': 'ok' });
    const names = ['back\\slash.txt', 'new\nline.txt', 'del\u007f.txt', 'esc\u001b.txt'];
    for (const n of names) await writeFile(path.join(a.ws, n), 'x');
    await mkdir(path.join(a.ws, 'dir\\x'));
    await writeFile(path.join(a.ws, 'dir\\x', 'inner.txt'), 'inner');
    const result = await f.sync({ workspaceDir: a.ws }).push();
    expect(result).toMatchObject({ success: false, uploadedFiles: 1 });
    expect(result.failedFiles.map((x) => [x.path, x.code]).sort()).toEqual([...names, 'dir\\x'].map((n) => [n, 'INVALID_NAME']).sort());
    expect(await listAllKeys(f.other, f.bucket)).toEqual(['ws/ok.txt']);
    report('local names that cannot be keys [real, push]', [...names, 'dir\\x'].map((n) => `${JSON.stringify(n)} -> ${describeOutcome(n, result)}`));
  });

  it('a local path whose key (prefix + path) would exceed 1,024 bytes: a skip or a typed failure, never a refused PUT that breaks the rest', async () => {
    const a = await arena();
    const rel = `${Array.from({ length: 5 }, (_, i) => String.fromCharCode(97 + i).repeat(200)).join('/')}/${'z'.repeat(18)}`;
    expect(Buffer.byteLength(rel)).toBe(1023);
    await mkdir(path.dirname(path.join(a.ws, rel)), { recursive: true });
    await writeFile(path.join(a.ws, rel), 'long');
    await writeFile(path.join(a.ws, 'ok.txt'), 'ok');
    const client = new S3Client({ region: 'us-east-1', credentials: { accessKeyId: 'x', secretAccessKey: 'y' } });
    const s3 = mockClient(client);
    onTestFinished(() => {
      s3.restore();
      client.destroy();
    });
    s3.on(ListObjectsV2Command).resolves({ IsTruncated: false, KeyCount: 0, Contents: [] });
    // As S3 does: keys over 1,024 bytes are refused.
    s3.on(PutObjectCommand).callsFake((input: { Key: string; Body: Buffer }) => {
      if (Buffer.byteLength(input.Key) > 1024) throw awsError('KeyTooLongError', 400, 'Your key is too long');
      return { ETag: `"${md5Hex(input.Body)}"` };
    });
    const sync = new S3WorkspaceSync({ bucket: 'mock-bucket', prefix: PREFIX, workspaceDir: a.ws, s3Client: client, logger: silentLogger });
    const result = await sync.push();
    const skipped = result.skippedFiles.find((s) => s.path === rel);
    const failed = result.failedFiles.find((x) => x.path === rel);
    expect(skipped !== undefined || (failed !== undefined && typeof failed.code === 'string'), 'a skip with a reason or a typed failure').toBe(true);
    const putKeys = s3.commandCalls(PutObjectCommand).map((c) => String(c.args[0].input.Key));
    expect(putKeys).toContain('ws/ok.txt');
    // no deletion but of the library's own objects (the probe's scratch key, the push lease)
    expect(s3.commandCalls(DeleteObjectsCommand).filter((c) => !isLibraryInput(c.args[0].input))).toHaveLength(0);
    report('key over 1,024 bytes on push [mock, S3 refuses KeyTooLong]', [
      `${Buffer.byteLength(PREFIX + rel)}-byte key -> ${skipped ? `skipped: ${skipped.reason}` : `failed ${failed?.code}: ${failed?.error.slice(0, 80)}`}; ok.txt uploaded`,
    ]);
  });

  it('a file vanishing between the scan and its upload: a typed failure (or a skip), the rest uploads, nothing deleted', async () => {
    const f = await fixture();
    const a = await arena();
    const names = ['f0.txt', 'f1.txt', 'f2.txt', 'f3.txt', 'f4.txt'];
    await writeTree(a.ws, Object.fromEntries(names.map((n) => [n, `content of ${n}`])));
    let vanished: string | undefined;
    const log = recordCommands(f.client, async (name, input) => {
      // the first upload of a workspace file (not of the library's own objects: the probe's scratch key, the lease)
      if (name !== 'PutObjectCommand' || vanished !== undefined || isLibraryInput(input)) return;
      vanished = names.find((n) => PREFIX + n !== input.Key);
      await unlink(path.join(a.ws, vanished as string));
    });
    const sync = f.sync({ workspaceDir: a.ws, uploadConcurrency: 1 });
    const result = await sync.push();
    expect(vanished).toBeDefined();
    const v = vanished as string;
    const failed = result.failedFiles.find((x) => x.path === v);
    const skipped = result.skippedFiles.find((s) => s.path === v);
    expect(failed !== undefined || skipped !== undefined, `${v}: reported`).toBe(true);
    if (failed) expect(failed.code).toBe('ENOENT');
    const keys = await listAllKeys(f.other, f.bucket);
    expect(keys).toEqual(names.filter((n) => n !== v).map((n) => PREFIX + n));
    expect(log.count('DeleteObjectsCommand')).toBe(0);
    // The next push has nothing left to do for it.
    const again = await sync.push();
    expect(again).toMatchObject({ success: true, failedFiles: [], deletedFiles: 0 });
    expect(await listAllKeys(f.other, f.bucket)).toEqual(keys);
    report('file vanishing between scan and upload [real, push]', [`${v} -> ${failed ? `failed ${failed.code}` : `skipped: ${skipped?.reason}`}; next push: success, nothing to do`]);
  });

  it('files changing after the scan and during their upload: every object is complete and self-consistent; the next push converges', async () => {
    const f = await fixture();
    const a = await arena();
    const v1 = (n: string, size: number) => Buffer.alloc(size, `v1:${n};`);
    const v2 = (n: string, size: number) => Buffer.alloc(size + 777, `v2:${n};`);
    const names = ['c0.txt', 'c1.txt', 'c2.txt', 'during.txt'];
    await writeTree(a.ws, Object.fromEntries(names.map((n) => [n, v1(n, 60_000)])));
    let first = true;
    const changed = new Set<string>();
    recordCommands(f.client, async (name, input) => {
      if (name !== 'PutObjectCommand' || isLibraryInput(input)) return; // uploads of workspace files only, not the library's own objects
      const key = String(input.Key);
      if (first) {
        first = false;
        // After the scan and the plan, before their own upload.
        for (const n of names) if (n !== 'during.txt' && PREFIX + n !== key) {
          await writeFile(path.join(a.ws, n), v2(n, 60_000));
          changed.add(n);
        }
      }
      if (key === `${PREFIX}during.txt`) {
        // While its upload is in flight (its bytes were already read).
        await writeFile(path.join(a.ws, 'during.txt'), v2('during.txt', 60_000));
        changed.add('during.txt');
      }
    });
    const sync = f.sync({ workspaceDir: a.ws, uploadConcurrency: 1 });
    const result = await sync.push();
    const lines: string[] = [];
    for (const n of names) {
      const got = await f.other.send(new GetObjectCommand({ Bucket: f.bucket, Key: PREFIX + n }));
      const bytes = Buffer.from(await got.Body!.transformToByteArray());
      const which = bytes.equals(v1(n, 60_000)) ? 'v1' : bytes.equals(v2(n, 60_000)) ? 'v2' : 'neither';
      expect(which, `${n}: complete old or new content`).not.toBe('neither');
      expect(got.Metadata?.md5chksum, `${n}: md5chksum is the MD5 of the stored bytes`).toBe(md5Base64(bytes));
      const failed = result.failedFiles.find((x) => x.path === n);
      if (failed) expect(typeof failed.code).toBe('string');
      lines.push(`${n} -> object holds ${which}${failed ? `; failed ${failed.code}` : ''}`);
    }
    const again = await sync.push();
    expect(again).toMatchObject({ success: true, failedFiles: [] });
    for (const n of names) {
      const bytes = await getObjectBytes(f.other, f.bucket, PREFIX + n);
      expect(bytes.equals(await readFile(path.join(a.ws, n))), `${n}: the next push stores the current content`).toBe(true);
    }
    lines.push(`next push uploaded ${again.uploadedFiles}: every object now equals the local file`);
    report('files changing after the scan / during upload (buffered) [real, push]', lines);
  });

  // Regression: every upload of a file over 8 MiB (streamed from disk) used to
  // be reported failed with EBADF although the object was stored intact --
  // the streamed body was an fs.ReadStream on uploadOne's own descriptor, and
  // S3ObjectStore.put() destroyed it, which closes the fd even with
  // autoClose: false; uploadOne's fh.close() then threw EBADF (and the fd
  // number, closed early, could meanwhile belong to another file). Found by
  // these tests; fixed concurrently in adce91e (positional reads from the
  // descriptor).
  it('baseline: a file over 8 MiB (streamed upload) is pushed without failure, and the next push has nothing to do', async () => {
    const f = await fixture();
    const a = await arena();
    const data = randomBytes(9 * 1024 * 1024);
    await writeFile(path.join(a.ws, 'big.bin'), data);
    const sync = f.sync({ workspaceDir: a.ws });
    const first = await sync.push();
    expect((await getObjectBytes(f.other, f.bucket, `${PREFIX}big.bin`)).equals(data), 'the object itself is stored intact').toBe(true);
    report('a plain file over 8 MiB [real, push]', [
      `big.bin -> ${first.failedFiles.length ? `failed ${first.failedFiles[0]?.code}: ${first.failedFiles[0]?.error}` : 'uploaded'} (object stored intact)`,
    ]);
    expect(first.failedFiles).toEqual([]);
    expect(first).toMatchObject({ success: true, uploadedFiles: 1 });
    expect(await sync.push()).toMatchObject({ success: true, uploadedFiles: 0, failedFiles: [] });
  });

  it('a >8 MiB (streamed) file rewritten after planning, as its upload starts: S3-like server (Content-MD5 checked) keeps a consistent object; the next push converges', async () => {
    const proxy = await startAtomicPutProxy(s3Endpoint(), { verifyContentMd5: true });
    onTestFinished(() => proxy.stop());
    const f = await fixture();
    const client = new S3Client({
      endpoint: proxy.endpoint,
      region: TEST_REGION,
      forcePathStyle: true,
      credentials: { ...TEST_CREDENTIALS },
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
    });
    onTestFinished(() => client.destroy());
    const a = await arena();
    const SIZE = 9 * 1024 * 1024;
    const A = randomBytes(SIZE);
    const B = randomBytes(SIZE);
    const C = randomBytes(SIZE);
    await writeFile(path.join(a.ws, 'big.bin'), A);
    await writeFile(path.join(a.ws, 'small.txt'), 'small');
    const sync = new S3WorkspaceSync({ bucket: f.bucket, prefix: PREFIX, workspaceDir: a.ws, s3Client: client, logger: silentLogger });
    const firstPush = await sync.push();
    expect(firstPush.failedFiles).toEqual([]);
    expect(firstPush).toMatchObject({ success: true, uploadedFiles: 2 });
    await writeFile(path.join(a.ws, 'big.bin'), B); // planned (hashed) as B
    recordCommands(client, async (name, input) => {
      if (name === 'PutObjectCommand' && input.Key === `${PREFIX}big.bin`) await writeFile(path.join(a.ws, 'big.bin'), C);
    });
    proxy.requests.length = 0;
    const result = await sync.push();
    const got = await f.other.send(new GetObjectCommand({ Bucket: f.bucket, Key: `${PREFIX}big.bin` }));
    const bytes = Buffer.from(await got.Body!.transformToByteArray());
    const which = bytes.equals(A) ? 'A (previous)' : bytes.equals(B) ? 'B (planned)' : bytes.equals(C) ? 'C (current)' : 'neither';
    expect(which).not.toBe('neither');
    expect(got.Metadata?.md5chksum, 'md5chksum is the MD5 of the stored bytes').toBe(md5Base64(bytes));
    const failed = result.failedFiles.find((x) => x.path === 'big.bin');
    expect(result.success || (failed !== undefined && typeof failed.code === 'string'), 'success or a typed failure').toBe(true);
    const puts = proxy.requests.filter((r) => r.method === 'PUT');
    const stale = puts.filter((r) => r.badDigest).length;
    const again = await sync.push();
    expect(again).toMatchObject({ success: true, failedFiles: [] });
    expect((await getObjectBytes(f.other, f.bucket, `${PREFIX}big.bin`)).equals(C), 'the next push stores the current content').toBe(true);
    report('>8 MiB file rewritten as its upload starts [real + S3-like Content-MD5 check, push]', [
      `big.bin -> ${failed ? `failed ${failed.code}` : 'uploaded'}; object holds ${which}; ${stale} of ${puts.length} PUT(s) carried a Content-MD5 that was not the MD5 of the body (refused 400 BadDigest)`,
      `next push: success, object = current content`,
    ]);
  });
});

// ---------------------------------------------------------------- disk full

/** Mount a 512 KiB tmpfs on `dir`; the reason it cannot be done otherwise. */
function mountTmpfs(dir: string): string | undefined {
  if (process.platform !== 'linux') return `tmpfs needs Linux (this is ${process.platform})`;
  if (process.getuid?.() !== 0) return 'mounting a tmpfs needs root';
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=512k', 'tmpfs', dir], { stdio: 'pipe' });
    return undefined;
  } catch (error) {
    return `mount -t tmpfs failed: ${String((error as { stderr?: Buffer }).stderr ?? error).trim()}`;
  }
}

describe('disk full', () => {
  it('ENOSPC during pull (512 KiB tmpfs): the file fails with code ENOSPC, old files intact, no temp file, nothing deleted', async (ctx) => {
    const mountPoint = await tempDir('s3ws-enospc-');
    const why = mountTmpfs(mountPoint);
    if (why !== undefined) {
      ctx.skip(`ENOSPC row skipped: ${why} (test/local or a vi.mock of node:fs/promises would be needed)`);
      return;
    }
    onTestFinished(() => {
      try {
        execFileSync('umount', [mountPoint], { stdio: 'pipe' });
      } catch {
        execFileSync('umount', ['-l', mountPoint], { stdio: 'pipe' }); // busy: detach now, freed when unused
      }
    });
    const f = await fixture();
    const a = await arena(mountPoint);
    const old = { 'ws/a.txt': 'old a '.repeat(500), 'ws/keep.txt': 'keep', 'ws/gone.txt': 'gone remotely' };
    await putObjects(f.other, f.bucket, old);
    const sync = f.sync({ workspaceDir: a.ws, downloadConcurrency: 1 });
    expect(await sync.pull()).toMatchObject({ success: true, downloadedFiles: 3 });
    const localBefore = await readTree(a.ws);
    const outsideBefore = await a.outsideState();
    const freeBefore = statfsSync(mountPoint).bfree;

    // Another writer: a.txt grows past the disk's size, gone.txt is deleted, b.txt is new.
    await putObjects(f.other, f.bucket, { 'ws/a.txt': randomBytes(1024 * 1024), 'ws/b.txt': 'small new file' });
    await f.other.send(new DeleteObjectsCommand({ Bucket: f.bucket, Delete: { Objects: [{ Key: 'ws/gone.txt' }] } }));
    const result = await sync.pull();

    expect(result.success).toBe(false);
    expect(result.failedFiles).toEqual([expect.objectContaining({ path: 'a.txt', code: 'ENOSPC' })]);
    expect(result.skippedFiles).toContainEqual({ path: 'gone.txt', reason: 'not-deleted: a transfer failed in this sync' });
    const tree = await readTree(a.ws);
    expect(tree['a.txt']?.equals(localBefore['a.txt']!), 'the old a.txt is intact').toBe(true);
    expect(tree['keep.txt']?.toString()).toBe('keep');
    expect(tree['gone.txt']?.toString()).toBe('gone remotely');
    expect(tree['b.txt']?.toString()).toBe('small new file');
    expect(await tempFilesIn(a.ws)).toEqual([]);
    expect(await a.outsideState()).toEqual(outsideBefore);
    // The partial temporary file's blocks were given back.
    expect(statfsSync(mountPoint).bfree).toBeGreaterThanOrEqual(freeBefore - 2);
    report('disk full during pull [real, tmpfs 512 KiB]', [
      `a.txt (1 MiB) -> failed ${result.failedFiles[0]?.code}; old a.txt intact; gone.txt not deleted; b.txt downloaded; no temp file`,
    ]);
  });
});
