/**
 * The command line's options: one table (flag, environment variable, config
 * file key, type, help), parsed with `node:util` parseArgs and merged in one
 * documented order of precedence:
 *
 *   flags > environment (S3WS_*) > config file > the library's defaults
 *
 * No sync logic here: values are parsed and checked for their shape (a size,
 * a duration, one of a list); the library checks ranges and meaning when the
 * instance is created (its ConfigError names the library option, which
 * {@link flagOfLibraryOption} maps back to a flag).
 */
import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';

/** A mistake in the command line, the environment or the config file (exit code 2). */
export class UsageError extends Error {
  override name = 'UsageError';
}

/** The commands. */
export type CommandName = 'pull' | 'push' | 'plan' | 'status' | 'verify' | 'watch';

/** Every command, in --help's order. */
export const COMMAND_NAMES: readonly CommandName[] = ['pull', 'push', 'plan', 'status', 'verify', 'watch'];

type Kind = 'string' | 'boolean' | 'int' | 'size' | 'duration' | 'deletes' | 'list' | 'enum';

export interface OptionSpec {
  /** Long flag without `--`; also names the environment variable and the config key. */
  readonly flag: string;
  readonly kind: Kind;
  readonly short?: string;
  /** For `enum`. */
  readonly values?: readonly string[];
  /** Placeholder in --help. */
  readonly arg?: string;
  readonly help: string;
  /** Commands the flag applies to (default: all). Environment and config values are ignored elsewhere. */
  readonly only?: readonly CommandName[];
  /** Not accepted on the command line (secrets): environment or config file only. */
  readonly noFlag?: boolean;
  /** Not read from the config file (`--config` itself). */
  readonly noConfig?: boolean;
  readonly group: 'Location' | 'Sync' | 'Watch' | 'Guards' | 'Transfers' | 'Output';
}

const SYNCS: readonly CommandName[] = ['pull', 'push'];
/** Commands that plan a sync; `watch` plans its pushes (and its initial sync) with the same options. */
const PLANNING: readonly CommandName[] = ['pull', 'push', 'plan', 'status', 'watch'];
/** Options of pushing: `push`, and `watch`'s pushes. */
const PUSHING: readonly CommandName[] = ['push', 'watch'];
/** Options of pulling (and of reading the bucket): `watch` pulls first unless `--initial` says otherwise. */
const PULLING: readonly CommandName[] = ['pull', 'plan', 'status', 'watch'];

