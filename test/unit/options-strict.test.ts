// The front door: every option of the constructor and of each call is checked
// up front, and a mistake fails at once with a ConfigError that names the
// option and shows the value — never later, inside a request.
import { existsSync } from 'node:fs';
import path from 'node:path';
import { ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { mockClient } from 'aws-sdk-client-mock';
import { describe, expect, it, onTestFinished } from 'vitest';
import { ConfigError, DEFAULT_LOCK_WAIT_MS, DEFAULT_WAIT_FOR_PUSH_MS, S3WorkspaceSync, silentLogger, type S3WorkspaceSyncOptions, type SyncCallOptions } from '../../src/index.js';
import { closestName, describeValue, resolveOptions, validateGuards } from '../../src/options.js';
import { tempDir } from '../helpers/sync-fixture.js';

const MiB = 1024 * 1024;

/** A client that never reaches a network: resolveOptions only checks its shape. */
const client = new S3Client({ region: 'us-east-1', credentials: { accessKeyId: 'x', secretAccessKey: 'y' } });
const base: S3WorkspaceSyncOptions = { bucket: 'my-bucket', prefix: 'users/u1/', workspaceDir: '/tmp/options-strict-ws', s3Client: client, logger: silentLogger };

function configError(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return error as ConfigError;
  }
  throw new Error('expected a ConfigError, nothing was thrown');
}

function refuse(override: Record<string, unknown>): ConfigError {
  return configError(() => resolveOptions({ ...base, ...override } as S3WorkspaceSyncOptions));
}

