// The display for people, checked in a real pseudo-terminal: util-linux
// `script` runs the binary with a tty as stdout, so the CLI draws its live
// progress display (redrawn at most every 100 ms) and ends with the summary.
// Skipped, saying why, where `script` is not installed.
import { spawn, spawnSync } from 'node:child_process';

import { afterAll, beforeAll, describe, expect, test } from 'vitest';

import { baseEnv, CLI, cliHome, ensureCliBuilt, where } from '../helpers/cli.js';
import { createTestBucket, makeTestClient } from '../helpers/s3.js';
import { makeTempDir, writeTree } from '../helpers/tree.js';

const hasScript = spawnSync('script', ['--version'], { encoding: 'utf8' }).stdout?.includes('util-linux') === true;
const client = makeTestClient();
const cleanups: Array<() => Promise<void>> = [];

beforeAll(async () => {
  if (hasScript) await ensureCliBuilt();
}, 60_000);
afterAll(async () => {
  await Promise.all(cleanups.map((c) => c()));
});

/** Run the CLI in a pseudo-terminal (80 columns); resolves with everything it drew. */
async function inTerminal(args: string[], env: Record<string, string> = {}): Promise<{ code: number | null; screen: string }> {
  const quote = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;
  const command = `stty cols 80 rows 24 2>/dev/null; exec ${[process.execPath, CLI, ...args].map(quote).join(' ')}`;
  const child = spawn('script', ['-qfec', command, '/dev/null'], {
    env: { ...baseEnv(await cliHome()), TERM: 'xterm-256color', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let screen = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (screen += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (screen += d));
  const code = await new Promise<number | null>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`no exit within 15 s:\n${screen}`));
    }, 15_000);
    child.on('close', (c) => {
      clearTimeout(timer);
      resolve(c);
    });
  });
  return { code, screen };
}

