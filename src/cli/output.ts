/**
 * What the command line prints: for people (a live progress display on a
 * terminal, redrawn at most 10 times a second, then a short summary; `watch`:
 * a line per push), or for machines (one JSON object per line: `start`,
 * `progress`, `log`, `watch`'s `watch-start`, `push-start`, `push-end`,
 * `watch-error` and `degraded`, and a final `result`; schema
 * {@link SCHEMA_VERSION}, documented in README).
 */
import { format } from 'node:util';

import type { SyncPlan, SyncProgress, SyncResult, VerifyReport, WatchPushInfo } from './lib-types.js';

/** Version of the JSON line format. Bumped only for incompatible changes (a field removed or changed); new fields may appear. */
export const SCHEMA_VERSION = 1;

/** A fatal error as printed: JSON `error` field, and the human message. */
export interface ErrorInfo {
  name: string;
  code: string;
  message: string;
  details?: Record<string, unknown>;
  /** What to try (a flag to set, what to check). */
  hint?: string;
}

export interface StartInfo {
  command: string;
  direction?: 'pull' | 'push';
  bucket: string;
  prefix: string;
  dir: string;
  endpoint: string | null;
  dryRun: boolean;
  configFile: string | null;
}

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

/** `watch` once watching (after its initial sync): the settings in use. */
export interface WatchStartInfo {
  initial: 'pull' | 'push' | 'none';
  /** The initial sync's result (none with `initial: 'none'`). */
  initialResult: SyncResult | undefined;
  debounceMs: number;
  maxDelayMs: number;
  /** 0: no periodic full push. */
  reconcileMs: number;
  /** `--timeout`: bounds every push, the last one included (`null`: nothing does). */
  timeoutMs: number | null;
  degraded: boolean;
}

/** A watch push that ended with a result. */
export interface WatchPushEnd extends WatchPushInfo {
  result: SyncResult;
  durationMs: number;
  /** Changes seen since this push started, waiting for the next one. */
  pendingPaths: number;
}

/** A watch push that failed as a whole (its changes are tried again, unless it was the last push). */
export interface WatchPushError extends WatchPushInfo {
  error: ErrorInfo;
  retrying: boolean;
}

export interface DegradedInfo {
  code: string;
  message: string;
  path?: string | undefined;
}

/** What `watch` says when it starts about the push a stop makes (help, README and the start line say the same). */
export function finalPushNote(w: Pick<WatchStartInfo, 'maxDelayMs' | 'timeoutMs'>): string {
  const bound = w.timeoutMs !== null ? `--timeout (${formatDuration(w.timeoutMs)}) bounds it` : 'nothing bounds its duration but the push itself (--timeout would)';
  return (
    `On SIGTERM or SIGINT: stop watching, push everything (a full push), exit with its code; ${bound}. ` +
    `It must finish before the process is killed (ECS/Fargate: SIGKILL 30 s after SIGTERM by default); ` +
    `--max-delay (${formatDuration(w.maxDelayMs)}) bounds how long a change waits to be pushed.`
  );
}

/** The final outcome of a command (the `result` line). */
export type Outcome =
  | { kind: 'sync'; result: SyncResult }
  | { kind: 'plan'; plan: SyncPlan }
  | { kind: 'status'; pull: SyncPlan; push: SyncPlan }
  | { kind: 'verify'; report: VerifyReport }
  /** `watch` stopped: the last push's result (`undefined` when there was nothing to push). */
  | { kind: 'watch'; result: SyncResult | undefined }
  | { kind: 'error'; error: ErrorInfo; result?: SyncResult };

export interface Reporter {
  start(info: StartInfo): void;
  progress(p: SyncProgress): void;
  log(level: LogLevel, message: string, args: unknown[]): void;
  /** A line for the user (e.g. "stopping…"): a `log` line at `warn` in JSON. */
  note(message: string): void;
  /** `watch`: watching has started (the initial sync is done). */
  watchStart(info: WatchStartInfo): void;
  pushStart(info: WatchPushInfo): void;
  pushEnd(info: WatchPushEnd): void;
  watchError(info: WatchPushError): void;
  degraded(info: DegradedInfo): void;
  finish(outcome: Outcome, exitCode: number): void;
  /** Stop timers and give the terminal back (cursor shown). Idempotent. */
  close(): void;
}