describe('constructor options: every bad input is a ConfigError naming the option and showing the value', () => {
  // [option, bad value, the value as the message shows it]
  const rows: Array<[string, unknown, string]> = [
    // the examples
    ['bucket', 's3://my-bucket', '"s3://my-bucket"'],
    ['bucket', 'my-bucket/some/prefix', '"my-bucket/some/prefix"'],
    ['logger', {}, 'an object'],
    ['s3Client', {}, 'an object'],
    ['region', '', '""'],
    ['allowEmptyRemote', 'yes', '"yes"'],
    ['overwriteLocalChanges', 1, '1'],
    ['ignorePatterns', [1, 2], '1'],
    // bucket
    ['bucket', '', '""'],
    ['bucket', 'b', '"b"'],
    ['bucket', 'x'.repeat(70), `"${'x'.repeat(63)}…" (70 characters)`],
    ['bucket', 'my bucket', '"my bucket"'],
    ['bucket', ' my-bucket', '" my-bucket"'],
    ['bucket', '-my-bucket', '"-my-bucket"'],
    ['bucket', 'my-bucket.', '"my-bucket."'],
    ['bucket', 'my..bucket', '"my..bucket"'],
    ['bucket', '192.168.0.1', '"192.168.0.1"'],
    ['bucket', 'https://my-bucket.s3.amazonaws.com', '"https://my-bucket.s3.amazonaws.com"'],
    ['bucket', 'arn:', '"arn:"'],
    ['bucket', 'arn:aws:s3:us-east-1:123456789012:accesspoint/my ap', '"arn:aws:s3:us-east-1:123456789012:accesspoint/my ap"'],
    ['bucket', 42, '42'],
    ['bucket', null, 'null'],
    ['bucket', ['my-bucket'], 'an array of 1'],
    // prefix, workspaceDir
    ['prefix', 5, '5'],
    ['prefix', null, 'null'],
    ['prefix', 'a/../b', '"a/../b"'],
    ['prefix', 'a//b', '"a//b"'],
    ['workspaceDir', '', '""'],
    ['workspaceDir', '  ', '"  "'],
    ['workspaceDir', 7, '7'],
    ['workspaceDir', 'ws\0x', '"ws\\u0000x"'],
    // region, s3Client, logger
    ['region', 'eu west 1', '"eu west 1"'],
    ['region', ' eu-west-1', '" eu-west-1"'],
    ['region', 1, '1'],
    ['region', null, 'null'],
    ['s3Client', { region: 'eu-west-1', credentials: { accessKeyId: 'AKIAIOSFODNN7EXAMPLE', secretAccessKey: 'secret' } }, 'an object'],
    ['s3Client', { send: () => undefined }, 'an object'],
    ['s3Client', { config: {} }, 'an object'],
    ['s3Client', 'client', '"client"'],
    ['s3Client', null, 'null'],
    ['logger', { debug: () => undefined, info: () => undefined }, 'an object'],
    ['logger', { debug: 1, info: () => undefined, warn: () => undefined, error: () => undefined }, 'an object'],
    ['logger', 'console', '"console"'],
    ['logger', null, 'null'],
    // numbers: type and documented range
    ['downloadConcurrency', '5', '"5"'],
    ['downloadConcurrency', 0, '0'],
    ['downloadConcurrency', 1001, '1001'],
    ['downloadConcurrency', 2.5, '2.5'],
    ['downloadConcurrency', NaN, 'NaN'],
    ['downloadConcurrency', Infinity, 'Infinity'],
    ['uploadConcurrency', -1, '-1'],
    ['uploadConcurrency', 10n, '10n'],
    ['partConcurrency', 0, '0'],
    ['maxAttempts', 0, '0'],
    ['maxAttempts', '3', '"3"'],
    ['maxDeletes', -1, '-1'],
    ['maxDeletes', 1.5, '1.5'],
    ['maxDeletes', NaN, 'NaN'],
    ['maxDeletes', '10', '"10"'],
    ['maxTotalBytes', -1, '-1'],
    ['maxTotalBytes', '5', '"5"'],
    ['maxTotalBytes', NaN, 'NaN'],
    ['timeoutMs', 0, '0'],
    ['timeoutMs', -5, '-5'],
    ['timeoutMs', Infinity, 'Infinity'],
    ['timeoutMs', 2 ** 31, String(2 ** 31)], // Node's timer would fire at once
    ['timeoutMs', '1000', '"1000"'],
    ['expectedBucketOwner', 'acme', '"acme"'],
    ['expectedBucketOwner', 123456789012, '123456789012'],
    ['expectedBucketOwner', '12345678901', '"12345678901"'],
    ['multipartThreshold', 5 * MiB - 1, String(5 * MiB - 1)],
    ['multipartThreshold', 5 * 1024 ** 3 + 1, String(5 * 1024 ** 3 + 1)],
    ['multipartThreshold', '16MB', '"16MB"'],
    ['partSize', 1024, '1024'],
    ['partSize', 5 * MiB + 0.5, String(5 * MiB + 0.5)],
    ['abortStaleUploadsAfterHours', -1, '-1'],
    ['abortStaleUploadsAfterHours', Infinity, 'Infinity'],
    ['abortStaleUploadsAfterHours', '24', '"24"'],
    ['hashThreads', -1, '-1'],
    ['hashThreads', 65, '65'],
    ['hashThreads', 1.5, '1.5'],
    ['hashThreads', true, 'true'],
    // booleans
    ['allowEmptyRemote', 1, '1'],
    ['overwriteLocalChanges', 'false', '"false"'],
    ['prehashMultipart', 'yes', '"yes"'],
    ['persistState', 'no', '"no"'],
    ['persistState', 0, '0'],
    // lists, functions, directories
    ['ignorePatterns', 'dist/', '"dist/"'],
    ['ignorePatterns', ['dist/', null], 'null'],
    ['ignorePatterns', {}, 'an object'],
    ['contentTypeResolver', 'text/plain', '"text/plain"'],
    ['contentTypeResolver', {}, 'an object'],
    ['stateDir', '', '""'],
    ['stateDir', 3, '3'],
    ['stateDir', '/tmp/options-strict-ws/state', '"/tmp/options-strict-ws/state"'], // inside the workspace: would be synced
  ];

  it.each(rows)('%s = %o', (option, value, shown) => {
    const error = refuse({ [option]: value });
    expect(error.code).toBe('CONFIG');
    expect(error.details).toMatchObject({ option, value: shown });
    expect(error.message).toContain(`\`${option}\``);
    expect(error.message).toContain(`(got ${shown}`);
  });

  it('names the missing logger methods', () => {
    expect(refuse({ logger: { debug: () => undefined, info: () => undefined } }).message).toMatch(/missing: warn, error \(got an object\)/);
    expect(refuse({ logger: {} }).message).toMatch(/missing: debug, info, warn, error/);
  });

  it('says what an S3Client lacks, and recognises client settings passed instead of a client', () => {
    expect(refuse({ s3Client: { send: () => undefined } }).message).toMatch(/missing: config \(got an object\)$/);
    const settings = refuse({ s3Client: { region: 'auto', endpoint: 'https://x.r2.cloudflarestorage.com', credentials: { accessKeyId: 'AKIAIOSFODNN7EXAMPLE', secretAccessKey: 'TOPSECRET' } } });
    expect(settings.message).toMatch(/missing: send\(\), config \(got an object\): these look like client settings: pass new S3Client/);
    // never the object's contents
    expect(settings.message).not.toMatch(/AKIA|TOPSECRET|r2\.cloudflarestorage/);
    expect(JSON.stringify(settings.details)).not.toMatch(/AKIA|TOPSECRET/);
  });

  it('a required option that is missing (or undefined) is named', () => {
    for (const option of ['bucket', 'prefix', 'workspaceDir'] as const) {
      const { [option]: _dropped, ...rest } = base;
      for (const options of [rest, { ...rest, [option]: undefined }]) {
        const error = configError(() => resolveOptions(options as S3WorkspaceSyncOptions));
        expect(error.message).toMatch(new RegExp(`^\`${option}\` is required`));
        expect(error.details).toEqual({ option, value: 'undefined' });
      }
    }
  });

  it('options that are not an object', () => {
    for (const [options, shown] of [[null, 'null'], ['my-bucket', '"my-bucket"'], [[], 'an empty array'], [undefined, 'undefined']] as const) {
      const error = configError(() => resolveOptions(options as unknown as S3WorkspaceSyncOptions));
      expect(error.message).toBe(`\`options\` of new S3WorkspaceSync() must be an object (got ${shown})`);
    }
  });

  it('the constructor throws the same errors (and needs no network or disk for it)', () => {
    expect(() => new S3WorkspaceSync({ ...base, downloadConcurrency: '5' } as unknown as S3WorkspaceSyncOptions)).toThrow(
      '`downloadConcurrency` must be an integer from 1 to 1000 (got "5")',
    );
    expect(() => new S3WorkspaceSync({ ...base, downloadConcurrency: 0 })).toThrow('`downloadConcurrency` must be an integer from 1 to 1000 (got 0)');
    expect(() => new S3WorkspaceSync({ ...base, contentTypeResolver: {} } as unknown as S3WorkspaceSyncOptions)).toThrow('(got an object)');
    expect(() => new S3WorkspaceSync({ ...base, ignorePatterns: () => [] } as unknown as S3WorkspaceSyncOptions)).toThrow('(got a function)');
  });
});

