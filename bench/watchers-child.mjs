// One file watcher in a process of its own, driven by bench/watchers.ts over IPC,
// so that RSS, CPU time and inotify watches belong to that watcher alone.
// Plain ESM JavaScript so that it runs unchanged on Node 20, 22 and 24.
//
// Messages from the parent:
//   { cmd: 'start', candidate, root, modules, ignore }  -> { type: 'ready', ms, rss, cpuMs, firstPathForm } or { type: 'error', ... }
//   { cmd: 'stats' }                                    -> { type: 'stats', count, lastAt, errors }
//   { cmd: 'events', from }                             -> { type: 'events', events: [[at, kind, relPath], ...] }
//   { cmd: 'idle', ms }                                 -> { type: 'idle', cpuMs, rss }
//   { cmd: 'close' }                                    -> { type: 'closed', maxRssKb } then exit
// `at` is performance.timeOrigin + performance.now() (ms since the epoch, sub-ms), comparable across processes.
import { lstatSync, readdirSync, watch as fsWatch } from 'node:fs';
import { createRequire } from 'node:module';
import { basename, isAbsolute, join, relative, sep } from 'node:path';
import { pathToFileURL } from 'node:url';

const now = () => performance.timeOrigin + performance.now();
const events = [];
const errors = [];
let lastAt = 0;
let root = '';
let firstPathForm;
let close = async () => {};

function record(kind, p) {
  const at = now();
  if (firstPathForm === undefined) firstPathForm = p == null ? 'null' : isAbsolute(String(p)) ? 'absolute' : 'relative';
  const rel = p == null ? '(null)' : isAbsolute(String(p)) ? relative(root, String(p)) : String(p);
  events.push([at, kind, rel]);
  lastAt = at;
}

function recordError(e) {
  errors.push({ code: e?.code, message: String(e?.message ?? e).slice(0, 300) });
}

async function load(modules, name) {
  const req = createRequire(join(modules, 'noop.js'));
  return import(pathToFileURL(req.resolve(name)).href);
}

const IGNORED = ['node_modules', '.git'];
const isIgnoredRel = (rel) => rel.split(/[\\/]/).some((seg) => IGNORED.includes(seg));

async function start({ candidate, modules, ignore }) {
  if (candidate === 'fs.watch') {
    const options = { recursive: true };
    // Node >= 24 (some 24.x and later) accept `ignore`; older versions ignore the unknown option.
    if (ignore) options.ignore = (p) => isIgnoredRel(String(p));
    const w = fsWatch(root, options, (type, filename) => record(type, filename));
    w.on('error', recordError);
    close = async () => w.close();
    return;
  }
  if (candidate === 'parcel') {
    const mod = await load(modules, '@parcel/watcher');
    const watcher = mod.default ?? mod;
    const sub = await watcher.subscribe(
      root,
      (err, evs) => {
        if (err) recordError(err);
        for (const e of evs ?? []) record(e.type, e.path);
      },
      ignore ? { ignore: IGNORED } : {},
    );
    close = () => sub.unsubscribe();
    return;
  }
  if (candidate.startsWith('chokidar')) {
    const mod = await load(modules, 'chokidar');
    const watch = mod.watch ?? mod.default.watch;
    const options = { ignoreInitial: true, persistent: true };
    if (ignore) options.ignored = (p) => isIgnoredRel(relative(root, String(p)));
    if (candidate.endsWith('-poll')) Object.assign(options, { usePolling: true, interval: 2000, binaryInterval: 2000 });
    const w = watch(root, options);
    for (const kind of ['add', 'addDir', 'change', 'unlink', 'unlinkDir']) w.on(kind, (p) => record(kind, p));
    w.on('error', recordError);
    await new Promise((resolve) => w.once('ready', resolve));
    close = () => w.close();
    return;
  }
  if (candidate === 'dirwatch') {
    startDirWatch(ignore);
    return;
  }
  throw new Error(`unknown candidate ${candidate}`);
}

