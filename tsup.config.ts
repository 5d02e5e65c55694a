import { readFileSync } from 'node:fs';

import { defineConfig, type Options } from 'tsup';

const { version } = JSON.parse(readFileSync(new URL('./package.json', import.meta.url), 'utf8')) as { version: string };

/**
 * The library: two entries, the package root and `s3-workspace-sync/utils`
 * (the parts of the API that never load @aws-sdk; see src/utils.ts).
 */
export const libraryConfig: Options = {
  entry: ['src/index.ts', 'src/utils.ts'],
  format: ['esm', 'cjs'],
  // `@internal` declarations (test seams) stay out of the published types
  dts: { compilerOptions: { stripInternal: true } },
  sourcemap: true,
  // everything but the CLI, which the other config builds at the same time
  clean: ['!cli.js'],
  target: 'node20',
  platform: 'node',
  // p-limit (and its yocto-queue) ship as ESM only; bundling them keeps
  // `require('s3-workspace-sync')` working on every Node >= 20 without relying
  // on require(esm).
  noExternal: ['p-limit', 'yocto-queue'],
};

/**
 * The command line, `dist/cli.js` (package.json "bin"): ESM only, with a
 * shebang. It loads the library at run time from the package's own ESM build
 * (`import('../index.js')` in src/cli becomes `import('./index.js')`), so the
 * library is not bundled twice, `--help` and `--version` load neither the
 * library nor the AWS SDK, and a missing peer dependency is reported instead
 * of failing at link time.
 */
export const cliConfig: Options = {
  entry: { cli: 'src/cli/main.ts' },
  format: ['esm'],
  banner: { js: '#!/usr/bin/env node' },
  define: { __CLI_VERSION__: JSON.stringify(version) },
  dts: false,
  sourcemap: false,
  clean: false,
  splitting: false,
  target: 'node20',
  platform: 'node',
  esbuildPlugins: [
    {
      name: 'cli-loads-the-built-library',
      setup(build) {
        build.onResolve({ filter: /^\.\.\/index\.js$/ }, (args) =>
          args.importer.includes('/src/cli/') ? { path: './index.js', external: true } : undefined,
        );
      },
    },
  ],
};

export default defineConfig([libraryConfig, cliConfig]);