/** Every option. Order is --help's order. */
export const OPTIONS: readonly OptionSpec[] = [
  // Location and credentials
  { flag: 'bucket', kind: 'string', short: 'b', arg: 'NAME', group: 'Location', help: 'bucket name (required)' },
  { flag: 'prefix', kind: 'string', short: 'p', arg: 'PREFIX', group: 'Location', help: "key prefix of the workspace, e.g. users/u1/workspace/ (required; '' is the whole bucket)" },
  { flag: 'dir', kind: 'string', short: 'd', arg: 'PATH', group: 'Location', help: 'local workspace directory (required; pull creates it)' },
  { flag: 'endpoint', kind: 'string', arg: 'URL', group: 'Location', help: 'S3-compatible endpoint (R2, MinIO…); default: AWS (or AWS_ENDPOINT_URL_S3)' },
  { flag: 'region', kind: 'string', arg: 'REGION', group: 'Location', help: 'region; default: AWS_REGION, the profile\'s region, else us-east-1' },
  { flag: 'path-style', kind: 'boolean', group: 'Location', help: 'path-style addressing (endpoint/bucket/key), for MinIO and most local servers' },
  { flag: 'profile', kind: 'string', arg: 'NAME', group: 'Location', help: 'profile of ~/.aws/config and ~/.aws/credentials (as AWS_PROFILE); credentials come only from the AWS SDK\'s provider chain' },
  { flag: 'expected-bucket-owner', kind: 'string', arg: 'ACCOUNT', group: 'Location', help: '12-digit account id the bucket must belong to' },
  { flag: 'state-dir', kind: 'string', arg: 'PATH', group: 'Location', help: 'directory of the state file (default: DIR/.s3-workspace-sync)' },
  { flag: 'no-state', kind: 'boolean', group: 'Location', help: 'keep no state file: every run starts fresh (slower; pull mirrors the bucket)' },
  // What a sync does
  { flag: 'dry-run', kind: 'boolean', short: 'n', only: SYNCS, group: 'Sync', help: 'show what would happen, change nothing (same as plan)' },
  { flag: 'exclude', kind: 'list', short: 'x', arg: 'PATTERN', group: 'Sync', help: 'gitignore-style pattern to leave out (repeatable; after .syncignore; !PATTERN re-includes)' },
  { flag: 'conflict-policy', kind: 'enum', values: ['fail', 'keep-local', 'keep-remote', 'keep-both'], arg: 'POLICY', only: PLANNING, group: 'Sync', help: 'where both sides changed a file: fail (default), keep-local, keep-remote, keep-both' },
  { flag: 'priority', kind: 'list', arg: 'PATH', only: ['pull'], group: 'Sync', help: 'pull these files or directories first (repeatable)' },
  { flag: 'trust-manifest', kind: 'boolean', only: PULLING, group: 'Sync', help: 'pull from the manifest pushes commit instead of listing (when only this tool writes the prefix)' },
  { flag: 'git', kind: 'enum', values: ['off', 'bundle'], arg: 'MODE', only: [...SYNCS, 'watch'], group: 'Sync', help: "bundle: push saves the workspace's .git as one git bundle, pull restores it where .git is missing (needs git); off (default)" },
  { flag: 'require-conditional-writes', kind: 'boolean', only: PUSHING, group: 'Sync', help: 'refuse to push to a server that ignores conditional writes (conflicts undetectable)' },
  { flag: 'storage-class', kind: 'string', arg: 'CLASS', only: PUSHING, group: 'Sync', help: 'storage class of uploaded objects (STANDARD_IA, INTELLIGENT_TIERING…)' },
  { flag: 'sse', kind: 'enum', values: ['AES256', 'aws:kms', 'aws:kms:dsse'], arg: 'ALGORITHM', only: PUSHING, group: 'Sync', help: 'server-side encryption of uploaded objects: AES256, aws:kms, aws:kms:dsse' },
  { flag: 'sse-kms-key-id', kind: 'string', arg: 'KEY', only: PUSHING, group: 'Sync', help: 'KMS key for --sse aws:kms' },
  { flag: 'sse-customer-key', kind: 'string', noFlag: true, group: 'Sync', help: 'SSE-C key (32 characters or base64 of 32 bytes); environment or config file only, never a flag' },
  // Watch mode
  { flag: 'debounce', kind: 'duration', arg: 'DURATION', only: ['watch'], group: 'Watch', help: 'push once nothing changed for this long (default 1s; e.g. 500ms, 2s)' },
  { flag: 'max-delay', kind: 'duration', arg: 'DURATION', only: ['watch'], group: 'Watch', help: 'under continuous writes, push at least this often: bounds what is pending at a stop (default 10s, at least --debounce)' },
  { flag: 'reconcile', kind: 'duration', arg: 'DURATION', only: ['watch'], group: 'Watch', help: 'a full push this often, for changes a watcher missed (default 5m; 0: never)' },
  { flag: 'initial', kind: 'enum', values: ['pull', 'push', 'none'], arg: 'MODE', only: ['watch'], group: 'Watch', help: 'before watching: pull (default: restore the directory), push (a full push), or none' },
  // Guards
  { flag: 'max-deletes', kind: 'deletes', arg: 'N', only: PLANNING, group: 'Guards', help: 'refuse to delete more: a count, a fraction (0.25 or 25%), or off (default: refuse over 50% of a tree of over 10 files)' },
  { flag: 'max-total-bytes', kind: 'size', arg: 'SIZE', only: PLANNING, group: 'Guards', help: 'refuse to transfer more than SIZE (e.g. 500M, 2G)' },
  { flag: 'allow-empty-remote', kind: 'boolean', only: PULLING, group: 'Guards', help: 'let pull mirror an empty prefix (deleting local synced files)' },
  { flag: 'overwrite-local-changes', kind: 'boolean', only: PULLING, group: 'Guards', help: 'remote wins: pull replaces local changes (they are moved to the recovery area first)' },
  // Transfers, timeouts
  { flag: 'concurrency', kind: 'int', short: 'j', arg: 'N', group: 'Transfers', help: 'files transferred at once, both directions (default: 50 down, 10 up)' },
  { flag: 'download-concurrency', kind: 'int', arg: 'N', group: 'Transfers', help: 'files downloaded at once (default 50)' },
  { flag: 'upload-concurrency', kind: 'int', arg: 'N', group: 'Transfers', help: 'files uploaded at once (default 10)' },
  { flag: 'part-concurrency', kind: 'int', arg: 'N', group: 'Transfers', help: 'parts of large files in flight (default 8)' },
  { flag: 'multipart-threshold', kind: 'size', arg: 'SIZE', group: 'Transfers', help: 'multipart from this size (default 16M)' },
  { flag: 'part-size', kind: 'size', arg: 'SIZE', group: 'Transfers', help: 'part size (default 8M)' },
  { flag: 'hash-threads', kind: 'int', arg: 'N', group: 'Transfers', help: 'MD5 worker threads for large files (0: main thread)' },
  { flag: 'prehash-multipart', kind: 'boolean', only: PUSHING, group: 'Transfers', help: 'store the whole-file MD5 of multipart uploads (one extra read)' },
  { flag: 'transport', kind: 'enum', values: ['auto', 'sdk'], arg: 'MODE', group: 'Transfers', help: 'auto (default: a leaner request path where it is equivalent) or sdk' },
  { flag: 'max-attempts', kind: 'int', arg: 'N', group: 'Transfers', help: 'attempts per request, the first included (default 3)' },
  { flag: 'connect-timeout', kind: 'duration', arg: 'DURATION', group: 'Transfers', help: 'give up a connection attempt after this (default 5s; with 3 attempts an unreachable endpoint fails in about 16 s)' },
  { flag: 'stall-timeout', kind: 'duration', arg: 'DURATION', group: 'Transfers', help: 'abandon (and retry) a request that moves no data for this long (default 20s; 0: off)' },
  { flag: 'timeout', kind: 'duration', arg: 'DURATION', group: 'Transfers', help: 'give up the whole command after this (watch: each push, the last one included; e.g. 15m; default: none)' },
  { flag: 'lock-wait', kind: 'duration', arg: 'DURATION', group: 'Transfers', help: 'wait this long for another sync of the same directory (default 60s)' },
  { flag: 'wait-for-push', kind: 'duration', arg: 'DURATION', group: 'Transfers', help: "wait this long for another process's push to the prefix (default 60s)" },
  // Output
  { flag: 'json', kind: 'boolean', group: 'Output', help: 'one JSON object per line (the default when stdout is not a terminal)' },
  { flag: 'quiet', kind: 'boolean', short: 'q', group: 'Output', help: 'no progress and no summary: errors only (JSON: the final line only)' },
  { flag: 'verbose', kind: 'boolean', short: 'v', group: 'Output', help: 'list every file in summaries, and the library\'s info logs' },
  { flag: 'config', kind: 'string', arg: 'PATH', noConfig: true, group: 'Output', help: 'config file (JSON); see "Config file" below' },
];

