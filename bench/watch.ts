/**
 * `npm run bench:watch`: watch mode's loss window — the time from a write on
 * local disk to its object being in the bucket — measured, not estimated.
 *
 * A fresh s3rver (scripts/local-s3-launcher.mjs) on 127.0.0.1; a workspace of
 * WATCHBENCH_BASE files (default 10,000, fixed seed) pushed first; then
 * `sync.watch()` with the library's defaults (debounceMs 1000, maxDelayMs
 * 10000) and with a short setting (200 / 2000), and for each:
 *
 *   trickle  one new file every 100 ms for TRICKLE_S seconds (default 30): never
 *            quiet, so only maxDelayMs makes pushes happen;
 *   burst    10,000 new files in 100 new directories, written as fast as the
 *            disk takes them; then quiet;
 *   close    1,000 files written, then `close()` at once (what SIGTERM does):
 *            the time close() takes.
 *
 * "In the bucket" is the moment the PUT of that key answered 200 (the store
 * the sync uses is wrapped to record it), so the figure includes the whole
 * path: the watcher's event, the batching, the push's scan of the named
 * paths, the upload. The write time is taken when writeFile() resolved.
 * Figures per run: max and p50/p99 of (PUT answered − write done) over every
 * file, pushes made; medians over BENCH_RUNS runs (default 3) are printed.
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { CreateBucketCommand } from '@aws-sdk/client-s3';
import { localS3Client } from './local-client.mjs';
import { startLocalS3 } from '../scripts/local-s3-launcher.mjs';
import { S3WorkspaceSync, silentLogger, type WatchOptions } from '../src/index.js';
import { defaultStore } from '../src/pipeline/context.js';
import type { ObjectStore } from '../src/storage/ObjectStore.js';

const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const BASE = Number(process.env.WATCHBENCH_BASE ?? 10_000);
const TRICKLE_S = Number(process.env.WATCHBENCH_TRICKLE_S ?? 30);
const BURST = Number(process.env.WATCHBENCH_BURST ?? 10_000);

/** An xorshift32 generator: the same base tree every run. */
function rng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 2 ** 32;
  };
}

interface Figures {
  max: number;
  p50: number;
  p99: number;
  pushes: number;
  files: number;
}

