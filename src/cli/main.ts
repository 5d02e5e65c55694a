/**
 * `s3-workspace-sync`: the command line (package.json "bin", built to
 * dist/cli.js). A thin layer over the library's public API: it turns flags,
 * environment and config file into options, builds the S3 client, runs one
 * method (pull, push, plan, verify, watch), prints what happens and exits
 * with a documented code. It has no sync logic of its own.
 *
 * Only Node built-ins are loaded statically: `--help` and `--version` never
 * load the library or the AWS SDK, and a missing peer dependency
 * (@aws-sdk/client-s3) gets a clear message instead of a module error.
 */
import { Agent as HttpAgent } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import { resolve } from 'node:path';

import { EXIT } from './exit-codes.js';
import { helpText } from './help.js';
import { loadLibrary, type Library, type S3WorkspaceSync, type S3WorkspaceSyncOptions, type SyncPlan, type SyncResult, type SyncWatcher, type UploadParams } from './lib-types.js';
import { checkCommand, envName, flagOfLibraryOption, parseCommandLine, resolveSettings, UsageError, type Parsed, type Settings, type Value } from './options.js';
import { CLI_VERSION, createReporter, SCHEMA_VERSION, type ErrorInfo, type Outcome, type Reporter } from './output.js';

/** Connection timeout of the client the CLI builds: with 3 attempts, an unreachable endpoint fails in about 16 s. */
const DEFAULT_CONNECT_TIMEOUT_MS = 5_000;
const PART_CONCURRENCY = 8;
/**
 * `watch`'s defaults: the library's (WatchOptions), passed explicitly so the
 * start line says what is in use. The max delay defaults, as there, to the
 * larger of 10 s and the debounce.
 */
const WATCH_DEBOUNCE_MS = 1_000;
const WATCH_MAX_DELAY_MS = 10_000;
const WATCH_RECONCILE_MS = 300_000;

export interface Io {
  argv: readonly string[];
  env: NodeJS.ProcessEnv;
  cwd: string;
  stdout: NodeJS.WriteStream;
  stderr: NodeJS.WriteStream;
}

/** The reason the CLI aborts a run with when a signal arrives. */
class Interrupted extends Error {
  override name = 'Interrupted';
  constructor(readonly signal: string) {
    super(`interrupted by ${signal}`);
  }
}

/** Run the command line; resolves with the exit code. */
export async function main(io: Io): Promise<number> {
  let parsed: Parsed;
  try {
    parsed = parseCommandLine(io.argv);
  } catch (error) {
    return usageFailure(io, error, undefined);
  }
  const [first, ...rest] = parsed.positionals;
  if (parsed.version) {
    io.stdout.write(`${CLI_VERSION}\n`);
    return EXIT.OK;
  }
  if (first === 'help' || parsed.help || first === undefined) {
    const topic = first === 'help' ? rest[0] : first;
    try {
      const name = topic === undefined ? undefined : checkCommand(topic, topic === 'plan' ? ['push'] : []).name;
      io.stdout.write(helpText(name));
    } catch (error) {
      return usageFailure(io, error, parsed);
    }
    if (first === undefined && !parsed.help) {
      return EXIT.USAGE; // no command: the help on stdout, and a usage exit code
    }
    return EXIT.OK;
  }
  let settings: Settings;
  try {
    settings = resolveSettings(parsed, io.env, io.cwd);
    if (settings.command === 'watch') watchSettings(settings); // --max-delay against --debounce, before anything starts
  } catch (error) {
    return usageFailure(io, error, parsed);
  }
  return run(io, settings);
}

/** Print a usage error (and, for machines, a result line) and return exit code 2. */
function usageFailure(io: Io, error: unknown, parsed: Parsed | undefined): number {
  const message = error instanceof UsageError ? error.message : String((error as Error)?.message ?? error);
  io.stderr.write(`s3-workspace-sync: ${message}\nRun 's3-workspace-sync --help' for the commands and options.\n`);
  const json = parsed?.flags.get('json') === true || /^(1|true|yes|on)$/i.test(io.env[envName('json')] ?? '') || !io.stdout.isTTY;
  if (json) {
    const line = { type: 'result', schema: SCHEMA_VERSION, command: parsed?.positionals[0] ?? '', exitCode: EXIT.USAGE, ok: false, error: { name: 'UsageError', code: 'USAGE', message } };
    io.stdout.write(`${JSON.stringify(line)}\n`);
  }
  return EXIT.USAGE;
}