describe('bucket: an S3 URL or bucket/prefix is refused with what to write instead', () => {
  it.each([
    ['s3://my-bucket', '', 'use bucket: "my-bucket"'],
    ['s3://my-bucket', 'users/u1/', 'use bucket: "my-bucket", prefix: "users/u1/"'],
    ['s3://my-bucket/', '', 'use bucket: "my-bucket"'],
    ['S3://my-bucket/some/prefix', '', 'use bucket: "my-bucket", prefix: "some/prefix/"'],
    ['s3a://my-bucket/data/', '', 'use bucket: "my-bucket", prefix: "data/"'],
    ['my-bucket/some/prefix', '', 'use bucket: "my-bucket", prefix: "some/prefix/"'],
    ['my-bucket/', '', 'use bucket: "my-bucket"'],
    ['my-bucket/team', 'users/u1/', 'use bucket: "my-bucket", prefix: "team/users/u1/"'],
    ['s3://my-bucket/team/', '/users/u1', 'use bucket: "my-bucket", prefix: "team/users/u1/"'],
  ])('%s (prefix %j)', (bucket, prefix, hint) => {
    const error = refuse({ bucket, prefix });
    expect(error.message.endsWith(`: ${hint}`)).toBe(true);
    expect(error.message).toContain(`(got ${JSON.stringify(bucket)})`);
  });

  it('the exact messages of the issue', () => {
    expect(refuse({ bucket: 's3://my-bucket', prefix: '' }).message).toBe('`bucket` must be a bucket name, not an S3 URL (got "s3://my-bucket"): use bucket: "my-bucket"');
    expect(refuse({ bucket: 'my-bucket/some/prefix', prefix: '' }).message).toBe(
      '`bucket` must be a bucket name, without a key prefix (got "my-bucket/some/prefix"): use bucket: "my-bucket", prefix: "some/prefix/"',
    );
  });

  it('another URL scheme points to the client endpoint; stray spaces get the trimmed name', () => {
    expect(refuse({ bucket: 'https://minio.local:9000/my-bucket' }).message).toMatch(/not a URL .*endpoint/);
    expect(refuse({ bucket: 'my-bucket ' }).message).toMatch(/: use bucket: "my-bucket"$/);
  });

  it('each naming rule says which one was broken', () => {
    expect(refuse({ bucket: 'ab' }).message).toMatch(/3 to 63 characters/);
    expect(refuse({ bucket: 'my+bucket' }).message).toMatch(/only letters, digits, dots/);
    expect(refuse({ bucket: '-bucket' }).message).toMatch(/start and end with a letter or a digit/);
    expect(refuse({ bucket: 'a..b' }).message).toMatch(/two dots in a row/);
    expect(refuse({ bucket: '10.0.0.1' }).message).toMatch(/IP address/);
  });
});

