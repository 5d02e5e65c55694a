/**
 * The tools `npm run bench` compares, each run as a whole process per sync:
 *
 *   lib     this library, built (dist/index.js) and run on plain node by bench/lib-child.mjs
 *   libsdk  the same with `transport: 'sdk'` (every request through the SDK's `client.send()`)
 *   rclone  /usr/bin/rclone `sync` (apt-get install rclone)
 *   aws     /usr/bin/aws (aws-cli v2) `s3 sync --delete` (apt-get install awscli)
 *   sdk     the plain-SDK ceiling, bench/sdk-child.mjs: parallel put/get, no diffing (cold push and cold pull only)
 *
 * Every tool is pointed at the same endpoint (the counting proxy), with
 * s3rver's fixed credentials, path-style addressing and the same concurrency.
 */
import { execFile } from 'node:child_process';
import { access, constants, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export type ToolId = 'lib' | 'libsdk' | 'rclone' | 'aws' | 'sdk';
export type Op = 'push' | 'pull';

export interface SyncTarget {
  endpoint: string;
  bucket: string;
  /** Key prefix without a trailing slash. */
  prefix: string;
  /** The local directory: the source of a push, the destination of a pull. */
  dir: string;
}

export interface Command {
  file: string;
  args: string[];
  env: NodeJS.ProcessEnv;
}

export interface Tool {
  id: ToolId;
  label: string;
  /** Is it a peer (counts for "best peer")? */
  peer: boolean;
  /** Version string, or throws with the reason it cannot run. */
  probe(): Promise<string>;
  command(op: Op, t: SyncTarget): Command;
  /** The options this tool runs with, for the results file. */
  describe(op: Op): string;
}

export interface ToolSettings {
  concurrency: number;
  sdkInFlight: number;
  /** Scratch directory for generated config files. */
  workDir: string;
  /** Path of the built library (dist/index.js). */
  libEntry: string;
  /** Pass `--checksum` to rclone (compare size + MD5 instead of size + modtime). */
  rcloneChecksum: boolean;
  /** Pass `--exact-timestamps` to aws s3 sync on pulls (re-download same-size objects whose time differs). */
  awsExactTimestamps: boolean;
}

const HERE = import.meta.dirname;
const RCLONE = '/usr/bin/rclone';
const AWS = '/usr/bin/aws';

async function executable(path: string, install: string): Promise<void> {
  try {
    await access(path, constants.X_OK);
  } catch {
    throw new Error(`${path} not found (${install})`);
  }
}

/** A minimal environment: no user config, credentials or proxies leak into a measured process. */
function baseEnv(): NodeJS.ProcessEnv {
  const keep = ['PATH', 'HOME', 'LANG', 'LC_ALL', 'TMPDIR', 'TZ'];
  const env: NodeJS.ProcessEnv = {};
  for (const k of keep) if (process.env[k] !== undefined) env[k] = process.env[k];
  return env;
}

export async function makeTools(s: ToolSettings): Promise<Record<ToolId, Tool>> {
  const awsConfig = join(s.workDir, 'aws-config');
  const awsCredentials = join(s.workDir, 'aws-credentials');
  const rcloneConfig = join(s.workDir, 'rclone.conf');
  await writeFile(awsConfig, `[default]\ns3 =\n  max_concurrent_requests = ${s.concurrency}\n`);
  await writeFile(awsCredentials, '');
  await writeFile(rcloneConfig, '');

  const lib: Tool = {
    id: 'lib',
    label: 's3-workspace-sync',
    peer: false,
    probe: async () => {
      await access(s.libEntry).catch(() => {
        throw new Error(`${s.libEntry} not found: run \`npm run build\` first`);
      });
      const pkg = JSON.parse(await readFile(join(HERE, '..', 'package.json'), 'utf8')) as { version: string };
      return `s3-workspace-sync ${pkg.version} (${s.libEntry})`;
    },
    command: (op, t) => ({
      file: process.execPath,
      args: [
        join(HERE, 'lib-child.mjs'),
        JSON.stringify({ op, endpoint: t.endpoint, bucket: t.bucket, prefix: t.prefix, dir: t.dir, concurrency: s.concurrency, lib: s.libEntry }),
      ],
      env: baseEnv(),
    }),
    describe: (op) =>
      `node bench/lib-child.mjs: new S3WorkspaceSync({ bucket, prefix, workspaceDir, s3Client }).${op}() with ${op === 'push' ? 'uploadConcurrency' : 'downloadConcurrency'} ${s.concurrency}, other options default; client: path style, checksums WHEN_REQUIRED, keep-alive agent of ${s.concurrency + 8} sockets`,
  };

  const libsdk: Tool = {
    ...lib,
    id: 'libsdk',
    label: 's3-workspace-sync (sdk)',
    command: (op, t) => ({
      file: process.execPath,
      args: [
        join(HERE, 'lib-child.mjs'),
        JSON.stringify({
          op,
          endpoint: t.endpoint,
          bucket: t.bucket,
          prefix: t.prefix,
          dir: t.dir,
          concurrency: s.concurrency,
          lib: s.libEntry,
          options: { transport: 'sdk' },
        }),
      ],
      env: baseEnv(),
    }),
    describe: (op) => `${lib.describe(op)}; transport: 'sdk'`,
  };

  const rcloneFlags = (): string[] => [
    '--transfers',
    String(s.concurrency),
    '--checkers',
    String(s.concurrency),
    '--fast-list',
    ...(s.rcloneChecksum ? ['--checksum'] : []),
    '-q',
  ];
  const rclone: Tool = {
    id: 'rclone',
    label: 'rclone',
    peer: true,
    probe: async () => {
      await executable(RCLONE, 'apt-get install rclone');
      const { stdout } = await run(RCLONE, ['version'], { env: { ...baseEnv(), RCLONE_CONFIG: rcloneConfig } });
      return stdout.split('\n')[0]?.trim() ?? 'rclone';
    },
    command: (op, t) => {
      const remote = `bench:${t.bucket}/${t.prefix}`;
      return {
        file: RCLONE,
        args: ['sync', ...(op === 'push' ? [t.dir, remote] : [remote, t.dir]), ...rcloneFlags()],
        env: {
          ...baseEnv(),
          RCLONE_CONFIG: rcloneConfig,
          RCLONE_CONFIG_BENCH_TYPE: 's3',
          RCLONE_CONFIG_BENCH_PROVIDER: 'Other',
          RCLONE_CONFIG_BENCH_ENDPOINT: t.endpoint,
          RCLONE_CONFIG_BENCH_REGION: 'us-east-1',
          RCLONE_CONFIG_BENCH_ACCESS_KEY_ID: 'S3RVER',
          RCLONE_CONFIG_BENCH_SECRET_ACCESS_KEY: 'S3RVER',
          RCLONE_CONFIG_BENCH_FORCE_PATH_STYLE: 'true',
          // The bucket exists (the harness creates it); the library does not check either.
          RCLONE_CONFIG_BENCH_NO_CHECK_BUCKET: 'true',
        },
      };
    },
    describe: (op) =>
      `rclone sync ${op === 'push' ? 'DIR bench:BUCKET/PREFIX' : 'bench:BUCKET/PREFIX DIR'} ${rcloneFlags().join(' ')} (remote from env: type s3, provider Other, force_path_style, no_check_bucket; other backend options default: upload_cutoff 200 MiB, chunk_size 5 MiB, upload_concurrency 4)`,
  };

  const awsArgs = (op: Op, t: SyncTarget): string[] => {
    const remote = `s3://${t.bucket}/${t.prefix}/`;
    const exact = op === 'pull' && s.awsExactTimestamps ? ['--exact-timestamps'] : [];
    return ['s3', 'sync', ...(op === 'push' ? [t.dir, remote] : [remote, t.dir]), '--delete', ...exact, '--endpoint-url', t.endpoint, '--no-progress', '--only-show-errors'];
  };
  const aws: Tool = {
    id: 'aws',
    label: 'aws-cli',
    peer: true,
    probe: async () => {
      await executable(AWS, 'apt-get install awscli');
      const { stdout, stderr } = await run(AWS, ['--version'], { env: baseEnv() });
      const version = (stdout || stderr).trim();
      if (!/^aws-cli\/2\./.test(version)) throw new Error(`${AWS} is ${version || 'unknown'}, not aws-cli v2`);
      return version;
    },
    command: (op, t) => ({
      file: AWS,
      args: awsArgs(op, t),
      env: {
        ...baseEnv(),
        AWS_ACCESS_KEY_ID: 'S3RVER',
        AWS_SECRET_ACCESS_KEY: 'S3RVER',
        AWS_DEFAULT_REGION: 'us-east-1',
        AWS_CONFIG_FILE: awsConfig,
        AWS_SHARED_CREDENTIALS_FILE: awsCredentials,
        AWS_EC2_METADATA_DISABLED: 'true',
        AWS_PAGER: '',
      },
    }),
    describe: (op) =>
      `aws s3 sync ${op === 'push' ? 'DIR s3://BUCKET/PREFIX/' : 's3://BUCKET/PREFIX/ DIR'} --delete${op === 'pull' && s.awsExactTimestamps ? ' --exact-timestamps' : ''} --endpoint-url URL --no-progress --only-show-errors (config: s3.max_concurrent_requests = ${s.concurrency}; multipart defaults: threshold 8 MiB, chunk 8 MiB)`,
  };

  const sdk: Tool = {
    id: 'sdk',
    label: 'plain SDK (ceiling)',
    peer: false,
    probe: async () => {
      const pkg = JSON.parse(await readFile(join(HERE, '..', 'node_modules', '@aws-sdk', 'client-s3', 'package.json'), 'utf8')) as { version: string };
      return `@aws-sdk/client-s3 ${pkg.version}`;
    },
    command: (op, t) => ({
      file: process.execPath,
      args: [join(HERE, 'sdk-child.mjs'), JSON.stringify({ op, endpoint: t.endpoint, bucket: t.bucket, prefix: t.prefix, dir: t.dir, inFlight: s.sdkInFlight })],
      env: baseEnv(),
    }),
    describe: (op) =>
      `node bench/sdk-child.mjs: ${op === 'push' ? 'walk the tree, PutObject every file (Buffer body)' : 'list the prefix, GetObject every object'}, ${s.sdkInFlight} in flight, no diffing, no hashing; files ≥ 16 MiB as 8 MiB parts / ranges in the same pool`,
  };

  return { lib, libsdk, rclone, aws, sdk };
}
