import type { SyncLogger } from './types.js';

/**
 * The default logger: `info`, `warn` and `error` go to the console with a
 * `[s3-workspace-sync]` prefix; `debug` is dropped unless the environment
 * variable `S3_WORKSPACE_SYNC_DEBUG` is set. One line per sync at `info`.
 */
export function createDefaultLogger(env: NodeJS.ProcessEnv = process.env): SyncLogger {
  const tag = '[s3-workspace-sync]';
  const debugOn = Boolean(env.S3_WORKSPACE_SYNC_DEBUG);
  return {
    debug: debugOn ? (message, ...args) => console.debug(tag, message, ...args) : () => undefined,
    info: (message, ...args) => console.info(tag, message, ...args),
    warn: (message, ...args) => console.warn(tag, message, ...args),
    error: (message, ...args) => console.error(tag, message, ...args),
  };
}

/** A logger that drops everything. */
export const silentLogger: SyncLogger = {
  debug: () => undefined,
  info: () => undefined,
  warn: () => undefined,
  error: () => undefined,
};