describe('unknown options', () => {
  it.each([
    ['downloadConcurency', 'Unknown option "downloadConcurency" (did you mean "downloadConcurrency"?)'],
    ['DownloadConcurrency', 'Unknown option "DownloadConcurrency" (did you mean "downloadConcurrency"?)'],
    ['WORKSPACEDIR', 'Unknown option "WORKSPACEDIR" (did you mean "workspaceDir"?)'],
    ['maxDelete', 'Unknown option "maxDelete" (did you mean "maxDeletes"?)'],
    ['hashThread', 'Unknown option "hashThread" (did you mean "hashThreads"?)'],
    ['regoin', 'Unknown option "regoin" (did you mean "region"?)'],
    ['s3client', 'Unknown option "s3client" (did you mean "s3Client"?)'],
    ['ignorePattern', 'Unknown option "ignorePattern" (did you mean "ignorePatterns"?)'],
    ['client', 'Unknown option "client" (did you mean "s3Client"?)'],
    ['clientOptions', 'Unknown option "clientOptions"'],
    ['endpoint', 'Unknown option "endpoint"'],
    ['dryRun', 'Unknown option "dryRun" (it is an option of pull(), push() and plan())'],
    ['priority', 'Unknown option "priority" (it is an option of pull(), push() and plan())'],
  ])('%s', (key, message) => {
    const error = refuse({ [key]: 5 });
    expect(error.message).toBe(message);
    expect(error.details).toEqual({ option: key, value: '5' });
  });

  it('all unknown keys are listed in one message', () => {
    expect(refuse({ foo: 1, downloadConcurency: 2 }).message).toBe('Unknown option "foo"; unknown option "downloadConcurency" (did you mean "downloadConcurrency"?)');
  });

  it('an unknown key is reported before the other checks (a misspelt required option is not just "missing")', () => {
    const { bucket: _b, ...rest } = base;
    expect(configError(() => resolveOptions({ ...rest, buckt: 'my-bucket' } as unknown as S3WorkspaceSyncOptions)).message).toBe(
      'Unknown option "buckt" (did you mean "bucket"?)',
    );
  });

  it('closestName: a case-insensitive match, else the nearest within two edits', () => {
    const names = ['downloadConcurrency', 'uploadConcurrency', 'partConcurrency', 'region', 'prefix'];
    expect(closestName('downloadconcurrency', names)).toBe('downloadConcurrency');
    expect(closestName('uploadConcurency', names)).toBe('uploadConcurrency');
    expect(closestName('prefx', names)).toBe('prefix');
    expect(closestName('pefx', names)).toBe('prefix'); // two edits
    expect(closestName('pfx', names)).toBeUndefined(); // three
    expect(closestName('concurrency', names)).toBeUndefined();
    expect(closestName('', names)).toBeUndefined();
  });
});