/** Flags parseArgs knows that are not settings. */
const META = { help: { type: 'boolean', short: 'h' }, version: { type: 'boolean', short: 'V' } } as const;

/** `max-total-bytes` -> `maxTotalBytes` (the config file key). */
export const camel = (flag: string): string => flag.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
/** `max-total-bytes` -> `S3WS_MAX_TOTAL_BYTES`. */
export const envName = (flag: string): string => `S3WS_${flag.toUpperCase().replace(/-/g, '_')}`;

/** A setting's value after parsing. */
export type Value = string | number | boolean | readonly string[];
/** Settings by flag name, after precedence, plus where each came from. */
export interface Settings {
  command: CommandName;
  /** `plan`'s direction. */
  direction?: 'pull' | 'push';
  values: Map<string, Value>;
  sources: Map<string, 'flag' | 'env' | 'config'>;
  /** The config file read, if any. */
  configFile: string | undefined;
}

export interface Parsed {
  help: boolean;
  version: boolean;
  positionals: string[];
  flags: Map<string, Value>;
}

/**
 * Parse argv (without `node` and the script). Options may come before or
 * after the command. Unknown options, missing values and bad values throw
 * {@link UsageError}.
 */
export function parseCommandLine(argv: readonly string[]): Parsed {
  const options: Record<string, { type: 'string' | 'boolean'; short?: string; multiple?: boolean }> = { ...META };
  for (const o of OPTIONS) {
    if (o.noFlag) continue;
    options[o.flag] = { type: o.kind === 'boolean' ? 'boolean' : 'string', ...(o.short ? { short: o.short } : {}), ...(o.kind === 'list' ? { multiple: true } : {}) };
  }
  let parsed;
  try {
    parsed = parseArgs({ args: [...argv], options, allowPositionals: true, strict: true });
  } catch (error) {
    throw new UsageError(explainParseError(error, argv));
  }
  const flags = new Map<string, Value>();
  for (const o of OPTIONS) {
    const raw = (parsed.values as Record<string, unknown>)[o.flag];
    if (raw === undefined) continue;
    flags.set(o.flag, convert(o, raw as string | boolean | string[], `--${o.flag}`));
  }
  return { help: parsed.values.help === true, version: parsed.values.version === true, positionals: parsed.positionals, flags };
}

