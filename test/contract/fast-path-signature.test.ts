// The fast path's requests carry valid SigV4 signatures. Neither s3rver nor
// the strict double verifies signatures, so this file has a tiny server that
// does (SigV4 recomputed here by hand with node:crypto, independent of the
// SDK's signer): canonical request from what arrived on the wire (the raw
// path, the signed headers, x-amz-content-sha256 checked against the body),
// string to sign, signing key. It answers PUT with the body's MD5 as ETag
// and GET with the body (a Range honoured), 403 SignatureDoesNotMatch else.
import { createHash, createHmac } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';

import { S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';

import { S3ObjectStore } from '../../src/storage/S3ObjectStore.js';
import type { Transport } from '../../src/storage/fast-path.js';
import { quietLogger } from './object-store-contract.js';

const SECRET = 'verify/Secret+Key';
const sha256 = (b: Buffer | string): string => createHash('sha256').update(b).digest('hex');
const hmac = (key: Buffer | string, data: string): Buffer => createHmac('sha256', key).update(data).digest();

interface Seen {
  method: string;
  url: string;
  ok: boolean;
  why?: string;
  amzDate: string;
  headers: http.IncomingHttpHeaders;
}

function verify(req: http.IncomingMessage, body: Buffer): { ok: boolean; why?: string } {
  const auth = String(req.headers.authorization ?? '');
  const m = /^AWS4-HMAC-SHA256 Credential=([^/]+)\/(\d{8})\/([^/]+)\/([^/]+)\/aws4_request, SignedHeaders=([^,]+), Signature=([0-9a-f]{64})$/.exec(auth);
  if (!m) return { ok: false, why: `malformed Authorization: ${auth}` };
  const [, , day, region, service, signedHeaders, signature] = m as unknown as string[];
  const amzDate = String(req.headers['x-amz-date'] ?? '');
  const payloadHash = String(req.headers['x-amz-content-sha256'] ?? '');
  if (payloadHash !== 'UNSIGNED-PAYLOAD' && payloadHash !== sha256(body)) return { ok: false, why: 'x-amz-content-sha256 does not match the body' };
  const [rawPath = '', rawQuery = ''] = (req.url ?? '').split('?');
  const query = rawQuery === '' ? [] : rawQuery.split('&').map((p) => (p.includes('=') ? p : `${p}=`)).sort();
  const names = signedHeaders!.split(';');
  if (!names.includes('host')) return { ok: false, why: 'host is not signed' };
  const canonicalHeaders = names.map((n) => `${n}:${String(req.headers[n] ?? '').trim().replace(/\s+/g, ' ')}\n`).join('');
  const canonical = [req.method, rawPath, query.join('&'), canonicalHeaders, signedHeaders, payloadHash].join('\n');
  const scope = `${day}/${region}/${service}/aws4_request`;
  const toSign = ['AWS4-HMAC-SHA256', amzDate, scope, sha256(canonical)].join('\n');
  const key = hmac(hmac(hmac(hmac(`AWS4${SECRET}`, day!), region!), service!), 'aws4_request');
  const expected = createHmac('sha256', key).update(toSign).digest('hex');
  return expected === signature ? { ok: true } : { ok: false, why: `signature mismatch; canonical request:\n${canonical}` };
}

let server: http.Server;
let endpoint: string;
const seen: Seen[] = [];
const objects = new Map<string, Buffer>();

beforeAll(async () => {
  server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const v = verify(req, body);
      seen.push({ method: req.method ?? '', url: req.url ?? '', ok: v.ok, ...(v.why !== undefined ? { why: v.why } : {}), amzDate: String(req.headers['x-amz-date']), headers: req.headers });
      if (!v.ok) {
        res.writeHead(403, { 'content-type': 'application/xml' });
        res.end('<?xml version="1.0" encoding="UTF-8"?><Error><Code>SignatureDoesNotMatch</Code><Message>no</Message></Error>');
        return;
      }
      const [path, rawQuery = ''] = (req.url ?? '').split('?') as [string, string?];
      const params = new URLSearchParams(rawQuery.replace(/\+/g, '%2B'));
      if (req.method === 'GET' && params.get('list-type') === '2') {
        // ListObjectsV2, two keys a page; the continuation token needs encoding in the query
        const bucketPath = path.replace(/\/$/, '');
        const prefix = params.get('prefix') ?? '';
        const keys = [...objects.keys()]
          .filter((p) => p.startsWith(`${bucketPath}/`))
          .map((p) => decodeURIComponent(p.slice(bucketPath.length + 1)))
          .filter((k) => k.startsWith(prefix))
          .sort();
        const start = Number((params.get('continuation-token') ?? 'tok+/=0').slice('tok+/='.length));
        const slice = keys.slice(start, start + 2);
        const esc = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&apos;');
        const more = start + 2 < keys.length;
        const xml =
          '<?xml version="1.0" encoding="UTF-8"?><ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">' +
          `<Name>sig-bucket</Name><Prefix>${esc(prefix)}</Prefix><KeyCount>${slice.length}</KeyCount><MaxKeys>2</MaxKeys><IsTruncated>${more}</IsTruncated>` +
          slice.map((k) => `<Contents><Key>${esc(k)}</Key><LastModified>2026-12-06T10:00:00.000Z</LastModified><ETag>&quot;${'0'.repeat(32)}&quot;</ETag><Size>1</Size></Contents>`).join('') +
          (more ? `<NextContinuationToken>${esc(`tok+/=${start + 2}`)}</NextContinuationToken>` : '') +
          '</ListBucketResult>';
        res.writeHead(200, { 'content-type': 'application/xml' });
        res.end(xml);
        return;
      }
      if (req.method === 'PUT') {
        objects.set(path, body);
        res.writeHead(200, { etag: `"${createHash('md5').update(body).digest('hex')}"` });
        res.end();
        return;
      }
      const stored = objects.get(path);
      if (stored === undefined) {
        res.writeHead(404, { 'content-type': 'application/xml' });
        res.end('<?xml version="1.0" encoding="UTF-8"?><Error><Code>NoSuchKey</Code><Message>no</Message></Error>');
        return;
      }
      const range = /^bytes=(\d+)-(\d+)$/.exec(String(req.headers.range ?? ''));
      const part = range ? stored.subarray(Number(range[1]), Number(range[2]) + 1) : stored;
      res.writeHead(range ? 206 : 200, { etag: `"${createHash('md5').update(stored).digest('hex')}"`, 'content-length': part.length });
      res.end(part);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  await new Promise((resolve) => server.close(resolve));
});

function setup(transport: Transport, credentials: { accessKeyId: string; secretAccessKey: string; sessionToken?: string } = { accessKeyId: 'AKIDVERIFY', secretAccessKey: SECRET }) {
  const client = new S3Client({
    endpoint,
    region: 'eu-west-3',
    forcePathStyle: true,
    credentials,
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    maxAttempts: 1,
    logger: quietLogger,
  });
  onTestFinished(() => client.destroy());
  const fast: string[] = [];
  const store = new S3ObjectStore(client, 'sig-bucket', {
    transport,
    expectedBucketOwner: '111122223333',
    sseCustomer: { SSECustomerAlgorithm: 'AES256', SSECustomerKey: 'k'.repeat(32) },
    onFastRequest: (op) => fast.push(op),
  });
  return { client, store, fast };
}

const KEYS = ["plain.txt", "d/x y+!'()*é~.txt", 'ünï cødé/ä%20b#c?d=e&f', 'a//b/./c', 'emoji 🙂/$@:,;=[]{}^`|\\'];

async function roundTrip(store: S3ObjectStore): Promise<void> {
  for (const key of KEYS) {
    const body = Buffer.from(`content of ${key}`);
    const md5 = createHash('md5').update(body).digest('hex');
    await store.put({
      key,
      body,
      size: body.length,
      md5,
      contentType: 'text/plain; charset=utf-8',
      mtimeMs: 1_700_000_000_000,
      ifNoneMatch: true,
      params: { Metadata: { team: 'a b' }, CacheControl: 'no-cache', Tagging: 'a=b&c=d', StorageClass: 'STANDARD', Expires: new Date(0) },
    });
    const got = await store.get(key, undefined, { ifMatch: md5 });
    const chunks: Buffer[] = [];
    for await (const c of got.body) chunks.push(c as Buffer);
    expect(Buffer.concat(chunks).equals(body)).toBe(true);
    const range = await store.getRange(key, 1, 3, undefined, { ifNoneMatch: 'f'.repeat(32) });
    range.body.resume();
  }
}

describe('fast path: SigV4 as S3 verifies it', () => {
  it('every fast-path request is signed validly (keys that need encoding, metadata, SSE-C, owner, conditions), and the SDK\'s too', { timeout: 10_000 }, async () => {
    for (const transport of ['auto', 'sdk'] as const) {
      seen.length = 0;
      const { store, fast } = setup(transport);
      await roundTrip(store);
      expect(seen.filter((s) => !s.ok).map((s) => `${s.method} ${s.url}: ${s.why}`)).toEqual([]);
      expect(seen).toHaveLength(KEYS.length * 3);
      expect(fast).toHaveLength(transport === 'auto' ? KEYS.length * 3 : 0);
    }
  });

  it('listings over the fast path are signed validly (a prefix and a continuation token that need encoding), read as the SDK reads them', { timeout: 10_000 }, async () => {
    const listed: Record<string, string[][]> = {};
    for (const transport of ['auto', 'sdk'] as const) {
      const { store, fast } = setup(transport);
      await roundTrip(store);
      seen.length = 0;
      fast.length = 0;
      for (const prefix of ['', 'ünï cødé/', 'emoji 🙂/$@']) {
        const pages: string[][] = [];
        for await (const page of store.list(prefix)) pages.push(page.map((o) => o.key));
        (listed[transport] ??= []).push(...pages, ['--']);
      }
      expect(seen.filter((s) => !s.ok).map((s) => `${s.method} ${s.url}: ${s.why}`)).toEqual([]);
      expect(seen.length).toBeGreaterThan(3); // several pages: the token was sent back
      expect(fast).toEqual(transport === 'auto' ? seen.map(() => 'list') : []);
    }
    expect(listed.auto).toEqual(listed.sdk);
    expect(listed.auto?.flat()).toEqual(expect.arrayContaining([...KEYS, '--']));
  });

  it('session credentials: the security token is sent and signed', { timeout: 10_000 }, async () => {
    seen.length = 0;
    const { store, fast } = setup('auto', { accessKeyId: 'ASIAVERIFY', secretAccessKey: SECRET, sessionToken: 'token/+=' });
    await roundTrip(store);
    expect(seen.every((s) => s.ok && s.headers['x-amz-security-token'] === 'token/+=' && String(s.headers.authorization).includes('x-amz-security-token'))).toBe(true);
    expect(fast).toHaveLength(KEYS.length * 3);
  });

  it("the client's clock offset is honoured (x-amz-date), and a wrong secret is refused: the SDK sends it again and reports it", { timeout: 10_000 }, async () => {
    seen.length = 0;
    const { client, store } = setup('auto');
    (client.config as { systemClockOffset: number }).systemClockOffset = 3_600_000;
    await roundTrip(store);
    const skew = seen.map((s) => Date.parse(s.amzDate.replace(/^(\d{4})(\d\d)(\d\d)T(\d\d)(\d\d)(\d\d)Z$/, '$1-$2-$3T$4:$5:$6Z')) - Date.now());
    expect(Math.min(...skew)).toBeGreaterThan(3_500_000);

    seen.length = 0;
    const wrong = setup('auto', { accessKeyId: 'AKIDVERIFY', secretAccessKey: 'wrong' });
    const e = await wrong.store.put({ key: 'w', body: Buffer.from('x'), size: 1, md5: '9dd4e461268c8034f5c8564e155c67a6', contentType: 'a', mtimeMs: 1 }).catch((x: unknown) => x);
    expect(e).toMatchObject({ name: 'StorageError', code: 'INVALID_CREDENTIALS', statusCode: 403 });
    expect(seen.map((s) => s.ok)).toEqual([false, false]); // the fast path's attempt, then the SDK's
    expect(wrong.fast).toEqual([]);
  });
});