function figures(latencies: number[], pushes: number): Figures {
  const s = [...latencies].sort((a, b) => a - b);
  const q = (p: number): number => s[Math.min(s.length - 1, Math.floor(p * s.length))] ?? NaN;
  return { max: s[s.length - 1] ?? NaN, p50: q(0.5), p99: q(0.99), pushes, files: s.length };
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;

async function main(): Promise<void> {
  const s3 = await startLocalS3({ buckets: [] });
  const client = localS3Client(s3.endpoint);
  const settings: Array<{ name: string; options: WatchOptions }> = [
    { name: 'defaults (1000 / 10000 ms)', options: {} },
    { name: 'short (200 / 2000 ms)', options: { debounceMs: 200, maxDelayMs: 2000 } },
  ];
  const rows: string[] = [];
  try {
    for (const setting of settings) {
      const runs: Record<string, Figures[]> = { trickle: [], burst: [], close: [] };
      const closeMs: number[] = [];
      for (let run = 0; run < RUNS; run++) {
        const bucket = `watch-${Date.now().toString(36)}-${run}`;
        await client.send(new CreateBucketCommand({ Bucket: bucket }));
        const ws = await mkdtemp(path.join(tmpdir(), 'watchbench-'));
        try {
          await baseTree(ws);
          const putAt = new Map<string, number>();
          const store = (o: Parameters<typeof defaultStore>[0]): ObjectStore => recording(defaultStore(o), putAt);
          const sync = new S3WorkspaceSync(
            { bucket, prefix: 'ws/', workspaceDir: ws, s3Client: client, logger: silentLogger, uploadConcurrency: 16 },
            { store },
          );
          let pushes = 0;
          const pushDurations: number[] = [];
          const w = await sync.watch({ ...setting.options, initial: 'push', reconcileMs: 0 });
          w.on('push-end', (info) => {
            pushes++;
            pushDurations.push(info.durationMs);
          });
          const latencies = async (written: Map<string, number>, deadlineMs: number): Promise<number[]> => {
            const until = Date.now() + deadlineMs;
            while ([...written.keys()].some((k) => !putAt.has(k))) {
              if (Date.now() > until) throw new Error(`files not in the bucket after ${deadlineMs} ms`);
              await sleep(20);
            }
            await w.flush(); // the push that put the last file has ended (its manifest commit counted)
            return [...written].map(([k, t]) => (putAt.get(k) as number) - t);
          };

          // trickle
          let written = new Map<string, number>();
          let p0 = pushes;
          for (let i = 0; i * 100 < TRICKLE_S * 1000; i++) {
            const rel = `trickle/${run}/f${i}.txt`;
            await writeFile(path.join(ws, rel), `trickle ${i}\n`).catch(async () => {
              await mkdir(path.dirname(path.join(ws, rel)), { recursive: true });
              await writeFile(path.join(ws, rel), `trickle ${i}\n`);
            });
            written.set(`ws/${rel}`, Date.now());
            await sleep(100);
          }
          runs.trickle!.push(figures(await latencies(written, 120_000), pushes - p0));

          // burst
          written = new Map();
          p0 = pushes;
          for (let i = 0; i < BURST; i++) {
            const rel = `burst/${run}/d${i % 100}/f${i}.txt`;
            if (i < 100) await mkdir(path.join(ws, path.dirname(rel)), { recursive: true });
            await writeFile(path.join(ws, rel), `burst ${i}\n`);
            written.set(`ws/${rel}`, Date.now());
          }
          const burstWritten = Date.now() - (written.values().next().value as number);
          runs.burst!.push(figures(await latencies(written, 300_000), pushes - p0));
          process.stderr.write(`  burst: written in ${(burstWritten / 1000).toFixed(2)} s; pushes took ${pushDurations.slice(p0).map((d) => (d / 1000).toFixed(2)).join(', ')} s\n`);

          // close: 1,000 files, then close() at once
          written = new Map();
          p0 = pushes;
          await mkdir(path.join(ws, `close/${run}`), { recursive: true });
          for (let i = 0; i < 1000; i++) {
            const rel = `close/${run}/f${i}.txt`;
            await writeFile(path.join(ws, rel), `close ${i}\n`);
            written.set(`ws/${rel}`, Date.now());
          }
          const c0 = Date.now();
          await w.close();
          closeMs.push(Date.now() - c0);
          const missing = [...written.keys()].filter((k) => !putAt.has(k));
          if (missing.length > 0) throw new Error(`close() returned with ${missing.length} file(s) not in the bucket`);
          runs.close!.push(figures([...written].map(([k, t]) => (putAt.get(k) as number) - t), pushes - p0));
          sync.destroy();
        } finally {
          await rm(ws, { recursive: true, force: true });
        }
        process.stderr.write(`${setting.name}: run ${run + 1}/${RUNS} done\n`);
      }
      for (const [scenario, fs] of Object.entries(runs)) {
        const m = (k: keyof Figures): string => (median(fs.map((f) => f[k])) / (k === 'pushes' || k === 'files' ? 1 : 1000)).toFixed(k === 'pushes' || k === 'files' ? 0 : 2);
        const extra = scenario === 'close' ? `; close() took ${(median(closeMs) / 1000).toFixed(2)} s` : '';
        rows.push(`| ${setting.name} | ${scenario} | ${m('files')} | ${m('max')} | ${m('p99')} | ${m('p50')} | ${m('pushes')}${extra} |`);
      }
    }
  } finally {
    client.destroy();
    await s3.stop();
  }
  console.log(`\nWatch mode loss window: s3rver on 127.0.0.1, base tree ${BASE} files, median of ${RUNS} runs (seconds)\n`);
  console.log('| setting | scenario | files | max | p99 | p50 | pushes |');
  console.log('| --- | --- | ---: | ---: | ---: | ---: | ---: |');
  for (const r of rows) console.log(r);
}

/** The base tree: BASE small files in ~BASE/20 directories (fixed seed). */
async function baseTree(ws: string): Promise<void> {
  const r = rng(42);
  const dirs = Math.max(1, Math.floor(BASE / 20));
  for (let d = 0; d < dirs; d++) await mkdir(path.join(ws, 'base', `d${d}`), { recursive: true });
  for (let i = 0; i < BASE; i++) {
    await writeFile(path.join(ws, 'base', `d${i % dirs}`, `f${i}.txt`), 'x'.repeat(16 + Math.floor(r() * 200)));
  }
}

/** The store, recording when each PUT (or multipart completion) of a key answered. */
function recording(store: ObjectStore, putAt: Map<string, number>): ObjectStore {
  return new Proxy(store, {
    get(target, key, receiver) {
      const value: unknown = Reflect.get(target, key, receiver);
      if (typeof value !== 'function') return value;
      if (key === 'put') {
        return async (input: { key: string }) => {
          const out = await (value as (i: unknown) => Promise<unknown>).call(target, input);
          putAt.set(input.key, Date.now());
          return out;
        };
      }
      if (key === 'completeMultipart') {
        return async (k: string, ...rest: unknown[]) => {
          const out = await (value as (...a: unknown[]) => Promise<unknown>).call(target, k, ...rest);
          putAt.set(k, Date.now());
          return out;
        };
      }
      return (value as (...a: unknown[]) => unknown).bind(target);
    },
  });
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

void main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