describe('accepted', () => {
  it('keys whose value is undefined count as absent (spread configs), unknown ones included', () => {
    const spread: Record<string, undefined> = {};
    for (const key of [
      'region', 's3Client', 'downloadConcurrency', 'uploadConcurrency', 'logger', 'ignorePatterns', 'contentTypeResolver', 'maxDeletes',
      'maxTotalBytes', 'allowEmptyRemote', 'overwriteLocalChanges', 'maxAttempts', 'timeoutMs', 'expectedBucketOwner', 'multipartThreshold',
      'partSize', 'partConcurrency', 'abortStaleUploadsAfterHours', 'hashThreads', 'prehashMultipart', 'persistState', 'stateDir',
      'downloadConcurency', 'notAnOption',
    ]) {
      spread[key] = undefined;
    }
    const r = resolveOptions({ bucket: 'my-bucket', prefix: '', workspaceDir: '/tmp/ws', ...spread });
    expect(r).toMatchObject({ bucket: 'my-bucket', prefix: '', downloadConcurrency: 50, uploadConcurrency: 10, maxAttempts: 3, ownsClient: true, allowEmptyRemote: false });
    r.client.destroy();
  });

  it('the README examples', () => {
    // Quick start
    const own = resolveOptions({ bucket: 'my-agent-workspaces', prefix: 'users/u-42/workspace/', workspaceDir: '/tmp/workspace' });
    expect(own.ownsClient).toBe(true);
    own.client.destroy();
    // R2 and MinIO
    const r2 = new S3Client({
      region: 'auto',
      endpoint: 'https://0123456789abcdef.r2.cloudflarestorage.com',
      credentials: { accessKeyId: 'a', secretAccessKey: 'b' },
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
    });
    const minio = new S3Client({ region: 'us-east-1', endpoint: 'http://minio.internal:9000', forcePathStyle: true, credentials: { accessKeyId: 'a', secretAccessKey: 'b' } });
    expect(resolveOptions({ bucket: 'workspaces', prefix: 'ws/', workspaceDir: '/tmp/ws', s3Client: r2 }).client).toBe(r2);
    expect(resolveOptions({ bucket: 'workspaces', prefix: 'ws/', workspaceDir: '/tmp/ws', s3Client: minio }).client).toBe(minio);
  });

  it.each(['overwrite', 'keep-both ', '', 1, null])('conflictPolicy: %o is refused, per instance and per call', async (v) => {
    expect(() => resolveOptions({ ...base, conflictPolicy: v } as unknown as S3WorkspaceSyncOptions)).toThrow(/conflictPolicy.*'fail', 'keep-local'/);
    expect(() => validateGuards({ conflictPolicy: v } as unknown as SyncCallOptions)).toThrow(ConfigError);
  });

  it('conflictPolicy defaults to fail', () => {
    expect(resolveOptions(base as S3WorkspaceSyncOptions).conflictPolicy).toBe('fail');
  });

  it('lockWaitMs defaults to DEFAULT_LOCK_WAIT_MS (60 s)', () => {
    expect(DEFAULT_LOCK_WAIT_MS).toBe(60_000);
    expect(resolveOptions(base as S3WorkspaceSyncOptions).lockWaitMs).toBe(DEFAULT_LOCK_WAIT_MS);
  });

  it.each([-1, 1.5, Infinity, NaN, 2_147_483_648, '1000'])('lockWaitMs: %o is refused with a ConfigError naming the option', (v) => {
    expect(() => resolveOptions({ ...base, lockWaitMs: v } as unknown as S3WorkspaceSyncOptions)).toThrow(/lockWaitMs/);
    expect(() => resolveOptions({ ...base, lockWaitMs: v } as unknown as S3WorkspaceSyncOptions)).toThrow(ConfigError);
  });

  it('waitForPushMs defaults to DEFAULT_WAIT_FOR_PUSH_MS (60 s); trustManifest to false', () => {
    expect(DEFAULT_WAIT_FOR_PUSH_MS).toBe(60_000);
    expect(resolveOptions(base as S3WorkspaceSyncOptions)).toMatchObject({ waitForPushMs: DEFAULT_WAIT_FOR_PUSH_MS, trustManifest: false });
  });

  it.each([-1, 1.5, Infinity, NaN, 2_147_483_648, '1000'])('waitForPushMs: %o is refused with a ConfigError naming the option', (v) => {
    expect(() => resolveOptions({ ...base, waitForPushMs: v } as unknown as S3WorkspaceSyncOptions)).toThrow(/waitForPushMs/);
    expect(() => resolveOptions({ ...base, waitForPushMs: v } as unknown as S3WorkspaceSyncOptions)).toThrow(ConfigError);
  });

  it("transport defaults to 'auto'; only 'auto' and 'sdk' are accepted", () => {
    expect(resolveOptions(base as S3WorkspaceSyncOptions).transport).toBe('auto');
    expect(resolveOptions({ ...base, transport: 'sdk' } as S3WorkspaceSyncOptions).transport).toBe('sdk');
    for (const v of ['fast', 'SDK', true, 1]) {
      expect(() => resolveOptions({ ...base, transport: v } as unknown as S3WorkspaceSyncOptions)).toThrow(/transport.*'auto', 'sdk'/);
    }
  });

  it("git defaults to 'off' and gitBinary to 'git'; other values are refused with a ConfigError naming the option", () => {
    expect(resolveOptions(base as S3WorkspaceSyncOptions)).toMatchObject({ git: 'off', gitBinary: 'git' });
    expect(resolveOptions({ ...base, git: 'bundle', gitBinary: 'git2' } as S3WorkspaceSyncOptions)).toMatchObject({ git: 'bundle', gitBinary: 'git2' });
    for (const v of ['on', 'Bundle', true, 1, null]) {
      expect(() => resolveOptions({ ...base, git: v } as unknown as S3WorkspaceSyncOptions)).toThrow(/`git` must be one of 'off', 'bundle'/);
      expect(() => resolveOptions({ ...base, git: v } as unknown as S3WorkspaceSyncOptions)).toThrow(ConfigError);
    }
    for (const v of ['', '  ', 'git\nrm', 3, {}]) {
      expect(() => resolveOptions({ ...base, gitBinary: v } as unknown as S3WorkspaceSyncOptions)).toThrow(/gitBinary/);
    }
  });

  it('trustManifest must be a boolean', () => {
    expect(() => resolveOptions({ ...base, trustManifest: 'yes' } as unknown as S3WorkspaceSyncOptions)).toThrow(/trustManifest/);
  });

  it('every option at documented values, the range limits included', () => {
    const every: Required<{ [K in keyof S3WorkspaceSyncOptions]: Exclude<S3WorkspaceSyncOptions[K], undefined> }> = {
      bucket: 'my.bucket-1',
      prefix: '/users/u1',
      workspaceDir: 'relative/ws',
      region: 'eu-west-3',
      s3Client: client,
      downloadConcurrency: 1000,
      uploadConcurrency: 1,
      logger: console,
      ignorePatterns: ['dist/', '!dist/keep', '*.log'] as const,
      contentTypeResolver: () => 'application/octet-stream',
      maxDeletes: 0,
      maxTotalBytes: 0,
      allowEmptyRemote: true,
      overwriteLocalChanges: true,
      maxAttempts: 1000,
      timeoutMs: 2_147_483_647,
      expectedBucketOwner: '123456789012',
      multipartThreshold: 5 * 1024 ** 3,
      partSize: 5 * MiB,
      partConcurrency: 1000,
      abortStaleUploadsAfterHours: 0,
      hashThreads: 64,
      prehashMultipart: true,
      persistState: true,
      stateDir: '/var/tmp/ws-state',
      uploadParams: ({ path }) => (path.endsWith('.log') ? { StorageClass: 'STANDARD_IA' } : undefined),
      sseCustomerKey: 'k'.repeat(32),
      stallTimeoutMs: 3_600_000,
      lockWaitMs: 2_147_483_647,
      conflictPolicy: 'keep-local',
      requireConditionalWrites: true,
      waitForPushMs: 2_147_483_647,
      trustManifest: true,
      transport: 'auto',
      git: 'bundle',
      gitBinary: '/usr/local/bin/git',
    };
    const r = resolveOptions(every);
    expect(r).toMatchObject({ prefix: 'users/u1/', workspaceDir: path.resolve('relative/ws'), hashThreads: 64, stateDir: '/var/tmp/ws-state', maxTotalBytes: 0, lockWaitMs: 2_147_483_647, waitForPushMs: 2_147_483_647, trustManifest: true, transport: 'auto', git: 'bundle', gitBinary: '/usr/local/bin/git' });
    expect(r.ignorePatterns).toEqual(['dist/', '!dist/keep', '*.log']);
  });

  it.each([
    [{ lockWaitMs: 0 }],
    [{ maxDeletes: 0.5 }],
    [{ maxDeletes: Infinity }],
    [{ maxDeletes: 10_000 }],
    [{ maxTotalBytes: Infinity }],
    [{ maxTotalBytes: 1.5e12 }],
    [{ hashThreads: 0 }],
    [{ partSize: 5 * 1024 ** 3, multipartThreshold: 5 * MiB }],
    [{ timeoutMs: 1 }],
    [{ timeoutMs: 0.5 }],
    [{ abortStaleUploadsAfterHours: 0.5 }],
    [{ persistState: false }],
    [{ persistState: false, stateDir: '/tmp/options-strict-ws/anything' }], // ignored without a state file
    [{ stateDir: '/tmp/options-strict-ws/.s3-workspace-sync/custom' }],
    [{ region: 'auto' }],
    [{ logger: silentLogger }],
    [{ logger: new (class {
      debug(): void {}
      info(): void {}
      warn(): void {}
      error(): void {}
    })() }], // methods on the prototype (pino, winston)
    [{ ignorePatterns: [] }],
    [{ prefix: '' }],
    [{ prefix: '/' }],
  ])('%o', (override) => {
    expect(() => resolveOptions({ ...base, ...override } as S3WorkspaceSyncOptions)).not.toThrow();
  });

  it.each([
    'abc',
    'a'.repeat(63),
    'my.bucket.name',
    'my-bucket-2024',
    '123bucket',
    'My_Legacy_Bucket', // pre-2018 us-east-1 names; MinIO's request check accepts them too
    'my-ap-abc123xyz-s3alias', // access point alias
    'my-olap-abc123--ol-s3', // Object Lambda access point alias
    'bucket-base-name--usw2-az1--x-s3', // S3 Express directory bucket
    'arn:aws:s3:us-west-2:123456789012:accesspoint/my-ap',
    'arn:aws:s3-object-lambda:us-west-2:123456789012:accesspoint/my-olap',
    'arn:aws:s3-outposts:us-west-2:123456789012:outpost/op-01234567890123456/accesspoint/my-ap',
    'arn:aws-cn:s3:cn-north-1:123456789012:accesspoint/ap',
  ])('bucket %s', (bucket) => {
    expect(resolveOptions({ ...base, bucket }).bucket).toBe(bucket);
  });

  it('an empty AWS_REGION falls back to us-east-1 instead of building a client without a region', () => {
    const saved = process.env.AWS_REGION;
    try {
      process.env.AWS_REGION = '';
      const r = resolveOptions({ bucket: 'my-bucket', prefix: '', workspaceDir: '/w' });
      expect(r.region).toBe('us-east-1');
      r.client.destroy();
    } finally {
      if (saved === undefined) delete process.env.AWS_REGION;
      else process.env.AWS_REGION = saved;
    }
  });

  it('ignorePatterns is copied: changing the array afterwards changes nothing', () => {
    const patterns = ['dist/'];
    const r = resolveOptions({ ...base, ignorePatterns: patterns });
    patterns.push('*');
    expect(r.ignorePatterns).toEqual(['dist/']);
  });
});

