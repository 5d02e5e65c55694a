// The conflict policies end to end over HTTP: S3WorkspaceSync instances with
// their own real S3Clients (so the SDK and S3ObjectStore run, CopyObject
// included) against the strict S3 double, which enforces conditional writes
// and CopyObject's x-amz-copy-source-if-match as AWS does. Each policy ×
// {edit/edit, create/create, delete/edit, edit/delete} on push, and each
// policy on pull's changed-both-sides case (test/helpers/conflict-scenarios.ts);
// then the exact requests a resolution costs.
import { writeFile } from 'node:fs/promises';
import path from 'node:path';

import { S3Client } from '@aws-sdk/client-s3';
import { afterAll, afterEach, beforeAll, describe, expect, it, onTestFinished } from 'vitest';

import { S3WorkspaceSync, silentLogger } from '../../src/index.js';
import { describeConflictPolicies, PREFIX, type PolicyEnv } from '../helpers/conflict-scenarios.js';
import { startStrictS3, type StrictS3 } from '../helpers/strict-s3.js';
import { tempDir } from '../helpers/sync-fixture.js';

const quietSdkLogger = { trace: () => {}, debug: () => {}, info: () => {}, warn: () => {}, error: () => {} };

let s3: StrictS3;
let bucketSeq = 0;

beforeAll(async () => {
  s3 = await startStrictS3();
});
afterAll(async () => {
  await s3.close();
});
afterEach(() => {
  expect(s3.state.internalErrors).toEqual([]);
  s3.state.clearFaults();
});

function strictClient(): S3Client {
  const client = new S3Client({
    endpoint: s3.endpoint,
    forcePathStyle: true,
    region: 'us-east-1',
    credentials: { accessKeyId: 'x', secretAccessKey: 'y' },
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    logger: quietSdkLogger,
  });
  onTestFinished(() => client.destroy());
  return client;
}

function strictEnv(bucket: string): PolicyEnv {
  return {
    writer: async () => {
      const ws = await tempDir('s3ws-policy-');
      const sync = new S3WorkspaceSync({ bucket, prefix: PREFIX, workspaceDir: ws, s3Client: strictClient(), logger: silentLogger, persistState: false });
      onTestFinished(() => sync.destroy());
      return { ws, sync };
    },
    bodyOf: async (key) => s3.state.getObject(bucket, key)?.body,
    keys: async (prefix) => s3.state.keys(bucket, prefix),
  };
}

function strictBucket(files: Record<string, string>): string {
  const bucket = `policies-${++bucketSeq}`;
  s3.state.createBucket(bucket);
  for (const [rel, body] of Object.entries(files)) s3.state.putObject(bucket, PREFIX + rel, body);
  return bucket;
}

describeConflictPolicies('the strict S3 double over HTTP', async (files) => strictEnv(strictBucket(files)));

describe('conflict policies over HTTP: what a resolution sends', () => {
  async function editEdit() {
    const bucket = strictBucket({ 'notes.md': 'v1' });
    const env = strictEnv(bucket);
    const a = await env.writer();
    const b = await env.writer();
    await a.sync.pull();
    await b.sync.pull();
    await writeFile(path.join(a.ws, 'notes.md'), 'A was here');
    await a.sync.push();
    await writeFile(path.join(b.ws, 'notes.md'), 'B was here');
    const aEtag = s3.state.getObject(bucket, 'ws/notes.md')!.etag;
    return { bucket, b, aEtag, from: s3.state.requests.at(-1)?.seq ?? 0 };
  }
  /** The requests of the resolution (a push's manifest commit may HEAD what it wrote afterwards: not part of it). */
  const resolution = <T extends unknown[]>(ops: T[]): T[] => {
    const lastWrite = ops.map((o) => o[0]).findLastIndex((op) => op !== 'HeadObject');
    return ops.slice(0, lastWrite + 1);
  };
  const sent = (bucket: string, from: number, key: string) =>
    resolution(s3.state.requests.filter((r) => r.seq > from && r.bucket === bucket && r.key !== undefined && (r.key === key || r.key.includes('/conflicts/'))).map((r) => [r.op, r.status]));

  it('keep-local: the failed PUT, one HEAD, one CopyObject If-Match the version seen, one PUT If-Match it', { timeout: 20_000 }, async () => {
    const { bucket, b, aEtag, from } = await editEdit();
    expect((await b.sync.push({ conflictPolicy: 'keep-local' })).success).toBe(true);
    expect(sent(bucket, from, 'ws/notes.md')).toEqual([
      ['PutObject', 412],
      ['HeadObject', 200],
      ['CopyObject', 200],
      ['PutObject', 200],
    ]);
    const copy = s3.state.requests.find((r) => r.seq > from && r.op === 'CopyObject')!;
    expect(copy.headers['x-amz-copy-source-if-match']).toBe(`"${aEtag}"`);
    expect(copy.headers['x-amz-metadata-directive']).toBe('COPY');
  });

  it('keep-remote: the failed PUT, one HEAD, one create-only PUT of the local bytes into the conflicts area, one GET If-Match the version seen', { timeout: 20_000 }, async () => {
    const { bucket, b, aEtag, from } = await editEdit();
    expect((await b.sync.push({ conflictPolicy: 'keep-remote' })).success).toBe(true);
    expect(sent(bucket, from, 'ws/notes.md')).toEqual([
      ['PutObject', 412],
      ['HeadObject', 200],
      ['PutObject', 200],
      ['GetObject', 200],
    ]);
    const save = s3.state.requests.find((r) => r.seq > from && r.op === 'PutObject' && r.key!.includes('/conflicts/'))!;
    expect(save.headers['if-none-match']).toBe('*');
    void aEtag;
  });

  it('keep-both: the failed PUT, one HEAD, one create-only PUT of the conflict copy, one GET', { timeout: 20_000 }, async () => {
    const { bucket, b, from } = await editEdit();
    const pushed = await b.sync.push({ conflictPolicy: 'keep-both' });
    expect(pushed.success).toBe(true);
    const copyKey = PREFIX + pushed.conflicts[0]!.conflictCopy!;
    const ops = resolution(s3.state.requests.filter((r) => r.seq > from && r.bucket === bucket && (r.key === 'ws/notes.md' || r.key === copyKey)).map((r) => [r.op, r.key === copyKey ? 'copy' : 'path', r.status]));
    expect(ops).toEqual([
      ['PutObject', 'path', 412],
      ['HeadObject', 'path', 200],
      ['PutObject', 'copy', 200],
      ['GetObject', 'path', 200],
    ]);
    expect(s3.state.requests.find((r) => r.seq > from && r.key === copyKey)!.headers['if-none-match']).toBe('*');
  });
});
