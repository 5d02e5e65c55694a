// Helpers for the command-line tests (test/cli): make sure the BUILT binary
// (dist/cli.js, and the dist/index.js it loads) is fresh, then run it as a
// child process against the run's local S3 server.
//
// Freshness: CI runs `npm run build` before `npm test`, so dist/ is fresh
// there. Locally it may be missing or older than src/: ensureCliBuilt()
// compares modification times (dist/cli.js and dist/index.js against every
// file under src/, tsup.config.ts and package.json) and, when anything is
// newer, rebuilds with tsup's API using tsup.config.ts's own configs: the
// library's ESM build without declarations (about 0.5 s) and the CLI entry.
// A lock directory keeps the test files that run at once from building
// together; the others wait for it and re-check. It never tests stale code
// silently: it rebuilds, or fails saying why.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, readdirSync, rmSync, statSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { s3Endpoint, TEST_CREDENTIALS } from './s3.js';

export const ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const CLI = path.join(ROOT, 'dist/cli.js');
const LIBRARY = path.join(ROOT, 'dist/index.js');
const LOCK = path.join(ROOT, 'node_modules/.cache/s3ws-cli-build.lock');

function newestSource(): number {
  let newest = 0;
  const walk = (dir: string): void => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else newest = Math.max(newest, statSync(p).mtimeMs);
    }
  };
  walk(path.join(ROOT, 'src'));
  for (const f of ['tsup.config.ts', 'package.json']) newest = Math.max(newest, statSync(path.join(ROOT, f)).mtimeMs);
  return newest;
}

function builtAt(file: string): number {
  try {
    return statSync(file).mtimeMs;
  } catch {
    return -1;
  }
}

/** Why dist/ cannot be used as it is (missing or older than a source), or undefined when it is fresh. */
export function staleReason(): string | undefined {
  const newest = newestSource();
  for (const f of [CLI, LIBRARY]) {
    const t = builtAt(f);
    if (t < 0) return `${path.relative(ROOT, f)} is missing`;
    if (t < newest) return `${path.relative(ROOT, f)} is older than the sources`;
  }
  return undefined;
}

let checked: Promise<void> | undefined;

/** Build dist/cli.js (and the library's ESM build it loads) when missing or stale. Once per test file. */
export function ensureCliBuilt(): Promise<void> {
  checked ??= ensure();
  return checked;
}