describe('describeValue: what a message may show of a value', () => {
  it.each([
    ['5', '"5"'],
    ['', '""'],
    ['a"b', '"a\\"b"'],
    ['tab\there', '"tab\\there"'],
    ['\u0085', '"\\u0085"'],
    ['aws_secret_access_key=abc123', '"aws_secret_access_key=[redacted]"'],
    ['AKIAIOSFODNN7EXAMPLE', '"[redacted-access-key]"'],
    ['y'.repeat(100), `"${'y'.repeat(63)}…" (100 characters)`],
    [0, '0'],
    [-0, '-0'],
    [1.5, '1.5'],
    [NaN, 'NaN'],
    [-Infinity, '-Infinity'],
    [12n, '12n'],
    [true, 'true'],
    [undefined, 'undefined'],
    [null, 'null'],
    [Symbol('s'), 'a symbol'],
    [() => 1, 'a function'],
    [class {}, 'a function'],
    [[], 'an empty array'],
    [['a', 'b'], 'an array of 2'],
    [{ secretAccessKey: 'TOPSECRET' }, 'an object'],
    [new Date(0), 'an object'],
  ])('%o → %s', (value, shown) => {
    expect(describeValue(value)).toBe(shown);
  });
});

describe('per-call options: checked before the call makes any request', () => {
  function setup() {
    const mocked = new S3Client({ region: 'us-east-1', credentials: { accessKeyId: 'x', secretAccessKey: 'y' } });
    const s3 = mockClient(mocked);
    s3.on(ListObjectsV2Command).resolves({ IsTruncated: false, Contents: [] });
    onTestFinished(() => {
      s3.restore();
      mocked.destroy();
    });
    return { s3, mocked };
  }

  // [option, bad value, the value as shown]
  const rows: Array<[string, unknown, string]> = [
    ['maxDeletes', -1, '-1'],
    ['maxDeletes', '5', '"5"'],
    ['maxTotalBytes', -1, '-1'],
    ['maxTotalBytes', '1000', '"1000"'],
    ['allowEmptyRemote', 'yes', '"yes"'],
    ['overwriteLocalChanges', 1, '1'],
    ['dryRun', 'true', '"true"'],
    ['signal', {}, 'an object'],
    ['signal', true, 'true'],
    ['priority', 'config/', '"config/"'],
    ['priority', ['config/', 3], '3'],
  ];

  it.each(rows)('pull/push/plan({ %s: %o }) reject with a ConfigError, no request made, no directory created', async (option, value, shown) => {
    const { s3, mocked } = setup();
    const ws = path.join(await tempDir(), 'not-yet');
    const sync = new S3WorkspaceSync({ bucket: 'my-bucket', prefix: 'p/', workspaceDir: ws, s3Client: mocked, logger: silentLogger });
    const call = { [option]: value } as SyncCallOptions;
    const runs: Array<() => Promise<unknown>> = [() => sync.pull(call), () => sync.push(call)];
    if (option !== 'dryRun') runs.push(() => sync.plan('pull', call)); // plan() sets dryRun itself
    for (const run of runs) {
      const error = await run().then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(ConfigError);
      expect((error as ConfigError).details).toMatchObject({ option, value: shown });
      expect((error as ConfigError).message).toContain(`\`${option}\``);
      expect((error as ConfigError).message).toContain(`(got ${shown}`);
    }
    expect(s3.calls()).toHaveLength(0);
    expect(existsSync(ws)).toBe(false);
  });

  it('sync.pull({ maxDeletes: -1 }): the exact message', async () => {
    const { s3, mocked } = setup();
    const sync = new S3WorkspaceSync({ bucket: 'my-bucket', prefix: 'p/', workspaceDir: await tempDir(), s3Client: mocked, logger: silentLogger });
    await expect(sync.pull({ maxDeletes: -1 })).rejects.toThrow(
      '`maxDeletes` must be a count (integer >= 0), a fraction between 0 and 1, or Infinity (got -1)',
    );
    expect(s3.calls()).toHaveLength(0);
  });

  it('unknown per-call keys: did you mean, or where they belong', async () => {
    const { s3, mocked } = setup();
    const sync = new S3WorkspaceSync({ bucket: 'my-bucket', prefix: 'p/', workspaceDir: await tempDir(), s3Client: mocked, logger: silentLogger });
    await expect(sync.pull({ maxDelete: 3 } as SyncCallOptions)).rejects.toThrow('Unknown option "maxDelete" (did you mean "maxDeletes"?)');
    await expect(sync.push({ dryrun: true } as SyncCallOptions)).rejects.toThrow('Unknown option "dryrun" (did you mean "dryRun"?)');
    await expect(sync.pull({ timeoutMs: 1000 } as SyncCallOptions)).rejects.toThrow('Unknown option "timeoutMs" (it is an option of new S3WorkspaceSync())');
    await expect(sync.pull(null as unknown as SyncCallOptions)).rejects.toThrow('`options` of pull(), push() and plan() must be an object (got null)');
    expect(s3.calls()).toHaveLength(0);
  });

  it('a background pull with a bad option fails with the ConfigError, delivered to waitForPull(), no request made', async () => {
    const { s3, mocked } = setup();
    const sync = new S3WorkspaceSync({ bucket: 'my-bucket', prefix: 'p/', workspaceDir: await tempDir(), s3Client: mocked, logger: silentLogger });
    sync.startBackgroundPull({ allowEmptyRemote: 'yes' } as unknown as SyncCallOptions);
    await expect(sync.waitForPull()).rejects.toThrow('`allowEmptyRemote` must be true or false (got "yes")');
    expect(s3.calls()).toHaveLength(0);
  });

  it('a client pointed at a closed port: the ConfigError comes first, not a network error', async () => {
    const unreachable = new S3Client({ region: 'us-east-1', endpoint: 'http://127.0.0.1:1', forcePathStyle: true, maxAttempts: 1, credentials: { accessKeyId: 'x', secretAccessKey: 'y' } });
    onTestFinished(() => unreachable.destroy());
    const sync = new S3WorkspaceSync({ bucket: 'my-bucket', prefix: 'p/', workspaceDir: await tempDir(), s3Client: unreachable, logger: silentLogger });
    await expect(sync.pull({ maxDeletes: -1 })).rejects.toBeInstanceOf(ConfigError);
    await expect(sync.pull({ overwriteLocalChanges: 'no' } as unknown as SyncCallOptions)).rejects.toBeInstanceOf(ConfigError);
  });

  it('valid per-call options, undefined-valued keys included, go through', async () => {
    const { s3, mocked } = setup();
    const sync = new S3WorkspaceSync({ bucket: 'my-bucket', prefix: 'p/', workspaceDir: await tempDir(), s3Client: mocked, logger: silentLogger });
    const ac = new AbortController();
    const result = await sync.pull({
      signal: ac.signal,
      dryRun: false,
      maxDeletes: 0.25,
      maxTotalBytes: Infinity,
      allowEmptyRemote: true,
      overwriteLocalChanges: false,
      priority: ['config/', 'AGENTS.md'],
    });
    expect(result.success).toBe(true);
    await sync.push({ maxDeletes: undefined, signal: undefined, priority: undefined, notAnOption: undefined } as SyncCallOptions);
    await sync.plan('pull', { maxDeletes: Infinity });
    expect(s3.commandCalls(ListObjectsV2Command).length).toBeGreaterThan(0);
  });

  it('validateGuards returns the guard overrides', () => {
    expect(validateGuards({})).toEqual({ maxDeletes: undefined, maxTotalBytes: undefined });
    expect(validateGuards({ maxDeletes: 0.1, maxTotalBytes: 0 })).toEqual({ maxDeletes: 0.1, maxTotalBytes: 0 });
  });
});
