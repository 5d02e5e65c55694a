// The stall watchdog's pieces (src/storage/stall.ts) and how SDK timeouts are
// worded; the behaviour against real sockets is test/integration/stall.test.ts.
import { EventEmitter } from 'node:events';
import { createServer, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { PassThrough } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';

import { GetObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { Readable } from 'node:stream';
import { describe, expect, it, vi } from 'vitest';

import { StorageError } from '../../src/errors.js';
import { S3ObjectStore, toStorageError } from '../../src/storage/S3ObjectStore.js';
import { StallWatch, describeSdkTimeout, seconds, watchBody } from '../../src/storage/stall.js';

const fail = (stall: { allowedMs: number }): Error => new Error(`no data for ${stall.allowedMs} ms`);

describe('StallWatch', () => {
  it('aborts its signal with the error fail() makes when nothing moves for the allowed time', async () => {
    const watch = new StallWatch(undefined, () => 50, fail);
    await sleep(150);
    expect(watch.signal.aborted).toBe(true);
    expect(watch.stall).toMatchObject({ phase: 'response', allowedMs: 50 });
    expect(watch.stall!.idleMs).toBeGreaterThanOrEqual(49);
    expect(watch.signal.reason).toBe(watch.error);
    expect(watch.active).toBe(false);
  });

  it('progress resets the silence; stop() ends the watch', async () => {
    const watch = new StallWatch(undefined, () => 250, fail);
    for (let i = 0; i < 20; i++) {
      await sleep(20);
      watch.touch();
    }
    expect(watch.signal.aborted).toBe(false); // 400 ms in all, never 250 ms without progress
    watch.stop();
    await sleep(300);
    expect(watch.signal.aborted).toBe(false);
    expect(watch.stall).toBeUndefined();
  });

  it("follows the caller's signal with its reason, and that is not a stall; stop() removes its listener", async () => {
    const caller = new AbortController();
    const watch = new StallWatch(caller.signal, () => 10_000, fail);
    const reason = new Error('user');
    caller.abort(reason);
    expect(watch.signal.aborted).toBe(true);
    expect(watch.signal.reason).toBe(reason);
    expect(watch.stall).toBeUndefined();

    const aborted = new StallWatch(AbortSignal.abort('before'), () => 10, fail);
    expect(aborted.signal.reason).toBe('before');
    expect(aborted.active).toBe(false);

    // many watches on one long-lived signal: each removes its listener when stopped
    const parent = new AbortController();
    const watches = Array.from({ length: 20 }, () => new StallWatch(parent.signal, () => 10_000, fail));
    expect(EventEmitter.getEventListeners(parent.signal, 'abort')).toHaveLength(20);
    for (const w of watches) w.stop();
    expect(EventEmitter.getEventListeners(parent.signal, 'abort')).toHaveLength(0);
  });

  it('the allowance is read again when the timer fires (uploads starting later lengthen it)', async () => {
    let allowed = 100;
    const watch = new StallWatch(undefined, () => allowed, fail); // armed for 100 ms
    allowed = 500;
    await sleep(250);
    expect(watch.signal.aborted).toBe(false);
    await sleep(550);
    expect(watch.signal.aborted).toBe(true);
    expect(watch.stall?.allowedMs).toBe(500);
  });
});

describe('watchBody', () => {
  it('destroys a body whose server stops sending, with the watch error; the source is destroyed too', async () => {
    const source = new PassThrough();
    const watch = new StallWatch(undefined, () => 60, (s) => new StorageError('NETWORK', `no data for ${s.allowedMs} ms`, { retryable: true }));
    const body = watchBody(source, watch);
    source.write(Buffer.from('first'));
    const chunks: Buffer[] = [];
    const error = await (async () => {
      try {
        for await (const chunk of body) chunks.push(chunk as Buffer);
      } catch (e) {
        return e;
      }
      return undefined;
    })();
    expect(error).toBeInstanceOf(StorageError);
    expect(error).toMatchObject({ code: 'NETWORK', retryable: true });
    expect(Buffer.concat(chunks).toString()).toBe('first');
    expect(source.destroyed).toBe(true);
    expect(watch.stall?.phase).toBe('body');
  });

  it('a reader that does not read is not a stall while data waits for it', async () => {
    const source = new PassThrough();
    const watch = new StallWatch(undefined, () => 40, fail);
    const body = watchBody(source, watch);
    source.end(Buffer.alloc(64 * 1024)); // more than the buffers hold: waiting for the reader
    await sleep(200);
    expect(watch.stall).toBeUndefined();
    let n = 0;
    for await (const chunk of body) n += (chunk as Buffer).length;
    expect(n).toBe(64 * 1024);
    await sleep(0);
    expect(watch.active).toBe(false); // the end stopped it
  });

  it('destroying the watched body destroys the source and stops the watch', async () => {
    const source = new PassThrough();
    const watch = new StallWatch(undefined, () => 10_000, fail);
    const body = watchBody(source, watch);
    body.destroy();
    await sleep(0);
    expect(source.destroyed).toBe(true);
    expect(watch.active).toBe(false);
  });
});

describe('wording', () => {
  it('a watch whose signal is never read makes no AbortController; onAbort() hears a stall, the caller\'s abort, or abandon(), at once if it came first', async () => {
    const stalled = new StallWatch(undefined, () => 30, () => new Error('stalled!'));
    const reasons: unknown[] = [];
    stalled.onAbort((reason) => reasons.push(reason));
    await new Promise((r) => setTimeout(r, 120));
    expect(reasons).toEqual([stalled.error]);
    expect((reasons[0] as Error).message).toBe('stalled!');
    // read later, the signal is already aborted with the same reason
    expect(stalled.signal.aborted).toBe(true);
    expect(stalled.signal.reason).toBe(stalled.error);

    const parent = new AbortController();
    const followed = new StallWatch(parent.signal, () => 10_000, () => new Error('never'));
    const heard: unknown[] = [];
    followed.onAbort((reason) => heard.push(reason));
    parent.abort(new Error('user'));
    expect(heard).toHaveLength(1);
    expect((heard[0] as Error).message).toBe('user');
    expect(followed.stall).toBeUndefined();

    const abandoned = new StallWatch(undefined, () => 10_000, () => new Error('never'));
    const failure = new Error('file got shorter');
    abandoned.abandon(failure);
    const late: unknown[] = [];
    abandoned.onAbort((reason) => late.push(reason)); // after the fact: called at once
    expect(late).toEqual([failure]);
    expect(abandoned.active).toBe(false);

    const quiet = new StallWatch(undefined, () => 20, () => new Error('no'));
    const none: unknown[] = [];
    quiet.onAbort((reason) => none.push(reason));
    quiet.stop();
    await new Promise((r) => setTimeout(r, 80));
    expect(none).toEqual([]); // stopped in time: never called
  });

  it('seconds()', () => {
    expect(seconds(300)).toBe('0.3 s');
    expect(seconds(20_000)).toBe('20 s');
    expect(seconds(52_400)).toBe('52 s');
    expect(seconds(8_300)).toBe('8.3 s');
  });

  it("the SDK's socket and connection timeouts read as \"no data for N s\" / \"could not connect within N s\"", () => {
    const idle = Object.assign(
      new Error('@smithy/node-http-handler - the request socket timed out after 20000 ms of inactivity (configured by client requestHandler).'),
      { name: 'TimeoutError' },
    );
    const mapped = toStorageError(idle, 'bkt', 'ws/a.txt');
    expect(mapped).toMatchObject({ code: 'NETWORK', retryable: true, retriedBySdk: true });
    expect(mapped.message).toBe('s3://bkt/ws/a.txt: no data for 20 s (socket idle timeout)');
    expect(describeSdkTimeout('@smithy/node-http-handler - the request socket did not establish a connection with the server within the configured timeout of 10000 ms.')).toBe(
      'could not connect within 10 s',
    );
    expect(describeSdkTimeout('socket hang up')).toBeUndefined();
  });
});

describe('what S3ObjectStore passes to send()', () => {
  const fakeClient = () => {
    const send = vi.fn(async (...args: unknown[]) => {
      // as the SDK's handler does with an aborted signal
      if ((args[1] as { abortSignal?: AbortSignal } | undefined)?.abortSignal?.aborted) throw Object.assign(new Error('Request aborted'), { name: 'AbortError' });
      return { Body: Readable.from([Buffer.from('x')]), ContentLength: 1, ETag: '"9dd4e461268c8034f5c8564e155c67a6"' };
    });
    return { send, client: { send } as unknown as S3Client };
  };
  const drain = async (body: Readable): Promise<void> => {
    for await (const _chunk of body) void _chunk;
  };

  it('clientDetectsStalls (the client the library builds): no options object without a signal, so the middleware cache works; the caller\'s signal as is', async () => {
    const { send, client } = fakeClient();
    const store = new S3ObjectStore(client, 'b', { clientDetectsStalls: true });
    await drain((await store.get('k')).body);
    expect(send.mock.calls[0]).toHaveLength(1);
    expect(send.mock.calls[0]![0]).toBeInstanceOf(GetObjectCommand);
    const ac = new AbortController();
    await drain((await store.get('k', ac.signal)).body);
    expect(send.mock.calls[1]).toEqual([expect.any(GetObjectCommand), { abortSignal: ac.signal }]);
    // stallTimeoutMs 0 is the same
    const off = fakeClient();
    await drain((await new S3ObjectStore(off.client, 'b', { stallTimeoutMs: 0 }).get('k')).body);
    expect(off.send.mock.calls[0]).toHaveLength(1);
  });

  it("with the watchdog (a client passed in): each attempt its own abortSignal, which follows the caller's", async () => {
    const { send, client } = fakeClient();
    const store = new S3ObjectStore(client, 'b'); // the 3-argument form still compiles: new S3ObjectStore(client, bucket, owner)
    await drain((await store.get('k')).body);
    const first = (send.mock.calls[0]![1] as { abortSignal: AbortSignal }).abortSignal;
    expect(first).toBeInstanceOf(AbortSignal);
    // a body read to its end: the attempt is over, the caller's signal is no longer followed
    const done = new AbortController();
    await drain((await store.get('k', done.signal)).body);
    const second = (send.mock.calls[1]![1] as { abortSignal: AbortSignal }).abortSignal;
    expect(second).not.toBe(done.signal);
    done.abort(new Error('user'));
    expect(second.aborted).toBe(false);
    // a body still being read: the caller's abort reaches its request
    const ac = new AbortController();
    const got = await store.get('k', ac.signal);
    const third = (send.mock.calls[2]![1] as { abortSignal: AbortSignal }).abortSignal;
    const reason = new Error('user');
    ac.abort(reason);
    expect(third.aborted).toBe(true);
    expect(third.reason).toBe(reason);
    got.body.destroy();
    // a request under an aborted signal: aborted (code STORAGE), not a stall
    const aborted = store.get('k', ac.signal);
    await expect(aborted).rejects.toMatchObject({ code: 'STORAGE' });
    await expect(aborted).rejects.toThrow(/was aborted/);
  });
});

describe('watchBody: a response that errors more than once', () => {
  it('a second error of the source (an "aborted" reset after the first failure) is handled, not an uncaught exception', async () => {
    const source = new PassThrough();
    const watch = new StallWatch(undefined, () => 10_000, (stall) => new Error(`stalled ${stall.phase}`));
    const body = watchBody(source, watch);
    const failed = new Promise<unknown>((resolve) => body.once('error', resolve));
    source.write(Buffer.from('partial'));
    const reset = (): Error => Object.assign(new Error('aborted'), { code: 'ECONNRESET' });
    // emit() throws synchronously when an 'error' has no listener: this is what crashed the process on Node 22
    expect(() => source.emit('error', reset())).not.toThrow();
    expect(() => source.emit('error', reset())).not.toThrow();
    expect(await failed).toMatchObject({ code: 'ECONNRESET' });
    expect(body.destroyed).toBe(true);
    watch.stop();
  });
});

describe('watchBody: a body that fails before anyone reads it', () => {
  // What the caller of get() does before it reads: WorkspaceWriter.writeAtomic
  // creates the parent directories and opens the temporary file first. A body
  // that fails in that time must keep its error for the reader, as the
  // IncomingMessage it wraps does ("an error is emitted only if there are
  // listeners"), not throw it at the process: that was the Node 22 fault-injection
  // run's 'Error: aborted' (ECONNRESET) from socketCloseListener.
  const uncaught = (): { errors: unknown[]; off: () => void } => {
    const errors: unknown[] = [];
    const spy = (error: unknown): void => void errors.push(error);
    process.on('uncaughtException', spy);
    return { errors, off: () => process.off('uncaughtException', spy) };
  };
  const read = async (body: Readable): Promise<unknown> => {
    try {
      for await (const _chunk of body) void _chunk;
    } catch (error) {
      return error;
    }
    return undefined;
  };

  it('a source that fails while nobody listens: no uncaught exception; the reader still gets the error', async () => {
    const spy = uncaught();
    try {
      const source = new PassThrough();
      const body = watchBody(source, new StallWatch(undefined, () => 10_000, fail));
      source.write(Buffer.from('partial'));
      source.destroy(Object.assign(new Error('aborted'), { code: 'ECONNRESET' }));
      await sleep(20);
      expect(spy.errors).toEqual([]);
      expect(body.destroyed).toBe(true);
      expect(await read(body)).toMatchObject({ message: 'aborted', code: 'ECONNRESET' });
    } finally {
      spy.off();
    }
  });

  it('a listener still gets the error event (the error is not swallowed)', async () => {
    const source = new PassThrough();
    const body = watchBody(source, new StallWatch(undefined, () => 10_000, fail));
    const got = new Promise<unknown>((resolve) => body.once('error', resolve));
    const reset = Object.assign(new Error('aborted'), { code: 'ECONNRESET' });
    source.destroy(reset);
    expect(await got).toBe(reset);
  });

  it('a stall while nobody reads yet: no uncaught exception; the reader gets the stall error', async () => {
    const spy = uncaught();
    try {
      const source = new PassThrough();
      const watch = new StallWatch(undefined, () => 40, (stall) => new StorageError('NETWORK', `no data for ${stall.allowedMs} ms`, { retryable: true }));
      const body = watchBody(source, watch);
      await sleep(150);
      expect(watch.stall?.phase).toBe('body');
      expect(spy.errors).toEqual([]);
      expect(await read(body)).toMatchObject({ code: 'NETWORK', retryable: true });
      expect(source.destroyed).toBe(true);
    } finally {
      spy.off();
    }
  });

  describe('through a real S3Client (a client passed in: the store watches the request)', () => {
    const serve = async (answer: (res: ServerResponse, socket: Socket) => void): Promise<{ client: S3Client; close: () => Promise<void> }> => {
      const server = createServer((req, res) => {
        req.resume();
        answer(res, req.socket);
      });
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      const { port } = server.address() as AddressInfo;
      const client = new S3Client({
        endpoint: `http://127.0.0.1:${port}`,
        region: 'us-east-1',
        forcePathStyle: true,
        credentials: { accessKeyId: 'AKIAEXAMPLE', secretAccessKey: 'secret' },
        maxAttempts: 1,
        requestChecksumCalculation: 'WHEN_REQUIRED',
        responseChecksumValidation: 'WHEN_REQUIRED',
      });
      return {
        client,
        close: async () => {
          client.destroy();
          server.closeAllConnections();
          await new Promise((resolve) => server.close(resolve));
        },
      };
    };
    const headers = { 'content-type': 'application/octet-stream', 'content-length': '1000', etag: '"0123456789abcdef0123456789abcdef"' };

    it('the server resets the connection after the headers, before the caller reads: no uncaught exception; reading fails with the reset', async () => {
      const spy = uncaught();
      const { client, close } = await serve((res, socket) => {
        res.writeHead(200, headers);
        res.write(Buffer.alloc(10));
        setTimeout(() => socket.resetAndDestroy(), 30);
      });
      try {
        const got = await new S3ObjectStore(client, 'b', { stallTimeoutMs: 5_000 }).get('k');
        await sleep(200); // the caller prepares its temporary file; the reset arrives meanwhile
        expect(spy.errors).toEqual([]);
        expect(await read(got.body)).toMatchObject({ code: 'ECONNRESET' });
      } finally {
        spy.off();
        await close();
      }
    });

    it('the body stalls (headers only) before the caller reads, the server resets later: no uncaught exception; reading fails with the stall', async () => {
      const spy = uncaught();
      const { client, close } = await serve((res, socket) => {
        res.writeHead(200, headers);
        res.flushHeaders();
        setTimeout(() => socket.resetAndDestroy(), 300);
      });
      try {
        const got = await new S3ObjectStore(client, 'b', { stallTimeoutMs: 80 }).get('k');
        await sleep(500); // the watchdog fires at ~80 ms, the reset comes at 300 ms
        expect(spy.errors).toEqual([]);
        expect(await read(got.body)).toMatchObject({ code: 'NETWORK', retryable: true, message: expect.stringMatching(/no data for .* while reading the response body/) });
      } finally {
        spy.off();
        await close();
      }
    });
  });
});