// A prototype of what the library could own: one non-recursive fs.watch per
// directory (inotify reports the entries of a watched directory by name), the
// ignore rules applied before descending, and a new directory watched first and
// listed second, so that what was created in it before the watch existed is
// still reported. Symlinks are reported, never followed. A deleted or renamed
// directory is reported once (its contents are implied) and its watches closed.
function startDirWatch(ignore) {
  const watchers = new Map();
  const skip = (p) => ignore && isIgnoredRel(relative(root, p));
  const unwatchTree = (dir) => {
    for (const [d, w] of watchers) {
      if (d === dir || d.startsWith(dir + sep)) {
        w.close();
        watchers.delete(d);
      }
    }
  };
  const watchDir = (dir, initial) => {
    if (watchers.has(dir)) return;
    let w;
    try {
      w = fsWatch(dir, { persistent: true }, (type, name) => {
        try {
          onEvent(dir, type, name);
        } catch (e) {
          recordError(e);
        }
      });
    } catch (e) {
      if (!initial && (e.code === 'ENOENT' || e.code === 'ENOTDIR')) return;
      throw e;
    }
    w.on('error', recordError);
    watchers.set(dir, w);
    let entries;
    try {
      entries = readdirSync(dir, { withFileTypes: true });
    } catch {
      return;
    }
    for (const ent of entries) {
      const p = join(dir, ent.name);
      if (skip(p)) continue;
      if (!initial) record('create', p);
      if (ent.isDirectory()) watchDir(p, initial);
    }
  };
  const onEvent = (dir, type, name) => {
    if (!watchers.has(dir)) return;
    if (name == null) {
      record('rescan', dir);
      return;
    }
    const p = join(dir, String(name));
    if (skip(p)) return;
    let st;
    try {
      st = lstatSync(p);
    } catch {
      // Gone. An event about the watched directory itself (named by its own
      // basename) is left to the parent's watch.
      if (String(name) === basename(dir) && !watchers.has(p)) {
        try {
          lstatSync(dir);
        } catch {
          return;
        }
      }
      record('delete', p);
      if (watchers.has(p)) unwatchTree(p);
      return;
    }
    if (st.isDirectory()) {
      if (!watchers.has(p)) {
        record('create', p);
        watchDir(p, false);
      }
      return;
    }
    record(type === 'rename' ? 'rename' : 'change', p);
  };
  watchDir(root, true);
  close = async () => {
    for (const w of watchers.values()) w.close();
  };
}

process.on('message', async (msg) => {
  try {
    if (msg.cmd === 'start') {
      root = msg.root;
      const t0 = now();
      const c0 = process.cpuUsage();
      try {
        await start(msg);
      } catch (e) {
        process.send({ type: 'error', code: e?.code, message: String(e?.message ?? e).slice(0, 300), ms: now() - t0 });
        return;
      }
      const c = process.cpuUsage(c0);
      process.send({
        type: 'ready',
        ms: now() - t0,
        rss: process.memoryUsage().rss,
        cpuMs: (c.user + c.system) / 1000,
        errors,
      });
    } else if (msg.cmd === 'stats') {
      process.send({ type: 'stats', count: events.length, lastAt, errors, firstPathForm });
    } else if (msg.cmd === 'events') {
      process.send({ type: 'events', events: events.slice(msg.from) });
    } else if (msg.cmd === 'idle') {
      const c0 = process.cpuUsage();
      await new Promise((r) => setTimeout(r, msg.ms));
      const c = process.cpuUsage(c0);
      process.send({ type: 'idle', cpuMs: (c.user + c.system) / 1000, rss: process.memoryUsage().rss });
    } else if (msg.cmd === 'close') {
      await close();
      process.send({ type: 'closed', maxRssKb: process.resourceUsage().maxRSS }, () => process.exit(0));
    }
  } catch (e) {
    process.send({ type: 'error', code: e?.code, message: String(e?.message ?? e).slice(0, 300) });
  }
});
process.on('uncaughtException', (e) => {
  recordError(e);
  try {
    process.send({ type: 'error', code: e?.code, message: `uncaught: ${String(e?.message ?? e).slice(0, 300)}` });
  } catch {
    // parent gone
  }
});
process.send({ type: 'hello', node: process.version });
