/**
 * Types of the library's public API, as the command line sees them. The CLI
 * loads the library at run time (`import('../index.js')`, see main.ts), after
 * checking that its peer dependency is installed, so it takes only types from
 * it statically.
 */
export type Library = typeof import('../index.js');
export type S3WorkspaceSyncOptions = import('../index.js').S3WorkspaceSyncOptions;
export type S3WorkspaceSync = import('../index.js').S3WorkspaceSync;
export type SyncResult = import('../index.js').SyncResult;
export type SyncPlan = import('../index.js').SyncPlan;
export type SyncProgress = import('../index.js').SyncProgress;
export type VerifyReport = import('../index.js').VerifyReport;
export type SyncLogger = import('../index.js').SyncLogger;
export type UploadParams = import('../index.js').UploadParams;
export type SyncWatcher = import('../index.js').SyncWatcher;
export type WatchOptions = import('../index.js').WatchOptions;
export type WatchPushInfo = import('../index.js').WatchPushInfo;

/** Load the library (the package's own ESM build once bundled: tsup.config.ts rewrites the path). */
export function loadLibrary(): Promise<Library> {
  return import('../index.js');
}
