// Imports point down the layers only (CONTRIBUTING.md, "Architecture"):
//   shared leaves (core/, errors, types, names…) <- local/, git/, storage/ <- state/,
//   transfer/ <- options <- pipeline/ <- the facade <- the entry points.
// core/ is pure: no filesystem, no network, no SDK, no timers.
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const SRC = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../src');

/** Rank of a module (path relative to src/, POSIX). A module may import only modules of a lower rank, or of its own folder. */
function rank(mod: string): number {
  if (mod.startsWith('core/')) return 0;
  if (['errors.ts', 'types.ts', 'logger.ts', 'option-checks.ts', 'upload-params.ts', 'SyncIgnoreFilter.ts', 'events.ts'].includes(mod)) return 0;
  if (mod.startsWith('local/') || mod.startsWith('git/') || mod.startsWith('storage/')) return 1;
  if (mod.startsWith('state/') || mod.startsWith('transfer/')) return 2;
  if (mod === 'options.ts') return 3;
  if (mod.startsWith('pipeline/')) return 4;
  if (mod === 'S3WorkspaceSync.ts') return 5;
  if (mod === 'index.ts' || mod === 'utils.ts') return 6;
  if (mod.startsWith('cli/')) return 7; // the command line: the public API only, above the entry points
  throw new Error(`no layer for src/${mod}: add it to test/unit/layers.test.ts and CONTRIBUTING.md`);
}

function modules(dir = SRC): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? modules(path.join(dir, e.name)) : e.name.endsWith('.ts') ? [path.relative(SRC, path.join(dir, e.name)).split(path.sep).join('/')] : [],
  );
}

function imports(mod: string): string[] {
  const text = readFileSync(path.join(SRC, mod), 'utf8');
  return [...text.matchAll(/^(?:import|export)[^;]*?from '([^']+)'/gms)].map((m) => m[1] as string);
}

const folder = (mod: string): string => (mod.includes('/') ? mod.slice(0, mod.indexOf('/')) : mod);

describe('module layers', () => {
  const all = modules();

  it('finds the modules (the walk works)', { timeout: 5_000 }, () => {
    expect(all).toContain('core/compare.ts');
    expect(all).toContain('pipeline/prepare.ts');
    expect(all.length).toBeGreaterThan(30);
  });

  it('every relative import points to a lower layer or stays in its folder', { timeout: 5_000 }, () => {
    const wrong: string[] = [];
    for (const mod of all) {
      for (const spec of imports(mod)) {
        if (!spec.startsWith('.')) continue;
        const target = path.posix.normalize(path.posix.join(path.posix.dirname(mod), spec)).replace(/\.js$/, '.ts');
        const sameFolder = folder(target) === folder(mod) && mod.includes('/');
        if (!sameFolder && rank(target) > rank(mod)) wrong.push(`${mod} -> ${target}`);
        if (!sameFolder && rank(target) === rank(mod) && rank(mod) > 0) wrong.push(`${mod} -> ${target} (same layer)`);
      }
    }
    expect(wrong).toEqual([]);
  });

  it('core/ is pure: no filesystem, network, SDK or timers', { timeout: 5_000 }, () => {
    const allowed = new Set(['node:crypto', 'mime-types']);
    const wrong: string[] = [];
    for (const mod of all.filter((m) => m.startsWith('core/'))) {
      for (const spec of imports(mod)) if (!spec.startsWith('.') && !allowed.has(spec)) wrong.push(`${mod} -> ${spec}`);
      const text = readFileSync(path.join(SRC, mod), 'utf8');
      if (/\bsetTimeout\(|\bsetInterval\(/.test(text)) wrong.push(`${mod} uses a timer`);
    }
    expect(wrong).toEqual([]);
  });
});
