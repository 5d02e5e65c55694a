/**
 * Stall detection: a request that moves no bytes for `stallTimeoutMs` is
 * abandoned (its socket destroyed) so that it can be tried again, whatever
 * client the library was given. It is an idle timeout, reset by progress, never
 * a total timeout: a large body on a slow link is never cut while bytes flow.
 *
 * Two ways, one per kind of client:
 * - **The client the library builds** sets the SDK's socket idle timeout to
 *   `stallTimeoutMs` (`requestHandler.socketTimeout`; S3ObjectStore option
 *   `clientDetectsStalls`). Node measures it on the socket itself: bytes read,
 *   and bytes of a request body actually written (Node holds the timeout back
 *   while a large Buffer body is still being accepted by the kernel), so a
 *   slow upload is never mistaken for a stall. The SDK retries such a timeout
 *   as any other, and the store adds no per-request watchdog (nor an options
 *   object on `send()` without a signal: that would defeat `cacheMiddleware`).
 *   The SDK arms that timer 3 s into a request when it is 6 s or more, so an
 *   attempt on a silent server ends after about `stallTimeoutMs` + 3 s.
 * - **A client passed in** (`s3Client`, e.g. README's R2/MinIO snippet, which
 *   has no socket timeout at all) gets a {@link StallWatch} per attempt: an
 *   AbortController passed as `abortSignal`, aborted when the request gets no
 *   response in time, and a watchdog on the response body ({@link watchBody})
 *   and on a streamed request body ({@link watchUpload}). The progress of a
 *   Buffer body cannot be seen from here: see {@link UPLOAD_FLOOR_BYTES_PER_S}.
 *
 * Either way a streamed request body is watched for its own failure (a file
 * that got shorter while it was sent), which aborts the request at once.
 */
import { performance } from 'node:perf_hooks';
import { Readable } from 'node:stream';

/**
 * Default `stallTimeoutMs`: 20 s. Far longer than any pause of a healthy S3,
 * R2 or MinIO request (first byte within a second or two, a throttled request
 * answered 503 at once; S3 itself drops an upload that sends nothing for
 * about 20 s), short enough that a file on a silent server fails in about a
 * minute (3 attempts). The SDK's own default is no timeout at all; AWS CLI
 * and boto3 use a 60 s read timeout.
 */
export const DEFAULT_STALL_TIMEOUT_MS = 20_000;

/**
 * The slowest total upload rate that is never mistaken for a stall where the
 * progress of an upload cannot be seen (a Buffer body handed to a client that
 * has no socket timeout of its own): 256 KiB/s, a 2 Mbit/s uplink. Such a
 * request may stay silent for `stallTimeoutMs` plus the time every upload in
 * flight needs at this rate: one 8 MiB part gets 20 + 32 s; ten at once, 20 + 320 s.
 */
export const UPLOAD_FLOOR_BYTES_PER_S = 256 * 1024;

/**
 * Bytes of a streamed request body that may still be unsent when its last
 * chunk was read: that chunk and the one before it (1 MiB each, in the
 * watch's and the socket's buffers; a kernel's send buffer stays small on the
 * slow links where this matters). Counted like a Buffer body's bytes: a
 * stream upload may be silent for `stallTimeoutMs` + 8 s.
 */
export const UPLOAD_STREAM_SLACK = 2 * 1024 * 1024;

/**
 * CompleteMultipartUpload may take minutes on S3 for large objects (it sends
 * whitespace to keep the connection alive, which a per-request watchdog above
 * the SDK cannot see): its silence allowance is at least this.
 */
export const COMPLETE_MULTIPART_MIN_MS = 120_000;

/** Where a request stalled. */
export type StallPhase = 'response' | 'body' | 'upload';

/** What a stalled request looked like when it was abandoned. */
export interface Stall {
  phase: StallPhase;
  /** How long nothing moved. */
  idleMs: number;
  /** The silence allowed at that moment. */
  allowedMs: number;
}

/**
 * One attempt of one request: an abort linked to the caller's signal (a
 * user abort goes through unchanged), seen as {@link signal} (an
 * AbortController made on demand) or through {@link onAbort}, and an unref'd
 * timer that aborts it, with the error `describe()` makes, when nothing moved
 * for `allowance()` ms. `touch()` records progress. Stop it (or let the watched
 * body close) when the attempt is over: that clears the timer and removes the
 * listener on the caller's signal.
 *
 * The caller's signal is followed with one listener that `stop()` removes,
 * not `AbortSignal.any()`: a sync's signal outlives thousands of requests,
 * and a combined signal per request would stay attached to it until garbage
 * collection.
 */