function explainParseError(error: unknown, argv: readonly string[]): string {
  const e = error as { code?: string; message?: string };
  const message = e.message ?? String(error);
  if (e.code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') {
    const m = /Unknown option '([^']+)'/.exec(message);
    const given = m?.[1] ?? '';
    const name = given.replace(/^-+/, '').split('=')[0] ?? '';
    const secret = OPTIONS.find((o) => o.noFlag && o.flag === name);
    if (secret) return `--${secret.flag} is not accepted on the command line (it would show in the process list and shell history): set ${envName(secret.flag)} or "${camel(secret.flag)}" in the config file`;
    if (/^(access-key|secret|aws-access-key-id|aws-secret-access-key|session-token|credentials?)/.test(name)) {
      return `unknown option '${given}': credentials are never taken from the command line; they come from the AWS SDK's provider chain (environment, --profile, SSO, instance role…)`;
    }
    const near = closest(name, [...OPTIONS.filter((o) => !o.noFlag).map((o) => o.flag), 'help', 'version']);
    return `unknown option '${given}'${near ? ` (did you mean --${near}?)` : ''}`;
  }
  if (e.code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE') {
    // "Option '-b, --bucket <value>' argument missing" / "Option '--json' does not take an argument"
    return message.replace(/^Option '(?:-\w, )?(--[\w-]+)[^']*'/, 'option $1');
  }
  return `${message}${argv.length ? '' : ''}`;
}

/** Levenshtein-closest candidate within distance 2 (or a prefix match), for "did you mean". */
export function closest(name: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestD = 3;
  for (const c of candidates) {
    const d = c.startsWith(name) && name.length >= 3 ? 1 : distance(name, c);
    if (d < bestD) {
      bestD = d;
      best = c;
    }
  }
  return best;
}

function distance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let prev = row[0]!;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const cur = row[j]!;
      row[j] = Math.min(row[j]! + 1, row[j - 1]! + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = cur;
    }
  }
  return row[b.length]!;
}

// --------------------------------------------------------------- values

const SIZE_UNITS: Record<string, number> = { '': 1, b: 1, k: 2 ** 10, kb: 2 ** 10, kib: 2 ** 10, m: 2 ** 20, mb: 2 ** 20, mib: 2 ** 20, g: 2 ** 30, gb: 2 ** 30, gib: 2 ** 30, t: 2 ** 40, tb: 2 ** 40, tib: 2 ** 40 };
const DURATION_UNITS: Record<string, number> = { ms: 1, '': 1000, s: 1000, m: 60_000, h: 3_600_000 };

/** `10M` -> 10485760 (binary units, like rclone; `k`, `M`, `G`, `T`, optional `B`/`iB`). */
export function parseSize(text: string): number | undefined {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$/i.exec(text);
  const unit = m ? SIZE_UNITS[m[2]!.toLowerCase()] : undefined;
  if (!m || unit === undefined) return undefined;
  return Math.round(Number(m[1]) * unit);
}

/** `1m30s` -> 90000 ms; a bare number is seconds; `0` is 0. */
export function parseDuration(text: string): number | undefined {
  const t = text.trim();
  if (t === '') return undefined;
  if (/^\d+(\.\d+)?$/.test(t)) return Math.round(Number(t) * 1000);
  let total = 0;
  let rest = t;
  while (rest !== '') {
    const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)/.exec(rest);
    if (!m) return undefined;
    total += Number(m[1]) * DURATION_UNITS[m[2]!]!;
    rest = rest.slice(m[0].length);
  }
  return Math.round(total);
}