export interface OutputOptions {
  json: boolean;
  quiet: boolean;
  verbose: boolean;
  color: boolean;
  /** Redraw the progress display (a terminal, not quiet). */
  live: boolean;
  stdout: NodeJS.WriteStream;
  stderr: NodeJS.WriteStream;
  command: string;
}

export function createReporter(o: OutputOptions): Reporter {
  return o.json ? new JsonReporter(o) : new HumanReporter(o);
}

// ------------------------------------------------------------------ JSON

/** A value as JSON: Infinity (a guard that is off) as the string "Infinity", errors as their message. */
function toJson(value: unknown): string {
  return JSON.stringify(value, (_k, v: unknown) => {
    if (typeof v === 'number' && !Number.isFinite(v)) return String(v);
    if (v instanceof Error) return { name: v.name, message: v.message };
    if (typeof v === 'bigint') return v.toString();
    return v;
  });
}

class JsonReporter implements Reporter {
  constructor(private readonly o: OutputOptions) {}

  private line(type: string, fields: Record<string, unknown>): void {
    this.o.stdout.write(`${toJson({ type, schema: SCHEMA_VERSION, ...fields })}\n`);
  }

  start(info: StartInfo): void {
    if (!this.o.quiet) this.line('start', { ...info, version: CLI_VERSION });
  }

  progress(p: SyncProgress): void {
    if (!this.o.quiet) this.line('progress', { ...p });
  }

  log(level: LogLevel, message: string, args: unknown[]): void {
    if (this.o.quiet && level !== 'error') return;
    if ((level === 'info' || level === 'debug') && !this.o.verbose) return;
    this.line('log', { level, message: args.length ? format(message, ...args) : message });
  }

  note(message: string): void {
    this.log('warn', message, []);
  }

  watchStart(info: WatchStartInfo): void {
    if (this.o.quiet) return;
    const { initialResult, ...rest } = info;
    this.line('watch-start', { ...rest, initialResult: initialResult ?? null, finalPush: finalPushNote(info) });
  }

  pushStart(info: WatchPushInfo): void {
    if (!this.o.quiet) this.line('push-start', { reason: info.reason, paths: info.paths });
  }

  pushEnd(info: WatchPushEnd): void {
    if (!this.o.quiet) this.line('push-end', { reason: info.reason, paths: info.paths, durationMs: info.durationMs, pendingPaths: info.pendingPaths, result: info.result });
  }

  watchError(info: WatchPushError): void {
    // an error: kept with --quiet, like `log` lines at `error`
    this.line('watch-error', { reason: info.reason, paths: info.paths, retrying: info.retrying, error: info.error });
  }

  degraded(info: DegradedInfo): void {
    if (!this.o.quiet) this.line('degraded', { code: info.code, message: info.message, ...(info.path !== undefined ? { path: info.path } : {}) });
  }

  finish(outcome: Outcome, exitCode: number): void {
    const base = { command: this.o.command, exitCode, ok: exitCode === 0 };
    switch (outcome.kind) {
      case 'sync':
        return this.line('result', { ...base, result: outcome.result });
      case 'plan':
        return this.line('result', { ...base, plan: outcome.plan });
      case 'status':
        return this.line('result', { ...base, inStep: inStep(outcome.pull, outcome.push), pull: outcome.pull, push: outcome.push });
      case 'verify':
        return this.line('result', { ...base, report: outcome.report });
      case 'watch':
        return this.line('result', { ...base, result: outcome.result ?? null });
      case 'error':
        // people read stderr (cron mail, container logs); machines read the line
        this.o.stderr.write(`s3-workspace-sync: error: ${outcome.error.message}\n${outcome.error.hint ? `  ${outcome.error.hint}\n` : ''}`);
        return this.line('result', { ...base, error: outcome.error, ...(outcome.result ? { result: outcome.result } : {}) });
    }
  }

  close(): void {}
}

/** Nothing to transfer or delete in either direction, no conflict, no failure. */
export function inStep(pull: SyncPlan, push: SyncPlan): boolean {
  return [pull, push].every((p) => p.transfers.length === 0 && p.deletions.length === 0 && p.conflicts.length === 0 && p.failures.length === 0);
}

// ------------------------------------------------------------------ people

const ESC = '\u001b[';
type Paint = (s: string) => string;