const COLOR = /\u001b\[3[0-9]m/;

// said in the report when skipped (bsdutils/util-linux ships `script` on Debian and Ubuntu)
if (!hasScript) test.skip('util-linux `script` is not installed: no pseudo-terminal to draw the display in', () => {});

describe.skipIf(!hasScript).concurrent('in a terminal (util-linux script)', () => {
  test('push: a live progress display that updates, then a coloured summary; NO_COLOR turns colours off', { timeout: 20_000 }, async () => {
    const t = await makeTempDir('s3ws-cli-tty-');
    cleanups.push(t.cleanup);
    const files = Object.fromEntries(Array.from({ length: 150 }, (_, i) => [`src/m${String(i).padStart(3, '0')}.ts`, `export const x${i} = ${i};\n`.repeat(600)]));
    await writeTree(t.dir, files);
    const [bucketA, bucketB] = await Promise.all([createTestBucket(client), createTestBucket(client)]);
    const [coloured, plain] = await Promise.all([
      inTerminal(['push', ...where(bucketA, 'ws/', t.dir), '--concurrency', '1', '--state-dir', `${t.dir}-state-a`]),
      inTerminal(['push', ...where(bucketB, 'ws/', t.dir), '--concurrency', '1', '--state-dir', `${t.dir}-state-b`], { NO_COLOR: '1' }),
    ]);
    cleanups.push(async () => {
      const { rm } = await import('node:fs/promises');
      await rm(`${t.dir}-state-a`, { recursive: true, force: true });
      await rm(`${t.dir}-state-b`, { recursive: true, force: true });
    });
    for (const { code, screen } of [coloured, plain]) {
      expect(code, screen).toBe(0);
      expect(screen).not.toContain('{"type"'); // a terminal gets no JSON
      // the display: phase, files done of total, bytes done of total, the current file
      const frames = [...screen.matchAll(/Uploading\s+\S+\s+(\d+)%\s+(\d+)\/150 files\s+([\d.]+ \w+)\/([\d.]+ \w+)/g)];
      expect(frames.length, screen).toBeGreaterThanOrEqual(2);
      const percents = frames.map((f) => Number(f[1]));
      expect(new Set(percents).size, 'the display updates').toBeGreaterThanOrEqual(2);
      expect(percents).toEqual([...percents].sort((a, b) => a - b));
      expect(screen).toMatch(/src\/m\d{3}\.ts/);
      expect(screen).toContain('\u001b[2K'); // lines erased and redrawn in place
      // the summary, after the display is cleared and the cursor shown again
      const end = screen.lastIndexOf('\u001b[?25h');
      expect(end).toBeGreaterThan(screen.lastIndexOf('Uploading'));
      const summary = screen.slice(end).replace(/\u001b\[[0-9;?]*[A-Za-z]/g, '');
      const took = /✓ Pushed 150 files \([\d.]+ [KM]iB\) in ([\d.]+)s/.exec(summary);
      expect(took, summary).not.toBeNull();
      // rate and ETA appear once the phase has run for 300 ms (and a frame is drawn after that)
      if (Number(took![1]) >= 1) expect(screen).toMatch(/[\d.]+ [KM]iB\/s {2}ETA \d/);
      expect(summary).toMatch(/uploaded 150.*downloaded 0.*deleted 0.*kept 0.*conflicts 0.*failed 0/);
    }
    expect(coloured.screen).toMatch(COLOR);
    expect(plain.screen).not.toMatch(COLOR);
  });

  test('watch: the settings and the stop, a line per push; Ctrl-C pushes everything and exits 0', { timeout: 30_000 }, async () => {
    const t = await makeTempDir('s3ws-cli-tty-watch-');
    cleanups.push(t.cleanup);
    await writeTree(t.dir, { 'a.txt': 'a' });
    const bucket = await createTestBucket(client);
    const quote = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;
    const args = ['watch', ...where(bucket, 'ws/', t.dir), '--initial', 'push', '--debounce', '100ms', '--reconcile', '0'];
    const command = `stty cols 100 rows 24 2>/dev/null; exec ${[process.execPath, CLI, ...args].map(quote).join(' ')}`;
    // stdin a pipe: script passes what is written to it to the terminal, so \x03 is a Ctrl-C (SIGINT)
    const child = spawn('script', ['-qfec', command, '/dev/null'], { env: { ...baseEnv(await cliHome()), TERM: 'xterm-256color', NO_COLOR: '1' }, stdio: ['pipe', 'pipe', 'pipe'] });
    let screen = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (screen += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (screen += d));
    const closed = new Promise<number | null>((resolve) => child.on('close', resolve));
    const plain = (): string => screen.replace(/\u001b\[[0-9;?]*[A-Za-z]/g, '');
    const waitFor = async (what: RegExp): Promise<void> => {
      const until = Date.now() + 15_000;
      while (!what.test(plain())) {
        if (Date.now() > until || child.exitCode !== null) throw new Error(`no ${what} on the screen:\n${plain()}`);
        await new Promise((r) => setTimeout(r, 25));
      }
    };
    try {
      await waitFor(/Watching .* -> s3:\/\/[^ ]+\/ws\/: push after 0\.1s without changes, at least every 10s/);
      expect(plain()).toMatch(/✓ Pushed 1 file/); // the initial push's summary
      expect(plain()).toMatch(/On SIGTERM or SIGINT: stop watching, push everything \(a full push\).*SIGKILL 30 s after SIGTERM/s);
      const { writeFile } = await import('node:fs/promises');
      await writeFile(`${t.dir}/b.txt`, 'b');
      await waitFor(/\d\d:\d\d:\d\d ✓ push \(quiet, 1 path\): 1 uploaded, 0 deleted \(1 B\) in [\d.]+s/);
      child.stdin.write('\u0003');
      expect(await closed).toBe(0);
    } finally {
      child.kill('SIGKILL');
    }
    const end = plain();
    expect(end).toMatch(/SIGINT: stopping watching; pushing everything/);
    expect(end).toMatch(/✓ push \(close, all files\): 0 uploaded, 0 deleted/);
    expect(end).not.toContain('{"type"');
  });
});
