/** Options for {@link startLocalS3}. */
export interface StartLocalS3Options {
  /** Buckets to create before the server starts listening (valid S3 bucket names). */
  buckets?: string[];
}

/** A running local S3 server (s3rver in a child process). */
export interface LocalS3 {
  /** Base URL for the S3 client's `endpoint`, e.g. `http://127.0.0.1:41577` (use `forcePathStyle: true`). */
  endpoint: string;
  /** The TCP port the server listens on (127.0.0.1). */
  port: number;
  /** The server's temporary storage directory; deleted when the server stops. */
  directory: string;
  /** Stop the server and wait for its process to exit. Idempotent. */
  stop(): Promise<void>;
}

/**
 * Start s3rver on 127.0.0.1 with an OS-assigned port and a fresh temporary
 * directory, in a child process run with `process.execPath --openssl-legacy-provider`.
 * Credentials: access key `S3RVER`, secret `S3RVER`. Rejects if the server is not
 * ready within 15 s, with the child's stderr in the message.
 */
export declare function startLocalS3(options?: StartLocalS3Options): Promise<LocalS3>;
