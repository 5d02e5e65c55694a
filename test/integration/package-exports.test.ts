// The built package (dist/) loads by its own name through package.json
// "exports", from ESM (import -> dist/index.js) and CommonJS (require ->
// dist/index.cjs), and exposes the public API. Runs plain `node` on the
// output, so it checks what consumers get, not the TypeScript sources.
//
// Builds dist/ with tsup first if it is missing (CI runs `npm run build`
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
} as const;
const NAMES = Object.keys(EXPECTED_TYPES);

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
  try {
    const { stdout } = await execFileAsync(process.execPath, args, {
      cwd: root, // self-reference: the package.json in cwd's scope is this package's
      env: childEnv(),
      timeout,
      maxBuffer: 16 * 1024 * 1024,
    });
    return stdout;
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

function parseProbe(stdout: string): ProbeResult {
  const line = stdout.trim().split('\n').pop() ?? '';
  try {
    return JSON.parse(line) as ProbeResult;
  } catch {
    throw new Error(`probe printed no JSON line:\n${stdout}`);
  }
}

describe('package exports (built dist/)', () => {
  beforeAll(async () => {
    const esm = path.join(root, 'dist/index.js');
    const cjs = path.join(root, 'dist/index.cjs');
    if (existsSync(esm) && existsSync(cjs)) return;
    const require = createRequire(import.meta.url);
    const tsupCli = path.join(path.dirname(require.resolve('tsup/package.json')), 'dist/cli-default.js');
    await runNode([tsupCli], 115_000);
    expect(existsSync(esm), 'tsup did not produce dist/index.js').toBe(true);
    expect(existsSync(cjs), 'tsup did not produce dist/index.cjs').toBe(true);
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
});