const get = <T extends Value>(s: Settings, flag: string): T | undefined => s.values.get(flag) as T | undefined;

async function run(io: Io, s: Settings): Promise<number> {
  const json = get<boolean>(s, 'json') === true || !io.stdout.isTTY;
  const quiet = get<boolean>(s, 'quiet') === true;
  const reporter = createReporter({
    json,
    quiet,
    verbose: get<boolean>(s, 'verbose') === true,
    color: !json && !io.env.NO_COLOR && io.stdout.isTTY === true && (io.stdout.hasColors?.() ?? true),
    live: !json && !quiet && io.stdout.isTTY === true,
    stdout: io.stdout,
    stderr: io.stderr,
    command: s.command === 'plan' ? `plan ${s.direction}` : s.command,
  });

  // SIGINT / SIGTERM: the first cancels through the library's abort signal
  // (no partial file, state saved, exit 130) -- once `watch` is watching, it
  // stops watching and pushes instead (see watch()); a second one exits at once.
  const controller = new AbortController();
  let signals = 0;
  let firstSignal = (signal: NodeJS.Signals): void => {
    reporter.note(`${signal}: stopping cleanly… (${signal === 'SIGINT' ? 'Ctrl-C' : 'signal'} again to exit at once)`);
    controller.abort(new Interrupted(signal));
  };
  const onSignal = (signal: NodeJS.Signals): void => {
    signals++;
    if (signals === 1) {
      firstSignal(signal);
    } else {
      reporter.close();
      process.exit(EXIT.INTERRUPTED);
    }
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  let lib: Library;
  try {
    lib = await loadLibrary();
  } catch (error) {
    reporter.close();
    return missingPeer(reporter, error);
  }

  let sync: S3WorkspaceSync | undefined;
  let client: { destroy(): void } | undefined;
  let outcome: Outcome;
  let code: number;
  try {
    const sdk = await import('@aws-sdk/client-s3');
    const built = await buildClient(sdk, lib, s);
    client = built;
    sync = new lib.S3WorkspaceSync(libraryOptions(s, built, reporter));
    sync.on('progress', (p) => reporter.progress(p));
    const dryRun = get<boolean>(s, 'dry-run') === true;
    reporter.start({
      command: s.command,
      ...(s.direction ? { direction: s.direction } : {}),
      bucket: get<string>(s, 'bucket')!,
      prefix: get<string>(s, 'prefix')!,
      dir: resolve(io.cwd, get<string>(s, 'dir')!),
      endpoint: get<string>(s, 'endpoint') ?? null,
      dryRun,
      configFile: s.configFile ?? null,
    });
    const signal = controller.signal;
    const policy = get<string>(s, 'conflict-policy') ?? 'fail';
    // The command table (a new command: CommandName and COMMAND_NAMES in
    // options.ts, a case here, its help in help.ts).
    switch (s.command) {
      case 'pull':
      case 'push': {
        const priority = get<string[]>(s, 'priority');
        const result = await sync[s.command]({ signal, ...(dryRun ? { dryRun: true } : {}), ...(priority ? { priority } : {}) });
        outcome = { kind: 'sync', result };
        code = dryRun ? planExit(result.plan, policy) : syncExit(result);
        break;
      }
      case 'plan': {
        const plan = await sync.plan(s.direction!, { signal });
        outcome = { kind: 'plan', plan };
        code = planExit(plan, policy);
        break;
      }
      case 'status': {
        const push = await sync.plan('push', { signal });
        const pull = await sync.plan('pull', { signal });
        outcome = { kind: 'status', pull, push };
        code = EXIT.OK;
        break;
      }
      case 'verify': {
        const report = await sync.verify({ signal });
        outcome = { kind: 'verify', report };
        code = report.ok ? EXIT.OK : EXIT.INCOMPLETE;
        break;
      }
      case 'watch': {
        const result = await watch(lib, sync, s, reporter, signal, (handler) => (firstSignal = handler));
        outcome = { kind: 'watch', result };
        code = result === undefined ? EXIT.OK : syncExit(result);
        break;
      }
    }
  } catch (error) {
    const mapped = explain(lib, error, controller.signal);
    code = mapped.code;
    outcome = { kind: 'error', error: mapped.info, ...(mapped.result ? { result: mapped.result } : {}) };
  } finally {
    sync?.destroy();
    client?.destroy();
  }
  reporter.finish(outcome, code);
  reporter.close();
  return code;
}

/** `watch`'s timings and initial sync from the settings; throws {@link UsageError} when --max-delay is shorter than --debounce. */
function watchSettings(s: Settings): { debounceMs: number; maxDelayMs: number; reconcileMs: number; initial: 'pull' | 'push' | 'none' } {
  const debounceMs = get<number>(s, 'debounce') ?? WATCH_DEBOUNCE_MS;
  const maxDelayMs = get<number>(s, 'max-delay') ?? Math.max(WATCH_MAX_DELAY_MS, debounceMs);
  if (maxDelayMs < debounceMs) throw new UsageError(`--max-delay (${maxDelayMs} ms) must not be shorter than --debounce (${debounceMs} ms)`);
  return { debounceMs, maxDelayMs, reconcileMs: get<number>(s, 'reconcile') ?? WATCH_RECONCILE_MS, initial: get<'pull' | 'push' | 'none'>(s, 'initial') ?? 'pull' };
}

/**
 * `watch`: watch, run the initial sync, report every push, and, on the first
 * signal, stop watching and push everything (`close({ full: true })`: a full
 * push, so nothing a watcher missed is lost). Resolves with that last push's
 * result. A signal before watching has started cancels like any command's:
 * the instance is destroyed, which stops the initial sync cleanly (exit 130).
 */
async function watch(lib: Library, sync: S3WorkspaceSync, s: Settings, reporter: Reporter, signal: AbortSignal, onFirstSignal: (handler: (signal: NodeJS.Signals) => void) => void): Promise<SyncResult | undefined> {
  const options = watchSettings(s);
  if (signal.aborted) throw signal.reason;
  const cancel = (): void => sync.destroy();
  signal.addEventListener('abort', cancel, { once: true });
  let w: SyncWatcher;
  try {
    w = await sync.watch(options);
  } finally {
    signal.removeEventListener('abort', cancel);
  }
  // (no await between here and onFirstSignal: a signal cannot fall between them)
  reporter.watchStart({ ...options, initialResult: w.initial, timeoutMs: get<number>(s, 'timeout') || null, degraded: w.degraded });
  w.on('push-start', (info) => reporter.pushStart(info));
  w.on('push-end', (info) => reporter.pushEnd({ reason: info.reason, paths: info.paths, result: info.result, durationMs: info.durationMs, pendingPaths: w.pendingPaths }));
  w.on('error', (error, info) => reporter.watchError({ reason: info.reason, paths: info.paths, error: explain(lib, error, signal).info, retrying: info.reason !== 'close' }));
  w.on('degraded', (reason) => reporter.degraded(reason));
  // The watches alone may not hold the process (a watcher whose root is gone
  // has none): this interval does, until the last push has settled.
  const keepAlive = setInterval(() => {}, 2 ** 30);
  try {
    return await new Promise<SyncResult | undefined>((resolve, reject) => {
      onFirstSignal((name) => {
        reporter.note(`${name}: stopping watching; pushing everything (a full push), then exiting… (${name === 'SIGINT' ? 'Ctrl-C' : 'signal'} again to exit at once)`);
        w.close({ full: true }).then(resolve, reject);
      });
    });
  } finally {
    clearInterval(keepAlive);
  }
}

function missingPeer(reporter: Reporter, error: unknown): number {
  const e = error as { code?: string; message?: string };
  const message = String(e?.message ?? error);
  if ((e?.code === 'ERR_MODULE_NOT_FOUND' || e?.code === 'MODULE_NOT_FOUND') && /@aws-sdk\//.test(message)) {
    const text =
      'the AWS SDK (@aws-sdk/client-s3) is not installed. s3-workspace-sync uses the copy of your project (a peer dependency):\n' +
      '  npm install @aws-sdk/client-s3\n' +
      'or, for a one-off run: npx --package s3-workspace-sync --package @aws-sdk/client-s3 s3-workspace-sync …';
    reporter.finish({ kind: 'error', error: { name: 'MissingPeerDependency', code: 'MISSING_PEER', message: text } }, EXIT.USAGE);
    return EXIT.USAGE;
  }
  reporter.finish({ kind: 'error', error: { name: 'InstallError', code: 'INSTALL', message: `the library could not be loaded: ${message}` } }, EXIT.ERROR);
  return EXIT.ERROR;
}

type Sdk = typeof import('@aws-sdk/client-s3');

/**
 * The S3 client: endpoint, path style and profile from the settings,
 * credentials from the SDK's provider chain only, checksums as the library
 * builds them (WHEN_REQUIRED), keep-alive sockets sized to the concurrency,
 * and timeouts that bound an unreachable endpoint.
 */
async function buildClient(sdk: Sdk, lib: Library, s: Settings): Promise<InstanceType<Sdk['S3Client']>> {
  const concurrency = get<number>(s, 'concurrency');
  const maxSockets = Math.max(
    get<number>(s, 'download-concurrency') ?? concurrency ?? lib.DEFAULT_DOWNLOAD_CONCURRENCY,
    get<number>(s, 'upload-concurrency') ?? concurrency ?? lib.DEFAULT_UPLOAD_CONCURRENCY,
    get<number>(s, 'part-concurrency') ?? PART_CONCURRENCY,
    1,
  );
  const stall = get<number>(s, 'stall-timeout') ?? lib.DEFAULT_STALL_TIMEOUT_MS;
  const profile = get<string>(s, 'profile');
  const endpoint = get<string>(s, 'endpoint');
  const config = {
    ...(endpoint ? { endpoint } : {}),
    ...(get<boolean>(s, 'path-style') ? { forcePathStyle: true } : {}),
    ...(profile ? { profile } : {}),
    maxAttempts: get<number>(s, 'max-attempts') ?? lib.DEFAULT_MAX_ATTEMPTS,
    cacheMiddleware: true,
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    requestHandler: {
      httpAgent: new HttpAgent({ keepAlive: true, maxSockets }),
      httpsAgent: new HttpsAgent({ keepAlive: true, maxSockets }),
      connectionTimeout: get<number>(s, 'connect-timeout') ?? DEFAULT_CONNECT_TIMEOUT_MS,
      ...(stall > 0 ? { socketTimeout: stall } : {}),
    },
  } as const;
  // Region: --region, else the SDK's own resolution (AWS_REGION, the
  // profile's region), else us-east-1 (custom endpoints need one too).
  const region = get<string>(s, 'region');
  if (region !== undefined) return new sdk.S3Client({ ...config, region });
  const client = new sdk.S3Client(config);
  try {
    await client.config.region();
    return client;
  } catch {
    client.destroy();
    return new sdk.S3Client({ ...config, region: 'us-east-1' });
  }
}

/** The library's options from the settings (what is not set keeps the library's default). */
function libraryOptions(s: Settings, client: S3WorkspaceSyncOptions['s3Client'], reporter: Reporter): S3WorkspaceSyncOptions {
  const concurrency = get<number>(s, 'concurrency');
  const upload: UploadParams = {};
  const storageClass = get<string>(s, 'storage-class');
  const sse = get<string>(s, 'sse');
  const kmsKey = get<string>(s, 'sse-kms-key-id');
  if (storageClass !== undefined) upload.StorageClass = storageClass as UploadParams['StorageClass'];
  if (sse !== undefined) upload.ServerSideEncryption = sse as UploadParams['ServerSideEncryption'];
  if (kmsKey !== undefined) upload.SSEKMSKeyId = kmsKey;
  const debug = Boolean(process.env.S3_WORKSPACE_SYNC_DEBUG);
  // `watch` reports its pushes' failures, a degraded watcher and an incomplete
  // initial sync as lines of their own; the library's warnings that say the
  // same ("Watch: …") would only repeat them.
  const repeats = (m: string): boolean => s.command === 'watch' && m.startsWith('Watch: ');
  return {
    bucket: get<string>(s, 'bucket')!,
    prefix: get<string>(s, 'prefix')!,
    workspaceDir: get<string>(s, 'dir')!,
    s3Client: client,
    logger: {
      debug: (m, ...a) => {
        if (debug) reporter.log('debug', m, a);
      },
      info: (m, ...a) => reporter.log('info', m, a),
      warn: (m, ...a) => {
        if (!repeats(m)) reporter.log('warn', m, a);
      },
      error: (m, ...a) => reporter.log('error', m, a),
    },
    downloadConcurrency: get<number>(s, 'download-concurrency') ?? concurrency,
    uploadConcurrency: get<number>(s, 'upload-concurrency') ?? concurrency,
    partConcurrency: get<number>(s, 'part-concurrency'),
    ignorePatterns: get<string[]>(s, 'exclude'),
    maxDeletes: get<number>(s, 'max-deletes'),
    maxTotalBytes: get<number>(s, 'max-total-bytes'),
    allowEmptyRemote: get<boolean>(s, 'allow-empty-remote'),
    overwriteLocalChanges: get<boolean>(s, 'overwrite-local-changes'),
    conflictPolicy: get<S3WorkspaceSyncOptions['conflictPolicy'] & string>(s, 'conflict-policy'),
    maxAttempts: get<number>(s, 'max-attempts'),
    timeoutMs: get<number>(s, 'timeout') || undefined,
    expectedBucketOwner: get<string>(s, 'expected-bucket-owner'),
    multipartThreshold: get<number>(s, 'multipart-threshold'),
    partSize: get<number>(s, 'part-size'),
    hashThreads: get<number>(s, 'hash-threads'),
    prehashMultipart: get<boolean>(s, 'prehash-multipart'),
    persistState: get<boolean>(s, 'no-state') === true ? false : undefined,
    stateDir: get<string>(s, 'state-dir'),
    uploadParams: Object.keys(upload).length ? upload : undefined,
    sseCustomerKey: get<string>(s, 'sse-customer-key'),
    stallTimeoutMs: get<number>(s, 'stall-timeout'),
    lockWaitMs: get<number>(s, 'lock-wait'),
    waitForPushMs: get<number>(s, 'wait-for-push'),
    requireConditionalWrites: get<boolean>(s, 'require-conditional-writes'),
    trustManifest: get<boolean>(s, 'trust-manifest'),
    transport: get<'sdk' | 'auto'>(s, 'transport'),
    git: get<'off' | 'bundle'>(s, 'git'),
  };
}

/** Exit code of a finished pull or push. */
function syncExit(result: SyncResult): number {
  if (result.conflicts.some((c) => c.resolution === 'reported')) return EXIT.CONFLICT;
  return result.success ? EXIT.OK : EXIT.INCOMPLETE;
}

/** Exit code of a plan (or dry run): what the sync would end with, as far as the plan knows. */
function planExit(plan: SyncPlan, policy: string): number {
  if (plan.refusedBy) return EXIT.REFUSED;
  if (plan.conflicts.length > 0 && policy === 'fail') return EXIT.CONFLICT;
  if (plan.failures.length > 0) return EXIT.INCOMPLETE;
  return EXIT.OK;
}

/** Flags that override each guard, for hints. */
const GUARD_FLAG: Record<string, string> = {
  MAX_DELETES: '--max-deletes N (or off)',
  MAX_TOTAL_BYTES: '--max-total-bytes SIZE',
  EMPTY_REMOTE: '--allow-empty-remote',
};

/** A failed command: its exit code, what to print, and the partial result of an interrupted sync. */
function explain(lib: Library, error: unknown, signal: AbortSignal): { code: number; info: ErrorInfo; result?: SyncResult } {
  const err = error as { name?: string; message?: string; code?: string; details?: Record<string, unknown>; result?: SyncResult };
  const message = String(err?.message ?? error);
  const info = (code: string, hint?: string): ErrorInfo => ({
    name: err?.name ?? 'Error',
    code,
    message,
    ...(lib.isSyncError(error) && Object.keys(error.details).length ? { details: error.details } : {}),
    ...(hint ? { hint } : {}),
  });
  const result = err?.result && typeof err.result === 'object' ? { result: err.result } : {};
  if (signal.aborted && signal.reason instanceof Interrupted && (!lib.isSyncError(error) || error.code === 'ABORTED' || error.code === 'DESTROYED' || error instanceof Interrupted)) {
    return { code: EXIT.INTERRUPTED, info: { ...info('ABORTED', 'nothing is half-written; run the command again to finish'), message: `${message} (${signal.reason.signal})` }, ...result };
  }
  if (error instanceof UsageError) return { code: EXIT.USAGE, info: info('USAGE') };
  if (!lib.isSyncError(error)) {
    if (/region is missing/i.test(message)) return { code: EXIT.USAGE, info: info('CONFIG', 'set --region (or AWS_REGION)') };
    if (err?.name === 'CredentialsProviderError' || /credential/i.test(message)) {
      return { code: EXIT.ERROR, info: info('INVALID_CREDENTIALS', 'credentials come from the AWS SDK chain: AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, --profile or AWS_PROFILE, SSO, an instance or task role') };
    }
    return { code: EXIT.ERROR, info: info(err?.code ?? 'ERROR') };
  }
  const code = error.code;
  if (error instanceof lib.ConfigError) {
    // watch()'s options are named in the message ('watch() option "maxDelayMs" …')
    const option = typeof error.details.option === 'string' ? error.details.option : /^watch\(\) option "(\w+)"/.exec(message)?.[1];
    const flag = option ? flagOfLibraryOption(option) : undefined;
    return { code: EXIT.USAGE, info: info('CONFIG', flag ? `set with --${flag} (or ${envName(flag)})` : undefined) };
  }
  if (error instanceof lib.GuardError) return { code: EXIT.REFUSED, info: info(code, GUARD_FLAG[code] ? `nothing was changed; to allow it: ${GUARD_FLAG[code]}` : undefined) };
  if (code === 'CONDITIONAL_WRITES_UNSUPPORTED') return { code: EXIT.REFUSED, info: info(code, 'nothing was written; drop --require-conditional-writes to push anyway (last writer wins)') };
  if (code === 'TIMEOUT') return { code: EXIT.ERROR, info: info(code, 'the --timeout passed; nothing is half-written, run again to finish'), ...result };
  const hints: Record<string, string> = {
    BUCKET_NOT_FOUND: 'check --bucket (and --endpoint, --region)',
    ACCESS_DENIED: 'check the credentials (the AWS SDK chain, --profile) and the bucket policy',
    INVALID_CREDENTIALS: 'credentials come from the AWS SDK chain: AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, --profile or AWS_PROFILE, SSO, an instance or task role',
    NETWORK: 'check --endpoint and the network (bounded by --connect-timeout, --stall-timeout and --max-attempts)',
    WORKSPACE_LOCKED: 'another sync of this directory is running (--lock-wait to wait longer)',
    PUSH_IN_PROGRESS: "another process's push to this prefix is running (--wait-for-push to wait longer)",
  };
  return { code: EXIT.ERROR, info: info(code, hints[code]), ...result };
}

// A reader that goes away (`| head`) must not crash a sync: output stops, the
// sync finishes, the exit code still tells.
process.stdout.on('error', () => {});
process.stderr.on('error', () => {});
const io: Io = { argv: process.argv.slice(2), env: process.env, cwd: process.cwd(), stdout: process.stdout, stderr: process.stderr };
main(io).then(
  (code) => {
    process.exitCode = code;
    // everything is closed; should a stray handle keep the loop alive, do not hang
    setTimeout(() => process.exit(code), 2000).unref();
  },
  (error: unknown) => {
    process.stderr.write(`s3-workspace-sync: unexpected error: ${(error as Error)?.stack ?? String(error)}\n`);
    process.exit(EXIT.ERROR);
  },
);