function palette(color: boolean): Record<'green' | 'red' | 'yellow' | 'cyan' | 'dim' | 'bold', Paint> {
  const wrap = (open: number, close: number): Paint => (color ? (s) => `${ESC}${open}m${s}${ESC}${close}m` : (s) => s);
  return { green: wrap(32, 39), red: wrap(31, 39), yellow: wrap(33, 39), cyan: wrap(36, 39), dim: wrap(2, 22), bold: wrap(1, 22) };
}

/** `1536` -> `1.5 KiB`. */
export function formatBytes(n: number): string {
  if (!Number.isFinite(n)) return 'no limit';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return i === 0 ? `${v} B` : `${v >= 100 ? v.toFixed(0) : v.toFixed(1)} ${units[i]}`;
}

/** `65000` -> `1m05s`, `1200` -> `1.2s`. */
export function formatDuration(ms: number): string {
  if (ms < 60_000) return `${(ms / 1000).toFixed(ms < 10_000 ? 1 : 0)}s`;
  const s = Math.round(ms / 1000);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = String(s % 60).padStart(2, '0');
  return h > 0 ? `${h}h${String(m).padStart(2, '0')}m` : `${m}m${sec}s`;
}

const PHASE_LABEL: Record<SyncProgress['phase'], string> = { plan: 'Hashing', download: 'Downloading', upload: 'Uploading', cleanup: 'Deleting' };
/** Minimum time between two redraws of the progress display. */
const REDRAW_MS = 100;
/** The rate (and ETA) are shown once a phase has run this long. */
const RATE_AFTER_MS = 300;
/** Window of the transfer rate. */
const RATE_WINDOW_MS = 3000;
/** Files listed per section of a summary, unless --verbose. */
const LIST_LIMIT = 20;

class HumanReporter implements Reporter {
  private readonly c: ReturnType<typeof palette>;
  private latest: SyncProgress | undefined;
  private phaseStart = 0;
  private samples: Array<{ t: number; bytes: number }> = [];
  private dirty = false;
  private drawn = 0;
  private timer: NodeJS.Timeout | undefined;
  private cursorHidden = false;
  private closed = false;
  private where: StartInfo | undefined;

  constructor(private readonly o: OutputOptions) {
    this.c = palette(o.color);
  }

  start(info: StartInfo): void {
    this.where = info;
    if (!this.o.verbose || this.o.quiet) return;
    const where = `s3://${info.bucket}/${info.prefix}${info.endpoint ? ` at ${info.endpoint}` : ''}`;
    this.o.stderr.write(this.c.dim(`${info.command}${info.direction ? ` ${info.direction}` : ''}: ${where} <-> ${info.dir}${info.configFile ? ` (config ${info.configFile})` : ''}\n`));
  }

  progress(p: SyncProgress): void {
    if (!this.o.live) return;
    const now = Date.now();
    if (this.latest?.phase !== p.phase) {
      this.phaseStart = now;
      this.samples = [];
    }
    this.latest = p;
    this.samples.push({ t: now, bytes: p.transferredBytes });
    while (this.samples.length > 2 && this.samples[0]!.t < now - RATE_WINDOW_MS) this.samples.shift();
    this.dirty = true;
    if (this.timer === undefined) {
      this.draw();
      this.timer = setInterval(() => {
        if (this.dirty) this.draw();
      }, REDRAW_MS);
      this.timer.unref();
    }
  }

  /**
   * The progress display's two lines, each cut to the terminal's width:
   * phase, bar, files and bytes; then rate, ETA and the current file.
   */
  private lines(p: SyncProgress): string[] {
    const width = Math.max(20, (this.o.stdout.columns || 80) - 1);
    const now = Date.now();
    if (p.phase === 'plan' && p.total === 0) return [cut('Planning: listing and comparing…', width), ''];
    const byBytes = p.totalBytes > 0;
    const fraction = byBytes ? Math.min(1, p.transferredBytes / p.totalBytes) : p.total > 0 ? p.current / p.total : 1;
    const barWidth = 12;
    const filled = Math.round(fraction * barWidth);
    const parts = [
      PHASE_LABEL[p.phase].padEnd(11),
      '█'.repeat(filled) + '░'.repeat(barWidth - filled),
      `${String(Math.floor(fraction * 100)).padStart(3)}%`,
      `${p.current}/${p.total} files`,
    ];
    if (byBytes) parts.push(`${formatBytes(p.transferredBytes)}/${formatBytes(p.totalBytes)}`);
    const second: string[] = [];
    const first = this.samples[0];
    if (first && byBytes && now - this.phaseStart >= RATE_AFTER_MS) {
      const dt = (now - first.t) / 1000;
      const rate = dt > 0 ? (p.transferredBytes - first.bytes) / dt : 0;
      if (rate > 0) {
        second.push(`${formatBytes(rate)}/s`);
        second.push(`ETA ${formatDuration(Math.max(0, ((p.totalBytes - p.transferredBytes) / rate) * 1000))}`);
      }
    }
    const lead = second.length ? `  ${second.join('  ')}  ` : '  ';
    let file = p.currentFile ?? '';
    const room = width - lead.length;
    if (file.length > room) file = room > 1 ? `…${file.slice(file.length - room + 1)}` : '';
    return [cut(parts.join('  '), width), cut(`${lead}${file}`, width)];
  }