/** A count, a fraction (`0.25`, `25%`) or `off` / `Infinity` / `inf` (no limit). */
function parseDeletes(text: string): number | undefined {
  const t = text.trim().toLowerCase();
  if (t === 'off' || t === 'infinity' || t === 'inf' || t === 'none') return Infinity;
  if (/^\d+(\.\d+)?%$/.test(t)) {
    const pct = Number(t.slice(0, -1));
    return pct >= 100 ? Infinity : pct / 100;
  }
  if (/^\d+(\.\d+)?$/.test(t)) return Number(t);
  return undefined;
}

const TRUE = new Set(['1', 'true', 'yes', 'on']);
const FALSE = new Set(['0', 'false', 'no', 'off', '']);

/** Convert a raw value (a flag's string, an environment string, a config value) to the option's type. */
function convert(o: OptionSpec, raw: unknown, where: string): Value {
  const bad = (want: string): never => {
    throw new UsageError(`${where} must be ${want} (got ${JSON.stringify(raw)})`);
  };
  switch (o.kind) {
    case 'boolean':
      if (typeof raw === 'boolean') return raw;
      if (typeof raw === 'string' && TRUE.has(raw.toLowerCase())) return true;
      if (typeof raw === 'string' && FALSE.has(raw.toLowerCase())) return false;
      return bad('true or false (1/0, yes/no)');
    case 'string':
      if (typeof raw === 'string') return raw;
      return bad('a string');
    case 'list':
      if (Array.isArray(raw) && raw.every((x) => typeof x === 'string')) return raw as string[];
      // the environment: one pattern per line, or comma-separated
      if (typeof raw === 'string') return raw.split(raw.includes('\n') ? '\n' : ',').map((s) => s.trim()).filter((s) => s !== '');
      return bad('a list of strings');
    case 'enum':
      if (typeof raw === 'string' && o.values!.includes(raw)) return raw;
      return bad(`one of ${o.values!.join(', ')}`);
    case 'int': {
      const n = typeof raw === 'number' ? raw : typeof raw === 'string' && /^\s*\d+\s*$/.test(raw) ? Number(raw) : NaN;
      if (Number.isInteger(n) && n >= 0) return n;
      return bad('a whole number');
    }
    case 'size': {
      const n = typeof raw === 'number' ? raw : typeof raw === 'string' ? parseSize(raw) : undefined;
      if (n !== undefined && n >= 0) return n;
      return bad('a size in bytes, e.g. 1048576, 512K, 10M, 2G');
    }
    case 'duration': {
      const n = typeof raw === 'number' ? raw * 1000 : typeof raw === 'string' ? parseDuration(raw) : undefined;
      if (n !== undefined && n >= 0) return n;
      return bad('a duration, e.g. 30s, 5m, 1h30m, 500ms (a bare number is seconds)');
    }
    case 'deletes': {
      const n = typeof raw === 'number' ? raw : typeof raw === 'string' ? parseDeletes(raw) : undefined;
      if (n !== undefined && n >= 0) return n;
      return bad('a count, a fraction (0.25 or 25%), or off');
    }
  }
}

// --------------------------------------------------------------- precedence

/** Where the config file is looked for, in order, when neither --config nor S3WS_CONFIG names one. */
export function configCandidates(env: NodeJS.ProcessEnv, cwd: string): string[] {
  const xdg = env.XDG_CONFIG_HOME || join(env.HOME || homedir(), '.config');
  return [join(cwd, 's3-workspace-sync.json'), join(xdg, 's3-workspace-sync', 'config.json')];
}

/** Read the config file: an explicit one must exist; otherwise the first candidate that exists, if any. */
function readConfig(explicit: string | undefined, env: NodeJS.ProcessEnv, cwd: string): { file: string | undefined; data: Record<string, unknown> } {
  const file = explicit !== undefined ? resolve(cwd, explicit) : configCandidates(env, cwd).find((f) => existsSync(f));
  if (file === undefined) return { file: undefined, data: {} };
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    throw new UsageError(`cannot read the config file ${file}: ${(error as Error).message}`);
  }
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (error) {
    throw new UsageError(`the config file ${file} is not valid JSON: ${(error as Error).message}`);
  }
  if (data === null || typeof data !== 'object' || Array.isArray(data)) throw new UsageError(`the config file ${file} must hold a JSON object`);
  return { file, data: data as Record<string, unknown> };
}

/**
 * The command and its settings: flags, then `S3WS_*` environment variables,
 * then the config file. Unknown config keys are refused (with a hint);
 * environment and config values of options that do not apply to the command
 * are ignored, flags that do not apply are refused.
 */
