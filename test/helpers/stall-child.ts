// Child process for the "no timer keeps the process alive" test in
// test/integration/stall.test.ts: runs requests through S3ObjectStore's stall
// watchdog -- a stall, successful requests under a 60 s stall timeout, a body
// its reader abandons, a request its caller aborts -- closes everything, and
// then does NOT call process.exit(): the parent checks that the process ends
// on its own, promptly. A watchdog timer left behind (not cleared, not
// unref'd) would keep it alive for a minute.
//
//   node --import tsx test/helpers/stall-child.ts      (cwd: the repository root)
//
// stdout: one JSON line {"done":true,"codes":[…]} when everything is closed.
import { createHash, randomBytes } from 'node:crypto';

import { S3Client } from '@aws-sdk/client-s3';

import { S3ObjectStore } from '../../src/storage/S3ObjectStore.js';
import { startDripServer, startSilentServer } from './stall-servers.js';

function readmeClient(endpoint: string): S3Client {
  return new S3Client({
    region: 'us-east-1',
    endpoint,
    forcePathStyle: true,
    credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
}

const codes: string[] = [];
const code = (error: unknown): void => {
  codes.push(String((error as { code?: unknown }).code));
};

const silent = await startSilentServer();
const body = randomBytes(64 * 1024);
const drip = await startDripServer({ body, chunk: 16 * 1024, intervalMs: 20 });
const toSilent = readmeClient(silent.endpoint);
const toDrip = readmeClient(drip.endpoint);

// 1. a stall: 3 attempts of 200 ms
await new S3ObjectStore(toSilent, 'bkt', { stallTimeoutMs: 200 }).head('ws/a').catch(code);

// 2. successful requests under a long stall timeout
const store = new S3ObjectStore(toDrip, 'bkt', { stallTimeoutMs: 60_000 });
const got = await store.get('ws/a');
const chunks: Buffer[] = [];
for await (const chunk of got.body) chunks.push(chunk as Buffer);
if (!Buffer.concat(chunks).equals(body)) throw new Error('body differs');
const md5 = createHash('md5').update(body).digest('hex');
await store.put({ key: 'ws/b', body, size: body.length, md5, contentType: 'application/octet-stream', mtimeMs: Date.now() });

// 3. a body its reader abandons after the first chunk
const abandoned = await store.get('ws/a');
for await (const _chunk of abandoned.body) break; // the iterator's return() destroys it
await store.get('ws/a').then((r) => r.body.destroy());

// 4. a request its caller aborts while the server is silent
const ac = new AbortController();
setTimeout(() => ac.abort(), 50);
await new S3ObjectStore(toSilent, 'bkt', { stallTimeoutMs: 60_000 }).head('ws/a', ac.signal).catch(code);

toSilent.destroy();
toDrip.destroy();
await silent.close();
await drip.close();
process.stdout.write(`${JSON.stringify({ done: true, codes })}\n`);
