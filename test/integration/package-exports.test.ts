// The built package (dist/) loads by its own name through package.json
// "exports", from ESM (import -> dist/index.js) and CommonJS (require ->
// dist/index.cjs), and exposes the public API. Runs plain `node` on the
// output, so it checks what consumers get, not the TypeScript sources.
//
// Also: the `s3-workspace-sync/utils` entry loads no @aws-sdk module (a
// preload makes the SDK unloadable) and its utilities work; and the error
// classes of the ESM and CommonJS builds recognise each other's errors with
// `instanceof` (the dual-package hazard).
//
// Builds dist/ with tsup first if an entry is missing (CI runs `npm run build`
// before the tests, so there it is always present and fresh).
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { promisify } from 'node:util';

import { beforeAll, describe, expect, test } from 'vitest';

const execFileAsync = promisify(execFile);

const root = fileURLToPath(new URL('../../', import.meta.url));
const PACKAGE_NAME = 's3-workspace-sync';
const EXPECTED_TYPES = {
  S3WorkspaceSync: 'function',
  guessContentType: 'function',
  validateStoragePath: 'function',
  SyncIgnoreFilter: 'function',
  calculateFileHash: 'function',
  PathValidationError: 'function',
  SyncError: 'function',
  isSyncError: 'function',
} as const;
const NAMES = Object.keys(EXPECTED_TYPES);
/** Built files the tests load; any missing one triggers a build. */
const DIST_FILES = ['dist/index.js', 'dist/index.cjs', 'dist/utils.js', 'dist/utils.cjs'];

interface ProbeResult {
  resolved: string;
  types: Record<string, string>;
  contentType: unknown;
}

/** Child env without loaders/flags inherited from the test runner. */
function childEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  delete env.NODE_OPTIONS;
  return env;
}

async function runNode(args: string[], timeout: number): Promise<string> {
  return (await runNodeFull(args, timeout)).stdout;
}

async function runNodeFull(args: string[], timeout: number): Promise<{ stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await execFileAsync(process.execPath, args, {
      cwd: root, // self-reference: the package.json in cwd's scope is this package's
      env: childEnv(),
      timeout,
      maxBuffer: 16 * 1024 * 1024,
    });
    return { stdout, stderr };
  } catch (err) {
    const e = err as { message: string; stdout?: string; stderr?: string };
    throw new Error(`node ${args.join(' ').slice(0, 200)} failed: ${e.message}\n${e.stderr ?? ''}${e.stdout ?? ''}`);
  }
}

// Both probes print one JSON line: where the name resolved, the typeof of each
// export, and guessContentType('a.json').
const typesExpr = `{ ${NAMES.map((n) => `${n}: typeof ${n}`).join(', ')} }`;
const ESM_PROBE = `
import { ${NAMES.join(', ')} } from '${PACKAGE_NAME}';
console.log(JSON.stringify({
  resolved: import.meta.resolve('${PACKAGE_NAME}'),
  types: ${typesExpr},
  contentType: guessContentType('a.json'),
}));
`;
const CJS_PROBE = `
const { ${NAMES.join(', ')} } = require('${PACKAGE_NAME}');
console.log(JSON.stringify({
  resolved: require.resolve('${PACKAGE_NAME}'),
  types: ${typesExpr},
  contentType: guessContentType('a.json'),
}));
`;

function lastLine(stdout: string): string {
  return stdout.trim().split('\n').pop() ?? '';
}

function parseProbe(stdout: string): ProbeResult {
  const line = stdout.trim().split('\n').pop() ?? '';
  try {
    return JSON.parse(line) as ProbeResult;
  } catch {
    throw new Error(`probe printed no JSON line:\n${stdout}`);
  }
}

// --- s3-workspace-sync/utils -------------------------------------------------

/** Preload that makes every @aws-sdk module unloadable (see the file). */
const NO_AWS_SDK = pathToFileURL(fileURLToPath(new URL('../helpers/no-aws-sdk.mjs', import.meta.url))).href;
const BLOCKED = 'blocked by test/helpers/no-aws-sdk.mjs';