export function resolveSettings(parsed: Parsed, env: NodeJS.ProcessEnv, cwd: string): Settings {
  const [command, ...rest] = parsed.positionals;
  const { name, direction } = checkCommand(command, rest);
  const explicit = (parsed.flags.get('config') as string | undefined) ?? (env.S3WS_CONFIG || undefined);
  const config = readConfig(explicit, env, cwd);
  const byKey = new Map(OPTIONS.filter((o) => !o.noConfig).map((o) => [camel(o.flag), o]));
  for (const key of Object.keys(config.data)) {
    if (key === '$schema' || key.startsWith('//')) continue;
    if (!byKey.has(key)) {
      const near = closest(key, [...byKey.keys()]);
      throw new UsageError(`unknown key "${key}" in the config file ${config.file}${near ? ` (did you mean "${near}"?)` : ''}`);
    }
  }
  const values = new Map<string, Value>();
  const sources = new Map<string, 'flag' | 'env' | 'config'>();
  for (const o of OPTIONS) {
    const applies = o.only === undefined || o.only.includes(name);
    const flag = parsed.flags.get(o.flag);
    if (flag !== undefined) {
      if (!applies) throw new UsageError(`--${o.flag} is not an option of ${name} (it applies to: ${o.only!.join(', ')})`);
      values.set(o.flag, flag);
      sources.set(o.flag, 'flag');
      continue;
    }
    if (!applies) continue;
    const fromEnv = env[envName(o.flag)];
    if (fromEnv !== undefined && fromEnv !== '' && o.flag !== 'config') {
      values.set(o.flag, convert(o, fromEnv, envName(o.flag)));
      sources.set(o.flag, 'env');
      continue;
    }
    const fromConfig = o.noConfig ? undefined : config.data[camel(o.flag)];
    if (fromConfig !== undefined && fromConfig !== null) {
      values.set(o.flag, convert(o, fromConfig, `"${camel(o.flag)}" in ${config.file}`));
      sources.set(o.flag, 'config');
    }
  }
  for (const required of ['bucket', 'prefix', 'dir']) {
    if (!values.has(required)) {
      throw new UsageError(`--${required} is required (or ${envName(required)}, or "${camel(required)}" in a config file)`);
    }
  }
  return { command: name, ...(direction ? { direction } : {}), values, sources, configFile: config.file };
}

/** The command name and, for `plan`, its direction. */
export function checkCommand(command: string | undefined, rest: readonly string[]): { name: CommandName; direction?: 'pull' | 'push' } {
  if (command === undefined) throw new UsageError('a command is required: pull, push, plan pull|push, status, verify or watch');
  if (command === 'plan') {
    const [direction, ...extra] = rest;
    if (direction !== 'pull' && direction !== 'push') throw new UsageError(`plan needs a direction: plan pull or plan push${direction ? ` (got "${direction}")` : ''}`);
    if (extra.length) throw new UsageError(`unexpected argument "${extra[0]}"`);
    return { name: 'plan', direction };
  }
  if (command === 'pull' || command === 'push' || command === 'status' || command === 'verify' || command === 'watch') {
    if (rest.length) throw new UsageError(`unexpected argument "${rest[0]}" (options start with --; see ${command} --help)`);
    return { name: command };
  }
  const near = closest(command, COMMAND_NAMES);
  throw new UsageError(`unknown command "${command}"${near ? ` (did you mean ${near}?)` : ''}`);
}

/** The flag of a library option named in a ConfigError (`downloadConcurrency` -> `--download-concurrency`). */
export function flagOfLibraryOption(option: string): string | undefined {
  const special: Record<string, string> = {
    workspaceDir: 'dir',
    ignorePatterns: 'exclude',
    timeoutMs: 'timeout',
    stallTimeoutMs: 'stall-timeout',
    lockWaitMs: 'lock-wait',
    waitForPushMs: 'wait-for-push',
    persistState: 'no-state',
    conflictPolicy: 'conflict-policy',
    'uploadParams.StorageClass': 'storage-class',
    'uploadParams.ServerSideEncryption': 'sse',
    'uploadParams.SSEKMSKeyId': 'sse-kms-key-id',
    debounceMs: 'debounce',
    maxDelayMs: 'max-delay',
    reconcileMs: 'reconcile',
  };
  if (special[option]) return special[option];
  const kebab = option.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
  return OPTIONS.some((o) => o.flag === kebab) ? kebab : undefined;
}
