/**
 * MD5 of large files off the event loop. A large transfer hashes every byte
 * (the whole-file MD5, multipart ETags, part MD5s): about 2 s of CPU per GiB
 * that, on the main thread, stalls receiving and sending the other ranges and
 * parts. Here it runs on worker threads: the main thread hands over a buffer
 * (shared, not copied, when it lives in a `SharedArrayBuffer`, as the part
 * pool's buffers do), goes on with the network, and awaits the answer only
 * before it reuses the buffer.
 *
 * The worker's code is a source string (see CORE_SOURCE) started with
 * `eval: true`: no separate file to ship, so the library keeps working when
 * users bundle it into one file (esbuild for Lambda). With `threads: 0`, or
 * when a worker cannot be started, the same code runs on the calling thread.
 */
import { createHash } from 'node:crypto';
import { Worker } from 'node:worker_threads';

/** What a hash stream gives at its end. */
export interface StreamDigest {
  /** MD5 of every byte, lowercase hex. */
  md5: string;
  /** Multipart ETags (`md5-of-part-md5s-N`, unquoted), one per part size asked for. */
  etags: string[];
}

/** An in-order hash of one content: the whole MD5 and, optionally, its multipart ETags. */
export interface HashStream {
  /** Hash `chunk` next. The chunk must stay unchanged until the promise settles. */
  update(chunk: Uint8Array): Promise<void>;
  /** The digests of everything given to `update` (call once, after the last update settled). */
  digest(): Promise<StreamDigest>;
  /** Forget the stream (after a failure); safe to call more than once. */
  close(): void;
}

type Message =
  | { t: 'open'; id: number; parts: number[]; whole?: boolean }
  | { t: 'up'; id: number; seq: number; buf: Uint8Array }
  | { t: 'dig'; id: number; seq: number }
  | { t: 'close'; id: number }
  | { t: 'md5'; seq: number; buf: Uint8Array };
type Reply = { seq: number; err?: string; md5?: string; etags?: string[] };

/**
 * The hashing state machine, shared by the worker and the in-thread
 * fallback: a function of `createHash` returning the message handler.
 * Written as source text (plain ES2020, no outside references) so that
 * nothing a bundler or loader does to this module (renaming, helpers such
 * as esbuild's `__name`) can reach the worker.
 */
const CORE_SOURCE = `(function hashCore(hash) {
  const streams = new Map();
  const etag = (p) => {
    const digests = p.filled > 0 || p.digests.length === 0 ? p.digests.concat([p.h.digest()]) : p.digests;
    return hash('md5').update(Buffer.concat(digests)).digest('hex') + '-' + digests.length;
  };
  return (m) => {
    if (m.t === 'open') {
      streams.set(m.id, { whole: m.whole === false ? undefined : hash('md5'), parts: m.parts.map((size) => ({ size, filled: 0, h: hash('md5'), digests: [] })) });
      return undefined;
    }
    if (m.t === 'close') {
      streams.delete(m.id);
      return undefined;
    }
    if (m.t === 'md5') return { seq: m.seq, md5: hash('md5').update(m.buf).digest('hex') };
    const s = streams.get(m.id);
    if (s === undefined) return { seq: m.seq, err: 'hash stream ' + m.id + ' is unknown' };
    if (m.t === 'dig') {
      streams.delete(m.id);
      return { seq: m.seq, md5: s.whole === undefined ? '' : s.whole.digest('hex'), etags: s.parts.map(etag) };
    }
    const buf = m.buf;
    if (s.whole !== undefined) s.whole.update(buf);
    for (const p of s.parts) {
      let offset = 0;
      while (offset < buf.length) {
        const take = Math.min(p.size - p.filled, buf.length - offset);
        p.h.update(buf.subarray(offset, offset + take));
        p.filled += take;
        offset += take;
        if (p.filled === p.size) {
          p.digests.push(p.h.digest());
          p.h = hash('md5');
          p.filled = 0;
        }
      }
    }
    return { seq: m.seq };
  };
})`;

type Handler = (m: Message) => Reply | undefined;

const WORKER_SOURCE = `'use strict';
const { parentPort } = require('node:worker_threads');
const handle = ${CORE_SOURCE}(require('node:crypto').createHash);
parentPort.on('message', (m) => {
  let reply;
  try {
    reply = handle(m);
  } catch (error) {
    reply = { seq: m.seq, err: String((error && error.message) || error) };
  }
  if (reply !== undefined) parentPort.postMessage(reply);
});`;