  private draw(): void {
    if (this.closed || this.latest === undefined) return;
    this.dirty = false;
    const lines = this.lines(this.latest);
    let out = this.eraseSequence();
    if (!this.cursorHidden) {
      out += `${ESC}?25l`;
      this.cursorHidden = true;
    }
    out += lines.map((l, i) => (i === 1 ? this.c.dim(l) : l)).join('\n');
    this.drawn = lines.length;
    this.o.stdout.write(out);
  }

  /** Move to the start of the display and clear it (the cursor stays at its first line). */
  private eraseSequence(): string {
    if (this.drawn === 0) return '';
    let s = `\r${ESC}2K`;
    for (let i = 1; i < this.drawn; i++) s += `${ESC}1A\r${ESC}2K`;
    this.drawn = 0;
    return s;
  }

  /** Clear the display before printing anything else (it is redrawn at the next tick). */
  private clear(): void {
    const s = this.eraseSequence();
    if (s) {
      this.o.stdout.write(s);
      this.dirty = true;
    }
  }

  log(level: LogLevel, message: string, args: unknown[]): void {
    if ((level === 'info' || level === 'debug') && !this.o.verbose) return;
    if (this.o.quiet && level !== 'error') return;
    this.clear();
    const text = args.length ? format(message, ...args) : message;
    const paint = level === 'error' ? this.c.red : level === 'warn' ? this.c.yellow : this.c.dim;
    this.o.stderr.write(`${paint(level === 'warn' || level === 'error' ? `${level}:` : `${level}:`)} ${text}\n`);
  }

  note(message: string): void {
    this.clear();
    this.o.stderr.write(`${this.c.yellow(message)}\n`);
  }

  watchStart(info: WatchStartInfo): void {
    this.stopDisplay();
    if (this.o.quiet) return;
    const out: string[] = [];
    const r = info.initialResult;
    if (r !== undefined) this.syncLines(out, r, r.success ? 0 : 1);
    const w = this.where;
    const target = w ? `${w.dir} -> s3://${w.bucket}/${w.prefix}` : 'the workspace';
    const every = info.reconcileMs > 0 ? `, a full push every ${formatDuration(info.reconcileMs)}` : '';
    out.push(`${this.c.bold('Watching')} ${target}: push after ${formatDuration(info.debounceMs)} without changes, at least every ${formatDuration(info.maxDelayMs)}${every}`);
    out.push(this.c.dim(finalPushNote(info)));
    this.o.stdout.write(`${out.join('\n')}\n`);
  }

  pushStart(): void {
    // the progress display shows a push that takes a while; its line comes at the end
  }