const UTILS_TYPES = {
  validateStoragePath: 'function',
  normalizePrefix: 'function',
  SyncIgnoreFilter: 'function',
  DEFAULT_IGNORE_PATTERNS: 'object',
  RESERVED_IGNORE_PATTERNS: 'object',
  guessContentType: 'function',
  calculateFileHash: 'function',
  redactSecrets: 'function',
  createDefaultLogger: 'function',
  silentLogger: 'object',
  isSyncError: 'function',
  SyncError: 'function',
  ConfigError: 'function',
  PathValidationError: 'function',
  StorageError: 'function',
  LocalFileError: 'function',
  IntegrityError: 'function',
  IncompleteSyncError: 'function',
  IncompletePathsError: 'function',
  GuardError: 'function',
  SyncAbortedError: 'function',
  WorkspaceLockedError: 'function',
} as const;
const UTILS_NAMES = Object.keys(UTILS_TYPES);

// Uses every utility once; `mod` is the loaded entry, `resolved` where its name
// resolved. Runs in an async function (CommonJS has no top-level await).
const UTILS_BODY = `
const fs = await import('node:fs');
const os = await import('node:os');
const path = await import('node:path');
const { ${UTILS_NAMES.join(', ')} } = mod;
const out = { resolved, types: { ${UTILS_NAMES.map((n) => `${n}: typeof ${n}`).join(', ')} } };
validateStoragePath('reports/2026/q1.csv');
try {
  validateStoragePath('../etc/passwd');
  out.invalid = 'did not throw';
} catch (e) {
  out.invalid = { pathError: e instanceof PathValidationError, syncError: e instanceof SyncError, guard: isSyncError(e), code: e.code };
}
out.guardOnPlainError = isSyncError(new Error('x'));
out.prefix = normalizePrefix('/users/u1');
const filter = new SyncIgnoreFilter({ patterns: ['*.log'] });
out.ignored = ['node_modules/x/index.js', 'debug.log', 'src/app.ts'].map((p) => filter.ignores(p));
out.patterns = DEFAULT_IGNORE_PATTERNS.length > 0 && RESERVED_IGNORE_PATTERNS.length > 0;
out.contentType = guessContentType('a.json');
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 's3ws-utils-'));
try {
  fs.writeFileSync(path.join(dir, 'hello.txt'), 'hello');
  out.md5 = await calculateFileHash(path.join(dir, 'hello.txt'));
} finally {
  fs.rmSync(dir, { recursive: true, force: true });
}
out.redacted = redactSecrets('key AKIAIOSFODNN7EXAMPLE');
out.logger = Object.keys(createDefaultLogger({})).sort().join(',') + '|' + String(silentLogger.info('dropped'));
const err = new StorageError('THROTTLED', 'slow down', { retryable: true });
out.storageError = { code: err.code, retryable: err.retryable, isStorage: err instanceof StorageError, isConfig: err instanceof ConfigError };
if (typeof require === 'function') out.awsInRequireCache = Object.keys(require.cache).filter((k) => /[\\\\/]@aws-sdk[\\\\/]/.test(k));
console.log(JSON.stringify(out));
`;
const UTILS_ESM_PROBE = `
import * as mod from '${PACKAGE_NAME}/utils';
const resolved = import.meta.resolve('${PACKAGE_NAME}/utils');
${UTILS_BODY}
`;
const UTILS_CJS_PROBE = `
const mod = require('${PACKAGE_NAME}/utils');
const resolved = require.resolve('${PACKAGE_NAME}/utils');
(async () => {
${UTILS_BODY}
})().catch((e) => { console.error(e); process.exitCode = 1; });
`;

const EXPECTED_UTILS = {
  types: UTILS_TYPES,
  invalid: { pathError: true, syncError: true, guard: true, code: 'INVALID_PATH' },
  guardOnPlainError: false,
  prefix: 'users/u1/',
  ignored: [true, true, false],
  patterns: true,
  contentType: expect.stringContaining('application/json'),
  md5: '5d41402abc4b2a76b9719d911017c592',
  redacted: 'key [redacted-access-key]',
  logger: 'debug,error,info,warn|undefined',
  storageError: { code: 'THROTTLED', retryable: true, isStorage: true, isConfig: false },
};

// --- errors across builds -----------------------------------------------------