let makeHandler: ((hash: typeof createHash) => Handler) | undefined;

/** A new handler (its own streams) on the calling thread; the source is compiled once. */
function localHandler(): Handler {
  makeHandler ??= new Function('Buffer', `return ${CORE_SOURCE};`)(Buffer) as (hash: typeof createHash) => Handler;
  return makeHandler(createHash);
}

const TERMINATED = 'MD5 worker was stopped';

/** Idle workers end after this long (unreferenced timer: never keeps a process alive). */
const IDLE_MS = 10_000;

interface Waiter {
  resolve(reply: Reply): void;
  reject(error: Error): void;
}

/** One worker thread and the requests it has not answered yet. */
class Lane {
  readonly pending = new Map<number, Waiter>();
  /** Streams opened and not yet digested or closed: their state lives in this worker. */
  private streams = 0;
  private idleTimer: NodeJS.Timeout | undefined;
  dead = false;
  /** Whether the worker ever answered (one that fails before is taken as "no workers here"). */
  private answered = false;

  constructor(
    readonly worker: Worker,
    private readonly onGone: (lane: Lane, neverWorked: boolean) => void,
  ) {
    worker.unref();
    worker.on('message', (r: Reply) => {
      this.answered = true;
      const w = this.pending.get(r.seq);
      if (w === undefined) return;
      this.pending.delete(r.seq);
      this.settleIdle();
      if (r.err !== undefined) w.reject(new Error(`MD5 worker: ${r.err}`));
      else w.resolve(r);
    });
    const fail = (error: Error): void => {
      if (this.dead) return;
      this.dead = true;
      clearTimeout(this.idleTimer);
      this.onGone(this, !this.answered && error.message !== TERMINATED);
      for (const w of this.pending.values()) w.reject(error);
      this.pending.clear();
    };
    worker.on('error', (error) => fail(error));
    worker.on('exit', (code) => fail(new Error(this.terminated ? TERMINATED : `MD5 worker exited (code ${code})`)));
  }

  open(m: Message): void {
    this.streams++;
    clearTimeout(this.idleTimer);
    this.worker.postMessage(m);
  }

  /** A stream ended (digested, or closed with `message`). */
  release(message?: Message): void {
    this.streams--;
    if (message !== undefined && !this.dead) this.worker.postMessage(message);
    this.settleIdle();
  }

  request(m: Message & { seq: number }): Promise<Reply> {
    if (this.dead) return Promise.reject(new Error('MD5 worker is gone'));
    return new Promise<Reply>((resolve, reject) => {
      if (this.pending.size === 0) {
        clearTimeout(this.idleTimer);
        this.worker.ref(); // an answer is awaited: keep the process alive for it
      }
      this.pending.set(m.seq, { resolve, reject });
      this.worker.postMessage(m);
    });
  }

  terminated = false;

  terminate(): Promise<number> {
    this.terminated = true;
    return this.worker.terminate();
  }

  private settleIdle(): void {
    if (this.pending.size > 0 || this.dead) return;
    this.worker.unref();
    if (this.streams > 0) return; // an open stream's state must survive until it ends
    clearTimeout(this.idleTimer);
    this.idleTimer = setTimeout(() => void this.terminate(), IDLE_MS);
    this.idleTimer.unref();
  }
}

/**
 * The same hashing on the calling thread, synchronously: the whole MD5
 * (unless `whole` is false) and the multipart ETags for `partSizes`.
 */
export class SyncHashStream {
  private readonly id = 1;
  /** Its own handler: an abandoned stream is garbage with it. */
  private readonly handle: Handler = localHandler();

  constructor(partSizes: readonly number[], whole = true) {
    this.handle({ t: 'open', id: this.id, parts: [...partSizes], whole });
  }

  update(chunk: Uint8Array): void {
    this.handle({ t: 'up', id: this.id, seq: 0, buf: chunk });
  }

  /** The digests (`md5` is '' when the whole MD5 was not asked for); ends the stream. */
  digest(): StreamDigest {
    const r = this.handle({ t: 'dig', id: this.id, seq: 0 });
    if (r?.err !== undefined) throw new Error(`MD5: ${r.err}`);
    return { md5: r?.md5 ?? '', etags: r?.etags ?? [] };
  }
}

/**
 * A small pool of MD5 worker threads (started on first use, ended when idle).
 *
 * @example
 * const pool = new HashPool(1);
 * const s = pool.stream([8 * 1024 * 1024]);
 * await s.update(chunk1); await s.update(chunk2);
 * const { md5, etags } = await s.digest();
 */