  pushEnd(info: WatchPushEnd): void {
    this.stopDisplay();
    const r = info.result;
    if (this.o.quiet) {
      if (r.failedFiles.length) this.o.stderr.write(`${this.failureLines(r).join('\n')}\n`);
      return;
    }
    const unresolved = r.conflicts.filter((c) => c.resolution === 'reported').length;
    const mark = r.success ? this.c.green('✓') : unresolved > 0 ? this.c.yellow('!') : this.c.red('✗');
    const what = info.paths === 'all' ? 'all files' : `${info.paths} path${info.paths === 1 ? '' : 's'}`;
    const counts = [`${r.uploadedFiles} uploaded`, `${r.deletedFiles} deleted`];
    if (r.conflicts.length) counts.push(`${r.conflicts.length} conflicts`);
    if (r.failedFiles.length) counts.push(`${r.failedFiles.length} failed`);
    const pending = info.pendingPaths > 0 ? `; ${info.pendingPaths} change${info.pendingPaths === 1 ? '' : 's'} pending` : '';
    const text = `push (${info.reason}, ${what}): ${counts.join(', ')} (${formatBytes(r.bytesTransferred)}) in ${formatDuration(info.durationMs)}${pending}`;
    const moved = r.uploadedFiles + r.deletedFiles + r.conflicts.length + r.failedFiles.length > 0;
    const out = [`${this.c.dim(clock())} ${mark} ${moved ? text : this.c.dim(text)}`];
    this.list(out, this.c.yellow(`Conflicts (${r.conflicts.length}):`), r.conflicts, (c) => `${c.path}: ${c.resolution}${c.conflictCopy ? ` (your version: ${c.conflictCopy})` : ''}`);
    if (r.failedFiles.length) out.push(...this.failureLines(r));
    this.o.stdout.write(`${out.join('\n')}\n`);
  }

  watchError(info: WatchPushError): void {
    this.clear();
    const e = info.error;
    const lines = [`${this.c.dim(clock())} ${this.c.red('✗')} push (${info.reason}) failed: ${e.message}${this.c.dim(` [${e.code}]`)}${info.retrying ? '; trying again' : ''}`];
    if (e.hint) lines.push(`  ${e.hint}`);
    this.o.stderr.write(`${lines.join('\n')}\n`);
  }

  degraded(info: DegradedInfo): void {
    if (this.o.quiet) return;
    this.clear();
    this.o.stderr.write(`${this.c.yellow('warn:')} the watcher may miss changes from now on (${info.message}); every push is a full push, at least every --max-delay\n`);
  }

  private stopDisplay(): void {
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
    this.clear();
    this.dirty = false;
    this.latest = undefined;
    if (this.cursorHidden) {
      this.o.stdout.write(`${ESC}?25h`);
      this.cursorHidden = false;
    }
  }

  finish(outcome: Outcome, exitCode: number): void {
    this.stopDisplay();
    const out: string[] = [];
    switch (outcome.kind) {
      case 'sync':
        if (outcome.result.dryRun) this.planLines(out, outcome.result.plan, true);
        else this.syncLines(out, outcome.result, exitCode);
        break;
      case 'plan':
        this.planLines(out, outcome.plan, false);
        break;
      case 'status':
        this.statusLines(out, outcome.pull, outcome.push);
        break;
      case 'verify':
        this.verifyLines(out, outcome.report);
        break;
      case 'watch':
        if (outcome.result === undefined) out.push('Stopped watching: nothing was left to push');
        else this.syncLines(out, outcome.result, exitCode);
        break;
      case 'error': {
        const e = outcome.error;
        const lines = [`${this.c.red('error:')} ${e.message}${e.code && !/^[A-Z_]+$/.test(e.message) ? this.c.dim(` [${e.code}]`) : ''}`];
        if (e.hint) lines.push(`  ${e.hint}`);
        if (outcome.result && !this.o.quiet) {
          const r = outcome.result;
          lines.push(this.c.dim(`  completed before it stopped: ${r.uploadedFiles} uploaded, ${r.downloadedFiles} downloaded, ${r.deletedFiles} deleted`));
        }
        this.o.stderr.write(`${lines.join('\n')}\n`);
        return;
      }
    }
    if (this.o.quiet) {
      // failures are errors: still printed
      const r = outcome.kind === 'sync' || outcome.kind === 'watch' ? outcome.result : undefined;
      if (r?.failedFiles.length) this.o.stderr.write(`${this.failureLines(r).join('\n')}\n`);
      return;
    }
    if (out.length) this.o.stdout.write(`${out.join('\n')}\n`);
  }

  private list<T>(out: string[], title: string, items: readonly T[], line: (item: T) => string): void {
    if (items.length === 0) return;
    out.push(title);
    const shown = this.o.verbose ? items : items.slice(0, LIST_LIMIT);
    for (const item of shown) out.push(`  ${line(item)}`);
    if (shown.length < items.length) out.push(this.c.dim(`  … and ${items.length - shown.length} more (--verbose lists all)`));
  }