/** One error per constructor shape, made with `build`'s classes. */
const ERROR_FACTORIES = `
const result = { failedFiles: [], errors: [], downloadedFiles: 0, uploadedFiles: 0, deletedFiles: 0 };
const make = {
  SyncError: (m) => new m.SyncError('SOME_CODE', 'base'),
  ConfigError: (m) => new m.ConfigError('bad option'),
  PathValidationError: (m) => new m.PathValidationError('../x', "contains a '..' segment"),
  StorageError: (m) => new m.StorageError('ACCESS_DENIED', 'denied', { statusCode: 403 }),
  LocalFileError: (m) => new m.LocalFileError('ENOENT', 'a.txt', 'gone'),
  IntegrityError: (m) => new m.IntegrityError('a.txt', 'aa', 'bb', 'mismatch'),
  IncompleteSyncError: (m) => new m.IncompleteSyncError(result),
  IncompletePathsError: (m) => new m.IncompletePathsError(['a'], []),
  GuardError: (m) => new m.GuardError('MAX_DELETES', 'too many', { wouldDelete: 9 }),
  SyncAbortedError: (m) => new m.SyncAbortedError(result, 'aborted'),
  WorkspaceLockedError: (m) => new m.WorkspaceLockedError('/ws/.s3-workspace-sync/lock', { pid: 1, host: 'h', startedAt: 'now' }),
};
`;
const ERROR_CLASSES = [
  'SyncError',
  'ConfigError',
  'PathValidationError',
  'StorageError',
  'LocalFileError',
  'IntegrityError',
  'IncompleteSyncError',
  'IncompletePathsError',
  'GuardError',
  'SyncAbortedError',
  'WorkspaceLockedError',
];

// Loads the four built files in one process (ESM by import, CommonJS by
// createRequire), makes every error class with each build, and reports, for
// each pair of builds, which classes of the checking build the error is an
// instance of: { "esm>cjs": { StorageError: ["SyncError", "StorageError"], … } }.
const CROSS_BUILD_PROBE = `
import { createRequire } from 'node:module';
const require = createRequire(${JSON.stringify(pathToFileURL(path.join(root, 'package.json')).href)});
const builds = {
  esm: await import(${JSON.stringify(pathToFileURL(path.join(root, 'dist/index.js')).href)}),
  cjs: require(${JSON.stringify(path.join(root, 'dist/index.cjs'))}),
  'utils-esm': await import(${JSON.stringify(pathToFileURL(path.join(root, 'dist/utils.js')).href)}),
  'utils-cjs': require(${JSON.stringify(path.join(root, 'dist/utils.cjs'))}),
};
${ERROR_FACTORIES}
const classes = ${JSON.stringify(ERROR_CLASSES)};
const out = { distinct: builds.esm.StorageError !== builds.cjs.StorageError, matrix: {}, guard: {}, plain: {} };
for (const [makerName, maker] of Object.entries(builds)) {
  for (const [checkerName, checker] of Object.entries(builds)) {
    const row = (out.matrix[makerName + '>' + checkerName] = {});
    for (const made of classes) {
      const error = make[made](maker);
      row[made] = classes.filter((c) => error instanceof checker[c]);
      out.guard[makerName + '>' + checkerName + ':' + made] = checker.isSyncError(error) && error instanceof Error;
    }
  }
}
for (const [name, build] of Object.entries(builds)) {
  const fakes = [new Error('x'), { code: 'CONFIG', name: 'ConfigError' }, null, undefined, 'StorageError', Object.create(build.StorageError.prototype)];
  out.plain[name] = fakes.map((v) => [build.isSyncError(v), v instanceof build.SyncError, v instanceof build.StorageError]);
}
console.log(JSON.stringify(out));
`;