export class StallWatch {
  /** Made when {@link signal} is first read: a request over the fast path takes {@link onAbort} instead. */
  private controller: AbortController | undefined;
  /** Set once the attempt is abandoned (a stall, the caller's abort, {@link abandon}), with its reason. */
  private abandoned: { reason: unknown } | undefined;
  private hook: ((reason: unknown) => void) | undefined;
  /** Set when the attempt was abandoned for a stall (never for a caller's abort). */
  stall: Stall | undefined;
  /** The error the stall was reported with. */
  error: Error | undefined;
  /** Set when the attempt was abandoned because its request body failed (see {@link watchUpload}). */
  failure: unknown;
  private phase: StallPhase;
  private last = performance.now();
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  private onStall: ((error: Error) => void) | undefined;
  private consumerBehind: (() => boolean) | undefined;

  constructor(
    private readonly parent: AbortSignal | undefined,
    private readonly allowance: () => number,
    private readonly describe: (stall: Stall) => Error,
    phase: StallPhase = 'response',
  ) {
    this.phase = phase;
    if (parent?.aborted) {
      this.stopped = true;
      this.abort(parent.reason);
      return;
    }
    parent?.addEventListener('abort', this.onParentAbort, { once: true });
    this.arm(allowance());
  }

  /** Pass to the request (`abortSignal`): aborted by a stall or by the caller's signal. */
  get signal(): AbortSignal {
    if (this.controller === undefined) {
      this.controller = new AbortController();
      if (this.abandoned !== undefined) this.controller.abort(this.abandoned.reason);
    }
    return this.controller.signal;
  }

  /**
   * For a request that takes a callback rather than a signal: `abort` is
   * called with the reason when the attempt is abandoned (at once if it
   * already was). One callback per watch.
   *
   * The reason for this: on Node 20, every AbortController costs a few
   * hundred bytes that are only freed by a full GC, which adds up to tens of
   * MB over 100,000 requests; a request that needs no signal makes none.
   */
  onAbort(abort: (reason: unknown) => void): void {
    if (this.abandoned !== undefined) abort(this.abandoned.reason);
    else this.hook = abort;
  }

  /** Bytes moved: the silence starts again from now. */
  touch(): void {
    this.last = performance.now();
  }

  /** Whether the attempt is still watched. */
  get active(): boolean {
    return !this.stopped;
  }

  /**
   * The response arrived; watch its body from now on. `consumerBehind()`:
   * data is waiting for the reader (backpressure), so silence is not the
   * server's fault. `onStall` destroys the body.
   */
  watchBody(consumerBehind: () => boolean, onStall: (error: Error) => void): void {
    this.phase = 'body';
    this.consumerBehind = consumerBehind;
    this.onStall = onStall;
    this.touch();
  }

  /**
   * Abandon the attempt for a reason of the caller's (a request body that
   * failed): aborts the request with `error`, kept as {@link failure}.
   */
  abandon(error: unknown): void {
    if (!this.active) return;
    this.failure = error;
    this.stop();
    this.abort(error);
  }

  /** Stop watching: clear the timer, forget the caller's signal. Idempotent. */
  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    this.parent?.removeEventListener('abort', this.onParentAbort);
  }

  private readonly onParentAbort = (): void => {
    this.stop();
    this.abort(this.parent?.reason);
  };

  private abort(reason: unknown): void {
    if (this.abandoned !== undefined) return;
    this.abandoned = { reason };
    this.controller?.abort(reason);
    const hook = this.hook;
    this.hook = undefined;
    hook?.(reason);
  }

  private arm(ms: number): void {
    if (ms === Infinity) return; // watched for abandon() only
    this.timer = setTimeout(this.check, Math.max(1, Math.ceil(ms)));
    this.timer.unref(); // a watchdog never keeps the process alive
  }

  private readonly check = (): void => {
    this.timer = undefined;
    if (this.stopped) return;
    const now = performance.now();
    if (this.consumerBehind?.() === true) this.last = now;
    const allowed = this.allowance();
    const idle = now - this.last;
    if (idle < allowed) {
      this.arm(allowed - idle);
      return;
    }
    this.stall = { phase: this.phase, idleMs: Math.round(idle), allowedMs: Math.round(allowed) };
    this.error = this.describe(this.stall);
    this.stop();
    this.onStall?.(this.error);
    this.abort(this.error);
  };
}