  private failureLines(r: SyncResult): string[] {
    const lines: string[] = [this.c.red(`${r.failedFiles.length} failed:`)];
    const shown = this.o.verbose ? r.failedFiles : r.failedFiles.slice(0, LIST_LIMIT);
    for (const f of shown) lines.push(`  ${this.c.red('✗')} ${f.path || '(sync)'}: ${f.error}${f.code ? this.c.dim(` [${f.code}]`) : ''}`);
    if (shown.length < r.failedFiles.length) lines.push(this.c.dim(`  … and ${r.failedFiles.length - shown.length} more (--verbose lists all)`));
    return lines;
  }

  private syncLines(out: string[], r: SyncResult, exitCode: number): void {
    const push = r.plan.direction === 'push';
    const verb = push ? 'Pushed' : 'Pulled';
    const moved = push ? r.uploadedFiles : r.downloadedFiles;
    const unresolved = r.conflicts.filter((c) => c.resolution === 'reported').length;
    const mark = exitCode === 0 ? this.c.green('✓') : unresolved > 0 ? this.c.yellow('!') : this.c.red('✗');
    out.push(`${mark} ${this.c.bold(`${verb} ${moved} file${moved === 1 ? '' : 's'}`)} (${formatBytes(r.bytesTransferred)}) in ${formatDuration(r.duration)}`);
    const counts = [
      `uploaded ${r.uploadedFiles}`,
      `downloaded ${r.downloadedFiles}`,
      `deleted ${r.deletedFiles}`,
      `unchanged ${r.plan.unchangedFiles}`,
      `kept ${r.keptLocal.length}`,
      `conflicts ${r.conflicts.length}`,
      `failed ${r.failedFiles.length}`,
    ];
    out.push(`  ${counts.map((s) => (/ 0$/.test(s) ? this.c.dim(s) : s)).join(', ')}`);
    this.list(out, this.c.yellow(`Conflicts (${r.conflicts.length}):`), r.conflicts, (c) => `${c.path}: ${c.resolution}${c.conflictCopy ? ` (your version: ${c.conflictCopy})` : ''}${c.remoteSavedTo ? ` (theirs saved to ${c.remoteSavedTo})` : ''}${c.localSavedTo ? ` (yours saved to ${c.localSavedTo})` : ''}`);
    if (unresolved > 0) out.push(this.c.dim('  both sides changed these files; nothing was changed there. Choose with --conflict-policy keep-local|keep-remote|keep-both'));
    this.list(out, 'Kept local changes (push them, or pull with --overwrite-local-changes):', r.keptLocal, (k) => `${k.path} ${this.c.dim(`(${k.reason})`)}`);
    this.list(out, this.c.yellow('Moved to the recovery area:'), r.movedAside, (m) => `${m.path} -> ${m.movedTo}`);
    if (r.failedFiles.length) out.push(...this.failureLines(r));
  }

  private planLines(out: string[], plan: SyncPlan, dryRun: boolean): void {
    const up = plan.direction === 'push';
    out.push(this.c.bold(`${dryRun ? 'Dry run' : 'Plan'}: ${plan.direction}${dryRun ? ' (nothing was changed)' : ''}`));
    this.list(out, `${up ? 'Upload' : 'Download'} (${plan.transfers.length}, ${formatBytes(plan.transferBytes)}):`, plan.transfers, (t) => `${this.c.green('+')} ${t.path} ${this.c.dim(`(${t.reason}, ${formatBytes(t.size)}${t.movesAside ? ', local file moved aside first' : ''})`)}`);
    this.list(out, `Delete ${up ? 'objects' : 'local files'} (${plan.deletions.length}):`, plan.deletions, (d) => `${this.c.red('-')} ${d.path} ${this.c.dim(`(${d.reason}${d.movesAside ? ', moved aside' : ''})`)}`);
    this.list(out, this.c.yellow(`Conflicts (${plan.conflicts.length}):`), plan.conflicts, (c) => `${this.c.yellow('!')} ${c.path} ${this.c.dim(`(${c.action})`)}`);
    this.list(out, `Kept local (${plan.keptLocal.length}):`, plan.keptLocal, (k) => `  ${k.path} ${this.c.dim(`(${k.reason})`)}`);
    this.list(out, this.c.red(`Cannot sync (${plan.failures.length}):`), plan.failures, (f) => `${this.c.red('✗')} ${f.path}: ${f.error}`);
    out.push(`${plan.transfers.length} to ${up ? 'upload' : 'download'} (${formatBytes(plan.transferBytes)}), ${plan.deletions.length} to delete, ${plan.conflicts.length} conflicts, ${plan.unchangedFiles} unchanged`);
    if (plan.refusedBy) out.push(`${this.c.red('refused:')} ${plan.refusedBy.message}`);
  }