export class HashPool {
  private readonly lanes: Lane[] = [];
  private local: Handler | undefined;
  private seq = 0;
  private ids = 0;
  /** Set once a worker could not be started: everything runs in-thread from then on. */
  private workersFailed = false;

  /** @param threads worker threads at most; 0 hashes on the calling thread. */
  constructor(readonly threads: number) {}

  /** Whether hashing runs on worker threads (false after `threads: 0` or a failed start). */
  get offThread(): boolean {
    return this.threads > 0 && !this.workersFailed;
  }

  /** An in-order hash of one content; `partSizes` asks for its multipart ETags too. */
  stream(partSizes: readonly number[] = []): HashStream {
    const id = ++this.ids;
    const lane = this.pickLane();
    const open: Message = { t: 'open', id, parts: [...partSizes] };
    if (lane === undefined) return this.localStream(id, open);
    lane.open(open);
    let closed = false;
    return {
      update: async (chunk) => {
        await lane.request({ t: 'up', id, seq: ++this.seq, buf: chunk });
      },
      digest: async () => {
        if (closed) throw new Error('MD5: the hash stream has ended');
        closed = true;
        try {
          const r = await lane.request({ t: 'dig', id, seq: ++this.seq });
          return { md5: r.md5 ?? '', etags: r.etags ?? [] };
        } finally {
          lane.release();
        }
      },
      close: () => {
        if (closed) return;
        closed = true;
        lane.release({ t: 'close', id });
      },
    };
  }

  /** MD5 (hex) of one buffer, e.g. a part; the buffer must stay unchanged until it settles. */
  async md5(buf: Uint8Array): Promise<string> {
    const lane = this.pickLane();
    const m: Message = { t: 'md5', seq: ++this.seq, buf };
    const r = lane === undefined ? this.runLocal(m) : await lane.request(m);
    return r?.md5 ?? '';
  }

  /** End every worker now (they also end by themselves when idle). */
  async close(): Promise<void> {
    const lanes = this.lanes.splice(0);
    await Promise.all(lanes.map((l) => l.terminate()));
  }

  private localStream(id: number, open: Message): HashStream {
    this.runLocal(open);
    let closed = false;
    return {
      update: async (chunk) => {
        this.runLocal({ t: 'up', id, seq: 0, buf: chunk });
      },
      digest: async () => {
        if (closed) throw new Error('MD5: the hash stream has ended');
        closed = true;
        const r = this.runLocal({ t: 'dig', id, seq: 0 });
        return { md5: r?.md5 ?? '', etags: r?.etags ?? [] };
      },
      close: () => {
        if (!closed) this.runLocal({ t: 'close', id });
        closed = true;
      },
    };
  }

  private runLocal(m: Message): Reply | undefined {
    this.local ??= localHandler();
    const r = this.local(m);
    if (r?.err !== undefined) throw new Error(`MD5: ${r.err}`);
    return r;
  }

  /** The least busy worker, starting one when all are busy and the pool is not full. */
  private pickLane(): Lane | undefined {
    if (!this.offThread) return undefined;
    let best: Lane | undefined;
    for (const lane of this.lanes) if (best === undefined || lane.pending.size < best.pending.size) best = lane;
    if (best !== undefined && (best.pending.size === 0 || this.lanes.length >= this.threads)) return best;
    try {
      // execArgv: [] — the code is CommonJS whatever flags the process runs with (--input-type=module…)
      const lane = new Lane(new Worker(WORKER_SOURCE, { eval: true, execArgv: [] }), (gone, neverWorked) => {
        const i = this.lanes.indexOf(gone);
        if (i >= 0) this.lanes.splice(i, 1);
        if (neverWorked) this.workersFailed = true; // e.g. a runtime that forbids them: hash in-thread from now on
      });
      this.lanes.push(lane);
      return lane;
    } catch {
      this.workersFailed = true; // no worker threads here (a restricted runtime): hash in-thread
      return best;
    }
  }
}

/**
 * A buffer in shared memory (a worker reads it without a copy), or an
 * ordinary one where `SharedArrayBuffer` is unavailable.
 */
export function allocShared(size: number): Buffer {
  return typeof SharedArrayBuffer === 'function' ? Buffer.from(new SharedArrayBuffer(size)) : Buffer.allocUnsafe(size);
}