/**
 * A response body watched by `watch`: every chunk is progress; when the
 * server sends nothing for the allowed time while the reader waits, the body
 * is destroyed with the watch's error (and its socket with it). Destroying
 * the returned stream destroys `body`; its end, error or destruction stops
 * the watch. (A plain Readable fed from `body`'s 'data' events: a Transform
 * joined with pipeline() cost ~0.13 ms of CPU more per GET.)
 *
 * Its errors follow the rule of the IncomingMessage it stands for: 'error' is
 * emitted only if someone listens at that moment; otherwise the error is kept
 * (`errored`), and a reader that comes later (`for await`, `finished()`,
 * `pipeline()`) still fails with it. A body is returned before anyone reads it
 * (the caller first opens its temporary file), and a reset or a stall in that
 * time must reach that reader, not the process as an uncaught exception.
 */
export function watchBody(body: Readable, watch: StallWatch): Readable {
  return new WatchedBody(body, watch);
}

class WatchedBody extends Readable {
  constructor(
    private readonly source: Readable,
    private readonly watch: StallWatch,
  ) {
    super({ highWaterMark: source.readableHighWaterMark });
    let ended = false;
    source.on('data', (chunk: Buffer) => {
      watch.touch();
      if (!this.push(chunk)) source.pause();
    });
    source.once('end', () => {
      ended = true;
      this.push(null);
    });
    // `on`, not `once`: a response can emit a second error (an 'aborted' reset after a
    // failure or our destroy()), and an 'error' without a listener crashes the process.
    source.on('error', (error) => this.destroy(error));
    source.once('close', () => {
      if (!ended && !this.destroyed) this.destroy(Object.assign(new Error('Premature close'), { code: 'ERR_STREAM_PREMATURE_CLOSE' }));
    });
    watch.watchBody(
      () => this.readableLength > 0 || source.readableLength > 0,
      (error) => this.destroy(error),
    );
  }

  override _read(): void {
    this.source.resume();
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    this.watch.stop();
    this.source.destroy(); // after a complete response, a no-op that keeps the keep-alive socket
    if (error === null) {
      callback(null);
      return;
    }
    // destroy(error) has already kept it as `errored`, which a later reader fails with.
    // 'error' is emitted here, in the tick the stream would emit it (before 'close'),
    // and only to listeners present then: see watchBody().
    process.nextTick(() => {
      if (this.listenerCount('error') > 0) this.emit('error', error);
    });
    callback(null);
  }
}

/**
 * A streamed request body watched by `watch`: each chunk the client reads
 * from it (as the socket drains) is progress. Nothing is read from `body`
 * before the client reads (a file is read when it is sent, not earlier). When
 * `body` fails (a file that got shorter), the request is abandoned at once
 * with that error ({@link StallWatch.abandon}): the client's `pipe()` would
 * otherwise leave the request waiting for bytes that never come (and the
 * error unhandled).
 */
export function watchUpload(body: Readable, watch: StallWatch): Readable {
  const out = Readable.from(
    (async function* () {
      for await (const chunk of body) {
        watch.touch();
        yield chunk as Buffer;
      }
    })(),
    { objectMode: false },
  );
  out.on('error', (error) => watch.abandon(error));
  return out;
}

/** `20 s`, `0.3 s`, `52.4 s`. */
export function seconds(ms: number): string {
  return `${Number((ms / 1000).toFixed(ms < 10_000 ? 1 : 0))} s`;
}

/**
 * The SDK's own timeouts, in the words the library uses: "no data for 20 s"
 * for its socket idle timeout (`socketTimeout`), "could not connect within
 * 10 s" for its connection timeout. `undefined` for any other message.
 */
export function describeSdkTimeout(message: string): string | undefined {
  const idle = /timed out after (\d+) ms of inactivity/.exec(message);
  if (idle) return `no data for ${seconds(Number(idle[1]))} (socket idle timeout)`;
  const connect = /did not establish a connection with the server within the configured timeout of (\d+) ms/.exec(message);
  if (connect) return `could not connect within ${seconds(Number(connect[1]))}`;
  return undefined;
}