  private statusLines(out: string[], pull: SyncPlan, push: SyncPlan): void {
    if (inStep(pull, push)) {
      out.push(`${this.c.green('✓')} In step: ${push.unchangedFiles} files unchanged${pull.keptLocal.length ? '' : ''}`);
      return;
    }
    this.list(out, this.c.bold(`Local changes, a push would upload ${push.transfers.length} (${formatBytes(push.transferBytes)}) and delete ${push.deletions.length}:`), [...push.transfers.map((t) => ({ path: t.path, what: t.reason, sign: '+' })), ...push.deletions.map((d) => ({ path: d.path, what: d.reason, sign: '-' }))], (x) => `${x.sign === '+' ? this.c.green('+') : this.c.red('-')} ${x.path} ${this.c.dim(`(${x.what})`)}`);
    this.list(out, this.c.bold(`Remote changes, a pull would download ${pull.transfers.length} (${formatBytes(pull.transferBytes)}) and delete ${pull.deletions.length}:`), [...pull.transfers.map((t) => ({ path: t.path, what: t.reason, sign: '+' })), ...pull.deletions.map((d) => ({ path: d.path, what: d.reason, sign: '-' }))], (x) => `${x.sign === '+' ? this.c.green('+') : this.c.red('-')} ${x.path} ${this.c.dim(`(${x.what})`)}`);
    const conflicts = new Map([...push.conflicts, ...pull.conflicts].map((c) => [c.path, c]));
    this.list(out, this.c.yellow(`Conflicts (${conflicts.size}), changed on both sides:`), [...conflicts.values()], (c) => `${this.c.yellow('!')} ${c.path}`);
    this.list(out, this.c.red('Cannot sync:'), [...push.failures, ...pull.failures], (f) => `${this.c.red('✗')} ${f.path}: ${f.error}`);
    for (const p of [push, pull]) if (p.refusedBy) out.push(`${this.c.red(`a ${p.direction} would be refused:`)} ${p.refusedBy.message}`);
    out.push(this.c.dim(`${push.unchangedFiles} files unchanged`));
  }

  private verifyLines(out: string[], r: VerifyReport): void {
    if (r.ok) out.push(`${this.c.green('✓')} In step: ${r.checked} files checked, all identical`);
    else out.push(`${this.c.red('✗')} ${this.c.bold('Differences')} (${r.checked} files checked):`);
    this.list(out, `Only in the bucket (${r.missingLocally.length}):`, r.missingLocally, (m) => `${this.c.red('-')} ${m.path}`);
    this.list(out, `Only local (${r.missingRemotely.length}):`, r.missingRemotely, (m) => `${this.c.green('+')} ${m.path}`);
    this.list(out, `Different (${r.different.length}):`, r.different, (d) => `${this.c.yellow('~')} ${d.path} ${this.c.dim(`(local ${formatBytes(d.localSize)}, remote ${formatBytes(d.remoteSize)})`)}`);
    this.list(out, `Cannot tell without a download (${r.unknown.length}):`, r.unknown, (u) => `? ${u.path} ${this.c.dim(`(${u.reason})`)}`);
    if (r.manifest && !r.manifest.ok) out.push(this.c.dim(`manifest (generation ${r.manifest.generation}) differs from the listing: ${r.manifest.missing.length} missing, ${r.manifest.extra.length} extra, ${r.manifest.different.length} different`));
  }

  close(): void {
    if (this.closed) return;
    this.stopDisplay();
    this.closed = true;
  }
}

/** `14:03:07`, local time: watch lines in a long-running terminal. */
function clock(): string {
  return new Date().toTimeString().slice(0, 8);
}

/** Cut a plain string to `width` characters. */
function cut(s: string, width: number): string {
  return s.length > width ? `${s.slice(0, width - 1)}…` : s;
}

declare const __CLI_VERSION__: string;
/** The package version, set at build time (tsup `define`). */
export const CLI_VERSION: string = typeof __CLI_VERSION__ === 'string' ? __CLI_VERSION__ : '0.0.0-dev';