describe('package exports (built dist/)', () => {
  beforeAll(async () => {
    if (DIST_FILES.every((f) => existsSync(path.join(root, f)))) return;
    const require = createRequire(import.meta.url);
    const tsupCli = path.join(path.dirname(require.resolve('tsup/package.json')), 'dist/cli-default.js');
    await runNode([tsupCli], 115_000);
    for (const f of DIST_FILES) expect(existsSync(path.join(root, f)), `tsup did not produce ${f}`).toBe(true);
  }, 120_000);

  test('ESM: import from the package name', async () => {
    const result = parseProbe(await runNode(['--input-type=module', '-e', ESM_PROBE], 20_000));
    expect(result.resolved).toBe(pathToFileURL(path.join(root, 'dist/index.js')).href);
    expect(result.types).toEqual(EXPECTED_TYPES);
    expect(result.contentType).toEqual(expect.stringContaining('application/json'));
  });

  test('CommonJS: require the package name', async () => {
    const result = parseProbe(await runNode(['--input-type=commonjs', '-e', CJS_PROBE], 20_000));
    expect(result.resolved).toBe(path.join(root, 'dist/index.cjs'));
    expect(result.types).toEqual(EXPECTED_TYPES);
    expect(result.contentType).toEqual(expect.stringContaining('application/json'));
  });
  describe('s3-workspace-sync/utils: the SDK-free entry', () => {
    test('ESM: loads without @aws-sdk, and the utilities work', async () => {
      const args = ['--import', NO_AWS_SDK, '--input-type=module', '-e', UTILS_ESM_PROBE];
      const result = JSON.parse(lastLine(await runNode(args, 20_000))) as Record<string, unknown>;
      expect(result.resolved).toBe(pathToFileURL(path.join(root, 'dist/utils.js')).href);
      expect(result).toMatchObject(EXPECTED_UTILS);
    });

    test('CommonJS: loads without @aws-sdk, and the utilities work', async () => {
      const args = ['--import', NO_AWS_SDK, '--input-type=commonjs', '-e', UTILS_CJS_PROBE];
      const result = JSON.parse(lastLine(await runNode(args, 20_000))) as Record<string, unknown>;
      expect(result.resolved).toBe(path.join(root, 'dist/utils.cjs'));
      expect(result).toMatchObject(EXPECTED_UTILS);
      expect(result.awsInRequireCache).toEqual([]);
    });

    // Control: the preload does refuse the SDK, so the two tests above would
    // fail if the utils entry (or anything it imports) loaded it.
    test.each([
      ['ESM', ['--input-type=module', '-e', `await import('${PACKAGE_NAME}');`]],
      ['CommonJS', ['--input-type=commonjs', '-e', `require('${PACKAGE_NAME}');`]],
    ])('%s: the main entry fails to load under the same preload', async (_kind, args) => {
      await expect(runNode(['--import', NO_AWS_SDK, ...args], 20_000)).rejects.toThrow(`${BLOCKED}: @aws-sdk/client-s3`);
    });
  });

  describe('errors across the ESM and CommonJS builds', () => {
    interface CrossBuild {
      distinct: boolean;
      matrix: Record<string, Record<string, string[]>>;
      guard: Record<string, boolean>;
      plain: Record<string, boolean[][]>;
    }
    let cross: CrossBuild;
    const BUILDS = ['esm', 'cjs', 'utils-esm', 'utils-cjs'];

    beforeAll(async () => {
      cross = JSON.parse(lastLine(await runNode(['--input-type=module', '-e', CROSS_BUILD_PROBE], 20_000))) as CrossBuild;
    });

    test('the two builds really hold two copies of the classes', () => {
      expect(cross.distinct).toBe(true);
    });

    test.each(BUILDS.flatMap((maker) => BUILDS.map((checker) => [maker, checker] as const)))(
      'an error made by %s is instanceof exactly its own classes of %s',
      (maker, checker) => {
        const row = cross.matrix[`${maker}>${checker}`];
        const expected = Object.fromEntries(ERROR_CLASSES.map((c) => [c, c === 'SyncError' ? ['SyncError'] : ['SyncError', c]]));
        expect(row).toEqual(expected);
      },
    );

    test('isSyncError recognises every error of every build', () => {
      expect(Object.entries(cross.guard).filter(([, ok]) => !ok)).toEqual([]);
      expect(Object.keys(cross.guard)).toHaveLength(BUILDS.length ** 2 * ERROR_CLASSES.length);
    });

    test('non-errors and look-alikes are not SyncErrors; a bare prototype still is one by the ordinary rule', () => {
      // [isSyncError, instanceof SyncError, instanceof StorageError] for:
      // Error, a plain object shaped like one, null, undefined, a string,
      // Object.create(StorageError.prototype) (prototype chain: true; no brand, so the guard agrees).
      for (const build of BUILDS) {
        expect(cross.plain[build], build).toEqual([
          [false, false, false],
          [false, false, false],
          [false, false, false],
          [false, false, false],
          [false, false, false],
          [true, true, true],
        ]);
      }
    });
  });
});
