// A bare directory walk, as a whole process: readdir every directory and lstat
// every file (the least a no-op push must do to notice a change). The
// baseline for "cold-start no-op push" in bench/index.ts.
import { lstat, readdir } from 'node:fs/promises';
import { join } from 'node:path';

let files = 0;
async function walk(dir) {
  const entries = await readdir(dir, { withFileTypes: true });
  await Promise.all(
    entries.map(async (e) => {
      if (e.name === '.s3-workspace-sync') return;
      const full = join(dir, e.name);
      if (e.isDirectory()) await walk(full);
      else {
        await lstat(full);
        files++;
      }
    }),
  );
}
await walk(process.argv[2]);
process.stdout.write(`${JSON.stringify({ files })}\n`);