async function ensure(): Promise<void> {
  const deadline = Date.now() + 60_000;
  while (staleReason() !== undefined) {
    mkdirSync(path.dirname(LOCK), { recursive: true });
    let mine = false;
    try {
      mkdirSync(LOCK);
      mine = true;
    } catch {
      // another test file is building: wait for it (a lock older than a minute is left over from a crash)
      try {
        if (Date.now() - statSync(LOCK).mtimeMs > 60_000) rmSync(LOCK, { recursive: true, force: true });
      } catch {
        // gone meanwhile
      }
    }
    if (mine) {
      try {
        const reason = staleReason();
        if (reason !== undefined) await build(reason);
      } finally {
        rmSync(LOCK, { recursive: true, force: true });
      }
    } else {
      if (Date.now() > deadline) throw new Error(`dist/ is stale (${staleReason()}) and another build holds ${LOCK}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  }
}

async function build(reason: string): Promise<void> {
  const { build: tsup } = await import('tsup');
  const { libraryConfig, cliConfig } = await import('../../tsup.config.js');
  const started = Date.now();
  const cwd = process.cwd();
  try {
    process.chdir(ROOT);
    // silent: tsup prints a line per step
    await tsup({ ...libraryConfig, format: ['esm'], dts: false, clean: false, sourcemap: false, config: false, silent: true });
    await tsup({ ...cliConfig, config: false, silent: true });
  } finally {
    process.chdir(cwd);
  }
  const still = staleReason();
  if (still !== undefined) throw new Error(`built dist/ for the CLI tests (${reason}), but ${still}`);
  console.log(`test/cli: rebuilt dist/index.js and dist/cli.js in ${Date.now() - started} ms (${reason})`);
}

/** One parsed JSON line of the CLI's machine output. */
export type JsonLine = Record<string, unknown> & { type: string; schema: number };

export interface CliRun {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** stdout parsed as JSON lines (empty when stdout is not JSON). */
  lines: JsonLine[];
  /** The last line, `type: 'result'`, if any. */
  result: (JsonLine & { exitCode: number; ok: boolean; error?: { code: string; message: string; hint?: string } }) | undefined;
  ms: number;
}

export interface CliOptions {
  env?: Record<string, string | undefined>;
  cwd?: string;
  timeoutMs?: number;
  /** Extra node flags (e.g. a preload). */
  nodeArgs?: string[];
  /** Called with the child as soon as it is spawned. */
  onSpawn?: (child: ChildProcess) => void;
  /** Called for every stdout line as it arrives. */
  onLine?: (line: string, child: ChildProcess) => void;
}

/**
 * The environment of a CLI child: nothing inherited but PATH (no S3WS_*, no
 * AWS profile or config of the machine, no instance metadata lookups), the
 * local server's credentials, and an empty config directory.
 */
export function baseEnv(home: string): Record<string, string> {
  return {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HOME: home,
    XDG_CONFIG_HOME: path.join(home, '.config'),
    AWS_ACCESS_KEY_ID: TEST_CREDENTIALS.accessKeyId,
    AWS_SECRET_ACCESS_KEY: TEST_CREDENTIALS.secretAccessKey,
    AWS_CONFIG_FILE: path.join(home, 'no-aws-config'),
    AWS_SHARED_CREDENTIALS_FILE: path.join(home, 'no-aws-credentials'),
    AWS_EC2_METADATA_DISABLED: 'true',
    AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
  };
}

let home: Promise<string> | undefined;
/** A HOME for CLI children, shared by a test file. */
export function cliHome(): Promise<string> {
  home ??= mkdtemp(path.join(tmpdir(), 's3ws-cli-home-'));
  return home;
}

/** Run `node dist/cli.js ...args`; never rejects on a non-zero exit. */
export async function runCli(args: readonly string[], o: CliOptions = {}): Promise<CliRun> {
  const env: Record<string, string> = { ...baseEnv(await cliHome()) };
  for (const [k, v] of Object.entries(o.env ?? {})) {
    if (v === undefined) delete env[k];
    else env[k] = v;
  }
  const started = Date.now();
  const child = spawn(process.execPath, [...(o.nodeArgs ?? []), CLI, ...args], { cwd: o.cwd ?? ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  o.onSpawn?.(child);
  let stdout = '';
  let stderr = '';
  let partial = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => {
    stdout += d;
    if (o.onLine) {
      partial += d;
      const parts = partial.split('\n');
      partial = parts.pop() ?? '';
      for (const line of parts) o.onLine(line, child);
    }
  });
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const timeoutMs = o.timeoutMs ?? 20_000;
  const { code, signal } = await new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`s3-workspace-sync ${args.join(' ')} did not exit within ${timeoutMs} ms\nstdout: ${stdout.slice(-2000)}\nstderr: ${stderr.slice(-2000)}`));
    }, timeoutMs);
    child.on('close', (c, s) => {
      clearTimeout(timer);
      resolve({ code: c, signal: s });
    });
  });
  const lines: JsonLine[] = [];
  for (const line of stdout.split('\n')) {
    if (!line.startsWith('{')) continue;
    try {
      lines.push(JSON.parse(line) as JsonLine);
    } catch {
      // not JSON
    }
  }
  const last = lines.at(-1);
  return { code, signal, stdout, stderr, lines, result: last?.type === 'result' ? (last as CliRun['result']) : undefined, ms: Date.now() - started };
}

/** `--bucket … --prefix … --dir … --endpoint <local server> --path-style`. */
export function where(bucket: string, prefix: string, dir: string): string[] {
  return ['--bucket', bucket, '--prefix', prefix, '--dir', dir, '--endpoint', s3Endpoint(), '--path-style'];
}

/** A TCP port on 127.0.0.1 that nothing listens on (bound, then closed). */
export async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  await new Promise<void>((r) => server.close(() => r()));
  return port;
}
