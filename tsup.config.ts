import { defineConfig } from 'tsup';

export default defineConfig({
  // Two entries: the package root, and `s3-workspace-sync/utils` (the parts
  // of the API that never load @aws-sdk; see src/utils.ts).
  entry: ['src/index.ts', 'src/utils.ts'],
  format: ['esm', 'cjs'],
  // `@internal` declarations (test seams) stay out of the published types
  dts: { compilerOptions: { stripInternal: true } },
  sourcemap: true,
  clean: true,
  target: 'node20',
  platform: 'node',
  // p-limit (and its yocto-queue) ship as ESM only; bundling them keeps
  // `require('s3-workspace-sync')` working on every Node >= 20 without relying
  // on require(esm).
  noExternal: ['p-limit', 'yocto-queue'],
});
